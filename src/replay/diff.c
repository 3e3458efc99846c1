// SPDX-License-Identifier: MIT
/*
 * hvreplay diff: align two traces of the same guest, recorded on different
 * backends or hosts, exit by exit and report where they diverge.
 *
 * Both traces are streamed.  Each compared exit is a "unit": the exit with
 * the console bytes and probe deliveries recorded after it, up to the next
 * compared exit (exits of ignored reasons are skipped, their trailing records
 * stay with the unit before).  Units are compared pairwise; a small ring per
 * side keeps the units before the current one (the context printed with a
 * divergence) and the ones looked ahead to resynchronise after it.
 * docs/diff.md documents every option and why its default is what it is.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../arch/x86.h"
#include "code.h"
#include "json.h"
#include "replay.h"

#define RESYNC_WINDOW 32 /* units aligned on each side after a divergence */
#define MAX_CONTEXT   1000

/* ---- options ------------------------------------------------------------------------ */

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

static const char *const ign_names[IGN_COUNT] = {
        "rax",       "rcx",          "rdx",          "rbx",      "rsp",       "rbp",
        "rsi",       "rdi",          "r8",           "r9",       "r10",       "r11",
        "r12",       "r13",          "r14",          "r15",      "rip",       "rflags",
        "rflags.rf", "rflags.af",    "seg.selector", "seg.base", "seg.limit", "seg.attr",
        "cr0",       "cr0.et",       "cr2",          "cr3",      "cr4",       "efer",
        "gdt",       "idt",          "intr",         "insn",     "io.data",   "mmio.data",
        "debug.dr",  "backend-data", "deliver",      "console",  "end",
};

#define BIT(n) (1ull << (n))
#define DEFAULT_IGNORE_FIELDS                                                                    \
        (BIT(IGN_RFLAGS_RF) | BIT(IGN_CR0_ET) | BIT(IGN_INTR) | BIT(IGN_LIMIT) | BIT(IGN_ATTR) | \
         BIT(IGN_BACKEND_DATA))
#define DEFAULT_IGNORE_REASONS (BIT(HVT_EXIT_INTR) | BIT(HVT_EXIT_IRQ_WINDOW))

struct diff_opts {
        unsigned context;
        bool all, json, io_raw;
        uint64_t ignore_reasons; /* bit per enum hvt_exit_reason */
        uint64_t ignore_fields;  /* bit per enum ign */
};

static void usage(FILE *f)
{
        fprintf(f,
                "Usage: hvreplay diff [OPTIONS] A B\n"
                "\n"
                "Align two traces of the same guest (same image and options, recorded on\n"
                "different backends or hosts) exit by exit and report the first divergence:\n"
                "exit reason, address, registers, port/MMIO data, deliveries the probe saw\n"
                "(vector, interrupted address, flags) and console output, with the exits just\n"
                "before it on both sides, disassembled.  What differs in the headers (backend,\n"
                "host, mode, memory size, entry, options) is stated first; traces whose\n"
                "initial memory images differ are not of the same guest (status 1).\n"
                "Timing is always ignored (exit times, guest time, wall time), and so are the\n"
                "backends' raw exit codes, exit numbers, and the recorder's injections and\n"
                "raises (the deliveries they cause are compared).  See docs/diff.md.\n"
                "\n"
                "Options:\n"
                "  --context N           exits shown before a divergence, on each side\n"
                "                        (default 3)\n"
                "  --all                 every divergence, not only the first: after one, the\n"
                "                        next %d exits of each side are aligned and the\n"
                "                        comparison goes on at the next pair of equal exits\n"
                "  --ignore-reason LIST  exit reasons left out of both sides, comma-separated\n"
                "                        (default intr,irq-window: signals, kicks and window\n"
                "                        exits come at backend-specific times); '' compares\n"
                "                        every exit; +LIST adds to the default\n"
                "  --io-rip MODE         instruction (default): port-I/O exits match by the\n"
                "                        address of their IN/OUT, found by decoding, whether\n"
                "                        RIP is at it or past it; RIP is not compared there,\n"
                "                        nor, when one side completed the instruction and the\n"
                "                        other not, the instruction bytes, an IN's AL/AX/EAX\n"
                "                        or a string instruction's RCX/RSI/RDI;\n"
                "                        raw: compare RIP as recorded\n"
                "  --ignore-field LIST   fields not compared, comma-separated (default\n"
                "                        rflags.rf,cr0.et,intr,seg.limit,seg.attr,backend-data);\n"
                "                        '' compares every field; +LIST adds to the default.\n"
                "                        Fields: rax rcx rdx rbx rsp rbp rsi rdi r8..r15 rip\n"
                "                        rflags rflags.rf rflags.af seg.selector seg.base\n"
                "                        seg.limit seg.attr cr0 cr0.et cr2 cr3 cr4 efer gdt\n"
                "                        idt intr insn io.data mmio.data debug.dr backend-data\n"
                "                        deliver console end\n"
                "  --json                one JSON document (default: text)\n"
                "  -h, --help            this text\n"
                "\n"
                "Exit status: 0 the traces are the same; 1 they diverge (or are not of the\n"
                "same guest); 2 bad usage or a trace that could not be read.\n",
                RESYNC_WINDOW);
}

static int lookup_reason(const char *s, size_t n)
{
        for (unsigned i = 0; i < HVT_EXIT_REASON_COUNT; i++) {
                const char *name = hvt_exit_reason_name(i);

                if (strlen(name) == n && !strncmp(name, s, n))
                        return (int)i;
        }
        return -1;
}

static int lookup_field(const char *s, size_t n)
{
        for (unsigned i = 0; i < IGN_COUNT; i++)
                if (strlen(ign_names[i]) == n && !strncmp(ign_names[i], s, n))
                        return (int)i;
        return -1;
}

/* "a,b,c", "" or "none", "+a,b" (added to dflt).  Returns 0 or -1 after a message. */
static int parse_list(const char *opt, const char *arg, uint64_t dflt,
                      int (*lookup)(const char *, size_t), const char *what, uint64_t *out)
{
        uint64_t set = 0;
        const char *p = arg;

        if (*p == '+') {
                set = dflt;
                p++;
        }
        if (!strcmp(p, "none"))
                p = "";
        while (*p) {
                size_t n = strcspn(p, ",");
                int v;

                if (n) {
                        v = lookup(p, n);
                        if (v < 0) {
                                fprintf(stderr,
                                        "hvreplay diff: %s: unknown %s '%.*s' (see --help)\n", opt,
                                        what, (int)n, p);
                                return -1;
                        }
                        set |= BIT(v);
                }
                p += n;
                if (*p == ',')
                        p++;
        }
        *out = set;
        return 0;
}

static bool ignored(const struct diff_opts *o, unsigned f)
{
        return (o->ignore_fields & BIT(f)) != 0;
}

/* ---- memory ------------------------------------------------------------------------- */

static void *xrealloc(void *p, size_t n)
{
        void *q = realloc(p, n ? n : 1);

        if (!q) {
                fprintf(stderr, "hvreplay diff: out of memory\n");
                exit(REPLAY_ERROR);
        }
        return q;
}

static void reserve(void **p, size_t *cap, size_t need, size_t elem)
{
        size_t n = *cap ? *cap : 16;

        if (need <= *cap)
                return;
        while (n < need)
                n *= 2;
        *p = xrealloc(*p, n * elem);
        *cap = n;
}

/* ---- the two sides ------------------------------------------------------------------ */

/* One compared exit with what the trace recorded right after it. */
struct unit {
        struct hvt_exit ex; /* u.io.data points at io_buf */
        uint64_t pc;          /* linear CS:RIP */
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
};

struct side {
        const char *path, *tag; /* tag: "a" or "b" */
        struct hvt_reader *r;
        const struct hvt_header *hdr;
        struct code code;  /* initial image + bytes seen at exits: decodes I/O instructions */
        bool have_code;    /* code_init succeeded: only then is there anything to free */
        struct unit *ring; /* units pos-context .. fetched-1 */
        size_t cap;
        uint64_t pos, fetched;
        struct unit look; /* the next compared exit, already read */
        bool have_look, done;
        int err;                 /* what hvt_reader_next ended with */
        uint64_t exits, skipped; /* exit records read; of them left out by --ignore-reason */
        uint64_t mem_records, mem_bytes;
        struct range *ranges;
        size_t nranges, ranges_cap;
        bool have_end;
        struct hvt_disk_end end;
        char end_msg[256];
};

static void unit_free(struct unit *u)
{
        free(u->io_buf);
        free(u->con);
        free(u->dv);
        memset(u, 0, sizeof(*u));
}

