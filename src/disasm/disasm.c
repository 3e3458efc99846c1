// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <capstone/capstone.h>

#include "disasm.h"

enum { MODE16, MODE32, MODE64, MODE_COUNT };

/*
 * What disasm_decode returned for one input.  A trace revisits the same
 * few instructions at nearly every exit, and capstone (its text printer
 * above all) costs far more than a lookup, so results are remembered,
 * keyed by everything the result depends on: the code size, the address
 * and the bytes given (at most MEMO_BYTES: no instruction reads further).
 *
 * A second table, by address alone, keeps the last instruction decoded
 * there with the bytes it spans: decoding reads an instruction's bytes in
 * order and stops at its end, so any input that starts with those bytes
 * decodes to it whatever follows (code that keeps a counter right after an
 * instruction shows new bytes after it at every exit).  Not for LOCK,
 * whose check may read on, nor for failures, which depend on the length.
 */
#define MEMO_SLOTS 4096u /* a power of two */
#define MEMO_BYTES 16u   /* 15 bytes at most, plus one to tell "too long" from "cut short" */

struct memo {
        uint64_t addr;
        uint8_t bits, n, used;
        uint8_t bytes[MEMO_BYTES];
        int ret;
        struct disasm_insn out;
};

struct disasm {
        csh h[MODE_COUNT];
        cs_insn *insn[MODE_COUNT]; /* preallocated: decoding allocates nothing */
        struct memo *memo;         /* MEMO_SLOTS, direct-mapped */
        struct memo *at;           /* MEMO_SLOTS by address; n: the instruction's length */
};

static const cs_mode cs_modes[MODE_COUNT] = {
        [MODE16] = CS_MODE_16,
        [MODE32] = CS_MODE_32,
        [MODE64] = CS_MODE_64,
};
_Static_assert(sizeof(cs_modes) / sizeof(cs_modes[0]) == MODE_COUNT, "a capstone mode per size");

int disasm_open(struct disasm **dp)
{
        struct disasm *d = calloc(1, sizeof(*d));
        int i;

        if (!d)
                return -ENOMEM;
        d->memo = calloc(2 * MEMO_SLOTS, sizeof(*d->memo));
        if (!d->memo) {
                free(d);
                return -ENOMEM;
        }
        d->at = d->memo + MEMO_SLOTS;
        for (i = 0; i < MODE_COUNT; i++) {
                if (cs_open(CS_ARCH_X86, cs_modes[i], &d->h[i]) != CS_ERR_OK)
                        goto err_close;
                cs_option(d->h[i], CS_OPT_DETAIL, CS_OPT_ON);
                d->insn[i] = cs_malloc(d->h[i]);
                if (!d->insn[i]) {
                        cs_close(&d->h[i]);
                        goto err_close;
                }
        }
        *dp = d;
        return 0;

err_close:
        while (i-- > 0) {
                cs_free(d->insn[i], 1);
                cs_close(&d->h[i]);
        }
        free(d->memo);
        free(d);
        return -ENOMEM;
}

void disasm_close(struct disasm *d)
{
        if (!d)
                return;
        for (int i = 0; i < MODE_COUNT; i++) {
                cs_free(d->insn[i], 1);
                cs_close(&d->h[i]);
        }
        free(d->memo);
        free(d);
}

static int mode_of(unsigned bits)
{
        switch (bits) {
        case 16: return MODE16;
        case 32: return MODE32;
        case 64: return MODE64;
        default: return -1;
        }
}

static int is_ss(const cs_x86_op *op)
{
        return op->type == X86_OP_REG && op->reg == X86_REG_SS;
}

