// SPDX-License-Identifier: MIT
/*
 * The man pages (man/) agree with the tools: every option and command a
 * --help text names is in the man page, and every one the man page names
 * is in a --help text, so the two cannot drift apart.  hvtrace(5) names
 * every record type and exit reason, and `cmake --install` installs all
 * three pages.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <criterion/criterion.h>

#include "helpers.h"

#define MAN_DIR HV_SOURCE_DIR "/man"

/* A set of words (options or command names), in the order first seen. */
struct words {
        char *v[256];
        size_t n;
};

static bool has(const struct words *w, const char *s)
{
        for (size_t i = 0; i < w->n; i++)
                if (!strcmp(w->v[i], s))
                        return true;
        return false;
}

static void add(struct words *w, const char *s, size_t len)
{
        char *dup = strndup(s, len);

        cr_assert_not_null(dup);
        if (has(w, dup) || w->n == sizeof(w->v) / sizeof(w->v[0])) {
                free(dup);
                return;
        }
        w->v[w->n++] = dup;
}

static void words_free(struct words *w)
{
        for (size_t i = 0; i < w->n; i++)
                free(w->v[i]);
        w->n = 0;
}

static char *read_text(const char *path)
{
        FILE *f = fopen(path, "r");
        char *buf = NULL;
        size_t len = 0;

        cr_assert_not_null(f, "cannot open %s", path);
        cr_assert_eq(getdelim(&buf, &len, '\0', f) >= 0, 1, "cannot read %s", path);
        fclose(f);
        return buf;
}

/*
 * Options named in plain text: "--word-word" and "-x" where they start a
 * word (so "1-127", "sti-shadow" and "mov-ss" are not options).
 */
static void options_in(const char *s, size_t len, struct words *w)
{
        for (size_t i = 0; i < len; i++) {
                if (s[i] != '-' || (i && !strchr(" \t\n([,|'", s[i - 1])))
                        continue;
                if (i + 2 < len && s[i + 1] == '-' && islower((unsigned char)s[i + 2])) {
                        size_t e = i + 2;

                        while (e < len && (islower((unsigned char)s[e]) ||
                                           isdigit((unsigned char)s[e]) || s[e] == '-'))
                                e++;
                        while (s[e - 1] == '-')
                                e--;
                        add(w, s + i, e - i);
                        i = e - 1;
                } else if (i + 1 < len && isalpha((unsigned char)s[i + 1]) &&
                           (i + 2 == len ||
                            !(isalnum((unsigned char)s[i + 2]) || s[i + 2] == '-'))) {
                        add(w, s + i, 2);
                }
        }
}

/* The command names of a top-level --help: the first word of each line under "Commands:". */
static void commands_in_help(const char *help, struct words *w)
{
        const char *p = strstr(help, "\nCommands:\n");

        cr_assert_not_null(p, "the --help text has a Commands: section");
        p += strlen("\nCommands:\n");
        while (p[0] == ' ' && p[1] == ' ' && isalpha((unsigned char)p[2])) {
                const char *s = p + 2, *e = s;

                while (isalnum((unsigned char)*e) || *e == '-')
                        e++;
                add(w, s, (size_t)(e - s));
                p = strchr(p, '\n');
                if (!p)
                        break;
                p++;
        }
}

/* A man page as the words it shows: comments dropped, font escapes removed, \- as -. */
struct man {
        char *text;     /* plain text, one roff line per line */
        char *sect[64]; /* start of each .SH / .SS line in text */
        bool is_ss[64]; /* .SS, not .SH */
        size_t nsect;
};

static void man_load(struct man *m, const char *path)
{
        char *roff = read_text(path), *out = malloc(strlen(roff) + 1);
        size_t o = 0;

        cr_assert_not_null(out);
        memset(m, 0, sizeof(*m));
        for (char *line = roff; *line;) {
                char *nl = strchr(line, '\n');
                size_t len = nl ? (size_t)(nl - line) : strlen(line);

                if (strncmp(line, ".\\\"", 3)) {
                        bool sh = !strncmp(line, ".SH ", 4), ss = !strncmp(line, ".SS ", 4);

                        if ((sh || ss) && m->nsect < sizeof(m->sect) / sizeof(m->sect[0])) {
                                m->is_ss[m->nsect] = ss;
                                m->sect[m->nsect++] = out + o;
                        }
                        for (size_t i = 0; i < len; i++) {
                                if (line[i] != '\\' || i + 1 == len) {
                                        out[o++] = line[i];
                                } else if (line[i + 1] == 'f' && i + 2 < len) {
                                        i += 2; /* \fB, \fI, \fR, \fP */
                                } else if (line[i + 1] == '-' || line[i + 1] == 'e' ||
                                           line[i + 1] == ' ') {
                                        out[o++] = line[i + 1] == 'e' ? '\\' : line[i + 1];
                                        i++;
                                } else {
                                        out[o++] = line[i];
                                }
                        }
                        out[o++] = '\n';
                }
                line += len + (nl ? 1 : 0);
        }
        out[o] = 0;
        free(roff);
        m->text = out;
}

