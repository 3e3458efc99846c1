/* SPDX-License-Identifier: MIT */
/* hvrec exec (exec.c): record an unmodified KVM VMM through the preload library. */
#ifndef HVTRACE_RECORD_EXEC_H
#define HVTRACE_RECORD_EXEC_H

/*
 * Run `hvrec exec` with argv[0] "exec": parse its options, run the VMM,
 * end the trace.  Prints its own errors; returns hvrec's exit status (the
 * VMM's, or 126, 127, 202 for its own errors).
 */
int cmd_exec(int argc, char **argv);

#endif
