/*
 * t_proc — processes: creation, waiting, identity, groups and sessions, limits, system info.
 *
 * Covers: fork + wait4/waitpid exit statuses (only the low 8 bits survive), exit_group, a child
 * killed by a signal (WIFSIGNALED/WTERMSIG), wait4's rusage, vfork (the parent is suspended
 * until the child's _exit and sees its writes) and vfork + execve, a vfork child's register
 * changes (xmm0, MXCSR, fs base) never reaching its parent, posix_spawn (a vfork-style clone)
 * with and without a program to run, waitpid for a specific pid /
 * any child / a process group, WNOHANG, ECHILD, waitid(P_ALL/P_PID, WEXITED) siginfo fields,
 * WNOWAIT, SIGCHLD set to SIG_IGN auto-reaping children, kill(pid, 0), getpid/getppid/gettid,
 * setpgid/getpgid/setsid/getsid (and their EPERM/ESRCH cases, EACCES for a child that exec'd), orphan reparenting (only "no
 * longer the old parent" is asserted: natively a subreaper may adopt it; under vk init, pid 1),
 * uname, sysinfo, getrlimit/setrlimit/prlimit64 (RLIMIT_NOFILE enforced with EMFILE), getrandom,
 * sched_yield, sched_getaffinity, umask, credentials (getuid…getresgid, getgroups); the
 * arguments each call refuses (wait4's and waitid's unknown options, id types, non-positive
 * pids and negative groups; wait4 of -INT_MIN; getrandom's unknown flags and RANDOM with
 * INSECURE; prlimit64's resources and an RLIMIT_NOFILE past nr_open; poll past RLIMIT_NOFILE;
 * prctl's unknown options and signals) and what clone(2) ignores (its flags' upper half).
 *
 * Linux-specific: the raw sched_getaffinity returns the mask size in bytes; prlimit64; waitid's
 * siginfo layout; SIGCHLD = SIG_IGN making wait return ECHILD.
 */
#include "vktest.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>

/* A child that must not leave a core file behind when it dies of a signal. */
static void no_core_dump(void)
{
    struct rlimit zero = {0, 0};
    setrlimit(RLIMIT_CORE, &zero);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0); /* best effort; may be unsupported */
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

static void test_fork_exit_status(void)
{
    const int codes[] = {0, 1, 42, 255};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        pid_t pid = fork();
        if (pid == 0)
            _exit(codes[i]);
        int status = -1;
        CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
        CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == codes[i], "code %d status %#x",
               codes[i], status);
    }
    /* Only the low 8 bits of the exit code survive. */
    pid_t pid = fork();
    if (pid == 0)
        _exit(256 + 5);
    int status = -1;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 5);

    /* exit_group directly; wait4 with rusage. */
    pid = fork();
    if (pid == 0)
        syscall(SYS_exit_group, 3);
    struct rusage ru;
    memset(&ru, 0xff, sizeof ru);
    CHECK(wait4(pid, &status, 0, &ru) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 3);
    CHECK(ru.ru_utime.tv_sec >= 0 && ru.ru_utime.tv_usec >= 0 && ru.ru_utime.tv_usec < 1000000);
    CHECK(ru.ru_stime.tv_sec >= 0 && ru.ru_stime.tv_usec >= 0 && ru.ru_stime.tv_usec < 1000000);

    /* exit() (atexit handlers, stdio flush) rather than _exit() in the child. */
    pid = fork();
    if (pid == 0)
        exit(7);
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 7);
}

