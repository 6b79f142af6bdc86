/*
 * t_event — epoll, eventfd, signalfd, timerfd and memfd.
 *
 * Covers: epoll_create/epoll_create1 (EPOLL_CLOEXEC, EINVAL), epoll_ctl ADD/MOD/DEL and its
 * errors (EEXIST, ENOENT, EBADF, EINVAL on itself and on a non-epoll descriptor, EPERM for a
 * regular file, ELOOP for a cycle, EPOLLEXCLUSIVE's rules), epoll_wait on pipes (level- and
 * edge-triggered: a new write is a new edge, a read-until-EAGAIN loop; EPOLLONESHOT and
 * re-arming with MOD; EPOLLHUP and EPOLLERR; the user data; maxevents; timeouts; EINVAL and
 * EFAULT), an item following its open file (a closed duplicate keeps it, the last close removes
 * it), nested epoll instances, epoll_pwait with a signal mask (the signal interrupts: EINTR),
 * epoll_pwait2's timespec, a thread woken by a write from another thread;
 * eventfd2 (counter, EFD_SEMAPHORE, EFD_NONBLOCK EAGAIN both ways, EINVAL for short buffers and
 * 2^64-1, poll and epoll readiness, fstat's mode, the /proc/self/fd link); signalfd4 (a blocked
 * signal read as a signalfd_siginfo with its sender, several at once, SFD_NONBLOCK, a new mask on
 * an existing descriptor, readiness in epoll, EINVAL); timerfd_create/settime/gettime (one-shot,
 * intervals counting expirations, TFD_TIMER_ABSTIME on CLOCK_REALTIME and CLOCK_MONOTONIC, the old
 * value, disarming, EINVAL cases, CLOCK_BOOTTIME, a blocking read); memfd_create (read, write,
 * ftruncate, MAP_SHARED coherence with write, the /proc/self/fd link, MFD_CLOEXEC, the name limit,
 * seals: F_SEAL_WRITE/GROW/SHRINK/SEAL, EPERM without MFD_ALLOW_SEALING, EINVAL on other files).
 *
 * Timing: only lower bounds ("a timer has not fired before its time" is never asserted beyond
 * what the clock guarantees: a 10 s timer is not expired right after arming).
 */
#include "vktest.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>

#ifndef F_ADD_SEALS
#define F_ADD_SEALS 1033
#define F_GET_SEALS 1034
#define F_SEAL_SEAL 0x0001
#define F_SEAL_SHRINK 0x0002
#define F_SEAL_GROW 0x0004
#define F_SEAL_WRITE 0x0008
#endif
#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 1U
#define MFD_ALLOW_SEALING 2U
#endif
#ifndef SYS_epoll_pwait2
#define SYS_epoll_pwait2 441
#endif

static int wait_events(int ep, struct epoll_event *ev, int max, int ms)
{
    int n;
    do
        n = epoll_wait(ep, ev, max, ms);
    while (n < 0 && errno == EINTR);
    return n;
}

