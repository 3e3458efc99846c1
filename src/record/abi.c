// SPDX-License-Identifier: MIT
/*
 * The guest ABI (docs/guest-abi.md): console, exit, interrupt request and
 * the delivery probe, all on port I/O.  Other ports read as all-ones.
 */
#include <stdio.h>
#include <string.h>

#include "recorder.h"

void abi_fill_in(struct recorder *rec)
{
        struct backend_exit *bx = &rec->bx;

        if (bx->reason == TRACE_EXIT_IO && bx->u.io.dir == TRACE_IO_IN)
                memset(bx->u.io.data, 0xff, (size_t)bx->u.io.size * bx->u.io.count);
        else if (bx->reason == TRACE_EXIT_MMIO && !bx->u.mmio.is_write)
                memset(bx->u.mmio.data, 0xff, 8);
}

static void abi_console(struct recorder *rec)
{
        const struct trace_disk_io *io = &rec->ex.u.io.io;
        uint8_t text[4096];
        size_t n = 0;
        int err;

        /* The low byte of each access is the character. */
        for (uint32_t i = 0; i < io->count && n < sizeof(text); i++)
                text[n++] = rec->ex.u.io.data[(size_t)i * io->size];
        if (!n)
                return;
        fwrite(text, 1, n, stdout);
        err = trace_write_console(rec->w, rec->ex.seq, text, n);
        if (err)
                rec_write_failed(rec, err);
}

static void abi_exit(struct recorder *rec)
{
        uint8_t status = rec->ex.u.io.data[0];

        rec_finish(rec, TRACE_END_GUEST_EXIT, status, status, "guest exited with status %u",
                   status);
}

static void abi_irq_request(struct recorder *rec)
{
        const struct trace_disk_io *io = &rec->ex.u.io.io;

        for (uint32_t i = 0; i < io->count; i++)
                irq_raise(rec, rec->ex.u.io.data[(size_t)i * io->size], TRACE_SRC_GUEST);
}

/* ---- delivery probe ---------------------------------------------------- */

bool abi_vector_handler(const struct recorder *rec, unsigned v, uint64_t *handler)
{
        const struct trace_vcpu_state *st = &rec->ex.st;
        unsigned mode = trace_state_mode(st);
        unsigned esize = mode == TRACE_MODE_REAL ? 4 : mode == TRACE_MODE_LONG ? 16 : 8;
        uint8_t e[16];

        if ((uint64_t)v * esize + esize - 1 > st->idt.limit)
                return false;
        if (x86_read_linear(&rec->mem, st, st->idt.base + (uint64_t)v * esize, e, esize) != esize)
                return false;
        if (mode == TRACE_MODE_REAL) {
                uint16_t off = (uint16_t)(e[0] | e[1] << 8), seg = (uint16_t)(e[2] | e[3] << 8);

                *handler = ((uint64_t)seg << 4) + off;
                return true;
        }
        if (!(e[5] & 0x80))
                return false; /* gate not present */
        uint64_t off =
                (uint64_t)e[0] | (uint64_t)e[1] << 8 | (uint64_t)e[6] << 16 | (uint64_t)e[7] << 24;
        if (mode == TRACE_MODE_LONG) {
                off |= (uint64_t)e[8] << 32 | (uint64_t)e[9] << 40 | (uint64_t)e[10] << 48 |
                       (uint64_t)e[11] << 56;
                *handler = off;
        } else {
                /* The handler runs in the gate's CS; at the probe that is the current CS. */
                *handler = (st->seg[TRACE_CS].base + off) & 0xffffffffull;
        }
        return true;
}

struct probe_match {
        uint64_t cand[2];
        int ncand;
        uint64_t table_vectors[4]; /* bitmap of vectors whose entry points at a candidate */
};

static bool vector_matches(void *ctx, uint8_t v)
{
        const struct probe_match *m = ctx;

        return m->table_vectors[v / 64] & (1ull << (v % 64));
}

