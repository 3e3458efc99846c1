#!/bin/bash
# SPDX-License-Identifier: MIT
# hvrec exec's overhead: QEMU's exit rate on guests/ioloop_tick (a tight
# OUT loop) run bare and under `hvrec exec`, side by side in one run, ROUNDS
# times each, interleaved.  The target (issue 11) is a ratio of 0.90 or more.
#
# The guest writes a byte to QEMU's debug console (isa-debugcon, a file)
# after every TICK OUTs, so each run's exits are the console's length times
# TICK + 1, counted the same way on both sides and from outside QEMU.  (KVM's
# debugfs counters were used first; a host may not let even root read them.)
# Needs /dev/kvm and QEMU; exits 77 without them.
#
# Usage: exec-overhead.sh HVREC BIOS GUEST.bin [SECONDS] [ROUNDS]
set -euo pipefail
hvrec=$1 bios=$2 guest=$3 secs=${4:-3} rounds=${5:-3}
qemu=${HVTRACE_QEMU:-qemu-system-x86_64}
tick=4096 # guests/ioloop_tick.asm's TICK

[ -c /dev/kvm ] && [ -r /dev/kvm ] || { echo "exec-overhead: needs /dev/kvm" >&2; exit 77; }
command -v "$qemu" >/dev/null || { echo "exec-overhead: needs $qemu" >&2; exit 77; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# One run of SECONDS: prints its exit count.  $1: "bare" or "exec".
run() {
        local pid n
        local qargs=(-nodefaults -display none -M pc,kernel_irqchip=off -no-reboot -m 16
                     -accel kvm -bios "$bios"
                     -device isa-debugcon,iobase=0xe9,chardev=con
                     -chardev "file,id=con,path=$tmp/con"
                     -device "loader,file=$guest,addr=0x1000,force-raw=on")
        rm -f "$tmp/con"
        if [ "$1" = exec ]; then
                "$hvrec" exec -o "$tmp/t.zst" -- "$qemu" "${qargs[@]}" 2>/dev/null &
        else
                "$qemu" "${qargs[@]}" 2>/dev/null &
        fi
        pid=$!
        sleep "$secs"
        n=$(stat -c %s "$tmp/con" 2>/dev/null || echo 0)
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        rm -f "$tmp"/t.zst*
        [ "$n" -gt 0 ] || { echo "exec-overhead: the $1 run showed no progress" >&2; exit 1; }
        echo $((n * (tick + 1)))
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
