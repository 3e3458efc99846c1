// SPDX-License-Identifier: MIT
/* A preload library that does nothing: test_exec runs hvrec exec with it in
 * place of libhvtpreload.so where a stand-in plays the library's part. */
int hvt_exec_nop(void);

int hvt_exec_nop(void)
{
        return 0;
}
