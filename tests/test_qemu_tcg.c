// SPDX-License-Identifier: MIT
/*
 * The qemu-tcg backend: QEMU's TCG runs the guest, hvrec turns its
 * -singlestep log into the trace.  Skipped, with the reason, where
 * qemu-system-x86_64 is not installed (scripts/deps.sh installs it).
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../src/arch/x86.h"
#include "corpus.h"
#include "helpers.h"

/* Whether qemu-system-x86_64 is on PATH (HVTRACE_QEMU names another). */
static void require_qemu(void)
{
        hv_require_backend("qemu-tcg");
        if (!hv_have_qemu())
                cr_skip_test("needs qemu-system-x86_64 (apt-get install qemu-system-x86)");
}

/* hvreplay check on path: status 0 and no violation. */
static void assert_check_clean(const char *path)
{
        const char *argv[] = { HVREPLAY, "check", path, NULL };
        struct hv_proc p;

        cr_assert_eq(hv_run(argv, &p), 0);
        cr_assert_eq(p.status, 0, "hvreplay check: %s%s", p.out, p.err);
        cr_assert(strstr(p.out, " 0 violations"), "hvreplay check: %s", p.out);
        hv_proc_free(&p);
}

/*
 * The PIT stress guest, its own PIC and PIT in QEMU: deliveries land where
 * QEMU puts them, the probe reads frames the backend kept in lockstep, and
 * the checker finds no violation.  --max-exits bounds the run (QEMU logs
 * every instruction with its registers: a few hundred deliveries a second).
 */
Test(qemu_tcg, stress_pit_checks_clean, .timeout = 120)
{
        const char *args[] = { "--max-exits", "600", NULL };
        uint64_t start = hv_sym("stress_pit", "start"), isr = hv_sym("stress_pit", "isr");
        uint64_t ticks = hv_sym("stress_pit", "ticks");
        struct hv_trace t;
        struct hv_proc p;
        size_t reported = 0;

        require_qemu();
        cr_assert_eq(hv_record_on("qemu-tcg", "stress_pit", args, &t, &p), HVREC_STATUS_LIMIT, "%s",
                     p.err);
        cr_assert_eq(t.read_err, HVT_END_OF_TRACE, "%s", t.message ? t.message : "");
        cr_assert_gt(t.ndelivers, 100, "only %zu deliveries", t.ndelivers);
        for (size_t i = 0; i < t.nexits; i++)
                if (t.exits[i].e.st.intr & HVT_INTR_VALID_SHADOW)
                        reported++;
        /* Every exit carries QEMU's inhibit flag as the backend's shadow report. */
        cr_assert_eq(reported, t.nexits);
        for (size_t i = 0; i < t.ndelivers; i++) {
                const struct hvt_disk_deliver *d = &t.delivers[i];
                const struct hvt_exit *probe = NULL;

                for (size_t k = 0; k < t.nexits && !probe; k++)
                        if (t.exits[k].e.seq == d->seq)
                                probe = &t.exits[k].e;
                cr_assert(probe, "delivery %zu: no probe exit #%llu", i,
                          (unsigned long long)d->seq);
                cr_assert_eq(d->vector, 0x30);
                cr_assert_eq(d->handler, isr);
                /* Interrupted in the guest's code, with IF set (a maskable interrupt). */
                cr_assert(d->ip >= start && d->ip < ticks, "delivery %zu at 0x%llx", i,
                          (unsigned long long)d->ip);
                cr_assert(d->flags & 0x200, "delivery %zu: IF clear in 0x%llx", i,
                          (unsigned long long)d->flags);
                /*
                 * The frame (from b->mem) against QEMU's own state at the probe: the
                 * handler's SP is below the frame, its FLAGS the frame's without IF/TF.
                 */
                cr_assert_eq((probe->st.gpr[4] + 6) & 0xffff, d->sp & 0xffff,
                             "delivery %zu: frame sp 0x%llx, handler sp 0x%llx", i,
                             (unsigned long long)d->sp, (unsigned long long)probe->st.gpr[4]);
                cr_assert_eq(probe->st.rflags & 0xffff, d->flags & ~0x300ull & 0xffff,
                             "delivery %zu", i);
        }
        assert_check_clean(hv_tmp("rec.zst")); /* where hv_record_on writes */
        hv_trace_free(&t);
        hv_proc_free(&p);
}

/*
 * The cross-validation (scripts/crossval-qemu-tcg.py, docs/backends.md) in
 * short: at every delivery the checker's verdict is QEMU's own inhibit flag
 * at that boundary, for every build of every timer guest (each mode).  The
 * long run (100,000 deliveries) is the script's.
 */
