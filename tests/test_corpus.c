// SPDX-License-Identifier: MIT
/*
 * The interrupt-shadow corpus on KVM, data-driven from the guests' own
 * sources (guests/corpus/NAME.asm):
 *  - under the default policy every guest checks clean: no violation, no
 *    report-mismatch;
 *  - with --single-step --inject eager (plus the guest's corpus-eager
 *    options) a guest with shadows yields violations exactly at its
 *    shadowed_* labels, each of them, and never at a noshadow_* label;
 *  - the stress guest under kicks: eager violations only at shadowed
 *    instructions, none at all under the default policy.
 * Label addresses come from the NASM symbol maps.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "../src/replay/check.h"
#include "helpers.h"

#define MAX_LABELS 16

struct labels {
        char name[MAX_LABELS][64];
        uint64_t addr[MAX_LABELS];
        int n;
};

/* Every symbol of a guest's map whose name starts with prefix. */
static void map_labels(const char *guest, const char *prefix, struct labels *l)
{
        char path[1024], line[512];
        FILE *f;

        memset(l, 0, sizeof(*l));
        snprintf(path, sizeof(path), "%s/%s.map", HV_GUEST_DIR, guest);
        f = fopen(path, "r");
        cr_assert_not_null(f, "no map %s", path);
        while (fgets(line, sizeof(line), f)) {
                unsigned long long real, virt;
                char sym[256];

                if (sscanf(line, " %llx %llx %255s", &real, &virt, sym) != 3)
                        continue;
                /* NASM names local labels "parent.local": not scenario labels. */
                if (strncmp(sym, prefix, strlen(prefix)) || strchr(sym, '.') || l->n == MAX_LABELS)
                        continue;
                snprintf(l->name[l->n], sizeof(l->name[0]), "%.63s", sym);
                l->addr[l->n++] = virt;
        }
        fclose(f);
}

/* The value of a "; corpus-KEY:" line of a source, or NULL if absent. */
static char *source_line(const char *src, const char *key)
{
        char line[1024], want[64];
        FILE *f = fopen(src, "r");
        char *val = NULL;

        cr_assert_not_null(f, "%s", src);
        snprintf(want, sizeof(want), "; %s:", key);
        while (!val && fgets(line, sizeof(line), f)) {
                if (strncmp(line, want, strlen(want)))
                        continue;
                line[strcspn(line, "\n")] = 0;
                val = strdup(line + strlen(want));
        }
        fclose(f);
        return val;
}

/* Split options, replacing {label} with the label's address from the map. */
static int build_args(const char *guest, const char *opts, const char **argv, int max, char *store,
                      size_t store_len)
{
        char *copy = strdup(opts ? opts : ""), *tok, *save = NULL;
        size_t used = 0;
        int n = 0;

        for (tok = strtok_r(copy, " ", &save); tok && n < max; tok = strtok_r(NULL, " ", &save)) {
                char *open = strchr(tok, '{'), *out = store + used;

                if (open) {
                        char *close = strchr(open, '}');
                        char label[64];

                        cr_assert_not_null(close, "unclosed {label} in '%s'", tok);
                        snprintf(label, sizeof(label), "%.*s", (int)(close - open - 1), open + 1);
                        used += (size_t)snprintf(out, store_len - used, "%.*s0x%llx%s",
                                                 (int)(open - tok), tok,
                                                 (unsigned long long)hv_sym(guest, label),
                                                 close + 1) + 1;
                } else {
                        used += (size_t)snprintf(out, store_len - used, "%s", tok) + 1;
                }
                cr_assert_lt(used, store_len);
                argv[n++] = out;
        }
        free(copy);
        argv[n] = NULL;
        return n;
}

#define MAX_BINS 6 /* variants x modes */

struct corpus_guest {
        char src[1024];
        char bin[MAX_BINS][160]; /* one per variant and mode */
        const char *mode[MAX_BINS]; /* hvrec --mode */
        int nbin;
};

static const struct {
        const char *mode, *suffix;
} corpus_modes[] = {
        {"real", ""},
        {"protected", "_p32"},
        {"long", "_l64"},
};

