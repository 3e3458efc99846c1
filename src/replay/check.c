// SPDX-License-Identifier: MIT
/*
 * hvreplay check: find every interrupt delivered inside an STI or MOV SS
 * shadow, deciding from the decoded instruction stream and never from the
 * backend's own report.  docs/checker.md explains the rules.
 *
 * Two passes over each trace.  The first gathers the code (initial image,
 * instruction bytes at exits) and the seeds of the recursive descent (every
 * RIP seen); the second walks the events, pairs injections with deliveries
 * and judges each delivery by the instruction that retired just before it.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "code.h"
#include "json.h"
#include "replay.h"

/* ---- findings --------------------------------------------------------------- */

static const char *const rule_names[] = {
        [RULE_NONE] = "none",
        [RULE_STI_SHADOW] = "sti-shadow",
        [RULE_MOVSS_SHADOW] = "mov-ss-shadow",
        [RULE_IF_CLEAR] = "if-clear",
        [RULE_REPORT_MISMATCH] = "report-mismatch",
        [RULE_LOST] = "lost-interrupt",
        [RULE_SPURIOUS] = "spurious-interrupt",
        [RULE_SECOND_SS] = "second-ss-load",
        [RULE_UNDETERMINED] = "undetermined",
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
        [UND_IF_UNKNOWN] = "if-unknown",
        [UND_SS_UNKNOWN] = "ss-load-unknown",
        [UND_STEP_UNKNOWN] = "step-unknown",
};
_Static_assert(sizeof(und_names) / sizeof(und_names[0]) == UND_COUNT, "name every reason");

const char *check_und_name(unsigned kind)
{
        return kind < UND_COUNT ? und_names[kind] : "?";
}

static const char *const note_names[] = {
        [NOTE_CONSERVATIVE] = "conservative-shadow-report",
        [NOTE_STI_IF_SET] = "sti-with-if-set",
        [NOTE_SECOND_SS] = "second-ss-load",
        [NOTE_LANDED_ELSEWHERE] = "landed-elsewhere",
        [NOTE_ENDED_PENDING] = "ended-with-injection-pending",
        [NOTE_BACKEND_RAISED] = "raised-by-backend-device",
};
_Static_assert(sizeof(note_names) / sizeof(note_names[0]) == NOTE_COUNT, "name every note");

const char *check_note_name(unsigned kind)
{
        return kind < NOTE_COUNT ? note_names[kind] : "?";
}

/* ---- per-exit summary --------------------------------------------------------- */

enum io_state { IO_NA, IO_PENDING, IO_DONE, IO_AMBIGUOUS, IO_UNKNOWN };

/* An instruction known to have run, with what we know about the moment before it. */
struct known_insn {
        bool valid;
        uint64_t addr;
        uint32_t ctx;
        int if_before;  /* 1, 0, or -1 unknown */
        int after_ssld; /* it ran in a MOV SS shadow: 1, 0, -1 unknown */
};

struct exit_sum {
        bool valid;
        uint64_t seq, pc, rip, rflags, intr;
        uint64_t gpr[16];
        uint32_t ctx;
        unsigned bits;
        uint16_t reason, cs;
        enum io_state io;
        int io_out;                /* 1 for OUT, 0 for IN */
        uint64_t io_addr;          /* the I/O instruction */
        bool hlt_done;             /* RIP past a HLT that exited */
        struct known_insn retired; /* single-step: ran just before this boundary */
};

struct pending_inj {
        struct trace_disk_inject in;
        struct exit_sum at; /* the exit it followed */
        bool entered;       /* single-step: the next step was in the handler */
        uint64_t entered_seq;
};

#define MAX_PENDING 1024

struct checker {
        const char *path;
        struct disasm *dis;
        struct code code;
        struct trace_header hdr;
        bool single_step;
        bool backend_irqs; /* an in-backend irqchip and devices raise interrupts too */
        unsigned policy;

        /* I/O completion convention learnt from unambiguous exits: [dir] done/pending counts. */
        uint64_t io_done[2], io_pending[2];

        struct exit_sum prev2, prev, cur; /* the last three exits, newest last */
        bool inject_after_prev;           /* an injection followed the previous exit */

        struct pending_inj pend[MAX_PENDING];
        size_t npend;

        struct {
                bool valid;
                struct trace_disk_deliver d;
                struct exit_sum probe; /* the probe exit: the interrupted context */
        } last_delivery;

        struct check_result *res;
};

/* ---- result bookkeeping ----------------------------------------------------- */

static struct check_finding *add_finding(struct checker *k, struct check_finding **arr, size_t *n,
                                         size_t *cap)
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
        (void)k;
        return &(*arr)[(*n)++];
}

static struct check_finding *violation(struct checker *k, unsigned rule)
{
        struct check_result *r = k->res;

        r->by_rule[rule]++;
        return add_finding(k, &r->violations, &r->nviolations, &r->violations_cap);
}

static struct check_finding *undetermined(struct checker *k)
{
        struct check_result *r = k->res;

        r->by_rule[RULE_UNDETERMINED]++;
        return add_finding(k, &r->undetermined, &r->nundetermined, &r->undetermined_cap);
}

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

/* ---- decoding helpers -------------------------------------------------------- */

