// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../arch/x86.h"
#include "gen.h"

/* hvrec's GDT selectors (docs/guest-abi.md), which the hand-built frames name. */
#define GEN_SEL_CODE32 0x08
#define GEN_SEL_DATA   0x10
#define GEN_SEL_CODE64 0x18

#define GEN_MAX_ITEMS 4096
#define GEN_MAX_LOOPS 1000
#define GEN_MAX_FILL  6 /* instructions in a block a branch skips */

/* PIT channel 0 divisor: about 1.2 kHz, a tick every few hundred instructions under QEMU. */
#define GEN_PIT_DIVISOR 0x400

/* Harmless ports: 0x81-0x86 are nothing on any backend (guests/include/corpus.inc). */
#define GEN_PORT_LO 0x81
#define GEN_PORT_N  6

/* Segment overrides, meaningless on the instructions they prefix here. */
static const uint8_t seg_prefixes[] = { 0x2e, 0x3e, 0x26, 0x36 };

/* One-byte instructions a self-modifying store may put in place. */
static const uint8_t smc_ops[] = { 0x90, 0xf8, 0xf9, 0xf5, 0xfb, 0xfa };

struct emitter {
        uint8_t *buf;
        size_t len, cap;
        int err;
        enum gen_mode mode;
        int pic; /* interrupts from the PIT through the 8259, not port 0xE0 */
        int smc; /* self-modifying stores among the items */
        uint64_t rng;
        int if_set; /* IF before the next instruction, known statically */
        int shadow; /* enum gen_shadow of the boundary before the next instruction, or 0 */
        struct gen_bound *bounds;
        size_t nbounds, capbounds;
};

/* splitmix64: any seed, 0 included, gives a full-period stream. */
static uint64_t rnd(struct emitter *e)
{
        uint64_t z = (e->rng += 0x9e3779b97f4a7c15ull);

        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
}

static unsigned pick(struct emitter *e, unsigned n)
{
        return (unsigned)(rnd(e) % n);
}

static void put8(struct emitter *e, uint8_t b)
{
        if (e->err)
                return;
        if (e->len == e->cap) {
                size_t cap = e->cap ? e->cap * 2 : 4096;
                uint8_t *p = realloc(e->buf, cap);

                if (!p) {
                        e->err = -ENOMEM;
                        return;
                }
                e->buf = p;
                e->cap = cap;
        }
        e->buf[e->len++] = b;
}

static void put16(struct emitter *e, uint16_t v)
{
        put8(e, (uint8_t)v);
        put8(e, (uint8_t)(v >> 8));
}

static void put32(struct emitter *e, uint32_t v)
{
        put16(e, (uint16_t)v);
        put16(e, (uint16_t)(v >> 16));
}

/* An immediate or displacement of the code size (16, or 32 also in 64-bit code). */
static void put_word(struct emitter *e, uint32_t v)
{
        if (e->mode == GEN_MODE_REAL)
                put16(e, (uint16_t)v);
        else
                put32(e, v);
}

static unsigned word_size(const struct emitter *e)
{
        return e->mode == GEN_MODE_REAL ? 2 : 4;
}

static void patch_word(struct emitter *e, size_t at, uint32_t v)
{
        if (e->err)
                return;
        e->buf[at] = (uint8_t)v;
        e->buf[at + 1] = (uint8_t)(v >> 8);
        if (word_size(e) == 4) {
                e->buf[at + 2] = (uint8_t)(v >> 16);
                e->buf[at + 3] = (uint8_t)(v >> 24);
        }
}

static uint32_t here(const struct emitter *e)
{
        return GEN_LOAD_ADDR + (uint32_t)e->len;
}

/*
 * An instruction has been emitted: settle the boundary after it.  `cause`
 * is the shadow it opens (0 for none); in a run of delaying instructions
 * only the first one's shadow is guaranteed (SDM Vol. 2B, STI).
 */
