// SPDX-License-Identifier: MIT
/*
 * hvreplay diff: align two traces of the same guest, recorded on different
 * backends or hosts, exit by exit and report where they diverge.
 *
 * Both traces are streamed.  Each compared exit is a "unit": the exit with
 * the console bytes and probe deliveries recorded after it, up to the next
 * compared exit (exits of ignored reasons are skipped, their trailing records
 * stay with the unit before).  Units are compared pairwise; a small ring per
 * side keeps the units before the current one (the context printed with a
 * divergence) and the ones looked ahead to resynchronise after it.
 * docs/diff.md documents every option and why its default is what it is.
 *
 * This file holds the options and the command; diff.h lists what the other
 * parts (diff_side.c, diff_fields.c, diff_align.c, diff_out.c) provide.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diff.h"

#define MAX_CONTEXT 1000

/* ---- options ------------------------------------------------------------------------ */

const char *const diff_ign_names[IGN_COUNT] = {
        "rax",       "rcx",          "rdx",          "rbx",      "rsp",       "rbp",
        "rsi",       "rdi",          "r8",           "r9",       "r10",       "r11",
        "r12",       "r13",          "r14",          "r15",      "rip",       "rflags",
        "rflags.rf", "rflags.af",    "seg.selector", "seg.base", "seg.limit", "seg.attr",
        "cr0",       "cr0.et",       "cr2",          "cr3",      "cr4",       "efer",
        "gdt",       "idt",          "intr",         "insn",     "io.data",   "mmio.data",
        "debug.dr",  "backend-data", "deliver",      "console",  "end",
};

#define DEFAULT_IGNORE_FIELDS                                                                    \
        (BIT(IGN_RFLAGS_RF) | BIT(IGN_CR0_ET) | BIT(IGN_INTR) | BIT(IGN_LIMIT) | BIT(IGN_ATTR) | \
         BIT(IGN_BACKEND_DATA))
#define DEFAULT_IGNORE_REASONS (BIT(HVT_EXIT_INTR) | BIT(HVT_EXIT_IRQ_WINDOW))

static void usage(FILE *f)
{
        fprintf(f,
                "Usage: hvreplay diff [OPTIONS] A B\n"
                "\n"
                "Align two traces of the same guest (same image and options, recorded on\n"
                "different backends or hosts) exit by exit and report the first divergence:\n"
                "exit reason, address, registers, port/MMIO data, deliveries the probe saw\n"
                "(vector, interrupted address, flags) and console output, with the exits just\n"
                "before it on both sides, disassembled.  What differs in the headers (backend,\n"
                "host, mode, memory size, entry, options) is stated first; traces whose\n"
                "initial memory images differ are not of the same guest (status 1).\n"
                "Timing is always ignored (exit times, guest time, wall time), and so are the\n"
                "backends' raw exit codes, exit numbers, and the recorder's injections and\n"
                "raises (the deliveries they cause are compared).  See docs/diff.md.\n"
                "\n"
                "Options:\n"
                "  --context N           exits shown before a divergence, on each side\n"
                "                        (default 3)\n"
                "  --all                 every divergence, not only the first: after one, the\n"
                "                        next %d exits of each side are aligned and the\n"
                "                        comparison goes on at the next pair of equal exits\n"
                "  --ignore-reason LIST  exit reasons left out of both sides, comma-separated\n"
                "                        (default intr,irq-window: signals, kicks and window\n"
                "                        exits come at backend-specific times); '' compares\n"
                "                        every exit; +LIST adds to the default\n"
                "  --io-rip MODE         instruction (default): port-I/O exits match by the\n"
                "                        address of their IN/OUT, found by decoding, whether\n"
                "                        RIP is at it or past it; RIP is not compared there,\n"
                "                        nor, when one side completed the instruction and the\n"
                "                        other not, the instruction bytes, an IN's AL/AX/EAX\n"
                "                        or a string instruction's RCX/RSI/RDI;\n"
                "                        raw: compare RIP as recorded\n"
                "  --ignore-field LIST   fields not compared, comma-separated (default\n"
                "                        rflags.rf,cr0.et,intr,seg.limit,seg.attr,backend-data);\n"
                "                        '' compares every field; +LIST adds to the default.\n"
                "                        Fields: rax rcx rdx rbx rsp rbp rsi rdi r8..r15 rip\n"
                "                        rflags rflags.rf rflags.af seg.selector seg.base\n"
                "                        seg.limit seg.attr cr0 cr0.et cr2 cr3 cr4 efer gdt\n"
                "                        idt intr insn io.data mmio.data debug.dr backend-data\n"
                "                        deliver console end\n"
                "  --json                one JSON document (default: text)\n"
                "  -h, --help            this text\n"
                "\n"
                "Multi-vCPU traces are compared vCPU by vCPU: each vCPU's exits are aligned\n"
                "with the same vCPU's in the other trace, under a \"vCPU N:\" line (text only).\n"
                "\n"
                "A VMM's trace (hvrec exec) against hvrec run's: memory is compared over the\n"
                "guest's image only (the VMM's firmware and other RAM are not the guest's),\n"
                "the VMM's exits before the guest's first (its firmware's) are left out, and\n"
                "so is the end status (the VMM's exit status, not the guest's).\n"
                "\n"
                "Exit status: 0 the traces are the same; 1 they diverge (or are not of the\n"
                "same guest); 2 bad usage or a trace that could not be read.\n",
                RESYNC_WINDOW);
}

