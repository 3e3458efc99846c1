#!/bin/sh
# Rewrite the expected output of every golden test from the current build.
# Usage: scripts/update-golden.sh [BUILD]   (review `git diff tests/golden` after)
set -eu
build=${1:-build}
for cmd in tests/golden/*.cmd; do
        base=${cmd%.cmd}
        # shellcheck disable=SC2046
        set +e
        eval "\"$build/hvreplay\" $(cat "$cmd")" >"$base.out" 2>/dev/null
        echo $? >"$base.status"
        set -e
        echo "updated $base.out"
done
