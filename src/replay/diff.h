// SPDX-License-Identifier: MIT
/* hvreplay diff, internal: the types and calls that the diff*.c files share. */
#ifndef HV_REPLAY_DIFF_H
#define HV_REPLAY_DIFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "code.h"
#include "replay.h"

#define RESYNC_WINDOW 32 /* units aligned on each side after a divergence */

/* Fields that --ignore-field names; bits of diff_opts.ignore_fields. */
enum ign {
        IGN_GPR = 0, /* 0..15: rax..r15 in x86 encoding order (enum hvt_field) */
        IGN_RIP = 16,
        IGN_RFLAGS,
        IGN_RFLAGS_RF,
        IGN_RFLAGS_AF,
        IGN_SEL,
        IGN_BASE,
        IGN_LIMIT,
        IGN_ATTR,
        IGN_CR0,
        IGN_CR0_ET,
        IGN_CR2,
        IGN_CR3,
        IGN_CR4,
        IGN_EFER,
        IGN_GDT,
        IGN_IDT,
        IGN_INTR,
        IGN_INSN,
        IGN_IO_DATA,
        IGN_MMIO_DATA,
        IGN_DEBUG_DR,
        IGN_BACKEND_DATA,
        IGN_DELIVER,
        IGN_CONSOLE,
        IGN_END,
        IGN_COUNT
};
_Static_assert(IGN_COUNT <= 64, "ignore bits fit a uint64_t");
/* Their names, as --ignore-field takes them. */
extern const char *const diff_ign_names[IGN_COUNT];

#define BIT(n) (1ull << (n))

struct diff_opts {
        unsigned context;
        bool all, json, io_raw;
        uint64_t ignore_reasons; /* bit per enum hvt_exit_reason */
        uint64_t ignore_fields;  /* bit per enum ign */
        int vcpu; /* multi-vCPU traces: compare this vCPU's records only; -1: every record */
};

/* Whether the options leave field f (enum ign) out of the comparison. */
static inline bool diff_ignored(const struct diff_opts *o, unsigned f)
{
        return (o->ignore_fields & BIT(f)) != 0;
}

/* One compared exit with what the trace recorded right after it. */
struct unit {
        struct hvt_exit ex; /* u.io.data points at io_buf */
        uint64_t pc;        /* linear CS:RIP */
        uint8_t *io_buf;
        size_t io_cap;
        uint8_t *con; /* console bytes this exit wrote */
        size_t con_len, con_cap;
        struct hvt_disk_deliver *dv; /* deliveries reported by this exit's probe */
        size_t ndv, dv_cap;
        /* Port I/O, decoded on first use: IN/OUT ending at RIP (done), starting at it (pending). */
        bool io_classified, io_done, io_pending, io_string;
        uint8_t io_done_len;
        int insn_n; /* bytes of the instruction at RIP by decoding (-1: not yet) */
};

struct range {
        uint64_t gpa, len;
        uint8_t *bytes; /* the memory record's own copy: exits change code.ram later */
};

struct side {
        const char *path, *tag; /* tag: "a" or "b" */
        struct hvt_reader *r;
        const struct hvt_header *hdr;
        struct code code; /* initial image + bytes seen at exits: decodes I/O instructions */
        bool have_code;   /* code_init succeeded: only then is there anything to free */
        /*
         * ring: units pos-context .. fetched-1, and look: the next compared
         * exit, already read; pointers into units (cap + 1 of them), swapped
         * rather than copied when look joins the ring.
         */
        struct unit *units;
        struct unit **ring;
        size_t cap;
        uint64_t pos, fetched;
        struct unit *look;
        bool have_look, done;
        int err;                 /* what hvt_reader_next ended with */
        uint64_t exits, skipped; /* exit records read; of them left out by --ignore-reason */
        uint64_t mem_records, mem_bytes;
        struct range *ranges;
        size_t nranges, ranges_cap;
        bool have_end;
        struct hvt_disk_end end;
        char end_msg[256];
        /*
         * A VMM's trace (hvrec exec: backend "exec"): its memory is the
         * VMM's whole guest memory, firmware included, and its first exits
         * may be the firmware's.  firmware: exits left out before the
         * guest's first (diff_side_skip_firmware).
         */
        bool vmm;
        uint64_t firmware;
};

struct io_match {
        bool raw;     /* no I/O instruction found on a side: compare RIP as recorded */
        bool relaxed; /* one side completed the instruction, the other not */
        uint64_t addr_a, addr_b;
};

struct fdiff {
        char field[32];
        char a[200], b[200]; /* formatted values; raw bytes when text */
        size_t alen, blen;
        bool a_null, b_null;
        bool text; /* a, b are console bytes (escaped when printed) */
};

struct fdiffs {
        bool count_only; /* resynchronisation probes: only n matters */
        struct fdiff *v;
        size_t n, cap;
};

struct cmp {
        const struct diff_opts *o;
        struct side *A, *B;
};

/* A divergence as the JSON output lists it: one field at one pair of events. */
struct jdiv {
        bool have_a, have_b; /* event_a / event_b are exits (else null) */
        uint64_t event_a, event_b, pc_a, pc_b, count;
        const char *reason_a, *reason_b;
        char insn_a[192], insn_b[192];
        struct fdiff f;
};

