// SPDX-License-Identifier: MIT
/* hvreplay dump: every event of a trace, as text or as JSON lines. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "json.h"
#include "replay.h"

/* A write record can hold 16 MiB: show its start, enough to recognise code or data. */
#define DUMP_TEXT_WRITE_BYTES 16
#define DUMP_JSON_WRITE_BYTES 64

static void usage(FILE *f)
{
        fprintf(f, "Usage: hvreplay dump [OPTIONS] TRACE\n"
                   "\n"
                   "Print every event of TRACE: one line per exit (sequence, time, reason, CS:IP,\n"
                   "the instruction there, key registers, the exit's data), injection, delivery,\n"
                   "console output, guest memory writes and the end of the run.\n"
                   "\n"
                   "Options:\n"
                   "  --format FORMAT   text (default) or jsonl: one JSON object per event,\n"
                   "                    keys documented in docs/dump-jsonl.md\n"
                   "  -h, --help        this text\n"
                   "\n"
                   "In a multi-vCPU trace each line starts with the vCPU of its event (v0, v1,\n"
                   "...; - for memory, writes and the end) and JSON lines have a vcpu key.\n"
                   "\n"
                   "A damaged trace is dumped up to its last complete record; the reason goes\n"
                   "to stderr and the exit status is 2.\n");
}

/* ---- text ---------------------------------------------------------------- */

static void text_exit(FILE *f, struct disasm *d, const struct hvt_exit *ex)
{
        struct disasm_insn insn;
        char pc[32], regs[200], intr[64];
        const char *text = replay_insn_text(d, ex, &insn);

        replay_fmt_pc(&ex->st, pc, sizeof(pc));
        replay_text_regs(&ex->st, regs, sizeof(regs));
        replay_fmt_intr(ex->st.intr, intr, sizeof(intr));
        fprintf(f, "#%-7" PRIu64 " %12.6f  %-10s %-9s %s  %-26s %s %s", ex->seq,
                (double)ex->time_ns / 1e9, hvt_exit_reason_name(ex->reason),
                hvt_mode_name(hvt_state_mode(&ex->st)), pc, text, regs, intr);
        replay_text_exit_data(f, ex);
        fputc('\n', f);
}

/* A command-line argument, quoted when a space or nothing would hide where it ends. */
static void text_arg(FILE *f, const char *a)
{
        if (*a && !strpbrk(a, " '")) {
                replay_put_str(f, a);
                return;
        }
        fputc('\'', f);
        replay_put_escaped(f, a, strlen(a), '\'');
        fputc('\'', f);
}

/* Every string here comes from the trace: each is escaped (replay_put_escaped). */
static void text_header(FILE *f, const char *path, const struct hvt_header *h)
{
        fputs("# ", f);
        replay_put_str(f, path);
        fputs(": ", f);
        replay_put_str(f, h->str[HVT_STR_TOOL_VERSION]);
        fputs(", backend ", f);
        replay_put_str(f, h->str[HVT_STR_BACKEND]);
        fputs(" (", f);
        replay_put_str(f, h->str[HVT_STR_BACKEND_VERSION]);
        fputs(")\n# host ", f);
        replay_put_str(f, h->str[HVT_STR_CPU_VENDOR]);
        fputc(' ', f);
        replay_put_str(f, h->str[HVT_STR_CPU_MODEL]);
        fputs(", ", f);
        replay_put_str(f, h->str[HVT_STR_KERNEL]);
        fputs("\n# guest ", f);
        replay_put_str(f, h->str[HVT_STR_GUEST]);
        fprintf(f,
                ": %s mode, load 0x%" PRIx64 ", entry 0x%" PRIx64 ", memory %" PRIu64
                " bytes, policy %s%s%s%s, seed %" PRIu64 "\n",
                hvt_mode_name(h->h.guest_mode), h->h.load_addr, h->h.entry, h->h.mem_size,
                hvt_policy_name(h->h.inject_policy),
                (h->h.flags & HVT_HDR_SINGLE_STEP) ? ", single-step" : "",
                (h->h.flags & HVT_HDR_WRITES) ? ", writes" : "",
                (h->h.flags & HVT_HDR_STEP_INJECT) ? ", step-inject" : "", h->h.seed);
        fprintf(f, "# command:");
        for (int i = 0; i < h->argc; i++) {
                fputc(' ', f);
                text_arg(f, h->argv[i]);
        }
        fprintf(f, "\n");
        if (h->h.vcpus > 1)
                fprintf(f, "# %u vCPUs: each line starts with its vCPU, - for the machine\n",
                        h->h.vcpus);
}