static void copy_exit(struct unit *u, const struct hvt_exit *ex)
{
        u->ex = *ex;
        u->pc = hvt_state_pc(&ex->st);
        u->con_len = 0;
        u->ndv = 0;
        u->io_classified = false;
        u->insn_n = -1;
        if (ex->reason == HVT_EXIT_IO) {
                size_t n = (size_t)ex->u.io.io.size * ex->u.io.io.count;

                /* At least a byte: data never NULL, even for an exit that moved none. */
                reserve((void **)&u->io_buf, &u->io_cap, n ? n : 1, 1);
                if (n)
                        memcpy(u->io_buf, ex->u.io.data, n);
                u->ex.u.io.data = u->io_buf;
        }
}

/*
 * Read records until the next compared exit (into s->look) or the end of the
 * trace.  Console bytes and deliveries on the way belong to cur (NULL: before
 * the first compared exit, dropped).
 */
static void read_on(struct side *s, const struct diff_opts *o, struct unit *cur)
{
        struct hvt_event ev;

        while (!s->done) {
                int err = hvt_reader_next(s->r, &ev);

                if (err != HVT_OK) {
                        s->done = true;
                        s->err = err;
                        return;
                }
                switch (ev.type) {
                case HVT_REC_MEMORY:
                        code_load(&s->code, ev.memory.gpa, ev.memory.data, ev.memory.len);
                        reserve((void **)&s->ranges, &s->ranges_cap, s->nranges + 1,
                                sizeof(*s->ranges));
                        s->ranges[s->nranges++] = (struct range){ ev.memory.gpa, ev.memory.len };
                        s->mem_records++;
                        s->mem_bytes += ev.memory.len;
                        break;
                case HVT_REC_EXIT: {
                        const struct hvt_exit *ex = &ev.exit;

                        s->exits++;
                        if (ex->insn_len) {
                                struct code_ctx ctx = code_ctx_of(&ex->st);

                                code_exit_bytes(&s->code, &ctx, hvt_state_pc(&ex->st), ex->insn,
                                                ex->insn_len);
                        }
                        if (ex->reason < 64 && (o->ignore_reasons & BIT(ex->reason))) {
                                s->skipped++;
                                break;
                        }
                        copy_exit(&s->look, ex);
                        s->have_look = true;
                        return;
                }
                case HVT_REC_CONSOLE:
                        if (!cur || !ev.console.len)
                                break;
                        reserve((void **)&cur->con, &cur->con_cap, cur->con_len + ev.console.len,
                                1);
                        memcpy(cur->con + cur->con_len, ev.console.data, ev.console.len);
                        cur->con_len += ev.console.len;
                        break;
                case HVT_REC_DELIVER:
                        if (!cur)
                                break;
                        reserve((void **)&cur->dv, &cur->dv_cap, cur->ndv + 1, sizeof(*cur->dv));
                        cur->dv[cur->ndv++] = ev.deliver;
                        break;
                case HVT_REC_END:
                        s->have_end = true;
                        s->end = ev.end.e;
                        snprintf(s->end_msg, sizeof(s->end_msg), "%s", ev.end.message);
                        break;
                /*
                 * Header, injections, raises, and memory writes: what the guest wrote
                 * shows in its registers, I/O and console, which are compared.
                 */
                default: break;
                }
        }
}

/* Make the next compared exit a unit, with what follows it.  false at the end. */
static bool fetch(struct side *s, const struct diff_opts *o)
{
        struct unit *slot, tmp;

        if (!s->have_look)
                return false;
        slot = &s->ring[s->fetched % s->cap];
        tmp = *slot; /* swap: buffers are reused, never shared */
        *slot = s->look;
        s->look = tmp;
        s->have_look = false;
        s->fetched++;
        read_on(s, o, slot);
        return true;
}

/* The unit i after the current one, or NULL past the end. */
static struct unit *peek(struct side *s, const struct diff_opts *o, uint64_t i)
{
        while (s->fetched <= s->pos + i)
                if (!fetch(s, o))
                        return NULL;
        return &s->ring[(s->pos + i) % s->cap];
}

/* The unit i before the current one (1: the previous), or NULL. */
static struct unit *behind(struct side *s, uint64_t i)
{
        return i <= s->pos ? &s->ring[(s->pos - i) % s->cap] : NULL;
}

static int side_open(struct side *s, const char *path, const char *tag, struct disasm *dis,
                     const struct diff_opts *o)
{
        memset(s, 0, sizeof(*s));
        s->path = path;
        s->tag = tag;
        s->r = replay_open(path);
        if (!s->r)
                return -1;
        s->hdr = hvt_reader_header(s->r);
        if (code_init(&s->code, dis, s->hdr->h.mem_size)) {
                fputs("hvreplay diff: ", stderr);
                replay_put_str(stderr, path);
                fprintf(stderr, ": cannot allocate %" PRIu64 " bytes for the guest memory image\n",
                        s->hdr->h.mem_size);
                return -1;
        }
        s->have_code = true;
        s->cap = o->context + RESYNC_WINDOW + 2;
        s->ring = xrealloc(NULL, s->cap * sizeof(*s->ring));
        memset(s->ring, 0, s->cap * sizeof(*s->ring));
        /* The header, the memory image, up to the first compared exit. */
        read_on(s, o, NULL);
        return 0;
}

static void side_close(struct side *s)
{
        if (s->ring)
                for (size_t i = 0; i < s->cap; i++)
                        unit_free(&s->ring[i]);
        free(s->ring);
        unit_free(&s->look);
        free(s->ranges);
        if (s->have_code)
                code_free(&s->code);
        hvt_reader_close(s->r);
}

/* Read the rest of a trace: exit counts, how it ended, whether it is damaged. */
static void side_drain(struct side *s, const struct diff_opts *o)
{
        while (!s->done) {
                s->have_look = false;
                read_on(s, o, NULL);
        }
        s->have_look = false;
}

/* A read error (not the clean end of the trace). */
static bool side_failed(const struct side *s)
{
        return s->done && s->err != HVT_END_OF_TRACE;
}

/* ---- port I/O: where is the instruction? -------------------------------------------- */

/*
 * Up to 15 bytes just before linear pc, as many as can be read without a gap
 * (a filler could fake an IN/OUT): from this trace's initial image or the
 * bytes it recorded at exits, else from the other trace's (the images were
 * found identical: the same guest), for code behind page tables that the
 * guest built at run time.  Returns how many: buf[0..n) are the n bytes before pc.
 */
static size_t code_before(const struct side *s, const struct side *other,
                          const struct code_ctx *ctx, uint64_t pc, size_t want, uint8_t *buf)
{
        for (size_t k = want; k; k--)
                if (code_read(&s->code, ctx, pc - k, buf, k) == k ||
                    (other && code_read(&other->code, ctx, pc - k, buf, k) == k))
                        return k;
        return 0;
}

static void classify_io(struct side *s, const struct side *other, struct unit *u)
{
        const struct hvt_exit *ex = &u->ex;
        struct code_ctx ctx = code_ctx_of(&ex->st);
        struct disasm_io_site done, pending;
        uint8_t code[30];
        uint64_t off = u->pc - ctx.cs_base;
        size_t before = off >= 15 ? 15 : (size_t)off;

        u->io_classified = true;
        before = code_before(s, other, &ctx, u->pc, before, code);
        memcpy(code + before, ex->insn, ex->insn_len);
        disasm_io_candidates(s->code.dis, ctx.bits, code, before + ex->insn_len, before, off,
                             ex->u.io.io.dir == HVT_IO_OUT, ex->u.io.io.port, ex->u.io.io.size,
                             &done, &pending);
        u->io_done = done.found;
        u->io_done_len = done.found ? done.insn.len : 0;
        u->io_pending = pending.found;
        u->io_string = (done.found && (done.insn.flags & DISASM_STRING)) ||
                       (pending.found && (pending.insn.flags & DISASM_STRING));
}

struct io_match {
        bool raw;     /* no I/O instruction found on a side: compare RIP as recorded */
        bool relaxed; /* one side completed the instruction, the other not */
        uint64_t addr_a, addr_b;
};

static void match_io(struct side *A, struct unit *a, struct side *B, struct unit *b,
                     struct io_match *m)
{
        struct {
                uint64_t addr;
                bool done;
        } ca[2], cb[2];
        size_t na = 0, nb = 0;
        int best = 0;

