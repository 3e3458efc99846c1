// SPDX-License-Identifier: MIT
/*
 * libhvtpreload.so: loaded into an unmodified KVM VMM by `hvrec exec`
 * (LD_PRELOAD), it watches the VMM's ioctl, mmap and mmap64 calls and
 * records what KVM saw into the trace hvrec opened (src/preload/exec_abi.h).
 *
 * Two rules govern every line here.  The VMM must not notice: each
 * interposed call returns what the real one returned, with its errno, and
 * the only state the library changes is the sync-regs valid mask, restored
 * before KVM_RUN returns.  And a recording failure stops the recording, not
 * the VMM: one line on stderr, then every call goes straight through.
 *
 * The library links its own copy of libhvtrace (hidden): a VMM that links
 * libhvtrace itself keeps its own, and so with the few files of hvrec it
 * shares (the interrupt table, the delivery probe, the decoder).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <linux/kvm.h>

#include <hvtrace/hvtrace.h>

#include "../arch/x86.h"
#include "../backends/kvm_state.h"
#include "../disasm/disasm.h"
#include "../record/clock.h"
#include "../record/console.h"
#include "../record/gate.h"
#include "../record/host.h"
#include "../record/probe.h"
#include "exec_abi.h"

#define PL_EXPORT __attribute__((visibility("default")))

#define PL_MAX_VCPUS 256
#define PL_MAX_SLOTS 512
#define PL_SYNC_ALL  (KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS | KVM_SYNC_X86_EVENTS)
#define PL_CMDLINE   8192

typedef int (*ioctl_fn)(int, unsigned long, ...);
typedef void *(*mmap_fn)(void *, size_t, int, int, int, off_t);

struct pl_vcpu {
        int fd;
        uint32_t id; /* its number in the trace: the order KVM_CREATE_VCPU returned it */
        struct kvm_run *run;
        bool ran;
        struct kvm_sregs_cache sregs_cache; /* pl_state's: most exits leave them alone */
        /*
         * An injection waits to be delivered: at the next entry, where the
         * delivery is inferred, or at the probe its handler starts with.
         */
        bool queued;
        bool probed; /* ... its handler starts with the delivery probe, which reports it */
        uint8_t vector;
        bool nmi;
        /*
         * The entry and exit times: one RDTSC where the TSC is invariant
         * (src/record/clock.h), as in hvrec run.  One clock per vCPU: only
         * its own thread runs it, so no lock is needed around it.
         */
        struct rec_clock clock;
};

struct pl_slot {
        uint32_t slot, flags;
        uint64_t gpa, size, hva;
};

static struct {
        pthread_mutex_t lock;
        bool armed; /* this process records (the one hvrec executed) */
        bool on;    /* not stopped by an error */
        int trace_fd;
        int status_fd; /* open until pl_claim: a process this one execs maps it again */
        struct hvt_exec_status *status;
        struct hvt_writer *w;
        int kvm_api;
        int vm_fd;
        bool irqchip;
        int sync; /* KVM_CAP_SYNC_REGS: the register sets KVM syncs, -1 before asking */
        bool said_no_sync, said_vcpu;
        struct pl_vcpu vcpu[PL_MAX_VCPUS];
        unsigned nvcpus;
        struct pl_slot slot[PL_MAX_SLOTS];
        unsigned nslots;
        struct disasm *dis; /* for the delivery probe, opened at the first one */
        uint64_t seq;       /* exits written */
        uint64_t last_exit_ns;
} pl = {
        .lock = PTHREAD_MUTEX_INITIALIZER, .trace_fd = -1, .status_fd = -1, .vm_fd = -1, .sync = -1
};

static ioctl_fn real_ioctl_fn;
static mmap_fn real_mmap_fn, real_mmap64_fn;

static int real_ioctl(int fd, unsigned long req, void *arg)
{
        if (!real_ioctl_fn)
                real_ioctl_fn = (ioctl_fn)dlsym(RTLD_NEXT, "ioctl");
        return real_ioctl_fn(fd, req, arg);
}

static uint64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- setup and failure ----------------------------------------------------- */

static int env_int(const char *name)
{
        const char *s = getenv(name);
        char *end;
        long v;

        if (!s || !*s)
                return -1;
        v = strtol(s, &end, 10);
        return *end || v < 0 || v > 1 << 30 ? -1 : (int)v;
}

/*
 * A child the VMM forks shares the trace's descriptor but not the writer's
 * thread: it must neither write nor close anything at its exit.  The lock
 * may have been held at the fork, so only plain flags are touched.
 */
static void pl_forked(void)
{
        pl.armed = pl.on = false;
        pl.w = NULL;
}