static void insn_text(struct checker *k, uint64_t addr, uint32_t ctx, struct check_insn *out)
{
        struct disasm_insn insn;

        memset(out, 0, sizeof(*out));
        out->pc = addr;
        out->real = ctx < k->code.nctxs && !(k->code.ctxs[ctx].cr0 & X86_CR0_PE);
        out->cs_base = ctx < k->code.nctxs ? k->code.ctxs[ctx].cs_base : 0;
        out->bits = ctx < k->code.nctxs ? k->code.ctxs[ctx].bits : 16;
        if (ctx >= k->code.nctxs || code_decode(&k->code, &k->code.ctxs[ctx], addr, &insn)) {
                snprintf(out->text, sizeof(out->text), "(no code)");
                return;
        }
        out->len = insn.len;
        memcpy(out->bytes, insn.bytes, insn.len);
        snprintf(out->text, sizeof(out->text), "%.127s", insn.text);
        out->valid = true;
}

static uint32_t node_flags(struct checker *k, uint64_t addr, uint32_t ctx)
{
        struct disasm_insn insn;

        if (code_decode(&k->code, &k->code.ctxs[ctx], addr, &insn))
                return 0;
        return insn.flags;
}

/* POP SS does not exist in 64-bit code; a decoder that accepts it there is ignored. */
static bool shadows_ss(uint32_t flags, unsigned bits)
{
        if (flags & DISASM_MOV_SS)
                return true;
        return (flags & DISASM_POP_SS) && bits != 64;
}

/* ---- static facts from the recursive descent ------------------------------------ */

/* IF before the instruction at node: walk back to the nearest CLI/STI on every path. */
static int static_if_before(struct checker *k, struct code_node *start)
{
        uint32_t stack[256], seen[256];
        size_t sp = 0, nseen = 0;
        int result = -2; /* nothing found yet */

        for (uint32_t e = start->pred; e != CODE_NONE; e = k->code.edges[e].next)
                if (sp < 256)
                        stack[sp++] = k->code.edges[e].from;
        if (!sp || start->retsite)
                return -1;
        while (sp) {
                uint32_t idx = stack[--sp];
                struct code_node *n = &k->code.nodes[idx];
                int here;
                bool dup = false;

                for (size_t i = 0; i < nseen; i++)
                        dup |= seen[i] == idx;
                if (dup)
                        continue;
                if (nseen == 256)
                        return -1; /* too far: give up rather than guess */
                seen[nseen++] = idx;
                if (n->flags & DISASM_CLI)
                        here = 0;
                else if (n->flags & DISASM_STI)
                        here = 1;
                else if (n->flags & (DISASM_POPF | DISASM_IRET | DISASM_INT) || n->retsite ||
                         n->pred == CODE_NONE)
                        return -1; /* flags restored from memory, or the path is not known */
                else {
                        for (uint32_t e = n->pred; e != CODE_NONE; e = k->code.edges[e].next)
                                if (sp < 256)
                                        stack[sp++] = k->code.edges[e].from;
                        continue;
                }
                if (result == -2)
                        result = here;
                else if (result != here)
                        return -1;
        }
        return result < 0 ? -1 : result;
}

/* Whether the instruction at node itself ran in a MOV SS shadow: 1, 0 or -1. */
static int static_after_ssld(struct checker *k, struct code_node *n)
{
        int result = -2;

        if (n->pred == CODE_NONE)
                return -1;
        if (n->retsite)
                result = 0; /* a RET is not an SS load */
        for (uint32_t e = n->pred; e != CODE_NONE; e = k->code.edges[e].next) {
                struct code_node *p = &k->code.nodes[k->code.edges[e].from];
                int here = shadows_ss(p->flags, p->bits) ? 1 : 0;

                if (result == -2)
                        result = here;
                else if (result != here)
                        return -1;
        }
        return result;
}

/* ---- verdicts --------------------------------------------------------------------- */

struct verdict {
        unsigned rule; /* RULE_NONE, RULE_STI_SHADOW, RULE_MOVSS_SHADOW, RULE_SECOND_SS,
                          RULE_UNDETERMINED */
        unsigned und;  /* enum check_und when undetermined */
        char reason[240];
        bool have_prev;
        uint64_t prev_addr;
        uint32_t prev_ctx;
        int if_before;
};

/* The verdict for one instruction known to have run just before the boundary. */
static void judge_insn(struct checker *k, const struct known_insn *ki, struct verdict *v)
{
        uint32_t flags = node_flags(k, ki->addr, ki->ctx);
        unsigned bits = k->code.ctxs[ki->ctx].bits;

        memset(v, 0, sizeof(*v));
        v->have_prev = true;
        v->prev_addr = ki->addr;
        v->prev_ctx = ki->ctx;
        v->if_before = ki->if_before;
        if (flags & DISASM_STI) {
                if (ki->if_before == 0) {
                        v->rule = RULE_STI_SHADOW;
                } else if (ki->if_before == 1) {
                        v->rule = RULE_NONE; /* STI with IF already set: no shadow */
                } else {
                        v->rule = RULE_UNDETERMINED;
                        v->und = UND_IF_UNKNOWN;
                        snprintf(v->reason, sizeof(v->reason),
                                 "IF before the STI at 0x%" PRIx64 " unknown", ki->addr);
                }
        } else if (shadows_ss(flags, bits)) {
                if (ki->after_ssld == 0) {
                        v->rule = RULE_MOVSS_SHADOW;
                } else if (ki->after_ssld == 1) {
                        v->rule = RULE_SECOND_SS;
                } else {
                        v->rule = RULE_UNDETERMINED;
                        v->und = UND_SS_UNKNOWN;
                        snprintf(v->reason, sizeof(v->reason),
                                 "cannot tell whether the SS load at 0x%" PRIx64
                                 " was itself in a MOV SS shadow",
                                 ki->addr);
                }
        } else {
                v->rule = RULE_NONE;
        }
}

