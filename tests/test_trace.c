// SPDX-License-Identifier: MIT
/*
 * Tests of the trace format library: writer/reader round trips of every
 * record type and field, delta encoding over long random sequences, zstd
 * framing, robustness against truncated and corrupt input, the names API,
 * the state helpers, the background flush thread, and WRITE records (format
 * minor 1) through the library and through hvreplay dump, stats and diff.
 *
 * Expected values come from the inputs the tests write and from the format
 * as documented in include/hvtrace/hvtrace.h and docs/trace-format.md, never
 * from a previous run of the implementation.
 *
 * The builders, readers and checks that many tests share are in
 * trace_harness.c; this file holds the tests.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <zstd.h>

#include "helpers.h"
#include "trace_harness.h"

/* ------------------------------------------------------------------------ */
/* 1. Round trips                                                           */
/* ------------------------------------------------------------------------ */

static void check_header(const struct hvt_header *got, const struct hvt_header *want,
                         const char *const *want_str)
{
        cr_assert_eq(got->h.load_addr, want->h.load_addr);
        cr_assert_eq(got->h.entry, want->h.entry);
        cr_assert_eq(got->h.mem_size, want->h.mem_size);
        cr_assert_eq(got->h.seed, want->h.seed);
        cr_assert_eq(got->h.start_realtime_ns, want->h.start_realtime_ns);
        cr_assert_eq(got->h.guest_mode, want->h.guest_mode);
        cr_assert_eq(got->h.flags, want->h.flags);
        cr_assert_eq(got->h.backend_caps, want->h.backend_caps);
        cr_assert_eq(got->h.inject_policy, want->h.inject_policy);
        for (unsigned k = 1; k < HVT_STR_COUNT; k++) {
                if (k == HVT_STR_CMDLINE)
                        continue;
                cr_assert_not_null(got->str[k], "str[%u] is NULL", k);
                cr_assert_str_eq(got->str[k], want_str[k] ? want_str[k] : "", "string key %u", k);
        }
        cr_assert_eq(got->argc, want->argc, "argc %d want %d", got->argc, want->argc);
        for (int i = 0; i < want->argc; i++)
                cr_assert_str_eq(got->argv[i], want->argv[i], "argv[%d]", i);
}

Test(trace, header_roundtrip_every_field_and_string)
{
        static const char *const argv[] = { "/usr/bin/hvrec", "run",    "",        "with space",
                                            "--seed=0x5",     "  lead", "trail  ", "" };
        const char *str[HVT_STR_COUNT] = { 0 };
        char *long_str = malloc(65536);
        const char *path = hv_tmp("hdr.zst");
        struct hvt_header h = { 0 };
        struct hvt_writer *w;
        struct hvt_reader *r;
        struct hvt_event ev;

        memset(long_str, 'g', 65535);
        long_str[65535] = 0; /* the longest string a uint16_t length can hold */
        str[HVT_STR_TOOL_VERSION] = "hvtrace 9.8.7";
        str[HVT_STR_BACKEND] = "kvm";
        str[HVT_STR_BACKEND_VERSION] = "api 12 (with spaces)";
        str[HVT_STR_CPU_VENDOR] = "GenuineIntel";
        str[HVT_STR_CPU_MODEL] = "Intel(R) Xeon(R) \xc3\xa9 model 85";
        str[HVT_STR_KERNEL] = "";
        str[HVT_STR_GUEST] = long_str;

        h.h.load_addr = 0x0000000000007c00ull;
        h.h.entry = 0xffff0000fff0fff0ull;
        h.h.mem_size = 0x0000000123456000ull;
        h.h.seed = 0xdeadbeefcafebabeull;
        h.h.start_realtime_ns = 1732550000123456789ull;
        h.h.guest_mode = HVT_MODE_LONG;
        h.h.flags = HVT_HDR_SINGLE_STEP | HVT_HDR_KICKS;
        h.h.backend_caps = 0x7f;
        h.h.inject_policy = HVT_POLICY_BACKEND;
        for (unsigned k = 1; k < HVT_STR_COUNT; k++)
                h.str[k] = str[k];
        h.argv = argv;
        h.argc = 8;

        w = th_open_writer(path, 0, 0, 0);
        cr_assert_eq(hvt_write_header(w, &h), 0);
        th_write_end(w, 0, "done");
        th_close_writer(w);

        r = th_must_open(path);
        check_header(hvt_reader_header(r), &h, str);
        th_expect_next(r, &ev, HVT_REC_HEADER);
        cr_assert_eq(ev.index, 0);
        check_header(&ev.header, &h, str);
        th_expect_next(r, &ev, HVT_REC_END);
        cr_assert_eq(ev.index, 1);
        cr_assert_eq(hvt_reader_next(r, &ev), HVT_END_OF_TRACE);
        cr_assert(hvt_reader_complete(r));
        cr_assert_eq(hvt_reader_records(r), 2);
        hvt_reader_close(r);
        free(long_str);
}

Test(trace, header_without_strings_or_argv)
{
        const char *path = hv_tmp("hdr0.zst");
        const char *none[HVT_STR_COUNT] = { 0 };
        struct hvt_header h = { 0 };
        struct hvt_writer *w;
        struct hvt_reader *r;
        struct hvt_event ev;

        h.h.mem_size = 4096;
        h.h.guest_mode = HVT_MODE_PROTECTED;
        w = th_open_writer(path, 0, 0, 0);
        cr_assert_eq(hvt_write_header(w, &h), 0);
        th_write_end(w, 0, NULL);
        th_close_writer(w);

        r = th_must_open(path);
        th_expect_next(r, &ev, HVT_REC_HEADER);
        check_header(&ev.header, &h, none);
        cr_assert_eq(ev.header.argc, 0);
        th_expect_next(r, &ev, HVT_REC_END);
        cr_assert_str_eq(ev.end.message, "", "a NULL end message reads back as empty");
        cr_assert_eq(hvt_reader_next(r, &ev), HVT_END_OF_TRACE);
        hvt_reader_close(r);
}

static bool page_has_data(const uint8_t *p, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (p[i])
                        return true;
        return false;
}

Test(trace, memory_roundtrip_skips_zero_pages)
{
        const size_t mem_size = 4u << 20;
        const uint64_t extra_gpa = 0x380003;
        const size_t extra_len = 5001;
        const char *path = hv_tmp("mem.zst");
        uint8_t *img = calloc(1, mem_size), *got = calloc(1, mem_size), *extra = malloc(extra_len);
        uint64_t s = 42, first_bytes = 0, nz_pages = 0, recs_before;
        struct hvt_header h = { 0 };
        struct hvt_writer *w;
        struct hvt_reader *r;
        struct hvt_event ev;
        size_t nmem = 0;
        int err;

        cr_assert(img && got && extra);
        img[1] = 0x11;
        img[4095] = 0xff;                                /* last byte of page 0 */
        th_rnd_bytes(&s, img + 0x3001, 0x5003 - 0x3001); /* odd start and end */
        img[0x9fff] = 0x01;                              /* a page with one byte */
        th_rnd_bytes(&s, img + 0x100000, 0x180000);      /* 1.5 MiB: split into chunks */
        img[mem_size - 1] = 0x5a;                        /* the very last byte */
        for (size_t pg = 0; pg < mem_size; pg += 4096)
                nz_pages += page_has_data(img + pg, 4096);
        for (size_t i = 0; i < extra_len; i++)
                extra[i] = (uint8_t)(1 + i % 255); /* no zero byte */

        h.h.mem_size = mem_size;
        w = th_open_writer(path, 0, 0, 0);
        cr_assert_eq(hvt_write_header(w, &h), 0);
        cr_assert_eq(hvt_write_memory(w, 0, img, mem_size), 0);
        /* An unaligned range with a length that is not a page multiple. */
        cr_assert_eq(hvt_write_memory(w, extra_gpa, extra, extra_len), 0);
        memcpy(img + extra_gpa, extra, extra_len);
        /* All zero: nothing at all is written. */
        recs_before = hvt_writer_records(w);
        cr_assert_eq(hvt_write_memory(w, 0x200000, got, 0x10000), 0);
        cr_assert_eq(hvt_writer_records(w), recs_before, "an all-zero range wrote records");
        th_write_end(w, 0, "");
        th_close_writer(w);

        r = th_must_open(path);
        th_expect_next(r, &ev, HVT_REC_HEADER);
        while ((err = hvt_reader_next(r, &ev)) == HVT_OK && ev.type == HVT_REC_MEMORY) {
                cr_assert_leq(ev.memory.gpa, mem_size);
                cr_assert_leq(ev.memory.len, mem_size - ev.memory.gpa,
                              "memory record past mem_size");
                cr_assert_gt(ev.memory.len, 0);
                cr_assert_leq(ev.memory.len, HVT_MAX_RECORD);
                memcpy(got + ev.memory.gpa, ev.memory.data, ev.memory.len);
                if (ev.memory.gpa < extra_gpa || ev.memory.gpa >= extra_gpa + extra_len) {
                        /* From the page-aligned image: only whole non-zero pages. */
                        cr_assert_eq(ev.memory.gpa % 4096, 0, "gpa %#" PRIx64, ev.memory.gpa);
                        for (size_t off = 0; off < ev.memory.len; off += 4096) {
                                size_t n = ev.memory.len - off < 4096 ? ev.memory.len - off : 4096;

                                cr_assert(page_has_data(ev.memory.data + off, n),
                                          "all-zero page at %#" PRIx64 " was written",
                                          ev.memory.gpa + off);
                        }
                        first_bytes += ev.memory.len;
                }
                nmem++;
        }
        cr_assert_eq(err, HVT_OK);
        cr_assert_eq(ev.type, HVT_REC_END);
        cr_assert_gt(nmem, 3, "1.5 MiB of data and scattered pages should need several records");
        cr_assert_eq(first_bytes, nz_pages * 4096, "%" PRIu64 " bytes for %" PRIu64 " pages",
                     first_bytes, nz_pages);
        cr_assert_eq(memcmp(got, img, mem_size), 0, "rebuilt memory image differs");
        cr_assert_eq(hvt_reader_next(r, &ev), HVT_END_OF_TRACE);
        hvt_reader_close(r);
        free(img);
        free(got);
        free(extra);
}

/* A catalogue of exits: every reason and every reason-specific variant. */
struct exit_case {
        struct hvt_exit e;
        uint8_t data[64];
};

static struct hvt_exit *next_case(struct exit_case *c, size_t *n, size_t max)
{
        cr_assert_lt(*n, max);
        memset(&c[*n], 0, sizeof(c[*n]));
        return &c[(*n)++].e;
}

static size_t build_exit_cases(struct exit_case *c, size_t max, uint64_t *s)
{
        size_t n = 0;
        struct {
                uint16_t port;
                uint8_t size, dir;
                uint32_t count;
        } io[] = {
                { 0x3f8, 1, HVT_IO_OUT, 1 },  { 0x71, 2, HVT_IO_IN, 1 },
                { 0xcf8, 4, HVT_IO_OUT, 1 },  { 0xe9, 1, HVT_IO_OUT, 13 }, /* rep outsb */
                { 0x1f0, 2, HVT_IO_IN, 7 },   { 0xcfc, 4, HVT_IO_OUT, 3 },
                { 0xffff, 4, HVT_IO_IN, 16 }, /* rep insd filling all 64 bytes */
        };

#define NEXT() next_case(c, &n, max)
        for (size_t i = 0; i < sizeof(io) / sizeof(io[0]); i++) {
                struct hvt_exit *e = NEXT();

                e->reason = HVT_EXIT_IO;
                e->raw_reason = 2;
                e->u.io.io.port = io[i].port;
                e->u.io.io.size = io[i].size;
                e->u.io.io.dir = io[i].dir;
                e->u.io.io.count = io[i].count;
                th_rnd_bytes(s, c[n - 1].data, sizeof(c[n - 1].data));
                c[n - 1].data[0] = 0; /* NUL and 0xff survive */
                c[n - 1].data[1] = 0xff;
                e->u.io.data = io[i].count ? c[n - 1].data : NULL;
        }
        for (int w = 0; w < 2; w++) {
                struct hvt_exit *e = NEXT();

                e->reason = HVT_EXIT_MMIO;
                e->raw_reason = 6;
                e->u.mmio.addr = w ? 0xfee000b0 : 0xfffffffffffff000ull;
                e->u.mmio.len = w ? 4 : 8;
                e->u.mmio.is_write = (uint8_t)w;
                th_rnd_bytes(s, e->u.mmio.data, 8);
        }
        {
                struct hvt_exit *e = NEXT();

                e->reason = HVT_EXIT_FAIL_ENTRY;
                e->raw_reason = 9;
                e->u.fail_entry.hw_reason = 0x80000021ull | (1ull << 63);
                e->u.fail_entry.cpu = 3;
        }
        for (unsigned nd = 0; nd <= HVT_INTERNAL_MAX_DATA; nd++) {
                struct hvt_exit *e = NEXT();

                e->reason = HVT_EXIT_INTERNAL;
                e->raw_reason = 17;
                e->u.internal.internal.suberror = 1 + nd;
                e->u.internal.internal.ndata = nd;
                for (unsigned i = 0; i < nd; i++)
                        e->u.internal.data[i] = th_rnd(s);
        }
        for (int bp = 0; bp < 2; bp++) {
                struct hvt_exit *e = NEXT();

                e->reason = HVT_EXIT_DEBUG;
                e->raw_reason = 4;
                e->u.debug.exception = bp ? 3 : 1;
                e->u.debug.pc = th_rnd(s);
                e->u.debug.dr6 = 0xffff0ff0 | (uint64_t)bp;
                e->u.debug.dr7 = th_rnd(s);
        }
        {
                struct hvt_exit *e = NEXT();

                e->reason = HVT_EXIT_EXCEPTION;
                e->raw_reason = 1;
                e->u.exception.vector = 14;
                e->u.exception.error_code = 0x18;
                e->u.exception.cr2 = 0xffffffff80001234ull;
        }
        {
                static const uint16_t plain[] = { HVT_EXIT_HLT,        HVT_EXIT_INTR,
                                                  HVT_EXIT_IRQ_WINDOW, HVT_EXIT_SHUTDOWN,
                                                  HVT_EXIT_UNKNOWN,    77 /* not yet defined */ };

                for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
                        struct hvt_exit *e = NEXT();

                        e->reason = plain[i];
                        e->raw_reason = 0xdead0000u + (uint32_t)i;
                }
        }
#undef NEXT
        return n;
}

Test(trace, every_record_type_and_exit_reason_roundtrip)
{
        enum { MAXC = 64 };
        static struct exit_case cases[MAXC];
        static const uint8_t unknown_payload[37] = "an extension this reader can't know";
        const char *path = hv_tmp("all.zst");
        uint64_t s = 7, t = 0, seq = 100;
        struct hvt_disk_inject inj[MAXC];
        struct hvt_disk_raise rai[MAXC];
        struct hvt_disk_deliver del[MAXC];
        uint8_t con[MAXC][40];
        uint8_t wdata[MAXC][48];
        uint64_t wgpa[MAXC];
        struct hvt_vcpu_state prev = { 0 };
        struct hvt_writer *w;
        struct hvt_reader *r;
        struct hvt_event ev;
        struct hvt_disk_end end = { 0 };
        uint64_t index = 0, written;
        size_t n = build_exit_cases(cases, MAXC, &s);
        const char *end_msg = "guest exited with status 0x2a:\tok \xff";

        cr_assert_gt(n, 35);
        /* Fill in state, timing, seq and instruction bytes. */
        for (size_t i = 0; i < n; i++) {
                struct hvt_exit *e = &cases[i].e;

                if (i % 3 == 2) {
                        e->st = cases[i - 1].e.st; /* some exits change only a little */
                        e->st.rip += i;
                        e->st.gpr[i % 16] ^= 0x8000000000000000ull;
                } else {
                        th_rand_state(&s, &e->st);
                }
                seq = (i % 4 == 3) ? seq + 1000 + i : seq + 1; /* sometimes a jump */
                e->seq = seq;
                t += (i % 5 == 4) ? (5ull << 32) + i : 1000 + th_rnd(&s) % 100000;
                e->time_ns = t;
                e->guest_ns = (i % 7 == 6) ? (3ull << 32) + i : th_rnd(&s) % 100000;
                e->insn_len = (uint8_t)(i % 16);
                th_rnd_bytes(&s, e->insn, 15);
                memset(e->insn + e->insn_len, 0, 15 - e->insn_len);
        }

        w = th_open_writer(path, 0, 0, 0);
        th_write_min_header(w);
        for (size_t i = 0; i < n; i++) {
                cr_assert_eq(hvt_write_exit(w, &cases[i].e), 0, "exit %zu", i);
                /* What the run before every other exit wrote, 0 to 47 bytes. */
                th_rnd_bytes(&s, wdata[i], sizeof(wdata[i]));
                wgpa[i] = th_rnd(&s) >> (i % 40);
                if (i % 2 == 0)
                        cr_assert_eq(hvt_write_write(w, cases[i].e.seq, wgpa[i], wdata[i],
                                                     i % sizeof(wdata[i])),
                                     0, "write %zu", i);
                memset(&inj[i], 0, sizeof(inj[i]));
                inj[i].after_seq = cases[i].e.seq;
                inj[i].rip = th_rnd(&s);
                inj[i].rflags = th_rnd(&s);
                inj[i].cs_base = th_rnd(&s);
                inj[i].handler = th_rnd(&s);
                inj[i].intr = (uint32_t)th_rnd(&s) & 0xf7f;
                inj[i].cs = (uint16_t)th_rnd(&s);
                inj[i].vector = (uint8_t)th_rnd(&s);
                inj[i].policy = (uint8_t)(i % HVT_POLICY_COUNT);
                inj[i].method = (uint8_t)(i % 3);
                inj[i].source = (uint8_t)(i % HVT_SRC_COUNT);
                memset(&rai[i], 0, sizeof(rai[i]));
                rai[i].seq = cases[i].e.seq - th_rnd(&s) % (cases[i].e.seq + 1); /* up to now */
                rai[i].vector = (uint8_t)(0x20 + i);
                rai[i].source = (uint8_t)(i % HVT_SRC_COUNT);
                memset(&del[i], 0, sizeof(del[i]));
                del[i].seq = cases[i].e.seq - th_rnd(&s) % (cases[i].e.seq + 1);
                del[i].ip = th_rnd(&s);
                del[i].flags = th_rnd(&s);
                del[i].sp = th_rnd(&s);
                del[i].cs_base = th_rnd(&s);
                del[i].handler = th_rnd(&s);
                del[i].cs = (uint16_t)th_rnd(&s);
                del[i].ss = (uint16_t)th_rnd(&s);
                del[i].vector = (uint8_t)th_rnd(&s);
                del[i].vector_from = (uint8_t)(i % 3);
                del[i].frame_bits = (uint8_t)(16 << (i % 3));
                del[i].dflags = (i % 4 == 2) ? HVT_DELIVER_CS_BASE_UNKNOWN : 0;
                th_rnd_bytes(&s, con[i], sizeof(con[i]));
                con[i][0] = 0;
                con[i][1] = 0xff;
                switch (i % 6) {
                case 0: cr_assert_eq(hvt_write_inject(w, &inj[i]), 0); break;
                case 1: cr_assert_eq(hvt_write_raise(w, &rai[i]), 0); break;
                case 2: cr_assert_eq(hvt_write_deliver(w, &del[i]), 0); break;
                case 3:
                        cr_assert_eq(hvt_write_console(w, cases[i].e.seq, con[i], i % 41), 0);
                        break;
                case 4:
                        cr_assert_eq(hvt_write_raw(w, 0x4242, 0xbeef, unknown_payload,
                                                   sizeof(unknown_payload)),
                                     0);
                        cr_assert_eq(hvt_write_raw(w, HVT_REC_TYPE_COUNT, 0, NULL, 0), 0);
                        break;
                default:
                        cr_assert_eq(hvt_write_raw(w, 0xffff, 0xffff, unknown_payload, 1), 0);
                        break;
                }
        }
        end.exits = n;
        end.wall_ns = 123456789012ull;
        end.last_rip = cases[n - 1].e.st.rip;
        end.why = HVT_END_GUEST_EXIT;
        end.status = -42;
        end.detail = 0x2a;
        cr_assert_eq(hvt_write_end(w, &end, end_msg), 0);
        written = hvt_writer_records(w);
        th_close_writer(w);

        r = th_must_open(path);
        th_expect_next(r, &ev, HVT_REC_HEADER);
        cr_assert_eq(ev.index, index++);
        for (size_t i = 0; i < n; i++) {
                char ctx[64];

                snprintf(ctx, sizeof(ctx), "exit %zu (%s)", i,
                         hvt_exit_reason_name(cases[i].e.reason));
                th_expect_next(r, &ev, HVT_REC_EXIT);
                cr_assert_eq(ev.index, index++, "%s: index", ctx);
                th_check_exit(&ev.exit, &cases[i].e, th_diff_mask(&prev, &cases[i].e.st), ctx);
                prev = cases[i].e.st;
                if (i % 2 == 0) {
                        size_t len = i % sizeof(wdata[i]);

                        th_expect_next(r, &ev, HVT_REC_WRITE);
                        cr_assert_eq(ev.index, index++, "%s: write index", ctx);
                        cr_assert_eq(ev.write.seq, cases[i].e.seq, "%s: write seq", ctx);
                        cr_assert_eq(ev.write.gpa, wgpa[i], "%s: write gpa", ctx);
                        cr_assert_eq(ev.write.len, len, "%s: write len %zu", ctx, ev.write.len);
                        cr_assert_arr_eq(ev.write.data, wdata[i], len, "%s: write data", ctx);
                }
                switch (i % 6) {
                case 0:
                        th_expect_next(r, &ev, HVT_REC_INJECT);
                        cr_assert_eq(ev.inject.after_seq, inj[i].after_seq);
                        cr_assert_eq(ev.inject.vector, inj[i].vector);
                        cr_assert_eq(memcmp(&ev.inject, &inj[i], sizeof(inj[i])), 0, "inject %zu",
                                     i);
                        break;
                case 1:
                        th_expect_next(r, &ev, HVT_REC_RAISE);
                        cr_assert_eq(memcmp(&ev.raise, &rai[i], sizeof(rai[i])), 0, "raise %zu", i);
                        break;
                case 2:
                        th_expect_next(r, &ev, HVT_REC_DELIVER);
                        cr_assert_eq(memcmp(&ev.deliver, &del[i], sizeof(del[i])), 0, "deliver %zu",
                                     i);
                        break;
                case 3:
                        th_expect_next(r, &ev, HVT_REC_CONSOLE);
                        cr_assert_eq(ev.console.seq, cases[i].e.seq);
                        cr_assert_eq(ev.console.len, i % 41);
                        cr_assert_arr_eq(ev.console.data, con[i], i % 41, "console %zu", i);
                        break;
                case 4: index += 2; break; /* two unknown records, skipped */
                default: index += 1; break;
                }
                if (i % 6 < 4)
                        cr_assert_eq(ev.index, index++);
        }
        th_expect_next(r, &ev, HVT_REC_END);
        cr_assert_eq(ev.index, index++);
        cr_assert_eq(memcmp(&ev.end.e, &end, sizeof(end)), 0);
        cr_assert_str_eq(ev.end.message, end_msg);
        cr_assert_eq(hvt_reader_next(r, &ev), HVT_END_OF_TRACE);
        cr_assert_eq(hvt_reader_next(r, &ev), HVT_END_OF_TRACE, "end of trace is sticky");
        cr_assert(hvt_reader_complete(r));
        cr_assert_eq(index, written, "every record written was accounted for");
        cr_assert_eq(hvt_reader_records(r), written);
        hvt_reader_close(r);
}

/*
 * Readers must accept fixed records longer than they know (a later minor
 * version appended fields) and exits with trailing bytes after their tail.
 */