/*
 * Arm only in the process hvrec executed, whose pid hvrec put in the
 * environment.  The trace's descriptor stays open across exec until this
 * process creates its VM (pl_claim): a wrapper script that execs the VMM
 * is that process too, same pid, and the VMM must still find it.
 */
__attribute__((constructor)) static void pl_init(void)
{
        int saved = errno;
        int tfd = env_int(HVT_EXEC_ENV_TRACE_FD), sfd = env_int(HVT_EXEC_ENV_STATUS_FD);
        void *page;

        if (env_int(HVT_EXEC_ENV_PID) != (int)getpid() || tfd < 0 || sfd < 0)
                goto out;
        page = mmap(NULL, HVT_EXEC_STATUS_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, sfd, 0);
        if (page == MAP_FAILED) {
                fprintf(stderr, "hvtpreload: cannot set up recording: %s\n", strerror(errno));
                goto out;
        }
        if (pthread_atfork(NULL, NULL, pl_forked)) {
                fprintf(stderr, "hvtpreload: cannot set up recording: pthread_atfork failed\n");
                goto out;
        }
        pl.status = page;
        pl.status->magic = HVT_EXEC_MAGIC;
        pl.trace_fd = tfd;
        pl.status_fd = sfd;
        pl.armed = pl.on = true;
out:
        errno = saved;
}

/* Stop recording for good: one line, and the VMM runs on.  Called with the lock held. */
static void pl_fail(const char *what, int err)
{
        if (!pl.on)
                return;
        fprintf(stderr, "hvtpreload: recording stopped: %s: %s\n", what, hvt_strerror(err));
        pl.on = false;
        pl.status->failed = 1;
}

/* Flush what was recorded when the VMM exits normally; hvrec writes the end record. */
__attribute__((destructor)) static void pl_fini(void)
{
        int err;

        if (!pl.armed)
                return;
        pthread_mutex_lock(&pl.lock);
        if (pl.w) {
                err = hvt_writer_close(pl.w);
                pl.w = NULL;
                if (err)
                        pl_fail("closing the trace", err);
        }
        if (pl.dis)
                disasm_close(pl.dis);
        pl.dis = NULL;
        pl.on = false;
        pthread_mutex_unlock(&pl.lock);
}

/* ---- guest memory, through the VMM's own mappings of the slots ---------------- */

/* Copy up to len bytes at gpa, across adjacent slots; returns how many. */
static size_t pl_read_gpa(uint64_t gpa, void *buf, size_t len)
{
        size_t done = 0;
        unsigned i;

        while (done < len) {
                for (i = 0; i < pl.nslots; i++) {
                        const struct pl_slot *s = &pl.slot[i];
                        uint64_t at = gpa + done;

                        if (s->size && at >= s->gpa && at - s->gpa < s->size) {
                                uint64_t left = s->size - (at - s->gpa);
                                size_t n = len - done < left ? len - done : (size_t)left;

                                memcpy((uint8_t *)buf + done,
                                       (const void *)(uintptr_t)(s->hva + (at - s->gpa)), n);
                                done += n;
                                break;
                        }
                }
                if (i == pl.nslots)
                        break;
        }
        return done;
}

/* The x86_entry_reader of the page walk: entries are read from the slots too. */
static int pl_entry(const void *ctx, uint64_t gpa, unsigned size, uint64_t *val)
{
        (void)ctx;
        *val = 0;
        return pl_read_gpa(gpa, val, size) == size ? 0 : -EFAULT;
}

/* Bytes at a linear address, through the guest's page tables when paging is on. */
static size_t pl_read_linear(const struct hvt_vcpu_state *st, uint64_t lin, void *buf, size_t len)
{
        struct x86_paging pg = x86_paging_of(st);
        size_t done = 0;

        if (!x86_paging_on(st->cr0))
                return pl_read_gpa(lin, buf, len);
        while (done < len) {
                /* Page by page: the next page may map anywhere. */
                uint64_t la = lin + done, gpa, chunk = 4096 - (la & 0xfff), n;

                if (x86_walk(&pg, la, pl_entry, NULL, &gpa, NULL, NULL))
                        break;
                if (chunk > len - done)
                        chunk = len - done;
                n = pl_read_gpa(gpa, (uint8_t *)buf + done, (size_t)chunk);
                done += n;
                if (n < chunk)
                        break;
        }
        return done;
}

static size_t pl_view_read(const void *ctx, uint64_t la, void *buf, size_t len)
{
        return pl_read_linear(ctx, la, buf, len);
}

