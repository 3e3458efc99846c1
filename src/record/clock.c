// SPDX-License-Identifier: MIT
/*
 * The run loop's clock (clock.h).  clock_gettime through the vDSO costs
 * about 40 ns here (kvm-clock: an RDTSC plus the pvclock page's scaling
 * and its version loop); two per exit were a fifth of hvrec's own time per
 * exit.  An RDTSC alone is under half of that.  The TSC is trusted only for
 * short stretches: every pair taken against CLOCK_MONOTONIC checks it kept
 * to the clock, so a TSC that jumps (a VM restored elsewhere) or drifts
 * costs one stretch of one millisecond at most, and then the TSC is dropped.
 */
#include <cpuid.h>
#include <sys/prctl.h>
#include <time.h>

#include "clock.h"

/* A pair whose two TSC reads are further apart was interrupted: take another. */
#define PAIR_MAX_TICKS 4096
#define PAIR_TRIES     4
/* How far a stretch may stray before the TSC is dropped: 50 us + 1/1024. */
#define STRAY_NS    50000ull
#define STRAY_SHIFT 10

static uint64_t mono_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * The TSC ticks at one rate in every P-, C- and T-state (CPUID
 * 0x80000007 EDX bit 8, Linux's constant_tsc and nonstop_tsc), and this
 * process may read it.  Without that, its ticks are not time.
 */
static bool tsc_usable(void)
{
        unsigned a, b, c, d;
        int mode = 0;

        if (!__get_cpuid(0x80000000, &a, &b, &c, &d) || a < 0x80000007)
                return false;
        __get_cpuid(0x80000007, &a, &b, &c, &d);
        if (!(d & (1u << 8)))
                return false;
        /* PR_TSC_SIGSEGV would make RDTSC kill us. */
        return prctl(PR_GET_TSC, &mode, 0, 0, 0) == 0 && mode == PR_TSC_ENABLE;
}

static uint64_t scale(uint64_t ticks, uint64_t mult)
{
        return (uint64_t)(((unsigned __int128)ticks * mult) >> 32);
}

static void drop_tsc(struct rec_clock *c)
{
        c->use_tsc = false;
        c->limit = 0;
}

void rec_clock_anchor(struct rec_clock *c, uint64_t tsc, uint64_t ns)
{
        uint64_t span, ticks;
        unsigned __int128 m;

        if (!c->have_first) {
                c->first_tsc = c->base_tsc = tsc;
                c->first_ns = c->base_ns = ns;
                c->have_first = true;
                c->mult = c->limit = 0;
                return;
        }
        if (tsc < c->base_tsc || ns < c->base_ns) {
                drop_tsc(c); /* a TSC that went back is not a clock */
                return;
        }
        if (c->mult) {
                uint64_t want = c->base_ns + scale(tsc - c->base_tsc, c->mult);
                uint64_t off = want > ns ? want - ns : ns - want;

                if (off > STRAY_NS + ((ns - c->base_ns) >> STRAY_SHIFT)) {
                        drop_tsc(c);
                        return;
                }
        }
        c->base_tsc = tsc;
        c->base_ns = ns;
        span = ns - c->first_ns;
        ticks = tsc - c->first_tsc;
        if (span < REC_CLOCK_CALIBRATE_NS || !ticks) {
                c->mult = c->limit = 0;
                return;
        }
        /* The rate over everything since the first pair: its error shrinks as the run goes on. */
        m = ((unsigned __int128)span << 32) / ticks;
        if (!m || m >> 63) {
                drop_tsc(c);
                return;
        }
        c->mult = (uint64_t)m;
        c->limit = (REC_CLOCK_ANCHOR_NS << 32) / c->mult;
}

uint64_t rec_clock_slow(struct rec_clock *c)
{
        uint64_t ns = 0;

        if (!c->decided) {
                c->decided = true;
                c->use_tsc = tsc_usable();
        }
        if (!c->use_tsc)
                return rec_clock_keep(c, mono_ns());
        for (unsigned i = 0; i < PAIR_TRIES; i++) {
                uint64_t t1 = __rdtsc(), t2;

                ns = mono_ns();
                t2 = __rdtsc();
                if (t2 - t1 <= PAIR_MAX_TICKS) {
                        rec_clock_anchor(c, t1 + (t2 - t1) / 2, ns);
                        break;
                }
        }
        /* No quiet pair this time: the clock's value, and the next read tries again. */
        return rec_clock_keep(c, ns);
}
