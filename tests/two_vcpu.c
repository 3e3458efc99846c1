// SPDX-License-Identifier: MIT
/* A two-vCPU trace for the export and report suites: see two_vcpu.h. */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <hvtrace/hvtrace.h>

#include "../src/replay/check.h"
#include "two_vcpu.h"

#define CODE    0x1000ull
#define HANDLER 0x1800ull
#define VEC     0x30
#define MEM     0x10000ull
#define RFL_IF0 0x002ull
#define RFL_IF1 0x202ull

#define INTR_VALID (HVT_INTR_VALID_SHADOW | HVT_INTR_VALID_READY | HVT_INTR_VALID_IF)
#define OPEN       (INTR_VALID | HVT_INTR_IF | HVT_INTR_READY)
#define CLOSED     INTR_VALID
#define STI_SH     (INTR_VALID | HVT_INTR_IF | HVT_INTR_STI_SHADOW)

struct two {
        struct hvt_writer *w;
        uint8_t mem[MEM];
        uint64_t seq; /* machine-wide, as hvrec numbers exits */
        struct {
                struct hvt_vcpu_state st;
                uint64_t time, last_exit;
        } cpu[HV_TWO_VCPUS];
        unsigned cur;
};

static void on(struct two *t, unsigned vcpu)
{
        cr_assert_eq(hvt_writer_vcpu(t->w, vcpu), 0);
        t->cur = vcpu;
}

/* An exit of the selected vCPU, `dt` ns after its previous one. */
static uint64_t exit_at(struct two *t, uint16_t reason, uint64_t rip, uint64_t rflags,
                        uint32_t intr, uint64_t dt)
{
        static const uint8_t al = 0;
        struct hvt_exit e;
        struct hvt_vcpu_state *st = &t->cpu[t->cur].st;

        memset(&e, 0, sizeof(e));
        st->rip = rip;
        st->rflags = rflags;
        st->intr = intr;
        t->cpu[t->cur].time += dt;
        e.seq = t->seq;
        e.time_ns = t->cpu[t->cur].time;
        e.guest_ns = dt / 2;
        e.reason = reason;
        e.raw_reason = reason;
        e.st = *st;
        e.insn_len = 15;
        memcpy(e.insn, t->mem + rip, 15);
        if (reason == HVT_EXIT_IO) {
                e.u.io.io = (struct hvt_disk_io){
                        .port = 0xe2, .size = 1, .dir = HVT_IO_OUT, .count = 1
                };
                e.u.io.data = &al;
        }
        cr_assert_eq(hvt_write_exit(t->w, &e), 0);
        t->cpu[t->cur].last_exit = t->seq;
        return t->seq++;
}

/* Inject VEC after the selected vCPU's last exit; the probe reports it delivered at ip. */
static void interrupt(struct two *t, uint64_t ip, uint64_t dt)
{
        struct hvt_vcpu_state *st = &t->cpu[t->cur].st, saved = *st;
        struct hvt_disk_inject in;
        struct hvt_disk_deliver d;

        memset(&in, 0, sizeof(in));
        in.after_seq = t->cpu[t->cur].last_exit;
        in.rip = st->rip;
        in.rflags = st->rflags;
        in.handler = HANDLER;
        in.intr = (uint32_t)st->intr;
        in.vector = VEC;
        in.policy = HVT_POLICY_EAGER;
        in.method = HVT_INJ_QUEUE;
        in.source = HVT_SRC_OPTION;
        cr_assert_eq(hvt_write_inject(t->w, &in), 0);

        st->gpr[HVT_F_RSP] -= 6; /* the real-mode frame */
        memset(&d, 0, sizeof(d));
        d.seq = exit_at(t, HVT_EXIT_IO, HANDLER + 2, RFL_IF0, CLOSED, dt);
        d.ip = ip;
        d.flags = saved.rflags;
        d.sp = saved.gpr[HVT_F_RSP];
        d.handler = HANDLER;
        d.vector = VEC;
        d.vector_from = HVT_VEC_TABLE;
        d.frame_bits = 16;
        cr_assert_eq(hvt_write_deliver(t->w, &d), 0);
        *st = saved; /* the handler's IRET */
}

