// SPDX-License-Identifier: MIT
/*
 * A VMM on the fake /dev/kvm of fakekvm.h, for test_exec: one real-mode
 * vCPU whose "CPU" is the step function below, scripted run by run, and a
 * VMM loop that injects one interrupt with KVM_INTERRUPT, as QEMU's
 * kernel_irqchip=off does.  Usage: fakevmm SCENARIO, one of
 *
 *   probe       vector 0x30, whose handler starts with the delivery probe
 *   probe-intr  the same, but the run after the injection ends with EINTR
 *               before entering (the injection stays queued)
 *   noprobe     vector 0x31, whose handler is a bare IRET
 *   smp         two vCPUs, their runs interleaved: vCPU 0 runs to its OUT
 *               0x80, then vCPU 1 takes vector 0x30 (the probe's) and runs
 *               to its end, then vCPU 0 runs to its end
 *   vmm-sync    probe's run, by a VMM that uses sync regs itself: it asks
 *               KVM for regs only, and before each run writes RBX = 0x1000
 *               + the run's number there and marks regs dirty; it checks
 *               after each run that its own mask is back and RBX came
 *               back, and at the end that KVM loaded nothing but its regs
 *               (exit statuses 103, 104, 105 otherwise)
 *   console     probe's run, with "out 0xe9, al" and AL = 'h' for the
 *               first OUT: the guest's console
 *   paged       no interrupt: 32-bit protected mode with paging, the code
 *               at linear 0x400000 in physical page 0x4000: "out 0xf4, al;
 *               jmp $"
 *
 * The guest (real mode, flat at 0): IVT 0x30 -> 0000:0500 "out 0xe2, al;
 * iret", 0x31 -> 0000:0600 "iret"; at 0x1000 "out 0x80, al; nop; nop;
 * out 0xf4, al".  Exits: the OUT 0x80 (RIP past it, as KVM reports an
 * OUT), the delivery, then the OUT 0xF4, whose byte is the exit status.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "fakekvm.h"

#define RAM_SIZE  (1u << 20)
#define CODE      0x1000u
#define STACK_TOP 0x8000u

struct guest {
        uint8_t *ram;
        int vector;    /* the one the VMM injects */
        bool paged;    /* the paging scenario */
        bool own_sync; /* the VMM uses sync regs itself (vmm-sync) */
        bool eintr;    /* the run after the injection fails with EINTR once */
        bool console;  /* the first OUT is to the console port, 'h' */
        bool delayed;  /* ... and did */
};

static const uint8_t code[] = { 0xe6, 0x80, 0x90, 0x90, 0xe6, 0xf4 };
static const uint8_t probe_handler[] = { 0xe6, 0xe2, 0xcf };
static const uint8_t bare_handler[] = { 0xcf };
static const uint8_t paged_code[] = { 0xe6, 0xf4, 0xeb, 0xfe };

#define PAGED_LINEAR 0x400000u
#define PAGED_PHYS   0x4000u

static void push16(struct guest *g, struct fakekvm_cpu *c, uint16_t v)
{
        c->regs.rsp = (uint16_t)(c->regs.rsp - 2);
        memcpy(g->ram + c->sregs.ss.base + c->regs.rsp, &v, 2);
}

static uint16_t pop16(struct guest *g, struct fakekvm_cpu *c)
{
        uint16_t v;

        memcpy(&v, g->ram + c->sregs.ss.base + c->regs.rsp, 2);
        c->regs.rsp = (uint16_t)(c->regs.rsp + 2);
        return v;
}

/* The CPU takes vector v: FLAGS, CS, IP pushed, IF cleared, CS:IP from the IVT. */
static void deliver(struct guest *g, struct fakekvm_cpu *c, unsigned v)
{
        uint16_t ivt[2];

        memcpy(ivt, g->ram + v * 4, 4);
        push16(g, c, (uint16_t)c->regs.rflags);
        push16(g, c, c->sregs.cs.selector);
        push16(g, c, (uint16_t)c->regs.rip);
        c->regs.rflags &= ~0x200ull;
        c->sregs.cs.selector = ivt[1];
        c->sregs.cs.base = (uint64_t)ivt[1] << 4;
        c->regs.rip = ivt[0];
        c->pending = -1;
}

static void iret(struct guest *g, struct fakekvm_cpu *c)
{
        c->regs.rip = pop16(g, c);
        c->sregs.cs.selector = pop16(g, c);
        c->sregs.cs.base = (uint64_t)c->sregs.cs.selector << 4;
        c->regs.rflags = pop16(g, c) | 0x2;
}

