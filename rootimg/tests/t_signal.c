/*
 * t_signal — signal generation, delivery, handlers, masks, waits and the signal frame.
 *
 * Covers: siginfo for kill (SI_USER), tkill/tgkill (SI_TKILL), sigqueue (SI_QUEUE + value) and a
 * child's kill (si_pid); a signal sent to oneself is handled before kill() returns; SA_SIGINFO's
 * ucontext; blocking, sigpending, delivery on unblock; the handler's mask (the signal itself and
 * sa_mask); SIGKILL/SIGSTOP unblockable and uncatchable; standard signals coalesce while
 * real-time ones queue in order (lowest first); rt_sigsuspend; sigtimedwait (timeout and pending
 * signal); SA_RESTART vs EINTR on a pipe read; sigaltstack (SS_ONSTACK, the handler's stack lies in
 * it, a stack overflow handled on it); hardware faults with exact si_code/si_addr/RIP/REG_ERR/
 * REG_TRAPNO/REG_CR2 (SIGSEGV read and write, SIGFPE FPE_INTDIV, SIGILL ILL_ILLOPN from ud2,
 * SIGTRAP from int3, SIGSEGV SI_KERNEL from a privileged instruction); a fault with SIGSEGV
 * blocked kills; the handler editing the saved registers, RIP, XMM and signal mask in the frame
 * and sigreturn honouring them; default actions (terminate, ignore, stop/continue with WUNTRACED/
 * WCONTINUED and CLD_STOPPED/CLD_CONTINUED); SIGCHLD siginfo; kill/tgkill/tkill targeting and
 * errors, process-group kill; thread-directed vs process-directed signals; SA_NODEFER nesting;
 * SA_RESETHAND; fork inheriting handlers and mask but not pending signals; FPU state (XMM, YMM
 * upper halves, MXCSR, x87 control word) preserved across a handler that clobbers it, and the
 * handler starting with the default MXCSR/x87 control word; which flags each call refuses
 * (rt_sigaction clears unknown sa_flags, SA_UNSUPPORTED among them, and keeps the rest;
 * rt_sigprocmask looks at `how` only with a new set; sigaltstack takes SS_AUTODISARM with a
 * mode and refuses other bits or two modes; kill of the group -INT_MIN is ESRCH);
 * SS_AUTODISARM: the stack is disarmed while a handler runs and comes back after it; signals sent
 * while their receiver enters sigsuspend or pause still end the sleep (no lost wake-up).
 *
 * Linux-specific: the x86-64 ucontext layout (gregs, fpregs), int3 giving SI_KERNEL with RIP
 * after the instruction, a #GP giving SIGSEGV/SI_KERNEL with si_addr 0, a handler starting with
 * a reset FPU state, a fault while its signal is blocked killing the process.
 */
#include "vktest.h"

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>

static pid_t gettid_raw(void)
{
    return (pid_t)syscall(SYS_gettid);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void no_core_dump(void)
{
    struct rlimit zero = {0, 0};
    setrlimit(RLIMIT_CORE, &zero);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0); /* best effort */
}

static int install(int sig, void (*action)(int, siginfo_t *, void *), int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = action;
    sa.sa_flags = SA_SIGINFO | flags;
    sigemptyset(&sa.sa_mask);
    return sigaction(sig, &sa, NULL);
}

static void set_default(int sig)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigaction(sig, &sa, NULL);
}

static void block(int sig, int how)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(how, &set, NULL);
}

static int is_blocked(int sig)
{
    sigset_t set;
    sigprocmask(SIG_BLOCK, NULL, &set);
    return sigismember(&set, sig);
}

static int exit_code(pid_t pid)
{
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1000 + status;
}

/* ---------------------------------------------------------------- a recording handler */

static volatile sig_atomic_t rec_count;
static volatile int rec_signo, rec_code, rec_pid, rec_uid, rec_value, rec_tid;
static volatile int rec_self_blocked, rec_usr2_blocked;
static void *volatile rec_uc;
static volatile int rec_order[8];

/* The handler may run on another thread than the one that waits for rec_count: every field
 * is written before rec_count is published (with release order), so a reader that sees the
 * new count sees the fields too. */
static void recorder(int sig, siginfo_t *si, void *uc)
{
    int n = rec_count;
    if (n < 8)
        rec_order[n] = sig * 1000 + si->si_value.sival_int;
    rec_signo = sig;
    rec_code = si->si_code;
    rec_pid = si->si_pid;
    rec_uid = (int)si->si_uid;
    rec_value = si->si_value.sival_int;
    rec_uc = uc;
    rec_tid = gettid_raw();
    rec_self_blocked = is_blocked(sig);
    rec_usr2_blocked = is_blocked(SIGUSR2);
    __atomic_store_n(&rec_count, n + 1, __ATOMIC_RELEASE);
}

static void rec_reset(void)
{
    rec_count = 0;
    rec_signo = rec_code = rec_pid = rec_uid = rec_value = rec_tid = -1;
    rec_uc = NULL;
}

/* ---------------------------------------------------------------- sources and siginfo */

static void test_siginfo_sources(void)
{
    REQUIRE(install(SIGUSR1, recorder, 0) == 0);

    rec_reset();
    CHECK(kill(getpid(), SIGUSR1) == 0);
    CHECK(rec_count == 1); /* handled before kill() returned */
    CHECK(rec_signo == SIGUSR1);
    CHECK(rec_code == SI_USER);
    CHECK(rec_pid == getpid());
    CHECK(rec_uid == (int)getuid());
    CHECK(rec_uc != NULL);
    CHECK(rec_self_blocked == 1); /* the signal is blocked during its handler */
    CHECK(!is_blocked(SIGUSR1)); /* and unblocked again after */

    rec_reset();
    CHECK(syscall(SYS_tgkill, getpid(), gettid_raw(), SIGUSR1) == 0);
    CHECK(rec_count == 1 && rec_code == SI_TKILL && rec_pid == getpid());

    rec_reset();
    CHECK(syscall(SYS_tkill, gettid_raw(), SIGUSR1) == 0);
    CHECK(rec_count == 1 && rec_code == SI_TKILL);

    rec_reset();
    CHECK(sigqueue(getpid(), SIGUSR1, (union sigval){.sival_int = 77}) == 0);
    CHECK(rec_count == 1 && rec_code == SI_QUEUE && rec_value == 77 && rec_pid == getpid());

    /* From a child: si_pid is the child's. */
    rec_reset();
    block(SIGUSR1, SIG_BLOCK);
    pid_t pid = fork();
    if (pid == 0)
        _exit(kill(getppid(), SIGUSR1) == 0 ? 0 : 1);
    CHECK(exit_code(pid) == 0);
    block(SIGUSR1, SIG_UNBLOCK);
    CHECK(rec_count == 1 && rec_pid == pid && rec_code == SI_USER);
}