static void text_event(FILE *f, struct disasm *d, const char *path, const struct hvt_event *ev)
{
        char pc[32], intr[64];

        switch (ev->type) {
        case HVT_REC_HEADER: text_header(f, path, &ev->header); break;
        case HVT_REC_MEMORY:
                fprintf(f, "%-8s %12s  %-10s gpa 0x%" PRIx64 ", %zu bytes\n", "", "", "memory",
                        ev->memory.gpa, ev->memory.len);
                break;
        case HVT_REC_EXIT: text_exit(f, d, &ev->exit); break;
        case HVT_REC_RAISE:
                fprintf(f, "%-8s %12s  %-10s %s 0x%02x from %s at #%" PRIu64 "\n", "", "", "raise",
                        ev->raise.kind == HVT_IRQ_NMI ? "NMI, vector" : "vector", ev->raise.vector,
                        hvt_source_name(ev->raise.source), ev->raise.seq);
                break;
        case HVT_REC_INJECT: {
                const struct hvt_disk_inject *in = &ev->inject;

                replay_fmt_intr(in->intr, intr, sizeof(intr));
                fprintf(f,
                        "%-8s %12s  %-10s %s 0x%02x from %s, policy %s, after #%" PRIu64
                        " at rip 0x%" PRIx64 " (cs %04x) fl=%04" PRIx64 " %s\n",
                        "", "", "inject", in->method == HVT_INJ_NMI ? "NMI, vector" : "vector",
                        in->vector, hvt_source_name(in->source), hvt_policy_name(in->policy),
                        in->after_seq, in->rip, in->cs, in->rflags, intr);
                break;
        }
        case HVT_REC_DELIVER: {
                const struct hvt_disk_deliver *dv = &ev->deliver;

                if (dv->frame_bits == 16)
                        snprintf(pc, sizeof(pc), "%04x:%04" PRIx64, dv->cs, dv->ip & 0xffff);
                else
                        snprintf(pc, sizeof(pc), "%04x:%" PRIx64, dv->cs, dv->ip);
                fprintf(f,
                        "%-8s %12s  %-10s %s 0x%02x (%s) interrupted %s%s fl=%04" PRIx64
                        " handler 0x%" PRIx64 " probe at #%" PRIu64 "\n",
                        "", "", "deliver",
                        (dv->dflags & HVT_DELIVER_NMI) ? "NMI, vector" : "vector", dv->vector,
                        dv->vector_from == HVT_VEC_TABLE      ? "from the table"
                        : dv->vector_from == HVT_VEC_INJECTED ? "from the injection"
                                                              : "vector unknown",
                        pc, (dv->dflags & HVT_DELIVER_CS_BASE_UNKNOWN) ? " (cs base unknown)" : "",
                        dv->flags, dv->handler, dv->seq);
                break;
        }
        case HVT_REC_CONSOLE:
                fprintf(f, "%-8s %12s  %-10s \"", "", "", "console");
                replay_put_escaped(f, ev->console.data, ev->console.len, '"');
                fputs("\"\n", f);
                break;
        case HVT_REC_WRITE:
                fprintf(f, "%-8s %12s  %-10s 0x%08" PRIx64 " +%zu", "", "", "write", ev->write.gpa,
                        ev->write.len);
                if (ev->write.len)
                        fputc(' ', f);
                for (size_t i = 0; i < ev->write.len && i < DUMP_TEXT_WRITE_BYTES; i++)
                        fprintf(f, " %02x", ev->write.data[i]);
                fputs(ev->write.len > DUMP_TEXT_WRITE_BYTES ? " ...\n" : "\n", f);
                break;
        case HVT_REC_END:
                fprintf(f, "end      %12.6f  %-10s status %d after %" PRIu64 " exits: ",
                        (double)ev->end.e.wall_ns / 1e9, hvt_end_why_name(ev->end.e.why),
                        ev->end.e.status, ev->end.e.exits);
                replay_put_str(f, ev->end.message);
                fputc('\n', f);
                break;
        default: break;
        }
}

