// SPDX-License-Identifier: MIT
/* hvreplay diff: text and JSON output, and the header and memory-image checks it opens with. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "diff.h"

/* ---- text output -------------------------------------------------------------------- */

/* One unit as hvreplay dump prints it, without the time, then what it wrote and reported. */
void diff_text_unit(FILE *f, struct disasm *d, const char *mark, const struct unit *u)
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

void diff_text_fields(FILE *f, const struct fdiffs *d)
{
        for (size_t i = 0; i < d->n; i++) {
                fprintf(f, "%s%s a=", i ? "; " : "", d->v[i].field);
                text_value(f, &d->v[i], false);
                fputs(" b=", f);
                text_value(f, &d->v[i], true);
        }
}

/* ---- headers and memory images ------------------------------------------------------ */

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

void diff_compare_headers(const struct hvt_header *a, const struct hvt_header *b, struct hdiffs *h)
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

/*
 * The bytes of s's initial image from gpa on, as far as one answer holds:
 * *len bytes at the returned pointer, or *len zero bytes (NULL) where no
 * record holds gpa.  The answer ends where its record does, or where a
 * later record (which wins) or, for zeros, any record begins.
 */
static const uint8_t *image_run(const struct side *s, uint64_t gpa, uint64_t *len)
{
        const struct range *rs = s->ranges;
        size_t n = s->nranges, r = n; /* r: the last record holding gpa; >= n: none */
        uint64_t run = UINT64_MAX;

        while (r-- > 0)
                if (gpa >= rs[r].gpa && gpa - rs[r].gpa < rs[r].len)
                        break;
        if (r < n)
                run = rs[r].gpa + rs[r].len - gpa;
        /* A record that begins later overrides this one, or ends the zeros (none holds gpa). */
        for (size_t k = r < n ? r + 1 : 0; k < n; k++)
                if (rs[k].gpa > gpa && rs[k].gpa - gpa < run)
                        run = rs[k].gpa - gpa;
        *len = run;
        return r < n ? rs[r].bytes + (gpa - rs[r].gpa) : NULL;
}

/*
 * A byte of s's initial image: from its memory records (the last one that
 * holds it), not from code.ram, which the exits read so far have changed
 * (the first compared exit may come after ignored ones that showed code a
 * guest had rewritten).  RAM no record holds starts as zero.
 */
static uint8_t image_byte(const struct side *s, uint64_t gpa)
{
        uint64_t len;
        const uint8_t *p = image_run(s, gpa, &len);

        return p ? *p : 0;
}

/* The first of n bytes where p and q differ (NULL: zeros), or n. */
static uint64_t first_difference(const uint8_t *p, const uint8_t *q, uint64_t n)
{
        uint64_t i = 0;

        if (p && q && !memcmp(p, q, n))
                return n;
        for (; i < n; i++)
                if ((p ? p[i] : 0) != (q ? q[i] : 0))
                        break;
        return i;
}

/* The lowest address where the initial images differ, over the ranges of both or of only. */
bool diff_image_differs(const struct side *a, const struct side *b, const struct side *only,
                        uint64_t *where)
{
        const struct side *sides[2] = { a, b };
        bool found = false;

        for (int k = 0; k < 2; k++) {
                if (only && sides[k] != only)
                        continue;
                for (size_t r = 0; r < sides[k]->nranges; r++) {
                        uint64_t g = sides[k]->ranges[r].gpa, end = g + sides[k]->ranges[r].len;

                        /* A run at a time where both images have one answer: memcmp, not bytes. */
                        while (g < end) {
                                uint64_t la, lb, n, i;
                                const uint8_t *pa = image_run(a, g, &la),
                                              *pb = image_run(b, g, &lb);

                                n = end - g;
                                if (la < n)
                                        n = la;
                                if (lb < n)
                                        n = lb;
                                i = first_difference(pa, pb, n);
                                if (i < n) {
                                        if (!found || g + i < *where)
                                                *where = g + i;
                                        found = true;
                                        break;
                                }
                                g += n;
                        }
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
                        n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? "," : "",
                                              diff_ign_names[i]);
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

void diff_text_preamble(struct diff *D, const struct hdiffs *h, bool img_diff, uint64_t gpa)
{
        /* The guest's own header when one trace is a VMM's, whose entry is the firmware's. */
        const struct hvt_header *a = D->guest ? D->guest->hdr : D->A.hdr;
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
                printf("initial memory: identical%s (a: %" PRIu64 " bytes in %" PRIu64
                       " records, b: %" PRIu64 " bytes in %" PRIu64 " records)\n",
                       D->guest ? " over the guest's image" : "", D->A.mem_bytes, D->A.mem_records,
                       D->B.mem_bytes, D->B.mem_records);
        if (D->vmm) {
                printf("%s is a VMM's trace (hvrec exec): memory compared over %s's image only",
                       D->vmm->tag, D->guest->tag);
                /* With the images differing no exit is compared: nothing more to say. */
                if (!img_diff)
                        printf("; %" PRIu64 " exit%s before the guest's first (the VMM's firmware) "
                               "left out; end.status (the VMM's exit status) not compared",
                               D->vmm->firmware, D->vmm->firmware == 1 ? "" : "s");
                putchar('\n');
        }
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

void diff_print_json(struct diff *D, const struct hdiffs *h, bool img_diff, uint64_t gpa, bool same,
                     bool complete)
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
                        json_str(&j, NULL, diff_ign_names[i]);
        json_arr_end(&j);
        json_str(&j, "io_rip", D->o.io_raw ? "raw" : "instruction");
        json_obj_end(&j);
        json_u64(&j, "exits_a", D->A.exits);
        json_u64(&j, "exits_b", D->B.exits);
        json_u64(&j, "skipped_a", D->A.skipped);
        json_u64(&j, "skipped_b", D->B.skipped);
        if (D->vmm)
                json_str(&j, "vmm", D->vmm->tag);
        else
                json_null(&j, "vmm");
        json_u64(&j, "firmware_a", D->A.firmware);
        json_u64(&j, "firmware_b", D->B.firmware);
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
