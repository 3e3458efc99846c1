/* SPDX-License-Identifier: MIT */
/*
 * The x86 architecture as hvtrace needs it, in one place (Intel SDM vol. 3):
 * the architectural bits, the page walk, interrupt-table entries and the
 * interrupt frame.  Shared by the recorder (instruction bytes and the frame
 * at each probe), the emu backend (which translates and delivers
 * interrupts itself) and the replay tools (code in the trace's memory
 * image, handlers and IRET frames, state comparison).
 */
#ifndef HVTRACE_X86_H
#define HVTRACE_X86_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hvtrace/hvtrace.h>

/* ---- control registers, EFER, RFLAGS, debug registers ---------------------------- */

#define X86_CR0_PE 0x00000001ull
#define X86_CR0_ET 0x00000010ull
#define X86_CR0_NE 0x00000020ull
#define X86_CR0_PG 0x80000000ull

#define X86_CR4_PSE    0x00000010ull
#define X86_CR4_PAE    0x00000020ull
#define X86_CR4_OSFXSR 0x00000200ull
#define X86_CR4_LA57   0x00001000ull
#define X86_CR4_SMAP   0x00200000ull

#define X86_MSR_EFER 0xc0000080u
#define X86_EFER_LME 0x00000100ull
#define X86_EFER_LMA 0x00000400ull
#define X86_EFER_NXE 0x00000800ull

#define X86_RFLAGS_FIXED 0x00000002ull /* bit 1 reads as 1 */
#define X86_RFLAGS_AF    0x00000010ull
#define X86_RFLAGS_TF    0x00000100ull
#define X86_RFLAGS_IF    0x00000200ull
#define X86_RFLAGS_DF    0x00000400ull
#define X86_RFLAGS_NT    0x00004000ull
#define X86_RFLAGS_RF    0x00010000ull
#define X86_RFLAGS_VM    0x00020000ull
#define X86_RFLAGS_AC    0x00040000ull

#define X86_DR6_FIXED 0xffff0ff0ull /* the bits DR6 reads as 1 */
#define X86_DR6_BS    0x00004000ull /* single-step trap */
#define X86_DR6_B0    0x00000001ull /* breakpoint 0 matched */
#define X86_DR7_L0    0x00000001ull /* breakpoint 0 enabled (local) */
#define X86_DR7_FIXED 0x00000400ull

/* Whether DR7 enables a breakpoint on instruction execution (R/W 00) in DR0-DR3. */
static inline bool x86_dr7_exec_breakpoints(uint64_t dr7)
{
        for (unsigned i = 0; i < 4; i++)
                if (((dr7 >> (2 * i)) & 3) && !((dr7 >> (16 + 4 * i)) & 3))
                        return true;
        return false;
}

/* ---- exceptions ---------------------------------------------------------------- */

enum x86_exception {
        X86_EXC_DB = 1,
        X86_EXC_NMI = 2, /* not an exception: the NMI's vector */
        X86_EXC_BP = 3,
        X86_EXC_OF = 4,
        X86_EXC_UD = 6,
        X86_EXC_DF = 8,
        X86_EXC_TS = 10,
        X86_EXC_NP = 11,
        X86_EXC_SS = 12,
        X86_EXC_GP = 13,
        X86_EXC_PF = 14,
        X86_EXC_AC = 17,
        X86_EXC_CP = 21,
};

/* Error code of a fault on an IDT entry: (vector << 3) | X86_ERRC_IDT, | X86_ERRC_EXT if external.
 */
#define X86_ERRC_EXT 0x1u
#define X86_ERRC_IDT 0x2u

/* ---- selectors and descriptors --------------------------------------------------- */

#define X86_SEL_RPL   0x0003u
#define X86_SEL_TI    0x0004u /* the selector names the LDT */
#define X86_SEL_INDEX 0xfff8u /* its descriptor's byte offset in the table */

/*
 * The high dword of an 8-byte segment descriptor or gate (also the layout
 * of QEMU's segment cache flags).  The access byte is bits 15:8.
 */