/* The guest as vCPU state st sees it, for the interrupt table and the probe. */
static struct gview pl_view(const struct hvt_vcpu_state *st)
{
        return (struct gview){ .st = st, .read = pl_view_read, .ctx = st };
}

/* ---- records ----------------------------------------------------------------- */

static struct pl_vcpu *pl_vcpu_of(int fd)
{
        for (unsigned i = 0; i < pl.nvcpus; i++)
                if (pl.vcpu[i].fd == fd)
                        return &pl.vcpu[i];
        return NULL;
}

/*
 * Make v the vCPU the next records belong to.  Returns 0, or -EINVAL for a
 * vCPU created after the trace's header fixed their number.
 */
static int pl_select(const struct pl_vcpu *v)
{
        int err = hvt_writer_vcpu(pl.w, v->id);

        if (err == -EINVAL && !pl.said_vcpu) {
                fprintf(stderr,
                        "hvtpreload: vCPU %u was created after the first KVM_RUN: not recorded\n",
                        v->id);
                pl.said_vcpu = true;
        }
        return err;
}

static void pl_kvm_record(uint32_t what, uint32_t id, uint32_t flags, uint32_t vcpu, uint64_t a,
                          uint64_t b, uint64_t c)
{
        struct hvt_disk_kvm k = { .seq = pl.seq,
                                  .what = what,
                                  .id = id,
                                  .flags = flags,
                                  .vcpu = vcpu,
                                  .a = a,
                                  .b = b,
                                  .c = c };
        int err;

        if (!pl.w || !pl.on)
                return;
        err = hvt_write_raw(pl.w, HVT_REC_KVM, 0, &k, sizeof(k));
        if (err)
                pl_fail("writing a KVM record", err);
}

/* The state of v now: sync regs where KVM gives them, else the GET ioctls. */
static int pl_state(struct pl_vcpu *v, bool synced, struct hvt_vcpu_state *st)
{
        struct kvm_vcpu_events ev;
        struct kvm_sregs sregs;
        struct kvm_regs regs;

        if (synced) {
                const struct kvm_sync_regs *s = &v->run->s.regs;

                kvm_state_from(st, &s->regs, &s->sregs, &v->sregs_cache);
                st->intr = kvm_intr_from(v->run, &s->events, pl.irqchip,
                                         v->run->request_interrupt_window);
                return 0;
        }
        if (real_ioctl(v->fd, KVM_GET_REGS, &regs) || real_ioctl(v->fd, KVM_GET_SREGS, &sregs) ||
            real_ioctl(v->fd, KVM_GET_VCPU_EVENTS, &ev))
                return -errno;
        kvm_state_from(st, &regs, &sregs, &v->sregs_cache);
        st->intr = kvm_intr_from(v->run, &ev, pl.irqchip, v->run->request_interrupt_window);
        return 0;
}

/* RAM from gpa 0 up: the contiguous slots that start there (ROMs above are slots too). */
static uint64_t pl_ram_size(void)
{
        uint64_t end = 0;
        bool grew = true;

        while (grew) {
                grew = false;
                for (unsigned i = 0; i < pl.nslots; i++)
                        if (pl.slot[i].size && pl.slot[i].gpa == end) {
                                end += pl.slot[i].size;
                                grew = true;
                        }
        }
        return end;
}

/* "arg0\0arg1\0..." of this process into buf; returns argc. */
static int pl_cmdline(char *buf, size_t len, const char **argv, int max)
{
        int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC), argc = 0;
        ssize_t n = fd < 0 ? -1 : read(fd, buf, len - 1);

        if (fd >= 0)
                close(fd);
        if (n <= 0)
                return 0;
        buf[n] = 0;
        for (ssize_t i = 0; i < n && argc < max; i += (ssize_t)strlen(buf + i) + 1)
                argv[argc++] = buf + i;
        return argc;
}

/*
 * At the first KVM_RUN of any vCPU: the writer, the header, the slots and
 * their contents.  st is the state of the vCPU about to run.
 */
