/*
 * t_thread — threads and futexes.
 *
 * Covers: pthread_create/join with results; many threads; threads with a small stack; two
 * threads making progress concurrently (a ping-pong on an atomic, no timing); thread-local
 * storage (initialised .tdata copied, .tbss zero, distinct per thread — i.e. fs_base per
 * thread); mutex + condition variable producer/consumer; futex(2) directly: WAIT value mismatch
 * (EAGAIN), WAIT timeout (ETIMEDOUT, at least the time asked), WAKE counts, a shared futex
 * between processes on MAP_SHARED memory, CMP_REQUEUE / REQUEUE (and a requeued waiter that
 * times out leaving the queue it was moved to), WAKE_OP (the operation on the
 * second word and the conditional wake), WAIT_BITSET with an absolute timeout on MONOTONIC and
 * REALTIME clocks, WAKE_BITSET matching, bad arguments (ENOSYS for FUTEX_CLOCK_REALTIME but
 * with the bitset wait and for unknown commands, EINVAL for a zero bitset); raw clone with CLONE_PARENT_SETTID,
 * CLONE_CHILD_SETTID and CLONE_CHILD_CLEARTID, set_tid_address; set/get_robust_list (another
 * process's too: ESRCH, EPERM for another user's); a non-main
 * thread exiting leaves the process running; the main thread exiting alone leaves the others
 * running; exit_group from a secondary thread ends all; execve from a secondary thread gives the
 * new image the process's pid.
 *
 * Deterministic futex tests: to know that a waiter is really asleep in the kernel, waiters sleep
 * on a "staging" word and the test moves them with FUTEX_CMP_REQUEUE, which returns how many it
 * moved; only waiters queued in the kernel can be moved.
 *
 * Linux-specific: futex(2) semantics; FUTEX_REQUEUE returning woken + requeued like
 * FUTEX_CMP_REQUEUE (the man page only promises the woken count); the leader's pid surviving
 * execve from another thread.
 */
#include "vktest.h"

#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#define FUTEX_WAIT 0
#define FUTEX_WAKE 1
#define FUTEX_REQUEUE 3
#define FUTEX_CMP_REQUEUE 4
#define FUTEX_WAKE_OP 5
#define FUTEX_WAIT_BITSET 9
#define FUTEX_WAKE_BITSET 10
#define FUTEX_PRIVATE_FLAG 128
#define FUTEX_CLOCK_REALTIME 256
#define FUTEX_OP_SET 0
#define FUTEX_OP_ADD 1
#define FUTEX_OP_CMP_EQ 0
#define FUTEX_OP_CMP_GT 4
#define FUTEX_OP(op, oparg, cmp, cmparg)                                                    \
    ((((op) & 0xf) << 28) | (((cmp) & 0xf) << 24) | (((oparg) & 0xfff) << 12) |            \
     ((cmparg) & 0xfff))

#ifndef CLONE_VM
#define CLONE_VM 0x100
#endif

static long futex(atomic_int *uaddr, int op, int val, const struct timespec *timeout,
                  atomic_int *uaddr2, int val3)
{
    return syscall(SYS_futex, uaddr, op, val, timeout, uaddr2, val3);
}

/* For the requeue family the fourth argument is a count, not a pointer. */
static long futex_requeue(atomic_int *uaddr, int op, int nr_wake, long nr_requeue,
                          atomic_int *uaddr2, int val3)
{
    return syscall(SYS_futex, uaddr, op, nr_wake, nr_requeue, uaddr2, val3);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

static int64_t now_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * Move waiters asleep on `from` (whose value is `expected`) to `to` until `count` have moved.
 * Returns how many moved; bounded so a broken kernel fails the check instead of hanging.
 */
static int requeue_sleepers(atomic_int *from, int expected, atomic_int *to, int count, int op)
{
    int moved = 0;
    for (int tries = 0; tries < 5000 && moved < count; tries++) {
        long r = futex_requeue(from, op, 0, INT_MAX, to, expected);
        if (r > 0)
            moved += (int)r;
        else if (moved < count)
            sleep_ms(1);
    }
    return moved;
}

/* ---------------------------------------------------------------- basics */

static void *square(void *arg)
{
    intptr_t n = (intptr_t)arg;
    return (void *)(n * n);
}

static void test_create_join(void)
{
    pthread_t threads[32];
    int created = 0;
    for (intptr_t i = 0; i < 32; i++)
        created += pthread_create(&threads[i], NULL, square, (void *)i) == 0;
    CHECK(created == 32);
    int right = 0;
    for (intptr_t i = 0; i < created; i++) {
        void *result = NULL;
        if (pthread_join(threads[i], &result) == 0 && (intptr_t)result == i * i)
            right++;
    }
    CHECK(right == 32);
}

static void *deep_frame(void *arg)
{
    volatile char frame[32 * 1024];
    for (size_t i = 0; i < sizeof frame; i += 512)
        frame[i] = (char)i;
    (void)arg;
    return (void *)(intptr_t)(frame[512] == (char)512);
}

static void test_small_stack(void)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    CHECK(pthread_attr_setstacksize(&attr, 64 * 1024) == 0);
    pthread_t t;
    void *result = NULL;
    CHECK(pthread_create(&t, &attr, deep_frame, NULL) == 0 && pthread_join(t, &result) == 0);
    CHECK(result == (void *)1);
    pthread_attr_destroy(&attr);
}

