/*
 * t_vmrace — private anonymous memory stays the process's own while other threads come and
 * go and the process forks: the races t_stress hits only rarely, made frequent.
 *
 * Usage: t_vmrace [rounds] (default 1; multiplies every loop, for long runs by hand).
 *
 * Workers (WORKERS threads) loop: mmap a small private anonymous region, check that it reads
 * zeros (a new mapping never shows old data), fill it, mprotect it read-only and check it, give
 * it to write(2) (the kernel reads it), mprotect it read-write, fill it again, check, munmap it.
 * Meanwhile one thread creates short-lived threads one after another (each touches its stack
 * and a page of its own, then exits) and another forks children that touch memory and exit.
 * A mapping operation a new thread's first run carried out late, after a later one, would
 * leave the stub process a stale page: a new region then shows old bytes, or a region's bytes
 * change under mprotect. Then a thread counts in a page while others fork and have the kernel
 * write into it (copy-on-write copies made while the counter could still write the old page).
 */
#include "vktest.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#define WORKERS 3
#define PAGE 4096
#define MAX_PAGES 4

static long rounds = 1;
static atomic_int bad;
static atomic_int stop_flag;
static atomic_long spawned, forked, regions;

#define BAD(...)                                                                           \
    do {                                                                                   \
        if (atomic_fetch_add(&bad, 1) < 20) {                                              \
            vktest_print("  bad [tid %ld] %s:%d: ", (long)syscall(SYS_gettid), __func__,  \
                         __LINE__);                                                        \
            vktest_print(__VA_ARGS__);                                                     \
            vktest_print("\n");                                                            \
        }                                                                                  \
    } while (0)

static void fill(volatile unsigned char *p, size_t len, unsigned tag)
{
    for (size_t i = 0; i < len; i++)
        p[i] = (unsigned char)(tag * 31 + i * 7 + 1);
}

/* The first byte that differs from the pattern, or -1. */
static long differs(const volatile unsigned char *p, size_t len, unsigned tag)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != (unsigned char)(tag * 31 + i * 7 + 1))
            return (long)i;
    return -1;
}

static long nonzero(const volatile unsigned char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != 0)
            return (long)i;
    return -1;
}

static void *worker(void *arg)
{
    long id = (long)arg;
    int null = open("/dev/null", O_WRONLY);
    if (null < 0)
        BAD("open /dev/null");
    for (long k = 0; k < 2000 * rounds; k++) {
        size_t len = (size_t)(1 + (k + id) % MAX_PAGES) * PAGE;
        unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            BAD("mmap");
            continue;
        }
        long at;
        if ((at = nonzero(p, len)) >= 0)
            BAD("new mapping %p+%ld reads %#x, not 0 (k=%ld)", (void *)p, at, p[at], k);
        unsigned tag = (unsigned)(id * 100000 + k);
        fill(p, len, tag);
        if (mprotect(p, len, PROT_READ) != 0)
            BAD("mprotect ro");
        if ((at = differs(p, len, tag)) >= 0)
            BAD("contents after mprotect ro: %p+%ld (k=%ld)", (void *)p, at, k);
        if (null >= 0 && write(null, p, len) != (ssize_t)len)
            BAD("write from mapping");
        if (mprotect(p, len, PROT_READ | PROT_WRITE) != 0)
            BAD("mprotect rw");
        fill(p, len, tag + 1);
        if ((at = differs(p, len, tag + 1)) >= 0)
            BAD("contents after refill: %p+%ld (k=%ld)", (void *)p, at, k);
        if (munmap(p, len) != 0)
            BAD("munmap");
        atomic_fetch_add(&regions, 1);
    }
    if (null >= 0)
        close(null);
    return NULL;
}

static void *brief(void *arg)
{
    /* A page of its own, touched: the new thread faults at once. */
    volatile unsigned char here[2 * PAGE];
    here[0] = (unsigned char)(long)arg;
    here[PAGE] = here[0];
    return NULL;
}

static void *spawner(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop_flag)) {
        pthread_t t;
        int e = pthread_create(&t, NULL, brief, (void *)1);
        if (e != 0) {
            BAD("pthread_create: %d", e);
            continue;
        }
        pthread_join(t, NULL);
        atomic_fetch_add(&spawned, 1);
    }
    return NULL;
}

