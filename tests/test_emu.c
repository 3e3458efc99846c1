// SPDX-License-Identifier: MIT
/*
 * The emu backend (src/backends/emu.c: a software x86 CPU on Unicorn), with
 * no /dev/kvm:
 *  - the bundled guests: hello, demo (one delivery, after the HLT), mmio
 *    (all-ones), triple (a shutdown), halt, spin (stopped by --timeout);
 *  - its conventions: I/O exits with RIP at the IN/OUT, the single-step
 *    sequence DEBUG(at) -> IO(at) -> DEBUG(past), HLT exits past the HLT;
 *  - the interrupt-shadow corpus in real, protected and long mode, as
 *    tests/test_corpus.c runs it on KVM: clean under the default policy,
 *    and with --single-step --inject eager violations exactly at the
 *    shadowed_* labels (emulated 32-bit IRETs: no protected-mode limit);
 *  - the stress guest under deterministic kicks: eager violations only at
 *    shadowed instructions, none under the default policy;
 *  - determinism: the same guest and options give the same exit sequence;
 *  - the mode-switching guest and the C guests (protected and long mode,
 *    exceptions delivered through the guest's IDT);
 *  - guests/edges.asm (string I/O, INT n, MMIO read-modify-write, a CS base)
 *    and guests/faults.asm (#DE, #GP and #PF frames, error codes, CR2).
 * Every test is skipped, with the reason, if hvrec's emu backend cannot run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>

#include "corpus.h"
#define MAX_BINS 6

/*
 * The emu backend needs nothing but Unicorn, a build dependency: where this
 * suite builds, emu must be usable.  Not usable is a failure, never a skip.
 */
static void require_emu(void)
{
        const char *argv[] = { HVREC, "run", "--backend", "help", NULL };
        struct hv_proc p;
        const char *line;

        cr_assert_eq(hv_run(argv, &p), 0, "cannot run hvrec");
        line = strstr(p.out, "  emu ");
        cr_assert_not_null(line, "hvrec lists the emu backend:\n%s", p.out);
        cr_assert(strstr(line, "usable here") && !strstr(line, "not usable here"),
                  "the emu backend must be usable: %s", line);
        hv_proc_free(&p);
}

/* hv_record with --backend emu before the other arguments. */
static int emu_record(const char *guest, const char *const *args, struct hv_trace *t,
                      struct hv_proc *p)
{
        const char *argv[64];
        int n = 0;

        argv[n++] = "--backend";
        argv[n++] = "emu";
        for (; args && *args && n < 62; args++)
                argv[n++] = *args;
        argv[n] = NULL;
        return hv_record(guest, argv, t, p);
}

static uint64_t pc_of(const struct trace_exit *e)
{
        return trace_state_pc(&e->st);
}

static void check_clean(const char *what, uint64_t deliveries)
{
        struct check_result res;

        cr_assert_eq(check_trace(hv_tmp("rec.zst"), &res), 0, "%s: %s", what, res.error);
        cr_assert_eq(res.deliveries, deliveries, "%s: %llu deliveries", what,
                     (unsigned long long)res.deliveries);
        cr_assert_eq(res.nviolations, 0, "%s: %zu violations", what, res.nviolations);
        cr_assert_eq(res.nundetermined, 0, "%s: %zu undetermined", what, res.nundetermined);
        cr_assert_eq(res.by_rule[RULE_REPORT_MISMATCH], 0, "%s", what);
        check_result_free(&res);
}

/* ---- the bundled guests -------------------------------------------------------- */

