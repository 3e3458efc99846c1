// SPDX-License-Identifier: MIT
/* hvreplay check: options and output (text for people, JSON for programs). */
#include <getopt.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "json.h"
#include "replay.h"

/* Violations in bold red on a terminal (--color; NO_COLOR, https://no-color.org). */
#define RED   "\033[1;31m"
#define RESET "\033[0m"

/* A check shows its progress on a terminal's stderr once it has run this long. */
#define PROGRESS_AFTER_S 1.0
#define PROGRESS_EVERY_S 0.1

struct check_cli {
        bool json, summary_only;
        bool colour;           /* colour violations on stdout */
        bool progress;         /* stderr is a terminal: show progress of long checks */
        uint64_t max_findings; /* per trace, 0: all */
        unsigned jobs;         /* traces checked at once */
        struct check_opts opts;
};

static void usage(FILE *f)
{
        fprintf(f,
                "Usage: hvreplay check [OPTIONS] TRACE...\n"
                "\n"
                "Find every interrupt delivered inside an STI or MOV SS shadow, from the\n"
                "guest code as it stood when it ran (never from the backend's own report),\n"
                "and cross-check what the backend reported.  Rules: sti-shadow, mov-ss-shadow,\n"
                "if-clear, report-mismatch, lost-interrupt, spurious-interrupt, db-movss-shadow\n"
                "(a guest #DB trap inside a MOV SS shadow).  A delivery the\n"
                "trace's evidence does not decide is 'undetermined', with the reason; after the\n"
                "second of a sequence of interrupt-delaying instructions it is a note.\n"
                "See docs/checker.md.\n"
                "\n"
                "Options:\n"
                "  --json             one JSON document for all traces (default: text)\n"
                "  --summary          only the per-trace summary, no findings (default: all)\n"
                "  --max-findings N   print at most N findings per trace (default: all)\n"
                "  --without-steps    judge as if the trace held no single-step exits (to\n"
                "                     cross-validate what the steps say; default: use them)\n"
                "  --color WHEN       colour violations: auto (default: when stdout is a\n"
                "                     terminal and NO_COLOR is unset or empty), always, never\n"
                "  -j, --jobs N       check up to N traces at once (default: the number of\n"
                "                     online CPUs); output stays in argument order\n"
                "  -h, --help         this text\n"
                "\n"
                "A check that runs longer than a second shows its progress on stderr when\n"
                "stderr is a terminal.\n"
                "\n"
                "Exit status: 0 no violation in any trace; 1 violations found; 2 a trace could\n"
                "not be read completely (the others are still checked and reported).\n");
}

/*
 * The findings' lines are formatted by hand: a kicked run has thousands of
 * findings, and printf's format parsing was a tenth of its check.
 */
static char *put_hex(char *p, uint64_t v, unsigned digits)
{
        static const char hex[] = "0123456789abcdef";

        for (unsigned i = digits; i-- > 0; v >>= 4)
                p[i] = hex[v & 15];
        return p + digits;
}

/* "0000:1021" in real mode, a linear address otherwise (buf: 17 bytes at least). */
static void fmt_addr(char *buf, size_t len, bool real, uint16_t cs, uint64_t pc, uint64_t cs_base,
                     unsigned bits)
{
        char *p = buf;

        (void)len;
        if (real) {
                p = put_hex(p, cs, 4);
                *p++ = ':';
                p = put_hex(p, (pc - cs_base) & 0xffff, 4);
        } else if (bits == 64) {
                p = put_hex(p, pc, 16);
        } else {
                /* %08x: at least 8 digits */
                unsigned digits = 8;

                while (digits < 16 && pc >> (4 * digits))
                        digits++;
                p = put_hex(p, pc, digits);
        }
        *p = 0;
}

static void fmt_bytes(char *buf, size_t len, const struct check_insn *in)
{
        char *p = buf;

        for (unsigned i = 0; i < in->len && (size_t)(p - buf) + 3 < len; i++)
                p = put_hex(p, in->bytes[i], 2);
        *p = 0;
}