Test(trace, longer_payloads_are_accepted)
{
        const char *path = hv_tmp("longer.zst");
        uint8_t buf[256];
        uint64_t s = 99;
        struct hvt_writer *w;
        struct hvt_reader *r;
        struct hvt_event ev;
        struct hvt_disk_exit x = { .reason = HVT_EXIT_MMIO,
                                   .raw_reason = 6,
                                   .state_mask = 1u << HVT_F_RIP,
                                   .insn_len = 2 };
        uint64_t seq = 555, rip = 0x1234;
        struct hvt_disk_mmio mm = {
                .addr = 0xd0000000, .len = 2, .is_write = 1, .data = { 0xab, 0xcd }
        };
        uint8_t xb[128];
        size_t off = 0;

        /* Random records whose first 8 bytes, the exit they name, are that of the exit. */
        th_rnd_bytes(&s, buf, sizeof(buf));
        memcpy(buf, &seq, 8);
        w = th_open_writer(path, 0, 0, 0);
        th_write_min_header(w);
        /* An exit with a seq, one field, 2 instruction bytes, the MMIO tail and 9 extra bytes. */
        memcpy(xb + off, &x, sizeof(x));
        off += sizeof(x);
        memcpy(xb + off, &seq, 8);
        off += 8;
        memcpy(xb + off, &rip, 8);
        off += 8;
        xb[off++] = 0x89;
        xb[off++] = 0x07;
        memcpy(xb + off, &mm, sizeof(mm));
        off += sizeof(mm);
        memset(xb + off, 0xee, 9);
        off += 9;
        cr_assert_eq(hvt_write_raw(w, HVT_REC_EXIT, HVT_XF_SEQ, xb, off), 0);
        cr_assert_eq(hvt_write_raw(w, HVT_REC_INJECT, 0, buf, sizeof(struct hvt_disk_inject) + 16),
                     0);
        cr_assert_eq(hvt_write_raw(w, HVT_REC_RAISE, 0, buf, sizeof(struct hvt_disk_raise) + 8), 0);
        cr_assert_eq(
                hvt_write_raw(w, HVT_REC_DELIVER, 0, buf, sizeof(struct hvt_disk_deliver) + 24), 0);
        th_write_end(w, 1, "x");
        th_close_writer(w);

        th_rnd_bytes(&(uint64_t){ 99 }, buf, sizeof(buf)); /* the same bytes again */
        memcpy(buf, &seq, 8);
        r = th_must_open(path);
        th_expect_next(r, &ev, HVT_REC_HEADER);
        th_expect_next(r, &ev, HVT_REC_EXIT);
        cr_assert_eq(ev.exit.seq, 555);
        cr_assert_eq(ev.exit.st.rip, 0x1234);
        cr_assert_eq(ev.exit.changed, 1u << HVT_F_RIP);
        cr_assert_eq(ev.exit.insn_len, 2);
        cr_assert_eq(ev.exit.insn[0], 0x89);
        cr_assert_eq(ev.exit.insn[1], 0x07);
        cr_assert_eq(ev.exit.u.mmio.addr, 0xd0000000);
        cr_assert_eq(ev.exit.u.mmio.data[1], 0xcd);
        th_expect_next(r, &ev, HVT_REC_INJECT);
        cr_assert_eq(memcmp(&ev.inject, buf, sizeof(ev.inject)), 0);
        th_expect_next(r, &ev, HVT_REC_RAISE);
        cr_assert_eq(memcmp(&ev.raise, buf, sizeof(ev.raise)), 0);
        th_expect_next(r, &ev, HVT_REC_DELIVER);
        cr_assert_eq(memcmp(&ev.deliver, buf, sizeof(ev.deliver)), 0);
        th_expect_next(r, &ev, HVT_REC_END);
        cr_assert_str_eq(ev.end.message, "x");
        cr_assert_eq(hvt_reader_next(r, &ev), HVT_END_OF_TRACE);
        hvt_reader_close(r);
}

/*
 * Each state field, and each part of the 16-byte fields, changed alone must
 * be recorded (changed == that one bit) and read back.
 *
 * BUG: src/trace/state.h hvt_field_differs_fast() (used by hvt_write_exit,
 * src/trace/writer.c:451) returns `(x[0] ^ y[0]) | (x[1] ^ y[1])`, a uint64_t,
 * as int: only the low 32 bits survive.  A change confined to the high half of
 * either word of a segment (base bits 32..63, selector, attr) or descriptor
 * table (base bits 32..63, reserved[1..2]) is not detected, so the writer
 * drops it and the reader keeps the old value.
 */
// BUG: writer drops segment/descriptor-table changes confined to the high 32 bits of a word
// (state.h hvt_field_differs_fast).
Test(trace, each_field_and_subfield_changed_alone)
{
        const char *path = hv_tmp("fields.zst");
        struct hvt_vcpu_state base, v[512];
        uint32_t bit[512];
        char what[512][48];
        uint64_t s = 2024;
        size_t nv = 0;
        struct hvt_writer *w;
        struct hvt_reader *r;
        struct hvt_event ev;
        char why[512];

        th_rand_state(&s, &base);
#define VARIANT(f, desc, stmt)                                                          \
        do {                                                                            \
                struct hvt_vcpu_state *st = &v[nv];                                     \
                *st = base;                                                             \
                stmt;                                                                   \
                bit[nv] = 1u << (f);                                                    \
                snprintf(what[nv], sizeof(what[nv]), "%s %s", hvt_field_name(f), desc); \
                nv++;                                                                   \
        } while (0)
        for (unsigned f = 0; f < HVT_F_COUNT; f++) {
                if (f >= HVT_F_ES && f <= HVT_F_GS) {
                        unsigned i = f - HVT_F_ES;

                        VARIANT(f, "base bit 0", st->seg[i].base ^= 1);
                        VARIANT(f, "base bit 40", st->seg[i].base ^= 1ull << 40);
                        VARIANT(f, "limit", st->seg[i].limit ^= 0x80000001u);
                        VARIANT(f, "selector", st->seg[i].selector ^= 0x10);
                        for (unsigned b = 0; b < 13; b++) {
                                char d[24];

                                snprintf(d, sizeof(d), "attr bit %u", b);
                                VARIANT(f, d, st->seg[i].attr ^= (uint16_t)(1u << b));
                        }
                } else if (f == HVT_F_GDT || f == HVT_F_IDT) {
                        VARIANT(f, "base bit 3",
                                ((struct hvt_disk_dtable *)th_field_ptr(st, f))->base ^= 8);
                        VARIANT(f, "base bit 63",
                                ((struct hvt_disk_dtable *)th_field_ptr(st, f))->base ^= 1ull
                                                                                         << 63);
                        VARIANT(f, "limit",
                                ((struct hvt_disk_dtable *)th_field_ptr(st, f))->limit ^= 0x8001);
                } else {
                        VARIANT(f, "bit 0", *(uint64_t *)th_field_ptr(st, f) ^= 1);
                        VARIANT(f, "bit 63", *(uint64_t *)th_field_ptr(st, f) ^= 1ull << 63);
                }
        }
#undef VARIANT
        cr_assert_lt(nv, 512);

        w = th_open_writer(path, 0, 0, 0);
        th_write_min_header(w);
        /* base, then variant, base, variant, base, ... */
        for (size_t i = 0; i <= nv; i++) {
                struct hvt_exit e = { .reason = HVT_EXIT_HLT, .seq = 2 * i, .st = base };

                cr_assert_eq(hvt_write_exit(w, &e), 0);
                if (i < nv) {
                        e.seq++;
                        e.st = v[i];
                        cr_assert_eq(hvt_write_exit(w, &e), 0);
                }
        }
        th_write_end(w, 2 * nv + 1, NULL);
        th_close_writer(w);

        r = th_must_open(path);
        th_expect_next(r, &ev, HVT_REC_HEADER);
        th_expect_next(r, &ev, HVT_REC_EXIT);
        if (!th_state_eq(&ev.exit.st, &base, why, sizeof(why)))
                cr_assert_fail("first exit: %s", why);
        for (size_t i = 0; i < nv; i++) {
                th_expect_next(r, &ev, HVT_REC_EXIT);
                if (!th_state_eq(&ev.exit.st, &v[i], why, sizeof(why)))
                        cr_assert_fail("changing only %s: %s", what[i], why);
                cr_assert_eq(ev.exit.changed, bit[i], "changing only %s: changed %#x want %#x",
                             what[i], ev.exit.changed, bit[i]);
                th_expect_next(r, &ev, HVT_REC_EXIT);
                if (!th_state_eq(&ev.exit.st, &base, why, sizeof(why)))
                        cr_assert_fail("changing %s back: %s", what[i], why);
                cr_assert_eq(ev.exit.changed, bit[i], "changing %s back", what[i]);
        }
        th_expect_next(r, &ev, HVT_REC_END);
        hvt_reader_close(r);
}

/* ------------------------------------------------------------------------ */
/* 2. Delta encoding over long random sequences                             */
/* ------------------------------------------------------------------------ */

/* A deterministic exit generator: run twice with the same seed, it yields the same exits. */
struct gen {
        uint64_t s;
        struct hvt_vcpu_state st;
        uint64_t seq, time;
        bool started;
        uint8_t io;
};

static void gen_next(struct gen *g, struct hvt_exit *e)
{
        struct hvt_vcpu_state prev = g->st;
        unsigned mode = (unsigned)(th_rnd(&g->s) % 100);
        uint64_t r;

        memset(e, 0, sizeof(*e));
        if (mode < 5) {
                /* nothing changes */
        } else if (mode < 10) {
                th_rand_state(&g->s, &g->st); /* everything changes */
        } else {
                unsigned k = 1 + (unsigned)(th_rnd(&g->s) % 6);

                while (k--)
                        th_mutate_field(&g->s, &g->st, (unsigned)(th_rnd(&g->s) % HVT_F_COUNT));
        }
        r = th_rnd(&g->s) % 1000;
        /* Exit numbers only go forwards: going back is corrupt (exit_seq_must_increase). */
        if (!g->started)
                g->seq = th_rnd(&g->s) % 1000;
        else if (r < 80)
                g->seq +=
                        2 + (th_rnd(&g->s) >> (24 + th_rnd(&g->s) % 40)); /* a jump of up to 2^40 */
        else
                g->seq++;
        g->started = true;
        r = th_rnd(&g->s) % 1000;
        if (r < 10)
                g->time += (1ull << 32) + th_rnd(&g->s) % (1ull << 40); /* dt > 2^32 */
        else if (r < 30)
                g->time += 0;
        else
                g->time += th_rnd(&g->s) % 200000;
        e->seq = g->seq;
        e->time_ns = g->time;
        r = th_rnd(&g->s) % 1000;
        e->guest_ns = r < 10 ? (1ull << 32) + th_rnd(&g->s) % (1ull << 40) : th_rnd(&g->s) % 150000;
        e->st = g->st;
        e->changed = th_diff_mask(&prev, &g->st);
        e->insn_len = (uint8_t)(th_rnd(&g->s) % 16);
        th_rnd_bytes(&g->s, e->insn, e->insn_len);
        switch (th_rnd(&g->s) % 4) {
        case 0: e->reason = HVT_EXIT_HLT; break;
        case 1:
                e->reason = HVT_EXIT_IO;
                e->u.io.io.port = (uint16_t)th_rnd(&g->s);
                e->u.io.io.size = 1;
                e->u.io.io.count = 1;
                g->io = (uint8_t)th_rnd(&g->s);
                e->u.io.data = &g->io;
                break;
        case 2:
                e->reason = HVT_EXIT_MMIO;
                e->u.mmio.addr = th_rnd(&g->s);
                e->u.mmio.len = 4;
                th_rnd_bytes(&g->s, e->u.mmio.data, 4);
                break;
        default: e->reason = HVT_EXIT_INTR; break;
        }
        e->raw_reason = (uint32_t)(th_rnd(&g->s) % 64);
}

/*
 * BUG: fails because of the hvt_field_differs_fast truncation described at
 * each_field_and_subfield_changed_alone: random selector- or attr-only
 * segment changes are lost by the writer.
 */
// BUG: same root cause as each_field_and_subfield_changed_alone (hvt_field_differs_fast).
Test(trace, delta_encoding_200k_random_exits)
{
        const size_t N = 200000;
        const char *path = hv_tmp("delta.zst");
        struct gen g = { .s = 0x5eed };
        struct hvt_writer *w;
        struct hvt_reader *r;
        struct hvt_event ev;
        struct hvt_exit e;
        size_t time64 = 0, jumps = 0, none = 0, all = 0;
        uint64_t prev_seq = 0;
        int err;

        w = th_open_writer(path, 0, 0, 0);
        th_write_min_header(w);
        for (size_t i = 0; i < N; i++) {
                gen_next(&g, &e);
                cr_assert_eq(hvt_write_exit(w, &e), 0, "exit %zu", i);
        }
        th_write_end(w, N, "done");
        th_close_writer(w);

        g = (struct gen){ .s = 0x5eed };
        r = th_must_open(path);
        th_expect_next(r, &ev, HVT_REC_HEADER);
        for (size_t i = 0; i < N; i++) {
                char ctx[48];

                gen_next(&g, &e);
                snprintf(ctx, sizeof(ctx), "exit %zu", i);
                err = hvt_reader_next(r, &ev);
                cr_assert_eq(err, HVT_OK, "%s: %d %s", ctx, err, hvt_reader_message(r));
                cr_assert_eq(ev.type, HVT_REC_EXIT, "%s", ctx);
                th_check_exit(&ev.exit, &e, e.changed, ctx);
                /* What the generator covered. */
                if (i && e.seq != prev_seq + 1)
                        jumps++;
                if (e.changed == 0)
                        none++;
                if (e.changed == 0xffffffffu)
                        all++;
                if (e.guest_ns >> 32)
                        time64++;
                prev_seq = e.seq;
        }
        th_expect_next(r, &ev, HVT_REC_END);
        cr_assert_eq(hvt_reader_next(r, &ev), HVT_END_OF_TRACE);
        hvt_reader_close(r);
        cr_assert_gt(jumps, 1000);
        cr_assert_gt(none, 1000);
        cr_assert_gt(all, 1000);
        cr_assert_gt(time64, 1000);
}

Test(trace, delta_encoding_8byte_fields_random)
{
        /* The same random walk, restricted to the 8-byte fields: exercises seq, time and
         * field deltas independently of the 16-byte field comparison. */
        const size_t N = 50000;
        const char *path = hv_tmp("delta8.zst");
        uint64_t s = 77, seq = 0, t = 0;
        struct hvt_vcpu_state st = { 0 }, prev = { 0 };
        struct hvt_writer *w;
        struct hvt_reader *r = NULL;
        struct hvt_event ev;

        w = th_open_writer(path, 0, 0, 0);
        th_write_min_header(w);
        for (int pass = 0; pass < 2; pass++) {
                s = 77;
                seq = 0;
                t = 0;
                memset(&st, 0, sizeof(st));
                memset(&prev, 0, sizeof(prev));
                if (pass == 1) {
                        r = th_must_open(path);
                        th_expect_next(r, &ev, HVT_REC_HEADER);
                }
                for (size_t i = 0; i < N; i++) {
                        struct hvt_exit e = { .reason = HVT_EXIT_HLT };
                        unsigned k = (unsigned)(th_rnd(&s) % 5);

                        while (k--) {
                                unsigned f = (unsigned)(th_rnd(&s) % HVT_F_COUNT);

                                if (th_fsize(f) == 8)
                                        th_mutate_field(&s, &st, f);
                        }
                        seq = th_rnd(&s) % 10 ? seq + 1 : seq + 2 + th_rnd(&s) % (1ull << 40);
                        t += th_rnd(&s) % 50 ? th_rnd(&s) % 100000
                                             : (1ull << 33) + th_rnd(&s) % 1000;
                        e.seq = seq;
                        e.time_ns = t;
                        e.guest_ns = th_rnd(&s) % 50 ? th_rnd(&s) % 1000 : (1ull << 32) * 7 + 3;
                        e.st = st;
                        if (pass == 0) {
                                cr_assert_eq(hvt_write_exit(w, &e), 0);
                        } else {
                                char ctx[32];

                                snprintf(ctx, sizeof(ctx), "exit %zu", i);
                                th_expect_next(r, &ev, HVT_REC_EXIT);
                                th_check_exit(&ev.exit, &e, th_diff_mask(&prev, &st), ctx);
                        }
                        prev = st;
                }
                if (pass == 0) {
                        th_write_end(w, N, NULL);
                        th_close_writer(w);
                } else {
                        th_expect_next(r, &ev, HVT_REC_END);
                        hvt_reader_close(r);
                }
        }
}

Test(trace, identical_exits_compress_small)
{
        const size_t N = 100000;
        const char *path = hv_tmp("same.zst");
        uint64_t s = 3, t = 0, before, after;
        struct hvt_exit e = { .reason = HVT_EXIT_HLT, .insn_len = 1, .insn = { 0xf4 } };
        struct hvt_writer *w;
        uint8_t *file, *raw;
        size_t flen, rlen, off, nexit = 0;
        double per_exit;

        th_rand_state(&s, &e.st);
        w = th_open_writer(path, 0, 0, 0);
        th_write_min_header(w);
        cr_assert_eq(hvt_writer_flush(w), 0);
        before = hvt_writer_bytes(w);
        cr_assert_eq(before, th_file_size(path), "hvt_writer_bytes is the file size after a flush");
        for (size_t i = 0; i < N; i++) {
                e.seq = 1000 + i;
                t += 900 + th_rnd(&s) % 200; /* the time still varies */
                e.time_ns = t;
                e.guest_ns = 800 + th_rnd(&s) % 100;
                cr_assert_eq(hvt_write_exit(w, &e), 0);
        }
        cr_assert_eq(hvt_writer_flush(w), 0);
        after = hvt_writer_bytes(w);
        cr_assert_eq(after, th_file_size(path));
        per_exit = (double)(after - before) / (double)N;
        cr_assert_lt(per_exit, 8.0, "%.2f compressed bytes per identical exit", per_exit);
        th_write_end(w, N, NULL);
        th_close_writer(w);

        /* In the raw stream, an exit that changes nothing and follows its predecessor's seq is
         * the record header, the fixed part and the instruction bytes: nothing else. */
        file = th_read_file(path, &flen);
        cr_assert_eq(th_decompress_all(file, flen, &raw, &rlen), 0);
        off = sizeof(struct hvt_disk_preamble);
        while (off + 8 <= rlen) {
                struct hvt_disk_rec rec;

                memcpy(&rec, raw + off, sizeof(rec));
                if (rec.type == HVT_REC_EXIT) {
                        if (nexit == 0) {
                                cr_assert(rec.flags & HVT_XF_SEQ, "the first exit carries its seq");
                        } else {
                                cr_assert_eq(rec.flags, 0, "exit %zu flags %#x", nexit, rec.flags);
                                cr_assert_eq(rec.size, sizeof(struct hvt_disk_exit) + 1,
                                             "exit %zu is %u bytes", nexit, rec.size);
                        }
                        nexit++;
                }
                off += sizeof(rec) + rec.size;
        }
        cr_assert_eq(off, rlen);
        cr_assert_eq(nexit, N);
        free(raw);
        free(file);
}

/* ------------------------------------------------------------------------ */
/* 3. Frames                                                                */
/* ------------------------------------------------------------------------ */

static void check_frames(unsigned frame_records, size_t nexits)
{
        const char *path = hv_tmp("frames.zst");
        struct hvt_writer *w = th_open_writer(path, frame_records, 100000, 0);
        size_t flen, rlen, nframes, total = 0, records = nexits + 2, off = 0;
        size_t *ends = calloc(records + 16, sizeof(size_t));
        uint8_t *file, *raw;
        struct hvt_reader *r;
        struct hvt_event ev;
        struct hvt_disk_preamble pre;
        uint64_t s = frame_records;
        int err;

        th_write_min_header(w);
        for (size_t i = 0; i < nexits; i++) {
                struct hvt_exit e = { .reason = HVT_EXIT_HLT, .seq = i, .time_ns = i * 10 };

                e.st.rip = th_rnd(&s);
                cr_assert_eq(hvt_write_exit(w, &e), 0);
        }
        th_write_end(w, nexits, "end");
        th_close_writer(w);

        file = th_read_file(path, &flen);
        nframes = th_frame_ends(file, flen, ends, records + 16);
        cr_assert_geq(nframes, 1 + (records + frame_records - 1) / frame_records,
                      "%zu frames for %zu records at %u per frame", nframes, records,
                      frame_records);
        /* Every frame: checksummed, decodes alone, holds whole records. */
        for (size_t i = 0; i < nframes; i++) {
                size_t start = i ? ends[i - 1] : 0, n;
                uint8_t *piece;
                bool whole;

                cr_assert_eq(memcmp(file + start, "\x28\xb5\x2f\xfd", 4), 0,
                             "frame %zu: zstd magic", i);
                cr_assert(file[start + 4] & 0x04, "frame %zu has no content checksum", i);
                cr_assert_eq(th_decompress_all(file + start, ends[i] - start, &piece, &n), 0,
                             "frame %zu does not decode alone", i);
                if (i == 0) {
                        cr_assert_geq(n, sizeof(pre));
                        n -= sizeof(pre);
                        memmove(piece, piece + sizeof(pre), n);
                }
                cr_assert_leq(th_count_records(piece, n, &whole), frame_records, "frame %zu", i);
                total += th_count_records(piece, n, &whole);
                cr_assert(whole, "frame %zu ends inside a record", i);
                free(piece);
        }
        cr_assert_eq(total, records);

        /* The whole file, decompressed in one call (it handles concatenated frames). */
        rlen = 64 + records * 64;
        raw = malloc(rlen);
        rlen = ZSTD_decompress(raw, rlen, file, flen);
        cr_assert(!ZSTD_isError(rlen), "ZSTD_decompress: %s", ZSTD_getErrorName(rlen));
        cr_assert_geq(rlen, 16);
        cr_assert_eq(memcmp(raw, "HVTRACE\x1a", 8), 0, "magic");
        memcpy(&pre, raw, sizeof(pre));
        cr_assert_eq(pre.version, 1);
        cr_assert_eq(raw[8], 1, "version is little endian");
        cr_assert_eq(raw[9], 0);
        /* Minor 1 added WRITE records, 2 NMI kinds, 3 KVM records; a writer of them says so. */
        cr_assert_eq(raw[10], 3, "minor version 3, little endian");
        cr_assert_eq(raw[11], 0);
        cr_assert_eq(pre.minor, HVT_FORMAT_MINOR);
        cr_assert_eq(pre.reserved, 0);
        {
                bool whole;

                cr_assert_eq(th_count_records(raw + 16, rlen - 16, &whole), records);
                cr_assert(whole);
        }

        r = th_must_open(path);
        while ((err = hvt_reader_next(r, &ev)) == HVT_OK)
                off++;
        cr_assert_eq(err, HVT_END_OF_TRACE, "%d %s", err, hvt_reader_message(r));
        cr_assert_eq(off, records);
        cr_assert(hvt_reader_complete(r));
        hvt_reader_close(r);
        free(raw);
        free(file);
        free(ends);
}

Test(trace, many_small_frames_read_completely)
{
        check_frames(3, 1000);
}

Test(trace, one_record_per_frame)
{
        check_frames(1, 300);
}

Test(trace, records_may_span_frames)
{
        /* The frames are only a container: a record split across two frames is still read. */
        const char *path = hv_tmp("span.zst");
        struct th_rawbuf raw = { 0 }, file = { 0 };
        struct hvt_disk_exit x = { .reason = HVT_EXIT_HLT, .state_mask = 1u << HVT_F_RAX };
        uint8_t pl[sizeof(x) + 8 + 8];
        uint64_t seq = 9, rax = 0x1122334455667788ull;
        struct hvt_disk_end end = { .exits = 1 };
        struct hvt_reader *r;
        struct hvt_event ev;
        size_t cut;

        memcpy(pl, &x, sizeof(x));
        memcpy(pl + sizeof(x), &seq, 8);
        memcpy(pl + sizeof(x) + 8, &rax, 8);
        th_rb_preamble(&raw, 1, 0);
        th_rb_min_header(&raw);
        cut = raw.len + 13; /* inside the exit record */
        th_rb_rec(&raw, HVT_REC_EXIT, HVT_XF_SEQ, pl, sizeof(pl));
        th_rb_rec(&raw, HVT_REC_END, 0, &end, sizeof(end));
        th_append_frame(&file, raw.p, 5); /* even the preamble may be split */
        th_append_frame(&file, raw.p + 5, cut - 5);
        th_append_frame(&file, raw.p + cut, raw.len - cut);
        th_write_file(path, file.p, file.len);

        r = th_must_open(path);
        th_expect_next(r, &ev, HVT_REC_HEADER);
        cr_assert_eq(ev.header.h.mem_size, 0x10000);
        th_expect_next(r, &ev, HVT_REC_EXIT);
        cr_assert_eq(ev.exit.seq, 9);
        cr_assert_eq(ev.exit.st.gpr[0], rax);
        th_expect_next(r, &ev, HVT_REC_END);
        cr_assert_eq(hvt_reader_next(r, &ev), HVT_END_OF_TRACE);
        hvt_reader_close(r);
        free(raw.p);
        free(file.p);
}

