// SPDX-License-Identifier: MIT
/*
 * hvrec: the command layer.  It parses options, sets up the backend, the
 * guest and the trace, runs the loop, and is the only place that prints
 * errors and chooses the exit status.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "abi.h"
#include "exec.h"
#include "guest.h"
#include "loop.h"
#include "mode.h"
#include "output.h"
#include "recorder.h"
#include "signals.h"

static void usage(FILE *f)
{
        fprintf(f, "Usage: hvrec COMMAND [OPTIONS]\n"
                   "\n"
                   "Record every VM exit of a guest into an hvtrace trace.\n"
                   "\n"
                   "Commands:\n"
                   "  run [OPTIONS] GUEST   run GUEST and record it (hvrec run --help)\n"
                   "  exec [OPTIONS] -- VMM [ARGS...]\n"
                   "                        run a KVM VMM and record it (hvrec exec --help)\n"
                   "\n"
                   "Options:\n"
                   "  -h, --help            this text\n"
                   "  --version             print the version\n");
}

static uint64_t clock_ns(clockid_t id)
{
        struct timespec ts;

        clock_gettime(id, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int write_prologue(struct recorder *rec, const struct guest_image *g)
{
        char vendor[32], model[64], kernel[400], bver[160];
        struct hvt_header h = { 0 };
        uint64_t tables;
        int err;

        rec_host(vendor, sizeof(vendor), model, sizeof(model), kernel, sizeof(kernel));
        rec->b->ops->version(rec->b, bver, sizeof(bver));

        h.h.load_addr = g->elf ? g->seg[0].gpa : rec->opts->load_addr;
        h.h.entry = rec->opts->entry;
        h.h.mem_size = rec->opts->mem_size;
        h.h.seed = rec->opts->seed;
        h.h.start_realtime_ns = clock_ns(CLOCK_REALTIME);
        h.h.guest_mode = rec->opts->mode;
        h.h.flags = (rec->opts->single_step ? HVT_HDR_SINGLE_STEP : 0) |
                    (rec->opts->kick_usec ? HVT_HDR_KICKS : 0) |
                    (rec->track_writes ? HVT_HDR_WRITES : 0) |
                    (rec->step_inject ? HVT_HDR_STEP_INJECT : 0);
        h.h.backend_caps = rec->b->ops->caps;
        h.h.inject_policy = (uint16_t)rec->opts->policy;
        h.str[HVT_STR_TOOL_VERSION] = "hvrec " HVT_VERSION_STRING;
        h.str[HVT_STR_BACKEND] = rec->b->ops->name;
        h.str[HVT_STR_BACKEND_VERSION] = bver;
        h.str[HVT_STR_CPU_VENDOR] = vendor;
        h.str[HVT_STR_CPU_MODEL] = model;
        h.str[HVT_STR_KERNEL] = kernel;
        h.str[HVT_STR_GUEST] = rec->opts->guest;
        h.argv = (const char *const *)rec->opts->argv;
        h.argc = rec->opts->argc;

        err = hvt_write_header(rec->w, &h);
        if (err)
                return err;
        /*
         * The initial image, so traces stand alone: what hvrec wrote into RAM,
         * which starts all zero, as readers assume.  Not all of RAM: 64 GiB
         * of zeros took half a minute to scan.
         */
        for (int i = 0; i < g->nseg; i++) {
                const struct guest_segment *s = &g->seg[i];

                err = hvt_write_memory(rec->w, s->gpa, rec->b->mem + s->gpa, s->filesz);
                if (err)
                        return err;
        }
        tables = mode_tables_base(rec->opts->mode, rec->b->mem_size);
        if (tables < rec->b->mem_size)
                err = hvt_write_memory(rec->w, tables, rec->b->mem + tables,
                                       rec->b->mem_size - tables);
        return err;
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
        const char *out = strcmp(rec->opts->output, "-") ? rec->opts->output : "stdout";
        int first = 1;

        fprintf(stderr, "hvrec: %s\n", rec->msg);
        fprintf(stderr, "  exits        %" PRIu64 "%s (", rec->seq, rec->write_err ? " run" : "");
        for (unsigned r = 0; r < HVT_EXIT_REASON_COUNT; r++) {
                if (!rec->by_reason[r])
                        continue;
                fprintf(stderr, "%s%s %" PRIu64, first ? "" : ", ", hvt_exit_reason_name(r),
                        rec->by_reason[r]);
                first = 0;
        }
        fprintf(stderr, ")%s\n",
                rec->write_err ? "; the trace holds only those in the frames written before "
                                 "the error, and no end record"
                               : "");
        fprintf(stderr,
                "  interrupts   %" PRIu64 " raised, %" PRIu64 " injected (policy %s), %" PRIu64
                " deliveries seen by the probe\n",
                rec->raises, rec->injections, hvt_policy_name(rec->opts->policy), rec->deliveries);
        fprintf(stderr, "  wall time    %.3f s, %.0f exits/s\n", secs,
                secs > 0 ? (double)rec->seq / secs : 0.0);
        if (rec->write_err)
                fprintf(stderr, "  trace        %s: %" PRIu64 " bytes written before the error\n",
                        out, trace_bytes);
        else
                fprintf(stderr, "  trace        %s: %" PRIu64 " bytes, %.2f bytes/exit\n", out,
                        trace_bytes, rec->seq ? (double)trace_bytes / (double)rec->seq : 0.0);
        if (rec->console.err)
                fprintf(stderr,
                        "  console      %s stopped after a write error (%s); the trace has all "
                        "of it\n",
                        rec->console.name, strerror(rec->console.err));
}

