/* SPDX-License-Identifier: MIT */
/*
 * CPU mode setup: the registers and tables a guest starts with.
 *
 * Protected and long mode need a GDT, and long mode page tables; hvrec
 * builds them in a region at the top of guest RAM that it reserves for
 * itself (docs/guest-abi.md):
 *
 *   tables      = mem_size - mode_tables_size(mem_size)
 *   tables+0x0000  GDT: 0x08 flat 32-bit code, 0x10 flat data,
 *                       0x18 64-bit code, 0x20 flat 16-bit code
 *   tables+0x1000  PML4
 *   tables+0x2000  PDPT
 *   tables+0x3000  page directories of 2 MiB pages, identity-mapping RAM
 *
 * The initial stack pointer of those modes is `tables`: the stack grows
 * down right below the region.
 */
#ifndef HVREC_MODE_H
#define HVREC_MODE_H

#include <stddef.h>
#include <stdint.h>

#include "../backends/backend.h"

#define MODE_SEL_CODE32 0x08
#define MODE_SEL_DATA   0x10
#define MODE_SEL_CODE64 0x18
#define MODE_SEL_CODE16 0x20

/* Bytes hvrec reserves at the top of RAM in protected and long mode. */
uint64_t mode_tables_size(uint64_t mem_size);

/* Start of that region (mem_size itself in real mode: nothing reserved). */
uint64_t mode_tables_base(unsigned mode, uint64_t mem_size);

/* Parse "real", "protected", "long": enum hvt_mode, or 0 if none. */
unsigned mode_parse(const char *name);

/*
 * Put the vCPU in `mode` (enum hvt_mode) at entry, writing the tables the
 * mode needs into guest memory.  The stack starts below load_addr in real
 * mode and below the tables otherwise.  Returns 0 or -errno, why in `why`.
 */
int mode_setup(struct backend *b, unsigned mode, uint64_t entry, uint64_t load_addr, char *why,
               size_t len);

#endif
