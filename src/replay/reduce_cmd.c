// SPDX-License-Identifier: MIT
/*
 * hvreplay reduce: the shortest replayable trace that still shows a
 * violation.  Every candidate is re-executed (run_exec) and the replay
 * checked; what is kept is always a replay's own trace, never an edited
 * one, so the result replays exactly by construction, and is confirmed
 * so at the end.
 *
 * Two reductions, in this order: the prefix up to the violation's probe
 * exit with the single steps far before it dropped (kept only in a window
 * before the violation, widened until the violation shows again), then
 * each injection dropped in turn, kept out when the violation survives.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../record/signals.h"
#include "check.h"
#include "diff.h"
#include "run.h"

#define FIRST_WINDOW 8 /* steps kept before the violation at first; doubled until it shows */

struct reduce {
        const char *trace, *output, *backend;
        unsigned nth; /* the violation, from 1 */
        bool quiet;
        int argc;
        char **argv;

        struct check_finding want; /* the violation to keep */
        struct rsrc best;          /* the shortest replay so far, loaded */
        bool have_best;
        char best_path[4096];
        unsigned tries;
        double timeout_s; /* per replay */
        struct replay p;
};

static void reduce_usage(FILE *f)
{
        fprintf(f, "Usage: hvreplay reduce [OPTIONS] TRACE -o SMALL\n"
                   "\n"
                   "Write the shortest replayable trace that still shows a violation of TRACE\n"
                   "(hvreplay check): the prefix up to it, single steps kept only just before\n"
                   "it, and the injections it does not need dropped.  Each candidate is\n"
                   "re-executed and checked; SMALL is a replay's own trace, and is confirmed\n"
                   "by replaying it (hvreplay run) and checking it.  See docs/replay.md.\n"
                   "\n"
                   "Options:\n"
                   "  -o, --output F    the reduced trace (a new file; required)\n"
                   "  --violation N     the N-th violation hvreplay check lists (default 1)\n"
                   "  --backend NAME    backend to re-execute on (default: the recorded one)\n"
                   "  -q, --quiet       no progress on stderr\n"
                   "  -h, --help        this text\n"
                   "\n"
                   "Exit status: 0 SMALL written and confirmed; 1 the violation could not be\n"
                   "reproduced by re-execution; 2 an unreadable trace, no such violation, an\n"
                   "unusable backend, bad usage.\n");
}

static int reduce_args(int argc, char **argv, struct reduce *r)
{
        static const struct option opts[] = {
                { "output", required_argument, NULL, 'o' },
                { "violation", required_argument, NULL, 'n' },
                { "backend", required_argument, NULL, 'b' },
                { "quiet", no_argument, NULL, 'q' },
                { "help", no_argument, NULL, 'h' },
                { 0 },
        };
        char *end;
        int c;

        r->nth = 1;
        optind = 0; /* GNU getopt afresh: options may follow TRACE */
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":o:qh", opts, NULL)) != -1) {
                switch (c) {
                case 'o': r->output = optarg; break;
                case 'n': {
                        unsigned long v = strtoul(optarg, &end, 10);

                        if (!*optarg || *end || optarg[0] == '-' || !v || v > 1000000) {
                                fprintf(stderr,
                                        "hvreplay reduce: --violation: '%s' is not a number "
                                        "from 1\n",
                                        optarg);
                                return -1;
                        }
                        r->nth = (unsigned)v;
                        break;
                }
                case 'b': r->backend = optarg; break;
                case 'q': r->quiet = true; break;
                case 'h': reduce_usage(stdout); return 1;
                default: replay_option_error("reduce", c, argv); return -1;
                }
        }
        if (optind + 1 != argc || !r->output) {
                fprintf(stderr, "hvreplay reduce: give one TRACE and -o SMALL (see --help)\n");
                return -1;
        }
        r->trace = argv[optind];
        return 0;
}

