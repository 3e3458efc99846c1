// SPDX-License-Identifier: MIT
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hvtrace/hvtrace.h>

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

/* One program header, widened: the 32- and 64-bit layouts differ. */
struct phdr {
        uint32_t type;
        uint64_t offset, paddr, filesz, memsz;
};

static bool read_phdr(const struct guest_image *g, bool is64, uint64_t off, struct phdr *p)
{
        if (is64) {
                Elf64_Phdr h;

                if (off > g->file_size || sizeof(h) > g->file_size - off)
                        return false;
                memcpy(&h, g->file + off, sizeof(h));
                *p = (struct phdr){ h.p_type, h.p_offset, h.p_paddr, h.p_filesz, h.p_memsz };
        } else {
                Elf32_Phdr h;

                if (off > g->file_size || sizeof(h) > g->file_size - off)
                        return false;
                memcpy(&h, g->file + off, sizeof(h));
                *p = (struct phdr){ h.p_type, h.p_offset, h.p_paddr, h.p_filesz, h.p_memsz };
        }
        return true;
}

/* Every length and offset comes from the file: each is checked before use. */
static int elf_open(const char *path, uint64_t mem_size, struct guest_image *g, char *why,
                    size_t len)
{
        const uint8_t *id = g->file;
        uint64_t phoff, entry;
        unsigned phnum, phentsize, machine;
        bool is64;

        if (g->file_size < EI_NIDENT ||
            (id[EI_CLASS] != ELFCLASS32 && id[EI_CLASS] != ELFCLASS64)) {
                snprintf(why, len, "ELF guest '%s': truncated or unknown ELF class", path);
                return -ENOEXEC;
        }
        is64 = id[EI_CLASS] == ELFCLASS64;
        if (id[EI_DATA] != ELFDATA2LSB) {
                snprintf(why, len, "ELF guest '%s': not little-endian", path);
                return -ENOEXEC;
        }
        if (g->file_size < (is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr))) {
                snprintf(why, len, "ELF guest '%s': truncated ELF header", path);
                return -ENOEXEC;
        }
        if (is64) {
                Elf64_Ehdr eh;

                memcpy(&eh, g->file, sizeof(eh));
                machine = eh.e_machine;
                entry = eh.e_entry;
                phoff = eh.e_phoff;
                phnum = eh.e_phnum;
                phentsize = eh.e_phentsize;
        } else {
                Elf32_Ehdr eh;

                memcpy(&eh, g->file, sizeof(eh));
                machine = eh.e_machine;
                entry = eh.e_entry;
                phoff = eh.e_phoff;
                phnum = eh.e_phnum;
                phentsize = eh.e_phentsize;
        }
        if (machine != (is64 ? EM_X86_64 : EM_386)) {
                snprintf(why, len, "ELF guest '%s': machine %u is not %s", path, machine,
                         is64 ? "x86-64 (62)" : "i386 (3)");
                return -ENOEXEC;
        }
        if (phentsize != (is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr)) || !phnum) {
                snprintf(why, len, "ELF guest '%s': no usable program headers", path);
                return -ENOEXEC;
        }
        for (unsigned i = 0; i < phnum; i++) {
                struct phdr p;

                if (!read_phdr(g, is64, phoff + (uint64_t)i * phentsize, &p)) {
                        snprintf(why, len, "ELF guest '%s': truncated program header %u", path, i);
                        return -ENOEXEC;
                }
                if (p.type != PT_LOAD || !p.memsz)
                        continue;
                if (p.filesz > p.memsz || p.offset > g->file_size ||
                    p.filesz > g->file_size - p.offset) {
                        snprintf(why, len, "ELF guest '%s': segment %u is truncated", path, i);
                        return -ENOEXEC;
                }
                if (p.paddr > mem_size || p.memsz > mem_size - p.paddr) {
                        snprintf(why, len,
                                 "ELF guest '%s': segment %u at 0x%" PRIx64 "+0x%" PRIx64
                                 " is outside guest memory (%" PRIu64 " bytes)",
                                 path, i, p.paddr, p.memsz, mem_size);
                        return -ERANGE;
                }
                if (g->nseg == GUEST_MAX_SEGMENTS) {
                        snprintf(why, len, "ELF guest '%s': more than %d loadable segments", path,
                                 GUEST_MAX_SEGMENTS);
                        return -E2BIG;
                }
                g->seg[g->nseg++] =
                        (struct guest_segment){ p.paddr, g->file + p.offset, p.filesz, p.memsz };
        }
        if (!g->nseg) {
                snprintf(why, len, "ELF guest '%s': nothing to load", path);
                return -ENOEXEC;
        }
        /* Loaded in order, a later segment's zero fill would wipe an earlier one's code. */
        for (int i = 0; i < g->nseg; i++) {
                for (int j = i + 1; j < g->nseg; j++) {
                        const struct guest_segment *a = &g->seg[i], *b = &g->seg[j];

                        if (a->gpa < b->gpa + b->memsz && b->gpa < a->gpa + a->memsz) {
                                snprintf(why, len,
                                         "ELF guest '%s': loadable segments at 0x%" PRIx64
                                         "+0x%" PRIx64 " and 0x%" PRIx64 "+0x%" PRIx64 " overlap",
                                         path, a->gpa, a->memsz, b->gpa, b->memsz);
                                return -ENOEXEC;
                        }
                }
        }
        g->elf = true;
        g->entry = entry;
        g->mode = is64 ? HVT_MODE_LONG : HVT_MODE_PROTECTED;
        return 0;
}

