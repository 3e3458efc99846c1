/* SPDX-License-Identifier: MIT */
/*
 * The guest's interrupt table as the vCPU state of a gview sees it
 * (gate.c): the IVT in real mode, the IDT otherwise.  The delivery probe
 * (probe.c), the injection records (irq.c) and hvrec exec's preload
 * library need it.
 */
#ifndef HVREC_GATE_H
#define HVREC_GATE_H

#include <stdbool.h>
#include <stdint.h>

#include "../arch/x86.h"
#include "gview.h"

/* Vector v's entry of the interrupt table into *g: false unless it names a handler. */
bool gate_read(const struct gview *gv, unsigned v, struct x86_gate *g);

/*
 * The handler the interrupt table gives for vector v, as a linear address.
 * False if the entry is outside the table, not present or unreadable.
 */
bool gate_handler(const struct gview *gv, unsigned v, uint64_t *handler);

#endif
