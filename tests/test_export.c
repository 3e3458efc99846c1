// SPDX-License-Identifier: MIT
/*
 * hvreplay export: the Chrome JSON is valid JSON and the Perfetto protobuf
 * decodes with protoc against the subset .proto the project ships; both
 * hold one slice per exit, an instant per injection, delivery and checker
 * finding, and an exit-rate counter that adds up to the exits; with two
 * vCPUs, each of those per vCPU, on that vCPU's tracks.  Expected numbers
 * come from reading the trace (helpers) and checking it (hvcheck), never
 * from the exporter's own output.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "../src/replay/check.h"
#include "helpers.h"
#include "two_vcpu.h"

#define STRESS     HV_SOURCE_DIR "/traces/stress-eager-kick.zst"
#define VIOLATIONS HV_SOURCE_DIR "/traces/movss-sti-eager-step.zst"
#define PROTO_DIR  HV_SOURCE_DIR "/src/replay/perfetto"

static char *read_all(const char *path, size_t *len)
{
        FILE *f = fopen(path, "rb");
        char *buf = NULL;
        size_t n = 0;

        cr_assert_not_null(f, "cannot open %s", path);
        /* getdelim on NUL reads the whole of a text file. */
        cr_assert_geq(getdelim(&buf, &n, '\0', f), 0, "cannot read %s", path);
        if (len)
                *len = strlen(buf);
        fclose(f);
        return buf;
}

static size_t count(const char *hay, const char *needle)
{
        size_t n = 0;

        for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
                n++;
        return n;
}

static void export(const char *trace, const char *format, const char *out)
{
        const char *argv[] = { HVREPLAY, "export", "--format", format, trace, "-o", out, NULL };
        struct hv_proc p;

        unlink(out);
        cr_assert_eq(hv_run(argv, &p), 0);
        cr_assert_eq(p.status, 0, "export %s: status %d: %s", format, p.status, p.err);
        cr_assert_eq(p.err[0], 0, "nothing on stderr: %s", p.err);
        hv_proc_free(&p);
}

struct expect {
        struct hv_trace t;
        struct check_result check;
};

static void expect_load(struct expect *e, const char *trace)
{
        cr_assert_eq(hv_trace_load(trace, &e->t), HVT_OK);
        cr_assert_eq(e->t.read_err, HVT_END_OF_TRACE, "%s reads completely", trace);
        cr_assert_eq(check_trace(trace, &e->check), 0, "%s", e->check.error);
}

static void expect_free(struct expect *e)
{
        hv_trace_free(&e->t);
        check_result_free(&e->check);
}

/* The value of "key": as an unsigned number on the line at p. */
static uint64_t json_u64_at(const char *p, const char *key)
{
        const char *eol = strchr(p, '\n'), *k = strstr(p, key);

        cr_assert(k && (!eol || k < eol), "%s on the line: %.200s", key, p);
        return strtoull(k + strlen(key), NULL, 10);
}

/* "ts":123.456 as ns. */
static uint64_t json_ts_at(const char *p)
{
        const char *k = strstr(p, "\"ts\":");
        char *dot;
        uint64_t us;

        cr_assert_not_null(k);
        us = strtoull(k + 5, &dot, 10);
        cr_assert_eq(*dot, '.', "ts has three decimals: %.40s", k);
        return us * 1000 + strtoull(dot + 1, NULL, 10);
}

