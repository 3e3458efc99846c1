// SPDX-License-Identifier: MIT
/*
 * hvrec's own recording, on the emu backend (no /dev/kvm needed):
 *  - guest writes: WRITE records right after the exit whose run made them,
 *    before its other records; every store of guests/rec_writes.asm, the
 *    CPU's interrupt frame and a patched instruction covered with the right
 *    bytes; --track-writes no and a backend that cannot track;
 *  - --step-inject: under kicks every injection follows two recorded single
 *    steps (or an exit that shows what ran), the policy still decides at
 *    the last step, --step-inject no and --single-step runs are unchanged;
 *  - the delivery probe's frame: a real-mode frame that wraps at 64 KiB into
 *    another code segment (guests/rec_frame16.asm), protected-mode frames
 *    from a code descriptor with a non-zero base, a 16-bit gate, a 16-bit
 *    stack and a CS beyond the GDT limit (guests/rec_frame32.asm).
 * Expected values come from the guests' symbol maps and from the vCPU
 * state at the exit an injection followed, never from hvrec's output.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "helpers.h"

#define STRESS_EXITS "3000"

static const struct hvt_exit *exit_at(const struct hv_trace *t, uint64_t seq)
{
        cr_assert_lt(seq, t->nexits, "exit #%llu exists", (unsigned long long)seq);
        cr_assert_eq(t->exits[seq].e.seq, seq, "exits are numbered from 0 without gaps");
        return &t->exits[seq].e;
}

/* The seq of the only IO exit on `port`. */
static uint64_t io_exit_on(const struct hv_trace *t, unsigned port)
{
        uint64_t seq = UINT64_MAX;

        for (size_t i = 0; i < t->nexits; i++) {
                const struct hvt_exit *e = &t->exits[i].e;

                if (e->reason == HVT_EXIT_IO && e->u.io.io.port == port) {
                        cr_assert_eq(seq, UINT64_MAX, "one exit on port 0x%x", port);
                        seq = e->seq;
                }
        }
        cr_assert_neq(seq, UINT64_MAX, "an exit on port 0x%x", port);
        return seq;
}

/* ---- guest writes ---------------------------------------------------------- */

/*
 * The trace in record order: every WRITE follows the EXIT record of its
 * seq, with nothing but other WRITEs in between; with tracking on, the
 * probe exit of every DELIVER has WRITEs (the CPU wrote the frame).
 */
static void assert_write_order(const char *path, size_t *nwrites)
{
        struct hvt_reader *r;
        struct hvt_event ev;
        uint64_t last_exit = UINT64_MAX, mem_size = 0;
        bool writes_open = false, wrote_this_exit = false, tracking = false;
        int err;

        *nwrites = 0;
        cr_assert_eq(hvt_reader_open(&r, path), HVT_OK, "%s", path);
        while ((err = hvt_reader_next(r, &ev)) == HVT_OK) {
                switch (ev.type) {
                case HVT_REC_HEADER:
                        mem_size = ev.header.h.mem_size;
                        tracking = ev.header.h.flags & HVT_HDR_WRITES;
                        break;
                case HVT_REC_EXIT:
                        last_exit = ev.exit.seq;
                        writes_open = true;
                        wrote_this_exit = false;
                        break;
                case HVT_REC_WRITE:
                        cr_assert(writes_open,
                                  "record %llu: a WRITE of exit #%llu after another record of "
                                  "that exit, or before any exit",
                                  (unsigned long long)ev.index, (unsigned long long)ev.write.seq);
                        cr_assert_eq(ev.write.seq, last_exit, "record %llu: WRITE of the last exit",
                                     (unsigned long long)ev.index);
                        cr_assert(ev.write.gpa < mem_size &&
                                          ev.write.len <= mem_size - ev.write.gpa,
                                  "WRITE 0x%llx+%zu inside RAM", (unsigned long long)ev.write.gpa,
                                  ev.write.len);
                        wrote_this_exit = true;
                        (*nwrites)++;
                        break;
                case HVT_REC_DELIVER:
                        cr_assert_eq(ev.deliver.seq, last_exit, "DELIVER right after its exit");
                        cr_assert(wrote_this_exit || !tracking,
                                  "the interrupt frame of the delivery at #%llu was written "
                                  "(WRITE records) before the DELIVER",
                                  (unsigned long long)last_exit);
                        writes_open = false;
                        break;
                default: writes_open = false; break;
                }
        }
        cr_assert_eq(err, HVT_END_OF_TRACE, "%s", hvt_reader_message(r));
        hvt_reader_close(r);
}