/* The text of section i, up to the next section of the same or a higher level. */
static size_t man_sect_len(const struct man *m, size_t i)
{
        for (size_t j = i + 1; j < m->nsect; j++)
                if (!m->is_ss[j] || m->is_ss[i])
                        return (size_t)(m->sect[j] - m->sect[i]);
        return strlen(m->sect[i]);
}

/* Index of ".SH name" or ".SS name ..." (by its first word), or -1. */
static int man_find(const struct man *m, bool ss, const char *name)
{
        size_t n = strlen(name);

        for (size_t i = 0; i < m->nsect; i++)
                if (m->is_ss[i] == ss && !strncmp(m->sect[i] + 4, name, n) &&
                    (m->sect[i][4 + n] == ' ' || m->sect[i][4 + n] == '\n'))
                        return (int)i;
        return -1;
}

/* The first word of each .SS under .SH COMMANDS. */
static void man_commands(const struct man *m, struct words *w)
{
        int sh = man_find(m, false, "COMMANDS");

        cr_assert_geq(sh, 0, "the man page has a COMMANDS section");
        for (size_t i = (size_t)sh + 1; i < m->nsect && m->is_ss[i]; i++) {
                const char *s = m->sect[i] + 4;

                add(w, s, strcspn(s, " \n"));
        }
}

/* Whether `a` and `b` hold the same words; if not, what differs, in `why`. */
static bool same_words(const struct words *a, const char *aname, const struct words *b,
                       const char *bname, char *why, size_t len)
{
        size_t o = 0;

        why[0] = 0;
        for (size_t i = 0; i < a->n; i++)
                if (!has(b, a->v[i]) && o < len)
                        o += (size_t)snprintf(why + o, len - o, " %s in %s, not in %s;", a->v[i],
                                              aname, bname);
        for (size_t i = 0; i < b->n; i++)
                if (!has(a, b->v[i]) && o < len)
                        o += (size_t)snprintf(why + o, len - o, " %s in %s, not in %s;", b->v[i],
                                              bname, aname);
        return why[0] == 0;
}

static char *help_of(const char *const *argv)
{
        struct hv_proc p;
        char *out;

        cr_assert_eq(hv_run(argv, &p), 0);
        cr_assert_eq(p.status, 0, "%s %s --help: status %d", argv[0], argv[1], p.status);
        out = p.out;
        p.out = NULL;
        hv_proc_free(&p);
        return out;
}

/* The options of every --help text of a tool, and its commands. */
static void tool_help(const char *tool, struct words *opts, struct words *cmds)
{
        const char *top[] = { tool, "--help", NULL };
        char *help = help_of(top);

        commands_in_help(help, cmds);
        options_in(help, strlen(help), opts);
        free(help);
        cr_assert_gt(cmds->n, 0);
        for (size_t i = 0; i < cmds->n; i++) {
                const char *argv[] = { tool, cmds->v[i], "--help", NULL };

                help = help_of(argv);
                options_in(help, strlen(help), opts);
                free(help);
        }
}

static void assert_tool_agrees(const char *tool, const char *page)
{
        struct words hopts = { 0 }, hcmds = { 0 }, mopts = { 0 }, mcmds = { 0 };
        struct man m;
        char why[2048];

        tool_help(tool, &hopts, &hcmds);
        man_load(&m, page);
        options_in(m.text, strlen(m.text), &mopts);
        man_commands(&m, &mcmds);
        cr_assert(same_words(&hcmds, "--help", &mcmds, page, why, sizeof(why)),
                  "commands differ:%s", why);
        cr_assert(same_words(&hopts, "--help", &mopts, page, why, sizeof(why)), "options differ:%s",
                  why);
        words_free(&hopts);
        words_free(&hcmds);
        words_free(&mopts);
        words_free(&mcmds);
        free(m.text);
}

Test(man, hvrec_page_and_help_name_the_same_commands_and_options)
{
        assert_tool_agrees(HVREC, MAN_DIR "/hvrec.1");
}

Test(man, hvreplay_page_and_help_name_the_same_commands_and_options)
{
        assert_tool_agrees(HVREPLAY, MAN_DIR "/hvreplay.1");
}

