/*
 * h_fuzz — a helper for the integration tests: hostile system calls. Children make random
 * system calls with random arguments (bad pointers, pointers into the stub area and the
 * kernel half, huge lengths, negative numbers, real descriptors); the kernel must give each
 * an error or a result and never crash. A child that dies of a signal (it unmapped its own
 * code, broke its TLS ...) or hangs (killed after a short time) is replaced by the next.
 *
 * Only ever run it under vk: natively, as root, random unlink/chmod/rename/mount calls on the
 * host are not something to do. (It is a robustness harness, not a behaviour test.)
 *
 * Usage: h_fuzz [children [calls-per-child [seed [threads]]]]
 * With threads > 1 each child makes its calls from that many threads at once (each with its
 * own sequence), so that the calls race each other on one address space and one descriptor
 * table (munmap against a copy, close against a read, ...).
 * Prints "fuzz: ..." with the counts and exits 0.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static __thread uint64_t rng;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Calls that would end the child's usefulness at once or reach outside it. */
static int denied(long nr)
{
    switch (nr) {
    case SYS_rt_sigreturn: case SYS_pause: case SYS_clone: case SYS_fork: case SYS_vfork:
    case SYS_execve: case SYS_exit: case SYS_kill: case SYS_exit_group: case SYS_tkill:
    case SYS_tgkill: case SYS_rt_sigqueueinfo: case SYS_rt_tgsigqueueinfo: case SYS_reboot:
    case SYS_execveat: case 424 /* pidfd_send_signal */: case 435 /* clone3 */:
    case SYS_rt_sigsuspend:
    case SYS_sethostname: case SYS_setdomainname: /* the machine's names: t_proc, run after
                                                   * the fuzz, wants a non-empty node name */
    case 335: /* uretprobe: hosts since 6.13 let it past seccomp; outside a uretprobe
               * trampoline it is SIGILL, natively and under vk alike */
        return 1;
    }
    return 0;
}

/* Calls that mostly end the child by destroying its own memory, TLS or signal handling: made
 * less often, so each child lives longer. */
static int self_harm(long nr)
{
    switch (nr) {
    case SYS_munmap: case SYS_mprotect: case SYS_mremap: case SYS_brk: case SYS_madvise:
    case SYS_arch_prctl: case SYS_rt_sigaction: case SYS_mmap: case SYS_setrlimit:
    case SYS_prlimit64: case SYS_close: case SYS_dup2: case SYS_dup3: case SYS_rt_sigprocmask:
    case SYS_sigaltstack: case SYS_set_robust_list: case SYS_set_tid_address:
        return 1;
    }
    return 0;
}

static char buf[65536];

static uint64_t arg(void)
{
    switch (next() % 16) {
    case 0: return 0;
    case 1: return next() % 8;
    case 2: return (uint64_t)-1;
    case 3: return next() % 4096;
    case 4: return (uint64_t)(buf + next() % sizeof buf);
    case 5: return (uint64_t)buf;
    case 6: return 0x7ff000000000ULL + (next() % (64 << 20)); /* the stub area */
    case 7: return 0xffff800000000000ULL + (next() & 0xffffff); /* the kernel half */
    case 8: return 1ULL << (next() % 64);
    case 9: return next();
    case 10: return (uint64_t)-(int64_t)(next() % 4096);
    case 11: return 0x1000 + (next() & 0xfff);
    case 12: return next() & 0xffffffff;
    case 13: return (uint64_t)(buf + sizeof buf - (next() % 16)); /* straddles the end */
    case 14: return 0x7fffffffe000ULL;
    default: return next() % 1024;
    }
}

struct run {
    uint64_t seed;
    long calls;
};

static void calls_from(uint64_t seed, long calls);

static void *thread_main(void *arg)
{
    struct run *r = arg;
    calls_from(r->seed, r->calls);
    return NULL;
}

static void child(uint64_t seed, long calls, long threads)
{
    /* Random writes go nowhere rather than onto the console. */
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
    }
    alarm(1);
    /* More threads: each makes its own calls; the process ends when the first is done. */
    static struct run runs[16];
    static pthread_t tids[16];
    for (long t = 1; t < threads && t < 16; t++) {
        runs[t] = (struct run){seed * 31 + (uint64_t)t, calls};
        pthread_create(&tids[t], NULL, thread_main, &runs[t]);
    }
    calls_from(seed, calls);
    _exit(0);
}

static void calls_from(uint64_t seed, long calls)
{
    rng = seed | 1;
    for (long i = 0; i < calls; i++) {
        for (size_t j = 0; j < 64; j++)
            buf[next() % sizeof buf] = (char)next();
        buf[sizeof buf - 1] = 0;
        long nr = (long)(next() % 460);
        if (denied(nr) || (self_harm(nr) && next() % 8 != 0))
            continue;
        syscall(nr, arg(), arg(), arg(), arg(), arg(), arg());
    }
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    long children = argc > 1 ? atol(argv[1]) : 50;
    long calls = argc > 2 ? atol(argv[2]) : 2000;
    uint64_t seed = argc > 3 ? strtoull(argv[3], NULL, 0) : 0x5eed;
    long threads = argc > 4 ? atol(argv[4]) : 1;
    long ok = 0, signalled = 0, hung = 0, other = 0, by_sig[65] = {0};
    for (long c = 0; c < children; c++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 2;
        }
        if (pid == 0)
            child(seed * 1000003ULL + (uint64_t)c, calls, threads);
        double deadline = now() + 2.0;
        int status = 0;
        for (;;) {
            pid_t r = waitpid(pid, &status, WNOHANG);
            if (r == pid)
                break;
            if (now() > deadline) {
                kill(pid, SIGKILL);
                waitpid(pid, &status, 0);
                hung++;
                status = -1;
                break;
            }
            struct timespec ms = {0, 10 * 1000 * 1000};
            nanosleep(&ms, NULL);
        }
        if (status == -1)
            continue;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
            ok++;
        else if (WIFSIGNALED(status)) {
            signalled++;
            by_sig[WTERMSIG(status) & 63]++;
        }
        else
            other++;
    }
    printf("fuzz: %ld children: %ld finished, %ld killed by a signal, %ld hung, %ld other\n",
           children, ok, signalled, hung, other);
    if (getenv("FUZZ_VERBOSE"))
        for (int i = 1; i < 65; i++)
            if (by_sig[i])
                printf("fuzz: %ld killed by signal %d\n", by_sig[i], i);
    return 0;
}
