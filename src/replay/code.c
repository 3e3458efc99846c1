// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "code.h"

#define PAGE_SHIFT 12
#define NO_GPA     UINT64_MAX
#define PAGE_SIZE  (1ull << PAGE_SHIFT)

/* page_hot bits */
#define HOT_CODE 0x1 /* decoded instruction bytes were read from the page */
#define HOT_PT   0x2 /* paging entries were read from it */

/* One cached decode; valid while the generations of its pages are unchanged. */
struct code_entry {
        uint64_t la;
        uint32_t ctx;
        bool used;
        bool paged; /* read through page tables */
        uint8_t n0; /* bytes of the instruction on its first page */
        uint8_t missing;
        uint64_t gpa0; /* guest-physical address of the first byte */
        uint64_t gpa1; /* ... of the first byte on the second page (n0 < len) */
        uint64_t gen;  /* c->gen when decoded */
        struct code_insn insn;
};

static uint64_t mix(uint64_t k)
{
        k ^= k >> 33;
        k *= 0xff51afd7ed558ccdull;
        k ^= k >> 33;
        return k;
}

static bool grow(void **p, size_t *cap, size_t need, size_t elem)
{
        size_t n = *cap ? *cap : 16;
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
        c->npages = (mem_size + PAGE_SIZE - 1) >> PAGE_SHIFT;
        c->page_hot = calloc(1, c->npages ? c->npages : 1);
        if (!c->ram || !c->page_hot) {
                free(c->ram);
                free(c->page_hot);
                memset(c, 0, sizeof(*c)); /* code_free may follow: nothing to free twice */
                return -ENOMEM;
        }
        c->mem.ram = c->ram;
        c->mem.size = mem_size;
        return 0;
}

void code_free(struct code *c)
{
        free(c->ram);
        free(c->page_hot);
        free(c->wr);
        free(c->vol);
        free(c->ctxs);
        free(c->cache);
        free(c->ov_key);
        free(c->ov_val);
        memset(c, 0, sizeof(*c));
}

void code_load(struct code *c, uint64_t gpa, const uint8_t *data, size_t len)
{
        if (gpa >= c->mem.size)
                return;
        if (len > c->mem.size - gpa)
                len = (size_t)(c->mem.size - gpa);
        memcpy(c->ram + gpa, data, len);
        c->gen++;
}

/* ---- what is known where ----------------------------------------------------------- */

static bool range_hot(const struct code *c, uint64_t gpa, uint64_t len, unsigned what)
{
        for (uint64_t p = gpa >> PAGE_SHIFT; p <= (gpa + len - 1) >> PAGE_SHIFT && p < c->npages;
             p++)
                if (c->page_hot[p] & what)
                        return true;
        return false;
}

static void add_range(struct code *c, uint64_t gpa, uint64_t len)
{
        uint64_t end = gpa + len, stamp = c->stamp;

        /* Coalesce with every range it touches: the list stays short and disjoint. */
        for (size_t i = 0; i < c->nwr;) {
                struct code_range *r = &c->wr[i];

                if (r->gpa <= end && gpa <= r->gpa + r->len) {
                        /* The newer stamp: the merged range stays unsure at least as long. */
                        if (r->stamp > stamp)
                                stamp = r->stamp;
                        if (r->gpa < gpa)
                                gpa = r->gpa;
                        if (r->gpa + r->len > end)
                                end = r->gpa + r->len;
                        c->wr[i] = c->wr[--c->nwr];
                        continue;
                }
                i++;
        }
        if (!grow((void **)&c->wr, &c->wr_cap, c->nwr + 1, sizeof(*c->wr))) {
                /* Out of memory: the whole of RAM becomes unsure for this interval. */
                c->nwr = 0;
                gpa = 0;
                end = c->mem.size;
        }
        c->wr[c->nwr].gpa = gpa;
        c->wr[c->nwr].len = end - gpa;
        c->wr[c->nwr].stamp = stamp;
        c->nwr++;
}

void code_write(struct code *c, uint64_t gpa, const uint8_t *data, size_t len)
{
        if (!len || gpa >= c->mem.size)
                return;
        if (len > c->mem.size - gpa)
                len = (size_t)(c->mem.size - gpa);
        memcpy(c->ram + gpa, data, len);
        add_range(c, gpa, len);
        if (range_hot(c, gpa, len, HOT_CODE | HOT_PT))
                c->gen++;
}

