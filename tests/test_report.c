// SPDX-License-Identifier: MIT
/*
 * hvreplay report: the page renders in headless Chromium (a screenshot with
 * something on it, the violations hvreplay check finds in its text), needs
 * nothing from outside itself, escapes what the trace supplies, and exits
 * 1 on violations, 2 on bad usage or a damaged trace; a two-vCPU trace
 * gets each vCPU's counts and findings, each finding with its own vCPU's
 * exits.  What the page must hold comes from the checker and the trace,
 * not from the page.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "../src/replay/check.h"
#include "helpers.h"
#include "two_vcpu.h"

#define STRESS     HV_SOURCE_DIR "/traces/stress-eager-kick.zst"
#define VIOLATIONS HV_SOURCE_DIR "/traces/movss-sti-eager-step.zst"

static char *read_all(const char *path)
{
        FILE *f = fopen(path, "r");
        char *buf = NULL;
        size_t n = 0;

        cr_assert_not_null(f, "cannot open %s", path);
        cr_assert_geq(getdelim(&buf, &n, '\0', f), 0, "cannot read %s", path);
        fclose(f);
        return buf;
}

static int report(const char *const *traces, const char *out, struct hv_proc *p)
{
        const char *argv[16] = { HVREPLAY, "report" };
        size_t n = 2;

        for (; *traces; traces++)
                argv[n++] = *traces;
        argv[n++] = "-o";
        argv[n++] = out;
        argv[n] = NULL;
        cr_assert_eq(hv_run(argv, p), 0);
        return p->status;
}

static const char *chromium(void)
{
        static const char *const names[] = { "/usr/bin/chromium", "/usr/bin/chromium-browser" };

        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
                if (access(names[i], X_OK) == 0)
                        return names[i];
        cr_skip_test("chromium is not installed (Debian: chromium); the page is not rendered");
        return NULL;
}

/* Render `html` headless: the screenshot's size in bytes, and the DOM as Chromium built it. */
static off_t render(const char *html, const char *png, char **dom)
{
        char url[1100], shot[1100], profile[1100];
        const char *argv[] = { "/usr/bin/timeout",
                               "180",
                               chromium(),
                               "--headless",
                               "--no-sandbox",
                               "--disable-gpu",
                               "--hide-scrollbars",
                               "--window-size=1200,1600",
                               shot,
                               profile,
                               "--dump-dom",
                               url,
                               NULL };
        struct hv_proc p;
        struct stat st;
        char sig[8] = { 0 };
        FILE *f;

        snprintf(url, sizeof(url), "file://%s", html);
        snprintf(shot, sizeof(shot), "--screenshot=%s", png);
        snprintf(profile, sizeof(profile), "--user-data-dir=%s", hv_tmp("chromium-profile"));
        unlink(png);
        cr_assert_eq(hv_run(argv, &p), 0);
        cr_assert_eq(p.status, 0, "chromium failed (%d): %.2000s", p.status, p.err);
        *dom = p.out;
        p.out = NULL;
        hv_proc_free(&p);
        cr_assert_eq(stat(png, &st), 0, "chromium wrote %s", png);
        f = fopen(png, "rb");
        cr_assert_not_null(f);
        cr_assert_eq(fread(sig, 1, sizeof(sig), f), sizeof(sig));
        fclose(f);
        cr_assert_eq(memcmp(sig, "\x89PNG\r\n\x1a\n", 8), 0, "%s is a PNG", png);
        return st.st_size;
}

/* A page with nothing on it, for scale: a PNG of white compresses to almost nothing. */
static off_t blank_size(void)
{
        const char *html = hv_tmp("blank.html");
        FILE *f = fopen(html, "w");
        char *dom;
        off_t n;

        cr_assert_not_null(f);
        fputs("<!DOCTYPE html><html><body></body></html>\n", f);
        fclose(f);
        n = render(html, hv_tmp("blank.png"), &dom);
        free(dom);
        return n;
}

