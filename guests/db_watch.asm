; db_watch: data breakpoints (DR0, DR7) in the guest, and the MOV SS hold.
; DR0 watches a word for reads and writes.  A plain read traps right after
; the reading instruction (at dbwatch_plain); the read of MOV SS is held
; until the instruction after it completes (Intel SDM Vol. 3A 6.8.3), so
; that #DB lands at dbwatch_held, never at dbwatch_shadow.  The #DB
; handler starts with the delivery probe and counts; the exit status is the
; number of #DB taken (2 where the CPU honours DR7).  Not in the shadow
; corpus: emu (Unicorn) ignores DR7 and takes none (docs/backends.md).
%include "hvguest.inc"
        bits 16
        org 0x1000

start:
        cli
        xor ax, ax
        mov ds, ax
        mov ss, ax
        mov sp, 0x1000
        HV_SET_IVT 1, dbisr
        mov eax, watched
        mov dr0, eax
        mov eax, 0x000f0001     ; L0; RW0 = 11 (reads and writes), LEN0 = 11 (4 bytes)
        mov dr7, eax

        mov ax, [watched]
dbwatch_plain:
        nop
        mov ss, [watched]
dbwatch_shadow:
        nop
dbwatch_held:
        nop

        xor eax, eax
        mov dr7, eax
        mov al, [taken]
        out HV_PORT_EXIT, al

dbisr:
        HV_PROBE
        inc byte [taken]
        iret

taken:  db 0
        align 4
watched:
        dd 0