struct ids {
    pid_t tid;
    pid_t pid;
};

static void *report_ids(void *arg)
{
    struct ids *ids = arg;
    ids->tid = (pid_t)syscall(SYS_gettid);
    ids->pid = getpid();
    return NULL;
}

static void test_thread_ids(void)
{
    struct ids ids = {0, 0};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, report_ids, &ids) == 0 && pthread_join(t, NULL) == 0);
    CHECK(ids.pid == getpid());            /* same thread group */
    CHECK(ids.tid > 0 && ids.tid != getpid()); /* its own tid */
}

/* ---------------------------------------------------------------- concurrency */

static atomic_int ping_pong;
enum { ROUNDS = 2000 };

static void *ping_pong_player(void *arg)
{
    int parity = (int)(intptr_t)arg;
    for (int round = 0; round < ROUNDS; round++) {
        long spins = 0;
        while ((atomic_load(&ping_pong) & 1) != parity) {
            if (++spins > 200000000L)
                return (void *)0; /* the other thread never ran */
            sched_yield();
        }
        atomic_fetch_add(&ping_pong, 1);
    }
    return (void *)1;
}

static void test_concurrent_progress(void)
{
    atomic_store(&ping_pong, 0);
    pthread_t even, odd;
    REQUIRE(pthread_create(&even, NULL, ping_pong_player, (void *)0) == 0);
    REQUIRE(pthread_create(&odd, NULL, ping_pong_player, (void *)1) == 0);
    void *r1 = NULL, *r2 = NULL;
    pthread_join(even, &r1);
    pthread_join(odd, &r2);
    CHECK(r1 == (void *)1 && r2 == (void *)1);
    CHECK(atomic_load(&ping_pong) == 2 * ROUNDS);
}

/* ---------------------------------------------------------------- TLS */

static __thread int tls_initialised = 5;
static __thread char tls_zero[256];
static pthread_barrier_t tls_barrier;

static void *tls_worker(void *arg)
{
    intptr_t id = (intptr_t)arg;
    int ok = tls_initialised == 5;
    for (size_t i = 0; i < sizeof tls_zero; i++)
        ok &= tls_zero[i] == 0;
    tls_initialised = (int)(100 + id);
    memset(tls_zero, (int)id, sizeof tls_zero);
    pthread_barrier_wait(&tls_barrier); /* everyone has written their own copy */
    ok &= tls_initialised == 100 + id && tls_zero[255] == (char)id;
    static _Atomic(uintptr_t) addresses[4];
    addresses[id] = (uintptr_t)&tls_initialised;
    pthread_barrier_wait(&tls_barrier);
    for (int other = 0; other < 4; other++)
        if (other != id)
            ok &= addresses[other] != addresses[id];
    return (void *)(intptr_t)ok;
}

static void test_tls(void)
{
    tls_initialised = 1;
    REQUIRE(pthread_barrier_init(&tls_barrier, NULL, 4) == 0);
    pthread_t threads[4];
    for (intptr_t i = 0; i < 4; i++)
        REQUIRE(pthread_create(&threads[i], NULL, tls_worker, (void *)i) == 0);
    int good = 0;
    for (int i = 0; i < 4; i++) {
        void *r = NULL;
        pthread_join(threads[i], &r);
        good += r == (void *)1;
    }
    CHECK(good == 4);
    CHECK(tls_initialised == 1); /* main's copy untouched */
    pthread_barrier_destroy(&tls_barrier);
}

/* ---------------------------------------------------------------- mutex + condvar */

enum { QUEUE_SIZE = 4, ITEMS_PER_PRODUCER = 5000, PRODUCERS = 2, CONSUMERS = 2 };
static struct {
    pthread_mutex_t lock;
    pthread_cond_t not_empty, not_full;
    int items[QUEUE_SIZE];
    int head, count, producers_left;
    long long consumed_sum;
    int consumed_count;
} queue = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER};

static void *producer(void *arg)
{
    int base = (int)(intptr_t)arg * ITEMS_PER_PRODUCER;
    for (int i = 1; i <= ITEMS_PER_PRODUCER; i++) {
        pthread_mutex_lock(&queue.lock);
        while (queue.count == QUEUE_SIZE)
            pthread_cond_wait(&queue.not_full, &queue.lock);
        queue.items[(queue.head + queue.count) % QUEUE_SIZE] = base + i;
        queue.count++;
        pthread_cond_signal(&queue.not_empty);
        pthread_mutex_unlock(&queue.lock);
    }
    pthread_mutex_lock(&queue.lock);
    queue.producers_left--;
    pthread_cond_broadcast(&queue.not_empty);
    pthread_mutex_unlock(&queue.lock);
    return NULL;
}

