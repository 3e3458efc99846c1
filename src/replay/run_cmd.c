// SPDX-License-Identifier: MIT
/*
 * hvreplay run and hvreplay reduce: re-execute a trace on a backend with
 * the recorder's own loop, its inputs taken from the trace (run_source.c),
 * and compare the new trace with the old one through hvreplay diff.
 * docs/replay.md says what is replayed and what cannot be.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../record/loop.h"
#include "../record/options.h"
#include "../record/signals.h"
#include "check.h"
#include "diff.h"
#include "run.h"

/* ---- setting up ------------------------------------------------------------------ */

/* The backend asked for, able to replay this trace here.  0 or -errno with why. */
static int pick_backend(struct replay *p, const struct replay_req *q)
{
        const char *name = q->backend ? q->backend : p->src->hdr->str[HVT_STR_BACKEND];
        const struct backend_ops *ops = backend_find(name);
        char why[256];

        if (!ops) {
                snprintf(p->why, sizeof(p->why), "unknown backend '%.64s'%s", name,
                         q->backend ? " (hvrec run --backend help lists them)"
                                    : " recorded: give --backend");
                return -ENOENT;
        }
        if (ops->probe(why, sizeof(why))) {
                snprintf(p->why, sizeof(p->why), "backend %s is not usable here: %s", ops->name,
                         why);
                return -ENODEV;
        }
        if (!ops->set_breakpoint) {
                snprintf(p->why, sizeof(p->why),
                         "backend %s cannot stop at an instruction boundary (no breakpoints): it "
                         "cannot replay",
                         ops->name);
                return -ENOTSUP;
        }
        if (q->policy >= 0 && (ops->caps & HVT_CAP_IRQCHIP)) {
                snprintf(p->why, sizeof(p->why),
                         "--inject does not apply to backend %s: its in-kernel irqchip decides "
                         "when to inject",
                         ops->name);
                return -EINVAL;
        }
        if ((p->src->flags & HVT_HDR_SINGLE_STEP) && !(ops->caps & HVT_CAP_SINGLE_STEP)) {
                snprintf(p->why, sizeof(p->why),
                         "the trace was single-stepped and backend %s cannot single-step",
                         ops->name);
                return -ENOTSUP;
        }
        p->ops = ops;
        return 0;
}

/* The recorder's options as hvrec would have had them for this replay. */
static void replay_options(struct replay *p, const struct replay_req *q)
{
        const struct hvt_header *h = p->src->hdr;
        struct rec_opts *o = &p->o;

        memset(o, 0, sizeof(*o));
        o->guest = h->str[HVT_STR_GUEST];
        o->output = q->output;
        o->backend = p->ops->name;
        o->load_addr = h->h.load_addr;
        o->entry = h->h.entry;
        o->entry_set = true;
        o->mem_size = h->h.mem_size;
        o->mode = h->h.guest_mode;
        o->seed = h->h.seed;
        o->seed_set = true;
        /*
         * Backends step differently around an I/O exit (KVM's step after
         * it lands one instruction later than emu's): on another backend
         * the recorded steps are found by breakpoint like kicks.
         */
        o->single_step = (p->src->flags & HVT_HDR_SINGLE_STEP) &&
                         (!p->exact || !strcmp(h->str[HVT_STR_BACKEND], p->ops->name));
        o->kick_vector = -1; /* kicks come from the recording */
        o->policy = p->exact ? h->h.inject_policy : (unsigned)q->policy;
        if (p->ops->caps & HVT_CAP_IRQCHIP)
                o->policy = HVT_POLICY_BACKEND;
        o->policy_set = !p->exact;
        /* Past the recording's exits there is nothing to follow; under --inject, room to differ. */
        o->max_exits = q->max_exits ? q->max_exits
                       : p->exact   ? p->src->nex + 1
                                    : 4 * p->src->nex + 10000;
        o->argc = q->argc;
        o->argv = q->argv;
        o->quiet = true;
        o->timeout_s = q->timeout_s;
}

