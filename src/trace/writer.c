// SPDX-License-Identifier: MIT
/*
 * Trace writer: records are encoded into a raw buffer, compressed with a
 * streaming zstd context, and a frame is ended every frame_records records
 * or frame_ms milliseconds so a recorder killed at any moment leaves a file
 * whose complete frames all decode.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zstd.h>

#include "state.h"

#define DEFAULT_LEVEL         3
#define DEFAULT_FRAME_RECORDS 4096
#define DEFAULT_FRAME_MS      250
/* Raw bytes gathered before handing them to zstd: large enough to amortise calls. */
#define RAW_CHUNK (128u << 10)
#define PAGE_SIZE 4096u
/* Largest memory record: big enough to be cheap, small enough to stream. */
#define MEMORY_CHUNK (1u << 20)

/* A vCPU's delta-encoding state: its previous exit. */
struct writer_vcpu {
        struct hvt_vcpu_state prev;
        uint64_t prev_seq, prev_time;
        bool have_exit;
};

struct hvt_writer {
        int fd;
        ZSTD_CCtx *cctx;
        struct hvt_writer_opts opts;

        uint8_t *raw; /* records not yet given to zstd */
        size_t raw_len, raw_cap;
        uint8_t *out; /* compressed bytes not yet written */
        size_t out_cap;

        uint64_t records, frame_records, bytes;
        uint64_t frame_start_ns; /* when the open frame got its first record */
        bool frame_open;
        int error; /* sticky -errno: a failed write poisons the writer */

        /* Delta-encoding state, one per vCPU (one in a single-vCPU trace). */
        struct writer_vcpu *vc;
        uint32_t nvcpus, cur; /* cur: the selected vCPU */

        pthread_mutex_t lock;
        pthread_cond_t wake;
        pthread_t flusher;
        bool flusher_running, stopping;
};

