#!/bin/sh
# Golden test runner: run `hvreplay ARGS` (ARGS from NAME.cmd, relative to the
# repository root) and compare stdout with NAME.out and the status with
# NAME.status.  Usage: run.sh HVREPLAY NAME.cmd
set -u
hvreplay=$1
cmd=$2
base=${cmd%.cmd}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
eval "\"$hvreplay\" $(cat "$cmd")" >"$out" 2>/dev/null
status=$?
want=$(cat "$base.status")
if [ "$status" != "$want" ]; then
        echo "golden $(basename "$base"): exit status $status, expected $want"
        exit 1
fi
if ! diff -u "$base.out" "$out"; then
        echo "golden $(basename "$base"): output differs from $base.out (see diff above)"
        exit 1
fi
echo "golden $(basename "$base"): ok"
