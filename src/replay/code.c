// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "code.h"

#define EMPTY_KEY UINT64_MAX

static uint64_t mix(uint64_t k)
{
        k ^= k >> 33;
        k *= 0xff51afd7ed558ccdull;
        k ^= k >> 33;
        return k;
}

static bool grow(void **p, size_t *cap, size_t need, size_t elem)
{
        size_t n = *cap ? *cap : 64;
        void *q;

        if (need <= *cap)
                return true;
        while (n < need)
                n *= 2;
        q = realloc(*p, n * elem);
        if (!q)
                return false;
        *p = q;
        *cap = n;
        return true;
}

int code_init(struct code *c, struct disasm *dis, uint64_t mem_size)
{
        memset(c, 0, sizeof(*c));
        c->dis = dis;
        c->ram = calloc(1, mem_size ? mem_size : 1);
        if (!c->ram)
                return -ENOMEM;
        c->mem.ram = c->ram;
        c->mem.size = mem_size;
        return 0;
}

void code_free(struct code *c)
{
        free(c->ram);
        free(c->ov_key);
        free(c->ov_val);
        free(c->nodes);
        free(c->node_idx);
        free(c->edges);
        free(c->ctxs);
        free(c->work);
        memset(c, 0, sizeof(*c));
}

void code_load(struct code *c, uint64_t gpa, const uint8_t *data, size_t len)
{
        if (gpa >= c->mem.size)
                return;
        if (len > c->mem.size - gpa)
                len = (size_t)(c->mem.size - gpa);
        memcpy(c->ram + gpa, data, len);
}

/* ---- overlay ---------------------------------------------------------------- */

static size_t ov_slot(const struct code *c, uint64_t la)
{
        size_t i = (size_t)mix(la) & (c->ov_cap - 1);

        while (c->ov_key[i] != EMPTY_KEY && c->ov_key[i] != la)
                i = (i + 1) & (c->ov_cap - 1);
        return i;
}

static bool ov_rehash(struct code *c)
{
        size_t old_cap = c->ov_cap, cap = old_cap ? old_cap * 2 : 1024;
        uint64_t *old_key = c->ov_key;
        uint8_t *old_val = c->ov_val;

        c->ov_key = malloc(cap * sizeof(*c->ov_key));
        c->ov_val = malloc(cap);
        if (!c->ov_key || !c->ov_val) {
                free(c->ov_key);
                free(c->ov_val);
                c->ov_key = old_key;
                c->ov_val = old_val;
                return false;
        }
        memset(c->ov_key, 0xff, cap * sizeof(*c->ov_key));
        c->ov_cap = cap;
        for (size_t i = 0; i < old_cap; i++) {
                if (old_key[i] == EMPTY_KEY)
                        continue;
                size_t s = ov_slot(c, old_key[i]);

                c->ov_key[s] = old_key[i];
                c->ov_val[s] = old_val[i];
        }
        free(old_key);
        free(old_val);
        return true;
}

void code_overlay(struct code *c, uint64_t la, const uint8_t *bytes, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                size_t s;

                if ((c->ov_len + 1) * 2 > c->ov_cap && !ov_rehash(c))
                        return;
                s = ov_slot(c, la + i);
                if (c->ov_key[s] == EMPTY_KEY) {
                        c->ov_key[s] = la + i;
                        c->ov_len++;
                }
                c->ov_val[s] = bytes[i];
        }
}

/* ---- contexts and reading ---------------------------------------------------- */

struct code_ctx code_ctx_of(const struct trace_vcpu_state *st)
{
        struct code_ctx x = {
                .cr0 = st->cr0,
                .cr3 = st->cr3,
                .cr4 = st->cr4,
                .efer = st->efer,
                .cs_base = trace_state_code_bits(st) == 64 ? 0 : st->seg[TRACE_CS].base,
                .bits = trace_state_code_bits(st),
        };
        return x;
}

