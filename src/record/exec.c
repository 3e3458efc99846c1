// SPDX-License-Identifier: MIT
/*
 * hvrec exec: run an unmodified, dynamically linked KVM VMM with the preload
 * library (src/preload/) and end the trace it wrote, however the VMM ended.
 *
 * hvrec opens the trace (hvrec run's -o rules), hands the VMM a descriptor
 * of it and a shared status page through the environment, waits (with
 * --timeout, stopping a VMM that runs past it: a hung VMM must not hang
 * hvrec), then appends the END record as a zstd frame of its own: the
 * frames of a trace concatenate, so the VMM's writer and hvrec never need
 * to share one.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <zstd.h>

#include <hvtrace/hvtrace.h>

#include "../preload/exec_abi.h"
#include "exec.h"
#include "options.h"
#include "output.h"
#include "recorder.h"
#include "signals.h"

#ifndef HVT_PRELOAD_INSTALLED
#define HVT_PRELOAD_INSTALLED "../lib/hvtrace/libhvtpreload.so"
#endif

/* The shell's statuses for a command it cannot find or cannot run. */
#define EXEC_NOT_FOUND 127
#define EXEC_CANNOT    126

#define DEFAULT_OUTPUT "trace.zst"

/* --timeout: seconds a VMM gets between SIGTERM and SIGKILL to end cleanly. */
#define EXEC_GRACE_S 5

/* The --timeout timer's signal: hvrec run's (signals.c). */
#define DEADLINE_SIGNAL SIGNALS_TIMEOUT_SIGNO

static const int forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
#define NFORWARDED (sizeof(forwarded) / sizeof(forwarded[0]))

struct exec_run {
        const char *output;
        char **vmm_argv;
        char vmm[PATH_MAX];
        const char *preload;
        struct output out;
        int status_fd;
        struct hvt_exec_status *status;
        struct sigaction old[NFORWARDED];
        double timeout_s;              /* --timeout, 0 = none */
        struct sigaction old_deadline; /* DEADLINE_SIGNAL's disposition before --timeout's */
        sigset_t old_mask;             /* the signal mask hvrec was started with */
        int stopped;                   /* what --timeout sent the VMM: 0, SIGTERM or SIGKILL */
        uint64_t t0;
};

static volatile sig_atomic_t vmm_pid;
/* What the --timeout handler has sent the VMM so far: 0, SIGTERM, SIGKILL. */
static volatile sig_atomic_t vmm_stopped;
static timer_t deadline_timer;

static void usage(FILE *f)
{
        fprintf(f,
                "Usage: hvrec exec [-o TRACE] [OPTIONS] -- VMM [ARGS...]\n"
                "\n"
                "Run VMM, an unmodified dynamically linked KVM VMM (e.g. qemu-system-x86_64\n"
                "-accel kvm), with hvtrace's preload library, and record into TRACE every\n"
                "exit of its vCPUs with full state, its memory slots, injections and\n"
                "interrupt lines.\n"
                "The VMM's stdin, stdout and stderr are its own; hvrec exits with the\n"
                "VMM's status (128+N if signal N killed it).\n"
                "\n"
                "Options:\n"
                "  -o, --output FILE    trace file (default trace.zst; an existing one is\n"
                "                       kept as FILE.1, FILE.2, ...; not - : stdout is the\n"
                "                       VMM's)\n"
                "  --timeout SECONDS    stop the VMM after SECONDS of wall time: SIGTERM,\n"
                "                       then SIGKILL %d s later if it is still running; the\n"
                "                       trace ends as a timeout (default: no limit)\n"
                "  -h, --help           this text\n"
                "\n"
                "Exit status: the VMM's; 126 VMM cannot be run (not executable, statically\n"
                "linked), 127 VMM not found, 202 hvrec's own error (bad options, the trace\n"
                "cannot be written, no preload library), 204 stopped by --timeout.\n",
                EXEC_GRACE_S);
}

