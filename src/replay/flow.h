/* SPDX-License-Identifier: MIT */
/*
 * What can run between two exits, and what that means for the interrupt
 * shadows.
 *
 * A boundary is a point between two instructions, named by the linear
 * address and code context of the instruction after it.  For a boundary,
 * a bset is the set of answers to "what retired just before it?" that the
 * trace allows, in the terms of the shadow rules (plain instruction, STI
 * opening a shadow, SS load opening a shadow, second delaying instruction
 * of a sequence, unknown).  A verdict is firm only when every answer in
 * the set agrees.
 *
 * A flow starts at an exit's boundary with the state the exit recorded
 * (IF, and the bset of that boundary) and follows every path the code can
 * take without another exit: fall-through, direct branches, REP
 * iterations, INT n into its handler.  An instruction whose successor the
 * trace cannot name (RET, IRET, an indirect or far indirect branch, a
 * fault, a mode change) makes the flow incomplete: any boundary may then
 * also be reached by a path nobody can see, and only boundaries where no
 * delaying instruction can end stay firm.
 */
#ifndef HVREPLAY_FLOW_H
#define HVREPLAY_FLOW_H

#include <stdbool.h>
#include <stdint.h>

#include "check.h"
#include "code.h"

/* What retired just before a boundary. */
enum flow_kind {
        FK_PLAIN,   /* delays nothing (or nothing ran: the start of the guest) */
        FK_STI_IF1, /* STI executed with IF already 1: delays nothing */
        FK_STI,     /* STI with IF=0, first of its sequence: the boundary is in its shadow */
        FK_SSLOAD,  /* MOV SS / POP SS, first of its sequence: in its shadow */
        FK_SECOND,  /* a delaying instruction that was itself in a shadow: nothing guaranteed */
        FK_DELAYED, /* a delaying instruction; whether it was the first of a sequence is unknown */
        FK_UNKNOWN, /* cannot tell; bset.und says why */
        FK_COUNT
};

#define FK_BIT(k) (1u << (k))
/* What ran was an instruction that delays interrupts (the next one is not the first). */
#define FK_DELAYING  (FK_BIT(FK_STI) | FK_BIT(FK_SSLOAD) | FK_BIT(FK_SECOND) | FK_BIT(FK_DELAYED))
#define FK_VIOLATING (FK_BIT(FK_STI) | FK_BIT(FK_SSLOAD))
#define FK_LEGAL     (FK_BIT(FK_PLAIN) | FK_BIT(FK_STI_IF1) | FK_BIT(FK_SECOND))

/* An instruction that gave a kind (for the report). */
struct flow_ex {
        bool valid;
        int8_t if_before; /* for STI: 0, 1, or -1 unknown */
        uint32_t ctx;
        uint64_t addr;
};

struct bset {
        uint8_t kinds; /* FK_BIT mask */
        uint8_t und;   /* enum check_und, for FK_UNKNOWN */
        struct flow_ex ex[FK_COUNT];
};

/* IF as a set of possible values. */
#define IFM_0    1u
#define IFM_1    2u
#define IFM_BOTH 3u

/* Add kind k with its example to b (the first example of a kind stays). */
void bset_add(struct bset *b, unsigned k, const struct flow_ex *ex, unsigned und);
/* Whether a and b hold the same answers with the same examples. */
bool bset_equal(const struct bset *a, const struct bset *b);
/* b |= o; returns whether b changed. */
bool bset_merge(struct bset *b, const struct bset *o);

/*
 * The bset of the boundary after instruction x (at addr in ctx), executed
 * with IF in ifm, when `before` is the bset of the boundary before it.
 */
void flow_after(const struct code_insn *x, uint64_t addr, uint32_t ctx, unsigned bits, unsigned ifm,
                const struct bset *before, struct bset *out);

/* IF after x, executed with IF in ifm. */
unsigned flow_if_after(const struct code_insn *x, unsigned ifm);