/* ---- JSON lines ------------------------------------------------------------ */

static void json_state(struct json *j, const struct hvt_vcpu_state *st)
{
        json_obj(j, "regs");
        for (unsigned r = HVT_F_RAX; r <= HVT_F_R15; r++)
                json_hex(j, hvt_field_name(r), st->gpr[r]);
        json_obj_end(j);
        json_obj(j, "sregs");
        for (unsigned s = 0; s < HVT_SREG_COUNT; s++) {
                json_obj(j, hvt_sreg_name(s));
                json_hex(j, "selector", st->seg[s].selector);
                json_hex(j, "base", st->seg[s].base);
                json_hex(j, "limit", st->seg[s].limit);
                json_hex(j, "attr", st->seg[s].attr);
                json_obj_end(j);
        }
        json_obj_end(j);
        json_hex(j, "cr0", st->cr0);
        json_hex(j, "cr2", st->cr2);
        json_hex(j, "cr3", st->cr3);
        json_hex(j, "cr4", st->cr4);
        json_hex(j, "efer", st->efer);
        json_hex(j, "gdt_base", st->gdt.base);
        json_hex(j, "gdt_limit", st->gdt.limit);
        json_hex(j, "idt_base", st->idt.base);
        json_hex(j, "idt_limit", st->idt.limit);
}

/*
 * The state members of an exit's line are most of its bytes, and on a loop
 * they repeat exit after exit: the last ones formatted are kept, and used
 * again while the fields they show are the same.
 */
struct json_state_memo {
        bool valid;
        struct hvt_vcpu_state st;
        struct json text; /* formatted with a comma first; never flushed */
};

static bool state_shown_same(const struct hvt_vcpu_state *a, const struct hvt_vcpu_state *b)
{
        return !memcmp(a->gpr, b->gpr, sizeof(a->gpr)) && !memcmp(a->seg, b->seg, sizeof(a->seg)) &&
               a->cr0 == b->cr0 && a->cr2 == b->cr2 && a->cr3 == b->cr3 && a->cr4 == b->cr4 &&
               a->efer == b->efer && a->gdt.base == b->gdt.base && a->gdt.limit == b->gdt.limit &&
               a->idt.base == b->idt.base && a->idt.limit == b->idt.limit;
}

static void json_state_memo(struct json *j, struct json_state_memo *m,
                            const struct hvt_vcpu_state *st)
{
        if (!m->valid || !state_shown_same(&m->st, st)) {
                m->st = *st;
                m->text.f = NULL;
                m->text.depth = 0;
                m->text.first[0] = false;
                m->text.len = 0;
                json_state(&m->text, st);
                m->valid = true;
        }
        json_put_(j, m->text.buf, m->text.len);
        j->first[j->depth] = false;
}

static void json_intr(struct json *j, uint64_t intr)
{
        if (intr & HVT_INTR_VALID_READY)
                json_bool(j, "ready", intr & HVT_INTR_READY);
        if (intr & HVT_INTR_VALID_SHADOW)
                json_str(j, "shadow", hvt_shadow_name(intr));
        if (intr & HVT_INTR_VALID_IF)
                json_bool(j, "if", intr & HVT_INTR_IF);
        if (intr & HVT_INTR_VALID_NMI)
                json_bool(j, "nmi_blocked", intr & HVT_INTR_NMI_BLOCKED);
        json_bool(j, "irq_queued", intr & HVT_INTR_PENDING);
        json_bool(j, "window_requested", intr & HVT_INTR_WINDOW_REQ);
}

