// SPDX-License-Identifier: MIT
/*
 * hvreplay run and hvreplay reduce.  Traces are recorded here on the emu
 * backend (the sample traces in traces/ were recorded on KVM: their
 * guests and options are recorded again on emu), replayed, and the replay
 * compared and checked.  The KVM cases skip without /dev/kvm.
 */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "corpus.h"
#include "helpers.h"

/* hvreplay with args (NULL-terminated) into *p; returns its status. */
static int replay(const char *const *args, struct hv_proc *p)
{
        const char *argv[32] = { HVREPLAY };
        int n = 1;

        for (; *args && n < 31; args++)
                argv[n++] = *args;
        argv[n] = NULL;
        return hv_run(argv, p);
}

/* Replay trace on its backend; fail the test unless it reproduces. */
static void assert_reproduces(const char *what, const char *trace)
{
        const char *args[] = { "run", trace, NULL };
        struct hv_proc p;

        replay(args, &p);
        cr_assert_eq(p.status, 0, "%s: replay status %d\n%s%s", what, p.status, p.out, p.err);
        cr_assert(strstr(p.out, "no divergence"), "%s: %s", what, p.out);
        cr_assert(strstr(p.err, "exits/s"), "%s: no replay rate: %s", what, p.err);
        hv_proc_free(&p);
}

/* ---- the sample traces, recorded again on emu ------------------------------------- */

/*
 * The options a sample trace was recorded with, for emu: its argv after
 * "run" without -o, --backend and --timeout, then a short --timeout (the
 * PIT guests wait for a timer emu does not have).  The guest's file name
 * goes to *guest.
 */
static void sample_args(const struct hv_trace *t, const char **args, char *store, size_t len,
                        const char **guest)
{
        int n = 0;

        snprintf(store, len, "%s", t->cmdline);
        for (char *tok = strtok(store, " "); tok && n < 60; tok = strtok(NULL, " ")) {
                if (!strcmp(tok, "-o") || !strcmp(tok, "--backend") || !strcmp(tok, "--timeout")) {
                        strtok(NULL, " ");
                        continue;
                }
                if (strstr(tok, "hvrec") || !strcmp(tok, "run"))
                        continue;
                args[n++] = tok;
        }
        cr_assert_gt(n, 0, "no guest in '%s'", t->cmdline);
        *guest = strrchr(args[n - 1], '/') ? strrchr(args[n - 1], '/') + 1 : args[n - 1];
        args[n - 1] = "--timeout";
        args[n++] = "3";
        args[n] = NULL;
}

Test(replay, sample_traces_recorded_on_emu_replay_exactly, .timeout = 600)
{
        DIR *d = opendir(HV_SOURCE_DIR "/traces");
        struct dirent *de;
        int count = 0;

        hv_require_backend("emu");
        cr_assert_not_null(d);
        while ((de = readdir(d))) {
                char path[1024], store[2048], what[1100];
                const char *args[64], *guest;
                struct hv_trace t, r;
                struct hv_proc p;

                if (!strstr(de->d_name, ".zst"))
                        continue;
                snprintf(path, sizeof(path), "%s/traces/%s", HV_SOURCE_DIR, de->d_name);
                cr_assert_eq(hv_trace_load(path, &t), 0, "%s", path);
                sample_args(&t, args, store, sizeof(store), &guest);
                hv_record_on("emu", guest, args, &r, &p);
                cr_assert_gt(r.nexits, 0, "%s on emu: no exit: %s", de->d_name, p.err);
                snprintf(what, sizeof(what), "%s (%s, on emu)", de->d_name, t.cmdline);
                assert_reproduces(what, hv_tmp("rec.zst"));
                hv_proc_free(&p);
                hv_trace_free(&r);
                hv_trace_free(&t);
                count++;
        }
        closedir(d);
        cr_assert_gt(count, 0);
}

/*
 * The sample traces as recorded on KVM, replayed on emu: the guest's I/O,
 * steps, kicks and injections found again on another backend.  Three
 * cannot be: the in-kernel PIT's interrupts are nowhere in a trace, and
 * this machine's KVM failed at a 32-bit IRET that emu runs.
 */
