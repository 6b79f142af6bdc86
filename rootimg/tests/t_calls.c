/*
 * t_calls — smaller calls glibc, coreutils and the LTP use.
 *
 * Covers: extended attributes on a file system without them (/proc: getxattr, lgetxattr,
 * fgetxattr, setxattr, removexattr answer EOPNOTSUPP, listxattr an empty list; the argument
 * errors first: EINVAL for bad setxattr flags, ERANGE for an empty or too long name, E2BIG for
 * a value past 64 KiB, ENOENT, EBADF); mlock, munlock, mlock2 (EINVAL for unknown flags),
 * mlockall (EINVAL for no or unknown flags), munlockall, ENOMEM for an unmapped range;
 * mincore (pages touched are resident, pages never touched are not, EINVAL for a misaligned
 * address, ENOMEM for an unmapped range); getcpu (a CPU below the online count, node 0);
 * getrlimit/setrlimit (the same limits as prlimit, EINVAL for a soft limit above the hard one,
 * EPERM for a user raising the hard limit; RLIMIT_NPROC's EAGAIN for fork, RLIMIT_AS's ENOMEM for
 * mmap); clock_settime and settimeofday (EINVAL for a bad
 * clock or time, EPERM for a user); lseek's SEEK_DATA and SEEK_HOLE (data at the offset, the
 * hole at the end, ENXIO past it); mmap of /dev/zero (MAP_SHARED shared with a child,
 * MAP_PRIVATE not; EACCES for a shared writable mapping of a read-only descriptor).
 *
 * Usage: t_calls [DIR] — scratch files in DIR (default /tmp).
 */
#include "vktest.h"

#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#ifndef MLOCK_ONFAULT
#define MLOCK_ONFAULT 1
#endif
#ifndef MCL_ONFAULT
#define MCL_ONFAULT 4
#endif

static char dir[256];

static void test_xattr(void)
{
    const char *f = "/proc/self/status";
    char buf[64];
    CHECK(getxattr(f, "user.x", buf, sizeof buf) == -1 && errno == EOPNOTSUPP);
    CHECK(lgetxattr(f, "user.x", buf, sizeof buf) == -1 && errno == EOPNOTSUPP);
    CHECK(listxattr(f, buf, sizeof buf) == 0);
    CHECK(llistxattr(f, NULL, 0) == 0);
    CHECK(setxattr(f, "user.x", "v", 1, 0) == -1 && errno == EOPNOTSUPP);
    CHECK(removexattr(f, "user.x") == -1 && errno == EOPNOTSUPP);
    int fd = open(f, O_RDONLY);
    REQUIRE(fd >= 0);
    CHECK(fgetxattr(fd, "user.x", buf, sizeof buf) == -1 && errno == EOPNOTSUPP);
    CHECK(flistxattr(fd, buf, sizeof buf) == 0);
    CHECK(fsetxattr(fd, "user.x", "v", 1, 0) == -1 && errno == EOPNOTSUPP);
    CHECK(fremovexattr(fd, "user.x") == -1 && errno == EOPNOTSUPP);
    close(fd);
    /* Argument errors come first. */
    CHECK(setxattr(f, "user.x", "v", 1, 4) == -1 && errno == EINVAL);
    CHECK(setxattr(f, "", "v", 1, 0) == -1 && errno == ERANGE);
    char longname[300];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    CHECK(getxattr(f, longname, buf, sizeof buf) == -1 && errno == ERANGE);
    static char big[70000];
    CHECK(setxattr(f, "user.x", big, sizeof big, 0) == -1 && errno == E2BIG);
    CHECK(getxattr("/nonexistent/file", "user.x", buf, sizeof buf) == -1 && errno == ENOENT);
    CHECK(fgetxattr(-1, "user.x", buf, sizeof buf) == -1 && errno == EBADF);
    CHECK(flistxattr(-1, buf, sizeof buf) == -1 && errno == EBADF);
}

