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
 * held until then, which keeps each track in time order.
 *
 * A multi-vCPU trace gets these tracks once per vCPU, and the holding is
 * per vCPU too: a vCPU's slice ends at its own next entry, its times are
 * its own stream's (docs/trace-format.md section 7), so only each vCPU's
 * tracks are in time order, and its findings are the ones the checker
 * made on it.
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

/* After "vCPU N": the track's name says what it holds. */
static const char *const track_suffix[] = {
        [EXPORT_TRACK_VCPU] = "",
        [EXPORT_TRACK_VIOLATIONS] = " violations (hvreplay check)",
        [EXPORT_TRACK_RATE] = " exit rate (exits/s)",
};
_Static_assert(sizeof(track_suffix) / sizeof(track_suffix[0]) == EXPORT_TRACK_COUNT,
               "name every track");

/* What the exporter follows for one vCPU. */
struct export_vcpu {
        uint32_t id;
        bool have_exit; /* `exit` holds the slice of the last exit read */
        struct export_event exit;
        struct export_event *instants; /* at that exit, in trace order */
        size_t ninstants, instants_cap;

        uint64_t window, window_exits; /* the rate window of the last exit, and its exits */
        bool have_window;
        size_t next_finding; /* in exporter.findings: this vCPU's next one */
};

struct exporter {
        struct export_out out;
        struct export_meta meta;
        struct disasm *d;
        const struct check_finding **findings; /* violations and undetermined, by vCPU and event */
        size_t nfindings;
        struct export_vcpu **vcpus; /* meta.vcpus of them, each made at its first record */
        int err;                    /* the first failure: -errno */
};