static void check_chrome_json(const char *trace, const char *out)
{
        struct expect e;
        size_t len, i = 0;
        char *json;
        const char *p, *end;
        uint64_t rate_sum = 0, prev_ts = 0;

        expect_load(&e, trace);
        export(trace, "chrome-json", out);
        json = read_all(out, &len);
        end = hv_json_value(json);
        cr_assert_not_null(end, "the output is one JSON value");
        cr_assert_eq(*hv_json_ws(end), 0, "and nothing after it");
        cr_assert(strstr(json, "\"traceEvents\":[") != NULL);

        cr_assert_eq(count(json, "\"ph\":\"X\""), e.t.nexits, "one slice per exit");
        cr_assert_eq(count(json, "\"name\":\"inject 0x"), e.t.ninjects);
        cr_assert_eq(count(json, "\"name\":\"deliver 0x"), e.t.ndelivers);
        cr_assert_eq(count(json, "\"name\":\"VIOLATION: "), e.check.nviolations);
        cr_assert_eq(count(json, "\"cname\":\"terrible\""), e.check.nviolations,
                     "violations are drawn red");
        cr_assert_eq(count(json, "\"name\":\"undetermined: "), e.check.nundetermined);
        cr_assert_eq(count(json, "\"ph\":\"i\""),
                     e.t.ninjects + e.t.ndelivers + e.check.nviolations + e.check.nundetermined);
        cr_assert(strstr(json, "\"name\":\"thread_name\",\"args\":{\"name\":\"vCPU 0\"}") != NULL,
                  "the vCPU track is named");
        cr_assert_geq(count(json, "\"ph\":\"M\""), 2);

        /* Slices in exit order, at the exits' times, named by reason, with the args asked for. */
        for (p = json; (p = strstr(p, "{\"ph\":\"X\"")); p++, i++) {
                const struct hvt_exit *ex = &e.t.exits[i].e;
                char name[64];
                uint64_t ts = json_ts_at(p);

                cr_assert_lt(i, e.t.nexits);
                cr_assert_eq(ts, ex->time_ns, "exit %zu at %" PRIu64 " ns, not %" PRIu64, i,
                             ex->time_ns, ts);
                cr_assert_geq(ts, prev_ts);
                prev_ts = ts;
                snprintf(name, sizeof(name), "\"name\":\"%s\"", hvt_exit_reason_name(ex->reason));
                cr_assert(strstr(p, name) < strchr(p, '\n'), "exit %zu is named %s", i, name);
                cr_assert_eq(json_u64_at(p, "\"exit\":"), ex->seq);
                cr_assert(strstr(p, "\"rip\":\"0x") < strchr(p, '\n'));
                if (ex->reason == HVT_EXIT_IO)
                        cr_assert(strstr(p, "\"port\":\"0x") < strchr(p, '\n') &&
                                          strstr(p, "\"data\":\"0x") < strchr(p, '\n'),
                                  "an I/O exit has its port and data");
                if (ex->st.intr & HVT_INTR_VALID_SHADOW)
                        cr_assert(strstr(p, "\"shadow\":\"") < strchr(p, '\n'));
                if (ex->st.intr & HVT_INTR_VALID_READY)
                        cr_assert(strstr(p, "\"ready\":") < strchr(p, '\n'));
        }
        cr_assert_eq(i, e.t.nexits);

        /* The rate counter: exits per second per 1 ms window, so the windows add up to the exits.
         */
        for (p = json; (p = strstr(p, "{\"ph\":\"C\"")); p++)
                rate_sum += json_u64_at(p, "\"value\":");
        cr_assert_gt(count(json, "\"ph\":\"C\""), 1);
        cr_assert_eq(rate_sum, e.t.nexits * 1000, "rate windows add up to %zu exits", e.t.nexits);

        free(json);
        expect_free(&e);
}

Test(export, stress_trace_as_chrome_json)
{
        check_chrome_json(STRESS, hv_tmp("stress.json"));
}

Test(export, violations_stand_out_in_chrome_json)
{
        struct check_result r;
        char *json;

        check_chrome_json(VIOLATIONS, hv_tmp("violations.json"));
        cr_assert_eq(check_trace(VIOLATIONS, &r), 0);
        cr_assert_gt(r.nviolations, 0, "the sample has violations");
        json = read_all(hv_tmp("violations.json"), NULL);
        for (size_t i = 0; i < r.nviolations; i++) {
                char want[96];

                snprintf(want, sizeof(want), "\"name\":\"VIOLATION: %s\"",
                         check_rule_name(r.violations[i].rule));
                cr_assert(strstr(json, want) != NULL, "%s is exported", want);
        }
        free(json);
        check_result_free(&r);
}