/* Every byte of want at gpa is covered by a WRITE of exit seq holding that byte. */
static void assert_written(const struct hv_trace *t, uint64_t seq, uint64_t gpa, const void *want,
                           size_t len, const char *what)
{
        const uint8_t *w = want;

        for (size_t i = 0; i < len; i++) {
                bool found = false;

                for (size_t k = 0; k < t->nwrites && !found; k++) {
                        const struct hv_write *wr = &t->writes[k];

                        if (wr->seq != seq || gpa + i < wr->gpa || gpa + i >= wr->gpa + wr->len)
                                continue;
                        cr_assert_eq(wr->data[gpa + i - wr->gpa], w[i],
                                     "%s: byte 0x%llx at exit #%llu is 0x%02x, want 0x%02x", what,
                                     (unsigned long long)(gpa + i), (unsigned long long)seq,
                                     wr->data[gpa + i - wr->gpa], w[i]);
                        found = true;
                }
                cr_assert(found, "%s: byte 0x%llx is covered by a WRITE of exit #%llu", what,
                          (unsigned long long)(gpa + i), (unsigned long long)seq);
        }
}

Test(recorder, writes_follow_their_exit_with_the_stored_bytes)
{
        static const uint8_t a1[] = { 0x34, 0x12 }, a2[] = { 0xcd, 0xab },
                             b[] = { 0xef, 0xbe, 0xad, 0xde }, far[] = { 0x5a }, one[] = { 1 };
        const char *g = "rec_writes";
        uint64_t buf_a = hv_sym(g, "buf_a"), buf_b = hv_sym(g, "buf_b");
        uint64_t str_at = hv_sym(g, "STR_AT"), str_len = hv_sym(g, "STR_LEN");
        uint64_t vector = hv_sym(g, "VECTOR"), handler = hv_sym(g, "handler");
        uint8_t str[64], ivt[4], frame[6], patched_port = 0x85;
        const struct hvt_disk_deliver *d;
        struct hv_trace t;
        struct hv_proc p;
        size_t nwrites;
        uint8_t *mem;

        cr_assert_eq(hv_record_on("emu", g, NULL, &t, &p), 0, "status %d: %s", p.status, p.err);
        cr_assert(t.hdr.h.flags & HVT_HDR_WRITES, "header flag for write tracking");
        cr_assert(t.hdr.h.backend_caps & HVT_CAP_WRITES);
        assert_write_order(hv_tmp("rec.zst"), &nwrites);
        cr_assert_eq(nwrites, t.nwrites);

        ivt[0] = (uint8_t)handler;
        ivt[1] = (uint8_t)(handler >> 8);
        ivt[2] = ivt[3] = 0;
        assert_written(&t, io_exit_on(&t, 0x81), vector * 4, ivt, 4, "IVT entry");
        assert_written(&t, io_exit_on(&t, 0x81), buf_a, a1, 2, "buf_a = 0x1234");
        assert_written(&t, io_exit_on(&t, 0x82), buf_b, b, 4, "buf_b = 0xdeadbeef");
        assert_written(&t, io_exit_on(&t, 0x82), hv_sym(g, "FAR_BUF"), far, 1, "FAR_BUF");
        assert_written(&t, io_exit_on(&t, 0x83), buf_a, a2, 2, "buf_a = 0xabcd");
        cr_assert_leq(str_len, sizeof(str));
        memset(str, (int)hv_sym(g, "STR_BYTE"), sizeof(str));
        assert_written(&t, io_exit_on(&t, 0x83), str_at, str, str_len, "REP STOSB");
        assert_written(&t, io_exit_on(&t, 0x85), hv_sym(g, "patched") + 1, &patched_port, 1,
                       "the patched OUT");

        /* The CPU's frame: IP, CS, FLAGS at the handler's SS:SP, written before the probe. */
        cr_assert_eq(t.ndelivers, 1);
        d = &t.delivers[0];
        cr_assert_eq(d->cs_base + d->ip, hv_sym(g, "after_hlt"));
        memcpy(frame, &d->ip, 2);
        memcpy(frame + 2, &d->cs, 2);
        memcpy(frame + 4, &d->flags, 2);
        assert_written(&t, d->seq, exit_at(&t, d->seq)->st.gpr[HVT_F_RSP], frame, 6, "frame");
        assert_written(&t, hv_last_exit(&t)->e.seq, hv_sym(g, "got"), one, 1, "got = 1");

        /*
         * The initial image plus the WRITEs up to each exit is the memory at
         * that exit: the instruction bytes recorded at every exit are there.
         */
        mem = t.mem;
        cr_assert_not_null(mem);
        for (size_t i = 0, k = 0; i < t.nexits; i++) {
                const struct hvt_exit *e = &t.exits[i].e;
                uint64_t pc = hvt_state_pc(&e->st);

                for (; k < t.nwrites && t.writes[k].seq <= e->seq; k++)
                        memcpy(mem + t.writes[k].gpa, t.writes[k].data, t.writes[k].len);
                cr_assert_lt(pc + e->insn_len, t.mem_size);
                cr_assert_arr_eq(mem + pc, e->insn, e->insn_len,
                                 "exit #%zu: the code at 0x%llx as the trace rebuilds it", i,
                                 (unsigned long long)pc);
        }
        hv_trace_free(&t);
        hv_proc_free(&p);
}

