/* SPDX-License-Identifier: MIT */
/* hvreplay check: the results of checking one trace. */
#ifndef HVREPLAY_CHECK_H
#define HVREPLAY_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum check_rule {
        RULE_NONE,
        RULE_STI_SHADOW,      /* delivered right after an STI executed with IF=0 */
        RULE_MOVSS_SHADOW,    /* delivered right after the first of MOV SS / POP SS */
        RULE_IF_CLEAR,        /* a maskable interrupt delivered with IF=0 */
        RULE_REPORT_MISMATCH, /* the backend said ready / no shadow inside a shadow */
        RULE_LOST,            /* injected, never delivered */
        RULE_SPURIOUS,        /* delivered, never injected */
        RULE_SECOND_SS,       /* after the second of two SS loads: not checked */
        RULE_UNDETERMINED,    /* the previous instruction cannot be decided */
        RULE_COUNT
};

const char *check_rule_name(unsigned rule);

/* Why a delivery is undetermined (stable names in check_und_name). */
enum check_und {
        UND_NONE,
        UND_PREDECESSORS, /* several instructions can run before, with different verdicts */
        UND_NO_CODE,      /* no decoded code leads to the point */
        UND_IF_UNKNOWN,   /* IF before the STI unknown */
        UND_SS_UNKNOWN,   /* whether the SS load was itself shadowed is unknown */
        UND_STEP_UNKNOWN, /* single-step: the previous step is not known */
        UND_COUNT
};

const char *check_und_name(unsigned kind);
const char *check_note_name(unsigned kind);

enum check_note {
        NOTE_CONSERVATIVE,     /* a shadow reported where the architecture needs none */
        NOTE_STI_IF_SET,       /* delivered after STI with IF already 1: legal */
        NOTE_SECOND_SS,        /* delivered after the second of two SS loads */
        NOTE_LANDED_ELSEWHERE, /* delivered somewhere else than the injection exit implies */
        NOTE_ENDED_PENDING,    /* injected, still outstanding when the trace ended */
        NOTE_BACKEND_RAISED,   /* delivered from an in-backend device (irqchip backends) */
        NOTE_COUNT
};

/* An instruction as reported: address, bytes and text. */
struct check_insn {
        bool valid;
        bool real;   /* real mode: shown as CS:IP */
        uint64_t pc; /* linear */
        uint64_t cs_base;
        unsigned bits;
        uint8_t len;
        uint8_t bytes[15];
        char text[128];
};

struct check_finding {
        unsigned rule;
        unsigned shadow_rule; /* report-mismatch: which shadow the decoding found */
        uint64_t event;       /* the exit number (the probe's for deliveries) */
        unsigned vector;
        uint64_t pc, rip; /* linear and CS-relative delivery point */
        uint16_t cs;
        unsigned bits;
        uint64_t flags; /* interrupted FLAGS */
        uint64_t intr;  /* backend report at the injection (or exit) */
        bool have_intr;
        unsigned policy;
        int if_before;
        struct check_insn prev, at;
        unsigned und_kind; /* enum check_und for undetermined findings */
        char reason[240];
};

struct check_note_sum {
        uint64_t count;
        uint64_t first_seq, first_pc;
        char example[160];
};

struct check_result {
        const char *path;
        bool opened;     /* the header could be read: the rest is meaningful */
        bool readable;   /* the whole trace could be read */
        char error[256]; /* why not */
        uint64_t deliveries, injections, exits;
        bool single_step;
        unsigned policy;
        char backend[64];
        uint64_t by_rule[RULE_COUNT];
        struct check_finding *violations, *undetermined;
        size_t nviolations, violations_cap, nundetermined, undetermined_cap;
        struct check_note_sum notes[NOTE_COUNT];
        uint64_t indirect_jumps, first_indirect;
        bool have_end;    /* the trace's end record */
        unsigned end_why; /* enum trace_end_why */
        int end_status;
        char end_message[256];
};

/* Check one trace into *res.  Returns 0, or -1 if it could not be read (res->error says why). */
int check_trace(const char *path, struct check_result *res);
void check_result_free(struct check_result *res);

#endif
