// SPDX-License-Identifier: MIT
/*
 * The run loop: enter the guest, record the exit with full state, act on it
 * (one helper per exit reason), then decide about interrupts before the
 * next entry.  Nothing here knows which backend is running.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "abi.h"
#include "irq.h"
#include "loop.h"
#include "recorder.h"
#include "signals.h"

/* "stopped by signal 1 (SIGHUP: Hangup)" */
static void finish_signal(struct recorder *rec, int signo)
{
        const char *abbrev = sigabbrev_np(signo);

        rec_finish(rec, HVT_END_SIGNAL, STATUS_SIGNAL0 + signo, (uint32_t)signo,
                   "stopped by signal %d (%s%s%s%s)", signo, abbrev ? "SIG" : "",
                   abbrev ? abbrev : "", abbrev ? ": " : "", strsignal(signo));
}

/* "0000:1005" in real mode, "0x00101005" or a 64-bit RIP elsewhere. */
static void format_pc(const struct hvt_vcpu_state *st, char *buf, size_t len)
{
        if (hvt_state_mode(st) == HVT_MODE_REAL)
                snprintf(buf, len, "%04x:%04" PRIx64, st->seg[HVT_CS].selector, st->rip & 0xffff);
        else
                snprintf(buf, len, "0x%" PRIx64, hvt_state_pc(st));
}

/* ---- one helper per exit reason ----------------------------------------- */

static void on_io(struct recorder *rec)
{
        abi_handle_io(rec);
}

static void on_crash(struct recorder *rec, const char *what)
{
        char pc[32], bytes[64] = "";
        size_t n = 0;

        format_pc(&rec->ex.st, pc, sizeof(pc));
        for (unsigned i = 0; i < rec->ex.insn_len && i < 8; i++)
                n += (size_t)snprintf(bytes + n, sizeof(bytes) - n, "%s%02x", i ? " " : "",
                                      rec->ex.insn[i]);
        rec_finish(rec, HVT_END_CRASH, STATUS_CRASH, rec->ex.raw_reason,
                   "guest crashed: %s at %s (bytes %s)", what, pc, n ? bytes : "unreadable");
}

static void on_shutdown(struct recorder *rec)
{
        on_crash(rec, "shutdown (triple fault)");
}

static void on_fail_entry(struct recorder *rec)
{
        char what[96];

        snprintf(what, sizeof(what), "VM entry failed (hardware reason 0x%" PRIx64 ")",
                 rec->ex.u.fail_entry.hw_reason);
        on_crash(rec, what);
}

static void on_internal(struct recorder *rec)
{
        static const char *const sub[] = { "", "emulation failure", "simultaneous exceptions",
                                           "delivery event failure" };
        uint32_t s = rec->ex.u.internal.internal.suberror;
        char what[96];

        snprintf(what, sizeof(what), "internal error, suberror %u%s%s%s", s, s && s < 4 ? " (" : "",
                 s && s < 4 ? sub[s] : "", s && s < 4 ? ")" : "");
        on_crash(rec, what);
}

static void on_exception(struct recorder *rec)
{
        char what[64];

        snprintf(what, sizeof(what), "unhandled exception %u", rec->ex.u.exception.vector);
        on_crash(rec, what);
}

static void on_unknown(struct recorder *rec)
{
        char what[64];

        snprintf(what, sizeof(what), "unhandled exit reason %u", rec->ex.raw_reason);
        on_crash(rec, what);
}

static void dispatch(struct recorder *rec)
{
        switch (rec->ex.reason) {
        case HVT_EXIT_IO: on_io(rec); break;
        case HVT_EXIT_SHUTDOWN: on_shutdown(rec); break;
        case HVT_EXIT_FAIL_ENTRY: on_fail_entry(rec); break;
        case HVT_EXIT_INTERNAL: on_internal(rec); break;
        case HVT_EXIT_EXCEPTION: on_exception(rec); break;
        case HVT_EXIT_UNKNOWN: on_unknown(rec); break;
        case HVT_EXIT_HLT:        /* decided after async events and triggers: settle_halt */
        case HVT_EXIT_MMIO:       /* recorded; reads return all-ones */
        case HVT_EXIT_INTR:       /* kicks are handled with the async events */
        case HVT_EXIT_IRQ_WINDOW: /* irq_schedule injects */
        case HVT_EXIT_DEBUG:      /* single-step: the record is the point */
        default: break;
        }
}

/* ---- building the record ------------------------------------------------ */

