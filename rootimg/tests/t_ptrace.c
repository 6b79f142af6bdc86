/* t_ptrace: the core of ptrace(2) — PTRACE_TRACEME, the stop statuses wait(2) reports, CONT
 * with signal suppression and injection, PEEK/POKE of data and of struct user, GETREGS and
 * SETREGS, GETSIGINFO, syscall-entry and -exit stops with PTRACE_O_TRACESYSGOOD,
 * PTRACE_GET_SYSCALL_INFO, skipping and changing a system call, and waitid's CLD_TRAPPED;
 * PTRACE_SYSEMU, GETSIGMASK/SETSIGMASK, SETSIGINFO, GETREGSET of NT_X86_XSTATE; PEEKSIGINFO
 * and ARCH_PRCTL. */
#include "vktest.h"

#include <elf.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>

#define AUDIT_ARCH_X86_64 0xc000003eu

static volatile long word = 0x1122334455667788L;
static volatile int handled;

/* The child's side: become traced and stop. */
static void traceme_and_stop(void)
{
    if (ptrace(PTRACE_TRACEME, 0, 0, 0) != 0)
        _exit(100);
    syscall(SYS_kill, getpid(), SIGSTOP);
}

/* Wait for `pid` and return its status (-1 on error). */
static int wait_for(pid_t pid)
{
    int st = 0;
    pid_t r;
    do
        r = waitpid(pid, &st, __WALL);
    while (r < 0 && errno == EINTR);
    return r == pid ? st : -1;
}

/* TRACEME, a signal-delivery-stop, PEEK/POKE, GETREGS/SETREGS, PEEKUSER/POKEUSER, CONT. */
static void test_traceme_regs(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        traceme_and_stop();
        /* Resumed: the tracer made kill's result 43 and changed `word`. */
        long r = syscall(SYS_kill, getpid(), SIGSTOP);
        _exit((r == 43 ? 1 : 0) | (word == 0x55 ? 2 : 0));
    }
    int st = wait_for(pid);
    CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP);
    CHECK((st & 0xffff) == 0x137f);
    /* The first stop: kill(2) returned 0; the tracer only looks. */
    struct user_regs_struct regs;
    CHECK(ptrace(PTRACE_GETREGS, pid, 0, &regs) == 0);
    CHECK(regs.orig_rax == SYS_kill);
    CHECK(regs.rax == 0);
    CHECK(regs.cs == 0x33 && regs.ss == 0x2b);
    errno = 0;
    long w = ptrace(PTRACE_PEEKDATA, pid, (void *)&word, 0);
    CHECK(errno == 0 && w == 0x1122334455667788L);
    CHECK(ptrace(PTRACE_POKEDATA, pid, (void *)&word, (void *)0x55) == 0);
    errno = 0;
    CHECK(ptrace(PTRACE_PEEKTEXT, pid, (void *)&word, 0) == 0x55 && errno == 0);
    /* A bad address: EIO (PEEK) and EIO/EFAULT (POKE), as Linux. */
    errno = 0;
    CHECK(ptrace(PTRACE_PEEKDATA, pid, (void *)8, 0) == -1 && errno == EIO);
    CHECK(ptrace(PTRACE_POKEDATA, pid, (void *)8, 0) == -1 && (errno == EIO || errno == EFAULT));
    /* PEEKUSER reads struct user's registers. */
    errno = 0;
    CHECK(ptrace(PTRACE_PEEKUSER, pid, (void *)offsetof(struct user, regs.rip), 0) == (long)regs.rip);
    CHECK(errno == 0);
    errno = 0;
    CHECK(ptrace(PTRACE_PEEKUSER, pid, (void *)offsetof(struct user, regs.orig_rax), 0) == SYS_kill);
    /* A misaligned or out-of-range offset: EIO. */
    errno = 0;
    CHECK(ptrace(PTRACE_PEEKUSER, pid, (void *)3, 0) == -1 && errno == EIO);
    errno = 0;
    CHECK(ptrace(PTRACE_PEEKUSER, pid, (void *)4096, 0) == -1 && errno == EIO);
    CHECK(ptrace(PTRACE_CONT, pid, 0, 0) == 0);
    /* The second stop: make kill(2) return 42 with SETREGS, then 43 with POKEUSER. */
    st = wait_for(pid);
    CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP);
    CHECK(ptrace(PTRACE_GETREGS, pid, 0, &regs) == 0);
    regs.rax = 42;
    CHECK(ptrace(PTRACE_SETREGS, pid, 0, &regs) == 0);
    errno = 0;
    CHECK(ptrace(PTRACE_PEEKUSER, pid, (void *)offsetof(struct user, regs.rax), 0) == 42);
    CHECK(ptrace(PTRACE_POKEUSER, pid, (void *)offsetof(struct user, regs.rax), (void *)43) == 0);
    CHECK(ptrace(PTRACE_CONT, pid, 0, 0) == 0);
    st = wait_for(pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 3);
    /* Gone: ESRCH. */
    errno = 0;
    CHECK(ptrace(PTRACE_PEEKDATA, pid, (void *)&word, 0) == -1 && errno == ESRCH);
}

