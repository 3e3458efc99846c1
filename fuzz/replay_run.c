// SPDX-License-Identifier: MIT
/* fz_hvreplay: hvreplay's main(), renamed by the build, called like the tool. */
#include <stdio.h>

#include "fuzz.h"

int hvreplay_main(int argc, char **argv);

int fz_hvreplay(const char *const *args)
{
        char *argv[16];
        int argc = 0;

        argv[argc++] = (char *)"hvreplay";
        while (*args && argc < 15)
                argv[argc++] = (char *)*args++;
        argv[argc] = NULL;
        int status = hvreplay_main(argc, argv);

        fflush(stdout);
        fflush(stderr);
        return status;
}