void code_interval(struct code *c)
{
        c->nwr = 0;
        c->since = ++c->stamp;
}

uint64_t code_interval_keep(struct code *c)
{
        return ++c->stamp;
}

void code_unsure_since(struct code *c, uint64_t since)
{
        c->since = since;
}

void code_forget_before(struct code *c, uint64_t stamp)
{
        for (size_t i = 0; i < c->nwr;) {
                if (c->wr[i].stamp < stamp)
                        c->wr[i] = c->wr[--c->nwr];
                else
                        i++;
        }
}

static bool vol_bit(const struct code *c, uint64_t gpa)
{
        return c->vol && gpa < c->mem.size && (c->vol[gpa >> 3] & (1u << (gpa & 7)));
}

/* Whether paging entries may have changed during the current interval. */
static bool tables_unsure(const struct code *c)
{
        for (size_t i = 0; i < c->nwr; i++)
                if (c->wr[i].stamp >= c->since && range_hot(c, c->wr[i].gpa, c->wr[i].len, HOT_PT))
                        return true;
        return false;
}

/* ---- bytes seen only at exits ------------------------------------------------------ */

#define OV_EMPTY UINT64_MAX

static size_t ov_slot(const struct code *c, uint64_t la)
{
        size_t i = (size_t)mix(la) & (c->ov_cap - 1);

        while (c->ov_key[i] != OV_EMPTY && c->ov_key[i] != la)
                i = (i + 1) & (c->ov_cap - 1);
        return i;
}

static bool ov_grow(struct code *c)
{
        size_t old_cap = c->ov_cap, cap = old_cap ? old_cap * 2 : 256;
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
                if (old_key[i] == OV_EMPTY)
                        continue;
                size_t s = ov_slot(c, old_key[i]);

                c->ov_key[s] = old_key[i];
                c->ov_val[s] = old_val[i];
        }
        free(old_key);
        free(old_val);
        return true;
}

static void ov_put(struct code *c, uint64_t la, uint8_t b)
{
        size_t s;

        if ((c->ov_len + 1) * 2 > c->ov_cap && !ov_grow(c))
                return;
        s = ov_slot(c, la);
        if (c->ov_key[s] == OV_EMPTY) {
                c->ov_key[s] = la;
                c->ov_len++;
        } else if (c->ov_val[s] == b) {
                return;
        }
        c->ov_val[s] = b;
        c->gen++;
}

static bool ov_get(const struct code *c, uint64_t la, uint8_t *b)
{
        size_t s;

        if (!c->ov_cap)
                return false;
        s = ov_slot(c, la);
        if (c->ov_key[s] != la)
                return false;
        *b = c->ov_val[s];
        return true;
}

/* ---- contexts and reading ---------------------------------------------------------- */

struct code_ctx code_ctx_of(const struct hvt_vcpu_state *st)
{
        struct code_ctx x = {
                .cr0 = st->cr0,
                .cr3 = st->cr3,
                .cr4 = st->cr4,
                .efer = st->efer,
                .cs_base = hvt_state_code_bits(st) == 64 ? 0 : st->seg[HVT_CS].base,
                .bits = hvt_state_code_bits(st),
        };
        return x;
}

/* Field by field: the struct's padding is not part of a context. */
static bool ctx_equal(const struct code_ctx *a, const struct code_ctx *b)
{
        return a->cr0 == b->cr0 && a->cr3 == b->cr3 && a->cr4 == b->cr4 && a->efer == b->efer &&
               a->cs_base == b->cs_base && a->bits == b->bits;
}

uint32_t code_ctx_add(struct code *c, const struct code_ctx *ctx)
{
        for (size_t i = 0; i < c->nctxs; i++)
                if (ctx_equal(&c->ctxs[i], ctx))
                        return (uint32_t)i;
        if (!grow((void **)&c->ctxs, &c->ctxs_cap, c->nctxs + 1, sizeof(*c->ctxs)))
                return 0;
        memset(&c->ctxs[c->nctxs], 0, sizeof(*c->ctxs));
        c->ctxs[c->nctxs].cr0 = ctx->cr0;
        c->ctxs[c->nctxs].cr3 = ctx->cr3;
        c->ctxs[c->nctxs].cr4 = ctx->cr4;
        c->ctxs[c->nctxs].efer = ctx->efer;
        c->ctxs[c->nctxs].cs_base = ctx->cs_base;
        c->ctxs[c->nctxs].bits = ctx->bits;
        return (uint32_t)c->nctxs++;
}

