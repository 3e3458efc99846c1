// SPDX-License-Identifier: MIT
/* The fake /dev/kvm of fakekvm.h: the KVM calls a VMM and the preload library make. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fakekvm.h"

#define FK_EXPORT   __attribute__((visibility("default")))
#define FK_VCPUS    4
#define FK_RUN_SIZE (3 * 4096)
#define FK_SYNC_ALL (KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS | KVM_SYNC_X86_EVENTS)

typedef int (*ioctl_fn)(int, unsigned long, ...);
typedef void *(*mmap_fn)(void *, size_t, int, int, int, off_t);

static struct {
        int kvm_fd, vm_fd;
        fakekvm_step_fn *step;
        void *ctx;
        int vcpu_fd[FK_VCPUS];
        struct fakekvm_cpu cpu[FK_VCPUS];
        unsigned nvcpus;
        bool no_sync;        /* HVT_FAKEKVM_NOSYNC: a KVM without KVM_CAP_SYNC_REGS */
        uint64_t dirty_seen; /* every kvm_dirty_regs a KVM_RUN found, ORed */
} fk = { .kvm_fd = -1, .vm_fd = -1 };

static void *real_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
        static mmap_fn fn;

        if (!fn)
                fn = (mmap_fn)dlsym(RTLD_NEXT, "mmap");
        return fn(addr, len, prot, flags, fd, off);
}

FK_EXPORT int fakekvm_open(fakekvm_step_fn *step, void *ctx)
{
        fk.step = step;
        fk.ctx = ctx;
        fk.no_sync = getenv("HVT_FAKEKVM_NOSYNC") != NULL;
        fk.kvm_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        return fk.kvm_fd;
}

/* HVT_FAKEKVM=ioloop: every run ends at the OUT of "out 0x80, al; jmp $" at 0x1000. */
FK_EXPORT void fakekvm_io_out(struct fakekvm_cpu *c, uint16_t port, uint8_t byte)
{
        struct kvm_run *r = c->run;

        r->exit_reason = KVM_EXIT_IO;
        r->io.direction = KVM_EXIT_IO_OUT;
        r->io.size = 1;
        r->io.port = port;
        r->io.count = 1;
        r->io.data_offset = 4096;
        ((uint8_t *)r)[4096] = byte;
}

static int ioloop_step(struct fakekvm_cpu *c, void *ctx)
{
        (void)ctx;
        c->regs.rip = 0x1002;
        fakekvm_io_out(c, 0x80, 0);
        return 0;
}

/* open and open64 of /dev/kvm, under HVT_FAKEKVM=ioloop; anything else goes on. */
static int open_at(const char *name, const char *path, int flags, va_list ap)
{
        typedef int (*open_fn)(const char *, int, ...);
        const char *fake = getenv("HVT_FAKEKVM");
        open_fn next = (open_fn)dlsym(RTLD_NEXT, name);
        mode_t mode = (flags & (O_CREAT | O_TMPFILE)) ? va_arg(ap, mode_t) : 0;

        if (fake && !strcmp(fake, "ioloop") && !strcmp(path, "/dev/kvm"))
                return fakekvm_open(ioloop_step, NULL);
        return next(path, flags, mode);
}

FK_EXPORT int open(const char *path, int flags, ...)
{
        va_list ap;
        int fd;

        va_start(ap, flags);
        fd = open_at("open", path, flags, ap);
        va_end(ap);
        return fd;
}

FK_EXPORT int open64(const char *path, int flags, ...)
{
        va_list ap;
        int fd;

        va_start(ap, flags);
        fd = open_at("open64", path, flags, ap);
        va_end(ap);
        return fd;
}

FK_EXPORT uint64_t fakekvm_dirty_seen(void)
{
        return fk.dirty_seen;
}

static struct fakekvm_cpu *cpu_of(int fd)
{
        for (unsigned i = 0; i < fk.nvcpus; i++)
                if (fk.vcpu_fd[i] == fd)
                        return &fk.cpu[i];
        return NULL;
}

static int fail(int err)
{
        errno = err;
        return -1;
}

static int create_vcpu(void)
{
        struct fakekvm_cpu *c;
        int fd;

        if (fk.nvcpus == FK_VCPUS)
                return fail(EINVAL);
        fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return -1;
        c = &fk.cpu[fk.nvcpus];
        memset(c, 0, sizeof(*c));
        c->run = real_mmap(NULL, FK_RUN_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                           -1, 0);
        if (c->run == MAP_FAILED) {
                close(fd);
                return -1;
        }
        c->pending = -1;
        c->ev.flags = KVM_VCPUEVENT_VALID_SHADOW;
        fk.vcpu_fd[fk.nvcpus++] = fd;
        return fd;
}

