#!/bin/sh
# Regenerate the seed corpus of the fuzz targets, fuzz/corpus/ (see
# fuzz/README.md): the small sample traces of traces/, the same guests
# recorded on the emu backend (deterministic, and with WRITE records, which
# the KVM samples lack), each cut to a few KB, and the hand-made traces of
# fuzz_seedgen.  Run from the repository root after `make build` and one
# `scripts/fuzz.sh` (which builds fuzz_seedgen):
#   scripts/fuzz-seeds.sh [BUILD] [FUZZ_BUILD]      (default build, build-fuzz)
# Review and commit the result; the fuzzers' own findings stay in FUZZ_BUILD.
set -eu
build=${1:-build}
fbuild=${2:-build-fuzz}
rec=$build/hvrec
g=$build/guests
gen=$fbuild/fuzz/fuzz_seedgen
out=fuzz/corpus
[ -x "$rec" ] || { echo "fuzz-seeds: build first ($rec missing)" >&2; exit 2; }
[ -x "$gen" ] || { echo "fuzz-seeds: run scripts/fuzz.sh first ($gen missing)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Everything but the regression seeds (regress-*: inputs that once found a bug).
mkdir -p "$out/zst" "$out/raw" "$out/pair"
find "$out/zst" "$out/raw" "$out/pair" -type f ! -name 'regress-*' -delete

# KVM samples: as they are when small, and cut to 4 KB of raw stream.
for t in traces/*.zst; do
        name=$(basename "$t" .zst)
        [ "$(wc -c <"$t")" -le 4096 ] && cp "$t" "$out/zst/$name.hvt"
        "$gen" trim "$t" 4096 "$out/raw/$name.raw"
done

emu() { # NAME GUEST [hvrec options...]: record on emu into $tmp/NAME.zst
        name=$1 guest=$2
        shift 2
        "$rec" run --backend emu --quiet --seed 1 --timeout 30 -o "$tmp/$name.zst" "$@" \
                "$g/$guest.bin" >/dev/null || true
}
emu demo demo
emu hello hello
emu movss-sti-window cv_movss_sti_out --irq 0x30@port:0x81 --irq 0x30@port:0x82 \
        --irq 0x30@port:0x84 --irq 0x30@port:0x85
emu not-ready-blind cv_not_ready_in --inject blind
emu stress-eager-kick stress --kick 20:0x30 --inject eager --max-exits 6000
emu stress-eager-kick-l64 stress_l64 --mode long --kick 20:0x30 --inject eager --max-exits 6000
emu smc-eager-step smc --single-step --inject eager --max-exits 400
for t in "$tmp"/*.zst; do
        name=$(basename "$t" .zst)-emu
        "$gen" trim "$t" 4096 "$out/raw/$name.raw"
        "$gen" trim "$t" 8192 "$out/zst/$name.hvt"
done

# Pairs for fuzz_diff: one guest on two backends (or two policies), 2 KB each.
pair() { # NAME A.zst B.zst
        "$gen" trim "$2" 2048 "$tmp/a.raw"
        "$gen" trim "$3" 2048 "$tmp/b.raw"
        cat "$tmp/a.raw" "$tmp/b.raw" >"$out/pair/$1.pair"
}
pair demo-kvm-emu traces/demo.zst "$tmp/demo.zst"
pair hello-kvm-emu traces/hello.zst "$tmp/hello.zst"
pair movss-sti-window-kvm-emu traces/movss-sti-window.zst "$tmp/movss-sti-window.zst"
pair not-ready-blind-kvm-emu traces/not-ready-blind.zst "$tmp/not-ready-blind.zst"
pair stress-eager-kick-kvm-emu traces/stress-eager-kick.zst "$tmp/stress-eager-kick.zst"
pair stress-emu-real-l64 "$tmp/stress-eager-kick.zst" "$tmp/stress-eager-kick-l64.zst"

"$gen" craft "$out"
for d in zst raw pair; do
        echo "fuzz-seeds: $out/$d: $(find "$out/$d" -type f | wc -l) files," \
                "at most $(find "$out/$d" -type f -exec wc -c {} + | sort -n | tail -n 2 |
                        head -n 1 | awk '{ print $1 }') bytes"
done
