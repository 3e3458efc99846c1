; cf_indirect: control flow the checker must follow.  Each noshadow_ label
; sits right after an STI in memory, but its first visit arrives another
; way with IF=1 (IRET with a hand-built frame, RET, JMP reg, CALL [mem],
; JMP [mem], far JMP, far CALL): no shadow there.  The second visit then
; comes through the STI with IF=0 (a real shadow, but the eager run only
; interrupts a label's first visit).  The reverse: an STI and a MOV SS whose
; neighbour before them in memory is another STI or MOV SS that does not run
; first, reached by JMP reg or RET: shadowed.
; Far transfers: ptr16:16 (real mode) and ptr16:32 to hvrec's code selector
; 0x08 (protected mode); 64-bit code has no direct far JMP/CALL, so it uses
; JMP FAR / CALL FAR [m16:32] to selector 0x18.
;
; Shadows: shadowed_jmpsti (after an STI reached by JMP reg, IF=0),
;   shadowed_movss_jmp, shadowed_movss_ret (after a MOV SS reached by
;   JMP reg / RET, whose predecessor in memory is another MOV SS; the
;   second visit comes through that one: after two SS loads, unguaranteed).
; No-shadow: noshadow_iret, noshadow_ret, noshadow_jmpreg, noshadow_callmem,
;   noshadow_jmpmem, noshadow_farjmp, noshadow_farcall.
; Default run: an interrupt is raised (port 0x81) with IF=0 before each
; second visit's STI.
; corpus-run: --irq 0x30@port:0x81
; corpus-eager: --irq 0x30@rip:{noshadow_iret} --irq 0x30@rip:{noshadow_ret} --irq 0x30@rip:{noshadow_jmpreg} --irq 0x30@rip:{noshadow_callmem} --irq 0x30@rip:{noshadow_jmpmem} --irq 0x30@rip:{noshadow_farjmp} --irq 0x30@rip:{noshadow_farcall} --irq 0x30@rip:{shadowed_jmpsti} --irq 0x30@rip:{shadowed_movss_jmp} --irq 0x30@rip:{shadowed_movss_ret}
; modes: real protected long
%include "corpus.inc"
        CORPUS_HEADER

; LOAD_ADDR reg, label   a label's address into a pointer-sized register
%macro LOAD_ADDR 2
%if __BITS__ == 64
        lea %1, [rel %2]
%else
        mov %1, %2
%endif
%endmacro

; The second visit of a noshadow_ label: through CLI; STI (a shadow).
%macro SECOND_VISIT_STI 0
        cli
        out 0x81, al
        sti
%endmacro

start:
        CORPUS_START

        ; IRET
        mov xCX, 2
        CORPUS_IRET_TO noshadow_iret
iret_again:
        SECOND_VISIT_STI
noshadow_iret:
        nop
        loop iret_again

        ; RET
        mov xCX, 2
        CORPUS_PUSH_ADDR noshadow_ret
        ret
ret_again:
        SECOND_VISIT_STI
noshadow_ret:
        nop
        loop ret_again

        ; JMP reg
        mov xCX, 2
        LOAD_ADDR xBX, noshadow_jmpreg
        jmp xBX
jmpreg_again:
        SECOND_VISIT_STI
noshadow_jmpreg:
        nop
        loop jmpreg_again

        ; CALL [mem] (the target drops the return address by resetting SP)
        mov xDX, xSP
        mov xCX, 2
        call [ptr_callmem]
callmem_again:
        SECOND_VISIT_STI
noshadow_callmem:
        mov xSP, xDX
        loop callmem_again

        ; JMP [mem]
        mov xCX, 2
        jmp [ptr_jmpmem]
jmpmem_again:
        SECOND_VISIT_STI
noshadow_jmpmem:
        nop
        loop jmpmem_again

        ; far JMP
        mov xCX, 2
%if __BITS__ == 64
        jmp far dword [rel far_jmp]
%elif __BITS__ == 32
        jmp 0x08:noshadow_farjmp
%else
        jmp 0:noshadow_farjmp
%endif
farjmp_again:
        SECOND_VISIT_STI
noshadow_farjmp:
        nop
        loop farjmp_again

        ; far CALL (the target drops the return address by resetting SP)
        mov xDX, xSP
        mov xCX, 2
%if __BITS__ == 64
        call far dword [rel far_call]
%elif __BITS__ == 32
        call 0x08:noshadow_farcall
%else
        call 0:noshadow_farcall
%endif
farcall_again:
        SECOND_VISIT_STI
noshadow_farcall:
        mov xSP, xDX
        loop farcall_again

        ; an STI reached by JMP reg with IF=0; the STI before it never runs
        cli
        LOAD_ADDR xBX, jmpsti
        jmp xBX
        sti
jmpsti: sti
shadowed_jmpsti:
        nop
        nop

        ; MOV SS reached by JMP reg, then through the MOV SS before it
        mov xCX, 2
        mov ax, ss
        LOAD_ADDR xBX, movss_jmp
        jmp xBX
movss_jmp_again:
        mov ss, ax
movss_jmp:
        mov ss, ax
shadowed_movss_jmp:
        nop
        loop movss_jmp_again

        ; MOV SS reached by RET, then through the MOV SS before it
        mov xCX, 2
        CORPUS_PUSH_ADDR movss_ret
        mov ax, ss
        ret
movss_ret_again:
        mov ss, ax
movss_ret:
        mov ss, ax
shadowed_movss_ret:
        nop
        loop movss_ret_again

        CORPUS_DONE

ptr_callmem:
        DPTR noshadow_callmem
ptr_jmpmem:
        DPTR noshadow_jmpmem
%if __BITS__ == 64
far_jmp:
        dd noshadow_farjmp
        dw 0x18
far_call:
        dd noshadow_farcall
        dw 0x18
%endif
        CORPUS_ISR
