// SPDX-License-Identifier: MIT
/* emu backend: x86 interrupt and exception delivery, done here since Unicorn has none. */
#include <string.h>

#include "emu.h"

/* ---- interrupt and exception delivery ---------------------------------------------- */

enum deliver_result { DELIVERED, FAULTED, UNSUPPORTED };

struct fault {
        unsigned vector;
        uint32_t error;
};

static enum deliver_result fault(struct fault *f, unsigned vector, uint32_t error)
{
        f->vector = vector;
        f->error = error;
        return FAULTED;
}

/* A code segment descriptor from the GDT for an interrupt's target CS. */
static enum deliver_result load_code_desc(struct emu_backend *e, uint16_t sel, unsigned cpl,
                                          bool want64, struct qseg *cs, struct fault *f)
{
        uint64_t gbase = emu_env_u64(e, ENV_GDT + 8);
        uint32_t glimit = emu_env_u32(e, ENV_GDT + 16), hi;
        uint16_t at = sel & X86_SEL_INDEX, err = sel & (uint16_t)~X86_SEL_RPL;
        uint8_t d[8];
        unsigned dpl;

        if (sel & X86_SEL_TI)
                return UNSUPPORTED; /* LDT */
        if (!at || (uint32_t)at + 7 > glimit || emu_read_linear(e, gbase + at, d, 8) != 8)
                return fault(f, X86_EXC_GP, err);
        hi = x86_desc_hi(d);
        if (!(hi & X86_DESC_S) || !(hi & (X86_TYPE_CODE << X86_DESC_TYPE_SHIFT)))
                return fault(f, X86_EXC_GP, err); /* not a code segment */
        dpl = (hi >> X86_DESC_DPL_SHIFT) & 3;
        if (dpl > cpl)
                return fault(f, X86_EXC_GP, err);
        if (dpl < cpl && !(hi & (X86_TYPE_CONFORMING << X86_DESC_TYPE_SHIFT)))
                return UNSUPPORTED; /* a privilege change needs a stack switch */
        if (!(hi & X86_DESC_P))
                return fault(f, X86_EXC_NP, err);
        if (want64 && (!(hi & X86_DESC_L) || (hi & X86_DESC_DB)))
                return fault(f, X86_EXC_GP, err);
        if (!(hi & (X86_TYPE_ACCESSED << X86_DESC_TYPE_SHIFT))) {
                /* Set the accessed bit, as the CPU does. */
                uint8_t b = d[5] | X86_TYPE_ACCESSED;

                emu_write_linear(e, gbase + at + 5, &b, 1);
        }
        memset(cs, 0, sizeof(*cs));
        cs->selector = (uint32_t)(err | cpl);
        cs->base = x86_desc_base(d);
        cs->limit = x86_desc_limit(d);
        cs->flags = hi & X86_DESC_ATTRS;
        return DELIVERED;
}

/* Exceptions whose frame has an error code (outside real mode). */
static bool pushes_error(unsigned v)
{
        return v == X86_EXC_DF || (v >= X86_EXC_TS && v <= X86_EXC_PF) || v == X86_EXC_AC ||
               v == X86_EXC_CP;
}

/*
 * Push an interrupt frame of `bits` below *sp on stack s: slots [0, n) of
 * vals (enum x86_frame_slot order), each the frame's width, and under them
 * the error code *err unless err is NULL.  All or nothing (little-endian
 * host); a frame that does not fit is #SS.
 */
static enum deliver_result push_frame(struct emu_backend *e, const struct x86_stack *s,
                                      uint64_t *sp, unsigned bits, const uint64_t *vals, unsigned n,
                                      const uint64_t *err, struct fault *f)
{
        uint64_t nsp = x86_stack_move(s, *sp, -(int64_t)x86_frame_size(bits, err != NULL, n));
        unsigned w = bits / 8;
        uint8_t probe[8];

        /* Slot by slot, top down: a 16-bit SP wraps inside the segment between two. */
        for (int pass = 0; pass < 2; pass++) {
                for (unsigned k = n + 1; k-- > 0;) {
                        const uint64_t *v = k ? &vals[k - 1] : err;
                        uint64_t la;

                        if (!v)
                                continue;
                        la = x86_stack_la(s, nsp,
                                          k ? x86_frame_slot(bits, err != NULL, k - 1).off : 0);
                        if (pass ? !emu_write_linear(e, la, v, w)
                                 : emu_read_linear(e, la, probe, w) != w)
                                return fault(f, X86_EXC_SS, 0);
                }
        }
        *sp = nsp;
        return DELIVERED;
}

