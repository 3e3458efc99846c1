/* SPDX-License-Identifier: MIT */
/* The host for a trace header (host.c). */
#ifndef HVREC_HOST_H
#define HVREC_HOST_H

#include <stddef.h>

/* The host for a trace header: CPU vendor and model (CPUID), kernel (uname); "unknown" if not. */
void rec_host(char *vendor, size_t vlen, char *model, size_t mlen, char *kernel, size_t klen);

#endif
