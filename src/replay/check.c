// SPDX-License-Identifier: MIT
/*
 * hvreplay check: find every interrupt delivered inside an STI or MOV SS
 * shadow, deciding from the decoded instruction stream and never from the
 * backend's own report.  docs/checker.md states the rules and the evidence.
 *
 * The trace is walked once, in order, with the guest code as it stood at
 * each point (code.c).  At every exit the checker settles what retired just
 * before the exit's boundary: the exit itself may say (an I/O instruction
 * completed, a HLT, a single step from the previous exit); otherwise the
 * paths from the previous exit's boundary (flow.c) say what they can.  A
 * delivery is judged the same way at the point the probe's frame names,
 * and is firm only when every possibility the trace leaves agrees.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "code.h"
#include "flow.h"

/* ---- names ------------------------------------------------------------------------- */

static const char *const rule_names[] = {
        [RULE_NONE] = "none",
        [RULE_STI_SHADOW] = "sti-shadow",
        [RULE_MOVSS_SHADOW] = "mov-ss-shadow",
        [RULE_IF_CLEAR] = "if-clear",
        [RULE_REPORT_MISMATCH] = "report-mismatch",
        [RULE_LOST] = "lost-interrupt",
        [RULE_SPURIOUS] = "spurious-interrupt",
        [RULE_UNDETERMINED] = "undetermined",
        [RULE_DB_MOVSS_SHADOW] = "db-movss-shadow",
        [RULE_NMI_MOVSS_SHADOW] = "nmi-movss-shadow",
        [RULE_NMI_WHILE_BLOCKED] = "nmi-while-blocked",
};
_Static_assert(sizeof(rule_names) / sizeof(rule_names[0]) == RULE_COUNT, "name every rule");

const char *check_rule_name(unsigned rule)
{
        return rule < RULE_COUNT ? rule_names[rule] : "?";
}

static const char *const und_names[] = {
        [UND_NONE] = "none",
        [UND_PREDECESSORS] = "several-predecessors",
        [UND_NO_CODE] = "code-missing",
        [UND_CODE_WRITTEN] = "code-written",
        [UND_CONTROL] = "control-flow-unknown",
        [UND_IF_UNKNOWN] = "if-unknown",
        [UND_SEQUENCE] = "sequence-unknown",
        [UND_UNREACHABLE] = "unreachable",
        [UND_SOFT_OR_EXT] = "software-or-external",
        [UND_TOO_LARGE] = "flow-too-large",
        [UND_DEBUG_CAUSE] = "debug-cause-unknown",
        [UND_NMI_IRET] = "nmi-iret-unknown",
};
_Static_assert(sizeof(und_names) / sizeof(und_names[0]) == UND_COUNT, "name every reason");

const char *check_und_name(unsigned kind)
{
        return kind < UND_COUNT ? und_names[kind] : "?";
}

static const char *const note_names[] = {
        [NOTE_CONSERVATIVE] = "conservative-shadow-report",
        [NOTE_STI_IF_SET] = "sti-with-if-set",
        [NOTE_SEQUENCE] = "second-in-sequence",
        [NOTE_LANDED_ELSEWHERE] = "landed-elsewhere",
        [NOTE_ENDED_PENDING] = "ended-with-injection-pending",
        [NOTE_BACKEND_RAISED] = "raised-by-backend-device",
        [NOTE_SOFTWARE_INT] = "software-interrupt",
        [NOTE_WRITES_UNTRACKED] = "writes-not-recorded",
        [NOTE_CODE_CHANGED] = "code-changed-unrecorded",
        [NOTE_UNOBSERVABLE] = "delivery-unobservable",
        [NOTE_DEBUG_EXCEPTION] = "debug-exception",
        [NOTE_NMI_AFTER_STI] = "nmi-after-sti",
};
_Static_assert(sizeof(note_names) / sizeof(note_names[0]) == NOTE_COUNT, "name every note");

const char *check_note_name(unsigned kind)
{
        return kind < NOTE_COUNT ? note_names[kind] : "?";
}

/* ---- per-exit summary -------------------------------------------------------------- */

enum io_state { IO_NA, IO_PENDING, IO_DONE, IO_AMBIGUOUS, IO_UNKNOWN };

struct exit_sum {
        bool valid;
        bool hlt_done;     /* RIP past a HLT that exited */
        bool inject_after; /* the recorder injected before the next run */
        enum io_state io;
        uint64_t io_addr; /* the I/O instruction (completed: ends at pc) */
        uint64_t seq;
        uint64_t mark; /* checker.changes when it was settled */
        /*
         * From pc to b: what the exit record says, every input of settling
         * it but seq and inject_after (compared by same_exit, so summarize
         * clears the padding).
         */
        uint64_t pc, rip, rflags, intr;
        uint32_t ctx;
        unsigned bits;
        uint16_t reason, cs;
        bool step;  /* a single-step debug exit: one instruction since the last exit */
        int io_out; /* 1 for OUT */
        uint16_t io_port;
        uint8_t io_size;
        uint8_t insn_len;
        uint8_t insn[15]; /* the bytes at CS:RIP when the exit was taken */
        uint64_t idt_base, gdt_base;
        uint16_t idt_limit, gdt_limit;
        uint64_t rsp, ss_base, sp_mask; /* the stack: RSP, SS.base, the width SP wraps at */
        unsigned cpl;
        struct bset b; /* what retired just before this boundary (once settled) */
};

struct pending_inj {
        struct hvt_disk_inject in;
        struct exit_sum at; /* the exit it followed (at.valid false: not known) */
        bool entered;       /* single-step: the next step was in the handler */
        uint64_t entered_seq;
};

#define MAX_PENDING 1024

/*
 * What disasm_io_candidates concluded for one I/O exit, keyed by every
 * input it reads: an I/O loop asks the same question at every exit.
 */
#define IO_MEMO_SLOTS 256u /* a power of two */

struct io_memo {
        uint64_t pc, off;
        uint8_t used, bits, out, size, n, before, done_len, io;
        uint16_t port;
        uint8_t code[30];
};

/* What the checker follows for one vCPU. */
struct vcpu_judge {
        uint32_t id;
        /* cur: the newest exit; prev, prev2 before it; rotated, never copied, in sums. */
        struct exit_sum sums[3];
        struct exit_sum *prev2, *prev, *cur;
        bool unsettled; /* cur's records are still arriving */
        bool skipping;  /* without_steps: step exits skipped since cur */

        struct pending_inj pend[MAX_PENDING];
        size_t npend;
        /*
         * An exit where the backend held nothing (ready, nothing queued),
         * judged once the records naming that exit have all arrived.
         */
        bool held_nothing;
        uint64_t held_nothing_seq;

        /* The last flow followed, and where it started (a one-entry cache). */
        struct flow flow;
        bool flow_valid;
        struct flow_start flow_key;
        uint8_t flow_bytes[15];
        uint64_t flow_gen, flow_interval;
        uint64_t interval; /* counts intervals, for flows that read unsure bytes */

        /*
         * Multi-vCPU traces: code_interval_keep's number at this vCPU's last
         * exit, and the first interval whose writes are unsure to the run
         * that ended at cur (those after the previous exit's own writes).
         */
        uint64_t last_stamp, since;

        /*
         * Blocking by NMI (SDM Vol. 3A 6.7.1): from an NMI's delivery to the
         * next IRET.  nmi_seq is that delivery's probe exit; nmi_seen the
         * last exit whose interval has been looked at for an IRET;
         * nmi_flow follows paths that stop at IRETs.
         */
        enum { NMI_FREE, NMI_BLOCKED, NMI_MAYBE } nmi;
        uint64_t nmi_seq, nmi_seen;
        char nmi_why[200];
        struct flow nmi_flow;
};

struct checker {
        const char *path;
        struct check_opts opts;
        struct disasm *dis;
        struct code code;
        struct hvt_header hdr;
        bool single_step;  /* every instruction boundary is an exit */
        bool step_inject;  /* hvrec steps before injecting */
        bool tracked;      /* every guest write is in a WRITE record */
        bool backend_irqs; /* an in-backend irqchip and devices raise interrupts too */
        bool io_stops, hlt_stops;
        unsigned policy;
        uint32_t ctx0; /* the mode the guest started in */

        /* I/O completion convention learnt from unambiguous exits: [dir] done/pending counts. */
        uint64_t io_done[2], io_pending[2];
        struct io_memo io_memo[IO_MEMO_SLOTS]; /* classify_io's results, by their inputs */

        /*
         * One judge per vCPU (allocated at its first record): each vCPU's
         * exits, injections and deliveries are judged against its own
         * previous exit.  v is the judge of the vCPU whose records are being
         * read; memory (code) is shared.
         */
        struct vcpu_judge **judges;
        uint32_t nvcpus;
        struct vcpu_judge *v;

        /*
         * Without write records, the scan for code that exits show changing
         * runs inside the judging walk (see check_trace_opts): seen is the
         * code as exits have shown it so far, scan_key the last exit's bytes.
         */
        bool scanning;
        struct code seen;
        bool scan_key_valid;
        struct code_ctx scan_ctx;
        uint64_t scan_pc;
        uint8_t scan_len, scan_insn[15];

        /*
         * Bumped by every record but an exit, by every exit skipped, and
         * where an exit shows code the view did not hold: while it stays
         * the same, settling an exit reads the same memory, the same
         * write ranges and the same checker state as the exit before.
         */
        uint64_t changes;

        struct check_result *res;
};

/* ---- result bookkeeping ------------------------------------------------------------ */

static struct check_finding *add_finding(struct check_finding **arr, size_t *n, size_t *cap)
{
        if (*n == *cap) {
                size_t c = *cap ? *cap * 2 : 64;
                struct check_finding *p = realloc(*arr, c * sizeof(**arr));

                if (!p)
                        return NULL;
                *arr = p;
                *cap = c;
        }
        memset(&(*arr)[*n], 0, sizeof(**arr));
        return &(*arr)[(*n)++];
}

static struct check_finding *violation(struct checker *k, unsigned rule)
{
        struct check_result *r = k->res;

        struct check_finding *f;

        r->by_rule[rule]++;
        f = add_finding(&r->violations, &r->nviolations, &r->violations_cap);
        if (f)
                f->vcpu = k->v->id;
        return f;
}

static struct check_finding *undetermined(struct checker *k)
{
        struct check_result *r = k->res;

        struct check_finding *f;

        r->by_rule[RULE_UNDETERMINED]++;
        f = add_finding(&r->undetermined, &r->nundetermined, &r->undetermined_cap);
        if (f)
                f->vcpu = k->v->id;
        return f;
}

static void note(struct checker *k, unsigned kind, uint64_t seq, uint64_t pc, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));

static void note(struct checker *k, unsigned kind, uint64_t seq, uint64_t pc, const char *fmt, ...)
{
        struct check_result *r = k->res;
        va_list ap;

        if (kind >= NOTE_COUNT)
                return;
        if (!r->notes[kind].count++) {
                r->notes[kind].first_seq = seq;
                r->notes[kind].first_pc = pc;
                va_start(ap, fmt);
                vsnprintf(r->notes[kind].example, sizeof(r->notes[kind].example), fmt, ap);
                va_end(ap);
        }
}

static void keep_verdict(struct checker *k, uint64_t event, uint64_t pc, unsigned vector,
                         unsigned rule, int note_kind, unsigned und)
{
        struct check_result *r = k->res;

        if (!k->opts.keep_verdicts)
                return;
        if (r->nverdicts == r->verdicts_cap) {
                size_t c = r->verdicts_cap ? r->verdicts_cap * 2 : 64;
                struct check_verdict *p = realloc(r->verdicts, c * sizeof(*p));

                if (!p)
                        return;
                r->verdicts = p;
                r->verdicts_cap = c;
        }
        r->verdicts[r->nverdicts++] = (struct check_verdict){ .event = event,
                                                              .pc = pc,
                                                              .vector = (uint8_t)vector,
                                                              .rule = (uint8_t)rule,
                                                              .note = (int8_t)note_kind,
                                                              .und = (uint8_t)und };
}