static void on_usr1(int sig)
{
    (void)sig;
    handled++;
}

/* Signal-delivery-stops: GETSIGINFO, suppression (CONT 0), injection (CONT sig), a fatal
 * signal passed on. */
static void test_signals(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGUSR1, on_usr1);
        traceme_and_stop();
        syscall(SYS_kill, getpid(), SIGUSR1); /* suppressed */
        syscall(SYS_kill, getpid(), SIGUSR2); /* replaced by SIGUSR1 */
        int h = handled;
        syscall(SYS_kill, getpid(), SIGTERM); /* passed on: the child dies */
        _exit(h == 1 ? 0 : 10 + h);
    }
    int st = wait_for(pid);
    CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    CHECK(ptrace(PTRACE_GETSIGINFO, pid, 0, &si) == 0);
    CHECK(si.si_signo == SIGSTOP && si.si_code == SI_USER && si.si_pid == pid);
    CHECK(ptrace(PTRACE_CONT, pid, 0, 0) == 0);
    st = wait_for(pid);
    CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == SIGUSR1);
    CHECK(ptrace(PTRACE_GETSIGINFO, pid, 0, &si) == 0);
    CHECK(si.si_signo == SIGUSR1 && si.si_code == SI_USER);
    CHECK(ptrace(PTRACE_CONT, pid, 0, 0) == 0);
    st = wait_for(pid);
    CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == SIGUSR2);
    CHECK(ptrace(PTRACE_CONT, pid, 0, (void *)SIGUSR1) == 0);
    st = wait_for(pid);
    CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == SIGTERM);
    /* An invalid signal to inject: EIO. */
    errno = 0;
    CHECK(ptrace(PTRACE_CONT, pid, 0, (void *)1000) == -1 && errno == EIO);
    CHECK(ptrace(PTRACE_CONT, pid, 0, (void *)SIGTERM) == 0);
    st = wait_for(pid);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
}

/* A tracer sees even the signals the tracee ignores (SIG_IGN, or ignored by default as
 * SIGCHLD is): each stops it; continued without the signal, it is thrown away. */
static void test_ignored_signals_stop(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGUSR2, SIG_IGN);
        traceme_and_stop();
        syscall(SYS_kill, getpid(), SIGUSR2);
        syscall(SYS_kill, getpid(), SIGCHLD);
        _exit(7);
    }
    int st = wait_for(pid);
    CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP);
    CHECK(ptrace(PTRACE_CONT, pid, 0, 0) == 0);
    st = wait_for(pid);
    CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == SIGUSR2);
    CHECK(ptrace(PTRACE_CONT, pid, 0, 0) == 0);
    st = wait_for(pid);
    CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == SIGCHLD);
    CHECK(ptrace(PTRACE_CONT, pid, 0, 0) == 0);
    st = wait_for(pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 7);
}

/* Syscall-entry and -exit stops, TRACESYSGOOD, GET_SYSCALL_INFO, a skipped call and a changed
 * number, and waitid(2)'s view of a ptrace stop. */
