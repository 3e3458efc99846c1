/* SPDX-License-Identifier: MIT */
/* A VMM developer's first program against an installed libhvtrace: count a trace's records. */
#include <stdio.h>
#include <hvtrace/hvtrace.h>

int main(int argc, char **argv)
{
        struct hvt_reader *r = NULL;
        struct hvt_event ev;
        unsigned long records = 0, exits = 0;
        int err = argc == 2 ? hvt_reader_open(&r, argv[1]) : -1;

        if (err) {
                fprintf(stderr, "reader: %s\n",
                        argc == 2 ? hvt_reader_message(r) : "usage: reader TRACE");
                return 2;
        }
        while ((err = hvt_reader_next(r, &ev)) == HVT_OK) {
                records++;
                exits += ev.type == HVT_REC_EXIT;
        }
        printf("%lu records, %lu exits: %s\n", records, exits, hvt_strerror(err));
        hvt_reader_close(r);
        return err == HVT_END_OF_TRACE ? 0 : 1;
}
