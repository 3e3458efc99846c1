// SPDX-License-Identifier: MIT
/*
 * The shadow checker (src/replay/check.c) on small hand-built traces.
 *
 * Every trace here is written with the libhvtrace writer: a real-mode (or
 * long-mode) guest with code at 0x1000, an IVT/IDT entry for vector 0x30
 * pointing at a handler whose first instruction is the delivery probe
 * `out 0xe2, al`, and exit / inject / deliver records shaped like the ones
 * hvrec writes on KVM.  Nothing here needs /dev/kvm.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "../src/replay/check.h"
#include "../src/replay/code.h"
#include "helpers.h"

/* ---- constants ------------------------------------------------------------------ */

#define CODE     0x1000ull /* load address and entry */
#define HANDLER  0x1800ull /* vector 0x30's handler: out 0xe2, al; iret */
#define VEC      0x30
#define STACK    0x0f00ull
#define MEM_REAL 0x10000ull  /* 64 KiB */
#define MEM_LONG 0x200000ull /* 2 MiB */
#define PML4     0x8000ull
#define PDPT     0x9000ull
#define PD       0xa000ull
#define IDT64    0xb000ull

#define CR0_PE  0x00000001ull
#define CR0_PG  0x80000000ull
#define RFL_IF0 0x002ull /* reserved bit 1 only */
#define RFL_IF1 0x202ull

#define INTR_VALID                                                                               \
        (HVT_INTR_VALID_SHADOW | HVT_INTR_VALID_READY | HVT_INTR_VALID_IF | HVT_INTR_VALID_NMI | \
         HVT_INTR_VALID_PENDING)

/*
 * What KVM reports at an exit: IF as it is, the shadow the CPU holds, ready
 * when IF=1, no shadow and nothing queued.
 */
static uint32_t kvm_intr(int if_set, uint32_t shadow, int pending)
{
        uint32_t v = INTR_VALID | shadow;

        if (if_set)
                v |= HVT_INTR_IF;
        if (pending)
                v |= HVT_INTR_PENDING;
        else if (if_set && !shadow)
                v |= HVT_INTR_READY;
        return v;
}

#define OPEN     kvm_intr(1, 0, 0)                     /* IF=1, no shadow, ready */
#define STI_SH   kvm_intr(1, HVT_INTR_STI_SHADOW, 0)   /* right after STI */
#define MOVSS_SH kvm_intr(1, HVT_INTR_MOVSS_SHADOW, 0) /* right after MOV SS */
#define CLOSED   kvm_intr(0, 0, 0)                     /* IF=0 */

/* ---- temporary directory (one per test, removed by the fixture) ------------------ */

/* ---- trace builder ---------------------------------------------------------------- */

struct tb {
        uint32_t caps; /* extra backend caps for the header (set before tb_open) */
        char path[512];
        struct hvt_writer *w;
        uint8_t *mem;
        uint64_t mem_size;
        bool longmode;
        struct hvt_vcpu_state st; /* state of the next exit (updated by each write) */
        uint64_t seq;             /* the next exit's number */
        uint64_t time;
        uint64_t last_exit; /* number of the last exit written */
        struct hvt_vcpu_state last_st;
};

static void set_seg(struct hvt_disk_seg *s, uint16_t sel, uint64_t base, uint32_t limit,
                    uint16_t attr)
{
        s->selector = sel;
        s->base = base;
        s->limit = limit;
        s->attr = attr;
}

/*
 * Start a trace NAME with CODE at 0x1000.  `flags` are header flags
 * (HVT_HDR_SINGLE_STEP), `policy` the injection policy.
 */
static void tb_open_opts(struct tb *t, const char *name, bool longmode, uint32_t flags,
                         unsigned policy, const uint8_t *code, size_t code_len,
                         const struct hvt_writer_opts *opts)
{
        static const char *const argv[] = { "hvrec", "run", "test_check" };
        struct hvt_header h;
        int err;

        uint32_t caps = t->caps;

        memset(t, 0, sizeof(*t));
        t->caps = caps;
        snprintf(t->path, sizeof(t->path), "%s", hv_tmp(name));
        t->longmode = longmode;
        t->mem_size = longmode ? MEM_LONG : MEM_REAL;
        t->mem = calloc(1, t->mem_size);
        cr_assert_not_null(t->mem);
        cr_assert(code_len < HANDLER - CODE);
        memcpy(t->mem + CODE, code, code_len);

        if (!longmode) {
                /* IVT entry 0x30 -> 0000:HANDLER; handler: out 0xe2, al; iret */
                uint16_t ivt[2] = { (uint16_t)HANDLER, 0 };
                static const uint8_t handler[] = { 0xe6, 0xe2, 0xcf };

                memcpy(t->mem + VEC * 4, ivt, sizeof(ivt));
                memcpy(t->mem + HANDLER, handler, sizeof(handler));
        } else {
                /* Identity map of the first 2 MiB with one 2 MiB page. */
                uint64_t pml4e = PDPT | 3, pdpte = PD | 3, pde = 0 | 0x83;
                static const uint8_t handler[] = { 0xe6, 0xe2, 0x48, 0xcf }; /* ...; iretq */
                uint8_t gate[16] = { 0 };

                memcpy(t->mem + PML4, &pml4e, 8);
                memcpy(t->mem + PDPT, &pdpte, 8);
                memcpy(t->mem + PD, &pde, 8);
                memcpy(t->mem + HANDLER, handler, sizeof(handler));
                /* 64-bit interrupt gate: offset HANDLER, selector 8, P, type 0xe */
                gate[0] = (uint8_t)HANDLER;
                gate[1] = (uint8_t)(HANDLER >> 8);
                gate[2] = 8;
                gate[5] = 0x8e;
                memcpy(t->mem + IDT64 + VEC * 16, gate, sizeof(gate));
        }

        err = hvt_writer_open(&t->w, t->path, opts);
        cr_assert_eq(err, 0, "hvt_writer_open %s: %s", t->path, strerror(-err));
        memset(&h, 0, sizeof(h));
        h.h.load_addr = CODE;
        h.h.entry = CODE;
        h.h.mem_size = t->mem_size;
        h.h.seed = 1;
        h.h.guest_mode = longmode ? HVT_MODE_LONG : HVT_MODE_REAL;
        h.h.flags = flags;
        h.h.backend_caps = HVT_CAP_SINGLE_STEP | HVT_CAP_REPORT_SHADOW | HVT_CAP_REPORT_READY |
                           HVT_CAP_INJECT_QUEUE | HVT_CAP_KICK | HVT_CAP_WINDOW | t->caps;
        h.h.inject_policy = (uint16_t)policy;
        h.str[HVT_STR_TOOL_VERSION] = "test_check";
        h.str[HVT_STR_BACKEND] = "synthetic";
        h.str[HVT_STR_GUEST] = name;
        h.argv = argv;
        h.argc = 3;
        cr_assert_eq(hvt_write_header(t->w, &h), 0);
        cr_assert_eq(hvt_write_memory(t->w, 0, t->mem, t->mem_size), 0);

        /* The state at the entry. */
        if (!longmode) {
                const uint16_t data = HVT_SEG_P | HVT_SEG_S | 0x3;

                set_seg(&t->st.seg[HVT_CS], 0, 0, 0xffff, HVT_SEG_P | HVT_SEG_S | 0xb);
                for (unsigned s = 0; s < HVT_SREG_COUNT; s++)
                        if (s != HVT_CS)
                                set_seg(&t->st.seg[s], 0, 0, 0xffff, data);
                t->st.idt.limit = 0x3ff;
        } else {
                const uint16_t data = HVT_SEG_P | HVT_SEG_S | 0x3 | HVT_SEG_DB | HVT_SEG_G;

                set_seg(&t->st.seg[HVT_CS], 8, 0, 0xffffffff,
                        HVT_SEG_P | HVT_SEG_S | 0xb | HVT_SEG_L | HVT_SEG_G);
                for (unsigned s = 0; s < HVT_SREG_COUNT; s++)
                        if (s != HVT_CS)
                                set_seg(&t->st.seg[s], 0x10, 0, 0xffffffff, data);
                t->st.cr0 = CR0_PE | CR0_PG;
                t->st.cr3 = PML4;
                t->st.cr4 = 0x20;           /* PAE */
                t->st.efer = 0x100 | 0x400; /* LME | LMA */
                t->st.idt.base = IDT64;
                t->st.idt.limit = 0xfff;
        }
        t->st.gpr[HVT_F_RSP] = STACK;
        t->st.rip = CODE;
        t->st.rflags = RFL_IF0;
}

static void tb_open(struct tb *t, const char *name, uint32_t flags, unsigned policy,
                    const uint8_t *code, size_t code_len)
{
        tb_open_opts(t, name, false, flags, policy, code, code_len, NULL);
}

/* Write an exit: the current state with RIP, RFLAGS and the interruptibility given. */
static uint64_t tb_exit_full(struct tb *t, uint16_t reason, uint64_t rip, uint64_t rflags,
                             uint32_t intr, const struct hvt_disk_io *io, const uint8_t *io_data)
{
        struct hvt_exit e;
        uint64_t pc;

        memset(&e, 0, sizeof(e));
        t->st.rip = rip;
        t->st.rflags = rflags;
        t->st.intr = intr;
        t->time += 1000;
        e.seq = t->seq;
        e.time_ns = t->time;
        e.guest_ns = 500;
        e.reason = reason;
        e.raw_reason = reason;
        e.st = t->st;
        pc = hvt_state_pc(&t->st);
        cr_assert(pc + 15 <= t->mem_size);
        e.insn_len = 15;
        memcpy(e.insn, t->mem + pc, 15); /* identity mapped in both modes */
        if (reason == HVT_EXIT_IO) {
                e.u.io.io = *io;
                e.u.io.data = io_data;
        } else if (reason == HVT_EXIT_MMIO) {
                e.u.mmio.addr = 0xfee00000; /* a one-byte read outside RAM */
                e.u.mmio.len = 1;
        } else if (reason == HVT_EXIT_DEBUG) {
                e.u.debug.exception = 1;
                e.u.debug.pc = pc;
                e.u.debug.dr6 = 0xffff4ff0;
        }
        cr_assert_eq(hvt_write_exit(t->w, &e), 0);
        t->last_exit = t->seq;
        t->last_st = t->st;
        return t->seq++;
}

/*
 * The guest wrote `n` bytes at gpa during the run that ended at the last
 * exit: the image changes, and a WRITE record says so (traces with
 * HVT_HDR_WRITES).  With `record` false the write goes unrecorded.
 */
static void tb_write(struct tb *t, uint64_t gpa, const void *bytes, size_t n, bool record)
{
        cr_assert(gpa + n <= t->mem_size);
        memcpy(t->mem + gpa, bytes, n);
        if (record)
                cr_assert_eq(hvt_write_write(t->w, t->last_exit, gpa, t->mem + gpa, n), 0);
}

/* An exit with no data: INTR (a kick) in normal traces, DEBUG in single-step ones. */
static uint64_t tb_exit(struct tb *t, uint16_t reason, uint64_t rip, uint64_t rflags, uint32_t intr)
{
        return tb_exit_full(t, reason, rip, rflags, intr, NULL, NULL);
}

/* A port I/O exit (size 1, AL as data). */
static uint64_t tb_io(struct tb *t, uint64_t rip, uint64_t rflags, uint32_t intr, uint16_t port,
                      int dir)
{
        static uint8_t al;
        struct hvt_disk_io io = { .port = port, .size = 1, .dir = (uint8_t)dir, .count = 1 };

        al = (uint8_t)t->st.gpr[HVT_F_RAX];
        return tb_exit_full(t, HVT_EXIT_IO, rip, rflags, intr, &io, &al);
}

/* The recorder injects vector 0x30 after the last exit. */
/* An injection record after the last exit, in the state that exit left. */
static void tb_inject_of(struct tb *t, unsigned policy, uint64_t handler, uint8_t vector,
                         uint8_t method)
{
        struct hvt_disk_inject in;

        memset(&in, 0, sizeof(in));
        in.after_seq = t->last_exit;
        in.rip = t->last_st.rip;
        in.rflags = t->last_st.rflags;
        in.cs_base = t->last_st.seg[HVT_CS].base;
        in.cs = t->last_st.seg[HVT_CS].selector;
        in.handler = handler;
        in.intr = (uint32_t)t->last_st.intr;
        in.vector = vector;
        in.policy = (uint8_t)policy;
        in.method = method;
        in.source = HVT_SRC_OPTION;
        cr_assert_eq(hvt_write_inject(t->w, &in), 0);
}

static void tb_inject_to(struct tb *t, unsigned policy, uint64_t handler)
{
        tb_inject_of(t, policy, handler, VEC, HVT_INJ_QUEUE);
}

static void tb_inject(struct tb *t, unsigned policy)
{
        tb_inject_to(t, policy, HANDLER);
}

/*
 * The handler's probe exit (out 0xe2 completed: RIP past it, the frame
 * pushed, IF=0) and the deliver record for an interrupted ip/flags.
 * Returns the probe's exit number.  The state afterwards is the
 * interrupted one again (the IRET restored it).
 */
static uint64_t tb_probe_of(struct tb *t, uint64_t ip, uint64_t flags, uint8_t vector,
                            uint8_t dflags)
{
        struct hvt_vcpu_state saved = t->st;
        unsigned frame = t->longmode ? 40 : 6;
        struct hvt_disk_deliver d;
        uint64_t seq;

        t->st.gpr[HVT_F_RSP] -= frame;
        if (t->longmode) /* the IDT gate's CS: 64-bit code, whatever was interrupted */
                set_seg(&t->st.seg[HVT_CS], 8, 0, 0xffffffff,
                        HVT_SEG_P | HVT_SEG_S | 0xb | HVT_SEG_L | HVT_SEG_G);
        seq = tb_io(t, HANDLER + 2, RFL_IF0, CLOSED, 0xe2, HVT_IO_OUT);
        memset(&d, 0, sizeof(d));
        d.seq = seq;
        d.ip = ip;
        d.flags = flags;
        d.sp = saved.gpr[HVT_F_RSP];
        d.cs = saved.seg[HVT_CS].selector;
        d.cs_base = t->longmode ? 0 : saved.seg[HVT_CS].base;
        d.ss = saved.seg[HVT_SS].selector;
        d.handler = HANDLER;
        d.vector = vector;
        d.dflags = dflags;
        d.vector_from = HVT_VEC_TABLE;
        d.frame_bits = t->longmode ? 64 : 16;
        cr_assert_eq(hvt_write_deliver(t->w, &d), 0);
        t->st = saved;
        return seq;
}

static uint64_t tb_probe(struct tb *t, uint64_t ip, uint64_t flags)
{
        return tb_probe_of(t, ip, flags, VEC, 0);
}

/* The probe of a vector other than VEC (a guest #DB, say), no NMI. */
static uint64_t tb_probe_vec(struct tb *t, unsigned vector, uint64_t ip, uint64_t flags)
{
        return tb_probe_of(t, ip, flags, (uint8_t)vector, 0);
}

/* Inject after the last exit and have it delivered at ip with the last exit's flags. */
static uint64_t tb_interrupt(struct tb *t, unsigned policy, uint64_t ip)
{
        uint64_t flags = t->last_st.rflags;

        tb_inject(t, policy);
        return tb_probe(t, ip, flags);
}

static void tb_close(struct tb *t, bool end)
{
        if (end) {
                struct hvt_disk_end e = { .exits = t->seq,
                                          .wall_ns = t->time,
                                          .last_rip = t->st.rip,
                                          .why = HVT_END_GUEST_EXIT };

                cr_assert_eq(hvt_write_end(t->w, &e, "guest exited with status 0"), 0);
        }
        cr_assert_eq(hvt_writer_close(t->w), 0);
        t->w = NULL;
        free(t->mem);
        t->mem = NULL;
}

/* ---- checking --------------------------------------------------------------------- */

/* Everything the checker found, for assertion messages. */
static const char *summary(const struct check_result *r)
{
        static char buf[4096];
        size_t n = 0;

#define ADD(...)                                                                      \
        do {                                                                          \
                if (n < sizeof(buf))                                                  \
                        n += (size_t)snprintf(buf + n, sizeof(buf) - n, __VA_ARGS__); \
        } while (0)
        buf[0] = 0;
        ADD("[%" PRIu64 " deliveries, %" PRIu64 " injections; error '%s';", r->deliveries,
            r->injections, r->error);
        for (unsigned i = 1; i < RULE_COUNT; i++)
                if (r->by_rule[i])
                        ADD(" %s=%" PRIu64, check_rule_name(i), r->by_rule[i]);
        for (size_t i = 0; i < r->nviolations; i++)
                ADD("; V #%" PRIu64 " %s pc=0x%" PRIx64 " prev=%s0x%" PRIx64 " %s",
                    r->violations[i].event, check_rule_name(r->violations[i].rule),
                    r->violations[i].pc, r->violations[i].prev.valid ? "" : "(none)",
                    r->violations[i].prev.pc, r->violations[i].reason);
        for (size_t i = 0; i < r->nundetermined; i++)
                ADD("; U #%" PRIu64 " %s pc=0x%" PRIx64 " %s", r->undetermined[i].event,
                    check_und_name(r->undetermined[i].und_kind), r->undetermined[i].pc,
                    r->undetermined[i].reason);
        for (unsigned i = 0; i < NOTE_COUNT; i++)
                if (r->notes[i].count)
                        ADD("; note %s=%" PRIu64, check_note_name(i), r->notes[i].count);
        ADD("]");
#undef ADD
        return buf;
}

static void check_ok(const char *path, struct check_result *r)
{
        int rc = check_trace(path, r);

        cr_assert_eq(rc, 0, "check_trace(%s) = %d: %s", path, rc, r->error);
        cr_assert(r->opened && r->readable, "%s", summary(r));
}

/* by_rule is `n` for `rule` and zero for every other rule (RULE_NONE: all zero). */
static void expect_only(const struct check_result *r, unsigned rule, uint64_t n)
{
        for (unsigned i = 1; i < RULE_COUNT; i++)
                cr_expect_eq(r->by_rule[i], i == rule ? n : 0,
                             "%s: expected %" PRIu64 ", got %" PRIu64 " %s", check_rule_name(i),
                             i == rule ? n : 0, r->by_rule[i], summary(r));
        if (rule != RULE_UNDETERMINED)
                cr_expect_eq(r->nviolations, rule == RULE_NONE ? 0 : n, "%s", summary(r));
}

