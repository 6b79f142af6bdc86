/*
 * t_ptimer — POSIX timers (timer_create(2) and kin, by raw system call): a one-shot
 * CLOCK_MONOTONIC timer sends its signal once with SI_TIMER, the timer id and the sigevent's
 * value; no sigevent means SIGALRM with the id as value; a periodic timer whose signal stays
 * blocked counts overruns (si_overrun, then timer_getoverrun); SIGEV_NONE sends nothing but
 * runs down; SIGEV_THREAD_ID goes to the named thread; TIMER_ABSTIME on CLOCK_REALTIME; a
 * CLOCK_PROCESS_CPUTIME_ID timer fires only after that much CPU time; timer_gettime reports
 * the interval; a timer can be deleted with its signal queued; errors: EINVAL for a bad clock,
 * notify, signal, thread, id or timespec, EFAULT for bad pointers, EOPNOTSUPP for
 * CLOCK_MONOTONIC_RAW; timers are not inherited by fork.
 */
#include "vktest.h"

#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SIGEV_THREAD_ID
#define SIGEV_THREAD_ID 4
#endif

static long tcreate(clockid_t c, struct sigevent *ev, int *id) { return syscall(SYS_timer_create, c, ev, id); }
static long tset(int id, int flags, const struct itimerspec *n, struct itimerspec *o)
{
    return syscall(SYS_timer_settime, id, flags, n, o);
}
static long tget(int id, struct itimerspec *v) { return syscall(SYS_timer_gettime, id, v); }
static long tover(int id) { return syscall(SYS_timer_getoverrun, id); }
static long tdel(int id) { return syscall(SYS_timer_delete, id); }

static struct itimerspec its(long value_ns, long interval_ns)
{
    struct itimerspec v = {{interval_ns / 1000000000, interval_ns % 1000000000},
                           {value_ns / 1000000000, value_ns % 1000000000}};
    return v;
}

/* Wait for `sig` (blocked) for up to 5 s. */
static int wait_sig(int sig, siginfo_t *si)
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig);
    struct timespec t = {5, 0};
    return sigtimedwait(&s, si, &t);
}

static void block(int sig)
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig);
    sigprocmask(SIG_BLOCK, &s, NULL);
}

static volatile pid_t thread_tid;
static volatile int thread_got;

static void *thread_main(void *arg)
{
    (void)arg;
    thread_tid = (pid_t)syscall(SYS_gettid);
    siginfo_t si;
    if (wait_sig(SIGRTMIN + 2, &si) == SIGRTMIN + 2 && si.si_code == SI_TIMER)
        thread_got = 1;
    return NULL;
}

