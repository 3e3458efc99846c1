// SPDX-License-Identifier: MIT
/* The field table that drives delta encoding (writer) and decoding (reader). */
#include <string.h>

#include "state.h"

_Static_assert(sizeof(struct hvt_disk_seg) == 16 && sizeof(struct hvt_disk_dtable) == 16,
               "hvt_field_differs_fast compares fields as one or two words");

#define SLOT(member)                                                 \
        {                                                            \
                offsetof(struct hvt_vcpu_state, member),             \
                        sizeof(((struct hvt_vcpu_state *)0)->member) \
        }

const struct hvt_field_slot hvt_field_slots[HVT_F_COUNT] = {
        [HVT_F_RAX] = SLOT(gpr[0]),     [HVT_F_RCX] = SLOT(gpr[1]),
        [HVT_F_RDX] = SLOT(gpr[2]),     [HVT_F_RBX] = SLOT(gpr[3]),
        [HVT_F_RSP] = SLOT(gpr[4]),     [HVT_F_RBP] = SLOT(gpr[5]),
        [HVT_F_RSI] = SLOT(gpr[6]),     [HVT_F_RDI] = SLOT(gpr[7]),
        [HVT_F_R8] = SLOT(gpr[8]),      [HVT_F_R9] = SLOT(gpr[9]),
        [HVT_F_R10] = SLOT(gpr[10]),    [HVT_F_R11] = SLOT(gpr[11]),
        [HVT_F_R12] = SLOT(gpr[12]),    [HVT_F_R13] = SLOT(gpr[13]),
        [HVT_F_R14] = SLOT(gpr[14]),    [HVT_F_R15] = SLOT(gpr[15]),
        [HVT_F_RIP] = SLOT(rip),        [HVT_F_RFLAGS] = SLOT(rflags),
        [HVT_F_ES] = SLOT(seg[HVT_ES]), [HVT_F_CS] = SLOT(seg[HVT_CS]),
        [HVT_F_SS] = SLOT(seg[HVT_SS]), [HVT_F_DS] = SLOT(seg[HVT_DS]),
        [HVT_F_FS] = SLOT(seg[HVT_FS]), [HVT_F_GS] = SLOT(seg[HVT_GS]),
        [HVT_F_CR0] = SLOT(cr0),        [HVT_F_CR2] = SLOT(cr2),
        [HVT_F_CR3] = SLOT(cr3),        [HVT_F_CR4] = SLOT(cr4),
        [HVT_F_EFER] = SLOT(efer),      [HVT_F_GDT] = SLOT(gdt),
        [HVT_F_IDT] = SLOT(idt),        [HVT_F_INTR] = SLOT(intr),
};
_Static_assert(HVT_F_COUNT == 32, "state_mask is 32 bits wide");

int hvt_state_field_differs(const struct hvt_vcpu_state *a, const struct hvt_vcpu_state *b,
                            unsigned f)
{
        if (f >= HVT_F_COUNT)
                return 0;
        return memcmp(hvt_field_cptr(a, f), hvt_field_cptr(b, f), hvt_field_slots[f].size) != 0;
}

size_t hvt_field_size(unsigned f)
{
        return f < HVT_F_COUNT ? hvt_field_slots[f].size : 0;
}