        memset(m, 0, sizeof(*m));
        if (a->pc == b->pc) { /* the same reading, whatever it is: no decoding needed */
                m->addr_a = m->addr_b = a->pc;
                return;
        }
        if (!a->io_classified)
                classify_io(A, B, a);
        if (!b->io_classified)
                classify_io(B, A, b);
        if (a->io_pending) {
                ca[na].addr = a->pc;
                ca[na++].done = false;
        }
        if (a->io_done) {
                ca[na].addr = a->pc - a->io_done_len;
                ca[na++].done = true;
        }
        if (b->io_pending) {
                cb[nb].addr = b->pc;
                cb[nb++].done = false;
        }
        if (b->io_done) {
                cb[nb].addr = b->pc - b->io_done_len;
                cb[nb++].done = true;
        }
        if (!na || !nb) {
                m->raw = true;
                return;
        }
        m->addr_a = ca[0].addr;
        m->addr_b = cb[0].addr;
        m->relaxed = ca[0].done != cb[0].done;
        for (size_t i = 0; i < na; i++)
                for (size_t j = 0; j < nb; j++) {
                        int score = ca[i].addr != cb[j].addr ? 0 : ca[i].done == cb[j].done ? 2 : 1;

                        if (score > best) {
                                best = score;
                                m->addr_a = ca[i].addr;
                                m->addr_b = cb[j].addr;
                                m->relaxed = ca[i].done != cb[j].done;
                        }
                }
}

/* ---- field comparison --------------------------------------------------------------- */

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

static struct fdiff *fd_add(struct fdiffs *d, const char *field)
{
        struct fdiff *f;

        if (d->count_only) {
                d->n++;
                return NULL;
        }
        reserve((void **)&d->v, &d->cap, d->n + 1, sizeof(*d->v));
        f = &d->v[d->n++];
        memset(f, 0, sizeof(*f));
        snprintf(f->field, sizeof(f->field), "%s", field);
        return f;
}

static void fd_str(struct fdiffs *d, const char *field, const char *a, const char *b)
{
        struct fdiff *f = fd_add(d, field);

        if (!f)
                return;
        if (a)
                f->alen = (size_t)snprintf(f->a, sizeof(f->a), "%s", a);
        else
                f->a_null = true;
        if (b)
                f->blen = (size_t)snprintf(f->b, sizeof(f->b), "%s", b);
        else
                f->b_null = true;
}

static void cmp_u64(struct fdiffs *d, const char *field, uint64_t a, uint64_t b)
{
        char sa[24], sb[24];

        if (a == b)
                return;
        if (d->count_only) {
                d->n++;
                return;
        }
        snprintf(sa, sizeof(sa), "0x%" PRIx64, a);
        snprintf(sb, sizeof(sb), "0x%" PRIx64, b);
        fd_str(d, field, sa, sb);
}

static void hex_bytes(char *buf, size_t len, const uint8_t *p, size_t n)
{
        size_t k = 0;

        buf[0] = 0;
        for (size_t i = 0; i < n; i++) {
                if (k + 6 >= len) {
                        snprintf(buf + k, len - k, "...");
                        return;
                }
                k += (size_t)snprintf(buf + k, len - k, "%02x", p[i]);
        }
}

static void cmp_bytes(struct fdiffs *d, const char *field, const uint8_t *a, size_t na,
                      const uint8_t *b, size_t nb)
{
        char sa[200], sb[200];

        if (na == nb && (!na || !memcmp(a, b, na)))
                return;
        if (d->count_only) {
                d->n++;
                return;
        }
        hex_bytes(sa, sizeof(sa), a, na);
        hex_bytes(sb, sizeof(sb), b, nb);
        fd_str(d, field, sa, sb);
}

static void cmp_text(struct fdiffs *d, const char *field, const uint8_t *a, size_t na,
                     const uint8_t *b, size_t nb)
{
        struct fdiff *f;

        if (na == nb && (!na || !memcmp(a, b, na)))
                return;
        f = fd_add(d, field);
        if (!f)
                return;
        f->text = true;
        f->alen = na < sizeof(f->a) ? na : sizeof(f->a);
        f->blen = nb < sizeof(f->b) ? nb : sizeof(f->b);
        /* A side that wrote nothing may have no buffer at all (NULL). */
        if (f->alen)
                memcpy(f->a, a, f->alen);
        if (f->blen)
                memcpy(f->b, b, f->blen);
}

static void fmt_deliver(char *buf, size_t len, const struct hvt_disk_deliver *dv)
{
        snprintf(buf, len, "vector 0x%02x interrupted %04x:%" PRIx64, dv->vector, dv->cs, dv->ip);
}

/* The RFLAGS bits compared. */
static uint64_t rflags_mask(const struct diff_opts *o)
{
        return ~((ignored(o, IGN_RFLAGS_RF) ? X86_RFLAGS_RF : 0) |
                 (ignored(o, IGN_RFLAGS_AF) ? X86_RFLAGS_AF : 0));
}

struct cmp {
        const struct diff_opts *o;
        struct side *A, *B;
};

static void cmp_state(const struct cmp *c, const struct hvt_vcpu_state *a,
                      const struct hvt_vcpu_state *b, const struct io_match *m, unsigned in_size,
                      bool string_io, struct fdiffs *d)
{
        const struct diff_opts *o = c->o;
        char name[32];

        for (unsigned r = HVT_F_RAX; r <= HVT_F_R15; r++) {
                uint64_t mask = ~0ull;

                if (ignored(o, IGN_GPR + r))
                        continue;
                if (m && m->relaxed) {
                        /* One side has run the instruction, the other not yet. */
                        if (r == HVT_F_RAX && in_size && !string_io)
                                mask = in_size >= 4 ? 0 : ~((1ull << (8 * in_size)) - 1);
                        if (string_io && (r == HVT_F_RCX || r == HVT_F_RSI || r == HVT_F_RDI))
                                mask = 0;
                }
                cmp_u64(d, hvt_field_name(r), a->gpr[r] & mask, b->gpr[r] & mask);
        }
        if (!m && !ignored(o, IGN_RIP))
                cmp_u64(d, "rip", a->rip, b->rip);
        if (!ignored(o, IGN_RFLAGS)) {
                uint64_t mask = rflags_mask(o);

                cmp_u64(d, "rflags", a->rflags & mask, b->rflags & mask);
        }
        for (unsigned s = 0; s < HVT_SREG_COUNT; s++) {
                const struct hvt_disk_seg *sa = &a->seg[s], *sb = &b->seg[s];
                const char *sn = hvt_sreg_name(s);

                if (!ignored(o, IGN_SEL)) {
                        snprintf(name, sizeof(name), "%s.selector", sn);
                        cmp_u64(d, name, sa->selector, sb->selector);
                }
                if (!ignored(o, IGN_BASE)) {
                        snprintf(name, sizeof(name), "%s.base", sn);
                        cmp_u64(d, name, sa->base, sb->base);
                }
                if (!ignored(o, IGN_LIMIT)) {
                        snprintf(name, sizeof(name), "%s.limit", sn);
                        cmp_u64(d, name, sa->limit, sb->limit);
                }
                if (!ignored(o, IGN_ATTR)) {
                        snprintf(name, sizeof(name), "%s.attr", sn);
                        cmp_u64(d, name, sa->attr, sb->attr);
                }
        }
        if (!ignored(o, IGN_CR0)) {
                uint64_t mask = ignored(o, IGN_CR0_ET) ? ~X86_CR0_ET : ~0ull;

                cmp_u64(d, "cr0", a->cr0 & mask, b->cr0 & mask);
        }
        if (!ignored(o, IGN_CR2))
                cmp_u64(d, "cr2", a->cr2, b->cr2);
        if (!ignored(o, IGN_CR3))
                cmp_u64(d, "cr3", a->cr3, b->cr3);
        if (!ignored(o, IGN_CR4))
                cmp_u64(d, "cr4", a->cr4, b->cr4);
        if (!ignored(o, IGN_EFER))
                cmp_u64(d, "efer", a->efer, b->efer);
        if (!ignored(o, IGN_GDT)) {
                cmp_u64(d, "gdt.base", a->gdt.base, b->gdt.base);
                cmp_u64(d, "gdt.limit", a->gdt.limit, b->gdt.limit);
        }
        if (!ignored(o, IGN_IDT)) {
                cmp_u64(d, "idt.base", a->idt.base, b->idt.base);
                cmp_u64(d, "idt.limit", a->idt.limit, b->idt.limit);
        }
        if (!ignored(o, IGN_INTR))
                cmp_u64(d, "intr", a->intr, b->intr);
}

