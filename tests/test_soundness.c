// SPDX-License-Identifier: MIT
/*
 * The checker against its own evidence on the mixed stress guest
 * (tests/corpus.c drives the corpus; ground truth comes from the guests'
 * labels; every corpus build's eager single-step run is cross-validated
 * in corpus_all_eager_exact, run by test_emu and test_corpus):
 *  - the mixed stress guest (sequences of delaying instructions, indirect
 *    jumps, RET, software INT, self-modifying code) kicked under an eager
 *    VMM: violations only at its shadowed labels, at most 0.5% of the
 *    deliveries undetermined, and its step-inject exits cross-validated.
 * On the emu backend always, on KVM when /dev/kvm is there.
 */
#include <stdbool.h>
#include <stdio.h>

#include <criterion/criterion.h>

#include "corpus.h"

/*
 * with_protected: also the protected-mode build.  This machine's KVM (kvm_pvm)
 * cannot run a 32-bit protected-mode INT or IRET (docs/backends.md), and
 * the loop has both: on KVM the protected-mode build is left out, as
 * test_corpus does with the stress guest.
 */
static void stress_mix(const char *backend, bool with_protected)
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

                snprintf(what, sizeof(what), "%s on %s", runs[i].file, backend);
                corpus_stress_eager_exact(backend, runs[i].file, runs[i].mode);
                cr_assert_eq(check_trace_opts(hv_tmp("rec.zst"), &keep, &res), 0, "%s", res.error);
                und = corpus_cross_validate(what, hv_tmp("rec.zst"));
                cr_log_info("%s: %llu deliveries, %zu violations, %zu undetermined; without the "
                            "steps hvrec took, %llu undetermined",
                            what, (unsigned long long)res.deliveries, res.nviolations,
                            res.nundetermined, (unsigned long long)und);
                check_result_free(&res);
        }
}

Test(soundness, emu_stress_mix, .timeout = 900)
{
        stress_mix("emu", true);
}

Test(soundness, kvm_stress_mix, .timeout = 900)
{
        HV_REQUIRE_KVM();
        stress_mix("kvm", false);
}
