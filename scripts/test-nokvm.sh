#!/bin/sh
# Run the suites of BUILD that use KVM (ctest label "kvm") as on a machine
# without it: /dev/kvm hidden behind /dev/null in a private mount namespace.
# Every test that needs KVM must then be skipped with its reason, and the
# rest of those suites (their emu halves) must pass.  The suites without the
# label never open /dev/kvm, so the plain pass already ran them as they would
# run here; repeating them would only cost time.
# Usage: scripts/test-nokvm.sh BUILD
set -eu
build=$1
here=$(cd "$(dirname "$0")" && pwd)
run="cd '$build' && ctest -V -j2 -L kvm --timeout 1200 2>&1 | '$here/ctest-filter.sh'"
if [ ! -e /dev/kvm ]; then
        # The plain pass (make test-build) already ran exactly this.
        echo "test-nokvm: this machine has no /dev/kvm: the plain pass was the run without it"
        exit 0
fi
hide="mount --bind /dev/null /dev/kvm && $run"
if unshare --mount true 2>/dev/null; then
        exec unshare --mount sh -c "$hide"
elif unshare --user --map-root-user --mount true 2>/dev/null; then
        exec unshare --user --map-root-user --mount sh -c "$hide"
fi
echo "test-nokvm: cannot make a mount namespace here to hide /dev/kvm" >&2
exit 1
