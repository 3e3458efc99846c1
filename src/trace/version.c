// SPDX-License-Identifier: MIT
/* The library's version, compiled in from the headers it was built with. */
#include <hvtrace/hvtrace.h>

unsigned hvt_version(void)
{
        return HVT_VERSION;
}

const char *hvt_version_string(void)
{
        return HVT_VERSION_STRING;
}
