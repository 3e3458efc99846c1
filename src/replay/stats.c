// SPDX-License-Identifier: MIT
/* hvreplay stats: exit reasons with counts, shares and times (perf kvm stat style). */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "json.h"
#include "replay.h"

struct reason_stats {
        uint64_t count, total_ns, min_ns, max_ns, host_ns;
};

/* One vCPU's share of a multi-vCPU trace. */
struct vcpu_stats {
        uint64_t exits, injections, deliveries, raises;
        uint64_t prev_time; /* times are per vCPU: each has its own delta stream */
};

struct stats {
        struct reason_stats r[HVT_EXIT_REASON_COUNT];
        uint64_t exits, guest_ns, injections, deliveries, raises, console_bytes;
        uint64_t write_records, write_bytes;
        struct vcpu_stats *vcpu; /* nvcpus of them; one in a single-vCPU trace */
        uint32_t nvcpus;
        bool have_end;
        struct hvt_disk_end end;
        char end_msg[256];
};

static void usage(FILE *f)
{
        fprintf(f, "Usage: hvreplay stats [OPTIONS] TRACE\n"
                   "\n"
                   "Summarise TRACE like `perf kvm stat report`: for each exit reason its count,\n"
                   "share of exits, share of guest time, and the min/mean/max time the guest ran\n"
                   "before that exit; then totals, interrupts, guest memory writes and how the\n"
                   "run ended.  A multi-vCPU trace also gets each vCPU's exits, injections,\n"
                   "deliveries and raises.\n"
                   "\n"
                   "Options:\n"
                   "  --format FORMAT   text (default) or json (one JSON document)\n"
                   "  -h, --help        this text\n");
}

static void account(struct stats *s, const struct hvt_event *ev, int vcpu)
{
        struct vcpu_stats *v = &s->vcpu[vcpu > 0 ? vcpu : 0];

        switch (ev->type) {
        case HVT_REC_EXIT: {
                const struct hvt_exit *ex = &ev->exit;
                struct reason_stats *r = &s->r[ex->reason < HVT_EXIT_REASON_COUNT ? ex->reason : 0];

                if (!r->count || ex->guest_ns < r->min_ns)
                        r->min_ns = ex->guest_ns;
                if (ex->guest_ns > r->max_ns)
                        r->max_ns = ex->guest_ns;
                r->count++;
                r->total_ns += ex->guest_ns;
                /* Time between exits not spent in the guest: the VMM's own share. */
                if (ex->time_ns - v->prev_time > ex->guest_ns)
                        r->host_ns += ex->time_ns - v->prev_time - ex->guest_ns;
                v->prev_time = ex->time_ns;
                v->exits++;
                s->exits++;
                s->guest_ns += ex->guest_ns;
                break;
        }
        case HVT_REC_INJECT:
                s->injections++;
                v->injections++;
                break;
        case HVT_REC_DELIVER:
                s->deliveries++;
                v->deliveries++;
                break;
        case HVT_REC_RAISE:
                s->raises++;
                v->raises++;
                break;
        case HVT_REC_CONSOLE: s->console_bytes += ev->console.len; break;
        case HVT_REC_WRITE:
                s->write_records++;
                s->write_bytes += ev->write.len;
                break;
        case HVT_REC_END:
                s->have_end = true;
                s->end = ev->end.e;
                snprintf(s->end_msg, sizeof(s->end_msg), "%s", ev->end.message);
                break;
        default: break;
        }
}

static double pct(uint64_t a, uint64_t b)
{
        return b ? 100.0 * (double)a / (double)b : 0.0;
}

static void print_text(const char *path, const struct hvt_header *h, const struct stats *s)
{
        fputs("Analyze events for trace ", stdout);
        replay_put_str(stdout, path);
        fputs(" (backend ", stdout);
        replay_put_str(stdout, h->str[HVT_STR_BACKEND]);
        printf(", %s mode, policy %s):\n\n", hvt_mode_name(h->h.guest_mode),
               hvt_policy_name(h->h.inject_policy));
        printf("%16s %10s %9s %9s %11s %11s %11s\n\n", "VM-EXIT", "Samples", "Samples%", "Time%",
               "Min Time", "Max Time", "Avg time");
        for (unsigned i = 0; i < HVT_EXIT_REASON_COUNT; i++) {
                const struct reason_stats *r = &s->r[i];

                if (!r->count)
                        continue;
                printf("%16s %10" PRIu64 " %8.2f%% %8.2f%% %9.2fus %9.2fus %9.2fus\n",
                       hvt_exit_reason_name(i), r->count, pct(r->count, s->exits),
                       pct(r->total_ns, s->guest_ns), (double)r->min_ns / 1e3,
                       (double)r->max_ns / 1e3, (double)r->total_ns / 1e3 / (double)r->count);
        }
        printf("\nTotal Samples:%" PRIu64 ", Total guest time:%.2fus.\n", s->exits,
               (double)s->guest_ns / 1e3);
        printf("Interrupts: %" PRIu64 " raised, %" PRIu64 " injected, %" PRIu64
               " deliveries seen by the probe.  Console: %" PRIu64 " bytes.\n",
               s->raises, s->injections, s->deliveries, s->console_bytes);
        /* A trace without the flag and without records says nothing about writes: no line. */
        if ((h->h.flags & HVT_HDR_WRITES) || s->write_records)
                printf("Writes: %" PRIu64 " records, %" PRIu64 " bytes%s.\n", s->write_records,
                       s->write_bytes,
                       (h->h.flags & HVT_HDR_WRITES) ? "" : " (not every write recorded)");
        if (s->nvcpus > 1) {
                printf("\n%6s %10s %10s %10s %10s\n", "vCPU", "Exits", "Injected", "Delivered",
                       "Raised");
                for (uint32_t i = 0; i < s->nvcpus; i++)
                        printf("%6u %10" PRIu64 " %10" PRIu64 " %10" PRIu64 " %10" PRIu64 "\n", i,
                               s->vcpu[i].exits, s->vcpu[i].injections, s->vcpu[i].deliveries,
                               s->vcpu[i].raises);
                putchar('\n');
        }
        if (s->have_end) {
                printf("End: %s, status %d, wall time %.3f ms: ", hvt_end_why_name(s->end.why),
                       s->end.status, (double)s->end.wall_ns / 1e6);
                replay_put_str(stdout, s->end_msg);
                putchar('\n');
        }
}