static void fmt_backend(char *buf, size_t len, const struct check_finding *f)
{
        uint64_t intr = f->intr;

        if (!f->have_intr && f->rule != RULE_REPORT_MISMATCH) {
                snprintf(buf, len, "no injection recorded");
                return;
        }
        /* replay_fmt_intr's text without its "if=1 ": "shadow=sti ready=0", 26 bytes at most */
        if (len < 32) {
                buf[0] = 0;
                return;
        }
        buf = stpcpy(buf, "shadow=");
        buf = stpcpy(buf, (intr & HVT_INTR_VALID_SHADOW) ? hvt_shadow_name(intr) : "?");
        buf = stpcpy(buf, " ready=");
        stpcpy(buf, (intr & HVT_INTR_VALID_READY) ? ((intr & HVT_INTR_READY) ? "1" : "0") : "?");
}

/* printf's "%-<width>s" */
static void put_padded(const char *s, size_t width)
{
        static const char spaces[] = "                  ";
        size_t n = strlen(s);

        fwrite(s, 1, n, stdout);
        while (n < width) {
                size_t k = width - n < sizeof(spaces) - 1 ? width - n : sizeof(spaces) - 1;

                fwrite(spaces, 1, k, stdout);
                n += k;
        }
}

static void print_insn_line(const char *mark, const struct check_finding *f,
                            const struct check_insn *in, const char *comment)
{
        char addr[32], bytes[40];

        fmt_addr(addr, sizeof(addr), in->real, f->cs, in->pc, in->cs_base, in->bits);
        fmt_bytes(bytes, sizeof(bytes), in);
        /* printf("%s%s  %-9s %-18s %s\n", mark, addr, bytes, in->text, comment) */
        fputs(mark, stdout);
        fputs(addr, stdout);
        fputs("  ", stdout);
        put_padded(bytes, 9);
        putchar(' ');
        put_padded(in->text, 18);
        putchar(' ');
        fputs(comment, stdout);
        putchar('\n');
}

/* A finding's first line, by hand for the same reason as fmt_addr. */
static void print_rule_line(const struct check_finding *f, const char *on, const char *off,
                            const char *at, const char *what)
{
        char line[320], num[24], *p = line, *d = num + sizeof(num);
        uint64_t ev = f->event;
        unsigned digits = 2;

        do
                *--d = (char)('0' + ev % 10);
        while (ev /= 10);
        while (digits < 8 && f->vector >> (4 * digits))
                digits++;
        p = stpcpy(p, ":#");
        memcpy(p, d, (size_t)(num + sizeof(num) - d));
        p += num + sizeof(num) - d;
        *p++ = ' ';
        p = stpcpy(p, on);
        p = stpcpy(p, check_rule_name(f->rule));
        p = stpcpy(p, off);
        p = stpcpy(p, ": vector 0x");
        p = put_hex(p, f->vector, digits);
        p = stpcpy(p, " delivered at ");
        p = stpcpy(p, at);
        p = stpcpy(p, what);
        *p++ = '\n';
        fwrite(line, 1, (size_t)(p - line), stdout);
}

