// SPDX-License-Identifier: MIT
/*
 * qemu-tcg: QEMU's TCG (qemu-system-x86_64, 7.2) as a backend, for real-mode
 * guests that drive their own PIC and PIT (docs/backends.md, "qemu-tcg").
 *
 * QEMU runs the guest on its own; hvrec only reads its log.  At the first
 * run() the backend starts QEMU (fork/exec, no shell) with the project's
 * BIOS (guests/bios/hvt_bios.asm: it unmasks the 8259 at the LAPIC and
 * enters the guest at its IP/SP), the guest's RAM image as a loader blob
 * (both on memfds) and `-singlestep -d exec,nochain,int,cpu,cpu_reset`
 * logged to a pipe.  Each instruction then appears as a "Trace" line with QEMU's hflags
 * (bit 0x8: QEMU inhibits interrupts, its own shadow) followed by the full
 * register state before it runs.
 *
 * What the log shows and what it does not:
 *  - An instruction logged and then "Stopped execution of TB chain" did not
 *    run: an interrupt (or an exit request) came first.  Any other logged
 *    instruction ran: the next log item proves it.
 *  - "Servicing hardware INT=0xNN" is a delivery.  In real mode QEMU logs
 *    nothing else about it: when the interrupt landed on a stopped
 *    instruction, the interrupted state is that instruction's logged state;
 *    when it landed after an instruction that ran (the end of a shadow, an
 *    IRET, an EOI), the state after that instruction is in no log line.
 *  - Memory is in no log line at all, and QEMU runs ahead of the reader, so
 *    QEMU's RAM cannot show the probe its frame.
 * The backend therefore keeps b->mem itself, in lockstep: every instruction
 * that ran is executed again on Unicorn (QEMU's TCG too) over b->mem from
 * QEMU's logged registers, and each delivery's frame is pushed into b->mem
 * from the interrupted state.  Unicorn's result is checked against QEMU's
 * next logged state (CS:IP and SP after every instruction; at a delivery,
 * the handler's CS:IP from the IVT, its SP and its FLAGS): the first
 * disagreement ends the run with -EPROTO rather than report a guess.
 *
 * Exits: every OUT that ran (its state is QEMU's log line for it: RIP at
 * the OUT), and HLT with IF = 0 (QEMU would wait forever).  IN is no exit:
 * QEMU's devices answer it and the value is in the next logged state, never
 * the all-ones hvrec gives unanswered ports.  The guest's exit port also
 * ends QEMU (isa-debug-exit: status 2 * s + 1), which must agree.  A
 * triple fault ("Triple fault"; -no-reboot) is a shutdown exit.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memfd_create, pipe2 */
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <unicorn/unicorn.h>

#include "../arch/x86.h"
#include "backend.h"

extern const struct backend_ops qemu_tcg_backend_ops;

#ifndef HVT_QEMU_BIOS
#define HVT_QEMU_BIOS "hvt_bios.bin"
#endif
#ifndef HVT_QEMU_BIOS_INSTALLED
#define HVT_QEMU_BIOS_INSTALLED "../share/hvtrace/hvt_bios.bin"
#endif

#define BIOS_SIZE      0x10000u
#define BIOS_PARAM     0xFF00u  /* hvt_bios.asm: IP, CS, SP (16 bits each) */
#define LOW_RAM_END    0xA0000u /* above: QEMU's VGA window and ROMs, not RAM */
#define LOG_BUF        (1u << 20)
#define MAX_MEM        (16u << 20)
#define POLL_MS        100  /* how long a blocked read waits before it looks at kicks */
#define TB_INHIBIT_IRQ 0x8u /* QEMU's HF_INHIBIT_IRQ_MASK in a TB's flags */
/*
 * Virtual time from the instruction count (2^6 ns an instruction), never
 * the host's clock: the same guest gives the same trace every run, and a
 * guest timer (stress_pit's PIT fires every 8 us) cannot outrun the
 * logging QEMU on a loaded host.  With the host's clock it did: QEMU's
 * main loop spent itself on expired PIT ticks, its vCPU stopped, and a
 * run stalled with nothing logged.
 */
#define ICOUNT "shift=6,sleep=off"

/* One logged instruction: QEMU's state before it and its TB flags. */
struct qrec {
        struct hvt_vcpu_state st;
        uint32_t tb_flags;
};

/* What Unicorn says the state is after an instruction. */
struct post {
        bool valid;
        uint16_t cs, ip, ss, sp;
        uint32_t eflags, ecx;
        bool rep_again; /* ... or the REP at rep_ip once more, (E)CX = 0 */
        uint16_t rep_ip;
};

struct qemu_backend {
        struct backend base;
        uc_engine *uc;
        char version[96];
        const char *qemu;           /* program */
        struct hvt_vcpu_state init; /* from set_state: the guest's first state */
        bool started, guest_seen, eof, failed;
        pid_t pid;
        int log_fd, status; /* QEMU's wait status once reaped */
        bool reaped;
        char *buf;
        size_t len, pos;
        struct qrec cur;      /* the newest logged instruction */
        bool have_cur;        /* ... not yet known to have run */
        struct qrec exit_rec; /* the state get_state reports */
        struct qrec stopped;  /* an instruction that did not run: "Stopped execution" */
        bool have_stopped;
        uint8_t last_op; /* opcode class of the last instruction that ran, for the shadow kind */
        struct qrec ran; /* the last instruction that ran */
        bool have_ran;
        struct post post; /* after the last instruction that ran */
        struct {
                bool pending;
                uint8_t vector;
                uint16_t sp, flags;
        } deliver; /* a delivery whose handler's first state is still to come */
        uint32_t io_data;
        int uc_intno;
        uint64_t restart_pc;   /* step's second try: where it started ... */
        unsigned restart_hits; /* ... and how often the instruction there began */
        FILE *dlog;            /* HVTRACE_QEMU_DELIVERIES: QEMU's own view of each delivery */
        volatile sig_atomic_t kick;
};

enum { OP_OTHER, OP_STI, OP_MOVSS };

static struct qemu_backend *to_q(struct backend *b)
{
        return (struct qemu_backend *)b;
}

/* ---- starting QEMU ------------------------------------------------------- */

static const char *qemu_program(void)
{
        const char *p = getenv("HVTRACE_QEMU");

        return p && *p ? p : "qemu-system-x86_64";
}

