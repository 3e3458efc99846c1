// SPDX-License-Identifier: MIT
/*
 * Tests of the capstone wrapper (src/disasm): classification of the
 * interrupt-shadow and I/O instructions, direct branch targets, lengths,
 * errors and the two readings of RIP at a port-I/O exit.
 *
 * Every expectation below comes from the x86 architecture (Intel SDM vol. 2
 * encodings and operand-size rules), not from what the code prints.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "../src/disasm/disasm.h"

static struct disasm *d;

static void setup(void)
{
        cr_assert_eq(disasm_open(&d), 0, "disasm_open failed");
        cr_assert_not_null(d);
}

static void teardown(void)
{
        disasm_close(d);
        d = NULL;
}

TestSuite(disasm, .init = setup, .fini = teardown);

/* Decode and require success; the byte count must match len. */
static struct disasm_insn dec(unsigned bits, uint64_t addr, const uint8_t *code, size_t n)
{
        struct disasm_insn insn;
        int r;

        memset(&insn, 0xa5, sizeof(insn)); /* garbage: decode must fill everything it reports */
        r = disasm_decode(d, bits, code, n, addr, &insn);
        cr_assert_eq(r, 0, "%u-bit decode of %zu bytes (first %02x) at %#llx failed: %d", bits, n,
                     code[0], (unsigned long long)addr, r);
        cr_assert_eq(insn.addr, addr, "addr %#llx, passed %#llx", (unsigned long long)insn.addr,
                     (unsigned long long)addr);
        return insn;
}

static int dec_err(unsigned bits, const uint8_t *code, size_t n)
{
        struct disasm_insn insn;

        return disasm_decode(d, bits, code, n, 0, &insn);
}

#define BYTES(...)  ((const uint8_t[]){ __VA_ARGS__ })
#define NBYTES(...) sizeof((const uint8_t[]){ __VA_ARGS__ })
/* DEC(bits, addr, byte, byte...) decodes exactly those bytes. */
#define DEC(bits, addr, ...) dec((bits), (addr), BYTES(__VA_ARGS__), NBYTES(__VA_ARGS__))
#define DEC_ERR(bits, ...)   dec_err((bits), BYTES(__VA_ARGS__), NBYTES(__VA_ARGS__))

static const unsigned all_modes[] = { 16, 32, 64 };
static const unsigned legacy_modes[] = { 16, 32 };
#define NMODES(a) (sizeof(a) / sizeof((a)[0]))

#define ASSERT_FLAGS(insn, want)                                                             \
        cr_assert_eq((insn).flags, (uint32_t)(want), "%s: flags %#x, want %#x", (insn).text, \
                     (unsigned)(insn).flags, (unsigned)(want))
#define ASSERT_HAS(insn, bits_)                                                                    \
        cr_assert_eq((insn).flags &(uint32_t)(bits_), (uint32_t)(bits_), "%s: flags %#x lack %#x", \
                     (insn).text, (unsigned)(insn).flags, (unsigned)(bits_))
#define ASSERT_LACKS(insn, bits_)                                                                \
        cr_assert_eq((insn).flags &(uint32_t)(bits_), 0u, "%s: flags %#x have %#x", (insn).text, \
                     (unsigned)(insn).flags, (unsigned)((insn).flags & (bits_)))
#define ASSERT_TEXT(insn, s) \
        cr_assert_not_null(strstr((insn).text, (s)), "text \"%s\" lacks \"%s\"", (insn).text, (s))

/* ------------------------------------------------------------------------ */
/* Interrupt-relevant classification                                        */
/* ------------------------------------------------------------------------ */

Test(disasm, sti_cli_hlt_all_modes)
{
        for (size_t i = 0; i < NMODES(all_modes); i++) {
                unsigned b = all_modes[i];
                struct disasm_insn sti = DEC(b, 0x100, 0xfb);
                struct disasm_insn cli = DEC(b, 0x100, 0xfa);
                struct disasm_insn hlt = DEC(b, 0x100, 0xf4);

                ASSERT_FLAGS(sti, DISASM_STI);
                ASSERT_FLAGS(cli, DISASM_CLI);
                ASSERT_FLAGS(hlt, DISASM_HLT);
                cr_assert_eq(sti.len, 1);
                cr_assert_eq(cli.len, 1);
                cr_assert_eq(hlt.len, 1);
                cr_assert_str_eq(sti.text, "sti");
                cr_assert_str_eq(cli.text, "cli");
                cr_assert_str_eq(hlt.text, "hlt");
                cr_assert_eq(sti.has_target, 0);
                cr_assert_eq(sti.io_port, -1, "not an I/O insn: no immediate port");
        }
}

Test(disasm, mov_ss_register_all_modes)
{
        for (size_t i = 0; i < NMODES(all_modes); i++) {
                /* 8E /r: MOV Sreg, r/m16; ModRM d0 = mod 11, reg 2 (SS), rm 0 (AX) */
                struct disasm_insn in = DEC(all_modes[i], 0, 0x8e, 0xd0);

                ASSERT_FLAGS(in, DISASM_MOV_SS);
                cr_assert_eq(in.len, 2);
                ASSERT_TEXT(in, "mov");
                ASSERT_TEXT(in, "ss");
        }
        struct disasm_insn in = DEC(16, 0, 0x8e, 0xd0);

        cr_assert_str_eq(in.text, "mov ss, ax");
}

Test(disasm, mov_ss_memory)
{
        /* 16-bit: 8e 16 34 12 = mov ss, [0x1234] (mod 00 rm 110 = disp16) */
        struct disasm_insn a = DEC(16, 0, 0x8e, 0x16, 0x34, 0x12);
        /* 32-bit: 8e 10 = mov ss, [eax] */
        struct disasm_insn b = DEC(32, 0, 0x8e, 0x10);
        /* 64-bit: 8e 55 08 = mov ss, [rbp+8] */
        struct disasm_insn c = DEC(64, 0, 0x8e, 0x55, 0x08);
        /* 32-bit: 8e 15 disp32 = mov ss, [0x12345678] */
        struct disasm_insn e = DEC(32, 0, 0x8e, 0x15, 0x78, 0x56, 0x34, 0x12);

        ASSERT_FLAGS(a, DISASM_MOV_SS);
        ASSERT_FLAGS(b, DISASM_MOV_SS);
        ASSERT_FLAGS(c, DISASM_MOV_SS);
        ASSERT_FLAGS(e, DISASM_MOV_SS);
        cr_assert_eq(a.len, 4);
        cr_assert_eq(b.len, 2);
        cr_assert_eq(c.len, 3);
        cr_assert_eq(e.len, 6);
}

Test(disasm, mov_ss_other_segments_are_not_mov_ss)
{
        /* 8e d8 = mov ds, ax; 8e c0 = mov es, ax; 8e e0 = mov fs, ax */
        ASSERT_FLAGS(DEC(16, 0, 0x8e, 0xd8), 0);
        ASSERT_FLAGS(DEC(32, 0, 0x8e, 0xc0), 0);
        ASSERT_FLAGS(DEC(64, 0, 0x8e, 0xe0), 0);
}

Test(disasm, mov_from_ss_is_not_mov_ss)
{
        for (size_t i = 0; i < NMODES(all_modes); i++) {
                /* 8C /r: MOV r/m16, Sreg; d0 = mov ax, ss: reads SS, no shadow */
                struct disasm_insn in = DEC(all_modes[i], 0, 0x8c, 0xd0);

                ASSERT_FLAGS(in, 0);
                cr_assert_eq(in.len, 2);
        }
        /* 8c 16 34 12 = mov [0x1234], ss (16-bit) */
        struct disasm_insn m = DEC(16, 0, 0x8c, 0x16, 0x34, 0x12);

        ASSERT_FLAGS(m, 0);
        cr_assert_eq(m.len, 4);
}

Test(disasm, pop_ss_legacy_modes)
{
        for (size_t i = 0; i < NMODES(legacy_modes); i++) {
                struct disasm_insn in = DEC(legacy_modes[i], 0, 0x17);

                ASSERT_FLAGS(in, DISASM_POP_SS);
                cr_assert_eq(in.len, 1);
                ASSERT_TEXT(in, "pop");
                ASSERT_TEXT(in, "ss");
        }
        /* pop ds (1f) and pop es (07) do not shadow */
        ASSERT_FLAGS(DEC(16, 0, 0x1f), 0);
        ASSERT_FLAGS(DEC(32, 0, 0x07), 0);
}

Test(disasm, pop_ss_invalid_in_64bit)
{
        /*
         * 0x17 is #UD in 64-bit mode (SDM: POP SS "Invalid" in 64-bit mode):
         * decoded as a 1-byte DISASM_UD, never as an SS load.
         */
        struct disasm_insn in;
        int r = disasm_decode(d, 64, BYTES(0x17, 0x90), 2, 0, &in);

        cr_assert_eq(r, 0, "0x17 in 64-bit mode: %d", r);
        cr_assert_eq(in.flags, DISASM_UD, "0x17 decoded in 64-bit mode as \"%s\"", in.text);
        cr_assert_eq(in.len, 1);
}

Test(disasm, lss_is_not_mov_ss)
{
        /* 0F B2 /r: LSS r16, m16:16; 16 = dx, [disp16] */
        struct disasm_insn a = DEC(16, 0, 0x0f, 0xb2, 0x16, 0x34, 0x12);
        /* 32-bit: 0f b2 20 = lss esp, [eax] */
        struct disasm_insn b = DEC(32, 0, 0x0f, 0xb2, 0x20);
        /* 64-bit: 48 0f b2 20 = lss rsp, [rax] (m16:64) */
        struct disasm_insn c = DEC(64, 0, 0x48, 0x0f, 0xb2, 0x20);

        ASSERT_FLAGS(a, DISASM_LSS);
        ASSERT_FLAGS(b, DISASM_LSS);
        ASSERT_FLAGS(c, DISASM_LSS);
        cr_assert_eq(a.len, 5);
        cr_assert_eq(b.len, 3);
        cr_assert_eq(c.len, 4);
        ASSERT_TEXT(a, "lss");
}

Test(disasm, lss_register_form_is_invalid)
{
        /* LSS needs a memory operand: mod = 11 is #UD. */
        ASSERT_FLAGS(DEC(32, 0, 0x0f, 0xb2, 0xc0), DISASM_UD);
}

Test(disasm, popf_all_sizes)
{
        struct disasm_insn p16 = DEC(16, 0, 0x9d);
        struct disasm_insn p32 = DEC(32, 0, 0x9d);
        struct disasm_insn p64 = DEC(64, 0, 0x9d);
        struct disasm_insn p16in32 = DEC(32, 0, 0x66, 0x9d);
        struct disasm_insn p32in16 = DEC(16, 0, 0x66, 0x9d);

        ASSERT_FLAGS(p16, DISASM_POPF);
        ASSERT_FLAGS(p32, DISASM_POPF);
        ASSERT_FLAGS(p64, DISASM_POPF);
        ASSERT_FLAGS(p16in32, DISASM_POPF);
        ASSERT_FLAGS(p32in16, DISASM_POPF);
        cr_assert_eq(p16in32.len, 2);
        /* pushf (9c) is not popf */
        ASSERT_LACKS(DEC(32, 0, 0x9c), DISASM_POPF);
}

Test(disasm, iret_all_sizes)
{
        for (size_t i = 0; i < NMODES(all_modes); i++) {
                struct disasm_insn in = DEC(all_modes[i], 0, 0xcf);

                ASSERT_HAS(in, DISASM_IRET);
                ASSERT_LACKS(in, DISASM_JUMP | DISASM_CALL | DISASM_INT | DISASM_COND);
                cr_assert_eq(in.has_target, 0);
                cr_assert_eq(in.len, 1);
        }
        struct disasm_insn q = DEC(64, 0, 0x48, 0xcf); /* iretq */

        ASSERT_HAS(q, DISASM_IRET);
        cr_assert_eq(q.len, 2);
}

Test(disasm, software_interrupts)
{
        for (size_t i = 0; i < NMODES(all_modes); i++) {
                unsigned b = all_modes[i];
                struct disasm_insn n = DEC(b, 0, 0xcd, 0x30);
                struct disasm_insn i3 = DEC(b, 0, 0xcc);

                ASSERT_HAS(n, DISASM_INT);
                ASSERT_LACKS(n, DISASM_JUMP | DISASM_COND | DISASM_IRET | DISASM_RET);
                cr_assert_eq(n.len, 2);
                ASSERT_TEXT(n, "int");
                ASSERT_TEXT(n, "0x30");
                ASSERT_HAS(i3, DISASM_INT);
                cr_assert_eq(i3.len, 1);
                ASSERT_TEXT(i3, "int3");
        }
        /* into (ce) exists in 16/32-bit code only */
        ASSERT_HAS(DEC(32, 0, 0xce), DISASM_INT);
        ASSERT_HAS(DEC(16, 0, 0xce), DISASM_INT);
        ASSERT_FLAGS(DEC(64, 0, 0xce), DISASM_UD); /* into is #UD in 64-bit mode */
}

Test(disasm, fast_system_calls_are_not_software_interrupts)
{
        /*
         * SYSCALL and SYSENTER do not go through the IDT (SDM vol. 2: they load
         * CS/RIP from MSRs); DISASM_INT is documented as "int n, int3, into".
         */
        struct disasm_insn sc = DEC(64, 0, 0x0f, 0x05);
        struct disasm_insn se = DEC(32, 0, 0x0f, 0x34);

        // BUG: src/disasm/disasm.c:141 copies capstone's CS_GRP_INT, which capstone 4.0.2
        // also gives to syscall and sysenter: flags 0x2000 (DISASM_INT), expected 0.
        ASSERT_LACKS(sc, DISASM_INT);
        ASSERT_LACKS(se, DISASM_INT);
}

