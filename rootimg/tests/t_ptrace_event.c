/* t_ptrace_event: PTRACE_EVENT stops — fork (the child traced too, starting with SIGSTOP),
 * vfork and vfork-done, clone of a thread (followed with __WALL), exec (with TRACEEXEC, and
 * the plain SIGTRAP without it), exit (TRACEEXIT, with the status as the message) — and a
 * group stop of a traced process. */
#include "vktest.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static int wait_for(pid_t pid)
{
    int st = 0;
    pid_t r;
    do
        r = waitpid(pid, &st, __WALL);
    while (r < 0 && errno == EINTR);
    return r == pid ? st : -1;
}

#define EVENT(st) ((st) >> 16)

/* Let a tracee run to its end, passing on the signals it stops with (a SIGCHLD from its own
 * child): its final status. */
static int run_to_exit(pid_t pid)
{
    int sig = 0;
    for (;;) {
        if (ptrace(PTRACE_CONT, pid, 0, (void *)(long)sig) != 0)
            return -1;
        int st = wait_for(pid);
        if (!WIFSTOPPED(st))
            return st;
        sig = EVENT(st) ? 0 : WSTOPSIG(st);
    }
}

/* TracerPid of /proc/ID/status (a thread's id too), -1 when unreadable. */
static int tracer_of(pid_t id)
{
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/status", id);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    char *p = strstr(buf, "TracerPid:");
    return p ? atoi(p + 10) : -1;
}

static void traceme_and_stop(void)
{
    if (ptrace(PTRACE_TRACEME, 0, 0, 0) != 0)
        _exit(100);
    raise(SIGSTOP);
}

/* A traced child forks: EVENT_FORK with the grandchild's pid; the grandchild is traced and
 * starts stopped by SIGSTOP; its exit reaches the tracer, and its parent too (whose SIGCHLD
 * stops it on the way). */
