// SPDX-License-Identifier: MIT
/*
 * The C guests (guests/c/, on the runtime in guests/c/runtime/) on KVM:
 *  - hello_64.elf in long mode: console, exit status 42, the trace header,
 *    the ELF image in the trace's initial memory, one probe-reported
 *    delivery of vector 0x30 right after the idle HLT, hvreplay check clean;
 *  - hello_32.elf in protected mode: the same, or, on a KVM that cannot
 *    emulate a 32-bit IRET (this machine's kvm_pvm, docs/backends.md),
 *    exactly that limit: the delivery is recorded, then the handler's IRET
 *    (hv_isr_iret) ends the run with an internal error, emulation failure,
 *    hvrec's crash status;
 *  - the runtime's default handlers (an exception, an unexpected vector);
 *  - the C shadow scenarios, data-driven from their sources' "// corpus-run:",
 *    "// corpus-eager:" and "// bits:" lines: clean under the default
 *    policy, and with --single-step --inject eager violations exactly at
 *    their shadowed_* labels, never at noshadow_* ones.  32-bit builds get
 *    the same checks as far as the run gets before the IRET limit.
 * Addresses come from the guests' symbol maps (build/guests/NAME.map).  Every
 * test is skipped, with the reason, when /dev/kvm cannot be used.
 */
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "../src/disasm/disasm.h"
#include "corpus.h"

#define VECTOR 0x30

/* The ELF's loadable segments are in the trace's initial memory image. */
static void assert_image_loaded(const char *elf, const struct hv_trace *t)
{
        const char *path = hv_guest_file(elf);
        FILE *f = fopen(path, "rb");
        unsigned char *file;
        long size;
        int loads = 0;

        cr_assert_not_null(f, "%s", path);
        fseek(f, 0, SEEK_END);
        size = ftell(f);
        rewind(f);
        file = malloc((size_t)size);
        cr_assert_eq(fread(file, 1, (size_t)size, f), (size_t)size);
        fclose(f);
        cr_assert_not_null(t->mem, "the trace holds the initial memory");
        for (unsigned i = 0;; i++) {
                uint64_t off, paddr, filesz, memsz;
                uint32_t type;

                if (file[EI_CLASS] == ELFCLASS64) {
                        Elf64_Ehdr eh;
                        Elf64_Phdr ph;

                        memcpy(&eh, file, sizeof(eh));
                        if (i >= eh.e_phnum)
                                break;
                        memcpy(&ph, file + eh.e_phoff + i * sizeof(ph), sizeof(ph));
                        type = ph.p_type, off = ph.p_offset, paddr = ph.p_paddr;
                        filesz = ph.p_filesz, memsz = ph.p_memsz;
                } else {
                        Elf32_Ehdr eh;
                        Elf32_Phdr ph;

                        memcpy(&eh, file, sizeof(eh));
                        if (i >= eh.e_phnum)
                                break;
                        memcpy(&ph, file + eh.e_phoff + i * sizeof(ph), sizeof(ph));
                        type = ph.p_type, off = ph.p_offset, paddr = ph.p_paddr;
                        filesz = ph.p_filesz, memsz = ph.p_memsz;
                }
                if (type != PT_LOAD || !memsz)
                        continue;
                loads++;
                cr_assert_lt(paddr + memsz, t->mem_size, "%s: segment %u fits in RAM", elf, i);
                cr_assert_eq(memcmp(t->mem + paddr, file + off, filesz), 0,
                             "%s: segment %u at its physical address 0x%llx", elf, i,
                             (unsigned long long)paddr);
                for (uint64_t b = filesz; b < memsz; b++)
                        cr_assert_eq(t->mem[paddr + b], 0, "%s: bss zeroed at 0x%llx", elf,
                                     (unsigned long long)(paddr + b));
        }
        cr_assert_gt(loads, 0, "%s has loadable segments", elf);
        free(file);
}

/* Whether instruction bytes decode to IRET/IRETD/IRETQ. */
static bool is_iret(const uint8_t *bytes, size_t len, unsigned bits)
{
        struct disasm *d;
        struct disasm_insn insn;
        bool yes;

        cr_assert_eq(disasm_open(&d), 0);
        yes = disasm_decode(d, bits, bytes, len, 0, &insn) == 0 && (insn.flags & DISASM_IRET);
        disasm_close(d);
        return yes;
}

/*
 * Whether a 32-bit run ended at the kvm limit: hvrec's crash status, a crash whose last
 * exit is an internal error (emulation failure) at the runtime's IRET.
 * Anything else than that limit or a normal end fails the test.
 */
