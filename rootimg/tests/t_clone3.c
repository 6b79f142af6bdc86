/*
 * t_clone3 — clone3(2) as a process creator, and its argument checks:
 *   - a fork through clone3 (exit_signal SIGCHLD): the child sees 0, the parent its pid, wait
 *     reports the child's status; a VER0-sized (64 bytes) structure works, and so does a
 *     larger one whose extra bytes are zero;
 *   - E2BIG for extra bytes that are not zero and for a size past a page; EINVAL for a size
 *     below VER0, an exit signal in the flags or past 64, a stack without a size (and the
 *     reverse), CLONE_SIGHAND with CLONE_CLEAR_SIGHAND, a thread with an exit signal,
 *     set_tid_size without set_tid; EFAULT for an unreadable structure;
 *   - CLONE_CLEAR_SIGHAND: the child's handlers are SIG_DFL, an ignored signal stays ignored;
 *   - CLONE_PARENT_SETTID writes the child's pid;
 *   - CLONE_PARENT: the new process is the caller's sibling — its parent (getppid, and who
 *     waits for it) is the caller's parent, and its exit signal is the caller's own (clone3
 *     refuses one with it: EINVAL).
 * (glibc's pthread_create uses clone3 for threads: t_dyn_glibc covers those.)
 */
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "vktest.h"

#ifndef CLONE_CLEAR_SIGHAND
#define CLONE_CLEAR_SIGHAND 0x100000000ULL
#endif

struct clone_args_v2 {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size,
        cgroup;
};

static long clone3(void *args, size_t size)
{
    return syscall(SYS_clone3, args, size);
}

/* clone3 as fork: the child exits with `code` (after `check` if given); the parent's result. */
static int fork3(struct clone_args_v2 *a, size_t size, int code, int (*check)(void))
{
    long pid = clone3(a, size);
    if (pid == 0)
        _exit(check ? check() : code);
    if (pid < 0)
        return -1;
    int st;
    if (waitpid((pid_t)pid, &st, 0) != pid || !WIFEXITED(st))
        return -2;
    return WEXITSTATUS(st);
}

/* clone3 refused with `want`; a child it made by mistake leaves at once. */
static int refused(void *args, size_t size, int want)
{
    errno = 0;
    long r = clone3(args, size);
    int e = errno;
    if (r == 0)
        _exit(99);
    if (r > 0)
        waitpid((pid_t)r, NULL, 0);
    return r == -1 && e == want;
}

static void on_usr1(int sig)
{
    (void)sig;
}

static int handlers_cleared(void)
{
    struct sigaction sa;
    if (sigaction(SIGUSR1, NULL, &sa) != 0 || sa.sa_handler != SIG_DFL)
        return 1;
    if (sigaction(SIGUSR2, NULL, &sa) != 0 || sa.sa_handler != SIG_IGN)
        return 2;
    return 0;
}

static int handlers_kept(void)
{
    struct sigaction sa;
    return sigaction(SIGUSR1, NULL, &sa) == 0 && sa.sa_handler == on_usr1 ? 0 : 1;
}

/* CLONE_PARENT from a child of ours: 0 when its clone is our child (our pid its parent,
 * ours to wait for once the child that made it is gone); else what went wrong. */
static int clone_parent_case(const struct clone_args_v2 *base)
{
    int p[2];
    if (pipe(p) != 0)
        return 10;
    pid_t me = getpid();
    pid_t mid = fork();
    if (mid == 0) {
        struct clone_args_v2 c = *base;
        c.flags = CLONE_PARENT;
        c.exit_signal = SIGUSR2; /* clone3 refuses one with CLONE_PARENT */
        if (!(clone3(&c, sizeof c) == -1 && errno == EINVAL))
            _exit(6);
        c.exit_signal = 0; /* the caller's own (SIGCHLD) is used */
        long g = clone3(&c, sizeof c);
        if (g == 0) {
            /* Once the middle process is gone: who is our parent? */
            char b;
            if (read(p[0], &b, 1) != 1)
                _exit(3);
            _exit(getppid() == me ? 0 : 4);
        }
        _exit(g > 0 ? 0 : 5);
    }
    close(p[0]);
    int st;
    if (mid < 0 || waitpid(mid, &st, 0) != mid || !WIFEXITED(st))
        return 11;
    if (WEXITSTATUS(st) != 0)
        return 20 + WEXITSTATUS(st);
    if (write(p[1], "x", 1) != 1)
        return 12;
    close(p[1]);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid(P_ALL, 0, &si, WEXITED) != 0)
        return 13; /* ECHILD: it was not ours */
    if (si.si_pid == mid || si.si_code != CLD_EXITED)
        return 14;
    if (si.si_status != 0)
        return 30 + si.si_status;
    return waitpid(-1, &st, WNOHANG) == -1 && errno == ECHILD ? 0 : 15;
}

