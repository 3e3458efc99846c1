// SPDX-License-Identifier: MIT
/*
 * The HTML of hvreplay report: one page, its style inline, its timeline an
 * inline SVG, no script and no reference to anything outside it, so that it
 * can be mailed or attached to a bug.  Every string a trace supplies is
 * escaped: a trace can come from anyone.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "replay.h"
#include "report.h"

/* Timeline geometry, in SVG user units (pixels). */
#define TL_LEFT   120
#define TL_WIDTH  840
#define TL_BINS   420
#define TL_ROW    26
#define TL_AXIS   30
#define TL_MAXUND 200 /* undetermined deliveries listed; the rest are counted */
#define TL_VCPUS  16  /* vCPUs given a timeline row of their own */

static const char *const reason_colour[] = {
        [HVT_EXIT_UNKNOWN] = "#999999",    [HVT_EXIT_IO] = "#4e79a7",
        [HVT_EXIT_MMIO] = "#f28e2b",       [HVT_EXIT_HLT] = "#76b7b2",
        [HVT_EXIT_INTR] = "#59a14f",       [HVT_EXIT_IRQ_WINDOW] = "#edc948",
        [HVT_EXIT_DEBUG] = "#b07aa1",      [HVT_EXIT_SHUTDOWN] = "#9c755f",
        [HVT_EXIT_FAIL_ENTRY] = "#bab0ac", [HVT_EXIT_INTERNAL] = "#ff9da7",
        [HVT_EXIT_EXCEPTION] = "#8cd17d",
};
_Static_assert(sizeof(reason_colour) / sizeof(reason_colour[0]) == HVT_EXIT_REASON_COUNT,
               "a colour for every exit reason");

static const char style[] =
        "body{font-family:sans-serif;margin:1.5em;color:#222;max-width:1100px}"
        "h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em}"
        "table{border-collapse:collapse;margin:.5em 0}"
        "td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left}"
        "td.n{text-align:right;font-variant-numeric:tabular-nums}"
        "pre{background:#f6f6f6;padding:.6em;overflow-x:auto}"
        ".violation{color:#b00000}"
        ".finding{border-left:4px solid #b00000;padding-left:.8em;margin:1em 0}"
        ".mark{color:#b00000;font-weight:bold}"
        ".ok{color:#1a7f37}.bad{color:#b00000;font-weight:bold}.warn{color:#9a6700}"
        "svg text{font-size:11px;font-family:sans-serif}";

/* Text from anywhere (a trace, a path): HTML-escaped, control bytes as \xNN like the terminal. */
static void esc(FILE *f, const char *s)
{
        for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
                switch (*p) {
                case '&': fputs("&amp;", f); break;
                case '<': fputs("&lt;", f); break;
                case '>': fputs("&gt;", f); break;
                case '"': fputs("&quot;", f); break;
                case '\'': fputs("&#39;", f); break;
                default:
                        if (*p < 0x20 || *p > 0x7e)
                                fprintf(f, "\\x%02x", *p);
                        else
                                fputc(*p, f);
                }
        }
}

