// SPDX-License-Identifier: MIT
/*
 * NMIs (issue 15): the NMI guests of guests/corpus, recorded with --nmi and
 * judged against their labels (addresses from the symbol maps):
 *  - nmi_shadow, an NMI raised at each of its shadowed_* and nmisti_*
 *    labels (--nmi rip:LABEL): with --single-step --inject eager,
 *    nmi-movss-shadow exactly at each shadowed_ label and an nmi-after-sti
 *    note at each nmisti_ label; under the default policy, stepped or not,
 *    no violation and nothing undetermined, no NMI inside a shadow;
 *    stepped traces judged without their steps agree or say undetermined;
 *  - nmi_nested, a second NMI raised inside the first one's handler:
 *    eager gives nmi-while-blocked exactly at its nested_* labels, the
 *    default policy nothing.
 * On emu, which delivers NMIs itself, in every mode.  On kvm only where
 * /dev/kvm exists, and only the claims any correct KVM must meet: no
 * violation under the default policy, violations only at labels.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "corpus.h"

static const struct {
        const char *mode, *suffix;
} modes[] = { { "real", "" }, { "protected", "_p32" }, { "long", "_l64" } };

#define NMODES (sizeof(modes) / sizeof(modes[0]))

static const char *const eager_step[] = { "--single-step", "--inject", "eager", NULL };
static const char *const eager[] = { "--inject", "eager", NULL };
static const char *const step[] = { "--single-step", NULL };

/* The build of guests/corpus/NAME.asm in modes[m]. */
static void build_of(struct corpus_build *b, const char *name, size_t m)
{
        memset(b, 0, sizeof(*b));
        snprintf(b->src, sizeof(b->src), "%s/guests/corpus/%s.asm", HV_SOURCE_DIR, name);
        snprintf(b->stem, sizeof(b->stem), "%s%s", name, modes[m].suffix);
        snprintf(b->file, sizeof(b->file), "%.150s.bin", b->stem);
        b->mode = modes[m].mode;
}

/* Record b and check it keeping every verdict. */
static void record(const char *backend, const struct corpus_build *b, const char *const *extra,
                   const char *opts, struct hv_proc *p, struct hv_trace *t,
                   struct check_result *res)
{
        static const struct check_opts keep = { .keep_verdicts = true };

        corpus_record(backend, b, extra, opts, p, t, res);
        check_result_free(res);
        cr_assert_eq(check_trace_opts(hv_tmp("rec.zst"), &keep, res), 0, "%s on %s: %s", b->file,
                     backend, res->error);
        cr_assert_eq(res->nverdicts, res->deliveries, "%s: a verdict per delivery", b->file);
}

static int label_at(const struct corpus_labels *l, uint64_t pc)
{
        for (int i = 0; i < l->n; i++)
                if (l->addr[i] == pc)
                        return i;
        return -1;
}

static void done(struct hv_proc *p, struct hv_trace *t, struct check_result *res)
{
        check_result_free(res);
        hv_trace_free(t);
        hv_proc_free(p);
}

/* nmi_shadow's labels, and "--nmi rip:{LABEL}" for each of them. */
static void shadow_triggers(const char *stem, struct corpus_labels *sh, struct corpus_labels *sti,
                            char *opts, size_t len)
{
        size_t n = 0;

        corpus_labels(stem, "shadowed_", sh);
        corpus_labels(stem, "nmisti_", sti);
        cr_assert_gt(sh->n, 0, "%s: shadowed_ labels", stem);
        cr_assert_gt(sti->n, 0, "%s: nmisti_ labels", stem);
        opts[0] = 0;
        for (int i = 0; i < sh->n; i++)
                n += (size_t)snprintf(opts + n, len - n, "%s--nmi rip:{%s}", n ? " " : "",
                                      sh->name[i]);
        for (int i = 0; i < sti->n; i++)
                n += (size_t)snprintf(opts + n, len - n, " --nmi rip:{%s}", sti->name[i]);
        cr_assert_lt(n, len);
}

