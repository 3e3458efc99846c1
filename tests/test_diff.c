// SPDX-License-Identifier: MIT
/*
 * hvreplay diff.  The sample traces in traces/ (recorded on KVM) are rewritten
 * with the trace reader and writer, every record type copied, with one edit
 * each: a register altered at one exit, an exit removed, an `intr` exit
 * inserted, a port-I/O exit moved to the other RIP convention, a byte of the
 * initial memory image changed.  No /dev/kvm needed, except for the last
 * tests: two recordings of the deterministic demo guest compare equal.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "helpers.h"

#define DEMO HV_SOURCE_DIR "/traces/demo.zst"

/* ---- temporary directory (one per test, removed by the fixture) ------------------ */

/* ---- rewriting a trace ------------------------------------------------------------ */

#define NONE (-1)

struct edit {
        int64_t alter_seq[2]; /* xor alter_xor into register alter_reg at these exits */
        unsigned alter_reg[2];
        uint64_t alter_xor[2];
        int64_t remove_seq;        /* drop this exit and the records that follow it */
        int64_t insert_intr_after; /* an intr exit after this exit's records (renumbering) */
        int64_t flip_io_seq;       /* this port-I/O exit to the other RIP convention */
        int64_t mem_gpa;           /* flip the bits of this byte of the memory image */
        /*
         * A second memory record of OVERLAY_LEN bytes at overlay_gpa, after
         * the others (later records win): the image's bytes there, mem_gpa's
         * flip undone, and the bits of byte overlay_flip of it flipped.
         */
        int64_t overlay_gpa, overlay_flip;
        int64_t set_rip_seq; /* move this exit's RIP to set_rip (bytes from the image) */
        uint64_t set_rip;
        unsigned frame_records; /* zstd frames of this many records (0: the default) */
        uint64_t dr7_xor;       /* xor into DR7 of every debug exit */
        int64_t insn_xor_seq;   /* xor insn_xor into the first instruction byte of this exit */
        uint8_t insn_xor;
        /*
         * A trace as hvrec exec writes one of QEMU (vmm): backend "exec",
         * entry at the reset vector, the image one record of all RAM below
         * 0xA0000 plus a firmware at 0xF0000, firmware_exits MMIO exits in
         * the firmware before the guest's first, and the end status
         * QEMU's isa-debug-exit gives (2 * s + 1).  firmware alone (no
         * vmm): the same firmware memory and exits in a trace still hvrec
         * run's.
         */
        bool vmm, firmware;
        unsigned firmware_exits;
};

static struct edit no_edit(void)
{
        struct edit e = { .alter_seq = { NONE, NONE },
                          .remove_seq = NONE,
                          .insn_xor_seq = NONE,
                          .insert_intr_after = NONE,
                          .flip_io_seq = NONE,
                          .mem_gpa = NONE,
                          .overlay_gpa = NONE,
                          .overlay_flip = NONE,
                          .set_rip_seq = NONE };
        return e;
}

struct rw {
        const struct edit *ed;
        struct hvt_writer *w;
        uint8_t *mem;
        uint64_t mem_size;
        bool intr_due, firmware_done, overlay_done;
        struct hvt_exit last; /* the last exit written, for the inserted intr */
};

static uint64_t renumber(const struct rw *rw, uint64_t seq)
{
        return rw->ed->insert_intr_after != NONE && seq > (uint64_t)rw->ed->insert_intr_after
                       ? seq + 1
                       : seq;
}

static void write_due_intr(struct rw *rw)
{
        struct hvt_exit e = rw->last;

        if (!rw->intr_due)
                return;
        rw->intr_due = false;
        e.seq = (uint64_t)rw->ed->insert_intr_after + 1;
        e.reason = HVT_EXIT_INTR;
        e.raw_reason = 10; /* KVM_EXIT_INTR */
        memset(&e.u, 0, sizeof(e.u));
        cr_assert_eq(hvt_write_exit(rw->w, &e), 0);
}

/* Move a port-I/O exit (imm8 IN/OUT) to the other convention: RIP at the instruction or past it. */
static void flip_io(struct rw *rw, struct hvt_exit *e)
{
        uint64_t pc = hvt_state_pc(&e->st);

        cr_assert_eq(e->reason, HVT_EXIT_IO, "exit #%" PRIu64 " is not port I/O", e->seq);
        cr_assert_eq(e->u.io.io.count, 1);
        if (e->insn_len && (e->insn[0] == 0xe4 || e->insn[0] == 0xe6)) {
                /* RIP at the instruction: complete it. */
                e->st.rip += 2;
                pc += 2;
                if (e->u.io.io.dir == HVT_IO_IN) {
                        uint64_t v = 0, mask = e->u.io.io.size >= 4
                                                       ? ~0ull
                                                       : (1ull << (8 * e->u.io.io.size)) - 1;

                        memcpy(&v, e->u.io.data, e->u.io.io.size);
                        e->st.gpr[HVT_F_RAX] = (e->st.gpr[HVT_F_RAX] & ~mask) | (v & mask);
                }
        } else {
                /* RIP past the instruction: back to it. */
                cr_assert(pc >= 2 && pc < rw->mem_size &&
                                  (rw->mem[pc - 2] == 0xe4 || rw->mem[pc - 2] == 0xe6),
                          "no imm8 IN/OUT before exit #%" PRIu64, e->seq);
                e->st.rip -= 2;
                pc -= 2;
        }
        cr_assert(pc + 15 <= rw->mem_size);
        memcpy(e->insn, rw->mem + pc, 15); /* the code is not modified at run time */
        e->insn_len = 15;
}

#define FW_BASE 0xF0000u
#define FW_SIZE 0x10000u
#define VMM_RAM 0xA0000u

#define OVERLAY_LEN 16

/* Before the first exit: the overlay record of an overlay edit. */
static void write_overlay(struct rw *rw)
{
        const struct edit *ed = rw->ed;
        struct {
                struct hvt_disk_memory m;
                uint8_t b[OVERLAY_LEN];
        } __attribute__((packed)) rec;
        uint8_t *b = rec.b;
        uint64_t g = (uint64_t)ed->overlay_gpa;

        if (ed->overlay_gpa == NONE || rw->overlay_done)
                return;
        rw->overlay_done = true;
        cr_assert_leq(g + OVERLAY_LEN, rw->mem_size);
        memcpy(b, rw->mem + g, OVERLAY_LEN);
        if (ed->mem_gpa != NONE && (uint64_t)ed->mem_gpa - g < OVERLAY_LEN)
                b[ed->mem_gpa - ed->overlay_gpa] ^= 0xff;
        if (ed->overlay_flip != NONE)
                b[ed->overlay_flip] ^= 0xff;
        /* Raw: hvt_write_memory would leave out a record of zeros, and the reader must not. */
        memset(&rec.m, 0, sizeof(rec.m));
        rec.m.gpa = g;
        cr_assert_eq(hvt_write_raw(rw->w, HVT_REC_MEMORY, 0, &rec, sizeof(rec)), 0);
}

