// SPDX-License-Identifier: MIT
/*
 * hvreplay export --format perfetto: a Perfetto trace (a `Trace` message:
 * TracePacket after TracePacket) with TrackDescriptor and TrackEvent
 * packets, encoded by the few lines of protobuf wire format below.  The
 * field numbers are Perfetto's (protos/perfetto/trace/...); the subset this
 * file writes is src/replay/perfetto/hvtrace_perfetto.proto, against which
 * `protoc --decode perfetto.protos.Trace` reads the output.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "export.h"

/* Field numbers, from Perfetto's .proto files (see the subset .proto). */
enum {
        TRACE_PACKET = 1,          /* Trace.packet */
        PKT_TIMESTAMP = 8,         /* TracePacket.timestamp */
        PKT_SEQUENCE_ID = 10,      /* TracePacket.trusted_packet_sequence_id */
        PKT_TRACK_EVENT = 11,      /* TracePacket.track_event */
        PKT_SEQUENCE_FLAGS = 13,   /* TracePacket.sequence_flags */
        PKT_TRACK_DESCRIPTOR = 60, /* TracePacket.track_descriptor */
        TD_UUID = 1,               /* TrackDescriptor.uuid */
        TD_NAME = 2,
        TD_PROCESS = 3,
        TD_THREAD = 4,
        TD_PARENT_UUID = 5,
        TD_COUNTER = 8,
        PD_PID = 1, /* ProcessDescriptor */
        PD_PROCESS_NAME = 6,
        THD_PID = 1, /* ThreadDescriptor */
        THD_TID = 2,
        THD_THREAD_NAME = 5,
        TE_DEBUG_ANNOTATIONS = 4, /* TrackEvent */
        TE_TYPE = 9,
        TE_TRACK_UUID = 11,
        TE_CATEGORIES = 22,
        TE_NAME = 23,
        TE_COUNTER_VALUE = 30,
        DA_BOOL_VALUE = 2, /* DebugAnnotation */
        DA_UINT_VALUE = 3,
        DA_STRING_VALUE = 6,
        DA_NAME = 10,
};

/* TrackEvent.Type */
enum { TYPE_SLICE_BEGIN = 1, TYPE_SLICE_END = 2, TYPE_INSTANT = 3, TYPE_COUNTER = 4 };

#define SEQ_INCREMENTAL_STATE_CLEARED 1
#define SEQUENCE_ID                   1
#define PID                           1
#define PROCESS_UUID                  1

enum { WIRE_VARINT = 0, WIRE_LEN = 2 };

/* A growing buffer of encoded bytes; a failed allocation is remembered, not returned each time. */
struct pb {
        uint8_t *p;
        size_t len, cap;
        bool nomem;
};

static void pb_put(struct pb *b, const void *data, size_t n)
{
        if (b->nomem)
                return;
        if (b->len + n > b->cap) {
                size_t cap = b->cap ? b->cap * 2 : 256;
                uint8_t *p;

                while (cap < b->len + n)
                        cap *= 2;
                p = realloc(b->p, cap);
                if (!p) {
                        b->nomem = true;
                        return;
                }
                b->p = p;
                b->cap = cap;
        }
        memcpy(b->p + b->len, data, n);
        b->len += n;
}

