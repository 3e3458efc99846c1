// SPDX-License-Identifier: MIT
#include <stdlib.h>
#include <string.h>

#include "flow.h"

/* ---- bsets ------------------------------------------------------------------------- */

void bset_add(struct bset *b, unsigned k, const struct flow_ex *ex, unsigned und)
{
        if (!(b->kinds & FK_BIT(k))) {
                b->kinds |= (uint8_t)FK_BIT(k);
                if (ex)
                        b->ex[k] = *ex;
                if (k == FK_UNKNOWN)
                        b->und = (uint8_t)und;
        }
}

bool bset_equal(const struct bset *a, const struct bset *b)
{
        if (a->kinds != b->kinds || a->und != b->und)
                return false;
        for (unsigned k = 0; k < FK_COUNT; k++) {
                const struct flow_ex *x = &a->ex[k], *y = &b->ex[k];

                if (!(a->kinds & FK_BIT(k)))
                        continue;
                if (x->valid != y->valid || (x->valid && (x->addr != y->addr || x->ctx != y->ctx ||
                                                          x->if_before != y->if_before)))
                        return false;
        }
        return true;
}

bool bset_merge(struct bset *b, const struct bset *o)
{
        uint8_t before = b->kinds;

        for (unsigned k = 0; k < FK_COUNT; k++)
                if (o->kinds & FK_BIT(k))
                        bset_add(b, k, &o->ex[k], o->und);
        return b->kinds != before;
}

/* POP SS does not exist in 64-bit code; LSS loads SS without a shadow. */
static bool ss_load(const struct code_insn *x, unsigned bits)
{
        if (x->flags & DISASM_UD)
                return false;
        return (x->flags & DISASM_MOV_SS) || ((x->flags & DISASM_POP_SS) && bits != 64);
}

/*
 * A delaying instruction (kind k when it opens a guaranteed shadow) after
 * `before`: the first of a sequence opens one, a later one does not.
 */
static void delaying(struct bset *out, unsigned k, const struct flow_ex *ex,
                     const struct bset *before)
{
        bool plain = before->kinds & (FK_BIT(FK_PLAIN) | FK_BIT(FK_STI_IF1));
        bool delayed = before->kinds & FK_DELAYING;

        if ((before->kinds & FK_BIT(FK_UNKNOWN)) || (plain && delayed)) {
                /* It delays; only whether it opens a guaranteed shadow is unknown. */
                bset_add(out, FK_DELAYED, ex, 0);
                return;
        }
        if (plain)
                bset_add(out, k, ex, 0);
        if (delayed)
                bset_add(out, FK_SECOND, ex, 0);
}

void flow_after(const struct code_insn *x, uint64_t addr, uint32_t ctx, unsigned bits, unsigned ifm,
                const struct bset *before, struct bset *out)
{
        struct flow_ex ex = { .valid = true, .if_before = -1, .ctx = ctx, .addr = addr };

        memset(out, 0, sizeof(*out));
        if ((x->flags & DISASM_STI) && !(x->flags & DISASM_UD)) {
                ex.if_before = ifm == IFM_0 ? 0 : ifm == IFM_1 ? 1 : -1;
                if (ifm == IFM_BOTH) {
                        struct bset tmp = { 0 };

                        /* IF=0 would open a shadow unless a delaying one came first. */
                        delaying(&tmp, FK_STI, &ex, before);
                        if (tmp.kinds &
                            (FK_BIT(FK_STI) | FK_BIT(FK_DELAYED) | FK_BIT(FK_UNKNOWN))) {
                                bset_add(out, FK_UNKNOWN, &ex, UND_IF_UNKNOWN);
                                return;
                        }
                        bset_merge(out, &tmp);
                        bset_add(out, FK_STI_IF1, &ex, 0);
                        return;
                }
                if (ifm & IFM_1)
                        bset_add(out, FK_STI_IF1, &ex, 0);
                if (ifm & IFM_0)
                        delaying(out, FK_STI, &ex, before);
                return;
        }
        if (ss_load(x, bits)) {
                delaying(out, FK_SSLOAD, &ex, before);
                return;
        }
        bset_add(out, FK_PLAIN, &ex, 0);
}