Test(emu, listed_usable_and_named_in_the_header)
{
        struct hv_trace t;
        struct hv_proc p;

        require_emu();
        cr_assert_eq(emu_record("hello", NULL, &t, &p), 7, "status %d: %s", p.status, p.err);
        cr_assert_str_eq(t.hdr.str[TRACE_STR_BACKEND], "emu");
        cr_assert(strstr(t.hdr.str[TRACE_STR_BACKEND_VERSION], "Unicorn 2.") ==
                          t.hdr.str[TRACE_STR_BACKEND_VERSION],
                  "%s", t.hdr.str[TRACE_STR_BACKEND_VERSION]);
        cr_assert(strstr(t.hdr.str[TRACE_STR_BACKEND_VERSION], ", software CPU"));
        cr_assert_eq(t.hdr.h.backend_caps, TRACE_CAP_SINGLE_STEP | TRACE_CAP_REPORT_SHADOW |
                                                   TRACE_CAP_REPORT_READY | TRACE_CAP_INJECT_QUEUE |
                                                   TRACE_CAP_KICK | TRACE_CAP_WINDOW);
        hv_trace_free(&t);
        hv_proc_free(&p);
}

Test(emu, hello_io_exits_stand_at_the_out)
{
        static const char msg[] = "hello from a real-mode guest\n";
        struct hv_trace t;
        struct hv_proc p;

        require_emu();
        cr_assert_eq(emu_record("hello", NULL, &t, &p), 7, "status %d: %s", p.status, p.err);
        cr_assert_str_eq(p.out, msg);
        cr_assert_str_eq(t.console, msg);
        cr_assert_eq(t.end.why, TRACE_END_GUEST_EXIT);
        cr_assert_eq(t.nexits, strlen(msg) + 1);
        for (size_t i = 0; i < t.nexits; i++) {
                const struct trace_exit *e = &t.exits[i].e;

                cr_assert_eq(e->seq, i);
                cr_assert_eq(e->reason, TRACE_EXIT_IO);
                cr_assert_eq(e->u.io.io.dir, TRACE_IO_OUT);
                cr_assert_eq(e->u.io.io.size, 1);
                cr_assert_eq(e->u.io.io.count, 1);
                /* The convention: RIP at the OUT (e6 ib), not yet executed. */
                cr_assert_geq(e->insn_len, 2);
                cr_assert_eq(e->insn[0], 0xe6, "exit #%zu stands at the OUT", i);
                cr_assert_eq(e->insn[1], e->u.io.io.port);
                cr_assert_eq(e->u.io.data[0], e->st.gpr[TRACE_F_RAX] & 0xff, "AL is the data");
                cr_assert(e->st.intr & TRACE_INTR_VALID_SHADOW);
                cr_assert(e->st.intr & TRACE_INTR_VALID_READY);
                cr_assert(!(e->st.intr & TRACE_INTR_READY), "IF=0: not ready");
        }
        hv_trace_free(&t);
        hv_proc_free(&p);
}

Test(emu, demo_interrupt_is_delivered_after_the_hlt)
{
        uint64_t after_hlt = hv_sym("demo", "after_hlt"), handler = hv_sym("demo", "handler");
        struct hv_trace t;
        struct hv_proc p;
        int reads = 0, hlts = 0;

        require_emu();
        cr_assert_eq(emu_record("demo", NULL, &t, &p), 0, "status %d: %s", p.status, p.err);
        cr_assert(strstr(t.console, "interrupt taken") != NULL, "console: %s", t.console);
        cr_assert_eq(t.ninjects, 1);
        cr_assert(t.injects[0].intr & TRACE_INTR_READY, "the window policy injects when ready");
        cr_assert_eq(t.ndelivers, 1);
        cr_assert_eq(t.delivers[0].vector, 0x30);
        cr_assert_eq(t.delivers[0].handler, handler);
        cr_assert_eq(t.delivers[0].cs_base + t.delivers[0].ip, after_hlt, "after the HLT");
        for (size_t i = 0; i < t.nexits; i++) {
                const struct trace_exit *e = &t.exits[i].e;

                if (e->reason == TRACE_EXIT_HLT) {
                        hlts++;
                        cr_assert_eq(pc_of(e), after_hlt, "HLT exits stand past the HLT");
                        cr_assert_eq(e->st.intr & (TRACE_INTR_STI_SHADOW | TRACE_INTR_MOVSS_SHADOW),
                                     0, "the HLT was the shadowed instruction");
                }
                if (e->reason == TRACE_EXIT_IO && e->u.io.io.port == 0x61) {
                        cr_assert_eq(e->u.io.data[0], 0xff, "unassigned ports read all-ones");
                        reads++;
                }
        }
        cr_assert_eq(hlts, 1);
        cr_assert_eq(reads, 3);
        hv_trace_free(&t);
        hv_proc_free(&p);
        check_clean("demo", 1);
}

