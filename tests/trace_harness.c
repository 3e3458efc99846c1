// SPDX-License-Identifier: MIT
/* test_trace's harness: the trace builders, readers and checks that many of its tests share. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <zstd.h>

#include "trace_harness.h"

/* ------------------------------------------------------------------------ */
/* Small utilities                                                          */
/* ------------------------------------------------------------------------ */

/* splitmix64: a seeded, portable PRNG. */
uint64_t th_rnd(uint64_t *s)
{
        uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
}

void th_rnd_bytes(uint64_t *s, void *dst, size_t n)
{
        uint8_t *p = dst;

        for (size_t i = 0; i < n; i++)
                p[i] = (uint8_t)th_rnd(s);
}

static uint64_t fnv(const void *data, size_t n)
{
        const uint8_t *p = data;
        uint64_t h = 0xcbf29ce484222325ull;

        for (size_t i = 0; i < n; i++)
                h = (h ^ p[i]) * 0x100000001b3ull;
        return h;
}

uint8_t *th_read_file(const char *path, size_t *len)
{
        FILE *f = fopen(path, "rb");
        uint8_t *buf = NULL;
        size_t cap = 0, n = 0, got;

        cr_assert_not_null(f, "open %s: %s", path, strerror(errno));
        do {
                if (n == cap) {
                        cap = cap ? cap * 2 : 65536;
                        buf = realloc(buf, cap);
                        cr_assert_not_null(buf);
                }
                got = fread(buf + n, 1, cap - n, f);
                n += got;
        } while (got);
        fclose(f);
        *len = n;
        return buf;
}

void th_write_file(const char *path, const void *data, size_t len)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        const uint8_t *p = data;

        cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
        while (len) {
                ssize_t n = write(fd, p, len);

                cr_assert(n > 0, "write %s: %s", path, strerror(errno));
                p += n;
                len -= (size_t)n;
        }
        close(fd);
}

uint64_t th_file_size(const char *path)
{
        struct stat st;

        cr_assert_eq(stat(path, &st), 0, "stat %s", path);
        return (uint64_t)st.st_size;
}

void th_copy_file(const char *from, const char *to)
{
        size_t n;
        uint8_t *b = th_read_file(from, &n);

        th_write_file(to, b, n);
        free(b);
}

/* The reader's message must be one non-empty line naming the problem. */
void th_check_msg(const struct hvt_reader *r, const char *needle)
{
        const char *m = hvt_reader_message(r);

        cr_assert_not_null(m);
        cr_assert(m[0], "empty message");
        cr_assert_null(strchr(m, '\n'), "message is not a single line: '%s'", m);
        if (needle)
                cr_assert_not_null(strstr(m, needle), "message '%s' does not contain '%s'", m,
                                   needle);
}

/* "truncated after N records": the N. */
uint64_t th_msg_truncated_count(const struct hvt_reader *r)
{
        const char *m = strstr(hvt_reader_message(r), "truncated after ");
        unsigned long long n;

        cr_assert_not_null(m, "message '%s' lacks 'truncated after'", hvt_reader_message(r));
        cr_assert_eq(sscanf(m, "truncated after %llu", &n), 1, "message '%s'",
                     hvt_reader_message(r));
        return n;
}

/* ------------------------------------------------------------------------ */
/* zstd helpers and a raw-stream builder                                    */
/* ------------------------------------------------------------------------ */

void th_rb_put(struct th_rawbuf *b, const void *d, size_t n)
{
        if (b->len + n > b->cap) {
                b->cap = (b->len + n) * 2 + 64;
                b->p = realloc(b->p, b->cap);
                cr_assert_not_null(b->p);
        }
        if (n)
                memcpy(b->p + b->len, d, n);
        b->len += n;
}

void th_rb_preamble(struct th_rawbuf *b, uint16_t version, uint16_t minor)
{
        struct hvt_disk_preamble pre = { .version = version, .minor = minor };

        memcpy(pre.magic, "HVTRACE\x1a", 8);
        th_rb_put(b, &pre, sizeof(pre));
}