static bool ended_at_iret_limit(const char *stem, const struct hv_trace *t, const struct hv_proc *p)
{
        const struct hv_exit *x;

        if (p->status != HVREC_STATUS_CRASH)
                return false;
        x = hv_last_exit(t);
        cr_assert_eq(t->read_err, HVT_END_OF_TRACE, "%s: complete trace: %s", stem, t->message);
        cr_assert_eq(t->end.why, HVT_END_CRASH, "%s", stem);
        cr_assert_eq(x->e.reason, HVT_EXIT_INTERNAL, "%s: the crash is an internal error", stem);
        cr_assert_eq(x->e.u.internal.internal.suberror, 1, "%s: emulation failure", stem);
        cr_assert_eq(hvt_state_pc(&x->e.st), hv_sym(stem, "hv_isr_iret"),
                     "%s: at the runtime's IRET", stem);
        cr_assert(is_iret(x->e.insn, x->e.insn_len, 32), "%s: the instruction is an IRET", stem);
        cr_assert(strstr(p->err, "internal error") && strstr(p->err, "emulation failure"),
                  "%s: stderr names the reason: %s", stem, p->err);
        return true;
}

/* ---- hello64 / hello32 ------------------------------------------------------ */

/* The one delivery of hello: vector 0x30 by its IDT gate, right after the idle HLT. */
static void assert_hello_delivery(const char *stem, const struct hv_trace *t, unsigned bits)
{
        const struct hvt_disk_deliver *d = &t->delivers[0];
        uint64_t hlt = hv_sym(stem, "hv_idle_hlt"), resume = hv_sym(stem, "hv_idle_resume");

        cr_assert_eq(t->nraises, 1);
        cr_assert_eq(t->raises[0].vector, VECTOR);
        cr_assert_eq(t->raises[0].source, HVT_SRC_GUEST);
        cr_assert_eq(t->ninjects, 1);
        cr_assert_eq(t->injects[0].vector, VECTOR);
        cr_assert(t->injects[0].intr & HVT_INTR_READY, "window policy injects only when ready");
        cr_assert_eq(t->ndelivers, 1, "%s: exactly one delivery (%zu)", stem, t->ndelivers);
        cr_assert_eq(d->vector, VECTOR);
        cr_assert_eq(d->vector_from, HVT_VEC_TABLE, "the IDT gate names the vector");
        cr_assert_eq(d->handler, hv_sym(stem, "hv_isr_48"), "the runtime's stub of 0x30 probed");
        cr_assert_eq(d->frame_bits, bits);
        cr_assert_eq(d->cs, bits == 64 ? 0x18 : 0x08, "hvrec's code selector");
        /* STI; HLT: the interrupt may only land after the HLT. */
        cr_assert_gt(d->cs_base + d->ip, hlt);
        cr_assert_eq(d->cs_base + d->ip, resume, "%s: delivered at 0x%llx, not after the HLT", stem,
                     (unsigned long long)(d->cs_base + d->ip));
        cr_assert(d->flags & 0x200, "IF was set when it was taken");
}

static void assert_check_clean(const char *stem, uint64_t deliveries)
{
        struct check_result res;

        cr_assert_eq(check_trace(hv_tmp("rec.zst"), &res), 0, "%s: %s", stem, res.error);
        cr_assert_eq(res.deliveries, deliveries, "%s", stem);
        cr_assert_eq(res.nviolations, 0, "%s: %zu violations", stem, res.nviolations);
        cr_assert_eq(res.nundetermined, 0, "%s: %zu undetermined", stem, res.nundetermined);
        cr_assert_eq(res.by_rule[RULE_REPORT_MISMATCH], 0, "%s", stem);
        check_result_free(&res);
}

Test(cguest, hello64_runs_in_long_mode_and_exits_42)
{
        char msg[256];
        struct hv_trace t;
        struct hv_proc p;
        const struct hv_exit *first;

        HV_REQUIRE_KVM();
        snprintf(msg, sizeof(msg),
                 "hello from a 64-bit C guest\n"
                 "hello64: interrupt 0x30 taken at 0x%llx, 1 time, bye\n",
                 (unsigned long long)hv_sym("hello_64", "hv_idle_resume"));
        cr_assert_eq(hv_record("hello_64.elf", NULL, &t, &p), 42, "status %d: %s", p.status, p.err);
        cr_assert_str_eq(p.out, msg, "stdout is the console");
        cr_assert_str_eq(t.console, msg, "the trace holds the console");
        cr_assert_eq(t.read_err, HVT_END_OF_TRACE, "%s", t.message);
        cr_assert_eq(t.end.why, HVT_END_GUEST_EXIT);
        cr_assert_eq(t.end.status, 42);
        cr_assert_eq(t.hdr.h.guest_mode, HVT_MODE_LONG, "ELFCLASS64: long mode");
        cr_assert_eq(t.hdr.h.entry, hv_sym("hello_64", "_start"), "e_entry");
        cr_assert_eq(hv_sym("hello_64", "_start"), 0x10000, "linked at 0x10000");
        first = &t.exits[0];
        cr_assert_eq(hvt_state_mode(&first->e.st), HVT_MODE_LONG);
        cr_assert_eq(first->e.st.seg[HVT_CS].selector, 0x18);
        cr_assert(first->e.st.gpr[HVT_F_RSP] < hv_sym("hello_64", "__stack_top") &&
                          first->e.st.gpr[HVT_F_RSP] >= hv_sym("hello_64", "__stack_bottom"),
                  "on the runtime's own stack");
        assert_image_loaded("hello_64.elf", &t);
        assert_hello_delivery("hello_64", &t, 64);
        assert_check_clean("hello_64", 1);
        hv_trace_free(&t);
        hv_proc_free(&p);
}

