// SPDX-License-Identifier: MIT
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hvtrace/trace.h>

#include "guest.h"

static int read_file(const char *path, uint64_t max, uint8_t **data, size_t *size, char *why,
                     size_t len)
{
        struct stat st;
        uint8_t *buf;
        size_t got = 0;
        int fd, err;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                err = -errno;
                snprintf(why, len, "cannot open guest '%s': %s", path, strerror(errno));
                return err;
        }
        if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
                err = -EINVAL;
                snprintf(why, len, "guest '%s' is not a regular file", path);
                goto err_close;
        }
        if (st.st_size == 0) {
                err = -EINVAL;
                snprintf(why, len, "guest '%s' is empty", path);
                goto err_close;
        }
        if ((uint64_t)st.st_size > max) {
                err = -EFBIG;
                snprintf(why, len, "guest '%s' (%lld bytes) does not fit in guest memory", path,
                         (long long)st.st_size);
                goto err_close;
        }
        buf = malloc((size_t)st.st_size);
        if (!buf) {
                err = -ENOMEM;
                snprintf(why, len, "out of memory reading '%s'", path);
                goto err_close;
        }
        while (got < (size_t)st.st_size) {
                ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        err = n < 0 ? -errno : -EIO;
                        snprintf(why, len, "cannot read guest '%s': %s", path,
                                 n < 0 ? strerror(errno) : "file shrank");
                        goto err_free;
                }
                got += (size_t)n;
        }
        close(fd);
        *data = buf;
        *size = got;
        return 0;

err_free:
        free(buf);
err_close:
        close(fd);
        return err;
}

int guest_open(const char *path, uint64_t load_addr, uint64_t mem_size, struct guest_image *g,
               char *why, size_t len)
{
        int err;

        memset(g, 0, sizeof(*g));
        err = read_file(path, mem_size, &g->file, &g->file_size, why, len);
        if (err)
                return err;
        if (load_addr > mem_size || g->file_size > mem_size - load_addr) {
                snprintf(why, len,
                         "guest '%s' (%zu bytes) at 0x%" PRIx64 " overruns guest memory (%" PRIu64
                         " bytes)",
                         path, g->file_size, load_addr, mem_size);
                guest_close(g);
                return -ERANGE;
        }
        g->seg[0] = (struct guest_segment){load_addr, g->file, g->file_size, g->file_size};
        g->nseg = 1;
        g->entry = load_addr;
        g->mode = TRACE_MODE_REAL;
        return 0;
}

int guest_place(const struct guest_image *g, struct backend *b, char *why, size_t len)
{
        for (int i = 0; i < g->nseg; i++) {
                const struct guest_segment *s = &g->seg[i];

                if (s->gpa > b->mem_size || s->memsz > b->mem_size - s->gpa) {
                        snprintf(why, len, "segment at 0x%" PRIx64 " overruns guest memory",
                                 s->gpa);
                        return -ERANGE;
                }
                backend_load(b, s->gpa, s->data, s->filesz);
                memset(b->mem + s->gpa + s->filesz, 0, s->memsz - s->filesz);
        }
        return 0;
}

void guest_close(struct guest_image *g)
{
        free(g->file);
        memset(g, 0, sizeof(*g));
}
