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
 *    and guests/faults.asm (#DE, #GP and #PF frames, error codes, CR2);
 *  - self-modifying code (guests/emu_smc.asm): a store to the very next
 *    instruction gives one debug exit per boundary under --single-step, and
 *    the new bytes run, stepped, kicked or neither;
 *  - take_writes, called directly through the backend table on guests run
 *    without hvrec: every byte of RAM that changed between two exits lies
 *    in what the second one reported, and so do writes that change nothing,
 *    interrupt frames, stores across pages, REP STOSB, REP INSB, a store an
 *    MMIO access interrupts, page-table accessed bits, and the page-sized
 *    ranges of a guest that writes too scattered to track exactly.
 * Not usable is a failure (require_emu), never a skip.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>

#include "../src/backends/backend.h"
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

        hv_require_backend("emu"); /* compiled out (-DHVTRACE_BACKEND_EMU=OFF): a skip */
        cr_assert_eq(hv_run(argv, &p), 0, "cannot run hvrec");
        line = strstr(p.out, "  emu ");
        cr_assert_not_null(line, "hvrec lists the emu backend:\n%s", p.out);
        cr_assert(strstr(line, "usable here") && !strstr(line, "not usable here"),
                  "the emu backend must be usable: %s", line);
        hv_proc_free(&p);
}

static uint64_t pc_of(const struct hvt_exit *e)
{
        return hvt_state_pc(&e->st);
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
        cr_assert_eq(hv_record_on("emu", "hello", NULL, &t, &p), 7, "status %d: %s", p.status,
                     p.err);
        cr_assert_str_eq(t.hdr.str[HVT_STR_BACKEND], "emu");
        cr_assert(strstr(t.hdr.str[HVT_STR_BACKEND_VERSION], "Unicorn 2.") ==
                          t.hdr.str[HVT_STR_BACKEND_VERSION],
                  "%s", t.hdr.str[HVT_STR_BACKEND_VERSION]);
        cr_assert(strstr(t.hdr.str[HVT_STR_BACKEND_VERSION], ", software CPU"));
        cr_assert_eq(t.hdr.h.backend_caps,
                     HVT_CAP_SINGLE_STEP | HVT_CAP_REPORT_SHADOW | HVT_CAP_REPORT_READY |
                             HVT_CAP_INJECT_QUEUE | HVT_CAP_KICK | HVT_CAP_WINDOW |
                             HVT_CAP_IO_EXITS | HVT_CAP_HLT_EXITS | HVT_CAP_WRITES);
        hv_trace_free(&t);
        hv_proc_free(&p);
}

