// SPDX-License-Identifier: MIT
/*
 * The guest ABI (docs/guest-abi.md): console, exit, interrupt request and
 * the delivery probe, all on port I/O.  Other ports read as all-ones.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "abi.h"
#include "irq.h"
#include "probe.h"
#include "recorder.h"
#include "signals.h"

void abi_fill_in(struct recorder *rec)
{
        struct backend_exit *bx = &rec->bx;

        if (bx->reason == HVT_EXIT_IO && bx->u.io.dir == HVT_IO_IN)
                memset(bx->u.io.data, 0xff, (size_t)bx->u.io.size * bx->u.io.count);
        else if (bx->reason == HVT_EXIT_MMIO && !bx->u.mmio.is_write)
                memset(bx->u.mmio.data, 0xff, 8);
}

/*
 * write(2) all of it, through EINTR (a kick lands at any time), but not
 * past a stop signal or the deadline: a reader that stopped reading must
 * not hold the run.  0 or an errno.
 */
static int write_fully(int fd, const char *p, size_t len)
{
        while (len) {
                ssize_t n = write(fd, p, len);

                if (n < 0 && errno == EINTR && !signals_must_stop())
                        continue;
                if (n <= 0)
                        return n < 0 ? errno : EIO;
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

void abi_console_flush(struct recorder *rec)
{
        struct console_out *c = &rec->console;
        int err;

        if (!c->len || c->fd < 0) {
                c->len = 0;
                return;
        }
        err = write_fully(c->fd, c->buf, c->len);
        c->len = 0;
        if (err) {
                /* EPIPE (`hvrec run g | head`), ENOSPC...: the trace still gets every byte. */
                c->err = err;
                c->fd = -1;
        }
}

/*
 * A guest's byte as text that cannot drive the terminal (unless --raw-console):
 * \n, \t and printable ASCII as they are; anything else (controls, DEL, bytes
 * above 0x7f) and the backslash itself as \xNN, so every \x in the output
 * is an escape.
 */
static void console_put(struct console_out *c, uint8_t ch, bool *newline)
{
        static const char hex[] = "0123456789abcdef";

        if (c->len + 4 > sizeof(c->buf))
                return;
        if (c->raw || ch == '\n' || ch == '\t' || (ch >= 0x20 && ch < 0x7f && ch != '\\')) {
                c->buf[c->len++] = (char)ch;
        } else {
                c->buf[c->len++] = '\\';
                c->buf[c->len++] = 'x';
                c->buf[c->len++] = hex[ch >> 4];
                c->buf[c->len++] = hex[ch & 15];
        }
        *newline |= ch == '\n';
}

static void abi_console(struct recorder *rec)
{
        const struct hvt_disk_io *io = &rec->ex.u.io.io;
        struct console_out *c = &rec->console;
        bool newline = false;
        uint8_t text[4096];
        size_t n = console_text(io, rec->ex.u.io.data, text, sizeof(text));
        int err;

        if (!n)
                return;
        for (size_t i = 0; i < n && c->fd >= 0; i++) {
                if (c->len + 4 > sizeof(c->buf))
                        abi_console_flush(rec);
                console_put(c, text[i], &newline);
        }
        if (newline)
                abi_console_flush(rec);
        err = hvt_write_console(rec->w, rec->ex.seq, text, n);
        if (err)
                rec_write_failed(rec, err);
}

/*
 * The status is the whole value written, whatever the access size: a
 * 16-bit OUT of 0x100 must not pass as 0.  A string OUT ends the run at its
 * first element, as the first write of a real one would.
 */
static void abi_exit(struct recorder *rec)
{
        const struct hvt_disk_io *io = &rec->ex.u.io.io;
        uint32_t value = 0;

        for (unsigned i = 0; i < io->size && i < 4; i++)
                value |= (uint32_t)rec->ex.u.io.data[i] << (8 * i);
        if (value <= STATUS_GUEST_MAX)
                rec_finish(rec, HVT_END_GUEST_EXIT, (int)value, value,
                           "guest exited with status %u", value);
        else
                rec_finish(rec, HVT_END_GUEST_EXIT, STATUS_GUEST_HIGH, value,
                           "guest exited with status %u (0x%x), above %d: hvrec exits with %d",
                           value, value, STATUS_GUEST_MAX, STATUS_GUEST_HIGH);
}

static void abi_irq_request(struct recorder *rec)
{
        const struct hvt_disk_io *io = &rec->ex.u.io.io;

        for (uint32_t i = 0; i < io->count; i++)
                irq_raise(rec, rec->ex.u.io.data[(size_t)i * io->size], HVT_SRC_GUEST);
}

/* ---- delivery probe ---------------------------------------------------- */

static int take_outstanding(void *ctx, bool (*match)(void *mctx, uint8_t v), void *mctx, bool *nmi)
{
        return irq_take_outstanding(ctx, match, mctx, nmi);
}

static void abi_probe(struct recorder *rec)
{
        struct gview gv = rec_view(rec);
        struct hvt_disk_deliver d;
        int err;

        probe_deliver(&gv, rec->dis, rec->ex.u.io.io.size, rec->ex.seq, take_outstanding, rec, &d);
        rec->deliveries++;
        err = hvt_write_deliver(rec->w, &d);
        if (err)
                rec_write_failed(rec, err);
}

void abi_handle_io(struct recorder *rec)
{
        const struct hvt_disk_io *io = &rec->ex.u.io.io;

        if (io->dir != HVT_IO_OUT)
                return;
        switch (io->port) {
        case ABI_PORT_CONSOLE: abi_console(rec); break;
        case ABI_PORT_EXIT: abi_exit(rec); break;
        case ABI_PORT_IRQ: abi_irq_request(rec); break;
        case PROBE_PORT: abi_probe(rec); break;
        default: break;
        }
}