/* A static predecessor as a known_insn (with IF and SS facts from the descent). */
static void known_from_node(struct checker *k, struct code_node *n, struct known_insn *ki)
{
        ki->valid = true;
        ki->addr = n->addr;
        ki->ctx = n->ctx;
        ki->if_before = (n->flags & DISASM_STI) ? static_if_before(k, n) : -1;
        ki->after_ssld = shadows_ss(n->flags, n->bits) ? static_after_ssld(k, n) : -1;
}

static void append(char *buf, size_t len, const char *fmt, ...)
{
        size_t n = strlen(buf);
        va_list ap;

        if (n >= len - 1)
                return;
        va_start(ap, fmt);
        vsnprintf(buf + n, len - n, fmt, ap);
        va_end(ap);
}

/*
 * The verdict for a boundary at linear pc from every instruction that can run
 * just before it: the static predecessors, a RET for return sites, and
 * `extra` (the IRET of the previous interrupt) when given.
 */
static void judge_static(struct checker *k, uint64_t pc, unsigned bits,
                         const struct known_insn *extra, struct verdict *v)
{
        struct code_node *n = code_node(&k->code, pc, bits);
        struct verdict one, first;
        char list[200] = "";
        int count = 0;
        bool differ = false;

        memset(v, 0, sizeof(*v));
        if (!n || n->status != CODE_OK || (n->pred == CODE_NONE && !n->retsite && !extra)) {
                v->rule = RULE_UNDETERMINED;
                v->und = UND_NO_CODE;
                snprintf(v->reason, sizeof(v->reason),
                         "no decoded code leads to 0x%" PRIx64 " (code missing from the trace)",
                         pc);
                return;
        }
        memset(&first, 0, sizeof(first));
        for (uint32_t e = n->pred; e != CODE_NONE; e = k->code.edges[e].next) {
                struct known_insn ki = { 0 };

                known_from_node(k, &k->code.nodes[k->code.edges[e].from], &ki);
                judge_insn(k, &ki, &one);
                if (!count++)
                        first = one;
                else if (one.rule != first.rule)
                        differ = true;
                append(list, sizeof(list), "%s0x%" PRIx64 " (%s)", count > 1 ? ", " : "", ki.addr,
                       check_rule_name(one.rule));
        }
        if (n->retsite) {
                if (!count++)
                        memset(&first, 0, sizeof(first)), first.rule = RULE_NONE;
                else if (first.rule != RULE_NONE)
                        differ = true;
                append(list, sizeof(list), "%sa RET (none)", count > 1 ? ", " : "");
        }
        if (extra) {
                judge_insn(k, extra, &one);
                if (!count++)
                        first = one;
                else if (one.rule != first.rule)
                        differ = true;
                append(list, sizeof(list), "%sthe IRET of the previous interrupt (%s)",
                       count > 1 ? ", " : "", check_rule_name(one.rule));
        }
        if (differ) {
                v->rule = RULE_UNDETERMINED;
                v->und = UND_PREDECESSORS;
                snprintf(v->reason, sizeof(v->reason),
                         "several instructions can run just before it, with different verdicts: "
                         "%.160s",
                         list);
                return;
        }
        *v = first;
        if (count > 1)
                v->have_prev = first.have_prev; /* all agree: show the first */
}

/* ---- I/O exits: which instruction, and did the backend complete it? -------------- */

static void classify_io(struct checker *k, const struct trace_exit *ex, struct exit_sum *s)
{
        const struct code_ctx *ctx = &k->code.ctxs[s->ctx];
        struct disasm_io_site done, pending;
        uint8_t code[30];
        size_t before = s->pc - ctx->cs_base >= 15 ? 15 : (size_t)(s->pc - ctx->cs_base), n;
        int dir = ex->u.io.io.dir == TRACE_IO_OUT;

        n = code_read(&k->code, ctx, s->pc - before, code, before);
        if (n < before) {
                memmove(code + (before - n), code, n);
                memset(code, 0x90, before - n); /* unreadable: cannot end an I/O instruction */
        }
        memcpy(code + before, ex->insn, ex->insn_len);
        disasm_io_candidates(k->dis, s->bits, code, before + ex->insn_len, before,
                             (s->pc - ctx->cs_base), dir, ex->u.io.io.port, ex->u.io.io.size, &done,
                             &pending);
        if (done.found && !pending.found) {
                s->io = IO_DONE;
                s->io_addr = s->pc - done.insn.len;
        } else if (pending.found && !done.found) {
                s->io = IO_PENDING;
                s->io_addr = s->pc;
        } else if (done.found) {
                s->io = IO_AMBIGUOUS;
                s->io_addr = s->pc - done.insn.len; /* resolved with the learnt convention */
        } else {
                s->io = IO_UNKNOWN;
        }
}

/* Resolve an ambiguous I/O exit with what unambiguous ones of the trace showed. */
static enum io_state io_resolved(const struct checker *k, const struct exit_sum *s, uint64_t *addr)
{
        int dir = s->io_out;

        if (s->io != IO_AMBIGUOUS)
                return s->io;
        if (k->io_done[dir] && !k->io_pending[dir])
                return IO_DONE; /* io_addr already points at the completed reading */
        if (k->io_pending[dir] && !k->io_done[dir]) {
                *addr = s->pc;
                return IO_PENDING;
        }
        return IO_UNKNOWN;
}

static bool hlt_before(struct checker *k, const struct exit_sum *s)
{
        uint8_t b = 0;

        return code_read(&k->code, &k->code.ctxs[s->ctx], s->pc - 1, &b, 1) == 1 && b == 0xf4;
}

/* ---- pass 1: code and seeds ------------------------------------------------------- */