static void json_exit(struct json *j, struct disasm *d, struct json_state_memo *m,
                      const struct hvt_exit *ex)
{
        struct disasm_insn insn;

        json_u64(j, "seq", ex->seq);
        json_str(j, "reason", hvt_exit_reason_name(ex->reason));
        json_u64(j, "raw_reason", ex->raw_reason);
        json_u64(j, "time_ns", ex->time_ns);
        json_u64(j, "guest_ns", ex->guest_ns);
        json_str(j, "mode", hvt_mode_name(hvt_state_mode(&ex->st)));
        json_u64(j, "bits", hvt_state_code_bits(&ex->st));
        json_hex(j, "cs", ex->st.seg[HVT_CS].selector);
        json_hex(j, "rip", ex->st.rip);
        json_hex(j, "pc", hvt_state_pc(&ex->st));
        json_hex(j, "rflags", ex->st.rflags);
        json_intr(j, ex->st.intr);
        json_bytes(j, "insn_bytes", ex->insn, ex->insn_len);
        if (ex->insn_len && !replay_decode_exit(d, ex, &insn))
                json_str(j, "insn", insn.text);
        switch (ex->reason) {
        case HVT_EXIT_IO:
                json_hex(j, "port", ex->u.io.io.port);
                json_str(j, "dir", ex->u.io.io.dir == HVT_IO_OUT ? "out" : "in");
                json_u64(j, "size", ex->u.io.io.size);
                json_u64(j, "count", ex->u.io.io.count);
                if (ex->u.io.io.count)
                        json_hex(j, "data", replay_io_value(ex));
                if (ex->u.io.io.count > 1)
                        json_bytes(j, "bytes", ex->u.io.data,
                                   (size_t)ex->u.io.io.size * ex->u.io.io.count);
                break;
        case HVT_EXIT_MMIO:
                json_hex(j, "addr", ex->u.mmio.addr);
                json_u64(j, "len", ex->u.mmio.len);
                json_str(j, "dir", ex->u.mmio.is_write ? "write" : "read");
                json_bytes(j, "data", ex->u.mmio.data, ex->u.mmio.len < 8 ? ex->u.mmio.len : 8);
                break;
        case HVT_EXIT_FAIL_ENTRY:
                json_hex(j, "hw_reason", ex->u.fail_entry.hw_reason);
                json_u64(j, "cpu", ex->u.fail_entry.cpu);
                break;
        case HVT_EXIT_INTERNAL:
                json_u64(j, "suberror", ex->u.internal.internal.suberror);
                json_arr(j, "internal_data");
                for (unsigned i = 0; i < ex->u.internal.internal.ndata; i++)
                        json_hex(j, NULL, ex->u.internal.data[i]);
                json_arr_end(j);
                break;
        case HVT_EXIT_DEBUG:
                json_u64(j, "exception", ex->u.debug.exception);
                json_hex(j, "dr6", ex->u.debug.dr6);
                json_hex(j, "dr7", ex->u.debug.dr7);
                break;
        case HVT_EXIT_EXCEPTION:
                json_u64(j, "exception", ex->u.exception.vector);
                json_hex(j, "error_code", ex->u.exception.error_code);
                json_hex(j, "cr2", ex->u.exception.cr2);
                break;
        default: break;
        }
        json_state_memo(j, m, &ex->st);
}

