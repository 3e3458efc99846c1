#!/bin/bash
# SPDX-License-Identifier: MIT
# The files of src/record call each other without a cycle: from the
# objects of the hvrecord library and hvrec's main.c, an edge A -> B for
# every symbol A uses that B defines; fails naming a cycle if there is one.
# Usage: record_dag.sh NM OBJECT...
set -euo pipefail
nm=$1
shift
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for o in "$@"; do
        f=$(basename "$o" .o)
        f=${f%.c}
        "$nm" --defined-only -g "$o" | awk -v f="$f" 'NF == 3 { print $3, f }' >>"$tmp/defs"
        "$nm" -u "$o" | awk -v f="$f" '{ print $NF, f }' >>"$tmp/uses"
done
# A -> B: A uses a symbol B defines.
sort -k1,1 "$tmp/defs" >"$tmp/d"
sort -k1,1 "$tmp/uses" >"$tmp/u"
join "$tmp/u" "$tmp/d" | awk '$2 != $3 { print $2, $3 }' | sort -u >"$tmp/edges"
echo "call graph of src/record (caller callee):"
sed 's/^/  /' "$tmp/edges"
if ! tsort "$tmp/edges" >/dev/null 2>"$tmp/err"; then
        echo "record_dag: a call cycle among src/record's files:" >&2
        cat "$tmp/err" >&2
        exit 1
fi
[ -s "$tmp/edges" ] || { echo "record_dag: no edges found (wrong objects?)" >&2; exit 1; }
echo "no cycle"