static void summarize(struct checker *k, const struct trace_exit *ex, struct exit_sum *s,
                      bool learn);

static uint32_t ctx_for_state(struct checker *k, const struct trace_vcpu_state *st)
{
        struct code_ctx ctx = code_ctx_of(st);

        return code_ctx_add(&k->code, &ctx);
}

static int pass1(struct checker *k, struct trace_reader *r)
{
        struct trace_vcpu_state last = { 0 };
        struct trace_event ev;
        bool have_exit = false;
        int err;

        while ((err = trace_reader_next(r, &ev)) == TRACE_OK) {
                switch (ev.type) {
                case TRACE_REC_MEMORY:
                        code_load(&k->code, ev.memory.gpa, ev.memory.data, ev.memory.len);
                        break;
                case TRACE_REC_EXIT: {
                        const struct trace_exit *ex = &ev.exit;
                        uint64_t pc = trace_state_pc(&ex->st);

                        struct exit_sum sum;

                        code_overlay(&k->code, pc, ex->insn, ex->insn_len);
                        code_seed(&k->code, pc, ctx_for_state(k, &ex->st));
                        /* Learn the backend's I/O convention from the unambiguous exits. */
                        if (ex->reason == TRACE_EXIT_IO)
                                summarize(k, ex, &sum, true);
                        last = ex->st;
                        have_exit = true;
                        break;
                }
                case TRACE_REC_DELIVER:
                        if (have_exit) {
                                struct code_ctx ctx = code_ctx_of(&last);

                                if (ev.deliver.frame_bits != 64)
                                        ctx.cs_base = ev.deliver.cs_base;
                                code_seed(&k->code, ev.deliver.cs_base + ev.deliver.ip,
                                          code_ctx_add(&k->code, &ctx));
                        }
                        break;
                default: break;
                }
        }
        return err;
}

/* ---- pass 2: the events ------------------------------------------------------------ */

static void summarize(struct checker *k, const struct trace_exit *ex, struct exit_sum *s,
                      bool learn)
{
        memset(s, 0, sizeof(*s));
        s->valid = true;
        s->seq = ex->seq;
        s->pc = trace_state_pc(&ex->st);
        s->rip = ex->st.rip;
        s->cs = ex->st.seg[TRACE_CS].selector;
        s->rflags = ex->st.rflags;
        s->intr = ex->st.intr;
        memcpy(s->gpr, ex->st.gpr, sizeof(s->gpr));
        s->ctx = ctx_for_state(k, &ex->st);
        s->bits = trace_state_code_bits(&ex->st);
        s->reason = ex->reason;
        if (ex->reason == TRACE_EXIT_IO) {
                s->io_out = ex->u.io.io.dir == TRACE_IO_OUT;
                classify_io(k, ex, s);
                if (learn && s->io == IO_DONE)
                        k->io_done[s->io_out]++;
                else if (learn && s->io == IO_PENDING)
                        k->io_pending[s->io_out]++;
        }
        if (ex->reason == TRACE_EXIT_HLT)
                s->hlt_done = hlt_before(k, s);
}

/* Single-step: what ran between the previous exit and this one. */
static void step_retired(struct checker *k, struct exit_sum *cur)
{
        struct exit_sum *prev = &k->prev;
        struct disasm_insn insn;
        uint64_t addr;

        cur->retired.valid = false;
        if (!prev->valid || k->inject_after_prev)
                return; /* first exit, or control went to an interrupt handler */
        if (cur->pc == prev->pc &&
            ((cur->reason == TRACE_EXIT_IO && io_resolved(k, cur, &addr) == IO_PENDING) ||
             cur->reason == TRACE_EXIT_INTR)) {
                cur->retired = prev->retired; /* nothing ran: the same boundary */
                return;
        }
        addr = prev->pc;
        if (code_decode(&k->code, &k->code.ctxs[prev->ctx], addr, &insn))
                return;
        /* Consistency: the next boundary must be a successor of what ran. */
        if (!(insn.flags & (DISASM_RET | DISASM_IRET | DISASM_INT | DISASM_FAR)) &&
            !((insn.flags & (DISASM_JUMP | DISASM_CALL)) && !insn.has_target)) {
                uint64_t fall = addr + insn.len;

                if (k->code.ctxs[prev->ctx].bits == 16)
                        fall = k->code.ctxs[prev->ctx].cs_base +
                               ((fall - k->code.ctxs[prev->ctx].cs_base) & 0xffff);
                if (cur->pc != fall && !(insn.has_target && cur->pc == insn.target))
                        return;
        }
        cur->retired.valid = true;
        cur->retired.addr = addr;
        cur->retired.ctx = prev->ctx;
        cur->retired.if_before = (prev->rflags & X86_RFLAGS_IF) ? 1 : 0;
        cur->retired.after_ssld =
                prev->retired.valid
                        ? shadows_ss(node_flags(k, prev->retired.addr, prev->retired.ctx),
                                     k->code.ctxs[prev->retired.ctx].bits)
                        : -1;
}

/*
 * What ran just before the boundary of exit s, when the exit itself says:
 * the I/O instruction the backend completed, or the HLT it stopped after.
 */
static bool exit_prev(struct checker *k, const struct exit_sum *s, struct known_insn *ki)
{
        uint64_t addr = s->io_addr;

        memset(ki, 0, sizeof(*ki));
        if (k->single_step && s->retired.valid) {
                *ki = s->retired;
                return true;
        }
        if (s->reason == TRACE_EXIT_IO && io_resolved(k, s, &addr) == IO_DONE) {
                ki->valid = true;
                ki->addr = addr;
        } else if (s->reason == TRACE_EXIT_HLT && s->hlt_done) {
                ki->valid = true;
                ki->addr = s->pc - 1;
        } else {
                return false;
        }
        ki->ctx = s->ctx;
        ki->if_before = -1;  /* neither is an STI */
        ki->after_ssld = -1; /* ... nor an SS load */
        return true;
}

