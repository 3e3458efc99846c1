// SPDX-License-Identifier: MIT
/*
 * hvrec exec: the VMM runs as it would alone (status, output, input, its
 * LD_PRELOAD, every interposed call's result), the trace is valid and ends
 * with a record that says how the VMM ended, and errors are one line with
 * their own status.  The tests that record QEMU on KVM need /dev/kvm and
 * skip without it.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "corpus.h"
#include "helpers.h"

#define EXEC_NOT_FOUND 127
#define EXEC_CANNOT    126

/*
 * hvrec exec -o trace [opts...] -- argv...; opts may be NULL; the trace is
 * loaded into *t when t is not NULL.
 */
static void exec_run_opts(const char *trace, const char *const *opts, const char *const *vmm,
                          struct hv_proc *p, struct hv_trace *t)
{
        const char *argv[64] = { HVREC, "exec", "-o", trace };
        size_t n = 4;

        for (size_t i = 0; opts && opts[i]; i++) {
                cr_assert_lt(n, 62);
                argv[n++] = opts[i];
        }
        argv[n++] = "--";
        for (size_t i = 0; vmm[i]; i++) {
                cr_assert_lt(n, 63);
                argv[n++] = vmm[i];
        }
        argv[n] = NULL;
        unlink(trace);
        cr_assert_eq(hv_run(argv, p), 0);
        if (t)
                cr_assert_eq(hv_trace_load(trace, t), HVT_OK, "trace of %s: %s", vmm[0], p->err);
}

/* hvrec exec -o trace -- argv... */
static void exec_run(const char *trace, const char *const *vmm, struct hv_proc *p,
                     struct hv_trace *t)
{
        exec_run_opts(trace, NULL, vmm, p, t);
}

/* sh -c SCRIPT under hvrec exec. */
static void exec_sh(const char *trace, const char *script, struct hv_proc *p, struct hv_trace *t)
{
        const char *vmm[] = { "/bin/sh", "-c", script, NULL };

        exec_run(trace, vmm, p, t);
}

static void assert_no_vcpu_trace(const struct hv_trace *t, uint32_t why, int status)
{
        cr_assert_eq(t->read_err, HVT_END_OF_TRACE, "the trace is complete: %s", t->message);
        cr_assert(t->have_end, "an end record");
        cr_assert_eq(t->nexits, 0, "no exit: no vCPU ran");
        cr_assert_eq(t->end.why, why, "end why %u", t->end.why);
        cr_assert_eq(t->end.status, status, "end status %d", t->end.status);
        cr_assert_not_null(strstr(t->end_msg, "no vCPU recorded"), "%s", t->end_msg);
        cr_assert_str_eq(t->hdr.str[HVT_STR_BACKEND], "exec");
}

Test(exec, passes_the_vmm_exit_status_on)
{
        static const int codes[] = { 0, 3, 127, 200 };

        for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
                char script[32];
                struct hv_proc p;
                struct hv_trace t;

                snprintf(script, sizeof(script), "exit %d", codes[i]);
                exec_sh(hv_tmp("status.zst"), script, &p, &t);
                cr_assert_eq(p.status, codes[i], "status %d, stderr: %s", p.status, p.err);
                assert_no_vcpu_trace(&t, HVT_END_GUEST_EXIT, codes[i]);
                cr_assert_eq(t.end.detail, (uint32_t)codes[i]);
                hv_trace_free(&t);
                hv_proc_free(&p);
        }
}

Test(exec, a_vmm_killed_by_a_signal_gives_128_plus_n)
{
        static const int sigs[] = { SIGTERM, SIGKILL, SIGSEGV };

        for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
                char script[48];
                struct hv_proc p;
                struct hv_trace t;

                snprintf(script, sizeof(script), "kill -%d $$", sigs[i]);
                exec_sh(hv_tmp("signal.zst"), script, &p, &t);
                cr_assert_eq(p.status, 128 + sigs[i], "signal %d: status %d: %s", sigs[i], p.status,
                             p.err);
                assert_no_vcpu_trace(&t, HVT_END_SIGNAL, 128 + sigs[i]);
                cr_assert_eq(t.end.detail, (uint32_t)sigs[i]);
                hv_trace_free(&t);
                hv_proc_free(&p);
        }
}

Test(exec, the_vmm_output_is_byte_for_byte_its_own)
{
        const char *script = "printf 'out 1\\n'; printf 'err 1\\n' >&2; printf 'out 2'; "
                             "printf 'err 2' >&2";
        const char *direct[] = { "/bin/sh", "-c", script, NULL };
        struct hv_proc alone, p;

        cr_assert_eq(hv_run(direct, &alone), 0);
        exec_sh(hv_tmp("output.zst"), script, &p, NULL);
        cr_assert_eq(p.status, 0, "%s", p.err);
        cr_assert_str_eq(p.out, alone.out);
        cr_assert_str_eq(p.err, alone.err);
        hv_proc_free(&alone);
        hv_proc_free(&p);
}

Test(exec, the_vmm_reads_hvrec_stdin)
{
        char script[1024];
        const char *argv[] = { "/bin/sh", "-c", script, NULL };
        struct hv_proc p;

        snprintf(script, sizeof(script), "printf 'line one\\nline two\\n' | %s exec -o %s -- cat",
                 HVREC, hv_tmp("stdin.zst"));
        cr_assert_eq(hv_run(argv, &p), 0);
        cr_assert_eq(p.status, 0, "%s", p.err);
        cr_assert_str_eq(p.out, "line one\nline two\n");
        hv_proc_free(&p);
}