Test(recorder, track_writes_no_records_none)
{
        const char *args[] = { "--track-writes", "no", NULL };
        struct hv_trace t;
        struct hv_proc p;
        size_t nwrites;

        cr_assert_eq(hv_record_on("emu", "rec_writes", args, &t, &p), 0, "status %d: %s", p.status,
                     p.err);
        cr_assert_eq(t.hdr.h.flags & HVT_HDR_WRITES, 0);
        cr_assert_eq(t.nwrites, 0);
        assert_write_order(hv_tmp("rec.zst"), &nwrites);
        cr_assert_eq(nwrites, 0);
        cr_assert_eq(t.ndelivers, 1, "the run itself is the same");
        hv_trace_free(&t);
        hv_proc_free(&p);
}

Test(recorder, track_writes_yes_needs_the_capability)
{
        /* kvm reports no writes (HVT_CAP_WRITES): refused before it is even probed. */
        const char *argv[] = { HVREC,
                               "run",
                               "--backend",
                               "kvm",
                               "--track-writes",
                               "yes",
                               "-o",
                               hv_tmp("never.zst"),
                               hv_guest("rec_writes"),
                               NULL };
        struct hv_proc p;

        cr_assert_eq(hv_run(argv, &p), 0);
        hv_assert_one_line_error(&p, "hvrec", "--track-writes");
        cr_assert(strstr(p.err, "kvm"), "names the backend: %s", p.err);
        hv_proc_free(&p);
}

/* ---- step before injecting ------------------------------------------------------ */

static bool shows_last_insn(unsigned reason)
{
        return reason == HVT_EXIT_IO || reason == HVT_EXIT_MMIO || reason == HVT_EXIT_HLT;
}

/*
 * Every injection follows an exit that shows what ran (IO, MMIO, HLT) or
 * a single step, with another single step before it since the stop that
 * showed nothing (kick, window).  Returns how many followed steps.
 */
static size_t assert_injections_follow_steps(const struct hv_trace *t)
{
        size_t stepped = 0;

        for (size_t i = 0; i < t->ninjects; i++) {
                uint64_t a = t->injects[i].after_seq;
                const struct hvt_exit *e = exit_at(t, a);
                unsigned steps = 0;

                if (shows_last_insn(e->reason))
                        continue;
                cr_assert_eq(e->reason, HVT_EXIT_DEBUG,
                             "injection %zu after #%llu, a %s exit: not a step", i,
                             (unsigned long long)a, hvt_exit_reason_name(e->reason));
                for (uint64_t s = a + 1; s-- > 0;) {
                        unsigned r = exit_at(t, s)->reason;

                        if (r == HVT_EXIT_DEBUG)
                                steps++;
                        else if (r != HVT_EXIT_INTR && r != HVT_EXIT_IRQ_WINDOW)
                                break;
                }
                cr_assert_geq(steps, 2, "injection %zu after #%llu follows %u steps", i,
                              (unsigned long long)a, steps);
                stepped++;
        }
        return stepped;
}

