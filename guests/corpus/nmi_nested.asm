; nmi_nested: blocking by NMI (Intel SDM Vol. 3A 6.7.1).  After an NMI is
; delivered, further NMIs are blocked until the next IRET, whatever IF
; says.  The handler of the first NMI raises a second one (port 0x82) and
; re-enables nothing: delivered before its IRET, at nested_nmi, it is a
; violation (what --inject eager does); held until the IRET, it lands in
; the main code after it (what the default policy must give).
;
; Blocked: nested_*.
; nmi-run: --nmi port:0x81 --nmi port:0x82
; modes: real protected long
%include "corpus.inc"
        CORPUS_HEADER
start:
        CORPUS_START
%if __BITS__ == 16
        HV_SET_IVT 2, nmi_isr
%else
        HV_SET_IDT_GATE corpus_idt, 2, nmi_isr
%endif
        out 0x81, al            ; the first NMI, after this instruction
        nop
        mov xCX, 60000
.wait:
        cmp word [nmis], 2
        jae .done
        loop .wait
        HV_EXIT 1
.done:  HV_EXIT 0

nmi_isr:
        HV_PROBE
        inc word [nmis]
        cmp word [nmis], 1
        jne nmi_ret
        out 0x82, al            ; the second NMI is raised inside the first's handler
nested_nmi:
        nop
nmi_ret:
        HV_IRET
nmis:
        dw 0
        CORPUS_ISR