#define X86_DESC_TYPE_SHIFT 8          /* 4 bits */
#define X86_DESC_S          (1u << 12) /* code or data (1), system (0) */
#define X86_DESC_DPL_SHIFT  13         /* 2 bits */
#define X86_DESC_P          (1u << 15)
#define X86_DESC_LIMIT_HI   0x000f0000u /* limit bits 19:16 */
#define X86_DESC_AVL        (1u << 20)
#define X86_DESC_L          (1u << 21)  /* 64-bit code */
#define X86_DESC_DB         (1u << 22)  /* 32-bit code or stack */
#define X86_DESC_G          (1u << 23)  /* limit in 4 KiB units */
#define X86_DESC_ATTRS      0x00f0ff00u /* type, S, DPL, P, AVL, L, D/B, G */

/* Code and data segment types (S = 1). */
#define X86_TYPE_ACCESSED   0x1u
#define X86_TYPE_CONFORMING 0x4u /* code */
#define X86_TYPE_CODE       0x8u

/* System types an interrupt table holds (S = 0); 0x0e/0x0f are 64-bit gates in long mode. */
#define X86_GATE_TASK   0x5u
#define X86_GATE_INT16  0x6u
#define X86_GATE_TRAP16 0x7u
#define X86_GATE_INT32  0xeu
#define X86_GATE_TRAP32 0xfu

/* The high dword of descriptor d. */
static inline uint32_t x86_desc_hi(const uint8_t d[8])
{
        return (uint32_t)d[4] | (uint32_t)d[5] << 8 | (uint32_t)d[6] << 16 | (uint32_t)d[7] << 24;
}

/* The base of segment descriptor d. */
static inline uint64_t x86_desc_base(const uint8_t d[8])
{
        return (uint64_t)d[2] | (uint64_t)d[3] << 8 | (uint64_t)d[4] << 16 | (uint64_t)d[7] << 24;
}

/* The limit of segment descriptor d in bytes, G applied. */
static inline uint32_t x86_desc_limit(const uint8_t d[8])
{
        uint32_t limit =
                (uint32_t)d[0] | (uint32_t)d[1] << 8 | (x86_desc_hi(d) & X86_DESC_LIMIT_HI);

        return (x86_desc_hi(d) & X86_DESC_G) ? limit << 12 | 0xfff : limit;
}

/*
 * The code segment an 8-byte GDT/LDT descriptor describes: false unless it
 * is a present code segment; else its base and its code size (64 when L is
 * set and long mode is active, where the base is then 0; else 32 or 16 by D).
 */
bool x86_code_descriptor(const uint8_t d[8], bool long_mode, uint64_t *base, unsigned *bits);

/* HVT_MODE_* of CR0 and EFER: real (CR0.PE clear), long (EFER.LMA) or protected. */
static inline unsigned x86_mode(uint64_t cr0, uint64_t efer)
{
        if (!(cr0 & X86_CR0_PE))
                return HVT_MODE_REAL;
        return (efer & X86_EFER_LMA) ? HVT_MODE_LONG : HVT_MODE_PROTECTED;
}

/* ---- paging -------------------------------------------------------------------- */

/* Paging-structure entry bits (the same in 32-bit, PAE and 4-level entries). */
#define X86_PTE_P      0x001ull
#define X86_PTE_W      0x002ull
#define X86_PTE_US     0x004ull
#define X86_PTE_A      0x020ull
#define X86_PTE_D      0x040ull
#define X86_PTE_PS     0x080ull /* a large page (PDE; PDPTE in 4-level paging) */
#define X86_PTE_NX     (1ull << 63)
#define X86_PTE_ADDR   0x000ffffffffff000ull /* 8-byte entries (PAE, 4-level), and CR3 */
#define X86_PTE32_ADDR 0xfffff000ull         /* 4-byte entries, and CR3 for 32-bit paging */
#define X86_PAE_CR3    0xffffffe0ull         /* PAE: the PDPT is 32-byte aligned */

/* Most paging entries one translation reads (4-level paging). */
#define X86_MAX_WALK 4

/* The registers that decide how linear addresses translate. */
struct x86_paging {
        uint64_t cr0, cr3, cr4, efer;
};

static inline struct x86_paging x86_paging_of(const struct hvt_vcpu_state *st)
{
        struct x86_paging pg = { .cr0 = st->cr0, .cr3 = st->cr3, .cr4 = st->cr4, .efer = st->efer };

        return pg;
}

