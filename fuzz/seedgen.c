// SPDX-License-Identifier: MIT
/*
 * fuzz_seedgen: makes the seed corpus of fuzz/ (scripts/fuzz-seeds.sh runs it).
 *
 *   fuzz_seedgen trim TRACE BUDGET OUT
 *       TRACE made small: memory records cut to their non-zero bytes, and
 *       as many records as fit in BUDGET raw bytes, closed with an END
 *       record so the trace stays complete; OUT is its raw stream, or the
 *       zstd file if OUT ends in .hvt;
 *   fuzz_seedgen craft DIR
 *       hand-made traces that reach corners recordings do not: every
 *       record type and exit reason, every exit flag, the three modes,
 *       header strings with unknown, repeated and empty keys, records of
 *       unknown types, a trace without END, one frame per record.  Each is
 *       written as DIR/zst/NAME.hvt (zstd, as the writer makes it) and
 *       DIR/raw/NAME.raw (its raw stream).
 *
 * Inputs are written with libhvtrace's writer, so they are what a recorder
 * produces; the fuzzers mutate them from there.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zstd.h>

#include <hvtrace/hvtrace.h>

/* Zero bytes between two non-zero runs of memory that still keep them one record. */
#define MEMORY_GAP 32

struct buf {
        uint8_t *p;
        size_t len;
};

static void die(const char *what, int err)
{
        fprintf(stderr, "fuzz_seedgen: %s: %s\n", what, strerror(err < 0 ? -err : err));
        exit(2);
}

/* A writer onto a memfd, so the compressed bytes can be read back. */
static struct hvt_writer *mem_writer(int *fd, int frame_records)
{
        struct hvt_writer_opts o = { .size = sizeof(o), .frame_records = (unsigned)frame_records };
        struct hvt_writer *w;
        int err;

        *fd = memfd_create("seed", MFD_CLOEXEC);
        if (*fd < 0)
                die("memfd_create", errno);
        err = hvt_writer_fdopen(&w, dup(*fd), &o);
        if (err)
                die("hvt_writer_fdopen", err);
        return w;
}

/* Close w and return what it wrote to fd (compressed). */
static struct buf mem_finish(struct hvt_writer *w, int fd)
{
        struct buf b;
        struct stat s;
        int err = hvt_writer_close(w);

        if (err)
                die("hvt_writer_close", err);
        if (fstat(fd, &s))
                die("fstat", errno);
        b.len = (size_t)s.st_size;
        b.p = malloc(b.len ? b.len : 1);
        if (!b.p || pread(fd, b.p, b.len, 0) != (ssize_t)b.len)
                die("reading back the trace", errno ? errno : EIO);
        close(fd);
        return b;
}

static struct buf decompress(struct buf z)
{
        ZSTD_DCtx *d = ZSTD_createDCtx();
        ZSTD_inBuffer in = { z.p, z.len, 0 };
        struct buf raw = { NULL, 0 };
        size_t cap = 0, ret = 1;

        if (!d)
                die("ZSTD_createDCtx", ENOMEM);
        while (in.pos < in.size || ret) {
                ZSTD_outBuffer out;

                if (cap - raw.len < 65536) {
                        cap = cap ? 2 * cap : 65536;
                        raw.p = realloc(raw.p, cap);
                        if (!raw.p)
                                die("realloc", ENOMEM);
                }
                out = (ZSTD_outBuffer){ raw.p + raw.len, cap - raw.len, 0 };
                ret = ZSTD_decompressStream(d, &out, &in);
                if (ZSTD_isError(ret) || (!out.pos && in.pos == in.size && ret))
                        die("decompressing the written trace", EINVAL);
                raw.len += out.pos;
        }
        ZSTD_freeDCtx(d);
        return raw;
}

static void save(const char *path, struct buf b)
{
        FILE *f = fopen(path, "wb");

        if (!f || fwrite(b.p, 1, b.len, f) != b.len || fclose(f))
                die(path, errno ? errno : EIO);
}

