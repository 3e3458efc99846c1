// SPDX-License-Identifier: MIT
/*
 * hvgen: write a random, shadow-dense guest and its ground truth
 * (docs/campaigns.md).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"

enum { STATUS_OK = 0, STATUS_FAIL = 1, STATUS_USAGE = 2 };

static void usage(FILE *f)
{
        fprintf(f, "Usage: hvgen --seed S [--mode real|protected|long] -o GUEST.bin [OPTIONS]\n"
                   "\n"
                   "Write a random flat guest, dense in STI / MOV SS / POP SS shadows, for\n"
                   "`hvrec run GUEST.bin --mode MODE`, and its ground truth, GUEST.bin.truth:\n"
                   "every instruction boundary inside a shadow. The same seed and mode give\n"
                   "the same bytes.\n"
                   "\n"
                   "  --seed S          generator seed, 0..2^64-1 (required)\n"
                   "  --mode MODE       real (default), protected or long: run the guest so\n"
                   "  -o, --output FILE the guest image\n"
                   "  --truth FILE      the ground truth (default: the output with .truth)\n"
                   "  --items N         random items in the loop body, 1..4096 (default 48)\n"
                   "  --loops N         times the body runs, 1..1000 (default 3)\n"
                   "  --no-hlt          end without STI; HLT (no halt before the exit port)\n"
                   "  --pic             interrupts from the PIT through the 8259 PIC (qemu-tcg,\n"
                   "                    kvm-irqchip) instead of requests on port 0xE0\n"
                   "  --no-smc          no self-modifying stores\n"
                   "  -h, --help        this text\n"
                   "\n"
                   "Exit status: 0 written, 1 a file could not be written, 2 bad usage.\n");
}

static int bad(const char *fmt, const char *arg)
{
        fputs("hvgen: ", stderr);
        fprintf(stderr, fmt, arg);
        fputs(" (try --help)\n", stderr);
        return STATUS_USAGE;
}

static int parse_u64(const char *s, uint64_t *v)
{
        char *end;

        if (!*s || *s == '-')
                return -EINVAL;
        errno = 0;
        *v = strtoull(s, &end, 0);
        return errno || *end ? -EINVAL : 0;
}

static int parse_range(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
        uint64_t v;

        if (parse_u64(s, &v) || v < lo || v > hi)
                return -EINVAL;
        *out = (unsigned)v;
        return 0;
}

static int write_file(const char *path, const void *buf, size_t len)
{
        FILE *f = fopen(path, "wb");

        if (!f)
                return -errno;
        if (fwrite(buf, 1, len, f) != len) {
                int err = -errno;

                fclose(f);
                return err ? err : -EIO;
        }
        return fclose(f) ? -errno : 0;
}

static int write_outputs(const struct gen_opts *o, const char *out, const char *truth)
{
        struct gen_guest g;
        char *text = NULL;
        size_t len;
        int err;

        err = gen_build(o, &g);
        if (err == -EFBIG) {
                fprintf(stderr,
                        "hvgen: the guest outgrows real mode's 64 KiB: use fewer --items\n");
                return STATUS_USAGE;
        }
        if (err) {
                fprintf(stderr, "hvgen: generating: %s\n", strerror(-err));
                return STATUS_FAIL;
        }
        err = gen_truth_text(o, &g, &text, &len);
        if (err) {
                fprintf(stderr, "hvgen: ground truth: %s\n", strerror(-err));
                goto err_guest;
        }
        err = write_file(out, g.code, g.len);
        if (err) {
                fprintf(stderr, "hvgen: %s: %s\n", out, strerror(-err));
                goto err_text;
        }
        err = write_file(truth, text, len);
        if (err) {
                fprintf(stderr, "hvgen: %s: %s\n", truth, strerror(-err));
                goto err_text;
        }
        free(text);
        gen_free(&g);
        return STATUS_OK;

err_text:
        free(text);
err_guest:
        gen_free(&g);
        return STATUS_FAIL;
}

int main(int argc, char **argv)
{
        enum {
                OPT_SEED = 256,
                OPT_MODE,
                OPT_TRUTH,
                OPT_ITEMS,
                OPT_LOOPS,
                OPT_NO_HLT,
                OPT_PIC,
                OPT_NO_SMC
        };
        static const struct option longopts[] = {
                { "seed", required_argument, NULL, OPT_SEED },
                { "mode", required_argument, NULL, OPT_MODE },
                { "output", required_argument, NULL, 'o' },
                { "truth", required_argument, NULL, OPT_TRUTH },
                { "items", required_argument, NULL, OPT_ITEMS },
                { "loops", required_argument, NULL, OPT_LOOPS },
                { "no-hlt", no_argument, NULL, OPT_NO_HLT },
                { "pic", no_argument, NULL, OPT_PIC },
                { "no-smc", no_argument, NULL, OPT_NO_SMC },
                { "help", no_argument, NULL, 'h' },
                { NULL, 0, NULL, 0 },
        };
        struct gen_opts o;
        const char *out = NULL, *truth = NULL;
        char *deftruth = NULL;
        int have_seed = 0, c, status;

        gen_opts_default(&o);
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":ho:", longopts, NULL)) != -1) {
                switch (c) {
                case OPT_SEED:
                        if (parse_u64(optarg, &o.seed))
                                return bad("--seed: '%s' is not a number 0..2^64-1", optarg);
                        have_seed = 1;
                        break;
                case OPT_MODE:
                        o.mode = gen_mode_parse(optarg);
                        if (!o.mode)
                                return bad("--mode: '%s' is not real, protected or long", optarg);
                        break;
                case 'o': out = optarg; break;
                case OPT_TRUTH: truth = optarg; break;
                case OPT_ITEMS:
                        if (parse_range(optarg, 1, 4096, &o.items))
                                return bad("--items: '%s' is not a number 1..4096", optarg);
                        break;
                case OPT_LOOPS:
                        if (parse_range(optarg, 1, 1000, &o.loops))
                                return bad("--loops: '%s' is not a number 1..1000", optarg);
                        break;
                case OPT_NO_HLT: o.hlt = 0; break;
                case OPT_PIC: o.pic = 1; break;
                case OPT_NO_SMC: o.smc = 0; break;
                case 'h': usage(stdout); return STATUS_OK;
                case ':': return bad("%s needs an argument", argv[optind - 1]);
                default: return bad("unknown option '%s'", argv[optind - 1]);
                }
        }
        if (optind < argc)
                return bad("unexpected argument '%s'", argv[optind]);
        if (!have_seed)
                return bad("%s", "--seed is required");
        if (!out)
                return bad("%s", "-o GUEST.bin is required");
        if (!truth) {
                if (asprintf(&deftruth, "%s.truth", out) < 0) {
                        fputs("hvgen: out of memory\n", stderr);
                        return STATUS_FAIL;
                }
                truth = deftruth;
        }
        status = write_outputs(&o, out, truth);
        free(deftruth);
        return status;
}
