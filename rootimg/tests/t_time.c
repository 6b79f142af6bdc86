/*
 * t_time — clocks, sleeps, interval timers and CPU accounting.
 *
 * Covers: clock_gettime for CLOCK_REALTIME (a plausible date), CLOCK_MONOTONIC (never goes
 * back), CLOCK_BOOTTIME (>= MONOTONIC), CLOCK_PROCESS_CPUTIME_ID and CLOCK_THREAD_CPUTIME_ID
 * (advance with work; a new thread's clock starts below the process's), both through libc
 * (which may use the vDSO) and the raw system calls; clock_getres; gettimeofday and time()
 * consistent with CLOCK_REALTIME (libc and raw); nanosleep and clock_nanosleep (relative and
 * TIMER_ABSTIME on MONOTONIC and REALTIME) sleeping at least the time asked; an absolute time
 * in the past; EINVAL cases (and the flags clock_nanosleep ignores, the nfds select clamps
 * rather than refuses); a sleep interrupted by a signal (EINTR, the remaining time written
 * back); setitimer/getitimer (ITIMER_REAL fires SIGALRM, at least after the interval); alarm's
 * return value; getrusage (self, children, thread) and times().
 *
 * Never asserts an upper bound on a duration: only "at least" and "never backwards".
 *
 * Linux-specific: clock_nanosleep on CLOCK_THREAD_CPUTIME_ID fails (EOPNOTSUPP on Linux 6.x,
 * EINVAL in the man page; both accepted); alarm() rounds the remaining time to the nearest
 * second (at least 1); time(2) reads the coarse clock (up to a tick behind CLOCK_REALTIME).
 * musl's nanosleep/gettimeofday/time go through clock_nanosleep/clock_gettime, so the old
 * system calls are exercised through syscall(2).
 */
#include "vktest.h"

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/times.h>
#include <sys/wait.h>
#include <time.h>

#define NS_PER_S 1000000000LL
#define MS (1000000LL)

static int64_t ts_ns(const struct timespec *ts)
{
    return (int64_t)ts->tv_sec * NS_PER_S + ts->tv_nsec;
}

static int64_t now_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return ts_ns(&ts);
}

static int64_t raw_now_ns(clockid_t clock)
{
    struct timespec ts = {0, 0};
    syscall(SYS_clock_gettime, clock, &ts);
    return ts_ns(&ts);
}

static int valid_ts(const struct timespec *ts)
{
    return ts->tv_sec >= 0 && ts->tv_nsec >= 0 && ts->tv_nsec < NS_PER_S;
}

/* Burn CPU until `clock` has advanced by `amount_ns` (bounded by 2 s of wall time). */
static int burn_cpu(clockid_t clock, int64_t amount_ns)
{
    int64_t start = now_ns(clock), wall_limit = now_ns(CLOCK_MONOTONIC) + 2 * NS_PER_S;
    volatile uint64_t x = 1;
    while (now_ns(clock) - start < amount_ns) {
        for (int i = 0; i < 10000; i++)
            x = x * 6364136223846793005ULL + 1;
        if (now_ns(CLOCK_MONOTONIC) > wall_limit)
            return 0;
    }
    return 1;
}

static void test_clocks(void)
{
    struct timespec ts;
    CHECK(clock_gettime(CLOCK_REALTIME, &ts) == 0 && valid_ts(&ts));
    CHECK(ts.tv_sec > 1577836800); /* after 2020-01-01 */
    CHECK(syscall(SYS_clock_gettime, CLOCK_REALTIME, &ts) == 0 && valid_ts(&ts) &&
          ts.tv_sec > 1577836800);

    int monotonic = 1, raw_monotonic = 1;
    int64_t prev = now_ns(CLOCK_MONOTONIC), raw_prev = raw_now_ns(CLOCK_MONOTONIC);
    for (int i = 0; i < 2000; i++) {
        int64_t t = now_ns(CLOCK_MONOTONIC), r = raw_now_ns(CLOCK_MONOTONIC);
        monotonic &= t >= prev;
        raw_monotonic &= r >= raw_prev;
        prev = t;
        raw_prev = r;
    }
    CHECK(monotonic);
    CHECK(raw_monotonic);
    /* libc (maybe vDSO) and the system call read the same clock. */
    int64_t a = now_ns(CLOCK_MONOTONIC), b = raw_now_ns(CLOCK_MONOTONIC),
            c = now_ns(CLOCK_MONOTONIC);
    CHECK(a <= b && b <= c);
    int64_t mono = raw_now_ns(CLOCK_MONOTONIC), boot = raw_now_ns(CLOCK_BOOTTIME);
    CHECK(boot >= mono);
    CHECK(clock_gettime(CLOCK_BOOTTIME, &ts) == 0 && valid_ts(&ts));

    CHECK(syscall(SYS_clock_gettime, 12345, &ts) == -1 && errno == EINVAL);
    CHECK(syscall(SYS_clock_gettime, -100, &ts) == -1 && errno == EINVAL);

    const clockid_t clocks[] = {CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME_ID,
                                CLOCK_THREAD_CPUTIME_ID};
    for (size_t i = 0; i < sizeof clocks / sizeof clocks[0]; i++) {
        struct timespec res = {-1, -1};
        CHECK(clock_getres(clocks[i], &res) == 0 && valid_ts(&res));
        CHECKF(res.tv_sec == 0 && res.tv_nsec > 0 && res.tv_nsec <= MS,
               "clock %d resolution %lld.%09ld", (int)clocks[i], (long long)res.tv_sec,
               res.tv_nsec);
    }
    CHECK(syscall(SYS_clock_getres, 12345, &ts) == -1 && errno == EINVAL);
    CHECK(syscall(SYS_clock_getres, CLOCK_MONOTONIC, NULL) == 0);
}

