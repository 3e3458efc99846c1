// SPDX-License-Identifier: MIT
/*
 * examples/tinyvmm as a VMM developer builds it: against libhvtrace staged
 * with `cmake --install --prefix` (tests/lib/stage-install.sh, a
 * library-only build) and found through pkg-config by the example's own
 * Makefile.  The build and the command line are checked everywhere; the
 * recording itself needs /dev/kvm, and its trace must then read to its end,
 * hold what the guest did and pass `hvreplay check`.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "helpers.h"

/* The example's guest: it asks for this vector twice and prints this line (examples/tinyvmm.c). */
#define GUEST_VECTOR 0x30
#define GUEST_LINE   "guest: two interrupts, please\n"

static char work[PATH_MAX]; /* this test's directory: the stage and the example's build */
static char exe[PATH_MAX];  /* the built tinyvmm */

static void remove_work(void)
{
        const char *argv[] = { "/bin/rm", "-rf", work, NULL };
        struct hv_proc p;

        if (!work[0])
                return;
        if (getenv("HV_KEEP_TMP")) {
                fprintf(stderr, "test files kept in %s\n", work);
                return;
        }
        if (!hv_run(argv, &p))
                hv_proc_free(&p);
}

TestSuite(example, .fini = remove_work);

/* snprintf into a path buffer; a path that does not fit fails the test. */
static void fmt_path(char *buf, size_t len, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void fmt_path(char *buf, size_t len, const char *fmt, ...)
{
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(buf, len, fmt, ap);
        va_end(ap);
        cr_assert(n >= 0 && (size_t)n < len, "a path longer than %zu bytes", len);
}

/* A value of the build's CMakeCache.txt ("KEY:TYPE=VALUE"), malloc'd. */
static char *cache_value(const char *key)
{
        char path[PATH_MAX], line[4096], *value = NULL;
        size_t klen = strlen(key);
        FILE *f;

        fmt_path(path, sizeof(path), "%s/CMakeCache.txt", HV_BUILD_DIR);
        f = fopen(path, "r");
        cr_assert_not_null(f, "%s: %s", path, strerror(errno));
        while (!value && fgets(line, sizeof(line), f)) {
                char *eq = strchr(line, '=');

                if (strncmp(line, key, klen) || line[klen] != ':' || !eq)
                        continue;
                eq[strcspn(eq, "\n")] = 0;
                value = strdup(eq + 1);
        }
        fclose(f);
        cr_assert(value && value[0], "%s not in %s", key, path);
        return value;
}

/* The first NAME on PATH that can be run, in buf. */
static const char *on_path(const char *name, char *buf, size_t len)
{
        const char *path = getenv("PATH");
        char *copy, *dir, *save = NULL;
        bool found = false;

        copy = strdup(path ? path : "/usr/bin:/bin");
        cr_assert_not_null(copy);
        for (dir = strtok_r(copy, ":", &save); dir && !found; dir = strtok_r(NULL, ":", &save)) {
                fmt_path(buf, len, "%s/%s", dir[0] ? dir : ".", name);
                found = !access(buf, X_OK);
        }
        free(copy);
        cr_assert(found, "%s is not on PATH", name);
        return buf;
}

/* Run argv; fail the test with its output unless it exits with `status`. */
static void run_expect(const char *const *argv, int status, struct hv_proc *p)
{
        cr_assert_eq(hv_run(argv, p), 0, "cannot run %s", argv[0]);
        cr_assert_eq(p->status, status, "%s exited with %d, not %d\nstdout:\n%s\nstderr:\n%s",
                     argv[0], p->status, status, p->out, p->err);
}

/*
 * Stage the library, point pkg-config and the loader at the stage, and
 * build the example there with its Makefile, warnings as errors.  static_too
 * also links it with libhvtrace.a (STATIC=1).
 */
static void build_example(bool static_too)
{
        char *cmake = cache_value("CMAKE_COMMAND"), *cc = cache_value("CMAKE_C_COMPILER");
        char stage_script[PATH_MAX], makefile[PATH_MAX], make[PATH_MAX], lib[PATH_MAX];
        char pc[PATH_MAX], cc_arg[PATH_MAX + 8], bin[PATH_MAX], static_dir[PATH_MAX];
        const char *cflags = "CFLAGS=-O2 -Wall -Wextra -Werror";
        struct hv_proc p;
        char *libdir;

        fmt_path(work, sizeof(work), "%s/hvtest-example-XXXXXX",
                 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        cr_assert_not_null(mkdtemp(work), "mkdtemp: %s", strerror(errno));
        fmt_path(stage_script, sizeof(stage_script), "%s/tests/lib/stage-install.sh",
                 HV_SOURCE_DIR);
        {
                const char *argv[] = { "/bin/sh", stage_script, cmake, HV_SOURCE_DIR, work, NULL };

                run_expect(argv, 0, &p);
        }
        /* The script prints the install's library directory last. */
        libdir = strrchr(p.out, '\n');
        cr_assert(libdir && libdir[1] == 0, "stage-install printed '%s'", p.out);
        *libdir = 0;
        libdir = strrchr(p.out, '\n') ? strrchr(p.out, '\n') + 1 : p.out;
        fmt_path(lib, sizeof(lib), "%s/stage/%s", work, libdir);
        fmt_path(pc, sizeof(pc), "%s/pkgconfig", lib);
        hv_proc_free(&p);
        cr_assert_eq(setenv("PKG_CONFIG_PATH", pc, 1), 0);
        cr_assert_eq(setenv("LD_LIBRARY_PATH", lib, 1), 0);

        fmt_path(makefile, sizeof(makefile), "%s/examples/Makefile", HV_SOURCE_DIR);
        fmt_path(cc_arg, sizeof(cc_arg), "CC=%s", cc);
        fmt_path(bin, sizeof(bin), "%s/bin", work);
        cr_assert_eq(mkdir(bin, 0700), 0, "%s: %s", bin, strerror(errno));
        on_path("make", make, sizeof(make));
        {
                const char *argv[] = { make, "-C", bin, "-f", makefile, cc_arg, cflags, NULL };

                run_expect(argv, 0, &p);
                /* The Makefile's command line shows that pkg-config gave the staged flags. */
                cr_assert(strstr(p.out, pc), "make did not use %s:\n%s", pc, p.out);
                hv_proc_free(&p);
        }
        fmt_path(exe, sizeof(exe), "%s/tinyvmm", bin);
        cr_assert_eq(access(exe, X_OK), 0, "%s: %s", exe, strerror(errno));
        if (static_too) {
                fmt_path(static_dir, sizeof(static_dir), "%s/static", work);
                cr_assert_eq(mkdir(static_dir, 0700), 0, "%s: %s", static_dir, strerror(errno));
                const char *argv[] = { make,   "-C",   static_dir, "-f", makefile,
                                       cc_arg, cflags, "STATIC=1", NULL };

                run_expect(argv, 0, &p);
                hv_proc_free(&p);
        }
        free(cmake);
        free(cc);
}

/* Whether the dynamic section of the binary names libhvtrace.so (readelf -d). */
static bool links_shared_lib(const char *path)
{
        char readelf[PATH_MAX];
        const char *argv[] = { on_path("readelf", readelf, sizeof(readelf)), "-d", path, NULL };
        struct hv_proc p;
        bool yes;

        run_expect(argv, 0, &p);
        yes = strstr(p.out, "[libhvtrace.so") != NULL;
        hv_proc_free(&p);
        return yes;
}

Test(example, builds_against_the_staged_install, .timeout = 600)
{
        char trace[PATH_MAX + 16], static_exe[PATH_MAX + 16];
        struct hv_proc p;

        build_example(true);
        cr_assert(links_shared_lib(exe), "%s does not link libhvtrace.so", exe);
        fmt_path(static_exe, sizeof(static_exe), "%s/static/tinyvmm", work);
        cr_assert_not(links_shared_lib(static_exe), "STATIC=1 linked libhvtrace.so");

        /* It loads the staged library (LD_LIBRARY_PATH) and knows its command line. */
        {
                const char *argv[] = { exe, "--help", NULL };

                run_expect(argv, 0, &p);
                cr_assert(strstr(p.out, "usage: tinyvmm TRACE"), "--help printed:\n%s", p.out);
                hv_proc_free(&p);
        }
        {
                const char *argv[] = { exe, NULL };

                run_expect(argv, 2, &p);
                cr_assert(strstr(p.err, "usage: tinyvmm TRACE"), "stderr:\n%s", p.err);
                hv_proc_free(&p);
        }
        {
                const char *argv[] = { exe, "a.zst", "b.zst", NULL };

                run_expect(argv, 2, &p);
                hv_proc_free(&p);
        }

        /* Without KVM: one line saying why, status 2, and no trace left behind. */
        char why[256];

        if (hv_have_kvm(why, sizeof(why)))
                return; /* the recording test below runs it */
        fmt_path(trace, sizeof(trace), "%s/nokvm.zst", work);
        {
                const char *argv[] = { exe, trace, NULL };

                run_expect(argv, 2, &p);
                cr_assert(strstr(p.err, "tinyvmm: /dev/kvm: "), "stderr:\n%s", p.err);
                cr_assert_eq(strchr(p.err, '\n'), p.err + strlen(p.err) - 1,
                             "more than one line:\n%s", p.err);
                hv_proc_free(&p);
        }
        cr_assert_neq(access(trace, F_OK), 0, "%s was created without KVM", trace);
}

Test(example, records_a_trace_that_hvreplay_checks, .timeout = 600)
{
        char trace[PATH_MAX + 16], why[256];
        struct hv_trace t;
        struct hv_proc p;

        /* As HV_REQUIRE_KVM, without its demand for hvrec's kvm backend: tinyvmm is its own VMM. */
        if (!hv_have_kvm(why, sizeof(why)))
                cr_skip_test("needs /dev/kvm: %s", why);
        build_example(false);
        fmt_path(trace, sizeof(trace), "%s/tinyvmm.zst", work);
        {
                const char *argv[] = { exe, trace, NULL };

                run_expect(argv, 0, &p);
                cr_assert_str_eq(p.out, GUEST_LINE);
                cr_assert(strstr(p.err, "2 raised, 2 injected, 2 delivered"), "stderr:\n%s", p.err);
                hv_proc_free(&p);
        }
        {
                const char *argv[] = { HVREPLAY, "check", trace, NULL };

                run_expect(argv, 0, &p);
                /*
                 * Clean is no violation.  Written without a KVM to run it
                 * on: an undetermined delivery (the checker cannot prove the
                 * path) is logged, not failed, until a run shows none.
                 */
                cr_assert(strstr(p.out, ": 2 deliveries checked (kvm, policy window): "
                                        "0 violations, "),
                          "hvreplay check:\n%s", p.out);
                if (!strstr(p.out, " 0 violations, 0 undetermined"))
                        cr_log_warn("tinyvmm's trace has undetermined deliveries:\n%s", p.out);
                hv_proc_free(&p);
        }

        /* What the trace holds, record by record. */
        cr_assert_eq(hv_trace_load(trace, &t), HVT_OK);
        cr_assert_eq(t.read_err, HVT_END_OF_TRACE, "%s", t.message);
        cr_assert(t.have_end);
        cr_assert_eq(t.end.why, HVT_END_GUEST_EXIT, "end: %s", t.end_msg);
        cr_assert_eq(t.end.status, 0);
        cr_assert_eq(t.end.exits, t.nexits);
        cr_assert_eq(t.hdr.h.guest_mode, HVT_MODE_REAL);
        cr_assert_str_eq(t.hdr.str[HVT_STR_BACKEND], "kvm");
        cr_assert_str_eq(t.console, GUEST_LINE);
        /* The memory image holds the code the first exit ran: an OUT to the console. */
        const struct hvt_exit *first = &t.exits[0].e;

        cr_assert_geq(t.nexits, 3);
        cr_assert_eq(first->reason, HVT_EXIT_IO);
        cr_assert_eq(first->u.io.io.port, 0xe9);
        uint64_t pc = hvt_state_pc(&first->st);

        /* RIP at an OUT exit: at the OUT (VMX, SVM) or past it (kvm_pvm), never elsewhere. */
        cr_assert(t.mem[pc] == 0xe6 || (pc >= 2 && t.mem[pc - 2] == 0xe6),
                  "no OUT in the image at or ending at %#llx", (unsigned long long)pc);
        cr_assert_eq(hv_last_exit(&t)->e.u.io.io.port, 0xf4);

        cr_assert_eq(t.nraises, 2);
        cr_assert_eq(t.ninjects, 2);
        cr_assert_eq(t.ndelivers, 2);
        for (size_t i = 0; i < 2; i++) {
                const struct hvt_disk_inject *in = &t.injects[i];
                const struct hvt_disk_deliver *d = &t.delivers[i];

                cr_assert_eq(t.raises[i].vector, GUEST_VECTOR);
                cr_assert_eq(in->vector, GUEST_VECTOR);
                /* Injected only when KVM said the vCPU could take it. */
                cr_assert(in->intr & HVT_INTR_READY, "injection %zu: intr %#x", i, in->intr);
                cr_assert(in->rflags & 0x200, "injection %zu with IF = 0", i);
                cr_assert_geq(in->after_seq, t.raises[i].seq);
                cr_assert_gt(d->seq, in->after_seq);
                cr_assert_eq(d->vector, GUEST_VECTOR);
                cr_assert_eq(d->vector_from, HVT_VEC_TABLE);
                cr_assert_eq(d->handler, in->handler);
                cr_assert_neq(in->handler, 0);
                cr_assert(d->flags & 0x200, "delivery %zu interrupted code with IF = 0", i);
        }
        /* The first request came with IF = 0: it waited for the guest's STI; the second did not. */
        cr_assert_gt(t.injects[0].after_seq, t.raises[0].seq);
        cr_assert_eq(t.injects[1].after_seq, t.raises[1].seq);
        hv_trace_free(&t);
}