/* vcpu: the event's vCPU in a multi-vCPU trace, else -1 (no key: v1 lines stay as they were). */
static void json_event(FILE *f, struct disasm *d, struct json_state_memo *m,
                       const struct hvt_event *ev, int vcpu)
{
        const struct hvt_header *h = &ev->header;
        struct json j;

        json_begin(&j, f);
        json_u64(&j, "event", ev->index);
        json_str(&j, "type", hvt_rec_type_name(ev->type));
        if (vcpu >= 0)
                json_u64(&j, "vcpu", (uint64_t)vcpu);
        switch (ev->type) {
        case HVT_REC_HEADER:
                json_u64(&j, "format_version",
                         h->h.vcpus > 1 ? HVT_FORMAT_VERSION : HVT_FORMAT_VERSION_1VCPU);
                if (h->h.vcpus > 1)
                        json_u64(&j, "vcpus", h->h.vcpus);
                json_str(&j, "tool", h->str[HVT_STR_TOOL_VERSION]);
                json_str(&j, "backend", h->str[HVT_STR_BACKEND]);
                json_str(&j, "backend_version", h->str[HVT_STR_BACKEND_VERSION]);
                json_str(&j, "cpu_vendor", h->str[HVT_STR_CPU_VENDOR]);
                json_str(&j, "cpu_model", h->str[HVT_STR_CPU_MODEL]);
                json_str(&j, "kernel", h->str[HVT_STR_KERNEL]);
                json_str(&j, "guest", h->str[HVT_STR_GUEST]);
                json_str(&j, "mode", hvt_mode_name(h->h.guest_mode));
                json_hex(&j, "load", h->h.load_addr);
                json_hex(&j, "entry", h->h.entry);
                json_u64(&j, "mem_size", h->h.mem_size);
                json_u64(&j, "seed", h->h.seed);
                json_str(&j, "policy", hvt_policy_name(h->h.inject_policy));
                json_bool(&j, "single_step", h->h.flags & HVT_HDR_SINGLE_STEP);
                json_bool(&j, "writes", h->h.flags & HVT_HDR_WRITES);
                json_bool(&j, "step_inject", h->h.flags & HVT_HDR_STEP_INJECT);
                json_hex(&j, "backend_caps", h->h.backend_caps);
                json_arr(&j, "cmdline");
                for (int i = 0; i < h->argc; i++)
                        json_str(&j, NULL, h->argv[i]);
                json_arr_end(&j);
                break;
        case HVT_REC_MEMORY:
                json_hex(&j, "gpa", ev->memory.gpa);
                json_u64(&j, "len", ev->memory.len);
                break;
        case HVT_REC_EXIT: json_exit(&j, d, m, &ev->exit); break;
        case HVT_REC_RAISE:
                json_u64(&j, "seq", ev->raise.seq);
                json_hex(&j, "vector", ev->raise.vector);
                json_str(&j, "source", hvt_source_name(ev->raise.source));
                /* Only when set: lines of maskable interrupts stay as they were. */
                if (ev->raise.kind == HVT_IRQ_NMI)
                        json_bool(&j, "nmi", true);
                break;
        case HVT_REC_INJECT:
                json_u64(&j, "seq", ev->inject.after_seq);
                json_hex(&j, "vector", ev->inject.vector);
                json_str(&j, "source", hvt_source_name(ev->inject.source));
                if (ev->inject.method == HVT_INJ_NMI)
                        json_bool(&j, "nmi", true);
                json_str(&j, "policy", hvt_policy_name(ev->inject.policy));
                json_hex(&j, "cs", ev->inject.cs);
                json_hex(&j, "rip", ev->inject.rip);
                json_hex(&j, "pc", ev->inject.cs_base + ev->inject.rip);
                json_hex(&j, "rflags", ev->inject.rflags);
                json_hex(&j, "handler", ev->inject.handler);
                json_intr(&j, ev->inject.intr);
                break;
        case HVT_REC_DELIVER:
                json_u64(&j, "seq", ev->deliver.seq);
                json_hex(&j, "vector", ev->deliver.vector);
                if (ev->deliver.dflags & HVT_DELIVER_NMI)
                        json_bool(&j, "nmi", true);
                json_str(&j, "vector_from",
                         ev->deliver.vector_from == HVT_VEC_TABLE      ? "table"
                         : ev->deliver.vector_from == HVT_VEC_INJECTED ? "injection"
                                                                       : "unknown");
                json_hex(&j, "cs", ev->deliver.cs);
                json_hex(&j, "rip", ev->deliver.ip);
                /* Without the CS base the linear address is unknown, not cs_base 0 + ip. */
                if (ev->deliver.dflags & HVT_DELIVER_CS_BASE_UNKNOWN)
                        json_null(&j, "pc");
                else
                        json_hex(&j, "pc", ev->deliver.cs_base + ev->deliver.ip);
                json_hex(&j, "rflags", ev->deliver.flags);
                json_hex(&j, "rsp", ev->deliver.sp);
                json_hex(&j, "handler", ev->deliver.handler);
                json_u64(&j, "frame_bits", ev->deliver.frame_bits);
                break;
        case HVT_REC_CONSOLE:
                json_u64(&j, "seq", ev->console.seq);
                json_strn(&j, "text", ev->console.data, ev->console.len);
                break;
        case HVT_REC_WRITE:
                json_u64(&j, "seq", ev->write.seq);
                json_hex(&j, "gpa", ev->write.gpa);
                json_u64(&j, "len", ev->write.len);
                json_bytes(&j, "data", ev->write.data,
                           ev->write.len < DUMP_JSON_WRITE_BYTES ? ev->write.len
                                                                 : DUMP_JSON_WRITE_BYTES);
                json_bool(&j, "truncated", ev->write.len > DUMP_JSON_WRITE_BYTES);
                break;
        case HVT_REC_END:
                json_u64(&j, "seq", ev->end.e.exits);
                json_str(&j, "why", hvt_end_why_name(ev->end.e.why));
                json_i64(&j, "status", ev->end.e.status);
                json_u64(&j, "exits", ev->end.e.exits);
                json_u64(&j, "wall_ns", ev->end.e.wall_ns);
                json_hex(&j, "last_rip", ev->end.e.last_rip);
                json_u64(&j, "detail", ev->end.e.detail);
                json_str(&j, "message", ev->end.message);
                break;
        default: break;
        }
        json_end(&j);
}