/*
 * Before the first exit of a vmm or firmware edit: the VMM's memory (all
 * RAM below 0xA0000 in one record, for vmm), the firmware image, and the
 * firmware's exits: APIC writes from F000:xxxx, as QEMU's MMIO exits of the
 * project's BIOS with kernel_irqchip=off look.
 */
static void write_firmware(struct rw *rw, const struct hvt_exit *first)
{
        uint8_t *fw;

        if (!(rw->ed->vmm || rw->ed->firmware) || rw->firmware_done)
                return;
        rw->firmware_done = true;
        cr_assert_geq(rw->mem_size, FW_BASE + FW_SIZE, "room for the firmware");
        if (rw->ed->vmm)
                cr_assert_eq(hvt_write_memory(rw->w, 0, rw->mem, VMM_RAM), 0);
        fw = malloc(FW_SIZE);
        cr_assert_not_null(fw);
        memset(fw, 0x90, FW_SIZE); /* NOPs: code that decodes */
        cr_assert_eq(hvt_write_memory(rw->w, FW_BASE, fw, FW_SIZE), 0);
        for (unsigned i = 0; i < rw->ed->firmware_exits; i++) {
                struct hvt_exit e = *first;

                e.seq = i;
                e.reason = HVT_EXIT_MMIO;
                e.raw_reason = 6; /* KVM_EXIT_MMIO */
                e.st.seg[HVT_CS].selector = 0xf000;
                e.st.seg[HVT_CS].base = FW_BASE;
                e.st.rip = 0x40 + 8 * i;
                memcpy(e.insn, fw + e.st.rip, 15);
                e.insn_len = 15;
                memset(&e.u, 0, sizeof(e.u));
                e.u.mmio.addr = 0xfee000f0;
                e.u.mmio.len = 4;
                e.u.mmio.is_write = 1;
                cr_assert_eq(hvt_write_exit(rw->w, &e), 0);
        }
        free(fw);
}

/* Copy src to dst record by record, every type, with the edits.  Returns the exits written. */
static uint64_t rewrite(const char *src, const char *dst, const struct edit *ed)
{
        struct hvt_reader *rd;
        struct hvt_event ev;
        struct rw rw = { .ed = ed };
        bool skipping = false;
        uint64_t exits = 0;
        int err;

        err = hvt_reader_open(&rd, src);
        cr_assert_eq(err, HVT_OK, "%s: %s", src, rd ? hvt_reader_message(rd) : "?");
        struct hvt_writer_opts wo = { .size = sizeof(wo), .frame_records = ed->frame_records };

        err = hvt_writer_open(&rw.w, dst, &wo);
        cr_assert_eq(err, 0, "%s: %s", dst, strerror(-err));
        while ((err = hvt_reader_next(rd, &ev)) == HVT_OK) {
                uint8_t *copy = NULL;

                switch (ev.type) {
                case HVT_REC_HEADER:
                        if (ed->vmm) {
                                ev.header.str[HVT_STR_BACKEND] = "exec";
                                ev.header.h.entry = 0xfff0;
                        }
                        rw.mem_size = ev.header.h.mem_size;
                        rw.mem = calloc(1, rw.mem_size);
                        cr_assert_not_null(rw.mem);
                        break;
                case HVT_REC_MEMORY:
                        copy = malloc(ev.memory.len);
                        cr_assert(ev.memory.gpa + ev.memory.len <= rw.mem_size);
                        memcpy(copy, ev.memory.data, ev.memory.len);
                        if (ed->mem_gpa != NONE && (uint64_t)ed->mem_gpa >= ev.memory.gpa &&
                            (uint64_t)ed->mem_gpa < ev.memory.gpa + ev.memory.len)
                                copy[ed->mem_gpa - ev.memory.gpa] ^= 0xff;
                        memcpy(rw.mem + ev.memory.gpa, copy, ev.memory.len);
                        ev.memory.data = copy;
                        if (ed->vmm) { /* in the VMM's one record of its RAM */
                                cr_assert(ev.memory.gpa + ev.memory.len <= VMM_RAM);
                                free(copy);
                                continue;
                        }
                        break;
                case HVT_REC_EXIT: {
                        struct hvt_exit *e = &ev.exit;
                        uint64_t seq = e->seq;

                        write_due_intr(&rw);
                        write_overlay(&rw);
                        write_firmware(&rw, e);
                        skipping = ed->remove_seq != NONE && seq == (uint64_t)ed->remove_seq;
                        if (skipping)
                                continue;
                        for (int k = 0; k < 2; k++)
                                if (ed->alter_seq[k] != NONE && seq == (uint64_t)ed->alter_seq[k])
                                        e->st.gpr[ed->alter_reg[k]] ^= ed->alter_xor[k];
                        if (ed->flip_io_seq != NONE && seq == (uint64_t)ed->flip_io_seq)
                                flip_io(&rw, e);
                        if (e->reason == HVT_EXIT_DEBUG)
                                e->u.debug.dr7 ^= ed->dr7_xor;
                        if (ed->insn_xor_seq != NONE && seq == (uint64_t)ed->insn_xor_seq)
                                e->insn[0] ^= ed->insn_xor;
                        if (ed->set_rip_seq != NONE && seq == (uint64_t)ed->set_rip_seq) {
                                cr_assert(ed->set_rip + 15 <= rw.mem_size);
                                e->st.rip = ed->set_rip; /* real mode, CS base 0 */
                                memcpy(e->insn, rw.mem + ed->set_rip, 15);
                                e->insn_len = 15;
                        }
                        e->seq = renumber(&rw, seq) + ed->firmware_exits;
                        rw.last = *e;
                        rw.intr_due = ed->insert_intr_after != NONE &&
                                      seq == (uint64_t)ed->insert_intr_after;
                        exits++;
                        break;
                }
                case HVT_REC_INJECT:
                        ev.inject.after_seq =
                                renumber(&rw, ev.inject.after_seq) + ed->firmware_exits;
                        break;
                case HVT_REC_RAISE:
                        ev.raise.seq = renumber(&rw, ev.raise.seq) + ed->firmware_exits;
                        break;
                case HVT_REC_DELIVER:
                        ev.deliver.seq = renumber(&rw, ev.deliver.seq) + ed->firmware_exits;
                        break;
                case HVT_REC_CONSOLE:
                        ev.console.seq = renumber(&rw, ev.console.seq) + ed->firmware_exits;
                        break;
                case HVT_REC_END:
                        write_due_intr(&rw);
                        if (ed->vmm)
                                ev.end.e.status = 2 * ev.end.e.status + 1;
                        break;
                default: cr_assert_fail("record type %u in %s", ev.type, src);
                }
                /* What follows a removed exit (its injection, delivery, output) goes with it. */
                if (skipping && ev.type != HVT_REC_END)
                        continue;
                err = hvt_write_event(rw.w, &ev);
                free(copy);
                cr_assert_eq(err, 0, "writing %s: %s", hvt_rec_type_name(ev.type), strerror(-err));
        }
        cr_assert_eq(err, HVT_END_OF_TRACE, "%s: %s", src, hvt_reader_message(rd));
        hvt_reader_close(rd);
        cr_assert_eq(hvt_writer_close(rw.w), 0);
        free(rw.mem);
        return exits;
}