static void test_epoll_basics(void)
{
    int p[2];
    REQUIRE(pipe(p) == 0);
    CHECK(syscall(SYS_epoll_create, 0) == -1 && errno == EINVAL);
    CHECK(epoll_create1(1) == -1 && errno == EINVAL);
    int ep = epoll_create(1);
    CHECK(ep >= 0 && fcntl(ep, F_GETFD) == 0);
    close(ep);
    ep = epoll_create1(EPOLL_CLOEXEC);
    CHECK(ep >= 0 && fcntl(ep, F_GETFD) == FD_CLOEXEC);

    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0x1122334455667788ULL};
    struct epoll_event out[4];
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev) == 0);
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev) == -1 && errno == EEXIST);
    CHECK(epoll_ctl(ep, EPOLL_CTL_MOD, p[1], &ev) == -1 && errno == ENOENT);
    CHECK(epoll_ctl(ep, EPOLL_CTL_DEL, p[1], NULL) == -1 && errno == ENOENT);
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, 999, &ev) == -1 && errno == EBADF);
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, ep, &ev) == -1 && errno == EINVAL);
    CHECK(epoll_ctl(p[0], EPOLL_CTL_ADD, p[1], &ev) == -1 && errno == EINVAL);
    CHECK(epoll_ctl(ep, 99, p[1], &ev) == -1 && errno == EINVAL);
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, p[1], BAD_PTR(16)) == -1 && errno == EFAULT);
    int reg = open("/proc/self/exe", O_RDONLY);
    if (reg < 0)
        reg = open("/bin/sh", O_RDONLY);
    CHECK(reg >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, reg, &ev) == -1 && errno == EPERM);
    close(reg);
    /* EPOLLEXCLUSIVE: only with IN/OUT/ERR/HUP/ET..., never in MOD. */
    struct epoll_event xev = {.events = EPOLLIN | EPOLLEXCLUSIVE | EPOLLONESHOT};
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, p[1], &xev) == -1 && errno == EINVAL);
    xev.events = EPOLLOUT | EPOLLEXCLUSIVE;
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, p[1], &xev) == 0);
    CHECK(epoll_ctl(ep, EPOLL_CTL_MOD, p[1], &xev) == -1 && errno == EINVAL);
    xev.events = EPOLLOUT;
    CHECK(epoll_ctl(ep, EPOLL_CTL_MOD, p[1], &xev) == -1 && errno == EINVAL);
    CHECK(epoll_ctl(ep, EPOLL_CTL_DEL, p[1], NULL) == 0);

    /* Nothing ready: a zero timeout returns 0, a short one too. */
    CHECK(epoll_wait(ep, out, 4, 0) == 0);
    CHECK(epoll_wait(ep, out, 4, 20) == 0);
    CHECK(epoll_wait(ep, out, 0, 0) == -1 && errno == EINVAL);
    CHECK(epoll_wait(ep, out, -1, 0) == -1 && errno == EINVAL);
    CHECK(epoll_wait(p[0], out, 4, 0) == -1 && errno == EINVAL);
    CHECK(epoll_wait(999, out, 4, 0) == -1 && errno == EBADF);
    /* Only the range is checked up front: a kernel address, never a user one. */
    CHECK(epoll_wait(ep, BAD_PTR(0xffff800000000000UL), 4, 0) == -1 && errno == EFAULT);

    /* Level-triggered: reported while readable, with the data. */
    CHECK(write(p[1], "ab", 2) == 2);
    memset(out, 0, sizeof out);
    CHECK(epoll_wait(ep, out, 4, 1000) == 1 && out[0].events == EPOLLIN &&
          out[0].data.u64 == 0x1122334455667788ULL);
    CHECK(epoll_wait(ep, out, 4, 0) == 1);
    char buf[8];
    CHECK(read(p[0], buf, sizeof buf) == 2);
    CHECK(epoll_wait(ep, out, 4, 0) == 0);

    /* The write end: writable; EPOLLERR once the reader is gone. */
    ev.events = EPOLLOUT;
    ev.data.fd = p[1];
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, p[1], &ev) == 0);
    CHECK(epoll_wait(ep, out, 4, 0) == 1 && out[0].events == EPOLLOUT && out[0].data.fd == p[1]);
    /* maxevents bounds the count. */
    CHECK(write(p[1], "x", 1) == 1);
    CHECK(epoll_wait(ep, out, 1, 0) == 1);
    CHECK(epoll_wait(ep, out, 4, 0) == 2);
    CHECK(read(p[0], buf, 1) == 1);
    /* MOD changes the events and data. */
    ev.events = EPOLLIN;
    ev.data.u32 = 7;
    CHECK(epoll_ctl(ep, EPOLL_CTL_MOD, p[1], &ev) == 0);
    CHECK(epoll_wait(ep, out, 4, 0) == 0);
    CHECK(epoll_ctl(ep, EPOLL_CTL_DEL, p[1], NULL) == 0);
    /* The reader sees EPOLLHUP (never asked for) once the writer closes. */
    close(p[1]);
    CHECK(epoll_wait(ep, out, 4, 0) == 1 && out[0].events == EPOLLHUP);
    close(p[0]);
    /* ...and the item went with the last descriptor of the pipe. */
    CHECK(epoll_wait(ep, out, 4, 0) == 0);

    /* A writer whose reader is gone: EPOLLOUT|EPOLLERR. */
    REQUIRE(pipe(p) == 0);
    ev.events = EPOLLOUT;
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, p[1], &ev) == 0);
    close(p[0]);
    CHECK(epoll_wait(ep, out, 4, 0) == 1 && out[0].events == (EPOLLOUT | EPOLLERR));
    close(p[1]);
    close(ep);
}

