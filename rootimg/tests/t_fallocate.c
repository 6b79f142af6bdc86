/*
 * t_fallocate — fallocate(2) and posix_fallocate(3) on a file in a scratch directory under
 * /tmp (tmpfs under vk; the host's file system natively): mode 0 allocates zeroed blocks and
 * grows the size; FALLOC_FL_KEEP_SIZE allocates without growing it; FALLOC_FL_PUNCH_HOLE |
 * FALLOC_FL_KEEP_SIZE frees whole blocks and zeroes partial ones, reading back zeros, size
 * unchanged; PUNCH_HOLE without KEEP_SIZE and unknown modes are EOPNOTSUPP; a zero or
 * negative length and a negative offset EINVAL; offset + length past the largest file EFBIG;
 * a descriptor not open for writing (and a bad one) EBADF; a pipe's write end ESPIPE; a
 * character device and a socket ENODEV. posix_fallocate returns the error number.
 */
#include "vktest.h"

#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#ifndef FALLOC_FL_KEEP_SIZE
#define FALLOC_FL_KEEP_SIZE 0x01
#endif
#ifndef FALLOC_FL_PUNCH_HOLE
#define FALLOC_FL_PUNCH_HOLE 0x02
#endif
#ifndef FALLOC_FL_COLLAPSE_RANGE
#define FALLOC_FL_COLLAPSE_RANGE 0x08
#endif

static int fall(int fd, int mode, long long off, long long len)
{
    return (int)syscall(SYS_fallocate, fd, mode, off, len);
}

static long long blocks_of(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 ? (long long)st.st_blocks * 512 : -1;
}

static long long size_of(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 ? (long long)st.st_size : -1;
}

/* Whether bytes [off, off + len) of fd are all `c`. */
static int all_are(int fd, long long off, size_t len, int c)
{
    static char buf[1 << 17];
    if (len > sizeof buf || pread(fd, buf, len, off) != (ssize_t)len)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (buf[i] != (char)c)
            return 0;
    return 1;
}

int main(void)
{
    vktest_reset_signals();
    char dir[] = "/tmp/vkfa.XXXXXX";
    REQUIRE(mkdtemp(dir) != NULL);
    char path[64];
    snprintf(path, sizeof path, "%s/f", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    REQUIRE(fd >= 0);

    /* Mode 0: blocks and size. */
    CHECK(fall(fd, 0, 0, 65536) == 0);
    CHECK(size_of(fd) == 65536);
    CHECK(blocks_of(fd) >= 65536);
    CHECK(all_are(fd, 0, 65536, 0));
    /* Inside what is there already: nothing changes. */
    CHECK(fall(fd, 0, 4096, 100) == 0 && size_of(fd) == 65536);
    /* Growing from an offset. */
    CHECK(fall(fd, 0, 65536, 65536) == 0 && size_of(fd) == 131072);

    /* KEEP_SIZE past the end: the size stays. */
    CHECK(fall(fd, FALLOC_FL_KEEP_SIZE, 131072, 65536) == 0);
    CHECK(size_of(fd) == 131072);

    /* Punch whole blocks: zeros, fewer blocks, same size. */
    static char xs[65536];
    memset(xs, 'x', sizeof xs);
    CHECK(pwrite(fd, xs, sizeof xs, 0) == (ssize_t)sizeof xs);
    long long before = blocks_of(fd);
    CHECK(fall(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 16384, 32768) == 0);
    CHECK(size_of(fd) == 131072);
    CHECK(all_are(fd, 16384, 32768, 0));
    CHECK(all_are(fd, 0, 16384, 'x') && all_are(fd, 49152, 16384, 'x'));
    CHECKF(blocks_of(fd) <= before - 32768, "blocks %lld before %lld", blocks_of(fd), before);
    /* A partial punch inside one block zeroes just that range. */
    CHECK(fall(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 100, 200) == 0);
    CHECK(all_are(fd, 0, 100, 'x') && all_are(fd, 100, 200, 0) && all_are(fd, 300, 16084, 'x'));
    /* Punching past the end leaves the size. */
    CHECK(fall(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 120000, 100000) == 0);
    CHECK(size_of(fd) == 131072 && all_are(fd, 120000, 11072, 0));
    /* Writing into a punched hole works. */
    CHECK(pwrite(fd, "hi", 2, 20000) == 2 && all_are(fd, 20000, 1, 'h'));

    /* Modes and arguments. */
    errno = 0;
    CHECK(fall(fd, FALLOC_FL_PUNCH_HOLE, 0, 4096) == -1 && errno == EOPNOTSUPP);
    CHECK(fall(fd, 0x100, 0, 4096) == -1 && errno == EOPNOTSUPP);
    CHECK(fall(fd, FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_KEEP_SIZE, 0, 4096) == -1 && errno == EOPNOTSUPP);
    CHECK(fall(fd, 0, 0, 0) == -1 && errno == EINVAL);
    CHECK(fall(fd, 0, 0, -1) == -1 && errno == EINVAL);
    CHECK(fall(fd, 0, -1, 4096) == -1 && errno == EINVAL);
    CHECK(fall(fd, 0, LLONG_MAX - 10, 100) == -1 && errno == EFBIG);
    CHECK(fall(-1, 0, 0, 4096) == -1 && errno == EBADF);
    int ro = open(path, O_RDONLY);
    CHECK(ro >= 0 && fall(ro, 0, 0, 4096) == -1 && errno == EBADF);
    close(ro);
    int p[2];
    REQUIRE(pipe(p) == 0);
    CHECK(fall(p[1], 0, 0, 4096) == -1 && errno == ESPIPE);
    CHECK(fall(p[0], 0, 0, 4096) == -1 && errno == EBADF);
    close(p[0]);
    close(p[1]);
    int null = open("/dev/null", O_WRONLY);
    CHECK(null >= 0 && fall(null, 0, 0, 4096) == -1 && errno == ENODEV);
    close(null);
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CHECK(fall(sv[0], 0, 0, 4096) == -1 && errno == ENODEV);
    close(sv[0]);
    close(sv[1]);

    /* posix_fallocate: the error number comes back, errno is left alone. */
    CHECK(posix_fallocate(fd, 0, 200000) == 0 && size_of(fd) == 200000);
    CHECK(posix_fallocate(fd, 0, 0) == EINVAL);
    CHECK(posix_fallocate(-1, 0, 4096) == EBADF);
    close(fd);

    CHECK(unlink(path) == 0);
    CHECK(rmdir(dir) == 0);
    return vktest_done();
}