/* Classify the control flow and the interrupt-relevant instructions. */
static void classify(csh h, const cs_insn *ci, struct disasm_insn *out)
{
        const cs_x86 *x = &ci->detail->x86;

        switch (ci->id) {
        case X86_INS_STI: out->flags |= DISASM_STI; break;
        case X86_INS_CLI: out->flags |= DISASM_CLI; break;
        case X86_INS_HLT: out->flags |= DISASM_HLT; break;
        case X86_INS_LSS: out->flags |= DISASM_LSS; break;
        case X86_INS_POPF: /* fall through */
        case X86_INS_POPFD:
        case X86_INS_POPFQ: out->flags |= DISASM_POPF; break;
        case X86_INS_MOV:
                if (x->op_count >= 1 && is_ss(&x->operands[0]))
                        out->flags |= DISASM_MOV_SS;
                break;
        case X86_INS_POP:
                if (x->op_count >= 1 && is_ss(&x->operands[0]))
                        out->flags |= DISASM_POP_SS;
                break;
        case X86_INS_IN: out->flags |= DISASM_IN; break;
        case X86_INS_INSB: out->io_size = 1; goto ins;
        case X86_INS_INSW: out->io_size = 2; goto ins;
        case X86_INS_INSD:
                out->io_size = 4;
        ins:
                out->flags |= DISASM_IN | DISASM_STRING;
                break;
        case X86_INS_OUT: out->flags |= DISASM_OUT; break;
        case X86_INS_OUTSB: out->io_size = 1; goto outs;
        case X86_INS_OUTSW: out->io_size = 2; goto outs;
        case X86_INS_OUTSD:
                out->io_size = 4;
        outs:
                out->flags |= DISASM_OUT | DISASM_STRING;
                break;
        case X86_INS_LJMP:
        case X86_INS_LCALL: out->flags |= DISASM_FAR; break;
        default: break;
        }
        if ((out->flags & (DISASM_IN | DISASM_OUT)) && !(out->flags & DISASM_STRING)) {
                for (int i = 0; i < x->op_count; i++) {
                        const cs_x86_op *op = &x->operands[i];

                        if (op->type == X86_OP_IMM)
                                out->io_port = (int)(op->imm & 0xff);
                        else if (op->type == X86_OP_REG && op->reg != X86_REG_DX)
                                out->io_size = op->size; /* al, ax or eax */
                }
        }

        /* capstone 4 leaves LOOP/LOOPE/LOOPNE out of its jump group. */
        bool loop = ci->id == X86_INS_LOOP || ci->id == X86_INS_LOOPE || ci->id == X86_INS_LOOPNE;
        /* Fast system calls and returns go through MSRs, not the IDT: not INT/IRET here. */
        bool fast = ci->id == X86_INS_SYSCALL || ci->id == X86_INS_SYSENTER ||
                    ci->id == X86_INS_SYSRET || ci->id == X86_INS_SYSEXIT;

        if (cs_insn_group(h, ci, CS_GRP_JUMP) || loop) {
                out->flags |= DISASM_JUMP;
                if (ci->id != X86_INS_JMP && ci->id != X86_INS_LJMP)
                        out->flags |= DISASM_COND;
        }
        if (cs_insn_group(h, ci, CS_GRP_CALL))
                out->flags |= DISASM_CALL;
        if (cs_insn_group(h, ci, CS_GRP_RET))
                out->flags |= DISASM_RET;
        if (cs_insn_group(h, ci, CS_GRP_IRET) && !fast)
                out->flags |= DISASM_IRET;
        if (cs_insn_group(h, ci, CS_GRP_INT) && !fast)
                out->flags |= DISASM_INT;

        if (out->flags & (DISASM_JUMP | DISASM_CALL)) {
                if (out->flags & DISASM_FAR) {
                        /* ljmp/lcall ptr16:16/32: two immediates, selector first */
                        if (x->op_count == 2 && x->operands[0].type == X86_OP_IMM &&
                            x->operands[1].type == X86_OP_IMM) {
                                out->has_target = 1;
                                out->target_cs = (uint16_t)x->operands[0].imm;
                                out->target = (uint64_t)x->operands[1].imm;
                        }
                } else if (x->op_count == 1 && x->operands[0].type == X86_OP_IMM) {
                        out->has_target = 1;
                        out->target = (uint64_t)x->operands[0].imm;
                }
        }
}

/* ---- the byte-level classifier ------------------------------------------------ */

enum cls_status {
        CLS_UNKNOWN, /* not one of ours: capstone decides */
        CLS_OK,
        CLS_UD,      /* ours, and #UD: length known */
        CLS_LOCK_UD, /* not ours, but LOCK makes it #UD: capstone knows the length */
        CLS_SHORT,   /* code[0..len) ends inside the instruction */
        CLS_LONG,    /* longer than 15 bytes */
};

enum op_kind {
        K_NONE, /* not classified here */
        K_PLAIN,
        K_INT,    /* int3, int1, into: the vector is in the table */
        K_INTN,   /* cd ib */
        K_IMM16,  /* ret / retf iw */
        K_REL8,   /* jmp, jcc, loop, jcxz rel8 */
        K_RELZ,   /* jmp, call, jcc rel16/rel32 */
        K_FARPTR, /* ea / 9a ptr16:16 or ptr16:32 */
        K_SREG,   /* 8e: mov Sreg, r/m16 */
        K_GRP5,   /* ff: only /2 /3 /4 /5 /7 are ours */
        K_STRING,
        K_MODRM, /* ud0, ud1: any ModRM form */
        K_LSS,   /* memory operand only */
        K_MOVCR, /* 0f 22: mod is ignored, always a register */
        K_GRP7,  /* 0f 01: only /6 (lmsw) is ours */
};

struct op_info {
        uint8_t kind;
        uint8_t no64;   /* #UD in 64-bit code */
        int8_t vector;  /* K_INT */
        uint32_t flags; /* DISASM_* when valid */
        const char *mnem;
};

