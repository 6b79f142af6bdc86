/*
 * t_sched — the scheduling-policy calls: priority ranges per policy; SCHED_OTHER by default;
 * sched_setscheduler/sched_setparam/sched_getparam/sched_getscheduler with their argument
 * checks; real-time policies need privilege (EPERM without); fork inherits the policy and
 * SCHED_RESET_ON_FORK resets it; sched_setattr/sched_getattr (SCHED_DEADLINE's parameters,
 * sizes, E2BIG); sched_rr_get_interval. (Raw system calls: musl's sched_setscheduler and
 * kin are ENOSYS stubs on purpose, and it has no *attr wrappers.) And time sharing: threads
 * that make system calls in a loop on every CPU, twice over, do not keep a sleeper that
 * wakes, or a child, off the CPUs for good; two threads making system calls in a loop both
 * get on (vk may have them take turns on one CPU: sched_huddle); two threads that compute
 * run on two CPUs at once.
 */
#include "vktest.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SCHED_RESET_ON_FORK
#define SCHED_RESET_ON_FORK 0x40000000
#endif
#ifndef SCHED_BATCH
#define SCHED_BATCH 3
#endif
#ifndef SCHED_IDLE
#define SCHED_IDLE 5
#endif
#define SCHED_DEADLINE 6

struct attr {
    uint32_t size, policy;
    uint64_t flags;
    int32_t nice;
    uint32_t priority;
    uint64_t runtime, deadline, period;
    uint32_t util_min, util_max;
};

#define sched_setscheduler(pid, pol, sp) syscall(SYS_sched_setscheduler, pid, pol, sp)
#define sched_getscheduler(pid) syscall(SYS_sched_getscheduler, pid)
#define sched_setparam(pid, sp) syscall(SYS_sched_setparam, pid, sp)
#define sched_getparam(pid, sp) syscall(SYS_sched_getparam, pid, sp)

static long setattr(pid_t pid, struct attr *a, unsigned flags) { return syscall(SYS_sched_setattr, pid, a, flags); }
static long getattr(pid_t pid, struct attr *a, unsigned size, unsigned flags) { return syscall(SYS_sched_getattr, pid, a, size, flags); }

/* In a child: what an unprivileged process may do. */
static int unprivileged(void)
{
    struct sched_param sp = { .sched_priority = 10 };
    if (geteuid() == 0 && setuid(65534) != 0)
        return 90;
    int bad = 0;
    errno = 0;
    bad += !(sched_setscheduler(0, SCHED_FIFO, &sp) == -1 && errno == EPERM);
    sp.sched_priority = 0;
    bad += sched_setscheduler(0, SCHED_BATCH, &sp) != 0;
    bad += sched_getscheduler(0) != SCHED_BATCH;
    bad += sched_setscheduler(0, SCHED_IDLE, &sp) != 0;
    errno = 0;
    bad += !(sched_setscheduler(1, SCHED_OTHER, &sp) == -1 && (errno == EPERM || errno == ESRCH));
    struct attr a = { .size = sizeof a, .policy = SCHED_DEADLINE, .runtime = 10000000, .deadline = 30000000, .period = 30000000 };
    errno = 0;
    bad += !(setattr(0, &a, 0) == -1 && errno == EPERM);
    return bad;
}

static atomic_int loop_stop;

static void *syscall_loop(void *arg)
{
    (void)arg;
    while (!atomic_load(&loop_stop))
        syscall(SYS_getppid);
    return NULL;
}

/* Every CPU busy twice over with threads that trap all the time: the main thread sleeps,
 * wakes behind them, forks a child that must run, and stops them. */
