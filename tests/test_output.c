// SPDX-License-Identifier: MIT
/*
 * What hvrec does with its outputs and how it ends, on the emu backend:
 *  - the trace file: never through a symbolic link, never replacing
 *    anything (an old trace is kept as FILE.N), a directory refused, FIFOs,
 *    character devices and `-o -` written as streams;
 *  - signals: every stop signal leaves a complete trace whose end record
 *    names it, and exit status 128+N; an outside SIGALRM is not --timeout;
 *    a closed console pipe does not cost the trace;
 *  - write errors: reported once, the summary not claiming more than the
 *    file holds;
 *  - exit statuses: below 128 the guest's, from 128 on hvrec's;
 *  - the console escaped unless --raw-console, the trace raw;
 *  - the initial memory image (no 64 GiB scan), overlapping ELF segments.
 * Children run in the test's temporary directory, so a stray file lands there.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "helpers.h"

/* ---- running hvrec ------------------------------------------------------- */

static void sleep_ms(long ms)
{
        struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

        nanosleep(&ts, NULL);
}

struct child_io {
        int out_fd;           /* the child's stdout, -1: /dev/null */
        const char *err_path; /* the child's stderr, NULL: /dev/null */
        rlim_t fsize;         /* RLIMIT_FSIZE in bytes, 0: unchanged */
};

static char *tmp_dir(void)
{
        static char dir[512];
        char *slash;

        snprintf(dir, sizeof(dir), "%s", hv_tmp("x"));
        slash = strrchr(dir, '/');
        *slash = 0;
        return dir;
}

