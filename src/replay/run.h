/* SPDX-License-Identifier: MIT */
/* hvreplay run and reduce, internal: one replay, as both commands run it (run_cmd.c). */
#ifndef HVREPLAY_RUN_H
#define HVREPLAY_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../record/recorder.h"
#include "run_source.h"

/* What one replay is asked to do. */
struct replay_req {
        const char *trace;   /* the recording */
        const char *output;  /* the replay's trace */
        const char *backend; /* NULL: the recording's */
        int policy;          /* enum hvt_policy, -1: follow the recording */
        uint64_t max_exits;  /* 0: as the recording */
        bool quiet;          /* no summary on stderr */
        bool lenient;        /* run on where the replay leaves the recording */
        double timeout_s;    /* end a replay that runs this long (one that left the recording) */
        int argc;            /* the command line, for the header */
        char **argv;
};

/* One replay: what it sets up, released in reverse. */
struct replay {
        struct rsrc *src; /* the recording, loaded */
        struct rec_opts o;
        struct recorder rec;
        struct rec_input in;
        const struct backend_ops *ops;
        bool exact;
        char why[512];
};

/*
 * A wall-time limit for replaying src: `factor` times what the recording
 * took plus `base` seconds.  A replay that leaves the recording can spin
 * with no exit at all; this ends it.
 */
double run_timeout(const struct rsrc *src, double factor, double base);

/*
 * Replay src into q->output (signals_install must have been called).  Returns 0 with the run done
 * (p->rec says how it ended), or -errno with p->why: the backend unknown or unable, the output not
 * writable.
 */
int run_exec(struct replay *p, const struct replay_req *q, struct rsrc *src);

/* "hvreplay CMD: N exits replayed on B in S s (R exits/s, ...)" on stderr. */
void run_print_rate(const char *cmd, const struct replay *p);

/* A name for a temporary trace (not created) in $TMPDIR or /tmp.  0 or -errno. */
int run_temp_output(char *buf, size_t len);

#endif
