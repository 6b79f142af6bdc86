/*
 * t_futexv — futex_waitv(2): waiting on several futex words at once.
 *
 * The argument checks in Linux's order (EINVAL for flags, counts, clocks, entry flags, sizes,
 * values that do not fit a 32-bit word, misaligned words; EFAULT), EAGAIN when a word changed,
 * absolute timeouts on CLOCK_MONOTONIC and CLOCK_REALTIME (ETIMEDOUT), a FUTEX_WAKE on any
 * of the words waking the waiter with that word's index (threads with FUTEX2_PRIVATE, and a
 * child process on a MAP_SHARED word), and a signal interrupting the wait (EINTR).
 */
#define _GNU_SOURCE
#include "vktest.h"

#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif
/* <linux/futex.h>'s values (musl's headers do not carry it). */
#define FUTEX_WAKE 1
#define FUTEX_PRIVATE_FLAG 128
#define FUTEX2_SIZE_U8 0x00
#define FUTEX2_SIZE_U32 0x02
#define FUTEX2_PRIVATE FUTEX_PRIVATE_FLAG

struct waitv {
    uint64_t val;
    uint64_t uaddr;
    uint32_t flags;
    uint32_t reserved;
};

static long futex_waitv(struct waitv *w, unsigned n, unsigned flags, struct timespec *ts, int clk)
{
    return syscall(SYS_futex_waitv, w, n, flags, ts, clk);
}

static long futex_wake(uint32_t *addr, int n, int private)
{
    return syscall(SYS_futex, addr, FUTEX_WAKE | (private ? FUTEX_PRIVATE_FLAG : 0), n, NULL, NULL, 0);
}

static void set(struct waitv *w, uint32_t *word, uint64_t val, uint32_t flags)
{
    memset(w, 0, sizeof *w);
    w->val = val;
    w->uaddr = (uintptr_t)word;
    w->flags = flags;
}

/* An absolute time `ms` milliseconds from now on `clk`. */
static struct timespec after_ms(clockid_t clk, long ms)
{
    struct timespec t;
    clock_gettime(clk, &t);
    t.tv_nsec += ms * 1000000L;
    while (t.tv_nsec >= 1000000000L) {
        t.tv_nsec -= 1000000000L;
        t.tv_sec++;
    }
    return t;
}

static uint32_t words[4];

static void test_einval(void)
{
    struct waitv w[2];
    const uint32_t U32P = FUTEX2_SIZE_U32 | FUTEX2_PRIVATE;
    set(&w[0], &words[0], 0, U32P);
    set(&w[1], &words[1], 0, U32P);
    struct timespec ts = after_ms(CLOCK_MONOTONIC, 1);

    errno = 0;
    CHECK(futex_waitv(w, 1, 1, &ts, CLOCK_MONOTONIC) == -1 && errno == EINVAL); /* flags */
    CHECK(futex_waitv(w, 0, 0, &ts, CLOCK_MONOTONIC) == -1 && errno == EINVAL); /* none */
    static struct waitv many[129];
    for (int i = 0; i < 129; i++)
        set(&many[i], &words[0], 0, U32P);
    CHECK(futex_waitv(many, 129, 0, &ts, CLOCK_MONOTONIC) == -1 && errno == EINVAL);
    CHECK(futex_waitv(NULL, 1, 0, &ts, CLOCK_MONOTONIC) == -1 && errno == EINVAL);
    CHECK(futex_waitv(w, 1, 0, &ts, CLOCK_BOOTTIME) == -1 && errno == EINVAL);
    CHECK(futex_waitv(w, 1, 0, &ts, CLOCK_PROCESS_CPUTIME_ID) == -1 && errno == EINVAL);
    CHECK(futex_waitv(w, 1, 0, BAD_PTR(8), CLOCK_MONOTONIC) == -1 && errno == EFAULT);
    CHECK(futex_waitv(BAD_PTR(8), 1, 0, &ts, CLOCK_MONOTONIC) == -1 && errno == EFAULT);

    set(&w[1], &words[1], 0, FUTEX2_SIZE_U8 | FUTEX2_PRIVATE); /* only 32-bit words */
    CHECK(futex_waitv(w, 2, 0, &ts, CLOCK_MONOTONIC) == -1 && errno == EINVAL);
    set(&w[1], &words[1], 0, U32P | 0x1000); /* an unknown flag */
    CHECK(futex_waitv(w, 2, 0, &ts, CLOCK_MONOTONIC) == -1 && errno == EINVAL);
    set(&w[1], &words[1], 0, U32P);
    w[1].reserved = 1;
    CHECK(futex_waitv(w, 2, 0, &ts, CLOCK_MONOTONIC) == -1 && errno == EINVAL);
    set(&w[1], &words[1], 1ULL << 32, U32P); /* a value wider than the word */
    CHECK(futex_waitv(w, 2, 0, &ts, CLOCK_MONOTONIC) == -1 && errno == EINVAL);
    set(&w[1], (uint32_t *)((char *)&words[1] + 1), 0, U32P); /* misaligned */
    CHECK(futex_waitv(w, 2, 0, &ts, CLOCK_MONOTONIC) == -1 && errno == EINVAL);
    set(&w[1], BAD_PTR(4096), 0, U32P); /* unmapped */
    CHECK(futex_waitv(w, 2, 0, &ts, CLOCK_MONOTONIC) == -1 && errno == EFAULT);
}

