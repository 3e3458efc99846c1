/* SPDX-License-Identifier: MIT */
/*
 * hvreplay run, internal: a recorded trace as the input source of a
 * recorder run (run_source.c).  A replay is a recording whose port and
 * MMIO reads, asynchronous stops and interrupts come from a trace instead
 * of devices, kicks and --irq triggers.
 */
#ifndef HVREPLAY_RUN_SOURCE_H
#define HVREPLAY_RUN_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hvtrace/hvtrace.h>

#include "../record/recorder.h"

/* One recorded exit, as much of it as a replay needs. */
struct rsrc_exit {
        uint16_t reason;
        uint32_t raw;
        uint64_t pc; /* linear CS:RIP */
        struct hvt_vcpu_state st;
        struct hvt_disk_io io;
        uint8_t *in; /* an IN's data (size*count bytes), else NULL */
        struct hvt_disk_mmio mmio;
        struct hvt_disk_debug debug;
};

/* A recorded raise or injection: what, and at which exit. */
struct rsrc_irq {
        uint64_t seq;
        uint8_t vector, source;
};

struct rsrc_mem {
        uint64_t gpa;
        uint8_t *data;
        size_t len;
};

struct rsrc {
        struct hvt_reader *r; /* kept open: its header strings are used */
        const struct hvt_header *hdr;
        uint32_t flags; /* HVT_HDR_* to replay with: the header's, or a derived trace's */
        bool borrowed;  /* rsrc_derive: the data belongs to the trace it came from */
        struct rsrc_exit *ex;
        size_t nex, ex_cap;
        struct rsrc_irq *raise, *inject;
        size_t nraise, raise_cap, ninject, inject_cap;
        struct rsrc_mem *mem;
        size_t nmem, mem_cap;
        bool have_end;
        struct hvt_disk_end end;
        char end_msg[256];

        /* The replay in progress. */
        bool exact;     /* follow the recording (no --inject): stops and injections from it */
        bool lenient;   /* ... but run on where the replay leaves it (reduce's trials) */
        bool stepping;  /* the backend single-steps: debug exits come by themselves */
        size_t ri, ii;  /* next raise, next injection */
        size_t in_next; /* --inject: the next recorded exit an IN may take data from */
        bool bp_armed;
        uint64_t bp_hits; /* breakpoint stops short of the boundary, all told */
        bool diverged;
        uint64_t diverged_at;
        int err;            /* a backend error met in a hook */
        char err_msg[160];  /* what err means, where strerror would not say */
        unsigned stuck;     /* breakpoint stops in a row in state stuck_st */
        uint64_t stuck_seq; /* the exit they were looking for */
        struct hvt_vcpu_state stuck_st;
};

/* Breakpoint stops in a row in one state after which a replay ends as stuck. */
#define RSRC_STUCK_MAX 100000u

/*
 * Read the whole trace at path into s.  Returns 0, or an HVT_ERR_* code /
 * -errno with the reason in why (s is freed either way on error).
 */
int rsrc_load(struct rsrc *s, const char *path, char *why, size_t len);

/*
 * A shorter recording derived from `from` for hvreplay reduce: its exits 0
 * to `last`, without the debug (step) exits before `steps_from` that no
 * raise or injection follows, and without injection number drop_inject
 * (SIZE_MAX: none); exits renumbered, the end a --max-exits end after the
 * last one.  `to` borrows from's data: free it before from.  0 or -ENOMEM.
 */
int rsrc_derive(const struct rsrc *from, struct rsrc *to, uint64_t last, uint64_t steps_from,
                size_t drop_inject);

/* Free what rsrc_load read and close the trace. */
void rsrc_free(struct rsrc *s);

/*
 * Put the recorded initial memory image into b's RAM and the vCPU in the
 * recorded mode at the recorded entry, as hvrec set it up.  Returns 0 or
 * -errno with why filled.
 */
int rsrc_setup_guest(const struct rsrc *s, struct backend *b, char *why, size_t len);

/* Write the recorded initial memory image to w.  Returns 0 or -errno. */
int rsrc_write_memory(const struct rsrc *s, struct hvt_writer *w);

/*
 * The input of a recorder run replaying s: exact (every stop and injection
 * as recorded) or, with exact false, only the raises and the read data,
 * injection left to the recorder's policy.
 */
void rsrc_input(struct rsrc *s, bool exact, bool stepping, struct rec_input *in);

#endif