static int pl_start(const struct hvt_vcpu_state *st)
{
        /* The vCPUs that exist now are the trace's: QEMU creates them all before any runs. */
        struct hvt_writer_opts wopts = { .size = sizeof(wopts),
                                         .background_flush = 1,
                                         .vcpus = pl.nvcpus };
        static char cmdline[PL_CMDLINE];
        static const char *argv[256];
        char bver[64], vendor[32], model[64], kernel[400];
        struct hvt_header h = { 0 };
        struct timespec ts;
        int err;

        err = hvt_writer_fdopen(&pl.w, pl.trace_fd, &wopts);
        pl.trace_fd = -1; /* the writer owns it, whatever the result */
        if (err)
                return err;
        clock_gettime(CLOCK_REALTIME, &ts);
        snprintf(bver, sizeof(bver), "KVM API %d%s", pl.kvm_api,
                 pl.irqchip ? ", in-kernel irqchip" : ", userspace irqchip");
        h.h.entry = st->rip;
        h.h.mem_size = pl_ram_size();
        h.h.start_realtime_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
        h.h.guest_mode = hvt_state_mode(st);
        h.h.backend_caps =
                HVT_CAP_REPORT_SHADOW | HVT_CAP_HLT_EXITS |
                (pl.irqchip ? HVT_CAP_IRQCHIP : HVT_CAP_INJECT_QUEUE | HVT_CAP_REPORT_READY);
        h.h.inject_policy = HVT_POLICY_BACKEND;
        h.str[HVT_STR_TOOL_VERSION] = "hvrec exec " HVT_VERSION_STRING;
        h.str[HVT_STR_BACKEND] = HVT_EXEC_BACKEND;
        h.str[HVT_STR_BACKEND_VERSION] = bver;
        rec_host(vendor, sizeof(vendor), model, sizeof(model), kernel, sizeof(kernel));
        h.str[HVT_STR_CPU_VENDOR] = vendor;
        h.str[HVT_STR_CPU_MODEL] = model;
        h.str[HVT_STR_KERNEL] = kernel;
        h.argc = pl_cmdline(cmdline, sizeof(cmdline), argv, 256);
        h.argv = argv;
        err = hvt_write_header(pl.w, &h);
        for (unsigned i = 0; !err && i < pl.nslots; i++) {
                const struct pl_slot *s = &pl.slot[i];

                pl_kvm_record(HVT_KVM_SLOT, s->slot, s->flags, 0, s->gpa, s->size, s->hva);
                err = hvt_write_memory(pl.w, s->gpa, (const void *)(uintptr_t)s->hva, s->size);
        }
        if (err)
                return err;
        pl.status->started = 1;
        pl.status->vcpus = pl.nvcpus;
        pl.status->t0_ns = now_ns();
        pl.last_exit_ns = pl.status->t0_ns;
        return 0;
}

/* ---- exits: one helper per reason with data ---------------------------------- */

static void exit_io(const struct kvm_run *run, struct hvt_exit *e)
{
        e->reason = HVT_EXIT_IO;
        e->u.io.io.port = run->io.port;
        e->u.io.io.size = run->io.size;
        e->u.io.io.dir = run->io.direction == KVM_EXIT_IO_OUT ? HVT_IO_OUT : HVT_IO_IN;
        e->u.io.io.count = run->io.count;
        e->u.io.data = (const uint8_t *)run + run->io.data_offset;
}

static void exit_mmio(const struct kvm_run *run, struct hvt_exit *e)
{
        e->reason = HVT_EXIT_MMIO;
        e->u.mmio.addr = run->mmio.phys_addr;
        e->u.mmio.len = run->mmio.len;
        e->u.mmio.is_write = run->mmio.is_write;
        memcpy(e->u.mmio.data, run->mmio.data, sizeof(e->u.mmio.data));
}

static void exit_fail_entry(const struct kvm_run *run, struct hvt_exit *e)
{
        e->reason = HVT_EXIT_FAIL_ENTRY;
        e->u.fail_entry.hw_reason = run->fail_entry.hardware_entry_failure_reason;
        e->u.fail_entry.cpu = run->fail_entry.cpu;
}

static void exit_internal(const struct kvm_run *run, struct hvt_exit *e)
{
        uint32_t n = run->internal.ndata;
        const uint32_t max = sizeof(run->internal.data) / sizeof(run->internal.data[0]);

        e->reason = HVT_EXIT_INTERNAL;
        e->u.internal.internal.suberror = run->internal.suberror;
        n = n < max ? n : max;
        n = n < HVT_INTERNAL_MAX_DATA ? n : HVT_INTERNAL_MAX_DATA;
        e->u.internal.internal.ndata = n;
        memcpy(e->u.internal.data, run->internal.data, n * sizeof(uint64_t));
}

static void exit_debug(const struct kvm_run *run, struct hvt_exit *e)
{
        e->reason = HVT_EXIT_DEBUG;
        e->u.debug.exception = run->debug.arch.exception;
        e->u.debug.pc = run->debug.arch.pc;
        e->u.debug.dr6 = run->debug.arch.dr6;
        e->u.debug.dr7 = run->debug.arch.dr7;
}

