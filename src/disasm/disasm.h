/* SPDX-License-Identifier: MIT */
/*
 * The capstone wrapper: decodes one x86 instruction in 16-, 32- or 64-bit
 * mode and classifies what the interrupt-shadow checker and the dump need
 * (STI, SS loads, HLT, port I/O, control flow and its direct target).
 */
#ifndef HVTRACE_DISASM_H
#define HVTRACE_DISASM_H

#include <stddef.h>
#include <stdint.h>

/* Classification bits (disasm_insn.flags). */
#define DISASM_STI    0x00001u /* sti */
#define DISASM_CLI    0x00002u /* cli */
#define DISASM_MOV_SS 0x00004u /* mov ss, r/m: shadows the next instruction */
#define DISASM_POP_SS 0x00008u /* pop ss: shadows the next instruction */
#define DISASM_LSS    0x00010u /* lss: loads SS but does not shadow */
#define DISASM_HLT    0x00020u
#define DISASM_IN     0x00040u /* in / ins */
#define DISASM_OUT    0x00080u /* out / outs */
#define DISASM_JUMP   0x00100u /* any jump, conditional or not */
#define DISASM_COND   0x00200u /* conditional: falls through too (jcc, loop, jcxz) */
#define DISASM_CALL   0x00400u
#define DISASM_RET    0x00800u
#define DISASM_IRET   0x01000u
#define DISASM_INT    0x02000u /* int n, int3, into */
#define DISASM_POPF   0x04000u /* popf: may change IF */
#define DISASM_FAR    0x08000u /* far transfer: the target names a new CS */
#define DISASM_STRING 0x10000u /* string instruction (ins/outs) */

struct disasm;

struct disasm_insn {
        uint64_t addr; /* as passed to disasm_decode */
        uint8_t len;
        uint8_t bytes[15];
        uint32_t flags;     /* DISASM_* */
        int has_target;     /* a direct branch with a known target */
        uint64_t target;    /* its offset (in the same address space as addr) */
        uint16_t target_cs; /* for DISASM_FAR direct targets */
        int io_port;        /* the immediate port of in/out imm8, or -1 (port in DX) */
        uint8_t io_size;    /* bytes per port access of in/out/ins/outs */
        char text[192];     /* "mnemonic operands" */
};

/* Open capstone for all three code sizes.  Returns 0 or -errno. */
int disasm_open(struct disasm **dp);

void disasm_close(struct disasm *d);

/*
 * Decode the instruction at the start of code[0..len) as `bits`-bit code
 * (16, 32 or 64) located at address addr.  Returns 0 and fills *out, or
 * -EINVAL when the bytes do not decode (too short, invalid opcode).
 */
int disasm_decode(struct disasm *d, unsigned bits, const uint8_t *code, size_t len, uint64_t addr,
                  struct disasm_insn *out);

/*
 * Whether insn is a port I/O instruction that matches a recorded exit: same
 * direction (out != 0 for OUT), same access size, and the same port when
 * the port is an immediate.  Used to tell whether a backend had already
 * advanced RIP past the instruction that exited.
 */
int disasm_is_io_insn(const struct disasm_insn *insn, int out, unsigned port, unsigned size);

/* One candidate for the instruction behind a port-I/O exit. */
struct disasm_io_site {
        int found;
        struct disasm_insn insn; /* insn.addr is its address */
};

/*
 * Backends disagree on where RIP points at a port-I/O exit: at the I/O
 * instruction (not yet completed) or just past it (completed).  Given the
 * bytes around the exit, code[0..len) with the exit's RIP at code[at] and
 * address rip, find both readings: *completed gets an I/O instruction of the
 * right direction and port that ends exactly at rip, *pending one that
 * starts at rip.  Either, both or neither may be found; the caller decides.
 */
void disasm_io_candidates(struct disasm *d, unsigned bits, const uint8_t *code, size_t len,
                          size_t at, uint64_t rip, int out, unsigned port, unsigned size,
                          struct disasm_io_site *completed, struct disasm_io_site *pending);

#endif
