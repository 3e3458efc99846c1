/* SPDX-License-Identifier: MIT */
/*
 * Conversions from KVM's structs to hvtrace's vCPU state, with no other
 * dependency than libhvtrace's headers: the preload library links them too.
 */
#ifndef HVTRACE_BACKEND_KVM_STATE_H
#define HVTRACE_BACKEND_KVM_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/kvm.h>

#include <hvtrace/hvtrace.h>

/*
 * The part of the state kvm_state_from takes from kvm_sregs, as it last
 * converted it.  Most exits leave the special registers alone, and their
 * conversion (six segments, bit by bit) was the largest part of reading
 * the state at an exit.  Zero-initialise; it never needs to be reset.
 */
struct kvm_sregs_cache {
        bool valid;
        uint8_t raw[offsetof(struct kvm_sregs, apic_base)]; /* segments, tables, CRs, EFER */
        uint8_t st[offsetof(struct hvt_vcpu_state, intr) - offsetof(struct hvt_vcpu_state, seg)];
};

/*
 * Fill st (all but intr) from KVM's registers and special registers,
 * converting s only when it differs from the one c holds.
 */
void kvm_state_from(struct hvt_vcpu_state *st, const struct kvm_regs *r, const struct kvm_sregs *s,
                    struct kvm_sregs_cache *c);

/*
 * The HVT_INTR_* bits of a vCPU: ev as KVM_GET_VCPU_EVENTS (or sync regs)
 * gave it, run its kvm_run page; irqchip: KVM's in-kernel irqchip injects
 * (ready_for_interrupt_injection then means nothing); window: an interrupt
 * window had been requested.
 */
uint64_t kvm_intr_from(const struct kvm_run *run, const struct kvm_vcpu_events *ev, bool irqchip,
                       bool window);

#endif