/*
 * The BIOS image: $HVTRACE_QEMU_BIOS, else the installed copy beside an
 * installed hvrec (HVT_QEMU_BIOS_INSTALLED is relative to the directory of
 * the executable, so a relocated install still finds it), else the one in
 * the build tree hvrec was built in.
 */
static const char *bios_path(void)
{
        static char installed[4096 + sizeof(HVT_QEMU_BIOS_INSTALLED) + 1];
        const char *p = getenv("HVTRACE_QEMU_BIOS");
        char exe[4096];
        ssize_t n;

        if (p && *p)
                return p;
        n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (n > 0) {
                char *slash;

                exe[n] = 0;
                slash = strrchr(exe, '/');
                if (slash) {
                        *slash = 0;
                        snprintf(installed, sizeof(installed), "%s/%s", exe,
                                 HVT_QEMU_BIOS_INSTALLED);
                        if (!access(installed, R_OK))
                                return installed;
                }
        }
        return HVT_QEMU_BIOS;
}

/* The first line of `qemu --version` into buf; 0 or -errno. */
static int qemu_version(const char *prog, char *buf, size_t len)
{
        int fds[2], st;
        pid_t pid;
        ssize_t n = 0, r;

        if (pipe2(fds, O_CLOEXEC))
                return -errno;
        pid = fork();
        if (pid < 0) {
                close(fds[0]);
                close(fds[1]);
                return -errno;
        }
        if (!pid) {
                int null = open("/dev/null", O_RDWR);

                dup2(fds[1], 1);
                if (null >= 0)
                        dup2(null, 2);
                execlp(prog, prog, "--version", (char *)NULL);
                _exit(127);
        }
        close(fds[1]);
        while ((size_t)n < len - 1 &&
               ((r = read(fds[0], buf + n, len - 1 - (size_t)n)) > 0 || (r < 0 && errno == EINTR)))
                n += r > 0 ? r : 0;
        close(fds[0]);
        buf[n] = 0;
        buf[strcspn(buf, "\n")] = 0;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
                ;
        if (!WIFEXITED(st) || WEXITSTATUS(st) || !n)
                return -ENOENT;
        return 0;
}

/* A memfd holding len bytes of data (no CLOEXEC: QEMU opens it by /proc/self/fd). */
static int memfd_with(const char *name, const void *data, size_t len)
{
        int fd = memfd_create(name, 0);
        const uint8_t *p = data;

        if (fd < 0)
                return -errno;
        while (len) {
                ssize_t n = write(fd, p, len);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        int err = n < 0 ? -errno : -EIO;

                        close(fd);
                        return err;
                }
                p += n;
                len -= (size_t)n;
        }
        return fd;
}

/* The BIOS image with the guest's entry patched in; 0 or -errno. */
static int bios_image(const struct qemu_backend *q, uint8_t *img)
{
        int fd = open(bios_path(), O_RDONLY | O_CLOEXEC);
        size_t got = 0;
        uint16_t param[3] = { (uint16_t)q->init.rip, q->init.seg[HVT_CS].selector,
                              (uint16_t)q->init.gpr[4] };

        if (fd < 0)
                return -errno;
        while (got < BIOS_SIZE) {
                ssize_t n = read(fd, img + got, BIOS_SIZE - got);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                got += (size_t)n;
        }
        close(fd);
        if (got != BIOS_SIZE)
                return -ENOEXEC;
        memcpy(img + BIOS_PARAM, param, sizeof(param));
        return 0;
}

/* The span of b->mem below LOW_RAM_END that is not zero: [*lo, *hi). */
static void image_span(const struct qemu_backend *q, uint64_t *lo, uint64_t *hi)
{
        uint64_t end = q->base.mem_size < LOW_RAM_END ? q->base.mem_size : LOW_RAM_END;
        uint64_t a = 0, z = end;

        while (a < end && !q->base.mem[a])
                a++;
        while (z > a && !q->base.mem[z - 1])
                z--;
        *lo = a;
        *hi = z;
}

static int start_qemu(struct qemu_backend *q)
{
        uint8_t *bios = malloc(BIOS_SIZE);
        char bios_arg[48], loader[96], log_arg[48], mem_arg[24];
        uint64_t lo, hi;
        int bios_fd = -1, img_fd = -1, fds[2] = { -1, -1 }, err;
        pid_t pid;

        if (!bios)
                return -ENOMEM;
        err = bios_image(q, bios);
        image_span(q, &lo, &hi);
        if (!err && hi <= lo)
                err = -ENOEXEC; /* nothing to run */
        for (uint64_t a = LOW_RAM_END; !err && a < q->base.mem_size; a++)
                if (q->base.mem[a])
                        err = -ENOTSUP; /* QEMU has no RAM there to load it into */
        bios_fd = err ? err : memfd_with("hvt-bios", bios, BIOS_SIZE);
        free(bios);
        if (bios_fd < 0)
                return bios_fd;
        img_fd = memfd_with("hvt-guest", q->base.mem + lo, (size_t)(hi - lo));
        if (img_fd < 0) {
                err = img_fd;
                goto err_bios;
        }
        if (pipe(fds)) {
                err = -errno;
                goto err_img;
        }
        fcntl(fds[0], F_SETFD, FD_CLOEXEC);
        snprintf(bios_arg, sizeof(bios_arg), "/proc/self/fd/%d", bios_fd);
        snprintf(loader, sizeof(loader), "loader,file=/proc/self/fd/%d,addr=0x%llx,force-raw=on",
                 img_fd, (unsigned long long)lo);
        snprintf(log_arg, sizeof(log_arg), "/proc/self/fd/%d", fds[1]);
        snprintf(mem_arg, sizeof(mem_arg), "%lluM",
                 (unsigned long long)((q->base.mem_size + (1u << 20) - 1) >> 20 < 2
                                              ? 2
                                              : (q->base.mem_size + (1u << 20) - 1) >> 20));
        pid = fork();
        if (pid < 0) {
                err = -errno;
                goto err_pipe;
        }
        if (!pid) {
                int null = open("/dev/null", O_RDWR);
                sigset_t none;

                /* Killing hvrec (even with SIGKILL) must not leave QEMU running. */
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (getppid() == 1)
                        _exit(127);
                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                /* QEMU gets its three files and no other of hvrec's (the trace's). */
                close_range(3, ~0u, CLOSE_RANGE_CLOEXEC);
                fcntl(bios_fd, F_SETFD, 0);
                fcntl(img_fd, F_SETFD, 0);
                fcntl(fds[1], F_SETFD, 0);
                if (null >= 0) {
                        dup2(null, 0);
                        dup2(null, 1);
                }
                execlp(q->qemu, q->qemu, "-nodefaults", "-display", "none", "-M", "pc",
                       "-no-reboot", "-m", mem_arg, "-accel", "tcg", "-bios", bios_arg, "-device",
                       loader, "-device", "isa-debug-exit,iobase=0xf4,iosize=1", "-icount", ICOUNT,
                       "-singlestep", "-d", "exec,nochain,int,cpu,cpu_reset", "-D", log_arg,
                       (char *)NULL);
                _exit(127);
        }
        q->pid = pid;
        q->log_fd = fds[0];
        close(fds[1]);
        close(img_fd);
        close(bios_fd);
        fcntl(q->log_fd, F_SETFL, O_NONBLOCK);
        q->started = true;
        return 0;

err_pipe:
        close(fds[0]);
        close(fds[1]);
err_img:
        close(img_fd);
err_bios:
        close(bios_fd);
        return err;
}