Test(trace, time_based_frames_without_thread)
{
        /* frame_ms without the flush thread: frames are ended by later records. */
        const char *path = hv_tmp("tframes.zst"), *copy = hv_tmp("tframes-copy.zst");
        struct hvt_writer *w = th_open_writer(path, 100000, 1, 0);
        struct hvt_reader *r;
        struct hvt_event ev;
        uint64_t n = 0;
        int err;

        th_write_min_header(w);
        usleep(20000);
        for (int i = 0; i < 200; i++) {
                struct hvt_exit e = { .reason = HVT_EXIT_HLT, .seq = (uint64_t)i };

                cr_assert_eq(hvt_write_exit(w, &e), 0);
        }
        /* Not flushed: what is on disk must be a readable prefix of complete frames. */
        th_copy_file(path, copy);
        r = th_must_open(copy);
        while ((err = hvt_reader_next(r, &ev)) == HVT_OK)
                n++;
        cr_assert_eq(err, HVT_ERR_TRUNCATED);
        cr_assert_geq(n, 2, "a frame older than frame_ms was not ended by later records");
        cr_assert_leq(n, 201);
        hvt_reader_close(r);
        th_write_end(w, 200, NULL);
        th_close_writer(w);
}

/* ------------------------------------------------------------------------ */
/* 4. Robustness                                                            */
/* ------------------------------------------------------------------------ */

Test(trace, missing_file_is_enoent)
{
        th_expect_open_fails(hv_tmp("does-not-exist.zst"), -ENOENT, "cannot open");
        th_expect_open_fails(hv_tmp("does-not-exist.zst"), -ENOENT, strerror(ENOENT));
}

Test(trace, directory_is_a_read_error)
{
        th_expect_open_fails(hv_tmp(""), -EISDIR, "cannot read");
}

Test(trace, empty_file)
{
        const char *path = hv_tmp("empty.zst");

        th_write_file(path, "", 0);
        th_expect_open_fails(path, HVT_ERR_EMPTY, "empty");
}

Test(trace, garbage_is_not_a_trace)
{
        const char *path = hv_tmp("garbage");
        uint8_t buf[4096];
        uint64_t s = 1;
        static const char text[] = "This is a text file.\nIt is not a trace at all.\n";

        for (int i = 0; i < 20; i++) {
                size_t n = 1 + th_rnd(&s) % sizeof(buf);

                th_rnd_bytes(&s, buf, n);
                if (n >= 4 && !memcmp(buf, "\x28\xb5\x2f\xfd", 4))
                        buf[0] ^= 1;
                th_write_file(path, buf, n);
                th_expect_open_fails(path, HVT_ERR_NOT_TRACE, "not");
        }
        th_write_file(path, text, strlen(text));
        th_expect_open_fails(path, HVT_ERR_NOT_TRACE, "not an hvtrace");
        /* Too short to even hold the zstd magic. */
        th_write_file(path, "\x28\xb5\x2f", 3);
        th_expect_open_fails(path, HVT_ERR_NOT_TRACE, "not");
}

Test(trace, zstd_without_preamble_is_not_a_trace)
{
        const char *path = hv_tmp("other.zst");
        static const char text[] = "a perfectly valid zstd file holding something else entirely";
        struct th_rawbuf raw = { 0 };

        th_compress_to(path, text, strlen(text));
        th_expect_open_fails(path, HVT_ERR_NOT_TRACE, "not an hvtrace");
        /* Almost the magic. */
        th_rb_preamble(&raw, 1, 0);
        raw.p[7] = 0x1b;
        th_rb_min_header(&raw);
        th_compress_to(path, raw.p, raw.len);
        th_expect_open_fails(path, HVT_ERR_NOT_TRACE, "magic");
        /* Between the magic length and the preamble length. */
        th_compress_to(path, "ELF\x7f....stuff", 13);
        th_expect_open_fails(path, HVT_ERR_NOT_TRACE, "not an hvtrace");
        free(raw.p);
}

/*
 * BUG: src/trace/reader.c hvt_reader_open(), the `want(r, sizeof(pre))`
 * failure branch: when a complete zstd stream decompresses to fewer than 8
 * bytes, the content is only compared with the magic when raw_len >= 8, so
 * `printf 'hi\n' | zstd > f` (3 bytes of content, frame complete) is
 * reported as HVT_ERR_TRUNCATED "truncated header" instead of
 * HVT_ERR_NOT_TRACE, though "hi\n" is not a prefix of "HVTRACE\x1a".
 */
// BUG: reader.c hvt_reader_open reports a <8-byte non-hvtrace zstd stream as TRUNCATED.
Test(trace, tiny_zstd_file_is_not_a_trace)
{
        const char *path = hv_tmp("tiny.zst");

        th_compress_to(path, "hi\n", 3);
        th_expect_open_fails(path, HVT_ERR_NOT_TRACE, "not an hvtrace");
}

static void write_trace_with_header_frame(const char *path, size_t nexits, unsigned frame_records)
{
        static const char *const argv[] = { "hvrec", "run", "guest.bin" };
        struct hvt_header h = { 0 };
        struct hvt_writer *w = th_open_writer(path, frame_records, 100000, 0);

        h.h.mem_size = 1 << 20;
        h.h.entry = 0x1000;
        h.h.guest_mode = HVT_MODE_PROTECTED;
        h.str[HVT_STR_TOOL_VERSION] = "hvtrace test";
        h.str[HVT_STR_BACKEND] = "kvm";
        h.str[HVT_STR_CPU_MODEL] = "a CPU model string long enough to matter a little";
        h.argv = argv;
        h.argc = 3;
        cr_assert_eq(hvt_write_header(w, &h), 0);
        cr_assert_eq(hvt_writer_flush(w), 0); /* the header frame ends here */
        for (size_t i = 0; i < nexits; i++) {
                struct hvt_exit e = { .reason = HVT_EXIT_IO, .seq = i, .time_ns = i * 1000 };
                uint8_t b = (uint8_t)i;

                e.st.gpr[0] = i * 7;
                e.st.rip = 0x1000 + 3 * i;
                e.st.rflags = 2 | ((i & 1) << 9);
                e.u.io.io.port = 0x3f8;
                e.u.io.io.size = 1;
                e.u.io.io.count = 1;
                e.u.io.data = &b;
                cr_assert_eq(hvt_write_exit(w, &e), 0);
                if (i % 10 == 4)
                        cr_assert_eq(
                                hvt_write_write(w, i, 0x2000 + 16 * i, "written bytes..", i % 17),
                                0);
                if (i % 10 == 9)
                        cr_assert_eq(hvt_write_console(w, i, "0123456789", i % 11), 0);
        }
        th_write_end(w, nexits, "fin");
        th_close_writer(w);
}

Test(trace, truncated_header)
{
        const char *path = hv_tmp("full.zst"), *cut = hv_tmp("cut.zst");
        size_t flen, ends[4096], nframes;
        uint8_t *file;

        write_trace_with_header_frame(path, 50, 16);
        file = th_read_file(path, &flen);
        nframes = th_frame_ends(file, flen, ends, 4096);
        cr_assert_geq(nframes, 3);
        /* Frame 0: the preamble.  Frame 1: the header record.  Cut anywhere before its end. */
        for (size_t len = 0; len < ends[1]; len++) {
                struct hvt_reader *r;
                int err;

                th_write_file(cut, file, len);
                err = th_open_err(cut, &r);
                if (len == 0) {
                        cr_assert_eq(err, HVT_ERR_EMPTY, "len 0");
                        th_check_msg(r, "empty");
                } else if (len < 4) {
                        cr_assert_eq(err, HVT_ERR_NOT_TRACE, "len %zu: %d %s", len, err,
                                     hvt_reader_message(r));
                        th_check_msg(r, NULL);
                } else if (err == HVT_OK) {
                        /* Only once the header's block is complete: just its checksum missing. */
                        struct hvt_event ev;

                        cr_assert_geq(len, ends[1] - 4,
                                      "len %zu: header read from an incomplete block", len);
                        th_expect_next(r, &ev, HVT_REC_HEADER);
                        cr_assert_eq(ev.header.h.mem_size, 1 << 20);
                        cr_assert_eq(hvt_reader_next(r, &ev), HVT_ERR_TRUNCATED);
                        th_check_msg(r, "truncated after 1 records");
                } else {
                        cr_assert_eq(err, HVT_ERR_TRUNCATED, "len %zu: %d %s", len, err,
                                     hvt_reader_message(r));
                        th_check_msg(r, "truncated header");
                }
                hvt_reader_close(r);
        }
        free(file);
}

Test(trace, future_version_is_refused)
{
        const char *path = hv_tmp("v2.zst");
        static const uint16_t bad[] = { HVT_FORMAT_VERSION + 1, 0, 0xffff };
        struct hvt_reader *r;
        struct hvt_event ev;

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                struct th_rawbuf raw = { 0 };
                char needle[16];

                th_rb_preamble(&raw, bad[i], 0);
                th_rb_min_header(&raw);
                th_compress_to(path, raw.p, raw.len);
                snprintf(needle, sizeof(needle), "%u", bad[i]);
                th_expect_open_fails(path, HVT_ERR_VERSION, "version");
                th_expect_open_fails(path, HVT_ERR_VERSION, needle);
                free(raw.p);
        }
        /* A newer minor version of the same major is read. */
        {
                struct th_rawbuf raw = { 0 };
                struct hvt_disk_end end = { .exits = 0, .why = HVT_END_HALT };

                th_rb_preamble(&raw, 1, 7);
                th_rb_min_header(&raw);
                th_rb_rec(&raw, 0x300, 0, "new things", 10);
                th_rb_rec(&raw, HVT_REC_END, 0, &end, sizeof(end));
                th_compress_to(path, raw.p, raw.len);
                r = th_must_open(path);
                th_expect_next(r, &ev, HVT_REC_HEADER);
                th_expect_next(r, &ev, HVT_REC_END);
                cr_assert_eq(ev.index, 2);
                cr_assert_eq(ev.end.e.why, HVT_END_HALT);
                cr_assert_eq(hvt_reader_next(r, &ev), HVT_END_OF_TRACE);
                hvt_reader_close(r);
                free(raw.p);
        }
}

/* The records of every complete frame before offset `len`. */
static size_t records_in_complete_frames(const uint8_t *file, const size_t *ends, size_t nframes,
                                         size_t len)
{
        size_t n = 0;

        for (size_t i = 0; i < nframes && ends[i] <= len; i++) {
                size_t start = i ? ends[i - 1] : 0, plen;
                uint8_t *piece;
                bool whole;

                cr_assert_eq(th_decompress_all(file + start, ends[i] - start, &piece, &plen), 0);
                if (i == 0)
                        n += th_count_records(piece + 16, plen - 16, &whole);
                else
                        n += th_count_records(piece, plen, &whole);
                free(piece);
        }
        return n;
}

Test(trace, truncated_anywhere_in_last_30_percent)
{
        const char *path = hv_tmp("full.zst"), *cut = hv_tmp("cut.zst");
        size_t flen, nframes, *ends = calloc(4096, sizeof(size_t)), *prefix;
        struct th_readres full = { .ids = calloc(4096, sizeof(struct th_rec_id)) };
        struct th_readres part = { .ids = calloc(4096, sizeof(struct th_rec_id)) };
        uint8_t *file;
        size_t from;

        write_trace_with_header_frame(path, 400, 16);
        file = th_read_file(path, &flen);
        nframes = th_frame_ends(file, flen, ends, 4096);
        th_read_all(path, &full, 4096);
        cr_assert_eq(full.open_err, HVT_OK);
        cr_assert_eq(full.err, HVT_END_OF_TRACE);
        cr_assert_eq(full.n, 1 + 400 + 40 + 40 + 1); /* header, exits, writes, console, end */
        /* The ids of what was written, independently of the reader: spot-check a few. */
        cr_assert_eq(full.ids[0].type, HVT_REC_HEADER);
        cr_assert_eq(full.ids[1].type, HVT_REC_EXIT);
        cr_assert_eq(full.ids[1].a, 0);
        cr_assert_eq(full.ids[full.n - 1].type, HVT_REC_END);
        cr_assert_eq(full.ids[full.n - 1].a, 400);

        /* Records in complete frames for each frame count. */
        prefix = calloc(nframes + 1, sizeof(size_t));
        for (size_t i = 0; i < nframes; i++)
                prefix[i + 1] = records_in_complete_frames(file, ends, nframes, ends[i]);
        cr_assert_eq(prefix[nframes], full.n);

        from = flen * 7 / 10;
        cr_assert_gt(from, ends[1], "the header frame must end before the cuts");
        for (size_t len = from; len < flen; len++) {
                size_t complete = 0, msg_n;

                for (size_t i = 0; i < nframes && ends[i] <= len; i++)
                        complete = prefix[i + 1];
                th_write_file(cut, file, len);
                th_read_all(cut, &part, 4096);
                cr_assert_eq(part.open_err, HVT_OK, "len %zu: %s", len, part.msg);
                cr_assert_eq(part.err, HVT_ERR_TRUNCATED, "len %zu: %d %s", len, part.err,
                             part.msg);
                cr_assert_null(strchr(part.msg, '\n'));
                cr_assert_not_null(strstr(part.msg, "truncated after"), "len %zu: '%s'", len,
                                   part.msg);
                cr_assert_geq(part.n, complete, "len %zu: %zu records read, %zu in complete frames",
                              len, part.n, complete);
                cr_assert_leq(part.n, full.n);
                for (size_t i = 0; i < part.n; i++)
                        cr_assert(part.ids[i].type == full.ids[i].type &&
                                          part.ids[i].a == full.ids[i].a &&
                                          part.ids[i].b == full.ids[i].b,
                                  "len %zu: record %zu differs from the complete trace's", len, i);
                cr_assert_eq(
                        sscanf(strstr(part.msg, "truncated after"), "truncated after %zu", &msg_n),
                        1);
                cr_assert_eq(msg_n, part.n, "len %zu: message '%s' but %zu records returned", len,
                             part.msg, part.n);
                cr_assert_eq(part.records, part.n);
        }
        free(prefix);
        free(file);
        free(ends);
        free(full.ids);
        free(part.ids);
}

Test(trace, no_end_record_is_truncated)
{
        const char *path = hv_tmp("live.zst"), *copy = hv_tmp("killed.zst");
        struct hvt_writer *w = th_open_writer(path, 0, 0, 0);
        struct hvt_reader *r;
        struct hvt_event ev;
        uint64_t n = 0;
        int err;

        th_write_min_header(w);
        for (int i = 0; i < 1234; i++) {
                struct hvt_exit e = { .reason = HVT_EXIT_INTR, .seq = (uint64_t)i };

                e.st.rip = (uint64_t)i * 5;
                cr_assert_eq(hvt_write_exit(w, &e), 0);
        }
        cr_assert_eq(hvt_writer_flush(w), 0);
        th_copy_file(path, copy); /* what a killed recorder leaves */
        th_write_end(w, 1234, "ok");
        th_close_writer(w);

        r = th_must_open(copy);
        while ((err = hvt_reader_next(r, &ev)) == HVT_OK) {
                if (n > 0) {
                        cr_assert_eq(ev.type, HVT_REC_EXIT);
                        cr_assert_eq(ev.exit.seq, n - 1);
                        cr_assert_eq(ev.exit.st.rip, (n - 1) * 5);
                }
                n++;
        }
        cr_assert_eq(err, HVT_ERR_TRUNCATED, "%d %s", err, hvt_reader_message(r));
        cr_assert_eq(n, 1235);
        th_check_msg(r, "truncated after");
        cr_assert_eq(th_msg_truncated_count(r), 1235);
        cr_assert(!hvt_reader_complete(r));
        hvt_reader_close(r);

        /* The finished file is complete. */
        r = th_must_open(path);
        n = 0;
        while ((err = hvt_reader_next(r, &ev)) == HVT_OK)
                n++;
        cr_assert_eq(err, HVT_END_OF_TRACE);
        cr_assert_eq(n, 1236);
        cr_assert(hvt_reader_complete(r));
        hvt_reader_close(r);
}

Test(trace, trailing_garbage_after_last_frame)
{
        const char *path = hv_tmp("trail.zst");
        size_t flen;
        uint8_t *file;
        struct th_readres res = { .ids = calloc(512, sizeof(struct th_rec_id)) };

        write_trace_with_header_frame(path, 20, 8);
        file = th_read_file(path, &flen);
        file = realloc(file, flen + 7);
        memcpy(file + flen, "garbage", 7);
        th_write_file(path, file, flen + 7);
        th_read_all(path, &res, 512);
        cr_assert_eq(res.open_err, HVT_OK);
        cr_assert_eq(res.n, 1 + 20 + 2 + 2 + 1, "every record before the garbage is read");
        cr_assert_eq(res.err, HVT_ERR_CORRUPT, "%d %s", res.err, res.msg);
        free(file);
        free(res.ids);
}

/* What damage to a trace may cause: a format error, never a system error or "empty". */
static bool allowed_error(int err)
{
        return err == HVT_ERR_NOT_TRACE || err == HVT_ERR_VERSION || err == HVT_ERR_CORRUPT ||
               err == HVT_ERR_TRUNCATED;
}

Test(trace, flipped_bytes_in_compressed_trace)
{
        const char *path = hv_tmp("full.zst"), *bad = hv_tmp("bad.zst");
        static const uint8_t xors[] = { 0x01, 0x80, 0xff };
        struct th_readres full = { .ids = calloc(1024, sizeof(struct th_rec_id)) };
        struct th_readres res = { .ids = calloc(1024, sizeof(struct th_rec_id)) };
        uint8_t *file, *copy;
        size_t flen, detected = 0;

        write_trace_with_header_frame(path, 120, 32);
        file = th_read_file(path, &flen);
        copy = malloc(flen);
        th_read_all(path, &full, 1024);
        cr_assert_eq(full.err, HVT_END_OF_TRACE);
        for (size_t pos = 0; pos < flen; pos++) {
                for (size_t x = 0; x < sizeof(xors); x++) {
                        memcpy(copy, file, flen);
                        copy[pos] ^= xors[x];
                        th_write_file(bad, copy, flen);
                        th_read_all(bad, &res, 1024);
                        if (res.open_err) {
                                cr_assert(allowed_error(res.open_err), "pos %zu: open %d %s", pos,
                                          res.open_err, res.msg);
                                detected++;
                                continue;
                        }
                        cr_assert(res.err == HVT_END_OF_TRACE || allowed_error(res.err),
                                  "pos %zu: %d %s", pos, res.err, res.msg);
                        if (res.err != HVT_END_OF_TRACE) {
                                detected++;
                                continue;
                        }
                        /* Checksums: undetected damage must not change what is read. */
                        cr_assert_eq(res.n, full.n, "pos %zu ^%#x: undetected corruption", pos,
                                     xors[x]);
                        for (size_t i = 0; i < res.n; i++)
                                cr_assert(res.ids[i].type == full.ids[i].type &&
                                                  res.ids[i].a == full.ids[i].a &&
                                                  res.ids[i].b == full.ids[i].b,
                                          "pos %zu ^%#x: record %zu silently changed", pos, xors[x],
                                          i);
                }
        }
        cr_assert_gt(detected, flen, "most damage is detected");
        free(file);
        free(copy);
        free(full.ids);
        free(res.ids);
}

Test(trace, fuzzed_raw_stream_never_crashes)
{
        /* Damage below the compression (as a buggy writer would): the parser's own checks. */
        const char *path = hv_tmp("full.zst"), *bad = hv_tmp("bad.zst");
        struct th_readres res = { .ids = calloc(1024, sizeof(struct th_rec_id)) };
        uint8_t *file, *raw, *copy;
        size_t flen, rlen;
        uint64_t s = 31337;

        write_trace_with_header_frame(path, 60, 4096);
        file = th_read_file(path, &flen);
        cr_assert_eq(th_decompress_all(file, flen, &raw, &rlen), 0);
        copy = malloc(rlen);
        for (int iter = 0; iter < 3000; iter++) {
                size_t len = rlen;
                unsigned k = 1 + (unsigned)(th_rnd(&s) % 4);

                memcpy(copy, raw, rlen);
                while (k--) {
                        size_t pos = 16 + th_rnd(&s) % (rlen - 16);

                        switch (th_rnd(&s) % 4) {
                        case 0: copy[pos] ^= (uint8_t)(1u << (th_rnd(&s) % 8)); break;
                        case 1: copy[pos] = (uint8_t)th_rnd(&s); break;
                        case 2: copy[pos] = 0xff; break;
                        default: len = pos; break; /* cut mid-stream, frame complete */
                        }
                }
                th_compress_to(bad, copy, len);
                th_read_all(bad, &res, 1024);
                if (res.open_err)
                        cr_assert(allowed_error(res.open_err), "iter %d: open %d %s", iter,
                                  res.open_err, res.msg);
                else
                        cr_assert(res.err == HVT_END_OF_TRACE || allowed_error(res.err),
                                  "iter %d: %d %s", iter, res.err, res.msg);
        }
        free(file);
        free(raw);
        free(copy);
        free(res.ids);
}

Test(trace, raw_stream_cut_mid_record)
{
        const char *path = hv_tmp("cutrec.zst");
        struct th_rawbuf raw = { 0 };
        struct hvt_disk_end end = { 0 };
        struct hvt_reader *r;
        struct hvt_event ev;

        th_rb_preamble(&raw, 1, 0);
        th_rb_min_header(&raw);
        th_rb_rec(&raw, HVT_REC_END, 0, &end, sizeof(end));
        th_compress_to(path, raw.p, raw.len - 3); /* a complete frame, an incomplete record */
        r = th_must_open(path);
        th_expect_next(r, &ev, HVT_REC_HEADER);
        cr_assert_eq(hvt_reader_next(r, &ev), HVT_ERR_TRUNCATED);
        th_check_msg(r, "truncated after 1 records");
        hvt_reader_close(r);
        free(raw.p);
}