void th_rb_rec(struct th_rawbuf *b, uint16_t type, uint16_t flags, const void *payload, size_t len)
{
        struct hvt_disk_rec rec = { type, flags, (uint32_t)len };

        th_rb_put(b, &rec, sizeof(rec));
        th_rb_put(b, payload, len);
}

void th_rb_min_header(struct th_rawbuf *b)
{
        struct hvt_disk_header h = { .mem_size = 0x10000, .entry = 0x7c00, .guest_mode = 1 };

        th_rb_rec(b, HVT_REC_HEADER, 0, &h, sizeof(h));
}

/* A HLT exit with no state change and an explicit seq (flag SEQ). */
void th_rb_exit(struct th_rawbuf *b, uint64_t seq)
{
        struct hvt_disk_exit x = { .reason = HVT_EXIT_HLT };
        uint8_t p[sizeof(x) + 8];

        memcpy(p, &x, sizeof(x));
        memcpy(p + sizeof(x), &seq, 8);
        th_rb_rec(b, HVT_REC_EXIT, HVT_XF_SEQ, p, sizeof(p));
}

void th_rb_end(struct th_rawbuf *b)
{
        struct hvt_disk_end end = { .exits = 1, .why = HVT_END_HALT };

        th_rb_rec(b, HVT_REC_END, 0, &end, sizeof(end));
}

/* An exit with no state change and no SEQ flag: the previous exit's seq + 1. */
void th_rb_exit_next(struct th_rawbuf *b)
{
        struct hvt_disk_exit x = { .reason = HVT_EXIT_HLT };

        th_rb_rec(b, HVT_REC_EXIT, 0, &x, sizeof(x));
}

/* One zstd frame of `raw` (no checksum: like a foreign writer could do). */
void th_compress_to(const char *path, const void *raw, size_t len)
{
        size_t cap = ZSTD_compressBound(len), n;
        void *out = malloc(cap);

        cr_assert_not_null(out);
        n = ZSTD_compress(out, cap, raw, len, 1);
        cr_assert(!ZSTD_isError(n), "ZSTD_compress: %s", ZSTD_getErrorName(n));
        th_write_file(path, out, n);
        free(out);
}

/* Append a compressed frame of raw[off, off+len) to a buffer. */
void th_append_frame(struct th_rawbuf *file, const void *raw, size_t len)
{
        size_t cap = ZSTD_compressBound(len), n;
        void *out = malloc(cap);

        cr_assert_not_null(out);
        n = ZSTD_compress(out, cap, raw, len, 1);
        cr_assert(!ZSTD_isError(n), "ZSTD_compress: %s", ZSTD_getErrorName(n));
        th_rb_put(file, out, n);
        free(out);
}

/* Decompress a whole sequence of frames with the streaming API.  Returns 0 or -1. */
int th_decompress_all(const uint8_t *src, size_t len, uint8_t **out, size_t *out_len)
{
        ZSTD_DCtx *d = ZSTD_createDCtx();
        ZSTD_inBuffer in = { src, len, 0 };
        size_t cap = 1 << 20, n = 0, ret = 1;
        uint8_t *buf = malloc(cap);

        cr_assert(d && buf);
        while (in.pos < in.size) {
                ZSTD_outBuffer o;

                if (cap - n < ZSTD_DStreamOutSize()) {
                        cap *= 2;
                        buf = realloc(buf, cap);
                        cr_assert_not_null(buf);
                }
                o = (ZSTD_outBuffer){ buf + n, cap - n, 0 };
                ret = ZSTD_decompressStream(d, &o, &in);
                n += o.pos;
                if (ZSTD_isError(ret))
                        break;
        }
        ZSTD_freeDCtx(d);
        if (ZSTD_isError(ret) || ret != 0) {
                free(buf);
                return -1;
        }
        *out = buf;
        *out_len = n;
        return 0;
}

