// SPDX-License-Identifier: MIT
/*
 * Helpers shared by the fuzz targets (fuzz.h).  The checks in
 * fz_read_trace are the reader's documented contract, each one a sentence
 * of docs/trace-format.md section 11 or of trace.h; none is a guess about
 * what a particular input should give.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <zstd.h>

#include "fuzz.h"

#define ZSTD_MAGIC_LE 0xFD2FB528u

/* The real stderr, kept when fz_silence redirects the stream the code under test uses. */
static FILE *fz_err;

void fz_fail(const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        fprintf(fz_err ? fz_err : stderr, "fuzz: contract violated: ");
        vfprintf(fz_err ? fz_err : stderr, fmt, ap);
        fprintf(fz_err ? fz_err : stderr, "\n");
        va_end(ap);
        abort();
}

void fz_silence(void)
{
        int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);

        if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0)
                fz_fail("cannot send stdout to /dev/null");
        close(fd);
        if (getenv("HVFUZZ_VERBOSE"))
                return;
        fz_err = stderr;
        /* glibc's stderr is an assignable variable; libFuzzer kept its own copy. */
        stderr = fopen("/dev/null", "w");
        if (!stderr)
                fz_fail("cannot open /dev/null");
}

void fz_file_init(struct fz_file *f, const char *name)
{
        f->fd = memfd_create(name, MFD_CLOEXEC);
        if (f->fd < 0)
                fz_fail("memfd_create: %s", strerror(errno));
        snprintf(f->path, sizeof(f->path), "/proc/self/fd/%d", f->fd);
}

void fz_file_set(struct fz_file *f, const void *data, size_t len)
{
        const uint8_t *p = data;
        size_t off = 0;

        if (ftruncate(f->fd, 0))
                fz_fail("ftruncate: %s", strerror(errno));
        while (off < len) {
                ssize_t n = pwrite(f->fd, p + off, len - off, (off_t)off);

                if (n <= 0)
                        fz_fail("pwrite: %s", strerror(errno));
                off += (size_t)n;
        }
}

/* A growing buffer that lives as long as the process: one per use. */
struct fz_buf {
        uint8_t *p;
        size_t len, cap;
};

static void buf_reserve(struct fz_buf *b, size_t extra)
{
        if (b->len + extra <= b->cap)
                return;
        size_t cap = b->cap ? b->cap : 4096;

        while (cap < b->len + extra)
                cap *= 2;
        b->p = realloc(b->p, cap);
        if (!b->p)
                fz_fail("out of memory in the harness");
        b->cap = cap;
}

size_t fz_compress(const uint8_t *raw, size_t len, size_t frame_raw, const uint8_t **out)
{
        static struct fz_buf b;
        static ZSTD_CCtx *cctx;
        size_t off = 0;

        if (!cctx) {
                cctx = ZSTD_createCCtx();
                if (!cctx)
                        fz_fail("ZSTD_createCCtx");
                /* Level 1: the fuzzer wants executions, not ratio. */
                ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, 1);
                ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
        }
        b.len = 0;
        do {
                size_t n = frame_raw && len - off > frame_raw ? frame_raw : len - off;
                size_t bound = ZSTD_compressBound(n), got;

                buf_reserve(&b, bound);
                got = ZSTD_compress2(cctx, b.p + b.len, bound, raw + off, n);
                if (ZSTD_isError(got))
                        fz_fail("ZSTD_compress2: %s", ZSTD_getErrorName(got));
                b.len += got;
                off += n;
        } while (off < len);
        *out = b.p;
        return b.len;
}

long fz_decompress(const uint8_t *in, size_t len, size_t max, const uint8_t **out)
{
        static struct fz_buf b;
        static ZSTD_DCtx *dctx;
        ZSTD_inBuffer ib = { in, len, 0 };
        size_t ret;

        if (!dctx) {
                dctx = ZSTD_createDCtx();
                if (!dctx)
                        fz_fail("ZSTD_createDCtx");
        }
        ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only);
        b.len = 0;
        for (;;) {
                ZSTD_outBuffer ob;

                if (b.len >= max)
                        return -1;
                buf_reserve(&b, 65536);
                ob.dst = b.p + b.len;
                ob.size = b.cap - b.len < max - b.len ? b.cap - b.len : max - b.len;
                ob.pos = 0;
                ret = ZSTD_decompressStream(dctx, &ob, &ib);
                if (ZSTD_isError(ret))
                        return -1;
                b.len += ob.pos;
                /* All input in and room left over: zstd holds nothing more back. */
                if (ib.pos == ib.size && ob.pos < ob.size)
                        break;
        }
        if (ret != 0)
                return -1; /* the input stops inside a frame */
        *out = b.p;
        return (long)b.len;
}