/* Where a flow starts: an exit's boundary and what the trace says about it. */
struct flow_start {
        uint64_t la;
        uint32_t ctx;
        unsigned ifm;  /* IF at the start */
        struct bset b; /* what retired just before the start */
        bool pending;  /* the instruction at la runs first even if it exits (an exit completing) */
        const uint8_t *bytes; /* its bytes as the exit recorded them (exact), or NULL */
        uint8_t nbytes;
        uint64_t idt_base, gdt_base;
        uint16_t idt_limit, gdt_limit;
        bool io_stops;        /* every port I/O instruction exits */
        bool hlt_stops;       /* every HLT exits */
        const uint8_t *ports; /* bitmap of immediate ports that always exit, or NULL */
        /*
         * The stack at the start: with `stack` set (the trace records every
         * write, so memory not written during the run is known), RET, RETF
         * and IRET whose stack pointer the flow knows pop their targets
         * from it instead of leaving the flow.
         */
        bool stack;
        uint64_t sp, ss_base, sp_mask; /* RSP, SS.base, 0xffff / 0xffffffff / ~0 */
        unsigned cpl;
        /*
         * An IRET ends its path instead of being followed: the boundaries
         * the flow reaches are those reachable without an IRET (whether the
         * IRET that ends an NMI handler ran; flow.iret says one was met).
         */
        bool stop_iret;
};

/*
 * Most boundaries one flow follows.  Past it the flow is incomplete
 * (UND_TOO_LARGE): memory and time stay bounded whatever a trace holds
 * (code that runs on into megabytes of zeros).
 */
#define FLOW_MAX_NODES (1u << 18)

/* The stack pointer at a boundary: not reached yet, known, or not known. */
enum { SPK_NONE, SPK_KNOWN, SPK_UNKNOWN };

/* Stack bytes a flow read: it stays valid while they are known and unchanged. */
#define FLOW_MAX_READS 32

struct flow_read {
        uint64_t la;
        uint32_t ctx;
        uint8_t len;
        uint8_t bytes[8];
};

struct flow_node {
        uint64_t la;
        uint32_t ctx;
        uint8_t ifm;
        uint8_t spk; /* SPK_* */
        bool queued;
        bool post_iret; /* some path from the start to here ran an IRET */
        uint64_t sp;
        struct bset b;
};

struct flow {
        struct flow_node *nodes;
        size_t n, cap;
        uint32_t *idx; /* open addressing over nodes */
        size_t idx_cap;
        uint32_t *work;
        size_t nwork, work_cap;
        bool incomplete; /* some path leaves what the trace shows */
        uint8_t inc_und; /* why (enum check_und) */
        uint64_t inc_at; /* the instruction where it leaves */
        bool unsure;     /* it read bytes written during the current interval */
        bool iret;       /* some path reaches an IRET */
        bool pass_iret;  /* while visiting: the successors are reached after an IRET */
        bool oom;
        struct flow_read reads[FLOW_MAX_READS];
        unsigned nreads;
};

/* Whether the stack bytes flow f read still hold what it read, known. */
bool flow_reads_hold(const struct flow *f, struct code *c);

void flow_init(struct flow *f);
void flow_free(struct flow *f);

/* Follow every path from s (the previous results are dropped). */
void flow_run(struct flow *f, struct code *c, const struct flow_start *s);

/*
 * The bset of boundary (la, ctx) after the flow: what the paths the flow
 * followed give there, and, where the flow is incomplete and a delaying
 * instruction can end at la, "unknown" too.
 */
void flow_at(const struct flow *f, struct code *c, uint64_t la, uint32_t ctx, struct bset *out);

/*
 * Where the RET, RETF or IRET x at s's start returns to, popped from the
 * stack as s knows it: its linear address, context and IF after it.  False
 * when the trace does not know the stack there.
 */
bool flow_return_target(struct code *c, const struct flow_start *s, const struct code_insn *x,
                        uint64_t *la, uint32_t *ctx, unsigned *ifm);

/* The flow node of a boundary, NULL if no followed path reaches it. */
const struct flow_node *flow_node(const struct flow *f, uint64_t la, uint32_t ctx);

#endif
