// SPDX-License-Identifier: MIT
#include <errno.h>
#include <string.h>

#include "gate.h"
#include "irq.h"
#include "recorder.h"

static bool fifo_has(const struct irq_fifo *f, uint8_t v)
{
        for (unsigned i = 0; i < f->count; i++)
                if (f->v[(f->head + i) % IRQ_QUEUE] == v)
                        return true;
        return false;
}

static bool fifo_push(struct irq_fifo *f, uint8_t v, uint8_t src)
{
        if (f->count == IRQ_QUEUE)
                return false;
        f->v[(f->head + f->count) % IRQ_QUEUE] = v;
        f->src[(f->head + f->count) % IRQ_QUEUE] = src;
        f->count++;
        return true;
}

static uint8_t fifo_pop(struct irq_fifo *f)
{
        uint8_t v = f->v[f->head];

        f->head = (f->head + 1) % IRQ_QUEUE;
        f->count--;
        return v;
}

/* Remove the i-th oldest entry. */
static uint8_t fifo_remove(struct irq_fifo *f, unsigned i)
{
        uint8_t v = f->v[(f->head + i) % IRQ_QUEUE];

        for (; i + 1 < f->count; i++) {
                f->v[(f->head + i) % IRQ_QUEUE] = f->v[(f->head + i + 1) % IRQ_QUEUE];
                f->src[(f->head + i) % IRQ_QUEUE] = f->src[(f->head + i + 1) % IRQ_QUEUE];
        }
        f->count--;
        return v;
}

void irq_raise(struct recorder *rec, uint8_t vector, unsigned source)
{
        struct hvt_disk_raise r = { .seq = rec->ex.seq,
                                    .vector = vector,
                                    .source = (uint8_t)source };
        int err;

        rec->raises++;
        err = hvt_write_raise(rec->w, &r);
        if (err)
                rec_write_failed(rec, err);
        /* A vector already pending merges into it (an IRR bit); a full queue drops it. */
        if (!fifo_has(&rec->irq.pending, vector))
                fifo_push(&rec->irq.pending, vector, (uint8_t)source);
}

void irq_raise_nmi(struct recorder *rec, unsigned source)
{
        struct hvt_disk_raise r = { .seq = rec->ex.seq,
                                    .vector = X86_EXC_NMI,
                                    .source = (uint8_t)source,
                                    .kind = HVT_IRQ_NMI };
        int err;

        rec->raises++;
        err = hvt_write_raise(rec->w, &r);
        if (err)
                rec_write_failed(rec, err);
        if (!rec->irq.nmi_pending)
                rec->irq.nmi_source = (uint8_t)source;
        rec->irq.nmi_pending = true;
}

void irq_triggers(struct recorder *rec)
{
        const struct rec_opts *o = rec->opts;
        const struct hvt_exit *ex = &rec->ex;

        for (size_t i = 0; i < o->nirqs; i++) {
                const struct irq_trigger *t = &o->irqs[i];
                bool fire = false;

                switch (t->kind) {
                case IRQ_AT_EXIT: fire = ex->seq == t->arg; break;
                case IRQ_AT_RIP:
                        fire = !rec->irq.rip_fired[i] && hvt_state_pc(&ex->st) == t->arg;
                        rec->irq.rip_fired[i] |= fire;
                        break;
                case IRQ_AT_PORT:
                        fire = ex->reason == HVT_EXIT_IO && ex->u.io.io.port == t->arg;
                        break;
                case IRQ_AT_EVERY: fire = (ex->seq + 1) % t->arg == 0; break;
                }
                if (fire && t->nmi)
                        irq_raise_nmi(rec, HVT_SRC_OPTION);
                else if (fire)
                        irq_raise(rec, t->vector, HVT_SRC_OPTION);
        }
}

bool irq_policy_allows(unsigned policy, uint64_t intr, uint64_t rflags)
{
        switch (policy) {
        case HVT_POLICY_WINDOW: return intr & HVT_INTR_READY;
        case HVT_POLICY_EAGER: return rflags & X86_RFLAGS_IF;
        case HVT_POLICY_BLIND: return true;
        default: return false;
        }
}

/*
 * A window request the backend refuses ends the run: without it a pending
 * interrupt could wait forever, or a stale one cause an exit at every entry.
 */
static int set_window(struct recorder *rec, bool on)
{
        int err;

        if (rec->irq.window_on == on)
                return 0;
        err = rec->b->ops->request_window(rec->b, on);
        if (err) {
                rec_finish(rec, HVT_END_ERROR, STATUS_ERROR, 0, "%s an interrupt window: %s",
                           on ? "requesting" : "cancelling", strerror(-err));
                return err;
        }
        rec->irq.window_on = on;
        return 0;
}

