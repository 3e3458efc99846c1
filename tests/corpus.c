// SPDX-License-Identifier: MIT
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "corpus.h"

void corpus_labels(const char *stem, const char *prefix, struct corpus_labels *l)
{
        char path[1024], line[512];
        FILE *f;

        memset(l, 0, sizeof(*l));
        snprintf(path, sizeof(path), "%s/%s.map", HV_GUEST_DIR, stem);
        f = fopen(path, "r");
        cr_assert_not_null(f, "no map %s", path);
        while (fgets(line, sizeof(line), f)) {
                unsigned long long real, virt;
                char sym[256];

                if (sscanf(line, " %llx %llx %255s", &real, &virt, sym) != 3)
                        continue;
                /* NASM names local labels "parent.local": not scenario labels. */
                if (strncmp(sym, prefix, strlen(prefix)) || strchr(sym, '.') ||
                    l->n == CORPUS_MAX_LABELS)
                        continue;
                snprintf(l->name[l->n], sizeof(l->name[0]), "%.63s", sym);
                l->addr[l->n++] = virt;
        }
        fclose(f);
}

char *corpus_source_line(const char *src, const char *key)
{
        char line[1024], nasm[64], c[64];
        FILE *f = fopen(src, "r");
        char *val = NULL;

        cr_assert_not_null(f, "%s", src);
        snprintf(nasm, sizeof(nasm), "; %s:", key);
        snprintf(c, sizeof(c), "// %s:", key);
        while (!val && fgets(line, sizeof(line), f)) {
                const char *p = !strncmp(line, nasm, strlen(nasm)) ? line + strlen(nasm)
                                : !strncmp(line, c, strlen(c))     ? line + strlen(c)
                                                                   : NULL;

                if (!p)
                        continue;
                line[strcspn(line, "\n")] = 0;
                val = strdup(p);
        }
        fclose(f);
        return val;
}

/* Split options, replacing {label} with the label's address from the build's map. */
static void build_args(const char *stem, const char *opts, const char **argv, int max, char *store,
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
                        used += (size_t)snprintf(
                                        out, store_len - used, "%.*s0x%llx%s", (int)(open - tok),
                                        tok, (unsigned long long)hv_sym(stem, label), close + 1) +
                                1;
                } else {
                        used += (size_t)snprintf(out, store_len - used, "%s", tok) + 1;
                }
                cr_assert_lt(used, store_len);
                argv[n++] = out;
        }
        free(copy);
        argv[n] = NULL;
}

static void add_build(struct corpus_build *out, int *n, int max, const char *src, const char *file,
                      const char *mode)
{
        struct corpus_build *b;

        cr_assert_lt(*n, max, "more corpus builds than %d", max);
        b = &out[(*n)++];
        snprintf(b->src, sizeof(b->src), "%s", src);
        snprintf(b->file, sizeof(b->file), "%s", file);
        snprintf(b->stem, sizeof(b->stem), "%.*s", (int)strcspn(file, "."), file);
        b->mode = mode;
}

/* Whether the source at path contains text. */
static bool source_has(const char *path, const char *text)
{
        FILE *f = fopen(path, "r");
        char line[512];
        bool found = false;

        cr_assert_not_null(f, "%s", path);
        while (!found && fgets(line, sizeof(line), f))
                found = strstr(line, text) != NULL;
        fclose(f);
        return found;
}

/*
 * The NASM guests of guests/corpus: variants x modes,
 * NAME[_variant][_p32|_l64].bin.  The scenarios (a "corpus-run" line), or
 * with `timer` the guests that program the PIT themselves (PIT_PERIODIC).
 */
static void nasm_builds(struct corpus_build *out, int *n, int max, bool timer)
{
        static const struct {
                const char *mode, *suffix;
        } modes[] = { { "real", "" }, { "protected", "_p32" }, { "long", "_l64" } };
        char dir[600];
        struct dirent *de;
        DIR *d;

        snprintf(dir, sizeof(dir), "%s/guests/corpus", HV_SOURCE_DIR);
        d = opendir(dir);
        cr_assert_not_null(d, "%s", dir);
        while ((de = readdir(d))) {
                size_t len = strlen(de->d_name);
                char src[1024], vnames[2][32], *run, *variants, *modelist;
                bool scenario;
                int nv = 0;

                if (len < 5 || strcmp(de->d_name + len - 4, ".asm"))
                        continue;
                snprintf(src, sizeof(src), "%s/%s", dir, de->d_name);
                run = corpus_source_line(src, "corpus-run");
                scenario = run != NULL;
                free(run);
                /* Not a scenario: the stress guests have their own tests. */
                if (timer ? !source_has(src, "PIT_PERIODIC") : !scenario)
                        continue;
                variants = corpus_source_line(src, "variants");
                if (variants) {
                        char *save = NULL;

                        for (char *v = strtok_r(variants, " ", &save); v && nv < 2;
                             v = strtok_r(NULL, " ", &save))
                                snprintf(vnames[nv++], sizeof(vnames[0]), "_%.30s", v);
                        free(variants);
                } else {
                        vnames[nv++][0] = 0;
                }
                modelist = corpus_source_line(src, "modes");
                for (int v = 0; v < nv; v++) {
                        for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
                                char file[160];

                                if (m && (!modelist || !strstr(modelist, modes[m].mode)))
                                        continue;
                                snprintf(file, sizeof(file), "%.*s%.31s%s.bin", (int)(len - 4),
                                         de->d_name, vnames[v], modes[m].suffix);
                                add_build(out, n, max, src, file, modes[m].mode);
                        }
                }
                free(modelist);
        }
        closedir(d);
}

