/* SPDX-License-Identifier: MIT */
/* Guest images: read a guest file and place it in guest memory. */
#ifndef HVREC_GUEST_H
#define HVREC_GUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../backends/backend.h"

#define GUEST_MAX_SEGMENTS 16

struct guest_segment {
        uint64_t gpa;
        const uint8_t *data;
        uint64_t filesz, memsz; /* memsz > filesz: the rest is zero */
};

struct guest_image {
        uint8_t *file; /* the whole file */
        size_t file_size;
        struct guest_segment seg[GUEST_MAX_SEGMENTS];
        int nseg;
        uint64_t entry;
        unsigned mode; /* enum hvt_mode the image asks for */
        bool elf;
};

/*
 * Read a guest: an ELF executable (recognised by its magic; every PT_LOAD
 * segment at its physical address, entry e_entry, mode from the class) or a
 * flat binary to be loaded at load_addr.  Returns 0, or -errno with a
 * one-line reason in why.
 */
int guest_open(const char *path, uint64_t load_addr, uint64_t mem_size, struct guest_image *g,
               char *why, size_t len);

/*
 * Check that every segment lies in RAM (mem_size bytes) and below `limit`
 * (the start of hvrec's own tables, or the end of RAM).  Returns 0 or
 * -ERANGE with why naming the segment.
 */
int guest_check(const struct guest_image *g, uint64_t mem_size, uint64_t limit, char *why,
                size_t len);

/* Copy every segment into guest RAM (after guest_check).  Returns 0 or -ERANGE. */
int guest_place(const struct guest_image *g, struct backend *b, char *why, size_t len);

void guest_close(struct guest_image *g);

#endif