static void check(int err, const char *what)
{
        if (err)
                die(what, err);
}

/* ---- trim ---------------------------------------------------------------------------- */

static void write_memory_trimmed(struct hvt_writer *w, const struct hvt_memory *m)
{
        size_t i = 0;

        while (i < m->len) {
                size_t start, end, zeros = 0;

                while (i < m->len && !m->data[i])
                        i++;
                if (i == m->len)
                        return;
                start = end = i;
                for (; i < m->len && zeros < MEMORY_GAP; i++) {
                        if (m->data[i]) {
                                zeros = 0;
                                end = i + 1;
                        } else {
                                zeros++;
                        }
                }
                check(hvt_write_memory(w, m->gpa + start, m->data + start, end - start),
                      "hvt_write_memory");
        }
}

/* The compressed trace of at most max records of `in`, closed with an END. */
static struct buf trim(const char *in, size_t max)
{
        struct hvt_disk_end end = { .why = HVT_END_MAX_EXITS, .status = 4 };
        struct hvt_reader *r;
        struct hvt_writer *w;
        struct hvt_event ev;
        size_t n = 0;
        int fd, err;

        err = hvt_reader_open(&r, in);
        if (err) {
                fprintf(stderr, "fuzz_seedgen: %s: %s\n", in, hvt_reader_message(r));
                exit(2);
        }
        w = mem_writer(&fd, 0);
        while (n < max && (err = hvt_reader_next(r, &ev)) == HVT_OK) {
                if (ev.type == HVT_REC_MEMORY) {
                        write_memory_trimmed(w, &ev.memory);
                } else {
                        check(hvt_write_event(w, &ev), "hvt_write_event");
                        if (ev.type == HVT_REC_EXIT) {
                                end.exits++;
                                end.last_rip = ev.exit.st.rip;
                                end.wall_ns = ev.exit.time_ns;
                        }
                }
                if (ev.type == HVT_REC_END)
                        break;
                n++;
        }
        if (ev.type != HVT_REC_END)
                check(hvt_write_end(w, &end, "cut short by fuzz_seedgen"), "hvt_write_end");
        hvt_reader_close(r);
        return mem_finish(w, fd);
}

static int cmd_trim(const char *in, const char *budget_s, const char *out)
{
        size_t budget = strtoul(budget_s, NULL, 0), max = SIZE_MAX, n = strlen(out);
        bool zst = n > 4 && !strcmp(out + n - 4, ".hvt");

        for (;;) {
                struct buf z = trim(in, max), raw = decompress(z);

                if (raw.len <= budget || max <= 2) {
                        save(out, zst ? z : raw);
                        free(z.p);
                        free(raw.p);
                        return 0;
                }
                free(z.p);
                /* Scale the record count to the budget, with a margin for the big header. */
                if (max == SIZE_MAX)
                        max = 1 << 20;
                max = max * budget / raw.len * 9 / 10;
                if (max < 2)
                        max = 2;
                free(raw.p);
        }
}

/* ---- craft --------------------------------------------------------------------------- */

struct crafted {
        const char *name;
        unsigned mode;   /* enum hvt_mode */
        bool end;        /* close with an END record */
        bool frame_each; /* one zstd frame per record */
        bool raw_header; /* header built by hand: unknown, repeated, empty keys */
};

