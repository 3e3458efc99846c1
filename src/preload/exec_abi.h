/* SPDX-License-Identifier: MIT */
/*
 * What `hvrec exec` and its preload library (libhvtpreload.so) agree on:
 * three environment variables and a shared status page.  hvrec owns the
 * trace file; the library, loaded into the VMM, writes the trace's records
 * to the descriptor it inherits, and hvrec ends the trace after the VMM has
 * gone, whatever way it went.
 */
#ifndef HVTRACE_PRELOAD_EXEC_ABI_H
#define HVTRACE_PRELOAD_EXEC_ABI_H

#include <stdint.h>

/* The descriptor of the trace, open for writing. */
#define HVT_EXEC_ENV_TRACE_FD "HVTRACE_EXEC_TRACE_FD"
/* The descriptor of the status page (a memfd of HVT_EXEC_STATUS_SIZE bytes). */
#define HVT_EXEC_ENV_STATUS_FD "HVTRACE_EXEC_STATUS_FD"
/*
 * The pid of the process that records: the one hvrec executed.  The VMM's
 * own children inherit LD_PRELOAD; they must not write into the same file.
 */
#define HVT_EXEC_ENV_PID "HVTRACE_EXEC_PID"

/*
 * The backend name in the header of every trace hvrec exec writes, the
 * library's or hvrec's own (a VMM that never ran a vCPU): how hvreplay
 * diff tells a VMM's trace, firmware and all, from hvrec run's.
 */
#define HVT_EXEC_BACKEND "exec"

#define HVT_EXEC_STATUS_SIZE 4096u
#define HVT_EXEC_MAGIC       0x63657868u /* "hxec" */

/*
 * The status page, MAP_SHARED between hvrec and the VMM.  The library
 * updates it under its writer's lock, after each record it counts; hvrec
 * reads it after the VMM has exited, so no further synchronisation is needed.
 */
struct hvt_exec_status {
        uint32_t magic;   /* HVT_EXEC_MAGIC once the library has loaded */
        uint32_t started; /* 1: the library wrote the preamble and the header */
        uint32_t failed;  /* 1: recording stopped on an error (said on stderr) */
        uint32_t vcpus;   /* vCPUs the trace holds */
        uint64_t exits;   /* exit records written */
        uint64_t last_rip;
        uint64_t t0_ns; /* CLOCK_MONOTONIC when the header was written */
};

_Static_assert(sizeof(struct hvt_exec_status) <= HVT_EXEC_STATUS_SIZE, "status fits its page");

#endif