/* protoc's text form of the export, or skip if protoc is not installed. */
static char *decode_perfetto(const char *pb)
{
        const char *txt = hv_tmp("decoded.txt");
        char cmd[2048];
        const char *argv[] = { "/bin/sh", "-c", cmd, NULL };
        struct hv_proc p;

        if (system("command -v protoc >/dev/null 2>&1"))
                cr_skip_test("protoc is not installed (Debian: protobuf-compiler)");
        snprintf(cmd, sizeof(cmd),
                 "protoc --proto_path='%s' --decode perfetto.protos.Trace hvtrace_perfetto.proto "
                 "< '%s' > '%s'",
                 PROTO_DIR, pb, txt);
        cr_assert_eq(hv_run(argv, &p), 0);
        cr_assert_eq(p.status, 0, "protoc --decode failed: %s", p.err);
        cr_assert_eq(p.err[0], 0, "protoc has no complaint: %s", p.err);
        hv_proc_free(&p);
        return read_all(txt, NULL);
}

static void check_perfetto(const char *trace, const char *out)
{
        struct expect e;
        char *txt;
        size_t instants;

        expect_load(&e, trace);
        export(trace, "perfetto", out);
        txt = decode_perfetto(out);
        instants = e.t.ninjects + e.t.ndelivers + e.check.nviolations + e.check.nundetermined;
        cr_assert_eq(count(txt, "type: TYPE_SLICE_BEGIN\n"), e.t.nexits);
        cr_assert_eq(count(txt, "type: TYPE_SLICE_END\n"), e.t.nexits);
        cr_assert_eq(count(txt, "type: TYPE_INSTANT\n"), instants);
        cr_assert_gt(count(txt, "type: TYPE_COUNTER\n"), 1);
        cr_assert_eq(count(txt, "name: \"VIOLATION: "), e.check.nviolations);
        cr_assert_eq(count(txt, "name: \"inject 0x"), e.t.ninjects);
        cr_assert_eq(count(txt, "name: \"deliver 0x"), e.t.ndelivers);
        cr_assert_eq(count(txt, "track_descriptor {"), 4, "process, vCPU, violations, rate");
        cr_assert(strstr(txt, "thread_name: \"vCPU 0\"") != NULL);
        cr_assert(strstr(txt, "counter {") != NULL, "the rate is a counter track");
        cr_assert_eq(count(txt, "sequence_flags: 1\n"), 1, "incremental state cleared once");
        cr_assert_eq(count(txt, "packet {"), count(txt, "trusted_packet_sequence_id: 1\n"));
        /* Every slice begins at its exit's time: the first and the last. */
        {
                char want[64];

                snprintf(want, sizeof(want), "timestamp: %" PRIu64 "\n", e.t.exits[0].e.time_ns);
                cr_assert(strstr(txt, want) != NULL, "%s", want);
                snprintf(want, sizeof(want), "timestamp: %" PRIu64 "\n",
                         hv_last_exit(&e.t)->e.time_ns);
                cr_assert(strstr(txt, want) != NULL, "%s", want);
        }
        free(txt);
        expect_free(&e);
}

Test(export, stress_trace_as_perfetto_protobuf)
{
        check_perfetto(STRESS, hv_tmp("stress.pftrace"));
}

Test(export, violations_in_perfetto_protobuf)
{
        check_perfetto(VIOLATIONS, hv_tmp("violations.pftrace"));
}

/*
 * A kicked eager stress run recorded here on emu: the stress run with
 * violations (the KVM sample has none the checker can prove), in both
 * formats, its violations named in each.
 */
Test(export, eager_stress_run_in_both_formats, .timeout = 300)
{
        const char *trace = hv_record_eager_stress("eager-stress.zst");
        struct check_result r;
        char *json, *txt;

        cr_assert_eq(check_trace(trace, &r), 0);
        cr_assert_gt(r.nviolations, 0, "an eager stress run violates");
        check_chrome_json(trace, hv_tmp("eager-stress.json"));
        check_perfetto(trace, hv_tmp("eager-stress.pftrace"));
        json = read_all(hv_tmp("eager-stress.json"), NULL);
        txt = decode_perfetto(hv_tmp("eager-stress.pftrace"));
        for (size_t i = 0; i < r.nviolations; i++) {
                char want[96];

                snprintf(want, sizeof(want), "\"name\":\"VIOLATION: %s\"",
                         check_rule_name(r.violations[i].rule));
                cr_assert(strstr(json, want) != NULL, "%s is in the JSON", want);
                snprintf(want, sizeof(want), "VIOLATION: %s",
                         check_rule_name(r.violations[i].rule));
                cr_assert(strstr(txt, want) != NULL, "%s is in the protobuf", want);
        }
        free(json);
        free(txt);
        check_result_free(&r);
}

