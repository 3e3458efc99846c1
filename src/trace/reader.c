// SPDX-License-Identifier: MIT
/*
 * Trace reader.  The compressed file is streamed through zstd into a raw
 * window from which records are parsed with explicit bounds checks: a
 * reader must survive any byte sequence, so every length read from the
 * file is validated before it is used.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zstd.h>

#include "state.h"

#define ZSTD_MAGIC 0xFD2FB528u

/*
 * Records of unknown types are skipped inside hvt_reader_next, so a run
 * of them is work no caller sees: a few KiB of zstd expand to a GiB of
 * empty records.  Past this many in a row the trace is corrupt, which
 * bounds one call (8 MiB of raw stream at the least) while leaving room for
 * record types a later minor version adds between the ones known here.
 */
#define MAX_SKIPPED_RUN (1u << 20)

/* A vCPU's delta-decoding state: its last exit. */
struct reader_vcpu {
        struct hvt_vcpu_state st;
        uint64_t seq, time_ns; /* seq: of the last exit read, valid with have_exit */
        bool have_exit;
};

struct hvt_reader {
        int fd; /* -1 for a trace in memory */
        ZSTD_DCtx *dctx;

        const uint8_t *in; /* compressed input: in_buf, or the caller's memory */
        uint8_t *in_buf;
        size_t in_len, in_pos, in_cap;
        bool in_eof;
        uint64_t in_total;

        uint8_t *raw; /* decompressed bytes; [raw_pos, raw_len) not yet parsed */
        size_t raw_len, raw_pos, raw_cap;
        bool frame_done; /* the last zstd call finished a frame */

        uint8_t *payload; /* the current record's payload (stable copy) */
        size_t payload_cap;

        uint64_t records;
        int error; /* sticky: once an error is seen, it is returned again */
        bool have_header, header_pending, saw_end;

        uint16_t version;       /* the preamble's major version */
        struct reader_vcpu *vc; /* one per vCPU, from the header on */
        uint32_t nvcpus, cur;   /* cur: the vCPU the last VCPU record selected */
        uint32_t ev_vcpu;       /* the vCPU of the last event returned */
        uint64_t max_seq;       /* the highest exit seq of any vCPU, valid with any_exit */
        bool any_exit;
        uint32_t skipped_run; /* unknown records since the last record returned */
        uint32_t vcpu_run;    /* VCPU records since the last record returned */

        struct hvt_header header;
        uint8_t *header_payload;
        char **argv;
        char *strs[HVT_STR_COUNT];

        char msg[256];
};

static int fail(struct hvt_reader *r, int err, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
        va_end(ap);
        r->error = err;
        return err;
}

/* Refill compressed input.  Returns 0, or -errno on a read error. */
static int fill_input(struct hvt_reader *r)
{
        ssize_t n;

        if (r->in_pos == r->in_len) {
                r->in_pos = r->in_len = 0;
        }
        do {
                n = read(r->fd, r->in_buf + r->in_len, r->in_cap - r->in_len);
        } while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        if (n == 0)
                r->in_eof = true;
        r->in_len += (size_t)n;
        r->in_total += (uint64_t)n;
        return 0;
}

/*
 * Make at least `need` unparsed raw bytes available.  Returns HVT_OK,
 * HVT_END_OF_TRACE if the stream ended cleanly before any of them, or an
 * error (truncation if it ended inside a frame or inside the `need` bytes).
 */