/* Offsets where each zstd frame of the file ends.  Returns the frame count. */
size_t th_frame_ends(const uint8_t *buf, size_t len, size_t *ends, size_t max)
{
        size_t off = 0, n = 0;

        while (off < len) {
                size_t fs = ZSTD_findFrameCompressedSize(buf + off, len - off);

                cr_assert(!ZSTD_isError(fs), "frame at %zu: %s", off, ZSTD_getErrorName(fs));
                off += fs;
                cr_assert_lt(n, max, "too many frames");
                ends[n++] = off;
        }
        return n;
}

/* Count the records in a decompressed piece that holds whole records. */
size_t th_count_records(const uint8_t *p, size_t len, bool *whole)
{
        size_t off = 0, n = 0;

        while (off + sizeof(struct hvt_disk_rec) <= len) {
                struct hvt_disk_rec rec;

                memcpy(&rec, p + off, sizeof(rec));
                if (off + sizeof(rec) + rec.size > len)
                        break;
                off += sizeof(rec) + rec.size;
                n++;
        }
        *whole = off == len;
        return n;
}

/* ------------------------------------------------------------------------ */
/* vCPU state model (independent of the library's own field table)         */
/* ------------------------------------------------------------------------ */

void *th_field_ptr(struct hvt_vcpu_state *st, unsigned f)
{
        if (f <= HVT_F_R15)
                return &st->gpr[f];
        switch (f) {
        case HVT_F_RIP: return &st->rip;
        case HVT_F_RFLAGS: return &st->rflags;
        case HVT_F_CR0: return &st->cr0;
        case HVT_F_CR2: return &st->cr2;
        case HVT_F_CR3: return &st->cr3;
        case HVT_F_CR4: return &st->cr4;
        case HVT_F_EFER: return &st->efer;
        case HVT_F_GDT: return &st->gdt;
        case HVT_F_IDT: return &st->idt;
        case HVT_F_INTR: return &st->intr;
        default: return &st->seg[f - HVT_F_ES];
        }
}

static const void *field_cptr(const struct hvt_vcpu_state *st, unsigned f)
{
        return th_field_ptr((struct hvt_vcpu_state *)st, f);
}

size_t th_fsize(unsigned f)
{
        return (f >= HVT_F_ES && f <= HVT_F_GS) || f == HVT_F_GDT || f == HVT_F_IDT ? 16 : 8;
}

uint32_t th_diff_mask(const struct hvt_vcpu_state *a, const struct hvt_vcpu_state *b)
{
        uint32_t m = 0;

        for (unsigned f = 0; f < HVT_F_COUNT; f++)
                if (memcmp(field_cptr(a, f), field_cptr(b, f), th_fsize(f)))
                        m |= 1u << f;
        return m;
}

/* Describe the first difference between two states; false if any. */
bool th_state_eq(const struct hvt_vcpu_state *got, const struct hvt_vcpu_state *want, char *why,
                 size_t n)
{
        for (unsigned f = 0; f < HVT_F_COUNT; f++) {
                if (!memcmp(field_cptr(got, f), field_cptr(want, f), th_fsize(f)))
                        continue;
                if (f >= HVT_F_ES && f <= HVT_F_GS) {
                        const struct hvt_disk_seg *g = &got->seg[f - HVT_F_ES],
                                                  *w = &want->seg[f - HVT_F_ES];

                        snprintf(why, n,
                                 "%s: got base %#" PRIx64 " limit %#x sel %#x attr %#x, "
                                 "want base %#" PRIx64 " limit %#x sel %#x attr %#x",
                                 hvt_field_name(f), g->base, g->limit, g->selector, g->attr,
                                 w->base, w->limit, w->selector, w->attr);
                } else if (f == HVT_F_GDT || f == HVT_F_IDT) {
                        const struct hvt_disk_dtable *g = field_cptr(got, f),
                                                     *w = field_cptr(want, f);

                        snprintf(why, n,
                                 "%s: got base %#" PRIx64 " limit %#x, want base %#" PRIx64
                                 " limit %#x",
                                 hvt_field_name(f), g->base, g->limit, w->base, w->limit);
                } else {
                        snprintf(why, n, "%s: got %#" PRIx64 ", want %#" PRIx64, hvt_field_name(f),
                                 *(const uint64_t *)field_cptr(got, f),
                                 *(const uint64_t *)field_cptr(want, f));
                }
                return false;
        }
        if (memcmp(got, want, sizeof(*got))) {
                snprintf(why, n, "reserved bytes differ");
                return false;
        }
        return true;
}

