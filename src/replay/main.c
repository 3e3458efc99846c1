// SPDX-License-Identifier: MIT
/*
 * hvreplay: offline analysis of hvtrace traces.  One command per file; this
 * file holds the command table and the helpers every command shares.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "replay.h"

struct command {
        const char *name;
        const char *summary;
        int (*run)(int argc, char **argv);
};

static const struct command commands[] = {
        { "dump", "print every event of a trace, one per line (text or JSON lines)", cmd_dump },
        { "stats", "exit reasons with counts, shares and times, like perf kvm stat", cmd_stats },
        { "check", "find interrupts delivered inside STI / MOV SS shadows", cmd_check },
        { "diff", "align two traces of the same guest and report where they diverge", cmd_diff },
        { "export", "write a trace as a Perfetto / Chrome JSON timeline", cmd_export },
        { "report", "write one self-contained HTML page on traces and their violations",
          cmd_report },
        { "run", "re-execute a trace on a backend and compare the replay with it", cmd_run },
        { "reduce", "the shortest replayable trace that still shows a violation", cmd_reduce },
};

static void usage(FILE *f)
{
        fprintf(f, "Usage: hvreplay COMMAND [OPTIONS] TRACE...\n"
                   "\n"
                   "Analyse hvtrace traces offline, or replay them on a backend.\n"
                   "\n"
                   "Commands:\n");
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
        fprintf(f, "\n"
                   "Options:\n"
                   "  -h, --help   this text (hvreplay COMMAND --help for a command's options)\n"
                   "  --version    print the version\n"
                   "\n"
                   "Exit status: 0 success; 1 findings (check, report: violations; diff, run:\n"
                   "a divergence); 2 bad usage, a trace that could not be read completely, or\n"
                   "(run, reduce) a backend that cannot replay it.\n");
}

void replay_error(const char *path, const char *msg)
{
        fputs("hvreplay: ", stderr);
        replay_put_str(stderr, path);
        fputs(": ", stderr);
        replay_put_str(stderr, msg);
        fputc('\n', stderr);
}

struct hvt_reader *replay_open(const char *path)
{
        struct hvt_reader *r;
        int err = hvt_reader_open(&r, path);

        if (err) {
                replay_error(path, hvt_reader_message(r));
                hvt_reader_close(r);
                return NULL;
        }
        return r;
}

int replay_end(const char *path, struct hvt_reader *r, int err)
{
        if (err == HVT_END_OF_TRACE)
                return REPLAY_OK;
        replay_error(path, hvt_reader_message(r));
        return REPLAY_ERROR;
}

void replay_fmt_pc(const struct hvt_vcpu_state *st, char *buf, size_t len)
{
        switch (hvt_state_code_bits(st)) {
        case 64: snprintf(buf, len, "%016" PRIx64, st->rip); break;
        case 32: snprintf(buf, len, "%08" PRIx64, hvt_state_pc(st)); break;
        default:
                if (hvt_state_mode(st) == HVT_MODE_REAL)
                        snprintf(buf, len, "%04x:%04" PRIx64, st->seg[HVT_CS].selector,
                                 st->rip & 0xffff);
                else
                        snprintf(buf, len, "%08" PRIx64, hvt_state_pc(st));
        }
}

int replay_decode_exit(struct disasm *d, const struct hvt_exit *ex, struct disasm_insn *out)
{
        unsigned bits = hvt_state_code_bits(&ex->st);
        uint64_t addr = bits == 16 ? (ex->st.rip & 0xffff) : ex->st.rip;

        return disasm_decode(d, bits, ex->insn, ex->insn_len, addr, out);
}

void replay_fmt_intr(uint64_t intr, char *buf, size_t len)
{
        snprintf(buf, len, "if=%s shadow=%s ready=%s",
                 (intr & HVT_INTR_VALID_IF) ? ((intr & HVT_INTR_IF) ? "1" : "0") : "?",
                 (intr & HVT_INTR_VALID_SHADOW) ? hvt_shadow_name(intr) : "?",
                 (intr & HVT_INTR_VALID_READY) ? ((intr & HVT_INTR_READY) ? "1" : "0") : "?");
}

int replay_option_error(const char *cmd, int c, char **argv)
{
        if (c == ':')
                fprintf(stderr, "hvreplay %s: %s needs a value\n", cmd, argv[optind - 1]);
        else
                fprintf(stderr, "hvreplay %s: unknown option '%s'\n", cmd, argv[optind - 1]);
        return REPLAY_ERROR;
}

int replay_parse_format(const char *s)
{
        if (!strcmp(s, "text"))
                return 0;
        if (!strcmp(s, "jsonl") || !strcmp(s, "json"))
                return 1;
        return -1;
}

int main(int argc, char **argv)
{
        if (argc < 2) {
                usage(stderr);
                return REPLAY_ERROR;
        }
        if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
                usage(stdout);
                return REPLAY_OK;
        }
        if (!strcmp(argv[1], "--version")) {
                printf("hvreplay %s (trace format %d)\n", HVT_VERSION_STRING, HVT_FORMAT_VERSION);
                return REPLAY_OK;
        }
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                if (!strcmp(argv[1], commands[i].name))
                        return commands[i].run(argc - 1, argv + 1);
        fprintf(stderr, "hvreplay: unknown command '%s' (try hvreplay --help)\n", argv[1]);
        return REPLAY_ERROR;
}
