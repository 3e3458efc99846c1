// SPDX-License-Identifier: MIT
/*
 * The checker against its own evidence on the mixed stress guest
 * (tests/corpus.c drives the corpus; ground truth comes from the guests'
 * labels; every corpus build's eager single-step run is cross-validated
 * in corpus_all_eager_exact, run by test_emu and test_corpus):
 *  - the mixed stress guest (sequences of delaying instructions, indirect
 *    jumps, RET, software INT, self-modifying code) kicked under an eager
 *    VMM: violations only at its shadowed labels, at most 0.5% of the
 *    deliveries undetermined (on emu; see stress_mix for KVM), and its
 *    step-inject exits cross-validated.
 * On the emu backend always, on KVM when /dev/kvm is there.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "corpus.h"

/*
 * The mixed stress guest in every mode.  max_und_permille bounds the
 * deliveries left undetermined: 0.5% on emu.  On kvm (kvm_pvm) the kicks
 * land during the single steps hvrec takes before it injects, which
 * breaks the step chain: about 29% of the deliveries stay undetermined
 * there (docs/checker.md, "Undetermined under kicks on KVM"), so on KVM
 * this test holds the checker to soundness only, and logs the share.
 * kvm_pvm also cannot run the loop's software INT in 32-bit protected or
 * 64-bit mode (docs/backends.md): the long-mode build stops there, and
 * what it recorded is judged; the protected-mode build (with_protected)
 * is left out on KVM, as test_corpus does with the stress guest.
 */
static void stress_mix(const char *backend, bool with_protected, unsigned max_und_permille)
{
        static const struct {
                const char *file, *mode;
        } runs[] = {
                { "stress_mix.bin", "real" },
                { "stress_mix_l64.bin", "long" },
                { "stress_mix_p32.bin", "protected" },
        };
        static const struct check_opts keep = { .keep_verdicts = true };

        for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]) - !with_protected; i++) {
                struct check_result res;
                char what[256];
                uint64_t und;
                bool complete;

                snprintf(what, sizeof(what), "%s on %s", runs[i].file, backend);
                complete = corpus_stress_eager_exact(backend, runs[i].file, runs[i].mode,
                                                     max_und_permille);
                cr_assert(complete || strcmp(backend, "emu"), "%s ran to its end", what);
                cr_assert_eq(check_trace_opts(hv_tmp("rec.zst"), &keep, &res), 0, "%s", res.error);
                und = corpus_cross_validate(what, hv_tmp("rec.zst"));
                cr_log_info("%s: %llu deliveries, %zu violations, %zu undetermined; without the "
                            "steps hvrec took, %llu undetermined%s",
                            what, (unsigned long long)res.deliveries, res.nviolations,
                            res.nundetermined, (unsigned long long)und,
                            complete ? "" : " (stopped at kvm_pvm's emulation limit)");
                check_result_free(&res);
        }
}

Test(soundness, emu_stress_mix, .timeout = 900)
{
        stress_mix("emu", true, CORPUS_STRESS_UND_PERMILLE);
}

Test(soundness, kvm_stress_mix, .timeout = 900)
{
        HV_REQUIRE_KVM();
        stress_mix("kvm", false, 1000);
}