Test(qemu_tcg, crossval_checker_agrees_with_qemu, .timeout = 300)
{
        static struct corpus_build builds[CORPUS_MAX_BUILDS];
        int n;

        require_qemu();
        n = corpus_timer_builds(builds, CORPUS_MAX_BUILDS);
        for (int i = 0; i < n; i++) {
                const char *argv[] = { HV_SOURCE_DIR "/scripts/crossval-qemu-tcg.py",
                                       "--hvrec",
                                       HVREC,
                                       "--hvreplay",
                                       HVREPLAY,
                                       "--guest",
                                       hv_guest(builds[i].stem),
                                       "--mode",
                                       builds[i].mode,
                                       "--deliveries",
                                       "300",
                                       "--keep",
                                       hv_tmp("crossval"),
                                       NULL };
                struct hv_proc p;
                unsigned agree = 0, disagree = 1;
                const char *line;

                cr_assert_eq(hv_run(argv, &p), 0);
                cr_assert_eq(p.status, 0, "crossval %s: %s%s", builds[i].file, p.out, p.err);
                line = strstr(p.out, "agree ");
                cr_assert(line && sscanf(line, "agree %u, disagree %u", &agree, &disagree) == 2,
                          "%s", p.out);
                cr_assert_geq(agree, 300, "%s: %s", builds[i].file, p.out);
                cr_assert_eq(disagree, 0, "%s: %s", builds[i].file, p.out);
                hv_proc_free(&p);
        }
}

/*
 * QEMU's virtual time counts instructions (-icount): the PIT's interrupts
 * land at the same instructions in every run, so two recordings are the
 * same trace, delivery for delivery.
 */
Test(qemu_tcg, runs_are_deterministic, .timeout = 120)
{
        const char *a = hv_tmp("det-a.zst"), *b = hv_tmp("det-b.zst");
        const char *diff[] = { HVREPLAY, "diff", a, b, NULL };
        const char *rec[] = { HVREC, "run", "--backend", "qemu-tcg", "--max-exits",
                              "800", "-o",  NULL,        NULL,       NULL };
        struct hv_trace ta, tb;
        struct hv_proc p;

        require_qemu();
        rec[8] = hv_guest("stress_pit");
        for (int i = 0; i < 2; i++) {
                rec[7] = i ? b : a;
                unlink(rec[7]);
                cr_assert_eq(hv_run(rec, &p), 0);
                cr_assert_eq(p.status, HVREC_STATUS_LIMIT, "%s", p.err);
                hv_proc_free(&p);
        }
        cr_assert_eq(hv_trace_load(a, &ta), HVT_OK);
        cr_assert_eq(hv_trace_load(b, &tb), HVT_OK);
        cr_assert_gt(ta.ndelivers, 100, "the PIT fired");
        cr_assert_eq(ta.ndelivers, tb.ndelivers);
        for (size_t i = 0; i < ta.ndelivers; i++)
                cr_assert(ta.delivers[i].seq == tb.delivers[i].seq &&
                                  ta.delivers[i].ip == tb.delivers[i].ip,
                          "delivery %zu: #%" PRIu64 " at 0x%" PRIx64 " vs #%" PRIu64
                          " at 0x%" PRIx64,
                          i, ta.delivers[i].seq, ta.delivers[i].ip, tb.delivers[i].seq,
                          tb.delivers[i].ip);
        cr_assert_eq(hv_run(diff, &p), 0);
        cr_assert_eq(p.status, 0, "hvreplay diff: %s%s", p.out, p.err);
        hv_proc_free(&p);
        hv_trace_free(&ta);
        hv_trace_free(&tb);
}

/* A delivery log that cannot be written is refused before QEMU starts. */
Test(qemu_tcg, delivery_log_unwritable_is_one_line_error)
{
        const char *argv[] = {
                HVREC, "run", "--backend", "qemu-tcg", "-o", hv_tmp("dl.zst"), hv_guest("hello"),
                NULL
        };
        struct hv_proc p;

        require_qemu();
        setenv("HVTRACE_QEMU_DELIVERIES", "/nonexistent-dir/deliveries.tsv", 1);
        cr_assert_eq(hv_run(argv, &p), 0);
        unsetenv("HVTRACE_QEMU_DELIVERIES");
        cr_assert_neq(p.status, 0);
        hv_assert_one_line_error(&p, "hvrec", "HVTRACE_QEMU_DELIVERIES");
        hv_proc_free(&p);
}

/*
 * A guest without interrupts: the same console, exit status and exits
 * (hvreplay diff: the same state at every exit) as on emu.
 */