static void test_epoll_edge(void)
{
    int p[2];
    REQUIRE(pipe2(p, O_NONBLOCK) == 0);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.u32 = 1}, out[4];
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev) == 0);
    CHECK(epoll_wait(ep, out, 4, 0) == 0);
    CHECK(write(p[1], "a", 1) == 1);
    CHECK(epoll_wait(ep, out, 4, 0) == 1 && out[0].events == EPOLLIN);
    /* Still readable, but no new edge. */
    CHECK(epoll_wait(ep, out, 4, 0) == 0);
    /* More data is a new edge even though it was readable. */
    CHECK(write(p[1], "b", 1) == 1);
    CHECK(epoll_wait(ep, out, 4, 0) == 1);
    CHECK(epoll_wait(ep, out, 4, 0) == 0);
    /* Reading until EAGAIN, then a write: reported again. */
    char buf[8];
    CHECK(read(p[0], buf, sizeof buf) == 2);
    CHECK(read(p[0], buf, sizeof buf) == -1 && errno == EAGAIN);
    CHECK(write(p[1], "c", 1) == 1);
    CHECK(epoll_wait(ep, out, 4, 0) == 1);
    CHECK(read(p[0], buf, sizeof buf) == 1);

    /* EPOLLONESHOT: one report, then nothing until MOD re-arms it. */
    ev.events = EPOLLIN | EPOLLONESHOT;
    CHECK(epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev) == 0);
    CHECK(write(p[1], "d", 1) == 1);
    CHECK(epoll_wait(ep, out, 4, 0) == 1);
    CHECK(epoll_wait(ep, out, 4, 0) == 0);
    CHECK(write(p[1], "e", 1) == 1);
    CHECK(epoll_wait(ep, out, 4, 0) == 0);
    CHECK(epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev) == 0);
    CHECK(epoll_wait(ep, out, 4, 0) == 1);
    CHECK(read(p[0], buf, sizeof buf) == 2);

    /* The item follows the open file: a duplicate's close leaves it. */
    int d = dup(p[0]);
    ev.events = EPOLLIN;
    ev.data.u32 = 42;
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, d, &ev) == 0);
    close(d);
    CHECK(write(p[1], "f", 1) == 1);
    int n = epoll_wait(ep, out, 4, 0);
    int saw42 = 0;
    for (int i = 0; i < n; i++)
        saw42 |= out[i].data.u32 == 42;
    CHECK(saw42);
    /* But it cannot be named any more by the closed number. */
    CHECK(epoll_ctl(ep, EPOLL_CTL_DEL, d, NULL) == -1 && errno == EBADF);
    close(p[0]);
    close(p[1]);
    close(ep);
}

