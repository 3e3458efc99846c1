/* SPDX-License-Identifier: MIT */
/*
 * Conversions from KVM's structs to hvtrace's vCPU state, with no other
 * dependency than libhvtrace's headers: the preload library links them too.
 */
#ifndef HVTRACE_BACKEND_KVM_STATE_H
#define HVTRACE_BACKEND_KVM_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include <linux/kvm.h>

#include <hvtrace/hvtrace.h>

/* Fill st (all but intr) from KVM's registers and special registers. */
void kvm_state_from(struct hvt_vcpu_state *st, const struct kvm_regs *r, const struct kvm_sregs *s);

/*
 * The HVT_INTR_* bits of a vCPU: ev as KVM_GET_VCPU_EVENTS (or sync regs)
 * gave it, run its kvm_run page; irqchip: KVM's in-kernel irqchip injects
 * (ready_for_interrupt_injection then means nothing); window: an interrupt
 * window had been requested.
 */
uint64_t kvm_intr_from(const struct kvm_run *run, const struct kvm_vcpu_events *ev, bool irqchip,
                       bool window);

#endif