static void print_json(const char *path, const struct hvt_header *h, const struct stats *s)
{
        struct json j;

        json_begin(&j, stdout);
        json_str(&j, "trace", path);
        json_str(&j, "backend", h->str[HVT_STR_BACKEND]);
        json_u64(&j, "exits", s->exits);
        json_u64(&j, "guest_ns", s->guest_ns);
        json_arr(&j, "reasons");
        for (unsigned i = 0; i < HVT_EXIT_REASON_COUNT; i++) {
                const struct reason_stats *r = &s->r[i];

                if (!r->count)
                        continue;
                json_obj(&j, NULL);
                json_str(&j, "reason", hvt_exit_reason_name(i));
                json_u64(&j, "count", r->count);
                json_u64(&j, "total_ns", r->total_ns);
                json_u64(&j, "min_ns", r->min_ns);
                json_u64(&j, "max_ns", r->max_ns);
                json_u64(&j, "host_ns", r->host_ns);
                json_obj_end(&j);
        }
        json_arr_end(&j);
        json_u64(&j, "raises", s->raises);
        json_u64(&j, "injections", s->injections);
        json_u64(&j, "deliveries", s->deliveries);
        json_u64(&j, "console_bytes", s->console_bytes);
        json_u64(&j, "write_records", s->write_records);
        json_u64(&j, "write_bytes", s->write_bytes);
        /* Only for multi-vCPU traces: single-vCPU documents stay as they were. */
        if (s->nvcpus > 1) {
                json_arr(&j, "vcpus");
                for (uint32_t i = 0; i < s->nvcpus; i++) {
                        json_obj(&j, NULL);
                        json_u64(&j, "vcpu", i);
                        json_u64(&j, "exits", s->vcpu[i].exits);
                        json_u64(&j, "injections", s->vcpu[i].injections);
                        json_u64(&j, "deliveries", s->vcpu[i].deliveries);
                        json_u64(&j, "raises", s->vcpu[i].raises);
                        json_obj_end(&j);
                }
                json_arr_end(&j);
        }
        if (s->have_end) {
                json_str(&j, "end", hvt_end_why_name(s->end.why));
                json_i64(&j, "status", s->end.status);
                json_u64(&j, "wall_ns", s->end.wall_ns);
        }
        json_end(&j);
}

int cmd_stats(int argc, char **argv)
{
        static const struct option opts[] = {
                { "format", required_argument, NULL, 'f' },
                { "help", no_argument, NULL, 'h' },
                { 0 },
        };
        struct hvt_reader *r;
        struct hvt_event ev;
        struct stats s;
        int c, json = 0, err, status;

        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
                switch (c) {
                case 'f':
                        json = replay_parse_format(optarg);
                        if (json < 0) {
                                fprintf(stderr,
                                        "hvreplay stats: --format: '%s' is not text or json\n",
                                        optarg);
                                return REPLAY_ERROR;
                        }
                        break;
                case 'h': usage(stdout); return REPLAY_OK;
                default: return replay_option_error("stats", c, argv);
                }
        }
        if (optind + 1 != argc) {
                fprintf(stderr, "hvreplay stats: give exactly one TRACE (see --help)\n");
                return REPLAY_ERROR;
        }
        r = replay_open(argv[optind]);
        if (!r)
                return REPLAY_ERROR;
        memset(&s, 0, sizeof(s));
        s.nvcpus = hvt_reader_vcpus(r);
        s.vcpu = calloc(s.nvcpus, sizeof(*s.vcpu));
        if (!s.vcpu) {
                replay_error(argv[optind], "out of memory");
                hvt_reader_close(r);
                return REPLAY_ERROR;
        }
        while ((err = hvt_reader_next(r, &ev)) == HVT_OK)
                account(&s, &ev, check_event_vcpu(r, &ev));
        status = replay_end(argv[optind], r, err);
        if (json)
                print_json(argv[optind], hvt_reader_header(r), &s);
        else
                print_text(argv[optind], hvt_reader_header(r), &s);
        free(s.vcpu);
        hvt_reader_close(r);
        return status;
}
