// SPDX-License-Identifier: MIT
/*
 * The same guests on two backends: every corpus build recorded on kvm and on
 * emu, then `hvreplay diff --ignore-field +rflags.af` (the pair's documented
 * options, docs/diff.md).  Each pair must compare equal, or diverge only in
 * a way docs/diff.md documents for kvm vs emu:
 *  - KVM (kvm_pvm) stopped at an instruction it cannot emulate (a 32-bit
 *    protected-mode IRET or INT, a 64-bit INT: corpus_kvm_pvm_limit);
 *  - kvm_pvm delivered a single-step #DB inside an SS load's shadow (its
 *    finding, docs/backends.md), where emu holds it past the next
 *    instruction;
 *  - the interrupt landed at another legal boundary: the first divergence
 *    lies while a requested interrupt was still pending on one side, and the
 *    guests still end alike (status, console) and both check clean.
 * Anything else — a register, a port value, an exit with no interrupt in
 * flight — fails.  Needs /dev/kvm.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "corpus.h"

/* Whether exit `seq` lies while one of the guest's interrupts was raised and not yet delivered. */
static bool while_pending(const struct hv_trace *t, long long seq)
{
        if (seq < 0)
                return false;
        for (size_t i = 0; i < t->nraises; i++) {
                /* The i-th raise is answered by the i-th delivery (one vector, FIFO). */
                uint64_t from = t->raises[i].seq;
                uint64_t to = i < t->ndelivers ? t->delivers[i].seq : UINT64_MAX;

                if ((uint64_t)seq > from && (uint64_t)seq <= to)
                        return true;
        }
        return false;
}

/* The number after "key": in a JSON document, or -1 for null / absent. */
static long long json_number_of(const char *json, const char *key)
{
        char want[64];
        const char *p;

        snprintf(want, sizeof(want), "\"%s\":", key);
        p = strstr(json, want);
        if (!p || !strncmp(p + strlen(want), "null", 4))
                return -1;
        return strtoll(p + strlen(want), NULL, 10);
}

/* Whether the kvm trace t of build b has kvm_pvm's #DB inside an SS load's shadow. */
static bool pvm_db_in_shadow(const struct corpus_build *b, const struct hv_trace *t)
{
        for (size_t i = 0; i < t->ndelivers; i++)
                if (t->delivers[i].vector == 1 &&
                    corpus_kvm_pvm_db_in_shadow(b->stem, t,
                                                t->delivers[i].cs_base + t->delivers[i].ip))
                        return true;
        return false;
}

static void keep_as(const char *name)
{
        cr_assert_eq(rename(hv_tmp("rec.zst"), hv_tmp(name)), 0, "keep %s", name);
}

Test(crossbackend, corpus_kvm_vs_emu_same_or_documented, .timeout = 900)
{
        static struct corpus_build b[CORPUS_MAX_BUILDS];
        int n, same = 0, timing = 0, limit = 0, pvm = 0;

        HV_REQUIRE_KVM();
        n = corpus_builds(b, CORPUS_MAX_BUILDS);
        for (int i = 0; i < n; i++) {
                char *opts = corpus_source_line(b[i].src, "corpus-run");
                struct check_result rk, re;
                struct hv_trace tk, te;
                struct hv_proc pk, pe, pd;
                const char *argv[] = { HVREPLAY,     "diff", "--json", "--ignore-field",
                                       "+rflags.af", NULL,   NULL,     NULL };
                long long ea, eb;

                corpus_record("kvm", &b[i], NULL, opts, &pk, &tk, &rk);
                keep_as("kvm.zst");
                corpus_record("emu", &b[i], NULL, opts, &pe, &te, &re);
                keep_as("emu.zst");
                free(opts);
                argv[5] = hv_tmp("kvm.zst");
                argv[6] = hv_tmp("emu.zst");
                cr_assert_eq(hv_run(argv, &pd), 0);
                cr_assert(pd.status == 0 || pd.status == 1, "%s: diff status %d: %s", b[i].file,
                          pd.status, pd.err);
                cr_assert(strstr(pd.out, "\"same_guest\":true"), "%s: the same image", b[i].file);

                if (pd.status == 0) {
                        same++;
                        goto next;
                }
                ea = json_number_of(pd.out, "event_a");
                eb = json_number_of(pd.out, "event_b");
                if (corpus_kvm_pvm_limit("kvm", &pk, &tk, &rk)) {
                        /* KVM stopped at its last exit; emu ran the guest through. */
                        cr_assert_eq(pe.status, 0, "%s: emu ran it through: %s", b[i].file, pe.err);
                        limit++;
                        if (ea == (long long)tk.nexits - 1)
                                goto next; /* the divergence is where KVM stopped */
                        /* ... or earlier: at kvm_pvm's #DB inside a shadow (below) ... */
                        if (pvm_db_in_shadow(&b[i], &tk)) {
                                pvm++;
                                goto next;
                        }
                        /* ... or where the interrupt landed, as below */
                        cr_assert(while_pending(&tk, ea) || while_pending(&te, eb),
                                  "%s: diverged at a#%lld b#%lld, before KVM stopped at #%zu, "
                                  "with no interrupt pending: %s",
                                  b[i].file, ea, eb, tk.nexits - 1, pd.out);
                        goto next;
                }
                if (pvm_db_in_shadow(&b[i], &tk)) {
                        /* kvm_pvm's #DB inside an SS load's shadow: documented, not emu's. */
                        cr_assert_eq(pe.status, 0, "%s: emu ran it through: %s", b[i].file, pe.err);
                        cr_assert_eq(re.nviolations, 0, "%s: emu clean", b[i].file);
                        pvm++;
                        goto next;
                }
                cr_assert(while_pending(&tk, ea) || while_pending(&te, eb),
                          "%s: diverged at a#%lld b#%lld with no interrupt pending: %s", b[i].file,
                          ea, eb, pd.out);
                cr_assert_eq(pk.status, pe.status, "%s: same guest status", b[i].file);
                cr_assert_str_eq(tk.console, te.console, "%s: same console", b[i].file);
                /* Raises that arrive while one is pending merge, so timing may change the count. */
                cr_assert(tk.ndelivers && te.ndelivers, "%s: deliveries on both", b[i].file);
                cr_assert_eq(rk.nviolations + re.nviolations, 0, "%s: both clean", b[i].file);
                timing++;
        next:
                check_result_free(&rk);
                check_result_free(&re);
                hv_trace_free(&tk);
                hv_trace_free(&te);
                hv_proc_free(&pk);
                hv_proc_free(&pe);
                hv_proc_free(&pd);
        }
        /* A build KVM stopped early cannot compare equal: count the others. */
        cr_assert_gt(same, (n - limit) / 4,
                     "many builds compare equal (%d of %d, %d stopped at kvm_pvm's limit)", same, n,
                     limit);
        cr_log_info("kvm vs emu over %d corpus builds: %d the same, %d with the interrupt at "
                    "another legal boundary, %d stopped at kvm_pvm's emulation limit, %d with "
                    "kvm_pvm's #DB inside an SS load's shadow",
                    n, same, timing, limit, pvm);
}