/* Paging on: a page directory at 0x2000 maps linear 0x400000 through the table at 0x3000. */
static void paged_setup(struct guest *g, struct kvm_sregs *sregs, struct kvm_regs *regs)
{
        uint32_t pde = 0x3000 | 0x3, pte = PAGED_PHYS | 0x3;
        struct kvm_segment flat = { .limit = 0xffffffff, .present = 1, .s = 1, .db = 1, .g = 1 };

        memcpy(g->ram + 0x2000 + (PAGED_LINEAR >> 22) * 4, &pde, 4);
        memcpy(g->ram + 0x3000 + ((PAGED_LINEAR >> 12) & 0x3ff) * 4, &pte, 4);
        memcpy(g->ram + PAGED_PHYS, paged_code, sizeof(paged_code));
        sregs->cr0 = 0x80000011; /* PG, ET, PE */
        sregs->cr3 = 0x2000;
        sregs->cs = flat;
        sregs->cs.type = 0xb;
        sregs->cs.selector = 0x8;
        sregs->ds = sregs->es = sregs->ss = sregs->fs = sregs->gs = flat;
        sregs->ds.type = sregs->es.type = sregs->ss.type = sregs->fs.type = sregs->gs.type = 0x3;
        sregs->ds.selector = sregs->es.selector = sregs->ss.selector = 0x10;
        sregs->fs.selector = sregs->gs.selector = 0x10;
        regs->rip = PAGED_LINEAR;
        regs->rflags = 0x2;
}

/* From CS:IP in the main code (or at a bare IRET) to the OUT 0xF4, past it. */
static void run_to_exit_port(struct guest *g, struct fakekvm_cpu *c)
{
        if (c->sregs.cs.base + c->regs.rip == 0x600)
                iret(g, c);
        c->regs.rip = CODE + sizeof(code);
        fakekvm_io_out(c, 0xf4, 0);
}

static int step(struct fakekvm_cpu *c, void *ctx)
{
        struct guest *g = ctx;

        if (g->paged) {
                c->regs.rip = PAGED_LINEAR + 2;
                fakekvm_io_out(c, 0xf4, 0);
                return 0;
        }
        if (c->runs == 0) {
                c->regs.rip = CODE + 2;
                c->regs.rax = g->console ? 'h' : 0;
                fakekvm_io_out(c, g->console ? 0xe9 : 0x80, (uint8_t)c->regs.rax);
                return 0;
        }
        if (c->pending >= 0) {
                if (g->eintr && !g->delayed) {
                        g->delayed = true;
                        c->run->exit_reason = KVM_EXIT_INTR;
                        return EINTR;
                }
                /* KVM_INTERRUPT's vector is delivered as the vCPU enters. */
                deliver(g, c, (unsigned)c->pending);
                if (c->sregs.cs.base + c->regs.rip == 0x500) {
                        c->regs.rip += 2; /* the probe's OUT ran: RIP past it */
                        fakekvm_io_out(c, 0xe2, 0);
                        return 0;
                }
        } else if (c->sregs.cs.base + c->regs.rip == 0x502) {
                iret(g, c);
        }
        run_to_exit_port(g, c);
        return 0;
}

static void die(const char *what)
{
        perror(what);
        exit(100);
}

struct vcpu {
        int fd;
        struct kvm_run *run;
};

/* A vCPU in real mode (every segment at 0, or the paging set-up) with its stack at sp. */
static void vcpu_create(int kvm, int vm, struct guest *g, uint64_t sp, struct vcpu *v)
{
        struct kvm_sregs sregs;
        struct kvm_regs regs = { .rip = CODE, .rflags = 0x202, .rsp = sp };

        v->fd = ioctl(vm, KVM_CREATE_VCPU, 0);
        if (v->fd < 0)
                die("KVM_CREATE_VCPU");
        v->run = mmap(NULL, (size_t)ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0), PROT_READ | PROT_WRITE,
                      MAP_SHARED, v->fd, 0);
        if (v->run == MAP_FAILED)
                die("mmap kvm_run");
        memset(&sregs, 0, sizeof(sregs));
        sregs.cs.limit = sregs.ds.limit = sregs.ss.limit = sregs.es.limit = 0xffff;
        sregs.fs.limit = sregs.gs.limit = 0xffff;
        sregs.cs.type = 0xb;
        sregs.cs.present = sregs.ds.present = sregs.ss.present = 1;
        sregs.cs.s = sregs.ds.s = sregs.ss.s = 1;
        sregs.ds.type = sregs.ss.type = 0x3;
        sregs.idt.limit = 0x3ff;
        if (g->paged)
                paged_setup(g, &sregs, &regs);
        if (ioctl(v->fd, KVM_SET_SREGS, &sregs) || ioctl(v->fd, KVM_SET_REGS, &regs))
                die("KVM_SET_*REGS");
}