static void test_fork(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        traceme_and_stop();
        pid_t g = fork();
        if (g == 0)
            _exit(7);
        int s = 0;
        if (waitpid(g, &s, 0) != g)
            _exit(20);
        _exit(WIFEXITED(s) && WEXITSTATUS(s) == 7 ? 0 : 21);
    }
    int st = wait_for(pid);
    CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP);
    CHECK(ptrace(PTRACE_SETOPTIONS, pid, 0, (void *)PTRACE_O_TRACEFORK) == 0);
    CHECK(ptrace(PTRACE_CONT, pid, 0, 0) == 0);
    st = wait_for(pid);
    CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == SIGTRAP && EVENT(st) == PTRACE_EVENT_FORK);
    unsigned long g = 0;
    CHECK(ptrace(PTRACE_GETEVENTMSG, pid, 0, &g) == 0);
    CHECK(g > 0);
    st = wait_for((pid_t)g);
    CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP);
    CHECK(ptrace(PTRACE_CONT, (pid_t)g, 0, 0) == 0);
    st = wait_for((pid_t)g);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 7);
    st = run_to_exit(pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* vfork: EVENT_VFORK, then EVENT_VFORK_DONE once the child has exited. */
static void test_vfork(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        traceme_and_stop();
        pid_t g = vfork();
        if (g == 0)
            _exit(8);
        int s = 0;
        waitpid(g, &s, 0);
        _exit(WIFEXITED(s) && WEXITSTATUS(s) == 8 ? 0 : 21);
    }
    int st = wait_for(pid);
    CHECK(WIFSTOPPED(st));
    CHECK(ptrace(PTRACE_SETOPTIONS, pid, 0, (void *)(PTRACE_O_TRACEVFORK | PTRACE_O_TRACEVFORKDONE)) == 0);
    CHECK(ptrace(PTRACE_CONT, pid, 0, 0) == 0);
    st = wait_for(pid);
    CHECK(WIFSTOPPED(st) && EVENT(st) == PTRACE_EVENT_VFORK);
    unsigned long g = 0;
    CHECK(ptrace(PTRACE_GETEVENTMSG, pid, 0, &g) == 0);
    st = wait_for((pid_t)g);
    CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP);
    CHECK(ptrace(PTRACE_CONT, (pid_t)g, 0, 0) == 0);
    CHECK(ptrace(PTRACE_CONT, pid, 0, 0) == 0);
    /* The grandchild's exit and the parent's VFORK_DONE, in either order. */
    int seen = 0;
    for (int i = 0; i < 2; i++) {
        int s = 0;
        pid_t r = waitpid(-1, &s, __WALL);
        if (r == (pid_t)g && WIFEXITED(s) && WEXITSTATUS(s) == 8)
            seen |= 1;
        if (r == pid && WIFSTOPPED(s) && EVENT(s) == PTRACE_EVENT_VFORK_DONE) {
            unsigned long m = 0;
            ptrace(PTRACE_GETEVENTMSG, pid, 0, &m);
            if (m == g)
                seen |= 2;
        }
    }
    CHECK(seen == 3);
    st = run_to_exit(pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void *thread_main(void *arg)
{
    (void)arg;
    return (void *)42;
}

/* A thread: EVENT_CLONE; the new thread is traced from its start. */
static void test_clone(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        traceme_and_stop();
        pthread_t t;
        void *ret = 0;
        if (pthread_create(&t, 0, thread_main, 0) != 0 || pthread_join(t, &ret) != 0)
            _exit(20);
        _exit(ret == (void *)42 ? 0 : 21);
    }
    int st = wait_for(pid);
    CHECK(WIFSTOPPED(st));
    CHECK(ptrace(PTRACE_SETOPTIONS, pid, 0, (void *)PTRACE_O_TRACECLONE) == 0);
    CHECK(ptrace(PTRACE_CONT, pid, 0, 0) == 0);
    st = wait_for(pid);
    CHECK(WIFSTOPPED(st) && EVENT(st) == PTRACE_EVENT_CLONE);
    unsigned long tid = 0;
    CHECK(ptrace(PTRACE_GETEVENTMSG, pid, 0, &tid) == 0);
    CHECK(tid > 0 && tid != (unsigned long)pid);
    st = wait_for((pid_t)tid);
    CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP);
    /* /proc/TID of the thread: its status names its tracer. */
    CHECK(tracer_of((pid_t)tid) == getpid());
    CHECK(ptrace(PTRACE_CONT, (pid_t)tid, 0, 0) == 0);
    CHECK(ptrace(PTRACE_CONT, pid, 0, 0) == 0);
    /* The thread's exit and the process's, in order. */
    st = wait_for((pid_t)tid);
    CHECK(WIFEXITED(st));
    st = wait_for(pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* exec: SIGTRAP after it without TRACEEXEC; EVENT_EXEC with it (message: the pid). */
static void test_exec(const char *self)
{
    for (int opt = 0; opt < 2; opt++) {
        pid_t pid = fork();
        if (pid == 0) {
            traceme_and_stop();
            execl(self, self, "exit3", (char *)0);
            _exit(99);
        }
        int st = wait_for(pid);
        CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP);
        if (opt)
            CHECK(ptrace(PTRACE_SETOPTIONS, pid, 0, (void *)PTRACE_O_TRACEEXEC) == 0);
        CHECK(ptrace(PTRACE_CONT, pid, 0, 0) == 0);
        st = wait_for(pid);
        CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == SIGTRAP);
        if (opt) {
            CHECK(EVENT(st) == PTRACE_EVENT_EXEC);
            unsigned long m = 0;
            CHECK(ptrace(PTRACE_GETEVENTMSG, pid, 0, &m) == 0 && m == (unsigned long)pid);
        } else {
            CHECK(EVENT(st) == 0);
        }
        CHECK(ptrace(PTRACE_CONT, pid, 0, 0) == 0);
        st = wait_for(pid);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 3);
    }
}

static void *spin_main(void *arg)
{
    (void)arg;
    for (;;)
        pause();
    return 0;
}

/* exec in a process whose other thread sits in a ptrace stop: the thread goes, the exec
 * completes (no hang), the program runs to its end. */