Test(trace, record_larger_than_max_is_corrupt)
{
        const char *path = hv_tmp("big.zst");
        struct th_rawbuf raw = { 0 };
        struct hvt_disk_rec rec = { HVT_REC_EXIT, 0, HVT_MAX_RECORD + 1 };
        struct hvt_reader *r;
        struct hvt_event ev;

        th_rb_preamble(&raw, 1, 0);
        th_rb_min_header(&raw);
        th_rb_put(&raw, &rec, sizeof(rec));
        th_rb_put(&raw, "0123456789abcdef0123456789", 26);
        th_compress_to(path, raw.p, raw.len);
        r = th_must_open(path);
        th_expect_next(r, &ev, HVT_REC_HEADER);
        cr_assert_eq(hvt_reader_next(r, &ev), HVT_ERR_CORRUPT);
        th_check_msg(r, "corrupt");
        cr_assert_eq(hvt_reader_next(r, &ev), HVT_ERR_CORRUPT, "errors are sticky");
        hvt_reader_close(r);

        /* Exactly the maximum is legal: the file merely ends early. */
        rec.size = HVT_MAX_RECORD;
        memcpy(raw.p + raw.len - 26 - sizeof(rec), &rec, sizeof(rec));
        th_compress_to(path, raw.p, raw.len);
        r = th_must_open(path);
        th_expect_next(r, &ev, HVT_REC_HEADER);
        cr_assert_eq(hvt_reader_next(r, &ev), HVT_ERR_TRUNCATED, "%s", hvt_reader_message(r));
        th_check_msg(r, "truncated after 1 records");
        hvt_reader_close(r);

        /* A header claiming too much: at open. */
        raw.len = 0;
        th_rb_preamble(&raw, 1, 0);
        rec.type = HVT_REC_HEADER;
        rec.size = 0xffffffffu;
        th_rb_put(&raw, &rec, sizeof(rec));
        th_rb_put(&raw, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789", 56);
        th_compress_to(path, raw.p, raw.len);
        th_expect_open_fails(path, HVT_ERR_CORRUPT, "corrupt");
        free(raw.p);
}

Test(trace, largest_record_written_and_skipped)
{
        const char *path = hv_tmp("max.zst");
        uint8_t *big = calloc(1, HVT_MAX_RECORD + 1);
        struct hvt_writer *w = th_open_writer(path, 0, 0, 0);
        struct hvt_reader *r;
        struct hvt_event ev;
        struct hvt_exit e = { .reason = HVT_EXIT_HLT, .seq = 5 };
        uint64_t recs;

        cr_assert_not_null(big);
        th_write_min_header(w);
        recs = hvt_writer_records(w);
        cr_assert_eq(hvt_write_raw(w, 0x99, 0, big, HVT_MAX_RECORD + 1), -EMSGSIZE);
        cr_assert_eq(hvt_writer_records(w), recs, "a refused record is not counted");
        big[HVT_MAX_RECORD - 1] = 1;
        cr_assert_eq(hvt_write_raw(w, 0x99, 0, big, HVT_MAX_RECORD), 0);
        cr_assert_eq(hvt_write_exit(w, &e), 0, "the writer is still usable");
        th_write_end(w, 1, NULL);
        th_close_writer(w);

        r = th_must_open(path);
        th_expect_next(r, &ev, HVT_REC_HEADER);
        th_expect_next(r, &ev, HVT_REC_EXIT);
        cr_assert_eq(ev.index, 2);
        cr_assert_eq(ev.exit.seq, 5);
        th_expect_next(r, &ev, HVT_REC_END);
        cr_assert_eq(hvt_reader_next(r, &ev), HVT_END_OF_TRACE);
        hvt_reader_close(r);
        free(big);
}

/* A trace whose second record is raw (type, flags, payload): reading it must fail CORRUPT. */
static void expect_corrupt_record(uint16_t type, uint16_t flags, const void *payload, size_t len,
                                  const char *what)
{
        const char *path = hv_tmp("short.zst");
        struct hvt_writer *w = th_open_writer(path, 0, 0, 0);
        struct hvt_reader *r;
        struct hvt_event ev;
        int err;

        th_write_min_header(w);
        cr_assert_eq(hvt_write_raw(w, type, flags, payload, len), 0);
        th_write_end(w, 0, NULL);
        th_close_writer(w);
        r = th_must_open(path);
        th_expect_next(r, &ev, HVT_REC_HEADER);
        err = hvt_reader_next(r, &ev);
        cr_assert_eq(err, HVT_ERR_CORRUPT, "%s: got %d (%s)", what, err, hvt_reader_message(r));
        th_check_msg(r, "corrupt");
        cr_assert_eq(hvt_reader_next(r, &ev), HVT_ERR_CORRUPT, "%s: not sticky", what);
        hvt_reader_close(r);
}

Test(trace, short_payloads_are_corrupt)
{
        uint8_t buf[512] = { 0 };
        struct hvt_disk_exit x = { 0 };
        size_t off;

        /* Shorter than the fixed exit part. */
        expect_corrupt_record(HVT_REC_EXIT, 0, buf, sizeof(x) - 1, "exit fixed part");
        expect_corrupt_record(HVT_REC_EXIT, 0, buf, 0, "empty exit");
        /* SEQ flag without the seq. */
        x.reason = HVT_EXIT_HLT;
        memcpy(buf, &x, sizeof(x));
        expect_corrupt_record(HVT_REC_EXIT, HVT_XF_SEQ, buf, sizeof(x) + 7, "seq missing");
        /* TIME64 without the high halves. */
        expect_corrupt_record(HVT_REC_EXIT, HVT_XF_TIME64, buf, sizeof(x) + 4, "time64 missing");
        /* Fields announced but absent. */
        x.state_mask = (1u << HVT_F_RAX) | (1u << HVT_F_CS);
        memcpy(buf, &x, sizeof(x));
        expect_corrupt_record(HVT_REC_EXIT, 0, buf, sizeof(x) + 8 + 15, "fields missing");
        /* Instruction bytes announced but absent. */
        x.state_mask = 0;
        x.insn_len = 15;
        memcpy(buf, &x, sizeof(x));
        expect_corrupt_record(HVT_REC_EXIT, 0, buf, sizeof(x) + 14, "insn missing");
        /* An instruction longer than x86 allows. */
        x.insn_len = 16;
        memcpy(buf, &x, sizeof(x));
        expect_corrupt_record(HVT_REC_EXIT, 0, buf, sizeof(x) + 16, "insn_len 16");
        /* Reason tails. */
        x.insn_len = 0;
        {
                static const struct {
                        uint16_t reason;
                        size_t tail;
                } t[] = { { HVT_EXIT_IO, 8 },          { HVT_EXIT_MMIO, 24 },
                          { HVT_EXIT_FAIL_ENTRY, 16 }, { HVT_EXIT_INTERNAL, 8 },
                          { HVT_EXIT_DEBUG, 32 },      { HVT_EXIT_EXCEPTION, 16 } };

                for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                        char what[48];

                        x.reason = t[i].reason;
                        memcpy(buf, &x, sizeof(x));
                        snprintf(what, sizeof(what), "%s tail", hvt_exit_reason_name(t[i].reason));
                        expect_corrupt_record(HVT_REC_EXIT, 0, buf, sizeof(x) + t[i].tail - 1,
                                              what);
                }
        }
        /* IO data shorter than size * count. */
        {
                struct hvt_disk_io io = { .port = 0x60, .size = 4, .count = 3 };

                x.reason = HVT_EXIT_IO;
                memcpy(buf, &x, sizeof(x));
                memcpy(buf + sizeof(x), &io, sizeof(io));
                expect_corrupt_record(HVT_REC_EXIT, 0, buf, sizeof(x) + sizeof(io) + 11, "io data");
                io.count = 0xffffffffu;
                memcpy(buf + sizeof(x), &io, sizeof(io));
                expect_corrupt_record(HVT_REC_EXIT, 0, buf, sizeof(x) + sizeof(io) + 64,
                                      "io count");
        }
        /* INTERNAL: more data words than allowed, or fewer than announced. */
        {
                struct hvt_disk_internal in = { .suberror = 1, .ndata = HVT_INTERNAL_MAX_DATA + 1 };

                x.reason = HVT_EXIT_INTERNAL;
                memcpy(buf, &x, sizeof(x));
                off = sizeof(x);
                memcpy(buf + off, &in, sizeof(in));
                expect_corrupt_record(HVT_REC_EXIT, 0, buf, off + sizeof(in) + 8 * 17, "ndata 17");
                in.ndata = 3;
                memcpy(buf + off, &in, sizeof(in));
                expect_corrupt_record(HVT_REC_EXIT, 0, buf, off + sizeof(in) + 8 * 3 - 1,
                                      "ndata 3");
        }
        /* Other fixed records. */
        expect_corrupt_record(HVT_REC_MEMORY, 0, buf, sizeof(struct hvt_disk_memory) - 1, "memory");
        expect_corrupt_record(HVT_REC_INJECT, 0, buf, sizeof(struct hvt_disk_inject) - 1, "inject");
        expect_corrupt_record(HVT_REC_RAISE, 0, buf, sizeof(struct hvt_disk_raise) - 1, "raise");
        expect_corrupt_record(HVT_REC_DELIVER, 0, buf, sizeof(struct hvt_disk_deliver) - 1,
                              "deliver");
        expect_corrupt_record(HVT_REC_CONSOLE, 0, buf, sizeof(struct hvt_disk_console) - 1,
                              "console");
        expect_corrupt_record(HVT_REC_WRITE, 0, buf, sizeof(struct hvt_disk_write) - 1, "write");
        expect_corrupt_record(HVT_REC_WRITE, 0, buf, 8, "write without gpa");
        expect_corrupt_record(HVT_REC_WRITE, 0, buf, 0, "empty write");
        expect_corrupt_record(HVT_REC_END, 0, buf, sizeof(struct hvt_disk_end) - 1, "end");
        /* A second header. */
        expect_corrupt_record(HVT_REC_HEADER, 0, buf, sizeof(struct hvt_disk_header),
                              "second header");
}

Test(trace, bad_header_records)
{
        const char *path = hv_tmp("badhdr.zst");
        struct hvt_disk_header h = { .mem_size = 4096 };
        struct hvt_disk_str str = { HVT_STR_BACKEND, 10 };
        struct th_rawbuf raw = { 0 };

        /* Too short. */
        th_rb_preamble(&raw, 1, 0);
        th_rb_rec(&raw, HVT_REC_HEADER, 0, &h, sizeof(h) - 1);
        th_compress_to(path, raw.p, raw.len);
        th_expect_open_fails(path, HVT_ERR_CORRUPT, "header");
        /* A string running past the payload. */
        raw.len = 0;
        th_rb_preamble(&raw, 1, 0);
        {
                uint8_t pl[sizeof(h) + sizeof(str) + 9];

                memcpy(pl, &h, sizeof(h));
                memcpy(pl + sizeof(h), &str, sizeof(str));
                memset(pl + sizeof(h) + sizeof(str), 'k', 9);
                th_rb_rec(&raw, HVT_REC_HEADER, 0, pl, sizeof(pl));
        }
        th_compress_to(path, raw.p, raw.len);
        th_expect_open_fails(path, HVT_ERR_CORRUPT, "corrupt");
        free(raw.p);
}

Test(trace, unknown_header_string_keys_are_skipped)
{
        const char *path = hv_tmp("keys.zst");
        struct hvt_disk_header h = { .mem_size = 8192, .seed = 77 };
        struct th_rawbuf raw = { 0 }, pl = { 0 };
        struct hvt_disk_str s;
        struct hvt_disk_end end = { 0 };
        struct hvt_reader *r;
        struct hvt_event ev;

        th_rb_put(&pl, &h, sizeof(h));
        s = (struct hvt_disk_str){ 999, 5 };
        th_rb_put(&pl, &s, sizeof(s));
        th_rb_put(&pl, "xxxxx", 5);
        s = (struct hvt_disk_str){ HVT_STR_BACKEND, 3 };
        th_rb_put(&pl, &s, sizeof(s));
        th_rb_put(&pl, "kvm", 3);
        s = (struct hvt_disk_str){ 0, 2 };
        th_rb_put(&pl, &s, sizeof(s));
        th_rb_put(&pl, "zz", 2);
        s = (struct hvt_disk_str){ HVT_STR_CMDLINE, 9 };
        th_rb_put(&pl, &s, sizeof(s));
        th_rb_put(&pl, "a\0\0b c\0d\0", 9);
        th_rb_preamble(&raw, 1, 0);
        th_rb_rec(&raw, HVT_REC_HEADER, 0, pl.p, pl.len);
        th_rb_rec(&raw, HVT_REC_END, 0, &end, sizeof(end));
        th_compress_to(path, raw.p, raw.len);

        r = th_must_open(path);
        th_expect_next(r, &ev, HVT_REC_HEADER);
        cr_assert_eq(ev.header.h.seed, 77);
        cr_assert_str_eq(ev.header.str[HVT_STR_BACKEND], "kvm");
        cr_assert_str_eq(ev.header.str[HVT_STR_GUEST], "");
        cr_assert_eq(ev.header.argc, 4);
        cr_assert_str_eq(ev.header.argv[0], "a");
        cr_assert_str_eq(ev.header.argv[1], "");
        cr_assert_str_eq(ev.header.argv[2], "b c");
        cr_assert_str_eq(ev.header.argv[3], "d");
        th_expect_next(r, &ev, HVT_REC_END);
        hvt_reader_close(r);
        free(raw.p);
        free(pl.p);
}

Test(trace, header_not_first_is_corrupt)
{
        const char *path = hv_tmp("nohdr.zst");
        struct th_rawbuf raw = { 0 };
        struct hvt_disk_end end = { 0 };
        struct hvt_writer *w;
        struct hvt_exit e = { .reason = HVT_EXIT_HLT };

        th_rb_preamble(&raw, 1, 0);
        th_rb_rec(&raw, HVT_REC_END, 0, &end, sizeof(end));
        th_rb_min_header(&raw);
        th_compress_to(path, raw.p, raw.len);
        th_expect_open_fails(path, HVT_ERR_CORRUPT, "header");

        /* Even an unknown record may not come first. */
        raw.len = 0;
        th_rb_preamble(&raw, 1, 0);
        th_rb_rec(&raw, 0x777, 0, "abc", 3);
        th_rb_min_header(&raw);
        th_compress_to(path, raw.p, raw.len);
        th_expect_open_fails(path, HVT_ERR_CORRUPT, "header");

        /* The writer does not stop a caller from writing an exit first. */
        w = th_open_writer(path, 0, 0, 0);
        cr_assert_eq(hvt_write_exit(w, &e), 0);
        th_write_min_header(w);
        th_close_writer(w);
        th_expect_open_fails(path, HVT_ERR_CORRUPT, "header");

        /* A preamble and nothing else: the header is missing, i.e. truncated. */
        raw.len = 0;
        th_rb_preamble(&raw, 1, 0);
        th_compress_to(path, raw.p, raw.len);
        th_expect_open_fails(path, HVT_ERR_TRUNCATED, "truncated header");
        free(raw.p);
}

static int count_fds(void)
{
        DIR *d = opendir("/proc/self/fd");
        int n = 0;

        cr_assert_not_null(d);
        while (readdir(d))
                n++;
        closedir(d);
        return n;
}

/*
 * BUG: src/trace/reader.c hvt_reader_open(): rp may be NULL (the code tests
 * `if (rp)` and the header documents the NULL case), but the reader it
 * allocates is then never freed: on every error return (and on success) the
 * struct, its zstd context, buffers and the open file descriptor leak.
 * Expected: with rp == NULL the reader is closed before returning.
 */
// BUG: reader.c hvt_reader_open(NULL, ...) leaks the reader and its file descriptor.
Test(trace, open_with_null_reader_pointer_does_not_leak)
{
        const char *path = hv_tmp("empty.zst");
        int before, after;

        th_write_file(path, "", 0);
        before = count_fds();
        for (int i = 0; i < 5; i++)
                cr_assert_eq(hvt_reader_open(NULL, path), HVT_ERR_EMPTY);
        after = count_fds();
        cr_assert_eq(after, before, "%d file descriptors leaked by 5 failed opens", after - before);
}

/* Whether fd is an open file descriptor. */
static bool fd_is_open(int fd)
{
        return fcntl(fd, F_GETFD) != -1 || errno != EBADF;
}

Test(trace, fdopen_reader_owns_the_fd)
{
        const char *path = hv_tmp("owned.zst"), *empty = hv_tmp("owned-empty.zst");
        struct hvt_reader *r = NULL;
        struct hvt_event ev;
        int fd, before = count_fds();

        write_trace_with_header_frame(path, 3, 16);
        fd = open(path, O_RDONLY);
        cr_assert_geq(fd, 0);
        cr_assert_eq(hvt_reader_fdopen(&r, fd), HVT_OK, "%s", hvt_reader_message(r));
        th_expect_next(r, &ev, HVT_REC_HEADER);
        cr_assert(fd_is_open(fd), "the reader reads from it");
        hvt_reader_close(r);
        cr_assert(!fd_is_open(fd), "closed with the reader");

        /* On error too: closed with the reader that explains it, or at once without one. */
        th_write_file(empty, "", 0);
        fd = open(empty, O_RDONLY);
        cr_assert_eq(hvt_reader_fdopen(&r, fd), HVT_ERR_EMPTY);
        th_check_msg(r, "empty");
        hvt_reader_close(r);
        cr_assert(!fd_is_open(fd));
        fd = open(empty, O_RDONLY);
        cr_assert_eq(hvt_reader_fdopen(NULL, fd), HVT_ERR_EMPTY);
        cr_assert(!fd_is_open(fd));
        fd = open(path, O_RDONLY);
        cr_assert_eq(hvt_reader_fdopen(NULL, fd), HVT_OK, "a verdict only");
        cr_assert(!fd_is_open(fd));
        cr_assert_eq(count_fds(), before, "file descriptors leaked");
}

Test(trace, fdopen_reads_from_the_current_offset_of_a_pipe)
{
        const char *path = hv_tmp("piped.zst");
        struct hvt_reader *r = NULL;
        struct hvt_event ev;
        uint8_t *file;
        size_t len, n = 0;
        int p[2], err;
        pid_t pid;

        write_trace_with_header_frame(path, 200, 16);
        file = th_read_file(path, &len);
        cr_assert_eq(pipe(p), 0);
        pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
                /* A byte the reader must not see, then the trace in small writes. */
                close(p[0]);
                if (write(p[1], "x", 1) != 1)
                        _exit(1);
                for (size_t off = 0; off < len; off += 100) {
                        size_t k = len - off < 100 ? len - off : 100;

                        if (write(p[1], file + off, k) != (ssize_t)k)
                                _exit(1);
                }
                _exit(0);
        }
        close(p[1]);
        {
                char x;

                cr_assert_eq(read(p[0], &x, 1), 1);
        }
        cr_assert_eq(hvt_reader_fdopen(&r, p[0]), HVT_OK, "%s", hvt_reader_message(r));
        while ((err = hvt_reader_next(r, &ev)) == HVT_OK)
                n++;
        cr_assert_eq(err, HVT_END_OF_TRACE, "%d %s", err, hvt_reader_message(r));
        cr_assert_eq(n, 1 + 200 + 20 + 20 + 1); /* header, exits, writes, console, end */
        hvt_reader_close(r);
        waitpid(pid, NULL, 0);
        free(file);
}

Test(trace, open_memory_reads_the_caller_buffer)
{
        const char *path = hv_tmp("mem.zst");
        struct hvt_reader *r = NULL;
        struct hvt_event ev;
        uint8_t *file;
        size_t len;

        write_trace_with_header_frame(path, 5, 16);
        file = th_read_file(path, &len);
        cr_assert_eq(hvt_reader_open_memory(&r, file, len), HVT_OK, "%s", hvt_reader_message(r));
        th_expect_next(r, &ev, HVT_REC_HEADER);
        cr_assert_str_eq(ev.header.argv[0], "hvrec");
        hvt_reader_close(r);
        /* The buffer is the caller's: untouched, and still there after close. */
        {
                size_t again_len;
                uint8_t *again = th_read_file(path, &again_len);

                cr_assert_eq(again_len, len);
                cr_assert_arr_eq(again, file, len);
                free(again);
        }
        cr_assert_eq(hvt_reader_open_memory(NULL, file, len), HVT_OK, "a verdict only");
        cr_assert_eq(hvt_reader_open_memory(&r, file, 3), HVT_ERR_NOT_TRACE);
        hvt_reader_close(r);
        cr_assert_eq(hvt_reader_open_memory(&r, NULL, 0), HVT_ERR_EMPTY);
        th_check_msg(r, "empty");
        hvt_reader_close(r);
        cr_assert_eq(hvt_reader_open_memory(&r, NULL, 10), -EINVAL);
        th_check_msg(r, NULL);
        hvt_reader_close(r);
        free(file);
}

static int open_writer_opts(const char *path, const void *opts)
{
        struct hvt_writer *w = NULL;
        int err = hvt_writer_open(&w, path, opts);

        if (!err) {
                th_write_min_header(w);
                th_write_end(w, 0, "opts");
                th_close_writer(w);
        }
        return err;
}

Test(trace, writer_options_are_sized)
{
        const char *path = hv_tmp("opts.zst");
        struct hvt_writer_opts o = { .size = sizeof(o), .level = 19, .frame_records = 1 };
        /* A program built against later headers, with one more field. */
        struct {
                struct hvt_writer_opts v1;
                uint64_t later;
        } big = { .v1 = { .size = sizeof(big) } };
        struct th_readres res = { .ids = calloc(8, sizeof(struct th_rec_id)) };

        cr_assert_eq(open_writer_opts(path, &o), 0);
        th_read_all(path, &res, 8);
        cr_assert_eq(res.err, HVT_END_OF_TRACE, "%s", res.msg);
        cr_assert_eq(res.n, 2);
        cr_assert_eq(open_writer_opts(path, NULL), 0, "NULL: every default");
        cr_assert_eq(open_writer_opts(path, &big), 0, "later fields left at 0 are fine");

        big.later = 1;
        cr_assert_eq(open_writer_opts(path, &big), -E2BIG, "a later field this library ignores");
        o.size = 0;
        cr_assert_eq(open_writer_opts(path, &o), -EINVAL, "size not set");
        /* The first version ended with background_flush; vcpus came later. */
        o.size = offsetof(struct hvt_writer_opts, background_flush) + sizeof(int) - 1;
        cr_assert_eq(open_writer_opts(path, &o), -EINVAL, "smaller than the first version");
        o.size = offsetof(struct hvt_writer_opts, vcpus);
        cr_assert_eq(open_writer_opts(path, &o), 0, "a program built before vcpus existed");
        o.size = sizeof(o);
        o.level = ZSTD_maxCLevel() + 1;
        cr_assert_eq(open_writer_opts(path, &o), -EINVAL, "zstd level %d", o.level);
        o.level = -1;
        cr_assert_eq(open_writer_opts(path, &o), 0, "negative levels are zstd's fast ones");
        free(res.ids);
}

Test(trace, bad_writer_options_keep_the_file)
{
        const char *path = hv_tmp("keep.zst");
        struct hvt_writer_opts o = { .size = 1 };
        struct hvt_writer *w = NULL;
        uint8_t *back;
        size_t len;
        int fd, before;

        th_write_file(path, "precious", 8);
        cr_assert_eq(hvt_writer_open(&w, path, &o), -EINVAL);
        back = th_read_file(path, &len);
        cr_assert_eq(len, 8, "the file was truncated by a call that failed");
        free(back);

        /* fdopen owns the descriptor even when it refuses the options. */
        before = count_fds();
        fd = open(path, O_WRONLY);
        cr_assert_eq(hvt_writer_fdopen(&w, fd, &o), -EINVAL);
        cr_assert(!fd_is_open(fd));
        cr_assert_eq(count_fds(), before);
}

/* Write errors are returned and sticky. */
Test(trace, write_errors_are_reported)
{
        struct hvt_writer *w;
        struct hvt_exit e = { .reason = HVT_EXIT_HLT };
        int p[2], err;

        signal(SIGPIPE, SIG_IGN);
        cr_assert_eq(pipe(p), 0);
        cr_assert_eq(hvt_writer_fdopen(&w, p[1], NULL), 0);
        close(p[0]);
        th_write_min_header(w);
        err = hvt_writer_flush(w);
        cr_assert_eq(err, -EPIPE, "flush: %d", err);
        cr_assert_eq(hvt_write_exit(w, &e), -EPIPE, "the error is sticky");
        cr_assert_eq(hvt_writer_close(w), -EPIPE);
}

/*
 * BUG: src/trace/writer.c reserve(): when the raw buffer is full and
 * compress_raw() fails, `w->error = -EIO` replaces the real error that
 * compress_raw returned (-EPIPE here, -ENOSPC on a full disk), so every
 * hvt_write_* and hvt_writer_close report "Input/output error".
 * Expected: the -errno of the failed write(2), as hvt_writer_flush does.
 */
// BUG: writer.c reserve() replaces the write error with -EIO.
Test(trace, write_error_while_buffering_keeps_errno)
{
        struct hvt_writer_opts o = { .size = sizeof(o),
                                     .frame_records = 1000000,
                                     .frame_ms = 1000000 };
        struct hvt_writer *w;
        uint64_t s = 1;
        int p[2], err = 0;
        size_t i;

        signal(SIGPIPE, SIG_IGN);
        cr_assert_eq(pipe(p), 0);
        cr_assert_eq(hvt_writer_fdopen(&w, p[1], &o), 0);
        close(p[0]);
        th_write_min_header(w);
        /* Incompressible exits, until the buffered data has to reach the file. */
        for (i = 0; i < 200000 && !err; i++) {
                struct hvt_exit e = { .reason = HVT_EXIT_HLT, .seq = i };

                th_rand_state(&s, &e.st);
                err = hvt_write_exit(w, &e);
        }
        cr_assert_neq(err, 0, "64 MiB written into a closed pipe without an error");
        cr_assert_eq(err, -EPIPE, "write error reported as %d (%s), want -EPIPE", err,
                     strerror(-err));
        cr_assert_eq(hvt_writer_close(w), -EPIPE);
}

struct flusher_job {
        struct hvt_writer *w;
        int write_err, close_err;
};

static void *write_and_close(void *arg)
{
        struct flusher_job *j = arg;
        struct hvt_exit e = { .reason = HVT_EXIT_HLT };

        j->write_err = hvt_write_exit(j->w, &e);
        j->close_err = hvt_writer_close(j->w);
        return NULL;
}

/*
 * BUG: src/trace/writer.c flusher_main(): when end_frame_locked() fails (a
 * write error: EPIPE, ENOSPC, EIO...), w->error is set but frame_open stays
 * true, so the loop's `continue` re-enters the same branch forever while
 * holding w->lock: the flush thread spins at 100% CPU and every later
 * hvt_write_* and hvt_writer_close() blocks on the mutex.  Expected: the
 * writer returns the error (-EPIPE here) and close completes.
 */