static void ctx_state(const struct code_ctx *ctx, struct hvt_vcpu_state *st)
{
        memset(st, 0, sizeof(*st));
        st->cr0 = ctx->cr0;
        st->cr3 = ctx->cr3;
        st->cr4 = ctx->cr4;
        st->efer = ctx->efer;
}

static bool paged(const struct code_ctx *ctx)
{
        return x86_paging_on(ctx->cr0);
}

size_t code_read(const struct code *c, const struct code_ctx *ctx, uint64_t la, uint8_t *buf,
                 size_t n)
{
        struct hvt_vcpu_state st;

        /* Without paging, within RAM and not wrapping: the bytes at la itself (the usual case). */
        if (!paged(ctx) && la < c->mem.size && n <= c->mem.size - la &&
            (!(ctx->cr0 & X86_CR0_PE) || la + n <= 0x100000000ull)) {
                memcpy(buf, c->ram + la, n);
                return n;
        }
        ctx_state(ctx, &st);
        return x86_read_linear(&c->mem, &st, la, buf, n);
}

/*
 * Translate la, marking the pages paging entries came from.  Returns 0 and
 * *gpa, or -EFAULT.
 */
static int translate(struct code *c, const struct code_ctx *ctx, uint64_t la, uint64_t *gpa)
{
        struct hvt_vcpu_state st;
        uint64_t ent[X86_MAX_WALK];
        unsigned n = 0;
        int err;

        if (!paged(ctx)) {
                /* x86_translate_logged without paging, minus building a state for it. */
                *gpa = (ctx->cr0 & X86_CR0_PE) ? (la & 0xffffffffull) : la;
                return *gpa < c->mem.size ? 0 : -EFAULT;
        }
        ctx_state(ctx, &st);
        err = x86_translate_logged(&c->mem, &st, la, gpa, ent, &n);
        for (unsigned i = 0; i < n; i++)
                if ((ent[i] >> PAGE_SHIFT) < c->npages)
                        c->page_hot[ent[i] >> PAGE_SHIFT] |= HOT_PT;
        return err;
}

/*
 * Bit i for each of the chunk (at most 32) bytes at gpa not known at this
 * point (all of them with tables: the page tables themselves may have
 * changed): each written range is intersected once.
 */
static uint32_t chunk_unsure(const struct code *c, bool tables, uint64_t gpa, uint64_t chunk)
{
        uint64_t all = chunk >= 32 ? 0xffffffffull : (1ull << chunk) - 1;
        uint32_t mask = 0;

        if (tables)
                return (uint32_t)all;
        for (size_t i = 0; i < c->nwr; i++) {
                const struct code_range *r = &c->wr[i];
                uint64_t lo = r->gpa > gpa ? r->gpa : gpa;
                uint64_t hi = r->gpa + r->len < gpa + chunk ? r->gpa + r->len : gpa + chunk;

                if (r->stamp < c->since || lo >= hi)
                        continue;
                mask |= (uint32_t)((hi - lo >= 32 ? 0xffffffffull : (1ull << (hi - lo)) - 1)
                                   << (lo - gpa));
        }
        if (c->vol)
                for (uint64_t i = 0; i < chunk; i++)
                        if (vol_bit(c, gpa + i))
                                mask |= 1u << i;
        return mask;
}

/* Whether any byte of [gpa, gpa+len) (len <= 32) is not known at this point. */
static bool range_unsure(const struct code *c, uint64_t gpa, uint64_t len)
{
        return chunk_unsure(c, false, gpa, len) != 0;
}

/*
 * Read up to n (<= 16) bytes at la; bit i of *unsure set for byte i not
 * known at this point.  Returns the bytes read (stops at a hole).
 */
static size_t read_mask(struct code *c, const struct code_ctx *ctx, uint64_t la, uint8_t *buf,
                        size_t n, uint32_t *unsure)
{
        bool tables = paged(ctx) && tables_unsure(c);
        size_t done = 0;

        *unsure = 0;
        while (done < n) {
                uint64_t gpa, chunk;

                if (translate(c, ctx, la + done, &gpa)) {
                        /* Only an exit showed this byte (its page tables are not in the trace). */
                        if (!ov_get(c, la + done, &buf[done]))
                                break;
                        done++;
                        continue;
                }
                chunk = PAGE_SIZE - ((la + done) & (PAGE_SIZE - 1));
                if (chunk > n - done)
                        chunk = n - done;
                if (chunk > c->mem.size - gpa)
                        chunk = c->mem.size - gpa;
                memcpy(buf + done, c->ram + gpa, chunk);
                *unsure |= chunk_unsure(c, tables, gpa, chunk) << done;
                done += chunk;
        }
        return done;
}