static int want(struct hvt_reader *r, size_t need)
{
        while (r->raw_len - r->raw_pos < need) {
                size_t ret;

                /* Keep the window compact and big enough. */
                if (r->raw_pos) {
                        memmove(r->raw, r->raw + r->raw_pos, r->raw_len - r->raw_pos);
                        r->raw_len -= r->raw_pos;
                        r->raw_pos = 0;
                }
                if (r->raw_cap < need + ZSTD_DStreamOutSize()) {
                        size_t cap = need + ZSTD_DStreamOutSize();
                        uint8_t *p = realloc(r->raw, cap);

                        if (!p)
                                return fail(r, -ENOMEM, "out of memory");
                        r->raw = p;
                        r->raw_cap = cap;
                }
                if (r->in_pos == r->in_len) {
                        if (r->in_eof) {
                                bool clean = r->frame_done && r->raw_len == r->raw_pos;

                                if (clean)
                                        return HVT_END_OF_TRACE;
                                return HVT_ERR_TRUNCATED; /* caller words it */
                        }
                        int err = fill_input(r);

                        if (err)
                                return fail(r, err, "read error: %s", hvt_strerror(err));
                        continue;
                }
                ZSTD_inBuffer in = { r->in, r->in_len, r->in_pos };
                ZSTD_outBuffer out = { r->raw + r->raw_len, r->raw_cap - r->raw_len, 0 };

                ret = ZSTD_decompressStream(r->dctx, &out, &in);
                r->in_pos = in.pos;
                r->raw_len += out.pos;
                if (ZSTD_isError(ret))
                        return fail(r, HVT_ERR_CORRUPT,
                                    "corrupt compressed data after %llu records: %s",
                                    (unsigned long long)r->records, ZSTD_getErrorName(ret));
                r->frame_done = ret == 0;
        }
        return HVT_OK;
}

static void set_truncated(struct hvt_reader *r, const char *where)
{
        fail(r, HVT_ERR_TRUNCATED, "truncated after %llu records (%s)",
             (unsigned long long)r->records, where);
}

static int parse_header(struct hvt_reader *r, const uint8_t *p, size_t len)
{
        struct hvt_header *h = &r->header;
        size_t off = sizeof(h->h);
        int argc = 0;

        if (len < sizeof(h->h))
                return fail(r, HVT_ERR_CORRUPT, "corrupt trace: header record too short");
        r->header_payload = malloc(len);
        if (!r->header_payload)
                return fail(r, -ENOMEM, "out of memory");
        memcpy(r->header_payload, p, len);
        p = r->header_payload;
        memcpy(&h->h, p, sizeof(h->h));
        /* Major 1 had the field reserved: whatever it holds, the trace has one vCPU. */
        r->nvcpus = 1;
        if (r->version == HVT_FORMAT_VERSION_1VCPU)
                h->h.vcpus = 0;
        if (r->version > HVT_FORMAT_VERSION_1VCPU) {
                if (h->h.vcpus < 2)
                        return fail(r, HVT_ERR_CORRUPT,
                                    "corrupt trace: a version %u header declares %u vCPUs",
                                    r->version, h->h.vcpus);
                r->nvcpus = h->h.vcpus;
        }
        r->vc = calloc(r->nvcpus, sizeof(*r->vc));
        if (!r->vc)
                return fail(r, -ENOMEM, "out of memory");

        while (off + sizeof(struct hvt_disk_str) <= len) {
                struct hvt_disk_str s;

                memcpy(&s, p + off, sizeof(s));
                off += sizeof(s);
                if (s.len > len - off)
                        return fail(r, HVT_ERR_CORRUPT, "corrupt trace: header string overruns");
                if (s.key > 0 && s.key < HVT_STR_COUNT) {
                        char *str = malloc((size_t)s.len + 1);

                        if (!str)
                                return fail(r, -ENOMEM, "out of memory");
                        memcpy(str, p + off, s.len);
                        str[s.len] = 0;
                        free(r->strs[s.key]);
                        r->strs[s.key] = str;
                        if (s.key == HVT_STR_CMDLINE) {
                                /* Split the NUL-separated argv in place. */
                                argc = 0;
                                for (size_t i = 0; i < s.len; i++)
                                        if (!str[i])
                                                argc++;
                                free(r->argv);
                                r->argv = calloc((size_t)argc + 1, sizeof(char *));
                                if (!r->argv)
                                        return fail(r, -ENOMEM, "out of memory");
                                for (size_t i = 0, a = 0; a < (size_t)argc; a++) {
                                        r->argv[a] = str + i;
                                        i += strlen(str + i) + 1;
                                }
                        }
                }
                off += s.len;
        }
        for (unsigned k = 0; k < HVT_STR_COUNT; k++)
                h->str[k] = r->strs[k] ? r->strs[k] : "";
        h->argv = (const char *const *)r->argv;
        h->argc = r->argv ? argc : 0;
        return HVT_OK;
}

/* Bounded cursor over a payload. */
struct cursor {
        const uint8_t *p;
        size_t left;
};

static bool take(struct cursor *c, void *dst, size_t n)
{
        if (n > c->left)
                return false;
        memcpy(dst, c->p, n);
        c->p += n;
        c->left -= n;
        return true;
}

