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

/* Hot path of the writer: fields are 8 or 16 bytes, compared as words. */
static inline int hvt_field_differs_fast(const struct hvt_vcpu_state *a,
                                         const struct hvt_vcpu_state *b, unsigned f)
{
        const uint64_t *x = hvt_field_cptr(a, f), *y = hvt_field_cptr(b, f);

        if (hvt_field_slots[f].size == 8)
                return x[0] != y[0];
        /* Compared, not returned: an int would drop the high half of the XOR. */
        return ((x[0] ^ y[0]) | (x[1] ^ y[1])) != 0;
}

#endif