static void usage(FILE *f)
{
        fprintf(f, "Usage: hvreplay export [--format FORMAT] TRACE -o FILE\n"
                   "\n"
                   "Write TRACE as a timeline that ui.perfetto.dev and chrome://tracing open:\n"
                   "one track per vCPU (\"vCPU 0\", \"vCPU 1\", ...) with each of its exits as a\n"
                   "slice from the exit to its next entry, named by its reason (RIP,\n"
                   "instruction, port, data and the reported shadow/ready as arguments), its\n"
                   "injections and deliveries as instants; the violations and undetermined\n"
                   "deliveries hvreplay check finds on each vCPU as instants on a violations\n"
                   "track of that vCPU, named VIOLATION: RULE; the exit rate per millisecond\n"
                   "window as a counter (one per vCPU in a multi-vCPU trace).\n"
                   "See docs/visualise.md.\n"
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

void export_track_name(const struct export_meta *m, uint32_t vcpu, enum export_track t, char *buf,
                       size_t len)
{
        /* One vCPU: its rate is the trace's, named as it was before there were several. */
        if (m->vcpus < 2 && t == EXPORT_TRACK_RATE)
                snprintf(buf, len, "exit rate (exits/s)");
        else
                snprintf(buf, len, "vCPU %" PRIu32 "%s", vcpu, track_suffix[t]);
}

static void ev_init(struct export_event *ev, enum export_kind kind, enum export_track track,
                    uint32_t vcpu, uint64_t ts, const char *cat)
{
        ev->kind = kind;
        ev->track = track;
        ev->vcpu = vcpu;
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

static struct export_event *instant(struct exporter *x, struct export_vcpu *v)
{
        if (v->ninstants == v->instants_cap) {
                size_t cap = v->instants_cap ? v->instants_cap * 2 : 8;
                struct export_event *p = realloc(v->instants, cap * sizeof(*p));

                if (!p) {
                        x->err = -ENOMEM;
                        return NULL;
                }
                v->instants = p;
                v->instants_cap = cap;
        }
        return &v->instants[v->ninstants++];
}

/* The held exit's slice ends where the guest was entered again (`end`), then its instants. */
static void flush_exit(struct exporter *x, struct export_vcpu *v, uint64_t end)
{
        if (!v->have_exit)
                return;
        v->exit.dur_ns = end > v->exit.ts_ns ? end - v->exit.ts_ns : 0;
        emit(x, &v->exit);
        for (size_t i = 0; i < v->ninstants; i++)
                emit(x, &v->instants[i]);
        v->ninstants = 0;
        v->have_exit = false;
}

static void rate_point(struct exporter *x, const struct export_vcpu *v, uint64_t window,
                       uint64_t exits)
{
        struct export_event ev;

        ev_init(&ev, EXPORT_COUNTER, EXPORT_TRACK_RATE, v->id, window * RATE_WINDOW_NS, "rate");
        export_track_name(&x->meta, v->id, EXPORT_TRACK_RATE, ev.name, sizeof(ev.name));
        ev.value = exits * (1000000000ull / RATE_WINDOW_NS);
        emit(x, &ev);
}

/*
 * Count an exit at ts; a window's rate is written when the next window
 * starts.  Per vCPU: only a vCPU's own exits come in time order.
 */
static void rate_exit(struct exporter *x, struct export_vcpu *v, uint64_t ts)
{
        uint64_t w = ts / RATE_WINDOW_NS;

        if (v->have_window && w != v->window) {
                rate_point(x, v, v->window, v->window_exits);
                /* A gap without exits: the rate drops to 0 until the next one. */
                if (w > v->window + 1)
                        rate_point(x, v, v->window + 1, 0);
                v->window_exits = 0;
        }
        v->window = w;
        v->have_window = true;
        v->window_exits++;
}

static void rate_end(struct exporter *x, const struct export_vcpu *v)
{
        if (!v->have_window)
                return;
        rate_point(x, v, v->window, v->window_exits);
        rate_point(x, v, v->window + 1, 0);
}

/* "0000:1027" in real mode, a linear address otherwise (as dump shows it). */
static void fmt_finding_addr(char *buf, size_t len, const struct check_finding *f)
{
        if (f->at.real)
                snprintf(buf, len, "%04x:%04" PRIx64, f->cs, f->rip & 0xffff);
        else
                snprintf(buf, len, "0x%" PRIx64, f->pc);
}

static void add_finding(struct exporter *x, struct export_vcpu *v, const struct check_finding *f,
                        uint64_t ts)
{
        struct export_event *ev = instant(x, v);
        bool violation = f->rule != RULE_UNDETERMINED;
        char at[32];

        if (!ev)
                return;
        ev_init(ev, EXPORT_INSTANT, EXPORT_TRACK_VIOLATIONS, v->id, ts,
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

static void on_exit_record(struct exporter *x, struct export_vcpu *v, const struct hvt_exit *ex)
{
        struct export_event *ev = &v->exit;
        struct disasm_insn in;
        char pc[32];

        flush_exit(x, v, ex->time_ns - (ex->guest_ns < ex->time_ns ? ex->guest_ns : ex->time_ns));
        rate_exit(x, v, ex->time_ns);

        ev_init(ev, EXPORT_SLICE, EXPORT_TRACK_VCPU, v->id, ex->time_ns, "exit");
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
        v->have_exit = true;

        /* Findings name the exit they were judged at, on the vCPU they were judged on. */
        while (v->next_finding < x->nfindings && x->findings[v->next_finding]->vcpu == v->id &&
               x->findings[v->next_finding]->event <= ex->seq) {
                const struct check_finding *f = x->findings[v->next_finding++];

                if (f->event == ex->seq)
                        add_finding(x, v, f, ex->time_ns);
        }
}

static void on_inject(struct exporter *x, struct export_vcpu *v, const struct hvt_disk_inject *inj)
{
        struct export_event *ev;

        if (!v->have_exit || !(ev = instant(x, v)))
                return;
        ev_init(ev, EXPORT_INSTANT, EXPORT_TRACK_VCPU, v->id, v->exit.ts_ns, "irq");
        snprintf(ev->name, sizeof(ev->name), "inject 0x%02x", inj->vector);
        ev_arg(ev, "vector", EXPORT_ARG_HEX, inj->vector);
        ev_str(ev, "source", "%s", hvt_source_name(inj->source));
        ev_str(ev, "policy", "%s", hvt_policy_name(inj->policy));
        ev_arg(ev, "rip", EXPORT_ARG_HEX, inj->rip);
        ev_intr(ev, inj->intr);
}

static void on_deliver(struct exporter *x, struct export_vcpu *v, const struct hvt_disk_deliver *dl)
{
        struct export_event *ev;

        if (!v->have_exit || !(ev = instant(x, v)))
                return;
        ev_init(ev, EXPORT_INSTANT, EXPORT_TRACK_VCPU, v->id, v->exit.ts_ns, "irq");
        snprintf(ev->name, sizeof(ev->name), "deliver 0x%02x", dl->vector);
        ev_arg(ev, "vector", EXPORT_ARG_HEX, dl->vector);
        ev_str(ev, "interrupted", "%04x:%" PRIx64, dl->cs, dl->ip);
        ev_arg(ev, "rflags", EXPORT_ARG_HEX, dl->flags);
        ev_arg(ev, "handler", EXPORT_ARG_HEX, dl->handler);
}

/* ---- the command ---------------------------------------------------------- */

static int by_vcpu_event(const void *a, const void *b)
{
        const struct check_finding *x = *(const struct check_finding *const *)a;
        const struct check_finding *y = *(const struct check_finding *const *)b;

        if (x->vcpu != y->vcpu)
                return (x->vcpu > y->vcpu) - (x->vcpu < y->vcpu);
        return (x->event > y->event) - (x->event < y->event);
}

/* The checker's findings, sorted by vCPU and the exit they name. */
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
        qsort(x->findings, n, sizeof(*x->findings), by_vcpu_event);
        x->nfindings = n;
        return 0;
}

/* The state of vCPU id, made at its first record; NULL when out of memory. */
static struct export_vcpu *vcpu_of(struct exporter *x, uint32_t id)
{
        struct export_vcpu *v = x->vcpus[id];
        size_t lo = 0, hi = x->nfindings;

        if (v)
                return v;
        v = calloc(1, sizeof(*v));
        if (!v) {
                x->err = -ENOMEM;
                return NULL;
        }
        v->id = id;
        /* Its first finding: they are sorted by vCPU first. */
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (x->findings[mid]->vcpu < id)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        v->next_finding = lo;
        x->vcpus[id] = v;
        return v;
}

static void free_vcpus(struct exporter *x)
{
        if (!x->vcpus)
                return;
        for (uint32_t i = 0; i < x->meta.vcpus; i++) {
                if (x->vcpus[i])
                        free(x->vcpus[i]->instants);
                free(x->vcpus[i]);
        }
        free(x->vcpus);
}

static void meta_from_header(struct export_meta *m, const struct hvt_header *h)
{
        const char *guest = h->str[HVT_STR_GUEST], *slash = strrchr(guest, '/');

        snprintf(m->process, sizeof(m->process), "hvtrace: %s on %s",
                 slash      ? slash + 1
                 : guest[0] ? guest
                            : "guest",
                 h->str[HVT_STR_BACKEND][0] ? h->str[HVT_STR_BACKEND] : "?");
}

/* Stream the trace into the sink.  Returns the reader's last result (HVT_END_OF_TRACE when whole).
 */
static int export_trace(struct exporter *x, struct hvt_reader *r)
{
        struct export_vcpu *v;
        struct hvt_event ev;
        int err = HVT_END_OF_TRACE, vcpu;

        x->err = x->out.ops->begin(&x->out, &x->meta);
        while (!x->err && (err = hvt_reader_next(r, &ev)) == HVT_OK) {
                if (ev.type != HVT_REC_EXIT && ev.type != HVT_REC_INJECT &&
                    ev.type != HVT_REC_DELIVER)
                        continue;
                /* -1 in a single-vCPU trace: its one vCPU is 0. */
                vcpu = check_event_vcpu(r, &ev);
                v = vcpu_of(x, vcpu > 0 ? (uint32_t)vcpu : 0);
                if (!v)
                        break;
                switch (ev.type) {
                case HVT_REC_EXIT: on_exit_record(x, v, &ev.exit); break;
                case HVT_REC_INJECT: on_inject(x, v, &ev.inject); break;
                case HVT_REC_DELIVER: on_deliver(x, v, &ev.deliver); break;
                default: break;
                }
        }
        /* Each vCPU's last exit has no next entry: its slice ends where it starts. */
        for (uint32_t i = 0; i < x->meta.vcpus; i++) {
                if (!x->vcpus[i])
                        continue;
                flush_exit(x, x->vcpus[i], 0);
                rate_end(x, x->vcpus[i]);
        }
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
        meta_from_header(&x.meta, hvt_reader_header(r));
        x.meta.vcpus = hvt_reader_vcpus(r);
        x.vcpus = calloc(x.meta.vcpus, sizeof(*x.vcpus));
        if (!x.vcpus || collect_findings(&x, &res) || disasm_open(&x.d)) {
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
        free_vcpus(&x);
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
