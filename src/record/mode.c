// SPDX-License-Identifier: MIT
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <hvtrace/trace.h>

#include "mode.h"

#define REAL_CODE_ATTR (0xb | TRACE_SEG_S | TRACE_SEG_P) /* execute/read, accessed */
#define REAL_DATA_ATTR (0x3 | TRACE_SEG_S | TRACE_SEG_P) /* read/write, accessed */

static void real_seg(struct trace_disk_seg *s, uint16_t attr)
{
        s->selector = 0;
        s->base = 0;
        s->limit = 0xffff;
        s->attr = attr;
}

/* 16-bit real mode, CS = DS = ES = SS = 0, SP just below the image. */
static int setup_real(struct trace_vcpu_state *st, uint64_t entry, uint64_t load_addr, char *why,
                      size_t len)
{
        if (entry > 0xffff) {
                snprintf(why, len,
                         "real mode starts with CS=0: entry 0x%" PRIx64 " must be below 0x10000",
                         entry);
                return -EINVAL;
        }
        for (unsigned i = 0; i < TRACE_SREG_COUNT; i++)
                real_seg(&st->seg[i], i == TRACE_CS ? REAL_CODE_ATTR : REAL_DATA_ATTR);
        st->cr0 &= ~1ull;
        st->rip = entry;
        st->rflags = 0x2; /* IF=0: guests enable interrupts themselves */
        memset(st->gpr, 0, sizeof(st->gpr));
        st->gpr[TRACE_F_RSP] = load_addr <= 0xffff ? load_addr : 0;
        st->idt.base = 0;
        st->idt.limit = 0x3ff;
        return 0;
}

int mode_setup(struct backend *b, unsigned mode, uint64_t entry, uint64_t load_addr, char *why,
               size_t len)
{
        struct trace_vcpu_state st;
        int err;

        err = b->ops->get_state(b, &st);
        if (err) {
                snprintf(why, len, "reading the initial vCPU state: %s", strerror(-err));
                return err;
        }
        switch (mode) {
        case TRACE_MODE_REAL: err = setup_real(&st, entry, load_addr, why, len); break;
        default:
                snprintf(why, len, "mode %s is not supported", trace_mode_name(mode));
                return -ENOTSUP;
        }
        if (err)
                return err;
        err = b->ops->set_state(b, &st);
        if (err)
                snprintf(why, len, "setting the initial vCPU state: %s", strerror(-err));
        return err;
}