static void test_errors(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    CHECK(sigaction(SIGKILL, &sa, NULL) == -1 && errno == EINVAL);
    CHECK(sigaction(SIGSTOP, &sa, NULL) == -1 && errno == EINVAL);
    CHECK(syscall(SYS_rt_sigaction, 0, NULL, &sa, 8) == -1 && errno == EINVAL);
    CHECK(syscall(SYS_rt_sigaction, 65, NULL, &sa, 8) == -1 && errno == EINVAL);
    CHECK(syscall(SYS_rt_sigaction, SIGUSR1, NULL, &sa, 4) == -1 && errno == EINVAL);
    sigset_t some;
    sigemptyset(&some);
    CHECK(syscall(SYS_rt_sigprocmask, 99, &some, NULL, 8) == -1 && errno == EINVAL);
    CHECK(kill(getpid(), 65) == -1 && errno == EINVAL);
    CHECK(kill(0x7ffffff0, SIGUSR1) == -1 && errno == ESRCH);
    CHECK(kill(getpid(), 0) == 0);
    CHECK(syscall(SYS_tgkill, getpid() + 0x100000, gettid_raw(), 0) == -1 && errno == ESRCH);
    CHECK(syscall(SYS_tgkill, 0, gettid_raw(), 0) == -1 && errno == EINVAL);

    /* SIGKILL and SIGSTOP cannot be blocked: asking is silently ignored. */
    sigset_t all, old, now;
    sigfillset(&all);
    sigaddset(&all, SIGKILL);
    sigaddset(&all, SIGSTOP);
    CHECK(syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &old, 8) == 0);
    CHECK(sigprocmask(SIG_SETMASK, &old, &now) == 0);
    CHECK(!sigismember(&now, SIGKILL) && !sigismember(&now, SIGSTOP));
    CHECK(sigismember(&now, SIGUSR1));
}

/* ---------------------------------------------------------------- masks and queuing */

static void test_mask_and_pending(void)
{
    REQUIRE(install(SIGUSR1, recorder, 0) == 0);
    rec_reset();
    block(SIGUSR1, SIG_BLOCK);
    CHECK(kill(getpid(), SIGUSR1) == 0);
    CHECK(rec_count == 0);
    sigset_t pending;
    CHECK(sigpending(&pending) == 0 && sigismember(&pending, SIGUSR1));
    block(SIGUSR1, SIG_UNBLOCK); /* delivered before sigprocmask returns */
    CHECK(rec_count == 1);
    CHECK(sigpending(&pending) == 0 && !sigismember(&pending, SIGUSR1));

    /* sa_mask is added to the mask during the handler. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = recorder;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGUSR2);
    REQUIRE(sigaction(SIGUSR1, &sa, NULL) == 0);
    rec_reset();
    raise(SIGUSR1);
    CHECK(rec_count == 1 && rec_usr2_blocked == 1);
    CHECK(!is_blocked(SIGUSR2));

    /* The old action is reported back exactly. */
    struct sigaction old;
    CHECK(sigaction(SIGUSR1, NULL, &old) == 0);
    CHECK(old.sa_sigaction == recorder && (old.sa_flags & SA_SIGINFO));
    CHECK(sigismember(&old.sa_mask, SIGUSR2) && !sigismember(&old.sa_mask, SIGUSR1));
}

static void test_queuing(void)
{
    int rt = SIGRTMIN;
    REQUIRE(install(SIGUSR1, recorder, 0) == 0);
    REQUIRE(install(rt, recorder, 0) == 0);
    REQUIRE(install(rt + 1, recorder, 0) == 0);

    /* Three SIGUSR1 while blocked: delivered once. */
    rec_reset();
    block(SIGUSR1, SIG_BLOCK);
    for (int i = 0; i < 3; i++)
        kill(getpid(), SIGUSR1);
    block(SIGUSR1, SIG_UNBLOCK);
    CHECK(rec_count == 1);

    /* Three queued real-time signals: all delivered, in the order sent. */
    rec_reset();
    block(rt, SIG_BLOCK);
    for (int i = 1; i <= 3; i++)
        sigqueue(getpid(), rt, (union sigval){.sival_int = i});
    block(rt, SIG_UNBLOCK);
    CHECK(rec_count == 3);
    CHECK(rec_order[0] == rt * 1000 + 1 && rec_order[1] == rt * 1000 + 2 &&
          rec_order[2] == rt * 1000 + 3);

    /* Lower-numbered real-time signals first. Each handler blocks the other signal: without
     * that, Linux sets up both frames at once and the later (higher) one runs first. */
    rec_reset();
    sigset_t both, old;
    sigemptyset(&both);
    sigaddset(&both, rt);
    sigaddset(&both, rt + 1);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = recorder;
    sa.sa_flags = SA_SIGINFO;
    sa.sa_mask = both;
    REQUIRE(sigaction(rt, &sa, NULL) == 0 && sigaction(rt + 1, &sa, NULL) == 0);
    sigprocmask(SIG_BLOCK, &both, &old);
    sigqueue(getpid(), rt + 1, (union sigval){.sival_int = 5});
    sigqueue(getpid(), rt, (union sigval){.sival_int = 6});
    sigprocmask(SIG_SETMASK, &old, NULL);
    CHECK(rec_count == 2);
    CHECK(rec_order[0] == rt * 1000 + 6 && rec_order[1] == (rt + 1) * 1000 + 5);
    set_default(rt);
    set_default(rt + 1);
}