Test(emu, triple_fault_is_a_shutdown_with_status_3)
{
        struct hv_trace t;
        struct hv_proc p;

        require_emu();
        cr_assert_eq(emu_record("triple", NULL, &t, &p), 3, "status %d: %s", p.status, p.err);
        cr_assert_eq(t.end.why, TRACE_END_CRASH);
        cr_assert_eq(hv_last_exit(&t)->e.reason, TRACE_EXIT_SHUTDOWN);
        cr_assert_eq(pc_of(&hv_last_exit(&t)->e), hv_sym("triple", "crash_here"),
                     "RIP at the UD2 whose #UD could not be delivered");
        cr_assert_eq(trace_state_mode(&hv_last_exit(&t)->e.st), TRACE_MODE_PROTECTED);
        cr_assert(strstr(p.err, "shutdown"), "%s", p.err);
        hv_trace_free(&t);
        hv_proc_free(&p);
}

Test(emu, mmio_and_unassigned_ports_read_all_ones)
{
        uint64_t wr = hv_sym("mmio", "mmio_write"), rd = hv_sym("mmio", "mmio_read");
        struct hv_trace t;
        struct hv_proc p;
        int seen = 0;

        require_emu();
        cr_assert_eq(emu_record("mmio", NULL, &t, &p), 0, "status %d: %s", p.status, p.err);
        for (size_t i = 0; i < t.nexits; i++) {
                const struct trace_exit *e = &t.exits[i].e;

                if (e->reason != TRACE_EXIT_MMIO)
                        continue;
                cr_assert_eq(e->u.mmio.addr, 0x100010);
                cr_assert_eq(e->u.mmio.len, 1);
                if (e->u.mmio.is_write) {
                        cr_assert_eq(pc_of(e), wr, "RIP at the writing instruction");
                        cr_assert_eq(e->u.mmio.data[0], 0x5a);
                } else {
                        cr_assert_eq(pc_of(e), rd, "RIP at the reading instruction");
                        cr_assert_eq(e->u.mmio.data[0], 0xff);
                        cr_assert_eq(t.exits[i + 1].e.st.gpr[TRACE_F_RBX] & 0xff, 0xff,
                                     "the read completed with the data");
                }
                seen++;
        }
        cr_assert_eq(seen, 2);
        hv_trace_free(&t);
        hv_proc_free(&p);
}

Test(emu, halt_with_if_clear_ends_cleanly)
{
        struct hv_trace t;
        struct hv_proc p;

        require_emu();
        cr_assert_eq(emu_record("halt", NULL, &t, &p), 0, "%s", p.err);
        cr_assert_eq(t.end.why, TRACE_END_HALT);
        cr_assert_eq(hv_last_exit(&t)->e.reason, TRACE_EXIT_HLT);
        cr_assert_eq(pc_of(&hv_last_exit(&t)->e), hv_sym("halt", "halt_here") + 1);
        hv_trace_free(&t);
        hv_proc_free(&p);
}

Test(emu, timeout_stops_a_guest_that_never_exits)
{
        const char *args[] = { "--timeout", "0.5", NULL };
        struct hv_trace t;
        struct hv_proc p;

        require_emu();
        cr_assert_eq(emu_record("spin", args, &t, &p), 4, "status %d: %s", p.status, p.err);
        cr_assert_eq(t.end.why, TRACE_END_TIMEOUT);
        cr_assert_eq(hv_last_exit(&t)->e.reason, TRACE_EXIT_INTR, "the kick ended the run");
        hv_trace_free(&t);
        hv_proc_free(&p);
}

