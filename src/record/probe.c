// SPDX-License-Identifier: MIT
/*
 * The delivery probe's exit as a DELIVER record (probe.h): which handler
 * the probe starts, which vector entered it, and the interrupt frame the
 * CPU pushed.  Everything is read through a gview, so hvrec and hvrec
 * exec's preload library share it.
 */
#include <string.h>

#include "gate.h"
#include "probe.h"

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
static unsigned gate_frame_bits(const struct gview *gv, int vector)
{
        unsigned mode = hvt_state_mode(gv->st);
        struct x86_gate g;

        if (mode == HVT_MODE_REAL)
                return 16;
        if (mode == HVT_MODE_LONG)
                return 64;
        if (vector < 0 || !gate_read(gv, (unsigned)vector, &g))
                return 0;
        return g.bits;
}

/*
 * The linear base of code selector sel from its GDT descriptor (0 for
 * 64-bit code in long mode).  False for a selector in the LDT, a null one,
 * one past the GDT limit, an unreadable or a non-code descriptor.
 */
static bool code_base(const struct gview *gv, uint16_t sel, uint64_t *base)
{
        const struct hvt_vcpu_state *st = gv->st;
        uint64_t off = sel & X86_SEL_INDEX;
        unsigned bits;
        uint8_t e[8];

        if ((sel & X86_SEL_TI) || !off || off + 7 > st->gdt.limit)
                return false;
        if (gview_read(gv, st->gdt.base + off, e, 8) != 8)
                return false;
        return x86_code_descriptor(e, hvt_state_mode(st) == HVT_MODE_LONG, base, &bits);
}

/* The interrupted code's CS base into d, from the frame's CS. */
static void frame_cs_base(const struct gview *gv, struct hvt_disk_deliver *d, bool vm86)
{
        unsigned mode = hvt_state_mode(gv->st);

        if (mode == HVT_MODE_REAL || vm86) {
                d->cs_base = (uint64_t)d->cs << 4;
        } else if (!code_base(gv, d->cs, &d->cs_base)) {
                d->cs_base = 0;
                d->dflags |= HVT_DELIVER_CS_BASE_UNKNOWN;
        }
}

/* The probe's stack, as frame slots are read from it. */
struct frame_reader {
        const struct gview *gv;
        struct x86_stack stack;
        unsigned bits;
};

static bool read_byte(void *ctx, uint64_t la, uint8_t *b)
{
        const struct frame_reader *r = ctx;

        return gview_read(r->gv, la, b, 1) == 1;
}

/* Slot s of the frame at the stack pointer. */
static bool frame_slot(struct frame_reader *r, enum x86_frame_slot s, uint64_t *v)
{
        struct x86_slot at = x86_frame_slot(r->bits, false, s);

        return x86_stack_read(&r->stack, r->gv->st->gpr[HVT_F_RSP], at.off, at.len, read_byte, r,
                              v);
}

/*
 * The frame at SS:rSP, of d->frame_bits: IP, CS, FLAGS, then SP and SS when
 * the interrupt changed privilege (and ES, DS, FS, GS from virtual-8086
 * mode) and always in a 64-bit frame.  The stack wraps at 64 KiB in real
 * mode and under a 16-bit SS (B = 0).
 */
static void read_frame(const struct gview *gv, struct hvt_disk_deliver *d)
{
        const struct hvt_vcpu_state *st = gv->st;
        bool real = hvt_state_mode(st) == HVT_MODE_REAL, vm86, switched;
        /* A 64-bit frame is on the flat stack the handler runs on. */
        struct frame_reader r = {
                .gv = gv,
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
        frame_cs_base(gv, d, vm86);
        return;

err_unreadable:
        d->ip = d->flags = d->sp = 0;
        d->cs = d->ss = 0;
        d->dflags |= HVT_DELIVER_CS_BASE_UNKNOWN;
}

/* ---- the probe ---------------------------------------------------------------- */

void probe_deliver(const struct gview *gv, struct disasm *dis, unsigned io_size, uint64_t seq,
                   probe_take_fn *take, void *take_ctx, struct hvt_disk_deliver *d)
{
        const struct hvt_vcpu_state *st = gv->st;
        unsigned bits = hvt_state_code_bits(st), mode = hvt_state_mode(st);
        struct disasm_io_site done, pending;
        struct probe_match m = { 0 };
        uint64_t pc = hvt_state_pc(st);
        uint8_t code[30];
        size_t before = pc >= 15 ? 15 : (size_t)pc, n;
        int nmatch = 0, vector = -1;
        bool nmi = false;

        memset(d, 0, sizeof(*d));
        d->seq = seq;
        /* Which address is the probe instruction: RIP, or just before it? */
        n = gview_read(gv, pc - before, code, before + 15);
        disasm_io_candidates(dis, bits, code, n, before, pc, 1, PROBE_PORT, io_size, &done,
                             &pending);
        if (done.found)
                m.cand[m.ncand++] = done.insn.addr;
        if (pending.found)
                m.cand[m.ncand++] = pc;
        if (!m.ncand)
                m.cand[m.ncand++] = pc; /* undecodable: trust RIP */

        for (unsigned v = 0; v < 256; v++) {
                uint64_t h;

                if (!gate_handler(gv, v, &h))
                        continue;
                for (int c = 0; c < m.ncand; c++) {
                        if (h == m.cand[c]) {
                                m.table_vectors[v / 64] |= 1ull << (v % 64);
                                d->handler = h;
                                nmatch++;
                                vector = (int)v;
                        }
                }
        }
        if (!nmatch)
                d->handler = m.cand[0];

        if (nmatch == 1) {
                d->vector_from = HVT_VEC_TABLE;
                take(take_ctx, vector_matches, &m, &nmi);
        } else {
                /* Shared or unknown handler: the oldest injection it can explain. */
                vector = take(take_ctx, nmatch ? vector_matches : NULL, &m, &nmi);
                d->vector_from = vector >= 0 ? HVT_VEC_INJECTED : HVT_VEC_UNKNOWN;
        }
        d->vector = vector >= 0 ? (uint8_t)vector : 0;
        if (nmi)
                d->dflags |= HVT_DELIVER_NMI;

        /* Only a gate that points at this handler says how the frame was pushed. */
        d->frame_bits = (uint8_t)gate_frame_bits(gv, nmatch ? vector : -1);
        if (!d->frame_bits)
                d->frame_bits = (uint8_t)(mode == HVT_MODE_LONG ? 64 : bits);
        read_frame(gv, d);
}

bool probe_at(const struct gview *gv, struct disasm *dis, uint64_t addr)
{
        unsigned bits = hvt_state_code_bits(gv->st);
        struct disasm_insn in;
        uint8_t code[15];
        size_t n = gview_read(gv, addr, code, sizeof(code));

        /* As the checker sees it: OUT with the port as an immediate. */
        return n && !disasm_decode(dis, bits, code, n, addr, &in) && (in.flags & DISASM_OUT) &&
               in.io_port == PROBE_PORT;
}