static void test_sigsuspend(void)
{
    REQUIRE(install(SIGUSR1, recorder, 0) == 0);
    rec_reset();
    block(SIGUSR1, SIG_BLOCK);
    pid_t pid = fork();
    if (pid == 0)
        _exit(kill(getppid(), SIGUSR1) == 0 ? 0 : 1);
    sigset_t wait_mask;
    sigprocmask(SIG_BLOCK, NULL, &wait_mask);
    sigdelset(&wait_mask, SIGUSR1);
    CHECK(sigsuspend(&wait_mask) == -1 && errno == EINTR);
    CHECK(rec_count == 1 && rec_pid == pid);
    CHECK(is_blocked(SIGUSR1)); /* the old mask is back */
    CHECK(exit_code(pid) == 0);
    block(SIGUSR1, SIG_UNBLOCK);

    /* pause() returns EINTR after a handler ran. */
    rec_reset();
    pid = fork();
    if (pid == 0) {
        /* Keep signalling until the parent is (certainly) in pause(); it kills us then. */
        for (int i = 0; i < 5000; i++) {
            kill(getppid(), SIGUSR1);
            sleep_ms(1);
        }
        _exit(1);
    }
    CHECK(pause() == -1 && errno == EINTR);
    CHECK(rec_count >= 1);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* Signals sent as their receiver goes to sleep still end the sleep (a wake-up must not be lost
 * between the sleeper's look for a pending signal and its sleep): a child waits in sigsuspend
 * with SIGUSR1 blocked outside it and the parent signals it each time it has answered, so the
 * signal often comes while the child enters sigsuspend; then children killed right after they
 * called pause() (strace's start-up probe does this). A lost wake-up hangs the test. */
static volatile sig_atomic_t pingpong_count;
static void pingpong_handler(int sig)
{
    (void)sig;
    pingpong_count++;
}

static void test_signal_races_sleep(void)
{
    enum { ROUNDS = 3000, KILLS = 200 };
    int to_parent[2];
    REQUIRE(pipe(to_parent) == 0);
    block(SIGUSR1, SIG_BLOCK);
    pid_t pid = fork();
    if (pid == 0) {
        struct sigaction sa = {.sa_handler = pingpong_handler};
        sigaction(SIGUSR1, &sa, NULL);
        sigset_t wait_mask;
        sigprocmask(SIG_BLOCK, NULL, &wait_mask);
        sigdelset(&wait_mask, SIGUSR1);
        for (int i = 0; i < ROUNDS; i++) {
            char c = 'r';
            if (write(to_parent[1], &c, 1) != 1)
                _exit(2);
            if (sigsuspend(&wait_mask) != -1 || errno != EINTR)
                _exit(3);
        }
        _exit(pingpong_count == ROUNDS ? 0 : 4);
    }
    close(to_parent[1]);
    int answered = 0;
    char c;
    while (answered < ROUNDS && read(to_parent[0], &c, 1) == 1) {
        answered++;
        kill(pid, SIGUSR1);
    }
    close(to_parent[0]);
    CHECK(answered == ROUNDS);
    CHECK(exit_code(pid) == 0);
    block(SIGUSR1, SIG_UNBLOCK);

    int killed = 0;
    for (int i = 0; i < KILLS; i++) {
        pid = fork();
        if (pid == 0) {
            pause();
            _exit(0);
        }
        kill(pid, SIGKILL);
        int st;
        if (waitpid(pid, &st, 0) == pid && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)
            killed++;
    }
    CHECK(killed == KILLS);
}

static void test_sigtimedwait(void)
{
    REQUIRE(install(SIGUSR2, recorder, 0) == 0);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    sigprocmask(SIG_BLOCK, &set, NULL);

    struct timespec timeout = {0, 10 * 1000000L};
    siginfo_t info;
    int64_t start = now_ns();
    CHECK(sigtimedwait(&set, &info, &timeout) == -1 && errno == EAGAIN);
    CHECK(now_ns() - start >= 10 * 1000000L);

    rec_reset();
    kill(getpid(), SIGUSR2);
    memset(&info, 0, sizeof info);
    timeout.tv_sec = 5;
    CHECK(sigtimedwait(&set, &info, &timeout) == SIGUSR2);
    CHECK(info.si_signo == SIGUSR2 && info.si_code == SI_USER && info.si_pid == getpid());
    CHECK(rec_count == 0); /* accepted, not handled */
    sigset_t pending;
    CHECK(sigpending(&pending) == 0 && !sigismember(&pending, SIGUSR2));

    sigqueue(getpid(), SIGUSR2, (union sigval){.sival_int = 9});
    CHECK(sigwaitinfo(&set, &info) == SIGUSR2 && info.si_code == SI_QUEUE &&
          info.si_value.sival_int == 9);

    /* Zero timeout polls. */
    timeout.tv_sec = 0;
    timeout.tv_nsec = 0;
    CHECK(sigtimedwait(&set, &info, &timeout) == -1 && errno == EAGAIN);
    timeout.tv_nsec = 1000000000L;
    CHECK(sigtimedwait(&set, &info, &timeout) == -1 && errno == EINVAL);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
}

/* ---------------------------------------------------------------- SA_RESTART */

/* The child signals the parent every millisecond; `data_after` > 0 → write a byte after that
 * many signals; otherwise never (the parent kills it). */
static pid_t start_signaller(int wfd, int data_after)
{
    pid_t pid = fork();
    if (pid == 0) {
        for (int i = 0; i < 5000; i++) {
            if (data_after > 0 && i == data_after)
                break;
            kill(getppid(), SIGUSR1);
            sleep_ms(1);
        }
        (void)write(wfd, "d", 1);
        _exit(0);
    }
    return pid;
}

static void test_sa_restart(void)
{
    int fds[2];
    char c = 0;

    /* Without SA_RESTART, a blocking pipe read is interrupted: EINTR. */
    REQUIRE(install(SIGUSR1, recorder, 0) == 0);
    REQUIRE(pipe(fds) == 0);
    rec_reset();
    pid_t pid = start_signaller(fds[1], 0);
    ssize_t n = read(fds[0], &c, 1);
    CHECKF(n == -1 && errno == EINTR, "read returned %zd", n);
    CHECK(rec_count >= 1);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(fds[0]);
    close(fds[1]);

    /* With SA_RESTART, the read is restarted and returns the data. */
    REQUIRE(install(SIGUSR1, recorder, SA_RESTART) == 0);
    REQUIRE(pipe(fds) == 0);
    rec_reset();
    pid = start_signaller(fds[1], 30);
    n = read(fds[0], &c, 1);
    CHECKF(n == 1 && c == 'd', "read returned %zd", n);
    CHECK(rec_count >= 1);
    CHECK(exit_code(pid) == 0);
    close(fds[0]);
    close(fds[1]);
}

/* ---------------------------------------------------------------- sigaltstack */

static char *alt_base;
static size_t alt_size;
static volatile uintptr_t handler_stack_addr;
static volatile int handler_onstack_flag;

static void stack_probe(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)si;
    (void)uc;
    volatile char here;
    handler_stack_addr = (uintptr_t)&here;
    stack_t cur;
    sigaltstack(NULL, &cur);
    handler_onstack_flag = (cur.ss_flags & SS_ONSTACK) != 0;
}

static int on_alt_stack(uintptr_t addr)
{
    return addr >= (uintptr_t)alt_base && addr < (uintptr_t)alt_base + alt_size;
}

static void overflow_handler(int sig, siginfo_t *si, void *uc)
{
    (void)si;
    (void)uc;
    volatile char here;
    _exit(sig == SIGSEGV && on_alt_stack((uintptr_t)&here) ? 0 : 3);
}

static volatile int recursion_limit = INT_MAX; /* never reached: the stack runs out first */

static __attribute__((noinline)) int recurse_forever(int depth)
{
    volatile char frame[1024];
    frame[0] = (char)depth;
    if (depth >= recursion_limit)
        return 0;
    return recurse_forever(depth + 1) + frame[0];
}

static volatile int count_hits, count_last;
static void count_handler(int sig, siginfo_t *si, void *uc)
{
    (void)si;
    (void)uc;
    count_hits++;
    count_last = sig;
}

static void test_sigaltstack(void)
{
    alt_size = 64 * 1024;
    alt_base = mmap(NULL, alt_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(alt_base != MAP_FAILED);
    stack_t ss = {.ss_sp = alt_base, .ss_size = alt_size, .ss_flags = 0}, old;
    CHECK(sigaltstack(&ss, &old) == 0);
    CHECK(old.ss_flags == SS_DISABLE);
    stack_t cur;
    CHECK(sigaltstack(NULL, &cur) == 0 && cur.ss_sp == alt_base && cur.ss_size == alt_size &&
          cur.ss_flags == 0);

    REQUIRE(install(SIGUSR1, stack_probe, SA_ONSTACK) == 0);
    raise(SIGUSR1);
    CHECK(on_alt_stack(handler_stack_addr));
    CHECK(handler_onstack_flag == 1);
    CHECK(sigaltstack(NULL, &cur) == 0 && cur.ss_flags == 0); /* off it again */

    REQUIRE(install(SIGUSR1, stack_probe, 0) == 0); /* no SA_ONSTACK: the normal stack */
    raise(SIGUSR1);
    CHECK(!on_alt_stack(handler_stack_addr));
    CHECK(handler_onstack_flag == 0);

    /* raw sigaltstack: musl's wrapper makes these two checks itself */
    stack_t tiny = {.ss_sp = alt_base, .ss_size = 512, .ss_flags = 0};
    CHECK(syscall(SYS_sigaltstack, &tiny, NULL) == -1 && errno == ENOMEM);
    stack_t bad = {.ss_sp = alt_base, .ss_size = alt_size, .ss_flags = 0x1230};
    CHECK(syscall(SYS_sigaltstack, &bad, NULL) == -1 && errno == EINVAL);

    /* A stack overflow can only be handled on the alternate stack. */
    pid_t pid = fork();
    if (pid == 0) {
        no_core_dump();
        struct rlimit small = {1 << 20, 1 << 20};
        setrlimit(RLIMIT_STACK, &small);
        install(SIGSEGV, overflow_handler, SA_ONSTACK);
        recurse_forever(0);
        _exit(4);
    }
    CHECK(exit_code(pid) == 0);

    /* A frame that cannot be written (a read-only alternate stack) forces SIGSEGV: its own
     * handler, on the normal stack, runs and the process goes on (Linux's force_sigsegv);
     * without one it dies of SIGSEGV. */
    for (int with_handler = 1; with_handler >= 0; with_handler--) {
        pid = fork();
        if (pid == 0) {
            no_core_dump();
            if (with_handler)
                install(SIGSEGV, count_handler, 0);
            install(SIGUSR2, count_handler, SA_ONSTACK);
            mprotect(alt_base, alt_size, PROT_READ);
            raise(SIGUSR2);
            _exit(count_hits == 1 && count_last == SIGSEGV ? 0 : 5);
        }
        CHECK(exit_code(pid) == (with_handler ? 0 : 1000 + SIGSEGV));
    }

    stack_t off = {.ss_flags = SS_DISABLE};
    CHECK(sigaltstack(&off, NULL) == 0);
    CHECK(sigaltstack(NULL, &cur) == 0 && cur.ss_flags == SS_DISABLE);
    set_default(SIGUSR1);
}

/* ---------------------------------------------------------------- hardware faults */

/* Faulting instructions at known addresses (top-level asm, so they exist exactly once). */
extern char vkt_ud2_insn[], vkt_int3_insn[], vkt_div_insn[], vkt_div_resume[];
extern char vkt_load_insn[], vkt_load_resume[], vkt_store_insn[], vkt_store_resume[];
extern char vkt_hlt_insn[], vkt_hlt_resume[];
long vkt_ud2(long rax);
long vkt_int3(void);
long vkt_div0(void);
long vkt_load(const void *addr);
long vkt_store(void *addr);
long vkt_hlt(void);
__asm__(".text\n"
        ".globl vkt_ud2\n.type vkt_ud2,@function\nvkt_ud2:\n"
        "  mov %rdi, %rax\n"
        ".globl vkt_ud2_insn\nvkt_ud2_insn:\n  ud2\n  ret\n"
        ".globl vkt_int3\n.type vkt_int3,@function\nvkt_int3:\n"
        "  mov $7, %eax\n"
        ".globl vkt_int3_insn\nvkt_int3_insn:\n  int3\n  ret\n"
        ".globl vkt_div0\n.type vkt_div0,@function\nvkt_div0:\n"
        "  xor %ecx, %ecx\n  mov $1, %eax\n  xor %edx, %edx\n"
        ".globl vkt_div_insn\nvkt_div_insn:\n  div %ecx\n  ret\n"
        ".globl vkt_div_resume\nvkt_div_resume:\n  mov $-1, %rax\n  ret\n"
        ".globl vkt_load\n.type vkt_load,@function\nvkt_load:\n"
        ".globl vkt_load_insn\nvkt_load_insn:\n  movzbl (%rdi), %eax\n  ret\n"
        ".globl vkt_load_resume\nvkt_load_resume:\n  mov $-1, %rax\n  ret\n"
        ".globl vkt_store\n.type vkt_store,@function\nvkt_store:\n"
        ".globl vkt_store_insn\nvkt_store_insn:\n  movb $1, (%rdi)\n  xor %eax, %eax\n  ret\n"
        ".globl vkt_store_resume\nvkt_store_resume:\n  mov $-1, %rax\n  ret\n"
        ".globl vkt_hlt\n.type vkt_hlt,@function\nvkt_hlt:\n"
        ".globl vkt_hlt_insn\nvkt_hlt_insn:\n  hlt\n  ret\n"
        ".globl vkt_hlt_resume\nvkt_hlt_resume:\n  mov $-1, %rax\n  ret\n");

static volatile int flt_signo, flt_code;
static void *volatile flt_addr;
static volatile uintptr_t flt_rip, flt_err, flt_trapno, flt_cr2;

static void fault_handler(int sig, siginfo_t *si, void *ucv)
{
    ucontext_t *uc = ucv;
    greg_t *gregs = uc->uc_mcontext.gregs;
    flt_signo = sig;
    flt_code = si->si_code;
    flt_addr = si->si_addr;
    flt_rip = (uintptr_t)gregs[REG_RIP];
    flt_err = (uintptr_t)gregs[REG_ERR];
    flt_trapno = (uintptr_t)gregs[REG_TRAPNO];
    flt_cr2 = (uintptr_t)gregs[REG_CR2];
    static const struct {
        char *insn, *resume;
    } table[] = {
        {vkt_div_insn, vkt_div_resume},
        {vkt_load_insn, vkt_load_resume},
        {vkt_store_insn, vkt_store_resume},
        {vkt_hlt_insn, vkt_hlt_resume},
    };
    if (flt_rip == (uintptr_t)vkt_ud2_insn) {
        gregs[REG_RAX] = 42; /* edit a register and skip the 2-byte ud2 */
        gregs[REG_RIP] += 2;
        return;
    }
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (flt_rip == (uintptr_t)table[i].insn) {
            gregs[REG_RIP] = (greg_t)(uintptr_t)table[i].resume;
            return;
        }
    /* int3: RIP is already past the instruction; just return. */
}

static void test_faults(void)
{
    const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        REQUIRE(install(sigs[i], fault_handler, 0) == 0);

    CHECK(vkt_ud2(1) == 42); /* the handler's edits of RAX and RIP took effect */
    CHECK(flt_signo == SIGILL);
    CHECK(flt_code == ILL_ILLOPN);
    CHECK(flt_addr == vkt_ud2_insn);
    CHECK(flt_rip == (uintptr_t)vkt_ud2_insn);
    CHECK(flt_trapno == 6); /* #UD */

    CHECK(vkt_int3() == 7);
    CHECK(flt_signo == SIGTRAP);
    CHECKF(flt_code == SI_KERNEL, "si_code %d", flt_code);
    CHECK(flt_rip == (uintptr_t)vkt_int3_insn + 1); /* a trap: RIP after the instruction */
    CHECK(flt_trapno == 3);

    CHECK(vkt_div0() == -1);
    CHECK(flt_signo == SIGFPE);
    CHECK(flt_code == FPE_INTDIV);
    CHECK(flt_addr == vkt_div_insn);
    CHECK(flt_rip == (uintptr_t)vkt_div_insn);
    CHECK(flt_trapno == 0); /* #DE */

    CHECK(vkt_load((const void *)0x10) == -1);
    CHECK(flt_signo == SIGSEGV);
    CHECK(flt_code == SEGV_MAPERR);
    CHECK(flt_addr == (void *)0x10);
    CHECK(flt_rip == (uintptr_t)vkt_load_insn);
    CHECK(flt_trapno == 14); /* #PF */
    CHECK(flt_cr2 == 0x10);
    CHECK((flt_err & 2) == 0); /* a read */
    CHECK((flt_err & 4) != 0); /* from user mode */

    char *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(ro != MAP_FAILED);
    CHECK(vkt_load(ro + 5) == 0); /* reading is fine */
    CHECK(vkt_store(ro + 5) == -1);
    CHECK(flt_signo == SIGSEGV);
    CHECK(flt_code == SEGV_ACCERR);
    CHECK(flt_addr == ro + 5);
    CHECK(flt_rip == (uintptr_t)vkt_store_insn);
    CHECK((flt_err & 2) != 0); /* a write */
    CHECK((flt_err & 1) != 0); /* to a present page */
    munmap(ro, 4096);

    /* A privileged instruction: #GP, reported as SIGSEGV with SI_KERNEL and no address. */
    CHECK(vkt_hlt() == -1);
    CHECK(flt_signo == SIGSEGV);
    CHECKF(flt_code == SI_KERNEL, "si_code %d", flt_code);
    CHECK(flt_addr == NULL);
    CHECK(flt_trapno == 13);

    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        set_default(sigs[i]);

    /* Without a handler the fault kills; a fault while SIGSEGV is blocked kills as well. */
    pid_t pid = fork();
    if (pid == 0) {
        no_core_dump();
        vkt_load((const void *)0x10);
        _exit(1);
    }
    CHECK(exit_code(pid) == 1000 + SIGSEGV);
    pid = fork();
    if (pid == 0) {
        no_core_dump();
        install(SIGSEGV, fault_handler, 0);
        block(SIGSEGV, SIG_BLOCK);
        vkt_load((const void *)0x10);
        _exit(1);
    }
    CHECK(exit_code(pid) == 1000 + SIGSEGV);
    pid = fork();
    if (pid == 0) {
        no_core_dump();
        vkt_div0();
        _exit(1);
    }
    CHECK(exit_code(pid) == 1000 + SIGFPE);
}

/* ---------------------------------------------------------------- editing the frame */

static void mask_editor(int sig, siginfo_t *si, void *ucv)
{
    (void)sig;
    (void)si;
    ucontext_t *uc = ucv;
    sigaddset(&uc->uc_sigmask, SIGUSR2); /* sigreturn installs this mask */
}

static void test_frame_mask_edit(void)
{
    REQUIRE(install(SIGUSR1, mask_editor, 0) == 0);
    CHECK(!is_blocked(SIGUSR2));
    raise(SIGUSR1);
    CHECK(is_blocked(SIGUSR2));
    CHECK(!is_blocked(SIGUSR1));
    block(SIGUSR2, SIG_UNBLOCK);
    set_default(SIGUSR1);
}

/* ---------------------------------------------------------------- default actions, SIGCHLD */

static void test_default_actions(void)
{
    const int killers[] = {SIGTERM, SIGUSR1, SIGHUP, SIGALRM, SIGPIPE};
    for (size_t i = 0; i < sizeof killers / sizeof killers[0]; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            raise(killers[i]);
            _exit(1);
        }
        CHECKF(exit_code(pid) == 1000 + killers[i], "signal %d", killers[i]);
    }
    const int ignored[] = {SIGCHLD, SIGURG, SIGWINCH};
    for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            raise(ignored[i]);
            _exit(0);
        }
        CHECKF(exit_code(pid) == 0, "signal %d", ignored[i]);
    }

    /* Stop and continue, seen by waitpid and by SIGCHLD siginfo. */
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[1]);
        char c;
        _exit(read(fds[0], &c, 1) == 1 ? 6 : 7);
    }
    close(fds[0]);
    struct timespec five = {5, 0};
    siginfo_t info;
    int status = 0;
    /* SIGCHLD first: a waitpid that consumes the stop before the child's notification is
     * built makes Linux report si_status 0 in it (a real race, so wait for the signal first). */
    CHECK(kill(pid, SIGSTOP) == 0);
    memset(&info, 0, sizeof info);
    CHECKF(sigtimedwait(&chld, &info, &five) == SIGCHLD && info.si_code == CLD_STOPPED &&
               info.si_pid == pid && info.si_status == SIGSTOP,
           "si_code %d si_pid %d (child %d) si_status %d", info.si_code, (int)info.si_pid,
           (int)pid, info.si_status);
    CHECK(waitpid(pid, &status, WUNTRACED) == pid && WIFSTOPPED(status) &&
          WSTOPSIG(status) == SIGSTOP);
    CHECK(kill(pid, SIGCONT) == 0);
    memset(&info, 0, sizeof info);
    CHECK(sigtimedwait(&chld, &info, &five) == SIGCHLD && info.si_code == CLD_CONTINUED &&
          info.si_pid == pid && info.si_status == SIGCONT);
    CHECK(waitpid(pid, &status, WCONTINUED) == pid && WIFCONTINUED(status));
    CHECK(write(fds[1], "x", 1) == 1);
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 6);
    CHECK(sigtimedwait(&chld, &info, &five) == SIGCHLD && info.si_code == CLD_EXITED &&
          info.si_pid == pid && info.si_status == 6);
    close(fds[1]);

    /* SIGKILL ends a stopped process. */
    pid = fork();
    if (pid == 0) {
        raise(SIGSTOP);
        _exit(0);
    }
    CHECK(waitpid(pid, &status, WUNTRACED) == pid && WIFSTOPPED(status));
    CHECK(kill(pid, SIGKILL) == 0);
    CHECK(waitpid(pid, &status, 0) == pid && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    while (sigtimedwait(&chld, &info, &(struct timespec){0, 0}) == SIGCHLD)
        ;

    /* SIGCHLD through a handler: CLD_KILLED with the signal as status. */
    REQUIRE(install(SIGCHLD, recorder, 0) == 0);
    rec_reset();
    pid = fork();
    if (pid == 0) {
        for (;;)
            pause();
    }
    kill(pid, SIGTERM);
    CHECK(waitpid(pid, &status, 0) == pid);
    sigset_t wait_mask;
    sigprocmask(SIG_BLOCK, NULL, &wait_mask);
    sigdelset(&wait_mask, SIGCHLD);
    if (rec_count == 0)
        sigsuspend(&wait_mask); /* SIGCHLD is pending; this returns at once */
    CHECK(rec_count == 1 && rec_signo == SIGCHLD && rec_code == CLD_KILLED && rec_pid == pid);
    sigprocmask(SIG_UNBLOCK, &chld, NULL);
    set_default(SIGCHLD);
}