static int lookup_reason(const char *s, size_t n)
{
        for (unsigned i = 0; i < HVT_EXIT_REASON_COUNT; i++) {
                const char *name = hvt_exit_reason_name(i);

                if (strlen(name) == n && !strncmp(name, s, n))
                        return (int)i;
        }
        return -1;
}

static int lookup_field(const char *s, size_t n)
{
        for (unsigned i = 0; i < IGN_COUNT; i++)
                if (strlen(diff_ign_names[i]) == n && !strncmp(diff_ign_names[i], s, n))
                        return (int)i;
        return -1;
}

/* "a,b,c", "" or "none", "+a,b" (added to dflt).  Returns 0 or -1 after a message. */
static int parse_list(const char *opt, const char *arg, uint64_t dflt,
                      int (*lookup)(const char *, size_t), const char *what, uint64_t *out)
{
        uint64_t set = 0;
        const char *p = arg;

        if (*p == '+') {
                set = dflt;
                p++;
        }
        if (!strcmp(p, "none"))
                p = "";
        while (*p) {
                size_t n = strcspn(p, ",");
                int v;

                if (n) {
                        v = lookup(p, n);
                        if (v < 0) {
                                fprintf(stderr,
                                        "hvreplay diff: %s: unknown %s '%.*s' (see --help)\n", opt,
                                        what, (int)n, p);
                                return -1;
                        }
                        set |= BIT(v);
                }
                p += n;
                if (*p == ',')
                        p++;
        }
        *out = set;
        return 0;
}

/* ---- the command -------------------------------------------------------------------- */

void diff_default_opts(struct diff_opts *o)
{
        memset(o, 0, sizeof(*o));
        o->context = 3;
        o->ignore_reasons = DEFAULT_IGNORE_REASONS;
        o->ignore_fields = DEFAULT_IGNORE_FIELDS;
        o->vcpu = -1;
}

