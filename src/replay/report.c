// SPDX-License-Identifier: MIT
/*
 * hvreplay report: one self-contained HTML page on one or more traces.
 * This file reads each trace once (after hvreplay check has judged it) and
 * keeps what the page shows; report_html.c writes the page.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "replay.h"
#include "report.h"

static void usage(FILE *f)
{
        fprintf(f, "Usage: hvreplay report TRACE... -o FILE\n"
                   "\n"
                   "Write one self-contained HTML page (no scripts, nothing fetched) on the\n"
                   "TRACEs: for each, a summary, every violation hvreplay check finds with the\n"
                   "exits before it disassembled, the undetermined deliveries, a table of exit\n"
                   "reasons, and a timeline (inline SVG) of exits by reason, deliveries and\n"
                   "violations.  A multi-vCPU trace also gets a table of each vCPU's exits,\n"
                   "interrupts and findings and a timeline row per vCPU; each finding names\n"
                   "its vCPU and shows the exits of that vCPU before it.\n"
                   "See docs/visualise.md.\n"
                   "\n"
                   "Options:\n"
                   "  -o, --output FILE the page to write (- for stdout); required\n"
                   "  -h, --help        this text\n"
                   "\n"
                   "Exit status: 0 no violation in any trace; 1 violations found; 2 bad usage\n"
                   "or a trace that could not be read completely (the page still covers what\n"
                   "could be read).\n");
}

/* Append v to a growing array of `size`-byte items. */
static int push(void **arr, size_t *n, size_t *cap, size_t size, const void *v)
{
        if (*n == *cap) {
                size_t c = *cap ? *cap * 2 : 1024;
                void *p = realloc(*arr, c * size);

                if (!p)
                        return -ENOMEM;
                *arr = p;
                *cap = c;
        }
        memcpy((char *)*arr + *n * size, v, size);
        (*n)++;
        return 0;
}

static int by_vcpu_event(const void *a, const void *b)
{
        const struct report_finding *x = a, *y = b;

        if (x->f->vcpu != y->f->vcpu)
                return (x->f->vcpu > y->f->vcpu) - (x->f->vcpu < y->f->vcpu);
        return (x->f->event > y->f->event) - (x->f->event < y->f->event);
}

/*
 * The checker's findings in the order the page shows them: violations,
 * then the rest, each by vCPU and exit (by exit in a single-vCPU trace).
 */
static int collect_findings(struct report_trace *t)
{
        const struct check_result *c = &t->check;
        size_t n = c->nviolations + c->nundetermined;

        t->findings = calloc(n ? n : 1, sizeof(*t->findings));
        if (!t->findings)
                return -ENOMEM;
        for (size_t i = 0; i < c->nviolations; i++)
                t->findings[i].f = &c->violations[i];
        for (size_t i = 0; i < c->nundetermined; i++)
                t->findings[c->nviolations + i].f = &c->undetermined[i];
        qsort(t->findings, c->nviolations, sizeof(*t->findings), by_vcpu_event);
        qsort(t->findings + c->nviolations, c->nundetermined, sizeof(*t->findings), by_vcpu_event);
        t->nfindings = n;
        t->nviolations = c->nviolations;
        return 0;
}

/* Count each vCPU's findings (t->per_vcpu is there). */
static void count_findings(struct report_trace *t)
{
        for (size_t i = 0; i < t->nfindings; i++) {
                uint32_t v = t->findings[i].f->vcpu;

                if (v >= t->vcpus)
                        continue; /* the checker names only vCPUs the trace declares */
                if (i < t->nviolations)
                        t->per_vcpu[v].violations++;
                else
                        t->per_vcpu[v].undetermined++;
        }
}

/* What gathering follows for one vCPU: a finding's context is its own vCPU's exits. */
struct gather_vcpu {
        struct report_line ring[REPORT_CONTEXT]; /* its last exits read */
        size_t nring;
        size_t next[2];   /* its next violation, its next undetermined finding */
        uint64_t last_ns; /* its last exit's time */
};

struct gather {
        struct report_trace *t;
        struct disasm *d;
        struct gather_vcpu **vcpus; /* t->vcpus of them, each made at its first record */
};

