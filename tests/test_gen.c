// SPDX-License-Identifier: MIT
/*
 * hvgen, the guest generator of campaigns: the same seed gives the same
 * guest, every generated guest runs to its exit port on emu with a clean
 * check, and under `--single-step --inject eager` the checker's violations
 * are exactly the ground truth's guaranteed shadows, read from the sidecar.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "../src/replay/check.h"
#include "helpers.h"

#define SEEDS 6

static const char *const modes[] = { "real", "protected", "long" };

/* The sidecar: the lines this suite relies on (docs/campaigns.md). */
struct truth_bound {
        uint64_t addr;
        char shadow[8], cause[8];
        unsigned if_set;
};

struct truth {
        unsigned long long seed;
        char mode[16];
        size_t nbounds, declared, first;
        struct truth_bound b[4096];
};

static void read_truth(const char *path, struct truth *t)
{
        FILE *f = fopen(path, "r");
        char line[256];
        int version = 0;

        cr_assert(f, "cannot open %s", path);
        memset(t, 0, sizeof(*t));
        while (fgets(line, sizeof(line), f)) {
                struct truth_bound b;

                if (sscanf(line, "hvgen-truth %d", &version) == 1 ||
                    sscanf(line, "seed %llu", &t->seed) == 1 ||
                    sscanf(line, "mode %15s", t->mode) == 1 ||
                    sscanf(line, "bounds %zu", &t->declared) == 1)
                        continue;
                if (sscanf(line, "shadow %" SCNx64 " %7s %7s if=%u", &b.addr, b.shadow, b.cause,
                           &b.if_set) == 4) {
                        cr_assert_lt(t->nbounds, sizeof(t->b) / sizeof(t->b[0]));
                        t->b[t->nbounds++] = b;
                        t->first += !strcmp(b.shadow, "first");
                }
        }
        fclose(f);
        cr_assert_eq(version, 1, "%s: no 'hvgen-truth 1' line", path);
        cr_assert_eq(t->nbounds, t->declared, "%s: %zu shadow lines, 'bounds %zu'", path,
                     t->nbounds, t->declared);
}

/* hvgen --seed SEED --mode MODE -o NAME [EXTRA [EXTRA2]]; returns the guest's path. */
static const char *gen(const char *name, unsigned seed, const char *mode, const char *extra,
                       const char *extra2)
{
        char s[32];
        const char *out = hv_tmp(name);
        const char *argv[] = { HVGEN, "--seed", s, "--mode", mode, "-o", out, extra, extra2, NULL };
        struct hv_proc p;

        snprintf(s, sizeof(s), "%u", seed);
        cr_assert_eq(hv_run(argv, &p), 0, "cannot run hvgen");
        cr_assert_eq(p.status, 0, "hvgen --seed %u --mode %s: status %d: %s", seed, mode, p.status,
                     p.err);
        hv_proc_free(&p);
        return out;
}

static char *slurp(const char *path, size_t *len)
{
        FILE *f = fopen(path, "rb");
        char *buf;
        long n;

        cr_assert(f, "cannot open %s", path);
        fseek(f, 0, SEEK_END);
        n = ftell(f);
        rewind(f);
        buf = malloc((size_t)n + 1);
        cr_assert(buf);
        cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
        fclose(f);
        buf[n] = 0;
        *len = (size_t)n;
        return buf;
}

static bool same_file(const char *a, const char *b)
{
        size_t la, lb;
        char *x = slurp(a, &la), *y = slurp(b, &lb);
        bool same = la == lb && !memcmp(x, y, la);

        free(x);
        free(y);
        return same;
}

Test(gen, same_seed_same_bytes)
{
        for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
                gen("a.bin", 42, modes[m], NULL, NULL);
                gen("b.bin", 42, modes[m], NULL, NULL);
                cr_expect(same_file(hv_tmp("a.bin"), hv_tmp("b.bin")), "%s: seed 42 twice differs",
                          modes[m]);
                cr_expect(same_file(hv_tmp("a.bin.truth"), hv_tmp("b.bin.truth")),
                          "%s: seed 42's truth twice differs", modes[m]);
                gen("b.bin", 43, modes[m], NULL, NULL);
                cr_expect(!same_file(hv_tmp("a.bin"), hv_tmp("b.bin")),
                          "%s: seeds 42 and 43 give the same guest", modes[m]);
        }
}

/* Record `guest` on emu in `mode` with extra options; the trace is rec.zst. */
static void record(const char *guest, const char *mode, const char *const *extra, int want,
                   struct hv_trace *t)
{
        const char *argv[96] = { HVREC, "run", "--backend", "emu", "--mode", mode, "-q", "-o" };
        size_t n = 8;
        struct hv_proc p;

        hv_require_backend("emu");
        argv[n++] = hv_tmp("rec.zst");
        unlink(hv_tmp("rec.zst"));
        for (; extra && *extra; extra++) {
                cr_assert_lt(n, sizeof(argv) / sizeof(argv[0]) - 2);
                argv[n++] = *extra;
        }
        argv[n++] = guest;
        argv[n] = NULL;
        cr_assert_eq(hv_run(argv, &p), 0, "cannot run hvrec");
        cr_assert_eq(p.status, want, "%s (%s): hvrec status %d, not %d: %s", guest, mode, p.status,
                     want, p.err);
        hv_proc_free(&p);
        cr_assert_eq(hv_trace_load(hv_tmp("rec.zst"), t), HVT_OK);
}