/* The VM with the recorded guest in place.  0 or -errno with why. */
static int replay_vm(struct replay *p)
{
        struct recorder *rec = &p->rec;
        struct backend_config cfg = { .mem_size = p->o.mem_size };
        bool can_step = (p->ops->caps & HVT_CAP_SINGLE_STEP) && p->ops->set_single_step;
        int err;

        err = p->ops->create(&cfg, &rec->b, p->why, sizeof(p->why));
        if (err)
                return err;
        rec->mem.ram = rec->b->mem;
        rec->mem.size = rec->b->mem_size;
        err = rsrc_setup_guest(p->src, rec->b, p->why, sizeof(p->why));
        if (err)
                goto err_backend;
        if (p->o.single_step && (err = p->ops->set_single_step(rec->b, true))) {
                snprintf(p->why, sizeof(p->why), "cannot single-step: %s", strerror(-err));
                goto err_backend;
        }
        rec->track_writes = (p->ops->caps & HVT_CAP_WRITES) && p->ops->take_writes;
        /* Following the recording, its stops are the steps; under a policy, hvrec's default. */
        rec->step_inject =
                !p->exact && can_step && !(p->ops->caps & HVT_CAP_IRQCHIP) && !p->o.single_step;
        if (rec->track_writes && (err = rec_drop_writes(rec))) {
                snprintf(p->why, sizeof(p->why), "cannot track guest writes: %s", strerror(-err));
                goto err_backend;
        }
        err = disasm_open(&rec->dis);
        if (err) {
                snprintf(p->why, sizeof(p->why), "cannot open capstone: %s", strerror(-err));
                goto err_backend;
        }
        return 0;

err_backend:
        p->ops->destroy(rec->b);
        rec->b = NULL;
        return err;
}

/* Create the replay's trace (never replacing a file) and write its prologue. */
static int replay_trace(struct replay *p)
{
        static const struct hvt_writer_opts wopts = { .size = sizeof(wopts) };
        const struct hvt_header *orig = p->src->hdr;
        struct recorder *rec = &p->rec;
        struct hvt_header h = *orig;
        char bver[160], vendor[32], model[64], kernel[400];
        int fd, err;

        fd = open(p->o.output, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0) {
                err = -errno;
                snprintf(p->why, sizeof(p->why), "cannot create %s: %s", p->o.output,
                         strerror(errno));
                return err;
        }
        err = hvt_writer_fdopen(&rec->w, fd, &wopts);
        if (err) {
                snprintf(p->why, sizeof(p->why), "cannot write %s: %s", p->o.output,
                         strerror(-err));
                return err;
        }
        p->ops->version(rec->b, bver, sizeof(bver));
        h.h.flags = (p->src->flags & (HVT_HDR_SINGLE_STEP | HVT_HDR_KICKS)) |
                    (rec->track_writes ? HVT_HDR_WRITES : 0) |
                    (rec->step_inject ? HVT_HDR_STEP_INJECT : 0);
        h.h.backend_caps = p->ops->caps;
        h.h.inject_policy = (uint16_t)p->o.policy;
        h.str[HVT_STR_TOOL_VERSION] = "hvreplay " HVT_VERSION_STRING;
        h.str[HVT_STR_BACKEND] = p->ops->name;
        h.str[HVT_STR_BACKEND_VERSION] = bver;
        rec_host(vendor, sizeof(vendor), model, sizeof(model), kernel, sizeof(kernel));
        h.str[HVT_STR_CPU_VENDOR] = vendor;
        h.str[HVT_STR_CPU_MODEL] = model;
        h.str[HVT_STR_KERNEL] = kernel;
        h.argv = (const char *const *)p->o.argv;
        h.argc = p->o.argc;
        rec->t0 = rec_clock_now(&rec->clock);
        err = hvt_write_header(rec->w, &h);
        if (!err)
                err = rsrc_write_memory(p->src, rec->w);
        if (err)
                snprintf(p->why, sizeof(p->why), "writing %s: %s", p->o.output, strerror(-err));
        return err;
}

/* The end record and the close.  0 or -errno with why. */
static int replay_close(struct replay *p)
{
        struct recorder *rec = &p->rec;
        int err, cerr;

        err = rec_write_end(rec);
        cerr = hvt_writer_close(rec->w);
        rec->w = NULL;
        err = err ? err : cerr;
        if (err)
                snprintf(p->why, sizeof(p->why), "writing %s: %s", p->o.output, strerror(-err));
        return err;
}

double run_timeout(const struct rsrc *src, double factor, double base)
{
        return base + factor * (src->have_end ? (double)src->end.wall_ns / 1e9 : 1.0);
}