/* Enter the handler: CS:RIP, RSP and RFLAGS as the delivery left them. */
static enum deliver_result enter(struct emu_backend *e, const struct qseg *cs, uint64_t rip,
                                 uint64_t rsp, uint64_t rflags)
{
        emu_env_put_seg(e, HVT_CS, cs);
        emu_env_put64(e, ENV_EIP, rip);
        emu_env_put64(e, ENV_REGS + 8 * 4, rsp);
        emu_env_put32(e, ENV_HFLAGS, emu_hflags_for(e, rflags));
        emu_env_put32(e, e->dr_off + DR_OLD_EXC, 0xffffffffu); /* delivered: none in flight */
        if (emu_snap_put(e))
                return UNSUPPORTED;
        emu_reg_write(e, UC_X86_REG_RFLAGS, rflags);
        return DELIVERED;
}

/*
 * Deliver `vector` through the IVT or IDT at the current RIP (already the
 * return address), the way the current mode does.  Only same-privilege
 * delivery is supported (ring-0 guests); task gates, LDT selectors and IST
 * stacks are reported as UNSUPPORTED rather than approximated.
 */
static enum deliver_result deliver(struct emu_backend *e, unsigned vector, enum event type,
                                   uint32_t error, struct fault *f)
{
        uint64_t cr0 = emu_env_u64(e, ENV_CR), efer = emu_env_u64(e, ENV_EFER);
        uint64_t idt = emu_env_u64(e, ENV_IDT + 8), rip = emu_env_u64(e, ENV_EIP), at;
        uint32_t idt_limit = emu_env_u32(e, ENV_IDT + 16), hf = emu_env_u32(e, ENV_HFLAGS);
        uint64_t rflags = emu_reg_read(e, UC_X86_REG_RFLAGS),
                 rsp = emu_env_u64(e, ENV_REGS + 8 * 4);
        unsigned mode = x86_mode(cr0, efer), cpl = hf & HF_CPL_MASK, size = x86_gate_size(mode);
        /* A fault on the gate names it: vector, IDT, and whether the event was external. */
        uint32_t gate_err = vector * 8 + X86_ERRC_IDT + (type == EV_EXT ? X86_ERRC_EXT : 0);
        uint64_t vals[X86_FRAME_SLOTS] = { 0 }, err = error;
        bool has_err = mode != HVT_MODE_REAL && type == EV_FAULT && pushes_error(vector);
        struct x86_stack stack;
        struct qseg cs, ss, ncs;
        enum deliver_result r;
        struct x86_gate g;
        uint8_t raw[16];

        emu_env_seg(e, HVT_CS, &cs);
        emu_env_seg(e, HVT_SS, &ss);
        if (!x86_gate_addr(mode, idt, idt_limit, vector, &at) ||
            emu_read_linear(e, at, raw, size) != size)
                return fault(f, X86_EXC_GP, gate_err);
        x86_gate_decode(mode, raw, &g);
        if (mode == HVT_MODE_REAL) {
                vals[X86_FRAME_IP] = rip & 0xffff;
                vals[X86_FRAME_CS] = cs.selector;
                vals[X86_FRAME_FLAGS] = rflags & 0xffff;
                stack = (struct x86_stack){ .base = ss.base, .mask = 0xffff };
                r = push_frame(e, &stack, &rsp, 16, vals, 3, NULL, f);
                if (r != DELIVERED)
                        return r;
                cs.selector = g.selector;
                cs.base = (uint64_t)g.selector << 4;
                rflags &= ~(X86_RFLAGS_IF | X86_RFLAGS_TF | X86_RFLAGS_AC | X86_RFLAGS_RF);
                return enter(e, &cs, g.offset, rsp, rflags);
        }
        if (mode == HVT_MODE_PROTECTED && g.type == X86_GATE_TASK)
                return UNSUPPORTED;
        if (!g.bits)
                return fault(f, X86_EXC_GP, gate_err); /* no interrupt or trap gate */
        if (type == EV_SOFT && g.dpl < cpl)
                return fault(f, X86_EXC_GP, vector * 8 + X86_ERRC_IDT);
        if (!g.present)
                return fault(f, X86_EXC_NP, gate_err);
        if (g.ist)
                return UNSUPPORTED; /* IST stack */
        r = load_code_desc(e, g.selector, cpl, mode == HVT_MODE_LONG, &ncs, f);
        if (r != DELIVERED)
                return r;
        if (mode == HVT_MODE_PROTECTED) {
                uint64_t wmask = g.bits == 32 ? 0xffffffffull : 0xffff;

                if (g.offset > ncs.limit)
                        return fault(f, X86_EXC_GP, 0);
                vals[X86_FRAME_IP] = rip & wmask;
                vals[X86_FRAME_CS] = cs.selector;
                vals[X86_FRAME_FLAGS] = rflags & wmask;
                stack = (struct x86_stack){
                        .base = ss.base,
                        .mask = (ss.flags & X86_DESC_DB) ? 0xffffffffull : 0xffff,
                };
                r = push_frame(e, &stack, &rsp, g.bits, vals, 3, has_err ? &err : NULL, f);
        } else {
                vals[X86_FRAME_IP] = rip;
                vals[X86_FRAME_CS] = cs.selector;
                vals[X86_FRAME_FLAGS] = rflags;
                vals[X86_FRAME_SP] = rsp;
                vals[X86_FRAME_SS] = ss.selector;
                stack = (struct x86_stack){ .base = 0, .mask = ~0ull };
                rsp &= ~0xfull; /* the CPU aligns the stack before the frame */
                r = push_frame(e, &stack, &rsp, 64, vals, x86_frame_slots(64, false, false),
                               has_err ? &err : NULL, f);
        }
        if (r != DELIVERED)
                return r;
        rflags &= ~(X86_RFLAGS_TF | X86_RFLAGS_NT | X86_RFLAGS_RF | X86_RFLAGS_VM);
        if (!g.trap)
                rflags &= ~X86_RFLAGS_IF;
        return enter(e, &ncs, g.offset, rsp, rflags);
}