static void *consumer(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&queue.lock);
        while (queue.count == 0 && queue.producers_left > 0)
            pthread_cond_wait(&queue.not_empty, &queue.lock);
        if (queue.count == 0) {
            pthread_mutex_unlock(&queue.lock);
            return NULL;
        }
        int item = queue.items[queue.head];
        queue.head = (queue.head + 1) % QUEUE_SIZE;
        queue.count--;
        queue.consumed_sum += item;
        queue.consumed_count++;
        pthread_cond_signal(&queue.not_full);
        pthread_mutex_unlock(&queue.lock);
    }
}

static void test_producer_consumer(void)
{
    queue.producers_left = PRODUCERS;
    pthread_t producers[PRODUCERS], consumers[CONSUMERS];
    for (intptr_t i = 0; i < CONSUMERS; i++)
        REQUIRE(pthread_create(&consumers[i], NULL, consumer, NULL) == 0);
    for (intptr_t i = 0; i < PRODUCERS; i++)
        REQUIRE(pthread_create(&producers[i], NULL, producer, (void *)i) == 0);
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(producers[i], NULL);
    for (int i = 0; i < CONSUMERS; i++)
        pthread_join(consumers[i], NULL);
    long long n = (long long)PRODUCERS * ITEMS_PER_PRODUCER;
    CHECK(queue.consumed_count == n);
    CHECK(queue.consumed_sum == n * (n + 1) / 2);
}

/* ---------------------------------------------------------------- futex */

static atomic_int futex_word;
static atomic_int wakeups;

static void *wait_until_nonzero(void *arg)
{
    (void)arg;
    while (atomic_load(&futex_word) == 0)
        if (futex(&futex_word, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, 0, NULL, NULL, 0) == 0)
            atomic_fetch_add(&wakeups, 1);
    return NULL;
}

static void test_futex_basics(void)
{
    atomic_int word = 1;
    CHECK(futex(&word, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, 2, NULL, NULL, 0) == -1 &&
          errno == EAGAIN);
    CHECK(futex(&word, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1, NULL, NULL, 0) == 0);

    struct timespec timeout = {0, 10 * 1000000L};
    int64_t start = now_ns(CLOCK_MONOTONIC);
    CHECK(futex(&word, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, 1, &timeout, NULL, 0) == -1 &&
          errno == ETIMEDOUT);
    CHECK(now_ns(CLOCK_MONOTONIC) - start >= 10 * 1000000L);

    struct timespec bad = {0, 1000000000L};
    CHECK(futex(&word, FUTEX_WAIT, 1, &bad, NULL, 0) == -1 && errno == EINVAL);
    CHECK(syscall(SYS_futex, (char *)&word + 1, FUTEX_WAKE, 1, NULL, NULL, 0) == -1 &&
          errno == EINVAL);
    CHECK(futex(&word, 99, 0, NULL, NULL, 0) == -1 && errno == ENOSYS);
    /* FUTEX_CLOCK_REALTIME goes with FUTEX_WAIT_BITSET (of the calls here) only; an unknown
     * bit makes an unknown command; a zero bitset would match no one. */
    CHECK(futex(&word, FUTEX_WAKE | FUTEX_CLOCK_REALTIME, 1, NULL, NULL, 0) == -1 && errno == ENOSYS);
    CHECK(futex(&word, FUTEX_WAIT | FUTEX_CLOCK_REALTIME, 2, NULL, NULL, 0) == -1 && errno == ENOSYS);
    CHECK(futex(&word, FUTEX_WAKE | 0x1000, 1, NULL, NULL, 0) == -1 && errno == ENOSYS);
    CHECK(futex(&word, FUTEX_WAKE_BITSET, 1, NULL, NULL, 0) == -1 && errno == EINVAL);
    CHECK(futex(&word, FUTEX_WAIT_BITSET, 2, NULL, NULL, 0) == -1 && errno == EINVAL);
    CHECK(futex(&word, FUTEX_WAIT_BITSET | FUTEX_CLOCK_REALTIME, 2, NULL, NULL, ~0) == -1 &&
          errno == EAGAIN);
    CHECK(futex(BAD_PTR(0x1000), FUTEX_WAIT, 0, NULL, NULL, 0) == -1 && errno == EFAULT);

    /* A real wait/wake: wake until one waiter is actually woken, then release it. */
    atomic_store(&futex_word, 0);
    atomic_store(&wakeups, 0);
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, wait_until_nonzero, NULL) == 0);
    long woken = 0;
    for (int tries = 0; tries < 5000 && woken != 1; tries++) {
        woken = futex(&futex_word, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, INT_MAX, NULL, NULL, 0);
        if (woken != 1)
            sleep_ms(1);
    }
    CHECK(woken == 1);
    atomic_store(&futex_word, 1);
    futex(&futex_word, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, INT_MAX, NULL, NULL, 0);
    pthread_join(t, NULL);
    CHECK(atomic_load(&wakeups) >= 1);
}

