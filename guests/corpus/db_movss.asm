; db_movss: single-step #DB and the MOV SS / POP SS hold (the scenario
; "single-step #DB with MOV SS blocking" of kvm-unit-tests' x86/debug.c,
; written anew for this corpus).  The guest sets TF with POPF; the trap of
; the instruction after the POPF is held by a MOV SS (POP SS) until the
; instruction after it completes (Intel SDM Vol. 3A 6.8.3, 17.3.1.4), so the
; #DB handler's probe reports the delivery at dbstep_*, never at dbshadow_*.
; STI holds no #DB: its trap lands right after it.  The handler clears TF
; in the frame, so each scenario traps once.
;
; #DB deliveries: dbstep_movss, dbstep_popss (not in 64-bit code),
;   dbstep_sti.  A #DB at dbshadow_movss or dbshadow_popss is a
;   db-movss-shadow violation.  One external interrupt at the end (port
;   0x81, IF=1, no shadow), so that the run has a maskable delivery too.
; corpus-run: --irq 0x30@port:0x81
; corpus-eager: --irq 0x30@port:0x81
; modes: real protected long
%include "corpus.inc"

; Set TF (and keep IF as it is): the instruction after this one traps.
%macro SET_TF 0
        pushf
%if __BITS__ == 16
        push bp
        mov bp, sp
        or word [bp + 2], 0x100
        pop bp
%else
        or word [xSP], 0x100
%endif
        popf
%endmacro

        CORPUS_HEADER
start:
        CORPUS_START
        CORPUS_SET_VECTOR 1, dbisr
        mov bx, ss

        SET_TF
        mov ss, bx
dbshadow_movss:
        nop
dbstep_movss:
        nop

%if __BITS__ != 64
        push ss                 ; POP SS does not exist in 64-bit code
        SET_TF
        pop ss
dbshadow_popss:
        nop
dbstep_popss:
        nop
%endif

        SET_TF                  ; IF=0 here: the STI opens an interrupt shadow
        sti
dbstep_sti:
        nop
        cli

        ; the maskable interrupt, outside any shadow
        sti
        nop
        out 0x81, al
        nop
        nop
        CORPUS_DONE

; The #DB handler: the probe first, then clear TF in the interrupted FLAGS.
dbisr:
        HV_PROBE
%if __BITS__ == 16
        push bp
        mov bp, sp
        and word [bp + 6], 0xfeff
        pop bp
%else
        and word [xSP + 2 * PTRSZ], 0xfeff
%endif
        HV_IRET
        CORPUS_ISR