static uint64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int write_all(int fd, const void *buf, size_t len)
{
        const uint8_t *p = buf;

        while (len) {
                ssize_t n = write(fd, p, len);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

/* Feed the raw buffer to zstd; with end, finish the frame.  Lock held. */
static int compress_raw(struct hvt_writer *w, ZSTD_EndDirective mode)
{
        ZSTD_inBuffer in = { w->raw, w->raw_len, 0 };
        size_t left;

        do {
                ZSTD_outBuffer out = { w->out, w->out_cap, 0 };
                int err;

                left = ZSTD_compressStream2(w->cctx, &out, &in, mode);
                if (ZSTD_isError(left))
                        return -EIO;
                if (out.pos) {
                        err = write_all(w->fd, w->out, out.pos);
                        if (err)
                                return err;
                        w->bytes += out.pos;
                }
        } while (mode == ZSTD_e_end ? left != 0 : in.pos < in.size);
        w->raw_len = 0;
        return 0;
}

static int end_frame_locked(struct hvt_writer *w)
{
        int err;

        if (w->error)
                return w->error;
        if (!w->frame_open && !w->raw_len)
                return 0;
        err = compress_raw(w, ZSTD_e_end);
        if (err) {
                w->error = err;
                return err;
        }
        w->frame_open = false;
        w->frame_records = 0;
        return 0;
}

/* Reserve n raw bytes for a record.  Lock held. */
static uint8_t *reserve(struct hvt_writer *w, size_t n)
{
        if (w->raw_len + n > w->raw_cap) {
                int err = w->raw_len ? compress_raw(w, ZSTD_e_continue) : 0;

                if (err) {
                        w->error = err; /* the real cause: -ENOSPC, -EPIPE, ... */
                        return NULL;
                }
                if (n > w->raw_cap) {
                        uint8_t *p = realloc(w->raw, n);

                        if (!p) {
                                w->error = -ENOMEM;
                                return NULL;
                        }
                        w->raw = p;
                        w->raw_cap = n;
                }
        }
        return w->raw + w->raw_len;
}

/* Account for a record of n bytes just placed at reserve()'s pointer. */
static int commit(struct hvt_writer *w, size_t n)
{
        w->raw_len += n;
        w->records++;
        if (!w->frame_open) {
                w->frame_open = true;
                w->frame_start_ns = w->opts.background_flush ? now_ns() : 0;
        }
        if (++w->frame_records >= w->opts.frame_records)
                return end_frame_locked(w);
        /* Without the flush thread, time is checked here (cheaply, every 64 records). */
        if (!w->opts.background_flush && (w->frame_records & 63) == 1) {
                uint64_t t = now_ns();

                if (!w->frame_start_ns)
                        w->frame_start_ns = t;
                else if (t - w->frame_start_ns >= (uint64_t)w->opts.frame_ms * 1000000ull)
                        return end_frame_locked(w);
        }
        return 0;
}

static uint8_t *put(uint8_t *p, const void *src, size_t n)
{
        memcpy(p, src, n);
        return p + n;
}

static int write_record_locked(struct hvt_writer *w, uint16_t type, uint16_t flags, const void *a,
                               size_t alen, const void *b, size_t blen)
{
        struct hvt_disk_rec rec = { type, flags, (uint32_t)(alen + blen) };
        uint8_t *p;

        if (w->error)
                return w->error;
        if (alen + blen > HVT_MAX_RECORD)
                return -EMSGSIZE;
        p = reserve(w, sizeof(rec) + alen + blen);
        if (!p)
                return w->error;
        p = put(p, &rec, sizeof(rec));
        if (alen)
                p = put(p, a, alen);
        if (blen)
                put(p, b, blen);
        return commit(w, sizeof(rec) + alen + blen);
}

static int write_record(struct hvt_writer *w, uint16_t type, uint16_t flags, const void *a,
                        size_t alen, const void *b, size_t blen)
{
        int err;

        pthread_mutex_lock(&w->lock);
        err = write_record_locked(w, type, flags, a, alen, b, blen);
        pthread_mutex_unlock(&w->lock);
        return err;
}

/* The size of the first struct hvt_writer_opts: the smallest a caller may pass. */
#define OPTS_V1_SIZE (offsetof(struct hvt_writer_opts, background_flush) + sizeof(int))

/* Take the caller's options (see struct hvt_writer_opts) and fill in the defaults. */
static int set_opts(struct hvt_writer_opts *o, const struct hvt_writer_opts *user)
{
        ZSTD_bounds levels = ZSTD_cParam_getBounds(ZSTD_c_compressionLevel);

        memset(o, 0, sizeof(*o));
        if (user) {
                if (user->size < OPTS_V1_SIZE)
                        return -EINVAL;
                /* Fields from a later version are fine only if left at their default. */
                for (size_t i = sizeof(*o); i < user->size; i++)
                        if (((const uint8_t *)user)[i])
                                return -E2BIG;
                memcpy(o, user, user->size < sizeof(*o) ? user->size : sizeof(*o));
        }
        o->size = sizeof(*o);
        if (!o->level)
                o->level = DEFAULT_LEVEL;
        if (ZSTD_isError(levels.error) || o->level < levels.lowerBound ||
            o->level > levels.upperBound)
                return -EINVAL;
        if (!o->frame_records)
                o->frame_records = DEFAULT_FRAME_RECORDS;
        if (!o->frame_ms)
                o->frame_ms = DEFAULT_FRAME_MS;
        /* The header holds the count in 16 bits. */
        if (o->vcpus > UINT16_MAX)
                return -EINVAL;
        return 0;
}

static void *flusher_main(void *arg)
{
        struct hvt_writer *w = arg;
        uint64_t period_ns = (uint64_t)w->opts.frame_ms * 1000000ull;

        pthread_mutex_lock(&w->lock);
        while (!w->stopping) {
                struct timespec until;
                uint64_t t = now_ns(), wake_at;

                /* After a write error the writer is dead: just wait to be stopped. */
                if (!w->error && w->frame_open && t - w->frame_start_ns >= period_ns) {
                        end_frame_locked(w);
                        continue;
                }
                wake_at = (w->frame_open && !w->error ? w->frame_start_ns : t) + period_ns;
                until.tv_sec = (time_t)(wake_at / 1000000000ull);
                until.tv_nsec = (long)(wake_at % 1000000000ull);
                pthread_cond_timedwait(&w->wake, &w->lock, &until);
        }
        pthread_mutex_unlock(&w->lock);
        return NULL;
}

int hvt_writer_fdopen(struct hvt_writer **wp, int fd, const struct hvt_writer_opts *opts)
{
        struct hvt_disk_preamble pre = { .version = HVT_FORMAT_VERSION_1VCPU,
                                         .minor = HVT_FORMAT_MINOR };
        pthread_condattr_t ca;
        struct hvt_writer *w;
        int err;

        w = calloc(1, sizeof(*w));
        if (!w) {
                err = -ENOMEM;
                goto err_close;
        }
        w->fd = fd;
        err = set_opts(&w->opts, opts);
        if (err)
                goto err_free;

        w->nvcpus = w->opts.vcpus > 1 ? w->opts.vcpus : 1;
        if (w->nvcpus > 1)
                pre.version = HVT_FORMAT_VERSION;
        w->vc = calloc(w->nvcpus, sizeof(*w->vc));
        w->cctx = ZSTD_createCCtx();
        w->raw_cap = RAW_CHUNK;
        w->raw = malloc(w->raw_cap);
        w->out_cap = ZSTD_CStreamOutSize();
        w->out = malloc(w->out_cap);
        if (!w->vc || !w->cctx || !w->raw || !w->out) {
                err = -ENOMEM;
                goto err_free;
        }
        /* Checksums let the reader tell corruption from a valid record stream. */
        ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, w->opts.level);
        ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_checksumFlag, 1);

        pthread_mutex_init(&w->lock, NULL);
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&w->wake, &ca);
        pthread_condattr_destroy(&ca);

        memcpy(pre.magic, HVT_MAGIC, HVT_MAGIC_LEN);
        memcpy(w->raw, &pre, sizeof(pre));
        w->raw_len = sizeof(pre);
        /* The preamble alone is a frame: even a trace killed at once starts valid. */
        w->frame_open = true;
        err = end_frame_locked(w);
        if (err)
                goto err_sync;

        if (w->opts.background_flush) {
                err = -pthread_create(&w->flusher, NULL, flusher_main, w);
                if (err)
                        goto err_sync;
                w->flusher_running = true;
        }
        *wp = w;
        return 0;

