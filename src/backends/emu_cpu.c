// SPDX-License-Identifier: MIT
/* emu backend: CPU state via Unicorn's context blob; apart, as it rests on QEMU's own layout. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "emu.h"

/* ---- the context blob ------------------------------------------------------ */

/* Make ctx hold the current state. */
int emu_snap_get(struct emu_backend *e)
{
        if (e->snap)
                return 0;
        if (uc_context_save(e->uc, e->ctx) != UC_ERR_OK)
                return -EIO;
        e->snap = true;
        return 0;
}

/* Load ctx, as modified, into the CPU. */
int emu_snap_put(struct emu_backend *e)
{
        return uc_context_restore(e->uc, e->ctx) == UC_ERR_OK ? 0 : -EIO;
}

/* QEMU's derived flags for the state in ctx (cpu_x86_load_seg_cache and friends). */
uint32_t emu_hflags_for(const struct emu_backend *e, uint64_t rflags)
{
        uint64_t cr0 = emu_env_u64(e, ENV_CR), cr4 = emu_env_u64(e, ENV_CR + 32);
        uint64_t efer = emu_env_u64(e, ENV_EFER);
        uint32_t hf = emu_env_u32(e, ENV_HFLAGS) & ~HF_DERIVED;
        struct qseg cs, ss, ds, es;
        bool pe = cr0 & X86_CR0_PE;

        emu_env_seg(e, HVT_CS, &cs);
        emu_env_seg(e, HVT_SS, &ss);
        emu_env_seg(e, HVT_DS, &ds);
        emu_env_seg(e, HVT_ES, &es);
        if (pe)
                hf |= HF_PE | ((ss.flags >> X86_DESC_DPL_SHIFT) & 3);
        hf |= (uint32_t)((cr0 >> 1) & 7) << HF_MP_SHIFT;
        if (efer & X86_EFER_LMA)
                hf |= HF_LMA;
        if ((efer & X86_EFER_LMA) && (cs.flags & X86_DESC_L))
                hf |= HF_CS32 | HF_CS64;
        else if (cs.flags & X86_DESC_DB)
                hf |= HF_CS32;
        if (ss.flags & X86_DESC_DB)
                hf |= HF_SS32;
        if (!(hf & HF_CS64) &&
            (!pe || (rflags & X86_RFLAGS_VM) || !(hf & HF_CS32) || (ds.base | es.base | ss.base)))
                hf |= HF_ADDSEG;
        if (cr4 & X86_CR4_OSFXSR)
                hf |= HF_OSFXSR;
        if (cr4 & X86_CR4_SMAP)
                hf |= HF_SMAP;
        return hf;
}

static uint16_t attr_of(uint32_t flags, bool pe)
{
        uint16_t attr = (uint16_t)(((flags >> 8) & 0xff) | ((flags >> 12) & 0xf00));

        if (pe && !(flags & X86_DESC_P))
                attr |= HVT_SEG_UNUSABLE;
        return attr;
}

static uint32_t flags_of(uint16_t attr)
{
        return ((uint32_t)(attr & 0xff) << 8) | ((uint32_t)(attr & 0xf00) << 12);
}

const int emu_gprs[16] = {
        UC_X86_REG_RAX, UC_X86_REG_RCX, UC_X86_REG_RDX, UC_X86_REG_RBX,
        UC_X86_REG_RSP, UC_X86_REG_RBP, UC_X86_REG_RSI, UC_X86_REG_RDI,
        UC_X86_REG_R8,  UC_X86_REG_R9,  UC_X86_REG_R10, UC_X86_REG_R11,
        UC_X86_REG_R12, UC_X86_REG_R13, UC_X86_REG_R14, UC_X86_REG_R15,
};

/*
 * Check that the blob is the CPUX86State this file knows, against what the
 * API reads and writes.  Leaves the CPU in an unspecified state.
 */
