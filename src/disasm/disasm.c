// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <capstone/capstone.h>

#include "disasm.h"

enum { MODE16, MODE32, MODE64, MODE_COUNT };

struct disasm {
        csh h[MODE_COUNT];
        cs_insn *insn[MODE_COUNT]; /* preallocated: decoding allocates nothing */
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

int disasm_decode(struct disasm *d, unsigned bits, const uint8_t *code, size_t len, uint64_t addr,
                  struct disasm_insn *out)
{
        int m = mode_of(bits);
        const uint8_t *p = code;
        uint64_t a = addr;
        cs_insn *ci;

        if (m < 0 || !len)
                return -EINVAL;
        ci = d->insn[m];
        if (!cs_disasm_iter(d->h[m], &p, &len, &a, ci))
                return -EINVAL;

        memset(out, 0, sizeof(*out));
        out->addr = addr;
        out->len = (uint8_t)ci->size;
        memcpy(out->bytes, ci->bytes, ci->size > 15 ? 15 : ci->size);
        out->io_port = -1;
        if (ci->op_str[0])
                snprintf(out->text, sizeof(out->text), "%s %s", ci->mnemonic, ci->op_str);
        else
                snprintf(out->text, sizeof(out->text), "%s", ci->mnemonic);
        classify(d->h[m], ci, out);
        /* Near targets wrap at the operand size: 16 bits unless 0x66 makes it 32. */
        if (bits == 16 && out->has_target && !(out->flags & DISASM_FAR))
                out->target &= ci->detail->x86.prefix[2] == 0x66 ? 0xffffffffull : 0xffffull;
        return 0;
}

int disasm_is_io_insn(const struct disasm_insn *insn, int out, unsigned port, unsigned size)
{
        uint32_t dir = out ? DISASM_OUT : DISASM_IN;

        if (!(insn->flags & dir) || insn->io_size != size)
                return 0;
        return insn->io_port < 0 || (unsigned)insn->io_port == (port & 0xffff);
}

void disasm_io_candidates(struct disasm *d, unsigned bits, const uint8_t *code, size_t len,
                          size_t at, uint64_t rip, int out, unsigned port, unsigned size,
                          struct disasm_io_site *completed, struct disasm_io_site *pending)
{
        memset(completed, 0, sizeof(*completed));
        memset(pending, 0, sizeof(*pending));
        if (at < len && !disasm_decode(d, bits, code + at, len - at, rip, &pending->insn))
                pending->found = disasm_is_io_insn(&pending->insn, out, port, size);
        /* The shortest instruction ending at rip wins: prefixes make longer ones decode too. */
        for (size_t k = 1; k <= 15 && k <= at; k++) {
                struct disasm_insn insn;

                if (disasm_decode(d, bits, code + at - k, k, rip - k, &insn) || insn.len != k)
                        continue;
                if (disasm_is_io_insn(&insn, out, port, size)) {
                        completed->found = 1;
                        completed->insn = insn;
                        break;
                }
        }
}
