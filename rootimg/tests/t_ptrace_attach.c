/* t_ptrace_attach: PTRACE_ATTACH, SEIZE (of a stopped process too), INTERRUPT, LISTEN, DETACH,
 * KILL and PTRACE_O_EXITKILL; strace's start-up (SIGSTOP, SEIZE, INTERRUPT, SIGCONT, exec);
 * /proc/PID/status TracerPid; who may attach (the same ids, CAP_SYS_PTRACE, Yama's
 * ptrace_scope); a set-user-ID program run under an unprivileged tracer does not gain its
 * ids; process_vm_readv/process_vm_writev. Run as root, beside the staged perm/ tree. */
#include "vktest.h"

#include <fcntl.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>

static volatile long flag;
static char buffer[64] = "remote bytes";

static int wait_for(pid_t pid, int opts)
{
    int st = 0;
    pid_t r;
    do
        r = waitpid(pid, &st, __WALL | opts);
    while (r < 0 && errno == EINTR);
    return r == pid ? st : (r == 0 ? -2 : -1);
}

/* A child that spins until `flag` is set (by a tracer's POKE), then exits 5. */
static pid_t spinner(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        while (!flag)
            ;
        _exit(5);
    }
    return pid;
}

/* TracerPid from /proc/PID/status (-1 when unreadable). */
static int tracer_pid(pid_t pid)
{
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
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

/* The state letter of /proc/PID/stat (0 when unreadable). */
static char proc_state(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    char *r = strrchr(buf, ')');
    return r && r[1] == ' ' ? r[2] : 0;
}

/* Yama's ptrace_scope, 0 when the host has no Yama. */
static int ptrace_scope(void)
{
    char buf[16] = "";
    int fd = open("/proc/sys/kernel/yama/ptrace_scope", O_RDONLY);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    return n > 0 ? atoi(buf) : 0;
}

static void test_attach_detach(void)
{
    pid_t pid = spinner();
    CHECK(tracer_pid(pid) == 0);
    CHECK(ptrace(PTRACE_ATTACH, pid, 0, 0) == 0);
    int st = wait_for(pid, 0);
    CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP);
    CHECK(tracer_pid(pid) == getpid());
    CHECK(proc_state(pid) == 't');
    /* Attached already: EPERM, for us too. */
    errno = 0;
    CHECK(ptrace(PTRACE_ATTACH, pid, 0, 0) == -1 && errno == EPERM);
    errno = 0;
    long v = ptrace(PTRACE_PEEKDATA, pid, (void *)&flag, 0);
    CHECK(errno == 0 && v == 0);
    /* Let it run (still traced): requests need a stop. */
    CHECK(ptrace(PTRACE_CONT, pid, 0, 0) == 0);
    errno = 0;
    CHECK(ptrace(PTRACE_PEEKDATA, pid, (void *)&flag, 0) == -1 && errno == ESRCH);
    errno = 0;
    CHECK(ptrace(PTRACE_DETACH, pid, 0, 0) == -1 && errno == ESRCH);
    /* Stop it again with a signal, detach with the flag set: it exits 5. */
    kill(pid, SIGUSR1);
    st = wait_for(pid, 0);
    CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == SIGUSR1);
    CHECK(ptrace(PTRACE_POKEDATA, pid, (void *)&flag, (void *)1) == 0);
    CHECK(ptrace(PTRACE_DETACH, pid, 0, 0) == 0);
    st = wait_for(pid, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 5);
}

static void test_seize_interrupt(void)
{
    pid_t pid = spinner();
    errno = 0;
    CHECK(ptrace(PTRACE_SEIZE, pid, 0, (void *)0x80000000ul) == -1 && errno == EIO);
    CHECK(ptrace(PTRACE_SEIZE, pid, 0, (void *)PTRACE_O_TRACESYSGOOD) == 0);
    /* No stop: it runs on. */
    CHECK(wait_for(pid, WNOHANG) == -2);
    CHECK(tracer_pid(pid) == getpid());
    CHECK(ptrace(PTRACE_INTERRUPT, pid, 0, 0) == 0);
    int st = wait_for(pid, 0);
    CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == SIGTRAP && (st >> 16) == PTRACE_EVENT_STOP);
    CHECK(ptrace(PTRACE_POKEDATA, pid, (void *)&flag, (void *)1) == 0);
    CHECK(ptrace(PTRACE_CONT, pid, 0, 0) == 0);
    st = wait_for(pid, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 5);
    /* INTERRUPT needs a seized tracee. */
    pid = spinner();
    CHECK(ptrace(PTRACE_ATTACH, pid, 0, 0) == 0);
    st = wait_for(pid, 0);
    CHECK(WIFSTOPPED(st));
    errno = 0;
    CHECK(ptrace(PTRACE_INTERRUPT, pid, 0, 0) == -1 && errno == EIO);
    /* PTRACE_KILL. */
    CHECK(ptrace(PTRACE_KILL, pid, 0, 0) == 0);
    st = wait_for(pid, 0);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

