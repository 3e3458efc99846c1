/* SPDX-License-Identifier: MIT */
/* The run loop (loop.c). */
#ifndef HVREC_LOOP_H
#define HVREC_LOOP_H

struct recorder;

/*
 * Forget the writes the backend has seen so far (they are in the MEMORY
 * records written after this).  Returns 0 or -errno.
 */
int rec_drop_writes(struct recorder *rec);

/* Run until the guest or a limit ends the run (rec->done, the reason in rec->msg). */
void rec_loop(struct recorder *rec);

#endif