Test(replay, kvm_sample_traces_replay_on_emu, .timeout = 600)
{
        static const char *const same[] = { "demo",
                                            "hello",
                                            "movss-sti-eager-step",
                                            "movss-sti-l64-eager-step",
                                            "movss-sti-window",
                                            "not-ready-blind",
                                            "sti-if-set-eager-step",
                                            "stress-eager-kick" };
        static const char *const differ[] = { "sti-hlt-p32-eager-step", "stress-pit-irqchip-real",
                                              "stress-pit-irqchip-l64" };

        hv_require_backend("emu");
        for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
                char path[1024];
                const char *args[] = { "run", "--backend", "emu", path, NULL };
                struct hv_proc p;

                snprintf(path, sizeof(path), "%s/traces/%s.zst", HV_SOURCE_DIR, same[i]);
                replay(args, &p);
                cr_assert_eq(p.status, 0, "%s on emu: status %d\n%s%s", same[i], p.status, p.out,
                             p.err);
                hv_proc_free(&p);
        }
        for (size_t i = 0; i < sizeof(differ) / sizeof(differ[0]); i++) {
                char path[1024];
                const char *args[] = { "run", "--backend", "emu", path, NULL };
                struct hv_proc p;

                snprintf(path, sizeof(path), "%s/traces/%s.zst", HV_SOURCE_DIR, differ[i]);
                replay(args, &p);
                cr_assert_eq(p.status, 1, "%s on emu: status %d\n%s%s", differ[i], p.status, p.out,
                             p.err);
                cr_assert(strstr(p.out, "diverged: first at"), "%s", p.out);
                hv_proc_free(&p);
        }
}

/* ---- the corpus, with injections -------------------------------------------------- */

/*
 * Under ASan and UBSan every fourth build: the sanitizers look for memory
 * errors, which the sample finds as well, at a quarter of ten minutes.  The
 * plain pass replays every build.
 */
#ifdef HV_SANITIZED
#define CORPUS_STRIDE 4
#else
#define CORPUS_STRIDE 1
#endif

/* Every corpus build under its corpus-run options and the given extra ones replays exactly. */
static void corpus_replays(const char *const *extra, const char *opts_key)
{
        static struct corpus_build b[CORPUS_MAX_BUILDS];
        int n = corpus_builds(b, CORPUS_MAX_BUILDS);
        uint64_t injections = 0;

        for (int i = 0; i < n; i += CORPUS_STRIDE) {
                char *opts = corpus_source_line(b[i].src, opts_key);
                struct check_result res;
                struct hv_trace t;
                struct hv_proc p;
                char what[512];

                corpus_record("emu", &b[i], extra, opts, &p, &t, &res);
                snprintf(what, sizeof(what), "%s (%s mode, %s)", b[i].file, b[i].mode,
                         opts ? opts : "no options");
                injections += t.ninjects;
                assert_reproduces(what, hv_tmp("rec.zst"));
                check_result_free(&res);
                hv_trace_free(&t);
                hv_proc_free(&p);
                free(opts);
        }
        cr_assert_gt(injections, 0, "the corpus runs injected nothing");
}

Test(replay, corpus_runs_replay_exactly, .timeout = 900)
{
        hv_require_backend("emu");
        corpus_replays(NULL, "corpus-run");
}

Test(replay, corpus_eager_single_step_runs_replay_exactly, .timeout = 900)
{
        static const char *const eager[] = { "--single-step", "--inject", "eager", NULL };

        hv_require_backend("emu");
        corpus_replays(eager, "corpus-eager");
}

/* ---- kicks: the hard case ---------------------------------------------------------- */

/* The number in "N breakpoint stops" of a replay's summary line. */
static unsigned long breakpoint_stops(const char *err)
{
        const char *s = strstr(err, " breakpoint stops");

        cr_assert_not_null(s, "no breakpoint count in: %s", err);
        while (s > err && s[-1] >= '0' && s[-1] <= '9')
                s--;
        return strtoul(s, NULL, 10);
}

