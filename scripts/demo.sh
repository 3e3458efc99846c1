#!/bin/sh
# The main job: record the bundled demo guest on KVM (on the emu backend when
# this machine has no usable /dev/kvm) and show what hvreplay
# says about it (exit statistics, then the interrupt-shadow check), then
# record it again the way a buggy VMM would inject (--inject eager, with
# --single-step so the bug shows deterministically) and check that too.
# Exit status: 0 when the correct run is clean and the buggy run's STI;HLT
# shadow violation is found, as expected.  Usage: scripts/demo.sh [BUILD]
set -eu
build=${1:-build}
good="$build/demo.zst"
bad="$build/demo-eager.zst"
rm -f "$good" "$bad"

# KVM when this machine has it; otherwise the software CPU, and say why.
backend=kvm
if ! "$build/hvrec" run --backend help | grep -A1 '^  kvm ' | grep -q '^ *usable here:'; then
        echo "== KVM is not usable here ($("$build/hvrec" run --backend help |
                grep -A1 '^  kvm ' | sed -n 's/.*not usable here: //p')): using --backend emu"
        backend=emu
fi

echo "== hvrec run --backend $backend -o $good $build/guests/demo.bin"
status=0
"$build/hvrec" run --backend "$backend" -o "$good" "$build/guests/demo.bin" || status=$?
echo "== hvrec exit status: $status"
[ "$status" = 0 ] || exit "$status"

echo
echo "== hvreplay stats $good"
"$build/hvreplay" stats "$good"

echo
echo "== hvreplay check $good"
"$build/hvreplay" check "$good"

echo
echo "== the same guest, injected like a buggy VMM: hvrec run --single-step --inject eager"
"$build/hvrec" run --backend "$backend" --quiet --single-step --inject eager -o "$bad" \
        "$build/guests/demo.bin"
echo
echo "== hvreplay check $bad"
status=0
"$build/hvreplay" check "$bad" || status=$?
if [ "$status" = 1 ]; then
        echo "== as expected: the eager VMM delivered inside the STI shadow"
        exit 0
fi
echo "== unexpected: hvreplay check exited $status on the eager trace" >&2
exit 1