Test(gen, every_mode_runs_to_its_exit_and_checks_clean)
{
        for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
                for (unsigned seed = 1; seed <= SEEDS; seed++) {
                        const char *g = gen("g.bin", seed, modes[m], NULL, NULL);
                        struct check_result res;
                        struct hv_trace t;
                        const struct hv_exit *last;

                        record(g, modes[m], NULL, 0, &t);
                        cr_assert(t.have_end);
                        cr_expect_eq(t.end.why, HVT_END_GUEST_EXIT,
                                     "seed %u %s: ended with why=%u, not at the exit port", seed,
                                     modes[m], t.end.why);
                        last = hv_last_exit(&t);
                        cr_expect(last->e.reason == HVT_EXIT_IO && last->e.u.io.io.port == 0xf4,
                                  "seed %u %s: the last exit is not the exit port", seed, modes[m]);
                        cr_expect_gt(t.ndelivers, 0, "seed %u %s: no interrupt was delivered", seed,
                                     modes[m]);
                        hv_trace_free(&t);
                        cr_assert_eq(check_trace(hv_tmp("rec.zst"), &res), 0, "%s", res.error);
                        cr_expect_eq(res.nviolations, 0,
                                     "seed %u %s: %zu violations under the window policy "
                                     "(first: %s at %#llx)",
                                     seed, modes[m], res.nviolations,
                                     res.nviolations ? check_rule_name(res.violations[0].rule) : "",
                                     res.nviolations ? (unsigned long long)res.violations[0].pc
                                                     : 0ull);
                        check_result_free(&res);
                }
        }
}

static unsigned rule_of(const char *cause)
{
        return !strcmp(cause, "sti") ? RULE_STI_SHADOW : RULE_MOVSS_SHADOW;
}

/*
 * Eager injection while single-stepping delivers a pending interrupt at the
 * first boundary with IF=1, shadow or not: an interrupt raised at every
 * guaranteed shadow (IF=1) must be a violation there, and nowhere else.
 * A "second" boundary is not raised at: after a delivery at the boundary
 * before it, the interrupted instruction runs again as the first of its
 * sequence (docs/checker.md), which the static truth does not model.
 */
Test(gen, eager_violations_are_exactly_the_ground_truth)
{
        static struct truth tr;

        for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
                for (unsigned seed = 1; seed <= SEEDS; seed++) {
                        const char *g = gen("e.bin", seed, modes[m], "--items=24", NULL);
                        static char trig[64][48];
                        const char *extra[2 + 2 * 64 + 1] = { "--single-step", "--inject=eager" };
                        size_t n = 2, want = 0;
                        struct check_result res;
                        struct hv_trace t;

                        read_truth(hv_tmp("e.bin.truth"), &tr);
                        cr_assert_str_eq(tr.mode, modes[m]);
                        cr_assert_eq(tr.seed, seed);
                        cr_assert_gt(tr.first, 0, "seed %u %s: no shadow in the truth", seed,
                                     modes[m]);
                        for (size_t i = 0; i < tr.nbounds; i++) {
                                if (strcmp(tr.b[i].shadow, "first") || !tr.b[i].if_set)
                                        continue;
                                cr_assert_lt(want, 64, "more shadows than hvrec has triggers");
                                snprintf(trig[want], sizeof(trig[want]), "0x30@rip:%#llx",
                                         (unsigned long long)tr.b[i].addr);
                                extra[n++] = "--irq";
                                extra[n++] = trig[want++];
                        }
                        extra[n] = NULL;
                        /* 0: the exit port, or the final HLT once its wake-up came early. */
                        record(g, modes[m], extra, 0, &t);
                        hv_trace_free(&t);
                        cr_assert_eq(check_trace(hv_tmp("rec.zst"), &res), 0, "%s", res.error);
                        cr_expect_eq(res.nundetermined, 0, "seed %u %s: %zu undetermined", seed,
                                     modes[m], res.nundetermined);
                        for (size_t v = 0; v < res.nviolations; v++) {
                                const struct check_finding *f = &res.violations[v];
                                size_t i;

                                for (i = 0; i < tr.nbounds; i++)
                                        if (tr.b[i].addr == f->pc &&
                                            !strcmp(tr.b[i].shadow, "first"))
                                                break;
                                cr_expect_lt(i, tr.nbounds,
                                             "seed %u %s: %s at %#llx, no guaranteed shadow there",
                                             seed, modes[m], check_rule_name(f->rule),
                                             (unsigned long long)f->pc);
                                if (i < tr.nbounds)
                                        cr_expect_eq(f->rule, rule_of(tr.b[i].cause),
                                                     "seed %u %s: %s at %#llx, truth says %s", seed,
                                                     modes[m], check_rule_name(f->rule),
                                                     (unsigned long long)f->pc, tr.b[i].cause);
                        }
                        for (size_t i = 0; i < tr.nbounds; i++) {
                                bool seen = false;

                                if (strcmp(tr.b[i].shadow, "first") || !tr.b[i].if_set)
                                        continue;
                                for (size_t v = 0; v < res.nviolations; v++)
                                        seen |= res.violations[v].pc == tr.b[i].addr;
                                cr_expect(seen, "seed %u %s: no violation at %#llx (%s, first)",
                                          seed, modes[m], (unsigned long long)tr.b[i].addr,
                                          tr.b[i].cause);
                        }
                        cr_expect_geq(res.nviolations, want);
                        check_result_free(&res);
                }
        }
}

