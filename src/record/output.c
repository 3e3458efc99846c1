// SPDX-License-Identifier: MIT
/*
 * hvrec's -o rules, shared by `hvrec run` and `hvrec exec`: a trace never
 * replaces or truncates anything, and never goes through a symbolic link.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "output.h"
#include "signals.h"

#define MAX_KEPT 9999 /* FILE.1 .. FILE.9999 */

/* path's directory, opened for the *at() calls, and its last component. */
static int open_parent(const char *path, const char **base)
{
        const char *slash = strrchr(path, '/');
        char dir[PATH_MAX];
        int fd;

        *base = slash ? slash + 1 : path;
        if (!**base || !strcmp(*base, ".") || !strcmp(*base, ".."))
                return -EISDIR;
        if (!slash)
                snprintf(dir, sizeof(dir), ".");
        else if (slash == path)
                snprintf(dir, sizeof(dir), "/");
        else if ((size_t)(slash - path) >= sizeof(dir))
                return -ENAMETOOLONG;
        else
                snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
        fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
}

/*
 * Move the regular file `base` (as fstat'ed in *st) to base.N, the first N
 * that names nothing.  RENAME_NOREPLACE replaces nothing that exists, a
 * link included; if what moved is not the file checked (it was swapped
 * meanwhile), it is moved back and the run refused.
 */
static int keep_old(int dirfd, const char *base, const struct stat *st, struct output *out)
{
        char name[NAME_MAX + 1];
        struct stat moved;

        for (unsigned n = 1; n <= MAX_KEPT; n++) {
                if (snprintf(name, sizeof(name), "%s.%u", base, n) >= (int)sizeof(name))
                        return -ENAMETOOLONG;
                if (renameat2(dirfd, base, dirfd, name, RENAME_NOREPLACE)) {
                        if (errno == EEXIST)
                                continue;
                        /* EINVAL: the filesystem cannot rename without replacing. */
                        return -errno;
                }
                if (fstatat(dirfd, name, &moved, AT_SYMLINK_NOFOLLOW) ||
                    moved.st_dev != st->st_dev || moved.st_ino != st->st_ino) {
                        renameat2(dirfd, name, dirfd, base, RENAME_NOREPLACE);
                        return -EAGAIN;
                }
                snprintf(out->kept, sizeof(out->kept), ".%u", n);
                return 0;
        }
        return -EEXIST;
}

int open_output(const char *path, struct output *out, char *why, size_t len)
{
        const int create = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
        struct stat st, st2;
        const char *base, *what = NULL;
        int dirfd, probe, fd = -1, err;

        out->fd = out->size_fd = -1;
        out->kept[0] = 0;
        if (!strcmp(path, "-")) {
                if (isatty(STDOUT_FILENO)) {
                        snprintf(why, len,
                                 "-o -: stdout is a terminal; redirect it to a file or "
                                 "a pipe");
                        return -ENOTTY;
                }
                /* A copy: fd 1 stays open, so nothing opened later can land on it. */
                out->fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
                if (out->fd < 0) {
                        err = -errno;
                        snprintf(why, len, "-o -: stdout: %s", strerror(errno));
                        return err;
                }
                return 0;
        }

        dirfd = open_parent(path, &base);
        if (dirfd < 0) {
                snprintf(why, len, "cannot create %s: %s", path, strerror(-dirfd));
                return dirfd;
        }
        fd = openat(dirfd, base, create, 0644);
        if (fd >= 0)
                goto regular;
        if (errno != EEXIST) {
                err = -errno;
                goto err_dir;
        }
        probe = openat(dirfd, base, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (probe < 0) {
                err = errno == ENOENT ? -EAGAIN : -errno;
                goto err_dir;
        }
        err = fstat(probe, &st) ? -errno : 0;
        close(probe);
        if (err)
                goto err_dir;
        switch (st.st_mode & S_IFMT) {
        case S_IFREG:
                err = keep_old(dirfd, base, &st, out);
                if (err) {
                        snprintf(why, len, "cannot keep the existing %s: %s%s", path,
                                 err == -EAGAIN ? "it changed while hvrec moved it"
                                                : strerror(-err),
                                 err == -EEXIST ? " (every name up to .9999 is taken)" : "");
                        goto err_quiet;
                }
                fd = openat(dirfd, base, create, 0644);
                if (fd < 0) {
                        /* EEXIST: something took the name in the meantime; it stays. */
                        err = -errno;
                        goto err_dir;
                }
                goto regular;
        case S_IFIFO:
        case S_IFCHR:
                do
                        /* A FIFO waits here for its reader; a stop signal ends the wait. */
                        fd = openat(dirfd, base, O_WRONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
                while (fd < 0 && errno == EINTR && !signals_stop_signo());
                if (fd < 0) {
                        err = -errno;
                        goto err_dir;
                }
                if (fstat(fd, &st2) || st2.st_dev != st.st_dev || st2.st_ino != st.st_ino) {
                        err = -EAGAIN;
                        goto err_dir;
                }
                if (isatty(fd)) {
                        what = "a terminal";
                        err = -ENOTTY;
                        goto err_dir;
                }
                /* A stream: written in order, never renamed, its size unknown. */
                out->fd = fd;
                close(dirfd);
                return 0;
        case S_IFLNK: what = "a symbolic link (hvrec never follows one: name the target)"; break;
        case S_IFDIR: what = "a directory"; break;
        case S_IFBLK: what = "a block device"; break;
        default: what = "not a regular file, FIFO or character device"; break;
        }
        err = -EEXIST;
        goto err_dir;

regular:
        out->fd = fd;
        out->size_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        close(dirfd);
        return 0;

err_dir:
        if (what)
                snprintf(why, len, "refusing -o %s: it is %s", path, what);
        else if (err == -EAGAIN)
                snprintf(why, len, "cannot create %s: it changed while hvrec opened it", path);
        else
                snprintf(why, len, "cannot create %s: %s", path, strerror(-err));
err_quiet:
        if (fd >= 0)
                close(fd);
        close(dirfd);
        return err;
}