static void cmp_exit_data(const struct cmp *c, const struct hvt_exit *a,
                          const struct hvt_exit *b, struct fdiffs *d)
{
        const struct diff_opts *o = c->o;

        switch (a->reason) {
        case HVT_EXIT_IO: {
                const struct hvt_disk_io *ia = &a->u.io.io, *ib = &b->u.io.io;

                cmp_u64(d, "io.port", ia->port, ib->port);
                if (ia->dir != ib->dir)
                        fd_str(d, "io.dir", ia->dir == HVT_IO_OUT ? "out" : "in",
                               ib->dir == HVT_IO_OUT ? "out" : "in");
                cmp_u64(d, "io.size", ia->size, ib->size);
                cmp_u64(d, "io.count", ia->count, ib->count);
                if (!ignored(o, IGN_IO_DATA))
                        cmp_bytes(d, "io.data", a->u.io.data, (size_t)ia->size * ia->count,
                                  b->u.io.data, (size_t)ib->size * ib->count);
                break;
        }
        case HVT_EXIT_MMIO: {
                const struct hvt_disk_mmio *ma = &a->u.mmio, *mb = &b->u.mmio;

                cmp_u64(d, "mmio.addr", ma->addr, mb->addr);
                cmp_u64(d, "mmio.len", ma->len, mb->len);
                if (!ma->is_write != !mb->is_write)
                        fd_str(d, "mmio.dir", ma->is_write ? "write" : "read",
                               mb->is_write ? "write" : "read");
                if (!ignored(o, IGN_MMIO_DATA))
                        cmp_bytes(d, "mmio.data", ma->data, ma->len < 8 ? ma->len : 8, mb->data,
                                  mb->len < 8 ? mb->len : 8);
                break;
        }
        case HVT_EXIT_DEBUG:
                cmp_u64(d, "debug.exception", a->u.debug.exception, b->u.debug.exception);
                cmp_u64(d, "debug.pc", a->u.debug.pc, b->u.debug.pc);
                if (!ignored(o, IGN_DEBUG_DR)) {
                        cmp_u64(d, "debug.dr6", a->u.debug.dr6, b->u.debug.dr6);
                        cmp_u64(d, "debug.dr7", a->u.debug.dr7, b->u.debug.dr7);
                }
                break;
        case HVT_EXIT_EXCEPTION:
                cmp_u64(d, "exception.vector", a->u.exception.vector, b->u.exception.vector);
                cmp_u64(d, "exception.error_code", a->u.exception.error_code,
                        b->u.exception.error_code);
                cmp_u64(d, "exception.cr2", a->u.exception.cr2, b->u.exception.cr2);
                break;
        case HVT_EXIT_FAIL_ENTRY:
                if (!ignored(o, IGN_BACKEND_DATA))
                        cmp_u64(d, "fail_entry.hw_reason", a->u.fail_entry.hw_reason,
                                b->u.fail_entry.hw_reason);
                break;
        case HVT_EXIT_INTERNAL:
                if (!ignored(o, IGN_BACKEND_DATA)) {
                        const unsigned na = a->u.internal.internal.ndata,
                                       nb = b->u.internal.internal.ndata;

                        cmp_u64(d, "internal.suberror", a->u.internal.internal.suberror,
                                b->u.internal.internal.suberror);
                        cmp_bytes(d, "internal.data", (const uint8_t *)a->u.internal.data,
                                  (na <= HVT_INTERNAL_MAX_DATA ? na : 0) * 8u,
                                  (const uint8_t *)b->u.internal.data,
                                  (nb <= HVT_INTERNAL_MAX_DATA ? nb : 0) * 8u);
                }
                break;
        default: break;
        }
}

static void cmp_deliveries(const struct cmp *c, const struct unit *a, const struct unit *b,
                           struct fdiffs *d)
{
        uint64_t fmask = rflags_mask(c->o);
        size_t n = a->ndv > b->ndv ? a->ndv : b->ndv;

        for (size_t i = 0; i < n; i++) {
                char sa[96], sb[96];

                if (i >= a->ndv || i >= b->ndv) {
                        if (d->count_only) {
                                d->n++;
                                continue;
                        }
                        if (i < a->ndv)
                                fmt_deliver(sa, sizeof(sa), &a->dv[i]);
                        if (i < b->ndv)
                                fmt_deliver(sb, sizeof(sb), &b->dv[i]);
                        fd_str(d, "deliver", i < a->ndv ? sa : NULL, i < b->ndv ? sb : NULL);
                        continue;
                }
                cmp_u64(d, "deliver.vector", a->dv[i].vector, b->dv[i].vector);
                cmp_u64(d, "deliver.cs", a->dv[i].cs, b->dv[i].cs);
                cmp_u64(d, "deliver.ip", a->dv[i].ip, b->dv[i].ip);
                if (!ignored(c->o, IGN_RFLAGS))
                        cmp_u64(d, "deliver.flags", a->dv[i].flags & fmask, b->dv[i].flags & fmask);
                cmp_u64(d, "deliver.sp", a->dv[i].sp, b->dv[i].sp);
                cmp_u64(d, "deliver.handler", a->dv[i].handler, b->dv[i].handler);
        }
}

/* The recorded bytes that belong to the instruction at RIP (all of them if it does not decode). */
static size_t insn_span(struct disasm *d, struct unit *u)
{
        struct disasm_insn in;

        if (u->insn_n < 0)
                u->insn_n = u->ex.insn_len && !replay_decode_exit(d, &u->ex, &in) &&
                                            in.len <= u->ex.insn_len
                                    ? in.len
                                    : u->ex.insn_len;
        return (size_t)u->insn_n;
}

/* Every difference between two units that the options do not excuse; returns their number. */
static size_t compare_units(const struct cmp *c, struct unit *a, struct unit *b, struct fdiffs *d)
{
        const struct diff_opts *o = c->o;
        const struct hvt_exit *ea = &a->ex, *eb = &b->ex;
        struct io_match m, *mp = NULL;
        size_t before = d->n;
        unsigned in_size = 0;

        if (ea->reason != eb->reason) {
                fd_str(d, "reason", hvt_exit_reason_name(ea->reason),
                       hvt_exit_reason_name(eb->reason));
                return d->n - before;
        }
        if (ea->reason == HVT_EXIT_IO && !o->io_raw) {
                match_io(c->A, a, c->B, b, &m);
                if (!m.raw) {
                        mp = &m;
                        cmp_u64(d, "io.insn", m.addr_a, m.addr_b);
                        if (ea->u.io.io.dir == HVT_IO_IN && eb->u.io.io.dir == HVT_IO_IN &&
                            ea->u.io.io.size == eb->u.io.io.size)
                                in_size = ea->u.io.io.size;
                }
        }
        cmp_state(c, &ea->st, &eb->st, mp, in_size, mp && (a->io_string || b->io_string), d);
        if (!ignored(o, IGN_INSN) && !(mp && mp->relaxed))
                cmp_bytes(d, "insn", ea->insn, insn_span(c->A->code.dis, a), eb->insn,
                          insn_span(c->B->code.dis, b));
        cmp_exit_data(c, ea, eb, d);
        if (!ignored(o, IGN_DELIVER))
                cmp_deliveries(c, a, b, d);
        if (!ignored(o, IGN_CONSOLE))
                cmp_text(d, "console", a->con, a->con_len, b->con, b->con_len);
        return d->n - before;
}

static bool units_equal(const struct cmp *c, struct unit *a, struct unit *b)
{
        struct fdiffs d = { .count_only = true };

        return compare_units(c, a, b, &d) == 0;
}

/* ---- text output -------------------------------------------------------------------- */

/* One unit as hvreplay dump prints it, without the time, then what it wrote and reported. */
static void text_unit(FILE *f, struct disasm *d, const char *mark, const struct unit *u)
{
        const struct hvt_exit *ex = &u->ex;
        struct disasm_insn insn;
        char pc[32], regs[200], intr[64];

        replay_fmt_pc(&ex->st, pc, sizeof(pc));
        replay_text_regs(&ex->st, regs, sizeof(regs));
        replay_fmt_intr(ex->st.intr, intr, sizeof(intr));
        fprintf(f, "  %s #%-7" PRIu64 " %-10s %-9s %s  %-26s %s %s", mark, ex->seq,
                hvt_exit_reason_name(ex->reason), hvt_mode_name(hvt_state_mode(&ex->st)), pc,
                replay_insn_text(d, ex, &insn), regs, intr);
        replay_text_exit_data(f, ex);
        fputc('\n', f);
        for (size_t i = 0; i < u->ndv; i++) {
                const struct hvt_disk_deliver *dv = &u->dv[i];

                if (dv->frame_bits == 16)
                        snprintf(pc, sizeof(pc), "%04x:%04" PRIx64, dv->cs, dv->ip & 0xffff);
                else
                        snprintf(pc, sizeof(pc), "%04x:%" PRIx64, dv->cs, dv->ip);
                fprintf(f,
                        "     %8s %-10s vector 0x%02x interrupted %s fl=%04" PRIx64 " sp=%04" PRIx64
                        " handler 0x%" PRIx64 "\n",
                        "", "deliver", dv->vector, pc, dv->flags, dv->sp, dv->handler);
        }
        if (u->con_len) {
                fprintf(f, "     %8s %-10s \"", "", "console");
                replay_put_escaped(f, u->con, u->con_len, '"');
                fputs("\"\n", f);
        }
}

