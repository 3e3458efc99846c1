/* SPDX-License-Identifier: MIT */
/*
 * The interrupt-shadow corpus as tests see it, shared by every backend's
 * suite: the NASM scenarios (guests/corpus/NAME.asm, "; corpus-run:" lines,
 * variants and modes) and the C scenarios (guests/c/NAME.c, "// corpus-run:"
 * and "// bits:" lines), their builds, their labels from the symbol maps,
 * and the checks every backend must pass.
 */
#ifndef HVTEST_CORPUS_H
#define HVTEST_CORPUS_H

#include <stdbool.h>
#include <stdint.h>

#include "../src/replay/check.h"
#include "helpers.h"

#define CORPUS_MAX_LABELS 16
#define CORPUS_MAX_BUILDS 128

struct corpus_labels {
        char name[CORPUS_MAX_LABELS][64];
        uint64_t addr[CORPUS_MAX_LABELS];
        int n;
};

/* One build of a scenario: a file in build/guests and the mode it runs in. */
struct corpus_build {
        char src[1024];   /* the scenario's source */
        char file[160];   /* NAME_in_p32.bin, movss_c_64.elf, ... */
        char stem[160];   /* the symbol map's name: file without its extension */
        const char *mode; /* hvrec --mode */
};

/* Every build of every scenario; the count.  Fails the test if there are none. */
int corpus_builds(struct corpus_build *out, int max);

/*
 * Every build of the guests that program the PIC and PIT themselves
 * (PIT_PERIODIC: their interrupts need no hvrec injection), in each mode
 * they are built for; the count.  Fails the test if there are none.
 */
int corpus_timer_builds(struct corpus_build *out, int max);

/* The symbols of a build's map whose names start with prefix (local labels excluded). */
void corpus_labels(const char *stem, const char *prefix, struct corpus_labels *l);

/* The value of a "; KEY:" or "// KEY:" line of a source (malloc'd), or NULL. */
char *corpus_source_line(const char *src, const char *key);

/*
 * Record a build on `backend` with `extra` options then the source's `opts`
 * ({label} replaced by its address), and check the trace into *res.
 */
void corpus_record(const char *backend, const struct corpus_build *b, const char *const *extra,
                   const char *opts, struct hv_proc *p, struct hv_trace *t,
                   struct check_result *res);

/* Whether the guest's probe reported an interrupt that interrupted linear address pc. */
bool corpus_delivered_at(const struct hv_trace *t, uint64_t pc);

/* Whether trace t was recorded on kvm_pvm (its backend version names the module). */
bool corpus_on_kvm_pvm(const struct hv_trace *t);

/*
 * kvm_pvm, the KVM of the machines this project is tested on, cannot
 * emulate every instruction that loads CS or SS from a descriptor or
 * raises an exception through the IDT: measured, 32-bit protected-mode
 * IRET, INT n, INT3 and INTO, long-mode INT n and INT3, and INT1 in every
 * mode end in KVM_EXIT_INTERNAL_ERROR (suberror 1, emulation failure);
 * and on the 6.18 kernel's kvm_pvm a 64-bit MOV SS with REX.R raises #UD
 * (a triple fault in the corpus guests, which have no #UD handler);
 * docs/backends.md.  True when a KVM run on kvm_pvm ended exactly that way
 * (and hvrec and the check say so): the one outcome accepted instead of the
 * full scenario.  Never true on another KVM, where the scenario must run.
 */
bool corpus_kvm_pvm_limit(const char *backend, const struct hv_proc *p, const struct hv_trace *t,
                          const struct check_result *res);

/*
 * kvm_pvm delivers the single-step #DB that follows MOV SS / POP SS inside
 * the SS load's shadow (docs/backends.md): true when t was recorded on
 * kvm_pvm and pc is one of the build's dbshadow_ labels, where that #DB
 * lands.  The checker is right to call it db-movss-shadow; the tests
 * accept it there, and only there, as this backend's finding.
 */
bool corpus_kvm_pvm_db_in_shadow(const char *stem, const struct hv_trace *t, uint64_t pc);