static void print_finding(const struct check_result *r, const struct check_finding *f, bool colour)
{
        char at[32], backend[64], ifc[32] = "";
        const char *what = "";
        const char *on = colour ? RED : "", *off = colour ? RESET : "";

        fmt_addr(at, sizeof(at), f->at.real, f->cs, f->pc, f->at.cs_base, f->bits);
        fmt_backend(backend, sizeof(backend), f);
        switch (f->rule) {
        case RULE_STI_SHADOW: what = ", inside the STI shadow"; break;
        case RULE_MOVSS_SHADOW: what = ", inside the MOV SS shadow"; break;
        case RULE_IF_CLEAR: what = " with IF=0"; break;
        case RULE_DB_MOVSS_SHADOW: what = " (a #DB trap), inside the MOV SS shadow"; break;
        case RULE_NMI_MOVSS_SHADOW: what = ", an NMI inside the MOV SS shadow"; break;
        case RULE_NMI_WHILE_BLOCKED: what = ", an NMI while NMIs were blocked"; break;
        default: break;
        }
        if (f->prev.valid && (f->rule == RULE_STI_SHADOW || (f->rule == RULE_REPORT_MISMATCH &&
                                                             f->shadow_rule == RULE_STI_SHADOW)))
                snprintf(ifc, sizeof(ifc), "IF %d->1", f->if_before);

        /* The path is the user's, the reason may one day quote the trace: both escaped. */
        replay_put_str(stdout, r->path);
        if (r->vcpus > 1)
                printf(":v%u", f->vcpu);
        switch (f->rule) {
        case RULE_REPORT_MISMATCH:
                printf(":#%" PRIu64 " %sreport-mismatch%s: at %s the backend reported %s, but the "
                       "decoded stream puts it inside the %s shadow\n",
                       f->event, on, off, at, backend,
                       f->shadow_rule == RULE_STI_SHADOW ? "STI" : "MOV SS");
                if (f->prev.valid)
                        print_insn_line("    ", f, &f->prev, ifc);
                print_insn_line(" -> ", f, &f->at, "the exit stopped here");
                break;
        case RULE_LOST:
                printf(":#%" PRIu64
                       " %slost-interrupt%s: vector 0x%02x injected after exit #%" PRIu64
                       " at %s was never delivered: ",
                       f->event, on, off, f->vector, f->event, at);
                replay_put_str(stdout, f->reason);
                putchar('\n');
                printf("    backend reported: %s; policy=%s\n", backend,
                       hvt_policy_name(f->policy));
                break;
        case RULE_SPURIOUS:
                printf(":#%" PRIu64
                       " %sspurious-interrupt%s: vector 0x%02x delivered at %s, but no "
                       "injection explains it\n",
                       f->event, on, off, f->vector, at);
                break;
        case RULE_UNDETERMINED:
                printf(":#%" PRIu64 " undetermined: vector 0x%02x delivered at %s: ", f->event,
                       f->vector, at);
                replay_put_str(stdout, f->reason);
                putchar('\n');
                break;
        default:
                /* printf(":#%" PRIu64 " %s%s%s: vector 0x%02x delivered at %s%s\n", ...) */
                print_rule_line(f, on, off, at, what);
                if (f->prev.valid)
                        print_insn_line("    ", f, &f->prev, ifc);
                print_insn_line(" -> ", f, &f->at, "interrupted here");
                fputs("    backend reported: ", stdout);
                fputs(backend, stdout);
                fputs("; policy=", stdout);
                fputs(hvt_policy_name(f->policy), stdout);
                putchar('\n');
        }
}