/* ---- reading the log ----------------------------------------------------- */

/*
 * The next line of the log, NUL-terminated, or NULL: at the end of the log
 * (q->eof), on a kick when `kickable` (-EINTR in *err) or a read error.
 */
static char *next_line(struct qemu_backend *q, bool kickable, int *err)
{
        for (;;) {
                char *nl = memchr(q->buf + q->pos, '\n', q->len - q->pos);
                struct pollfd pfd = { .fd = q->log_fd, .events = POLLIN };
                ssize_t n;

                if (nl) {
                        char *line = q->buf + q->pos;

                        *nl = 0;
                        q->pos = (size_t)(nl - q->buf) + 1;
                        return line;
                }
                if (q->eof)
                        return NULL;
                if (q->pos) {
                        memmove(q->buf, q->buf + q->pos, q->len - q->pos);
                        q->len -= q->pos;
                        q->pos = 0;
                }
                if (q->len == LOG_BUF) {
                        *err = -EPROTO; /* no line is that long */
                        return NULL;
                }
                if (kickable && q->kick) {
                        *err = -EINTR;
                        return NULL;
                }
                n = read(q->log_fd, q->buf + q->len, LOG_BUF - q->len);
                if (n > 0) {
                        q->len += (size_t)n;
                        continue;
                }
                if (n == 0) {
                        q->eof = true;
                        if (q->len && q->buf[q->len - 1] != '\n')
                                q->buf[q->len++] = '\n';
                        continue;
                }
                if (errno != EAGAIN && errno != EINTR) {
                        *err = -errno;
                        return NULL;
                }
                poll(&pfd, 1, POLL_MS);
        }
}

static uint64_t hex(const char *s, const char *key)
{
        const char *p = strstr(s, key);

        return p ? strtoull(p + strlen(key), NULL, 16) : 0;
}

/* "CS =0000 00000000 0000ffff 00009b00": QEMU's descriptor flags, unpacked. */
static void parse_seg(const char *s, struct hvt_disk_seg *seg)
{
        char *end;
        unsigned long long sel = strtoull(s + 4, &end, 16), base = strtoull(end, &end, 16);
        unsigned long long limit = strtoull(end, &end, 16), f = strtoull(end, NULL, 16);

        seg->selector = (uint16_t)sel;
        seg->base = base;
        seg->limit = (uint32_t)limit;
        seg->attr =
                (uint16_t)(((f >> 8) & 0xf) | (((f >> 12) & 1) ? HVT_SEG_S : 0) |
                           (((f >> 13) & 3) << HVT_SEG_DPL_SHIFT) |
                           (((f >> 15) & 1) ? HVT_SEG_P : 0) | (((f >> 20) & 1) ? HVT_SEG_AVL : 0) |
                           (((f >> 21) & 1) ? HVT_SEG_L : 0) | (((f >> 22) & 1) ? HVT_SEG_DB : 0) |
                           (((f >> 23) & 1) ? HVT_SEG_G : 0));
}

/* The register dump after a "Trace" line, up to its EFER line.  0 or -errno. */
static int parse_state(struct qemu_backend *q, struct qrec *r)
{
        int err = 0;
        static const char *const segs[HVT_SREG_COUNT] = { "ES =", "CS =", "SS =",
                                                          "DS =", "FS =", "GS =" };
        struct hvt_vcpu_state *st = &r->st;
        char *l;

        memset(st, 0, sizeof(*st));
        /* A kick waits for the dump's end: the instruction is taken whole. */
        while ((l = next_line(q, false, &err))) {
                if (!strncmp(l, "EAX=", 4)) {
                        st->gpr[0] = hex(l, "EAX=");
                        st->gpr[3] = hex(l, "EBX=");
                        st->gpr[1] = hex(l, "ECX=");
                        st->gpr[2] = hex(l, "EDX=");
                } else if (!strncmp(l, "ESI=", 4)) {
                        st->gpr[6] = hex(l, "ESI=");
                        st->gpr[7] = hex(l, "EDI=");
                        st->gpr[5] = hex(l, "EBP=");
                        st->gpr[4] = hex(l, "ESP=");
                } else if (!strncmp(l, "EIP=", 4)) {
                        st->rip = hex(l, "EIP=");
                        st->rflags = hex(l, "EFL=");
                } else if (!strncmp(l, "GDT=", 4)) {
                        char *end;

                        st->gdt.base = strtoull(l + 4, &end, 16);
                        st->gdt.limit = (uint16_t)strtoul(end, NULL, 16);
                } else if (!strncmp(l, "IDT=", 4)) {
                        char *end;

                        st->idt.base = strtoull(l + 4, &end, 16);
                        st->idt.limit = (uint16_t)strtoul(end, NULL, 16);
                } else if (!strncmp(l, "CR0=", 4)) {
                        st->cr0 = hex(l, "CR0=");
                        st->cr2 = hex(l, "CR2=");
                        st->cr3 = hex(l, "CR3=");
                        st->cr4 = hex(l, "CR4=");
                } else if (!strncmp(l, "EFER=", 5)) {
                        st->efer = hex(l, "EFER=");
                        return 0;
                } else {
                        for (int i = 0; i < HVT_SREG_COUNT; i++)
                                if (!strncmp(l, segs[i], 4))
                                        parse_seg(l, &st->seg[i]);
                }
        }
        return err ? err : -EPROTO; /* the log ended inside a dump */
}

