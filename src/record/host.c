// SPDX-License-Identifier: MIT
/*
 * The host a trace was recorded on, for its header.  On its own so that
 * hvrec exec's preload library, which links no recorder, fills the same
 * header strings as hvrec run.
 */
#include <cpuid.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include "host.h"

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
