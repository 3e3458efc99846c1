// SPDX-License-Identifier: MIT
/*
 * hvreplay export: a trace as a timeline for ui.perfetto.dev or
 * chrome://tracing.  This file turns the trace into events; export_json.c
 * and export_perfetto.c encode them.
 *
 * An exit is a slice from the exit to the next entry into the guest: the
 * next exit's time less the time the guest ran before it (what stats calls
 * host time).  So a slice is only complete when the next exit is read: the
 * current one, with the injections, deliveries and violations at it, is
 * held until then, which keeps the output in time order.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "export.h"
#include "replay.h"

/* The exit rate is counted in windows of this many ns. */
#define RATE_WINDOW_NS 1000000ull

static const struct export_sink_ops *const sinks[] = {
        &export_json_ops,
        &export_perfetto_ops,
};

static const char *const track_names[] = {
        [EXPORT_TRACK_VCPU] = "vCPU 0",
        [EXPORT_TRACK_VIOLATIONS] = "vCPU 0 violations (hvreplay check)",
        [EXPORT_TRACK_RATE] = "exit rate (exits/s)",
};
_Static_assert(sizeof(track_names) / sizeof(track_names[0]) == EXPORT_TRACK_COUNT,
               "name every track");

struct exporter {
        struct export_out out;
        struct disasm *d;
        const struct check_result *check;
        const struct check_finding **findings; /* violations and undetermined, by event */
        size_t nfindings, next_finding;

        bool have_exit; /* `exit` holds the slice of the last exit read */
        struct export_event exit;
        struct export_event *instants; /* at that exit, in trace order */
        size_t ninstants, instants_cap;

        uint64_t window, window_exits; /* the rate window of the last exit, and its exits */
        bool have_window;
        int err; /* the first failure: -errno */
};

static void usage(FILE *f)
{
        fprintf(f, "Usage: hvreplay export [--format FORMAT] TRACE -o FILE\n"
                   "\n"
                   "Write TRACE as a timeline that ui.perfetto.dev and chrome://tracing open:\n"
                   "one track per vCPU with each exit as a slice from the exit to the next\n"
                   "entry, named by its reason (RIP, instruction, port, data and the reported\n"
                   "shadow/ready as arguments), injections and deliveries as instants; the\n"
                   "violations and undetermined deliveries of hvreplay check as instants on a\n"
                   "track of their own, named VIOLATION: RULE; the exit rate per millisecond\n"
                   "window as a counter.  See docs/visualise.md.\n"
                   "\n"
                   "Options:\n"
                   "  --format FORMAT   chrome-json (default): the Trace Event Format, ts in us;\n"
                   "                    perfetto: Perfetto TracePacket protobuf\n"
                   "  -o, --output FILE the file to write (- for stdout); required\n"
                   "  -h, --help        this text\n"
                   "\n"
                   "A damaged trace is exported up to its last complete record; the reason\n"
                   "goes to stderr and the exit status is 2.\n");
}

/* ---- building events ----------------------------------------------------- */

static void ev_init(struct export_event *ev, enum export_kind kind, enum export_track track,
                    uint64_t ts, const char *cat)
{
        ev->kind = kind;
        ev->track = track;
        ev->ts_ns = ts;
        ev->dur_ns = 0;
        ev->value = 0;
        ev->loud = false;
        ev->name[0] = 0;
        ev->cat = cat;
        ev->nargs = 0;
        ev->text_len = 0;
}

static struct export_arg *ev_arg(struct export_event *ev, const char *key,
                                 enum export_arg_type type, uint64_t u)
{
        struct export_arg *a;

        /* The callers add at most EXPORT_MAX_ARGS; a silent cap keeps a slip harmless. */
        if (ev->nargs == EXPORT_MAX_ARGS)
                return NULL;
        a = &ev->args[ev->nargs++];
        a->key = key;
        a->type = type;
        a->u = u;
        a->s = "";
        return a;
}