Test(exec, ld_preload_is_appended_to_the_users)
{
        const char *script = "printf '%s' \"$LD_PRELOAD\"";
        char want[4096];
        struct hv_proc p;

        setenv("LD_PRELOAD", "libm.so.6", 1);
        exec_sh(hv_tmp("preload.zst"), script, &p, NULL);
        unsetenv("LD_PRELOAD");
        snprintf(want, sizeof(want), "libm.so.6:%s", HV_PRELOAD);
        cr_assert_eq(p.status, 0, "%s", p.err);
        cr_assert_str_eq(p.out, want);
        hv_proc_free(&p);

        exec_sh(hv_tmp("preload.zst"), script, &p, NULL);
        cr_assert_str_eq(p.out, HV_PRELOAD, "no LD_PRELOAD of the user's: the library alone");
        hv_proc_free(&p);
}

/*
 * The interposed ioctl, mmap and mmap64 answer for the VMM (the program
 * says so), and each returns what the real call returned, errno included.
 */
Test(exec, interposed_calls_return_what_the_real_ones_return)
{
        const char *direct[] = { HV_EXEC_CALLS, NULL };
        const char *vmm[] = { HV_EXEC_CALLS, "which", NULL };
        struct hv_proc alone, p;
        struct hv_trace t;
        size_t n;

        cr_assert_eq(hv_run(direct, &alone), 0);
        cr_assert_eq(alone.status, 0, "%s", alone.err);
        exec_run(hv_tmp("calls.zst"), vmm, &p, &t);
        cr_assert_eq(p.status, 0, "%s", p.err);
        n = strlen(alone.out);
        cr_assert_eq(strncmp(p.out, alone.out, n), 0, "alone:\n%s\nunder hvrec exec:\n%s",
                     alone.out, p.out);
        cr_assert_str_eq(p.out + n, "ioctl from libhvtpreload.so\n", "%s", p.out);
        cr_assert_str_eq(p.err, "", "the library says nothing: %s", p.err);
        assert_no_vcpu_trace(&t, HVT_END_GUEST_EXIT, 0);
        hv_trace_free(&t);
        hv_proc_free(&alone);
        hv_proc_free(&p);
}

/*
 * A wrapper script that execs the VMM: the VMM is the process hvrec
 * executed (same pid) and must find the trace and status descriptors the
 * library, already loaded in the shell, left open for it.
 */
Test(exec, a_wrapper_script_that_execs_the_vmm_records_the_vmm)
{
        char script[4096];
        struct hv_proc p;
        struct hv_trace t;

        snprintf(script, sizeof(script), "exec '%s' which", HV_EXEC_CALLS);
        exec_sh(hv_tmp("wrapped.zst"), script, &p, &t);
        cr_assert_eq(p.status, 0, "%s", p.err);
        cr_assert_str_eq(p.err, "", "the library set up in the exec'd VMM too: %s", p.err);
        cr_assert_not_null(strstr(p.out, "ioctl from libhvtpreload.so\n"), "%s", p.out);
        assert_no_vcpu_trace(&t, HVT_END_GUEST_EXIT, 0);
        hv_trace_free(&t);
        hv_proc_free(&p);
}

Test(exec, a_program_that_never_opens_kvm_gives_a_trace_with_no_vcpu)
{
        const char *vmm[] = { "true", NULL };
        struct hv_proc p;
        struct hv_trace t;

        exec_run(hv_tmp("nokvm.zst"), vmm, &p, &t);
        cr_assert_eq(p.status, 0, "%s", p.err);
        cr_assert_str_eq(p.err, "");
        assert_no_vcpu_trace(&t, HVT_END_GUEST_EXIT, 0);
        cr_assert_not_null(strstr(t.end_msg, "never ran a KVM vCPU"), "%s", t.end_msg);
        cr_assert_str_eq(t.cmdline, "true", "the VMM's command line: %s", t.cmdline);
        hv_trace_free(&t);
        hv_proc_free(&p);
}

/*
 * hvrec's end of the trace after frames the VMM wrote (a stand-in writes
 * them as the library does, with no KVM): appended to a closed stream, and
 * after a frame a SIGKILL cut short, which hvrec cuts away first.  The
 * stand-in plays the library's part, so the library itself is not loaded.
 */
Test(exec, the_end_record_follows_the_vmm_frames_however_it_ended)
{
        static const struct {
                const char *how;
                int status;
                uint32_t why;
        } runs[] = { { "exit", 5, HVT_END_GUEST_EXIT }, { "kill", 128 + SIGKILL, HVT_END_SIGNAL } };

        for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
                const char *vmm[] = { HV_EXEC_WRITER, "7", runs[i].how, NULL };
                struct hv_proc p;
                struct hv_trace t;

                setenv("HVTRACE_PRELOAD", HV_EXEC_NOP, 1);
                exec_run(hv_tmp("frames.zst"), vmm, &p, &t);
                unsetenv("HVTRACE_PRELOAD");
                cr_assert_eq(p.status, runs[i].status, "%s: status %d: %s", runs[i].how, p.status,
                             p.err);
                cr_assert_eq(t.read_err, HVT_END_OF_TRACE, "%s: complete: %s", runs[i].how,
                             t.message);
                cr_assert_eq(t.nexits, 7, "%s: every exit the frames held", runs[i].how);
                cr_assert_eq(t.end.exits, 7);
                cr_assert_eq(t.end.last_rip, 0x1006);
                cr_assert_eq(t.end.why, runs[i].why);
                cr_assert_eq(t.end.status, runs[i].status);
                cr_assert_null(strstr(t.end_msg, "no vCPU"), "%s", t.end_msg);
                hv_trace_free(&t);
                hv_proc_free(&p);
        }
}

