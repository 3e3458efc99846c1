// SPDX-License-Identifier: MIT
/*
 * qemu-tcg: QEMU's TCG (qemu-system-x86_64, 7.2) as a backend, for guests
 * that drive their own PIC and PIT, in real, protected and long mode
 * (docs/backends.md, "qemu-tcg").
 *
 * QEMU runs the guest on its own; hvrec only reads its log.  At the first
 * run() the backend starts QEMU (fork/exec, no shell) with the project's
 * BIOS (guests/bios/hvt_bios.asm: it unmasks the 8259 at the LAPIC and
 * enters the guest at its IP/SP, or in protected and long mode loads
 * hvrec's GDT, control registers and EFER from its parameter block and
 * jumps to the entry), the guest's RAM image as loader blobs (below
 * 640 KiB, and above 1 MiB where hvrec's tables are: QEMU has no RAM in
 * between; all on memfds) and `-singlestep -d exec,nochain,int,cpu,cpu_reset`
 * logged to a pipe.  Each instruction then appears as a "Trace" line with QEMU's hflags
 * (bit 0x8: QEMU inhibits interrupts, its own shadow) followed by the full
 * register state before it runs.
 *
 * What the log shows and what it does not:
 *  - An instruction logged and then "Stopped execution of TB chain" did not
 *    run: an interrupt (or an exit request) came first.  Any other logged
 *    instruction ran: the next log item proves it.
 *  - "Servicing hardware INT=0xNN" is a delivery.  QEMU logs nothing else
 *    about it that hvrec uses: when the interrupt landed on a stopped
 *    instruction, the interrupted state is that instruction's logged state;
 *    when it landed after an instruction that ran (the end of a shadow, an
 *    IRET, an EOI), the state after that instruction is in no log line.
 *  - Memory is in no log line at all, and QEMU runs ahead of the reader, so
 *    QEMU's RAM cannot show the probe its frame.
 * The backend therefore keeps b->mem itself, in lockstep: every instruction
 * that ran is executed again on Unicorn (QEMU's TCG too) over b->mem from
 * QEMU's logged registers (Unicorn in the run's mode: 16-, 32- or 64-bit,
 * with the guest's tables and control registers), and each delivery's
 * frame is pushed into b->mem from the interrupted state through the IVT or
 * the IDT gate (src/arch/x86.c: gates, frames, stacks, page walks).
 * Unicorn's result is checked against QEMU's next logged state (CS:rIP and
 * rSP after every instruction; at a delivery, the handler's CS:rIP from the
 * IVT or gate, its rSP and its FLAGS): the first disagreement ends the run
 * with -EPROTO rather than report a guess.  A run stays in the mode it
 * started in: a mode switch ends it with -ENOTSUP, as does a delivery the
 * backend does not follow (task gate, IST, privilege change, an exception
 * with an error code outside real mode).
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
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
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
#define BIOS_PARAM     0xFF00u   /* hvt_bios.asm: IP, CS, SP (16 bits each) */
#define LOW_RAM_END    0xA0000u  /* above: QEMU's VGA window and ROMs, not RAM ... */
#define HIGH_RAM       0x100000u /* ... up to here */
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
        uint64_t dr7; /* the guest's own, as QEMU logs it */
};

/* What Unicorn says the state is after an instruction (rIP, rSP, rCX as wide as the mode's). */
struct post {
        bool valid;
        uint16_t cs, ss;
        uint64_t ip, sp, rflags, rcx;
        bool rep_again; /* ... or the REP at rep_ip once more, rCX = 0 */
        uint64_t rep_ip;
};

/* Where a delivery lands: the handler's first state, as the CPU makes it. */
struct landing {
        uint16_t cs;
        uint64_t ip, sp, rflags;
};

/*
 * The parameter block of hvt_bios.asm (at BIOS_PARAM in the image): the
 * real-mode entry, or the protected/long-mode registers hvrec set up.
 */
struct bios_param {
        uint16_t ip, cs, sp;
        uint8_t mode, pad;
        uint32_t entry;
        uint16_t entry_cs, ds;
        uint32_t esp, cr0, cr3, cr4, efer;
        uint16_t gdt_limit;
        uint32_t gdt_base;
        uint16_t idt_limit;
        uint32_t idt_base;
} __attribute__((packed));
_Static_assert(sizeof(struct bios_param) == 0x30, "hvt_bios.asm's parameter block");