static bool iret_possible(const struct checker *k, const struct exit_sum *now, uint64_t pc);
static void iret_insn(const struct checker *k, const struct exit_sum *now, struct known_insn *ki);

/* The boundary an exit stands at (for a pending I/O exit: before that instruction). */
static void exit_verdict(struct checker *k, const struct exit_sum *s, struct verdict *v)
{
        struct known_insn iret;

        struct known_insn ki;

        if (exit_prev(k, s, &ki)) {
                judge_insn(k, &ki, v);
                return;
        }
        if (k->single_step) {
                memset(v, 0, sizeof(*v));
                v->rule = RULE_UNDETERMINED;
                v->und = UND_STEP_UNKNOWN;
                snprintf(v->reason, sizeof(v->reason), "the step before #%" PRIu64 " is not known",
                         s->seq);
                return;
        }
        /* The last interrupt's IRET may have returned right here. */
        iret_insn(k, s, &iret);
        judge_static(k, s->pc, s->bits, iret_possible(k, s, s->pc) ? &iret : NULL, v);
}

/* Backend reports vs the decoded stream, at every exit. */
static void cross_check_exit(struct checker *k, const struct exit_sum *s)
{
        bool reports_shadow = (s->intr & TRACE_INTR_VALID_SHADOW) &&
                              (s->intr & (TRACE_INTR_STI_SHADOW | TRACE_INTR_MOVSS_SHADOW));
        bool says_open = ((s->intr & TRACE_INTR_VALID_SHADOW) && !reports_shadow) ||
                         ((s->intr & TRACE_INTR_VALID_READY) && (s->intr & TRACE_INTR_READY));
        struct check_finding *f;
        struct verdict v;

        if (!(s->intr & (TRACE_INTR_VALID_SHADOW | TRACE_INTR_VALID_READY)))
                return;
        exit_verdict(k, s, &v);
        if ((v.rule == RULE_STI_SHADOW || v.rule == RULE_MOVSS_SHADOW) && says_open) {
                f = violation(k, RULE_REPORT_MISMATCH);
                if (!f)
                        return;
                f->rule = RULE_REPORT_MISMATCH;
                f->shadow_rule = v.rule;
                f->event = s->seq;
                f->pc = s->pc;
                f->rip = s->rip;
                f->cs = s->cs;
                f->bits = s->bits;
                f->intr = s->intr;
                f->policy = k->policy;
                if (v.have_prev)
                        insn_text(k, v.prev_addr, v.prev_ctx, &f->prev);
                insn_text(k, s->pc, s->ctx, &f->at);
                f->if_before = v.if_before;
        } else if (v.rule == RULE_NONE && reports_shadow) {
                note(k, NOTE_CONSERVATIVE, s->seq, s->pc,
                     "#%" PRIu64 " at 0x%" PRIx64 ": shadow=%s reported where none is required",
                     s->seq, s->pc, trace_shadow_name(s->intr));
        }
}

/* The last delivery's IRET as an instruction that ran (it creates no shadow). */
static void iret_insn(const struct checker *k, const struct exit_sum *now, struct known_insn *ki)
{
        memset(ki, 0, sizeof(*ki));
        ki->valid = true;
        ki->addr = k->last_delivery.probe.pc; /* shown as the handler */
        ki->ctx = now->ctx;
        ki->if_before = -1;
        ki->after_ssld = 0;
}

/* Whether the interrupted context at exit `now` is exactly what the last IRET restored. */
static bool iret_possible(const struct checker *k, const struct exit_sum *now, uint64_t pc)
{
        const struct trace_disk_deliver *d = &k->last_delivery.d;
        const struct exit_sum *probe = &k->last_delivery.probe;

        if (!k->last_delivery.valid || d->cs_base + d->ip != pc)
                return false;
        /*
         * Handlers restore the interrupted context: if any register differs
         * from the probe's (taken at the handler's first instruction), code
         * ran after the IRET and the IRET is not what ran just before.
         */
        for (unsigned i = 0; i < 16; i++)
                if (i != TRACE_F_RSP && now->gpr[i] != probe->gpr[i])
                        return false;
        return true;
}

static void fill_delivery_finding(struct checker *k, struct check_finding *f, unsigned rule,
                                  const struct trace_disk_deliver *d, const struct pending_inj *pi,
                                  const struct verdict *v, uint32_t ctx)
{
        f->rule = rule;
        f->event = d->seq;
        f->vector = d->vector;
        f->pc = d->cs_base + d->ip;
        f->rip = d->ip;
        f->cs = d->cs;
        f->bits = d->frame_bits == 64 ? 64 : k->code.ctxs[ctx].bits;
        f->flags = d->flags;
        f->intr = pi ? pi->in.intr : 0;
        f->have_intr = pi != NULL;
        f->policy = pi ? pi->in.policy : k->policy;
        f->if_before = v ? v->if_before : -1;
        if (v && v->have_prev)
                insn_text(k, v->prev_addr, v->prev_ctx, &f->prev);
        insn_text(k, f->pc, ctx, &f->at);
        if (v && v->reason[0])
                snprintf(f->reason, sizeof(f->reason), "%s", v->reason);
        if (v)
                f->und_kind = v->und;
}

