// SPDX-License-Identifier: MIT
/*
 * CPU modes: the mode-switching guest (real -> protected -> long) is
 * decoded in the right mode on each side of each switch, its shadows are
 * judged in real and long mode, and hvrec's own protected / long set-up
 * runs flat guests.  Needs /dev/kvm.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "../src/replay/check.h"
#include "helpers.h"

/* The exit at linear address pc, or NULL. */
static const struct hvt_exit *exit_at(const struct hv_trace *t, uint64_t pc, uint16_t reason)
{
        for (size_t i = 0; i < t->nexits; i++)
                if (t->exits[i].e.reason == reason && hvt_state_pc(&t->exits[i].e.st) == pc)
                        return &t->exits[i].e;
        return NULL;
}

/* The JSON-lines dump line of exit `seq`, or NULL (in p->out, modified). */
static char *dump_line(char *out, uint64_t seq)
{
        char want[64];

        snprintf(want, sizeof(want), "\"type\":\"exit\",\"seq\":%llu,", (unsigned long long)seq);
        for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n"))
                if (strstr(line, want))
                        return line;
        return NULL;
}

Test(modes, modeswitch_is_decoded_in_each_mode)
{
        static const struct {
                const char *label, *mode, *text;
                unsigned bits;
        } sides[] = {
                /* The same MMIO read, encoded per mode; wrong-mode decoding reads otherwise. */
                { "real_mmio", "real", "mov ax, word ptr es:[0x20]", 16 },
                { "pm_mmio", "protected", "mov eax, dword ptr [0x180000]", 32 },
                { "lm_mmio", "long", "mov rax, qword ptr [0x180000]", 64 },
        };
        struct hv_trace t;
        struct hv_proc p;

        HV_REQUIRE_KVM();
        cr_assert_eq(hv_record("modeswitch", NULL, &t, &p), 0, "status %d: %s", p.status, p.err);
        hv_proc_free(&p);
        for (size_t i = 0; i < sizeof(sides) / sizeof(sides[0]); i++) {
                uint64_t pc = hv_sym("modeswitch", sides[i].label);
                const struct hvt_exit *e = exit_at(&t, pc, HVT_EXIT_MMIO);
                const char *argv[] = { HVREPLAY,          "dump", "--format", "jsonl",
                                       hv_tmp("rec.zst"), NULL };
                char mode[64], text[128], *line;

                cr_assert_not_null(e, "an MMIO exit at %s (0x%llx)", sides[i].label,
                                   (unsigned long long)pc);
                cr_assert_eq(hvt_state_code_bits(&e->st), sides[i].bits, "%s", sides[i].label);
                cr_assert_eq(hv_run(argv, &p), 0);
                cr_assert_eq(p.status, 0, "%s", p.err);
                line = dump_line(p.out, e->seq);
                cr_assert_not_null(line, "dump has exit #%llu", (unsigned long long)e->seq);
                snprintf(mode, sizeof(mode), "\"mode\":\"%s\"", sides[i].mode);
                snprintf(text, sizeof(text), "\"insn\":\"%s\"", sides[i].text);
                cr_assert(strstr(line, mode), "%s: %s", sides[i].label, line);
                cr_assert(strstr(line, text), "%s decodes as '%s': %s", sides[i].label,
                          sides[i].text, line);
                hv_proc_free(&p);
        }

        /* The text dump: CS:IP in real mode, full RIPs otherwise, the mode on each line. */
        const char *argv[] = { HVREPLAY, "dump", hv_tmp("rec.zst"), NULL };
        cr_assert_eq(hv_run(argv, &p), 0);
        cr_assert(strstr(p.out, "real      0000:") != NULL, "%s", p.out);
        cr_assert(strstr(p.out, "protected 0000") != NULL);
        cr_assert(strstr(p.out, "long      0000000000001") != NULL);
        hv_proc_free(&p);

        /* Two deliveries, one per side that asked: the frames were read per mode. */
        cr_assert_eq(t.ndelivers, 2);
        cr_assert_eq(t.delivers[0].frame_bits, 16);
        cr_assert_eq(t.delivers[1].frame_bits, 64);
        hv_trace_free(&t);
}

Test(modes, modeswitch_shadows_judged_on_each_side)
{
        const char *args[] = { "--single-step", "--inject", "eager", NULL };
        uint64_t real = hv_sym("modeswitch", "shadowed_real");
        uint64_t lm = hv_sym("modeswitch", "shadowed_lm");
        struct check_result res;
        struct hv_trace t;
        struct hv_proc p;

        HV_REQUIRE_KVM();
        cr_assert_eq(hv_record("modeswitch", args, &t, &p), 0, "%s", p.err);
        cr_assert_eq(check_trace(hv_tmp("rec.zst"), &res), 0, "%s", res.error);
        cr_assert_eq(res.nviolations, 2);
        cr_assert_eq(res.violations[0].rule, RULE_STI_SHADOW);
        cr_assert_eq(res.violations[0].pc, real);
        cr_assert_eq(res.violations[0].bits, 16);
        cr_assert_eq(res.violations[1].rule, RULE_STI_SHADOW);
        cr_assert_eq(res.violations[1].pc, lm);
        cr_assert_eq(res.violations[1].bits, 64);
        check_result_free(&res);
        hv_trace_free(&t);
        hv_proc_free(&p);

        /* The default policy keeps both shadows. */
        cr_assert_eq(hv_record("modeswitch", NULL, &t, &p), 0, "%s", p.err);
        cr_assert_eq(check_trace(hv_tmp("rec.zst"), &res), 0, "%s", res.error);
        cr_assert_eq(res.deliveries, 2);
        cr_assert_eq(res.nviolations, 0);
        check_result_free(&res);
        hv_trace_free(&t);
        hv_proc_free(&p);
}

