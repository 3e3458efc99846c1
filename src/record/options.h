/* SPDX-License-Identifier: MIT */
/* hvrec run's options: parsed once, read-only afterwards. */
#ifndef HVREC_OPTIONS_H
#define HVREC_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum irq_trigger_kind {
        IRQ_AT_EXIT,  /* exit:N   at exit N */
        IRQ_AT_RIP,   /* rip:ADDR the first time the vCPU stops at linear ADDR */
        IRQ_AT_PORT,  /* port:P   at every port-I/O exit on port P */
        IRQ_AT_EVERY, /* every:N  at every Nth exit */
};

struct irq_trigger {
        bool nmi; /* --nmi: a non-maskable interrupt, not vector */
        uint8_t vector;
        enum irq_trigger_kind kind;
        uint64_t arg;
};

#define MAX_IRQ_TRIGGERS 64

struct rec_opts {
        const char *guest;   /* GUEST file */
        const char *output;  /* -o: a file, or "-" for stdout */
        const char *backend; /* --backend */
        uint64_t load_addr;  /* --load */
        uint64_t entry;      /* --entry */
        bool entry_set;
        uint64_t mem_size;  /* --mem */
        bool mem_set;       /* ... given */
        unsigned mode;      /* --mode: enum hvt_mode, 0 = by guest type */
        uint64_t max_exits; /* --max-exits (at least 1), 0 = none */
        double timeout_s;   /* --timeout, 0 = none */
        bool quiet;
        bool raw_console; /* --raw-console: the guest's console bytes unescaped */
        unsigned policy;  /* --inject: enum hvt_policy */
        bool policy_set;  /* --inject was given */
        bool single_step;
        uint64_t seed;
        bool seed_set;
        struct irq_trigger irqs[MAX_IRQ_TRIGGERS];
        size_t nirqs;
        uint64_t kick_usec; /* --kick USEC, 0 = none */
        int kick_vector;    /* --kick USEC:VECTOR, -1 = none */
        bool kick_nmi;      /* --kick USEC:nmi */
        int track_writes;   /* --track-writes: 1 yes, 0 no, -1 = where the backend can */
        int step_inject;    /* --step-inject: 1 yes, 0 no, -1 = where the backend can */
        int argc;           /* the whole command line, for the header */
        char **argv;
};

enum opts_result {
        OPTS_RUN = 0,     /* options are valid: run */
        OPTS_EXIT_OK = 1, /* --help or --backend help was printed */
        OPTS_ERROR = 2,   /* the message is in err */
};

/* Parse `hvrec run` arguments (argv[0] is "run").  Prints help itself. */
enum opts_result rec_opts_parse(int argc, char **argv, struct rec_opts *o, char *err,
                                size_t errlen);

/* Print `hvrec run --help`. */
void rec_opts_usage(void);

/* Parse "0x1000", "4096", "1M", "64K" into a byte count or address. */
int rec_parse_size(const char *s, uint64_t *out);

/*
 * Parse a --timeout value: seconds, fractions allowed, above 0 (or 0 itself
 * with zero_ok) and at most 1e6 (about 11 days, so that every timer can hold
 * it).  Returns 0 or -EINVAL.
 */
int rec_parse_seconds(const char *s, bool zero_ok, double *out);

#endif