static uint64_t mono_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Returns 1 to run, 0 for --help, -1 for an error (said). */
static int exec_options(struct exec_run *r, int argc, char **argv)
{
        static const struct option longs[] = {
                { "output", required_argument, NULL, 'o' },
                { "timeout", required_argument, NULL, 'T' },
                { "help", no_argument, NULL, 'h' },
                { NULL, 0, NULL, 0 },
        };
        int c;

        r->output = DEFAULT_OUTPUT;
        optind = 1;
        opterr = 0;
        /* '+': the first word that is not an option is the VMM; its options are its own. */
        while ((c = getopt_long(argc, argv, "+:o:h", longs, NULL)) != -1) {
                switch (c) {
                case 'o':
                        if (!*optarg || !strcmp(optarg, "-")) {
                                fprintf(stderr, "hvrec exec: -o: %s\n",
                                        *optarg ? "not stdout: the VMM writes there"
                                                : "empty file name");
                                return -1;
                        }
                        r->output = optarg;
                        break;
                case 'T':
                        if (rec_parse_seconds(optarg, false, &r->timeout_s)) {
                                fprintf(stderr,
                                        "hvrec exec: --timeout: '%s' is not a number of "
                                        "seconds\n",
                                        optarg);
                                return -1;
                        }
                        break;
                case 'h': usage(stdout); return 0;
                case ':':
                        fprintf(stderr, "hvrec exec: %s needs an argument\n", argv[optind - 1]);
                        return -1;
                default:
                        fprintf(stderr, "hvrec exec: unknown option '%s' (try hvrec exec --help)\n",
                                argv[optind - 1]);
                        return -1;
                }
        }
        if (optind >= argc) {
                fprintf(stderr, "hvrec exec: no VMM to run (hvrec exec [-o TRACE] -- VMM "
                                "[ARGS...])\n");
                return -1;
        }
        r->vmm_argv = argv + optind;
        return 1;
}

/*
 * The preload library: $HVTRACE_PRELOAD, else the installed copy relative to
 * an installed hvrec, else the build tree's.
 */
static const char *preload_path(void)
{
        static char installed[PATH_MAX + sizeof(HVT_PRELOAD_INSTALLED) + 1];
#ifdef HVT_PRELOAD
        const char *built = HVT_PRELOAD;
#else
        const char *built = NULL;
#endif

        return backend_data_path("HVTRACE_PRELOAD", HVT_PRELOAD_INSTALLED, built, installed,
                                 sizeof(installed));
}

/* PATH lookup as execvp does it, into r->vmm.  Returns 0, or -ENOENT / -EACCES. */
static int find_vmm(struct exec_run *r)
{
        const char *name = r->vmm_argv[0], *path = getenv("PATH");
        int err = -ENOENT;

        if (!*name)
                return -ENOENT;
        if (strchr(name, '/')) {
                snprintf(r->vmm, sizeof(r->vmm), "%s", name);
                return access(r->vmm, X_OK) ? -errno : 0;
        }
        if (!path)
                path = "/usr/local/bin:/usr/bin:/bin";
        while (*path) {
                size_t len = strcspn(path, ":");
                struct stat st;

                snprintf(r->vmm, sizeof(r->vmm), "%.*s%s%s", (int)len, len ? path : ".", "/", name);
                if (!stat(r->vmm, &st) && S_ISREG(st.st_mode)) {
                        if (!access(r->vmm, X_OK))
                                return 0;
                        err = -EACCES;
                }
                path += len + (path[len] == ':');
        }
        return err;
}

/*
 * Whether the executable at path can take LD_PRELOAD: an ELF file must
 * name a dynamic loader (PT_INTERP).  Anything else (a script) is taken to
 * be run by an interpreter that can.  Returns 1, 0 (static), or -errno.
 */
static int preloadable(const char *path)
{
        Elf64_Ehdr eh;
        Elf64_Phdr ph;
        int fd = open(path, O_RDONLY | O_CLOEXEC), res = 0;

        if (fd < 0)
                return -errno;
        if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh) ||
            memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_ident[EI_CLASS] != ELFCLASS64) {
                /* Not a 64-bit ELF: a script, or something the kernel will refuse itself. */
                close(fd);
                return 1;
        }
        for (unsigned i = 0; i < eh.e_phnum && !res; i++) {
                off_t at = (off_t)(eh.e_phoff + (uint64_t)i * eh.e_phentsize);

                if (pread(fd, &ph, sizeof(ph), at) != (ssize_t)sizeof(ph))
                        break;
                res = ph.p_type == PT_INTERP;
        }
        close(fd);
        return res;
}

