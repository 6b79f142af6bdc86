/*
 * mtfloor.c — the host's own ceiling for system calls that one host thread hands to another,
 * as vk's stubs hand theirs to the vCPUs: how much a second such pair gains over one.
 *
 * A pair is a "guest" (a child process whose getppid traps through seccomp into a SIGSYS
 * handler, as a stub's does) and a "handler" (a thread of this process that answers it over
 * shared memory, as a vCPU does). Each waits for the other by spinning (`pause`), or by
 * yielding the CPU (`sched_yield`), or by yielding with both pinned to one CPU per pair.
 * Printed: the time per call of one pair and of two pairs running at once (wall time over
 * all calls), in each mode:
 *
 *   mtfloor: spin 1 pair 2700 ns, 2 pairs 3100 ns
 *
 * and `mtfloor: best speed-up S` — calls per second of the best two-pair mode over the best
 * one-pair mode: what any design that hands a system call from one host thread to another
 * can get from a second host CPU on this machine (2.00 would be perfect scaling).
 *
 * Build: gcc -O2 -o mtfloor mtfloor.c -lpthread   Run: ./mtfloor [calls per pair]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

enum { SPIN, YIELD, PINNED };
static const char *mode_name[] = {"spin", "yield", "yield, pinned"};

struct pair {
    _Atomic int state; /* 0 running, 1 trapped, 2 answered */
    long ret;
    int mode;
    int cpu;
    long n;
    pid_t child;
};

static struct pair *mine; /* the child's own pair */

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void wait_for(_Atomic int *s, int want, int mode) {
    while (atomic_load(s) != want) {
        if (mode == SPIN)
            __builtin_ia32_pause();
        else
            sched_yield();
    }
}

static void pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
}

static void on_sigsys(int sig, siginfo_t *si, void *ctx) {
    (void)sig;
    (void)si;
    atomic_store(&mine->state, 1);
    wait_for(&mine->state, 2, mine->mode);
    atomic_store(&mine->state, 0);
    ((ucontext_t *)ctx)->uc_mcontext.gregs[REG_RAX] = mine->ret;
}

static void guest(struct pair *p) {
    mine = p;
    if (p->mode == PINNED)
        pin(p->cpu);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSYS, &sa, 0);
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {4, f};
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) _exit(3);
    long x = 0;
    for (long i = 0; i < p->n; i++) x += syscall(SYS_getppid);
    _exit(x == 7 * p->n ? 0 : 1);
}

static void *handler(void *arg) {
    struct pair *p = arg;
    if (p->mode == PINNED)
        pin(p->cpu);
    for (long i = 0; i < p->n; i++) {
        wait_for(&p->state, 1, p->mode);
        p->ret = 7;
        atomic_store(&p->state, 2);
    }
    return NULL;
}

/* Time per call, in ns, of `pairs` pairs at once in `mode` (-1 on a failure). */
static double run(int pairs, int mode, long n) {
    struct pair *ps = mmap(0, 4096 * 2, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pthread_t th[2];
    double t0 = now();
    for (int i = 0; i < pairs; i++) {
        struct pair *p = (struct pair *)((char *)ps + 4096 * i);
        p->mode = mode;
        p->cpu = i;
        p->n = n;
        p->child = fork();
        if (p->child == 0) guest(p);
        pthread_create(&th[i], NULL, handler, p);
    }
    int ok = 1;
    for (int i = 0; i < pairs; i++) {
        struct pair *p = (struct pair *)((char *)ps + 4096 * i);
        pthread_join(th[i], NULL);
        int st;
        waitpid(p->child, &st, 0);
        ok &= WIFEXITED(st) && WEXITSTATUS(st) == 0;
    }
    double t = (now() - t0) / (n * pairs) * 1e9;
    munmap(ps, 4096 * 2);
    return ok ? t : -1;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 20000;
    double best1 = 0, best2 = 0;
    for (int mode = SPIN; mode <= PINNED; mode++) {
        double one = run(1, mode, n), two = run(2, mode, n);
        printf("mtfloor: %s 1 pair %.0f ns, 2 pairs %.0f ns\n", mode_name[mode], one, two);
        if (one > 0 && (best1 == 0 || one < best1)) best1 = one;
        if (two > 0 && (best2 == 0 || two < best2)) best2 = two;
    }
    if (best1 > 0 && best2 > 0)
        printf("mtfloor: best speed-up %.2f\n", best1 / best2);
    return 0;
}