/*
 * The injection a delivery answers: the one made at the exit right before
 * the delivering entry if there is one, else the oldest outstanding one of
 * that vector.
 */
static bool take_injection(struct checker *k, const struct trace_disk_deliver *d,
                           const struct exit_sum *at, struct pending_inj *out)
{
        size_t pick = k->npend;

        for (size_t i = 0; i < k->npend; i++) {
                if (d->vector_from != TRACE_VEC_UNKNOWN && k->pend[i].in.vector != d->vector)
                        continue;
                if (pick == k->npend)
                        pick = i;
                if (at && k->pend[i].in.after_seq == at->seq) {
                        pick = i;
                        break;
                }
        }
        if (pick == k->npend)
                return false;
        *out = k->pend[pick];
        memmove(&k->pend[pick], &k->pend[pick + 1], (k->npend - pick - 1) * sizeof(k->pend[0]));
        k->npend--;
        return true;
}

/*
 * Where the entry after exit `at` lands before any interrupt is taken, and
 * what ran just before that point; false if unknown.
 */
static bool entry_prev(struct checker *k, const struct exit_sum *at, uint64_t *landing,
                       struct known_insn *ki)
{
        uint64_t addr = at->io_addr;

        *landing = at->pc;
        memset(ki, 0, sizeof(*ki));
        if (at->reason == TRACE_EXIT_IO && io_resolved(k, at, &addr) == IO_PENDING) {
                struct disasm_insn insn;

                /* The backend completes the I/O instruction first: it is the one before. */
                if (code_decode(&k->code, &k->code.ctxs[at->ctx], addr, &insn))
                        return false;
                *landing = addr + insn.len;
                ki->valid = true;
                ki->addr = addr;
                ki->ctx = at->ctx;
                ki->if_before = -1;
                ki->after_ssld = -1;
                return true;
        }
        return exit_prev(k, at, ki);
}

/*
 * Judge delivery d.  `probe` is the exit of the handler's probe (NULL when
 * inferred from single-stepping), `at` the exit just before the entry that
 * delivered it (the vCPU state the interrupt interrupted).
 */
static void judge_delivery(struct checker *k, const struct trace_disk_deliver *d,
                           const struct exit_sum *probe, const struct exit_sum *at)
{
        uint64_t pc = d->cs_base + d->ip, landing = 0;
        struct known_insn ki, iret;
        struct check_finding *f;
        struct pending_inj pi;
        struct verdict v;
        uint32_t ctx;

        bool have_inj;

        k->res->deliveries++;
        have_inj = take_injection(k, d, at, &pi);
        if (!have_inj && k->backend_irqs) {
                /* The backend's own devices (a timer) raise interrupts hvrec never saw. */
                memset(&pi, 0, sizeof(pi));
                note(k, NOTE_BACKEND_RAISED, d->seq, pc,
                     "#%" PRIu64 ": vector 0x%02x came from the backend's own devices", d->seq,
                     d->vector);
        } else if (!have_inj) {
                struct code_ctx c = k->code.ctxs[probe ? probe->ctx : 0];

                if (d->frame_bits != 64)
                        c.cs_base = d->cs_base;
                ctx = code_ctx_add(&k->code, &c);
                f = violation(k, RULE_SPURIOUS);
                if (f)
                        fill_delivery_finding(k, f, RULE_SPURIOUS, d, NULL, NULL, ctx);
                goto out;
        }
        if (!at || !at->valid)
                at = &pi.at; /* no exit between: the injection's own */
        if (!at->valid && !probe) {
                memset(&v, 0, sizeof(v));
                v.rule = RULE_UNDETERMINED;
                v.und = UND_NO_CODE;
                snprintf(v.reason, sizeof(v.reason), "no exit tells the mode of 0x%" PRIx64, pc);
                ctx = 0;
                goto judged;
        }
        if (!at->valid)
                at = probe; /* only the probe's state: the mode, not what ran */
        ctx = at->ctx;
        if (at->valid && entry_prev(k, at, &landing, &ki) && landing == pc) {
                judge_insn(k, &ki, &v);
        } else if (k->single_step && at->valid && landing == pc) {
                memset(&v, 0, sizeof(v));
                v.rule = RULE_UNDETERMINED;
                v.und = UND_STEP_UNKNOWN;
                snprintf(v.reason, sizeof(v.reason), "the step before #%" PRIu64 " is not known",
                         at->seq);
        } else {
                bool extra = iret_possible(k, at, pc);

                /* An in-kernel irqchip injects whenever the guest allows: no landing to expect. */
                if (at != probe && landing != pc && !k->backend_irqs)
                        note(k, NOTE_LANDED_ELSEWHERE, d->seq, pc,
                             "#%" PRIu64 ": the entry after #%" PRIu64 " was at 0x%" PRIx64
                             ", the interrupt landed at 0x%" PRIx64,
                             d->seq, at->seq, landing, pc);
                iret_insn(k, at, &iret);
                judge_static(k, pc, at->bits, extra ? &iret : NULL, &v);
        }

judged:
        if (!have_inj)
                pi.in.policy = (uint8_t)k->policy;
        if (!(d->flags & X86_RFLAGS_IF)) {
                f = violation(k, RULE_IF_CLEAR);
                if (f)
                        fill_delivery_finding(k, f, RULE_IF_CLEAR, d, have_inj ? &pi : NULL, &v,
                                              ctx);
        } else if (v.rule == RULE_STI_SHADOW || v.rule == RULE_MOVSS_SHADOW) {
                f = violation(k, v.rule);
                if (f)
                        fill_delivery_finding(k, f, v.rule, d, have_inj ? &pi : NULL, &v, ctx);
        } else if (v.rule == RULE_UNDETERMINED) {
                f = undetermined(k);
                if (f)
                        fill_delivery_finding(k, f, RULE_UNDETERMINED, d, have_inj ? &pi : NULL, &v,
                                              ctx);
        } else if (v.rule == RULE_SECOND_SS) {
                note(k, NOTE_SECOND_SS, d->seq, pc,
                     "#%" PRIu64 ": delivered after the second of two SS loads (not checked)",
                     d->seq);
        } else if (v.have_prev && v.if_before == 1 &&
                   (node_flags(k, v.prev_addr, v.prev_ctx) & DISASM_STI)) {
                note(k, NOTE_STI_IF_SET, d->seq, pc,
                     "#%" PRIu64
                     ": delivered after an STI executed with IF already set (no shadow)",
                     d->seq);
        }
out:
        if (probe) {
                k->last_delivery.valid = true;
                k->last_delivery.d = *d;
                k->last_delivery.probe = *probe;
        }
}

