// SPDX-License-Identifier: MIT
/*
 * hvreplay export --format chrome-json: the Trace Event Format that
 * chrome://tracing and ui.perfetto.dev open.  One process; a thread per
 * track (its name from a ph "M" event), each vCPU's tracks in turn; exits
 * as complete events (ph "X"), injections, deliveries and violations as
 * instants (ph "i"), the exit rate as a counter (ph "C").  ts and dur are
 * in microseconds, written exactly from nanoseconds.
 */
#include <errno.h>
#include <stdlib.h>

#include "export.h"
#include "json.h"

#define PID 1

struct json_state {
        bool first; /* no comma before the next event */
};

static unsigned track_tid(uint32_t vcpu, enum export_track t)
{
        return export_track_id(vcpu, t) + 1;
}

/* The separator before an event, and a fresh writer for it. */
static void event_start(struct export_out *o, struct json *j)
{
        struct json_state *s = o->state;

        if (!s->first)
                fputs(",\n", o->f);
        s->first = false;
        json_begin(j, o->f);
}

/* Not json_end: its newline would come before the comma that follows. */
static void event_end(struct json *j)
{
        json_end_inline(j);
}

static void meta(struct export_out *o, const char *what, unsigned tid, const char *name)
{
        struct json j;

        event_start(o, &j);
        json_str(&j, "ph", "M");
        json_u64(&j, "pid", PID);
        json_u64(&j, "tid", tid);
        json_str(&j, "name", what);
        json_obj(&j, "args");
        json_str(&j, "name", name);
        json_obj_end(&j);
        event_end(&j);
}

static int json_sink_begin(struct export_out *o, const struct export_meta *m)
{
        struct json_state *s = calloc(1, sizeof(*s));

        if (!s)
                return -ENOMEM;
        s->first = true;
        o->state = s;
        fputs("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n", o->f);
        meta(o, "process_name", track_tid(0, EXPORT_TRACK_VCPU), m->process);
        for (uint32_t v = 0; v < m->vcpus; v++) {
                for (unsigned t = 0; t < EXPORT_TRACK_COUNT; t++) {
                        char name[96];

                        if (t == EXPORT_TRACK_RATE) /* a counter is named by its events */
                                continue;
                        export_track_name(m, v, t, name, sizeof(name));
                        meta(o, "thread_name", track_tid(v, t), name);
                }
                if (ferror(o->f))
                        return -EIO;
        }
        return ferror(o->f) ? -EIO : 0;
}

static void put_args(struct json *j, const struct export_event *ev)
{
        json_obj(j, "args");
        for (size_t i = 0; i < ev->nargs; i++) {
                const struct export_arg *a = &ev->args[i];

                switch (a->type) {
                case EXPORT_ARG_STR: json_str(j, a->key, a->s); break;
                case EXPORT_ARG_U64: json_u64(j, a->key, a->u); break;
                case EXPORT_ARG_HEX: json_hex(j, a->key, a->u); break;
                case EXPORT_ARG_BOOL: json_bool(j, a->key, a->u != 0); break;
                }
        }
        json_obj_end(j);
}

static int json_sink_event(struct export_out *o, const struct export_event *ev)
{
        struct json j;

        event_start(o, &j);
        switch (ev->kind) {
        case EXPORT_SLICE:
                json_str(&j, "ph", "X");
                json_ns_as_us(&j, "ts", ev->ts_ns);
                json_ns_as_us(&j, "dur", ev->dur_ns);
                break;
        case EXPORT_INSTANT:
                json_str(&j, "ph", "i");
                json_ns_as_us(&j, "ts", ev->ts_ns);
                json_str(&j, "s", "t");
                /* One of the trace viewer's reserved colours: red. */
                if (ev->loud)
                        json_str(&j, "cname", "terrible");
                break;
        case EXPORT_COUNTER:
                json_str(&j, "ph", "C");
                json_ns_as_us(&j, "ts", ev->ts_ns);
                break;
        }
        json_u64(&j, "pid", PID);
        json_u64(&j, "tid", track_tid(ev->vcpu, ev->track));
        json_str(&j, "name", ev->name);
        json_str(&j, "cat", ev->cat);
        if (ev->kind == EXPORT_COUNTER) {
                json_obj(&j, "args");
                json_u64(&j, "value", ev->value);
                json_obj_end(&j);
        } else {
                put_args(&j, ev);
        }
        event_end(&j);
        return ferror(o->f) ? -EIO : 0;
}

static int json_sink_finish(struct export_out *o)
{
        fputs("\n]}\n", o->f);
        free(o->state);
        o->state = NULL;
        return ferror(o->f) ? -EIO : 0;
}

const struct export_sink_ops export_json_ops = {
        .name = "chrome-json",
        .begin = json_sink_begin,
        .event = json_sink_event,
        .finish = json_sink_finish,
};
