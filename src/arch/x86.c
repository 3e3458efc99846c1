// SPDX-License-Identifier: MIT
#include <errno.h>
#include <string.h>

#include "x86.h"

/* ---- the page walk ------------------------------------------------------------------ */

/* A walk in progress: where entries come from, and where their addresses go. */
struct walk {
        x86_entry_reader *read;
        const void *ctx;
        uint64_t *ent;
        unsigned n;
};

/* The entry at gpa, logged; -EFAULT when it is not present. */
static int entry(struct walk *w, uint64_t gpa, unsigned size, uint64_t *e)
{
        int err = w->read(w->ctx, gpa, size, e);

        if (err)
                return err;
        if (w->ent && w->n < X86_MAX_WALK)
                w->ent[w->n++] = gpa;
        return (*e & X86_PTE_P) ? 0 : -EFAULT;
}

static int walk_32(struct walk *w, const struct x86_paging *pg, uint32_t la, uint64_t *gpa)
{
        uint64_t pde, pte;
        int err;

        err = entry(w, (pg->cr3 & X86_PTE32_ADDR) + ((la >> 22) & 0x3ff) * 4, 4, &pde);
        if (err)
                return err;
        if ((pde & X86_PTE_PS) && (pg->cr4 & X86_CR4_PSE)) {
                /* A 4 MiB page: address bits 31:22 (PSE-36's high bits are not supported). */
                *gpa = (pde & 0xffc00000ull) | (la & 0x3fffff);
                return 0;
        }
        err = entry(w, (pde & X86_PTE32_ADDR) + ((la >> 12) & 0x3ff) * 4, 4, &pte);
        if (err)
                return err;
        *gpa = (pte & X86_PTE32_ADDR) | (la & 0xfff);
        return 0;
}

/* PAE (3 levels) and 4-level paging share the 8-byte entry walk. */
static int walk_64(struct walk *w, uint64_t table, uint64_t la, int levels, uint64_t *gpa)
{
        uint64_t e;

        for (int level = levels; level >= 1; level--) {
                unsigned shift = 12 + 9 * (unsigned)(level - 1);
                unsigned idx = (unsigned)((la >> shift) & 0x1ff);
                int err;

                if (levels == 3 && level == 3)
                        idx = (unsigned)((la >> 30) & 3);
                err = entry(w, table + idx * 8ull, 8, &e);
                if (err)
                        return err;
                /* Large pages: 2 MiB in a PDE, 1 GiB in a 4-level PDPTE (PAE's has no PS). */
                if ((level == 2 || (level == 3 && levels == 4)) && (e & X86_PTE_PS)) {
                        uint64_t span = 1ull << shift;

                        *gpa = (e & X86_PTE_ADDR & ~(span - 1)) | (la & (span - 1));
                        return 0;
                }
                table = e & X86_PTE_ADDR;
        }
        *gpa = table | (la & 0xfff);
        return 0;
}

int x86_walk(const struct x86_paging *pg, uint64_t la, x86_entry_reader *read, const void *ctx,
             uint64_t *gpa, uint64_t ent[X86_MAX_WALK], unsigned *nent)
{
        struct walk w = { .read = read, .ctx = ctx, .ent = ent };
        int err;

        if (pg->efer & X86_EFER_LMA)
                err = walk_64(&w, pg->cr3 & X86_PTE_ADDR, la, 4, gpa);
        else if (pg->cr4 & X86_CR4_PAE)
                err = walk_64(&w, pg->cr3 & X86_PAE_CR3, la & 0xffffffffull, 3, gpa);
        else
                err = walk_32(&w, pg, (uint32_t)la, gpa);
        if (nent)
                *nent = w.n;
        return err;
}

int x86_mem_entry(const void *ctx, uint64_t gpa, unsigned size, uint64_t *val)
{
        const struct x86_mem *m = ctx;
        uint64_t v = 0;

        if (gpa > m->size || size > m->size - gpa || size > sizeof(v))
                return -EFAULT;
        memcpy(&v, m->ram + gpa, size);
        *val = v;
        return 0;
}

