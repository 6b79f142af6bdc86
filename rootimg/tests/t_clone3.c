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
 *   - CLONE_PARENT_SETTID writes the child's pid.
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
    vktest_done();
}