static void test_killed_by_signal(void)
{
    int pipe_fds[2];
    REQUIRE(pipe(pipe_fds) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(pipe_fds[1]);
        char c;
        (void)read(pipe_fds[0], &c, 1); /* blocks until killed */
        _exit(99);
    }
    close(pipe_fds[0]);
    CHECK(kill(pid, 0) == 0);
    CHECK(kill(pid, SIGKILL) == 0);
    int status = -1;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    CHECK(!WIFEXITED(status));
    CHECK(kill(pid, 0) == -1 && errno == ESRCH); /* reaped: gone */
    close(pipe_fds[1]);

    pid = fork();
    if (pid == 0) {
        no_core_dump();
        abort();
    }
    CHECK(waitpid(pid, &status, 0) == pid && WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
}

static void test_vfork(void)
{
    static volatile int written_by_child;
    written_by_child = 0;
    pid_t parent = getpid();
    pid_t pid = vfork();
    if (pid == 0) {
        /* Shared memory until _exit; only async-signal-safe things here. */
        written_by_child = getppid() == parent ? 1 : 2;
        _exit(17);
    }
    CHECK(pid > 0);
    CHECK(written_by_child == 1); /* the parent resumed only after the child's _exit */
    int status = -1;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 17);

    char self[256];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    REQUIRE(len > 0);
    self[len > 0 ? len : 0] = '\0';
    char *argv[] = {"t_proc", "exit-with", "23", NULL};
    pid = vfork();
    if (pid == 0) {
        execve(self, argv, (char *[]){NULL});
        _exit(127);
    }
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 23);
}

/* A raw vfork whose child changes its SSE register xmm0, its MXCSR and its fs base (TLS)
 * before it _exits: the parent's come back as they were (under vk the child runs on its
 * parent's own stub thread, lent until it execs or exits). Returns the child's pid. */
static long vfork_changing_state(unsigned long mine, unsigned long childs, unsigned long *xmm_after, unsigned *mxcsr_after)
{
    long ret;
    unsigned long got;
    unsigned mx_mine = 0x1f80 | (1u << 13), mx_child = 0x1f80 | (3u << 13), mx_got = 0;
    __asm__ volatile(
        "ldmxcsr %[mxm]\n\t"
        "movq %[a], %%xmm0\n\t"
        "mov $58, %%eax\n\t" /* vfork */
        "syscall\n\t"
        "test %%rax, %%rax\n\t"
        "jnz 1f\n\t"
        /* The child: other values, another fs base, then exit(0) (no stack, no TLS). */
        "movq %[b], %%xmm0\n\t"
        "ldmxcsr %[mxc]\n\t"
        "mov $158, %%eax\n\t" /* arch_prctl */
        "mov $0x1002, %%edi\n\t" /* ARCH_SET_FS */
        "mov $0x12345000, %%esi\n\t"
        "syscall\n\t"
        "mov $39, %%eax\n\t" /* getpid: back in the guest once with the new fs base */
        "syscall\n\t"
        "mov $60, %%eax\n\t" /* exit */
        "xor %%edi, %%edi\n\t"
        "syscall\n\t"
        "1:\n\t"
        "movq %%xmm0, %[got]\n\t"
        "stmxcsr %[mxg]\n\t"
        : "=&a"(ret), [got] "=&r"(got), [mxg] "=m"(mx_got)
        : [a] "r"(mine), [b] "r"(childs), [mxm] "m"(mx_mine), [mxc] "m"(mx_child)
        : "rcx", "rdx", "rsi", "rdi", "r11", "xmm0", "memory");
    *xmm_after = got;
    *mxcsr_after = mx_got;
    return ret;
}

static void test_vfork_keeps_the_parents_registers(void)
{
    unsigned long fs_before = 0, fs_after = 0;
    REQUIRE(syscall(SYS_arch_prctl, 0x1003 /* ARCH_GET_FS */, &fs_before) == 0);
    int bad = 0;
    for (int i = 0; i < 20; i++) {
        unsigned long xmm = 0;
        unsigned mxcsr = 0;
        unsigned saved_mxcsr;
        __asm__ volatile("stmxcsr %0" : "=m"(saved_mxcsr));
        long pid = vfork_changing_state(0x1122334455667700UL + i, 0xdeadbeefUL, &xmm, &mxcsr);
        __asm__ volatile("ldmxcsr %0" : : "m"(saved_mxcsr));
        REQUIRE(syscall(SYS_arch_prctl, 0x1003, &fs_after) == 0);
        int status = -1;
        REQUIRE(pid > 0 && waitpid((pid_t)pid, &status, 0) == pid);
        bad += xmm != 0x1122334455667700UL + i || (mxcsr & (3u << 13)) != (1u << 13) || fs_after != fs_before ||
               !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    }
    CHECKF(bad == 0, "%d of 20 vforks changed the parent's xmm0, MXCSR or fs base", bad);
    /* errno lives in the TLS: usable as ever. */
    errno = 0;
    CHECK(close(-1) == -1 && errno == EBADF);
}