void hv_write_two_vcpu_trace(const char *path)
{
        static const uint8_t code[] = { 0xfa, 0xfb, 0x40, 0xeb, 0xfe }; /* cli; sti; inc; jmp $ */
        static const uint8_t handler[] = { 0xe6, 0xe2, 0xcf };          /* out 0xe2, al; iret */
        static const char *const argv[] = { "hvrec", "run", "two_vcpu" };
        struct hvt_writer_opts o = { .size = sizeof(o), .vcpus = HV_TWO_VCPUS };
        uint16_t ivt[2] = { (uint16_t)HANDLER, 0 };
        struct hvt_disk_end end = { .why = HVT_END_GUEST_EXIT };
        struct two *t = calloc(1, sizeof(*t));
        struct hvt_vcpu_state st;
        struct hvt_header h;

        cr_assert_not_null(t);
        memcpy(t->mem + CODE, code, sizeof(code));
        memcpy(t->mem + HANDLER, handler, sizeof(handler));
        memcpy(t->mem + VEC * 4, ivt, sizeof(ivt));
        cr_assert_eq(hvt_writer_open(&t->w, path, &o), 0, "cannot write %s", path);
        memset(&h, 0, sizeof(h));
        h.h.load_addr = CODE;
        h.h.entry = CODE;
        h.h.mem_size = MEM;
        h.h.guest_mode = HVT_MODE_REAL;
        h.h.backend_caps = HVT_CAP_SINGLE_STEP | HVT_CAP_REPORT_SHADOW | HVT_CAP_REPORT_READY |
                           HVT_CAP_INJECT_QUEUE | HVT_CAP_KICK | HVT_CAP_WINDOW;
        h.h.inject_policy = HVT_POLICY_EAGER;
        h.str[HVT_STR_TOOL_VERSION] = "two_vcpu";
        h.str[HVT_STR_BACKEND] = "synthetic";
        h.str[HVT_STR_GUEST] = "two-vcpu.bin";
        h.argv = argv;
        h.argc = 3;
        cr_assert_eq(hvt_write_header(t->w, &h), 0);
        cr_assert_eq(hvt_write_memory(t->w, 0, t->mem, MEM), 0);

        memset(&st, 0, sizeof(st));
        st.seg[HVT_CS] =
                (struct hvt_disk_seg){ .limit = 0xffff, .attr = HVT_SEG_P | HVT_SEG_S | 0xb };
        for (unsigned s = 0; s < HVT_SREG_COUNT; s++)
                if (s != HVT_CS)
                        st.seg[s] = (struct hvt_disk_seg){ .limit = 0xffff,
                                                           .attr = HVT_SEG_P | HVT_SEG_S | 0x3 };
        st.idt.limit = 0x3ff;
        st.gpr[HVT_F_RSP] = 0x0f00;
        for (unsigned v = 0; v < HV_TWO_VCPUS; v++)
                t->cpu[v].st = st;
        /* vCPU 1's clock is half a step behind vCPU 0's: the streams interleave in time. */
        t->cpu[1].time = 500;

        exit_at(t, HVT_EXIT_INTR, 0x1000, RFL_IF0, CLOSED, 1000); /* v0 #0 at 1000 ns */
        on(t, 1);
        exit_at(t, HVT_EXIT_INTR, 0x1002, RFL_IF1, STI_SH, 1000); /* v1 #1 at 1500 ns */
        interrupt(t, 0x1002, 1000); /* v1 #2: its first run, where nothing says how it began */
        on(t, 0);
        exit_at(t, HVT_EXIT_INTR, 0x1002, RFL_IF1, STI_SH, 1000); /* v0 #3 right after its STI */
        interrupt(t, 0x1002, 1000);                               /* v0 #4: in the STI shadow */
        on(t, 1);
        exit_at(t, HVT_EXIT_INTR, 0x1003, RFL_IF1, OPEN, 1000); /* v1 #5 in its jmp $ */
        interrupt(t, 0x1003, 1000);                             /* v1 #6: clean */
        on(t, 0);
        exit_at(t, HVT_EXIT_INTR, 0x1003, RFL_IF1, OPEN, 1000); /* v0 #7 */
        end.exits = t->seq;
        end.wall_ns = 5000;
        end.last_rip = 0x1003;
        cr_assert_eq(hvt_write_end(t->w, &end, "guest exited with status 0"), 0);
        cr_assert_eq(hvt_writer_close(t->w), 0);
        free(t);
}

void hv_vcpu_counts(const char *path, struct hv_vcpu_counts *c, size_t n)
{
        struct hvt_reader *r;
        struct hvt_event ev;
        int err = hvt_reader_open(&r, path);

        cr_assert_eq(err, 0, "%s: %s", path, hvt_reader_message(r));
        memset(c, 0, n * sizeof(*c));
        cr_assert_eq(hvt_reader_vcpus(r), n, "%s declares %zu vCPUs", path, n);
        while ((err = hvt_reader_next(r, &ev)) == HVT_OK) {
                int v = check_event_vcpu(r, &ev);
                struct hv_vcpu_counts *k = &c[v > 0 ? v : 0];

                switch (ev.type) {
                case HVT_REC_EXIT:
                        cr_assert_lt(k->exits, sizeof(k->seqs) / sizeof(k->seqs[0]));
                        k->seqs[k->exits] = ev.exit.seq;
                        k->times[k->exits] = ev.exit.time_ns;
                        k->exits++;
                        break;
                case HVT_REC_INJECT: k->injects++; break;
                case HVT_REC_DELIVER: k->delivers++; break;
                case HVT_REC_RAISE: k->raises++; break;
                default: break;
                }
        }
        cr_assert_eq(err, HVT_END_OF_TRACE, "%s: %s", path, hvt_reader_message(r));
        hvt_reader_close(r);
}
