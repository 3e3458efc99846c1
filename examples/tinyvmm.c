// SPDX-License-Identifier: MIT
/*
 * tinyvmm: a small KVM VMM of its own that records its guest with libhvtrace.
 *
 * One vCPU in real mode, KVM's userspace irqchip (the VMM injects with
 * KVM_INTERRUPT), and the hvtrace guest ABI (docs/guest-abi.md): console on
 * port 0xE9, exit status on 0xF4, interrupt requests on 0xE0 and the
 * delivery probe on 0xE2.  Every exit is written to the trace with the
 * vCPU's full state and KVM's interruptibility report, and so are the
 * interrupts the guest raises, the VMM's injections and the deliveries the
 * probe sees, so that `hvreplay check TRACE` can judge every delivery.
 * docs/integrating.md explains where each call goes and why; hvrec
 * (src/backends/kvm.c, src/record/) does the same with many more options.
 *
 *     make                      # cc tinyvmm.c $(pkg-config --cflags --libs hvtrace)
 *     ./tinyvmm guest.zst       # status 0: the guest took its interrupts and exited 0
 *     hvreplay check guest.zst
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <linux/kvm.h>

#include <hvtrace/hvtrace.h>

#define MEM_SIZE   0x100000ul /* guest RAM at guest-physical 0 */
#define LOAD_ADDR  0x1000u    /* the guest is loaded and starts here, at 0000:1000 */
#define MAX_EXITS  100000     /* a guest stuck in a loop of exits ends the run */
#define TIMEOUT_S  10         /* ... and so does one that stops exiting */
#define PORT_IRQ   0xe0
#define PORT_PROBE 0xe2
#define PORT_CON   0xe9
#define PORT_EXIT  0xf4
/* Where KVM may put its real-mode TSS on Intel: out of the guest's way, below 4 GiB. */
#define KVM_TSS_ADDR 0xfffbd000ul

/* Exit statuses of tinyvmm. */
#define STATUS_OK    0 /* the guest wrote 0 to port 0xF4 */
#define STATUS_GUEST 1 /* any other end of the run: see the trace's END record */
#define STATUS_SETUP 2 /* bad usage, no usable KVM, the trace cannot be written */

/*
 * The guest, assembled with `nasm -f bin` (org 0x1000, 16-bit).  It asks for
 * interrupt 0x30 twice: first with IF = 0, so the VMM must wait until the
 * guest's STI; HLT, then with IF = 1, so the VMM can inject at once.  The
 * handler's first instruction is the delivery probe.  (clang-format would
 * put each byte on a line of its own and lose the listing.)
 */
// clang-format off
static const uint8_t guest_code[] = {
        0x31, 0xc0,                         /* 1000 start:  xor ax, ax                  */
        0x8e, 0xd8,                         /* 1002         mov ds, ax                  */
        0x8e, 0xd0,                         /* 1004         mov ss, ax                  */
        0xbc, 0x00, 0x10,                   /* 1006         mov sp, 0x1000              */
        0xc7, 0x06, 0xc0, 0x00, 0x4f, 0x10, /* 1009         mov word [0x30*4], handler  */
        0xa3, 0xc2, 0x00,                   /* 100f         mov word [0x30*4+2], ax     */
        0xbe, 0x58, 0x10,                   /* 1012         mov si, hello               */
        0xac,                               /* 1015 print:  lodsb                       */
        0x84, 0xc0,                         /* 1016         test al, al                 */
        0x74, 0x04,                         /* 1018         jz ask1                     */
        0xe6, 0xe9,                         /* 101a         out 0xe9, al    ; console   */
        0xeb, 0xf7,                         /* 101c         jmp print                   */
        0xb0, 0x30,                         /* 101e ask1:   mov al, 0x30                */
        0xe6, 0xe0,                         /* 1020         out 0xe0, al    ; IF = 0    */
        0xfa,                               /* 1022 wait1:  cli                         */
        0x80, 0x3e, 0x57, 0x10, 0x00,       /* 1023         cmp byte [got], 0           */
        0x75, 0x04,                         /* 1028         jne took1                   */
        0xfb,                               /* 102a         sti             ; shadow:   */
        0xf4,                               /* 102b         hlt             ; taken after it */
        0xeb, 0xf4,                         /* 102c         jmp wait1                   */
        0xc6, 0x06, 0x57, 0x10, 0x00,       /* 102e took1:  mov byte [got], 0           */
        0xfb,                               /* 1033         sti                         */
        0xb0, 0x30,                         /* 1034         mov al, 0x30                */
        0xe6, 0xe0,                         /* 1036         out 0xe0, al    ; IF = 1    */
        0xfa,                               /* 1038 wait2:  cli                         */
        0x80, 0x3e, 0x57, 0x10, 0x00,       /* 1039         cmp byte [got], 0           */
        0x75, 0x04,                         /* 103e         jne took2                   */
        0xfb,                               /* 1040         sti                         */
        0xf4,                               /* 1041         hlt                         */
        0xeb, 0xf4,                         /* 1042         jmp wait2                   */
        0xe4, 0x61,                         /* 1044 took2:  in al, 0x61     ; all-ones  */
        0x3c, 0xff,                         /* 1046         cmp al, 0xff                */
        0xb0, 0x01,                         /* 1048         mov al, 1                   */
        0x75, 0x01,                         /* 104a         jne done                    */
        0x48,                               /* 104c         dec ax          ; al = 0    */
        0xe6, 0xf4,                         /* 104d done:   out 0xf4, al    ; exit      */
        0xe6, 0xe2,                         /* 104f handler: out 0xe2, al   ; probe     */
        0xc6, 0x06, 0x57, 0x10, 0x01,       /* 1051         mov byte [got], 1           */
        0xcf,                               /* 1056         iret                        */
        0x00,                               /* 1057 got:    db 0                        */
        /* 1058 hello: */
        'g', 'u', 'e', 's', 't', ':', ' ', 't', 'w', 'o', ' ', 'i', 'n', 't', 'e', 'r', 'r', 'u',
        'p', 't', 's', ',', ' ', 'p', 'l', 'e', 'a', 's', 'e', '\n', 0,
};
// clang-format on
_Static_assert(sizeof(guest_code) == 0x1077 - 0x1000, "the listing's addresses hold");