Test(modes, long_mode_setup_by_hvrec)
{
        const char *args[] = { "--mode", "long", "--mem", "4M", NULL };
        uint64_t done = hv_sym("sti_hlt_l64", "shadowed_hlt");
        struct hv_trace t;
        struct hv_proc p;

        HV_REQUIRE_KVM();
        cr_assert_eq(hv_record("sti_hlt_l64", args, &t, &p), 0, "%s", p.err);
        cr_assert_eq(t.hdr.h.guest_mode, HVT_MODE_LONG);
        cr_assert_gt(t.nexits, 0);
        /* hvrec's state: 64-bit CS 0x18, paging, PAE, LMA, identity-mapped image. */
        const struct hvt_vcpu_state *st = &t.exits[0].e.st;
        cr_assert_eq(st->seg[HVT_CS].selector, 0x18);
        cr_assert(st->seg[HVT_CS].attr & HVT_SEG_L);
        cr_assert(st->cr0 & 0x80000001ull);
        cr_assert(st->cr4 & 0x20);
        cr_assert(st->efer & 0x500);
        /* Its tables sit at the top of RAM, under which the stack starts. */
        cr_assert_lt(st->cr3, 4u << 20);
        cr_assert_gt(st->cr3, (4u << 20) - 64 * 1024);
        cr_assert_eq(t.ndelivers, 1);
        cr_assert_eq(t.delivers[0].frame_bits, 64);
        cr_assert_eq(t.delivers[0].ip, done + 1, "delivered after the HLT");
        hv_trace_free(&t);
        hv_proc_free(&p);
}

Test(modes, protected_mode_iret_limit_is_recorded)
{
        const char *args[] = { "--mode", "protected", NULL };
        struct check_result res;
        struct hv_trace t;
        struct hv_proc p;
        const struct hvt_exit *last;

        HV_REQUIRE_KVM();
        hv_record("sti_hlt_p32", args, &t, &p);
        cr_assert_eq(t.hdr.h.guest_mode, HVT_MODE_PROTECTED);
        cr_assert_eq(t.exits[0].e.st.seg[HVT_CS].selector, 0x08);
        cr_assert(t.exits[0].e.st.seg[HVT_CS].attr & HVT_SEG_DB);
        cr_assert_eq(t.ndelivers, 1, "the interrupt was delivered and probed");
        cr_assert_eq(t.delivers[0].frame_bits, 32);
        if (p.status == 0) {
                cr_log_info("this backend runs 32-bit IRET: the guest finished");
        } else {
                /* kvm_pvm: the handler's IRET is an emulation failure, recorded as a crash. */
                last = &t.exits[t.nexits - 1].e;
                cr_assert_eq(p.status, HVREC_STATUS_CRASH, "%s", p.err);
                cr_assert_eq(last->reason, HVT_EXIT_INTERNAL);
                cr_assert_eq(last->u.internal.internal.suberror, 1);
                cr_assert_eq(last->insn[0], 0xcf, "at the IRET");
                cr_assert(strstr(p.err, "emulation failure"), "%s", p.err);
                cr_assert_eq(check_trace(hv_tmp("rec.zst"), &res), 0, "%s", res.error);
                cr_assert(res.have_end && res.end_why == HVT_END_CRASH);
                cr_assert_eq(res.nviolations, 0);
                check_result_free(&res);
        }
        hv_trace_free(&t);
        hv_proc_free(&p);
}

Test(modes, elf_guests_take_their_mode_from_the_class)
{
        static const uint8_t exit42[] = { 0xb0, 42, 0xe6, 0xf4 }; /* mov al, 42; out 0xf4, al */
        static const struct {
                int bits;
                unsigned machine, mode;
        } cases[] = {
                { 64, 62, HVT_MODE_LONG },
                { 32, 3, HVT_MODE_PROTECTED },
        };

        HV_REQUIRE_KVM();
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                const char *elf =
                        hv_write_elf(cases[i].bits == 64 ? "g64.elf" : "g32.elf", cases[i].bits,
                                     cases[i].machine, 0x20000, exit42, sizeof(exit42));
                const char *trace = hv_tmp("elf.zst");
                const char *argv[] = { HVREC, "run", "-q", "-o", trace, elf, NULL };
                struct hv_trace t;
                struct hv_proc p;

                unlink(trace);
                cr_assert_eq(hv_run(argv, &p), 0);
                cr_assert_eq(p.status, 42, "ELF%d: status %d: %s", cases[i].bits, p.status, p.err);
                cr_assert_eq(hv_trace_load(trace, &t), HVT_OK);
                cr_assert_eq(t.hdr.h.guest_mode, cases[i].mode);
                cr_assert_eq(t.hdr.h.entry, 0x20000);
                cr_assert_eq(t.hdr.h.load_addr, 0x20000);
                cr_assert_eq(hvt_state_code_bits(&t.exits[0].e.st), (unsigned)cases[i].bits);
                cr_assert_eq(memcmp(t.mem + 0x20000, exit42, sizeof(exit42)), 0,
                             "the segment is in the initial image");
                hv_trace_free(&t);
                hv_proc_free(&p);
        }
}