static void text_value(FILE *f, const struct fdiff *x, bool b)
{
        const char *v = b ? x->b : x->a;
        size_t n = b ? x->blen : x->alen;

        if (b ? x->b_null : x->a_null) {
                fputs("(none)", f);
        } else if (x->text) {
                fputc('"', f);
                replay_put_escaped(f, v, n, '"');
                fputc('"', f);
        } else {
                replay_put_str(f, v);
        }
}

static void text_fields(FILE *f, const struct fdiffs *d)
{
        for (size_t i = 0; i < d->n; i++) {
                fprintf(f, "%s%s a=", i ? "; " : "", d->v[i].field);
                text_value(f, &d->v[i], false);
                fputs(" b=", f);
                text_value(f, &d->v[i], true);
        }
}

/* ---- the comparison ----------------------------------------------------------------- */

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

static void note_first(struct diff *D, const struct unit *ua, const struct unit *ub)
{
        if (D->first_found)
                return;
        D->first_found = true;
        D->first_have_a = ua != NULL;
        D->first_have_b = ub != NULL;
        D->first_a = ua ? ua->ex.seq : 0;
        D->first_b = ub ? ub->ex.seq : 0;
}

static void jd_add(struct diff *D, const struct unit *ua, const struct unit *ub,
                   const struct fdiff *f, uint64_t count)
{
        struct jdiv *j;
        struct disasm_insn in;

        D->nfields++;
        if (!D->o.json)
                return;
        reserve((void **)&D->jd, &D->jd_cap, D->njd + 1, sizeof(*D->jd));
        j = &D->jd[D->njd++];
        memset(j, 0, sizeof(*j));
        j->f = *f;
        j->count = count;
        if (ua) {
                j->have_a = true;
                j->event_a = ua->ex.seq;
                j->pc_a = ua->pc;
                j->reason_a = hvt_exit_reason_name(ua->ex.reason);
                snprintf(j->insn_a, sizeof(j->insn_a), "%s",
                         replay_insn_text(D->dis, &ua->ex, &in));
        }
        if (ub) {
                j->have_b = true;
                j->event_b = ub->ex.seq;
                j->pc_b = ub->pc;
                j->reason_b = hvt_exit_reason_name(ub->ex.reason);
                snprintf(j->insn_b, sizeof(j->insn_b), "%s",
                         replay_insn_text(D->dis, &ub->ex, &in));
        }
}

/* The unit at offset off from the current one (negative: before it), or NULL. */
static struct unit *unit_at(struct diff *D, struct side *s, int64_t off)
{
        return off < 0 ? behind(s, (uint64_t)-off) : peek(s, &D->o, (uint64_t)off);
}

/*
 * Context of one item: the --context units before offset off, then the n
 * units of the item, marked; with none, where this side goes on.
 */
static void text_context(struct diff *D, struct side *s, int64_t off, uint64_t n)
{
        struct unit *next;

        printf("  %s = ", s->tag);
        replay_put_str(stdout, s->path);
        fputs(":\n", stdout);
        for (int64_t i = (int64_t)D->o.context; i >= 1; i--) {
                struct unit *u = unit_at(D, s, off - i);

                if (u)
                        text_unit(stdout, D->dis, "  ", u);
        }
        for (uint64_t i = 0; i < n; i++)
                text_unit(stdout, D->dis, "->", unit_at(D, s, off + (int64_t)i));
        if (n)
                return;
        next = unit_at(D, s, off);
        if (next)
                printf("  -> (nothing here in %s: it goes on with #%" PRIu64 ")\n", s->tag,
                       next->ex.seq);
        else
                printf("  -> (nothing here in %s: it ended)\n", s->tag);
}

static void item_title(struct diff *D)
{
        D->items++;
        if (D->o.json)
                return;
        if (D->o.all)
                printf("divergence %" PRIu64 ":\n", D->items);
        else
                printf("first divergence:\n");
}

/* A pair of units that differ: every field, then the context. */
static void report_pair(struct diff *D, int64_t ia, int64_t jb)
{
        struct unit *ua = unit_at(D, &D->A, ia), *ub = unit_at(D, &D->B, jb);
        struct fdiffs d = { 0 };

        compare_units(&D->c, ua, ub, &d);
        note_first(D, ua, ub);
        item_title(D);
        for (size_t i = 0; i < d.n; i++)
                jd_add(D, ua, ub, &d.v[i], 0);
        if (!D->o.json) {
                printf("  a#%" PRIu64 " b#%" PRIu64, ua->ex.seq, ub->ex.seq);
                if (ua->ex.reason == ub->ex.reason)
                        printf(" %s", hvt_exit_reason_name(ua->ex.reason));
                printf(": ");
                text_fields(stdout, &d);
                putchar('\n');
                text_context(D, &D->A, ia, 1);
                text_context(D, &D->B, jb, 1);
        }
        free(d.v);
}

/* A unit of one side with no counterpart on the other (and `more` after it, at the end). */
static void record_only(struct diff *D, struct side *s, const struct unit *u, uint64_t more)
{
        struct fdiff f;
        bool is_a = s == &D->A;

        memset(&f, 0, sizeof(f));
        snprintf(f.field, sizeof(f.field), "exit");
        if (is_a) {
                f.alen = (size_t)snprintf(f.a, sizeof(f.a), "%s",
                                          hvt_exit_reason_name(u->ex.reason));
                f.b_null = true;
        } else {
                f.blen = (size_t)snprintf(f.b, sizeof(f.b), "%s",
                                          hvt_exit_reason_name(u->ex.reason));
                f.a_null = true;
        }
        note_first(D, is_a ? u : NULL, is_a ? NULL : u);
        jd_add(D, is_a ? u : NULL, is_a ? NULL : u, &f, more + 1);
}

/* n units of side s from offset off have no counterpart; the other side is at other_off. */
static void report_only(struct diff *D, struct side *s, int64_t off, uint64_t n, int64_t other_off)
{
        item_title(D);
        for (uint64_t k = 0; k < n; k++) {
                struct unit *u = unit_at(D, s, off + (int64_t)k);

                record_only(D, s, u, 0);
                if (!D->o.json)
                        printf("  %s#%" PRIu64 " %s: only in %s\n", s->tag, u->ex.seq,
                               hvt_exit_reason_name(u->ex.reason), s->tag);
        }
        if (!D->o.json) {
                text_context(D, &D->A, s == &D->A ? off : other_off, s == &D->A ? n : 0);
                text_context(D, &D->B, s == &D->B ? off : other_off, s == &D->B ? n : 0);
        }
}

/* Whether two units are the same event: reason, instruction address, port or MMIO address. */
static bool keys_equal(const struct cmp *c, struct unit *a, struct unit *b)
{
        const struct hvt_exit *ea = &a->ex, *eb = &b->ex;
        struct io_match m;

        if (ea->reason != eb->reason)
                return false;
        switch (ea->reason) {
        case HVT_EXIT_IO:
                if (ea->u.io.io.port != eb->u.io.io.port || ea->u.io.io.dir != eb->u.io.io.dir ||
                    ea->u.io.io.size != eb->u.io.io.size)
                        return false;
                if (c->o->io_raw)
                        return a->pc == b->pc;
                match_io(c->A, a, c->B, b, &m);
                return m.raw ? a->pc == b->pc : m.addr_a == m.addr_b;
        case HVT_EXIT_MMIO: return ea->u.mmio.addr == eb->u.mmio.addr && a->pc == b->pc;
        default: return a->pc == b->pc;
        }
}

/*
 * The units at the current positions differ.  Align the next RESYNC_WINDOW
 * units of each side: a longest common subsequence where a pair of units
 * equal in every compared field weighs 2 and a pair that is only the same
 * event (keys_equal) weighs 1.  Walk the alignment and report item by item
 * (a pair that differs, or a run of units only one side has; two units that
 * are both left out at the same point are one in place of the other: a pair)
 * up to the next pair of equal units, where the comparison goes on: *pi, *pj
 * units later.
 * Without --all only the first item.  Nothing alignable: the pair itself.
 */