Test(disasm, fast_system_returns_are_not_iret)
{
        /* SYSRET/SYSEXIT pop no frame and do not unblock NMIs the way IRET does. */
        struct disasm_insn sr = DEC(64, 0, 0x48, 0x0f, 0x07);
        struct disasm_insn sx = DEC(32, 0, 0x0f, 0x35);

        // BUG: src/disasm/disasm.c:139 copies capstone's CS_GRP_IRET, which capstone 4.0.2
        // also gives to sysret and sysexit: flags 0x1000 (DISASM_IRET), expected 0.
        ASSERT_LACKS(sr, DISASM_IRET);
        ASSERT_LACKS(sx, DISASM_IRET);
}

/* ------------------------------------------------------------------------ */
/* Port I/O                                                                 */
/* ------------------------------------------------------------------------ */

Test(disasm, out_imm8_al)
{
        for (size_t i = 0; i < NMODES(all_modes); i++) {
                struct disasm_insn in = DEC(all_modes[i], 0x7c00, 0xe6, 0xe9);

                ASSERT_FLAGS(in, DISASM_OUT);
                cr_assert_eq(in.io_port, 0xe9);
                cr_assert_eq(in.io_size, 1);
                cr_assert_eq(in.len, 2);
                cr_assert_str_eq(in.text, "out 0xe9, al");
        }
}

Test(disasm, out_dx_port_is_unknown)
{
        struct disasm_insn in = DEC(32, 0, 0xee); /* out dx, al */

        ASSERT_FLAGS(in, DISASM_OUT);
        cr_assert_eq(in.io_port, -1);
        cr_assert_eq(in.io_size, 1);
        cr_assert_eq(in.len, 1);
}

Test(disasm, out_dx_operand_size)
{
        /* ef = out dx, eAX: 16 bits by default in 16-bit code, 32 in 32-bit; 66 swaps. */
        struct disasm_insn a = DEC(16, 0, 0xef);
        struct disasm_insn b = DEC(16, 0, 0x66, 0xef);
        struct disasm_insn c = DEC(32, 0, 0xef);
        struct disasm_insn e = DEC(32, 0, 0x66, 0xef);
        struct disasm_insn f = DEC(64, 0, 0xef);
        struct disasm_insn g = DEC(64, 0, 0x66, 0xef);

        cr_assert_eq(a.io_size, 2, "%s", a.text);
        cr_assert_eq(b.io_size, 4, "%s", b.text);
        cr_assert_eq(c.io_size, 4, "%s", c.text);
        cr_assert_eq(e.io_size, 2, "%s", e.text);
        cr_assert_eq(f.io_size, 4, "%s", f.text);
        cr_assert_eq(g.io_size, 2, "%s", g.text);
        cr_assert_eq(b.len, 2);
        cr_assert_eq(e.len, 2);
        ASSERT_FLAGS(a, DISASM_OUT);
        ASSERT_FLAGS(b, DISASM_OUT);
        cr_assert_eq(a.io_port, -1);
        cr_assert_eq(b.io_port, -1);
}

Test(disasm, out_imm8_operand_size)
{
        /* e7 ib = out imm8, eAX */
        struct disasm_insn a = DEC(16, 0, 0xe7, 0xe2);
        struct disasm_insn b = DEC(16, 0, 0x66, 0xe7, 0xe2);
        struct disasm_insn c = DEC(32, 0, 0xe7, 0xe2);

        cr_assert_eq(a.io_size, 2);
        cr_assert_eq(b.io_size, 4);
        cr_assert_eq(c.io_size, 4);
        cr_assert_eq(a.io_port, 0xe2);
        cr_assert_eq(b.io_port, 0xe2);
        cr_assert_eq(a.len, 2);
        cr_assert_eq(b.len, 3);
}

Test(disasm, in_instructions)
{
        struct disasm_insn a = DEC(16, 0, 0xe4, 0x61); /* in al, 0x61 */
        struct disasm_insn b = DEC(16, 0, 0xe5, 0x40); /* in ax, 0x40 */
        struct disasm_insn c = DEC(32, 0, 0xec);       /* in al, dx */
        struct disasm_insn e = DEC(32, 0, 0xed);       /* in eax, dx */
        struct disasm_insn f = DEC(16, 0, 0xed);       /* in ax, dx */

        ASSERT_FLAGS(a, DISASM_IN);
        cr_assert_eq(a.io_port, 0x61);
        cr_assert_eq(a.io_size, 1);
        cr_assert_eq(a.len, 2);
        ASSERT_TEXT(a, "in");
        ASSERT_FLAGS(b, DISASM_IN);
        cr_assert_eq(b.io_port, 0x40);
        cr_assert_eq(b.io_size, 2);
        ASSERT_FLAGS(c, DISASM_IN);
        cr_assert_eq(c.io_port, -1);
        cr_assert_eq(c.io_size, 1);
        ASSERT_FLAGS(e, DISASM_IN);
        cr_assert_eq(e.io_size, 4);
        cr_assert_eq(f.io_size, 2);
}

Test(disasm, string_out)
{
        struct disasm_insn a = DEC(32, 0, 0xf3, 0x6e); /* rep outsb */
        struct disasm_insn b = DEC(16, 0, 0x6f);       /* outsw */
        struct disasm_insn c = DEC(16, 0, 0x66, 0x6f); /* outsd */
        struct disasm_insn e = DEC(32, 0, 0x6f);       /* outsd */
        struct disasm_insn f = DEC(32, 0, 0x66, 0x6f); /* outsw */

        ASSERT_FLAGS(a, DISASM_OUT | DISASM_STRING | DISASM_REP);
        cr_assert_eq(a.io_size, 1);
        cr_assert_eq(a.io_port, -1);
        cr_assert_eq(a.len, 2);
        ASSERT_TEXT(a, "outsb");
        ASSERT_FLAGS(b, DISASM_OUT | DISASM_STRING);
        cr_assert_eq(b.io_size, 2, "%s", b.text);
        cr_assert_eq(c.io_size, 4, "%s", c.text);
        cr_assert_eq(e.io_size, 4, "%s", e.text);
        cr_assert_eq(f.io_size, 2, "%s", f.text);
}

Test(disasm, string_in)
{
        struct disasm_insn a = DEC(16, 0, 0x6c);       /* insb */
        struct disasm_insn b = DEC(16, 0, 0x6d);       /* insw */
        struct disasm_insn c = DEC(16, 0, 0x66, 0x6d); /* insd */
        struct disasm_insn e = DEC(32, 0, 0x6d);       /* insd */
        struct disasm_insn f = DEC(32, 0, 0x66, 0x6d); /* insw */
        struct disasm_insn g = DEC(64, 0, 0xf3, 0x6d); /* rep insd */

        ASSERT_FLAGS(a, DISASM_IN | DISASM_STRING);
        cr_assert_eq(a.io_size, 1);
        cr_assert_eq(a.io_port, -1);
        ASSERT_FLAGS(b, DISASM_IN | DISASM_STRING);
        cr_assert_eq(b.io_size, 2, "%s", b.text);
        cr_assert_eq(c.io_size, 4, "%s", c.text);
        cr_assert_eq(e.io_size, 4, "%s", e.text);
        cr_assert_eq(f.io_size, 2, "%s", f.text);
        cr_assert_eq(g.io_size, 4, "%s", g.text);
        ASSERT_FLAGS(g, DISASM_IN | DISASM_STRING | DISASM_REP);
}

/* ------------------------------------------------------------------------ */
/* Control flow                                                             */
/* ------------------------------------------------------------------------ */

#define ASSERT_TARGET(insn, want)                                                             \
        do {                                                                                  \
                cr_assert((insn).has_target, "%s: no target", (insn).text);                   \
                cr_assert_eq((insn).target, (uint64_t)(want), "%s: target %#llx, want %#llx", \
                             (insn).text, (unsigned long long)(insn).target,                  \
                             (unsigned long long)(want));                                     \
        } while (0)

Test(disasm, short_jmp)
{
        struct disasm_insn fwd = DEC(16, 0x1000, 0xeb, 0x10);
        struct disasm_insn back = DEC(32, 0x1000, 0xeb, 0xf0);
        struct disasm_insn self = DEC(64, 0xffffffff80001000ull, 0xeb, 0xfe);

        ASSERT_FLAGS(fwd, DISASM_JUMP);
        cr_assert_eq(fwd.len, 2);
        ASSERT_TARGET(fwd, 0x1000 + 2 + 0x10);
        ASSERT_FLAGS(back, DISASM_JUMP);
        ASSERT_TARGET(back, 0x1000 + 2 - 0x10);
        ASSERT_FLAGS(self, DISASM_JUMP);
        ASSERT_TARGET(self, 0xffffffff80001000ull);
}

Test(disasm, near_jmp)
{
        /* e9 rel16 in 16-bit code, rel32 in 32/64 */
        struct disasm_insn a = DEC(16, 0x7c00, 0xe9, 0x00, 0x01);
        struct disasm_insn b = DEC(32, 0x100000, 0xe9, 0x00, 0x01, 0x00, 0x00);
        struct disasm_insn c = DEC(64, 0xffffffff80000000ull, 0xe9, 0x00, 0xf0, 0xff, 0xff);

        ASSERT_FLAGS(a, DISASM_JUMP);
        cr_assert_eq(a.len, 3);
        ASSERT_TARGET(a, 0x7c00 + 3 + 0x100);
        ASSERT_FLAGS(b, DISASM_JUMP);
        cr_assert_eq(b.len, 5);
        ASSERT_TARGET(b, 0x100000 + 5 + 0x100);
        cr_assert_eq(c.len, 5);
        ASSERT_TARGET(c, 0xffffffff80000000ull + 5 - 0x1000);
}

Test(disasm, jmp_16bit_wraps_within_segment)
{
        /* IP is 16 bits: a forward jump past 0xffff wraps to the segment start. */
        struct disasm_insn a = DEC(16, 0xfffe, 0xeb, 0x10);
        struct disasm_insn b = DEC(16, 0xfff0, 0xe9, 0x20, 0x00);
        /* and a backward jump below 0 wraps to the top */
        struct disasm_insn c = DEC(16, 0x0010, 0xeb, 0x80);

        ASSERT_TARGET(a, (0xfffe + 2 + 0x10) & 0xffff);
        ASSERT_TARGET(b, (0xfff0 + 3 + 0x20) & 0xffff);
        ASSERT_TARGET(c, (0x0010 + 2 - 0x80) & 0xffff);
}

Test(disasm, call_16bit_wraps_within_segment)
{
        struct disasm_insn a = DEC(16, 0xfff0, 0xe8, 0x20, 0x00);

        ASSERT_HAS(a, DISASM_CALL);
        ASSERT_TARGET(a, (0xfff0 + 3 + 0x20) & 0xffff);
}

Test(disasm, jmp_32bit_wraps_at_4g)
{
        /* EIP is 32 bits in 32-bit code: the target wraps at 4 GiB. */
        struct disasm_insn a = DEC(32, 0xfffffff0ull, 0xe9, 0x20, 0x00, 0x00, 0x00);

        ASSERT_TARGET(a, (0xfffffff0ull + 5 + 0x20) & 0xffffffffull);
}

Test(disasm, jmp_operand_size_prefix_16bit_code)
{
        /*
         * 66 e9 rel32 in 16-bit code has a 32-bit operand size: SDM JMP, "IF
         * OperandSize = 32 THEN EIP <- tempEIP" -- no truncation to 16 bits.
         */
        struct disasm_insn a = DEC(16, 0x0100, 0x66, 0xe9, 0x00, 0x00, 0x01, 0x00);

        cr_assert_eq(a.len, 6);
        ASSERT_FLAGS(a, DISASM_JUMP);
        // BUG: src/disasm/disasm.c:185 masks every 16-bit-mode near target with 0xffff,
        // even when the operand size is 32 (0x66 prefix): expected 0x10106, got 0x106
        // (capstone itself computes 0x10106: its text reads "jmp 0x10106").
        ASSERT_TARGET(a, 0x0100 + 6 + 0x10000);
}

Test(disasm, jmp_operand_size_prefix_32bit_code)
{
        /* 66 e9 rel16 in 32-bit code: OperandSize = 16, "EIP <- tempEIP AND 0000FFFFH". */
        struct disasm_insn a = DEC(32, 0x12340, 0x66, 0xe9, 0x10, 0x00);

        cr_assert_eq(a.len, 4);
        ASSERT_FLAGS(a, DISASM_JUMP);
        ASSERT_TARGET(a, (0x12340 + 4 + 0x10) & 0xffff);
}

Test(disasm, jcc)
{
        struct disasm_insn a = DEC(16, 0x2000, 0x74, 0x05);                           /* je rel8 */
        struct disasm_insn b = DEC(16, 0x0100, 0x0f, 0x84, 0x00, 0x01);               /* je rel16 */
        struct disasm_insn c = DEC(32, 0x400000, 0x0f, 0x85, 0xfa, 0xff, 0xff, 0xff); /* jne */
        struct disasm_insn e = DEC(64, 0x1000, 0x7f, 0xfe);                           /* jg $ */

        ASSERT_FLAGS(a, DISASM_JUMP | DISASM_COND);
        ASSERT_TARGET(a, 0x2000 + 2 + 5);
        ASSERT_FLAGS(b, DISASM_JUMP | DISASM_COND);
        cr_assert_eq(b.len, 4);
        ASSERT_TARGET(b, 0x0100 + 4 + 0x100);
        ASSERT_FLAGS(c, DISASM_JUMP | DISASM_COND);
        cr_assert_eq(c.len, 6);
        ASSERT_TARGET(c, 0x400000 + 6 - 6);
        ASSERT_FLAGS(e, DISASM_JUMP | DISASM_COND);
        ASSERT_TARGET(e, 0x1000);
}

