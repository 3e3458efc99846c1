// SPDX-License-Identifier: MIT
/*
 * Crash safety of a recording, measured (docs/trace-format.md section 2).
 * hvrec records a guest on the emu backend and is killed with SIGKILL at
 * seeded random instants, 10 times at each of two exit rates.  Every trace
 * it leaves must:
 *  - read up to at least its last complete zstd frame, then stop as
 *    truncated (never corrupt), with at most 4096 records in any frame;
 *  - hold exactly the first records of the same run recorded to its end
 *    (emu runs are deterministic under --seed, and kicks count
 *    instructions), so nothing kept is damaged or out of order;
 *  - have lost at most 4096 records, and nothing recorded more than 250 ms
 *    before the kill (plus SLACK_MS for a loaded machine).
 * What had been recorded by the kill is seen from outside: the guest prints
 * a line every few exits, hvrec's stdout is a pty (so line buffered), and
 * the test notes when each line arrives.  hvrec writes an exit's record
 * before it prints the exit's console output, so line j read at time t
 * means the exit record that printed it had been written by t; the
 * reference run says which record that is.
 *
 * The fast guest exits ~10^5 times a second: its frames end at 4096
 * records, and the count bound is what is measured.  The slow guest spins
 * tens of ms between exits (fewer than 100 records a second), so its frames
 * end at 250 ms, by the writer's flush thread alone (the writer's own check
 * every 64 records would take seconds): the time bound.
 *
 * HV_KILL_SEED=N draws other instants (the default is fixed, so a failure
 * reproduces).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <zstd.h>

#include "helpers.h"

#define KILLS         10
#define FRAME_RECORDS 4096 /* the writer's bounds, docs/trace-format.md section 2 */
#define FRAME_MS      250
#define SLACK_MS      250 /* the flush thread's wake-up on a busy machine */
#define REC_SEED      "7"
#define KILL_SEED     0x6b696c6cull

/* A guest speed: exits per line, the busy loop between exits, when to kill. */
struct speed {
        const char *name;
        uint8_t line_exits;
        uint32_t delay;
        const char *kick;        /* hvrec --kick, or NULL */
        unsigned min_ms, max_ms; /* kill this long after the first line */
};

static const struct speed fast = { "fast", 64, 0x40, "300", 0, 400 };
static const struct speed slow = { "slow", 1, 0x180000, NULL, 300, 1500 };

/* What one killed recording left and what the test saw of it. */
struct kill {
        char trace[1024];
        unsigned delay_ms;
        uint64_t *line_ns; /* when each line was read (CLOCK_MONOTONIC) */
        size_t nlines, cap;
        uint64_t kill_ns;
};

/* The complete run: record index of the exit that printed each line. */
struct reference {
        char trace[1024];
        uint64_t *line_rec;
        size_t nlines, cap;
        uint64_t records;
};

static uint64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t next_rand(uint64_t *s)
{
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        return *s;
}

static void push(uint64_t **v, size_t *n, size_t *cap, uint64_t x)
{
        if (*n == *cap) {
                *cap = *cap ? 2 * *cap : 256;
                *v = realloc(*v, *cap * sizeof(**v));
                cr_assert_not_null(*v);
        }
        (*v)[(*n)++] = x;
}