/* Start argv with the signal state of a fresh process, in the temporary directory. */
static pid_t spawn(const char *const *argv, const struct child_io *io)
{
        const char *dir = tmp_dir();
        pid_t pid;

        hv_require_backend("emu"); /* every hvrec run here is on emu (RUN_ARGS) */
        pid = fork();
        cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
        if (pid == 0) {
                sigset_t none;
                int null = open("/dev/null", O_RDWR);

                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                for (int s = 1; s < _NSIG; s++)
                        signal(s, SIG_DFL);
                dup2(null, 0);
                dup2(io && io->out_fd >= 0 ? io->out_fd : null, 1);
                if (io && io->err_path) {
                        int e = open(io->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

                        dup2(e, 2);
                } else {
                        dup2(null, 2);
                }
                if (io && io->fsize) {
                        struct rlimit rl = { io->fsize, io->fsize };

                        setrlimit(RLIMIT_FSIZE, &rl);
                }
                /* Only 0-2: a pipe's other end held here would keep it open for ever. */
                close_range(3, ~0u, 0);
                if (chdir(dir))
                        _exit(126);
                execv(argv[0], (char *const *)argv);
                _exit(127);
        }
        return pid;
}

/*
 * Wait up to `secs` for pid: its exit status, 1000 + N if signal N killed
 * it, or 2000 if it was still running (it is killed: a test that fails
 * must not leave a process blocked on a FIFO behind).
 */
static int reap_within(pid_t pid, int secs)
{
        int status;

        for (int i = 0; i < secs * 50; i++) {
                pid_t got = waitpid(pid, &status, WNOHANG);

                cr_assert_geq(got, 0, "waitpid: %s", strerror(errno));
                if (got == pid)
                        return WIFEXITED(status) ? WEXITSTATUS(status) : 1000 + WTERMSIG(status);
                sleep_ms(20);
        }
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        return 2000;
}

/* hvrec itself ends within its --timeout 60. */
static int reap(pid_t pid)
{
        return reap_within(pid, 120);
}

static char *slurp(const char *path, size_t *len)
{
        FILE *f = fopen(path, "rb");
        char *buf = NULL;
        size_t n = 0, cap = 0;

        cr_assert_not_null(f, "%s: %s", path, strerror(errno));
        for (;;) {
                if (n + 4096 + 1 > cap) {
                        cap = (n + 4096 + 1) * 2;
                        buf = realloc(buf, cap);
                }
                size_t got = fread(buf + n, 1, 4096, f);

                n += got;
                if (!got)
                        break;
        }
        fclose(f);
        buf[n] = 0;
        if (len)
                *len = n;
        return buf;
}

static void write_file(const char *path, const void *data, size_t len)
{
        FILE *f = fopen(path, "wb");

        cr_assert_not_null(f, "%s", path);
        cr_assert_eq(fwrite(data, 1, len, f), len);
        fclose(f);
}

static size_t count(const char *hay, const char *needle)
{
        size_t n = 0;

        for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
                n++;
        return n;
}

/* hvrec run on emu to OUT, then the arguments (the guest last). */
#define RUN_ARGS(out, ...)                                                                     \
        {                                                                                      \
                HVREC, "run", "--backend", "emu", "--timeout", "60", "-o", (out), __VA_ARGS__, \
                        NULL                                                                   \
        }

static double now_s(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the output file ----------------------------------------------------- */

/* One run of hello to `out`: its status, stderr into *err (malloc'd). */
static int record_hello(const char *out, const char *seed, char **err)
{
        const char *err_path = hv_tmp("stderr.txt");
        const char *argv[] = RUN_ARGS(out, "--seed", seed, hv_guest("hello"));
        struct child_io io = { .out_fd = -1, .err_path = err_path };
        int status = reap(spawn(argv, &io));

        *err = slurp(err_path, NULL);
        return status;
}

static void assert_refused(int status, const char *err, const char *needle)
{
        cr_assert_eq(status, HVREC_STATUS_ERROR, "status %d: %s", status, err);
        cr_assert_eq(count(err, "\n"), 1, "one line: %s", err);
        cr_assert(strstr(err, needle), "mentions '%s': %s", needle, err);
}

Test(output, a_dangling_symlink_is_refused_not_followed)
{
        const char *link = hv_tmp("dangling.zst"), *target = hv_tmp("created-through-link.zst");
        struct stat st;
        char *err;
        int status;

        unlink(link);
        unlink(target);
        cr_assert_eq(symlink(target, link), 0);
        status = record_hello(link, "1", &err);
        assert_refused(status, err, "symbolic link");
        cr_assert_neq(lstat(target, &st), 0, "nothing was created through the link");
        cr_assert_eq(lstat(link, &st), 0);
        cr_assert(S_ISLNK(st.st_mode), "the link is still a link");
        free(err);
}

Test(output, a_symlink_to_a_file_leaves_the_file_alone)
{
        static const char precious[] = "not a trace, and it must stay";
        const char *link = hv_tmp("link.zst"), *victim = hv_tmp("victim.txt");
        char kept[600], *text, *err;
        struct stat st;
        int status;

        unlink(link);
        write_file(victim, precious, sizeof(precious) - 1);
        cr_assert_eq(symlink(victim, link), 0);
        status = record_hello(link, "1", &err);
        assert_refused(status, err, "symbolic link");
        text = slurp(victim, NULL);
        cr_assert_str_eq(text, precious, "the link's target is untouched");
        snprintf(kept, sizeof(kept), "%s.1", link);
        cr_assert_neq(lstat(kept, &st), 0, "the link was not moved either");
        cr_assert(!lstat(link, &st) && S_ISLNK(st.st_mode));
        free(text);
        free(err);
}

Test(output, every_existing_trace_is_kept_under_a_free_name)
{
        static const char *const seeds[] = { "11", "22", "33" };
        const char *out = hv_tmp("kept.zst");
        char name[600];

        for (unsigned n = 1; n <= 3; n++) {
                snprintf(name, sizeof(name), "%s.%u", out, n);
                unlink(name);
        }
        unlink(out);
        for (unsigned i = 0; i < 3; i++) {
                char *err;

                cr_assert_eq(record_hello(out, seeds[i], &err), 7, "run %u: %s", i, err);
                snprintf(name, sizeof(name), "kept the existing %s as %s.%u", out, out, i);
                cr_assert_eq(strstr(err, name) != NULL, i > 0, "run %u says where it kept it: %s",
                             i, err);
                free(err);
        }
        /* Oldest first: FILE.1 is the first run, FILE the last; none lost. */
        for (unsigned i = 0; i < 3; i++) {
                struct hv_trace t;

                if (i < 2)
                        snprintf(name, sizeof(name), "%s.%u", out, i + 1);
                else
                        snprintf(name, sizeof(name), "%s", out);
                cr_assert_eq(hv_trace_load(name, &t), HVT_OK, "%s", name);
                cr_assert_eq(t.read_err, HVT_END_OF_TRACE, "%s: %s", name, t.message);
                cr_assert_eq(t.hdr.h.seed, strtoull(seeds[i], NULL, 10), "%s is run %u", name, i);
                hv_trace_free(&t);
        }
        snprintf(name, sizeof(name), "%s.3", out);
        cr_assert_neq(access(name, F_OK), 0, "no more names than runs");
}

Test(output, taken_names_are_skipped_never_replaced)
{
        static const char old_trace[] = "the old trace", dot2[] = "someone's FILE.2";
        const char *out = hv_tmp("busy.zst"), *victim = hv_tmp("busy-victim.txt");
        char n1[600], n2[600], n3[600], *text, *err;
        struct stat st;

        snprintf(n1, sizeof(n1), "%s.1", out);
        snprintf(n2, sizeof(n2), "%s.2", out);
        snprintf(n3, sizeof(n3), "%s.3", out);
        unlink(n1);
        unlink(n3);
        unlink(victim);
        write_file(out, old_trace, sizeof(old_trace) - 1);
        cr_assert_eq(symlink(victim, n1), 0, "FILE.1: a dangling link");
        write_file(n2, dot2, sizeof(dot2) - 1);

        cr_assert_eq(record_hello(out, "1", &err), 7, "%s", err);
        text = slurp(n3, NULL);
        cr_assert_str_eq(text, old_trace, "the old trace moved to the first free name");
        free(text);
        text = slurp(n2, NULL);
        cr_assert_str_eq(text, dot2, "FILE.2 untouched");
        free(text);
        cr_assert(!lstat(n1, &st) && S_ISLNK(st.st_mode), "FILE.1 is still the link");
        cr_assert_neq(lstat(victim, &st), 0, "and nothing was created through it");
        free(err);
}

Test(output, a_directory_is_refused)
{
        const char *dir = hv_tmp("adir.zst");
        char name[600], *err;
        struct stat st;
        int status;

        mkdir(dir, 0755);
        status = record_hello(dir, "1", &err);
        assert_refused(status, err, "directory");
        cr_assert(!stat(dir, &st) && S_ISDIR(st.st_mode));
        snprintf(name, sizeof(name), "%s.1", dir);
        cr_assert_neq(access(name, F_OK), 0, "not moved away");
        snprintf(name, sizeof(name), "%s.old", dir);
        cr_assert_neq(access(name, F_OK), 0, "not moved away");
        free(err);
}

/* A reader of `fifo` that copies up to `limit` bytes into `copy`, then exits. */
static pid_t fifo_reader(const char *fifo, const char *copy, size_t limit)
{
        pid_t pid;

        /* Before the fork: skipped later, the test would leave the reader waiting for ever. */
        hv_require_backend("emu");
        pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
                int in = open(fifo, O_RDONLY), out = open(copy, O_WRONLY | O_CREAT | O_TRUNC, 0644);
                char buf[4096];
                size_t total = 0;
                ssize_t n;

                if (in < 0 || out < 0)
                        _exit(1);
                while (total < limit &&
                       (n = read(in, buf,
                                 limit - total < sizeof(buf) ? limit - total : sizeof(buf))) > 0) {
                        if (write(out, buf, (size_t)n) != n)
                                _exit(1);
                        total += (size_t)n;
                }
                _exit(0);
        }
        return pid;
}

Test(output, a_fifo_is_written_as_a_stream)
{
        const char *fifo = hv_tmp("trace.fifo"), *copy = hv_tmp("from-fifo.zst");
        char name[600], *err;
        struct hv_trace t;
        struct stat st;
        pid_t reader;

        unlink(fifo);
        cr_assert_eq(mkfifo(fifo, 0600), 0);
        reader = fifo_reader(fifo, copy, SIZE_MAX);
        cr_assert_eq(record_hello(fifo, "1", &err), 7, "%s", err);
        cr_assert_eq(reap_within(reader, 10), 0, "the reader got its end of file");
        cr_assert(!lstat(fifo, &st) && S_ISFIFO(st.st_mode), "still the FIFO");
        snprintf(name, sizeof(name), "%s.1", fifo);
        cr_assert_neq(access(name, F_OK), 0, "not moved away");
        cr_assert_eq(hv_trace_load(copy, &t), HVT_OK);
        cr_assert_eq(t.read_err, HVT_END_OF_TRACE, "the reader got it all: %s", t.message);
        cr_assert(t.have_end && t.end.status == 7);
        hv_trace_free(&t);
        free(err);
}

/* mknod a character device in the temporary directory, or skip (no CAP_MKNOD). */
static const char *char_device(const char *name, unsigned major_, unsigned minor_)
{
        const char *path = hv_tmp(name);

        unlink(path);
        if (mknod(path, S_IFCHR | 0600, makedev(major_, minor_)))
                cr_skip_test("cannot mknod a device here (%s): the FIFO tests cover streams",
                             strerror(errno));
        return path;
}

Test(output, a_character_device_is_written_not_replaced)
{
        /* Copies of /dev/null and /dev/full: a mistake here must not touch /dev. */
        const char *null = char_device("null.dev", 1, 3);
        char name[600], *err;
        struct stat st;
        int status;

        cr_assert_eq(record_hello(null, "1", &err), 7, "%s", err);
        cr_assert(!lstat(null, &st) && S_ISCHR(st.st_mode), "still the device");
        snprintf(name, sizeof(name), "%s.1", null);
        cr_assert_neq(access(name, F_OK), 0, "not moved away");
        free(err);

        const char *full = char_device("full.dev", 1, 7);

        status = record_hello(full, "1", &err);
        assert_refused(status, err, strerror(ENOSPC));
        cr_assert(!lstat(full, &st) && S_ISCHR(st.st_mode), "still the device");
        snprintf(name, sizeof(name), "%s.1", full);
        cr_assert_neq(access(name, F_OK), 0, "not moved away");
        free(err);
}

Test(output, dash_writes_the_trace_to_stdout_and_the_console_to_stderr)
{
        const char *copy = hv_tmp("stdout.zst"), *err_path = hv_tmp("dash-stderr.txt");
        const char *argv[] = RUN_ARGS("-", hv_guest("hello"));
        struct hv_trace t;
        int fds[2];
        char *err;

        cr_assert_eq(pipe(fds), 0);
        /* The trace through a pipe, as `hvrec run -o - g | consumer` has it. */
        struct child_io io = { .out_fd = fds[1], .err_path = err_path };
        pid_t pid = spawn(argv, &io), reader;

        close(fds[1]);
        reader = fork();
        cr_assert_geq(reader, 0);
        if (reader == 0) {
                int out = open(copy, O_WRONLY | O_CREAT | O_TRUNC, 0644);
                char buf[4096];
                ssize_t n;

                while ((n = read(fds[0], buf, sizeof(buf))) > 0)
                        if (write(out, buf, (size_t)n) != n)
                                _exit(1);
                _exit(0);
        }
        close(fds[0]);
        cr_assert_eq(reap(pid), 7);
        cr_assert_eq(reap_within(reader, 10), 0, "the reader got its end of file");
        err = slurp(err_path, NULL);
        cr_assert_eq(hv_trace_load(copy, &t), HVT_OK, "stdout is a trace: %s", err);
        cr_assert_eq(t.read_err, HVT_END_OF_TRACE, "%s", t.message);
        cr_assert_gt(t.console_len, 0);
        cr_assert(strstr(err, t.console), "the console went to stderr: %s", err);
        cr_assert_neq(access(hv_tmp("-"), F_OK), 0, "no file named '-'");
        hv_trace_free(&t);
        free(err);
}

Test(output, dash_refuses_a_terminal)
{
        const char *err_path = hv_tmp("tty-stderr.txt");
        const char *argv[] = RUN_ARGS("-", hv_guest("hello"));
        int master = posix_openpt(O_RDWR | O_NOCTTY), slave;
        char *err;

        if (master < 0 || grantpt(master) || unlockpt(master))
                cr_skip_test("no pseudo-terminal here: %s", strerror(errno));
        slave = open(ptsname(master), O_RDWR | O_NOCTTY);
        cr_assert_geq(slave, 0);
        struct child_io io = { .out_fd = slave, .err_path = err_path };
        int status = reap(spawn(argv, &io));

        err = slurp(err_path, NULL);
        assert_refused(status, err, "terminal");
        cr_assert_neq(access(hv_tmp("-"), F_OK), 0, "no file named '-'");
        close(slave);
        close(master);
        free(err);
}

/* ---- signals ---------------------------------------------------------------- */

/* Wait until `path` is larger than `size` bytes (the run is under way). */
static void wait_for_growth(const char *path, off_t size)
{
        struct stat st;

        for (int i = 0; i < 1000; i++) {
                if (!stat(path, &st) && st.st_size > size)
                        return;
                sleep_ms(20);
        }
        cr_assert_fail("%s never grew past %lld bytes", path, (long long)size);
}

Test(signals, every_stop_signal_leaves_an_end_record_naming_it)
{
        /* SIGALRM and SIGRTMIN+2 are hvrec's own timer signals' kind: sent from outside they are
         * stops. */
        const int sigs[] = { SIGHUP,  SIGPIPE, SIGQUIT,      SIGUSR1,     SIGALRM,
                             SIGTERM, SIGXCPU, SIGRTMIN + 1, SIGRTMIN + 2 };

        for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
                const char *out = hv_tmp("signalled.zst"), *err_path = hv_tmp("sig-stderr.txt");
                /* --timeout 60 arms hvrec's timer: it must not take the signal for its own. */
                const char *argv[] = RUN_ARGS(out, "--max-exits", "100000000", hv_guest("spin"));
                struct child_io io = { .out_fd = -1, .err_path = err_path };
                const char *abbrev = sigabbrev_np(sigs[i]);
                char name[32], *err;
                struct hv_trace t;
                int status, sig = sigs[i];
                pid_t pid;

                unlink(out);
                pid = spawn(argv, &io);
                /* The preamble is a frame of its own; more means the header and the first exit. */
                wait_for_growth(out, 64);
                kill(pid, sig);
                status = reap(pid);
                err = slurp(err_path, NULL);
                cr_assert_eq(status, 128 + sig, "signal %d: status %d: %s", sig, status, err);
                cr_assert_eq(hv_trace_load(out, &t), HVT_OK);
                cr_assert_eq(t.read_err, HVT_END_OF_TRACE, "signal %d: %s", sig, t.message);
                cr_assert(t.have_end, "signal %d: an end record", sig);
                cr_assert_eq(t.end.why, HVT_END_SIGNAL, "signal %d: ended %s", sig,
                             hvt_end_why_name(t.end.why));
                cr_assert_eq(t.end.detail, (uint32_t)sig);
                cr_assert_eq(t.end.status, 128 + sig);
                if (abbrev) {
                        snprintf(name, sizeof(name), "SIG%s", abbrev);
                        cr_assert(strstr(t.end_msg, name), "names %s: %s", name, t.end_msg);
                }
                hv_trace_free(&t);
                free(err);
        }
}