Test(disasm, jcxz_is_conditional)
{
        struct disasm_insn jcxz = DEC(16, 0x0600, 0xe3, 0x04);
        struct disasm_insn jecxz = DEC(32, 0x0600, 0xe3, 0x04);
        struct disasm_insn jrcxz = DEC(64, 0x0600, 0xe3, 0xfe);

        ASSERT_FLAGS(jcxz, DISASM_JUMP | DISASM_COND);
        ASSERT_TARGET(jcxz, 0x0606);
        ASSERT_FLAGS(jecxz, DISASM_JUMP | DISASM_COND);
        ASSERT_TARGET(jecxz, 0x0606);
        ASSERT_FLAGS(jrcxz, DISASM_JUMP | DISASM_COND);
        ASSERT_TARGET(jrcxz, 0x0600);
}

Test(disasm, loop_is_conditional)
{
        /*
         * LOOP/LOOPE/LOOPNE rel8 decrement eCX and jump or fall through: a
         * conditional direct jump (the header names loop under DISASM_COND).
         */
        struct disasm_insn loop = DEC(16, 0x0500, 0xe2, 0xfe);
        struct disasm_insn loope = DEC(32, 0x0500, 0xe1, 0x10);
        struct disasm_insn loopne = DEC(32, 0x0500, 0xe0, 0x10);
        struct disasm_insn loop64 = DEC(64, 0x0500, 0xe2, 0x04);

        // BUG: src/disasm/disasm.c:130 relies on capstone's CS_GRP_JUMP, which capstone
        // 4.0.2 does not give to loop/loope/loopne: flags are 0 and has_target 0
        // (expected DISASM_JUMP|DISASM_COND with target 0x500 / 0x512 / 0x512 / 0x506).
        ASSERT_FLAGS(loop, DISASM_JUMP | DISASM_COND);
        ASSERT_TARGET(loop, 0x0500);
        ASSERT_FLAGS(loope, DISASM_JUMP | DISASM_COND);
        ASSERT_TARGET(loope, 0x0512);
        ASSERT_FLAGS(loopne, DISASM_JUMP | DISASM_COND);
        ASSERT_TARGET(loopne, 0x0512);
        ASSERT_FLAGS(loop64, DISASM_JUMP | DISASM_COND);
        ASSERT_TARGET(loop64, 0x0506);
}

Test(disasm, call_rel)
{
        struct disasm_insn a = DEC(16, 0x7c00, 0xe8, 0x00, 0x01);
        struct disasm_insn b = DEC(32, 0x100000, 0xe8, 0xfb, 0xff, 0xff, 0xff);
        struct disasm_insn c = DEC(64, 0x401000, 0xe8, 0x10, 0x00, 0x00, 0x00);

        ASSERT_FLAGS(a, DISASM_CALL);
        cr_assert_eq(a.len, 3);
        ASSERT_TARGET(a, 0x7c00 + 3 + 0x100);
        ASSERT_FLAGS(b, DISASM_CALL);
        ASSERT_TARGET(b, 0x100000);
        ASSERT_FLAGS(c, DISASM_CALL);
        ASSERT_TARGET(c, 0x401000 + 5 + 0x10);
}

Test(disasm, indirect_call_has_no_target)
{
        struct disasm_insn a = DEC(32, 0, 0xff, 0xd0); /* call eax */

        ASSERT_FLAGS(a, DISASM_CALL);
        cr_assert_eq(a.has_target, 0);
}

Test(disasm, ret)
{
        for (size_t i = 0; i < NMODES(all_modes); i++) {
                struct disasm_insn a = DEC(all_modes[i], 0, 0xc3);
                struct disasm_insn b = DEC(all_modes[i], 0, 0xc2, 0x04, 0x00);

                ASSERT_FLAGS(a, DISASM_RET);
                cr_assert_eq(a.has_target, 0);
                cr_assert_eq(a.len, 1);
                ASSERT_FLAGS(b, DISASM_RET);
                cr_assert_eq(b.len, 3);
        }
        /* retf (cb) is a return too */
        ASSERT_HAS(DEC(16, 0, 0xcb), DISASM_RET);
}

Test(disasm, far_jmp_ptr16_16)
{
        /* ea iw iw: offset first, then the selector: jmp 0xf000:0x1000 */
        struct disasm_insn a = DEC(16, 0x7c00, 0xea, 0x00, 0x10, 0x00, 0xf0);

        ASSERT_FLAGS(a, DISASM_JUMP | DISASM_FAR);
        cr_assert_eq(a.len, 5);
        ASSERT_TARGET(a, 0x1000);
        cr_assert_eq(a.target_cs, 0xf000, "target_cs %#x", a.target_cs);
}

Test(disasm, far_jmp_ptr16_32)
{
        struct disasm_insn a = DEC(32, 0, 0xea, 0x78, 0x56, 0x34, 0x12, 0x08, 0x00);
        /* in 16-bit code with 66: ptr16:32, the 32-bit offset is not truncated */
        struct disasm_insn b = DEC(16, 0xfff0, 0x66, 0xea, 0x00, 0x00, 0x10, 0x00, 0x10, 0x00);
        /* in 32-bit code with 66: ptr16:16 */
        struct disasm_insn c = DEC(32, 0, 0x66, 0xea, 0x34, 0x12, 0x18, 0x00);

        ASSERT_FLAGS(a, DISASM_JUMP | DISASM_FAR);
        cr_assert_eq(a.len, 7);
        ASSERT_TARGET(a, 0x12345678);
        cr_assert_eq(a.target_cs, 0x08);
        cr_assert_eq(b.len, 8);
        ASSERT_TARGET(b, 0x100000);
        cr_assert_eq(b.target_cs, 0x10);
        cr_assert_eq(c.len, 6);
        ASSERT_TARGET(c, 0x1234);
        cr_assert_eq(c.target_cs, 0x18);
}

Test(disasm, far_call_ptr16_16)
{
        struct disasm_insn a = DEC(16, 0, 0x9a, 0x34, 0x12, 0x00, 0xc0);

        ASSERT_FLAGS(a, DISASM_CALL | DISASM_FAR);
        ASSERT_TARGET(a, 0x1234);
        cr_assert_eq(a.target_cs, 0xc000);
        cr_assert_eq(a.len, 5);
}

Test(disasm, far_direct_invalid_in_64bit)
{
        ASSERT_FLAGS(DEC(64, 0, 0xea, 0x00, 0x10, 0x00, 0x00, 0x08, 0x00), DISASM_UD);
        ASSERT_FLAGS(DEC(64, 0, 0x9a, 0x00, 0x10, 0x00, 0x00, 0x08, 0x00), DISASM_UD);
}

Test(disasm, indirect_jmp)
{
        struct disasm_insn a = DEC(16, 0, 0xff, 0xe0);             /* jmp ax */
        struct disasm_insn b = DEC(32, 0, 0xff, 0xe0);             /* jmp eax */
        struct disasm_insn c = DEC(64, 0, 0xff, 0xe0);             /* jmp rax */
        struct disasm_insn e = DEC(16, 0, 0xff, 0x26, 0x34, 0x12); /* jmp [0x1234] */
        struct disasm_insn f = DEC(16, 0, 0xff, 0x2e, 0x34, 0x12); /* jmp far [0x1234] */

        ASSERT_FLAGS(a, DISASM_JUMP);
        ASSERT_FLAGS(b, DISASM_JUMP);
        ASSERT_FLAGS(c, DISASM_JUMP);
        ASSERT_FLAGS(e, DISASM_JUMP);
        cr_assert_eq(a.has_target, 0);
        cr_assert_eq(b.has_target, 0);
        cr_assert_eq(c.has_target, 0);
        cr_assert_eq(e.has_target, 0);
        cr_assert_eq(e.len, 4);
        ASSERT_FLAGS(f, DISASM_JUMP | DISASM_FAR);
        cr_assert_eq(f.has_target, 0);
}

Test(disasm, ordinary_instructions_have_no_flags)
{
        ASSERT_FLAGS(DEC(16, 0, 0x90), 0);             /* nop */
        ASSERT_FLAGS(DEC(32, 0, 0x89, 0xd8), 0);       /* mov eax, ebx */
        ASSERT_FLAGS(DEC(64, 0, 0x48, 0x01, 0xc8), 0); /* add rax, rcx */
        ASSERT_FLAGS(DEC(16, 0, 0xb0, 0x66), 0);       /* mov al, 0x66 */
}

/* ------------------------------------------------------------------------ */
/* Lengths, bytes, text                                                     */
/* ------------------------------------------------------------------------ */

Test(disasm, lengths_and_bytes)
{
        static const struct {
                unsigned bits;
                uint8_t n;
                uint8_t b[15];
                const char *mnem;
        } cases[] = {
                { 16, 3, { 0xb8, 0x34, 0x12 }, "mov" },                    /* mov ax, imm16 */
                { 32, 5, { 0xb8, 0x78, 0x56, 0x34, 0x12 }, "mov" },        /* mov eax, imm32 */
                { 16, 6, { 0x66, 0xb8, 0x78, 0x56, 0x34, 0x12 }, "mov" },  /* mov eax, imm32 */
                { 64, 10, { 0x48, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8 }, "mov" }, /* movabs rax, imm64 */
                /* mov dword [esp+0x100], 0x12345678: opcode, modrm, sib, disp32, imm32 */
                { 32,
                  11,
                  { 0xc7, 0x84, 0x24, 0x00, 0x01, 0x00, 0x00, 0x78, 0x56, 0x34, 0x12 },
                  "mov" },
                /* lock add dword [rax+rbx*4+0x10], 1 */
                { 64, 6, { 0xf0, 0x83, 0x44, 0x98, 0x10, 0x01 }, "add" },
                { 16, 5, { 0x0f, 0xb2, 0x16, 0x34, 0x12 }, "lss" },
                { 32, 3, { 0x0f, 0x01, 0xc1 }, "vmcall" },
                /* es: addr32 mov eax, [eax+ebx*2+0x10] in 16-bit code */
                { 16, 7, { 0x26, 0x66, 0x67, 0x8b, 0x44, 0x58, 0x10 }, "mov" },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                uint8_t buf[32];
                size_t n = cases[i].n;

                /* trailing bytes after the instruction must not change its length */
                memset(buf, 0x90, sizeof(buf));
                memcpy(buf, cases[i].b, n);
                struct disasm_insn in = dec(cases[i].bits, 0x1000, buf, sizeof(buf));

                cr_assert_eq(in.len, n, "case %zu (%s): len %u, want %zu", i, in.text, in.len, n);
                cr_assert_arr_eq(in.bytes, cases[i].b, n, "case %zu: bytes differ", i);
                ASSERT_TEXT(in, cases[i].mnem);
        }
}

Test(disasm, fifteen_byte_limit)
{
        uint8_t buf[17];

        /* 14 operand-size prefixes + nop = 15 bytes: legal */
        memset(buf, 0x66, sizeof(buf));
        buf[14] = 0x90;
        struct disasm_insn ok = dec(32, 0, buf, 15);

        cr_assert_eq(ok.len, 15);
        /* 15 prefixes + nop = 16 bytes: #UD (instruction longer than 15 bytes) */
        buf[14] = 0x66;
        buf[15] = 0x90;
        cr_assert_eq(dec_err(32, buf, 16), -EINVAL);
}

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */

Test(disasm, empty_buffer)
{
        struct disasm_insn in;

        cr_assert_eq(disasm_decode(d, 32, BYTES(0x90), 0, 0, &in), -EINVAL);
        cr_assert_eq(disasm_decode(d, 16, BYTES(0xfb), 0, 0, &in), -EINVAL);
}

Test(disasm, truncated)
{
        cr_assert_eq(DEC_ERR(16, 0xe9), -EINVAL);                   /* jmp rel16: 3 bytes */
        cr_assert_eq(DEC_ERR(16, 0xb8), -EINVAL);                   /* mov ax, imm16: 3 bytes */
        cr_assert_eq(DEC_ERR(16, 0xe9, 0x00), -EINVAL);             /* 2 of 3 */
        cr_assert_eq(DEC_ERR(32, 0xe6), -EINVAL);                   /* out imm8, al: 2 bytes */
        cr_assert_eq(DEC_ERR(16, 0x66, 0xe7), -EINVAL);             /* 2 of 3 */
        cr_assert_eq(DEC_ERR(32, 0x0f), -EINVAL);                   /* escape alone */
        cr_assert_eq(DEC_ERR(16, 0x0f, 0xb2, 0x16, 0x34), -EINVAL); /* lss, 4 of 5 */
}

Test(disasm, invalid_bits)
{
        static const unsigned bad[] = { 0, 8, 15, 17, 128 };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                cr_assert_eq(dec_err(bad[i], BYTES(0x90, 0x90), 2), -EINVAL, "bits %u", bad[i]);
}

Test(disasm, invalid_opcodes)
{
        /* opcodes removed in 64-bit mode */
        cr_assert_eq(DEC_ERR(64, 0x06), -EINVAL); /* push es */
        cr_assert_eq(DEC_ERR(64, 0x60), -EINVAL); /* pusha */
        cr_assert_eq(DEC_ERR(64, 0x27), -EINVAL); /* daa */
}

/* ------------------------------------------------------------------------ */
/* disasm_is_io_insn                                                        */
/* ------------------------------------------------------------------------ */