uint32_t code_ctx_add(struct code *c, const struct code_ctx *ctx)
{
        for (size_t i = 0; i < c->nctxs; i++)
                if (!memcmp(&c->ctxs[i], ctx, sizeof(*ctx)))
                        return (uint32_t)i;
        if (!grow((void **)&c->ctxs, &c->ctxs_cap, c->nctxs + 1, sizeof(*c->ctxs)))
                return 0;
        c->ctxs[c->nctxs] = *ctx;
        return (uint32_t)c->nctxs++;
}

static void ctx_state(const struct code_ctx *ctx, struct trace_vcpu_state *st)
{
        memset(st, 0, sizeof(*st));
        st->cr0 = ctx->cr0;
        st->cr3 = ctx->cr3;
        st->cr4 = ctx->cr4;
        st->efer = ctx->efer;
}

size_t code_read(const struct code *c, const struct code_ctx *ctx, uint64_t la, uint8_t *buf,
                 size_t n)
{
        struct trace_vcpu_state st;
        size_t got;

        ctx_state(ctx, &st);
        got = x86_read_linear(&c->mem, &st, la, buf, n);
        if (!c->ov_cap)
                return got;
        for (size_t i = 0; i < n; i++) {
                size_t s = ov_slot(c, la + i);

                if (c->ov_key[s] == la + i) {
                        buf[i] = c->ov_val[s];
                        if (i >= got)
                                got = i + 1;
                } else if (i >= got) {
                        break;
                }
        }
        return got;
}

static uint64_t offset_mask(unsigned bits)
{
        return bits == 16 ? 0xffffull : bits == 32 ? 0xffffffffull : ~0ull;
}

int code_decode(struct code *c, const struct code_ctx *ctx, uint64_t la, struct disasm_insn *insn)
{
        uint8_t buf[15];
        size_t n = code_read(c, ctx, la, buf, sizeof(buf));
        uint64_t off = (la - ctx->cs_base) & offset_mask(ctx->bits);

        if (!n || disasm_decode(c->dis, ctx->bits, buf, n, off, insn))
                return -EINVAL;
        insn->addr = la;
        /* disasm wrapped near targets at their operand size already. */
        if (insn->has_target && !(insn->flags & DISASM_FAR))
                insn->target = ctx->cs_base + insn->target;
        if (ctx->bits != 64)
                insn->target &= 0xffffffffull;
        return 0;
}

/* ---- nodes and edges -------------------------------------------------------- */

static uint64_t node_key(uint64_t la, unsigned bits)
{
        return (la << 2) | (bits == 16 ? 0 : bits == 32 ? 1 : 2);
}

static size_t idx_slot(const struct code *c, uint64_t la, unsigned bits)
{
        size_t i = (size_t)mix(node_key(la, bits)) & (c->idx_cap - 1);

        while (c->node_idx[i] != CODE_NONE) {
                const struct code_node *n = &c->nodes[c->node_idx[i]];

                if (n->addr == la && n->bits == bits)
                        break;
                i = (i + 1) & (c->idx_cap - 1);
        }
        return i;
}

static bool idx_rehash(struct code *c)
{
        size_t cap = c->idx_cap ? c->idx_cap * 2 : 1024;
        uint32_t *old = c->node_idx;

        c->node_idx = malloc(cap * sizeof(*c->node_idx));
        if (!c->node_idx) {
                c->node_idx = old;
                return false;
        }
        memset(c->node_idx, 0xff, cap * sizeof(*c->node_idx));
        c->idx_cap = cap;
        for (size_t i = 0; i < c->nnodes; i++)
                c->node_idx[idx_slot(c, c->nodes[i].addr, c->nodes[i].bits)] = (uint32_t)i;
        free(old);
        return true;
}

struct code_node *code_node(struct code *c, uint64_t la, unsigned bits)
{
        size_t s;

        if (!c->idx_cap)
                return NULL;
        s = idx_slot(c, la, bits);
        return c->node_idx[s] == CODE_NONE ? NULL : &c->nodes[c->node_idx[s]];
}