/* ---- running hvreplay diff -------------------------------------------------------- */

/* hvreplay diff [args...] A B; args NULL-terminated. */
static void run_diff(struct hv_proc *p, const char *a, const char *b, ...)
{
        const char *argv[32] = { HVREPLAY, "diff" };
        int n = 2;
        va_list ap;

        va_start(ap, b);
        for (const char *s; (s = va_arg(ap, const char *)) && n < 28;)
                argv[n++] = s;
        va_end(ap);
        argv[n++] = a;
        argv[n++] = b;
        argv[n] = NULL;
        cr_assert_eq(hv_run(argv, p), 0, "cannot run hvreplay");
}

static size_t count(const char *hay, const char *needle)
{
        size_t n = 0;

        for (const char *s = hay; (s = strstr(s, needle)); s += strlen(needle))
                n++;
        return n;
}

/* Divergence objects in a --json document. */
static size_t ndivergences(const char *json)
{
        const char *d = strstr(json, "\"divergences\":[");

        cr_assert_not_null(d, "no divergences array: %s", json);
        return count(d, "\"field\":");
}

static void assert_one_json_document(const char *out)
{
        const char *end = hv_json_value(out);

        cr_assert_not_null(end, "not JSON: %s", out);
        cr_assert_eq(*hv_json_ws(end), 0, "one document, nothing after it: %s", out);
}

/* The seq of the first port-I/O exit in direction dir. */
static uint64_t first_io(const char *path, int dir)
{
        struct hv_trace t;
        uint64_t seq = UINT64_MAX;

        cr_assert_eq(hv_trace_load(path, &t), HVT_OK);
        for (size_t i = 0; i < t.nexits; i++)
                if (t.exits[i].e.reason == HVT_EXIT_IO && t.exits[i].e.u.io.io.dir == dir &&
                    t.exits[i].e.u.io.io.count == 1) {
                        seq = t.exits[i].e.seq;
                        break;
                }
        hv_trace_free(&t);
        cr_assert_neq(seq, UINT64_MAX, "%s has no %s exit", path, dir ? "OUT" : "IN");
        return seq;
}

/* ---- same -------------------------------------------------------------------------- */

Test(diff, a_trace_is_the_same_as_itself)
{
        struct hv_proc p;

        run_diff(&p, DEMO, DEMO, NULL);
        cr_assert_eq(p.status, 0, "status %d: %s%s", p.status, p.out, p.err);
        cr_assert(strstr(p.out, "same: 120 exits compared") != NULL, "%s", p.out);
        cr_assert(strstr(p.out, "headers: no difference") != NULL, "%s", p.out);
        cr_assert_str_empty(p.err);
        hv_proc_free(&p);

        run_diff(&p, DEMO, DEMO, "--json", NULL);
        cr_assert_eq(p.status, 0);
        assert_one_json_document(p.out);
        cr_assert(strstr(p.out, "\"same\":true") && strstr(p.out, "\"same_guest\":true"), "%s",
                  p.out);
        cr_assert(strstr(p.out, "\"divergences\":[]") != NULL, "%s", p.out);
        hv_proc_free(&p);
}

Test(diff, a_faithful_copy_is_the_same)
{
        struct edit ed = no_edit();
        const char *copy = hv_tmp("copy.zst");
        struct hv_proc p;

        cr_assert_eq(rewrite(DEMO, copy, &ed), 120);
        run_diff(&p, DEMO, copy, "--ignore-reason", "", "--ignore-field", "", NULL);
        cr_assert_eq(p.status, 0, "a copy compares equal on every field: %s", p.out);
        hv_proc_free(&p);
}

/*
 * Code an exit shows is not the initial image: a guest that rewrote its
 * code before its first compared exit (kvm with kicks in front of it) is
 * still the same guest.  The images used to be compared after the exits
 * read so far had changed them.
 */
Test(diff, code_an_exit_shows_is_not_the_initial_image)
{
        struct edit ed = no_edit();
        const char *alt = hv_tmp("rewritten.zst");
        struct hv_proc p;

        ed.insn_xor_seq = 0;
        ed.insn_xor = 0xff;
        rewrite(DEMO, alt, &ed);
        run_diff(&p, DEMO, alt, "--json", NULL);
        cr_assert_eq(p.status, 1, "%s%s", p.out, p.err);
        cr_assert(strstr(p.out, "\"same_guest\":true") != NULL, "%s", p.out);
        cr_assert(strstr(p.out, "{\"event_a\":0,\"event_b\":0,\"field\":\"insn\"") != NULL, "%s",
                  p.out);
        hv_proc_free(&p);
}

/*
 * DR7 bit 10 always reads 1, but emu reports 0x400 and kvm_pvm 0: not a
 * divergence.  Any other bit is.
 */
