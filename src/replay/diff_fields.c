// SPDX-License-Identifier: MIT
/* hvreplay diff: comparing two units field by field, under the options; no reading, no output. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../arch/x86.h"
#include "diff.h"

/* ---- field comparison --------------------------------------------------------------- */

static struct fdiff *fd_add(struct fdiffs *d, const char *field)
{
        struct fdiff *f;

        if (d->count_only) {
                d->n++;
                return NULL;
        }
        diff_reserve((void **)&d->v, &d->cap, d->n + 1, sizeof(*d->v));
        f = &d->v[d->n++];
        memset(f, 0, sizeof(*f));
        snprintf(f->field, sizeof(f->field), "%s", field);
        return f;
}

void diff_fd_str(struct fdiffs *d, const char *field, const char *a, const char *b)
{
        struct fdiff *f = fd_add(d, field);

        if (!f)
                return;
        if (a)
                f->alen = (size_t)snprintf(f->a, sizeof(f->a), "%s", a);
        else
                f->a_null = true;
        if (b)
                f->blen = (size_t)snprintf(f->b, sizeof(f->b), "%s", b);
        else
                f->b_null = true;
}

static void cmp_u64(struct fdiffs *d, const char *field, uint64_t a, uint64_t b)
{
        char sa[24], sb[24];

        if (a == b)
                return;
        if (d->count_only) {
                d->n++;
                return;
        }
        snprintf(sa, sizeof(sa), "0x%" PRIx64, a);
        snprintf(sb, sizeof(sb), "0x%" PRIx64, b);
        diff_fd_str(d, field, sa, sb);
}

static void hex_bytes(char *buf, size_t len, const uint8_t *p, size_t n)
{
        size_t k = 0;

        buf[0] = 0;
        for (size_t i = 0; i < n; i++) {
                if (k + 6 >= len) {
                        snprintf(buf + k, len - k, "...");
                        return;
                }
                k += (size_t)snprintf(buf + k, len - k, "%02x", p[i]);
        }
}

static void cmp_bytes(struct fdiffs *d, const char *field, const uint8_t *a, size_t na,
                      const uint8_t *b, size_t nb)
{
        char sa[200], sb[200];

        if (na == nb && (!na || !memcmp(a, b, na)))
                return;
        if (d->count_only) {
                d->n++;
                return;
        }
        hex_bytes(sa, sizeof(sa), a, na);
        hex_bytes(sb, sizeof(sb), b, nb);
        diff_fd_str(d, field, sa, sb);
}

static void cmp_text(struct fdiffs *d, const char *field, const uint8_t *a, size_t na,
                     const uint8_t *b, size_t nb)
{
        struct fdiff *f;

        if (na == nb && (!na || !memcmp(a, b, na)))
                return;
        f = fd_add(d, field);
        if (!f)
                return;
        f->text = true;
        f->alen = na < sizeof(f->a) ? na : sizeof(f->a);
        f->blen = nb < sizeof(f->b) ? nb : sizeof(f->b);
        /* A side that wrote nothing may have no buffer at all (NULL). */
        if (f->alen)
                memcpy(f->a, a, f->alen);
        if (f->blen)
                memcpy(f->b, b, f->blen);
}

static void fmt_deliver(char *buf, size_t len, const struct hvt_disk_deliver *dv)
{
        snprintf(buf, len, "vector 0x%02x interrupted %04x:%" PRIx64, dv->vector, dv->cs, dv->ip);
}

/* The RFLAGS bits compared. */
static uint64_t rflags_mask(const struct diff_opts *o)
{
        return ~((diff_ignored(o, IGN_RFLAGS_RF) ? X86_RFLAGS_RF : 0) |
                 (diff_ignored(o, IGN_RFLAGS_AF) ? X86_RFLAGS_AF : 0));
}
/* Segment fields' names, spelt out once: comparing runs at every exit. */
#define SEG_FIELDS(s)                                               \
        {                                                           \
#s ".selector", #s ".base", #s ".limit", #s ".attr" \
        }