static int parse_args(int argc, char **argv, struct diff_opts *o)
{
        static const struct option opts[] = {
                { "context", required_argument, NULL, 'c' },
                { "all", no_argument, NULL, 'a' },
                { "ignore-reason", required_argument, NULL, 'r' },
                { "io-rip", required_argument, NULL, 'i' },
                { "ignore-field", required_argument, NULL, 'f' },
                { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                { 0 },
        };
        int c;

        diff_default_opts(o);
        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
                switch (c) {
                case 'c': {
                        char *end;
                        unsigned long v = strtoul(optarg, &end, 10);

                        if (!*optarg || *end || optarg[0] == '-' || v > MAX_CONTEXT) {
                                fprintf(stderr,
                                        "hvreplay diff: --context: '%s' is not a number "
                                        "from 0 to %d\n",
                                        optarg, MAX_CONTEXT);
                                return -1;
                        }
                        o->context = (unsigned)v;
                        break;
                }
                case 'a': o->all = true; break;
                case 'r':
                        if (parse_list("--ignore-reason", optarg, DEFAULT_IGNORE_REASONS,
                                       lookup_reason, "exit reason", &o->ignore_reasons))
                                return -1;
                        break;
                case 'f':
                        if (parse_list("--ignore-field", optarg, DEFAULT_IGNORE_FIELDS,
                                       lookup_field, "field", &o->ignore_fields))
                                return -1;
                        break;
                case 'i':
                        if (!strcmp(optarg, "instruction")) {
                                o->io_raw = false;
                        } else if (!strcmp(optarg, "raw")) {
                                o->io_raw = true;
                        } else {
                                fprintf(stderr,
                                        "hvreplay diff: --io-rip: '%s' is not instruction "
                                        "or raw\n",
                                        optarg);
                                return -1;
                        }
                        break;
                case 'j': o->json = true; break;
                case 'h': usage(stdout); return 1;
                default: replay_option_error("diff", c, argv); return -1;
                }
        }
        if (optind + 2 != argc) {
                fprintf(stderr, "hvreplay diff: give exactly two traces A B (see --help)\n");
                return -1;
        }
        return 0;
}

int diff_traces(const struct diff_opts *o, const char *a, const char *b)
{
        struct diff *D;
        struct hdiffs h = { 0 };
        bool img_diff = false, same, complete;
        uint64_t gpa = 0;
        int status;

        D = calloc(1, sizeof(*D));
        if (!D) {
                fprintf(stderr, "hvreplay diff: out of memory\n");
                return REPLAY_ERROR;
        }
        D->o = *o;
        if (disasm_open(&D->dis)) {
                fprintf(stderr, "hvreplay: cannot open capstone\n");
                free(D);
                return REPLAY_ERROR;
        }
        D->c.o = &D->o;
        D->c.A = &D->A;
        D->c.B = &D->B;
        if (diff_side_open(&D->A, a, "a", D->dis, &D->o) ||
            diff_side_open(&D->B, b, "b", D->dis, &D->o)) {
                status = REPLAY_ERROR;
                goto out;
        }
        /* A trace that stops inside its memory image cannot be compared at all. */
        if (!D->A.have_look && diff_side_failed(&D->A)) {
                status = replay_end(D->A.path, D->A.r, D->A.err);
                goto out;
        }
        if (!D->B.have_look && diff_side_failed(&D->B)) {
                status = replay_end(D->B.path, D->B.r, D->B.err);
                goto out;
        }
        diff_compare_headers(D->A.hdr, D->B.hdr, &h);
        if (D->A.vmm != D->B.vmm) {
                D->vmm = D->A.vmm ? &D->A : &D->B;
                D->guest = D->A.vmm ? &D->B : &D->A;
        }
        img_diff = diff_image_differs(&D->A, &D->B, D->guest, &gpa);
        if (!img_diff && D->vmm)
                diff_side_skip_firmware(D->vmm, D->guest, &D->o);
        if (!D->o.json)
                diff_text_preamble(D, &h, img_diff, gpa);
        if (!img_diff)
                diff_walk(D);
        diff_side_drain(&D->A, &D->o);
        diff_side_drain(&D->B, &D->o);
        complete = !diff_side_failed(&D->A) && !diff_side_failed(&D->B);
        same = !img_diff && !D->items;
        if (D->o.json) {
                diff_print_json(D, &h, img_diff, gpa, same && complete, complete);
        } else if (img_diff) {
                printf("not the same guest: the initial memory images differ\n");
        } else if (same) {
                printf("%s: %" PRIu64 " exits compared%s (a: %" PRIu64 " exits, %" PRIu64
                       " left out%s; b: %" PRIu64 " exits, %" PRIu64 " left out%s)\n",
                       complete ? "same" : "same so far", D->compared,
                       complete ? ", no divergence" : "", D->A.exits, D->A.skipped + D->A.firmware,
                       D->A.firmware ? " with the firmware's" : "", D->B.exits,
                       D->B.skipped + D->B.firmware, D->B.firmware ? " with the firmware's" : "");
        } else {
                if (D->first_have_a && D->first_have_b)
                        printf("diverged: first at a#%" PRIu64 " b#%" PRIu64, D->first_a,
                               D->first_b);
                else if (D->first_have_a || D->first_have_b)
                        printf("diverged: first at %s#%" PRIu64 " (only in %s)",
                               D->first_have_a ? "a" : "b",
                               D->first_have_a ? D->first_a : D->first_b,
                               D->first_have_a ? "a" : "b");
                else
                        printf("diverged: first at the end of the run");
                printf("; %" PRIu64 " differing field%s", D->nfields, D->nfields == 1 ? "" : "s");
                if (D->o.all)
                        printf(" in %" PRIu64 " place%s\n", D->items, D->items == 1 ? "" : "s");
                else
                        printf(" (the first divergence only; --all for every one)\n");
        }
        fflush(stdout);
        if (!complete) {
                status = diff_side_failed(&D->A) ? replay_end(D->A.path, D->A.r, D->A.err)
                                                 : replay_end(D->B.path, D->B.r, D->B.err);
                goto out;
        }
        status = same ? REPLAY_OK : REPLAY_FINDINGS;
out:
        diff_side_close(&D->A);
        diff_side_close(&D->B);
        free(D->jd);
        disasm_close(D->dis);
        free(D);
        return status;
}

