/*
 * t_fdmisc — smaller descriptor and file calls, as Linux answers them:
 *   - tee(2): a copy of one pipe's data into another, left in the first; its refusals;
 *   - O_PATH descriptors name no open file for ioctl, mmap, epoll_ctl and the socket calls
 *     (EBADF); epoll refuses /dev/null and /dev/zero (EPERM: no poll);
 *   - RLIMIT_FSIZE: a write past it raises SIGXFSZ and is EFBIG, one across it is cut short,
 *     truncate past it is EFBIG;
 *   - ustat(2) of the root's device, and EINVAL for a device nothing is mounted from;
 *   - sync_file_range(2): done on a file, its refusals;
 *   - a pipe polls writable while a page's worth is free: full, then read in part, it is
 *     not (edge-triggered epoll reports no EPOLLOUT), emptied it is.
 */
#include "vktest.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#ifndef FIGETBSZ
#define FIGETBSZ _IO(0x00, 2)
#endif

static void test_tee(void)
{
    int a[2], b[2];
    REQUIRE(pipe(a) == 0 && pipe(b) == 0);
    CHECK(write(a[1], "hello world", 11) == 11);
    CHECK(tee(a[0], b[1], 5, 0) == 5);
    char buf[32] = {0};
    CHECK(read(b[0], buf, sizeof buf) == 5 && memcmp(buf, "hello", 5) == 0);
    /* The first pipe still holds it all. */
    CHECK(tee(a[0], b[1], 100, SPLICE_F_NONBLOCK) == 11);
    CHECK(read(a[0], buf, sizeof buf) == 11 && memcmp(buf, "hello world", 11) == 0);
    CHECK(read(b[0], buf, sizeof buf) == 11);
    /* Empty with a writer: EAGAIN when not blocking; with none: 0. */
    errno = 0;
    CHECK(tee(a[0], b[1], 10, SPLICE_F_NONBLOCK) == -1 && errno == EAGAIN);
    close(a[1]);
    CHECK(tee(a[0], b[1], 10, 0) == 0);
    /* Refusals: not pipes, the same pipe, the wrong ends, unknown flags. */
    int fd = open("/tmp/t_fdmisc.tee", O_RDWR | O_CREAT | O_TRUNC, 0644);
    REQUIRE(fd >= 0);
    errno = 0;
    CHECK(tee(fd, b[1], 10, 0) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(tee(b[0], fd, 10, 0) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(tee(b[0], b[1], 10, 0) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(tee(b[1], a[0], 10, 0) == -1 && errno == EBADF);
    errno = 0;
    CHECK(tee(-1, b[1], 10, 0) == -1 && errno == EBADF);
    close(fd);
    unlink("/tmp/t_fdmisc.tee");
    close(a[0]);
    close(b[0]);
    close(b[1]);
}

static void test_opath(void)
{
    int fd = open("/tmp/t_fdmisc.path", O_RDWR | O_CREAT | O_TRUNC, 0644);
    REQUIRE(fd >= 0);
    CHECK(write(fd, "x", 1) == 1);
    close(fd);
    int p = open("/tmp/t_fdmisc.path", O_PATH);
    REQUIRE(p >= 0);
    int arg;
    errno = 0;
    CHECK(ioctl(p, FIGETBSZ, &arg) == -1 && errno == EBADF);
    errno = 0;
    CHECK(mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, p, 0) == MAP_FAILED && errno == EBADF);
    errno = 0;
    CHECK(accept(p, NULL, NULL) == -1 && errno == EBADF);
    errno = 0;
    CHECK(listen(p, 1) == -1 && errno == EBADF);
    int ep = epoll_create1(0);
    REQUIRE(ep >= 0);
    struct epoll_event ev = {.events = EPOLLIN};
    errno = 0;
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, p, &ev) == -1 && errno == EBADF);
    /* A descriptor that is not a socket stays ENOTSOCK. */
    fd = open("/tmp/t_fdmisc.path", O_RDONLY);
    errno = 0;
    CHECK(accept(fd, NULL, NULL) == -1 && errno == ENOTSOCK);
    close(fd);
    /* Devices without poll. */
    int z = open("/dev/zero", O_RDONLY), n = open("/dev/null", O_RDONLY);
    REQUIRE(z >= 0 && n >= 0);
    errno = 0;
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, z, &ev) == -1 && errno == EPERM);
    errno = 0;
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, n, &ev) == -1 && errno == EPERM);
    close(z);
    close(n);
    close(ep);
    close(p);
    unlink("/tmp/t_fdmisc.path");
}

static volatile sig_atomic_t xfsz;
static void on_xfsz(int sig)
{
    (void)sig;
    xfsz++;
}