Test(replay, kicked_eager_stress_replays_every_kick_at_its_boundary, .timeout = 600)
{
        static const char *const args[] = { "--kick",      "20:0x30", "--inject", "eager",
                                            "--max-exits", "30000",   NULL };
        const char *replayed = hv_tmp("kick.replay.zst");
        const char *run[] = { "run", hv_tmp("rec.zst"), "-o", replayed, NULL };
        const char *strict[] = { "diff", "--ignore-reason", "", hv_tmp("rec.zst"), replayed, NULL };
        struct hv_trace t, r;
        struct hv_proc p, q;
        size_t kicks = 0;

        hv_require_backend("emu");
        hv_record_on("emu", "stress", args, &t, &p);
        for (size_t i = 0; i < t.nexits; i++)
                kicks += t.exits[i].e.reason == HVT_EXIT_INTR;
        cr_assert_geq(t.ndelivers, 1000, "only %zu deliveries", t.ndelivers);
        cr_assert_gt(kicks, 100, "only %zu kick exits", kicks);
        unlink(replayed);
        replay(run, &q);
        cr_assert_eq(q.status, 0, "status %d\n%s%s", q.status, q.out, q.err);
        /* The replay never kicks: every kick exit was found by breakpoint and registers. */
        cr_assert_gt(breakpoint_stops(q.err), 0, "%s", q.err);
        hv_proc_free(&q);
        /* Kick and window exits too, which diff leaves out by default, at the same boundaries. */
        replay(strict, &q);
        cr_assert_eq(q.status, 0, "%s", q.out);
        cr_assert_eq(hv_trace_load(replayed, &r), HVT_OK);
        cr_assert_eq(r.nexits, t.nexits);
        cr_assert_eq(r.ndelivers, t.ndelivers);
        for (size_t i = 0; i < t.ndelivers; i++)
                cr_assert(t.delivers[i].seq == r.delivers[i].seq &&
                                  t.delivers[i].ip == r.delivers[i].ip &&
                                  t.delivers[i].vector == r.delivers[i].vector,
                          "delivery %zu: #%" PRIu64 " ip 0x%" PRIx64 " vs #%" PRIu64
                          " ip 0x%" PRIx64,
                          i, t.delivers[i].seq, t.delivers[i].ip, r.delivers[i].seq,
                          r.delivers[i].ip);
        hv_trace_free(&r);
        hv_trace_free(&t);
        hv_proc_free(&q);
        hv_proc_free(&p);
}

/* ---- --inject and reduce ------------------------------------------------------------ */

/* hvreplay check's status on a trace. */
static int check_status(const char *trace)
{
        const char *args[] = { "check", trace, NULL };
        struct hv_proc p;
        int st;

        replay(args, &p);
        st = p.status;
        hv_proc_free(&p);
        return st;
}

Test(replay, eager_demo_replayed_with_window_checks_clean, .timeout = 300)
{
        static const char *const eager[] = { "--single-step", "--inject", "eager", NULL };
        const char *w = hv_tmp("demo.window.zst"), *e = hv_tmp("demo.eager.zst");
        const char *run_w[] = { "run", "--inject", "window", hv_tmp("rec.zst"), "-o", w, NULL };
        const char *run_e[] = { "run", "--inject", "eager", hv_tmp("rec.zst"), "-o", e, NULL };
        struct hv_trace t;
        struct hv_proc p, q;

        hv_require_backend("emu");
        hv_record_on("emu", "demo", eager, &t, &p);
        cr_assert_eq(check_status(hv_tmp("rec.zst")), 1, "the eager demo shows no violation");
        unlink(w);
        replay(run_w, &q);
        cr_assert_eq(q.status, 0, "status %d\n%s%s", q.status, q.out, q.err);
        cr_assert(strstr(q.out, " 0 violations"), "%s", q.out);
        cr_assert_eq(check_status(w), 0);
        hv_proc_free(&q);
        /* The same policy again: the violation again. */
        unlink(e);
        replay(run_e, &q);
        cr_assert_eq(q.status, 1, "status %d\n%s%s", q.status, q.out, q.err);
        cr_assert_eq(check_status(e), 1);
        hv_proc_free(&q);
        hv_trace_free(&t);
        hv_proc_free(&p);
}

Test(replay, reduce_shrinks_the_eager_demo_and_keeps_its_violation, .timeout = 300)
{
        static const char *const eager[] = { "--single-step", "--inject", "eager", NULL };
        const char *small = hv_tmp("small.zst");
        const char *args[] = { "reduce", "-q", hv_tmp("rec.zst"), "-o", small, NULL };
        struct hv_trace t, s;
        struct hv_proc p, q;

        hv_require_backend("emu");
        hv_record_on("emu", "demo", eager, &t, &p);
        unlink(small);
        replay(args, &q);
        cr_assert_eq(q.status, 0, "status %d\n%s%s", q.status, q.out, q.err);
        cr_assert(strstr(q.out, "confirmed by re-execution"), "%s", q.out);
        cr_assert_eq(hv_trace_load(small, &s), HVT_OK);
        cr_assert_leq(s.nexits, 72, "%zu exits (from %zu)", s.nexits, t.nexits);
        cr_assert_lt(s.nexits, t.nexits);
        cr_assert_eq(check_status(small), 1, "the reduced trace lost the violation");
        assert_reproduces("the reduced demo", small);
        hv_trace_free(&s);
        hv_trace_free(&t);
        hv_proc_free(&q);
        hv_proc_free(&p);
}

/* ---- a changed input ---------------------------------------------------------------- */