/* The n-th violation with `rule` (NULL if none). */
static const struct check_finding *find_violation(const struct check_result *r, unsigned rule,
                                                  size_t nth)
{
        for (size_t i = 0; i < r->nviolations; i++)
                if (r->violations[i].rule == rule && !nth--)
                        return &r->violations[i];
        return NULL;
}

static void expect_violation(const struct check_result *r, unsigned rule, uint64_t pc,
                             uint64_t prev_pc)
{
        const struct check_finding *f = find_violation(r, rule, 0);

        cr_assert_not_null(f, "no %s finding: %s", check_rule_name(rule), summary(r));
        cr_expect_eq(f->rule, rule);
        cr_expect_eq(f->pc, pc, "pc 0x%" PRIx64 " instead of 0x%" PRIx64 ": %s", f->pc, pc,
                     summary(r));
        cr_expect(f->prev.valid, "no previous instruction: %s", summary(r));
        cr_expect_eq(f->prev.pc, prev_pc, "prev.pc 0x%" PRIx64 " instead of 0x%" PRIx64 ": %s",
                     f->prev.pc, prev_pc, summary(r));
}

static void expect_undetermined(const struct check_result *r, size_t i, unsigned kind, uint64_t pc)
{
        cr_assert_gt(r->nundetermined, i, "no undetermined finding %zu: %s", i, summary(r));
        cr_expect_eq(r->undetermined[i].rule, RULE_UNDETERMINED);
        cr_expect_eq(r->undetermined[i].und_kind, kind, "%s instead of %s: %s",
                     check_und_name(r->undetermined[i].und_kind), check_und_name(kind), summary(r));
        cr_expect_eq(r->undetermined[i].pc, pc, "pc 0x%" PRIx64 " instead of 0x%" PRIx64 ": %s",
                     r->undetermined[i].pc, pc, summary(r));
}

/* ---- 1. sti-shadow ------------------------------------------------------------------ */

/* 1000 cli; 1001 sti; 1002 inc ax; 1003 jmp $ */
static const uint8_t cli_sti_inc[] = { 0xfa, 0xfb, 0x40, 0xeb, 0xfe };

Test(check, sti_shadow_static)
{
        struct check_result r;
        struct tb t = { 0 };

        tb_open(&t, "sti.zst", 0, HVT_POLICY_EAGER, cli_sti_inc, sizeof(cli_sti_inc));
        tb_exit(&t, HVT_EXIT_INTR, 0x1002, RFL_IF1, STI_SH); /* kicked right after the STI */
        tb_interrupt(&t, HVT_POLICY_EAGER, 0x1002);
        t.st.gpr[HVT_F_RAX]++;
        tb_exit(&t, HVT_EXIT_INTR, 0x1003, RFL_IF1, OPEN);
        tb_close(&t, true);

        check_ok(t.path, &r);
        cr_expect_eq(r.deliveries, 1);
        cr_expect_eq(r.injections, 1);
        cr_expect_eq(r.exits, 3);
        cr_expect(!r.single_step);
        expect_only(&r, RULE_STI_SHADOW, 1);
        expect_violation(&r, RULE_STI_SHADOW, 0x1002, 0x1001);
        cr_expect_eq(r.violations[0].event, 1, "the probe's exit: %s", summary(&r));
        cr_expect_eq(r.violations[0].vector, VEC);
        cr_expect_eq(r.violations[0].if_before, 0);
        cr_expect_eq(r.violations[0].prev.bytes[0], 0xfb, "prev is not the STI");
        cr_expect_eq(r.nundetermined, 0, "%s", summary(&r));
        check_result_free(&r);
}

/* ---- 2. STI with IF already set ------------------------------------------------------ */

Test(check, sti_with_if_set_is_legal)
{
        /* 1000 sti; 1001 nop; 1002 sti; 1003 inc ax; 1004 jmp $ */
        static const uint8_t code[] = { 0xfb, 0x90, 0xfb, 0x40, 0xeb, 0xfe };
        struct check_result r;
        struct tb t = { 0 };

        tb_open(&t, "sti-if-set.zst", 0, HVT_POLICY_EAGER, code, sizeof(code));
        tb_exit(&t, HVT_EXIT_INTR, 0x1003, RFL_IF1, OPEN);
        tb_interrupt(&t, HVT_POLICY_EAGER, 0x1003);
        tb_close(&t, true);

        check_ok(t.path, &r);
        cr_expect_eq(r.deliveries, 1);
        expect_only(&r, RULE_NONE, 0);
        cr_expect_eq(r.nundetermined, 0, "%s", summary(&r));
        cr_expect_eq(r.notes[NOTE_STI_IF_SET].count, 1, "%s", summary(&r));
        cr_expect_eq(r.notes[NOTE_STI_IF_SET].first_seq, 1);
        cr_expect_eq(r.notes[NOTE_STI_IF_SET].first_pc, 0x1003);
        check_result_free(&r);
}

/* ---- 3. IF before the STI unknown ------------------------------------------------------- */

Test(check, sti_if_unknown_from_entry)
{
        /* 1000 sti (the entry: nothing before it); 1001 inc ax; 1002 jmp $ */
        static const uint8_t code[] = { 0xfb, 0x40, 0xeb, 0xfe };
        struct check_result r;
        struct tb t = { 0 };

        tb_open(&t, "sti-entry.zst", 0, HVT_POLICY_EAGER, code, sizeof(code));
        tb_exit(&t, HVT_EXIT_INTR, 0x1001, RFL_IF1, STI_SH);
        tb_interrupt(&t, HVT_POLICY_EAGER, 0x1001);
        tb_close(&t, true);

        check_ok(t.path, &r);
        expect_only(&r, RULE_UNDETERMINED, 1);
        cr_expect_eq(r.nviolations, 0, "%s", summary(&r));
        expect_undetermined(&r, 0, UND_IF_UNKNOWN, 0x1001);
        cr_expect(r.undetermined[0].prev.valid && r.undetermined[0].prev.pc == 0x1000, "%s",
                  summary(&r));
        check_result_free(&r);
}

Test(check, sti_if_unknown_after_popf)
{
        /* 1000 cli; 1001 popf; 1002 sti; 1003 inc ax; 1004 jmp $: the CLI is hidden by POPF */
        static const uint8_t code[] = { 0xfa, 0x9d, 0xfb, 0x40, 0xeb, 0xfe };
        struct check_result r;
        struct tb t = { 0 };

        tb_open(&t, "sti-popf.zst", 0, HVT_POLICY_EAGER, code, sizeof(code));
        tb_exit(&t, HVT_EXIT_INTR, 0x1003, RFL_IF1, STI_SH);
        tb_interrupt(&t, HVT_POLICY_EAGER, 0x1003);
        tb_close(&t, true);

        check_ok(t.path, &r);
        expect_only(&r, RULE_UNDETERMINED, 1);
        cr_expect_eq(r.nviolations, 0, "%s", summary(&r));
        expect_undetermined(&r, 0, UND_IF_UNKNOWN, 0x1003);
        check_result_free(&r);
}

/* ---- 4. MOV SS / POP SS --------------------------------------------------------------- */

static void movss_case(const char *name, const uint8_t *code, size_t len, uint64_t at,
                       uint64_t ssld)
{
        struct check_result r;
        struct tb t = { 0 };

        tb_open(&t, name, 0, HVT_POLICY_EAGER, code, len);
        tb_exit(&t, HVT_EXIT_INTR, at, RFL_IF1, MOVSS_SH);
        tb_interrupt(&t, HVT_POLICY_EAGER, at);
        tb_close(&t, true);

        check_ok(t.path, &r);
        cr_expect_eq(r.deliveries, 1);
        expect_only(&r, RULE_MOVSS_SHADOW, 1);
        expect_violation(&r, RULE_MOVSS_SHADOW, at, ssld);
        cr_expect_eq(r.nundetermined, 0, "%s", summary(&r));
        check_result_free(&r);
}

Test(check, mov_ss_shadow)
{
        /* 1000 nop; 1001 mov ss, ax; 1003 inc ax; 1004 jmp $ */
        static const uint8_t code[] = { 0x90, 0x8e, 0xd0, 0x40, 0xeb, 0xfe };

        movss_case("movss.zst", code, sizeof(code), 0x1003, 0x1001);
}

Test(check, pop_ss_shadow)
{
        /* 1000 nop; 1001 pop ss; 1002 inc ax; 1003 jmp $ */
        static const uint8_t code[] = { 0x90, 0x17, 0x40, 0xeb, 0xfe };

        movss_case("popss.zst", code, sizeof(code), 0x1002, 0x1001);
}

/*
 * Consecutive SS loads: only the first is guaranteed to delay interrupts
 * (Intel SDM, STI and MOV SS).  After the second a delivery is permitted:
 * a note.  Kicked right after the second, with the first one's exit
 * before it, the path is known.
 */
Test(check, second_ss_load_is_a_note)
{
        /* 1000 nop; 1001 mov ss, ax; 1003 mov ss, ax; 1005 inc ax; 1006 jmp $ */
        static const uint8_t code[] = { 0x90, 0x8e, 0xd0, 0x8e, 0xd0, 0x40, 0xeb, 0xfe };
        struct check_result r;
        struct tb t = { 0 };

        tb_open(&t, "movss2.zst", 0, HVT_POLICY_EAGER, code, sizeof(code));
        tb_exit(&t, HVT_EXIT_INTR, 0x1005, RFL_IF1, MOVSS_SH);
        tb_interrupt(&t, HVT_POLICY_EAGER, 0x1005);
        tb_close(&t, true);

        check_ok(t.path, &r);
        cr_expect_eq(r.deliveries, 1);
        expect_only(&r, RULE_NONE, 0);
        cr_expect_eq(r.nundetermined, 0, "%s", summary(&r));
        cr_expect_eq(r.notes[NOTE_SEQUENCE].count, 1, "%s", summary(&r));
        cr_expect_eq(r.notes[NOTE_SEQUENCE].first_pc, 0x1005);
        cr_expect_eq(r.notes[NOTE_SEQUENCE].first_seq, 1);
        check_result_free(&r);
}

/*
 * An interrupt between the two SS loads breaks the sequence: its IRET runs
 * before the second MOV SS, which is then the first of a new sequence.  A
 * kick after it, with only the handler's probe exit before, cannot tell
 * what ran (the IRET's target comes from memory the trace does not hold).
 */
Test(check, after_an_iret_the_sequence_is_not_known)
{
        static const uint8_t code[] = { 0x90, 0x8e, 0xd0, 0x8e, 0xd0, 0x40, 0xeb, 0xfe };
        struct check_result r;
        struct tb t = { 0 };

        tb_open(&t, "movss2-iret.zst", 0, HVT_POLICY_EAGER, code, sizeof(code));
        /* Between the two: inside the first one's shadow. */
        tb_exit(&t, HVT_EXIT_INTR, 0x1003, RFL_IF1, MOVSS_SH);
        tb_interrupt(&t, HVT_POLICY_EAGER, 0x1003);
        tb_exit(&t, HVT_EXIT_INTR, 0x1005, RFL_IF1, MOVSS_SH);
        tb_interrupt(&t, HVT_POLICY_EAGER, 0x1005);
        tb_close(&t, true);

        check_ok(t.path, &r);
        cr_expect_eq(r.deliveries, 2);
        expect_violation(&r, RULE_MOVSS_SHADOW, 0x1003, 0x1001);
        cr_expect_eq(r.nviolations, 1, "%s", summary(&r));
        expect_undetermined(&r, 0, UND_CONTROL, 0x1005);
        cr_expect_eq(r.notes[NOTE_SEQUENCE].count, 0, "%s", summary(&r));
        check_result_free(&r);
}

/* ---- 5. if-clear ------------------------------------------------------------------------ */

Test(check, if_clear)
{
        /* 1000 cli; 1001 inc ax; 1002 jmp $ */
        static const uint8_t code[] = { 0xfa, 0x40, 0xeb, 0xfe };
        struct check_result r;
        struct tb t = { 0 };

        tb_open(&t, "ifclear.zst", 0, HVT_POLICY_BLIND, code, sizeof(code));
        tb_exit(&t, HVT_EXIT_INTR, 0x1001, RFL_IF0, CLOSED);
        tb_interrupt(&t, HVT_POLICY_BLIND, 0x1001); /* delivered FLAGS: IF=0 */
        tb_close(&t, true);

        check_ok(t.path, &r);
        cr_expect_eq(r.deliveries, 1);
        expect_only(&r, RULE_IF_CLEAR, 1);
        cr_assert_eq(r.nviolations, 1, "%s", summary(&r));
        cr_expect_eq(r.violations[0].rule, RULE_IF_CLEAR);
        cr_expect_eq(r.violations[0].pc, 0x1001);
        cr_expect_eq(r.violations[0].flags & 0x200, 0);
        cr_expect_eq(r.violations[0].policy, HVT_POLICY_BLIND);
        check_result_free(&r);
}

/* ---- 6. several predecessors; single-step resolves them ----------------------------------- */

/* 1000 cli; 1001 sti; 1002 inc ax; 1003 jmp 1002 */
static const uint8_t sti_loop[] = { 0xfa, 0xfb, 0x40, 0xeb, 0xfd };

Test(check, several_predecessors)
{
        struct check_result r;
        struct tb t = { 0 };

        tb_open(&t, "preds.zst", 0, HVT_POLICY_EAGER, sti_loop, sizeof(sti_loop));
        tb_exit(&t, HVT_EXIT_INTR, 0x1002, RFL_IF1, STI_SH);
        tb_interrupt(&t, HVT_POLICY_EAGER, 0x1002);
        tb_close(&t, true);

        check_ok(t.path, &r);
        cr_expect_eq(r.deliveries, 1);
        expect_only(&r, RULE_UNDETERMINED, 1);
        cr_expect_eq(r.nviolations, 0, "%s", summary(&r));
        expect_undetermined(&r, 0, UND_PREDECESSORS, 0x1002);
        check_result_free(&r);
}

Test(check, single_step_previous_was_jmp)
{
        struct check_result r;
        struct tb t = { 0 };

        tb_open(&t, "step-jmp.zst", HVT_HDR_SINGLE_STEP, HVT_POLICY_EAGER, sti_loop,
                sizeof(sti_loop));
        tb_exit(&t, HVT_EXIT_DEBUG, 0x1001, RFL_IF0, CLOSED); /* after cli */
        tb_exit(&t, HVT_EXIT_DEBUG, 0x1002, RFL_IF1, STI_SH); /* after sti */
        t.st.gpr[HVT_F_RAX]++;
        tb_exit(&t, HVT_EXIT_DEBUG, 0x1003, RFL_IF1, OPEN); /* after inc ax */
        tb_exit(&t, HVT_EXIT_DEBUG, 0x1002, RFL_IF1, OPEN); /* after the jmp */
        tb_interrupt(&t, HVT_POLICY_EAGER, 0x1002);
        tb_close(&t, true);

        check_ok(t.path, &r);
        cr_expect(r.single_step);
        cr_expect_eq(r.deliveries, 1);
        expect_only(&r, RULE_NONE, 0);
        cr_expect_eq(r.nundetermined, 0, "%s", summary(&r));
        check_result_free(&r);
}

Test(check, single_step_previous_was_sti)
{
        struct check_result r;
        struct tb t = { 0 };

        tb_open(&t, "step-sti.zst", HVT_HDR_SINGLE_STEP, HVT_POLICY_EAGER, sti_loop,
                sizeof(sti_loop));
        tb_exit(&t, HVT_EXIT_DEBUG, 0x1001, RFL_IF0, CLOSED); /* after cli */
        tb_exit(&t, HVT_EXIT_DEBUG, 0x1002, RFL_IF1, STI_SH); /* after sti */
        tb_interrupt(&t, HVT_POLICY_EAGER, 0x1002);
        tb_close(&t, true);

        check_ok(t.path, &r);
        cr_expect(r.single_step);
        cr_expect_eq(r.deliveries, 1);
        expect_only(&r, RULE_STI_SHADOW, 1);
        expect_violation(&r, RULE_STI_SHADOW, 0x1002, 0x1001);
        cr_expect_eq(r.violations[0].if_before, 0);
        cr_expect_eq(r.nundetermined, 0, "%s", summary(&r));
        check_result_free(&r);
}

/* ---- 7. a pending IN -------------------------------------------------------------------- */

/* 1000 cli; 1001 sti; 1002 in al, 0x61; 1004 inc ax; 1005 jmp $ */
static const uint8_t sti_in[] = { 0xfa, 0xfb, 0xe4, 0x61, 0x40, 0xeb, 0xfe };

Test(check, pending_in_delivery_after_it_is_legal)
{
        struct check_result r;
        struct tb t = { 0 };

        tb_open(&t, "in-after.zst", 0, HVT_POLICY_EAGER, sti_in, sizeof(sti_in));
        /* The IN exits before it completes: RIP still at it, the STI shadow still on. */
        tb_io(&t, 0x1002, RFL_IF1, STI_SH, 0x61, HVT_IO_IN);
        tb_interrupt(&t, HVT_POLICY_EAGER, 0x1004); /* the entry completes the IN first */
        tb_close(&t, true);

        check_ok(t.path, &r);
        cr_expect_eq(r.deliveries, 1);
        expect_only(&r, RULE_NONE, 0);
        cr_expect_eq(r.nundetermined, 0, "%s", summary(&r));
        /* The entry landed past the IN: exactly where the interrupt was taken. */
        cr_expect_eq(r.notes[NOTE_LANDED_ELSEWHERE].count, 0, "%s", summary(&r));
        check_result_free(&r);
}

Test(check, pending_in_delivery_at_it_is_sti_shadow)
{
        struct check_result r;
        struct tb t = { 0 };

        tb_open(&t, "in-at.zst", 0, HVT_POLICY_EAGER, sti_in, sizeof(sti_in));
        tb_io(&t, 0x1002, RFL_IF1, STI_SH, 0x61, HVT_IO_IN);
        tb_interrupt(&t, HVT_POLICY_EAGER, 0x1002); /* taken before the IN, after the STI */
        tb_close(&t, true);

        check_ok(t.path, &r);
        cr_expect_eq(r.deliveries, 1);
        expect_only(&r, RULE_STI_SHADOW, 1);
        expect_violation(&r, RULE_STI_SHADOW, 0x1002, 0x1001);
        cr_expect_eq(r.notes[NOTE_LANDED_ELSEWHERE].count, 1, "%s", summary(&r));
        check_result_free(&r);
}