struct qemu_backend {
        struct backend base;
        uc_engine *uc;
        char version[96];
        const char *qemu;           /* program */
        struct hvt_vcpu_state init; /* from set_state: the guest's first state */
        unsigned mode;              /* HVT_MODE_* of init: the run stays in it */
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
        uint64_t dr7;    /* the guest's DR7 in the latest logged state */
        struct qrec ran; /* the last instruction that ran */
        bool have_ran;
        struct post post; /* after the last instruction that ran */
        struct {
                bool pending;
                struct landing to;
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

/*
 * The lockstep lost QEMU, or QEMU's log is not what it must be: say where
 * and how in the backend's error (the first reason stays), and fail the
 * run with -EPROTO.  A guess would be worse than no trace past here.
 */
static int __attribute__((format(printf, 2, 3))) lost(struct qemu_backend *q, const char *fmt, ...)
{
        va_list ap;
        int n;

        if (q->base.error[0])
                return -EPROTO;
        n = snprintf(q->base.error, sizeof(q->base.error), "qemu-tcg: ");
        va_start(ap, fmt);
        vsnprintf(q->base.error + n, sizeof(q->base.error) - (size_t)n, fmt, ap);
        va_end(ap);
        return -EPROTO;
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
        static char installed[PATH_MAX + sizeof(HVT_QEMU_BIOS_INSTALLED) + 1];

        return backend_data_path("HVTRACE_QEMU_BIOS", HVT_QEMU_BIOS_INSTALLED, HVT_QEMU_BIOS,
                                 installed, sizeof(installed));
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
        const struct hvt_vcpu_state *st = &q->init;
        struct bios_param param = {
                .ip = (uint16_t)st->rip,
                .cs = st->seg[HVT_CS].selector,
                .sp = (uint16_t)st->gpr[4],
        };

        if (q->mode != HVT_MODE_REAL) {
                /* set_state checked that each of these fits its field. */
                param.mode = (uint8_t)q->mode;
                param.entry = (uint32_t)st->rip;
                param.entry_cs = st->seg[HVT_CS].selector;
                param.ds = st->seg[HVT_DS].selector;
                param.esp = (uint32_t)st->gpr[4];
                param.cr0 = (uint32_t)st->cr0;
                param.cr3 = (uint32_t)st->cr3;
                param.cr4 = (uint32_t)st->cr4;
                param.efer = (uint32_t)st->efer;
                param.gdt_limit = st->gdt.limit;
                param.gdt_base = (uint32_t)st->gdt.base;
                param.idt_limit = st->idt.limit;
                param.idt_base = (uint32_t)st->idt.base;
        }

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
        memcpy(img + BIOS_PARAM, &param, sizeof(param));
        return 0;
}

/* The span of b->mem in [from, to) that is not zero: [*lo, *hi). */
static void image_span(const struct qemu_backend *q, uint64_t from, uint64_t to, uint64_t *lo,
                       uint64_t *hi)
{
        uint64_t end = q->base.mem_size < to ? q->base.mem_size : to;
        uint64_t a = from, z = end;

        while (a < end && !q->base.mem[a])
                a++;
        while (z > a && !q->base.mem[z - 1])
                z--;
        *lo = a;
        *hi = z;
}

/* Whether b->mem holds anything in QEMU's window [LOW_RAM_END, HIGH_RAM): no RAM there. */
static bool uses_rom_window(const struct qemu_backend *q)
{
        for (uint64_t a = LOW_RAM_END; a < q->base.mem_size && a < HIGH_RAM; a++)
                if (q->base.mem[a])
                        return true;
        return false;
}

static int start_qemu(struct qemu_backend *q)
{
        uint8_t *bios = malloc(BIOS_SIZE);
        char bios_arg[48], loader[96], loader_hi[96], log_arg[48], mem_arg[24];
        uint64_t lo, hi, hlo, hhi;
        int bios_fd = -1, img_fd = -1, hi_fd = -1, fds[2] = { -1, -1 }, err;
        pid_t pid;

        if (!bios)
                return -ENOMEM;
        err = bios_image(q, bios);
        image_span(q, 0, LOW_RAM_END, &lo, &hi);
        /* Above 1 MiB: hvrec's tables in protected and long mode, and any guest data. */
        image_span(q, HIGH_RAM, q->base.mem_size, &hlo, &hhi);
        if (!err && hi <= lo)
                err = -ENOEXEC; /* nothing to run */
        if (!err && uses_rom_window(q))
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
        if (hhi > hlo) {
                hi_fd = memfd_with("hvt-guest-high", q->base.mem + hlo, (size_t)(hhi - hlo));
                if (hi_fd < 0) {
                        err = hi_fd;
                        goto err_img;
                }
        }
        if (pipe(fds)) {
                err = -errno;
                goto err_img;
        }
        fcntl(fds[0], F_SETFD, FD_CLOEXEC);
        snprintf(bios_arg, sizeof(bios_arg), "/proc/self/fd/%d", bios_fd);
        snprintf(loader, sizeof(loader), "loader,file=/proc/self/fd/%d,addr=0x%llx,force-raw=on",
                 img_fd, (unsigned long long)lo);
        snprintf(loader_hi, sizeof(loader_hi),
                 "loader,file=/proc/self/fd/%d,addr=0x%llx,force-raw=on", hi_fd,
                 (unsigned long long)hlo);
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
                if (hi_fd >= 0)
                        fcntl(hi_fd, F_SETFD, 0);
                fcntl(fds[1], F_SETFD, 0);
                if (null >= 0) {
                        dup2(null, 0);
                        dup2(null, 1);
                }
                {
                        const char *argv[] = { q->qemu,
                                               "-nodefaults",
                                               "-display",
                                               "none",
                                               "-M",
                                               "pc",
                                               "-no-reboot",
                                               "-m",
                                               mem_arg,
                                               "-accel",
                                               "tcg",
                                               "-bios",
                                               bios_arg,
                                               "-device",
                                               "isa-debug-exit,iobase=0xf4,iosize=1",
                                               "-icount",
                                               ICOUNT,
                                               "-singlestep",
                                               "-d",
                                               "exec,nochain,int,cpu,cpu_reset",
                                               "-D",
                                               log_arg,
                                               "-device",
                                               loader,
                                               "-device",
                                               loader_hi,
                                               NULL };

                        /* The high part's loader only when there is one: ROMs must not overlap. */
                        if (hi_fd < 0)
                                argv[sizeof(argv) / sizeof(argv[0]) - 3] = NULL;
                        execvp(q->qemu, (char *const *)argv);
                }
                _exit(127);
        }
        q->pid = pid;
        q->log_fd = fds[0];
        close(fds[1]);
        if (hi_fd >= 0)
                close(hi_fd);
        close(img_fd);
        close(bios_fd);
        fcntl(q->log_fd, F_SETFL, O_NONBLOCK);
        q->started = true;
        return 0;

err_pipe:
        close(fds[0]);
        close(fds[1]);
err_img:
        if (hi_fd >= 0)
                close(hi_fd);
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
                        *err = lost(q, "a line of QEMU's log is longer than %d bytes",
                                    (int)LOG_BUF); /* no line is that long */
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

/*
 * One line of general registers in 64-bit code's dump ("RAX=... RBX=...",
 * "R8 =... R9 =..."): four registers, their names and gpr indexes in key[].
 */
static bool parse_gpr64(const char *l, struct hvt_vcpu_state *st)
{
        static const struct {
                const char *key[4];
                int idx[4];
        } rows[] = {
                { { "RAX=", "RBX=", "RCX=", "RDX=" }, { 0, 3, 1, 2 } },
                { { "RSI=", "RDI=", "RBP=", "RSP=" }, { 6, 7, 5, 4 } },
                { { "R8 =", "R9 =", "R10=", "R11=" }, { 8, 9, 10, 11 } },
                { { "R12=", "R13=", "R14=", "R15=" }, { 12, 13, 14, 15 } },
        };

        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                if (strncmp(l, rows[i].key[0], 4))
                        continue;
                for (int k = 0; k < 4; k++)
                        st->gpr[rows[i].idx[k]] = hex(l, rows[i].key[k]);
                return true;
        }
        return false;
}

/*
 * The register dump after a "Trace" line, up to its EFER line: QEMU's
 * 32-bit layout (EAX=, EIP=), or the 64-bit one in 64-bit code (RAX= to
 * R15=, RIP=).  0 or -errno.
 */
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
                if (l[0] == 'R' && parse_gpr64(l, st))
                        continue;
                if (!strncmp(l, "RIP=", 4)) {
                        st->rip = hex(l, "RIP=");
                        st->rflags = hex(l, "RFL=");
                } else if (!strncmp(l, "EAX=", 4)) {
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
                } else if (!strncmp(l, "DR6=", 4)) {
                        r->dr7 = hex(l, "DR7=");
                } else if (!strncmp(l, "EFER=", 5)) {
                        st->efer = hex(l, "EFER=");
                        return 0;
                } else {
                        for (int i = 0; i < HVT_SREG_COUNT; i++)
                                if (!strncmp(l, segs[i], 4))
                                        parse_seg(l, &st->seg[i]);
                }
        }
        return err ? err : lost(q, "QEMU's log ended inside a register dump");
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