/* Every build checks clean on `backend` under its default policy. */
void corpus_all_clean(const char *backend);

/*
 * Ground truth from a build's labels (guests/include/corpus.inc):
 * shadowed_ a violation, noshadow_ legal, second_ permitted (a note),
 * softint_ a software interrupt (a note, never a finding), dbstep_ where a
 * guest #DB lands (the note debug-exception), dbshadow_ where one would be a
 * db-movss-shadow violation.
 */
struct corpus_truth {
        struct corpus_labels shadowed, clean, second, softint;
        /* dbstep_: a guest #DB trap must land there; dbshadow_: one there is db-movss-shadow */
        struct corpus_labels dbstep, dbshadow;
};

void corpus_labels_of(const char *stem, struct corpus_truth *t);

/* Fail unless verdict v agrees with the labels (exact: undetermined at a label fails too). */
void corpus_judge_verdict(const char *what, const struct corpus_truth *t,
                          const struct check_verdict *v, bool exact);

/*
 * With --single-step --inject eager, every delivery of every build is
 * decided and agrees with its labels: violations exactly at its shadowed_*
 * labels (each of them), none at the others, which get their interrupts.
 * Each trace is also cross-validated (corpus_cross_validate).
 */
void corpus_all_eager_exact(const char *backend);

/*
 * Check `trace` with and without its single-step exits: every delivery's
 * verdict without them equals the step chain's or is undetermined.
 * Returns the number undetermined without them.
 */
uint64_t corpus_cross_validate(const char *what, const char *trace);

/*
 * The stress guest `file` in `mode` under --kick 20:0x30 and `policy` until
 * it counts its 20,000 deliveries; checked into *res.  Returns false where
 * the run stopped at kvm_pvm's emulation limit instead (corpus_kvm_pvm_limit).
 */
bool corpus_stress(const char *backend, const char *file, const char *mode, const char *policy,
                   struct check_result *res);

/* The bound on undetermined deliveries the kicked stress runs hold to: 0.5%. */
#define CORPUS_STRESS_UND_PERMILLE 5

/*
 * The eager stress run: violations, all of them at the build's shadowed
 * labels, at most max_und_permille of the deliveries undetermined.  Returns
 * false where the run stopped at kvm_pvm's emulation limit (then only what
 * was recorded is judged).
 */
bool corpus_stress_eager_exact(const char *backend, const char *file, const char *mode,
                               unsigned max_und_permille);

/* How a backend's own --single-step passes a MOV SS / POP SS (corpus_db_movss). */
enum corpus_step_ss {
        CORPUS_STEP_EACH,     /* a step exit at every boundary, inside the hold too (emu) */
        CORPUS_STEP_HELD,     /* one step for the load and the next instruction (TF-based) */
        CORPUS_STEP_TAKES_DB, /* its stepping takes the guest's own #DB: not recorded stepped */
};

/*
 * Whether the guest's own #DB still reaches it when `backend` single-steps:
 * not on the KVM backends, where KVM turns every #DB into a debug exit to
 * userspace while KVM_GUESTDBG_SINGLESTEP is set (docs/backends.md).
 */
bool corpus_steps_keep_guest_db(const char *backend);

/*
 * The single-step #DB scenario (guests/corpus/db_movss.asm) on `backend` in
 * every mode, plain and (unless CORPUS_STEP_TAKES_DB) under --single-step:
 * each #DB lands at its dbstep_ label (after the instruction that follows
 * MOV SS / POP SS, SDM Vol. 3A 6.8.3) and none at a dbshadow_ label, and
 * the checker judges each one a debug-exception note; `ss` says whether
 * the stepped run has a step exit inside the hold.  On kvm_pvm, which
 * delivers that #DB inside the shadow, one at a dbshadow_ label (in place
 * of the dbstep_ one after it) is accepted as the backend's finding, and
 * the checker must call it db-movss-shadow or undetermined.
 */
void corpus_db_movss(const char *backend, enum corpus_step_ss ss);

#endif
