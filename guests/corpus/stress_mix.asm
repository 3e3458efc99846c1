; stress_mix: a loop for asynchronous kicks (hvrec --kick) like stress.asm,
; with the harder cases of the corpus in it: mixed sequences of delaying
; instructions (only the first of a sequence is guaranteed to delay), an
; indirect jump and a RET that land right after an STI / MOV SS in memory,
; a software INT into a handler that is not probed and starts with STI, and
; a self-modifying store that turns an STI into a NOP and back every
; iteration.  The ISR counts deliveries; the guest exits with status 0
; after TARGET of them.  Run with --kick 20:0x30.
;
; Shadows: shadowed_mix_sti_movss, shadowed_mix_sti3 (the MOV SS after an
;   STI with IF=0), shadowed_mix_sti_popss (the POP SS after STI),
;   shadowed_mix_movss_popss (the POP SS after MOV SS), shadowed_mix_isr31
;   (after the STI that starts the INT 0x31 handler), shadowed_mix_smc
;   (after the byte the loop toggles between STI and NOP, IF=0: an
;   interrupt can only land there when it was an STI).
; Second: second_mix_sti_movss (after STI;MOV SS), second_mix_movss_sti
;   (after MOV SS;STI, IF=0 before the STI), second_mix_sti3 and
;   second_mix_sti3c (after the second and third of STI;MOV SS;MOV SS),
;   second_mix_sti_popss (after STI;POP SS), second_mix_movss_popss (after
;   MOV SS;POP SS).  POP SS parts: not in 64-bit code.
; No-shadow: noshadow_mix_jmp (JMP reg target after an STI, IF=1),
;   noshadow_mix_ret (RET target after a MOV SS).
; modes: real protected long
%include "corpus.inc"
        CORPUS_HEADER
TARGET  equ 20000

; LOAD_ADDR reg, label   a label's address into a pointer-sized register
%macro LOAD_ADDR 2
%if __BITS__ == 64
        lea %1, [rel %2]
%else
        mov %1, %2
%endif
%endmacro

start:
        CORPUS_START
        CORPUS_SET_VECTOR 0x31, isr31
        mov bx, ss
again:
        ; STI;MOV SS
        cli
        sti
shadowed_mix_sti_movss:
        mov ss, bx
second_mix_sti_movss:
        inc ax
        nop
        ; MOV SS;STI (IF=0 before the STI)
        cli
        mov ss, bx
        sti
second_mix_movss_sti:
        inc cx
        nop
        ; STI;MOV SS;MOV SS
        cli
        sti
shadowed_mix_sti3:
        mov ss, bx
second_mix_sti3:
        mov ss, bx
second_mix_sti3c:
        inc dx
        nop
%if __BITS__ != 64
        ; STI;POP SS
        push ss
        cli
        sti
shadowed_mix_sti_popss:
        pop ss
second_mix_sti_popss:
        inc ax
        nop
        ; MOV SS;POP SS
        push ss
        mov ss, bx
shadowed_mix_movss_popss:
        pop ss
second_mix_movss_popss:
        inc cx
        nop
%endif
        ; JMP reg to the instruction after an STI
        LOAD_ADDR xSI, noshadow_mix_jmp
        jmp xSI
        cli
        sti
noshadow_mix_jmp:
        inc dx
        nop
        ; RET to the instruction after a MOV SS
        CORPUS_PUSH_ADDR noshadow_mix_ret
        ret
        mov ss, bx
noshadow_mix_ret:
        inc ax
        nop
        ; a software interrupt into a handler that is not probed
        int 0x31
        nop
        ; toggle STI <-> NOP, then run it with IF=0
        cli
        xor byte [mix_smc], 0xfb ^ 0x90
        jmp mix_smc
mix_smc:
        sti                     ; or NOP, every other iteration
shadowed_mix_smc:
        inc cx
        sti
        nop

        cmp word [delivered], TARGET
        jb again
        HV_EXIT 0

isr31:
        sti                     ; IF was cleared on entry
shadowed_mix_isr31:
        nop
        HV_IRET
        CORPUS_ISR
