// SPDX-License-Identifier: MIT
/* Text pieces the commands share: an exit's registers, its data, its instruction. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "replay.h"

void replay_text_regs(const struct hvt_vcpu_state *st, char *buf, size_t len)
{
        static const unsigned order[] = { HVT_F_RAX, HVT_F_RBX, HVT_F_RCX, HVT_F_RDX,
                                          HVT_F_RSI, HVT_F_RDI, HVT_F_RBP, HVT_F_RSP };
        static const char *const names16[] = { "ax", "bx", "cx", "dx", "si", "di", "bp", "sp" };
        unsigned bits = hvt_state_code_bits(st);
        size_t n = 0;

        for (unsigned i = 0; i < 8; i++) {
                uint64_t v = st->gpr[order[i]];

                if (bits == 16)
                        n += (size_t)snprintf(buf + n, len - n, "%s=%04" PRIx64 " ", names16[i],
                                              v & 0xffff);
                else if (bits == 32)
                        n += (size_t)snprintf(buf + n, len - n, "e%s=%08" PRIx64 " ", names16[i],
                                              v & 0xffffffff);
                else
                        n += (size_t)snprintf(buf + n, len - n, "r%s=%" PRIx64 " ", names16[i], v);
                if (n >= len)
                        return;
        }
        snprintf(buf + n, len - n, "fl=%0*" PRIx64, bits == 16 ? 4 : 8, st->rflags);
}

uint64_t replay_io_value(const struct hvt_exit *ex)
{
        uint64_t v = 0;

        /* No bytes, no data pointer to read: a copy of an empty exit may hold NULL. */
        if (ex->u.io.io.count && ex->u.io.io.size && ex->u.io.io.size <= 8 && ex->u.io.data)
                memcpy(&v, ex->u.io.data, ex->u.io.io.size);
        return v;
}

void replay_text_exit_data(FILE *f, const struct hvt_exit *ex)
{
        switch (ex->reason) {
        case HVT_EXIT_IO: {
                const struct hvt_disk_io *io = &ex->u.io.io;

                fprintf(f, "  %s port 0x%x size %u", io->dir == HVT_IO_OUT ? "out" : "in", io->port,
                        io->size);
                if (io->count != 1)
                        fprintf(f, " count %u", io->count);
                if (io->count) {
                        fprintf(f, " data 0x%0*" PRIx64, io->size * 2, replay_io_value(ex));
                        if (io->size == 1 && io->count == 1) {
                                fputs(" '", f);
                                replay_put_escaped(f, ex->u.io.data, 1, '\'');
                                fputc('\'', f);
                        }
                }
                break;
        }
        case HVT_EXIT_MMIO:
                fprintf(f, "  mmio %s 0x%" PRIx64 " len %u data",
                        ex->u.mmio.is_write ? "write" : "read", ex->u.mmio.addr, ex->u.mmio.len);
                for (unsigned i = 0; i < ex->u.mmio.len && i < 8; i++)
                        fprintf(f, " %02x", ex->u.mmio.data[i]);
                break;
        case HVT_EXIT_FAIL_ENTRY:
                fprintf(f, "  hardware reason 0x%" PRIx64 " cpu %u", ex->u.fail_entry.hw_reason,
                        ex->u.fail_entry.cpu);
                break;
        case HVT_EXIT_INTERNAL:
                fprintf(f, "  suberror %u", ex->u.internal.internal.suberror);
                for (unsigned i = 0; i < ex->u.internal.internal.ndata; i++)
                        fprintf(f, "%s%" PRIx64, i ? " " : " data ", ex->u.internal.data[i]);
                break;
        case HVT_EXIT_DEBUG:
                fprintf(f, "  exception %u dr6=0x%" PRIx64 " dr7=0x%" PRIx64, ex->u.debug.exception,
                        ex->u.debug.dr6, ex->u.debug.dr7);
                break;
        case HVT_EXIT_EXCEPTION:
                fprintf(f, "  vector %u error 0x%x cr2=0x%" PRIx64, ex->u.exception.vector,
                        ex->u.exception.error_code, ex->u.exception.cr2);
                break;
        default: break;
        }
}

void replay_put_escaped(FILE *f, const void *s, size_t n, char quote)
{
        const uint8_t *p = s;

        for (size_t i = 0; i < n; i++) {
                uint8_t c = p[i];

                /*
                 * Only printable ASCII reaches the terminal: ESC, CSI (0x9b),
                 * CR and the rest of C0/C1 could move the cursor, retitle the
                 * window or forge lines.  Non-ASCII goes too: its bytes are
                 * not known to be UTF-8, and UTF-8 has controls of its own.
                 */
                if (c == '\n')
                        fputs("\\n", f);
                else if (c >= 0x20 && c < 0x7f && c != (uint8_t)quote && c != '\\')
                        fputc(c, f);
                else
                        fprintf(f, "\\x%02x", c);
        }
}

void replay_put_str(FILE *f, const char *s)
{
        replay_put_escaped(f, s, strlen(s), 0);
}

const char *replay_insn_text(struct disasm *d, const struct hvt_exit *ex, struct disasm_insn *in)
{
        if (!ex->insn_len)
                return "(no code at rip)";
        if (replay_decode_exit(d, ex, in))
                return "(bad)";
        return in->text;
}