/*
 * The Unicorn engine for mode (HVT_MODE_*): 16-bit in real mode (its start
 * address is then linear, CS * 16 + IP), else 32- or 64-bit (the start is
 * rIP), over b->mem where QEMU has RAM: below LOW_RAM_END, from HIGH_RAM up.
 * Replaces the engine there was.  0, or -ENOMEM with why (when not NULL).
 */
static int open_unicorn(struct qemu_backend *q, unsigned mode, char *why, size_t len)
{
        uint64_t size = q->base.mem_size;
        uc_mode m = mode == HVT_MODE_REAL   ? UC_MODE_16
                    : mode == HVT_MODE_LONG ? UC_MODE_64
                                            : UC_MODE_32;
        uc_engine *uc;
        uc_hook h;
        uc_err e;

        e = uc_open(UC_ARCH_X86, m, &uc);
        if (e)
                goto err;
        e = uc_mem_map_ptr(uc, 0, (size < LOW_RAM_END ? size : LOW_RAM_END) & ~0xfffull,
                           UC_PROT_ALL, q->base.mem);
        if (!e && size > HIGH_RAM)
                e = uc_mem_map_ptr(uc, HIGH_RAM, (size - HIGH_RAM) & ~0xfffull, UC_PROT_ALL,
                                   q->base.mem + HIGH_RAM);
        if (!e)
                e = uc_hook_add(uc, &h, UC_HOOK_INSN, (void *)uc_on_in, q, 1, 0, UC_X86_INS_IN);
        if (!e)
                e = uc_hook_add(uc, &h, UC_HOOK_INSN, (void *)uc_on_io, q, 1, 0, UC_X86_INS_OUT);
        if (!e)
                e = uc_hook_add(uc, &h, UC_HOOK_INTR, (void *)uc_on_intr, q, 1, 0);
        if (e) {
                uc_close(uc);
                goto err;
        }
        if (q->uc)
                uc_close(q->uc);
        q->uc = uc;
        return 0;

err:
        if (why)
                snprintf(why, len, "Unicorn: %s", uc_strerror(e));
        return -ENOMEM;
}

/*
 * Protected and long mode: Unicorn gets the guest's tables and control
 * registers once, as the BIOS loads them into QEMU; from then on it runs
 * the guest's own LGDT, LIDT and MOV CRn.  0 or -EPROTO.
 */
static int uc_enter(struct qemu_backend *q, const struct hvt_vcpu_state *st)
{
        uc_x86_mmr gdt = { .base = st->gdt.base, .limit = st->gdt.limit };
        uc_x86_mmr idt = { .base = st->idt.base, .limit = st->idt.limit };
        uc_x86_msr efer = { .rid = X86_MSR_EFER, .value = st->efer };
        uint64_t cr[3] = { st->cr4, st->cr3, st->cr0 };
        static const int cr_id[3] = { UC_X86_REG_CR4, UC_X86_REG_CR3, UC_X86_REG_CR0 };
        uc_err e = uc_reg_write(q->uc, UC_X86_REG_GDTR, &gdt);

        if (!e)
                e = uc_reg_write(q->uc, UC_X86_REG_IDTR, &idt);
        if (!e)
                e = uc_reg_write(q->uc, UC_X86_REG_MSR, &efer);
        for (int i = 0; i < 3 && !e; i++)
                e = uc_reg_write(q->uc, cr_id[i], &cr[i]);
        return e ? -EPROTO : 0;
}

/* The bits of rIP and rSP the mode uses: 16 in real mode, else the registers' width. */
static uint64_t reg_mask(const struct qemu_backend *q)
{
        return q->mode == HVT_MODE_REAL   ? 0xffffull
               : q->mode == HVT_MODE_LONG ? ~0ull
                                          : 0xffffffffull;
}

static struct x86_mem ram_of(const struct qemu_backend *q)
{
        struct x86_mem m = { .ram = q->base.mem, .size = q->base.mem_size };

        return m;
}

/* Write byte b at linear la of st's address space (its paging) into b->mem. */
static void wr_linear(struct qemu_backend *q, const struct hvt_vcpu_state *st, uint64_t la,
                      uint8_t b)
{
        struct x86_mem m = ram_of(q);
        uint64_t gpa;

        if (!x86_translate(&m, st, la, &gpa) && gpa < q->base.mem_size)
                q->base.mem[gpa] = b;
}

/*
 * Load segment register sreg of st with sel as the CPU does: sel * 16 in
 * real mode, else its descriptor from the GDT in b->mem.  An unchanged
 * selector keeps the cache QEMU logged.
 */
static void load_seg(const struct qemu_backend *q, struct hvt_vcpu_state *st, unsigned sreg,
                     uint16_t sel)
{
        struct hvt_disk_seg *s = &st->seg[sreg];
        struct x86_mem m = ram_of(q);
        uint8_t d[8];
        uint32_t hi;

        if (s->selector == sel)
                return;
        s->selector = sel;
        if (q->mode == HVT_MODE_REAL) {
                s->base = (uint64_t)sel << 4;
                return;
        }
        if (x86_read_linear(&m, st, st->gdt.base + (sel & X86_SEL_INDEX), d, 8) != 8) {
                s->attr = HVT_SEG_UNUSABLE;
                return;
        }
        hi = x86_desc_hi(d);
        s->base = x86_desc_base(d);
        s->limit = x86_desc_limit(d);
        s->attr = (uint16_t)(((hi >> 8) & 0xff) | ((hi >> 12) & 0xf00));
}