err_sync:
        pthread_cond_destroy(&w->wake);
        pthread_mutex_destroy(&w->lock);
err_free:
        free(w->vc);
        ZSTD_freeCCtx(w->cctx);
        free(w->raw);
        free(w->out);
        free(w);
err_close:
        close(fd);
        return err;
}

int hvt_writer_open(struct hvt_writer **wp, const char *path, const struct hvt_writer_opts *opts)
{
        struct hvt_writer_opts checked;
        int fd, err;

        /* Bad options must not cost the caller the file's old content. */
        err = set_opts(&checked, opts);
        if (err)
                return err;
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        return hvt_writer_fdopen(wp, fd, opts);
}

int hvt_write_header(struct hvt_writer *w, const struct hvt_header *h)
{
        struct hvt_disk_header fixed = h->h;
        size_t len = sizeof(h->h), off;
        uint8_t *buf;
        int err;

        /* The count is the writer's: a copied header must not claim another. */
        fixed.vcpus = w->nvcpus > 1 ? (uint16_t)w->nvcpus : 0;
        for (unsigned k = 1; k < HVT_STR_COUNT; k++)
                if (k != HVT_STR_CMDLINE && h->str[k])
                        len += sizeof(struct hvt_disk_str) + strnlen(h->str[k], UINT16_MAX);
        len += sizeof(struct hvt_disk_str);
        for (int i = 0; i < h->argc; i++)
                len += strlen(h->argv[i]) + 1;

        buf = malloc(len);
        if (!buf)
                return -ENOMEM;
        memcpy(buf, &fixed, sizeof(fixed));
        off = sizeof(fixed);
        for (unsigned k = 1; k < HVT_STR_COUNT; k++) {
                struct hvt_disk_str s = { (uint16_t)k, 0 };

                if (k == HVT_STR_CMDLINE) {
                        size_t n = 0;

                        for (int i = 0; i < h->argc; i++) {
                                size_t a = strlen(h->argv[i]) + 1;

                                if (n + a > UINT16_MAX)
                                        break; /* a command line over 64 KiB is cut */
                                memcpy(buf + off + sizeof(s) + n, h->argv[i], a);
                                n += a;
                        }
                        s.len = (uint16_t)n;
                } else if (h->str[k]) {
                        s.len = (uint16_t)strnlen(h->str[k], UINT16_MAX);
                        memcpy(buf + off + sizeof(s), h->str[k], s.len);
                } else {
                        continue;
                }
                memcpy(buf + off, &s, sizeof(s));
                off += sizeof(s) + s.len;
        }
        err = write_record(w, HVT_REC_HEADER, 0, buf, off, NULL, 0);
        free(buf);
        return err;
}