/* Whether the trace at path shows the violation reduce keeps (rule and place). */
static bool shows_violation(const struct reduce *r, const char *path, uint64_t *event)
{
        struct check_result res;
        bool found = false;

        if (check_trace(path, &res) == 0) {
                for (size_t i = 0; i < res.nviolations && !found; i++) {
                        found = res.violations[i].rule == r->want.rule &&
                                res.violations[i].pc == r->want.pc;
                        *event = res.violations[i].event;
                }
        }
        check_result_free(&res);
        return found;
}

/*
 * Replay candidate c; keep the replay as the new best when it shows the
 * violation.  Returns 1 kept, 0 not, -1 after an error message.
 */
static int try_candidate(struct reduce *r, struct rsrc *c, bool lenient)
{
        struct replay_req q = { .output = NULL,
                                .backend = r->backend,
                                .policy = -1,
                                .lenient = lenient,
                                .timeout_s = r->timeout_s,
                                .argc = r->argc,
                                .argv = r->argv };
        char path[4096], why[512];
        uint64_t event = 0;
        bool shown;

        snprintf(path, sizeof(path), "%s.try%u", r->output, r->tries++);
        unlink(path); /* a leftover of an earlier reduce of the same name */
        q.output = path;
        if (run_exec(&r->p, &q, c)) {
                replay_error(r->trace, r->p.why);
                return -1;
        }
        shown = !c->diverged && shows_violation(r, path, &event);
        if (!r->quiet)
                fprintf(stderr, "hvreplay reduce: try %u: %zu exits, %zu injections: %s\n",
                        r->tries, c->nex, c->ninject,
                        shown ? "violation shown" : "no violation: not kept");
        if (!shown) {
                unlink(path);
                return 0;
        }
        if (r->have_best) {
                rsrc_free(&r->best);
                unlink(r->best_path);
        }
        r->have_best = false;
        snprintf(r->best_path, sizeof(r->best_path), "%s", path);
        if (rsrc_load(&r->best, path, why, sizeof(why))) {
                replay_error(path, why);
                return -1;
        }
        r->have_best = true;
        return 1;
}

/* The prefix, its steps kept in a window before the violation, widened until it shows. */
static int reduce_prefix(struct reduce *r, struct rsrc *orig)
{
        uint64_t last = r->want.event;

        for (uint64_t window = FIRST_WINDOW;; window *= 2) {
                uint64_t from = window < last ? last - window : 0;
                struct rsrc c;
                int kept;

                if (rsrc_derive(orig, &c, last, from, SIZE_MAX)) {
                        fprintf(stderr, "hvreplay reduce: out of memory\n");
                        return -1;
                }
                kept = try_candidate(r, &c, false);
                rsrc_free(&c);
                if (kept)
                        return kept;
                if (!from)
                        return 0;
        }
}

/* Each injection of the best trace dropped in turn; kept out when the violation survives. */
static int reduce_injections(struct reduce *r)
{
        for (size_t i = 0; i < r->best.ninject;) {
                struct rsrc c;
                int kept;

                if (rsrc_derive(&r->best, &c, r->best.nex - 1, 0, i)) {
                        fprintf(stderr, "hvreplay reduce: out of memory\n");
                        return -1;
                }
                kept = try_candidate(r, &c, true);
                rsrc_free(&c);
                if (kept < 0)
                        return -1;
                if (!kept)
                        i++; /* needed; on a success the next one took number i */
        }
        return 0;
}

/* Move the best trace to -o without replacing anything.  0 or -1 after a message. */
static int keep_best(struct reduce *r)
{
        if (link(r->best_path, r->output)) {
                fprintf(stderr, "hvreplay reduce: cannot create %s: %s\n", r->output,
                        strerror(errno));
                return -1;
        }
        unlink(r->best_path);
        return 0;
}