/* ---- two vCPUs: each its own tracks ------------------------------------------ */

/* A two-vCPU trace, what each vCPU holds and what the checker finds on each. */
struct two_expect {
        const char *trace;
        struct hv_vcpu_counts c[HV_TWO_VCPUS];
        struct check_result check;
        size_t violations[HV_TWO_VCPUS], undetermined[HV_TWO_VCPUS];
};

static void two_load(struct two_expect *e, const char *name)
{
        e->trace = hv_tmp(name);
        hv_write_two_vcpu_trace(e->trace);
        hv_vcpu_counts(e->trace, e->c, HV_TWO_VCPUS);
        cr_assert_eq(check_trace(e->trace, &e->check), 0, "%s", e->check.error);
        memset(e->violations, 0, sizeof(e->violations));
        memset(e->undetermined, 0, sizeof(e->undetermined));
        for (size_t i = 0; i < e->check.nviolations; i++) {
                cr_assert_lt(e->check.violations[i].vcpu, HV_TWO_VCPUS);
                e->violations[e->check.violations[i].vcpu]++;
        }
        for (size_t i = 0; i < e->check.nundetermined; i++) {
                cr_assert_lt(e->check.undetermined[i].vcpu, HV_TWO_VCPUS);
                e->undetermined[e->check.undetermined[i].vcpu]++;
        }
        /*
         * The trace is what the test is about: both vCPUs interrupted, a
         * violation on vCPU 0 only, an undetermined delivery on vCPU 1 only.
         */
        for (unsigned v = 0; v < HV_TWO_VCPUS; v++) {
                cr_assert_gt(e->c[v].exits, 1, "vCPU %u has exits", v);
                cr_assert_gt(e->c[v].injects, 0, "vCPU %u has injections", v);
                cr_assert_gt(e->c[v].delivers, 0, "vCPU %u has deliveries", v);
        }
        cr_assert_gt(e->violations[0], 0, "the checker finds vCPU 0's violation");
        cr_assert_eq(e->violations[1], 0);
        cr_assert_gt(e->undetermined[1], 0, "vCPU 1's first run is undetermined");
        cr_assert_eq(e->undetermined[0], 0);
}

/* The tid of the thread named `name` (from its ph M event). */
static uint64_t json_tid_of(const char *json, const char *name)
{
        char want[160];
        const char *p, *line;

        snprintf(want, sizeof(want), "\"name\":\"thread_name\",\"args\":{\"name\":\"%s\"}", name);
        p = strstr(json, want);
        cr_assert_not_null(p, "a track named %s", name);
        cr_assert_null(strstr(p + 1, want), "one track named %s", name);
        for (line = p; line > json && line[-1] != '\n'; line--)
                ;
        return json_u64_at(line, "\"tid\":");
}

/* The vCPU whose track `tid` is among tids[0..n), or fail. */
static unsigned vcpu_of_tid(const uint64_t *tids, uint64_t tid, const char *line)
{
        for (unsigned v = 0; v < HV_TWO_VCPUS; v++)
                if (tids[v] == tid)
                        return v;
        cr_assert_fail("tid %" PRIu64 " is no vCPU's track of this kind: %.200s", tid, line);
        return 0;
}

static bool line_has(const char *line, const char *needle)
{
        const char *p = strstr(line, needle), *eol = strchr(line, '\n');

        return p && (!eol || p < eol);
}