/*
 * With --pic the PIT raises the interrupts, so the guests run on qemu-tcg,
 * whose TCG honours the guaranteed shadows: every delivery it makes is
 * legal, and the verdicts agree with the truth, self-modifying stores
 * included (they once ended qemu-tcg runs: docs/campaigns.md), in each
 * mode hvgen builds.
 */
Test(gen, pic_guests_run_on_qemu_tcg_without_violations)
{
        static const char *const qmodes[] = { "real", "protected", "long" };
        static struct truth tr;

        hv_require_backend("qemu-tcg");
        if (!hv_have_qemu())
                cr_skip_test("needs qemu-system-x86_64 (apt-get install qemu-system-x86)");
        for (unsigned i = 0; i < 3 * 3; i++) {
                unsigned seed = 1 + i / 3;
                const char *mode = qmodes[i % 3];
                const char *g = gen("q.bin", seed, mode, "--pic", NULL);
                const char *argv[] = { HVREC, "run", "--backend", "qemu-tcg", "--mode", mode,
                                       "-q",  "-o",  NULL,        g,          NULL };
                struct check_result res;
                struct hv_proc p;
                struct hv_trace t;

                read_truth(hv_tmp("q.bin.truth"), &tr);
                cr_assert_gt(tr.first, 0, "seed %u %s: no shadow to honour", seed, mode);
                argv[8] = hv_tmp("q.zst");
                unlink(argv[8]);
                cr_assert_eq(hv_run(argv, &p), 0);
                cr_assert_eq(p.status, 0, "seed %u %s: hvrec status %d: %s", seed, mode, p.status,
                             p.err);
                hv_proc_free(&p);
                cr_assert_eq(hv_trace_load(argv[8], &t), HVT_OK);
                cr_expect_gt(t.ndelivers, 0, "seed %u %s: the PIT raised nothing", seed, mode);
                hv_trace_free(&t);
                cr_assert_eq(check_trace(argv[8], &res), 0, "%s", res.error);
                cr_expect_eq(res.nviolations, 0, "seed %u %s: %zu violations on qemu-tcg", seed,
                             mode, res.nviolations);
                check_result_free(&res);
        }
}

Test(gen, bad_arguments_get_one_line)
{
        static const struct {
                const char *args[8];
                int status;
                const char *says;
        } cases[] = {
                { { "--mode", "real", "-o", "x.bin" }, 2, "--seed is required" },
                { { "--seed", "1" }, 2, "-o GUEST.bin is required" },
                { { "--seed", "one", "-o", "x.bin" }, 2, "--seed: 'one'" },
                { { "--seed", "-1", "-o", "x.bin" }, 2, "--seed: '-1'" },
                { { "--seed", "1", "--mode", "virtual", "-o", "x.bin" }, 2, "--mode: 'virtual'" },
                { { "--seed", "1", "--items", "0", "-o", "x.bin" }, 2, "--items: '0'" },
                { { "--seed", "1", "--loops", "1001", "-o", "x.bin" }, 2, "--loops: '1001'" },
                { { "--seed", "1", "--frobnicate", "-o", "x.bin" }, 2, "unknown option" },
                { { "--seed", "1", "-o" }, 2, "needs an argument" },
                { { "--seed", "1", "-o", "x.bin", "extra" }, 2, "unexpected argument 'extra'" },
                { { "--seed", "1", "-o", "/nonexistent/dir/x.bin" }, 1, "/nonexistent/dir/x.bin" },
        };

        for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
                const char *argv[10] = { HVGEN };
                struct hv_proc p;
                size_t n = 1;
                char *nl;

                for (size_t i = 0; cases[c].args[i]; i++)
                        argv[n++] = cases[c].args[i];
                cr_assert_eq(hv_run(argv, &p), 0);
                cr_expect_eq(p.status, cases[c].status, "case %zu: status %d, not %d: %s", c,
                             p.status, cases[c].status, p.err);
                cr_expect(!strncmp(p.err, "hvgen: ", 7), "case %zu: '%s'", c, p.err);
                cr_expect(strstr(p.err, cases[c].says), "case %zu: '%s' does not say '%s'", c,
                          p.err, cases[c].says);
                nl = strchr(p.err, '\n');
                cr_expect(nl && !nl[1], "case %zu: not one line: '%s'", c, p.err);
                cr_expect_eq(p.out[0], 0, "case %zu: wrote to stdout", c);
                hv_proc_free(&p);
        }
}