static void retire(struct emitter *e, unsigned cause)
{
        struct gen_bound *b;

        if (!cause) {
                e->shadow = 0;
                return;
        }
        e->shadow = e->shadow ? GEN_SHADOW_SECOND : GEN_SHADOW_FIRST;
        if (e->err)
                return;
        if (e->nbounds == e->capbounds) {
                size_t cap = e->capbounds ? e->capbounds * 2 : 64;

                b = realloc(e->bounds, cap * sizeof(*b));
                if (!b) {
                        e->err = -ENOMEM;
                        return;
                }
                e->bounds = b;
                e->capbounds = cap;
        }
        e->bounds[e->nbounds++] = (struct gen_bound){ .addr = here(e),
                                                      .shadow = (uint8_t)e->shadow,
                                                      .cause = (uint8_t)cause,
                                                      .if_set = (uint8_t)e->if_set };
}

static void maybe_prefix(struct emitter *e)
{
        unsigned n = pick(e, 4) == 0 ? 1 + pick(e, 2) : 0;

        while (n--)
                put8(e, seg_prefixes[pick(e, sizeof(seg_prefixes))]);
}

/* An instruction that touches neither IF, the stack, BX (the SS value) nor CX (the loop). */
static void emit_plain(struct emitter *e)
{
        switch (pick(e, 9)) {
        case 0: put8(e, 0x90); break;                                          /* nop */
        case 1: put8(e, (uint8_t)(0xf8 + pick(e, 2))); break;                  /* clc / stc */
        case 2: put8(e, 0xf5); break;                                          /* cmc */
        case 3: put8(e, 0xff), put8(e, 0xc6); break;                           /* inc si */
        case 4: put8(e, 0x31), put8(e, 0xff); break;                           /* xor di, di */
        case 5: put8(e, 0x83), put8(e, 0xc2), put8(e, (uint8_t)rnd(e)); break; /* add dx, imm8 */
        case 6: put8(e, 0xf3), put8(e, 0x90); break;                           /* pause */
        case 7: put8(e, 0x66), put8(e, 0x90); break; /* operand-size nop */
        default:
                maybe_prefix(e);
                put8(e, 0x0f), put8(e, 0x1f), put8(e, 0xc0); /* nop eax (no memory) */
                break;
        }
        retire(e, 0);
}

static void emit_fill(struct emitter *e, unsigned max)
{
        for (unsigned n = pick(e, max + 1); n; n--)
                emit_plain(e);
}

static void emit_io(struct emitter *e)
{
        uint8_t port = (uint8_t)(GEN_PORT_LO + pick(e, GEN_PORT_N));

        switch (pick(e, 4)) {
        case 0: put8(e, 0xe6), put8(e, port); break; /* out imm8, al */
        case 1: put8(e, 0xe4), put8(e, port); break; /* in al, imm8 */
        default:
                /* mov dx, port; then out dx, al or in al, dx */
                if (e->mode != GEN_MODE_REAL)
                        put8(e, 0x66);
                put8(e, 0xba), put16(e, port);
                retire(e, 0);
                put8(e, pick(e, 2) ? 0xee : 0xec);
                break;
        }
        retire(e, 0);
}

/* mov al, val; out port, al */
static void emit_out(struct emitter *e, uint8_t port, uint8_t val)
{
        put8(e, 0xb0), put8(e, val);
        retire(e, 0);
        put8(e, 0xe6), put8(e, port);
        retire(e, 0);
}

/*
 * Ask hvrec for an interrupt (docs/guest-abi.md, port 0xE0).  Where the PIT
 * raises them nothing answers that port (qemu-tcg): plain I/O instead.
 */
static void emit_request(struct emitter *e)
{
        if (e->pic) {
                emit_io(e);
                return;
        }
        put8(e, 0xb0), put8(e, GEN_VECTOR); /* mov al, VECTOR */
        retire(e, 0);
        put8(e, 0xe6), put8(e, 0xe0); /* out 0xe0, al */
        retire(e, 0);
}

static void emit_cli(struct emitter *e)
{
        put8(e, 0xfa);
        e->if_set = 0;
        retire(e, 0);
}

static void emit_sti(struct emitter *e)
{
        int delays = !e->if_set;

        maybe_prefix(e);
        put8(e, 0xfb);
        e->if_set = 1;
        retire(e, delays ? GEN_CAUSE_STI : 0);
}

static void emit_mov_ss(struct emitter *e)
{
        maybe_prefix(e);
        put8(e, 0x8e), put8(e, 0xd3); /* mov ss, bx */
        retire(e, GEN_CAUSE_MOV_SS);
}

