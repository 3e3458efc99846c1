// SPDX-License-Identifier: MIT
/*
 * Terminal manners of hvreplay check: violations in colour on a terminal
 * (never in a pipe, never with NO_COLOR), --color to force either way, and
 * progress on stderr for a check longer than a second, only when stderr is
 * a terminal.  The terminal is a pseudo-terminal (forkpty).
 */
#include <errno.h>
#include <pty.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "helpers.h"

#define VIOLATIONS HV_SOURCE_DIR "/traces/movss-sti-eager-step.zst"
/* The two largest samples: checking both takes about four seconds here. */
#define LONG1 HV_SOURCE_DIR "/traces/stress-pit-irqchip-l64.zst"
#define LONG2 HV_SOURCE_DIR "/traces/stress-pit-irqchip-real.zst"
#define RED   "\033[1;31m"

/* Run argv with stdin, stdout and stderr on one pseudo-terminal; NO_COLOR set to no_color. */
static char *run_on_tty(const char *const *argv, const char *no_color, int *status)
{
        size_t len = 0, cap = 4096;
        char *out = malloc(cap);
        int fd;
        pid_t pid;

        cr_assert_not_null(out);
        pid = forkpty(&fd, NULL, NULL, NULL);
        cr_assert_geq(pid, 0, "forkpty: %s", strerror(errno));
        if (pid == 0) {
                if (no_color)
                        setenv("NO_COLOR", no_color, 1);
                else
                        unsetenv("NO_COLOR");
                execv(argv[0], (char *const *)argv);
                _exit(127);
        }
        for (;;) {
                ssize_t n;

                if (len + 1024 > cap) {
                        cap *= 2;
                        out = realloc(out, cap);
                        cr_assert_not_null(out);
                }
                n = read(fd, out + len, cap - len - 1);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) /* EIO once the child has closed the terminal */
                        break;
                len += (size_t)n;
        }
        out[len] = 0;
        close(fd);
        cr_assert_eq(waitpid(pid, status, 0), pid);
        *status = WIFEXITED(*status) ? WEXITSTATUS(*status) : 128 + WTERMSIG(*status);
        return out;
}

Test(tty, violations_are_red_on_a_terminal)
{
        const char *argv[] = { HVREPLAY, "check", VIOLATIONS, NULL };
        int status;
        char *out = run_on_tty(argv, NULL, &status);

        cr_assert_eq(status, 1, "violations: status 1: %s", out);
        cr_assert(strstr(out, RED "sti-shadow\033[0m:") != NULL, "%s", out);
        cr_assert(strstr(out, RED "mov-ss-shadow\033[0m:") != NULL, "%s", out);
        cr_assert(strstr(out, RED "2 violations\033[0m") != NULL, "%s", out);
        free(out);
}

Test(tty, no_color_turns_it_off)
{
        const char *argv[] = { HVREPLAY, "check", VIOLATIONS, NULL };
        int status;
        char *out = run_on_tty(argv, "1", &status);

        cr_assert_eq(status, 1);
        cr_assert(strstr(out, "sti-shadow:") != NULL, "%s", out);
        cr_assert(strchr(out, '\033') == NULL, "NO_COLOR=1: no escape: %s", out);
        free(out);
        /* An empty NO_COLOR does not count (no-color.org). */
        out = run_on_tty(argv, "", &status);
        cr_assert(strstr(out, RED "sti-shadow") != NULL, "%s", out);
        free(out);
}

Test(tty, color_option_forces_either_way)
{
        const char *always[] = { HVREPLAY, "check", "--color", "always", VIOLATIONS, NULL };
        const char *never[] = { HVREPLAY, "check", "--color", "never", VIOLATIONS, NULL };
        const char *piped[] = { HVREPLAY, "check", VIOLATIONS, NULL };
        const char *json[] = { HVREPLAY, "check", "--json", "--color", "always", VIOLATIONS, NULL };
        const char *bad[] = { HVREPLAY, "check", "--color", "sometimes", VIOLATIONS, NULL };
        struct hv_proc p;
        int status;
        char *out;

        cr_assert_eq(hv_run(always, &p), 0);
        cr_assert(strstr(p.out, RED "sti-shadow") != NULL, "a pipe, but always: %s", p.out);
        hv_proc_free(&p);
        cr_assert_eq(hv_run(piped, &p), 0);
        cr_assert(strchr(p.out, '\033') == NULL, "a pipe gets no colour: %s", p.out);
        hv_proc_free(&p);
        cr_assert_eq(hv_run(json, &p), 0);
        cr_assert(strchr(p.out, '\033') == NULL, "JSON is never coloured");
        cr_assert_not_null(hv_json_value(p.out));
        hv_proc_free(&p);
        out = run_on_tty(never, NULL, &status);
        cr_assert(strchr(out, '\033') == NULL, "a terminal, but never: %s", out);
        free(out);
        cr_assert_eq(hv_run(bad, &p), 0);
        hv_assert_one_line_error(&p, "hvreplay", "sometimes");
        hv_proc_free(&p);
}

Test(tty, a_long_check_shows_progress_on_a_terminal_only, .timeout = 300)
{
        /*
         * Long enough to pass the one-second mark: the timer covers the
         * whole command, so the stress traces are given LONG_COPIES times
         * each (each checks in about 0.1 s here: 4 s in all, and ten times
         * that under ASan).
         */
        enum { LONG_COPIES = 20 };
        const char *argv[5 + 2 * LONG_COPIES + 1] = { HVREPLAY, "check", "-j", "1", "--summary" };
        const char *quick[] = { HVREPLAY, "check", "--summary", VIOLATIONS, NULL };
        struct hv_proc p;
        int status;
        char *out, *line, *summary;

        for (int i = 0; i < LONG_COPIES; i++) {
                argv[5 + 2 * i] = LONG1;
                argv[6 + 2 * i] = LONG2;
        }
        out = run_on_tty(argv, NULL, &status);

        cr_assert_eq(status, 0, "%s", out);
        line = strstr(out, "\r\033[Khvreplay check: ");
        cr_assert_not_null(line, "progress shown: %s", out);
        cr_assert(strstr(line, " records read") != NULL);
        /* The progress line is erased before the summary is printed. */
        summary = strstr(line, "deliveries checked");
        cr_assert_not_null(summary);
        cr_assert_lt(line, summary);
        free(out);

        out = run_on_tty(quick, NULL, &status);
        cr_assert(strstr(out, "records read") == NULL, "a quick check shows none: %s", out);
        free(out);

        cr_assert_eq(hv_run(argv, &p), 0);
        cr_assert_eq(p.status, 0);
        cr_assert_eq(p.err[0], 0, "stderr is no terminal: no progress: %s", p.err);
        hv_proc_free(&p);

        /* In parallel (-j 2) the line counts the traces checked. */
        argv[3] = "2";
        out = run_on_tty(argv, NULL, &status);
        cr_assert_eq(status, 0, "%s", out);
        line = strstr(out, "\r\033[Khvreplay check: ");
        cr_assert_not_null(line, "progress shown: %s", out);
        cr_assert(strstr(line, " traces checked") != NULL, "%s", out);
        /* Shown between reports, and erased before the next one. */
        cr_assert(strstr(line + 4, "\r\033[K") != NULL, "%s", out);
        free(out);
}