/*
 * Copies and clears at every exit, in explicit moves: gcc turns a struct
 * copy this size into rep movsq, a memset into rep stos and a short memcpy
 * into rep movsb, whose start-up costs were half of the reader's time on
 * this project's host.  The empty asm hides the zero (and the loop
 * counter) from gcc, which would otherwise turn the loops back into them.
 * The loops are unrolled: a counted loop spent two instructions of
 * bookkeeping on each 16-byte move.
 */
typedef uint64_t reader_v2 __attribute__((vector_size(16), aligned(8), may_alias));

static inline void copy16(void *dst, const void *src, size_t n)
{
#pragma GCC unroll 32
        for (size_t i = 0; i < n / 16; i++)
                ((reader_v2 *)dst)[i] = ((const reader_v2 *)src)[i];
}

static inline void zero8(void *dst, size_t n)
{
        reader_v2 z = { 0, 0 };

        __asm__("" : "+x"(z));
#pragma GCC unroll 32
        for (size_t i = 0; i < n / 16; i++)
                ((reader_v2 *)dst)[i] = z;
        if (n % 16)
                *(uint64_t *)((uint8_t *)dst + n - 8) = z[0];
}

/*
 * n (at most 15) bytes: two overlapping word moves from 4 bytes on, which
 * read and write nothing outside the n bytes.
 */
static inline void copy_small(uint8_t *dst, const uint8_t *src, size_t n)
{
        uint64_t a, b;
        uint32_t c, d;

        if (n >= 8) {
                memcpy(&a, src, 8);
                memcpy(&b, src + n - 8, 8);
                memcpy(dst, &a, 8);
                memcpy(dst + n - 8, &b, 8);
        } else if (n >= 4) {
                memcpy(&c, src, 4);
                memcpy(&d, src + n - 4, 4);
                memcpy(dst, &c, 4);
                memcpy(dst + n - 4, &d, 4);
        } else {
                for (size_t i = 0; i < n; i++) {
                        __asm__("" : "+r"(i));
                        dst[i] = src[i];
                }
        }
}

_Static_assert(sizeof(struct hvt_vcpu_state) % 16 == 0, "state copied in 16-byte moves");
_Static_assert(offsetof(struct hvt_exit, st) % 8 == 0 &&
                       offsetof(struct hvt_exit, insn_len) % 8 == 0 &&
                       (sizeof(struct hvt_exit) - offsetof(struct hvt_exit, insn_len)) % 8 == 0,
               "exit cleared in 16- and 8-byte moves");

static int parse_exit(struct hvt_reader *r, uint16_t flags, const uint8_t *p, size_t len,
                      struct hvt_exit *e)
{
        struct reader_vcpu *v = &r->vc[r->cur];
        struct cursor c = { p, len };
        struct hvt_disk_exit x;
        uint64_t dt, gns, seq;

        if (!take(&c, &x, sizeof(x)))
                goto err_short;
        dt = x.dt_ns;
        gns = x.guest_ns;
        if (flags & HVT_XF_SEQ) {
                if (!take(&c, &seq, 8))
                        goto err_short;
                if (v->have_exit && seq <= v->seq)
                        return fail(r, HVT_ERR_CORRUPT,
                                    "corrupt trace: record %llu: exit %llu after exit %llu",
                                    (unsigned long long)r->records, (unsigned long long)seq,
                                    (unsigned long long)v->seq);
        } else if (!v->have_exit) {
                seq = 0;
        } else {
                /* Wrapping to 0 would go backwards like any other smaller number. */
                if (v->seq == UINT64_MAX)
                        return fail(r, HVT_ERR_CORRUPT,
                                    "corrupt trace: record %llu: exit after exit %llu",
                                    (unsigned long long)r->records, (unsigned long long)v->seq);
                seq = v->seq + 1;
        }
        if (flags & HVT_XF_TIME64) {
                uint32_t hi[2];

                if (!take(&c, hi, sizeof(hi)))
                        goto err_short;
                dt |= (uint64_t)hi[0] << 32;
                gns |= (uint64_t)hi[1] << 32;
        }
        for (uint32_t m = x.state_mask; m; m &= m - 1) {
                unsigned f = (unsigned)__builtin_ctz(m);
                size_t n = hvt_field_slots[f].size;

                if (n > c.left)
                        goto err_short;
                /* Fields are 8 or 16 bytes: fixed-size copies, not a call per field. */
                if (n == 8)
                        memcpy(hvt_field_ptr(&v->st, f), c.p, 8);
                else
                        memcpy(hvt_field_ptr(&v->st, f), c.p, 16);
                c.p += n;
                c.left -= n;
        }
        if (x.insn_len > 15)
                return fail(r, HVT_ERR_CORRUPT, "corrupt trace: record %llu: instruction length %u",
                            (unsigned long long)r->records, x.insn_len);
        /* Zero all but the state, which is copied whole: this runs at every exit. */
        zero8(e, offsetof(struct hvt_exit, st));
        copy16(&e->st, &v->st, sizeof(e->st));
        zero8(&e->insn_len, sizeof(*e) - offsetof(struct hvt_exit, insn_len));
        if (x.insn_len > c.left)
                goto err_short;
        copy_small(e->insn, c.p, x.insn_len);
        c.p += x.insn_len;
        c.left -= x.insn_len;
        v->time_ns += dt;
        v->seq = seq;
        v->have_exit = true;
        if (!r->any_exit || seq > r->max_seq)
                r->max_seq = seq;
        r->any_exit = true;