/* The guest, a flat real-mode binary, written to path. */
static void write_guest(const struct speed *s, char *path, size_t len)
{
        uint8_t code[] = {
                0x31, 0xdb,                         /* 1000  xor bx, bx */
                0xb9, 0x00, 0x00,                   /* 1002  mov cx, line_exits */
                0x66, 0xba, 0x00, 0x00, 0x00, 0x00, /* 1005  mov edx, delay */
                0x66, 0x4a,                         /* 100b  dec edx */
                0x75, 0xfc,                         /* 100d  jnz 100b */
                0xe6, 0x80,                         /* 100f  out 0x80, al */
                0xe2, 0xf2,                         /* 1011  loop 1005 */
                0x43,                               /* 1013  inc bx */
                0xb0, 0x0a,                         /* 1014  mov al, '\n' */
                0xe6, 0xe9,                         /* 1016  out 0xe9, al: a line */
                0xeb, 0xe8,                         /* 1018  jmp 1002 */
        };
        char name[64];
        FILE *f;

        code[3] = s->line_exits;
        memcpy(&code[7], &s->delay, 4); /* little endian, as trace.h requires of the host */
        snprintf(name, sizeof(name), "kill-%s.bin", s->name);
        snprintf(path, len, "%s", hv_tmp(name));
        f = fopen(path, "wb");
        cr_assert(f && fwrite(code, 1, sizeof(code), f) == sizeof(code) && !fclose(f), "%s: %s",
                  path, strerror(errno));
}

/* hvrec's arguments for guest, with --max-exits max_exits (NULL: none), into trace. */
static void rec_args(const char **argv, const struct speed *s, const char *guest, const char *trace,
                     const char *max_exits)
{
        int n = 0;

        hv_require_backend("emu"); /* this runs hvrec itself, not through hv_run */
        argv[n++] = HVREC;
        argv[n++] = "run";
        argv[n++] = "--backend";
        argv[n++] = "emu";
        argv[n++] = "--seed";
        argv[n++] = REC_SEED;
        argv[n++] = "-q";
        if (s->kick) {
                argv[n++] = "--kick";
                argv[n++] = s->kick;
        }
        if (max_exits) {
                argv[n++] = "--max-exits";
                argv[n++] = max_exits;
        }
        argv[n++] = "-o";
        argv[n++] = trace;
        argv[n++] = guest;
        argv[n] = NULL;
}

/* Start argv with its stdout on a fresh pty (raw mode), stderr to errfile; *master reads it. */
static pid_t spawn_on_pty(const char *const *argv, const char *errfile, int *master)
{
        struct termios t;
        int m, s;
        pid_t pid;

        m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        cr_assert(m >= 0 && !grantpt(m) && !unlockpt(m), "pty: %s", strerror(errno));
        s = open(ptsname(m), O_RDWR | O_NOCTTY | O_CLOEXEC);
        cr_assert_geq(s, 0, "pty: %s", strerror(errno));
        cr_assert_eq(tcgetattr(s, &t), 0);
        cfmakeraw(&t);
        cr_assert_eq(tcsetattr(s, TCSANOW, &t), 0);
        pid = fork();
        cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
        if (pid == 0) {
                int null = open("/dev/null", O_RDWR);
                int err = open(errfile, O_WRONLY | O_CREAT | O_TRUNC, 0644);

                dup2(null, 0);
                dup2(s, 1);
                dup2(err, 2);
                execv(argv[0], (char *const *)argv);
                _exit(127);
        }
        close(s);
        *master = m;
        return pid;
}

/* Read what is there; note the time of every line.  Returns bytes read (0: none, -1: closed). */
static ssize_t read_lines(int m, struct kill *k)
{
        char buf[4096];
        ssize_t n = read(m, buf, sizeof(buf));
        uint64_t t = now_ns();

        if (n <= 0)
                return n < 0 && errno == EAGAIN ? 0 : -1;
        for (ssize_t i = 0; i < n; i++)
                if (buf[i] == '\n')
                        push(&k->line_ns, &k->nlines, &k->cap, t);
        return n;
}

static void fail_early_end(pid_t pid, const char *errfile, const char *what)
{
        char msg[512] = "";
        FILE *f = fopen(errfile, "r");
        int st = 0;

        waitpid(pid, &st, 0);
        if (f) {
                msg[fread(msg, 1, sizeof(msg) - 1, f)] = 0;
                fclose(f);
        }
        cr_assert_fail("hvrec %s (status 0x%x) before it could be killed: %s", what, st, msg);
}