/* The exit KVM_RUN returned (ret, err: its result and errno) into e. */
static void pl_exit_of(const struct kvm_run *run, int ret, int err, struct hvt_exit *e)
{
        if (ret < 0) {
                /* EINTR, EAGAIN: a signal or immediate_exit ended the run before the guest. */
                e->reason = HVT_EXIT_INTR;
                e->raw_reason = err == EINTR ? KVM_EXIT_INTR : 0;
                return;
        }
        e->raw_reason = run->exit_reason;
        switch (run->exit_reason) {
        case KVM_EXIT_IO: exit_io(run, e); break;
        case KVM_EXIT_MMIO: exit_mmio(run, e); break;
        case KVM_EXIT_HLT: e->reason = HVT_EXIT_HLT; break;
        case KVM_EXIT_INTR: e->reason = HVT_EXIT_INTR; break;
        case KVM_EXIT_IRQ_WINDOW_OPEN: e->reason = HVT_EXIT_IRQ_WINDOW; break;
        case KVM_EXIT_DEBUG: exit_debug(run, e); break;
        case KVM_EXIT_SHUTDOWN: e->reason = HVT_EXIT_SHUTDOWN; break;
        case KVM_EXIT_FAIL_ENTRY: exit_fail_entry(run, e); break;
        case KVM_EXIT_INTERNAL_ERROR: exit_internal(run, e); break;
        default: e->reason = HVT_EXIT_UNKNOWN; break;
        }
}

/* Linear address of the handler the IVT (real mode) or IDT gives for vector, 0 if unknown. */
static uint64_t pl_handler(const struct hvt_vcpu_state *st, uint8_t vector)
{
        struct gview gv = pl_view(st);
        uint64_t h;

        return gate_handler(&gv, vector, &h) ? h : 0;
}

/* The decoder the probe needs, opened once.  Called with the lock held. */
static struct disasm *pl_disasm(void)
{
        int err;

        if (!pl.dis && (err = disasm_open(&pl.dis))) {
                pl.dis = NULL;
                pl_fail("opening the decoder for the delivery probe", err);
        }
        return pl.dis;
}

/* probe_take_fn: v's queued injection, when the probe's handler can be its. */
static int pl_take(void *ctx, bool (*match)(void *mctx, uint8_t v), void *mctx, bool *nmi)
{
        struct pl_vcpu *v = ctx;

        *nmi = false;
        if (!v->queued || (match && !match(mctx, v->vector)))
                return -1;
        v->queued = false;
        *nmi = v->nmi;
        return v->vector;
}

/*
 * The guest's delivery probe exited (docs/guest-abi.md): the frame on the
 * handler's stack says where the interrupt landed, as under hvrec run.
 * The DELIVER record follows the probe's exit.
 */
static void pl_probe(struct pl_vcpu *v, const struct hvt_exit *e)
{
        struct gview gv = pl_view(&e->st);
        struct hvt_disk_deliver d;
        struct disasm *dis = pl_disasm();
        int err;

        if (!dis)
                return;
        probe_deliver(&gv, dis, e->u.io.io.size, e->seq, pl_take, v, &d);
        err = hvt_write_deliver(pl.w, &d);
        if (err)
                pl_fail("writing a delivery", err);
}

/*
 * The console bytes of an OUT to port 0xE9, as hvrec run records them:
 * dump shows them, and diff compares them with an hvrec run trace's.
 * Whether the VMM has a device there (QEMU's isa-debugcon) or not, the
 * guest wrote them.
 */
static void pl_console(const struct hvt_exit *e)
{
        uint8_t text[4096];
        size_t n = console_text(&e->u.io.io, e->u.io.data, text, sizeof(text));
        int err = n ? hvt_write_console(pl.w, e->seq, text, n) : 0;

        if (err)
                pl_fail("writing console output", err);
}

/*
 * An injection queued before this entry was delivered at it: KVM delivers
 * a KVM_INTERRUPT vector (and an NMI) as it enters, before any instruction.
 * The probe's own DELIVER record is what hvrec run writes; here the state at
 * entry stands in for the frame, and seq is the exit that ended the run,
 * written before it as a probe's exit is.
 */
static void pl_deliver_at_entry(struct pl_vcpu *v, const struct hvt_vcpu_state *entry, uint64_t seq)
{
        struct hvt_disk_deliver d = {
                .seq = seq,
                .ip = entry->rip,
                .flags = entry->rflags,
                .sp = entry->gpr[HVT_F_RSP],
                .cs_base = entry->seg[HVT_CS].base,
                .handler = pl_handler(entry, v->vector),
                .cs = entry->seg[HVT_CS].selector,
                .ss = entry->seg[HVT_SS].selector,
                .vector = v->vector,
                .vector_from = HVT_VEC_INJECTED,
                .frame_bits = (uint8_t)hvt_state_code_bits(entry),
                .dflags = v->nmi ? HVT_DELIVER_NMI : 0,
        };
        int err = hvt_write_deliver(pl.w, &d);

        if (err)
                pl_fail("writing a delivery", err);
}