Test(qemu_tcg, hello_matches_emu, .timeout = 60)
{
        const char *qtrace = hv_tmp("hello_qemu.zst");
        const char *diff[] = { HVREPLAY, "diff", qtrace, hv_tmp("rec.zst"), NULL };
        struct hv_trace t, e;
        struct hv_proc p, pe, pd;
        int status;

        require_qemu();
        hv_require_backend("emu");
        status = hv_record_on("qemu-tcg", "hello", NULL, &t, &p);
        cr_assert(status < 128, "hvrec failed: %s", p.err);
        assert_check_clean(hv_tmp("rec.zst"));
        cr_assert_eq(rename(hv_tmp("rec.zst"), qtrace), 0);
        cr_assert_eq(hv_record_on("emu", "hello", NULL, &e, &pe), status, "%s / %s", p.err, pe.err);
        cr_assert_eq(t.console_len, e.console_len);
        cr_assert(t.console_len > 0);
        cr_assert_eq(memcmp(t.console, e.console, t.console_len), 0);
        cr_assert_eq(hv_run(diff, &pd), 0);
        cr_assert_eq(pd.status, 0, "hvreplay diff: %s%s", pd.out, pd.err);
        cr_assert(strstr(pd.out, "no divergence"), "%s", pd.out);
        hv_trace_free(&t);
        hv_trace_free(&e);
        hv_proc_free(&p);
        hv_proc_free(&pe);
        hv_proc_free(&pd);
}

/* The shadow each exit reports for port `port`: QEMU's inhibit flag. */
static uint64_t shadow_at_port(const struct hv_trace *t, uint16_t port)
{
        for (size_t i = 0; i < t->nexits; i++) {
                const struct hvt_exit *e = &t->exits[i].e;

                if (e->reason == HVT_EXIT_IO && e->u.io.io.port == port) {
                        cr_assert(e->st.intr & HVT_INTR_VALID_SHADOW, "port 0x%x", port);
                        return e->st.intr & (HVT_INTR_STI_SHADOW | HVT_INTR_MOVSS_SHADOW);
                }
        }
        cr_assert_fail("no exit on port 0x%x", port);
        return 0;
}

/*
 * OUTS: each element QEMU's REP ran is an exit with the bytes from RAM;
 * none when CX is 0.  The same guest on emu (one exit for the whole REP,
 * as KVM) writes the same console.
 */
Test(qemu_tcg, outs_elements_are_exits, .timeout = 60)
{
        static const uint8_t code[] = {
                0xbe, 0x19, 0x10, /* mov si, msg (loaded at 0x1000) */
                0xb9, 0x05, 0x00, /* mov cx, 5 */
                0xba, 0xe9, 0x00, /* mov dx, 0xe9 (console) */
                0xfc,             /* cld */
                0xf3, 0x6e,       /* rep outsb: five exits */
                0xf3, 0x6e,       /* rep outsb with CX = 0: none */
                0xbe, 0x1a, 0x10, /* mov si, msg + 1 */
                0x66, 0x6f,       /* outsd: "ello", the console takes its low byte */
                0x90, 0x90,       /* nop, nop */
                0xb0, 0x03,       /* mov al, 3 */
                0xe6, 0xf4,       /* out 0xf4, al   exit 3 */
                'h',  'e',  'l',  'l', 'o',
        };
        const char *guest = hv_write_flat("outs.bin", code, sizeof(code));
        struct hv_trace t, e;
        struct hv_proc p, pe;
        unsigned outs = 0;

        require_qemu();
        _Static_assert(sizeof(code) == 0x19 + 5, "msg is at 0x1019");
        cr_assert_eq(hv_record_on("qemu-tcg", guest, NULL, &t, &p), 3, "%s", p.err);
        cr_assert_eq(t.console_len, 6, "console: %.*s", (int)t.console_len, t.console);
        cr_assert(!memcmp(t.console, "helloe", 6), "console: %.*s", (int)t.console_len, t.console);
        for (size_t i = 0; i < t.nexits; i++) {
                const struct hvt_exit *x = &t.exits[i].e;

                if (x->reason == HVT_EXIT_IO && x->u.io.io.port == 0xe9) {
                        cr_assert_eq(x->u.io.io.count, 1);
                        outs++;
                }
        }
        cr_assert_eq(outs, 6, "one exit per element");
        hv_require_backend("emu");
        cr_assert_eq(hv_record_on("emu", guest, NULL, &e, &pe), 3, "%s", pe.err);
        cr_assert_eq(e.console_len, t.console_len);
        cr_assert(!memcmp(e.console, t.console, t.console_len));
        hv_trace_free(&e);
        hv_proc_free(&pe);
        hv_trace_free(&t);
        hv_proc_free(&p);
}

/*
 * A store into the very next instruction: QEMU runs the new instruction,
 * and the lockstep copy follows (Unicorn restarts the storing instruction
 * in a block of its own).  CLC becomes CMC: AL shows the carry.
 */
