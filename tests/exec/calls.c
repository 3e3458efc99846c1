// SPDX-License-Identifier: MIT
/*
 * A program test_exec runs directly and under hvrec exec: it makes the
 * calls the preload library interposes, on descriptors that are not KVM's,
 * and prints what each returned, with errno, and which object answered
 * ioctl.  Both runs must print the same results.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/kvm.h>

int main(int argc, char **argv)
{
        int fd = open("/dev/null", O_RDWR);
        void *p, *q;
        Dl_info info;
        int ret;

        errno = 0;
        ret = ioctl(fd, KVM_CREATE_VM, 0);
        printf("ioctl KVM_CREATE_VM on /dev/null: %d errno %d\n", ret, errno);
        errno = 0;
        ret = ioctl(fd, KVM_RUN, 0);
        printf("ioctl KVM_RUN on /dev/null: %d errno %d\n", ret, errno);
        errno = 0;
        ret = ioctl(-1, FIONREAD, &ret);
        printf("ioctl FIONREAD on -1: %d errno %d\n", ret, errno);
        errno = 0;
        p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        printf("mmap anonymous: %s errno %d\n", p == MAP_FAILED ? "failed" : "ok", errno);
        errno = 0;
        q = mmap64(NULL, 4096, PROT_READ, MAP_SHARED, -1, 0);
        printf("mmap64 of fd -1: %s errno %d\n", q == MAP_FAILED ? "failed" : "ok", errno);
        /* Only with an argument: which object's ioctl the program calls. */
        if (argc > 1 && dladdr(dlsym(RTLD_DEFAULT, "ioctl"), &info) && info.dli_fname)
                printf("ioctl from %s\n", strrchr(info.dli_fname, '/')
                                                  ? strrchr(info.dli_fname, '/') + 1
                                                  : info.dli_fname);
        return 0;
}