        e->seq = v->seq;
        e->time_ns = v->time_ns;
        e->guest_ns = gns;
        e->reason = x.reason;
        e->raw_reason = x.raw_reason;
        e->changed = x.state_mask;
        e->insn_len = x.insn_len;

        switch (x.reason) {
        case HVT_EXIT_IO:
                if (!take(&c, &e->u.io.io, sizeof(e->u.io.io)))
                        goto err_short;
                /* Widths are those of IN/OUT; a string I/O exit did at least one. */
                if (e->u.io.io.size != 1 && e->u.io.io.size != 2 && e->u.io.io.size != 4)
                        return fail(r, HVT_ERR_CORRUPT, "corrupt trace: record %llu: I/O size %u",
                                    (unsigned long long)r->records, e->u.io.io.size);
                if (!e->u.io.io.count)
                        return fail(r, HVT_ERR_CORRUPT, "corrupt trace: record %llu: I/O count 0",
                                    (unsigned long long)r->records);
                if ((size_t)e->u.io.io.size * e->u.io.io.count > c.left)
                        goto err_short;
                e->u.io.data = c.p;
                break;
        case HVT_EXIT_MMIO:
                if (!take(&c, &e->u.mmio, sizeof(e->u.mmio)))
                        goto err_short;
                /* Backends report the access width, 1 to 8 bytes, as data[] holds. */
                if (e->u.mmio.len < 1 || e->u.mmio.len > sizeof(e->u.mmio.data))
                        return fail(r, HVT_ERR_CORRUPT,
                                    "corrupt trace: record %llu: MMIO length %u",
                                    (unsigned long long)r->records, e->u.mmio.len);
                break;
        case HVT_EXIT_FAIL_ENTRY:
                if (!take(&c, &e->u.fail_entry, sizeof(e->u.fail_entry)))
                        goto err_short;
                break;
        case HVT_EXIT_INTERNAL:
                if (!take(&c, &e->u.internal.internal, sizeof(e->u.internal.internal)))
                        goto err_short;
                if (e->u.internal.internal.ndata > HVT_INTERNAL_MAX_DATA)
                        return fail(r, HVT_ERR_CORRUPT, "corrupt trace: record %llu: ndata %u",
                                    (unsigned long long)r->records, e->u.internal.internal.ndata);
                if (!take(&c, e->u.internal.data, 8 * (size_t)e->u.internal.internal.ndata))
                        goto err_short;
                break;
        case HVT_EXIT_DEBUG:
                if (!take(&c, &e->u.debug, sizeof(e->u.debug)))
                        goto err_short;
                break;
        case HVT_EXIT_EXCEPTION:
                if (!take(&c, &e->u.exception, sizeof(e->u.exception)))
                        goto err_short;
                break;
        default: break; /* no data, or a reason this reader does not know */
        }
        return HVT_OK;

err_short:
        return fail(r, HVT_ERR_CORRUPT, "corrupt trace: record %llu: exit record too short",
                    (unsigned long long)r->records);
}