/*
 * Single-step traces need no probe: the step after an injection that stands
 * at the vector's handler is the delivery.  Judge those the probe did not
 * report (called when the next record shows no DELIVER followed).
 */
static void infer_deliveries(struct checker *k)
{
        for (size_t i = 0; i < k->npend; i++) {
                struct pending_inj *pi = &k->pend[i];
                struct trace_disk_deliver d = { 0 };
                struct known_insn ki;
                uint64_t landing;

                if (!pi->entered)
                        continue;
                d.seq = pi->entered_seq;
                d.vector = pi->in.vector;
                d.vector_from = TRACE_VEC_INJECTED;
                d.flags = pi->at.rflags;
                d.cs = pi->at.cs;
                d.cs_base = k->code.ctxs[pi->at.ctx].cs_base;
                d.frame_bits = (uint8_t)pi->at.bits;
                d.handler = pi->in.handler;
                /* The interrupted point is where the entry after the injection lands. */
                if (!entry_prev(k, &pi->at, &landing, &ki))
                        landing = pi->at.pc;
                d.ip = landing - d.cs_base;
                pi->entered = false;
                judge_delivery(k, &d, NULL, &pi->at);
                i = (size_t)-1; /* judge_delivery removed an entry: rescan */
        }
}

/* Whether the instruction at addr is the delivery probe (an OUT to port 0xE2). */
static bool probe_at(struct checker *k, uint64_t addr, uint32_t ctx)
{
        struct disasm_insn insn;

        return !code_decode(&k->code, &k->code.ctxs[ctx], addr, &insn) &&
               disasm_is_io_insn(&insn, 1, 0xE2, 1) && insn.io_port == 0xE2;
}

static void lost(struct checker *k, const struct pending_inj *pi, uint64_t seen)
{
        struct check_finding *f = violation(k, RULE_LOST);

        if (!f)
                return;
        f->rule = RULE_LOST;
        f->event = pi->in.after_seq;
        f->vector = pi->in.vector;
        f->pc = pi->at.pc;
        f->rip = pi->at.rip;
        f->cs = pi->at.cs;
        f->bits = pi->at.bits;
        f->intr = pi->in.intr;
        f->have_intr = true;
        f->policy = pi->in.policy;
        snprintf(f->reason, sizeof(f->reason),
                 "at #%" PRIu64 " the backend was ready with nothing queued", seen);
}

static void on_exit_record(struct checker *k, const struct trace_exit *ex)
{
        struct exit_sum *cur = &k->cur;

        summarize(k, ex, cur, false);
        k->res->exits++;
        if (k->single_step)
                step_retired(k, cur);
        cross_check_exit(k, cur);

        /*
         * A backend that reports itself ready with nothing queued holds no
         * interrupt: one injected before this exit and not yet reported
         * delivered is lost.  (Between an injection and its probe the vCPU
         * is in the handler with IF=0, never ready.)
         */
        if ((cur->intr & TRACE_INTR_VALID_READY) && (cur->intr & TRACE_INTR_VALID_PENDING) &&
            (cur->intr & TRACE_INTR_READY) && !(cur->intr & TRACE_INTR_PENDING)) {
                for (size_t i = 0; i < k->npend;) {
                        if (k->pend[i].in.after_seq < cur->seq && !k->pend[i].entered) {
                                lost(k, &k->pend[i], cur->seq);
                                memmove(&k->pend[i], &k->pend[i + 1],
                                        (k->npend - i - 1) * sizeof(k->pend[0]));
                                k->npend--;
                        } else {
                                i++;
                        }
                }
        }
        for (size_t i = 0; i < k->npend; i++) {
                struct pending_inj *pi = &k->pend[i];

                /*
                 * The first step after the injection: in the handler means delivered,
                 * unless the handler starts with the probe, which will report it.
                 */
                if (k->single_step && k->prev.valid && pi->at.seq == k->prev.seq &&
                    pi->in.handler &&
                    (cur->pc == pi->in.handler ||
                     (cur->reason == TRACE_EXIT_IO && cur->io_addr == pi->in.handler)) &&
                    !probe_at(k, pi->in.handler, cur->ctx)) {
                        pi->entered = true;
                        pi->entered_seq = cur->seq;
                }
        }
        k->prev2 = k->prev;
        k->prev = *cur;
        k->inject_after_prev = false;
}