int emu_calibrate(struct emu_backend *e, char *why, size_t len)
{
        size_t size = uc_context_size(e->uc);
        uc_x86_mmr gdt = { 0, 0x123456789a0ull, 0x1234, 0 },
                   idt = { 0, 0xfedcba98760ull, 0x4321, 0 };
        uc_x86_msr msr = { X86_MSR_EFER, 0 };
        uint64_t v, cr2 = 0xc2c2c2c2000ull, cr3 = 0x3c3c3000ull;
        struct qseg fs;
        size_t off;

        for (unsigned i = 0; i < 16; i++) {
                v = 0x0101010101010101ull * (i + 1) ^ 0x5a5a0000a5a5ull;
                uc_reg_write(e->uc, emu_gprs[i], &v);
        }
        v = 0x7e57c0de1234ull;
        uc_reg_write(e->uc, UC_X86_REG_RIP, &v);
        uc_reg_write(e->uc, UC_X86_REG_GDTR, &gdt);
        uc_reg_write(e->uc, UC_X86_REG_IDTR, &idt);
        uc_reg_write(e->uc, UC_X86_REG_CR2, &cr2);
        uc_reg_write(e->uc, UC_X86_REG_CR3, &cr3);
        for (unsigned i = 0; i < 4; i++) {
                v = 0xd0d0d0d0d0d0d000ull + i;
                uc_reg_write(e->uc, UC_X86_REG_DR0 + (int)i, &v);
        }
        if (uc_context_save(e->uc, e->ctx) != UC_ERR_OK)
                goto bad;
        /* The blob starts after the context's own header: find the registers. */
        for (off = 0; off <= 64 && off + ENV_MIN_SIZE <= size; off += 8) {
                memcpy(&v, (uint8_t *)e->ctx + off, 8);
                if (v == (0x0101010101010101ull ^ 0x5a5a0000a5a5ull))
                        break;
        }
        if (off > 64 || off + ENV_MIN_SIZE > size)
                goto bad;
        e->env = (uint8_t *)e->ctx + off;
        e->env_size = size - off;
        for (unsigned i = 0; i < 16; i++)
                if (emu_env_u64(e, ENV_REGS + 8 * i) !=
                    (0x0101010101010101ull * (i + 1) ^ 0x5a5a0000a5a5ull))
                        goto bad;
        if (emu_env_u64(e, ENV_EIP) != 0x7e57c0de1234ull ||
            emu_env_u64(e, ENV_GDT + 8) != gdt.base || emu_env_u32(e, ENV_GDT + 16) != gdt.limit ||
            emu_env_u64(e, ENV_IDT + 8) != idt.base || emu_env_u32(e, ENV_IDT + 16) != idt.limit ||
            emu_env_u64(e, ENV_CR + 16) != cr2 || (emu_env_u64(e, ENV_CR + 24) & 0xffffffff) != cr3)
                goto bad;
        /*
         * The exception state QEMU keeps next to dr[]: the error code of the
         * last exception, and old_exception, which the engine's own #DF
         * logic reads and only QEMU's interrupt delivery (never run by
         * Unicorn) resets to -1.  After a reset it is -1.
         */
        for (e->dr_off = ENV_EFER + 8; e->dr_off + 4 * 8 + DR_OLD_EXC <= e->env_size;
             e->dr_off += 8)
                if (emu_env_u64(e, e->dr_off) == 0xd0d0d0d0d0d0d000ull)
                        break;
        if (e->dr_off + 4 * 8 + DR_OLD_EXC > e->env_size)
                goto bad;
        for (unsigned i = 1; i < 4; i++)
                if (emu_env_u64(e, e->dr_off + 8 * i) != 0xd0d0d0d0d0d0d000ull + i)
                        goto bad;
        if (emu_env_u32(e, e->dr_off + DR_OLD_EXC) != 0xffffffffu)
                goto bad;
        for (unsigned i = 0; i < 4; i++)
                emu_env_put64(e, e->dr_off + 8 * i, 0);
        /* EFER and the segment caches: written in the blob, read through the API. */
        emu_env_put64(e, ENV_EFER, 0x500);
        memset(&fs, 0, sizeof(fs));
        fs.selector = 0x1234;
        fs.base = 0xabcde000;
        fs.limit = 0xfffff;
        emu_env_put_seg(e, HVT_FS, &fs);
        if (emu_snap_put(e))
                goto bad;
        e->snap = true;
        if (uc_reg_read(e->uc, UC_X86_REG_MSR, &msr) != UC_ERR_OK || msr.value != 0x500 ||
            emu_reg_read(e, UC_X86_REG_FS_BASE) != fs.base ||
            (emu_reg_read(e, UC_X86_REG_FS) & 0xffff) != fs.selector)
                goto bad;
        return 0;
bad:
        snprintf(why, len,
                 "Unicorn %s: its x86 CPU state is not laid out as this backend knows "
                 "(QEMU 5 CPUX86State)",
                 e->version + 8);
        return -ENOTSUP;
}

