/* SPDX-License-Identifier: MIT */
/*
 * The guest code held in a trace, as it stood at each point of the trace.
 *
 * The checker walks a trace once, in order.  Guest RAM starts as the
 * initial memory image; each HVT_REC_WRITE record then gives the new
 * bytes of a range the guest wrote during the run that ended at its exit.
 * Those bytes are known from that exit on, but during that run (the
 * current interval) they may have held anything: reading them there is
 * "unsure".  Traces without write records (HVT_HDR_WRITES clear) only
 * show code at the exits (the bytes at CS:RIP): bytes seen to change there
 * are volatile, unsure for the whole trace.
 *
 * Instructions are decoded in a context (the paging registers, the CS base
 * and the code size) and cached by linear address and context; a write to a
 * page that held decoded code or paging entries drops the cache.
 */
#ifndef HVREPLAY_CODE_H
#define HVREPLAY_CODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hvtrace/hvtrace.h>

#include "../arch/x86.h"
#include "../disasm/disasm.h"

/* How to read and decode code: paging, the CS base and the code size. */
struct code_ctx {
        uint64_t cr0, cr3, cr4, efer;
        uint64_t cs_base;
        unsigned bits;
};

/* What decoding an instruction found (code_insn). */
enum code_status {
        CODE_OK,      /* decoded from bytes known at this point of the trace */
        CODE_UNSURE,  /* some byte (or paging entry) was written during the current interval */
        CODE_MISSING, /* not in RAM, not mapped, or the context is unknown */
};

struct code_insn {
        uint8_t status; /* enum code_status */
        uint8_t len;
        uint8_t has_target;
        int16_t int_vector; /* INT n / INT3 / INTO / INT1, else -1 */
        int32_t io_port;    /* the immediate port of IN/OUT imm8, else -1 */
        uint8_t sp_write;   /* it may write the stack pointer (disasm_insn.sp_write) */
        uint16_t target_cs; /* far direct targets */
        uint32_t flags;     /* DISASM_*; undecodable bytes are DISASM_UD */
        uint64_t target;    /* direct target: linear for near ones, the offset for far ones */
        uint8_t bytes[15];
};

struct code_range {
        uint64_t gpa, len;
        uint64_t stamp; /* the interval of its newest write */
};

struct code_entry; /* the decode cache (code.c) */

struct code {
        struct disasm *dis;
        struct x86_mem mem;
        uint8_t *ram;      /* guest RAM as of the latest exit */
        uint64_t npages;   /* RAM pages */
        uint8_t *page_hot; /* per page: decoded code or paging entries were read from it */
        uint64_t gen;      /* bumped when a hot page is written: cached decodes are stale */

        struct code_range *wr; /* written since interval `forgot` (coalesced) */
        size_t nwr, wr_cap;
        uint64_t stamp; /* the current interval's number */
        uint64_t since; /* ranges written in this interval or later are unsure */
        uint8_t *vol;   /* bitmap of volatile bytes (NULL: none) */

        struct code_ctx *ctxs;
        size_t nctxs, ctxs_cap;

        struct code_entry *cache;
        size_t cache_cap, cache_used; /* capacity a power of two */

        /*
         * code_insn_bytes' last answer: an exit loop decodes the same bytes
         * at the same address at every exit.  It depends on nothing else
         * (a context never changes once added), so it never goes stale.
         */
        struct code_insn last_insn;
        uint64_t last_la;
        uint32_t last_ctx;
        uint8_t last_n; /* 0: none yet */
        uint8_t last_bytes[15];

        /*
         * Bytes exits showed at linear addresses the view cannot translate
         * (page tables the trace never held): linear address -> byte.
         */
        uint64_t *ov_key;
        uint8_t *ov_val;
        size_t ov_cap, ov_len;
};

/* Set up for mem_size bytes of guest RAM (zero).  Returns 0 or -ENOMEM. */
int code_init(struct code *c, struct disasm *dis, uint64_t mem_size);
void code_free(struct code *c);

/* Initial image bytes (a HVT_REC_MEMORY record). */
void code_load(struct code *c, uint64_t gpa, const uint8_t *data, size_t len);

/* A HVT_REC_WRITE record: new bytes, unsure until code_interval. */
void code_write(struct code *c, uint64_t gpa, const uint8_t *data, size_t len);

/* A new interval (the run after an exit) starts: the written ranges become known. */
void code_interval(struct code *c);