static void on_inject(struct checker *k, const struct trace_disk_inject *in)
{
        struct pending_inj *pi;

        k->res->injections++;
        k->inject_after_prev = true;
        if (k->npend == MAX_PENDING) {
                /* Far more outstanding than any backend queues: the oldest is lost. */
                lost(k, &k->pend[0], in->after_seq);
                memmove(&k->pend[0], &k->pend[1], (k->npend - 1) * sizeof(k->pend[0]));
                k->npend--;
        }
        pi = &k->pend[k->npend++];
        memset(pi, 0, sizeof(*pi));
        pi->in = *in;
        if (k->prev.valid && k->prev.seq == in->after_seq) {
                pi->at = k->prev;
        } else {
                pi->at.valid = false;
                pi->at.seq = in->after_seq;
                pi->at.pc = in->cs_base + in->rip;
                pi->at.rip = in->rip;
                pi->at.rflags = in->rflags;
                pi->at.intr = in->intr;
                pi->at.cs = in->cs;
                pi->at.ctx = k->prev.ctx;
                pi->at.bits = k->prev.bits;
        }
}

static void on_end(struct checker *k)
{
        infer_deliveries(k);
        /* Still outstanding: the trace ended before the backend showed where they went. */
        for (size_t i = 0; i < k->npend; i++)
                note(k, NOTE_ENDED_PENDING, k->pend[i].in.after_seq, k->pend[i].at.pc,
                     "vector 0x%02x injected after #%" PRIu64
                     " was still outstanding when the trace ended",
                     k->pend[i].in.vector, k->pend[i].in.after_seq);
        k->npend = 0;
}

static int pass2(struct checker *k, struct trace_reader *r)
{
        struct trace_event ev;
        int err;

        while ((err = trace_reader_next(r, &ev)) == TRACE_OK) {
                if (ev.type != TRACE_REC_DELIVER && k->single_step)
                        infer_deliveries(k);
                switch (ev.type) {
                case TRACE_REC_EXIT: on_exit_record(k, &ev.exit); break;
                case TRACE_REC_INJECT: on_inject(k, &ev.inject); break;
                case TRACE_REC_DELIVER:
                        /* The probe supersedes the single-step inference. */
                        for (size_t i = 0; i < k->npend; i++)
                                if (k->pend[i].in.vector == ev.deliver.vector)
                                        k->pend[i].entered = false;
                        if (k->prev.valid && k->prev.seq == ev.deliver.seq)
                                judge_delivery(k, &ev.deliver, &k->prev,
                                               k->prev2.valid ? &k->prev2 : NULL);
                        else
                                judge_delivery(k, &ev.deliver, NULL, NULL);
                        break;
                case TRACE_REC_END:
                        on_end(k);
                        k->res->have_end = true;
                        k->res->end_why = ev.end.e.why;
                        k->res->end_status = ev.end.e.status;
                        snprintf(k->res->end_message, sizeof(k->res->end_message), "%s",
                                 ev.end.message);
                        break;
                default: break;
                }
        }
        return err;
}

static int open_reader(struct check_result *res, const char *path, struct trace_reader **r)
{
        int err = trace_reader_open(r, path);

        if (err) {
                snprintf(res->error, sizeof(res->error), "%s", trace_reader_message(*r));
                trace_reader_close(*r);
                *r = NULL;
                return -1;
        }
        return 0;
}

int check_trace(const char *path, struct check_result *res)
{
        struct checker *k;
        struct trace_reader *r;
        const struct trace_header *h;
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
                trace_reader_close(r);
                return -1;
        }
        k->path = path;
        k->res = res;
        h = trace_reader_header(r);
        k->single_step = h->h.flags & TRACE_HDR_SINGLE_STEP;
        k->backend_irqs = h->h.backend_caps & TRACE_CAP_IRQCHIP;
        k->policy = h->h.inject_policy;
        res->single_step = k->single_step;
        res->policy = k->policy;
        snprintf(res->backend, sizeof(res->backend), "%s", h->str[TRACE_STR_BACKEND]);
        if (code_init(&k->code, k->dis, h->h.mem_size)) {
                snprintf(res->error, sizeof(res->error),
                         "cannot hold %" PRIu64 " bytes of guest memory", (uint64_t)h->h.mem_size);
                status = -1;
                goto out;
        }
        /* Context 0: the mode the guest started in, for events before any exit. */
        {
                struct trace_vcpu_state st = { 0 };

                if (h->h.guest_mode != TRACE_MODE_REAL)
                        st.cr0 = X86_CR0_PE;
                st.seg[TRACE_CS].attr = h->h.guest_mode == TRACE_MODE_LONG        ? TRACE_SEG_L
                                        : h->h.guest_mode == TRACE_MODE_PROTECTED ? TRACE_SEG_DB
                                                                                  : 0;
                if (h->h.guest_mode == TRACE_MODE_LONG)
                        st.efer = X86_EFER_LMA;
                code_seed(&k->code, h->h.entry, ctx_for_state(k, &st));
        }

        err = pass1(k, r);
        trace_reader_close(r);
        r = NULL;
        code_build(&k->code);
        res->indirect_jumps = k->code.indirect;
        res->first_indirect = k->code.first_indirect;

        if (open_reader(res, path, &r)) {
                status = -1;
                goto out;
        }
        err = pass2(k, r);
        if (err != TRACE_END_OF_TRACE) {
                /* Judged what there was; the trace itself is damaged. */
                snprintf(res->error, sizeof(res->error), "%s", trace_reader_message(r));
                status = -1;
        } else {
                res->readable = true;
        }
out:
        trace_reader_close(r);
        code_free(&k->code);
        disasm_close(k->dis);
        free(k);
        return status;
}

void check_result_free(struct check_result *res)
{
        free(res->violations);
        free(res->undetermined);
        memset(res, 0, sizeof(*res));
}