Test(qemu_tcg, a_store_into_the_next_instruction_is_followed, .timeout = 60)
{
        static const uint8_t code[] = {
                0xf8,                         /* 1000 clc */
                0xc6, 0x06, 0x06, 0x10, 0xf5, /* 1001 mov byte [0x1006], 0xf5 (cmc) */
                0xf8,                         /* 1006 clc, rewritten to cmc */
                0xb0, 0x00,                   /* 1007 mov al, 0 */
                0x14, 0x00,                   /* 1009 adc al, 0: 1 after cmc */
                0xe6, 0x80,                   /* 100b out 0x80, al */
                0xb0, 0x00,                   /* 100d mov al, 0 */
                0xe6, 0xf4,                   /* 100f out 0xf4, al: exit 0 */
        };
        const char *guest = hv_write_flat("smc.bin", code, sizeof(code));
        struct hv_trace t, e;
        struct hv_proc p, pe;

        require_qemu();
        cr_assert_eq(hv_record_on("qemu-tcg", guest, NULL, &t, &p), 0, "%s", p.err);
        cr_assert_geq(t.nexits, 1);
        cr_assert_eq(t.exits[0].e.u.io.io.port, 0x80);
        cr_assert_eq(t.exits[0].e.st.gpr[0] & 0xff, 1, "the rewritten instruction ran");
        hv_require_backend("emu");
        cr_assert_eq(hv_record_on("emu", guest, NULL, &e, &pe), 0, "%s", pe.err);
        cr_assert_eq(e.exits[0].e.st.gpr[0] & 0xff, 1);
        hv_trace_free(&e);
        hv_proc_free(&pe);
        hv_trace_free(&t);
        hv_proc_free(&p);
}

/* The SDM's shadows, as QEMU reports them at the exit inside and after each. */
Test(qemu_tcg, exits_report_qemus_shadow, .timeout = 60)
{
        static const uint8_t code[] = {
                0xfa,       /* cli */
                0xfb,       /* sti            (IF 0 -> 1: a shadow) */
                0xe6, 0x81, /* out 0x81, al   inside it */
                0xe6, 0x82, /* out 0x82, al   after it */
                0x8c, 0xd0, /* mov ax, ss */
                0x8e, 0xd0, /* mov ss, ax     (a shadow) */
                0xe6, 0x83, /* out 0x83, al   inside it */
                0xe6, 0x84, /* out 0x84, al   after it */
                0xb0, 0x05, /* mov al, 5 */
                0xe6, 0xf4, /* out 0xf4, al   exit 5 */
        };
        struct hv_trace t;
        struct hv_proc p;

        require_qemu();
        cr_assert_eq(hv_record_on("qemu-tcg", hv_write_flat("shadows.bin", code, sizeof(code)),
                                  NULL, &t, &p),
                     5, "%s", p.err);
        cr_assert_eq(shadow_at_port(&t, 0x81), HVT_INTR_STI_SHADOW);
        cr_assert_eq(shadow_at_port(&t, 0x82), 0);
        cr_assert_eq(shadow_at_port(&t, 0x83), HVT_INTR_MOVSS_SHADOW);
        cr_assert_eq(shadow_at_port(&t, 0x84), 0);
        assert_check_clean(hv_tmp("rec.zst"));
        hv_trace_free(&t);
        hv_proc_free(&p);
}

/* HLT with IF = 0 ends the run (QEMU itself would wait for ever). */
Test(qemu_tcg, hlt_with_if_clear_ends_the_run, .timeout = 60)
{
        static const uint8_t code[] = { 0xfa, 0xf4 }; /* cli; hlt */
        struct hv_trace t;
        struct hv_proc p;

        require_qemu();
        hv_record_on("qemu-tcg", hv_write_flat("hlt.bin", code, sizeof(code)), NULL, &t, &p);
        cr_assert(t.have_end);
        cr_assert_eq(t.end.why, HVT_END_HALT, "%s", t.end_msg);
        cr_assert_eq(hv_last_exit(&t)->e.reason, HVT_EXIT_HLT);
        hv_trace_free(&t);
        hv_proc_free(&p);
}

/* Asking hvrec for an interrupt (port 0xE0): nothing can raise it in QEMU. */
Test(qemu_tcg, port_e0_is_an_error, .timeout = 60)
{
        static const uint8_t code[] = { 0xb0, 0x30, 0xe6, 0xe0, 0xfa, 0xf4 };
        const char *argv[] = { HVREC,
                               "run",
                               "--backend",
                               "qemu-tcg",
                               "-o",
                               hv_tmp("e0.zst"),
                               hv_write_flat("e0.bin", code, sizeof(code)),
                               NULL };
        struct hv_proc p;

        require_qemu();
        cr_assert_eq(hv_run(argv, &p), 0);
        cr_assert_eq(p.status, HVREC_STATUS_ERROR, "%s", p.err);
        cr_assert(strstr(p.err, "raising the line of vector 0x30"), "%s", p.err);
        hv_proc_free(&p);
}