/*
 * Several vCPUs run at once, so what is known differs per vCPU: a range is
 * known to a vCPU only if it was written before its run began.
 * code_interval_keep starts a new interval and returns its number, keeping
 * what was written before unsure; code_unsure_since makes ranges written in
 * interval `since` or later the unsure ones (the judged vCPU's run began
 * then); code_forget_before drops ranges no vCPU can still need.
 */
uint64_t code_interval_keep(struct code *c);
void code_unsure_since(struct code *c, uint64_t since);
void code_forget_before(struct code *c, uint64_t stamp);

/*
 * The instruction bytes an exit recorded at CS:RIP of st.  The view takes
 * them; returns true when they differ from what it held (the code changed
 * where no write record said so).
 */
bool code_exit_bytes(struct code *c, const struct code_ctx *ctx, uint64_t la, const uint8_t *bytes,
                     size_t n);

/*
 * Mark the RAM bytes at linear la unsure in c for the rest of the trace.
 * la is translated with ctx's paging as the page tables stand in `via`,
 * the view that holds guest RAM as of the exit that showed the bytes (c
 * itself, or the scan's own view while c holds no RAM yet).
 */
void code_mark_volatile(struct code *c, struct code *via, const struct code_ctx *ctx, uint64_t la,
                        size_t n);

/*
 * The code context of selector sel in a context (real mode: sel << 4;
 * otherwise its descriptor in the GDT at gdt_base/gdt_limit).  False when
 * it names no readable code descriptor; *unsure when the descriptor was
 * written during the current interval (then false too).
 */
bool code_selector(struct code *c, uint32_t ctx, uint64_t gdt_base, uint16_t gdt_limit,
                   uint16_t sel, uint32_t *out, bool *unsure);

/* The context of a vCPU state (CS base and size from it). */
struct code_ctx code_ctx_of(const struct hvt_vcpu_state *st);
/* Its number: equal contexts get the same number (0 when out of memory). */
uint32_t code_ctx_add(struct code *c, const struct code_ctx *ctx);

/* Read code bytes at linear la in a context; returns bytes read (stops at a hole). */
size_t code_read(const struct code *c, const struct code_ctx *ctx, uint64_t la, uint8_t *buf,
                 size_t n);

/* As code_read; *unsure is set when a byte read is not known at this point. */
size_t code_read_sure(struct code *c, const struct code_ctx *ctx, uint64_t la, uint8_t *buf,
                      size_t n, bool *unsure);

/* Decode the instruction at la with its text; offsets turned linear.  0 or -EINVAL. */
int code_decode(struct code *c, const struct code_ctx *ctx, uint64_t la, struct disasm_insn *insn);

/* The instruction at (la, context number): cached, with its certainty.  Returns its status. */
int code_insn(struct code *c, uint64_t la, uint32_t ctx, struct code_insn *out);

/* Decode bytes the trace recorded (an exit's) as the instruction at la in a context. */
int code_insn_bytes(struct code *c, const uint8_t *bytes, size_t n, uint64_t la, uint32_t ctx,
                    struct code_insn *out);

/*
 * The instructions that delay interrupts (STI, MOV SS, POP SS) and can end
 * exactly at la: bit k-1 of *lens for one of length k.  In 16-bit code the
 * bytes before wrap within the 64 KiB segment.  Returns false when some of
 * the 15 bytes before la are not known (then any of them may be one).
 */
bool code_delaying_before(struct code *c, uint64_t la, uint32_t ctx, uint16_t *lens);

/*
 * An INT n / INT3 / INTO / INT1 of `vector` ending exactly at la: its
 * address in *at.  Returns 1 found, 0 none, -1 bytes not known.
 */
int code_int_before(struct code *c, uint64_t la, uint32_t ctx, unsigned vector, uint64_t *at);

/*
 * A MOV SS or POP SS (the instructions that block #DB) ending exactly at
 * la: its address in *at.  Returns 1 found, 0 none, -1 bytes not known.
 */
int code_ssload_before(struct code *c, uint64_t la, uint32_t ctx, uint64_t *at);

/* la - k within the code segment of ctx (16-bit offsets wrap at 64 KiB). */
uint64_t code_back(const struct code *c, uint32_t ctx, uint64_t la, unsigned k);
/* The address after an instruction of len bytes at la (16-bit offsets wrap). */
uint64_t code_next(const struct code *c, uint32_t ctx, uint64_t la, unsigned len);

#endif