static void test_exec_with_stopped_thread(const char *self)
{
    pid_t pid = fork();
    if (pid == 0) {
        traceme_and_stop();
        pthread_t t;
        if (pthread_create(&t, 0, spin_main, 0) != 0)
            _exit(20);
        execl(self, self, "exit3", (char *)0);
        _exit(99);
    }
    int st = wait_for(pid);
    CHECK(WIFSTOPPED(st));
    CHECK(ptrace(PTRACE_SETOPTIONS, pid, 0, (void *)PTRACE_O_TRACECLONE) == 0);
    CHECK(ptrace(PTRACE_CONT, pid, 0, 0) == 0);
    st = wait_for(pid);
    CHECK(WIFSTOPPED(st) && EVENT(st) == PTRACE_EVENT_CLONE);
    unsigned long tid = 0;
    CHECK(ptrace(PTRACE_GETEVENTMSG, pid, 0, &tid) == 0);
    st = wait_for((pid_t)tid);
    CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP);
    /* The thread stays in its stop; the main thread goes on to exec, which ends the thread
     * (its exit reaches us too: Linux's exec waits for us to reap it). */
    int exited = 0;
    CHECK(ptrace(PTRACE_CONT, pid, 0, 0) == 0);
    for (int i = 0; i < 20; i++) {
        int s = 0;
        pid_t r;
        do
            r = waitpid(-1, &s, __WALL);
        while (r < 0 && errno == EINTR);
        if (r < 0)
            break;
        if (r != pid) {
            if (WIFSTOPPED(s))
                ptrace(PTRACE_CONT, r, 0, 0);
            continue;
        }
        if (WIFEXITED(s) || WIFSIGNALED(s)) {
            exited = WIFEXITED(s) && WEXITSTATUS(s) == 3;
            break;
        }
        int sig = WSTOPSIG(s) == SIGTRAP || EVENT(s) ? 0 : WSTOPSIG(s);
        ptrace(PTRACE_CONT, pid, 0, (void *)(long)sig);
    }
    CHECK(exited);
}

/* TRACEEXIT: a stop before the end, with the wait status as the message. */
static void test_exit(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        traceme_and_stop();
        _exit(9);
    }
    int st = wait_for(pid);
    CHECK(WIFSTOPPED(st));
    CHECK(ptrace(PTRACE_SETOPTIONS, pid, 0, (void *)PTRACE_O_TRACEEXIT) == 0);
    CHECK(ptrace(PTRACE_CONT, pid, 0, 0) == 0);
    st = wait_for(pid);
    CHECK(WIFSTOPPED(st) && EVENT(st) == PTRACE_EVENT_EXIT);
    unsigned long m = 0;
    CHECK(ptrace(PTRACE_GETEVENTMSG, pid, 0, &m) == 0 && m == (9 << 8));
    CHECK(ptrace(PTRACE_CONT, pid, 0, 0) == 0);
    st = wait_for(pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 9);
}

/* A traced process stopped by SIGSTOP: the signal-delivery-stop, then (the signal passed on)
 * the group stop, reported as a stop by the same signal; GETSIGINFO has nothing there. */
static void test_group_stop(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        traceme_and_stop();
        raise(SIGTSTP);
        _exit(4);
    }
    int st = wait_for(pid);
    CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP);
    CHECK(ptrace(PTRACE_CONT, pid, 0, 0) == 0);
    st = wait_for(pid);
    CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == SIGTSTP);
    siginfo_t si;
    CHECK(ptrace(PTRACE_GETSIGINFO, pid, 0, &si) == 0 && si.si_signo == SIGTSTP);
    CHECK(ptrace(PTRACE_CONT, pid, 0, (void *)SIGTSTP) == 0);
    st = wait_for(pid);
    CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == SIGTSTP);
    errno = 0;
    CHECK(ptrace(PTRACE_GETSIGINFO, pid, 0, &si) == -1 && errno == EINVAL);
    CHECK(ptrace(PTRACE_CONT, pid, 0, 0) == 0);
    st = wait_for(pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 4);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "exit3") == 0)
        return 3;
    vktest_reset_signals();
    test_fork();
    test_vfork();
    test_clone();
    test_exec(argv[0]);
    test_exit();
    test_group_stop();
    test_exec_with_stopped_thread(argv[0]);
    return vktest_done();
}