/* ---- lockstep on Unicorn ------------------------------------------------- */

static bool uc_on_io(uc_engine *uc, uint32_t port, int size, void *user)
{
        (void)uc;
        (void)port;
        (void)size;
        (void)user;
        return true;
}

static uint32_t uc_on_in(uc_engine *uc, uint32_t port, int size, void *user)
{
        (void)uc;
        (void)port;
        (void)size;
        (void)user;
        return 0; /* replaced by QEMU's value: the next logged state has it */
}

static void uc_on_restart(uc_engine *uc, uint64_t addr, uint32_t size, void *user)
{
        struct qemu_backend *q = to_q(user);

        (void)size;
        if (addr != q->restart_pc || ++q->restart_hits >= 3)
                uc_emu_stop(uc);
}

static void uc_on_intr(uc_engine *uc, uint32_t intno, void *user)
{
        to_q(user)->uc_intno = (int)intno;
        uc_emu_stop(uc);
}

static int open_unicorn(struct qemu_backend *q, char *why, size_t len)
{
        uint64_t map = q->base.mem_size < LOW_RAM_END ? q->base.mem_size : LOW_RAM_END;
        uc_hook h;
        uc_err e;

        e = uc_open(UC_ARCH_X86, UC_MODE_16, &q->uc);
        if (!e)
                e = uc_mem_map_ptr(q->uc, 0, map & ~0xfffull, UC_PROT_ALL, q->base.mem);
        if (!e)
                e = uc_hook_add(q->uc, &h, UC_HOOK_INSN, (void *)uc_on_in, q, 1, 0, UC_X86_INS_IN);
        if (!e)
                e = uc_hook_add(q->uc, &h, UC_HOOK_INSN, (void *)uc_on_io, q, 1, 0, UC_X86_INS_OUT);
        if (!e)
                e = uc_hook_add(q->uc, &h, UC_HOOK_INTR, (void *)uc_on_intr, q, 1, 0);
        if (e) {
                snprintf(why, len, "Unicorn: %s", uc_strerror(e));
                return -ENOMEM;
        }
        return 0;
}

static void wr16(struct qemu_backend *q, uint64_t a, uint16_t v)
{
        if (a + 1 < q->base.mem_size) {
                q->base.mem[a] = (uint8_t)v;
                q->base.mem[a + 1] = (uint8_t)(v >> 8);
        }
}

/* Vector v's handler in the real-mode IVT at 0 (create keeps RAM above it). */
static void ivt_target(const struct qemu_backend *q, unsigned v, uint16_t *cs, uint16_t *ip)
{
        struct x86_gate g;

        x86_gate_decode(HVT_MODE_REAL, q->base.mem + (uint64_t)v * 4, &g);
        *cs = g.selector;
        *ip = (uint16_t)g.offset;
}

/* Push a real-mode interrupt frame (FLAGS, CS, IP) at SS:SP; returns the new SP. */
static uint16_t push_frame(struct qemu_backend *q, uint64_t ss_base, uint16_t sp, uint16_t flags,
                           uint16_t cs, uint16_t ip)
{
        sp = (uint16_t)(sp - 2);
        wr16(q, ss_base + sp, flags);
        sp = (uint16_t)(sp - 2);
        wr16(q, ss_base + sp, cs);
        sp = (uint16_t)(sp - 2);
        wr16(q, ss_base + sp, ip);
        return sp;
}

/* Whether Unicorn's registers are still st's: IP, FLAGS and every general register. */
static bool unmoved(struct qemu_backend *q, const struct hvt_vcpu_state *st)
{
        static const int regs[] = {
                UC_X86_REG_EAX, UC_X86_REG_ECX, UC_X86_REG_EDX, UC_X86_REG_EBX,
                UC_X86_REG_ESP, UC_X86_REG_EBP, UC_X86_REG_ESI, UC_X86_REG_EDI
        };
        uint64_t v = 0;

        uc_reg_read(q->uc, UC_X86_REG_IP, &v);
        if ((uint16_t)v != (uint16_t)st->rip)
                return false;
        v = 0;
        uc_reg_read(q->uc, UC_X86_REG_EFLAGS, &v);
        if ((uint32_t)v != (uint32_t)st->rflags)
                return false;
        for (size_t i = 0; i < sizeof(regs) / sizeof(regs[0]); i++) {
                v = 0;
                uc_reg_read(q->uc, regs[i], &v);
                if ((uint32_t)v != (uint32_t)st->gpr[i])
                        return false;
        }
        return true;
}