/* Copy a fixed struct payload; the record may be longer (a later minor version). */
static int fixed(struct hvt_reader *r, void *dst, size_t n, const uint8_t *p, size_t len,
                 const char *what)
{
        if (len < n)
                return fail(r, HVT_ERR_CORRUPT, "corrupt trace: record %llu: %s record too short",
                            (unsigned long long)r->records, what);
        memcpy(dst, p, n);
        return HVT_OK;
}

/*
 * A record that belongs to an exit follows it: hvrec writes injections,
 * raises, deliveries, console output and writes after the exit they name,
 * so a seq past the last exit read (or any seq before the first exit)
 * cannot come from a writer that follows the rules.  have_exit and last
 * are the selected vCPU's, or for a machine-wide record (a write) any
 * vCPU's.
 */
static int names_exit_of(struct hvt_reader *r, int err, bool have_exit, uint64_t last, uint64_t seq,
                         const char *what)
{
        if (err)
                return err;
        if (!have_exit)
                return fail(r, HVT_ERR_CORRUPT,
                            "corrupt trace: record %llu: %s names exit %llu before any exit",
                            (unsigned long long)r->records, what, (unsigned long long)seq);
        if (seq > last)
                return fail(r, HVT_ERR_CORRUPT,
                            "corrupt trace: record %llu: %s names exit %llu after exit %llu",
                            (unsigned long long)r->records, what, (unsigned long long)seq,
                            (unsigned long long)last);
        return HVT_OK;
}

/* A record of the selected vCPU names one of its exits. */
static int names_exit(struct hvt_reader *r, int err, uint64_t seq, const char *what)
{
        const struct reader_vcpu *v = &r->vc[r->cur];

        return names_exit_of(r, err, v->have_exit, v->seq, seq, what);
}

static int decode(struct hvt_reader *r, uint16_t type, uint16_t flags, const uint8_t *p, size_t len,
                  struct hvt_event *ev)
{
        int err;

        switch (type) {
        case HVT_REC_HEADER:
                if (r->have_header)
                        return fail(r, HVT_ERR_CORRUPT,
                                    "corrupt trace: second header at record %llu",
                                    (unsigned long long)r->records);
                err = parse_header(r, p, len);
                if (err)
                        return err;
                r->have_header = true;
                ev->header = r->header;
                return HVT_OK;
        case HVT_REC_MEMORY: {
                struct hvt_disk_memory m;

                err = fixed(r, &m, sizeof(m), p, len, "memory");
                if (err)
                        return err;
                ev->memory.gpa = m.gpa;
                ev->memory.data = p + sizeof(struct hvt_disk_memory);
                ev->memory.len = len - sizeof(struct hvt_disk_memory);
                return HVT_OK;
        }
        case HVT_REC_EXIT: return parse_exit(r, flags, p, len, &ev->exit);
        case HVT_REC_INJECT:
                err = fixed(r, &ev->inject, sizeof(ev->inject), p, len, "inject");
                return names_exit(r, err, ev->inject.after_seq, "inject");
        case HVT_REC_RAISE:
                err = fixed(r, &ev->raise, sizeof(ev->raise), p, len, "raise");
                return names_exit(r, err, ev->raise.seq, "raise");
        case HVT_REC_DELIVER:
                err = fixed(r, &ev->deliver, sizeof(ev->deliver), p, len, "deliver");
                return names_exit(r, err, ev->deliver.seq, "deliver");
        case HVT_REC_CONSOLE:
                err = fixed(r, &ev->console.seq, 8, p, len, "console");
                err = names_exit(r, err, ev->console.seq, "console");
                if (err)
                        return err;
                ev->console.data = p + 8;
                ev->console.len = len - 8;
                return HVT_OK;
        case HVT_REC_WRITE: {
                struct hvt_disk_write wr = { 0 };

                err = fixed(r, &wr, sizeof(wr), p, len, "write");
                err = names_exit_of(r, err, r->any_exit, r->max_seq, wr.seq, "write");
                if (err)
                        return err;
                ev->write.seq = wr.seq;
                ev->write.gpa = wr.gpa;
                ev->write.data = p + sizeof(wr);
                ev->write.len = len - sizeof(wr);
                return HVT_OK;
        }
        case HVT_REC_END:
                err = fixed(r, &ev->end.e, sizeof(ev->end.e), p, len, "end");
                if (err)
                        return err;
                /* The payload buffer has room for a terminator (see next_record). */
                ((uint8_t *)p)[len] = 0;
                ev->end.message = (const char *)p + sizeof(ev->end.e);
                r->saw_end = true;
                return HVT_OK;
        default: return HVT_OK; /* unknown type: skipped by the caller */
        }
}