/* ---- 8. a completed OUT ------------------------------------------------------------------- */

/*
 * 1000 cli; 1001 sti; 1002 out 0xfb, al; 1004 inc ax; 1005 jmp $
 * 1007 cli; 1008 jmp 1003
 * The jump lands on the OUT's port byte, 0xfb: an STI (IF=0 before it) that
 * also falls through to 1004.  Statically 1004 has two predecessors with
 * different verdicts; only the completed OUT exit says which one ran.
 */
static const uint8_t sti_out[] = { 0xfa, 0xfb, 0xe6, 0xfb, 0x40, 0xeb, 0xfe, 0xfa, 0xeb, 0xf9 };

static void out_case(bool completed_exit, struct check_result *r)
{
        struct tb t = { 0 };

        tb_open(&t, completed_exit ? "out-done.zst" : "out-kick.zst", 0, HVT_POLICY_EAGER, sti_out,
                sizeof(sti_out));
        tb_exit(&t, HVT_EXIT_INTR, 0x1008, RFL_IF0, CLOSED); /* shows the other routine */
        if (completed_exit) /* the OUT (itself in the STI shadow) completed: RIP past it */
                tb_io(&t, 0x1004, RFL_IF1, OPEN, 0xfb, HVT_IO_OUT);
        else /* a kick at the same point, in the port byte's STI shadow */
                tb_exit(&t, HVT_EXIT_INTR, 0x1004, RFL_IF1, STI_SH);
        tb_interrupt(&t, HVT_POLICY_EAGER, 0x1004);
        tb_close(&t, true);
        check_ok(t.path, r);
        cr_expect_eq(r->deliveries, 1);
}

Test(check, completed_out_delivery_after_it_is_legal)
{
        struct check_result r;

        out_case(true, &r);
        expect_only(&r, RULE_NONE, 0);
        cr_expect_eq(r.nundetermined, 0, "%s", summary(&r));
        cr_expect_eq(r.notes[NOTE_LANDED_ELSEWHERE].count, 0, "%s", summary(&r));
        check_result_free(&r);
}

/*
 * Without the OUT's exit, the path from the previous exit (at 1008, IF=0)
 * decides: the jump lands on the port byte, an STI with IF=0, and that is
 * the only way to 1004 from there.
 */
Test(check, completed_out_control_without_io_exit)
{
        struct check_result r;

        out_case(false, &r);
        expect_only(&r, RULE_STI_SHADOW, 1);
        expect_violation(&r, RULE_STI_SHADOW, 0x1004, 0x1003);
        cr_expect_eq(r.nundetermined, 0, "%s", summary(&r));
        check_result_free(&r);
}

/* ---- 9. spurious, lost, still pending at the end ------------------------------------------ */

/* 1000 nop; 1001 nop; 1002 out 0x80, al; 1004 jmp $ */
static const uint8_t nops_out[] = { 0x90, 0x90, 0xe6, 0x80, 0xeb, 0xfe };

Test(check, spurious_interrupt)
{
        struct check_result r;
        struct tb t = { 0 };

        tb_open(&t, "spurious.zst", 0, HVT_POLICY_EAGER, nops_out, sizeof(nops_out));
        tb_exit(&t, HVT_EXIT_INTR, 0x1001, RFL_IF1, OPEN);
        tb_probe(&t, 0x1001, RFL_IF1); /* nothing was injected */
        tb_close(&t, true);

        check_ok(t.path, &r);
        cr_expect_eq(r.deliveries, 1);
        cr_expect_eq(r.injections, 0);
        expect_only(&r, RULE_SPURIOUS, 1);
        cr_assert_eq(r.nviolations, 1, "%s", summary(&r));
        cr_expect_eq(r.violations[0].rule, RULE_SPURIOUS);
        cr_expect_eq(r.violations[0].pc, 0x1001);
        cr_expect_eq(r.violations[0].event, 1);
        cr_expect(!r.violations[0].have_intr);
        check_result_free(&r);
}

Test(check, lost_interrupt)
{
        struct check_result r;
        struct tb t = { 0 };

        tb_open(&t, "lost.zst", 0, HVT_POLICY_EAGER, nops_out, sizeof(nops_out));
        tb_exit(&t, HVT_EXIT_INTR, 0x1001, RFL_IF1, OPEN);
        tb_inject(&t, HVT_POLICY_EAGER);
        /* Not the handler: the OUT completed, the backend ready with nothing queued. */
        tb_io(&t, 0x1004, RFL_IF1, OPEN, 0x80, HVT_IO_OUT);
        tb_close(&t, true);

        check_ok(t.path, &r);
        cr_expect_eq(r.deliveries, 0);
        cr_expect_eq(r.injections, 1);
        expect_only(&r, RULE_LOST, 1);
        cr_assert_eq(r.nviolations, 1, "%s", summary(&r));
        cr_expect_eq(r.violations[0].rule, RULE_LOST);
        cr_expect_eq(r.violations[0].event, 0, "the injection's exit");
        cr_expect_eq(r.violations[0].pc, 0x1001);
        cr_expect_eq(r.violations[0].vector, VEC);
        cr_expect_eq(r.notes[NOTE_ENDED_PENDING].count, 0, "%s", summary(&r));
        check_result_free(&r);
}

/*
 * The same trace, but the handler the injection names does not start with
 * the probe (a VMM that writes traces without one), or is not known: no
 * delivery could have been seen, so none missing proves a loss.
 */
Test(check, no_loss_claimed_where_no_delivery_could_be_seen)
{
        static const uint64_t handlers[] = { CODE, 0 };

        for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++) {
                struct check_result r;
                struct tb t = { 0 };

                tb_open(&t, "unobservable.zst", 0, HVT_POLICY_EAGER, nops_out, sizeof(nops_out));
                tb_exit(&t, HVT_EXIT_INTR, 0x1001, RFL_IF1, OPEN);
                tb_inject_to(&t, HVT_POLICY_EAGER, handlers[i]);
                tb_io(&t, 0x1004, RFL_IF1, OPEN, 0x80, HVT_IO_OUT);
                tb_close(&t, true);

                check_ok(t.path, &r);
                cr_expect_eq(r.injections, 1);
                cr_expect_eq(r.nviolations, 0, "handler 0x%llx: %s",
                             (unsigned long long)handlers[i], summary(&r));
                cr_expect_eq(r.notes[NOTE_UNOBSERVABLE].count, 1, "%s", summary(&r));
                cr_expect_eq(r.notes[NOTE_UNOBSERVABLE].first_seq, 0, "the injection's exit");
                cr_expect_eq(r.notes[NOTE_ENDED_PENDING].count, 0, "%s", summary(&r));
                check_result_free(&r);
        }
}

/*
 * The records naming an exit follow it: a delivery named by the very exit
 * that shows the backend ready with nothing queued explains the injection.
 * Two ways to get there: hvrec exec infers a delivery at the entry of a
 * run into a handler without the probe, and names the exit that ended the
 * run; a probe in a handler whose gate left IF set (a trap gate) exits
 * ready.  Judging the loss at the exit, before its records, called the
 * injection lost (or unobservable) and its delivery spurious.
 */
Test(check, a_delivery_named_by_the_exit_that_shows_nothing_queued_is_no_loss)
{
        static const struct {
                const char *name;
                uint64_t handler, exit_rip, rflags;
        } cases[] = {
                { "inferred at entry, no probe", CODE + 4, 0x1004, RFL_IF1 },
                { "probe with IF set", HANDLER, HANDLER + 2, RFL_IF1 },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct check_result r;
                struct hvt_disk_deliver d;
                struct tb t = { 0 };
                uint64_t seq;

                tb_open(&t, "named.zst", 0, HVT_POLICY_EAGER, nops_out, sizeof(nops_out));
                tb_exit(&t, HVT_EXIT_INTR, 0x1001, RFL_IF1, OPEN);
                tb_inject_to(&t, HVT_POLICY_EAGER, cases[i].handler);
                seq = tb_io(&t, cases[i].exit_rip, cases[i].rflags, OPEN,
                            cases[i].exit_rip == 0x1004 ? 0x80 : 0xe2, HVT_IO_OUT);
                memset(&d, 0, sizeof(d));
                d.seq = seq;
                d.ip = 0x1001;
                d.flags = RFL_IF1;
                d.sp = t.st.gpr[HVT_F_RSP];
                d.handler = cases[i].handler;
                d.vector = VEC;
                d.vector_from = cases[i].exit_rip == 0x1004 ? HVT_VEC_INJECTED : HVT_VEC_TABLE;
                d.frame_bits = 16;
                cr_assert_eq(hvt_write_deliver(t.w, &d), 0);
                tb_close(&t, true);

                check_ok(t.path, &r);
                cr_expect_eq(r.injections, 1, "%s", cases[i].name);
                cr_expect_eq(r.deliveries, 1, "%s", cases[i].name);
                cr_expect_eq(r.nviolations, 0, "%s: %s", cases[i].name, summary(&r));
                cr_expect_eq(r.notes[NOTE_UNOBSERVABLE].count, 0, "%s: %s", cases[i].name,
                             summary(&r));
                cr_expect_eq(r.notes[NOTE_ENDED_PENDING].count, 0, "%s: %s", cases[i].name,
                             summary(&r));
                check_result_free(&r);
        }
}

Test(check, pending_at_end_is_not_lost)
{
        struct check_result r;
        struct tb t = { 0 };

        tb_open(&t, "ended.zst", 0, HVT_POLICY_EAGER, nops_out, sizeof(nops_out));
        tb_exit(&t, HVT_EXIT_INTR, 0x1001, RFL_IF1, OPEN);
        tb_inject(&t, HVT_POLICY_EAGER);
        /* A later exit that shows the vector still queued (not ready). */
        tb_io(&t, 0x1004, RFL_IF1, kvm_intr(1, 0, 1), 0x80, HVT_IO_OUT);
        tb_close(&t, true);

        check_ok(t.path, &r);
        cr_expect_eq(r.deliveries, 0);
        cr_expect_eq(r.injections, 1);
        expect_only(&r, RULE_NONE, 0);
        cr_expect_eq(r.notes[NOTE_ENDED_PENDING].count, 1, "%s", summary(&r));
        cr_expect_eq(r.notes[NOTE_ENDED_PENDING].first_seq, 0);
        check_result_free(&r);
}

/* ---- pairing injections with deliveries ------------------------------------------------- */

/*
 * Two injections of the same vector outstanding (the first still queued at
 * #1).  `deliver_after_second`: the probe follows the exit right after the
 * second injection, which it answers; otherwise one more exit comes
 * between, and the delivery answers the oldest.  The injections differ by
 * policy, which the finding reports.
 */
static void pairing_case(bool deliver_after_second, struct check_result *r)
{
        struct tb t = { 0 };

        tb_open(&t, deliver_after_second ? "pair-at.zst" : "pair-oldest.zst", 0, HVT_POLICY_EAGER,
                cli_sti_inc, sizeof(cli_sti_inc));
        tb_exit(&t, HVT_EXIT_INTR, 0x1002, RFL_IF1, STI_SH);
        tb_inject(&t, HVT_POLICY_BLIND);
        tb_exit(&t, HVT_EXIT_INTR, 0x1002, RFL_IF1, kvm_intr(1, HVT_INTR_STI_SHADOW, 1));
        tb_inject(&t, HVT_POLICY_EAGER);
        if (!deliver_after_second)
                tb_exit(&t, HVT_EXIT_INTR, 0x1002, RFL_IF1, kvm_intr(1, HVT_INTR_STI_SHADOW, 1));
        tb_probe(&t, 0x1002, RFL_IF1);
        tb_close(&t, true);
        check_ok(t.path, r);
        cr_expect_eq(r->deliveries, 1);
        cr_expect_eq(r->injections, 2);
        expect_only(r, RULE_STI_SHADOW, 1);
        expect_violation(r, RULE_STI_SHADOW, 0x1002, 0x1001);
        /* The other one was never seen delivered. */
        cr_expect_eq(r->notes[NOTE_ENDED_PENDING].count, 1, "%s", summary(r));
}

Test(check, pairing_prefers_the_delivering_entry)
{
        struct check_result r;

        pairing_case(true, &r);
        cr_expect_eq(r.violations[0].policy, HVT_POLICY_EAGER,
                     "paired with the injection after #1");
        cr_expect_eq(r.notes[NOTE_ENDED_PENDING].first_seq, 0, "%s", summary(&r));
        check_result_free(&r);
}

Test(check, pairing_else_the_oldest)
{
        struct check_result r;

        pairing_case(false, &r);
        cr_expect_eq(r.violations[0].policy, HVT_POLICY_BLIND,
                     "paired with the oldest injection (after #0)");
        cr_expect_eq(r.notes[NOTE_ENDED_PENDING].first_seq, 1, "%s", summary(&r));
        check_result_free(&r);
}

/* ---- 10. report-mismatch on a recorded trace ----------------------------------------------- */

#define REAL_TRACE HV_SOURCE_DIR "/traces/movss-sti-eager-step.zst"
#define LYING_INTR                                                                           \
        (HVT_INTR_VALID_SHADOW | HVT_INTR_VALID_READY | HVT_INTR_VALID_IF | HVT_INTR_READY | \
         HVT_INTR_IF)

/* Copy every record of src to dst; with `lie`, every report says: no shadow, ready. */
static void copy_trace(const char *src, const char *dst, bool lie, uint64_t *nrec)
{
        struct hvt_reader *rd;
        struct hvt_writer *w;
        struct hvt_event ev;
        int err;

        *nrec = 0;
        err = hvt_reader_open(&rd, src);
        cr_assert_eq(err, HVT_OK, "%s: %s", src, rd ? hvt_reader_message(rd) : "?");
        err = hvt_writer_open(&w, dst, NULL);
        cr_assert_eq(err, 0, "%s: %s", dst, strerror(-err));
        while ((err = hvt_reader_next(rd, &ev)) == HVT_OK) {
                (*nrec)++;
                if (lie && ev.type == HVT_REC_EXIT)
                        ev.exit.st.intr = LYING_INTR;
                if (lie && ev.type == HVT_REC_INJECT)
                        ev.inject.intr = LYING_INTR;
                err = hvt_write_event(w, &ev);
                cr_assert_eq(err, 0, "writing record %" PRIu64 " (%s): %s", *nrec,
                             hvt_rec_type_name(ev.type), strerror(-err));
        }
        cr_assert_eq(err, HVT_END_OF_TRACE, "%s: %s", src, hvt_reader_message(rd));
        cr_assert(hvt_reader_complete(rd));
        hvt_reader_close(rd);
        cr_assert_eq(hvt_writer_close(w), 0);
}

Test(check, report_mismatch_on_recorded_trace)
{
        struct check_result orig, same, lied;
        const char *copy = hv_tmp("copy.zst"), *liar = hv_tmp("liar.zst");
        uint64_t n1, n2;
        struct hv_trace a, b;

        check_ok(REAL_TRACE, &orig);
        cr_assert(orig.nviolations >= 2, "%s", summary(&orig));
        cr_assert_eq(orig.by_rule[RULE_STI_SHADOW], 1, "%s", summary(&orig));
        cr_assert_eq(orig.by_rule[RULE_MOVSS_SHADOW], 1, "%s", summary(&orig));
        cr_assert_eq(orig.by_rule[RULE_REPORT_MISMATCH], 0, "%s", summary(&orig));

        /* A faithful copy is a faithful copy. */
        copy_trace(REAL_TRACE, copy, false, &n1);
        cr_assert_eq(hv_trace_load(REAL_TRACE, &a), HVT_OK);
        cr_assert_eq(hv_trace_load(copy, &b), HVT_OK, "%s", b.message);
        cr_expect_eq(a.nrecords, b.nrecords);
        cr_expect_eq(a.nexits, b.nexits);
        cr_expect_eq(a.ninjects, b.ninjects);
        cr_expect_eq(a.ndelivers, b.ndelivers);
        cr_expect_eq(a.nraises, b.nraises);
        cr_expect_str_eq(a.cmdline, b.cmdline);
        cr_expect_eq(a.console_len, b.console_len);
        cr_expect(a.have_end && b.have_end);
        cr_expect_eq(memcmp(&a.hdr.h, &b.hdr.h, sizeof(a.hdr.h)), 0);
        cr_expect_eq(memcmp(a.mem, b.mem, a.mem_size), 0);
        for (size_t i = 0; i < a.nexits && i < b.nexits; i++) {
                cr_expect_eq(a.exits[i].e.seq, b.exits[i].e.seq);
                cr_expect_eq(memcmp(&a.exits[i].e.st, &b.exits[i].e.st, sizeof(a.exits[i].e.st)), 0,
                             "exit %zu state", i);
                cr_expect_eq(a.exits[i].e.reason, b.exits[i].e.reason);
                cr_expect_eq(memcmp(a.exits[i].e.insn, b.exits[i].e.insn, a.exits[i].e.insn_len),
                             0);
                if (a.exits[i].e.reason == HVT_EXIT_IO) {
                        size_t n = (size_t)a.exits[i].e.u.io.io.size * a.exits[i].e.u.io.io.count;

                        cr_expect_eq(memcmp(&a.exits[i].e.u.io.io, &b.exits[i].e.u.io.io,
                                            sizeof(a.exits[i].e.u.io.io)),
                                     0, "exit %zu io", i);
                        cr_expect_eq(memcmp(a.exits[i].io_data, b.exits[i].io_data,
                                            n < sizeof(a.exits[i].io_data)
                                                    ? n
                                                    : sizeof(a.exits[i].io_data)),
                                     0, "exit %zu io data", i);
                } else if (a.exits[i].e.reason == HVT_EXIT_DEBUG) {
                        cr_expect_eq(memcmp(&a.exits[i].e.u.debug, &b.exits[i].e.u.debug,
                                            sizeof(a.exits[i].e.u.debug)),
                                     0, "exit %zu debug", i);
                }
        }
        hv_trace_free(&a);
        hv_trace_free(&b);
        check_ok(copy, &same);
        cr_expect_eq(same.nviolations, orig.nviolations, "%s", summary(&same));
        cr_expect_eq(same.by_rule[RULE_REPORT_MISMATCH], 0, "%s", summary(&same));

        /* Now the backend says "no shadow, ready" everywhere. */
        copy_trace(REAL_TRACE, liar, true, &n2);
        cr_expect_eq(n1, n2);
        check_ok(liar, &lied);
        cr_expect_eq(lied.deliveries, orig.deliveries);
        cr_expect_eq(lied.by_rule[RULE_STI_SHADOW], orig.by_rule[RULE_STI_SHADOW], "%s",
                     summary(&lied));
        cr_expect_eq(lied.by_rule[RULE_MOVSS_SHADOW], orig.by_rule[RULE_MOVSS_SHADOW], "%s",
                     summary(&lied));
        cr_expect_eq(lied.by_rule[RULE_LOST], 0, "%s", summary(&lied));
        cr_expect_gt(lied.by_rule[RULE_REPORT_MISMATCH], 0, "%s", summary(&lied));
        for (size_t i = 0; i < orig.nviolations; i++) {
                const struct check_finding *o = &orig.violations[i];
                bool same_delivery = false, mismatch = false;

                if (o->rule != RULE_STI_SHADOW && o->rule != RULE_MOVSS_SHADOW)
                        continue;
                /* The same delivery is still judged the same way ... */
                for (size_t j = 0; j < lied.nviolations; j++)
                        same_delivery |= lied.violations[j].rule == o->rule &&
                                         lied.violations[j].pc == o->pc &&
                                         lied.violations[j].event == o->event &&
                                         lied.violations[j].prev.pc == o->prev.pc;
                cr_expect(same_delivery, "%s at 0x%" PRIx64 " lost in the copy: %s",
                          check_rule_name(o->rule), o->pc, summary(&lied));
                /* ... and the exit standing in that shadow contradicts the lie. */
                for (size_t j = 0; j < lied.nviolations; j++)
                        mismatch |= lied.violations[j].rule == RULE_REPORT_MISMATCH &&
                                    lied.violations[j].pc == o->pc &&
                                    lied.violations[j].shadow_rule == o->rule;
                cr_expect(mismatch, "no report-mismatch at the shadowed 0x%" PRIx64 ": %s", o->pc,
                          summary(&lied));
        }
        check_result_free(&orig);
        check_result_free(&same);
        check_result_free(&lied);
}