/* One-byte opcodes. */
static const struct op_info op1[256] = {
        [0x17] = { K_PLAIN, 1, 0, DISASM_POP_SS, "pop ss" },
        [0x6c] = { K_STRING, 0, 0, DISASM_IN | DISASM_STRING, "ins" },
        [0x6d] = { K_STRING, 0, 0, DISASM_IN | DISASM_STRING, "ins" },
        [0x6e] = { K_STRING, 0, 0, DISASM_OUT | DISASM_STRING, "outs" },
        [0x6f] = { K_STRING, 0, 0, DISASM_OUT | DISASM_STRING, "outs" },
        [0x70 ... 0x7f] = { K_REL8, 0, 0, DISASM_JUMP | DISASM_COND, "j" },
        [0x8e] = { K_SREG, 0, 0, 0, "mov" },
        [0x9a] = { K_FARPTR, 1, 0, DISASM_CALL | DISASM_FAR, "lcall" },
        [0x9d] = { K_PLAIN, 0, 0, DISASM_POPF, "popf" },
        [0xa4 ... 0xa5] = { K_STRING, 0, 0, 0, "movs" },
        [0xa6 ... 0xa7] = { K_STRING, 0, 0, 0, "cmps" },
        [0xaa ... 0xab] = { K_STRING, 0, 0, 0, "stos" },
        [0xac ... 0xad] = { K_STRING, 0, 0, 0, "lods" },
        [0xae ... 0xaf] = { K_STRING, 0, 0, 0, "scas" },
        [0xc2] = { K_IMM16, 0, 0, DISASM_RET, "ret" },
        [0xc3] = { K_PLAIN, 0, 0, DISASM_RET, "ret" },
        [0xca] = { K_IMM16, 0, 0, DISASM_RET, "retf" },
        [0xcb] = { K_PLAIN, 0, 0, DISASM_RET, "retf" },
        [0xcc] = { K_INT, 0, 3, DISASM_INT, "int3" },
        [0xcd] = { K_INTN, 0, 0, DISASM_INT, "int" },
        /* INTO traps only when OF=1: it falls through too */
        [0xce] = { K_INT, 1, 4, DISASM_INT | DISASM_COND, "into" },
        [0xcf] = { K_PLAIN, 0, 0, DISASM_IRET, "iret" },
        [0xe0] = { K_REL8, 0, 0, DISASM_JUMP | DISASM_COND, "loopne" },
        [0xe1] = { K_REL8, 0, 0, DISASM_JUMP | DISASM_COND, "loope" },
        [0xe2] = { K_REL8, 0, 0, DISASM_JUMP | DISASM_COND, "loop" },
        [0xe3] = { K_REL8, 0, 0, DISASM_JUMP | DISASM_COND, "jcxz" },
        [0xe8] = { K_RELZ, 0, 0, DISASM_CALL, "call" },
        [0xe9] = { K_RELZ, 0, 0, DISASM_JUMP, "jmp" },
        [0xea] = { K_FARPTR, 1, 0, DISASM_JUMP | DISASM_FAR, "ljmp" },
        [0xeb] = { K_REL8, 0, 0, DISASM_JUMP, "jmp" },
        [0xf1] = { K_INT, 0, 1, DISASM_INT, "int1" },
        [0xf4] = { K_PLAIN, 0, 0, DISASM_HLT, "hlt" },
        [0xfa] = { K_PLAIN, 0, 0, DISASM_CLI, "cli" },
        [0xfb] = { K_PLAIN, 0, 0, DISASM_STI, "sti" },
        [0xff] = { K_GRP5, 0, 0, 0, "" },
};
_Static_assert(sizeof(op1) / sizeof(op1[0]) == 256, "an entry per one-byte opcode");

/* Two-byte opcodes (0f xx). */
static const struct op_info op2[256] = {
        [0x01] = { K_GRP7, 0, 0, DISASM_CTX, "lmsw" },
        [0x05] = { K_PLAIN, 0, 0, DISASM_SYSCALL, "syscall" },
        [0x07] = { K_PLAIN, 0, 0, DISASM_SYSCALL, "sysret" },
        [0x0b] = { K_PLAIN, 0, 0, DISASM_UD, "ud2" },
        [0x22] = { K_MOVCR, 0, 0, DISASM_CTX, "mov" },
        [0x30] = { K_PLAIN, 0, 0, DISASM_CTX, "wrmsr" },
        [0x34] = { K_PLAIN, 0, 0, DISASM_SYSCALL, "sysenter" },
        [0x35] = { K_PLAIN, 0, 0, DISASM_SYSCALL, "sysexit" },
        [0x80 ... 0x8f] = { K_RELZ, 0, 0, DISASM_JUMP | DISASM_COND, "j" },
        [0xb2] = { K_LSS, 0, 0, DISASM_LSS, "lss" },
        [0xb9] = { K_MODRM, 0, 0, DISASM_UD, "ud1" },
        [0xff] = { K_MODRM, 0, 0, DISASM_UD, "ud0" },
};
_Static_assert(sizeof(op2) / sizeof(op2[0]) == 256, "an entry per two-byte opcode");

/* ff and 0f 01 with a ModRM.reg the checker does not need */
static const struct op_info not_ours = { K_NONE, 0, 0, 0, "" };

struct prefixes {
        uint8_t n;   /* bytes before the opcode, REX included */
        uint8_t rex; /* the effective REX (immediately before the opcode), or 0 */
        bool opsize, adsize, lock, rep;
};

struct cls {
        enum cls_status status;
        struct prefixes p;
        const struct op_info *op;
        uint8_t opc;   /* the opcode byte (the second one after 0f) */
        uint8_t modrm; /* when the instruction has one */
        bool has_modrm;
        bool invalid; /* #UD by form, not an ud instruction */
        uint8_t len;
        uint32_t flags;
        bool has_target;
        uint64_t target;
        uint16_t target_cs;
        int int_vector;
        int io_port;
        uint8_t io_size;
        uint8_t opsize; /* 16, 32 or 64 */
};

/*
 * Bytes taken by the ModRM byte at code[at] with its SIB and displacement
 * under `asize`-bit addressing, or 0 when code[0..len) ends before the
 * length is known.
 */
static size_t modrm_size(const uint8_t *code, size_t len, size_t at, unsigned asize)
{
        uint8_t mod, rm;

        if (at >= len)
                return 0;
        mod = code[at] >> 6;
        rm = code[at] & 7;
        if (mod == 3)
                return 1;
        if (asize == 16) {
                if (mod == 1)
                        return 2;
                return mod == 2 || rm == 6 ? 3 : 1;
        }
        if (rm == 4) {
                if (at + 1 >= len)
                        return 0;
                if (mod == 0 && (code[at + 1] & 7) == 5)
                        return 6; /* SIB without base: disp32 */
                return mod == 1 ? 3 : mod == 2 ? 6 : 2;
        }
        if (mod == 0)
                return rm == 5 ? 5 : 1; /* rm 5: disp32, RIP-relative in 64-bit code */
        return mod == 1 ? 2 : 5;
}