Test(disasm, is_io_insn_immediate_port)
{
        struct disasm_insn out = DEC(32, 0, 0xe6, 0xe9); /* out 0xe9, al */

        cr_assert(disasm_is_io_insn(&out, 1, 0xe9, 1));
        cr_assert_not(disasm_is_io_insn(&out, 0, 0xe9, 1), "wrong direction");
        cr_assert_not(disasm_is_io_insn(&out, 1, 0xe9, 2), "wrong size");
        cr_assert_not(disasm_is_io_insn(&out, 1, 0xe9, 4), "wrong size");
        cr_assert_not(disasm_is_io_insn(&out, 1, 0xea, 1), "wrong port");
        cr_assert_not(disasm_is_io_insn(&out, 1, 0x3f8, 1), "wrong port");

        struct disasm_insn in = DEC(16, 0, 0xe5, 0x40); /* in ax, 0x40 */

        cr_assert(disasm_is_io_insn(&in, 0, 0x40, 2));
        cr_assert_not(disasm_is_io_insn(&in, 1, 0x40, 2));
        cr_assert_not(disasm_is_io_insn(&in, 0, 0x40, 1));
        cr_assert_not(disasm_is_io_insn(&in, 0, 0x41, 2));
}

Test(disasm, is_io_insn_dx_port_matches_any)
{
        struct disasm_insn out = DEC(32, 0, 0xee);        /* out dx, al */
        struct disasm_insn in = DEC(32, 0, 0xed);         /* in eax, dx */
        struct disasm_insn outs = DEC(16, 0, 0xf3, 0x6f); /* rep outsw */

        cr_assert(disasm_is_io_insn(&out, 1, 0xe9, 1));
        cr_assert(disasm_is_io_insn(&out, 1, 0x3f8, 1));
        cr_assert(disasm_is_io_insn(&out, 1, 0xffff, 1));
        cr_assert_not(disasm_is_io_insn(&out, 0, 0x3f8, 1), "wrong direction");
        cr_assert_not(disasm_is_io_insn(&out, 1, 0x3f8, 2), "wrong size");
        cr_assert(disasm_is_io_insn(&in, 0, 0xcfc, 4));
        cr_assert_not(disasm_is_io_insn(&in, 0, 0xcfc, 2));
        cr_assert(disasm_is_io_insn(&outs, 1, 0x1f0, 2));
        cr_assert_not(disasm_is_io_insn(&outs, 0, 0x1f0, 2));
        cr_assert_not(disasm_is_io_insn(&outs, 1, 0x1f0, 1));
}

Test(disasm, is_io_insn_rejects_non_io)
{
        struct disasm_insn nop = DEC(32, 0, 0x90);
        struct disasm_insn sti = DEC(32, 0, 0xfb);

        for (unsigned s = 0; s <= 4; s++) {
                cr_assert_not(disasm_is_io_insn(&nop, 1, 0xe9, s));
                cr_assert_not(disasm_is_io_insn(&nop, 0, 0xe9, s));
                cr_assert_not(disasm_is_io_insn(&sti, 1, 0xe9, s));
        }
}

/* ------------------------------------------------------------------------ */
/* disasm_io_candidates                                                     */
/* ------------------------------------------------------------------------ */

/*
 * Place the bytes flush against an inaccessible page, before or after them,
 * so that a read outside code[0..len) faults even inside capstone (which
 * ASan does not instrument).
 */
struct guarded {
        uint8_t *map;
        size_t maplen;
        uint8_t *p;
};

static struct guarded guarded_copy(const uint8_t *b, size_t n, int flush_end)
{
        size_t pg = (size_t)sysconf(_SC_PAGESIZE);
        size_t span = (n + pg - 1) / pg * pg;
        struct guarded g;

