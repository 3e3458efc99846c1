; mmio: reads and writes guest-physical memory above RAM (an MMIO exit each)
; and reads an unassigned port; both read all-ones.  Exit status: 0 when
; both reads saw all-ones, else 1.
%include "hvguest.inc"
        bits 16
        org 0x1000
start:
        mov ax, 0xFFFF          ; FFFF:0020 = 0x100010, just above 1 MiB of RAM
        mov es, ax
mmio_write:
        mov byte [es:0x20], 0x5a
mmio_read:
        mov bl, [es:0x20]
        in al, 0x70
        and al, bl
        cmp al, 0xff
        jne bad
        HV_EXIT 0
bad:    HV_EXIT 1