static void abi_probe(struct recorder *rec)
{
        const struct trace_vcpu_state *st = &rec->ex.st;
        unsigned bits = trace_state_code_bits(st), mode = trace_state_mode(st);
        struct trace_disk_deliver d = { .seq = rec->ex.seq };
        struct disasm_io_site done, pending;
        struct probe_match m = { 0 };
        uint64_t pc = trace_state_pc(st), sp = x86_linear(st, TRACE_SS, st->gpr[TRACE_F_RSP]);
        uint8_t code[30], frame[40];
        size_t before = pc >= 15 ? 15 : (size_t)pc, n;
        int nmatch = 0, vector = -1, err;

        /* Which address is the probe instruction: RIP, or just before it? */
        n = x86_read_linear(&rec->mem, st, pc - before, code, before + 15);
        disasm_io_candidates(rec->dis, bits, code, n, before, pc, 1, ABI_PORT_PROBE,
                             rec->ex.u.io.io.size, &done, &pending);
        if (done.found)
                m.cand[m.ncand++] = done.insn.addr;
        if (pending.found)
                m.cand[m.ncand++] = pc;
        if (!m.ncand)
                m.cand[m.ncand++] = pc; /* undecodable: trust RIP */

        for (unsigned v = 0; v < 256; v++) {
                uint64_t h;

                if (!abi_vector_handler(rec, v, &h))
                        continue;
                for (int c = 0; c < m.ncand; c++) {
                        if (h == m.cand[c]) {
                                m.table_vectors[v / 64] |= 1ull << (v % 64);
                                d.handler = h;
                                nmatch++;
                                vector = (int)v;
                        }
                }
        }
        if (!nmatch)
                d.handler = m.cand[0];

        if (nmatch == 1) {
                d.vector_from = TRACE_VEC_TABLE;
                irq_take_outstanding(rec, vector_matches, &m);
        } else {
                /* Shared or unknown handler: the oldest injection it can explain. */
                vector = irq_take_outstanding(rec, nmatch ? vector_matches : NULL, &m);
                d.vector_from = vector >= 0 ? TRACE_VEC_INJECTED : TRACE_VEC_UNKNOWN;
        }
        d.vector = vector >= 0 ? (uint8_t)vector : 0;

        switch (mode == TRACE_MODE_LONG ? 64 : bits) {
        case 64:
                d.frame_bits = 64;
                if (x86_read_linear(&rec->mem, st, sp, frame, 40) != 40)
                        break;
                memcpy(&d.ip, frame, 8);
                memcpy(&d.cs, frame + 8, 2);
                memcpy(&d.flags, frame + 16, 8);
                memcpy(&d.sp, frame + 24, 8);
                memcpy(&d.ss, frame + 32, 2);
                d.cs_base = 0;
                break;
        case 32:
                d.frame_bits = 32;
                if (x86_read_linear(&rec->mem, st, sp, frame, 12) != 12)
                        break;
                memcpy(&d.ip, frame, 4);
                memcpy(&d.cs, frame + 4, 2);
                memcpy(&d.flags, frame + 8, 4);
                d.sp = st->gpr[TRACE_F_RSP] + 12;
                d.ss = st->seg[TRACE_SS].selector;
                /* Same-privilege interrupts in our guests keep flat CS bases. */
                d.cs_base = d.cs == st->seg[TRACE_CS].selector ? st->seg[TRACE_CS].base : 0;
                break;
        default:
                d.frame_bits = 16;
                if (x86_read_linear(&rec->mem, st, sp, frame, 6) != 6)
                        break;
                memcpy(&d.ip, frame, 2);
                memcpy(&d.cs, frame + 2, 2);
                memcpy(&d.flags, frame + 4, 2);
                d.sp = (st->gpr[TRACE_F_RSP] + 6) & 0xffff;
                d.ss = st->seg[TRACE_SS].selector;
                d.cs_base = mode == TRACE_MODE_REAL ? (uint64_t)d.cs << 4 : st->seg[TRACE_CS].base;
                break;
        }
        rec->deliveries++;
        err = trace_write_deliver(rec->w, &d);
        if (err)
                rec_write_failed(rec, err);
}

void abi_handle_io(struct recorder *rec)
{
        const struct trace_disk_io *io = &rec->ex.u.io.io;

        if (io->dir != TRACE_IO_OUT)
                return;
        switch (io->port) {
        case ABI_PORT_CONSOLE: abi_console(rec); break;
        case ABI_PORT_EXIT: abi_exit(rec); break;
        case ABI_PORT_IRQ: abi_irq_request(rec); break;
        case ABI_PORT_PROBE: abi_probe(rec); break;
        default: break;
        }
}
