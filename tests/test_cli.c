// SPDX-License-Identifier: MIT
/*
 * Command-line behaviour that needs no /dev/kvm: help texts, bad options,
 * bad traces (one-line error, status 2), JSON-lines output that parses,
 * stats that add up.  Sample traces come from traces/.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <zstd.h>

#include "helpers.h"

#define SAMPLE HV_SOURCE_DIR "/traces/demo.zst"

static void run(const char *const *argv, struct hv_proc *p)
{
        cr_assert_eq(hv_run(argv, p), 0, "cannot run %s", argv[0]);
}

/* ---- help ---------------------------------------------------------------- */

Test(cli, hvrec_help_lists_every_option_with_defaults)
{
        static const char *const opts[] = { "--load",         "--entry",       "--mem",
                                            "--mode",         "--backend",     "--inject",
                                            "--irq",          "--kick",        "--single-step",
                                            "--seed",         "--output",      "--max-exits",
                                            "--timeout",      "--quiet",       "--help",
                                            "--track-writes", "--step-inject", "--raw-console" };
        const char *argv[] = { HVREC, "run", "--help", NULL };
        /* The default backend is the first compiled in (HVTRACE_BACKEND_* options). */
        const char *backend = hv_backend_compiled("kvm")           ? "default kvm)"
                              : hv_backend_compiled("kvm-irqchip") ? "default kvm-irqchip)"
                                                                   : "default emu)";
        struct hv_proc p;

        run(argv, &p);
        cr_assert_eq(p.status, 0);
        for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
                cr_assert(strstr(p.out, opts[i]) != NULL, "--help mentions %s", opts[i]);
        cr_assert(strstr(p.out, "default 0x1000") && strstr(p.out, "default 1M") &&
                          strstr(p.out, backend) && strstr(p.out, "default trace.zst"),
                  "defaults are stated");
        cr_assert(strstr(p.out, "FILE.1") != NULL, "says what happens to an existing trace");
        cr_assert(strstr(p.out, "symbolic link") && strstr(p.out, "FIFO"),
                  "says what it does with what is not a regular file");
        /* Every status hvrec gives, and where the guest's end. */
        for (int st = HVREC_STATUS_ERROR; st <= HVREC_STATUS_GUEST_HIGH; st++) {
                char num[16];

                snprintf(num, sizeof(num), "  %d ", st);
                cr_assert(strstr(p.out, num) != NULL, "--help explains status %d", st);
        }
        cr_assert(strstr(p.out, "1-127") && strstr(p.out, "128+N"), "guest and signal statuses");
        hv_proc_free(&p);
}

Test(cli, hvreplay_help_for_each_command)
{
        static const char *const cmds[] = { "dump", "stats" };
        struct hv_proc p;

        for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
                const char *argv[] = { HVREPLAY, cmds[i], "--help", NULL };

                run(argv, &p);
                cr_assert_eq(p.status, 0);
                cr_assert(strstr(p.out, "--format") != NULL, "%s --help lists --format", cmds[i]);
                cr_assert(strstr(p.out, "default") != NULL, "%s --help states defaults", cmds[i]);
                hv_proc_free(&p);
        }
        const char *top[] = { HVREPLAY, "--help", NULL };
        run(top, &p);
        cr_assert_eq(p.status, 0);
        for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
                cr_assert(strstr(p.out, cmds[i]) != NULL);
        hv_proc_free(&p);
}

Test(cli, backend_help_lists_kvm)
{
        const char *argv[] = { HVREC, "run", "--backend", "help", NULL };
        struct hv_proc p;

        run(argv, &p);
        cr_assert_eq(p.status, 0);
        cr_assert(strstr(p.out, "kvm") &&
                  (strstr(p.out, "usable here") || strstr(p.out, "not usable")));
        hv_proc_free(&p);
}

/* ---- bad options and guests -------------------------------------------- */