/* Replay SMALL as hvreplay run does and check it.  Returns a replay status. */
static int confirm(struct reduce *r)
{
        struct rsrc s;
        struct replay_req q = { .backend = r->backend,
                                .policy = -1,
                                .timeout_s = r->timeout_s,
                                .argc = r->argc,
                                .argv = r->argv };
        struct diff_opts o;
        char path[4096], why[512];
        uint64_t event = 0;
        int status;

        if (rsrc_load(&s, r->output, why, sizeof(why))) {
                replay_error(r->output, why);
                return REPLAY_ERROR;
        }
        snprintf(path, sizeof(path), "%s.confirm", r->output);
        unlink(path);
        q.output = path;
        if (run_exec(&r->p, &q, &s)) {
                replay_error(r->output, r->p.why);
                rsrc_free(&s);
                return REPLAY_ERROR;
        }
        diff_default_opts(&o);
        status = diff_traces(&o, r->output, path);
        if (status == REPLAY_OK && !shows_violation(r, r->output, &event))
                status = REPLAY_FINDINGS;
        if (status == REPLAY_OK)
                printf("reduced: %s: %zu exits (from %" PRIu64 "), %zu injection%s; the %s "
                       "violation at exit %" PRIu64 " confirmed by re-execution\n",
                       r->output, s.nex, r->want.event + 1, s.ninject, s.ninject == 1 ? "" : "s",
                       check_rule_name(r->want.rule), event);
        unlink(path);
        rsrc_free(&s);
        return status;
}

static int reduce_trace(struct reduce *r)
{
        struct check_result res;
        struct rsrc orig;
        char why[512];
        int st;

        if (check_trace(r->trace, &res)) {
                replay_error(r->trace, res.error);
                check_result_free(&res);
                return REPLAY_ERROR;
        }
        if (res.nviolations < r->nth) {
                fprintf(stderr, "hvreplay reduce: %s: no violation %u (the trace has %zu)\n",
                        r->trace, r->nth, res.nviolations);
                check_result_free(&res);
                return REPLAY_ERROR;
        }
        r->want = res.violations[r->nth - 1];
        check_result_free(&res);
        if (rsrc_load(&orig, r->trace, why, sizeof(why))) {
                replay_error(r->trace, why);
                return REPLAY_ERROR;
        }
        r->timeout_s = run_timeout(&orig, 5, 2);
        st = reduce_prefix(r, &orig);
        if (st > 0)
                st = reduce_injections(r);
        rsrc_free(&orig);
        if (st < 0)
                return REPLAY_ERROR;
        if (!r->have_best) {
                fprintf(stderr,
                        "hvreplay reduce: %s: re-executing the prefix up to exit %" PRIu64
                        " does not show the violation again\n",
                        r->trace, r->want.event);
                return REPLAY_FINDINGS;
        }
        st = keep_best(r);
        rsrc_free(&r->best);
        r->have_best = false;
        return st ? REPLAY_ERROR : confirm(r);
}

int cmd_reduce(int argc, char **argv)
{
        struct reduce *r = calloc(1, sizeof(*r));
        int st;

        if (!r) {
                fprintf(stderr, "hvreplay reduce: out of memory\n");
                return REPLAY_ERROR;
        }
        r->argc = argc;
        r->argv = argv;
        st = reduce_args(argc, argv, r);
        if (st) {
                free(r);
                return st > 0 ? REPLAY_OK : REPLAY_ERROR;
        }
        if ((st = signals_install())) {
                fprintf(stderr, "hvreplay reduce: cannot install signal handlers: %s\n",
                        strerror(-st));
                free(r);
                return REPLAY_ERROR;
        }
        if (!access(r->output, F_OK)) {
                fprintf(stderr, "hvreplay reduce: %s exists: give a new file\n", r->output);
                free(r);
                return REPLAY_ERROR;
        }
        st = reduce_trace(r);
        if (r->have_best) {
                rsrc_free(&r->best);
                unlink(r->best_path);
        }
        free(r);
        return st;
}