Test(signals, the_timeout_is_still_the_timeout)
{
        const char *out = hv_tmp("timeout.zst");
        const char *argv[] = { HVREC, "run", "--backend",      "emu", "--timeout", "0.3",
                               "-o",  out,   hv_guest("spin"), NULL };
        struct hv_trace t;

        cr_assert_eq(reap(spawn(argv, NULL)), HVREC_STATUS_LIMIT);
        cr_assert_eq(hv_trace_load(out, &t), HVT_OK);
        cr_assert_eq(t.end.why, HVT_END_TIMEOUT);
        hv_trace_free(&t);
}

/* out_lines prints 4000 lines of 64 bytes, then exits with status 9 (guests/out_lines.asm). */
#define OUT_LINES_BYTES  (4000 * 64)
#define OUT_LINES_STATUS 9

Test(signals, a_closed_console_pipe_does_not_cost_the_trace)
{
        const char *out = hv_tmp("headed.zst"), *err_path = hv_tmp("head-stderr.txt");
        const char *argv[] = RUN_ARGS(out, hv_guest("out_lines"));
        struct hv_trace t;
        char line[65], *err;
        int fds[2], status;
        FILE *f;

        /* `hvrec run out_lines.bin | head -1`: one line read, then the pipe closes. */
        cr_assert_eq(pipe(fds), 0);
        struct child_io io = { .out_fd = fds[1], .err_path = err_path };
        pid_t pid = spawn(argv, &io);

        close(fds[1]);
        f = fdopen(fds[0], "r");
        cr_assert_not_null(fgets(line, sizeof(line), f));
        fclose(f);
        status = reap(pid);
        err = slurp(err_path, NULL);
        cr_assert_eq(status, OUT_LINES_STATUS, "the guest's status, not SIGPIPE: %d: %s", status,
                     err);
        cr_assert_eq(hv_trace_load(out, &t), HVT_OK);
        cr_assert_eq(t.read_err, HVT_END_OF_TRACE, "%s", t.message);
        cr_assert(t.have_end && t.end.why == HVT_END_GUEST_EXIT);
        cr_assert_eq(t.console_len, OUT_LINES_BYTES, "the trace has all the console");
        cr_assert(strstr(err, "console") && strstr(err, strerror(EPIPE)),
                  "the summary says the console stopped: %s", err);
        hv_trace_free(&t);
        free(err);
}

