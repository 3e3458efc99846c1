; stress_pit: the stress loop driven by the guest's own timer, for a backend
; with its own irqchip and PIT (hvrec run --backend kvm-irqchip or qemu-tcg).
; The PIT fires IRQ0 about every 8 us (divisor 10); the backend alone decides
; where each interrupt lands, so the checker judges the hypervisor's own
; shadow handling.  The ISR counts deliveries; the guest exits 0 after TARGET.
;
; Shadows: shadowed_sti, shadowed_movss, shadowed_popss (not in 64-bit code).
; modes: real protected long
%include "corpus.inc"
        CORPUS_HEADER
TARGET  equ 100000
start:
        CORPUS_START
        PIT_PERIODIC 10
again:
        STRESS_SHADOWS
        cmp dword [ticks], TARGET
        jb again
        cli
        HV_EXIT 0
        CORPUS_TICK_ISR
