/* SPDX-License-Identifier: MIT */
/*
 * What the two KVM backends share: kvm.c (userspace irqchip, hvrec injects
 * with KVM_INTERRUPT) and kvm_irqchip.c (in-kernel PIC/IOAPIC/LAPIC, hvrec
 * raises interrupt lines and KVM decides when to inject).
 */
#ifndef HVTRACE_BACKEND_KVM_H
#define HVTRACE_BACKEND_KVM_H

#include <stdbool.h>
#include <stddef.h>

#include <linux/kvm.h>

#include "backend.h"
#include "kvm_state.h"

struct kvm_backend {
        struct backend base;
        int kvm_fd, vm_fd, vcpu_fd;
        struct kvm_run *run;
        size_t run_size;
        int api_version;
        bool synced; /* run->s.regs holds the state of the last exit */
        bool single_step;
        bool bp_on; /* set_breakpoint: DR0 armed at bp_linear */
        uint64_t bp_linear;
        bool irqchip; /* KVM_CREATE_IRQCHIP: KVM injects, hvrec raises lines */
        struct kvm_sregs_cache sregs_cache; /* kvm_get_state's */
};

static inline struct kvm_backend *to_kvm(struct backend *b)
{
        return (struct kvm_backend *)b;
}

struct kvm_vm_options {
        bool irqchip; /* create the in-kernel PIC, IOAPIC and LAPIC */
        bool pit;     /* create the in-kernel PIT (the guest's timer) */
};

/* Create a VM with one vCPU whose ops are `ops`.  Returns 0 or -errno, why in `why`. */
int kvm_vm_create(const struct backend_config *cfg, const struct backend_ops *ops,
                  const struct kvm_vm_options *opt, struct backend **out, char *why, size_t len);

/* The kvm_* operations both backends use as they are. */
int kvm_probe(char *why, size_t len);
const char *kvm_flavour(void);
void kvm_destroy(struct backend *b);
int kvm_get_state(struct backend *b, struct hvt_vcpu_state *st);
int kvm_set_state(struct backend *b, const struct hvt_vcpu_state *st);
int kvm_run_vcpu(struct backend *b, struct backend_exit *x);
int kvm_request_window(struct backend *b, bool on);
int kvm_set_single_step(struct backend *b, bool on);
int kvm_set_breakpoint(struct backend *b, bool on, uint64_t linear);
void kvm_kick(struct backend *b);

#endif