static int corpus_list(struct corpus_guest *out, int max)
{
        char dir[600];
        struct dirent *de;
        DIR *d;
        int n = 0;

        snprintf(dir, sizeof(dir), "%s/guests/corpus", HV_SOURCE_DIR);
        d = opendir(dir);
        cr_assert_not_null(d, "%s", dir);
        while ((de = readdir(d)) && n < max) {
                size_t len = strlen(de->d_name);
                struct corpus_guest *g = &out[n];
                char *run, *variants, *modes, stem[128], vnames[2][32];
                int nv = 0;

                if (len < 5 || strcmp(de->d_name + len - 4, ".asm"))
                        continue;
                snprintf(g->src, sizeof(g->src), "%s/%s", dir, de->d_name);
                run = source_line(g->src, "corpus-run");
                if (!run)
                        continue; /* not a corpus scenario (the stress guest has its own test) */
                free(run);
                snprintf(stem, sizeof(stem), "%.*s", (int)(len - 4), de->d_name);
                variants = source_line(g->src, "variants");
                if (variants) {
                        char *save = NULL;

                        for (char *v = strtok_r(variants, " ", &save); v && nv < 2;
                             v = strtok_r(NULL, " ", &save))
                                snprintf(vnames[nv++], sizeof(vnames[0]), "_%.30s", v);
                        free(variants);
                } else {
                        vnames[nv++][0] = 0;
                }
                modes = source_line(g->src, "modes");
                g->nbin = 0;
                for (int v = 0; v < nv; v++)
                        for (size_t m = 0; m < sizeof(corpus_modes) / sizeof(corpus_modes[0]); m++) {
                                if (m && (!modes || !strstr(modes, corpus_modes[m].mode)))
                                        continue;
                                cr_assert_lt(g->nbin, MAX_BINS);
                                snprintf(g->bin[g->nbin], sizeof(g->bin[0]), "%.100s%.31s%.8s", stem, vnames[v],
                                         corpus_modes[m].suffix);
                                g->mode[g->nbin++] = corpus_modes[m].mode;
                        }
                free(modes);
                n++;
        }
        closedir(d);
        return n;
}

/* Record a guest, then check the trace with the checker library. */
static void record_on(const char *backend, const char *bin, const char *mode,
                      const char *const *extra, const char *opts, struct hv_proc *p,
                      struct hv_trace *t, struct check_result *res)
{
        const char *args[64];
        char store[2048];
        int n = 0;

        args[n++] = "--backend";
        args[n++] = backend;
        args[n++] = "--mode";
        args[n++] = mode;
        for (; extra && *extra; extra++)
                args[n++] = *extra;
        build_args(bin, opts, args + n, 60 - n, store, sizeof(store));
        hv_record(bin, args, t, p);
        cr_assert_eq(check_trace(hv_tmp("rec.zst"), res), 0, "%s on %s: %s", bin, backend,
                     res->error);
}

static void record_and_check(const char *bin, const char *mode, const char *const *extra,
                             const char *opts, struct hv_proc *p, struct hv_trace *t,
                             struct check_result *res)
{
        record_on("kvm", bin, mode, extra, opts, p, t, res);
}

/*
 * This machine's KVM (kvm_pvm) cannot emulate IRET or INT in 32-bit
 * protected mode: such a run ends with an internal error (emulation
 * failure) at the IRET.  That is the one outcome accepted instead of the
 * full scenario, and only in protected mode.
 */
static bool kvm_protected_limit(const char *mode, const struct hv_proc *p, const struct hv_trace *t,
                                const struct check_result *res)
{
        const struct trace_exit *last;

        if (strcmp(mode, "protected") || !t->nexits || t->end.why != TRACE_END_CRASH)
                return false;
        last = &t->exits[t->nexits - 1].e;
        if (last->reason != TRACE_EXIT_INTERNAL || last->u.internal.internal.suberror != 1 ||
            !last->insn_len || (last->insn[0] != 0xcf && last->insn[0] != 0xcd))
                return false;
        cr_assert_eq(p->status, 3, "a crash is exit status 3");
        cr_assert(res->have_end && res->end_why == TRACE_END_CRASH, "check reports the crash");
        cr_assert(strstr(res->end_message, "emulation failure"), "%s", res->end_message);
        return true;
}

/* Whether the guest reported a delivery interrupting linear address pc. */
static bool delivered_at(const struct hv_trace *t, uint64_t pc)
{
        for (size_t i = 0; i < t->ndelivers; i++)
                if (t->delivers[i].cs_base + t->delivers[i].ip == pc)
                        return true;
        return false;
}

