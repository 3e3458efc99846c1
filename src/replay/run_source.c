// SPDX-License-Identifier: MIT
/*
 * A recorded trace as the input source of a recorder run (hvreplay run).
 *
 * The trace is read whole first: the exits with the data their reads
 * returned, the raises and injections with the exit they followed, the
 * initial memory image.  The recorder's own loop then runs the guest; at
 * the points struct rec_input_ops names, this file answers from the
 * recording.
 *
 * Exits that stop the vCPU anywhere (a kick, an interrupt window, a
 * single step) are found again as rr finds them: the exit's linear RIP
 * is a breakpoint, and the run goes on past it until every compared
 * register matches the recording too.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../arch/x86.h"
#include "../record/abi.h"
#include "../record/irq.h"
#include "../record/mode.h"
#include "run_source.h"

/* Grow *p (of *cap elements of elem bytes) to hold need.  0 or -ENOMEM. */
static int reserve(void **p, size_t *cap, size_t need, size_t elem)
{
        size_t n = *cap ? *cap : 64;
        void *q;

        if (need <= *cap)
                return 0;
        while (n < need)
                n *= 2;
        q = realloc(*p, n * elem);
        if (!q)
                return -ENOMEM;
        *p = q;
        *cap = n;
        return 0;
}

/* ---- reading the trace ------------------------------------------------------- */

static int add_exit(struct rsrc *s, const struct hvt_exit *e)
{
        struct rsrc_exit *x;
        int err = reserve((void **)&s->ex, &s->ex_cap, s->nex + 1, sizeof(*s->ex));

        if (err)
                return err;
        x = &s->ex[s->nex];
        memset(x, 0, sizeof(*x));
        x->reason = e->reason;
        x->raw = e->raw_reason;
        x->st = e->st;
        x->pc = hvt_state_pc(&e->st);
        if (e->reason == HVT_EXIT_IO) {
                size_t n = (size_t)e->u.io.io.size * e->u.io.io.count;

                x->io = e->u.io.io;
                if (e->u.io.io.dir == HVT_IO_IN && n) {
                        x->in = malloc(n);
                        if (!x->in)
                                return -ENOMEM;
                        memcpy(x->in, e->u.io.data, n);
                }
        } else if (e->reason == HVT_EXIT_MMIO) {
                x->mmio = e->u.mmio;
        } else if (e->reason == HVT_EXIT_DEBUG) {
                x->debug = e->u.debug;
        }
        s->nex++;
        return 0;
}

static int add_irq(struct rsrc_irq **v, size_t *n, size_t *cap, uint64_t seq, uint8_t vector,
                   uint8_t source)
{
        int err = reserve((void **)v, cap, *n + 1, sizeof(**v));

        if (err)
                return err;
        (*v)[(*n)++] = (struct rsrc_irq){ .seq = seq, .vector = vector, .source = source };
        return 0;
}

static int add_memory(struct rsrc *s, const struct hvt_memory *m)
{
        struct rsrc_mem *d;
        int err = reserve((void **)&s->mem, &s->mem_cap, s->nmem + 1, sizeof(*s->mem));

        if (err)
                return err;
        d = &s->mem[s->nmem];
        d->data = malloc(m->len ? m->len : 1);
        if (!d->data)
                return -ENOMEM;
        memcpy(d->data, m->data, m->len);
        d->gpa = m->gpa;
        d->len = m->len;
        s->nmem++;
        return 0;
}

static int add_event(struct rsrc *s, const struct hvt_event *ev)
{
        switch (ev->type) {
        case HVT_REC_MEMORY: return add_memory(s, &ev->memory);
        case HVT_REC_EXIT: return add_exit(s, &ev->exit);
        case HVT_REC_RAISE:
                return add_irq(&s->raise, &s->nraise, &s->raise_cap, ev->raise.seq,
                               ev->raise.vector, ev->raise.source);
        case HVT_REC_INJECT:
                return add_irq(&s->inject, &s->ninject, &s->inject_cap, ev->inject.after_seq,
                               ev->inject.vector, ev->inject.source);
        case HVT_REC_END:
                s->have_end = true;
                s->end = ev->end.e;
                snprintf(s->end_msg, sizeof(s->end_msg), "%s", ev->end.message);
                return 0;
        default: return 0;
        }
}