/* ---- 11. 64-bit code --------------------------------------------------------------------- */

/* 1000 nop; 1001 (pop ss outside 64-bit code); 1002 nop; 1003 jmp $ */
static const uint8_t nop_17_nop[] = { 0x90, 0x17, 0x90, 0xeb, 0xfe };

Test(check, long_mode_has_no_pop_ss)
{
        struct check_result r;
        struct tb t = { 0 };

        tb_open_opts(&t, "long-17.zst", true, 0, HVT_POLICY_EAGER, nop_17_nop, sizeof(nop_17_nop),
                     NULL);
        tb_exit(&t, HVT_EXIT_INTR, 0x1002, RFL_IF1, OPEN);
        tb_interrupt(&t, HVT_POLICY_EAGER, 0x1002);
        tb_close(&t, true);

        check_ok(t.path, &r);
        cr_expect_eq(r.deliveries, 1);
        cr_expect_eq(r.by_rule[RULE_MOVSS_SHADOW], 0, "%s", summary(&r));
        cr_expect_eq(r.nviolations, 0, "%s", summary(&r));
        check_result_free(&r);
}

Test(check, compat_mode_pop_ss_shadow)
{
        struct check_result r;
        struct tb t = { 0 };

        /* Long mode, but 32-bit compatibility-mode code: POP SS exists there. */
        tb_open_opts(&t, "compat-17.zst", true, 0, HVT_POLICY_EAGER, nop_17_nop, sizeof(nop_17_nop),
                     NULL);
        set_seg(&t.st.seg[HVT_CS], 0x18, 0, 0xffffffff,
                HVT_SEG_P | HVT_SEG_S | 0xb | HVT_SEG_DB | HVT_SEG_G);
        /*
         * The entry is decoded as 64-bit code: an exit in the 32-bit code
         * first shows the descent where that code starts.
         */
        tb_exit(&t, HVT_EXIT_INTR, 0x1000, RFL_IF1, OPEN);
        tb_exit(&t, HVT_EXIT_INTR, 0x1002, RFL_IF1, MOVSS_SH);
        tb_interrupt(&t, HVT_POLICY_EAGER, 0x1002);
        tb_close(&t, true);

        check_ok(t.path, &r);
        cr_expect_eq(r.deliveries, 1);
        expect_only(&r, RULE_MOVSS_SHADOW, 1);
        expect_violation(&r, RULE_MOVSS_SHADOW, 0x1002, 0x1001);
        check_result_free(&r);
}

Test(check, real_mode_control_for_pop_ss)
{
        struct check_result r;
        struct tb t = { 0 };

        tb_open(&t, "real-17.zst", 0, HVT_POLICY_EAGER, nop_17_nop, sizeof(nop_17_nop));
        tb_exit(&t, HVT_EXIT_INTR, 0x1002, RFL_IF1, MOVSS_SH);
        tb_interrupt(&t, HVT_POLICY_EAGER, 0x1002);
        tb_close(&t, true);

        check_ok(t.path, &r);
        expect_only(&r, RULE_MOVSS_SHADOW, 1);
        expect_violation(&r, RULE_MOVSS_SHADOW, 0x1002, 0x1001);
        check_result_free(&r);
}

Test(check, long_mode_mov_ss_shadow)
{
        /* 1000 nop; 1001 mov ss, eax; 1003 nop; 1004 jmp $ */
        static const uint8_t code[] = { 0x90, 0x8e, 0xd0, 0x90, 0xeb, 0xfe };
        struct check_result r;
        struct tb t = { 0 };

        tb_open_opts(&t, "long-movss.zst", true, 0, HVT_POLICY_EAGER, code, sizeof(code), NULL);
        tb_exit(&t, HVT_EXIT_INTR, 0x1003, RFL_IF1, MOVSS_SH);
        tb_interrupt(&t, HVT_POLICY_EAGER, 0x1003);
        tb_close(&t, true);

        check_ok(t.path, &r);
        cr_expect_eq(r.deliveries, 1);
        expect_only(&r, RULE_MOVSS_SHADOW, 1);
        expect_violation(&r, RULE_MOVSS_SHADOW, 0x1003, 0x1001);
        cr_expect_eq(r.violations[0].bits, 64, "%s", summary(&r));
        check_result_free(&r);
}

/* ---- 12. after an IRET ------------------------------------------------------------------ */

/*
 * Back at 0x1002 after the handler's IRET: whether the IRET or the STI ran
 * last is not in the trace (registers equal or not), so the second
 * delivery is undetermined, never a guess either way.
 */
static void iret_case(bool same_regs, struct check_result *r)
{
        struct tb t = { 0 };

        tb_open(&t, same_regs ? "iret-same.zst" : "iret-diff.zst", 0, HVT_POLICY_EAGER, cli_sti_inc,
                sizeof(cli_sti_inc));
        t.st.gpr[HVT_F_RAX] = 0x1234;
        t.st.gpr[HVT_F_RBX] = 0x55;
        tb_exit(&t, HVT_EXIT_INTR, 0x1002, RFL_IF1, STI_SH);
        tb_interrupt(&t, HVT_POLICY_EAGER, 0x1002); /* #1: sti-shadow */
        if (!same_regs)
                t.st.gpr[HVT_F_RAX]++;
        tb_exit(&t, HVT_EXIT_INTR, 0x1002, RFL_IF1, same_regs ? OPEN : STI_SH);
        tb_interrupt(&t, HVT_POLICY_EAGER, 0x1002); /* #3 */
        tb_close(&t, true);
        check_ok(t.path, r);
        cr_expect_eq(r->deliveries, 2);
        cr_expect_eq(r->by_rule[RULE_STI_SHADOW], 1, "%s", summary(r));
        expect_violation(r, RULE_STI_SHADOW, 0x1002, 0x1001);
        cr_expect_eq(r->violations[0].event, 1, "%s", summary(r));
        expect_undetermined(r, 0, UND_CONTROL, 0x1002);
        cr_expect_eq(r->undetermined[0].event, 3, "%s", summary(r));
}

Test(check, iret_edge_same_registers)
{
        struct check_result r;

        iret_case(true, &r);
        check_result_free(&r);
}

Test(check, iret_edge_registers_changed)
{
        struct check_result r;

        iret_case(false, &r);
        check_result_free(&r);
}

/* ---- 13. truncated traces ---------------------------------------------------------------- */

/* One sti-shadow delivery, then more records that the cut removes. */
static uint64_t write_cut_trace(struct tb *t, const char *name, bool end)
{
        struct hvt_writer_opts o = { .size = sizeof(o),
                                     .frame_records = 100000,
                                     .frame_ms = 100000 };
        uint64_t before_cut;

        tb_open_opts(t, name, false, 0, HVT_POLICY_EAGER, cli_sti_inc, sizeof(cli_sti_inc), &o);
        tb_exit(t, HVT_EXIT_INTR, 0x1002, RFL_IF1, STI_SH);
        tb_interrupt(t, HVT_POLICY_EAGER, 0x1002);
        cr_assert_eq(hvt_writer_flush(t->w), 0);
        before_cut = hvt_writer_bytes(t->w);
        /* A second delivery after the cut point. */
        t->st.gpr[HVT_F_RAX] += 7;
        tb_exit(t, HVT_EXIT_INTR, 0x1002, RFL_IF1, STI_SH);
        tb_interrupt(t, HVT_POLICY_EAGER, 0x1002);
        for (int i = 0; i < 50; i++)
                tb_exit(t, HVT_EXIT_INTR, 0x1003, RFL_IF1, OPEN);
        tb_close(t, end);
        return before_cut;
}

Test(check, truncated_mid_frame)
{
        struct check_result r;
        struct stat sb;
        uint64_t cut;
        struct tb t = { 0 };

        cut = write_cut_trace(&t, "cut.zst", true);
        cr_assert_eq(stat(t.path, &sb), 0);
        cr_assert_gt((uint64_t)sb.st_size, cut + 8);
        cr_assert_eq(truncate(t.path, (off_t)(cut + ((uint64_t)sb.st_size - cut) / 2)), 0);

        cr_expect_eq(check_trace(t.path, &r), -1, "%s", summary(&r));
        cr_expect(r.opened);
        cr_expect(!r.readable);
        cr_expect(strstr(r.error, "truncated"), "error '%s'", r.error);
        /* What came before the cut was judged. */
        cr_expect_eq(r.deliveries, 1, "%s", summary(&r));
        expect_only(&r, RULE_STI_SHADOW, 1);
        expect_violation(&r, RULE_STI_SHADOW, 0x1002, 0x1001);
        check_result_free(&r);
}

Test(check, truncated_without_end_record)
{
        struct check_result r;
        struct tb t = { 0 };

        write_cut_trace(&t, "noend.zst", false);
        cr_expect_eq(check_trace(t.path, &r), -1, "%s", summary(&r));
        cr_expect(r.opened);
        cr_expect(!r.readable);
        cr_expect(strstr(r.error, "truncated"), "error '%s'", r.error);
        cr_expect_eq(r.deliveries, 2, "%s", summary(&r));
        /* The second one follows the first one's IRET: not decidable (iret_case). */
        cr_expect_eq(r.by_rule[RULE_STI_SHADOW], 1, "%s", summary(&r));
        cr_expect_eq(r.by_rule[RULE_UNDETERMINED], 1, "%s", summary(&r));
        check_result_free(&r);
}

Test(check, unreadable_file)
{
        struct check_result r;
        FILE *f = fopen(hv_tmp("junk.zst"), "w");

        cr_assert_not_null(f);
        fputs("this is not a trace\n", f);
        fclose(f);
        cr_expect_eq(check_trace(hv_tmp("junk.zst"), &r), -1);
        cr_expect(!r.opened);
        cr_expect_neq(r.error[0], 0);
        check_result_free(&r);
        cr_expect_eq(check_trace(hv_tmp("missing.zst"), &r), -1);
        cr_expect(!r.opened);
        check_result_free(&r);
}

/* ---- 14. sequences of interrupt-delaying instructions --------------------------------------- */

/*
 * Kicked at `at` (the first exit, so the path from the entry decides), an
 * interrupt is injected and delivered there.  Expect `rule` (RULE_NONE:
 * no violation) with `prev` the instruction before, and `note` (-1: none).
 */
static void kicked_case(const char *name, const uint8_t *code, size_t len, uint64_t at,
                        unsigned rule, uint64_t prev, int note_kind)
{
        struct check_result r;
        struct tb t = { 0 };

        tb_open(&t, name, 0, HVT_POLICY_EAGER, code, len);
        tb_exit(&t, HVT_EXIT_INTR, at, RFL_IF1, 0); /* no report: only the code decides */
        tb_interrupt(&t, HVT_POLICY_EAGER, at);
        tb_close(&t, true);

        check_ok(t.path, &r);
        cr_expect_eq(r.deliveries, 1);
        expect_only(&r, rule, rule == RULE_NONE ? 0 : 1);
        if (rule != RULE_NONE)
                expect_violation(&r, rule, at, prev);
        cr_expect_eq(r.nundetermined, 0, "%s: %s", name, summary(&r));
        for (unsigned n = 0; n < NOTE_COUNT; n++)
                if (n == NOTE_SEQUENCE || n == NOTE_STI_IF_SET)
                        cr_expect_eq(r.notes[n].count, (int)n == note_kind ? 1u : 0u,
                                     "%s: note %s: %s", name, check_note_name(n), summary(&r));
        check_result_free(&r);
}

/* 1000 cli; 1001 sti; 1002 mov ss, ax; 1004 inc ax; 1005 jmp $ */
static const uint8_t sti_movss[] = { 0xfa, 0xfb, 0x8e, 0xd0, 0x40, 0xeb, 0xfe };
/* 1000 cli; 1001 mov ss, ax; 1003 sti; 1004 inc ax; 1005 jmp $ */
static const uint8_t movss_sti[] = { 0xfa, 0x8e, 0xd0, 0xfb, 0x40, 0xeb, 0xfe };
/* 1000 cli; 1001 pop ss; 1002 sti; 1003 inc ax; 1004 jmp $ */
static const uint8_t popss_sti[] = { 0xfa, 0x17, 0xfb, 0x40, 0xeb, 0xfe };
/* 1000 cli; 1001 sti; 1002 pop ss; 1003 inc ax; 1004 jmp $ */
static const uint8_t sti_popss[] = { 0xfa, 0xfb, 0x17, 0x40, 0xeb, 0xfe };
/* 1000 cli; 1001 sti; 1002 mov ss, ax; 1004 mov ss, ax; 1006 inc ax; 1007 jmp $ */
static const uint8_t sti_movss_movss[] = { 0xfa, 0xfb, 0x8e, 0xd0, 0x8e, 0xd0, 0x40, 0xeb, 0xfe };
/* 1000 sti; 1001 nop; 1002 sti (IF=1: no delay); 1003 mov ss, ax; 1005 inc ax; 1006 jmp $ */
static const uint8_t sti1_movss[] = { 0xfb, 0x90, 0xfb, 0x8e, 0xd0, 0x40, 0xeb, 0xfe };

Test(check, sequence_first_is_a_violation)
{
        kicked_case("seq-sti-movss-1.zst", sti_movss, sizeof(sti_movss), 0x1002, RULE_STI_SHADOW,
                    0x1001, -1);
        kicked_case("seq-movss-sti-1.zst", movss_sti, sizeof(movss_sti), 0x1003, RULE_MOVSS_SHADOW,
                    0x1001, -1);
        kicked_case("seq-popss-sti-1.zst", popss_sti, sizeof(popss_sti), 0x1002, RULE_MOVSS_SHADOW,
                    0x1001, -1);
        kicked_case("seq-sti-popss-1.zst", sti_popss, sizeof(sti_popss), 0x1002, RULE_STI_SHADOW,
                    0x1001, -1);
}

Test(check, sequence_second_is_a_note)
{
        kicked_case("seq-sti-movss-2.zst", sti_movss, sizeof(sti_movss), 0x1004, RULE_NONE, 0,
                    NOTE_SEQUENCE);
        kicked_case("seq-movss-sti-2.zst", movss_sti, sizeof(movss_sti), 0x1004, RULE_NONE, 0,
                    NOTE_SEQUENCE);
        kicked_case("seq-popss-sti-2.zst", popss_sti, sizeof(popss_sti), 0x1003, RULE_NONE, 0,
                    NOTE_SEQUENCE);
        kicked_case("seq-sti-popss-2.zst", sti_popss, sizeof(sti_popss), 0x1003, RULE_NONE, 0,
                    NOTE_SEQUENCE);
        kicked_case("seq-three.zst", sti_movss_movss, sizeof(sti_movss_movss), 0x1006, RULE_NONE, 0,
                    NOTE_SEQUENCE);
}

/* An STI with IF already 1 delays nothing: the MOV SS after it is the first. */
Test(check, sti_with_if_set_does_not_start_a_sequence)
{
        kicked_case("seq-sti1-movss.zst", sti1_movss, sizeof(sti1_movss), 0x1005, RULE_MOVSS_SHADOW,
                    0x1003, -1);
}

/* The single-step chain gives the same verdicts. */
Test(check, sequence_single_stepped)
{
        struct check_result r;
        struct tb t = { 0 };

        tb_open(&t, "seq-step.zst", HVT_HDR_SINGLE_STEP, HVT_POLICY_EAGER, movss_sti,
                sizeof(movss_sti));
        tb_exit(&t, HVT_EXIT_DEBUG, 0x1001, RFL_IF0, CLOSED);   /* after cli */
        tb_exit(&t, HVT_EXIT_DEBUG, 0x1003, RFL_IF0, MOVSS_SH); /* after mov ss */
        tb_exit(&t, HVT_EXIT_DEBUG, 0x1004, RFL_IF1, STI_SH);   /* after sti */
        tb_interrupt(&t, HVT_POLICY_EAGER, 0x1004);
        tb_close(&t, true);

        check_ok(t.path, &r);
        expect_only(&r, RULE_NONE, 0);
        cr_expect_eq(r.nundetermined, 0, "%s", summary(&r));
        cr_expect_eq(r.notes[NOTE_SEQUENCE].count, 1, "%s", summary(&r));
        cr_expect_eq(r.notes[NOTE_SEQUENCE].first_pc, 0x1004);
        check_result_free(&r);
}