int x86_translate_logged(const struct x86_mem *m, const struct hvt_vcpu_state *st, uint64_t la,
                         uint64_t *gpa, uint64_t ent[X86_MAX_WALK], unsigned *nent)
{
        struct x86_paging pg = x86_paging_of(st);
        int err;

        if (!x86_paging_on(pg.cr0)) {
                if (nent)
                        *nent = 0;
                *gpa = (pg.cr0 & X86_CR0_PE) ? (la & 0xffffffffull) : la;
                return *gpa < m->size ? 0 : -EFAULT;
        }
        err = x86_walk(&pg, la, x86_mem_entry, m, gpa, ent, nent);
        /* A page table may map a linear page beyond RAM: that byte does not exist. */
        if (!err && *gpa >= m->size)
                err = -EFAULT;
        return err;
}

int x86_translate(const struct x86_mem *m, const struct hvt_vcpu_state *st, uint64_t la,
                  uint64_t *gpa)
{
        return x86_translate_logged(m, st, la, gpa, NULL, NULL);
}

bool x86_same_boundary(const struct hvt_vcpu_state *a, const struct hvt_vcpu_state *b,
                       uint64_t rflags_ignored)
{
        if (a->rip != b->rip || memcmp(a->gpr, b->gpr, sizeof(a->gpr)) ||
            ((a->rflags ^ b->rflags) & ~rflags_ignored))
                return false;
        for (unsigned i = 0; i < HVT_SREG_COUNT; i++)
                if (a->seg[i].selector != b->seg[i].selector || a->seg[i].base != b->seg[i].base)
                        return false;
        return a->cr0 == b->cr0 && a->cr3 == b->cr3 && a->cr4 == b->cr4 && a->efer == b->efer;
}

size_t x86_read_linear(const struct x86_mem *m, const struct hvt_vcpu_state *st, uint64_t la,
                       void *buf, size_t len)
{
        uint8_t *out = buf;
        size_t done = 0;

        while (done < len) {
                uint64_t gpa, chunk;

                if (x86_translate(m, st, la + done, &gpa))
                        break;
                /* Stay within the page: the next one may map elsewhere. */
                chunk = 4096 - ((la + done) & 0xfff);
                if (chunk > len - done)
                        chunk = len - done;
                if (chunk > m->size - gpa)
                        chunk = m->size - gpa;
                memcpy(out + done, m->ram + gpa, chunk);
                done += chunk;
        }
        return done;
}

uint64_t x86_linear(const struct hvt_vcpu_state *st, unsigned sreg, uint64_t off)
{
        const struct hvt_disk_seg *s = &st->seg[sreg];

        switch (hvt_state_mode(st)) {
        case HVT_MODE_REAL: return s->base + (off & 0xffff);
        case HVT_MODE_LONG:
                if (st->seg[HVT_CS].attr & HVT_SEG_L)
                        return (sreg == HVT_FS || sreg == HVT_GS) ? s->base + off : off;
                /* compatibility mode segments like protected mode */
                __attribute__((fallthrough));
        default:
                if (!(s->attr & HVT_SEG_DB) && sreg == HVT_SS)
                        off &= 0xffff;
                return (s->base + off) & 0xffffffffull;
        }
}

void x86_reset_state(struct hvt_vcpu_state *st)
{
        memset(st, 0, sizeof(*st));
        for (unsigned i = 0; i < HVT_SREG_COUNT; i++) {
                st->seg[i].limit = 0xffff;
                st->seg[i].attr = (i == HVT_CS ? 0xb : 0x3) | HVT_SEG_S | HVT_SEG_P;
        }
        st->seg[HVT_CS].selector = 0xf000;
        st->seg[HVT_CS].base = 0xffff0000;
        st->rip = 0xfff0;
        st->rflags = 2;
        st->cr0 = 0x60000010;
        st->gdt.limit = 0xffff;
        st->idt.limit = 0xffff;
}

/* ---- descriptors and gates ---------------------------------------------------------- */

bool x86_code_descriptor(const uint8_t d[8], bool long_mode, uint64_t *base, unsigned *bits)
{
        uint32_t hi = x86_desc_hi(d);

        if (!(hi & X86_DESC_P) || !(hi & X86_DESC_S) ||
            !(hi & (X86_TYPE_CODE << X86_DESC_TYPE_SHIFT)))
                return false;
        if (long_mode && (hi & X86_DESC_L)) {
                *base = 0;
                *bits = 64;
                return true;
        }
        *base = x86_desc_base(d);
        *bits = (hi & X86_DESC_DB) ? 32 : 16;
        return true;
}

unsigned x86_gate_size(unsigned mode)
{
        return mode == HVT_MODE_REAL ? 4 : mode == HVT_MODE_LONG ? 16 : 8;
}