        if (!span)
                span = pg;
        g.maplen = span + 2 * pg;
        g.map = mmap(NULL, g.maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        cr_assert_neq(g.map, MAP_FAILED);
        cr_assert_eq(mprotect(g.map, pg, PROT_NONE), 0);
        cr_assert_eq(mprotect(g.map + pg + span, pg, PROT_NONE), 0);
        g.p = g.map + pg + (flush_end ? span - n : 0);
        memcpy(g.p, b, n);
        return g;
}

struct cands {
        struct disasm_io_site completed, pending;
};

static struct cands cands(unsigned bits, const uint8_t *b, size_t n, size_t at, uint64_t rip,
                          int out, unsigned port, unsigned size)
{
        struct cands c[2];

        for (int flush_end = 0; flush_end < 2; flush_end++) {
                struct guarded g = guarded_copy(b, n, flush_end);

                memset(&c[flush_end], 0xa5, sizeof(c[flush_end]));
                disasm_io_candidates(d, bits, g.p, n, at, rip, out, port, size,
                                     &c[flush_end].completed, &c[flush_end].pending);
                munmap(g.map, g.maplen);
        }
        for (int i = 0; i < 2; i++) {
                cr_assert(c[i].completed.found == 0 || c[i].completed.found == 1, "found is 0/1");
                cr_assert(c[i].pending.found == 0 || c[i].pending.found == 1, "found is 0/1");
        }
        /* where the buffer lies must not matter */
        cr_assert_eq(c[0].completed.found, c[1].completed.found);
        cr_assert_eq(c[0].pending.found, c[1].pending.found);
        if (c[0].completed.found)
                cr_assert_eq(c[0].completed.insn.addr, c[1].completed.insn.addr);
        if (c[0].pending.found)
                cr_assert_eq(c[0].pending.insn.addr, c[1].pending.insn.addr);
        return c[0];
}

#define CANDS(bits, at, rip, out, port, size, ...) \
        cands((bits), BYTES(__VA_ARGS__), NBYTES(__VA_ARGS__), (at), (rip), (out), (port), (size))

Test(disasm, io_candidates_completed)
{
        /* 0x1000: nop; nop; 0x1002: out 0xe9, al; 0x1004: nop (rip); nop */
        for (size_t i = 0; i < NMODES(all_modes); i++) {
                struct cands c = CANDS(all_modes[i], 4, 0x1004, 1, 0xe9, 1, 0x90, 0x90, 0xe6, 0xe9,
                                       0x90, 0x90);

                cr_assert(c.completed.found, "%u-bit: completed out not found", all_modes[i]);
                cr_assert_eq(c.completed.insn.addr, 0x1002);
                cr_assert_eq(c.completed.insn.len, 2);
                cr_assert_eq(c.completed.insn.io_port, 0xe9);
                ASSERT_FLAGS(c.completed.insn, DISASM_OUT);
                cr_assert_not(c.pending.found, "a nop at rip is not pending I/O");
        }
}

Test(disasm, io_candidates_pending)
{
        /* rip at the out; the bytes before it are nops */
        struct cands c = CANDS(32, 2, 0x1002, 1, 0xe9, 1, 0x90, 0x90, 0xe6, 0xe9, 0x90, 0x90);

        cr_assert(c.pending.found);
        cr_assert_eq(c.pending.insn.addr, 0x1002);
        cr_assert_eq(c.pending.insn.len, 2);
        cr_assert_eq(c.pending.insn.io_port, 0xe9);
        cr_assert_not(c.completed.found, "nop; nop does not end in an out");
}

Test(disasm, io_candidates_in)
{
        /* in al, 0x61 completed at 0x7c02 */
        struct cands c = CANDS(16, 2, 0x7c02, 0, 0x61, 1, 0xe4, 0x61, 0x90);

        cr_assert(c.completed.found);
        cr_assert_eq(c.completed.insn.addr, 0x7c00);
        ASSERT_FLAGS(c.completed.insn, DISASM_IN);
        cr_assert_not(c.pending.found);
}

Test(disasm, io_candidates_operand_size_prefix_16bit)
{
        /* 16-bit: 0x100 nop; 0x101: 66 e7 e2 = out 0xe2, eax (3 bytes); 0x104: nop */
        struct cands c4 = CANDS(16, 4, 0x104, 1, 0xe2, 4, 0x90, 0x66, 0xe7, 0xe2, 0x90);

        cr_assert(c4.completed.found);
        cr_assert_eq(c4.completed.insn.addr, 0x101, "found at %#llx",
                     (unsigned long long)c4.completed.insn.addr);
        cr_assert_eq(c4.completed.insn.len, 3);
        cr_assert_eq(c4.completed.insn.io_size, 4);
        cr_assert_not(c4.pending.found);

        /* size 2: only the 2-byte e7 e2 (out 0xe2, ax) reads as a 2-byte access */
        struct cands c2 = CANDS(16, 4, 0x104, 1, 0xe2, 2, 0x90, 0x66, 0xe7, 0xe2, 0x90);

        cr_assert(c2.completed.found);
        cr_assert_eq(c2.completed.insn.addr, 0x102);
        cr_assert_eq(c2.completed.insn.len, 2);
        cr_assert_eq(c2.completed.insn.io_size, 2);

        /* size 1: neither reading is a byte access */
        struct cands c1 = CANDS(16, 4, 0x104, 1, 0xe2, 1, 0x90, 0x66, 0xe7, 0xe2, 0x90);

        cr_assert_not(c1.completed.found);
}

Test(disasm, io_candidates_operand_size_prefix_32bit)
{
        /* 32-bit: e7 e2 is out 0xe2, eax and 66 e7 e2 is out 0xe2, ax */
        struct cands c4 = CANDS(32, 4, 0x104, 1, 0xe2, 4, 0x90, 0x66, 0xe7, 0xe2, 0x90);
        struct cands c2 = CANDS(32, 4, 0x104, 1, 0xe2, 2, 0x90, 0x66, 0xe7, 0xe2, 0x90);

        cr_assert(c4.completed.found);
        cr_assert_eq(c4.completed.insn.addr, 0x102);
        cr_assert_eq(c4.completed.insn.len, 2);
        cr_assert(c2.completed.found);
        cr_assert_eq(c2.completed.insn.addr, 0x101);
        cr_assert_eq(c2.completed.insn.len, 3);
}

Test(disasm, io_candidates_immediate_0x66_before_out)
{
        /* 0x500: b0 66 = mov al, 0x66; 0x502: e6 e2 = out 0xe2, al; 0x504: nop */
        for (size_t i = 0; i < NMODES(all_modes); i++) {
                struct cands c =
                        CANDS(all_modes[i], 4, 0x504, 1, 0xe2, 1, 0xb0, 0x66, 0xe6, 0xe2, 0x90);

                cr_assert(c.completed.found);
                cr_assert_eq(c.completed.insn.addr, 0x502, "%u-bit: found at %#llx", all_modes[i],
                             (unsigned long long)c.completed.insn.addr);
                cr_assert_eq(c.completed.insn.len, 2);
                cr_assert_arr_eq(c.completed.insn.bytes, BYTES(0xe6, 0xe2), 2);
        }
}

Test(disasm, io_candidates_mismatch)
{
        /* out 0xe9, al completed: asking for IN, another port or another size finds nothing */
        struct cands dir = CANDS(32, 2, 0x1002, 0, 0xe9, 1, 0xe6, 0xe9, 0xe6, 0xe9);
        struct cands port = CANDS(32, 2, 0x1002, 1, 0xea, 1, 0xe6, 0xe9, 0xe6, 0xe9);
        struct cands size = CANDS(32, 2, 0x1002, 1, 0xe9, 2, 0xe6, 0xe9, 0xe6, 0xe9);

        cr_assert_not(dir.completed.found);
        cr_assert_not(dir.pending.found);
        cr_assert_not(port.completed.found);
        cr_assert_not(port.pending.found);
        cr_assert_not(size.completed.found);
        cr_assert_not(size.pending.found);

        /* the same bytes with the right port: both readings hold */
        struct cands both = CANDS(32, 2, 0x1002, 1, 0xe9, 1, 0xe6, 0xe9, 0xe6, 0xe9);

        cr_assert(both.completed.found);
        cr_assert_eq(both.completed.insn.addr, 0x1000);
        cr_assert(both.pending.found);
        cr_assert_eq(both.pending.insn.addr, 0x1002);
}

Test(disasm, io_candidates_at_zero)
{
        /* no bytes before rip: only the pending reading is possible */
        struct cands c = CANDS(32, 0, 0x2000, 1, 0xe9, 1, 0xe6, 0xe9);

        cr_assert(c.pending.found);
        cr_assert_eq(c.pending.insn.addr, 0x2000);
        cr_assert_not(c.completed.found);
}

Test(disasm, io_candidates_at_end)
{
        /* no bytes at or after rip: only the completed reading is possible */
        struct cands c = CANDS(32, 2, 0x2002, 1, 0xe9, 1, 0xe6, 0xe9);

        cr_assert(c.completed.found);
        cr_assert_eq(c.completed.insn.addr, 0x2000);
        cr_assert_not(c.pending.found);
}

Test(disasm, io_candidates_truncated_pending)
{
        /* only the first byte of the out is available at rip */
        struct cands c = CANDS(32, 1, 0x2001, 1, 0xe9, 1, 0x90, 0xe6);

        cr_assert_not(c.pending.found);
        cr_assert_not(c.completed.found);
}

Test(disasm, io_candidates_long_prefix_run)
{
        /* 20 nops then out dx, al: the backward scan is limited to 15 bytes and finds the 1-byte
         * out */
        uint8_t buf[24];

        memset(buf, 0x90, sizeof(buf));
        buf[20] = 0xee;
        struct cands c = cands(32, buf, sizeof(buf), 21, 0x3015, 1, 0x3f8, 1);

        cr_assert(c.completed.found);
        cr_assert_eq(c.completed.insn.addr, 0x3014);
        cr_assert_eq(c.completed.insn.len, 1);
        cr_assert_not(c.pending.found);
}

/* ------------------------------------------------------------------------ */
/* The byte classifier: every instruction the shadow checker relies on      */
/* ------------------------------------------------------------------------ */

/*
 * One expectation.  bits 0 means "the same in 16-, 32- and 64-bit code".
 * Expected lengths and targets follow from the SDM encodings: prefixes, the
 * opcode, ModRM/SIB/displacement under the address size, and the immediate
 * under the operand size; near targets wrap at the operand size, which is
 * always 64 for near branches in 64-bit code (Intel: 0x66 is ignored).
 */
struct want {
        unsigned bits;
        uint64_t addr;
        uint8_t n;
        uint8_t b[15];
        uint8_t len;
        uint32_t flags;
        uint8_t tgt; /* has a direct target */
        uint64_t target;
        uint16_t cs;
        uint16_t vec1; /* int_vector + 1; 0: -1 */
        uint8_t io_size;
        const char *what;
};

#define W(bits_, what_, len_, flags_, ...)                                  \
        .bits = (bits_), .what = (what_), .len = (len_), .flags = (flags_), \
        .n = NBYTES(__VA_ARGS__), .b = { __VA_ARGS__ }
#define TGT(t)     .tgt = 1, .target = (t)
#define VEC(v)     .vec1 = (uint16_t)((v) + 1)
#define IOSIZE(sz) .io_size = (sz)

static const struct want shadow_cases[] = {
        /* STI, CLI, HLT with prefixes that do not change them */
        { W(0, "sti", 1, DISASM_STI, 0xfb) },
        { W(0, "cli", 1, DISASM_CLI, 0xfa) },
        { W(0, "hlt", 1, DISASM_HLT, 0xf4) },
        { W(0, "66 sti", 2, DISASM_STI, 0x66, 0xfb) },
        { W(0, "cs sti", 2, DISASM_STI, 0x2e, 0xfb) },
        { W(0, "segments sti", 6, DISASM_STI, 0x26, 0x64, 0x65, 0x36, 0x3e, 0xfb) },
        { W(0, "rep sti", 2, DISASM_STI, 0xf3, 0xfb) },
        { W(0, "repne cli", 2, DISASM_CLI, 0xf2, 0xfa) },
        { W(0, "67 hlt", 2, DISASM_HLT, 0x67, 0xf4) },
        { W(64, "rex.w sti", 2, DISASM_STI, 0x48, 0xfb) },
        { W(64, "rex 66 sti (REX ignored)", 3, DISASM_STI, 0x40, 0x66, 0xfb) },
        { W(64, "66 rex.b cli", 3, DISASM_CLI, 0x66, 0x41, 0xfa) },
        /* 40-4f are inc/dec outside 64-bit code: not a prefix of the sti */
        { W(32, "inc eax; sti", 1, 0, 0x40, 0xfb) },
        { W(16, "dec ax; sti", 1, 0, 0x48, 0xfb) },
        { W(0, "lock sti", 2, DISASM_UD, 0xf0, 0xfb) },
        { W(0, "lock cli", 2, DISASM_UD, 0xf0, 0xfa) },
        { W(0, "lock hlt", 2, DISASM_UD, 0xf0, 0xf4) },
        { W(0, "66 lock sti", 3, DISASM_UD, 0x66, 0xf0, 0xfb) },
        { W(64, "lock rex sti", 3, DISASM_UD, 0xf0, 0x48, 0xfb) },

        /* MOV SS, r/m16 (8e /2) */
        { W(0, "mov ss, ax", 2, DISASM_MOV_SS, 0x8e, 0xd0) },
        { W(0, "66 mov ss, ax", 3, DISASM_MOV_SS, 0x66, 0x8e, 0xd0) },
        { W(0, "cs mov ss, ax", 3, DISASM_MOV_SS, 0x2e, 0x8e, 0xd0) },
        { W(64, "rex.r mov ss, ax (REX.R ignored)", 3, DISASM_MOV_SS, 0x44, 0x8e, 0xd0) },
        { W(64, "rex.w mov ss, ax", 3, DISASM_MOV_SS, 0x48, 0x8e, 0xd0) },
        { W(64, "rex.b mov ss, r8w", 3, DISASM_MOV_SS, 0x41, 0x8e, 0xd0) },
        { W(64, "rex.wrxb mov ss, r8w", 3, DISASM_MOV_SS, 0x4f, 0x8e, 0xd0) },
        { W(64, "66 rex.r mov ss", 4, DISASM_MOV_SS, 0x66, 0x44, 0x8e, 0xd0) },
        { W(64, "rex.r 66 mov ss", 4, DISASM_MOV_SS, 0x44, 0x66, 0x8e, 0xd0) },
        { W(16, "mov ss, [disp16]", 4, DISASM_MOV_SS, 0x8e, 0x16, 0x34, 0x12) },
        { W(16, "cs mov ss, [disp16]", 5, DISASM_MOV_SS, 0x2e, 0x8e, 0x16, 0x34, 0x12) },
        { W(16, "mov ss, [bp+disp8]", 3, DISASM_MOV_SS, 0x8e, 0x56, 0x08) },
        { W(16, "mov ss, [bp+disp16]", 4, DISASM_MOV_SS, 0x8e, 0x96, 0x34, 0x12) },
        { W(16, "mov ss, [si]", 2, DISASM_MOV_SS, 0x8e, 0x14) },
        { W(32, "67: 16-bit addressing [disp16]", 5, DISASM_MOV_SS, 0x67, 0x8e, 0x16, 0x34, 0x12) },
        { W(16, "67: SIB [esp]", 4, DISASM_MOV_SS, 0x67, 0x8e, 0x14, 0x24) },
        { W(16, "67: [disp32]", 7, DISASM_MOV_SS, 0x67, 0x8e, 0x15, 0x78, 0x56, 0x34, 0x12) },
        { W(32, "mov ss, [eax]", 2, DISASM_MOV_SS, 0x8e, 0x10) },
        { W(32, "SIB [esp]", 3, DISASM_MOV_SS, 0x8e, 0x14, 0x24) },
        { W(32, "SIB [esp+disp8]", 4, DISASM_MOV_SS, 0x8e, 0x54, 0x24, 0x08) },
        { W(32, "SIB [esp+disp32]", 7, DISASM_MOV_SS, 0x8e, 0x94, 0x24, 0x00, 0x01, 0x00, 0x00) },
        { W(32, "SIB no base, no index [disp32]", 7, DISASM_MOV_SS, 0x8e, 0x14, 0x25, 0x78, 0x56,
            0x34, 0x12) },
        { W(32, "SIB no base [eax*4+disp32]", 7, DISASM_MOV_SS, 0x8e, 0x14, 0x85, 0x00, 0x10, 0x00,
            0x00) },
        { W(32, "[disp32]", 6, DISASM_MOV_SS, 0x8e, 0x15, 0x78, 0x56, 0x34, 0x12) },
        { W(32, "[ebp+disp8]", 3, DISASM_MOV_SS, 0x8e, 0x55, 0x08) },
        { W(64, "rip-relative", 6, DISASM_MOV_SS, 0x8e, 0x15, 0x00, 0x01, 0x00, 0x00) },
        { W(64, "67 eip-relative", 7, DISASM_MOV_SS, 0x67, 0x8e, 0x15, 0x00, 0x01, 0x00, 0x00) },
        { W(64, "rex.x SIB", 4, DISASM_MOV_SS, 0x42, 0x8e, 0x14, 0x24) },
        { W(64, "rex.wb [r12+8]", 5, DISASM_MOV_SS, 0x49, 0x8e, 0x54, 0x24, 0x08) },
        { W(64, "gs rex.w [rsp+disp32]", 9, DISASM_MOV_SS, 0x65, 0x48, 0x8e, 0x94, 0x24, 0x00, 0x01,
            0x00, 0x00) },
        /* other segment registers load without a shadow */
        { W(0, "mov ds, ax", 2, 0, 0x8e, 0xd8) },
        { W(0, "mov es, ax", 2, 0, 0x8e, 0xc0) },
        { W(0, "mov fs, ax", 2, 0, 0x8e, 0xe0) },
        { W(0, "mov gs, ax", 2, 0, 0x8e, 0xe8) },
        { W(64, "rex.r mov ds, ax", 3, 0, 0x44, 0x8e, 0xd8) },
        { W(16, "mov es, [disp16]", 4, 0, 0x8e, 0x06, 0x34, 0x12) },
        /* 8e /1 (CS), /6, /7 and LOCK: #UD */
        { W(0, "mov cs, ax", 2, DISASM_UD, 0x8e, 0xc8) },
        { W(0, "8e /6", 2, DISASM_UD, 0x8e, 0xf0) },
        { W(0, "8e /7", 2, DISASM_UD, 0x8e, 0xf8) },
        { W(16, "mov cs, [disp16]", 4, DISASM_UD, 0x8e, 0x0e, 0x34, 0x12) },
        { W(64, "rex.r mov cs (not cs+8)", 3, DISASM_UD, 0x44, 0x8e, 0xc8) },
        { W(0, "lock mov ss, ax", 3, DISASM_UD, 0xf0, 0x8e, 0xd0) },
        { W(16, "lock mov ss, [disp16]", 5, DISASM_UD, 0xf0, 0x8e, 0x16, 0x34, 0x12) },

        /* POP SS */
        { W(16, "pop ss", 1, DISASM_POP_SS, 0x17) },
        { W(32, "pop ss", 1, DISASM_POP_SS, 0x17) },
        { W(16, "66 pop ss", 2, DISASM_POP_SS, 0x66, 0x17) },
        { W(32, "es pop ss", 2, DISASM_POP_SS, 0x26, 0x17) },
        { W(32, "66 ds pop ss", 3, DISASM_POP_SS, 0x66, 0x3e, 0x17) },
        { W(64, "pop ss in 64-bit", 1, DISASM_UD, 0x17) },
        { W(64, "rex.w pop ss in 64-bit", 2, DISASM_UD, 0x48, 0x17) },
        { W(64, "66 pop ss in 64-bit", 2, DISASM_UD, 0x66, 0x17) },
        { W(32, "lock pop ss", 2, DISASM_UD, 0xf0, 0x17) },

        /* LSS: memory only */
        { W(16, "lss dx, [disp16]", 5, DISASM_LSS, 0x0f, 0xb2, 0x16, 0x34, 0x12) },
        { W(32, "66 lss sp, [eax]", 4, DISASM_LSS, 0x66, 0x0f, 0xb2, 0x20) },
        { W(32, "lss esp, [esp]", 4, DISASM_LSS, 0x0f, 0xb2, 0x24, 0x24) },
        { W(64, "lss eax, [rip]", 7, DISASM_LSS, 0x0f, 0xb2, 0x05, 0x00, 0x00, 0x00, 0x00) },
        { W(32, "lss register", 3, DISASM_UD, 0x0f, 0xb2, 0xc0) },
        { W(64, "rex.w lss register", 4, DISASM_UD, 0x48, 0x0f, 0xb2, 0xc0) },
        { W(16, "lock lss", 6, DISASM_UD, 0xf0, 0x0f, 0xb2, 0x16, 0x34, 0x12) },

        /* POPF, IRET */
        { W(0, "popf", 1, DISASM_POPF, 0x9d) },
        { W(0, "66 popf", 2, DISASM_POPF, 0x66, 0x9d) },
        { W(64, "rex.w popfq", 2, DISASM_POPF, 0x48, 0x9d) },
        { W(0, "lock popf", 2, DISASM_UD, 0xf0, 0x9d) },
        { W(0, "iret", 1, DISASM_IRET, 0xcf) },
        { W(0, "66 iret", 2, DISASM_IRET, 0x66, 0xcf) },
        { W(64, "iretq", 2, DISASM_IRET, 0x48, 0xcf) },
        { W(64, "66 iretq", 3, DISASM_IRET, 0x66, 0x48, 0xcf) },
        { W(0, "lock iret", 2, DISASM_UD, 0xf0, 0xcf) },

        /* software interrupts */
        { W(0, "int 0x30", 2, DISASM_INT, 0xcd, 0x30), VEC(0x30) },
        { W(0, "int 3 (long form)", 2, DISASM_INT, 0xcd, 0x03), VEC(3) },
        { W(0, "int 0", 2, DISASM_INT, 0xcd, 0x00), VEC(0) },
        { W(0, "int 0xff", 2, DISASM_INT, 0xcd, 0xff), VEC(0xff) },
        { W(0, "66 int 0x21", 3, DISASM_INT, 0x66, 0xcd, 0x21), VEC(0x21) },
        { W(0, "int3", 1, DISASM_INT, 0xcc), VEC(3) },
        { W(0, "int1", 1, DISASM_INT, 0xf1), VEC(1) },
        { W(16, "into", 1, DISASM_INT | DISASM_COND, 0xce), VEC(4) },
        { W(32, "into", 1, DISASM_INT | DISASM_COND, 0xce), VEC(4) },
        { W(64, "into in 64-bit", 1, DISASM_UD, 0xce) },
        { W(64, "rex.w into in 64-bit", 2, DISASM_UD, 0x48, 0xce) },
        { W(0, "lock int3", 2, DISASM_UD, 0xf0, 0xcc) },
        { W(0, "lock int 0x30", 3, DISASM_UD, 0xf0, 0xcd, 0x30) },

        /* direct near jumps and calls */
        { W(16, "jmp rel8", 2, DISASM_JUMP, 0xeb, 0x10), .addr = 0x100, TGT(0x112) },
        { W(32, "jmp rel8 back", 2, DISASM_JUMP, 0xeb, 0xf0), .addr = 0x100, TGT(0xf2) },
        { W(64, "rex.w jmp $", 3, DISASM_JUMP, 0x48, 0xeb, 0xfd), .addr = 0x100, TGT(0x100) },
        { W(16, "66 jmp rel8: 32-bit IP, no wrap", 3, DISASM_JUMP, 0x66, 0xeb, 0x10),
          .addr = 0xfffe, TGT(0xfffe + 3 + 0x10) },
        { W(32, "66 jmp rel8: 16-bit IP wraps", 3, DISASM_JUMP, 0x66, 0xeb, 0x10), .addr = 0x1fff0,
          TGT((0x1fff0 + 3 + 0x10) & 0xffff) },
        { W(32, "66 jmp rel16 wraps", 4, DISASM_JUMP, 0x66, 0xe9, 0x10, 0x00), .addr = 0x1fff0,
          TGT((0x1fff0 + 4 + 0x10) & 0xffff) },
        { W(16, "jmp rel16 wraps", 3, DISASM_JUMP, 0xe9, 0x20, 0x00), .addr = 0xfff0,
          TGT((0xfff0 + 3 + 0x20) & 0xffff) },
        { W(16, "66 jmp rel32", 6, DISASM_JUMP, 0x66, 0xe9, 0x00, 0x00, 0x01, 0x00), .addr = 0x100,
          TGT(0x100 + 6 + 0x10000) },
        { W(32, "jmp rel32 wraps at 4G", 5, DISASM_JUMP, 0xe9, 0x20, 0x00, 0x00, 0x00),
          .addr = 0xfffffff0ull, TGT((0xfffffff0ull + 5 + 0x20) & 0xffffffffull) },
        { W(64, "66 jmp: still rel32 in 64-bit", 6, DISASM_JUMP, 0x66, 0xe9, 0x00, 0x01, 0x00,
            0x00),
          .addr = 0x1000, TGT(0x1000 + 6 + 0x100) },
        { W(64, "jmp rel32 negative", 5, DISASM_JUMP, 0xe9, 0x00, 0x00, 0x00, 0x80),
          .addr = 0xffffffff80000000ull, TGT(0xffffffff80000005ull - 0x80000000ull) },
        { W(16, "66 je rel32", 7, DISASM_JUMP | DISASM_COND, 0x66, 0x0f, 0x84, 0x00, 0x01, 0x00,
            0x00),
          .addr = 0x100, TGT(0x100 + 7 + 0x100) },
        { W(32, "66 jne rel16 wraps", 5, DISASM_JUMP | DISASM_COND, 0x66, 0x0f, 0x85, 0x10, 0x00),
          .addr = 0x12340, TGT((0x12340 + 5 + 0x10) & 0xffff) },
        { W(64, "66 je: still rel32 in 64-bit", 7, DISASM_JUMP | DISASM_COND, 0x66, 0x0f, 0x84,
            0x10, 0x00, 0x00, 0x00),
          .addr = 0x1000, TGT(0x1000 + 7 + 0x10) },
        { W(64, "hinted je rel8", 3, DISASM_JUMP | DISASM_COND, 0x2e, 0x74, 0x10), .addr = 0x1000,
          TGT(0x1013) },
        { W(32, "hinted je rel32", 7, DISASM_JUMP | DISASM_COND, 0x3e, 0x0f, 0x84, 0x00, 0x01, 0x00,
            0x00),
          .addr = 0x1000, TGT(0x1000 + 7 + 0x100) },
        { W(32, "jcxz (67)", 3, DISASM_JUMP | DISASM_COND, 0x67, 0xe3, 0x04), .addr = 0x600,
          TGT(0x607) },
        { W(64, "jecxz (67)", 3, DISASM_JUMP | DISASM_COND, 0x67, 0xe3, 0x04), .addr = 0x600,
          TGT(0x607) },
        { W(16, "66 jcxz", 3, DISASM_JUMP | DISASM_COND, 0x66, 0xe3, 0x04), .addr = 0x600,
          TGT(0x607) },
        { W(16, "loopne $", 2, DISASM_JUMP | DISASM_COND, 0xe0, 0xfe), .addr = 0x500, TGT(0x500) },
        { W(32, "loope", 2, DISASM_JUMP | DISASM_COND, 0xe1, 0x10), .addr = 0x500, TGT(0x512) },
        { W(64, "loop", 2, DISASM_JUMP | DISASM_COND, 0xe2, 0x04), .addr = 0x500, TGT(0x506) },
        { W(32, "67 loop", 3, DISASM_JUMP | DISASM_COND, 0x67, 0xe2, 0xfd), .addr = 0x500,
          TGT(0x500) },
        { W(16, "loop wraps below 0", 2, DISASM_JUMP | DISASM_COND, 0xe2, 0x80), .addr = 0x10,
          TGT((0x10 + 2 - 0x80) & 0xffff) },
        { W(16, "call rel16 wraps", 3, DISASM_CALL, 0xe8, 0x20, 0x00), .addr = 0xfff0,
          TGT((0xfff0 + 3 + 0x20) & 0xffff) },
        { W(32, "66 call rel16", 4, DISASM_CALL, 0x66, 0xe8, 0x00, 0x01), .addr = 0x1000,
          TGT(0x1104) },
        { W(64, "call rel32", 5, DISASM_CALL, 0xe8, 0x10, 0x00, 0x00, 0x00), .addr = 0x401000,
          TGT(0x401015) },
        { W(64, "66 call: still rel32 in 64-bit", 6, DISASM_CALL, 0x66, 0xe8, 0x10, 0x00, 0x00,
            0x00),
          .addr = 0x401000, TGT(0x401016) },
        { W(0, "lock jmp rel8", 3, DISASM_UD, 0xf0, 0xeb, 0x10) },

        /* indirect jumps and calls (ff /2 /3 /4 /5) */
        { W(16, "call ax", 2, DISASM_CALL, 0xff, 0xd0) },
        { W(32, "call [disp32]", 6, DISASM_CALL, 0xff, 0x15, 0x00, 0x10, 0x00, 0x00) },
        { W(64, "call [rip]", 6, DISASM_CALL, 0xff, 0x15, 0x00, 0x10, 0x00, 0x00) },
        { W(64, "call r11", 3, DISASM_CALL, 0x41, 0xff, 0xd3) },
        { W(32, "call [esp]", 3, DISASM_CALL, 0xff, 0x14, 0x24) },
        { W(16, "lcall [disp16]", 4, DISASM_CALL | DISASM_FAR, 0xff, 0x1e, 0x34, 0x12) },
        { W(32, "lcall [disp32]", 6, DISASM_CALL | DISASM_FAR, 0xff, 0x1d, 0x00, 0x10, 0x00,
            0x00) },
        { W(64, "rex.w lcall [rax]", 3, DISASM_CALL | DISASM_FAR, 0x48, 0xff, 0x18) },
        { W(0, "lcall register", 2, DISASM_UD, 0xff, 0xd8) },
        { W(0, "jmp ax", 2, DISASM_JUMP, 0xff, 0xe0) },
        { W(32, "jmp [esp]", 3, DISASM_JUMP, 0xff, 0x24, 0x24) },
        { W(64, "jmp [rip]", 6, DISASM_JUMP, 0xff, 0x25, 0x00, 0x00, 0x00, 0x00) },
        { W(64, "jmp r11", 3, DISASM_JUMP, 0x41, 0xff, 0xe3) },
        { W(16, "ljmp [disp16]", 4, DISASM_JUMP | DISASM_FAR, 0xff, 0x2e, 0x34, 0x12) },
        { W(32, "ljmp [disp32]", 6, DISASM_JUMP | DISASM_FAR, 0xff, 0x2d, 0x00, 0x10, 0x00, 0x00) },
        { W(0, "ljmp register", 2, DISASM_UD, 0xff, 0xe8) },
        { W(0, "ff /7", 2, DISASM_UD, 0xff, 0xf8) },
        { W(0, "lock call ax", 3, DISASM_UD, 0xf0, 0xff, 0xd0) },
        { W(0, "lock jmp ax", 3, DISASM_UD, 0xf0, 0xff, 0xe0) },
        { W(32, "inc eax (ff /0) is not ours", 2, 0, 0xff, 0xc0) },
        { W(32, "lock inc [eax] is legal", 3, 0, 0xf0, 0xff, 0x00) },

        /* far direct jumps and calls */
        { W(16, "ljmp ptr16:16", 5, DISASM_JUMP | DISASM_FAR, 0xea, 0x00, 0x10, 0x00, 0xf0),
          TGT(0x1000), .cs = 0xf000 },
        { W(32, "ljmp ptr16:32", 7, DISASM_JUMP | DISASM_FAR, 0xea, 0x78, 0x56, 0x34, 0x12, 0x08,
            0x00),
          TGT(0x12345678), .cs = 0x08 },
        { W(16, "66 ljmp ptr16:32", 8, DISASM_JUMP | DISASM_FAR, 0x66, 0xea, 0x00, 0x00, 0x10, 0x00,
            0x10, 0x00),
          .addr = 0xfff0, TGT(0x100000), .cs = 0x10 },
        { W(32, "66 ljmp ptr16:16", 6, DISASM_JUMP | DISASM_FAR, 0x66, 0xea, 0x34, 0x12, 0x18,
            0x00),
          TGT(0x1234), .cs = 0x18 },
        { W(16, "lcall ptr16:16", 5, DISASM_CALL | DISASM_FAR, 0x9a, 0x34, 0x12, 0x00, 0xc0),
          TGT(0x1234), .cs = 0xc000 },
        { W(32, "lcall ptr16:32", 7, DISASM_CALL | DISASM_FAR, 0x9a, 0x78, 0x56, 0x34, 0x12, 0x08,
            0x00),
          TGT(0x12345678), .cs = 0x08 },
        { W(64, "ljmp ptr in 64-bit", 7, DISASM_UD, 0xea, 0x00, 0x10, 0x00, 0x00, 0x08, 0x00) },
        { W(64, "lcall ptr in 64-bit", 7, DISASM_UD, 0x9a, 0x00, 0x10, 0x00, 0x00, 0x08, 0x00) },
        { W(64, "66 ljmp ptr in 64-bit", 6, DISASM_UD, 0x66, 0xea, 0x00, 0x10, 0x08, 0x00) },
        { W(16, "lock ljmp ptr", 6, DISASM_UD, 0xf0, 0xea, 0x00, 0x10, 0x00, 0xf0) },

        /* returns */
        { W(0, "ret", 1, DISASM_RET, 0xc3) },
        { W(0, "ret imm16", 3, DISASM_RET, 0xc2, 0x04, 0x00) },
        { W(0, "retf", 1, DISASM_RET, 0xcb) },
        { W(0, "retf imm16", 3, DISASM_RET, 0xca, 0x08, 0x00) },
        { W(0, "66 ret", 2, DISASM_RET, 0x66, 0xc3) },
        { W(64, "rex.w retf", 2, DISASM_RET, 0x48, 0xcb) },
        { W(64, "66 rex.w ret imm16: the immediate stays 16 bits", 5, DISASM_RET, 0x66, 0x48, 0xc2,
            0x88, 0xa9) },
        { W(0, "lock ret", 2, DISASM_UD, 0xf0, 0xc3) },

        /* string instructions */
        { W(0, "movsb", 1, 0, 0xa4) },
        { W(0, "rep movsb", 2, DISASM_REP, 0xf3, 0xa4) },
        { W(32, "rep stosd", 2, DISASM_REP, 0xf3, 0xab) },
        { W(16, "66 rep stosd", 3, DISASM_REP, 0x66, 0xf3, 0xab) },
        { W(0, "repne scasb", 2, DISASM_REP, 0xf2, 0xae) },
        { W(0, "repe cmpsb", 2, DISASM_REP, 0xf3, 0xa6) },
        { W(0, "rep lodsb", 2, DISASM_REP, 0xf3, 0xac) },
        { W(64, "rep movsq", 3, DISASM_REP, 0xf3, 0x48, 0xa5) },
        { W(64, "rex.w rep movsd (REX ignored)", 3, DISASM_REP, 0x48, 0xf3, 0xa5) },
        { W(0, "cmpsw", 1, 0, 0xa7) },
        { W(0, "scasw", 1, 0, 0xaf) },
        { W(0, "stosb", 1, 0, 0xaa) },
        { W(0, "es movsw", 2, 0, 0x26, 0xa5) },
        { W(0, "rep insb", 2, DISASM_IN | DISASM_STRING | DISASM_REP, 0xf3, 0x6c), IOSIZE(1) },
        { W(16, "insw", 1, DISASM_IN | DISASM_STRING, 0x6d), IOSIZE(2) },
        { W(32, "rep insd", 2, DISASM_IN | DISASM_STRING | DISASM_REP, 0xf3, 0x6d), IOSIZE(4) },
        { W(16, "66 rep outsd", 3, DISASM_OUT | DISASM_STRING | DISASM_REP, 0x66, 0xf3, 0x6f),
          IOSIZE(4) },
        { W(32, "66 outsw", 2, DISASM_OUT | DISASM_STRING, 0x66, 0x6f), IOSIZE(2) },
        { W(64, "rep rex.w outsd (no 8-byte port access)", 3,
            DISASM_OUT | DISASM_STRING | DISASM_REP, 0xf3, 0x48, 0x6f),
          IOSIZE(4) },
        { W(64, "66 insw", 2, DISASM_IN | DISASM_STRING, 0x66, 0x6d), IOSIZE(2) },
        { W(0, "repne outsb", 2, DISASM_OUT | DISASM_STRING | DISASM_REP, 0xf2, 0x6e), IOSIZE(1) },
        { W(0, "lock rep movsb", 3, DISASM_UD, 0xf0, 0xf3, 0xa4) },
        { W(0, "lock insb", 2, DISASM_UD, 0xf0, 0x6c) },

        /* fast system calls: through MSRs, not the IDT */
        { W(64, "syscall", 2, DISASM_SYSCALL, 0x0f, 0x05) },
        { W(64, "sysret", 2, DISASM_SYSCALL, 0x0f, 0x07) },
        { W(64, "sysretq", 3, DISASM_SYSCALL, 0x48, 0x0f, 0x07) },
        { W(32, "sysenter", 2, DISASM_SYSCALL, 0x0f, 0x34) },
        { W(32, "sysexit", 2, DISASM_SYSCALL, 0x0f, 0x35) },
        { W(64, "sysexitq", 3, DISASM_SYSCALL, 0x48, 0x0f, 0x35) },
        { W(64, "lock syscall", 3, DISASM_UD, 0xf0, 0x0f, 0x05) },

        /* always #UD */
        { W(0, "ud2", 2, DISASM_UD, 0x0f, 0x0b) },
        { W(0, "66 ud2", 3, DISASM_UD, 0x66, 0x0f, 0x0b) },
        { W(0, "ud1 register", 3, DISASM_UD, 0x0f, 0xb9, 0xc0) },
        { W(32, "ud1 [esp]", 4, DISASM_UD, 0x0f, 0xb9, 0x04, 0x24) },
        { W(0, "ud0 register", 3, DISASM_UD, 0x0f, 0xff, 0xc0) },
        { W(16, "ud0 [disp16]", 5, DISASM_UD, 0x0f, 0xff, 0x06, 0x34, 0x12) },

        /* context changers */
        { W(0, "mov cr0, r", 3, DISASM_CTX, 0x0f, 0x22, 0xc0) },
        { W(0, "mov cr2, r", 3, DISASM_CTX, 0x0f, 0x22, 0xd0) },
        { W(0, "mov cr3, r", 3, DISASM_CTX, 0x0f, 0x22, 0xd8) },
        { W(0, "mov cr4, r", 3, DISASM_CTX, 0x0f, 0x22, 0xe0) },
        { W(32, "mov cr0: mod is ignored", 3, DISASM_CTX, 0x0f, 0x22, 0x00) },
        { W(64, "mov cr8, rax", 4, DISASM_CTX, 0x44, 0x0f, 0x22, 0xc0) },
        { W(64, "mov cr0, r8", 4, DISASM_CTX, 0x41, 0x0f, 0x22, 0xc0) },
        { W(0, "mov cr1", 3, DISASM_UD, 0x0f, 0x22, 0xc8) },
        { W(0, "mov cr5", 3, DISASM_UD, 0x0f, 0x22, 0xe8) },
        { W(0, "mov cr6", 3, DISASM_UD, 0x0f, 0x22, 0xf0) },
        { W(0, "mov cr7", 3, DISASM_UD, 0x0f, 0x22, 0xf8) },
        { W(64, "mov cr9", 4, DISASM_UD, 0x44, 0x0f, 0x22, 0xc8) },
        { W(0, "lock mov cr0", 4, DISASM_UD, 0xf0, 0x0f, 0x22, 0xc0) },
        { W(0, "lmsw ax", 3, DISASM_CTX, 0x0f, 0x01, 0xf0) },
        { W(32, "lmsw [eax]", 3, DISASM_CTX, 0x0f, 0x01, 0x30) },
        { W(16, "lmsw [disp16]", 5, DISASM_CTX, 0x0f, 0x01, 0x36, 0x34, 0x12) },
        { W(64, "lmsw [rip]", 7, DISASM_CTX, 0x0f, 0x01, 0x35, 0x00, 0x00, 0x00, 0x00) },
        { W(0, "wrmsr", 2, DISASM_CTX, 0x0f, 0x30) },
        { W(0, "mov eax, cr0 reads only", 3, 0, 0x0f, 0x20, 0xc0) },
        { W(32, "vmcall (0f 01 /0)", 3, 0, 0x0f, 0x01, 0xc1) },
        { W(0, "clts", 2, 0, 0x0f, 0x06) },

        /* LOCK on anything that does not allow it */
        { W(32, "lock nop", 2, DISASM_UD, 0xf0, 0x90) },
        { W(32, "lock out dx, al", 2, DISASM_UD, 0xf0, 0xee) },
        { W(32, "lock add eax, eax (register)", 3, DISASM_UD, 0xf0, 0x01, 0xc0) },
        { W(32, "lock cmp [eax], 1", 4, DISASM_UD, 0xf0, 0x83, 0x38, 0x01) },
        { W(32, "lock mov [eax], eax", 3, DISASM_UD, 0xf0, 0x89, 0x00) },
        { W(32, "lock xadd eax, ecx (register)", 4, DISASM_UD, 0xf0, 0x0f, 0xc1, 0xc8) },
        { W(64, "lock inc r8d", 4, DISASM_UD, 0xf0, 0x41, 0xff, 0xc0) },
        { W(64, "rex lock cmpsb (REX ignored)", 3, DISASM_UD, 0x41, 0xf0, 0xa6) },
        { W(32, "lock add [eax], eax", 3, 0, 0xf0, 0x01, 0x00) },
        { W(32, "lock add [eax], 1", 4, 0, 0xf0, 0x83, 0x00, 0x01) },
        { W(32, "lock cmpxchg [ebx], ecx", 4, 0, 0xf0, 0x0f, 0xb1, 0x0b) },
        { W(64, "lock cmpxchg16b [rsi]", 5, 0, 0xf0, 0x48, 0x0f, 0xc7, 0x0e) },
        { W(64, "lock xchg [rbx], eax", 3, 0, 0xf0, 0x87, 0x03) },
};

/* Check one decoding against w; ctx says how the bytes were laid out. */
static void check_want(const struct want *w, unsigned bits, const struct disasm_insn *in,
                       const char *ctx)
{
        int vec = w->vec1 ? w->vec1 - 1 : -1;

        cr_assert_eq(in->len, w->len, "%u-bit %s (%s): len %u, want %u [%s]", bits, w->what, ctx,
                     in->len, w->len, in->text);
        cr_assert_eq(in->flags, w->flags, "%u-bit %s (%s): flags %#x, want %#x [%s]", bits, w->what,
                     ctx, (unsigned)in->flags, (unsigned)w->flags, in->text);
        cr_assert_eq(in->has_target, w->tgt, "%u-bit %s (%s): has_target %d [%s]", bits, w->what,
                     ctx, in->has_target, in->text);
        if (w->tgt) {
                cr_assert_eq(in->target, w->target, "%u-bit %s (%s): target %#llx, want %#llx",
                             bits, w->what, ctx, (unsigned long long)in->target,
                             (unsigned long long)w->target);
                cr_assert_eq(in->target_cs, w->cs, "%u-bit %s (%s): target_cs %#x, want %#x", bits,
                             w->what, ctx, in->target_cs, w->cs);
        }
        cr_assert_eq(in->int_vector, vec, "%u-bit %s (%s): int_vector %d, want %d", bits, w->what,
                     ctx, in->int_vector, vec);
        if (w->flags & (DISASM_IN | DISASM_OUT))
                cr_assert_eq(in->io_size, w->io_size, "%u-bit %s (%s): io_size %u, want %u", bits,
                             w->what, ctx, in->io_size, w->io_size);
        cr_assert_eq(in->io_port, -1, "%u-bit %s: io_port %d", bits, w->what, in->io_port);
        cr_assert_arr_eq(in->bytes, w->b, w->len, "%u-bit %s: bytes", bits, w->what);
        cr_assert(in->text[0], "%u-bit %s: empty text", bits, w->what);
}

Test(disasm, classifier_table)
{
        for (size_t i = 0; i < sizeof(shadow_cases) / sizeof(shadow_cases[0]); i++) {
                const struct want *w = &shadow_cases[i];

                for (size_t m = 0; m < NMODES(all_modes); m++) {
                        unsigned bits = all_modes[m];
                        uint8_t pad[32];

                        if (w->bits && w->bits != bits)
                                continue;
                        /* exactly the bytes, flush against an unmapped page */
                        struct guarded g = guarded_copy(w->b, w->n, 1);
                        struct disasm_insn a = dec(bits, w->addr, g.p, w->n);

                        munmap(g.map, g.maplen);
                        check_want(w, bits, &a, "exact");
                        /* trailing bytes must not change anything */
                        memset(pad, 0x90, sizeof(pad));
                        memcpy(pad, w->b, w->n);
                        struct disasm_insn b = dec(bits, w->addr, pad, sizeof(pad));

                        check_want(w, bits, &b, "padded");
                }
        }
}

Test(disasm, jcc_every_condition)
{
        /* 70+cc rel8 and 0f 80+cc rel16/32: conditional, target = next + rel */
        for (size_t m = 0; m < NMODES(all_modes); m++) {
                unsigned bits = all_modes[m];

                for (uint8_t cc = 0; cc < 16; cc++) {
                        struct disasm_insn s =
                                dec(bits, 0x1000, BYTES((uint8_t)(0x70 + cc), 0x10), 2);
                        uint8_t nb[6] = { 0x0f, (uint8_t)(0x80 + cc), 0x00, 0x01, 0x00, 0x00 };
                        size_t nlen = bits == 16 ? 4 : 6;
                        struct disasm_insn n = dec(bits, 0x1000, nb, nlen);

                        ASSERT_FLAGS(s, DISASM_JUMP | DISASM_COND);
                        cr_assert_eq(s.len, 2);
                        ASSERT_TARGET(s, 0x1000 + 2 + 0x10);
                        ASSERT_TEXT(s, "j");
                        ASSERT_FLAGS(n, DISASM_JUMP | DISASM_COND);
                        cr_assert_eq(n.len, nlen);
                        ASSERT_TARGET(n, 0x1000 + nlen + 0x100);
                        cr_assert_eq(n.int_vector, -1);
                }
        }
}

Test(disasm, prefixes_up_to_fifteen_bytes)
{
        static const uint8_t legacy[] = {
                0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65, 0x66, 0x67, 0xf2, 0xf3
        };
        uint8_t buf[20];

        for (size_t m = 0; m < NMODES(all_modes); m++) {
                unsigned bits = all_modes[m];

                /* 14 prefixes (every legacy one, cycled) + fb: a 15-byte STI */
                for (size_t i = 0; i < 14; i++)
                        buf[i] = legacy[i % sizeof(legacy)];
                buf[14] = 0xfb;
                struct disasm_insn sti = dec(bits, 0, buf, 15);

                ASSERT_FLAGS(sti, DISASM_STI);
                cr_assert_eq(sti.len, 15);
                /* one prefix more: 16 bytes, longer than any instruction */
                memmove(buf + 1, buf, 15);
                buf[0] = 0x3e;
                cr_assert_eq(dec_err(bits, buf, 16), -EINVAL, "%u-bit 16-byte sti", bits);
                /* the same with a trailing byte available: still too long */
                buf[16] = 0x90;
                cr_assert_eq(dec_err(bits, buf, 17), -EINVAL, "%u-bit 16-byte sti", bits);
                /* 8 prefixes + mov ss, [esp+disp32] (7 bytes) = 15; 9 prefixes = 16 */
                static const uint8_t mov[] = { 0x8e, 0x94, 0x24, 0x00, 0x01, 0x00, 0x00 };
                uint8_t p = bits == 16 ? 0x67 : 0x3e; /* SIB needs 32-bit addressing */

                memset(buf, p, 9);
                memcpy(buf + 8, mov, sizeof(mov));
                struct disasm_insn ss = dec(bits, 0, buf, 15);

                ASSERT_FLAGS(ss, DISASM_MOV_SS);
                cr_assert_eq(ss.len, 15);
                memset(buf, p, 9);
                memcpy(buf + 9, mov, sizeof(mov));
                cr_assert_eq(dec_err(bits, buf, 16), -EINVAL, "%u-bit 16-byte mov ss", bits);
        }
        /* 64-bit: 13 legacy prefixes, a REX, then fb */
        memset(buf, 0x2e, 13);
        buf[13] = 0x48;
        buf[14] = 0xfb;
        struct disasm_insn rex = dec(64, 0, buf, 15);

        ASSERT_FLAGS(rex, DISASM_STI);
        cr_assert_eq(rex.len, 15);
}

Test(disasm, classifier_rejects_truncated_and_overlong)
{
        static const struct {
                unsigned bits;
                uint8_t n;
                uint8_t b[8];
                const char *what;
        } cases[] = {
                { 16, 3, { 0x8e, 0x16, 0x34 }, "mov ss, [disp16] without its last byte" },
                { 32, 2, { 0x8e, 0x14 }, "mov ss without its SIB" },
                { 32, 6, { 0x8e, 0x94, 0x24, 0x00, 0x01, 0x00 }, "SIB disp32, 3 of 4" },
                { 64, 2, { 0x44, 0x8e }, "rex mov ss without ModRM" },
                { 64, 5, { 0x8e, 0x15, 0x00, 0x00, 0x00 }, "rip-relative, 3 of 4" },
                { 16, 1, { 0xcd }, "int without its vector" },
                { 16, 4, { 0xea, 0x00, 0x10, 0x00 }, "ljmp ptr16:16, 4 of 5" },
                { 32, 2, { 0x0f, 0x22 }, "mov cr without ModRM" },
                { 32, 2, { 0x0f, 0xb2 }, "lss without ModRM" },
                { 16, 1, { 0x66 }, "a prefix alone" },
                { 64, 1, { 0x48 }, "a REX alone" },
                { 32, 2, { 0xf0, 0x66 }, "lock and a prefix" },
                { 32, 1, { 0xf0 }, "lock alone" },
                { 64, 4, { 0x66, 0x0f, 0x84, 0x10 }, "je rel32 (0x66 ignored), 1 of 4" },
                /* invalid without LOCK too (no register cmpxchg8b): no length to report */
                { 32, 4, { 0xf0, 0x0f, 0xc7, 0xc8 }, "lock on an opcode form that does not exist" },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct guarded g = guarded_copy(cases[i].b, cases[i].n, 1);
                int r = dec_err(cases[i].bits, g.p, cases[i].n);

                munmap(g.map, g.maplen);
                cr_assert_eq(r, -EINVAL, "%u-bit %s: %d", cases[i].bits, cases[i].what, r);
        }
        cr_assert_eq(dec_err(0, BYTES(0xfb), 1), -EINVAL);
        cr_assert_eq(dec_err(48, BYTES(0x8e, 0xd0), 2), -EINVAL);
}

Test(disasm, classifier_text)
{
        /* capstone 4 rejects these; the text is ours and must still say what they are */
        struct disasm_insn a = DEC(64, 0, 0x44, 0x8e, 0xd0);
        struct disasm_insn b = DEC(32, 0, 0xf0, 0xfb);
        struct disasm_insn c = DEC(64, 0, 0x17);
        struct disasm_insn e = DEC(64, 0, 0x66, 0xe9, 0x00, 0x01, 0x00, 0x00);

        ASSERT_TEXT(a, "mov");
        ASSERT_TEXT(a, "ss");
        ASSERT_TEXT(b, "sti");
        ASSERT_TEXT(b, "lock");
        ASSERT_TEXT(c, "pop");
        ASSERT_TEXT(e, "jmp");
        ASSERT_TEXT(e, "0x106");
        /* what capstone decodes keeps capstone's text */
        cr_assert_str_eq(DEC(16, 0, 0x8e, 0xd0).text, "mov ss, ax");
        cr_assert_str_eq(DEC(32, 0, 0xfb).text, "sti");
}

Test(disasm, int_vector_is_minus_one_elsewhere)
{
        static const struct {
                uint8_t n, b[2];
        } codes[] = { { 1, { 0x90 } },
                      { 1, { 0xfb } },
                      { 1, { 0xcf } },
                      { 2, { 0xe6, 0xe9 } },
                      { 2, { 0x0f, 0x05 } } };

        for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
                struct disasm_insn in = dec(64, 0, codes[i].b, codes[i].n);

                cr_assert_eq(in.int_vector, -1, "%s: int_vector %d", in.text, in.int_vector);
        }
}