static void test_process_group_kill(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        for (;;)
            pause();
    }
    CHECK(setpgid(pid, pid) == 0 || errno == EACCES); /* EACCES: the child already did */
    CHECK(kill(-pid, SIGTERM) == 0);
    CHECK(exit_code(pid) == 1000 + SIGTERM);
    CHECK(kill(-pid, 0) == -1 && errno == ESRCH);
}

/* ---------------------------------------------------------------- threads */

static atomic_int thread_ready, thread_stop;
static atomic_int thread_tid;
static atomic_int thread_saw_pending;

static void *signal_target_thread(void *arg)
{
    int block_usr1 = (int)(intptr_t)arg;
    block(SIGUSR1, block_usr1 ? SIG_BLOCK : SIG_UNBLOCK); /* the mask is inherited */
    atomic_store(&thread_tid, gettid_raw());
    atomic_store(&thread_ready, 1);
    while (!atomic_load(&thread_stop)) {
        if (block_usr1) {
            sigset_t pending;
            sigpending(&pending);
            if (sigismember(&pending, SIGUSR1))
                atomic_store(&thread_saw_pending, 1);
        }
        sched_yield();
    }
    if (block_usr1) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGUSR1);
        siginfo_t info;
        sigtimedwait(&set, &info, &(struct timespec){0, 0}); /* consume it */
    }
    return NULL;
}

