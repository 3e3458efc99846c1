#!/bin/sh
# Regenerate the sample traces in traces/ by recording the bundled guests on
# KVM.  Run from the repository root after a build:  scripts/record-traces.sh [BUILD]
# The expected outputs of the golden tests (tests/golden/) are regenerated too;
# review the diff before committing: a change there is a change in behaviour.
set -eu
build=${1:-build}
rec="$build/hvrec"
g="$build/guests"
[ -x "$rec" ] || { echo "record-traces: build first ($rec missing)" >&2; exit 2; }
[ -r /dev/kvm ] || { echo "record-traces: needs /dev/kvm" >&2; exit 2; }

record() { # NAME GUEST [hvrec options...]
        name=$1 guest=$2
        shift 2
        rm -f "traces/$name.zst"
        "$rec" run --quiet --seed 1 --timeout 30 -o "traces/$name.zst" "$@" "$g/$guest.bin" >/dev/null || true
        echo "recorded traces/$name.zst"
}

record hello hello
record demo demo

scripts/update-golden.sh "$build"