/* ------------------------------------------------------------------------ */
/* disasm_delaying_ending                                                   */
/* ------------------------------------------------------------------------ */

static uint16_t ending(unsigned bits, const uint8_t *b, size_t n)
{
        /* flush against an unmapped page: nothing past the end may be read */
        struct guarded g = guarded_copy(b, n, 1);
        uint16_t r = disasm_delaying_ending(bits, g.p, n);

        munmap(g.map, g.maplen);
        return r;
}

#define ENDING(bits, ...) ending((bits), BYTES(__VA_ARGS__), NBYTES(__VA_ARGS__))

Test(disasm, delaying_ending_cases)
{
        static const struct {
                unsigned bits;
                uint8_t n;
                uint8_t b[16];
                uint16_t want;
                const char *what;
        } cases[] = {
                { 32, 3, { 0x90, 0x90, 0x90 }, 0, "nops" },
                { 16, 2, { 0x90, 0xfb }, 0x1, "sti at the end" },
                { 64, 2, { 0x90, 0xfb }, 0x1, "sti at the end, 64-bit" },
                { 32, 2, { 0x66, 0xfb }, 0x3, "66 fb and fb" },
                { 32, 3, { 0x90, 0x8e, 0xd0 }, 0x2, "mov ss, ax" },
                { 16, 4, { 0x8e, 0x16, 0x34, 0x12 }, 0x8, "mov ss, [disp16] ends at the disp" },
                { 16, 5, { 0x8e, 0x16, 0x34, 0x12, 0x90 }, 0, "the same, not at the end" },
                { 32, 2, { 0xfb, 0x90 }, 0, "sti, then a nop" },
                { 16, 1, { 0x17 }, 0x1, "pop ss, 16-bit" },
                { 32, 2, { 0x66, 0x17 }, 0x3, "66 pop ss and pop ss" },
                { 64, 1, { 0x17 }, 0, "pop ss is #UD in 64-bit" },
                { 16, 3, { 0x8e, 0x56, 0xfb }, 0x5, "mov ss, [bp-5] and sti in its disp8" },
                { 64, 3, { 0x44, 0x8e, 0xd0 }, 0x6, "rex.r mov ss and mov ss" },
                { 64, 6, { 0x8e, 0x15, 0x00, 0x00, 0x00, 0xfb }, 0x21, "rip-relative mov ss" },
                { 32, 3, { 0x8e, 0x14, 0x24 }, 0x4, "SIB" },
                { 32,
                  8,
                  { 0x90, 0x8e, 0x94, 0x24, 0x00, 0x01, 0x00, 0x00 },
                  0x40,
                  "the longest mov ss body: 8e ModRM SIB disp32" },
                { 32, 2, { 0xf0, 0xfb }, 0x1, "lock sti is #UD, its sti alone is not" },
                { 32, 3, { 0xf0, 0x8e, 0xd0 }, 0x2, "lock mov ss likewise" },
                { 32, 2, { 0x8e, 0xc8 }, 0, "mov cs" },
                { 32, 2, { 0x8e, 0xd8 }, 0, "mov ds" },
                { 16, 5, { 0x0f, 0xb2, 0x16, 0x34, 0x12 }, 0, "lss" },
                { 32, 2, { 0x0f, 0x17 }, 0x1, "0f 17 is movhps, but 17 alone is pop ss" },
                { 32, 1, { 0xfa }, 0, "cli" },
                { 32, 0, { 0 }, 0, "nothing" },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                uint16_t r = ending(cases[i].bits, cases[i].b, cases[i].n);

                cr_assert_eq(r, cases[i].want, "%u-bit %s: %#x, want %#x", cases[i].bits,
                             cases[i].what, r, cases[i].want);
        }
        cr_assert_eq(disasm_delaying_ending(0, BYTES(0xfb), 1), 0, "bad bits");
        cr_assert_eq(disasm_delaying_ending(8, BYTES(0xfb), 1), 0, "bad bits");
}