/* The C scenarios: NAME_32.elf / NAME_64.elf by their "// bits:" line. */
static void c_builds(struct corpus_build *out, int *n, int max)
{
        char dir[600];
        struct dirent *de;
        DIR *d;

        snprintf(dir, sizeof(dir), "%s/guests/c", HV_SOURCE_DIR);
        d = opendir(dir);
        cr_assert_not_null(d, "%s", dir);
        while ((de = readdir(d))) {
                size_t len = strlen(de->d_name);
                char src[1024], *run, *bits;

                if (len < 3 || strcmp(de->d_name + len - 2, ".c"))
                        continue;
                snprintf(src, sizeof(src), "%s/%s", dir, de->d_name);
                run = corpus_source_line(src, "corpus-run");
                if (!run)
                        continue;
                free(run);
                bits = corpus_source_line(src, "bits");
                cr_assert_not_null(bits, "%s says its bits", src);
                for (unsigned b = 32; b <= 64; b += 32) {
                        char file[160];

                        if (!strstr(bits, b == 32 ? "32" : "64"))
                                continue;
                        if (strstr(bits, "32") && strstr(bits, "64"))
                                snprintf(file, sizeof(file), "%.*s_%u.elf", (int)(len - 2),
                                         de->d_name, b);
                        else
                                snprintf(file, sizeof(file), "%.*s.elf", (int)(len - 2),
                                         de->d_name);
                        add_build(out, n, max, src, file, b == 32 ? "protected" : "long");
                }
                free(bits);
        }
        closedir(d);
}

int corpus_timer_builds(struct corpus_build *out, int max)
{
        int n = 0;

        nasm_builds(out, &n, max, true);
        cr_assert_gt(n, 0, "no corpus guest programs the PIT");
        return n;
}

int corpus_builds(struct corpus_build *out, int max)
{
        int n = 0;

        nasm_builds(out, &n, max, false);
        c_builds(out, &n, max);
        cr_assert_geq(n, 30, "the corpus has its scenarios (found %d builds)", n);
        return n;
}

void corpus_record(const char *backend, const struct corpus_build *b, const char *const *extra,
                   const char *opts, struct hv_proc *p, struct hv_trace *t,
                   struct check_result *res)
{
        const char *args[64];
        char store[2048];
        int n = 0;

        args[n++] = "--backend";
        args[n++] = backend;
        args[n++] = "--mode";
        args[n++] = b->mode;
        for (; extra && *extra; extra++)
                args[n++] = *extra;
        build_args(b->stem, opts, args + n, 60 - n, store, sizeof(store));
        hv_record(b->file, args, t, p);
        cr_assert_eq(check_trace(hv_tmp("rec.zst"), res), 0, "%s on %s: %s", b->file, backend,
                     res->error);
}

bool corpus_delivered_at(const struct hv_trace *t, uint64_t pc)
{
        for (size_t i = 0; i < t->ndelivers; i++)
                if (t->delivers[i].cs_base + t->delivers[i].ip == pc)
                        return true;
        return false;
}

/* Operand- and address-size overrides and segment overrides. */
static bool legacy_prefix(uint8_t b)
{
        return b == 0x66 || b == 0x67 || b == 0x2e || b == 0x36 || b == 0x3e || b == 0x26 ||
               b == 0x64 || b == 0x65;
}

/*
 * IRET, INT n/INT1/INT3/INTO, far JMP/CALL/RET, LSS: they load CS or SS
 * from a descriptor, or raise an exception through the IDT.
 */
static bool descriptor_transfer(const uint8_t *b, size_t n)
{
        size_t i = 0;

        while (i < n && (legacy_prefix(b[i]) || (b[i] & 0xf0) == 0x40))
                i++;
        if (i >= n)
                return false;
        switch (b[i]) {
        case 0xcf:
        case 0xcd:
        case 0xcc:
        case 0xce:
        case 0xf1:
        case 0xea:
        case 0x9a:
        case 0xca:
        case 0xcb: return true;
        case 0xff: return i + 1 < n && (((b[i + 1] >> 3) & 7) == 3 || ((b[i + 1] >> 3) & 7) == 5);
        case 0x0f: return i + 1 < n && b[i + 1] == 0xb2;
        default: return false;
        }
}

/*
 * A 64-bit MOV SS, r/m whose REX prefix has R set: the SDM ignores REX.R
 * for a segment register (Vol. 2A 2.2.1.2); KVM's emulator adds it to the
 * register number and raises #UD (em_mov_sreg_rm: modrm_reg > GS).
 */
static bool rex_r_mov_ss(const uint8_t *b, size_t n)
{
        size_t i = 0;

        while (i < n && legacy_prefix(b[i]))
                i++;
        return i + 2 < n && (b[i] & 0xf4) == 0x44 && b[i + 1] == 0x8e && ((b[i + 2] >> 3) & 7) == 2;
}

bool corpus_on_kvm_pvm(const struct hv_trace *t)
{
        const char *v = t->hdr.str[HVT_STR_BACKEND_VERSION];

        return v && strstr(v, "kvm_pvm") != NULL;
}