static bool page_is_zero(const uint8_t *p, size_t n)
{
        static const uint8_t zero[PAGE_SIZE];

        return !memcmp(p, zero, n);
}

int hvt_write_memory(struct hvt_writer *w, uint64_t gpa, const void *data, size_t len)
{
        const uint8_t *p = data;
        size_t i = 0;

        while (i < len) {
                size_t start, n;
                int err;

                n = len - i < PAGE_SIZE ? len - i : PAGE_SIZE;
                if (page_is_zero(p + i, n)) {
                        i += n;
                        continue;
                }
                start = i;
                while (i < len && i - start < MEMORY_CHUNK) {
                        n = len - i < PAGE_SIZE ? len - i : PAGE_SIZE;
                        if (page_is_zero(p + i, n))
                                break;
                        i += n;
                }
                struct hvt_disk_memory m = { .gpa = gpa + start };

                err = write_record(w, HVT_REC_MEMORY, 0, &m, sizeof(m), p + start, i - start);
                if (err)
                        return err;
        }
        return 0;
}

/* Length of the reason-specific tail of an exit record. */
static size_t exit_data_len(const struct hvt_exit *e)
{
        switch (e->reason) {
        case HVT_EXIT_IO:
                return sizeof(struct hvt_disk_io) + (size_t)e->u.io.io.size * e->u.io.io.count;
        case HVT_EXIT_MMIO: return sizeof(struct hvt_disk_mmio);
        case HVT_EXIT_FAIL_ENTRY: return sizeof(struct hvt_disk_fail_entry);
        case HVT_EXIT_INTERNAL:
                return sizeof(struct hvt_disk_internal) +
                       8 * (size_t)(e->u.internal.internal.ndata < HVT_INTERNAL_MAX_DATA
                                            ? e->u.internal.internal.ndata
                                            : HVT_INTERNAL_MAX_DATA);
        case HVT_EXIT_DEBUG: return sizeof(struct hvt_disk_debug);
        case HVT_EXIT_EXCEPTION: return sizeof(struct hvt_disk_exception);
        default: return 0;
        }
}

static uint8_t *put_exit_data(uint8_t *p, const struct hvt_exit *e)
{
        struct hvt_disk_internal in;

        switch (e->reason) {
        case HVT_EXIT_IO:
                p = put(p, &e->u.io.io, sizeof(e->u.io.io));
                if (e->u.io.io.size && e->u.io.io.count)
                        p = put(p, e->u.io.data, (size_t)e->u.io.io.size * e->u.io.io.count);
                return p;
        case HVT_EXIT_MMIO: return put(p, &e->u.mmio, sizeof(e->u.mmio));
        case HVT_EXIT_FAIL_ENTRY: return put(p, &e->u.fail_entry, sizeof(e->u.fail_entry));
        case HVT_EXIT_INTERNAL:
                in = e->u.internal.internal;
                if (in.ndata > HVT_INTERNAL_MAX_DATA)
                        in.ndata = HVT_INTERNAL_MAX_DATA;
                p = put(p, &in, sizeof(in));
                return put(p, e->u.internal.data, 8 * (size_t)in.ndata);
        case HVT_EXIT_DEBUG: return put(p, &e->u.debug, sizeof(e->u.debug));
        case HVT_EXIT_EXCEPTION: return put(p, &e->u.exception, sizeof(e->u.exception));
        default: return p;
        }
}