// BUG: writer.c flusher_main spins holding the lock after a write error: deadlock.
Test(trace, write_error_in_flush_thread_does_not_hang)
{
        struct hvt_writer_opts o = { .size = sizeof(o), .background_flush = 1, .frame_ms = 10 };
        struct flusher_job job = { 0 };
        struct timespec until;
        pthread_t t;
        int p[2];

        signal(SIGPIPE, SIG_IGN);
        cr_assert_eq(pipe(p), 0);
        cr_assert_eq(hvt_writer_fdopen(&job.w, p[1], &o), 0);
        close(p[0]);
        th_write_min_header(job.w); /* buffered: the flush thread will fail to write it */
        usleep(100000);
        cr_assert_eq(pthread_create(&t, NULL, write_and_close, &job), 0);
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 3;
        if (pthread_timedjoin_np(t, NULL, &until))
                cr_assert_fail("the writer deadlocked after a write error in the flush thread");
        cr_assert_eq(job.write_err, -EPIPE);
        cr_assert_eq(job.close_err, -EPIPE);
}

/* ------------------------------------------------------------------------ */
/* 5. Names and state helpers                                               */
/* ------------------------------------------------------------------------ */

static void check_names(const char *(*fn)(unsigned), unsigned from, unsigned count,
                        const char *what)
{
        for (unsigned i = from; i < count; i++) {
                const char *a = fn(i);

                cr_assert_not_null(a, "%s %u", what, i);
                cr_assert(a[0], "%s %u: empty name", what, i);
                cr_assert_str_neq(a, "?", "%s %u has no name", what, i);
                cr_assert_null(strchr(a, ' '), "%s %u: '%s' has a space", what, i, a);
                for (unsigned j = from; j < i; j++)
                        cr_assert_str_neq(a, fn(j), "%s %u and %u share '%s'", what, i, j, a);
        }
        cr_assert_str_eq(fn(count), "?", "%s %u (out of range)", what, count);
        cr_assert_str_eq(fn(count + 1000), "?");
        cr_assert_str_eq(fn(~0u), "?");
}

Test(trace, enum_names)
{
        check_names(hvt_exit_reason_name, 0, HVT_EXIT_REASON_COUNT, "exit reason");
        check_names(hvt_rec_type_name, 1, HVT_REC_TYPE_COUNT, "record type");
        cr_assert_str_eq(hvt_rec_type_name(0), "?");
        check_names(hvt_mode_name, 0, HVT_MODE_LONG + 1, "mode");
        check_names(hvt_policy_name, 0, HVT_POLICY_COUNT, "policy");
        check_names(hvt_source_name, 0, HVT_SRC_COUNT, "source");
        check_names(hvt_end_why_name, 1, HVT_END_WHY_COUNT, "end why");
        cr_assert_str_eq(hvt_end_why_name(0), "?");
        check_names(hvt_field_name, 0, HVT_F_COUNT, "field");
        check_names(hvt_sreg_name, 0, HVT_SREG_COUNT, "sreg");
        /* The segment fields are named after their registers. */
        for (unsigned i = 0; i < HVT_SREG_COUNT; i++)
                cr_assert_str_eq(hvt_field_name(HVT_F_ES + i), hvt_sreg_name(i));
        cr_assert_str_eq(hvt_field_name(HVT_F_RIP), "rip");
        cr_assert_str_eq(hvt_field_name(HVT_F_RAX), "rax");
        cr_assert_str_eq(hvt_field_name(HVT_F_R15), "r15");
        cr_assert_str_eq(hvt_sreg_name(HVT_CS), "cs");
        cr_assert_str_eq(hvt_exit_reason_name(HVT_EXIT_IO), "io");
        cr_assert_str_eq(hvt_rec_type_name(HVT_REC_WRITE), "write");
}

Test(trace, policy_parse_roundtrip)
{
        for (unsigned p = 0; p < HVT_POLICY_COUNT; p++)
                cr_assert_eq(hvt_policy_parse(hvt_policy_name(p)), (int)p, "policy %u", p);
        cr_assert_eq(hvt_policy_parse("?"), -EINVAL);
        cr_assert_eq(hvt_policy_parse(""), -EINVAL);
        cr_assert_eq(hvt_policy_parse("no-such-policy"), -EINVAL);
        cr_assert_eq(hvt_policy_parse("windo"), -EINVAL, "prefixes do not match");
        cr_assert_eq(hvt_policy_parse("window "), -EINVAL);
}

Test(trace, shadow_names)
{
        cr_assert_str_eq(hvt_shadow_name(0), "none");
        cr_assert_str_eq(hvt_shadow_name(HVT_INTR_STI_SHADOW), "sti");
        cr_assert_str_eq(hvt_shadow_name(HVT_INTR_MOVSS_SHADOW), "mov-ss");
        cr_assert_str_eq(hvt_shadow_name(HVT_INTR_STI_SHADOW | HVT_INTR_MOVSS_SHADOW),
                         "sti+mov-ss");
        /* Other bits do not matter. */
        cr_assert_str_eq(hvt_shadow_name(~(uint64_t)(HVT_INTR_STI_SHADOW | HVT_INTR_MOVSS_SHADOW)),
                         "none");
        cr_assert_str_eq(hvt_shadow_name(HVT_INTR_STI_SHADOW | HVT_INTR_VALID_SHADOW | HVT_INTR_IF |
                                         (1ull << 63)),
                         "sti");
}

static const int lib_errors[] = { HVT_ERR_EMPTY, HVT_ERR_NOT_TRACE, HVT_ERR_VERSION,
                                  HVT_ERR_CORRUPT, HVT_ERR_TRUNCATED };

/* Whether text is hvt_strerror's answer for a number that is no code. */
static bool says_unknown(const char *text, int code)
{
        char want[40];

        snprintf(want, sizeof(want), "unknown error %d", code);
        return !strcmp(text, want);
}

Test(trace, strerror_every_code)
{
        const int results[] = { HVT_OK,           HVT_END_OF_TRACE,
                                HVT_ERR_EMPTY,    HVT_ERR_NOT_TRACE,
                                HVT_ERR_VERSION,  HVT_ERR_CORRUPT,
                                HVT_ERR_TRUNCATED };
        const size_t n = sizeof(results) / sizeof(results[0]);

        for (size_t i = 0; i < n; i++) {
                const char *a = hvt_strerror(results[i]);

                cr_assert_not_null(a);
                cr_assert(a[0], "code %d", results[i]);
                cr_assert_null(strchr(a, '\n'));
                cr_assert(!says_unknown(a, results[i]), "code %d: %s", results[i], a);
                cr_assert_null(strstr(a, "nknown"), "code %d: %s", results[i], a);
                for (size_t j = 0; j < i; j++)
                        cr_assert_str_neq(a, hvt_strerror(results[j]), "codes %d and %d",
                                          results[i], results[j]);
                /* No library code is an errno: their texts differ from every errno's. */
                for (int e = 1; e < 200 && results[i] < 0; e++)
                        cr_assert_str_neq(a, hvt_strerror(-e), "code %d and -%d", results[i], e);
        }
}

Test(trace, strerror_names_errno)
{
        /* The C library's own text, in every locale the tests run in. */
        const int errs[] = { ENOENT, EIO, ENOMEM, ENOSPC, EACCES, EPIPE, EINVAL, E2BIG, EBADF };

        for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
                const char *a = hvt_strerror(-errs[i]);

                cr_assert_str_eq(a, strerror(errs[i]), "-%d", errs[i]);
                cr_assert(!says_unknown(a, -errs[i]), "-%d: %s", errs[i], a);
        }
}

Test(trace, strerror_unknown_numbers)
{
        /* Positive errno values are not results (the API returns -errno). */
        const int bad[] = { 2,
                            EIO,
                            1000,
                            INT_MAX,
                            -4096,
                            -19999,
                            HVT_ERR_EMPTY + 1,
                            HVT_ERR_TRUNCATED - 1,
                            -1000000,
                            INT_MIN };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                const char *a = hvt_strerror(bad[i]);

                cr_assert(says_unknown(a, bad[i]), "%d: '%s'", bad[i], a);
        }
}

Test(trace, result_numbers_are_stable)
{
        /* The numbers are part of the API: programs built earlier compare with them. */
        cr_assert_eq(HVT_OK, 0);
        cr_assert_eq(HVT_END_OF_TRACE, 1);
        cr_assert_eq(HVT_ERR_EMPTY, -20001);
        cr_assert_eq(HVT_ERR_NOT_TRACE, -20002);
        cr_assert_eq(HVT_ERR_VERSION, -20003);
        cr_assert_eq(HVT_ERR_CORRUPT, -20004);
        cr_assert_eq(HVT_ERR_TRUNCATED, -20005);
        /* Outside the range an errno can take (Linux: 1..4095). */
        for (size_t i = 0; i < sizeof(lib_errors) / sizeof(lib_errors[0]); i++)
                cr_assert_lt(lib_errors[i], -4095);
}

Test(trace, version_of_library_and_headers)
{
        char want[32];

        snprintf(want, sizeof(want), "%d.%d.%d", HVT_VERSION_MAJOR, HVT_VERSION_MINOR,
                 HVT_VERSION_PATCH);
        cr_assert_str_eq(HVT_VERSION_STRING, want);
        cr_assert_str_eq(hvt_version_string(), HVT_VERSION_STRING);
        cr_assert_eq(hvt_version(), (unsigned)HVT_VERSION);
        cr_assert_eq(hvt_version() >> 16, (unsigned)HVT_VERSION_MAJOR);
        cr_assert_eq((hvt_version() >> 8) & 0xff, (unsigned)HVT_VERSION_MINOR);
        cr_assert_eq(hvt_version() & 0xff, (unsigned)HVT_VERSION_PATCH);
        cr_assert_lt(HVT_VERSION_ENCODE(0, 9, 9), HVT_VERSION_ENCODE(1, 0, 0));
        cr_assert_lt(HVT_VERSION_ENCODE(1, 2, 255), HVT_VERSION_ENCODE(1, 3, 0));
}

Test(trace, field_sizes_and_differs)
{
        size_t total = 0;
        struct hvt_vcpu_state a, b;
        uint64_t s = 5;

        for (unsigned f = 0; f < HVT_F_COUNT; f++) {
                cr_assert_eq(hvt_field_size(f), th_fsize(f), "field %u (%s)", f, hvt_field_name(f));
                total += hvt_field_size(f);
        }
        cr_assert_eq(total, sizeof(struct hvt_vcpu_state), "the fields cover the whole state");
        cr_assert_eq(hvt_field_size(HVT_F_COUNT), 0);
        cr_assert_eq(hvt_field_size(1000), 0);

        th_rand_state(&s, &a);
        b = a;
        for (unsigned f = 0; f < HVT_F_COUNT; f++)
                cr_assert_not(hvt_state_field_differs(&a, &b, f), "field %u", f);
        b.seg[HVT_CS].attr ^= HVT_SEG_L;
        cr_assert(hvt_state_field_differs(&a, &b, HVT_F_CS), "attr-only change");
        cr_assert_not(hvt_state_field_differs(&a, &b, HVT_F_SS));
        b = a;
        b.seg[HVT_DS].selector ^= 8;
        cr_assert(hvt_state_field_differs(&a, &b, HVT_F_DS), "selector-only change");
        b = a;
        b.idt.base ^= 1ull << 48;
        cr_assert(hvt_state_field_differs(&a, &b, HVT_F_IDT), "base high-half change");
        cr_assert_not(hvt_state_field_differs(&a, &b, HVT_F_GDT));
        b = a;
        b.intr ^= HVT_INTR_NMI_BLOCKED;
        cr_assert(hvt_state_field_differs(&a, &b, HVT_F_INTR));
        cr_assert_not(hvt_state_field_differs(&a, &b, HVT_F_COUNT), "out of range");
}

static struct hvt_vcpu_state mode_state(uint64_t cr0, uint64_t efer, uint16_t cs_attr,
                                        uint64_t cs_base, uint64_t rip)
{
        struct hvt_vcpu_state st = { 0 };

        st.cr0 = cr0;
        st.efer = efer;
        st.seg[HVT_CS].attr = cs_attr;
        st.seg[HVT_CS].base = cs_base;
        st.seg[HVT_CS].selector = 0x08;
        st.seg[HVT_CS].limit = 0xffffffff;
        st.rip = rip;
        return st;
}

Test(trace, state_mode_code_bits_and_pc)
{
        const uint64_t PE = 1, PG = 1ull << 31, LME = 1ull << 8, LMA = 1ull << 10;
        const uint16_t code = 0xb | HVT_SEG_S | HVT_SEG_P;
        struct hvt_vcpu_state st;

        /* Real mode: 16-bit, pc = cs.base + (rip & 0xffff), whatever CS's attributes say. */
        st = mode_state(0x60000010, 0, code | HVT_SEG_DB, 0xf0000, 0x12345fff0ull);
        cr_assert_eq(hvt_state_mode(&st), HVT_MODE_REAL);
        cr_assert_eq(hvt_state_code_bits(&st), 16);
        cr_assert_eq(hvt_state_pc(&st), 0xf0000 + 0xfff0);
        st = mode_state(0, 0, 0, 0x7c00 << 4, 0x0003);
        cr_assert_eq(hvt_state_pc(&st), 0x7c003);

        /* 32-bit protected mode (CS.DB). */
        st = mode_state(PE, 0, code | HVT_SEG_DB | HVT_SEG_G, 0x10000, 0xabcd00002000ull);
        cr_assert_eq(hvt_state_mode(&st), HVT_MODE_PROTECTED);
        cr_assert_eq(hvt_state_code_bits(&st), 32);
        cr_assert_eq(hvt_state_pc(&st), 0x12000);
        st = mode_state(PE | PG, 0, code | HVT_SEG_DB, 0xfffff000, 0x2000);
        cr_assert_eq(hvt_state_pc(&st), 0x1000, "linear addresses wrap at 4 GiB");

        /* 16-bit protected mode (CS.DB clear). */
        st = mode_state(PE, 0, code, 0x12345, 0xabcd1234);
        cr_assert_eq(hvt_state_mode(&st), HVT_MODE_PROTECTED);
        cr_assert_eq(hvt_state_code_bits(&st), 16);
        cr_assert_eq(hvt_state_pc(&st), 0x12345 + 0x1234);

        /* Long mode, 64-bit code (CS.L): the CS base is ignored. */
        st = mode_state(PE | PG, LME | LMA, code | HVT_SEG_L, 0x5000, 0xffffffff81000000ull);
        cr_assert_eq(hvt_state_mode(&st), HVT_MODE_LONG);
        cr_assert_eq(hvt_state_code_bits(&st), 64);
        cr_assert_eq(hvt_state_pc(&st), 0xffffffff81000000ull);

        /* Compatibility mode: long mode, CS.L clear: sized like protected mode. */
        st = mode_state(PE | PG, LME | LMA, code | HVT_SEG_DB, 0x3000, 0x100000400ull);
        cr_assert_eq(hvt_state_mode(&st), HVT_MODE_LONG);
        cr_assert_eq(hvt_state_code_bits(&st), 32);
        cr_assert_eq(hvt_state_pc(&st), 0x3400);
        st = mode_state(PE | PG, LME | LMA, code, 0x3000, 0x10400);
        cr_assert_eq(hvt_state_code_bits(&st), 16);
        cr_assert_eq(hvt_state_pc(&st), 0x3400);

        /* LME without LMA (paging not yet on) is still protected mode. */
        st = mode_state(PE, LME, code | HVT_SEG_DB, 0, 0x1000);
        cr_assert_eq(hvt_state_mode(&st), HVT_MODE_PROTECTED);
}

/* ------------------------------------------------------------------------ */
/* 6. The background flush thread                                           */
/* ------------------------------------------------------------------------ */

static uint64_t read_copy(const char *path, const char *copy, int *err_out, uint64_t *msg_n)
{
        struct hvt_reader *r;
        struct hvt_event ev;
        uint64_t n = 0;
        int err;

        th_copy_file(path, copy);
        r = th_must_open(copy);
        while ((err = hvt_reader_next(r, &ev)) == HVT_OK) {
                if (n > 0 && ev.type == HVT_REC_EXIT)
                        cr_assert_eq(ev.exit.seq, n - 1);
                n++;
        }
        *err_out = err;
        if (err == HVT_ERR_TRUNCATED) {
                th_check_msg(r, "truncated after");
                *msg_n = th_msg_truncated_count(r);
        }
        hvt_reader_close(r);
        return n;
}

Test(trace, background_flush_thread_ends_idle_frames)
{
        const char *path = hv_tmp("bg.zst"), *copy = hv_tmp("bg-copy.zst");
        struct hvt_writer *w = th_open_writer(path, 100000, 50, 1);
        uint64_t n, msg_n = 0;
        int err;

        th_write_min_header(w);
        for (int i = 0; i < 40; i++) {
                struct hvt_exit e = { .reason = HVT_EXIT_HLT, .seq = (uint64_t)i };

                cr_assert_eq(hvt_write_exit(w, &e), 0);
        }
        usleep(200000); /* no flush: only the thread can end the frame */
        n = read_copy(path, copy, &err, &msg_n);
        cr_assert_eq(err, HVT_ERR_TRUNCATED, "no end record yet");
        cr_assert_eq(n, 41, "%" PRIu64 " of 41 records on disk after 200 ms", n);
        cr_assert_eq(msg_n, 41);

        /* And again for a second idle frame. */
        for (int i = 40; i < 65; i++) {
                struct hvt_exit e = { .reason = HVT_EXIT_HLT, .seq = (uint64_t)i };

                cr_assert_eq(hvt_write_exit(w, &e), 0);
        }
        usleep(200000);
        n = read_copy(path, copy, &err, &msg_n);
        cr_assert_eq(err, HVT_ERR_TRUNCATED);
        cr_assert_eq(n, 66);

        th_write_end(w, 65, NULL);
        th_close_writer(w);
        n = read_copy(path, copy, &err, &msg_n);
        cr_assert_eq(err, HVT_END_OF_TRACE);
        cr_assert_eq(n, 67);
}

/* ------------------------------------------------------------------------ */
/* 7. WRITE records (format minor 1)                                        */
/* ------------------------------------------------------------------------ */

/* The most data one WRITE record holds: the record limit less its fixed part. */
#define WRITE_CHUNK ((size_t)HVT_WRITE_CHUNK)

static void expect_write(struct hvt_reader *r, struct hvt_event *ev, uint64_t seq, uint64_t gpa,
                         const uint8_t *data, size_t len, const char *what)
{
        th_expect_next(r, ev, HVT_REC_WRITE);
        cr_assert_eq(ev->write.seq, seq, "%s: seq %" PRIu64, what, ev->write.seq);
        cr_assert_eq(ev->write.gpa, gpa, "%s: gpa 0x%" PRIx64, what, ev->write.gpa);
        cr_assert_eq(ev->write.len, len, "%s: len %zu, want %zu", what, ev->write.len, len);
        cr_assert_not_null(ev->write.data, "%s: data", what);
        if (len)
                cr_assert_eq(memcmp(ev->write.data, data, len), 0, "%s: data differs", what);
}

Test(trace, write_records_small_empty_and_split)
{
        const char *path = hv_tmp("writes.zst");
        static const uint8_t small[4] = { 0x3c, 0, 0, 0 };
        const size_t big_len = WRITE_CHUNK + 5;
        const uint64_t big_gpa = 0x100000;
        uint8_t *big = malloc(big_len);
        uint64_t s = 4242, recs;
        struct hvt_writer *w;
        struct hvt_reader *r;
        struct hvt_event ev;
        struct hvt_exit e = { .reason = HVT_EXIT_HLT, .seq = 17 };
        struct hv_trace t;

        cr_assert_not_null(big);
        th_rnd_bytes(&s, big, big_len);
        w = th_open_writer(path, 0, 0, 0);
        th_write_min_header(w);
        cr_assert_eq(hvt_write_exit(w, &e), 0);
        recs = hvt_writer_records(w);
        cr_assert_eq(hvt_write_write(w, 17, 0x1234, small, sizeof(small)), 0);
        cr_assert_eq(hvt_write_write(w, 17, 0x5000, NULL, 0), 0, "empty, no data pointer");
        cr_assert_eq(hvt_write_write(w, 17, 0x6000, small, 0), 0, "empty");
        cr_assert_eq(hvt_writer_records(w), recs + 3, "one record each");
        cr_assert_eq(hvt_write_write(w, 17, big_gpa, big, big_len), 0);
        cr_assert_eq(hvt_writer_records(w), recs + 5, "one byte over a record's worth: two");
        /* A range ending exactly at 2^64 is fine; one past it, or bytes without data, are not. */
        cr_assert_eq(hvt_write_write(w, 17, UINT64_MAX, small, 1), 0);
        recs = hvt_writer_records(w);
        cr_assert_eq(hvt_write_write(w, 17, UINT64_MAX - 1, small, 3), -EINVAL);
        cr_assert_eq(hvt_write_write(w, 17, 0x1000, NULL, 1), -EINVAL);
        cr_assert_eq(hvt_writer_records(w), recs, "refused ranges write nothing");
        e.seq = 18;
        e.st.rip = 0x1001;
        cr_assert_eq(hvt_write_exit(w, &e), 0, "the writer is still usable");
        cr_assert_eq(hvt_write_write(w, 18, 0, big + 1, WRITE_CHUNK), 0);
        cr_assert_eq(hvt_writer_records(w), recs + 2, "exactly a record's worth: one record");
        th_write_end(w, 2, NULL);
        th_close_writer(w);

        r = th_must_open(path);
        th_expect_next(r, &ev, HVT_REC_HEADER);
        th_expect_next(r, &ev, HVT_REC_EXIT);
        cr_assert_eq(ev.exit.seq, 17);
        expect_write(r, &ev, 17, 0x1234, small, sizeof(small), "small");
        cr_assert_eq(ev.index, 2);
        expect_write(r, &ev, 17, 0x5000, NULL, 0, "empty without data");
        expect_write(r, &ev, 17, 0x6000, NULL, 0, "empty");
        expect_write(r, &ev, 17, big_gpa, big, WRITE_CHUNK, "split, first part");
        expect_write(r, &ev, 17, big_gpa + WRITE_CHUNK, big + WRITE_CHUNK, 5, "split, the rest");
        expect_write(r, &ev, 17, UINT64_MAX, small, 1, "the last byte");
        th_expect_next(r, &ev, HVT_REC_EXIT);
        cr_assert_eq(ev.exit.seq, 18);
        cr_assert_eq(ev.exit.st.rip, 0x1001, "write records leave the exit state alone");
        expect_write(r, &ev, 18, 0, big + 1, WRITE_CHUNK, "a record's worth");
        cr_assert_eq(ev.index, 9);
        th_expect_next(r, &ev, HVT_REC_END);
        cr_assert_eq(hvt_reader_next(r, &ev), HVT_END_OF_TRACE);
        hvt_reader_close(r);

        /* The test helpers keep them, with their data. */
        cr_assert_eq(hv_trace_load(path, &t), HVT_OK);
        cr_assert_eq(t.read_err, HVT_END_OF_TRACE, "%s", t.message);
        cr_assert_eq(t.nwrites, 7);
        cr_assert_eq(t.writes[0].seq, 17);
        cr_assert_eq(t.writes[0].gpa, 0x1234);
        cr_assert_eq(t.writes[0].len, sizeof(small));
        cr_assert_arr_eq(t.writes[0].data, small, sizeof(small));
        cr_assert_eq(t.writes[1].len, 0);
        cr_assert_not_null(t.writes[1].data);
        cr_assert_eq(t.writes[4].gpa, big_gpa + WRITE_CHUNK);
        cr_assert_arr_eq(t.writes[4].data, big + WRITE_CHUNK, 5);
        cr_assert_eq(t.writes[6].seq, 18);
        cr_assert_eq(t.writes[6].len, WRITE_CHUNK);
        cr_assert_eq(memcmp(t.writes[6].data, big + 1, WRITE_CHUNK), 0);
        hv_trace_free(&t);
        free(big);
}

Test(trace, write_record_messages_name_the_record)
{
        const char *path = hv_tmp("shortwrite.zst");
        struct th_rawbuf raw = { 0 };
        struct hvt_disk_write wr = { .seq = 1, .gpa = 2 };
        struct hvt_reader *r;
        struct hvt_event ev;

        th_rb_preamble(&raw, 1, HVT_FORMAT_MINOR);
        th_rb_min_header(&raw);
        th_rb_exit(&raw, 1);
        th_rb_rec(&raw, HVT_REC_WRITE, 0, &wr, sizeof(wr));
        th_rb_rec(&raw, HVT_REC_WRITE, 0, &wr, sizeof(wr) - 1);
        th_compress_to(path, raw.p, raw.len);
        r = th_must_open(path);
        th_expect_next(r, &ev, HVT_REC_HEADER);
        th_expect_next(r, &ev, HVT_REC_EXIT);
        expect_write(r, &ev, 1, 2, NULL, 0, "exactly the fixed part");
        cr_assert_eq(hvt_reader_next(r, &ev), HVT_ERR_CORRUPT);
        th_check_msg(r, "record 3: write record too short");
        hvt_reader_close(r);
        free(raw.p);
}