static void print_summary(const struct check_result *r, bool colour)
{
        replay_put_str(stdout, r->path);
        if (!r->opened) {
                fputs(": not checked: ", stdout);
                replay_put_str(stdout, r->error);
                putchar('\n');
                return;
        }
        static const unsigned shown[] = { RULE_STI_SHADOW,
                                          RULE_MOVSS_SHADOW,
                                          RULE_IF_CLEAR,
                                          RULE_REPORT_MISMATCH,
                                          RULE_LOST,
                                          RULE_SPURIOUS,
                                          RULE_DB_MOVSS_SHADOW,
                                          RULE_NMI_MOVSS_SHADOW,
                                          RULE_NMI_WHILE_BLOCKED };
        uint64_t und_by[UND_COUNT] = { 0 };
        int first = 1;

        printf(": %" PRIu64 " deliveries checked (", r->deliveries);
        replay_put_str(stdout, r->backend);
        colour = colour && r->nviolations;
        printf(", policy %s%s): %s%zu violations%s", hvt_policy_name(r->policy),
               r->single_step ? ", single-step" : "", colour ? RED : "", r->nviolations,
               colour ? RESET : "");
        for (size_t i = 0; i < sizeof(shown) / sizeof(shown[0]); i++) {
                if (!r->by_rule[shown[i]])
                        continue;
                printf("%s%s %" PRIu64, first ? " (" : ", ", check_rule_name(shown[i]),
                       r->by_rule[shown[i]]);
                first = 0;
        }
        printf("%s, %zu undetermined\n", first ? "" : ")", r->nundetermined);
        for (size_t i = 0; i < r->nundetermined; i++)
                und_by[r->undetermined[i].und_kind < UND_COUNT ? r->undetermined[i].und_kind : 0]++;
        for (unsigned u = 1; u < UND_COUNT; u++)
                if (und_by[u])
                        printf("  undetermined, %s: %" PRIu64 "\n", check_und_name(u), und_by[u]);
        for (unsigned n = 0; n < NOTE_COUNT; n++)
                if (r->notes[n].count) {
                        printf("  note, %s: %" PRIu64 " (e.g. ", check_note_name(n),
                               r->notes[n].count);
                        replay_put_str(stdout, r->notes[n].example);
                        fputs(")\n", stdout);
                }
        /* A run the backend could not finish: what was recorded is judged, the rest is not. */
        if (r->have_end && r->end_why != HVT_END_GUEST_EXIT && r->end_why != HVT_END_HALT) {
                printf("  the run ended early (%s, status %d): ", hvt_end_why_name(r->end_why),
                       r->end_status);
                replay_put_str(stdout, r->end_message);
                fputs("; nothing after it was checked\n", stdout);
        }
        if (!r->readable) {
                fputs("  the trace could not be read completely: ", stdout);
                replay_put_str(stdout, r->error);
                putchar('\n');
        }
}

static void json_insn(struct json *j, const char *key, const struct check_insn *in)
{
        json_obj(j, key);
        json_hex(j, "rip", in->pc - in->cs_base);
        json_hex(j, "pc", in->pc);
        json_bytes(j, "bytes", in->bytes, in->len);
        json_str(j, "text", in->text);
        json_obj_end(j);
}

static void json_finding(struct json *j, const struct check_result *r,
                         const struct check_finding *f)
{
        json_obj(j, NULL);
        json_str(j, "rule", check_rule_name(f->rule));
        /* Only in multi-vCPU traces: single-vCPU documents stay as they were. */
        if (r->vcpus > 1)
                json_u64(j, "vcpu", f->vcpu);
        if (f->rule == RULE_REPORT_MISMATCH)
                json_str(j, "shadow", check_rule_name(f->shadow_rule));
        json_hex(j, "vector", f->vector);
        json_u64(j, "event", f->event);
        json_hex(j, "rip", f->rip);
        json_hex(j, "cs", f->cs);
        json_hex(j, "pc", f->pc);
        if (f->rule != RULE_LOST && f->rule != RULE_REPORT_MISMATCH)
                json_hex(j, "rflags", f->flags);
        if (f->prev.valid)
                json_insn(j, "prev", &f->prev);
        if (f->at.valid)
                json_insn(j, "at", &f->at);
        if (f->have_intr || f->rule == RULE_REPORT_MISMATCH) {
                json_obj(j, "backend");
                if (f->intr & HVT_INTR_VALID_READY)
                        json_bool(j, "ready", f->intr & HVT_INTR_READY);
                if (f->intr & HVT_INTR_VALID_SHADOW)
                        json_str(j, "shadow", hvt_shadow_name(f->intr));
                json_obj_end(j);
                json_str(j, "policy", hvt_policy_name(f->policy));
        }
        if (f->rule == RULE_UNDETERMINED)
                json_str(j, "why", check_und_name(f->und_kind));
        if (f->reason[0])
                json_str(j, "reason", f->reason);
        json_obj_end(j);
}