static void ev_str(struct export_event *ev, const char *key, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void ev_str(struct export_event *ev, const char *key, const char *fmt, ...)
{
        struct export_arg *a = ev_arg(ev, key, EXPORT_ARG_STR, 0);
        size_t room = sizeof(ev->text) - ev->text_len;
        va_list ap;
        int n;

        if (!a || room < 2)
                return;
        va_start(ap, fmt);
        n = vsnprintf(ev->text + ev->text_len, room, fmt, ap);
        va_end(ap);
        a->s = ev->text + ev->text_len;
        ev->text_len += n < 0 ? 0 : (size_t)n < room ? (size_t)n + 1 : room;
}

/* The interruptibility the backend reported, as arguments (only what it reports). */
static void ev_intr(struct export_event *ev, uint64_t intr)
{
        if (intr & HVT_INTR_VALID_SHADOW)
                ev_str(ev, "shadow", "%s", hvt_shadow_name(intr));
        if (intr & HVT_INTR_VALID_READY)
                ev_arg(ev, "ready", EXPORT_ARG_BOOL, (intr & HVT_INTR_READY) != 0);
        if (intr & HVT_INTR_VALID_IF)
                ev_arg(ev, "if", EXPORT_ARG_BOOL, (intr & HVT_INTR_IF) != 0);
}

static void emit(struct exporter *x, const struct export_event *ev)
{
        if (!x->err)
                x->err = x->out.ops->event(&x->out, ev);
}

static struct export_event *instant(struct exporter *x)
{
        if (x->ninstants == x->instants_cap) {
                size_t cap = x->instants_cap ? x->instants_cap * 2 : 8;
                struct export_event *p = realloc(x->instants, cap * sizeof(*p));

                if (!p) {
                        x->err = -ENOMEM;
                        return NULL;
                }
                x->instants = p;
                x->instants_cap = cap;
        }
        return &x->instants[x->ninstants++];
}

/* The held exit's slice ends where the guest was entered again (`end`), then its instants. */
static void flush_exit(struct exporter *x, uint64_t end)
{
        if (!x->have_exit)
                return;
        x->exit.dur_ns = end > x->exit.ts_ns ? end - x->exit.ts_ns : 0;
        emit(x, &x->exit);
        for (size_t i = 0; i < x->ninstants; i++)
                emit(x, &x->instants[i]);
        x->ninstants = 0;
        x->have_exit = false;
}

static void rate_point(struct exporter *x, uint64_t window, uint64_t exits)
{
        struct export_event ev;

        ev_init(&ev, EXPORT_COUNTER, EXPORT_TRACK_RATE, window * RATE_WINDOW_NS, "rate");
        snprintf(ev.name, sizeof(ev.name), "%s", track_names[EXPORT_TRACK_RATE]);
        ev.value = exits * (1000000000ull / RATE_WINDOW_NS);
        emit(x, &ev);
}

/* Count an exit at ts; a window's rate is written when the next window starts. */
static void rate_exit(struct exporter *x, uint64_t ts)
{
        uint64_t w = ts / RATE_WINDOW_NS;

        if (x->have_window && w != x->window) {
                rate_point(x, x->window, x->window_exits);
                /* A gap without exits: the rate drops to 0 until the next one. */
                if (w > x->window + 1)
                        rate_point(x, x->window + 1, 0);
                x->window_exits = 0;
        }
        x->window = w;
        x->have_window = true;
        x->window_exits++;
}

static void rate_end(struct exporter *x)
{
        if (!x->have_window)
                return;
        rate_point(x, x->window, x->window_exits);
        rate_point(x, x->window + 1, 0);
}

/* "0000:1027" in real mode, a linear address otherwise (as dump shows it). */
static void fmt_finding_addr(char *buf, size_t len, const struct check_finding *f)
{
        if (f->at.real)
                snprintf(buf, len, "%04x:%04" PRIx64, f->cs, f->rip & 0xffff);
        else
                snprintf(buf, len, "0x%" PRIx64, f->pc);
}

static void add_finding(struct exporter *x, const struct check_finding *f, uint64_t ts)
{
        struct export_event *ev = instant(x);
        bool violation = f->rule != RULE_UNDETERMINED;
        char at[32];

        if (!ev)
                return;
        ev_init(ev, EXPORT_INSTANT, EXPORT_TRACK_VIOLATIONS, ts,
                violation ? "violation" : "undetermined");
        ev->loud = violation;
        snprintf(ev->name, sizeof(ev->name), violation ? "VIOLATION: %s" : "undetermined: %s",
                 violation ? check_rule_name(f->rule) : check_und_name(f->und_kind));
        fmt_finding_addr(at, sizeof(at), f);
        ev_str(ev, "rule", "%s", check_rule_name(f->rule));
        ev_arg(ev, "exit", EXPORT_ARG_U64, f->event);
        ev_arg(ev, "vector", EXPORT_ARG_HEX, f->vector);
        ev_str(ev, "at", "%s", at);
        if (f->prev.valid)
                ev_str(ev, "previous_insn", "%s", f->prev.text);
        if (f->at.valid)
                ev_str(ev, "insn", "%s", f->at.text);
        if (f->have_intr)
                ev_intr(ev, f->intr);
        if (f->reason[0])
                ev_str(ev, "reason", "%s", f->reason);
}

/* ---- trace records -------------------------------------------------------- */

static void on_exit_record(struct exporter *x, const struct hvt_exit *ex)
{
        struct export_event *ev = &x->exit;
        struct disasm_insn in;
        char pc[32];

        flush_exit(x, ex->time_ns - (ex->guest_ns < ex->time_ns ? ex->guest_ns : ex->time_ns));
        rate_exit(x, ex->time_ns);

        ev_init(ev, EXPORT_SLICE, EXPORT_TRACK_VCPU, ex->time_ns, "exit");
        snprintf(ev->name, sizeof(ev->name), "%s", hvt_exit_reason_name(ex->reason));
        ev_arg(ev, "exit", EXPORT_ARG_U64, ex->seq);
        replay_fmt_pc(&ex->st, pc, sizeof(pc));
        ev_str(ev, "at", "%s", pc);
        ev_arg(ev, "rip", EXPORT_ARG_HEX, ex->st.rip);
        ev_str(ev, "insn", "%s", replay_insn_text(x->d, ex, &in));
        ev_arg(ev, "guest_ns", EXPORT_ARG_U64, ex->guest_ns);
        switch (ex->reason) {
        case HVT_EXIT_IO:
                ev_arg(ev, "port", EXPORT_ARG_HEX, ex->u.io.io.port);
                ev_str(ev, "dir", "%s", ex->u.io.io.dir == HVT_IO_OUT ? "out" : "in");
                ev_arg(ev, "data", EXPORT_ARG_HEX, replay_io_value(ex));
                break;
        case HVT_EXIT_MMIO:
                ev_arg(ev, "addr", EXPORT_ARG_HEX, ex->u.mmio.addr);
                ev_str(ev, "dir", "%s", ex->u.mmio.is_write ? "write" : "read");
                ev_arg(ev, "len", EXPORT_ARG_U64, ex->u.mmio.len);
                break;
        default: break;
        }
        ev_intr(ev, ex->st.intr);
        x->have_exit = true;

        /* Findings name the exit they were judged at. */
        while (x->next_finding < x->nfindings && x->findings[x->next_finding]->event <= ex->seq) {
                const struct check_finding *f = x->findings[x->next_finding++];

                if (f->event == ex->seq)
                        add_finding(x, f, ex->time_ns);
        }
}

static void on_inject(struct exporter *x, const struct hvt_disk_inject *inj)
{
        struct export_event *ev;

        if (!x->have_exit || !(ev = instant(x)))
                return;
        ev_init(ev, EXPORT_INSTANT, EXPORT_TRACK_VCPU, x->exit.ts_ns, "irq");
        snprintf(ev->name, sizeof(ev->name), "inject 0x%02x", inj->vector);
        ev_arg(ev, "vector", EXPORT_ARG_HEX, inj->vector);
        ev_str(ev, "source", "%s", hvt_source_name(inj->source));
        ev_str(ev, "policy", "%s", hvt_policy_name(inj->policy));
        ev_arg(ev, "rip", EXPORT_ARG_HEX, inj->rip);
        ev_intr(ev, inj->intr);
}

static void on_deliver(struct exporter *x, const struct hvt_disk_deliver *dl)
{
        struct export_event *ev;

        if (!x->have_exit || !(ev = instant(x)))
                return;
        ev_init(ev, EXPORT_INSTANT, EXPORT_TRACK_VCPU, x->exit.ts_ns, "irq");
        snprintf(ev->name, sizeof(ev->name), "deliver 0x%02x", dl->vector);
        ev_arg(ev, "vector", EXPORT_ARG_HEX, dl->vector);
        ev_str(ev, "interrupted", "%04x:%" PRIx64, dl->cs, dl->ip);
        ev_arg(ev, "rflags", EXPORT_ARG_HEX, dl->flags);
        ev_arg(ev, "handler", EXPORT_ARG_HEX, dl->handler);
}

/* ---- the command ---------------------------------------------------------- */

static int by_event(const void *a, const void *b)
{
        const struct check_finding *x = *(const struct check_finding *const *)a;
        const struct check_finding *y = *(const struct check_finding *const *)b;

        return (x->event > y->event) - (x->event < y->event);
}

/* The checker's findings, sorted by the exit they name. */
static int collect_findings(struct exporter *x, const struct check_result *res)
{
        size_t n = res->nviolations + res->nundetermined, k = 0;

        x->findings = calloc(n ? n : 1, sizeof(*x->findings));
        if (!x->findings)
                return -ENOMEM;
        for (size_t i = 0; i < res->nviolations; i++)
                x->findings[k++] = &res->violations[i];
        for (size_t i = 0; i < res->nundetermined; i++)
                x->findings[k++] = &res->undetermined[i];
        qsort(x->findings, n, sizeof(*x->findings), by_event);
        x->nfindings = n;
        return 0;
}

static void meta_from_header(struct export_meta *m, const struct hvt_header *h)
{
        const char *guest = h->str[HVT_STR_GUEST], *slash = strrchr(guest, '/');

        snprintf(m->process, sizeof(m->process), "hvtrace: %s on %s",
                 slash      ? slash + 1
                 : guest[0] ? guest
                            : "guest",
                 h->str[HVT_STR_BACKEND][0] ? h->str[HVT_STR_BACKEND] : "?");
        for (unsigned t = 0; t < EXPORT_TRACK_COUNT; t++)
                m->track_names[t] = track_names[t];
}

/* Stream the trace into the sink.  Returns the reader's last result (HVT_END_OF_TRACE when whole).
 */
static int export_trace(struct exporter *x, struct hvt_reader *r)
{
        struct export_meta m;
        struct hvt_event ev;
        int err = HVT_END_OF_TRACE;

        meta_from_header(&m, hvt_reader_header(r));
        x->err = x->out.ops->begin(&x->out, &m);
        while (!x->err && (err = hvt_reader_next(r, &ev)) == HVT_OK) {
                switch (ev.type) {
                case HVT_REC_EXIT: on_exit_record(x, &ev.exit); break;
                case HVT_REC_INJECT: on_inject(x, &ev.inject); break;
                case HVT_REC_DELIVER: on_deliver(x, &ev.deliver); break;
                default: break;
                }
        }
        /* The last exit has no next entry: its slice ends where it starts. */
        flush_exit(x, 0);
        rate_end(x);
        return err;
}

static const struct export_sink_ops *find_sink(const char *name)
{
        for (size_t i = 0; i < sizeof(sinks) / sizeof(sinks[0]); i++)
                if (!strcmp(sinks[i]->name, name))
                        return sinks[i];
        return NULL;
}

static int export_to(const char *trace, const char *path, const struct export_sink_ops *ops)
{
        struct exporter x = { .out.ops = ops };
        struct check_result res;
        struct hvt_reader *r;
        int err = HVT_END_OF_TRACE, status = REPLAY_ERROR, werr;
        bool to_stdout = !strcmp(path, "-");

        /* The checker reads the trace on its own; its verdicts become instants. */
        if (check_trace(trace, &res) && !res.opened) {
                replay_error(trace, res.error);
                check_result_free(&res);
                return REPLAY_ERROR;
        }
        r = replay_open(trace);
        if (!r)
                goto out_check;
        /* One track per trace: another vCPU's slices would interleave with the first's. */
        if (replay_refuse_multi_vcpu("export", trace, r))
                goto out_reader;
        if (collect_findings(&x, &res) || disasm_open(&x.d)) {
                fprintf(stderr, "hvreplay export: out of memory\n");
                goto out_reader;
        }
        x.out.f = to_stdout ? stdout : fopen(path, "wb");
        if (!x.out.f) {
                err = -errno;
                replay_error(path, hvt_strerror(err));
                goto out_reader;
        }
        err = export_trace(&x, r);
        werr = ops->finish(&x.out);
        if (!x.err)
                x.err = werr;
        if (to_stdout ? fflush(stdout) : fclose(x.out.f))
                x.err = x.err ? x.err : -errno;
        if (x.err) {
                replay_error(path, hvt_strerror(x.err));
                if (!to_stdout)
                        unlink(path);
        } else {
                status = replay_end(trace, r, err);
        }
out_reader:
        disasm_close(x.d);
        free(x.findings);
        free(x.instants);
        hvt_reader_close(r);
out_check:
        check_result_free(&res);
        return status;
}

int cmd_export(int argc, char **argv)
{
        static const struct option opts[] = {
                { "format", required_argument, NULL, 'f' },
                { "output", required_argument, NULL, 'o' },
                { "help", no_argument, NULL, 'h' },
                { 0 },
        };
        const struct export_sink_ops *ops = &export_json_ops;
        const char *out = NULL;
        int c;

        optind = 1;
        opterr = 0;
        /* No '+': options may follow TRACE (hvreplay export TRACE -o FILE). */
        while ((c = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1) {
                switch (c) {
                case 'f':
                        ops = find_sink(optarg);
                        if (!ops) {
                                fputs("hvreplay export: --format: '", stderr);
                                replay_put_str(stderr, optarg);
                                fputs("' is not chrome-json or perfetto\n", stderr);
                                return REPLAY_ERROR;
                        }
                        break;
                case 'o': out = optarg; break;
                case 'h': usage(stdout); return REPLAY_OK;
                default: return replay_option_error("export", c, argv);
                }
        }
        if (optind + 1 != argc) {
                fprintf(stderr, "hvreplay export: give exactly one TRACE (see --help)\n");
                return REPLAY_ERROR;
        }
        if (!out) {
                fprintf(stderr, "hvreplay export: say where to write: -o FILE (- for stdout)\n");
                return REPLAY_ERROR;
        }
        return export_to(argv[optind], out, ops);
}
