/* SPDX-License-Identifier: MIT */
/* Shared pieces of the hvreplay commands. */
#ifndef HVREPLAY_H
#define HVREPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <hvtrace/hvtrace.h>

#include "../disasm/disasm.h"

/* Exit statuses shared by every command. */
#define REPLAY_OK       0
#define REPLAY_FINDINGS 1 /* check: violations; diff: divergence */
#define REPLAY_ERROR    2 /* bad usage or a trace that could not be read */

/* Open a trace; on failure print "hvreplay: PATH: reason" and return NULL. */
struct hvt_reader *replay_open(const char *path);

/*
 * After hvt_reader_next returned err (not HVT_OK): print the reason
 * unless the trace simply ended.  Returns REPLAY_OK or REPLAY_ERROR.
 */
int replay_end(const char *path, struct hvt_reader *r, int err);

/* "0000:1005 real" style address of a state: CS:IP in real mode, else the linear RIP. */
void replay_fmt_pc(const struct hvt_vcpu_state *st, char *buf, size_t len);

/* Decode the instruction bytes of an exit (mode from its state). */
int replay_decode_exit(struct disasm *d, const struct hvt_exit *ex, struct disasm_insn *out);

/* "if=1 shadow=sti ready=0" from HVT_INTR_* bits. */
void replay_fmt_intr(uint64_t intr, char *buf, size_t len);

/* "ax=0030 bx=... fl=0246": the general registers at the width of the mode. */
void replay_text_regs(const struct hvt_vcpu_state *st, char *buf, size_t len);

/* "  out port 0xe9 size 1 data 0x68 'h'": an exit's own data, as dump prints it. */
void replay_text_exit_data(FILE *f, const struct hvt_exit *ex);

/* The value of a port-I/O exit's first element. */
uint64_t replay_io_value(const struct hvt_exit *ex);

/*
 * Write n bytes of untrusted text (anything a trace supplies: header
 * strings, argv, console bytes, end messages; and messages quoting them) to
 * a terminal: printable ASCII as it is, a newline as \n, every other byte,
 * the backslash and `quote` (0: none) as \xNN.  So no control sequence
 * reaches the terminal, the text stays on its line, and it reads back
 * unambiguously.  Every human-readable output of hvreplay goes through it.
 */
void replay_put_escaped(FILE *f, const void *s, size_t n, char quote);

/* replay_put_escaped of a NUL-terminated string, not quoted. */
void replay_put_str(FILE *f, const char *s);

/* "hvreplay: PATH: MESSAGE" on stderr, both escaped: the message may quote a trace. */
void replay_error(const char *path, const char *msg);

/* The instruction at an exit as text, or why there is none. */
const char *replay_insn_text(struct disasm *d, const struct hvt_exit *ex, struct disasm_insn *in);

/*
 * After getopt_long (optstring starting with "+:") returned c for an
 * option it could not take: say which, on one line.  Returns REPLAY_ERROR.
 */
int replay_option_error(const char *cmd, int c, char **argv);

/* Parse --format: "text" or "jsonl" (also "json").  Returns 0 text, 1 json, -1 bad. */
int replay_parse_format(const char *s);

/* Each command: parse its own options, return an exit status. */
int cmd_dump(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_reduce(int argc, char **argv);

#endif