static pthread_t start_target(int block_usr1)
{
    atomic_store(&thread_ready, 0);
    atomic_store(&thread_stop, 0);
    atomic_store(&thread_saw_pending, 0);
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, signal_target_thread, (void *)(intptr_t)block_usr1) == 0);
    while (!atomic_load(&thread_ready))
        sched_yield();
    return t;
}

static void wait_for_count(int n)
{
    for (int i = 0; i < 5000 && __atomic_load_n(&rec_count, __ATOMIC_ACQUIRE) < n; i++)
        sleep_ms(1);
}

static void test_thread_signals(void)
{
    REQUIRE(install(SIGUSR1, recorder, 0) == 0);

    /* tgkill reaches exactly the named thread. */
    rec_reset();
    pthread_t t = start_target(0);
    CHECK(syscall(SYS_tgkill, getpid(), atomic_load(&thread_tid), SIGUSR1) == 0);
    wait_for_count(1);
    CHECK(rec_count == 1 && rec_tid == atomic_load(&thread_tid) && rec_code == SI_TKILL);
    atomic_store(&thread_stop, 1);
    pthread_join(t, NULL);

    /* pthread_kill likewise. */
    rec_reset();
    t = start_target(0);
    CHECK(pthread_kill(t, SIGUSR1) == 0);
    wait_for_count(1);
    CHECK(rec_count == 1 && rec_tid == atomic_load(&thread_tid));
    atomic_store(&thread_stop, 1);
    pthread_join(t, NULL);

    /* A process-directed signal goes to a thread that does not block it. */
    rec_reset();
    block(SIGUSR1, SIG_BLOCK);
    t = start_target(0);
    CHECK(kill(getpid(), SIGUSR1) == 0);
    wait_for_count(1);
    CHECK(rec_count == 1 && rec_tid == atomic_load(&thread_tid));
    atomic_store(&thread_stop, 1);
    pthread_join(t, NULL);
    block(SIGUSR1, SIG_UNBLOCK);

    /* A thread-directed signal blocked by its thread stays pending for that thread only. */
    rec_reset();
    t = start_target(1);
    CHECK(syscall(SYS_tgkill, getpid(), atomic_load(&thread_tid), SIGUSR1) == 0);
    for (int i = 0; i < 5000 && !atomic_load(&thread_saw_pending); i++)
        sleep_ms(1);
    CHECK(atomic_load(&thread_saw_pending) == 1);
    sigset_t pending;
    CHECK(sigpending(&pending) == 0 && !sigismember(&pending, SIGUSR1));
    CHECK(rec_count == 0);
    atomic_store(&thread_stop, 1);
    pthread_join(t, NULL);
    CHECK(rec_count == 0);
    set_default(SIGUSR1);
}

