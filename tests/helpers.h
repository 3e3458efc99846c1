/* SPDX-License-Identifier: MIT */
/* Test helpers: run the tools, load traces into arrays, read NASM symbol maps. */
#ifndef HVTEST_HELPERS_H
#define HVTEST_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hvtrace/hvtrace.h>

/* Output of a child process. */
struct hv_proc {
        int status; /* exit status, or 128+signal */
        char *out;  /* stdout, NUL-terminated */
        char *err;  /* stderr, NUL-terminated */
};

/* Run argv (NULL-terminated) and capture its output.  Returns 0 or -errno. */
int hv_run(const char *const *argv, struct hv_proc *p);
void hv_proc_free(struct hv_proc *p);

/* Whether /dev/kvm can be used; if not, why. */
bool hv_have_kvm(char *why, size_t len);

/* Whether an executable `name` is in a directory of $PATH. */
bool hv_on_path(const char *name);

/* Whether qemu-system-x86_64 (or $HVTRACE_QEMU) can be run, for the qemu-tcg backend. */
bool hv_have_qemu(void);

/*
 * Whether hvrec has backend `name` compiled in (HVTRACE_BACKEND_* options),
 * as `hvrec run --backend help` lists them.
 */
bool hv_backend_compiled(const char *name);

/*
 * Skip the calling test, with the reason, when backend `name` is compiled
 * out.  hv_run does it for every `hvrec run --backend NAME` it runs.
 */
void hv_require_backend(const char *name);

/*
 * Skip the calling test, with the reason, when /dev/kvm is missing or the
 * kvm backend (hvrec's default, which such tests use) is compiled out.
 */
#define HV_REQUIRE_KVM()                                          \
        do {                                                      \
                char why_[256];                                   \
                if (!hv_have_kvm(why_, sizeof(why_)))             \
                        cr_skip_test("needs /dev/kvm: %s", why_); \
                hv_require_backend("kvm");                        \
        } while (0)

/* One exit with its I/O data copied (traces outlive the reader's buffers). */
struct hv_exit {
        struct hvt_exit e;
        uint8_t io_data[64];
};

/* One HVT_REC_WRITE record, its data copied (malloc'd, freed by hv_trace_free). */
struct hv_write {
        uint64_t seq; /* the exit whose run wrote the range */
        uint64_t gpa;
        size_t len;
        uint8_t *data; /* len bytes; never NULL, even for len 0 */
};

/* A whole trace in memory. */
struct hv_trace {
        int read_err;  /* what hvt_reader_next ended with */
        char *message; /* hvt_reader_message at the end */
        struct hvt_header hdr;
        uint64_t hdr_flags;
        struct hv_exit *exits;
        size_t nexits;
        struct hvt_disk_inject *injects;
        size_t ninjects;
        struct hvt_disk_deliver *delivers;
        size_t ndelivers;
        struct hvt_disk_raise *raises;
        size_t nraises;
        struct hv_write *writes; /* in trace order */
        size_t nwrites;
        char *cmdline; /* the recorded argv joined with spaces */
        char *console; /* all console bytes, NUL-terminated */
        size_t console_len;
        bool have_end;
        struct hvt_disk_end end;
        char end_msg[256];
        uint8_t *mem; /* initial memory image, header mem_size bytes */
        uint64_t mem_size;
        size_t nrecords;
};

/* The last exit of a trace (fails the test if there is none). */
const struct hv_exit *hv_last_exit(const struct hv_trace *t);

/* Load a trace.  Returns the hvt_reader_open error (HVT_OK on success). */
int hv_trace_load(const char *path, struct hv_trace *t);
void hv_trace_free(struct hv_trace *t);

/* Address of symbol `name` in build/guests/GUEST.map; fails the test if missing. */
uint64_t hv_sym(const char *guest, const char *name);

/* Path of a built guest binary: HV_GUEST_DIR/NAME.bin (static buffer per call slot). */
const char *hv_guest(const char *name);

/*
 * Path of a built guest file: HV_GUEST_DIR/NAME as given when NAME has an
 * extension (e.g. "hello64.elf"), else HV_GUEST_DIR/NAME.bin like hv_guest;
 * an absolute path is returned as it is.
 */
const char *hv_guest_file(const char *name);

/*
 * A path for `name` in the test process's own temporary directory (made on
 * first use, removed at exit; set HV_KEEP_TMP to keep it).  The last eight
 * results stay valid.
 */
const char *hv_tmp(const char *name);

/*
 * Record guest NAME (as hv_guest_file finds it: "demo" or "hello64.elf")
 * with hvrec: extra args (NULL-terminated) go before the guest.  Returns
 * hvrec's status; the trace is loaded into *t.
 */
int hv_record(const char *name, const char *const *args, struct hv_trace *t, struct hv_proc *p);

/*
 * Record a kicked eager stress run on emu (--kick 20:0x30 --inject eager,
 * 4000 exits), the stress run with violations, into hv_tmp(name).
 * Skips the test where emu is not compiled in.  Returns the path.
 */
const char *hv_record_eager_stress(const char *name);

/* hv_record with --backend BACKEND before the other arguments. */
int hv_record_on(const char *backend, const char *name, const char *const *args, struct hv_trace *t,
                 struct hv_proc *p);

/*
 * Write a minimal ELF executable to a temp file: one PT_LOAD of `code` at
 * physical `paddr`, entry at paddr, class 32 or 64, machine as given (3 or
 * 62 for the real ones).  Returns the path.
 */
const char *hv_write_elf(const char *name, int bits, unsigned machine, uint64_t paddr,
                         const void *code, size_t len);

/* Write code as a flat binary to a temp file (hvrec runs it in real mode at 0x1000). */
const char *hv_write_flat(const char *name, const void *code, size_t len);

/* The end of one JSON value at s (after leading blanks), or NULL if it is not valid JSON. */
const char *hv_json_value(const char *s);
/* s past blanks. */
const char *hv_json_ws(const char *s);

/*
 * hvrec's own exit statuses (docs/guest-abi.md): a guest's status is below
 * 128, signal N is 128 + N, these are hvrec's.
 */
#define HVREC_STATUS_ERROR      202 /* bad options, guest, backend; the trace cannot be written */
#define HVREC_STATUS_CRASH      203 /* the guest crashed */
#define HVREC_STATUS_LIMIT      204 /* --max-exits or --timeout */
#define HVREC_STATUS_GUEST_HIGH 205 /* the guest wrote a status above 127 */

/*
 * p failed with the tool's error status (HVREC_STATUS_ERROR for prog "hvrec",
 * 2 for hvreplay) and one stderr line starting with prog and mentioning needle.
 */
void hv_assert_one_line_error(const struct hv_proc *p, const char *prog, const char *needle);

/* Run argv and assert hv_assert_one_line_error of what it printed. */
void hv_run_one_line_error(const char *const *argv, const char *prog, const char *needle);

#endif