int rsrc_load(struct rsrc *s, const char *path, char *why, size_t len)
{
        struct hvt_event ev;
        int err;

        memset(s, 0, sizeof(*s));
        err = hvt_reader_open(&s->r, path);
        if (err) {
                snprintf(why, len, "%s", hvt_reader_message(s->r));
                goto err_free;
        }
        if (hvt_reader_vcpus(s->r) > 1) {
                /* The replayer drives one vCPU: another's exits would be replayed on it. */
                snprintf(why, len, "a %u-vCPU trace: replay runs single-vCPU traces only",
                         hvt_reader_vcpus(s->r));
                err = -ENOTSUP;
                goto err_free;
        }
        s->hdr = hvt_reader_header(s->r);
        s->flags = s->hdr->h.flags;
        while ((err = hvt_reader_next(s->r, &ev)) == HVT_OK) {
                if ((ev.type == HVT_REC_RAISE && ev.raise.kind == HVT_IRQ_NMI) ||
                    (ev.type == HVT_REC_INJECT && ev.inject.method == HVT_INJ_NMI)) {
                        /* Replayed as a vector 2 it would be another run, not this one. */
                        snprintf(why, len,
                                 "the trace holds NMIs (--nmi): replaying them is not "
                                 "supported");
                        err = -ENOTSUP;
                        goto err_free;
                }
                err = add_event(s, &ev);
                if (err) {
                        snprintf(why, len, "reading the trace: %s", strerror(-err));
                        goto err_free;
                }
        }
        if (err != HVT_END_OF_TRACE) {
                snprintf(why, len, "%s", hvt_reader_message(s->r));
                goto err_free;
        }
        return 0;

err_free:
        rsrc_free(s);
        return err;
}

/* Whether a raise from outside the guest or an injection follows exit seq. */
static bool irq_after(const struct rsrc *s, uint64_t seq)
{
        for (size_t i = 0; i < s->nraise; i++)
                if (s->raise[i].seq == seq && s->raise[i].source != HVT_SRC_GUEST)
                        return true;
        for (size_t i = 0; i < s->ninject; i++)
                if (s->inject[i].seq == seq)
                        return true;
        return false;
}

int rsrc_derive(const struct rsrc *from, struct rsrc *to, uint64_t last, uint64_t steps_from,
                size_t drop_inject)
{
        uint64_t *renum;
        size_t n = 0;

        memset(to, 0, sizeof(*to));
        to->hdr = from->hdr;
        to->flags = from->flags;
        to->borrowed = true;
        to->mem = from->mem;
        to->nmem = from->nmem;
        if (last >= from->nex)
                last = from->nex - 1;
        renum = calloc(last + 1, sizeof(*renum));
        to->ex = calloc(last + 1, sizeof(*to->ex));
        to->raise = calloc(from->nraise + 1, sizeof(*to->raise));
        to->inject = calloc(from->ninject + 1, sizeof(*to->inject));
        if (!renum || !to->ex || !to->raise || !to->inject) {
                free(renum);
                rsrc_free(to);
                return -ENOMEM;
        }
        for (uint64_t i = 0; i <= last; i++) {
                renum[i] = n;
                if (from->ex[i].reason == HVT_EXIT_DEBUG && i < steps_from && !irq_after(from, i))
                        continue;
                to->ex[n++] = from->ex[i];
        }
        to->nex = n;
        /* Records of a dropped exit go with the next kept one: renum is that one's number. */
        for (size_t i = 0; i < from->nraise && from->raise[i].seq <= last; i++) {
                to->raise[to->nraise] = from->raise[i];
                to->raise[to->nraise++].seq = renum[from->raise[i].seq];
        }
        for (size_t i = 0; i < from->ninject && from->inject[i].seq <= last; i++) {
                if (i == drop_inject)
                        continue;
                to->inject[to->ninject] = from->inject[i];
                to->inject[to->ninject++].seq = renum[from->inject[i].seq];
        }
        free(renum);
        if (steps_from > 0)
                to->flags &= ~HVT_HDR_SINGLE_STEP; /* the steps left are stops like kicks */
        to->have_end = true;
        to->end.exits = n;
        to->end.why = HVT_END_MAX_EXITS;
        to->end.status = STATUS_LIMIT;
        snprintf(to->end_msg, sizeof(to->end_msg), "stopped after %zu exits (reduced)", n);
        return 0;
}