static void diverged(struct diff *D, uint64_t *pi, uint64_t *pj)
{
        enum { W = RESYNC_WINDOW };
        static uint8_t w[W][W];
        static uint16_t S[W + 1][W + 1];
        uint64_t n = 0, m = 0, x = 0, y = 0;
        bool more_a, more_b, reported = false;

        while (n < W && peek(&D->A, &D->o, n))
                n++;
        while (m < W && peek(&D->B, &D->o, m))
                m++;
        more_a = n == W && peek(&D->A, &D->o, n); /* the window does not reach the end */
        more_b = m == W && peek(&D->B, &D->o, m);
        memset(S, 0, sizeof(S));
        for (uint64_t i = n; i-- > 0;)
                for (uint64_t j = m; j-- > 0;) {
                        struct unit *ua = peek(&D->A, &D->o, i), *ub = peek(&D->B, &D->o, j);
                        uint16_t best = S[i + 1][j] > S[i][j + 1] ? S[i + 1][j] : S[i][j + 1];

                        w[i][j] = !keys_equal(&D->c, ua, ub)   ? 0
                                  : units_equal(&D->c, ua, ub) ? 2
                                                               : 1;
                        if (w[i][j] && w[i][j] + S[i + 1][j + 1] > best)
                                best = (uint16_t)(w[i][j] + S[i + 1][j + 1]);
                        S[i][j] = best;
                }
        if (!S[0][0]) { /* nothing in common nearby: the pair is the divergence */
                D->compared++;
                report_pair(D, 0, 0);
                *pi = *pj = 1;
                return;
        }
        while ((x < n || y < m) && !(D->items && !D->o.all)) {
                if ((x == n && more_a) || (y == m && more_b))
                        break; /* beyond the window: go on from here */
                if (x < n && y < m && w[x][y] && S[x][y] == w[x][y] + S[x + 1][y + 1]) {
                        if (w[x][y] == 2 && reported)
                                break; /* in step again */
                        D->compared++;
                        if (w[x][y] == 1) {
                                report_pair(D, (int64_t)x, (int64_t)y);
                                reported = true;
                        }
                        x++;
                        y++;
                        continue;
                }
                if (x < n && y < m && S[x][y] == S[x + 1][y + 1]) {
                        /* Neither has a counterpart: one exit in place of the other. */
                        D->compared++;
                        report_pair(D, (int64_t)x, (int64_t)y);
                        reported = true;
                        x++;
                        y++;
                        continue;
                }
                if (x < n && (y == m || S[x + 1][y] >= S[x][y + 1])) {
                        uint64_t k = x + 1;

                        while (k < n &&
                               !(y < m && w[k][y] && S[k][y] == w[k][y] + S[k + 1][y + 1]) &&
                               (y == m || S[k + 1][y] >= S[k][y + 1]))
                                k++;
                        report_only(D, &D->A, (int64_t)x, k - x, (int64_t)y);
                        x = k;
                } else {
                        uint64_t k = y + 1;

                        while (k < m &&
                               !(x < n && w[x][k] && S[x][k] == w[x][k] + S[x + 1][k + 1]) &&
                               (x == n || S[x + 1][k] < S[x][k + 1]))
                                k++;
                        report_only(D, &D->B, (int64_t)y, k - y, (int64_t)x);
                        y = k;
                }
                reported = true;
        }
        *pi = x;
        *pj = y;
}

/* One side has ended cleanly and the other has units left: one divergence for all of them. */
static void tail(struct diff *D, struct side *s, struct side *other)
{
        struct unit first = { 0 };
        uint64_t more = 0;

        item_title(D);
        copy_exit(&first, &peek(s, &D->o, 0)->ex);
        if (!D->o.json) {
                printf("  %s#%" PRIu64 " %s and what follows: only in %s (%s ended)\n", s->tag,
                       first.ex.seq, hvt_exit_reason_name(first.ex.reason), s->tag, other->tag);
                text_context(D, &D->A, 0, s == &D->A ? 1 : 0);
                text_context(D, &D->B, 0, s == &D->B ? 1 : 0);
        }
        while (peek(s, &D->o, 1)) { /* count what is left */
                s->pos++;
                more++;
        }
        s->pos++;
        record_only(D, s, &first, more);
        if (!D->o.json)
                printf("  %" PRIu64 " exit%s only in %s\n", more + 1, more ? "s" : "", s->tag);
        unit_free(&first);
}

static void compare_ends(struct diff *D)
{
        struct side *A = &D->A, *B = &D->B;
        struct fdiffs d = { 0 };
        char sa[32], sb[32];

        if (ignored(&D->o, IGN_END))
                return;
        if (A->have_end != B->have_end) {
                fd_str(&d, "end", A->have_end ? hvt_end_why_name(A->end.why) : NULL,
                       B->have_end ? hvt_end_why_name(B->end.why) : NULL);
        } else if (A->have_end) {
                if (A->end.why != B->end.why)
                        fd_str(&d, "end.why", hvt_end_why_name(A->end.why),
                               hvt_end_why_name(B->end.why));
                if (A->end.status != B->end.status) {
                        snprintf(sa, sizeof(sa), "%d", A->end.status);
                        snprintf(sb, sizeof(sb), "%d", B->end.status);
                        fd_str(&d, "end.status", sa, sb);
                }
        }
        if (d.n) {
                if (!D->first_found) {
                        D->first_found = true;
                        D->first_have_a = D->first_have_b = false;
                }
                item_title(D);
                for (size_t i = 0; i < d.n; i++)
                        jd_add(D, NULL, NULL, &d.v[i], 0);
                if (!D->o.json) {
                        printf("  end of the run: ");
                        text_fields(stdout, &d);
                        fputs("\n  a: ", stdout);
                        replay_put_str(stdout, A->have_end ? A->end_msg : "(no end record)");
                        fputs("\n  b: ", stdout);
                        replay_put_str(stdout, B->have_end ? B->end_msg : "(no end record)");
                        putchar('\n');
                }
        }
        free(d.v);
}

/* Walk both traces to the end, or to the first divergence without --all. */
static void walk(struct diff *D)
{
        for (;;) {
                struct unit *ua = peek(&D->A, &D->o, 0), *ub = peek(&D->B, &D->o, 0);
                uint64_t i, j;

                if (!ua || !ub) {
                        if (side_failed(&D->A) || side_failed(&D->B))
                                return; /* a damaged trace: nothing more to say */
                        if (ua)
                                tail(D, &D->A, &D->B);
                        else if (ub)
                                tail(D, &D->B, &D->A);
                        else
                                compare_ends(D);
                        return;
                }
                if (units_equal(&D->c, ua, ub)) {
                        D->compared++;
                        D->A.pos++;
                        D->B.pos++;
                        continue;
                }
                diverged(D, &i, &j);
                if (!D->o.all)
                        return;
                D->A.pos += i;
                D->B.pos += j;
        }
}

/* ---- headers and memory images ------------------------------------------------------ */

struct hdiff {
        const char *field;
        char a[256], b[256];
};

struct hdiffs {
        struct hdiff v[24];
        size_t n;
};

static void hd_add(struct hdiffs *h, const char *field, const char *a, const char *b)
{
        if (!strcmp(a, b) || h->n >= sizeof(h->v) / sizeof(h->v[0]))
                return;
        h->v[h->n].field = field;
        snprintf(h->v[h->n].a, sizeof(h->v[0].a), "%s", a);
        snprintf(h->v[h->n].b, sizeof(h->v[0].b), "%s", b);
        h->n++;
}

static void hd_hex(struct hdiffs *h, const char *field, uint64_t a, uint64_t b)
{
        char sa[24], sb[24];

        snprintf(sa, sizeof(sa), "0x%" PRIx64, a);
        snprintf(sb, sizeof(sb), "0x%" PRIx64, b);
        hd_add(h, field, sa, sb);
}

/* The recorded options: argv without the program, the output file and the guest. */
static void options_of(const struct hvt_header *h, char *buf, size_t len)
{
        size_t n = 0;

        buf[0] = 0;
        for (int i = 1; i < h->argc && n < len; i++) {
                const char *a = h->argv[i];

                if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
                        i++;
                        continue;
                }
                if (!strncmp(a, "--output=", 9) || (!strncmp(a, "-o", 2) && a[2]))
                        continue;
                if (i == h->argc - 1 && !strcmp(a, h->str[HVT_STR_GUEST]))
                        continue;
                n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? " " : "", a);
        }
}