/* ---- write errors ------------------------------------------------------------ */

Test(write_error, a_closed_trace_fifo_is_one_error_not_a_signal)
{
        const char *fifo = hv_tmp("short.fifo"), *copy = hv_tmp("short-copy.zst");
        const char *err_path = hv_tmp("fifo-stderr.txt");
        const char *argv[] = RUN_ARGS(fifo, hv_guest("ioloop"));
        struct child_io io = { .out_fd = -1, .err_path = err_path };
        pid_t reader, pid;
        char *err;
        int status;

        unlink(fifo);
        cr_assert_eq(mkfifo(fifo, 0600), 0);
        reader = fifo_reader(fifo, copy, 100000); /* then it goes away */
        pid = spawn(argv, &io);
        status = reap(pid);
        cr_assert_eq(reap_within(reader, 10), 0, "the reader got its end of file");
        err = slurp(err_path, NULL);
        cr_assert_eq(status, HVREC_STATUS_ERROR, "status %d: %s", status, err);
        cr_assert_eq(count(err, strerror(EPIPE)), 1, "the error once: %s", err);
        free(err);
}

Test(write_error, reported_once_and_the_summary_holds_to_the_file)
{
        const char *out = hv_tmp("limited.zst"), *err_path = hv_tmp("fsize-stderr.txt");
        const char *argv[] = RUN_ARGS(out, "--max-exits", "10000000", hv_guest("ioloop"));
        struct child_io io = { .out_fd = -1, .err_path = err_path, .fsize = 128 << 10 };
        unsigned long long exits = 0, bytes = 0;
        struct hv_trace t;
        struct stat st;
        const char *p;
        char *err;
        int status;

        unlink(out);
        status = reap(spawn(argv, &io));
        err = slurp(err_path, NULL);
        cr_assert_eq(status, HVREC_STATUS_ERROR, "status %d: %s", status, err);
        cr_assert_eq(count(err, strerror(EFBIG)), 1, "the error once: %s", err);
        p = strstr(err, "exits ");
        cr_assert(p && sscanf(p, "exits %llu", &exits) == 1, "%s", err);
        p = strstr(err, "bytes written before the error");
        cr_assert_not_null(p, "the summary says the trace stops at the error: %s", err);
        while (p > err && p[-1] == ' ')
                p--;
        while (p > err && p[-1] >= '0' && p[-1] <= '9')
                p--;
        cr_assert_eq(sscanf(p, "%llu", &bytes), 1, "%s", err);
        cr_assert_eq(stat(out, &st), 0);
        cr_assert_eq(bytes, (unsigned long long)st.st_size, "the bytes the file has: %s", err);
        hv_trace_load(out, &t);
        cr_assert(!t.have_end, "no end record past the error");
        cr_assert_gt(t.nexits, 0);
        cr_assert_leq(t.nexits, exits, "the summary does not claim fewer exits than were run");
        hv_trace_free(&t);
        free(err);
}

