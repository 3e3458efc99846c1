// SPDX-License-Identifier: MIT
/* A statically linked program: hvrec exec must refuse it (no LD_PRELOAD there). */
int main(void)
{
        return 0;
}