/* ---- state ----------------------------------------------------------------------- */

/* RIP for linear address la in the current code segment. */
uint64_t emu_rip_of(const struct emu_backend *e, uint64_t la)
{
        uint32_t hf = emu_env_u32(e, ENV_HFLAGS);
        struct qseg cs;

        if (hf & HF_CS64)
                return la;
        emu_env_seg(e, HVT_CS, &cs);
        return (la - cs.base) & ((hf & HF_CS32) ? 0xffffffffull : 0xffff);
}

/*
 * Put RIP at linear la.  Unicorn's code hook leaves the linear address in
 * EIP (wrong whenever the CS base is not 0): every stop in the hook goes
 * through here.
 */
int emu_set_rip_linear(struct emu_backend *e, uint64_t la)
{
        uint64_t rip;

        if (emu_snap_get(e))
                return -EIO;
        rip = emu_rip_of(e, la);
        if (emu_env_u64(e, ENV_EIP) != rip) {
                emu_env_put64(e, ENV_EIP, rip);
                return emu_snap_put(e);
        }
        return 0;
}

static uint64_t intr_bits(const struct emu_backend *e, uint64_t rflags)
{
        uint64_t intr = HVT_INTR_VALID_SHADOW | HVT_INTR_VALID_READY | HVT_INTR_VALID_IF |
                        HVT_INTR_VALID_PENDING | HVT_INTR_VALID_NMI | e->shadow;

        if (rflags & X86_RFLAGS_IF)
                intr |= HVT_INTR_IF;
        if (e->nmi_blocked)
                intr |= HVT_INTR_NMI_BLOCKED;
        /* A held NMI is queued too: an exit with nothing pending would make it look lost. */
        if (e->queued || e->nmi_pending)
                intr |= HVT_INTR_PENDING;
        if ((rflags & X86_RFLAGS_IF) && !e->shadow && !e->queued)
                intr |= HVT_INTR_READY;
        if (e->window)
                intr |= HVT_INTR_WINDOW_REQ;
        return intr;
}

