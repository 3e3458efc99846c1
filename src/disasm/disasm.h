/* SPDX-License-Identifier: MIT */
/*
 * The x86 decoder: decodes one instruction in 16-, 32- or 64-bit mode and
 * classifies what the interrupt-shadow checker and the dump need (STI, SS
 * loads, HLT, port I/O, control flow and its direct target, #UD).
 *
 * Two decoders work together.  A byte-level classifier knows the
 * instructions the checker relies on (listed below) in every code size and
 * with every legal prefix combination, and knows when they are invalid;
 * capstone decodes everything else and writes the text.  Whenever the
 * classifier recognises an instruction, it is AUTHORITATIVE for len, flags,
 * has_target, target, target_cs, int_vector and, for ins/outs, io_port and
 * io_size; capstone supplies only the text (the classifier writes its own
 * when capstone rejects the bytes or reads another length, e.g. 44 8e d0).
 *
 * Instructions the classifier knows:
 *   sti cli hlt; mov Sreg, r/m (8e, any addressing form and REX); pop ss;
 *   lss; popf; iret; int n / int3 / into / int1; jmp/jcc/jcxz/loop (rel8,
 *   rel16/32), call rel, jmp/call far direct (ea, 9a), jmp/call indirect
 *   (ff /2 /3 /4 /5); ret / retf (with or without imm16); the string
 *   instructions movs cmps stos lods scas ins outs; syscall sysret sysenter
 *   sysexit; ud0 ud1 ud2; mov CRn, r; lmsw; wrmsr; and any instruction
 *   with a LOCK prefix it does not allow.
 * Near targets wrap at the operand size (16 or 32 bits); in 64-bit code the
 * operand size of near branches is always 64 (0x66 is ignored, as on Intel).
 */
#ifndef HVTRACE_DISASM_H
#define HVTRACE_DISASM_H

#include <stddef.h>
#include <stdint.h>

/* Classification bits (disasm_insn.flags). */
#define DISASM_STI    0x000001u /* sti */
#define DISASM_CLI    0x000002u /* cli */
#define DISASM_MOV_SS 0x000004u /* mov ss, r/m: shadows the next instruction */
#define DISASM_POP_SS 0x000008u /* pop ss: shadows the next instruction (never set in 64-bit) */
#define DISASM_LSS    0x000010u /* lss: loads SS but does not shadow */
#define DISASM_HLT    0x000020u
#define DISASM_IN     0x000040u /* in / ins */
#define DISASM_OUT    0x000080u /* out / outs */
#define DISASM_JUMP   0x000100u /* any jump, conditional or not */
#define DISASM_COND   0x000200u /* conditional: falls through too (jcc, loop, jcxz, into) */
#define DISASM_CALL   0x000400u
#define DISASM_RET    0x000800u
#define DISASM_IRET   0x001000u
#define DISASM_INT    0x002000u /* int n, int3, into, int1 (int_vector says which) */
#define DISASM_POPF   0x004000u /* popf: may change IF */
#define DISASM_FAR    0x008000u /* far jmp/call: the target names a new CS */
#define DISASM_STRING 0x010000u /* string instruction (ins/outs) */
#define DISASM_REP                                                             \
        0x020000u /* f2/f3 string instruction: may stop between iterations and \
                   * re-run at the same address */
#define DISASM_SYSCALL                                                         \
        0x040000u /* syscall sysret sysenter sysexit: the successor comes from \
                   * MSRs and is unknown */
#define DISASM_UD                                                             \
        0x080000u /* always raises #UD: nothing falls through.  Set alone: an \
                   * invalid instruction has no other flag, target or vector */
#define DISASM_CTX                                                             \
        0x100000u /* mov CRn, lmsw, wrmsr: the code size or paging may change, \
                   * so the next instruction may decode differently */

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
        int int_vector;     /* n of int n; 3 int3, 4 into, 1 int1; otherwise -1 */
        /*
         * It may write the stack pointer (pushes and pops included), as far
         * as either decoder can tell; 1 when neither can say.
         */
        uint8_t sp_write;
        char text[192]; /* "mnemonic operands" */
};

/* Open capstone for all three code sizes.  Returns 0 or -errno. */
int disasm_open(struct disasm **dp);

void disasm_close(struct disasm *d);

/*
 * Decode the instruction at the start of code[0..len) as `bits`-bit code
 * (16, 32 or 64) located at address addr.  Returns 0 and fills *out, or
 * -EINVAL when the bytes do not decode: bits is not 16/32/64, code[0..len)
 * ends inside the instruction, the instruction would be longer than 15
 * bytes, or neither decoder knows the opcode.
 *
 * An instruction the classifier knows to raise #UD (LOCK sti, pop ss / into
 * / far direct jmp or call in 64-bit code, mov cs, lss or far indirect with
 * a register operand, ud2, ...) is NOT an error: it returns 0 with flags ==
 * DISASM_UD and its length, so that callers see a path end there.  For a
 * LOCK on an instruction outside the classifier's list, the length is
 * capstone's reading of the bytes without the LOCK; if capstone cannot read
 * those either (the form is invalid anyway), the result is -EINVAL.
 */
int disasm_decode(struct disasm *d, unsigned bits, const uint8_t *code, size_t len, uint64_t addr,
                  struct disasm_insn *out);

/*
 * disasm_decode without the copy: the result where the decoder keeps it, or
 * NULL where disasm_decode fails.  It stays valid until the next call on d
 * that decodes (disasm_decode, disasm_decode_ref, disasm_io_*).
 */
const struct disasm_insn *disasm_decode_ref(struct disasm *d, unsigned bits, const uint8_t *code,
                                            size_t len, uint64_t addr);

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

/*
 * disasm_io_candidates for a caller that needs no more than whether each
 * reading exists: *completed_len is the length of the instruction that ends
 * at rip (0: none), *pending whether one starts there.  Copies no result.
 */
void disasm_io_readings(struct disasm *d, unsigned bits, const uint8_t *code, size_t len, size_t at,
                        uint64_t rip, int out, unsigned port, unsigned size, uint8_t *completed_len,
                        int *pending);

/*
 * The lengths k (1..15) such that the last k bytes of code[0..len) decode as
 * `bits`-bit code to exactly one instruction that delays interrupts: STI,
 * MOV SS or POP SS (not LSS, not pop ss in 64-bit code, not a LOCK form).
 * Bit k-1 is set for each; several readings may hold at once (66 fb ends in
 * both 66 fb and fb).  Returns 0 for bad bits.  Never calls capstone; when
 * no fb, 17 or 8e is where one could be, it costs a few byte compares.
 */
uint16_t disasm_delaying_ending(unsigned bits, const uint8_t *code, size_t len);

#endif