static void test_futex_shared_between_processes(void)
{
    atomic_int *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                              -1, 0);
    REQUIRE(shared != MAP_FAILED);
    if (shared == MAP_FAILED)
        return;
    atomic_store(&shared[0], 0); /* the word the child sleeps on */
    atomic_store(&shared[1], 0); /* staging word */
    pid_t pid = fork();
    if (pid == 0) {
        /* Sleep on the staging word; the parent moves us to word 0 and wakes us there. */
        while (atomic_load(&shared[0]) == 0)
            futex(&shared[1], FUTEX_WAIT, 0, NULL, NULL, 0);
        _exit(atomic_load(&shared[0]) == 7 ? 0 : 1);
    }
    /* Non-private futexes on shared memory: the requeue sees the child's waiter. */
    CHECK(requeue_sleepers(&shared[1], 0, &shared[0], 1, FUTEX_CMP_REQUEUE) == 1);
    atomic_store(&shared[0], 7);
    CHECK(futex(&shared[0], FUTEX_WAKE, 1, NULL, NULL, 0) == 1);
    int status = -1;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    munmap(shared, 4096);
}

/* Waiters for the requeue / wake-op / bitset tests: sleep on `stage` until `*release`. */
struct sleeper {
    atomic_int *stage;
    atomic_int *release;
    int op;          /* FUTEX_WAIT_BITSET or FUTEX_WAIT (with the private flag) */
    unsigned bitset; /* for FUTEX_WAIT_BITSET */
};

static void *sleeper_main(void *arg)
{
    struct sleeper *s = arg;
    while (atomic_load(s->release) == 0) {
        long r = s->op == (FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG)
                     ? futex(s->stage, s->op, 0, NULL, NULL, (int)s->bitset)
                     : futex(s->stage, s->op, 0, NULL, NULL, 0);
        if (r == 0)
            atomic_fetch_add(&wakeups, 1);
    }
    return NULL;
}

static void test_futex_requeue(void)
{
    enum { N = 4 };
    static atomic_int stage, b, c, release;
    atomic_store(&stage, 0);
    atomic_store(&b, 0);
    atomic_store(&c, 0);
    atomic_store(&release, 0);
    atomic_store(&wakeups, 0);
    struct sleeper s = {&stage, &release, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, 0};
    pthread_t threads[N];
    for (int i = 0; i < N; i++)
        REQUIRE(pthread_create(&threads[i], NULL, sleeper_main, &s) == 0);

    const int cmp_requeue = FUTEX_CMP_REQUEUE | FUTEX_PRIVATE_FLAG;
    CHECK(futex_requeue(&stage, cmp_requeue, 0, INT_MAX, &b, 1) == -1 && errno == EAGAIN);
    CHECK(requeue_sleepers(&stage, 0, &b, N, cmp_requeue) == N); /* all N asleep, now on b */
    CHECK(futex(&stage, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, INT_MAX, NULL, NULL, 0) == 0);

    /* FUTEX_REQUEUE: wake one, move the rest to c. */
    long r = futex_requeue(&b, FUTEX_REQUEUE | FUTEX_PRIVATE_FLAG, 1, INT_MAX, &c, 0);
    CHECKF(r == N, "FUTEX_REQUEUE returned %ld, want %d (woken + requeued)", r, N);
    CHECK(futex(&b, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, INT_MAX, NULL, NULL, 0) == 0);
    CHECK(futex(&c, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, INT_MAX, NULL, NULL, 0) == N - 1);

    /* CMP_REQUEUE waking some: wake 2, requeue the rest back. */
    CHECK(requeue_sleepers(&stage, 0, &b, N, cmp_requeue) == N);
    r = futex_requeue(&b, cmp_requeue, 2, INT_MAX, &c, 0);
    CHECK(r == N);
    CHECK(futex(&c, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, INT_MAX, NULL, NULL, 0) == N - 2);

    atomic_store(&release, 1);
    atomic_store(&stage, 1);
    futex(&stage, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, INT_MAX, NULL, NULL, 0);
    for (int i = 0; i < N; i++)
        pthread_join(threads[i], NULL);
    CHECK(atomic_load(&wakeups) >= N + N);
}

/* A waiter with a timeout, for the requeue-then-timeout test. */
struct timed_waiter {
    atomic_int *stage;
    long timeout_ms;
    int result; /* 0, or the errno of the wait */
};