static void rand_seg(uint64_t *s, struct hvt_disk_seg *g)
{
        g->base = th_rnd(s);
        g->limit = (uint32_t)th_rnd(s);
        g->selector = (uint16_t)th_rnd(s);
        g->attr = (uint16_t)(th_rnd(s) & 0x1fff); /* every defined attr bit */
}

static void rand_dtable(uint64_t *s, struct hvt_disk_dtable *d)
{
        d->base = th_rnd(s);
        d->limit = (uint16_t)th_rnd(s);
}

void th_rand_state(uint64_t *s, struct hvt_vcpu_state *st)
{
        memset(st, 0, sizeof(*st));
        for (unsigned f = 0; f < HVT_F_COUNT; f++) {
                if (f >= HVT_F_ES && f <= HVT_F_GS)
                        rand_seg(s, &st->seg[f - HVT_F_ES]);
                else if (f == HVT_F_GDT || f == HVT_F_IDT)
                        rand_dtable(s, th_field_ptr(st, f));
                else
                        *(uint64_t *)th_field_ptr(st, f) = th_rnd(s);
        }
}

/* Change one field, often only one part of it (e.g. a selector alone). */
void th_mutate_field(uint64_t *s, struct hvt_vcpu_state *st, unsigned f)
{
        uint64_t r = th_rnd(s);

        if (f >= HVT_F_ES && f <= HVT_F_GS) {
                struct hvt_disk_seg *g = &st->seg[f - HVT_F_ES];

                switch (r % 7) {
                case 0: g->base = th_rnd(s); break;
                case 1: g->base ^= 1ull << (th_rnd(s) % 64); break;
                case 2: g->limit = (uint32_t)th_rnd(s); break;
                case 3: g->selector ^= (uint16_t)(1u << (th_rnd(s) % 16)); break;
                case 4: g->attr ^= (uint16_t)(1u << (th_rnd(s) % 13)); break;
                case 5:
                        g->selector = (uint16_t)th_rnd(s);
                        g->attr = (uint16_t)(th_rnd(s) & 0x1fff);
                        break;
                default: rand_seg(s, g); break;
                }
        } else if (f == HVT_F_GDT || f == HVT_F_IDT) {
                struct hvt_disk_dtable *d = th_field_ptr(st, f);

                switch (r % 4) {
                case 0: d->base = th_rnd(s); break;
                case 1: d->base ^= 1ull << (th_rnd(s) % 64); break;
                case 2: d->limit ^= (uint16_t)(1u << (th_rnd(s) % 16)); break;
                default: rand_dtable(s, d); break;
                }
        } else {
                uint64_t *v = th_field_ptr(st, f);

                switch (r % 3) {
                case 0: *v = th_rnd(s); break;
                case 1: *v += 1 + th_rnd(s) % 16; break;
                default: *v ^= 1ull << (th_rnd(s) % 64); break;
                }
        }
}

/* ------------------------------------------------------------------------ */
/* Writer / reader helpers                                                  */
/* ------------------------------------------------------------------------ */

struct hvt_writer *th_open_writer(const char *path, unsigned frame_records, unsigned frame_ms,
                                  int bg)
{
        struct hvt_writer_opts o = { .size = sizeof(o),
                                     .frame_records = frame_records,
                                     .frame_ms = frame_ms,
                                     .background_flush = bg };
        struct hvt_writer *w = NULL;
        int err = hvt_writer_open(&w, path, &o);

        cr_assert_eq(err, 0, "hvt_writer_open %s: %s", path, strerror(-err));
        cr_assert_not_null(w);
        return w;
}