Test(cli, hvrec_rejects_bad_input_in_one_line)
{
        static const struct {
                const char *args[6];
                const char *needle;
        } cases[] = {
                { { "run", NULL }, "no guest" },
                { { "run", "--bogus", "x.bin", NULL }, "--bogus" },
                { { "run", "--mem", "lots", "x.bin", NULL }, "--mem" },
                { { "run", "--inject", "sometimes", "x.bin", NULL }, "--inject" },
                { { "run", "--irq", "0x30", "x.bin", NULL }, "--irq" },
                { { "run", "--irq", "300@exit:1", "x.bin", NULL }, "--irq" },
                { { "run", "--kick", "0", "x.bin", NULL }, "--kick" },
                { { "run", "--kick", "100:nmx", "x.bin", NULL }, "USEC:nmi" },
                { { "run", "--nmi", "2@exit:1", "x.bin", NULL }, "--nmi" },
                { { "run", "--nmi", "every:0", "x.bin", NULL }, "--nmi" },
                { { "run", "--nmi", "port:0x10000", "x.bin", NULL }, "--nmi" },
                { { "run", "--backend", "qemu", "x.bin", NULL }, "qemu" },
                { { "run", "--timeout", "-1", "x.bin", NULL }, "--timeout" },
                { { "run", "--max-exits", "0", "x.bin", NULL }, "--max-exits: must be at least 1" },
                { { "run", "--track-writes", "maybe", "x.bin", NULL }, "--track-writes" },
                { { "run", "--track-writes", "", "x.bin", NULL }, "--track-writes" },
                { { "run", "--step-inject", "1", "x.bin", NULL }, "--step-inject" },
                { { "run", "--step-inject", "YES", "x.bin", NULL }, "--step-inject" },
                { { "run", "--step-inject", NULL }, "--step-inject needs a value" },
                { { "run", "/nonexistent/guest.bin", NULL }, "cannot open guest" },
                { { "run", "--load", "0x200000", "x.bin", NULL }, "outside guest memory" },
                { { "frobnicate", NULL }, "unknown command" },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                const char *argv[8] = { HVREC };
                struct hv_proc p;

                for (int a = 0; cases[i].args[a]; a++)
                        argv[a + 1] = cases[i].args[a];
                run(argv, &p);
                hv_assert_one_line_error(&p, "hvrec", cases[i].needle);
                hv_proc_free(&p);
        }
}

/* Only kvm and emu inject NMIs: the others say so before running anything. */
static void refuses_nmi(const char *backend, const char *opt, const char *arg)
{
        const char *argv[] = { HVREC, "run", "--backend",         backend,          opt,
                               arg,   "-o",  hv_tmp("never.zst"), hv_guest("demo"), NULL };
        struct hv_proc p;

        hv_require_backend(backend);
        run(argv, &p);
        hv_assert_one_line_error(&p, "hvrec", "cannot inject NMIs");
        cr_assert(strstr(p.err, backend), "names the backend: %s", p.err);
        cr_assert_neq(access(hv_tmp("never.zst"), F_OK), 0, "no trace");
        hv_proc_free(&p);
}

Test(cli, qemu_tcg_refuses_nmi)
{
        refuses_nmi("qemu-tcg", "--nmi", "exit:1");
}

Test(cli, kvm_irqchip_refuses_nmi_kicks)
{
        refuses_nmi("kvm-irqchip", "--kick", "100:nmi");
}

Test(cli, hvrec_refuses_what_the_backend_cannot_do)
{
        static const struct {
                const char *backend, *opt, *needle;
        } cases[] = {
                /* kvm reports no guest writes; kvm-irqchip injects by itself. */
                { "kvm", "--track-writes", "cannot report guest writes" },
                { "kvm-irqchip", "--track-writes", "cannot report guest writes" },
                { "kvm-irqchip", "--step-inject", "does not apply" },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                const char *argv[] = {
                        HVREC, "run", "--backend",         cases[i].backend, cases[i].opt,
                        "yes", "-o",  hv_tmp("never.zst"), hv_guest("demo"), NULL
                };
                struct hv_proc p;

                run(argv, &p);
                hv_assert_one_line_error(&p, "hvrec", cases[i].needle);
                cr_assert(strstr(p.err, cases[i].opt), "names %s: %s", cases[i].opt, p.err);
                cr_assert(strstr(p.err, cases[i].backend), "names the backend: %s", p.err);
                cr_assert_neq(access(hv_tmp("never.zst"), F_OK), 0, "no trace");
                hv_proc_free(&p);
        }
}