/* Run the instruction of r (which QEMU ran) on Unicorn: its writes land in b->mem. */
static int step(struct qemu_backend *q, const struct qrec *r)
{
        static const int gpr[8] = {
                UC_X86_REG_EAX, UC_X86_REG_ECX, UC_X86_REG_EDX, UC_X86_REG_EBX,
                UC_X86_REG_ESP, UC_X86_REG_EBP, UC_X86_REG_ESI, UC_X86_REG_EDI
        };
        static const int seg[HVT_SREG_COUNT] = { UC_X86_REG_ES, UC_X86_REG_CS, UC_X86_REG_SS,
                                                 UC_X86_REG_DS, UC_X86_REG_FS, UC_X86_REG_GS };
        const struct hvt_vcpu_state *st = &r->st;
        uint64_t v, pc = st->seg[HVT_CS].base + (st->rip & 0xffff);
        uc_err e;

        for (int i = 0; i < 8; i++) {
                v = st->gpr[i];
                uc_reg_write(q->uc, gpr[i], &v);
        }
        for (int i = 0; i < HVT_SREG_COUNT; i++) {
                v = st->seg[i].selector;
                uc_reg_write(q->uc, seg[i], &v);
        }
        v = st->rflags;
        uc_reg_write(q->uc, UC_X86_REG_EFLAGS, &v);
        q->uc_intno = -1;
        /* Unicorn's 16-bit mode takes the start as a linear address (CS * 16 + IP). */
        e = uc_emu_start(q->uc, pc, 0, 0, 1);
        if (!e && q->uc_intno < 0 && unmoved(q, st)) {
                /*
                 * A store into the code being run: the TCG gives up the
                 * translated block before the store and starts the
                 * instruction again in a block of its own, which a
                 * one-instruction run stops short of.  Nothing changed: run
                 * again until the next instruction begins (or pc comes
                 * round a third time: a jump to itself).
                 */
                uc_hook h;

                q->restart_pc = pc;
                q->restart_hits = 0;
                e = uc_hook_add(q->uc, &h, UC_HOOK_CODE, (void *)uc_on_restart, q, 1, 0);
                if (!e) {
                        e = uc_emu_start(q->uc, pc, 0, 0, 0);
                        uc_hook_del(q->uc, h);
                }
        }
        if (e)
                return -EPROTO;
        uint64_t ip = 0, cs = 0, ss = 0, sp = 0, fl = 0, cx = 0;

        uc_reg_read(q->uc, UC_X86_REG_EIP, &ip);
        uc_reg_read(q->uc, UC_X86_REG_CS, &cs);
        uc_reg_read(q->uc, UC_X86_REG_SS, &ss);
        uc_reg_read(q->uc, UC_X86_REG_ESP, &sp);
        uc_reg_read(q->uc, UC_X86_REG_EFLAGS, &fl);
        uc_reg_read(q->uc, UC_X86_REG_ECX, &cx);
        if (q->uc_intno >= 0) {
                /* INT n / INT3 / INTO: Unicorn leaves delivery to us; real mode, through the IVT.
                 */
                uint64_t ss_base = (uint64_t)(uint16_t)ss << 4;
                uint16_t hcs, hip;

                sp = push_frame(q, ss_base, (uint16_t)sp, (uint16_t)fl, (uint16_t)cs, (uint16_t)ip);
                ivt_target(q, (unsigned)q->uc_intno, &hcs, &hip);
                ip = hip;
                cs = hcs;
                fl &= ~(uint64_t)(X86_RFLAGS_IF | X86_RFLAGS_TF | X86_RFLAGS_AC | X86_RFLAGS_RF);
        }
        q->post = (struct post){ .valid = true,
                                 .cs = (uint16_t)cs,
                                 .ip = (uint16_t)ip,
                                 .ss = (uint16_t)ss,
                                 .sp = (uint16_t)sp,
                                 .eflags = (uint32_t)fl,
                                 .ecx = (uint32_t)cx };
        return 0;
}

/* ---- interpreting the log ------------------------------------------------- */

/* An instruction in b->mem, as far as the log's interpretation needs it. */
struct insn {
        uint8_t op, b1; /* the opcode and the byte after it */
        unsigned len;   /* the prefixes' bytes: the opcode is at IP + len */
        bool o32, a32;  /* operand- and address-size prefixes */
        bool rep;       /* F2 or F3 */
        unsigned seg;   /* a memory operand's segment: HVT_DS unless overridden */
};

/* The instruction at CS:IP in b->mem: its prefixes scanned once. */
static void decode(const struct qemu_backend *q, const struct hvt_vcpu_state *st, struct insn *in)
{
        uint64_t a = st->seg[HVT_CS].base + (st->rip & 0xffff);

        memset(in, 0, sizeof(*in));
        in->seg = HVT_DS;
        for (; in->len < 15 && a + 1 < q->base.mem_size; in->len++, a++) {
                switch (q->base.mem[a]) {
                case 0x66: in->o32 = true; continue;
                case 0x67: in->a32 = true; continue;
                case 0xf2:
                case 0xf3: in->rep = true; continue;
                case 0x26: in->seg = HVT_ES; continue;
                case 0x2e: in->seg = HVT_CS; continue;
                case 0x36: in->seg = HVT_SS; continue;
                case 0x3e: in->seg = HVT_DS; continue;
                case 0x64: in->seg = HVT_FS; continue;
                case 0x65: in->seg = HVT_GS; continue;
                case 0xf0: continue;
                default: break;
                }
                in->op = q->base.mem[a];
                in->b1 = q->base.mem[a + 1];
                return;
        }
}

static bool is_real_mode(const struct hvt_vcpu_state *st)
{
        if (st->cr0 & X86_CR0_PE)
                return false;
        for (int i = 0; i < HVT_SREG_COUNT; i++)
                if (st->seg[i].base != (uint64_t)st->seg[i].selector << 4)
                        return false; /* unreal mode: Unicorn's segment writes cannot follow */
        return true;
}

/* The shadow QEMU reports for r: its inhibit flag, the kind from the instruction before. */
static uint64_t intr_of(const struct qemu_backend *q, const struct qrec *r)
{
        uint64_t intr = HVT_INTR_VALID_SHADOW | HVT_INTR_VALID_IF;

        if (r->st.rflags & X86_RFLAGS_IF)
                intr |= HVT_INTR_IF;
        if (r->tb_flags & TB_INHIBIT_IRQ)
                intr |= q->last_op == OP_MOVSS ? HVT_INTR_MOVSS_SHADOW : HVT_INTR_STI_SHADOW;
        return intr;
}

/* Check QEMU's next logged state against Unicorn's prediction. */
static int check_post(struct qemu_backend *q, const struct qrec *r)
{
        if (!q->post.valid)
                return 0;
        q->post.valid = false;
        if (q->post.rep_again && r->st.seg[HVT_CS].selector == q->post.cs &&
            (uint16_t)r->st.rip == q->post.rep_ip && (uint16_t)r->st.gpr[4] == q->post.sp)
                return 0;
        if (r->st.seg[HVT_CS].selector != q->post.cs || (uint16_t)r->st.rip != q->post.ip ||
            (uint16_t)r->st.gpr[4] != q->post.sp)
                return -EPROTO;
        return 0;
}

/* The handler's first state against the delivery: IVT entry, SP and FLAGS. */
static int check_delivery(struct qemu_backend *q, const struct qrec *r)
{
        uint16_t want_flags = q->deliver.flags & ~(X86_RFLAGS_IF | X86_RFLAGS_TF | X86_RFLAGS_AC);
        uint16_t cs, ip;

        q->deliver.pending = false;
        ivt_target(q, q->deliver.vector, &cs, &ip);
        if (r->st.seg[HVT_CS].selector != cs || (uint16_t)r->st.rip != ip ||
            (uint16_t)r->st.gpr[4] != q->deliver.sp || (uint16_t)r->st.rflags != want_flags)
                return -EPROTO;
        return 0;
}

