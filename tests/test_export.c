// SPDX-License-Identifier: MIT
/*
 * hvreplay export: the Chrome JSON is valid JSON and the Perfetto protobuf
 * decodes with protoc against the subset .proto the project ships; both
 * hold one slice per exit, an instant per injection, delivery and checker
 * finding, and an exit-rate counter that adds up to the exits.  Expected
 * numbers come from reading the trace (helpers) and checking it (hvcheck),
 * never from the exporter's own output.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "../src/replay/check.h"
#include "helpers.h"

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