void th_write_min_header(struct hvt_writer *w)
{
        struct hvt_header h = { 0 };

        h.h.mem_size = 0x10000;
        h.h.entry = 0x7c00;
        h.h.guest_mode = HVT_MODE_REAL;
        cr_assert_eq(hvt_write_header(w, &h), 0);
}

void th_write_end(struct hvt_writer *w, uint64_t exits, const char *msg)
{
        struct hvt_disk_end e = { .exits = exits, .why = HVT_END_GUEST_EXIT };

        cr_assert_eq(hvt_write_end(w, &e, msg), 0);
}

void th_close_writer(struct hvt_writer *w)
{
        int err = hvt_writer_close(w);

        cr_assert_eq(err, 0, "hvt_writer_close: %s", strerror(-err));
}

struct hvt_reader *th_must_open(const char *path)
{
        struct hvt_reader *r = NULL;
        int err = hvt_reader_open(&r, path);

        cr_assert_eq(err, HVT_OK, "hvt_reader_open %s: %d %s", path, err, hvt_reader_message(r));
        cr_assert_not_null(r);
        return r;
}

void th_expect_next(struct hvt_reader *r, struct hvt_event *ev, uint16_t type)
{
        int err = hvt_reader_next(r, ev);

        cr_assert_eq(err, HVT_OK, "hvt_reader_next: %d %s", err, hvt_reader_message(r));
        cr_assert_eq(ev->type, type, "record %" PRIu64 ": type %u (%s), want %u (%s)", ev->index,
                     ev->type, hvt_rec_type_name(ev->type), type, hvt_rec_type_name(type));
}

