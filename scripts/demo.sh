#!/bin/sh
# The main job: record the bundled demo guest on KVM, then show what hvreplay
# says about it.  Usage: scripts/demo.sh [BUILD]
set -eu
build=${1:-build}
trace="$build/demo.zst"
echo "== hvrec run -o $trace $build/guests/demo.bin"
set +e
"$build/hvrec" run -o "$trace" "$build/guests/demo.bin"
status=$?
set -e
echo "== hvrec exit status: $status"
[ "$status" = 0 ] || exit "$status"
echo
echo "== hvreplay stats $trace"
"$build/hvreplay" stats "$trace"
