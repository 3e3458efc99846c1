// SPDX-License-Identifier: MIT
/*
 * The guest ABI (docs/guest-abi.md): console, exit, interrupt request and
 * the delivery probe, all on port I/O.  Other ports read as all-ones.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "abi.h"
#include "gate.h"
#include "irq.h"
#include "recorder.h"
#include "signals.h"

void abi_fill_in(struct recorder *rec)
{
        struct backend_exit *bx = &rec->bx;

        if (bx->reason == HVT_EXIT_IO && bx->u.io.dir == HVT_IO_IN)
                memset(bx->u.io.data, 0xff, (size_t)bx->u.io.size * bx->u.io.count);
        else if (bx->reason == HVT_EXIT_MMIO && !bx->u.mmio.is_write)
                memset(bx->u.mmio.data, 0xff, 8);
}

/*
 * write(2) all of it, through EINTR (a kick lands at any time), but not
 * past a stop signal or the deadline: a reader that stopped reading must
 * not hold the run.  0 or an errno.
 */
static int write_fully(int fd, const char *p, size_t len)
{
        while (len) {
                ssize_t n = write(fd, p, len);

                if (n < 0 && errno == EINTR && !signals_must_stop())
                        continue;
                if (n <= 0)
                        return n < 0 ? errno : EIO;
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

void abi_console_flush(struct recorder *rec)
{
        struct console_out *c = &rec->console;
        int err;

        if (!c->len || c->fd < 0) {
                c->len = 0;
                return;
        }
        err = write_fully(c->fd, c->buf, c->len);
        c->len = 0;
        if (err) {
                /* EPIPE (`hvrec run g | head`), ENOSPC...: the trace still gets every byte. */
                c->err = err;
                c->fd = -1;
        }
}

/*
 * A guest's byte as text that cannot drive the terminal (unless --raw-console):
 * \n, \t and printable ASCII as they are; anything else (controls, DEL, bytes
 * above 0x7f) and the backslash itself as \xNN, so every \x in the output
 * is an escape.
 */
static void console_put(struct console_out *c, uint8_t ch, bool *newline)
{
        static const char hex[] = "0123456789abcdef";

        if (c->len + 4 > sizeof(c->buf))
                return;
        if (c->raw || ch == '\n' || ch == '\t' || (ch >= 0x20 && ch < 0x7f && ch != '\\')) {
                c->buf[c->len++] = (char)ch;
        } else {
                c->buf[c->len++] = '\\';
                c->buf[c->len++] = 'x';
                c->buf[c->len++] = hex[ch >> 4];
                c->buf[c->len++] = hex[ch & 15];
        }
        *newline |= ch == '\n';
}

static void abi_console(struct recorder *rec)
{
        const struct hvt_disk_io *io = &rec->ex.u.io.io;
        struct console_out *c = &rec->console;
        bool newline = false;
        uint8_t text[4096];
        size_t n = 0;
        int err;

        /* The low byte of each access is the character. */
        for (uint32_t i = 0; i < io->count && n < sizeof(text); i++)
                text[n++] = rec->ex.u.io.data[(size_t)i * io->size];
        if (!n)
                return;
        for (size_t i = 0; i < n && c->fd >= 0; i++) {
                if (c->len + 4 > sizeof(c->buf))
                        abi_console_flush(rec);
                console_put(c, text[i], &newline);
        }
        if (newline)
                abi_console_flush(rec);
        err = hvt_write_console(rec->w, rec->ex.seq, text, n);
        if (err)
                rec_write_failed(rec, err);
}

/*
 * The status is the whole value written, whatever the access size: a
 * 16-bit OUT of 0x100 must not pass as 0.  A string OUT ends the run at its
 * first element, as the first write of a real one would.
 */
static void abi_exit(struct recorder *rec)
{
        const struct hvt_disk_io *io = &rec->ex.u.io.io;
        uint32_t value = 0;

        for (unsigned i = 0; i < io->size && i < 4; i++)
                value |= (uint32_t)rec->ex.u.io.data[i] << (8 * i);
        if (value <= STATUS_GUEST_MAX)
                rec_finish(rec, HVT_END_GUEST_EXIT, (int)value, value,
                           "guest exited with status %u", value);
        else
                rec_finish(rec, HVT_END_GUEST_EXIT, STATUS_GUEST_HIGH, value,
                           "guest exited with status %u (0x%x), above %d: hvrec exits with %d",
                           value, value, STATUS_GUEST_MAX, STATUS_GUEST_HIGH);
}

static void abi_irq_request(struct recorder *rec)
{
        const struct hvt_disk_io *io = &rec->ex.u.io.io;

        for (uint32_t i = 0; i < io->count; i++)
                irq_raise(rec, rec->ex.u.io.data[(size_t)i * io->size], HVT_SRC_GUEST);
}

/* ---- delivery probe ---------------------------------------------------- */

struct probe_match {
        uint64_t cand[2];
        int ncand;
        uint64_t table_vectors[4]; /* bitmap of vectors whose entry points at a candidate */
};

static bool vector_matches(void *ctx, uint8_t v)
{
        const struct probe_match *m = ctx;

        return m->table_vectors[v / 64] & (1ull << (v % 64));
}

/* ---- the interrupt frame ---------------------------------------------------- */

/*
 * The size of the frame the gate of `vector` pushes: the IVT's is 16-bit,
 * long mode's 64-bit, a protected-mode gate's its type's.  0 when the
 * vector is unknown or its gate says nothing (absent, a task gate).
 */
static unsigned gate_frame_bits(const struct recorder *rec, int vector)
{
        unsigned mode = hvt_state_mode(&rec->ex.st);
        struct x86_gate g;

        if (mode == HVT_MODE_REAL)
                return 16;
        if (mode == HVT_MODE_LONG)
                return 64;
        if (vector < 0 || !gate_read(rec, (unsigned)vector, &g))
                return 0;
        return g.bits;
}

/*
 * The linear base of code selector sel from its GDT descriptor (0 for
 * 64-bit code in long mode).  False for a selector in the LDT, a null one,
 * one past the GDT limit, an unreadable or a non-code descriptor.
 */
static bool code_base(const struct recorder *rec, uint16_t sel, uint64_t *base)
{
        const struct hvt_vcpu_state *st = &rec->ex.st;
        uint64_t off = sel & X86_SEL_INDEX;
        unsigned bits;
        uint8_t e[8];

        if ((sel & X86_SEL_TI) || !off || off + 7 > st->gdt.limit)
                return false;
        if (x86_read_linear(&rec->mem, st, st->gdt.base + off, e, 8) != 8)
                return false;
        return x86_code_descriptor(e, hvt_state_mode(st) == HVT_MODE_LONG, base, &bits);
}

/* The interrupted code's CS base into d, from the frame's CS. */
static void frame_cs_base(const struct recorder *rec, struct hvt_disk_deliver *d, bool vm86)
{
        unsigned mode = hvt_state_mode(&rec->ex.st);

        if (mode == HVT_MODE_REAL || vm86) {
                d->cs_base = (uint64_t)d->cs << 4;
        } else if (!code_base(rec, d->cs, &d->cs_base)) {
                d->cs_base = 0;
                d->dflags |= HVT_DELIVER_CS_BASE_UNKNOWN;
        }
}

/* The probe's stack, as frame slots are read from it. */
struct frame_reader {
        const struct recorder *rec;
        struct x86_stack stack;
        unsigned bits;
};

static bool read_byte(void *ctx, uint64_t la, uint8_t *b)
{
        const struct frame_reader *r = ctx;

        return x86_read_linear(&r->rec->mem, &r->rec->ex.st, la, b, 1) == 1;
}

/* Slot s of the frame at the stack pointer. */
static bool frame_slot(struct frame_reader *r, enum x86_frame_slot s, uint64_t *v)
{
        struct x86_slot at = x86_frame_slot(r->bits, false, s);

        return x86_stack_read(&r->stack, r->rec->ex.st.gpr[HVT_F_RSP], at.off, at.len, read_byte, r,
                              v);
}

/*
 * The frame at SS:rSP, of d->frame_bits: IP, CS, FLAGS, then SP and SS when
 * the interrupt changed privilege (and ES, DS, FS, GS from virtual-8086
 * mode) and always in a 64-bit frame.  The stack wraps at 64 KiB in real
 * mode and under a 16-bit SS (B = 0).
 */
static void read_frame(const struct recorder *rec, struct hvt_disk_deliver *d)
{
        const struct hvt_vcpu_state *st = &rec->ex.st;
        bool real = hvt_state_mode(st) == HVT_MODE_REAL, vm86, switched;
        /* A 64-bit frame is on the flat stack the handler runs on. */
        struct frame_reader r = {
                .rec = rec,
                .stack = d->frame_bits == 64 ? (struct x86_stack){ .base = 0, .mask = ~0ull }
                                             : x86_stack_of(st),
                .bits = d->frame_bits,
        };
        uint64_t sp = st->gpr[HVT_F_RSP], cs, ss;

        if (!frame_slot(&r, X86_FRAME_IP, &d->ip) || !frame_slot(&r, X86_FRAME_CS, &cs) ||
            !frame_slot(&r, X86_FRAME_FLAGS, &d->flags))
                goto err_unreadable;
        vm86 = !real && r.bits == 32 && (d->flags & X86_RFLAGS_VM);
        /* SS:rSP are in every 64-bit frame, and after a switch: from vm86, to another ring. */
        switched = r.bits == 64 || vm86 ||
                   (!real && (cs & X86_SEL_RPL) != (st->seg[HVT_CS].selector & X86_SEL_RPL));
        if (!switched) {
                /* The pushes moved only the bits the stack size uses. */
                d->sp = x86_stack_move(&r.stack, sp, x86_frame_size(r.bits, false, 3));
                d->ss = st->seg[HVT_SS].selector;
        } else if (frame_slot(&r, X86_FRAME_SP, &d->sp) && frame_slot(&r, X86_FRAME_SS, &ss)) {
                /* The CPU switched stacks: the old one is in the frame. */
                d->ss = (uint16_t)ss;
        } else if (r.bits == 64) {
                goto err_unreadable;
        } else {
                d->sp = 0;
                d->ss = 0;
        }
        d->cs = (uint16_t)cs;
        frame_cs_base(rec, d, vm86);
        return;

err_unreadable:
        d->ip = d->flags = d->sp = 0;
        d->cs = d->ss = 0;
        d->dflags |= HVT_DELIVER_CS_BASE_UNKNOWN;
}

static void abi_probe(struct recorder *rec)
{
        const struct hvt_vcpu_state *st = &rec->ex.st;
        unsigned bits = hvt_state_code_bits(st), mode = hvt_state_mode(st);
        struct hvt_disk_deliver d = { .seq = rec->ex.seq };
        struct disasm_io_site done, pending;
        struct probe_match m = { 0 };
        uint64_t pc = hvt_state_pc(st);
        uint8_t code[30];
        size_t before = pc >= 15 ? 15 : (size_t)pc, n;
        int nmatch = 0, vector = -1, err;
        bool nmi = false;

        /* Which address is the probe instruction: RIP, or just before it? */
        n = x86_read_linear(&rec->mem, st, pc - before, code, before + 15);
        disasm_io_candidates(rec->dis, bits, code, n, before, pc, 1, ABI_PORT_PROBE,
                             rec->ex.u.io.io.size, &done, &pending);
        if (done.found)
                m.cand[m.ncand++] = done.insn.addr;
        if (pending.found)
                m.cand[m.ncand++] = pc;
        if (!m.ncand)
                m.cand[m.ncand++] = pc; /* undecodable: trust RIP */

        for (unsigned v = 0; v < 256; v++) {
                uint64_t h;

                if (!gate_handler(rec, v, &h))
                        continue;
                for (int c = 0; c < m.ncand; c++) {
                        if (h == m.cand[c]) {
                                m.table_vectors[v / 64] |= 1ull << (v % 64);
                                d.handler = h;
                                nmatch++;
                                vector = (int)v;
                        }
                }
        }
        if (!nmatch)
                d.handler = m.cand[0];

        if (nmatch == 1) {
                d.vector_from = HVT_VEC_TABLE;
                irq_take_outstanding(rec, vector_matches, &m, &nmi);
        } else {
                /* Shared or unknown handler: the oldest injection it can explain. */
                vector = irq_take_outstanding(rec, nmatch ? vector_matches : NULL, &m, &nmi);
                d.vector_from = vector >= 0 ? HVT_VEC_INJECTED : HVT_VEC_UNKNOWN;
        }
        d.vector = vector >= 0 ? (uint8_t)vector : 0;
        if (nmi)
                d.dflags |= HVT_DELIVER_NMI;

        /* Only a gate that points at this handler says how the frame was pushed. */
        d.frame_bits = (uint8_t)gate_frame_bits(rec, nmatch ? vector : -1);
        if (!d.frame_bits)
                d.frame_bits = (uint8_t)(mode == HVT_MODE_LONG ? 64 : bits);
        read_frame(rec, &d);
        rec->deliveries++;
        err = hvt_write_deliver(rec->w, &d);
        if (err)
                rec_write_failed(rec, err);
}

void abi_handle_io(struct recorder *rec)
{
        const struct hvt_disk_io *io = &rec->ex.u.io.io;

        if (io->dir != HVT_IO_OUT)
                return;
        switch (io->port) {
        case ABI_PORT_CONSOLE: abi_console(rec); break;
        case ABI_PORT_EXIT: abi_exit(rec); break;
        case ABI_PORT_IRQ: abi_irq_request(rec); break;
        case ABI_PORT_PROBE: abi_probe(rec); break;
        default: break;
        }
}