static void *forker(void *arg)
{
    (void)arg;
    static unsigned char snap[4 * PAGE];
    for (unsigned k = 0; !atomic_load(&stop_flag); k++) {
        fill(snap, sizeof snap, k);
        pid_t pid = fork();
        if (pid < 0) {
            BAD("fork");
            continue;
        }
        if (pid == 0) {
            /* The child sees the buffer as it was at the fork, and may write its own copy. */
            int ok = differs(snap, sizeof snap, k) < 0;
            fill(snap, PAGE, k + 2);
            _exit(ok ? 0 : 3);
        }
        fill(snap, sizeof snap, k + 1);
        int st = 0;
        if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            BAD("fork child %d: status %#x", (int)pid, st);
        atomic_fetch_add(&forked, 1);
    }
    return NULL;
}

/*
 * Copy-on-write against a writing thread: one thread counts in a page (each value read back
 * before the next is written) while another forks children that stay a while (the page turns
 * copy-on-write, shared with them) and a third has the kernel write into the same page (a
 * system call's result), which copies it. A copy made while the counting thread could still
 * write the old page would lose its later increments: the count it reads goes back.
 */
static struct {
    volatile long count;
    char pad[120];
    struct timespec ts;
} __attribute__((aligned(4096))) cowpage;
static atomic_int cow_stop;

static void *cow_counter(void *arg)
{
    (void)arg;
    long expect = 0;
    while (!atomic_load(&cow_stop)) {
        long v = cowpage.count;
        if (v != expect) {
            BAD("count reads %ld, last written %ld", v, expect);
            expect = v;
        }
        cowpage.count = ++expect;
    }
    return NULL;
}

static void *cow_kernel_writer(void *arg)
{
    (void)arg;
    while (!atomic_load(&cow_stop))
        if (syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &cowpage.ts) != 0)
            BAD("clock_gettime");
    return NULL;
}

static void cow_race(void)
{
    pthread_t c, k;
    int ok_c = pthread_create(&c, NULL, cow_counter, NULL) == 0;
    int ok_k = pthread_create(&k, NULL, cow_kernel_writer, NULL) == 0;
    CHECK(ok_c && ok_k);
    for (long i = 0; i < 200 * rounds; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            BAD("fork");
            continue;
        }
        if (pid == 0) {
            struct timespec nap = {0, 200000};
            nanosleep(&nap, NULL);
            _exit(0);
        }
        int st = 0;
        if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            BAD("cow child %d: status %#x", (int)pid, st);
    }
    atomic_store(&cow_stop, 1);
    if (ok_c)
        pthread_join(c, NULL);
    if (ok_k)
        pthread_join(k, NULL);
    CHECK(cowpage.count > 0);
}

int main(int argc, char **argv)
{
    vktest_reset_signals();
    if (argc > 1)
        rounds = atol(argv[1]) > 0 ? atol(argv[1]) : 1;
    pthread_t w[WORKERS], s, f;
    int ok_s = pthread_create(&s, NULL, spawner, NULL) == 0;
    int ok_f = pthread_create(&f, NULL, forker, NULL) == 0;
    CHECK(ok_s && ok_f);
    int made = 0;
    for (long i = 0; i < WORKERS; i++)
        made += pthread_create(&w[i], NULL, worker, (void *)i) == 0 ? 1 : 0;
    CHECK(made == WORKERS);
    for (int i = 0; i < made; i++)
        pthread_join(w[i], NULL);
    atomic_store(&stop_flag, 1);
    if (ok_s)
        pthread_join(s, NULL);
    if (ok_f)
        pthread_join(f, NULL);
    CHECK(atomic_load(&regions) == WORKERS * 2000 * rounds);
    /* The churn really ran alongside the workers. */
    CHECK(atomic_load(&spawned) > 0 && atomic_load(&forked) > 0);
    CHECK(atomic_load(&bad) == 0);
    cow_race();
    CHECK(atomic_load(&bad) == 0);
    if (getenv("VMRACE_VERBOSE"))
        vktest_print("regions %ld threads %ld forks %ld\n", atomic_load(&regions),
                     atomic_load(&spawned), atomic_load(&forked));
    return vktest_done();
}