/* Eager, stepped: each shadowed_ label its nmi-movss-shadow, each nmisti_ label its note. */
static void shadow_eager(const char *backend, bool exact)
{
        for (size_t m = 0; m < NMODES; m++) {
                struct corpus_labels sh, sti;
                int hits_sh[CORPUS_MAX_LABELS] = { 0 }, hits_sti[CORPUS_MAX_LABELS] = { 0 };
                struct corpus_build b;
                struct check_result res;
                struct hv_trace t;
                struct hv_proc p;
                char opts[1024];

                build_of(&b, "nmi_shadow", m);
                shadow_triggers(b.stem, &sh, &sti, opts, sizeof(opts));
                record(backend, &b, eager_step, opts, &p, &t, &res);
                /* Judged without the steps: the same verdicts, or undetermined. */
                corpus_cross_validate(b.file, hv_tmp("rec.zst"));
                if (corpus_kvm_pvm_limit(backend, &p, &t, &res)) {
                        done(&p, &t, &res);
                        continue;
                }
                cr_assert_eq(p.status, 0, "%s on %s: status %d: %s", b.file, backend, p.status,
                             p.err);
                cr_assert_eq(res.nundetermined, 0, "%s: %s", b.file,
                             res.nundetermined ? res.undetermined[0].reason : "");
                for (size_t i = 0; i < res.nviolations; i++)
                        cr_assert(res.violations[i].rule == RULE_NMI_MOVSS_SHADOW &&
                                          label_at(&sh, res.violations[i].pc) >= 0,
                                  "%s on %s: %s at 0x%llx", b.file, backend,
                                  check_rule_name(res.violations[i].rule),
                                  (unsigned long long)res.violations[i].pc);
                for (size_t v = 0; v < res.nverdicts; v++) {
                        const struct check_verdict *vd = &res.verdicts[v];
                        int s = label_at(&sh, vd->pc), n = label_at(&sti, vd->pc);

                        if (s >= 0) {
                                cr_assert_eq(vd->rule, RULE_NMI_MOVSS_SHADOW, "%s: at %s: %s",
                                             b.file, sh.name[s], check_rule_name(vd->rule));
                                hits_sh[s]++;
                        }
                        if (n >= 0) {
                                cr_assert(vd->rule == RULE_NONE && vd->note == NOTE_NMI_AFTER_STI,
                                          "%s: at %s: %s, note %d", b.file, sti.name[n],
                                          check_rule_name(vd->rule), vd->note);
                                hits_sti[n]++;
                        }
                }
                for (int s = 0; exact && s < sh.n; s++)
                        cr_assert_eq(hits_sh[s], 1, "%s: %d NMIs at %s", b.file, hits_sh[s],
                                     sh.name[s]);
                for (int n = 0; exact && n < sti.n; n++)
                        cr_assert_eq(hits_sti[n], 1, "%s: %d NMIs at %s", b.file, hits_sti[n],
                                     sti.name[n]);
                if (exact)
                        cr_assert_eq(res.deliveries, (uint64_t)(sh.n + sti.n), "%s", b.file);
                done(&p, &t, &res);
        }
}

/* The default policy: the same NMIs, stepped; then one NMI at full speed. */
static void shadow_default(const char *backend)
{
        for (size_t m = 0; m < NMODES; m++) {
                struct corpus_labels sh, sti;
                struct corpus_build b;
                struct check_result res;
                struct hv_trace t;
                struct hv_proc p;
                char opts[1024], *run;

                build_of(&b, "nmi_shadow", m);
                shadow_triggers(b.stem, &sh, &sti, opts, sizeof(opts));
                record(backend, &b, step, opts, &p, &t, &res);
                corpus_cross_validate(b.file, hv_tmp("rec.zst"));
                if (!corpus_kvm_pvm_limit(backend, &p, &t, &res)) {
                        cr_assert_eq(p.status, 0, "%s: status %d: %s", b.file, p.status, p.err);
                        cr_assert_eq(res.deliveries, (uint64_t)(sh.n + sti.n), "%s", b.file);
                }
                cr_assert_eq(res.nviolations, 0, "%s on %s, default, stepped: %zu violations",
                             b.file, backend, res.nviolations);
                cr_assert_eq(res.nundetermined, 0, "%s: %s", b.file,
                             res.nundetermined ? res.undetermined[0].reason : "");
                /* Held past the shadow: delivered after the instruction it covers. */
                for (int s = 0; s < sh.n; s++)
                        cr_assert(!corpus_delivered_at(&t, sh.addr[s]), "%s: an NMI at %s", b.file,
                                  sh.name[s]);
                done(&p, &t, &res);

                run = corpus_source_line(b.src, "nmi-run");
                cr_assert_not_null(run, "%s: an nmi-run line", b.src);
                record(backend, &b, NULL, run, &p, &t, &res);
                free(run);
                if (!corpus_kvm_pvm_limit(backend, &p, &t, &res))
                        cr_assert_eq(p.status, 0, "%s: status %d: %s", b.file, p.status, p.err);
                cr_assert_gt(res.deliveries, 0, "%s", b.file);
                cr_assert_eq(res.nviolations, 0, "%s, default: %zu violations", b.file,
                             res.nviolations);
                cr_assert_eq(res.nundetermined, 0, "%s", b.file);
                done(&p, &t, &res);
        }
}