static void *timed_waiter_main(void *arg)
{
    struct timed_waiter *t = arg;
    struct timespec ts = {t->timeout_ms / 1000, (t->timeout_ms % 1000) * 1000000L};
    long r = futex(t->stage, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, 0, &ts, NULL, 0);
    t->result = r == 0 ? 0 : errno;
    return NULL;
}

static void test_futex_requeued_timeout(void)
{
    static atomic_int stage, target;
    atomic_store(&stage, 0);
    atomic_store(&target, 0);
    struct timed_waiter t = {&stage, 500, -1};
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, timed_waiter_main, &t) == 0);
    /* Moved to `target` while asleep, then timed out: it must have left target's queue. */
    CHECK(requeue_sleepers(&stage, 0, &target, 1, FUTEX_CMP_REQUEUE | FUTEX_PRIVATE_FLAG) == 1);
    pthread_join(th, NULL);
    CHECKF(t.result == ETIMEDOUT, "requeued waiter: %d, want ETIMEDOUT", t.result);
    CHECK(futex(&target, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, INT_MAX, NULL, NULL, 0) == 0);
    CHECK(futex(&stage, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, INT_MAX, NULL, NULL, 0) == 0);
}

static void test_futex_wake_op(void)
{
    static atomic_int stage1, stage2, w1, w2, release;
    atomic_store(&stage1, 0);
    atomic_store(&stage2, 0);
    atomic_store(&w1, 0);
    atomic_store(&w2, 0);
    atomic_store(&release, 0);
    const int priv = FUTEX_PRIVATE_FLAG;

    /* No waiters: only the operation on the second word happens. */
    atomic_int a = 0, x = 10;
    CHECK(futex_requeue(&a, FUTEX_WAKE_OP | priv, 1, 1, &x,
                        FUTEX_OP(FUTEX_OP_ADD, 5, FUTEX_OP_CMP_EQ, 10)) == 0);
    CHECK(atomic_load(&x) == 15);

    struct sleeper s1 = {&stage1, &release, FUTEX_WAIT | priv, 0};
    struct sleeper s2 = {&stage2, &release, FUTEX_WAIT | priv, 0};
    pthread_t t1, t2;
    REQUIRE(pthread_create(&t1, NULL, sleeper_main, &s1) == 0);
    REQUIRE(pthread_create(&t2, NULL, sleeper_main, &s2) == 0);

    /* Condition true (old w2 == 0): wakes the waiter on w1 and the one on w2. */
    CHECK(requeue_sleepers(&stage1, 0, &w1, 1, FUTEX_CMP_REQUEUE | priv) == 1);
    CHECK(requeue_sleepers(&stage2, 0, &w2, 1, FUTEX_CMP_REQUEUE | priv) == 1);
    long r = futex_requeue(&w1, FUTEX_WAKE_OP | priv, 1, 1, &w2,
                           FUTEX_OP(FUTEX_OP_SET, 5, FUTEX_OP_CMP_EQ, 0));
    CHECK(r == 2);
    CHECK(atomic_load(&w2) == 5);

    /* Condition false (old w2 == 5, not > 5): only the waiter on w1 is woken. */
    CHECK(requeue_sleepers(&stage1, 0, &w1, 1, FUTEX_CMP_REQUEUE | priv) == 1);
    CHECK(requeue_sleepers(&stage2, 0, &w2, 1, FUTEX_CMP_REQUEUE | priv) == 1);
    r = futex_requeue(&w1, FUTEX_WAKE_OP | priv, 1, 1, &w2,
                      FUTEX_OP(FUTEX_OP_ADD, 1, FUTEX_OP_CMP_GT, 5));
    CHECK(r == 1);
    CHECK(atomic_load(&w2) == 6);
    CHECK(futex(&w2, FUTEX_WAKE | priv, 1, NULL, NULL, 0) == 1); /* still there */

    atomic_store(&release, 1);
    atomic_store(&stage1, 1);
    atomic_store(&stage2, 1);
    futex(&stage1, FUTEX_WAKE | priv, INT_MAX, NULL, NULL, 0);
    futex(&stage2, FUTEX_WAKE | priv, INT_MAX, NULL, NULL, 0);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
}