static const char *const seg_fields[][4] = {
        [HVT_ES] = SEG_FIELDS(es), [HVT_CS] = SEG_FIELDS(cs), [HVT_SS] = SEG_FIELDS(ss),
        [HVT_DS] = SEG_FIELDS(ds), [HVT_FS] = SEG_FIELDS(fs), [HVT_GS] = SEG_FIELDS(gs),
};
_Static_assert(sizeof(seg_fields) / sizeof(seg_fields[0]) == HVT_SREG_COUNT, "every segment");

static void cmp_state(const struct cmp *c, const struct hvt_vcpu_state *a,
                      const struct hvt_vcpu_state *b, const struct io_match *m, unsigned in_size,
                      bool string_io, struct fdiffs *d)
{
        const struct diff_opts *o = c->o;

        for (unsigned r = HVT_F_RAX; r <= HVT_F_R15; r++) {
                uint64_t mask = ~0ull;

                if (diff_ignored(o, IGN_GPR + r))
                        continue;
                if (m && m->relaxed) {
                        /* One side has run the instruction, the other not yet. */
                        if (r == HVT_F_RAX && in_size && !string_io)
                                mask = in_size >= 4 ? 0 : ~((1ull << (8 * in_size)) - 1);
                        if (string_io && (r == HVT_F_RCX || r == HVT_F_RSI || r == HVT_F_RDI))
                                mask = 0;
                }
                if ((a->gpr[r] & mask) != (b->gpr[r] & mask)) /* the name only when needed */
                        cmp_u64(d, hvt_field_name(r), a->gpr[r] & mask, b->gpr[r] & mask);
        }
        if (!m && !diff_ignored(o, IGN_RIP))
                cmp_u64(d, "rip", a->rip, b->rip);
        if (!diff_ignored(o, IGN_RFLAGS)) {
                uint64_t mask = rflags_mask(o);

                cmp_u64(d, "rflags", a->rflags & mask, b->rflags & mask);
        }
        for (unsigned s = 0; s < HVT_SREG_COUNT; s++) {
                const struct hvt_disk_seg *sa = &a->seg[s], *sb = &b->seg[s];

                if (!diff_ignored(o, IGN_SEL))
                        cmp_u64(d, seg_fields[s][0], sa->selector, sb->selector);
                if (!diff_ignored(o, IGN_BASE))
                        cmp_u64(d, seg_fields[s][1], sa->base, sb->base);
                if (!diff_ignored(o, IGN_LIMIT))
                        cmp_u64(d, seg_fields[s][2], sa->limit, sb->limit);
                if (!diff_ignored(o, IGN_ATTR))
                        cmp_u64(d, seg_fields[s][3], sa->attr, sb->attr);
        }
        if (!diff_ignored(o, IGN_CR0)) {
                uint64_t mask = diff_ignored(o, IGN_CR0_ET) ? ~X86_CR0_ET : ~0ull;

                cmp_u64(d, "cr0", a->cr0 & mask, b->cr0 & mask);
        }
        if (!diff_ignored(o, IGN_CR2))
                cmp_u64(d, "cr2", a->cr2, b->cr2);
        if (!diff_ignored(o, IGN_CR3))
                cmp_u64(d, "cr3", a->cr3, b->cr3);
        if (!diff_ignored(o, IGN_CR4))
                cmp_u64(d, "cr4", a->cr4, b->cr4);
        if (!diff_ignored(o, IGN_EFER))
                cmp_u64(d, "efer", a->efer, b->efer);
        if (!diff_ignored(o, IGN_GDT)) {
                cmp_u64(d, "gdt.base", a->gdt.base, b->gdt.base);
                cmp_u64(d, "gdt.limit", a->gdt.limit, b->gdt.limit);
        }
        if (!diff_ignored(o, IGN_IDT)) {
                cmp_u64(d, "idt.base", a->idt.base, b->idt.base);
                cmp_u64(d, "idt.limit", a->idt.limit, b->idt.limit);
        }
        if (!diff_ignored(o, IGN_INTR))
                cmp_u64(d, "intr", a->intr, b->intr);
}

