// SPDX-License-Identifier: MIT
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <hvtrace/hvtrace.h>

#include "../arch/x86.h"
#include "mode.h"

#define PAGE      4096ull
#define CODE_ATTR (0xb | HVT_SEG_S | HVT_SEG_P) /* execute/read, accessed */
#define DATA_ATTR (0x3 | HVT_SEG_S | HVT_SEG_P) /* read/write, accessed */
#define GiB       (1ull << 30)

uint64_t mode_tables_size(uint64_t mem_size)
{
        uint64_t pds = (mem_size + GiB - 1) / GiB;

        return (3 + (pds ? pds : 1)) * PAGE;
}

uint64_t mode_tables_base(unsigned mode, uint64_t mem_size)
{
        if (mode == HVT_MODE_REAL)
                return mem_size;
        if (mode_tables_size(mem_size) >= mem_size)
                return 0; /* no room: every guest overlaps, and mode_setup says so */
        return (mem_size - mode_tables_size(mem_size)) & ~(PAGE - 1);
}

unsigned mode_parse(const char *name)
{
        static const unsigned modes[] = { HVT_MODE_REAL, HVT_MODE_PROTECTED, HVT_MODE_LONG };

        for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
                if (!strcmp(name, hvt_mode_name(modes[i])))
                        return modes[i];
        return 0;
}

static void seg(struct hvt_disk_seg *s, uint16_t sel, uint16_t attr, uint32_t limit)
{
        s->selector = sel;
        s->base = 0;
        s->limit = limit;
        s->attr = attr;
}

/* 16-bit real mode, CS = DS = ES = SS = 0, SP just below the image. */
static int setup_real(struct hvt_vcpu_state *st, uint64_t entry, uint64_t load_addr, char *why,
                      size_t len)
{
        if (entry > 0xffff) {
                snprintf(why, len,
                         "real mode starts with CS=0: entry 0x%" PRIx64 " must be below 0x10000",
                         entry);
                return -EINVAL;
        }
        for (unsigned i = 0; i < HVT_SREG_COUNT; i++)
                seg(&st->seg[i], 0, i == HVT_CS ? CODE_ATTR : DATA_ATTR, 0xffff);
        st->cr0 &= ~(X86_CR0_PE | X86_CR0_PG);
        st->gpr[HVT_F_RSP] = load_addr <= 0xffff ? load_addr : 0;
        st->idt.base = 0;
        st->idt.limit = 0x3ff;
        return 0;
}

/* A GDT descriptor from base 0, a limit in 4 KiB pages and access/flag bits. */
static uint64_t descriptor(uint8_t access, uint8_t flags)
{
        return 0xffffull | (0xfull << 48) | ((uint64_t)access << 40) | ((uint64_t)flags << 52);
}

static void write_gdt(struct backend *b, uint64_t base, struct hvt_vcpu_state *st)
{
        const uint64_t gdt[] = {
                0,
                descriptor(0x9b, 0xc), /* 0x08: code, 32-bit, 4 KiB granular */
                descriptor(0x93, 0xc), /* 0x10: data, 4 KiB granular */
                descriptor(0x9b, 0xa), /* 0x18: code, 64-bit (L) */
                descriptor(0x9b, 0x8), /* 0x20: code, 16-bit */
        };

        memcpy(b->mem + base, gdt, sizeof(gdt));
        memset(&st->gdt, 0, sizeof(st->gdt));
        st->gdt.base = base;
        st->gdt.limit = sizeof(gdt) - 1;
        /* No IDT until the guest loads one. */
        memset(&st->idt, 0, sizeof(st->idt));
}

static void flat_data(struct hvt_vcpu_state *st)
{
        for (unsigned i = 0; i < HVT_SREG_COUNT; i++)
                if (i != HVT_CS)
                        seg(&st->seg[i], MODE_SEL_DATA, DATA_ATTR | HVT_SEG_DB | HVT_SEG_G,
                            0xffffffff);
}

static int check_fits(uint64_t base, uint64_t mem_size, uint64_t entry, char *why, size_t len)
{
        if (base < 2 * PAGE || base >= mem_size) {
                snprintf(why, len,
                         "guest memory (%" PRIu64 " bytes) is too small for hvrec's tables",
                         mem_size);
                return -EINVAL;
        }
        if (entry >= base) {
                snprintf(why, len,
                         "entry 0x%" PRIx64 " lies in hvrec's tables at 0x%" PRIx64 "-0x%" PRIx64
                         " (see docs/guest-abi.md)",
                         entry, base, mem_size - 1);
                return -EINVAL;
        }
        return 0;
}