static void test_futex_bitset(void)
{
    const int priv = FUTEX_PRIVATE_FLAG;
    atomic_int word = 0;
    CHECK(futex(&word, FUTEX_WAIT_BITSET | priv, 0, NULL, NULL, 0) == -1 && errno == EINVAL);

    /* Absolute timeouts: MONOTONIC by default, REALTIME with FUTEX_CLOCK_REALTIME. */
    int64_t deadline = now_ns(CLOCK_MONOTONIC) + 10 * 1000000L;
    struct timespec abs = {deadline / 1000000000, deadline % 1000000000};
    CHECK(futex(&word, FUTEX_WAIT_BITSET | priv, 0, &abs, NULL, -1) == -1 && errno == ETIMEDOUT);
    CHECK(now_ns(CLOCK_MONOTONIC) >= deadline);
    deadline = now_ns(CLOCK_REALTIME) + 10 * 1000000L;
    abs.tv_sec = deadline / 1000000000;
    abs.tv_nsec = deadline % 1000000000;
    CHECK(futex(&word, FUTEX_WAIT_BITSET | priv | FUTEX_CLOCK_REALTIME, 0, &abs, NULL, -1) ==
              -1 &&
          errno == ETIMEDOUT);
    CHECK(now_ns(CLOCK_REALTIME) >= deadline);

    static atomic_int stage, target, release;
    atomic_store(&stage, 0);
    atomic_store(&target, 0);
    atomic_store(&release, 0);
    struct sleeper s = {&stage, &release, FUTEX_WAIT_BITSET | priv, 0x1};
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, sleeper_main, &s) == 0);
    CHECK(requeue_sleepers(&stage, 0, &target, 1, FUTEX_CMP_REQUEUE | priv) == 1);
    CHECK(futex(&target, FUTEX_WAKE_BITSET | priv, INT_MAX, NULL, NULL, 0x2) == 0);
    CHECK(futex(&target, FUTEX_WAKE_BITSET | priv, INT_MAX, NULL, NULL, 0x3) == 1);
    /* Plain FUTEX_WAKE matches any bitset. */
    CHECK(requeue_sleepers(&stage, 0, &target, 1, FUTEX_CMP_REQUEUE | priv) == 1);
    CHECK(futex(&target, FUTEX_WAKE | priv, 1, NULL, NULL, 0) == 1);
    atomic_store(&release, 1);
    atomic_store(&stage, 1);
    futex(&stage, FUTEX_WAKE | priv, INT_MAX, NULL, NULL, 0);
    pthread_join(t, NULL);
}

/* ---------------------------------------------------------------- raw clone, tid words */

#ifndef CLONE_THREAD
#define CLONE_THREAD 0x10000
#endif

static atomic_int settid_parent, settid_child;  /* CLONE_PARENT_SETTID / CHILD_SETTID words */
static atomic_int tid_address_word;              /* set_tid_address target */
static atomic_int raw_child_tid, raw_child_saw, raw_child_ret, raw_go;

/* Runs on a bare clone: no libc calls that could touch errno, TLS or locks. */
static int raw_thread_cleartid(void *arg)
{
    (void)arg;
    atomic_store(&raw_child_tid, (int)syscall(SYS_gettid));
    atomic_store(&raw_child_saw, atomic_load(&settid_child));
    while (atomic_load(&raw_go) == 0)
        syscall(SYS_sched_yield);
    return 0;
}

static int raw_thread_set_tid_address(void *arg)
{
    (void)arg;
    int tid = (int)syscall(SYS_gettid);
    atomic_store(&tid_address_word, tid);
    atomic_store(&raw_child_ret, (int)syscall(SYS_set_tid_address, &tid_address_word));
    return 0;
}

static void wait_word_zero(atomic_int *word)
{
    int v;
    for (int tries = 0; tries < 5000 && (v = atomic_load(word)) != 0; tries++) {
        struct timespec ts = {0, 1000000L};
        futex(word, FUTEX_WAIT, v, &ts, NULL, 0);
    }
}

