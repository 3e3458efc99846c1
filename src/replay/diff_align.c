// SPDX-License-Identifier: MIT
/* hvreplay diff: the walk over both traces and the realignment after a divergence. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diff.h"

/* ---- the comparison ----------------------------------------------------------------- */

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
        diff_reserve((void **)&D->jd, &D->jd_cap, D->njd + 1, sizeof(*D->jd));
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
        return off < 0 ? diff_behind(s, (uint64_t)-off) : diff_peek(s, &D->o, (uint64_t)off);
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
                        diff_text_unit(stdout, D->dis, "  ", u);
        }
        for (uint64_t i = 0; i < n; i++)
                diff_text_unit(stdout, D->dis, "->", unit_at(D, s, off + (int64_t)i));
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

        diff_compare_units(&D->c, ua, ub, &d);
        note_first(D, ua, ub);
        item_title(D);
        for (size_t i = 0; i < d.n; i++)
                jd_add(D, ua, ub, &d.v[i], 0);
        if (!D->o.json) {
                printf("  a#%" PRIu64 " b#%" PRIu64, ua->ex.seq, ub->ex.seq);
                if (ua->ex.reason == ub->ex.reason)
                        printf(" %s", hvt_exit_reason_name(ua->ex.reason));
                printf(": ");
                diff_text_fields(stdout, &d);
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
                diff_match_io(c->A, a, c->B, b, &m);
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

        while (n < W && diff_peek(&D->A, &D->o, n))
                n++;
        while (m < W && diff_peek(&D->B, &D->o, m))
                m++;
        more_a = n == W && diff_peek(&D->A, &D->o, n); /* the window does not reach the end */
        more_b = m == W && diff_peek(&D->B, &D->o, m);
        memset(S, 0, sizeof(S));
        for (uint64_t i = n; i-- > 0;)
                for (uint64_t j = m; j-- > 0;) {
                        struct unit *ua = diff_peek(&D->A, &D->o, i),
                                    *ub = diff_peek(&D->B, &D->o, j);
                        uint16_t best = S[i + 1][j] > S[i][j + 1] ? S[i + 1][j] : S[i][j + 1];

                        w[i][j] = !keys_equal(&D->c, ua, ub)        ? 0
                                  : diff_units_equal(&D->c, ua, ub) ? 2
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
        diff_copy_exit(&first, &diff_peek(s, &D->o, 0)->ex);
        if (!D->o.json) {
                printf("  %s#%" PRIu64 " %s and what follows: only in %s (%s ended)\n", s->tag,
                       first.ex.seq, hvt_exit_reason_name(first.ex.reason), s->tag, other->tag);
                text_context(D, &D->A, 0, s == &D->A ? 1 : 0);
                text_context(D, &D->B, 0, s == &D->B ? 1 : 0);
        }
        while (diff_peek(s, &D->o, 1)) { /* count what is left */
                s->pos++;
                more++;
        }
        s->pos++;
        record_only(D, s, &first, more);
        if (!D->o.json)
                printf("  %" PRIu64 " exit%s only in %s\n", more + 1, more ? "s" : "", s->tag);
        diff_unit_free(&first);
}

static void compare_ends(struct diff *D)
{
        struct side *A = &D->A, *B = &D->B;
        struct fdiffs d = { 0 };
        char sa[32], sb[32];

        if (diff_ignored(&D->o, IGN_END))
                return;
        if (A->have_end != B->have_end) {
                diff_fd_str(&d, "end", A->have_end ? hvt_end_why_name(A->end.why) : NULL,
                            B->have_end ? hvt_end_why_name(B->end.why) : NULL);
        } else if (A->have_end) {
                if (A->end.why != B->end.why)
                        diff_fd_str(&d, "end.why", hvt_end_why_name(A->end.why),
                                    hvt_end_why_name(B->end.why));
                /* A VMM's trace ends with the VMM's status, not the guest's. */
                if (A->end.status != B->end.status && !D->vmm) {
                        snprintf(sa, sizeof(sa), "%d", A->end.status);
                        snprintf(sb, sizeof(sb), "%d", B->end.status);
                        diff_fd_str(&d, "end.status", sa, sb);
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
                        diff_text_fields(stdout, &d);
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
void diff_walk(struct diff *D)
{
        for (;;) {
                struct unit *ua = diff_peek(&D->A, &D->o, 0), *ub = diff_peek(&D->B, &D->o, 0);
                uint64_t i, j;

                if (!ua || !ub) {
                        if (diff_side_failed(&D->A) || diff_side_failed(&D->B))
                                return; /* a damaged trace: nothing more to say */
                        if (ua)
                                tail(D, &D->A, &D->B);
                        else if (ub)
                                tail(D, &D->B, &D->A);
                        else
                                compare_ends(D);
                        return;
                }
                if (diff_units_equal(&D->c, ua, ub)) {
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