int emu_get_state(struct backend *b, struct hvt_vcpu_state *st)
{
        struct emu_backend *e = emu_of(b);
        bool pe;

        if (emu_snap_get(e))
                return -EIO;
        memset(st, 0, sizeof(*st));
        memcpy(st->gpr, e->env + ENV_REGS, sizeof(st->gpr));
        st->rip = emu_env_u64(e, ENV_EIP);
        st->rflags = emu_reg_read(e, UC_X86_REG_RFLAGS);
        st->cr0 = emu_env_u64(e, ENV_CR);
        st->cr2 = emu_env_u64(e, ENV_CR + 16);
        st->cr3 = emu_env_u64(e, ENV_CR + 24);
        st->cr4 = emu_env_u64(e, ENV_CR + 32);
        st->efer = emu_env_u64(e, ENV_EFER);
        pe = st->cr0 & X86_CR0_PE;
        for (unsigned i = 0; i < HVT_SREG_COUNT; i++) {
                struct qseg s;

                emu_env_seg(e, i, &s);
                st->seg[i].selector = (uint16_t)s.selector;
                st->seg[i].base = s.base;
                st->seg[i].limit = s.limit;
                st->seg[i].attr = attr_of(s.flags, pe);
        }
        st->gdt.base = emu_env_u64(e, ENV_GDT + 8);
        st->gdt.limit = (uint16_t)emu_env_u32(e, ENV_GDT + 16);
        st->idt.base = emu_env_u64(e, ENV_IDT + 8);
        st->idt.limit = (uint16_t)emu_env_u32(e, ENV_IDT + 16);
        st->intr = intr_bits(e, st->rflags);
        return 0;
}

int emu_set_state(struct backend *b, const struct hvt_vcpu_state *st)
{
        struct emu_backend *e = emu_of(b);
        uint64_t rflags = st->rflags | 2;

        if (emu_snap_get(e))
                return -EIO;
        if ((st->efer & X86_EFER_LMA) && (!(st->cr0 & X86_CR0_PG) || !(st->cr4 & X86_CR4_PAE)))
                return -EINVAL; /* long mode needs paging with PAE */
        memcpy(e->env + ENV_REGS, st->gpr, sizeof(st->gpr));
        emu_env_put64(e, ENV_EIP, st->rip);
        for (unsigned i = 0; i < HVT_SREG_COUNT; i++) {
                struct qseg s;

                memset(&s, 0, sizeof(s));
                s.selector = st->seg[i].selector;
                s.base = st->seg[i].base;
                s.limit = st->seg[i].limit;
                s.flags = flags_of(st->seg[i].attr);
                emu_env_put_seg(e, i, &s);
        }
        emu_env_put64(e, ENV_CR, st->cr0);
        emu_env_put64(e, ENV_CR + 16, st->cr2);
        emu_env_put64(e, ENV_CR + 24, st->cr3);
        emu_env_put64(e, ENV_CR + 32, st->cr4);
        emu_env_put64(e, ENV_EFER, st->efer);
        emu_env_put64(e, ENV_GDT + 8, st->gdt.base);
        emu_env_put32(e, ENV_GDT + 16, st->gdt.limit);
        emu_env_put64(e, ENV_IDT + 8, st->idt.base);
        emu_env_put32(e, ENV_IDT + 16, st->idt.limit);
        emu_env_put32(e, ENV_HFLAGS, emu_hflags_for(e, rflags));
        if (emu_snap_put(e))
                return -EIO;
        emu_reg_write(e, UC_X86_REG_RFLAGS, rflags);
        /* Translations made under the old state must go. */
        uc_ctl_flush_tlb(e->uc);
        if (e->ran &&
            uc_mem_map_ptr(e->uc, e->flush_at, PAGE_SIZE, UC_PROT_ALL, e->scratch) == UC_ERR_OK)
                uc_mem_unmap(e->uc, e->flush_at, PAGE_SIZE);
        e->shadow = (st->intr & HVT_INTR_VALID_SHADOW)
                            ? st->intr & (HVT_INTR_STI_SHADOW | HVT_INTR_MOVSS_SHADOW)
                            : 0;
        if (e->shadow == (HVT_INTR_STI_SHADOW | HVT_INTR_MOVSS_SHADOW))
                e->shadow = HVT_INTR_MOVSS_SHADOW;
        if (st->intr & HVT_INTR_VALID_NMI)
                e->nmi_blocked = st->intr & HVT_INTR_NMI_BLOCKED;
        e->pend = PEND_NONE;
        e->ndone = 0;
        e->prev_valid = false;
        emu_mode_refresh(e);
        return 0;
}