/* ---- 15. encodings capstone gets wrong ------------------------------------------------------- */

Test(check, mov_ss_with_rex_r_in_long_mode)
{
        /* 1000 nop; 1001 mov ss, eax with REX.R (44 8e d0); 1004 nop; 1005 jmp $ */
        static const uint8_t code[] = { 0x90, 0x44, 0x8e, 0xd0, 0x90, 0xeb, 0xfe };
        struct check_result r;
        struct tb t = { 0 };

        tb_open_opts(&t, "rex-movss.zst", true, 0, HVT_POLICY_EAGER, code, sizeof(code), NULL);
        tb_exit(&t, HVT_EXIT_INTR, 0x1004, RFL_IF1, MOVSS_SH);
        tb_interrupt(&t, HVT_POLICY_EAGER, 0x1004);
        tb_close(&t, true);

        check_ok(t.path, &r);
        expect_only(&r, RULE_MOVSS_SHADOW, 1);
        expect_violation(&r, RULE_MOVSS_SHADOW, 0x1004, 0x1001);
        check_result_free(&r);
}

Test(check, lock_sti_is_not_sti)
{
        /* 1000 cli; 1001 lock sti (#UD: no STI ran); 1003 inc ax; 1004 jmp $ */
        static const uint8_t code[] = { 0xfa, 0xf0, 0xfb, 0x40, 0xeb, 0xfe };
        struct check_result r;
        struct tb t = { 0 };

        tb_open(&t, "lock-sti.zst", 0, HVT_POLICY_EAGER, code, sizeof(code));
        tb_exit(&t, HVT_EXIT_INTR, 0x1003, RFL_IF1, OPEN);
        tb_interrupt(&t, HVT_POLICY_EAGER, 0x1003);
        tb_close(&t, true);

        /* The #UD's handler is what ran before 1003, if anything did: never an STI shadow. */
        check_ok(t.path, &r);
        cr_expect_eq(r.by_rule[RULE_STI_SHADOW], 0, "%s", summary(&r));
        check_result_free(&r);
}

/* ---- 16. control flow the static view does not see ------------------------------------------- */

/*
 * 1000 cli; 1001 push 0x0202; 1004 push cs; 1005 push 0x100a; 1008 iret
 * 1009 sti; 100a inc ax (the IRET's target, after an STI in memory); 100b jmp $
 */
static const uint8_t iret_to_after_sti[] = { 0xfa, 0x68, 0x02, 0x02, 0x0e, 0x68, 0x0a,
                                             0x10, 0xcf, 0xfb, 0x40, 0xeb, 0xfe };

Test(check, iret_target_after_sti_kicked_is_undetermined)
{
        struct check_result r;
        struct tb t = { 0 };

        tb_open(&t, "iret-target.zst", 0, HVT_POLICY_EAGER, iret_to_after_sti,
                sizeof(iret_to_after_sti));
        tb_exit(&t, HVT_EXIT_INTR, 0x1008, RFL_IF0, CLOSED);
        tb_exit(&t, HVT_EXIT_INTR, 0x100a, RFL_IF1, OPEN);
        tb_interrupt(&t, HVT_POLICY_EAGER, 0x100a);
        tb_close(&t, true);

        check_ok(t.path, &r);
        cr_expect_eq(r.nviolations, 0, "%s", summary(&r));
        expect_undetermined(&r, 0, UND_CONTROL, 0x100a);
        check_result_free(&r);
}

/*
 * Single-stepped: the IRET at 0x1008, then a step exit at 0x100a, right
 * after the STI at 0x1009.  Was 0x100a the IRET's target (one step, no
 * shadow), or did the IRET return to the STI and the step come one
 * instruction late, as kvm_pvm's does after IRETQ (a shadow)?  Only the
 * IRET's frame tells: `target` is the IP in it, and the trace holds it
 * when `tracked` (write records); without them the verdict is undetermined.
 */
static void iret_step_case(const char *name, bool tracked, uint16_t target, uint16_t flags,
                           uint32_t intr, struct check_result *r)
{
        const uint8_t frame[] = { (uint8_t)target, (uint8_t)(target >> 8), 0, 0,
                                  (uint8_t)flags,  (uint8_t)(flags >> 8) };
        struct tb t = { 0 };

        tb_open(&t, name, HVT_HDR_SINGLE_STEP | (tracked ? HVT_HDR_WRITES : 0), HVT_POLICY_EAGER,
                iret_to_after_sti, sizeof(iret_to_after_sti));
        t.st.gpr[HVT_F_RSP] = 0x0efa;
        tb_exit(&t, HVT_EXIT_DEBUG, 0x1008, RFL_IF0, CLOSED);
        tb_write(&t, 0x0efa, frame, sizeof(frame), true); /* the pushes, before that exit */
        t.st.gpr[HVT_F_RSP] = 0x0f00;
        tb_exit(&t, HVT_EXIT_DEBUG, 0x100a, RFL_IF1, intr);
        tb_interrupt(&t, HVT_POLICY_EAGER, 0x100a);
        tb_close(&t, true);
        check_ok(t.path, r);
        cr_expect_eq(r->deliveries, 1);
}

Test(check, iret_step_to_after_an_sti_is_legal_where_the_frame_says_so)
{
        struct check_result r;

        iret_step_case("iret-step-target.zst", true, 0x100a, 0x0202, OPEN, &r);
        expect_only(&r, RULE_NONE, 0);
        cr_expect_eq(r.nundetermined, 0, "%s", summary(&r));
        check_result_free(&r);
}

/* The step came late: the IRET returned to the STI (IF=0), which ran too (KVM says so). */
Test(check, iret_step_that_ran_on_through_an_sti_is_a_violation)
{
        struct check_result r;

        iret_step_case("iret-step-late.zst", true, 0x1009, 0x0002, STI_SH, &r);
        expect_only(&r, RULE_STI_SHADOW, 1);
        expect_violation(&r, RULE_STI_SHADOW, 0x100a, 0x1009);
        check_result_free(&r);
}

Test(check, iret_step_to_after_an_sti_is_undetermined_without_the_frame)
{
        struct check_result r;

        iret_step_case("iret-step-untracked.zst", false, 0x100a, 0x0202, OPEN, &r);
        cr_expect_eq(r.nviolations, 0, "%s", summary(&r));
        expect_undetermined(&r, 0, UND_CONTROL, 0x100a);
        check_result_free(&r);
}

/* 1000 cli; 1001 mov bx, 0x1010; 1004 jmp bx; 1006 jmp $; ... 1010 sti; 1011 inc ax; 1012 jmp $ */
static const uint8_t jmp_bx_sti[] = { 0xfa, 0xbb, 0x10, 0x10, 0xff, 0xe3, 0xeb, 0xfe, 0x90, 0x90,
                                      0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0xfb, 0x40, 0xeb, 0xfe };

static void jmp_bx_trace(struct tb *t, const char *name)
{
        tb_open(t, name, HVT_HDR_SINGLE_STEP, HVT_POLICY_EAGER, jmp_bx_sti, sizeof(jmp_bx_sti));
        tb_exit(t, HVT_EXIT_DEBUG, 0x1001, RFL_IF0, CLOSED);
        tb_exit(t, HVT_EXIT_DEBUG, 0x1004, RFL_IF0, CLOSED);
        tb_exit(t, HVT_EXIT_DEBUG, 0x1010, RFL_IF0, CLOSED); /* jmp bx */
        tb_exit(t, HVT_EXIT_DEBUG, 0x1011, RFL_IF1, STI_SH); /* sti with IF=0 */
        tb_interrupt(t, HVT_POLICY_EAGER, 0x1011);
        tb_close(t, true);
}

Test(check, sti_reached_by_jmp_bx)
{
        struct check_opts without = { .without_steps = true, .keep_verdicts = true };
        struct check_opts with = { .keep_verdicts = true };
        struct check_result r, w;
        struct tb t = { 0 };

        jmp_bx_trace(&t, "jmp-bx.zst");
        cr_assert_eq(check_trace_opts(t.path, &with, &r), 0, "%s", r.error);
        expect_only(&r, RULE_STI_SHADOW, 1);
        expect_violation(&r, RULE_STI_SHADOW, 0x1011, 0x1010);
        cr_assert_eq(r.nverdicts, 1);
        cr_expect_eq(r.verdicts[0].rule, RULE_STI_SHADOW);

        /* Without the steps the path through `jmp bx` cannot be followed: undetermined. */
        cr_assert_eq(check_trace_opts(t.path, &without, &w), 0, "%s", w.error);
        cr_expect_eq(w.nviolations, 0, "%s", summary(&w));
        cr_assert_eq(w.nverdicts, 1);
        cr_expect_eq(w.verdicts[0].event, r.verdicts[0].event);
        cr_expect_eq(w.verdicts[0].rule, RULE_UNDETERMINED, "%s", summary(&w));
        cr_expect_eq(w.verdicts[0].und, UND_CONTROL, "%s", summary(&w));
        check_result_free(&r);
        check_result_free(&w);
}

/*
 * 1000 cli; 1001 sti; 1002 push 0x100a; 1005 ret; 1006 nop; nop;
 * 1008 mov ss, ax; 100a mov ss, ax (the RET's target: the FIRST SS load); 100c inc ax; 100d jmp $
 */
static const uint8_t ret_to_movss[] = { 0xfa, 0xfb, 0x68, 0x0a, 0x10, 0xc3, 0x90, 0x90,
                                        0x8e, 0xd0, 0x8e, 0xd0, 0x40, 0xeb, 0xfe };

Test(check, mov_ss_reached_by_ret_is_first)
{
        struct check_result r;
        struct tb t = { 0 };

        tb_open(&t, "ret-movss.zst", HVT_HDR_SINGLE_STEP, HVT_POLICY_EAGER, ret_to_movss,
                sizeof(ret_to_movss));
        tb_exit(&t, HVT_EXIT_DEBUG, 0x1005, RFL_IF1, OPEN);     /* at the ret */
        tb_exit(&t, HVT_EXIT_DEBUG, 0x100a, RFL_IF1, OPEN);     /* the ret ran */
        tb_exit(&t, HVT_EXIT_DEBUG, 0x100c, RFL_IF1, MOVSS_SH); /* mov ss ran */
        tb_interrupt(&t, HVT_POLICY_EAGER, 0x100c);
        tb_close(&t, true);

        check_ok(t.path, &r);
        expect_only(&r, RULE_MOVSS_SHADOW, 1);
        expect_violation(&r, RULE_MOVSS_SHADOW, 0x100c, 0x100a);
        cr_expect_eq(r.notes[NOTE_SEQUENCE].count, 0, "%s", summary(&r));
        check_result_free(&r);
}

Test(check, mov_ss_reached_by_ret_kicked_is_undetermined)
{
        struct check_result r;
        struct tb t = { 0 };

        tb_open(&t, "ret-movss-kick.zst", 0, HVT_POLICY_EAGER, ret_to_movss, sizeof(ret_to_movss));
        tb_exit(&t, HVT_EXIT_INTR, 0x1005, RFL_IF1, OPEN);
        tb_exit(&t, HVT_EXIT_INTR, 0x100c, RFL_IF1, MOVSS_SH);
        tb_interrupt(&t, HVT_POLICY_EAGER, 0x100c);
        tb_close(&t, true);

        check_ok(t.path, &r);
        cr_expect_eq(r.nviolations, 0, "%s", summary(&r));
        cr_expect_eq(r.notes[NOTE_SEQUENCE].count, 0, "%s", summary(&r));
        expect_undetermined(&r, 0, UND_CONTROL, 0x100c);
        check_result_free(&r);
}

/* ---- 17. IF at a handler's entry, IF set far away ----------------------------------------------
 */

#define HANDLER31 0x1900ull

Test(check, sti_at_the_start_of_a_handler)
{
        /* 1000 sti; 1001 nop; 1002 int 0x31; 1004 inc ax; 1005 jmp $ */
        static const uint8_t code[] = { 0xfb, 0x90, 0xcd, 0x31, 0x40, 0xeb, 0xfe };
        /*
         * 1900: sti; inc ax; out 0x80, al; iret (entered through the IVT: IF=0).
         * Every port I/O exits on this backend, so the IRET is past the next
         * exit: no path of the run leaves through it.
         */
        static const uint8_t handler[] = { 0xfb, 0x40, 0xe6, 0x80, 0xcf };
        uint16_t ivt[2] = { (uint16_t)HANDLER31, 0 };
        struct check_result r;
        struct tb t = { 0 };

        t.caps = HVT_CAP_IO_EXITS | HVT_CAP_HLT_EXITS;
        tb_open(&t, "handler-sti.zst", 0, HVT_POLICY_EAGER, code, sizeof(code));
        memcpy(t.mem + 0x31 * 4, ivt, sizeof(ivt));
        memcpy(t.mem + HANDLER31, handler, sizeof(handler));
        cr_assert_eq(hvt_write_memory(t.w, 0, t.mem, t.mem_size), 0);
        tb_exit(&t, HVT_EXIT_INTR, 0x1001, RFL_IF1, OPEN);
        tb_exit(&t, HVT_EXIT_INTR, HANDLER31 + 1, RFL_IF1, STI_SH);
        tb_interrupt(&t, HVT_POLICY_EAGER, HANDLER31 + 1);
        tb_close(&t, true);

        check_ok(t.path, &r);
        expect_only(&r, RULE_STI_SHADOW, 1);
        expect_violation(&r, RULE_STI_SHADOW, HANDLER31 + 1, HANDLER31);
        cr_expect_eq(r.violations[0].if_before, 0);
        check_result_free(&r);
}

Test(check, sti_after_a_distant_cli)
{
        /*
         * cli; 400 x inc ax; mov cx, 50; L: inc bx; jcxz M; M: loop L;
         * sti; inc dx; jmp $ -- every path to the STI starts at the CLI.
         */
        uint8_t code[512];
        size_t n = 0, at;
        struct check_result r;
        struct tb t = { 0 };

        code[n++] = 0xfa;
        for (int i = 0; i < 400; i++)
                code[n++] = 0x40;
        code[n++] = 0xb9, code[n++] = 50, code[n++] = 0;
        code[n++] = 0x43;                   /* L: inc bx */
        code[n++] = 0xe3, code[n++] = 0x00; /* jcxz M (M is next) */
        code[n++] = 0xe2, code[n++] = 0xfb; /* M: loop L */
        code[n++] = 0xfb;
        at = CODE + n;
        code[n++] = 0x42, code[n++] = 0xeb, code[n++] = 0xfe;

        tb_open(&t, "distant-cli.zst", 0, HVT_POLICY_EAGER, code, n);
        tb_exit(&t, HVT_EXIT_INTR, at, RFL_IF1, STI_SH);
        tb_interrupt(&t, HVT_POLICY_EAGER, at);
        tb_close(&t, true);

        check_ok(t.path, &r);
        expect_only(&r, RULE_STI_SHADOW, 1);
        expect_violation(&r, RULE_STI_SHADOW, at, at - 1);
        check_result_free(&r);
}

/* ---- 18. self-modifying code -------------------------------------------------------------- */

/* An STI that ran and is overwritten with a NOP afterwards: judged by the bytes that ran. */
Test(check, sti_overwritten_after_it_ran)
{
        static const uint8_t nop = 0x90;
        struct check_result r;
        struct tb t = { 0 };

        tb_open(&t, "smc-sti.zst", HVT_HDR_WRITES, HVT_POLICY_EAGER, cli_sti_inc,
                sizeof(cli_sti_inc));
        tb_exit(&t, HVT_EXIT_INTR, 0x1002, RFL_IF1, STI_SH);
        tb_interrupt(&t, HVT_POLICY_EAGER, 0x1002);
        tb_exit(&t, HVT_EXIT_INTR, 0x1003, RFL_IF1, OPEN);
        tb_write(&t, 0x1001, &nop, 1, true);
        tb_exit(&t, HVT_EXIT_INTR, 0x1003, RFL_IF1, OPEN);
        tb_close(&t, true);

        check_ok(t.path, &r);
        expect_only(&r, RULE_STI_SHADOW, 1);
        expect_violation(&r, RULE_STI_SHADOW, 0x1002, 0x1001);
        cr_expect_eq(r.notes[NOTE_WRITES_UNTRACKED].count, 0, "%s", summary(&r));
        check_result_free(&r);
}

/* A NOP that ran, later overwritten with MOV SS: the delivery after the NOP stays legal. */
Test(check, mov_ss_written_over_a_nop_that_ran)
{
        /* 1000 nop; 1001 nop; 1002 inc ax; 1003 jmp $ */
        static const uint8_t code[] = { 0x90, 0x90, 0x40, 0xeb, 0xfe };
        static const uint8_t movss[] = { 0x8e, 0xd0 };
        struct check_result r;
        struct tb t = { 0 };

        tb_open(&t, "smc-movss.zst", HVT_HDR_WRITES, HVT_POLICY_EAGER, code, sizeof(code));
        tb_exit(&t, HVT_EXIT_INTR, 0x1002, RFL_IF1, OPEN);
        tb_interrupt(&t, HVT_POLICY_EAGER, 0x1002);
        tb_exit(&t, HVT_EXIT_INTR, 0x1003, RFL_IF1, OPEN);
        tb_write(&t, 0x1000, movss, sizeof(movss), true);
        tb_exit(&t, HVT_EXIT_INTR, 0x1003, RFL_IF1, OPEN);
        tb_close(&t, true);

        check_ok(t.path, &r);
        expect_only(&r, RULE_NONE, 0);
        cr_expect_eq(r.nundetermined, 0, "%s", summary(&r));
        check_result_free(&r);
}

/*
 * Code written and run in the same run (no exit between): the written
 * bytes are known only at the exit after, so the instruction before the
 * delivery is not known.
 */