static void header(struct hvt_writer *w, const struct crafted *c)
{
        static const char *const argv[] = { "hvrec", "run", "--seed", "1", "crafted.bin" };
        struct hvt_header h = { 0 };

        h.h.load_addr = 0x1000;
        h.h.entry = 0x1000;
        h.h.mem_size = 0x20000;
        h.h.seed = 1;
        h.h.guest_mode = c->mode;
        h.h.flags = HVT_HDR_SINGLE_STEP | HVT_HDR_KICKS | HVT_HDR_WRITES | HVT_HDR_STEP_INJECT |
                    0x80000000u;
        h.h.backend_caps = 0x3ff | 0x40000000u;
        h.h.inject_policy = HVT_POLICY_EAGER;
        if (c->raw_header) {
                /* Fixed part, then: key 0, an unknown key, BACKEND twice, an empty
                 * GUEST, a command line whose last argument has no terminator, and
                 * three stray bytes (fewer than an item header: ignored). */
                static const uint8_t items[] = {
                        0, 0, 3, 0,   'x', 'y', 'z', 99,  0,   4, 0,   'n', 'e', 'w', '!', 2,
                        0, 3, 0, 'o', 'l', 'd', 2,   0,   3,   0, 'e', 'm', 'u', 8,   0,   0,
                        0, 7, 0, 7,   0,   'a', 0,   'b', 'c', 0, 'd', 'e', 1,   2,   3,
                };
                uint8_t p[sizeof(h.h) + sizeof(items)];

                memcpy(p, &h.h, sizeof(h.h));
                memcpy(p + sizeof(h.h), items, sizeof(items));
                check(hvt_write_raw(w, HVT_REC_HEADER, 0, p, sizeof(p)), "header");
                return;
        }
        h.str[HVT_STR_TOOL_VERSION] = "hvrec 0.1.0";
        h.str[HVT_STR_BACKEND] = "emu";
        h.str[HVT_STR_BACKEND_VERSION] = "crafted";
        h.str[HVT_STR_CPU_VENDOR] = "GenuineIntel";
        h.str[HVT_STR_CPU_MODEL] = "\"quoted\" \\ model\n\t\x01";
        h.str[HVT_STR_KERNEL] = "";
        h.str[HVT_STR_GUEST] = "crafted.bin";
        h.argv = argv;
        h.argc = 5;
        check(hvt_write_header(w, &h), "header");
}

/* Code at 0x1000 and the interrupt table entry of vector 0x30. */
static void memory(struct hvt_writer *w, unsigned mode)
{
        /* sti; hlt; mov ss, ax; nop; out 0xe2, al (the probe, at 0x1006); iret; rep outsw */
        static const uint8_t code[] = { 0xfb, 0xf4, 0x8e, 0xd0, 0x90, 0x90, 0xe6,
                                        0xe2, 0xcf, 0xf3, 0x6f, 0x0f, 0x0b };
        static const uint8_t ivt[] = { 0x06, 0x10, 0x00, 0x00 };
        /* A 32-bit interrupt gate to 0x1006 through selector 8 (protected mode). */
        static const uint8_t gate32[] = { 0x06, 0x10, 0x08, 0x00, 0x00, 0x8e, 0x00, 0x00 };
        static const uint8_t gate64[] = { 0x06, 0x10, 0x18, 0x00, 0x00, 0x8e, 0x00, 0x00,
                                          0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00 };

        check(hvt_write_memory(w, 0x1000, code, sizeof(code)), "memory");
        if (mode == HVT_MODE_REAL)
                check(hvt_write_memory(w, 0x30 * 4, ivt, sizeof(ivt)), "memory");
        else if (mode == HVT_MODE_PROTECTED)
                check(hvt_write_memory(w, 0x2000 + 0x30 * 8, gate32, sizeof(gate32)), "memory");
        else
                check(hvt_write_memory(w, 0x2000 + 0x30 * 16, gate64, sizeof(gate64)), "memory");
}