static void test_epoll_nested(void)
{
    int p[2];
    REQUIRE(pipe(p) == 0);
    int inner = epoll_create1(0), outer = epoll_create1(0), third = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN}, out[4];
    CHECK(epoll_ctl(inner, EPOLL_CTL_ADD, p[0], &ev) == 0);
    ev.data.u32 = 5;
    CHECK(epoll_ctl(outer, EPOLL_CTL_ADD, inner, &ev) == 0);
    /* A cycle is refused. */
    CHECK(epoll_ctl(inner, EPOLL_CTL_ADD, outer, &ev) == -1 && errno == ELOOP);
    CHECK(epoll_ctl(third, EPOLL_CTL_ADD, outer, &ev) == 0);
    CHECK(epoll_ctl(inner, EPOLL_CTL_ADD, third, &ev) == -1 && errno == ELOOP);
    /* EPOLLEXCLUSIVE on an epoll instance is refused. */
    struct epoll_event xev = {.events = EPOLLIN | EPOLLEXCLUSIVE};
    int other = epoll_create1(0);
    CHECK(epoll_ctl(other, EPOLL_CTL_ADD, inner, &xev) == -1 && errno == EINVAL);
    close(other);

    CHECK(epoll_wait(outer, out, 4, 0) == 0);
    struct pollfd pfd = {.fd = inner, .events = POLLIN};
    CHECK(poll(&pfd, 1, 0) == 0);
    CHECK(write(p[1], "x", 1) == 1);
    CHECK(poll(&pfd, 1, 0) == 1 && pfd.revents == POLLIN);
    CHECK(epoll_wait(outer, out, 4, 0) == 1 && out[0].events == EPOLLIN && out[0].data.u32 == 5);
    CHECK(epoll_wait(third, out, 4, 0) == 1);
    /* The inner instance still reports it (the outer's wait consumed nothing of it). */
    CHECK(epoll_wait(inner, out, 4, 0) == 1);
    close(third);
    close(outer);
    close(inner);
    close(p[0]);
    close(p[1]);
}

static volatile sig_atomic_t got_usr1;
static void on_usr1(int sig)
{
    (void)sig;
    got_usr1 = 1;
}

struct writer_arg {
    int fd;
    int delay_ms;
};

static void *writer(void *a)
{
    struct writer_arg *w = a;
    struct timespec ts = {0, w->delay_ms * 1000000L};
    nanosleep(&ts, NULL);
    uint64_t one = 1;
    if (write(w->fd, &one, 8) != 8)
        return (void *)1;
    return NULL;
}

static void test_epoll_wait_sleeps(void)
{
    /* A thread asleep in epoll_wait is woken by another thread's write. */
    int efd = eventfd(0, 0);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 3}, out[2];
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev) == 0);
    pthread_t t;
    struct writer_arg w = {efd, 50};
    REQUIRE(pthread_create(&t, NULL, writer, &w) == 0);
    CHECK(wait_events(ep, out, 2, 10000) == 1 && out[0].data.u32 == 3);
    void *r;
    pthread_join(t, &r);
    CHECK(r == NULL);

    /* epoll_pwait: SIGUSR1 blocked normally, unblocked during the wait: EINTR, handler ran. */
    uint64_t v;
    CHECK(read(efd, &v, 8) == 8 && v == 1);
    struct sigaction sa = {.sa_handler = on_usr1};
    sigaction(SIGUSR1, &sa, NULL);
    sigset_t block, during;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigprocmask(SIG_BLOCK, &block, NULL);
    kill(getpid(), SIGUSR1);
    sigemptyset(&during);
    got_usr1 = 0;
    CHECK(epoll_pwait(ep, out, 2, 5000, &during) == -1 && errno == EINTR && got_usr1);
    /* The old mask is back. */
    sigset_t now;
    sigprocmask(SIG_SETMASK, NULL, &now);
    CHECK(sigismember(&now, SIGUSR1));
    sigprocmask(SIG_UNBLOCK, &block, NULL);
    signal(SIGUSR1, SIG_DFL);
    /* epoll_pwait2 with a timespec (and a bad size: EINVAL). */
    struct timespec ts = {0, 10 * 1000000};
    CHECK(syscall(SYS_epoll_pwait2, ep, out, 2, &ts, NULL, 8) == 0);
    CHECK(syscall(SYS_epoll_pwait2, ep, out, 2, &ts, &during, 4) == -1 && errno == EINVAL);
    ts.tv_nsec = 2000000000;
    CHECK(syscall(SYS_epoll_pwait2, ep, out, 2, &ts, NULL, 8) == -1 && errno == EINVAL);
    v = 2;
    CHECK(write(efd, &v, 8) == 8);
    ts.tv_nsec = 0;
    CHECK(syscall(SYS_epoll_pwait2, ep, out, 2, &ts, NULL, 8) == 1);
    close(ep);
    close(efd);
}

