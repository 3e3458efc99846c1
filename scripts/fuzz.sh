#!/bin/sh
# Build the libFuzzer targets of fuzz/ with clang and run each one for a
# short time from the seed corpus (fuzz/README.md).  Any finding (a crash,
# a sanitizer report, a leak, a contract violation, an input slower than
# the timeout or over the memory limit) fails the run, and the input is
# kept under BUILD/fuzz/findings/TARGET/.  `make test` runs this; without
# clang or its libFuzzer runtime it says so and succeeds.
#
# Usage: scripts/fuzz.sh [BUILD]          (default build-fuzz)
# Environment: FUZZ_SECONDS per target (default 60), FUZZ_JOBS targets run
# at once (default: the number of CPUs, at most 4), FUZZ_TARGETS (default
# all four), FUZZ_SEED libFuzzer's -seed (default: random, printed), FUZZ_CC
# the compiler (default clang).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build-fuzz}
case "$build" in /*) ;; *) build=$root/$build ;; esac
secs=${FUZZ_SECONDS:-60}
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
[ "$jobs" -gt 4 ] && jobs=4
targets=${FUZZ_TARGETS:-fuzz_reader fuzz_reader_raw fuzz_replay fuzz_diff}
corpus=$root/fuzz/corpus

skip() {
        echo "fuzz: skipped: $*"
        exit 0
}

cc=${FUZZ_CC:-clang}
command -v "$cc" >/dev/null 2>&1 || skip "$cc not found (scripts/deps.sh --fuzz installs clang)"
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n);\n%s\n' \
        'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { return 0; }' \
        >"$probe/p.c"
"$cc" -fsanitize=fuzzer,address,undefined "$probe/p.c" -o "$probe/p" >/dev/null 2>&1 ||
        skip "$cc cannot link a libFuzzer target (install libclang-rt-14-dev)"

CC=$cc cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHVTRACE_FUZZ=ON \
        -DHVTRACE_TESTS=OFF >/dev/null
cmake --build "$build" -j "$jobs" --target fuzz >/dev/null

# Which seed directories each target starts from.
seeds() {
        case "$1" in
        fuzz_reader) echo "$corpus/zst" ;;
        fuzz_reader_raw) echo "$corpus/raw" ;;
        fuzz_replay) echo "$corpus/zst $corpus/raw" ;;
        fuzz_diff) echo "$corpus/pair" ;;
        *) echo "fuzz: unknown target $1" >&2; exit 2 ;;
        esac
}

# hvreplay holds the guest memory image, as large as the trace's header
# says: it is run as on a machine that grants no single allocation over
# 512 MiB, so a trace claiming more must be refused with a message (status
# 2).  Under ASan a large allocation is not lazily zeroed as it is in a
# plain build: its shadow is written, which is slow and counts against
# -rss_limit_mb.  The reader's allocations are bounded (16 MiB records, the
# zstd window): any single allocation over -malloc_limit_mb is a finding.
asan_options() {
        o=allocator_may_return_null=1:detect_leaks=1:abort_on_error=1
        case "$1" in
        fuzz_reader*) echo "$o" ;;
        *) echo "$o:max_allocation_size_mb=512" ;;
        esac
}

run() { # TARGET: run it, leave its status in BUILD/fuzz/TARGET.status
        t=$1
        work=$build/fuzz/work/$t
        found=$build/fuzz/findings/$t
        mkdir -p "$work" "$found"
        seed_opt=""
        [ -n "${FUZZ_SEED:-}" ] && seed_opt="-seed=$FUZZ_SEED"
        # shellcheck disable=SC2046,SC2086 # seed directories and options are separate words
        ASAN_OPTIONS=$(asan_options "$t") UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
                "$build/fuzz/$t" -max_total_time="$secs" -timeout=25 -rss_limit_mb=2048 \
                -malloc_limit_mb=2048 -max_len=16384 -print_final_stats=1 \
                -artifact_prefix="$found/" $seed_opt "$work" $(seeds "$t") \
                >"$build/fuzz/$t.log" 2>&1 && st=0 || st=$?
        echo "$st" >"$build/fuzz/$t.status"
}

echo "fuzz: $targets, ${secs} s each, $jobs at a time (logs in $build/fuzz/)"
# shellcheck disable=SC2086 # one target per word
set -- $targets
while [ $# -gt 0 ]; do
        batch=""
        n=0
        while [ $# -gt 0 ] && [ $n -lt "$jobs" ]; do
                run "$1" &
                batch="$batch $1"
                n=$((n + 1))
                shift
        done
        wait
        for t in $batch; do
                st=$(cat "$build/fuzz/$t.status")
                runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$build/fuzz/$t.log")
                cov=$(grep -o 'cov: [0-9]*' "$build/fuzz/$t.log" | tail -n 1)
                if [ "$st" = 0 ]; then
                        echo "fuzz: $t: ok, ${runs:-?} inputs, ${cov:-cov: ?}"
                else
                        echo "fuzz: $t: FAILED (status $st); the report:"
                        # From the first report line, 40 lines: the error and its stack.
                        awk '/ERROR|runtime error|contract violated|ALARM|out-of-memory/ { p = 1 }
                             p && n++ < 40' "$build/fuzz/$t.log"
                        echo "fuzz: $t: input kept in $build/fuzz/findings/$t/;" \
                                "reproduce with $build/fuzz/$t FILE"
                        failed=1
                fi
        done
done
[ -z "${failed:-}" ] || exit 1
echo "fuzz: no findings"
