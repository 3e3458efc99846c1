// SPDX-License-Identifier: MIT
/*
 * The sample outputs in the documentation cannot drift: every fenced block
 * of hvreplay output in the Markdown files at the top of the tree and in
 * docs/ names the command it came from in an HTML comment on the line
 * before its opening fence, and this suite runs that command in the source
 * tree and compares.  Samples that cannot be rerun are marked too, with the
 * reason, so nothing is left unmarked.
 *
 *   <!-- sample: hvreplay ARGS -->          compared line by line
 *   <!-- sample, wrapped: hvreplay ARGS --> compared ignoring all white space
 *                                           (a JSON line wrapped for reading)
 *   <!-- sample: live: REASON -->           a live recording: not compared
 *   <!-- sample: illustration: REASON -->   made up to show a format: not compared
 *   <!-- sample: derived: REASON -->        output on a trace another suite makes from one
 *                                           in traces/ (that suite checks it): not compared
 *
 * Elisions a compared block may use: a line "..." stands for any number of
 * output lines (none too); "..." inside a line for any text, together with
 * the blanks around it (registers shortened, a long line cut).  A line
 * "$ hvreplay ARGS" (or "$ build/hvreplay ARGS") shows the command and must
 * be the marker's.  HV_DOCS=FILE:FILE... checks those files instead of the
 * tree's documents; the commands still run in the source tree.
 */
#include <ctype.h>
#include <errno.h>
#include <glob.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "helpers.h"

#define WILD '\x01' /* "..." in a compiled line */

enum sample_kind { SAMPLE_CHECKED, SAMPLE_LIVE, SAMPLE_ILLUSTRATION, SAMPLE_DERIVED, SAMPLE_KINDS };

/* The kinds a marker names instead of a command: none of them is compared. */
static const char *const unchecked_kinds[SAMPLE_KINDS] = {
        [SAMPLE_LIVE] = "live:",
        [SAMPLE_ILLUSTRATION] = "illustration:",
        [SAMPLE_DERIVED] = "derived:",
};
_Static_assert(sizeof(unchecked_kinds) / sizeof(unchecked_kinds[0]) == SAMPLE_KINDS,
               "one entry per kind");

struct sample {
        char where[300]; /* "docs/checker.md:258": the opening fence */
        enum sample_kind kind;
        bool wrapped;
        char *args;    /* after "hvreplay ", white space collapsed */
        char **lines;  /* the block, the fence's indentation removed */
        size_t nlines; /* trailing blank lines dropped */
};

struct docs {
        struct sample *s;
        size_t n;
        char **problems; /* "FILE:LINE: what is wrong with the marking" */
        size_t nproblems;
};

/* ---- small helpers ------------------------------------------------------------------------- */

static char *xstrdup(const char *s)
{
        char *d = strdup(s);

        cr_assert_not_null(d);
        return d;
}

static void *xgrow(void *p, size_t n, size_t size)
{
        void *q = realloc(p, (n + 1) * size);

        cr_assert_not_null(q);
        return q;
}

static char *xprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xprintf(const char *fmt, ...)
{
        va_list ap;
        char *s;

        va_start(ap, fmt);
        cr_assert_geq(vasprintf(&s, fmt, ap), 0);
        va_end(ap);
        return s;
}

static char *read_text(const char *path)
{
        FILE *f = fopen(path, "r");
        char *buf = NULL;
        size_t len = 0;
        FILE *m;

        cr_assert_not_null(f, "%s: %s", path, strerror(errno));
        m = open_memstream(&buf, &len);
        cr_assert_not_null(m);
        for (int c; (c = getc(f)) != EOF;)
                putc(c, m);
        fclose(f);
        fclose(m);
        return buf;
}

/* Split text into lines (a final newline ends the last line), trailing blanks removed. */
static char **split_lines(const char *text, size_t *n)
{
        char **v = NULL;

        *n = 0;
        for (const char *p = text; *p;) {
                const char *nl = strchr(p, '\n');
                size_t len = nl ? (size_t)(nl - p) : strlen(p);

                while (len && isspace((unsigned char)p[len - 1]))
                        len--;
                v = xgrow(v, *n, sizeof(*v));
                v[(*n)++] = strndup(p, len);
                p = nl ? nl + 1 : p + strlen(p);
        }
        return v;
}