static void test_eventfd(void)
{
    CHECK(eventfd(0, 0x10) == -1 && errno == EINVAL);
    int fd = eventfd(5, EFD_NONBLOCK | EFD_CLOEXEC);
    REQUIRE(fd >= 0);
    CHECK(fcntl(fd, F_GETFD) == FD_CLOEXEC && (fcntl(fd, F_GETFL) & O_NONBLOCK));
    uint64_t v = 0;
    char small[4];
    CHECK(read(fd, small, 4) == -1 && errno == EINVAL);
    CHECK(write(fd, small, 4) == -1 && errno == EINVAL);
    CHECK(read(fd, &v, 8) == 8 && v == 5);
    CHECK(read(fd, &v, 8) == -1 && errno == EAGAIN);
    v = 3;
    CHECK(write(fd, &v, 8) == 8);
    CHECK(write(fd, &v, 8) == 8);
    CHECK(read(fd, &v, 8) == 8 && v == 6);
    v = UINT64_MAX;
    CHECK(write(fd, &v, 8) == -1 && errno == EINVAL);
    v = UINT64_MAX - 1;
    CHECK(write(fd, &v, 8) == 8);
    v = 1;
    CHECK(write(fd, &v, 8) == -1 && errno == EAGAIN);
    struct pollfd pfd = {.fd = fd, .events = POLLIN | POLLOUT};
    CHECK(poll(&pfd, 1, 0) == 1 && pfd.revents == POLLIN);
    CHECK(read(fd, &v, 8) == 8 && v == UINT64_MAX - 1);
    CHECK(poll(&pfd, 1, 0) == 1 && pfd.revents == POLLOUT);
    struct stat st;
    CHECK(fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == 0 && (st.st_mode & 0777) == 0600);
    char path[64], link[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(path, link, sizeof link - 1);
    CHECK(n > 0 && (link[n] = 0, strcmp(link, "anon_inode:[eventfd]") == 0));
    close(fd);

    /* EFD_SEMAPHORE: each read takes one. */
    fd = eventfd(2, EFD_SEMAPHORE | EFD_NONBLOCK);
    CHECK(read(fd, &v, 8) == 8 && v == 1);
    CHECK(read(fd, &v, 8) == 8 && v == 1);
    CHECK(read(fd, &v, 8) == -1 && errno == EAGAIN);
    close(fd);

    /* A blocking read waits for a writer in another process. */
    fd = eventfd(0, 0);
    pid_t pid = fork();
    if (pid == 0) {
        struct timespec ts = {0, 30 * 1000000};
        nanosleep(&ts, NULL);
        uint64_t x = 9;
        _exit(write(fd, &x, 8) == 8 ? 0 : 1);
    }
    CHECK(read(fd, &v, 8) == 8 && v == 9);
    int status;
    CHECK(waitpid(pid, &status, 0) == pid && status == 0);
    close(fd);

    /* Edge-triggered epoll on an eventfd: each write is an edge. */
    fd = eventfd(0, EFD_NONBLOCK);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET}, out[2];
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0);
    v = 1;
    CHECK(write(fd, &v, 8) == 8);
    CHECK(epoll_wait(ep, out, 2, 0) == 1);
    CHECK(epoll_wait(ep, out, 2, 0) == 0);
    CHECK(write(fd, &v, 8) == 8);
    CHECK(epoll_wait(ep, out, 2, 0) == 1);
    close(ep);
    close(fd);
}