static bool contributory(unsigned v)
{
        return v == 0 || (v >= X86_EXC_TS && v <= X86_EXC_GP); /* #DE, #TS, #NP, #SS, #GP */
}

/*
 * Deliver an event, escalating faults met on the way as the CPU does
 * (benign then the new fault; contributory or #PF twice: #DF; a fault
 * delivering #DF: shutdown).  Returns 0 when the guest took it, else fills
 * the exit that ends the run (shutdown, or an exception this backend
 * cannot deliver).
 */
int emu_raise_event(struct emu_backend *e, unsigned vector, enum event type, uint32_t error,
                    struct backend_exit *x)
{
        for (int round = 0; round < 4; round++) {
                struct fault f = { 0 };
                enum deliver_result r;

                if (emu_snap_get(e))
                        break;
                r = deliver(e, vector, type, error, &f);
                if (r == DELIVERED) {
                        e->shadow = 0;
                        e->prev_valid = false;
                        return 0;
                }
                if (r == UNSUPPORTED) {
                        x->reason = HVT_EXIT_EXCEPTION;
                        x->raw = HVT_EXIT_EXCEPTION;
                        x->u.exception.vector = vector;
                        x->u.exception.error_code = error;
                        x->u.exception.cr2 = emu_reg_read(e, UC_X86_REG_CR2);
                        return 1;
                }
                if (vector == X86_EXC_DF)
                        break;
                if (type == EV_FAULT && (contributory(vector) || vector == X86_EXC_PF) &&
                    (contributory(f.vector) || (vector == X86_EXC_PF && f.vector == X86_EXC_PF))) {
                        vector = X86_EXC_DF;
                        error = 0;
                } else {
                        vector = f.vector;
                        error = f.error;
                }
                type = EV_FAULT;
        }
        x->reason = HVT_EXIT_SHUTDOWN;
        x->raw = HVT_EXIT_SHUTDOWN;
        return 1;
}