/* Attaching to a process asleep in read(2): the SIGSTOP's stop shows the call (orig_rax);
 * with the signal dropped, the call starts again and gets the data written later. */
static void test_attach_sleeping(void)
{
    int pfd[2];
    CHECK(pipe(pfd) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[1]);
        char c = 0;
        ssize_t n = read(pfd[0], &c, 1);
        _exit(n == 1 ? c : 99);
    }
    close(pfd[0]);
    /* Wait until it sleeps in read (its state in /proc), then attach. */
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    for (int i = 0; i < 10000; i++) {
        int fd = open(path, O_RDONLY);
        ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
        if (fd >= 0)
            close(fd);
        if (n > 0) {
            buf[n] = 0;
            char *r = strrchr(buf, ')');
            if (r && r[2] == 'S')
                break;
        }
        usleep(1000);
    }
    CHECK(ptrace(PTRACE_ATTACH, pid, 0, 0) == 0);
    int st = wait_for(pid, 0);
    CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP);
    errno = 0;
    long orig = ptrace(PTRACE_PEEKUSER, pid, (void *)(15 * 8), 0); /* orig_rax */
    CHECK(errno == 0 && orig == SYS_read);
    CHECK(ptrace(PTRACE_CONT, pid, 0, 0) == 0);
    CHECK(write(pfd[1], "k", 1) == 1);
    st = wait_for(pid, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 'k');
    close(pfd[1]);
}

/* strace's start: a child stopped by its own SIGSTOP is seized — it re-traps as a group
 * stop (EVENT_STOP with SIGSTOP); PTRACE_LISTEN lets it sit stopped; SIGCONT wakes it into
 * an EVENT_STOP with SIGTRAP, then SIGCONT's own signal-delivery-stop; on to its exit. */
static void test_seize_stopped_listen(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        raise(SIGSTOP);
        _exit(6);
    }
    int st = wait_for(pid, WUNTRACED);
    CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP);
    CHECK(ptrace(PTRACE_SEIZE, pid, 0, 0) == 0);
    st = wait_for(pid, 0);
    CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP && (st >> 16) == PTRACE_EVENT_STOP);
    CHECK(ptrace(PTRACE_LISTEN, pid, 0, 0) == 0);
    errno = 0;
    CHECK(ptrace(PTRACE_PEEKDATA, pid, (void *)&flag, 0) == -1 && errno == ESRCH);
    CHECK(wait_for(pid, WNOHANG) == -2);
    CHECK(kill(pid, SIGCONT) == 0);
    st = wait_for(pid, 0);
    CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == SIGTRAP && (st >> 16) == PTRACE_EVENT_STOP);
    CHECK(ptrace(PTRACE_CONT, pid, 0, 0) == 0);
    st = wait_for(pid, 0);
    CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == SIGCONT && (st >> 16) == 0);
    CHECK(ptrace(PTRACE_CONT, pid, 0, (void *)SIGCONT) == 0);
    st = wait_for(pid, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 6);
}

/* strace's start-up, many times: the child stops itself with SIGSTOP and then execs; the tracer
 * waits for that stop, seizes the child (TRACEEXEC, TRACESYSGOOD), interrupts it and sends
 * SIGCONT, then follows it with PTRACE_SYSCALL (LISTEN at a group stop) as strace does. The
 * exec's PTRACE_EVENT_EXEC must come inside the execve call, after its syscall-entry stop: the
 * child must not run on to execve before the tracer has had a stop to restart it from (vk once
 * let SIGCONT wake it before the signal was queued, and skipped the pending INTERRUPT). */