static void test_signalfd(void)
{
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGUSR1);
    sigaddset(&mask, SIGUSR2);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    CHECK(signalfd(-1, &mask, 0x1) == -1 && errno == EINVAL);
    CHECK(syscall(SYS_signalfd4, -1, &mask, 4, 0) == -1 && errno == EINVAL);
    int fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    REQUIRE(fd >= 0);
    CHECK(fcntl(fd, F_GETFD) == FD_CLOEXEC);
    struct signalfd_siginfo si[4];
    CHECK(read(fd, si, sizeof si) == -1 && errno == EAGAIN);
    CHECK(read(fd, si, sizeof si[0] - 1) == -1 && errno == EINVAL);
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    CHECK(poll(&pfd, 1, 0) == 0);
    kill(getpid(), SIGUSR1);
    CHECK(poll(&pfd, 1, 0) == 1 && pfd.revents == POLLIN);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN}, out[2];
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0);
    CHECK(epoll_wait(ep, out, 2, 0) == 1);
    CHECK(read(fd, si, sizeof si) == (ssize_t)sizeof si[0] && si[0].ssi_signo == SIGUSR1 &&
          si[0].ssi_code == SI_USER && si[0].ssi_pid == (uint32_t)getpid() &&
          si[0].ssi_uid == getuid());
    CHECK(epoll_wait(ep, out, 2, 0) == 0);
    /* Two at once, lowest first; sigqueue's value. */
    kill(getpid(), SIGUSR2);
    union sigval sv = {.sival_int = 77};
    sigqueue(getpid(), SIGUSR1, sv);
    CHECK(read(fd, si, sizeof si) == 2 * (ssize_t)sizeof si[0] && si[0].ssi_signo == SIGUSR1 &&
          si[0].ssi_code == SI_QUEUE && si[0].ssi_int == 77 && si[1].ssi_signo == SIGUSR2);
    /* The signal was taken: nothing pending any more. */
    sigset_t pend;
    sigpending(&pend);
    CHECK(!sigismember(&pend, SIGUSR1) && !sigismember(&pend, SIGUSR2));
    /* A new mask on the same descriptor. */
    sigset_t only2;
    sigemptyset(&only2);
    sigaddset(&only2, SIGUSR2);
    CHECK(signalfd(fd, &only2, 0) == fd);
    kill(getpid(), SIGUSR1);
    CHECK(read(fd, si, sizeof si) == -1 && errno == EAGAIN);
    sigpending(&pend);
    CHECK(sigismember(&pend, SIGUSR1));
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, SIGUSR1);
    int sig;
    CHECK(sigwait(&one, &sig) == 0 && sig == SIGUSR1);
    int p[2];
    REQUIRE(pipe(p) == 0);
    CHECK(signalfd(p[0], &mask, 0) == -1 && errno == EINVAL);
    close(p[0]);
    close(p[1]);
    /* A blocking read waits for a signal from a child. */
    int bfd = signalfd(-1, &mask, 0);
    pid_t parent = getpid(), pid = fork();
    if (pid == 0) {
        struct timespec ts = {0, 30 * 1000000};
        nanosleep(&ts, NULL);
        _exit(kill(parent, SIGUSR2) == 0 ? 0 : 1);
    }
    CHECK(read(bfd, si, sizeof si) == (ssize_t)sizeof si[0] && si[0].ssi_signo == SIGUSR2 &&
          si[0].ssi_pid == (uint32_t)pid);
    int status;
    CHECK(waitpid(pid, &status, 0) == pid && status == 0);
    close(bfd);
    close(ep);
    close(fd);
    sigprocmask(SIG_UNBLOCK, &mask, NULL);
}

