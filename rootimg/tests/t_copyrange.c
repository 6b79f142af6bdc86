/*
 * t_copyrange — copy_file_range(2): bytes between two files at given offsets (the offsets
 * advanced, the files' own untouched) and at the files' offsets; a copy shortened at the
 * source's end; the destination's mtime updated; Linux's errors: EINVAL for flags, a negative
 * offset, a pipe, a character device and an overlapping range of one file; EISDIR for a directory;
 * EBADF for a destination open read-only or O_APPEND; EOVERFLOW for a range past 2^64;
 * EFBIG past the largest file size; EXDEV between two file systems (/tmp and /dev/shm).
 */
#include "vktest.h"

#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static long cfr(int in, long long *oin, int out, long long *oout, size_t len, unsigned flags)
{
    return syscall(SYS_copy_file_range, in, oin, out, oout, len, flags);
}

int main(void)
{
    vktest_reset_signals();
    char a[] = "/tmp/t_copyrange.XXXXXX", b[] = "/tmp/t_copyrange2.XXXXXX", s[] = "/dev/shm/t_copyrange.XXXXXX";
    int f = mkstemp(a), g = mkstemp(b), h = mkstemp(s);
    REQUIRE(f >= 0 && g >= 0 && h >= 0);
    unlink(a);
    unlink(s);
    REQUIRE(write(f, "hello world", 11) == 11);
    char buf[64] = "";

    /* Explicit offsets: advanced; the descriptors' offsets unchanged. */
    long long oin = 6, oout = 2;
    CHECK(cfr(f, &oin, g, &oout, 5, 0) == 5 && oin == 11 && oout == 7);
    CHECK(lseek(f, 0, SEEK_CUR) == 11 && lseek(g, 0, SEEK_CUR) == 0);
    CHECK(pread(g, buf, sizeof buf, 0) == 7 && memcmp(buf, "\0\0world", 7) == 0);
    /* The files' offsets: used and advanced; the copy stops at the source's end. */
    CHECK(lseek(f, 0, SEEK_SET) == 0 && lseek(g, 7, SEEK_SET) == 7);
    CHECK(cfr(f, NULL, g, NULL, 1000, 0) == 11);
    CHECK(lseek(f, 0, SEEK_CUR) == 11 && lseek(g, 0, SEEK_CUR) == 18);
    CHECK(cfr(f, NULL, g, NULL, 1000, 0) == 0);
    memset(buf, 0, sizeof buf);
    CHECK(pread(g, buf, sizeof buf, 0) == 18 && memcmp(buf + 7, "hello world", 11) == 0);
    /* The destination's mtime moves. */
    struct stat st0, st1;
    struct timespec old[2] = {{1, 0}, {1, 0}};
    CHECK(futimens(g, old) == 0 && fstat(g, &st0) == 0 && st0.st_mtim.tv_sec == 1);
    oin = 0;
    oout = 0;
    CHECK(cfr(f, &oin, g, &oout, 5, 0) == 5);
    CHECK(fstat(g, &st1) == 0 && st1.st_mtim.tv_sec > 1);
    /* Zero bytes asked: 0. */
    oin = 0;
    CHECK(cfr(f, &oin, g, NULL, 0, 0) == 0);

    /* Errors. */
    oin = 0;
    errno = 0;
    CHECK(cfr(f, &oin, g, NULL, 5, 1) == -1 && errno == EINVAL);
    int p[2];
    REQUIRE(pipe(p) == 0);
    errno = 0;
    CHECK(cfr(f, &oin, p[1], NULL, 5, 0) == -1 && errno == EINVAL);
    int null = open("/dev/null", O_WRONLY);
    errno = 0;
    CHECK(cfr(f, &oin, null, NULL, 5, 0) == -1 && errno == EINVAL);
    int dir = open("/tmp", O_RDONLY | O_DIRECTORY);
    errno = 0;
    CHECK(cfr(f, &oin, dir, NULL, 5, 0) == -1 && errno == EISDIR);
    int ro = open(b, O_RDONLY), ap = open(b, O_WRONLY | O_APPEND);
    REQUIRE(ro >= 0 && ap >= 0);
    errno = 0;
    CHECK(cfr(f, &oin, ro, NULL, 5, 0) == -1 && errno == EBADF);
    errno = 0;
    CHECK(cfr(f, &oin, ap, NULL, 5, 0) == -1 && errno == EBADF);
    errno = 0;
    long long bad = -1;
    errno = 0;
    CHECK(cfr(f, &bad, g, NULL, 5, 0) == -1 && errno == EOVERFLOW);
    bad = -100;
    errno = 0;
    CHECK(cfr(f, &bad, g, NULL, 5, 0) == -1 && errno == EINVAL);
    /* One file: overlapping ranges are refused, disjoint ones copied. */
    long long x = 0, y = 3;
    errno = 0;
    CHECK(cfr(f, &x, f, &y, 5, 0) == -1 && errno == EINVAL);
    x = 0;
    y = 20;
    CHECK(cfr(f, &x, f, &y, 5, 0) == 5);
    long long big = INT64_MAX;
    oin = 0;
    errno = 0;
    CHECK(cfr(f, &oin, g, &big, SIZE_MAX, 0) == -1 && errno == EOVERFLOW);
    big = INT64_MAX;
    errno = 0;
    CHECK(cfr(f, &oin, g, &big, 5, 0) == -1 && errno == EFBIG);
    errno = 0;
    CHECK(cfr(f, &oin, h, NULL, 5, 0) == -1 && errno == EXDEV);
    unlink(b);
    return vktest_done();
}