/* ---------------------------------------------------------------- SA_NODEFER, SA_RESETHAND */

static volatile int depth, max_depth, nest_calls;

static void nesting_handler(int sig, siginfo_t *si, void *uc)
{
    (void)si;
    (void)uc;
    nest_calls++;
    depth++;
    if (depth > max_depth)
        max_depth = depth;
    if (nest_calls == 1)
        raise(sig);
    depth--;
}

static void test_nodefer_resethand(void)
{
    depth = max_depth = nest_calls = 0;
    REQUIRE(install(SIGUSR1, nesting_handler, SA_NODEFER) == 0);
    raise(SIGUSR1);
    CHECK(nest_calls == 2 && max_depth == 2); /* nested inside the first call */

    depth = max_depth = nest_calls = 0;
    REQUIRE(install(SIGUSR1, nesting_handler, 0) == 0);
    raise(SIGUSR1);
    CHECK(nest_calls == 2 && max_depth == 1); /* deferred until the first returned */

    REQUIRE(install(SIGUSR1, recorder, SA_RESETHAND) == 0);
    rec_reset();
    raise(SIGUSR1);
    CHECK(rec_count == 1);
    struct sigaction now;
    CHECK(sigaction(SIGUSR1, NULL, &now) == 0 && now.sa_handler == SIG_DFL);
    /* Only the handler is reset: the flags stay (SA_SIGINFO too, as the LTP's sigaction01 checks). */
    REQUIRE(install(SIGUSR1, recorder, SA_RESETHAND | SA_SIGINFO) == 0);
    rec_reset();
    raise(SIGUSR1);
    CHECK(rec_count == 1);
    CHECK(sigaction(SIGUSR1, NULL, &now) == 0 && now.sa_handler == SIG_DFL && (now.sa_flags & SA_SIGINFO) && (now.sa_flags & SA_RESETHAND));
}

