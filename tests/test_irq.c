// SPDX-License-Identifier: MIT
/*
 * Unit tests of the recorder's interrupt scheduling (src/record/irq.c)
 * against a fake backend that logs every call and fails on demand: the
 * policies, one interrupt at a time, window requests and their errors,
 * --step-inject's rounds and its hold, raised lines on an irqchip backend.
 * The records irq.c writes are read back from the trace.  Also: the
 * backend registry's ops fit each backend's capabilities.
 */
#include <errno.h>
#include <string.h>

#include <criterion/criterion.h>

#include "../src/arch/x86.h"
#include "../src/record/irq.h"
#include "../src/record/recorder.h"
#include "helpers.h"

#define RAM_SIZE 0x10000
#define V1       0x20
#define V2       0x21

/* A handler for V1 in the IVT (real mode: segment:offset). */
#define V1_SEG 0x0100
#define V1_OFF 0x1234

struct fake {
        struct backend base;
        int inject_ret, window_ret, step_ret, line_ret; /* what the next call returns */
        uint8_t queued[16];                             /* vectors inject accepted */
        unsigned nqueued, inject_calls;
        uint8_t lines[16]; /* vectors raise_line accepted */
        unsigned nlines;
        bool window, step; /* as last set */
        unsigned window_calls, step_calls;
        int nmi_ret;        /* what the next inject_nmi returns */
        unsigned nmi_calls; /* inject_nmi calls that succeeded */
        bool nmi_now;       /* as last asked */
};

static struct fake fk;
static struct backend_ops ops;
static struct rec_opts opts;
static struct recorder rec;
static uint8_t ram[RAM_SIZE];

static struct fake *to_fake(struct backend *b)
{
        return (struct fake *)b;
}

static int fake_inject(struct backend *b, uint8_t vector)
{
        struct fake *f = to_fake(b);

        f->inject_calls++;
        if (f->inject_ret)
                return f->inject_ret;
        cr_assert_lt(f->nqueued, sizeof(f->queued));
        f->queued[f->nqueued++] = vector;
        return 0;
}

static int fake_inject_nmi(struct backend *b, bool now)
{
        struct fake *f = to_fake(b);

        if (f->nmi_ret)
                return f->nmi_ret;
        f->nmi_calls++;
        f->nmi_now = now;
        return 0;
}

static int fake_request_window(struct backend *b, bool on)
{
        struct fake *f = to_fake(b);

        f->window_calls++;
        if (f->window_ret)
                return f->window_ret;
        f->window = on;
        return 0;
}

static int fake_set_single_step(struct backend *b, bool on)
{
        struct fake *f = to_fake(b);

        f->step_calls++;
        if (f->step_ret)
                return f->step_ret;
        f->step = on;
        return 0;
}

static int fake_raise_line(struct backend *b, uint8_t vector)
{
        struct fake *f = to_fake(b);

        if (f->line_ret)
                return f->line_ret;
        cr_assert_lt(f->nlines, sizeof(f->lines));
        f->lines[f->nlines++] = vector;
        return 0;
}

/*
 * A recorder on the fake backend, writing its trace to a temporary file,
 * at exit 0 in real mode with an IVT that gives V1 a handler.  An
 * HVT_CAP_IRQCHIP backend has raise_line and neither inject nor
 * request_window, as the registry test below requires of real ones.
 */
static void harness(unsigned policy, unsigned caps, bool step_inject)
{
        struct hvt_header h = { 0 };

        memset(&fk, 0, sizeof(fk));
        memset(&opts, 0, sizeof(opts));
        memset(&rec, 0, sizeof(rec));
        memset(ram, 0, sizeof(ram));
        ops = (struct backend_ops){ .name = "fake", .caps = caps };
        if (caps & HVT_CAP_IRQCHIP) {
                ops.raise_line = fake_raise_line;
        } else {
                ops.inject = fake_inject;
                ops.inject_nmi = fake_inject_nmi;
                ops.request_window = fake_request_window;
        }
        ops.set_single_step = fake_set_single_step;
        fk.base.ops = &ops;
        fk.base.mem = ram;
        fk.base.mem_size = RAM_SIZE;

        opts.policy = policy;
        opts.output = "the test trace";
        opts.kick_vector = -1;
        rec.opts = &opts;
        rec.b = &fk.base;
        rec.mem.ram = ram;
        rec.mem.size = RAM_SIZE;
        rec.step_inject = step_inject;
        rec.ex.st.idt.limit = 0x3ff;
        ram[V1 * 4 + 0] = V1_OFF & 0xff;
        ram[V1 * 4 + 1] = V1_OFF >> 8;
        ram[V1 * 4 + 2] = V1_SEG & 0xff;
        ram[V1 * 4 + 3] = V1_SEG >> 8;

        cr_assert_eq(hvt_writer_open(&rec.w, hv_tmp("irq.zst"), NULL), 0);
        h.h.mem_size = RAM_SIZE;
        h.h.inject_policy = (uint16_t)policy;
        h.h.backend_caps = caps;
        cr_assert_eq(hvt_write_header(rec.w, &h), 0);
}