bool corpus_kvm_pvm_limit(const char *backend, const struct hv_proc *p, const struct hv_trace *t,
                          const struct check_result *res)
{
        const struct hvt_exit *last;

        if (strncmp(backend, "kvm", 3) || !corpus_on_kvm_pvm(t) || !t->nexits || !t->have_end ||
            t->end.why != HVT_END_CRASH)
                return false;
        last = &t->exits[t->nexits - 1].e;
        if (last->reason == HVT_EXIT_SHUTDOWN && t->hdr.h.guest_mode == HVT_MODE_LONG &&
            rex_r_mov_ss(last->insn, last->insn_len)) {
                cr_log_info("%s on %s: kvm_pvm raised #UD at the MOV SS with REX.R at 0x%llx, "
                            "a triple fault here: as documented",
                            t->hdr.str[HVT_STR_GUEST], backend,
                            (unsigned long long)hvt_state_pc(&last->st));
                cr_assert_eq(p->status, HVREC_STATUS_CRASH, "a crash has hvrec's crash status");
                cr_assert(res->have_end && res->end_why == HVT_END_CRASH, "check reports it");
                cr_assert(strstr(res->end_message, "triple fault"), "%s", res->end_message);
                return true;
        }
        if (last->reason != HVT_EXIT_INTERNAL || last->u.internal.internal.suberror != 1 ||
            !descriptor_transfer(last->insn, last->insn_len))
                return false;
        cr_log_info("%s on %s: kvm_pvm cannot emulate the instruction at 0x%llx (%02x %02x): "
                    "emulation failure, as documented",
                    t->hdr.str[HVT_STR_GUEST], backend, (unsigned long long)hvt_state_pc(&last->st),
                    last->insn[0], last->insn_len > 1 ? last->insn[1] : 0);
        cr_assert_eq(p->status, HVREC_STATUS_CRASH, "a crash has hvrec's crash status");
        cr_assert(res->have_end && res->end_why == HVT_END_CRASH, "check reports the crash");
        cr_assert(strstr(res->end_message, "emulation failure"), "%s", res->end_message);
        return true;
}

/* The index of the label of `l` at linear address pc, or -1. */
static int label_at(const struct corpus_labels *l, uint64_t pc)
{
        for (int i = 0; i < l->n; i++)
                if (l->addr[i] == pc)
                        return i;
        return -1;
}

bool corpus_kvm_pvm_db_in_shadow(const char *stem, const struct hv_trace *t, uint64_t pc)
{
        struct corpus_labels l;

        if (!corpus_on_kvm_pvm(t))
                return false;
        corpus_labels(stem, "dbshadow_", &l);
        return label_at(&l, pc) >= 0;
}

/* Whether pc is a dbstep_ label after an SS load (dbstep_movss, dbstep_popss). */
static bool after_ss_load(const char *stem, uint64_t pc)
{
        struct corpus_labels l;
        int i;

        corpus_labels(stem, "dbstep_", &l);
        i = label_at(&l, pc);
        return i >= 0 && strstr(l.name[i], "ss") != NULL;
}

/* The exit reason of exit number seq in t, or -1. */
static int exit_reason_of(const struct hv_trace *t, uint64_t seq)
{
        for (size_t i = 0; i < t->nexits; i++)
                if (t->exits[i].e.seq == seq)
                        return t->exits[i].e.reason;
        return -1;
}

/* Whether b (n bytes) is an IRET of any size. */
static bool is_iret(const uint8_t *b, size_t n)
{
        size_t i = 0;

        while (i < n && (b[i] == 0x66 || (b[i] & 0xf0) == 0x40))
                i++;
        return i < n && b[i] == 0xcf;
}

/*
 * Whether single-stepping skipped the instruction at noshadow_ label pc
 * on its first visit, after an IRET: the debug exit after the IRET comes
 * one instruction late (just past pc), so the eager run's trigger at pc
 * first fires on the label's second visit, which comes through an STI and
 * is a real shadow.  The 6.18 kernel's kvm_pvm does this with IRETQ.
 */
static bool step_skipped_after_iret(const char *stem, const struct hv_trace *t, uint64_t pc)
{
        struct corpus_labels l;

        corpus_labels(stem, "noshadow_", &l);
        if (label_at(&l, pc) < 0)
                return false;
        for (size_t i = 0; i + 1 < t->nexits; i++) {
                const struct hvt_exit *a = &t->exits[i].e, *b = &t->exits[i + 1].e;
                uint64_t next = hvt_state_pc(&b->st);

                if (hvt_state_pc(&a->st) == pc)
                        return false; /* the first visit was stopped at */
                if (a->reason == HVT_EXIT_DEBUG && b->reason == HVT_EXIT_DEBUG &&
                    is_iret(a->insn, a->insn_len) && next > pc && next <= pc + 15)
                        return true;
        }
        return false;
}

/* A shadow violation at pc that step_skipped_after_iret explains on kvm_pvm. */
static bool shadow_rule_after_skipped_step(const char *stem, const struct hv_trace *t,
                                           enum check_rule rule, uint64_t pc)
{
        return (rule == RULE_STI_SHADOW || rule == RULE_MOVSS_SHADOW) && corpus_on_kvm_pvm(t) &&
               step_skipped_after_iret(stem, t, pc);
}

/*
 * Whether kvm_pvm's documented behaviour (docs/backends.md) explains
 * finding f of build stem's trace t; logged when it does.  Three things,
 * all of them this backend's, which the checker is right to report:
 *  - the single-step #DB after an SS load delivered inside its shadow, at
 *    a dbshadow_ label: db-movss-shadow, or undetermined where the trace
 *    cannot tell the trap's cause;
 *  - a single-step debug exit inside a MOV SS shadow whose report says
 *    there is none: report-mismatch;
 *  - a violation at a noshadow_ label whose first visit single-stepping
 *    skipped after an IRET (step_skipped_after_iret).
 */