static void test_eagain_and_timeout(void)
{
    struct waitv w[3];
    const uint32_t U32P = FUTEX2_SIZE_U32 | FUTEX2_PRIVATE;
    words[0] = 5;
    words[1] = 6;
    words[2] = 7;
    set(&w[0], &words[0], 5, U32P);
    set(&w[1], &words[1], 6, U32P);
    set(&w[2], &words[2], 8, U32P); /* changed */
    struct timespec ts = after_ms(CLOCK_MONOTONIC, 1000);
    errno = 0;
    CHECK(futex_waitv(w, 3, 0, &ts, CLOCK_MONOTONIC) == -1 && errno == EAGAIN);

    set(&w[2], &words[2], 7, U32P);
    ts = after_ms(CLOCK_MONOTONIC, 20);
    CHECK(futex_waitv(w, 3, 0, &ts, CLOCK_MONOTONIC) == -1 && errno == ETIMEDOUT);
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    CHECK(now.tv_sec > ts.tv_sec || (now.tv_sec == ts.tv_sec && now.tv_nsec >= ts.tv_nsec));

    ts = after_ms(CLOCK_REALTIME, 20);
    CHECK(futex_waitv(w, 3, 0, &ts, CLOCK_REALTIME) == -1 && errno == ETIMEDOUT);
    clock_gettime(CLOCK_REALTIME, &now);
    CHECK(now.tv_sec > ts.tv_sec || (now.tv_sec == ts.tv_sec && now.tv_nsec >= ts.tv_nsec));

    /* A time already past: at once; a negative or malformed one: EINVAL. */
    ts.tv_sec = 0;
    ts.tv_nsec = 0;
    CHECK(futex_waitv(w, 3, 0, &ts, CLOCK_MONOTONIC) == -1 && errno == ETIMEDOUT);
    ts.tv_sec = -1;
    CHECK(futex_waitv(w, 3, 0, &ts, CLOCK_REALTIME) == -1 && errno == EINVAL);
    ts.tv_sec = 1;
    ts.tv_nsec = 1000000000L;
    CHECK(futex_waitv(w, 3, 0, &ts, CLOCK_MONOTONIC) == -1 && errno == EINVAL);
    /* A shared (not FUTEX2_PRIVATE) word in private memory times out the same way. */
    set(&w[0], &words[0], 5, FUTEX2_SIZE_U32);
    ts = after_ms(CLOCK_MONOTONIC, 10);
    CHECK(futex_waitv(w, 1, 0, &ts, CLOCK_MONOTONIC) == -1 && errno == ETIMEDOUT);
}

struct waiter {
    struct waitv w[3];
    long ret;
    int err;
};

static void *waiter_main(void *arg)
{
    struct waiter *s = arg;
    errno = 0;
    s->ret = futex_waitv(s->w, 3, 0, NULL, 0);
    s->err = errno;
    return NULL;
}

/* A thread waits on three words; a FUTEX_WAKE of word `k` wakes it with index k. */
static void test_wake_thread(int k)
{
    struct waiter s;
    for (int i = 0; i < 3; i++) {
        words[i] = 100 + i;
        set(&s.w[i], &words[i], 100 + i, FUTEX2_SIZE_U32 | FUTEX2_PRIVATE);
    }
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, waiter_main, &s) == 0);
    long n = 0;
    for (int tries = 0; tries < 20000 && n == 0; tries++) {
        n = futex_wake(&words[k], 1, 1);
        if (n == 0)
            usleep(500);
    }
    CHECKF(n == 1, "word %d: futex_wake woke %ld", k, n);
    pthread_join(t, NULL);
    CHECKF(s.ret == k, "word %d: futex_waitv returned %ld errno %d", k, s.ret, s.err);
    /* Nobody waits any more on any of the words. */
    CHECK(futex_wake(&words[0], 1, 1) == 0 && futex_wake(&words[1], 1, 1) == 0 &&
          futex_wake(&words[2], 1, 1) == 0);
}

/* A child waits on words of a MAP_SHARED page; the parent's shared FUTEX_WAKE wakes it. */
static void test_wake_shared(void)
{
    uint32_t *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(m != MAP_FAILED);
    m[0] = 1;
    m[1] = 2;
    pid_t pid = fork();
    if (pid == 0) {
        struct waitv w[2];
        set(&w[0], &m[0], 1, FUTEX2_SIZE_U32);
        set(&w[1], &m[1], 2, FUTEX2_SIZE_U32);
        long r = futex_waitv(w, 2, 0, NULL, 0);
        _exit(r == 1 ? 0 : 10 + (r < 0 ? errno : 50));
    }
    long n = 0;
    for (int tries = 0; tries < 20000 && n == 0; tries++) {
        n = futex_wake(&m[1], 1, 0);
        if (n == 0)
            usleep(500);
    }
    CHECK(n == 1);
    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
    munmap(m, 4096);
}

static volatile sig_atomic_t got_usr1;

static void on_usr1(int sig)
{
    (void)sig;
    got_usr1++;
}

/* A signal with a handler (no SA_RESTART) ends the wait with EINTR. */
static void test_signal(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL); /* the child inherits it */
    pid_t pid = fork();
    if (pid == 0) {
        struct waitv w[1];
        words[3] = 9;
        set(&w[0], &words[3], 9, FUTEX2_SIZE_U32 | FUTEX2_PRIVATE);
        errno = 0;
        long r = futex_waitv(w, 1, 0, NULL, 0);
        _exit(r == -1 && errno == EINTR && got_usr1 > 0 ? 0 : 1);
    }
    int st = 0;
    pid_t done = 0;
    for (int tries = 0; tries < 4000 && done == 0; tries++) {
        kill(pid, SIGUSR1);
        usleep(5000);
        done = waitpid(pid, &st, WNOHANG);
    }
    if (done == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
    }
    CHECKF(done == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
}

int main(void)
{
    vktest_reset_signals();
    test_einval();
    test_eagain_and_timeout();
    for (int k = 0; k < 3; k++)
        test_wake_thread(k);
    test_wake_shared();
    test_signal();
    vktest_done();
}
