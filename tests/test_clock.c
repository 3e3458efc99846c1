// SPDX-License-Identifier: MIT
/*
 * Unit tests of the run loop's clock (src/record/clock.c) on made-up
 * (TSC, CLOCK_MONOTONIC) pairs: calibration, conversion, the re-anchor
 * limit, and the fall back to the clock alone when the TSC strays.
 */
#include <criterion/criterion.h>

#include "../src/record/clock.h"

/* A 2 GHz TSC: 2 ticks per ns. */
#define T0 1000000000ull
#define N0 5000000000ull

static struct rec_clock tsc_clock(void)
{
        struct rec_clock c = { .decided = true, .use_tsc = true };

        return c;
}

Test(clock, calibrates_over_a_millisecond_then_converts)
{
        struct rec_clock c = tsc_clock();
        uint64_t ns;

        rec_clock_anchor(&c, T0, N0);
        cr_expect_eq(c.limit, 0, "no fast path before a rate");
        rec_clock_anchor(&c, T0 + 2 * 500000, N0 + 500000);
        cr_expect_eq(c.limit, 0, "half a millisecond is too short to calibrate");
        rec_clock_anchor(&c, T0 + 2 * 1000000, N0 + 1000000);
        cr_assert_neq(c.limit, 0);
        cr_expect_eq(c.mult, 1ull << 31, "2 ticks per ns: 0.5 in 32.32");
        cr_expect_eq(c.limit, 2 * REC_CLOCK_ANCHOR_NS, "a millisecond of ticks");
        cr_assert(rec_clock_from_tsc(&c, T0 + 2 * 1000000 + 2000, &ns));
        cr_expect_eq(ns, N0 + 1000000 + 1000);
        cr_expect_not(rec_clock_from_tsc(&c, T0 + 2 * 1000000 + c.limit, &ns),
                      "past the limit the clock is read again");
        cr_expect_not(rec_clock_from_tsc(&c, T0, &ns), "before the anchor: not converted");
}

Test(clock, keeps_a_tsc_that_keeps_to_the_clock)
{
        struct rec_clock c = tsc_clock();

        rec_clock_anchor(&c, T0, N0);
        rec_clock_anchor(&c, T0 + 2 * 1000000, N0 + 1000000);
        /* 10 us off after a second: within 50 us + 1/1024. */
        rec_clock_anchor(&c, T0 + 2 * 1001000000ull, N0 + 1001000000ull + 10000);
        cr_expect(c.use_tsc);
        cr_expect_neq(c.limit, 0);
        cr_expect_eq(c.base_ns, N0 + 1001000000ull + 10000, "the clock's value is the new anchor");
}

Test(clock, drops_a_tsc_that_jumps)
{
        struct rec_clock c = tsc_clock();

        rec_clock_anchor(&c, T0, N0);
        rec_clock_anchor(&c, T0 + 2 * 1000000, N0 + 1000000);
        /* One ms by the clock, one second by the TSC: a restored VM, a host that reset it. */
        rec_clock_anchor(&c, T0 + 2 * 1001000000ull, N0 + 2000000);
        cr_expect_not(c.use_tsc);
        cr_expect_eq(c.limit, 0, "every read is clock_gettime from now on");
}

Test(clock, drops_a_tsc_that_goes_back)
{
        struct rec_clock c = tsc_clock();

        rec_clock_anchor(&c, T0, N0);
        rec_clock_anchor(&c, T0 - 1, N0 + 1000);
        cr_expect_not(c.use_tsc);
        cr_expect_eq(c.limit, 0);
}

Test(clock, never_goes_back)
{
        struct rec_clock c = { 0 };

        cr_expect_eq(rec_clock_keep(&c, 100), 100);
        cr_expect_eq(rec_clock_keep(&c, 90), 100, "an earlier value reads as the latest");
        cr_expect_eq(rec_clock_keep(&c, 110), 110);
}

Test(clock, reads_from_a_zeroed_clock)
{
        struct rec_clock c = { 0 };
        uint64_t prev = rec_clock_now(&c);

        cr_expect(c.decided, "the first read decides which clock");
        cr_expect_gt(prev, 0);
        for (int i = 0; i < 1000; i++) {
                uint64_t t = rec_clock_now(&c);

                cr_expect_geq(t, prev);
                prev = t;
        }
}