static void state(struct hvt_vcpu_state *st, unsigned mode)
{
        memset(st, 0, sizeof(*st));
        st->rflags = 0x2;
        for (unsigned s = 0; s < HVT_SREG_COUNT; s++) {
                st->seg[s].limit = 0xffff;
                st->seg[s].attr = HVT_SEG_P | HVT_SEG_S | 0x3;
        }
        st->seg[HVT_CS].attr = HVT_SEG_P | HVT_SEG_S | 0xb;
        st->idt.limit = 0x3ff;
        st->gpr[HVT_F_RSP] = 0x1000;
        if (mode == HVT_MODE_REAL)
                return;
        st->cr0 = 0x11;
        st->idt.base = 0x2000;
        st->idt.limit = mode == HVT_MODE_LONG ? 0xfff : 0x7ff;
        st->gdt.base = 0x1f000;
        st->gdt.limit = 0x27;
        for (unsigned s = 0; s < HVT_SREG_COUNT; s++) {
                st->seg[s].limit = 0xffffffff;
                st->seg[s].selector = 0x10;
                st->seg[s].attr |= HVT_SEG_DB | HVT_SEG_G;
        }
        st->seg[HVT_CS].selector = 0x08;
        if (mode == HVT_MODE_LONG) {
                st->cr0 |= 0x80000000u;
                st->cr4 = 0x20;
                st->cr3 = 0x1d000;
                st->efer = 0x500;
                st->seg[HVT_CS].selector = 0x18;
                st->seg[HVT_CS].attr = (st->seg[HVT_CS].attr & ~HVT_SEG_DB) | HVT_SEG_L;
        }
}

/* One exit at rip with the instruction bytes found there in the crafted code. */
static void exit_at(struct hvt_writer *w, struct hvt_exit *e, uint64_t rip, unsigned reason,
                    const void *insn, unsigned len)
{
        e->st.rip = rip;
        e->reason = (uint16_t)reason;
        e->raw_reason = reason + 100;
        e->insn_len = (uint8_t)len;
        if (len)
                memcpy(e->insn, insn, len);
        e->time_ns += 1500;
        e->guest_ns = 1200;
        check(hvt_write_exit(w, e), "exit");
        e->seq++;
}