/*
 * A run of 1..3 interrupt-delaying instructions, then the instruction in
 * the shadow.  POP SS needs the SS value on the stack: its pushes come
 * first, so that nothing breaks the run.
 */
static void emit_sequence(struct emitter *e)
{
        unsigned n = 1 + pick(e, 3), kinds[3], i;

        switch (pick(e, 3)) {
        case 0: emit_cli(e); break;
        case 1:
                /* IF=1, so that MOV SS shadows can take an interrupt; the plain
                 * instruction closes the STI's own shadow first. */
                emit_sti(e);
                emit_plain(e);
                break;
        default: break;
        }
        for (i = 0; i < n; i++) {
                kinds[i] = pick(e, e->mode == GEN_MODE_LONG ? 2 : 3);
                if (kinds[i] == 2) {
                        put8(e, 0x53); /* push bx */
                        retire(e, 0);
                }
        }
        for (i = 0; i < n; i++) {
                switch (kinds[i]) {
                case 0: emit_sti(e); break;
                case 1: emit_mov_ss(e); break;
                default:
                        maybe_prefix(e);
                        put8(e, 0x17); /* pop ss */
                        retire(e, GEN_CAUSE_POP_SS);
                        break;
                }
        }
        switch (pick(e, 4)) {
        case 0: emit_io(e); break;
        case 1: emit_request(e); break;
        default: emit_plain(e); break;
        }
}

static uint32_t flags_image(int if_set)
{
        return (uint32_t)(X86_RFLAGS_FIXED | (if_set ? X86_RFLAGS_IF : 0));
}

/* push imm (the code size's word; sign-extended to 64 bits in long mode) */
static void emit_push_imm(struct emitter *e, uint32_t v)
{
        put8(e, 0x68);
        put_word(e, v);
        retire(e, 0);
}

static void emit_popf(struct emitter *e)
{
        int if_set = (int)pick(e, 2);

        emit_push_imm(e, flags_image(if_set));
        put8(e, 0x9d);
        e->if_set = if_set;
        retire(e, 0);
}

/* IRET to the next instruction through a frame built by hand. */
static void emit_iret(struct emitter *e)
{
        int if_set = (int)pick(e, 2);
        unsigned tail = 1 + word_size(e) + (e->mode == GEN_MODE_LONG ? 2 : 1);

        if (e->mode == GEN_MODE_LONG) {
                put8(e, 0x48), put8(e, 0x89), put8(e, 0xe0); /* mov rax, rsp */
                retire(e, 0);
                put8(e, 0x6a), put8(e, GEN_SEL_DATA); /* push ss */
                retire(e, 0);
                put8(e, 0x50); /* push rax */
                retire(e, 0);
                emit_push_imm(e, flags_image(if_set));
                put8(e, 0x6a), put8(e, GEN_SEL_CODE64); /* push cs */
                retire(e, 0);
        } else {
                emit_push_imm(e, flags_image(if_set));
                put8(e, 0x0e); /* push cs */
                retire(e, 0);
        }
        emit_push_imm(e, here(e) + tail);
        if (e->mode == GEN_MODE_LONG)
                put8(e, 0x48);
        put8(e, 0xcf);
        e->if_set = if_set;
        retire(e, 0);
}

/* jmp short over a block that never runs */
static void emit_jmp_over(struct emitter *e)
{
        size_t at;

        put8(e, 0xeb), put8(e, 0);
        at = e->len - 1;
        retire(e, 0);
        emit_fill(e, GEN_MAX_FILL);
        if (!e->err)
                e->buf[at] = (uint8_t)(e->len - at - 1);
}

/* test cl, 1; jz/jnz over a block: taken on every other loop */
static void emit_jcc_over(struct emitter *e)
{
        size_t at;

        put8(e, 0xf6), put8(e, 0xc1), put8(e, 0x01);
        retire(e, 0);
        put8(e, (uint8_t)(0x74 + pick(e, 2))), put8(e, 0);
        at = e->len - 1;
        retire(e, 0);
        emit_fill(e, GEN_MAX_FILL);
        if (!e->err)
                e->buf[at] = (uint8_t)(e->len - at - 1);
}

/* mov ax, target; jmp ax: an indirect branch over a block */
static void emit_jmp_indirect(struct emitter *e)
{
        size_t at;

        put8(e, 0xb8);
        at = e->len;
        put_word(e, 0);
        retire(e, 0);
        put8(e, 0xff), put8(e, 0xe0);
        retire(e, 0);
        emit_fill(e, GEN_MAX_FILL);
        patch_word(e, at, here(e));
}