static void test_seize_startup(const char *self)
{
    enum { ROUNDS = 60 };
    int good = 0;
    for (int round = 0; round < ROUNDS; round++) {
        pid_t pid = fork();
        if (pid == 0) {
            kill(getpid(), SIGSTOP);
            char *args[] = {(char *)self, "exit7", NULL};
            execve(self, args, environ);
            _exit(1);
        }
        int st = wait_for(pid, WSTOPPED);
        if (!WIFSTOPPED(st) || WSTOPSIG(st) != SIGSTOP)
            break;
        long opts = PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACEEXEC;
        if (ptrace(PTRACE_SEIZE, pid, 0, opts) != 0 || ptrace(PTRACE_INTERRUPT, pid, 0, 0) != 0)
            break;
        kill(pid, SIGCONT);
        int in_syscall = 0, exec_in_syscall = -1;
        for (;;) {
            st = wait_for(pid, 0);
            if (st == -1 || WIFEXITED(st) || WIFSIGNALED(st))
                break;
            int sig = WSTOPSIG(st), event = st >> 16;
            int restart = PTRACE_SYSCALL;
            long deliver = 0;
            if (event == PTRACE_EVENT_STOP) {
                if (sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU)
                    restart = PTRACE_LISTEN;
            } else if (event == PTRACE_EVENT_EXEC) {
                if (exec_in_syscall < 0)
                    exec_in_syscall = in_syscall;
            } else if (event == 0 && sig == (SIGTRAP | 0x80)) {
                in_syscall = !in_syscall;
            } else if (event == 0) {
                deliver = sig; /* a signal-delivery-stop (SIGCONT) */
            }
            ptrace(restart, pid, 0, (void *)deliver);
        }
        if (WIFEXITED(st) && WEXITSTATUS(st) == 7 && exec_in_syscall == 1)
            good++;
        else
            vktest_print("round %d: status %#x, exec event inside execve: %d\n", round, st, exec_in_syscall);
    }
    CHECK(good == ROUNDS);
}

/* A tracer with EXITKILL goes: its tracee dies. Without it, the tracee is let go. */
static void test_exitkill(void)
{
    for (int kill_it = 0; kill_it < 2; kill_it++) {
        pid_t target = spinner();
        int pfd[2];
        CHECK(pipe(pfd) == 0);
        pid_t tracer = fork();
        if (tracer == 0) {
            close(pfd[0]);
            long opts = kill_it ? PTRACE_O_EXITKILL : 0;
            if (ptrace(PTRACE_SEIZE, target, 0, (void *)opts) != 0)
                _exit(1);
            if (ptrace(PTRACE_INTERRUPT, target, 0, 0) != 0)
                _exit(2);
            int st = 0;
            if (waitpid(target, &st, __WALL) != target || !WIFSTOPPED(st))
                _exit(3);
            if (!kill_it && ptrace(PTRACE_POKEDATA, target, (void *)&flag, (void *)1) != 0)
                _exit(4);
            _exit(0); /* stopped, traced: our exit decides */
        }
        close(pfd[1]);
        int st = wait_for(tracer, 0);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        st = wait_for(target, 0);
        if (kill_it)
            CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
        else
            CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 5);
        close(pfd[0]);
    }
}

/* Who may attach: not to oneself, not to another user's process, not to a set-id one;
 * Yama's scope 1 also wants a descendant. */