/* posix_spawn (musl's and glibc's use clone with CLONE_VM|CLONE_VFORK): children that exec,
 * and one that cannot (the error comes back to the parent). */
static void test_posix_spawn(const char *self)
{
    int bad = 0;
    for (int i = 0; i < 30; i++) {
        char code[8];
        snprintf(code, sizeof code, "%d", i);
        char *argv[] = {"t_proc", "exit-with", code, NULL};
        pid_t pid = -1;
        int st = -1;
        if (posix_spawn(&pid, self, NULL, NULL, argv, (char *[]){NULL}) != 0 || waitpid(pid, &st, 0) != pid ||
            !WIFEXITED(st) || WEXITSTATUS(st) != i)
            bad++;
    }
    CHECKF(bad == 0, "%d of 30 spawned children did not exit with their code", bad);
    pid_t pid = -1;
    char *argv[] = {"nowhere", NULL};
    int err = posix_spawn(&pid, "/nonexistent/program", NULL, NULL, argv, (char *[]){NULL});
    CHECKF(err == ENOENT, "posix_spawn of a missing program: %d", err);
}

static void test_wait_variants(void)
{
    int status = -1;
    CHECK(waitpid(-1, &status, WNOHANG) == -1 && errno == ECHILD);
    CHECK(wait(&status) == -1 && errno == ECHILD);

    /* WNOHANG while the child is still alive, then the real wait. */
    int pipe_fds[2];
    REQUIRE(pipe(pipe_fds) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(pipe_fds[1]);
        char c;
        _exit(read(pipe_fds[0], &c, 1) == 0 ? 4 : 5); /* exits once the parent closes */
    }
    close(pipe_fds[0]);
    CHECK(waitpid(pid, &status, WNOHANG) == 0);
    close(pipe_fds[1]);
    CHECK(waitpid(pid, &status, 0) == pid && WEXITSTATUS(status) == 4);

    /* Several children: wait for a particular one, then any. */
    pid_t kids[3];
    for (int i = 0; i < 3; i++) {
        kids[i] = fork();
        if (kids[i] == 0)
            _exit(10 + i);
    }
    CHECK(waitpid(kids[2], &status, 0) == kids[2] && WEXITSTATUS(status) == 12);
    int seen = 0;
    for (int i = 0; i < 2; i++) {
        pid_t got = wait(&status);
        if (got == kids[0] && WEXITSTATUS(status) == 10)
            seen |= 1;
        if (got == kids[1] && WEXITSTATUS(status) == 11)
            seen |= 2;
    }
    CHECK(seen == 3);

    /* waitid(P_ALL, WEXITED) fills in siginfo. */
    pid = fork();
    if (pid == 0)
        _exit(33);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    CHECK(waitid(P_ALL, 0, &si, WEXITED) == 0);
    CHECK(si.si_signo == SIGCHLD);
    CHECK(si.si_code == CLD_EXITED);
    CHECK(si.si_pid == pid);
    CHECK(si.si_status == 33);
    CHECK(si.si_uid == getuid());

    /* WNOWAIT leaves the child waitable; P_PID and CLD_KILLED. */
    pid = fork();
    if (pid == 0) {
        for (;;)
            pause();
    }
    CHECK(kill(pid, SIGTERM) == 0);
    memset(&si, 0, sizeof si);
    CHECK(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) == 0);
    CHECK(si.si_code == CLD_KILLED && si.si_status == SIGTERM && si.si_pid == pid);
    memset(&si, 0, sizeof si);
    CHECK(waitid(P_PID, (id_t)pid, &si, WEXITED) == 0 && si.si_pid == pid);
    CHECK(waitid(P_PID, (id_t)pid, &si, WEXITED) == -1 && errno == ECHILD);

    /* waitid with WNOHANG and nothing ready: returns 0 with si_pid 0. */
    REQUIRE(pipe(pipe_fds) == 0);
    pid = fork();
    if (pid == 0) {
        close(pipe_fds[1]);
        char c;
        _exit(read(pipe_fds[0], &c, 1) == 0 ? 0 : 1);
    }
    close(pipe_fds[0]);
    memset(&si, 0xff, sizeof si);
    CHECK(waitid(P_ALL, 0, &si, WEXITED | WNOHANG) == 0 && si.si_pid == 0);
    close(pipe_fds[1]);
    CHECK(waitpid(pid, &status, 0) == pid && WEXITSTATUS(status) == 0);
    CHECK(waitid(P_ALL, 0, &si, 0) == -1 && errno == EINVAL); /* no state requested */
}

