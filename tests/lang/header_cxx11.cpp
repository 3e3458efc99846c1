// SPDX-License-Identifier: MIT
// The public headers compile as C++11 (built with -std=c++11 -Werror).
#include <hvtrace/format.h>
#include <hvtrace/hvtrace.h>

int hvt_cxx11_sizes();
int hvt_cxx11_sizes()
{
        hvt_event ev;

        ev.type = HVT_REC_EXIT;
        return static_cast<int>(sizeof(hvt_disk_exit) + ev.type);
}