static void craft_records(struct hvt_writer *w, const struct crafted *c)
{
        static const uint8_t out_e9[] = { 0xe6, 0xe9 }, hlt[] = { 0xf4 }, sti[] = { 0xfb },
                             movss[] = { 0x8e, 0xd0 }, probe[] = { 0xe6, 0xe2 },
                             outsw[] = { 0xf3, 0x6f }, ud2[] = { 0x0f, 0x0b };
        static const uint8_t text[] = { 'h', 'i', '\n', 0, '"', '\\', 0x7f, 0xc3, 0xa9, 0xff };
        static const uint8_t frame[] = { 0x02, 0x10, 0x00, 0x00, 0x02, 0x02 };
        static uint16_t words[3] = { 0x4241, 0x4443, 0x4645 };
        struct hvt_exit e = { 0 };
        struct hvt_disk_raise ra = { .vector = 0x30, .source = HVT_SRC_KICK };
        struct hvt_disk_inject in = { .vector = 0x30,
                                      .policy = HVT_POLICY_EAGER,
                                      .method = HVT_INJ_QUEUE,
                                      .source = HVT_SRC_KICK };
        struct hvt_disk_deliver d = { .vector = 0x30, .vector_from = HVT_VEC_TABLE };
        uint8_t unknown[] = { 'f', 'u', 't', 'u', 'r', 'e' };
        state(&e.st, c->mode);
        e.st.intr =
                HVT_INTR_VALID_SHADOW | HVT_INTR_VALID_IF | HVT_INTR_VALID_READY | HVT_INTR_READY;

        /* Console output through port 0xE9, then STI; HLT. */
        e.st.gpr[0] = 'h';
        e.u.io.io = (struct hvt_disk_io){ .port = 0xe9, .size = 1, .dir = HVT_IO_OUT, .count = 1 };
        e.u.io.data = text;
        exit_at(w, &e, 0x100d, HVT_EXIT_IO, out_e9, 2);
        check(hvt_write_console(w, e.seq - 1, text, sizeof(text)), "console");
        check(hvt_write_console(w, e.seq - 1, NULL, 0), "console");

        e.st.rflags = 0x202;
        e.st.intr = HVT_INTR_VALID_SHADOW | HVT_INTR_VALID_IF | HVT_INTR_VALID_READY | HVT_INTR_IF |
                    HVT_INTR_STI_SHADOW;
        e.u.debug = (struct hvt_disk_debug){ .exception = 1, .pc = 0x1001, .dr6 = 0x4000 };
        exit_at(w, &e, 0x1001, HVT_EXIT_DEBUG, sti, 1);
        ra.seq = e.seq - 1;
        check(hvt_write_raise(w, &ra), "raise");
        /* Eager: injected inside the STI shadow, delivered before the HLT ran. */
        in.after_seq = e.seq - 1;
        in.rip = 0x1001;
        in.rflags = 0x202;
        in.intr = (uint32_t)e.st.intr;
        in.handler = 0x1006;
        check(hvt_write_inject(w, &in), "inject");

        e.st.rflags = 0x2;
        e.st.gpr[HVT_F_RSP] -= c->mode == HVT_MODE_REAL ? 6 : c->mode == HVT_MODE_LONG ? 40 : 12;
        e.st.intr = HVT_INTR_VALID_SHADOW | HVT_INTR_VALID_IF;
        e.u.io.io = (struct hvt_disk_io){ .port = 0xe2, .size = 1, .dir = HVT_IO_OUT, .count = 1 };
        e.u.io.data = text;
        exit_at(w, &e, 0x1008, HVT_EXIT_IO, probe, 2);
        check(hvt_write_write(w, e.seq - 1, e.st.gpr[HVT_F_RSP], frame, sizeof(frame)), "write");
        check(hvt_write_write(w, e.seq - 1, 0x1008, NULL, 0), "write");
        d.seq = e.seq - 1;
        d.ip = 0x1001;
        d.flags = 0x202;
        d.sp = e.st.gpr[HVT_F_RSP] + 6;
        d.cs = e.st.seg[HVT_CS].selector;
        d.handler = 0x1006;
        d.frame_bits = c->mode == HVT_MODE_REAL ? 16 : c->mode == HVT_MODE_LONG ? 64 : 32;
        check(hvt_write_deliver(w, &d), "deliver");
        d.dflags = HVT_DELIVER_CS_BASE_UNKNOWN;
        d.vector_from = HVT_VEC_INJECTED;
        check(hvt_write_deliver(w, &d), "deliver");

        /* MOV SS, then a string OUT of three words, then every other reason. */
        e.st.intr = HVT_INTR_VALID_SHADOW | HVT_INTR_MOVSS_SHADOW;
        exit_at(w, &e, 0x1004, HVT_EXIT_IRQ_WINDOW, movss, 2);
        e.st.gpr[1] = 3;
        e.u.io.io = (struct hvt_disk_io){ .port = 0x3f8, .size = 2, .dir = HVT_IO_OUT, .count = 3 };
        e.u.io.data = (const uint8_t *)words;
        exit_at(w, &e, 0x1009, HVT_EXIT_IO, outsw, 2);
        e.u.io.io = (struct hvt_disk_io){ .port = 0x61, .size = 4, .dir = HVT_IO_IN, .count = 1 };
        e.u.io.data = (const uint8_t *)"\xff\xff\xff\xff";
        exit_at(w, &e, 0x1009, HVT_EXIT_IO, outsw, 2);
        e.u.mmio = (struct hvt_disk_mmio){
                .addr = 0xfee00000, .len = 4, .is_write = 1, .data = { 1, 2, 3, 4 }
        };
        exit_at(w, &e, 0x1009, HVT_EXIT_MMIO, outsw, 2);
        exit_at(w, &e, 0x1002, HVT_EXIT_HLT, hlt, 1);
        exit_at(w, &e, 0x1002, HVT_EXIT_INTR, NULL, 0);
        e.u.exception = (struct hvt_disk_exception){ .vector = 6, .cr2 = 0x1234 };
        exit_at(w, &e, 0x100b, HVT_EXIT_EXCEPTION, ud2, 2);
        e.u.debug = (struct hvt_disk_debug){ .exception = 1, .pc = 0x100b, .dr6 = 0x4000 };
        exit_at(w, &e, 0x100b, HVT_EXIT_DEBUG, ud2, 2);
        e.u.internal.internal =
                (struct hvt_disk_internal){ .suberror = 1, .ndata = HVT_INTERNAL_MAX_DATA };
        for (unsigned i = 0; i < HVT_INTERNAL_MAX_DATA; i++)
                e.u.internal.data[i] = 0x1111111111111111ull * i;
        exit_at(w, &e, 0x100b, HVT_EXIT_INTERNAL, ud2, 2);
        e.u.fail_entry = (struct hvt_disk_fail_entry){ .hw_reason = 0x80000021u, .cpu = 1 };
        exit_at(w, &e, 0x100b, HVT_EXIT_FAIL_ENTRY, ud2, 2);
        exit_at(w, &e, 0x100b, HVT_EXIT_UNKNOWN, ud2, 2);
        exit_at(w, &e, 0x100b, 42, ud2, 2); /* a reason from a later minor version */

        /* A gap in the numbering (SEQ flag) and more than 4.29 s between exits (TIME64). */
        e.seq += 1000;
        e.time_ns += 5ull << 32;
        e.guest_ns = 5ull << 32;
        e.st.gpr[5] = ~0ull;
        exit_at(w, &e, 0x100b, HVT_EXIT_SHUTDOWN, ud2, 2);

        check(hvt_write_raw(w, 200, 0x8000, unknown, sizeof(unknown)), "unknown record");
        check(hvt_write_raw(w, 201, 0, NULL, 0), "unknown record");
        if (c->end) {
                struct hvt_disk_end end = { .exits = e.seq,
                                            .wall_ns = e.time_ns,
                                            .last_rip = 0x100b,
                                            .why = HVT_END_CRASH,
                                            .status = 3,
                                            .detail = 7 };

                check(hvt_write_end(w, &end, "triple fault \"crafted\"\n"), "end");
        }
}

