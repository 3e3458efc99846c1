#!/bin/sh
# Record the PIT-driven stress guest on the in-kernel irqchip to 100,000
# deliveries in real and long mode (about two minutes on kvm_pvm) into
# traces/, for docs/kvm-irqchip-stress.md.  Usage: scripts/record-stress-irqchip.sh [BUILD]
set -eu
build=${1:-build}
for m in "stress_pit real stress-pit-irqchip-real" "stress_pit_l64 long stress-pit-irqchip-l64"; do
        set -- $m
        rm -f "traces/$3.zst"
        "$build/hvrec" run --quiet --seed 1 --backend kvm-irqchip --mode "$2" --timeout 600 \
                -o "traces/$3.zst" "$build/guests/$1.bin"
        "$build/hvreplay" check --summary "traces/$3.zst"
done