static void test_permissions(void)
{
    errno = 0;
    CHECK(ptrace(PTRACE_ATTACH, getpid(), 0, 0) == -1 && errno == EPERM);
    errno = 0;
    CHECK(ptrace(PTRACE_ATTACH, 999999, 0, 0) == -1 && errno == ESRCH);
    int scope = ptrace_scope();
    /* A target running as uid 1000 (ready once it says so on the pipe). */
    int ready[2];
    CHECK(pipe(ready) == 0);
    pid_t target = fork();
    if (target == 0) {
        /* Linux makes a process that changed its ids undumpable: only CAP_SYS_PTRACE could
         * attach. Dumpable again, it is an ordinary uid 1000 process. */
        if (setgid(1000) != 0 || setuid(1000) != 0 || prctl(PR_SET_DUMPABLE, 1) != 0)
            _exit(100);
        if (write(ready[1], "r", 1) != 1)
            _exit(101);
        while (!flag)
            ;
        _exit(5);
    }
    char r = 0;
    CHECK(read(ready[0], &r, 1) == 1 && r == 'r');
    close(ready[0]);
    close(ready[1]);
    /* uid 1001: another user. */
    pid_t other = fork();
    if (other == 0) {
        if (setgid(1001) != 0 || setuid(1001) != 0)
            _exit(100);
        _exit(ptrace(PTRACE_ATTACH, target, 0, 0) == -1 && errno == EPERM ? 0 : 1);
    }
    int st = wait_for(other, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* uid 1000, not an ancestor: allowed without Yama, EPERM with scope 1. */
    pid_t same = fork();
    if (same == 0) {
        if (setgid(1000) != 0 || setuid(1000) != 0)
            _exit(100);
        if (ptrace(PTRACE_SEIZE, target, 0, 0) == 0)
            _exit(10);
        _exit(errno == EPERM ? 11 : 12);
    }
    st = wait_for(same, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == (scope >= 1 ? 11 : 10));
    /* uid 1000 over its own child: allowed (scope 1 too); over root's process: EPERM. */
    pid_t parent = fork();
    if (parent == 0) {
        if (setgid(1000) != 0 || setuid(1000) != 0 || prctl(PR_SET_DUMPABLE, 1) != 0)
            _exit(100);
        pid_t kid = spinner();
        int rc = 0;
        if (ptrace(PTRACE_ATTACH, kid, 0, 0) != 0)
            rc |= 1;
        int s = 0;
        if (waitpid(kid, &s, 0) != kid || !WIFSTOPPED(s))
            rc |= 2;
        if (ptrace(PTRACE_KILL, kid, 0, 0) != 0)
            rc |= 4;
        waitpid(kid, &s, 0);
        if (ptrace(PTRACE_ATTACH, getppid(), 0, 0) != -1 || errno != EPERM)
            rc |= 8;
        _exit(rc);
    }
    st = wait_for(parent, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* Root (CAP_SYS_PTRACE) may attach to anyone. */
    CHECK(ptrace(PTRACE_SEIZE, target, 0, (void *)PTRACE_O_EXITKILL) == 0);
    CHECK(ptrace(PTRACE_KILL, target, 0, 0) == 0);
    st = wait_for(target, 0);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

/* process_vm_readv/writev on a stopped child. */
static void test_process_vm(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        raise(SIGSTOP);
        _exit(strcmp(buffer, "written here") == 0 ? 0 : 1);
    }
    int st = wait_for(pid, WUNTRACED);
    CHECK(WIFSTOPPED(st));
    char got[16] = "";
    struct iovec local = {got, 12}, remote = {buffer, 12};
    CHECK(process_vm_readv(pid, &local, 1, &remote, 1, 0) == 12);
    CHECK(memcmp(got, "remote bytes", 12) == 0);
    char put[] = "written here";
    struct iovec l2 = {put, sizeof put}, r2 = {buffer, sizeof put};
    CHECK(process_vm_writev(pid, &l2, 1, &r2, 1, 0) == (ssize_t)sizeof put);
    struct iovec bad = {(void *)8, 4};
    errno = 0;
    CHECK(process_vm_readv(pid, &local, 1, &bad, 1, 0) == -1 && errno == EFAULT);
    errno = 0;
    CHECK(process_vm_readv(pid, &local, 1, &remote, 1, 1) == -1 && errno == EINVAL);
    /* An iovec length that is negative as ssize_t. */
    struct iovec huge_l = {got, (size_t)-1}, huge_r = {buffer, (size_t)-1};
    errno = 0;
    CHECK(process_vm_readv(pid, &huge_l, 1, &huge_r, 1, 0) == -1 && errno == EINVAL);
    kill(pid, SIGCONT);
    st = wait_for(pid, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* A uid 1000 tracer's tracee execs perm/suid (h_ids, setuid root): it runs with the caller's
 * ids, as Linux refuses the elevation under an unprivileged tracer. */
static void test_setid_exec(const char *self)
{
    char prog[512];
    snprintf(prog, sizeof prog, "%s", self);
    char *slash = strrchr(prog, '/');
    if (!slash)
        return;
    snprintf(slash + 1, sizeof prog - (size_t)(slash + 1 - prog), "perm/suid");
    int pfd[2];
    CHECK(pipe(pfd) == 0);
    pid_t tracer = fork();
    if (tracer == 0) {
        if (setgid(1000) != 0 || setuid(1000) != 0)
            _exit(100);
        pid_t pid = fork();
        if (pid == 0) {
            dup2(pfd[1], 1);
            if (ptrace(PTRACE_TRACEME, 0, 0, 0) != 0)
                _exit(101);
            raise(SIGSTOP);
            execl(prog, prog, (char *)0);
            _exit(102);
        }
        int s = 0, sig = 0;
        for (;;) {
            if (waitpid(pid, &s, 0) != pid)
                _exit(103);
            if (!WIFSTOPPED(s))
                break;
            sig = WSTOPSIG(s) == SIGTRAP || WSTOPSIG(s) == SIGSTOP ? 0 : WSTOPSIG(s);
            ptrace(PTRACE_CONT, pid, 0, (void *)(long)sig);
        }
        _exit(WIFEXITED(s) ? WEXITSTATUS(s) : 104);
    }
    close(pfd[1]);
    char out[256] = "";
    ssize_t n, got = 0;
    while ((n = read(pfd[0], out + got, sizeof out - 1 - (size_t)got)) > 0)
        got += n;
    close(pfd[0]);
    int st = wait_for(tracer, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(strncmp(out, "uid=1000,1000,1000 ", 19) == 0);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "exit7") == 0)
        _exit(7);
    vktest_reset_signals();
    test_setid_exec(argv[0]);
    test_attach_detach();
    test_seize_interrupt();
    test_exitkill();
    test_seize_stopped_listen();
    test_seize_startup(argv[0]);
    test_attach_sleeping();
    test_permissions();
    test_process_vm();
    return vktest_done();
}