static void cmp_exit_data(const struct cmp *c, const struct hvt_exit *a, const struct hvt_exit *b,
                          struct fdiffs *d)
{
        const struct diff_opts *o = c->o;

        switch (a->reason) {
        case HVT_EXIT_IO: {
                const struct hvt_disk_io *ia = &a->u.io.io, *ib = &b->u.io.io;

                cmp_u64(d, "io.port", ia->port, ib->port);
                if (ia->dir != ib->dir)
                        diff_fd_str(d, "io.dir", ia->dir == HVT_IO_OUT ? "out" : "in",
                                    ib->dir == HVT_IO_OUT ? "out" : "in");
                cmp_u64(d, "io.size", ia->size, ib->size);
                cmp_u64(d, "io.count", ia->count, ib->count);
                if (!diff_ignored(o, IGN_IO_DATA))
                        cmp_bytes(d, "io.data", a->u.io.data, (size_t)ia->size * ia->count,
                                  b->u.io.data, (size_t)ib->size * ib->count);
                break;
        }
        case HVT_EXIT_MMIO: {
                const struct hvt_disk_mmio *ma = &a->u.mmio, *mb = &b->u.mmio;

                cmp_u64(d, "mmio.addr", ma->addr, mb->addr);
                cmp_u64(d, "mmio.len", ma->len, mb->len);
                if (!ma->is_write != !mb->is_write)
                        diff_fd_str(d, "mmio.dir", ma->is_write ? "write" : "read",
                                    mb->is_write ? "write" : "read");
                if (!diff_ignored(o, IGN_MMIO_DATA))
                        cmp_bytes(d, "mmio.data", ma->data, ma->len < 8 ? ma->len : 8, mb->data,
                                  mb->len < 8 ? mb->len : 8);
                break;
        }
        case HVT_EXIT_DEBUG:
                cmp_u64(d, "debug.exception", a->u.debug.exception, b->u.debug.exception);
                cmp_u64(d, "debug.pc", a->u.debug.pc, b->u.debug.pc);
                if (!diff_ignored(o, IGN_DEBUG_DR)) {
                        cmp_u64(d, "debug.dr6", a->u.debug.dr6, b->u.debug.dr6);
                        /*
                         * Bit 10 always reads 1, but backends report DR7 as they
                         * keep it (emu 0x400, kvm_pvm 0): only the bits that mean
                         * something are compared.
                         */
                        cmp_u64(d, "debug.dr7", a->u.debug.dr7 | X86_DR7_FIXED,
                                b->u.debug.dr7 | X86_DR7_FIXED);
                }
                break;
        case HVT_EXIT_EXCEPTION:
                cmp_u64(d, "exception.vector", a->u.exception.vector, b->u.exception.vector);
                cmp_u64(d, "exception.error_code", a->u.exception.error_code,
                        b->u.exception.error_code);
                cmp_u64(d, "exception.cr2", a->u.exception.cr2, b->u.exception.cr2);
                break;
        case HVT_EXIT_FAIL_ENTRY:
                if (!diff_ignored(o, IGN_BACKEND_DATA))
                        cmp_u64(d, "fail_entry.hw_reason", a->u.fail_entry.hw_reason,
                                b->u.fail_entry.hw_reason);
                break;
        case HVT_EXIT_INTERNAL:
                if (!diff_ignored(o, IGN_BACKEND_DATA)) {
                        const unsigned na = a->u.internal.internal.ndata,
                                       nb = b->u.internal.internal.ndata;

                        cmp_u64(d, "internal.suberror", a->u.internal.internal.suberror,
                                b->u.internal.internal.suberror);
                        cmp_bytes(d, "internal.data", (const uint8_t *)a->u.internal.data,
                                  (na <= HVT_INTERNAL_MAX_DATA ? na : 0) * 8u,
                                  (const uint8_t *)b->u.internal.data,
                                  (nb <= HVT_INTERNAL_MAX_DATA ? nb : 0) * 8u);
                }
                break;
        default: break;
        }
}

static void cmp_deliveries(const struct cmp *c, const struct unit *a, const struct unit *b,
                           struct fdiffs *d)
{
        uint64_t fmask = rflags_mask(c->o);
        size_t n = a->ndv > b->ndv ? a->ndv : b->ndv;

