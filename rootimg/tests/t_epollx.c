/*
 * t_epollx — which ready items epoll_wait reports, and to whom:
 *  - fairness: level-triggered items that stay ready are reported round-robin when there are
 *    more of them than maxevents (a reported item goes to the back of the ready list), so
 *    every one is reported equally often (LTP epoll_wait14);
 *  - EPOLLEXCLUSIVE: waiters in separate epoll instances, each with an exclusive
 *    edge-triggered item on one pipe — each write wakes exactly one of them (LTP
 *    epoll_wait16); and the non-exclusive case for contrast: a write wakes them all.
 */
#include "vktest.h"

#include <stdint.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

#define NREADY 13
#define MAXEVENTS 3
#define ROUNDS 4

static void test_fairness(void)
{
    int fds[NREADY][2];
    int ep = epoll_create1(0);
    CHECK(ep >= 0);
    for (int i = 0; i < NREADY; i++) {
        CHECK(pipe(fds[i]) == 0);
        CHECK(write(fds[i][1], "x", 1) == 1);
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)i};
        CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, fds[i][0], &ev) == 0);
    }
    int count[NREADY] = {0};
    int collected = 0, bad = 0, short_waits = 0;
    while (collected < ROUNDS * NREADY && !bad && short_waits == 0) {
        struct epoll_event evs[MAXEVENTS];
        int n = epoll_wait(ep, evs, MAXEVENTS, 0);
        if (n != MAXEVENTS) {
            short_waits++;
            break;
        }
        for (int i = 0; i < n && collected < ROUNDS * NREADY; i++) {
            if (evs[i].data.u64 >= NREADY) {
                bad++;
                break;
            }
            count[evs[i].data.u64]++;
            collected++;
        }
    }
    CHECK(short_waits == 0);
    CHECK(bad == 0);
    int unfair = 0;
    for (int i = 0; i < NREADY; i++)
        if (count[i] != ROUNDS)
            unfair++;
    CHECK(unfair == 0);
    for (int i = 0; i < NREADY; i++) {
        close(fds[i][0]);
        close(fds[i][1]);
    }
    close(ep);
}

#define NWAITERS 5

static int64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Whether process `pid` is asleep (state S in /proc/PID/stat). */
static int sleeping(pid_t pid)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    return p && p[1] == ' ' && p[2] == 'S';
}

/* NWAITERS children, each with its own epoll instance watching the read end of one pipe
 * (events: EPOLLIN|EPOLLET, plus `extra`), each waiting once for up to 5 s and counting a
 * report in *woken. Writes `writes` bytes, one at a time, each after the previous one was
 * taken; returns after every child ended. `after[i]`: *woken once write i was reported and
 * any other waiter it woke had time to report too. */
static void run_waiters(uint32_t extra, int writes, int *after)
{
    int *woken = mmap(NULL, sizeof(int), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(woken != MAP_FAILED);
    if (woken == MAP_FAILED)
        return;
    *woken = 0;
    int p[2];
    CHECK(pipe(p) == 0);
    pid_t pids[NWAITERS];
    for (int i = 0; i < NWAITERS; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            int ep = epoll_create1(0);
            struct epoll_event ev = {.events = EPOLLIN | EPOLLET | extra};
            if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev) != 0)
                _exit(2);
            int n = epoll_wait(ep, &ev, 1, 5000);
            if (n == 1)
                __atomic_add_fetch(woken, 1, __ATOMIC_SEQ_CST);
            _exit(n == 1 || n == 0 ? 0 : 3);
        }
        CHECK(pids[i] > 0);
    }
    /* Every child asleep in epoll_wait (bounded wait). */
    int64_t deadline = now_ms() + 5000;
    for (int i = 0; i < NWAITERS; i++)
        while (!sleeping(pids[i]) && now_ms() < deadline)
            usleep(1000);
    for (int w = 0; w < writes; w++) {
        int before = __atomic_load_n(woken, __ATOMIC_SEQ_CST);
        CHECK(write(p[1], "x", 1) == 1);
        int64_t d = now_ms() + 3000;
        while (__atomic_load_n(woken, __ATOMIC_SEQ_CST) == before && now_ms() < d)
            usleep(1000);
        usleep(100 * 1000); /* time for any other woken waiter to report as well */
        after[w] = __atomic_load_n(woken, __ATOMIC_SEQ_CST);
        char c;
        CHECK(read(p[0], &c, 1) == 1);
    }
    /* The children still waiting end by their timeout. */
    int bad = 0;
    for (int i = 0; i < NWAITERS; i++) {
        int st;
        if (waitpid(pids[i], &st, 0) != pids[i] || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            bad++;
    }
    CHECK(bad == 0);
    close(p[0]);
    close(p[1]);
    munmap(woken, sizeof(int));
}

static void test_exclusive(void)
{
    int after[NWAITERS];
    run_waiters(EPOLLEXCLUSIVE, NWAITERS, after);
    int wrong = 0;
    for (int w = 0; w < NWAITERS; w++)
        if (after[w] != w + 1)
            wrong++;
    CHECK(wrong == 0);
    if (wrong)
        for (int w = 0; w < NWAITERS; w++)
            vktest_print("exclusive: after write %d: %d woken\n", w + 1, after[w]);
}

static void test_not_exclusive(void)
{
    int after[1];
    run_waiters(0, 1, after);
    CHECK(after[0] == NWAITERS);
}

int main(void)
{
    vktest_reset_signals();
    test_fairness();
    test_exclusive();
    test_not_exclusive();
    return vktest_done();
}
