/* SPDX-License-Identifier: MIT */
/* The guest ABI (docs/guest-abi.md): what hvrec does with the guest's port I/O (abi.c). */
#ifndef HVREC_ABI_H
#define HVREC_ABI_H

struct recorder;

/* Fill what an IN or an MMIO read of the exit being recorded returns (all-ones). */
void abi_fill_in(struct recorder *rec);

/* Act on the port I/O exit just recorded: console, exit, interrupt request, delivery probe. */
void abi_handle_io(struct recorder *rec);

/*
 * Write out the console text abi_handle_io buffered (it keeps whole lines
 * together).  A write error stops the console output for the rest of the
 * run and is kept in rec->console.err: the trace has every byte anyway,
 * so it never ends the recording.
 */
void abi_console_flush(struct recorder *rec);

#endif
