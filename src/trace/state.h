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

/* Hot path of the writer: fields are 8 or 16 bytes, compared as words. */
static inline int trace_field_differs_fast(const struct trace_vcpu_state *a,
                                           const struct trace_vcpu_state *b, unsigned f)
{
        const uint64_t *x = trace_field_cptr(a, f), *y = trace_field_cptr(b, f);

        if (trace_field_slots[f].size == 8)
                return x[0] != y[0];
        /* Compared, not returned: an int would drop the high half of the XOR. */
        return ((x[0] ^ y[0]) | (x[1] ^ y[1])) != 0;
}

#endif