unsigned flow_if_after(const struct code_insn *x, unsigned ifm)
{
        if (x->flags & DISASM_UD)
                return ifm;
        if (x->flags & DISASM_STI)
                return IFM_1;
        if (x->flags & DISASM_CLI)
                return IFM_0;
        if (x->flags & (DISASM_POPF | DISASM_IRET))
                return IFM_BOTH; /* FLAGS come from memory */
        return ifm;
}

/* ---- nodes ------------------------------------------------------------------------- */

void flow_init(struct flow *f)
{
        memset(f, 0, sizeof(*f));
}

void flow_free(struct flow *f)
{
        free(f->nodes);
        free(f->idx);
        free(f->work);
        memset(f, 0, sizeof(*f));
}

static uint64_t mix(uint64_t k)
{
        k ^= k >> 33;
        k *= 0xff51afd7ed558ccdull;
        k ^= k >> 33;
        return k;
}

static size_t idx_slot(const struct flow *f, uint64_t la, uint32_t ctx)
{
        size_t i = (size_t)mix(la * 31 + ctx) & (f->idx_cap - 1);

        while (f->idx[i] != UINT32_MAX &&
               (f->nodes[f->idx[i]].la != la || f->nodes[f->idx[i]].ctx != ctx))
                i = (i + 1) & (f->idx_cap - 1);
        return i;
}

static bool idx_grow(struct flow *f)
{
        size_t cap = f->idx_cap ? f->idx_cap * 2 : 256;
        uint32_t *old = f->idx;

        f->idx = malloc(cap * sizeof(*f->idx));
        if (!f->idx) {
                f->idx = old;
                return false;
        }
        memset(f->idx, 0xff, cap * sizeof(*f->idx));
        f->idx_cap = cap;
        for (size_t i = 0; i < f->n; i++)
                f->idx[idx_slot(f, f->nodes[i].la, f->nodes[i].ctx)] = (uint32_t)i;
        free(old);
        return true;
}

const struct flow_node *flow_node(const struct flow *f, uint64_t la, uint32_t ctx)
{
        size_t s;

        if (!f->idx_cap)
                return NULL;
        s = idx_slot(f, la, ctx);
        return f->idx[s] == UINT32_MAX ? NULL : &f->nodes[f->idx[s]];
}

static bool push_work(struct flow *f, uint32_t i)
{
        if (f->nwork == f->work_cap) {
                size_t cap = f->work_cap ? f->work_cap * 2 : 256;
                uint32_t *w = realloc(f->work, cap * sizeof(*w));

                if (!w)
                        return false;
                f->work = w;
                f->work_cap = cap;
        }
        f->work[f->nwork++] = i;
        f->nodes[i].queued = true;
        return true;
}

static void leave(struct flow *f, unsigned und, uint64_t at)
{
        if (!f->incomplete) {
                f->incomplete = true;
                f->inc_und = (uint8_t)und;
                f->inc_at = at;
        }
}

/* The stack pointer on arrival: SPK_KNOWN with its value, or SPK_UNKNOWN. */
struct sp_state {
        unsigned k;
        uint64_t v;
};

/*
 * Control reaches (la, ctx) with IF in ifm, the stack pointer sp and bset
 * b: merge, and queue if that changed it.
 */
static void reach(struct flow *f, uint64_t la, uint32_t ctx, unsigned ifm, struct sp_state sp,
                  const struct bset *b)
{
        struct flow_node *n;
        bool changed;
        size_t s;

        if (f->oom)
                return;
        if ((f->n + 1) * 2 > f->idx_cap && !idx_grow(f))
                goto err_oom;
        s = idx_slot(f, la, ctx);
        if (f->idx[s] == UINT32_MAX) {
                if (f->n == FLOW_MAX_NODES) {
                        leave(f, UND_TOO_LARGE, la);
                        return;
                }
                if (f->n == f->cap) {
                        size_t cap = f->cap ? f->cap * 2 : 256;
                        struct flow_node *p = realloc(f->nodes, cap * sizeof(*p));

                        if (!p)
                                goto err_oom;
                        f->nodes = p;
                        f->cap = cap;
                }
                n = &f->nodes[f->n];
                memset(n, 0, sizeof(*n));
                n->la = la;
                n->ctx = ctx;
                f->idx[s] = (uint32_t)f->n++;
        }
        n = &f->nodes[f->idx[s]];
        changed = (n->ifm | ifm) != n->ifm;
        n->ifm |= (uint8_t)ifm;
        if (n->spk == SPK_NONE) {
                n->spk = (uint8_t)sp.k;
                n->sp = sp.v;
                changed = true;
        } else if (n->spk == SPK_KNOWN && (sp.k != SPK_KNOWN || sp.v != n->sp)) {
                n->spk = SPK_UNKNOWN; /* two paths, two stack pointers */
                changed = true;
        }
        changed |= bset_merge(&n->b, b);
        if (f->pass_iret && !n->post_iret) {
                n->post_iret = true;
                changed = true;
        }
        if (changed && !n->queued && !push_work(f, f->idx[s]))
                goto err_oom;
        return;

err_oom:
        /* Out of memory: nothing followed so far can be trusted to be complete. */
        f->oom = true;
        f->incomplete = true;
        f->inc_und = UND_CONTROL;
}

