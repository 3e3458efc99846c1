// SPDX-License-Identifier: MIT
/*
 * The interrupt-shadow corpus on the KVM backends (tests/corpus.c drives it
 * from the scenarios' own sources; addresses come from the symbol maps):
 *  - kvm under the default policy and kvm-irqchip: every build checks clean;
 *  - kvm with --single-step --inject eager: violations exactly at each
 *    build's shadowed_* labels, none at its noshadow_* labels;
 *  - the stress guest under kicks: eager violations only at shadowed
 *    instructions, none under the default policy; the PIT-driven stress
 *    guest on kvm-irqchip: clean.
 * In protected mode this machine's KVM stops at the first 32-bit IRET; that
 * outcome, and only it, is accepted instead of the full scenario.
 */
#include <criterion/criterion.h>

#include "corpus.h"

Test(corpus, default_policy_is_clean, .timeout = 600)
{
        HV_REQUIRE_KVM();
        corpus_all_clean("kvm");
}

Test(corpus, eager_single_step_violations_exactly_at_shadows, .timeout = 600)
{
        HV_REQUIRE_KVM();
        corpus_all_eager_exact("kvm");
}

/* The in-kernel irqchip decides itself when to inject: it must keep every shadow too. */
Test(corpus, kvm_irqchip_is_clean, .timeout = 600)
{
        HV_REQUIRE_KVM();
        corpus_all_clean("kvm-irqchip");
}

Test(corpus, stress_eager_violations_only_at_shadows, .timeout = 900)
{
        HV_REQUIRE_KVM();
        cr_assert(
                corpus_stress_eager_exact("kvm", "stress.bin", "real", CORPUS_STRESS_UND_PERMILLE));
        cr_assert(corpus_stress_eager_exact("kvm", "stress_l64.bin", "long",
                                            CORPUS_STRESS_UND_PERMILLE));
}

Test(corpus, stress_default_policy_is_clean, .timeout = 900)
{
        struct check_result res;

        HV_REQUIRE_KVM();
        cr_assert(corpus_stress("kvm", "stress.bin", "real", "window", &res));
        cr_assert_eq(res.nviolations, 0, "%zu violations under the window policy", res.nviolations);
        check_result_free(&res);
}

/* The guest's own timer drives deliveries: judged wherever KVM put them. */
Test(corpus, kvm_irqchip_timer_stress_is_clean, .timeout = 900)
{
        const char *args[] = { "--max-exits", "20000", NULL };
        static const struct corpus_build runs[] = {
                { .file = "stress_pit.bin", .stem = "stress_pit", .mode = "real" },
                { .file = "stress_pit_l64.bin", .stem = "stress_pit_l64", .mode = "long" },
        };

        HV_REQUIRE_KVM();
        for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
                struct check_result res;
                struct hv_trace t;
                struct hv_proc p;

                corpus_record("kvm-irqchip", &runs[i], args, NULL, &p, &t, &res);
                cr_assert_eq(p.status, HVREC_STATUS_LIMIT, "stopped by --max-exits: %s", p.err);
                cr_assert_geq(res.deliveries, 19000, "%s: the PIT drove the run", runs[i].file);
                cr_assert_eq(res.injections, 0, "no injection by hvrec: only the timer");
                cr_assert_eq(res.nviolations, 0, "%s: %zu violations", runs[i].file,
                             res.nviolations);
                cr_assert_eq(res.notes[NOTE_BACKEND_RAISED].count, res.deliveries);
                check_result_free(&res);
                hv_trace_free(&t);
                hv_proc_free(&p);
        }
}