Test(report, renders_in_chromium_with_the_violations_in_its_text, .timeout = 600)
{
        const char *traces[] = { VIOLATIONS, STRESS, NULL };
        const char *html = hv_tmp("report.html");
        struct check_result v, s;
        struct hv_proc p;
        off_t png, blank;
        char *dom;

        cr_assert_eq(check_trace(VIOLATIONS, &v), 0);
        cr_assert_eq(check_trace(STRESS, &s), 0);
        cr_assert_gt(v.nviolations, 0, "the sample has violations");
        cr_assert_eq(report(traces, html, &p), 1, "violations: status 1 (%s)", p.err);
        hv_proc_free(&p);

        blank = blank_size();
        png = render(html, hv_tmp("report.png"), &dom);
        cr_assert_gt(png, 4 * blank,
                     "the screenshot (%lld bytes) shows more than a blank page "
                     "(%lld bytes)",
                     (long long)png, (long long)blank);

        for (size_t i = 0; i < v.nviolations; i++) {
                const struct check_finding *f = &v.violations[i];
                char want[128];

                snprintf(want, sizeof(want), "VIOLATION: %s", check_rule_name(f->rule));
                cr_assert(strstr(dom, want) != NULL, "the page shows %s", want);
                snprintf(want, sizeof(want), "exit #%" PRIu64 "</h4>", f->event);
                cr_assert(strstr(dom, want) != NULL, "the page names exit %" PRIu64, f->event);
                cr_assert(strstr(dom, f->at.text) != NULL, "the page disassembles '%s'",
                          f->at.text);
                /* The exits before it, as dump numbers them, one a line. */
                snprintf(want, sizeof(want), "\n#%-8" PRIu64 " ", f->event - 1);
                cr_assert(strstr(dom, want) != NULL, "the page shows exit %" PRIu64 " before it",
                          f->event - 1);
                if (f->prev.valid)
                        cr_assert(strstr(dom, f->prev.text) != NULL, "and '%s' before it",
                                  f->prev.text);
        }
        {
                char want[64];

                snprintf(want, sizeof(want), "Undetermined deliveries (%zu)", s.nundetermined);
                cr_assert(strstr(dom, want) != NULL, "the stress run's %s", want);
                snprintf(want, sizeof(want), "violations (%zu)", v.nviolations);
                cr_assert(strstr(dom, want) != NULL, "the timeline counts %s", want);
        }
        cr_assert(strstr(dom, "<svg") != NULL, "the timeline is inline SVG");
        cr_assert(strstr(dom, "Exit reasons") != NULL);
        free(dom);
        check_result_free(&v);
        check_result_free(&s);
}

/*
 * The stress run with violations: a kicked eager run recorded here on emu
 * renders with every one of its violations on the page.
 */
Test(report, an_eager_stress_run_shows_its_violations, .timeout = 600)
{
        const char *trace = hv_record_eager_stress("eager-stress.zst");
        const char *html = hv_tmp("eager-stress.html"), *traces[] = { trace, NULL };
        struct check_result r;
        struct hv_proc p;
        char *dom;

        cr_assert_eq(check_trace(trace, &r), 0);
        cr_assert_gt(r.nviolations, 0, "an eager stress run violates");
        cr_assert_eq(report(traces, html, &p), 1, "violations: status 1 (%s)", p.err);
        hv_proc_free(&p);
        cr_assert_gt(render(html, hv_tmp("eager-stress.png"), &dom), 4 * blank_size());
        for (size_t i = 0; i < r.nviolations; i++) {
                char want[128];

                snprintf(want, sizeof(want), "exit #%" PRIu64 "</h4>", r.violations[i].event);
                cr_assert(strstr(dom, want) != NULL,
                          "the page shows the violation at exit %" PRIu64, r.violations[i].event);
        }
        free(dom);
        check_result_free(&r);
}

/* Nothing the browser would fetch, nothing it would run. */
Test(report, the_page_is_self_contained)
{
        const char *traces[] = { VIOLATIONS, STRESS, NULL };
        const char *html = hv_tmp("self.html");
        struct hv_proc p;
        char *page, *s;

        report(traces, html, &p);
        hv_proc_free(&p);
        page = read_all(html);
        cr_assert(strstr(page, "<script") == NULL && strstr(page, "<link") == NULL &&
                  strstr(page, "<img") == NULL && strstr(page, "src=") == NULL &&
                  strstr(page, "url(") == NULL && strstr(page, "@import") == NULL);
        /* The one URL is the SVG namespace name, which is never fetched. */
        for (s = page; (s = strstr(s, "http")); s++)
                cr_assert_eq(strncmp(s, "http://www.w3.org/2000/svg\"", 27), 0, "%.60s", s);
        free(page);
}