/* Whether a LOCK prefix is allowed on the opcode at code[at]: -1 when the ModRM is missing. */
static int lock_allowed(unsigned bits, const uint8_t *code, size_t len, size_t at)
{
        uint8_t op = code[at], reg;
        size_t m = at + 1;

        if (op == 0x0f) {
                if (at + 1 >= len)
                        return -1;
                op = code[at + 1];
                m = at + 2;
                if (m >= len)
                        return -1;
                reg = (code[m] >> 3) & 7;
                if (code[m] >> 6 == 3)
                        return 0;
                switch (op) {
                case 0xab:
                case 0xb3:
                case 0xbb: /* bts btr btc */
                case 0xb0:
                case 0xb1: /* cmpxchg */
                case 0xc0:
                case 0xc1: /* xadd */ return 1;
                case 0xba: return reg >= 5; /* bts btr btc imm8 */
                case 0xc7: return reg == 1; /* cmpxchg8b / cmpxchg16b */
                default: return 0;
                }
        }
        bool alu = op < 0x40 && (op & 7) <= 1 && (op & 0x38) != 0x38; /* add..xor r/m, r */
        bool grp1 = op == 0x80 || op == 0x81 || op == 0x83 || (op == 0x82 && bits != 64);

        if (!alu && !grp1 && op != 0x86 && op != 0x87 && op != 0xf6 && op != 0xf7 && op != 0xfe &&
            op != 0xff)
                return 0;
        if (m >= len)
                return -1;
        reg = (code[m] >> 3) & 7;
        if (code[m] >> 6 == 3)
                return 0;
        if (grp1)
                return reg != 7; /* not cmp */
        if (op == 0xf6 || op == 0xf7)
                return reg == 2 || reg == 3; /* not, neg */
        if (op == 0xfe || op == 0xff)
                return reg <= 1; /* inc, dec */
        return 1;
}

static uint64_t wrap(uint64_t v, unsigned size)
{
        return size == 16 ? v & 0xffffull : size == 32 ? v & 0xffffffffull : v;
}

static int64_t sext(const uint8_t *b, unsigned n)
{
        uint64_t v = 0;

        for (unsigned i = 0; i < n; i++)
                v |= (uint64_t)b[i] << (8 * i);
        if (n < 8 && (v >> (8 * n - 1)) & 1)
                v |= ~0ull << (8 * n);
        return (int64_t)v;
}

/*
 * Classify the instruction at code[0..len) as `bits`-bit code at addr.
 * Touches no more than the instruction's own bytes.
 */