Test(emu, string_io_soft_int_mmio_rmw_and_a_cs_base)
{
        uint64_t outs = hv_sym("edges", "rep_outs"), ins = hv_sym("edges", "rep_ins");
        uint64_t outsd = hv_sym("edges", "outs_d"), rmw = hv_sym("edges", "mmio_rmw");
        uint64_t after = hv_sym("edges", "cs100_after");
        const struct trace_exit *e;
        struct hv_trace t;
        struct hv_proc p;
        size_t i = 0;

        require_emu();
        cr_assert_eq(emu_record("edges", NULL, &t, &p), 0, "status %d: %s", p.status, p.err);
        cr_assert_str_eq(t.console, "abc");
        /* REP OUTSB: one exit for the three bytes, RIP at the instruction. */
        e = &t.exits[i++].e;
        cr_assert(e->reason == TRACE_EXIT_IO && pc_of(e) == outs);
        cr_assert(e->u.io.io.port == 0xe9 && e->u.io.io.size == 1 && e->u.io.io.count == 3 &&
                  e->u.io.io.dir == TRACE_IO_OUT);
        cr_assert_eq(memcmp(t.exits[0].io_data, "abc", 3), 0);
        /* REP INSW: two words in one exit. */
        e = &t.exits[i++].e;
        cr_assert(e->reason == TRACE_EXIT_IO && pc_of(e) == ins);
        cr_assert(e->u.io.io.port == 0x70 && e->u.io.io.size == 2 && e->u.io.io.count == 2 &&
                  e->u.io.io.dir == TRACE_IO_IN);
        /* OUTSD; then the REP with CX=0 and the INT 0x31 make no exit. */
        e = &t.exits[i++].e;
        cr_assert(e->reason == TRACE_EXIT_IO && pc_of(e) == outsd);
        cr_assert(e->u.io.io.port == 0x80 && e->u.io.io.size == 4 && e->u.io.io.count == 1);
        cr_assert_eq(memcmp(t.exits[2].io_data, "abcd", 4), 0);
        /* The read-modify-write: the read at the instruction, its write after it. */
        e = &t.exits[i++].e;
        cr_assert(e->reason == TRACE_EXIT_MMIO && !e->u.mmio.is_write && pc_of(e) == rmw,
                  "reason %u at 0x%llx", e->reason, (unsigned long long)pc_of(e));
        cr_assert(e->u.mmio.addr == 0x100010 && e->u.mmio.len == 1);
        e = &t.exits[i++].e;
        cr_assert(e->reason == TRACE_EXIT_MMIO && e->u.mmio.is_write && pc_of(e) > rmw);
        cr_assert(e->u.mmio.addr == 0x100010 && e->u.mmio.len == 1 && e->u.mmio.data[0] == 0);
        /* CS=0x100: RIPs are offsets from its base, the frame says so too. */
        for (; i < t.nexits; i++)
                if (t.exits[i].e.reason == TRACE_EXIT_IO && t.exits[i].e.u.io.io.port == 0xe0)
                        break;
        cr_assert_lt(i, t.nexits);
        cr_assert_eq(t.exits[i].e.st.seg[TRACE_CS].selector, 0x100);
        cr_assert_eq(t.exits[i].e.st.seg[TRACE_CS].base, 0x1000);
        cr_assert_lt(t.exits[i].e.st.rip, 0x1000, "RIP 0x%llx is CS-relative",
                     (unsigned long long)t.exits[i].e.st.rip);
        cr_assert_eq(t.ndelivers, 1, "the software INT has no probe");
        cr_assert_eq(t.delivers[0].cs, 0x100);
        cr_assert_eq(t.delivers[0].cs_base + t.delivers[0].ip, after);
        hv_trace_free(&t);
        hv_proc_free(&p);
        check_clean("edges", 1);
}

/* ---- single-stepping ---------------------------------------------------------- */