/* KVM_RUN: the registers the VMM marked dirty in, the step, the valid ones out. */
static int run(struct fakekvm_cpu *c)
{
        struct kvm_run *r = c->run;
        /* A KVM without the capability leaves the masks and the area alone. */
        uint64_t dirty = fk.no_sync ? 0 : r->kvm_dirty_regs;
        uint64_t valid = fk.no_sync ? 0 : r->kvm_valid_regs;
        int err;

        fk.dirty_seen |= r->kvm_dirty_regs;
        if (dirty & KVM_SYNC_X86_REGS)
                c->regs = r->s.regs.regs;
        if (dirty & KVM_SYNC_X86_SREGS)
                c->sregs = r->s.regs.sregs;
        if (dirty & KVM_SYNC_X86_EVENTS)
                c->ev = r->s.regs.events;
        r->kvm_dirty_regs &= ~dirty; /* as KVM: what it loaded is clean again */
        err = fk.step(c, fk.ctx);
        c->runs++;
        c->ev.interrupt.injected = c->pending >= 0;
        c->ev.interrupt.nr = c->pending >= 0 ? (uint8_t)c->pending : 0;
        r->if_flag = !!(c->regs.rflags & 0x200);
        r->ready_for_interrupt_injection = r->if_flag && c->pending < 0 && !c->ev.interrupt.shadow;
        if (valid & KVM_SYNC_X86_REGS)
                r->s.regs.regs = c->regs;
        if (valid & KVM_SYNC_X86_SREGS)
                r->s.regs.sregs = c->sregs;
        if (valid & KVM_SYNC_X86_EVENTS)
                r->s.regs.events = c->ev;
        return err ? fail(err) : 0;
}

static int vcpu_ioctl(struct fakekvm_cpu *c, unsigned long req, void *arg)
{
        switch (req) {
        case KVM_RUN: return run(c);
        case KVM_GET_REGS: memcpy(arg, &c->regs, sizeof(c->regs)); return 0;
        case KVM_SET_REGS: memcpy(&c->regs, arg, sizeof(c->regs)); return 0;
        case KVM_GET_SREGS: memcpy(arg, &c->sregs, sizeof(c->sregs)); return 0;
        case KVM_SET_SREGS: memcpy(&c->sregs, arg, sizeof(c->sregs)); return 0;
        case KVM_GET_VCPU_EVENTS: memcpy(arg, &c->ev, sizeof(c->ev)); return 0;
        case KVM_SET_VCPU_EVENTS: memcpy(&c->ev, arg, sizeof(c->ev)); return 0;
        case KVM_SET_CPUID2:
        case KVM_SET_GUEST_DEBUG: return 0;
        case KVM_INTERRUPT:
                /* As KVM: one external interrupt waits at a time. */
                if (c->pending >= 0)
                        return fail(EEXIST);
                c->pending = (int)((const struct kvm_interrupt *)arg)->irq;
                return 0;
        default: return fail(ENOTTY);
        }
}

FK_EXPORT int ioctl(int fd, unsigned long req, ...)
{
        static ioctl_fn next;
        struct fakekvm_cpu *c = NULL;
        va_list ap;
        void *arg;

        va_start(ap, req);
        arg = va_arg(ap, void *);
        va_end(ap);
        if (fd < 0 || (fd != fk.kvm_fd && fd != fk.vm_fd && !(c = cpu_of(fd)))) {
                if (!next)
                        next = (ioctl_fn)dlsym(RTLD_NEXT, "ioctl");
                return next(fd, req, arg);
        }
        if (fd == fk.kvm_fd) {
                switch (req) {
                case KVM_GET_API_VERSION: return KVM_API_VERSION;
                case KVM_CREATE_VM: return fk.vm_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
                case KVM_GET_VCPU_MMAP_SIZE: return FK_RUN_SIZE;
                case KVM_CHECK_EXTENSION:
                        return (long)arg == KVM_CAP_SYNC_REGS && !fk.no_sync ? FK_SYNC_ALL : 0;
                case KVM_GET_SUPPORTED_CPUID: ((struct kvm_cpuid2 *)arg)->nent = 0; return 0;
                default: return fail(ENOTTY);
                }
        }
        if (fd == fk.vm_fd) {
                switch (req) {
                case KVM_CHECK_EXTENSION:
                        return (long)arg == KVM_CAP_SYNC_REGS && !fk.no_sync ? FK_SYNC_ALL : 0;
                case KVM_SET_USER_MEMORY_REGION:
                case KVM_SET_TSS_ADDR: return 0;
                case KVM_CREATE_VCPU: return create_vcpu();
                default: return fail(ENOTTY);
                }
        }
        return vcpu_ioctl(c, req, arg);
}

/* A vCPU's descriptor at offset 0 maps its kvm_run page. */
static void *map(mmap_fn *fn, const char *name, void *addr, size_t len, int prot, int flags, int fd,
                 off_t off)
{
        struct fakekvm_cpu *c = fd >= 0 ? cpu_of(fd) : NULL;

        if (c && off == 0 && len <= FK_RUN_SIZE)
                return c->run;
        if (!*fn)
                *fn = (mmap_fn)dlsym(RTLD_NEXT, name);
        return (*fn)(addr, len, prot, flags, fd, off);
}

FK_EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
        static mmap_fn fn;

        return map(&fn, "mmap", addr, len, prot, flags, fd, off);
}

FK_EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
        static mmap_fn fn;

        return map(&fn, "mmap64", addr, len, prot, flags, fd, off);
}