/* ---- exit statuses ------------------------------------------------------------ */

/* A real-mode flat guest that writes `value` to port 0xF4 with an OUT of `size` bytes. */
static const char *exit_guest(unsigned value, unsigned size)
{
        static char name[64];
        uint8_t code[16];
        size_t n = 0;

        if (size == 4)
                code[n++] = 0x66; /* operand size: EAX */
        if (size == 1) {
                code[n++] = 0xb0; /* mov al, imm8 */
                code[n++] = (uint8_t)value;
        } else {
                code[n++] = 0xb8; /* mov ax / eax, imm */
                for (unsigned i = 0; i < size; i++)
                        code[n++] = (uint8_t)(value >> (8 * i));
        }
        if (size == 4)
                code[n++] = 0x66;
        code[n++] = size == 1 ? 0xe6 : 0xe7; /* out 0xf4, al / ax / eax */
        code[n++] = 0xf4;
        code[n++] = 0xf4; /* hlt, never reached */
        snprintf(name, sizeof(name), "exit_%x_%u.bin", value, size);
        write_file(hv_tmp(name), code, n);
        return hv_tmp(name);
}

Test(status, the_guests_below_128_hvrecs_from_128_on)
{
        static const struct {
                unsigned value, size;
        } cases[] = {
                { 0, 1 },
                { 1, 1 },
                { 2, 1 },
                { 3, 1 },
                { 4, 1 },
                { 127, 1 },
                { 128, 1 },
                { 130, 1 },
                { 202, 1 },
                { 255, 1 },
                /* Wider OUTs: the whole value, never just its low byte. */
                { 5, 2 },
                { 0x100, 2 },
                { 0x204, 2 },
                { 7, 4 },
                { 0x10000, 4 },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                unsigned v = cases[i].value;
                int want = v <= 127 ? (int)v : HVREC_STATUS_GUEST_HIGH;
                struct hv_trace t;
                struct hv_proc p;
                char num[16];

                cr_assert_eq(hv_record_on("emu", exit_guest(v, cases[i].size), NULL, &t, &p), want,
                             "guest status %u (OUT size %u): %d: %s", v, cases[i].size, p.status,
                             p.err);
                cr_assert_eq(t.end.why, HVT_END_GUEST_EXIT);
                cr_assert_eq(t.end.detail, v, "the end record keeps the guest's own value");
                cr_assert_eq(t.end.status, want);
                snprintf(num, sizeof(num), "status %u", v);
                cr_assert(strstr(t.end_msg, num), "%s", t.end_msg);
                hv_trace_free(&t);
                hv_proc_free(&p);
        }
}

