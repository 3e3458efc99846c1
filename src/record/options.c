// SPDX-License-Identifier: MIT
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hvtrace/hvtrace.h>

#include "../arch/x86.h"
#include "../backends/backend.h"
#include "mode.h"
#include "options.h"

#define DEFAULT_LOAD   0x1000ull
#define DEFAULT_MEM    (1ull << 20)
#define DEFAULT_OUTPUT "trace.zst"
#define MAX_MEM        (64ull << 30)

void rec_opts_usage(void)
{
        printf("Usage: hvrec run [OPTIONS] GUEST\n"
               "\n"
               "Run GUEST (a flat binary, or an ELF executable) on a backend and record every\n"
               "VM exit into a trace.\n"
               "\n"
               "Guest and machine:\n"
               "  --load ADDR          load a flat binary at guest-physical ADDR (default 0x1000;\n"
               "                       an ELF guest's segments go to their physical addresses)\n"
               "  --entry ADDR         first instruction (default: the load address, or the\n"
               "                       ELF entry point)\n"
               "  --mem SIZE           guest RAM, e.g. 1M, 64M (default 1M; qemu-tcg in protected\n"
               "                       and long mode: 2M)\n"
               "  --mode MODE          real, protected (32-bit flat, paging off) or long (64-bit,\n"
               "                       identity paging); default: real for flat binaries, from\n"
               "                       the ELF class for ELF guests (32: protected, 64: long)\n"
               "  --backend NAME       backend to run on (default %s); 'help' lists them\n"
               "\n"
               "Interrupts:\n"
               "  --inject POLICY      window (default): inject when the backend says ready,\n"
               "                       else request an interrupt window;\n"
               "                       eager: at the next exit with IF=1, ignoring shadows;\n"
               "                       blind: at the next exit whatever IF and shadows say\n"
               "  --irq VEC@TRIGGER    raise vector VEC at exit:N, rip:ADDR (first stop at\n"
               "                       linear ADDR), port:P (every I/O exit on P) or every:N\n"
               "                       (every Nth exit); repeatable\n"
               "  --nmi TRIGGER        raise a non-maskable interrupt (vector 2) at the same\n"
               "                       triggers as --irq: exit:N, rip:ADDR, port:P, every:N;\n"
               "                       repeatable (kvm and emu only)\n"
               "  --kick USEC[:VEC]    interrupt the run every USEC microseconds (jittered by\n"
               "                       the seed, 50%%..150%%); with VEC, raise it at each kick,\n"
               "                       with 'nmi' (--kick USEC:nmi) an NMI; on kvm each kick\n"
               "                       is a round trip through the kernel, and a USEC below\n"
               "                       that (about 10 under kvm_pvm) starves the guest\n"
               "  --single-step        exit after every instruction\n"
               "  --step-inject yes|no before injecting at an exit that does not show which\n"
               "                       instruction ran last (a kick, an interrupt window),\n"
               "                       single-step two instructions (fewer if an I/O, MMIO or\n"
               "                       HLT exit shows the last one), then decide again\n"
               "                       (default yes where the backend can single-step and\n"
               "                       hvrec injects itself; moot with --single-step)\n"
               "  --seed N             seed for every random choice (default: from the clock;\n"
               "                       recorded in the trace header)\n"
               "\n"
               "Recording:\n"
               "  -o, --output FILE    trace file (default trace.zst), or - for stdout (the\n"
               "                       console then goes to stderr). An existing regular FILE\n"
               "                       is kept: renamed to FILE.1 (or .2, ...: the first free\n"
               "                       name) before a new FILE is created; nothing is ever\n"
               "                       overwritten. A FIFO or character device is written as a\n"
               "                       stream; a symbolic link, directory or block device is\n"
               "                       refused\n"
               "  --track-writes yes|no\n"
               "                       record every write to guest RAM (WRITE records), so\n"
               "                       a reader sees code as it ran (default yes where the\n"
               "                       backend can report writes)\n"
               "  --max-exits N        stop after N exits, N >= 1 (default: no limit)\n"
               "  --timeout SECONDS    stop after SECONDS of wall time, even if the guest\n"
               "                       never exits (default: no limit)\n"
               "  --raw-console        print the guest's console bytes as they are (default:\n"
               "                       control characters but newline and tab, bytes above\n"
               "                       0x7e and the backslash as \\xNN); the trace always\n"
               "                       holds them raw\n"
               "  -q, --quiet          no summary on stderr\n"
               "  -h, --help           this text\n"
               "\n"
               "Exit status: below 128 always the guest's, 128 and above always hvrec's:\n"
               "  0        the guest wrote 0 to port 0xF4, or halted with nothing to wake it\n"
               "  1-127    the guest wrote that status to port 0xF4\n"
               "  128+N    stopped by signal N (SIGINT, SIGTERM, SIGHUP, ...); trace complete\n"
               "  202      hvrec's own error: bad options, unusable guest or backend, the trace\n"
               "           cannot be created or written\n"
               "  203      the guest crashed (triple fault, failed entry, internal error)\n"
               "  204      stopped by --max-exits or --timeout\n"
               "  205      the guest wrote a status above 127 (the message and the trace's end\n"
               "           record give it)\n",
               backend_at(0)->name);
}