/* ---- descriptors and gates --------------------------------------------------------- */

/* Read n bytes of a system table at linear la; false when they are missing or unsure. */
static bool read_table(struct flow *f, struct code *c, uint32_t ctx, uint64_t la, uint8_t *buf,
                       size_t n)
{
        bool unsure;

        if (code_read_sure(c, &c->ctxs[ctx], la, buf, n, &unsure) != n)
                return false;
        if (unsure)
                f->unsure = true;
        return !unsure;
}

/* The code context of a code selector; false if it cannot be read. */
static bool selector(struct flow *f, struct code *c, const struct flow_start *s, uint32_t ctx,
                     uint16_t sel, uint32_t *out)
{
        bool unsure;
        bool ok = code_selector(c, ctx, s->gdt_base, s->gdt_limit, sel, out, &unsure);

        f->unsure |= unsure;
        return ok;
}

/*
 * The handler of vector v through the IVT or IDT: its boundary and IF on
 * entry.  False when the table does not say (missing, a task gate).
 */
static bool handler_of(struct flow *f, struct code *c, const struct flow_start *s, uint32_t ctx,
                       unsigned v, unsigned ifm, uint64_t *la, uint32_t *hctx, unsigned *hifm)
{
        const struct code_ctx *x = &c->ctxs[ctx];
        unsigned mode = x86_mode(x->cr0, x->efer);
        struct x86_gate g;
        uint64_t at;
        uint8_t e[16];

        if (!x86_gate_addr(mode, s->idt_base, s->idt_limit, v, &at) ||
            !read_table(f, c, ctx, at, e, x86_gate_size(mode)) || !x86_gate_decode(mode, e, &g))
                return false;
        if (!selector(f, c, s, ctx, g.selector, hctx))
                return false;
        /* The IVT and interrupt gates clear IF; trap gates leave it. */
        *hifm = g.trap ? ifm : IFM_0;
        *la = c->ctxs[*hctx].bits == 64 ? g.offset
                                        : (c->ctxs[*hctx].cs_base + g.offset) & 0xffffffffull;
        return true;
}

/* LGDT / LIDT (0f 01 /2, /3 with a memory operand): the tables the flow reads change. */
static bool loads_table(const struct code_insn *x)
{
        unsigned i = 0;

        while (i + 2 < x->len && x->bytes[i] != 0x0f)
                i++;
        if (i + 2 >= x->len || x->bytes[i + 1] != 0x01)
                return false;
        return (x->bytes[i + 2] >> 6) != 3 &&
               (((x->bytes[i + 2] >> 3) & 7) == 2 || ((x->bytes[i + 2] >> 3) & 7) == 3);
}

static bool stops(const struct flow_start *s, const struct code_insn *x)
{
        if ((x->flags & DISASM_HLT) && s->hlt_stops)
                return true;
        if (!(x->flags & (DISASM_IN | DISASM_OUT)))
                return false;
        if (s->io_stops)
                return true;
        /* A port some exit showed always exits: only an immediate port can be known. */
        return s->ports && !(x->flags & DISASM_STRING) && x->io_port >= 0 &&
               (s->ports[x->io_port >> 3] & (1u << (x->io_port & 7)));
}

/* ---- the stack ---------------------------------------------------------------------- */

/* Prefixes and opcode of an instruction, as far as stack effects need them. */
struct opc {
        bool opsize, rex_w, rex_b;
        uint8_t op, op2, modrm; /* op2: the byte after 0f; modrm for ff and 8f */
        bool has_modrm;
};

