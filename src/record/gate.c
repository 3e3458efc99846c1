// SPDX-License-Identifier: MIT
#include <hvtrace/hvtrace.h>

#include "gate.h"

bool gate_read(const struct gview *gv, unsigned v, struct x86_gate *g)
{
        const struct hvt_vcpu_state *st = gv->st;
        unsigned mode = hvt_state_mode(st), size = x86_gate_size(mode);
        uint64_t la;
        uint8_t e[16];

        if (!x86_gate_addr(mode, st->idt.base, st->idt.limit, v, &la) ||
            gview_read(gv, la, e, size) != size)
                return false;
        return x86_gate_decode(mode, e, g);
}

bool gate_handler(const struct gview *gv, unsigned v, uint64_t *handler)
{
        const struct hvt_vcpu_state *st = gv->st;
        struct x86_gate g;

        if (!gate_read(gv, v, &g))
                return false;
        switch (hvt_state_mode(st)) {
        case HVT_MODE_REAL: *handler = ((uint64_t)g.selector << 4) + g.offset; break;
        case HVT_MODE_LONG: *handler = g.offset; break;
        default:
                /* The handler runs in the gate's CS; at the probe that is the current CS. */
                *handler = (st->seg[HVT_CS].base + g.offset) & 0xffffffffull;
                break;
        }
        return true;
}
