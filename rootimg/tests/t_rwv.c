/*
 * t_rwv — preadv(2), pwritev(2), preadv2(2), pwritev2(2): vectored transfers at an offset that
 * leave the file's offset alone; offset -1 of the *2 forms means the file's offset (and moves
 * it); RWF_APPEND appends, RWF_NOWAIT is EAGAIN on an empty pipe; unknown flags EOPNOTSUPP, a
 * negative offset EINVAL, a pipe ESPIPE, a directory EISDIR, the wrong access mode EBADF.
 * (Raw system calls: the C library may lack the *2 wrappers.)
 */
#include "vktest.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef RWF_HIPRI
#define RWF_HIPRI 0x1
#define RWF_DSYNC 0x2
#define RWF_SYNC 0x4
#define RWF_NOWAIT 0x8
#define RWF_APPEND 0x10
#endif

static long rv(long nr, int fd, const struct iovec *iov, int cnt, long off, int flags)
{
    return syscall(nr, fd, iov, cnt, off, 0L, flags);
}

int main(void)
{
    char path[] = "/tmp/t_rwv.XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    int wo = open(path, O_WRONLY);
    REQUIRE(wo >= 0);
    unlink(path);

    char a[] = "hello ", b[] = "world";
    struct iovec w[2] = { { a, 6 }, { b, 5 } };
    CHECK(rv(SYS_pwritev, fd, w, 2, 10, 0) == 11);
    CHECK(lseek(fd, 0, SEEK_CUR) == 0);
    CHECK(lseek(fd, 0, SEEK_END) == 21);

    char x[4] = { 0 }, y[16] = { 0 };
    struct iovec r[2] = { { x, 3 }, { y, 16 } };
    CHECK(lseek(fd, 2, SEEK_SET) == 2);
    CHECK(rv(SYS_preadv, fd, r, 2, 10, 0) == 11);
    CHECK(memcmp(x, "hel", 3) == 0 && memcmp(y, "lo world", 8) == 0);
    CHECK(lseek(fd, 0, SEEK_CUR) == 2);
    CHECK(rv(SYS_preadv, fd, r, 2, 100, 0) == 0);

    /* Offset -1: the file's offset, which moves. */
    CHECK(lseek(fd, 10, SEEK_SET) == 10);
    memset(x, 0, sizeof x);
    CHECK(rv(SYS_preadv2, fd, r, 1, -1, 0) == 3);
    CHECK(memcmp(x, "hel", 3) == 0);
    CHECK(lseek(fd, 0, SEEK_CUR) == 13);
    struct iovec one = { b, 5 };
    CHECK(rv(SYS_pwritev2, fd, &one, 1, -1, 0) == 5);
    CHECK(lseek(fd, 0, SEEK_CUR) == 18);
    CHECK(rv(SYS_preadv2, fd, r, 2, 0, RWF_HIPRI) == 19);
    CHECK(lseek(fd, 0, SEEK_CUR) == 18);

    /* RWF_APPEND: at the end whatever the offset; the file's offset stays. */
    CHECK(rv(SYS_pwritev2, fd, &one, 1, 0, RWF_APPEND | RWF_DSYNC) == 5);
    CHECK(lseek(fd, 0, SEEK_END) == 26);
    char tail[5];
    CHECK(pread(fd, tail, 5, 21) == 5 && memcmp(tail, "world", 5) == 0);
    CHECK(rv(SYS_pwritev2, fd, &one, 1, 0, RWF_SYNC) == 5);

    /* What is refused. */
    errno = 0;
    CHECK(rv(SYS_preadv2, fd, r, 1, 0, 0x4000) == -1 && errno == EOPNOTSUPP);
    errno = 0;
    CHECK(rv(SYS_pwritev2, fd, &one, 1, 0, 0x4000) == -1 && errno == EOPNOTSUPP);
    errno = 0;
    CHECK(rv(SYS_preadv, fd, r, 1, -5, 0) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(rv(SYS_preadv2, fd, r, 1, -2, 0) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(rv(SYS_pwritev, fd, &one, -1, 0, 0) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(rv(SYS_preadv, 999, r, 1, 0, 0) == -1 && errno == EBADF);
    errno = 0;
    struct iovec bad = { BAD_PTR(8), 4 };
    CHECK(rv(SYS_preadv, fd, &bad, 1, 0, 0) == -1 && errno == EFAULT);

    errno = 0;
    CHECK(rv(SYS_preadv, wo, r, 1, 0, 0) == -1 && errno == EBADF);
    close(wo);
    int dir = open("/tmp", O_RDONLY | O_DIRECTORY);
    REQUIRE(dir >= 0);
    errno = 0;
    CHECK(rv(SYS_preadv, dir, r, 1, 0, 0) == -1 && errno == EISDIR);
    close(dir);

    /* Pipes: no offset (ESPIPE); -1 reads as readv; RWF_NOWAIT does not wait. */
    int p[2];
    REQUIRE(pipe(p) == 0);
    errno = 0;
    CHECK(rv(SYS_preadv, p[0], r, 1, 0, 0) == -1 && errno == ESPIPE);
    errno = 0;
    CHECK(rv(SYS_pwritev2, p[1], &one, 1, 0, 0) == -1 && errno == ESPIPE);
    errno = 0;
    CHECK(rv(SYS_preadv2, p[0], r, 1, -1, RWF_NOWAIT) == -1 && errno == EAGAIN);
    CHECK(rv(SYS_pwritev2, p[1], &one, 1, -1, 0) == 5);
    memset(x, 0, sizeof x);
    CHECK(rv(SYS_preadv2, p[0], r, 1, -1, RWF_NOWAIT) == 3 && memcmp(x, "wor", 3) == 0);
    close(p[0]);
    close(p[1]);

    /* An O_APPEND file: pwritev appends too (pwrite(2) BUGS). */
    int ap = open("/tmp", O_TMPFILE | O_RDWR, 0600);
    REQUIRE(ap >= 0);
    CHECK(write(ap, "0123456789", 10) == 10);
    int apf = fcntl(ap, F_GETFL);
    CHECK(fcntl(ap, F_SETFL, apf | O_APPEND) == 0);
    CHECK(rv(SYS_pwritev, ap, &one, 1, 0, 0) == 5);
    CHECK(lseek(ap, 0, SEEK_END) == 15);
    char head[10];
    CHECK(pread(ap, head, 10, 0) == 10 && memcmp(head, "0123456789", 10) == 0);
    close(ap);
    close(fd);
    return vktest_done();
}