/* ---------------------------------------------------------------- fork */

static void test_fork_inheritance(void)
{
    REQUIRE(install(SIGUSR1, recorder, 0) == 0);
    block(SIGUSR2, SIG_BLOCK);
    raise(SIGUSR2); /* pending in the parent only */
    pid_t pid = fork();
    if (pid == 0) {
        struct sigaction sa;
        sigaction(SIGUSR1, NULL, &sa);
        sigset_t pending;
        sigpending(&pending);
        int ok = sa.sa_sigaction == recorder && is_blocked(SIGUSR2) &&
                 !sigismember(&pending, SIGUSR2);
        rec_reset();
        raise(SIGUSR1);
        ok &= rec_count == 1;
        _exit(ok ? 0 : 1);
    }
    CHECK(exit_code(pid) == 0);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    CHECK(sigtimedwait(&set, NULL, &(struct timespec){0, 0}) == SIGUSR2);
    block(SIGUSR2, SIG_UNBLOCK);
    set_default(SIGUSR1);
}

/* ---------------------------------------------------------------- FPU state */

static volatile unsigned handler_mxcsr, handler_fcw;
static volatile uint32_t frame_mxcsr, frame_xmm3_low;
static volatile double handler_result;

static void fpu_clobberer(int sig, siginfo_t *si, void *ucv)
{
    (void)sig;
    (void)si;
    ucontext_t *uc = ucv;
    unsigned mxcsr;
    unsigned short fcw;
    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    __asm__ volatile("fnstcw %0" : "=m"(fcw));
    handler_mxcsr = mxcsr;
    handler_fcw = fcw;
    if (uc->uc_mcontext.fpregs) {
        frame_mxcsr = uc->uc_mcontext.fpregs->mxcsr;
        frame_xmm3_low = uc->uc_mcontext.fpregs->_xmm[3].element[0];
        uc->uc_mcontext.fpregs->_xmm[5].element[0] = 0xfeedf00d; /* restored by sigreturn */
    }
    /* Floating-point work, a different rounding mode and clobbered vector registers. */
    unsigned other = 0x3f80;
    __asm__ volatile("ldmxcsr %0" ::"m"(other));
    unsigned short other_cw = 0x7f;
    __asm__ volatile("fldcw %0" ::"m"(other_cw));
    volatile double x = 1.0;
    for (int i = 0; i < 100; i++)
        x = x * 1.0001 + 0.5 / (i + 1);
    handler_result = x;
    __asm__ volatile("pxor %%xmm0, %%xmm0\n pxor %%xmm1, %%xmm1\n pxor %%xmm7, %%xmm7\n"
                     "pcmpeqd %%xmm8, %%xmm8\n pcmpeqd %%xmm15, %%xmm15" ::
                         : "xmm0", "xmm1", "xmm7", "xmm8", "xmm15");
}

static int have_avx(void)
{
    unsigned eax = 1, ebx, ecx, edx;
    __asm__ volatile("cpuid" : "+a"(eax), "=b"(ebx), "=c"(ecx), "=d"(edx) : "c"(0));
    if (!(ecx & (1u << 27)) || !(ecx & (1u << 28))) /* OSXSAVE, AVX */
        return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (lo & 6) == 6; /* the OS saves XMM and YMM state */
}

static void test_fpu_preserved(void)
{
    REQUIRE(install(SIGUSR1, fpu_clobberer, 0) == 0);
    uint64_t in[32], out[32];
    for (int i = 0; i < 32; i++)
        in[i] = 0x0101010101010101ULL * (uint64_t)(i + 1) ^ 0x8000000000000000ULL;
    memset(out, 0, sizeof out);

    unsigned mxcsr_rz = 0x7f80, mxcsr_after = 0, mxcsr_default = 0x1f80;
    unsigned short fcw_53 = 0x27f, fcw_after = 0, fcw_default = 0x37f;
    __asm__ volatile("ldmxcsr %0" ::"m"(mxcsr_rz));
    __asm__ volatile("fldcw %0" ::"m"(fcw_53));
    long pid = getpid(), tid = gettid_raw();
    __asm__ volatile(
        "movdqu 0x00(%[in]), %%xmm0\n movdqu 0x10(%[in]), %%xmm1\n"
        "movdqu 0x20(%[in]), %%xmm2\n movdqu 0x30(%[in]), %%xmm3\n"
        "movdqu 0x40(%[in]), %%xmm4\n movdqu 0x50(%[in]), %%xmm5\n"
        "movdqu 0x60(%[in]), %%xmm6\n movdqu 0x70(%[in]), %%xmm7\n"
        "movdqu 0x80(%[in]), %%xmm8\n movdqu 0x90(%[in]), %%xmm9\n"
        "movdqu 0xa0(%[in]), %%xmm10\n movdqu 0xb0(%[in]), %%xmm11\n"
        "movdqu 0xc0(%[in]), %%xmm12\n movdqu 0xd0(%[in]), %%xmm13\n"
        "movdqu 0xe0(%[in]), %%xmm14\n movdqu 0xf0(%[in]), %%xmm15\n"
        "mov %[nr], %%eax\n syscall\n"
        "movdqu %%xmm0, 0x00(%[out])\n movdqu %%xmm1, 0x10(%[out])\n"
        "movdqu %%xmm2, 0x20(%[out])\n movdqu %%xmm3, 0x30(%[out])\n"
        "movdqu %%xmm4, 0x40(%[out])\n movdqu %%xmm5, 0x50(%[out])\n"
        "movdqu %%xmm6, 0x60(%[out])\n movdqu %%xmm7, 0x70(%[out])\n"
        "movdqu %%xmm8, 0x80(%[out])\n movdqu %%xmm9, 0x90(%[out])\n"
        "movdqu %%xmm10, 0xa0(%[out])\n movdqu %%xmm11, 0xb0(%[out])\n"
        "movdqu %%xmm12, 0xc0(%[out])\n movdqu %%xmm13, 0xd0(%[out])\n"
        "movdqu %%xmm14, 0xe0(%[out])\n movdqu %%xmm15, 0xf0(%[out])\n"
        :
        : [in] "r"(in), [out] "r"(out), [nr] "i"(SYS_tgkill), "D"(pid), "S"(tid), "d"(SIGUSR1)
        : "rax", "rcx", "r11", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6",
          "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr_after));
    __asm__ volatile("fnstcw %0" : "=m"(fcw_after));
    __asm__ volatile("ldmxcsr %0" ::"m"(mxcsr_default));
    __asm__ volatile("fldcw %0" ::"m"(fcw_default));

    CHECK(handler_result > 1.0);
    int same = 1;
    for (int i = 0; i < 32; i++)
        if (i != 10) /* xmm5's low half was edited in the frame */
            same &= out[i] == in[i];
    CHECK(same);
    CHECK((uint32_t)out[10] == 0xfeedf00d && out[10] >> 32 == in[10] >> 32);
    CHECK(mxcsr_after == 0x7f80);
    CHECK(fcw_after == 0x27f);
    CHECK(frame_mxcsr == 0x7f80);                 /* the frame holds the interrupted state */
    CHECK(frame_xmm3_low == (uint32_t)in[6]);
    CHECKF(handler_mxcsr == 0x1f80, "handler MXCSR %#x", handler_mxcsr); /* fresh state */
    CHECKF(handler_fcw == 0x37f, "handler FCW %#x", handler_fcw);

    if (have_avx()) {
        uint64_t yin[8], yout[8];
        for (int i = 0; i < 8; i++)
            yin[i] = 0x1111111111111111ULL * (uint64_t)(i + 3);
        __asm__ volatile("vmovdqu 0x00(%[in]), %%ymm0\n vmovdqu 0x20(%[in]), %%ymm15\n"
                         "mov %[nr], %%eax\n syscall\n"
                         "vmovdqu %%ymm0, 0x00(%[out])\n vmovdqu %%ymm15, 0x20(%[out])\n"
                         "vzeroupper\n"
                         :
                         : [in] "r"(yin), [out] "r"(yout), [nr] "i"(SYS_tgkill), "D"(pid),
                           "S"(tid), "d"(SIGUSR1)
                         : "rax", "rcx", "r11", "memory", "xmm0", "xmm15");
        CHECK(memcmp(yin, yout, sizeof yin) == 0); /* upper YMM halves survived too */
    }
    set_default(SIGUSR1);
}

/* The kernel's struct sigaction (x86-64), for the raw rt_sigaction(2). */
struct ksigaction {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)(void);
    uint64_t mask;
};

