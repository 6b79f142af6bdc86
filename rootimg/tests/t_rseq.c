/*
 * t_rseq — restartable sequences, rseq(2):
 *   - registration: bad length or alignment (EINVAL), success with the CPU number written
 *     (cpu_id_start == cpu_id, below the number of CPUs), the same area again (EBUSY), another
 *     area (EINVAL), another signature (EPERM);
 *   - a critical section interrupted by a signal resumes at its abort address (the handler runs
 *     first), and rseq_cs is cleared; one that is not interrupted finishes normally;
 *   - a descriptor with the wrong signature before its abort address is SIGSEGV;
 *   - fork keeps the registration (EBUSY in the child), a new thread has none, exec drops it;
 *   - unregistration: another address (EINVAL), another signature (EPERM), then success, with
 *     cpu_id reset to RSEQ_CPU_ID_UNINITIALIZED (-1).
 */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>

#include "vktest.h"

#define SIG 0x53053053u
#define RSEQ_FLAG_UNREGISTER 1

struct rseq_area {
    uint32_t cpu_id_start;
    uint32_t cpu_id;
    uint64_t rseq_cs;
    uint32_t flags;
    uint32_t node_id;
    uint32_t mm_cid;
    uint32_t pad;
} __attribute__((aligned(32)));

static struct rseq_area area, other;
static __thread struct rseq_area thread_area;
static volatile int stop;

static long sys_rseq(void *a, uint32_t len, int flags, uint32_t sig)
{
    return syscall(SYS_rseq, a, len, flags, sig);
}

/* Spin inside a critical section until `stop` is set; 1 if the kernel aborted the section. */
static __attribute__((noinline)) int spin_in_section(struct rseq_area *rs, volatile int *flag)
{
    int aborted;
    __asm__ volatile("leaq vk_cs_desc(%%rip), %%rax\n\t"
                     "movq %%rax, 8(%[rs])\n\t"
                     "vk_cs_start:\n\t"
                     "cmpl $0, (%[flag])\n\t"
                     "je vk_cs_start\n\t"
                     "vk_cs_end:\n\t"
                     "movl $0, %[ab]\n\t"
                     "jmp vk_cs_out\n\t"
                     ".long 0x53053053\n\t"
                     "vk_cs_abort:\n\t"
                     "movl $1, %[ab]\n\t"
                     "vk_cs_out:\n\t"
                     ".pushsection .data\n\t"
                     ".balign 32\n\t"
                     "vk_cs_desc:\n\t"
                     ".long 0, 0\n\t"
                     ".quad vk_cs_start, vk_cs_end - vk_cs_start, vk_cs_abort\n\t"
                     /* The same section with an abort address not preceded by the signature. */
                     ".balign 32\n\t"
                     "vk_cs_bad:\n\t"
                     ".long 0, 0\n\t"
                     ".quad vk_cs_start, vk_cs_end - vk_cs_start, vk_cs_out\n\t"
                     ".popsection\n\t"
                     : [ab] "=&r"(aborted)
                     : [rs] "r"(rs), [flag] "r"(flag)
                     : "rax", "memory", "cc");
    return aborted;
}

extern char vk_cs_bad[];

static void on_alarm(int sig)
{
    (void)sig;
    stop = 1;
}

static void *thread_main(void *arg)
{
    (void)arg;
    /* A new thread has no registration: its own area registers. */
    long r = sys_rseq(&thread_area, sizeof thread_area, 0, SIG);
    return (void *)(r == 0 && thread_area.cpu_id == thread_area.cpu_id_start ? (void *)1 : NULL);
}

