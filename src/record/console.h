/* SPDX-License-Identifier: MIT */
/*
 * The guest's console (docs/guest-abi.md): the bytes of an OUT to port
 * 0xE9, as hvrec's guest ABI (abi.c) and hvrec exec's preload library both
 * write them into CONSOLE records, so that dump and diff show a VMM's
 * trace's console as they show hvrec's.
 */
#ifndef HVREC_CONSOLE_H
#define HVREC_CONSOLE_H

#include <stddef.h>
#include <stdint.h>

#include <hvtrace/hvtrace.h>

/* The console port: Bochs' and QEMU's isa-debugcon's "port E9 hack". */
#define CONSOLE_PORT 0xE9

/*
 * The characters of a console OUT (io, its data) into text, at most cap:
 * the low byte of each element, for a string OUT one per element.
 * Returns how many.
 */
static inline size_t console_text(const struct hvt_disk_io *io, const uint8_t *data, uint8_t *text,
                                  size_t cap)
{
        size_t n = 0;

        for (uint32_t i = 0; i < io->count && n < cap; i++)
                text[n++] = data[(size_t)i * io->size];
        return n;
}

#endif