static void *thread_clock_reader(void *arg)
{
    int64_t *out = arg;
    out[0] = now_ns(CLOCK_THREAD_CPUTIME_ID);
    out[1] = now_ns(CLOCK_PROCESS_CPUTIME_ID);
    out[2] = burn_cpu(CLOCK_THREAD_CPUTIME_ID, 5 * MS);
    out[3] = now_ns(CLOCK_THREAD_CPUTIME_ID);
    return NULL;
}

static void test_cpu_clocks(void)
{
    int64_t p0 = now_ns(CLOCK_PROCESS_CPUTIME_ID), t0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
    CHECK(p0 >= 0 && t0 >= 0);
    CHECK(burn_cpu(CLOCK_PROCESS_CPUTIME_ID, 20 * MS));
    int64_t t1 = now_ns(CLOCK_THREAD_CPUTIME_ID), p1 = now_ns(CLOCK_PROCESS_CPUTIME_ID);
    CHECK(p1 - p0 >= 20 * MS);
    CHECK(t1 > t0);
    CHECK(t1 <= p1); /* read first, and a part of the whole */
    CHECK(raw_now_ns(CLOCK_PROCESS_CPUTIME_ID) >= p1);

    int64_t out[4] = {0, 0, 0, 0};
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, thread_clock_reader, out) == 0);
    pthread_join(t, NULL);
    CHECK(out[0] >= 0 && out[0] < out[1]); /* a new thread's clock starts low */
    CHECK(out[2] == 1 && out[3] - out[0] >= 5 * MS);
    CHECK(now_ns(CLOCK_PROCESS_CPUTIME_ID) >= p1 + 5 * MS); /* includes the thread's time */

    struct rusage self, thread;
    CHECK(getrusage(RUSAGE_SELF, &self) == 0);
    int64_t self_us = (int64_t)(self.ru_utime.tv_sec + self.ru_stime.tv_sec) * 1000000 +
                      self.ru_utime.tv_usec + self.ru_stime.tv_usec;
    CHECK(self_us > 0);
    CHECK(getrusage(RUSAGE_THREAD, &thread) == 0);
    CHECK(getrusage(12345, &thread) == -1 && errno == EINVAL);

    pid_t pid = fork();
    if (pid == 0)
        _exit(burn_cpu(CLOCK_PROCESS_CPUTIME_ID, 20 * MS) ? 0 : 1);
    int status;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    struct rusage kids;
    CHECK(getrusage(RUSAGE_CHILDREN, &kids) == 0);
    int64_t kids_us = (int64_t)(kids.ru_utime.tv_sec + kids.ru_stime.tv_sec) * 1000000 +
                      kids.ru_utime.tv_usec + kids.ru_stime.tv_usec;
    CHECK(kids_us > 0);

    struct tms tms;
    clock_t ticks = times(&tms);
    CHECK(ticks != (clock_t)-1);
    CHECK(tms.tms_cutime + tms.tms_cstime >= 0 && tms.tms_utime + tms.tms_stime >= 0);
}