static void time_sharing(void)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int n = ncpu > 0 && ncpu < 8 ? 2 * (int)ncpu : 16;
    pthread_t t[16];
    int made = 0;
    for (int i = 0; i < n; i++)
        made += pthread_create(&t[made], NULL, syscall_loop, NULL) == 0;
    CHECK(made == n);
    struct timespec nap = {0, 2000000};
    CHECK(nanosleep(&nap, NULL) == 0);
    pid_t c = fork();
    if (c == 0)
        _exit(7);
    int st = 0;
    CHECK(c > 0 && waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 7);
    atomic_store(&loop_stop, 1);
    for (int i = 0; i < made; i++)
        pthread_join(t[i], NULL);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static atomic_long calls[2];
static atomic_int calls_stop;

static void *counted_loop(void *arg)
{
    atomic_long *n = arg;
    while (!atomic_load(&calls_stop)) {
        if (syscall(SYS_getppid) != getppid())
            return NULL;
        atomic_fetch_add(n, 1);
    }
    return NULL;
}

/* Two threads that do nothing but system calls: each makes 20000 (within 20 s), whether
 * they run side by side or take turns. */
static void calls_both_get_on(void)
{
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        CHECK(pthread_create(&t[i], NULL, counted_loop, &calls[i]) == 0);
    double end = now_s() + 20;
    while ((atomic_load(&calls[0]) < 20000 || atomic_load(&calls[1]) < 20000) && now_s() < end) {
        struct timespec nap = {0, 1000000};
        nanosleep(&nap, NULL);
    }
    CHECKF(atomic_load(&calls[0]) >= 20000 && atomic_load(&calls[1]) >= 20000, "calls made: %ld and %ld",
           atomic_load(&calls[0]), atomic_load(&calls[1]));
    atomic_store(&calls_stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
}

static atomic_int cpu_of[2] = {-1, -1};
static atomic_int seen_apart;

static void *compute(void *arg)
{
    int me = (int)(long)arg;
    double end = now_s() + 20;
    volatile unsigned long x = 0;
    while (!atomic_load(&seen_apart) && now_s() < end) {
        for (int i = 0; i < 2000000; i++)
            x += i;
        int c = sched_getcpu();
        atomic_store(&cpu_of[me], c);
        int other = atomic_load(&cpu_of[1 - me]);
        if (c >= 0 && other >= 0 && other != c)
            atomic_store(&seen_apart, 1);
    }
    return NULL;
}

/* Two threads that compute (milliseconds between their calls): seen on two different CPUs
 * at about the same time — they are not made to take turns. */
static void compute_spreads(void)
{
    if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
        return;
    pthread_t t[2];
    for (long i = 0; i < 2; i++)
        CHECK(pthread_create(&t[i], NULL, compute, (void *)i) == 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    CHECKF(atomic_load(&seen_apart), "two computing threads last seen on cpu %d and %d", atomic_load(&cpu_of[0]),
           atomic_load(&cpu_of[1]));
}

int main(void)
{
    CHECK(sched_get_priority_max(SCHED_FIFO) == 99 && sched_get_priority_min(SCHED_FIFO) == 1);
    CHECK(sched_get_priority_max(SCHED_RR) == 99 && sched_get_priority_min(SCHED_RR) == 1);
    CHECK(sched_get_priority_max(SCHED_OTHER) == 0 && sched_get_priority_min(SCHED_OTHER) == 0);
    CHECK(sched_get_priority_max(SCHED_BATCH) == 0 && sched_get_priority_min(SCHED_IDLE) == 0);
    errno = 0;
    CHECK(sched_get_priority_max(42) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(sched_get_priority_min(-1) == -1 && errno == EINVAL);

    CHECK(sched_getscheduler(0) == SCHED_OTHER);
    CHECK(sched_getscheduler(getpid()) == SCHED_OTHER);
    struct sched_param sp = { .sched_priority = 5 };
    CHECK(sched_getparam(0, &sp) == 0 && sp.sched_priority == 0);
    errno = 0;
    CHECK(sched_getscheduler(-1) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(syscall(SYS_sched_getparam, 0, NULL) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(sched_getparam(999999, &sp) == -1 && errno == ESRCH);
    sp.sched_priority = 1;
    errno = 0;
    CHECK(sched_setscheduler(0, SCHED_OTHER, &sp) == -1 && errno == EINVAL);
    sp.sched_priority = 0;
    errno = 0;
    CHECK(sched_setscheduler(0, 77, &sp) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(syscall(SYS_sched_setscheduler, 0, SCHED_OTHER, BAD_PTR(8)) == -1 && errno == EFAULT);

    struct timespec ts = { 9, 9 };
    CHECK(sched_rr_get_interval(0, &ts) == 0 && ts.tv_sec == 0);

    struct attr a;
    memset(&a, 0xff, sizeof a);
    CHECK(getattr(0, &a, sizeof a, 0) == 0 && a.size == sizeof a && a.policy == SCHED_OTHER && a.priority == 0);
    errno = 0;
    CHECK(getattr(0, &a, 47, 0) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(getattr(0, &a, sizeof a, 1) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(getattr(0, NULL, sizeof a, 0) == -1 && errno == EINVAL);
    memset(&a, 0, sizeof a);
    a.size = 20;
    errno = 0;
    CHECK(setattr(0, &a, 0) == -1 && errno == E2BIG && a.size >= 48);
    errno = 0;
    CHECK(setattr(0, &a, 1000) == -1 && errno == EINVAL);

    pid_t c = fork();
    if (c == 0)
        _exit(unprivileged());
    int st;
    CHECK(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0);

    if (geteuid() == 0) {
        sp.sched_priority = 10;
        CHECK(sched_setscheduler(0, SCHED_RR, &sp) == 0);
        CHECK(sched_getscheduler(0) == SCHED_RR);
        CHECK(sched_getparam(0, &sp) == 0 && sp.sched_priority == 10);
        CHECK(sched_rr_get_interval(0, &ts) == 0 && ts.tv_sec == 0 && ts.tv_nsec > 0);
        sp.sched_priority = 20;
        CHECK(sched_setparam(0, &sp) == 0);
        CHECK(sched_getparam(0, &sp) == 0 && sp.sched_priority == 20);
        sp.sched_priority = 100;
        errno = 0;
        CHECK(sched_setparam(0, &sp) == -1 && errno == EINVAL);
        c = fork();
        if (c == 0)
            _exit(sched_getscheduler(0) == SCHED_RR ? 0 : 1);
        CHECK(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0);
        sp.sched_priority = 10;
        CHECK(sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &sp) == 0);
        CHECK(sched_getscheduler(0) == (SCHED_FIFO | SCHED_RESET_ON_FORK));
        c = fork();
        if (c == 0) {
            struct sched_param cp;
            _exit(sched_getscheduler(0) == SCHED_OTHER && sched_getparam(0, &cp) == 0 && cp.sched_priority == 0 ? 0 : 1);
        }
        CHECK(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0);
        sp.sched_priority = 0;
        CHECK(sched_setscheduler(0, SCHED_OTHER, &sp) == 0);
        CHECK(sched_getscheduler(0) == SCHED_OTHER);

        struct attr d = { .size = sizeof d, .policy = SCHED_DEADLINE, .runtime = 10000000, .deadline = 30000000, .period = 30000000 };
        d.runtime = 40000000;
        errno = 0;
        CHECK(setattr(0, &d, 0) == -1 && errno == EINVAL);
        d.runtime = 10000000;
        /* A deadline task in a child (it cannot fork, and runs only briefly). */
        c = fork();
        if (c == 0) {
            struct attr g;
            if (setattr(0, &d, 0) != 0)
                _exit(1);
            if (getattr(0, &g, sizeof g, 0) != 0)
                _exit(2);
            _exit(g.policy == SCHED_DEADLINE && g.runtime == 10000000 && g.deadline == 30000000 && g.period == 30000000 ? 0 : 3);
        }
        CHECK(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    time_sharing();
    calls_both_get_on();
    compute_spreads();
    return vktest_done();
}