static void test_register(void)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    area.cpu_id = 0xdead;
    errno = 0;
    CHECK(sys_rseq(&area, 16, 0, SIG) == -1 && errno == EINVAL);
    CHECK(sys_rseq((char *)&area + 8, sizeof area, 0, SIG) == -1 && errno == EINVAL);
    CHECK(sys_rseq(&area, sizeof area, 2, SIG) == -1 && errno == EINVAL);
    CHECK(sys_rseq(&area, sizeof area, 0, SIG) == 0);
    CHECKF(area.cpu_id == area.cpu_id_start && area.cpu_id < (uint32_t)ncpu, "cpu_id %u start %u ncpu %ld",
           area.cpu_id, area.cpu_id_start, ncpu);
    CHECK(sys_rseq(&area, sizeof area, 0, SIG) == -1 && errno == EBUSY);
    CHECK(sys_rseq(&other, sizeof other, 0, SIG) == -1 && errno == EINVAL);
    CHECK(sys_rseq(&area, sizeof area, 0, SIG + 1) == -1 && errno == EPERM);
}

static void test_abort(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    REQUIRE(sigaction(SIGALRM, &sa, NULL) == 0);
    struct itimerval it = {{0, 0}, {0, 20000}};
    stop = 0;
    REQUIRE(setitimer(ITIMER_REAL, &it, NULL) == 0);
    /* A preemption aborts the section too: enter it again until the signal has come. The
     * last attempt is the one the signal interrupted. */
    int aborted;
    do
        aborted = spin_in_section(&area, &stop);
    while (!stop);
    CHECK(aborted == 1);
    CHECK(stop == 1);
    CHECK(area.rseq_cs == 0);
    /* Not interrupted: it runs to its end. */
    stop = 1;
    CHECK(spin_in_section(&area, &stop) == 0);
    /* Leave no descriptor behind for the checks below. */
    area.rseq_cs = 0;
}

static void test_bad_signature(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_alarm;
        sigaction(SIGALRM, &sa, NULL);
        /* The descriptor is checked when the signal comes: a bad one is SIGSEGV. */
        area.rseq_cs = (uint64_t)(uintptr_t)vk_cs_bad;
        struct itimerval it = {{0, 0}, {0, 20000}};
        setitimer(ITIMER_REAL, &it, NULL);
        for (;;)
            pause();
    }
    int st;
    CHECK(pid > 0 && waitpid(pid, &st, 0) == pid);
    CHECKF(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV, "status %#x", st);
}

static void test_inheritance(const char *self)
{
    pid_t pid = fork();
    if (pid == 0)
        _exit(sys_rseq(&area, sizeof area, 0, SIG) == -1 && errno == EBUSY ? 0 : 1);
    int st;
    CHECK(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);

    pthread_t t;
    void *ok = NULL;
    CHECK(pthread_create(&t, NULL, thread_main, NULL) == 0 && pthread_join(t, &ok) == 0 && ok == (void *)1);

    pid = fork();
    if (pid == 0) {
        execl(self, self, "exec-child", (char *)NULL);
        _exit(99);
    }
    CHECK(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void test_unregister(void)
{
    CHECK(sys_rseq(&other, sizeof other, RSEQ_FLAG_UNREGISTER, SIG) == -1 && errno == EINVAL);
    CHECK(sys_rseq(&area, sizeof area, RSEQ_FLAG_UNREGISTER, SIG + 1) == -1 && errno == EPERM);
    CHECK(sys_rseq(&area, sizeof area, RSEQ_FLAG_UNREGISTER | 2, SIG) == -1 && errno == EINVAL);
    CHECK(sys_rseq(&area, sizeof area, RSEQ_FLAG_UNREGISTER, SIG) == 0);
    CHECK(area.cpu_id == 0xffffffffu);
    CHECK(sys_rseq(&area, sizeof area, RSEQ_FLAG_UNREGISTER, SIG) == -1 && errno == EINVAL);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "exec-child") == 0) {
        /* After exec nothing is registered: the same address registers again. */
        return sys_rseq(&area, sizeof area, 0, SIG) == 0 ? 0 : 1;
    }
    vktest_reset_signals();
    test_register();
    test_abort();
    test_bad_signature();
    test_inheritance(argv[0]);
    test_unregister();
    vktest_done();
}
