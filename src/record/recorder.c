// SPDX-License-Identifier: MIT
/*
 * How a run ends.  The bottom of src/record's call graph:
 * every other file may call these, and nothing here calls back.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "recorder.h"

static size_t rec_read(const void *ctx, uint64_t la, void *buf, size_t len)
{
        const struct recorder *rec = ctx;

        return x86_read_linear(&rec->mem, &rec->ex.st, la, buf, len);
}

struct gview rec_view(const struct recorder *rec)
{
        return (struct gview){ .st = &rec->ex.st, .read = rec_read, .ctx = rec };
}

void rec_finish(struct recorder *rec, unsigned why, int status, uint32_t detail, const char *fmt,
                ...)
{
        va_list ap;

        if (rec->done)
                return;
        rec->done = true;
        rec->why = why;
        rec->status = status;
        rec->detail = detail;
        va_start(ap, fmt);
        vsnprintf(rec->msg, sizeof(rec->msg), fmt, ap);
        va_end(ap);
}

int rec_write_end(struct recorder *rec)
{
        struct hvt_disk_end end = { 0 };
        int err;

        end.exits = rec->seq;
        end.wall_ns = rec->wall_ns;
        end.last_rip = rec->ex.st.rip;
        end.why = rec->why;
        end.status = rec->status;
        end.detail = rec->detail;
        err = hvt_write_end(rec->w, &end, rec->msg);
        return err ? err : hvt_writer_flush(rec->w);
}

void rec_write_failed(struct recorder *rec, int err)
{
        if (!rec->write_err)
                rec->write_err = err;
        rec_finish(rec, HVT_END_ERROR, STATUS_ERROR, 0, "writing %s: %s", rec->opts->output,
                   strerror(-err));
}