/* The shared status page, before the fork.  Returns 0 or -errno. */
static int status_page(struct exec_run *r)
{
        void *p;

        r->status_fd = memfd_create("hvtrace-exec-status", MFD_CLOEXEC);
        if (r->status_fd < 0)
                return -errno;
        if (ftruncate(r->status_fd, HVT_EXEC_STATUS_SIZE))
                goto err;
        p = mmap(NULL, HVT_EXEC_STATUS_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, r->status_fd, 0);
        if (p == MAP_FAILED)
                goto err;
        r->status = p;
        return 0;
err:
        close(r->status_fd);
        r->status_fd = -1;
        return -errno;
}

/* LD_PRELOAD with the library appended, so a preload the user set stays first. */
static int set_preload(const char *lib)
{
        const char *old = getenv("LD_PRELOAD");
        char *v;
        int err;

        if (!old || !*old)
                return setenv("LD_PRELOAD", lib, 1);
        if (asprintf(&v, "%s:%s", old, lib) < 0)
                return -1;
        err = setenv("LD_PRELOAD", v, 1);
        free(v);
        return err;
}

/* In the child: the environment the library reads, then the VMM.  Never returns. */
static void exec_child(struct exec_run *r)
{
        /* Descriptors without FD_CLOEXEC, for the VMM; the library closes them on exec. */
        int tfd = fcntl(r->out.fd, F_DUPFD, 3), sfd = fcntl(r->status_fd, F_DUPFD, 3);
        char num[24];

        for (size_t i = 0; i < NFORWARDED; i++)
                sigaction(forwarded[i], &r->old[i], NULL);
        if (r->timeout_s > 0) {
                sigaction(DEADLINE_SIGNAL, &r->old_deadline, NULL);
                sigprocmask(SIG_SETMASK, &r->old_mask, NULL);
        }
        if (tfd < 0 || sfd < 0 || set_preload(r->preload))
                goto err;
        snprintf(num, sizeof(num), "%d", tfd);
        if (setenv(HVT_EXEC_ENV_TRACE_FD, num, 1))
                goto err;
        snprintf(num, sizeof(num), "%d", sfd);
        if (setenv(HVT_EXEC_ENV_STATUS_FD, num, 1))
                goto err;
        snprintf(num, sizeof(num), "%d", (int)getpid());
        if (setenv(HVT_EXEC_ENV_PID, num, 1))
                goto err;
        execv(r->vmm, r->vmm_argv);
err:
        fprintf(stderr, "hvrec exec: cannot run %s: %s\n", r->vmm, strerror(errno));
        _exit(errno == ENOENT ? EXEC_NOT_FOUND : EXEC_CANNOT);
}

/* A signal meant for hvrec goes to the VMM, whose death hvrec then records. */
static void forward(int sig)
{
        if (vmm_pid > 0)
                kill((pid_t)vmm_pid, sig);
}

/*
 * --timeout's timer signal: the first asks the VMM to end (SIGTERM: QEMU
 * then exits cleanly and its writer ends the last frame), the second, the
 * grace later, kills it.  The handler sends them itself, so that the wait
 * for the VMM can block with no window in which a deadline goes unnoticed.
 * The signal is hvrec run's (a real-time one, checked to come from the
 * timer), so a SIGALRM or a kill from outside is never taken for it.
 */
static void deadline(int sig, siginfo_t *si, void *uctx)
{
        struct itimerspec grace = { .it_value = { .tv_sec = EXEC_GRACE_S } };
        int saved = errno;

        (void)sig;
        (void)uctx;
        if (!signals_is_deadline(si) || vmm_pid <= 0)
                return;
        if (!vmm_stopped) {
                vmm_stopped = SIGTERM;
                kill((pid_t)vmm_pid, SIGTERM);
                timer_settime(deadline_timer, 0, &grace, NULL); /* async-signal-safe */
        } else {
                vmm_stopped = SIGKILL;
                kill((pid_t)vmm_pid, SIGKILL);
        }
        errno = saved;
}