int run_exec(struct replay *p, const struct replay_req *q, struct rsrc *src)
{
        int err;

        memset(p, 0, sizeof(*p));
        p->src = src;
        p->exact = q->policy < 0;
        err = pick_backend(p, q);
        if (err)
                return err;
        replay_options(p, q);
        err = replay_vm(p);
        if (err)
                return err;
        err = replay_trace(p);
        if (err)
                goto err_vm;
        rsrc_input(p->src, p->exact, p->o.single_step, &p->in);
        p->src->lenient = q->lenient;
        p->rec.opts = &p->o;
        p->rec.input = &p->in;
        p->rec.console.fd = -1; /* the console is in the trace; stdout is the comparison's */
        err = signals_start(p->rec.b, q->timeout_s, 0, 0);
        if (err)
                rec_finish(&p->rec, HVT_END_ERROR, STATUS_ERROR, 0, "cannot set up timers: %s",
                           strerror(-err));
        rec_loop(&p->rec);
        signals_stop();
        p->rec.wall_ns = rec_clock_now(&p->rec.clock) - p->rec.t0;
        err = replay_close(p);

err_vm:
        if (p->rec.w)
                hvt_writer_close(p->rec.w);
        p->rec.w = NULL;
        disasm_close(p->rec.dis);
        p->ops->destroy(p->rec.b);
        return err;
}

void run_print_rate(const char *cmd, const struct replay *p)
{
        double secs = (double)p->rec.wall_ns / 1e9;

        fprintf(stderr,
                "hvreplay %s: %" PRIu64 " exits replayed on %s in %.3f s (%.0f exits/s, %" PRIu64
                " breakpoint stops short of a boundary); the replay ended: ",
                cmd, p->rec.seq, p->ops->name, secs, secs > 0 ? (double)p->rec.seq / secs : 0.0,
                p->src->bp_hits);
        replay_put_str(stderr, p->rec.msg);
        fputc('\n', stderr);
}

/* ---- hvreplay run ------------------------------------------------------------------- */

static void run_usage(FILE *f)
{
        fprintf(f, "Usage: hvreplay run [OPTIONS] TRACE\n"
                   "\n"
                   "Re-execute TRACE: rebuild the guest from its initial memory image and\n"
                   "vCPU set-up on a backend, feed it the recorded data of every IN and MMIO\n"
                   "read, stop it at every recorded kick, window and step exit (found by RIP\n"
                   "and the registers, a breakpoint at RIP until they match) and inject every\n"
                   "recorded interrupt at the same exit.  The replay is recorded into a new\n"
                   "trace and compared with TRACE as hvreplay diff compares them.  See\n"
                   "docs/replay.md.\n"
                   "\n"
                   "Options:\n"
                   "  --backend NAME   backend to replay on (default: the recorded one)\n"
                   "  --inject POLICY  window, eager or blind: the recorded interrupt requests\n"
                   "                   at the same points, injected under POLICY; the replay is\n"
                   "                   then checked (hvreplay check), not compared\n"
                   "  -o, --output F   write the replay's trace to F (a new file; default: a\n"
                   "                   temporary file, removed afterwards)\n"
                   "  --timeout S      end the replay after S seconds of wall time (default:\n"
                   "                   60 plus 10 times the recording's; 0: no limit)\n"
                   "  -q, --quiet      no summary line on stderr\n"
                   "  -h, --help       this text\n"
                   "\n"
                   "Exit status: 0 reproduced (with --inject: no violation); 1 diverged, the\n"
                   "first divergence shown (with --inject: violations); 2 an unreadable trace,\n"
                   "an unknown or unusable backend, bad usage.\n");
}

int run_temp_output(char *buf, size_t len)
{
        const char *dir = getenv("TMPDIR");
        int fd;

        snprintf(buf, len, "%s/hvreplay-XXXXXX.zst", dir && *dir ? dir : "/tmp");
        fd = mkstemps(buf, 4);
        if (fd < 0)
                return -errno;
        close(fd);
        unlink(buf); /* replay_trace creates it anew, exclusively */
        return 0;
}