static void test_syscall_stops(void)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        traceme_and_stop();
        long a = syscall(SYS_getppid);  /* traced as it is */
        long b = syscall(SYS_getpid);   /* skipped: returns 77 */
        long c = syscall(SYS_getppid);  /* turned into getpid */
        _exit((a == parent ? 1 : 0) | (b == 77 ? 2 : 0) | (c == getpid() ? 4 : 0));
    }
    int st = wait_for(pid);
    CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP);
    CHECK(ptrace(PTRACE_SETOPTIONS, pid, 0, (void *)PTRACE_O_TRACESYSGOOD) == 0);
    errno = 0;
    CHECK(ptrace(PTRACE_SETOPTIONS, pid, 0, (void *)0x80000000ul) == -1 && errno == EINVAL);
    struct __ptrace_syscall_info info;
    /* Outside a syscall stop: op NONE. */
    memset(&info, 0xff, sizeof info);
    long n = ptrace(PTRACE_GET_SYSCALL_INFO, pid, (void *)sizeof info, &info);
    CHECK(n > 0 && info.op == PTRACE_SYSCALL_INFO_NONE && info.arch == AUDIT_ARCH_X86_64);

    /* getppid: entry, then exit. */
    CHECK(ptrace(PTRACE_SYSCALL, pid, 0, 0) == 0);
    st = wait_for(pid);
    CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == (SIGTRAP | 0x80));
    struct user_regs_struct regs;
    CHECK(ptrace(PTRACE_GETREGS, pid, 0, &regs) == 0);
    CHECK(regs.orig_rax == SYS_getppid && (long)regs.rax == -ENOSYS);
    memset(&info, 0, sizeof info);
    n = ptrace(PTRACE_GET_SYSCALL_INFO, pid, (void *)sizeof info, &info);
    CHECK(n >= (long)offsetof(struct __ptrace_syscall_info, entry.args) + 6 * 8);
    CHECK(info.op == PTRACE_SYSCALL_INFO_ENTRY && info.arch == AUDIT_ARCH_X86_64);
    CHECK(info.entry.nr == SYS_getppid && info.instruction_pointer == regs.rip);
    CHECK(info.stack_pointer == regs.rsp);
    CHECK(ptrace(PTRACE_SYSCALL, pid, 0, 0) == 0);
    /* This stop seen through waitid: CLD_TRAPPED with the stop's code. */
    siginfo_t wi;
    memset(&wi, 0, sizeof wi);
    CHECK(waitid(P_PID, pid, &wi, WSTOPPED | __WALL) == 0);
    CHECK(wi.si_pid == pid && wi.si_code == CLD_TRAPPED && wi.si_status == (SIGTRAP | 0x80));
    CHECK(ptrace(PTRACE_GETREGS, pid, 0, &regs) == 0);
    CHECK(regs.orig_rax == SYS_getppid && (long)regs.rax == parent);
    memset(&info, 0, sizeof info);
    ptrace(PTRACE_GET_SYSCALL_INFO, pid, (void *)sizeof info, &info);
    CHECK(info.op == PTRACE_SYSCALL_INFO_EXIT && info.exit.rval == parent && info.exit.is_error == 0);

    /* getpid skipped: orig_rax -1 at entry, rax as the tracer leaves it. */
    CHECK(ptrace(PTRACE_SYSCALL, pid, 0, 0) == 0);
    st = wait_for(pid);
    CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == (SIGTRAP | 0x80));
    CHECK(ptrace(PTRACE_GETREGS, pid, 0, &regs) == 0);
    CHECK(regs.orig_rax == SYS_getpid);
    regs.orig_rax = -1;
    regs.rax = 77;
    CHECK(ptrace(PTRACE_SETREGS, pid, 0, &regs) == 0);
    CHECK(ptrace(PTRACE_SYSCALL, pid, 0, 0) == 0);
    st = wait_for(pid);
    CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == (SIGTRAP | 0x80));
    CHECK(ptrace(PTRACE_GETREGS, pid, 0, &regs) == 0);
    CHECK(regs.rax == 77);

    /* getppid turned into getpid. */
    CHECK(ptrace(PTRACE_SYSCALL, pid, 0, 0) == 0);
    st = wait_for(pid);
    CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == (SIGTRAP | 0x80));
    CHECK(ptrace(PTRACE_POKEUSER, pid, (void *)offsetof(struct user, regs.orig_rax), (void *)SYS_getpid) == 0);
    CHECK(ptrace(PTRACE_SYSCALL, pid, 0, 0) == 0);
    st = wait_for(pid);
    CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == (SIGTRAP | 0x80));
    memset(&info, 0, sizeof info);
    ptrace(PTRACE_GET_SYSCALL_INFO, pid, (void *)sizeof info, &info);
    CHECK(info.op == PTRACE_SYSCALL_INFO_EXIT && info.exit.rval == pid);

    /* The rest runs free. */
    CHECK(ptrace(PTRACE_CONT, pid, 0, 0) == 0);
    st = wait_for(pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 7);
}