int hvt_writer_vcpu(struct hvt_writer *w, uint32_t vcpu)
{
        struct hvt_disk_vcpu v = { .vcpu = vcpu };
        int err = 0;

        if (vcpu >= w->nvcpus)
                return -EINVAL;
        pthread_mutex_lock(&w->lock);
        if (vcpu != w->cur) {
                err = write_record_locked(w, HVT_REC_VCPU, 0, &v, sizeof(v), NULL, 0);
                if (!err)
                        w->cur = vcpu;
        }
        pthread_mutex_unlock(&w->lock);
        return err;
}

int hvt_write_exit(struct hvt_writer *w, const struct hvt_exit *e)
{
        struct writer_vcpu *vc = &w->vc[w->cur];
        struct hvt_disk_exit x = { .reason = e->reason, .raw_reason = e->raw_reason };
        struct hvt_disk_rec rec = { .type = HVT_REC_EXIT };
        uint64_t dt = e->time_ns >= vc->prev_time ? e->time_ns - vc->prev_time : 0;
        size_t len = sizeof(x), dlen;
        uint8_t *p;
        int err;

        x.insn_len = e->insn_len > 15 ? 15 : e->insn_len;
        x.state_mask = hvt_state_changed(&vc->prev, &e->st);
        for (uint32_t m = x.state_mask; m; m &= m - 1)
                len += hvt_field_slots[__builtin_ctz(m)].size;
        x.dt_ns = (uint32_t)dt;
        x.guest_ns = (uint32_t)e->guest_ns;
        if ((dt | e->guest_ns) >> 32) {
                rec.flags |= HVT_XF_TIME64;
                len += 8;
        }
        if (!vc->have_exit || e->seq != vc->prev_seq + 1) {
                /* The first exit always names its number so streams can start anywhere. */
                rec.flags |= HVT_XF_SEQ;
                len += 8;
        }
        dlen = exit_data_len(e);
        len += x.insn_len + dlen;
        if (len > HVT_MAX_RECORD)
                return -EMSGSIZE;
        rec.size = (uint32_t)len;

        pthread_mutex_lock(&w->lock);
        err = w->error;
        if (err)
                goto out_unlock;
        p = reserve(w, sizeof(rec) + len);
        if (!p) {
                err = w->error;
                goto out_unlock;
        }
        p = put(p, &rec, sizeof(rec));
        p = put(p, &x, sizeof(x));
        if (rec.flags & HVT_XF_SEQ)
                p = put(p, &e->seq, 8);
        if (rec.flags & HVT_XF_TIME64) {
                uint32_t hi[2] = { (uint32_t)(dt >> 32), (uint32_t)(e->guest_ns >> 32) };

                p = put(p, hi, sizeof(hi));
        }
        /* The changed fields are all that prev lacks: copying only them spares a 320-byte copy. */
        for (uint32_t m = x.state_mask; m; m &= m - 1) {
                unsigned f = (unsigned)__builtin_ctz(m);
                size_t n = hvt_field_slots[f].size;

                memcpy(hvt_field_ptr(&vc->prev, f), hvt_field_cptr(&e->st, f), n);
                p = put(p, hvt_field_cptr(&e->st, f), n);
        }
        p = put(p, e->insn, x.insn_len);
        put_exit_data(p, e);

        vc->prev_seq = e->seq;
        vc->prev_time = e->time_ns > vc->prev_time ? e->time_ns : vc->prev_time;
        vc->have_exit = true;
        err = commit(w, sizeof(rec) + len);
out_unlock:
        pthread_mutex_unlock(&w->lock);
        return err;
}

int hvt_write_inject(struct hvt_writer *w, const struct hvt_disk_inject *in)
{
        return write_record(w, HVT_REC_INJECT, 0, in, sizeof(*in), NULL, 0);
}

int hvt_write_raise(struct hvt_writer *w, const struct hvt_disk_raise *r)
{
        return write_record(w, HVT_REC_RAISE, 0, r, sizeof(*r), NULL, 0);
}

