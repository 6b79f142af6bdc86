/*
 * t_affinity — sched_setaffinity(2), sched_getaffinity(2) and sched_getcpu(3).
 *
 * The mask covers the online CPUs; a thread pinned to one CPU runs there (getcpu agrees, also
 * after yields), masks are inherited by fork, set for another process by pid, refused when
 * empty or naming only CPUs that do not exist (EINVAL), for another user's process (EPERM),
 * for a pid nobody has (ESRCH) and for bad buffers (EINVAL, EFAULT).
 */
#define _GNU_SOURCE
#include "vktest.h"

#include <sched.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static long raw_getaffinity(pid_t pid, size_t len, void *mask)
{
    return syscall(SYS_sched_getaffinity, pid, len, mask);
}

static long raw_setaffinity(pid_t pid, size_t len, const void *mask)
{
    return syscall(SYS_sched_setaffinity, pid, len, mask);
}

static int only_cpu(const cpu_set_t *s)
{
    return CPU_COUNT(s) == 1 ? (int)__builtin_ctzll(((const unsigned long long *)s)[0]) : -1;
}

int main(void)
{
    vktest_reset_signals();
    cpu_set_t all;
    CPU_ZERO(&all);
    long n = raw_getaffinity(0, sizeof all, &all);
    /* The kernel's mask size: whole longs (vk: one, for up to 64 CPUs). */
    CHECKF(n >= 8 && n % 8 == 0 && n <= (long)sizeof all, "sched_getaffinity returned %ld", n);
    int ncpus = CPU_COUNT(&all);
    CHECK(ncpus >= 1);

    /* Buffer checks. */
    unsigned long long m8;
    errno = 0;
    CHECK(raw_getaffinity(0, 4, &m8) == -1 && errno == EINVAL);
    CHECK(raw_getaffinity(0, 0, &m8) == -1 && errno == EINVAL);
    CHECK(raw_getaffinity(0, 8, BAD_PTR(8)) == -1 && errno == EFAULT);
    CHECK(raw_setaffinity(0, 8, BAD_PTR(8)) == -1 && errno == EFAULT);
    m8 = 0;
    CHECK(raw_setaffinity(0, 8, &m8) == -1 && errno == EINVAL);
    m8 = 1ULL << 63; /* no such CPU */
    CHECK(raw_setaffinity(0, 8, &m8) == -1 && errno == EINVAL);

    /* Pinned to each CPU in turn: it runs there. */
    for (int c = 0; c < CPU_SETSIZE; c++) {
        if (!CPU_ISSET(c, &all))
            continue;
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(c, &one);
        CHECK(sched_setaffinity(0, sizeof one, &one) == 0);
        int stayed = 1;
        for (int i = 0; i < 50; i++) {
            if (sched_getcpu() != c)
                stayed = 0;
            sched_yield();
        }
        CHECKF(stayed, "pinned to cpu %d, ran on %d", c, sched_getcpu());
        cpu_set_t got;
        CPU_ZERO(&got);
        CHECK(sched_getaffinity(0, sizeof got, &got) == 0 && only_cpu(&got) == c);
        unsigned cpu = 99, node = 99;
        CHECK(syscall(SYS_getcpu, &cpu, &node, NULL) == 0 && cpu == (unsigned)c && node == 0);
    }

    /* A mask with more bits than CPUs keeps those that exist; a short one is zero-extended. */
    unsigned long long wide[16];
    memset(wide, 0xff, sizeof wide);
    CHECK(raw_setaffinity(0, sizeof wide, wide) == 0);
    cpu_set_t got;
    CPU_ZERO(&got);
    CHECK(sched_getaffinity(0, sizeof got, &got) == 0 && CPU_EQUAL(&got, &all));
    unsigned char low = 1;
    int first = -1;
    for (int c = 0; c < 8 && first < 0; c++)
        if (CPU_ISSET(c, &all))
            first = c;
    if (first >= 0) {
        low = (unsigned char)(1u << first);
        CHECK(raw_setaffinity(0, 1, &low) == 0);
        CPU_ZERO(&got);
        CHECK(sched_getaffinity(0, sizeof got, &got) == 0 && only_cpu(&got) == first);
    }

    /* fork keeps the mask; a parent sets its child's. */
    int last = -1;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &all))
            last = c;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(last, &one);
    CHECK(sched_setaffinity(0, sizeof one, &one) == 0);
    int pfd[2], qfd[2];
    REQUIRE(pipe(pfd) == 0 && pipe(qfd) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        cpu_set_t s;
        CPU_ZERO(&s);
        CHECK(sched_getaffinity(0, sizeof s, &s) == 0 && only_cpu(&s) == last);
        CHECK(sched_getcpu() == last);
        char b = 0;
        CHECK(write(pfd[1], &b, 1) == 1);
        CHECK(read(qfd[0], &b, 1) == 1); /* the parent has set our mask */
        CPU_ZERO(&s);
        CHECK(sched_getaffinity(0, sizeof s, &s) == 0 && only_cpu(&s) == b);
        sched_yield();
        CHECK(sched_getcpu() == b);
        vktest_child_done();
    }
    char b;
    CHECK(read(pfd[0], &b, 1) == 1);
    CPU_ZERO(&got);
    CHECK(sched_getaffinity(pid, sizeof got, &got) == 0 && only_cpu(&got) == last);
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    CHECK(sched_setaffinity(pid, sizeof one, &one) == 0);
    b = (char)first;
    CHECK(write(qfd[1], &b, 1) == 1);
    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);

    /* ESRCH for a pid nobody has; EPERM for another user's process. */
    pid_t gone = fork();
    if (gone == 0)
        _exit(0);
    waitpid(gone, NULL, 0);
    errno = 0;
    CHECK(sched_getaffinity(gone, sizeof got, &got) == -1 && errno == ESRCH);
    CHECK(sched_setaffinity(gone, sizeof all, &all) == -1 && errno == ESRCH);
    pid_t me = getpid();
    pid = fork();
    if (pid == 0) {
        if (setgid(65534) != 0 || setuid(65534) != 0)
            _exit(100);
        errno = 0;
        CHECK(sched_setaffinity(me, sizeof all, &all) == -1 && errno == EPERM);
        cpu_set_t s;
        CHECK(sched_getaffinity(me, sizeof s, &s) == 0); /* reading is allowed */
        vktest_child_done();
    }
    CHECK(waitpid(pid, &st, 0) == pid);
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);

    CHECK(sched_setaffinity(0, sizeof all, &all) == 0);
    vktest_done();
}
