// SPDX-License-Identifier: MIT
/*
 * hvrec: the command layer.  It parses options, sets up the backend, the
 * guest and the trace, runs the loop, and is the only place that prints
 * errors and chooses the exit status.
 */
#include <cpuid.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "guest.h"
#include "mode.h"
#include "recorder.h"
#include "signals.h"

#ifndef HVTRACE_VERSION
#define HVTRACE_VERSION "0.0.0"
#endif

static void usage(FILE *f)
{
        fprintf(f, "Usage: hvrec COMMAND [OPTIONS]\n"
                   "\n"
                   "Record every VM exit of a guest into an hvtrace trace.\n"
                   "\n"
                   "Commands:\n"
                   "  run [OPTIONS] GUEST   run GUEST and record it (hvrec run --help)\n"
                   "\n"
                   "Options:\n"
                   "  -h, --help            this text\n"
                   "  --version             print the version\n");
}

static void host_cpu(char *vendor, size_t vlen, char *model, size_t mlen)
{
        unsigned a, b, c, d, regs[12];

        snprintf(vendor, vlen, "unknown");
        snprintf(model, mlen, "unknown");
        if (__get_cpuid(0, &a, &b, &c, &d)) {
                char v[13];

                memcpy(v, &b, 4);
                memcpy(v + 4, &d, 4);
                memcpy(v + 8, &c, 4);
                v[12] = 0;
                snprintf(vendor, vlen, "%s", v);
        }
        if (__get_cpuid(0x80000000, &a, &b, &c, &d) && a >= 0x80000004) {
                char m[49], *p = m;

                for (unsigned i = 0; i < 3; i++)
                        __get_cpuid(0x80000002 + i, &regs[4 * i], &regs[4 * i + 1],
                                    &regs[4 * i + 2], &regs[4 * i + 3]);
                memcpy(m, regs, 48);
                m[48] = 0;
                while (*p == ' ')
                        p++;
                snprintf(model, mlen, "%s", p);
        }
}