size_t code_read_sure(struct code *c, const struct code_ctx *ctx, uint64_t la, uint8_t *buf,
                      size_t n, bool *unsure)
{
        size_t done = 0;

        *unsure = false;
        while (done < n) {
                uint32_t mask;
                size_t want = n - done > 16 ? 16 : n - done, got;

                got = read_mask(c, ctx, la + done, buf + done, want, &mask);
                *unsure |= mask != 0;
                done += got;
                if (got < want)
                        break;
        }
        return done;
}

static uint64_t offset_mask(unsigned bits)
{
        return bits == 16 ? 0xffffull : bits == 32 ? 0xffffffffull : ~0ull;
}

uint64_t code_back(const struct code *c, uint32_t ctx, uint64_t la, unsigned k)
{
        const struct code_ctx *x = &c->ctxs[ctx];

        if (x->bits == 64)
                return la - k;
        return (x->cs_base + ((la - x->cs_base - k) & offset_mask(x->bits))) & 0xffffffffull;
}

uint64_t code_next(const struct code *c, uint32_t ctx, uint64_t la, unsigned len)
{
        const struct code_ctx *x = &c->ctxs[ctx];

        if (x->bits == 64)
                return la + len;
        return (x->cs_base + ((la - x->cs_base + len) & offset_mask(x->bits))) & 0xffffffffull;
}