/*
 * --timeout: a VMM still running at the deadline gets SIGTERM, and SIGKILL
 * 5 s later if it is still there; whether it ended on SIGTERM (killed by
 * it, or exiting cleanly as QEMU does), or only on SIGKILL, hvrec exits
 * with 204 and the trace is whole and ends as a timeout.  The VMMs here
 * would run for a minute without the deadline: the suite's Criterion
 * timeout is what fails a deadline that does not stop them.
 */
Test(exec, a_vmm_past_its_timeout_is_stopped_and_the_trace_says_so, .timeout = 60)
{
        static const struct {
                const char *script; /* sh -c SCRIPT: exec'd, so that sh itself is the VMM */
                const char *ended;  /* how the end message says the VMM ended */
                bool killed;        /* SIGTERM was not enough */
        } runs[] = {
                { "exec sleep 60", "the VMM was killed by signal 15", false },
                { "trap 'exit 7' TERM; i=0; while [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done",
                  "the VMM exited with status 7", false },
                { "trap '' TERM; exec sleep 60", "the VMM was killed by signal 9", true },
        };
        const char *opts[] = { "--timeout", "0.5", NULL };

        for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
                const char *vmm[] = { "/bin/sh", "-c", runs[i].script, NULL };
                struct hv_proc p;
                struct hv_trace t;

                exec_run_opts(hv_tmp("timeout.zst"), opts, vmm, &p, &t);
                cr_assert_eq(p.status, HVREC_STATUS_LIMIT, "%s: status %d: %s", runs[i].script,
                             p.status, p.err);
                assert_no_vcpu_trace(&t, HVT_END_TIMEOUT, HVREC_STATUS_LIMIT);
                cr_assert_eq(t.end.detail, 0, "detail is 0 for a timeout, as for hvrec run");
                cr_assert_geq(t.end.wall_ns, 500000000ull, "%s: not before the deadline",
                              runs[i].script);
                cr_assert_not_null(strstr(t.end_msg, "timed out after 0.5 s (--timeout)"), "%s",
                                   t.end_msg);
                cr_assert_not_null(strstr(t.end_msg, runs[i].ended), "%s: %s", runs[i].script,
                                   t.end_msg);
                cr_assert_eq(strstr(t.end_msg, "then SIGKILL 5 s later") != NULL, runs[i].killed,
                             "%s: %s", runs[i].script, t.end_msg);
                cr_assert_not_null(strstr(p.err, "hvrec exec: timed out after 0.5 s"), "%s", p.err);
                hv_trace_free(&t);
                hv_proc_free(&p);
        }
}

/* A VMM that ends before its --timeout ends as it would without one. */
Test(exec, a_vmm_within_its_timeout_ends_as_without_one)
{
        const char *opts[] = { "--timeout", "600", NULL };
        const char *vmm[] = { "/bin/sh", "-c", "exit 3", NULL };
        struct hv_proc p;
        struct hv_trace t;

        exec_run_opts(hv_tmp("intime.zst"), opts, vmm, &p, &t);
        cr_assert_eq(p.status, 3, "status %d: %s", p.status, p.err);
        assert_no_vcpu_trace(&t, HVT_END_GUEST_EXIT, 3);
        cr_assert_null(strstr(t.end_msg, "timed out"), "%s", t.end_msg);
        cr_assert_str_eq(p.err, "");
        hv_trace_free(&t);
        hv_proc_free(&p);
}

/* One stderr line naming the problem, hvrec exec's own status, no trace. */
static void assert_exec_error(const char *const *argv, int status, const char *needle,
                              const char *trace)
{
        struct hv_proc p;
        size_t n;

        if (trace)
                unlink(trace);
        cr_assert_eq(hv_run(argv, &p), 0);
        n = strlen(p.err);
        cr_assert_eq(p.status, status, "status %d, stderr: %s", p.status, p.err);
        cr_assert_gt(n, 0);
        cr_assert_eq(strchr(p.err, '\n'), p.err + n - 1, "one line: %s", p.err);
        cr_assert_eq(strncmp(p.err, "hvrec exec: ", 12), 0, "%s", p.err);
        cr_assert_not_null(strstr(p.err, needle), "mentions '%s': %s", needle, p.err);
        cr_assert_str_eq(p.out, "");
        if (trace)
                cr_assert_neq(access(trace, F_OK), 0, "no trace is left: %s", trace);
        hv_proc_free(&p);
}

Test(exec, a_vmm_not_found_is_one_line_and_127)
{
        const char *trace = hv_tmp("nf.zst");
        const char *a[] = { HVREC, "exec", "-o", trace, "--", "hvt-no-such-vmm", NULL };
        const char *b[] = { HVREC, "exec", "-o", trace, "--", "/nonexistent/qemu", NULL };

        assert_exec_error(a, EXEC_NOT_FOUND, "hvt-no-such-vmm: VMM not found", trace);
        assert_exec_error(b, EXEC_NOT_FOUND, "VMM not found", trace);
}