/* The state after the instruction of `before` ran, as Unicorn predicted it (p). */
static void state_after(const struct qemu_backend *q, const struct hvt_vcpu_state *before,
                        const struct post *p, struct hvt_vcpu_state *st)
{
        *st = *before;
        st->rip = p->ip;
        st->gpr[4] = p->sp;
        st->rflags = p->rflags;
        load_seg(q, st, HVT_CS, p->cs);
        load_seg(q, st, HVT_SS, p->ss);
}

/*
 * Deliver vector v to the interrupted state st as the CPU does: the frame
 * into b->mem, where the handler starts into *to.  Only what same-privilege
 * delivery needs: the IVT, or an interrupt or trap gate to ring-0 code on
 * the same stack.  -ENOTSUP for anything else (a task gate, an IST stack, a
 * privilege change), never a guess; -EPROTO for an entry the CPU would
 * fault on (QEMU did not: the lockstep copy is wrong).
 */
static int deliver(struct qemu_backend *q, const struct hvt_vcpu_state *st, unsigned v,
                   struct landing *to)
{
        struct x86_mem m = ram_of(q);
        struct x86_stack stk = x86_stack_of(st);
        uint64_t vals[X86_FRAME_SLOTS] = { 0 }, la, sp = st->gpr[4], clear, hbase;
        unsigned size = x86_gate_size(q->mode), nslots, hbits;
        uint8_t e[16], d[8];
        struct x86_gate g;

        if (!x86_gate_addr(q->mode, st->idt.base, st->idt.limit, v, &la) ||
            x86_read_linear(&m, st, la, e, size) != size || !x86_gate_decode(q->mode, e, &g))
                return lost(q, "vector 0x%02x at %04x:%llx: no readable, valid gate for it", v,
                            st->seg[HVT_CS].selector, (unsigned long long)st->rip);
        if (q->mode == HVT_MODE_REAL) {
                clear = X86_RFLAGS_IF | X86_RFLAGS_TF | X86_RFLAGS_AC | X86_RFLAGS_RF;
        } else {
                if (g.ist || (st->seg[HVT_CS].selector & X86_SEL_RPL) ||
                    (g.selector & (X86_SEL_TI | X86_SEL_RPL)))
                        return -ENOTSUP;
                if (x86_read_linear(&m, st, st->gdt.base + (g.selector & X86_SEL_INDEX), d, 8) !=
                            8 ||
                    !x86_code_descriptor(d, q->mode == HVT_MODE_LONG, &hbase, &hbits) ||
                    ((x86_desc_hi(d) >> X86_DESC_DPL_SHIFT) & 3))
                        return -ENOTSUP; /* not ring-0 code: a privilege change, or a fault */
                clear = X86_RFLAGS_TF | X86_RFLAGS_NT | X86_RFLAGS_RF | X86_RFLAGS_VM |
                        (g.trap ? 0 : X86_RFLAGS_IF);
        }
        if (g.bits == 64)
                sp &= ~15ull; /* a 64-bit frame starts 16-byte aligned */
        vals[X86_FRAME_IP] = st->rip;
        vals[X86_FRAME_CS] = st->seg[HVT_CS].selector;
        vals[X86_FRAME_FLAGS] = st->rflags;
        vals[X86_FRAME_SP] = st->gpr[4];
        vals[X86_FRAME_SS] = st->seg[HVT_SS].selector;
        nslots = x86_frame_slots(g.bits, false, false);
        sp = x86_stack_move(&stk, sp, -(int64_t)x86_frame_size(g.bits, false, nslots));
        for (unsigned i = 0; i < nslots; i++) {
                struct x86_slot sl = x86_frame_slot(g.bits, false, (enum x86_frame_slot)i);

                for (unsigned k = 0; k < sl.len; k++)
                        wr_linear(q, st, x86_stack_la(&stk, sp, sl.off + k),
                                  (uint8_t)(vals[i] >> (8 * k)));
        }
        to->cs = g.selector;
        to->ip = g.offset;
        to->sp = sp;
        to->rflags = st->rflags & ~clear;
        return 0;
}

/* Unicorn's register ids for the general registers, rIP, rSP, RFLAGS and rCX of mode. */
static const int *uc_gprs(unsigned mode)
{
        static const int r32[16] = {
                UC_X86_REG_EAX, UC_X86_REG_ECX, UC_X86_REG_EDX, UC_X86_REG_EBX,
                UC_X86_REG_ESP, UC_X86_REG_EBP, UC_X86_REG_ESI, UC_X86_REG_EDI
        };
        static const int r64[16] = {
                UC_X86_REG_RAX, UC_X86_REG_RCX, UC_X86_REG_RDX, UC_X86_REG_RBX,
                UC_X86_REG_RSP, UC_X86_REG_RBP, UC_X86_REG_RSI, UC_X86_REG_RDI,
                UC_X86_REG_R8,  UC_X86_REG_R9,  UC_X86_REG_R10, UC_X86_REG_R11,
                UC_X86_REG_R12, UC_X86_REG_R13, UC_X86_REG_R14, UC_X86_REG_R15,
        };

        return mode == HVT_MODE_LONG ? r64 : r32;
}

static unsigned ngprs(unsigned mode)
{
        return mode == HVT_MODE_LONG ? 16 : 8;
}

/* Whether Unicorn's registers are still st's: rIP, FLAGS and every general register. */
static bool unmoved(struct qemu_backend *q, const struct hvt_vcpu_state *st)
{
        const int *gpr = uc_gprs(q->mode);
        uint64_t v = 0, mask = q->mode == HVT_MODE_LONG ? ~0ull : 0xffffffffull;

        uc_reg_read(q->uc, q->mode == HVT_MODE_LONG ? UC_X86_REG_RIP : UC_X86_REG_EIP, &v);
        if ((v & reg_mask(q)) != (st->rip & reg_mask(q)))
                return false;
        v = 0;
        uc_reg_read(q->uc, UC_X86_REG_EFLAGS, &v);
        if ((uint32_t)v != (uint32_t)st->rflags)
                return false;
        for (unsigned i = 0; i < ngprs(q->mode); i++) {
                v = 0;
                uc_reg_read(q->uc, gpr[i], &v);
                if ((v & mask) != (st->gpr[i] & mask))
                        return false;
        }
        return true;
}