/* Run hvrec, kill it delay_ms after its first line. */
static void record_and_kill(const char *const *argv, struct kill *k)
{
        uint64_t start = now_ns(), deadline = 0;
        char errfile[1100];
        int m, st = 0;
        pid_t pid;

        snprintf(errfile, sizeof(errfile), "%.1000s.err", k->trace);
        pid = spawn_on_pty(argv, errfile, &m);

        fcntl(m, F_SETFL, fcntl(m, F_GETFL) | O_NONBLOCK);
        for (;;) {
                uint64_t t = now_ns();
                struct pollfd p = { m, POLLIN, 0 };
                int wait_ms = 100;

                if (deadline && t >= deadline)
                        break;
                if (t - start > 120 * 1000000000ull) {
                        kill(pid, SIGKILL);
                        fail_early_end(pid, errfile, "printed no line for 120 s");
                }
                if (deadline)
                        wait_ms = (int)((deadline - t) / 1000000 + 1);
                if (poll(&p, 1, wait_ms) > 0 && read_lines(m, k) < 0)
                        fail_early_end(pid, errfile, "ended");
                if (!deadline && k->nlines)
                        deadline = k->line_ns[0] + (uint64_t)k->delay_ms * 1000000ull;
        }
        /* Whatever is already in the pty was written before the kill. */
        while (read_lines(m, k) > 0)
                ;
        k->kill_ns = now_ns();
        kill(pid, SIGKILL);
        cr_assert_eq(waitpid(pid, &st, 0), pid);
        close(m);
        cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
                  "hvrec ended by itself (status 0x%x) before the kill", st);
}

static uint64_t trace_records(const char *path)
{
        struct hvt_reader *r;
        struct hvt_event ev;
        uint64_t n;

        if (hvt_reader_open(&r, path)) {
                hvt_reader_close(r);
                return 0;
        }
        while (hvt_reader_next(r, &ev) == HVT_OK)
                ;
        n = hvt_reader_records(r);
        hvt_reader_close(r);
        return n;
}

/* Record the complete run with max_exits; note which record printed each line. */
static void record_reference(const struct speed *s, const char *guest, uint64_t max_exits,
                             struct reference *ref)
{
        const char *argv[24];
        char max[32];
        struct hv_proc p;
        struct hvt_reader *r;
        struct hvt_event ev;
        uint64_t exit_index = 0, exit_seq = 0;
        int err;

        snprintf(ref->trace, sizeof(ref->trace), "%s", hv_tmp("kill-reference.zst"));
        unlink(ref->trace);
        snprintf(max, sizeof(max), "%llu", (unsigned long long)max_exits);
        rec_args(argv, s, guest, ref->trace, max);
        cr_assert_eq(hv_run(argv, &p), 0);
        hv_proc_free(&p);

        ref->nlines = 0;
        cr_assert_eq(hvt_reader_open(&r, ref->trace), HVT_OK);
        while ((err = hvt_reader_next(r, &ev)) == HVT_OK) {
                if (ev.type == HVT_REC_EXIT) {
                        exit_index = ev.index;
                        exit_seq = ev.exit.seq;
                } else if (ev.type == HVT_REC_CONSOLE) {
                        cr_assert_eq(ev.console.seq, exit_seq,
                                     "console output follows the exit that printed it");
                        for (size_t i = 0; i < ev.console.len; i++)
                                if (ev.console.data[i] == '\n')
                                        push(&ref->line_rec, &ref->nlines, &ref->cap, exit_index);
                } else if (ev.type == HVT_REC_END) {
                        cr_assert_eq(ev.end.e.why, HVT_END_MAX_EXITS,
                                     "the reference run stops at --max-exits: %s", ev.end.message);
                }
        }
        cr_assert_eq(err, HVT_END_OF_TRACE, "reference: %s", hvt_reader_message(r));
        ref->records = hvt_reader_records(r);
        hvt_reader_close(r);
}