Test(exec, a_static_vmm_or_one_not_executable_is_one_line_and_126)
{
        const char *trace = hv_tmp("static.zst");
        const char *a[] = { HVREC, "exec", "-o", trace, "--", HV_EXEC_STATIC, NULL };
        const char *b[] = { HVREC, "exec", "-o", trace, "--", HV_SOURCE_DIR "/README.md", NULL };

        assert_exec_error(a, EXEC_CANNOT, "statically linked", trace);
        assert_exec_error(b, EXEC_CANNOT, "not executable", trace);
}

Test(exec, an_output_that_cannot_be_written_is_one_line_and_202)
{
        const char *a[] = { HVREC, "exec", "-o", "/nonexistent/dir/t.zst", "--", "true", NULL };
        const char *b[] = { HVREC, "exec", "-o", "-", "--", "true", NULL };
        const char *c[] = { HVREC, "exec", "-o", HV_SOURCE_DIR, "--", "true", NULL };
        const char *d[] = { HVREC, "exec", "-o", hv_tmp("x.zst"), NULL };
        const char *e[] = { HVREC, "exec", "--bogus", "--", "true", NULL };

        assert_exec_error(a, HVREC_STATUS_ERROR, "cannot create /nonexistent/dir/t.zst", NULL);
        assert_exec_error(b, HVREC_STATUS_ERROR, "-o: not stdout", NULL);
        assert_exec_error(c, HVREC_STATUS_ERROR, "a directory", NULL);
        assert_exec_error(d, HVREC_STATUS_ERROR, "no VMM to run", NULL);
        assert_exec_error(e, HVREC_STATUS_ERROR, "unknown option '--bogus'", NULL);
}

/* --timeout takes what hvrec run's takes: seconds above 0, at most 1e6. */
Test(exec, a_bad_timeout_is_one_line_and_202)
{
        static const char *const bad[] = { "0", "-1", "abc", "1s", "", "nan", "inf", "1e7" };
        const char *trace = hv_tmp("badtimeout.zst");

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                const char *argv[] = { HVREC,  "exec", "-o",   trace, "--timeout",
                                       bad[i], "--",   "true", NULL };
                char needle[64];

                snprintf(needle, sizeof(needle), "--timeout: '%s' is not a number of seconds",
                         bad[i]);
                assert_exec_error(argv, HVREC_STATUS_ERROR, needle, trace);
        }
        {
                const char *argv[] = { HVREC, "exec", "-o", trace, "--timeout", NULL };

                assert_exec_error(argv, HVREC_STATUS_ERROR, "--timeout needs an argument", trace);
        }
}

Test(exec, an_existing_trace_is_kept_as_dot_1)
{
        const char *trace = hv_tmp("kept.zst");
        char kept[4096];
        const char *vmm[] = { "true", NULL };
        struct hv_proc p;
        struct hv_trace t;

        snprintf(kept, sizeof(kept), "%s.1", trace);
        unlink(kept);
        exec_run(trace, vmm, &p, NULL);
        hv_proc_free(&p);
        /* exec_run unlinks the trace first: make it again, then run over it. */
        {
                const char *argv[] = { HVREC, "exec", "-o", trace, "--", "true", NULL };

                cr_assert_eq(hv_run(argv, &p), 0);
        }
        cr_assert_eq(p.status, 0, "%s", p.err);
        cr_assert_not_null(strstr(p.err, "kept the existing"), "%s", p.err);
        cr_assert_eq(hv_trace_load(kept, &t), HVT_OK, "the old trace is whole");
        hv_trace_free(&t);
        hv_proc_free(&p);
}

/* ---- the library's recording, on a fake /dev/kvm (tests/exec/fakekvm.h) ----------- */

/* hvreplay check finds no violation in trace (what: the run, for the message). */
static void assert_check_clean(const char *trace, const char *what)
{
        const char *check[] = { HVREPLAY, "check", trace, NULL };
        struct hv_proc c;

        cr_assert_eq(hv_run(check, &c), 0);
        cr_assert_eq(c.status, 0, "%s: %s%s", what, c.out, c.err);
        hv_proc_free(&c);
}

/*
 * Record the fake VMM's scenario and check the trace: hvreplay check must
 * find it clean.  The library must say nothing on stderr but, when
 * want_err is not NULL, that line exactly once.
 */
static void fake_record_saying(const char *scenario, const char *want_err, struct hv_trace *t)
{
        const char *vmm[] = { HV_EXEC_FAKEVMM, scenario, NULL };
        const char *trace = hv_tmp("fake.zst");
        struct hv_proc p;

        exec_run(trace, vmm, &p, t);
        cr_assert_eq(p.status, 0, "%s: status %d: %s", scenario, p.status, p.err);
        if (want_err) {
                const char *at = strstr(p.err, want_err);

                cr_assert(at && !strstr(at + 1, want_err) &&
                                  strchr(p.err, '\n') == strrchr(p.err, '\n'),
                          "%s: the library says '%s' once, and only that: %s", scenario, want_err,
                          p.err);
        } else {
                cr_assert_str_eq(p.err, "", "%s: the library says nothing: %s", scenario, p.err);
        }
        cr_assert_eq(t->read_err, HVT_END_OF_TRACE, "%s: complete: %s", scenario, t->message);
        assert_check_clean(trace, scenario);
        hv_proc_free(&p);
}

static void fake_record(const char *scenario, struct hv_trace *t)
{
        fake_record_saying(scenario, NULL, t);
}