/* The first finding of vCPU v in findings[lo, hi), which are sorted by vCPU. */
static size_t first_of(const struct report_trace *t, size_t lo, size_t hi, uint32_t v)
{
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (t->findings[mid].f->vcpu < v)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

/* vCPU v's state, made at its first record; NULL when out of memory. */
static struct gather_vcpu *gather_vcpu(struct gather *g, uint32_t v)
{
        struct gather_vcpu *gv = g->vcpus[v];

        if (gv)
                return gv;
        gv = calloc(1, sizeof(*gv));
        if (!gv)
                return NULL;
        gv->next[0] = first_of(g->t, 0, g->t->nviolations, v);
        gv->next[1] = first_of(g->t, g->t->nviolations, g->t->nfindings, v);
        g->vcpus[v] = gv;
        return gv;
}

static void line_of(struct gather *g, const struct hvt_exit *ex, struct report_line *l)
{
        struct disasm_insn in;

        l->seq = ex->seq;
        l->time_ns = ex->time_ns;
        snprintf(l->reason, sizeof(l->reason), "%s", hvt_exit_reason_name(ex->reason));
        replay_fmt_pc(&ex->st, l->addr, sizeof(l->addr));
        snprintf(l->insn, sizeof(l->insn), "%s", replay_insn_text(g->d, ex, &in));
}

/*
 * Give every finding of vCPU v at this exit the exits of v up to it (each
 * group of findings is sorted by vCPU, then exit).
 */
static void attach_context(struct gather *g, struct gather_vcpu *gv, uint32_t v,
                           const struct hvt_exit *ex)
{
        struct report_trace *t = g->t;
        size_t end[2] = { t->nviolations, t->nfindings };

        for (unsigned k = 0; k < 2; k++) {
                size_t *i = &gv->next[k];

                for (; *i < end[k] && t->findings[*i].f->vcpu == v &&
                       t->findings[*i].f->event <= ex->seq;
                     (*i)++) {
                        struct report_finding *rf = &t->findings[*i];

                        if (rf->f->event != ex->seq)
                                continue; /* names an exit the trace does not hold */
                        rf->seen = true;
                        rf->time_ns = ex->time_ns;
                        rf->ncontext = gv->nring;
                        memcpy(rf->context, gv->ring, gv->nring * sizeof(gv->ring[0]));
                }
        }
}

static int on_exit_record(struct gather *g, struct gather_vcpu *gv, uint32_t v,
                          const struct hvt_exit *ex)
{
        struct report_trace *t = g->t;
        unsigned reason = ex->reason < HVT_EXIT_REASON_COUNT ? ex->reason : HVT_EXIT_UNKNOWN;
        struct report_point pt = { ex->time_ns, (uint8_t)reason, v };
        int err;

        t->exits++;
        t->per_vcpu[v].exits++;
        t->by_reason[reason]++;
        t->guest_by_reason[reason] += ex->guest_ns;
        t->guest_ns += ex->guest_ns;
        /* Each vCPU's times are its own stream's: the latest of any vCPU ends the timeline. */
        if (ex->time_ns > t->last_ns)
                t->last_ns = ex->time_ns;
        gv->last_ns = ex->time_ns;
        err = push((void **)&t->exit_pts, &t->nexit_pts, &t->exit_cap, sizeof(pt), &pt);
        if (err)
                return err;

        if (gv->nring == REPORT_CONTEXT) {
                memmove(gv->ring, gv->ring + 1, (REPORT_CONTEXT - 1) * sizeof(gv->ring[0]));
                gv->nring--;
        }
        line_of(g, ex, &gv->ring[gv->nring++]);
        attach_context(g, gv, v, ex);
        return 0;
}

static int on_event(struct gather *g, struct hvt_reader *r, const struct hvt_event *ev)
{
        struct report_trace *t = g->t;
        int vcpu = check_event_vcpu(r, ev);
        uint32_t v = vcpu > 0 ? (uint32_t)vcpu : 0; /* -1: machine-wide, or the one vCPU */
        struct gather_vcpu *gv = gather_vcpu(g, v);

        if (!gv)
                return -ENOMEM;
        switch (ev->type) {
        case HVT_REC_EXIT: return on_exit_record(g, gv, v, &ev->exit);
        case HVT_REC_INJECT:
                t->injections++;
                t->per_vcpu[v].injections++;
                return 0;
        case HVT_REC_RAISE:
                t->raises++;
                t->per_vcpu[v].raises++;
                return 0;
        case HVT_REC_DELIVER:
                /* At the time of its vCPU's last exit (its probe's). */
                t->deliveries++;
                t->per_vcpu[v].deliveries++;
                return push((void **)&t->deliver_ns, &t->ndeliver_pts, &t->deliver_cap,
                            sizeof(uint64_t), &gv->last_ns);
        case HVT_REC_CONSOLE: t->console_bytes += ev->console.len; return 0;
        case HVT_REC_END:
                t->have_end = true;
                t->end = ev->end.e;
                snprintf(t->end_message, sizeof(t->end_message), "%s", ev->end.message);
                return 0;
        default: return 0;
        }
}

static void copy_header(struct report_trace *t, const struct hvt_header *h)
{
        snprintf(t->backend, sizeof(t->backend), "%s", h->str[HVT_STR_BACKEND]);
        snprintf(t->guest, sizeof(t->guest), "%s", h->str[HVT_STR_GUEST]);
        snprintf(t->tool, sizeof(t->tool), "%s", h->str[HVT_STR_TOOL_VERSION]);
        t->policy = h->h.inject_policy;
        t->mode = h->h.guest_mode;
        t->header_flags = h->h.flags;
}

int report_gather(const char *path, struct report_trace *t)
{
        struct gather g = { .t = t };
        struct hvt_reader *r = NULL;
        struct hvt_event ev;
        int err, rerr;

        t->path = path;
        /* A trace check cannot open is reported as such; one it reads partly is shown partly. */
        if (check_trace(path, &t->check) && !t->check.opened) {
                snprintf(t->error, sizeof(t->error), "%s", t->check.error);
                return 0;
        }
        err = collect_findings(t);
        if (err)
                return err;
        if (disasm_open(&g.d))
                return -ENOMEM;
        rerr = hvt_reader_open(&r, path);
        if (rerr) {
                snprintf(t->error, sizeof(t->error), "%s", hvt_reader_message(r));
                goto out;
        }
        t->vcpus = hvt_reader_vcpus(r);
        t->per_vcpu = calloc(t->vcpus, sizeof(*t->per_vcpu));
        g.vcpus = calloc(t->vcpus, sizeof(*g.vcpus));
        if (!t->per_vcpu || !g.vcpus) {
                err = -ENOMEM;
                goto out;
        }
        count_findings(t);
        t->opened = true;
        copy_header(t, hvt_reader_header(r));
        while ((rerr = hvt_reader_next(r, &ev)) == HVT_OK) {
                err = on_event(&g, r, &ev);
                if (err)
                        goto out;
        }
        t->readable = rerr == HVT_END_OF_TRACE;
        if (!t->readable)
                snprintf(t->error, sizeof(t->error), "%s", hvt_reader_message(r));
out:
        if (g.vcpus)
                for (uint32_t v = 0; v < t->vcpus; v++)
                        free(g.vcpus[v]);
        free(g.vcpus);
        hvt_reader_close(r);
        disasm_close(g.d);
        return err;
}

void report_trace_free(struct report_trace *t)
{
        check_result_free(&t->check);
        free(t->exit_pts);
        free(t->deliver_ns);
        free(t->findings);
        free(t->per_vcpu);
        memset(t, 0, sizeof(*t));
}

int cmd_report(int argc, char **argv)
{
        static const struct option opts[] = {
                { "output", required_argument, NULL, 'o' },
                { "help", no_argument, NULL, 'h' },
                { 0 },
        };
        struct report_trace *traces;
        const char *out = NULL;
        int c, n, status = REPLAY_OK, err = 0;
        bool to_stdout;
        FILE *f;

        optind = 1;
        opterr = 0;
        /* No '+': -o may follow the traces (hvreplay report A B -o FILE). */
        while ((c = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1) {
                switch (c) {
                case 'o': out = optarg; break;
                case 'h': usage(stdout); return REPLAY_OK;
                default: return replay_option_error("report", c, argv);
                }
        }
        n = argc - optind;
        if (n < 1) {
                fprintf(stderr, "hvreplay report: give at least one TRACE (see --help)\n");
                return REPLAY_ERROR;
        }
        if (!out) {
                fprintf(stderr, "hvreplay report: say where to write: -o FILE (- for stdout)\n");
                return REPLAY_ERROR;
        }
        traces = calloc((size_t)n, sizeof(*traces));
        if (!traces) {
                fprintf(stderr, "hvreplay report: out of memory\n");
                return REPLAY_ERROR;
        }
        for (int i = 0; i < n && !err; i++) {
                struct report_trace *t = &traces[i];

                err = report_gather(argv[optind + i], t);
                if (!t->readable) {
                        replay_error(t->path, t->error);
                        status = REPLAY_ERROR;
                } else if (t->nviolations && status == REPLAY_OK) {
                        status = REPLAY_FINDINGS;
                }
        }
        to_stdout = !strcmp(out, "-");
        f = err ? NULL : to_stdout ? stdout : fopen(out, "w");
        if (err) {
                fprintf(stderr, "hvreplay report: %s\n", hvt_strerror(err));
        } else if (!f) {
                err = -errno;
                replay_error(out, hvt_strerror(err));
        } else {
                err = report_write_html(f, traces, (size_t)n);
                if ((to_stdout ? fflush(f) : fclose(f)) && !err)
                        err = -errno;
                if (err) {
                        replay_error(out, hvt_strerror(err));
                        if (!to_stdout)
                                unlink(out);
                }
        }
        for (int i = 0; i < n; i++)
                report_trace_free(&traces[i]);
        free(traces);
        return err ? REPLAY_ERROR : status;
}
