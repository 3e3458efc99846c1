// SPDX-License-Identifier: MIT
/*
 * KVM with its in-kernel irqchip (KVM_CREATE_IRQCHIP: PIC, IOAPIC, LAPIC)
 * and PIT.  hvrec no longer decides when an interrupt is injected: it
 * raises an interrupt line on the PIC and KVM injects the vector when the
 * guest can take it, so this backend tests the hypervisor's own shadow
 * handling.  The guest programs the PIC (and, for a timer, the PIT) itself.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "kvm.h"

extern const struct backend_ops kvm_irqchip_backend_ops;

static int irqchip_probe(char *why, size_t len)
{
        int err = kvm_probe(why, len);

        if (err)
                return err;
        snprintf(why, len, "%s, in-kernel irqchip and PIT", kvm_flavour());
        return 0;
}

static int irqchip_create(const struct backend_config *cfg, struct backend **out, char *why,
                          size_t len)
{
        static const struct kvm_vm_options opt = { .irqchip = true, .pit = true };

        return kvm_vm_create(cfg, &kvm_irqchip_backend_ops, &opt, out, why, len);
}

static void irqchip_version(struct backend *b, char *buf, size_t len)
{
        snprintf(buf, len, "KVM API %d, %s, in-kernel irqchip (PIC, IOAPIC, LAPIC) and PIT",
                 to_kvm(b)->api_version, kvm_flavour());
}

/* The PIC input that the guest's programming maps to `vector`, or -1. */
static int pic_line(struct kvm_backend *k, uint8_t vector)
{
        for (int chip = KVM_IRQCHIP_PIC_MASTER; chip <= KVM_IRQCHIP_PIC_SLAVE; chip++) {
                struct kvm_irqchip c = { .chip_id = (uint32_t)chip };
                uint8_t base;

                if (ioctl(k->vm_fd, KVM_GET_IRQCHIP, &c))
                        return -1;
                base = c.chip.pic.irq_base;
                if (vector >= base && vector < base + 8)
                        return chip * 8 + (vector - base);
        }
        return -1;
}

/*
 * Edge-triggered: high, then low.  KVM's PIC latches it in IRR and the vCPU
 * takes it when IF and the shadow allow.
 */
static int irqchip_raise_line(struct backend *b, uint8_t vector)
{
        struct kvm_backend *k = to_kvm(b);
        struct kvm_irq_level lvl;
        int line = pic_line(k, vector);

        if (line < 0)
                return -ENXIO; /* the guest's PIC maps no line to this vector */
        lvl.irq = (uint32_t)line;
        lvl.level = 1;
        if (ioctl(k->vm_fd, KVM_IRQ_LINE, &lvl))
                return -errno;
        lvl.level = 0;
        if (ioctl(k->vm_fd, KVM_IRQ_LINE, &lvl))
                return -errno;
        return 0;
}

const struct backend_ops kvm_irqchip_backend_ops = {
        .name = "kvm-irqchip",
        .summary = "Linux KVM, in-kernel PIC/IOAPIC/LAPIC and PIT: KVM decides when to inject",
        /*
         * Neither HVT_CAP_IO_EXITS nor HVT_CAP_HLT_EXITS: the in-kernel
         * PIC and PIT answer their ports, and HLT waits in the kernel.
         */
        .caps = HVT_CAP_SINGLE_STEP | HVT_CAP_REPORT_SHADOW | HVT_CAP_IRQCHIP | HVT_CAP_KICK,
        .probe = irqchip_probe,
        .create = irqchip_create,
        .destroy = kvm_destroy,
        .version = irqchip_version,
        .get_state = kvm_get_state,
        .set_state = kvm_set_state,
        .run = kvm_run_vcpu,
        /* No inject or request_window: KVM injects and opens the window itself. */
        .raise_line = irqchip_raise_line,
        .set_single_step = kvm_set_single_step,
        .kick = kvm_kick,
        .set_breakpoint = kvm_set_breakpoint,
};