/* call L1; jmp short L2; L1: ret; L2: (a return the checker cannot follow) */
static void emit_call_ret(struct emitter *e)
{
        put8(e, 0xe8);
        put_word(e, 2);
        retire(e, 0);
        put8(e, 0xeb), put8(e, 0x01);
        retire(e, 0);
        put8(e, 0xc3);
        retire(e, 0);
}

/*
 * A store of a one-byte instruction a few instructions ahead, which then
 * runs: the image holds another byte, so only the write records tell what
 * ran.
 */
static void emit_smc(struct emitter *e)
{
        unsigned k = pick(e, sizeof(smc_ops)), gap = pick(e, 3);
        uint8_t op = smc_ops[k];
        uint8_t old = smc_ops[(k + 1 + pick(e, sizeof(smc_ops) - 1)) % sizeof(smc_ops)];
        size_t at;

        put8(e, 0xc6);
        switch (e->mode) {
        case GEN_MODE_REAL: put8(e, 0x06); break;
        case GEN_MODE_PROTECTED: put8(e, 0x05); break;
        default: put8(e, 0x04), put8(e, 0x25); break; /* SIB: absolute disp32 */
        }
        at = e->len;
        put_word(e, 0);
        put8(e, op);
        retire(e, 0);
        while (gap--)
                emit_plain(e);
        patch_word(e, at, here(e));
        put8(e, old); /* what runs is `op`, never `old` */
        switch (op) {
        case 0xfb: {
                int delays = !e->if_set;

                e->if_set = 1;
                retire(e, delays ? GEN_CAUSE_STI : 0);
                break;
        }
        case 0xfa: e->if_set = 0, retire(e, 0); break;
        default: retire(e, 0); break;
        }
}

static void emit_item(struct emitter *e, struct gen_guest *g)
{
        switch (pick(e, 16)) {
        case 0:
        case 1:
        case 2:
        case 3:
        case 4: emit_sequence(e); break;
        case 5: emit_cli(e); break;
        case 6: emit_sti(e); break;
        case 7: emit_popf(e), g->popfs++; break;
        case 8: emit_iret(e), g->irets++; break;
        case 9: emit_io(e); break;
        case 10: emit_request(e), g->requests++; break;
        case 11: emit_jcc_over(e); break;
        case 12: emit_jmp_over(e); break;
        case 13: emit_jmp_indirect(e); break;
        case 14: emit_call_ret(e); break;
        default:
                if (e->smc)
                        emit_smc(e), g->smc++;
                else
                        emit_plain(e);
                break;
        }
}

/* Real mode: IVT entry; protected and long mode: lidt of the IDT built at the end. */
static size_t emit_prologue(struct emitter *e)
{
        size_t at;

        emit_cli(e);
        if (e->mode == GEN_MODE_REAL) {
                put8(e, 0xc7), put8(e, 0x06), put16(e, GEN_VECTOR * 4); /* mov word [v*4], isr */
                at = e->len;
                put16(e, 0);
                retire(e, 0);
                put8(e, 0xc7), put8(e, 0x06), put16(e, GEN_VECTOR * 4 + 2), put16(e, 0);
                retire(e, 0);
        } else {
                put8(e, 0x0f), put8(e, 0x01);
                if (e->mode == GEN_MODE_LONG)
                        put8(e, 0x1c), put8(e, 0x25); /* lidt [disp32] via SIB */
                else
                        put8(e, 0x1d); /* lidt [disp32] */
                at = e->len;
                put32(e, 0);
                retire(e, 0);
        }
        if (e->pic) {
                /* guests/include/pic.inc: IRQ0 at VECTOR, only it unmasked; PIT periodic. */
                static const uint8_t init[][2] = {
                        { 0x20, 0x11 },
                        { 0xa0, 0x11 },
                        { 0x21, GEN_VECTOR },
                        { 0xa1, GEN_VECTOR + 8 },
                        { 0x21, 0x04 },
                        { 0xa1, 0x02 },
                        { 0x21, 0x01 },
                        { 0xa1, 0x01 },
                        { 0x21, 0xfe },
                        { 0xa1, 0xff },
                        { 0x43, 0x34 },
                        { 0x40, GEN_PIT_DIVISOR & 0xff },
                        { 0x40, GEN_PIT_DIVISOR >> 8 },
                };

                for (size_t i = 0; i < sizeof(init) / sizeof(init[0]); i++)
                        emit_out(e, init[i][0], init[i][1]);
        }
        put8(e, 0x8c), put8(e, 0xd3); /* mov bx, ss: what every MOV SS / POP SS reloads */
        retire(e, 0);
        return at;
}