/*
 * One OUTS that ran: QEMU's TCG runs a REP string instruction one
 * iteration per TB, each logged, so each logged OUTS is one element (none
 * when REP found (E)CX = 0).  The element comes from b->mem, which holds
 * what QEMU's RAM held before the instruction (lockstep).  1 when it is an
 * exit, 0 when not, -errno.
 */
static int outs_exit(struct qemu_backend *q, const struct hvt_vcpu_state *st, const struct insn *in,
                     struct backend_exit *x)
{
        uint64_t si, from;
        uint8_t size;

        if (in->rep && !(in->a32 ? (uint32_t)st->gpr[1] : (uint16_t)st->gpr[1]))
                return 0;
        size = in->op == 0x6e ? 1 : (in->o32 ? 4 : 2);
        si = in->a32 ? (uint32_t)st->gpr[6] : (uint16_t)st->gpr[6];
        from = st->seg[in->seg].base + si;
        if (from + size > q->base.mem_size)
                return -ENOTSUP; /* not RAM that the lockstep copy holds */
        q->io_data = 0;
        memcpy(&q->io_data, q->base.mem + from, size);
        x->reason = HVT_EXIT_IO;
        x->raw = in->op;
        x->u.io.port = (uint16_t)st->gpr[2];
        x->u.io.size = size;
        x->u.io.dir = HVT_IO_OUT;
        x->u.io.count = 1;
        x->u.io.data = (uint8_t *)&q->io_data;
        return 1;
}

/*
 * A REP string instruction's last iteration: QEMU (-singlestep, without
 * -icount) goes on to the next instruction at once; Unicorn, and QEMU with
 * -icount, come back to the REP once more to find (E)CX = 0.  Both are the
 * same architectural state: accept either.
 */
static void finish_rep(struct qemu_backend *q, const struct hvt_vcpu_state *st,
                       const struct insn *in)
{
        uint8_t op = in->op;
        bool string = (op >= 0x6c && op <= 0x6f) || (op >= 0xa4 && op <= 0xa7) ||
                      (op >= 0xaa && op <= 0xaf); /* INS OUTS MOVS CMPS STOS LODS SCAS */

        if (string && in->rep && q->post.ip == (uint16_t)st->rip &&
            q->post.cs == st->seg[HVT_CS].selector &&
            !(in->a32 ? q->post.ecx : (uint16_t)q->post.ecx)) {
                q->post.rep_again = true;
                q->post.rep_ip = q->post.ip;
                q->post.ip = (uint16_t)(st->rip + in->len + 1);
        }
}

/*
 * r ran.  Execute it on Unicorn; fill *x and return 1 when it is an exit,
 * 0 when not, -errno on failure.
 */
static int retire(struct qemu_backend *q, const struct qrec *r, struct backend_exit *x)
{
        const struct hvt_vcpu_state *st = &r->st;
        struct insn in;
        int err, kind = OP_OTHER, ret = 0;

        if (!is_real_mode(st))
                return -ENOTSUP;
        err = check_post(q, r);
        if (err)
                return err;
        decode(q, st, &in);
        q->ran = *r;
        q->have_ran = true;
        q->exit_rec = *r;
        q->exit_rec.st.intr = intr_of(q, r);
        memset(x, 0, sizeof(*x));
        switch (in.op) {
        case 0xe6: /* OUT imm8, AL */
        case 0xe7: /* OUT imm8, (E)AX */
        case 0xee: /* OUT DX, AL */
        case 0xef: /* OUT DX, (E)AX */
                x->reason = HVT_EXIT_IO;
                x->raw = in.op;
                x->u.io.port = in.op < 0xe8 ? in.b1 : (uint16_t)st->gpr[2];
                x->u.io.size = (in.op & 1) ? (in.o32 ? 4 : 2) : 1;
                x->u.io.dir = HVT_IO_OUT;
                x->u.io.count = 1;
                q->io_data = (uint32_t)st->gpr[0];
                x->u.io.data = (uint8_t *)&q->io_data;
                ret = 1;
                break;
        case 0x6e: /* OUTSB */
        case 0x6f: /* OUTSW / OUTSD */
                ret = outs_exit(q, st, &in, x);
                if (ret < 0)
                        return ret;
                break;
        case 0xf4:
                if (!(st->rflags & X86_RFLAGS_IF)) {
                        x->reason = HVT_EXIT_HLT;
                        x->raw = in.op;
                        ret = 1;
                }
                break;
        case 0xfb: kind = OP_STI; break;
        case 0x17: kind = OP_MOVSS; break;
        case 0x8e:
                if (((in.b1 >> 3) & 7) == 2)
                        kind = OP_MOVSS;
                break;
        default: break;
        }
        q->last_op = (uint8_t)kind;
        if (in.op == 0xf4) {
                /* Unicorn would stop at HLT; the CPU waits after it, state unchanged. */
                q->post = (struct post){ .valid = true,
                                         .cs = st->seg[HVT_CS].selector,
                                         .ip = (uint16_t)(st->rip + in.len + 1),
                                         .ss = st->seg[HVT_SS].selector,
                                         .sp = (uint16_t)st->gpr[4],
                                         .eflags = (uint32_t)st->rflags };
                return ret;
        }
        err = step(q, r);
        if (!err)
                finish_rep(q, st, &in);
        return err ? err : ret;
}

/* Whether r is a HLT with IF = 0. */
static bool halts_for_good(const struct qemu_backend *q, const struct qrec *r)
{
        struct insn in;

        decode(q, &r->st, &in);
        return in.op == 0xf4 && !(r->st.rflags & X86_RFLAGS_IF);
}

static const char *op_name(unsigned kind)
{
        static const char *const names[] = {
                [OP_OTHER] = "other", [OP_STI] = "sti", [OP_MOVSS] = "movss"
        };
        _Static_assert(sizeof(names) / sizeof(names[0]) == OP_MOVSS + 1, "name every class");

        return kind <= OP_MOVSS ? names[kind] : "?";
}

/*
 * HVTRACE_QEMU_DELIVERIES: one line per delivery with QEMU's own inhibit
 * flag, for cross-validating the checker (scripts/crossval-qemu-tcg.sh).
 * QEMU logs its flag at the interrupted boundary only when it had already
 * begun that instruction's TB ("stopped"); when it serviced the interrupt
 * between two TBs ("between") the flag there is in no log line, and the
 * line gives the flag of the instruction before and that instruction's
 * class, from which QEMU computed it.
 */