/* Exceptions that push an error code: the backend does not follow them outside real mode. */
static bool has_error_code(unsigned v)
{
        return v == X86_EXC_DF || (v >= X86_EXC_TS && v <= X86_EXC_PF) || v == X86_EXC_AC ||
               v == X86_EXC_CP;
}

/* Run the instruction of r (which QEMU ran) on Unicorn: its writes land in b->mem. */
static int step(struct qemu_backend *q, const struct qrec *r)
{
        static const int seg[HVT_SREG_COUNT] = { UC_X86_REG_ES, UC_X86_REG_CS, UC_X86_REG_SS,
                                                 UC_X86_REG_DS, UC_X86_REG_FS, UC_X86_REG_GS };
        const struct hvt_vcpu_state *st = &r->st;
        const int *gpr = uc_gprs(q->mode);
        bool real = q->mode == HVT_MODE_REAL;
        /* Unicorn's 16-bit mode takes the start as a linear address (CS * 16 + IP). */
        uint64_t v, pc = real ? st->seg[HVT_CS].base + (st->rip & 0xffff) : st->rip;
        uint64_t ip = 0, cs = 0, ss = 0, sp = 0, fl = 0, cx = 0;
        uc_err e = UC_ERR_OK;

        for (unsigned i = 0; i < ngprs(q->mode); i++) {
                v = st->gpr[i];
                uc_reg_write(q->uc, gpr[i], &v);
        }
        for (int i = 0; i < HVT_SREG_COUNT && !e; i++) {
                /* Outside real mode a write loads the descriptor: only when it changed. */
                v = 0;
                if (!real && !uc_reg_read(q->uc, seg[i], &v) && (uint16_t)v == st->seg[i].selector)
                        continue;
                v = st->seg[i].selector;
                e = uc_reg_write(q->uc, seg[i], &v);
        }
        if (e)
                return lost(q, "lockstep: Unicorn cannot load the logged segments at %04x:%llx: %s",
                            st->seg[HVT_CS].selector, (unsigned long long)st->rip, uc_strerror(e));
        v = st->rflags;
        uc_reg_write(q->uc, UC_X86_REG_EFLAGS, &v);
        q->uc_intno = -1;
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

                q->restart_pc = real ? pc : st->seg[HVT_CS].base + st->rip;
                q->restart_hits = 0;
                e = uc_hook_add(q->uc, &h, UC_HOOK_CODE, (void *)uc_on_restart, q, 1, 0);
                if (!e) {
                        e = uc_emu_start(q->uc, pc, 0, 0, 0);
                        uc_hook_del(q->uc, h);
                }
        }
        if (e)
                return lost(q, "lockstep: Unicorn cannot run the instruction at %04x:%llx: %s",
                            st->seg[HVT_CS].selector, (unsigned long long)st->rip, uc_strerror(e));
        uc_reg_read(q->uc, q->mode == HVT_MODE_LONG ? UC_X86_REG_RIP : UC_X86_REG_EIP, &ip);
        uc_reg_read(q->uc, UC_X86_REG_CS, &cs);
        uc_reg_read(q->uc, UC_X86_REG_SS, &ss);
        uc_reg_read(q->uc, gpr[4], &sp);
        uc_reg_read(q->uc, q->mode == HVT_MODE_LONG ? UC_X86_REG_RFLAGS : UC_X86_REG_EFLAGS, &fl);
        uc_reg_read(q->uc, gpr[1], &cx);
        q->post = (struct post){ .valid = true,
                                 .cs = (uint16_t)cs,
                                 .ip = ip & reg_mask(q),
                                 .ss = (uint16_t)ss,
                                 .sp = sp,
                                 .rflags = fl,
                                 .rcx = cx };
        if (q->uc_intno == X86_EXC_DB) {
                /*
                 * A single-step trap (or INT1): delivered when QEMU's log
                 * says so (check_exception), not here.  QEMU holds the trap
                 * after an STI that opens a shadow until the next instruction
                 * has run, as for MOV SS; Unicorn delivers it at once, and
                 * following Unicorn lost QEMU at db_movss's dbstep_sti.
                 */
                return 0;
        }
        if (q->uc_intno >= 0) {
                /* INT n / INT3 / INTO: Unicorn leaves delivery to us, from the state after it. */
                struct hvt_vcpu_state from;
                struct landing to;
                int err;

                if (!real && has_error_code((unsigned)q->uc_intno))
                        return -ENOTSUP;
                state_after(q, st, &q->post, &from);
                err = deliver(q, &from, (unsigned)q->uc_intno, &to);
                if (err)
                        return err;
                q->post.cs = to.cs;
                q->post.ip = to.ip;
                q->post.sp = to.sp;
                q->post.rflags = to.rflags;
        }
        return 0;
}

/* ---- interpreting the log ------------------------------------------------- */

/* An instruction in b->mem, as far as the log's interpretation needs it. */
struct insn {
        uint8_t op, b1; /* the opcode and the byte after it */
        unsigned len;   /* the prefixes' bytes: the opcode is at rIP + len */
        unsigned osize; /* operand size in bytes: 2, 4 or 8 */
        unsigned asize; /* address size in bytes */
        bool rep;       /* F2 or F3 */
        unsigned seg;   /* a memory operand's segment: HVT_DS unless overridden */
};

/*
 * The instruction at CS:rIP of st, read through st's paging: prefixes (and
 * REX in 64-bit code) scanned once, sizes from the code segment's.
 */