static int64_t ts_ns(struct timespec t)
{
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void test_timerfd(void)
{
    CHECK(timerfd_create(CLOCK_PROCESS_CPUTIME_ID, 0) == -1 && errno == EINVAL);
    CHECK(timerfd_create(CLOCK_MONOTONIC, 0x1) == -1 && errno == EINVAL);
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    REQUIRE(fd >= 0);
    CHECK(fcntl(fd, F_GETFD) == FD_CLOEXEC);
    uint64_t v;
    CHECK(read(fd, &v, 8) == -1 && errno == EAGAIN);
    struct itimerspec its = {0}, old;
    CHECK(timerfd_gettime(fd, &old) == 0 && old.it_value.tv_sec == 0 && old.it_value.tv_nsec == 0);
    its.it_value.tv_sec = 10;
    CHECK(timerfd_settime(fd, 0, &its, NULL) == 0);
    CHECK(timerfd_gettime(fd, &old) == 0 && old.it_value.tv_sec <= 10 && ts_ns(old.it_value) > 0);
    CHECK(read(fd, &v, 8) == -1 && errno == EAGAIN);
    /* Re-arming returns the old setting; a short one fires. */
    its.it_value.tv_sec = 0;
    its.it_value.tv_nsec = 20 * 1000000;
    CHECK(timerfd_settime(fd, 0, &its, &old) == 0 && old.it_value.tv_sec >= 9);
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    CHECK(poll(&pfd, 1, 5000) == 1 && pfd.revents == POLLIN);
    CHECK(read(fd, &v, 8) == 8 && v == 1);
    CHECK(timerfd_gettime(fd, &old) == 0 && ts_ns(old.it_value) == 0);
    CHECK(read(fd, &v, 8) == -1 && errno == EAGAIN);
    char small[4];
    CHECK(read(fd, small, 4) == -1 && errno == EINVAL);

    /* An interval: expirations accumulate. */
    its.it_value.tv_nsec = 5 * 1000000;
    its.it_interval.tv_nsec = 5 * 1000000;
    CHECK(timerfd_settime(fd, 0, &its, NULL) == 0);
    struct timespec sl = {0, 60 * 1000000};
    nanosleep(&sl, NULL);
    CHECK(read(fd, &v, 8) == 8 && v >= 2);
    CHECK(timerfd_gettime(fd, &old) == 0 && old.it_interval.tv_nsec == 5 * 1000000);
    /* Disarming. */
    memset(&its, 0, sizeof its);
    CHECK(timerfd_settime(fd, 0, &its, NULL) == 0);
    CHECK(timerfd_gettime(fd, &old) == 0 && ts_ns(old.it_value) == 0 && ts_ns(old.it_interval) == 0);
    /* Bad values and flags. */
    its.it_value.tv_nsec = 1000000000;
    CHECK(timerfd_settime(fd, 0, &its, NULL) == -1 && errno == EINVAL);
    its.it_value.tv_nsec = 1;
    CHECK(timerfd_settime(fd, 0x10, &its, NULL) == -1 && errno == EINVAL);
    CHECK(timerfd_settime(fd, 0, BAD_PTR(16), NULL) == -1 && errno == EFAULT);
    int p[2];
    REQUIRE(pipe(p) == 0);
    CHECK(timerfd_settime(p[0], 0, &its, NULL) == -1 && errno == EINVAL);
    CHECK(timerfd_gettime(p[0], &old) == -1 && errno == EINVAL);
    close(p[0]);
    close(p[1]);

    /* Absolute on CLOCK_MONOTONIC: a time in the past fires at once. */
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    its.it_value = now;
    its.it_interval.tv_sec = 0;
    its.it_interval.tv_nsec = 0;
    CHECK(timerfd_settime(fd, TFD_TIMER_ABSTIME, &its, NULL) == 0);
    CHECK(poll(&pfd, 1, 5000) == 1);
    CHECK(read(fd, &v, 8) == 8 && v == 1);
    close(fd);

    /* CLOCK_REALTIME absolute, 30 ms ahead, blocking read; never before its time. */
    fd = timerfd_create(CLOCK_REALTIME, 0);
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t due = ts_ns(now) + 30 * 1000000LL;
    its.it_value.tv_sec = due / 1000000000LL;
    its.it_value.tv_nsec = due % 1000000000LL;
    CHECK(timerfd_settime(fd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &its, NULL) == 0);
    CHECK(read(fd, &v, 8) == 8 && v == 1);
    clock_gettime(CLOCK_REALTIME, &now);
    CHECK(ts_ns(now) >= due);
    close(fd);

    /* CLOCK_BOOTTIME, through epoll. */
    fd = timerfd_create(CLOCK_BOOTTIME, 0);
    CHECK(fd >= 0);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 9}, out[1];
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0);
    memset(&its, 0, sizeof its);
    its.it_value.tv_nsec = 10 * 1000000;
    CHECK(timerfd_settime(fd, 0, &its, NULL) == 0);
    CHECK(wait_events(ep, out, 1, 5000) == 1 && out[0].data.u32 == 9);
    close(ep);
    close(fd);
}