Test(export, two_vcpus_keep_their_streams_apart_in_chrome_json)
{
        const char *out = hv_tmp("two-vcpu.json");
        uint64_t cpu_tid[HV_TWO_VCPUS], bad_tid[HV_TWO_VCPUS], last_ts[HV_TWO_VCPUS] = { 0 };
        size_t exits[HV_TWO_VCPUS] = { 0 }, injects[HV_TWO_VCPUS] = { 0 },
               delivers[HV_TWO_VCPUS] = { 0 }, violations[HV_TWO_VCPUS] = { 0 },
               undetermined[HV_TWO_VCPUS] = { 0 };
        uint64_t rate[HV_TWO_VCPUS] = { 0 };
        struct two_expect e;
        char *json;
        const char *end;

        two_load(&e, "two-vcpu.zst");
        export(e.trace, "chrome-json", out);
        json = read_all(out, NULL);
        end = hv_json_value(json);
        cr_assert_not_null(end, "the output is one JSON value");
        cr_assert_eq(*hv_json_ws(end), 0, "and nothing after it");

        for (unsigned v = 0; v < HV_TWO_VCPUS; v++) {
                char name[64];

                snprintf(name, sizeof(name), "vCPU %u", v);
                cpu_tid[v] = json_tid_of(json, name);
                snprintf(name, sizeof(name), "vCPU %u violations (hvreplay check)", v);
                bad_tid[v] = json_tid_of(json, name);
        }
        cr_assert(cpu_tid[0] != cpu_tid[1] && bad_tid[0] != bad_tid[1] &&
                  cpu_tid[0] != bad_tid[1] && cpu_tid[1] != bad_tid[0]);

        for (const char *l = strchr(json, '\n') + 1; *l; l = strchr(l, '\n') + 1) {
                uint64_t tid;
                unsigned v;

                if (line_has(l, "\"ph\":\"M\"") || !line_has(l, "\"tid\":"))
                        continue;
                tid = json_u64_at(l, "\"tid\":");
                if (line_has(l, "\"ph\":\"X\"")) {
                        /* vCPU v's exits on its track, in its order, at its own times. */
                        uint64_t ts = json_ts_at(l);

                        v = vcpu_of_tid(cpu_tid, tid, l);
                        cr_assert_lt(exits[v], e.c[v].exits, "more slices than vCPU %u exits", v);
                        cr_assert_eq(json_u64_at(l, "\"exit\":"), e.c[v].seqs[exits[v]],
                                     "vCPU %u's exit %zu: %.200s", v, exits[v], l);
                        cr_assert_eq(ts, e.c[v].times[exits[v]], "%.200s", l);
                        cr_assert_geq(ts, last_ts[v], "vCPU %u's track in time order", v);
                        last_ts[v] = ts;
                        exits[v]++;
                } else if (line_has(l, "\"name\":\"inject 0x")) {
                        injects[vcpu_of_tid(cpu_tid, tid, l)]++;
                } else if (line_has(l, "\"name\":\"deliver 0x")) {
                        delivers[vcpu_of_tid(cpu_tid, tid, l)]++;
                } else if (line_has(l, "\"name\":\"VIOLATION: ")) {
                        violations[vcpu_of_tid(bad_tid, tid, l)]++;
                } else if (line_has(l, "\"name\":\"undetermined: ")) {
                        undetermined[vcpu_of_tid(bad_tid, tid, l)]++;
                } else if (line_has(l, "\"ph\":\"C\"")) {
                        /* Each vCPU counts its own exits, named after it. */
                        v = line_has(l, "\"name\":\"vCPU 0 exit rate (exits/s)\"")   ? 0
                            : line_has(l, "\"name\":\"vCPU 1 exit rate (exits/s)\"") ? 1
                                                                                     : 2;
                        cr_assert_lt(v, HV_TWO_VCPUS, "a counter of a vCPU: %.200s", l);
                        rate[v] += json_u64_at(l, "\"value\":");
                } else {
                        cr_assert_fail("an event of no known kind: %.200s", l);
                }
        }
        for (unsigned v = 0; v < HV_TWO_VCPUS; v++) {
                cr_assert_eq(exits[v], e.c[v].exits, "vCPU %u: every exit a slice", v);
                cr_assert_eq(injects[v], e.c[v].injects, "vCPU %u's injections", v);
                cr_assert_eq(delivers[v], e.c[v].delivers, "vCPU %u's deliveries", v);
                cr_assert_eq(violations[v], e.violations[v], "vCPU %u's violations", v);
                cr_assert_eq(undetermined[v], e.undetermined[v], "vCPU %u's undetermined", v);
                cr_assert_eq(rate[v], e.c[v].exits * 1000, "vCPU %u's rate adds up", v);
        }
        free(json);
        check_result_free(&e.check);
}