/* The next exit, recorded as the run loop does: what the scheduler sees when it decides. */
static void at_exit(unsigned reason, uint64_t intr, uint64_t rflags)
{
        static uint8_t io_byte;

        memset(&rec.ex.u, 0, sizeof(rec.ex.u));
        rec.ex.seq = rec.seq++;
        rec.ex.reason = (uint16_t)reason;
        rec.ex.st.intr = intr;
        rec.ex.st.rflags = rflags;
        if (reason == HVT_EXIT_IO) {
                rec.ex.u.io.io.port = 0x80;
                rec.ex.u.io.io.size = 1;
                rec.ex.u.io.io.count = 1;
                rec.ex.u.io.io.dir = HVT_IO_OUT;
                rec.ex.u.io.data = &io_byte;
        }
        cr_assert_eq(hvt_write_exit(rec.w, &rec.ex), 0);
}

/* End and close the trace, and load what irq.c wrote. */
static void load(struct hv_trace *t)
{
        struct hvt_disk_end end = { .exits = rec.seq, .why = HVT_END_GUEST_EXIT };

        cr_assert_eq(hvt_write_end(rec.w, &end, "end of the test"), 0);
        cr_assert_eq(hvt_writer_close(rec.w), 0);
        rec.w = NULL;
        cr_assert_eq(hv_trace_load(hv_tmp("irq.zst"), t), HVT_OK);
        cr_assert_eq(t->read_err, HVT_END_OF_TRACE, "%s: %s", hvt_strerror(t->read_err),
                     t->message ? t->message : "");
}

#define IF     X86_RFLAGS_IF
#define READY  (HVT_INTR_VALID_READY | HVT_INTR_READY)
#define QUEUED (HVT_INTR_VALID_PENDING | HVT_INTR_PENDING)

/* ---- the policies -------------------------------------------------------- */