/* Record an injection (or, for an irqchip backend, a raised line). */
static void record_inject(struct recorder *rec, uint8_t vector, uint8_t source, uint8_t method)
{
        const struct hvt_vcpu_state *st = &rec->ex.st;
        struct hvt_disk_inject in;
        struct gview gv;
        int err;

        memset(&in, 0, sizeof(in));
        in.after_seq = rec->ex.seq;
        in.rip = st->rip;
        in.rflags = st->rflags;
        in.cs_base = st->seg[HVT_CS].base;
        in.cs = st->seg[HVT_CS].selector;
        gv = rec_view(rec);
        if (!gate_handler(&gv, vector, &in.handler))
                in.handler = 0;
        in.intr = (uint32_t)st->intr;
        in.vector = vector;
        in.policy = (uint8_t)rec->opts->policy;
        in.method = method;
        in.source = source;
        rec->injections++;
        err = hvt_write_inject(rec->w, &in);
        if (err)
                rec_write_failed(rec, err);
        if (method == HVT_INJ_NMI)
                source |= IRQ_SRC_NMI;
        if (!fifo_push(&rec->irq.outstanding, vector, source)) {
                fifo_pop(&rec->irq.outstanding); /* forget the oldest: it was lost long ago */
                fifo_push(&rec->irq.outstanding, vector, source);
        }
}

/* An in-kernel irqchip latches lines itself: raise every pending one now. */
static void raise_lines(struct recorder *rec)
{
        while (rec->irq.pending.count) {
                uint8_t vector = rec->irq.pending.v[rec->irq.pending.head];
                uint8_t source = rec->irq.pending.src[rec->irq.pending.head];
                int err = rec->b->ops->raise_line(rec->b, vector);

                if (err) {
                        rec_finish(rec, HVT_END_ERROR, STATUS_ERROR, 0,
                                   "raising the line of vector 0x%02x: %s%s", vector,
                                   strerror(-err),
                                   err == -ENXIO ? " (the guest's PIC maps no line to it)" : "");
                        return;
                }
                fifo_pop(&rec->irq.pending);
                record_inject(rec, vector, source, HVT_INJ_LINE);
        }
}

/*
 * Whether an exit of this reason shows the instruction that ran just before
 * it (the I/O, MMIO or HLT instruction itself; a single step): a delivery
 * right after it follows a recorded instruction.  A kick or a window exit
 * stops the vCPU anywhere and shows nothing of what ran.
 */
static bool exit_shows_last_insn(unsigned reason)
{
        return reason == HVT_EXIT_IO || reason == HVT_EXIT_MMIO || reason == HVT_EXIT_HLT ||
               reason == HVT_EXIT_DEBUG;
}

static int set_stepping(struct recorder *rec, bool on)
{
        int err = rec->b->ops->set_single_step(rec->b, on);

        if (err) {
                rec_finish(rec, HVT_END_ERROR, STATUS_ERROR, 0,
                           "%s single-stepping around an injection: %s",
                           on ? "starting" : "stopping", strerror(-err));
                return err;
        }
        rec->irq.stepping = on;
        rec->irq.hold = false;
        rec->irq.steps = 0;
        return 0;
}

/* End a round of steps that did not lead to an injection. */
static void stop_round(struct recorder *rec)
{
        if (rec->irq.stepping && !rec->irq.hold)
                set_stepping(rec, false);
}

/*
 * --step-inject: what single-stepping does at this exit; true when it goes
 * on and nothing else is to be decided here.
 *
 * A round of steps ends after two recorded steps, so that the instruction
 * before the delivery and the one before that are both recorded exits, or
 * earlier at an exit that shows what ran itself (a halted vCPU must not run
 * on without its interrupt).  When the injection follows a step, stepping
 * holds until the backend no longer queues the interrupt: the run that
 * delivers it then starts at a recorded boundary and, stepped, cannot run
 * an instruction before the delivery (the step's #DB trap would come
 * first), so the delivery lands exactly there.
 */
static bool step_round(struct recorder *rec)
{
        uint64_t intr = rec->ex.st.intr;
        unsigned reason = rec->ex.reason;

        if (!rec->irq.stepping)
                return false;
        if (rec->irq.hold) {
                if ((intr & HVT_INTR_VALID_PENDING) && (intr & HVT_INTR_PENDING))
                        return true;
                set_stepping(rec, false);
                return false;
        }
        if (reason == HVT_EXIT_DEBUG)
                rec->irq.steps++;
        if (rec->irq.pending.count && rec->irq.steps < 2 &&
            (reason == HVT_EXIT_DEBUG || !exit_shows_last_insn(reason)))
                return true;
        /* After the last step, stepping stays on if the decision below injects. */
        if (reason != HVT_EXIT_DEBUG)
                set_stepping(rec, false);
        return false;
}

