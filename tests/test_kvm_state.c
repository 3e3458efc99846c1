// SPDX-License-Identifier: MIT
/*
 * Tests of src/backends/kvm_state.c: the cached conversion of KVM's
 * special registers must give, at every exit, exactly what the plain
 * conversion gives, whatever changed in between.  No /dev/kvm needed:
 * the structs are built here.
 */
#include <stdint.h>
#include <string.h>

#include <criterion/criterion.h>

#include "../src/backends/kvm_state.h"

static uint64_t next(uint64_t *s)
{
        *s ^= *s >> 12;
        *s ^= *s << 25;
        *s ^= *s >> 27;
        return *s * 2685821657736338717ull;
}

static void fill(uint64_t *s, void *p, size_t n)
{
        uint8_t *b = p;

        for (size_t i = 0; i < n; i++)
                b[i] = (uint8_t)next(s);
}

/* The conversion with nothing cached: every field converted from the structs. */
static struct hvt_vcpu_state plain(const struct kvm_regs *r, const struct kvm_sregs *s)
{
        struct kvm_sregs_cache fresh = { 0 };
        struct hvt_vcpu_state st;

        memset(&st, 0, sizeof(st));
        kvm_state_from(&st, r, s, &fresh);
        return st;
}

/* Everything kvm_state_from sets: all of the state but intr. */
static void expect_same(const struct hvt_vcpu_state *got, const struct hvt_vcpu_state *want,
                        unsigned step)
{
        cr_assert_eq(memcmp(got, want, offsetof(struct hvt_vcpu_state, intr)), 0,
                     "step %u: cached conversion differs from the plain one", step);
}

Test(kvm_state, cached_conversion_equals_plain_one_through_random_changes)
{
        uint64_t s = 0x6b766d;
        struct kvm_sregs_cache cache = { 0 };
        struct kvm_regs regs;
        struct kvm_sregs sregs;
        unsigned kept = 0, changed = 0;

        fill(&s, &regs, sizeof(regs));
        fill(&s, &sregs, sizeof(sregs));
        for (unsigned step = 0; step < 20000; step++) {
                struct hvt_vcpu_state got, want;
                unsigned what = (unsigned)(next(&s) % 4);

                if (what == 1) {
                        /* One byte anywhere in the struct, the fields it ignores included. */
                        ((uint8_t *)&sregs)[next(&s) % sizeof(sregs)] ^=
                                (uint8_t)(1u << (next(&s) % 8));
                } else if (what == 2) {
                        fill(&s, &sregs, sizeof(sregs));
                }
                if (next(&s) % 2)
                        fill(&s, &regs, sizeof(regs));
                /* Stale bytes in the destination must not survive either way. */
                fill(&s, &got, sizeof(got));
                kvm_state_from(&got, &regs, &sregs, &cache);
                want = plain(&regs, &sregs);
                expect_same(&got, &want, step);
                if (what == 0 || what == 3)
                        kept++;
                else
                        changed++;
        }
        cr_assert_gt(kept, 5000);
        cr_assert_gt(changed, 5000);
}

Test(kvm_state, each_used_field_changed_alone_is_converted)
{
        uint64_t s = 0x53524547;
        struct kvm_sregs_cache cache = { 0 };
        struct kvm_regs regs;
        struct kvm_sregs sregs;
        struct hvt_vcpu_state got, want;
        struct kvm_segment *segs[] = { &sregs.cs, &sregs.ds, &sregs.es,
                                       &sregs.fs, &sregs.gs, &sregs.ss };
        __u64 *words[] = { &sregs.cr0,  &sregs.cr2,      &sregs.cr3,     &sregs.cr4,
                           &sregs.efer, &sregs.gdt.base, &sregs.idt.base };

        fill(&s, &regs, sizeof(regs));
        fill(&s, &sregs, sizeof(sregs));
        kvm_state_from(&got, &regs, &sregs, &cache);
        for (unsigned i = 0; i < sizeof(segs) / sizeof(segs[0]); i++) {
                segs[i]->selector ^= 8;
                segs[i]->present ^= 1;
                kvm_state_from(&got, &regs, &sregs, &cache);
                want = plain(&regs, &sregs);
                expect_same(&got, &want, i);
        }
        for (unsigned i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
                *words[i] ^= 1ull << 63;
                kvm_state_from(&got, &regs, &sregs, &cache);
                want = plain(&regs, &sregs);
                expect_same(&got, &want, 100 + i);
        }
        sregs.idt.limit ^= 0x8000;
        kvm_state_from(&got, &regs, &sregs, &cache);
        want = plain(&regs, &sregs);
        expect_same(&got, &want, 200);
}