static void test_raw_clone_tid_words(void)
{
    const int flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
                      CLONE_SYSVSEM;
    size_t stack_len = 64 * 1024;
    char *stack = mmap(NULL, stack_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(stack != MAP_FAILED);
    if (stack == MAP_FAILED)
        return;

    atomic_store(&raw_go, 0);
    int tid = clone(raw_thread_cleartid, stack + stack_len,
                    flags | CLONE_PARENT_SETTID | CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID,
                    NULL, &settid_parent, NULL, &settid_child);
    CHECK(tid > 0);
    CHECK(atomic_load(&settid_parent) == tid); /* set before clone returns */
    while (atomic_load(&raw_child_tid) == 0)
        sched_yield();
    CHECK(atomic_load(&raw_child_tid) == tid);
    CHECK(atomic_load(&raw_child_saw) == tid); /* CHILD_SETTID wrote it before the child ran */
    atomic_store(&raw_go, 1);
    wait_word_zero(&settid_child); /* CHILD_CLEARTID: zeroed and woken at thread exit */
    CHECK(atomic_load(&settid_child) == 0);

    /* set_tid_address: returns the caller's tid, and its word is cleared at exit. Wait until
     * the first thread's stack is no longer in use (its tid word is clear) before reusing. */
    tid = clone(raw_thread_set_tid_address, stack + stack_len, flags | CLONE_PARENT_SETTID, NULL,
                &settid_parent, NULL, NULL);
    CHECK(tid > 0);
    while (atomic_load(&raw_child_ret) == 0)
        sched_yield();
    CHECK(atomic_load(&raw_child_ret) == tid);
    wait_word_zero(&tid_address_word);
    CHECK(atomic_load(&tid_address_word) == 0);
    /* The process is unaffected by those threads' exits. */
    CHECK(getpid() == syscall(SYS_gettid));
    munmap(stack, stack_len);

    /* And set_tid_address on the main thread just returns our tid (restore musl's pointer
     * is impossible from here, so only query through a forked child). */
    pid_t pid = fork();
    if (pid == 0) {
        static int dummy;
        _exit(syscall(SYS_set_tid_address, &dummy) == getpid() ? 0 : 1);
    }
    int status = -1;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

struct robust_list_head {
    void *list;
    long futex_offset;
    void *list_op_pending;
};

static void test_robust_list(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        static struct robust_list_head head = {&head, 0, NULL};
        if (syscall(SYS_set_robust_list, &head, sizeof head - 1) != -1 || errno != EINVAL)
            _exit(1);
        if (syscall(SYS_set_robust_list, &head, sizeof head) != 0)
            _exit(2);
        void *got = NULL;
        size_t len = 0;
        if (syscall(SYS_get_robust_list, 0, &got, &len) != 0 || got != &head ||
            len != sizeof head)
            _exit(3);
        /* Another process's: its head (a parent's is none yet); no process: ESRCH. */
        got = &len;
        if (syscall(SYS_get_robust_list, getppid(), &got, &len) != 0 || len != sizeof head)
            _exit(4);
        if (syscall(SYS_get_robust_list, 999999, &got, &len) != -1 || errno != ESRCH)
            _exit(5);
        /* Another user's: EPERM. */
        pid_t gp = getppid();
        if (setuid(65534) != 0)
            _exit(6);
        if (syscall(SYS_get_robust_list, gp, &got, &len) != -1 || errno != EPERM)
            _exit(7);
        _exit(0);
    }
    int status = -1;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "step %d", WEXITSTATUS(status));
}

/* Robust futexes whose owner dies holding them: the kernel walks the dead thread's robust list
 * and marks each word it still owns OWNER_DIED, waking a waiter. The C library walks the list
 * itself in pthread_exit, so the owners here leave by SYS_exit; a raw clone thread keeps musl's
 * thread list out of it. */
struct robust_lock {
    struct robust_lock *next; /* the list entry */
    atomic_uint word;         /* the futex word: owner tid | WAITERS | OWNER_DIED */
};
static struct robust_list_head robust_head;
static struct robust_lock robust_held, robust_pending, robust_free;
static atomic_int robust_ready, robust_go;
static atomic_int robust_exited = 1;

static int raw_thread_robust(void *arg)
{
    (void)arg;
    unsigned tid = syscall(SYS_gettid);
    robust_head.futex_offset = offsetof(struct robust_lock, word);
    robust_head.list = &robust_held; /* head -> held -> free -> head */
    robust_held.next = &robust_free;
    robust_free.next = (struct robust_lock *)&robust_head;
    atomic_store(&robust_held.word, tid);
    atomic_store(&robust_free.word, 0);
    atomic_store(&robust_pending.word, tid); /* taken, not yet linked in */
    robust_head.list_op_pending = &robust_pending;
    if (syscall(SYS_set_robust_list, &robust_head, sizeof robust_head) != 0)
        syscall(SYS_exit, 1);
    atomic_store(&robust_ready, tid);
    while (!atomic_load(&robust_go))
        syscall(SYS_sched_yield);
    syscall(SYS_exit, 0);
    return 0;
}

static void test_robust_futexes(void)
{
    const unsigned WAITERS = 0x80000000u, OWNER_DIED = 0x40000000u;
    size_t stack_len = 64 * 1024;
    char *stack = mmap(NULL, stack_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(stack != MAP_FAILED);
    if (stack == MAP_FAILED)
        return;
    int tid = clone(raw_thread_robust, stack + stack_len,
                    CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
                        CLONE_SYSVSEM | CLONE_CHILD_CLEARTID,
                    NULL, NULL, NULL, &robust_exited);
    CHECK(tid > 0);
    while (atomic_load(&robust_ready) == 0)
        sched_yield();
    /* Wait for the held lock as a locker would: WAITERS set, then sleep on the word. */
    unsigned v = (unsigned)tid;
    CHECK(atomic_compare_exchange_strong(&robust_held.word, &v, v | WAITERS));
    atomic_store(&robust_go, 1);
    for (;;) {
        unsigned w = atomic_load(&robust_held.word);
        if (w & OWNER_DIED)
            break;
        syscall(SYS_futex, &robust_held.word, FUTEX_WAIT, w, NULL, NULL, 0);
    }
    CHECKF(atomic_load(&robust_held.word) == (WAITERS | OWNER_DIED), "held %#x",
           atomic_load(&robust_held.word));
    wait_word_zero(&robust_exited);
    CHECKF(atomic_load(&robust_pending.word) == OWNER_DIED, "pending %#x",
           atomic_load(&robust_pending.word));
    CHECK(atomic_load(&robust_free.word) == 0); /* not the dead thread's: untouched */
    munmap(stack, stack_len);
}

/* A robust, process-shared pthread mutex (musl registers those with the kernel). */
static void test_robust_mutexes(void)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    REQUIRE(pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST) == 0);
    REQUIRE(pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED) == 0);

    /* In shared memory: a child process dies holding it. */
    pthread_mutex_t *sm = mmap(NULL, sizeof *sm, PROT_READ | PROT_WRITE,
                               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(sm != MAP_FAILED);
    REQUIRE(pthread_mutex_init(sm, &a) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        if (pthread_mutex_lock(sm) != 0)
            _exit(1);
        _exit(0); /* holding it */
    }
    int status = -1;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(pthread_mutex_lock(sm) == EOWNERDEAD);
    CHECK(pthread_mutex_consistent(sm) == 0);
    CHECK(pthread_mutex_unlock(sm) == 0);
    munmap(sm, sizeof *sm);
    pthread_mutexattr_destroy(&a);
}