Test(emu, single_step_debug_io_debug)
{
        const char *args[] = { "--single-step", NULL };
        struct hv_trace t;
        struct hv_proc p;
        size_t ios = 0;

        require_emu();
        cr_assert_eq(emu_record("hello", args, &t, &p), 7, "status %d: %s", p.status, p.err);
        cr_assert(t.hdr.h.flags & TRACE_HDR_SINGLE_STEP);
        for (size_t i = 0; i < t.nexits; i++) {
                const struct trace_exit *e = &t.exits[i].e;

                if (e->reason == TRACE_EXIT_DEBUG) {
                        cr_assert_eq(e->u.debug.exception, 1);
                        cr_assert(e->u.debug.dr6 & 0x4000, "DR6.BS");
                        cr_assert_eq(e->u.debug.pc, pc_of(e), "the debug PC is where RIP is");
                        continue;
                }
                cr_assert_eq(e->reason, TRACE_EXIT_IO, "#%zu: only debug and I/O exits", i);
                /* DEBUG at the OUT, the OUT's exit at it, then DEBUG past it. */
                cr_assert_gt(i, 0);
                cr_assert_eq(t.exits[i - 1].e.reason, TRACE_EXIT_DEBUG);
                cr_assert_eq(pc_of(&t.exits[i - 1].e), pc_of(e));
                if (i + 1 < t.nexits) {
                        cr_assert_eq(t.exits[i + 1].e.reason, TRACE_EXIT_DEBUG);
                        cr_assert_eq(pc_of(&t.exits[i + 1].e), pc_of(e) + 2);
                }
                ios++;
        }
        cr_assert_eq(ios, strlen("hello from a real-mode guest\n") + 1);
        hv_trace_free(&t);
        hv_proc_free(&p);
}

/* ---- the corpus (tests/corpus.c), as on the KVM backends -------------------------- */

Test(emu, corpus_default_policy_is_clean, .timeout = 600)
{
        require_emu();
        corpus_all_clean("emu");
}

/* 32-bit IRET runs here: protected-mode builds must pass in full. */
Test(emu, corpus_eager_single_step_violations_exactly_at_shadows, .timeout = 600)
{
        require_emu();
        corpus_all_eager_exact("emu");
}

Test(emu, stress_eager_violations_only_at_shadows, .timeout = 900)
{
        require_emu();
        corpus_stress_eager_exact("emu", "stress.bin", "real");
        corpus_stress_eager_exact("emu", "stress_p32.bin", "protected");
        corpus_stress_eager_exact("emu", "stress_l64.bin", "long");
}

Test(emu, stress_default_policy_is_clean, .timeout = 900)
{
        struct check_result res;

        require_emu();
        corpus_stress("emu", "stress.bin", "real", "window", &res);
        cr_assert_eq(res.nviolations, 0, "%zu violations under the window policy", res.nviolations);
        cr_assert_eq(res.by_rule[RULE_REPORT_MISMATCH], 0);
        check_result_free(&res);
}

/* ---- determinism -------------------------------------------------------------------- */