Test(disasm, delaying_ending_prefix_runs)
{
        uint8_t buf[20];

        /* 14 x 66 + fb: every k from 1 to 15 is an STI */
        memset(buf, 0x66, sizeof(buf));
        buf[14] = 0xfb;
        cr_assert_eq(ending(32, buf, 15), 0x7fff);
        /* 19 x 66 + fb: only the last 15 bytes count */
        buf[14] = 0x66;
        buf[19] = 0xfb;
        cr_assert_eq(ending(32, buf, 20), 0x7fff);
        /* 64-bit: a REX directly before fb is fine, a REX before a prefix is ignored */
        cr_assert_eq(ENDING(64, 0x48, 0x66, 0x48, 0xfb), 0xf);
        /* 16-bit: 48 is dec ax, not a prefix */
        cr_assert_eq(ENDING(16, 0x48, 0xfb), 0x1);
}

/*
 * Property: bit k-1 of disasm_delaying_ending is set exactly when the last k
 * bytes decode, through disasm_decode, to one k-byte STI, MOV SS or (outside
 * 64-bit code) POP SS.  Random bytes drawn mostly from the interesting ones.
 */
Test(disasm, delaying_ending_agrees_with_decode)
{
        static const uint8_t pool[] = { 0xfb, 0x8e, 0x17, 0xd0, 0x16, 0x14, 0x24, 0x15,
                                        0x56, 0x94, 0x66, 0x67, 0xf0, 0x2e, 0xf3, 0x44,
                                        0x48, 0x0f, 0xc8, 0x00, 0x90, 0x12, 0x34, 0x85 };
        uint32_t x = 12345;
        size_t hits = 0;

        for (int it = 0; it < 20000; it++) {
                uint8_t buf[18];
                size_t n = 1 + it % 18;
                unsigned bits = all_modes[it % 3];

                for (size_t i = 0; i < n; i++) {
                        x = x * 1103515245u + 12345u;
                        buf[i] = (x >> 16) % 4 ? pool[(x >> 8) % sizeof(pool)] : (uint8_t)(x >> 20);
                }
                uint16_t got = disasm_delaying_ending(bits, buf, n);
                uint16_t want = 0;

                for (size_t k = 1; k <= 15 && k <= n; k++) {
                        struct disasm_insn in;

                        if (disasm_decode(d, bits, buf + n - k, k, 0, &in) || in.len != k)
                                continue;
                        if ((in.flags & (DISASM_STI | DISASM_MOV_SS)) ||
                            ((in.flags & DISASM_POP_SS) && bits != 64))
                                want |= (uint16_t)(1u << (k - 1));
                }
                hits += want != 0;
                cr_assert_eq(got, want, "iteration %d, %u-bit, %zu bytes: %#x, want %#x", it, bits,
                             n, got, want);
        }
        cr_assert_gt(hits, 1000, "the pool must produce delaying endings (%zu)", hits);
}