/* Whether cr0 enables paging: PG takes effect only with PE. */
static inline bool x86_paging_on(uint64_t cr0)
{
        return (cr0 & X86_CR0_PG) && (cr0 & X86_CR0_PE);
}

/*
 * Reads the paging entry of size bytes (4 or 8) at guest-physical gpa into
 * *val.  Returns 0, or -EFAULT when the guest has no memory there.
 */
typedef int x86_entry_reader(const void *ctx, uint64_t gpa, unsigned size, uint64_t *val);

/*
 * The page walk, paging on: translate linear la with the paging mode pg
 * selects (4-level with EFER.LMA, else PAE with CR4.PAE, else 32-bit, with
 * CR4.PSE large pages), reading each entry with read(ctx).  PS makes a
 * large page in a PDE, and in a PDPTE only with 4-level paging (a PAE
 * PDPTE has no PS bit).  Returns 0 and *gpa (which need not be memory), or
 * -EFAULT for an entry not present, or read's error.  When ent is not NULL
 * it receives the guest-physical addresses of the entries read, and *nent
 * (when not NULL) their number, on failure too.
 */
int x86_walk(const struct x86_paging *pg, uint64_t la, x86_entry_reader *read, const void *ctx,
             uint64_t *gpa, uint64_t ent[X86_MAX_WALK], unsigned *nent);

/* Guest-physical memory: RAM from 0 to size. */
struct x86_mem {
        const uint8_t *ram;
        uint64_t size;
};

/* The x86_entry_reader of a struct x86_mem (ctx). */
int x86_mem_entry(const void *ctx, uint64_t gpa, unsigned size, uint64_t *val);

/*
 * Translate linear address la with the paging mode of st (none, 32-bit,
 * PAE or 4-level).  Returns 0 and *gpa, or -EFAULT when not mapped, the
 * tables lie outside RAM or the address itself does.
 */
int x86_translate(const struct x86_mem *m, const struct hvt_vcpu_state *st, uint64_t la,
                  uint64_t *gpa);

/*
 * Whether a and b stand at the same instruction boundary in the same
 * state: RIP, the general registers, RFLAGS (but the bits in
 * rflags_ignored), every segment's selector and base, CR0, CR3, CR4, EFER.
 * What an instruction changes; not the descriptor caches' limits and
 * attributes, which only a load changes along with the selector.
 */
bool x86_same_boundary(const struct hvt_vcpu_state *a, const struct hvt_vcpu_state *b,
                       uint64_t rflags_ignored);

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

/* Linear address of seg:off, wrapping like the mode does (16-bit offsets in real mode). */
uint64_t x86_linear(const struct hvt_vcpu_state *st, unsigned sreg, uint64_t off);

/*
 * The architectural state after RESET (SDM vol. 3, "Processor State After
 * Reset"): CS F000 with base FFFF0000, IP FFF0, limits 0xFFFF, FLAGS 0x2,
 * CR0 0x60000010, GDTR and IDTR at 0 with limit 0xFFFF.  For backends that
 * have no CPU to ask before hvrec sets the guest's start.
 */
void x86_reset_state(struct hvt_vcpu_state *st);

/* ---- interrupt tables ---------------------------------------------------------- */

/* An entry of the interrupt table: an IVT entry (real mode) or an IDT gate. */
struct x86_gate {
        uint64_t offset;   /* the handler's offset in its code segment (IVT: IP) */
        uint16_t selector; /* its code segment (IVT: the segment; task gate: the TSS) */
        uint8_t type;      /* X86_GATE_* of a system descriptor; 0 for the IVT and S = 1 */
        uint8_t dpl;       /* the privilege INT n needs (IVT: 3, anyone) */
        uint8_t ist;       /* long mode: the IST stack, 0 for none */
        uint8_t bits;      /* the frame it pushes (16, 32, 64); 0: no interrupt or trap gate */
        bool present;      /* P (IVT: always) */
        bool trap;         /* a trap gate: IF is left as it was */
};

