// SPDX-License-Identifier: MIT
/* The field table that drives delta encoding (writer) and decoding (reader). */
#include <string.h>

#include "state.h"

_Static_assert(sizeof(struct trace_disk_seg) == 16 && sizeof(struct trace_disk_dtable) == 16,
               "trace_field_differs_fast compares fields as one or two words");

#define SLOT(member)                                                   \
        {                                                              \
                offsetof(struct trace_vcpu_state, member),             \
                        sizeof(((struct trace_vcpu_state *)0)->member) \
        }

const struct trace_field_slot trace_field_slots[TRACE_F_COUNT] = {
        [TRACE_F_RAX] = SLOT(gpr[0]),       [TRACE_F_RCX] = SLOT(gpr[1]),
        [TRACE_F_RDX] = SLOT(gpr[2]),       [TRACE_F_RBX] = SLOT(gpr[3]),
        [TRACE_F_RSP] = SLOT(gpr[4]),       [TRACE_F_RBP] = SLOT(gpr[5]),
        [TRACE_F_RSI] = SLOT(gpr[6]),       [TRACE_F_RDI] = SLOT(gpr[7]),
        [TRACE_F_R8] = SLOT(gpr[8]),        [TRACE_F_R9] = SLOT(gpr[9]),
        [TRACE_F_R10] = SLOT(gpr[10]),      [TRACE_F_R11] = SLOT(gpr[11]),
        [TRACE_F_R12] = SLOT(gpr[12]),      [TRACE_F_R13] = SLOT(gpr[13]),
        [TRACE_F_R14] = SLOT(gpr[14]),      [TRACE_F_R15] = SLOT(gpr[15]),
        [TRACE_F_RIP] = SLOT(rip),          [TRACE_F_RFLAGS] = SLOT(rflags),
        [TRACE_F_ES] = SLOT(seg[TRACE_ES]), [TRACE_F_CS] = SLOT(seg[TRACE_CS]),
        [TRACE_F_SS] = SLOT(seg[TRACE_SS]), [TRACE_F_DS] = SLOT(seg[TRACE_DS]),
        [TRACE_F_FS] = SLOT(seg[TRACE_FS]), [TRACE_F_GS] = SLOT(seg[TRACE_GS]),
        [TRACE_F_CR0] = SLOT(cr0),          [TRACE_F_CR2] = SLOT(cr2),
        [TRACE_F_CR3] = SLOT(cr3),          [TRACE_F_CR4] = SLOT(cr4),
        [TRACE_F_EFER] = SLOT(efer),        [TRACE_F_GDT] = SLOT(gdt),
        [TRACE_F_IDT] = SLOT(idt),          [TRACE_F_INTR] = SLOT(intr),
};
_Static_assert(TRACE_F_COUNT == 32, "state_mask is 32 bits wide");

int trace_state_field_differs(const struct trace_vcpu_state *a, const struct trace_vcpu_state *b,
                              unsigned f)
{
        if (f >= TRACE_F_COUNT)
                return 0;
        return memcmp(trace_field_cptr(a, f), trace_field_cptr(b, f), trace_field_slots[f].size) !=
               0;
}

size_t trace_field_size(unsigned f)
{
        return f < TRACE_F_COUNT ? trace_field_slots[f].size : 0;
}
