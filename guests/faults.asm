; faults: CPU exceptions taken through the guest's own IDT, each handler
; checking its frame: #DE (a fault: the handler skips the DIV), #GP(0x28)
; from loading a selector past hvrec's GDT, and in long mode #PF on a read
; and on an instruction fetch from a page the guest marks not present (CR2,
; error code 0, and the fetch fault's return RIP equal to CR2).
; Exit status: 0 when every handler saw what it should, else the number of
; the check that failed.
; modes: protected long
%include "hvguest.inc"
%ifdef MODE_L64
        bits 64
%define SP_ rsp
%else
        bits 32
%define SP_ esp
%endif
        org 0x1000

NP_PAGE equ 0x70000             ; long mode: the page marked not present
PT      equ 0x80000             ; long mode: a page table for the first 2 MiB

start:
        HV_SET_IDT_GATE idt, 0, de_isr
        HV_SET_IDT_GATE idt, 13, gp_isr
%if __BITS__ == 64
        HV_SET_IDT_GATE idt, 14, pf_isr
%endif
        lidt [idtr]
        xor edx, edx
        mov eax, 5
        xor ecx, ecx
de_here:
        div ecx                 ; #DE: the handler skips the 2 bytes
        cmp byte [seen], 1
        jne fail1
        mov ax, 0x28            ; past hvrec's GDT (limit 0x27)
gp_here:
        mov ds, ax              ; #GP(0x28): the handler skips the 2 bytes
        cmp byte [seen], 2
        jne fail2
%if __BITS__ == 64
        mov rdi, PT             ; 4 KiB identity pages, NP_PAGE not present
        mov eax, 3
        mov ecx, 512
.fill:  mov [rdi], rax
        add rax, 0x1000
        add rdi, 8
        loop .fill
        mov qword [PT + (NP_PAGE >> 12) * 8], 0
        mov rax, cr3            ; hvrec's PML4 -> PDPT -> PD: PD[0] -> PT
        mov rbx, [rax]
        and rbx, ~0xfff
        mov rbx, [rbx]
        and rbx, ~0xfff
        mov qword [rbx], PT | 3
        mov cr3, rax
        mov rbx, NP_PAGE
pf_read:
        mov rax, [rbx]          ; #PF on the read (3 bytes, skipped)
        cmp byte [seen], 3
        jne fail3
pf_fetch:
        jmp rbx                 ; #PF on the fetch: its handler ends the run
%endif
        HV_EXIT 0
fail1:  HV_EXIT 1
fail2:  HV_EXIT 2
fail3:  HV_EXIT 3
fail4:  HV_EXIT 4
fail5:  HV_EXIT 5

de_isr:
        mov byte [seen], 1
        add dword [SP_], 2
        HV_IRET
gp_isr:
        cmp dword [SP_], 0x28   ; the error code: the selector
        jne fail4
        cmp dword [SP_ + __BITS__ / 8], gp_here
        jne fail4
        add SP_, __BITS__ / 8
        add dword [SP_], 2
        mov byte [seen], 2
        HV_IRET
%if __BITS__ == 64
pf_isr:
        mov rax, cr2
        cmp rax, NP_PAGE
        jne fail5
        cmp byte [seen], 3
        je .fetch
        cmp qword [rsp], 0      ; read, not present, supervisor
        jne fail5
        cmp qword [rsp + 8], pf_read
        jne fail5
        add rsp, 8
        add qword [rsp], 3
        mov byte [seen], 3
        iretq
.fetch: cmp qword [rsp + 8], NP_PAGE ; the faulting fetch is the return RIP
        jne fail5
        HV_EXIT 0
%endif

seen:   db 0
        HV_IDT idt, idtr