/* Bytes of one interrupt-table entry in mode (HVT_MODE_*): 4 (the IVT), 8, 16 (long mode). */
unsigned x86_gate_size(unsigned mode);

/*
 * The linear address of vector v's entry in the interrupt table at base
 * with limit (IDTR, or where the IVT lies in real mode).  False when the
 * entry does not lie wholly within the limit.
 */
bool x86_gate_addr(unsigned mode, uint64_t base, uint32_t limit, unsigned v, uint64_t *la);

/*
 * Decode the interrupt-table entry e (x86_gate_size(mode) bytes) of mode.
 * Offsets are as wide as the gate: 16 bits in an IVT entry or a 16-bit
 * gate, 32 in a 32-bit gate, 64 in long mode.  Returns true when the CPU
 * delivers through it (an IVT entry; a present interrupt or trap gate, 16-
 * or 32-bit in protected mode, 64-bit in long mode); g is filled in either
 * way, so a caller can tell why not (bits 0, or not present).
 */
bool x86_gate_decode(unsigned mode, const uint8_t *e, struct x86_gate *g);

/* ---- stacks and interrupt frames ------------------------------------------------ */

/* A stack: SS's base and the bits of rSP it uses. */
struct x86_stack {
        uint64_t base; /* 0 in 64-bit mode */
        uint64_t mask; /* 0xffff (real mode, SS.B = 0), 0xffffffff, or all (64-bit mode) */
};

/* The stack of st: flat in 64-bit code, else SS's, 16-bit in real mode or with SS.B clear. */
struct x86_stack x86_stack_of(const struct hvt_vcpu_state *st);

/*
 * Linear address of the byte at sp + off on stack s: the offset wraps at
 * the stack's width (a 16-bit stack inside its 64 KiB), and outside 64-bit
 * mode the linear address at 4 GiB.
 */
uint64_t x86_stack_la(const struct x86_stack *s, uint64_t sp, uint64_t off);

/* rSP moved by delta on stack s: only the bits the stack uses change. */
uint64_t x86_stack_move(const struct x86_stack *s, uint64_t sp, int64_t delta);

/* Reads the byte at linear la into *b; false when it cannot. */
typedef bool x86_byte_reader(void *ctx, uint64_t la, uint8_t *b);

/*
 * The n (<= 8) little-endian bytes at sp + off on stack s, read one by one
 * (each wraps on its own) with read(ctx), into *val.  False, *val
 * untouched, at the first byte read cannot read.
 */
bool x86_stack_read(const struct x86_stack *s, uint64_t sp, uint64_t off, unsigned n,
                    x86_byte_reader *read, void *ctx, uint64_t *val);

/*
 * The slots of an interrupt frame, from the stack pointer up: what an
 * interrupt pushes and IRET pops (RETF pops the first two).
 */
enum x86_frame_slot {
        X86_FRAME_IP,
        X86_FRAME_CS,
        X86_FRAME_FLAGS,
        X86_FRAME_SP, /* SP and SS: after a stack switch, and always in a 64-bit frame */
        X86_FRAME_SS,
        X86_FRAME_ES, /* ES, DS, FS, GS: from virtual-8086 mode */
        X86_FRAME_DS,
        X86_FRAME_FS,
        X86_FRAME_GS,
        X86_FRAME_SLOTS
};

/* Where a slot lies: its offset from the stack pointer and the bytes holding the value. */
struct x86_slot {
        unsigned off, len;
};

/*
 * Slot s of a frame of `bits` (16, 32 or 64: every slot is that wide; a
 * selector's value is its low 2 bytes).  With err the frame has an error
 * code at the stack pointer, one slot wide, and every slot is one further.
 */
struct x86_slot x86_frame_slot(unsigned bits, bool err, enum x86_frame_slot s);

/* Bytes of a frame of `bits` made of its first nslots slots, and the error code with err. */
unsigned x86_frame_size(unsigned bits, bool err, unsigned nslots);

/*
 * How many slots a frame of `bits` has: IP, CS and FLAGS; SP and SS as well
 * after a stack switch and always in a 64-bit frame; ES, DS, FS and GS as
 * well from virtual-8086 mode.
 */
unsigned x86_frame_slots(unsigned bits, bool stack_switch, bool vm86);

#endif