Test(diff, dr7_is_compared_without_its_fixed_bit)
{
        static const char step[] = HV_SOURCE_DIR "/traces/movss-sti-eager-step.zst";
        struct edit ed = no_edit();
        const char *alt = hv_tmp("dr7.zst");
        struct hv_proc p;

        ed.dr7_xor = 0x400;
        rewrite(step, alt, &ed);
        run_diff(&p, step, alt, NULL);
        cr_assert_eq(p.status, 0, "bit 10 alone: %s", p.out);
        hv_proc_free(&p);

        ed.dr7_xor = 0x401;
        rewrite(step, alt, &ed);
        run_diff(&p, step, alt, "--json", NULL);
        cr_assert_eq(p.status, 1, "L0 too: %s", p.out);
        cr_assert(strstr(p.out, "\"field\":\"debug.dr7\"") != NULL, "%s", p.out);
        hv_proc_free(&p);
}

/* ---- one register altered -------------------------------------------------------- */

Test(diff, an_altered_register_is_found_at_its_exit)
{
        struct edit ed = no_edit();
        const char *alt = hv_tmp("alt.zst");
        struct hv_proc p;

        ed.alter_seq[0] = 30;
        ed.alter_reg[0] = HVT_F_RBX;
        ed.alter_xor[0] = 0x1234;
        rewrite(DEMO, alt, &ed);

        run_diff(&p, DEMO, alt, "--json", NULL);
        cr_assert_eq(p.status, 1, "status %d: %s%s", p.status, p.out, p.err);
        assert_one_json_document(p.out);
        cr_assert(strstr(p.out, "{\"event_a\":30,\"event_b\":30,\"field\":\"rbx\",\"a\":\"0x0\","
                                "\"b\":\"0x1234\"") != NULL,
                  "%s", p.out);
        cr_assert_eq(ndivergences(p.out), 1, "only that field: %s", p.out);
        cr_assert(strstr(p.out, "\"same\":false") != NULL);
        hv_proc_free(&p);

        /* Text: the divergence, then 3 exits of context before it on each side, disassembled. */
        run_diff(&p, DEMO, alt, NULL);
        cr_assert_eq(p.status, 1);
        cr_assert(strstr(p.out, "first divergence:\n  a#30 b#30 io: rbx a=0x0 b=0x1234\n") != NULL,
                  "%s", p.out);
        cr_assert_eq(count(p.out, "-> #30 "), 2, "the exit marked on both sides: %s", p.out);
        cr_assert_eq(count(p.out, "   #27 "), 2, "3 exits of context: %s", p.out);
        cr_assert_eq(count(p.out, "   #26 "), 0, "not 4: %s", p.out);
        cr_assert(strstr(p.out, "jmp 0x1018") != NULL, "disassembled: %s", p.out);
        cr_assert(strstr(p.out, "diverged: first at a#30 b#30") != NULL, "%s", p.out);
        hv_proc_free(&p);

        run_diff(&p, DEMO, alt, "--context", "1", NULL);
        cr_assert_eq(count(p.out, "   #29 "), 2, "%s", p.out);
        cr_assert_eq(count(p.out, "   #28 "), 0, "%s", p.out);
        hv_proc_free(&p);

        /* Ignoring that register, nothing else differs. */
        run_diff(&p, DEMO, alt, "--ignore-field", "+rbx", NULL);
        cr_assert_eq(p.status, 0, "%s", p.out);
        hv_proc_free(&p);
}

Test(diff, all_lists_every_divergence)
{
        struct edit ed = no_edit();
        const char *alt = hv_tmp("alt2.zst");
        struct hv_proc p;

        ed.alter_seq[0] = 10;
        ed.alter_reg[0] = HVT_F_RBX;
        ed.alter_xor[0] = 1;
        ed.alter_seq[1] = 70;
        ed.alter_reg[1] = HVT_F_R9;
        ed.alter_xor[1] = 0x100;
        rewrite(DEMO, alt, &ed);

        run_diff(&p, DEMO, alt, "--json", NULL);
        cr_assert_eq(p.status, 1);
        cr_assert_eq(ndivergences(p.out), 1, "the first only: %s", p.out);
        cr_assert(strstr(p.out, "\"event_a\":10,\"event_b\":10,\"field\":\"rbx\"") != NULL);
        hv_proc_free(&p);

        run_diff(&p, DEMO, alt, "--json", "--all", NULL);
        cr_assert_eq(p.status, 1);
        assert_one_json_document(p.out);
        cr_assert_eq(ndivergences(p.out), 2, "%s", p.out);
        cr_assert(strstr(p.out, "\"event_a\":10,\"event_b\":10,\"field\":\"rbx\"") != NULL);
        cr_assert(strstr(p.out, "\"event_a\":70,\"event_b\":70,\"field\":\"r9\",\"a\":\"0x0\","
                                "\"b\":\"0x100\"") != NULL,
                  "%s", p.out);
        hv_proc_free(&p);

        run_diff(&p, DEMO, alt, "--all", NULL);
        cr_assert(strstr(p.out, "divergence 1:\n  a#10 b#10 io: rbx") != NULL, "%s", p.out);
        cr_assert(strstr(p.out, "divergence 2:\n  a#70 b#70 io: r9") != NULL, "%s", p.out);
        cr_assert(strstr(p.out, "in 2 places") != NULL, "%s", p.out);
        hv_proc_free(&p);
}

/* ---- exits removed and inserted ---------------------------------------------------- */

Test(diff, a_removed_exit_is_found_where_it_was)
{
        struct edit ed = no_edit();
        const char *cut = hv_tmp("cut.zst");
        struct hv_proc p;

        ed.remove_seq = 30;
        cr_assert_eq(rewrite(DEMO, cut, &ed), 119);

        run_diff(&p, DEMO, cut, "--json", NULL);
        cr_assert_eq(p.status, 1, "status %d: %s%s", p.status, p.out, p.err);
        cr_assert(strstr(p.out, "{\"event_a\":30,\"event_b\":null,\"field\":\"exit\",\"a\":\"io\","
                                "\"b\":null") != NULL,
                  "%s", p.out);
        hv_proc_free(&p);

        /* The two sides resynchronise right after it: nothing else. */
        run_diff(&p, DEMO, cut, "--json", "--all", NULL);
        cr_assert_eq(ndivergences(p.out), 1, "%s", p.out);
        hv_proc_free(&p);

        run_diff(&p, DEMO, cut, NULL);
        cr_assert(strstr(p.out, "  a#30 io: only in a\n") != NULL, "%s", p.out);
        cr_assert(strstr(p.out, "(nothing here in b: it goes on with #31)") != NULL, "%s", p.out);
        hv_proc_free(&p);

        /* The same from the other side. */
        run_diff(&p, cut, DEMO, "--json", NULL);
        cr_assert_eq(p.status, 1);
        cr_assert(strstr(p.out, "{\"event_a\":null,\"event_b\":30,\"field\":\"exit\",\"a\":null,"
                                "\"b\":\"io\"") != NULL,
                  "%s", p.out);
        hv_proc_free(&p);
}