static bool pvm_explains(const char *what, const char *stem, const struct hv_trace *t,
                         const struct check_finding *f)
{
        const char *why = NULL;

        if (!corpus_on_kvm_pvm(t))
                return false;
        if ((f->rule == RULE_DB_MOVSS_SHADOW || f->rule == RULE_UNDETERMINED) && f->vector == 1 &&
            corpus_kvm_pvm_db_in_shadow(stem, t, f->pc))
                why = "the #DB trap delivered inside the SS load's shadow";
        else if (f->rule == RULE_UNDETERMINED && f->vector == 1 && after_ss_load(stem, f->pc))
                why = "an SS load's #DB trap, which kvm_pvm does not hold, of unknown cause";
        else if (f->rule == RULE_REPORT_MISMATCH && f->shadow_rule == RULE_MOVSS_SHADOW &&
                 exit_reason_of(t, f->event) == HVT_EXIT_DEBUG)
                why = "a single-step exit inside the MOV SS shadow reported without it";
        else if (shadow_rule_after_skipped_step(stem, t, f->rule, f->pc))
                why = "single-step stepped over the IRET's target, so the trigger fired on "
                      "the second visit, inside a real shadow";
        if (!why)
                return false;
        cr_log_info("%s: kvm_pvm finding at 0x%llx (#%llu): %s, judged %s", what,
                    (unsigned long long)f->pc, (unsigned long long)f->event, why,
                    check_rule_name(f->rule));
        return true;
}

/*
 * Whether undetermined finding f is the checker declining to take a step
 * exit after an IRET for the IRET's own boundary in a trace without write
 * records, where the IRET's frame is not known: the step may have run on
 * through a delaying instruction that ends there (docs/checker.md).
 */
static bool iret_frame_unknown(const char *what, const struct hv_trace *t,
                               const struct check_finding *f)
{
        if (f->und_kind != UND_CONTROL || (t->hdr.h.flags & HVT_HDR_WRITES))
                return false;
        for (size_t i = 1; i < t->nexits; i++) {
                const struct hvt_exit *a = &t->exits[i - 1].e, *b = &t->exits[i].e;

                if (b->seq >= f->event)
                        break;
                if (hvt_state_pc(&b->st) == f->pc && b->reason == HVT_EXIT_DEBUG &&
                    is_iret(a->insn, a->insn_len) && i + 1 < t->nexits &&
                    t->exits[i + 1].e.seq >= f->event) {
                        cr_log_info("%s: #%llu at 0x%llx undetermined: the step after the IRET "
                                    "at 0x%llx, whose frame the trace does not hold",
                                    what, (unsigned long long)f->event, (unsigned long long)f->pc,
                                    (unsigned long long)hvt_state_pc(&a->st));
                        return true;
                }
        }
        return false;
}

/*
 * How many of res's violations and undetermined deliveries a documented
 * backend behaviour explains: kvm_pvm's (pvm_explains), and on a backend
 * whose own devices raise interrupts, an INT n at a softint_ label whose
 * vector those devices could have raised too (undetermined soft-or-ext:
 * the trace cannot tell which entered the handler).
 */
static void explained(const char *what, const char *backend, const char *stem,
                      const struct hv_trace *t, const struct check_result *res, size_t *viol,
                      size_t *und)
{
        struct corpus_labels soft;

        corpus_labels(stem, "softint_", &soft);
        *viol = *und = 0;
        for (size_t i = 0; i < res->nviolations; i++)
                *viol += pvm_explains(what, stem, t, &res->violations[i]);
        for (size_t i = 0; i < res->nundetermined; i++) {
                const struct check_finding *f = &res->undetermined[i];

                if (!strcmp(backend, "kvm-irqchip") && f->und_kind == UND_SOFT_OR_EXT &&
                    label_at(&soft, f->pc) >= 0) {
                        cr_log_info("%s: #%llu at 0x%llx undetermined: %s", what,
                                    (unsigned long long)f->event, (unsigned long long)f->pc,
                                    f->reason);
                        (*und)++;
                } else if (iret_frame_unknown(what, t, f)) {
                        (*und)++;
                } else {
                        *und += pvm_explains(what, stem, t, f);
                }
        }
}

void corpus_all_clean(const char *backend)
{
        static struct corpus_build b[CORPUS_MAX_BUILDS];
        int n = corpus_builds(b, CORPUS_MAX_BUILDS), limited = 0;

        for (int i = 0; i < n; i++) {
                char *opts = corpus_source_line(b[i].src, "corpus-run");
                struct check_result res;
                struct hv_trace t;
                struct hv_proc p;

                char what[256];
                size_t viol, und;

                snprintf(what, sizeof(what), "%s on %s", b[i].file, backend);
                corpus_record(backend, &b[i], NULL, opts, &p, &t, &res);
                if (corpus_kvm_pvm_limit(backend, &p, &t, &res))
                        limited++;
                else
                        cr_assert_eq(p.status, 0,
                                     "%s: the guest took its interrupt and exited 0 "
                                     "(status %d: %s)",
                                     what, p.status, p.err);
                cr_assert(res.deliveries > 0 || t.end.why == HVT_END_CRASH,
                          "%s: deliveries were checked", what);
                explained(what, backend, b[i].stem, &t, &res, &viol, &und);
                cr_assert_eq(res.nviolations, viol,
                             "%s: %zu violations under its default policy (first: %s at 0x%llx)",
                             what, res.nviolations,
                             res.nviolations ? check_rule_name(res.violations[0].rule) : "",
                             res.nviolations ? (unsigned long long)res.violations[0].pc : 0ull);
                cr_assert_eq(res.nundetermined, und, "%s: undetermined (first: %s)", what,
                             res.nundetermined ? res.undetermined[0].reason : "");
                check_result_free(&res);
                hv_trace_free(&t);
                hv_proc_free(&p);
                free(opts);
        }
        cr_log_info("%d corpus builds clean on %s under its default policy (%d stopped at "
                    "kvm_pvm's emulation limit)",
                    n, backend, limited);
}