/* Fail unless a (from the killed run) and b (from the reference) are the same record. */
static void assert_same_event(const struct hvt_event *a, const struct hvt_event *b,
                              const char *what)
{
        cr_assert_eq(a->type, b->type, "%s: record %llu: type %u, the complete run has %u", what,
                     (unsigned long long)a->index, a->type, b->type);
        cr_assert_eq(a->index, b->index, "%s: record numbering", what);
        switch (a->type) {
        case HVT_REC_HEADER:
                /* The command lines differ (-o, --max-exits); what the run is must not. */
                cr_assert_eq(a->header.h.mem_size, b->header.h.mem_size);
                cr_assert_eq(a->header.h.seed, b->header.h.seed);
                cr_assert_eq(a->header.h.flags, b->header.h.flags);
                return;
        case HVT_REC_MEMORY:
                cr_assert(a->memory.gpa == b->memory.gpa && a->memory.len == b->memory.len &&
                                  !memcmp(a->memory.data, b->memory.data, a->memory.len),
                          "%s: memory record %llu differs", what, (unsigned long long)a->index);
                return;
        case HVT_REC_EXIT: {
                const struct hvt_exit *x = &a->exit, *y = &b->exit;

                /* Everything but the times, which are the host's. */
                cr_assert(x->seq == y->seq && x->reason == y->reason &&
                                  x->raw_reason == y->raw_reason && x->changed == y->changed &&
                                  !memcmp(&x->st, &y->st, sizeof(x->st)) &&
                                  x->insn_len == y->insn_len &&
                                  !memcmp(x->insn, y->insn, x->insn_len),
                          "%s: exit record %llu (#%llu) differs from the complete run's", what,
                          (unsigned long long)a->index, (unsigned long long)x->seq);
                if (x->reason == HVT_EXIT_IO)
                        cr_assert(!memcmp(&x->u.io.io, &y->u.io.io, sizeof(x->u.io.io)) &&
                                          !memcmp(x->u.io.data, y->u.io.data,
                                                  (size_t)x->u.io.io.size * x->u.io.io.count),
                                  "%s: exit #%llu: port I/O differs", what,
                                  (unsigned long long)x->seq);
                return;
        }
        case HVT_REC_CONSOLE:
                cr_assert(a->console.seq == b->console.seq && a->console.len == b->console.len &&
                                  !memcmp(a->console.data, b->console.data, a->console.len),
                          "%s: console record %llu differs", what, (unsigned long long)a->index);
                return;
        case HVT_REC_WRITE:
                cr_assert(a->write.seq == b->write.seq && a->write.gpa == b->write.gpa &&
                                  a->write.len == b->write.len &&
                                  !memcmp(a->write.data, b->write.data, a->write.len),
                          "%s: write record %llu differs", what, (unsigned long long)a->index);
                return;
        case HVT_REC_RAISE:
                cr_assert(!memcmp(&a->raise, &b->raise, sizeof(a->raise)), "%s: raise differs",
                          what);
                return;
        case HVT_REC_INJECT:
                cr_assert(!memcmp(&a->inject, &b->inject, sizeof(a->inject)), "%s: inject differs",
                          what);
                return;
        case HVT_REC_DELIVER:
                cr_assert(!memcmp(&a->deliver, &b->deliver, sizeof(a->deliver)),
                          "%s: deliver differs", what);
                return;
        default:
                cr_assert_fail("%s: record %llu of type %u in a killed recording", what,
                               (unsigned long long)a->index, a->type);
        }
}

/*
 * Read the killed trace against the reference.  Returns the records it
 * gave (the header included); *err is how reading ended.
 */