Test(diff, the_last_exits_missing_are_one_divergence)
{
        struct edit ed = no_edit();
        const char *cut = hv_tmp("cut-last.zst");
        struct hv_proc p;

        ed.remove_seq = 119; /* the exit to port 0xF4 */
        rewrite(DEMO, cut, &ed);
        run_diff(&p, DEMO, cut, "--json", NULL);
        cr_assert_eq(p.status, 1, "%s", p.out);
        cr_assert(strstr(p.out, "{\"event_a\":119,\"event_b\":null,\"field\":\"exit\"") != NULL,
                  "%s", p.out);
        hv_proc_free(&p);
}

Test(diff, an_inserted_intr_exit_is_ignored_by_default)
{
        struct edit ed = no_edit();
        const char *ins = hv_tmp("intr.zst");
        struct hv_proc p;

        ed.insert_intr_after = 30;
        cr_assert_eq(rewrite(DEMO, ins, &ed), 120); /* and one intr exit */

        run_diff(&p, DEMO, ins, NULL);
        cr_assert_eq(p.status, 0, "status %d: %s%s", p.status, p.out, p.err);
        cr_assert(strstr(p.out, "b: 121 exits, 1 left out") != NULL, "%s", p.out);
        hv_proc_free(&p);

        run_diff(&p, DEMO, ins, "--ignore-reason", "", "--json", NULL);
        cr_assert_eq(p.status, 1, "status %d: %s%s", p.status, p.out, p.err);
        cr_assert(strstr(p.out, "{\"event_a\":null,\"event_b\":31,\"field\":\"exit\",\"a\":null,"
                                "\"b\":\"intr\"") != NULL,
                  "%s", p.out);
        hv_proc_free(&p);

        run_diff(&p, DEMO, ins, "--ignore-reason", "", "--json", "--all", NULL);
        cr_assert_eq(ndivergences(p.out), 1, "resynchronised after it: %s", p.out);
        hv_proc_free(&p);

        run_diff(&p, DEMO, ins, "--ignore-reason", "irq-window", NULL);
        cr_assert_eq(p.status, 1, "intr no longer ignored: %s", p.out);
        cr_assert(strstr(p.out, "  b#31 intr: only in b\n") != NULL, "%s", p.out);
        hv_proc_free(&p);
}

/* ---- port-I/O RIP conventions ------------------------------------------------------ */

static void io_convention_case(int dir, const char *name)
{
        struct edit ed = no_edit();
        const char *flip = hv_tmp(name);
        char needle[128];
        struct hv_proc p;
        uint64_t seq = first_io(DEMO, dir);

        ed.flip_io_seq = (int64_t)seq;
        rewrite(DEMO, flip, &ed);

        run_diff(&p, DEMO, flip, NULL); /* --io-rip instruction is the default */
        cr_assert_eq(p.status, 0, "%s #%" PRIu64 ": %s%s", dir ? "OUT" : "IN", seq, p.out, p.err);
        hv_proc_free(&p);
        run_diff(&p, DEMO, flip, "--io-rip", "instruction", "--ignore-field", "", NULL);
        cr_assert_eq(p.status, 0, "even comparing every field: %s", p.out);
        hv_proc_free(&p);

        run_diff(&p, DEMO, flip, "--io-rip", "raw", "--json", NULL);
        cr_assert_eq(p.status, 1, "%s", p.out);
        snprintf(needle, sizeof(needle),
                 "{\"event_a\":%" PRIu64 ",\"event_b\":%" PRIu64 ",\"field\":\"rip\"", seq, seq);
        cr_assert(strstr(p.out, needle) != NULL, "%s: %s", needle, p.out);
        hv_proc_free(&p);
}

Test(diff, an_out_exit_at_the_instruction_matches_one_past_it)
{
        io_convention_case(HVT_IO_OUT, "out.zst");
}

Test(diff, an_in_exit_completed_matches_one_pending)
{
        io_convention_case(HVT_IO_IN, "in.zst");
}

Test(diff, io_exits_at_different_instructions_diverge)
{
        struct edit ed = no_edit();
        const char *alt = hv_tmp("io-moved.zst");
        struct hv_trace t;
        struct hv_proc p;
        uint64_t seq = first_io(DEMO, HVT_IO_OUT), pc0 = 0, pc1 = 0;
        char needle[160];

        /* Move the first OUT exit past another OUT of the same port, elsewhere in the code. */
        cr_assert_eq(hv_trace_load(DEMO, &t), HVT_OK);
        for (size_t i = 0; i < t.nexits; i++) {
                const struct hvt_exit *e = &t.exits[i].e;

                if (e->seq == seq)
                        pc0 = e->st.rip;
                else if (pc0 && e->reason == HVT_EXIT_IO && e->u.io.io.dir == HVT_IO_OUT &&
                         e->u.io.io.port == t.exits[seq].e.u.io.io.port && e->st.rip != pc0) {
                        pc1 = e->st.rip;
                        break;
                }
        }
        hv_trace_free(&t);
        cr_assert(pc0 && pc1, "two OUT instructions to the same port");
        ed.set_rip_seq = (int64_t)seq;
        ed.set_rip = pc1;
        rewrite(DEMO, alt, &ed);

        run_diff(&p, DEMO, alt, "--json", NULL);
        cr_assert_eq(p.status, 1, "%s", p.out);
        snprintf(needle, sizeof(needle),
                 "{\"event_a\":%" PRIu64 ",\"event_b\":%" PRIu64
                 ",\"field\":\"io.insn\",\"a\":\"0x%" PRIx64 "\",\"b\":\"0x%" PRIx64 "\"",
                 seq, seq, pc0 - 2, pc1 - 2);
        cr_assert(strstr(p.out, needle) != NULL, "%s: %s", needle, p.out);
        hv_proc_free(&p);
}

/* ---- not the same guest ------------------------------------------------------------ */