/* In protoc's text form, the value after "\n    KEY: " in [p, end), or NULL. */
static const char *pb_field(const char *p, const char *end, const char *key)
{
        char want[64];
        const char *k;

        snprintf(want, sizeof(want), "\n    %s: ", key);
        k = strstr(p, want);
        return k && k < end ? k + strlen(want) : NULL;
}

static bool pb_str_is(const char *v, const char *prefix)
{
        return v && *v == '"' && !strncmp(v + 1, prefix, strlen(prefix));
}

Test(export, two_vcpus_keep_their_streams_apart_in_perfetto_protobuf)
{
        const char *out = hv_tmp("two-vcpu.pftrace");
        uint64_t cpu_uuid[HV_TWO_VCPUS] = { 0 }, bad_uuid[HV_TWO_VCPUS] = { 0 },
                 rate_uuid[HV_TWO_VCPUS] = { 0 };
        size_t begins[HV_TWO_VCPUS] = { 0 }, ends[HV_TWO_VCPUS] = { 0 }, irqs[HV_TWO_VCPUS] = { 0 },
               violations[HV_TWO_VCPUS] = { 0 }, undetermined[HV_TWO_VCPUS] = { 0 },
               descriptors = 0;
        uint64_t rate[HV_TWO_VCPUS] = { 0 };
        struct two_expect e;
        char *txt;
        const char *p;

        two_load(&e, "two-vcpu-pf.zst");
        export(e.trace, "perfetto", out);
        txt = decode_perfetto(out);

        /* The descriptors come first: each vCPU's three tracks by name. */
        for (p = strstr(txt, "packet {"); p; p = strstr(p + 1, "packet {")) {
                const char *next = strstr(p + 1, "packet {"), *end = next ? next : p + strlen(p);
                const char *uuid = pb_field(p, end, "uuid"), *name = pb_field(p, end, "name");

                if (!strstr(p, "track_descriptor {") || strstr(p, "track_descriptor {") > end)
                        continue;
                descriptors++;
                cr_assert(uuid && name);
                for (unsigned v = 0; v < HV_TWO_VCPUS; v++) {
                        char want[64];

                        snprintf(want, sizeof(want), "\"vCPU %u\"\n", v);
                        if (!strncmp(name, want, strlen(want)))
                                cpu_uuid[v] = strtoull(uuid, NULL, 10);
                        snprintf(want, sizeof(want), "vCPU %u violations (hvreplay check)\"", v);
                        if (pb_str_is(name, want))
                                bad_uuid[v] = strtoull(uuid, NULL, 10);
                        snprintf(want, sizeof(want), "vCPU %u exit rate (exits/s)\"", v);
                        if (pb_str_is(name, want))
                                rate_uuid[v] = strtoull(uuid, NULL, 10);
                }
        }
        cr_assert_eq(descriptors, 1 + 3 * HV_TWO_VCPUS, "the process and each vCPU's three tracks");
        for (unsigned v = 0; v < HV_TWO_VCPUS; v++)
                cr_assert(cpu_uuid[v] && bad_uuid[v] && rate_uuid[v], "vCPU %u's tracks", v);

        for (p = strstr(txt, "track_event {"); p; p = strstr(p + 1, "track_event {")) {
                const char *next = strstr(p + 1, "track_event {"),
                           *end = next ? next : p + strlen(p);
                const char *track = pb_field(p, end, "track_uuid"),
                           *type = pb_field(p, end, "type");
                const char *name = pb_field(p, end, "name");
                uint64_t u;
                unsigned v;

                cr_assert(track && type, "%.300s", p);
                u = strtoull(track, NULL, 10);
                for (v = 0; v < HV_TWO_VCPUS; v++)
                        if (u == cpu_uuid[v] || u == bad_uuid[v] || u == rate_uuid[v])
                                break;
                cr_assert_lt(v, HV_TWO_VCPUS, "an event on a vCPU's track: %.300s", p);
                if (!strncmp(type, "TYPE_SLICE_BEGIN\n", 17)) {
                        cr_assert_eq(u, cpu_uuid[v]);
                        begins[v]++;
                } else if (!strncmp(type, "TYPE_SLICE_END\n", 15)) {
                        cr_assert_eq(u, cpu_uuid[v]);
                        ends[v]++;
                } else if (!strncmp(type, "TYPE_COUNTER\n", 13)) {
                        cr_assert_eq(u, rate_uuid[v]);
                        rate[v] += strtoull(pb_field(p, end, "counter_value"), NULL, 10);
                } else if (pb_str_is(name, "inject 0x") || pb_str_is(name, "deliver 0x")) {
                        cr_assert_eq(u, cpu_uuid[v], "%.300s", p);
                        irqs[v]++;
                } else if (pb_str_is(name, "VIOLATION: ")) {
                        cr_assert_eq(u, bad_uuid[v], "%.300s", p);
                        violations[v]++;
                } else if (pb_str_is(name, "undetermined: ")) {
                        cr_assert_eq(u, bad_uuid[v], "%.300s", p);
                        undetermined[v]++;
                } else {
                        cr_assert_fail("an event of no known kind: %.300s", p);
                }
        }
        for (unsigned v = 0; v < HV_TWO_VCPUS; v++) {
                cr_assert_eq(begins[v], e.c[v].exits, "vCPU %u: every exit a slice", v);
                cr_assert_eq(ends[v], e.c[v].exits, "vCPU %u: every slice ends", v);
                cr_assert_eq(irqs[v], e.c[v].injects + e.c[v].delivers, "vCPU %u's instants", v);
                cr_assert_eq(violations[v], e.violations[v], "vCPU %u's violations", v);
                cr_assert_eq(undetermined[v], e.undetermined[v], "vCPU %u's undetermined", v);
                cr_assert_eq(rate[v], e.c[v].exits * 1000, "vCPU %u's rate adds up", v);
        }
        free(txt);
        check_result_free(&e.check);
}