Test(cli, hvrec_rejects_an_empty_guest)
{
        const char *path = hv_tmp("empty.bin");
        FILE *f = fopen(path, "w");
        struct hv_proc p;

        cr_assert_not_null(f);
        fclose(f);
        const char *argv[] = { HVREC, "run", "-o", hv_tmp("never.zst"), path, NULL };
        run(argv, &p);
        hv_assert_one_line_error(&p, "hvrec", "empty");
        cr_assert_neq(access(hv_tmp("never.zst"), F_OK), 0, "no trace for a guest that never ran");
        hv_proc_free(&p);
}

/*
 * valgrind keeps the last real-time signal for itself, and hvrec used to
 * refuse to start when it could not catch it: a recorder a developer
 * cannot run under valgrind hides its own memory errors from them.
 */
Test(cli, hvrec_runs_under_valgrind)
{
        const char *trace = hv_tmp("valgrind.zst");
        struct hv_proc p;

#ifdef HV_SANITIZED
        cr_skip_test("valgrind cannot run a sanitizer build (the plain pass runs this test)");
#endif
        if (!hv_on_path("valgrind"))
                cr_skip_test("needs valgrind (Debian package valgrind; make test installs it)");
        const char *argv[] = {
                "/usr/bin/env", "valgrind",  "-q",  "--tool=none",      HVREC,
                "run",          "--backend", "emu", "--quiet",          "--max-exits",
                "50",           "-o",        trace, hv_guest("ioloop"), NULL
        };
        run(argv, &p);
        /* 204: --max-exits ended it, as it would without valgrind. */
        cr_assert_eq(p.status, 204, "status %d, stderr: %s", p.status, p.err);
        cr_assert_eq(access(trace, F_OK), 0, "a trace");
        hv_proc_free(&p);
}

/* ---- bad traces ----------------------------------------------------------- */

static const char *write_file(const char *name, const void *data, size_t len)
{
        const char *path = hv_tmp(name);
        FILE *f = fopen(path, "wb");

        cr_assert_not_null(f);
        cr_assert_eq(fwrite(data, 1, len, f), len);
        fclose(f);
        return path;
}

static void assert_bad_trace(const char *path, const char *needle)
{
        static const char *const cmds[] = { "dump", "stats" };

        for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
                const char *argv[] = { HVREPLAY, cmds[i], path, NULL };
                struct hv_proc p;

                run(argv, &p);
                hv_assert_one_line_error(&p, "hvreplay", needle);
                cr_assert(strstr(p.err, path) != NULL, "names the file: %s", p.err);
                hv_proc_free(&p);
        }
}

Test(cli, empty_file)
{
        assert_bad_trace(write_file("empty.zst", "", 0), "empty");
}

Test(cli, garbage_file)
{
        static const char junk[] = "this is not a trace, just some text\n\x01\x02\x03";

        assert_bad_trace(write_file("garbage.zst", junk, sizeof(junk)), "not an hvtrace trace");
}

Test(cli, missing_file)
{
        assert_bad_trace("/nonexistent/trace.zst", "cannot open");
}

Test(cli, truncated_header)
{
        FILE *f = fopen(SAMPLE, "rb");
        uint8_t buf[40];

        cr_assert_not_null(f, "sample trace %s", SAMPLE);
        cr_assert_eq(fread(buf, 1, sizeof(buf), f), sizeof(buf));
        fclose(f);
        assert_bad_trace(write_file("cut.zst", buf, sizeof(buf)), "truncated header");
}