static uint64_t read_against(const char *what, const char *trace, const char *reference, int *err)
{
        struct hvt_reader *r, *ref;
        struct hvt_event a, b;
        uint64_t n;

        *err = hvt_reader_open(&r, trace);
        if (*err) {
                /* Killed before the header's frame was complete: nothing kept. */
                cr_assert_eq(*err, HVT_ERR_TRUNCATED, "%s: %s", what, hvt_reader_message(r));
                hvt_reader_close(r);
                return 0;
        }
        cr_assert_eq(hvt_reader_open(&ref, reference), HVT_OK);
        while ((*err = hvt_reader_next(r, &a)) == HVT_OK) {
                cr_assert_eq(hvt_reader_next(ref, &b), HVT_OK,
                             "%s: the killed run kept more than the complete run has", what);
                assert_same_event(&a, &b, what);
        }
        cr_assert_eq(*err, HVT_ERR_TRUNCATED, "%s: reading stopped with %s: %s", what,
                     hvt_strerror(*err), hvt_reader_message(r));
        n = hvt_reader_records(r);
        hvt_reader_close(r);
        hvt_reader_close(ref);
        return n;
}

/* The zstd frames of a file, decoded independently of libhvtrace. */
struct frames {
        size_t complete;        /* complete frames from the start */
        uint64_t records;       /* records wholly inside them */
        uint64_t max_per_frame; /* most records starting in one frame */
};

static void read_frames(const char *path, struct frames *f)
{
        ZSTD_DCtx *d = ZSTD_createDCtx();
        uint8_t *file, *raw = NULL;
        size_t len, pos = 0, raw_len = 0, raw_cap = 0, rec = sizeof(struct hvt_disk_preamble);
        struct stat s;
        int fd = open(path, O_RDONLY);

        memset(f, 0, sizeof(*f));
        cr_assert(fd >= 0 && !fstat(fd, &s) && d, "%s: %s", path, strerror(errno));
        len = (size_t)s.st_size;
        file = malloc(len ? len : 1);
        cr_assert(file && read(fd, file, len) == (ssize_t)len);
        close(fd);
        while (pos < len) {
                size_t fsz = ZSTD_findFrameCompressedSize(file + pos, len - pos), ret;
                ZSTD_inBuffer in = { file + pos, fsz, 0 };
                uint64_t starts = 0;

                if (ZSTD_isError(fsz))
                        break; /* the frame the kill cut */
                do {
                        ZSTD_outBuffer out;

                        if (raw_cap - raw_len < (1u << 16)) {
                                raw_cap = raw_cap ? 2 * raw_cap : 1u << 20;
                                raw = realloc(raw, raw_cap);
                                cr_assert_not_null(raw);
                        }
                        out = (ZSTD_outBuffer){ raw + raw_len, raw_cap - raw_len, 0 };
                        ret = ZSTD_decompressStream(d, &out, &in);
                        cr_assert(!ZSTD_isError(ret), "%s: complete frame %zu does not decode: %s",
                                  path, f->complete, ZSTD_getErrorName(ret));
                        raw_len += out.pos;
                } while (ret != 0);
                /* Count the records that start in this frame and are whole so far. */
                while (rec + sizeof(struct hvt_disk_rec) <= raw_len) {
                        struct hvt_disk_rec h;

                        memcpy(&h, raw + rec, sizeof(h));
                        if (rec + sizeof(h) + h.size > raw_len)
                                break;
                        rec += sizeof(h) + h.size;
                        starts++;
                        f->records++;
                }
                if (starts > f->max_per_frame)
                        f->max_per_frame = starts;
                f->complete++;
                pos += fsz;
        }
        ZSTD_freeDCtx(d);
        free(file);
        free(raw);
}