static void parse_opc(const struct code_insn *x, unsigned bits, struct opc *o)
{
        unsigned i = 0;

        memset(o, 0, sizeof(*o));
        for (; i < x->len; i++) {
                uint8_t b = x->bytes[i];

                if (bits == 64 && (b & 0xf0) == 0x40) {
                        o->rex_w = b & 8;
                        o->rex_b = b & 1;
                        continue;
                }
                if (b == 0x66)
                        o->opsize = true;
                else if (b != 0x26 && b != 0x2e && b != 0x36 && b != 0x3e && b != 0x64 &&
                         b != 0x65 && b != 0x67 && b != 0xf0 && b != 0xf2 && b != 0xf3)
                        break;
                o->rex_w = o->rex_b = false; /* a REX counts only right before the opcode */
        }
        if (i < x->len)
                o->op = x->bytes[i++];
        if (o->op == 0x0f && i < x->len)
                o->op2 = x->bytes[i++];
        if (i < x->len && (o->op == 0xff || o->op == 0x8f)) {
                o->modrm = x->bytes[i];
                o->has_modrm = true;
        }
}

/* Bytes a push or pop moves: 2 or 4 (66 flips it), 8 in 64-bit code (66: 2). */
static unsigned push_size(unsigned bits, bool opsize)
{
        if (bits == 64)
                return opsize ? 2 : 8;
        return (bits == 16) != opsize ? 2 : 4;
}

/*
 * How a non-transfer instruction moves the stack pointer: true with the
 * change in *delta (0 when it leaves it alone), false when it may set it
 * to anything.
 */
static bool stack_delta(const struct code_insn *x, unsigned bits, int64_t *delta)
{
        struct opc o;
        int64_t w;

        *delta = 0;
        parse_opc(x, bits, &o);
        w = (int64_t)push_size(bits, o.opsize);
        switch (o.op) {
        case 0x50 ... 0x57:
        case 0x6a:
        case 0x68:
        case 0x9c: *delta = -w; return true; /* push r / imm, pushf */
        case 0x58 ... 0x5f:
                if ((o.op & 7) == 4 && !o.rex_b)
                        return false; /* pop rSP */
                *delta = w;
                return true;
        case 0x9d: *delta = w; return true; /* popf */
        case 0x06:
        case 0x0e:
        case 0x1e: *delta = -w; return bits != 64;
        case 0x07:
        case 0x1f: *delta = w; return bits != 64;
        case 0x60: *delta = -8 * w; return bits != 64; /* pusha */
        case 0x61: *delta = 8 * w; return bits != 64;  /* popa: rSP itself is skipped */
        case 0x0f:
                if (o.op2 == 0xa0 || o.op2 == 0xa8) {
                        *delta = -w;
                        return true;
                }
                if (o.op2 == 0xa1 || o.op2 == 0xa9) {
                        *delta = w;
                        return true;
                }
                break;
        case 0xff:
                if (o.has_modrm && ((o.modrm >> 3) & 7) == 6) {
                        *delta = -w; /* push r/m */
                        return true;
                }
                break;
        case 0x8f:
                if (o.has_modrm && !(o.modrm >> 6 == 3 && (o.modrm & 7) == 4 && !o.rex_b)) {
                        *delta = w; /* pop r/m */
                        return true;
                }
                return false;
        case 0xe8: *delta = -(int64_t)(bits == 64 ? 8 : w); return true; /* call rel */
        default: break;
        }
        /* An SS load moves the stack elsewhere; anything else writing rSP is unknown. */
        return !(x->flags & (DISASM_MOV_SS | DISASM_POP_SS | DISASM_LSS)) && !x->sp_write;
}

static struct sp_state sp_moved(const struct flow_start *s, struct sp_state sp, int64_t delta)
{
        struct x86_stack stack = { .base = s->ss_base, .mask = s->sp_mask };

        if (sp.k == SPK_KNOWN)
                sp.v = x86_stack_move(&stack, sp.v, delta);
        return sp;
}

static struct sp_state sp_after(const struct flow_start *s, const struct code_insn *x,
                                unsigned bits, struct sp_state sp)
{
        int64_t delta;

        if (sp.k != SPK_KNOWN || !stack_delta(x, bits, &delta))
                return (struct sp_state){ .k = SPK_UNKNOWN };
        return sp_moved(s, sp, delta);
}