Test(status, hvrecs_own_outcomes)
{
        const char *limit[] = { "--max-exits", "3", NULL };
        const char *bad[] = { HVREC, "run", "--mem", "lots", "x.bin", NULL };
        struct hv_trace t;
        struct hv_proc p;

        cr_assert_eq(hv_run(bad, &p), 0);
        cr_assert_eq(p.status, HVREC_STATUS_ERROR, "%s", p.err);
        hv_proc_free(&p);
        cr_assert_eq(hv_record_on("emu", "triple", NULL, &t, &p), HVREC_STATUS_CRASH, "%s", p.err);
        cr_assert_eq(t.end.why, HVT_END_CRASH);
        hv_trace_free(&t);
        hv_proc_free(&p);
        cr_assert_eq(hv_record_on("emu", "out_lines", limit, &t, &p), HVREC_STATUS_LIMIT, "%s",
                     p.err);
        cr_assert_eq(t.end.why, HVT_END_MAX_EXITS);
        cr_assert_eq(t.nexits, 3);
        hv_trace_free(&t);
        hv_proc_free(&p);
        /* All of them above every guest status and every signal status. */
        cr_assert_gt(HVREC_STATUS_ERROR, 128 + SIGRTMAX);
}

/* ---- the console ------------------------------------------------------------- */