static void log_delivery(struct qemu_backend *q, uint8_t vector, uint16_t cs, uint16_t ip,
                         const struct qrec *stopped)
{
        if (!q->dlog)
                return;
        fprintf(q->dlog, "0x%02x\t%04x:%04x\t%s\t%s\t%s\t%u\n", vector, cs, ip,
                stopped ? "stopped" : "between",
                stopped ? (stopped->tb_flags & TB_INHIBIT_IRQ ? "1" : "0") : "-",
                op_name(q->last_op),
                q->have_ran ? (q->ran.tb_flags & TB_INHIBIT_IRQ ? 1u : 0u) : 0u);
}

/* "Servicing hardware INT=0xNN": push the frame into b->mem as the CPU did. */
static int serviced(struct qemu_backend *q, uint8_t vector, const struct qrec *stopped)
{
        uint16_t ip, cs, sp, flags;
        uint64_t ss_base;

        if (stopped) {
                int err = check_post(q, stopped);

                if (err)
                        return err;
                ip = (uint16_t)stopped->st.rip;
                cs = stopped->st.seg[HVT_CS].selector;
                sp = (uint16_t)stopped->st.gpr[4];
                flags = (uint16_t)stopped->st.rflags;
                ss_base = stopped->st.seg[HVT_SS].base;
        } else if (q->post.valid) {
                ip = q->post.ip;
                cs = q->post.cs;
                sp = q->post.sp;
                flags = (uint16_t)q->post.eflags;
                ss_base = (uint64_t)q->post.ss << 4;
        } else {
                return -EPROTO; /* the interrupted state is in no log line and no prediction */
        }
        log_delivery(q, vector, cs, ip, stopped);
        q->post.valid = false;
        q->deliver.pending = true;
        q->deliver.vector = vector;
        q->deliver.flags = flags;
        q->deliver.sp = push_frame(q, ss_base, sp, flags, cs, ip);
        q->last_op = OP_OTHER;
        return 0;
}

/* QEMU's exit status agrees with the guest's OUT to the exit port. */
static int reap(struct qemu_backend *q)
{
        if (!q->reaped) {
                while (waitpid(q->pid, &q->status, 0) < 0)
                        if (errno != EINTR)
                                return -errno;
                q->reaped = true;
        }
        return 0;
}

static int qemu_run(struct backend *b, struct backend_exit *x)
{
        struct qemu_backend *q = to_q(b);
        int err = 0;
        char *l;

        if (q->failed)
                return -EPROTO;
        if (!q->started) {
                err = start_qemu(q);
                if (err)
                        return err;
        }
        for (;;) {
                if (q->kick) {
                        q->kick = 0;
                        memset(x, 0, sizeof(*x));
                        x->reason = HVT_EXIT_INTR;
                        if (q->have_cur) {
                                q->exit_rec = q->cur;
                                q->exit_rec.st.intr = intr_of(q, &q->cur);
                        }
                        return 0;
                }
                if (q->have_cur && halts_for_good(q, &q->cur)) {
                        /*
                         * HLT with IF = 0: nothing in this machine (no NMI, SMI or
                         * INIT source) can divert the CPU before it, and no log line
                         * will follow it.  It is the exit now.
                         */
                        q->have_cur = false;
                        err = retire(q, &q->cur, x);
                        if (err < 0)
                                goto fail;
                        return 0;
                }
                l = next_line(q, true, &err);
                if (!l) {
                        if (err == -EINTR)
                                continue;
                        if (err)
                                goto fail;
                        /* End of the log: QEMU exited.  Its last logged instruction ran only
                         * if it was the exit port's OUT (isa-debug-exit ended QEMU in it). */
                        err = reap(q);
                        if (err)
                                goto fail;
                        if (q->have_cur && WIFEXITED(q->status) && (WEXITSTATUS(q->status) & 1)) {
                                q->have_cur = false;
                                err = retire(q, &q->cur, x);
                                if (err == 1 && x->reason == HVT_EXIT_IO && x->u.io.port == 0xf4 &&
                                    (int)(((q->io_data & 0xff) << 1 | 1) & 0xff) ==
                                            WEXITSTATUS(q->status))
                                        return 0;
                        }
                        err = -EPIPE;
                        goto fail;
                }
                if (!strncmp(l, "Trace ", 6)) {
                        struct qrec r;
                        const char *p = strchr(l, '[');
                        char *end;

                        if (!p)
                                continue;
                        strtoull(p + 1, &end, 16);   /* cs_base */
                        strtoull(end + 1, &end, 16); /* pc */
                        r.tb_flags = (uint32_t)strtoul(end + 1, NULL, 16);
                        err = parse_state(q, &r);
                        if (err)
                                goto fail;
                        if (!q->guest_seen) {
                                /* The BIOS runs first; the guest starts at its entry in real mode.
                                 */
                                if ((r.st.cr0 & X86_CR0_PE) ||
                                    r.st.seg[HVT_CS].selector != q->init.seg[HVT_CS].selector ||
                                    (uint16_t)r.st.rip != (uint16_t)q->init.rip)
                                        continue;
                                q->guest_seen = true;
                        }
                        if (q->deliver.pending) {
                                err = check_delivery(q, &r);
                                if (err)
                                        goto fail;
                        }
                        q->have_stopped = false;
                        if (q->have_cur) {
                                int ret = retire(q, &q->cur, x);

                                q->cur = r;
                                if (ret < 0) {
                                        err = ret;
                                        goto fail;
                                }
                                if (ret)
                                        return 0;
                                continue;
                        }
                        q->cur = r;
                        q->have_cur = true;
                } else if (!strcmp(l, "Triple fault") && q->guest_seen) {
                        /* The instruction that faulted did not complete: its state is the exit's.
                         */
                        memset(x, 0, sizeof(*x));
                        x->reason = HVT_EXIT_SHUTDOWN;
                        if (q->have_cur) {
                                q->exit_rec = q->cur;
                                q->exit_rec.st.intr = intr_of(q, &q->cur);
                                q->have_cur = false;
                        }
                        q->failed = true; /* -no-reboot: QEMU is ending */
                        return 0;
                } else if (!strncmp(l, "Stopped execution", 17)) {
                        if (q->have_cur) {
                                q->stopped = q->cur;
                                q->have_stopped = true;
                                q->have_cur = false;
                        }
                } else if (!strncmp(l, "Servicing hardware INT=", 23)) {
                        uint8_t v = (uint8_t)strtoul(l + 23, NULL, 16);

                        if (!q->guest_seen)
                                continue;
                        if (q->have_cur) {
                                int ret = retire(q, &q->cur, x);

                                q->have_cur = false;
                                if (ret < 0) {
                                        err = ret;
                                        goto fail;
                                }
                                err = serviced(q, v, NULL);
                                if (err)
                                        goto fail;
                                if (ret)
                                        return 0;
                                continue;
                        }
                        err = serviced(q, v, q->have_stopped ? &q->stopped : NULL);
                        q->have_stopped = false;
                        if (err)
                                goto fail;
                }
        }
fail:
        q->failed = true;
        return err;
}