void rsrc_free(struct rsrc *s)
{
        for (size_t i = 0; i < s->nex && !s->borrowed; i++)
                free(s->ex[i].in);
        for (size_t i = 0; i < s->nmem && !s->borrowed; i++)
                free(s->mem[i].data);
        if (s->borrowed)
                s->mem = NULL;
        free(s->ex);
        free(s->raise);
        free(s->inject);
        free(s->mem);
        hvt_reader_close(s->r);
        memset(s, 0, sizeof(*s));
}

/* ---- the guest ------------------------------------------------------------------ */

int rsrc_setup_guest(const struct rsrc *s, struct backend *b, char *why, size_t len)
{
        const struct hvt_disk_header *h = &s->hdr->h;
        int err;

        /* The tables mode_setup writes are in the image too: it comes last and wins. */
        err = mode_setup(b, h->guest_mode, h->entry, h->load_addr, why, len);
        if (err)
                return err;
        for (size_t i = 0; i < s->nmem; i++) {
                err = backend_load(b, s->mem[i].gpa, s->mem[i].data, s->mem[i].len);
                if (err) {
                        snprintf(why, len,
                                 "memory image at 0x%" PRIx64 " (%zu bytes) lies outside RAM",
                                 s->mem[i].gpa, s->mem[i].len);
                        return err;
                }
        }
        return 0;
}

int rsrc_write_memory(const struct rsrc *s, struct hvt_writer *w)
{
        for (size_t i = 0; i < s->nmem; i++) {
                int err = hvt_write_memory(w, s->mem[i].gpa, s->mem[i].data, s->mem[i].len);

                if (err)
                        return err;
        }
        return 0;
}

/* ---- boundaries ----------------------------------------------------------------- */

/*
 * Whether the vCPU stands where the recorded exit stood: RIP, and every
 * register an instruction changes.  Not RF (the debugger's, not the
 * guest's), nor AF, which shifts and multiplications leave undefined: a
 * real CPU and Unicorn set it differently.
 */
static bool same_boundary(const struct hvt_vcpu_state *a, const struct hvt_vcpu_state *b)
{
        return x86_same_boundary(a, b, X86_RFLAGS_RF | X86_RFLAGS_AF);
}

/* The recorded exit the replay's next exit must be, or NULL past the recording. */
static const struct rsrc_exit *next_exit(const struct rsrc *s, const struct recorder *rec)
{
        return rec->seq < s->nex ? &s->ex[rec->seq] : NULL;
}

/* An exit that stops the vCPU between any two instructions: found by its boundary. */
static bool asynchronous(const struct rsrc *s, const struct rsrc_exit *x)
{
        return x && (x->reason == HVT_EXIT_INTR || x->reason == HVT_EXIT_IRQ_WINDOW ||
                     (x->reason == HVT_EXIT_DEBUG && !s->stepping));
}

static int arm(struct rsrc *s, struct recorder *rec, bool on, uint64_t linear)
{
        int err;

        if (!on && !s->bp_armed)
                return 0;
        err = rec->b->ops->set_breakpoint(rec->b, on, linear);
        if (err)
                return err;
        s->bp_armed = on;
        return 0;
}

/* The exit the recording took here, as the backend would report it. */
static void take_recorded(const struct rsrc_exit *x, struct backend_exit *bx)
{
        memset(bx, 0, sizeof(*bx));
        bx->reason = x->reason;
        bx->raw = x->raw;
        if (x->reason == HVT_EXIT_DEBUG)
                bx->u.debug = x->debug;
}

/* Whether exit ex is a read the next run completes (an IN, an MMIO read). */
static bool pending_read(const struct hvt_exit *ex)
{
        return (ex->reason == HVT_EXIT_IO && ex->u.io.io.dir == HVT_IO_IN) ||
               (ex->reason == HVT_EXIT_MMIO && !ex->u.mmio.is_write);
}