Test(check, code_written_and_run_between_two_exits)
{
        /* 1000 cli; 1001 jmp 1010; ... 1010: nop (becomes sti); 1011 inc ax; 1012 jmp $ */
        static const uint8_t code[] = {
                0xfa, 0xeb, 0x0d, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90,
                0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x40, 0xeb, 0xfe
        };
        static const uint8_t sti = 0xfb;
        struct check_result r;
        struct tb t = { 0 };

        tb_open(&t, "smc-fresh.zst", HVT_HDR_WRITES, HVT_POLICY_EAGER, code, sizeof(code));
        tb_exit(&t, HVT_EXIT_INTR, 0x1001, RFL_IF0, CLOSED);
        tb_exit(&t, HVT_EXIT_INTR, 0x1011, RFL_IF1, STI_SH);
        tb_write(&t, 0x1010, &sti, 1, true); /* written during the run that ended here */
        tb_interrupt(&t, HVT_POLICY_EAGER, 0x1011);
        tb_close(&t, true);

        check_ok(t.path, &r);
        cr_expect_eq(r.nviolations, 0, "%s", summary(&r));
        expect_undetermined(&r, 0, UND_CODE_WRITTEN, 0x1011);
        check_result_free(&r);
}

/*
 * Without write records, bytes an exit shows changed are unsure for the
 * whole trace.  In long mode the scan that finds them must translate
 * through the page tables of the memory it has read, not through the
 * checker's own view, which holds no RAM yet: it did, marked nothing, and
 * judged the overwritten STI as if it had surely run.
 */
static void untracked_change(bool longmode)
{
        static const uint8_t nop = 0x90;
        struct check_result r;
        struct tb t = { 0 };

        tb_open_opts(&t, longmode ? "smc-untracked-64.zst" : "smc-untracked.zst", longmode, 0,
                     HVT_POLICY_EAGER, cli_sti_inc, sizeof(cli_sti_inc), NULL);
        tb_exit(&t, HVT_EXIT_INTR, 0x1002, RFL_IF1, STI_SH);
        tb_interrupt(&t, HVT_POLICY_EAGER, 0x1002);
        tb_write(&t, 0x1001, &nop, 1, false);
        tb_exit(&t, HVT_EXIT_INTR, 0x1001, RFL_IF1, OPEN); /* shows the NOP */
        tb_close(&t, true);

        check_ok(t.path, &r);
        cr_expect_eq(r.nviolations, 0, "%s", summary(&r));
        expect_undetermined(&r, 0, UND_CODE_WRITTEN, 0x1002);
        cr_expect_eq(r.notes[NOTE_WRITES_UNTRACKED].count, 1, "%s", summary(&r));
        check_result_free(&r);
}

Test(check, untracked_change_seen_at_an_exit)
{
        untracked_change(false);
}

Test(check, untracked_change_seen_at_an_exit_in_long_mode)
{
        untracked_change(true);
}

/* ---- 19. software interrupts into the probed handler ---------------------------------------- */

static void softint_case(bool if_set, bool injected, struct check_result *r)
{
        /* 1000 sti / cli; 1001 int 0x30; 1003 inc ax; 1004 jmp $ */
        uint8_t code[] = { if_set ? 0xfb : 0xfa, 0xcd, VEC, 0x40, 0xeb, 0xfe };
        struct tb t = { 0 };

        tb_open(&t, "softint.zst", 0, HVT_POLICY_EAGER, code, sizeof(code));
        tb_exit(&t, HVT_EXIT_INTR, 0x1001, if_set ? RFL_IF1 : RFL_IF0, if_set ? OPEN : CLOSED);
        if (injected)
                tb_inject(&t, HVT_POLICY_EAGER);
        tb_probe(&t, 0x1003, if_set ? RFL_IF1 : RFL_IF0); /* the INT's frame: past it */
        tb_close(&t, true);
        check_ok(t.path, r);
        cr_expect_eq(r->deliveries, 1);
}

Test(check, int_n_into_the_probe_is_a_note)
{
        struct check_result r;

        softint_case(true, false, &r);
        expect_only(&r, RULE_NONE, 0);
        cr_expect_eq(r.notes[NOTE_SOFTWARE_INT].count, 1, "%s", summary(&r));
        check_result_free(&r);
        /* IF does not mask INT n: no if-clear either. */
        softint_case(false, false, &r);
        expect_only(&r, RULE_NONE, 0);
        cr_expect_eq(r.notes[NOTE_SOFTWARE_INT].count, 1, "%s", summary(&r));
        check_result_free(&r);
}

Test(check, int_n_or_injected_is_undetermined)
{
        struct check_result r;

        /* An injection of the same vector was outstanding, and 1003 is reachable without the INT.
         */
        softint_case(true, true, &r);
        cr_expect_eq(r.nviolations, 0, "%s", summary(&r));
        cr_expect_eq(r.notes[NOTE_SOFTWARE_INT].count + r.nundetermined, 1, "%s", summary(&r));
        check_result_free(&r);
}

/* ---- 20. single steps where nothing retired -----------------------------------------------------
 */

Test(check, rep_iterations_are_known_steps)
{
        /* 1000 cld; 1001 mov cx, 3; 1004 rep movsb; 1006 cli; 1007 sti; 1008 inc ax; 1009 jmp $ */
        static const uint8_t code[] = { 0xfc, 0xb9, 0x03, 0x00, 0xf3, 0xa4,
                                        0xfa, 0xfb, 0x40, 0xeb, 0xfe };
        struct check_result r;
        struct tb t = { 0 };

        tb_open(&t, "rep-steps.zst", HVT_HDR_SINGLE_STEP, HVT_POLICY_EAGER, code, sizeof(code));
        tb_exit(&t, HVT_EXIT_DEBUG, 0x1001, RFL_IF1, OPEN);
        tb_exit(&t, HVT_EXIT_DEBUG, 0x1004, RFL_IF1, OPEN);
        tb_exit(&t, HVT_EXIT_DEBUG, 0x1004, RFL_IF1, OPEN); /* one iteration */
        tb_exit(&t, HVT_EXIT_DEBUG, 0x1004, RFL_IF1, OPEN); /* another */
        tb_exit(&t, HVT_EXIT_DEBUG, 0x1006, RFL_IF1, OPEN); /* the last */
        tb_exit(&t, HVT_EXIT_DEBUG, 0x1007, RFL_IF0, CLOSED);
        tb_exit(&t, HVT_EXIT_DEBUG, 0x1008, RFL_IF1, STI_SH);
        tb_interrupt(&t, HVT_POLICY_EAGER, 0x1008);
        tb_close(&t, true);

        check_ok(t.path, &r);
        expect_only(&r, RULE_STI_SHADOW, 1);
        expect_violation(&r, RULE_STI_SHADOW, 0x1008, 0x1007);
        check_result_free(&r);
}

Test(check, mmio_exit_is_a_known_step)
{
        /* 1000 cli; 1001 mov al, [0]; 1004 sti; 1005 inc ax; 1006 jmp $ */
        static const uint8_t code[] = { 0xfa, 0xa0, 0x00, 0x00, 0xfb, 0x40, 0xeb, 0xfe };
        struct check_result r;
        struct tb t = { 0 };

        tb_open(&t, "mmio-step.zst", HVT_HDR_SINGLE_STEP, HVT_POLICY_EAGER, code, sizeof(code));
        tb_exit(&t, HVT_EXIT_DEBUG, 0x1001, RFL_IF0, CLOSED);
        tb_exit(&t, HVT_EXIT_MMIO, 0x1001, RFL_IF0, CLOSED); /* the load stopped, not retired */
        tb_exit(&t, HVT_EXIT_DEBUG, 0x1004, RFL_IF0, CLOSED);
        tb_exit(&t, HVT_EXIT_DEBUG, 0x1005, RFL_IF1, STI_SH);
        tb_interrupt(&t, HVT_POLICY_EAGER, 0x1005);
        tb_close(&t, true);

        check_ok(t.path, &r);
        expect_only(&r, RULE_STI_SHADOW, 1);
        expect_violation(&r, RULE_STI_SHADOW, 0x1005, 0x1004);
        check_result_free(&r);
}

/* ---- 21. frames --------------------------------------------------------------------------------
 */

/* The interrupted code runs in CS=0100 (base 0x1000), the handler in CS=0000. */
Test(check, real_mode_frame_names_its_own_cs)
{
        struct check_result r;
        struct tb t = { 0 };

        tb_open(&t, "frame-cs.zst", 0, HVT_POLICY_EAGER, cli_sti_inc, sizeof(cli_sti_inc));
        set_seg(&t.st.seg[HVT_CS], 0x0100, 0x1000, 0xffff, HVT_SEG_P | HVT_SEG_S | 0xb);
        tb_exit(&t, HVT_EXIT_INTR, 0x0000, RFL_IF0, CLOSED); /* 0100:0000 */
        tb_exit(&t, HVT_EXIT_INTR, 0x0002, RFL_IF1, STI_SH); /* 0100:0002, after the STI */
        tb_interrupt(&t, HVT_POLICY_EAGER, 0x0002);
        tb_close(&t, true);

        check_ok(t.path, &r);
        expect_only(&r, RULE_STI_SHADOW, 1);
        expect_violation(&r, RULE_STI_SHADOW, 0x1002, 0x1001);
        cr_expect_eq(r.violations[0].cs, 0x0100);
        cr_expect_eq(r.violations[0].rip, 0x0002);
        check_result_free(&r);
}

/* In 16-bit code the bytes before IP 0 are those at the top of the segment. */
Test(check, delaying_instruction_before_a_wrap)
{
        struct code_ctx x = { .cs_base = 0x10000, .bits = 16 };
        struct disasm *dis;
        struct code c;
        uint16_t lens;
        uint8_t sti = 0xfb, nop = 0x90;
        uint32_t ctx;

        cr_assert_eq(disasm_open(&dis), 0);
        cr_assert_eq(code_init(&c, dis, 0x20000), 0);
        ctx = code_ctx_add(&c, &x);
        code_load(&c, 0x1ffff, &sti, 1);
        cr_expect(code_delaying_before(&c, 0x10000, ctx, &lens));
        cr_expect_eq(lens & 1, 1, "the STI at 1000:ffff ends at 1000:0000 (lens %#x)", lens);
        code_load(&c, 0x1ffff, &nop, 1);
        cr_expect(code_delaying_before(&c, 0x10000, ctx, &lens));
        cr_expect_eq(lens, 0);
        code_free(&c);
        disasm_close(dis);
}

/*
 * A write to a page that holds decoded code (here a counter beside the
 * code) keeps the decodes whose bytes it left alone, and only those.
 */
Test(check, decodes_kept_across_writes_beside_them)
{
        static const uint8_t code[] = {
                0xb8, 0x34, 0x12, 0xfb, 0x00, 0x00
        }; /* mov ax; sti; dw 0 */
        struct code_ctx x = { .bits = 16 };
        uint8_t count[2] = { 1, 0 }, imm = 0x99, sti = 0xfb;
        struct code_insn in;
        struct disasm *dis;
        struct code c;
        uint32_t ctx;

        cr_assert_eq(disasm_open(&dis), 0);
        cr_assert_eq(code_init(&c, dis, 0x20000), 0);
        ctx = code_ctx_add(&c, &x);
        code_load(&c, 0x1000, code, sizeof(code));
        cr_assert_eq(code_insn(&c, 0x1000, ctx, &in), CODE_OK);
        cr_expect_eq(in.len, 3);
        for (int i = 0; i < 3; i++) {
                count[0]++;
                code_write(&c, 0x1004, count, 2);
                code_interval(&c);
                cr_assert_eq(code_insn(&c, 0x1000, ctx, &in), CODE_OK);
                cr_expect_eq(in.len, 3);
                cr_expect_eq(in.bytes[1], 0x34);
        }
        code_write(&c, 0x1001, &imm, 1); /* the MOV's immediate */
        code_interval(&c);
        cr_assert_eq(code_insn(&c, 0x1000, ctx, &in), CODE_OK);
        cr_expect_eq(in.len, 3);
        cr_expect_eq(in.bytes[1], 0x99, "the new immediate (%#x)", in.bytes[1]);
        code_write(&c, 0x1000, &sti, 1); /* a different instruction */
        code_interval(&c);
        cr_assert_eq(code_insn(&c, 0x1000, ctx, &in), CODE_OK);
        cr_expect_eq(in.len, 1);
        cr_expect(in.flags & DISASM_STI);
        code_free(&c);
        disasm_close(dis);
}

/* Bytes written during the current interval, and only those, are unsure. */
Test(check, unsure_bytes_are_those_written_in_the_interval)
{
        struct code_ctx x = { .bits = 16 };
        uint8_t two[2] = { 1, 2 }, buf[16];
        struct disasm *dis;
        struct code c;
        bool unsure;

        cr_assert_eq(disasm_open(&dis), 0);
        cr_assert_eq(code_init(&c, dis, 0x20000), 0);
        code_ctx_add(&c, &x);
        code_write(&c, 0x1005, two, 2);
        code_write(&c, 0x1010, two, 1);
        for (uint64_t s = 0x1000; s < 0x1012; s++) {
                for (size_t n = 1; n <= 15; n++) {
                        bool want =
                                (s < 0x1007 && s + n > 0x1005) || (s <= 0x1010 && s + n > 0x1010);

                        cr_assert_eq(code_read_sure(&c, &x, s, buf, n, &unsure), n);
                        cr_expect_eq(unsure, want, "%zu bytes at %#llx", n, (unsigned long long)s);
                }
        }
        code_interval(&c);
        cr_assert_eq(code_read_sure(&c, &x, 0x1000, buf, 15, &unsure), 15);
        cr_expect_not(unsure, "known from the next interval on");
        code_mark_volatile(&c, &c, &x, 0x100a, 1);
        cr_assert_eq(code_read_sure(&c, &x, 0x100b, buf, 4, &unsure), 4);
        cr_expect_not(unsure);
        cr_assert_eq(code_read_sure(&c, &x, 0x1008, buf, 3, &unsure), 3);
        cr_expect(unsure, "a volatile byte");
        code_free(&c);
        disasm_close(dis);
}

/* ---- 22. returns through a stack the trace holds ------------------------------------------ */

/*
 * Kicked in a handler at `pop ax; iret` whose frame (in memory the trace
 * records) returns to the STI of cli; sti; inc ax with IF=0: from there the
 * only path is through the STI, so a delivery after it is in its shadow.
 * `flags_written`: the frame's FLAGS word was written during the run, so IF
 * after the IRET (and so the STI's shadow) is not known.
 */
static void iret_frame_case(bool flags_written, struct check_result *r)
{
        static const uint8_t handler[] = { 0x58, 0xcf }; /* 1900: pop ax; iret */
        /* at SP 0x0ef8: ax, then the frame: IP 0x1001 (the sti), CS 0, FLAGS 0x0002 */
        static const uint8_t stack[] = { 0x34, 0x12, 0x01, 0x10, 0x00, 0x00, 0x02, 0x00 };
        struct tb t = { 0 };

        tb_open(&t, flags_written ? "iret-frame-w.zst" : "iret-frame.zst", HVT_HDR_WRITES,
                HVT_POLICY_EAGER, cli_sti_inc, sizeof(cli_sti_inc));
        memcpy(t.mem + HANDLER31, handler, sizeof(handler));
        memcpy(t.mem + 0x0ef8, stack, sizeof(stack));
        cr_assert_eq(hvt_write_memory(t.w, 0, t.mem, t.mem_size), 0);
        t.st.gpr[HVT_F_RSP] = 0x0ef8;
        tb_exit(&t, HVT_EXIT_INTR, HANDLER31, RFL_IF0, CLOSED);
        t.st.gpr[HVT_F_RSP] = 0x0f00;
        tb_exit(&t, HVT_EXIT_INTR, 0x1002, RFL_IF1, 0);
        if (flags_written)
                tb_write(&t, 0x0efe, stack + 6, 2, true); /* FLAGS, written in the run */
        tb_interrupt(&t, HVT_POLICY_EAGER, 0x1002);
        tb_close(&t, true);
        check_ok(t.path, r);
        cr_expect_eq(r->deliveries, 1);
}

Test(check, iret_target_from_the_recorded_stack)
{
        struct check_result r;

        iret_frame_case(false, &r);
        expect_only(&r, RULE_STI_SHADOW, 1);
        expect_violation(&r, RULE_STI_SHADOW, 0x1002, 0x1001);
        check_result_free(&r);

        iret_frame_case(true, &r);
        cr_expect_eq(r.nviolations, 0, "%s", summary(&r));
        expect_undetermined(&r, 0, UND_IF_UNKNOWN, 0x1002);
        check_result_free(&r);
}

/* Without write records the stack's contents are not known: the IRET is not followed. */
Test(check, iret_not_followed_without_write_records)
{
        static const uint8_t handler[] = { 0x58, 0xcf };
        static const uint8_t stack[] = { 0x34, 0x12, 0x01, 0x10, 0x00, 0x00, 0x02, 0x00 };
        struct check_result r;
        struct tb t = { 0 };

        tb_open(&t, "iret-frame-untracked.zst", 0, HVT_POLICY_EAGER, cli_sti_inc,
                sizeof(cli_sti_inc));
        memcpy(t.mem + HANDLER31, handler, sizeof(handler));
        memcpy(t.mem + 0x0ef8, stack, sizeof(stack));
        cr_assert_eq(hvt_write_memory(t.w, 0, t.mem, t.mem_size), 0);
        t.st.gpr[HVT_F_RSP] = 0x0ef8;
        tb_exit(&t, HVT_EXIT_INTR, HANDLER31, RFL_IF0, CLOSED);
        t.st.gpr[HVT_F_RSP] = 0x0f00;
        tb_exit(&t, HVT_EXIT_INTR, 0x1002, RFL_IF1, 0);
        tb_interrupt(&t, HVT_POLICY_EAGER, 0x1002);
        tb_close(&t, true);

        check_ok(t.path, &r);
        cr_expect_eq(r.nviolations, 0, "%s", summary(&r));
        expect_undetermined(&r, 0, UND_CONTROL, 0x1002);
        check_result_free(&r);
}

/*
 * The same start twice, the frame rewritten in between (a WRITE record):
 * the second flow must read the new frame, not reuse the first one's.
 * First the IRET returns to the STI with IF=0 (a violation after it), then
 * past it, to 0x1002, with IF=1: the IRET is what ran before, legal.
 */