/* Parse run's options into q.  Returns 0 to run, 1 after --help, -1 after an error. */
static int run_args(int argc, char **argv, struct replay_req *q)
{
        static const struct option opts[] = {
                { "backend", required_argument, NULL, 'b' },
                { "inject", required_argument, NULL, 'i' },
                { "output", required_argument, NULL, 'o' },
                { "quiet", no_argument, NULL, 'q' },
                { "timeout", required_argument, NULL, 't' },
                { "help", no_argument, NULL, 'h' },
                { 0 },
        };
        int c;

        q->policy = -1;
        q->timeout_s = -1; /* the default, once the recording is read */
        optind = 0;        /* 0, not 1: GNU getopt starts afresh and may take options after TRACE */
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":o:qh", opts, NULL)) != -1) {
                switch (c) {
                case 'b': q->backend = optarg; break;
                case 'i':
                        q->policy = hvt_policy_parse(optarg);
                        if (q->policy < 0 || q->policy == HVT_POLICY_BACKEND) {
                                fprintf(stderr,
                                        "hvreplay run: --inject: '%s' is not window, eager or "
                                        "blind\n",
                                        optarg);
                                return -1;
                        }
                        break;
                case 'o': q->output = optarg; break;
                case 'q': q->quiet = true; break;
                case 't':
                        if (rec_parse_seconds(optarg, true, &q->timeout_s)) {
                                fprintf(stderr,
                                        "hvreplay run: --timeout: '%s' is not a number of "
                                        "seconds (0 to 1000000)\n",
                                        optarg);
                                return -1;
                        }
                        break;
                case 'h': run_usage(stdout); return 1;
                default: replay_option_error("run", c, argv); return -1;
                }
        }
        if (optind + 1 != argc) {
                fprintf(stderr, "hvreplay run: give exactly one TRACE (see --help)\n");
                return -1;
        }
        q->trace = argv[optind];
        return 0;
}

/* Under --inject: the replay's own verdict, as hvreplay check gives it. */
static int report_check(const char *path)
{
        struct check_result res;
        int status;

        if (check_trace(path, &res)) {
                replay_error(path, res.error);
                check_result_free(&res);
                return REPLAY_ERROR;
        }
        printf("replay checked: %" PRIu64 " deliveries, %zu violation%s, %zu undetermined\n",
               res.deliveries, res.nviolations, res.nviolations == 1 ? "" : "s", res.nundetermined);
        status = res.nviolations ? REPLAY_FINDINGS : REPLAY_OK;
        check_result_free(&res);
        return status;
}

/* The replay's result: compared with the recording, or under --inject checked. */
static int report(const struct replay_req *q, const struct replay *p)
{
        struct diff_opts o;

        if (q->policy >= 0)
                return report_check(q->output);
        diff_default_opts(&o);
        /*
         * Across backends: DR6/DR7 at a step are how a backend reports it,
         * AF after a shift is how a CPU leaves an undefined flag.
         */
        if (strcmp(p->src->hdr->str[HVT_STR_BACKEND], p->ops->name))
                o.ignore_fields |= BIT(IGN_DEBUG_DR) | BIT(IGN_RFLAGS_AF);
        return diff_traces(&o, q->trace, q->output);
}

int cmd_run(int argc, char **argv)
{
        struct replay_req q = { .argc = argc, .argv = argv };
        char tmp[4096];
        struct replay *p;
        struct rsrc src;
        int st, status = REPLAY_ERROR;

        st = run_args(argc, argv, &q);
        if (st)
                return st > 0 ? REPLAY_OK : REPLAY_ERROR;
        if ((st = signals_install())) {
                fprintf(stderr, "hvreplay run: cannot install signal handlers: %s\n",
                        strerror(-st));
                return REPLAY_ERROR;
        }
        if (!q.output) {
                if (run_temp_output(tmp, sizeof(tmp))) {
                        fprintf(stderr, "hvreplay run: cannot create a temporary file: %s\n",
                                strerror(errno));
                        return REPLAY_ERROR;
                }
                q.output = tmp;
        }
        p = malloc(sizeof(*p));
        if (!p) {
                fprintf(stderr, "hvreplay run: out of memory\n");
                return REPLAY_ERROR;
        }
        if (rsrc_load(&src, q.trace, p->why, sizeof(p->why))) {
                replay_error(q.trace, p->why);
                goto err_free;
        }
        if (q.timeout_s < 0)
                q.timeout_s = run_timeout(&src, 10, 60);
        if (run_exec(p, &q, &src)) {
                replay_error(q.trace, p->why);
                goto err_src;
        }
        if (!q.quiet)
                run_print_rate("run", p);
        fflush(stderr);
        status = report(&q, p);
err_src:
        rsrc_free(&src);
err_free:
        free(p);
        if (q.output == tmp)
                unlink(tmp);
        return status;
}