Test(cguest, hello32_runs_in_protected_mode_up_to_the_kvm_iret_limit)
{
        static const char line1[] = "hello from a 32-bit C guest\n";
        struct hv_trace t;
        struct hv_proc p;

        HV_REQUIRE_KVM();
        hv_record("hello_32.elf", NULL, &t, &p);
        cr_assert_eq(t.hdr.h.guest_mode, HVT_MODE_PROTECTED, "ELFCLASS32: protected mode");
        cr_assert_eq(t.hdr.h.entry, hv_sym("hello_32", "_start"), "e_entry");
        cr_assert_eq(hvt_state_mode(&t.exits[0].e.st), HVT_MODE_PROTECTED);
        cr_assert_eq(t.exits[0].e.st.seg[HVT_CS].selector, 0x08);
        cr_assert_eq(strncmp(t.console, line1, strlen(line1)), 0, "console: %s", t.console);
        assert_image_loaded("hello_32.elf", &t);
        assert_hello_delivery("hello_32", &t, 32);
        if (ended_at_iret_limit("hello_32", &t, &p)) {
                /* The probe's delivery was recorded before the crash. */
                cr_assert_lt(t.delivers[0].seq, hv_last_exit(&t)->e.seq);
                cr_assert_str_eq(t.console, line1, "nothing printed after the IRET");
                cr_log_info("hello32: ended at the kvm 32-bit IRET limit, as documented");
        } else {
                char msg[256];

                snprintf(msg, sizeof(msg),
                         "%shello32: interrupt 0x30 taken at 0x%llx, 1 time, bye\n", line1,
                         (unsigned long long)hv_sym("hello_32", "hv_idle_resume"));
                cr_assert_eq(p.status, 42, "status 42 or the kvm limit, not %d: %s", p.status,
                             p.err);
                cr_assert_str_eq(t.console, msg);
        }
        assert_check_clean("hello_32", 1);
        hv_trace_free(&t);
        hv_proc_free(&p);
}

/* ---- the runtime's default handlers ------------------------------------------ */

Test(cguest, exception_without_handler_is_reported_and_exits_0xee)
{
        static const char *const stems[] = { "fault_32", "fault_64" };

        HV_REQUIRE_KVM();
        for (unsigned i = 0; i < 2; i++) {
                char elf[64], msg[256];
                struct hv_trace t;
                struct hv_proc p;
                bool is64 = i == 1;

                snprintf(elf, sizeof(elf), "%s.elf", stems[i]);
                snprintf(msg, sizeof(msg),
                         "fault: executing ud2\n"
                         "hvrt: exception 6 (#UD invalid opcode), error code 0x0, at 0x%x:0x%llx\n",
                         is64 ? 0x18 : 0x08, (unsigned long long)hv_sym(stems[i], "fault_here"));
                /* 0xEE is above 127: hvrec's own status says so, the end record keeps it. */
                cr_assert_eq(hv_record(elf, NULL, &t, &p), HVREC_STATUS_GUEST_HIGH,
                             "%s: status %d: %s", elf, p.status, p.err);
                cr_assert_eq(t.end.detail, 0xEE, "%s: the guest's status", elf);
                cr_assert_str_eq(t.console, msg, "%s", elf);
                cr_assert_eq(t.ndelivers, 0, "%s: exception stubs do not probe", elf);
                hv_trace_free(&t);
                hv_proc_free(&p);
        }
}

Test(cguest, interrupt_without_handler_is_probed_reported_and_exits_0xef)
{
        char msg[128];
        struct hv_trace t;
        struct hv_proc p;

        HV_REQUIRE_KVM();
        snprintf(msg, sizeof(msg), "hvrt: unexpected interrupt 0x31 at 0x18:0x%llx\n",
                 (unsigned long long)hv_sym("unexpected", "hv_idle_resume"));
        cr_assert_eq(hv_record("unexpected.elf", NULL, &t, &p), HVREC_STATUS_GUEST_HIGH,
                     "status %d: %s", p.status, p.err);
        cr_assert_eq(t.end.detail, 0xEF, "the guest's status");
        cr_assert_str_eq(t.console, msg);
        cr_assert_eq(t.ndelivers, 1);
        cr_assert_eq(t.delivers[0].vector, 0x31);
        cr_assert_eq(t.delivers[0].handler, hv_sym("unexpected", "hv_isr_49"));
        hv_trace_free(&t);
        hv_proc_free(&p);
}

/*
 * The C shadow scenarios (sti_hlt_c, movss_c) are part of the corpus: their
 * default-policy and eager single-step checks run on every backend with the
 * NASM scenarios (tests/corpus.c, tests/test_corpus.c, tests/test_emu.c).
 */
