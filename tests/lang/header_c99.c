/* SPDX-License-Identifier: MIT */
/* The public headers compile as C99 (built with -std=c99 -Werror). */
#include <hvtrace/format.h>
#include <hvtrace/hvtrace.h>

int hvt_c99_sizes(void);
int hvt_c99_sizes(void)
{
        struct hvt_event ev;

        ev.type = HVT_REC_EXIT;
        return (int)(sizeof(struct hvt_disk_exit) + ev.type);
}