static void test_mlock(void)
{
    long page = sysconf(_SC_PAGESIZE);
    char *p = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(p != MAP_FAILED);
    CHECK(mlock(p, 2 * page) == 0);
    CHECK(munlock(p, 2 * page) == 0);
    CHECK(syscall(SYS_mlock2, p, page, 0) == 0);
    CHECK(syscall(SYS_mlock2, p, page, 0x100) == -1 && errno == EINVAL);
    CHECK(munlock(p, page) == 0);
    CHECK(mlockall(0) == -1 && errno == EINVAL);
    CHECK(mlockall(0x100) == -1 && errno == EINVAL);
    CHECK(mlockall(MCL_CURRENT) == 0);
    CHECK(munlockall() == 0);
    CHECK(munmap(p + 2 * page, page) == 0);
    CHECK(mlock(p + page, 2 * page) == -1 && errno == ENOMEM);

    /* mincore: touched pages are resident, untouched anonymous pages are not. */
    char *q = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(q != MAP_FAILED);
    q[0] = 1;
    q[2 * page] = 1;
    unsigned char vec[4] = {9, 9, 9, 9};
    CHECK(mincore(q, 4 * page, vec) == 0);
    CHECKF((vec[0] & 1) && !(vec[1] & 1) && (vec[2] & 1) && !(vec[3] & 1), "vec %d %d %d %d", vec[0], vec[1], vec[2], vec[3]);
    CHECK(mincore(q + 1, page, vec) == -1 && errno == EINVAL);
    CHECK(munmap(q + page, page) == 0);
    CHECK(mincore(q, 4 * page, vec) == -1 && errno == ENOMEM);
    munmap(q, 4 * page);
    munmap(p, 2 * page);
}

/* mmap of /dev/zero: anonymous memory, shared between parent and child with MAP_SHARED. */
static void test_dev_zero(void)
{
    int fd = open("/dev/zero", O_RDWR);
    REQUIRE(fd >= 0);
    int *sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    int *pr = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    REQUIRE(sh != MAP_FAILED && pr != MAP_FAILED);
    CHECK(sh[0] == 0 && pr[0] == 0);
    pid_t pid = fork();
    if (pid == 0) {
        sh[0] = 42;
        pr[0] = 7;
        _exit(0);
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid && st == 0);
    CHECK(sh[0] == 42 && pr[0] == 0);
    close(fd);
    int ro = open("/dev/zero", O_RDONLY);
    CHECK(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, ro, 0) == MAP_FAILED && errno == EACCES);
    close(ro);
    munmap(sh, 4096);
    munmap(pr, 4096);
}

static void test_getcpu(void)
{
    unsigned cpu = 999, node = 999;
    CHECK(syscall(SYS_getcpu, &cpu, &node, NULL) == 0);
    CHECK(cpu < (unsigned)sysconf(_SC_NPROCESSORS_ONLN) && node == 0);
    CHECK(syscall(SYS_getcpu, NULL, NULL, NULL) == 0);
}

