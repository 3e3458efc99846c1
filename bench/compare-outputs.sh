#!/bin/bash
# Whether two hvreplay builds print the same, byte for byte: for speed work
# that must not change any output (docs/performance.md).
#
# Usage: compare-outputs.sh REF_HVREPLAY NEW_HVREPLAY TRACE...
# Runs check, check --json, check --without-steps, stats, dump, dump
# --format jsonl, diff of each trace with itself and diff with the trace
# before it, with both builds, and compares stdout, stderr and the exit
# status.  Prints each command that differs; exits 1 if any does.
set -u

[ $# -ge 3 ] || { echo "usage: compare-outputs.sh REF_HVREPLAY NEW_HVREPLAY TRACE..." >&2; exit 2; }
ref=$1
new=$2
shift 2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hvt-compare-XXXXXX")
trap 'rm -rf "$tmp"' EXIT

fail=0
n=0
prev=$1
for t in "$@"; do
        [ -s "$t" ] || continue
        n=$((n + 1))
        for c in check check-json check-nosteps stats dump dump-jsonl diff-self diff-prev; do
                case $c in
                check) a=(check "$t") ;;
                check-json) a=(check --json "$t") ;;
                check-nosteps) a=(check --without-steps "$t") ;;
                stats) a=(stats "$t") ;;
                dump) a=(dump "$t") ;;
                dump-jsonl) a=(dump --format jsonl "$t") ;;
                diff-self) a=(diff "$t" "$t") ;;
                diff-prev) a=(diff "$prev" "$t") ;;
                esac
                "$ref" "${a[@]}" >"$tmp/ref" 2>&1
                echo "status $?" >>"$tmp/ref"
                "$new" "${a[@]}" >"$tmp/new" 2>&1
                echo "status $?" >>"$tmp/new"
                if ! cmp -s "$tmp/ref" "$tmp/new"; then
                        echo "differs: hvreplay ${a[*]}"
                        fail=$((fail + 1))
                fi
        done
        prev=$t
done
echo "$n traces, $((n * 8)) commands each run by both: $fail differ"
[ "$fail" -eq 0 ]