/*
 * The --timeout timer and its handler, before the fork; the signal is
 * unblocked (a mask inherited from hvrec's parent would otherwise keep a
 * hung VMM running).  Returns 0 or -errno.
 */
static int deadline_setup(struct exec_run *r)
{
        struct sigaction sa = { .sa_sigaction = deadline, .sa_flags = SA_SIGINFO };
        sigset_t set;
        int err;

        err = signals_deadline_create(&deadline_timer);
        if (err)
                return err;
        vmm_stopped = 0;
        sigemptyset(&sa.sa_mask);
        if (sigaction(DEADLINE_SIGNAL, &sa, &r->old_deadline)) {
                err = -errno;
                goto err_timer;
        }
        sigemptyset(&set);
        sigaddset(&set, DEADLINE_SIGNAL);
        if (sigprocmask(SIG_UNBLOCK, &set, &r->old_mask)) {
                err = -errno;
                goto err_action;
        }
        return 0;
err_action:
        sigaction(DEADLINE_SIGNAL, &r->old_deadline, NULL);
err_timer:
        timer_delete(deadline_timer);
        return err;
}

/* Remove the --timeout timer and its handler; note what it sent the VMM. */
static void deadline_teardown(struct exec_run *r)
{
        timer_delete(deadline_timer);
        r->stopped = vmm_stopped;
        sigaction(DEADLINE_SIGNAL, &r->old_deadline, NULL);
        sigprocmask(SIG_SETMASK, &r->old_mask, NULL);
}

/* Run the VMM to its end.  Returns its wait status, or -errno. */
static int run_vmm(struct exec_run *r)
{
        struct sigaction sa = { .sa_handler = forward };
        int wstatus, err = 0;
        pid_t pid;

        if (r->timeout_s > 0) {
                err = deadline_setup(r);
                if (err)
                        return err;
        }
        sigemptyset(&sa.sa_mask);
        for (size_t i = 0; i < NFORWARDED; i++)
                sigaction(forwarded[i], &sa, &r->old[i]);
        r->t0 = mono_ns();
        fflush(NULL);
        pid = fork();
        if (pid < 0) {
                err = -errno;
                goto out;
        }
        if (pid == 0)
                exec_child(r);
        vmm_pid = pid;
        if (r->timeout_s > 0) {
                err = signals_deadline_arm(deadline_timer, r->timeout_s);
                if (err) {
                        /* No deadline means no bound: do not leave the VMM running unbounded. */
                        kill(pid, SIGKILL);
                        waitpid(pid, &wstatus, 0);
                        goto out;
                }
        }
        while (waitpid(pid, &wstatus, 0) < 0)
                if (errno != EINTR) {
                        err = -errno;
                        break;
                }
out:
        vmm_pid = 0;
        if (r->timeout_s > 0)
                deadline_teardown(r);
        for (size_t i = 0; i < NFORWARDED; i++)
                sigaction(forwarded[i], &r->old[i], NULL);
        return err ? err : wstatus;
}

/*
 * A VMM killed while its writer was inside a frame left that frame
 * incomplete: cut a regular file back to its last complete frame, so the
 * END frame follows a clean stream.  Returns 0 or -errno.
 */