/* The exit-reason table adds up to the trace's exits, reason by reason. */
Test(report, the_reason_table_counts_the_exits)
{
        const char *traces[] = { STRESS, NULL };
        const char *html = hv_tmp("reasons.html");
        struct hv_proc p;
        struct hv_trace t;
        size_t by[HVT_EXIT_REASON_COUNT] = { 0 };
        char *page;

        cr_assert_eq(report(traces, html, &p), 0, "no violations: status 0 (%s)", p.err);
        hv_proc_free(&p);
        cr_assert_eq(hv_trace_load(STRESS, &t), HVT_OK);
        for (size_t i = 0; i < t.nexits; i++)
                by[t.exits[i].e.reason]++;
        page = read_all(html);
        for (unsigned r = 0; r < HVT_EXIT_REASON_COUNT; r++) {
                char want[128];

                if (!by[r])
                        continue;
                snprintf(want, sizeof(want), "</span> %s</td><td class=\"n\">%zu</td>",
                         hvt_exit_reason_name(r), by[r]);
                cr_assert(strstr(page, want) != NULL, "%s", want);
        }
        free(page);
        hv_trace_free(&t);
}

/* A guest file name is the recorder's input, hence anyone's: it reaches the page as text. */
Test(report, what_the_trace_supplies_is_escaped)
{
        const char *guest = hv_tmp("a<script>alert(1)&.bin");
        const char *html = hv_tmp("hostile.html");
        const char *args[] = { "--backend", "emu", NULL };
        const char *copy[] = { "/bin/cp", hv_guest("hello"), guest, NULL };
        const char *traces[] = { hv_tmp("rec.zst"), NULL };
        struct hv_trace t;
        struct hv_proc p;
        char *page;

        hv_require_backend("emu");
        cr_assert_eq(hv_run(copy, &p), 0);
        cr_assert_eq(p.status, 0, "%s", p.err);
        hv_proc_free(&p);
        hv_record(guest, args, &t, &p);
        hv_proc_free(&p);
        hv_trace_free(&t);
        report(traces, html, &p);
        hv_proc_free(&p);
        page = read_all(html);
        cr_assert(strstr(page, "<script") == NULL, "no markup from the trace");
        cr_assert(strstr(page, "a&lt;script&gt;alert(1)&amp;.bin") != NULL,
                  "the name is shown escaped");
        free(page);
}

/* ---- two vCPUs ------------------------------------------------------------------ */

/* The text between the first `from` after p and the next `to`, as a new string. */
static char *between(const char *p, const char *from, const char *to)
{
        const char *a = strstr(p, from), *b;

        cr_assert_not_null(a, "no '%s' in the page", from);
        a += strlen(from);
        b = strstr(a, to);
        cr_assert_not_null(b, "no '%s' after '%s'", to, from);
        return strndup(a, (size_t)(b - a));
}

/* The index of seq among vCPU v's exits, or -1. */
static int index_of(const struct hv_vcpu_counts *c, uint64_t seq)
{
        for (size_t i = 0; i < c->exits; i++)
                if (c->seqs[i] == seq)
                        return (int)i;
        return -1;
}

/*
 * Every finding's context lists the exits of the finding's vCPU up to its
 * exit, the last of them (at most six) and only them.
 */
static void expect_context(const char *page, const struct check_finding *f,
                           const struct hv_vcpu_counts *c)
{
        char head[128], *pre;
        const struct hv_vcpu_counts *mine = &c[f->vcpu];
        int at = index_of(mine, f->event), first, lines = 0;

        cr_assert_geq(at, 0, "exit %" PRIu64 " is vCPU %u's", f->event, f->vcpu);
        first = at >= 5 ? at - 5 : 0;
        snprintf(head, sizeof(head), ", vCPU %u, exit #%" PRIu64 "</h4>", f->vcpu, f->event);
        cr_assert(strstr(page, head) != NULL, "the violation's heading names its vCPU: %s", head);
        pre = between(strstr(page, head), "as recorded:</p>\n<pre>", "</pre>");
        cr_assert(strstr(strstr(page, head), "The exits of vCPU") != NULL);
        for (const char *l = pre; *l; l = strchr(l, '\n') + 1, lines++) {
                uint64_t seq;

                cr_assert_eq(*l, '#', "%s", pre);
                seq = strtoull(l + 1, NULL, 10);
                cr_assert_eq(index_of(mine, seq), first + lines,
                             "exit #%" PRIu64 " is vCPU %u's exit %d:\n%s", seq, f->vcpu,
                             first + lines, pre);
                cr_assert_not_null(strchr(l, '\n'));
        }
        cr_assert_eq(lines, at - first + 1, "the exits up to the finding's:\n%s", pre);
        free(pre);
}