static void list_backends(void)
{
        printf("Backends compiled into hvrec:\n");
        for (size_t i = 0; i < backend_count(); i++) {
                const struct backend_ops *ops = backend_at(i);
                char why[160];
                int err = ops->probe(why, sizeof(why));

                printf("  %-12s %s\n  %-12s %s: %s\n", ops->name, ops->summary, "",
                       err ? "not usable here" : "usable here", why);
        }
}

int rec_parse_seconds(const char *s, bool zero_ok, double *out)
{
        char *end;
        double v;

        errno = 0;
        v = strtod(s, &end);
        /* The comparisons also refuse NaN; "inf" is refused by the bound. */
        if (errno || *end || end == s || !(zero_ok ? v >= 0 : v > 0) || v > 1e6)
                return -EINVAL;
        *out = v;
        return 0;
}

int rec_parse_size(const char *s, uint64_t *out)
{
        char *end;
        uint64_t v, mul = 1;

        if (!*s || *s == '-')
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 0);
        if (errno || end == s)
                return -EINVAL;
        switch (*end) {
        case 'k':
        case 'K':
                mul = 1ull << 10;
                end++;
                break;
        case 'm':
        case 'M':
                mul = 1ull << 20;
                end++;
                break;
        case 'g':
        case 'G':
                mul = 1ull << 30;
                end++;
                break;
        default: break;
        }
        if (*end == 'i' || *end == 'B')
                end += (*end == 'i' && end[1] == 'B') ? 2 : 1;
        if (*end)
                return -EINVAL;
        if (v > UINT64_MAX / mul)
                return -ERANGE;
        *out = v * mul;
        return 0;
}

static int parse_u64(const char *s, uint64_t *out)
{
        char *end;

        if (!*s || *s == '-')
                return -EINVAL;
        errno = 0;
        *out = strtoull(s, &end, 0);
        return errno || *end ? -EINVAL : 0;
}

static int parse_vector(const char *s, size_t n, uint8_t *out)
{
        char buf[16];
        uint64_t v;

        if (n == 0 || n >= sizeof(buf))
                return -EINVAL;
        memcpy(buf, s, n);
        buf[n] = 0;
        if (parse_u64(buf, &v) || v > 255)
                return -EINVAL;
        *out = (uint8_t)v;
        return 0;
}

/* exit:N | rip:ADDR | port:P | every:N: when a trigger of --irq or --nmi fires */
static int parse_trigger(const char *s, struct irq_trigger *t)
{
        static const struct {
                const char *name;
                enum irq_trigger_kind kind;
        } kinds[] = {
                { "exit:", IRQ_AT_EXIT },
                { "rip:", IRQ_AT_RIP },
                { "port:", IRQ_AT_PORT },
                { "every:", IRQ_AT_EVERY },
        };

        for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
                size_t n = strlen(kinds[i].name);

                if (strncmp(s, kinds[i].name, n))
                        continue;
                t->kind = kinds[i].kind;
                if (parse_u64(s + n, &t->arg))
                        return -EINVAL;
                if (t->kind == IRQ_AT_PORT && t->arg > 0xffff)
                        return -EINVAL;
                if (t->kind == IRQ_AT_EVERY && t->arg == 0)
                        return -EINVAL;
                return 0;
        }
        return -EINVAL;
}

/* VECTOR@TRIGGER */
static int parse_irq(const char *s, struct irq_trigger *t)
{
        const char *at = strchr(s, '@');

        if (!at || parse_vector(s, (size_t)(at - s), &t->vector))
                return -EINVAL;
        t->nmi = false;
        return parse_trigger(at + 1, t);
}

/* TRIGGER: an NMI, vector 2 */
static int parse_nmi(const char *s, struct irq_trigger *t)
{
        t->nmi = true;
        t->vector = X86_EXC_NMI;
        return parse_trigger(s, t);
}