static void test_sigchld_ignored_autoreaps(void)
{
    struct sigaction ign = {.sa_handler = SIG_IGN}, old;
    REQUIRE(sigaction(SIGCHLD, &ign, &old) == 0);
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    int status;
    /* With SIGCHLD ignored, the child is reaped by the kernel: wait blocks until it is gone
     * and then fails with ECHILD. */
    CHECK(waitpid(pid, &status, 0) == -1 && errno == ECHILD);
    REQUIRE(sigaction(SIGCHLD, &old, NULL) == 0);
}

static void test_ids(void)
{
    pid_t me = getpid();
    CHECK(me > 0);
    CHECK(syscall(SYS_gettid) == me); /* the main thread's tid is the pid */
    CHECK(getppid() >= 0 && getppid() != me); /* 0 when run as init (pid 1) */
    pid_t pid = fork();
    if (pid == 0) {
        int ok = getppid() == me && getpid() != me && syscall(SYS_gettid) == getpid();
        _exit(ok ? 0 : 1);
    }
    int status = -1;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* Each child step reports a distinct exit code on failure. */
static void test_groups_and_sessions(void)
{
    CHECK(getpgid(0) == getpgrp());
    CHECK(getsid(0) == getsid(getpid()));
    CHECK(getsid(0) >= 0); /* 0 is possible for init */
    CHECK(getpgid(0x7ffffff0) == -1 && errno == ESRCH);
    CHECK(getsid(0x7ffffff0) == -1 && errno == ESRCH);

    pid_t pid = fork();
    if (pid == 0) {
        pid_t self = getpid();
        if (setpgid(0, 0) != 0 || getpgid(0) != self)
            _exit(1);
        /* A process-group leader may not create a session. */
        if (setsid() != -1 || errno != EPERM)
            _exit(2);
        pid_t grandchild = fork();
        if (grandchild == 0) {
            pid_t gself = getpid();
            if (getpgid(0) != self)
                _exit(3);
            pid_t sid = setsid();
            if (sid != gself || getsid(0) != gself || getpgid(0) != gself)
                _exit(4);
            if (setsid() != -1 || errno != EPERM) /* already a leader */
                _exit(5);
            /* Moving into a process group of another session is refused. */
            if (setpgid(0, self) != -1 || errno != EPERM)
                _exit(6);
            _exit(0);
        }
        int status;
        if (waitpid(grandchild, &status, 0) != grandchild || !WIFEXITED(status))
            _exit(7);
        _exit(WEXITSTATUS(status));
    }
    int status = -1;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child step %d failed",
           WIFEXITED(status) ? WEXITSTATUS(status) : -1);

    /* The parent can put its child in a new group (before it execs); wait by group. */
    int pipe_fds[2];
    REQUIRE(pipe(pipe_fds) == 0);
    pid = fork();
    if (pid == 0) {
        close(pipe_fds[1]);
        char c;
        _exit(read(pipe_fds[0], &c, 1) == 0 ? 8 : 9);
    }
    close(pipe_fds[0]);
    CHECK(setpgid(pid, pid) == 0);
    CHECK(getpgid(pid) == pid);
    close(pipe_fds[1]);
    CHECK(waitpid(-pid, &status, 0) == pid && WEXITSTATUS(status) == 8);
    CHECK(setpgid(0x7ffffff0, 0) == -1 && errno == ESRCH);
    CHECK(setpgid(0, -1) == -1 && errno == EINVAL);

    /* Once the child has exec'd, it is no longer the parent's to move: EACCES. The child
     * execs a program that waits for the pipe to close; its comm tells it has exec'd. */
    REQUIRE(pipe(pipe_fds) == 0);
    pid = fork();
    if (pid == 0) {
        close(pipe_fds[1]);
        dup2(pipe_fds[0], 0);
        execl("/bin/cat", "cat", (char *)NULL);
        _exit(127);
    }
    close(pipe_fds[0]);
    char commpath[64], comm[32] = "";
    snprintf(commpath, sizeof commpath, "/proc/%d/comm", pid);
    for (int i = 0; i < 400 && strncmp(comm, "cat", 3) != 0; i++) {
        int fd = open(commpath, O_RDONLY);
        ssize_t n = fd >= 0 ? read(fd, comm, sizeof comm - 1) : -1;
        comm[n > 0 ? n : 0] = '\0';
        if (fd >= 0)
            close(fd);
        if (strncmp(comm, "cat", 3) != 0)
            usleep(5000);
    }
    errno = 0;
    CHECK(setpgid(pid, pid) == -1 && errno == EACCES);
    close(pipe_fds[1]);
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_orphan_reparenting(void)
{
    int pipe_fds[2];
    REQUIRE(pipe(pipe_fds) == 0);
    pid_t middle = fork();
    if (middle == 0) {
        pid_t old_parent = getpid();
        pid_t grandchild = fork();
        if (grandchild == 0) {
            /* Wait (bounded) for the middle process to exit and for us to be adopted. */
            pid_t now = old_parent;
            for (int i = 0; i < 5000 && now == old_parent; i++) {
                sleep_ms(1);
                now = getppid();
            }
            int32_t report[2] = {old_parent, now};
            (void)write(pipe_fds[1], report, sizeof report);
            _exit(0);
        }
        _exit(0);
    }
    close(pipe_fds[1]);
    int status;
    CHECK(waitpid(middle, &status, 0) == middle && WEXITSTATUS(status) == 0);
    int32_t report[2] = {0, 0};
    CHECK(read(pipe_fds[0], report, sizeof report) == (ssize_t)sizeof report);
    CHECK(report[0] == middle);
    CHECKF(report[1] != middle && report[1] > 0, "getppid after orphaning: %d (was %d)",
           (int)report[1], (int)report[0]);
    close(pipe_fds[0]);
}

static void test_uname_sysinfo(void)
{
    struct utsname u;
    CHECK(uname(&u) == 0);
    CHECK(strcmp(u.sysname, "Linux") == 0);
    CHECK(strcmp(u.machine, "x86_64") == 0);
    CHECK(u.nodename[0] != '\0');
    CHECK(u.release[0] != '\0');
    CHECK(u.version[0] != '\0');

    struct sysinfo si;
    CHECK(sysinfo(&si) == 0);
    CHECK(si.uptime >= 0);
    CHECK(si.mem_unit >= 1);
    CHECK(si.totalram > 0);
    CHECK(si.freeram <= si.totalram);
    CHECK(si.procs >= 1);
}

static void test_rlimits(void)
{
    struct rlimit old, now;
    CHECK(getrlimit(RLIMIT_NOFILE, &old) == 0);
    CHECK(old.rlim_cur <= old.rlim_max);
    CHECK(old.rlim_cur >= 20);

    struct rlimit lower = {16, old.rlim_max};
    CHECK(setrlimit(RLIMIT_NOFILE, &lower) == 0);
    CHECK(getrlimit(RLIMIT_NOFILE, &now) == 0 && now.rlim_cur == 16 &&
          now.rlim_max == old.rlim_max);
    /* The limit is enforced: descriptors 0..15 at most. */
    int fds[32], n = 0, last_errno = 0;
    for (; n < 32; n++) {
        fds[n] = open("/dev/null", O_RDONLY);
        if (fds[n] < 0) {
            last_errno = errno;
            break;
        }
    }
    CHECK(n < 32 && last_errno == EMFILE);
    CHECK(fcntl(15, F_GETFD) >= 0); /* every slot up to the limit is taken */
    CHECK(n > 0 && dup2(fds[0], 16) == -1 && errno == EBADF); /* beyond the limit */
    for (int i = 0; i < n; i++)
        close(fds[i]);

    /* Raised past 1024 (root may raise the hard limit too), descriptors go past it. */
    struct rlimit high = {4096, old.rlim_max >= 4096 ? old.rlim_max : 4096};
    CHECK(setrlimit(RLIMIT_NOFILE, &high) == 0);
    {
        CHECK(dup2(0, 3000) == 3000);
        CHECK(fcntl(0, F_DUPFD, 2500) == 2500);
        errno = 0;
        CHECK(fcntl(0, F_DUPFD, 4096) == -1 && errno == EINVAL);
        close(3000);
        close(2500);
        CHECK(setrlimit(RLIMIT_NOFILE, &lower) == 0);
    }

    /* Soft above hard is refused. */
    struct rlimit bad = {100, 50};
    CHECK(setrlimit(RLIMIT_NOFILE, &bad) == -1 && errno == EINVAL);

    /* prlimit64 on ourselves: set and fetch the old value in one call. */
    struct rlimit prev;
    CHECK(syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, &old, &prev) == 0);
    CHECK(prev.rlim_cur == 16 && prev.rlim_max == old.rlim_max);
    CHECK(getrlimit(RLIMIT_NOFILE, &now) == 0 && now.rlim_cur == old.rlim_cur);
    CHECK(syscall(SYS_prlimit64, getpid(), RLIMIT_STACK, NULL, &prev) == 0 && prev.rlim_cur > 0);
    CHECK(syscall(SYS_prlimit64, 0, 9999, NULL, &prev) == -1 && errno == EINVAL);

    /* Limits are inherited by a child. */
    struct rlimit core = {0, 0}, core_old;
    REQUIRE(getrlimit(RLIMIT_CORE, &core_old) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        if (setrlimit(RLIMIT_CORE, &core) != 0)
            _exit(1);
        pid_t g = fork();
        if (g == 0) {
            struct rlimit r;
            _exit(getrlimit(RLIMIT_CORE, &r) == 0 && r.rlim_cur == 0 && r.rlim_max == 0 ? 0 : 2);
        }
        int st;
        _exit(waitpid(g, &st, 0) == g && WIFEXITED(st) ? WEXITSTATUS(st) : 3);
    }
    int status;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_misc(void)
{
    unsigned char a[32], b[32];
    CHECK(getrandom(a, sizeof a, 0) == (ssize_t)sizeof a);
    CHECK(getrandom(b, sizeof b, GRND_NONBLOCK) == (ssize_t)sizeof b);
    CHECK(memcmp(a, b, sizeof a) != 0);
    CHECK(getrandom(a, 0, 0) == 0);
    CHECK(syscall(SYS_getrandom, a, sizeof a, 0x1000) == -1 && errno == EINVAL);

    CHECK(sched_yield() == 0);

    cpu_set_t set;
    CPU_ZERO(&set);
    CHECK(sched_getaffinity(0, sizeof set, &set) == 0);
    CHECK(CPU_COUNT(&set) >= 1);
    long bytes = syscall(SYS_sched_getaffinity, 0, sizeof set, &set);
    CHECK(bytes >= 8 && bytes <= (long)sizeof set && bytes % 8 == 0);
    CHECK(sysconf(_SC_NPROCESSORS_ONLN) >= 1);

    mode_t old = umask(022);
    CHECK(umask(077) == 022);
    CHECK(umask(old) == 077);
}

static void test_credentials(void)
{
    uid_t ruid, euid, suid;
    gid_t rgid, egid, sgid;
    CHECK(getresuid(&ruid, &euid, &suid) == 0);
    CHECK(ruid == getuid() && euid == geteuid());
    CHECK(getresgid(&rgid, &egid, &sgid) == 0);
    CHECK(rgid == getgid() && egid == getegid());
    int n = getgroups(0, NULL);
    CHECK(n >= 0);
    gid_t groups[256];
    if (n >= 0 && n <= 256)
        CHECK(getgroups(n, groups) == n);
    if (n > 0)
        CHECK(getgroups(n - 1 > 0 ? n - 1 : 0, groups) == (n - 1 > 0 ? -1 : n));
    /* Setting our own ids is allowed for everyone. */
    CHECK(setuid(getuid()) == 0);
    CHECK(setgid(getgid()) == 0);
    CHECK(getuid() == ruid && geteuid() == euid);
}

static void test_argument_validation(void)
{
    /* wait4: an unknown option is EINVAL; the group -INT_MIN does not exist (ESRCH). */
    CHECK(syscall(SYS_wait4, -1, NULL, 0x10, NULL) == -1 && errno == EINVAL);
    CHECK(syscall(SYS_wait4, -1, NULL, WEXITED, NULL) == -1 && errno == EINVAL);
    CHECK(syscall(SYS_wait4, INT_MIN, NULL, WNOHANG, NULL) == -1 && errno == ESRCH);
    /* waitid: unknown option, unknown id type, pid 0, a negative group: EINVAL. */
    siginfo_t si;
    CHECK(syscall(SYS_waitid, P_ALL, 0, &si, WEXITED | 0x10, NULL) == -1 && errno == EINVAL);
    CHECK(syscall(SYS_waitid, 7, 0, &si, WEXITED, NULL) == -1 && errno == EINVAL);
    CHECK(syscall(SYS_waitid, P_PID, 0, &si, WEXITED, NULL) == -1 && errno == EINVAL);
    CHECK(syscall(SYS_waitid, P_PGID, -5, &si, WEXITED, NULL) == -1 && errno == EINVAL);

    /* getrandom: GRND_RANDOM and GRND_INSECURE exclude each other. */
    unsigned char b[8];
    CHECK(syscall(SYS_getrandom, b, sizeof b, GRND_RANDOM | GRND_INSECURE) == -1 && errno == EINVAL);

    /* prlimit64: no resource RLIM_NLIMITS; no RLIMIT_NOFILE hard limit past fs.nr_open, even
     * for root (1 << 40 is past the largest nr_open Linux allows). */
    struct rlimit prev, huge = {16, 1UL << 40};
    CHECK(syscall(SYS_prlimit64, 0, RLIM_NLIMITS, NULL, &prev) == -1 && errno == EINVAL);
    CHECK(syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, &huge, NULL) == -1 && errno == EPERM);

    /* poll: more entries than RLIMIT_NOFILE allows descriptors is EINVAL. */
    struct rlimit nofile, low;
    REQUIRE(getrlimit(RLIMIT_NOFILE, &nofile) == 0);
    low = nofile;
    low.rlim_cur = 8;
    REQUIRE(setrlimit(RLIMIT_NOFILE, &low) == 0);
    struct pollfd pf[9];
    for (int i = 0; i < 9; i++)
        pf[i] = (struct pollfd){.fd = -1, .events = POLLIN};
    CHECK(poll(pf, 9, 0) == -1 && errno == EINVAL);
    CHECK(poll(pf, 8, 0) == 0);
    REQUIRE(setrlimit(RLIMIT_NOFILE, &nofile) == 0);

    /* prctl: an unknown option, a signal past 64 or with high bits: EINVAL. */
    CHECK(prctl(0x7fff0000, 0, 0, 0, 0) == -1 && errno == EINVAL);
    CHECK(syscall(SYS_prctl, PR_SET_PDEATHSIG, 65UL, 0UL, 0UL, 0UL) == -1 && errno == EINVAL);
    CHECK(syscall(SYS_prctl, PR_SET_PDEATHSIG, 0x100000001UL, 0UL, 0UL, 0UL) == -1 && errno == EINVAL);
    CHECK(prctl(PR_SET_PDEATHSIG, 0) == 0);

    /* clone(2) reads the low 32 bits of its flags: a bit in the upper half is ignored. */
    long pid = syscall(SYS_clone, (unsigned long)SIGCHLD | (1UL << 33), 0UL, NULL, NULL, 0UL);
    if (pid == 0)
        _exit(7);
    int status;
    CHECK(pid > 0 && waitpid((pid_t)pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 7);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "exit-with") == 0)
        _exit(atoi(argv[2]));
    vktest_reset_signals();

    test_fork_exit_status();
    test_killed_by_signal();
    test_vfork();
    test_vfork_keeps_the_parents_registers();
    {
        char self[256];
        ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
        REQUIRE(len > 0);
        self[len > 0 ? len : 0] = '\0';
        test_posix_spawn(self);
    }
    test_wait_variants();
    test_sigchld_ignored_autoreaps();
    test_ids();
    test_groups_and_sessions();
    test_orphan_reparenting();
    test_uname_sysinfo();
    test_rlimits();
    test_misc();
    test_credentials();
    test_argument_validation();
    vktest_done();
}