static void cls_decode(unsigned bits, const uint8_t *code, size_t len, uint64_t addr, struct cls *c)
{
        struct prefixes *p = &c->p;
        size_t i, at, n;
        unsigned asize;

        memset(c, 0, sizeof(*c));
        c->int_vector = -1;
        c->io_port = -1;
        for (i = 0;; i++) {
                if (i >= 15) {
                        c->status = CLS_LONG;
                        return;
                }
                if (i >= len) {
                        c->status = CLS_SHORT;
                        return;
                }
                switch (code[i]) {
                case 0x26:
                case 0x2e:
                case 0x36:
                case 0x3e:
                case 0x64:
                case 0x65:
                        p->rex = 0; /* a REX followed by a legacy prefix is ignored */
                        continue;
                case 0x66:
                        p->opsize = true;
                        p->rex = 0;
                        continue;
                case 0x67:
                        p->adsize = true;
                        p->rex = 0;
                        continue;
                case 0xf0:
                        p->lock = true;
                        p->rex = 0;
                        continue;
                case 0xf2:
                case 0xf3:
                        p->rep = true;
                        p->rex = 0;
                        continue;
                default:
                        if (bits == 64 && (code[i] & 0xf0) == 0x40) {
                                p->rex = code[i];
                                continue;
                        }
                }
                break;
        }
        p->n = (uint8_t)i;
        if (bits == 64)
                c->opsize = p->rex & 8 ? 64 : p->opsize ? 16 : 32;
        else
                c->opsize = (bits == 16) != p->opsize ? 16 : 32;
        asize = bits == 64 ? (p->adsize ? 32 : 64) : ((bits == 16) != p->adsize ? 16 : 32);

        at = i + 1;
        c->opc = code[i];
        c->op = &op1[code[i]];
        if (code[i] == 0x0f) {
                if (at >= len) {
                        c->status = at >= 15 ? CLS_LONG : CLS_SHORT;
                        return;
                }
                c->opc = code[at];
                c->op = &op2[code[at]];
                at++;
        }
        const struct op_info *op = c->op;
        /* Near branches in 64-bit code always have a 64-bit operand size. */
        unsigned bsize = bits == 64 ? 64 : c->opsize;
        uint8_t reg = 0, mod = 0;

        c->flags = op->flags;
        switch (op->kind) {
        case K_NONE: n = 0; break;
        case K_PLAIN: n = 0; break;
        case K_INT:
                n = 0;
                c->int_vector = op->vector;
                break;
        case K_INTN: n = 1; break;
        case K_IMM16: n = 2; break;
        case K_REL8: n = 1; break;
        case K_RELZ: n = bsize == 16 ? 2 : 4; break;
        case K_FARPTR: n = (c->opsize == 16 ? 2 : 4) + 2; break;
        case K_STRING: n = 0; break;
        case K_MOVCR: n = 1; break;
        default:
                n = modrm_size(code, len, at, asize);
                if (!n) {
                        c->status = at + 2 > 15 ? CLS_LONG : CLS_SHORT;
                        return;
                }
                c->has_modrm = true;
                break;
        }
        if (op->kind == K_MOVCR)
                c->has_modrm = true;
        if (c->has_modrm && at < len) {
                c->modrm = code[at];
                reg = (code[at] >> 3) & 7;
                mod = code[at] >> 6;
        }
        /* Kinds that are ours only for some ModRM.reg values. */
        if ((op->kind == K_GRP5 && reg != 2 && reg != 3 && reg != 4 && reg != 5 && reg != 7) ||
            (op->kind == K_GRP7 && reg != 6))
                op = &not_ours;
        if (op->kind == K_NONE) {
                int ok = p->lock ? lock_allowed(bits, code, len, i) : 1;

                if (ok < 0)
                        c->status = at + 1 > 15 ? CLS_LONG : CLS_SHORT;
                else
                        c->status = ok ? CLS_UNKNOWN : CLS_LOCK_UD;
                return;
        }
        if (at + n > 15) {
                c->status = CLS_LONG;
                return;
        }
        if (at + n > len) {
                c->status = CLS_SHORT;
                return;
        }
        c->len = (uint8_t)(at + n);

        const uint8_t *imm = code + at;
        uint64_t next = addr + c->len;

        switch (op->kind) {
        case K_INTN: c->int_vector = imm[0]; break;
        case K_REL8:
        case K_RELZ:
                c->has_target = true;
                c->target = wrap(next + (uint64_t)sext(imm, (unsigned)n), bsize);
                break;
        case K_FARPTR:
                c->has_target = true;
                c->target = (uint64_t)sext(imm, (unsigned)n - 2) & (n == 4 ? 0xffffu : 0xffffffffu);
                c->target_cs = (uint16_t)(imm[n - 2] | imm[n - 1] << 8);
                break;
        case K_SREG:
                /* 1 is CS (use a far jump), 6 and 7 do not exist; REX.R does not extend reg */
                if (reg == 1 || reg >= 6)
                        c->invalid = true;
                else if (reg == 2)
                        c->flags = DISASM_MOV_SS;
                break;
        case K_GRP5:
                switch (reg) {
                case 2: c->flags = DISASM_CALL; break;
                case 3:
                        c->flags = DISASM_CALL | DISASM_FAR;
                        c->invalid = mod == 3;
                        break;
                case 4: c->flags = DISASM_JUMP; break;
                case 5:
                        c->flags = DISASM_JUMP | DISASM_FAR;
                        c->invalid = mod == 3;
                        break;
                default: c->invalid = true; break; /* ff /7 */
                }
                break;
        case K_LSS: c->invalid = mod == 3; break;
        case K_MOVCR: {
                unsigned cr = reg | (p->rex & 4 ? 8 : 0);

                c->invalid = !(cr == 0 || cr == 2 || cr == 3 || cr == 4 || cr == 8);
                break;
        }
        case K_STRING:
                if (op->flags & (DISASM_IN | DISASM_OUT))
                        c->io_size = !(c->opc & 1) ? 1 : c->opsize == 16 ? 2 : 4;
                if (p->rep)
                        c->flags |= DISASM_REP;
                break;
        default: break;
        }
        /* None of these instructions accepts LOCK (SDM vol. 2, LOCK: #UD otherwise). */
        if (p->lock || (op->no64 && bits == 64))
                c->invalid = true;
        c->status = c->invalid || (c->flags & DISASM_UD) ? CLS_UD : CLS_OK;
        if (c->status == CLS_UD) {
                c->flags = DISASM_UD;
                c->has_target = false;
                c->target = 0;
                c->target_cs = 0;
                c->int_vector = -1;
                c->io_size = 0;
        }
}

/* ---- text of our own, for what capstone rejects or reads differently ---------- */

static const char *const cc_names[16] = {
        [0x0] = "o",  [0x1] = "no", [0x2] = "b",  [0x3] = "ae", [0x4] = "e", [0x5] = "ne",
        [0x6] = "be", [0x7] = "a",  [0x8] = "s",  [0x9] = "ns", [0xa] = "p", [0xb] = "np",
        [0xc] = "l",  [0xd] = "ge", [0xe] = "le", [0xf] = "g",
};
_Static_assert(sizeof(cc_names) / sizeof(cc_names[0]) == 16, "a name per condition");

static const char *const sreg_names[8] = {
        [0] = "es", [1] = "cs", [2] = "ss", [3] = "ds",
        [4] = "fs", [5] = "gs", [6] = "?",  [7] = "?",
};
_Static_assert(sizeof(sreg_names) / sizeof(sreg_names[0]) == 8, "a name per ModRM.reg");

static const char *const reg16_names[16] = {
        [0] = "ax",    [1] = "cx",    [2] = "dx",    [3] = "bx",    [4] = "sp",    [5] = "bp",
        [6] = "si",    [7] = "di",    [8] = "r8w",   [9] = "r9w",   [10] = "r10w", [11] = "r11w",
        [12] = "r12w", [13] = "r13w", [14] = "r14w", [15] = "r15w",
};
_Static_assert(sizeof(reg16_names) / sizeof(reg16_names[0]) == 16, "a name per register");

struct textbuf {
        char *s;
        size_t size, at;
};

static void put(struct textbuf *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct textbuf *t, const char *fmt, ...)
{
        va_list ap;
        int r;

        if (t->at >= t->size)
                return;
        va_start(ap, fmt);
        r = vsnprintf(t->s + t->at, t->size - t->at, fmt, ap);
        va_end(ap);
        if (r > 0)
                t->at += (size_t)r;
}