/*
 * Hand a pending NMI to the backend.  No window is needed: under the
 * window policy the backend holds it until the architecture lets it in
 * (KVM_NMI does the same); eager and blind ask for it at the next entry
 * whatever blocks it, which is what lets the checker's NMI rules fire.
 */
static void schedule_nmi(struct recorder *rec)
{
        int err;

        if (!rec->irq.nmi_pending || rec->done)
                return;
        err = rec->b->ops->inject_nmi(rec->b, rec->opts->policy != HVT_POLICY_WINDOW);
        if (err == -EBUSY)
                return; /* the previous one is still held: merge, as the latch does */
        if (err) {
                rec_finish(rec, HVT_END_ERROR, STATUS_ERROR, 0, "injecting an NMI: %s",
                           strerror(-err));
                return;
        }
        rec->irq.nmi_pending = false;
        record_inject(rec, X86_EXC_NMI, rec->irq.nmi_source, HVT_INJ_NMI);
}

void irq_schedule(struct recorder *rec)
{
        const struct hvt_vcpu_state *st = &rec->ex.st;
        uint8_t vector, source;
        int err;

        if (rec->b->ops->caps & HVT_CAP_IRQCHIP) {
                raise_lines(rec);
                return;
        }
        schedule_nmi(rec);
        if (step_round(rec) || rec->done)
                return;
        if (!rec->irq.pending.count) {
                stop_round(rec);
                set_window(rec, false);
                return;
        }
        /*
         * Whatever the policy, one interrupt at a time: while the backend
         * still holds an injected one (queued for its next entry), another
         * KVM_INTERRUPT would overwrite or merge it.
         */
        if ((st->intr & HVT_INTR_PENDING) ||
            !irq_policy_allows(rec->opts->policy, st->intr, st->rflags)) {
                stop_round(rec);
                set_window(rec, true);
                return;
        }
        if (rec->step_inject && !rec->irq.stepping && !exit_shows_last_insn(rec->ex.reason)) {
                /* The steps bring the next decision; a window exit would only cut them short. */
                if (!set_window(rec, false))
                        set_stepping(rec, true);
                return;
        }
        vector = rec->irq.pending.v[rec->irq.pending.head];
        source = rec->irq.pending.src[rec->irq.pending.head];
        err = rec->b->ops->inject(rec->b, vector);
        if (err == -EBUSY) {
                /* One is still queued in the backend: try again at the next exit. */
                stop_round(rec);
                set_window(rec, true);
                return;
        }
        if (err) {
                rec_finish(rec, HVT_END_ERROR, STATUS_ERROR, 0, "injecting vector 0x%02x: %s",
                           vector, strerror(-err));
                return;
        }
        fifo_pop(&rec->irq.pending);
        record_inject(rec, vector, source, HVT_INJ_QUEUE);
        rec->irq.hold = rec->irq.stepping;
        set_window(rec, rec->irq.pending.count > 0 && !rec->irq.hold);
}

int irq_inject_now(struct recorder *rec, uint8_t vector, uint8_t source)
{
        struct irq_fifo *f = &rec->irq.pending;
        bool line = rec->b->ops->caps & HVT_CAP_IRQCHIP;
        int err;

        err = line ? rec->b->ops->raise_line(rec->b, vector) : rec->b->ops->inject(rec->b, vector);
        if (err) {
                rec_finish(rec, HVT_END_ERROR, STATUS_ERROR, 0, "injecting vector 0x%02x: %s",
                           vector, strerror(-err));
                return err;
        }
        for (unsigned i = 0; i < f->count; i++) {
                if (f->v[(f->head + i) % IRQ_QUEUE] == vector) {
                        fifo_remove(f, i);
                        break;
                }
        }
        record_inject(rec, vector, source, line ? HVT_INJ_LINE : HVT_INJ_QUEUE);
        return 0;
}

bool irq_can_wake(const struct recorder *rec)
{
        return rec->irq.pending.count > 0 || rec->opts->kick_vector >= 0 || irq_nmi_can_wake(rec);
}

bool irq_nmi_can_wake(const struct recorder *rec)
{
        return rec->irq.nmi_pending || rec->opts->kick_nmi;
}

int irq_take_outstanding(struct recorder *rec, bool (*match)(void *ctx, uint8_t v), void *ctx,
                         bool *nmi)
{
        struct irq_fifo *f = &rec->irq.outstanding;

        for (unsigned i = 0; i < f->count; i++) {
                uint8_t v = f->v[(f->head + i) % IRQ_QUEUE];

                if (!match || match(ctx, v)) {
                        *nmi = f->src[(f->head + i) % IRQ_QUEUE] & IRQ_SRC_NMI;
                        return fifo_remove(f, i);
                }
        }
        *nmi = false;
        return -1;
}