Test(cli, future_format_version)
{
        struct hvt_disk_preamble pre = { .version = HVT_FORMAT_VERSION + 1 };
        uint8_t out[256];
        char want[32];
        size_t n;

        memcpy(pre.magic, HVT_MAGIC, HVT_MAGIC_LEN);
        n = ZSTD_compress(out, sizeof(out), &pre, sizeof(pre), 3);
        cr_assert(!ZSTD_isError(n));
        snprintf(want, sizeof(want), "version %d", HVT_FORMAT_VERSION + 1);
        assert_bad_trace(write_file("future.zst", out, n), want);
}

/* ---- output that programs read -------------------------------------------- */

Test(cli, json_checker_rejects_bad_json)
{
        static const char *const bad[] = { "{",   "{\"a\":}", "{\"a\":1,}", "[1 2]",
                                           "\"x", "{a:1}",    "01",         "{\"a\":\"\x01\"}" };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                const char *e = hv_json_value(bad[i]);

                cr_assert(!e || *hv_json_ws(e), "'%s' must not pass", bad[i]);
        }
        cr_assert_not_null(hv_json_value("{\"a\":[1,-2.5,true,null,\"\\u00ff\"],\"b\":{}}"));
}

Test(cli, dump_jsonl_parses_line_by_line)
{
        const char *argv[] = { HVREPLAY, "dump", "--format", "jsonl", SAMPLE, NULL };
        struct hv_trace t;
        struct hv_proc p;
        size_t lines = 0, exits = 0;

        run(argv, &p);
        cr_assert_eq(p.status, 0, "%s", p.err);
        cr_assert_eq(hv_trace_load(SAMPLE, &t), HVT_OK);
        for (char *line = strtok(p.out, "\n"); line; line = strtok(NULL, "\n")) {
                const char *end = hv_json_value(line);

                cr_assert(end && !*hv_json_ws(end), "line %zu is one JSON object: %s", lines + 1,
                          line);
                cr_assert(strstr(line, "\"type\":") && strstr(line, "\"event\":"));
                if (strstr(line, "\"type\":\"exit\"")) {
                        cr_assert(strstr(line, "\"seq\":") && strstr(line, "\"rip\":\"0x") &&
                                          strstr(line, "\"rflags\":\"0x") &&
                                          strstr(line, "\"reason\":") && strstr(line, "\"cs\":"),
                                  "%s", line);
                        if (strstr(line, "\"reason\":\"io\""))
                                cr_assert(strstr(line, "\"port\":") && strstr(line, "\"dir\":") &&
                                          strstr(line, "\"size\":") && strstr(line, "\"data\":"));
                        exits++;
                }
                if (strstr(line, "\"type\":\"inject\"") || strstr(line, "\"type\":\"deliver\""))
                        cr_assert(strstr(line, "\"vector\":\"0x") != NULL, "%s", line);
                lines++;
        }
        cr_assert_eq(lines, t.nrecords, "one line per record");
        cr_assert_eq(exits, t.nexits);
        hv_trace_free(&t);
        hv_proc_free(&p);
}

Test(cli, stats_sum_to_the_number_of_exits)
{
        const char *argv[] = { HVREPLAY, "stats", SAMPLE, NULL };
        struct hv_trace t;
        struct hv_proc p;
        unsigned long long sum = 0, total = 0;
        char *line;

        run(argv, &p);
        cr_assert_eq(p.status, 0, "%s", p.err);
        cr_assert_eq(hv_trace_load(SAMPLE, &t), HVT_OK);
        for (line = strtok(p.out, "\n"); line; line = strtok(NULL, "\n")) {
                char reason[64];
                unsigned long long n;

                if (sscanf(line, " Total Samples:%llu", &total) == 1)
                        continue;
                if (sscanf(line, " %63s %llu %*f%%", reason, &n) == 2)
                        for (unsigned r = 0; r < HVT_EXIT_REASON_COUNT; r++)
                                if (!strcmp(reason, hvt_exit_reason_name(r)))
                                        sum += n;
        }
        cr_assert_gt(t.nexits, 0);
        cr_assert_eq(sum, t.nexits, "rows sum to the exits in the trace");
        cr_assert_eq(total, t.nexits);
        hv_trace_free(&t);
        hv_proc_free(&p);
}