/*
 * disasm_io_candidates looks for a completed instruction only where the
 * bytes before rip can end one (prefixes, an I/O opcode, maybe an imm8):
 * it must find exactly what decoding every length from 1 to 15 finds.
 */
Test(disasm, io_candidates_completed_as_every_length)
{
        static const uint8_t pool[] = { 0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65, 0x66, 0x67,
                                        0xf0, 0xf2, 0xf3, 0x40, 0x48, 0x4f, 0x0f, 0x90,
                                        0xe4, 0xe5, 0xe6, 0xe7, 0xec, 0xed, 0xee, 0xef,
                                        0x6c, 0x6d, 0x6e, 0x6f, 0xe2, 0x80, 0xcd, 0xc3 };
        uint64_t x = 0x9e3779b97f4a7c15ull;
        unsigned found = 0;

        for (size_t i = 0; i < NMODES(all_modes); i++) {
                for (int t = 0; t < 3000; t++) {
                        uint8_t code[30];
                        size_t at = 1 + (size_t)(t % 15), len = at + 15;
                        struct disasm_io_site done, pending, want = { 0 };
                        int out = t & 1;
                        unsigned size = 1u << (t / 2 % 3);

                        for (size_t j = 0; j < len; j++) {
                                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                                code[j] = pool[x % sizeof(pool)];
                        }
                        for (size_t k = 1; k <= 15 && k <= at; k++) {
                                struct disasm_insn insn;

                                if (disasm_decode(d, all_modes[i], code + at - k, k, 0x1000 - k,
                                                  &insn) ||
                                    insn.len != k || !disasm_is_io_insn(&insn, out, 0xe2, size))
                                        continue;
                                want.found = 1;
                                want.insn = insn;
                                break;
                        }
                        disasm_io_candidates(d, all_modes[i], code, len, at, 0x1000, out, 0xe2,
                                             size, &done, &pending);
                        cr_assert_eq(done.found, want.found, "%u-bit, case %d", all_modes[i], t);
                        if (want.found) {
                                found++;
                                cr_assert_eq(done.insn.addr, want.insn.addr);
                                cr_assert_eq(done.insn.len, want.insn.len);
                        }
                }
        }
        cr_assert_gt(found, 50, "the cases hold completed I/O instructions (%u)", found);
}

/*
 * disasm_decode remembers the last instruction decoded at an address with
 * the bytes it spans, and answers inputs that start with them from it: the
 * answer must be what decoding those inputs afresh gives, whatever follows.
 */
Test(disasm, decode_memo_by_address_as_fresh)
{
        static const uint8_t pool[] = { 0x66, 0x67, 0xf0, 0xf3, 0x2e, 0x48, 0x0f, 0x01, 0x8e,
                                        0xd0, 0x17, 0xfb, 0xe6, 0xe2, 0xcd, 0x80, 0xe8, 0xeb,
                                        0xff, 0x00, 0x9a, 0xc7, 0x05, 0xb8, 0x6e, 0xc3 };
        struct disasm *fresh;
        uint64_t x = 0x2545f4914f6cdd1dull;
        unsigned hits = 0;

        cr_assert_eq(disasm_open(&fresh), 0);
        for (size_t i = 0; i < NMODES(all_modes); i++) {
                for (uint64_t t = 0; t < 3000; t++) {
                        uint64_t addr = 0x100000 + (i * 3000 + t) * 16;
                        uint8_t a[16], b[16];
                        struct disasm_insn first, again, want;
                        int ret, want_ret;

                        for (size_t j = 0; j < sizeof(a); j++) {
                                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                                a[j] = b[j] = pool[x % sizeof(pool)];
                        }
                        if (disasm_decode(d, all_modes[i], a, sizeof(a), addr, &first))
                                continue;
                        /* the same instruction, other bytes after it (and a shorter input) */
                        for (size_t j = first.len; j < sizeof(b); j++)
                                b[j] = (uint8_t)(b[j] ^ 0x5a);
                        ret = disasm_decode(d, all_modes[i], b, first.len + (t % 2), addr, &again);
                        want_ret = disasm_decode(fresh, all_modes[i], b, first.len + (t % 2), addr,
                                                 &want);
                        cr_assert_eq(ret, want_ret, "%u-bit case %llu", all_modes[i],
                                     (unsigned long long)t);
                        if (ret)
                                continue;
                        hits++;
                        cr_assert_eq(again.len, want.len);
                        cr_assert_arr_eq(again.bytes, want.bytes, want.len);
                        cr_assert_eq(again.flags, want.flags);
                        cr_assert_eq(again.has_target, want.has_target);
                        cr_assert_eq(again.target, want.target);
                        cr_assert_eq(again.target_cs, want.target_cs);
                        cr_assert_eq(again.io_port, want.io_port);
                        cr_assert_eq(again.io_size, want.io_size);
                        cr_assert_eq(again.int_vector, want.int_vector);
                        cr_assert_eq(again.sp_write, want.sp_write);
                        cr_assert_str_eq(again.text, want.text);
                }
        }
        disasm_close(fresh);
        cr_assert_gt(hits, 1000, "instructions decoded again (%u)", hits);
}
