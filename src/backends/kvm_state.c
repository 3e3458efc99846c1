// SPDX-License-Identifier: MIT
/*
 * KVM's view of a vCPU in hvtrace's terms: shared by the kvm backends and
 * the preload library of `hvrec exec`, which reads the same structs out of
 * an unmodified VMM's kvm_run page.
 */
#include <string.h>

#include "kvm_state.h"

static void seg_from_kvm(struct hvt_disk_seg *d, const struct kvm_segment *s)
{
        d->base = s->base;
        d->limit = s->limit;
        d->selector = s->selector;
        d->attr = (uint16_t)((s->type & 0xf) | (s->s ? HVT_SEG_S : 0) |
                             ((s->dpl & 3u) << HVT_SEG_DPL_SHIFT) | (s->present ? HVT_SEG_P : 0) |
                             (s->avl ? HVT_SEG_AVL : 0) | (s->l ? HVT_SEG_L : 0) |
                             (s->db ? HVT_SEG_DB : 0) | (s->g ? HVT_SEG_G : 0) |
                             (s->unusable ? HVT_SEG_UNUSABLE : 0));
}

static void regs_from_kvm(struct hvt_vcpu_state *st, const struct kvm_regs *r)
{
        const uint64_t gpr[16] = { r->rax, r->rcx, r->rdx, r->rbx, r->rsp, r->rbp, r->rsi, r->rdi,
                                   r->r8,  r->r9,  r->r10, r->r11, r->r12, r->r13, r->r14, r->r15 };

        memcpy(st->gpr, gpr, sizeof(gpr));
        st->rip = r->rip;
        st->rflags = r->rflags;
}

/* Every field of st from seg to idt, from s. */
static void sregs_from_kvm(struct hvt_vcpu_state *st, const struct kvm_sregs *s)
{
        const struct kvm_segment *segs[HVT_SREG_COUNT] = {
                [HVT_ES] = &s->es, [HVT_CS] = &s->cs, [HVT_SS] = &s->ss,
                [HVT_DS] = &s->ds, [HVT_FS] = &s->fs, [HVT_GS] = &s->gs,
        };

        for (unsigned i = 0; i < HVT_SREG_COUNT; i++)
                seg_from_kvm(&st->seg[i], segs[i]);
        st->cr0 = s->cr0;
        st->cr2 = s->cr2;
        st->cr3 = s->cr3;
        st->cr4 = s->cr4;
        st->efer = s->efer;
        memset(&st->gdt, 0, sizeof(st->gdt));
        memset(&st->idt, 0, sizeof(st->idt));
        st->gdt.base = s->gdt.base;
        st->gdt.limit = s->gdt.limit;
        st->idt.base = s->idt.base;
        st->idt.limit = s->idt.limit;
}

#define SREGS_OFF offsetof(struct hvt_vcpu_state, seg)
_Static_assert(offsetof(struct hvt_vcpu_state, idt) + sizeof(struct hvt_disk_dtable) ==
                       offsetof(struct hvt_vcpu_state, intr),
               "seg..idt is what sregs_from_kvm fills, all of it");

void kvm_state_from(struct hvt_vcpu_state *st, const struct kvm_regs *r, const struct kvm_sregs *s,
                    struct kvm_sregs_cache *c)
{
        regs_from_kvm(st, r);
        /* The conversion is a function of these bytes alone: equal bytes, equal result. */
        if (!c->valid || memcmp(c->raw, s, sizeof(c->raw))) {
                sregs_from_kvm(st, s);
                memcpy(c->raw, s, sizeof(c->raw));
                memcpy(c->st, (const uint8_t *)st + SREGS_OFF, sizeof(c->st));
                c->valid = true;
                return;
        }
        memcpy((uint8_t *)st + SREGS_OFF, c->st, sizeof(c->st));
}

uint64_t kvm_intr_from(const struct kvm_run *run, const struct kvm_vcpu_events *ev, bool irqchip,
                       bool window)
{
        /*
         * ready_for_interrupt_injection is about KVM_INTERRUPT: meaningless
         * when the in-kernel irqchip injects, so not reported then.
         */
        uint64_t intr = HVT_INTR_VALID_IF | HVT_INTR_VALID_NMI | HVT_INTR_VALID_PENDING |
                        (irqchip ? 0 : HVT_INTR_VALID_READY);

        if (ev->flags & KVM_VCPUEVENT_VALID_SHADOW) {
                intr |= HVT_INTR_VALID_SHADOW;
                if (ev->interrupt.shadow & KVM_X86_SHADOW_INT_STI)
                        intr |= HVT_INTR_STI_SHADOW;
                if (ev->interrupt.shadow & KVM_X86_SHADOW_INT_MOV_SS)
                        intr |= HVT_INTR_MOVSS_SHADOW;
        }
        if (ev->nmi.masked)
                intr |= HVT_INTR_NMI_BLOCKED;
        if (!irqchip && run->ready_for_interrupt_injection)
                intr |= HVT_INTR_READY;
        if (run->if_flag)
                intr |= HVT_INTR_IF;
        if (ev->interrupt.injected || ev->nmi.pending || ev->nmi.injected)
                intr |= HVT_INTR_PENDING;
        if (window)
                intr |= HVT_INTR_WINDOW_REQ;
        return intr;
}
