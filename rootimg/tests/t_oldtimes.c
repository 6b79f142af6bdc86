/*
 * t_oldtimes — the older and newer forms of calls vk first had one form of: utime(2) and
 * utimes(2) (seconds, microseconds; no times is now), futimesat(2) (relative to a directory
 * descriptor; a null path is the descriptor's file; EINVAL for microseconds out of range),
 * fchmodat2(2) (flags; a symbolic link's own mode is EOPNOTSUPP), readahead(2) (0 for a file,
 * EBADF when not open for reading, EINVAL for a pipe or directory).
 */
#include "vktest.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif

int main(void)
{
    char dir[] = "/tmp/t_oldtimes.XXXXXX";
    REQUIRE(mkdtemp(dir) != NULL);
    char path[64], link[64];
    snprintf(path, sizeof path, "%s/f", dir);
    snprintf(link, sizeof link, "%s/l", dir);
    int fd = open(path, O_CREAT | O_RDWR, 0600);
    REQUIRE(fd >= 0);
    struct stat st;

    struct { long actime, modtime; } ub = { 1000, 2000 };
    CHECK(syscall(SYS_utime, path, &ub) == 0);
    CHECK(stat(path, &st) == 0 && st.st_atime == 1000 && st.st_mtime == 2000 && st.st_mtim.tv_nsec == 0);
    struct timeval tv[2] = { { 3000, 5 }, { 4000, 999999 } };
    CHECK(syscall(SYS_utimes, path, tv) == 0);
    CHECK(stat(path, &st) == 0 && st.st_atime == 3000 && st.st_atim.tv_nsec == 5000 && st.st_mtime == 4000 && st.st_mtim.tv_nsec == 999999000);
    time_t before = time(NULL);
    CHECK(syscall(SYS_utimes, path, NULL) == 0);
    CHECK(stat(path, &st) == 0 && st.st_mtime >= before);
    CHECK(syscall(SYS_utime, path, NULL) == 0);

    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    REQUIRE(dfd >= 0);
    tv[0].tv_sec = 5000;
    tv[1].tv_sec = 6000;
    tv[1].tv_usec = 0;
    CHECK(syscall(SYS_futimesat, dfd, "f", tv) == 0);
    CHECK(stat(path, &st) == 0 && st.st_atime == 5000 && st.st_mtime == 6000);
    tv[1].tv_sec = 7000;
    CHECK(syscall(SYS_futimesat, fd, NULL, tv) == 0);
    CHECK(stat(path, &st) == 0 && st.st_mtime == 7000);
    tv[0].tv_usec = 1000000;
    errno = 0;
    CHECK(syscall(SYS_futimesat, dfd, "f", tv) == -1 && errno == EINVAL);
    tv[0].tv_usec = -1;
    errno = 0;
    CHECK(syscall(SYS_utimes, path, tv) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(syscall(SYS_utimes, "/no/such/file", NULL) == -1 && errno == ENOENT);

    CHECK(syscall(SYS_fchmodat2, dfd, "f", 0640, 0) == 0);
    CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0640);
    CHECK(syscall(SYS_fchmodat2, fd, "", 0604, AT_EMPTY_PATH) == 0);
    CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0604);
    REQUIRE(symlink("f", link) == 0);
    CHECK(syscall(SYS_fchmodat2, dfd, "l", 0600, 0) == 0);
    CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0600);
    errno = 0;
    CHECK(syscall(SYS_fchmodat2, dfd, "l", 0644, AT_SYMLINK_NOFOLLOW) == -1 && errno == EOPNOTSUPP);
    errno = 0;
    CHECK(syscall(SYS_fchmodat2, dfd, "f", 0644, 0x8) == -1 && errno == EINVAL);

    CHECK(syscall(SYS_readahead, fd, 0L, 4096L) == 0);
    int wo = open(path, O_WRONLY);
    errno = 0;
    CHECK(syscall(SYS_readahead, wo, 0L, 4096L) == -1 && errno == EBADF);
    errno = 0;
    CHECK(syscall(SYS_readahead, dfd, 0L, 4096L) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(syscall(SYS_readahead, -1, 0L, 4096L) == -1 && errno == EBADF);
    close(wo);
    close(fd);
    close(dfd);
    unlink(link);
    unlink(path);
    rmdir(dir);
    return vktest_done();
}