/* Traces of format minor 0 (the samples in traces/) have no WRITE records and still read. */
Test(trace, minor_0_traces_still_read)
{
        const char *path = hv_tmp("minor0.zst");
        struct th_rawbuf raw = { 0 };
        struct hvt_disk_exit x = { .reason = HVT_EXIT_HLT, .insn_len = 1 };
        struct hvt_disk_deliver d = { .ip = 0x7c01, .vector = 0x20, .frame_bits = 16 };
        struct hvt_disk_end end = { .exits = 1, .why = HVT_END_HALT };
        uint8_t exitp[sizeof(x) + 1], conp[10] = { 0 };
        struct hvt_reader *r;
        struct hvt_event ev;
        struct dirent *de;
        size_t nsamples = 0;
        DIR *dir;

        memcpy(exitp, &x, sizeof(x));
        exitp[sizeof(x)] = 0xf4;
        memcpy(conp + 8, "hi", 2);
        th_rb_preamble(&raw, 1, 0);
        th_rb_min_header(&raw);
        th_rb_rec(&raw, HVT_REC_EXIT, 0, exitp, sizeof(exitp));
        th_rb_rec(&raw, HVT_REC_DELIVER, 0, &d, sizeof(d));
        th_rb_rec(&raw, HVT_REC_CONSOLE, 0, conp, sizeof(conp));
        th_rb_rec(&raw, HVT_REC_END, 0, &end, sizeof(end));
        th_compress_to(path, raw.p, raw.len);
        r = th_must_open(path);
        th_expect_next(r, &ev, HVT_REC_HEADER);
        cr_assert_eq(ev.header.h.flags, 0);
        th_expect_next(r, &ev, HVT_REC_EXIT);
        cr_assert_eq(ev.exit.seq, 0);
        cr_assert_eq(ev.exit.insn[0], 0xf4);
        th_expect_next(r, &ev, HVT_REC_DELIVER);
        cr_assert_eq(ev.deliver.ip, 0x7c01);
        cr_assert_eq(ev.deliver.dflags, 0, "minor 0's reserved byte: no dflags");
        th_expect_next(r, &ev, HVT_REC_CONSOLE);
        cr_assert_eq(ev.console.len, 2);
        cr_assert_eq(memcmp(ev.console.data, "hi", 2), 0);
        th_expect_next(r, &ev, HVT_REC_END);
        cr_assert_eq(hvt_reader_next(r, &ev), HVT_END_OF_TRACE);
        hvt_reader_close(r);
        free(raw.p);

        /* The recorded samples read to their end; the minor-0 ones hold no writes. */
        dir = opendir(HV_SOURCE_DIR "/traces");
        cr_assert_not_null(dir, "%s/traces: %s", HV_SOURCE_DIR, strerror(errno));
        while ((de = readdir(dir))) {
                size_t n = strlen(de->d_name), flen, rlen;
                struct hvt_disk_preamble pre;
                uint8_t *file, *rawb;
                struct hv_trace t;
                char p[1024];

                if (n < 4 || strcmp(de->d_name + n - 4, ".zst"))
                        continue;
                snprintf(p, sizeof(p), "%s/traces/%s", HV_SOURCE_DIR, de->d_name);
                file = th_read_file(p, &flen);
                cr_assert_eq(th_decompress_all(file, flen, &rawb, &rlen), 0, "%s", p);
                cr_assert_geq(rlen, sizeof(pre));
                memcpy(&pre, rawb, sizeof(pre));
                cr_assert_eq(hv_trace_load(p, &t), HVT_OK, "%s", p);
                cr_assert_eq(t.read_err, HVT_END_OF_TRACE, "%s: %s", p, t.message);
                cr_assert(t.have_end, "%s", p);
                cr_assert_gt(t.nexits, 0, "%s", p);
                if (pre.minor == 0) {
                        cr_assert_eq(t.nwrites, 0, "%s", p);
                        cr_assert_eq(t.hdr.h.flags & (HVT_HDR_WRITES | HVT_HDR_STEP_INJECT), 0,
                                     "%s: minor 0 knows no such flags", p);
                }
                hv_trace_free(&t);
                free(rawb);
                free(file);
                nsamples++;
        }
        closedir(dir);
        cr_assert_gt(nsamples, 0, "no sample traces found");
}

Test(trace, write_event_copies_write_records)
{
        const char *src = hv_tmp("wsrc.zst"), *dst = hv_tmp("wdst.zst");
        uint8_t data[300], *f1, *f2, *r1, *r2;
        size_t l1, l2, rl1, rl2, nwrites = 0;
        uint64_t s = 5;
        struct hvt_writer *w;
        struct hvt_reader *r;
        struct hvt_event ev;
        int err;

        th_rnd_bytes(&s, data, sizeof(data));
        w = th_open_writer(src, 0, 0, 0);
        th_write_min_header(w);
        for (uint64_t i = 0; i < 6; i++) {
                struct hvt_exit e = { .reason = HVT_EXIT_HLT, .seq = i, .time_ns = i * 100 };

                e.st.rip = 0x7c00 + i;
                cr_assert_eq(hvt_write_exit(w, &e), 0);
                /* 0 to 250 bytes: the first is empty. */
                cr_assert_eq(hvt_write_write(w, i, 0x8000 + 64 * i, data + i, (size_t)i * 50), 0);
        }
        th_write_end(w, 6, "copied");
        th_close_writer(w);

        r = th_must_open(src);
        w = th_open_writer(dst, 0, 0, 0);
        while ((err = hvt_reader_next(r, &ev)) == HVT_OK) {
                nwrites += ev.type == HVT_REC_WRITE;
                cr_assert_eq(hvt_write_event(w, &ev), 0, "record %" PRIu64 " (%s)", ev.index,
                             hvt_rec_type_name(ev.type));
        }
        cr_assert_eq(err, HVT_END_OF_TRACE, "%s", hvt_reader_message(r));
        hvt_reader_close(r);
        th_close_writer(w);
        cr_assert_eq(nwrites, 6);

        /* The same records byte for byte: the raw streams are equal. */
        f1 = th_read_file(src, &l1);
        f2 = th_read_file(dst, &l2);
        cr_assert_eq(th_decompress_all(f1, l1, &r1, &rl1), 0);
        cr_assert_eq(th_decompress_all(f2, l2, &r2, &rl2), 0);
        cr_assert_eq(rl1, rl2, "raw streams of %zu and %zu bytes", rl1, rl2);
        cr_assert_eq(memcmp(r1, r2, rl1), 0, "the copy differs");
        free(f1);
        free(f2);
        free(r1);
        free(r2);
}

Test(trace, unknown_record_types_skipped_around_writes)
{
        const char *path = hv_tmp("unknown-writes.zst");
        struct hvt_disk_write wr = { .seq = 9, .gpa = 0x1000 };
        struct hvt_disk_end end = { .exits = 0, .why = HVT_END_HALT };
        uint8_t payload[sizeof(wr) + 3];
        static const uint8_t three[3] = { 1, 2, 3 };
        struct th_rawbuf raw = { 0 };
        struct hvt_reader *r;
        struct hvt_event ev;

        memcpy(payload, &wr, sizeof(wr));
        memcpy(payload + sizeof(wr), three, sizeof(three));
        th_rb_preamble(&raw, 1, HVT_FORMAT_MINOR);
        th_rb_min_header(&raw);
        th_rb_exit(&raw, 9);
        th_rb_rec(&raw, HVT_REC_WRITE, 0, payload, sizeof(payload));
        th_rb_rec(&raw, HVT_REC_TYPE_COUNT, 0, "future", 6); /* the next type to be defined */
        wr.gpa = 0x2000;
        th_rb_rec(&raw, HVT_REC_WRITE, 0, &wr, sizeof(wr));
        th_rb_rec(&raw, 0x4242, 0xffff, "x", 1);
        th_rb_rec(&raw, HVT_REC_END, 0, &end, sizeof(end));
        th_compress_to(path, raw.p, raw.len);

        r = th_must_open(path);
        th_expect_next(r, &ev, HVT_REC_HEADER);
        th_expect_next(r, &ev, HVT_REC_EXIT);
        expect_write(r, &ev, 9, 0x1000, three, sizeof(three), "before the unknown ones");
        cr_assert_eq(ev.index, 2);
        expect_write(r, &ev, 9, 0x2000, NULL, 0, "after them");
        cr_assert_eq(ev.index, 4, "skipped records are counted");
        th_expect_next(r, &ev, HVT_REC_END);
        cr_assert_eq(ev.index, 6);
        cr_assert_eq(hvt_reader_next(r, &ev), HVT_END_OF_TRACE);
        cr_assert_eq(hvt_reader_records(r), 7);
        hvt_reader_close(r);
        free(raw.p);
}

/* ------------------------------------------------------------------------ */
/* 8. hvreplay on WRITE records                                             */
/* ------------------------------------------------------------------------ */

/* Run hvreplay with args (NULL-terminated); its stdout and status in *p. */
static void run_replay(struct hv_proc *p, const char *a1, const char *a2, const char *a3,
                       const char *a4)
{
        const char *argv[] = { HVREPLAY, a1, a2, a3, a4, NULL };

        cr_assert_eq(hv_run(argv, p), 0, "cannot run hvreplay");
}

/* The line of text that contains needle, as a new string (NULL if none). */
static char *line_with(const char *text, const char *needle)
{
        const char *at = strstr(text, needle), *start, *end;

        if (!at)
                return NULL;
        for (start = at; start > text && start[-1] != '\n'; start--)
                ;
        end = strchr(at, '\n');
        return strndup(start, end ? (size_t)(end - start) : strlen(start));
}

/*
 * Three exits, with write records or without (and the flags saying they are
 * complete or not), then a delivery whose CS base is unknown.
 */
static void write_trace_with_writes(const char *path, bool flags, const uint8_t *big, size_t nbig,
                                    bool with_writes)
{
        static const uint8_t small[4] = { 0x3c, 0, 0, 0 };
        struct hvt_header h = { 0 };
        struct hvt_writer *w = th_open_writer(path, 0, 0, 0);

        h.h.mem_size = 0x10000;
        h.h.entry = 0x1000;
        h.h.load_addr = 0x1000;
        h.h.guest_mode = HVT_MODE_REAL;
        h.h.flags = flags ? HVT_HDR_WRITES | HVT_HDR_STEP_INJECT : 0;
        h.str[HVT_STR_BACKEND] = "emu";
        cr_assert_eq(hvt_write_header(w, &h), 0);
        for (uint64_t i = 0; i < 3; i++) {
                struct hvt_exit e = { .reason = HVT_EXIT_HLT, .seq = i, .time_ns = 1000 * i };

                e.st.rip = 0x1000 + i;
                e.insn_len = 1;
                e.insn[0] = 0xf4;
                cr_assert_eq(hvt_write_exit(w, &e), 0);
                if (!with_writes)
                        continue;
                if (i == 0)
                        cr_assert_eq(hvt_write_write(w, i, 0x1234, small, sizeof(small)), 0);
                if (i == 1)
                        cr_assert_eq(hvt_write_write(w, i, 0x2000, big, nbig), 0);
                if (i == 2)
                        cr_assert_eq(hvt_write_write(w, i, 0x3000, NULL, 0), 0);
        }
        /* A delivery whose frame's CS had no readable descriptor. */
        {
                struct hvt_disk_deliver d = { .seq = 2,
                                              .ip = 0x1001,
                                              .cs = 0x28,
                                              .vector = 0x30,
                                              .frame_bits = 32,
                                              .dflags = HVT_DELIVER_CS_BASE_UNKNOWN };

                cr_assert_eq(hvt_write_deliver(w, &d), 0);
        }
        th_write_end(w, 3, "done");
        th_close_writer(w);
}

Test(trace, replay_dump_stats_diff_show_write_records)
{
        const char *path = hv_tmp("replay-writes.zst"), *bare = hv_tmp("replay-nowrites.zst");
        uint8_t big[100];
        char want[512], *line;
        size_t n = 0, nwrite_lines = 0;
        struct hv_proc p;

        for (size_t i = 0; i < sizeof(big); i++)
                big[i] = (uint8_t)(0xa0 + i);
        write_trace_with_writes(path, true, big, sizeof(big), true);
        write_trace_with_writes(bare, false, big, sizeof(big), false);

        /* Text: the flags in the header, one line per write, at most 16 bytes shown. */
        run_replay(&p, "dump", path, NULL, NULL);
        cr_assert_eq(p.status, 0, "dump: %d %s", p.status, p.err);
        cr_assert_not_null(strstr(p.out, "policy window, writes, step-inject, seed"), "%s", p.out);
        cr_assert_not_null(strstr(p.out, " write      0x00001234 +4  3c 00 00 00\n"), "%s", p.out);
        n = (size_t)snprintf(want, sizeof(want), " write      0x00002000 +%zu ", sizeof(big));
        for (size_t i = 0; i < 16; i++)
                n += (size_t)snprintf(want + n, sizeof(want) - n, " %02x", big[i]);
        snprintf(want + n, sizeof(want) - n, " ...\n");
        cr_assert_not_null(strstr(p.out, want), "want '%s' in\n%s", want, p.out);
        cr_assert_not_null(strstr(p.out, " write      0x00003000 +0\n"), "%s", p.out);
        cr_assert_not_null(strstr(p.out, "interrupted 0028:1001 (cs base unknown) fl="), "%s",
                           p.out);
        /* Each under its exit. */
        line = line_with(p.out, "0x00001234");
        cr_assert_not_null(strstr(p.out, "#0 "), "%s", p.out);
        cr_assert_lt(strstr(p.out, "#0 "), strstr(p.out, line));
        cr_assert_lt(strstr(p.out, line), strstr(p.out, "#1 "));
        free(line);
        hv_proc_free(&p);

        /* JSON lines: every line valid, the keys of docs/dump-jsonl.md. */
        run_replay(&p, "dump", "--format", "jsonl", path);
        cr_assert_eq(p.status, 0, "dump jsonl: %d %s", p.status, p.err);
        for (const char *l = p.out; *l;) {
                const char *end = hv_json_value(l);

                cr_assert_not_null(end, "not JSON: %.200s", l);
                cr_assert_eq(*end, '\n', "one object per line: %.200s", l);
                nwrite_lines += strncmp(strstr(l, "\"type\":") + 7, "\"write\"", 7) == 0;
                l = end + 1;
        }
        cr_assert_eq(nwrite_lines, 3);
        cr_assert_not_null(strstr(p.out, "\"writes\":true,\"step_inject\":true"), "%s", p.out);
        cr_assert_not_null(strstr(p.out, "\"rip\":\"0x1001\",\"pc\":null,"), "%s", p.out);
        cr_assert_not_null(strstr(p.out,
                                  "\"type\":\"write\",\"seq\":0,\"gpa\":\"0x1234\",\"len\":4,"
                                  "\"data\":\"3c000000\",\"truncated\":false}"),
                           "%s", p.out);
        n = (size_t)snprintf(
                want, sizeof(want),
                "\"type\":\"write\",\"seq\":1,\"gpa\":\"0x2000\",\"len\":%zu,\"data\":\"",
                sizeof(big));
        for (size_t i = 0; i < 64; i++)
                n += (size_t)snprintf(want + n, sizeof(want) - n, "%02x", big[i]);
        snprintf(want + n, sizeof(want) - n, "\",\"truncated\":true}");
        cr_assert_not_null(strstr(p.out, want), "want '%s' in\n%s", want, p.out);
        cr_assert_not_null(strstr(p.out,
                                  "\"type\":\"write\",\"seq\":2,\"gpa\":\"0x3000\",\"len\":0,"
                                  "\"data\":\"\",\"truncated\":false}"),
                           "%s", p.out);
        hv_proc_free(&p);

        /* Stats: records and bytes, in text and JSON. */
        run_replay(&p, "stats", path, NULL, NULL);
        cr_assert_eq(p.status, 0, "stats: %d %s", p.status, p.err);
        snprintf(want, sizeof(want), "Writes: 3 records, %zu bytes.\n", 4 + sizeof(big));
        cr_assert_not_null(strstr(p.out, want), "want '%s' in\n%s", want, p.out);
        hv_proc_free(&p);
        run_replay(&p, "stats", "--format", "json", path);
        cr_assert_eq(p.status, 0, "stats json: %d %s", p.status, p.err);
        cr_assert_not_null(hv_json_value(p.out), "%s", p.out);
        snprintf(want, sizeof(want), "\"write_records\":3,\"write_bytes\":%zu", 4 + sizeof(big));
        cr_assert_not_null(strstr(p.out, want), "want '%s' in\n%s", want, p.out);
        hv_proc_free(&p);
        /* Without the flag and without records, text stats say nothing of writes. */
        run_replay(&p, "stats", bare, NULL, NULL);
        cr_assert_eq(p.status, 0, "stats: %d %s", p.status, p.err);
        cr_assert_null(strstr(p.out, "Writes:"), "%s", p.out);
        hv_proc_free(&p);

        /* Diff reads past them: the same run with and without write records is the same. */
        run_replay(&p, "diff", path, bare, NULL);
        cr_assert_eq(p.status, 0, "diff: %d\n%s\n%s", p.status, p.out, p.err);
        hv_proc_free(&p);
}

/* ------------------------------------------------------------------------ */
/* 9. Hostile traces: the reader's rules (docs/trace-format.md section 11)  */
/* ------------------------------------------------------------------------ */

/* Most unknown records in a row a reader skips (docs/trace-format.md, section 4). */
#define UNKNOWN_RUN_MAX (1u << 20)

/*
 * Compress raw to path and read it: `nok` events must come back, then
 * HVT_ERR_CORRUPT with needle in the message, sticky.  With needle NULL
 * the trace must instead read to its end after nok events.
 */
static void expect_raw(const char *path, const struct th_rawbuf *raw, size_t nok,
                       const char *needle, const char *what)
{
        struct hvt_reader *r;
        struct hvt_event ev;
        size_t n = 0;
        int err;

        th_compress_to(path, raw->p, raw->len);
        r = th_must_open(path);
        while ((err = hvt_reader_next(r, &ev)) == HVT_OK)
                n++;
        if (!needle) {
                cr_assert_eq(err, HVT_END_OF_TRACE, "%s: %d %s", what, err, hvt_reader_message(r));
        } else {
                cr_assert_eq(err, HVT_ERR_CORRUPT, "%s: %d %s", what, err, hvt_reader_message(r));
                th_check_msg(r, needle);
                cr_assert_eq(hvt_reader_next(r, &ev), HVT_ERR_CORRUPT, "%s: not sticky", what);
        }
        cr_assert_eq(n, nok, "%s: %zu events before the verdict, want %zu", what, n, nok);
        hvt_reader_close(r);
}

Test(trace, end_record_must_be_last)
{
        const char *path = hv_tmp("after-end.zst");
        struct th_rawbuf raw = { 0 }, file = { 0 };
        size_t cut;

        /* The rule's control: END last reads to the end. */
        th_rb_preamble(&raw, 1, HVT_FORMAT_MINOR);
        th_rb_min_header(&raw);
        th_rb_exit(&raw, 0);
        th_rb_end(&raw);
        cut = raw.len;
        expect_raw(path, &raw, 3, NULL, "end last");

        /* An exit, an unknown record, a second END, a piece of a record after END. */
        th_rb_exit(&raw, 1);
        expect_raw(path, &raw, 3, "record 3: data after the end record", "exit after end");
        raw.len = cut;
        th_rb_rec(&raw, 0x4242, 0, "x", 1);
        expect_raw(path, &raw, 3, "data after the end record", "unknown record after end");
        raw.len = cut;
        th_rb_end(&raw);
        expect_raw(path, &raw, 3, "data after the end record", "second end");
        raw.len = cut;
        th_rb_put(&raw, "\x03\x00\x00", 3);
        expect_raw(path, &raw, 3, "data after the end record", "3 bytes after end");

        /* END in the middle, the run going on in the next frame. */
        th_append_frame(&file, raw.p, cut);
        raw.len = 0;
        th_rb_exit(&raw, 1);
        th_rb_end(&raw);
        th_append_frame(&file, raw.p, raw.len);
        th_write_file(path, file.p, file.len);
        {
                struct hvt_reader *r = th_must_open(path);
                struct hvt_event ev;

                th_expect_next(r, &ev, HVT_REC_HEADER);
                th_expect_next(r, &ev, HVT_REC_EXIT);
                th_expect_next(r, &ev, HVT_REC_END);
                cr_assert_eq(hvt_reader_next(r, &ev), HVT_ERR_CORRUPT, "%s", hvt_reader_message(r));
                th_check_msg(r, "data after the end record");
                hvt_reader_close(r);
        }

        /* The writer does not stop a caller from writing on after END; the reader does. */
        {
                struct hvt_writer *w = th_open_writer(path, 0, 0, 0);
                struct hvt_exit e = { .reason = HVT_EXIT_HLT };
                struct hvt_reader *r;
                struct hvt_event ev;

                th_write_min_header(w);
                cr_assert_eq(hvt_write_exit(w, &e), 0);
                th_write_end(w, 1, "done");
                e.seq = 1;
                cr_assert_eq(hvt_write_exit(w, &e), 0);
                th_close_writer(w);
                r = th_must_open(path);
                th_expect_next(r, &ev, HVT_REC_HEADER);
                th_expect_next(r, &ev, HVT_REC_EXIT);
                th_expect_next(r, &ev, HVT_REC_END);
                cr_assert_eq(hvt_reader_next(r, &ev), HVT_ERR_CORRUPT);
                cr_assert(hvt_reader_complete(r), "the END record was read");
                hvt_reader_close(r);
        }
        free(raw.p);
        free(file.p);
}

Test(trace, exit_seq_must_increase)
{
        const char *path = hv_tmp("seq.zst");
        struct th_rawbuf raw = { 0 };
        struct hvt_reader *r;
        struct hvt_event ev;
        size_t cut;

        /* Control: steps, jumps, and the largest seq as the last exit. */
        th_rb_preamble(&raw, 1, HVT_FORMAT_MINOR);
        th_rb_min_header(&raw);
        th_rb_exit(&raw, 5);
        cut = raw.len;
        th_rb_exit_next(&raw);
        th_rb_exit(&raw, 1000);
        th_rb_exit(&raw, UINT64_MAX);
        th_rb_end(&raw);
        th_compress_to(path, raw.p, raw.len);
        r = th_must_open(path);
        th_expect_next(r, &ev, HVT_REC_HEADER);
        th_expect_next(r, &ev, HVT_REC_EXIT);
        cr_assert_eq(ev.exit.seq, 5);
        th_expect_next(r, &ev, HVT_REC_EXIT);
        cr_assert_eq(ev.exit.seq, 6);
        th_expect_next(r, &ev, HVT_REC_EXIT);
        cr_assert_eq(ev.exit.seq, 1000);
        th_expect_next(r, &ev, HVT_REC_EXIT);
        cr_assert_eq(ev.exit.seq, UINT64_MAX);
        th_expect_next(r, &ev, HVT_REC_END);
        cr_assert_eq(hvt_reader_next(r, &ev), HVT_END_OF_TRACE);
        hvt_reader_close(r);

        /* The same seq twice, a smaller one, and the step after the largest (a wrap to 0). */
        raw.len = cut;
        th_rb_exit(&raw, 5);
        th_rb_end(&raw);
        expect_raw(path, &raw, 2, "record 2: exit 5 after exit 5", "repeated seq");
        raw.len = cut;
        th_rb_exit_next(&raw);
        th_rb_exit(&raw, 4);
        th_rb_end(&raw);
        expect_raw(path, &raw, 3, "record 3: exit 4 after exit 6", "seq backwards");
        raw.len = cut;
        th_rb_exit(&raw, UINT64_MAX);
        th_rb_exit_next(&raw);
        th_rb_end(&raw);
        expect_raw(path, &raw, 3, "record 3: exit after exit 18446744073709551615", "seq wraps");
        raw.len = cut;
        th_rb_exit(&raw, 0);
        th_rb_end(&raw);
        expect_raw(path, &raw, 2, "exit 0 after exit 5", "back to 0");
        free(raw.p);
}