/* The IDT with the one gate, and its IDTR; returns the IDTR's address. */
static uint32_t emit_idt(struct emitter *e, uint32_t isr)
{
        unsigned gate = e->mode == GEN_MODE_LONG ? 16 : 8;
        uint32_t base, idtr;

        while (e->len % 16)
                put8(e, 0);
        base = here(e);
        for (unsigned v = 0; v < GEN_VECTOR; v++)
                for (unsigned i = 0; i < gate; i++)
                        put8(e, 0);
        put16(e, (uint16_t)isr);
        put16(e, e->mode == GEN_MODE_LONG ? GEN_SEL_CODE64 : GEN_SEL_CODE32);
        put8(e, 0);
        put8(e, 0x80 | X86_GATE_INT32); /* present, DPL 0, interrupt gate */
        put16(e, (uint16_t)(isr >> 16));
        if (gate == 16)
                put32(e, 0), put32(e, 0);
        idtr = here(e);
        put16(e, (uint16_t)((GEN_VECTOR + 1) * gate - 1));
        put32(e, base);
        if (gate == 16)
                put32(e, 0);
        return idtr;
}

void gen_opts_default(struct gen_opts *o)
{
        *o = (struct gen_opts){
                .seed = 1, .mode = GEN_MODE_REAL, .items = 48, .loops = 3, .hlt = 1, .smc = 1
        };
}

int gen_build(const struct gen_opts *o, struct gen_guest *g)
{
        struct emitter e = { .mode = o->mode, .pic = o->pic, .smc = o->smc, .rng = o->seed };
        size_t isr_at, body, at;

        memset(g, 0, sizeof(*g));
        if (o->mode < GEN_MODE_REAL || o->mode > GEN_MODE_LONG || !o->items ||
            o->items > GEN_MAX_ITEMS || !o->loops || o->loops > GEN_MAX_LOOPS)
                return -EINVAL;
        /* Mix the mode into the stream: one seed, three unrelated guests. */
        e.rng ^= (uint64_t)o->mode * 0xd1b54a32d192ed03ull;

        isr_at = emit_prologue(&e);
        put8(&e, 0xb9), put_word(&e, o->loops); /* mov cx, loops */
        retire(&e, 0);
        body = e.len;
        for (unsigned i = 0; i < o->items; i++)
                emit_item(&e, g);
        /* Every pass starts with IF=0, so the static IF above holds on each. */
        emit_cli(&e);
        put8(&e, 0xff), put8(&e, 0xc9); /* dec cx */
        retire(&e, 0);
        put8(&e, 0x0f), put8(&e, 0x85); /* jnz body */
        at = e.len;
        put_word(&e, 0);
        patch_word(&e, at, (uint32_t)(body - (at + word_size(&e))));
        retire(&e, 0);
        if (o->hlt) {
                if (!e.pic)
                        emit_request(&e);
                emit_sti(&e); /* the shadow covers the HLT: no wake-up is lost */
                put8(&e, 0xf4);
                retire(&e, 0);
        }
        put8(&e, 0xb0), put8(&e, 0); /* mov al, 0; out 0xf4, al */
        retire(&e, 0);
        put8(&e, 0xe6), put8(&e, 0xf4);
        retire(&e, 0);

        g->isr = here(&e);
        put8(&e, 0xe6), put8(&e, 0xe2); /* the probe, first in the handler */
        if (e.pic) {
                put8(&e, 0x50);                                 /* push ax */
                put8(&e, 0xb0), put8(&e, 0x20);                 /* mov al, 0x20 */
                put8(&e, 0xe6), put8(&e, 0x20), put8(&e, 0x58); /* out 0x20, al (EOI); pop ax */
        }
        if (e.mode == GEN_MODE_LONG)
                put8(&e, 0x48);
        put8(&e, 0xcf);
        if (e.mode == GEN_MODE_REAL)
                patch_word(&e, isr_at, g->isr);
        else
                patch_word(&e, isr_at, emit_idt(&e, g->isr));

        /* Real mode addresses all of it through segments of base 0. */
        if (!e.err && o->mode == GEN_MODE_REAL && GEN_LOAD_ADDR + e.len > 0x10000)
                e.err = -EFBIG;
        if (e.err) {
                free(e.buf);
                free(e.bounds);
                memset(g, 0, sizeof(*g));
                return e.err;
        }
        g->code = e.buf;
        g->len = e.len;
        g->bounds = e.bounds;
        g->nbounds = e.nbounds;
        return 0;
}