struct vmm {
        int kvm, vm, vcpu;
        uint8_t *mem;
        struct kvm_run *run;
        size_t run_size;

        struct hvt_writer *w;
        struct hvt_exit ex;  /* the last exit, as recorded */
        uint64_t t0;         /* when the header was written */
        uint64_t exits;      /* exit records written; the next exit's seq */
        uint64_t pending[4]; /* vectors raised and not yet injected, one bit each */
        int last_injected;   /* for a probe whose handler no single IVT entry names */
        unsigned raised, injected, delivered;

        bool done; /* how the run ended, for the END record */
        uint32_t why, detail;
        int status;
        char msg[160];
};

static volatile sig_atomic_t timed_out;
static struct kvm_run *volatile alarm_run;

static uint64_t now_ns(clockid_t clock)
{
        struct timespec ts;

        clock_gettime(clock, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void on_alarm(int sig)
{
        (void)sig;
        timed_out = 1;
        /* Closes the race with an alarm that fires just before KVM_RUN. */
        if (alarm_run)
                alarm_run->immediate_exit = 1;
}

static void finish(struct vmm *v, uint32_t why, int status, uint32_t detail, const char *fmt, ...)
{
        va_list ap;

        if (v->done)
                return;
        v->done = true;
        v->why = why;
        v->status = status;
        v->detail = detail;
        va_start(ap, fmt);
        vsnprintf(v->msg, sizeof(v->msg), fmt, ap);
        va_end(ap);
}

static void write_failed(struct vmm *v, int err)
{
        finish(v, HVT_END_ERROR, STATUS_SETUP, 0, "writing the trace: %s", hvt_strerror(err));
}

/* Guest memory at a linear address (no paging in real mode): how many bytes were read. */
static size_t guest_read(const struct vmm *v, uint64_t la, void *buf, size_t n)
{
        if (la >= MEM_SIZE)
                return 0;
        if (n > MEM_SIZE - la)
                n = (size_t)(MEM_SIZE - la);
        memcpy(buf, v->mem + la, n);
        return n;
}

/* The linear address of vector vec's handler from the IVT; false if the IDTR does not cover it. */
static bool ivt_handler(const struct vmm *v, unsigned vec, uint64_t *handler)
{
        const struct hvt_vcpu_state *st = &v->ex.st;
        uint8_t e[4];

        if (4 * vec + 3 > st->idt.limit || guest_read(v, st->idt.base + 4 * vec, e, 4) != 4)
                return false;
        *handler = ((uint64_t)(e[2] | e[3] << 8) << 4) + (uint64_t)(e[0] | e[1] << 8);
        return true;
}

/* ---- KVM set-up ----------------------------------------------------------- */

/* The CPUID KVM supports (as hvrec does; the real-mode guest does not use it). */
static int set_cpuid(struct vmm *v)
{
        struct kvm_cpuid2 *cpuid;
        int n = 128, err;

        for (;;) {
                cpuid = calloc(1, sizeof(*cpuid) + (size_t)n * sizeof(cpuid->entries[0]));
                if (!cpuid)
                        return -ENOMEM;
                cpuid->nent = (uint32_t)n;
                if (!ioctl(v->kvm, KVM_GET_SUPPORTED_CPUID, cpuid))
                        break;
                err = -errno;
                free(cpuid);
                if (err != -E2BIG)
                        return err;
                n *= 2;
        }
        err = ioctl(v->vcpu, KVM_SET_CPUID2, cpuid) ? -errno : 0;
        free(cpuid);
        return err;
}

/*
 * Real mode at 0000:LOAD_ADDR, as docs/guest-abi.md gives hvrec's guests:
 * every segment selector and base 0 (KVM's reset state already has the
 * real-mode limits and access rights), IF = 0, the IVT at 0.
 */
static int set_real_mode(struct vmm *v)
{
        struct kvm_sregs sregs;
        struct kvm_regs regs;

        if (ioctl(v->vcpu, KVM_GET_SREGS, &sregs))
                return -errno;
        struct kvm_segment *all[] = { &sregs.cs, &sregs.ds, &sregs.es,
                                      &sregs.fs, &sregs.gs, &sregs.ss };
        for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
                all[i]->selector = 0;
                all[i]->base = 0;
        }
        sregs.idt.base = 0;
        sregs.idt.limit = 0x3ff;
        memset(&regs, 0, sizeof(regs));
        regs.rip = LOAD_ADDR;
        regs.rsp = LOAD_ADDR;
        regs.rflags = 0x2; /* bit 1 is always set; IF = 0 */
        if (ioctl(v->vcpu, KVM_SET_SREGS, &sregs) || ioctl(v->vcpu, KVM_SET_REGS, &regs))
                return -errno;
        return 0;
}

/* A VM with RAM at 0 and one vCPU, as src/backends/kvm.c makes it.  why: the failed step. */
static int vm_create(struct vmm *v, char *why, size_t len)
{
        struct kvm_userspace_memory_region region = { 0 };
        int n, err;

        v->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        if (v->kvm < 0) {
                err = -errno;
                snprintf(why, len, "/dev/kvm: %s", strerror(errno));
                return err;
        }
        if (ioctl(v->kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
                snprintf(why, len, "/dev/kvm: not KVM API version %d", KVM_API_VERSION);
                return -ENOTSUP;
        }
        v->vm = ioctl(v->kvm, KVM_CREATE_VM, 0);
        if (v->vm < 0) {
                err = -errno;
                snprintf(why, len, "KVM_CREATE_VM: %s", strerror(errno));
                return err;
        }
        /* Intel without unrestricted guest needs it for real mode; elsewhere it is a no-op. */
        if (ioctl(v->vm, KVM_SET_TSS_ADDR, KVM_TSS_ADDR)) {
                err = -errno;
                snprintf(why, len, "KVM_SET_TSS_ADDR: %s", strerror(errno));
                return err;
        }

        v->mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (v->mem == MAP_FAILED) {
                v->mem = NULL;
                err = -errno;
                snprintf(why, len, "guest memory: %s", strerror(errno));
                return err;
        }
        region.slot = 0;
        region.guest_phys_addr = 0;
        region.memory_size = MEM_SIZE;
        region.userspace_addr = (uint64_t)(uintptr_t)v->mem;
        if (ioctl(v->vm, KVM_SET_USER_MEMORY_REGION, &region)) {
                err = -errno;
                snprintf(why, len, "KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
                return err;
        }

        v->vcpu = ioctl(v->vm, KVM_CREATE_VCPU, 0);
        if (v->vcpu < 0) {
                err = -errno;
                snprintf(why, len, "KVM_CREATE_VCPU: %s", strerror(errno));
                return err;
        }
        err = set_cpuid(v);
        if (err) {
                snprintf(why, len, "KVM_SET_CPUID2: %s", strerror(-err));
                return err;
        }
        n = ioctl(v->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
        if (n < (int)sizeof(struct kvm_run)) {
                snprintf(why, len, "KVM_GET_VCPU_MMAP_SIZE: %d", n);
                return -EINVAL;
        }
        v->run_size = (size_t)n;
        v->run = mmap(NULL, v->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->vcpu, 0);
        if (v->run == MAP_FAILED) {
                v->run = NULL;
                err = -errno;
                snprintf(why, len, "kvm_run: %s", strerror(errno));
                return err;
        }
        memcpy(v->mem + LOAD_ADDR, guest_code, sizeof(guest_code));
        err = set_real_mode(v);
        if (err)
                snprintf(why, len, "setting the vCPU's registers: %s", strerror(-err));
        return err;
}

static void vm_destroy(struct vmm *v)
{
        if (v->run)
                munmap(v->run, v->run_size);
        if (v->vcpu >= 0)
                close(v->vcpu);
        if (v->mem)
                munmap(v->mem, MEM_SIZE);
        if (v->vm >= 0)
                close(v->vm);
        if (v->kvm >= 0)
                close(v->kvm);
}

/* ---- the vCPU's state, as the trace holds it -------------------------------- */

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

/*
 * KVM's interruptibility report.  The VALID bits say what KVM reports at
 * all; ready_for_interrupt_injection is what this VMM injects on.
 */
static uint64_t intr_from_kvm(const struct kvm_run *run, const struct kvm_vcpu_events *ev)
{
        uint64_t intr = HVT_INTR_VALID_IF | HVT_INTR_VALID_NMI | HVT_INTR_VALID_READY |
                        HVT_INTR_VALID_PENDING;

        if (ev->flags & KVM_VCPUEVENT_VALID_SHADOW) {
                intr |= HVT_INTR_VALID_SHADOW;
                if (ev->interrupt.shadow & KVM_X86_SHADOW_INT_STI)
                        intr |= HVT_INTR_STI_SHADOW;
                if (ev->interrupt.shadow & KVM_X86_SHADOW_INT_MOV_SS)
                        intr |= HVT_INTR_MOVSS_SHADOW;
        }
        if (ev->nmi.masked)
                intr |= HVT_INTR_NMI_BLOCKED;
        if (run->ready_for_interrupt_injection)
                intr |= HVT_INTR_READY;
        if (run->if_flag)
                intr |= HVT_INTR_IF;
        if (ev->interrupt.injected)
                intr |= HVT_INTR_PENDING;
        if (run->request_interrupt_window)
                intr |= HVT_INTR_WINDOW_REQ;
        return intr;
}

/*
 * Three ioctls per exit keep this short; hvrec gets the same from the
 * kvm_run page with KVM_CAP_SYNC_REGS and no system call.
 */
static int read_state(const struct vmm *v, struct hvt_vcpu_state *st)
{
        struct kvm_vcpu_events ev;
        struct kvm_sregs s;
        struct kvm_regs r;

        if (ioctl(v->vcpu, KVM_GET_REGS, &r) || ioctl(v->vcpu, KVM_GET_SREGS, &s) ||
            ioctl(v->vcpu, KVM_GET_VCPU_EVENTS, &ev))
                return -errno;
        const uint64_t gpr[16] = { r.rax, r.rcx, r.rdx, r.rbx, r.rsp, r.rbp, r.rsi, r.rdi,
                                   r.r8,  r.r9,  r.r10, r.r11, r.r12, r.r13, r.r14, r.r15 };

        memset(st, 0, sizeof(*st));
        memcpy(st->gpr, gpr, sizeof(gpr));
        st->rip = r.rip;
        st->rflags = r.rflags;
        seg_from_kvm(&st->seg[HVT_ES], &s.es);
        seg_from_kvm(&st->seg[HVT_CS], &s.cs);
        seg_from_kvm(&st->seg[HVT_SS], &s.ss);
        seg_from_kvm(&st->seg[HVT_DS], &s.ds);
        seg_from_kvm(&st->seg[HVT_FS], &s.fs);
        seg_from_kvm(&st->seg[HVT_GS], &s.gs);
        st->cr0 = s.cr0;
        st->cr2 = s.cr2;
        st->cr3 = s.cr3;
        st->cr4 = s.cr4;
        st->efer = s.efer;
        st->gdt.base = s.gdt.base;
        st->gdt.limit = s.gdt.limit;
        st->idt.base = s.idt.base;
        st->idt.limit = s.idt.limit;
        st->intr = intr_from_kvm(v->run, &ev);
        return 0;
}

/* ---- the trace ------------------------------------------------------------ */

/* The header, then the memory image, before the vCPU's first KVM_RUN. */
static int write_prologue(struct vmm *v, int argc, char **argv)
{
        char backend_version[64];
        struct hvt_header h = { 0 };
        int err;

        snprintf(backend_version, sizeof(backend_version), "KVM API %d, userspace irqchip",
                 KVM_API_VERSION);
        h.h.load_addr = LOAD_ADDR;
        h.h.entry = LOAD_ADDR;
        h.h.mem_size = MEM_SIZE;
        h.h.start_realtime_ns = now_ns(CLOCK_REALTIME);
        h.h.guest_mode = HVT_MODE_REAL;
        h.h.flags = 0; /* no single-step, kicks, write records or step-inject */
        /*
         * What the checker may rely on: KVM reports shadows and readiness,
         * the VMM injects, and with no device in the kernel every port
         * access and every HLT exits.
         */
        h.h.backend_caps = HVT_CAP_REPORT_SHADOW | HVT_CAP_REPORT_READY | HVT_CAP_INJECT_QUEUE |
                           HVT_CAP_WINDOW | HVT_CAP_IO_EXITS | HVT_CAP_HLT_EXITS;
        h.h.inject_policy = HVT_POLICY_WINDOW;
        h.str[HVT_STR_TOOL_VERSION] = "tinyvmm (libhvtrace " HVT_VERSION_STRING ")";
        h.str[HVT_STR_BACKEND] = "kvm";
        h.str[HVT_STR_BACKEND_VERSION] = backend_version;
        h.str[HVT_STR_GUEST] = "tinyvmm's built-in guest";
        h.argv = (const char *const *)argv;
        h.argc = argc;
        err = hvt_write_header(v->w, &h);
        if (err)
                return err;
        /* Readers start from zeroed RAM: the image is only what the VMM put there. */
        return hvt_write_memory(v->w, LOAD_ADDR, v->mem + LOAD_ADDR, sizeof(guest_code));
}

/* Right after KVM_RUN returns: the exit, its state and its data. */
static int record_exit(struct vmm *v, uint64_t t_in, uint64_t t_out)
{
        struct kvm_run *run = v->run;
        struct hvt_exit *ex = &v->ex;
        uint32_t n;
        int err;

        memset(&ex->u, 0, sizeof(ex->u));
        ex->time_ns = t_out - v->t0;
        ex->guest_ns = t_out - t_in;
        ex->raw_reason = run->exit_reason;
        err = read_state(v, &ex->st);
        if (err)
                return err;
        ex->insn_len = (uint8_t)guest_read(v, hvt_state_pc(&ex->st), ex->insn, sizeof(ex->insn));
        switch (run->exit_reason) {
        case KVM_EXIT_IO:
                ex->reason = HVT_EXIT_IO;
                ex->u.io.io.port = run->io.port;
                ex->u.io.io.size = run->io.size;
                ex->u.io.io.dir = run->io.direction == KVM_EXIT_IO_OUT ? HVT_IO_OUT : HVT_IO_IN;
                ex->u.io.io.count = run->io.count;
                ex->u.io.data = (uint8_t *)run + run->io.data_offset;
                /* What the guest will read is part of the exit: answer before recording. */
                if (run->io.direction == KVM_EXIT_IO_IN)
                        memset((uint8_t *)run + run->io.data_offset, 0xff,
                               (size_t)run->io.size * run->io.count);
                break;
        case KVM_EXIT_MMIO:
                ex->reason = HVT_EXIT_MMIO;
                ex->u.mmio.addr = run->mmio.phys_addr;
                ex->u.mmio.len = run->mmio.len;
                ex->u.mmio.is_write = run->mmio.is_write;
                if (!run->mmio.is_write)
                        memset(run->mmio.data, 0xff, sizeof(run->mmio.data));
                memcpy(ex->u.mmio.data, run->mmio.data, sizeof(ex->u.mmio.data));
                break;
        case KVM_EXIT_HLT: ex->reason = HVT_EXIT_HLT; break;
        case KVM_EXIT_IRQ_WINDOW_OPEN: ex->reason = HVT_EXIT_IRQ_WINDOW; break;
        case KVM_EXIT_SHUTDOWN: ex->reason = HVT_EXIT_SHUTDOWN; break;
        case KVM_EXIT_FAIL_ENTRY:
                ex->reason = HVT_EXIT_FAIL_ENTRY;
                ex->u.fail_entry.hw_reason = run->fail_entry.hardware_entry_failure_reason;
                ex->u.fail_entry.cpu = run->fail_entry.cpu;
                break;
        case KVM_EXIT_INTERNAL_ERROR:
                ex->reason = HVT_EXIT_INTERNAL;
                n = run->internal.ndata;
                if (n > HVT_INTERNAL_MAX_DATA)
                        n = HVT_INTERNAL_MAX_DATA;
                if (n > sizeof(run->internal.data) / sizeof(run->internal.data[0]))
                        n = sizeof(run->internal.data) / sizeof(run->internal.data[0]);
                ex->u.internal.internal.suberror = run->internal.suberror;
                ex->u.internal.internal.ndata = n;
                memcpy(ex->u.internal.data, run->internal.data, n * sizeof(uint64_t));
                break;
        default: ex->reason = HVT_EXIT_UNKNOWN; break;
        }
        return hvt_write_exit(v->w, ex);
}

/* ---- the guest ABI -------------------------------------------------------- */

static void on_console(struct vmm *v)
{
        const struct hvt_disk_io *io = &v->ex.u.io.io;
        uint8_t text[256];
        uint32_t n = 0;
        int err;

        /* The low byte of each element is the character. */
        for (uint32_t i = 0; i < io->count && n < sizeof(text); i++)
                text[n++] = v->ex.u.io.data[(size_t)i * io->size];
        /* The trace keeps the raw bytes; the terminal gets nothing it could obey. */
        for (uint32_t i = 0; i < n; i++)
                putchar(text[i] == '\n' || (text[i] >= 0x20 && text[i] < 0x7f) ? text[i] : '?');
        err = hvt_write_console(v->w, v->ex.seq, text, n);
        if (err)
                write_failed(v, err);
}

static void on_exit_port(struct vmm *v)
{
        const struct hvt_disk_io *io = &v->ex.u.io.io;
        uint32_t value = 0;

        for (unsigned i = 0; i < io->size && i < 4; i++)
                value |= (uint32_t)v->ex.u.io.data[i] << (8 * i);
        finish(v, HVT_END_GUEST_EXIT, value ? STATUS_GUEST : STATUS_OK, value,
               "guest exited with status %u", value);
}

/* The guest raises an interrupt: pending until the VMM can inject it. */
static void on_irq_request(struct vmm *v)
{
        const struct hvt_disk_io *io = &v->ex.u.io.io;
        int err;

        for (uint32_t i = 0; i < io->count; i++) {
                uint8_t vec = v->ex.u.io.data[(size_t)i * io->size];
                struct hvt_disk_raise r = { .seq = v->ex.seq,
                                            .vector = vec,
                                            .source = HVT_SRC_GUEST };

                err = hvt_write_raise(v->w, &r);
                if (err) {
                        write_failed(v, err);
                        return;
                }
                v->raised++;
                v->pending[vec / 64] |= 1ull << (vec % 64); /* a second request merges */
        }
}

/*
 * The delivery probe, the first instruction of every handler: the
 * interrupt frame on the stack says where the interrupt landed.  This is
 * the real-mode case of docs/guest-abi.md; hvrec's src/record/abi.c reads
 * the frames of every mode.
 */
static void on_probe(struct vmm *v)
{
        const struct hvt_vcpu_state *st = &v->ex.st;
        struct hvt_disk_deliver d = { .seq = v->ex.seq, .frame_bits = 16 };
        uint64_t pc = hvt_state_pc(st), sp = st->gpr[HVT_F_RSP], h;
        uint16_t frame[3]; /* IP, CS, FLAGS */
        uint8_t at[2];
        int matches = 0, err;

        /* KVM reports RIP at the probe's OUT (VMX, SVM) or past it (kvm_pvm): both occur. */
        if (guest_read(v, pc, at, 2) == 2 && at[0] == 0xe6 && at[1] == PORT_PROBE)
                d.handler = pc;
        else
                d.handler = pc - 2; /* out imm8, al is 2 bytes */
        for (unsigned vec = 0; vec < 256; vec++) {
                if (ivt_handler(v, vec, &h) && h == d.handler) {
                        d.vector = (uint8_t)vec;
                        matches++;
                }
        }
        if (matches == 1) {
                d.vector_from = HVT_VEC_TABLE;
        } else {
                /* Shared (or no) IVT entry: the vector this VMM injected last. */
                d.vector = (uint8_t)(v->last_injected >= 0 ? v->last_injected : 0);
                d.vector_from = v->last_injected >= 0 ? HVT_VEC_INJECTED : HVT_VEC_UNKNOWN;
        }
        /* The 16-bit stack wraps inside its 64 KiB segment. */
        for (unsigned i = 0; i < 3; i++) {
                uint8_t b[2] = { 0, 0 };

                guest_read(v, st->seg[HVT_SS].base + ((sp + 2 * i) & 0xffff), b, 2);
                frame[i] = (uint16_t)(b[0] | b[1] << 8);
        }
        d.ip = frame[0];
        d.cs = frame[1];
        d.flags = frame[2];
        d.cs_base = (uint64_t)d.cs << 4;
        d.sp = (sp & ~0xffffull) | ((sp + 6) & 0xffff);
        d.ss = st->seg[HVT_SS].selector;
        err = hvt_write_deliver(v->w, &d);
        if (err)
                write_failed(v, err);
        v->delivered++;
}

static void on_io(struct vmm *v)
{
        const struct hvt_disk_io *io = &v->ex.u.io.io;

        if (io->dir != HVT_IO_OUT)
                return; /* reads were answered (all-ones) in record_exit */
        switch (io->port) {
        case PORT_CON: on_console(v); break;
        case PORT_EXIT: on_exit_port(v); break;
        case PORT_IRQ: on_irq_request(v); break;
        case PORT_PROBE: on_probe(v); break;
        default: break;
        }
}

static bool any_pending(const struct vmm *v)
{
        return v->pending[0] | v->pending[1] | v->pending[2] | v->pending[3];
}

/* Only an interrupt wakes a halted vCPU: none pending, or IF = 0, and the run is over. */
static void on_hlt(struct vmm *v)
{
        const struct hvt_vcpu_state *st = &v->ex.st;

        if (!(st->rflags & 0x200))
                finish(v, HVT_END_HALT, STATUS_GUEST, 0, "guest halted at %04x:%04llx with IF = 0",
                       st->seg[HVT_CS].selector, (unsigned long long)st->rip);
        else if (!any_pending(v))
                finish(v, HVT_END_HALT, STATUS_GUEST, 0,
                       "guest halted at %04x:%04llx with nothing left to wake it",
                       st->seg[HVT_CS].selector, (unsigned long long)st->rip);
}

static void on_crash(struct vmm *v, const char *what)
{
        const struct hvt_vcpu_state *st = &v->ex.st;

        finish(v, HVT_END_CRASH, STATUS_GUEST, v->ex.raw_reason, "guest crashed: %s at %04x:%04llx",
               what, st->seg[HVT_CS].selector, (unsigned long long)st->rip);
}

static void handle_exit(struct vmm *v)
{
        char what[64];

        switch (v->ex.reason) {
        case HVT_EXIT_IO: on_io(v); break;
        case HVT_EXIT_HLT: on_hlt(v); break;
        case HVT_EXIT_MMIO: /* recorded; reads return all-ones */
        case HVT_EXIT_IRQ_WINDOW: /* the injection below is the point */ break;
        case HVT_EXIT_INTERNAL:
                snprintf(what, sizeof(what), "KVM internal error, suberror %u",
                         v->ex.u.internal.internal.suberror);
                on_crash(v, what);
                break;
        case HVT_EXIT_SHUTDOWN: on_crash(v, "shutdown (triple fault)"); break;
        case HVT_EXIT_FAIL_ENTRY: on_crash(v, "VM entry failed"); break;
        default:
                snprintf(what, sizeof(what), "unexpected KVM exit reason %u", v->ex.raw_reason);
                on_crash(v, what);
                break;
        }
}

/*
 * Before the next KVM_RUN: inject the highest pending vector if KVM says
 * the vCPU can take it now, else ask KVM for an exit as soon as it can.
 * KVM_INTERRUPT while not ready would be delivered inside a shadow or with
 * IF = 0 on some hosts; while one is still queued it may be lost.
 */
static int inject_or_wait(struct vmm *v)
{
        const struct hvt_vcpu_state *st = &v->ex.st;
        struct kvm_interrupt irq;
        struct hvt_disk_inject in;
        int vec = 255;

        if (!any_pending(v)) {
                v->run->request_interrupt_window = 0;
                return 0;
        }
        if (!(st->intr & HVT_INTR_READY) || (st->intr & HVT_INTR_PENDING)) {
                v->run->request_interrupt_window = 1;
                return 0;
        }
        while (!(v->pending[vec / 64] & (1ull << (vec % 64))))
                vec--;
        irq.irq = (uint32_t)vec;
        if (ioctl(v->vcpu, KVM_INTERRUPT, &irq))
                return -errno;
        v->pending[vec / 64] &= ~(1ull << (vec % 64));
        v->last_injected = vec;
        v->injected++;
        v->run->request_interrupt_window = any_pending(v);

        /* The state it was injected in is the last exit's: nothing ran since. */
        memset(&in, 0, sizeof(in));
        in.after_seq = v->ex.seq;
        in.rip = st->rip;
        in.rflags = st->rflags;
        in.cs_base = st->seg[HVT_CS].base;
        in.cs = st->seg[HVT_CS].selector;
        if (!ivt_handler(v, (unsigned)vec, &in.handler))
                in.handler = 0;
        in.intr = (uint32_t)st->intr;
        in.vector = (uint8_t)vec;
        in.policy = HVT_POLICY_WINDOW;
        in.method = HVT_INJ_QUEUE;
        in.source = HVT_SRC_GUEST;
        return hvt_write_inject(v->w, &in);
}

/* ---- the run loop --------------------------------------------------------- */

static void run_loop(struct vmm *v)
{
        int err;

        while (!v->done) {
                uint64_t t_in = now_ns(CLOCK_MONOTONIC), t_out;
                int ret = ioctl(v->vcpu, KVM_RUN, 0);
                int run_errno = errno;

                t_out = now_ns(CLOCK_MONOTONIC);
                if (ret < 0 && run_errno == EINTR && timed_out) {
                        finish(v, HVT_END_TIMEOUT, STATUS_GUEST, 0, "timed out after %d s",
                               TIMEOUT_S);
                        break;
                }
                /* Another signal: nothing ran to an exit, run again. */
                if (ret < 0 && (run_errno == EINTR || run_errno == EAGAIN))
                        continue;
                if (ret < 0) {
                        finish(v, HVT_END_ERROR, STATUS_SETUP, 0, "KVM_RUN: %s",
                               strerror(run_errno));
                        break;
                }
                v->ex.seq = v->exits;
                err = record_exit(v, t_in, t_out);
                if (err) {
                        write_failed(v, err);
                        break;
                }
                v->exits++;
                handle_exit(v);
                if (!v->done && v->exits >= MAX_EXITS)
                        finish(v, HVT_END_MAX_EXITS, STATUS_GUEST, 0, "stopped after %d exits",
                               MAX_EXITS);
                if (v->done)
                        break;
                err = inject_or_wait(v);
                if (err)
                        finish(v, HVT_END_ERROR, STATUS_SETUP, 0, "injecting: %s",
                               hvt_strerror(err));
        }
}

/* The END record, always: without it a reader takes the trace for a cut one. */
static int write_end(struct vmm *v, uint64_t wall_ns)
{
        struct hvt_disk_end end = { 0 };

        end.exits = v->exits;
        end.wall_ns = wall_ns;
        end.last_rip = v->ex.st.rip;
        end.why = v->why;
        end.status = v->status;
        end.detail = v->detail;
        return hvt_write_end(v->w, &end, v->msg);
}

static void usage(FILE *f)
{
        fprintf(f, "usage: tinyvmm TRACE\n"
                   "Runs tinyvmm's guest on KVM and records it into TRACE (zstd), for\n"
                   "`hvreplay check TRACE`.  Status 0: the guest exited with 0; 1: the run\n"
                   "ended otherwise (the trace's end record says how); 2: usage, KVM or\n"
                   "trace error.\n");
}

int main(int argc, char **argv)
{
        struct hvt_writer_opts opts = { .size = sizeof(opts), .background_flush = 1 };
        struct vmm v = { .kvm = -1, .vm = -1, .vcpu = -1, .last_injected = -1 };
        /* No SA_RESTART: the alarm must end a KVM_RUN that never returns. */
        struct sigaction sa = { .sa_handler = on_alarm };
        sigset_t alrm;
        uint64_t t_start;
        char why[160];
        int err, cerr;

        if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
                usage(stdout);
                return STATUS_OK;
        }
        if (argc != 2 || argv[1][0] == '-' || !argv[1][0]) {
                usage(stderr);
                return STATUS_SETUP;
        }
        /* The headers this was built with and the library it runs with must agree. */
        if (hvt_version() >> 16 != HVT_VERSION_MAJOR) {
                fprintf(stderr, "tinyvmm: built for libhvtrace %s, running with %s\n",
                        HVT_VERSION_STRING, hvt_version_string());
                return STATUS_SETUP;
        }
        err = vm_create(&v, why, sizeof(why));
        if (err) {
                fprintf(stderr, "tinyvmm: %s\n", why);
                vm_destroy(&v);
                return STATUS_SETUP;
        }
        /*
         * The writer's flush thread inherits this thread's signal mask: with
         * SIGALRM blocked there, the alarm always lands on the vCPU thread,
         * the one whose KVM_RUN it must interrupt.
         */
        sigemptyset(&alrm);
        sigaddset(&alrm, SIGALRM);
        if (sigaction(SIGALRM, &sa, NULL) || sigprocmask(SIG_BLOCK, &alrm, NULL)) {
                fprintf(stderr, "tinyvmm: SIGALRM: %s\n", strerror(errno));
                vm_destroy(&v);
                return STATUS_SETUP;
        }
        /* Only now, with a VM that can run: no KVM, no trace file left behind. */
        err = hvt_writer_open(&v.w, argv[1], &opts);
        sigprocmask(SIG_UNBLOCK, &alrm, NULL);
        if (err) {
                fprintf(stderr, "tinyvmm: %s: %s\n", argv[1], hvt_strerror(err));
                vm_destroy(&v);
                return STATUS_SETUP;
        }
        v.t0 = now_ns(CLOCK_MONOTONIC);
        t_start = v.t0;
        err = write_prologue(&v, argc, argv);
        if (err) {
                write_failed(&v, err);
        } else {
                alarm_run = v.run;
                alarm(TIMEOUT_S);
                run_loop(&v);
                alarm(0);
                alarm_run = NULL;
        }
        fflush(stdout);
        err = write_end(&v, now_ns(CLOCK_MONOTONIC) - t_start);
        cerr = hvt_writer_close(v.w);
        err = err ? err : cerr;
        vm_destroy(&v);
        fprintf(stderr, "tinyvmm: %s\n", v.msg);
        fprintf(stderr, "tinyvmm: %u raised, %u injected, %u delivered; trace %s%s%s\n", v.raised,
                v.injected, v.delivered, argv[1], err ? ": " : "", err ? hvt_strerror(err) : "");
        if (err)
                return STATUS_SETUP;
        return v.status;
}
