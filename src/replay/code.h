/* SPDX-License-Identifier: MIT */
/*
 * The guest code held in a trace, and a recursive-descent disassembly of it.
 *
 * Bytes come from the initial memory image, overlaid by the instruction
 * bytes recorded at exits (they show the code as it was when it ran).  From
 * seeds (the entry point, every RIP seen in the trace, every interrupted IP)
 * the disassembly follows fall-through and direct branches and records, for
 * every decoded instruction, the instructions that can run immediately
 * before it.  Addresses are linear; the same bytes decoded in different
 * code sizes are different instructions.
 */
#ifndef HVREPLAY_CODE_H
#define HVREPLAY_CODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hvtrace/trace.h>

#include "../arch/x86.h"
#include "../disasm/disasm.h"

#define CODE_NONE UINT32_MAX

/* How to read and decode code: paging, the CS base and the code size. */
struct code_ctx {
        uint64_t cr0, cr3, cr4, efer;
        uint64_t cs_base;
        unsigned bits;
};

enum code_status { CODE_UNDECODED, CODE_OK, CODE_BAD };

struct code_node {
        uint64_t addr;   /* linear */
        uint64_t target; /* linear target of a direct branch */
        uint32_t flags;  /* DISASM_* */
        uint32_t ctx;
        uint32_t pred; /* first incoming edge, CODE_NONE if none */
        uint8_t bits, len, status, has_target;
        bool retsite; /* follows a CALL: some RET also precedes it */
        bool seeded;  /* control was seen here in the trace */
        uint8_t bytes[15];
};

struct code_edge {
        uint32_t from; /* node that can run immediately before */
        uint32_t next; /* next edge into the same node */
};

struct code {
        struct disasm *dis;
        struct x86_mem mem;
        uint8_t *ram;

        /* overlay: linear address -> byte recorded at an exit */
        uint64_t *ov_key;
        uint8_t *ov_val;
        size_t ov_cap, ov_len;

        struct code_node *nodes;
        size_t nnodes, nodes_cap;
        uint32_t *node_idx; /* open-addressing table of node indexes */
        size_t idx_cap;

        struct code_edge *edges;
        size_t nedges, edges_cap;

        struct code_ctx *ctxs;
        size_t nctxs, ctxs_cap;

        uint32_t *work; /* nodes waiting to be decoded */
        size_t nwork, work_cap;

        uint64_t indirect;       /* indirect jumps/calls decoded */
        uint64_t first_indirect; /* the first one's address */
};

/* Set up for mem_size bytes of guest RAM (zero).  Returns 0 or -ENOMEM. */
int code_init(struct code *c, struct disasm *dis, uint64_t mem_size);
void code_free(struct code *c);

/* Initial image bytes (a TRACE_REC_MEMORY record). */
void code_load(struct code *c, uint64_t gpa, const uint8_t *data, size_t len);

/* Bytes seen at linear address la when an exit was taken. */
void code_overlay(struct code *c, uint64_t la, const uint8_t *bytes, size_t n);

/* The context of a vCPU state (CS base and size from it, or as given). */
struct code_ctx code_ctx_of(const struct trace_vcpu_state *st);
uint32_t code_ctx_add(struct code *c, const struct code_ctx *ctx);

/* Read code bytes at linear la in a context; returns bytes read. */
size_t code_read(const struct code *c, const struct code_ctx *ctx, uint64_t la, uint8_t *buf,
                 size_t n);

/* Decode the instruction at la; fills *insn with offsets turned linear.  0 or -EINVAL. */
int code_decode(struct code *c, const struct code_ctx *ctx, uint64_t la, struct disasm_insn *insn);

/* Control was seen at la: decode from there (code_build does the work). */
void code_seed(struct code *c, uint64_t la, uint32_t ctx);

/* Run the recursive descent over every seed. */
void code_build(struct code *c);

/* The node for (la, bits) or NULL. */
struct code_node *code_node(struct code *c, uint64_t la, unsigned bits);

#endif