/* --timeout ends a run whose guest never exits, QEMU's log still flowing. */
Test(qemu_tcg, timeout_ends_the_run, .timeout = 60)
{
        const char *args[] = { "--timeout", "1", NULL };
        struct hv_trace t;
        struct hv_proc p;

        require_qemu();
        cr_assert_eq(hv_record_on("qemu-tcg", "spin", args, &t, &p), HVREC_STATUS_LIMIT, "%s",
                     p.err);
        cr_assert(t.have_end);
        cr_assert_eq(t.end.why, HVT_END_TIMEOUT, "%s", t.end_msg);
        hv_trace_free(&t);
        hv_proc_free(&p);
}

/* Whether process pid is gone (or a zombie nobody has reaped yet). */
static bool process_gone(pid_t pid)
{
        char path[64], buf[256];
        FILE *f;
        const char *close_paren;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        f = fopen(path, "r");
        if (!f)
                return true;
        buf[0] = 0;
        if (!fgets(buf, sizeof(buf), f))
                buf[0] = 0;
        fclose(f);
        close_paren = strrchr(buf, ')');
        return close_paren && close_paren[1] == ' ' && close_paren[2] == 'Z';
}

/* Killing hvrec, even with SIGKILL, takes QEMU with it. */
Test(qemu_tcg, sigkill_of_hvrec_ends_qemu, .timeout = 60)
{
        const char *pidfile = hv_tmp("qemu.pid");
        const char *wrapper = hv_tmp("qemu-wrapper.sh");
        char script[1024];
        FILE *f;
        pid_t rec, qemu = 0;
        int status;

        require_qemu();
        /* A wrapper that tells the test the running QEMU's pid, then becomes QEMU. */
        snprintf(script, sizeof(script),
                 "#!/bin/sh\n[ \"$1\" = --version ] || echo $$ > '%s'\nexec %s \"$@\"\n", pidfile,
                 getenv("HVTRACE_QEMU") && *getenv("HVTRACE_QEMU") ? getenv("HVTRACE_QEMU")
                                                                   : "qemu-system-x86_64");
        f = fopen(wrapper, "w");
        cr_assert_not_null(f);
        fputs(script, f);
        cr_assert_eq(fclose(f), 0);
        cr_assert_eq(chmod(wrapper, 0755), 0);
        rec = fork();
        cr_assert_geq(rec, 0);
        if (!rec) {
                int null = open("/dev/null", O_WRONLY);

                dup2(null, 1);
                dup2(null, 2);
                setenv("HVTRACE_QEMU", wrapper, 1);
                execl(HVREC, HVREC, "run", "--backend", "qemu-tcg", "-o", hv_tmp("kill.zst"),
                      hv_guest("spin"), (char *)NULL);
                _exit(127);
        }
        for (int i = 0; i < 200 && !qemu; i++) {
                f = fopen(pidfile, "r");
                if (f) {
                        if (fscanf(f, "%d", &qemu) != 1)
                                qemu = 0;
                        fclose(f);
                }
                usleep(20000);
        }
        cr_assert_gt(qemu, 0, "QEMU never started");
        usleep(300000); /* QEMU is running the guest */
        cr_assert(!process_gone(qemu), "QEMU ended on its own");
        cr_assert_eq(kill(rec, SIGKILL), 0);
        cr_assert_eq(waitpid(rec, &status, 0), rec);
        for (int i = 0; i < 100 && !process_gone(qemu); i++)
                usleep(20000);
        if (!process_gone(qemu)) {
                kill(qemu, SIGKILL); /* leave nothing running, then fail */
                cr_assert_fail("QEMU (pid %d) outlived hvrec", (int)qemu);
        }
}

/*
 * hvrec's tables at the top of a 1 MiB guest fall in QEMU's VGA and ROM
 * window (0xA0000-0xFFFFF), where QEMU has no RAM: refused in one line
 * before QEMU starts, in protected and in long mode.
 */
Test(qemu_tcg, tables_in_the_rom_window_are_refused, .timeout = 60)
{
        static const char *const modes[] = { "protected", "long" };

        require_qemu();
        for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
                const char *argv[] = { HVREC,
                                       "run",
                                       "--backend",
                                       "qemu-tcg",
                                       "--mode",
                                       modes[i],
                                       "--mem",
                                       "1M",
                                       "-o",
                                       hv_tmp("bad.zst"),
                                       hv_guest("stress_pit_p32"),
                                       NULL };
                struct hv_proc p;

                cr_assert_eq(hv_run(argv, &p), 0);
                cr_assert_eq(p.status, HVREC_STATUS_ERROR, "%s: %s", modes[i], p.err);
                hv_assert_one_line_error(&p, "hvrec", "--mem: qemu-tcg needs at least 2048K");
                hv_proc_free(&p);
        }
}

