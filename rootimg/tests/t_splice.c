/*
 * t_splice — splice(2) and vmsplice(2): a file's bytes at an offset into a pipe (the offset
 * advanced, the file's own untouched), a pipe's bytes into a file at an offset, from a pipe to
 * a pipe; vmsplice of user memory into a pipe, and SPLICE_F_NONBLOCK's EAGAIN on a full one;
 * EINVAL without a pipe, for one pipe at both ends, for a directory and for unknown flags;
 * ESPIPE for a pipe's offset; EBADF for a descriptor open the wrong way or not a pipe.
 */
#include "vktest.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#define SPLICE_F_NONBLOCK_ 2

static long sp(int in, long long *oin, int out, long long *oout, size_t len, unsigned flags)
{
    return syscall(SYS_splice, in, oin, out, oout, len, flags);
}

int main(void)
{
    char path[] = "/tmp/t_splice.XXXXXX", path2[] = "/tmp/t_splice2.XXXXXX";
    int f = mkstemp(path), g = mkstemp(path2);
    REQUIRE(f >= 0 && g >= 0);
    unlink(path);
    unlink(path2);
    REQUIRE(write(f, "hello world", 11) == 11);
    int p[2], q[2];
    REQUIRE(pipe(p) == 0 && pipe(q) == 0);
    char buf[64] = "";

    long long off = 6;
    CHECK(sp(f, &off, p[1], NULL, 5, 0) == 5 && off == 11);
    CHECK(lseek(f, 0, SEEK_CUR) == 11);
    CHECK(read(p[0], buf, sizeof buf) == 5 && memcmp(buf, "world", 5) == 0);
    CHECK(lseek(f, 0, SEEK_SET) == 0);
    CHECK(sp(f, NULL, p[1], NULL, 5, 0) == 5 && lseek(f, 0, SEEK_CUR) == 5);
    CHECK(sp(p[0], NULL, q[1], NULL, 64, 0) == 5);
    long long off2 = 100;
    CHECK(sp(q[0], NULL, g, &off2, 64, 0) == 5 && off2 == 105);
    CHECK(pread(g, buf, 5, 100) == 5 && memcmp(buf, "hello", 5) == 0);
    CHECK(sp(f, &off, p[1], NULL, 0, 0) == 0);

    errno = 0;
    CHECK(sp(f, NULL, g, NULL, 5, 0) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(sp(p[0], NULL, p[1], NULL, 5, 0) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(sp(p[0], &off, g, NULL, 5, 0) == -1 && errno == ESPIPE);
    errno = 0;
    CHECK(sp(f, NULL, p[1], NULL, 5, 0x100) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(sp(p[1], NULL, g, NULL, 5, 0) == -1 && errno == EBADF);
    errno = 0;
    CHECK(sp(99, NULL, p[1], NULL, 5, 0) == -1 && errno == EBADF);
    int d = open("/tmp", O_RDONLY | O_DIRECTORY);
    errno = 0;
    CHECK(sp(d, NULL, p[1], NULL, 5, 0) == -1 && errno == EINVAL);
    close(d);

    struct iovec v = { "xyz", 3 };
    CHECK(syscall(SYS_vmsplice, p[1], &v, 1, 0) == 3);
    CHECK(read(p[0], buf, sizeof buf) == 3 && memcmp(buf, "xyz", 3) == 0);
    errno = 0;
    CHECK(syscall(SYS_vmsplice, f, &v, 1, 0) == -1 && errno == EBADF);
    errno = 0;
    CHECK(syscall(SYS_vmsplice, p[1], &v, 1, 0x100) == -1 && errno == EINVAL);
    /* Fill the pipe, then a non-blocking vmsplice finds no room. */
    int fl = fcntl(p[1], F_GETFL);
    fcntl(p[1], F_SETFL, fl | O_NONBLOCK);
    static char fill[4096];
    while (write(p[1], fill, sizeof fill) > 0)
        ;
    fcntl(p[1], F_SETFL, fl);
    errno = 0;
    CHECK(syscall(SYS_vmsplice, p[1], &v, 1, SPLICE_F_NONBLOCK_) == -1 && errno == EAGAIN);
    return vktest_done();
}