Test(emu, hello_io_exits_stand_at_the_out)
{
        static const char msg[] = "hello from a real-mode guest\n";
        struct hv_trace t;
        struct hv_proc p;

        require_emu();
        cr_assert_eq(hv_record_on("emu", "hello", NULL, &t, &p), 7, "status %d: %s", p.status,
                     p.err);
        cr_assert_str_eq(p.out, msg);
        cr_assert_str_eq(t.console, msg);
        cr_assert_eq(t.end.why, HVT_END_GUEST_EXIT);
        cr_assert_eq(t.nexits, strlen(msg) + 1);
        for (size_t i = 0; i < t.nexits; i++) {
                const struct hvt_exit *e = &t.exits[i].e;

                cr_assert_eq(e->seq, i);
                cr_assert_eq(e->reason, HVT_EXIT_IO);
                cr_assert_eq(e->u.io.io.dir, HVT_IO_OUT);
                cr_assert_eq(e->u.io.io.size, 1);
                cr_assert_eq(e->u.io.io.count, 1);
                /* The convention: RIP at the OUT (e6 ib), not yet executed. */
                cr_assert_geq(e->insn_len, 2);
                cr_assert_eq(e->insn[0], 0xe6, "exit #%zu stands at the OUT", i);
                cr_assert_eq(e->insn[1], e->u.io.io.port);
                cr_assert_eq(e->u.io.data[0], e->st.gpr[HVT_F_RAX] & 0xff, "AL is the data");
                cr_assert(e->st.intr & HVT_INTR_VALID_SHADOW);
                cr_assert(e->st.intr & HVT_INTR_VALID_READY);
                cr_assert(!(e->st.intr & HVT_INTR_READY), "IF=0: not ready");
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
        cr_assert_eq(hv_record_on("emu", "demo", NULL, &t, &p), 0, "status %d: %s", p.status,
                     p.err);
        cr_assert(strstr(t.console, "interrupt taken") != NULL, "console: %s", t.console);
        cr_assert_eq(t.ninjects, 1);
        cr_assert(t.injects[0].intr & HVT_INTR_READY, "the window policy injects when ready");
        cr_assert_eq(t.ndelivers, 1);
        cr_assert_eq(t.delivers[0].vector, 0x30);
        cr_assert_eq(t.delivers[0].handler, handler);
        cr_assert_eq(t.delivers[0].cs_base + t.delivers[0].ip, after_hlt, "after the HLT");
        for (size_t i = 0; i < t.nexits; i++) {
                const struct hvt_exit *e = &t.exits[i].e;

                if (e->reason == HVT_EXIT_HLT) {
                        hlts++;
                        cr_assert_eq(pc_of(e), after_hlt, "HLT exits stand past the HLT");
                        cr_assert_eq(e->st.intr & (HVT_INTR_STI_SHADOW | HVT_INTR_MOVSS_SHADOW), 0,
                                     "the HLT was the shadowed instruction");
                }
                if (e->reason == HVT_EXIT_IO && e->u.io.io.port == 0x61) {
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

Test(emu, triple_fault_is_a_shutdown_with_the_crash_status)
{
        struct hv_trace t;
        struct hv_proc p;

        require_emu();
        cr_assert_eq(hv_record_on("emu", "triple", NULL, &t, &p), HVREC_STATUS_CRASH,
                     "status %d: %s", p.status, p.err);
        cr_assert_eq(t.end.why, HVT_END_CRASH);
        cr_assert_eq(hv_last_exit(&t)->e.reason, HVT_EXIT_SHUTDOWN);
        cr_assert_eq(pc_of(&hv_last_exit(&t)->e), hv_sym("triple", "crash_here"),
                     "RIP at the UD2 whose #UD could not be delivered");
        cr_assert_eq(hvt_state_mode(&hv_last_exit(&t)->e.st), HVT_MODE_PROTECTED);
        cr_assert(strstr(p.err, "shutdown"), "%s", p.err);
        hv_trace_free(&t);
        hv_proc_free(&p);
}

/*
 * A 64-bit guest run in real mode executes garbage, on which Unicorn's TCG
 * calls abort() ("tcg fatal error").  That is the guest's crash, not
 * hvrec's: the run ends as an emulation failure with an END record.
 */
Test(emu, an_emulator_abort_is_a_recorded_emulation_failure)
{
        const char *args[] = { "--mode", "real", NULL };
        struct hv_trace t;
        struct hv_proc p;

        require_emu();
        cr_assert_eq(hv_record_on("emu", "smc_l64", args, &t, &p), HVREC_STATUS_CRASH,
                     "status %d: %s", p.status, p.err);
        cr_assert(t.have_end, "an END record: %s", t.message);
        cr_assert_eq(t.end.why, HVT_END_CRASH, "end: %s", t.end_msg);
        cr_assert_eq(hv_last_exit(&t)->e.reason, HVT_EXIT_INTERNAL);
        cr_assert_eq(hv_last_exit(&t)->e.u.internal.internal.suberror, 1, "emulation failure");
        cr_assert(strstr(p.err, "emulation failure"), "%s", p.err);
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
        cr_assert_eq(hv_record_on("emu", "mmio", NULL, &t, &p), 0, "status %d: %s", p.status,
                     p.err);
        for (size_t i = 0; i < t.nexits; i++) {
                const struct hvt_exit *e = &t.exits[i].e;

                if (e->reason != HVT_EXIT_MMIO)
                        continue;
                cr_assert_eq(e->u.mmio.addr, 0x100010);
                cr_assert_eq(e->u.mmio.len, 1);
                if (e->u.mmio.is_write) {
                        cr_assert_eq(pc_of(e), wr, "RIP at the writing instruction");
                        cr_assert_eq(e->u.mmio.data[0], 0x5a);
                } else {
                        cr_assert_eq(pc_of(e), rd, "RIP at the reading instruction");
                        cr_assert_eq(e->u.mmio.data[0], 0xff);
                        cr_assert_eq(t.exits[i + 1].e.st.gpr[HVT_F_RBX] & 0xff, 0xff,
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
        cr_assert_eq(hv_record_on("emu", "halt", NULL, &t, &p), 0, "%s", p.err);
        cr_assert_eq(t.end.why, HVT_END_HALT);
        cr_assert_eq(hv_last_exit(&t)->e.reason, HVT_EXIT_HLT);
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
        cr_assert_eq(hv_record_on("emu", "spin", args, &t, &p), HVREC_STATUS_LIMIT, "status %d: %s",
                     p.status, p.err);
        cr_assert_eq(t.end.why, HVT_END_TIMEOUT);
        cr_assert_eq(hv_last_exit(&t)->e.reason, HVT_EXIT_INTR, "the kick ended the run");
        hv_trace_free(&t);
        hv_proc_free(&p);
}

Test(emu, string_io_soft_int_mmio_rmw_and_a_cs_base)
{
        uint64_t outs = hv_sym("edges", "rep_outs"), ins = hv_sym("edges", "rep_ins");
        uint64_t outsd = hv_sym("edges", "outs_d"), rmw = hv_sym("edges", "mmio_rmw");
        uint64_t after = hv_sym("edges", "cs100_after");
        const struct hvt_exit *e;
        struct hv_trace t;
        struct hv_proc p;
        size_t i = 0;

        /* Injected at the window exit itself, so that it lands at the first point it may. */
        static const char *const args[] = { "--step-inject", "no", NULL };

        require_emu();
        cr_assert_eq(hv_record_on("emu", "edges", args, &t, &p), 0, "status %d: %s", p.status,
                     p.err);
        cr_assert_str_eq(t.console, "abc");
        /* REP OUTSB: one exit for the three bytes, RIP at the instruction. */
        e = &t.exits[i++].e;
        cr_assert(e->reason == HVT_EXIT_IO && pc_of(e) == outs);
        cr_assert(e->u.io.io.port == 0xe9 && e->u.io.io.size == 1 && e->u.io.io.count == 3 &&
                  e->u.io.io.dir == HVT_IO_OUT);
        cr_assert_eq(memcmp(t.exits[0].io_data, "abc", 3), 0);
        /* REP INSW: two words in one exit. */
        e = &t.exits[i++].e;
        cr_assert(e->reason == HVT_EXIT_IO && pc_of(e) == ins);
        cr_assert(e->u.io.io.port == 0x70 && e->u.io.io.size == 2 && e->u.io.io.count == 2 &&
                  e->u.io.io.dir == HVT_IO_IN);
        /* OUTSD; then the REP with CX=0 and the INT 0x31 make no exit. */
        e = &t.exits[i++].e;
        cr_assert(e->reason == HVT_EXIT_IO && pc_of(e) == outsd);
        cr_assert(e->u.io.io.port == 0x80 && e->u.io.io.size == 4 && e->u.io.io.count == 1);
        cr_assert_eq(memcmp(t.exits[2].io_data, "abcd", 4), 0);
        /* The read-modify-write: the read at the instruction, its write after it. */
        e = &t.exits[i++].e;
        cr_assert(e->reason == HVT_EXIT_MMIO && !e->u.mmio.is_write && pc_of(e) == rmw,
                  "reason %u at 0x%llx", e->reason, (unsigned long long)pc_of(e));
        cr_assert(e->u.mmio.addr == 0x100010 && e->u.mmio.len == 1);
        e = &t.exits[i++].e;
        cr_assert(e->reason == HVT_EXIT_MMIO && e->u.mmio.is_write && pc_of(e) > rmw);
        cr_assert(e->u.mmio.addr == 0x100010 && e->u.mmio.len == 1 && e->u.mmio.data[0] == 0);
        /* CS=0x100: RIPs are offsets from its base, the frame says so too. */
        for (; i < t.nexits; i++)
                if (t.exits[i].e.reason == HVT_EXIT_IO && t.exits[i].e.u.io.io.port == 0xe0)
                        break;
        cr_assert_lt(i, t.nexits);
        cr_assert_eq(t.exits[i].e.st.seg[HVT_CS].selector, 0x100);
        cr_assert_eq(t.exits[i].e.st.seg[HVT_CS].base, 0x1000);
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
        cr_assert_eq(hv_record_on("emu", "hello", args, &t, &p), 7, "status %d: %s", p.status,
                     p.err);
        cr_assert(t.hdr.h.flags & HVT_HDR_SINGLE_STEP);
        for (size_t i = 0; i < t.nexits; i++) {
                const struct hvt_exit *e = &t.exits[i].e;

                if (e->reason == HVT_EXIT_DEBUG) {
                        cr_assert_eq(e->u.debug.exception, 1);
                        cr_assert(e->u.debug.dr6 & 0x4000, "DR6.BS");
                        cr_assert_eq(e->u.debug.pc, pc_of(e), "the debug PC is where RIP is");
                        continue;
                }
                cr_assert_eq(e->reason, HVT_EXIT_IO, "#%zu: only debug and I/O exits", i);
                /* DEBUG at the OUT, the OUT's exit at it, then DEBUG past it. */
                cr_assert_gt(i, 0);
                cr_assert_eq(t.exits[i - 1].e.reason, HVT_EXIT_DEBUG);
                cr_assert_eq(pc_of(&t.exits[i - 1].e), pc_of(e));
                if (i + 1 < t.nexits) {
                        cr_assert_eq(t.exits[i + 1].e.reason, HVT_EXIT_DEBUG);
                        cr_assert_eq(pc_of(&t.exits[i + 1].e), pc_of(e) + 2);
                }
                ios++;
        }
        cr_assert_eq(ios, strlen("hello from a real-mode guest\n") + 1);
        hv_trace_free(&t);
        hv_proc_free(&p);
}

/* ---- self-modifying code ------------------------------------------------------ */

#define SMC_ITERATIONS 200 /* ITERATIONS in guests/emu_smc.asm */

/* The builds of guests/emu_smc.asm, and how many NOPs its store writes. */
static const struct {
        const char *bin, *mode;
        unsigned nops;
} smc_builds[] = {
        { "emu_smc", "real", 1 },
        { "emu_smc_p32", "protected", 1 },
        { "emu_smc_l64", "long", 2 },
};

/* The exit stands at `patched` and its recorded instruction bytes are the new NOPs. */
static bool at_new_nops(const struct hvt_exit *e, uint64_t patched, unsigned nops)
{
        if (pc_of(e) != patched || e->insn_len < nops)
                return false;
        for (unsigned i = 0; i < nops; i++)
                if (e->insn[i] != 0x90)
                        return false;
        return true;
}

/*
 * A store to the very next instruction: QEMU abandons the storing
 * instruction and runs it again, and the backend used to count each run as
 * an instruction, so --single-step stopped at the store forever.
 */
Test(emu, single_step_through_a_store_to_the_next_instruction, .timeout = 300)
{
        require_emu();
        for (size_t b = 0; b < sizeof(smc_builds) / sizeof(smc_builds[0]); b++) {
                const char *args[] = { "--single-step", "--mode", smc_builds[b].mode, NULL };
                const char *bin = smc_builds[b].bin;
                uint64_t restore = hv_sym(bin, "restore"), store = hv_sym(bin, "store");
                uint64_t patched = hv_sym(bin, "patched"), after = hv_sym(bin, "after");
                unsigned at_restore = 0, at_store = 0, at_patched = 0, at_after = 0;
                struct hv_trace t;
                struct hv_proc p;

                cr_assert_eq(hv_record_on("emu", bin, args, &t, &p), 0, "%s: status %d: %s", bin,
                             p.status, p.err);
                for (size_t i = 0; i < t.nexits; i++) {
                        const struct hvt_exit *e = &t.exits[i].e, *next;

                        if (e->reason != HVT_EXIT_DEBUG)
                                continue;
                        next = i + 1 < t.nexits ? &t.exits[i + 1].e : NULL;
                        /* (the guest has no REP: no boundary comes back to itself) */
                        cr_assert(!next || next->reason != HVT_EXIT_DEBUG ||
                                          pc_of(next) != pc_of(e),
                                  "%s #%zu: two debug exits at 0x%llx", bin, i,
                                  (unsigned long long)pc_of(e));
                        if (pc_of(e) == restore)
                                at_restore++;
                        if (pc_of(e) == store) {
                                at_store++;
                                cr_assert(next && pc_of(next) == patched,
                                          "%s #%zu: the step after the store is at `patched`", bin,
                                          i);
                        }
                        if (pc_of(e) == patched) {
                                at_patched++;
                                cr_assert(at_new_nops(e, patched, smc_builds[b].nops),
                                          "%s #%zu: the new bytes are recorded at `patched`", bin,
                                          i);
                                cr_assert(next && pc_of(next) == patched + 1,
                                          "%s #%zu: a one-byte NOP ran, not the old INC", bin, i);
                        }
                        if (pc_of(e) == after) {
                                at_after++;
                                cr_assert_eq(e->st.gpr[HVT_F_RAX] & 0xffff, 0,
                                             "%s #%zu: the INC did not run", bin, i);
                        }
                }
                cr_assert_eq(at_restore, SMC_ITERATIONS, "%s", bin);
                cr_assert_eq(at_store, SMC_ITERATIONS, "%s", bin);
                cr_assert_eq(at_patched, SMC_ITERATIONS, "%s", bin);
                cr_assert_eq(at_after, SMC_ITERATIONS, "%s", bin);
                hv_trace_free(&t);
                hv_proc_free(&p);
        }
}

/* Without single-step, and with kicks landing anywhere around the stores. */
Test(emu, a_store_to_the_next_instruction_runs_the_new_bytes, .timeout = 300)
{
        require_emu();
        for (size_t b = 0; b < sizeof(smc_builds) / sizeof(smc_builds[0]); b++) {
                const char *bin = smc_builds[b].bin;
                const char *plain[] = { "--mode", smc_builds[b].mode, NULL };
                uint64_t patched = hv_sym(bin, "patched");
                struct hv_trace t;
                struct hv_proc p;

                /* Status 0: the guest saw the new bytes run every time. */
                cr_assert_eq(hv_record_on("emu", bin, plain, &t, &p), 0, "%s: status %d: %s", bin,
                             p.status, p.err);
                hv_trace_free(&t);
                hv_proc_free(&p);
                for (unsigned seed = 1; seed <= 3; seed++) {
                        char sd[16];
                        const char *kicked[] = { "--mode", smc_builds[b].mode, "--kick",
                                                 "1",      "--seed",           sd,
                                                 NULL };
                        size_t kicks = 0, there = 0;

                        snprintf(sd, sizeof(sd), "%u", seed);
                        cr_assert_eq(hv_record_on("emu", bin, kicked, &t, &p), 0,
                                     "%s seed %u: status %d: %s", bin, seed, p.status, p.err);
                        for (size_t i = 0; i < t.nexits; i++) {
                                const struct hvt_exit *e = &t.exits[i].e;

                                if (e->reason != HVT_EXIT_INTR)
                                        continue;
                                kicks++;
                                if (pc_of(e) != patched)
                                        continue;
                                there++;
                                cr_assert(at_new_nops(e, patched, smc_builds[b].nops),
                                          "%s seed %u #%zu: a kick after the store sees the new "
                                          "bytes",
                                          bin, seed, i);
                        }
                        /* 25..75 instructions a kick, of about 4 * SMC_ITERATIONS */
                        cr_assert_geq(kicks, SMC_ITERATIONS * 4 / 75, "%s seed %u", bin, seed);
                        cr_log_info("%s seed %u: %zu kicks, %zu right after the store", bin, seed,
                                    kicks, there);
                        hv_trace_free(&t);
                        hv_proc_free(&p);
                }
        }
}

/* ---- the corpus (tests/corpus.c), as on the KVM backends -------------------------- */

Test(emu, corpus_default_policy_is_clean, .timeout = 600)
{
        require_emu();
        corpus_all_clean("emu");
}

/* 32-bit IRET runs here: protected-mode builds must pass in full. */
/*
 * The single-step #DB after MOV SS / POP SS lands after the next
 * instruction (Unicorn's TCG holds the trap), while emu's own --single-step
 * stops at every boundary, the one inside the SS load's shadow too.
 */
Test(emu, single_step_db_after_mov_ss_lands_after_the_next_instruction, .timeout = 300)
{
        hv_require_backend("emu");
        corpus_db_movss("emu", CORPUS_STEP_EACH);
}

/*
 * A backend finding: Unicorn takes MOV to DR0..DR7 but never raises a data
 * breakpoint's #DB, so db_watch (2 #DB on a CPU that honours DR7) runs
 * without any.  Should it start to, test_record_kvm's expectation applies.
 */
Test(emu, data_breakpoints_in_the_guest_raise_no_db)
{
        struct hv_trace t;
        struct hv_proc p;

        cr_assert_eq(hv_record_on("emu", "db_watch", NULL, &t, &p), 0,
                     "status %d (the #DB taken): %s", p.status, p.err);
        cr_assert_eq(t.ndelivers, 0, "the probe reported %zu #DB", t.ndelivers);
        cr_assert_eq(t.end.why, HVT_END_GUEST_EXIT);
        hv_trace_free(&t);
        hv_proc_free(&p);
}

Test(emu, corpus_eager_single_step_violations_exactly_at_shadows, .timeout = 600)
{
        require_emu();
        corpus_all_eager_exact("emu");
}

Test(emu, stress_eager_violations_only_at_shadows, .timeout = 900)
{
        require_emu();
        cr_assert(
                corpus_stress_eager_exact("emu", "stress.bin", "real", CORPUS_STRESS_UND_PERMILLE));
        cr_assert(corpus_stress_eager_exact("emu", "stress_p32.bin", "protected",
                                            CORPUS_STRESS_UND_PERMILLE));
        cr_assert(corpus_stress_eager_exact("emu", "stress_l64.bin", "long",
                                            CORPUS_STRESS_UND_PERMILLE));
}

Test(emu, stress_default_policy_is_clean, .timeout = 900)
{
        struct check_result res;

        require_emu();
        cr_assert(corpus_stress("emu", "stress.bin", "real", "window", &res));
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
                const struct hvt_exit *x = &a->exits[i].e, *y = &b->exits[i].e;

                cr_assert_eq(x->seq, y->seq, "%s #%zu", what, i);
                cr_assert_eq(x->reason, y->reason, "%s #%zu: reason", what, i);
                cr_assert_eq(x->raw_reason, y->raw_reason, "%s #%zu", what, i);
                cr_assert_eq(memcmp(&x->st, &y->st, sizeof(x->st)), 0, "%s #%zu: state", what, i);
                cr_assert_eq(x->insn_len, y->insn_len, "%s #%zu", what, i);
                if (x->reason == HVT_EXIT_IO) {
                        size_t n = (size_t)x->u.io.io.size * x->u.io.io.count;

                        cr_assert_eq(memcmp(&x->u.io.io, &y->u.io.io, sizeof(x->u.io.io)), 0,
                                     "%s #%zu: I/O", what, i);
                        if (n > sizeof(a->exits[i].io_data))
                                n = sizeof(a->exits[i].io_data);
                        cr_assert_eq(memcmp(a->exits[i].io_data, b->exits[i].io_data, n), 0,
                                     "%s #%zu: I/O data", what, i);
                } else if (x->reason == HVT_EXIT_MMIO) {
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

        hv_record_on("emu", bin, args, &a, &p);
        hv_record_on("emu", bin, args, &b, &q);
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

Test(emu, self_modifying_code_runs_the_same_twice, .timeout = 300)
{
        static const char *const kicked[] = { "--kick", "1", "--seed", "5", NULL };
        static const char *const step[] = { "--single-step", "--mode", "long", NULL };

        require_emu();
        twice("emu_smc", kicked, "emu_smc, kicks");
        twice("emu_smc_l64", step, "emu_smc_l64, single-step");
}

Test(emu, kicks_count_instructions_not_time)
{
        const char *args[] = { "--kick", "10", "--seed", "3", "--max-exits", "40", NULL };
        struct hv_trace t;
        struct hv_proc p;

        require_emu();
        cr_assert_eq(hv_record_on("emu", "spin", args, &t, &p), HVREC_STATUS_LIMIT, "status %d: %s",
                     p.status, p.err);
        /* After the 's' each exit is a kick, 250..750 instructions after the one before. */
        for (size_t i = 1; i < t.nexits; i++) {
                const struct hvt_exit *e = &t.exits[i].e;
                uint64_t ax = e->st.gpr[HVT_F_RAX] & 0xffff;
                uint64_t before = t.exits[i - 1].e.st.gpr[HVT_F_RAX] & 0xffff;
                uint64_t insns = ((ax - before) & 0xffff) * 2; /* spin: inc ax; jmp */

                cr_assert_eq(e->reason, HVT_EXIT_INTR, "#%zu", i);
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
        cr_assert_eq(hv_record_on("emu", "modeswitch", args, &t, &p), 0, "status %d: %s", p.status,
                     p.err);
        cr_assert_eq(t.ndelivers, 3, "real, protected (asked by --irq) and long mode");
        cr_assert_eq(t.delivers[0].frame_bits, 16);
        cr_assert_eq(t.delivers[1].frame_bits, 32);
        cr_assert_eq(t.delivers[2].frame_bits, 64);
        for (size_t i = 0; i < t.nexits; i++) {
                const struct hvt_exit *e = &t.exits[i].e;

                if (e->reason != HVT_EXIT_MMIO)
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
        cr_assert_eq(hv_record_on("emu", "modeswitch", args, &t, &p), 0, "status %d: %s", p.status,
                     p.err);
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

                cr_assert_eq(hv_record_on("emu", elves[i], NULL, &t, &p), 42, "%s: status %d: %s",
                             elves[i], p.status, p.err);
                cr_assert_eq(hvt_state_mode(&t.exits[0].e.st),
                             i ? HVT_MODE_PROTECTED : HVT_MODE_LONG);
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
                cr_assert_eq(hv_record_on("emu", bins[i], args, &t, &p), 0, "%s: status %d: %s",
                             bins[i], p.status, p.err);
                cr_assert_eq(t.end.why, HVT_END_GUEST_EXIT, "%s", bins[i]);
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
                /* 0xEE is above 127: hvrec's own status says so, the end record keeps it. */
                cr_assert_eq(hv_record_on("emu", elf, NULL, &t, &p), HVREC_STATUS_GUEST_HIGH,
                             "%s: status %d: %s", elf, p.status, p.err);
                cr_assert_eq(t.end.detail, 0xEE, "%s: the guest's status", elf);
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
        cr_assert_eq(hv_record_on("emu", "ioloop", args, &t, &p), HVREC_STATUS_LIMIT, "%s", p.err);
        cr_assert_eq(t.nexits, 20);
        cr_assert_eq(t.hdr.h.seed, 7, "the seed is in the header");
        cr_assert_eq(t.nraises, sizeof(want) / sizeof(want[0]));
        for (size_t i = 0; i < t.nraises; i++) {
                cr_assert_eq(t.raises[i].seq, want[i].seq, "raise %zu at #%llu", i,
                             (unsigned long long)t.raises[i].seq);
                cr_assert_eq(t.raises[i].vector, want[i].vector);
                cr_assert_eq(t.raises[i].source, HVT_SRC_OPTION);
        }
        /* IF stays 0 in ioloop: nothing may be injected under the window policy. */
        cr_assert_eq(t.ninjects, 0);
        hv_trace_free(&t);
        hv_proc_free(&p);
}

/* ---- take_writes, through the backend table ------------------------------------ */

#define WR_MEM     (1ull << 20) /* emu_writes.asm: last_ram_byte is the last of 1 MiB */
#define WR_EXITS   4096
#define FILL_LEN   600 /* emu_writes.asm */
#define INS_LEN    5   /* emu_writes.asm */
#define PORT_EXIT  0xf4
#define PORT_IRQ   0xe0
#define PORT_PROBE 0xe2
#define PORT_CHECK 0x80 /* emu_writes.asm's checkpoints; modeswitch's chances to inject */

struct wr_range {
        uint64_t gpa, len;
};

/* One exit, and what take_writes reported right after it (sorted). */
struct wr_exit {
        uint16_t reason;
        uint16_t port;
        uint8_t dir, data; /* I/O: direction, first byte of an OUT */
        uint32_t count;
        uint64_t mmio_addr;
        bool mmio_write;
        struct hvt_vcpu_state st;
        struct wr_range *r;
        size_t nr;
};

struct wr_run {
        const struct backend_ops *ops;
        struct backend *b;
        uint8_t *prev; /* RAM as it was at the exit before */
        struct wr_exit *x;
        size_t nx;
        unsigned frames[3]; /* interrupt frames checked: 16, 32 and 64-bit */
        int status;
};

static void wr_collect(void *ctx, uint64_t gpa, uint64_t len)
{
        struct wr_exit *x = ctx;

        x->r = realloc(x->r, (x->nr + 1) * sizeof(*x->r));
        cr_assert_not_null(x->r);
        x->r[x->nr].gpa = gpa;
        x->r[x->nr].len = len;
        x->nr++;
}

static int wr_range_cmp(const void *a, const void *b)
{
        const struct wr_range *x = a, *y = b;

        return x->gpa < y->gpa ? -1 : x->gpa > y->gpa;
}

static void wr_sort(struct wr_exit *x)
{
        if (x->nr)
                qsort(x->r, x->nr, sizeof(*x->r), wr_range_cmp);
}

/* The range reported after x that holds gpa, or NULL. */
static const struct wr_range *wr_find(const struct wr_exit *x, uint64_t gpa)
{
        for (size_t i = 0; i < x->nr; i++)
                if (gpa >= x->r[i].gpa && gpa - x->r[i].gpa < x->r[i].len)
                        return &x->r[i];
        return NULL;
}

/* [gpa, gpa + len) lies in what was reported after x. */
static bool wr_covered(const struct wr_exit *x, uint64_t gpa, uint64_t len)
{
        for (uint64_t a = gpa; a < gpa + len; a++)
                if (!wr_find(x, a))
                        return false;
        return true;
}

/* ...in a single range: the writes were coalesced. */
static bool wr_in_one(const struct wr_exit *x, uint64_t gpa, uint64_t len)
{
        const struct wr_range *r = wr_find(x, gpa);

        return r && gpa + len <= r->gpa + r->len;
}

/*
 * What every call must satisfy: ranges inside RAM, none empty, none
 * overlapping or touching another (each write reported once, coalesced),
 * and every byte of RAM that changed since the exit before inside one.
 */
static void wr_check_exit(struct wr_run *w, struct wr_exit *x, const char *name)
{
        size_t n = w->nx - 1;

        wr_sort(x);
        for (size_t i = 0; i < x->nr; i++) {
                cr_assert_gt(x->r[i].len, 0, "%s #%zu: an empty range", name, n);
                cr_assert_leq(x->r[i].gpa + x->r[i].len, WR_MEM, "%s #%zu: beyond RAM", name, n);
                if (i)
                        cr_assert_gt(x->r[i].gpa, x->r[i - 1].gpa + x->r[i - 1].len,
                                     "%s #%zu: ranges at 0x%llx and 0x%llx overlap or touch", name,
                                     n, (unsigned long long)x->r[i - 1].gpa,
                                     (unsigned long long)x->r[i].gpa);
        }
        for (uint64_t page = 0; page < WR_MEM; page += 4096) {
                if (!memcmp(w->prev + page, w->b->mem + page, 4096))
                        continue;
                for (uint64_t a = page; a < page + 4096; a++)
                        cr_assert(w->prev[a] == w->b->mem[a] || wr_find(x, a),
                                  "%s #%zu: 0x%llx changed (0x%02x -> 0x%02x), not reported", name,
                                  n, (unsigned long long)a, w->prev[a], w->b->mem[a]);
        }
        memcpy(w->prev, w->b->mem, WR_MEM);
}

/*
 * At a handler's first instruction (the probe): the frame the delivery
 * pushed, just above the stack pointer, was reported (this run delivered it).
 */
static void wr_check_frame(struct wr_run *w, const struct wr_exit *x, const char *name)
{
        uint64_t at = x->st.seg[HVT_SS].base + x->st.gpr[HVT_F_RSP], size = 0;
        unsigned m = 0;

        switch (hvt_state_mode(&x->st)) {
        case HVT_MODE_REAL:
                size = 3 * 2;
                m = 0;
                break;
        case HVT_MODE_PROTECTED:
                size = 3 * 4;
                m = 1;
                break;
        case HVT_MODE_LONG:
                size = 5 * 8;
                m = 2;
                at = x->st.gpr[HVT_F_RSP];
                break;
        default:
                cr_assert_fail("%s #%zu: a probe in mode %u", name, w->nx - 1,
                               hvt_state_mode(&x->st));
        }
        cr_assert(wr_covered(x, at, size), "%s #%zu: the %llu-byte frame at 0x%llx", name,
                  w->nx - 1, (unsigned long long)size, (unsigned long long)at);
        w->frames[m]++;
}

/*
 * Run guest NAME (a flat binary entered in real mode at 0000:1000) on emu
 * through the backend table, serving the guest ABI's ports as hvrec does
 * (interrupts raised on port 0xE0, and on port 0x80 too when raise_at_check,
 * injected once the vCPU is ready; port reads give 0xA0, 0xA1, ...; MMIO
 * reads all-ones), with take_writes after every exit.
 */
static void wr_drive(struct wr_run *w, const char *name, bool raise_at_check)
{
        struct backend_config cfg = { .mem_size = WR_MEM };
        static uint8_t image[64 * 1024];
        struct hvt_vcpu_state st;
        struct backend_exit x;
        struct wr_exit first;
        int pending = -1;
        char why[256];
        size_t n;
        FILE *f;

        memset(w, 0, sizeof(*w));
        w->status = -1;
        hv_require_backend("emu");
        w->ops = backend_find("emu");
        cr_assert_not_null(w->ops);
        cr_assert_not_null(w->ops->take_writes);
        cr_assert(w->ops->caps & HVT_CAP_WRITES);
        cr_assert_eq(w->ops->create(&cfg, &w->b, why, sizeof(why)), 0, "%s", why);
        f = fopen(hv_guest(name), "rb");
        cr_assert_not_null(f, "%s", hv_guest(name));
        n = fread(image, 1, sizeof(image), f);
        fclose(f);
        cr_assert_eq(backend_load(w->b, 0x1000, image, n), 0);
        cr_assert_eq(w->ops->get_state(w->b, &st), 0);
        for (unsigned i = 0; i < HVT_SREG_COUNT; i++) {
                st.seg[i].selector = 0;
                st.seg[i].base = 0;
        }
        st.rip = 0x1000;
        st.gpr[HVT_F_RSP] = 0x1000;
        cr_assert_eq(w->ops->set_state(w->b, &st), 0);
        /* Loading is not the guest writing: nothing to report before the first run. */
        memset(&first, 0, sizeof(first));
        cr_assert_eq(w->ops->take_writes(w->b, wr_collect, &first), 0);
        cr_assert_eq(first.nr, 0, "%s: %zu ranges before any run", name, first.nr);
        w->prev = malloc(WR_MEM);
        w->x = calloc(WR_EXITS, sizeof(*w->x));
        cr_assert(w->prev && w->x);
        memcpy(w->prev, w->b->mem, WR_MEM);
        for (;;) {
                struct wr_exit *e;

                cr_assert_lt(w->nx, WR_EXITS, "%s: runs on and on", name);
                cr_assert_eq(w->ops->get_state(w->b, &st), 0);
                if (pending >= 0 && (st.intr & HVT_INTR_READY)) {
                        cr_assert_eq(w->ops->inject(w->b, (uint8_t)pending), 0);
                        pending = -1;
                }
                cr_assert_eq(w->ops->request_window(w->b, pending >= 0), 0);
                cr_assert_eq(w->ops->run(w->b, &x), 0, "%s: run after #%zu", name, w->nx);
                e = &w->x[w->nx++];
                e->reason = x.reason;
                cr_assert_eq(w->ops->get_state(w->b, &e->st), 0);
                cr_assert_eq(w->ops->take_writes(w->b, wr_collect, e), 0, "%s #%zu", name,
                             w->nx - 1);
                wr_check_exit(w, e, name);
                switch (x.reason) {
                case HVT_EXIT_IO:
                        e->port = x.u.io.port;
                        e->dir = x.u.io.dir;
                        e->count = x.u.io.count;
                        if (x.u.io.dir == HVT_IO_IN) {
                                for (size_t i = 0; i < (size_t)x.u.io.size * x.u.io.count; i++)
                                        x.u.io.data[i] = (uint8_t)(0xa0 + i);
                                break;
                        }
                        e->data = x.u.io.data[0];
                        if (e->port == PORT_EXIT) {
                                w->status = e->data;
                                return;
                        }
                        if (e->port == PORT_IRQ)
                                pending = e->data;
                        else if (e->port == PORT_CHECK && raise_at_check && pending < 0)
                                pending = 0x30;
                        else if (e->port == PORT_PROBE)
                                wr_check_frame(w, e, name);
                        break;
                case HVT_EXIT_MMIO:
                        e->mmio_addr = x.u.mmio.addr;
                        e->mmio_write = x.u.mmio.is_write;
                        if (!x.u.mmio.is_write)
                                memset(x.u.mmio.data, 0xff, 8);
                        break;
                case HVT_EXIT_HLT:
                        cr_assert_geq(pending, 0, "%s #%zu: halted, nothing to wake it", name,
                                      w->nx - 1);
                        break;
                case HVT_EXIT_IRQ_WINDOW:
                case HVT_EXIT_INTR: break;
                default: cr_assert_fail("%s #%zu: exit reason %u", name, w->nx - 1, x.reason);
                }
        }
}

static void wr_free(struct wr_run *w)
{
        for (size_t i = 0; i < w->nx; i++)
                free(w->x[i].r);
        free(w->x);
        free(w->prev);
        w->ops->destroy(w->b);
}

/* The checkpoint exit of emu_writes' step `step` (its index in *at). */
static const struct wr_exit *wr_step(const struct wr_run *w, unsigned step, size_t *at)
{
        for (size_t i = 0; i < w->nx; i++) {
                const struct wr_exit *e = &w->x[i];

                if (e->reason == HVT_EXIT_IO && e->port == PORT_CHECK && e->dir == HVT_IO_OUT &&
                    e->data == step) {
                        if (at)
                                *at = i;
                        return e;
                }
        }
        cr_assert_fail("no checkpoint %u", step);
        return NULL;
}

#define WR_SYM(name) hv_sym("emu_writes", name)

/*
 * Unicorn 2.0.1 crashed hvrec (SIGSEGV in its translated code) at a MOV
 * DR7 that arms an instruction breakpoint, reached or not.  The guest's
 * act is data: the run ends as an emulation failure at that MOV, with its
 * bytes, and the trace is whole.  A data breakpoint still runs (emu takes
 * no #DB for it: docs/backends.md).
 */
Test(emu, a_dr7_instruction_breakpoint_ends_as_emulation_failure)
{
        /* mov eax, 0x2000; mov dr0, eax; mov eax, DR7; mov dr7, eax; mov al, 0;
         * out 0xf4, al; hlt */
        uint8_t code[] = { 0x66, 0xb8, 0x00, 0x20, 0x00, 0x00, 0x0f, 0x23, 0xc0, 0x66, 0xb8, 0x01,
                           0x04, 0x00, 0x00, 0x0f, 0x23, 0xf8, 0xb0, 0x00, 0xe6, 0xf4, 0xf4 };
        struct hv_trace t;
        struct hv_proc p;

        hv_require_backend("emu");
        hv_record_on("emu", hv_write_flat("dr7-exec.bin", code, sizeof(code)), NULL, &t, &p);
        cr_assert_eq(p.status, HVREC_STATUS_CRASH, "status %d: %s", p.status, p.err);
        cr_assert_eq(t.read_err, HVT_END_OF_TRACE, "the trace is whole");
        cr_assert_gt(t.nexits, 0);
        cr_assert_eq(t.exits[t.nexits - 1].e.reason, HVT_EXIT_INTERNAL);
        cr_assert_eq(t.exits[t.nexits - 1].e.st.rip, 0x100f, "at the MOV DR7: 0x%llx",
                     (unsigned long long)t.exits[t.nexits - 1].e.st.rip);
        hv_trace_free(&t);
        hv_proc_free(&p);

        code[13] = 0x03; /* R/W0 = 11: a data breakpoint */
        hv_record_on("emu", hv_write_flat("dr7-data.bin", code, sizeof(code)), NULL, &t, &p);
        cr_assert_eq(p.status, 0, "status %d: %s", p.status, p.err);
        hv_trace_free(&t);
        hv_proc_free(&p);
}

Test(emu, take_writes_reports_each_kind_of_write)
{
        const struct wr_exit *e, *mmio = NULL;
        uint64_t at;
        struct wr_run w;
        size_t i5, i6;

        require_emu();
        wr_drive(&w, "emu_writes", false);
        cr_assert_eq(w.status, 0);
        /* 0: the three IVT entries; 1: a store; 2: a store of the bytes already there. */
        e = wr_step(&w, 0, NULL);
        cr_assert(wr_covered(e, 0x30 * 4, 4) && wr_covered(e, 0x31 * 4, 4) && wr_covered(e, 0, 4));
        cr_assert(wr_covered(wr_step(&w, 1, NULL), WR_SYM("var_plain"), 2));
        at = WR_SYM("var_same");
        cr_assert(w.b->mem[at] == 0 && w.b->mem[at + 1] == 0, "the store changed nothing");
        cr_assert(wr_covered(wr_step(&w, 2, NULL), at, 2), "and still it is reported");
        /* 3: four bytes across a page boundary, one range; 4: REP STOSB, one range. */
        at = WR_SYM("cross");
        cr_assert_neq(at / 4096, (at + 3) / 4096, "emu_writes: `cross` crosses a page");
        cr_assert(wr_in_one(wr_step(&w, 3, NULL), at, 4));
        at = WR_SYM("fill");
        cr_assert_neq(at / 4096, (at + FILL_LEN - 1) / 4096, "emu_writes: `fill` crosses a page");
        cr_assert(wr_in_one(wr_step(&w, 4, NULL), at, FILL_LEN));
        /* 5: REP INSB writes what the loop gave its exit, in the run after that exit. */
        at = WR_SYM("inbuf");
        wr_step(&w, 4, &i5);
        e = &w.x[i5 + 1];
        cr_assert(e->reason == HVT_EXIT_IO && e->dir == HVT_IO_IN && e->port == 0x70 &&
                  e->count == INS_LEN);
        cr_assert(!wr_covered(e, at, 1), "the exit comes before the INSB runs");
        cr_assert(wr_covered(wr_step(&w, 5, NULL), at, INS_LEN));
        for (unsigned i = 0; i < INS_LEN; i++)
                cr_assert_eq(w.b->mem[at + i], 0xa0 + i);
        /*
         * 6: the word store's first byte is RAM's last, its second is MMIO.
         * The RAM byte is written, then the MMIO byte aborts the instruction
         * (RIP goes back to it): reported with the MMIO exit; the
         * instruction runs again and writes it again.
         */
        at = WR_SYM("last_ram_byte");
        cr_assert_eq(at + 1, WR_MEM);
        wr_step(&w, 5, &i5);
        wr_step(&w, 6, &i6);
        for (size_t i = i5 + 1; i < i6; i++)
                if (w.x[i].reason == HVT_EXIT_MMIO)
                        mmio = &w.x[i];
        cr_assert_not_null(mmio);
        cr_assert(mmio->mmio_write && mmio->mmio_addr == WR_MEM);
        cr_assert_eq(hvt_state_pc(&mmio->st), WR_SYM("rolled_back"));
        cr_assert(wr_covered(mmio, at, 1), "the write before the MMIO access");
        cr_assert(wr_covered(&w.x[i6], at, 1), "the write when it ran again");
        cr_assert_eq(w.b->mem[at], 0x5a);
        /* 7-9: INT 0x31, interrupt 0x30 and #DE: three 16-bit frames (wr_check_frame). */
        cr_assert_eq(w.frames[0], 3);
        cr_assert(wr_covered(wr_step(&w, 7, NULL), WR_SYM("soft_done"), 1));
        /* 10: too scattered for exact ranges: whole pages, covering it all. */
        e = wr_step(&w, 10, NULL);
        for (size_t i = 0; i < e->nr; i++)
                cr_assert(e->r[i].gpa % 4096 == 0 && e->r[i].len % 4096 == 0,
                          "0x%llx+%llu is not in pages", (unsigned long long)e->r[i].gpa,
                          (unsigned long long)e->r[i].len);
        cr_assert(wr_covered(e, WR_SYM("scatter"), 0x10000));
        wr_free(&w);
}

/*
 * modeswitch goes from real to protected to long mode (with its own page
 * tables), taking an interrupt in each: 16, 32 and 64-bit frames.
 */
Test(emu, take_writes_sees_frames_in_every_mode)
{
        struct wr_run w;

        require_emu();
        wr_drive(&w, "modeswitch", true);
        cr_assert_eq(w.status, 0);
        cr_assert(w.frames[0] && w.frames[1] && w.frames[2], "frames: %u, %u, %u", w.frames[0],
                  w.frames[1], w.frames[2]);
        cr_assert_eq(hvt_state_mode(&w.x[w.nx - 1].st), HVT_MODE_LONG);
        wr_free(&w);
}

/* The self-modifying stores (and nothing else is needed to run it). */
Test(emu, take_writes_sees_self_modifying_stores)
{
        struct wr_run w;

        require_emu();
        wr_drive(&w, "emu_smc", false);
        cr_assert_eq(w.status, 0);
        cr_assert(wr_covered(&w.x[w.nx - 1], hv_sym("emu_smc", "patched"), 1));
        wr_free(&w);
}

/*
 * Page tables (32-bit paging, identity-mapped): every page they are made of
 * is reported whole once (the CPU may have set bits in any), then only what
 * changes, which includes the accessed and dirty bits the CPU's page walks
 * set with no store any hook sees.  A page directory with all 1024 tables
 * present is more than the 1024 pages emu keeps copies of: take_writes
 * says so rather than miss a write.
 */
Test(emu, take_writes_and_page_tables)
{
        static const uint8_t code[] = {
                0xc6, 0x05, 0x00, 0x30, 0x00, 0x00, 0x01, /* mov byte [0x3000], 1 */
                0xe6, 0x80,                               /* out 0x80, al */
        };
        const uint64_t mem = 8ull << 20, pd = 0x1000, pts = 0x100000, entry = 0x2000;
        struct backend_config cfg = { .mem_size = mem };
        const struct backend_ops *ops = backend_find("emu");
        struct hvt_vcpu_state st;

        require_emu();
        for (unsigned ntables = 512; ntables <= 1024; ntables += 512) {
                uint32_t *dir, *pt0;
                struct backend_exit ex;
                struct wr_exit x;
                struct backend *b;
                char why[256];
                int r;

                cr_assert_eq(ops->create(&cfg, &b, why, sizeof(why)), 0, "%s", why);
                dir = (uint32_t *)(b->mem + pd);
                for (uint64_t i = 0; i < ntables; i++) {
                        uint32_t *pt = (uint32_t *)(b->mem + pts + i * 4096);

                        dir[i] = (uint32_t)(pts + i * 4096) | 3;
                        for (uint64_t j = 0; j < 1024; j++)
                                pt[j] = (uint32_t)((i * 1024 + j) * 4096) | 3;
                }
                pt0 = (uint32_t *)(b->mem + pts);
                cr_assert_eq(backend_load(b, entry, code, sizeof(code)), 0);
                cr_assert_eq(ops->get_state(b, &st), 0);
                for (unsigned i = 0; i < HVT_SREG_COUNT; i++) {
                        st.seg[i].selector = i == HVT_CS ? 8 : 16;
                        st.seg[i].base = 0;
                        st.seg[i].limit = 0xffffffff;
                        st.seg[i].attr = (i == HVT_CS ? 0xb : 0x3) | HVT_SEG_S | HVT_SEG_P |
                                         HVT_SEG_DB | HVT_SEG_G;
                }
                st.cr0 = 0x80000011; /* PG, ET, PE */
                st.cr3 = pd;
                st.rip = entry;
                cr_assert_eq(ops->set_state(b, &st), 0);
                memset(&x, 0, sizeof(x));
                r = ops->take_writes(b, wr_collect, &x);
                if (ntables == 1024) {
                        cr_assert_lt(r, 0, "1025 table pages: tracking must be reported lost");
                        free(x.r);
                        ops->destroy(b);
                        continue;
                }
                cr_assert_eq(r, 0);
                wr_sort(&x);
                cr_assert(wr_covered(&x, pd, 4096));
                cr_assert(wr_covered(&x, pts, ntables * 4096ull));
                cr_assert(!wr_covered(&x, pts + ntables * 4096ull, 1), "not a table");
                free(x.r);
                memset(&x, 0, sizeof(x));
                cr_assert_eq(ops->take_writes(b, wr_collect, &x), 0);
                cr_assert_eq(x.nr, 0, "nothing changed since");
                /* The fetch sets PDE 0 and PTE 2 accessed, the store PTE 3 accessed and dirty. */
                cr_assert_eq(ops->run(b, &ex), 0);
                cr_assert(ex.reason == HVT_EXIT_IO && ex.u.io.port == 0x80, "reason %u", ex.reason);
                cr_assert(dir[0] & 0x20, "PDE 0x%x", dir[0]);
                cr_assert(pt0[2] & 0x20, "PTE 0x%x", pt0[2]);
                cr_assert((pt0[3] & 0x60) == 0x60, "PTE 0x%x", pt0[3]);
                cr_assert_eq(ops->take_writes(b, wr_collect, &x), 0);
                wr_sort(&x);
                cr_assert(wr_covered(&x, 0x3000, 1), "the store");
                /* (the bits are in each entry's low byte) */
                cr_assert(wr_covered(&x, pd, 1), "the PDE");
                cr_assert(wr_covered(&x, pts + 2 * 4, 1) && wr_covered(&x, pts + 3 * 4, 1),
                          "the PTEs");
                for (size_t i = 0; i < x.nr; i++)
                        cr_assert_lt(x.r[i].len, 4096, "0x%llx+%llu: only what changed",
                                     (unsigned long long)x.r[i].gpa,
                                     (unsigned long long)x.r[i].len);
                free(x.r);
                ops->destroy(b);
        }
}