int cmd_dump(int argc, char **argv)
{
        static const struct option opts[] = {
                { "format", required_argument, NULL, 'f' },
                { "help", no_argument, NULL, 'h' },
                { 0 },
        };
        static char outbuf[1 << 18];
        struct json_state_memo memo = { .valid = false };
        struct hvt_reader *r;
        struct hvt_event ev;
        struct disasm *d;
        int c, json = 0, err, status;
        bool multi;

        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
                switch (c) {
                case 'f':
                        json = replay_parse_format(optarg);
                        if (json < 0) {
                                fprintf(stderr,
                                        "hvreplay dump: --format: '%s' is not text or jsonl\n",
                                        optarg);
                                return REPLAY_ERROR;
                        }
                        break;
                case 'h': usage(stdout); return REPLAY_OK;
                default: return replay_option_error("dump", c, argv);
                }
        }
        if (optind + 1 != argc) {
                fprintf(stderr, "hvreplay dump: give exactly one TRACE (see --help)\n");
                return REPLAY_ERROR;
        }
        if (disasm_open(&d)) {
                fprintf(stderr, "hvreplay: cannot open capstone\n");
                return REPLAY_ERROR;
        }
        r = replay_open(argv[optind]);
        if (!r) {
                disasm_close(d);
                return REPLAY_ERROR;
        }
        /*
         * stdio's default buffer is one page: a write system call per three
         * jsonl lines, a quarter of dump's time where system calls are dear.
         */
        setvbuf(stdout, outbuf, _IOFBF, sizeof(outbuf));
        multi = hvt_reader_vcpus(r) > 1;
        while ((err = hvt_reader_next(r, &ev)) == HVT_OK) {
                int vcpu = check_event_vcpu(r, &ev);

                if (json) {
                        json_event(stdout, d, &memo, &ev, vcpu);
                        continue;
                }
                /* A vCPU column, only in multi-vCPU traces: v1 output stays as it was. */
                if (multi && ev.type != HVT_REC_HEADER) {
                        if (vcpu >= 0)
                                printf("v%-3d ", vcpu);
                        else
                                printf("-    ");
                }
                text_event(stdout, d, argv[optind], &ev);
        }
        fflush(stdout);
        status = replay_end(argv[optind], r, err);
        hvt_reader_close(r);
        disasm_close(d);
        return status;
}