/* 32-bit flat protected mode, paging off. */
static int setup_protected(struct backend *b, struct hvt_vcpu_state *st, uint64_t entry, char *why,
                           size_t len)
{
        uint64_t base = mode_tables_base(HVT_MODE_PROTECTED, b->mem_size);
        int err = check_fits(base, b->mem_size, entry, why, len);

        if (err)
                return err;
        if (entry > 0xffffffffull) {
                snprintf(why, len, "protected mode: entry 0x%" PRIx64 " is above 4 GiB", entry);
                return -EINVAL;
        }
        write_gdt(b, base, st);
        seg(&st->seg[HVT_CS], MODE_SEL_CODE32, CODE_ATTR | HVT_SEG_DB | HVT_SEG_G, 0xffffffff);
        flat_data(st);
        st->cr0 = X86_CR0_PE | X86_CR0_ET | X86_CR0_NE;
        st->cr3 = 0;
        st->cr4 = 0;
        st->efer = 0;
        st->gpr[HVT_F_RSP] = base;
        return 0;
}

/* 64-bit long mode with identity-mapped 2 MiB pages over all of RAM. */
static int setup_long(struct backend *b, struct hvt_vcpu_state *st, uint64_t entry, char *why,
                      size_t len)
{
        uint64_t base = mode_tables_base(HVT_MODE_LONG, b->mem_size);
        uint64_t pml4 = base + PAGE, pdpt = base + 2 * PAGE, pd = base + 3 * PAGE;
        uint64_t pds = (b->mem_size + GiB - 1) / GiB;
        uint64_t *t;
        int err = check_fits(base, b->mem_size, entry, why, len);

        if (err)
                return err;
        write_gdt(b, base, st);
        memset(b->mem + pml4, 0, (2 + pds) * PAGE);
        t = (uint64_t *)(b->mem + pml4);
        t[0] = pdpt | X86_PTE_P | X86_PTE_W;
        t = (uint64_t *)(b->mem + pdpt);
        for (uint64_t i = 0; i < pds; i++)
                t[i] = (pd + i * PAGE) | X86_PTE_P | X86_PTE_W;
        t = (uint64_t *)(b->mem + pd);
        for (uint64_t i = 0; i < pds * 512; i++)
                t[i] = (i << 21) | X86_PTE_P | X86_PTE_W | X86_PTE_PS;

        seg(&st->seg[HVT_CS], MODE_SEL_CODE64, CODE_ATTR | HVT_SEG_L | HVT_SEG_G, 0xffffffff);
        flat_data(st);
        st->cr0 = X86_CR0_PE | X86_CR0_PG | X86_CR0_ET | X86_CR0_NE;
        st->cr3 = pml4;
        st->cr4 = X86_CR4_PAE;
        st->efer = X86_EFER_LME | X86_EFER_LMA;
        st->gpr[HVT_F_RSP] = base;
        return 0;
}

int mode_setup(struct backend *b, unsigned mode, uint64_t entry, uint64_t load_addr, char *why,
               size_t len)
{
        struct hvt_vcpu_state st;
        int err;

        err = b->ops->get_state(b, &st);
        if (err) {
                snprintf(why, len, "reading the initial vCPU state: %s", strerror(-err));
                return err;
        }
        memset(st.gpr, 0, sizeof(st.gpr));
        st.rip = entry;
        st.rflags = X86_RFLAGS_FIXED; /* IF=0: guests enable interrupts themselves */
        switch (mode) {
        case HVT_MODE_REAL: err = setup_real(&st, entry, load_addr, why, len); break;
        case HVT_MODE_PROTECTED: err = setup_protected(b, &st, entry, why, len); break;
        case HVT_MODE_LONG: err = setup_long(b, &st, entry, why, len); break;
        default:
                snprintf(why, len, "mode %s is not supported", hvt_mode_name(mode));
                return -ENOTSUP;
        }
        if (err)
                return err;
        err = b->ops->set_state(b, &st);
        if (err)
                snprintf(why, len, "setting the initial vCPU state: %s", strerror(-err));
        return err;
}