static void test_wall_clock_consistency(void)
{
    struct timespec t1, t2;
    struct timeval tv, raw_tv;
    clock_gettime(CLOCK_REALTIME, &t1);
    CHECK(gettimeofday(&tv, NULL) == 0);
    CHECK(syscall(SYS_gettimeofday, &raw_tv, NULL) == 0);
    time_t now = time(NULL);
    time_t raw_arg = 0;
    time_t raw_now = (time_t)syscall(SYS_time, &raw_arg);
    clock_gettime(CLOCK_REALTIME, &t2);

    int64_t lo_us = ts_ns(&t1) / 1000, hi_us = ts_ns(&t2) / 1000;
    int64_t tv_us = (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
    int64_t raw_us = (int64_t)raw_tv.tv_sec * 1000000 + raw_tv.tv_usec;
    CHECK(tv.tv_usec >= 0 && tv.tv_usec < 1000000);
    CHECKF(tv_us >= lo_us && tv_us <= hi_us, "gettimeofday %lld not in [%lld, %lld]",
           (long long)tv_us, (long long)lo_us, (long long)hi_us);
    CHECKF(raw_us >= lo_us && raw_us <= hi_us, "raw gettimeofday %lld not in [%lld, %lld]",
           (long long)raw_us, (long long)lo_us, (long long)hi_us);
    CHECK(now >= t1.tv_sec && now <= t2.tv_sec);
    /* time(2) reads the coarse clock, which may still show the previous second for up to a
     * tick after CLOCK_REALTIME has moved on. */
    CHECK(raw_now >= t1.tv_sec - 1 && raw_now <= t2.tv_sec && raw_arg == raw_now);
}

static void test_sleeps(void)
{
    struct timespec ten_ms = {0, 10 * MS}, rem = {-1, -1};
    int64_t start = now_ns(CLOCK_MONOTONIC);
    CHECK(nanosleep(&ten_ms, &rem) == 0);
    CHECK(now_ns(CLOCK_MONOTONIC) - start >= 10 * MS);

    start = now_ns(CLOCK_MONOTONIC);
    CHECK(syscall(SYS_nanosleep, &ten_ms, NULL) == 0); /* musl uses clock_nanosleep itself */
    CHECK(now_ns(CLOCK_MONOTONIC) - start >= 10 * MS);

    start = now_ns(CLOCK_MONOTONIC);
    CHECK(clock_nanosleep(CLOCK_MONOTONIC, 0, &ten_ms, NULL) == 0);
    CHECK(now_ns(CLOCK_MONOTONIC) - start >= 10 * MS);

    int64_t deadline = now_ns(CLOCK_MONOTONIC) + 10 * MS;
    struct timespec abs = {deadline / NS_PER_S, deadline % NS_PER_S};
    CHECK(clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &abs, NULL) == 0);
    CHECK(now_ns(CLOCK_MONOTONIC) >= deadline);

    deadline = now_ns(CLOCK_REALTIME) + 10 * MS;
    abs.tv_sec = deadline / NS_PER_S;
    abs.tv_nsec = deadline % NS_PER_S;
    CHECK(clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &abs, NULL) == 0);
    CHECK(now_ns(CLOCK_REALTIME) >= deadline);

    /* An absolute time already past returns at once. */
    abs.tv_sec = 1;
    abs.tv_nsec = 0;
    CHECK(clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &abs, NULL) == 0);
    struct timespec zero = {0, 0};
    CHECK(nanosleep(&zero, NULL) == 0);

    struct timespec bad = {0, NS_PER_S};
    CHECK(syscall(SYS_nanosleep, &bad, NULL) == -1 && errno == EINVAL);
    bad.tv_sec = -1;
    bad.tv_nsec = 0;
    CHECK(syscall(SYS_nanosleep, &bad, NULL) == -1 && errno == EINVAL);
    CHECK(syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, &bad, NULL) == -1 && errno == EINVAL);
    CHECK(syscall(SYS_clock_nanosleep, 12345, 0, &ten_ms, NULL) == -1 && errno == EINVAL);
    /* The man page says EINVAL; Linux 6.x answers EOPNOTSUPP (the clock has no nsleep). */
    /* clock_nanosleep ignores flags besides TIMER_ABSTIME, and the upper half of the int. */
    struct timespec one_us = {0, 1000};
    CHECK(syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0x100, &one_us, NULL) == 0);
    CHECK(syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0x100000000UL, &one_us, NULL) == 0);
    /* select clamps nfds to the descriptors a process can have; only a negative one is EINVAL. */
    struct timeval no_wait = {0, 0};
    CHECK(syscall(SYS_select, 2000, NULL, NULL, NULL, &no_wait) == 0);
    no_wait = (struct timeval){0, 0};
    CHECK(syscall(SYS_select, -1, NULL, NULL, NULL, &no_wait) == -1 && errno == EINVAL);
    CHECK(syscall(SYS_clock_nanosleep, CLOCK_THREAD_CPUTIME_ID, 0, &ten_ms, NULL) == -1 &&
          (errno == EOPNOTSUPP || errno == EINVAL));
    CHECK(syscall(SYS_nanosleep, BAD_PTR(8), NULL) == -1 && errno == EFAULT);
}