/* Each delivery matches an injection: the bookkeeping stayed right while stepping. */
static void assert_deliveries_match(const struct hv_trace *t)
{
        cr_assert_gt(t->ninjects, 10, "a kicked run injects: %zu", t->ninjects);
        cr_assert_geq(t->nraises, t->ninjects);
        cr_assert(t->ndelivers == t->ninjects || t->ndelivers + 1 == t->ninjects,
                  "%zu deliveries for %zu injections", t->ndelivers, t->ninjects);
        for (size_t i = 0; i < t->ndelivers; i++) {
                const struct hvt_disk_inject *in = &t->injects[i];
                const struct hvt_disk_deliver *d = &t->delivers[i];

                cr_assert_eq(d->vector, 0x30);
                cr_assert_eq(d->vector_from, HVT_VEC_TABLE);
                cr_assert_gt(d->seq, in->after_seq);
                cr_assert_eq(d->cs_base + d->ip, in->cs_base + in->rip,
                             "delivery %zu lands where injection %zu was made", i, i);
        }
}

Test(recorder, kicked_eager_injections_follow_two_steps)
{
        const char *args[] = { "--kick", "20:0x30",     "--inject",   "eager", "--seed",
                               "1",      "--max-exits", STRESS_EXITS, NULL };
        struct hv_trace t;
        struct hv_proc p;
        size_t debug = 0, kicks = 0;

        cr_assert_eq(hv_record_on("emu", "stress", args, &t, &p), HVREC_STATUS_LIMIT,
                     "status %d: %s", p.status, p.err);
        cr_assert_eq(t.end.why, HVT_END_MAX_EXITS);
        cr_assert_eq(t.nexits, strtoull(STRESS_EXITS, NULL, 10),
                     "--max-exits holds while stepping");
        cr_assert(t.hdr.h.flags & HVT_HDR_STEP_INJECT);
        cr_assert_eq(t.hdr.h.flags & HVT_HDR_SINGLE_STEP, 0);
        for (size_t i = 0; i < t.nexits; i++) {
                debug += t.exits[i].e.reason == HVT_EXIT_DEBUG;
                kicks += t.exits[i].e.reason == HVT_EXIT_INTR;
        }
        cr_assert_gt(kicks, 10);
        cr_assert_gt(debug, 0);
        cr_assert_gt(assert_injections_follow_steps(&t), 10, "injections at kicks were stepped");
        assert_deliveries_match(&t);
        hv_trace_free(&t);
        hv_proc_free(&p);
}

Test(recorder, kicked_window_policy_decides_at_the_last_step)
{
        const char *args[] = {
                "--kick", "20:0x30", "--seed", "2", "--max-exits", STRESS_EXITS, NULL
        };
        struct hv_trace t;
        struct hv_proc p;

        cr_assert_eq(hv_record_on("emu", "stress", args, &t, &p), HVREC_STATUS_LIMIT,
                     "status %d: %s", p.status, p.err);
        cr_assert(t.hdr.h.flags & HVT_HDR_STEP_INJECT);
        cr_assert_gt(assert_injections_follow_steps(&t), 10);
        for (size_t i = 0; i < t.ninjects; i++) {
                const struct hvt_disk_inject *in = &t.injects[i];

                cr_assert(in->intr & HVT_INTR_READY, "injection %zu when ready", i);
                cr_assert_eq(in->intr & (HVT_INTR_STI_SHADOW | HVT_INTR_MOVSS_SHADOW), 0,
                             "injection %zu outside shadows", i);
        }
        assert_deliveries_match(&t);
        hv_trace_free(&t);
        hv_proc_free(&p);
}

