/* SPDX-License-Identifier: MIT */
/*
 * The delivery probe (docs/guest-abi.md): an OUT to port 0xE2 as the first
 * instruction of an interrupt handler.  At its exit the interrupt frame on
 * the handler's stack says where the interrupt landed.  hvrec's guest ABI
 * (abi.c) and hvrec exec's preload library both turn a probe's exit into a
 * DELIVER record with probe_deliver.
 */
#ifndef HVREC_PROBE_H
#define HVREC_PROBE_H

#include <stdbool.h>
#include <stdint.h>

#include <hvtrace/hvtrace.h>

#include "../disasm/disasm.h"
#include "gview.h"

/* The probe's port (docs/guest-abi.md). */
#define PROBE_PORT 0xE2

/*
 * Take the oldest outstanding injection whose vector match(mctx, vector)
 * accepts (any, when match is NULL) as the one delivered: the caller stops
 * counting it outstanding.  Returns its vector and sets *nmi for an NMI,
 * or returns -1 when there is none.
 */
typedef int probe_take_fn(void *ctx, bool (*match)(void *mctx, uint8_t v), void *mctx, bool *nmi);

/*
 * The delivery a probe's port-I/O exit (gv: the state at the exit, access
 * size io_size, exit number seq) reports, into *d: the handler, the vector
 * (from the interrupt table when one entry points at the handler, else
 * the injection take() gives), and the interrupted CS:IP, FLAGS and stack
 * from the frame.  The probe instruction is found at RIP or just before it
 * (backends leave RIP at or past an OUT), decoded with dis.  A frame that
 * cannot be read leaves IP, FLAGS and SP 0 and sets
 * HVT_DELIVER_CS_BASE_UNKNOWN.
 */
void probe_deliver(const struct gview *gv, struct disasm *dis, unsigned io_size, uint64_t seq,
                   probe_take_fn *take, void *take_ctx, struct hvt_disk_deliver *d);

/* Whether the instruction at linear addr is the probe: OUT imm8 to PROBE_PORT, as the checker reads
 * it. */
bool probe_at(const struct gview *gv, struct disasm *dis, uint64_t addr);

#endif