static int cmd_craft(const char *dir)
{
        static const struct crafted all[] = {
                { "craft-real", HVT_MODE_REAL, true, false, false },
                { "craft-p32", HVT_MODE_PROTECTED, true, false, false },
                { "craft-l64", HVT_MODE_LONG, true, false, false },
                { "craft-noend", HVT_MODE_REAL, false, false, false },
                { "craft-frames", HVT_MODE_REAL, true, true, false },
                { "craft-rawheader", HVT_MODE_PROTECTED, true, false, true },
        };
        char path[4096];

        for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
                const struct crafted *c = &all[i];
                int fd;
                /* frame_each: the writer ends a frame after every record. */
                struct hvt_writer *w = mem_writer(&fd, c->frame_each ? 1 : 0);
                struct buf z, raw;

                header(w, c);
                memory(w, c->mode);
                craft_records(w, c);
                z = mem_finish(w, fd);
                raw = decompress(z);
                snprintf(path, sizeof(path), "%s/zst/%s.hvt", dir, c->name);
                save(path, z);
                snprintf(path, sizeof(path), "%s/raw/%s.raw", dir, c->name);
                save(path, raw);
                free(z.p);
                free(raw.p);
        }
        return 0;
}

int main(int argc, char **argv)
{
        if (argc == 5 && !strcmp(argv[1], "trim"))
                return cmd_trim(argv[2], argv[3], argv[4]);
        if (argc == 3 && !strcmp(argv[1], "craft"))
                return cmd_craft(argv[2]);
        fprintf(stderr, "usage: fuzz_seedgen trim TRACE BUDGET OUT[.hvt] | craft DIR\n");
        return 2;
}