int gen_truth_text(const struct gen_opts *o, const struct gen_guest *g, char **text, size_t *len)
{
        FILE *f = open_memstream(text, len);
        size_t first = 0;

        if (!f)
                return -ENOMEM;
        for (size_t i = 0; i < g->nbounds; i++)
                first += g->bounds[i].shadow == GEN_SHADOW_FIRST;
        fprintf(f,
                "# hvgen ground truth: the shadowed instruction boundaries (docs/campaigns.md)\n"
                "hvgen-truth 1\n"
                "seed %llu\nmode %s\nload 0x%x\nentry 0x%x\nsize %zu\nvector 0x%x\nisr 0x%x\n"
                "loops %u\nitems %u\nhlt %d\ninterrupts %s\nsmc %d\nbounds %zu\nfirst %zu\n",
                (unsigned long long)o->seed, gen_mode_name(o->mode), GEN_LOAD_ADDR, GEN_LOAD_ADDR,
                g->len, GEN_VECTOR, g->isr, o->loops, o->items, o->hlt, o->pic ? "pic" : "requests",
                o->smc, g->nbounds, first);
        for (size_t i = 0; i < g->nbounds; i++)
                fprintf(f, "shadow 0x%x %s %s if=%u\n", g->bounds[i].addr,
                        gen_shadow_name(g->bounds[i].shadow), gen_cause_name(g->bounds[i].cause),
                        g->bounds[i].if_set);
        if (fclose(f))
                return -ENOMEM;
        return 0;
}

void gen_free(struct gen_guest *g)
{
        free(g->code);
        free(g->bounds);
        memset(g, 0, sizeof(*g));
}

static const char *const mode_names[] = {
        [GEN_MODE_REAL] = "real",
        [GEN_MODE_PROTECTED] = "protected",
        [GEN_MODE_LONG] = "long",
};
_Static_assert(sizeof(mode_names) / sizeof(mode_names[0]) == GEN_MODE_LONG + 1, "mode names");

static const char *const shadow_names[] = {
        [GEN_SHADOW_FIRST] = "first",
        [GEN_SHADOW_SECOND] = "second",
};
_Static_assert(sizeof(shadow_names) / sizeof(shadow_names[0]) == GEN_SHADOW_SECOND + 1,
               "shadow names");

static const char *const cause_names[] = {
        [GEN_CAUSE_STI] = "sti",
        [GEN_CAUSE_MOV_SS] = "mov-ss",
        [GEN_CAUSE_POP_SS] = "pop-ss",
};
_Static_assert(sizeof(cause_names) / sizeof(cause_names[0]) == GEN_CAUSE_POP_SS + 1, "cause names");

enum gen_mode gen_mode_parse(const char *name)
{
        for (unsigned m = GEN_MODE_REAL; m <= GEN_MODE_LONG; m++)
                if (!strcmp(name, mode_names[m]))
                        return (enum gen_mode)m;
        return 0;
}

const char *gen_mode_name(enum gen_mode mode)
{
        return mode >= GEN_MODE_REAL && mode <= GEN_MODE_LONG ? mode_names[mode] : NULL;
}

const char *gen_shadow_name(unsigned shadow)
{
        return shadow >= GEN_SHADOW_FIRST && shadow <= GEN_SHADOW_SECOND ? shadow_names[shadow]
                                                                         : "?";
}

const char *gen_cause_name(unsigned cause)
{
        return cause >= GEN_CAUSE_STI && cause <= GEN_CAUSE_POP_SS ? cause_names[cause] : "?";
}