static void put_rm(struct textbuf *t, const struct cls *c)
{
        if (c->modrm >> 6 == 3)
                put(t, "%s", reg16_names[(c->modrm & 7) | (c->p.rex & 1 ? 8 : 0)]);
        else
                put(t, "<mem>");
}

static void own_text(const struct cls *c, const uint8_t *code, char *buf, size_t size)
{
        static const char suffix[] = { [16] = 'w', [32] = 'd', [64] = 'q' };
        struct textbuf t = { buf, size, 0 };
        const struct op_info *op = c->op;
        uint8_t reg = (c->modrm >> 3) & 7;

        buf[0] = 0;
        for (size_t i = 0; i < c->p.n; i++) {
                switch (code[i]) {
                case 0xf0: put(&t, "lock "); break;
                case 0xf2: put(&t, "repne "); break;
                case 0xf3: put(&t, "rep "); break;
                case 0x66: put(&t, "data "); break;
                case 0x67: put(&t, "addr "); break;
                case 0x26: put(&t, "es "); break;
                case 0x2e: put(&t, "cs "); break;
                case 0x36: put(&t, "ss "); break;
                case 0x3e: put(&t, "ds "); break;
                case 0x64: put(&t, "fs "); break;
                case 0x65: put(&t, "gs "); break;
                default:
                        put(&t, "rex%s%s%s%s ", code[i] & 8 ? ".w" : "", code[i] & 4 ? ".r" : "",
                            code[i] & 2 ? ".x" : "", code[i] & 1 ? ".b" : "");
                        break;
                }
        }
        switch (op->kind) {
        case K_SREG:
                put(&t, "mov %s, ", sreg_names[reg]);
                put_rm(&t, c);
                break;
        case K_GRP5:
                put(&t, "%s ",
                    reg == 2   ? "call"
                    : reg == 3 ? "lcall"
                    : reg == 4 ? "jmp"
                    : reg == 5 ? "ljmp"
                               : "(bad)");
                put_rm(&t, c);
                break;
        case K_MOVCR:
                put(&t, "mov cr%u, %s", reg | (c->p.rex & 4 ? 8u : 0u),
                    reg16_names[(c->modrm & 7) | (c->p.rex & 1 ? 8 : 0)]);
                break;
        case K_GRP7:
                put(&t, "lmsw ");
                put_rm(&t, c);
                break;
        case K_LSS:
        case K_MODRM:
                put(&t, "%s ", op->mnem);
                put_rm(&t, c);
                break;
        case K_STRING:
                put(&t, "%s%c", op->mnem,
                    !(c->opc & 1)
                            ? 'b'
                            : suffix[op->flags ? (c->opsize == 64 ? 32 : c->opsize) : c->opsize]);
                break;
        case K_INTN: put(&t, "int 0x%x", code[c->len - 1]); break;
        case K_IMM16: put(&t, "%s 0x%x", op->mnem, code[c->len - 2] | code[c->len - 1] << 8); break;
        case K_REL8:
        case K_RELZ:
                if (c->opc >= 0x70 && c->opc <= 0x8f)
                        put(&t, "j%s", cc_names[c->opc & 15]);
                else
                        put(&t, "%s", op->mnem);
                if (c->has_target)
                        put(&t, " 0x%llx", (unsigned long long)c->target);
                break;
        case K_FARPTR:
                put(&t, "%s", op->mnem);
                if (c->has_target)
                        put(&t, " 0x%x:0x%llx", c->target_cs, (unsigned long long)c->target);
                break;
        default: put(&t, "%s", op->mnem); break;
        }
        if (c->invalid)
                put(&t, " (#UD)");
}

/* ---- decoding --------------------------------------------------------------------- */

static void fill_common(struct disasm_insn *out, const uint8_t *code, size_t n, uint64_t addr)
{
        memset(out, 0, sizeof(*out));
        out->addr = addr;
        out->len = (uint8_t)n;
        memcpy(out->bytes, code, n > 15 ? 15 : n);
        out->io_port = -1;
        out->int_vector = -1;
}

/* The text may be cut short: it is for people. */
static void cs_text(const cs_insn *ci, char *buf, size_t size, const char *pre, const char *post)
{
        struct textbuf t = { buf, size, 0 };

        buf[0] = 0;
        put(&t, "%s%s", pre, ci->mnemonic);
        if (ci->op_str[0])
                put(&t, " %s", ci->op_str);
        put(&t, "%s", post);
}

/*
 * LOCK on an instruction that does not allow it: capstone rejects the bytes,
 * so ask it for the length without the LOCK prefixes (and without a REX that
 * dropping them would make effective).
 */
static int decode_lock_ud(struct disasm *d, int m, const struct cls *c, const uint8_t *code,
                          size_t len, uint64_t addr, struct disasm_insn *out)
{
        uint8_t buf[15];
        size_t n = 0, dropped = 0, avail = len < 15 ? len : 15;
        const uint8_t *p = buf;
        uint64_t a = addr;
        cs_insn *ci = d->insn[m];

        for (size_t i = 0; i < avail; i++) {
                bool rex = i < c->p.n && m == MODE64 && (code[i] & 0xf0) == 0x40;

                if (i < c->p.n &&
                    (code[i] == 0xf0 || (rex && code[i] != c->p.rex) || (rex && i + 1 != c->p.n))) {
                        dropped++;
                        continue;
                }
                buf[n++] = code[i];
        }
        if (!cs_disasm_iter(d->h[m], &p, &n, &a, ci) || ci->size + dropped > 15)
                return -EINVAL;
        fill_common(out, code, ci->size + dropped, addr);
        out->flags = DISASM_UD;
        cs_text(ci, out->text, sizeof(out->text), "lock ", " (#UD)");
        return 0;
}

