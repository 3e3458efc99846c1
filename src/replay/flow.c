// SPDX-License-Identifier: MIT
#include <stdlib.h>
#include <string.h>

#include "flow.h"

/* ---- bsets ------------------------------------------------------------------------------ */

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

/* ---- nodes -------------------------------------------------------------------------------- */

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

/* Control reaches (la, ctx) with IF in ifm and bset b: merge, and queue if that changed it. */
static void reach(struct flow *f, uint64_t la, uint32_t ctx, unsigned ifm, const struct bset *b)
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
        changed |= bset_merge(&n->b, b);
        if (changed && !n->queued && !push_work(f, f->idx[s]))
                goto err_oom;
        return;

err_oom:
        /* Out of memory: nothing followed so far can be trusted to be complete. */
        f->oom = true;
        f->incomplete = true;
        f->inc_und = UND_CONTROL;
}

static void leave(struct flow *f, unsigned und, uint64_t at)
{
        if (!f->incomplete) {
                f->incomplete = true;
                f->inc_und = (uint8_t)und;
                f->inc_at = at;
        }
}

/* ---- descriptors and gates ------------------------------------------------------------------ */

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
        bool lm = x->efer & X86_EFER_LMA;
        unsigned esize = !(x->cr0 & X86_CR0_PE) ? 4 : lm ? 16 : 8;
        uint8_t g[16];
        uint64_t off;
        unsigned type;

        if ((uint64_t)v * esize + esize - 1 > s->idt_limit ||
            !read_table(f, c, ctx, s->idt_base + (uint64_t)v * esize, g, esize))
                return false;
        if (esize == 4) {
                /* Real mode: the IVT; IF is cleared on entry. */
                if (!selector(f, c, s, ctx, (uint16_t)(g[2] | g[3] << 8), hctx))
                        return false;
                *la = c->ctxs[*hctx].cs_base + (uint16_t)(g[0] | g[1] << 8);
                *hifm = IFM_0;
                return true;
        }
        type = g[5] & 0x1f;
        if (!(g[5] & 0x80))
                return false;
        switch (type) {
        case 0x06: /* 16-bit interrupt gate */
        case 0x0e: *hifm = IFM_0; break;
        case 0x07: /* 16-bit trap gate */
        case 0x0f: *hifm = ifm; break;
        default: return false; /* task gates and anything else: not followed */
        }
        off = (uint64_t)g[0] | (uint64_t)g[1] << 8;
        if (type >= 0x0e)
                off |= (uint64_t)g[6] << 16 | (uint64_t)g[7] << 24;
        if (lm) {
                for (unsigned i = 0; i < 4; i++)
                        off |= (uint64_t)g[8 + i] << (32 + 8 * i);
        }
        if (!selector(f, c, s, ctx, (uint16_t)(g[2] | g[3] << 8), hctx))
                return false;
        *la = c->ctxs[*hctx].bits == 64 ? off : (c->ctxs[*hctx].cs_base + off) & 0xffffffffull;
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

/* ---- the walk ---------------------------------------------------------------------------------
 */

static void visit(struct flow *f, struct code *c, const struct flow_start *s, uint32_t i)
{
        struct flow_node n = f->nodes[i];
        const struct code_ctx *x = &c->ctxs[n.ctx];
        struct code_insn in;
        struct bset out;
        unsigned ifm, st;
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
        if (in.flags & (DISASM_UD | DISASM_RET | DISASM_IRET | DISASM_SYSCALL | DISASM_CTX) ||
            loads_table(&in)) {
                leave(f, UND_CONTROL, n.la);
                return;
        }
        flow_after(&in, n.la, n.ctx, x->bits, n.ifm, &n.b, &out);
        ifm = flow_if_after(&in, n.ifm);
        next = code_next(c, n.ctx, n.la, in.len);

        if (in.flags & DISASM_INT) {
                uint64_t hla;
                uint32_t hctx;
                unsigned hifm;

                if (in.int_vector < 0 ||
                    !handler_of(f, c, s, n.ctx, (unsigned)in.int_vector, n.ifm, &hla, &hctx, &hifm))
                        leave(f, UND_CONTROL, n.la);
                else
                        reach(f, hla, hctx, hifm, &out);
                if (in.flags & DISASM_COND) /* INTO with OF=0 */
                        reach(f, next, n.ctx, ifm, &out);
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
                        reach(f, c->ctxs[tctx].cs_base + in.target, tctx, ifm, &out);
                } else {
                        reach(f, in.target, n.ctx, ifm, &out);
                }
                /* A call's return site is reached by a RET, which leaves the flow anyway. */
                if ((in.flags & DISASM_COND) && !(in.flags & DISASM_CALL))
                        reach(f, next, n.ctx, ifm, &out);
                return;
        }
        if (in.flags & DISASM_REP)
                reach(f, n.la, n.ctx, ifm, &out); /* stopped between iterations */
        reach(f, next, n.ctx, ifm, &out);
}

void flow_run(struct flow *f, struct code *c, const struct flow_start *s)
{
        f->n = 0;
        f->nwork = 0;
        f->incomplete = false;
        f->inc_und = 0;
        f->inc_at = 0;
        f->unsure = false;
        f->oom = false;
        if (f->idx_cap)
                memset(f->idx, 0xff, f->idx_cap * sizeof(*f->idx));
        reach(f, s->la, s->ctx, s->ifm, &s->b);
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