int hvt_write_deliver(struct hvt_writer *w, const struct hvt_disk_deliver *d)
{
        return write_record(w, HVT_REC_DELIVER, 0, d, sizeof(*d), NULL, 0);
}

int hvt_write_console(struct hvt_writer *w, uint64_t seq, const void *data, size_t len)
{
        struct hvt_disk_console c = { seq };

        return write_record(w, HVT_REC_CONSOLE, 0, &c, sizeof(c), data, len);
}

int hvt_write_write(struct hvt_writer *w, uint64_t seq, uint64_t gpa, const void *data, size_t len)
{
        const size_t chunk = HVT_WRITE_CHUNK;
        const uint8_t *p = data;
        size_t off = 0;

        if (len && (!data || gpa + (len - 1) < gpa))
                return -EINVAL; /* no bytes to copy, or a range past 2^64 */
        /* do/while: len 0 still writes the one record the caller asked for. */
        do {
                struct hvt_disk_write wr = { .seq = seq, .gpa = gpa + off };
                size_t n = len - off < chunk ? len - off : chunk;
                int err = write_record(w, HVT_REC_WRITE, 0, &wr, sizeof(wr), n ? p + off : NULL, n);

                if (err)
                        return err;
                off += n;
        } while (off < len);
        return 0;
}

int hvt_write_end(struct hvt_writer *w, const struct hvt_disk_end *e, const char *message)
{
        return write_record(w, HVT_REC_END, 0, e, sizeof(*e), message,
                            message ? strlen(message) : 0);
}

int hvt_write_event(struct hvt_writer *w, const struct hvt_event *ev)
{
        struct hvt_header h;

        switch (ev->type) {
        case HVT_REC_HEADER:
                h = ev->header;
                for (unsigned k = 0; k < HVT_STR_COUNT; k++)
                        if (h.str[k] && !h.str[k][0])
                                h.str[k] = NULL; /* the reader's "" means absent */
                return hvt_write_header(w, &h);
        case HVT_REC_MEMORY:
                return hvt_write_memory(w, ev->memory.gpa, ev->memory.data, ev->memory.len);
        case HVT_REC_EXIT: return hvt_write_exit(w, &ev->exit);
        case HVT_REC_INJECT: return hvt_write_inject(w, &ev->inject);
        case HVT_REC_RAISE: return hvt_write_raise(w, &ev->raise);
        case HVT_REC_DELIVER: return hvt_write_deliver(w, &ev->deliver);
        case HVT_REC_CONSOLE:
                return hvt_write_console(w, ev->console.seq, ev->console.data, ev->console.len);
        case HVT_REC_WRITE:
                return hvt_write_write(w, ev->write.seq, ev->write.gpa, ev->write.data,
                                       ev->write.len);
        case HVT_REC_END: return hvt_write_end(w, &ev->end.e, ev->end.message);
        default: return -EINVAL;
        }
}

int hvt_write_raw(struct hvt_writer *w, uint16_t type, uint16_t flags, const void *payload,
                  size_t len)
{
        return write_record(w, type, flags, payload, len, NULL, 0);
}

int hvt_writer_flush(struct hvt_writer *w)
{
        int err;

        pthread_mutex_lock(&w->lock);
        err = end_frame_locked(w);
        pthread_mutex_unlock(&w->lock);
        return err;
}

uint64_t hvt_writer_bytes(const struct hvt_writer *w)
{
        return w->bytes;
}

uint64_t hvt_writer_records(const struct hvt_writer *w)
{
        return w->records;
}

int hvt_writer_close(struct hvt_writer *w)
{
        int err;

        if (!w)
                return 0;
        if (w->flusher_running) {
                pthread_mutex_lock(&w->lock);
                w->stopping = true;
                pthread_cond_signal(&w->wake);
                pthread_mutex_unlock(&w->lock);
                pthread_join(w->flusher, NULL);
        }
        err = hvt_writer_flush(w);
        if (close(w->fd) && !err)
                err = -errno;
        pthread_cond_destroy(&w->wake);
        pthread_mutex_destroy(&w->lock);
        ZSTD_freeCCtx(w->cctx);
        free(w->vc);
        free(w->raw);
        free(w->out);
        free(w);
        return err;
}
