/* SPDX-License-Identifier: MIT */
/* Where each delta-encoded state field lives in struct hvt_vcpu_state. */
#ifndef HVTRACE_TRACE_STATE_H
#define HVTRACE_TRACE_STATE_H

#include <stddef.h>
#include <stdint.h>

#include <hvtrace/hvtrace.h>

struct hvt_field_slot {
        uint16_t offset; /* into struct hvt_vcpu_state */
        uint16_t size;   /* bytes, same on disk */
};

extern const struct hvt_field_slot hvt_field_slots[HVT_F_COUNT];

static inline void *hvt_field_ptr(struct hvt_vcpu_state *st, unsigned f)
{
        return (uint8_t *)st + hvt_field_slots[f].offset;
}

static inline const void *hvt_field_cptr(const struct hvt_vcpu_state *st, unsigned f)
{
        return (const uint8_t *)st + hvt_field_slots[f].offset;
}

/* The state_mask of b against a: bit N set when field N differs. */
uint32_t hvt_state_changed(const struct hvt_vcpu_state *a, const struct hvt_vcpu_state *b);

#endif