void corpus_labels_of(const char *stem, struct corpus_truth *t)
{
        corpus_labels(stem, "shadowed_", &t->shadowed);
        corpus_labels(stem, "noshadow_", &t->clean);
        corpus_labels(stem, "second_", &t->second);
        corpus_labels(stem, "softint_", &t->softint);
        corpus_labels(stem, "dbstep_", &t->dbstep);
        corpus_labels(stem, "dbshadow_", &t->dbshadow);
}

/*
 * A verdict against the labels: a violation only at shadowed_, never at
 * noshadow_ / second_ / softint_; a software interrupt's delivery is a
 * note; after the second of a delaying sequence at most a note.  With
 * `exact`, every verdict at a label is the label's (no undetermined).
 */
void corpus_judge_verdict(const char *what, const struct corpus_truth *t,
                          const struct check_verdict *v, bool exact)
{
        bool viol = v->rule == RULE_STI_SHADOW || v->rule == RULE_MOVSS_SHADOW;
        int sh = label_at(&t->shadowed, v->pc), cl = label_at(&t->clean, v->pc),
            se = label_at(&t->second, v->pc), so = label_at(&t->softint, v->pc);

        cr_assert((v->rule != RULE_SPURIOUS && v->rule != RULE_IF_CLEAR) || so < 0,
                  "%s: #%llu at 0x%llx (%s) is a software interrupt, judged %s", what,
                  (unsigned long long)v->event, (unsigned long long)v->pc, t->softint.name[so],
                  check_rule_name(v->rule));
        int ds = label_at(&t->dbstep, v->pc), dh = label_at(&t->dbshadow, v->pc);

        if (v->rule == RULE_DB_MOVSS_SHADOW)
                cr_assert_geq(dh, 0, "%s: #%llu db-movss-shadow at 0x%llx, not a dbshadow_ label",
                              what, (unsigned long long)v->event, (unsigned long long)v->pc);
        if (ds >= 0 && v->vector == 1)
                cr_assert((v->rule == RULE_NONE && v->note == NOTE_DEBUG_EXCEPTION) ||
                                  (!exact && v->rule == RULE_UNDETERMINED),
                          "%s: #%llu #DB at %s: %s (note %d) instead of a debug-exception note",
                          what, (unsigned long long)v->event, t->dbstep.name[ds],
                          check_rule_name(v->rule), v->note);
        if (viol)
                cr_assert_geq(sh, 0, "%s: #%llu %s at 0x%llx, not a shadowed_ label", what,
                              (unsigned long long)v->event, check_rule_name(v->rule),
                              (unsigned long long)v->pc);
        if (so >= 0)
                cr_assert((v->rule == RULE_NONE && v->note == NOTE_SOFTWARE_INT) ||
                                  (!exact && v->rule == RULE_UNDETERMINED),
                          "%s: #%llu at %s: %s (note %d) instead of a software-interrupt note",
                          what, (unsigned long long)v->event, t->softint.name[so],
                          check_rule_name(v->rule), v->note);
        if (!exact)
                return;
        if (sh >= 0)
                cr_assert(viol, "%s: #%llu at %s judged %s (%s)", what,
                          (unsigned long long)v->event, t->shadowed.name[sh],
                          check_rule_name(v->rule), check_und_name(v->und));
        if (cl >= 0)
                cr_assert_eq(v->rule, RULE_NONE, "%s: #%llu at %s judged %s (%s)", what,
                             (unsigned long long)v->event, t->clean.name[cl],
                             check_rule_name(v->rule), check_und_name(v->und));
        if (se >= 0)
                cr_assert(v->rule == RULE_NONE && v->note == NOTE_SEQUENCE,
                          "%s: #%llu at %s judged %s (note %d, %s)", what,
                          (unsigned long long)v->event, t->second.name[se],
                          check_rule_name(v->rule), v->note, check_und_name(v->und));
}

/*
 * Every violation of res is a shadow rule (eager runs break nothing else)
 * or, where t and stem are given, one a documented backend behaviour
 * explains (pvm_explains).  Returns how many are shadow rules.
 */
static size_t only_shadow_violations(const char *what, const char *stem, const struct hv_trace *t,
                                     const struct check_result *res)
{
        size_t shadow = 0;

        for (size_t v = 0; v < res->nviolations; v++) {
                const struct check_finding *f = &res->violations[v];
                bool is_shadow = f->rule == RULE_STI_SHADOW || f->rule == RULE_MOVSS_SHADOW;

                cr_assert(is_shadow || (t && pvm_explains(what, stem, t, f)),
                          "%s: unexpected %s at 0x%llx", what, check_rule_name(f->rule),
                          (unsigned long long)f->pc);
                shadow += is_shadow;
        }
        return shadow;
}

/* Record a build for the eager single-step run and check it keeping every verdict. */
static void eager_run(const char *backend, const struct corpus_build *b, struct hv_proc *p,
                      struct hv_trace *t, struct check_result *res)
{
        static const char *const eager[] = { "--single-step", "--inject", "eager", NULL };
        static const struct check_opts keep = { .keep_verdicts = true };
        char *opts = corpus_source_line(b->src, "corpus-eager");