/* ---------------------------------------------------------------- thread exits, execve */

static void *return_seven(void *arg)
{
    (void)arg;
    pthread_exit((void *)7);
}

static void *exit_process_later(void *arg)
{
    (void)arg;
    sleep_ms(20);
    exit(7); /* exit_group from a secondary thread after the main thread has gone */
}

static void *exit_group_now(void *arg)
{
    (void)arg;
    _exit(5);
}

static char self_path[256];

static void *exec_from_thread(void *arg)
{
    char pid_s[16];
    snprintf(pid_s, sizeof pid_s, "%d", (int)(intptr_t)arg);
    char *argv[] = {"t_thread", "after-exec", pid_s, NULL};
    execve(self_path, argv, (char *[]){NULL});
    _exit(90);
}

static void *spin_forever(void *arg)
{
    (void)arg;
    for (;;)
        sched_yield();
    return NULL;
}

static void test_thread_exits(void)
{
    /* pthread_exit in a secondary thread leaves the process (this one) running. */
    pthread_t t;
    void *result = NULL;
    CHECK(pthread_create(&t, NULL, return_seven, NULL) == 0 && pthread_join(t, &result) == 0);
    CHECK(result == (void *)7);
    CHECK(getpid() == syscall(SYS_gettid));

    /* The main thread exits alone (SYS_exit); the other thread later ends the process. */
    pid_t pid = fork();
    if (pid == 0) {
        pthread_t other;
        if (pthread_create(&other, NULL, exit_process_later, NULL) != 0)
            _exit(1);
        syscall(SYS_exit, 0);
        _exit(2);
    }
    int status = -1;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 7, "status %#x", status);

    /* exit_group from a secondary thread ends a main thread blocked in read. */
    int pipe_fds[2];
    REQUIRE(pipe(pipe_fds) == 0);
    pid = fork();
    if (pid == 0) {
        pthread_t other;
        if (pthread_create(&other, NULL, exit_group_now, NULL) != 0)
            _exit(1);
        char c;
        (void)read(pipe_fds[0], &c, 1); /* never returns: nobody writes */
        _exit(2);
    }
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 5, "status %#x", status);
    close(pipe_fds[0]);
    close(pipe_fds[1]);

    /* execve from a secondary thread: the other threads go, the image gets the pid. */
    pid = fork();
    if (pid == 0) {
        pthread_t spinners[2], execer;
        for (int i = 0; i < 2; i++)
            if (pthread_create(&spinners[i], NULL, spin_forever, NULL) != 0)
                _exit(1);
        if (pthread_create(&execer, NULL, exec_from_thread, (void *)(intptr_t)getpid()) != 0)
            _exit(1);
        for (;;)
            pause();
    }
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x", status);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "after-exec") == 0) {
        int ok = getpid() == atoi(argv[2]) && syscall(SYS_gettid) == getpid();
        _exit(ok ? 0 : 3);
    }
    vktest_reset_signals();
    ssize_t len = readlink("/proc/self/exe", self_path, sizeof self_path - 1);
    REQUIRE(len > 0);
    self_path[len > 0 ? len : 0] = '\0';

    test_create_join();
    test_small_stack();
    test_thread_ids();
    test_concurrent_progress();
    test_tls();
    test_producer_consumer();
    test_futex_basics();
    test_futex_shared_between_processes();
    test_futex_requeue();
    test_futex_requeued_timeout();
    test_futex_wake_op();
    test_futex_bitset();
    test_raw_clone_tid_words();
    test_robust_list();
    test_robust_futexes();
    test_robust_mutexes();
    test_thread_exits();
    vktest_done();
}