/* ---- bad ELF guests: rejected before any backend is touched ------------------ */

static const uint8_t exit42[] = { 0xb0, 42, 0xe6, 0xf4 }; /* mov al, 42; out 0xf4, al */

static void assert_bad_guest(const char *path, const char *needle, const char *const *extra)
{
        const char *argv[16] = { HVREC, "run", "-o", hv_tmp("never.zst") };
        int n = 4;
        struct hv_proc p;

        for (; extra && *extra; extra++)
                argv[n++] = *extra;
        argv[n++] = path;
        argv[n] = NULL;
        run(argv, &p);
        hv_assert_one_line_error(&p, "hvrec", needle);
        hv_proc_free(&p);
}

Test(cli, elf_truncated)
{
        static const uint8_t cut[] = { 0x7f, 'E', 'L', 'F', 2, 1, 1, 0 };

        assert_bad_guest(write_file("cut.elf", cut, sizeof(cut)), "truncated", NULL);
}

Test(cli, elf_wrong_machine)
{
        assert_bad_guest(
                hv_write_elf("arm.elf", 64, 183 /* EM_AARCH64 */, 0x10000, exit42, sizeof(exit42)),
                "machine 183", NULL);
}

Test(cli, elf_segment_outside_memory)
{
        assert_bad_guest(hv_write_elf("far.elf", 64, 62, 0x10000000, exit42, sizeof(exit42)),
                         "outside guest memory", NULL);
}

Test(cli, elf_segment_over_hvrec_tables)
{
        /* The last bytes of the default 1 MiB belong to hvrec's GDT and page tables. */
        assert_bad_guest(hv_write_elf("high.elf", 64, 62, 0xff000, exit42, sizeof(exit42)),
                         "overlaps hvrec's tables", NULL);
}

Test(cli, flat_guest_over_hvrec_tables)
{
        const char *args[] = { "--mode", "protected", "--mem", "20K", NULL };

        assert_bad_guest(hv_guest("demo"), "overlaps hvrec's tables", args);
}

/* ---- hostile trace strings: no terminal escapes from hvreplay ----------------- */

/* OSC retitle, clear screen, CR LF and a forged line, an 8-bit CSI, a non-UTF-8 byte. */
static const char evil[] = "\x1b]0;pwned\x07\x1b[2J\r\nFORGED line\x9b"
                           "31m\xff";
/* evil as replay_put_escaped writes it (docs/dump-jsonl.md, "Text"). */
static const char evil_escaped[] = "\\x1b]0;pwned\\x07\\x1b[2J\\x0d\\nFORGED line\\x9b31m\\xff";

/*
 * A trace with evil in every string it can carry: each header string, an
 * argument, the guest name, console bytes and the end message.  variant 1
 * differs from 0 in a register, the kernel string and the end status, so
 * that diff prints all of them.
 */
static const char *write_evil_trace(const char *name, int variant)
{
        static const uint8_t code[] = { 0xe6, 0xe9, 0xf4 }; /* out 0xe9, al; hlt */
        const char *argv[] = { "hvrec", evil, "a b", "", "--seed", "1" };
        const char *path = hv_tmp(name);
        struct hvt_writer *w;
        struct hvt_header h = { 0 };
        struct hvt_exit e = { .reason = HVT_EXIT_IO, .insn_len = 2, .insn = { 0xe6, 0xe9 } };
        struct hvt_disk_end end = { .exits = 2, .why = HVT_END_ERROR, .status = 70 + variant };
        uint8_t esc = 0x1b;

        cr_assert_eq(hvt_writer_open(&w, path, NULL), 0);
        h.h.mem_size = 0x10000;
        h.h.entry = h.h.load_addr = 0x1000;
        h.h.guest_mode = HVT_MODE_REAL;
        for (unsigned k = 1; k < HVT_STR_COUNT; k++)
                h.str[k] = evil;
        if (variant)
                h.str[HVT_STR_KERNEL] = "plain";
        h.argv = argv;
        h.argc = sizeof(argv) / sizeof(argv[0]);
        cr_assert_eq(hvt_write_header(w, &h), 0);
        cr_assert_eq(hvt_write_memory(w, 0x1000, code, sizeof(code)), 0);
        e.st.rip = 0x1002;
        e.st.gpr[HVT_F_RAX] = esc + (uint64_t)variant;
        e.u.io.io = (struct hvt_disk_io){ .port = 0xe9, .size = 1, .dir = HVT_IO_OUT, .count = 1 };
        e.u.io.data = &esc;
        cr_assert_eq(hvt_write_exit(w, &e), 0);
        cr_assert_eq(hvt_write_console(w, 0, evil, sizeof(evil) - 1), 0);
        e = (struct hvt_exit){ .seq = 1, .reason = HVT_EXIT_HLT, .insn_len = 1, .insn = { 0xf4 } };
        e.st.rip = 0x1003;
        cr_assert_eq(hvt_write_exit(w, &e), 0);
        cr_assert_eq(hvt_write_end(w, &end, evil), 0);
        cr_assert_eq(hvt_writer_close(w), 0);
        return path;
}