/* Compare a read exit with the one written (state, time, tail). */
void th_check_exit(const struct hvt_exit *got, const struct hvt_exit *want, uint32_t want_changed,
                   const char *ctx)
{
        char why[512];

        cr_assert_eq(got->seq, want->seq, "%s: seq %" PRIu64 " want %" PRIu64, ctx, got->seq,
                     want->seq);
        cr_assert_eq(got->time_ns, want->time_ns, "%s: time_ns %" PRIu64 " want %" PRIu64, ctx,
                     got->time_ns, want->time_ns);
        cr_assert_eq(got->guest_ns, want->guest_ns, "%s: guest_ns %" PRIu64 " want %" PRIu64, ctx,
                     got->guest_ns, want->guest_ns);
        cr_assert_eq(got->reason, want->reason, "%s: reason %u want %u", ctx, got->reason,
                     want->reason);
        cr_assert_eq(got->raw_reason, want->raw_reason, "%s: raw_reason", ctx);
        if (!th_state_eq(&got->st, &want->st, why, sizeof(why)))
                cr_assert_fail("%s: state differs: %s", ctx, why);
        cr_assert_eq(got->changed, want_changed, "%s: changed %#x want %#x", ctx, got->changed,
                     want_changed);
        cr_assert_eq(got->insn_len, want->insn_len, "%s: insn_len %u want %u", ctx, got->insn_len,
                     want->insn_len);
        cr_assert_arr_eq(got->insn, want->insn, want->insn_len, "%s: insn bytes", ctx);
        switch (want->reason) {
        case HVT_EXIT_IO: {
                size_t n = (size_t)want->u.io.io.size * want->u.io.io.count;

                cr_assert_eq(got->u.io.io.port, want->u.io.io.port, "%s: port", ctx);
                cr_assert_eq(got->u.io.io.size, want->u.io.io.size, "%s: size", ctx);
                cr_assert_eq(got->u.io.io.dir, want->u.io.io.dir, "%s: dir", ctx);
                cr_assert_eq(got->u.io.io.count, want->u.io.io.count, "%s: count", ctx);
                if (n) {
                        cr_assert_not_null(got->u.io.data, "%s: io data", ctx);
                        cr_assert_arr_eq(got->u.io.data, want->u.io.data, n, "%s: io data", ctx);
                }
                break;
        }
        case HVT_EXIT_MMIO:
                cr_assert_eq(got->u.mmio.addr, want->u.mmio.addr, "%s: mmio addr", ctx);
                cr_assert_eq(got->u.mmio.len, want->u.mmio.len, "%s: mmio len", ctx);
                cr_assert_eq(got->u.mmio.is_write, want->u.mmio.is_write, "%s: mmio dir", ctx);
                cr_assert_arr_eq(got->u.mmio.data, want->u.mmio.data, 8, "%s: mmio data", ctx);
                break;
        case HVT_EXIT_FAIL_ENTRY:
                cr_assert_eq(got->u.fail_entry.hw_reason, want->u.fail_entry.hw_reason, "%s", ctx);
                cr_assert_eq(got->u.fail_entry.cpu, want->u.fail_entry.cpu, "%s", ctx);
                break;
        case HVT_EXIT_INTERNAL:
                cr_assert_eq(got->u.internal.internal.suberror, want->u.internal.internal.suberror,
                             "%s: suberror", ctx);
                cr_assert_eq(got->u.internal.internal.ndata, want->u.internal.internal.ndata,
                             "%s: ndata", ctx);
                cr_assert_arr_eq(got->u.internal.data, want->u.internal.data,
                                 8 * want->u.internal.internal.ndata, "%s: internal data", ctx);
                break;
        case HVT_EXIT_DEBUG:
                cr_assert_eq(got->u.debug.exception, want->u.debug.exception, "%s", ctx);
                cr_assert_eq(got->u.debug.pc, want->u.debug.pc, "%s", ctx);
                cr_assert_eq(got->u.debug.dr6, want->u.debug.dr6, "%s", ctx);
                cr_assert_eq(got->u.debug.dr7, want->u.debug.dr7, "%s", ctx);
                break;
        case HVT_EXIT_EXCEPTION:
                cr_assert_eq(got->u.exception.vector, want->u.exception.vector, "%s", ctx);
                cr_assert_eq(got->u.exception.error_code, want->u.exception.error_code, "%s", ctx);
                cr_assert_eq(got->u.exception.cr2, want->u.exception.cr2, "%s", ctx);
                break;
        default: break;
        }
}

/* ------------------------------------------------------------------------ */
/* Readers                                                                  */
/* ------------------------------------------------------------------------ */

int th_open_err(const char *path, struct hvt_reader **rp)
{
        struct hvt_reader *r = NULL;
        int err = hvt_reader_open(&r, path);

        cr_assert_not_null(r, "a reader is returned even on error");
        *rp = r;
        return err;
}

void th_expect_open_fails(const char *path, int want, const char *needle)
{
        struct hvt_reader *r;
        int err = th_open_err(path, &r);
        char msg[300];

        th_check_msg(r, NULL);
        snprintf(msg, sizeof(msg), "%s", hvt_reader_message(r));
        hvt_reader_close(r); /* before asserting: a failure leaks nothing */
        cr_assert_eq(err, want, "%s: got %d (%s), want %d (%s): %s", path, err, hvt_strerror(err),
                     want, hvt_strerror(want), msg);
        if (needle)
                cr_assert_not_null(strstr(msg, needle), "message '%s' does not contain '%s'", msg,
                                   needle);
}

static struct th_rec_id event_id(const struct hvt_event *ev)
{
        struct th_rec_id id = { .type = ev->type };