static int before_run(void *ctx, struct recorder *rec)
{
        struct rsrc *s = ctx;
        const struct rsrc_exit *x = next_exit(s, rec);
        struct hvt_vcpu_state st;
        int err;

        if (!s->exact || !asynchronous(s, x))
                return arm(s, rec, false, 0);
        /*
         * Already there: a second kick before the vCPU ran again (KVM exits
         * at once when a signal is pending, an injection still queued), or
         * a stop right after an OUT that KVM reported with RIP already past
         * it.  A breakpoint armed where the vCPU stands would be stepped
         * over (the backend must not stop before the instruction runs) and
         * the stop missed.  Not after a read: its data is not in the
         * registers until the next run completes it.
         */
        err = rec->b->ops->get_state(rec->b, &st);
        if (err)
                return err;
        if (!pending_read(&rec->ex) && same_boundary(&st, &x->st)) {
                take_recorded(x, &rec->bx);
                return 1;
        }
        return arm(s, rec, true, x->pc);
}

/*
 * Whether breakpoint stops short of the boundary have stopped making
 * progress: RSRC_STUCK_MAX in a row in one state.  A vCPU that reaches
 * its breakpoint again with every register the same, no exit between,
 * runs a loop the recorded registers are not on; without this check the
 * replay would spin there until its --timeout.
 */
static bool no_progress(struct rsrc *s, const struct hvt_vcpu_state *st)
{
        if (s->stuck && same_boundary(st, &s->stuck_st)) {
                if (++s->stuck < RSRC_STUCK_MAX)
                        return false;
                snprintf(s->err_msg, sizeof(s->err_msg),
                         "no progress towards exit %" PRIu64 ": %u breakpoint stops in a row at "
                         "0x%" PRIx64 " in one state, never the recorded one",
                         s->stuck_seq, RSRC_STUCK_MAX, hvt_state_pc(st));
                return true;
        }
        s->stuck = 1;
        s->stuck_st = *st;
        return false;
}

static bool after_run(void *ctx, struct recorder *rec)
{
        struct rsrc *s = ctx;
        const struct rsrc_exit *x = next_exit(s, rec);
        struct hvt_vcpu_state st;
        int err;

        if (!s->bp_armed)
                return true;
        s->stuck_seq = rec->seq;
        if (rec->bx.reason != HVT_EXIT_DEBUG || !(rec->bx.u.debug.dr6 & X86_DR6_B0)) {
                /* Another exit came first: the replay left the recording; diff shows where. */
                s->stuck = 0;
                err = arm(s, rec, false, 0);
                if (err)
                        s->err = err;
                return true;
        }
        err = rec->b->ops->get_state(rec->b, &st);
        if (err) {
                s->err = err;
                return true;
        }
        if (!same_boundary(&st, &x->st)) {
                s->bp_hits++;
                if (!no_progress(s, &st))
                        return false;
                err = arm(s, rec, false, 0);
                s->err = err ? err : -ELOOP;
                return true;
        }
        s->stuck = 0;
        err = arm(s, rec, false, 0);
        if (err)
                s->err = err;
        take_recorded(x, &rec->bx);
        return true;
}

/* ---- inputs ---------------------------------------------------------------------- */

static bool same_read(const struct rsrc_exit *x, const struct backend_exit *bx)
{
        if (bx->reason == HVT_EXIT_IO)
                return x->reason == HVT_EXIT_IO && x->in && x->io.port == bx->u.io.port &&
                       x->io.size == bx->u.io.size && x->io.count == bx->u.io.count;
        return x->reason == HVT_EXIT_MMIO && !x->mmio.is_write && x->mmio.addr == bx->u.mmio.addr &&
               x->mmio.len == bx->u.mmio.len;
}

/*
 * The recorded read this one repeats: the exit of the same number when
 * following the recording; under --inject, where exits come and go with
 * the policy, the next recorded read of the same port or address.
 */
static const struct rsrc_exit *recorded_read(struct rsrc *s, const struct recorder *rec)
{
        if (s->exact)
                return rec->ex.seq < s->nex && same_read(&s->ex[rec->ex.seq], &rec->bx)
                               ? &s->ex[rec->ex.seq]
                               : NULL;
        for (size_t i = s->in_next; i < s->nex; i++) {
                if (same_read(&s->ex[i], &rec->bx)) {
                        s->in_next = i + 1;
                        return &s->ex[i];
                }
        }
        return NULL;
}

