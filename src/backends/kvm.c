// SPDX-License-Identifier: MIT
/*
 * KVM with a userspace irqchip: the recorder decides when to inject
 * (KVM_INTERRUPT), so this backend exercises the VMM's injection policy.
 *
 * State is read through KVM_CAP_SYNC_REGS: KVM copies regs, sregs and vcpu
 * events into the shared kvm_run page at every exit, which costs a few
 * percent where three ioctls per exit would halve the exit rate.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "../arch/x86.h"

#include "kvm.h"
#include "kvm_state.h"

#define KVM_SYNC_ALL (KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS | KVM_SYNC_X86_EVENTS)
/* Where KVM may put its real-mode TSS on Intel: out of any guest's way, below 4 GiB. */
#define KVM_TSS_ADDR 0xfffbd000ul

extern const struct backend_ops kvm_backend_ops;

/* Which vendor module serves /dev/kvm: worth knowing, conventions differ. */
const char *kvm_flavour(void)
{
        static const char *const mods[] = { "kvm_pvm", "kvm_amd", "kvm_intel" };
        char path[64];
        struct stat st;

        for (size_t i = 0; i < sizeof(mods) / sizeof(mods[0]); i++) {
                snprintf(path, sizeof(path), "/sys/module/%s", mods[i]);
                if (!stat(path, &st))
                        return mods[i];
        }
        return "kvm";
}

int kvm_probe(char *why, size_t len)
{
        int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        int err = 0;

        if (fd < 0) {
                err = -errno;
                snprintf(why, len, "/dev/kvm: %s", strerror(errno));
                return err;
        }
        if (ioctl(fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
                snprintf(why, len, "/dev/kvm speaks an unknown KVM API version");
                err = -ENOTSUP;
        } else if ((ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_SYNC_REGS) & KVM_SYNC_ALL) !=
                   KVM_SYNC_ALL) {
                snprintf(why, len, "KVM lacks KVM_CAP_SYNC_REGS for regs, sregs and events");
                err = -ENOTSUP;
        } else {
                snprintf(why, len, "%s", kvm_flavour());
        }
        close(fd);
        return err;
}

/* Give the vCPU the CPUID KVM supports, so long mode and friends are visible. */
static int kvm_setup_cpuid(struct kvm_backend *k)
{
        int n = 128, err;
        struct kvm_cpuid2 *cpuid;

        for (;;) {
                cpuid = calloc(1, sizeof(*cpuid) + (size_t)n * sizeof(cpuid->entries[0]));
                if (!cpuid)
                        return -ENOMEM;
                cpuid->nent = (uint32_t)n;
                if (!ioctl(k->kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid))
                        break;
                err = -errno;
                free(cpuid);
                if (err != -E2BIG)
                        return err;
                n *= 2;
        }
        err = ioctl(k->vcpu_fd, KVM_SET_CPUID2, cpuid) ? -errno : 0;
        free(cpuid);
        return err;
}

