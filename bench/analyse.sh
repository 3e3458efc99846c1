#!/bin/sh
# Analysis speed against decompression: hvreplay's commands side by side
# with `zstd -d -c` on the same traces, in one run (docs/performance.md).
#
# Usage: analyse.sh HVREC HVREPLAY IOLOOP_GUEST [EXITS] [BACKEND]
#   EXITS    exits in the I/O-loop trace (default 1000000); a second trace
#            ten times as long measures memory against trace length
#   BACKEND  what records it (default: kvm when /dev/kvm works, else emu)
# The kicked stress trace is the stress guest (beside IOLOOP_GUEST) with
# --kick 20:0x30 --inject eager, EXITS exits long.  Each command runs ROUNDS times (default 3), interleaved with the
# others, and its least CPU time (user + system) is kept: the host is
# shared, and wall time swings more than CPU time does.
set -eu

[ $# -ge 3 ] || { echo "usage: analyse.sh HVREC HVREPLAY IOLOOP_GUEST [EXITS] [BACKEND]" >&2; exit 2; }
hvrec=$1
hvreplay=$2
guest=$3
exits=${4:-1000000}
backend=${5:-}
rounds=${ROUNDS:-3}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hvt-analyse-XXXXXX")
stress=$tmp/stress.zst
trap 'rm -rf "$tmp"' EXIT

if [ -z "$backend" ]; then
        if "$hvrec" run --backend help 2>&1 | grep -A1 '^  kvm ' | grep -q '^ *usable here'; then
                backend=kvm
        else
                backend=emu
        fi
fi
for n in "$exits" $((exits * 10)); do
        "$hvrec" run --backend "$backend" --max-exits "$n" -o "$tmp/io-$n.zst" "$guest" \
                >/dev/null 2>&1 || [ $? -eq 204 ] || { echo "analyse: recording failed" >&2; exit 1; }
done

"$hvrec" run --backend "$backend" --kick 20:0x30 --inject eager --max-exits "$exits" -o "$stress" \
        "$(dirname "$guest")/stress.bin" >/dev/null 2>&1 ||
        [ $? -eq 204 ] || { echo "analyse: recording the stress guest failed" >&2; exit 1; }

# cpu CMD...: "SECONDS KB" (user + system, max RSS) of one run, output discarded.
cpu() {
        /usr/bin/time -f '%U %S %M' -o "$tmp/t" "$@" >/dev/null 2>&1 || true
        # time prefixes a line when the command's status is not 0 (check finding violations)
        tail -n 1 "$tmp/t" | awk '{ printf "%.3f %d\n", $1 + $2, $3 }'
}

measure() { # TRACE: one line per command, best of $rounds
        t=$1
        for r in $(seq "$rounds"); do
                echo "zstd $(cpu zstd -d -c "$t")"
                echo "stats $(cpu "$hvreplay" stats "$t")"
                echo "check $(cpu "$hvreplay" check "$t")"
                echo "dump $(cpu "$hvreplay" dump --format jsonl "$t")"
                echo "diff $(cpu "$hvreplay" diff "$t" "$t")"
        done | awk '{ if (!($1 in best) || $2 < best[$1]) best[$1] = $2;
                      if ($3 > rss[$1]) rss[$1] = $3 }
                    END { for (c in best) print c, best[c], rss[c] }'
}

report() { # NAME TRACE EXITS
        measure "$2" >"$tmp/m"
        z=$(awk '$1 == "zstd" { print $2 }' "$tmp/m")
        echo "$1 ($3 exits, $(stat -c %s "$2") bytes)"
        printf '  %-28s %8s %8s %9s\n' command "cpu s" "x zstd" "max RSS"
        # diff reads the trace twice: its ratio is to two decompressions.
        for c in zstd stats check dump diff; do
                awk -v c="$c" -v z="$z" -v n="$3" '$1 == c {
                        base = z; label = "hvreplay " c
                        if (c == "diff") { base = 2 * z; label = "hvreplay diff (itself)" }
                        if (c == "zstd") label = "zstd -d -c"
                        if (c == "dump") label = "hvreplay dump --format jsonl"
                        ratio = 0; if (base > 0) ratio = $2 / base
                        printf "  %-28s %8.3f %8.1f %7d KB", label, $2, ratio, $3
                        if (c == "dump" && $2 > 0) printf "  %.0f exits/s", n / $2
                        printf "\n" }' "$tmp/m"
        done
}

echo "backend $backend, best of $rounds rounds, CPU time (user + system)"
report "I/O loop" "$tmp/io-$exits.zst" "$exits"
report "I/O loop, 10x" "$tmp/io-$((exits * 10)).zst" $((exits * 10))
report "kicked stress" "$stress" "$("$hvreplay" stats "$stress" | sed -n 's/^Total Samples:\([0-9]*\),.*/\1/p')"
