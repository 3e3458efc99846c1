// SPDX-License-Identifier: MIT
/* The field table that drives delta encoding (writer) and decoding (reader). */
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "state.h"

_Static_assert(sizeof(struct hvt_disk_seg) == 16 && sizeof(struct hvt_disk_dtable) == 16,
               "hvt_state_changed compares fields as one or two words");

#define SLOT(member)                                                 \
        {                                                            \
                offsetof(struct hvt_vcpu_state, member),             \
                        sizeof(((struct hvt_vcpu_state *)0)->member) \
        }

/* Every field: its number and its member, for both tables below. */
#define STATE_FIELDS(X)          \
        X(HVT_F_RAX, gpr[0])     \
        X(HVT_F_RCX, gpr[1])     \
        X(HVT_F_RDX, gpr[2])     \
        X(HVT_F_RBX, gpr[3])     \
        X(HVT_F_RSP, gpr[4])     \
        X(HVT_F_RBP, gpr[5])     \
        X(HVT_F_RSI, gpr[6])     \
        X(HVT_F_RDI, gpr[7])     \
        X(HVT_F_R8, gpr[8])      \
        X(HVT_F_R9, gpr[9])      \
        X(HVT_F_R10, gpr[10])    \
        X(HVT_F_R11, gpr[11])    \
        X(HVT_F_R12, gpr[12])    \
        X(HVT_F_R13, gpr[13])    \
        X(HVT_F_R14, gpr[14])    \
        X(HVT_F_R15, gpr[15])    \
        X(HVT_F_RIP, rip)        \
        X(HVT_F_RFLAGS, rflags)  \
        X(HVT_F_ES, seg[HVT_ES]) \
        X(HVT_F_CS, seg[HVT_CS]) \
        X(HVT_F_SS, seg[HVT_SS]) \
        X(HVT_F_DS, seg[HVT_DS]) \
        X(HVT_F_FS, seg[HVT_FS]) \
        X(HVT_F_GS, seg[HVT_GS]) \
        X(HVT_F_CR0, cr0)        \
        X(HVT_F_CR2, cr2)        \
        X(HVT_F_CR3, cr3)        \
        X(HVT_F_CR4, cr4)        \
        X(HVT_F_EFER, efer)      \
        X(HVT_F_GDT, gdt)        \
        X(HVT_F_IDT, idt)        \
        X(HVT_F_INTR, intr)

#define SLOT_OF(f, member) [f] = SLOT(member),
const struct hvt_field_slot hvt_field_slots[HVT_F_COUNT] = { STATE_FIELDS(SLOT_OF) };
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

#define WORDS_OF(f, member) [f] = WORDS(member),
static const uint64_t field_words[HVT_F_COUNT] = { STATE_FIELDS(WORDS_OF) };

#ifdef __SSE2__
/*
 * Bit i set when word i differs.  Sixteen bytes at a time: a recorder calls
 * this at every exit, and the scalar loop was a sixth of its own work.
 */
static uint64_t words_changed(const struct hvt_vcpu_state *a, const struct hvt_vcpu_state *b)
{
        enum { BLOCKS = sizeof(struct hvt_vcpu_state) / 16 };
        const __m128i *x = (const __m128i *)a, *y = (const __m128i *)b;
        __m128i any = _mm_setzero_si128();
        uint64_t w = 0;

        _Static_assert(sizeof(struct hvt_vcpu_state) % 16 == 0, "whole 16-byte blocks");
        /* Most exits change nothing or little: one pass to tell, with no branch. */
        for (unsigned i = 0; i < BLOCKS; i++)
                any = _mm_or_si128(any,
                                   _mm_xor_si128(_mm_loadu_si128(x + i), _mm_loadu_si128(y + i)));
        if (_mm_movemask_epi8(_mm_cmpeq_epi8(any, _mm_setzero_si128())) == 0xffff)
                return 0;
        for (unsigned i = 0; i < BLOCKS; i++) {
                unsigned same = (unsigned)_mm_movemask_epi8(
                        _mm_cmpeq_epi8(_mm_loadu_si128(x + i), _mm_loadu_si128(y + i)));

                w |= (uint64_t)((same & 0xff) != 0xff) << (2 * i);
                w |= (uint64_t)((same >> 8) != 0xff) << (2 * i + 1);
        }
        return w;
}
#else
static uint64_t words_changed(const struct hvt_vcpu_state *a, const struct hvt_vcpu_state *b)
{
        const state_word *x = (const state_word *)a, *y = (const state_word *)b;
        uint64_t w = 0;

        /* Without a branch per word: most exits change few or none. */
        for (unsigned i = 0; i < STATE_WORDS; i++)
                w |= (uint64_t)(x[i] != y[i]) << i;
        return w;
}
#endif

uint32_t hvt_state_changed(const struct hvt_vcpu_state *a, const struct hvt_vcpu_state *b)
{
        uint64_t w = words_changed(a, b);
        uint32_t mask = 0;

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
