/* SPDX-License-Identifier: MIT */
/* CPU mode setup: the registers (and, later, tables) a guest starts with. */
#ifndef HVREC_MODE_H
#define HVREC_MODE_H

#include <stddef.h>
#include <stdint.h>

#include "../backends/backend.h"

/*
 * Put the vCPU in `mode` (enum trace_mode) at entry with the stack below
 * load_addr, writing any tables the mode needs into guest memory.  Returns
 * 0 or -errno with a reason in why.
 */
int mode_setup(struct backend *b, unsigned mode, uint64_t entry, uint64_t load_addr, char *why,
               size_t len);

#endif