/* Two traces have the same exits (timing aside), injections and deliveries. */
static void assert_same_run(const struct hv_trace *a, const struct hv_trace *b, const char *what)
{
        cr_assert_eq(a->nexits, b->nexits, "%s: %zu vs %zu exits", what, a->nexits, b->nexits);
        for (size_t i = 0; i < a->nexits; i++) {
                const struct trace_exit *x = &a->exits[i].e, *y = &b->exits[i].e;

                cr_assert_eq(x->seq, y->seq, "%s #%zu", what, i);
                cr_assert_eq(x->reason, y->reason, "%s #%zu: reason", what, i);
                cr_assert_eq(x->raw_reason, y->raw_reason, "%s #%zu", what, i);
                cr_assert_eq(memcmp(&x->st, &y->st, sizeof(x->st)), 0, "%s #%zu: state", what, i);
                cr_assert_eq(x->insn_len, y->insn_len, "%s #%zu", what, i);
                if (x->reason == TRACE_EXIT_IO) {
                        size_t n = (size_t)x->u.io.io.size * x->u.io.io.count;

                        cr_assert_eq(memcmp(&x->u.io.io, &y->u.io.io, sizeof(x->u.io.io)), 0,
                                     "%s #%zu: I/O", what, i);
                        if (n > sizeof(a->exits[i].io_data))
                                n = sizeof(a->exits[i].io_data);
                        cr_assert_eq(memcmp(a->exits[i].io_data, b->exits[i].io_data, n), 0,
                                     "%s #%zu: I/O data", what, i);
                } else if (x->reason == TRACE_EXIT_MMIO) {
                        /* (not `reserved`: hvrec leaves stale bytes of its exit union there) */
                        cr_assert(x->u.mmio.addr == y->u.mmio.addr &&
                                          x->u.mmio.len == y->u.mmio.len &&
                                          x->u.mmio.is_write == y->u.mmio.is_write &&
                                          !memcmp(x->u.mmio.data, y->u.mmio.data, 8),
                                  "%s #%zu: MMIO", what, i);
                }
        }
        cr_assert_eq(a->ninjects, b->ninjects, "%s: injections", what);
        for (size_t i = 0; i < a->ninjects; i++)
                cr_assert_eq(memcmp(&a->injects[i], &b->injects[i], sizeof(a->injects[i])), 0,
                             "%s: injection %zu", what, i);
        cr_assert_eq(a->ndelivers, b->ndelivers, "%s: deliveries", what);
        for (size_t i = 0; i < a->ndelivers; i++)
                cr_assert_eq(memcmp(&a->delivers[i], &b->delivers[i], sizeof(a->delivers[i])), 0,
                             "%s: delivery %zu", what, i);
}

static void twice(const char *bin, const char *const *args, const char *what)
{
        struct hv_trace a, b;
        struct hv_proc p, q;

        emu_record(bin, args, &a, &p);
        emu_record(bin, args, &b, &q);
        cr_assert_eq(p.status, q.status, "%s", what);
        cr_assert_gt(a.nexits, 10, "%s: %s", what, p.err);
        assert_same_run(&a, &b, what);
        cr_log_info("%s: %zu exits, the same twice", what, a.nexits);
        hv_trace_free(&a);
        hv_trace_free(&b);
        hv_proc_free(&p);
        hv_proc_free(&q);
}

Test(emu, two_runs_give_the_same_exit_sequence, .timeout = 300)
{
        static const char *const kicked[] = { "--kick",      "20:0x30", "--inject",
                                              "eager",       "--seed",  "42",
                                              "--max-exits", "20000",   NULL };
        static const char *const window[] = { "--kick", "7:0x30",      "--seed", "9", "--mode",
                                              "long",   "--max-exits", "20000",  NULL };
        static const char *const step[] = { "--single-step", "--inject",  "eager",
                                            "--mode",        "protected", NULL };

        require_emu();
        twice("stress", kicked, "stress, eager kicks");
        twice("stress_l64", window, "stress_l64, window kicks");
        twice("cv_movss_sti_in_p32", step, "cv_movss_sti_in_p32, eager single-step");
        twice("modeswitch", NULL, "modeswitch");
}

Test(emu, kicks_count_instructions_not_time)
{
        const char *args[] = { "--kick", "10", "--seed", "3", "--max-exits", "40", NULL };
        struct hv_trace t;
        struct hv_proc p;

        require_emu();
        cr_assert_eq(emu_record("spin", args, &t, &p), 4, "status %d: %s", p.status, p.err);
        /* After the 's' each exit is a kick, 250..750 instructions after the one before. */
        for (size_t i = 1; i < t.nexits; i++) {
                const struct trace_exit *e = &t.exits[i].e;
                uint64_t ax = e->st.gpr[TRACE_F_RAX] & 0xffff;
                uint64_t before = t.exits[i - 1].e.st.gpr[TRACE_F_RAX] & 0xffff;
                uint64_t insns = ((ax - before) & 0xffff) * 2; /* spin: inc ax; jmp */

                cr_assert_eq(e->reason, TRACE_EXIT_INTR, "#%zu", i);
                if (i > 1)
                        cr_assert(insns >= 248 && insns <= 752, "#%zu: %llu instructions", i,
                                  (unsigned long long)insns);
        }
        hv_trace_free(&t);
        hv_proc_free(&p);
}

