// SPDX-License-Identifier: MIT
/* The field table that drives delta encoding (writer) and decoding (reader). */
#include <string.h>

#include "state.h"

_Static_assert(sizeof(struct hvt_disk_seg) == 16 && sizeof(struct hvt_disk_dtable) == 16,
               "hvt_state_changed compares fields as one or two words");

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

/* The state as 64-bit words: every field is one or two whole words, no padding between. */
#define STATE_WORDS (sizeof(struct hvt_vcpu_state) / 8)
_Static_assert(sizeof(struct hvt_vcpu_state) % 8 == 0 && STATE_WORDS <= 64,
               "one bit per word of the state in a uint64_t");
typedef uint64_t __attribute__((may_alias)) state_word;

/* The words of each field, as bits of a word mask. */
#define WORDS(member)                                                              \
        (((UINT64_C(1) << (sizeof(((struct hvt_vcpu_state *)0)->member) / 8)) - 1) \
         << (offsetof(struct hvt_vcpu_state, member) / 8))

static const uint64_t field_words[HVT_F_COUNT] = {
        [HVT_F_RAX] = WORDS(gpr[0]),     [HVT_F_RCX] = WORDS(gpr[1]),
        [HVT_F_RDX] = WORDS(gpr[2]),     [HVT_F_RBX] = WORDS(gpr[3]),
        [HVT_F_RSP] = WORDS(gpr[4]),     [HVT_F_RBP] = WORDS(gpr[5]),
        [HVT_F_RSI] = WORDS(gpr[6]),     [HVT_F_RDI] = WORDS(gpr[7]),
        [HVT_F_R8] = WORDS(gpr[8]),      [HVT_F_R9] = WORDS(gpr[9]),
        [HVT_F_R10] = WORDS(gpr[10]),    [HVT_F_R11] = WORDS(gpr[11]),
        [HVT_F_R12] = WORDS(gpr[12]),    [HVT_F_R13] = WORDS(gpr[13]),
        [HVT_F_R14] = WORDS(gpr[14]),    [HVT_F_R15] = WORDS(gpr[15]),
        [HVT_F_RIP] = WORDS(rip),        [HVT_F_RFLAGS] = WORDS(rflags),
        [HVT_F_ES] = WORDS(seg[HVT_ES]), [HVT_F_CS] = WORDS(seg[HVT_CS]),
        [HVT_F_SS] = WORDS(seg[HVT_SS]), [HVT_F_DS] = WORDS(seg[HVT_DS]),
        [HVT_F_FS] = WORDS(seg[HVT_FS]), [HVT_F_GS] = WORDS(seg[HVT_GS]),
        [HVT_F_CR0] = WORDS(cr0),        [HVT_F_CR2] = WORDS(cr2),
        [HVT_F_CR3] = WORDS(cr3),        [HVT_F_CR4] = WORDS(cr4),
        [HVT_F_EFER] = WORDS(efer),      [HVT_F_GDT] = WORDS(gdt),
        [HVT_F_IDT] = WORDS(idt),        [HVT_F_INTR] = WORDS(intr),
};

uint32_t hvt_state_changed(const struct hvt_vcpu_state *a, const struct hvt_vcpu_state *b)
{
        const state_word *x = (const state_word *)a, *y = (const state_word *)b;
        uint64_t w = 0;
        uint32_t mask = 0;

        /* Words first, without a branch per field: most exits change few or none. */
        for (unsigned i = 0; i < STATE_WORDS; i++)
                w |= (uint64_t)(x[i] != y[i]) << i;
        if (!w)
                return 0;
        for (unsigned f = 0; f < HVT_F_COUNT; f++)
                mask |= (uint32_t)((w & field_words[f]) != 0) << f;
        return mask;
}

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
