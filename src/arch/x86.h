/* SPDX-License-Identifier: MIT */
/*
 * x86 address translation over a flat guest-physical memory image, shared by
 * the recorder (instruction bytes and interrupt frames at each exit) and the
 * replay tools (code in the trace's memory image).
 */
#ifndef HVTRACE_X86_H
#define HVTRACE_X86_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hvtrace/hvtrace.h>

#define X86_CR0_PE    0x00000001ull
#define X86_CR0_PG    0x80000000ull
#define X86_CR4_PSE   0x00000010ull
#define X86_CR4_PAE   0x00000020ull
#define X86_EFER_LME  0x00000100ull
#define X86_EFER_LMA  0x00000400ull
#define X86_RFLAGS_IF 0x200ull

/* Guest-physical memory: RAM from 0 to size. */
struct x86_mem {
        const uint8_t *ram;
        uint64_t size;
};

/*
 * Translate linear address la with the paging mode of st (none, 32-bit,
 * PAE or 4-level).  Returns 0 and *gpa, or -EFAULT when not mapped or the
 * tables lie outside RAM.
 */
int x86_translate(const struct x86_mem *m, const struct hvt_vcpu_state *st, uint64_t la,
                  uint64_t *gpa);

/* Most paging entries one translation reads (4-level paging). */
#define X86_MAX_WALK 4

/*
 * As x86_translate, and the guest-physical addresses of the paging entries
 * the walk read, in ent[0 .. *nent) (none with paging off).  A reader that
 * caches translations needs them: a write there changes the mapping.
 */
int x86_translate_logged(const struct x86_mem *m, const struct hvt_vcpu_state *st, uint64_t la,
                         uint64_t *gpa, uint64_t ent[X86_MAX_WALK], unsigned *nent);

/* Read up to len bytes at linear la; stops at the first unmapped byte.  Returns bytes read. */
size_t x86_read_linear(const struct x86_mem *m, const struct hvt_vcpu_state *st, uint64_t la,
                       void *buf, size_t len);

/*
 * The code segment an 8-byte GDT/LDT descriptor describes: false unless it
 * is a present code segment; else its base and its code size (64 when L is
 * set and long mode is active, where the base is then 0; else 32 or 16 by D).
 */
bool x86_code_descriptor(const uint8_t d[8], bool long_mode, uint64_t *base, unsigned *bits);

/* Linear address of seg:off, wrapping like the mode does (16-bit offsets in real mode). */
uint64_t x86_linear(const struct hvt_vcpu_state *st, unsigned sreg, uint64_t off);

#endif
