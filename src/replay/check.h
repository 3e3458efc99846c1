/* SPDX-License-Identifier: MIT */
/* hvreplay check: the results of checking one trace. */
#ifndef HVREPLAY_CHECK_H
#define HVREPLAY_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum check_rule {
        RULE_NONE,
        RULE_STI_SHADOW,        /* delivered right after an STI that opened a shadow */
        RULE_MOVSS_SHADOW,      /* delivered right after a MOV SS / POP SS that opened one */
        RULE_IF_CLEAR,          /* a maskable interrupt delivered with IF=0 */
        RULE_REPORT_MISMATCH,   /* the backend said ready / no shadow inside a shadow */
        RULE_LOST,              /* injected, never delivered */
        RULE_SPURIOUS,          /* delivered, never injected */
        RULE_UNDETERMINED,      /* the evidence in the trace does not decide */
        RULE_DB_MOVSS_SHADOW,   /* a guest #DB trap delivered right after a MOV SS / POP SS */
        RULE_NMI_MOVSS_SHADOW,  /* an NMI delivered right after a MOV SS / POP SS that opened one */
        RULE_NMI_WHILE_BLOCKED, /* an NMI delivered before the IRET ending the previous NMI's
                                   handler */
        RULE_COUNT
};

const char *check_rule_name(unsigned rule);

struct hvt_reader;
struct hvt_event;

/*
 * The vCPU an event just read belongs to in a multi-vCPU trace; -1 for a
 * machine-wide record (header, memory, write, end) or a single-vCPU trace.
 */
int check_event_vcpu(const struct hvt_reader *r, const struct hvt_event *ev);

/* Why a delivery is undetermined (stable names in check_und_name; docs/checker.md). */
enum check_und {
        UND_NONE,
        UND_PREDECESSORS, /* instructions with different verdicts can run just before */
        UND_NO_CODE,      /* code the verdict needs is not in the trace */
        UND_CODE_WRITTEN, /* ... was written between the exits around it */
        UND_CONTROL,      /* a transfer the trace cannot follow may lead there */
        UND_IF_UNKNOWN,   /* IF before an STI unknown */
        UND_SEQUENCE,     /* whether a delaying instruction was itself shadowed is unknown */
        UND_UNREACHABLE,  /* no path from the previous exit leads there */
        UND_SOFT_OR_EXT,  /* an INT n of the vector may have raised it instead */
        UND_TOO_LARGE,    /* the paths since the previous exit reach more code than followed */
        UND_DEBUG_CAUSE,  /* a #DB with TF clear after an SS load: its cause is not recorded */
        UND_NMI_IRET,     /* whether an IRET ended the previous NMI's handler is unknown */
        UND_COUNT
};

const char *check_und_name(unsigned kind);

enum check_note {
        NOTE_CONSERVATIVE,     /* a shadow reported where the architecture needs none */
        NOTE_STI_IF_SET,       /* delivered after STI with IF already 1: legal */
        NOTE_SEQUENCE,         /* delivered after the second of a sequence of delaying insns */
        NOTE_LANDED_ELSEWHERE, /* delivered somewhere else than the injection exit implies */
        NOTE_ENDED_PENDING,    /* injected, still outstanding when the trace ended */
        NOTE_BACKEND_RAISED,   /* delivered from an in-backend device (irqchip backends) */
        NOTE_SOFTWARE_INT,     /* INT n / INT3 / INTO into a probed handler: not a delivery */
        NOTE_WRITES_UNTRACKED, /* the trace does not record guest writes */
        NOTE_CODE_CHANGED,     /* an exit showed code bytes no write record explains */
        NOTE_UNOBSERVABLE,     /* injected into a handler without the probe: not judged lost */
        NOTE_DEBUG_EXCEPTION,  /* a #DB the guest raised (TF, DR7) outside any MOV SS shadow */
        NOTE_NMI_AFTER_STI,    /* an NMI right after an STI with IF=0: permitted */
        NOTE_COUNT
};

const char *check_note_name(unsigned kind);

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
        uint32_t vcpu;        /* the vCPU it happened on (0 in a single-vCPU trace) */
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
        char example[200];
};

/* The verdict on one delivery (check_opts.keep_verdicts). */
struct check_verdict {
        uint64_t event; /* the probe's exit */
        uint64_t pc;    /* where it was delivered (linear) */
        uint8_t vector;
        uint8_t rule; /* RULE_NONE, a violation rule, or RULE_UNDETERMINED */
        int8_t note;  /* NOTE_STI_IF_SET, NOTE_SEQUENCE, NOTE_SOFTWARE_INT, NOTE_DEBUG_EXCEPTION,
                         NOTE_NMI_AFTER_STI, or -1 */
        uint8_t und;  /* enum check_und when undetermined */
};

struct check_result {
        const char *path;
        bool opened;     /* the header could be read: the rest is meaningful */
        bool readable;   /* the whole trace could be read */
        char error[256]; /* why not */
        uint32_t vcpus;  /* the vCPUs the trace declares (1: a single-vCPU trace) */
        uint64_t deliveries, injections, exits;
        bool single_step;
        unsigned policy;
        char backend[64];
        uint64_t by_rule[RULE_COUNT];
        struct check_finding *violations, *undetermined;
        size_t nviolations, violations_cap, nundetermined, undetermined_cap;
        struct check_note_sum notes[NOTE_COUNT];
        struct check_verdict *verdicts; /* every delivery, when asked for */
        size_t nverdicts, verdicts_cap;
        bool have_end;    /* the trace's end record */
        unsigned end_why; /* enum hvt_end_why */
        int end_status;
        char end_message[256];
};

struct check_opts {
        /*
         * Judge as if the trace held no single-step exits (debug exits are
         * skipped, their writes kept): what the checker concludes without
         * the recorded steps, for cross-validation against them.
         */
        bool without_steps;
        bool keep_verdicts; /* fill check_result.verdicts */
        /*
         * Called every CHECK_PROGRESS_EVERY records with the pass (1: the
         * scan for code that changes, run first on traces without write
         * records whose exits show code changing; 2: the judging walk, which
         * may start over after such a scan) and the records read in it, so
         * a front end can show progress; NULL: not called.
         */
        void (*progress)(void *ctx, unsigned pass, uint64_t records);
        void *progress_ctx;
};

#define CHECK_PROGRESS_EVERY 4096

/* Check one trace into *res.  Returns 0, or -1 if it could not be read (res->error says why). */
int check_trace(const char *path, struct check_result *res);
int check_trace_opts(const char *path, const struct check_opts *opts, struct check_result *res);
void check_result_free(struct check_result *res);

#endif
