// SPDX-License-Identifier: MIT
/*
 * How a run ends.  The bottom of src/record's call graph:
 * every other file may call these, and nothing here calls back.
 */
#include <cpuid.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include "recorder.h"

void rec_host(char *vendor, size_t vlen, char *model, size_t mlen, char *kernel, size_t klen)
{
        unsigned a, b, c, d, regs[12];
        struct utsname u;

        snprintf(vendor, vlen, "unknown");
        snprintf(model, mlen, "unknown");
        if (__get_cpuid(0, &a, &b, &c, &d)) {
                char v[13];

                memcpy(v, &b, 4);
                memcpy(v + 4, &d, 4);
                memcpy(v + 8, &c, 4);
                v[12] = 0;
                snprintf(vendor, vlen, "%s", v);
        }
        if (__get_cpuid(0x80000000, &a, &b, &c, &d) && a >= 0x80000004) {
                char m[49], *p = m;

                for (unsigned i = 0; i < 3; i++)
                        __get_cpuid(0x80000002 + i, &regs[4 * i], &regs[4 * i + 1],
                                    &regs[4 * i + 2], &regs[4 * i + 3]);
                memcpy(m, regs, 48);
                m[48] = 0;
                while (*p == ' ')
                        p++;
                snprintf(model, mlen, "%s", p);
        }
        if (uname(&u))
                snprintf(kernel, klen, "unknown");
        else
                snprintf(kernel, klen, "%s %s %s %s", u.sysname, u.release, u.version, u.machine);
}

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
