/* SPDX-License-Identifier: MIT */
/* hvrec's -o rules, shared by its commands (output.c). */
#ifndef HVTRACE_RECORD_OUTPUT_H
#define HVTRACE_RECORD_OUTPUT_H

#include <stddef.h>

struct output {
        int fd;       /* for the writer, which takes it over */
        int size_fd;  /* a regular file's own descriptor, for its size at the end; else -1 */
        char kept[8]; /* the suffix an existing trace was moved to (".1"), or "" */
};

/*
 * Open -o: never through a symbolic link, never replacing or truncating
 * anything.  A new regular file is created with O_EXCL, after an existing
 * one has been moved aside; FIFOs, character devices and stdout are
 * written as they are; anything else is refused.  Every check is made on
 * the opened object (fstat), never on the name before using it.
 * Returns 0, or -errno with a one-line reason.
 */
int open_output(const char *path, struct output *out, char *why, size_t len);

#endif