Test(recorder, step_inject_no_injects_at_the_kick)
{
        const char *args[] = { "--kick",      "20:0x30",    "--inject",      "eager", "--seed", "1",
                               "--max-exits", STRESS_EXITS, "--step-inject", "no",    NULL };
        struct hv_trace t;
        struct hv_proc p;
        size_t at_kicks = 0;

        cr_assert_eq(hv_record_on("emu", "stress", args, &t, &p), HVREC_STATUS_LIMIT,
                     "status %d: %s", p.status, p.err);
        cr_assert_eq(t.hdr.h.flags & HVT_HDR_STEP_INJECT, 0);
        for (size_t i = 0; i < t.nexits; i++)
                cr_assert_neq(t.exits[i].e.reason, HVT_EXIT_DEBUG, "no step at #%zu", i);
        for (size_t i = 0; i < t.ninjects; i++)
                at_kicks += exit_at(&t, t.injects[i].after_seq)->reason == HVT_EXIT_INTR;
        cr_assert_gt(at_kicks, 10, "injections right at kicks");
        assert_deliveries_match(&t);
        hv_trace_free(&t);
        hv_proc_free(&p);
}

Test(recorder, single_step_runs_are_unchanged)
{
        const char *base[] = { "--single-step", "--kick", "20:0x30",     "--inject",   "eager",
                               "--seed",        "1",      "--max-exits", STRESS_EXITS, NULL };
        const char *off[] = { "--single-step", "--kick",        "20:0x30", "--inject",
                              "eager",         "--seed",        "1",       "--max-exits",
                              STRESS_EXITS,    "--step-inject", "no",      NULL };
        struct hv_trace a, b;
        struct hv_proc p;

        cr_assert_eq(hv_record_on("emu", "stress", base, &a, &p), HVREC_STATUS_LIMIT,
                     "status %d: %s", p.status, p.err);
        hv_proc_free(&p);
        cr_assert_eq(hv_record_on("emu", "stress", off, &b, &p), HVREC_STATUS_LIMIT,
                     "status %d: %s", p.status, p.err);
        hv_proc_free(&p);
        cr_assert(a.hdr.h.flags & HVT_HDR_SINGLE_STEP);
        cr_assert_eq(a.nexits, b.nexits);
        for (size_t i = 0; i < a.nexits; i++) {
                cr_assert_eq(a.exits[i].e.reason, b.exits[i].e.reason, "exit #%zu", i);
                cr_assert_eq(a.exits[i].e.st.rip, b.exits[i].e.st.rip, "exit #%zu", i);
        }
        cr_assert_gt(a.ninjects, 0);
        cr_assert_eq(a.ninjects, b.ninjects);
        for (size_t i = 0; i < a.ninjects; i++)
                cr_assert_eq(a.injects[i].after_seq, b.injects[i].after_seq, "injection %zu", i);
        hv_trace_free(&a);
        hv_trace_free(&b);
}

/* ---- the delivery frame --------------------------------------------------------- */

/* The injection the delivery answers: the last one before its probe exit. */
static const struct hvt_disk_inject *injection_before(const struct hv_trace *t,
                                                      const struct hvt_disk_deliver *d)
{
        const struct hvt_disk_inject *in = NULL;

        for (size_t i = 0; i < t->ninjects; i++)
                if (t->injects[i].after_seq < d->seq)
                        in = &t->injects[i];
        cr_assert_not_null(in, "an injection before the probe at #%llu",
                           (unsigned long long)d->seq);
        return in;
}