/* ---- text of instructions ---------------------------------------------------------- */

static void insn_text(struct checker *k, uint64_t addr, uint32_t ctx, struct check_insn *out)
{
        struct disasm_insn insn;
        const struct code_ctx *x = ctx < k->code.nctxs ? &k->code.ctxs[ctx] : NULL;

        memset(out, 0, sizeof(*out));
        out->pc = addr;
        out->real = x && !(x->cr0 & X86_CR0_PE);
        out->cs_base = x ? x->cs_base : 0;
        out->bits = x ? x->bits : 16;
        if (!x || code_decode(&k->code, x, addr, &insn)) {
                snprintf(out->text, sizeof(out->text), "(no code)");
                return;
        }
        out->len = insn.len;
        memcpy(out->bytes, insn.bytes, insn.len);
        snprintf(out->text, sizeof(out->text), "%.127s", insn.text);
        out->valid = true;
}

static const char *kind_text(unsigned kind)
{
        static const char *const names[] = {
                [FK_PLAIN] = "no shadow",
                [FK_STI_IF1] = "STI with IF=1, no shadow",
                [FK_STI] = "sti-shadow",
                [FK_SSLOAD] = "mov-ss-shadow",
                [FK_SECOND] = "second in a sequence",
                [FK_DELAYED] = "delaying, maybe second",
                [FK_UNKNOWN] = "unknown",
        };
        _Static_assert(sizeof(names) / sizeof(names[0]) == FK_COUNT, "name every kind");

        return names[kind];
}

/* ---- verdicts ---------------------------------------------------------------------- */

struct verdict {
        unsigned rule; /* RULE_NONE, RULE_STI_SHADOW, RULE_MOVSS_SHADOW, RULE_UNDETERMINED */
        int note;      /* NOTE_STI_IF_SET, NOTE_SEQUENCE or -1 */
        unsigned und;
        struct flow_ex prev; /* the instruction behind the verdict */
        char reason[240];
};