static void json_result(struct json *j, const struct check_result *r, uint64_t max)
{
        json_obj(j, NULL);
        json_str(j, "trace", r->path);
        json_bool(j, "readable", r->readable);
        if (r->error[0])
                json_str(j, "error", r->error);
        json_str(j, "backend", r->backend);
        json_str(j, "policy", hvt_policy_name(r->policy));
        json_bool(j, "single_step", r->single_step);
        json_u64(j, "exits", r->exits);
        json_u64(j, "injections", r->injections);
        json_u64(j, "deliveries", r->deliveries);
        if (r->have_end) {
                json_obj(j, "end");
                json_str(j, "why", hvt_end_why_name(r->end_why));
                json_i64(j, "status", r->end_status);
                json_str(j, "message", r->end_message);
                json_obj_end(j);
        }
        json_obj(j, "counts");
        for (unsigned i = RULE_STI_SHADOW; i < RULE_COUNT; i++)
                json_u64(j, check_rule_name(i), r->by_rule[i]);
        json_obj_end(j);
        json_arr(j, "violations");
        for (size_t i = 0; i < r->nviolations && (!max || i < max); i++)
                json_finding(j, r, &r->violations[i]);
        json_arr_end(j);
        json_arr(j, "undetermined");
        for (size_t i = 0; i < r->nundetermined && (!max || i < max); i++)
                json_finding(j, r, &r->undetermined[i]);
        json_arr_end(j);
        json_arr(j, "notes");
        for (unsigned n = 0; n < NOTE_COUNT; n++) {
                if (!r->notes[n].count)
                        continue;
                json_obj(j, NULL);
                json_str(j, "kind", check_note_name(n));
                json_u64(j, "count", r->notes[n].count);
                json_u64(j, "event", r->notes[n].first_seq);
                json_str(j, "example", r->notes[n].example);
                json_obj_end(j);
        }
        json_arr_end(j);
        json_obj_end(j);
}

/* --color WHEN into cli->colour; a bad WHEN is an error message and -1. */
static int parse_colour(struct check_cli *cli, const char *when)
{
        const char *no = getenv("NO_COLOR");

        if (!strcmp(when, "always")) {
                cli->colour = true;
        } else if (!strcmp(when, "never")) {
                cli->colour = false;
        } else if (!strcmp(when, "auto")) {
                cli->colour = isatty(STDOUT_FILENO) && !(no && *no);
        } else {
                fputs("hvreplay check: --color: '", stderr);
                replay_put_str(stderr, when);
                fputs("' is not auto, always or never\n", stderr);
                return -1;
        }
        cli->colour = cli->colour && !cli->json;
        return 0;
}

struct progress {
        const char *path;
        struct timespec start, last;
        bool shown;
};