/*
 * Run v up to runs exits (0: until the OUT 0xF4), injecting g->vector at
 * the first exit where the vCPU is ready when inject is set.  Returns the
 * OUT 0xF4's byte, or -1 when runs ran out first.
 */
static int vcpu_loop(struct vcpu *v, struct guest *g, bool inject, int runs)
{
        struct kvm_interrupt irq = { .irq = (unsigned)g->vector };
        uint64_t rbx = 0x1000;

        if (g->own_sync) {
                /* Its registers in kvm_run from the start, as a VMM that syncs them keeps them. */
                if (ioctl(v->fd, KVM_GET_REGS, &v->run->s.regs.regs))
                        die("KVM_GET_REGS");
                v->run->kvm_valid_regs = KVM_SYNC_X86_REGS;
        }
        for (int n = 0; !runs || n < runs; n++) {
                if (g->own_sync) {
                        v->run->s.regs.regs.rbx = rbx + (uint64_t)n;
                        v->run->kvm_dirty_regs |= KVM_SYNC_X86_REGS;
                }
                if (ioctl(v->fd, KVM_RUN, 0) < 0) {
                        if (errno == EINTR)
                                continue;
                        die("KVM_RUN");
                }
                if (g->own_sync && v->run->kvm_valid_regs != KVM_SYNC_X86_REGS)
                        exit(103);
                if (g->own_sync && v->run->s.regs.regs.rbx != rbx + (uint64_t)n)
                        exit(104);
                if (v->run->exit_reason != KVM_EXIT_IO)
                        exit(101);
                if (v->run->io.port == 0xf4) {
                        if (g->own_sync && fakekvm_dirty_seen() != KVM_SYNC_X86_REGS)
                                exit(105);
                        return ((uint8_t *)v->run)[v->run->io.data_offset];
                }
                /* The timer fires: inject once the guest can take it. */
                if (inject && v->run->ready_for_interrupt_injection) {
                        if (ioctl(v->fd, KVM_INTERRUPT, &irq))
                                die("KVM_INTERRUPT");
                        inject = false;
                }
        }
        return -1;
}

int main(int argc, char **argv)
{
        struct guest g = { 0 };
        struct kvm_userspace_memory_region mr;
        struct vcpu v[2];
        int kvm, vm;
        uint16_t ivt[2];
        bool smp;

        if (argc != 2)
                return 100;
        g.vector = strcmp(argv[1], "noprobe") ? 0x30 : 0x31;
        g.eintr = !strcmp(argv[1], "probe-intr");
        g.paged = !strcmp(argv[1], "paged");
        g.own_sync = !strcmp(argv[1], "vmm-sync");
        g.console = !strcmp(argv[1], "console");
        smp = !strcmp(argv[1], "smp");
        g.ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (g.ram == MAP_FAILED)
                die("mmap");
        ivt[0] = 0x500, ivt[1] = 0;
        memcpy(g.ram + 0x30 * 4, ivt, 4);
        ivt[0] = 0x600;
        memcpy(g.ram + 0x31 * 4, ivt, 4);
        memcpy(g.ram + 0x500, probe_handler, sizeof(probe_handler));
        memcpy(g.ram + 0x600, bare_handler, sizeof(bare_handler));
        memcpy(g.ram + CODE, code, sizeof(code));
        if (g.console)
                g.ram[CODE + 1] = 0xe9;

        kvm = fakekvm_open(step, &g);
        if (kvm < 0 || ioctl(kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
                die("fake /dev/kvm");
        vm = ioctl(kvm, KVM_CREATE_VM, 0);
        if (vm < 0)
                die("KVM_CREATE_VM");
        mr = (struct kvm_userspace_memory_region){ .slot = 0,
                                                   .guest_phys_addr = 0,
                                                   .memory_size = RAM_SIZE,
                                                   .userspace_addr = (uintptr_t)g.ram };
        if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &mr))
                die("KVM_SET_USER_MEMORY_REGION");
        vcpu_create(kvm, vm, &g, STACK_TOP, &v[0]);
        if (!smp)
                return vcpu_loop(&v[0], &g, true, 0);
        /* Both exist before either runs, as QEMU creates them; their runs interleave. */
        vcpu_create(kvm, vm, &g, STACK_TOP - 0x1000, &v[1]);
        vcpu_loop(&v[0], &g, false, 1);
        if (vcpu_loop(&v[1], &g, true, 0))
                return 102;
        return vcpu_loop(&v[0], &g, false, 0);
}