static void test_rlimit(void)
{
    struct rlimit r, p;
    CHECK(getrlimit(RLIMIT_NOFILE, &r) == 0);
    CHECK(prlimit(0, RLIMIT_NOFILE, NULL, &p) == 0 && p.rlim_cur == r.rlim_cur && p.rlim_max == r.rlim_max);
    struct rlimit lower = {r.rlim_cur - 1, r.rlim_max};
    CHECK(syscall(SYS_setrlimit, RLIMIT_NOFILE, &lower) == 0);
    CHECK(syscall(SYS_getrlimit, RLIMIT_NOFILE, &p) == 0 && p.rlim_cur == r.rlim_cur - 1);
    struct rlimit bad = {10, 5};
    CHECK(syscall(SYS_setrlimit, RLIMIT_NOFILE, &bad) == -1 && errno == EINVAL);
    CHECK(syscall(SYS_getrlimit, 99, &p) == -1 && errno == EINVAL);
    CHECK(syscall(SYS_setrlimit, RLIMIT_NOFILE, &r) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        vktest_passed = vktest_failed = 0;
        struct rlimit c = {64, 64};
        CHECK(setrlimit(RLIMIT_NOFILE, &c) == 0);
        CHECK(setresuid(65534, 65534, 65534) == 0);
        struct rlimit up = {64, 128};
        CHECK(setrlimit(RLIMIT_NOFILE, &up) == -1 && errno == EPERM);
        vktest_child_done();
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* RLIMIT_NPROC: a user at its limit cannot fork (EAGAIN); RLIMIT_AS: a mapping past it is ENOMEM. */
static void test_enforced_limits(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        vktest_passed = vktest_failed = 0;
        struct rlimit one = {1, 1};
        CHECK(setrlimit(RLIMIT_NPROC, &one) == 0);
        CHECK(setresuid(65534, 65534, 65534) == 0);
        pid_t c = fork();
        if (c == 0)
            _exit(0);
        CHECK(c == -1 && errno == EAGAIN);
        struct rlimit as = {256 << 20, 256 << 20};
        CHECK(setrlimit(RLIMIT_AS, &as) == 0);
        void *big = mmap(NULL, 512 << 20, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        CHECK(big == MAP_FAILED && errno == ENOMEM);
        void *small = mmap(NULL, 1 << 20, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        CHECK(small != MAP_FAILED);
        vktest_child_done();
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void test_settime(void)
{
    struct timespec now;
    CHECK(clock_gettime(CLOCK_REALTIME, &now) == 0);
    CHECK(syscall(SYS_clock_settime, 12345, &now) == -1 && errno == EINVAL);
    CHECK(syscall(SYS_clock_settime, CLOCK_MONOTONIC, &now) == -1 && errno == EINVAL);
    struct timespec bad = {now.tv_sec, 1000000000};
    CHECK(syscall(SYS_clock_settime, CLOCK_REALTIME, &bad) == -1 && errno == EINVAL);
    pid_t pid = fork();
    if (pid == 0) {
        vktest_passed = vktest_failed = 0;
        CHECK(setresuid(65534, 65534, 65534) == 0);
        CHECK(syscall(SYS_clock_settime, CLOCK_REALTIME, &now) == -1 && errno == EPERM);
        struct timeval tv = {now.tv_sec, 0};
        CHECK(syscall(SYS_settimeofday, &tv, NULL) == -1 && errno == EPERM);
        vktest_child_done();
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    struct timeval tvbad = {now.tv_sec, 1000000};
    CHECK(syscall(SYS_settimeofday, &tvbad, NULL) == -1 && errno == EINVAL);
}

static void test_seek_data(void)
{
    char path[300];
    snprintf(path, sizeof path, "%s/t_calls.%d", dir, (int)getpid());
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
    REQUIRE(fd >= 0);
    char buf[1000];
    memset(buf, 'x', sizeof buf);
    CHECK(write(fd, buf, sizeof buf) == (ssize_t)sizeof buf);
    CHECK(lseek(fd, 0, SEEK_DATA) == 0);
    CHECK(lseek(fd, 10, SEEK_DATA) == 10);
    CHECK(lseek(fd, 10, SEEK_HOLE) == 1000);
    CHECK(lseek(fd, 1000, SEEK_DATA) == -1 && errno == ENXIO);
    CHECK(lseek(fd, 2000, SEEK_HOLE) == -1 && errno == ENXIO);
    CHECK(lseek(fd, -1, SEEK_DATA) == -1 && errno == ENXIO);
    close(fd);
    unlink(path);
}

int main(int argc, char **argv)
{
    vktest_reset_signals();
    snprintf(dir, sizeof dir, "%s", argc > 1 ? argv[1] : "/tmp");
    test_xattr();
    test_mlock();
    test_dev_zero();
    test_getcpu();
    test_rlimit();
    test_enforced_limits();
    test_settime();
    test_seek_data();
    vktest_done();
}