/* ---- the reader's contract -------------------------------------------------------- */

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
        const uint8_t *b = p;

        for (size_t i = 0; i < n; i++)
                h = (h ^ b[i]) * 0x100000001b3ull;
        return h;
}

static uint64_t fnv_u64(uint64_t h, uint64_t v)
{
        return fnv(h, &v, sizeof(v));
}

static uint64_t fnv_str(uint64_t h, const char *s)
{
        if (!s)
                fz_fail("a string of an event is NULL");
        return fnv(fnv_u64(h, strlen(s)), s, strlen(s));
}

/* The digest of one event: every field, and every byte its pointers reach. */
static uint64_t event_digest(uint64_t h, const struct hvt_event *ev)
{
        const struct hvt_exit *x = &ev->exit;

        h = fnv_u64(fnv_u64(h, ev->type), ev->index);
        switch (ev->type) {
        case HVT_REC_HEADER:
                h = fnv(h, &ev->header.h, sizeof(ev->header.h));
                for (unsigned k = 0; k < HVT_STR_COUNT; k++)
                        h = fnv_str(h, ev->header.str[k]);
                if (ev->header.argc < 0 || (ev->header.argc && !ev->header.argv))
                        fz_fail("header argc %d with argv %p", ev->header.argc,
                                (const void *)ev->header.argv);
                for (int i = 0; i < ev->header.argc; i++)
                        h = fnv_str(h, ev->header.argv[i]);
                return h;
        case HVT_REC_MEMORY:
                h = fnv_u64(fnv_u64(h, ev->memory.gpa), ev->memory.len);
                return fnv(h, ev->memory.data, ev->memory.len);
        case HVT_REC_EXIT:
                h = fnv_u64(fnv_u64(fnv_u64(h, x->seq), x->time_ns), x->guest_ns);
                h = fnv_u64(fnv_u64(fnv_u64(h, x->reason), x->raw_reason), x->changed);
                h = fnv(h, &x->st, sizeof(x->st));
                if (x->insn_len > 15)
                        fz_fail("record %llu: insn_len %u > 15", (unsigned long long)ev->index,
                                x->insn_len);
                h = fnv(fnv_u64(h, x->insn_len), x->insn, x->insn_len);
                switch (x->reason) {
                case HVT_EXIT_IO:
                        h = fnv(h, &x->u.io.io, sizeof(x->u.io.io));
                        return fnv(h, x->u.io.data, (size_t)x->u.io.io.size * x->u.io.io.count);
                case HVT_EXIT_MMIO: return fnv(h, &x->u.mmio, sizeof(x->u.mmio));
                case HVT_EXIT_FAIL_ENTRY: return fnv(h, &x->u.fail_entry, sizeof(x->u.fail_entry));
                case HVT_EXIT_INTERNAL:
                        if (x->u.internal.internal.ndata > HVT_INTERNAL_MAX_DATA)
                                fz_fail("record %llu: ndata %u > %u", (unsigned long long)ev->index,
                                        x->u.internal.internal.ndata, HVT_INTERNAL_MAX_DATA);
                        h = fnv(h, &x->u.internal.internal, sizeof(x->u.internal.internal));
                        return fnv(h, x->u.internal.data, 8 * x->u.internal.internal.ndata);
                case HVT_EXIT_DEBUG: return fnv(h, &x->u.debug, sizeof(x->u.debug));
                case HVT_EXIT_EXCEPTION: return fnv(h, &x->u.exception, sizeof(x->u.exception));
                default: return h;
                }
        case HVT_REC_INJECT: return fnv(h, &ev->inject, sizeof(ev->inject));
        case HVT_REC_RAISE: return fnv(h, &ev->raise, sizeof(ev->raise));
        case HVT_REC_DELIVER: return fnv(h, &ev->deliver, sizeof(ev->deliver));
        case HVT_REC_CONSOLE:
                h = fnv_u64(fnv_u64(h, ev->console.seq), ev->console.len);
                return fnv(h, ev->console.data, ev->console.len);
        case HVT_REC_WRITE:
                h = fnv_u64(fnv_u64(fnv_u64(h, ev->write.seq), ev->write.gpa), ev->write.len);
                return fnv(h, ev->write.data, ev->write.len);
        case HVT_REC_END:
                h = fnv(h, &ev->end.e, sizeof(ev->end.e));
                return fnv_str(h, ev->end.message);
        default:
                fz_fail("record %llu: event of type %u returned (unknown types are skipped)",
                        (unsigned long long)ev->index, ev->type);
        }
}