/* The vCPUs a trace declares; 0 if it cannot be opened (diff_traces then says why). */
static uint32_t vcpus_of(const char *path)
{
        struct hvt_reader *r;
        uint32_t n = 0;

        if (hvt_reader_open(&r, path) == 0)
                n = hvt_reader_vcpus(r);
        hvt_reader_close(r);
        return n;
}

/*
 * Multi-vCPU traces: each vCPU's exits are aligned with the same vCPU's on
 * the other side, one vCPU after the other; the worst status wins.
 */
static int diff_per_vcpu(struct diff_opts *o, const char *a, const char *b, uint32_t na,
                         uint32_t nb)
{
        uint32_t n = na > nb ? na : nb;
        int status = REPLAY_OK;

        if (o->json) {
                fprintf(stderr, "hvreplay diff: --json: multi-vCPU traces are compared as text "
                                "only\n");
                return REPLAY_ERROR;
        }
        if (na != nb)
                printf("a has %u vCPUs, b has %u\n", na, nb);
        for (uint32_t v = 0; v < n; v++) {
                int st;

                printf("%svCPU %u:\n", v ? "\n" : "", v);
                fflush(stdout);
                o->vcpu = (int)v;
                st = diff_traces(o, a, b);
                if (st == REPLAY_ERROR)
                        return st;
                if (st == REPLAY_FINDINGS)
                        status = st;
        }
        return status;
}

int cmd_diff(int argc, char **argv)
{
        struct diff_opts o;
        int st = parse_args(argc, argv, &o);
        const char *a, *b;
        uint32_t na, nb;

        if (st)
                return st > 0 ? REPLAY_OK : REPLAY_ERROR;
        a = argv[optind];
        b = argv[optind + 1];
        na = vcpus_of(a);
        nb = vcpus_of(b);
        if (na > 1 || nb > 1)
                return diff_per_vcpu(&o, a, b, na ? na : 1, nb ? nb : 1);
        return diff_traces(&o, a, b);
}