static void kill_test(const struct speed *s)
{
        struct kill k[KILLS] = { 0 };
        struct reference ref = { 0 };
        const char *argv[24];
        char guest[1024];
        uint64_t rng = KILL_SEED ^ (uint64_t)s->delay, need_records = 0, max_exits;
        size_t need_lines = 0;

        write_guest(s, guest, sizeof(guest));
        if (getenv("HV_KILL_SEED"))
                rng = strtoull(getenv("HV_KILL_SEED"), NULL, 0) ^ (uint64_t)s->delay;
        if (!rng)
                rng = 1;
        for (int i = 0; i < KILLS; i++) {
                char name[64];
                uint64_t n;

                snprintf(name, sizeof(name), "kill-%s-%d.zst", s->name, i);
                snprintf(k[i].trace, sizeof(k[i].trace), "%s", hv_tmp(name));
                unlink(k[i].trace);
                k[i].delay_ms =
                        s->min_ms + (unsigned)(next_rand(&rng) % (s->max_ms - s->min_ms + 1));
                rec_args(argv, s, guest, k[i].trace, NULL);
                record_and_kill(argv, &k[i]);
                if (k[i].nlines > need_lines)
                        need_lines = k[i].nlines;
                n = trace_records(k[i].trace);
                if (n > need_records)
                        need_records = n;
        }
        /* The same run to its end, long enough to cover every killed one. */
        max_exits = need_records + (s->line_exits + 1u) * (need_lines + 1) + 100;
        for (int tries = 0;; tries++) {
                record_reference(s, guest, max_exits, &ref);
                if (ref.records > need_records && ref.nlines >= need_lines)
                        break;
                cr_assert_lt(tries, 8, "the reference run never got as far as the killed ones");
                max_exits *= 2;
        }

        for (int i = 0; i < KILLS; i++) {
                char what[64];
                struct frames f;
                uint64_t n, seen = 0, kept_lines = 0;
                double oldest_lost_ms = 0;
                char lost[128];
                int err;

                snprintf(what, sizeof(what), "kill %d (%s, %u ms)", i, s->name, k[i].delay_ms);
                n = read_against(what, k[i].trace, ref.trace, &err);
                read_frames(k[i].trace, &f);
                cr_assert_leq(f.max_per_frame, FRAME_RECORDS, "%s: a frame holds %llu records",
                              what, (unsigned long long)f.max_per_frame);
                cr_assert_geq(n, f.records,
                              "%s: the reader gave %llu records, the complete frames hold %llu",
                              what, (unsigned long long)n, (unsigned long long)f.records);

                /* Records known written by the kill: those up to the last line read. */
                if (k[i].nlines)
                        seen = ref.line_rec[k[i].nlines - 1] + 1;
                cr_assert_leq(seen, n + FRAME_RECORDS,
                              "%s: %llu records were written before the kill, %llu kept: more "
                              "than %d lost",
                              what, (unsigned long long)seen, (unsigned long long)n, FRAME_RECORDS);
                /* Every line read long enough before the kill has its record kept. */
                for (size_t j = 0; j < k[i].nlines; j++) {
                        uint64_t age = k[i].kill_ns - k[i].line_ns[j];

                        if (ref.line_rec[j] < n) {
                                kept_lines = j + 1;
                        } else {
                                if (oldest_lost_ms == 0)
                                        oldest_lost_ms = (double)age / 1e6;
                                cr_assert_lt(age, (uint64_t)(FRAME_MS + SLACK_MS) * 1000000ull,
                                             "%s: the record of line %zu, written %.0f ms before "
                                             "the kill, was lost",
                                             what, j + 1, (double)age / 1e6);
                        }
                }
                if (kept_lines == k[i].nlines)
                        snprintf(lost, sizeof(lost), "no line lost");
                else
                        snprintf(lost, sizeof(lost),
                                 "lines %llu to %zu lost, the first read %.0f ms before the kill",
                                 (unsigned long long)kept_lines + 1, k[i].nlines, oldest_lost_ms);
                cr_log_info("%s: %llu records kept in %zu complete frames (at most %llu per "
                            "frame); at least %lld records lost; %s",
                            what, (unsigned long long)n, f.complete,
                            (unsigned long long)f.max_per_frame,
                            seen > n ? (long long)(seen - n) : 0ll, lost);
                free(k[i].line_ns);
        }
        free(ref.line_rec);
}

Test(kill, fast_guest_loses_at_most_a_frame_of_records, .timeout = 600)
{
        kill_test(&fast);
}

Test(kill, slow_guest_loses_at_most_250_ms, .timeout = 600)
{
        kill_test(&slow);
}