static void test_memfd(void)
{
    int fd = memfd_create("vk test", MFD_CLOEXEC);
    REQUIRE(fd >= 0);
    CHECK(fcntl(fd, F_GETFD) == FD_CLOEXEC);
    CHECK((fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDWR);
    char path[64], link[128];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(path, link, sizeof link - 1);
    CHECK(n > 0 && (link[n] = 0, strcmp(link, "/memfd:vk test (deleted)") == 0));
    struct stat st;
    CHECK(fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0);
    CHECK(write(fd, "hello", 5) == 5);
    CHECK(ftruncate(fd, 8192) == 0);
    CHECK(fstat(fd, &st) == 0 && st.st_size == 8192);
    char *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    REQUIRE(m != MAP_FAILED);
    CHECK(memcmp(m, "hello", 5) == 0);
    memcpy(m + 4096, "world", 5);
    char buf[8] = {0};
    CHECK(pread(fd, buf, 5, 4096) == 5 && memcmp(buf, "world", 5) == 0);
    CHECK(pwrite(fd, "HE", 2, 0) == 2 && m[0] == 'H');
    munmap(m, 8192);
    /* Without MFD_ALLOW_SEALING it is sealed against seals. */
    CHECK(fcntl(fd, F_GET_SEALS) == F_SEAL_SEAL);
    CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE) == -1 && errno == EPERM);
    close(fd);

    char longname[300];
    memset(longname, 'a', sizeof longname);
    longname[250] = 0;
    CHECK(memfd_create(longname, 0) == -1 && errno == EINVAL);
    longname[249] = 0;
    fd = memfd_create(longname, 0);
    CHECK(fd >= 0);
    close(fd);
    CHECK(memfd_create("x", 0x100) == -1 && errno == EINVAL);
    CHECK(memfd_create(BAD_PTR(16), 0) == -1 && errno == EFAULT);

    fd = memfd_create("sealed", MFD_ALLOW_SEALING);
    REQUIRE(fd >= 0);
    CHECK(fcntl(fd, F_GET_SEALS) == 0);
    CHECK(write(fd, "abcd", 4) == 4);
    CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_GROW) == 0);
    CHECK(pwrite(fd, "xy", 2, 3) == -1 && errno == EPERM);
    CHECK(pwrite(fd, "xy", 2, 0) == 2);
    CHECK(ftruncate(fd, 100) == -1 && errno == EPERM);
    CHECK(ftruncate(fd, 2) == 0);
    CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) == 0);
    CHECK(ftruncate(fd, 1) == -1 && errno == EPERM);
    CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE) == 0);
    CHECK(write(fd, "z", 1) == -1 && errno == EPERM);
    CHECK(pread(fd, buf, 8, 0) == 2 && memcmp(buf, "xy", 2) == 0);
    CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL) == 0);
    CHECK(fcntl(fd, F_GET_SEALS) == (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE));
    CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) == -1 && errno == EPERM);
    CHECK(fcntl(fd, F_ADD_SEALS, 0x1000) == -1 && errno == EINVAL);
    /* Seals need the file open for writing; other files have none. */
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    int ro = open(path, O_RDONLY);
    CHECK(ro >= 0 && fcntl(ro, F_GET_SEALS) >= 0);
    close(ro);
    close(fd);
    int p[2];
    REQUIRE(pipe(p) == 0);
    CHECK(fcntl(p[0], F_GET_SEALS) == -1 && errno == EINVAL);
    close(p[0]);
    close(p[1]);
}

int main(void)
{
    vktest_reset_signals();
    test_epoll_basics();
    test_epoll_edge();
    test_epoll_nested();
    test_epoll_wait_sleeps();
    test_eventfd();
    test_signalfd();
    test_timerfd();
    test_memfd();
    vktest_done();
}