/* Every corpus guest in every mode checks clean on `backend` under its default policy. */
static void default_policy_clean_on(const char *backend)
{
        struct corpus_guest g[64];
        int n, checked = 0;

        n = corpus_list(g, 64);
        cr_assert_geq(n, 10, "the corpus has its scenarios (found %d)", n);
        for (int i = 0; i < n; i++) {
                char *opts = source_line(g[i].src, "corpus-run");

                for (int b = 0; b < g[i].nbin; b++) {
                        struct check_result res;
                        struct hv_trace t;
                        struct hv_proc p;

                        record_on(backend, g[i].bin[b], g[i].mode[b], NULL, opts, &p, &t, &res);
                        cr_assert_gt(res.deliveries, 0, "%s: deliveries were checked", g[i].bin[b]);
                        if (!kvm_protected_limit(g[i].mode[b], &p, &t, &res))
                                cr_assert_eq(p.status, 0,
                                             "%s: the guest took its interrupt and exited 0 "
                                             "(status %d: %s)",
                                             g[i].bin[b], p.status, p.err);
                        cr_assert_eq(res.nviolations, 0, "%s: %zu violations under the window policy",
                                     g[i].bin[b], res.nviolations);
                        cr_assert_eq(res.by_rule[RULE_REPORT_MISMATCH], 0, "%s", g[i].bin[b]);
                        cr_assert_eq(res.nundetermined, 0, "%s: undetermined", g[i].bin[b]);
                        check_result_free(&res);
                        hv_trace_free(&t);
                        hv_proc_free(&p);
                        checked++;
                }
                free(opts);
        }
        cr_log_info("%d corpus guests clean on %s under its default policy", checked, backend);
}

Test(corpus, default_policy_is_clean, .timeout = 600)
{
        HV_REQUIRE_KVM();
        default_policy_clean_on("kvm");
}

/* The in-kernel irqchip decides itself when to inject: it must keep every shadow too. */
Test(corpus, kvm_irqchip_is_clean, .timeout = 600)
{
        HV_REQUIRE_KVM();
        default_policy_clean_on("kvm-irqchip");
}

/* The guest's own timer drives deliveries: judged wherever KVM put them. */
Test(corpus, kvm_irqchip_timer_stress_is_clean, .timeout = 900)
{
        const char *args[] = {"--max-exits", "20000", NULL};
        static const struct {
                const char *bin, *mode;
        } runs[] = {{"stress_pit", "real"}, {"stress_pit_l64", "long"}};

        HV_REQUIRE_KVM();
        for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
                struct check_result res;
                struct hv_trace t;
                struct hv_proc p;

                record_on("kvm-irqchip", runs[i].bin, runs[i].mode, args, NULL, &p, &t, &res);
                cr_assert_eq(p.status, 4, "stopped by --max-exits: %s", p.err);
                cr_assert_geq(res.deliveries, 19000, "%s: the PIT drove the run", runs[i].bin);
                cr_assert_eq(res.injections, 0, "no injection by hvrec: only the timer");
                cr_assert_eq(res.nviolations, 0, "%s: %zu violations", runs[i].bin, res.nviolations);
                cr_assert_eq(res.notes[NOTE_BACKEND_RAISED].count, res.deliveries);
                check_result_free(&res);
                hv_trace_free(&t);
                hv_proc_free(&p);
        }
}