/* Only printable ASCII and line ends, and no line that the trace started. */
static void assert_no_escapes(const char *what, const char *text)
{
        for (const unsigned char *c = (const unsigned char *)text; *c; c++)
                cr_assert((*c >= 0x20 && *c < 0x7f) || *c == '\n', "%s: byte 0x%02x at offset %zu",
                          what, *c, (size_t)(c - (const unsigned char *)text));
        cr_assert_null(strstr(text, "\nFORGED"), "%s: a forged line", what);
}

/* The line of out holding needle, then evil escaped right after it (and the line's end). */
static void assert_evil_after(const char *what, const char *out, const char *needle,
                              const char *then)
{
        char want[256];

        snprintf(want, sizeof(want), "%s%s%s", needle, evil_escaped, then);
        cr_assert_not_null(strstr(out, want), "%s: no '%s' in\n%s", what, want, out);
}

Test(cli, hvreplay_escapes_every_string_from_a_trace)
{
        const char *a = write_evil_trace("evil-a.zst", 0), *b = write_evil_trace("evil-b.zst", 1);
        const struct {
                const char *argv[6];
                int status;
                size_t min_evil; /* strings of the trace in stdout, each one evil */
        } runs[] = {
                /* 6 header strings, an argument, the guest, console, end message */
                { { HVREPLAY, "dump", a }, 0, 10 },
                { { HVREPLAY, "stats", a }, 0, 2 }, /* backend, end message */
                { { HVREPLAY, "check", a }, 0, 2 }, /* backend, end message */
                /* 9 header strings of the sides, the guest, kernel, 2 consoles, 2 end messages */
                { { HVREPLAY, "diff", "--all", a, b }, 1, 15 },
        };

        for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
                const char *what = runs[i].argv[1];
                struct hv_proc p;
                size_t n = 0;

                run(runs[i].argv, &p);
                cr_assert_eq(p.status, runs[i].status, "%s: status %d: %s", what, p.status, p.err);
                assert_no_escapes(what, p.out);
                assert_no_escapes(what, p.err);
                for (const char *s = p.out; (s = strstr(s, evil_escaped)); s++)
                        n++;
                cr_assert_geq(n, runs[i].min_evil, "%s: %zu escaped strings in\n%s", what, n,
                              p.out);
                switch (i) {
                case 0:
                        assert_evil_after(what, p.out, "\n# guest ", ": real mode");
                        assert_evil_after(what, p.out, "# command: hvrec '",
                                          "' 'a b' '' --seed 1\n");
                        assert_evil_after(what, p.out, " console    \"", "\"\n");
                        assert_evil_after(what, p.out, "status 70 after 2 exits: ", "\n");
                        cr_assert_not_null(strstr(p.out, "data 0x1b '\\x1b'\n"), "%s", p.out);
                        break;
                case 1:
                        assert_evil_after(what, p.out, "(backend ", ", real mode");
                        assert_evil_after(what, p.out, "ms: ", "\n");
                        break;
                case 2:
                        assert_evil_after(what, p.out, "deliveries checked (", ", policy");
                        assert_evil_after(what, p.out,
                                          "ended early (error, status 70): ", "; nothing");
                        break;
                default:
                        assert_evil_after(what, p.out, "  kernel           a=", " b=plain\n");
                        assert_evil_after(what, p.out, "\n  a: ", "\n  b: ");
                        assert_evil_after(what, p.out, "\n  b: ", "\n");
                }
                hv_proc_free(&p);
        }
}

