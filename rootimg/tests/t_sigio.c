/*
 * t_sigio — O_ASYNC I/O signals (fcntl(2) F_SETFL O_ASYNC, ioctl FIOASYNC, F_SETOWN,
 * F_SETSIG): a pipe's reader is signalled for each write (F_SETSIG's real-time signal, queued,
 * with si_code POLL_IN, si_fd and si_band), its writer when room appears (POLL_OUT); plain
 * SIGIO without F_SETSIG; nothing without an owner or once O_ASYNC is off; an AF_UNIX
 * socket's reader too.
 */
#include "vktest.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>

#define SIG (SIGRTMIN + 1)

/* The next of `sig` within `ms`, or -1 with errno (EAGAIN when none came). */
static int wait_sig(int sig, int ms, siginfo_t *si)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    return sigtimedwait(&set, si, &t);
}

/* Take every pending `sig` (none within 100 ms ends it); returns how many. */
static int drain(int sig)
{
    siginfo_t si;
    int n = 0;
    while (wait_sig(sig, 100, &si) == sig)
        n++;
    return n;
}

static void test_pipe_reader(void)
{
    int p[2];
    REQUIRE(pipe(p) == 0);
    CHECK(fcntl(p[0], F_SETOWN, getpid()) == 0);
    CHECK(fcntl(p[0], F_SETSIG, SIG) == 0);
    CHECK(fcntl(p[0], F_SETFL, O_ASYNC | O_NONBLOCK) == 0);
    CHECK((fcntl(p[0], F_GETFL) & (O_ASYNC | O_NONBLOCK)) == (O_ASYNC | O_NONBLOCK));
    /* Setting it signals nothing by itself. */
    siginfo_t si;
    CHECK(wait_sig(SIG, 100, &si) == -1 && errno == EAGAIN);
    CHECK(write(p[1], "a", 1) == 1);
    CHECK(wait_sig(SIG, 2000, &si) == SIG);
    CHECK(si.si_code == POLL_IN && si.si_fd == p[0] && si.si_band == (POLLIN | POLLRDNORM));
    /* Another write while it is still readable: another signal. */
    CHECK(write(p[1], "b", 1) == 1);
    CHECK(wait_sig(SIG, 2000, &si) == SIG && si.si_code == POLL_IN);
    char b[4];
    CHECK(read(p[0], b, sizeof b) == 2);
    drain(SIG);
    /* No owner: no signal. */
    CHECK(fcntl(p[0], F_SETOWN, 0) == 0);
    CHECK(write(p[1], "c", 1) == 1);
    CHECK(wait_sig(SIG, 200, &si) == -1 && errno == EAGAIN);
    CHECK(read(p[0], b, sizeof b) == 1);
    /* O_ASYNC off (FIOASYNC): no signal. */
    CHECK(fcntl(p[0], F_SETOWN, getpid()) == 0);
    int off = 0;
    CHECK(ioctl(p[0], FIOASYNC, &off) == 0 && (fcntl(p[0], F_GETFL) & O_ASYNC) == 0);
    CHECK(write(p[1], "d", 1) == 1);
    CHECK(wait_sig(SIG, 200, &si) == -1 && errno == EAGAIN);
    /* And on again through FIOASYNC. */
    CHECK(read(p[0], b, sizeof b) == 1);
    int on = 1;
    CHECK(ioctl(p[0], FIOASYNC, &on) == 0 && (fcntl(p[0], F_GETFL) & O_ASYNC) != 0);
    CHECK(write(p[1], "e", 1) == 1);
    CHECK(wait_sig(SIG, 2000, &si) == SIG && si.si_fd == p[0]);
    close(p[0]);
    close(p[1]);
    drain(SIG);
}

static void test_pipe_writer(void)
{
    int p[2];
    REQUIRE(pipe(p) == 0);
    CHECK(fcntl(p[1], F_SETOWN, getpid()) == 0);
    CHECK(fcntl(p[1], F_SETSIG, SIG) == 0);
    CHECK(fcntl(p[1], F_SETFL, O_ASYNC | O_NONBLOCK) == 0);
    /* Fill it, then make room. */
    char buf[4096];
    memset(buf, 'x', sizeof buf);
    while (write(p[1], buf, sizeof buf) > 0)
        ;
    drain(SIG);
    CHECK(read(p[0], buf, sizeof buf) == (ssize_t)sizeof buf);
    siginfo_t si;
    CHECK(wait_sig(SIG, 2000, &si) == SIG);
    CHECK(si.si_code == POLL_OUT && si.si_fd == p[1] && si.si_band == (POLLOUT | POLLWRNORM | POLLWRBAND));
    close(p[0]);
    close(p[1]);
    drain(SIG);
}

static void test_plain_sigio(void)
{
    int p[2];
    REQUIRE(pipe(p) == 0);
    CHECK(fcntl(p[0], F_GETSIG) == 0);
    CHECK(fcntl(p[0], F_SETOWN, getpid()) == 0);
    CHECK(fcntl(p[0], F_SETFL, O_ASYNC) == 0);
    CHECK(write(p[1], "a", 1) == 1);
    siginfo_t si;
    CHECK(wait_sig(SIGIO, 2000, &si) == SIGIO);
    close(p[0]);
    close(p[1]);
    drain(SIGIO);
}

static void test_socket(void)
{
    int s[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, s) == 0);
    CHECK(fcntl(s[0], F_SETOWN, getpid()) == 0);
    CHECK(fcntl(s[0], F_SETSIG, SIG) == 0);
    CHECK(fcntl(s[0], F_SETFL, O_ASYNC) == 0);
    drain(SIG);
    CHECK(write(s[1], "hi", 2) == 2);
    siginfo_t si;
    int got = 0;
    /* A socket also tells of room (POLL_OUT) when it pleases: look for the POLL_IN. */
    while (wait_sig(SIG, 2000, &si) == SIG)
        if (si.si_code == POLL_IN && si.si_fd == s[0]) {
            got = 1;
            break;
        }
    CHECK(got);
    close(s[0]);
    close(s[1]);
    drain(SIG);
}

int main(void)
{
    vktest_reset_signals();
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIG);
    sigaddset(&set, SIGIO);
    sigprocmask(SIG_BLOCK, &set, NULL);
    test_pipe_reader();
    test_pipe_writer();
    test_plain_sigio();
    test_socket();
    return vktest_done();
}