/* ---- modes -------------------------------------------------------------------------- */

Test(emu, modeswitch_delivers_in_each_mode)
{
        char irq[64];
        const char *args[] = { "--irq", irq, NULL };
        struct hv_trace t;
        struct hv_proc p;

        require_emu();
        /* Raised at the protected-mode MMIO exit (IF=0): delivered once the STI shadow ends. */
        snprintf(irq, sizeof(irq), "0x30@rip:0x%llx",
                 (unsigned long long)hv_sym("modeswitch", "pm_mmio"));
        cr_assert_eq(emu_record("modeswitch", args, &t, &p), 0, "status %d: %s", p.status, p.err);
        cr_assert_eq(t.ndelivers, 3, "real, protected (asked by --irq) and long mode");
        cr_assert_eq(t.delivers[0].frame_bits, 16);
        cr_assert_eq(t.delivers[1].frame_bits, 32);
        cr_assert_eq(t.delivers[2].frame_bits, 64);
        for (size_t i = 0; i < t.nexits; i++) {
                const struct trace_exit *e = &t.exits[i].e;

                if (e->reason != TRACE_EXIT_MMIO)
                        continue;
                if (pc_of(e) == hv_sym("modeswitch", "lm_mmio"))
                        cr_assert_eq(e->u.mmio.len, 8);
                else if (pc_of(e) == hv_sym("modeswitch", "pm_mmio"))
                        cr_assert_eq(e->u.mmio.len, 4);
        }
        hv_trace_free(&t);
        hv_proc_free(&p);
        check_clean("modeswitch", 3);
}

Test(emu, modeswitch_eager_single_step_violations_on_each_side)
{
        char irq[64];
        const char *args[] = { "--single-step", "--inject", "eager", "--irq", irq, NULL };
        static const char *const labels[] = { "shadowed_real", "shadowed_pm", "shadowed_lm" };
        static const unsigned bits[] = { 16, 32, 64 };
        struct check_result res;
        struct hv_trace t;
        struct hv_proc p;

        require_emu();
        snprintf(irq, sizeof(irq), "0x30@rip:0x%llx",
                 (unsigned long long)hv_sym("modeswitch", "shadowed_pm"));
        cr_assert_eq(emu_record("modeswitch", args, &t, &p), 0, "status %d: %s", p.status, p.err);
        cr_assert_eq(check_trace(hv_tmp("rec.zst"), &res), 0, "%s", res.error);
        cr_assert_eq(res.nviolations, 3);
        for (unsigned i = 0; i < 3; i++) {
                cr_assert_eq(res.violations[i].rule, RULE_STI_SHADOW);
                cr_assert_eq(res.violations[i].pc, hv_sym("modeswitch", labels[i]), "%s",
                             labels[i]);
                cr_assert_eq(res.violations[i].bits, bits[i]);
        }
        cr_assert_eq(res.by_rule[RULE_REPORT_MISMATCH], 0);
        check_result_free(&res);
        hv_trace_free(&t);
        hv_proc_free(&p);
}