/* The bytes of the frame a delivery pushes in mode (same privilege, no error code). */
static uint64_t frame_bytes(const char *mode)
{
        return !strcmp(mode, "long") ? 5 * 8 : !strcmp(mode, "protected") ? 3 * 4 : 3 * 2;
}

/*
 * Every corpus guest that drives its own PIC and PIT, in each mode it is
 * built for (protected and long mode entered by the BIOS with hvrec's own
 * tables), runs on qemu-tcg with its labels' ground truth: no interrupt
 * lands at a shadowed_ label, every one enters the build's isr through the
 * frame the backend pushed in lockstep, and the checker finds no
 * violation.  A guest with second_ labels (pit_pairs) gets deliveries
 * there, right after the second of a sequence, as QEMU drops its shadow,
 * and the checker notes them as second-in-sequence.  The options are the
 * other backends': without --mem, qemu-tcg
 * gives protected and long mode 2 MiB, which puts hvrec's tables in QEMU's
 * RAM above 1 MiB.
 */
Test(qemu_tcg, timer_guests_run_in_every_mode, .timeout = 300)
{
        /* pit_pairs exits twice a loop: about 20 exits a delivery. */
        const char *extra[] = { "--max-exits", "3000", NULL };
        static struct corpus_build builds[CORPUS_MAX_BUILDS];
        int n;

        require_qemu();
        n = corpus_timer_builds(builds, CORPUS_MAX_BUILDS);
        for (int i = 0; i < n; i++) {
                const struct corpus_build *b = &builds[i];
                uint64_t isr = hv_sym(b->stem, "isr"), frame = frame_bytes(b->mode);
                uint64_t if_tf = X86_RFLAGS_IF | X86_RFLAGS_TF;
                struct corpus_truth truth;
                struct check_result res;
                struct hv_trace t;
                struct hv_proc p;

                corpus_record("qemu-tcg", b, extra, NULL, &p, &t, &res);
                cr_assert_eq(p.status, HVREC_STATUS_LIMIT, "%s: %s", b->file, p.err);
                cr_assert_eq(t.read_err, HVT_END_OF_TRACE, "%s", b->file);
                corpus_labels_of(b->stem, &truth);
                cr_assert_gt(truth.shadowed.n, 0, "%s labels its shadows", b->file);
                cr_assert_gt(res.deliveries, 100, "%s: the PIT drove the run", b->file);
                cr_assert_eq(res.injections, 0, "%s: no injection by hvrec", b->file);
                cr_assert_eq(res.notes[NOTE_BACKEND_RAISED].count, res.deliveries, "%s", b->file);
                cr_assert_eq(res.nviolations, 0, "%s: %zu violations", b->file, res.nviolations);
                for (int c = 0; c < truth.shadowed.n; c++)
                        cr_assert(!corpus_delivered_at(&t, truth.shadowed.addr[c]),
                                  "%s: an interrupt landed at %s", b->file, truth.shadowed.name[c]);
                if (truth.second.n) {
                        /* QEMU drops the second shadow of a sequence: a permitted delivery. */
                        int at_second = 0;

                        for (int c = 0; c < truth.second.n; c++)
                                at_second += corpus_delivered_at(&t, truth.second.addr[c]);
                        cr_assert_gt(at_second, 0, "%s: no delivery after a second_ label",
                                     b->file);
                        cr_assert_gt(res.notes[NOTE_SEQUENCE].count, 0,
                                     "%s: deliveries after the second of a sequence are "
                                     "second-in-sequence notes",
                                     b->file);
                }
                for (size_t d = 0; d < t.ndelivers; d++) {
                        const struct hvt_disk_deliver *dv = &t.delivers[d];
                        const struct hvt_exit *probe = NULL;
                        uint64_t sp = !strcmp(b->mode, "long") ? dv->sp & ~15ull : dv->sp;

                        for (size_t k = 0; k < t.nexits && !probe; k++)
                                if (t.exits[k].e.seq == dv->seq)
                                        probe = &t.exits[k].e;
                        cr_assert(probe, "%s: delivery %zu has no probe exit", b->file, d);
                        cr_assert_eq(dv->handler, isr, "%s: delivery %zu", b->file, d);
                        cr_assert(dv->flags & X86_RFLAGS_IF, "%s: delivery %zu", b->file, d);
                        /* The handler's state, QEMU's, against the frame from b->mem. */
                        cr_assert_eq((probe->st.gpr[4] + frame) & 0xffffffff, sp & 0xffffffff,
                                     "%s: delivery %zu: frame sp 0x%llx, handler sp 0x%llx",
                                     b->file, d, (unsigned long long)dv->sp,
                                     (unsigned long long)probe->st.gpr[4]);
                        cr_assert_eq(probe->st.rflags & 0xffff, dv->flags & ~if_tf & 0xffff,
                                     "%s: delivery %zu", b->file, d);
                }
                check_result_free(&res);
                hv_trace_free(&t);
                hv_proc_free(&p);
        }
}