Test(report, two_vcpus_keep_their_streams_apart, .timeout = 300)
{
        const char *trace = hv_tmp("two-vcpu.zst"), *html = hv_tmp("two-vcpu.html");
        const char *traces[] = { trace, NULL };
        struct hv_vcpu_counts c[HV_TWO_VCPUS];
        size_t violations[HV_TWO_VCPUS] = { 0 }, undetermined[HV_TWO_VCPUS] = { 0 };
        struct check_result r;
        struct hv_proc p;
        char *page, *dom;

        hv_write_two_vcpu_trace(trace);
        hv_vcpu_counts(trace, c, HV_TWO_VCPUS);
        cr_assert_eq(check_trace(trace, &r), 0, "%s", r.error);
        for (size_t i = 0; i < r.nviolations; i++)
                violations[r.violations[i].vcpu]++;
        for (size_t i = 0; i < r.nundetermined; i++)
                undetermined[r.undetermined[i].vcpu]++;
        /* What the trace is for: a violation on vCPU 0 only, an undetermined on vCPU 1 only. */
        cr_assert(violations[0] > 0 && !violations[1] && undetermined[1] > 0 && !undetermined[0]);

        cr_assert_eq(report(traces, html, &p), 1, "violations: status 1 (%s)", p.err);
        hv_proc_free(&p);
        page = read_all(html);
        cr_assert(strstr(page, "<h3>vCPUs (2)</h3>") != NULL);
        for (unsigned v = 0; v < HV_TWO_VCPUS; v++) {
                char want[400];

                snprintf(want, sizeof(want),
                         "<tr><td class=\"n\">%u</td><td class=\"n\">%zu</td><td class=\"n\">%zu"
                         "</td><td class=\"n\">%zu</td><td class=\"n\">%zu</td><td class=\"n%s\">"
                         "%zu</td><td class=\"n\">%zu</td></tr>",
                         v, c[v].exits, c[v].injects, c[v].delivers, c[v].raises,
                         violations[v] ? " bad" : "", violations[v], undetermined[v]);
                cr_assert(strstr(page, want) != NULL, "vCPU %u's row: %s", v, want);
                snprintf(want, sizeof(want), ">vCPU %u exits (%zu)</text>", v, c[v].exits);
                cr_assert(strstr(page, want) != NULL, "vCPU %u's timeline row", v);
        }
        for (size_t i = 0; i < r.nviolations; i++)
                expect_context(page, &r.violations[i], c);
        for (size_t i = 0; i < r.nundetermined; i++) {
                char want[128];

                snprintf(want, sizeof(want),
                         "<tr><td class=\"n\">%u</td><td class=\"n\">#%" PRIu64 "</td>",
                         r.undetermined[i].vcpu, r.undetermined[i].event);
                cr_assert(strstr(page, want) != NULL, "the undetermined row names its vCPU: %s",
                          want);
        }
        free(page);

        /* And it renders, the findings in its text. */
        cr_assert_gt(render(html, hv_tmp("two-vcpu.png"), &dom), 4 * blank_size());
        for (size_t i = 0; i < r.nviolations; i++) {
                char want[128];

                snprintf(want, sizeof(want), "VIOLATION: %s",
                         check_rule_name(r.violations[i].rule));
                cr_assert(strstr(dom, want) != NULL, "the page shows %s", want);
        }
        free(dom);
        check_result_free(&r);
}

static void expect_error(const char *const *argv, const char *needle)
{
        hv_run_one_line_error(argv, "hvreplay", needle);
}

Test(report, bad_usage_and_bad_traces)
{
        const char *no_out[] = { HVREPLAY, "report", STRESS, NULL };
        const char *no_trace[] = { HVREPLAY, "report", "-o", hv_tmp("x.html"), NULL };
        const char *missing[] = { HVREPLAY, "report",         "/nonexistent.zst",
                                  "-o",     hv_tmp("m.html"), NULL };
        const char *unwritable[] = {
                HVREPLAY, "report", STRESS, "-o", "/nonexistent/d/r.html", NULL
        };
        const char *bad_opt[] = { HVREPLAY, "report", "--frobnicate", STRESS, NULL };
        char *page;

        expect_error(no_out, "-o FILE");
        expect_error(no_trace, "at least one TRACE");
        expect_error(bad_opt, "--frobnicate");
        expect_error(unwritable, "/nonexistent/d/r.html");
        /* A trace that cannot be read is named on stderr and on the page, which is still written.
         */
        expect_error(missing, "/nonexistent.zst");
        page = read_all(hv_tmp("m.html"));
        cr_assert(strstr(page, "/nonexistent.zst") != NULL && strstr(page, "Not read") != NULL);
        free(page);
}
