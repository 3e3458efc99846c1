/* SPDX-License-Identifier: MIT */
/*
 * What the guest looks like to code that reads its tables and stacks at an
 * exit (gate.c, probe.c): the vCPU's state, and its memory by linear
 * address.  hvrec reads memory through its backend's RAM, hvrec exec's
 * preload library through the VMM's memory slots; both give a gview.
 */
#ifndef HVREC_GVIEW_H
#define HVREC_GVIEW_H

#include <stddef.h>
#include <stdint.h>

#include <hvtrace/hvtrace.h>

struct gview {
        const struct hvt_vcpu_state *st;
        /* Up to len bytes at linear la into buf, stopping at the first unreadable byte. */
        size_t (*read)(const void *ctx, uint64_t la, void *buf, size_t len);
        const void *ctx;
};

/* Read up to len bytes at linear la; returns how many were read. */
static inline size_t gview_read(const struct gview *g, uint64_t la, void *buf, size_t len)
{
        return g->read(g->ctx, la, buf, len);
}

#endif