/*
 * db_movss in every mode: QEMU's own single-step #DBs are delivered where
 * its log says (check_exception), not where Unicorn's lockstep would trap.
 * After MOV SS and POP SS the trap waits for the next instruction (SDM Vol.
 * 3A 6.8.3), at the dbstep_ labels, never at dbshadow_.  After the STI,
 * QEMU holds it one instruction too: it lands after dbstep_sti's NOP, a
 * finding (docs/backends.md) that once lost the lockstep.
 */
Test(qemu_tcg, db_movss_traps_land_where_qemu_delivers_them, .timeout = 120)
{
        static struct corpus_build builds[CORPUS_MAX_BUILDS];
        int n, ran = 0;

        require_qemu();
        n = corpus_builds(builds, CORPUS_MAX_BUILDS);
        for (int i = 0; i < n; i++) {
                const struct corpus_build *b = &builds[i];
                struct corpus_truth truth;
                struct check_result res;
                struct hv_trace t;
                struct hv_proc p;
                uint64_t sti;

                if (strncmp(b->stem, "db_movss", 8))
                        continue;
                ran++;
                corpus_record("qemu-tcg", b, NULL, NULL, &p, &t, &res);
                cr_assert_eq(p.status, 0, "%s: %s", b->file, p.err);
                cr_assert_eq(t.read_err, HVT_END_OF_TRACE, "%s", b->file);
                cr_assert_eq(res.nviolations, 0, "%s: %zu violations", b->file, res.nviolations);
                corpus_labels_of(b->stem, &truth);
                cr_assert_gt(truth.dbstep.n, 0, "%s labels its #DBs", b->file);
                for (int c = 0; c < truth.dbshadow.n; c++)
                        cr_assert(!corpus_delivered_at(&t, truth.dbshadow.addr[c]), "%s: #DB at %s",
                                  b->file, truth.dbshadow.name[c]);
                for (int c = 0; c < truth.dbstep.n; c++) {
                        if (!strcmp(truth.dbstep.name[c], "dbstep_sti"))
                                continue;
                        cr_assert(corpus_delivered_at(&t, truth.dbstep.addr[c]), "%s: no #DB at %s",
                                  b->file, truth.dbstep.name[c]);
                }
                sti = hv_sym(b->stem, "dbstep_sti");
                cr_assert(!corpus_delivered_at(&t, sti), "%s: #DB at dbstep_sti", b->file);
                cr_assert(corpus_delivered_at(&t, sti + 1), "%s: no #DB after dbstep_sti's NOP",
                          b->file);
                check_result_free(&res);
                hv_trace_free(&t);
                hv_proc_free(&p);
        }
        cr_assert_eq(ran, 3, "db_movss's builds: %d", ran);
}

/*
 * db_watch: data breakpoints armed in the guest's DR0/DR7, which QEMU
 * honours and Unicorn does not.  QEMU gives up the reading instruction at
 * the watchpoint and logs it again before its #DB; the lockstep follows
 * that restart and both #DBs are taken (the guest's exit status counts
 * them).  The first lands after the plain read; the second, after
 * MOV SS's read, lands at dbwatch_shadow: QEMU 7.2 does not hold it for
 * the shadow as the SDM (Vol. 3A 6.8.3) says, a finding pinned here.
 */
Test(qemu_tcg, db_watch_data_breakpoints_follow_qemu, .timeout = 60)
{
        const char *trace = hv_tmp("dbwatch.zst");
        const char *argv[] = {
                HVREC, "run", "--backend", "qemu-tcg", "-o", trace, hv_guest_file("db_watch.bin"),
                NULL
        };
        struct hv_trace t;
        struct hv_proc p;

        require_qemu();
        unlink(trace);
        cr_assert_eq(hv_run(argv, &p), 0);
        cr_assert_eq(p.status, 2, "both #DBs taken: status %d: %s", p.status, p.err);
        cr_assert_eq(hv_trace_load(trace, &t), HVT_OK);
        cr_assert_eq(t.ndelivers, 2, "%zu deliveries", t.ndelivers);
        cr_assert_eq(t.delivers[0].ip, hv_sym("db_watch", "dbwatch_plain"), "0x%llx",
                     (unsigned long long)t.delivers[0].ip);
        cr_assert_eq(t.delivers[1].ip, hv_sym("db_watch", "dbwatch_shadow"), "0x%llx",
                     (unsigned long long)t.delivers[1].ip);
        hv_trace_free(&t);
        hv_proc_free(&p);
}