static void fill_in(void *ctx, struct recorder *rec)
{
        struct rsrc *s = ctx;
        struct backend_exit *bx = &rec->bx;
        const struct rsrc_exit *x;

        if (!(bx->reason == HVT_EXIT_IO && bx->u.io.dir == HVT_IO_IN) &&
            !(bx->reason == HVT_EXIT_MMIO && !bx->u.mmio.is_write))
                return;
        x = recorded_read(s, rec);
        if (!x)
                return; /* all-ones, as hvrec answers a read nothing recorded */
        if (bx->reason == HVT_EXIT_IO)
                memcpy(bx->u.io.data, x->in, (size_t)x->io.size * x->io.count);
        else
                memcpy(bx->u.mmio.data, x->mmio.data, sizeof(x->mmio.data));
}

/*
 * Whether the replay's exit is the recorded one as far as following the
 * recording goes: the same reason, and the same port or address, or RIP.
 * Port I/O is matched by its port: backends stop before (emu) or after
 * (KVM) the instruction; diff compares the rest.
 */
static bool same_exit(const struct rsrc_exit *x, const struct hvt_exit *ex)
{
        if (x->reason != ex->reason)
                return false;
        switch (ex->reason) {
        case HVT_EXIT_IO:
                return x->io.port == ex->u.io.io.port && x->io.dir == ex->u.io.io.dir &&
                       x->io.size == ex->u.io.io.size;
        case HVT_EXIT_MMIO: return x->mmio.addr == ex->u.mmio.addr;
        default: return x->pc == hvt_state_pc(&ex->st);
        }
}

/* A replay that left the recording: stop at the first exit that shows it. */
static void note_divergence(struct rsrc *s, struct recorder *rec)
{
        const struct rsrc_exit *x = rec->ex.seq < s->nex ? &s->ex[rec->ex.seq] : NULL;

        if (x && same_exit(x, &rec->ex))
                return;
        s->diverged = true;
        s->diverged_at = rec->ex.seq;
        rec_finish(rec, HVT_END_ERROR, STATUS_ERROR, 0,
                   "replay left the recording at exit %" PRIu64 " (recorded: %s)", rec->ex.seq,
                   x ? hvt_exit_reason_name(x->reason) : "no such exit");
}

/* Whether a recorded end comes from the guest itself, so that a replay reaches it alone. */
static bool natural_end(unsigned why)
{
        return why == HVT_END_GUEST_EXIT || why == HVT_END_HALT || why == HVT_END_CRASH;
}

static void events(void *ctx, struct recorder *rec)
{
        struct rsrc *s = ctx;
        uint64_t seq = rec->ex.seq;

        if (s->err) {
                rec_finish(rec, HVT_END_ERROR, STATUS_ERROR, 0, "replay: %s",
                           s->err_msg[0] ? s->err_msg : strerror(-s->err));
                return;
        }
        if (s->exact && !s->lenient)
                note_divergence(s, rec);
        /* The guest's own requests come again from its OUTs; the rest from the recording. */
        while (s->ri < s->nraise && s->raise[s->ri].seq <= seq) {
                const struct rsrc_irq *r = &s->raise[s->ri++];

                if (r->seq == seq && r->source != HVT_SRC_GUEST)
                        irq_raise(rec, r->vector, r->source);
        }
        if (s->have_end && !natural_end(s->end.why) && seq + 1 >= s->end.exits)
                rec_finish(rec, s->end.why, s->end.status, s->end.detail, "%s", s->end_msg);
}

static bool schedule(void *ctx, struct recorder *rec)
{
        struct rsrc *s = ctx;
        uint64_t seq = rec->ex.seq;

        if (!s->exact)
                return false;
        while (s->ii < s->ninject && s->inject[s->ii].seq <= seq) {
                const struct rsrc_irq *in = &s->inject[s->ii++];

                if (in->seq != seq)
                        continue;
                if (irq_inject_now(rec, in->vector, in->source))
                        break;
        }
        return true;
}

static const struct rec_input_ops rsrc_ops = {
        .before_run = before_run,
        .after_run = after_run,
        .fill_in = fill_in,
        .events = events,
        .schedule = schedule,
};

void rsrc_input(struct rsrc *s, bool exact, bool stepping, struct rec_input *in)
{
        s->exact = exact;
        s->stepping = stepping;
        s->ri = s->ii = s->in_next = 0;
        s->bp_armed = s->diverged = false;
        s->bp_hits = 0;
        s->stuck = 0;
        s->err = 0;
        s->err_msg[0] = 0;
        in->ops = &rsrc_ops;
        in->ctx = s;
}