Test(diff, different_memory_images_are_not_the_same_guest)
{
        struct edit ed = no_edit();
        const char *other = hv_tmp("image.zst");
        struct hv_proc p;

        ed.mem_gpa = 0x1800;
        rewrite(DEMO, other, &ed);

        run_diff(&p, DEMO, other, NULL);
        cr_assert_eq(p.status, 1, "status %d: %s%s", p.status, p.out, p.err);
        cr_assert(strstr(p.out, "initial memory: differs at gpa 0x1800") != NULL, "%s", p.out);
        cr_assert(strstr(p.out, "not the same guest") != NULL, "%s", p.out);
        cr_assert(strstr(p.out, "first divergence") == NULL, "no exit compared: %s", p.out);
        hv_proc_free(&p);

        run_diff(&p, DEMO, other, "--json", NULL);
        cr_assert_eq(p.status, 1);
        assert_one_json_document(p.out);
        cr_assert(strstr(p.out, "\"same_guest\":false") != NULL, "%s", p.out);
        cr_assert(strstr(p.out, "\"field\":\"memory\",\"gpa\":\"0x1800\"") != NULL, "%s", p.out);
        hv_proc_free(&p);

        run_diff(&p, DEMO, HV_SOURCE_DIR "/traces/hello.zst", NULL);
        cr_assert_eq(p.status, 1);
        cr_assert(strstr(p.out, "not the same guest") != NULL, "%s", p.out);
        cr_assert(strstr(p.out, "guest file") != NULL, "the header difference is stated: %s",
                  p.out);
        hv_proc_free(&p);
}

/*
 * The image is what the memory records leave, the later one winning where
 * two overlap, and zero where none is: a record that restores a byte an
 * earlier one changed leaves the image as it was, and a record of zeros
 * adds nothing.  Compared in both orders, whichever side holds the record.
 */
Test(diff, memory_records_that_overlap_make_one_image)
{
        static const struct {
                int64_t mem_gpa, overlay_gpa, overlay_flip;
                const char *want; /* NULL: identical */
        } cases[] = {
                { 0x1800, 0x17f8, NONE, NULL },     /* the overlay undoes the flip */
                { 0x1008, 0x1000, NONE, NULL },     /* ... in the code */
                { 0x1800, 0x1700, NONE, "0x1800" }, /* it does not cover it */
                { NONE, 0x1010, 3, "0x1013" },      /* the overlay flips a byte */
                { NONE, 0x80000, NONE, NULL },      /* zeros where no record is */
                { NONE, 0x80000, 7, "0x80007" },    /* ... but one byte that is not */
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct edit ed = no_edit();
                const char *other = hv_tmp("overlay.zst");
                char want[64];

                ed.mem_gpa = cases[i].mem_gpa;
                ed.overlay_gpa = cases[i].overlay_gpa;
                ed.overlay_flip = cases[i].overlay_flip;
                rewrite(DEMO, other, &ed);
                snprintf(want, sizeof(want), "initial memory: differs at gpa %s",
                         cases[i].want ? cases[i].want : "");
                for (int order = 0; order < 2; order++) {
                        struct hv_proc p;

                        run_diff(&p, order ? other : DEMO, order ? DEMO : other, NULL);
                        cr_assert_eq(p.status, cases[i].want ? 1 : 0, "case %zu: status %d: %s%s",
                                     i, p.status, p.out, p.err);
                        if (cases[i].want)
                                cr_assert(strstr(p.out, want) != NULL, "case %zu: %s", i, p.out);
                        else
                                cr_assert(strstr(p.out, "initial memory: identical") != NULL,
                                          "case %zu: %s", i, p.out);
                        hv_proc_free(&p);
                }
        }
}

/* ---- a VMM's trace (hvrec exec) against hvrec run's ------------------------------- */

Test(diff, a_vmm_trace_is_compared_from_the_guests_first_exit)
{
        struct edit ed = no_edit();
        const char *vmm = hv_tmp("vmm.zst");
        struct hv_proc p;

        ed.vmm = true;
        ed.firmware_exits = 3;
        cr_assert_eq(rewrite(DEMO, vmm, &ed), 120);

        run_diff(&p, DEMO, vmm, NULL);
        cr_assert_eq(p.status, 0, "status %d: %s%s", p.status, p.out, p.err);
        cr_assert(strstr(p.out, "initial memory: identical over the guest's image") != NULL, "%s",
                  p.out);
        cr_assert(strstr(p.out, "b is a VMM's trace (hvrec exec): memory compared over a's image "
                                "only; 3 exits before the guest's first (the VMM's firmware) "
                                "left out") != NULL,
                  "%s", p.out);
        /* The guest line is the guest's, not the VMM's reset vector. */
        cr_assert(strstr(p.out, "entry 0x1000") != NULL, "%s", p.out);
        cr_assert(strstr(p.out, "same: 120 exits compared, no divergence (a: 120 exits, 0 left "
                                "out; b: 123 exits, 3 left out with the firmware's)") != NULL,
                  "%s", p.out);
        hv_proc_free(&p);

        /* Either order; every field and every exit compared but the end status. */
        run_diff(&p, vmm, DEMO, "--ignore-reason", "", "--ignore-field", "", "--json", NULL);
        cr_assert_eq(p.status, 0, "status %d: %s%s", p.status, p.out, p.err);
        assert_one_json_document(p.out);
        cr_assert(strstr(p.out, "\"vmm\":\"a\",\"firmware_a\":3,\"firmware_b\":0") != NULL, "%s",
                  p.out);
        hv_proc_free(&p);
}

/*
 * Not the same guest: a VMM's trace whose guest image differs, and a trace
 * that is not a VMM's with a firmware in its memory (only a VMM's trace
 * has its memory and first exits taken as a firmware's).
 */
Test(diff, a_vmm_trace_is_still_compared_over_the_guests_image)
{
        static const struct {
                bool vmm, firmware;
                int64_t mem_gpa;
                const char *want;
        } cases[] = {
                { true, false, 0x1800, "initial memory: differs at gpa 0x1800" },
                { false, true, NONE, "initial memory: differs at gpa 0xf0000" },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct edit ed = no_edit();
                const char *other = hv_tmp("other.zst");
                struct hv_proc p;

                ed.vmm = cases[i].vmm;
                ed.firmware = cases[i].firmware;
                ed.firmware_exits = 2;
                ed.mem_gpa = cases[i].mem_gpa;
                rewrite(DEMO, other, &ed);
                run_diff(&p, DEMO, other, NULL);
                cr_assert_eq(p.status, 1, "status %d: %s%s", p.status, p.out, p.err);
                cr_assert(strstr(p.out, cases[i].want) != NULL, "%s", p.out);
                cr_assert(strstr(p.out, "first divergence") == NULL, "no exit compared: %s", p.out);
                cr_assert_eq(strstr(p.out, "VMM's trace") != NULL, cases[i].vmm, "%s", p.out);
                hv_proc_free(&p);
        }
}