/* Every record that names an exit, with its seq at offset 0 of its payload. */
static const struct {
        uint16_t type;
        size_t len;
        const char *name;
} seq_records[] = {
        { HVT_REC_INJECT, sizeof(struct hvt_disk_inject), "inject" },
        { HVT_REC_RAISE, sizeof(struct hvt_disk_raise), "raise" },
        { HVT_REC_DELIVER, sizeof(struct hvt_disk_deliver), "deliver" },
        { HVT_REC_CONSOLE, sizeof(struct hvt_disk_console) + 2, "console" },
        { HVT_REC_WRITE, sizeof(struct hvt_disk_write) + 2, "write" },
};

static void rb_seq_record(struct th_rawbuf *b, size_t i, uint64_t seq)
{
        uint8_t p[64] = { 0 };

        cr_assert_leq(seq_records[i].len, sizeof(p));
        memcpy(p, &seq, 8);
        th_rb_rec(b, seq_records[i].type, 0, p, seq_records[i].len);
}

Test(trace, records_name_exits_already_read)
{
        const char *path = hv_tmp("names.zst");
        struct th_rawbuf raw = { 0 };

        for (size_t i = 0; i < sizeof(seq_records) / sizeof(seq_records[0]); i++) {
                const char *name = seq_records[i].name;
                char want[96];
                size_t cut;

                /* What hvrec writes: after exit 7, records naming 7; earlier ones are fine. */
                raw.len = 0;
                th_rb_preamble(&raw, 1, HVT_FORMAT_MINOR);
                th_rb_min_header(&raw);
                cut = raw.len;
                th_rb_exit(&raw, 3);
                th_rb_exit(&raw, 7);
                rb_seq_record(&raw, i, 7);
                rb_seq_record(&raw, i, 3);
                rb_seq_record(&raw, i, 0);
                th_rb_end(&raw);
                expect_raw(path, &raw, 7, NULL, name);

                /* Before any exit. */
                raw.len = cut;
                rb_seq_record(&raw, i, 0);
                th_rb_exit(&raw, 0);
                th_rb_end(&raw);
                snprintf(want, sizeof(want), "record 1: %s names exit 0 before any exit", name);
                expect_raw(path, &raw, 1, want, name);

                /* An exit not read yet. */
                raw.len = cut;
                th_rb_exit(&raw, 7);
                rb_seq_record(&raw, i, 8);
                th_rb_exit(&raw, 8);
                th_rb_end(&raw);
                snprintf(want, sizeof(want), "record 2: %s names exit 8 after exit 7", name);
                expect_raw(path, &raw, 2, want, name);
                raw.len = cut;
                th_rb_exit(&raw, 7);
                rb_seq_record(&raw, i, UINT64_MAX);
                th_rb_end(&raw);
                expect_raw(path, &raw, 2, "after exit 7", name);
        }
        free(raw.p);
}

/* A trace of one exit with this reason-specific tail, then END. */
static void raw_one_exit(struct th_rawbuf *raw, uint16_t reason, const void *tail, size_t len)
{
        struct hvt_disk_exit x = { .reason = reason };
        uint8_t p[sizeof(x) + 1100];

        cr_assert_leq(len, sizeof(p) - sizeof(x));
        memcpy(p, &x, sizeof(x));
        memcpy(p + sizeof(x), tail, len);
        raw->len = 0;
        th_rb_preamble(raw, 1, HVT_FORMAT_MINOR);
        th_rb_min_header(raw);
        th_rb_rec(raw, HVT_REC_EXIT, 0, p, sizeof(x) + len);
        th_rb_end(raw);
}

Test(trace, io_exit_size_and_count)
{
        const char *path = hv_tmp("io.zst");
        static const struct {
                uint8_t size;
                uint32_t count;
                const char *needle; /* NULL: valid */
        } t[] = {
                { 1, 1, NULL },          { 2, 1, NULL },
                { 4, 1, NULL },          { 4, 255, NULL },
                { 0, 1, "I/O size 0" },  { 3, 1, "I/O size 3" },
                { 8, 1, "I/O size 8" },  { 255, 1, "I/O size 255" },
                { 1, 0, "I/O count 0" }, { 4, 0, "I/O count 0" },
                { 0, 0, "I/O size 0" },
        };
        struct th_rawbuf raw = { 0 };
        uint8_t tail[sizeof(struct hvt_disk_io) + 1024] = { 0 };

        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                struct hvt_disk_io io = { .port = 0x80, .size = t[i].size, .count = t[i].count };
                size_t data = (size_t)t[i].size * t[i].count;
                char what[64];

                memcpy(tail, &io, sizeof(io));
                memset(tail + sizeof(io), 0xa5, data);
                raw_one_exit(&raw, HVT_EXIT_IO, tail, sizeof(io) + data);
                snprintf(what, sizeof(what), "size %u count %u", t[i].size, t[i].count);
                expect_raw(path, &raw, t[i].needle ? 1 : 3, t[i].needle, what);
        }
        free(raw.p);
}

Test(trace, mmio_exit_length)
{
        const char *path = hv_tmp("mmio.zst");
        static const struct {
                uint32_t len;
                const char *needle; /* NULL: valid */
        } t[] = {
                { 1, NULL },
                { 8, NULL },
                { 0, "MMIO length 0" },
                { 9, "MMIO length 9" },
                { 0xffffffffu, "MMIO length 4294967295" },
        };
        struct th_rawbuf raw = { 0 };

        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                struct hvt_disk_mmio m = { .addr = 0xfee00000, .len = t[i].len };
                char what[32];

                raw_one_exit(&raw, HVT_EXIT_MMIO, &m, sizeof(m));
                snprintf(what, sizeof(what), "len %u", t[i].len);
                expect_raw(path, &raw, t[i].needle ? 1 : 3, t[i].needle, what);
        }
        free(raw.p);
}

Test(trace, type_0_records_are_corrupt)
{
        const char *path = hv_tmp("type0.zst");
        const size_t zeros = 64u << 20; /* 8 Mi empty type-0 records in a few KiB of zstd */
        struct th_rawbuf raw = { 0 };
        size_t cut;

        th_rb_preamble(&raw, 1, HVT_FORMAT_MINOR);
        th_rb_min_header(&raw);
        th_rb_exit(&raw, 0);
        cut = raw.len;
        th_rb_rec(&raw, 0, 0, NULL, 0);
        th_rb_end(&raw);
        expect_raw(path, &raw, 2, "record 2: type 0", "one empty type-0 record");
        raw.len = cut;
        th_rb_rec(&raw, 0, 0, "pad", 3);
        th_rb_end(&raw);
        expect_raw(path, &raw, 2, "record 2: type 0", "a type-0 record with a payload");

        /* Padding: refused at its first record, not after decompressing all of it. */
        raw.len = cut;
        th_rb_put(&raw, NULL, 0);
        if (raw.cap < cut + zeros) {
                raw.cap = cut + zeros;
                raw.p = realloc(raw.p, raw.cap);
                cr_assert_not_null(raw.p);
        }
        memset(raw.p + cut, 0, zeros);
        raw.len = cut + zeros;
        th_rb_end(&raw);
        expect_raw(path, &raw, 2, "record 2: type 0", "64 MiB of type-0 padding");
        cr_assert_lt(th_file_size(path), 64 * 1024, "the padding compresses to %" PRIu64 " bytes",
                     th_file_size(path));
        free(raw.p);
}

static void rb_unknown_run(struct th_rawbuf *b, size_t n)
{
        for (size_t i = 0; i < n; i++)
                th_rb_rec(b, (uint16_t)(HVT_REC_TYPE_COUNT + i % 7), 0, NULL, 0);
}

Test(trace, runs_of_unknown_records_are_capped)
{
        const char *path = hv_tmp("unknown-run.zst");
        struct th_rawbuf raw = { 0 };
        struct hvt_reader *r;
        struct hvt_event ev;
        char want[96];
        size_t cut;

        /* The longest run allowed, twice, with a known record between: all skipped. */
        th_rb_preamble(&raw, 1, HVT_FORMAT_MINOR);
        th_rb_min_header(&raw);
        th_rb_exit(&raw, 0);
        cut = raw.len;
        rb_unknown_run(&raw, UNKNOWN_RUN_MAX);
        rb_seq_record(&raw, 3, 0); /* console */
        rb_unknown_run(&raw, UNKNOWN_RUN_MAX);
        th_rb_end(&raw);
        th_compress_to(path, raw.p, raw.len);
        r = th_must_open(path);
        th_expect_next(r, &ev, HVT_REC_HEADER);
        th_expect_next(r, &ev, HVT_REC_EXIT);
        th_expect_next(r, &ev, HVT_REC_CONSOLE);
        cr_assert_eq(ev.index, 2 + UNKNOWN_RUN_MAX, "skipped records are counted");
        th_expect_next(r, &ev, HVT_REC_END);
        cr_assert_eq(ev.index, 3 + 2 * (uint64_t)UNKNOWN_RUN_MAX);
        cr_assert_eq(hvt_reader_next(r, &ev), HVT_END_OF_TRACE, "%s", hvt_reader_message(r));
        hvt_reader_close(r);

        /* One more in a row is corrupt, at the record past the cap. */
        raw.len = cut;
        rb_unknown_run(&raw, UNKNOWN_RUN_MAX + 1);
        th_rb_end(&raw);
        snprintf(want, sizeof(want), "record %u: more than %u records of unknown types in a row",
                 2 + UNKNOWN_RUN_MAX, UNKNOWN_RUN_MAX);
        expect_raw(path, &raw, 2, want, "one past the cap");
        free(raw.p);
}

/* Each rule broken once: every hvreplay command fails with status 2 and one line. */
Test(trace, hvreplay_rejects_every_broken_rule_with_status_2)
{
        struct hvt_disk_io io0 = { .port = 0x80, .size = 0, .count = 1 };
        struct hvt_disk_mmio m9 = { .addr = 0xfee00000, .len = 9 };
        static const char *const cmds[] = { "dump", "stats", "check", "diff" };
        struct th_rawbuf raw = { 0 };
        struct {
                const char *name, *needle;
        } cases[] = {
                { "r-after-end.zst", "data after the end record" },
                { "r-seq-back.zst", "exit 2 after exit 9" },
                { "r-raise-ahead.zst", "raise names exit 10 after exit 9" },
                { "r-io-size.zst", "I/O size 0" },
                { "r-mmio-len.zst", "MMIO length 9" },
                { "r-type0.zst", "type 0" },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                const char *path = hv_tmp(cases[i].name);

                raw.len = 0;
                switch (i) {
                case 3: raw_one_exit(&raw, HVT_EXIT_IO, &io0, sizeof(io0)); break;
                case 4: raw_one_exit(&raw, HVT_EXIT_MMIO, &m9, sizeof(m9)); break;
                default:
                        th_rb_preamble(&raw, 1, HVT_FORMAT_MINOR);
                        th_rb_min_header(&raw);
                        th_rb_exit(&raw, 9);
                        if (i == 0)
                                th_rb_end(&raw);
                        if (i == 0 || i == 1)
                                th_rb_exit(&raw, 2);
                        if (i == 2)
                                rb_seq_record(&raw, 1, 10);
                        if (i == 5)
                                th_rb_rec(&raw, 0, 0, NULL, 0);
                        th_rb_end(&raw);
                }
                th_compress_to(path, raw.p, raw.len);
                for (size_t c = 0; c < sizeof(cmds) / sizeof(cmds[0]); c++) {
                        const char *argv[] = { HVREPLAY, cmds[c], path, path, NULL };
                        struct hv_proc p;

                        if (c != 3)
                                argv[3] = NULL;
                        cr_assert_eq(hv_run(argv, &p), 0);
                        hv_assert_one_line_error(&p, "hvreplay", cases[i].needle);
                        hv_proc_free(&p);
                }
        }
        free(raw.p);
}

/* ------------------------------------------------------------------------ */
/* 8. NMI raises, injections and deliveries (format minor 2)                */
/* ------------------------------------------------------------------------ */

/* One maskable vector 2 and one NMI of each record: the reader and dump tell them apart. */
static void write_nmi_trace(const char *path)
{
        struct hvt_writer *w = th_open_writer(path, 0, 0, 0);

        th_write_min_header(w);
        for (uint64_t i = 0; i < 2; i++) {
                struct hvt_exit e = { .reason = HVT_EXIT_HLT, .seq = i, .time_ns = 1000 * i };
                bool nmi = i == 1;
                struct hvt_disk_raise r = { .seq = i,
                                            .vector = 2,
                                            .source = HVT_SRC_OPTION,
                                            .kind = nmi ? HVT_IRQ_NMI : HVT_IRQ_MASKABLE };
                struct hvt_disk_inject in = { .after_seq = i,
                                              .vector = 2,
                                              .method = nmi ? HVT_INJ_NMI : HVT_INJ_QUEUE,
                                              .source = HVT_SRC_OPTION };
                struct hvt_disk_deliver d = { .seq = i,
                                              .ip = 0x1000 + i,
                                              .vector = 2,
                                              .frame_bits = 16,
                                              .dflags = nmi ? HVT_DELIVER_NMI : 0 };

                e.st.rip = 0x1000 + i;
                cr_assert_eq(hvt_write_exit(w, &e), 0);
                cr_assert_eq(hvt_write_raise(w, &r), 0);
                cr_assert_eq(hvt_write_inject(w, &in), 0);
                cr_assert_eq(hvt_write_deliver(w, &d), 0);
        }
        th_write_end(w, 2, "done");
        th_close_writer(w);
}

Test(trace, nmi_records_round_trip_and_dump)
{
        const char *path = hv_tmp("nmi-records.zst");
        struct hvt_reader *r;
        struct hvt_event ev;
        struct hv_proc p;
        size_t nmi_lines = 0, lines = 0;

        write_nmi_trace(path);
        r = th_must_open(path);
        th_expect_next(r, &ev, HVT_REC_HEADER);
        for (int i = 0; i < 2; i++) {
                bool nmi = i == 1;

                th_expect_next(r, &ev, HVT_REC_EXIT);
                th_expect_next(r, &ev, HVT_REC_RAISE);
                cr_assert_eq(ev.raise.kind, nmi ? HVT_IRQ_NMI : HVT_IRQ_MASKABLE);
                cr_assert_eq(ev.raise.vector, 2);
                th_expect_next(r, &ev, HVT_REC_INJECT);
                cr_assert_eq(ev.inject.method, nmi ? HVT_INJ_NMI : HVT_INJ_QUEUE);
                th_expect_next(r, &ev, HVT_REC_DELIVER);
                cr_assert_eq(ev.deliver.dflags, nmi ? HVT_DELIVER_NMI : 0);
        }
        th_expect_next(r, &ev, HVT_REC_END);
        hvt_reader_close(r);

        run_replay(&p, "dump", path, NULL, NULL);
        cr_assert_eq(p.status, 0, "dump: %d %s", p.status, p.err);
        cr_assert_not_null(strstr(p.out, "raise      NMI, vector 0x02 from irq-option at #1"), "%s",
                           p.out);
        cr_assert_not_null(strstr(p.out, "raise      vector 0x02 from irq-option at #0"), "%s",
                           p.out);
        cr_assert_not_null(strstr(p.out, "inject     NMI, vector 0x02"), "%s", p.out);
        cr_assert_not_null(strstr(p.out, "deliver    NMI, vector 0x02"), "%s", p.out);
        cr_assert_not_null(strstr(p.out, "deliver    vector 0x02"), "%s", p.out);
        hv_proc_free(&p);

        /* JSON lines: "nmi":true on the NMI's three records only. */
        run_replay(&p, "dump", "--format", "jsonl", path);
        cr_assert_eq(p.status, 0, "dump jsonl: %d %s", p.status, p.err);
        for (const char *l = p.out; *l;) {
                const char *end = hv_json_value(l);
                bool has = false;

                cr_assert_not_null(end, "not JSON: %.200s", l);
                for (const char *q = l; q + 10 <= end; q++)
                        has |= !strncmp(q, "\"nmi\":true", 10);
                if (has) {
                        nmi_lines++;
                        cr_assert(strstr(l, "\"seq\":1,") && strstr(l, "\"seq\":1,") < end,
                                  "nmi on a record of exit 0: %.200s", l);
                }
                lines++;
                l = end + 1;
        }
        cr_assert_eq(nmi_lines, 3, "%s", p.out);
        cr_assert_gt(lines, 6);
        hv_proc_free(&p);
}

/* ------------------------------------------------------------------------ */
/* Multi-vCPU traces (format major version 2)                               */
/* ------------------------------------------------------------------------ */

static struct hvt_writer *open_vcpu_writer(const char *path, unsigned vcpus)
{
        struct hvt_writer_opts o = { .size = sizeof(o), .vcpus = vcpus };
        struct hvt_writer *w = NULL;
        int err = hvt_writer_open(&w, path, &o);

        cr_assert_eq(err, 0, "hvt_writer_open with %u vCPUs: %s", vcpus, strerror(-err));
        return w;
}

/* The decompressed stream of a trace file (malloc'd). */
static uint8_t *raw_stream(const char *path, size_t *len)
{
        size_t flen;
        uint8_t *file = th_read_file(path, &flen), *raw;

        cr_assert_eq(th_decompress_all(file, flen, &raw, len), 0, "%s decompresses", path);
        free(file);
        return raw;
}

/* Walk the records of a raw stream: the n-th record's header and payload offset. */
static size_t raw_records(const uint8_t *raw, size_t len, struct hvt_disk_rec *recs, size_t *offs,
                          size_t cap)
{
        size_t off = sizeof(struct hvt_disk_preamble), n = 0;

        while (off + sizeof(struct hvt_disk_rec) <= len && n < cap) {
                memcpy(&recs[n], raw + off, sizeof(recs[n]));
                offs[n] = off + sizeof(struct hvt_disk_rec);
                off += sizeof(struct hvt_disk_rec) + recs[n].size;
                n++;
        }
        cr_assert_eq(off, len, "the stream ends on a record boundary");
        return n;
}

Test(trace, two_vcpus_interleaved_round_trip)
{
        enum { NEXITS = 3000 };
        const char *path = hv_tmp("mv.zst");
        struct hvt_writer *w = open_vcpu_writer(path, 2);
        static struct hvt_exit want[NEXITS];
        struct hvt_vcpu_state cur[2] = { 0 };
        uint32_t want_changed[NEXITS], owner[NEXITS];
        uint64_t seed = 0x6d76637075, time[2] = { 0 };
        static const uint8_t code[64] = { 0xfb, 0xf4 };
        struct hvt_reader *r;
        struct hvt_event ev;
        uint32_t sel = 0;
        char ctx[64];

        th_write_min_header(w);
        cr_assert_eq(hvt_write_memory(w, 0x7c00, code, sizeof(code)), 0);
        for (size_t i = 0; i < NEXITS; i++) {
                uint32_t v = (uint32_t)(th_rnd(&seed) % 2);
                struct hvt_vcpu_state before;

                if (v != sel)
                        cr_assert_eq(hvt_writer_vcpu(w, v), 0);
                sel = v;
                before = cur[v];
                /* Each vCPU's state moves on its own: a delta against the other's would be wrong.
                 */
                for (unsigned k = th_rnd(&seed) % 3; k; k--)
                        th_mutate_field(&seed, &cur[v], (unsigned)(th_rnd(&seed) % HVT_F_COUNT));
                time[v] += th_rnd(&seed) % 5000;
                memset(&want[i], 0, sizeof(want[i]));
                want[i].seq = i; /* one machine-wide counter */
                want[i].time_ns = time[v];
                want[i].guest_ns = th_rnd(&seed) % 1000;
                want[i].reason = HVT_EXIT_HLT;
                want[i].st = cur[v];
                want_changed[i] = th_diff_mask(&before, &cur[v]);
                owner[i] = v;
                cr_assert_eq(hvt_write_exit(w, &want[i]), 0);
                if (i % 7 == 0) {
                        struct hvt_disk_inject in = { .after_seq = i,
                                                      .vector = (uint8_t)(0x20 + v) };
                        struct hvt_disk_deliver d = { .seq = i, .vector = (uint8_t)(0x20 + v) };

                        cr_assert_eq(hvt_write_inject(w, &in), 0);
                        cr_assert_eq(hvt_write_deliver(w, &d), 0);
                        cr_assert_eq(hvt_write_write(w, i, 0x500, &i, sizeof(i)), 0);
                }
        }
        th_write_end(w, NEXITS, NULL);
        th_close_writer(w);

        r = th_must_open(path);
        cr_assert_eq(hvt_reader_vcpus(r), 2);
        cr_assert_eq(hvt_reader_header(r)->h.vcpus, 2);
        th_expect_next(r, &ev, HVT_REC_HEADER);
        cr_assert_eq(hvt_reader_vcpu(r), 0);
        th_expect_next(r, &ev, HVT_REC_MEMORY);
        for (size_t i = 0; i < NEXITS; i++) {
                snprintf(ctx, sizeof(ctx), "exit %zu on vCPU %u", i, owner[i]);
                th_expect_next(r, &ev, HVT_REC_EXIT);
                th_check_exit(&ev.exit, &want[i], want_changed[i], ctx);
                cr_assert_eq(hvt_reader_vcpu(r), owner[i], "%s: read as vCPU %u", ctx,
                             hvt_reader_vcpu(r));
                if (i % 7 == 0) {
                        th_expect_next(r, &ev, HVT_REC_INJECT);
                        cr_assert_eq(ev.inject.vector, 0x20 + owner[i]);
                        cr_assert_eq(hvt_reader_vcpu(r), owner[i], "%s: inject", ctx);
                        th_expect_next(r, &ev, HVT_REC_DELIVER);
                        cr_assert_eq(hvt_reader_vcpu(r), owner[i], "%s: deliver", ctx);
                        th_expect_next(r, &ev, HVT_REC_WRITE);
                        cr_assert_eq(hvt_reader_vcpu(r), 0, "%s: a write is machine-wide", ctx);
                        cr_assert_eq(ev.write.seq, i);
                }
        }
        th_expect_next(r, &ev, HVT_REC_END);
        cr_assert_eq(hvt_reader_vcpu(r), 0, "the end is machine-wide");
        cr_assert_eq(hvt_reader_next(r, &ev), HVT_END_OF_TRACE, "%s", hvt_reader_message(r));
        hvt_reader_close(r);
}

/* Each vCPU is delta-encoded against its own previous exit; VCPU records only on a change. */
Test(trace, per_vcpu_delta_state_on_disk)
{
        const char *path = hv_tmp("mvdelta.zst");
        struct hvt_writer *w = open_vcpu_writer(path, 3);
        struct hvt_exit e[3] = { 0 };
        struct hvt_disk_rec recs[64];
        size_t offs[64], len, n, nvcpu = 0, nexit = 0;
        struct hvt_disk_preamble pre;
        struct hvt_disk_header hdr;
        uint8_t *raw;

        for (unsigned v = 0; v < 3; v++) {
                e[v].reason = HVT_EXIT_HLT;
                e[v].st.rip = 0x1000 * (v + 1);
                e[v].st.gpr[0] = 0xa0 + v;
                e[v].seq = 100 * v;
        }
        th_write_min_header(w);
        /* Rounds of v0, v1, v2: after the first, no state changes and seq is each one's +1. */
        for (unsigned round = 0; round < 3; round++) {
                for (unsigned v = 0; v < 3; v++) {
                        cr_assert_eq(hvt_writer_vcpu(w, v), 0);
                        cr_assert_eq(hvt_writer_vcpu(w, v), 0, "selecting it again writes nothing");
                        cr_assert_eq(hvt_write_exit(w, &e[v]), 0);
                        e[v].seq++;
                }
        }
        cr_assert_eq(hvt_writer_vcpu(w, 0), 0);
        th_write_end(w, 9, NULL);
        th_close_writer(w);

        raw = raw_stream(path, &len);
        memcpy(&pre, raw, sizeof(pre));
        cr_assert_eq(pre.version, 2, "a multi-vCPU trace is major version 2");
        n = raw_records(raw, len, recs, offs, 64);
        cr_assert_eq(recs[0].type, HVT_REC_HEADER);
        memcpy(&hdr, raw + offs[0], sizeof(hdr));
        cr_assert_eq(hdr.vcpus, 3);
        for (size_t i = 1; i < n; i++) {
                struct hvt_disk_exit x;

                if (recs[i].type == HVT_REC_VCPU) {
                        struct hvt_disk_vcpu v;

                        cr_assert_eq(recs[i].size, sizeof(v));
                        memcpy(&v, raw + offs[i], sizeof(v));
                        /* Written: 1, 2, then (0, 1, 2) twice more, then 0 before the end. */
                        cr_assert_eq(v.vcpu, (nvcpu + 1) % 3, "VCPU record %zu selects %u", nvcpu,
                                     v.vcpu);
                        cr_assert_eq(v.reserved, 0);
                        nvcpu++;
                        continue;
                }
                if (recs[i].type != HVT_REC_EXIT)
                        continue;
                memcpy(&x, raw + offs[i], sizeof(x));
                if (nexit < 3) {
                        cr_assert(recs[i].flags & HVT_XF_SEQ, "a vCPU's first exit names its seq");
                        cr_assert_neq(x.state_mask, 0);
                } else {
                        cr_assert_eq(recs[i].flags & HVT_XF_SEQ, 0, "exit %zu: seq is +1", nexit);
                        cr_assert_eq(x.state_mask, 0, "exit %zu: nothing changed on its vCPU",
                                     nexit);
                }
                nexit++;
        }
        cr_assert_eq(nexit, 9);
        cr_assert_eq(nvcpu, 9, "one VCPU record per change of selection");
        free(raw);

        {
                struct hvt_reader *r = th_must_open(path);
                struct hvt_event ev;

                th_expect_next(r, &ev, HVT_REC_HEADER);
                for (unsigned i = 0; i < 9; i++) {
                        th_expect_next(r, &ev, HVT_REC_EXIT);
                        cr_assert_eq(hvt_reader_vcpu(r), i % 3);
                        cr_assert_eq(ev.exit.seq, 100 * (i % 3) + i / 3);
                        cr_assert_eq(ev.exit.st.rip, 0x1000 * (i % 3 + 1));
                        cr_assert_eq(ev.exit.st.gpr[0], 0xa0 + i % 3);
                }
                hvt_reader_close(r);
        }
}