/* A stack read in progress: every byte read is remembered. */
struct stack_reader {
        struct flow *f;
        struct code *c;
        uint32_t ctx;
};

static bool stack_byte(void *p, uint64_t la, uint8_t *b)
{
        struct stack_reader *r = p;
        struct flow_read *rd;
        bool unsure;

        if (r->f->nreads == FLOW_MAX_READS ||
            code_read_sure(r->c, &r->c->ctxs[r->ctx], la, b, 1, &unsure) != 1)
                return false;
        if (unsure) {
                r->f->unsure = true; /* only this run leaves it unknown */
                return false;
        }
        rd = &r->f->reads[r->f->nreads++];
        rd->la = la;
        rd->ctx = r->ctx;
        rd->len = 1;
        rd->bytes[0] = *b;
        return true;
}

/*
 * Read n (<= 8) bytes of the stack at sp + off, each wrapped inside the
 * stack segment: known only when the trace records every write and none
 * was made there during this run.  Remembered, so that a cached flow is
 * dropped when they change.
 */
static bool stack_read(struct flow *f, struct code *c, const struct flow_start *s, uint32_t ctx,
                       uint64_t sp, uint64_t off, unsigned n, uint64_t *out)
{
        struct x86_stack stack = { .base = s->ss_base, .mask = s->sp_mask };
        struct stack_reader r = { .f = f, .c = c, .ctx = ctx };

        return x86_stack_read(&stack, sp, off, n, stack_byte, &r, out);
}

bool flow_reads_hold(const struct flow *f, struct code *c)
{
        for (unsigned i = 0; i < f->nreads; i++) {
                const struct flow_read *r = &f->reads[i];
                uint8_t b[8];
                bool unsure;

                if (code_read_sure(c, &c->ctxs[r->ctx], r->la, b, r->len, &unsure) != r->len ||
                    unsure || memcmp(b, r->bytes, r->len))
                        return false;
        }
        return true;
}

/*
 * A RET, RETF or IRET whose stack the flow knows: where it returns to, IF
 * and the stack pointer after it.  False when the trace cannot say (then
 * the flow is incomplete).
 */
static bool pop_return(struct flow *f, struct code *c, const struct flow_start *s,
                       const struct flow_node *n, const struct code_insn *x, uint64_t *la,
                       uint32_t *ctx, unsigned *ifm, struct sp_state *sp)
{
        const struct code_ctx *cx = &c->ctxs[n->ctx];
        unsigned bits = cx->bits, w;
        uint64_t ip, cs = 0, fl = 0, imm = 0;
        struct x86_slot at;
        bool fl_known;
        struct opc o;

        if (!s->stack || n->spk != SPK_KNOWN)
                return false;
        parse_opc(x, bits, &o);
        if (o.op == 0xc2 || o.op == 0xca)
                imm = x->bytes[x->len - 2] | (uint64_t)x->bytes[x->len - 1] << 8;
        sp->k = SPK_KNOWN;
        sp->v = n->sp;
        if (o.op == 0xc3 || o.op == 0xc2) {
                /* Near return: the instruction pointer, in the code's own width. */
                if (bits == 64 && o.opsize)
                        return false;
                w = bits == 64 ? 8 : push_size(bits, o.opsize);
                if (!stack_read(f, c, s, n->ctx, n->sp, 0, w, &ip))
                        return false;
                *ctx = n->ctx;
                *ifm = n->ifm;
                if (bits == 64)
                        *la = ip;
                else
                        *la = (cx->cs_base + (ip & (w == 2 ? 0xffffull : 0xffffffffull))) &
                              0xffffffffull;
                *sp = sp_moved(s, *sp, (int64_t)(w + imm));
                return true;
        }
        if (o.op != 0xcb && o.op != 0xca && o.op != 0xcf)
                return false;
        if (bits == 64 && o.op != 0xcf)
                return false; /* far returns in 64-bit code: not followed */
        /* RETF and IRET: IP, CS (and FLAGS), a frame of the operand size. */
        w = bits == 64 ? (o.rex_w ? 8 : 4) : push_size(bits, o.opsize);
        at = x86_frame_slot(w * 8, false, X86_FRAME_IP);
        if (!stack_read(f, c, s, n->ctx, n->sp, at.off, at.len, &ip))
                return false;
        at = x86_frame_slot(w * 8, false, X86_FRAME_CS);
        if (!stack_read(f, c, s, n->ctx, n->sp, at.off, at.len, &cs))
                return false;
        /* FLAGS rewritten during the run (a push over the old frame): IF unknown. */
        at = x86_frame_slot(w * 8, false, X86_FRAME_FLAGS);
        fl_known = o.op == 0xcf && /* IF and VM are in the low 4 bytes */
                   stack_read(f, c, s, n->ctx, n->sp, at.off, at.len > 4 ? 4 : at.len, &fl);
        /* To another privilege level or virtual-8086 mode a stack is popped too: not followed. */
        if ((cx->cr0 & X86_CR0_PE) && bits != 64 &&
            ((cs & X86_SEL_RPL) != s->cpl ||
             (o.op == 0xcf && w == 4 && (!fl_known || (fl & X86_RFLAGS_VM)))))
                return false;
        if (!selector(f, c, s, n->ctx, (uint16_t)cs, ctx))
                return false;
        if (c->ctxs[*ctx].bits == 64) {
                *la = ip;
        } else {
                ip &= w == 2 ? 0xffffull : 0xffffffffull;
                *la = (c->ctxs[*ctx].cs_base + ip) & 0xffffffffull;
        }
        if (o.op != 0xcf)
                *ifm = n->ifm;
        else
                *ifm = !fl_known ? IFM_BOTH : (fl & X86_RFLAGS_IF) ? IFM_1 : IFM_0;
        if (bits == 64) {
                /* IRET in 64-bit code pops RSP and SS too: a stack the flow does not follow. */
                sp->k = SPK_UNKNOWN;
                return true;
        }
        *sp = sp_moved(s, *sp, (int64_t)(x86_frame_size(w * 8, false, o.op == 0xcf ? 3 : 2) + imm));
        return true;
}