/* ---- errors ------------------------------------------------------------------------ */

static const char *write_file(const char *name, const void *data, size_t len)
{
        const char *path = hv_tmp(name);
        FILE *f = fopen(path, "wb");

        cr_assert_not_null(f);
        cr_assert_eq(fwrite(data, 1, len, f), len);
        fclose(f);
        return path;
}

Test(diff, unreadable_traces_are_one_line_and_status_2)
{
        static const char junk[] = "this is not a trace\n";
        const char *bad = write_file("junk.zst", junk, sizeof(junk) - 1);
        struct hv_proc p;

        run_diff(&p, DEMO, bad, NULL);
        hv_assert_one_line_error(&p, "hvreplay", bad);
        cr_assert_str_empty(p.out);
        hv_proc_free(&p);

        run_diff(&p, "/nonexistent/a.zst", DEMO, NULL);
        hv_assert_one_line_error(&p, "hvreplay", "/nonexistent/a.zst");
        hv_proc_free(&p);

        run_diff(&p, DEMO, bad, "--json", NULL);
        hv_assert_one_line_error(&p, "hvreplay", bad);
        hv_proc_free(&p);
}

Test(diff, a_truncated_trace_is_status_2)
{
        FILE *f = fopen(DEMO, "rb");
        uint8_t buf[1 << 16];
        size_t n;
        const char *cut;
        struct hv_proc p;

        cr_assert_not_null(f);
        n = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        cut = write_file("truncated.zst", buf, n * 2 / 3);
        run_diff(&p, DEMO, cut, NULL);
        hv_assert_one_line_error(&p, "hvreplay", cut);
        hv_proc_free(&p);
}

Test(diff, a_trace_truncated_after_some_exits_is_compared_up_to_there)
{
        struct edit ed = no_edit();
        const char *framed = hv_tmp("framed.zst"), *cut;
        static uint8_t buf[1 << 16];
        struct hv_proc p;
        FILE *f;
        size_t n;

        ed.frame_records = 16; /* many small frames: the cut falls after complete ones */
        rewrite(DEMO, framed, &ed);
        f = fopen(framed, "rb");
        cr_assert_not_null(f);
        n = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        cut = write_file("cut-frames.zst", buf, n / 2);

        run_diff(&p, DEMO, cut, NULL);
        hv_assert_one_line_error(&p, "hvreplay", cut);
        cr_assert(strstr(p.err, "truncated") != NULL, "%s", p.err);
        cr_assert(strstr(p.out, "same so far: ") != NULL, "compared up to the cut: %s", p.out);
        hv_proc_free(&p);

        run_diff(&p, cut, DEMO, "--json", NULL);
        hv_assert_one_line_error(&p, "hvreplay", cut);
        assert_one_json_document(p.out);
        cr_assert(strstr(p.out, "\"complete\":false") != NULL, "%s", p.out);
        hv_proc_free(&p);
}

Test(diff, bad_usage_is_one_line_and_status_2)
{
        static const struct {
                const char *args[6];
                const char *needle;
        } cases[] = {
                { { DEMO, NULL }, "two traces" },
                { { DEMO, DEMO, DEMO, NULL }, "two traces" },
                { { "--context", "x", DEMO, DEMO, NULL }, "--context" },
                { { "--context", "-1", DEMO, DEMO, NULL }, "--context" },
                { { "--ignore-field", "rax,bogus", DEMO, DEMO, NULL }, "bogus" },
                { { "--ignore-reason", "nap", DEMO, DEMO, NULL }, "nap" },
                { { "--io-rip", "sideways", DEMO, DEMO, NULL }, "--io-rip" },
                { { "--bogus", DEMO, DEMO, NULL }, "--bogus" },
                { { DEMO, DEMO, "--ignore-field", NULL }, "two traces" },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                const char *argv[10] = { HVREPLAY, "diff" };
                struct hv_proc p;

                for (int a = 0; cases[i].args[a]; a++)
                        argv[a + 2] = cases[i].args[a];
                cr_assert_eq(hv_run(argv, &p), 0);
                hv_assert_one_line_error(&p, "hvreplay diff", cases[i].needle);
                hv_proc_free(&p);
        }
}

Test(diff, help_states_every_option_and_default)
{
        static const char *const want[] = { "--context",
                                            "--all",
                                            "--ignore-reason",
                                            "--io-rip",
                                            "--ignore-field",
                                            "--json",
                                            "--help",
                                            "default 3",
                                            "default intr,irq-window",
                                            "instruction (default)",
                                            "Timing is always ignored",
                                            "docs/diff.md" };
        const char *argv[] = { HVREPLAY, "diff", "--help", NULL };
        const char *top[] = { HVREPLAY, "--help", NULL };
        struct hv_proc p;

        cr_assert_eq(hv_run(argv, &p), 0);
        cr_assert_eq(p.status, 0);
        for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
                cr_assert(strstr(p.out, want[i]) != NULL, "--help mentions '%s':\n%s", want[i],
                          p.out);
        hv_proc_free(&p);
        cr_assert_eq(hv_run(top, &p), 0);
        cr_assert(strstr(p.out, "  diff ") != NULL, "hvreplay --help lists diff: %s", p.out);
        hv_proc_free(&p);
}

/* ---- two recordings on KVM --------------------------------------------------------- */

/* Record the demo guest with extra args into dst (moved out of hv_record's own file). */
static void record_demo(const char *const *args, const char *dst)
{
        struct hv_trace t;
        struct hv_proc p;
        const char *rec = hv_tmp("rec.zst");

        cr_assert_eq(hv_record("demo", args, &t, &p), 0, "hvrec: %s", p.err);
        hv_trace_free(&t);
        hv_proc_free(&p);
        cr_assert_eq(rename(rec, dst), 0, "%s -> %s: %s", rec, dst, strerror(errno));
}

/* hv_tmp's directory, empty once the recordings moved out of it. */
static void record_done(void)
{
        char dir[1024];

        snprintf(dir, sizeof(dir), "%s", hv_tmp("rec.zst"));
        rmdir(dirname(dir));
}