        switch (ev->type) {
        case HVT_REC_HEADER:
                id.a = ev->header.h.mem_size;
                id.b = ev->header.h.entry;
                break;
        case HVT_REC_EXIT:
                id.a = ev->exit.seq;
                id.b = fnv(&ev->exit.st, sizeof(ev->exit.st)) ^ ev->exit.time_ns;
                break;
        case HVT_REC_CONSOLE:
                id.a = ev->console.seq;
                id.b = fnv(ev->console.data, ev->console.len);
                break;
        case HVT_REC_WRITE:
                id.a = ev->write.seq;
                id.b = fnv(ev->write.data, ev->write.len) ^ ev->write.gpa ^ ev->write.len;
                break;
        case HVT_REC_END:
                id.a = ev->end.e.exits;
                id.b = fnv(ev->end.message, strlen(ev->end.message));
                break;
        default: id.a = ev->index; break;
        }
        return id;
}

enum open_how { OPEN_PATH, OPEN_FD, OPEN_MEMORY };

/* Open path as `how` says; for memory, *buf holds the file until the reader is closed. */
static int open_how(enum open_how how, const char *path, struct hvt_reader **r, uint8_t **buf)
{
        size_t len;
        int fd;

        *buf = NULL;
        switch (how) {
        case OPEN_PATH: return hvt_reader_open(r, path);
        case OPEN_FD:
                fd = open(path, O_RDONLY);
                cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
                return hvt_reader_fdopen(r, fd);
        default: *buf = th_read_file(path, &len); return hvt_reader_open_memory(r, *buf, len);
        }
}

static void read_all_how(enum open_how how, const char *path, struct th_readres *res, size_t cap)
{
        struct hvt_reader *r = NULL;
        struct hvt_event ev;
        size_t guard = 0;
        uint8_t *buf;

        res->n = 0;
        res->records = 0;
        res->err = HVT_OK;
        res->open_err = open_how(how, path, &r, &buf);
        cr_assert_not_null(r);
        if (res->open_err) {
                th_check_msg(r, NULL);
                snprintf(res->msg, sizeof(res->msg), "%s", hvt_reader_message(r));
                hvt_reader_close(r);
                free(buf);
                return;
        }
        while ((res->err = hvt_reader_next(r, &ev)) == HVT_OK) {
                if (res->n < cap)
                        res->ids[res->n] = event_id(&ev);
                res->n++;
                cr_assert_lt(++guard, 10000000, "reader does not stop");
        }
        if (res->err != HVT_END_OF_TRACE) {
                int again = hvt_reader_next(r, &ev);

                th_check_msg(r, NULL);
                cr_assert_eq(again, res->err, "errors are sticky");
        }
        snprintf(res->msg, sizeof(res->msg), "%s", hvt_reader_message(r));
        res->records = hvt_reader_records(r);
        hvt_reader_close(r);
        free(buf);
}

/*
 * Read the trace at path to its end, by path; reading it from a file
 * descriptor and from memory must give the same records and result.
 */
void th_read_all(const char *path, struct th_readres *res, size_t cap)
{
        static const char *const how_name[] = { [OPEN_FD] = "fd", [OPEN_MEMORY] = "memory" };
        struct th_readres other = { .ids = calloc(cap ? cap : 1, sizeof(struct th_rec_id)) };

        cr_assert_not_null(other.ids);
        read_all_how(OPEN_PATH, path, res, cap);
        for (enum open_how how = OPEN_FD; how <= OPEN_MEMORY; how++) {
                read_all_how(how, path, &other, cap);
                cr_assert(other.open_err == res->open_err && other.err == res->err &&
                                  other.n == res->n && other.records == res->records &&
                                  !strcmp(other.msg, res->msg),
                          "%s: from %s: open %d, %d after %zu records (%s); by path: open %d, "
                          "%d after %zu (%s)",
                          path, how_name[how], other.open_err, other.err, other.n, other.msg,
                          res->open_err, res->err, res->n, res->msg);
                for (size_t i = 0; i < res->n && i < cap; i++)
                        cr_assert(other.ids[i].type == res->ids[i].type &&
                                          other.ids[i].a == res->ids[i].a &&
                                          other.ids[i].b == res->ids[i].b,
                                  "%s: from %s: record %zu differs", path, how_name[how], i);
        }
        free(other.ids);
}