static double pct(uint64_t part, uint64_t whole)
{
        return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

static void row(FILE *f, const char *key, const char *value)
{
        fprintf(f, "<tr><th>%s</th><td>", key);
        esc(f, value);
        fputs("</td></tr>\n", f);
}

static void verdict(FILE *f, const struct report_trace *t)
{
        fputs("<tr><th>Checker</th><td>", f);
        if (!t->opened) {
                fputs("<span class=\"bad\">not checked</span>", f);
        } else if (t->nviolations) {
                fprintf(f, "<span class=\"bad violation\">%zu violations</span> (", t->nviolations);
                for (unsigned r = RULE_NONE + 1, first = 1; r < RULE_COUNT; r++) {
                        if (r == RULE_UNDETERMINED || !t->check.by_rule[r])
                                continue;
                        fprintf(f, "%s%s %" PRIu64, first ? "" : ", ", check_rule_name(r),
                                t->check.by_rule[r]);
                        first = 0;
                }
                fputs(")", f);
        } else {
                fputs("<span class=\"ok\">no violations</span>", f);
        }
        if (t->opened)
                fprintf(f, ", %zu undetermined, %" PRIu64 " deliveries checked",
                        t->nfindings - t->nviolations, t->check.deliveries);
        fputs("</td></tr>\n", f);
}

static void summary(FILE *f, const struct report_trace *t)
{
        char buf[512];

        fputs("<table class=\"summary\">\n", f);
        row(f, "Guest", t->guest);
        snprintf(buf, sizeof(buf), "%s (%s, policy %s%s)", t->backend, hvt_mode_name(t->mode),
                 hvt_policy_name(t->policy),
                 (t->header_flags & HVT_HDR_SINGLE_STEP) ? ", single-step" : "");
        row(f, "Backend", buf);
        row(f, "Recorded by", t->tool);
        snprintf(buf, sizeof(buf),
                 "%" PRIu64 " exits in %.3f ms (guest %.3f ms); %" PRIu64 " raised, %" PRIu64
                 " injected, %" PRIu64 " delivered; %" PRIu64 " console bytes",
                 t->exits, (double)t->last_ns / 1e6, (double)t->guest_ns / 1e6, t->raises,
                 t->injections, t->deliveries, t->console_bytes);
        row(f, "Run", buf);
        if (t->have_end) {
                snprintf(buf, sizeof(buf), "%s, status %d: %s", hvt_end_why_name(t->end.why),
                         t->end.status, t->end_message);
                row(f, "End", buf);
        }
        verdict(f, t);
        if (!t->readable) {
                fputs("<tr><th>Trace</th><td class=\"bad\">could not be read completely: ", f);
                esc(f, t->error);
                fputs("</td></tr>\n", f);
        }
        fputs("</table>\n", f);
}

/* "0000:1021" in real mode, a linear address otherwise (as hvreplay check prints it). */
static void insn_addr(char *buf, size_t len, const struct check_finding *fd,
                      const struct check_insn *in)
{
        if (in->real)
                snprintf(buf, len, "%04x:%04" PRIx64, fd->cs, (in->pc - in->cs_base) & 0xffff);
        else if (in->bits == 64)
                snprintf(buf, len, "%016" PRIx64, in->pc);
        else
                snprintf(buf, len, "%08" PRIx64, in->pc);
}

static void insn_line(FILE *f, const char *mark, const struct check_finding *fd,
                      const struct check_insn *in, const char *comment)
{
        char addr[32], bytes[40] = "";
        size_t n = 0;

        insn_addr(addr, sizeof(addr), fd, in);
        for (unsigned i = 0; i < in->len && n + 3 < sizeof(bytes); i++)
                n += (size_t)snprintf(bytes + n, sizeof(bytes) - n, "%02x", in->bytes[i]);
        fprintf(f, "<span class=\"mark\">%s</span>%-16s %-18s ", mark, addr, bytes);
        esc(f, in->text);
        fprintf(f, "   ; %s\n", comment);
}

static void backend_report(FILE *f, const struct check_finding *fd)
{
        char intr[64];

        if (!fd->have_intr) {
                fputs("<p>Backend reported: no injection recorded.</p>\n", f);
                return;
        }
        replay_fmt_intr(fd->intr, intr, sizeof(intr));
        fputs("<p>Backend reported: ", f);
        esc(f, intr);
        fprintf(f, "; policy %s.</p>\n", hvt_policy_name(fd->policy));
}

/* ", vCPU N" in a multi-vCPU trace, nothing in a single-vCPU one. */
static void fmt_vcpu(char *buf, size_t len, const struct report_trace *t,
                     const struct check_finding *fd)
{
        if (t->vcpus > 1)
                snprintf(buf, len, ", vCPU %" PRIu32, fd->vcpu);
        else
                buf[0] = 0;
}

static void violation(FILE *f, const struct report_trace *t, const struct report_finding *rf)
{
        const struct check_finding *fd = rf->f;
        char at[32], vcpu[32];

        insn_addr(at, sizeof(at), fd, &fd->at);
        fmt_vcpu(vcpu, sizeof(vcpu), t, fd);
        fprintf(f,
                "<div class=\"finding\"><h4 class=\"violation\">VIOLATION: %s &mdash; vector "
                "0x%02x at %s%s, exit #%" PRIu64 "</h4>\n",
                check_rule_name(fd->rule), fd->vector, fd->at.valid ? at : "?", vcpu, fd->event);
        if (fd->reason[0]) {
                fputs("<p>", f);
                esc(f, fd->reason);
                fputs("</p>\n", f);
        }
        if (t->vcpus > 1)
                fprintf(f, "<p>The exits of vCPU %" PRIu32 " up to it, as recorded:</p>\n<pre>",
                        fd->vcpu);
        else
                fputs("<p>The exits up to it, as recorded:</p>\n<pre>", f);
        for (size_t i = 0; i < rf->ncontext; i++) {
                const struct report_line *l = &rf->context[i];

                fprintf(f, "#%-8" PRIu64 " %12.6f  %-14s %-16s ", l->seq, (double)l->time_ns / 1e9,
                        l->reason, l->addr);
                esc(f, l->insn);
                fputc('\n', f);
        }
        fputs("</pre>\n<p>The instructions the checker decoded:</p>\n<pre>", f);
        if (fd->prev.valid)
                insn_line(f, "    ", fd, &fd->prev, "ran last before the delivery");
        if (fd->at.valid)
                insn_line(f, " -> ", fd, &fd->at, "interrupted here");
        fputs("</pre>\n", f);
        backend_report(f, fd);
        fputs("</div>\n", f);
}

static void undetermined(FILE *f, const struct report_trace *t)
{
        size_t n = t->nfindings - t->nviolations;

        if (!n)
                return;
        fprintf(f, "<h3>Undetermined deliveries (%zu)</h3>\n", n);
        /* A vCPU column only where there are several: single-vCPU pages stay as they were. */
        fprintf(f,
                "<table><tr>%s<th>Exit</th><th>Vector</th><th>At</th><th>Why</th><th>Reason</th>"
                "</tr>\n",
                t->vcpus > 1 ? "<th>vCPU</th>" : "");
        for (size_t i = 0; i < n && i < TL_MAXUND; i++) {
                const struct check_finding *fd = t->findings[t->nviolations + i].f;
                char at[32];

                insn_addr(at, sizeof(at), fd, &fd->at);
                fputs("<tr>", f);
                if (t->vcpus > 1)
                        fprintf(f, "<td class=\"n\">%" PRIu32 "</td>", fd->vcpu);
                fprintf(f, "<td class=\"n\">#%" PRIu64 "</td><td>0x%02x</td><td>%s</td><td>%s",
                        fd->event, fd->vector, fd->at.valid ? at : "?",
                        check_und_name(fd->und_kind));
                fputs("</td><td>", f);
                esc(f, fd->reason);
                fputs("</td></tr>\n", f);
        }
        fputs("</table>\n", f);
        if (n > TL_MAXUND)
                fprintf(f, "<p>... and %zu more (hvreplay check lists them all).</p>\n",
                        n - TL_MAXUND);
}

/* Each vCPU's share of a multi-vCPU trace. */
static void vcpu_table(FILE *f, const struct report_trace *t)
{
        fprintf(f, "<h3>vCPUs (%" PRIu32 ")</h3>\n", t->vcpus);
        fputs("<table class=\"vcpus\"><tr><th>vCPU</th><th>Exits</th><th>Injected</th>"
              "<th>Delivered</th><th>Raised</th><th>Violations</th><th>Undetermined</th></tr>\n",
              f);
        for (uint32_t v = 0; v < t->vcpus; v++) {
                const struct report_vcpu *c = &t->per_vcpu[v];

                fprintf(f,
                        "<tr><td class=\"n\">%" PRIu32 "</td><td class=\"n\">%" PRIu64
                        "</td><td class=\"n\">%" PRIu64 "</td><td class=\"n\">%" PRIu64
                        "</td><td class=\"n\">%" PRIu64 "</td><td class=\"n%s\">%zu</td>"
                        "<td class=\"n\">%zu</td></tr>\n",
                        v, c->exits, c->injections, c->deliveries, c->raises,
                        c->violations ? " bad" : "", c->violations, c->undetermined);
        }
        fputs("</table>\n", f);
}

static void reason_table(FILE *f, const struct report_trace *t)
{
        fputs("<h3>Exit reasons</h3>\n<table><tr><th>Reason</th><th>Exits</th><th>Share</th>"
              "<th>Guest time (us)</th><th>Share of guest time</th><th>Mean guest time "
              "(us)</th></tr>\n",
              f);
        for (unsigned r = 0; r < HVT_EXIT_REASON_COUNT; r++) {
                uint64_t n = t->by_reason[r];

                if (!n)
                        continue;
                fprintf(f,
                        "<tr><td><span style=\"color:%s\">&#9632;</span> %s</td><td "
                        "class=\"n\">%" PRIu64
                        "</td><td class=\"n\">%.1f%%</td><td class=\"n\">%.1f</td><td "
                        "class=\"n\">%.1f%%</td><td class=\"n\">%.2f</td></tr>\n",
                        reason_colour[r], hvt_exit_reason_name(r), n, pct(n, t->exits),
                        (double)t->guest_by_reason[r] / 1e3,
                        pct(t->guest_by_reason[r], t->guest_ns),
                        (double)t->guest_by_reason[r] / 1e3 / (double)n);
        }
        fprintf(f,
                "<tr><th>total</th><td class=\"n\">%" PRIu64 "</td><td></td><td class=\"n\">%.1f"
                "</td><td></td><td></td></tr>\n</table>\n",
                t->exits, (double)t->guest_ns / 1e3);
}

static unsigned bin_of(uint64_t ns, uint64_t span)
{
        unsigned b = (unsigned)((double)ns / (double)span * TL_BINS);

        return b < TL_BINS ? b : TL_BINS - 1;
}

static double x_of(uint64_t ns, uint64_t span)
{
        return TL_LEFT + (double)ns / (double)span * TL_WIDTH;
}

/* One row of bars: counts per bin, scaled to the row's largest. */
static void bars(FILE *f, const uint32_t *bins, int y, const char *colour, const char *label,
                 uint64_t total)
{
        uint32_t max = 0;

        for (unsigned b = 0; b < TL_BINS; b++)
                if (bins[b] > max)
                        max = bins[b];
        fprintf(f, "<text x=\"4\" y=\"%d\">%s (%" PRIu64 ")</text>\n", y + TL_ROW - 8, label,
                total);
        for (unsigned b = 0; b < TL_BINS && max; b++) {
                double h;

                if (!bins[b])
                        continue;
                h = 1.0 + (double)(TL_ROW - 5) * bins[b] / max;
                fprintf(f, "<rect x=\"%d\" y=\"%.1f\" width=\"%d\" height=\"%.1f\" fill=\"%s\"/>\n",
                        TL_LEFT + b * TL_WIDTH / TL_BINS, y + TL_ROW - 2 - h, TL_WIDTH / TL_BINS, h,
                        colour);
        }
}

/* A row of vCPU v's exits, of any reason. */
static void vcpu_row(FILE *f, const struct report_trace *t, uint32_t v, int y, uint64_t span)
{
        uint32_t bins[TL_BINS];
        char label[32];

        memset(bins, 0, sizeof(bins));
        for (size_t i = 0; i < t->nexit_pts; i++)
                if (t->exit_pts[i].vcpu == v)
                        bins[bin_of(t->exit_pts[i].ns, span)]++;
        snprintf(label, sizeof(label), "vCPU %" PRIu32 " exits", v);
        bars(f, bins, y, "#555555", label, t->per_vcpu[v].exits);
}

static void timeline(FILE *f, const struct report_trace *t)
{
        uint32_t bins[TL_BINS];
        unsigned rows = 3; /* deliveries, violations, undetermined */
        uint32_t vcpu_rows = t->vcpus > 1 ? (t->vcpus < TL_VCPUS ? t->vcpus : TL_VCPUS) : 0;
        uint64_t span = t->last_ns ? t->last_ns : 1;
        int y = 0, height;

        rows += vcpu_rows;
        for (unsigned r = 0; r < HVT_EXIT_REASON_COUNT; r++)
                rows += t->by_reason[r] != 0;
        height = (int)rows * TL_ROW + TL_AXIS;
        fputs("<h3>Timeline</h3>\n", f);
        fprintf(f,
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                "role=\"img\" aria-label=\"timeline of exits, deliveries and violations\">\n",
                TL_LEFT + TL_WIDTH + 50, height);
        fprintf(f, "<rect x=\"%d\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#fafafa\"/>\n",
                TL_LEFT, TL_WIDTH, height - TL_AXIS);
        for (unsigned r = 0; r < HVT_EXIT_REASON_COUNT; r++) {
                if (!t->by_reason[r])
                        continue;
                memset(bins, 0, sizeof(bins));
                for (size_t i = 0; i < t->nexit_pts; i++)
                        if (t->exit_pts[i].reason == r)
                                bins[bin_of(t->exit_pts[i].ns, span)]++;
                bars(f, bins, y, reason_colour[r], hvt_exit_reason_name(r), t->by_reason[r]);
                y += TL_ROW;
        }
        /* Several vCPUs: a row each (the first TL_VCPUS), to see which one ran when. */
        for (uint32_t v = 0; v < vcpu_rows; v++, y += TL_ROW)
                vcpu_row(f, t, v, y, span);
        memset(bins, 0, sizeof(bins));
        for (size_t i = 0; i < t->ndeliver_pts; i++)
                bins[bin_of(t->deliver_ns[i], span)]++;
        bars(f, bins, y, "#1f3f8f", "deliveries", t->ndeliver_pts);
        y += TL_ROW;

        /* A violation: a red line through every row; an undetermined delivery: an orange tick. */
        fprintf(f, "<text x=\"4\" y=\"%d\" fill=\"#b00000\">violations (%zu)</text>\n",
                y + TL_ROW - 8, t->nviolations);
        fprintf(f, "<text x=\"4\" y=\"%d\">undetermined (%zu)</text>\n", y + 2 * TL_ROW - 8,
                t->nfindings - t->nviolations);
        for (size_t i = t->nfindings; i-- > 0;) {
                const struct report_finding *rf = &t->findings[i];
                bool v = i < t->nviolations;
                double x = x_of(rf->time_ns, span);
                char vcpu[32];

                if (!rf->seen)
                        continue;
                fmt_vcpu(vcpu, sizeof(vcpu), t, rf->f);
                fprintf(f, "<g><title>%s %s, vector 0x%02x%s, exit #%" PRIu64 "</title>",
                        v ? "VIOLATION:" : "undetermined:",
                        v ? check_rule_name(rf->f->rule) : check_und_name(rf->f->und_kind),
                        rf->f->vector, vcpu, rf->f->event);
                if (v)
                        fprintf(f,
                                "<line x1=\"%.1f\" y1=\"0\" x2=\"%.1f\" y2=\"%d\" "
                                "stroke=\"#b00000\" "
                                "stroke-width=\"1.5\" stroke-opacity=\"0.7\"/>"
                                "<path d=\"M%.1f %d l-6 -10 h12 z\" fill=\"#b00000\"/>",
                                x, x, y + TL_ROW, x, y + TL_ROW - 2);
                else
                        fprintf(f,
                                "<rect x=\"%.1f\" y=\"%d\" width=\"2\" height=\"%d\" "
                                "fill=\"#e8a33d\"/>",
                                x - 1, y + TL_ROW + 6, TL_ROW - 10);
                fputs("</g>\n", f);
        }
        y += 2 * TL_ROW;
        for (unsigned k = 0; k <= 4; k++) {
                uint64_t ns = span * k / 4;

                fprintf(f,
                        "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#888\"/>"
                        "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.3f ms</text>\n",
                        x_of(ns, span), y, x_of(ns, span), y + 4, x_of(ns, span), y + 16,
                        (double)ns / 1e6);
        }
        fputs("</svg>\n", f);
}

static void trace_section(FILE *f, const struct report_trace *t, size_t i)
{
        fprintf(f, "<section id=\"trace-%zu\">\n<h2>", i + 1);
        esc(f, t->path);
        fputs("</h2>\n", f);
        if (!t->opened) {
                fputs("<p class=\"bad\">Not read: ", f);
                esc(f, t->error);
                fputs("</p>\n</section>\n", f);
                return;
        }
        summary(f, t);
        if (t->vcpus > 1)
                vcpu_table(f, t);
        timeline(f, t);
        if (t->nviolations) {
                fprintf(f, "<h3 class=\"violation\">Violations (%zu)</h3>\n", t->nviolations);
                for (size_t k = 0; k < t->nviolations; k++)
                        violation(f, t, &t->findings[k]);
        }
        undetermined(f, t);
        reason_table(f, t);
        fputs("</section>\n", f);
}

static void overview(FILE *f, const struct report_trace *traces, size_t n)
{
        fputs("<table><tr><th>Trace</th><th>Backend</th><th>Exits</th><th>Deliveries</th>"
              "<th>Violations</th><th>Undetermined</th></tr>\n",
              f);
        for (size_t i = 0; i < n; i++) {
                const struct report_trace *t = &traces[i];

                fprintf(f, "<tr><td><a href=\"#trace-%zu\">", i + 1);
                esc(f, t->path);
                fputs("</a></td><td>", f);
                esc(f, t->backend);
                fprintf(f,
                        "</td><td class=\"n\">%" PRIu64 "</td><td class=\"n\">%" PRIu64 "</td>"
                        "<td class=\"n%s\">%zu</td><td class=\"n\">%zu</td></tr>\n",
                        t->exits, t->deliveries, t->nviolations ? " bad" : "", t->nviolations,
                        t->nfindings - t->nviolations);
        }
        fputs("</table>\n", f);
}

int report_write_html(FILE *f, const struct report_trace *traces, size_t n)
{
        fprintf(f,
                "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                "<title>hvtrace report</title>\n<style>%s</style>\n</head>\n<body>\n"
                "<h1>hvtrace report</h1>\n",
                style);
        overview(f, traces, n);
        for (size_t i = 0; i < n; i++)
                trace_section(f, &traces[i], i);
        fprintf(f,
                "<footer><p>Written by hvreplay %s (trace format %d). The verdicts are "
                "hvreplay check&#39;s (docs/checker.md).</p></footer>\n</body>\n</html>\n",
                HVT_VERSION_STRING, HVT_FORMAT_VERSION);
        return ferror(f) ? -EIO : 0;
}