int guest_open(const char *path, uint64_t load_addr, uint64_t mem_size, struct guest_image *g,
               char *why, size_t len)
{
        int err;

        memset(g, 0, sizeof(*g));
        /* An ELF file may be larger than RAM (symbols): its segments are checked instead. */
        err = read_file(path, UINT64_MAX, &g->file, &g->file_size, why, len);
        if (err)
                return err;
        if (g->file_size >= SELFMAG && !memcmp(g->file, ELFMAG, SELFMAG)) {
                err = elf_open(path, mem_size, g, why, len);
                if (err)
                        guest_close(g);
                return err;
        }
        if (load_addr > mem_size || g->file_size > mem_size - load_addr) {
                snprintf(why, len,
                         "guest '%s' (%zu bytes) at 0x%" PRIx64 " overruns guest memory (%" PRIu64
                         " bytes)",
                         path, g->file_size, load_addr, mem_size);
                guest_close(g);
                return -ERANGE;
        }
        g->seg[0] = (struct guest_segment){ load_addr, g->file, g->file_size, g->file_size };
        g->nseg = 1;
        g->entry = load_addr;
        g->mode = HVT_MODE_REAL;
        return 0;
}

int guest_check(const struct guest_image *g, uint64_t mem_size, uint64_t limit, char *why,
                size_t len)
{
        for (int i = 0; i < g->nseg; i++) {
                const struct guest_segment *s = &g->seg[i];

                if (s->gpa > mem_size || s->memsz > mem_size - s->gpa) {
                        snprintf(why, len,
                                 "guest segment at 0x%" PRIx64 "+0x%" PRIx64
                                 " overruns guest memory (%" PRIu64 " bytes)",
                                 s->gpa, s->memsz, mem_size);
                        return -ERANGE;
                }
                if (s->gpa + s->memsz > limit) {
                        snprintf(why, len,
                                 "guest segment at 0x%" PRIx64 "+0x%" PRIx64
                                 " overlaps hvrec's tables at 0x%" PRIx64 "-0x%" PRIx64
                                 " (see docs/guest-abi.md; try a larger --mem)",
                                 s->gpa, s->memsz, limit, mem_size - 1);
                        return -ERANGE;
                }
        }
        return 0;
}

int guest_place(const struct guest_image *g, struct backend *b, char *why, size_t len)
{
        int err = guest_check(g, b->mem_size, b->mem_size, why, len);

        if (err)
                return err;
        for (int i = 0; i < g->nseg; i++) {
                const struct guest_segment *s = &g->seg[i];

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