/* The exit a record names must be an OUT to port. */
static void assert_io_exit(const struct hv_trace *t, uint64_t seq, uint16_t port)
{
        cr_assert_lt(seq, t->nexits);
        cr_assert_eq(t->exits[seq].e.reason, HVT_EXIT_IO, "#%llu", (unsigned long long)seq);
        cr_assert_eq(t->exits[seq].e.u.io.io.port, port, "#%llu: port 0x%x",
                     (unsigned long long)seq, t->exits[seq].e.u.io.io.port);
}

/*
 * The handler starts with the delivery probe: the DELIVER record is the
 * probe's, as under hvrec run (the vector from the IVT, where the frame
 * says the interrupt landed), and the one injection it answers is not
 * also inferred at the entry.  With a run that ended in EINTR before
 * entering between the injection and the delivery, the same.
 */
Test(exec, a_handler_with_the_probe_reports_its_delivery_from_the_frame)
{
        static const char *const scenarios[] = { "probe", "probe-intr" };

        for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
                struct hv_trace t;
                const struct hvt_disk_deliver *d;

                fake_record(scenarios[i], &t);
                cr_assert_eq(t.ninjects, 1, "%s: KVM_INTERRUPT recorded", scenarios[i]);
                cr_assert_eq(t.injects[0].vector, 0x30);
                cr_assert_eq(t.injects[0].handler, 0x500, "the IVT's handler");
                cr_assert_eq(t.ndelivers, 1, "%s: one delivery, the probe's", scenarios[i]);
                d = &t.delivers[0];
                cr_expect_eq(d->vector, 0x30);
                cr_expect_eq(d->vector_from, HVT_VEC_TABLE, "%s: from the IVT", scenarios[i]);
                cr_expect_eq(d->handler, 0x500);
                cr_expect_eq(d->ip, 0x1002, "the interrupted IP, from the frame");
                cr_expect_eq(d->cs, 0);
                cr_expect_eq(d->flags, 0x202);
                cr_expect_eq(d->sp, 0x8000, "SP before the frame was pushed");
                cr_expect_eq(d->frame_bits, 16);
                assert_io_exit(&t, d->seq, 0xe2);
                hv_trace_free(&t);
        }
}

/*
 * An OUT to port 0xE9 is the guest's console: a CONSOLE record after its
 * exit, as hvrec run writes, so that dump shows it and diff compares it.
 */
Test(exec, the_console_port_gives_console_records)
{
        struct hv_trace t;

        fake_record("console", &t);
        assert_io_exit(&t, 0, 0xe9);
        cr_assert_eq(t.console_len, 1, "one console byte: '%s'", t.console);
        cr_assert_str_eq(t.console, "h");
        hv_trace_free(&t);
        fake_record("probe", &t);
        cr_assert_eq(t.console_len, 0, "no console port, no console: '%s'", t.console);
        hv_trace_free(&t);
}

/*
 * A handler without the probe: the library infers the delivery at the
 * entry of the run that followed the injection, naming the exit that
 * ended the run (here the OUT 0xF4 after the handler's IRET, where the
 * vCPU is ready with nothing queued), and check finds it explained.
 */
Test(exec, a_handler_without_the_probe_gets_its_delivery_inferred_at_entry)
{
        struct hv_trace t;
        const struct hvt_disk_deliver *d;

        fake_record("noprobe", &t);
        cr_assert_eq(t.ninjects, 1);
        cr_assert_eq(t.injects[0].vector, 0x31);
        cr_assert_eq(t.ndelivers, 1);
        d = &t.delivers[0];
        cr_expect_eq(d->vector, 0x31);
        cr_expect_eq(d->vector_from, HVT_VEC_INJECTED, "inferred from the injection");
        cr_expect_eq(d->handler, 0x600);
        cr_expect_eq(d->ip, 0x1002, "where the vCPU entered");
        assert_io_exit(&t, d->seq, 0xf4);
        hv_trace_free(&t);
}

/* With paging on, instruction bytes come through the guest's page tables. */
Test(exec, instruction_bytes_are_read_through_the_guest_page_tables)
{
        static const uint8_t jmp_self[] = { 0xeb, 0xfe };
        struct hv_trace t;
        const struct hvt_exit *e;

        fake_record("paged", &t);
        cr_assert_eq(t.nexits, 1);
        e = &t.exits[0].e;
        cr_assert_eq(e->st.rip, 0x400002);
        cr_assert_geq(e->insn_len, 2, "bytes at RIP were read (%u)", e->insn_len);
        cr_expect_eq(memcmp(e->insn, jmp_self, 2), 0, "the bytes of physical 0x4002");
        hv_trace_free(&t);
}

/*
 * Two vCPUs whose runs interleave (vCPU 0, then all of vCPU 1 with an
 * injection and its probe, then the rest of vCPU 0): a version 2 trace in
 * which every record is its own vCPU's, exit numbers machine-wide, the
 * probe's frame read from vCPU 1's stack.
 */
