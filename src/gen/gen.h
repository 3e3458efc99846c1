// SPDX-License-Identifier: MIT
/*
 * hvgen's generator: a random, shadow-dense flat guest from a seed, and the
 * ground truth of its interrupt shadows.
 *
 * The guest follows docs/guest-abi.md for a flat binary loaded at
 * GEN_LOAD_ADDR: it installs one probed handler for GEN_VECTOR, runs a
 * random body a bounded number of times, asks for interrupts on port 0xE0,
 * and ends with a write to the exit port (status 0).  Everything is decided
 * by the seed: the same seed and mode give the same bytes.
 *
 * The ground truth lists every instruction boundary inside a shadow in the
 * architecture's terms (Intel SDM Vol. 2B, STI; Vol. 3A 6.8.3): the boundary
 * after an STI executed with IF=0, or after a MOV SS / POP SS, when that
 * instruction was the first interrupt-delaying one of its sequence
 * (GEN_SHADOW_FIRST), or a later one (GEN_SHADOW_SECOND: not guaranteed).
 * docs/campaigns.md describes the sidecar format.
 */
#ifndef HVGEN_GEN_H
#define HVGEN_GEN_H

#include <stddef.h>
#include <stdint.h>

#define GEN_LOAD_ADDR 0x1000u
#define GEN_VECTOR    0x30u

enum gen_mode {
        GEN_MODE_REAL = 1,
        GEN_MODE_PROTECTED,
        GEN_MODE_LONG,
};

enum gen_shadow {
        GEN_SHADOW_FIRST = 1, /* guaranteed: a delivery here is a violation */
        GEN_SHADOW_SECOND,    /* later in a sequence: a delivery is permitted */
};

enum gen_cause {
        GEN_CAUSE_STI = 1,
        GEN_CAUSE_MOV_SS,
        GEN_CAUSE_POP_SS,
};

struct gen_opts {
        uint64_t seed;
        enum gen_mode mode;
        unsigned items; /* random items in the loop body */
        unsigned loops; /* times the body runs */
        int hlt;        /* end with STI; HLT woken by a requested interrupt */
        int pic;        /* interrupts from the PIT through the 8259 PIC, not port 0xE0 */
        int smc;        /* self-modifying stores among the items */
};

/* One shadowed instruction boundary of the generated guest. */
struct gen_bound {
        uint32_t addr;  /* linear address of the boundary (the next instruction) */
        uint8_t shadow; /* enum gen_shadow */
        uint8_t cause;  /* enum gen_cause: the instruction that ends here */
        uint8_t if_set; /* IF at the boundary: only then can an interrupt land */
};

struct gen_guest {
        uint8_t *code; /* the flat image, loaded at GEN_LOAD_ADDR */
        size_t len;
        struct gen_bound *bounds; /* in address order of emission */
        size_t nbounds;
        uint32_t isr; /* address of the handler (its first instruction probes) */
        unsigned requests, smc, irets, popfs; /* what the body holds, for the summary */
};

/* Defaults for opts: real mode, 48 items, 3 loops, the HLT ending, port 0xE0, SMC. */
void gen_opts_default(struct gen_opts *o);

/*
 * Generate the guest `o` describes into `g` (which gen_free releases).
 * Returns 0, -EINVAL for options out of range (items 1..4096, loops
 * 1..1000, a mode of enum gen_mode), -EFBIG for a real-mode guest that
 * would reach past 64 KiB, or -ENOMEM.
 */
int gen_build(const struct gen_opts *o, struct gen_guest *g);

/*
 * The ground-truth sidecar of `g` as text (docs/campaigns.md), in a buffer
 * the caller frees.  Returns 0 or -ENOMEM.
 */
int gen_truth_text(const struct gen_opts *o, const struct gen_guest *g, char **text, size_t *len);

/* Release what gen_build allocated; `g` may be zeroed or partly built. */
void gen_free(struct gen_guest *g);

/* "real", "protected", "long" and back; 0 / NULL when unknown. */
enum gen_mode gen_mode_parse(const char *name);
const char *gen_mode_name(enum gen_mode mode);

/* "first"/"second", "sti"/"mov-ss"/"pop-ss". */
const char *gen_shadow_name(unsigned shadow);
const char *gen_cause_name(unsigned cause);

#endif