/* Options shared by commands (--format, --json) must each be in their own command's section. */
Test(man, each_hvreplay_command_section_has_exactly_that_commands_options)
{
        struct words cmds = { 0 }, unused = { 0 };
        struct man m;
        char why[2048];

        tool_help(HVREPLAY, &unused, &cmds);
        man_load(&m, MAN_DIR "/hvreplay.1");
        for (size_t i = 0; i < cmds.n; i++) {
                const char *argv[] = { HVREPLAY, cmds.v[i], "--help", NULL };
                struct words h = { 0 }, s = { 0 }, common = { 0 };
                char *help = help_of(argv);
                int sect = man_find(&m, true, cmds.v[i]);

                cr_assert_geq(sect, 0, "hvreplay.1 has a section for %s", cmds.v[i]);
                options_in(help, strlen(help), &h);
                options_in(m.sect[sect], man_sect_len(&m, (size_t)sect), &s);
                /* -h/--help is every command's, documented once under OPTIONS. */
                options_in("-h --help", 9, &common);
                for (size_t j = 0; j < common.n; j++)
                        cr_assert(has(&h, common.v[j]), "%s --help lists %s", cmds.v[i],
                                  common.v[j]);
                for (size_t j = 0; j < h.n;)
                        if (has(&common, h.v[j])) {
                                free(h.v[j]);
                                h.v[j] = h.v[--h.n];
                        } else {
                                j++;
                        }
                cr_assert(same_words(&h, "--help", &s, "its man section", why, sizeof(why)),
                          "hvreplay %s:%s", cmds.v[i], why);
                free(help);
                words_free(&h);
                words_free(&s);
                words_free(&common);
        }
        words_free(&cmds);
        words_free(&unused);
        free(m.text);
}

/* The comparison sees roff-escaped options, and a drift either way. */
Test(man, the_comparison_catches_drift)
{
        struct words help = { 0 }, page = { 0 };
        char why[256];
        const char *help_text = "  --max-findings N   print\n  -q, --quiet\n";
        const char *roff_line = "\\fB\\-\\-max\\-findings\\fP N, \\-q and 1\\-127, sti-shadow\n";
        const char *tmp = hv_tmp("drift.1");
        FILE *f = fopen(tmp, "w");
        struct man m;

        cr_assert_not_null(f);
        fprintf(f, ".\\\" \\-\\-commented\n.SH OPTIONS\n%s", roff_line);
        fclose(f);
        man_load(&m, tmp);
        options_in(m.text, strlen(m.text), &page);
        cr_assert_eq(page.n, 2, "found %zu options in %s", page.n, m.text);
        cr_assert(has(&page, "--max-findings") && has(&page, "-q"));

        options_in(help_text, strlen(help_text), &help);
        cr_assert_not(same_words(&help, "help", &page, "page", why, sizeof(why)));
        cr_assert(strstr(why, "--quiet in help, not in page") != NULL, "%s", why);
        add(&page, "--quiet", 7);
        cr_assert(same_words(&help, "help", &page, "page", why, sizeof(why)), "%s", why);
        add(&page, "--frobnicate", 12);
        cr_assert_not(same_words(&help, "help", &page, "page", why, sizeof(why)));
        cr_assert(strstr(why, "--frobnicate in page, not in help") != NULL, "%s", why);
        words_free(&help);
        words_free(&page);
        free(m.text);
}

/* hvtrace(5) names every record type and exit reason by the names the tools print. */
Test(man, hvtrace5_names_every_record_type_and_exit_reason)
{
        struct man m;

        man_load(&m, MAN_DIR "/hvtrace.5");
        for (unsigned t = HVT_REC_HEADER; t < HVT_REC_TYPE_COUNT; t++) {
                char want[64];

                snprintf(want, sizeof(want), "\n.BR %s \" (%u)\"", hvt_rec_type_name(t), t);
                cr_assert(strstr(m.text, want) != NULL, "hvtrace.5 describes record type %u (%s)",
                          t, hvt_rec_type_name(t));
        }
        for (unsigned r = 0; r < HVT_EXIT_REASON_COUNT; r++) {
                char want[64];

                snprintf(want, sizeof(want), "%s (%u)", hvt_exit_reason_name(r), r);
                cr_assert(strstr(m.text, want) != NULL, "hvtrace.5 lists exit reason %s",
                          hvt_exit_reason_name(r));
        }
        free(m.text);
}

Test(man, cmake_install_installs_the_pages)
{
        const char *prefix = hv_tmp("prefix");
        const char *argv[] = { HV_CMAKE, "--install", HV_BUILD_DIR, "--prefix", prefix, NULL };
        static const char *const pages[] = { "man1/hvrec.1", "man1/hvreplay.1", "man5/hvtrace.5" };
        struct hv_proc p;

        cr_assert_eq(hv_run(argv, &p), 0);
        cr_assert_eq(p.status, 0, "cmake --install failed: %s", p.err);
        hv_proc_free(&p);
        for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
                char path[1024];
                struct stat st;

                snprintf(path, sizeof(path), "%s/%s/%s", prefix, HV_INSTALL_MANDIR, pages[i]);
                cr_assert_eq(stat(path, &st), 0, "%s is installed", path);
                cr_assert_gt(st.st_size, 500, "%s is a whole page", path);
        }
}