static void decode(const struct qemu_backend *q, const struct hvt_vcpu_state *st, struct insn *in)
{
        static const uint8_t seg_prefix[][2] = {
                { 0x26, HVT_ES }, { 0x2e, HVT_CS }, { 0x36, HVT_SS },
                { 0x3e, HVT_DS }, { 0x64, HVT_FS }, { 0x65, HVT_GS },
        };
        struct x86_mem m = ram_of(q);
        unsigned bits = hvt_state_code_bits(st);
        uint8_t buf[16];
        size_t n = x86_read_linear(&m, st, x86_linear(st, HVT_CS, st->rip), buf, sizeof(buf));
        bool o = false, a = false, rexw = false;

        memset(in, 0, sizeof(*in));
        in->seg = HVT_DS;
        for (; in->len + 1 < n; in->len++) {
                uint8_t c = buf[in->len];
                bool prefix = true;

                if (c == 0x66)
                        o = true;
                else if (c == 0x67)
                        a = true;
                else if (c == 0xf2 || c == 0xf3)
                        in->rep = true;
                else if (c != 0xf0) {
                        prefix = false;
                        for (size_t i = 0; i < sizeof(seg_prefix) / sizeof(seg_prefix[0]); i++)
                                if (c == seg_prefix[i][0]) {
                                        in->seg = seg_prefix[i][1];
                                        prefix = true;
                                }
                }
                if (prefix) {
                        rexw = false; /* a REX counts only right before the opcode */
                        continue;
                }
                if (bits == 64 && (c & 0xf0) == 0x40) {
                        rexw = c & 8;
                        continue;
                }
                in->op = c;
                in->b1 = buf[in->len + 1];
                break;
        }
        in->osize = rexw ? 8 : ((bits == 16) != o) ? 2 : 4;
        in->asize = bits == 16 ? (a ? 4 : 2) : bits == 32 ? (a ? 2 : 4) : (a ? 4 : 8);
}

/* rIP of st moved past n bytes, wrapping at its code size. */
static uint64_t ip_after(const struct hvt_vcpu_state *st, unsigned n)
{
        unsigned bits = hvt_state_code_bits(st);

        return bits == 64 ? st->rip + n : (st->rip + n) & (bits == 32 ? 0xffffffffull : 0xffff);
}

/* The mask of an address-size register (rCX, rSI) for asize bytes. */
static uint64_t addr_mask(unsigned asize)
{
        return asize == 8 ? ~0ull : asize == 4 ? 0xffffffffull : 0xffffull;
}

/*
 * Whether st is in the run's mode, the one Unicorn follows: a switch of
 * mode, or unreal mode (whose segments Unicorn's writes cannot follow),
 * ends the run.
 */
static bool in_mode(const struct qemu_backend *q, const struct hvt_vcpu_state *st)
{
        if (x86_mode(st->cr0, st->efer) != q->mode)
                return false;
        if (q->mode == HVT_MODE_REAL)
                for (int i = 0; i < HVT_SREG_COUNT; i++)
                        if (st->seg[i].base != (uint64_t)st->seg[i].selector << 4)
                                return false;
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
        uint64_t mask = reg_mask(q), ip = r->st.rip & mask, sp = r->st.gpr[4] & mask;
        uint16_t cs = r->st.seg[HVT_CS].selector;

        if (!q->post.valid)
                return 0;
        q->post.valid = false;
        if (q->post.rep_again && cs == q->post.cs && ip == (q->post.rep_ip & mask) &&
            sp == (q->post.sp & mask))
                return 0;
        if (cs != q->post.cs || ip != (q->post.ip & mask) || sp != (q->post.sp & mask))
                return lost(q,
                            "lockstep lost QEMU after the instruction at %04x:%llx: Unicorn "
                            "ran it to %04x:%llx sp=%llx, QEMU's log goes on at %04x:%llx "
                            "sp=%llx",
                            q->ran.st.seg[HVT_CS].selector, (unsigned long long)q->ran.st.rip,
                            q->post.cs, (unsigned long long)(q->post.ip & mask),
                            (unsigned long long)(q->post.sp & mask), cs, (unsigned long long)ip,
                            (unsigned long long)sp);
        return 0;
}

/* The handler's first state against the delivery: the gate's CS:rIP, rSP and RFLAGS. */
static int check_delivery(struct qemu_backend *q, const struct qrec *r)
{
        const struct landing *to = &q->deliver.to;
        uint64_t mask = reg_mask(q), fmask = q->mode == HVT_MODE_REAL ? 0xffff : 0xffffffff;

        q->deliver.pending = false;
        if (r->st.seg[HVT_CS].selector != to->cs || (r->st.rip & mask) != (to->ip & mask) ||
            (r->st.gpr[4] & mask) != (to->sp & mask) ||
            (r->st.rflags & fmask) != (to->rflags & fmask))
                return lost(q,
                            "lockstep lost QEMU at a delivery: the gate leads to %04x:%llx "
                            "sp=%llx flags=%llx, QEMU's handler starts at %04x:%llx sp=%llx "
                            "flags=%llx",
                            to->cs, (unsigned long long)(to->ip & mask),
                            (unsigned long long)(to->sp & mask),
                            (unsigned long long)(to->rflags & fmask), r->st.seg[HVT_CS].selector,
                            (unsigned long long)(r->st.rip & mask),
                            (unsigned long long)(r->st.gpr[4] & mask),
                            (unsigned long long)(r->st.rflags & fmask));
        return 0;
}

/*
 * One OUTS that ran: QEMU's TCG runs a REP string instruction one
 * iteration per TB, each logged, so each logged OUTS is one element (none
 * when REP found rCX = 0).  The element comes from b->mem, which holds
 * what QEMU's RAM held before the instruction (lockstep).  1 when it is an
 * exit, 0 when not, -errno.
 */
static int outs_exit(struct qemu_backend *q, const struct hvt_vcpu_state *st, const struct insn *in,
                     struct backend_exit *x)
{
        struct x86_mem m = ram_of(q);
        uint64_t amask = addr_mask(in->asize);
        uint8_t size = in->op == 0x6e ? 1 : (in->osize == 2 ? 2 : 4);