Test(irq, policy_allows)
{
        static const struct {
                unsigned policy;
                uint64_t intr, rflags;
                bool allows;
        } cases[] = {
                /* window: only the backend's "ready" counts, not IF. */
                { HVT_POLICY_WINDOW, READY, IF, true },
                { HVT_POLICY_WINDOW, READY, 0, true },
                { HVT_POLICY_WINDOW, HVT_INTR_VALID_READY, IF, false },
                { HVT_POLICY_WINDOW, HVT_INTR_STI_SHADOW, IF, false },
                /* eager: IF, whatever the shadow or "ready" say. */
                { HVT_POLICY_EAGER, HVT_INTR_STI_SHADOW, IF, true },
                { HVT_POLICY_EAGER, HVT_INTR_MOVSS_SHADOW, IF, true },
                { HVT_POLICY_EAGER, READY, 0, false },
                /* blind: always. */
                { HVT_POLICY_BLIND, 0, 0, true },
                { HVT_POLICY_BLIND, HVT_INTR_STI_SHADOW, 0, true },
                /* The backend's own policy, or none: never ours to inject. */
                { HVT_POLICY_BACKEND, READY, IF, false },
                { HVT_POLICY_COUNT, READY, IF, false },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
                cr_expect_eq(irq_policy_allows(cases[i].policy, cases[i].intr, cases[i].rflags),
                             cases[i].allows, "case %zu: policy %s, intr 0x%llx, rflags 0x%llx", i,
                             hvt_policy_name(cases[i].policy), (unsigned long long)cases[i].intr,
                             (unsigned long long)cases[i].rflags);
}

Test(irq, nothing_pending_touches_nothing)
{
        harness(HVT_POLICY_WINDOW, HVT_CAP_WINDOW, false);
        at_exit(HVT_EXIT_IO, READY, IF);
        irq_schedule(&rec);
        cr_assert_eq(fk.inject_calls, 0);
        cr_assert_eq(fk.window_calls, 0, "no window to cancel: none was requested");
        cr_assert_not(rec.done);
}

Test(irq, window_waits_for_ready)
{
        struct hv_trace t;

        harness(HVT_POLICY_WINDOW, HVT_CAP_WINDOW, false);
        at_exit(HVT_EXIT_IO, HVT_INTR_VALID_READY, IF);
        irq_raise(&rec, V1, HVT_SRC_GUEST);
        irq_schedule(&rec);
        cr_assert_eq(fk.inject_calls, 0, "not ready: no injection");
        cr_assert(fk.window, "not ready: a window is requested");

        at_exit(HVT_EXIT_IRQ_WINDOW, READY, IF);
        irq_schedule(&rec);
        cr_assert_eq(fk.nqueued, 1);
        cr_assert_eq(fk.queued[0], V1);
        cr_assert_not(fk.window, "nothing else pending: the window is cancelled");
        cr_assert_eq(rec.irq.pending.count, 0);
        cr_assert_eq(rec.irq.outstanding.count, 1);
        cr_assert_not(rec.done);

        load(&t);
        cr_assert_eq(t.nraises, 1);
        cr_assert_eq(t.raises[0].seq, 0);
        cr_assert_eq(t.raises[0].vector, V1);
        cr_assert_eq(t.raises[0].source, HVT_SRC_GUEST);
        cr_assert_eq(t.ninjects, 1);
        cr_assert_eq(t.injects[0].after_seq, 1, "after the window exit");
        cr_assert_eq(t.injects[0].vector, V1);
        cr_assert_eq(t.injects[0].method, HVT_INJ_QUEUE);
        cr_assert_eq(t.injects[0].policy, HVT_POLICY_WINDOW);
        cr_assert_eq(t.injects[0].source, HVT_SRC_GUEST);
        cr_assert_eq(t.injects[0].intr, READY);
        cr_assert_eq(t.injects[0].handler, ((uint64_t)V1_SEG << 4) + V1_OFF,
                     "the handler is the IVT's");
        hv_trace_free(&t);
}

Test(irq, eager_ignores_shadows)
{
        harness(HVT_POLICY_EAGER, HVT_CAP_WINDOW, false);
        at_exit(HVT_EXIT_IO, HVT_INTR_VALID_SHADOW | HVT_INTR_STI_SHADOW, IF);
        irq_raise(&rec, V1, HVT_SRC_OPTION);
        irq_schedule(&rec);
        cr_assert_eq(fk.nqueued, 1, "IF=1: injected inside the STI shadow");

        irq_raise(&rec, V2, HVT_SRC_OPTION);
        at_exit(HVT_EXIT_IO, READY, 0);
        irq_schedule(&rec);
        cr_assert_eq(fk.nqueued, 1, "IF=0: not injected, even when ready");
        cr_assert(fk.window);
}

Test(irq, blind_injects_with_if_clear)
{
        harness(HVT_POLICY_BLIND, HVT_CAP_WINDOW, false);
        at_exit(HVT_EXIT_HLT, 0, 0);
        irq_raise(&rec, V1, HVT_SRC_KICK);
        irq_schedule(&rec);
        cr_assert_eq(fk.nqueued, 1);
        cr_assert_eq(fk.queued[0], V1);
}

Test(irq, raising_a_pending_vector_merges)
{
        struct hv_trace t;

        harness(HVT_POLICY_WINDOW, HVT_CAP_WINDOW, false);
        at_exit(HVT_EXIT_IO, 0, IF);
        irq_raise(&rec, V1, HVT_SRC_GUEST);
        irq_raise(&rec, V1, HVT_SRC_OPTION);
        irq_raise(&rec, V2, HVT_SRC_GUEST);
        cr_assert_eq(rec.raises, 3);
        cr_assert_eq(rec.irq.pending.count, 2, "V1 twice is one pending V1 (an IRR bit)");
        load(&t);
        cr_assert_eq(t.nraises, 3, "every raise is recorded");
        hv_trace_free(&t);
}

/* ---- one at a time ------------------------------------------------------- */

Test(irq, one_at_a_time)
{
        harness(HVT_POLICY_BLIND, HVT_CAP_WINDOW, false);
        at_exit(HVT_EXIT_IO, 0, IF);
        irq_raise(&rec, V1, HVT_SRC_GUEST);
        irq_raise(&rec, V2, HVT_SRC_GUEST);
        irq_schedule(&rec);
        cr_assert_eq(fk.nqueued, 1);
        cr_assert_eq(fk.queued[0], V1, "the oldest first");
        cr_assert(fk.window, "another is pending: a window is requested");

        /* The backend still holds V1: even the blind policy must not inject over it. */
        at_exit(HVT_EXIT_IRQ_WINDOW, QUEUED, IF);
        irq_schedule(&rec);
        cr_assert_eq(fk.inject_calls, 1);
        cr_assert(fk.window);

        at_exit(HVT_EXIT_IRQ_WINDOW, HVT_INTR_VALID_PENDING, IF);
        irq_schedule(&rec);
        cr_assert_eq(fk.nqueued, 2);
        cr_assert_eq(fk.queued[1], V2);
        cr_assert_not(fk.window);
}

Test(irq, busy_backend_retries)
{
        harness(HVT_POLICY_BLIND, HVT_CAP_WINDOW, false);
        at_exit(HVT_EXIT_IO, 0, IF);
        irq_raise(&rec, V1, HVT_SRC_GUEST);
        fk.inject_ret = -EBUSY;
        irq_schedule(&rec);
        cr_assert_not(rec.done, "-EBUSY is not an error");
        cr_assert_eq(rec.irq.pending.count, 1, "still pending");
        cr_assert_eq(rec.injections, 0);
        cr_assert(fk.window, "retried at the next exit");

        fk.inject_ret = 0;
        at_exit(HVT_EXIT_IRQ_WINDOW, 0, IF);
        irq_schedule(&rec);
        cr_assert_eq(fk.nqueued, 1);
        cr_assert_eq(rec.injections, 1);
        cr_assert_eq(rec.irq.pending.count, 0);
}

Test(irq, inject_error_ends_the_run)
{
        harness(HVT_POLICY_BLIND, HVT_CAP_WINDOW, false);
        at_exit(HVT_EXIT_IO, 0, IF);
        irq_raise(&rec, V1, HVT_SRC_GUEST);
        fk.inject_ret = -EIO;
        irq_schedule(&rec);
        cr_assert(rec.done);
        cr_assert_eq(rec.status, STATUS_ERROR);
        cr_assert_eq(rec.why, HVT_END_ERROR);
        cr_assert_not_null(strstr(rec.msg, "injecting vector 0x20"), "%s", rec.msg);
        cr_assert_not_null(strstr(rec.msg, strerror(EIO)), "%s", rec.msg);
        cr_assert_eq(rec.injections, 0);
}

/* ---- window requests and their errors -------------------------------------- */

Test(irq, window_request_error_ends_the_run)
{
        harness(HVT_POLICY_WINDOW, HVT_CAP_WINDOW, false);
        at_exit(HVT_EXIT_IO, HVT_INTR_VALID_READY, IF);
        irq_raise(&rec, V1, HVT_SRC_GUEST);
        fk.window_ret = -EINVAL;
        irq_schedule(&rec);
        cr_assert(rec.done);
        cr_assert_eq(rec.status, STATUS_ERROR);
        cr_assert_not_null(strstr(rec.msg, "requesting an interrupt window"), "%s", rec.msg);
        cr_assert_not_null(strstr(rec.msg, strerror(EINVAL)), "%s", rec.msg);
        cr_assert_not(rec.irq.window_on, "the request did not happen");
}

Test(irq, window_cancel_error_ends_the_run)
{
        harness(HVT_POLICY_WINDOW, HVT_CAP_WINDOW, false);
        at_exit(HVT_EXIT_IO, HVT_INTR_VALID_READY, IF);
        irq_raise(&rec, V1, HVT_SRC_GUEST);
        irq_schedule(&rec);
        cr_assert(fk.window);

        at_exit(HVT_EXIT_IRQ_WINDOW, READY, IF);
        fk.window_ret = -ENOTTY;
        irq_schedule(&rec);
        cr_assert_eq(fk.nqueued, 1, "the injection itself went through");
        cr_assert(rec.done);
        cr_assert_not_null(strstr(rec.msg, "cancelling an interrupt window"), "%s", rec.msg);
        cr_assert_not_null(strstr(rec.msg, strerror(ENOTTY)), "%s", rec.msg);
}

Test(irq, a_finished_run_schedules_nothing)
{
        harness(HVT_POLICY_BLIND, HVT_CAP_WINDOW, false);
        at_exit(HVT_EXIT_IO, 0, IF);
        irq_raise(&rec, V1, HVT_SRC_GUEST);
        rec_finish(&rec, HVT_END_GUEST_EXIT, 0, 0, "the guest exited");
        irq_schedule(&rec);
        cr_assert_eq(fk.inject_calls, 0);
        cr_assert_eq(fk.window_calls, 0);
        cr_assert_str_eq(rec.msg, "the guest exited", "the first end wins");
}

/* ---- --step-inject ------------------------------------------------------- */

/* Raise V1 at a kick (an exit that shows nothing of what ran) and start a round. */
static void start_round(void)
{
        harness(HVT_POLICY_WINDOW, HVT_CAP_WINDOW | HVT_CAP_SINGLE_STEP, true);
        at_exit(HVT_EXIT_INTR, READY, IF);
        irq_raise(&rec, V1, HVT_SRC_KICK);
        irq_schedule(&rec);
        cr_assert_eq(fk.inject_calls, 0, "not at a kick: the steps come first");
        cr_assert(fk.step, "stepping");
        cr_assert_not(fk.window, "no window: it would cut the steps short");
}

Test(irq, step_round_then_hold)
{
        struct hv_trace t;

        start_round();
        at_exit(HVT_EXIT_DEBUG, READY, IF);
        irq_schedule(&rec);
        cr_assert_eq(fk.inject_calls, 0, "after one step: step again");
        cr_assert(fk.step);

        at_exit(HVT_EXIT_DEBUG, READY, IF);
        irq_schedule(&rec);
        cr_assert_eq(fk.nqueued, 1, "after the second step: inject");
        cr_assert(fk.step, "stepping holds while the backend queues it");
        cr_assert(rec.irq.hold);

        /* The backend still queues it: hold, decide nothing. */
        at_exit(HVT_EXIT_DEBUG, QUEUED, IF);
        irq_raise(&rec, V2, HVT_SRC_KICK);
        irq_schedule(&rec);
        cr_assert_eq(fk.inject_calls, 1, "nothing injected during the hold");
        cr_assert(fk.step);
        cr_assert_eq(fk.window_calls, 0, "no window request during the round or the hold");

        /* Delivered: the hold ends and the next decision is made at once. */
        at_exit(HVT_EXIT_DEBUG, HVT_INTR_VALID_PENDING | READY, IF);
        irq_schedule(&rec);
        cr_assert_not(rec.irq.hold);
        cr_assert_eq(fk.nqueued, 2, "a step shows what ran: V2 goes in at once");
        cr_assert_eq(fk.queued[1], V2);
        cr_assert_not(fk.step, "the hold ended stepping, and V2 needed no new round");

        load(&t);
        cr_assert_eq(t.ninjects, 2);
        cr_assert_eq(t.injects[0].after_seq, 2, "after the second step");
        cr_assert_eq(t.injects[1].after_seq, 4);
        hv_trace_free(&t);
}

Test(irq, step_round_cut_short_by_an_exit_that_shows_the_insn)
{
        start_round();
        at_exit(HVT_EXIT_DEBUG, READY, IF);
        irq_schedule(&rec);
        cr_assert_eq(fk.inject_calls, 0);

        /* An I/O exit shows the instruction before it: no second step needed. */
        at_exit(HVT_EXIT_IO, READY, IF);
        irq_schedule(&rec);
        cr_assert_eq(fk.nqueued, 1);
        cr_assert_not(fk.step, "not after a step: no hold");
        cr_assert_not(rec.irq.hold);
}

Test(irq, step_round_ends_when_the_policy_refuses)
{
        start_round();
        at_exit(HVT_EXIT_DEBUG, READY, IF);
        irq_schedule(&rec);
        at_exit(HVT_EXIT_DEBUG, HVT_INTR_VALID_READY, IF);
        irq_schedule(&rec);
        cr_assert_eq(fk.inject_calls, 0, "not ready after the steps");
        cr_assert_not(fk.step, "the round ends");
        cr_assert(fk.window, "the window takes over");
}

Test(irq, no_round_at_an_exit_that_shows_the_insn)
{
        harness(HVT_POLICY_WINDOW, HVT_CAP_WINDOW | HVT_CAP_SINGLE_STEP, true);
        at_exit(HVT_EXIT_HLT, READY, IF);
        irq_raise(&rec, V1, HVT_SRC_KICK);
        irq_schedule(&rec);
        cr_assert_eq(fk.nqueued, 1);
        cr_assert_eq(fk.step_calls, 0);
}

Test(irq, step_error_ends_the_run)
{
        harness(HVT_POLICY_WINDOW, HVT_CAP_WINDOW | HVT_CAP_SINGLE_STEP, true);
        at_exit(HVT_EXIT_INTR, READY, IF);
        irq_raise(&rec, V1, HVT_SRC_KICK);
        fk.step_ret = -EOPNOTSUPP;
        irq_schedule(&rec);
        cr_assert(rec.done);
        cr_assert_not_null(strstr(rec.msg, "starting single-stepping"), "%s", rec.msg);
        cr_assert_eq(fk.inject_calls, 0);
}

/* ---- an irqchip backend: lines, not injections ------------------------------ */

Test(irq, irqchip_raises_every_pending_line)
{
        struct hv_trace t;

        harness(HVT_POLICY_BACKEND, HVT_CAP_IRQCHIP, false);
        at_exit(HVT_EXIT_IO, 0, 0); /* IF=0: the irqchip, not hvrec, waits */
        irq_raise(&rec, V1, HVT_SRC_GUEST);
        irq_raise(&rec, V2, HVT_SRC_OPTION);
        irq_schedule(&rec);
        cr_assert_eq(fk.nlines, 2);
        cr_assert_eq(fk.lines[0], V1);
        cr_assert_eq(fk.lines[1], V2);
        cr_assert_eq(rec.irq.pending.count, 0);
        cr_assert_not(rec.done);

        load(&t);
        cr_assert_eq(t.ninjects, 2);
        cr_assert_eq(t.injects[0].method, HVT_INJ_LINE);
        cr_assert_eq(t.injects[0].policy, HVT_POLICY_BACKEND);
        cr_assert_eq(t.injects[0].source, HVT_SRC_GUEST);
        cr_assert_eq(t.injects[1].vector, V2);
        cr_assert_eq(t.injects[1].source, HVT_SRC_OPTION);
        hv_trace_free(&t);
}

Test(irq, irqchip_unmapped_line_ends_the_run)
{
        harness(HVT_POLICY_BACKEND, HVT_CAP_IRQCHIP, false);
        at_exit(HVT_EXIT_IO, 0, IF);
        irq_raise(&rec, V1, HVT_SRC_GUEST);
        fk.line_ret = -ENXIO;
        irq_schedule(&rec);
        cr_assert(rec.done);
        cr_assert_eq(rec.status, STATUS_ERROR);
        cr_assert_not_null(strstr(rec.msg, "raising the line of vector 0x20"), "%s", rec.msg);
        cr_assert_not_null(strstr(rec.msg, "maps no line"), "%s", rec.msg);
        cr_assert_eq(rec.irq.pending.count, 1, "not raised: still pending");
}

/* ---- outstanding injections ---------------------------------------------- */

static bool only_v2(void *ctx, uint8_t v)
{
        (void)ctx;
        return v == V2;
}

Test(irq, take_outstanding)
{
        bool nmi = true;

        harness(HVT_POLICY_BLIND, HVT_CAP_WINDOW, false);
        at_exit(HVT_EXIT_IO, 0, IF);
        irq_raise(&rec, V1, HVT_SRC_GUEST);
        irq_raise(&rec, V2, HVT_SRC_GUEST);
        irq_schedule(&rec);
        at_exit(HVT_EXIT_IO, 0, IF);
        irq_schedule(&rec);
        cr_assert_eq(fk.nqueued, 2);

        cr_assert_eq(irq_take_outstanding(&rec, only_v2, NULL, &nmi), V2, "the one that matches");
        cr_assert_not(nmi);
        cr_assert_eq(irq_take_outstanding(&rec, only_v2, NULL, &nmi), -1, "taken once");
        cr_assert_eq(irq_take_outstanding(&rec, NULL, NULL, &nmi), V1);
        cr_assert_eq(irq_take_outstanding(&rec, NULL, NULL, &nmi), -1);
}

/* ---- NMIs ------------------------------------------------------------------ */

/* Under each policy: handed over at the next exit, whatever IF and shadows say. */
static void nmi_handed_over(unsigned policy, bool now)
{
        bool nmi = false;

        harness(policy, HVT_CAP_WINDOW, false);
        at_exit(HVT_EXIT_IO, HVT_INTR_VALID_SHADOW | HVT_INTR_MOVSS_SHADOW, 0);
        irq_raise_nmi(&rec, HVT_SRC_OPTION);
        irq_raise_nmi(&rec, HVT_SRC_OPTION); /* merges: one latch */
        irq_schedule(&rec);
        cr_assert_eq(fk.nmi_calls, 1);
        cr_assert_eq(fk.nmi_now, now);
        cr_assert_eq(fk.nqueued, 0, "not a maskable injection");
        cr_assert_not(fk.window, "no window for an NMI");
        cr_assert_not(rec.irq.nmi_pending);
        cr_assert_eq(rec.injections, 1);
        cr_assert_eq(irq_take_outstanding(&rec, NULL, NULL, &nmi), X86_EXC_NMI);
        cr_assert(nmi, "the outstanding vector 2 is an NMI");
}

Test(irq, nmi_window_policy_lets_the_backend_wait)
{
        nmi_handed_over(HVT_POLICY_WINDOW, false);
}

Test(irq, nmi_eager_and_blind_deliver_at_the_next_entry)
{
        nmi_handed_over(HVT_POLICY_EAGER, true);
        nmi_handed_over(HVT_POLICY_BLIND, true);
}

Test(irq, nmi_busy_backend_keeps_it_pending)
{
        harness(HVT_POLICY_WINDOW, HVT_CAP_WINDOW, false);
        at_exit(HVT_EXIT_IO, 0, IF);
        irq_raise_nmi(&rec, HVT_SRC_KICK);
        fk.nmi_ret = -EBUSY;
        irq_schedule(&rec);
        cr_assert(rec.irq.nmi_pending, "still pending");
        cr_assert(irq_can_wake(&rec));
        fk.nmi_ret = 0;
        at_exit(HVT_EXIT_IO, 0, IF);
        irq_schedule(&rec);
        cr_assert_eq(fk.nmi_calls, 1);
        cr_assert_not(rec.irq.nmi_pending);
        cr_assert_not(rec.done);
}

Test(irq, nmi_error_ends_the_run)
{
        harness(HVT_POLICY_WINDOW, HVT_CAP_WINDOW, false);
        at_exit(HVT_EXIT_IO, 0, IF);
        irq_raise_nmi(&rec, HVT_SRC_OPTION);
        fk.nmi_ret = -EIO;
        irq_schedule(&rec);
        cr_assert(rec.done);
}

/* ---- the registry ---------------------------------------------------------- */

Test(backends, ops_fit_the_caps)
{
        cr_assert_gt(backend_count(), 0);
        cr_assert_null(backend_at(backend_count()));
        for (size_t i = 0; i < backend_count(); i++) {
                const struct backend_ops *o = backend_at(i);

                cr_assert_eq(backend_find(o->name), o);
                cr_assert_not_null(backend_option(o->name), "%s: no CMake option", o->name);
                if (o->caps & HVT_CAP_IRQCHIP) {
                        cr_expect_not_null(o->raise_line, "%s: an irqchip raises lines", o->name);
                        cr_expect_null(o->inject, "%s: its irqchip injects, not hvrec", o->name);
                } else {
                        cr_expect_not_null(o->inject, "%s", o->name);
                        cr_expect_not_null(o->request_window, "%s", o->name);
                        cr_expect_null(o->raise_line, "%s: no irqchip, no lines", o->name);
                }
        }
        cr_assert_null(backend_option("qemu"));
}