int main(void)
{
    vktest_reset_signals();
    struct clone_args_v2 a;
    unsigned char big[sizeof a + 16];

    memset(&a, 0, sizeof a);
    a.exit_signal = SIGCHLD;
    CHECK(fork3(&a, sizeof a, 7, NULL) == 7);
    CHECK(fork3(&a, 64, 8, NULL) == 8);
    memset(big, 0, sizeof big);
    memcpy(big, &a, sizeof a);
    CHECK(fork3((void *)big, sizeof big, 9, NULL) == 9);
    big[sizeof a + 3] = 1;
    CHECK(refused(big, sizeof big, E2BIG));
    CHECK(refused(&a, 4097, E2BIG));
    CHECK(refused(&a, 63, EINVAL));
    CHECK(refused(BAD_PTR(8), sizeof a, EFAULT));

    /* Each refused, with nothing created. */
    struct clone_args_v2 b = a;
    b.flags = SIGCHLD;
    CHECK(refused(&b, sizeof b, EINVAL));
    b = a;
    b.exit_signal = 65;
    CHECK(refused(&b, sizeof b, EINVAL));
    b = a;
    b.stack = (uint64_t)(uintptr_t)big;
    CHECK(refused(&b, sizeof b, EINVAL));
    b = a;
    b.stack_size = 4096;
    CHECK(refused(&b, sizeof b, EINVAL));
    b = a;
    b.flags = CLONE_VM | CLONE_SIGHAND | CLONE_CLEAR_SIGHAND;
    CHECK(refused(&b, sizeof b, EINVAL));
    b = a;
    b.flags = CLONE_VM | CLONE_SIGHAND | CLONE_THREAD;
    CHECK(refused(&b, sizeof b, EINVAL));
    b = a;
    b.set_tid_size = 1;
    CHECK(refused(&b, sizeof b, EINVAL));
    b = a;
    b.flags = 1ULL << 40;
    CHECK(refused(&b, sizeof b, EINVAL));

    /* CLONE_CLEAR_SIGHAND resets handlers, keeps ignored signals ignored. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    REQUIRE(sigaction(SIGUSR1, &sa, NULL) == 0);
    REQUIRE(signal(SIGUSR2, SIG_IGN) != SIG_ERR);
    b = a;
    b.flags = CLONE_CLEAR_SIGHAND;
    CHECK(fork3(&b, sizeof b, 0, handlers_cleared) == 0);
    CHECK(fork3(&a, sizeof a, 0, handlers_kept) == 0);

    /* CLONE_PARENT_SETTID. */
    int32_t ptid = 0;
    b = a;
    b.flags = CLONE_PARENT_SETTID;
    b.parent_tid = (uint64_t)(uintptr_t)&ptid;
    long pid = clone3(&b, sizeof b);
    if (pid == 0)
        _exit(0);
    int st;
    CHECK(pid > 0 && waitpid((pid_t)pid, &st, 0) == pid && ptid == pid);

    /* CLONE_PARENT, in a process of its own (not init, to whom orphans go anyway): the
     * grandchild its child makes is its own child, to wait for. */
    pid_t top = fork();
    if (top == 0)
        _exit(clone_parent_case(&a));
    CHECK(top > 0 && waitpid(top, &st, 0) == top && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    vktest_done();
}
