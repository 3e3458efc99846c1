/* SPDX-License-Identifier: MIT */
/*
 * Asynchronous events of a run: the signals that would terminate hvrec,
 * the --timeout deadline and the --kick timer.  Each handler records what
 * happened and kicks the backend so a vCPU spinning without exits returns
 * to the loop at once; the loop then ends the run with an end record.
 *
 * Stop signals: every signal whose default action terminates the process
 * and that does not report a fault of hvrec itself: SIGHUP, SIGINT, SIGQUIT,
 * SIGPIPE, SIGALRM, SIGTERM, SIGUSR1, SIGUSR2, SIGSTKFLT, SIGXCPU, SIGXFSZ,
 * SIGVTALRM, SIGPROF, SIGIO, SIGPWR and the real-time signals.  Not caught:
 * SIGKILL and SIGSTOP (they cannot be), and the fault signals (SIGSEGV,
 * SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS).  A SIGPIPE or SIGXFSZ
 * the kernel raises for hvrec's own write is not a stop: that write fails
 * with EPIPE or EFBIG and is handled where it happened.  The timers use
 * real-time signals and are recognised by their SI_TIMER origin, so a
 * signal sent from outside is never taken for the deadline or a kick.  A
 * second stop signal kills hvrec at once (for a write stuck on a FIFO).
 */
#ifndef HVREC_SIGNALS_H
#define HVREC_SIGNALS_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "../backends/backend.h"

/* The --timeout deadline's signal: hvrec run's and hvrec exec's timer send it. */
#define SIGNALS_TIMEOUT_SIGNO (SIGRTMIN + 2)

/*
 * A monotonic timer that sends SIGNALS_TIMEOUT_SIGNO tagged as the
 * deadline's (signals_is_deadline tells it from a kill).  0 or -errno.
 */
int signals_deadline_create(timer_t *t);

/* Arm t to expire once, seconds from now (a fraction rounds up to 1 ns).  0 or -errno. */
int signals_deadline_arm(timer_t t, double seconds);

/* Whether si is the deadline timer's expiry, not the same signal sent from outside. */
bool signals_is_deadline(const siginfo_t *si);

struct sig_events {
        int stop_signo; /* a stop signal received (the first one), 0 if none */
        int timed_out;  /* the --timeout deadline passed */
        uint64_t kicks; /* --kick timer expirations */
};

/*
 * Install the handlers of every stop signal and of the timer signals.
 * From here on a stop signal only sets a flag (signals_stop_signo).
 * Returns 0 or -errno.
 */
int signals_install(void);

/*
 * Block every signal signals_install handles in the calling thread, old
 * mask into *old: threads created meanwhile (the trace writer's) inherit
 * the mask, so the signals reach the thread that runs the guest.
 */
void signals_block(sigset_t *old);

/* Restore the mask signals_block saved. */
void signals_unblock(const sigset_t *old);

/*
 * Arm the timers (timeout_s 0: none; kick_usec 0: none; kicks are jittered
 * 50%..150% from seed) and kick b on every event.  Each call starts afresh:
 * a deadline passed or kicks counted in an earlier run are forgotten.
 * Returns 0 or -errno.
 */
int signals_start(struct backend *b, double timeout_s, uint64_t kick_usec, uint64_t seed);

/* Stop the timers and kicking; the handlers stay until the process exits. */
void signals_stop(void);

/* The first stop signal received so far, 0 if none. */
int signals_stop_signo(void);

/* Whether a stop signal or the --timeout deadline has come: the run is to end. */
bool signals_must_stop(void);

/*
 * Copy and clear the events seen since the last call (kicks are consumed).
 * Taking a kick arms the next one: kicks come at most one per call, so the
 * loop gets on however short the --kick period.
 */
void signals_take(struct sig_events *ev);

/* Sleep until any of the signals above arrives (for a halted vCPU). */
void signals_wait(void);

#endif