static void pb_varint(struct pb *b, uint64_t v)
{
        uint8_t out[10];
        size_t n = 0;

        do {
                out[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
                v >>= 7;
        } while (v);
        pb_put(b, out, n);
}

static void pb_uint(struct pb *b, unsigned field, uint64_t v)
{
        pb_varint(b, (uint64_t)field << 3 | WIRE_VARINT);
        pb_varint(b, v);
}

static void pb_bytes(struct pb *b, unsigned field, const void *data, size_t n)
{
        pb_varint(b, (uint64_t)field << 3 | WIRE_LEN);
        pb_varint(b, n);
        pb_put(b, data, n);
}

static void pb_str(struct pb *b, unsigned field, const char *s)
{
        pb_bytes(b, field, s, strlen(s));
}

/* A nested message: `sub`'s bytes as field `field` of b. */
static void pb_msg(struct pb *b, unsigned field, const struct pb *sub)
{
        if (sub->nomem)
                b->nomem = true;
        pb_bytes(b, field, sub->p, sub->len);
}

struct pf_state {
        struct pb pkt, msg, sub, ann;
        bool first_packet;
};

static uint64_t track_uuid(uint32_t vcpu, enum export_track t)
{
        return PROCESS_UUID + 1 + (uint64_t)export_track_id(vcpu, t);
}

/* Write s->pkt as one Trace.packet, with the sequence fields every packet carries. */
static int packet_flush(struct export_out *o, struct pf_state *s)
{
        struct pb out = { 0 };
        int err = 0;

        pb_uint(&s->pkt, PKT_SEQUENCE_ID, SEQUENCE_ID);
        if (s->first_packet)
                pb_uint(&s->pkt, PKT_SEQUENCE_FLAGS, SEQ_INCREMENTAL_STATE_CLEARED);
        s->first_packet = false;
        pb_msg(&out, TRACE_PACKET, &s->pkt);
        if (out.nomem)
                err = -ENOMEM;
        else if (fwrite(out.p, 1, out.len, o->f) != out.len)
                err = -EIO;
        free(out.p);
        s->pkt.len = 0;
        return err;
}

static int descriptor(struct export_out *o, struct pf_state *s, uint64_t uuid, const char *name,
                      unsigned kind_field, const struct pb *kind)
{
        s->msg.len = 0;
        pb_uint(&s->msg, TD_UUID, uuid);
        pb_str(&s->msg, TD_NAME, name);
        if (uuid != PROCESS_UUID)
                pb_uint(&s->msg, TD_PARENT_UUID, PROCESS_UUID);
        pb_msg(&s->msg, kind_field, kind);
        pb_msg(&s->pkt, PKT_TRACK_DESCRIPTOR, &s->msg);
        return packet_flush(o, s);
}

static int pf_begin(struct export_out *o, const struct export_meta *m)
{
        struct pf_state *s = calloc(1, sizeof(*s));
        int err;

        if (!s)
                return -ENOMEM;
        o->state = s;
        s->first_packet = true;
        s->sub.len = 0;
        pb_uint(&s->sub, PD_PID, PID);
        pb_str(&s->sub, PD_PROCESS_NAME, m->process);
        err = descriptor(o, s, PROCESS_UUID, m->process, TD_PROCESS, &s->sub);
        /* Each vCPU's tracks in turn: threads for its exits and its findings, a counter. */
        for (uint32_t v = 0; v < m->vcpus && !err; v++) {
                for (unsigned t = 0; t < EXPORT_TRACK_COUNT && !err; t++) {
                        char name[96];

                        export_track_name(m, v, t, name, sizeof(name));
                        s->sub.len = 0;
                        if (t == EXPORT_TRACK_RATE) {
                                err = descriptor(o, s, track_uuid(v, t), name, TD_COUNTER, &s->sub);
                                continue;
                        }
                        pb_uint(&s->sub, THD_PID, PID);
                        pb_uint(&s->sub, THD_TID, PID + 1 + export_track_id(v, t));
                        pb_str(&s->sub, THD_THREAD_NAME, name);
                        err = descriptor(o, s, track_uuid(v, t), name, TD_THREAD, &s->sub);
                }
        }
        return err;
}

static void annotation(struct pf_state *s, const struct export_arg *a)
{
        char hex[24];

        s->ann.len = 0;
        pb_str(&s->ann, DA_NAME, a->key);
        switch (a->type) {
        case EXPORT_ARG_STR: pb_str(&s->ann, DA_STRING_VALUE, a->s); break;
        case EXPORT_ARG_U64: pb_uint(&s->ann, DA_UINT_VALUE, a->u); break;
        case EXPORT_ARG_HEX:
                snprintf(hex, sizeof(hex), "0x%llx", (unsigned long long)a->u);
                pb_str(&s->ann, DA_STRING_VALUE, hex);
                break;
        case EXPORT_ARG_BOOL: pb_uint(&s->ann, DA_BOOL_VALUE, a->u != 0); break;
        }
        pb_msg(&s->msg, TE_DEBUG_ANNOTATIONS, &s->ann);
}

/* One TrackEvent packet of `type` at ts; the name, category and args unless `bare`. */
static int track_event(struct export_out *o, struct pf_state *s, const struct export_event *ev,
                       unsigned type, uint64_t ts, bool bare)
{
        s->msg.len = 0;
        pb_uint(&s->msg, TE_TYPE, type);
        pb_uint(&s->msg, TE_TRACK_UUID, track_uuid(ev->vcpu, ev->track));
        if (type == TYPE_COUNTER) {
                pb_uint(&s->msg, TE_COUNTER_VALUE, ev->value);
        } else if (!bare) {
                pb_str(&s->msg, TE_NAME, ev->name);
                pb_str(&s->msg, TE_CATEGORIES, ev->cat);
                for (size_t i = 0; i < ev->nargs; i++)
                        annotation(s, &ev->args[i]);
        }
        pb_uint(&s->pkt, PKT_TIMESTAMP, ts);
        pb_msg(&s->pkt, PKT_TRACK_EVENT, &s->msg);
        return packet_flush(o, s);
}

static int pf_event(struct export_out *o, const struct export_event *ev)
{
        struct pf_state *s = o->state;
        int err;

        switch (ev->kind) {
        case EXPORT_SLICE:
                err = track_event(o, s, ev, TYPE_SLICE_BEGIN, ev->ts_ns, false);
                return err ? err
                           : track_event(o, s, ev, TYPE_SLICE_END, ev->ts_ns + ev->dur_ns, true);
        case EXPORT_INSTANT: return track_event(o, s, ev, TYPE_INSTANT, ev->ts_ns, false);
        case EXPORT_COUNTER: return track_event(o, s, ev, TYPE_COUNTER, ev->ts_ns, false);
        }
        return -EINVAL;
}

static int pf_finish(struct export_out *o)
{
        struct pf_state *s = o->state;

        if (s) {
                free(s->pkt.p);
                free(s->msg.p);
                free(s->sub.p);
                free(s->ann.p);
                free(s);
        }
        o->state = NULL;
        return ferror(o->f) ? -EIO : 0;
}

const struct export_sink_ops export_perfetto_ops = {
        .name = "perfetto",
        .begin = pf_begin,
        .event = pf_event,
        .finish = pf_finish,
};