        corpus_record(backend, b, eager, opts, p, t, res);
        free(opts);
        check_result_free(res);
        cr_assert_eq(check_trace_opts(hv_tmp("rec.zst"), &keep, res), 0, "%s on %s: %s", b->file,
                     backend, res->error);
}

void corpus_all_eager_exact(const char *backend)
{
        static struct corpus_build b[CORPUS_MAX_BUILDS];
        int n = corpus_builds(b, CORPUS_MAX_BUILDS);
        uint64_t deliveries = 0, und = 0;

        for (int i = 0; i < n; i++) {
                int hits[CORPUS_MAX_LABELS] = { 0 };
                const char *file = b[i].file;
                struct corpus_truth truth;
                struct check_result res;
                struct hv_trace t;
                struct hv_proc p;
                char what[256];

                snprintf(what, sizeof(what), "%s on %s (eager, single-step)", file, backend);
                corpus_labels_of(b[i].stem, &truth);
                size_t shadow_viol, ex_viol, ex_und;

                eager_run(backend, &b[i], &p, &t, &res);
                explained(what, backend, b[i].stem, &t, &res, &ex_viol, &ex_und);
                /* Any report-mismatch: explained, or only_shadow_violations fails. */
                cr_assert_eq(res.nverdicts, res.deliveries, "%s: a verdict per delivery", what);
                /* The same trace judged without its steps: equal or undetermined, never opposite.
                 */
                deliveries += res.deliveries;
                und += corpus_cross_validate(what, hv_tmp("rec.zst"));
                /* Every step is recorded: every delivery is decided. */
                cr_assert_eq(res.nundetermined, ex_und, "%s: %zu undetermined (first: %s)", what,
                             res.nundetermined,
                             res.nundetermined ? res.undetermined[0].reason : "");
                for (size_t v = 0; v < res.nverdicts; v++) {
                        const struct check_verdict *x = &res.verdicts[v];
                        int s = label_at(&truth.shadowed, x->pc);

                        /* Judged right, at a label whose first visit was never stopped at. */
                        if (shadow_rule_after_skipped_step(b[i].stem, &t, x->rule, x->pc))
                                continue;
                        corpus_judge_verdict(what, &truth, x, !ex_und);
                        if (s >= 0)
                                hits[s]++;
                }
                shadow_viol = only_shadow_violations(what, b[i].stem, &t, &res);
                /* Where the backend stopped early, what it recorded must still agree. */
                if (corpus_kvm_pvm_limit(backend, &p, &t, &res)) {
                        cr_log_info("%s: %s stopped at its emulation limit after %zu violation(s), "
                                    "all at shadowed labels",
                                    file, backend, shadow_viol);
                        goto next;
                }
                /* Otherwise the guest ran to its end (an interrupt taken inside STI; HLT's
                 * shadow leaves the HLT nothing to wake it: a halt). */
                cr_assert(t.end.why == HVT_END_GUEST_EXIT || t.end.why == HVT_END_HALT,
                          "%s: ended %s, status %d: %s", what, hvt_end_why_name(t.end.why),
                          p.status, p.err);
                /* Each label got its interrupt (emu is deterministic; KVM delivers eagerly). */
                for (int s = 0; s < truth.shadowed.n; s++)
                        cr_assert_gt(hits[s], 0, "%s: no violation at %s (0x%llx)", what,
                                     truth.shadowed.name[s],
                                     (unsigned long long)truth.shadowed.addr[s]);
                for (int c = 0; c < truth.clean.n; c++)
                        cr_assert(corpus_delivered_at(&t, truth.clean.addr[c]),
                                  "%s: no interrupt landed at %s", what, truth.clean.name[c]);
                for (int c = 0; c < truth.second.n; c++)
                        cr_assert(corpus_delivered_at(&t, truth.second.addr[c]),
                                  "%s: no interrupt landed at %s", what, truth.second.name[c]);
                for (int c = 0; c < truth.softint.n; c++)
                        cr_assert(corpus_delivered_at(&t, truth.softint.addr[c]),
                                  "%s: the probe did not report %s", what, truth.softint.name[c]);
                for (int c = 0; c < truth.dbstep.n && corpus_steps_keep_guest_db(backend); c++)
                        cr_assert(corpus_delivered_at(&t, truth.dbstep.addr[c]),
                                  "%s: no #DB landed at %s", what, truth.dbstep.name[c]);
                /* hvreplay check exits 1 exactly when there are violations. */
                if (truth.shadowed.n)
                        cr_assert_gt(shadow_viol, 0, "%s", what);
                else
                        cr_assert_eq(shadow_viol, 0, "%s: a no-shadow guest", what);
        next:
                check_result_free(&res);
                hv_trace_free(&t);
                hv_proc_free(&p);
        }
        cr_log_info("%d corpus builds on %s, eager and single-stepped: %llu deliveries, all "
                    "decided; judged without the steps %llu undetermined, none the other way",
                    n, backend, (unsigned long long)deliveries, (unsigned long long)und);
}

/*
 * The step chain against the checker without it: the verdict reached with
 * the single-step exits ignored must equal the step chain's or be
 * undetermined, never the opposite.  Returns how many deliveries the
 * second judgement left undetermined.
 */
