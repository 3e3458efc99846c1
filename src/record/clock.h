/* SPDX-License-Identifier: MIT */
/*
 * The run loop's clock: CLOCK_MONOTONIC nanoseconds, read at every entry
 * and exit.  Where the CPU says its TSC is invariant, a read is one RDTSC
 * scaled against CLOCK_MONOTONIC, re-anchored to it at least every
 * millisecond; elsewhere it is clock_gettime itself.  docs/performance.md
 * says why and what it costs in accuracy.
 */
#ifndef HVREC_CLOCK_H
#define HVREC_CLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <x86intrin.h>

/* All zero is a valid clock: it decides and calibrates at its first read. */
struct rec_clock {
        uint64_t base_tsc, base_ns;   /* the last anchor: a TSC and CLOCK_MONOTONIC pair */
        uint64_t first_tsc, first_ns; /* the first anchor: the baseline for the rate */
        uint64_t mult;                /* ns per TSC tick, 32.32 fixed point; 0 calibrating */
        uint64_t limit;               /* ticks from base_tsc the fast path may go; 0: none */
        uint64_t last;                /* the latest value returned: reads never go back */
        bool decided, use_tsc, have_first;
};

/* Anchor every millisecond at least: the rate's error then costs at most ns. */
#define REC_CLOCK_ANCHOR_NS 1000000ull
/* The rate is measured over a millisecond at least before the TSC is used. */
#define REC_CLOCK_CALIBRATE_NS 1000000ull

/* Monotonic nanoseconds, as CLOCK_MONOTONIC counts them. */
uint64_t rec_clock_slow(struct rec_clock *c);

/*
 * Take one (TSC, CLOCK_MONOTONIC) pair: check the TSC kept to the clock
 * since the last pair (else use the clock alone from now on), and derive
 * the rate and the next limit.  rec_clock_slow's work, apart for tests.
 */
void rec_clock_anchor(struct rec_clock *c, uint64_t tsc, uint64_t ns);

/* Never less than a value already returned. */
static inline uint64_t rec_clock_keep(struct rec_clock *c, uint64_t ns)
{
        if (ns < c->last)
                return c->last;
        c->last = ns;
        return ns;
}

/* A TSC value in nanoseconds; false when it is beyond the anchor's reach. */
static inline bool rec_clock_from_tsc(const struct rec_clock *c, uint64_t tsc, uint64_t *ns)
{
        uint64_t d = tsc - c->base_tsc;

        /* d < limit keeps d * mult under 2^52: no overflow. */
        if (d >= c->limit)
                return false;
        *ns = c->base_ns + ((d * c->mult) >> 32);
        return true;
}

static inline uint64_t rec_clock_now(struct rec_clock *c)
{
        uint64_t ns;

        /* No RDTSC at all unless it was chosen: it may fault (PR_SET_TSC). */
        if (__builtin_expect(!c->limit, 0))
                return rec_clock_slow(c);
        if (__builtin_expect(!rec_clock_from_tsc(c, __rdtsc(), &ns), 0))
                return rec_clock_slow(c);
        return rec_clock_keep(c, ns);
}

#endif