/* "yes" or "no": 1 or 0, -1 for anything else. */
static int parse_yes_no(const char *s)
{
        if (!strcmp(s, "yes"))
                return 1;
        if (!strcmp(s, "no"))
                return 0;
        return -1;
}

static int parse_kick(const char *s, struct rec_opts *o)
{
        const char *colon = strchr(s, ':');
        char buf[32];
        size_t n = colon ? (size_t)(colon - s) : strlen(s);

        if (n == 0 || n >= sizeof(buf))
                return -EINVAL;
        memcpy(buf, s, n);
        buf[n] = 0;
        if (parse_u64(buf, &o->kick_usec) || o->kick_usec == 0 || o->kick_usec > 60000000)
                return -EINVAL;
        o->kick_vector = -1;
        o->kick_nmi = false;
        if (colon && !strcmp(colon + 1, "nmi")) {
                o->kick_nmi = true;
        } else if (colon) {
                uint8_t v;

                if (parse_vector(colon + 1, strlen(colon + 1), &v))
                        return -EINVAL;
                o->kick_vector = v;
        }
        return 0;
}

enum {
        OPT_LOAD = 256,
        OPT_ENTRY,
        OPT_MEM,
        OPT_MODE,
        OPT_BACKEND,
        OPT_MAX_EXITS,
        OPT_TIMEOUT,
        OPT_INJECT,
        OPT_IRQ,
        OPT_NMI,
        OPT_KICK,
        OPT_SINGLE_STEP,
        OPT_SEED,
        OPT_TRACK_WRITES,
        OPT_STEP_INJECT,
        OPT_RAW_CONSOLE,
};