bool flow_return_target(struct code *c, const struct flow_start *s, const struct code_insn *x,
                        uint64_t *la, uint32_t *ctx, unsigned *ifm)
{
        struct flow_node n = {
                .la = s->la, .ctx = s->ctx, .ifm = (uint8_t)s->ifm, .spk = SPK_KNOWN, .sp = s->sp
        };
        struct sp_state sp;
        struct flow f;
        bool ok;

        flow_init(&f);
        ok = pop_return(&f, c, s, &n, x, la, ctx, ifm, &sp) && !f.unsure;
        flow_free(&f);
        return ok;
}

/* ---- the walk ---------------------------------------------------------------------- */

static void visit(struct flow *f, struct code *c, const struct flow_start *s, uint32_t i)
{
        struct flow_node n = f->nodes[i];
        const struct code_ctx *x = &c->ctxs[n.ctx];
        struct code_insn in;
        struct bset out;
        unsigned ifm, st;
        struct sp_state sp;
        uint64_t next;

        if (s->bytes && n.la == s->la && n.ctx == s->ctx)
                st = code_insn_bytes(c, s->bytes, s->nbytes, n.la, n.ctx, &in);
        else
                st = code_insn(c, n.la, n.ctx, &in);
        if (st == CODE_MISSING) {
                leave(f, UND_NO_CODE, n.la);
                return;
        }
        if (st == CODE_UNSURE) {
                f->unsure = true;
                leave(f, UND_CODE_WRITTEN, n.la);
                return;
        }
        if (!(s->pending && n.la == s->la && n.ctx == s->ctx) && stops(s, &in))
                return; /* it exits before completing: the interval ends there */
        flow_after(&in, n.la, n.ctx, x->bits, n.ifm, &n.b, &out);
        f->pass_iret = n.post_iret;
        if ((in.flags & DISASM_IRET) && !(in.flags & DISASM_UD)) {
                f->iret = true;
                f->pass_iret = true;
                if (s->stop_iret)
                        return;
        }
        if (in.flags & (DISASM_RET | DISASM_IRET) && !(in.flags & DISASM_UD)) {
                uint64_t rla;
                uint32_t rctx;
                unsigned rifm;
                struct sp_state rsp;

                /* Where the return goes, if the stack holds known bytes there. */
                if (pop_return(f, c, s, &n, &in, &rla, &rctx, &rifm, &rsp))
                        reach(f, rla, rctx, rifm, rsp, &out);
                else
                        leave(f, UND_CONTROL, n.la);
                return;
        }
        if (in.flags & (DISASM_UD | DISASM_SYSCALL | DISASM_CTX) || loads_table(&in)) {
                leave(f, UND_CONTROL, n.la);
                return;
        }
        ifm = flow_if_after(&in, n.ifm);
        sp = sp_after(s, &in, x->bits, (struct sp_state){ .k = n.spk, .v = n.sp });
        next = code_next(c, n.ctx, n.la, in.len);

        if (in.flags & DISASM_INT) {
                uint64_t hla;
                uint32_t hctx;
                unsigned hifm;

                /*
                 * The handler runs on the frame the INT pushed, written during
                 * this run: its IRET's target is not known, nor where a
                 * privilege change would put the stack.
                 */
                if (in.int_vector < 0 ||
                    !handler_of(f, c, s, n.ctx, (unsigned)in.int_vector, n.ifm, &hla, &hctx, &hifm))
                        leave(f, UND_CONTROL, n.la);
                else
                        reach(f, hla, hctx, hifm, (struct sp_state){ .k = SPK_UNKNOWN }, &out);
                if (in.flags & DISASM_COND) /* INTO with OF=0 */
                        reach(f, next, n.ctx, ifm, (struct sp_state){ .k = n.spk, .v = n.sp },
                              &out);
                return;
        }
        if (in.flags & (DISASM_JUMP | DISASM_CALL)) {
                if (!in.has_target) {
                        leave(f, UND_CONTROL, n.la);
                        return;
                }
                if (in.flags & DISASM_FAR) {
                        uint32_t tctx;

                        if (!selector(f, c, s, n.ctx, in.target_cs, &tctx)) {
                                leave(f, UND_CONTROL, n.la);
                                return;
                        }
                        /* A far call pushes CS:IP: the stack is not followed further. */
                        if (in.flags & DISASM_CALL)
                                sp.k = SPK_UNKNOWN;
                        reach(f, c->ctxs[tctx].cs_base + in.target, tctx, ifm, sp, &out);
                } else {
                        reach(f, in.target, n.ctx, ifm, sp, &out);
                }
                /* A call's return site is reached by its RET. */
                if ((in.flags & DISASM_COND) && !(in.flags & DISASM_CALL))
                        reach(f, next, n.ctx, ifm, sp, &out);
                return;
        }
        if (in.flags & DISASM_REP)
                reach(f, n.la, n.ctx, ifm, sp, &out); /* stopped between iterations */
        reach(f, next, n.ctx, ifm, sp, &out);
}

