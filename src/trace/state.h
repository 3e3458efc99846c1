/* SPDX-License-Identifier: MIT */
/* Where each delta-encoded state field lives in struct trace_vcpu_state. */
#ifndef HVTRACE_TRACE_STATE_H
#define HVTRACE_TRACE_STATE_H

#include <stddef.h>
#include <stdint.h>

#include <hvtrace/trace.h>

struct trace_field_slot {
        uint16_t offset; /* into struct trace_vcpu_state */
        uint16_t size;   /* bytes, same on disk */
};

extern const struct trace_field_slot trace_field_slots[TRACE_F_COUNT];

static inline void *trace_field_ptr(struct trace_vcpu_state *st, unsigned f)
{
        return (uint8_t *)st + trace_field_slots[f].offset;
}

static inline const void *trace_field_cptr(const struct trace_vcpu_state *st, unsigned f)
{
        return (const uint8_t *)st + trace_field_slots[f].offset;
}

#endif