int code_decode(struct code *c, const struct code_ctx *ctx, uint64_t la, struct disasm_insn *insn)
{
        uint8_t buf[15];
        uint32_t unsure;
        size_t n = read_mask(c, ctx, la, buf, sizeof(buf), &unsure);
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

/* Fill out from decoding buf[0..n) as the instruction at la; -EINVAL if it does not decode. */
static int decode_into(struct code *c, const struct code_ctx *ctx, const uint8_t *buf, size_t n,
                       uint64_t la, struct code_insn *out)
{
        uint64_t off = (la - ctx->cs_base) & offset_mask(ctx->bits);
        const struct disasm_insn *in;

        memset(out, 0, sizeof(*out));
        out->int_vector = -1;
        out->io_port = -1;
        /* Only the fields below are read: the text stays where the decoder keeps it. */
        if (!n || !(in = disasm_decode_ref(c->dis, ctx->bits, buf, n, off)))
                return -EINVAL;
        out->len = in->len;
        out->flags = in->flags;
        out->has_target = (uint8_t)in->has_target;
        out->int_vector = (int16_t)in->int_vector;
        out->io_port = in->io_port;
        out->sp_write = in->sp_write;
        out->target_cs = in->target_cs;
        out->target = in->target;
        if (in->has_target && !(in->flags & DISASM_FAR)) {
                out->target = ctx->cs_base + in->target;
                if (ctx->bits != 64)
                        out->target &= 0xffffffffull;
        }
        memcpy(out->bytes, buf, in->len);
        return 0;
}

int code_insn_bytes(struct code *c, const uint8_t *bytes, size_t n, uint64_t la, uint32_t ctx,
                    struct code_insn *out)
{
        if (n && n <= sizeof(c->last_bytes) && n == c->last_n && la == c->last_la &&
            ctx == c->last_ctx && !memcmp(bytes, c->last_bytes, n)) {
                *out = c->last_insn;
                return CODE_OK;
        }
        if (ctx >= c->nctxs || decode_into(c, &c->ctxs[ctx], bytes, n, la, out)) {
                memset(out, 0, sizeof(*out));
                out->int_vector = -1;
                out->status = CODE_MISSING;
                return CODE_MISSING;
        }
        out->status = CODE_OK;
        if (n <= sizeof(c->last_bytes)) {
                c->last_insn = *out;
                c->last_la = la;
                c->last_ctx = ctx;
                c->last_n = (uint8_t)n;
                memcpy(c->last_bytes, bytes, n);
        }
        return CODE_OK;
}

/* ---- the decode cache -------------------------------------------------------------- */

static size_t cache_slot(const struct code *c, uint64_t la, uint32_t ctx)
{
        size_t i = (size_t)mix(la * 31 + ctx) & (c->cache_cap - 1);

        while (c->cache[i].used && (c->cache[i].la != la || c->cache[i].ctx != ctx))
                i = (i + 1) & (c->cache_cap - 1);
        return i;
}

static bool cache_grow(struct code *c)
{
        size_t old_cap = c->cache_cap, cap = old_cap ? old_cap * 2 : 1024;
        struct code_entry *old = c->cache;

        c->cache = calloc(cap, sizeof(*c->cache));
        if (!c->cache) {
                c->cache = old;
                return false;
        }
        c->cache_cap = cap;
        for (size_t i = 0; i < old_cap; i++)
                if (old[i].used)
                        c->cache[cache_slot(c, old[i].la, old[i].ctx)] = old[i];
        free(old);
        return true;
}

/* Decode (la, ctx) from the view into e (uncached). */
static void decode_entry(struct code *c, uint64_t la, uint32_t ctxn, struct code_entry *e)
{
        const struct code_ctx *ctx = &c->ctxs[ctxn];
        uint8_t buf[15];
        uint32_t unsure;
        size_t n = read_mask(c, ctx, la, buf, sizeof(buf), &unsure);
        uint64_t gpa;

        e->la = la;
        e->ctx = ctxn;
        e->used = true;
        e->paged = paged(ctx);
        e->gen = c->gen;
        e->missing = 0;
        if (decode_into(c, ctx, buf, n, la, &e->insn)) {
                if (n < sizeof(buf)) {
                        /* It may continue into a hole: nothing can be said. */
                        e->missing = 1;
                        e->insn.status = CODE_MISSING;
                        return;
                }
                /* Fifteen bytes that decode to nothing: #UD. */
                e->insn.len = 1;
                e->insn.flags = DISASM_UD;
                e->insn.bytes[0] = buf[0];
        }
        e->n0 = e->insn.len;
        e->gpa0 = e->gpa1 = NO_GPA;
        if (!translate(c, ctx, la, &gpa)) {
                uint64_t room = PAGE_SIZE - (la & (PAGE_SIZE - 1));

                e->gpa0 = gpa;
                if (room < e->insn.len) {
                        e->n0 = (uint8_t)room;
                        if (!translate(c, ctx, la + room, &gpa))
                                e->gpa1 = gpa;
                }
        }
        if (e->gpa0 != NO_GPA)
                c->page_hot[e->gpa0 >> PAGE_SHIFT] |= HOT_CODE;
        if (e->n0 < e->insn.len && e->gpa1 != NO_GPA)
                c->page_hot[e->gpa1 >> PAGE_SHIFT] |= HOT_CODE;
}

/*
 * Whether e, decoded before the last write to a hot page, still holds:
 * without paging its bytes are where they were, and decoding reads an
 * instruction's bytes in order and stops at its end, so the same bytes
 * decode the same whatever follows them.  A guest that keeps a counter in
 * its code page would otherwise have every instruction decoded again at
 * every exit.  Not for LOCK, whose check may read on, nor for #UD, which
 * may depend on all 15 bytes.
 */
static bool entry_holds(const struct code *c, const struct code_entry *e)
{
        const struct code_insn *x = &e->insn;

        if (e->paged || e->missing || e->gpa0 == NO_GPA || (x->flags & DISASM_UD) ||
            memchr(x->bytes, 0xf0, x->len))
                return false;
        if (e->gpa0 + e->n0 > c->mem.size || memcmp(c->ram + e->gpa0, x->bytes, e->n0))
                return false;
        if (e->n0 == x->len)
                return true;
        return e->gpa1 != NO_GPA && e->gpa1 + (x->len - e->n0) <= c->mem.size &&
               !memcmp(c->ram + e->gpa1, x->bytes + e->n0, x->len - e->n0);
}

int code_insn(struct code *c, uint64_t la, uint32_t ctx, struct code_insn *out)
{
        struct code_entry *e, tmp;
        size_t s;

        if (ctx >= c->nctxs) {
                memset(out, 0, sizeof(*out));
                out->int_vector = -1;
                out->status = CODE_MISSING;
                return CODE_MISSING;
        }
        if ((c->cache_used + 1) * 2 > c->cache_cap && !cache_grow(c)) {
                e = &tmp;
                decode_entry(c, la, ctx, e);
        } else {
                s = cache_slot(c, la, ctx);
                e = &c->cache[s];
                if (!e->used) {
                        c->cache_used++;
                        decode_entry(c, la, ctx, e);
                } else if (e->gen != c->gen) {
                        if (entry_holds(c, e))
                                e->gen = c->gen;
                        else
                                decode_entry(c, la, ctx, e);
                }
        }
        *out = e->insn;
        if (e->missing)
                return out->status = CODE_MISSING;
        out->status = CODE_OK;
        if ((e->paged && tables_unsure(c)) ||
            (e->gpa0 != NO_GPA && range_unsure(c, e->gpa0, e->n0)) ||
            (e->n0 < e->insn.len && e->gpa1 != NO_GPA &&
             range_unsure(c, e->gpa1, e->insn.len - e->n0)))
                out->status = CODE_UNSURE;
        return out->status;
}

/* ---- what can end at a boundary ---------------------------------------------------- */

/*
 * The 15 bytes before la (in code order, buf[14] just before la) as far as
 * they exist; returns how many (a suffix of buf), *unsure for unknown ones.
 */
static size_t read_before(struct code *c, uint64_t la, uint32_t ctxn, uint8_t buf[15], bool *unsure)
{
        const struct code_ctx *ctx = &c->ctxs[ctxn];
        uint64_t start = code_back(c, ctxn, la, 15);
        size_t n = 0;

        *unsure = false;
        if (code_next(c, ctxn, start, 15) == la && start < la) {
                /* No wrap: one read, then keep the part that exists right up to la. */
                uint8_t tmp[15];
                uint32_t mask;
                size_t got;

                for (size_t skip = 0; skip < 15; skip++) {
                        got = read_mask(c, ctx, start + skip, tmp, 15 - skip, &mask);
                        if (got == 15 - skip) {
                                memcpy(buf + skip, tmp, got);
                                *unsure = mask != 0;
                                return got;
                        }
                }
                return 0;
        }
        /* A 16-bit segment wraps inside the window: byte by byte, nearest first. */
        for (unsigned k = 1; k <= 15; k++) {
                uint32_t mask;
                uint8_t b;

                if (read_mask(c, ctx, code_back(c, ctxn, la, k), &b, 1, &mask) != 1)
                        break;
                buf[15 - k] = b;
                *unsure |= mask != 0;
                n++;
        }
        return n;
}

bool code_delaying_before(struct code *c, uint64_t la, uint32_t ctx, uint16_t *lens)
{
        uint8_t buf[15];
        bool unsure;
        size_t n;

        *lens = 0;
        if (ctx >= c->nctxs)
                return false;
        n = read_before(c, la, ctx, buf, &unsure);
        *lens = disasm_delaying_ending(c->ctxs[ctx].bits, buf + 15 - n, n);
        return !unsure;
}

/*
 * Whether an instruction that want() accepts ends exactly at la: 1 with *at
 * its address, 0 if none does, -1 if bytes before la are unknown.
 */
static int ending_before(struct code *c, uint64_t la, uint32_t ctx,
                         bool (*want)(const struct code_insn *in, unsigned arg), unsigned arg,
                         bool (*may_end)(const uint8_t *end, size_t n), uint64_t *at)
{
        uint8_t buf[15];
        bool unsure;
        size_t n;

        if (ctx >= c->nctxs)
                return -1;
        n = read_before(c, la, ctx, buf, &unsure);
        if (!may_end(buf + 15 - n, n))
                return unsure ? -1 : 0;
        for (size_t k = 1; k <= n; k++) {
                struct code_insn in;
                uint64_t a = code_back(c, ctx, la, (unsigned)k);

                if (decode_into(c, &c->ctxs[ctx], buf + 15 - k, k, a, &in) || in.len != k)
                        continue;
                if (want(&in, arg)) {
                        *at = a;
                        return 1;
                }
        }
        return unsure ? -1 : 0;
}

/*
 * Cheap tests on the bytes before a boundary, code[0..n) ending there, that
 * fail only when no instruction want() accepts can end at it: each decode
 * of a suffix costs a memo lookup or capstone, up to fifteen per boundary,
 * and a delivery's boundary nearly never follows an INT or an SS load.
 *
 * INT n (cd ib), INT3 (cc), INTO (ce) and INT1 (f1) end in their opcode or
 * its imm8 (prefixes come first), and only the classifier sets a vector.
 */
static bool may_end_int(const uint8_t *code, size_t n)
{
        const uint8_t *end = code + n;

        return n && (end[-1] == 0xcc || end[-1] == 0xce || end[-1] == 0xf1 ||
                     (n >= 2 && end[-2] == 0xcd));
}

/*
 * POP SS is 17 and ends in it; MOV SS is 8e ModRM [SIB] [disp32], its
 * opcode among the last 7 bytes (what disasm_delaying_ending assumes too).
 */
static bool may_end_ssload(const uint8_t *code, size_t n)
{
        size_t near = n < 7 ? n : 7;

        return n && (code[n - 1] == 0x17 || memchr(code + n - near, 0x8e, near));
}

static bool is_int_of(const struct code_insn *in, unsigned vector)
{
        return (in->flags & DISASM_INT) && in->int_vector == (int)vector;
}

static bool is_ssload(const struct code_insn *in, unsigned unused)
{
        (void)unused;
        return (in->flags & (DISASM_MOV_SS | DISASM_POP_SS)) && !(in->flags & DISASM_UD);
}

int code_int_before(struct code *c, uint64_t la, uint32_t ctx, unsigned vector, uint64_t *at)
{
        return ending_before(c, la, ctx, is_int_of, vector, may_end_int, at);
}

int code_ssload_before(struct code *c, uint64_t la, uint32_t ctx, uint64_t *at)
{
        return ending_before(c, la, ctx, is_ssload, 0, may_end_ssload, at);
}

/* ---- exits' own bytes -------------------------------------------------------------- */

bool code_exit_bytes(struct code *c, const struct code_ctx *ctx, uint64_t la, const uint8_t *bytes,
                     size_t n)
{
        bool changed = false, mapped = false;
        uint64_t gpa = 0;

        /* Nearly always the bytes are those already known: one compare says so. */
        if (n && ((la & (PAGE_SIZE - 1)) + n <= PAGE_SIZE) && !translate(c, ctx, la, &gpa) &&
            gpa + n <= c->mem.size && !memcmp(c->ram + gpa, bytes, n))
                return false;
        for (size_t i = 0; i < n; i++) {
                /* One translation per page: the bytes of a page are contiguous. */
                if (i == 0 || !((la + i) & (PAGE_SIZE - 1)))
                        mapped = !translate(c, ctx, la + i, &gpa);
                else
                        gpa++;
                if (!mapped || gpa >= c->mem.size) {
                        ov_put(c, la + i, bytes[i]);
                        continue;
                }
                if (c->ram[gpa] == bytes[i])
                        continue;
                c->ram[gpa] = bytes[i];
                changed = true;
                if (range_hot(c, gpa, 1, HOT_CODE | HOT_PT))
                        c->gen++;
        }
        return changed;
}

void code_mark_volatile(struct code *c, struct code *via, const struct code_ctx *ctx, uint64_t la,
                        size_t n)
{
        if (!c->vol) {
                c->vol = calloc(1, (size_t)(c->mem.size + 7) / 8);
                if (!c->vol)
                        return;
        }
        for (size_t i = 0; i < n; i++) {
                uint64_t gpa;

                if (translate(via, ctx, la + i, &gpa) || gpa >= c->mem.size)
                        break;
                c->vol[gpa >> 3] |= (uint8_t)(1u << (gpa & 7));
        }
        c->gen++;
}

bool code_selector(struct code *c, uint32_t ctx, uint64_t gdt_base, uint16_t gdt_limit,
                   uint16_t sel, uint32_t *out, bool *unsure)
{
        struct code_ctx x = c->ctxs[ctx];
        uint8_t d[8];

        *unsure = false;
        if (!(x.cr0 & X86_CR0_PE)) {
                x.cs_base = (uint64_t)sel << 4;
                x.bits = 16;
                *out = code_ctx_add(c, &x);
                return true;
        }
        if ((sel & X86_SEL_TI) || (sel & X86_SEL_INDEX) + 7u > gdt_limit || !(sel & X86_SEL_INDEX))
                return false; /* the LDT, beyond the GDT, or the null selector */
        if (code_read_sure(c, &c->ctxs[ctx], gdt_base + (sel & X86_SEL_INDEX), d, 8, unsure) != 8 ||
            *unsure)
                return false;
        if (!x86_code_descriptor(d, x.efer & X86_EFER_LMA, &x.cs_base, &x.bits))
                return false;
        *out = code_ctx_add(c, &x);
        return true;
}