static void compare_headers(const struct hvt_header *a, const struct hvt_header *b,
                            struct hdiffs *h)
{
        char sa[256], sb[256];

        hd_add(h, "recorder", a->str[HVT_STR_TOOL_VERSION], b->str[HVT_STR_TOOL_VERSION]);
        hd_add(h, "backend", a->str[HVT_STR_BACKEND], b->str[HVT_STR_BACKEND]);
        hd_add(h, "backend version", a->str[HVT_STR_BACKEND_VERSION],
               b->str[HVT_STR_BACKEND_VERSION]);
        hd_add(h, "cpu vendor", a->str[HVT_STR_CPU_VENDOR], b->str[HVT_STR_CPU_VENDOR]);
        hd_add(h, "cpu model", a->str[HVT_STR_CPU_MODEL], b->str[HVT_STR_CPU_MODEL]);
        hd_add(h, "kernel", a->str[HVT_STR_KERNEL], b->str[HVT_STR_KERNEL]);
        hd_add(h, "guest file", a->str[HVT_STR_GUEST], b->str[HVT_STR_GUEST]);
        hd_add(h, "mode", hvt_mode_name(a->h.guest_mode), hvt_mode_name(b->h.guest_mode));
        hd_hex(h, "load", a->h.load_addr, b->h.load_addr);
        hd_hex(h, "entry", a->h.entry, b->h.entry);
        hd_hex(h, "memory size", a->h.mem_size, b->h.mem_size);
        hd_add(h, "policy", hvt_policy_name(a->h.inject_policy),
               hvt_policy_name(b->h.inject_policy));
        hd_add(h, "single-step", (a->h.flags & HVT_HDR_SINGLE_STEP) ? "yes" : "no",
               (b->h.flags & HVT_HDR_SINGLE_STEP) ? "yes" : "no");
        hd_add(h, "kicks", (a->h.flags & HVT_HDR_KICKS) ? "yes" : "no",
               (b->h.flags & HVT_HDR_KICKS) ? "yes" : "no");
        hd_hex(h, "backend caps", a->h.backend_caps, b->h.backend_caps);
        snprintf(sa, sizeof(sa), "%" PRIu64, a->h.seed);
        snprintf(sb, sizeof(sb), "%" PRIu64, b->h.seed);
        hd_add(h, "seed", sa, sb);
        options_of(a, sa, sizeof(sa));
        options_of(b, sb, sizeof(sb));
        hd_add(h, "options", sa, sb);
}

static uint8_t image_byte(const struct side *s, uint64_t gpa)
{
        return gpa < s->code.mem.size ? s->code.ram[gpa] : 0;
}

/* The lowest address where the initial images differ, over every range either side loaded. */
static bool image_differs(const struct side *a, const struct side *b, uint64_t *where)
{
        const struct side *sides[2] = { a, b };
        bool found = false;

        for (int k = 0; k < 2; k++)
                for (size_t r = 0; r < sides[k]->nranges; r++) {
                        uint64_t gpa = sides[k]->ranges[r].gpa, end = gpa + sides[k]->ranges[r].len;

                        if (gpa < a->code.mem.size && end <= a->code.mem.size &&
                            gpa < b->code.mem.size && end <= b->code.mem.size &&
                            !memcmp(a->code.ram + gpa, b->code.ram + gpa, end - gpa))
                                continue;
                        for (uint64_t g = gpa; g < end; g++)
                                if (image_byte(a, g) != image_byte(b, g)) {
                                        if (!found || g < *where)
                                                *where = g;
                                        found = true;
                                        break;
                                }
                }
        return found;
}

/* ---- output around the walk --------------------------------------------------------- */

static void fmt_reasons(uint64_t set, char *buf, size_t len)
{
        size_t n = 0;

        buf[0] = 0;
        for (unsigned i = 0; i < HVT_EXIT_REASON_COUNT && n < len; i++)
                if (set & BIT(i))
                        n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? "," : "",
                                              hvt_exit_reason_name(i));
}

static void fmt_fields(uint64_t set, char *buf, size_t len)
{
        size_t n = 0;

        buf[0] = 0;
        for (unsigned i = 0; i < IGN_COUNT && n < len; i++)
                if (set & BIT(i))
                        n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? "," : "", ign_names[i]);
}

/* Header strings come from the traces: every one is escaped. */
static void text_side(const struct side *s)
{
        const struct hvt_header *h = s->hdr;

        printf("%s: ", s->tag);
        replay_put_str(stdout, s->path);
        fputs(": backend ", stdout);
        replay_put_str(stdout, h->str[HVT_STR_BACKEND]);
        fputs(" (", stdout);
        replay_put_str(stdout, h->str[HVT_STR_BACKEND_VERSION]);
        fputs("), host ", stdout);
        replay_put_str(stdout, h->str[HVT_STR_CPU_VENDOR]);
        putchar(' ');
        replay_put_str(stdout, h->str[HVT_STR_CPU_MODEL]);
        fputs(", ", stdout);
        replay_put_str(stdout, h->str[HVT_STR_KERNEL]);
        putchar('\n');
}

/* "  field            a=A b=B", or a and b on lines of their own when long. */
static void text_hdiff(const struct hdiff *d)
{
        bool one_line = strlen(d->a) + strlen(d->b) <= 48;

        printf("  %-16s a=", d->field);
        replay_put_str(stdout, d->a);
        if (one_line)
                fputs(" b=", stdout);
        else
                printf("\n  %-16s b=", "");
        replay_put_str(stdout, d->b);
        putchar('\n');
}

static void text_preamble(struct diff *D, const struct hdiffs *h, bool img_diff, uint64_t gpa)
{
        const struct hvt_header *a = D->A.hdr;
        char reasons[256], fields[512];

        text_side(&D->A);
        text_side(&D->B);
        fputs("guest ", stdout);
        replay_put_str(stdout, a->str[HVT_STR_GUEST]);
        printf(": %s mode, load 0x%" PRIx64 ", entry 0x%" PRIx64 ", memory %" PRIu64
               " bytes, policy %s%s\n",
               hvt_mode_name(a->h.guest_mode), a->h.load_addr, a->h.entry, a->h.mem_size,
               hvt_policy_name(a->h.inject_policy),
               (a->h.flags & HVT_HDR_SINGLE_STEP) ? ", single-step" : "");
        if (!h->n) {
                printf("headers: no difference\n");
        } else {
                printf("headers differ (not a divergence):\n");
                for (size_t i = 0; i < h->n; i++)
                        text_hdiff(&h->v[i]);
        }
        if (img_diff)
                printf("initial memory: differs at gpa 0x%" PRIx64 " (a=0x%02x b=0x%02x): not the "
                       "same guest\n",
                       gpa, image_byte(&D->A, gpa), image_byte(&D->B, gpa));
        else
                printf("initial memory: identical (a: %" PRIu64 " bytes in %" PRIu64
                       " records, b: %" PRIu64 " bytes in %" PRIu64 " records)\n",
                       D->A.mem_bytes, D->A.mem_records, D->B.mem_bytes, D->B.mem_records);
        fmt_reasons(D->o.ignore_reasons, reasons, sizeof(reasons));
        fmt_fields(D->o.ignore_fields, fields, sizeof(fields));
        printf("ignored: timing; exits %s; fields %s; I/O exits compared by %s\n",
               reasons[0] ? reasons : "(none)", fields[0] ? fields : "(none)",
               D->o.io_raw ? "RIP as recorded" : "instruction address");
}

static void json_fdiff_value(struct json *j, const char *key, const struct fdiff *f, bool b)
{
        if (b ? f->b_null : f->a_null)
                json_null(j, key);
        else
                json_strn(j, key, b ? f->b : f->a, b ? f->blen : f->alen);
}