/* Copy trace `from` to `to`, the data of IN exit `seq` replaced by value. */
static void write_with_in(const char *from, const char *to, uint64_t seq, uint8_t value)
{
        struct hvt_reader *r;
        struct hvt_writer *w;
        struct hvt_event ev;
        uint8_t data[4096];
        int err;

        cr_assert_eq(hvt_reader_open(&r, from), 0);
        unlink(to);
        cr_assert_eq(hvt_writer_open(&w, to, NULL), 0);
        while ((err = hvt_reader_next(r, &ev)) == HVT_OK) {
                if (ev.type == HVT_REC_EXIT && ev.exit.seq == seq) {
                        size_t n = (size_t)ev.exit.u.io.io.size * ev.exit.u.io.io.count;

                        cr_assert(n && n <= sizeof(data));
                        memset(data, value, n);
                        ev.exit.u.io.data = data;
                }
                cr_assert_eq(hvt_write_event(w, &ev), 0);
        }
        cr_assert_eq(err, HVT_END_OF_TRACE);
        cr_assert_eq(hvt_writer_close(w), 0);
        hvt_reader_close(r);
}

Test(replay, an_altered_in_value_diverges_at_the_next_exit, .timeout = 120)
{
        /* in al, 0x60; out 0xe9, al; mov al, 0; out 0xf4, al; hlt: what IN reads is printed. */
        static const uint8_t code[] = { 0xe4, 0x60, 0xe6, 0xe9, 0xb0, 0x00, 0xe6, 0xf4, 0xf4 };
        const char *guest = hv_write_elf("in.elf", 32, 3, 0x1000, code, sizeof(code));
        const char *altered = hv_tmp("altered.zst");
        const char *args[] = { "run", altered, NULL };
        struct hv_trace t;
        struct hv_proc p, q;
        char want[64];
        size_t k = 0;

        hv_require_backend("emu");
        hv_record_on("emu", guest, NULL, &t, &p);
        while (k + 1 < t.nexits &&
               !(t.exits[k].e.reason == HVT_EXIT_IO && t.exits[k].e.u.io.io.dir == HVT_IO_IN))
                k++;
        cr_assert_lt(k + 1, t.nexits, "no IN exit followed by another exit");
        cr_assert_neq(t.exits[k].e.u.io.data[0], 0x5a);
        /* Unaltered, it replays; with another value read, the next exit shows it. */
        assert_reproduces("the IN guest", hv_tmp("rec.zst"));
        write_with_in(hv_tmp("rec.zst"), altered, t.exits[k].e.seq, 0x5a);
        replay(args, &q);
        cr_assert_eq(q.status, 1, "status %d\n%s%s", q.status, q.out, q.err);
        snprintf(want, sizeof(want), "diverged: first at a#%" PRIu64 " b#%" PRIu64,
                 t.exits[k + 1].e.seq, t.exits[k + 1].e.seq);
        cr_assert(strstr(q.out, want), "want '%s' in:\n%s", want, q.out);
        hv_proc_free(&q);
        hv_trace_free(&t);
        hv_proc_free(&p);
}

/* ---- a stop the replay cannot reach --------------------------------------------------- */

/* Copy trace `from` to `to`, RCX at the first kick exit set to rcx: a state the guest never has. */
static uint64_t write_with_kick_rcx(const char *from, const char *to, uint64_t rcx)
{
        struct hvt_reader *r;
        struct hvt_writer *w;
        struct hvt_event ev;
        uint64_t seq = UINT64_MAX;
        int err;

        cr_assert_eq(hvt_reader_open(&r, from), 0);
        unlink(to);
        cr_assert_eq(hvt_writer_open(&w, to, NULL), 0);
        while ((err = hvt_reader_next(r, &ev)) == HVT_OK) {
                if (ev.type == HVT_REC_EXIT && ev.exit.reason == HVT_EXIT_INTR &&
                    seq == UINT64_MAX) {
                        seq = ev.exit.seq;
                        ev.exit.st.gpr[HVT_F_RCX] = rcx;
                }
                cr_assert_eq(hvt_write_event(w, &ev), 0);
        }
        cr_assert_eq(err, HVT_END_OF_TRACE);
        cr_assert_eq(hvt_writer_close(w), 0);
        hvt_reader_close(r);
        cr_assert_neq(seq, UINT64_MAX, "the recording has no kick exit");
        return seq;
}

/* Record code (a loop) on emu with kicks, the first kick's RCX made unreachable. */
static void record_unreachable_kick(const char *name, const uint8_t *code, size_t len,
                                    const char *altered)
{
        static const char *const args[] = { "--kick", "200", "--max-exits", "20", NULL };
        const char *guest = hv_write_elf(name, 32, 3, 0x1000, code, len);
        struct hv_trace t;
        struct hv_proc p;

        hv_require_backend("emu");
        hv_record_on("emu", guest, args, &t, &p);
        hv_trace_free(&t);
        hv_proc_free(&p);
        write_with_kick_rcx(hv_tmp("rec.zst"), altered, 0x5a5a5a5a);
}