/* Whether records of this type belong to the selected vCPU (else they are machine-wide). */
static bool vcpu_owned(uint16_t type)
{
        switch (type) {
        case HVT_REC_EXIT:
        case HVT_REC_INJECT:
        case HVT_REC_RAISE:
        case HVT_REC_DELIVER:
        case HVT_REC_CONSOLE: return true;
        default: return false;
        }
}

/* A VCPU record: switch the selection.  Never returned, but counted like a skipped record. */
static int select_vcpu(struct hvt_reader *r, const uint8_t *p, size_t len)
{
        struct hvt_disk_vcpu v;
        int err = fixed(r, &v, sizeof(v), p, len, "vcpu");

        if (err)
                return err;
        if (v.vcpu >= r->nvcpus)
                return fail(r, HVT_ERR_CORRUPT,
                            "corrupt trace: record %llu: vCPU %u of a %u-vCPU trace",
                            (unsigned long long)r->records, v.vcpu, r->nvcpus);
        /* Like unknown records, a run of them is work no caller sees: bound it. */
        if (++r->vcpu_run > MAX_SKIPPED_RUN)
                return fail(r, HVT_ERR_CORRUPT,
                            "corrupt trace: record %llu: more than %u vcpu records in a row",
                            (unsigned long long)r->records, MAX_SKIPPED_RUN);
        r->cur = v.vcpu;
        r->records++;
        return HVT_OK;
}

int hvt_reader_next(struct hvt_reader *r, struct hvt_event *ev)
{
        struct hvt_disk_rec rec;
        const uint8_t *payload;
        int err;

        if (r->header_pending) {
                r->header_pending = false;
                memset(ev, 0, sizeof(*ev));
                ev->type = HVT_REC_HEADER;
                ev->header = r->header;
                r->ev_vcpu = 0;
                return HVT_OK;
        }
        for (;;) {
                if (r->error)
                        return r->error;
                err = want(r, sizeof(rec));
                if (err == HVT_END_OF_TRACE) {
                        if (!r->saw_end) {
                                set_truncated(r,
                                              "no end record: the recorder was stopped abruptly");
                                return r->error;
                        }
                        return HVT_END_OF_TRACE;
                }
                /*
                 * END is the last record: anything after it, even a piece of a
                 * record, was not written by a recorder that ended its run.  A
                 * cut inside END's own frame leaves no bytes and stays a truncation.
                 */
                if (r->saw_end &&
                    (err == HVT_OK || (err == HVT_ERR_TRUNCATED && r->raw_len > r->raw_pos)))
                        return fail(r, HVT_ERR_CORRUPT,
                                    "corrupt trace: record %llu: data after the end record",
                                    (unsigned long long)r->records);
                if (err == HVT_ERR_TRUNCATED) {
                        set_truncated(r, "incomplete zstd frame");
                        return r->error;
                }
                if (err)
                        return err;
                memcpy(&rec, r->raw + r->raw_pos, sizeof(rec));
                if (rec.size > HVT_MAX_RECORD)
                        return fail(r, HVT_ERR_CORRUPT,
                                    "corrupt trace: record %llu claims %u bytes",
                                    (unsigned long long)r->records, rec.size);
                if (!r->have_header && rec.type != HVT_REC_HEADER)
                        return fail(r, HVT_ERR_CORRUPT,
                                    "corrupt trace: first record is not a header");
                /* Type 0 is never written: zeroed or padded data, not a record. */
                if (rec.type == 0)
                        return fail(r, HVT_ERR_CORRUPT,
                                    "corrupt trace: record %llu: type 0 (reserved, never written)",
                                    (unsigned long long)r->records);
                err = want(r, sizeof(rec) + rec.size);
                if (err == HVT_END_OF_TRACE || err == HVT_ERR_TRUNCATED) {
                        set_truncated(r, "incomplete record");
                        return r->error;
                }
                if (err)
                        return err;
                /*
                 * An exit is parsed where it lies: the window does not move
                 * before the next call, and nothing is written into it.
                 */
                if (rec.type == HVT_REC_EXIT) {
                        payload = r->raw + r->raw_pos + sizeof(rec);
                        r->raw_pos += sizeof(rec) + rec.size;
                        goto parse;
                }
                /* Others get a stable copy, one byte longer so text payloads can be terminated. */
                if (r->payload_cap < (size_t)rec.size + 1) {
                        uint8_t *p = realloc(r->payload, (size_t)rec.size + 1);

                        if (!p)
                                return fail(r, -ENOMEM, "out of memory");
                        r->payload = p;
                        r->payload_cap = (size_t)rec.size + 1;
                }
                memcpy(r->payload, r->raw + r->raw_pos + sizeof(rec), rec.size);
                payload = r->payload;
                r->raw_pos += sizeof(rec) + rec.size;

                if (rec.type == HVT_REC_VCPU && r->version > HVT_FORMAT_VERSION_1VCPU) {
                        err = select_vcpu(r, r->payload, rec.size);
                        if (err)
                                return err;
                        continue;
                }
                /* Major 1 never had VCPU records: one is skipped, as it always was. */
                if (rec.type >= HVT_REC_TYPE_COUNT || rec.type == HVT_REC_VCPU) {
                        r->records++; /* skipped, but counted: it was complete */
                        if (++r->skipped_run > MAX_SKIPPED_RUN)
                                return fail(r, HVT_ERR_CORRUPT,
                                            "corrupt trace: record %llu: more than %u records "
                                            "of unknown types in a row",
                                            (unsigned long long)r->records - 1, MAX_SKIPPED_RUN);
                        continue;
                }
        parse:
                r->skipped_run = 0;
                r->vcpu_run = 0;
                /* An exit's decoder clears its own member (the hot path); the rest start zeroed. */
                if (rec.type != HVT_REC_EXIT)
                        memset(ev, 0, sizeof(*ev));
                ev->type = rec.type;
                ev->index = r->records;
                err = decode(r, rec.type, rec.flags, payload, rec.size, ev);
                if (err)
                        return err;
                r->ev_vcpu = vcpu_owned(rec.type) ? r->cur : 0;
                r->records++;
                return HVT_OK;
        }
}