/*
 * A guest that arms an instruction breakpoint in its DR7: the lockstep
 * never runs MOV DRn on Unicorn (which crashes hvrec on it).  Never
 * reached, the run goes on to the guest's exit; reached, QEMU's #DB is a
 * fault before the instruction, which the backend refuses in one line
 * rather than misread as a trap after it.
 */
Test(qemu_tcg, an_instruction_breakpoint_is_refused_never_a_crash, .timeout = 60)
{
        /* mov eax, BP; mov dr0, eax; mov eax, 0x401 (L0, execute); mov dr7, eax;
         * nop x3 (the middle one at 0x1013); mov al, 0; out 0xf4, al; hlt */
        uint8_t code[] = { 0x66, 0xb8, 0x13, 0x10, 0x00, 0x00, 0x0f, 0x23, 0xc0,
                           0x66, 0xb8, 0x01, 0x04, 0x00, 0x00, 0x0f, 0x23, 0xf8,
                           0x90, 0x90, 0x90, 0xb0, 0x00, 0xe6, 0xf4, 0xf4 };
        const char *reached = hv_write_flat("ibp.bin", code, sizeof(code));
        const char *elsewhere;
        struct hv_trace t;
        struct hv_proc p;

        require_qemu();
        hv_record_on("qemu-tcg", reached, NULL, &t, &p);
        cr_assert_eq(p.status, HVREC_STATUS_ERROR, "status %d: %s", p.status, p.err);
        cr_assert(strstr(p.err, "instruction breakpoint armed in the guest's DR7"), "%s", p.err);
        hv_trace_free(&t);
        hv_proc_free(&p);

        code[3] = 0x20; /* DR0 = 0x2013: never reached */
        elsewhere = hv_write_flat("ibp-never.bin", code, sizeof(code));
        hv_record_on("qemu-tcg", elsewhere, NULL, &t, &p);
        cr_assert_eq(p.status, 0, "status %d: %s", p.status, p.err);
        hv_trace_free(&t);
        hv_proc_free(&p);
}

/*
 * The BIOS's protected and long-mode start is hvrec's: every timer guest's
 * paged builds, up to their PIC and PIT programming (exits before the
 * loop at `again`, so before any interrupt), show the same state at every
 * exit as on emu given the same RAM (hvreplay diff: no divergence).
 */
Test(qemu_tcg, paged_start_matches_emu, .timeout = 120)
{
        static struct corpus_build builds[CORPUS_MAX_BUILDS];
        const char *a = hv_tmp("start-qemu.zst"), *e = hv_tmp("start-emu.zst");
        const char *diff[] = { HVREPLAY, "diff", a, e, NULL };
        int n, paged = 0;

        require_qemu();
        hv_require_backend("emu");
        n = corpus_timer_builds(builds, CORPUS_MAX_BUILDS);
        for (int i = 0; i < n; i++) {
                const struct corpus_build *b = &builds[i];
                const char *rec[] = { HVREC,
                                      "run",
                                      "--backend",
                                      NULL,
                                      "--mode",
                                      b->mode,
                                      "--mem",
                                      "2M",
                                      "--max-exits",
                                      "10",
                                      "-o",
                                      NULL,
                                      hv_guest(b->stem),
                                      NULL };
                uint64_t again = hv_sym(b->stem, "again");
                struct hv_trace t;
                struct hv_proc p;

                if (!strcmp(b->mode, "real"))
                        continue;
                paged++;
                for (int k = 0; k < 2; k++) {
                        rec[3] = k ? "emu" : "qemu-tcg";
                        rec[11] = k ? e : a;
                        unlink(rec[11]);
                        cr_assert_eq(hv_run(rec, &p), 0);
                        cr_assert_eq(p.status, HVREC_STATUS_LIMIT, "%s on %s: %s", b->file, rec[3],
                                     p.err);
                        hv_proc_free(&p);
                }
                cr_assert_eq(hv_trace_load(a, &t), HVT_OK);
                for (size_t x = 0; x < t.nexits; x++)
                        cr_assert_lt(t.exits[x].e.st.rip, again, "%s: exit %zu is past the set-up",
                                     b->file, x);
                hv_trace_free(&t);
                cr_assert_eq(hv_run(diff, &p), 0);
                cr_assert_eq(p.status, 0, "%s: hvreplay diff: %s%s", b->file, p.out, p.err);
                cr_assert(strstr(p.out, "no divergence"), "%s: %s", b->file, p.out);
                hv_proc_free(&p);
        }
        cr_assert_gt(paged, 0, "a timer guest is built for protected or long mode");
}