Test(cli, hvreplay_error_lines_are_escaped)
{
        const char *argv[] = { HVREPLAY, "dump", hv_tmp("no\x1b[2J\nFORGED"), NULL };
        struct hv_proc p;

        run(argv, &p);
        hv_assert_one_line_error(&p, "hvreplay", "no\\x1b[2J\\nFORGED: cannot open");
        assert_no_escapes("error", p.err);
        hv_proc_free(&p);
}

/*
 * check -j: traces checked in parallel report exactly what one at a time
 * does, in argument order (an unreadable trace in the middle included),
 * as text and as one JSON document.
 */
Test(cli, check_jobs_keep_argument_order)
{
        static const char *const traces[] = {
                "stress-pit-irqchip-real.zst",
                "demo.zst",
                "movss-sti-eager-step.zst",
                "(missing)",
                "stress-eager-kick.zst",
                "sti-hlt-p32-eager-step.zst",
                "hello.zst",
                "stress-pit-irqchip-l64.zst",
        };
        enum { N = sizeof(traces) / sizeof(traces[0]) };
        static char paths[N][512];
        const char *argv[5 + N + 1];
        char *ref[2] = { NULL, NULL };
        int ref_status[2] = { 0, 0 };

        for (int i = 0; i < N; i++)
                snprintf(paths[i], sizeof(paths[i]), "%s/traces/%s", HV_SOURCE_DIR, traces[i]);
        for (int json = 0; json < 2; json++) {
                for (int jobs = 1; jobs <= 8; jobs *= 2) {
                        char jarg[12];
                        struct hv_proc p;
                        int a = 0;

                        snprintf(jarg, sizeof(jarg), "%d", jobs);
                        argv[a++] = HVREPLAY;
                        argv[a++] = "check";
                        argv[a++] = "-j";
                        argv[a++] = jarg;
                        if (json)
                                argv[a++] = "--json";
                        for (int i = 0; i < N; i++)
                                argv[a++] = paths[i];
                        argv[a] = NULL;
                        cr_assert_eq(hv_run(argv, &p), 0);
                        cr_assert_eq(p.status, 2, "an unreadable trace: status 2: %s", p.err);
                        if (jobs == 1) {
                                ref[json] = strdup(p.out);
                                ref_status[json] = p.status;
                                /* Each trace's report, in order. */
                                for (int i = 1, at = 0; !json && i < N; i++) {
                                        const char *x = strstr(p.out + at, paths[i]);

                                        cr_assert_not_null(x, "%s after %d: %s", paths[i], at,
                                                           p.out);
                                        at = (int)(x - p.out);
                                }
                                if (json)
                                        cr_assert_not_null(hv_json_value(p.out), "%s", p.out);
                        } else {
                                cr_assert_eq(p.status, ref_status[json]);
                                cr_assert_str_eq(p.out, ref[json], "-j %d differs from -j 1", jobs);
                        }
                        hv_proc_free(&p);
                }
        }
        free(ref[0]);
        free(ref[1]);
}

Test(cli, check_jobs_refuses_a_bad_count)
{
        static const char *const bad[] = { "0", "-1", "two", "", "2000" };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                const char *argv[] = {
                        HVREPLAY, "check", "--jobs", bad[i], HV_SOURCE_DIR "/traces/demo.zst", NULL
                };
                struct hv_proc p;

                cr_assert_eq(hv_run(argv, &p), 0);
                cr_assert_eq(p.status, 2, "--jobs '%s'", bad[i]);
                hv_assert_one_line_error(&p, "hvreplay", "--jobs");
                hv_proc_free(&p);
        }
}