        if (in->rep && !(st->gpr[1] & amask))
                return 0;
        q->io_data = 0;
        if (x86_read_linear(&m, st, x86_linear(st, in->seg, st->gpr[6] & amask), &q->io_data,
                            size) != size)
                return -ENOTSUP; /* not RAM that the lockstep copy holds */
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
 * -icount, come back to the REP once more to find rCX = 0.  Both are the
 * same architectural state: accept either.
 */
static void finish_rep(struct qemu_backend *q, const struct hvt_vcpu_state *st,
                       const struct insn *in)
{
        uint8_t op = in->op;
        bool string = (op >= 0x6c && op <= 0x6f) || (op >= 0xa4 && op <= 0xa7) ||
                      (op >= 0xaa && op <= 0xaf); /* INS OUTS MOVS CMPS STOS LODS SCAS */

        if (string && in->rep && q->post.ip == (st->rip & reg_mask(q)) &&
            q->post.cs == st->seg[HVT_CS].selector && !(q->post.rcx & addr_mask(in->asize))) {
                q->post.rep_again = true;
                q->post.rep_ip = q->post.ip;
                q->post.ip = ip_after(st, in->len + 1);
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

        if (!in_mode(q, st))
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
                x->u.io.size = (in.op & 1) ? (in.osize == 2 ? 2 : 4) : 1;
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
        if (in.op == 0xf4 || (in.op == 0x0f && in.b1 == 0x23)) {
                /*
                 * Unicorn would stop at HLT; the CPU waits after it, state
                 * unchanged.  MOV DRn, r (register form, 3 bytes) is not run on
                 * Unicorn either: it crashes (SIGSEGV in its translated code) on
                 * a DR7 that arms an instruction breakpoint, and the lockstep
                 * needs no debug register (QEMU's log says when a #DB comes).
                 */
                q->post = (struct post){ .valid = true,
                                         .cs = st->seg[HVT_CS].selector,
                                         .ip = ip_after(st, in.len + (in.op == 0xf4 ? 1 : 3)),
                                         .ss = st->seg[HVT_SS].selector,
                                         .sp = st->gpr[4],
                                         .rflags = st->rflags };
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
static void log_delivery(struct qemu_backend *q, uint8_t vector, uint16_t cs, uint64_t ip,
                         const struct qrec *stopped)
{
        if (!q->dlog)
                return;
        fprintf(q->dlog, "0x%02x\t%04x:%04llx\t%s\t%s\t%s\t%u\n", vector, cs,
                (unsigned long long)ip, stopped ? "stopped" : "between",
                stopped ? (stopped->tb_flags & TB_INHIBIT_IRQ ? "1" : "0") : "-",
                op_name(q->last_op),
                q->have_ran ? (q->ran.tb_flags & TB_INHIBIT_IRQ ? 1u : 0u) : 0u);
}

/* "Servicing hardware INT=0xNN": push the frame into b->mem as the CPU did. */
static int serviced(struct qemu_backend *q, uint8_t vector, const struct qrec *stopped)
{
        struct hvt_vcpu_state from;
        int err;

        if (stopped) {
                err = check_post(q, stopped);
                if (err)
                        return err;
                from = stopped->st;
        } else if (q->post.valid && q->have_ran) {
                state_after(q, &q->ran.st, &q->post, &from);
        } else {
                return lost(q,
                            "vector 0x%02x delivered where QEMU's log shows no interrupted "
                            "state and the lockstep predicts none",
                            vector); /* in no log line and no prediction */
        }
        log_delivery(q, vector, from.seg[HVT_CS].selector, from.rip, stopped);
        q->post.valid = false;
        err = deliver(q, &from, vector, &q->deliver.to);
        if (err)
                return err;
        q->deliver.pending = true;
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

/*
 * The guest's first logged state against the one hvrec set: the BIOS made
 * it (protected and long mode: from hvrec's GDT and registers).  In real
 * mode QEMU keeps its reset CR0, and the BIOS's way back from protected
 * mode leaves the hidden limits and attributes its own: the registers,
 * flags, table registers and segment selectors and bases are compared.
 * The flags caught a BIOS that cleared registers with XOR, which left ZF
 * and PF set where every other backend starts with FLAGS = 0x2.
 */
static int check_entry(struct qemu_backend *q, const struct hvt_vcpu_state *st)
{
        const struct hvt_vcpu_state *want = &q->init;

        if (q->mode == HVT_MODE_REAL) {
                bool segs = true;

                for (int i = 0; i < HVT_SREG_COUNT; i++)
                        segs = segs && st->seg[i].selector == want->seg[i].selector &&
                               st->seg[i].base == want->seg[i].base;
                if (memcmp(st->gpr, want->gpr, sizeof(st->gpr)) || st->rflags != want->rflags ||
                    st->gdt.base != want->gdt.base || st->gdt.limit != want->gdt.limit ||
                    st->idt.base != want->idt.base || st->idt.limit != want->idt.limit || !segs)
                        return lost(q, "the guest's first state in QEMU's log is not the one "
                                       "hvrec set up (real mode: registers, flags, table "
                                       "registers or segments)");
                return 0;
        }
        if (memcmp(st->gpr, want->gpr, sizeof(st->gpr)) || st->rflags != want->rflags ||
            st->cr0 != want->cr0 || st->cr3 != want->cr3 || st->cr4 != want->cr4 ||
            st->efer != want->efer || st->gdt.base != want->gdt.base ||
            st->gdt.limit != want->gdt.limit || st->idt.base != want->idt.base ||
            st->idt.limit != want->idt.limit)
                return lost(q, "the guest's first state in QEMU's log is not the one hvrec "
                               "set up (registers, control or table registers)");
        for (int i = 0; i < HVT_SREG_COUNT; i++)
                if (st->seg[i].selector != want->seg[i].selector ||
                    st->seg[i].base != want->seg[i].base ||
                    st->seg[i].limit != want->seg[i].limit ||
                    (st->seg[i].attr & ~HVT_SEG_UNUSABLE) != want->seg[i].attr)
                        return lost(q,
                                    "the guest's first state in QEMU's log is not the one "
                                    "hvrec set up (segment register %d)",
                                    i);
        return 0;
}

/*
 * Whether r logs cur's instruction again from cur's very state: QEMU gave
 * it up and started it afresh (a data breakpoint's access: the block is
 * retranslated with the watchpoint hit, then the #DB follows), so cur did
 * not complete.  Only a jump to itself without a side effect leaves
 * every register as it was too, and skipping one such loop turn changes
 * nothing.
 */
static bool restarted(const struct qrec *cur, const struct qrec *r)
{
        return x86_same_boundary(&cur->st, &r->st, 0);
}

/*
 * A delivery of vector v logged now ("Servicing hardware INT", or a #DB
 * trap's check_exception).  An instruction logged and not stopped ran
 * first: it is retired, maybe as an exit, and v lands after it; otherwise
 * v lands on the stopped instruction, or after the last one that ran.
 * Returns 1 with x filled when the retired instruction is an exit, 0, or
 * -errno.
 */
static int interrupt_line(struct qemu_backend *q, uint8_t v, struct backend_exit *x)
{
        int ret = 0, err;

        if (q->have_cur) {
                ret = retire(q, &q->cur, x);
                q->have_cur = false;
                if (ret < 0)
                        return ret;
                err = serviced(q, v, NULL);
                return err ? err : ret;
        }
        err = serviced(q, v, q->have_stopped ? &q->stopped : NULL);
        q->have_stopped = false;
        return err;
}

/*
 * "check_exception old: 0xffffffff new 0x1": a #DB raised by QEMU itself,
 * which -d int logs only this way.  Only a fresh #DB: a contributory
 * exception on top of another is left to the lockstep, as before.  With an
 * instruction breakpoint armed the #DB may be a fault before the
 * instruction: such a run is refused (qemu_run), never misread as a trap.
 */
static bool single_step_trap(const char *l)
{
        unsigned long old, v;

        return sscanf(l, "check_exception old: %lx new %lx", &old, &v) == 2 &&
               old == 0xffffffffUL && v == X86_EXC_DB;
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
                        q->dr7 = r.dr7;
                        if (!q->guest_seen) {
                                /* The BIOS runs first; the guest starts at its entry, in its mode.
                                 */
                                if (x86_mode(r.st.cr0, r.st.efer) != q->mode ||
                                    r.st.seg[HVT_CS].selector != q->init.seg[HVT_CS].selector ||
                                    (r.st.rip & reg_mask(q)) != (q->init.rip & reg_mask(q)))
                                        continue;
                                err = check_entry(q, &r.st);
                                if (err)
                                        goto fail;
                                q->guest_seen = true;
                        }
                        if (q->deliver.pending) {
                                err = check_delivery(q, &r);
                                if (err)
                                        goto fail;
                        }
                        q->have_stopped = false;
                        if (q->have_cur && restarted(&q->cur, &r)) {
                                q->cur = r;
                                continue;
                        }
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
                        if (!q->guest_seen)
                                continue;
                        err = interrupt_line(q, (uint8_t)strtoul(l + 23, NULL, 16), x);
                        if (err < 0)
                                goto fail;
                        if (err)
                                return 0;
                } else if (single_step_trap(l)) {
                        if (!q->guest_seen)
                                continue;
                        if (x86_dr7_exec_breakpoints(q->dr7)) {
                                /* A fault before the instruction, not a trap after one. */
                                err = -ENOTSUP;
                                snprintf(q->base.error, sizeof(q->base.error),
                                         "qemu-tcg: a #DB with an instruction breakpoint armed "
                                         "in the guest's DR7 (0x%llx): a fault before the "
                                         "instruction, which the backend does not follow",
                                         (unsigned long long)q->dr7);
                                goto fail;
                        }
                        err = interrupt_line(q, X86_EXC_DB, x);
                        if (err < 0)
                                goto fail;
                        if (err)
                                return 0;
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
        /* What hvrec reads before it sets the start: QEMU's CPU at reset. */
        x86_reset_state(&q->init);
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
                /* The lockstep copy is scanned whole at the start: keep it small. */
                snprintf(why, len, "qemu-tcg: --mem must be 8 KiB .. 16 MiB");
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
        err = open_unicorn(q, HVT_MODE_REAL, why, len);
        if (err)
                goto err_free;
        q->mode = HVT_MODE_REAL;
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

/* The real-mode start the BIOS can make: segments zero but CS, registers zero but SP. */
static int check_real_start(const struct hvt_vcpu_state *st)
{
        if (st->rip > 0xffff || st->gpr[4] > 0xffff ||
            st->seg[HVT_CS].base != (uint64_t)st->seg[HVT_CS].selector << 4)
                return -ENOTSUP;
        for (int i = 0; i < HVT_SREG_COUNT; i++)
                if (i != HVT_CS && st->seg[i].selector)
                        return -ENOTSUP;
        return 0;
}

/*
 * The protected or long-mode start the BIOS can make (what mode_setup
 * builds): flat segments from the GDT, one data selector in DS, ES, SS,
 * FS and GS, everything it loads below 4 GiB, and hvrec's tables in QEMU's
 * RAM (not in its VGA and ROM window: --mem 2M or more, or 640K or less).
 */
static int check_paged_start(const struct qemu_backend *q, const struct hvt_vcpu_state *st)
{
        if (st->rip > 0xffffffffull || st->gpr[4] > 0xffffffffull || st->cr3 > 0xffffffffull ||
            st->gdt.base > 0xffffffffull - st->gdt.limit ||
            st->idt.base > 0xffffffffull - st->idt.limit || st->seg[HVT_CS].base)
                return -ENOTSUP;
        for (int i = 0; i < HVT_SREG_COUNT; i++)
                if (i != HVT_CS &&
                    (st->seg[i].selector != st->seg[HVT_DS].selector || st->seg[i].base))
                        return -ENOTSUP;
        return uses_rom_window(q) ? -ERANGE : 0;
}

/*
 * Only the guest's first state, before QEMU starts, and only what the BIOS
 * can set up: real mode, segments zero but CS, general registers zero but
 * SP; or protected or long mode as hvrec sets it up (check_paged_start).
 */
static int qemu_set_state(struct backend *b, const struct hvt_vcpu_state *st)
{
        struct qemu_backend *q = to_q(b);
        unsigned mode = x86_mode(st->cr0, st->efer);
        int err;

        if (q->started)
                return -EBUSY;
        for (int i = 0; i < 16; i++)
                if (i != 4 && st->gpr[i])
                        return -ENOTSUP;
        err = mode == HVT_MODE_REAL ? check_real_start(st) : check_paged_start(q, st);
        if (err)
                return err;
        if (mode != q->mode) {
                err = open_unicorn(q, mode, NULL, 0);
                if (err)
                        return err;
                q->mode = mode;
        }
        if (mode != HVT_MODE_REAL) {
                err = uc_enter(q, st);
                if (err)
                        return err;
        }
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
        .summary = "QEMU's TCG from its -singlestep log: guests with their own PIC/PIT",
        .caps = HVT_CAP_REPORT_SHADOW | HVT_CAP_IRQCHIP | HVT_CAP_KICK,
        /* hvrec's tables at the top of 1 MiB would fall in QEMU's ROM window. */
        .paged_mem = 2u << 20,
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
