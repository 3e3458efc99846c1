// SPDX-License-Identifier: MIT
#include <errno.h>
#include <string.h>

#include "x86.h"

#define PTE_P     0x1ull
#define PTE_PS    0x80ull
#define ADDR_MASK 0x000ffffffffff000ull

/* Where a walk records the paging entries it read (NULL: nowhere). */
struct walk_log {
        uint64_t *ent;
        unsigned n;
};

static int read_entry(const struct x86_mem *m, struct walk_log *log, uint64_t gpa, unsigned size,
                      uint64_t *out)
{
        uint64_t v = 0;

        if (gpa > m->size || size > m->size - gpa)
                return -EFAULT;
        memcpy(&v, m->ram + gpa, size);
        *out = v;
        if (log && log->ent && log->n < X86_MAX_WALK)
                log->ent[log->n++] = gpa;
        return 0;
}

static int walk_32(const struct x86_mem *m, struct walk_log *log, const struct hvt_vcpu_state *st,
                   uint32_t la, uint64_t *gpa)
{
        uint64_t pde, pte;

        if (read_entry(m, log, (st->cr3 & 0xfffff000ull) + ((la >> 22) & 0x3ff) * 4, 4, &pde) ||
            !(pde & PTE_P))
                return -EFAULT;
        if ((pde & PTE_PS) && (st->cr4 & X86_CR4_PSE)) {
                *gpa = (pde & 0xffc00000ull) | (la & 0x3fffff);
                return 0;
        }
        if (read_entry(m, log, (pde & 0xfffff000ull) + ((la >> 12) & 0x3ff) * 4, 4, &pte) ||
            !(pte & PTE_P))
                return -EFAULT;
        *gpa = (pte & 0xfffff000ull) | (la & 0xfff);
        return 0;
}

/* PAE (3 levels) and 4-level paging share the 8-byte entry walk. */
static int walk_64(const struct x86_mem *m, struct walk_log *log, uint64_t table, uint64_t la,
                   int levels, uint64_t *gpa)
{
        uint64_t e;

        for (int level = levels; level >= 1; level--) {
                unsigned shift = 12 + 9 * (unsigned)(level - 1);
                unsigned idx = (unsigned)((la >> shift) & 0x1ff);

                if (levels == 3 && level == 3)
                        idx = (unsigned)((la >> 30) & 3);
                if (read_entry(m, log, table + idx * 8ull, 8, &e) || !(e & PTE_P))
                        return -EFAULT;
                if (level > 1 && level < 4 && (e & PTE_PS)) {
                        uint64_t span = 1ull << shift;

                        *gpa = (e & ADDR_MASK & ~(span - 1)) | (la & (span - 1));
                        return 0;
                }
                table = e & ADDR_MASK;
        }
        *gpa = table | (la & 0xfff);
        return 0;
}

static int walk(const struct x86_mem *m, struct walk_log *log, const struct hvt_vcpu_state *st,
                uint64_t la, uint64_t *gpa)
{
        if (!(st->cr0 & X86_CR0_PG) || !(st->cr0 & X86_CR0_PE)) {
                *gpa = (st->cr0 & X86_CR0_PE) ? (la & 0xffffffffull) : la;
                return *gpa < m->size ? 0 : -EFAULT;
        }
        if (st->efer & X86_EFER_LMA)
                return walk_64(m, log, st->cr3 & ADDR_MASK, la, 4, gpa);
        if (st->cr4 & X86_CR4_PAE)
                return walk_64(m, log, st->cr3 & 0xffffffe0ull, la & 0xffffffffull, 3, gpa);
        return walk_32(m, log, st, (uint32_t)la, gpa);
}

int x86_translate_logged(const struct x86_mem *m, const struct hvt_vcpu_state *st, uint64_t la,
                         uint64_t *gpa, uint64_t ent[X86_MAX_WALK], unsigned *nent)
{
        struct walk_log log = { .ent = ent };
        int err = walk(m, &log, st, la, gpa);

        /* A page table may map a linear page beyond RAM: that byte does not exist. */
        if (!err && *gpa >= m->size)
                err = -EFAULT;
        if (nent)
                *nent = log.n;
        return err;
}

int x86_translate(const struct x86_mem *m, const struct hvt_vcpu_state *st, uint64_t la,
                  uint64_t *gpa)
{
        return x86_translate_logged(m, st, la, gpa, NULL, NULL);
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

bool x86_code_descriptor(const uint8_t d[8], bool long_mode, uint64_t *base, unsigned *bits)
{
        /* P, S (code or data) and the code bit of the type */
        if (!(d[5] & 0x80) || !(d[5] & 0x10) || !(d[5] & 0x08))
                return false;
        if (long_mode && (d[6] & 0x20)) {
                *base = 0;
                *bits = 64;
                return true;
        }
        *base = (uint64_t)d[2] | (uint64_t)d[3] << 8 | (uint64_t)d[4] << 16 | (uint64_t)d[7] << 24;
        *bits = (d[6] & 0x40) ? 32 : 16;
        return true;
}
