// SPDX-License-Identifier: MIT
/* hvreplay diff: each trace read into a ring of units, and its I/O sites; the only trace reader. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../preload/exec_abi.h"
#include "check.h"
#include "diff.h"

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

void diff_reserve(void **p, size_t *cap, size_t need, size_t elem)
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

void diff_unit_free(struct unit *u)
{
        free(u->io_buf);
        free(u->con);
        free(u->dv);
        memset(u, 0, sizeof(*u));
}

void diff_copy_exit(struct unit *u, const struct hvt_exit *ex)
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
                diff_reserve((void **)&u->io_buf, &u->io_cap, n ? n : 1, 1);
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
                int err = hvt_reader_next(s->r, &ev), vcpu;

                if (err != HVT_OK) {
                        s->done = true;
                        s->err = err;
                        return;
                }
                vcpu = check_event_vcpu(s->r, &ev);
                /* Another vCPU's record: only the code its exit shows is shared. */
                if (o->vcpu >= 0 && vcpu >= 0 && vcpu != o->vcpu) {
                        if (ev.type == HVT_REC_EXIT && ev.exit.insn_len) {
                                struct code_ctx ctx = code_ctx_of(&ev.exit.st);

                                code_exit_bytes(&s->code, &ctx, hvt_state_pc(&ev.exit.st),
                                                ev.exit.insn, ev.exit.insn_len);
                        }
                        continue;
                }
                switch (ev.type) {
                case HVT_REC_MEMORY:
                        code_load(&s->code, ev.memory.gpa, ev.memory.data, ev.memory.len);
                        diff_reserve((void **)&s->ranges, &s->ranges_cap, s->nranges + 1,
                                     sizeof(*s->ranges));
                        s->ranges[s->nranges] = (struct range){ ev.memory.gpa, ev.memory.len,
                                                                xrealloc(NULL, ev.memory.len) };
                        memcpy(s->ranges[s->nranges++].bytes, ev.memory.data, ev.memory.len);
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
                        diff_copy_exit(s->look, ex);
                        s->have_look = true;
                        return;
                }
                case HVT_REC_CONSOLE:
                        if (!cur || !ev.console.len)
                                break;
                        diff_reserve((void **)&cur->con, &cur->con_cap,
                                     cur->con_len + ev.console.len, 1);
                        memcpy(cur->con + cur->con_len, ev.console.data, ev.console.len);
                        cur->con_len += ev.console.len;
                        break;
                case HVT_REC_DELIVER:
                        if (!cur)
                                break;
                        diff_reserve((void **)&cur->dv, &cur->dv_cap, cur->ndv + 1,
                                     sizeof(*cur->dv));
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
        struct unit **at, *slot;

        if (!s->have_look)
                return false;
        at = &s->ring[s->fetched % s->cap];
        slot = s->look; /* swap: buffers are reused, never shared */
        s->look = *at;
        *at = slot;
        s->have_look = false;
        s->fetched++;
        read_on(s, o, slot);
        return true;
}

/* The unit i after the current one, or NULL past the end. */
struct unit *diff_peek(struct side *s, const struct diff_opts *o, uint64_t i)
{
        while (s->fetched <= s->pos + i)
                if (!fetch(s, o))
                        return NULL;
        return s->ring[(s->pos + i) % s->cap];
}

/* The unit i before the current one (1: the previous), or NULL. */
struct unit *diff_behind(struct side *s, uint64_t i)
{
        return i <= s->pos ? s->ring[(s->pos - i) % s->cap] : NULL;
}

int diff_side_open(struct side *s, const char *path, const char *tag, struct disasm *dis,
                   const struct diff_opts *o)
{
        memset(s, 0, sizeof(*s));
        s->path = path;
        s->tag = tag;
        s->r = replay_open(path);
        if (!s->r)
                return -1;
        s->hdr = hvt_reader_header(s->r);
        s->vmm = s->hdr->str[HVT_STR_BACKEND] &&
                 !strcmp(s->hdr->str[HVT_STR_BACKEND], HVT_EXEC_BACKEND);
        if (code_init(&s->code, dis, s->hdr->h.mem_size)) {
                fputs("hvreplay diff: ", stderr);
                replay_put_str(stderr, path);
                fprintf(stderr, ": cannot allocate %" PRIu64 " bytes for the guest memory image\n",
                        s->hdr->h.mem_size);
                return -1;
        }
        s->have_code = true;
        s->cap = o->context + RESYNC_WINDOW + 2;
        s->units = xrealloc(NULL, (s->cap + 1) * sizeof(*s->units));
        memset(s->units, 0, (s->cap + 1) * sizeof(*s->units));
        s->ring = xrealloc(NULL, s->cap * sizeof(*s->ring));
        for (size_t i = 0; i < s->cap; i++)
                s->ring[i] = &s->units[i];
        s->look = &s->units[s->cap];
        /* The header, the memory image, up to the first compared exit. */
        read_on(s, o, NULL);
        return 0;
}

void diff_side_close(struct side *s)
{
        if (s->units)
                for (size_t i = 0; i <= s->cap; i++)
                        diff_unit_free(&s->units[i]);
        free(s->units);
        free(s->ring);
        for (size_t i = 0; i < s->nranges; i++)
                free(s->ranges[i].bytes);
        free(s->ranges);
        if (s->have_code)
                code_free(&s->code);
        hvt_reader_close(s->r);
}

static bool in_image(const struct side *s, uint64_t pc)
{
        for (size_t i = 0; i < s->nranges; i++)
                if (pc >= s->ranges[i].gpa && pc - s->ranges[i].gpa <= s->ranges[i].len)
                        return true;
        return false;
}

void diff_side_skip_firmware(struct side *s, const struct side *guest, const struct diff_opts *o)
{
        /* No image, no way to tell the guest's exits: none is left out. */
        if (!guest->nranges)
                return;
        while (s->have_look && !in_image(guest, s->look->pc)) {
                s->firmware++;
                s->have_look = false;
                read_on(s, o, NULL);
        }
}

/* Read the rest of a trace: exit counts, how it ended, whether it is damaged. */
void diff_side_drain(struct side *s, const struct diff_opts *o)
{
        while (!s->done) {
                s->have_look = false;
                read_on(s, o, NULL);
        }
        s->have_look = false;
}

/* A read error (not the clean end of the trace). */
bool diff_side_failed(const struct side *s)
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

void diff_match_io(struct side *A, struct unit *a, struct side *B, struct unit *b,
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