/* What a trace's bytes can make the reader report (a system error they cannot). */
static bool is_format_error(int err)
{
        return err == HVT_ERR_EMPTY || err == HVT_ERR_NOT_TRACE || err == HVT_ERR_VERSION ||
               err == HVT_ERR_CORRUPT || err == HVT_ERR_TRUNCATED;
}

static void check_message(const struct hvt_reader *r, int err)
{
        const char *m = hvt_reader_message(r);

        if (!m || !*m || strchr(m, '\n'))
                fz_fail("error %d (%s) without a one-line message", err, hvt_strerror(err));
}

/* fz_read_trace by path, or (path NULL) from the input in memory. */
static void read_trace(const char *path, const uint8_t *input, size_t len, struct fz_summary *s)
{
        struct hvt_reader *r = NULL;
        struct hvt_event ev;
        uint64_t last_index = 0;
        uint32_t magic = 0;
        int err;

        memset(s, 0, sizeof(*s));
        s->digest = 0xcbf29ce484222325ull;
        err = path ? hvt_reader_open(&r, path) : hvt_reader_open_memory(&r, input, len);
        s->open_err = s->end_err = err;
        if (len >= 4)
                memcpy(&magic, input, 4);
        /* Section 11.1, step 1: no bytes, then fewer than 4 or no zstd magic. */
        if (len == 0 && err != HVT_ERR_EMPTY)
                fz_fail("empty file: open gave %d, not HVT_ERR_EMPTY", err);
        if (len > 0 && (len < 4 || magic != ZSTD_MAGIC_LE) && err != HVT_ERR_NOT_TRACE)
                fz_fail("%zu bytes without the zstd magic: open gave %d, not NOT_TRACE", len, err);
        if (err) {
                if (!is_format_error(err) && err != -ENOMEM)
                        fz_fail("open returned %d (%s)", err, hvt_strerror(err));
                if (!r && err != -ENOMEM)
                        fz_fail("open failed (%d) without a reader to explain it", err);
                if (r)
                        check_message(r, err);
                hvt_reader_close(r);
                return;
        }
        for (;;) {
                err = hvt_reader_next(r, &ev);
                if (err != HVT_OK)
                        break;
                if (s->events == 0 && (ev.type != HVT_REC_HEADER || ev.index != 0))
                        fz_fail("first event: type %u index %llu, not the header at 0", ev.type,
                                (unsigned long long)ev.index);
                if (s->events > 0 && ev.type == HVT_REC_HEADER)
                        fz_fail("a second header returned at record %llu",
                                (unsigned long long)ev.index);
                if (s->events > 0 && ev.index <= last_index)
                        fz_fail("record index %llu after %llu", (unsigned long long)ev.index,
                                (unsigned long long)last_index);
                if (hvt_reader_records(r) != ev.index + 1)
                        fz_fail("records() %llu after returning record %llu",
                                (unsigned long long)hvt_reader_records(r),
                                (unsigned long long)ev.index);
                last_index = ev.index;
                s->digest = event_digest(s->digest, &ev);
                s->events++;
        }
        s->end_err = err;
        s->complete = hvt_reader_complete(r);
        if (err == HVT_END_OF_TRACE) {
                if (!s->complete)
                        fz_fail("clean end of trace without an END record");
        } else if (err != HVT_ERR_CORRUPT && err != HVT_ERR_TRUNCATED && err != -ENOMEM) {
                fz_fail("hvt_reader_next ended with %d (%s) after the header", err,
                        hvt_strerror(err));
        } else {
                check_message(r, err);
        }
        /* Section 11.1: errors are sticky. */
        if (hvt_reader_next(r, &ev) != err)
                fz_fail("result %d not repeated by the next call", err);
        hvt_reader_close(r);
}

void fz_read_trace(const char *path, const uint8_t *input, size_t len, struct fz_summary *s)
{
        struct fz_summary m;

        read_trace(path, input, len, s);
        /* The same bytes in memory read exactly as the file does. */
        read_trace(NULL, input, len, &m);
        if (m.open_err != s->open_err || m.end_err != s->end_err || m.events != s->events ||
            m.digest != s->digest || m.complete != s->complete)
                fz_fail("read from memory: open %d, end %d, %llu events; from the file: open %d, "
                        "end %d, %llu events%s",
                        m.open_err, m.end_err, (unsigned long long)m.events, s->open_err,
                        s->end_err, (unsigned long long)s->events,
                        m.digest != s->digest ? ", event contents differ" : "");
}