static volatile int got_code, got_value;

static void on_usr1_info(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    got_code = si->si_code;
    got_value = si->si_value.sival_int;
}

/* SYSEMU (calls stop at entry and never run), the signal mask, SETSIGINFO, the xsave state. */
static void test_sysemu_sigmask_siginfo(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_usr1_info;
        sa.sa_flags = SA_SIGINFO;
        sigaction(SIGUSR1, &sa, 0);
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGHUP);
        sigprocmask(SIG_BLOCK, &set, 0);
        traceme_and_stop();
        long a = syscall(SYS_getpid); /* emulated: 1234 */
        long b = syscall(SYS_getpid); /* emulated: 5678 */
        sigset_t now;
        sigprocmask(SIG_BLOCK, 0, &now);
        int masked = sigismember(&now, SIGUSR2) && sigismember(&now, SIGHUP);
        syscall(SYS_kill, getpid(), SIGUSR1);
        _exit((a == 1234 ? 1 : 0) | (b == 5678 ? 2 : 0) | (masked ? 4 : 0) |
              (got_code == SI_QUEUE && got_value == 77 ? 8 : 0));
    }
    int st = wait_for(pid);
    CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP);
    /* The mask: SIGHUP blocked; add SIGUSR2. */
    uint64_t mask = 0;
    CHECK(ptrace(PTRACE_GETSIGMASK, pid, (void *)8, &mask) == 0);
    CHECK(mask & (1ull << (SIGHUP - 1)));
    errno = 0;
    CHECK(ptrace(PTRACE_GETSIGMASK, pid, (void *)4, &mask) == -1 && errno == EINVAL);
    mask |= 1ull << (SIGUSR2 - 1);
    CHECK(ptrace(PTRACE_SETSIGMASK, pid, (void *)8, &mask) == 0);
    /* The xsave image: longer than fxsave, XCR0 (x87 and SSE at least) in the first
     * software word. */
    static unsigned char xs[16384];
    struct iovec iov = {xs, sizeof xs};
    CHECK(ptrace(PTRACE_GETREGSET, pid, (void *)NT_X86_XSTATE, &iov) == 0);
    uint64_t xcr0 = 0;
    memcpy(&xcr0, xs + 464, sizeof xcr0);
    CHECK(iov.iov_len > 576 && (xcr0 & 3) == 3);
    CHECK(ptrace(PTRACE_SETOPTIONS, pid, 0, (void *)PTRACE_O_TRACESYSGOOD) == 0);
    for (int i = 0; i < 2; i++) {
        CHECK(ptrace(PTRACE_SYSEMU, pid, 0, 0) == 0);
        st = wait_for(pid);
        CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == (SIGTRAP | 0x80));
        struct user_regs_struct regs;
        CHECK(ptrace(PTRACE_GETREGS, pid, 0, &regs) == 0);
        CHECK(regs.orig_rax == SYS_getpid);
        regs.rax = i ? 5678 : 1234;
        CHECK(ptrace(PTRACE_SETREGS, pid, 0, &regs) == 0);
    }
    CHECK(ptrace(PTRACE_CONT, pid, 0, 0) == 0);
    st = wait_for(pid);
    CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == SIGUSR1);
    siginfo_t si;
    CHECK(ptrace(PTRACE_GETSIGINFO, pid, 0, &si) == 0);
    si.si_code = SI_QUEUE;
    si.si_value.sival_int = 77;
    CHECK(ptrace(PTRACE_SETSIGINFO, pid, 0, &si) == 0);
    CHECK(ptrace(PTRACE_CONT, pid, 0, (void *)SIGUSR1) == 0);
    st = wait_for(pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 15);
}