Test(diff, two_kvm_recordings_of_the_demo_are_the_same)
{
        const char *r1 = hv_tmp("r1.zst"), *r2 = hv_tmp("r2.zst");
        struct hv_proc p;

        HV_REQUIRE_KVM();
        record_demo(NULL, r1);
        record_demo(NULL, r2);
        run_diff(&p, r1, r2, NULL);
        cr_assert_eq(p.status, 0, "status %d:\n%s%s", p.status, p.out, p.err);
        cr_assert(strstr(p.out, "same: 120 exits compared") != NULL, "%s", p.out);
        hv_proc_free(&p);
        /* Deterministic: even the fields ignored by default agree. */
        run_diff(&p, r1, r2, "--ignore-field", "", "--ignore-reason", "", NULL);
        cr_assert_eq(p.status, 0, "status %d:\n%s%s", p.status, p.out, p.err);
        hv_proc_free(&p);
        record_done();
}

Test(diff, a_kicked_kvm_recording_is_the_same_as_a_plain_one)
{
        static const char *const kick[] = { "--kick", "20", NULL };
        const char *plain = hv_tmp("plain.zst"), *kicked = hv_tmp("kicked.zst");
        struct hv_trace t;
        struct hv_proc p;
        size_t intr = 0;

        HV_REQUIRE_KVM();
        record_demo(NULL, plain);
        record_demo(kick, kicked);
        record_done();
        cr_assert_eq(hv_trace_load(kicked, &t), HVT_OK);
        for (size_t i = 0; i < t.nexits; i++)
                intr += t.exits[i].e.reason == HVT_EXIT_INTR;
        hv_trace_free(&t);

        run_diff(&p, plain, kicked, NULL);
        cr_assert_eq(p.status, 0, "kicks only add intr exits (%zu here):\n%s%s", intr, p.out,
                     p.err);
        cr_assert(strstr(p.out, "kicks") != NULL, "the header difference is stated: %s", p.out);
        hv_proc_free(&p);
        if (!intr) {
                cr_log_info("no kick landed during the run: intr exits not exercised");
                return;
        }
        run_diff(&p, plain, kicked, "--ignore-reason", "", NULL);
        cr_assert_eq(p.status, 1, "with intr exits compared they differ:\n%s", p.out);
        cr_assert(strstr(p.out, "intr: only in b") != NULL, "%s", p.out);
        hv_proc_free(&p);
}

/* ---- crafted traces: diff stays defined ------------------------------------------- */

/* Two exits (an OUT, then HLT), console bytes after the first when given, then END. */
static const char *write_small(const char *name, uint64_t mem_size, const char *console)
{
        const char *path = hv_tmp(name);
        struct hvt_writer *w;
        struct hvt_header h = { 0 };
        struct hvt_exit e = { .reason = HVT_EXIT_IO, .insn_len = 1, .insn = { 0xee } };
        struct hvt_disk_end end = { .exits = 2, .why = HVT_END_HALT };
        static const uint8_t a = 'h';

        cr_assert_eq(hvt_writer_open(&w, path, NULL), 0);
        h.h.mem_size = mem_size;
        h.h.entry = h.h.load_addr = 0x1000;
        h.h.guest_mode = HVT_MODE_REAL;
        cr_assert_eq(hvt_write_header(w, &h), 0);
        e.st.rip = 0x1001;
        e.u.io.io = (struct hvt_disk_io){ .port = 0xe9, .size = 1, .dir = HVT_IO_OUT, .count = 1 };
        e.u.io.data = &a;
        cr_assert_eq(hvt_write_exit(w, &e), 0);
        if (console)
                cr_assert_eq(hvt_write_console(w, 0, console, strlen(console)), 0);
        e = (struct hvt_exit){ .seq = 1, .reason = HVT_EXIT_HLT, .insn_len = 1, .insn = { 0xf4 } };
        e.st.rip = 0x1002;
        cr_assert_eq(hvt_write_exit(w, &e), 0);
        cr_assert_eq(hvt_write_end(w, &end, "halted"), 0);
        cr_assert_eq(hvt_writer_close(w), 0);
        return path;
}

/* Console bytes on one side only: the other side has no buffer at all. */
Test(diff, console_on_one_side_only)
{
        const char *a = write_small("con-a.zst", 0x10000, "hi\n"),
                   *b = write_small("con-b.zst", 0x10000, NULL);
        struct hv_proc p;

        run_diff(&p, a, b, NULL);
        cr_assert_eq(p.status, 1, "status %d\n%s%s", p.status, p.out, p.err);
        cr_assert_not_null(strstr(p.out, "console a=\"hi\\n\" b=\"\""), "%s", p.out);
        cr_assert_null(strstr(p.err, "runtime error"), "%s", p.err);
        hv_proc_free(&p);
        run_diff(&p, b, a, NULL);
        cr_assert_eq(p.status, 1, "status %d\n%s%s", p.status, p.out, p.err);
        cr_assert_not_null(strstr(p.out, "console a=\"\" b=\"hi\\n\""), "%s", p.out);
        hv_proc_free(&p);
}

/*
 * A header whose memory cannot be held: one line and status 2, never a
 * crash (the image's allocation fails part way, and only what was set up
 * may be freed).  Where the system grants 16 TiB, diff simply works.
 */
Test(diff, a_memory_size_that_cannot_be_allocated)
{
        const char *huge = write_small("huge.zst", 1ull << 44, NULL);
        const char *asan = getenv("ASAN_OPTIONS");
        char opts[512];
        struct hv_proc p;

        /* Under AddressSanitizer a failed allocation returns NULL, as it does without. */
        snprintf(opts, sizeof(opts), "%s%sallocator_may_return_null=1", asan ? asan : "",
                 asan ? ":" : "");
        setenv("ASAN_OPTIONS", opts, 1);
        run_diff(&p, huge, huge, NULL);
        cr_assert(p.status == 0 || p.status == 2, "status %d: %s", p.status, p.err);
        if (p.status == 2) {
                /* One line of hvreplay's own; AddressSanitizer may add a warning ("==N=="). */
                const char *line = p.err;

                while (!strncmp(line, "==", 2) && strchr(line, '\n'))
                        line = strchr(line, '\n') + 1;
                cr_assert_eq(strncmp(line, "hvreplay", 8), 0, "%s", p.err);
                cr_assert_not_null(strstr(line, "cannot allocate 17592186044416 bytes"), "%s",
                                   p.err);
                cr_assert_eq(strchr(line, '\n'), line + strlen(line) - 1, "one line: %s", p.err);
        }
        hv_proc_free(&p);
}