static int cut_to_frames(struct exec_run *r)
{
        char proc[64];
        struct stat st;
        size_t good = 0;
        void *map;
        int fd, err = 0;

        if (r->out.size_fd < 0)
                return 0; /* a FIFO or a device: what was written stays */
        if (fstat(r->out.size_fd, &st))
                return -errno;
        if (!st.st_size)
                return 0;
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", r->out.size_fd);
        fd = open(proc, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        close(fd);
        if (map == MAP_FAILED)
                return -errno;
        while (good < (size_t)st.st_size) {
                size_t n = ZSTD_findFrameCompressedSize((const char *)map + good,
                                                        (size_t)st.st_size - good);

                if (ZSTD_isError(n))
                        break;
                good += n;
        }
        munmap(map, (size_t)st.st_size);
        if (good < (size_t)st.st_size && ftruncate(r->out.size_fd, (off_t)good))
                err = -errno;
        if (!err && lseek(r->out.fd, (off_t)good, SEEK_SET) < 0)
                err = -errno;
        return err;
}

/* The END record as a frame of its own, after the VMM's frames.  Returns 0 or -errno. */
static int append_end(struct exec_run *r, const struct hvt_disk_end *e, const char *msg)
{
        char raw[sizeof(struct hvt_disk_rec) + sizeof(*e) + 512];
        size_t mlen = strlen(msg), raw_len = sizeof(struct hvt_disk_rec) + sizeof(*e) + mlen;
        struct hvt_disk_rec rec = { .type = HVT_REC_END, .size = (uint32_t)(sizeof(*e) + mlen) };
        size_t cap = ZSTD_compressBound(sizeof(raw)), n, off = 0;
        char *z = malloc(cap);
        int err = 0;

        if (mlen > 512 || !z) {
                free(z);
                return mlen > 512 ? -EMSGSIZE : -ENOMEM;
        }
        memcpy(raw, &rec, sizeof(rec));
        memcpy(raw + sizeof(rec), e, sizeof(*e));
        memcpy(raw + sizeof(rec) + sizeof(*e), msg, mlen);
        n = ZSTD_compress(z, cap, raw, raw_len, 3);
        if (ZSTD_isError(n)) {
                free(z);
                return -EIO;
        }
        while (off < n) {
                ssize_t w = write(r->out.fd, z + off, n - off);

                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0) {
                        err = -errno;
                        break;
                }
                off += (size_t)w;
        }
        free(z);
        return err;
}

/* A whole trace from hvrec, for a VMM that never ran a vCPU.  Returns 0 or -errno. */
static int write_empty_trace(struct exec_run *r, const struct hvt_disk_end *e, const char *msg)
{
        struct hvt_writer *w;
        struct hvt_header h = { 0 };
        int err, cerr;

        err = hvt_writer_fdopen(&w, r->out.fd, NULL);
        r->out.fd = -1;
        if (err)
                return err;
        h.h.start_realtime_ns = (uint64_t)time(NULL) * 1000000000ull;
        h.h.inject_policy = HVT_POLICY_BACKEND;
        h.str[HVT_STR_TOOL_VERSION] = "hvrec exec " HVT_VERSION_STRING;
        h.str[HVT_STR_BACKEND] = HVT_EXEC_BACKEND;
        h.argv = (const char *const *)r->vmm_argv;
        for (h.argc = 0; r->vmm_argv[h.argc]; h.argc++)
                ;
        err = hvt_write_header(w, &h);
        if (!err)
                err = hvt_write_end(w, e, msg);
        cerr = hvt_writer_close(w);
        return err ? err : cerr;
}