/*
 * nmi_nested under `extra`: with eager, nmi-while-blocked at each nested_
 * label (exactly once each where `exact`); otherwise clean.
 */
static void nested(const char *backend, const char *const *extra, bool is_eager, bool exact)
{
        for (size_t m = 0; m < NMODES; m++) {
                int hits[CORPUS_MAX_LABELS] = { 0 };
                struct corpus_labels nl;
                struct corpus_build b;
                struct check_result res;
                struct hv_trace t;
                struct hv_proc p;
                char *run;

                build_of(&b, "nmi_nested", m);
                corpus_labels(b.stem, "nested_", &nl);
                cr_assert_gt(nl.n, 0, "%s: nested_ labels", b.stem);
                run = corpus_source_line(b.src, "nmi-run");
                cr_assert_not_null(run, "%s: an nmi-run line", b.src);
                record(backend, &b, extra, run, &p, &t, &res);
                free(run);
                if (extra && !strcmp(extra[0], "--single-step"))
                        corpus_cross_validate(b.file, hv_tmp("rec.zst"));
                if (corpus_kvm_pvm_limit(backend, &p, &t, &res)) {
                        done(&p, &t, &res);
                        continue;
                }
                cr_assert_eq(p.status, 0, "%s on %s: status %d: %s", b.file, backend, p.status,
                             p.err);
                cr_assert_eq(res.deliveries, 2, "%s: both NMIs", b.file);
                cr_assert_eq(res.nundetermined, 0, "%s: %s", b.file,
                             res.nundetermined ? res.undetermined[0].reason : "");
                for (size_t i = 0; i < res.nviolations; i++) {
                        int n = label_at(&nl, res.violations[i].pc);

                        cr_assert(is_eager && res.violations[i].rule == RULE_NMI_WHILE_BLOCKED &&
                                          n >= 0,
                                  "%s on %s: %s at 0x%llx", b.file, backend,
                                  check_rule_name(res.violations[i].rule),
                                  (unsigned long long)res.violations[i].pc);
                        hits[n]++;
                }
                for (int n = 0; is_eager && exact && n < nl.n; n++)
                        cr_assert_eq(hits[n], 1, "%s: %d violations at %s", b.file, hits[n],
                                     nl.name[n]);
                done(&p, &t, &res);
        }
}

Test(nmi_emu, eager_movss_shadow_exactly_at_the_labels, .timeout = 600)
{
        hv_require_backend("emu");
        shadow_eager("emu", true);
}

Test(nmi_emu, default_policy_keeps_the_shadows, .timeout = 600)
{
        hv_require_backend("emu");
        shadow_default("emu");
}

Test(nmi_emu, nested_nmi_found_under_eager, .timeout = 600)
{
        hv_require_backend("emu");
        nested("emu", eager_step, true, true);
        nested("emu", eager, true, true);
}

Test(nmi_emu, nested_nmi_waits_for_the_iret_by_default, .timeout = 600)
{
        hv_require_backend("emu");
        nested("emu", step, false, false);
        nested("emu", NULL, false, false);
}

/* KVM_NMI: not measured on the machine this was written on (docs/backends.md). */
Test(nmi_kvm, eager_violations_only_at_labels, .timeout = 600)
{
        HV_REQUIRE_KVM();
        shadow_eager("kvm", false);
        nested("kvm", eager_step, true, false);
}

Test(nmi_kvm, default_policy_is_clean, .timeout = 600)
{
        HV_REQUIRE_KVM();
        shadow_default("kvm");
        nested("kvm", NULL, false, false);
}
