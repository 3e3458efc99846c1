/* SPDX-License-Identifier: MIT */
/*
 * hvreplay export: a trace as timeline events (slices, instants, counters
 * on tracks), written by one of two sinks: Chrome JSON or Perfetto's
 * protobuf.  export.c turns the trace into events; each sink only encodes.
 */
#ifndef HVREPLAY_EXPORT_H
#define HVREPLAY_EXPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The tracks of one vCPU; a multi-vCPU trace has each of them once per vCPU. */
enum export_track {
        EXPORT_TRACK_VCPU,       /* exits (slices), injections and deliveries (instants) */
        EXPORT_TRACK_VIOLATIONS, /* what hvreplay check found, on a track of its own */
        EXPORT_TRACK_RATE,       /* counter: exits per second */
        EXPORT_TRACK_COUNT
};

/*
 * A track's number among all of a trace's tracks: vCPU 0's come first, in
 * enum order, so a single-vCPU trace numbers them as it always did.
 */
static inline unsigned export_track_id(uint32_t vcpu, enum export_track t)
{
        return (unsigned)vcpu * EXPORT_TRACK_COUNT + (unsigned)t;
}

enum export_kind { EXPORT_SLICE, EXPORT_INSTANT, EXPORT_COUNTER };

enum export_arg_type { EXPORT_ARG_STR, EXPORT_ARG_U64, EXPORT_ARG_HEX, EXPORT_ARG_BOOL };

struct export_arg {
        const char *key; /* a string literal */
        enum export_arg_type type;
        uint64_t u;    /* U64, HEX, BOOL */
        const char *s; /* STR: points into the owning event's text[] */
};

#define EXPORT_MAX_ARGS 12
#define EXPORT_TEXT     512

struct export_event {
        enum export_kind kind;
        enum export_track track;
        uint32_t vcpu;          /* whose track */
        uint64_t ts_ns, dur_ns; /* dur: slices only */
        uint64_t value;         /* counters only */
        bool loud;              /* a violation: drawn to stand out where the format can */
        char name[96];
        const char *cat; /* a string literal */
        struct export_arg args[EXPORT_MAX_ARGS];
        size_t nargs;
        char text[EXPORT_TEXT]; /* storage for STR args */
        size_t text_len;
};

/* What the sinks name the process and tracks after. */
struct export_meta {
        char process[160]; /* "hvtrace: guest.bin on kvm" */
        uint32_t vcpus;    /* at least 1: tracks 0 .. vcpus * EXPORT_TRACK_COUNT - 1 */
};

/*
 * The name of vCPU `vcpu`'s track t ("vCPU 1", "vCPU 1 violations (hvreplay
 * check)", ...); a single-vCPU trace's rate is "exit rate (exits/s)".
 */
void export_track_name(const struct export_meta *m, uint32_t vcpu, enum export_track t, char *buf,
                       size_t len);

struct export_out;

struct export_sink_ops {
        const char *name; /* --format value */
        int (*begin)(struct export_out *o, const struct export_meta *m);
        int (*event)(struct export_out *o, const struct export_event *ev);
        int (*finish)(struct export_out *o);
};

/* A sink writing to f; `state` is the sink's own (NULL until begin). */
struct export_out {
        FILE *f;
        const struct export_sink_ops *ops;
        void *state;
};

extern const struct export_sink_ops export_json_ops;     /* Chrome JSON (ph X, i, C, M) */
extern const struct export_sink_ops export_perfetto_ops; /* Perfetto TracePacket protobuf */

/* Every sink's begin/event/finish returns 0 or -errno (a failed write). */

#endif