#ifndef PTRACE_ARCH_PRCTL
#define PTRACE_ARCH_PRCTL 30
#endif
#define ARCH_GET_FS 0x1003 /* asm/prctl.h, which musl's headers lack */

/* PEEKSIGINFO: the thread's and the process's queued signals; ARCH_PRCTL's fs base. */
static void test_peeksiginfo_arch_prctl(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGUSR1);
        sigaddset(&set, SIGRTMIN);
        sigprocmask(SIG_BLOCK, &set, 0);
        union sigval v1 = {.sival_int = 1}, v2 = {.sival_int = 2};
        sigqueue(getpid(), SIGRTMIN, v1);
        sigqueue(getpid(), SIGRTMIN, v2);
        syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), SIGUSR1);
        traceme_and_stop();
        _exit(0);
    }
    int st = wait_for(pid);
    CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP);
    siginfo_t si[8];
    struct __ptrace_peeksiginfo_args a = {.off = 0, .flags = PTRACE_PEEKSIGINFO_SHARED, .nr = 8};
    memset(si, 0, sizeof si);
    CHECK(ptrace(PTRACE_PEEKSIGINFO, pid, &a, si) == 2);
    CHECK(si[0].si_signo == SIGRTMIN && si[0].si_value.sival_int == 1);
    CHECK(si[1].si_signo == SIGRTMIN && si[1].si_value.sival_int == 2);
    a.off = 1;
    CHECK(ptrace(PTRACE_PEEKSIGINFO, pid, &a, si) == 1 && si[0].si_value.sival_int == 2);
    a.off = 0;
    a.flags = 0;
    CHECK(ptrace(PTRACE_PEEKSIGINFO, pid, &a, si) == 1 && si[0].si_signo == SIGUSR1);
    a.flags = 2;
    errno = 0;
    CHECK(ptrace(PTRACE_PEEKSIGINFO, pid, &a, si) == -1 && errno == EINVAL);
    struct user_regs_struct regs;
    CHECK(ptrace(PTRACE_GETREGS, pid, 0, &regs) == 0);
    unsigned long fs = 0;
    CHECK(ptrace(PTRACE_ARCH_PRCTL, pid, &fs, (void *)ARCH_GET_FS) == 0);
    CHECK(fs == regs.fs_base && fs != 0);
    CHECK(ptrace(PTRACE_KILL, pid, 0, 0) == 0);
    st = wait_for(pid);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

/* Requests that are not allowed: a process that is not traced, TRACEME twice, and an unknown
 * request. */
static void test_refusals(void)
{
    errno = 0;
    CHECK(ptrace(PTRACE_PEEKDATA, getppid(), (void *)&word, 0) == -1 && errno == ESRCH);
    errno = 0;
    CHECK(ptrace(PTRACE_CONT, 999999, 0, 0) == -1 && errno == ESRCH);
    pid_t pid = fork();
    if (pid == 0) {
        if (ptrace(PTRACE_TRACEME, 0, 0, 0) != 0)
            _exit(1);
        _exit(ptrace(PTRACE_TRACEME, 0, 0, 0) == -1 && errno == EPERM ? 0 : 2);
    }
    int st = wait_for(pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    pid = fork();
    if (pid == 0) {
        traceme_and_stop();
        _exit(0);
    }
    st = wait_for(pid);
    CHECK(WIFSTOPPED(st));
    errno = 0;
    CHECK(ptrace(0x7777, pid, 0, 0) == -1 && errno == EIO);
    CHECK(ptrace(PTRACE_CONT, pid, 0, 0) == 0);
    st = wait_for(pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

int main(void)
{
    vktest_reset_signals();
    test_traceme_regs();
    test_signals();
    test_ignored_signals_stop();
    test_syscall_stops();
    test_sysemu_sigmask_siginfo();
    test_peeksiginfo_arch_prctl();
    test_refusals();
    return vktest_done();
}
