/* SPDX-License-Identifier: MIT */
/*
 * The recorder's shared state: one run of one guest on one backend, and how
 * a run ends (recorder.c).  src/record's files call each other in one
 * direction only (no cycle; tests/record_dag.sh checks it):
 *
 *   main.c -> loop.c -> abi.c -> irq.c -> gate.c
 *                             abi.c -> probe.c -> gate.c
 *   and any of them -> recorder.c, clock.c, signals.c, options.c, mode.c, guest.c
 */
#ifndef HVREC_RECORDER_H
#define HVREC_RECORDER_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hvtrace/hvtrace.h>

#include "../arch/x86.h"
#include "../backends/backend.h"
#include "../disasm/disasm.h"
#include "clock.h"
#include "console.h"
#include "gview.h"
#include "host.h"
#include "irq.h"
#include "options.h"

/* Guest ABI ports (docs/guest-abi.md). */
#define ABI_PORT_IRQ 0xE0 /* write a vector: request that interrupt */
/* 0xE2, the delivery probe: PROBE_PORT (probe.h) */
#define ABI_PORT_CONSOLE CONSOLE_PORT /* debug console (console.h) */
#define ABI_PORT_EXIT    0xF4         /* write a status byte: end the run */

/*
 * hvrec's exit statuses (docs/guest-abi.md).  Below 128 a status is always
 * the guest's own, from 128 on always hvrec's, so a script tells them apart
 * with one comparison; a guest status above 127 cannot be passed through
 * without colliding, so it gets a status of its own (the trace keeps it).
 */
#define STATUS_HALT       0   /* also the guest's status 0 */
#define STATUS_GUEST_MAX  127 /* guest statuses 0..127 are passed through */
#define STATUS_SIGNAL0    128 /* + the signal number */
#define STATUS_ERROR      202 /* hvrec's own error */
#define STATUS_CRASH      203 /* the guest crashed */
#define STATUS_LIMIT      204 /* --max-exits or --timeout */
#define STATUS_GUEST_HIGH 205 /* the guest wrote a status above 127 */

_Static_assert(STATUS_SIGNAL0 + _NSIG - 1 < STATUS_ERROR, "signal statuses stay below hvrec's");

/* Where the guest's console goes besides the trace (abi.c). */
struct console_out {
        int fd;           /* stdout, or stderr when the trace goes to stdout; -1: stopped */
        const char *name; /* "stdout" or "stderr" */
        bool raw;         /* --raw-console: bytes as the guest wrote them */
        int err;          /* the errno that stopped it, 0 if none */
        size_t len;       /* bytes buffered */
        char buf[4096];   /* escaped text not yet written */
};

/*
 * Where a replay's inputs come from (hvreplay run): the run loop asks it
 * at fixed points instead of devices and --irq triggers deciding.  Every
 * hook gets the ctx of struct rec_input.
 */
struct rec_input_ops {
        /*
         * Before entering the guest: 0 to run, 1 when the vCPU already
         * stands at the next exit (rec->bx filled), or -errno.
         */
        int (*before_run)(void *ctx, struct recorder *rec);
        /* After a run: whether rec->bx is an exit to record (false: run on). */
        bool (*after_run)(void *ctx, struct recorder *rec);
        /* What an IN or MMIO read of the exit being recorded returns. */
        void (*fill_in)(void *ctx, struct recorder *rec);
        /* After the exit was handled: interrupts raised there from outside the guest. */
        void (*events)(void *ctx, struct recorder *rec);
        /* Before the next entry: true when it decided about injection itself. */
        bool (*schedule)(void *ctx, struct recorder *rec);
};

struct rec_input {
        const struct rec_input_ops *ops;
        void *ctx;
};

struct recorder {
        const struct rec_opts *opts;
        const struct rec_input *input; /* NULL: recording, inputs from devices and options */
        struct backend *b;
        struct hvt_writer *w;
        struct disasm *dis;
        struct x86_mem mem;
        struct irq_sched irq;
        struct console_out console;
        bool track_writes; /* HVT_HDR_WRITES: WRITE records after every exit */
        bool step_inject;  /* HVT_HDR_STEP_INJECT: step before injecting (irq.c) */

        struct rec_clock clock; /* t0, the exits' times and wall_ns: one clock */
        uint64_t t0;            /* CLOCK_MONOTONIC at the header */
        uint64_t seq;           /* number of the next exit */
        struct hvt_exit ex;     /* the exit being handled */
        struct backend_exit bx; /* ... as the backend reported it */

        bool done;
        unsigned why; /* enum hvt_end_why */
        int status;   /* hvrec's exit status */
        uint32_t detail;
        char msg[256];
        int write_err; /* the trace write error that ended the run, 0 if none */

        uint64_t by_reason[HVT_EXIT_REASON_COUNT];
        uint64_t injections, deliveries, raises;
        uint64_t wall_ns;
};

/* End the run: the first call wins; later ones are ignored. */
void rec_finish(struct recorder *rec, unsigned why, int status, uint32_t detail, const char *fmt,
                ...) __attribute__((format(printf, 5, 6)));

/* Report a trace write failure (ends the run with an error). */
void rec_write_failed(struct recorder *rec, int err);

/*
 * The END record of the run as it ended (why, status, message, counts),
 * flushed to the output.  Returns 0 or -errno; the writer stays open.
 */
int rec_write_end(struct recorder *rec);

/* The guest as the exit being handled sees it: its state, and memory through rec->mem. */
struct gview rec_view(const struct recorder *rec);

#endif