static const struct option long_opts[] = {
        { "load", required_argument, NULL, OPT_LOAD },
        { "entry", required_argument, NULL, OPT_ENTRY },
        { "mem", required_argument, NULL, OPT_MEM },
        { "mode", required_argument, NULL, OPT_MODE },
        { "backend", required_argument, NULL, OPT_BACKEND },
        { "output", required_argument, NULL, 'o' },
        { "max-exits", required_argument, NULL, OPT_MAX_EXITS },
        { "timeout", required_argument, NULL, OPT_TIMEOUT },
        { "inject", required_argument, NULL, OPT_INJECT },
        { "irq", required_argument, NULL, OPT_IRQ },
        { "nmi", required_argument, NULL, OPT_NMI },
        { "kick", required_argument, NULL, OPT_KICK },
        { "single-step", no_argument, NULL, OPT_SINGLE_STEP },
        { "seed", required_argument, NULL, OPT_SEED },
        { "track-writes", required_argument, NULL, OPT_TRACK_WRITES },
        { "step-inject", required_argument, NULL, OPT_STEP_INJECT },
        { "raw-console", no_argument, NULL, OPT_RAW_CONSOLE },
        { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { 0 },
};

#define BAD(...)                                    \
        do {                                        \
                snprintf(err, errlen, __VA_ARGS__); \
                return OPTS_ERROR;                  \
        } while (0)

enum opts_result rec_opts_parse(int argc, char **argv, struct rec_opts *o, char *err, size_t errlen)
{
        int c, policy;

        memset(o, 0, sizeof(*o));
        o->output = DEFAULT_OUTPUT;
        o->backend = backend_at(0)->name; /* kvm, unless it is compiled out */
        o->load_addr = DEFAULT_LOAD;
        o->mem_size = DEFAULT_MEM;
        o->policy = HVT_POLICY_WINDOW;
        o->kick_vector = -1;
        o->track_writes = -1;
        o->step_inject = -1;

        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "+:o:qh", long_opts, NULL)) != -1) {
                switch (c) {
                case OPT_LOAD:
                        if (rec_parse_size(optarg, &o->load_addr))
                                BAD("--load: '%s' is not an address", optarg);
                        break;
                case OPT_ENTRY:
                        if (rec_parse_size(optarg, &o->entry))
                                BAD("--entry: '%s' is not an address", optarg);
                        o->entry_set = true;
                        break;
                case OPT_MEM:
                        if (rec_parse_size(optarg, &o->mem_size) || o->mem_size < 4096 ||
                            o->mem_size > MAX_MEM || o->mem_size % 4096)
                                BAD("--mem: '%s' is not a size from 4K to 64G in whole 4 KiB pages",
                                    optarg);
                        o->mem_set = true;
                        break;
                case OPT_MODE:
                        o->mode = mode_parse(optarg);
                        if (!o->mode)
                                BAD("--mode: '%s' is not a mode (real, protected, long)", optarg);
                        break;
                case OPT_BACKEND:
                        if (!strcmp(optarg, "help")) {
                                list_backends();
                                return OPTS_EXIT_OK;
                        }
                        if (!backend_find(optarg) && backend_option(optarg))
                                BAD("--backend: backend '%s' is not compiled into this hvrec "
                                    "(-D%s=ON; try --backend help)",
                                    optarg, backend_option(optarg));
                        if (!backend_find(optarg))
                                BAD("--backend: no backend '%s' (try --backend help)", optarg);
                        o->backend = optarg;
                        break;
                case 'o':
                        if (!*optarg)
                                BAD("--output: empty file name");
                        o->output = optarg;
                        break;
                case OPT_MAX_EXITS:
                        if (parse_u64(optarg, &o->max_exits))
                                BAD("--max-exits: '%s' is not a count", optarg);
                        if (!o->max_exits)
                                BAD("--max-exits: must be at least 1 (leave it out for no limit)");
                        break;
                case OPT_TIMEOUT:
                        if (rec_parse_seconds(optarg, false, &o->timeout_s))
                                BAD("--timeout: '%s' is not a number of seconds", optarg);
                        break;
                case OPT_INJECT:
                        policy = hvt_policy_parse(optarg);
                        if (policy < 0 || policy == HVT_POLICY_BACKEND)
                                BAD("--inject: '%s' is not a policy (window, eager, blind)",
                                    optarg);
                        o->policy = (unsigned)policy;
                        o->policy_set = true;
                        break;
                case OPT_IRQ:
                        if (o->nirqs == MAX_IRQ_TRIGGERS)
                                BAD("--irq: at most %d triggers", MAX_IRQ_TRIGGERS);
                        if (parse_irq(optarg, &o->irqs[o->nirqs]))
                                BAD("--irq: '%s' is not VECTOR@exit:N, @rip:ADDR, @port:P or "
                                    "@every:N",
                                    optarg);
                        o->nirqs++;
                        break;
                case OPT_NMI:
                        if (o->nirqs == MAX_IRQ_TRIGGERS)
                                BAD("--nmi: at most %d triggers of --irq and --nmi",
                                    MAX_IRQ_TRIGGERS);
                        if (parse_nmi(optarg, &o->irqs[o->nirqs]))
                                BAD("--nmi: '%s' is not exit:N, rip:ADDR, port:P or every:N",
                                    optarg);
                        o->nirqs++;
                        break;
                case OPT_KICK:
                        if (parse_kick(optarg, o))
                                BAD("--kick: '%s' is not USEC[:VECTOR] or USEC:nmi "
                                    "(1..60000000 us)",
                                    optarg);
                        break;
                case OPT_SINGLE_STEP: o->single_step = true; break;
                case OPT_SEED:
                        if (parse_u64(optarg, &o->seed))
                                BAD("--seed: '%s' is not a number", optarg);
                        o->seed_set = true;
                        break;
                case OPT_TRACK_WRITES:
                        o->track_writes = parse_yes_no(optarg);
                        if (o->track_writes < 0)
                                BAD("--track-writes: '%s' is not yes or no", optarg);
                        break;
                case OPT_STEP_INJECT:
                        o->step_inject = parse_yes_no(optarg);
                        if (o->step_inject < 0)
                                BAD("--step-inject: '%s' is not yes or no", optarg);
                        break;
                case OPT_RAW_CONSOLE: o->raw_console = true; break;
                case 'q': o->quiet = true; break;
                case 'h': rec_opts_usage(); return OPTS_EXIT_OK;
                case ':': BAD("%s needs a value", argv[optind - 1]);
                default:
                        if (optopt && optopt < 256)
                                BAD("unknown option '-%c' (see hvrec run --help)", optopt);
                        BAD("unknown option '%s' (see hvrec run --help)", argv[optind - 1]);
                }
        }
        if (optind >= argc)
                BAD("no guest given (usage: hvrec run [OPTIONS] GUEST)");
        if (optind + 1 < argc)
                BAD("one guest at a time: unexpected '%s'", argv[optind + 1]);
        o->guest = argv[optind];
        if (o->load_addr >= o->mem_size)
                BAD("--load 0x%" PRIx64 " is outside guest memory (--mem %" PRIu64 ")",
                    o->load_addr, o->mem_size);
        return OPTS_RUN;
}