Test(check, a_flow_is_not_reused_when_its_stack_changed)
{
        static const uint8_t handler[] = { 0x58, 0xcf };
        static const uint8_t to_sti[] = { 0x34, 0x12, 0x01, 0x10, 0x00, 0x00, 0x02, 0x00 };
        static const uint8_t to_inc[] = { 0x34, 0x12, 0x02, 0x10, 0x00, 0x00, 0x02, 0x02 };
        struct check_result r;
        struct tb t = { 0 };

        tb_open(&t, "iret-frame-twice.zst", HVT_HDR_WRITES, HVT_POLICY_EAGER, cli_sti_inc,
                sizeof(cli_sti_inc));
        memcpy(t.mem + HANDLER31, handler, sizeof(handler));
        memcpy(t.mem + 0x0ef8, to_sti, sizeof(to_sti));
        cr_assert_eq(hvt_write_memory(t.w, 0, t.mem, t.mem_size), 0);
        t.st.gpr[HVT_F_RSP] = 0x0ef8;
        tb_exit(&t, HVT_EXIT_INTR, HANDLER31, RFL_IF0, CLOSED);
        t.st.gpr[HVT_F_RSP] = 0x0f00;
        tb_exit(&t, HVT_EXIT_INTR, 0x1002, RFL_IF1, 0);
        tb_interrupt(&t, HVT_POLICY_EAGER, 0x1002); /* after the STI: a violation */
        /* Back in the handler, the frame now returning to 0x1002 with IF=1. */
        t.st.gpr[HVT_F_RSP] = 0x0ef8;
        tb_exit(&t, HVT_EXIT_INTR, HANDLER31, RFL_IF0, CLOSED);
        tb_write(&t, 0x0ef8, to_inc, sizeof(to_inc), true);
        tb_exit(&t, HVT_EXIT_INTR, HANDLER31, RFL_IF0, CLOSED); /* the same start */
        t.st.gpr[HVT_F_RSP] = 0x0f00;
        tb_exit(&t, HVT_EXIT_INTR, 0x1002, RFL_IF1, 0);
        tb_interrupt(&t, HVT_POLICY_EAGER, 0x1002); /* reached by the IRET: legal */
        tb_close(&t, true);

        check_ok(t.path, &r);
        cr_expect_eq(r.deliveries, 2);
        expect_only(&r, RULE_STI_SHADOW, 1);
        cr_expect_eq(r.violations[0].event, 2, "the first, after the STI: %s", summary(&r));
        cr_expect_eq(r.nundetermined, 0, "%s", summary(&r));
        check_result_free(&r);
}

/* ---- guest #DB: single-step traps and the MOV SS hold ---------------------------------- */

#define RFL_TF 0x100ull

/* 1000 nop; 1001 mov ss, ax; 1003 inc ax; 1004 jmp $ */
static const uint8_t movss_inc[] = { 0x90, 0x8e, 0xd0, 0x40, 0xeb, 0xfe };

/* A kick at 1000, then the guest's own #DB (no injection) delivered at ip with flags. */
static void db_case(const char *name, const uint8_t *code, size_t len, uint64_t ip, uint64_t flags,
                    struct check_result *r)
{
        struct tb t = { 0 };

        tb_open(&t, name, 0, HVT_POLICY_WINDOW, code, len);
        tb_exit(&t, HVT_EXIT_INTR, 0x1000, RFL_IF1, OPEN);
        tb_probe_vec(&t, 1, ip, flags);
        tb_close(&t, true);
        check_ok(t.path, r);
        cr_expect_eq(r->deliveries, 1);
        cr_expect_eq(r->injections, 0);
}

/* SDM Vol. 3A 6.8.3: MOV SS holds the single-step trap until the next instruction completes. */
Test(check, db_trap_right_after_mov_ss_is_db_movss_shadow)
{
        struct check_result r;

        db_case("db-movss.zst", movss_inc, sizeof(movss_inc), 0x1003, RFL_IF1 | RFL_TF, &r);
        expect_only(&r, RULE_DB_MOVSS_SHADOW, 1);
        expect_violation(&r, RULE_DB_MOVSS_SHADOW, 0x1003, 0x1001);
        cr_expect_eq(r.violations[0].vector, 1);
        cr_expect(!r.violations[0].have_intr);
        check_result_free(&r);
}

Test(check, db_trap_right_after_pop_ss_is_db_movss_shadow)
{
        /* 1000 nop; 1001 pop ss; 1002 inc ax; 1003 jmp $ */
        static const uint8_t code[] = { 0x90, 0x17, 0x40, 0xeb, 0xfe };
        struct check_result r;

        db_case("db-popss.zst", code, sizeof(code), 0x1002, RFL_IF1 | RFL_TF, &r);
        expect_only(&r, RULE_DB_MOVSS_SHADOW, 1);
        expect_violation(&r, RULE_DB_MOVSS_SHADOW, 0x1002, 0x1001);
        check_result_free(&r);
}

/* The SDM's order: after the instruction that follows the MOV SS.  Not spurious either. */
Test(check, db_trap_after_the_next_instruction_is_a_note)
{
        struct check_result r;

        db_case("db-movss-next.zst", movss_inc, sizeof(movss_inc), 0x1004, RFL_IF1 | RFL_TF, &r);
        expect_only(&r, RULE_NONE, 0);
        cr_expect_eq(r.nundetermined, 0, "%s", summary(&r));
        cr_expect_eq(r.notes[NOTE_DEBUG_EXCEPTION].count, 1, "%s", summary(&r));
        cr_expect_eq(r.notes[NOTE_DEBUG_EXCEPTION].first_pc, 0x1004);
        check_result_free(&r);
}

/*
 * STI holds no #DB, and a #DB is no maskable interrupt: after the STI that
 * opened an interrupt shadow, and with IF=0 in the frame (after the CLI),
 * neither sti-shadow nor if-clear.
 */
Test(check, db_trap_after_sti_or_with_if_clear_is_a_note)
{
        struct check_result r;
        struct tb t = { 0 };

        tb_open(&t, "db-sti.zst", 0, HVT_POLICY_WINDOW, cli_sti_inc, sizeof(cli_sti_inc));
        tb_exit(&t, HVT_EXIT_INTR, 0x1000, RFL_IF1, OPEN);
        tb_probe_vec(&t, 1, 0x1001, RFL_IF0 | RFL_TF); /* after the CLI */
        tb_exit(&t, HVT_EXIT_INTR, 0x1001, RFL_IF0, CLOSED);
        tb_probe_vec(&t, 1, 0x1002, RFL_IF1 | RFL_TF); /* after the STI, IF 0->1 */
        tb_close(&t, true);

        check_ok(t.path, &r);
        cr_expect_eq(r.deliveries, 2);
        expect_only(&r, RULE_NONE, 0);
        cr_expect_eq(r.nundetermined, 0, "%s", summary(&r));
        cr_expect_eq(r.notes[NOTE_DEBUG_EXCEPTION].count, 2, "%s", summary(&r));
        check_result_free(&r);
}

/*
 * TF clear: a breakpoint in the guest's DR7.  After an SS load a data
 * breakpoint would be held; an instruction breakpoint is not what the rule
 * covers; the trace holds neither DR6 nor DR7.  Where no SS load can end,
 * no shadow.
 */
Test(check, db_with_tf_clear_after_mov_ss_is_undetermined)
{
        struct check_result r;

        db_case("db-tf0.zst", movss_inc, sizeof(movss_inc), 0x1003, RFL_IF1, &r);
        expect_only(&r, RULE_UNDETERMINED, 1);
        expect_undetermined(&r, 0, UND_DEBUG_CAUSE, 0x1003);
        check_result_free(&r);
        db_case("db-tf0-next.zst", movss_inc, sizeof(movss_inc), 0x1004, RFL_IF1, &r);
        expect_only(&r, RULE_NONE, 0);
        cr_expect_eq(r.notes[NOTE_DEBUG_EXCEPTION].count, 1, "%s", summary(&r));
        check_result_free(&r);
}

/* Vector 1 injected by the VMM is judged like any injected interrupt. */
Test(check, injected_vector_1_is_not_a_guest_db)
{
        struct check_result r;
        struct tb t = { 0 };
        struct hvt_disk_inject in;

        tb_open(&t, "db-injected.zst", 0, HVT_POLICY_EAGER, movss_inc, sizeof(movss_inc));
        tb_exit(&t, HVT_EXIT_INTR, 0x1003, RFL_IF1, MOVSS_SH);
        memset(&in, 0, sizeof(in));
        in.after_seq = t.last_exit;
        in.rip = 0x1003;
        in.rflags = RFL_IF1;
        in.handler = HANDLER;
        in.intr = MOVSS_SH;
        in.vector = 1;
        in.policy = HVT_POLICY_EAGER;
        in.method = HVT_INJ_QUEUE;
        in.source = HVT_SRC_OPTION;
        cr_assert_eq(hvt_write_inject(t.w, &in), 0);
        tb_probe_vec(&t, 1, 0x1003, RFL_IF1);
        tb_close(&t, true);

        check_ok(t.path, &r);
        expect_only(&r, RULE_MOVSS_SHADOW, 1);
        cr_expect_eq(r.notes[NOTE_DEBUG_EXCEPTION].count, 0, "%s", summary(&r));
        check_result_free(&r);
}

/*
 * A TF single step that starts at MOV SS ends after the next instruction
 * (KVM's --single-step): the step exit after 1001 stands at 1004, two
 * instructions on.  It must not be read as "the MOV SS ran last".
 */
Test(check, single_step_over_mov_ss_covers_two_instructions)
{
        struct check_result r;
        struct tb t = { 0 };

        tb_open(&t, "step-movss-held.zst", HVT_HDR_SINGLE_STEP, HVT_POLICY_EAGER, movss_inc,
                sizeof(movss_inc));
        tb_exit(&t, HVT_EXIT_DEBUG, 0x1001, RFL_IF1, OPEN); /* after the nop */
        tb_exit(&t, HVT_EXIT_DEBUG, 0x1004, RFL_IF1, OPEN); /* after mov ss AND inc ax */
        tb_interrupt(&t, HVT_POLICY_EAGER, 0x1004);
        tb_close(&t, true);

        check_ok(t.path, &r);
        cr_expect_eq(r.deliveries, 1);
        expect_only(&r, RULE_NONE, 0);
        cr_expect_eq(r.nundetermined, 0, "%s", summary(&r));
        check_result_free(&r);
}

/*
 * The same with a RET after the MOV SS (a stack switch) into code after an
 * STI, in a trace without write records: the paths cannot follow the RET,
 * but the held step names both instructions, so the delivery after the RET
 * is decided (legal: the RET ran last).
 */
Test(check, single_step_over_mov_ss_and_ret_is_decided)
{
        uint8_t code[0x20];
        struct check_result r;
        struct tb t = { 0 };

        memset(code, 0x90, sizeof(code));
        code[1] = 0x8e; /* 1001 mov ss, ax */
        code[2] = 0xd0;
        code[3] = 0xc3;    /* 1003 ret */
        code[0xf] = 0xfb;  /* 100f sti: a delaying instruction ends at 1010 */
        code[0x10] = 0xeb; /* 1010 jmp $ */
        code[0x11] = 0xfe;
        tb_open(&t, "step-movss-ret.zst", HVT_HDR_SINGLE_STEP, HVT_POLICY_EAGER, code,
                sizeof(code));
        tb_exit(&t, HVT_EXIT_DEBUG, 0x1001, RFL_IF1, OPEN);
        t.st.gpr[HVT_F_RSP] += 2;
        tb_exit(&t, HVT_EXIT_DEBUG, 0x1010, RFL_IF1, OPEN); /* mov ss; ret in one step */
        tb_interrupt(&t, HVT_POLICY_EAGER, 0x1010);
        tb_close(&t, true);

        check_ok(t.path, &r);
        cr_expect_eq(r.deliveries, 1);
        expect_only(&r, RULE_NONE, 0);
        cr_expect_eq(r.nundetermined, 0, "%s", summary(&r));
        check_result_free(&r);
}

/* Stepped one instruction at a time (emu), the step after MOV SS stands in its shadow. */
Test(check, single_step_one_instruction_after_mov_ss_is_still_read)
{
        struct check_result r;
        struct tb t = { 0 };

        tb_open(&t, "step-movss-one.zst", HVT_HDR_SINGLE_STEP, HVT_POLICY_EAGER, movss_inc,
                sizeof(movss_inc));
        tb_exit(&t, HVT_EXIT_DEBUG, 0x1001, RFL_IF1, OPEN);
        tb_exit(&t, HVT_EXIT_DEBUG, 0x1003, RFL_IF1, MOVSS_SH);
        tb_interrupt(&t, HVT_POLICY_EAGER, 0x1003);
        tb_close(&t, true);

        check_ok(t.path, &r);
        expect_only(&r, RULE_MOVSS_SHADOW, 1);
        expect_violation(&r, RULE_MOVSS_SHADOW, 0x1003, 0x1001);
        check_result_free(&r);
}

/* ---- NMIs ------------------------------------------------------------------------------- */

/*
 * An NMI injected after the last exit (method NMI, vector 2: in these real-
 * mode traces IVT entry 2 is not set up, which the checker does not read)
 * and delivered at ip with the last exit's flags.  With `nmi` false, a
 * maskable interrupt of vector 2 instead: the same vector, other rules.
 */
static uint64_t tb_nmi(struct tb *t, unsigned policy, uint64_t ip, bool nmi)
{
        tb_inject_of(t, policy, HANDLER, 2, nmi ? HVT_INJ_NMI : HVT_INJ_QUEUE);
        return tb_probe_of(t, ip, t->last_st.rflags, 2, nmi ? HVT_DELIVER_NMI : 0);
}

Test(check, nmi_in_movss_shadow_is_its_own_rule)
{
        struct check_result r;
        struct tb t = { 0 };

        tb_open(&t, "nmi-movss.zst", 0, HVT_POLICY_EAGER, movss_inc, sizeof(movss_inc));
        /* IF=0 all along: an NMI does not care, and is not if-clear. */
        tb_exit(&t, HVT_EXIT_INTR, 0x1003, RFL_IF0, kvm_intr(0, HVT_INTR_MOVSS_SHADOW, 0));
        tb_nmi(&t, HVT_POLICY_EAGER, 0x1003, true);
        tb_close(&t, true);

        check_ok(t.path, &r);
        cr_expect_eq(r.deliveries, 1);
        expect_only(&r, RULE_NMI_MOVSS_SHADOW, 1);
        expect_violation(&r, RULE_NMI_MOVSS_SHADOW, 0x1003, 0x1001);
        cr_expect_eq(r.violations[0].vector, 2);
        check_result_free(&r);
}

Test(check, maskable_vector_2_keeps_the_maskable_rules)
{
        struct check_result r;
        struct tb t = { 0 };

        tb_open(&t, "vec2-movss.zst", 0, HVT_POLICY_BLIND, movss_inc, sizeof(movss_inc));
        tb_exit(&t, HVT_EXIT_INTR, 0x1003, RFL_IF0, kvm_intr(0, HVT_INTR_MOVSS_SHADOW, 0));
        tb_nmi(&t, HVT_POLICY_BLIND, 0x1003, false);
        tb_close(&t, true);

        check_ok(t.path, &r);
        expect_only(&r, RULE_IF_CLEAR, 1);
        check_result_free(&r);
}

Test(check, nmi_right_after_sti_is_a_note)
{
        struct check_result r;
        struct tb t = { 0 };

        tb_open(&t, "nmi-sti.zst", 0, HVT_POLICY_EAGER, cli_sti_inc, sizeof(cli_sti_inc));
        tb_exit(&t, HVT_EXIT_INTR, 0x1002, RFL_IF1, STI_SH);
        tb_nmi(&t, HVT_POLICY_EAGER, 0x1002, true);
        tb_close(&t, true);

        check_ok(t.path, &r);
        expect_only(&r, RULE_NONE, 0);
        cr_expect_eq(r.nundetermined, 0, "%s", summary(&r));
        cr_expect_eq(r.notes[NOTE_NMI_AFTER_STI].count, 1, "%s", summary(&r));
        cr_expect_eq(r.notes[NOTE_NMI_AFTER_STI].first_pc, 0x1002);
        cr_expect_eq(r.notes[NOTE_STI_IF_SET].count, 0, "%s", summary(&r));
        check_result_free(&r);
}

/*
 * Single-stepped: an NMI, its handler's probe (out 0xe2 at HANDLER, IRET at
 * HANDLER + 2), then a second NMI.  Before the IRET: blocked; after it
 * (the step that follows the IRET's exit): allowed.
 */
static void nested_nmi(const char *name, bool iret_first, unsigned want)
{
        struct check_result r;
        struct tb t = { 0 };

        tb_open(&t, name, HVT_HDR_SINGLE_STEP, HVT_POLICY_EAGER, movss_inc, sizeof(movss_inc));
        tb_exit(&t, HVT_EXIT_DEBUG, 0x1001, RFL_IF0, CLOSED);
        tb_nmi(&t, HVT_POLICY_EAGER, 0x1001, true);
        if (iret_first)
                tb_exit(&t, HVT_EXIT_DEBUG, 0x1001, RFL_IF0, CLOSED); /* the IRET's step */
        tb_nmi(&t, HVT_POLICY_EAGER, iret_first ? 0x1001 : HANDLER + 2, true);
        tb_close(&t, true);

        check_ok(t.path, &r);
        cr_expect_eq(r.deliveries, 2, "%s", summary(&r));
        cr_expect_eq(r.nundetermined, 0, "%s", summary(&r));
        expect_only(&r, want, want == RULE_NONE ? 0 : 1);
        if (want != RULE_NONE)
                cr_expect_eq(r.violations[0].pc, HANDLER + 2, "%s", summary(&r));
        check_result_free(&r);
}

Test(check, nmi_before_the_iret_is_blocked)
{
        nested_nmi("nmi-nested.zst", false, RULE_NMI_WHILE_BLOCKED);
}

Test(check, nmi_after_the_iret_is_allowed)
{
        nested_nmi("nmi-after-iret.zst", true, RULE_NONE);
}

/*
 * Not stepped, writes not recorded: a second NMI lands at the handler's
 * IRET, right where its probe exit stood.  Either nothing ran (blocked) or
 * the IRET ran and something the trace cannot follow came back there:
 * undetermined.  Landing in the main code instead, every path there runs
 * the IRET first: allowed.
 */
