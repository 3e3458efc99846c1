#!/bin/sh
# Regenerate the sample traces in traces/ by recording the bundled guests on
# KVM.  Run from the repository root after a build:  scripts/record-traces.sh [BUILD]
# The expected outputs of the golden tests (tests/golden/) are regenerated too;
# review the diff before committing: a change there is a change in behaviour.
set -eu
build=${1:-build}
rec="$build/hvrec"
g="$build/guests"
[ -x "$rec" ] || { echo "record-traces: build first ($rec missing)" >&2; exit 2; }
[ -r /dev/kvm ] || { echo "record-traces: needs /dev/kvm" >&2; exit 2; }

sym() { # GUEST LABEL: the label's address from the guest's NASM map
        awk -v s="$2" '$3 == s { print "0x" $2 }' "$g/$1.map"
}

record() { # NAME GUEST [hvrec options...]
        name=$1 guest=$2
        shift 2
        rm -f "traces/$name.zst"
        "$rec" run --quiet --seed 1 --timeout 30 -o "traces/$name.zst" "$@" "$g/$guest.bin" >/dev/null || true
        echo "recorded traces/$name.zst"
}

record hello hello
record demo demo
# The checker's sample traces: clean, shadow violations, IF=0 deliveries, and
# a kicked stress run (violations, undetermined deliveries after IRETs).
record movss-sti-window cv_movss_sti_out --irq 0x30@port:0x81 --irq 0x30@port:0x82 \
        --irq 0x30@port:0x84 --irq 0x30@port:0x85
record movss-sti-eager-step cv_movss_sti_out --single-step --inject eager \
        --irq "0x30@rip:$(sym cv_movss_sti_out shadowed_movss)" \
        --irq "0x30@rip:$(sym cv_movss_sti_out shadowed_sti)"
record sti-if-set-eager-step sti_if_set --single-step --inject eager \
        --irq "0x30@rip:$(sym sti_if_set noshadow_sti)"
record not-ready-blind cv_not_ready_in --inject blind
record stress-eager-kick stress --kick 20:0x30 --inject eager --max-exits 6000
# 32- and 64-bit: the same scenario in long mode, protected mode ending at
# kvm_pvm's 32-bit IRET limit, and a guest switching modes itself.
record movss-sti-l64-eager-step cv_movss_sti_out_l64 --mode long --single-step --inject eager \
        --irq "0x30@rip:$(sym cv_movss_sti_out_l64 shadowed_movss)" \
        --irq "0x30@rip:$(sym cv_movss_sti_out_l64 shadowed_sti)"
record sti-hlt-p32-eager-step sti_hlt_p32 --mode protected --single-step --inject eager
record modeswitch-eager-step modeswitch --single-step --inject eager

scripts/update-golden.sh "$build"