/* ---- bad usage and bad input: one line, status 2 --------------------------- */

static void expect_error(const char *const *argv, const char *needle)
{
        hv_run_one_line_error(argv, "hvreplay", needle);
}

Test(export, bad_usage_is_one_line)
{
        const char *no_out[] = { HVREPLAY, "export", STRESS, NULL };
        const char *bad_fmt[] = { HVREPLAY, "export", "--format", "svg", STRESS, "-o", "x", NULL };
        const char *two[] = { HVREPLAY, "export", STRESS, STRESS, "-o", "x", NULL };
        const char *missing[] = { HVREPLAY, "export", "/nonexistent.zst", "-o", "x", NULL };
        const char *unwritable[] = { HVREPLAY, "export", STRESS, "-o", "/nonexistent/dir/x", NULL };

        expect_error(no_out, "-o FILE");
        expect_error(bad_fmt, "svg");
        expect_error(two, "exactly one TRACE");
        expect_error(missing, "/nonexistent.zst");
        expect_error(unwritable, "/nonexistent/dir/x");
}

Test(export, a_damaged_trace_is_exported_up_to_the_damage)
{
        const char *cut = hv_tmp("cut.zst"), *out = hv_tmp("cut.json");
        const char *argv[] = { HVREPLAY, "export", cut, "-o", out, NULL };
        FILE *in = fopen(STRESS, "rb"), *f = fopen(cut, "wb");
        static char buf[60000];
        struct hv_proc p;
        struct hv_trace t;
        char *json;

        /* Past the first zstd frames, inside a later one. */
        cr_assert(in && f);
        cr_assert_eq(fread(buf, 1, sizeof(buf), in), sizeof(buf));
        cr_assert_eq(fwrite(buf, 1, sizeof(buf), f), sizeof(buf));
        fclose(in);
        fclose(f);
        cr_assert_eq(hv_trace_load(cut, &t), HVT_OK);
        cr_assert_eq(t.read_err, HVT_ERR_TRUNCATED);
        cr_assert_gt(t.nexits, 0);

        cr_assert_eq(hv_run(argv, &p), 0);
        hv_assert_one_line_error(&p, "hvreplay", "truncated");
        hv_proc_free(&p);
        json = read_all(out, NULL);
        cr_assert_not_null(hv_json_value(json), "still valid JSON");
        cr_assert_eq(count(json, "\"ph\":\"X\""), t.nexits, "every exit read before the cut");
        free(json);
        hv_trace_free(&t);
}