static void copy_exit_data(struct hvt_exit *ex, const struct backend_exit *bx)
{
        /*
         * The common case first, and whole: every byte of the I/O tail is set
         * here, and the writer writes no other byte of the union for it, so it
         * skips clearing the union (a rep stosq that cost more than the rest).
         */
        if (bx->reason == HVT_EXIT_IO) {
                ex->u.io.io = (struct hvt_disk_io){ .port = bx->u.io.port,
                                                    .size = bx->u.io.size,
                                                    .dir = bx->u.io.dir,
                                                    .count = bx->u.io.count };
                ex->u.io.data = bx->u.io.data;
                return;
        }
        /* Reserved bytes must not carry the previous exit's data: identical runs, identical traces.
         */
        memset(&ex->u, 0, sizeof(ex->u));
        switch (bx->reason) {
        case HVT_EXIT_MMIO:
                ex->u.mmio.addr = bx->u.mmio.addr;
                ex->u.mmio.len = bx->u.mmio.len;
                ex->u.mmio.is_write = bx->u.mmio.is_write;
                memcpy(ex->u.mmio.data, bx->u.mmio.data, 8);
                break;
        case HVT_EXIT_FAIL_ENTRY: ex->u.fail_entry = bx->u.fail_entry; break;
        case HVT_EXIT_INTERNAL:
                ex->u.internal.internal.suberror = bx->u.internal.suberror;
                ex->u.internal.internal.ndata = bx->u.internal.ndata;
                memcpy(ex->u.internal.data, bx->u.internal.data, sizeof(bx->u.internal.data));
                break;
        case HVT_EXIT_DEBUG: ex->u.debug = bx->u.debug; break;
        case HVT_EXIT_EXCEPTION: ex->u.exception = bx->u.exception; break;
        default: break;
        }
}

static int record_exit(struct recorder *rec, uint64_t t_in, uint64_t t_out)
{
        struct hvt_exit *ex = &rec->ex;
        int err;

        ex->seq = rec->seq++;
        ex->time_ns = t_out - rec->t0;
        ex->guest_ns = t_out - t_in; /* rec->clock never goes back */
        ex->reason = rec->bx.reason;
        ex->raw_reason = rec->bx.raw;
        err = rec->b->ops->get_state(rec->b, &ex->st);
        if (err)
                return err;
        ex->insn_len = (uint8_t)x86_read_linear(&rec->mem, &ex->st, hvt_state_pc(&ex->st), ex->insn,
                                                sizeof(ex->insn));
        /* What the guest will read is part of the exit: fill it before recording. */
        abi_fill_in(rec);
        if (rec->input)
                rec->input->ops->fill_in(rec->input->ctx, rec);
        copy_exit_data(ex, &rec->bx);

        rec->by_reason[ex->reason < HVT_EXIT_REASON_COUNT ? ex->reason : 0]++;
        return hvt_write_exit(rec->w, ex);
}

/* ---- guest writes ------------------------------------------------------- */

struct write_ctx {
        struct recorder *rec;
        int err; /* the first trace write error */
};

static void write_range(void *ctx, uint64_t gpa, uint64_t len)
{
        struct write_ctx *c = ctx;
        struct recorder *rec = c->rec;
        uint64_t size = rec->b->mem_size;

        /* A range may be a whole page reaching past RAM: only RAM is in the trace. */
        if (c->err || gpa >= size || !len)
                return;
        if (len > size - gpa)
                len = size - gpa;
        c->err = hvt_write_write(rec->w, rec->ex.seq, gpa, rec->b->mem + gpa, (size_t)len);
}

/*
 * The RAM written during the run that ended with the exit just recorded,
 * before any other record of that exit: a reader applies the new bytes
 * before it looks at what the exit did.  False when the run has to end.
 */
static bool record_writes(struct recorder *rec)
{
        struct write_ctx c = { .rec = rec };
        int err = rec->b->ops->take_writes(rec->b, write_range, &c);

        if (err) {
                rec_finish(rec, HVT_END_ERROR, STATUS_ERROR, 0,
                           "write tracking lost at exit %" PRIu64 ": %s", rec->ex.seq,
                           strerror(-err));
                return false;
        }
        if (c.err) {
                rec_write_failed(rec, c.err);
                return false;
        }
        return true;
}

static void drop_range(void *ctx, uint64_t gpa, uint64_t len)
{
        (void)ctx;
        (void)gpa;
        (void)len;
}

int rec_drop_writes(struct recorder *rec)
{
        return rec->b->ops->take_writes(rec->b, drop_range, NULL);
}

