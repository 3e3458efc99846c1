/* SPDX-License-Identifier: MIT */
/*
 * A small two-vCPU trace (format version 2) written with libhvtrace, for
 * the suites of the commands that show vCPUs apart (export, report), and
 * what it holds per vCPU, read back with the reader.
 */
#ifndef HVTEST_TWO_VCPU_H
#define HVTEST_TWO_VCPU_H

#include <stddef.h>
#include <stdint.h>

#define HV_TWO_VCPUS 2

/*
 * Write the trace at path: vCPU 0 and vCPU 1 take turns in one real-mode
 * guest (cli; sti; inc ax; jmp $ at 0x1000, vector 0x30's handler the
 * delivery probe), each interrupted twice.  vCPU 0 is kicked right after
 * its STI and its interrupt delivered inside the STI's shadow: an
 * sti-shadow violation, on vCPU 0.  vCPU 1's first delivery comes in its
 * first run, which the trace does not show from its start: undetermined,
 * on vCPU 1; its second, in its jmp $, is clean.  vCPU 1's times are half
 * a step behind vCPU 0's, so the two streams' times interleave and go back
 * and forth in trace order.
 */
void hv_write_two_vcpu_trace(const char *path);

/* What one vCPU's records hold, read back from a trace. */
struct hv_vcpu_counts {
        size_t exits, injects, delivers, raises;
        uint64_t seqs[64], times[64]; /* its exits' numbers and times, in trace order */
};

/*
 * Read the trace at path into per-vCPU counts (n of them); fails the test
 * if it does not read whole, declares another number of vCPUs or has more
 * than 64 exits on a vCPU.
 */
void hv_vcpu_counts(const char *path, struct hv_vcpu_counts *c, size_t n);

#endif