/* The same records written with vcpus 0 and 1 (and no options) give byte-identical version 1 files.
 */
Test(trace, single_vcpu_output_is_version_1_unchanged)
{
        const char *paths[3] = { hv_tmp("v1a.zst"), hv_tmp("v1b.zst"), hv_tmp("v1c.zst") };
        struct th_rawbuf want = { 0 };
        uint8_t *files[3], *raw;
        size_t lens[3], len;

        for (int k = 0; k < 3; k++) {
                struct hvt_writer_opts o = { .size = sizeof(o), .vcpus = (unsigned)k };
                struct hvt_writer *w = NULL;
                struct hvt_header h = { 0 };

                cr_assert_eq(hvt_writer_open(&w, paths[k], k == 2 ? NULL : &o), 0);
                h.h.mem_size = 0x10000;
                h.h.entry = 0x7c00;
                h.h.guest_mode = HVT_MODE_REAL;
                h.h.vcpus = 7; /* not the caller's to set: the writer's count wins */
                cr_assert_eq(hvt_write_header(w, &h), 0);
                cr_assert_eq(hvt_writer_vcpu(w, 0), 0, "vCPU 0 is always valid");
                cr_assert_eq(hvt_writer_vcpu(w, 1), -EINVAL, "a single-vCPU trace has no vCPU 1");
                {
                        struct hvt_exit e = { .seq = 5, .reason = HVT_EXIT_HLT };

                        cr_assert_eq(hvt_write_exit(w, &e), 0);
                }
                th_close_writer(w);
                files[k] = th_read_file(paths[k], &lens[k]);
        }
        cr_assert_eq(lens[0], lens[1]);
        cr_assert_eq(lens[0], lens[2]);
        cr_assert_arr_eq(files[0], files[1], lens[0], "vcpus 0 and 1 write the same bytes");
        cr_assert_arr_eq(files[0], files[2], lens[0], "as the default options do");

        /* And those bytes are version 1 as documented, with no VCPU record. */
        {
                struct hvt_disk_header h = { .mem_size = 0x10000,
                                             .entry = 0x7c00,
                                             .guest_mode = 1 };
                struct hvt_disk_str argv = { .key = HVT_STR_CMDLINE, .len = 0 };
                uint8_t payload[sizeof(h) + sizeof(argv)];

                memcpy(payload, &h, sizeof(h));
                memcpy(payload + sizeof(h), &argv, sizeof(argv)); /* always written, even empty */
                th_rb_preamble(&want, 1, HVT_FORMAT_MINOR);
                th_rb_rec(&want, HVT_REC_HEADER, 0, payload, sizeof(payload));
        }
        th_rb_exit(&want, 5);
        raw = raw_stream(paths[0], &len);
        cr_assert_eq(len, want.len, "raw stream of %zu bytes, want %zu", len, want.len);
        cr_assert_arr_eq(raw, want.p, len);
        free(raw);
        free(want.p);
        for (int k = 0; k < 3; k++)
                free(files[k]);
}

/* Version 1 traces, recorded before version 2 existed, read as one vCPU. */
Test(trace, version_1_traces_read_as_one_vcpu)
{
        struct hvt_reader *r = th_must_open(HV_SOURCE_DIR "/traces/demo.zst");
        struct hvt_event ev;
        uint64_t exits = 0;
        int err;

        cr_assert_eq(hvt_reader_vcpus(r), 1);
        while ((err = hvt_reader_next(r, &ev)) == HVT_OK) {
                cr_assert_eq(hvt_reader_vcpu(r), 0, "record %" PRIu64, ev.index);
                exits += ev.type == HVT_REC_EXIT;
        }
        cr_assert_eq(err, HVT_END_OF_TRACE, "%s", hvt_reader_message(r));
        cr_assert_gt(exits, 0);
        hvt_reader_close(r);

        /* A type-10 record in a version 1 stream was an unknown type: still skipped. */
        {
                const char *path = hv_tmp("v1vcpu.zst");
                struct hvt_disk_vcpu v = { .vcpu = 1 };
                struct th_rawbuf raw = { 0 };

                th_rb_preamble(&raw, 1, HVT_FORMAT_MINOR);
                th_rb_min_header(&raw);
                th_rb_exit(&raw, 0);
                th_rb_rec(&raw, HVT_REC_VCPU, 0, &v, sizeof(v));
                th_rb_exit_next(&raw);
                th_rb_end(&raw);
                th_compress_to(path, raw.p, raw.len);
                r = th_must_open(path);
                th_expect_next(r, &ev, HVT_REC_HEADER);
                th_expect_next(r, &ev, HVT_REC_EXIT);
                th_expect_next(r, &ev, HVT_REC_EXIT);
                cr_assert_eq(ev.exit.seq, 1, "one stream: seq follows the first exit");
                cr_assert_eq(hvt_reader_vcpu(r), 0);
                th_expect_next(r, &ev, HVT_REC_END);
                hvt_reader_close(r);
                free(raw.p);
        }
}

Test(trace, vcpu_selection_errors)
{
        const char *path = hv_tmp("mveinval.zst");
        struct hvt_writer_opts o = { .size = sizeof(o), .vcpus = UINT16_MAX + 1u };
        struct hvt_writer *w = NULL;
        struct hvt_reader *r;
        struct hvt_event ev;
        struct hvt_exit e = { .reason = HVT_EXIT_HLT };

        cr_assert_eq(hvt_writer_open(&w, path, &o), -EINVAL, "the header holds 16 bits");
        o.vcpus = UINT16_MAX;
        cr_assert_eq(hvt_writer_open(&w, path, &o), 0, "the largest count");
        th_close_writer(w);

        w = open_vcpu_writer(path, 2);
        th_write_min_header(w);
        cr_assert_eq(hvt_writer_vcpu(w, 1), 0);
        cr_assert_eq(hvt_writer_vcpu(w, 2), -EINVAL);
        cr_assert_eq(hvt_writer_vcpu(w, UINT32_MAX), -EINVAL);
        cr_assert_eq(hvt_write_exit(w, &e), 0);
        th_write_end(w, 1, NULL);
        th_close_writer(w);
        r = th_must_open(path);
        th_expect_next(r, &ev, HVT_REC_HEADER);
        th_expect_next(r, &ev, HVT_REC_EXIT);
        cr_assert_eq(hvt_reader_vcpu(r), 1, "a refused selection leaves the last one");
        hvt_reader_close(r);
}

/* A version 2 stream: preamble and a header declaring vcpus. */
static void rb_v2_start(struct th_rawbuf *b, uint16_t vcpus)
{
        struct hvt_disk_header h = {
                .mem_size = 0x10000, .entry = 0x7c00, .guest_mode = 1, .vcpus = vcpus
        };

        th_rb_preamble(b, 2, HVT_FORMAT_MINOR);
        th_rb_rec(b, HVT_REC_HEADER, 0, &h, sizeof(h));
}

Test(trace, broken_vcpu_records)
{
        const char *path = hv_tmp("mvbad.zst");
        struct hvt_disk_vcpu one = { .vcpu = 1 }, two = { .vcpu = 2 };
        struct hvt_reader *r;
        struct hvt_event ev;

        /* A version 2 header must declare at least two vCPUs. */
        for (uint16_t n = 0; n < 2; n++) {
                struct th_rawbuf raw = { 0 };

                rb_v2_start(&raw, n);
                th_rb_end(&raw);
                th_compress_to(path, raw.p, raw.len);
                th_expect_open_fails(path, HVT_ERR_CORRUPT, "vCPUs");
                free(raw.p);
        }
        /* A VCPU record cut short by the end of the stream is a truncation. */
        {
                struct th_rawbuf raw = { 0 };

                rb_v2_start(&raw, 2);
                th_rb_exit(&raw, 0);
                th_rb_rec(&raw, HVT_REC_VCPU, 0, &one, sizeof(one));
                raw.len -= 3;
                th_compress_to(path, raw.p, raw.len);
                r = th_must_open(path);
                th_expect_next(r, &ev, HVT_REC_HEADER);
                th_expect_next(r, &ev, HVT_REC_EXIT);
                cr_assert_eq(hvt_reader_next(r, &ev), HVT_ERR_TRUNCATED);
                th_check_msg(r, "incomplete record");
                cr_assert_eq(th_msg_truncated_count(r), 2);
                hvt_reader_close(r);
                free(raw.p);
        }
        /* A VCPU record with a short payload, or naming a vCPU past the count, is corrupt. */
        {
                struct {
                        const void *payload;
                        size_t len;
                        const char *needle;
                } bad[] = {
                        { &one, 4, "vcpu record too short" },
                        { &two, sizeof(two), "vCPU 2 of a 2-vCPU trace" },
                };

                for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                        struct th_rawbuf raw = { 0 };

                        rb_v2_start(&raw, 2);
                        th_rb_exit(&raw, 0);
                        th_rb_rec(&raw, HVT_REC_VCPU, 0, bad[i].payload, bad[i].len);
                        th_rb_exit(&raw, 1);
                        th_rb_end(&raw);
                        th_compress_to(path, raw.p, raw.len);
                        r = th_must_open(path);
                        th_expect_next(r, &ev, HVT_REC_HEADER);
                        th_expect_next(r, &ev, HVT_REC_EXIT);
                        cr_assert_eq(hvt_reader_next(r, &ev), HVT_ERR_CORRUPT, "%s", bad[i].needle);
                        th_check_msg(r, bad[i].needle);
                        hvt_reader_close(r);
                        free(raw.p);
                }
        }
        /* A record of vCPU 1 may name only vCPU 1's exits; a write names any vCPU's. */
        {
                struct hvt_disk_deliver d = { .seq = 0 };
                struct hvt_disk_write wr = { .seq = 0, .gpa = 0x500 };
                struct th_rawbuf raw = { 0 };

                rb_v2_start(&raw, 2);
                th_rb_exit(&raw, 0);
                th_rb_rec(&raw, HVT_REC_VCPU, 0, &one, sizeof(one));
                th_rb_rec(&raw, HVT_REC_WRITE, 0, &wr, sizeof(wr));
                th_rb_rec(&raw, HVT_REC_DELIVER, 0, &d, sizeof(d));
                th_rb_end(&raw);
                th_compress_to(path, raw.p, raw.len);
                r = th_must_open(path);
                th_expect_next(r, &ev, HVT_REC_HEADER);
                th_expect_next(r, &ev, HVT_REC_EXIT);
                th_expect_next(r, &ev, HVT_REC_WRITE);
                cr_assert_eq(hvt_reader_next(r, &ev), HVT_ERR_CORRUPT);
                th_check_msg(r, "deliver names exit 0 before any exit");
                hvt_reader_close(r);
                free(raw.p);
        }
        /* Each vCPU's seqs increase on their own: vCPU 1 may start below vCPU 0. */
        {
                struct th_rawbuf raw = { 0 };
                struct hvt_disk_vcpu zero = { .vcpu = 0 };

                rb_v2_start(&raw, 2);
                th_rb_exit(&raw, 10);
                th_rb_rec(&raw, HVT_REC_VCPU, 0, &one, sizeof(one));
                th_rb_exit(&raw, 3);
                th_rb_rec(&raw, HVT_REC_VCPU, 0, &zero, sizeof(zero));
                th_rb_exit(&raw, 9);
                th_rb_end(&raw);
                th_compress_to(path, raw.p, raw.len);
                r = th_must_open(path);
                th_expect_next(r, &ev, HVT_REC_HEADER);
                th_expect_next(r, &ev, HVT_REC_EXIT);
                th_expect_next(r, &ev, HVT_REC_EXIT);
                cr_assert_eq(ev.exit.seq, 3);
                cr_assert_eq(hvt_reader_next(r, &ev), HVT_ERR_CORRUPT);
                th_check_msg(r, "exit 9 after exit 10");
                hvt_reader_close(r);
                free(raw.p);
        }
}

/* A filter copies a multi-vCPU trace with hvt_write_event and the vCPU of each event. */
Test(trace, write_event_copies_a_multi_vcpu_trace)
{
        const char *src = hv_tmp("mvsrc.zst"), *dst = hv_tmp("mvdst.zst");
        struct hvt_writer *w = open_vcpu_writer(src, 2);
        struct hvt_reader *r, *r2;
        struct hvt_event ev, ev2;
        int err;

        th_write_min_header(w);
        for (uint64_t i = 0; i < 40; i++) {
                struct hvt_exit e = { .seq = i, .reason = HVT_EXIT_HLT };

                e.st.rip = i % 3 ? 0x7c00 + i : 0x9000;
                cr_assert_eq(hvt_writer_vcpu(w, (uint32_t)(i % 3 == 0)), 0);
                cr_assert_eq(hvt_write_exit(w, &e), 0);
        }
        th_write_end(w, 40, "done");
        th_close_writer(w);

        r = th_must_open(src);
        w = open_vcpu_writer(dst, hvt_reader_vcpus(r));
        while ((err = hvt_reader_next(r, &ev)) == HVT_OK) {
                cr_assert_eq(hvt_writer_vcpu(w, hvt_reader_vcpu(r)), 0);
                cr_assert_eq(hvt_write_event(w, &ev), 0);
        }
        cr_assert_eq(err, HVT_END_OF_TRACE);
        th_close_writer(w);
        hvt_reader_close(r);

        r = th_must_open(src);
        r2 = th_must_open(dst);
        cr_assert_eq(hvt_reader_vcpus(r2), 2);
        while ((err = hvt_reader_next(r, &ev)) == HVT_OK) {
                th_expect_next(r2, &ev2, ev.type);
                cr_assert_eq(hvt_reader_vcpu(r2), hvt_reader_vcpu(r));
                if (ev.type == HVT_REC_EXIT) {
                        cr_assert_eq(ev2.exit.seq, ev.exit.seq);
                        cr_assert_eq(ev2.exit.st.rip, ev.exit.st.rip);
                }
        }
        cr_assert_eq(err, HVT_END_OF_TRACE);
        hvt_reader_close(r);
        hvt_reader_close(r2);
}

/*
 * Two vCPUs: vCPU 0 and vCPU 1 take turns; b differs from a only in vCPU
 * 1's last exit (its RIP).
 */
static void write_two_vcpu_trace(const char *path, uint64_t last_rip)
{
        static const uint8_t code[32] = { 0xe6, 0x80, 0xf4, 0x90 };
        struct hvt_writer *w = open_vcpu_writer(path, 2);
        struct hvt_exit e = { .reason = HVT_EXIT_IO };
        struct hvt_disk_inject in = { .after_seq = 1, .vector = 0x30 };
        struct hvt_disk_deliver d = { .seq = 1, .vector = 0x30, .frame_bits = 16 };
        struct hvt_disk_raise ra = { .seq = 2, .vector = 0x31 };
        static const uint8_t al = 0x41;

        th_write_min_header(w);
        cr_assert_eq(hvt_write_memory(w, 0x7c00, code, sizeof(code)), 0);
        e.u.io.io = (struct hvt_disk_io){ .port = 0x80, .size = 1, .dir = HVT_IO_OUT, .count = 1 };
        e.u.io.data = &al;
        e.st.rip = 0x7c02;
        e.seq = 0;
        cr_assert_eq(hvt_write_exit(w, &e), 0);
        cr_assert_eq(hvt_writer_vcpu(w, 1), 0);
        e.reason = HVT_EXIT_HLT;
        e.st.rip = 0x7c03;
        e.seq = 1;
        cr_assert_eq(hvt_write_exit(w, &e), 0);
        cr_assert_eq(hvt_write_inject(w, &in), 0);
        cr_assert_eq(hvt_write_deliver(w, &d), 0);
        cr_assert_eq(hvt_writer_vcpu(w, 0), 0);
        e.st.rip = 0x7c03;
        e.seq = 2;
        cr_assert_eq(hvt_write_exit(w, &e), 0);
        cr_assert_eq(hvt_write_raise(w, &ra), 0);
        cr_assert_eq(hvt_writer_vcpu(w, 1), 0);
        e.st.rip = last_rip;
        e.seq = 3;
        cr_assert_eq(hvt_write_exit(w, &e), 0);
        th_write_end(w, 4, NULL);
        th_close_writer(w);
}

/* The text of out from the line starting with `from` up to the next line starting with `to`. */
static char *section(const char *out, const char *from, const char *to)
{
        const char *a = strstr(out, from), *b;

        cr_assert_not_null(a, "no '%s' in\n%s", from, out);
        b = to ? strstr(a, to) : NULL;
        return strndup(a, b ? (size_t)(b - a) : strlen(a));
}

Test(trace, replay_commands_keep_two_vcpus_apart)
{
        const char *a = hv_tmp("mv-a.zst"), *b = hv_tmp("mv-b.zst");
        struct hv_proc p;
        char *s0, *s1;
        size_t lines = 0;
        int status;

        write_two_vcpu_trace(a, 0x7c03);
        write_two_vcpu_trace(b, 0x7c04);

        /* dump, text: a vCPU column, - for machine-wide records. */
        run_replay(&p, "dump", a, NULL, NULL);
        cr_assert_eq(p.status, 0, "dump: %d %s", p.status, p.err);
        cr_assert_not_null(strstr(p.out, "# 2 vCPUs"), "%s", p.out);
        cr_assert_not_null(strstr(p.out, "\nv0   #0 "), "%s", p.out);
        cr_assert_not_null(strstr(p.out, "\nv1   #1 "), "%s", p.out);
        cr_assert_not_null(strstr(p.out, "\nv0   #2 "), "%s", p.out);
        cr_assert_not_null(strstr(p.out, "\nv1   #3 "), "%s", p.out);
        cr_assert_not_null(line_with(p.out, "inject"), "%s", p.out);
        cr_assert_eq(strncmp(line_with(p.out, "inject"), "v1 ", 3), 0, "%s", p.out);
        cr_assert_eq(strncmp(line_with(p.out, "raise"), "v0 ", 3), 0, "%s", p.out);
        cr_assert_eq(strncmp(line_with(p.out, "memory     gpa"), "-  ", 3), 0, "%s", p.out);
        cr_assert_not_null(strstr(p.out, "\n-    end "), "%s", p.out);
        hv_proc_free(&p);

        /* dump, JSON lines: a vcpu key on the vCPUs' events only. */
        run_replay(&p, "dump", "--format", "jsonl", a);
        cr_assert_eq(p.status, 0, "dump jsonl: %d %s", p.status, p.err);
        for (const char *l = p.out; *l; lines++) {
                const char *end = hv_json_value(l);

                cr_assert_not_null(end, "not JSON: %.200s", l);
                l = end + 1;
        }
        cr_assert_eq(lines, 10, "header, memory, 4 exits, inject, deliver, raise, end: %s", p.out);
        cr_assert_not_null(strstr(p.out, "\"type\":\"header\",\"format_version\":2,\"vcpus\":2"),
                           "%s", p.out);
        cr_assert_not_null(strstr(p.out, "\"type\":\"exit\",\"vcpu\":1,\"seq\":3,"), "%s", p.out);
        cr_assert_not_null(strstr(p.out, "\"type\":\"inject\",\"vcpu\":1,"), "%s", p.out);
        cr_assert_not_null(strstr(p.out, "\"type\":\"raise\",\"vcpu\":0,"), "%s", p.out);
        cr_assert_not_null(strstr(p.out, "\"type\":\"memory\",\"gpa\""), "%s", p.out);
        hv_proc_free(&p);

        /* stats: each vCPU's counts. */
        run_replay(&p, "stats", a, NULL, NULL);
        cr_assert_eq(p.status, 0, "stats: %d %s", p.status, p.err);
        cr_assert_not_null(strstr(p.out, "\n     0          2          0          0          1\n"),
                           "%s", p.out);
        cr_assert_not_null(strstr(p.out, "\n     1          2          1          1          0\n"),
                           "%s", p.out);
        hv_proc_free(&p);
        run_replay(&p, "stats", "--format", "json", a);
        cr_assert_eq(p.status, 0);
        cr_assert_not_null(hv_json_value(p.out), "%s", p.out);
        cr_assert_not_null(strstr(p.out, "\"vcpus\":[{\"vcpu\":0,\"exits\":2,\"injections\":0,"
                                         "\"deliveries\":0,\"raises\":1},{\"vcpu\":1,\"exits\":2,"
                                         "\"injections\":1,\"deliveries\":1,\"raises\":0}]"),
                           "%s", p.out);
        hv_proc_free(&p);

        /* diff: aligned per vCPU; only vCPU 1 differs. */
        run_replay(&p, "diff", a, a, NULL);
        cr_assert_eq(p.status, 0, "diff a a: %d %s %s", p.status, p.out, p.err);
        hv_proc_free(&p);
        run_replay(&p, "diff", a, b, NULL);
        cr_assert_eq(p.status, 1, "diff a b: %d %s %s", p.status, p.out, p.err);
        s0 = section(p.out, "vCPU 0:\n", "vCPU 1:\n");
        s1 = section(p.out, "vCPU 1:\n", NULL);
        cr_assert_not_null(strstr(s0, "same: 2 exits compared"), "%s", s0);
        cr_assert_not_null(strstr(s1, "diverged: first at a#3 b#3"), "%s", s1);
        free(s0);
        free(s1);
        hv_proc_free(&p);

        /* export: vCPU 1's exit #3 on vCPU 1's track (test_export checks each track whole). */
        run_replay(&p, "export", a, "-o", "-");
        cr_assert_eq(p.status, 0, "export: %d %s", p.status, p.err);
        cr_assert_not_null(strstr(p.out, "\"tid\":4,\"name\":\"thread_name\",\"args\":{"
                                         "\"name\":\"vCPU 1\"}"),
                           "%s", p.out);
        cr_assert_not_null(strstr(p.out, "\"tid\":4,\"name\":\"hlt\",\"cat\":\"exit\","
                                         "\"args\":{\"exit\":3,"),
                           "%s", p.out);
        hv_proc_free(&p);

        /* report: check's status and a row per vCPU (test_report checks each row's content). */
        run_replay(&p, "check", a, NULL, NULL);
        status = p.status;
        hv_proc_free(&p);
        run_replay(&p, "report", a, "-o", "-");
        cr_assert_lt(status, 2, "check: %d", status);
        cr_assert_eq(p.status, status, "report: %d (check %d) %s", p.status, status, p.err);
        cr_assert_not_null(strstr(p.out, "<h3>vCPUs (2)</h3>"), "%s", p.out);
        cr_assert_not_null(strstr(p.out, "<tr><td class=\"n\">1</td><td class=\"n\">2</td>"
                                         "<td class=\"n\">1</td><td class=\"n\">1</td>"),
                           "%s", p.out);
        hv_proc_free(&p);

        /* What models one vCPU refuses, on one line. */
        {
                const char *const diff_json[] = { HVREPLAY, "diff", "--json", a, b, NULL };
                const char *const run[] = { HVREPLAY, "run", a, NULL };
                const char *const red[] = { HVREPLAY, "reduce", a, "-o", hv_tmp("mv-s.zst"), NULL };

                hv_run_one_line_error(diff_json, "hvreplay", "multi-vCPU");
                hv_run_one_line_error(run, "hvreplay", "2-vCPU trace");
                hv_run_one_line_error(red, "hvreplay", "2-vCPU trace");
        }
}