Test(exec, two_vcpus_keep_their_records_apart)
{
        static const uint16_t want_ports[2][3] = { { 0x80, 0xf4 }, { 0x80, 0xe2, 0xf4 } };
        struct hvt_reader *r;
        struct hvt_event ev;
        struct hv_trace t;
        size_t nexits[2] = { 0, 0 }, ninj[2] = { 0, 0 }, ndel[2] = { 0, 0 };

        fake_record("smp", &t);
        cr_assert_eq(t.nexits, 5);
        hv_trace_free(&t);
        cr_assert_eq(hvt_reader_open(&r, hv_tmp("fake.zst")), HVT_OK);
        cr_assert_eq(hvt_reader_vcpus(r), 2, "a version 2 trace of two vCPUs");
        while (hvt_reader_next(r, &ev) == HVT_OK) {
                uint32_t v = hvt_reader_vcpu(r);
                uint64_t sp, base;

                cr_assert_lt(v, 2);
                switch (ev.type) {
                case HVT_REC_EXIT:
                        cr_assert_lt(nexits[v], 3, "vCPU %u: too many exits", v);
                        cr_expect_eq(ev.exit.u.io.io.port, want_ports[v][nexits[v]],
                                     "vCPU %u exit %zu: port 0x%x", v, nexits[v],
                                     ev.exit.u.io.io.port);
                        sp = ev.exit.st.gpr[HVT_F_RSP];
                        base = v ? 0x7000u : 0x8000u;
                        cr_expect(sp <= base && sp > base - 0x100, "vCPU %u's own stack: sp 0x%llx",
                                  v, (unsigned long long)sp);
                        nexits[v]++;
                        break;
                case HVT_REC_INJECT: ninj[v]++; break;
                case HVT_REC_DELIVER:
                        ndel[v]++;
                        cr_expect_eq(ev.deliver.seq, 2, "named by vCPU 1's probe exit, #2");
                        cr_expect_eq(ev.deliver.sp, 0x7000, "vCPU 1's stack");
                        cr_expect_eq(ev.deliver.ip, 0x1002);
                        break;
                default: break;
                }
        }
        hvt_reader_close(r);
        cr_expect_eq(nexits[0], 2);
        cr_expect_eq(nexits[1], 3);
        cr_expect(ninj[0] == 0 && ninj[1] == 1, "the injection is vCPU 1's: %zu, %zu", ninj[0],
                  ninj[1]);
        cr_expect(ndel[0] == 0 && ndel[1] == 1, "the delivery is vCPU 1's: %zu, %zu", ndel[0],
                  ndel[1]);
}

/*
 * A VMM that uses sync regs itself (regs only, written back dirty before
 * every run): the library adds the register sets it needs to the valid
 * mask for the run and gives the VMM its own mask back, and never marks
 * anything dirty, so KVM loads only what the VMM wrote.  The VMM checks
 * both at every exit (statuses 103-105); the trace has the registers the
 * VMM wrote, as KVM ran them.
 */
Test(exec, a_vmm_that_syncs_its_own_registers_keeps_its_masks)
{
        struct hv_trace t;

        fake_record("vmm-sync", &t);
        cr_assert_eq(t.nexits, 3);
        for (size_t i = 0; i < t.nexits; i++)
                cr_expect_eq(t.exits[i].e.st.gpr[HVT_F_RBX], 0x1000 + i,
                             "exit %zu: the RBX the VMM wrote (0x%llx)", i,
                             (unsigned long long)t.exits[i].e.st.gpr[HVT_F_RBX]);
        cr_expect_eq(t.ndelivers, 1);
        hv_trace_free(&t);
}

/* A KVM without KVM_CAP_SYNC_REGS: said once, and the state read with the GET ioctls. */
Test(exec, without_sync_regs_the_state_comes_from_the_get_ioctls)
{
        static const uint64_t rips[] = { 0x1002, 0x502, 0x1006 };
        struct hv_trace t;

        setenv("HVT_FAKEKVM_NOSYNC", "1", 1);
        fake_record_saying("probe", "KVM has no KVM_CAP_SYNC_REGS", &t);
        unsetenv("HVT_FAKEKVM_NOSYNC");
        cr_assert_eq(t.nexits, 3);
        for (size_t i = 0; i < t.nexits; i++)
                cr_expect_eq(t.exits[i].e.st.rip, rips[i], "exit %zu: rip 0x%llx", i,
                             (unsigned long long)t.exits[i].e.st.rip);
        cr_assert_eq(t.ndelivers, 1);
        cr_expect_eq(t.delivers[0].ip, 0x1002, "the frame, read with the state from KVM_GET_REGS");
        cr_expect_eq(t.delivers[0].vector_from, HVT_VEC_TABLE);
        hv_trace_free(&t);
}

/* ---- on KVM: QEMU's own command line, recorded ---------------------------------- */

/*
 * The QEMU command line of docs/backends.md ("record your own QEMU command
 * line") for a real-mode guest loaded at 0x1000, with the project's BIOS.
 */
static void qemu_argv(const char **argv, size_t max, const char *guest, const char *irqchip,
                      const char *smp, char *machine, size_t mlen, char *loader, size_t llen)
{
        const char *v[] = { "qemu-system-x86_64",
                            "-nodefaults",
                            "-display",
                            "none",
                            "-M",
                            machine,
                            "-no-reboot",
                            "-m",
                            "16",
                            "-accel",
                            "kvm",
                            "-smp",
                            smp,
                            "-bios",
                            HV_BUILD_DIR "/guests/hvt_bios.bin",
                            "-device",
                            "isa-debug-exit,iobase=0xf4,iosize=1",
                            "-device",
                            loader,
                            NULL };

        cr_assert_lt(sizeof(v) / sizeof(v[0]), max);
        snprintf(machine, mlen, "pc,kernel_irqchip=%s", irqchip);
        snprintf(loader, llen, "loader,file=%s,addr=0x1000,force-raw=on", guest);
        memcpy(argv, v, sizeof(v));
}