Test(recorder, real_mode_frame_wraps_and_names_the_interrupted_segment)
{
        const char *g = "rec_frame16";
        uint64_t seg = hv_sym(g, "FAR_SEG");
        const struct hvt_disk_deliver *d;
        const struct hvt_disk_inject *in;
        struct hv_trace t;
        struct hv_proc p;

        hv_record_on("emu", g, NULL, &t, &p);
        cr_assert_eq(t.ndelivers, 1, "status %d: %s", p.status, p.err);
        d = &t.delivers[0];
        in = injection_before(&t, d);
        cr_assert_eq(d->frame_bits, 16);
        cr_assert_eq(d->vector, hv_sym(g, "VECTOR"));
        cr_assert_eq(d->handler, hv_sym(g, "handler"));
        cr_assert_eq(d->cs, seg);
        cr_assert_eq(d->cs_base, seg << 4);
        cr_assert_eq(d->ip, hv_sym(g, "after_hlt") - (seg << 4));
        cr_assert_eq(d->ss, hv_sym(g, "STACK_SEG"));
        cr_assert_eq(d->sp, hv_sym(g, "STACK_SP"), "SP before the interrupt, wrapped back");
        cr_assert_eq(d->flags, in->rflags & 0xffff, "FLAGS read at SS:0000 after the wrap");
        cr_assert(d->flags & 1, "CF as the guest set it");
        cr_assert_eq(d->dflags, 0);
        cr_assert_eq(p.status, 0x42, "status %d (1: the IRET did not bring back CF and SP)",
                     p.status);
        hv_trace_free(&t);
        hv_proc_free(&p);
}

Test(recorder, protected_mode_frames_by_gate_stack_and_descriptor)
{
        static const struct {
                const char *vector, *after;
                unsigned bits;
                bool stack16, no_gdt;
        } want[] = {
                { "VECTOR32", "after_hlt32", 32, false, false },
                { "VECTOR16", "after_hlt16", 16, false, false },
                { "VECTOR32", "after_hlt_ss16", 32, true, false },
                { "VECTOR_NOGDT", "after_hlt_nogdt", 32, false, true },
        };
        const char *g = "rec_frame32", *args[] = { "--mode", "protected", NULL };
        uint64_t base = hv_sym(g, "CODE_BASE"), sel = hv_sym(g, "SEL_CODE");
        struct hv_trace t;
        struct hv_proc p;

        hv_record_on("emu", g, args, &t, &p);
        cr_assert_eq(t.ndelivers, sizeof(want) / sizeof(want[0]), "status %d: %s", p.status, p.err);
        for (size_t i = 0; i < t.ndelivers; i++) {
                const struct hvt_disk_deliver *d = &t.delivers[i];
                const struct hvt_disk_inject *in = injection_before(&t, d);
                const struct hvt_exit *probe = exit_at(&t, d->seq);
                uint64_t mask = want[i].bits == 16 ? 0xffff : 0xffffffff;
                uint64_t sp = exit_at(&t, in->after_seq)->st.gpr[HVT_F_RSP];

                cr_assert_eq(d->vector, hv_sym(g, want[i].vector), "delivery %zu", i);
                cr_assert_eq(d->frame_bits, want[i].bits, "delivery %zu: the gate's size", i);
                cr_assert_eq(d->cs, sel, "delivery %zu", i);
                cr_assert_eq(d->ip, hv_sym(g, want[i].after) - base, "delivery %zu", i);
                cr_assert_eq(d->flags, in->rflags & mask, "delivery %zu: FLAGS", i);
                cr_assert_eq(d->sp, sp, "delivery %zu: the stack pointer before it", i);
                if (want[i].stack16) {
                        cr_assert_eq(sp, hv_sym(g, "STACK16_ESP"));
                        cr_assert_eq(d->ss, hv_sym(g, "SEL_STACK16"));
                        cr_assert_eq(probe->st.seg[HVT_SS].base, hv_sym(g, "STACK16_BASE"));
                        cr_assert_eq(probe->st.seg[HVT_SS].attr & HVT_SEG_DB, 0);
                }
                if (want[i].no_gdt) {
                        cr_assert_eq(d->dflags, HVT_DELIVER_CS_BASE_UNKNOWN,
                                     "delivery %zu: CS beyond the GDT limit", i);
                        cr_assert_eq(d->cs_base, 0);
                        cr_assert_lt(probe->st.gdt.limit, sel);
                } else {
                        cr_assert_eq(d->dflags, 0, "delivery %zu", i);
                        cr_assert_eq(d->cs_base, base, "delivery %zu: the descriptor's base", i);
                        cr_assert_eq(in->cs_base, base, "the vCPU agrees");
                }
        }
        cr_assert_eq(p.status, 0x42, "status %d (1: an IRET did not bring back CF and ESP)",
                     p.status);
        hv_trace_free(&t);
        hv_proc_free(&p);
}