static uint64_t clock_ns(clockid_t id)
{
        struct timespec ts;

        clock_gettime(id, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Keep an existing trace as FILE.old rather than destroying it. */
static int keep_old_output(const char *path, bool quiet)
{
        char old[4096];
        struct stat st;

        if (stat(path, &st))
                return 0;
        if (snprintf(old, sizeof(old), "%s.old", path) >= (int)sizeof(old))
                return -ENAMETOOLONG;
        if (rename(path, old))
                return -errno;
        if (!quiet)
                fprintf(stderr, "hvrec: kept the existing %s as %s\n", path, old);
        return 0;
}

static int write_prologue(struct recorder *rec, const struct guest_image *g)
{
        char vendor[32], model[64], kernel[400], bver[160];
        struct trace_header h = { 0 };
        struct utsname u;
        int err;

        host_cpu(vendor, sizeof(vendor), model, sizeof(model));
        if (uname(&u))
                snprintf(kernel, sizeof(kernel), "unknown");
        else
                snprintf(kernel, sizeof(kernel), "%s %s %s %s", u.sysname, u.release, u.version,
                         u.machine);
        rec->b->ops->version(rec->b, bver, sizeof(bver));

        h.h.load_addr = g->elf ? g->seg[0].gpa : rec->opts->load_addr;
        h.h.entry = rec->opts->entry;
        h.h.mem_size = rec->opts->mem_size;
        h.h.seed = rec->opts->seed;
        h.h.start_realtime_ns = clock_ns(CLOCK_REALTIME);
        h.h.guest_mode = rec->opts->mode;
        h.h.flags = (rec->opts->single_step ? TRACE_HDR_SINGLE_STEP : 0) |
                    (rec->opts->kick_usec ? TRACE_HDR_KICKS : 0) |
                    (rec->track_writes ? TRACE_HDR_WRITES : 0) |
                    (rec->step_inject ? TRACE_HDR_STEP_INJECT : 0);
        h.h.backend_caps = rec->b->ops->caps;
        h.h.inject_policy = (uint16_t)rec->opts->policy;
        h.str[TRACE_STR_TOOL_VERSION] = "hvrec " HVTRACE_VERSION;
        h.str[TRACE_STR_BACKEND] = rec->b->ops->name;
        h.str[TRACE_STR_BACKEND_VERSION] = bver;
        h.str[TRACE_STR_CPU_VENDOR] = vendor;
        h.str[TRACE_STR_CPU_MODEL] = model;
        h.str[TRACE_STR_KERNEL] = kernel;
        h.str[TRACE_STR_GUEST] = rec->opts->guest;
        h.argv = (const char *const *)rec->opts->argv;
        h.argc = rec->opts->argc;

        err = trace_write_header(rec->w, &h);
        if (err)
                return err;
        /* The whole initial image, hvrec's own tables included: traces stand alone. */
        return trace_write_memory(rec->w, 0, rec->b->mem, rec->b->mem_size);
}

/* "; try --backend NAME" for the first other backend usable here, or "". */
static const char *other_backend_hint(const struct backend_ops *failed)
{
        static char hint[64];
        char why[160];

        for (size_t i = 0; i < backend_count(); i++) {
                const struct backend_ops *ops = backend_at(i);

                if (ops != failed && !ops->probe(why, sizeof(why))) {
                        snprintf(hint, sizeof(hint), "; try --backend %s", ops->name);
                        return hint;
                }
        }
        return "";
}

static void print_summary(const struct recorder *rec, uint64_t trace_bytes)
{
        double secs = (double)rec->wall_ns / 1e9;
        int first = 1;

        fprintf(stderr, "hvrec: %s\n", rec->msg);
        fprintf(stderr, "  exits        %" PRIu64 " (", rec->seq);
        for (unsigned r = 0; r < TRACE_EXIT_REASON_COUNT; r++) {
                if (!rec->by_reason[r])
                        continue;
                fprintf(stderr, "%s%s %" PRIu64, first ? "" : ", ", trace_exit_reason_name(r),
                        rec->by_reason[r]);
                first = 0;
        }
        fprintf(stderr, ")\n");
        fprintf(stderr,
                "  interrupts   %" PRIu64 " raised, %" PRIu64 " injected (policy %s), %" PRIu64
                " deliveries seen by the probe\n",
                rec->raises, rec->injections, trace_policy_name(rec->opts->policy),
                rec->deliveries);
        fprintf(stderr, "  wall time    %.3f s, %.0f exits/s\n", secs,
                secs > 0 ? (double)rec->seq / secs : 0.0);
        fprintf(stderr, "  trace        %s: %" PRIu64 " bytes, %.2f bytes/exit\n",
                rec->opts->output, trace_bytes,
                rec->seq ? (double)trace_bytes / (double)rec->seq : 0.0);
}

/*
 * --track-writes and --step-inject against what the backend can do: an
 * explicit yes it cannot honour is an error, the default follows the
 * backend.  Returns 0, or -EINVAL after printing why.
 */
static int resolve_tracking(const struct backend_ops *ops, const struct rec_opts *o,
                            struct recorder *rec)
{
        bool can_writes = (ops->caps & TRACE_CAP_WRITES) && ops->take_writes;
        bool can_step = (ops->caps & TRACE_CAP_SINGLE_STEP) && ops->set_single_step;

        if (o->track_writes > 0 && !can_writes) {
                fprintf(stderr,
                        "hvrec: --track-writes yes: backend %s cannot report guest writes\n",
                        ops->name);
                return -EINVAL;
        }
        if (o->step_inject > 0 && (ops->caps & TRACE_CAP_IRQCHIP)) {
                fprintf(stderr,
                        "hvrec: --step-inject does not apply to backend %s: its in-kernel "
                        "irqchip injects\n",
                        ops->name);
                return -EINVAL;
        }
        if (o->step_inject > 0 && !can_step) {
                fprintf(stderr, "hvrec: --step-inject yes: backend %s cannot single-step\n",
                        ops->name);
                return -EINVAL;
        }
        rec->track_writes = o->track_writes < 0 ? can_writes : o->track_writes > 0;
        /* Under --single-step every instruction is already a recorded exit. */
        rec->step_inject = o->step_inject != 0 && can_step && !(ops->caps & TRACE_CAP_IRQCHIP) &&
                           !o->single_step;
        return 0;
}

static int cmd_run(int argc, char **argv, int full_argc, char **full_argv)
{
        struct trace_writer_opts wopts = { .background_flush = 1 };
        struct recorder rec = { 0 };
        struct backend_config cfg;
        const struct backend_ops *ops;
        struct guest_image g;
        struct rec_opts o;
        struct trace_disk_end end = { 0 };
        char why[512];
        uint64_t trace_bytes;
        int err, status;

        switch (rec_opts_parse(argc, argv, &o, why, sizeof(why))) {
        case OPTS_EXIT_OK: return 0;
        case OPTS_ERROR: fprintf(stderr, "hvrec: %s\n", why); return STATUS_ERROR;
        case OPTS_RUN: break;
        }
        o.argc = full_argc;
        o.argv = full_argv;
        if (!o.seed_set)
                o.seed = clock_ns(CLOCK_REALTIME) ^ ((uint64_t)getpid() << 32);
        rec.opts = &o;

        /* The guest first: a bad guest is reported whatever the backend. */
        if (guest_open(o.guest, o.load_addr, o.mem_size, &g, why, sizeof(why))) {
                fprintf(stderr, "hvrec: %s\n", why);
                return STATUS_ERROR;
        }
        if (!o.mode)
                o.mode = g.mode;
        if (!o.entry_set)
                o.entry = g.entry;
        if (guest_check(&g, o.mem_size, mode_tables_base(o.mode, o.mem_size), why, sizeof(why))) {
                fprintf(stderr, "hvrec: %s\n", why);
                status = STATUS_ERROR;
                goto out_guest;
        }

        ops = backend_find(o.backend);
        /* What the backend cannot do is known without probing it. */
        if (resolve_tracking(ops, &o, &rec)) {
                status = STATUS_ERROR;
                goto out_guest;
        }
        if (ops->probe(why, sizeof(why))) {
                fprintf(stderr, "hvrec: backend %s is not usable here: %s%s\n", ops->name, why,
                        other_backend_hint(ops));
                status = STATUS_ERROR;
                goto out_guest;
        }
        if (ops->caps & TRACE_CAP_IRQCHIP) {
                /* The backend's own irqchip decides when to inject: no policy of ours applies. */
                if (o.policy_set) {
                        fprintf(stderr,
                                "hvrec: --inject does not apply to backend %s: its in-kernel "
                                "irqchip decides when to inject\n",
                                ops->name);
                        status = STATUS_ERROR;
                        goto out_guest;
                }
                o.policy = TRACE_POLICY_BACKEND;
        }
        if (o.single_step && !(ops->caps & TRACE_CAP_SINGLE_STEP)) {
                fprintf(stderr, "hvrec: backend %s cannot single-step\n", ops->name);
                status = STATUS_ERROR;
                goto out_guest;
        }

        cfg.mem_size = o.mem_size;
        err = ops->create(&cfg, &rec.b, why, sizeof(why));
        if (err) {
                fprintf(stderr, "hvrec: cannot create a %s VM: %s\n", ops->name, why);
                status = STATUS_ERROR;
                goto out_guest;
        }
        rec.mem.ram = rec.b->mem;
        rec.mem.size = rec.b->mem_size;
        if (guest_place(&g, rec.b, why, sizeof(why)) ||
            mode_setup(rec.b, o.mode, o.entry, o.load_addr, why, sizeof(why))) {
                fprintf(stderr, "hvrec: %s\n", why);
                status = STATUS_ERROR;
                goto out_backend;
        }
        if (o.single_step && (err = ops->set_single_step(rec.b, true))) {
                fprintf(stderr, "hvrec: cannot single-step: %s\n", strerror(-err));
                status = STATUS_ERROR;
                goto out_backend;
        }
        /* What loading wrote is in the MEMORY records: WRITE records start from the first run. */
        if (rec.track_writes && (err = rec_drop_writes(&rec))) {
                fprintf(stderr, "hvrec: cannot track guest writes: %s\n", strerror(-err));
                status = STATUS_ERROR;
                goto out_backend;
        }
        err = disasm_open(&rec.dis);
        if (err) {
                fprintf(stderr, "hvrec: cannot open capstone: %s\n", strerror(-err));
                status = STATUS_ERROR;
                goto out_backend;
        }

        err = keep_old_output(o.output, o.quiet);
        if (!err)
                err = trace_writer_open(&rec.w, o.output, &wopts);
        if (err) {
                fprintf(stderr, "hvrec: cannot create %s: %s\n", o.output, strerror(-err));
                status = STATUS_ERROR;
                goto out_disasm;
        }
        rec.t0 = rec_now_ns();
        err = write_prologue(&rec, &g);
        if (err) {
                fprintf(stderr, "hvrec: writing %s: %s\n", o.output, strerror(-err));
                trace_writer_close(rec.w);
                status = STATUS_ERROR;
                goto out_disasm;
        }
        if (o.kick_usec && ops->set_kick_budget) {
                err = ops->set_kick_budget(rec.b, o.kick_usec, o.seed);
                if (err) {
                        fprintf(stderr, "hvrec: --kick: %s\n", strerror(-err));
                        status = STATUS_ERROR;
                        trace_writer_close(rec.w);
                        goto out_disasm;
                }
        }
        err = signals_start(rec.b, o.timeout_s, ops->set_kick_budget ? 0 : o.kick_usec, o.seed);
        if (err) {
                rec_finish(&rec, TRACE_END_ERROR, STATUS_ERROR, 0, "cannot set up timers: %s",
                           strerror(-err));
        }

        rec_loop(&rec);
        signals_stop();
        rec.wall_ns = rec_now_ns() - rec.t0;
        fflush(stdout);

        end.exits = rec.seq;
        end.wall_ns = rec.wall_ns;
        end.last_rip = rec.ex.st.rip;
        end.why = rec.why;
        end.status = rec.status;
        end.detail = rec.detail;
        err = trace_write_end(rec.w, &end, rec.msg);
        trace_bytes = trace_writer_bytes(rec.w);
        {
                int cerr = trace_writer_close(rec.w);

                err = err ? err : cerr;
        }
        if (err) {
                fprintf(stderr, "hvrec: writing %s: %s\n", o.output, strerror(-err));
                if (rec.why != TRACE_END_ERROR)
                        rec.status = STATUS_ERROR;
        } else {
                struct stat st;

                if (!stat(o.output, &st))
                        trace_bytes = (uint64_t)st.st_size;
        }
        status = rec.status;
        /* --quiet drops the summary, never the reason a run ended abnormally. */
        if (!o.quiet)
                print_summary(&rec, trace_bytes);
        else if (rec.why != TRACE_END_GUEST_EXIT && rec.why != TRACE_END_HALT)
                fprintf(stderr, "hvrec: %s\n", rec.msg);

out_disasm:
        disasm_close(rec.dis);
out_backend:
        ops->destroy(rec.b);
out_guest:
        guest_close(&g);
        return status;
}

int main(int argc, char **argv)
{
        if (argc < 2) {
                usage(stderr);
                return STATUS_ERROR;
        }
        if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
                usage(stdout);
                return 0;
        }
        if (!strcmp(argv[1], "--version")) {
                printf("hvrec %s (trace format %d)\n", HVTRACE_VERSION, TRACE_FORMAT_VERSION);
                return 0;
        }
        if (!strcmp(argv[1], "run"))
                return cmd_run(argc - 1, argv + 1, argc, argv);
        fprintf(stderr, "hvrec: unknown command '%s' (try hvrec --help)\n", argv[1]);
        return STATUS_ERROR;
}