/* Write the exit KVM_RUN just returned.  Called with the lock held. */
static void pl_record_exit(struct pl_vcpu *v, bool synced, int ret, int err, uint64_t entry_ns)
{
        struct hvt_exit e;
        uint64_t now = rec_clock_now(&v->clock);
        int werr;

        memset(&e, 0, sizeof(e));
        werr = pl_state(v, synced, &e.st);
        if (werr) {
                pl_fail("reading the vCPU's state", werr);
                return;
        }
        pl_exit_of(v->run, ret, err, &e);
        e.seq = pl.seq;
        e.time_ns = now - pl.status->t0_ns;
        e.guest_ns = now - entry_ns;
        e.insn_len = (uint8_t)pl_read_linear(&e.st, hvt_state_pc(&e.st), e.insn, sizeof(e.insn));
        werr = hvt_write_exit(pl.w, &e);
        if (werr) {
                pl_fail("writing an exit", werr);
                return;
        }
        if (e.reason == HVT_EXIT_IO && e.u.io.io.dir == HVT_IO_OUT && e.u.io.io.port == PROBE_PORT)
                pl_probe(v, &e);
        if (e.reason == HVT_EXIT_IO && e.u.io.io.dir == HVT_IO_OUT &&
            e.u.io.io.port == CONSOLE_PORT)
                pl_console(&e);
        pl.seq++;
        pl.status->exits = pl.seq;
        pl.status->last_rip = e.st.rip;
}

/* ---- KVM_RUN ----------------------------------------------------------------- */

/*
 * Ask KVM for the register sets the VMM did not ask for itself.  Only the
 * valid mask is touched: kvm_dirty_regs stays the VMM's, so KVM never loads
 * state the VMM did not write.  Returns the VMM's own mask, to restore.
 */
static uint64_t pl_sync_on(struct pl_vcpu *v)
{
        uint64_t own = v->run->kvm_valid_regs;

        if (pl.sync < 0)
                pl.sync =
                        real_ioctl(pl.vm_fd, KVM_CHECK_EXTENSION, (void *)(long)KVM_CAP_SYNC_REGS);
        if (pl.sync < 0)
                pl.sync = 0;
        if ((pl.sync & PL_SYNC_ALL) == PL_SYNC_ALL) {
                v->run->kvm_valid_regs = own | PL_SYNC_ALL;
        } else if (!pl.said_no_sync) {
                fprintf(stderr,
                        "hvtpreload: KVM has no KVM_CAP_SYNC_REGS: reading the state with "
                        "KVM_GET_REGS, KVM_GET_SREGS and KVM_GET_VCPU_EVENTS at every exit\n");
                pl.said_no_sync = true;
        }
        return own;
}

/*
 * Before the first run: the header (at the very first), then the entry
 * state for an inferred delivery.  Returns whether v is recorded.
 */
static bool pl_before_run(struct pl_vcpu *v, struct hvt_vcpu_state *entry, bool *have_entry)
{
        int err;

        *have_entry = false;
        if (!pl.on || !v->run)
                return false;
        if (!v->ran || (v->queued && !v->probed)) {
                err = pl_state(v, false, entry);
                if (err) {
                        pl_fail("reading the vCPU's state", err);
                        return false;
                }
                *have_entry = true;
        }
        if (!pl.w && (err = pl_start(entry))) {
                pl_fail("starting the trace", err);
                return false;
        }
        v->ran = true;
        return !pl_select(v);
}

static int pl_run(int fd, void *arg)
{
        struct pl_vcpu *v;
        struct hvt_vcpu_state entry;
        bool rec = false, have_entry = false;
        uint64_t own = 0, t;
        int ret, err;

        pthread_mutex_lock(&pl.lock);
        v = pl_vcpu_of(fd);
        if (v)
                rec = pl_before_run(v, &entry, &have_entry);
        if (rec)
                own = pl_sync_on(v);
        pthread_mutex_unlock(&pl.lock);

        t = rec ? rec_clock_now(&v->clock) : 0;
        ret = real_ioctl(fd, KVM_RUN, arg);
        err = errno;
        if (!rec)
                goto out;

        pthread_mutex_lock(&pl.lock);
        if (pl.on && !pl_select(v)) {
                bool synced = (pl.sync & PL_SYNC_ALL) == PL_SYNC_ALL &&
                              (ret == 0 || err == EINTR || err == EAGAIN);

                if (ret == 0 || err == EINTR || err == EAGAIN)
                        pl_record_exit(v, synced, ret, err, t);
                /*
                 * A run that failed entered nothing: the injection is still
                 * queued.  One the probe reports stays queued until it does.
                 */
                if (have_entry && v->queued && !v->probed && ret == 0 && pl.on)
                        pl_deliver_at_entry(v, &entry, pl.seq - 1);
                if (ret == 0 && !v->probed)
                        v->queued = false;
        }
        v->run->kvm_valid_regs = own;
        pthread_mutex_unlock(&pl.lock);
out:
        errno = err;
        return ret;
}