void flow_run(struct flow *f, struct code *c, const struct flow_start *s)
{
        f->n = 0;
        f->nwork = 0;
        f->incomplete = false;
        f->inc_und = 0;
        f->inc_at = 0;
        f->unsure = false;
        f->iret = false;
        f->pass_iret = false;
        f->oom = false;
        f->nreads = 0;
        if (f->idx_cap)
                memset(f->idx, 0xff, f->idx_cap * sizeof(*f->idx));
        reach(f, s->la, s->ctx, s->ifm, (struct sp_state){ .k = SPK_KNOWN, .v = s->sp }, &s->b);
        while (f->nwork) {
                uint32_t i = f->work[--f->nwork];

                f->nodes[i].queued = false;
                visit(f, c, s, i);
        }
}

void flow_at(const struct flow *f, struct code *c, uint64_t la, uint32_t ctx, struct bset *out)
{
        const struct flow_node *n;
        struct flow_ex ex = { .valid = true, .if_before = -1, .ctx = ctx, .addr = la };
        uint16_t lens;
        bool sure = code_delaying_before(c, la, ctx, &lens);

        memset(out, 0, sizeof(*out));
        if (sure && !lens) {
                /* Nothing that delays interrupts can end here: whatever ran, no shadow. */
                bset_add(out, FK_PLAIN, NULL, 0);
                return;
        }
        n = flow_node(f, la, ctx);
        if (n)
                bset_merge(out, &n->b);
        if (f->incomplete) {
                /* A path nobody can see may end here, through anything that ends here. */
                bset_add(out, FK_PLAIN, NULL, 0);
                ex.addr = f->inc_at;
                bset_add(out, FK_UNKNOWN, &ex, f->inc_und);
        } else if (!n) {
                bset_add(out, FK_UNKNOWN, &ex, UND_UNREACHABLE);
        }
}