/* The node for (la, ctx), created undecoded and queued if new. */
static uint32_t node_get(struct code *c, uint64_t la, uint32_t ctx)
{
        unsigned bits = c->ctxs[ctx].bits;
        struct code_node *n;
        size_t s;

        if ((c->nnodes + 1) * 2 > c->idx_cap && !idx_rehash(c))
                return CODE_NONE;
        s = idx_slot(c, la, bits);
        if (c->node_idx[s] != CODE_NONE)
                return c->node_idx[s];
        if (!grow((void **)&c->nodes, &c->nodes_cap, c->nnodes + 1, sizeof(*c->nodes)) ||
            !grow((void **)&c->work, &c->work_cap, c->nwork + 1, sizeof(*c->work)))
                return CODE_NONE;
        n = &c->nodes[c->nnodes];
        memset(n, 0, sizeof(*n));
        n->addr = la;
        n->bits = (uint8_t)bits;
        n->ctx = ctx;
        n->pred = CODE_NONE;
        c->node_idx[s] = (uint32_t)c->nnodes;
        c->work[c->nwork++] = (uint32_t)c->nnodes;
        return (uint32_t)c->nnodes++;
}

static void add_edge(struct code *c, uint32_t from, uint32_t to)
{
        struct code_node *n;

        if (from == CODE_NONE || to == CODE_NONE)
                return;
        n = &c->nodes[to];
        for (uint32_t e = n->pred; e != CODE_NONE; e = c->edges[e].next)
                if (c->edges[e].from == from)
                        return;
        if (!grow((void **)&c->edges, &c->edges_cap, c->nedges + 1, sizeof(*c->edges)))
                return;
        c->edges[c->nedges].from = from;
        c->edges[c->nedges].next = n->pred;
        n->pred = (uint32_t)c->nedges++;
}

void code_seed(struct code *c, uint64_t la, uint32_t ctx)
{
        uint32_t n = node_get(c, la, ctx);

        if (n != CODE_NONE)
                c->nodes[n].seeded = true;
}

/* Decode one node and queue its successors. */
static void visit(struct code *c, uint32_t idx)
{
        struct code_node *n = &c->nodes[idx];
        struct code_ctx ctx = c->ctxs[n->ctx];
        struct disasm_insn insn;
        uint32_t flags, next;
        uint64_t fall;

        if (n->status != CODE_UNDECODED)
                return;
        if (code_decode(c, &ctx, n->addr, &insn)) {
                n->status = CODE_BAD;
                return;
        }
        n->status = CODE_OK;
        n->len = insn.len;
        n->flags = insn.flags;
        n->has_target = (uint8_t)insn.has_target;
        memcpy(n->bytes, insn.bytes, sizeof(n->bytes));
        flags = insn.flags;
        fall = n->addr + insn.len;
        if (ctx.bits != 64)
                fall = ctx.cs_base + ((fall - ctx.cs_base) & offset_mask(ctx.bits));

        if ((flags & (DISASM_JUMP | DISASM_CALL)) && !insn.has_target)
                if (!c->indirect++)
                        c->first_indirect = n->addr;

        if (insn.has_target) {
                struct code_ctx tctx = ctx;
                uint64_t target = insn.target;

                if (flags & DISASM_FAR) {
                        /* Real-mode reading of a far target; a mode switch is seeded by its exits.
                         */
                        tctx.cs_base = (uint64_t)insn.target_cs << 4;
                        target = tctx.cs_base + (insn.target & 0xffff);
                }
                n->target = target;
                next = node_get(c, target, code_ctx_add(c, &tctx));
                add_edge(c, idx, next);
                n = &c->nodes[idx]; /* node_get may have moved the array */
        }
        /* Everything falls through except unconditional jumps, returns and far jumps. */
        bool ends = (flags & (DISASM_RET | DISASM_IRET)) ||
                    ((flags & DISASM_JUMP) && !(flags & DISASM_COND));

        if (!ends) {
                next = node_get(c, fall, n->ctx);
                add_edge(c, idx, next);
                if (next != CODE_NONE && (c->nodes[idx].flags & DISASM_CALL))
                        c->nodes[next].retsite = true;
        }
}

void code_build(struct code *c)
{
        while (c->nwork) {
                uint32_t idx = c->work[--c->nwork];

                visit(c, idx);
        }
}