/* Replay such a recording of code with --timeout; it must end as a divergence saying want. */
static void replay_unreachable_kick(const char *name, const uint8_t *code, size_t len,
                                    const char *timeout, const char *want)
{
        const char *altered = hv_tmp("altered-kick.zst");
        const char *args[] = { "run", "--timeout", timeout, altered, NULL };
        struct hv_proc q;

        record_unreachable_kick(name, code, len, altered);
        replay(args, &q);
        cr_assert_eq(q.status, 1, "status %d\n%s%s", q.status, q.out, q.err);
        cr_assert(strstr(q.err, want), "want '%s' in: %s", want, q.err);
        hv_proc_free(&q);
}

Test(replay, a_stop_in_a_loop_that_never_changes_ends_as_no_progress, .timeout = 300)
{
        /* xor ecx, ecx; l: jmp l: every breakpoint stop at l has RCX 0. */
        static const uint8_t code[] = { 0x31, 0xc9, 0xeb, 0xfe };

        replay_unreachable_kick("spin.elf", code, sizeof(code), "0",
                                "breakpoint stops in a row at 0x1002 in one state");
}

Test(replay, a_replay_that_never_reaches_its_stop_ends_at_timeout, .timeout = 300)
{
        /* l: inc ecx; jmp l: RCX changes at every stop, never to the altered value in time. */
        static const uint8_t code[] = { 0x66, 0x41, 0xeb, 0xfc };

        replay_unreachable_kick("count.elf", code, sizeof(code), "2",
                                "timed out after 2 s (--timeout)");
}

/* ---- bad input ---------------------------------------------------------------------- */

Test(replay, bad_input_is_one_line_and_status_2)
{
        const char *missing[] = { "run", hv_tmp("no-such.zst"), NULL };
        const char *not_trace[] = { "run", HV_SOURCE_DIR "/README.md", NULL };
        const char *backend[] = { "run", "--backend", "nosuch", HV_SOURCE_DIR "/traces/demo.zst",
                                  NULL };
        const char *policy[] = { "run", "--inject", "sometimes", HV_SOURCE_DIR "/traces/demo.zst",
                                 NULL };
        const char *timeout[] = { "run", "--timeout", "soon", HV_SOURCE_DIR "/traces/demo.zst",
                                  NULL };
        const char *reduce[] = { "reduce", HV_SOURCE_DIR "/traces/demo.zst", "-o",
                                 hv_tmp("never.zst"), NULL };
        struct hv_proc p;

        replay(missing, &p);
        hv_assert_one_line_error(&p, "hvreplay", "No such file");
        hv_proc_free(&p);
        replay(not_trace, &p);
        hv_assert_one_line_error(&p, "hvreplay", "README.md");
        hv_proc_free(&p);
        replay(backend, &p);
        hv_assert_one_line_error(&p, "hvreplay", "unknown backend 'nosuch'");
        hv_proc_free(&p);
        replay(policy, &p);
        hv_assert_one_line_error(&p, "hvreplay", "--inject");
        hv_proc_free(&p);
        replay(timeout, &p);
        hv_assert_one_line_error(&p, "hvreplay", "--timeout: 'soon'");
        hv_proc_free(&p);
        /* demo.zst (window) has no violation to reduce. */
        replay(reduce, &p);
        hv_assert_one_line_error(&p, "hvreplay", "no violation 1");
        hv_proc_free(&p);
}

/* ---- KVM ------------------------------------------------------------------------------ */

Test(replay, kvm_trace_replays_on_kvm_and_on_emu, .timeout = 600)
{
        static const char *const args[] = { "--kick",      "20:0x30", "--inject", "eager",
                                            "--max-exits", "30000",   NULL };
        const char *on_emu[] = { "run", "--backend", "emu", hv_tmp("rec.zst"), NULL };
        struct hv_trace t;
        struct hv_proc p, q;

        HV_REQUIRE_KVM();
        hv_record_on("kvm", "stress", args, &t, &p);
        cr_assert_geq(t.ndelivers, 1000, "only %zu deliveries", t.ndelivers);
        assert_reproduces("a kicked stress trace on kvm", hv_tmp("rec.zst"));
        replay(on_emu, &q);
        cr_assert_eq(q.status, 0, "on emu: status %d\n%s%s", q.status, q.out, q.err);
        hv_proc_free(&q);
        hv_trace_free(&t);
        hv_proc_free(&p);
}