Test(emu, c_guests_in_long_and_protected_mode)
{
        static const char *const elves[] = { "hello_64.elf", "hello_32.elf" };
        static const char *const stems[] = { "hello_64", "hello_32" };

        require_emu();
        for (unsigned i = 0; i < 2; i++) {
                char want[128];
                struct hv_trace t;
                struct hv_proc p;

                cr_assert_eq(emu_record(elves[i], NULL, &t, &p), 42, "%s: status %d: %s", elves[i],
                             p.status, p.err);
                cr_assert_eq(trace_state_mode(&t.exits[0].e.st),
                             i ? TRACE_MODE_PROTECTED : TRACE_MODE_LONG);
                snprintf(want, sizeof(want), "interrupt 0x30 taken at 0x%llx, 1 time, bye",
                         (unsigned long long)hv_sym(stems[i], "hv_idle_resume"));
                cr_assert(strstr(t.console, want), "%s: %s", elves[i], t.console);
                cr_assert_eq(t.ndelivers, 1);
                cr_assert_eq(t.delivers[0].frame_bits, i ? 32 : 64);
                hv_trace_free(&t);
                hv_proc_free(&p);
                check_clean(elves[i], 1);
        }
}

Test(emu, faults_with_error_codes_cr2_and_return_addresses)
{
        static const char *const bins[] = { "faults_p32", "faults_l64" };
        static const char *const modes[] = { "protected", "long" };

        require_emu();
        for (unsigned i = 0; i < 2; i++) {
                const char *args[] = { "--mode", modes[i], NULL };
                struct hv_trace t;
                struct hv_proc p;

                /* The guest checks every frame itself: status n is check n failing. */
                cr_assert_eq(emu_record(bins[i], args, &t, &p), 0, "%s: status %d: %s", bins[i],
                             p.status, p.err);
                cr_assert_eq(t.end.why, TRACE_END_GUEST_EXIT, "%s", bins[i]);
                hv_trace_free(&t);
                hv_proc_free(&p);
        }
}

Test(emu, exceptions_go_through_the_guest_idt)
{
        static const char *const stems[] = { "fault_32", "fault_64" };

        require_emu();
        for (unsigned i = 0; i < 2; i++) {
                char elf[64], msg[256];
                struct hv_trace t;
                struct hv_proc p;

                snprintf(elf, sizeof(elf), "%s.elf", stems[i]);
                snprintf(msg, sizeof(msg),
                         "fault: executing ud2\n"
                         "hvrt: exception 6 (#UD invalid opcode), error code 0x0, at 0x%x:0x%llx\n",
                         i ? 0x18 : 0x08, (unsigned long long)hv_sym(stems[i], "fault_here"));
                cr_assert_eq(emu_record(elf, NULL, &t, &p), 0xEE, "%s: status %d: %s", elf,
                             p.status, p.err);
                cr_assert_str_eq(t.console, msg, "%s", elf);
                hv_trace_free(&t);
                hv_proc_free(&p);
        }
}

/* --irq VECTOR@exit:N and @every:N fire at exactly those exits (numbered from 0). */
Test(emu, irq_triggers_at_exit_n_and_every_n)
{
        const char *args[] = { "--max-exits",  "20",     "--irq", "0x31@exit:5", "--irq",
                               "0x32@every:7", "--seed", "7",     NULL };
        static const struct {
                uint64_t seq;
                uint8_t vector;
        } want[] = { { 5, 0x31 }, { 6, 0x32 }, { 13, 0x32 } };
        struct hv_trace t;
        struct hv_proc p;

        require_emu();
        cr_assert_eq(emu_record("ioloop", args, &t, &p), 4, "%s", p.err);
        cr_assert_eq(t.nexits, 20);
        cr_assert_eq(t.hdr.h.seed, 7, "the seed is in the header");
        cr_assert_eq(t.nraises, sizeof(want) / sizeof(want[0]));
        for (size_t i = 0; i < t.nraises; i++) {
                cr_assert_eq(t.raises[i].seq, want[i].seq, "raise %zu at #%llu", i,
                             (unsigned long long)t.raises[i].seq);
                cr_assert_eq(t.raises[i].vector, want[i].vector);
                cr_assert_eq(t.raises[i].source, TRACE_SRC_OPTION);
        }
        /* IF stays 0 in ioloop: nothing may be injected under the window policy. */
        cr_assert_eq(t.ninjects, 0);
        hv_trace_free(&t);
        hv_proc_free(&p);
}