static void test_fsize(void)
{
    struct rlimit old, lim = {.rlim_cur = 8192, .rlim_max = RLIM_INFINITY};
    REQUIRE(getrlimit(RLIMIT_FSIZE, &old) == 0);
    signal(SIGXFSZ, on_xfsz);
    int fd = open("/tmp/t_fdmisc.fsize", O_RDWR | O_CREAT | O_TRUNC, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    static char buf[6000];
    CHECK(write(fd, buf, sizeof buf) == 6000);
    /* Across the limit: cut short, no signal. */
    CHECK(write(fd, buf, sizeof buf) == 8192 - 6000);
    CHECK(xfsz == 0);
    /* At the limit: SIGXFSZ, EFBIG. */
    errno = 0;
    CHECK(write(fd, buf, 1) == -1 && errno == EFBIG);
    CHECK(xfsz == 1);
    errno = 0;
    CHECK(pwrite(fd, buf, 1, 100000) == -1 && errno == EFBIG);
    CHECK(xfsz == 2);
    /* lseek past it is fine; a write there is not. */
    CHECK(lseek(fd, 20000, SEEK_SET) == 20000);
    errno = 0;
    CHECK(write(fd, buf, 1) == -1 && errno == EFBIG);
    /* truncate: growing past it EFBIG, shrinking fine. */
    errno = 0;
    CHECK(ftruncate(fd, 10000) == -1 && errno == EFBIG);
    errno = 0;
    CHECK(truncate("/tmp/t_fdmisc.fsize", 10000) == -1 && errno == EFBIG);
    CHECK(ftruncate(fd, 100) == 0);
    /* Pipes are not limited. */
    int p[2];
    REQUIRE(pipe(p) == 0);
    CHECK(write(p[1], buf, sizeof buf) == (ssize_t)sizeof buf);
    close(p[0]);
    close(p[1]);
    REQUIRE(setrlimit(RLIMIT_FSIZE, &old) == 0);
    CHECK(write(fd, buf, 1) == 1);
    signal(SIGXFSZ, SIG_DFL);
    close(fd);
    unlink("/tmp/t_fdmisc.fsize");
}

struct kustat {
    int f_tfree;
    unsigned long f_tinode;
    char f_fname[6];
    char f_fpack[6];
};

static void test_ustat(void)
{
    struct stat st;
    REQUIRE(stat("/", &st) == 0);
    struct kustat u;
    memset(&u, 0xff, sizeof u);
    CHECK(syscall(SYS_ustat, (unsigned)st.st_dev, &u) == 0);
    CHECK(u.f_fname[0] == 0 && u.f_fpack[0] == 0);
    errno = 0;
    CHECK(syscall(SYS_ustat, (unsigned)-1, &u) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(syscall(SYS_ustat, (unsigned)st.st_dev, BAD_PTR(-1)) == -1 && errno == EFAULT);
}

static void test_sync_file_range(void)
{
    int fd = open("/tmp/t_fdmisc.sfr", O_RDWR | O_CREAT | O_TRUNC, 0644);
    REQUIRE(fd >= 0);
    CHECK(write(fd, "abc", 3) == 3);
    CHECK(sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                                        SYNC_FILE_RANGE_WAIT_AFTER) == 0);
    CHECK(sync_file_range(fd, 0, 3, SYNC_FILE_RANGE_WRITE) == 0);
    errno = 0;
    CHECK(sync_file_range(-1, 0, 1, SYNC_FILE_RANGE_WRITE) == -1 && errno == EBADF);
    errno = 0;
    CHECK(sync_file_range(fd, -1, 1, SYNC_FILE_RANGE_WRITE) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(sync_file_range(fd, 0, -1, SYNC_FILE_RANGE_WRITE) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(sync_file_range(fd, 0, 1, 8) == -1 && errno == EINVAL);
    int n = open("/dev/null", O_RDWR);
    errno = 0;
    CHECK(sync_file_range(n, 0, 1, SYNC_FILE_RANGE_WAIT_AFTER) == -1 && errno == ESPIPE);
    int p[2];
    REQUIRE(pipe(p) == 0);
    errno = 0;
    CHECK(sync_file_range(p[0], 0, 1, SYNC_FILE_RANGE_WRITE) == -1 && errno == ESPIPE);
    close(p[0]);
    close(p[1]);
    close(n);
    close(fd);
    unlink("/tmp/t_fdmisc.sfr");
}

static void test_pipe_poll(void)
{
    int p[2];
    REQUIRE(pipe2(p, O_NONBLOCK) == 0);
    REQUIRE(fcntl(p[1], F_SETPIPE_SZ, 4096) == 4096);
    static char buf[4096];
    CHECK(write(p[1], buf, sizeof buf) == (ssize_t)sizeof buf);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLET, .data.fd = p[1]};
    REQUIRE(ep >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, p[1], &ev) == 0);
    struct epoll_event out;
    CHECK(epoll_wait(ep, &out, 1, 0) == 0);
    CHECK(read(p[0], buf, 2048) == 2048);
    struct pollfd pfd = {.fd = p[1], .events = POLLOUT};
    CHECK(poll(&pfd, 1, 0) == 0);
    CHECK(epoll_wait(ep, &out, 1, 0) == 0);
    CHECK(read(p[0], buf, 2048) == 2048);
    CHECK(poll(&pfd, 1, 0) == 1 && pfd.revents == POLLOUT);
    CHECK(epoll_wait(ep, &out, 1, 0) == 1 && out.data.fd == p[1]);
    close(ep);
    close(p[0]);
    close(p[1]);
}

int main(void)
{
    vktest_reset_signals();
    test_tee();
    test_opath();
    test_fsize();
    test_ustat();
    test_sync_file_range();
    test_pipe_poll();
    vktest_done();
}