static double seconds_since(const struct timespec *t)
{
        struct timespec now;

        clock_gettime(CLOCK_MONOTONIC, &now);
        return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

/* One line on stderr, rewritten in place: only for a check long enough to wonder about. */
static void show_progress(void *ctx, unsigned pass, uint64_t records)
{
        struct progress *p = ctx;

        if (seconds_since(&p->start) < PROGRESS_AFTER_S ||
            (p->shown && seconds_since(&p->last) < PROGRESS_EVERY_S))
                return;
        fputs("\r\033[Khvreplay check: ", stderr);
        replay_put_str(stderr, p->path);
        fprintf(stderr, ": %s, %" PRIu64 " records read", pass == 1 ? "scanning code" : "judging",
                records);
        fflush(stderr);
        clock_gettime(CLOCK_MONOTONIC, &p->last);
        p->shown = true;
}

/* Check one trace; p (NULL: none) times the whole command, so many quick traces count too. */
static int check_one(const struct check_cli *cli, struct progress *p, const char *path,
                     struct check_result *r)
{
        struct check_opts opts = cli->opts;
        int err;

        if (p) {
                p->path = path;
                opts.progress = show_progress;
                opts.progress_ctx = p;
        }
        err = check_trace_opts(path, &opts, r);
        /* The line goes before anything else is printed. */
        if (p && p->shown) {
                fputs("\r\033[K", stderr);
                fflush(stderr);
                p->shown = false;
        }
        return err;
}

/*
 * Traces checked by a pool of threads (-j): each worker takes the next
 * unchecked trace; the main thread reports them in argument order as each
 * is done.  Checkers share nothing, so only the queue is locked.
 */
struct pool {
        const struct check_cli *cli;
        char **paths;
        struct check_result *res;
        bool *done;
        int *rc; /* check_one's return for each trace */
        int n, next;
        pthread_mutex_t lock;
        pthread_cond_t cond;
};

static void *pool_worker(void *arg)
{
        struct pool *pl = arg;

        for (;;) {
                int i;

                pthread_mutex_lock(&pl->lock);
                i = pl->next < pl->n ? pl->next++ : -1;
                pthread_mutex_unlock(&pl->lock);
                if (i < 0)
                        return NULL;
                pl->rc[i] = check_one(pl->cli, NULL, pl->paths[i], &pl->res[i]);
                pthread_mutex_lock(&pl->lock);
                pl->done[i] = true;
                pthread_cond_broadcast(&pl->cond);
                pthread_mutex_unlock(&pl->lock);
        }
}

/* Wait until trace i is checked, showing "K of N" after a second on a terminal. */
static void pool_wait(struct pool *pl, int i, struct progress *p)
{
        pthread_mutex_lock(&pl->lock);
        while (!pl->done[i]) {
                struct timespec t;

                clock_gettime(CLOCK_REALTIME, &t);
                t.tv_nsec += (long)(PROGRESS_EVERY_S * 1e9);
                if (t.tv_nsec >= 1000000000L) {
                        t.tv_sec++;
                        t.tv_nsec -= 1000000000L;
                }
                pthread_cond_timedwait(&pl->cond, &pl->lock, &t);
                if (p && seconds_since(&p->start) >= PROGRESS_AFTER_S) {
                        int k = 0;

                        for (int x = 0; x < pl->n; x++)
                                k += pl->done[x];
                        fprintf(stderr, "\r\033[Khvreplay check: %d of %d traces checked", k,
                                pl->n);
                        fflush(stderr);
                        p->shown = true;
                }
        }
        pthread_mutex_unlock(&pl->lock);
        if (p && p->shown) {
                fputs("\r\033[K", stderr);
                fflush(stderr);
                p->shown = false;
        }
}

/* Start up to `want` workers; the caller's thread only reports.  Returns how many started. */
static int pool_start(struct pool *pl, pthread_t *tids, int want)
{
        int started = 0;

        for (; started < want; started++)
                if (pthread_create(&tids[started], NULL, pool_worker, pl))
                        break;
        return started;
}

int cmd_check(int argc, char **argv)
{
        static const struct option opts[] = {
                { "json", no_argument, NULL, 'J' },
                { "jobs", required_argument, NULL, 'j' },
                { "summary", no_argument, NULL, 's' },
                { "max-findings", required_argument, NULL, 'm' },
                { "without-steps", no_argument, NULL, 'w' },
                { "color", required_argument, NULL, 'c' },
                { "help", no_argument, NULL, 'h' },
                { 0 },
        };
        struct check_cli cli = { 0 };
        const char *when = "auto";
        struct progress prog = { 0 };
        struct check_result *res;
        struct pool pl;
        pthread_t *tids;
        bool *done;
        int *rc, workers;
        bool unreadable = false, violations = false;
        struct json j;
        char *end;
        int c, n;

        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "+:hj:", opts, NULL)) != -1) {
                switch (c) {
                case 'J': cli.json = true; break;
                case 'j':
                        cli.jobs = (unsigned)strtoul(optarg, &end, 10);
                        if (*end || !*optarg || *optarg == '-' || !cli.jobs || cli.jobs > 1024) {
                                fprintf(stderr,
                                        "hvreplay check: --jobs: '%s' is not a count from 1 to "
                                        "1024\n",
                                        optarg);
                                return REPLAY_ERROR;
                        }
                        break;
                case 's': cli.summary_only = true; break;
                case 'w': cli.opts.without_steps = true; break;
                case 'c': when = optarg; break;
                case 'm':
                        cli.max_findings = strtoull(optarg, &end, 0);
                        if (*end || !*optarg || *optarg == '-') {
                                fprintf(stderr,
                                        "hvreplay check: --max-findings: '%s' is not a count\n",
                                        optarg);
                                return REPLAY_ERROR;
                        }
                        break;
                case 'h': usage(stdout); return REPLAY_OK;
                default: return replay_option_error("check", c, argv);
                }
        }
        if (parse_colour(&cli, when))
                return REPLAY_ERROR;
        cli.progress = isatty(STDERR_FILENO);
        clock_gettime(CLOCK_MONOTONIC, &prog.start);
        n = argc - optind;
        if (n < 1) {
                fprintf(stderr, "hvreplay check: give at least one TRACE (see --help)\n");
                return REPLAY_ERROR;
        }
        if (!cli.jobs) {
                long cpus = sysconf(_SC_NPROCESSORS_ONLN);

                cli.jobs = cpus > 0 ? (unsigned)cpus : 1;
        }
        res = calloc((size_t)n, sizeof(*res));
        done = calloc((size_t)n, sizeof(*done));
        rc = calloc((size_t)n, sizeof(*rc));
        tids = calloc((size_t)n, sizeof(*tids));
        if (!res || !done || !rc || !tids) {
                free(res);
                free(done);
                free(rc);
                free(tids);
                fprintf(stderr, "hvreplay check: out of memory\n");
                return REPLAY_ERROR;
        }
        if (cli.json) {
                json_begin(&j, stdout);
                json_arr(&j, "traces");
        }
        pl = (struct pool){
                .cli = &cli, .paths = argv + optind, .res = res, .done = done, .rc = rc, .n = n
        };
        pthread_mutex_init(&pl.lock, NULL);
        pthread_cond_init(&pl.cond, NULL);
        /* One trace, or one job: checked here, with a progress line of its own. */
        workers = n > 1 && cli.jobs > 1
                          ? pool_start(&pl, tids, (int)cli.jobs < n ? (int)cli.jobs : n)
                          : 0;
        for (int i = 0; i < n; i++) {
                struct check_result *r = &res[i];
                const char *path = argv[optind + i];
                int err;

                if (workers) {
                        pool_wait(&pl, i, cli.progress ? &prog : NULL);
                        err = rc[i];
                } else {
                        err = check_one(&cli, cli.progress ? &prog : NULL, path, r);
                }
                if (err) {
                        unreadable = true;
                        /* One line per unreadable trace; partial results are still reported. */
                        replay_error(path, r->error);
                }
                violations |= r->nviolations > 0;
                if (cli.json) {
                        json_result(&j, r, cli.max_findings);
                        continue;
                }
                if (!r->path)
                        continue;
                if (!cli.summary_only) {
                        size_t shown = 0;

                        for (size_t v = 0; v < r->nviolations; v++)
                                if (!cli.max_findings || shown++ < cli.max_findings)
                                        print_finding(r, &r->violations[v], cli.colour);
                        for (size_t u = 0; u < r->nundetermined; u++)
                                if (!cli.max_findings || shown++ < cli.max_findings)
                                        print_finding(r, &r->undetermined[u], false);
                }
                print_summary(r, cli.colour);
        }
        if (cli.json) {
                json_arr_end(&j);
                json_end(&j);
        }
        for (int i = 0; i < workers; i++)
                pthread_join(tids[i], NULL);
        pthread_cond_destroy(&pl.cond);
        pthread_mutex_destroy(&pl.lock);
        for (int i = 0; i < n; i++)
                check_result_free(&res[i]);
        free(res);
        free(done);
        free(rc);
        free(tids);
        fflush(stdout);
        if (unreadable)
                return REPLAY_ERROR;
        return violations ? REPLAY_FINDINGS : REPLAY_OK;
}