/* The bytes out_console writes: the guest's own `text`..`text_end`. */
static uint8_t *console_bytes(size_t *len)
{
        uint64_t base = 0x1000, from = hv_sym("out_console", "text"),
                 to = hv_sym("out_console", "text_end");
        size_t size;
        char *bin = slurp(hv_guest("out_console"), &size);
        uint8_t *bytes = malloc(to - from);

        cr_assert(from >= base && to > from && to - base <= size);
        memcpy(bytes, bin + (from - base), to - from);
        *len = to - from;
        free(bin);
        return bytes;
}

/* The documented escaping (docs/guest-abi.md), written out independently of hvrec's. */
static char *escaped(const uint8_t *b, size_t n)
{
        char *s = malloc(4 * n + 1), *p = s;

        for (size_t i = 0; i < n; i++) {
                if (b[i] == '\n' || b[i] == '\t' || (b[i] >= ' ' && b[i] <= '~' && b[i] != '\\'))
                        *p++ = (char)b[i];
                else
                        p += sprintf(p, "\\x%02x", b[i]);
        }
        *p = 0;
        return s;
}

static char *console_run(const char *extra, size_t *len)
{
        const char *out = hv_tmp("console.zst"), *stdout_path = hv_tmp("console.txt");
        const char *argv[] = { HVREC,
                               "run",
                               "--backend",
                               "emu",
                               "-o",
                               out,
                               extra ? extra : hv_guest("out_console"),
                               extra ? hv_guest("out_console") : NULL,
                               NULL };
        int fd = open(stdout_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        struct child_io io = { .out_fd = fd };
        size_t raw_len;
        uint8_t *raw = console_bytes(&raw_len);
        struct hv_trace t;

        cr_assert_eq(reap(spawn(argv, &io)), 0);
        close(fd);
        cr_assert_eq(hv_trace_load(out, &t), HVT_OK);
        cr_assert_eq(t.console_len, raw_len);
        cr_assert_eq(memcmp(t.console, raw, raw_len), 0, "the trace keeps the raw bytes");
        hv_trace_free(&t);
        free(raw);
        return slurp(stdout_path, len);
}

Test(console, control_bytes_are_escaped)
{
        size_t raw_len, len;
        uint8_t *raw = console_bytes(&raw_len);
        char *want = escaped(raw, raw_len), *got = console_run(NULL, &len);

        cr_assert_str_eq(got, want);
        for (size_t i = 0; i < len; i++)
                cr_assert(got[i] == '\n' || got[i] == '\t' || (got[i] >= ' ' && got[i] <= '~'),
                          "byte %zu is 0x%02x", i, (uint8_t)got[i]);
        cr_assert(strstr(got, "\\x1b[2J"), "the escape sequence is shown, not acted on: %s", got);
        free(raw);
        free(want);
        free(got);
}

Test(console, raw_console_passes_the_bytes_through)
{
        size_t raw_len, len;
        uint8_t *raw = console_bytes(&raw_len);
        char *got = console_run("--raw-console", &len);

        cr_assert_eq(len, raw_len);
        cr_assert_eq(memcmp(got, raw, raw_len), 0);
        free(raw);
        free(got);
}

/* ---- the initial memory image and the guest --------------------------------------- */

Test(memory, a_64g_guest_starts_at_once)
{
        const char *args[] = { "--mem", "64G", NULL };
        struct hv_trace t;
        struct hv_proc p;
        double t0 = now_s();

        /* Scanning 64 GiB of zeros took about 23 s; what hvrec wrote is a few KB. */
        cr_assert_eq(hv_record_on("emu", "hello", args, &t, &p), 7, "%s", p.err);
        cr_assert_lt(now_s() - t0, 8.0, "the run took %.1f s", now_s() - t0);
        cr_assert_eq(t.hdr.h.mem_size, 64ull << 30);
        hv_trace_free(&t);
        hv_proc_free(&p);
}

/* Every MEMORY record is a segment's file bytes or hvrec's tables at the top of RAM. */
Test(memory, the_image_is_the_guest_and_hvrecs_tables)
{
        const char *args[] = { "--mem", "8M", NULL };
        const uint64_t mem = 8 << 20, tables = mem - (3 + 1) * 4096;
        const char *elf = "hello_64.elf";
        struct hvt_reader *r;
        struct hvt_event ev;
        struct hv_trace t;
        struct hv_proc p;
        size_t size, records = 0;
        bool pml4 = false;
        char *file;

        cr_assert_eq(hv_record_on("emu", elf, args, &t, &p), 42, "%s", p.err);
        hv_trace_free(&t);
        hv_proc_free(&p);
        file = slurp(hv_guest_file(elf), &size);
        cr_assert_eq(hvt_reader_open(&r, hv_tmp("rec.zst")), HVT_OK);
        while (hvt_reader_next(r, &ev) == HVT_OK) {
                const struct hvt_memory *m = &ev.memory;
                bool in_segment = false;
                Elf64_Ehdr eh;

                if (ev.type != HVT_REC_MEMORY)
                        continue;
                records++;
                if (m->gpa >= tables) {
                        cr_assert_leq(m->gpa + m->len, mem);
                        /* The PML4's first entry points at the PDPT, the next page. */
                        if (m->gpa <= tables + 4096 && m->gpa + m->len >= tables + 4096 + 8) {
                                uint64_t e;

                                memcpy(&e, m->data + (tables + 4096 - m->gpa), 8);
                                pml4 = (e & ~0xfffull) == tables + 2 * 4096;
                        }
                        continue;
                }
                memcpy(&eh, file, sizeof(eh));
                for (unsigned i = 0; i < eh.e_phnum; i++) {
                        Elf64_Phdr ph;

                        memcpy(&ph, file + eh.e_phoff + i * sizeof(ph), sizeof(ph));
                        if (ph.p_type != PT_LOAD || m->gpa < ph.p_paddr ||
                            m->gpa + m->len > ph.p_paddr + ph.p_filesz)
                                continue;
                        in_segment = !memcmp(m->data, file + ph.p_offset + (m->gpa - ph.p_paddr),
                                             m->len);
                }
                cr_assert(in_segment, "MEMORY at 0x%llx+0x%zx is a segment's file bytes",
                          (unsigned long long)m->gpa, m->len);
        }
        hvt_reader_close(r);
        cr_assert_gt(records, 1);
        cr_assert(pml4, "hvrec's page tables are in the image");
        free(file);
}

/* An ELF64 executable with two PT_LOAD segments, code in the first. */
static const char *two_segment_elf(const char *name, uint64_t a, uint64_t a_memsz, uint64_t b,
                                   uint64_t b_memsz)
{
        static const uint8_t code[] = { 0xb0, 42, 0xe6, 0xf4 }; /* mov al, 42; out 0xf4, al */
        struct {
                Elf64_Ehdr eh;
                Elf64_Phdr ph[2];
                uint8_t code[sizeof(code)];
        } f = { 0 };

        memcpy(f.eh.e_ident, ELFMAG, SELFMAG);
        f.eh.e_ident[EI_CLASS] = ELFCLASS64;
        f.eh.e_ident[EI_DATA] = ELFDATA2LSB;
        f.eh.e_ident[EI_VERSION] = EV_CURRENT;
        f.eh.e_type = ET_EXEC;
        f.eh.e_machine = EM_X86_64;
        f.eh.e_version = EV_CURRENT;
        f.eh.e_entry = a;
        f.eh.e_phoff = offsetof(__typeof__(f), ph);
        f.eh.e_ehsize = sizeof(f.eh);
        f.eh.e_phentsize = sizeof(f.ph[0]);
        f.eh.e_phnum = 2;
        f.ph[0] = (Elf64_Phdr){ .p_type = PT_LOAD,
                                .p_offset = offsetof(__typeof__(f), code),
                                .p_paddr = a,
                                .p_vaddr = a,
                                .p_filesz = sizeof(code),
                                .p_memsz = a_memsz,
                                .p_flags = PF_R | PF_X };
        /* The second is all .bss: loaded after the first, its zeros land on top. */
        f.ph[1] = (Elf64_Phdr){ .p_type = PT_LOAD,
                                .p_paddr = b,
                                .p_vaddr = b,
                                .p_filesz = 0,
                                .p_memsz = b_memsz,
                                .p_flags = PF_R | PF_W };
        memcpy(f.code, code, sizeof(code));
        write_file(hv_tmp(name), &f, sizeof(f));
        return hv_tmp(name);
}

Test(guest, overlapping_elf_segments_are_refused)
{
        const char *ok = two_segment_elf("adjacent.elf", 0x10000, 0x1000, 0x11000, 0x1000);
        const char *bad = two_segment_elf("overlap.elf", 0x10000, 0x1000, 0x10000, 0x2000);
        const char *inside = two_segment_elf("inside.elf", 0x10000, 0x3000, 0x11000, 0x10);
        const char *never = hv_tmp("never.zst");
        struct hv_trace t;
        struct hv_proc p;

        cr_assert_eq(hv_record_on("emu", ok, NULL, &t, &p), 42, "adjacent is fine: %s", p.err);
        hv_trace_free(&t);
        hv_proc_free(&p);
        for (int i = 0; i < 2; i++) {
                const char *argv[] = { HVREC, "run", "--backend",      "emu",
                                       "-o",  never, i ? inside : bad, NULL };

                unlink(never);
                cr_assert_eq(hv_run(argv, &p), 0);
                hv_assert_one_line_error(&p, "hvrec", "overlap");
                cr_assert_neq(access(never, F_OK), 0, "refused before any trace");
                hv_proc_free(&p);
        }
}