static void require_kvm_qemu(void)
{
        char why[256];

        if (!hv_have_kvm(why, sizeof(why)))
                cr_skip_test("needs /dev/kvm: %s", why);
        if (!hv_have_qemu())
                cr_skip_test("needs qemu-system-x86_64 (Debian package qemu-system-x86)");
}

/*
 * Every QEMU run is bounded by hvrec exec --timeout, so that a guest that
 * hangs under QEMU fails its test with the guest and irqchip named instead
 * of running into Criterion's timeout with nothing said.  A test shares
 * three quarters of its Criterion timeout among its runs; the rest covers
 * hvrec's grace after each deadline, QEMU's start and hvreplay check.  The
 * runs used to share the whole Criterion timeout unbounded, so each gets
 * most of what it had.
 */
#define QEMU_GRACE_S   5    /* hvrec exec's, between SIGTERM and SIGKILL */
#define QEMU_RUN_MAX_S 180  /* no one run gets more */
#define TIMER_TEST_S   1200 /* qemu_kvm_timer_guests_check_clean_on_every_irqchip */
#define SMP_TEST_S     300  /* qemu_kvm_with_two_vcpus_gives_a_two_vcpu_trace */
#define DIFF_TEST_S    300  /* qemu_kvm_and_hvrec_kvm_record_hello_the_same */

/* The --timeout of each of the runs QEMU runs of a test whose Criterion timeout is test_s. */
static double qemu_run_budget(int test_s, int runs)
{
        double s;

        cr_assert_gt(runs, 0, "no QEMU run to bound");
        s = (double)test_s * 3 / 4 / runs - QEMU_GRACE_S;
        cr_assert_geq(s, 10, "%d QEMU runs do not fit in a %d s test: raise its .timeout", runs,
                      test_s);
        return s < QEMU_RUN_MAX_S ? s : QEMU_RUN_MAX_S;
}

/*
 * Record guest under QEMU KVM, stopped after budget_s seconds, and check
 * the trace, which must hold the deliveries the guest's probe saw (on
 * every irqchip: the library reads them at the probe's exit) and check
 * clean.
 */
static void record_and_check(const char *guest, const char *irqchip, const char *smp,
                             double budget_s, struct hv_trace *t)
{
        const char *argv[32];
        char machine[64], loader[4096], limit[32], what[4200];
        const char *trace = hv_tmp("qemu-kvm.zst");
        const char *opts[] = { "--timeout", limit, NULL };
        struct hv_proc p;

        qemu_argv(argv, 32, guest, irqchip, smp, machine, sizeof(machine), loader, sizeof(loader));
        snprintf(limit, sizeof(limit), "%g", budget_s);
        exec_run_opts(trace, opts, argv, &p, NULL);
        if (p.status == HVREC_STATUS_LIMIT && strstr(guest, "stress")) {
                /*
                 * A stress guest counts to 100,000 deliveries of a PIT every
                 * 8 us: with QEMU's own PIT and PIC (kernel_irqchip=off) on a
                 * slow KVM that takes longer than the budget.  Judge what it
                 * recorded, which must be many deliveries and whole.
                 */
                cr_assert_eq(hv_trace_load(trace, t), HVT_OK, "%s on kernel_irqchip=%s: trace",
                             guest, irqchip);
                cr_assert_geq(t->ndelivers, 1000,
                              "%s on kernel_irqchip=%s: stopped after %s s with only %zu "
                              "deliveries: %s",
                              guest, irqchip, limit, t->ndelivers, p.err);
                cr_log_info("%s on kernel_irqchip=%s: stopped after %s s (--timeout), %zu "
                            "deliveries recorded",
                            guest, irqchip, limit, t->ndelivers);
                goto check;
        }
        cr_assert_neq(p.status, HVREC_STATUS_LIMIT,
                      "%s on kernel_irqchip=%s, -smp %s: QEMU still running after %s s, stopped "
                      "by hvrec exec --timeout: %s",
                      guest, irqchip, smp, limit, p.err);
        /* isa-debug-exit: QEMU exits with 2 * the guest's status + 1. */
        cr_assert_eq(p.status, 1, "%s on kernel_irqchip=%s: QEMU status %d: %s", guest, irqchip,
                     p.status, p.err);
        cr_assert_eq(hv_trace_load(trace, t), HVT_OK, "%s on kernel_irqchip=%s: trace: %s", guest,
                     irqchip, p.err);
        cr_assert_gt(t->nexits, 0, "%s: exits recorded", guest);
        /* The guest's handler starts with the probe: its deliveries are in the trace. */
        cr_assert_gt(t->ndelivers, 0, "%s on kernel_irqchip=%s: no delivery recorded", guest,
                     irqchip);
check:
        snprintf(what, sizeof(what), "%s on kernel_irqchip=%s", guest, irqchip);
        assert_check_clean(trace, what);
        hv_proc_free(&p);
}