int main(void)
{
    vktest_reset_signals();
    block(SIGALRM);
    block(SIGRTMIN);
    block(SIGRTMIN + 1);
    block(SIGRTMIN + 2);
    block(SIGUSR1);

    /* One shot, SIGEV_SIGNAL with a value. */
    struct sigevent ev = {0};
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGRTMIN;
    ev.sigev_value.sival_int = 4242;
    int id = -1;
    CHECK(tcreate(CLOCK_MONOTONIC, &ev, &id) == 0 && id >= 0);
    struct itimerspec v = its(20000000, 0), old;
    CHECK(tset(id, 0, &v, &old) == 0);
    CHECK(old.it_value.tv_sec == 0 && old.it_value.tv_nsec == 0);
    struct itimerspec cur;
    CHECK(tget(id, &cur) == 0 && cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec > 0 &&
          cur.it_value.tv_nsec <= 20000000 && cur.it_interval.tv_nsec == 0);
    siginfo_t si;
    CHECK(wait_sig(SIGRTMIN, &si) == SIGRTMIN);
    CHECK(si.si_code == SI_TIMER && si.si_value.sival_int == 4242 && si.si_timerid == id && si.si_overrun == 0);
    CHECK(tget(id, &cur) == 0 && cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec == 0);
    /* It fired once. */
    sigset_t pend;
    sigpending(&pend);
    CHECK(!sigismember(&pend, SIGRTMIN));
    CHECK(tdel(id) == 0);
    errno = 0;
    CHECK(tdel(id) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(tget(id, &cur) == -1 && errno == EINVAL);

    /* No sigevent: SIGALRM with the id as the value. */
    CHECK(tcreate(CLOCK_REALTIME, NULL, &id) == 0);
    v = its(10000000, 0);
    CHECK(tset(id, 0, &v, NULL) == 0);
    CHECK(wait_sig(SIGALRM, &si) == SIGALRM && si.si_code == SI_TIMER && si.si_value.sival_int == id);
    CHECK(tdel(id) == 0);

    /* Periodic with the signal blocked: one signal, the rest are overruns. */
    ev.sigev_signo = SIGRTMIN + 1;
    CHECK(tcreate(CLOCK_MONOTONIC, &ev, &id) == 0);
    v = its(5000000, 5000000);
    CHECK(tset(id, 0, &v, NULL) == 0);
    CHECK(tget(id, &cur) == 0 && cur.it_interval.tv_nsec == 5000000);
    usleep(100000);
    CHECK(tover(id) == 0);
    CHECK(wait_sig(SIGRTMIN + 1, &si) == SIGRTMIN + 1 && si.si_overrun >= 3);
    CHECK(tover(id) == si.si_overrun);
    v = its(0, 0);
    CHECK(tset(id, 0, &v, &old) == 0 && old.it_interval.tv_nsec == 5000000);
    CHECK(tdel(id) == 0);

    /* A timer can be deleted with its signal queued. */
    ev.sigev_signo = SIGUSR1;
    CHECK(tcreate(CLOCK_MONOTONIC, &ev, &id) == 0);
    v = its(1000000, 0);
    CHECK(tset(id, 0, &v, NULL) == 0);
    usleep(50000);
    sigpending(&pend);
    CHECK(sigismember(&pend, SIGUSR1));
    CHECK(tdel(id) == 0);

    /* SIGEV_NONE: nothing is sent, the time runs down. */
    struct sigevent none = {0};
    none.sigev_notify = SIGEV_NONE;
    CHECK(tcreate(CLOCK_MONOTONIC, &none, &id) == 0);
    v = its(30000000, 0);
    CHECK(tset(id, 0, &v, NULL) == 0);
    usleep(60000);
    CHECK(tget(id, &cur) == 0 && cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec == 0);
    sigpending(&pend);
    CHECK(!sigismember(&pend, SIGALRM));
    CHECK(tdel(id) == 0);

    /* TIMER_ABSTIME on CLOCK_REALTIME, already in the past: fires at once. */
    CHECK(tcreate(CLOCK_REALTIME, NULL, &id) == 0);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    v = its(0, 0);
    v.it_value.tv_sec = now.tv_sec - 1;
    v.it_value.tv_nsec = now.tv_nsec;
    CHECK(tset(id, TIMER_ABSTIME, &v, NULL) == 0);
    CHECK(wait_sig(SIGALRM, &si) == SIGALRM && si.si_timerid == id);
    /* And 30 ms ahead: not before that. */
    clock_gettime(CLOCK_REALTIME, &now);
    long long target = now.tv_sec * 1000000000LL + now.tv_nsec + 30000000;
    v.it_value.tv_sec = target / 1000000000;
    v.it_value.tv_nsec = target % 1000000000;
    CHECK(tset(id, TIMER_ABSTIME, &v, NULL) == 0);
    CHECK(wait_sig(SIGALRM, &si) == SIGALRM);
    clock_gettime(CLOCK_REALTIME, &now);
    CHECK(now.tv_sec * 1000000000LL + now.tv_nsec >= target);
    CHECK(tdel(id) == 0);

    /* SIGEV_THREAD_ID: to that thread. */
    pthread_t th;
    CHECK(pthread_create(&th, NULL, thread_main, NULL) == 0);
    while (!thread_tid)
        usleep(1000);
    struct sigevent tev = {0};
    tev.sigev_notify = SIGEV_THREAD_ID;
    tev.sigev_signo = SIGRTMIN + 2;
    tev.sigev_notify_thread_id = thread_tid;
    CHECK(tcreate(CLOCK_MONOTONIC, &tev, &id) == 0);
    v = its(10000000, 0);
    CHECK(tset(id, 0, &v, NULL) == 0);
    pthread_join(th, NULL);
    CHECK(thread_got == 1);
    CHECK(tdel(id) == 0);
    /* The thread is gone: its id is no longer a thread of ours. (pthread_join returns when
     * the thread clears its tid, which Linux too does before the thread leaves its group:
     * wait for that, up to 5 s.) */
    int refused = 0;
    for (int tries = 0; tries < 5000 && !refused; tries++) {
        errno = 0;
        if (tcreate(CLOCK_MONOTONIC, &tev, &id) == -1)
            refused = errno == EINVAL ? 1 : -1;
        else {
            tdel(id);
            usleep(1000);
        }
    }
    CHECK(refused == 1);

    /* CPU time: fires only after 50 ms of it. */
    CHECK(tcreate(CLOCK_PROCESS_CPUTIME_ID, NULL, &id) == 0);
    v = its(50000000, 0);
    struct timespec c0, c1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    CHECK(tset(id, 0, &v, NULL) == 0);
    int spins = 0;
    for (;;) {
        sigpending(&pend);
        if (sigismember(&pend, SIGALRM))
            break;
        for (volatile int k = 0; k < 100000; k++)
            ;
        if (++spins > 200000)
            break;
    }
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    CHECK(sigismember(&pend, SIGALRM));
    CHECK((c1.tv_sec - c0.tv_sec) * 1000000000LL + (c1.tv_nsec - c0.tv_nsec) >= 50000000);
    CHECK(wait_sig(SIGALRM, &si) == SIGALRM && si.si_code == SI_TIMER);
    CHECK(tdel(id) == 0);
    CHECK(tcreate(CLOCK_THREAD_CPUTIME_ID, NULL, &id) == 0 && tdel(id) == 0);
    CHECK(tcreate(CLOCK_BOOTTIME, NULL, &id) == 0 && tdel(id) == 0);

    /* Not inherited by fork. */
    CHECK(tcreate(CLOCK_MONOTONIC, NULL, &id) == 0);
    pid_t c = fork();
    if (c == 0) {
        struct itimerspec x;
        _exit(tget(id, &x) == -1 && errno == EINVAL ? 0 : 1);
    }
    int st;
    CHECK(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(tdel(id) == 0);

    /* Errors. */
    errno = 0;
    CHECK(tcreate(16, NULL, &id) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(tcreate(CLOCK_MONOTONIC_RAW, NULL, &id) == -1 && errno == EOPNOTSUPP);
    errno = 0;
    CHECK(tcreate(CLOCK_REALTIME, (struct sigevent *)1, &id) == -1 && errno == EFAULT);
    errno = 0;
    CHECK(tcreate(CLOCK_REALTIME, NULL, NULL) == -1 && errno == EFAULT);
    struct sigevent bad = {0};
    bad.sigev_notify = 99;
    bad.sigev_signo = SIGALRM;
    errno = 0;
    CHECK(tcreate(CLOCK_REALTIME, &bad, &id) == -1 && errno == EINVAL);
    bad.sigev_notify = SIGEV_SIGNAL;
    bad.sigev_signo = 65;
    errno = 0;
    CHECK(tcreate(CLOCK_REALTIME, &bad, &id) == -1 && errno == EINVAL);
    CHECK(tcreate(CLOCK_REALTIME, NULL, &id) == 0);
    errno = 0;
    CHECK(tset(id, 0, NULL, NULL) == -1 && errno == EINVAL);
    v = its(0, 0);
    v.it_value.tv_nsec = 1000000000;
    errno = 0;
    CHECK(tset(id, 0, &v, NULL) == -1 && errno == EINVAL);
    v.it_value.tv_nsec = -1;
    errno = 0;
    CHECK(tset(id, 0, &v, NULL) == -1 && errno == EINVAL);
    v = its(1000000000, 0);
    errno = 0;
    CHECK(tset(id, 0, (struct itimerspec *)1, NULL) == -1 && errno == EFAULT);
    errno = 0;
    CHECK(tset(id + 100, 0, &v, NULL) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(tget(id, NULL) == -1 && errno == EFAULT);
    errno = 0;
    CHECK(tover(-1) == -1 && errno == EINVAL);
    CHECK(tover(id) == 0);
    CHECK(tdel(id) == 0);
    return vktest_done();
}