uint64_t corpus_cross_validate(const char *what, const char *trace)
{
        static const struct check_opts with = { .keep_verdicts = true };
        static const struct check_opts without = { .keep_verdicts = true, .without_steps = true };
        struct check_result a, b;
        uint64_t und = 0;

        cr_assert_eq(check_trace_opts(trace, &with, &a), 0, "%s: %s", what, a.error);
        cr_assert_eq(check_trace_opts(trace, &without, &b), 0, "%s: %s", what, b.error);
        cr_assert_eq(a.nverdicts, b.nverdicts, "%s: %zu deliveries with the steps, %zu without",
                     what, a.nverdicts, b.nverdicts);
        for (size_t i = 0; i < a.nverdicts; i++) {
                const struct check_verdict *x = &a.verdicts[i], *y = &b.verdicts[i];

                cr_assert_eq(x->event, y->event, "%s: delivery %zu", what, i);
                cr_assert_eq(x->pc, y->pc, "%s: delivery #%llu", what,
                             (unsigned long long)x->event);
                if (y->rule == RULE_UNDETERMINED) {
                        und++;
                        continue;
                }
                cr_assert(x->rule == y->rule && x->note == y->note,
                          "%s: #%llu at 0x%llx: with the steps %s (note %d), without %s (note %d)",
                          what, (unsigned long long)x->event, (unsigned long long)x->pc,
                          check_rule_name(x->rule), x->note, check_rule_name(y->rule), y->note);
        }
        check_result_free(&a);
        check_result_free(&b);
        return und;
}

bool corpus_stress(const char *backend, const char *file, const char *mode, const char *policy,
                   struct check_result *res)
{
        const char *args[] = { "--kick", "20:0x30",   "--inject", policy, "--seed",
                               "1",      "--timeout", "600",      NULL };
        struct corpus_build b = { 0 };
        struct hv_trace t;
        struct hv_proc p;
        bool limited;

        snprintf(b.file, sizeof(b.file), "%s", file);
        snprintf(b.stem, sizeof(b.stem), "%.*s", (int)strcspn(file, "."), file);
        b.mode = mode;
        corpus_record(backend, &b, args, NULL, &p, &t, res);
        limited = corpus_kvm_pvm_limit(backend, &p, &t, res);
        if (!limited) {
                cr_assert_eq(p.status, 0,
                             "%s on %s: the stress guest counted its deliveries and exited 0: %s",
                             file, backend, p.err);
                cr_assert_geq(res->deliveries, 20000);
        }
        cr_assert(t.hdr.h.flags & HVT_HDR_KICKS);
        cr_log_info("%s on %s, %s: %llu exits, %llu deliveries, %zu violations, %zu undetermined",
                    file, backend, policy, (unsigned long long)t.nexits,
                    (unsigned long long)res->deliveries, res->nviolations, res->nundetermined);
        hv_trace_free(&t);
        hv_proc_free(&p);
        return !limited;
}

bool corpus_stress_eager_exact(const char *backend, const char *file, const char *mode,
                               unsigned max_und_permille)
{
        static const struct check_opts keep = { .keep_verdicts = true };
        struct corpus_truth truth;
        struct check_result res;
        char stem[160], what[256];
        size_t shadow_viol;
        struct hv_trace t;
        bool complete;

        snprintf(stem, sizeof(stem), "%.*s", (int)strcspn(file, "."), file);
        snprintf(what, sizeof(what), "%s on %s (eager, kicked)", file, backend);
        corpus_labels_of(stem, &truth);
        cr_assert_geq(truth.shadowed.n, 2, "%s has its shadows", file);
        complete = corpus_stress(backend, file, mode, "eager", &res);
        check_result_free(&res);
        cr_assert_eq(check_trace_opts(hv_tmp("rec.zst"), &keep, &res), 0, "%s: %s", what,
                     res.error);
        cr_assert_eq(hv_trace_load(hv_tmp("rec.zst"), &t), HVT_OK, "%s: %s", what, t.message);
        /* Whatever ran, stopped early or not: violations only at shadowed labels. */
        shadow_viol = only_shadow_violations(what, stem, &t, &res);
        hv_trace_free(&t);
        for (size_t v = 0; v < res.nverdicts; v++)
                corpus_judge_verdict(what, &truth, &res.verdicts[v], false);
        if (!complete)
                goto out;
        cr_assert_gt(shadow_viol, 0, "an eager VMM under kicks lands in shadows");
        /* Each kind of shadow the loop opens first was landed in (label names say which). */
        for (int l = 0; l < truth.shadowed.n; l++) {
                const char *n = truth.shadowed.name[l] + strlen("shadowed_");

                if (!strncmp(n, "mix_", 4))
                        n += 4;
                if (!strncmp(n, "movss", 5) || !strncmp(n, "popss", 5))
                        cr_assert_gt(res.by_rule[RULE_MOVSS_SHADOW], 0, "%s: none at %s", what,
                                     truth.shadowed.name[l]);
                else if (!strncmp(n, "sti", 3))
                        cr_assert_gt(res.by_rule[RULE_STI_SHADOW], 0, "%s: none at %s", what,
                                     truth.shadowed.name[l]);
        }
        /* hvrec steps before it injects at a kick: few may stay undetermined. */
        cr_assert_leq(res.nundetermined * 1000, res.deliveries * max_und_permille,
                      "%s: %zu of %llu deliveries undetermined (first: %s)", what,
                      res.nundetermined, (unsigned long long)res.deliveries,
                      res.nundetermined ? res.undetermined[0].reason : "");
out:
        check_result_free(&res);
        return complete;
}

