/*
 * t_prio — getpriority(2) and setpriority(2): the nice value, its range, inheritance by fork,
 * and who may change whose.
 *
 * Covers: the raw system call's 20 - nice encoding (through glibc/musl's wrappers, which turn
 * it back), setting and reading back one's own nice value, clamping to 19, a forked child
 * inheriting it, PRIO_PGRP and PRIO_USER with who 0, EINVAL for an unknown `which`, ESRCH for
 * a process that does not exist; and as an unprivileged user (uid 65534, RLIMIT_NICE 0):
 * raising one's own nice value works, lowering it is EACCES, and another user's process is
 * EPERM. It must run as root.
 *
 * And ioprio_get(2)/ioprio_set(2): the I/O priority's classes and levels, read back,
 * inherited by fork; EINVAL for a bad class, level or `which`, ESRCH for no process; the
 * real-time class and another user's process are EPERM for an unprivileged user.
 */
#include "vktest.h"

#include <limits.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int nice_of(int which, int who)
{
    errno = 0;
    return getpriority(which, who);
}

static void unprivileged(void)
{
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        struct rlimit zero = { 0, 0 };
        CHECK(setrlimit(RLIMIT_NICE, &zero) == 0);
        CHECK(setpriority(PRIO_PROCESS, 0, 5) == 0);
        CHECK(setresgid(65534, 65534, 65534) == 0);
        CHECK(setresuid(65534, 65534, 65534) == 0);
        CHECK(setpriority(PRIO_PROCESS, 0, 10) == 0);
        CHECK(nice_of(PRIO_PROCESS, 0) == 10 && errno == 0);
        errno = 0;
        CHECK(setpriority(PRIO_PROCESS, 0, 2) == -1 && errno == EACCES);
        CHECK(nice_of(PRIO_PROCESS, 0) == 10);
        errno = 0;
        CHECK(setpriority(PRIO_PROCESS, getppid(), 10) == -1 && errno == EPERM);
        vktest_child_done();
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

#define IOPRIO(class, level) (((class) << 13) | (level))
static long ioprio_set(int which, int who, int prio) { return syscall(SYS_ioprio_set, which, who, prio); }
static long ioprio_get(int which, int who) { return syscall(SYS_ioprio_get, which, who); }

static void io_priorities(void)
{
    CHECK(ioprio_set(1, 0, IOPRIO(2, 3)) == 0);
    CHECK(ioprio_get(1, 0) == IOPRIO(2, 3));
    CHECK(ioprio_get(1, getpid()) == IOPRIO(2, 3));
    CHECK(ioprio_set(1, 0, IOPRIO(3, 0)) == 0);
    CHECK(ioprio_get(1, 0) == IOPRIO(3, 0));
    CHECK(ioprio_set(1, 0, IOPRIO(1, 7)) == 0);
    CHECK(ioprio_get(2, 0) >= 0 && ioprio_get(3, 0) >= 0);
    pid_t c = fork();
    if (c == 0)
        _exit(ioprio_get(1, 0) == IOPRIO(1, 7) ? 0 : 1);
    int st;
    CHECK(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    errno = 0;
    CHECK(ioprio_set(1, 0, IOPRIO(0, 1)) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(ioprio_set(1, 0, IOPRIO(5, 0)) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(ioprio_set(9, 0, IOPRIO(2, 0)) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(ioprio_get(0, 0) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(ioprio_get(1, 999999) == -1 && errno == ESRCH);
    CHECK(ioprio_set(1, 0, IOPRIO(2, 4)) == 0);
    c = fork();
    if (c == 0) {
        int bad = 0;
        if (setuid(65534) != 0)
            _exit(90);
        errno = 0;
        bad += !(ioprio_set(1, 0, IOPRIO(1, 0)) == -1 && errno == EPERM);
        bad += ioprio_set(1, 0, IOPRIO(2, 7)) != 0;
        errno = 0;
        bad += !(ioprio_set(1, getppid(), IOPRIO(2, 7)) == -1 && errno == EPERM);
        _exit(bad);
    }
    CHECK(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

int main(void)
{
    int start = nice_of(PRIO_PROCESS, 0);
    CHECK(errno == 0 && start >= -20 && start <= 19);
    /* The raw call answers 20 - nice: 1 to 40, never an error-looking value. */
    long raw = syscall(SYS_getpriority, PRIO_PROCESS, 0);
    CHECKF(raw == 20 - start, "raw %ld, nice %d", raw, start);

    int want = start < 15 ? start + 4 : 19;
    CHECK(setpriority(PRIO_PROCESS, 0, want) == 0);
    CHECK(nice_of(PRIO_PROCESS, 0) == want && errno == 0);
    CHECK(nice_of(PRIO_PROCESS, getpid()) == want);
    CHECK(nice_of(PRIO_PGRP, 0) <= want && errno == 0);
    CHECK(nice_of(PRIO_USER, 0) <= want && errno == 0);

    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        CHECK(nice_of(PRIO_PROCESS, 0) == want);
        vktest_child_done();
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);

    /* Out-of-range values are clamped; root may lower its nice value again. */
    CHECK(setpriority(PRIO_PROCESS, 0, 100) == 0);
    CHECK(nice_of(PRIO_PROCESS, 0) == 19);
    CHECK(setpriority(PRIO_PROCESS, 0, start) == 0);
    CHECK(nice_of(PRIO_PROCESS, 0) == start);

    errno = 0;
    CHECK(getpriority(7, 0) == -1 && errno == EINVAL);
    CHECK(setpriority(7, 0, 0) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(getpriority(PRIO_PROCESS, INT_MAX) == -1 && errno == ESRCH);
    CHECK(setpriority(PRIO_PROCESS, INT_MAX, 0) == -1 && errno == ESRCH);

    unprivileged();
    io_priorities();
    return vktest_done();
}