bool x86_gate_addr(unsigned mode, uint64_t base, uint32_t limit, unsigned v, uint64_t *la)
{
        uint64_t size = x86_gate_size(mode);

        if ((uint64_t)v * size + size - 1 > limit)
                return false;
        *la = base + (uint64_t)v * size;
        return true;
}

bool x86_gate_decode(unsigned mode, const uint8_t *e, struct x86_gate *g)
{
        uint32_t hi;

        memset(g, 0, sizeof(*g));
        g->selector = (uint16_t)(e[2] | e[3] << 8);
        g->offset = (uint64_t)e[0] | (uint64_t)e[1] << 8;
        if (mode == HVT_MODE_REAL) {
                g->dpl = 3;
                g->bits = 16;
                g->present = true;
                return true;
        }
        hi = x86_desc_hi(e);
        g->type = (hi & X86_DESC_S) ? 0 : (uint8_t)((hi >> X86_DESC_TYPE_SHIFT) & 0xf);
        g->dpl = (uint8_t)((hi >> X86_DESC_DPL_SHIFT) & 3);
        g->present = hi & X86_DESC_P;
        switch (g->type) {
        case X86_GATE_INT16:
        case X86_GATE_TRAP16:
                if (mode == HVT_MODE_LONG)
                        break; /* long mode has only 64-bit gates */
                g->bits = 16;
                break;
        case X86_GATE_INT32:
        case X86_GATE_TRAP32:
                g->offset |= (uint64_t)e[6] << 16 | (uint64_t)e[7] << 24;
                if (mode != HVT_MODE_LONG) {
                        g->bits = 32;
                        break;
                }
                for (unsigned i = 0; i < 4; i++)
                        g->offset |= (uint64_t)e[8 + i] << (32 + 8 * i);
                g->ist = e[4] & 7;
                g->bits = 64;
                break;
        default: break;
        }
        if (!g->bits) {
                g->offset = 0; /* a task gate's or a reserved type's offset field means nothing */
                return false;
        }
        g->trap = g->type & 1;
        return g->present;
}

/* ---- stacks and frames --------------------------------------------------------------- */

struct x86_stack x86_stack_of(const struct hvt_vcpu_state *st)
{
        const struct hvt_disk_seg *ss = &st->seg[HVT_SS];
        struct x86_stack s = { .base = ss->base, .mask = 0xffffull };

        if (hvt_state_code_bits(st) == 64) {
                s.base = 0;
                s.mask = ~0ull;
        } else if ((st->cr0 & X86_CR0_PE) && (ss->attr & HVT_SEG_DB)) {
                s.mask = 0xffffffffull;
        }
        return s;
}

uint64_t x86_stack_la(const struct x86_stack *s, uint64_t sp, uint64_t off)
{
        uint64_t la = s->base + ((sp + off) & s->mask);

        return s->mask == ~0ull ? la : la & 0xffffffffull;
}

uint64_t x86_stack_move(const struct x86_stack *s, uint64_t sp, int64_t delta)
{
        return (sp & ~s->mask) | ((sp + (uint64_t)delta) & s->mask);
}

bool x86_stack_read(const struct x86_stack *s, uint64_t sp, uint64_t off, unsigned n,
                    x86_byte_reader *read, void *ctx, uint64_t *val)
{
        uint64_t v = 0;

        if (n > sizeof(v))
                return false;
        for (unsigned i = 0; i < n; i++) {
                uint8_t b;

                if (!read(ctx, x86_stack_la(s, sp, off + i), &b))
                        return false;
                v |= (uint64_t)b << (8 * i);
        }
        *val = v;
        return true;
}

struct x86_slot x86_frame_slot(unsigned bits, bool err, enum x86_frame_slot s)
{
        unsigned w = bits / 8;
        struct x86_slot at = { .off = ((unsigned)s + (err ? 1 : 0)) * w, .len = w };

        if (s == X86_FRAME_CS || s >= X86_FRAME_SS)
                at.len = 2; /* a selector, in a slot of the frame's width */
        return at;
}

unsigned x86_frame_size(unsigned bits, bool err, unsigned nslots)
{
        return (nslots + (err ? 1 : 0)) * (bits / 8);
}

unsigned x86_frame_slots(unsigned bits, bool stack_switch, bool vm86)
{
        if (vm86)
                return X86_FRAME_SLOTS;
        return bits == 64 || stack_switch ? X86_FRAME_SS + 1 : X86_FRAME_FLAGS + 1;
}