/*
 * --track-writes and --step-inject against what the backend can do: an
 * explicit yes it cannot honour is an error, the default follows the
 * backend.  Returns 0, or -EINVAL after printing why.
 */
static int resolve_tracking(const struct backend_ops *ops, const struct rec_opts *o,
                            struct recorder *rec)
{
        bool can_writes = (ops->caps & HVT_CAP_WRITES) && ops->take_writes;
        bool can_step = (ops->caps & HVT_CAP_SINGLE_STEP) && ops->set_single_step;

        if (o->track_writes > 0 && !can_writes) {
                fprintf(stderr,
                        "hvrec: --track-writes yes: backend %s cannot report guest writes\n",
                        ops->name);
                return -EINVAL;
        }
        if (o->step_inject > 0 && (ops->caps & HVT_CAP_IRQCHIP)) {
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
        rec->step_inject = o->step_inject != 0 && can_step && !(ops->caps & HVT_CAP_IRQCHIP) &&
                           !o->single_step;
        return 0;
}

/* --nmi and --kick USEC:nmi need a backend that injects NMIs; -EINVAL after printing why. */
static int check_nmi(const struct backend_ops *ops, const struct rec_opts *o)
{
        bool nmi = o->kick_nmi;

        for (size_t i = 0; i < o->nirqs; i++)
                nmi |= o->irqs[i].nmi;
        if (!nmi || ops->inject_nmi)
                return 0;
        fprintf(stderr, "hvrec: %s: backend %s cannot inject NMIs (kvm and emu can)\n",
                o->kick_nmi ? "--kick USEC:nmi" : "--nmi", ops->name);
        return -EINVAL;
}

/*
 * The end record, the last flush and the close.  A write that fails here
 * and not before makes the run an error after all (the trace lacks its
 * end); one that failed before is not reported again.  Returns the size
 * of the trace.
 */
static uint64_t close_trace(struct recorder *rec, struct output *out)
{
        uint64_t bytes;
        struct stat st;
        int err, cerr;

        err = rec_write_end(rec);
        bytes = hvt_writer_bytes(rec->w);
        cerr = hvt_writer_close(rec->w);
        rec->w = NULL;
        err = err ? err : cerr;
        if (err && !rec->write_err) {
                char was[sizeof(rec->msg)];

                memcpy(was, rec->msg, sizeof(was));
                rec->write_err = err;
                rec->why = HVT_END_ERROR;
                rec->status = STATUS_ERROR;
                snprintf(rec->msg, sizeof(rec->msg), "writing %s: %s (the run had ended: %.120s)",
                         rec->opts->output, strerror(-err), was);
        }
        /* A regular file's size is what reached it, even after a short write. */
        if (out->size_fd >= 0 && !fstat(out->size_fd, &st))
                bytes = (uint64_t)st.st_size;
        return bytes;
}

/* One `hvrec run`: what it sets up, in this order, and releases in reverse. */
struct run {
        struct rec_opts o;
        struct guest_image g;
        const struct backend_ops *ops;
        struct output out;
        struct recorder rec;
};

/* Parse the options and fill in the defaults that depend on nothing else. */
static enum opts_result run_options(struct run *r, int argc, char **argv, int full_argc,
                                    char **full_argv)
{
        struct rec_opts *o = &r->o;
        char why[512];
        enum opts_result res = rec_opts_parse(argc, argv, o, why, sizeof(why));

        if (res == OPTS_ERROR)
                fprintf(stderr, "hvrec: %s\n", why);
        if (res != OPTS_RUN)
                return res;
        o->argc = full_argc;
        o->argv = full_argv;
        if (!o->seed_set)
                o->seed = clock_ns(CLOCK_REALTIME) ^ ((uint64_t)getpid() << 32);
        r->rec.opts = o;
        /* With the trace on stdout, the console must not mix into it. */
        r->rec.console.fd = strcmp(o->output, "-") ? STDOUT_FILENO : STDERR_FILENO;
        r->rec.console.name = strcmp(o->output, "-") ? "stdout" : "stderr";
        r->rec.console.raw = o->raw_console;
        return OPTS_RUN;
}

/*
 * Read and check the guest, before anything about the backend: a bad guest
 * is reported whatever the backend.  Returns 0 with r->g open, or -errno.
 */
static int run_guest(struct run *r)
{
        const struct backend_ops *ops;
        struct rec_opts *o = &r->o;
        char why[512];
        int err;

        err = guest_open(o->guest, o->load_addr, o->mem_size, &r->g, why, sizeof(why));
        if (err) {
                fprintf(stderr, "hvrec: %s\n", why);
                return err;
        }
        if (!o->mode)
                o->mode = r->g.mode;
        ops = backend_find(o->backend);
        if (ops && ops->paged_mem && o->mode != HVT_MODE_REAL) {
                if (!o->mem_set) {
                        o->mem_size = ops->paged_mem;
                } else if (o->mem_size < ops->paged_mem) {
                        /* Said here: the backend's set_state can only fail with -ERANGE. */
                        fprintf(stderr,
                                "hvrec: --mem: %s needs at least %" PRIu64
                                "K in protected and long mode (hvrec's tables must not fall in "
                                "its ROM window)\n",
                                ops->name, ops->paged_mem >> 10);
                        guest_close(&r->g);
                        return -EINVAL;
                }
        }
        if (!o->entry_set)
                o->entry = r->g.entry;
        err = guest_check(&r->g, o->mem_size, mode_tables_base(o->mode, o->mem_size), why,
                          sizeof(why));
        if (err) {
                fprintf(stderr, "hvrec: %s\n", why);
                guest_close(&r->g);
                return err;
        }
        return 0;
}

/*
 * The backend --backend names, if it can do what the options ask and can
 * run on this machine.  Returns 0 with r->ops set, or -errno.
 */
static int run_backend(struct run *r)
{
        const struct backend_ops *ops = backend_find(r->o.backend);
        struct rec_opts *o = &r->o;
        char why[512];

        /* What the backend cannot do is known without probing it. */
        if (resolve_tracking(ops, o, &r->rec) || check_nmi(ops, o))
                return -EINVAL;
        if (ops->probe(why, sizeof(why))) {
                fprintf(stderr, "hvrec: backend %s is not usable here: %s%s\n", ops->name, why,
                        other_backend_hint(ops));
                return -ENODEV;
        }
        if (ops->caps & HVT_CAP_IRQCHIP) {
                /* The backend's own irqchip decides when to inject: no policy of ours applies. */
                if (o->policy_set) {
                        fprintf(stderr,
                                "hvrec: --inject does not apply to backend %s: its in-kernel "
                                "irqchip decides when to inject\n",
                                ops->name);
                        return -EINVAL;
                }
                o->policy = HVT_POLICY_BACKEND;
        }
        if (o->single_step && !(ops->caps & HVT_CAP_SINGLE_STEP)) {
                fprintf(stderr, "hvrec: backend %s cannot single-step\n", ops->name);
                return -EINVAL;
        }
        r->ops = ops;
        return 0;
}

/*
 * The VM with the guest in place and its mode set up, and the disassembler
 * the records need.  Returns 0 with r->rec.b and r->rec.dis open, or
 * -errno with neither.
 */
static int run_vm(struct run *r)
{
        const struct rec_opts *o = &r->o;
        struct recorder *rec = &r->rec;
        struct backend_config cfg = { .mem_size = o->mem_size };
        char why[512];
        int err;

        err = r->ops->create(&cfg, &rec->b, why, sizeof(why));
        if (err) {
                fprintf(stderr, "hvrec: cannot create a %s VM: %s\n", r->ops->name, why);
                return err;
        }
        rec->mem.ram = rec->b->mem;
        rec->mem.size = rec->b->mem_size;
        if ((err = guest_place(&r->g, rec->b, why, sizeof(why))) ||
            (err = mode_setup(rec->b, o->mode, o->entry, o->load_addr, why, sizeof(why)))) {
                fprintf(stderr, "hvrec: %s\n", why);
                goto err_backend;
        }
        if (o->single_step && (err = r->ops->set_single_step(rec->b, true))) {
                fprintf(stderr, "hvrec: cannot single-step: %s\n", strerror(-err));
                goto err_backend;
        }
        /* What loading wrote is in the MEMORY records: WRITE records start from the first run. */
        if (rec->track_writes && (err = rec_drop_writes(rec))) {
                fprintf(stderr, "hvrec: cannot track guest writes: %s\n", strerror(-err));
                goto err_backend;
        }
        err = disasm_open(&rec->dis);
        if (err) {
                fprintf(stderr, "hvrec: cannot open capstone: %s\n", strerror(-err));
                goto err_backend;
        }
        return 0;

err_backend:
        r->ops->destroy(rec->b);
        rec->b = NULL;
        return err;
}

/*
 * Open -o and write the trace's prologue; arm the deterministic kicks.
 * Returns 0 with r->out and the writer open, or -errno with neither and
 * hvrec's exit status in *status.
 */
static int run_trace(struct run *r, const struct hvt_writer_opts *wopts, int *status)
{
        const struct rec_opts *o = &r->o;
        struct recorder *rec = &r->rec;
        char why[512];
        sigset_t mask;
        int err;

        *status = STATUS_ERROR;
        err = open_output(o->output, &r->out, why, sizeof(why));
        if (err && signals_stop_signo()) {
                /* Waiting for a FIFO's reader, say: no trace, but the status of the signal. */
                fprintf(stderr, "hvrec: stopped by signal %d before the trace was created\n",
                        signals_stop_signo());
                *status = STATUS_SIGNAL0 + signals_stop_signo();
                return err;
        }
        if (err) {
                fprintf(stderr, "hvrec: %s\n", why);
                return err;
        }
        /* The writer's flush thread inherits the mask: signals go to the thread running the guest.
         */
        signals_block(&mask);
        err = hvt_writer_fdopen(&rec->w, r->out.fd, wopts);
        signals_unblock(&mask);
        if (err) {
                fprintf(stderr, "hvrec: cannot write the trace to %s: %s\n", o->output,
                        strerror(-err));
                goto err_output;
        }
        if (r->out.kept[0] && !o->quiet)
                fprintf(stderr, "hvrec: kept the existing %s as %s%s\n", o->output, o->output,
                        r->out.kept);
        rec->t0 = rec_clock_now(&rec->clock);
        err = write_prologue(rec, &r->g);
        if (err) {
                fprintf(stderr, "hvrec: writing %s: %s\n", o->output, strerror(-err));
                goto err_writer;
        }
        if (o->kick_usec && r->ops->set_kick_budget) {
                err = r->ops->set_kick_budget(rec->b, o->kick_usec, o->seed);
                if (err) {
                        fprintf(stderr, "hvrec: --kick: %s\n", strerror(-err));
                        goto err_writer;
                }
        }
        return 0;

err_writer:
        hvt_writer_close(rec->w);
        rec->w = NULL;
err_output:
        if (r->out.size_fd >= 0)
                close(r->out.size_fd);
        r->out.size_fd = -1;
        return err;
}

/* Run the guest to its end, close the trace and report.  Returns hvrec's exit status. */
static int run_record(struct run *r)
{
        struct recorder *rec = &r->rec;
        const struct rec_opts *o = &r->o;
        uint64_t trace_bytes;
        int err;

        err = signals_start(rec->b, o->timeout_s, r->ops->set_kick_budget ? 0 : o->kick_usec,
                            o->seed);
        if (err)
                rec_finish(rec, HVT_END_ERROR, STATUS_ERROR, 0, "cannot set up timers: %s",
                           strerror(-err));

        rec_loop(rec);
        signals_stop();
        rec->wall_ns = rec_clock_now(&rec->clock) - rec->t0;
        abi_console_flush(rec);

        trace_bytes = close_trace(rec, &r->out);
        if (r->out.size_fd >= 0)
                close(r->out.size_fd);
        r->out.size_fd = -1;
        /*
         * --quiet drops the summary, never the reason a run ended abnormally,
         * nor the guest's status behind a 205.
         */
        if (!o->quiet)
                print_summary(rec, trace_bytes);
        else if ((rec->why != HVT_END_GUEST_EXIT && rec->why != HVT_END_HALT) ||
                 rec->status == STATUS_GUEST_HIGH)
                fprintf(stderr, "hvrec: %s\n", rec->msg);
        return rec->status;
}

static int cmd_run(int argc, char **argv, int full_argc, char **full_argv)
{
        static const struct hvt_writer_opts wopts = { .size = sizeof(wopts),
                                                      .background_flush = 1 };
        struct run r = { .out = { .fd = -1, .size_fd = -1 } };
        int err, status = STATUS_ERROR;

        switch (run_options(&r, argc, argv, full_argc, full_argv)) {
        case OPTS_EXIT_OK: return 0;
        case OPTS_ERROR: return STATUS_ERROR;
        case OPTS_RUN: break;
        }
        /* From here on a stop signal is a flag: the run still ends with an end record. */
        err = signals_install();
        if (err) {
                fprintf(stderr, "hvrec: cannot install signal handlers: %s\n", strerror(-err));
                return STATUS_ERROR;
        }
        if (run_guest(&r))
                return STATUS_ERROR;
        if (!run_backend(&r) && !run_vm(&r)) {
                if (!run_trace(&r, &wopts, &status))
                        status = run_record(&r);
                disasm_close(r.rec.dis);
                r.ops->destroy(r.rec.b);
        }
        guest_close(&r.g);
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
                printf("hvrec %s (trace format %d)\n", HVT_VERSION_STRING, HVT_FORMAT_VERSION);
                return 0;
        }
        if (!strcmp(argv[1], "run"))
                return cmd_run(argc - 1, argv + 1, argc, argv);
        if (!strcmp(argv[1], "exec"))
                return cmd_exec(argc - 1, argv + 1);
        fprintf(stderr, "hvrec: unknown command '%s' (try hvrec --help)\n", argv[1]);
        return STATUS_ERROR;
}