static struct hvt_reader *reader_alloc(void)
{
        struct hvt_reader *r = calloc(1, sizeof(*r));

        if (r)
                r->fd = -1;
        return r;
}

/* Buffers for reading from r->fd. */
static int reader_alloc_input(struct hvt_reader *r)
{
        r->in_cap = ZSTD_DStreamInSize();
        r->in_buf = malloc(r->in_cap);
        if (!r->in_buf)
                return fail(r, -ENOMEM, "out of memory");
        r->in = r->in_buf;
        return 0;
}

/* Check the magic and version and read the header, from r's input; on error r->msg says why. */
static int reader_start(struct hvt_reader *r)
{
        struct hvt_disk_preamble pre;
        struct hvt_event ev;
        uint32_t magic;
        int err;

        r->dctx = ZSTD_createDCtx();
        if (!r->dctx)
                return fail(r, -ENOMEM, "out of memory");
        while (r->in_len < 4 && !r->in_eof) {
                err = fill_input(r);
                if (err)
                        return fail(r, err, "cannot read: %s", hvt_strerror(err));
        }
        if (r->in_len == 0)
                return fail(r, HVT_ERR_EMPTY, "empty file");
        if (r->in_len < 4)
                return fail(r, HVT_ERR_NOT_TRACE, "not an hvtrace trace (only %zu bytes)",
                            r->in_len);
        memcpy(&magic, r->in, 4);
        if (magic != ZSTD_MAGIC)
                return fail(r, HVT_ERR_NOT_TRACE, "not an hvtrace trace (not zstd-compressed)");

        err = want(r, sizeof(pre));
        if (err == HVT_END_OF_TRACE || err == HVT_ERR_TRUNCATED) {
                /* Even a few bytes of content tell a stranger from a cut trace. */
                size_t n = r->raw_len < HVT_MAGIC_LEN ? r->raw_len : HVT_MAGIC_LEN;

                if (n && memcmp(r->raw, HVT_MAGIC, n))
                        return fail(r, HVT_ERR_NOT_TRACE, "not an hvtrace trace (bad magic)");
                return fail(r, HVT_ERR_TRUNCATED, "truncated header (file ends after %llu bytes)",
                            (unsigned long long)r->in_total);
        }
        if (err)
                return err;
        memcpy(&pre, r->raw + r->raw_pos, sizeof(pre));
        if (memcmp(pre.magic, HVT_MAGIC, HVT_MAGIC_LEN))
                return fail(r, HVT_ERR_NOT_TRACE, "not an hvtrace trace (bad magic)");
        if (pre.version < HVT_FORMAT_VERSION_1VCPU || pre.version > HVT_FORMAT_VERSION)
                return fail(r, HVT_ERR_VERSION,
                            "unsupported trace format version %u.%u (this reader knows %u)",
                            pre.version, pre.minor, HVT_FORMAT_VERSION);
        r->version = pre.version;
        r->raw_pos += sizeof(pre);

        err = hvt_reader_next(r, &ev);
        if (err == HVT_ERR_TRUNCATED)
                return fail(r, HVT_ERR_TRUNCATED, "truncated header (file ends after %llu bytes)",
                            (unsigned long long)r->in_total);
        if (err)
                return err;
        /* The header event is returned again by the first hvt_reader_next. */
        r->header_pending = true;
        return HVT_OK;
}

