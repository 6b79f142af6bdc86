/*
 * t_rlimits — RLIMIT_SIGPENDING and RLIMIT_STACK as Linux enforces them.
 *
 * RLIMIT_SIGPENDING: its default is finite (half of the kernel's max_threads, soft = hard);
 * a user with N signals queued gets EAGAIN from sigqueue(3) of a real-time signal (a standard
 * signal still goes, without its siginfo); taking a signal makes room.
 * RLIMIT_STACK: the limit at execve(2) sets how far the new program's stack may grow — a
 * 12 MiB recursion (more than the default 8 MiB) runs under a 32 MiB limit and dies of SIGSEGV
 * under a 256 KiB one.
 * Run as root (it becomes an unused uid to have a user of its own).
 */
#define _GNU_SOURCE
#include "vktest.h"

#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

/* Use about `kib` KiB of stack, 4 KiB a frame. */
static int __attribute__((noinline)) deep(int kib)
{
    volatile char frame[4096];
    frame[0] = (char)kib;
    frame[4095] = 1;
    if (kib <= 4)
        return frame[0] + frame[4095];
    return deep(kib - 4) + frame[0];
}

static void test_sigpending(void)
{
    struct rlimit rl;
    CHECK(getrlimit(RLIMIT_SIGPENDING, &rl) == 0);
    CHECKF(rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur > 0 && rl.rlim_cur == rl.rlim_max, "cur %llu max %llu",
           (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max);

    pid_t pid = fork();
    if (pid == 0) {
        /* A user of our own: nobody else's queued signals count. */
        if (setgid(54321) != 0 || setuid(54321) != 0)
            _exit(100);
        struct rlimit four = {4, 4};
        CHECK(setrlimit(RLIMIT_SIGPENDING, &four) == 0);
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGRTMIN);
        sigaddset(&set, SIGUSR1);
        sigprocmask(SIG_BLOCK, &set, NULL);
        union sigval v = {.sival_int = 7};
        for (int i = 0; i < 4; i++)
            CHECK(sigqueue(getpid(), SIGRTMIN, v) == 0);
        errno = 0;
        CHECK(sigqueue(getpid(), SIGRTMIN, v) == -1 && errno == EAGAIN);
        /* Taking one makes room for one. */
        siginfo_t si;
        struct timespec ts = {1, 0};
        CHECK(sigtimedwait(&set, &si, &ts) == SIGRTMIN && si.si_value.sival_int == 7);
        CHECK(sigqueue(getpid(), SIGRTMIN, v) == 0);
        CHECK(sigqueue(getpid(), SIGRTMIN, v) == -1 && errno == EAGAIN);
        /* A standard signal is never refused. */
        CHECK(sigqueue(getpid(), SIGUSR1, v) == 0);
        int n = 0, rt = 0;
        ts.tv_sec = 0;
        int got;
        while ((got = sigtimedwait(&set, &si, &ts)) > 0) {
            n++;
            rt += got == SIGRTMIN && si.si_value.sival_int == 7 && si.si_code == SI_QUEUE;
        }
        CHECKF(n == 5 && rt == 4, "took %d signals, %d queued real-time ones", n, rt);
        CHECK(sigqueue(getpid(), SIGRTMIN, v) == 0);
        vktest_child_done();
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
}

/* Run this program again as "deep KIB" under an RLIMIT_STACK of `limit` bytes. */
static int run_deep(rlim_t limit, int kib)
{
    pid_t pid = fork();
    if (pid == 0) {
        struct rlimit rl = {limit, RLIM_INFINITY};
        if (setrlimit(RLIMIT_STACK, &rl) != 0)
            _exit(100);
        char arg[16];
        snprintf(arg, sizeof arg, "%d", kib);
        execl("/proc/self/exe", "t_rlimits", "deep", arg, (char *)NULL);
        _exit(101);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return st;
}

static void test_stack(void)
{
    struct rlimit rl;
    CHECK(getrlimit(RLIMIT_STACK, &rl) == 0);
    int st = run_deep(32 << 20, 12 << 10);
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "12 MiB deep under 32 MiB: status %#x", st);
    st = run_deep(256 << 10, 12 << 10);
    CHECKF(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV, "12 MiB deep under 256 KiB: status %#x", st);
    st = run_deep(256 << 10, 64);
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "64 KiB deep under 256 KiB: status %#x", st);
    /* The child's limit does not change ours. */
    struct rlimit now;
    CHECK(getrlimit(RLIMIT_STACK, &now) == 0 && now.rlim_cur == rl.rlim_cur);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "deep") == 0) {
        deep(atoi(argv[2]));
        return 0;
    }
    vktest_reset_signals();
    test_sigpending();
    test_stack();
    vktest_done();
}