static void appendf(char *buf, size_t len, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void appendf(char *buf, size_t len, const char *fmt, ...)
{
        size_t n = strlen(buf);
        va_list ap;

        if (n >= len - 1)
                return;
        va_start(ap, fmt);
        vsnprintf(buf + n, len - n, fmt, ap);
        va_end(ap);
}

/* One sentence for an unknown answer. */
static void unknown_reason(const struct checker *k, const struct bset *b, uint64_t pc, char *buf,
                           size_t len)
{
        const struct flow_ex *ex = &b->ex[FK_UNKNOWN];

        (void)k;
        switch (b->und) {
        case UND_CONTROL:
                snprintf(buf, len,
                         "a transfer the trace cannot follow (at 0x%" PRIx64
                         ": a return, an indirect or far branch, a fault or a mode change) "
                         "may lead here, and an instruction that delays interrupts ends at "
                         "0x%" PRIx64,
                         ex->addr, pc);
                break;
        case UND_NO_CODE:
                snprintf(buf, len, "the code at 0x%" PRIx64 " is not in the trace", ex->addr);
                break;
        case UND_CODE_WRITTEN:
                snprintf(buf, len,
                         "the code at 0x%" PRIx64
                         " was written between the exits around it: which bytes ran is not known",
                         ex->addr);
                break;
        case UND_IF_UNKNOWN:
                snprintf(buf, len, "IF before the STI at 0x%" PRIx64 " is not known", ex->addr);
                break;
        case UND_SEQUENCE:
                snprintf(buf, len,
                         "cannot tell whether the delaying instruction at 0x%" PRIx64
                         " was itself in a shadow",
                         ex->addr);
                break;
        case UND_TOO_LARGE:
                snprintf(buf, len,
                         "the paths since the previous exit reach more than %u instructions "
                         "(past 0x%" PRIx64 "): not followed to the end",
                         FLOW_MAX_NODES, ex->addr);
                break;
        case UND_UNREACHABLE:
                snprintf(buf, len,
                         "no path from the previous exit leads to 0x%" PRIx64
                         ": something the trace does not show ran (an exception?)",
                         pc);
                break;
        default: snprintf(buf, len, "unknown"); break;
        }
}

/* The verdict of a bset: firm only when every answer in it agrees. */
static void decide(const struct checker *k, const struct bset *b, uint64_t pc, struct verdict *v)
{
        unsigned viol = b->kinds & FK_VIOLATING, legal = b->kinds & FK_LEGAL;

        memset(v, 0, sizeof(*v));
        v->note = -1;
        if ((b->kinds & FK_BIT(FK_DELAYED)) && !(b->kinds & FK_BIT(FK_UNKNOWN))) {
                v->rule = RULE_UNDETERMINED;
                v->und = UND_SEQUENCE;
                v->prev = b->ex[FK_DELAYED];
                snprintf(v->reason, sizeof(v->reason),
                         "cannot tell whether the delaying instruction at 0x%" PRIx64
                         " was itself in a shadow",
                         v->prev.addr);
                return;
        }
        if (b->kinds & FK_BIT(FK_UNKNOWN)) {
                v->rule = RULE_UNDETERMINED;
                v->und = b->und;
                v->prev = b->ex[FK_UNKNOWN];
                if (b->und == UND_CONTROL || b->und == UND_UNREACHABLE || b->und == UND_TOO_LARGE)
                        v->prev.valid = false; /* it names where the trail is lost, not what ran */
                unknown_reason(k, b, pc, v->reason, sizeof(v->reason));
                return;
        }
        if (viol && legal) {
                v->rule = RULE_UNDETERMINED;
                v->und = UND_PREDECESSORS;
                snprintf(v->reason, sizeof(v->reason),
                         "instructions with different verdicts can run just before it:");
                for (unsigned kd = 0; kd < FK_COUNT; kd++) {
                        if (!(b->kinds & FK_BIT(kd)))
                                continue;
                        if (b->ex[kd].valid)
                                appendf(v->reason, sizeof(v->reason), " 0x%" PRIx64 " (%s)",
                                        b->ex[kd].addr, kind_text(kd));
                        else
                                appendf(v->reason, sizeof(v->reason), " the start (%s)",
                                        kind_text(kd));
                }
                return;
        }
        if (viol) {
                unsigned kd = (b->kinds & FK_BIT(FK_STI)) ? FK_STI : FK_SSLOAD;

                v->rule = kd == FK_STI ? RULE_STI_SHADOW : RULE_MOVSS_SHADOW;
                v->prev = b->ex[kd];
                return;
        }
        v->rule = RULE_NONE;
        if (b->kinds == FK_BIT(FK_SECOND)) {
                v->note = NOTE_SEQUENCE;
                v->prev = b->ex[FK_SECOND];
        } else if (b->kinds == FK_BIT(FK_STI_IF1)) {
                v->note = NOTE_STI_IF_SET;
                v->prev = b->ex[FK_STI_IF1];
        } else if (b->kinds == FK_BIT(FK_PLAIN)) {
                v->prev = b->ex[FK_PLAIN];
        }
}

static void plain(struct bset *b, uint64_t addr, uint32_t ctx)
{
        struct flow_ex ex = { .valid = true, .if_before = -1, .ctx = ctx, .addr = addr };

        memset(b, 0, sizeof(*b));
        bset_add(b, FK_PLAIN, &ex, 0);
}

static unsigned ifm_of(uint64_t rflags)
{
        return (rflags & X86_RFLAGS_IF) ? IFM_1 : IFM_0;
}

/* ---- I/O exits: which instruction, and did the backend complete it? ---------------- */

/* Learn the completion convention from an unambiguous I/O exit. */
static void count_io(struct checker *k, const struct exit_sum *s)
{
        if (s->io == IO_DONE)
                k->io_done[s->io_out]++;
        else if (s->io == IO_PENDING)
                k->io_pending[s->io_out]++;
}

static void classify_io(struct checker *k, struct exit_sum *s)
{
        const struct code_ctx *ctx = &k->code.ctxs[s->ctx];
        uint8_t done_len;
        int pending;
        uint64_t off = s->pc - ctx->cs_base;
        size_t before = off >= 15 ? 15 : (size_t)off, n;
        struct io_memo *m;
        uint8_t code[32]; /* 15 before, 15 at the exit, zero to a whole word */
        uint64_t h;

        n = code_read(&k->code, ctx, s->pc - before, code, before);
        if (n < before) {
                memmove(code + (before - n), code, n);
                memset(code, 0x90, before - n); /* unreadable: cannot end an I/O instruction */
        }
        memcpy(code + before, s->insn, s->insn_len);
        n = before + s->insn_len;
        h = s->pc * 0x9e3779b97f4a7c15ull ^ (uint64_t)s->io_port << 16 ^ s->io_size ^
            (uint64_t)s->io_out << 8 ^ (uint64_t)s->bits << 40;
        memset(code + n, 0, sizeof(code) - n);
        for (size_t i = 0; i < sizeof(code); i += 8) {
                uint64_t w;

                memcpy(&w, code + i, 8);
                h = (h ^ w) * 0xff51afd7ed558ccdull;
                h ^= h >> 32;
        }
        m = &k->io_memo[(h ^ h >> 29) & (IO_MEMO_SLOTS - 1)];
        if (!(m->used && m->pc == s->pc && m->off == off && m->bits == s->bits &&
              m->out == (uint8_t)s->io_out && m->port == s->io_port && m->size == s->io_size &&
              m->n == n && m->before == before && !memcmp(m->code, code, n))) {
                disasm_io_readings(k->dis, s->bits, code, n, before, off, s->io_out, s->io_port,
                                   s->io_size, &done_len, &pending);
                *m = (struct io_memo){ .pc = s->pc,
                                       .off = off,
                                       .used = 1,
                                       .bits = (uint8_t)s->bits,
                                       .out = (uint8_t)s->io_out,
                                       .size = (uint8_t)s->io_size,
                                       .n = (uint8_t)n,
                                       .before = (uint8_t)before,
                                       .port = (uint16_t)s->io_port,
                                       .done_len = done_len,
                                       .io = done_len && !pending   ? IO_DONE
                                             : pending && !done_len ? IO_PENDING
                                             : done_len             ? IO_AMBIGUOUS
                                                                    : IO_UNKNOWN };
                memcpy(m->code, code, n);
        }
        s->io = m->io;
        switch (s->io) {
        case IO_DONE:
        case IO_AMBIGUOUS: /* resolved later with the learnt convention */
                s->io_addr = s->pc - m->done_len;
                break;
        case IO_PENDING: s->io_addr = s->pc; break;
        default: break;
        }
        count_io(k, s);
}

/* Resolve an ambiguous I/O exit with what unambiguous ones of the trace showed so far. */
static enum io_state io_resolved(const struct checker *k, const struct exit_sum *s)
{
        int dir = s->io_out;

        if (s->io != IO_AMBIGUOUS)
                return s->io;
        if (k->io_done[dir] && !k->io_pending[dir])
                return IO_DONE;
        if (k->io_pending[dir] && !k->io_done[dir])
                return IO_PENDING;
        return IO_UNKNOWN;
}

/* The exit stopped before the instruction at its RIP completed (it runs again first). */
static bool exit_pending(const struct checker *k, const struct exit_sum *s)
{
        if (s->reason == HVT_EXIT_MMIO)
                return true;
        return s->reason == HVT_EXIT_IO && io_resolved(k, s) != IO_DONE;
}

/* ---- flows ------------------------------------------------------------------------- */

/*
 * The context at the guest's entry: the header gives the mode; the paging
 * registers and the CS base come from the first exit.  Changing either
 * takes an instruction (MOV CRn, WRMSR, a far transfer) that a flow does
 * not follow blindly, so the first exit's values are the entry's on every
 * path the flow does follow.
 */
static uint32_t entry_ctx(struct checker *k, const struct exit_sum *first)
{
        struct code_ctx x =
                first && first->valid ? k->code.ctxs[first->ctx] : k->code.ctxs[k->ctx0];
        const struct code_ctx *c0 = &k->code.ctxs[k->ctx0];

        x.bits = c0->bits;
        if (x.bits == 64)
                x.cs_base = 0;
        else if (k->hdr.h.entry < x.cs_base || k->hdr.h.entry - x.cs_base > 0xffffffffull ||
                 (x.bits == 16 && k->hdr.h.entry - x.cs_base > 0xffff))
                x.cs_base = 0;
        if ((x.cr0 & X86_CR0_PE) != (c0->cr0 & X86_CR0_PE))
                x = *c0; /* the mode changed before the first exit: only the header is known */
        return code_ctx_add(&k->code, &x);
}

/* Where the paths of the interval after exit p start (p invalid: the guest's entry). */
static void start_of(struct checker *k, const struct exit_sum *p, const struct exit_sum *later,
                     struct flow_start *s)
{
        memset(s, 0, sizeof(*s));
        s->io_stops = k->io_stops;
        s->hlt_stops = k->hlt_stops;
        if (p->valid) {
                s->la = p->pc;
                s->ctx = p->ctx;
                s->ifm = ifm_of(p->rflags);
                s->b = p->b;
                s->pending = exit_pending(k, p) || p->io == IO_UNKNOWN;
                s->bytes = p->insn;
                s->nbytes = p->insn_len;
                s->idt_base = p->idt_base;
                s->idt_limit = p->idt_limit;
                s->gdt_base = p->gdt_base;
                s->gdt_limit = p->gdt_limit;
                /* Stack contents are known only where every write is recorded. */
                s->stack = k->tracked;
                s->sp = p->rsp;
                s->ss_base = p->ss_base;
                s->sp_mask = p->sp_mask;
                s->cpl = p->cpl;
                return;
        }
        /* Before the first exit: the entry point, IF unknown, nothing ran before it. */
        s->la = k->hdr.h.entry;
        s->ctx = entry_ctx(k, later);
        s->ifm = IFM_BOTH;
        plain(&s->b, 0, s->ctx);
        s->b.ex[FK_PLAIN].valid = false;
        s->idt_base = later->idt_base;
        s->idt_limit = later->idt_limit;
        s->gdt_base = later->gdt_base;
        s->gdt_limit = later->gdt_limit;
}

static bool same_start(struct checker *k, const struct flow_start *s)
{
        const struct flow_start *o = &k->v->flow_key;

        if (!k->v->flow_valid || k->v->flow_gen != k->code.gen)
                return false;
        if (k->v->flow.unsure && k->v->flow_interval != k->v->interval)
                return false; /* it read bytes only that interval left unsure */
        return o->la == s->la && o->ctx == s->ctx && o->ifm == s->ifm && bset_equal(&o->b, &s->b) &&
               o->pending == s->pending && o->nbytes == s->nbytes &&
               (!s->nbytes || !memcmp(k->v->flow_bytes, s->bytes, s->nbytes)) &&
               o->idt_base == s->idt_base && o->idt_limit == s->idt_limit &&
               o->gdt_base == s->gdt_base && o->gdt_limit == s->gdt_limit && o->stack == s->stack &&
               o->sp == s->sp && o->ss_base == s->ss_base && o->sp_mask == s->sp_mask &&
               o->cpl == s->cpl && o->stop_iret == s->stop_iret &&
               flow_reads_hold(&k->v->flow, &k->code);
}

static const struct flow *flow_from(struct checker *k, const struct flow_start *s)
{
        if (same_start(k, s))
                return &k->v->flow;
        flow_run(&k->v->flow, &k->code, s);
        k->v->flow_key = *s;
        if (s->nbytes)
                memcpy(k->v->flow_bytes, s->bytes, s->nbytes);
        k->v->flow_key.bytes = k->v->flow_bytes;
        k->v->flow_gen = k->code.gen;
        k->v->flow_interval = k->v->interval;
        k->v->flow_valid = true;
        return &k->v->flow;
}

/* What retired just before boundary (la, ctx), reached in the interval that starts at p. */
static void bset_in_interval(struct checker *k, const struct exit_sum *p,
                             const struct exit_sum *later, uint64_t la, uint32_t ctx,
                             struct bset *out)
{
        struct flow_start s;
        uint16_t lens;

        if (code_delaying_before(&k->code, la, ctx, &lens) && !lens) {
                /* Nothing that delays interrupts ends here. */
                if (p->valid && la == p->pc && ctx == p->ctx && p->b.kinds == FK_BIT(FK_PLAIN)) {
                        *out = p->b; /* it names what ran, when the exit knew */
                        return;
                }
                plain(out, la, ctx);
                out->ex[FK_PLAIN].valid = false;
                return;
        }
        if (!p->valid && k->v->id != 0) {
                /* A vCPU other than the first starts where its startup IPI said: not recorded. */
                memset(out, 0, sizeof(*out));
                bset_add(out, FK_UNKNOWN, NULL, UND_CONTROL);
                return;
        }
        start_of(k, p, later, &s);
        flow_at(flow_from(k, &s), &k->code, la, ctx, out);
}

/* ---- settling an exit
 * ---------------------------------------------------------------------------- */

/* Whether instruction x (at la) can be followed by itself: a REP iteration, a jump to itself. */
static bool self_loop(const struct code_insn *x, uint64_t la)
{
        return (x->flags & DISASM_REP) ||
               (x->has_target && !(x->flags & DISASM_FAR) && x->target == la);
}

/* Whether the boundary `to` can follow x at `from` (only known successors are checked). */
static bool successor(const struct checker *k, const struct code_insn *x, uint64_t from,
                      uint32_t ctx, uint64_t to)
{
        if (x->flags & (DISASM_RET | DISASM_IRET | DISASM_INT | DISASM_FAR | DISASM_SYSCALL |
                        DISASM_CTX | DISASM_UD))
                return true; /* not checked */
        if ((x->flags & (DISASM_JUMP | DISASM_CALL)) && !x->has_target)
                return true;
        if (x->has_target && to == x->target)
                return true;
        if ((x->flags & DISASM_REP) && to == from)
                return true;
        return to == code_next(&k->code, ctx, from, x->len);
}

/* Whether `to` is a successor of x that the decoding names (not a RET, IRET, INT n, ... target). */
static bool named_successor(const struct checker *k, const struct code_insn *x, uint64_t from,
                            uint32_t ctx, uint64_t to)
{
        if (x->flags & (DISASM_RET | DISASM_IRET | DISASM_INT | DISASM_FAR | DISASM_SYSCALL |
                        DISASM_CTX | DISASM_UD))
                return false;
        if ((x->flags & (DISASM_JUMP | DISASM_CALL)) && !x->has_target)
                return false;
        return successor(k, x, from, ctx, to);
}

/*
 * A TF-based single step that starts at an SS load ends only after the
 * instruction that follows it: the load holds the trap (SDM Vol. 3A 6.8.3,
 * 17.3.1.4), so one step exit covers two instructions, as KVM's
 * --single-step records it (emu's steps one instruction at a time).  With
 * x the SS load at p, whether step exit e can be such a step; *out is then
 * what retired before e.  `one`: e can also be x's own step, and then a
 * successor of the second instruction the decoding cannot name is not
 * taken to be e.
 */
static bool held_step(struct checker *k, const struct exit_sum *p, const struct code_insn *x,
                      const struct exit_sum *e, bool one, struct bset *out)
{
        const struct code_ctx *px = &k->code.ctxs[p->ctx];
        uint64_t la = code_next(&k->code, p->ctx, p->pc, x->len);
        struct code_insn y;
        struct bset mid;

        if (!(x->flags & (DISASM_MOV_SS | DISASM_POP_SS)) || (x->flags & DISASM_UD))
                return false;
        if (code_insn(&k->code, la, p->ctx, &y) != CODE_OK)
                return false;
        if (one ? !named_successor(k, &y, la, p->ctx, e->pc) : !successor(k, &y, la, p->ctx, e->pc))
                return false;
        flow_after(x, p->pc, p->ctx, px->bits, ifm_of(p->rflags), &p->b, &mid);
        flow_after(&y, la, p->ctx, px->bits, flow_if_after(x, ifm_of(p->rflags)), &mid, out);
        return true;
}

/*
 * The step exit e right after the IRET x at p.  IRET loads TF from its
 * frame, so a hypervisor's single-step must handle it itself, and backends
 * differ: kvm_pvm on the 6.18 host steps over the instruction the IRETQ
 * returns to, and its next debug exit comes one instruction late.  An
 * IRET's successor is not decoded, so taking e's boundary for the IRET's
 * own (which opens no shadow) would miss an STI or MOV SS that ran after
 * the target.  Where the trace knows the frame: e at the target is one
 * step; e after the instruction at the target is a step that ran on.
 * Where it does not, and a delaying instruction can end at e's boundary,
 * what ran there is not known.  False when the steps cannot say.
 */
static bool iret_step(struct checker *k, const struct exit_sum *p, const struct code_insn *x,
                      const struct exit_sum *e, struct bset *out)
{
        const struct code_ctx *px = &k->code.ctxs[p->ctx];
        struct flow_start s;
        struct code_insn y;
        struct bset mid;
        uint64_t la;
        uint32_t ctx;
        unsigned ifm;
        uint16_t lens;

        flow_after(x, p->pc, p->ctx, px->bits, ifm_of(p->rflags), &p->b, &mid);
        start_of(k, p, e, &s);
        if (flow_return_target(&k->code, &s, x, &la, &ctx, &ifm)) {
                if (la == e->pc && ctx == e->ctx) {
                        *out = mid;
                        return true;
                }
                if (code_insn(&k->code, la, ctx, &y) != CODE_OK ||
                    !named_successor(k, &y, la, ctx, e->pc) || ctx != e->ctx)
                        return false;
                flow_after(&y, la, ctx, k->code.ctxs[ctx].bits, ifm, &mid, out);
                return true;
        }
        *out = mid;
        if (!code_delaying_before(&k->code, e->pc, e->ctx, &lens) || lens) {
                struct flow_ex at = {
                        .valid = true, .if_before = -1, .ctx = p->ctx, .addr = p->pc
                };

                bset_add(out, FK_UNKNOWN, &at, UND_CONTROL);
        }
        return true;
}

/*
 * The single-step chain: with p the exit right before e, what retired
 * between them when the steps say it.  False when they do not.
 */
static bool step_chain(struct checker *k, const struct exit_sum *p, const struct exit_sum *e,
                       struct bset *out)
{
        const struct code_ctx *px = &k->code.ctxs[p->ctx];
        struct code_insn x;

        if (!p->valid || p->inject_after || !p->insn_len)
                return false; /* an interrupt may have been delivered in between */
        if (code_insn_bytes(&k->code, p->insn, p->insn_len, p->pc, p->ctx, &x) != CODE_OK)
                return false;
        if (e->step && (x.flags & DISASM_IRET) && !(x.flags & DISASM_UD))
                return iret_step(k, p, &x, e, out);
        if (e->step) {
                bool one = successor(k, &x, p->pc, p->ctx, e->pc);
                struct bset two;
                bool held = held_step(k, p, &x, e, one, &two);

                if (!one && !held)
                        return false;
                if (one)
                        flow_after(&x, p->pc, p->ctx, px->bits, ifm_of(p->rflags), &p->b, out);
                if (one && held)
                        bset_merge(out, &two); /* either backend convention: both answers */
                else if (held)
                        *out = two;
                return true;
        }
        if (e->pc != p->pc || e->ctx != p->ctx)
                return false;
        /*
         * The same boundary again without a step exit: nothing ran when every
         * instruction would have been a step exit (single-step), or when the
         * instruction there always exits (an I/O exit taken before it ran).
         */
        if (k->single_step) {
                *out = p->b;
                if (self_loop(&x, p->pc)) {
                        struct bset one;

                        flow_after(&x, p->pc, p->ctx, px->bits, ifm_of(p->rflags), &p->b, &one);
                        bset_merge(out, &one);
                }
                return true;
        }
        if (e->reason == HVT_EXIT_IO && exit_pending(k, e) && k->io_stops &&
            (x.flags & (DISASM_IN | DISASM_OUT))) {
                *out = p->b;
                return true;
        }
        return false;
}

/*
 * The instruction exit e completed before exiting (an I/O instruction
 * reported with RIP past it, a HLT likewise): the run reached *la, ran
 * that instruction and stopped at e's RIP.  False when the run stopped at
 * the RIP without completing anything there.
 */
static bool exit_completed(struct checker *k, const struct exit_sum *e, uint64_t *la)
{
        if (e->reason == HVT_EXIT_IO && io_resolved(k, e) == IO_DONE) {
                *la = e->io_addr;
                return true;
        }
        if (e->reason == HVT_EXIT_HLT && e->hlt_done) {
                *la = code_back(&k->code, e->ctx, e->pc, 1);
                return true;
        }
        return false;
}

/* What retired just before the boundary of exit e. */
static void settle_boundary(struct checker *k, struct exit_sum *e)
{
        const struct exit_sum *p = k->v->prev;
        uint64_t done;

        if (exit_completed(k, e, &done)) {
                plain(&e->b, done, e->ctx);
                return;
        }
        if (step_chain(k, p, e, &e->b))
                return;
        bset_in_interval(k, p, e, e->pc, e->ctx, &e->b);
}

/* Backend reports vs the decoded stream, at every exit. */
static void cross_check_exit(struct checker *k, const struct exit_sum *s)
{
        bool reports_shadow = (s->intr & HVT_INTR_VALID_SHADOW) &&
                              (s->intr & (HVT_INTR_STI_SHADOW | HVT_INTR_MOVSS_SHADOW));
        bool says_open = ((s->intr & HVT_INTR_VALID_SHADOW) && !reports_shadow) ||
                         ((s->intr & HVT_INTR_VALID_READY) && (s->intr & HVT_INTR_READY));
        unsigned kinds = s->b.kinds;
        struct check_finding *f;

        if (!(s->intr & (HVT_INTR_VALID_SHADOW | HVT_INTR_VALID_READY)))
                return;
        if (kinds && !(kinds & ~FK_VIOLATING) && says_open) {
                unsigned kd = (kinds & FK_BIT(FK_STI)) ? FK_STI : FK_SSLOAD;

                f = violation(k, RULE_REPORT_MISMATCH);
                if (!f)
                        return;
                f->rule = RULE_REPORT_MISMATCH;
                f->shadow_rule = kd == FK_STI ? RULE_STI_SHADOW : RULE_MOVSS_SHADOW;
                f->event = s->seq;
                f->pc = s->pc;
                f->rip = s->rip;
                f->cs = s->cs;
                f->bits = s->bits;
                f->intr = s->intr;
                f->policy = k->policy;
                if (s->b.ex[kd].valid)
                        insn_text(k, s->b.ex[kd].addr, s->b.ex[kd].ctx, &f->prev);
                insn_text(k, s->pc, s->ctx, &f->at);
                f->if_before = s->b.ex[kd].if_before;
        } else if (kinds && !(kinds & ~(FK_BIT(FK_PLAIN) | FK_BIT(FK_STI_IF1))) && reports_shadow) {
                note(k, NOTE_CONSERVATIVE, s->seq, s->pc,
                     "#%" PRIu64 " at 0x%" PRIx64 ": shadow=%s reported where none is required",
                     s->seq, s->pc, hvt_shadow_name(s->intr));
        }
}

static bool probe_at(struct checker *k, uint64_t addr, uint32_t ctx);

/*
 * Injection pi was not seen delivered although the backend, at #seen, held
 * nothing.  That proves a loss only where a delivery would have been seen:
 * a handler that starts with the probe.  A VMM that writes traces without
 * the probe (or a handler the trace's code does not show) leaves deliveries
 * unobservable, and calling them lost would be a confident wrong verdict.
 */
static void lost(struct checker *k, const struct pending_inj *pi, uint64_t seen)
{
        uint32_t ctx = pi->at.valid ? pi->at.ctx : k->v->cur->ctx;
        struct check_finding *f;

        if (!pi->in.handler || !probe_at(k, pi->in.handler, ctx)) {
                note(k, NOTE_UNOBSERVABLE, pi->in.after_seq, pi->in.cs_base + pi->in.rip,
                     "vector 0x%02x injected after #%" PRIu64 ": its handler (0x%" PRIx64
                     ") does not start with the delivery probe,"
                     " so whether and where it was delivered cannot be seen",
                     pi->in.vector, pi->in.after_seq, pi->in.handler);
                return;
        }
        f = violation(k, RULE_LOST);

        if (!f)
                return;
        f->rule = RULE_LOST;
        f->event = pi->in.after_seq;
        f->vector = pi->in.vector;
        f->pc = pi->in.cs_base + pi->in.rip;
        f->rip = pi->in.rip;
        f->cs = pi->in.cs;
        f->bits = pi->at.valid ? pi->at.bits : 16;
        f->intr = pi->in.intr;
        f->have_intr = true;
        f->policy = pi->in.policy;
        snprintf(f->reason, sizeof(f->reason),
                 "at #%" PRIu64 " the backend was ready with nothing queued", seen);
}

static void remove_pending(struct checker *k, size_t i)
{
        memmove(&k->v->pend[i], &k->v->pend[i + 1], (k->v->npend - i - 1) * sizeof(k->v->pend[0]));
        k->v->npend--;
}

/* Whether the instruction at addr is the delivery probe (an OUT to port 0xE2). */
static bool probe_at(struct checker *k, uint64_t addr, uint32_t ctx)
{
        struct code_insn in;

        return code_insn(&k->code, addr, ctx, &in) == CODE_OK && (in.flags & DISASM_OUT) &&
               in.io_port == 0xE2;
}

/*
 * A backend that reported itself ready with nothing queued at an exit held
 * no interrupt: one injected before that exit and not reported delivered
 * by any record up to the next exit is lost.  The records naming an exit
 * follow it, and a delivery the VMM inferred at the entry of the run (no
 * probe; hvrec exec) or a probe whose handler left IF set names the very
 * exit that shows the backend empty, so the judgement waits for them.
 * (Between an injection and its probe the vCPU is usually in the handler
 * with IF=0, never ready.)
 */
static void judge_held_nothing(struct checker *k)
{
        if (!k->v->held_nothing)
                return;
        k->v->held_nothing = false;
        for (size_t i = 0; i < k->v->npend;) {
                if (k->v->pend[i].in.after_seq < k->v->held_nothing_seq && !k->v->pend[i].entered) {
                        lost(k, &k->v->pend[i], k->v->held_nothing_seq);
                        remove_pending(k, i);
                } else {
                        i++;
                }
        }
}

/* Whether a and b say the same in every input of settling them but seq. */
static bool same_exit(const struct exit_sum *a, const struct exit_sum *b)
{
        return a->valid && b->valid && !a->inject_after && !b->inject_after &&
               !memcmp(&a->pc, &b->pc,
                       offsetof(struct exit_sum, b) - offsetof(struct exit_sum, pc));
}

/*
 * An exit that repeats the two before it, with nothing else in between:
 * settling it would compute what settling the one before did.  prev's
 * boundary was settled from (prev2, prev) in the state S it found; cur's
 * would be from (prev, cur) in that same S (nothing bumped changes since,
 * and cur's own bytes are those prev already showed), and prev2 and prev
 * agree in every input, in what their classification found and in their
 * boundary, which is prev2's part of the answer.  So cur's answer is prev's.
 */
static bool settle_repeat(struct checker *k, struct exit_sum *cur)
{
        const struct exit_sum *p = k->v->prev, *q = k->v->prev2;

        if (k->nvcpus != 1 || p->mark != k->changes || k->code.nwr || !same_exit(p, cur) ||
            !same_exit(q, p) || q->io != p->io || q->io_addr != p->io_addr ||
            q->hlt_done != p->hlt_done || memcmp(&q->b, &p->b, sizeof(p->b)))
                return false;
        cur->io = p->io;
        cur->io_addr = p->io_addr;
        cur->hlt_done = p->hlt_done;
        if (cur->reason == HVT_EXIT_IO)
                count_io(k, cur);
        cur->b = p->b;
        return true;
}

static void settle(struct checker *k)
{
        struct exit_sum *cur = k->v->cur;
        const struct code_ctx *ctx = &k->code.ctxs[cur->ctx];

        if (!k->v->unsettled)
                return;
        k->v->unsettled = false;
        if (settle_repeat(k, cur))
                goto judged;
        if (code_exit_bytes(&k->code, ctx, cur->pc, cur->insn, cur->insn_len)) {
                k->changes++;
                if (k->tracked) {
                        /* The recorder missed a write: those bytes are unknown from now on. */
                        code_mark_volatile(&k->code, &k->code, ctx, cur->pc, cur->insn_len);
                        note(k, NOTE_CODE_CHANGED, cur->seq, cur->pc,
                             "#%" PRIu64 ": the code at 0x%" PRIx64
                             " differs from what the write records left",
                             cur->seq, cur->pc);
                }
        }
        if (cur->reason == HVT_EXIT_IO)
                classify_io(k, cur);
        if (cur->reason == HVT_EXIT_HLT) {
                uint8_t b = 0;

                cur->hlt_done = code_read(&k->code, ctx, code_back(&k->code, cur->ctx, cur->pc, 1),
                                          &b, 1) == 1 &&
                                b == 0xf4;
        }
        settle_boundary(k, cur);
judged:
        cur->mark = k->changes;
        cross_check_exit(k, cur);

        /* Judged when the next exit comes: a DELIVER naming this one may follow it. */
        if ((cur->intr & HVT_INTR_VALID_READY) && (cur->intr & HVT_INTR_VALID_PENDING) &&
            (cur->intr & HVT_INTR_READY) && !(cur->intr & HVT_INTR_PENDING)) {
                k->v->held_nothing = true;
                k->v->held_nothing_seq = cur->seq;
        }
        for (size_t i = 0; i < k->v->npend; i++) {
                struct pending_inj *pi = &k->v->pend[i];

                /*
                 * The first step after the injection: in the handler means delivered,
                 * unless the handler starts with the probe, which will report it.
                 */
                if (k->single_step && k->v->prev->valid && pi->at.valid &&
                    pi->at.seq == k->v->prev->seq && pi->in.handler &&
                    (cur->pc == pi->in.handler ||
                     (cur->reason == HVT_EXIT_IO && cur->io_addr == pi->in.handler)) &&
                    !probe_at(k, pi->in.handler, cur->ctx)) {
                        pi->entered = true;
                        pi->entered_seq = cur->seq;
                }
        }
}

/* ---- deliveries
 * ---------------------------------------------------------------------------------- */

static void fill_delivery_finding(struct checker *k, struct check_finding *f, unsigned rule,
                                  const struct hvt_disk_deliver *d, const struct pending_inj *pi,
                                  const struct verdict *v, uint64_t pc, uint32_t ctx)
{
        f->rule = rule;
        f->event = d->seq;
        f->vector = d->vector;
        f->pc = pc;
        f->rip = d->ip;
        f->cs = d->cs;
        f->bits = d->frame_bits == 64 ? 64 : k->code.ctxs[ctx].bits;
        f->flags = d->flags;
        f->intr = pi ? pi->in.intr : 0;
        f->have_intr = pi != NULL;
        f->policy = pi ? pi->in.policy : k->policy;
        f->if_before = v ? v->prev.if_before : -1;
        if (v && v->prev.valid)
                insn_text(k, v->prev.addr, v->prev.ctx, &f->prev);
        insn_text(k, pc, ctx, &f->at);
        if (v && v->reason[0])
                snprintf(f->reason, sizeof(f->reason), "%s", v->reason);
        if (v)
                f->und_kind = v->und;
}

/* ---- blocking by NMI ------------------------------------------------------------- */

/* Whether the instruction exit p stood at (its recorded bytes) is an IRET. */
static bool iret_at_exit(struct checker *k, const struct exit_sum *p)
{
        struct code_insn x;

        return p->insn_len &&
               code_insn_bytes(&k->code, p->insn, p->insn_len, p->pc, p->ctx, &x) == CODE_OK &&
               (x.flags & DISASM_IRET) && !(x.flags & DISASM_UD);
}

/*
 * Whether an IRET ended the blocking NMI's handler cannot be told: the
 * next NMI is undetermined.  all is the flow from exit p, or NULL when
 * no exit since that NMI shows where to start one.
 */
static void nmi_maybe(struct checker *k, const struct exit_sum *p, const struct flow *all)
{
        if (k->v->nmi == NMI_MAYBE)
                return;
        k->v->nmi = NMI_MAYBE;
        if (!all)
                snprintf(k->v->nmi_why, sizeof(k->v->nmi_why),
                         "whether an IRET ended the handler of the NMI at #%" PRIu64
                         " is not known: no exit after it shows where the run began",
                         k->v->nmi_seq);
        else if (all->incomplete && !all->iret)
                snprintf(k->v->nmi_why, sizeof(k->v->nmi_why),
                         "whether an IRET ended the handler of the NMI at #%" PRIu64
                         " is not known: a transfer the trace cannot follow (at 0x%" PRIx64
                         ") ran after #%" PRIu64,
                         k->v->nmi_seq, all->inc_at, p->seq);
        else
                snprintf(k->v->nmi_why, sizeof(k->v->nmi_why),
                         "whether an IRET ended the handler of the NMI at #%" PRIu64
                         " is not known: after #%" PRIu64 " paths with and without one lead on",
                         k->v->nmi_seq, p->seq);
}

/*
 * While NMIs are blocked: whether the run after exit p ran an IRET before
 * reaching boundary (la, ctx).  On every path: no longer blocked; on none
 * (no path that reaches it passed one, and every path was followed):
 * still blocked; otherwise, and when no followed path reaches it at all,
 * nobody can tell.
 */
static void nmi_interval(struct checker *k, const struct exit_sum *p, uint64_t la, uint32_t ctx)
{
        const struct flow_node *target;
        struct flow_start s;
        const struct flow *all;

        if (k->v->nmi == NMI_FREE || !p->valid)
                return;
        start_of(k, p, k->v->cur, &s);
        all = flow_from(k, &s);
        target = flow_node(all, la, ctx);
        if (!target && !all->incomplete && k->v->nmi != NMI_MAYBE) {
                /*
                 * The run got there, but no path the code shows does: what
                 * ran is not what the trace's code says, so whether an IRET
                 * ran cannot be told from it.  Still blocked would be a
                 * guess, and one that turns the next NMI into a violation.
                 */
                k->v->nmi = NMI_MAYBE;
                snprintf(k->v->nmi_why, sizeof(k->v->nmi_why),
                         "whether an IRET ended the handler of the NMI at #%" PRIu64
                         " is not known: no path the code shows leads from #%" PRIu64
                         " to 0x%" PRIx64 ", where the run went",
                         k->v->nmi_seq, p->seq, la);
                return;
        }
        if (!(target && target->post_iret) && !all->incomplete)
                return; /* no path to it runs an IRET */
        s.stop_iret = true;
        flow_run(&k->v->nmi_flow, &k->code, &s);
        if (!flow_node(&k->v->nmi_flow, la, ctx) && !k->v->nmi_flow.incomplete) {
                k->v->nmi = NMI_FREE;
                return;
        }
        nmi_maybe(k, p, all);
}

/*
 * The interval from exit p to exit e.  When e completed the instruction
 * that exited, the run reached that instruction and ran it (an OUT or a
 * HLT, never an IRET): paths that reach e's RIP without running it (an
 * IRET or a jump into the code after it) are not the run's, and would
 * count an IRET that did not run, or miss one that did.
 */
static void nmi_interval_to(struct checker *k, const struct exit_sum *p, const struct exit_sum *e)
{
        uint64_t la = e->pc;

        exit_completed(k, e, &la);
        nmi_interval(k, p, la, e->ctx);
}

/* The interval that ends at the newest exit, when no delivery in it has looked at it. */
static void nmi_exit(struct checker *k)
{
        const struct exit_sum *p = k->v->prev, *e = k->v->cur;

        if (k->v->nmi == NMI_FREE || !e->valid || k->v->nmi_seen == e->seq)
                return;
        k->v->nmi_seen = e->seq;
        if (!p->valid)
                return;
        if (e->step && !p->inject_after) {
                /* One instruction ran: the one the previous exit showed. */
                if (iret_at_exit(k, p))
                        k->v->nmi = NMI_FREE;
                return;
        }
        if (k->single_step && !e->step && e->pc == p->pc && e->ctx == p->ctx && !p->inject_after)
                return; /* nothing ran: an I/O or HLT exit taken where the last step stopped */
        nmi_interval_to(k, p, e);
}

/*
 * NMIs are judged by their own rules: IF does not mask them, an STI may
 * block them but need not (SDM Vol. 2B, STI), so an STI shadow becomes a
 * note; a MOV SS / POP SS shadow blocks them (Vol. 3A 6.8.3).  Returns
 * whether b held an STI that opened a shadow (or one with IF unknown).
 */
static bool nmi_bset(struct bset *b)
{
        bool sti = false;

        if (b->kinds & FK_BIT(FK_STI)) {
                if (!(b->kinds & FK_BIT(FK_STI_IF1)))
                        b->ex[FK_STI_IF1] = b->ex[FK_STI];
                b->kinds = (uint8_t)((b->kinds & ~FK_BIT(FK_STI)) | FK_BIT(FK_STI_IF1));
                sti = true;
        }
        if ((b->kinds & FK_BIT(FK_UNKNOWN)) && b->und == UND_IF_UNKNOWN) {
                if (!(b->kinds & FK_BIT(FK_STI_IF1)))
                        b->ex[FK_STI_IF1] = b->ex[FK_UNKNOWN];
                b->kinds = (uint8_t)((b->kinds & ~FK_BIT(FK_UNKNOWN)) | FK_BIT(FK_STI_IF1));
                b->und = UND_NONE;
                sti = true;
        }
        return sti;
}

/* The verdict on an NMI delivery, and the blocking it starts. */
static void judge_nmi(struct checker *k, const struct hvt_disk_deliver *d,
                      const struct pending_inj *pi, struct verdict *v, uint64_t pc, uint32_t ctx,
                      bool after_sti)
{
        unsigned rule = v->rule == RULE_MOVSS_SHADOW ? RULE_NMI_MOVSS_SHADOW : v->rule;
        struct check_finding *f;

        if (k->v->nmi == NMI_BLOCKED) {
                rule = RULE_NMI_WHILE_BLOCKED;
                snprintf(v->reason, sizeof(v->reason),
                         "the NMI at #%" PRIu64 " blocks NMIs until an IRET, and none ran since",
                         k->v->nmi_seq);
        } else if (k->v->nmi == NMI_MAYBE && rule != RULE_NMI_MOVSS_SHADOW) {
                rule = RULE_UNDETERMINED;
                v->und = UND_NMI_IRET;
                snprintf(v->reason, sizeof(v->reason), "%s", k->v->nmi_why);
        }
        k->v->nmi = NMI_BLOCKED;
        k->v->nmi_seq = d->seq;
        if (rule == RULE_NMI_MOVSS_SHADOW || rule == RULE_NMI_WHILE_BLOCKED) {
                f = violation(k, rule);
                if (f)
                        fill_delivery_finding(k, f, rule, d, pi, v, pc, ctx);
                keep_verdict(k, d->seq, pc, d->vector, rule, -1, 0);
                return;
        }
        if (rule == RULE_UNDETERMINED) {
                f = undetermined(k);
                if (f)
                        fill_delivery_finding(k, f, RULE_UNDETERMINED, d, pi, v, pc, ctx);
                keep_verdict(k, d->seq, pc, d->vector, rule, -1, v->und);
                return;
        }
        if (v->note == NOTE_STI_IF_SET && after_sti) {
                v->note = NOTE_NMI_AFTER_STI;
                note(k, NOTE_NMI_AFTER_STI, d->seq, pc,
                     "#%" PRIu64 ": NMI delivered right after the STI at 0x%" PRIx64
                     " (IF was 0): permitted, an STI need not block NMIs",
                     d->seq, v->prev.addr);
        } else if (v->note == NOTE_SEQUENCE) {
                note(k, NOTE_SEQUENCE, d->seq, pc,
                     "#%" PRIu64 ": delivered after the delaying instruction at 0x%" PRIx64
                     ", itself in a shadow: permitted",
                     d->seq, v->prev.addr);
        }
        keep_verdict(k, d->seq, pc, d->vector, RULE_NONE, v->note, 0);
}

/*
 * The injection a delivery answers: the one made at the exit right before
 * the delivering entry if there is one, else the oldest outstanding one of
 * that vector.
 */
static bool take_injection(struct checker *k, const struct hvt_disk_deliver *d,
                           const struct exit_sum *at, struct pending_inj *out)
{
        size_t pick = k->v->npend;

        for (size_t i = 0; i < k->v->npend; i++) {
                if (d->vector_from != HVT_VEC_UNKNOWN && k->v->pend[i].in.vector != d->vector)
                        continue;
                if ((d->dflags & HVT_DELIVER_NMI) && k->v->pend[i].in.method != HVT_INJ_NMI)
                        continue;
                if (pick == k->v->npend)
                        pick = i;
                if (at && at->valid && k->v->pend[i].in.after_seq == at->seq) {
                        pick = i;
                        break;
                }
        }
        if (pick == k->v->npend)
                return false;
        *out = k->v->pend[pick];
        remove_pending(k, pick);
        return true;
}

/* Put back an injection a delivery turned out not to answer (kept in order of injection). */
static void return_injection(struct checker *k, const struct pending_inj *pi)
{
        size_t i = 0;

        if (k->v->npend == MAX_PENDING)
                return;
        while (i < k->v->npend && k->v->pend[i].in.after_seq <= pi->in.after_seq)
                i++;
        memmove(&k->v->pend[i + 1], &k->v->pend[i], (k->v->npend - i) * sizeof(k->v->pend[0]));
        k->v->pend[i] = *pi;
        k->v->npend++;
}

/* The code context of the interrupted point of delivery d, from the frame; false if unknown. */
static bool delivery_ctx(struct checker *k, const struct hvt_disk_deliver *d,
                         const struct exit_sum *p, uint32_t *ctx)
{
        struct code_ctx x;
        bool unsure;

        if (d->dflags & HVT_DELIVER_CS_BASE_UNKNOWN)
                return false;
        if (!p->valid) {
                x = k->code.ctxs[entry_ctx(k, k->v->cur)];
        } else {
                x = k->code.ctxs[p->ctx];
                if (d->frame_bits != 64 && (x.cr0 & X86_CR0_PE) && d->cs != p->cs) {
                        /* Another code segment than at the previous exit: its descriptor. */
                        if (!code_selector(&k->code, p->ctx, p->gdt_base, p->gdt_limit, d->cs, ctx,
                                           &unsure))
                                return false;
                        return true;
                }
        }
        if (d->frame_bits == 64 && x.bits == 64)
                x.cs_base = 0;
        else
                x.cs_base = d->cs_base;
        if (!(x.cr0 & X86_CR0_PE))
                x.bits = 16;
        *ctx = code_ctx_add(&k->code, &x);
        return true;
}

/*
 * Whether the run after exit p was single-stepped, so that no instruction
 * could run before a delivery in it: in a single-step trace always; with
 * hvrec's step-inject, after a step exit followed by an injection or with
 * one still queued (hvrec steps until the backend no longer holds it).
 */
static bool stepped_after(const struct checker *k, const struct exit_sum *p)
{
        if (k->single_step)
                return true;
        return k->step_inject && p->step &&
               (p->inject_after ||
                ((p->intr & HVT_INTR_VALID_PENDING) && (p->intr & HVT_INTR_PENDING)));
}

/*
 * The verdict on a guest #DB from what retired before pc (b): MOV SS and POP
 * SS hold single-step and data-breakpoint #DB until the next instruction
 * completes (SDM Vol. 3A 6.8.3), STI holds none of it (so IF and the
 * sequence rule of maskable interrupts do not matter here), and a second SS
 * load in a row may or may not extend the hold.
 */
static void debug_verdict(struct checker *k, const struct bset *b, uint64_t pc, bool tf,
                          struct verdict *v)
{
        unsigned legal = b->kinds & (FK_BIT(FK_PLAIN) | FK_BIT(FK_STI_IF1) | FK_BIT(FK_STI));
        bool ss = b->kinds & FK_BIT(FK_SSLOAD), seq = false;
        int legal_kind = -1;

        memset(v, 0, sizeof(*v));
        v->note = -1;
        if (b->kinds & FK_BIT(FK_UNKNOWN)) {
                decide(k, b, pc, v); /* the same reasons as for any delivery */
                return;
        }
        for (unsigned kd = FK_SECOND; kd <= FK_DELAYED; kd++) {
                struct code_insn x;

                if (!(b->kinds & FK_BIT(kd)))
                        continue;
                if (b->ex[kd].valid &&
                    code_insn(&k->code, b->ex[kd].addr, b->ex[kd].ctx, &x) == CODE_OK &&
                    (x.flags & DISASM_STI)) {
                        legal |= FK_BIT(kd);
                } else {
                        seq = true;
                        v->prev = b->ex[kd];
                }
        }
        if (ss && (legal || seq)) {
                v->rule = RULE_UNDETERMINED;
                v->und = UND_PREDECESSORS;
                snprintf(v->reason, sizeof(v->reason),
                         "an SS load at 0x%" PRIx64
                         " and instructions that hold no #DB can both run just before it",
                         b->ex[FK_SSLOAD].addr);
                return;
        }
        if (seq) {
                v->rule = RULE_UNDETERMINED;
                v->und = UND_SEQUENCE;
                snprintf(v->reason, sizeof(v->reason),
                         "the SS load at 0x%" PRIx64
                         " ran right after another delaying instruction: whether it holds #DB is "
                         "not known",
                         v->prev.addr);
                return;
        }
        if (ss) {
                v->prev = b->ex[FK_SSLOAD];
                if (!tf) {
                        v->rule = RULE_UNDETERMINED;
                        v->und = UND_DEBUG_CAUSE;
                        snprintf(v->reason, sizeof(v->reason),
                                 "a #DB with TF clear right after the SS load at 0x%" PRIx64
                                 ": a data breakpoint (held by it) or an instruction breakpoint "
                                 "(which the rule does not cover); the trace does not record "
                                 "the guest's DR6/DR7",
                                 v->prev.addr);
                        return;
                }
                v->rule = RULE_DB_MOVSS_SHADOW;
                return;
        }
        v->rule = RULE_NONE;
        v->note = NOTE_DEBUG_EXCEPTION;
        for (unsigned kd = 0; kd < FK_COUNT; kd++)
                if (legal == FK_BIT(kd))
                        legal_kind = (int)kd;
        if (legal_kind >= 0)
                v->prev = b->ex[legal_kind];
}

/*
 * A #DB no injection explains: the guest raised it (TF set in the
 * interrupted FLAGS: a single-step trap; TF clear: a breakpoint in its DR7).
 * It is no maskable interrupt, so IF and the STI shadow do not apply; the
 * only question is whether it landed inside a MOV SS / POP SS shadow.
 * landed: what retired before pc when the run after p was stepped and pc
 * is where it began (NULL: follow the paths from p).
 */
static void judge_debug(struct checker *k, const struct hvt_disk_deliver *d,
                        const struct exit_sum *p, uint64_t pc, uint32_t ctx,
                        const struct bset *landed)
{
        bool tf = d->flags & X86_RFLAGS_TF;
        struct check_finding *f;
        uint64_t ss_at = 0;
        struct verdict v;
        struct bset b;

        if (code_ssload_before(&k->code, pc, ctx, &ss_at) == 0) {
                /* No SS load can end here: no shadow, whatever ran and whatever raised it. */
                memset(&v, 0, sizeof(v));
                v.rule = RULE_NONE;
                v.note = NOTE_DEBUG_EXCEPTION;
        } else {
                if (landed)
                        b = *landed;
                else
                        bset_in_interval(k, p, k->v->cur, pc, ctx, &b);
                debug_verdict(k, &b, pc, tf, &v);
        }
        if (v.rule == RULE_DB_MOVSS_SHADOW) {
                f = violation(k, RULE_DB_MOVSS_SHADOW);
                if (f)
                        fill_delivery_finding(k, f, RULE_DB_MOVSS_SHADOW, d, NULL, &v, pc, ctx);
        } else if (v.rule == RULE_UNDETERMINED) {
                f = undetermined(k);
                if (f)
                        fill_delivery_finding(k, f, RULE_UNDETERMINED, d, NULL, &v, pc, ctx);
        } else {
                note(k, NOTE_DEBUG_EXCEPTION, d->seq, pc,
                     "#%" PRIu64 ": #DB (TF=%d) delivered at 0x%" PRIx64
                     ", outside any MOV SS / POP SS shadow",
                     d->seq, tf ? 1 : 0, pc);
        }
        keep_verdict(k, d->seq, pc, d->vector, v.rule, v.note, v.und);
}

/*
 * Judge delivery d: the interrupt landed at the frame's CS:IP, during the
 * run that started at exit p (the exit before the probe's, or the
 * injection's exit when inferred from single-stepping).
 */
static void judge_delivery(struct checker *k, const struct hvt_disk_deliver *d,
                           const struct exit_sum *p)
{
        uint64_t pc = d->cs_base + (d->frame_bits == 16 ? d->ip & 0xffff : d->ip), landing = 0;
        bool have_inj, zero = false, soft = false, ext, pend_insn = false, nmi, after_sti = false;
        struct exit_sum none = { 0 };
        struct check_finding *f;
        struct pending_inj pi;
        struct verdict v;
        struct bset b;
        uint32_t ctx = 0;
        uint64_t int_at = 0;
        int soft_found = 0;

        if (d->frame_bits == 64)
                pc = d->ip;
        if (!p)
                p = &none;
        k->res->deliveries++;
        have_inj = take_injection(k, d, p, &pi);
        nmi = (d->dflags & HVT_DELIVER_NMI) || (have_inj && pi.in.method == HVT_INJ_NMI);
        memset(&v, 0, sizeof(v));
        v.note = -1;

        if (!delivery_ctx(k, d, p, &ctx)) {
                v.rule = RULE_UNDETERMINED;
                v.und = UND_NO_CODE;
                snprintf(v.reason, sizeof(v.reason),
                         "the frame's CS 0x%04x names no code segment the trace shows", d->cs);
                goto judged;
        }

        /*
         * Where the entry after p lands before any instruction runs; with
         * single-stepping on for that run nothing can run before a delivery
         * (the step's #DB trap would win), so it lands exactly there.
         */
        if (p->valid) {
                landing = p->pc;
                if (exit_pending(k, p)) {
                        struct code_insn x;

                        if (code_insn_bytes(&k->code, p->insn, p->insn_len, p->pc, p->ctx, &x) ==
                            CODE_OK) {
                                landing = code_next(&k->code, p->ctx, p->pc, x.len);
                                pend_insn = true;
                        }
                }
                zero = stepped_after(k, p) && (!exit_pending(k, p) || pend_insn);
        }
        /* Whatever interrupt this is, an IRET before it ends blocking by an earlier NMI. */
        if (k->v->cur->valid && d->seq == k->v->cur->seq)
                k->v->nmi_seen = d->seq;
        if (p->valid && k->v->nmi != NMI_FREE && p->seq < k->v->nmi_seq) {
                /*
                 * The run judged starts before the blocking NMI's probe (an
                 * exit that stood at a handler): look from that probe on.
                 */
                if (k->v->prev->valid && k->v->prev->seq >= k->v->nmi_seq)
                        nmi_interval(k, k->v->prev, pc, ctx);
                else
                        nmi_maybe(k, p, NULL);
        } else if (!(zero && pc == landing)) {
                nmi_interval(k, p, pc, ctx);
        }

        /* An INT n of this vector ending here raised it, if control can have run it. */
        soft_found = code_int_before(&k->code, pc, ctx, d->vector, &int_at);
        if (soft_found == 1 && p->valid) {
                if (int_at == p->pc && ctx == p->ctx) {
                        soft = true;
                } else if (!zero) {
                        struct flow_start s;
                        const struct flow *fl;

                        start_of(k, p, p, &s);
                        fl = flow_from(k, &s);
                        soft = flow_node(fl, int_at, ctx) || fl->incomplete;
                }
        }
        ext = (have_inj || k->backend_irqs) && (!zero || pc == landing);
        if (soft && !ext) {
                if (have_inj)
                        return_injection(k, &pi);
                note(k, NOTE_SOFTWARE_INT, d->seq, pc,
                     "#%" PRIu64 ": vector 0x%02x raised by the INT at 0x%" PRIx64, d->seq,
                     d->vector, int_at);
                keep_verdict(k, d->seq, pc, d->vector, RULE_NONE, NOTE_SOFTWARE_INT, 0);
                return;
        }
        if (soft) {
                if (have_inj)
                        return_injection(k, &pi);
                have_inj = false;
                v.rule = RULE_UNDETERMINED;
                v.und = UND_SOFT_OR_EXT;
                snprintf(v.reason, sizeof(v.reason),
                         "the INT at 0x%" PRIx64
                         " ends here and an interrupt of vector 0x%02x could also have been "
                         "delivered: which one entered the handler is not known",
                         int_at, d->vector);
                goto judged;
        }
        if (!have_inj && d->vector == X86_EXC_DB) {
                struct bset landed;
                bool at_landing = zero && pc == landing;

                if (at_landing && pend_insn)
                        plain(&landed, p->pc, p->ctx);
                else if (at_landing)
                        landed = p->b;
                judge_debug(k, d, p, pc, ctx, at_landing ? &landed : NULL);
                return;
        }
        if (!have_inj && k->backend_irqs) {
                /* The backend's own devices (a timer) raise interrupts hvrec never saw. */
                note(k, NOTE_BACKEND_RAISED, d->seq, pc,
                     "#%" PRIu64 ": vector 0x%02x came from the backend's own devices", d->seq,
                     d->vector);
        } else if (!have_inj) {
                f = violation(k, RULE_SPURIOUS);
                if (f)
                        fill_delivery_finding(k, f, RULE_SPURIOUS, d, NULL, NULL, pc, ctx);
                keep_verdict(k, d->seq, pc, d->vector, RULE_SPURIOUS, -1, 0);
                return;
        }

        if (zero && pc == landing) {
                if (pend_insn)
                        plain(&b, p->pc, p->ctx);
                else
                        b = p->b;
        } else {
                if (have_inj && pi.at.valid && p->valid && pi.at.seq == p->seq && pc != landing &&
                    !k->backend_irqs)
                        note(k, NOTE_LANDED_ELSEWHERE, d->seq, pc,
                             "#%" PRIu64 ": the entry after #%" PRIu64 " was at 0x%" PRIx64
                             ", the interrupt landed at 0x%" PRIx64,
                             d->seq, p->seq, landing, pc);
                bset_in_interval(k, p, k->v->cur, pc, ctx, &b);
        }
        if (nmi)
                after_sti = nmi_bset(&b);
        decide(k, &b, pc, &v);

judged:
        if (!have_inj)
                pi.in.policy = (uint8_t)k->policy;
        if (nmi) {
                judge_nmi(k, d, have_inj ? &pi : NULL, &v, pc, ctx, after_sti);
                return;
        }
        if (v.rule != RULE_UNDETERMINED && !(d->flags & X86_RFLAGS_IF)) {
                f = violation(k, RULE_IF_CLEAR);
                if (f)
                        fill_delivery_finding(k, f, RULE_IF_CLEAR, d, have_inj ? &pi : NULL, &v, pc,
                                              ctx);
                keep_verdict(k, d->seq, pc, d->vector, RULE_IF_CLEAR, -1, 0);
                return;
        }
        if (v.rule == RULE_STI_SHADOW || v.rule == RULE_MOVSS_SHADOW) {
                f = violation(k, v.rule);
                if (f)
                        fill_delivery_finding(k, f, v.rule, d, have_inj ? &pi : NULL, &v, pc, ctx);
        } else if (v.rule == RULE_UNDETERMINED) {
                f = undetermined(k);
                if (f)
                        fill_delivery_finding(k, f, RULE_UNDETERMINED, d, have_inj ? &pi : NULL, &v,
                                              pc, ctx);
        } else if (v.note == NOTE_SEQUENCE) {
                note(k, NOTE_SEQUENCE, d->seq, pc,
                     "#%" PRIu64 ": delivered after the delaying instruction at 0x%" PRIx64
                     ", itself in a shadow: permitted",
                     d->seq, v.prev.addr);
        } else if (v.note == NOTE_STI_IF_SET) {
                note(k, NOTE_STI_IF_SET, d->seq, pc,
                     "#%" PRIu64
                     ": delivered after an STI executed with IF already set (no shadow)",
                     d->seq);
        }
        keep_verdict(k, d->seq, pc, d->vector, v.rule, v.note, v.und);
}

/*
 * Single-step traces need no probe: the step after an injection that stands
 * at the vector's handler is the delivery.  Judge those the probe did not
 * report (called when the next record shows no DELIVER followed).
 */
static void infer_deliveries(struct checker *k)
{
        for (size_t i = 0; i < k->v->npend; i++) {
                struct pending_inj *pi = &k->v->pend[i];
                struct hvt_disk_deliver d = { 0 };
                struct exit_sum at;

                if (!pi->entered)
                        continue;
                at = pi->at;
                d.seq = pi->entered_seq;
                d.vector = pi->in.vector;
                d.vector_from = HVT_VEC_INJECTED;
                d.flags = at.rflags;
                d.cs = at.cs;
                d.cs_base = k->code.ctxs[at.ctx].cs_base;
                d.frame_bits = (uint8_t)at.bits;
                d.handler = pi->in.handler;
                /* The interrupted point is where the entry after the injection lands. */
                d.ip = at.pc - d.cs_base;
                if (exit_pending(k, &at)) {
                        struct code_insn x;

                        if (code_insn_bytes(&k->code, at.insn, at.insn_len, at.pc, at.ctx, &x) ==
                            CODE_OK)
                                d.ip = code_next(&k->code, at.ctx, at.pc, x.len) - d.cs_base;
                }
                if (d.frame_bits == 16)
                        d.ip &= 0xffff;
                pi->entered = false;
                judge_delivery(k, &d, &at);
                i = (size_t)-1; /* judge_delivery removed an entry: rescan */
        }
}

/* ---- records
 * -------------------------------------------------------------------------------------- */

static uint32_t ctx_for_state(struct checker *k, const struct hvt_vcpu_state *st)
{
        struct code_ctx ctx = code_ctx_of(st);

        return code_ctx_add(&k->code, &ctx);
}

static bool is_step(const struct hvt_exit *ex)
{
        return ex->reason == HVT_EXIT_DEBUG && ex->u.debug.exception == 1 &&
               (ex->u.debug.dr6 & X86_DR6_BS); /* a single-step trap */
}

static void summarize(struct checker *k, const struct hvt_exit *ex, struct exit_sum *s)
{
        struct x86_stack stack;

        memset(s, 0, sizeof(*s));
        s->valid = true;
        s->seq = ex->seq;
        s->pc = hvt_state_pc(&ex->st);
        s->rip = ex->st.rip;
        s->cs = ex->st.seg[HVT_CS].selector;
        s->rflags = ex->st.rflags;
        s->intr = ex->st.intr;
        s->ctx = ctx_for_state(k, &ex->st);
        s->bits = hvt_state_code_bits(&ex->st);
        s->reason = ex->reason;
        s->step = is_step(ex);
        s->insn_len = ex->insn_len > 15 ? 15 : ex->insn_len;
        memcpy(s->insn, ex->insn, s->insn_len);
        s->idt_base = ex->st.idt.base;
        s->idt_limit = ex->st.idt.limit;
        s->gdt_base = ex->st.gdt.base;
        s->gdt_limit = ex->st.gdt.limit;
        s->rsp = ex->st.gpr[HVT_F_RSP];
        stack = x86_stack_of(&ex->st);
        s->ss_base = stack.base;
        s->sp_mask = stack.mask;
        s->cpl = (ex->st.cr0 & X86_CR0_PE) ? ex->st.seg[HVT_CS].selector & X86_SEL_RPL : 0;
        if (ex->reason == HVT_EXIT_IO) {
                s->io_out = ex->u.io.io.dir == HVT_IO_OUT;
                s->io_port = ex->u.io.io.port;
                s->io_size = ex->u.io.io.size;
                s->io = IO_UNKNOWN;
        }
}

/*
 * A new interval starts at an exit of vCPU k->v.  With one vCPU, what was
 * written before is known from here on.  With several, the other vCPUs ran
 * meanwhile: a range stays unsure to a vCPU until its run that overlapped
 * the write has been judged, that is until each vCPU has exited after it.
 */
static void new_interval(struct checker *k)
{
        struct vcpu_judge *v = k->v;
        uint64_t oldest;

        if (k->nvcpus == 1) {
                code_interval(&k->code);
                return;
        }
        v->since = v->last_stamp + 1;
        v->last_stamp = code_interval_keep(&k->code);
        code_unsure_since(&k->code, v->since);
        /* vCPU 0 runs from the entry; another vCPU's run before its first exit is not judged. */
        oldest = k->judges[0] ? k->judges[0]->last_stamp + 1 : 1;
        for (uint32_t i = 1; i < k->nvcpus; i++)
                if (k->judges[i] && k->judges[i]->last_stamp + 1 < oldest)
                        oldest = k->judges[i]->last_stamp + 1;
        if (v->since < oldest)
                oldest = v->since;
        code_forget_before(&k->code, oldest);
}

static void on_exit_record(struct checker *k, const struct hvt_exit *ex)
{
        k->res->exits++;
        settle(k);
        judge_held_nothing(k);
        nmi_exit(k);
        if (k->opts.without_steps && is_step(ex)) {
                /*
                 * As if the trace did not hold it: its writes belong to the run
                 * that ends at the next exit kept, which starts here.
                 */
                k->changes++;
                if (!k->v->skipping) {
                        new_interval(k);
                        k->v->interval++;
                        k->v->skipping = true;
                }
                return;
        }
        if (k->v->cur->valid) {
                struct exit_sum *oldest = k->v->prev2;

                k->v->prev2 = k->v->prev;
                k->v->prev = k->v->cur;
                k->v->cur = oldest;
        }
        summarize(k, ex, k->v->cur);
        /* The write records that follow belong to the run that ended at this exit. */
        if (!k->v->skipping) {
                new_interval(k);
                k->v->interval++;
        }
        k->v->skipping = false;
        k->v->unsettled = true;
}

static void on_inject(struct checker *k, const struct hvt_disk_inject *in)
{
        struct pending_inj *pi;

        k->res->injections++;
        if (k->v->npend == MAX_PENDING) {
                /* Far more outstanding than any backend queues: the oldest is lost. */
                lost(k, &k->v->pend[0], in->after_seq);
                remove_pending(k, 0);
        }
        pi = &k->v->pend[k->v->npend++];
        memset(pi, 0, sizeof(*pi));
        pi->in = *in;
        if (k->v->cur->valid && k->v->cur->seq == in->after_seq) {
                k->v->cur->inject_after = true;
                pi->at = *k->v->cur;
        } else {
                /* After an exit this walk skipped: the state then is not known. */
                k->v->cur->inject_after = true;
                pi->at.valid = false;
                pi->at.seq = in->after_seq;
        }
}

static void on_end(struct checker *k)
{
        infer_deliveries(k);
        nmi_exit(k);
        /* Still outstanding: the trace ended before the backend showed where they went. */
        for (size_t i = 0; i < k->v->npend; i++)
                note(k, NOTE_ENDED_PENDING, k->v->pend[i].in.after_seq,
                     k->v->pend[i].in.cs_base + k->v->pend[i].in.rip,
                     "vector 0x%02x injected after #%" PRIu64
                     " was still outstanding when the trace ended",
                     k->v->pend[i].in.vector, k->v->pend[i].in.after_seq);
        k->v->npend = 0;
}

/*
 * The exit whose run delivered d: the one before the probe's, unless that
 * one already stood at the handler (a single step that ended on its first
 * instruction, as a stepped INT n does): then the one before it.
 */
static const struct exit_sum *delivery_start(const struct checker *k,
                                             const struct hvt_disk_deliver *d)
{
        if (!k->v->cur->valid || k->v->cur->seq != d->seq)
                return k->v->cur;
        if (k->v->prev->valid && k->v->prev->pc == d->handler && k->v->prev2->valid)
                return k->v->prev2;
        return k->v->prev;
}

/* Tell the front end how far a pass has come, every CHECK_PROGRESS_EVERY records. */
static void progress(struct checker *k, unsigned pass, uint64_t *records)
{
        if (k->opts.progress && ++*records % CHECK_PROGRESS_EVERY == 0)
                k->opts.progress(k->opts.progress_ctx, pass, *records);
}

/*
 * Without write records the code is known only where exits show it: every
 * byte an exit shows changed stays unsure for the whole trace.  Finding
 * them takes a walk of its own before the judging one, but nearly every
 * trace has none: the judging walk scans as it goes and stops at the first
 * (CHECK_RESCAN), and only then is the trace read three times.
 */
#define CHECK_RESCAN 2
_Static_assert(CHECK_RESCAN != HVT_OK && CHECK_RESCAN != HVT_END_OF_TRACE,
               "a walk's own status, not the reader's");

/* Record what exit ex shows in seen; true if it shows some byte changed (marked in into). */
static bool scan_exit_bytes(struct code *seen, struct code *into, const struct hvt_exit *ex,
                            const struct code_ctx *ctx, uint64_t pc)
{
        uint8_t old[15];
        size_t n = code_read(seen, ctx, pc, old, ex->insn_len);
        bool changed = false;

        for (size_t i = 0; i < n; i++)
                if (old[i] != ex->insn[i]) {
                        code_mark_volatile(into, seen, ctx, pc + i, 1);
                        changed = true;
                }
        code_exit_bytes(seen, ctx, pc, ex->insn, ex->insn_len);
        return changed;
}

static bool same_ctx(const struct code_ctx *a, const struct code_ctx *b)
{
        return a->cr0 == b->cr0 && a->cr3 == b->cr3 && a->cr4 == b->cr4 && a->efer == b->efer &&
               a->cs_base == b->cs_base && a->bits == b->bits;
}

/*
 * The scan inside the judging walk.  An exit showing what the one before it
 * showed, with no memory record between, finds seen as that one left it:
 * nothing to compare or record.
 */
static bool scan_exit(struct checker *k, const struct hvt_exit *ex)
{
        struct code_ctx ctx;
        uint64_t pc;

        if (!ex->insn_len)
                return false;
        ctx = code_ctx_of(&ex->st);
        pc = hvt_state_pc(&ex->st);
        if (k->scan_key_valid && k->scan_pc == pc && k->scan_len == ex->insn_len &&
            same_ctx(&k->scan_ctx, &ctx) && !memcmp(k->scan_insn, ex->insn, ex->insn_len))
                return false;
        if (scan_exit_bytes(&k->seen, &k->code, ex, &ctx, pc))
                return true;
        k->scan_key_valid = true;
        k->scan_ctx = ctx;
        k->scan_pc = pc;
        k->scan_len = ex->insn_len;
        memcpy(k->scan_insn, ex->insn, ex->insn_len);
        return false;
}

int check_event_vcpu(const struct hvt_reader *r, const struct hvt_event *ev)
{
        if (hvt_reader_vcpus(r) < 2)
                return -1;
        switch (ev->type) {
        case HVT_REC_EXIT:
        case HVT_REC_INJECT:
        case HVT_REC_RAISE:
        case HVT_REC_DELIVER:
        case HVT_REC_CONSOLE: return (int)hvt_reader_vcpu(r);
        default: return -1;
        }
}

/* The judge of vCPU id, created at its first record.  NULL when out of memory. */
static struct vcpu_judge *judge_of(struct checker *k, uint32_t id)
{
        struct vcpu_judge *j = k->judges[id];

        if (j)
                return j;
        j = calloc(1, sizeof(*j));
        if (!j)
                return NULL;
        j->id = id;
        j->cur = &j->sums[0];
        j->prev = &j->sums[1];
        j->prev2 = &j->sums[2];
        flow_init(&j->flow);
        flow_init(&j->nmi_flow);
        k->judges[id] = j;
        return j;
}

/* Make vCPU id's judge the current one (and the code's view of what is unsure its own). */
static void use_judge(struct checker *k, struct vcpu_judge *j)
{
        k->v = j;
        if (k->nvcpus > 1)
                code_unsure_since(&k->code, j->since);
}

/*
 * A record of vCPU id.  The records of one exit come together, so when
 * another vCPU's begin, the last one's exit has all of its own.
 */
static int switch_vcpu(struct checker *k, uint32_t id)
{
        struct vcpu_judge *j;

        if (k->v->id == id)
                return 0;
        settle(k);
        if (k->single_step)
                infer_deliveries(k);
        j = judge_of(k, id);
        if (!j)
                return -ENOMEM;
        use_judge(k, j);
        return 0;
}

/* Settle the last exit of every vCPU; at the END record (end) also end its run. */
static void settle_all(struct checker *k, bool end)
{
        struct vcpu_judge *cur = k->v;

        for (uint32_t i = 0; i < k->nvcpus; i++) {
                if (!k->judges[i])
                        continue;
                use_judge(k, k->judges[i]);
                settle(k);
                judge_held_nothing(k);
                if (end)
                        on_end(k);
        }
        use_judge(k, cur);
}

static int walk(struct checker *k, struct hvt_reader *r)
{
        struct hvt_event ev;
        uint64_t records = 0;
        int err;

        while ((err = hvt_reader_next(r, &ev)) == HVT_OK) {
                int vcpu = check_event_vcpu(r, &ev);

                progress(k, 2, &records);
                if (vcpu >= 0 && switch_vcpu(k, (uint32_t)vcpu))
                        return -ENOMEM;
                if (ev.type != HVT_REC_WRITE && ev.type != HVT_REC_EXIT)
                        settle(k);
                if (ev.type != HVT_REC_EXIT)
                        k->changes++; /* after settling: it follows the exit settled */
                if (ev.type != HVT_REC_DELIVER && ev.type != HVT_REC_WRITE && k->single_step)
                        infer_deliveries(k);
                switch (ev.type) {
                case HVT_REC_MEMORY:
                        code_load(&k->code, ev.memory.gpa, ev.memory.data, ev.memory.len);
                        if (k->scanning) {
                                code_load(&k->seen, ev.memory.gpa, ev.memory.data, ev.memory.len);
                                k->scan_key_valid = false;
                        }
                        break;
                case HVT_REC_WRITE:
                        code_write(&k->code, ev.write.gpa, ev.write.data, ev.write.len);
                        break;
                case HVT_REC_EXIT:
                        if (k->scanning && scan_exit(k, &ev.exit))
                                return CHECK_RESCAN;
                        on_exit_record(k, &ev.exit);
                        break;
                case HVT_REC_INJECT: on_inject(k, &ev.inject); break;
                case HVT_REC_DELIVER:
                        /* The probe supersedes the single-step inference. */
                        for (size_t i = 0; i < k->v->npend; i++)
                                if (k->v->pend[i].in.vector == ev.deliver.vector)
                                        k->v->pend[i].entered = false;
                        judge_delivery(k, &ev.deliver, delivery_start(k, &ev.deliver));
                        break;
                case HVT_REC_END:
                        settle_all(k, true);
                        k->res->have_end = true;
                        k->res->end_why = ev.end.e.why;
                        k->res->end_status = ev.end.e.status;
                        snprintf(k->res->end_message, sizeof(k->res->end_message), "%s",
                                 ev.end.message);
                        break;
                default: break;
                }
        }
        settle_all(k, false);
        return err;
}

/* The separate first walk, for a trace whose exits show code changing. */
static int find_volatile(struct checker *k, struct hvt_reader *r)
{
        struct hvt_event ev;
        struct code seen;
        uint64_t records = 0;
        int err;

        if (code_init(&seen, k->dis, k->hdr.h.mem_size))
                return -ENOMEM;
        while ((err = hvt_reader_next(r, &ev)) == HVT_OK) {
                progress(k, 1, &records);
                if (ev.type == HVT_REC_MEMORY) {
                        code_load(&seen, ev.memory.gpa, ev.memory.data, ev.memory.len);
                } else if (ev.type == HVT_REC_EXIT && ev.exit.insn_len) {
                        struct code_ctx ctx = code_ctx_of(&ev.exit.st);

                        scan_exit_bytes(&seen, &k->code, &ev.exit, &ctx, hvt_state_pc(&ev.exit.st));
                }
        }
        code_free(&seen);
        return err;
}

static int open_reader(struct check_result *res, const char *path, struct hvt_reader **r)
{
        int err = hvt_reader_open(r, path);

        if (err) {
                snprintf(res->error, sizeof(res->error), "%s", hvt_reader_message(*r));
                hvt_reader_close(*r);
                *r = NULL;
                return -1;
        }
        return 0;
}

/* One check of path; scan_first: find the code exits show changing in a walk of its own. */
static int check_run(const char *path, const struct check_opts *opts, struct check_result *res,
                     bool scan_first)
{
        struct hvt_vcpu_state st = { 0 };
        const struct hvt_header *h;
        struct hvt_reader *r;
        struct checker *k;
        int err, status = 0;

        memset(res, 0, sizeof(*res));
        res->path = path;
        if (open_reader(res, path, &r))
                return -1;
        res->opened = true;
        k = calloc(1, sizeof(*k));
        if (!k || disasm_open(&k->dis)) {
                snprintf(res->error, sizeof(res->error), "out of memory");
                free(k);
                hvt_reader_close(r);
                return -1;
        }
        k->path = path;
        k->res = res;
        if (opts)
                k->opts = *opts;
        k->nvcpus = hvt_reader_vcpus(r);
        res->vcpus = k->nvcpus;
        k->judges = calloc(k->nvcpus, sizeof(*k->judges));
        if (!k->judges || !judge_of(k, 0)) {
                snprintf(res->error, sizeof(res->error), "out of memory");
                status = -1;
                goto out;
        }
        k->v = k->judges[0];
        h = hvt_reader_header(r);
        k->hdr = *h;
        k->single_step = (h->h.flags & HVT_HDR_SINGLE_STEP) && !k->opts.without_steps;
        k->step_inject = (h->h.flags & HVT_HDR_STEP_INJECT) && !k->opts.without_steps;
        k->tracked = h->h.flags & HVT_HDR_WRITES;
        k->backend_irqs = h->h.backend_caps & HVT_CAP_IRQCHIP;
        k->io_stops = h->h.backend_caps & HVT_CAP_IO_EXITS;
        k->hlt_stops = h->h.backend_caps & HVT_CAP_HLT_EXITS;
        k->policy = h->h.inject_policy;
        res->single_step = k->single_step;
        res->policy = k->policy;
        snprintf(res->backend, sizeof(res->backend), "%s", h->str[HVT_STR_BACKEND]);
        if (code_init(&k->code, k->dis, h->h.mem_size)) {
                snprintf(res->error, sizeof(res->error),
                         "cannot hold %" PRIu64 " bytes of guest memory", (uint64_t)h->h.mem_size);
                status = -1;
                goto out;
        }
        /* Context 0: the mode the guest started in, for what runs before any exit. */
        if (h->h.guest_mode != HVT_MODE_REAL)
                st.cr0 = X86_CR0_PE;
        st.seg[HVT_CS].attr = h->h.guest_mode == HVT_MODE_LONG        ? HVT_SEG_L
                              : h->h.guest_mode == HVT_MODE_PROTECTED ? HVT_SEG_DB
                                                                      : 0;
        if (h->h.guest_mode == HVT_MODE_LONG)
                st.efer = X86_EFER_LMA;
        k->ctx0 = ctx_for_state(k, &st);

        if (!k->tracked) {
                note(k, NOTE_WRITES_UNTRACKED, 0, 0,
                     "the trace records no guest writes: code is taken to change only where an "
                     "exit shows it");
                if (scan_first) {
                        err = find_volatile(k, r);
                        hvt_reader_close(r);
                        r = NULL;
                        if (err != HVT_END_OF_TRACE && err != HVT_ERR_TRUNCATED &&
                            err != HVT_ERR_CORRUPT && err != HVT_OK) {
                                snprintf(res->error, sizeof(res->error), "%s", hvt_strerror(err));
                                status = -1;
                                goto out;
                        }
                        if (open_reader(res, path, &r)) {
                                status = -1;
                                goto out;
                        }
                } else {
                        if (code_init(&k->seen, k->dis, h->h.mem_size)) {
                                snprintf(res->error, sizeof(res->error), "out of memory");
                                status = -1;
                                goto out;
                        }
                        k->scanning = true;
                }
        }
        err = walk(k, r);
        if (err == CHECK_RESCAN) {
                status = CHECK_RESCAN;
        } else if (err == -ENOMEM) {
                snprintf(res->error, sizeof(res->error), "out of memory");
                status = -1;
        } else if (err != HVT_END_OF_TRACE) {
                /* Judged what there was; the trace itself is damaged. */
                snprintf(res->error, sizeof(res->error), "%s", hvt_reader_message(r));
                status = -1;
        } else {
                res->readable = true;
        }
out:
        hvt_reader_close(r);
        for (uint32_t i = 0; k->judges && i < k->nvcpus; i++) {
                if (!k->judges[i])
                        continue;
                flow_free(&k->judges[i]->flow);
                flow_free(&k->judges[i]->nmi_flow);
                free(k->judges[i]);
        }
        free(k->judges);
        code_free(&k->code);
        if (k->scanning)
                code_free(&k->seen);
        disasm_close(k->dis);
        free(k);
        return status;
}

int check_trace_opts(const char *path, const struct check_opts *opts, struct check_result *res)
{
        int status = check_run(path, opts, res, false);

        if (status != CHECK_RESCAN)
                return status;
        check_result_free(res);
        return check_run(path, opts, res, true);
}

int check_trace(const char *path, struct check_result *res)
{
        return check_trace_opts(path, NULL, res);
}

void check_result_free(struct check_result *res)
{
        free(res->violations);
        free(res->undetermined);
        free(res->verdicts);
        memset(res, 0, sizeof(*res));
}