int kvm_vm_create(const struct backend_config *cfg, const struct backend_ops *ops,
                  const struct kvm_vm_options *opt, struct backend **out, char *why, size_t len)
{
        struct kvm_userspace_memory_region region = { 0 };
        struct kvm_backend *k;
        int err, mmap_size;

        k = calloc(1, sizeof(*k));
        if (!k)
                return -ENOMEM;
        k->base.ops = NULL; /* set on success */
        k->vm_fd = k->vcpu_fd = -1;
        k->irqchip = opt->irqchip;

        k->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        if (k->kvm_fd < 0) {
                err = -errno;
                snprintf(why, len, "/dev/kvm: %s", strerror(errno));
                goto err_free;
        }
        k->api_version = ioctl(k->kvm_fd, KVM_GET_API_VERSION, 0);
        k->vm_fd = ioctl(k->kvm_fd, KVM_CREATE_VM, 0);
        if (k->vm_fd < 0) {
                err = -errno;
                snprintf(why, len, "KVM_CREATE_VM: %s", strerror(errno));
                goto err_kvm;
        }
        /* Intel needs a TSS for real mode; elsewhere the call is harmless. */
        ioctl(k->vm_fd, KVM_SET_TSS_ADDR, KVM_TSS_ADDR);
        /* The in-kernel PIC, IOAPIC and LAPIC must exist before the vCPU. */
        if (opt->irqchip && ioctl(k->vm_fd, KVM_CREATE_IRQCHIP, 0)) {
                err = -errno;
                snprintf(why, len, "KVM_CREATE_IRQCHIP: %s", strerror(errno));
                goto err_vm;
        }
        if (opt->pit) {
                struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };

                if (ioctl(k->vm_fd, KVM_CREATE_PIT2, &pit)) {
                        err = -errno;
                        snprintf(why, len, "KVM_CREATE_PIT2: %s", strerror(errno));
                        goto err_vm;
                }
        }

        k->base.mem_size = cfg->mem_size;
        k->base.mem = mmap(NULL, cfg->mem_size, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (k->base.mem == MAP_FAILED) {
                err = -errno;
                snprintf(why, len, "cannot map %llu bytes of guest memory: %s",
                         (unsigned long long)cfg->mem_size, strerror(errno));
                goto err_vm;
        }
        region.slot = 0;
        region.guest_phys_addr = 0;
        region.memory_size = cfg->mem_size;
        region.userspace_addr = (uint64_t)(uintptr_t)k->base.mem;
        if (ioctl(k->vm_fd, KVM_SET_USER_MEMORY_REGION, &region)) {
                err = -errno;
                snprintf(why, len, "KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
                goto err_mem;
        }

        k->vcpu_fd = ioctl(k->vm_fd, KVM_CREATE_VCPU, 0);
        if (k->vcpu_fd < 0) {
                err = -errno;
                snprintf(why, len, "KVM_CREATE_VCPU: %s", strerror(errno));
                goto err_mem;
        }
        err = kvm_setup_cpuid(k);
        if (err) {
                snprintf(why, len, "KVM_SET_CPUID2: %s", strerror(-err));
                goto err_vcpu;
        }
        mmap_size = ioctl(k->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
        if (mmap_size < (int)sizeof(struct kvm_run)) {
                err = -EINVAL;
                snprintf(why, len, "KVM_GET_VCPU_MMAP_SIZE: %d", mmap_size);
                goto err_vcpu;
        }
        k->run_size = (size_t)mmap_size;
        k->run = mmap(NULL, k->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, k->vcpu_fd, 0);
        if (k->run == MAP_FAILED) {
                err = -errno;
                snprintf(why, len, "cannot map kvm_run: %s", strerror(errno));
                goto err_vcpu;
        }
        k->run->kvm_valid_regs = KVM_SYNC_ALL;
        k->base.ops = ops;
        *out = &k->base;
        return 0;

err_vcpu:
        close(k->vcpu_fd);
err_mem:
        munmap(k->base.mem, cfg->mem_size);
err_vm:
        close(k->vm_fd);
err_kvm:
        close(k->kvm_fd);
err_free:
        free(k);
        return err;
}

static int kvm_create(const struct backend_config *cfg, struct backend **out, char *why, size_t len)
{
        static const struct kvm_vm_options opt = { 0 };

        return kvm_vm_create(cfg, &kvm_backend_ops, &opt, out, why, len);
}

void kvm_destroy(struct backend *b)
{
        struct kvm_backend *k = to_kvm(b);

        if (!k)
                return;
        munmap(k->run, k->run_size);
        close(k->vcpu_fd);
        munmap(k->base.mem, k->base.mem_size);
        close(k->vm_fd);
        close(k->kvm_fd);
        free(k);
}

static void kvm_version(struct backend *b, char *buf, size_t len)
{
        snprintf(buf, len, "KVM API %d, %s, userspace irqchip, sync regs", to_kvm(b)->api_version,
                 kvm_flavour());
}

/* ---- state conversion -------------------------------------------------- */

static void seg_to_kvm(struct kvm_segment *s, const struct hvt_disk_seg *d)
{
        memset(s, 0, sizeof(*s));
        s->base = d->base;
        s->limit = d->limit;
        s->selector = d->selector;
        s->type = d->attr & HVT_SEG_TYPE_MASK;
        s->s = !!(d->attr & HVT_SEG_S);
        s->dpl = (d->attr >> HVT_SEG_DPL_SHIFT) & 3;
        s->present = !!(d->attr & HVT_SEG_P);
        s->avl = !!(d->attr & HVT_SEG_AVL);
        s->l = !!(d->attr & HVT_SEG_L);
        s->db = !!(d->attr & HVT_SEG_DB);
        s->g = !!(d->attr & HVT_SEG_G);
        s->unusable = !!(d->attr & HVT_SEG_UNUSABLE);
}

int kvm_get_state(struct backend *b, struct hvt_vcpu_state *st)
{
        struct kvm_backend *k = to_kvm(b);
        struct kvm_vcpu_events ev;
        struct kvm_sregs sregs;
        struct kvm_regs regs;

        if (k->synced) {
                const struct kvm_sync_regs *s = &k->run->s.regs;

                kvm_state_from(st, &s->regs, &s->sregs, &k->sregs_cache);
                st->intr = kvm_intr_from(k->run, &s->events, k->irqchip,
                                         k->run->request_interrupt_window);
                return 0;
        }
        /* Before the first run (or after set_state) the shared copy is stale. */
        if (ioctl(k->vcpu_fd, KVM_GET_REGS, &regs) || ioctl(k->vcpu_fd, KVM_GET_SREGS, &sregs) ||
            ioctl(k->vcpu_fd, KVM_GET_VCPU_EVENTS, &ev))
                return -errno;
        kvm_state_from(st, &regs, &sregs, &k->sregs_cache);
        st->intr = kvm_intr_from(k->run, &ev, k->irqchip, k->run->request_interrupt_window);
        return 0;
}

int kvm_set_state(struct backend *b, const struct hvt_vcpu_state *st)
{
        struct kvm_backend *k = to_kvm(b);
        struct kvm_segment *segs[HVT_SREG_COUNT];
        struct kvm_sregs sregs;
        struct kvm_regs regs = { 0 };

        if (ioctl(k->vcpu_fd, KVM_GET_SREGS, &sregs))
                return -errno;
        segs[HVT_ES] = &sregs.es;
        segs[HVT_CS] = &sregs.cs;
        segs[HVT_SS] = &sregs.ss;
        segs[HVT_DS] = &sregs.ds;
        segs[HVT_FS] = &sregs.fs;
        segs[HVT_GS] = &sregs.gs;
        for (unsigned i = 0; i < HVT_SREG_COUNT; i++)
                seg_to_kvm(segs[i], &st->seg[i]);
        sregs.cr0 = st->cr0;
        sregs.cr2 = st->cr2;
        sregs.cr3 = st->cr3;
        sregs.cr4 = st->cr4;
        sregs.efer = st->efer;
        sregs.gdt.base = st->gdt.base;
        sregs.gdt.limit = st->gdt.limit;
        sregs.idt.base = st->idt.base;
        sregs.idt.limit = st->idt.limit;
        /* A usable TR is required outside real mode; give it a minimal busy TSS. */
        if (st->cr0 & 1) {
                sregs.tr.type = 11;
                sregs.tr.present = 1;
                sregs.tr.s = 0;
                sregs.tr.limit = 0x67;
                sregs.tr.unusable = 0;
                sregs.ldt.unusable = 1;
        }

        regs.rax = st->gpr[0];
        regs.rcx = st->gpr[1];
        regs.rdx = st->gpr[2];
        regs.rbx = st->gpr[3];
        regs.rsp = st->gpr[4];
        regs.rbp = st->gpr[5];
        regs.rsi = st->gpr[6];
        regs.rdi = st->gpr[7];
        regs.r8 = st->gpr[8];
        regs.r9 = st->gpr[9];
        regs.r10 = st->gpr[10];
        regs.r11 = st->gpr[11];
        regs.r12 = st->gpr[12];
        regs.r13 = st->gpr[13];
        regs.r14 = st->gpr[14];
        regs.r15 = st->gpr[15];
        regs.rip = st->rip;
        regs.rflags = st->rflags | 2; /* bit 1 is always set */

        if (ioctl(k->vcpu_fd, KVM_SET_SREGS, &sregs) || ioctl(k->vcpu_fd, KVM_SET_REGS, &regs))
                return -errno;
        k->synced = false;
        return 0;
}

/* ---- exits: one helper per reason ------------------------------------- */

static void exit_io(struct kvm_backend *k, struct backend_exit *x)
{
        x->reason = HVT_EXIT_IO;
        x->u.io.port = k->run->io.port;
        x->u.io.size = k->run->io.size;
        x->u.io.dir = k->run->io.direction == KVM_EXIT_IO_OUT ? HVT_IO_OUT : HVT_IO_IN;
        x->u.io.count = k->run->io.count;
        x->u.io.data = (uint8_t *)k->run + k->run->io.data_offset;
}

static void exit_mmio(struct kvm_backend *k, struct backend_exit *x)
{
        x->reason = HVT_EXIT_MMIO;
        x->u.mmio.addr = k->run->mmio.phys_addr;
        x->u.mmio.len = k->run->mmio.len;
        x->u.mmio.is_write = k->run->mmio.is_write;
        x->u.mmio.data = k->run->mmio.data;
}

static void exit_fail_entry(struct kvm_backend *k, struct backend_exit *x)
{
        x->reason = HVT_EXIT_FAIL_ENTRY;
        x->u.fail_entry.hw_reason = k->run->fail_entry.hardware_entry_failure_reason;
        x->u.fail_entry.cpu = k->run->fail_entry.cpu;
}

static void exit_internal(struct kvm_backend *k, struct backend_exit *x)
{
        uint32_t n = k->run->internal.ndata;

        x->reason = HVT_EXIT_INTERNAL;
        x->u.internal.suberror = k->run->internal.suberror;
        if (n > HVT_INTERNAL_MAX_DATA)
                n = HVT_INTERNAL_MAX_DATA;
        if (n > sizeof(k->run->internal.data) / sizeof(k->run->internal.data[0]))
                n = sizeof(k->run->internal.data) / sizeof(k->run->internal.data[0]);
        x->u.internal.ndata = n;
        memcpy(x->u.internal.data, k->run->internal.data, n * sizeof(uint64_t));
}

static void exit_debug(struct kvm_backend *k, struct backend_exit *x)
{
        x->reason = HVT_EXIT_DEBUG;
        x->u.debug.exception = k->run->debug.arch.exception;
        x->u.debug.pc = k->run->debug.arch.pc;
        x->u.debug.dr6 = k->run->debug.arch.dr6;
        x->u.debug.dr7 = k->run->debug.arch.dr7;
}

/* KVM_SET_GUEST_DEBUG with what single-stepping and the breakpoint ask for together. */
static int guest_debug(struct kvm_backend *k, bool step, bool bp, uint64_t linear)
{
        struct kvm_guest_debug dbg = { 0 };

        if (step || bp)
                dbg.control = KVM_GUESTDBG_ENABLE | (step ? KVM_GUESTDBG_SINGLESTEP : 0);
        if (bp) {
                /* DR0, execute, length 1: a fault before the instruction runs. */
                dbg.control |= KVM_GUESTDBG_USE_HW_BP;
                dbg.arch.debugreg[0] = linear;
                dbg.arch.debugreg[7] = X86_DR7_L0;
        }
        if (ioctl(k->vcpu_fd, KVM_SET_GUEST_DEBUG, &dbg))
                return -errno;
        k->single_step = step;
        k->bp_on = bp;
        k->bp_linear = linear;
        return 0;
}

/* One KVM_RUN, its exit in x.  0, or -errno for an error of the ioctl itself. */
static int run_once(struct kvm_backend *k, struct backend_exit *x)
{
        int ret;

        memset(x, 0, sizeof(*x));
        ret = ioctl(k->vcpu_fd, KVM_RUN, 0);
        k->run->immediate_exit = 0;
        if (ret < 0 && errno != EINTR && errno != EAGAIN)
                return -errno;
        k->synced = true;
        if (ret < 0) {
                /* A signal (a kick, a timer, ^C) interrupted the run. */
                x->reason = HVT_EXIT_INTR;
                x->raw = KVM_EXIT_INTR;
                return 0;
        }
        x->raw = k->run->exit_reason;
        switch (k->run->exit_reason) {
        case KVM_EXIT_IO: exit_io(k, x); break;
        case KVM_EXIT_MMIO: exit_mmio(k, x); break;
        case KVM_EXIT_HLT: x->reason = HVT_EXIT_HLT; break;
        case KVM_EXIT_INTR: x->reason = HVT_EXIT_INTR; break;
        case KVM_EXIT_IRQ_WINDOW_OPEN: x->reason = HVT_EXIT_IRQ_WINDOW; break;
        case KVM_EXIT_DEBUG: exit_debug(k, x); break;
        case KVM_EXIT_SHUTDOWN: x->reason = HVT_EXIT_SHUTDOWN; break;
        case KVM_EXIT_FAIL_ENTRY: exit_fail_entry(k, x); break;
        case KVM_EXIT_INTERNAL_ERROR: exit_internal(k, x); break;
        default: x->reason = HVT_EXIT_UNKNOWN; break;
        }
        return 0;
}

/* Whether the instruction at st's CS:RIP is a HLT (after any prefixes). */
static bool at_hlt(const struct kvm_backend *k, const struct hvt_vcpu_state *st)
{
        const struct x86_mem m = { .ram = k->base.mem, .size = k->base.mem_size };
        bool longmode = hvt_state_code_bits(st) == 64;
        uint8_t code[15];
        size_t n = x86_read_linear(&m, st, hvt_state_pc(st), code, sizeof(code));

        for (size_t i = 0; i < n; i++) {
                uint8_t b = code[i];

                if (b == 0x26 || b == 0x2e || b == 0x36 || b == 0x3e || b == 0x64 || b == 0x65 ||
                    b == 0x66 || b == 0x67 || b == 0xf2 || b == 0xf3 ||
                    (longmode && (b & 0xf0) == 0x40))
                        continue;
                return b == 0xf4;
        }
        return false;
}

/*
 * A run that starts at the breakpoint's instruction must not stop there
 * before it runs.  RFLAGS.RF is the architectural way, but a replay on
 * kvm_pvm spun at one RIP until CI's timeout, as it would where RF is not
 * honoured (the breakpoint hits again at once, forever; not measured: no
 * /dev/kvm where this was written).  So the instruction is stepped over
 * with the breakpoint off, which works wherever single-stepping does.
 * Returns 1 with x filled when that step ended in an exit of its own (an
 * OUT, a kick, a crash): that is the run's exit.  0 to run on, or -errno.
 */
static int step_over_breakpoint(struct kvm_backend *k, struct backend_exit *x)
{
        bool step = k->single_step;
        uint64_t linear = k->bp_linear;
        struct hvt_vcpu_state st;
        int err, err2;

        if (!k->bp_on)
                return 0;
        err = kvm_get_state(&k->base, &st);
        if (err || hvt_state_pc(&st) != linear)
                return err;
        if (at_hlt(k, &st)) {
                /*
                 * kvm_pvm runs HLT through while stepping (docs/backends.md):
                 * a stepped HLT would lose the HLT exit the recording has.
                 * RF is all there is here.
                 */
                st.rflags |= X86_RFLAGS_RF;
                return kvm_set_state(&k->base, &st);
        }
        err = guest_debug(k, true, false, 0);
        if (err)
                return err;
        err = run_once(k, x);
        err2 = guest_debug(k, step, true, linear);
        if (err || err2)
                return err ? err : err2;
        if (x->reason == HVT_EXIT_DEBUG && !step && (x->u.debug.dr6 & X86_DR6_BS))
                return 0; /* the one instruction ran: on to the breakpoint */
        return 1;
}

int kvm_run_vcpu(struct backend *b, struct backend_exit *x)
{
        struct kvm_backend *k = to_kvm(b);
        int ret;

        ret = step_over_breakpoint(k, x);
        if (ret)
                return ret < 0 ? ret : 0;
        return run_once(k, x);
}

static int kvm_inject(struct backend *b, uint8_t vector)
{
        struct kvm_interrupt irq = { .irq = vector };

        if (ioctl(to_kvm(b)->vcpu_fd, KVM_INTERRUPT, &irq))
                return errno == EEXIST ? -EBUSY : -errno;
        return 0;
}

/*
 * KVM_NMI makes an NMI pending; KVM injects it when the vCPU can take it
 * (no NMI blocking, no MOV SS shadow; on Intel also no STI blocking).
 * With now, the NMI blocking KVM_GET_VCPU_EVENTS reports is cleared
 * first, so an NMI can arrive before the previous handler's IRET (what
 * eager and blind are for); KVM still waits for a shadow to end.  Not
 * measured on the machine this was written on (no /dev/kvm):
 * docs/backends.md.
 */
static int kvm_inject_nmi(struct backend *b, bool now)
{
        struct kvm_backend *k = to_kvm(b);
        struct kvm_vcpu_events ev;

        memset(&ev, 0, sizeof(ev));
        if (ioctl(k->vcpu_fd, KVM_GET_VCPU_EVENTS, &ev))
                return -errno;
        if (ev.nmi.pending || ev.nmi.injected)
                return -EBUSY;
        if (now && ev.nmi.masked) {
                ev.nmi.masked = 0;
                ev.flags &= KVM_VCPUEVENT_VALID_SHADOW;
                if (ioctl(k->vcpu_fd, KVM_SET_VCPU_EVENTS, &ev))
                        return -errno;
        }
        if (ioctl(k->vcpu_fd, KVM_NMI))
                return -errno;
        return 0;
}

int kvm_request_window(struct backend *b, bool on)
{
        to_kvm(b)->run->request_interrupt_window = on;
        return 0;
}

int kvm_set_single_step(struct backend *b, bool on)
{
        struct kvm_backend *k = to_kvm(b);

        return guest_debug(k, on, k->bp_on, k->bp_linear);
}

int kvm_set_breakpoint(struct backend *b, bool on, uint64_t linear)
{
        struct kvm_backend *k = to_kvm(b);

        return guest_debug(k, k->single_step, on, linear);
}

void kvm_kick(struct backend *b)
{
        /* Closes the race with a signal arriving just before KVM_RUN. */
        to_kvm(b)->run->immediate_exit = 1;
}

const struct backend_ops kvm_backend_ops = {
        .name = "kvm",
        .summary = "Linux KVM, userspace irqchip: hvrec decides when to inject",
        /* No device in the kernel: every port access and every HLT comes out to hvrec. */
        .caps = HVT_CAP_SINGLE_STEP | HVT_CAP_REPORT_SHADOW | HVT_CAP_REPORT_READY |
                HVT_CAP_INJECT_QUEUE | HVT_CAP_KICK | HVT_CAP_WINDOW | HVT_CAP_IO_EXITS |
                HVT_CAP_HLT_EXITS,
        .probe = kvm_probe,
        .create = kvm_create,
        .destroy = kvm_destroy,
        .version = kvm_version,
        .get_state = kvm_get_state,
        .set_state = kvm_set_state,
        .run = kvm_run_vcpu,
        .inject = kvm_inject,
        .inject_nmi = kvm_inject_nmi,
        .request_window = kvm_request_window,
        .set_single_step = kvm_set_single_step,
        .kick = kvm_kick,
        .set_breakpoint = kvm_set_breakpoint,
};