/* Hand the opened (or failed) reader to the caller, or close it if rp is NULL. */
static int reader_done(struct hvt_reader **rp, struct hvt_reader *r, int err)
{
        if (rp)
                *rp = r;
        else
                hvt_reader_close(r); /* the caller wanted the verdict only */
        return err;
}

int hvt_reader_open(struct hvt_reader **rp, const char *path)
{
        struct hvt_reader *r = reader_alloc();
        int err;

        if (!r)
                return reader_done(rp, NULL, -ENOMEM);
        err = reader_alloc_input(r);
        if (err)
                return reader_done(rp, r, err);
        r->fd = open(path, O_RDONLY | O_CLOEXEC);
        if (r->fd < 0) {
                err = -errno;
                return reader_done(rp, r, fail(r, err, "cannot open: %s", hvt_strerror(err)));
        }
        return reader_done(rp, r, reader_start(r));
}

int hvt_reader_fdopen(struct hvt_reader **rp, int fd)
{
        struct hvt_reader *r = reader_alloc();
        int err;

        if (!r) {
                close(fd);
                return reader_done(rp, NULL, -ENOMEM);
        }
        r->fd = fd; /* closed with the reader from here on */
        err = reader_alloc_input(r);
        if (err)
                return reader_done(rp, r, err);
        return reader_done(rp, r, reader_start(r));
}

int hvt_reader_open_memory(struct hvt_reader **rp, const void *data, size_t len)
{
        struct hvt_reader *r = reader_alloc();

        if (!r)
                return reader_done(rp, NULL, -ENOMEM);
        if (!data && len)
                return reader_done(rp, r,
                                   fail(r, -EINVAL, "no buffer for a trace of %zu bytes", len));
        /* The whole input is there from the start: nothing is ever read. */
        r->in = data;
        r->in_len = r->in_cap = len;
        r->in_total = len;
        r->in_eof = true;
        return reader_done(rp, r, reader_start(r));
}

const struct hvt_header *hvt_reader_header(const struct hvt_reader *r)
{
        return &r->header;
}

const char *hvt_reader_message(const struct hvt_reader *r)
{
        if (!r)
                return "out of memory";
        return r->msg[0] ? r->msg : hvt_strerror(r->error);
}

uint64_t hvt_reader_records(const struct hvt_reader *r)
{
        return r->records;
}

uint32_t hvt_reader_vcpus(const struct hvt_reader *r)
{
        return r->nvcpus ? r->nvcpus : 1;
}

uint32_t hvt_reader_vcpu(const struct hvt_reader *r)
{
        return r->ev_vcpu;
}

int hvt_reader_complete(const struct hvt_reader *r)
{
        return r->saw_end;
}

void hvt_reader_close(struct hvt_reader *r)
{
        if (!r)
                return;
        if (r->fd >= 0)
                close(r->fd);
        ZSTD_freeDCtx(r->dctx);
        free(r->in_buf);
        free(r->raw);
        free(r->payload);
        free(r->header_payload);
        free(r->vc);
        free(r->argv);
        for (unsigned k = 0; k < HVT_STR_COUNT; k++)
                free(r->strs[k]);
        free(r);
}