/* Whether capstone says ci writes SP, ESP, RSP or SPL (explicitly or not); 1 if it cannot say. */
static uint8_t writes_sp(csh h, const cs_insn *ci)
{
        cs_regs rd, wr;
        uint8_t nrd = 0, nwr = 0;

        if (cs_regs_access(h, ci, rd, &nrd, wr, &nwr) != CS_ERR_OK)
                return 1;
        for (unsigned i = 0; i < nwr; i++)
                if (wr[i] == X86_REG_SP || wr[i] == X86_REG_ESP || wr[i] == X86_REG_RSP ||
                    wr[i] == X86_REG_SPL)
                        return 1;
        return 0;
}

static int decode(struct disasm *d, unsigned bits, const uint8_t *code, size_t len, uint64_t addr,
                  struct disasm_insn *out);

const struct disasm_insn *disasm_decode_ref(struct disasm *d, unsigned bits, const uint8_t *code,
                                            size_t len, uint64_t addr)
{
        size_t n = len < MEMO_BYTES ? len : MEMO_BYTES;
        uint64_t h = addr * 0x9e3779b97f4a7c15ull ^ bits ^ (uint64_t)n << 8;
        uint8_t key[MEMO_BYTES] = { 0 };
        struct memo *m, *a;

        memcpy(key, code, n);
        for (size_t i = 0; i < MEMO_BYTES; i += 8) {
                uint64_t w;

                memcpy(&w, key + i, 8);
                h = (h ^ w) * 0xff51afd7ed558ccdull;
                h ^= h >> 32;
        }
        m = &d->memo[(h ^ h >> 29) & (MEMO_SLOTS - 1)];
        if (m->used && m->addr == addr && m->bits == bits && m->n == n &&
            !memcmp(m->bytes, code, n))
                return m->ret ? NULL : &m->out;
        a = &d->at[(addr * 0x9e3779b97f4a7c15ull ^ bits) >> 52 & (MEMO_SLOTS - 1)];
        if (a->used && a->addr == addr && a->bits == bits && a->n <= n &&
            !memcmp(a->bytes, code, a->n))
                return &a->out;
        /* Decoded in place: the slot is the answer, no copy of the text on the way. */
        m->ret = decode(d, bits, code, n, addr, &m->out);
        m->used = 1;
        m->addr = addr;
        m->bits = (uint8_t)bits;
        m->n = (uint8_t)n;
        memcpy(m->bytes, code, n);
        if (m->ret)
                return NULL;
        if (m->out.len && m->out.len <= n && !memchr(code, 0xf0, m->out.len)) {
                a->used = 1;
                a->addr = addr;
                a->bits = (uint8_t)bits;
                a->n = m->out.len;
                memcpy(a->bytes, code, m->out.len);
                a->out = m->out;
        }
        return &m->out;
}

int disasm_decode(struct disasm *d, unsigned bits, const uint8_t *code, size_t len, uint64_t addr,
                  struct disasm_insn *out)
{
        const struct disasm_insn *in = disasm_decode_ref(d, bits, code, len, addr);

        if (!in)
                return -EINVAL;
        *out = *in;
        return 0;
}

static int decode(struct disasm *d, unsigned bits, const uint8_t *code, size_t len, uint64_t addr,
                  struct disasm_insn *out)
{
        int m = mode_of(bits);
        const uint8_t *p = code;
        size_t left = len;
        uint64_t a = addr;
        struct cls c;
        cs_insn *ci;
        bool cs_ok;

        if (m < 0 || !len)
                return -EINVAL;
        cls_decode(bits, code, len, addr, &c);
        switch (c.status) {
        case CLS_SHORT:
        case CLS_LONG: return -EINVAL;
        case CLS_LOCK_UD: return decode_lock_ud(d, m, &c, code, len, addr, out);
        default: break;
        }
        ci = d->insn[m];
        cs_ok = cs_disasm_iter(d->h[m], &p, &left, &a, ci);
        if (c.status == CLS_UNKNOWN) {
                if (!cs_ok || ci->size > 15)
                        return -EINVAL;
                fill_common(out, ci->bytes, ci->size, addr);
                cs_text(ci, out->text, sizeof(out->text), "", "");
                classify(d->h[m], ci, out);
                out->sp_write = writes_sp(d->h[m], ci);
                /* Near targets wrap at the operand size: 16 bits unless 0x66 makes it 32. */
                if (bits == 16 && out->has_target && !(out->flags & DISASM_FAR))
                        out->target &=
                                ci->detail->x86.prefix[2] == 0x66 ? 0xffffffffull : 0xffffull;
                return 0;
        }

        fill_common(out, code, c.len, addr);
        out->flags = c.flags;
        out->has_target = c.has_target;
        out->target = c.target;
        out->target_cs = c.target_cs;
        out->int_vector = c.int_vector;
        out->io_size = c.io_size;
        /* Of the classifier's instructions only these move the stack pointer. */
        out->sp_write = !!(c.flags & (DISASM_LSS | DISASM_POP_SS | DISASM_POPF | DISASM_IRET |
                                      DISASM_RET | DISASM_CALL | DISASM_INT | DISASM_SYSCALL));
        if (cs_ok && ci->size == c.len)
                cs_text(ci, out->text, sizeof(out->text), "", c.invalid ? " (#UD)" : "");
        else
                own_text(&c, code, out->text, sizeof(out->text));
        return 0;
}