/* One run of db_movss: the #DB deliveries at the labels, the verdicts and the steps. */
static void db_movss_run(const char *backend, const struct corpus_build *b, bool step,
                         enum corpus_step_ss ss)
{
        static const char *const stepped[] = { "--single-step", NULL };
        static const struct check_opts keep = { .keep_verdicts = true };
        char *opts = corpus_source_line(b->src, "corpus-run");
        struct corpus_truth truth;
        struct check_result res;
        struct hv_trace t;
        struct hv_proc p;
        char what[256];
        size_t ndb = 0, in_shadow = 0, missing = 0, ex_viol, ex_und;

        snprintf(what, sizeof(what), "%s on %s%s", b->file, backend, step ? " (single-step)" : "");
        corpus_labels_of(b->stem, &truth);
        cr_assert_geq(truth.dbstep.n, 2, "%s: the scenario has its dbstep_ labels", what);
        cr_assert_eq(truth.dbshadow.n, truth.dbstep.n - 1, "%s: one dbshadow_ per SS load", what);
        corpus_record(backend, b, step ? stepped : NULL, opts, &p, &t, &res);
        free(opts);
        if (corpus_kvm_pvm_limit(backend, &p, &t, &res))
                goto out;
        cr_assert_eq(p.status, 0, "%s: status %d: %s", what, p.status, p.err);
        for (size_t i = 0; i < t.ndelivers; i++) {
                const struct hvt_disk_deliver *d = &t.delivers[i];
                uint64_t pc = d->cs_base + d->ip;

                if (d->vector != 1)
                        continue;
                ndb++;
                cr_assert(d->flags & 0x100, "%s: the #DB at 0x%llx interrupted TF=1", what,
                          (unsigned long long)pc);
                if (label_at(&truth.dbshadow, pc) >= 0) {
                        /* kvm_pvm's finding (docs/backends.md); on any other backend a bug. */
                        cr_assert(corpus_kvm_pvm_db_in_shadow(b->stem, &t, pc),
                                  "%s: a #DB inside the SS load's shadow at 0x%llx", what,
                                  (unsigned long long)pc);
                        in_shadow++;
                        continue;
                }
                cr_assert_geq(label_at(&truth.dbstep, pc), 0, "%s: a #DB at 0x%llx, no dbstep_",
                              what, (unsigned long long)pc);
        }
        cr_assert_eq(ndb, (size_t)truth.dbstep.n, "%s: one #DB per scenario", what);
        /* Each #DB that kvm_pvm put inside a shadow is one missing at the dbstep_ after it. */
        for (int l = 0; l < truth.dbstep.n; l++)
                missing += !corpus_delivered_at(&t, truth.dbstep.addr[l]);
        cr_assert_eq(missing, in_shadow, "%s: %zu dbstep_ labels without their #DB", what, missing);
        /* How the backend's own single-step passes an SS load (docs/backends.md). */
        for (int l = 0; step && l < truth.dbshadow.n; l++) {
                bool stopped = false;

                for (size_t i = 0; i < t.nexits; i++)
                        if (t.exits[i].e.reason == HVT_EXIT_DEBUG &&
                            hvt_state_pc(&t.exits[i].e.st) == truth.dbshadow.addr[l])
                                stopped = true;
                cr_assert_eq(stopped, ss == CORPUS_STEP_EACH, "%s: a step exit at %s: %d", what,
                             truth.dbshadow.name[l], stopped);
        }
        check_result_free(&res);
        cr_assert_eq(check_trace_opts(hv_tmp("rec.zst"), &keep, &res), 0, "%s: %s", what,
                     res.error);
        explained(what, backend, b->stem, &t, &res, &ex_viol, &ex_und);
        /*
         * Each #DB inside a shadow is db-movss-shadow or undetermined; where
         * kvm_pvm ignores the hold, an SS load's #DB may be undetermined
         * too (pvm_explains).  Every other #DB is a debug-exception note.
         */
        cr_assert_leq(ex_viol, in_shadow, "%s", what);
        cr_assert_eq(res.nviolations, ex_viol, "%s: %zu violations (first: %s)", what,
                     res.nviolations,
                     res.nviolations ? check_rule_name(res.violations[0].rule) : "");
        cr_assert_eq(res.nundetermined, ex_und, "%s: undetermined: %s", what,
                     res.nundetermined ? res.undetermined[0].reason : "");
        cr_assert_eq(res.notes[NOTE_DEBUG_EXCEPTION].count + ex_viol + ex_und, ndb,
                     "%s: %llu debug-exception notes for %zu #DB", what,
                     (unsigned long long)res.notes[NOTE_DEBUG_EXCEPTION].count, ndb);
        for (size_t v = 0; v < res.nverdicts; v++)
                corpus_judge_verdict(what, &truth, &res.verdicts[v], !ex_und);
out:
        check_result_free(&res);
        hv_trace_free(&t);
        hv_proc_free(&p);
}

bool corpus_steps_keep_guest_db(const char *backend)
{
        return strncmp(backend, "kvm", 3) != 0;
}

void corpus_db_movss(const char *backend, enum corpus_step_ss ss)
{
        static struct corpus_build b[CORPUS_MAX_BUILDS];
        int n = corpus_builds(b, CORPUS_MAX_BUILDS), found = 0;

        for (int i = 0; i < n; i++) {
                if (strncmp(b[i].stem, "db_movss", 8))
                        continue;
                found++;
                db_movss_run(backend, &b[i], false, ss);
                if (ss != CORPUS_STEP_TAKES_DB)
                        db_movss_run(backend, &b[i], true, ss);
        }
        cr_assert_eq(found, 3, "db_movss is built in real, protected and long mode");
}