/* Every real-mode PIC/PIT corpus guest, on each of QEMU's irqchip placements. */
Test(exec, qemu_kvm_timer_guests_check_clean_on_every_irqchip, .timeout = TIMER_TEST_S)
{
        static const char *const chips[] = { "off", "split", "on" };
        static struct corpus_build builds[CORPUS_MAX_BUILDS];
        const size_t nchips = sizeof(chips) / sizeof(chips[0]);
        double budget;
        int n, runs = 0;

        require_kvm_qemu();
        n = corpus_timer_builds(builds, CORPUS_MAX_BUILDS);
        for (int i = 0; i < n; i++)
                if (!strcmp(builds[i].mode, "real"))
                        runs += (int)nchips;
        budget = qemu_run_budget(TIMER_TEST_S, runs);
        for (int i = 0; i < n; i++) {
                if (strcmp(builds[i].mode, "real"))
                        continue;
                for (size_t c = 0; c < nchips; c++) {
                        struct hv_trace t;

                        record_and_check(hv_guest_file(builds[i].file), chips[c], "1", budget, &t);
                        cr_assert_eq(t.hdr.h.entry, 0xfff0,
                                     "the first exit's vCPU started at "
                                     "the reset vector");
                        hv_trace_free(&t);
                }
        }
}

Test(exec, qemu_kvm_with_two_vcpus_gives_a_two_vcpu_trace, .timeout = SMP_TEST_S)
{
        static struct corpus_build builds[CORPUS_MAX_BUILDS];
        int n;

        require_kvm_qemu();
        n = corpus_timer_builds(builds, CORPUS_MAX_BUILDS);
        for (int i = 0; i < n; i++) {
                struct hvt_reader *r;
                struct hvt_event ev;
                struct hv_trace t;
                uint64_t per_vcpu[2] = { 0, 0 };

                if (strcmp(builds[i].mode, "real"))
                        continue;
                /* One run: the first real-mode guest. */
                record_and_check(hv_guest_file(builds[i].file), "off", "2",
                                 qemu_run_budget(SMP_TEST_S, 1), &t);
                cr_assert_eq(t.hdr.h.mem_size, 16u << 20, "RAM from 0 is QEMU's -m");
                hv_trace_free(&t);
                cr_assert_eq(hvt_reader_open(&r, hv_tmp("qemu-kvm.zst")), HVT_OK);
                cr_assert_eq(hvt_reader_vcpus(r), 2, "a version 2 trace of two vCPUs");
                while (hvt_reader_next(r, &ev) == HVT_OK)
                        if (ev.type == HVT_REC_EXIT && hvt_reader_vcpu(r) < 2)
                                per_vcpu[hvt_reader_vcpu(r)]++;
                hvt_reader_close(r);
                /* The second vCPU waits for a SIPI that never comes: it may never exit. */
                cr_assert_gt(per_vcpu[0], 0, "vCPU 0's exits");
                break;
        }
}

/*
 * The same guest recorded by hvrec run on its kvm backend and under QEMU
 * KVM: hvreplay diff leaves out what is QEMU's (the BIOS's memory and
 * exits, QEMU's exit status) and compares everything the guest did, exit
 * by exit.  hello takes no interrupt, so nothing may differ.  With
 * kernel_irqchip=off QEMU's LAPIC is in userspace and the BIOS's writes to
 * it are MMIO exits: the firmware's exits that diff leaves out.
 */
Test(exec, qemu_kvm_and_hvrec_kvm_record_hello_the_same, .timeout = DIFF_TEST_S)
{
        static const char *const chips[] = { "off", "on" };
        const char *own = hv_tmp("hvrec-kvm.zst"), *rec = hv_tmp("rec.zst");
        const char *kvm[] = { "--backend", "kvm", NULL };
        double budget;
        struct hv_trace t;
        struct hv_proc p;

        require_kvm_qemu();
        budget = qemu_run_budget(DIFF_TEST_S, 2);
        cr_assert_eq(hv_record("hello", kvm, &t, &p), 7, "hello on hvrec's kvm: %s", p.err);
        hv_trace_free(&t);
        hv_proc_free(&p);
        cr_assert_eq(rename(rec, own), 0, "%s: %s", rec, strerror(errno));
        for (size_t c = 0; c < 2; c++) {
                const char *argv[32], *trace = hv_tmp("qemu-kvm.zst");
                char machine[64], loader[4096], limit[32];
                const char *opts[] = { "--timeout", limit, NULL };
                const char *diff[] = { HVREPLAY, "diff", own, trace, NULL };
                const char *json[] = { HVREPLAY, "diff", "--json", own, trace, NULL };

                qemu_argv(argv, 32, hv_guest_file("hello"), chips[c], "1", machine, sizeof(machine),
                          loader, sizeof(loader));
                snprintf(limit, sizeof(limit), "%g", budget);
                exec_run_opts(trace, opts, argv, &p, NULL);
                /* isa-debug-exit: 2 * 7 + 1. */
                cr_assert_eq(p.status, 15, "hello under QEMU KVM, kernel_irqchip=%s: status %d: %s",
                             chips[c], p.status, p.err);
                hv_proc_free(&p);
                cr_assert_eq(hv_run(diff, &p), 0);
                cr_assert_eq(p.status, 0, "kernel_irqchip=%s: hvreplay diff status %d:\n%s%s",
                             chips[c], p.status, p.out, p.err);
                cr_assert(strstr(p.out, "b is a VMM's trace (hvrec exec)") != NULL, "%s", p.out);
                hv_proc_free(&p);
                cr_assert_eq(hv_run(json, &p), 0);
                cr_assert_eq(p.status, 0, "%s%s", p.out, p.err);
                if (!strcmp(chips[c], "off"))
                        cr_assert(strstr(p.out, "\"firmware_b\":0,") == NULL,
                                  "kernel_irqchip=off: the BIOS's LAPIC writes are exits that "
                                  "diff leaves out: %s",
                                  p.out);
                hv_proc_free(&p);
        }
}