static volatile sig_atomic_t alarm_count;
static void on_alarm(int sig)
{
    (void)sig;
    alarm_count++;
}

static void test_interrupted_sleep(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm; /* no SA_RESTART: sleeps are never restarted anyway */
    REQUIRE(sigaction(SIGALRM, &sa, NULL) == 0);

    /* A repeating 10 ms timer, so some tick lands inside the sleep however late it starts. */
    struct itimerval every_10ms = {{0, 10000}, {0, 10000}}, off = {{0, 0}, {0, 0}};
    alarm_count = 0;
    REQUIRE(setitimer(ITIMER_REAL, &every_10ms, NULL) == 0);
    struct timespec five_s = {5, 0}, rem = {-1, -1};
    int r = (int)syscall(SYS_nanosleep, &five_s, &rem);
    int err = errno;
    struct timespec rem2 = {-1, -1};
    int r2 = clock_nanosleep(CLOCK_MONOTONIC, 0, &five_s, &rem2);
    int64_t deadline = now_ns(CLOCK_MONOTONIC) + 5 * NS_PER_S;
    struct timespec abs = {deadline / NS_PER_S, deadline % NS_PER_S};
    int r3 = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &abs, NULL);
    REQUIRE(setitimer(ITIMER_REAL, &off, NULL) == 0);

    CHECK(r == -1 && err == EINTR);
    CHECK(valid_ts(&rem) && ts_ns(&rem) > 0 && ts_ns(&rem) < 5 * NS_PER_S);
    CHECK(r2 == EINTR); /* clock_nanosleep returns the error number */
    CHECK(valid_ts(&rem2) && ts_ns(&rem2) > 0 && ts_ns(&rem2) < 5 * NS_PER_S);
    CHECK(r3 == EINTR);
    CHECK(alarm_count >= 3);
}

static void test_itimers(void)
{
    struct itimerval set = {{0, 0}, {5, 0}}, got, off = {{0, 0}, {0, 0}};
    CHECK(setitimer(ITIMER_REAL, &set, NULL) == 0);
    CHECK(getitimer(ITIMER_REAL, &got) == 0);
    int64_t left_us = (int64_t)got.it_value.tv_sec * 1000000 + got.it_value.tv_usec;
    CHECK(left_us > 0 && left_us <= 5000000);
    CHECK(got.it_interval.tv_sec == 0 && got.it_interval.tv_usec == 0);
    struct itimerval old;
    CHECK(setitimer(ITIMER_REAL, &off, &old) == 0);
    CHECK(old.it_value.tv_sec <= 5 && (old.it_value.tv_sec > 0 || old.it_value.tv_usec > 0));
    CHECK(getitimer(ITIMER_REAL, &got) == 0 && got.it_value.tv_sec == 0 &&
          got.it_value.tv_usec == 0);
    CHECK(getitimer(12345, &got) == -1 && errno == EINVAL);

    /* It fires: SIGALRM no earlier than asked. */
    sigset_t alrm;
    sigemptyset(&alrm);
    sigaddset(&alrm, SIGALRM);
    sigprocmask(SIG_BLOCK, &alrm, NULL);
    struct itimerval once = {{0, 0}, {0, 10000}};
    int64_t start = now_ns(CLOCK_MONOTONIC);
    CHECK(setitimer(ITIMER_REAL, &once, NULL) == 0);
    struct timespec five = {5, 0};
    siginfo_t info;
    CHECK(sigtimedwait(&alrm, &info, &five) == SIGALRM);
    CHECK(now_ns(CLOCK_MONOTONIC) - start >= 10 * MS);
    CHECK(info.si_code == SI_KERNEL || info.si_code == SI_TIMER);
    CHECK(getitimer(ITIMER_REAL, &got) == 0 && got.it_value.tv_sec == 0 &&
          got.it_value.tv_usec == 0); /* one-shot: disarmed */

    /* alarm() shares the ITIMER_REAL timer. */
    CHECK(alarm(5) == 0);
    CHECK(alarm(0) == 5);
    CHECK(alarm(0) == 0);
    sigprocmask(SIG_UNBLOCK, &alrm, NULL);
}

int main(void)
{
    vktest_reset_signals();
    test_clocks();
    test_cpu_clocks();
    test_wall_clock_consistency();
    test_sleeps();
    test_interrupted_sleep();
    test_itimers();
    vktest_done();
}