/* ---- the other calls, once they succeeded: one helper per request ---------------- */

static void on_create_vcpu(int ret)
{
        if (pl.nvcpus == PL_MAX_VCPUS)
                return;
        pl.vcpu[pl.nvcpus] = (struct pl_vcpu){ .fd = ret, .id = pl.nvcpus };
        pl.nvcpus++;
}

static void on_memory_region(const struct kvm_userspace_memory_region *m)
{
        unsigned i;

        for (i = 0; i < pl.nslots && pl.slot[i].slot != m->slot; i++)
                ;
        if (i == PL_MAX_SLOTS) {
                pl_fail("too many memory slots", -ENOSPC);
                return;
        }
        pl.slot[i] = (struct pl_slot){ .slot = m->slot,
                                       .flags = m->flags,
                                       .gpa = m->guest_phys_addr,
                                       .size = m->memory_size,
                                       .hva = m->userspace_addr };
        if (i == pl.nslots)
                pl.nslots++;
        pl_kvm_record(HVT_KVM_SLOT, m->slot, m->flags, 0, m->guest_phys_addr, m->memory_size,
                      m->userspace_addr);
}

/* KVM_INTERRUPT, KVM_NMI, KVM_SET_VCPU_EVENTS: an INJECT record on the vCPU. */
static void on_inject(struct pl_vcpu *v, uint8_t vector, uint8_t method)
{
        struct hvt_vcpu_state st;
        struct gview gv;
        struct hvt_disk_inject in = { .after_seq = pl.seq ? pl.seq - 1 : 0,
                                      .vector = vector,
                                      .policy = HVT_POLICY_BACKEND,
                                      .method = method,
                                      .source = HVT_SRC_VMM };
        int err;

        if (!pl.w || !v->ran || pl_select(v))
                return;
        err = pl_state(v, false, &st);
        gv = pl_view(&st);
        if (!err) {
                in.rip = st.rip;
                in.rflags = st.rflags;
                in.cs_base = st.seg[HVT_CS].base;
                in.cs = st.seg[HVT_CS].selector;
                in.intr = (uint32_t)st.intr;
                in.handler = pl_handler(&st, vector);
                err = hvt_write_inject(pl.w, &in);
        }
        if (err) {
                pl_fail("writing an injection", err);
                return;
        }
        v->queued = true;
        v->vector = vector;
        v->nmi = method == HVT_INJ_NMI;
        /* A handler with the probe reports the delivery itself, frame and all. */
        v->probed = in.handler && pl_disasm() && probe_at(&gv, pl.dis, in.handler);
}

static void on_vcpu_events(struct pl_vcpu *v, const struct kvm_vcpu_events *ev)
{
        if (ev->interrupt.injected)
                on_inject(v, ev->interrupt.nr, HVT_INJ_QUEUE);
        if ((ev->flags & KVM_VCPUEVENT_VALID_NMI_PENDING) && ev->nmi.pending)
                on_inject(v, 2, HVT_INJ_NMI);
}

static void on_guest_debug(struct pl_vcpu *v, const struct kvm_guest_debug *d)
{
        pl_kvm_record(HVT_KVM_GUEST_DEBUG, 0, d->control, v->id, d->arch.debugreg[7],
                      d->arch.debugreg[0], d->arch.debugreg[1]);
}

/*
 * This process is the VMM: it created a VM.  Its own children (which
 * inherit LD_PRELOAD) must see neither descriptor once they exec, and the
 * status page stays mapped without its descriptor.
 */
static void pl_claim(void)
{
        if (pl.status_fd >= 0)
                close(pl.status_fd);
        pl.status_fd = -1;
        if (pl.trace_fd >= 0 && fcntl(pl.trace_fd, F_SETFD, FD_CLOEXEC))
                pl_fail("keeping the trace from the VMM's children", -errno);
}