static volatile int autodisarm_seen = -1;

static void autodisarm_probe(int sig)
{
    (void)sig;
    stack_t cur;
    if (syscall(SYS_sigaltstack, NULL, &cur) == 0)
        autodisarm_seen = cur.ss_flags;
}

/* Handlers returning (rt_sigreturn reads the frame, FPU state included) while another thread
 * changes the address space (mprotect holds it for writing): LTP's signal06 race; it once
 * panicked vk (a spin lock held into a sleep). The process must simply finish. */
static atomic_int race_stop;
static char race_area[4096 * 4] __attribute__((aligned(4096)));

static void *mprotect_loop(void *arg)
{
    (void)arg;
    while (!atomic_load(&race_stop)) {
        mprotect(race_area, sizeof race_area, PROT_READ);
        mprotect(race_area, sizeof race_area, PROT_READ | PROT_WRITE);
    }
    return NULL;
}

static void test_sigreturn_races_mprotect(void)
{
    REQUIRE(install(SIGUSR2, count_handler, 0) == 0);
    count_hits = 0;
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, mprotect_loop, NULL) == 0);
    volatile double d = 123.456;
    int rounds = 50000, same = 1;
    for (int i = 0; i < rounds; i++) {
        raise(SIGUSR2);
        same &= d == 123.456;
    }
    atomic_store(&race_stop, 1);
    pthread_join(t, NULL);
    CHECK(count_hits == rounds);
    CHECK(same);
    set_default(SIGUSR2);
}

static void test_flag_validation(void)
{
    /* rt_sigaction keeps the flags Linux knows and clears the others, upper word included:
     * SA_UNSUPPORTED never reads back, which is how a program probes for flag support. */
    struct ksigaction k = {SIG_IGN, SA_SIGINFO | SA_UNSUPPORTED | (1UL << 40), NULL, 0}, back;
    CHECK(syscall(SYS_rt_sigaction, SIGUSR2, &k, NULL, 8) == 0);
    memset(&back, 0xff, sizeof back);
    CHECK(syscall(SYS_rt_sigaction, SIGUSR2, NULL, &back, 8) == 0);
    CHECK(back.flags == SA_SIGINFO && back.handler == SIG_IGN && back.mask == 0);
    set_default(SIGUSR2);

    /* rt_sigprocmask looks at `how` only when it is given a new set. */
    sigset_t old;
    CHECK(syscall(SYS_rt_sigprocmask, 99, NULL, &old, 8) == 0);

    /* sigaltstack (raw: musl's wrapper checks some of this itself): SS_AUTODISARM goes with a
     * mode; another bit, or both SS_ONSTACK and SS_DISABLE, is EINVAL. */
    stack_t ss = {.ss_sp = NULL, .ss_flags = SS_DISABLE | SS_AUTODISARM, .ss_size = 0}, cur;
    CHECK(syscall(SYS_sigaltstack, &ss, NULL) == 0);
    ss.ss_flags = 0x4;
    CHECK(syscall(SYS_sigaltstack, &ss, NULL) == -1 && errno == EINVAL);
    ss.ss_flags = SS_ONSTACK | SS_DISABLE;
    CHECK(syscall(SYS_sigaltstack, &ss, NULL) == -1 && errno == EINVAL);
    CHECK(syscall(SYS_sigaltstack, NULL, &cur) == 0 && cur.ss_flags == (SS_DISABLE | SS_AUTODISARM));

    /* SS_AUTODISARM: a handler runs with the stack disarmed; its return re-arms it. */
    static char alt[65536];
    ss = (stack_t){.ss_sp = alt, .ss_flags = SS_AUTODISARM, .ss_size = sizeof alt};
    CHECK(syscall(SYS_sigaltstack, &ss, NULL) == 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = autodisarm_probe;
    sa.sa_flags = SA_ONSTACK;
    REQUIRE(sigaction(SIGUSR2, &sa, NULL) == 0);
    raise(SIGUSR2);
    CHECK(autodisarm_seen == SS_DISABLE);
    CHECK(syscall(SYS_sigaltstack, NULL, &cur) == 0 && cur.ss_flags == (int)SS_AUTODISARM && cur.ss_sp == alt);
    set_default(SIGUSR2);
    ss = (stack_t){.ss_flags = SS_DISABLE};
    CHECK(syscall(SYS_sigaltstack, &ss, NULL) == 0);

    /* There is no process group -INT_MIN. */
    CHECK(kill(INT_MIN, 0) == -1 && errno == ESRCH);
}

int main(void)
{
    vktest_reset_signals();
    test_siginfo_sources();
    test_errors();
    test_mask_and_pending();
    test_queuing();
    test_sigsuspend();
    test_signal_races_sleep();
    test_sigtimedwait();
    test_sa_restart();
    test_sigaltstack();
    test_faults();
    test_frame_mask_edit();
    test_default_actions();
    test_process_group_kill();
    test_thread_signals();
    test_nodefer_resethand();
    test_fork_inheritance();
    test_fpu_preserved();
    test_sigreturn_races_mprotect();
    test_flag_validation();
    vktest_done();
}