Test(corpus, eager_single_step_violations_exactly_at_shadows, .timeout = 600)
{
        static const char *const eager[] = {"--single-step", "--inject", "eager", NULL};
        struct corpus_guest g[64];
        int n;

        HV_REQUIRE_KVM();
        n = corpus_list(g, 64);
        for (int i = 0; i < n; i++) {
                char *opts = source_line(g[i].src, "corpus-eager");

                for (int b = 0; b < g[i].nbin; b++) {
                        const char *bin = g[i].bin[b];
                        struct labels shadowed, clean;
                        int hits[MAX_LABELS] = {0};
                        struct check_result res;
                        struct hv_trace t;
                        struct hv_proc p;

                        map_labels(bin, "shadowed_", &shadowed);
                        map_labels(bin, "noshadow_", &clean);
                        bool limited;

                        record_and_check(bin, g[i].mode[b], eager, opts, &p, &t, &res);
                        limited = kvm_protected_limit(g[i].mode[b], &p, &t, &res);
                        cr_assert_eq(res.by_rule[RULE_REPORT_MISMATCH], 0, "%s: report-mismatch", bin);
                        for (size_t v = 0; v < res.nviolations; v++) {
                                const struct check_finding *f = &res.violations[v];
                                int found = -1;

                                cr_assert(f->rule == RULE_STI_SHADOW || f->rule == RULE_MOVSS_SHADOW,
                                          "%s: unexpected %s at 0x%llx", bin,
                                          check_rule_name(f->rule), (unsigned long long)f->pc);
                                for (int s = 0; s < shadowed.n; s++)
                                        if (shadowed.addr[s] == f->pc)
                                                found = s;
                                cr_assert_geq(found, 0, "%s: violation at 0x%llx is not a shadowed_ label",
                                              bin, (unsigned long long)f->pc);
                                hits[found]++;
                        }
                        /* Where the backend stopped early, what it recorded must still agree. */
                        if (limited) {
                                cr_assert_leq(res.nviolations, (size_t)shadowed.n, "%s", bin);
                                cr_log_info("%s: kvm ended at an IRET (emulation failure) after %zu "
                                            "violation(s), all at shadowed labels",
                                            bin, res.nviolations);
                                check_result_free(&res);
                                hv_trace_free(&t);
                                hv_proc_free(&p);
                                continue;
                        }
                        for (int s = 0; s < shadowed.n; s++)
                                cr_assert_gt(hits[s], 0, "%s: no violation at %s (0x%llx)", bin,
                                             shadowed.name[s], (unsigned long long)shadowed.addr[s]);
                        /* No-shadow places got their interrupt, and it is not reported. */
                        for (int c = 0; c < clean.n; c++) {
                                cr_assert(delivered_at(&t, clean.addr[c]),
                                          "%s: no interrupt landed at %s", bin, clean.name[c]);
                                for (size_t v = 0; v < res.nviolations; v++)
                                        cr_assert_neq(res.violations[v].pc, clean.addr[c], "%s: %s",
                                                      bin, clean.name[c]);
                                for (size_t u = 0; u < res.nundetermined; u++)
                                        cr_assert_neq(res.undetermined[u].pc, clean.addr[c],
                                                      "%s: %s undetermined", bin, clean.name[c]);
                        }
                        /* hvreplay check exits 1 exactly when there are violations. */
                        if (shadowed.n)
                                cr_assert_gt(res.nviolations, 0, "%s", bin);
                        else
                                cr_assert_eq(res.nviolations, 0, "%s: a no-shadow guest", bin);
                        check_result_free(&res);
                        hv_trace_free(&t);
                        hv_proc_free(&p);
                }
                free(opts);
        }
}

static void stress(const char *policy, struct check_result *res)
{
        const char *args[] = {"--kick", "20:0x30", "--inject", policy, "--timeout", "300", NULL};
        struct hv_trace t;
        struct hv_proc p;

        record_and_check("stress", "real", args, NULL, &p, &t, res);
        hv_trace_free(&t);
        cr_assert_eq(p.status, 0, "the stress guest counted its deliveries and exited 0: %s",
                     p.err);
        cr_assert_geq(res->deliveries, 20000);
        hv_proc_free(&p);
}

Test(corpus, stress_eager_violations_only_at_shadows, .timeout = 900)
{
        struct labels shadowed;
        struct check_result res;

        HV_REQUIRE_KVM();
        map_labels("stress", "shadowed_", &shadowed);
        cr_assert_eq(shadowed.n, 3);
        stress("eager", &res);
        cr_assert_gt(res.nviolations, 0, "an eager VMM under kicks lands in shadows");
        for (size_t v = 0; v < res.nviolations; v++) {
                const struct check_finding *f = &res.violations[v];
                bool at_shadow = false;

                cr_assert(f->rule == RULE_STI_SHADOW || f->rule == RULE_MOVSS_SHADOW,
                          "unexpected %s at 0x%llx", check_rule_name(f->rule),
                          (unsigned long long)f->pc);
                for (int s = 0; s < shadowed.n; s++)
                        at_shadow |= shadowed.addr[s] == f->pc;
                cr_assert(at_shadow, "violation at 0x%llx", (unsigned long long)f->pc);
        }
        cr_assert_gt(res.by_rule[RULE_STI_SHADOW], 0);
        cr_assert_gt(res.by_rule[RULE_MOVSS_SHADOW], 0);
        cr_log_info("stress, eager: %llu deliveries, %zu violations, %zu undetermined",
                    (unsigned long long)res.deliveries, res.nviolations, res.nundetermined);
        check_result_free(&res);
}

Test(corpus, stress_default_policy_is_clean, .timeout = 900)
{
        struct check_result res;

        HV_REQUIRE_KVM();
        stress("window", &res);
        cr_assert_eq(res.nviolations, 0, "%zu violations under the window policy",
                     res.nviolations);
        check_result_free(&res);
}