/* End the trace for a VMM whose wait status is wstatus; returns hvrec's status. */
static int finish_trace(struct exec_run *r, int wstatus)
{
        const struct hvt_exec_status *s = r->status;
        struct hvt_disk_end e = { .exits = s->exits, .last_rip = s->last_rip };
        char msg[256];
        int err;

        e.wall_ns = mono_ns() - r->t0;
        if (r->stopped) {
                /* Whatever status the VMM ended with, it ended because it ran too long. */
                e.why = HVT_END_TIMEOUT;
                e.status = STATUS_LIMIT;
                snprintf(msg, sizeof(msg), "timed out after %g s (--timeout): SIGTERM",
                         r->timeout_s);
                if (r->stopped == SIGKILL)
                        snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg),
                                 ", then SIGKILL %d s later", EXEC_GRACE_S);
                snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg), "; the VMM ");
                if (WIFSIGNALED(wstatus))
                        snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg),
                                 "was killed by signal %d", WTERMSIG(wstatus));
                else
                        snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg),
                                 "exited with status %d", WEXITSTATUS(wstatus));
                fprintf(stderr, "hvrec exec: %s\n", msg);
        } else if (WIFSIGNALED(wstatus)) {
                e.why = HVT_END_SIGNAL;
                e.detail = (uint32_t)WTERMSIG(wstatus);
                e.status = STATUS_SIGNAL0 + WTERMSIG(wstatus);
                snprintf(msg, sizeof(msg), "the VMM was killed by signal %d", WTERMSIG(wstatus));
        } else {
                e.why = HVT_END_GUEST_EXIT;
                e.detail = (uint32_t)WEXITSTATUS(wstatus);
                e.status = WEXITSTATUS(wstatus);
                snprintf(msg, sizeof(msg), "the VMM exited with status %d", WEXITSTATUS(wstatus));
        }
        if (s->magic != HVT_EXEC_MAGIC)
                snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg),
                         "; the preload library never loaded in it: no vCPU recorded");
        else if (!s->started)
                snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg),
                         "; it never ran a KVM vCPU: no vCPU recorded");
        else if (s->failed) {
                if (!r->stopped)
                        e.why = HVT_END_ERROR;
                snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg),
                         "; recording stopped early (the VMM's stderr says why)");
        }
        if (s->magic == HVT_EXEC_MAGIC && s->started) {
                err = cut_to_frames(r);
                if (!err)
                        err = append_end(r, &e, msg);
        } else {
                err = write_empty_trace(r, &e, msg);
        }
        if (err) {
                fprintf(stderr, "hvrec exec: cannot end the trace %s: %s\n", r->output,
                        hvt_strerror(err));
                return STATUS_ERROR;
        }
        return e.status;
}

/* Check what can be checked before the VMM runs.  Returns 0 or hvrec's status. */
static int exec_check(struct exec_run *r)
{
        int err = find_vmm(r);

        if (err) {
                fprintf(stderr, "hvrec exec: %s: %s\n", r->vmm_argv[0],
                        err == -ENOENT ? "VMM not found" : "VMM is not executable");
                return err == -ENOENT ? EXEC_NOT_FOUND : EXEC_CANNOT;
        }
        err = preloadable(r->vmm);
        if (err <= 0) {
                fprintf(stderr, "hvrec exec: %s: %s\n", r->vmm,
                        err ? strerror(-err)
                            : "statically linked: the preload library cannot be loaded into it");
                return EXEC_CANNOT;
        }
        r->preload = preload_path();
        if (!r->preload || access(r->preload, R_OK)) {
                fprintf(stderr, "hvrec exec: cannot find the preload library %s%s\n",
                        r->preload ? r->preload : "libhvtpreload.so",
                        r->preload ? " (set HVTRACE_PRELOAD)" : " (not built: HVTRACE_EXEC=OFF)");
                return STATUS_ERROR;
        }
        return 0;
}

int cmd_exec(int argc, char **argv)
{
        struct exec_run r = { .out = { .fd = -1, .size_fd = -1 }, .status_fd = -1 };
        char why[512];
        int res, wstatus = 0, status;

        res = exec_options(&r, argc, argv);
        if (res <= 0)
                return res ? STATUS_ERROR : 0;
        status = exec_check(&r);
        if (status)
                return status;
        if (open_output(r.output, &r.out, why, sizeof(why))) {
                fprintf(stderr, "hvrec exec: %s\n", why);
                return STATUS_ERROR;
        }
        if (r.out.kept[0])
                fprintf(stderr, "hvrec exec: kept the existing %s as %s%s\n", r.output, r.output,
                        r.out.kept);
        res = status_page(&r);
        if (!res) {
                wstatus = run_vmm(&r);
                res = wstatus < 0 ? wstatus : 0;
        }
        if (res) {
                fprintf(stderr, "hvrec exec: cannot run %s: %s\n", r.vmm, strerror(-res));
                status = STATUS_ERROR;
        } else {
                status = finish_trace(&r, wstatus);
        }
        if (r.out.fd >= 0)
                close(r.out.fd);
        if (r.out.size_fd >= 0)
                close(r.out.size_fd);
        if (r.status_fd >= 0)
                close(r.status_fd);
        return status;
}