static void nmi_after_probe(const char *name, uint64_t second, bool kick_first)
{
        struct check_result r;
        struct tb t = { 0 };

        tb_open(&t, name, 0, HVT_POLICY_EAGER, movss_inc, sizeof(movss_inc));
        tb_exit(&t, HVT_EXIT_INTR, 0x1000, RFL_IF0, CLOSED);
        tb_nmi(&t, HVT_POLICY_EAGER, 0x1000, true);
        if (kick_first)
                tb_exit(&t, HVT_EXIT_INTR, second, RFL_IF0, CLOSED);
        tb_nmi(&t, HVT_POLICY_EAGER, second, true);
        tb_close(&t, true);

        check_ok(t.path, &r);
        cr_expect_eq(r.deliveries, 2);
        cr_expect_eq(r.nviolations, 0, "%s", summary(&r));
        if (second == HANDLER + 2)
                expect_undetermined(&r, 0, UND_NMI_IRET, HANDLER + 2);
        else
                cr_expect_eq(r.nundetermined, 0, "%s", summary(&r));
        check_result_free(&r);
}

Test(check, nmi_at_the_iret_without_steps_is_undetermined)
{
        nmi_after_probe("nmi-iret-unknown.zst", HANDLER + 2, false);
}

Test(check, nmi_past_the_only_iret_is_allowed)
{
        nmi_after_probe("nmi-past-iret.zst", 0x1004, true);
}

/*
 * KVM and PVM report RIP past an OUT at its exit: the run executed the OUT,
 * which lies before that RIP, and the code after it may be reached in other
 * ways (an IRET back into it, a jump).  Traces with write records, so the
 * handler's IRET returns through the frame the delivery wrote; every port
 * I/O instruction exits.  `handler` (its probe first) replaces the one at
 * HANDLER.
 */
static void nmi_io_open(struct tb *t, const char *name, const uint8_t *code, size_t len,
                        const uint8_t *handler, size_t hlen)
{
        t->caps |= HVT_CAP_IO_EXITS;
        tb_open(t, name, HVT_HDR_WRITES, HVT_POLICY_EAGER, code, len);
        if (handler) {
                memcpy(t->mem + HANDLER, handler, hlen);
                cr_assert_eq(hvt_write_memory(t->w, 0, t->mem, t->mem_size), 0);
        }
}

/* The first NMI, kicked at and delivered at ret; its probe wrote the frame back to ret. */
static void nmi_io_first(struct tb *t, uint64_t ret)
{
        const uint8_t frame[] = { (uint8_t)ret, (uint8_t)(ret >> 8), 0, 0, 0x02, 0 };

        tb_exit(t, HVT_EXIT_INTR, ret, RFL_IF0, CLOSED);
        tb_nmi(t, HVT_POLICY_EAGER, ret, true);
        tb_write(t, STACK - sizeof(frame), frame, sizeof(frame), true);
}

/*
 * The whole case: the first NMI at `first`, an I/O exit (dir) at io_rip,
 * taken in the first NMI's handler (on its frame) or after its IRET, then a
 * second NMI at `second`; checked into *r, both NMIs delivered.
 */
static void nmi_io_case(struct check_result *r, const char *name, const uint8_t *code, size_t len,
                        const uint8_t *handler, size_t hlen, uint64_t first, uint64_t io_rip,
                        uint8_t dir, bool in_handler, uint64_t second)
{
        struct tb t = { 0 };

        nmi_io_open(&t, name, code, len, handler, hlen);
        nmi_io_first(&t, first);
        t.st.gpr[HVT_F_RSP] = in_handler ? STACK - 6 : STACK;
        tb_io(&t, io_rip, RFL_IF0, CLOSED, 0x80, dir);
        t.st.gpr[HVT_F_RSP] = STACK;
        tb_nmi(&t, HVT_POLICY_EAGER, second, true);
        tb_close(&t, true);
        check_ok(t.path, r);
        cr_expect_eq(r->deliveries, 2, "%s", summary(r));
}

/*
 * 1000 jmp 1004; 1002 out 0x80, al (the handler's only); 1004 nop; 1005 jmp 1004
 * handler: 1800 out 0xe2, al; 1802 jz 1807; 1804 jmp 1002; 1807 iret
 */
static const uint8_t out_tail_code[] = { 0xeb, 0x02, 0xe6, 0x80, 0x90, 0xeb, 0xfd };
static const uint8_t out_tail_handler[] = { 0xe6, 0xe2, 0x74, 0x03, 0xe9, 0xfb, 0xf7, 0xcf };

/*
 * The first NMI lands in the loop at 1004; its handler jumps to the OUT at
 * 1002, which exits with RIP 1004, and a second NMI lands there.  Only the
 * handler reaches that OUT, before any IRET: the second NMI came while
 * blocked, although the IRET's path also leads to 1004.
 */
Test(check, nmi_after_an_out_exit_in_the_handler_is_not_allowed)
{
        struct check_result r;

        nmi_io_case(&r, "nmi-out-handler.zst", out_tail_code, sizeof(out_tail_code),
                    out_tail_handler, sizeof(out_tail_handler), 0x1004, 0x1004, HVT_IO_OUT, true,
                    0x1004);
        cr_expect_eq(r.nundetermined, 0, "%s", summary(&r));
        expect_only(&r, RULE_NMI_WHILE_BLOCKED, 1);
        if (r.nviolations)
                cr_expect_eq(r.violations[0].pc, 0x1004, "%s", summary(&r));
        check_result_free(&r);
}

/*
 * 1000 out 0x80, al; 1002 jmp 1000, and the handler out 0xe2, al; iret: the
 * first NMI lands at the OUT, its IRET returns there, the OUT exits with RIP
 * 1002 and the second NMI lands at 1002.  Every path to that OUT runs the
 * IRET; judged at 1002 instead, which no followed path reaches (the OUT
 * exits), the blocking would look unended.
 */
Test(check, nmi_after_the_handler_iret_past_an_out_exit_is_allowed)
{
        static const uint8_t code[] = { 0xe6, 0x80, 0xeb, 0xfc };
        struct check_result r;

        nmi_io_case(&r, "nmi-out-after-iret.zst", code, sizeof(code), NULL, 0, 0x1000, 0x1002,
                    HVT_IO_OUT, false, 0x1002);
        cr_expect_eq(r.nundetermined, 0, "%s", summary(&r));
        expect_only(&r, RULE_NONE, 0);
        check_result_free(&r);
}

/* The same with a HLT, which KVM also reports with RIP past it: 1000 hlt; 1001 jmp 1000. */
Test(check, nmi_after_the_handler_iret_past_a_hlt_exit_is_allowed)
{
        static const uint8_t code[] = { 0xf4, 0xeb, 0xfd };
        struct check_result r;
        struct tb t = { 0 };

        t.caps = HVT_CAP_HLT_EXITS;
        nmi_io_open(&t, "nmi-hlt-after-iret.zst", code, sizeof(code), NULL, 0);
        nmi_io_first(&t, 0x1000);
        tb_exit(&t, HVT_EXIT_HLT, 0x1001, RFL_IF0, CLOSED);
        tb_nmi(&t, HVT_POLICY_EAGER, 0x1001, true);
        tb_close(&t, true);

        check_ok(t.path, &r);
        cr_expect_eq(r.deliveries, 2, "%s", summary(&r));
        cr_expect_eq(r.nundetermined, 0, "%s", summary(&r));
        expect_only(&r, RULE_NONE, 0);
        check_result_free(&r);
}

/*
 * The delivery's own interval starts at such an exit: the handler's OUT at
 * 1802 exits with RIP 1804, at its IRET, and the second NMI lands in the
 * main loop (1000 nop; 1001 jmp 1000), which only that IRET leads to.
 */
Test(check, nmi_landing_after_the_iret_that_follows_an_out_exit_is_allowed)
{
        static const uint8_t code[] = { 0x90, 0xeb, 0xfd };
        static const uint8_t handler[] = { 0xe6, 0xe2, 0xe6, 0x80, 0xcf };
        struct check_result r;

        nmi_io_case(&r, "nmi-out-then-iret.zst", code, sizeof(code), handler, sizeof(handler),
                    0x1000, HANDLER + 4, HVT_IO_OUT, true, 0x1001);
        cr_expect_eq(r.nundetermined, 0, "%s", summary(&r));
        expect_only(&r, RULE_NONE, 0);
        check_result_free(&r);
}

/*
 * The OUT reached both ways: the first NMI lands at 1002, right after the
 * OUT at 1000 (1000 out 0x80, al; 1002 jmp 1000); its handler either jumps
 * to that OUT or IRETs back to 1002, which leads to it too
 * (1800 out 0xe2, al; 1802 jz 1807; 1804 jmp 1000; 1807 iret).  The OUT's
 * exit cannot tell whether the IRET ran: undetermined, never a verdict.
 */
Test(check, nmi_after_an_out_reached_with_and_without_the_iret_is_undetermined)
{
        static const uint8_t code[] = { 0xe6, 0x80, 0xeb, 0xfc };
        static const uint8_t handler[] = { 0xe6, 0xe2, 0x74, 0x03, 0xe9, 0xf9, 0xf7, 0xcf };
        struct check_result r;

        nmi_io_case(&r, "nmi-out-both.zst", code, sizeof(code), handler, sizeof(handler), 0x1002,
                    0x1002, HVT_IO_OUT, true, 0x1002);
        cr_expect_eq(r.nviolations, 0, "%s", summary(&r));
        expect_undetermined(&r, 0, UND_NMI_IRET, 0x1002);
        check_result_free(&r);
}

/*
 * An IN exits with RIP still at the IN: the run reached it, nothing more.
 * The handler's IN at 1002 (1000 jmp 1004; 1002 in al, 0x80; 1004 nop;
 * 1005 jmp 1004) is reached only before the IRET, and the second NMI lands
 * after it, at 1004: blocked.
 */
Test(check, nmi_after_an_in_exit_in_the_handler_is_not_allowed)
{
        static const uint8_t code[] = { 0xeb, 0x02, 0xe4, 0x80, 0x90, 0xeb, 0xfd };
        struct check_result r;

        nmi_io_case(&r, "nmi-in-handler.zst", code, sizeof(code), out_tail_handler,
                    sizeof(out_tail_handler), 0x1004, 0x1002, HVT_IO_IN, true, 0x1004);
        cr_expect_eq(r.nundetermined, 0, "%s", summary(&r));
        expect_only(&r, RULE_NMI_WHILE_BLOCKED, 1);
        check_result_free(&r);
}

/*
 * An exit where no path the code shows leads: the first NMI lands in
 * 1000 jmp 1000, its handler (probe; jmp $) never returns, yet the next
 * exit is the OUT at 1002 (RIP 1004), which nothing jumps to.  What ran is
 * not what the trace's code says, so whether an IRET ran is not known:
 * the second NMI is undetermined, not a violation of blocking that may
 * have ended.
 */
Test(check, nmi_after_an_exit_no_path_reaches_is_undetermined)
{
        static const uint8_t code[] = { 0xeb, 0xfe, 0xe6, 0x80 };
        static const uint8_t handler[] = { 0xe6, 0xe2, 0xeb, 0xfe };
        struct check_result r;

        nmi_io_case(&r, "nmi-out-nowhere.zst", code, sizeof(code), handler, sizeof(handler), 0x1000,
                    0x1004, HVT_IO_OUT, false, 0x1004);
        cr_expect_eq(r.nviolations, 0, "%s", summary(&r));
        expect_undetermined(&r, 0, UND_NMI_IRET, 0x1004);
        check_result_free(&r);
}

/* ---- multi-vCPU traces: each vCPU judged against its own previous exit ------------------- */

/* What the builder follows per vCPU; tb_switch swaps it in and selects the vCPU. */
struct tb_cpu {
        struct hvt_vcpu_state st, last_st;
        uint64_t last_exit;
};

static void tb_switch(struct tb *t, struct tb_cpu *cpus, unsigned *cur, unsigned to)
{
        cpus[*cur].st = t->st;
        cpus[*cur].last_st = t->last_st;
        cpus[*cur].last_exit = t->last_exit;
        t->st = cpus[to].st;
        t->last_st = cpus[to].last_st;
        t->last_exit = cpus[to].last_exit;
        cr_assert_eq(hvt_writer_vcpu(t->w, to), 0);
        *cur = to;
}

static void tb_open_vcpus(struct tb *t, const char *name, const uint8_t *code, size_t len,
                          struct tb_cpu *cpus, unsigned n)
{
        struct hvt_writer_opts o = { .size = sizeof(o), .vcpus = n };

        tb_open_opts(t, name, false, 0, HVT_POLICY_EAGER, code, len, n > 1 ? &o : NULL);
        for (unsigned i = 0; i < n; i++)
                cpus[i].st = t->st;
}

/*
 * vCPU 1 is kicked right after its STI; vCPU 0 exits in unrelated code
 * (its jmp $); then vCPU 1's interrupt is delivered where its STI's shadow
 * was open: a violation found from vCPU 1's own previous exit.
 */
Test(check, two_vcpus_sti_shadow_of_the_delivering_vcpu)
{
        struct tb_cpu cpus[2] = { 0 };
        struct check_result r;
        struct tb t = { 0 };
        unsigned cur = 0;

        tb_open_vcpus(&t, "mv-sti.zst", cli_sti_inc, sizeof(cli_sti_inc), cpus, 2);
        tb_exit(&t, HVT_EXIT_INTR, 0x1003, RFL_IF0, CLOSED);
        tb_switch(&t, cpus, &cur, 1);
        tb_exit(&t, HVT_EXIT_INTR, 0x1000, RFL_IF0, CLOSED);
        tb_exit(&t, HVT_EXIT_INTR, 0x1002, RFL_IF1, STI_SH); /* kicked right after the STI */
        tb_switch(&t, cpus, &cur, 0);
        tb_exit(&t, HVT_EXIT_INTR, 0x1003, RFL_IF0, CLOSED);
        tb_switch(&t, cpus, &cur, 1);
        tb_interrupt(&t, HVT_POLICY_EAGER, 0x1002);
        tb_close(&t, true);

        check_ok(t.path, &r);
        cr_expect_eq(r.deliveries, 1);
        cr_expect_eq(r.exits, 5);
        expect_only(&r, RULE_STI_SHADOW, 1);
        expect_violation(&r, RULE_STI_SHADOW, 0x1002, 0x1001);
        cr_expect_eq(r.violations[0].vcpu, 1, "found on vCPU %u", r.violations[0].vcpu);
        cr_expect_eq(r.vcpus, 2);
        check_result_free(&r);

        /* hvreplay check names the vCPU, in text and JSON. */
        {
                const char *argv[] = { HVREPLAY, "check", t.path, NULL };
                const char *jargv[] = { HVREPLAY, "check", "--json", t.path, NULL };
                struct hv_proc p;

                cr_assert_eq(hv_run(argv, &p), 0);
                cr_expect_eq(p.status, 1, "%s", p.err);
                cr_expect_not_null(strstr(p.out, "mv-sti.zst:v1:#"), "%s", p.out);
                hv_proc_free(&p);
                cr_assert_eq(hv_run(jargv, &p), 0);
                cr_expect_not_null(strstr(p.out, "\"rule\":\"sti-shadow\",\"vcpu\":1,"), "%s",
                                   p.out);
                hv_proc_free(&p);
        }
}

/*
 * The STI shadow is vCPU 0's; vCPU 1 reaches 0x1002 through its jmp.  The
 * delivery on vCPU 1 is legal: judged from vCPU 0's exit, the last one in
 * the trace, it would not be.  The same records in a single-vCPU trace
 * show what that would give.
 */
static void other_vcpus_shadow(const char *name, unsigned vcpus, struct check_result *r)
{
        struct tb_cpu cpus[2] = { 0 };
        struct tb t = { 0 };
        unsigned cur = 0;

        tb_open_vcpus(&t, name, sti_loop, sizeof(sti_loop), cpus, vcpus);
        if (vcpus > 1)
                tb_switch(&t, cpus, &cur, 1);
        tb_exit(&t, HVT_EXIT_INTR, 0x1002, RFL_IF1, OPEN);
        tb_exit(&t, HVT_EXIT_INTR, 0x1003, RFL_IF1, OPEN); /* ran its inc: the jmp is next */
        if (vcpus > 1)
                tb_switch(&t, cpus, &cur, 0);
        tb_exit(&t, HVT_EXIT_INTR, 0x1000, RFL_IF0, CLOSED);
        tb_exit(&t, HVT_EXIT_INTR, 0x1002, RFL_IF1, STI_SH); /* vCPU 0 right after its STI */
        if (vcpus > 1)
                tb_switch(&t, cpus, &cur, 1);
        else
                t.last_st.rip = 0x1003; /* the injection is the same record */
        tb_interrupt(&t, HVT_POLICY_EAGER, 0x1002);
        tb_close(&t, true);
        check_ok(t.path, r);
}

Test(check, two_vcpus_shadow_of_another_vcpu_is_not_judged)
{
        struct check_result r, one;

        other_vcpus_shadow("mv-other.zst", 2, &r);
        cr_expect_eq(r.deliveries, 1);
        expect_only(&r, RULE_NONE, 0);
        cr_expect_eq(r.nundetermined, 0, "%s", summary(&r));

        /* One stream: the delivery follows the exit after the STI and is not clean. */
        other_vcpus_shadow("mv-other-1.zst", 1, &one);
        cr_expect_eq(one.deliveries, 1);
        cr_expect(one.nviolations + one.nundetermined > 0, "%s", summary(&one));
        check_result_free(&r);
        check_result_free(&one);
}

/* A vCPU other than 0 starts where nothing recorded says: its first run is not judged. */
Test(check, second_vcpu_first_run_is_undetermined)
{
        struct tb_cpu cpus[2] = { 0 };
        struct check_result r;
        struct tb t = { 0 };
        unsigned cur = 0;

        tb_open_vcpus(&t, "mv-first.zst", cli_sti_inc, sizeof(cli_sti_inc), cpus, 2);
        tb_exit(&t, HVT_EXIT_INTR, 0x1003, RFL_IF0, CLOSED);
        tb_switch(&t, cpus, &cur, 1);
        tb_exit(&t, HVT_EXIT_INTR, 0x1002, RFL_IF1, STI_SH);
        tb_interrupt(&t, HVT_POLICY_EAGER, 0x1002);
        tb_close(&t, true);

        check_ok(t.path, &r);
        cr_expect_eq(r.deliveries, 1);
        cr_expect_eq(r.nviolations, 0, "%s", summary(&r));
        cr_expect_eq(r.nundetermined, 1, "%s", summary(&r));
        check_result_free(&r);
}