/* Record what a successful call did.  Called with the lock held. */
static void pl_after(int fd, unsigned long req, void *arg, int ret)
{
        struct pl_vcpu *v = pl_vcpu_of(fd);

        switch (req) {
        case KVM_GET_API_VERSION: pl.kvm_api = ret; break;
        case KVM_CREATE_VM:
                /* The first VM is the one recorded: a VMM runs one. */
                if (pl.vm_fd < 0) {
                        pl.vm_fd = ret;
                        pl_claim();
                }
                break;
        case KVM_CREATE_VCPU:
                if (fd == pl.vm_fd)
                        on_create_vcpu(ret);
                break;
        case KVM_CREATE_IRQCHIP: pl.irqchip = fd == pl.vm_fd || pl.irqchip; break;
        case KVM_ENABLE_CAP:
                /* kernel_irqchip=split: the LAPIC is KVM's, so is injection. */
                if (fd == pl.vm_fd &&
                    ((const struct kvm_enable_cap *)arg)->cap == KVM_CAP_SPLIT_IRQCHIP)
                        pl.irqchip = true;
                break;
        case KVM_SET_USER_MEMORY_REGION:
                if (fd == pl.vm_fd)
                        on_memory_region(arg);
                break;
        case KVM_INTERRUPT:
                if (v)
                        on_inject(v, (uint8_t)((const struct kvm_interrupt *)arg)->irq,
                                  HVT_INJ_QUEUE);
                break;
        case KVM_NMI:
                if (v)
                        on_inject(v, 2, HVT_INJ_NMI);
                break;
        case KVM_SET_VCPU_EVENTS:
                if (v)
                        on_vcpu_events(v, arg);
                break;
        case KVM_SET_GUEST_DEBUG:
                if (v)
                        on_guest_debug(v, arg);
                break;
        case KVM_IRQ_LINE:
        case KVM_IRQ_LINE_STATUS: {
                const struct kvm_irq_level *l = arg;

                if (fd == pl.vm_fd)
                        pl_kvm_record(HVT_KVM_IRQ_LINE, l->irq, 0, 0, l->level, 0, 0);
                break;
        }
        case KVM_SIGNAL_MSI: {
                const struct kvm_msi *m = arg;

                if (fd == pl.vm_fd)
                        pl_kvm_record(HVT_KVM_MSI, m->devid, m->flags, 0,
                                      (uint64_t)m->address_hi << 32 | m->address_lo, m->data, 0);
                break;
        }
        case KVM_IRQFD: {
                const struct kvm_irqfd *f = arg;

                if (fd == pl.vm_fd)
                        pl_kvm_record(HVT_KVM_IRQFD, f->gsi, f->flags, 0, (uint64_t)f->fd, 0, 0);
                break;
        }
        default: break;
        }
}

/* ---- the interposed calls ---------------------------------------------------- */

PL_EXPORT int ioctl(int fd, unsigned long req, ...)
{
        va_list ap;
        void *arg;
        int ret, err;

        va_start(ap, req);
        arg = va_arg(ap, void *);
        va_end(ap);
        if (!pl.armed || _IOC_TYPE(req) != KVMIO)
                return real_ioctl(fd, req, arg);
        if (req == KVM_RUN)
                return pl_run(fd, arg);
        ret = real_ioctl(fd, req, arg);
        err = errno;
        if (ret >= 0) {
                pthread_mutex_lock(&pl.lock);
                if (pl.on)
                        pl_after(fd, req, arg, ret);
                pthread_mutex_unlock(&pl.lock);
        }
        errno = err;
        return ret;
}

/* A vCPU's kvm_run page is its fd mapped at offset 0. */
static void pl_after_mmap(void *p, int fd, off_t off)
{
        struct pl_vcpu *v;
        int err = errno;

        if (!pl.armed || p == MAP_FAILED || fd < 0 || off != 0)
                return;
        pthread_mutex_lock(&pl.lock);
        v = pl_vcpu_of(fd);
        if (v && !v->run)
                v->run = p;
        pthread_mutex_unlock(&pl.lock);
        errno = err;
}

PL_EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
        void *p;

        if (!real_mmap_fn)
                real_mmap_fn = (mmap_fn)dlsym(RTLD_NEXT, "mmap");
        p = real_mmap_fn(addr, len, prot, flags, fd, off);
        pl_after_mmap(p, fd, off);
        return p;
}

PL_EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
        void *p;

        if (!real_mmap64_fn)
                real_mmap64_fn = (mmap_fn)dlsym(RTLD_NEXT, "mmap64");
        p = real_mmap64_fn(addr, len, prot, flags, fd, off);
        pl_after_mmap(p, fd, off);
        return p;
}