/* ---- after the exit ------------------------------------------------------ */

static void take_async_events(struct recorder *rec)
{
        struct sig_events ev;

        signals_take(&ev);
        if (rec->bx.kicked) {
                ev.kicks++; /* a budget backend's kick is an exit, not a signal */
                rec->bx.kicked = false;
        }
        if (ev.stop_signo)
                finish_signal(rec, ev.stop_signo);
        else if (ev.timed_out)
                rec_finish(rec, HVT_END_TIMEOUT, STATUS_LIMIT, 0,
                           "timed out after %g s (--timeout)", rec->opts->timeout_s);
        if (rec->opts->kick_vector >= 0)
                for (uint64_t i = 0; i < ev.kicks; i++)
                        irq_raise(rec, (uint8_t)rec->opts->kick_vector, HVT_SRC_KICK);
        if (rec->opts->kick_nmi)
                for (uint64_t i = 0; i < ev.kicks; i++)
                        irq_raise_nmi(rec, HVT_SRC_KICK);
}

/*
 * A halted vCPU resumes only through an interrupt.  Inject a pending one,
 * wait for a kick that will raise one, or end the run when nothing can.
 */
static void settle_halt(struct recorder *rec)
{
        char pc[32];

        for (;;) {
                if (rec->done)
                        return;
                /* IF=0 keeps out every interrupt but an NMI. */
                if (!(rec->ex.st.rflags & X86_RFLAGS_IF) && !irq_nmi_can_wake(rec)) {
                        format_pc(&rec->ex.st, pc, sizeof(pc));
                        rec_finish(rec, HVT_END_HALT, STATUS_HALT, 0,
                                   "guest halted at %s with interrupts disabled", pc);
                        return;
                }
                if (rec->irq.pending.count || rec->irq.nmi_pending)
                        return;
                if (!irq_can_wake(rec)) {
                        format_pc(&rec->ex.st, pc, sizeof(pc));
                        rec_finish(rec, HVT_END_HALT, STATUS_HALT, 0,
                                   "guest halted at %s with nothing left to wake it", pc);
                        return;
                }
                if (rec->b->ops->set_kick_budget) {
                        /* Kicks count instructions; a halted vCPU runs none: the next is now. */
                        rec->bx.kicked = true;
                } else {
                        abi_console_flush(rec); /* the guest may wait long: show what it said */
                        signals_wait();
                }
                take_async_events(rec);
        }
}

/*
 * Run to the next exit.  A replay may stand at it already, or stop short
 * of it (a breakpoint at the right RIP with other registers) and run on.
 */
static int enter(struct recorder *rec)
{
        const struct rec_input *in = rec->input;

        for (;;) {
                int r = in ? in->ops->before_run(in->ctx, rec) : 0;

                if (r)
                        return r > 0 ? 0 : r;
                r = rec->b->ops->run(rec->b, &rec->bx);
                if (r || !in || in->ops->after_run(in->ctx, rec))
                        return r;
        }
}

void rec_loop(struct recorder *rec)
{
        /* A stop signal during the set-up ends the run before the guest's first instruction. */
        if (signals_stop_signo())
                finish_signal(rec, signals_stop_signo());
        while (!rec->done) {
                uint64_t t_in, t_out;
                int err;

                t_in = rec_clock_now(&rec->clock);
                err = enter(rec);
                t_out = rec_clock_now(&rec->clock);
                if (err) {
                        rec_finish(rec, HVT_END_ERROR, STATUS_ERROR, 0, "running the guest: %s",
                                   rec->b->error[0] ? rec->b->error : strerror(-err));
                        break;
                }
                err = record_exit(rec, t_in, t_out);
                if (err) {
                        rec_write_failed(rec, err);
                        break;
                }
                if (rec->track_writes && !record_writes(rec))
                        break;
                dispatch(rec);
                take_async_events(rec);
                irq_triggers(rec);
                if (rec->input)
                        rec->input->ops->events(rec->input->ctx, rec);
                if (rec->ex.reason == HVT_EXIT_HLT)
                        settle_halt(rec);
                if (rec->opts->max_exits && rec->seq >= rec->opts->max_exits)
                        rec_finish(rec, HVT_END_MAX_EXITS, STATUS_LIMIT, 0,
                                   "stopped after %" PRIu64 " exits (--max-exits)", rec->seq);
                if (!rec->done && !(rec->input && rec->input->ops->schedule(rec->input->ctx, rec)))
                        irq_schedule(rec);
        }
}