/* ---- the ops ------------------------------------------------------------- */

static int qemu_probe(char *why, size_t len)
{
        char v[96];
        int err = qemu_version(qemu_program(), v, sizeof(v));

        if (err) {
                snprintf(why, len, "%s not found or not runnable (apt-get install qemu-system-x86)",
                         qemu_program());
                return err;
        }
        if (access(bios_path(), R_OK)) {
                snprintf(why, len, "the BIOS image %s is missing (HVTRACE_QEMU_BIOS)", bios_path());
                return -ENOENT;
        }
        snprintf(why, len, "%s; BIOS %s", v, bios_path());
        return 0;
}

static void qemu_destroy(struct backend *b)
{
        struct qemu_backend *q = to_q(b);

        if (!q)
                return;
        if (q->started) {
                if (!q->reaped) {
                        kill(q->pid, SIGKILL);
                        reap(q);
                }
                close(q->log_fd);
        }
        if (q->dlog)
                fclose(q->dlog);
        if (q->uc)
                uc_close(q->uc);
        if (q->base.mem)
                munmap(q->base.mem, q->base.mem_size);
        free(q->buf);
        free(q);
}

static int open_delivery_log(struct qemu_backend *q, char *why, size_t len)
{
        const char *path = getenv("HVTRACE_QEMU_DELIVERIES");

        if (!path || !*path)
                return 0;
        q->dlog = fopen(path, "we");
        if (!q->dlog) {
                int err = -errno;

                snprintf(why, len, "HVTRACE_QEMU_DELIVERIES: %s: %s", path, strerror(-err));
                return err;
        }
        fputs("# vector\tboundary\tlogged\tinhibit_at_boundary\tprev_class\tprev_inhibit\n",
              q->dlog);
        return 0;
}

static int qemu_create(const struct backend_config *cfg, struct backend **out, char *why,
                       size_t len)
{
        struct qemu_backend *q = calloc(1, sizeof(*q));
        int err;

        if (!q)
                return -ENOMEM;
        q->base.ops = &qemu_tcg_backend_ops;
        q->qemu = qemu_program();
        q->buf = malloc(LOG_BUF + 1);
        if (!q->buf) {
                err = -ENOMEM;
                goto err_free;
        }
        err = qemu_version(q->qemu, q->version, sizeof(q->version));
        if (err) {
                snprintf(why, len, "%s not found or not runnable", q->qemu);
                goto err_free;
        }
        if (cfg->mem_size < 0x2000 || cfg->mem_size > MAX_MEM) {
                /* A real-mode guest reaches 1 MiB + 64 KiB; more RAM would only be scanned. */
                snprintf(why, len, "qemu-tcg runs real-mode guests: --mem must be 8 KiB .. 16 MiB");
                err = -EINVAL;
                goto err_free;
        }
        q->base.mem_size = cfg->mem_size;
        q->base.mem = mmap(NULL, cfg->mem_size, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (q->base.mem == MAP_FAILED) {
                q->base.mem = NULL;
                err = -ENOMEM;
                snprintf(why, len, "guest RAM: %s", strerror(ENOMEM));
                goto err_free;
        }
        err = open_unicorn(q, why, len);
        if (err)
                goto err_free;
        err = open_delivery_log(q, why, len);
        if (err)
                goto err_free;
        *out = &q->base;
        return 0;

err_free:
        qemu_destroy(&q->base);
        return err;
}

static void qemu_version_op(struct backend *b, char *buf, size_t len)
{
        snprintf(buf, len, "%s, TCG (-singlestep log, lockstep RAM on Unicorn)", to_q(b)->version);
}

static int qemu_get_state(struct backend *b, struct hvt_vcpu_state *st)
{
        struct qemu_backend *q = to_q(b);

        *st = q->started ? q->exit_rec.st : q->init;
        return 0;
}

/*
 * Only the guest's first state, before QEMU starts, and only what the BIOS
 * can set up: real mode, segments zero but CS, general registers zero but SP.
 */
static int qemu_set_state(struct backend *b, const struct hvt_vcpu_state *st)
{
        struct qemu_backend *q = to_q(b);

        if (q->started)
                return -EBUSY;
        if ((st->cr0 & X86_CR0_PE) || st->rip > 0xffff || st->gpr[4] > 0xffff ||
            st->seg[HVT_CS].base != (uint64_t)st->seg[HVT_CS].selector << 4)
                return -ENOTSUP;
        for (int i = 0; i < 16; i++)
                if (i != 4 && st->gpr[i])
                        return -ENOTSUP;
        for (int i = 0; i < HVT_SREG_COUNT; i++)
                if (i != HVT_CS && st->seg[i].selector)
                        return -ENOTSUP;
        q->init = *st;
        return 0;
}

static int qemu_raise_line(struct backend *b, uint8_t vector)
{
        (void)b;
        (void)vector;
        return -EOPNOTSUPP; /* nothing answers port 0xE0 in QEMU: the guest's PIT must */
}

static void qemu_kick(struct backend *b)
{
        to_q(b)->kick = 1;
}

const struct backend_ops qemu_tcg_backend_ops = {
        .name = "qemu-tcg",
        .summary = "QEMU's TCG from its -singlestep log: real-mode guests with their own PIC/PIT",
        .caps = HVT_CAP_REPORT_SHADOW | HVT_CAP_IRQCHIP | HVT_CAP_KICK,
        .probe = qemu_probe,
        .create = qemu_create,
        .destroy = qemu_destroy,
        .version = qemu_version_op,
        .get_state = qemu_get_state,
        .set_state = qemu_set_state,
        .run = qemu_run,
        .raise_line = qemu_raise_line,
        .kick = qemu_kick,
};
