/* SPDX-License-Identifier: MIT */
/*
 * A stand-in for /dev/kvm in one process, so that the preload library's
 * recording can be tested where KVM is missing (tests/exec/fakevmm.c).
 * libhvt_fakekvm.so defines ioctl, mmap and mmap64; a program linked with
 * it and run under hvrec exec has the preload library first in the lookup
 * order, and the library's calls "next" land here.  Descriptors this file
 * did not make go on to libc.  The CPU is the program's: at each KVM_RUN
 * its step function moves the registers and fills the exit.
 *
 * Preloaded into a program that opens /dev/kvm itself (hvrec, the exit
 * rate benchmark) with HVT_FAKEKVM=ioloop in the environment, it answers
 * that open too, and its own CPU runs guests/ioloop.asm ("out 0x80, al;
 * jmp $" at 0x1000): an OUT exit at every run, at no cost but the calls.
 * That measures what a recorder spends per exit on its own, the kernel
 * left out (docs/performance.md).
 */
#ifndef HVT_FAKEKVM_H
#define HVT_FAKEKVM_H

#include <stdint.h>

#include <linux/kvm.h>

struct fakekvm_cpu {
        struct kvm_regs regs;
        struct kvm_sregs sregs;
        struct kvm_vcpu_events ev;
        struct kvm_run *run;
        int pending;   /* the vector KVM_INTERRUPT queued, or -1 */
        unsigned runs; /* KVM_RUN calls so far, this one not counted */
};

/*
 * One KVM_RUN: fill cpu->run's exit and move the registers.  Returns 0, or
 * an errno for KVM_RUN to fail with (EINTR: no instruction ran).
 */
typedef int fakekvm_step_fn(struct fakekvm_cpu *cpu, void *ctx);

/*
 * The descriptor of a fake /dev/kvm whose vCPUs run step(ctx); -1 on
 * failure.  With HVT_FAKEKVM_NOSYNC in the environment it lacks
 * KVM_CAP_SYNC_REGS and never touches kvm_run's sync-regs area.
 */
int fakekvm_open(fakekvm_step_fn *step, void *ctx);

/* Fill c's exit: an OUT of byte to port (one byte; the data on kvm_run's second page). */
void fakekvm_io_out(struct fakekvm_cpu *c, uint16_t port, uint8_t byte);

/* Every kvm_dirty_regs mask KVM_RUN found, ORed: what was loaded from kvm_run. */
uint64_t fakekvm_dirty_seen(void);

#endif
