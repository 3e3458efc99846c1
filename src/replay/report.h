/* SPDX-License-Identifier: MIT */
/*
 * hvreplay report: what one pass over a trace (and hvreplay check's
 * verdicts on it) gathers for the HTML report.  report.c gathers,
 * report_html.c writes.
 */
#ifndef HVREPLAY_REPORT_H
#define HVREPLAY_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <hvtrace/hvtrace.h>

#include "check.h"

/* Exits shown before a finding (its own exit included). */
#define REPORT_CONTEXT 6

/* One exit as dump shows it: number, time, reason, address, instruction. */
struct report_line {
        uint64_t seq, time_ns;
        char reason[24];
        char addr[32];
        char insn[128];
};

/* An exit on the timeline. */
struct report_point {
        uint64_t ns;
        uint8_t reason;
        uint32_t vcpu;
};

/* One vCPU's share of a multi-vCPU trace. */
struct report_vcpu {
        uint64_t exits, injections, raises, deliveries;
        size_t violations, undetermined; /* the checker's findings on it */
};

/* A checker finding with the exits of its vCPU that led to it. */
struct report_finding {
        const struct check_finding *f;
        struct report_line context[REPORT_CONTEXT];
        size_t ncontext;
        uint64_t time_ns; /* of its exit; valid with `seen` */
        bool seen;        /* its exit was read */
};

struct report_trace {
        const char *path;
        struct check_result check;
        bool opened;     /* the header could be read */
        bool readable;   /* the whole trace could be read */
        char error[256]; /* why not */

        char backend[64], guest[256], tool[64];
        unsigned policy, mode;
        uint64_t header_flags;

        uint32_t vcpus;               /* 1 in a single-vCPU trace */
        struct report_vcpu *per_vcpu; /* vcpus of them, once the trace is opened */

        uint64_t exits, injections, raises, deliveries, console_bytes;
        uint64_t guest_ns, last_ns; /* last_ns: the latest exit's time, of any vCPU */
        uint64_t by_reason[HVT_EXIT_REASON_COUNT], guest_by_reason[HVT_EXIT_REASON_COUNT];

        /* The timeline's raw points, binned when the SVG is drawn. */
        struct report_point *exit_pts;
        size_t nexit_pts, exit_cap;
        uint64_t *deliver_ns;
        size_t ndeliver_pts, deliver_cap;

        struct report_finding *findings; /* violations, then undetermined, each by vCPU and exit */
        size_t nfindings, nviolations;

        bool have_end;
        struct hvt_disk_end end;
        char end_message[256];
};

/*
 * Read one trace into *t (which the caller zeroes).  Returns 0, or -errno
 * when memory ran out; a trace that cannot be read (completely) is not an
 * error here: t->opened / t->readable / t->error say so.
 */
int report_gather(const char *path, struct report_trace *t);
void report_trace_free(struct report_trace *t);

/* Write the report on traces[0..n) as one self-contained HTML page.  Returns 0 or -EIO. */
int report_write_html(FILE *f, const struct report_trace *traces, size_t n);

#endif