static void free_lines(char **v, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

static const char *skip_blanks(const char *s)
{
        while (*s == ' ' || *s == '\t')
                s++;
        return s;
}

/* s with every run of white space made one space, none at either end (malloc'd). */
static char *collapse(const char *s)
{
        char *d = xstrdup(s), *o = d;

        for (s = skip_blanks(s); *s;) {
                if (isspace((unsigned char)*s)) {
                        while (isspace((unsigned char)*s))
                                s++;
                        if (*s)
                                *o++ = ' ';
                } else {
                        *o++ = *s++;
                }
        }
        *o = 0;
        return d;
}

/* ---- matching ------------------------------------------------------------------------------ */

/* A doc line as a pattern: each "..." with the blanks around it becomes WILD (malloc'd). */
static char *compile_line(const char *line)
{
        char *d = xstrdup(line), *o = d;

        for (const char *s = line; *s;) {
                if (!strncmp(s, "...", 3)) {
                        while (o > d && o[-1] == ' ')
                                o--;
                        *o++ = WILD;
                        s = skip_blanks(s + 3);
                } else {
                        *o++ = *s++;
                }
        }
        *o = 0;
        return d;
}

/* Whether s matches pattern p, where WILD matches any text. */
static bool glob_match(const char *p, const char *s)
{
        const char *star = NULL, *retry = NULL;

        while (*s) {
                if (*p == WILD) {
                        star = p++;
                        retry = s;
                } else if (*p == *s) {
                        p++;
                        s++;
                } else if (star) {
                        p = star + 1;
                        s = ++retry;
                } else {
                        return false;
                }
        }
        while (*p == WILD)
                p++;
        return !*p;
}

static bool is_command_line(const char *line)
{
        return !strncmp(skip_blanks(line), "$ ", 2);
}

static bool is_elision_line(const char *line)
{
        return !strcmp(skip_blanks(line), "...");
}

static char *strip_space(const char *s)
{
        char *d = xstrdup(s), *o = d;

        for (; *s; s++)
                if (!isspace((unsigned char)*s))
                        *o++ = *s;
        *o = 0;
        return d;
}

/*
 * Whether output matches the block lines (command lines left out).  When
 * it does not, *bad is the index in lines of the first line no output
 * fits (line mode), or SIZE_MAX (wrapped mode: the block as a whole).
 */
static bool block_matches(char *const *lines, size_t nlines, bool wrapped, const char *output,
                          size_t *bad)
{
        size_t nout, np = 0, *idx = calloc(nlines + 1, sizeof(size_t));
        char **out, **pat = calloc(nlines + 1, sizeof(char *));
        bool ok;

        cr_assert(idx && pat);
        for (size_t i = 0; i < nlines; i++)
                if (!is_command_line(lines[i])) {
                        idx[np] = i;
                        pat[np++] = lines[i];
                }
        *bad = SIZE_MAX;
        if (wrapped) {
                char *joined = xstrdup(""), *p, *want, *have;

                for (size_t i = 0; i < np; i++) {
                        char *j = xprintf("%s %s", joined, pat[i]);

                        free(joined);
                        joined = j;
                }
                p = compile_line(joined);
                want = strip_space(p);
                have = strip_space(output);
                ok = glob_match(want, have);
                free(joined);
                free(p);
                free(want);
                free(have);
                free(pat);
                free(idx);
                return ok;
        }

        /* reach[i][j]: the first i pattern lines match the first j output lines. */
        out = split_lines(output, &nout);
        bool *reach = calloc((np + 1) * (nout + 1), sizeof(bool));
        size_t deepest = 0;

        cr_assert_not_null(reach);
#define R(i, j) reach[(i) * (nout + 1) + (j)]
        R(0, 0) = true;
        for (size_t i = 0; i < np; i++) {
                bool any = false;

                if (is_elision_line(pat[i])) {
                        for (size_t j = 0; j <= nout; j++) {
                                any = any || R(i, j);
                                R(i + 1, j) = any;
                        }
                } else {
                        char *p = compile_line(pat[i]);

                        for (size_t j = 0; j < nout; j++)
                                if (R(i, j) && glob_match(p, out[j]))
                                        R(i + 1, j + 1) = any = true;
                        free(p);
                }
                if (!any)
                        break;
                deepest = i + 1;
        }
        ok = R(np, nout);
        if (!ok)
                *bad = deepest < np ? idx[deepest] : SIZE_MAX;
#undef R
        free(reach);
        free_lines(out, nout);
        free(pat);
        free(idx);
        return ok;
}

/* ---- reading the documents ------------------------------------------------------------------ */

static bool is_fence(const char *line)
{
        return !strncmp(skip_blanks(line), "```", 3);
}

static void problem(struct docs *d, const char *where, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void problem(struct docs *d, const char *where, const char *fmt, ...)
{
        va_list ap;
        char *msg, *s;

        va_start(ap, fmt);
        cr_assert_geq(vasprintf(&msg, fmt, ap), 0);
        va_end(ap);
        s = xprintf("%s: %s", where, msg);
        free(msg);
        d->problems = xgrow(d->problems, d->nproblems, sizeof(char *));
        d->problems[d->nproblems++] = s;
}

/*
 * Whether a block that carries no marker looks like tool output: a shown
 * hvrec or hvreplay command, a trace of traces/, or lines only hvreplay
 * prints.  Such a block must be marked.
 */
static bool looks_like_output(char *const *lines, size_t n)
{
        static const char *const res[] = {
                "^[[:space:]]*\\$ ([^ ]*/)?hv(replay|rec)( |$)",
                "traces/[^ ]*\\.zst",
                "deliveries checked \\(",
                "^Analyze events for trace ",
                "^#[0-9]+ +[0-9]+\\.[0-9]{6} ",
                "^ *(-> )?#[0-9]+ +(io|mmio|hlt|intr|irq-window|debug|shutdown|exception) ",
        };
        bool hit = false;

        for (size_t r = 0; r < sizeof(res) / sizeof(res[0]) && !hit; r++) {
                regex_t re;

                cr_assert_eq(regcomp(&re, res[r], REG_EXTENDED | REG_NOSUB), 0, "%s", res[r]);
                for (size_t i = 0; i < n && !hit; i++)
                        hit = !regexec(&re, lines[i], 0, NULL, 0);
                regfree(&re);
        }
        return hit;
}

/* Parse a marker line; false if the line is no marker.  Problems go to d. */
static bool parse_marker(struct docs *d, const char *where, const char *line, struct sample *s)
{
        const char *p = skip_blanks(line), *end;
        char *body, *rest;
        size_t len;

        if (strncmp(p, "<!--", 4))
                return false;
        p = skip_blanks(p + 4);
        if (strncmp(p, "sample", 6))
                return false;
        end = strstr(p, "-->");
        if (!end || end[3]) {
                problem(d, where, "a sample marker is one line ending in -->");
                return false;
        }
        len = (size_t)(end - p);
        body = strndup(p, len);
        cr_assert_not_null(body);
        memset(s, 0, sizeof(*s));
        if (!strncmp(body, "sample:", 7)) {
                rest = body + 7;
        } else if (!strncmp(body, "sample, wrapped:", 16)) {
                rest = body + 16;
                s->wrapped = true;
        } else {
                problem(d, where, "unknown marker \"%s\" (sample: or sample, wrapped:)", body);
                free(body);
                return false;
        }
        rest = collapse(rest);
        s->kind = SAMPLE_CHECKED;
        for (int k = 0; k < SAMPLE_KINDS; k++)
                if (unchecked_kinds[k] &&
                    !strncmp(rest, unchecked_kinds[k], strlen(unchecked_kinds[k])))
                        s->kind = (enum sample_kind)k;
        if (s->kind != SAMPLE_CHECKED) {
                if (s->wrapped || !*skip_blanks(strchr(rest, ':') + 1))
                        problem(d, where, "\"%s\" needs a reason and takes no \"wrapped\"", rest);
        } else if (!strncmp(rest, "hvreplay ", 9)) {
                s->args = xstrdup(rest + 9);
                if (strpbrk(s->args, "'\"\\$`*?;|&<>"))
                        problem(d, where,
                                "the command is split on blanks only: no quoting in \"%s\"",
                                s->args);
        } else {
                problem(d, where,
                        "\"%s\": a marker names an hvreplay command, live:, illustration: or "
                        "derived:",
                        rest);
                s->kind = SAMPLE_ILLUSTRATION; /* reported; there is no command to run */
        }
        free(rest);
        free(body);
        return true;
}

static void scan_file(struct docs *d, const char *path, const char *shown)
{
        char *text = read_text(path);
        size_t n;
        char **lines = split_lines(text, &n);

        for (size_t i = 0; i < n; i++) {
                char where[300];
                struct sample s;
                size_t j, indent;
                bool marked;

                snprintf(where, sizeof(where), "%s:%zu", shown, i + 1);
                if (!is_fence(lines[i])) {
                        /* A marker before a fence is read with its block, below. */
                        if (!(i + 1 < n && is_fence(lines[i + 1])) &&
                            parse_marker(d, where, lines[i], &s)) {
                                problem(d, where,
                                        "a sample marker goes on the line right before a "
                                        "block's opening fence");
                                free(s.args);
                        }
                        continue;
                }
                indent = (size_t)(skip_blanks(lines[i]) - lines[i]);
                for (j = i + 1; j < n && !is_fence(lines[j]); j++)
                        ;
                if (j >= n) {
                        problem(d, where, "a fenced block that never closes");
                        break;
                }
                marked = i > 0 && parse_marker(d, where, lines[i - 1], &s);
                if (!marked) {
                        if (looks_like_output(lines + i + 1, j - i - 1))
                                problem(d, where,
                                        "a block of tool output without a sample "
                                        "marker (see tests/test_docs.c)");
                        i = j;
                        continue;
                }
                snprintf(s.where, sizeof(s.where), "%s", where);
                for (size_t k = i + 1; k < j; k++) {
                        const char *l = lines[k];

                        for (size_t c = 0; c < indent && *l == ' '; c++)
                                l++;
                        s.lines = xgrow(s.lines, s.nlines, sizeof(char *));
                        s.lines[s.nlines++] = xstrdup(l);
                }
                while (s.nlines && !*s.lines[s.nlines - 1])
                        free(s.lines[--s.nlines]);
                if (s.kind == SAMPLE_CHECKED) {
                        bool literal = false;

                        for (size_t k = 0; k < s.nlines; k++) {
                                const char *l = s.lines[k];

                                if (is_command_line(l)) {
                                        char *shown_cmd = collapse(skip_blanks(l) + 2);
                                        const char *c = shown_cmd;

                                        if (!strncmp(c, "build/", 6))
                                                c += 6;
                                        if (strncmp(c, "hvreplay ", 9) || strcmp(c + 9, s.args))
                                                problem(d, where,
                                                        "the block shows \"%s\", the marker runs "
                                                        "\"hvreplay %s\"",
                                                        shown_cmd, s.args);
                                        free(shown_cmd);
                                } else if (!is_elision_line(l) && *l) {
                                        literal = true;
                                }
                        }
                        if (!literal)
                                problem(d, where,
                                        "a sample with nothing but elisions checks nothing");
                }
                d->s = xgrow(d->s, d->n, sizeof(*d->s));
                d->s[d->n++] = s;
                i = j;
        }
        free_lines(lines, n);
        free(text);
}

/* The documents: HV_DOCS, or the Markdown files at the top of the tree and in docs/. */
static void scan_docs(struct docs *d)
{
        const char *env = getenv("HV_DOCS");

        memset(d, 0, sizeof(*d));
        cr_assert_eq(chdir(HV_SOURCE_DIR), 0, "%s: %s", HV_SOURCE_DIR, strerror(errno));
        if (env && *env) {
                char *list = xstrdup(env), *save = NULL;

                for (char *f = strtok_r(list, ":", &save); f; f = strtok_r(NULL, ":", &save))
                        scan_file(d, f, f);
                free(list);
                return;
        }

        glob_t g;

        cr_assert_eq(glob("*.md", 0, NULL, &g), 0, "no *.md in %s", HV_SOURCE_DIR);
        cr_assert_eq(glob("docs/*.md", GLOB_APPEND, NULL, &g), 0, "no docs/*.md");
        for (size_t i = 0; i < g.gl_pathc; i++)
                scan_file(d, g.gl_pathv[i], g.gl_pathv[i]);
        globfree(&g);
}

static void free_docs(struct docs *d)
{
        for (size_t i = 0; i < d->n; i++) {
                free(d->s[i].args);
                free_lines(d->s[i].lines, d->s[i].nlines);
        }
        free(d->s);
        for (size_t i = 0; i < d->nproblems; i++)
                free(d->problems[i]);
        free(d->problems);
}

/* Run a sample's command in the source tree; its stdout (malloc'd). */
static char *run_sample(const struct sample *s)
{
        char *args = xstrdup(s->args), *save = NULL;
        const char *argv[64] = { HVREPLAY };
        size_t argc = 1;
        struct hv_proc p;
        char *out;

        for (char *a = strtok_r(args, " ", &save); a; a = strtok_r(NULL, " ", &save)) {
                cr_assert_lt(argc, sizeof(argv) / sizeof(argv[0]) - 1, "%s: too many arguments",
                             s->where);
                argv[argc++] = a;
        }
        cr_assert_eq(hv_run(argv, &p), 0);
        if (p.status == 2) /* hvreplay's status for bad usage or an unreadable trace */
                fprintf(stderr, "%s: hvreplay %s: exit status 2: %s", s->where, s->args, p.err);
        out = p.out;
        p.out = NULL;
        hv_proc_free(&p);
        free(args);
        return out;
}

/* ---- the documents --------------------------------------------------------------------------- */

Test(docs, every_sample_is_marked_and_every_marker_well_formed)
{
        struct docs d;
        size_t checked = 0;

        scan_docs(&d);
        for (size_t i = 0; i < d.nproblems; i++)
                fprintf(stderr, "%s\n", d.problems[i]);
        for (size_t i = 0; i < d.n; i++)
                checked += d.s[i].kind == SAMPLE_CHECKED;
        cr_expect_eq(d.nproblems, 0, "%zu problems with the sample markers (listed above)",
                     d.nproblems);
        if (!getenv("HV_DOCS"))
                cr_expect_geq(checked, 10, "only %zu checked samples: the markers are gone?",
                              checked);
        free_docs(&d);
}

Test(docs, every_checked_sample_is_what_its_command_prints)
{
        struct docs d;
        size_t failed = 0, checked = 0;

        scan_docs(&d);
        for (size_t i = 0; i < d.n; i++) {
                const struct sample *s = &d.s[i];
                char *out;
                size_t bad;

                if (s->kind != SAMPLE_CHECKED)
                        continue;
                checked++;
                out = run_sample(s);
                if (!block_matches(s->lines, s->nlines, s->wrapped, out, &bad)) {
                        failed++;
                        if (bad == SIZE_MAX)
                                fprintf(stderr, "%s: the sample is not what `hvreplay %s` prints",
                                        s->where, s->args);
                        else
                                fprintf(stderr,
                                        "%s: `hvreplay %s`: no output line fits the sample's line "
                                        "%zu:\n  %s",
                                        s->where, s->args, bad + 1, s->lines[bad]);
                        fprintf(stderr, "\n---- it prints ----\n%s---- end ----\n", out);
                }
                free(out);
        }
        cr_expect_gt(checked, 0, "no checked samples");
        cr_expect_eq(failed, 0, "%zu of %zu samples differ from their command's output (above)",
                     failed, checked);
        free_docs(&d);
}

/*
 * The comparison pins every line: changing the first digit or the first
 * letter of any one line of any checked sample makes it fail.  A line that still matches
 * then is checked by nothing (an elision swallows it, or it fits another
 * output line), and the sample must be tightened.
 */
Test(docs, a_change_to_any_line_of_a_sample_is_caught)
{
        struct docs d;
        size_t loose = 0, mutated = 0;

        scan_docs(&d);
        for (size_t i = 0; i < d.n; i++) {
                const struct sample *s = &d.s[i];
                char *out;
                size_t bad;

                if (s->kind != SAMPLE_CHECKED)
                        continue;
                out = run_sample(s);
                if (!block_matches(s->lines, s->nlines, s->wrapped, out, &bad)) {
                        free(out); /* every_checked_sample_is_what_its_command_prints says why */
                        continue;
                }
                for (size_t k = 0; k < s->nlines; k++) {
                        char *l = s->lines[k];

                        if (is_command_line(l) || is_elision_line(l))
                                continue;
                        /* Its first digit (a count, an address) and its first letter. */
                        for (int pass = 0; pass < 2; pass++) {
                                char *c, saved;

                                for (c = l; *c && !(pass ? isalpha((unsigned char)*c)
                                                         : isdigit((unsigned char)*c));
                                     c++)
                                        ;
                                if (!*c)
                                        continue;
                                saved = *c;
                                *c = pass ? (char)(islower((unsigned char)saved)
                                                           ? toupper((unsigned char)saved)
                                                           : tolower((unsigned char)saved))
                                          : (char)(saved == '9' ? '0' : saved + 1);
                                mutated++;
                                if (block_matches(s->lines, s->nlines, s->wrapped, out, &bad)) {
                                        loose++;
                                        fprintf(stderr, "%s: line %zu still matches changed: %s\n",
                                                s->where, k + 1, l);
                                }
                                *c = saved;
                        }
                }
                free(out);
        }
        cr_expect_gt(mutated, 0, "no sample line was changed");
        cr_expect_eq(loose, 0, "%zu of %zu changed lines went unnoticed (above)", loose, mutated);
        free_docs(&d);
}

/* The marking rules on a document with one fault of each kind (HV_DOCS names it). */
Test(docs_markers, each_fault_is_reported_once_where_it_is)
{
        static const char doc[] =
                "<!-- sample: hvreplay check traces/demo.zst -->\n" /* 1: fine */
                "```\n"
                "traces/demo.zst: 1 deliveries checked (kvm, policy window): ...\n"
                "...\n"
                "```\n"
                "```\n" /* 6: output, unmarked */
                "$ hvreplay stats x.zst\n"
                "```\n"
                "<!-- sample: live: far from its block -->\n" /* 9: not before a fence */
                "\n"
                "<!-- sample: guessed: no such kind -->\n" /* 11 */
                "```\n"
                "#3  io ...\n"
                "```\n"
                "<!-- sample: live: -->\n" /* 15: no reason */
                "```\n"
                "x\n"
                "```\n"
                "<!-- sample: hvreplay check 'a b' -->\n" /* 19: quoting */
                "```\n"
                "x\n"
                "```\n"
                "<!-- sample: hvreplay check traces/demo.zst -->\n" /* 23: another command */
                "```\n"
                "$ hvreplay check traces/hello.zst\n"
                "x\n"
                "```\n"
                "<!-- sample: hvreplay check traces/demo.zst -->\n" /* 28: elisions only */
                "```\n"
                "...\n"
                "```\n"
                "<!-- sample: derived: made by another suite -->\n" /* 32: fine */
                "```\n"
                "$ hvreplay diff a.zst b.zst\n"
                "```\n";
        static const char *const want[] = {
                "t.md:6: a block of tool output without a sample marker",
                "t.md:9: a sample marker goes on the line right before",
                "t.md:12: \"guessed: no such kind\": a marker names",
                "t.md:16: \"live:\" needs a reason",
                "t.md:20: the command is split on blanks only",
                "t.md:24: the block shows \"hvreplay check traces/hello.zst\"",
                "t.md:29: a sample with nothing but elisions checks nothing",
        };
        const char *path = hv_tmp("t.md");
        FILE *f = fopen(path, "w");
        struct docs d;

        cr_assert_not_null(f);
        cr_assert_eq(fputs(doc, f) >= 0 && fclose(f) == 0, true);
        memset(&d, 0, sizeof(d));
        scan_file(&d, path, "t.md");
        for (size_t i = 0; i < d.nproblems; i++)
                fprintf(stderr, "%s\n", d.problems[i]);
        cr_assert_eq(d.nproblems, sizeof(want) / sizeof(want[0]), "%zu problems (above)",
                     d.nproblems);
        for (size_t i = 0; i < d.nproblems; i++)
                cr_expect(!strncmp(d.problems[i], want[i], strlen(want[i])), "problem %zu: %s", i,
                          d.problems[i]);
        cr_expect_eq(d.n, 7, "every marked block is a sample: %zu", d.n);
        cr_expect_eq(d.s[0].kind, SAMPLE_CHECKED);
        cr_expect_str_eq(d.s[0].args, "check traces/demo.zst");
        cr_expect_eq(d.s[d.n - 1].kind, SAMPLE_DERIVED);
        free_docs(&d);
}

/* ---- the comparison itself ----------------------------------------------------------------- */

static bool matches(const char *block, const char *output, bool wrapped)
{
        size_t n, bad;
        char **lines = split_lines(block, &n);
        bool ok = block_matches(lines, n, wrapped, output, &bad);

        free_lines(lines, n);
        return ok;
}

Test(docs_match, an_elided_line_part_stands_for_any_text_and_only_there)
{
        const char *out = "#55  io  ax=0030 bx=0000 cx=0000 fl=0046 if=0\n";

        cr_assert(matches("#55  io  ax=0030 ... fl=0046 if=0", out, false));
        cr_assert(matches("#55  io ...", out, false), "a cut line");
        cr_assert(matches("... fl=0046 if=0", out, false));
        cr_assert_not(matches("#55  io  ax=0031 ... fl=0046 if=0", out, false), "a changed value");
        cr_assert_not(matches("#55  io  ax=0030 ... fl=0047 if=0", out, false));
        cr_assert_not(matches("#55  io  ax=0030 ... fl=0046", out, false), "a line is whole");
        cr_assert_not(matches("#5  io ...", out, false), "anchored at the start");
}

Test(docs_match, an_elision_line_stands_for_any_number_of_lines)
{
        const char *out = "a 1\nb 2\nc 3\nd 4\n";

        cr_assert(matches("a 1\n...\nd 4", out, false));
        cr_assert(matches("...\nb 2\nc 3\n...", out, false));
        cr_assert(matches("a 1\n...\nb 2\n...\nd 4", out, false), "none too");
        cr_assert_not(matches("a 1\nb 2", out, false), "the rest must be elided");
        cr_assert_not(matches("...\nc 3\nb 2\n...", out, false), "in order");
        cr_assert_not(matches("...\nb 3\n...", out, false));
        cr_assert_not(matches("a 1\nb 2\nc 3\nd 4\ne 5", out, false), "no line beyond the output");
}

Test(docs_match, blank_lines_and_the_shown_command)
{
        cr_assert(matches("$ hvreplay stats x\n\nA\n\nB", "\nA\n\nB\n", false));
        cr_assert_not(matches("A\nB", "A\n\nB\n", false), "a blank line is a line");
}

Test(docs_match, a_wrapped_block_ignores_white_space_only)
{
        const char *out = "{\"a\":1,\"msg\":\"two words\",\"list\":[{\"x\":1},{\"x\":2}]}\n";

        cr_assert(matches("{\"a\":1,\n  \"msg\":\"two\n  words\",\"list\":[{\"x\":1}, ...}]}", out,
                          true));
        cr_assert_not(matches("{\"a\":2,\n  \"msg\":\"two words\", ...}", out, true));
        cr_assert_not(matches("{\"a\":1, \"list\":[ ...}]}", out, true), "a key left out");
}

Test(docs_match, blocks_of_output_are_recognised)
{
        char *dump[] = { "#55          0.001161  io         real      0000:1025  sti" };
        char *check[] = { "x.zst: 1 deliveries checked (kvm, policy window): 0 violations" };
        char *cmd[] = { "$ build/hvrec run -o demo.zst build/guests/demo.bin" };
        char *diff[] = { "  -> #30      io         real      0000:101f  jmp 0x1018" };
        char *code[] = { "cli; sti; X: inc ax         sti-shadow", "make bench" };

        cr_assert(looks_like_output(dump, 1));
        cr_assert(looks_like_output(check, 1));
        cr_assert(looks_like_output(cmd, 1));
        cr_assert(looks_like_output(diff, 1));
        cr_assert_not(looks_like_output(code, 2));
}
