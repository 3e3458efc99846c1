/* SPDX-License-Identifier: MIT */
/*
 * Asynchronous events of a run: SIGINT/SIGTERM, the --timeout deadline and
 * the --kick timer.  Each handler records what happened and kicks the
 * backend so a vCPU spinning without exits returns to the loop at once.
 */
#ifndef HVREC_SIGNALS_H
#define HVREC_SIGNALS_H

#include <signal.h>
#include <stdint.h>

#include "../backends/backend.h"

struct sig_events {
        int stop_signo; /* SIGINT or SIGTERM received */
        int timed_out;  /* the --timeout deadline passed */
        uint64_t kicks; /* --kick timer expirations */
};

/*
 * Install the handlers and arm the timers (timeout_s 0: none; kick_usec 0:
 * none; kicks are jittered 50%..150% from seed).  Returns 0 or -errno.
 */
int signals_start(struct backend *b, double timeout_s, uint64_t kick_usec, uint64_t seed);

/* Stop the timers and restore default handlers. */
void signals_stop(void);

/* Copy and clear the events seen since the last call (kicks are consumed). */
void signals_take(struct sig_events *ev);

/* Sleep until any of the signals above arrives (for a halted vCPU). */
void signals_wait(void);

#endif