static void print_json(struct diff *D, const struct hdiffs *h, bool img_diff, uint64_t gpa,
                       bool same, bool complete)
{
        struct json j;

        json_begin(&j, stdout);
        json_str(&j, "a", D->A.path);
        json_str(&j, "b", D->B.path);
        json_bool(&j, "same", same);
        json_bool(&j, "same_guest", !img_diff);
        json_bool(&j, "complete", complete);
        json_arr(&j, "headers");
        for (size_t i = 0; i < h->n; i++) {
                json_obj(&j, NULL);
                json_str(&j, "field", h->v[i].field);
                json_str(&j, "a", h->v[i].a);
                json_str(&j, "b", h->v[i].b);
                json_obj_end(&j);
        }
        json_arr_end(&j);
        json_obj(&j, "ignored");
        json_bool(&j, "timing", true);
        json_arr(&j, "reasons");
        for (unsigned i = 0; i < HVT_EXIT_REASON_COUNT; i++)
                if (D->o.ignore_reasons & BIT(i))
                        json_str(&j, NULL, hvt_exit_reason_name(i));
        json_arr_end(&j);
        json_arr(&j, "fields");
        for (unsigned i = 0; i < IGN_COUNT; i++)
                if (D->o.ignore_fields & BIT(i))
                        json_str(&j, NULL, ign_names[i]);
        json_arr_end(&j);
        json_str(&j, "io_rip", D->o.io_raw ? "raw" : "instruction");
        json_obj_end(&j);
        json_u64(&j, "exits_a", D->A.exits);
        json_u64(&j, "exits_b", D->B.exits);
        json_u64(&j, "skipped_a", D->A.skipped);
        json_u64(&j, "skipped_b", D->B.skipped);
        json_u64(&j, "compared", D->compared);
        json_arr(&j, "divergences");
        if (img_diff) {
                json_obj(&j, NULL);
                json_null(&j, "event_a");
                json_null(&j, "event_b");
                json_str(&j, "field", "memory");
                json_hex(&j, "gpa", gpa);
                json_hex(&j, "a", image_byte(&D->A, gpa));
                json_hex(&j, "b", image_byte(&D->B, gpa));
                json_obj_end(&j);
        }
        for (size_t i = 0; i < D->njd; i++) {
                const struct jdiv *x = &D->jd[i];

                json_obj(&j, NULL);
                if (x->have_a)
                        json_u64(&j, "event_a", x->event_a);
                else
                        json_null(&j, "event_a");
                if (x->have_b)
                        json_u64(&j, "event_b", x->event_b);
                else
                        json_null(&j, "event_b");
                json_str(&j, "field", x->f.field);
                json_fdiff_value(&j, "a", &x->f, false);
                json_fdiff_value(&j, "b", &x->f, true);
                if (x->count)
                        json_u64(&j, "count", x->count);
                if (x->have_a) {
                        json_str(&j, "reason_a", x->reason_a);
                        json_hex(&j, "pc_a", x->pc_a);
                        json_str(&j, "insn_a", x->insn_a);
                }
                if (x->have_b) {
                        json_str(&j, "reason_b", x->reason_b);
                        json_hex(&j, "pc_b", x->pc_b);
                        json_str(&j, "insn_b", x->insn_b);
                }
                json_obj_end(&j);
        }
        json_arr_end(&j);
        json_end(&j);
}

/* ---- the command -------------------------------------------------------------------- */

static int parse_args(int argc, char **argv, struct diff_opts *o)
{
        static const struct option opts[] = {
                { "context", required_argument, NULL, 'c' },
                { "all", no_argument, NULL, 'a' },
                { "ignore-reason", required_argument, NULL, 'r' },
                { "io-rip", required_argument, NULL, 'i' },
                { "ignore-field", required_argument, NULL, 'f' },
                { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                { 0 },
        };
        int c;

        memset(o, 0, sizeof(*o));
        o->context = 3;
        o->ignore_reasons = DEFAULT_IGNORE_REASONS;
        o->ignore_fields = DEFAULT_IGNORE_FIELDS;
        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
                switch (c) {
                case 'c': {
                        char *end;
                        unsigned long v = strtoul(optarg, &end, 10);

                        if (!*optarg || *end || optarg[0] == '-' || v > MAX_CONTEXT) {
                                fprintf(stderr,
                                        "hvreplay diff: --context: '%s' is not a number "
                                        "from 0 to %d\n",
                                        optarg, MAX_CONTEXT);
                                return -1;
                        }
                        o->context = (unsigned)v;
                        break;
                }
                case 'a': o->all = true; break;
                case 'r':
                        if (parse_list("--ignore-reason", optarg, DEFAULT_IGNORE_REASONS,
                                       lookup_reason, "exit reason", &o->ignore_reasons))
                                return -1;
                        break;
                case 'f':
                        if (parse_list("--ignore-field", optarg, DEFAULT_IGNORE_FIELDS,
                                       lookup_field, "field", &o->ignore_fields))
                                return -1;
                        break;
                case 'i':
                        if (!strcmp(optarg, "instruction")) {
                                o->io_raw = false;
                        } else if (!strcmp(optarg, "raw")) {
                                o->io_raw = true;
                        } else {
                                fprintf(stderr,
                                        "hvreplay diff: --io-rip: '%s' is not instruction "
                                        "or raw\n",
                                        optarg);
                                return -1;
                        }
                        break;
                case 'j': o->json = true; break;
                case 'h': usage(stdout); return 1;
                default: replay_option_error("diff", c, argv); return -1;
                }
        }
        if (optind + 2 != argc) {
                fprintf(stderr, "hvreplay diff: give exactly two traces A B (see --help)\n");
                return -1;
        }
        return 0;
}

int cmd_diff(int argc, char **argv)
{
        struct diff *D;
        struct hdiffs h = { 0 };
        bool img_diff = false, same, complete;
        uint64_t gpa = 0;
        int st, status;

        D = calloc(1, sizeof(*D));
        if (!D) {
                fprintf(stderr, "hvreplay diff: out of memory\n");
                return REPLAY_ERROR;
        }
        st = parse_args(argc, argv, &D->o);
        if (st) {
                free(D);
                return st > 0 ? REPLAY_OK : REPLAY_ERROR;
        }
        if (disasm_open(&D->dis)) {
                fprintf(stderr, "hvreplay: cannot open capstone\n");
                free(D);
                return REPLAY_ERROR;
        }
        D->c.o = &D->o;
        D->c.A = &D->A;
        D->c.B = &D->B;
        if (side_open(&D->A, argv[optind], "a", D->dis, &D->o) ||
            side_open(&D->B, argv[optind + 1], "b", D->dis, &D->o)) {
                status = REPLAY_ERROR;
                goto out;
        }
        /* A trace that stops inside its memory image cannot be compared at all. */
        if (!D->A.have_look && side_failed(&D->A)) {
                status = replay_end(D->A.path, D->A.r, D->A.err);
                goto out;
        }
        if (!D->B.have_look && side_failed(&D->B)) {
                status = replay_end(D->B.path, D->B.r, D->B.err);
                goto out;
        }
        compare_headers(D->A.hdr, D->B.hdr, &h);
        img_diff = image_differs(&D->A, &D->B, &gpa);
        if (!D->o.json)
                text_preamble(D, &h, img_diff, gpa);
        if (!img_diff)
                walk(D);
        side_drain(&D->A, &D->o);
        side_drain(&D->B, &D->o);
        complete = !side_failed(&D->A) && !side_failed(&D->B);
        same = !img_diff && !D->items;
        if (D->o.json) {
                print_json(D, &h, img_diff, gpa, same && complete, complete);
        } else if (img_diff) {
                printf("not the same guest: the initial memory images differ\n");
        } else if (same) {
                printf("%s: %" PRIu64 " exits compared%s (a: %" PRIu64 " exits, %" PRIu64
                       " left out; b: %" PRIu64 " exits, %" PRIu64 " left out)\n",
                       complete ? "same" : "same so far", D->compared,
                       complete ? ", no divergence" : "", D->A.exits, D->A.skipped, D->B.exits,
                       D->B.skipped);
        } else {
                if (D->first_have_a && D->first_have_b)
                        printf("diverged: first at a#%" PRIu64 " b#%" PRIu64, D->first_a,
                               D->first_b);
                else if (D->first_have_a || D->first_have_b)
                        printf("diverged: first at %s#%" PRIu64 " (only in %s)",
                               D->first_have_a ? "a" : "b",
                               D->first_have_a ? D->first_a : D->first_b,
                               D->first_have_a ? "a" : "b");
                else
                        printf("diverged: first at the end of the run");
                printf("; %" PRIu64 " differing field%s", D->nfields, D->nfields == 1 ? "" : "s");
                if (D->o.all)
                        printf(" in %" PRIu64 " place%s\n", D->items, D->items == 1 ? "" : "s");
                else
                        printf(" (the first divergence only; --all for every one)\n");
        }
        fflush(stdout);
        if (!complete) {
                status = side_failed(&D->A) ? replay_end(D->A.path, D->A.r, D->A.err)
                                            : replay_end(D->B.path, D->B.r, D->B.err);
                goto out;
        }
        status = same ? REPLAY_OK : REPLAY_FINDINGS;
out:
        side_close(&D->A);
        side_close(&D->B);
        free(D->jd);
        disasm_close(D->dis);
        free(D);
        return status;
}
