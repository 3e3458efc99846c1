#!/bin/bash
# SPDX-License-Identifier: MIT
# hvrec exec's overhead: QEMU's exit rate on guests/ioloop (a tight OUT
# loop) run bare and under `hvrec exec`, side by side in one run, ROUNDS
# times each, interleaved.  The target (issue 11) is a ratio of 0.90 or more.
#
# The exit count of each run is KVM's own, from debugfs
# (/sys/kernel/debug/kvm/PID-FD/exits), read just before the run is stopped,
# so both sides are counted the same way.  Needs /dev/kvm, QEMU and that
# debugfs directory (root); exits 77 without them.  The machine it was
# written on has no /dev/kvm: it has run only in the nested KVM of
# scripts/nested-kvm/run (docs/backends.md), whose rates are TCG's.
#
# Usage: exec-overhead.sh HVREC BIOS GUEST.bin [SECONDS] [ROUNDS]
set -euo pipefail
hvrec=$1 bios=$2 guest=$3 secs=${4:-3} rounds=${5:-3}
qemu=${HVTRACE_QEMU:-qemu-system-x86_64}

[ -c /dev/kvm ] && [ -r /dev/kvm ] || { echo "exec-overhead: needs /dev/kvm" >&2; exit 77; }
command -v "$qemu" >/dev/null || { echo "exec-overhead: needs $qemu" >&2; exit 77; }
[ -d /sys/kernel/debug/kvm ] || {
        echo "exec-overhead: needs KVM's debugfs statistics (/sys/kernel/debug/kvm; root)" >&2
        exit 77
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The VM's exit counter: the debugfs directory of QEMU's pid (hvrec exec execs QEMU itself).
vm_exits() {
        local d
        for d in /sys/kernel/debug/kvm/"$1"-*; do
                [ -r "$d/exits" ] && { cat "$d/exits"; return; }
        done
        echo 0
}

# One run of SECONDS: prints its exit count.  $1: "bare" or "exec".
run() {
        local pid qpid n
        local qargs=(-nodefaults -display none -M pc,kernel_irqchip=off -no-reboot -m 16
                     -accel kvm -bios "$bios"
                     -device "loader,file=$guest,addr=0x1000,force-raw=on")
        if [ "$1" = exec ]; then
                "$hvrec" exec -o "$tmp/t.zst" -- "$qemu" "${qargs[@]}" &
        else
                "$qemu" "${qargs[@]}" &
        fi
        pid=$!
        sleep "$secs"
        # Under hvrec exec, QEMU is hvrec's child.
        qpid=$pid
        [ "$1" = exec ] && qpid=$(pgrep -P "$pid" | head -n1)
        n=$(vm_exits "$qpid")
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        rm -f "$tmp"/t.zst*
        echo "$n"
}

printf '%-6s %14s %14s %8s\n' round "bare exits/s" "exec exits/s" ratio
tb=0 te=0
for r in $(seq 1 "$rounds"); do
        b=$(run bare)
        e=$(run exec)
        tb=$((tb + b)) te=$((te + e))
        awk -v r="$r" -v b="$b" -v e="$e" -v s="$secs" \
            'BEGIN { printf "%-6s %14.0f %14.0f %8.3f\n", r, b / s, e / s, b ? e / b : 0 }'
done
awk -v b="$tb" -v e="$te" -v s="$((secs * rounds))" \
    'BEGIN { printf "%-6s %14.0f %14.0f %8.3f (target 0.90)\n", "all", b / s, e / s, b ? e / b : 0 }'