struct diff {
        struct diff_opts o;
        struct cmp c;
        struct side A, B;
        /*
         * When exactly one trace is a VMM's: that one, and the other, whose
         * image is the guest's (the memory compared, where the guest's first
         * exit lies).  Both NULL otherwise: everything is compared.
         */
        struct side *vmm, *guest;
        struct disasm *dis;
        uint64_t compared; /* pairs of units compared */
        uint64_t items;    /* divergences: differing pairs, runs only in one trace, the end */
        uint64_t nfields;  /* divergences (fields) */
        struct jdiv *jd;
        size_t njd, jd_cap;
        bool first_found;
        uint64_t first_a, first_b;
        bool first_have_a, first_have_b;
};

struct hdiff {
        const char *field;
        char a[256], b[256];
};

struct hdiffs {
        struct hdiff v[24];
        size_t n;
};

/* ---- diff.c: the command ---- */

/* The options hvreplay diff has with none given. */
void diff_default_opts(struct diff_opts *o);
/*
 * Compare traces a and b as hvreplay diff does, printing what it prints.
 * Returns its exit status: REPLAY_OK, REPLAY_FINDINGS or REPLAY_ERROR.
 */
int diff_traces(const struct diff_opts *o, const char *a, const char *b);

/* ---- diff_side.c: memory, the two sides, port I/O ---- */

/* Grow *p (of *cap elements of elem bytes) to hold need; exits the command when out of memory. */
void diff_reserve(void **p, size_t *cap, size_t need, size_t elem);
/* Free a unit's buffers and clear it. */
void diff_unit_free(struct unit *u);
/* Make u a copy of ex, its I/O data in u's own buffer, with no console bytes or deliveries. */
void diff_copy_exit(struct unit *u, const struct hvt_exit *ex);
/* The unit i after the current one of side s (0: the current one), or NULL past the end. */
struct unit *diff_peek(struct side *s, const struct diff_opts *o, uint64_t i);
/* The unit i before the current one (1: the previous), or NULL. */
struct unit *diff_behind(struct side *s, uint64_t i);
/*
 * Open the trace at path as side tag ("a" or "b") and read it up to its first
 * compared exit.  Returns 0, or -1 after a message (diff_side_close frees what
 * was set up either way).
 */
int diff_side_open(struct side *s, const char *path, const char *tag, struct disasm *dis,
                   const struct diff_opts *o);
/* Close the trace and free the side. */
void diff_side_close(struct side *s);
/*
 * Leave out the VMM trace s's exits before the guest's first: those whose
 * CS:RIP lies outside every range of guest's initial image (its end
 * included: RIP past an instruction that ends the image), with the console
 * bytes and deliveries that follow them.  They are the firmware's (the
 * BIOS that enters the guest), which the other recorder never ran.  A
 * guest trace with no image leaves nothing out.
 */
void diff_side_skip_firmware(struct side *s, const struct side *guest, const struct diff_opts *o);
/* Read the rest of a trace: exit counts, how it ended, whether it is damaged. */
void diff_side_drain(struct side *s, const struct diff_opts *o);
/* Whether the side's reading ended in an error (not the clean end of the trace). */
bool diff_side_failed(const struct side *s);
/* How port-I/O units a of side A and b of side B match: by the address of their IN/OUT. */
void diff_match_io(struct side *A, struct unit *a, struct side *B, struct unit *b,
                   struct io_match *m);

/* ---- diff_fields.c: field comparison ---- */

/* Add a difference of field with the values a and b (NULL: none on that side). */
void diff_fd_str(struct fdiffs *d, const char *field, const char *a, const char *b);
/* Every difference between two units that the options do not excuse; returns their number. */
size_t diff_compare_units(const struct cmp *c, struct unit *a, struct unit *b, struct fdiffs *d);
/* Whether two units are equal in every compared field. */
bool diff_units_equal(const struct cmp *c, struct unit *a, struct unit *b);

/* ---- diff_align.c: the comparison ---- */

/* Walk both traces to the end, or to the first divergence without --all, reporting on the way. */
void diff_walk(struct diff *D);

/* ---- diff_out.c: output, headers and memory images ---- */

/* One unit as hvreplay dump prints it, without the time, then what it wrote and reported. */
void diff_text_unit(FILE *f, struct disasm *d, const char *mark, const struct unit *u);
/* The differences of d on one line: "field a=A b=B; ...". */
void diff_text_fields(FILE *f, const struct fdiffs *d);
/* Collect in h what differs between the two headers (not a divergence). */
void diff_compare_headers(const struct hvt_header *a, const struct hvt_header *b, struct hdiffs *h);
/*
 * The lowest address where the initial images differ, over every range
 * either side loaded, or only over only's when only is not NULL (the
 * guest's image, against a VMM's whole memory).
 */
bool diff_image_differs(const struct side *a, const struct side *b, const struct side *only,
                        uint64_t *where);
/* The text output before the walk: the sides, the guest, header and image differences, options. */
void diff_text_preamble(struct diff *D, const struct hdiffs *h, bool img_diff, uint64_t gpa);
/* The whole JSON document, after the walk. */
void diff_print_json(struct diff *D, const struct hdiffs *h, bool img_diff, uint64_t gpa, bool same,
                     bool complete);

#endif
