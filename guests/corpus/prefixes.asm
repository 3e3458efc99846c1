; prefixes: STI and MOV SS with prefixes and unusual encodings (written with
; db where NASM would not produce them).  A prefix changes neither what the
; instruction does to IF and SS nor its shadow; LSS loads SS but makes no
; shadow.
;
; Shadows: shadowed_sti66 (after 66 FB), shadowed_sti2e (after 2E FB),
;   shadowed_movss66 (after 66 8E D0), shadowed_movss2e (after 2E 8E D0),
;   shadowed_movss_px1 (after 44 8E D0, MOV SS with REX.R, in 64-bit code;
;   67 8E D0, an address-size prefix without a memory operand, elsewhere),
;   shadowed_movss_px2 (after 48 8E D0, REX.W, in 64-bit code; 66 2E 8E D0
;   elsewhere), shadowed_movss_mem (after MOV SS, [mem]),
;   shadowed_movss_gsmem (after MOV SS, [GS:mem]).
; No-shadow: noshadow_lss (after LSS, IF=1).
; Default run: an interrupt is raised (port 0x81) with IF=0 before each STI.
; corpus-run: --irq 0x30@port:0x81
; corpus-eager: --irq 0x30@rip:{shadowed_sti66} --irq 0x30@rip:{shadowed_sti2e} --irq 0x30@rip:{shadowed_movss66} --irq 0x30@rip:{shadowed_movss2e} --irq 0x30@rip:{shadowed_movss_px1} --irq 0x30@rip:{shadowed_movss_px2} --irq 0x30@rip:{shadowed_movss_mem} --irq 0x30@rip:{shadowed_movss_gsmem} --irq 0x30@rip:{noshadow_lss}
; modes: real protected long
%include "corpus.inc"
        CORPUS_HEADER
start:
        CORPUS_START
        mov ax, ss
        mov [ss_val], ax

        ; STI with prefixes (IF=0)
        out 0x81, al
        db 0x66, 0xfb           ; o16/o32 STI
shadowed_sti66:
        nop
        nop
        cli
        out 0x81, al
        db 0x2e, 0xfb           ; CS: STI
shadowed_sti2e:
        nop
        nop

        ; MOV SS, AX with prefixes (IF=1)
        sti
        nop
        db 0x66, 0x8e, 0xd0     ; MOV SS, EAX (AX in 32-bit code)
shadowed_movss66:
        nop
        nop
        db 0x2e, 0x8e, 0xd0     ; CS: MOV SS, AX
shadowed_movss2e:
        nop
        nop
%if __BITS__ == 64
        db 0x44, 0x8e, 0xd0     ; REX.R MOV SS, EAX
%else
        db 0x67, 0x8e, 0xd0     ; a32/a16 MOV SS, AX
%endif
shadowed_movss_px1:
        nop
        nop
%if __BITS__ == 64
        db 0x48, 0x8e, 0xd0     ; REX.W MOV SS, RAX
%else
        db 0x66, 0x2e, 0x8e, 0xd0
%endif
shadowed_movss_px2:
        nop
        nop

        ; MOV SS from memory
%if __BITS__ == 64
        mov ss, [rel ss_val]
%else
        mov ss, [ss_val]
%endif
shadowed_movss_mem:
        nop
        nop
%if __BITS__ == 64
        mov ss, [gs:rel ss_val] ; (GS base 0)
%else
        mov ss, [gs:ss_val]     ; (GS: base 0)
%endif
shadowed_movss_gsmem:
        nop
        nop

        ; LSS: loads SS:SP, no shadow
%if __BITS__ == 64
        mov [rel lss_ptr], esp  ; m16:32, as every vendor has it (the stack is below 4 GiB)
        mov [rel lss_ptr + 4], ss
        lss esp, [rel lss_ptr]
%elif __BITS__ == 32
        mov [lss_ptr], esp
        mov [lss_ptr + 4], ss
        lss esp, [lss_ptr]
%else
        mov [lss_ptr], sp
        mov [lss_ptr + 2], ss
        lss sp, [lss_ptr]
%endif
noshadow_lss:
        nop
        nop

        CORPUS_DONE
ss_val: dw 0
lss_ptr:
        times 10 db 0
        CORPUS_ISR