        for (size_t i = 0; i < n; i++) {
                char sa[96], sb[96];

                if (i >= a->ndv || i >= b->ndv) {
                        if (d->count_only) {
                                d->n++;
                                continue;
                        }
                        if (i < a->ndv)
                                fmt_deliver(sa, sizeof(sa), &a->dv[i]);
                        if (i < b->ndv)
                                fmt_deliver(sb, sizeof(sb), &b->dv[i]);
                        diff_fd_str(d, "deliver", i < a->ndv ? sa : NULL, i < b->ndv ? sb : NULL);
                        continue;
                }
                cmp_u64(d, "deliver.vector", a->dv[i].vector, b->dv[i].vector);
                cmp_u64(d, "deliver.cs", a->dv[i].cs, b->dv[i].cs);
                cmp_u64(d, "deliver.ip", a->dv[i].ip, b->dv[i].ip);
                if (!diff_ignored(c->o, IGN_RFLAGS))
                        cmp_u64(d, "deliver.flags", a->dv[i].flags & fmask, b->dv[i].flags & fmask);
                cmp_u64(d, "deliver.sp", a->dv[i].sp, b->dv[i].sp);
                cmp_u64(d, "deliver.handler", a->dv[i].handler, b->dv[i].handler);
        }
}

/* The recorded bytes that belong to the instruction at RIP (all of them if it does not decode). */
static size_t insn_span(struct disasm *d, struct unit *u)
{
        struct disasm_insn in;

        if (u->insn_n < 0)
                u->insn_n = u->ex.insn_len && !replay_decode_exit(d, &u->ex, &in) &&
                                            in.len <= u->ex.insn_len
                                    ? in.len
                                    : u->ex.insn_len;
        return (size_t)u->insn_n;
}

/* Every difference between two units that the options do not excuse; returns their number. */
size_t diff_compare_units(const struct cmp *c, struct unit *a, struct unit *b, struct fdiffs *d)
{
        const struct diff_opts *o = c->o;
        const struct hvt_exit *ea = &a->ex, *eb = &b->ex;
        struct io_match m, *mp = NULL;
        size_t before = d->n;
        unsigned in_size = 0;

        if (ea->reason != eb->reason) {
                diff_fd_str(d, "reason", hvt_exit_reason_name(ea->reason),
                            hvt_exit_reason_name(eb->reason));
                return d->n - before;
        }
        if (ea->reason == HVT_EXIT_IO && !o->io_raw) {
                diff_match_io(c->A, a, c->B, b, &m);
                if (!m.raw) {
                        mp = &m;
                        cmp_u64(d, "io.insn", m.addr_a, m.addr_b);
                        if (ea->u.io.io.dir == HVT_IO_IN && eb->u.io.io.dir == HVT_IO_IN &&
                            ea->u.io.io.size == eb->u.io.io.size)
                                in_size = ea->u.io.io.size;
                }
        }
        /* Every state field compares equal when the states are the same bytes: the usual case. */
        if (memcmp(&ea->st, &eb->st, sizeof(ea->st)))
                cmp_state(c, &ea->st, &eb->st, mp, in_size, mp && (a->io_string || b->io_string),
                          d);
        if (!diff_ignored(o, IGN_INSN) && !(mp && mp->relaxed))
                cmp_bytes(d, "insn", ea->insn, insn_span(c->A->code.dis, a), eb->insn,
                          insn_span(c->B->code.dis, b));
        cmp_exit_data(c, ea, eb, d);
        if (!diff_ignored(o, IGN_DELIVER))
                cmp_deliveries(c, a, b, d);
        if (!diff_ignored(o, IGN_CONSOLE))
                cmp_text(d, "console", a->con, a->con_len, b->con, b->con_len);
        return d->n - before;
}

bool diff_units_equal(const struct cmp *c, struct unit *a, struct unit *b)
{
        struct fdiffs d = { .count_only = true };

        return diff_compare_units(c, a, b, &d) == 0;
}