/* A legacy prefix (SDM Vol. 2A 2.1.1) or a REX byte, in any mode (INC/DEC outside 64-bit). */
static bool is_prefix(uint8_t b)
{
        return b == 0xf0 || b == 0xf2 || b == 0xf3 || b == 0x2e || b == 0x36 || b == 0x3e ||
               b == 0x26 || b == 0x64 || b == 0x65 || b == 0x66 || b == 0x67 || (b & 0xf0) == 0x40;
}

uint16_t disasm_delaying_ending(unsigned bits, const uint8_t *code, size_t len)
{
        size_t span = len < 15 ? len : 15, near = span < 7 ? span : 7;
        const uint8_t *end = code + len;
        uint16_t lens = 0;
        struct cls c;

        if (mode_of(bits) < 0 || !span)
                return 0;
        /*
         * STI and POP SS end in their opcode; MOV SS is at most 8e ModRM SIB
         * disp32, so its opcode is among the last 7 bytes.
         */
        if (end[-1] != 0xfb && (end[-1] != 0x17 || bits == 64) && !memchr(end - near, 0x8e, near))
                return 0;
        /*
         * A reading of length k is prefixes from end - k, then the opcode:
         * only the k that put nothing but prefixes (is_prefix holds more
         * than the classifier takes) before such an opcode can hold.
         */
        for (size_t o = len - near; o < len; o++) {
                uint8_t b = code[o];

                if (b != 0x8e && (o != len - 1 || (b != 0xfb && (b != 0x17 || bits == 64))))
                        continue;
                for (size_t j = o; len - j <= span; j--) {
                        size_t k = len - j;

                        cls_decode(bits, code + j, k, 0, &c);
                        if (c.status == CLS_OK && c.len == k &&
                            (c.flags & (DISASM_STI | DISASM_MOV_SS | DISASM_POP_SS)))
                                lens |= (uint16_t)(1u << (k - 1));
                        if (!j || !is_prefix(code[j - 1]))
                                break;
                }
        }
        return lens;
}

int disasm_is_io_insn(const struct disasm_insn *insn, int out, unsigned port, unsigned size)
{
        uint32_t dir = out ? DISASM_OUT : DISASM_IN;

        if (!(insn->flags & dir) || insn->io_size != size)
                return 0;
        return insn->io_port < 0 || (unsigned)insn->io_port == (port & 0xffff);
}

/* The longest port I/O instruction that can end at code[at], by its opcode and prefixes. */
static size_t io_kmax(const uint8_t *code, size_t at)
{
        size_t kmax = 0;

        /*
         * A port I/O instruction is prefixes, then its opcode, last (INS, OUTS,
         * IN and OUT with DX: 6C-6F, EC-EF) or followed by an imm8 (E4-E7):
         * none can start before the prefixes in front of such an opcode, and
         * without one none ends at rip.  An I/O loop's exits would otherwise
         * decode up to 15 times each.
         */
        for (size_t back = 1; back <= 2 && back <= at; back++) {
                size_t j = at - back; /* the opcode's place */
                uint8_t b = code[j];

                if (back == 1 ? (b & 0xfc) != 0x6c && (b & 0xfc) != 0xec : (b & 0xfc) != 0xe4)
                        continue;
                while (j && at - j < 15 && is_prefix(code[j - 1]))
                        j--;
                if (at - j > kmax)
                        kmax = at - j;
        }
        return kmax;
}

/* The length of the shortest matching I/O instruction ending at code[at], or 0. */
static uint8_t io_completed_len(struct disasm *d, unsigned bits, const uint8_t *code, size_t at,
                                uint64_t rip, int out, unsigned port, unsigned size)
{
        size_t kmax = io_kmax(code, at);

        /* The shortest instruction ending at rip wins: prefixes make longer ones decode too. */
        for (size_t k = 1; k <= kmax; k++) {
                const struct disasm_insn *in =
                        disasm_decode_ref(d, bits, code + at - k, k, rip - k);

                if (in && in->len == k && disasm_is_io_insn(in, out, port, size))
                        return (uint8_t)k;
        }
        return 0;
}

void disasm_io_candidates(struct disasm *d, unsigned bits, const uint8_t *code, size_t len,
                          size_t at, uint64_t rip, int out, unsigned port, unsigned size,
                          struct disasm_io_site *completed, struct disasm_io_site *pending)
{
        uint8_t k;

        memset(completed, 0, sizeof(*completed));
        memset(pending, 0, sizeof(*pending));
        if (at < len && !disasm_decode(d, bits, code + at, len - at, rip, &pending->insn))
                pending->found = disasm_is_io_insn(&pending->insn, out, port, size);
        k = io_completed_len(d, bits, code, at, rip, out, port, size);
        if (k && !disasm_decode(d, bits, code + at - k, k, rip - k, &completed->insn))
                completed->found = 1;
}

void disasm_io_readings(struct disasm *d, unsigned bits, const uint8_t *code, size_t len, size_t at,
                        uint64_t rip, int out, unsigned port, unsigned size, uint8_t *completed_len,
                        int *pending)
{
        const struct disasm_insn *p = NULL;

        if (at < len)
                p = disasm_decode_ref(d, bits, code + at, len - at, rip);
        *pending = p && disasm_is_io_insn(p, out, port, size);
        *completed_len = io_completed_len(d, bits, code, at, rip, out, port, size);
}
