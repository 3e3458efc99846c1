; isr32.asm - the interrupt stubs of 32-bit C guests, one per vector.
;
; The stub of an interrupt vector (0x20-0xFF) starts with the delivery probe
; `out 0xE2, al`: it must be the handler's first instruction, so that hvrec
; reads the CPU's frame (EIP, CS, EFLAGS) at ESP.  OUT changes no register.
; CPU exceptions (0x00-0x1F) are not interrupts hvrec injects: their stubs
; do not probe.  Every stub then pushes an error code (the CPU's own for the
; exceptions that have one, else 0) and the vector, and jumps to
; hv_isr_common, which saves every general register (PUSHAD), calls
; hv_isr_dispatch(struct hv_frame *) and returns with IRETD.
;
; On this machine's KVM (kvm_pvm) a 32-bit IRET ends the run with an
; emulation failure (docs/backends.md): hvrec exits 3 at hv_isr_iret.
        bits 32

        extern hv_isr_dispatch

%define HAS_ERROR(v) ((v) == 8 || ((v) >= 10 && (v) <= 14) || (v) == 17 || (v) == 21 || (v) == 29 || (v) == 30)

        section .text
        align 16
%assign v 0
%rep 256
        global hv_isr_ %+ v
hv_isr_ %+ v:
%if v >= 0x20
        out 0xE2, al            ; the probe: first instruction
%endif
%if !HAS_ERROR(v)
        push dword 0
%endif
        push dword v
        jmp hv_isr_common
%assign v v + 1
%endrep

        global hv_isr_common, hv_isr_iret
hv_isr_common:
        pushad
        cld
        mov ebx, esp            ; callee-saved: the frame survives the call
        and esp, -16
        sub esp, 12
        push ebx                ; struct hv_frame *
        call hv_isr_dispatch
        mov esp, ebx
        popad
        add esp, 8              ; vector and error code
hv_isr_iret:
        iretd

        section .rodata
        align 4
        global hv_isr_table
hv_isr_table:
%assign v 0
%rep 256
        dd hv_isr_ %+ v
%assign v v + 1
%endrep

        section .note.GNU-stack noalloc noexec nowrite progbits   ; no executable stack
