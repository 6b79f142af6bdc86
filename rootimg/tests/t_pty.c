/*
 * t_pty — pseudo-terminals: /dev/ptmx, /dev/pts, and a slave that is a real terminal.
 *
 * Covers: posix_openpt/grantpt/unlockpt/ptsname (TIOCGPTN, TIOCSPTLCK, TIOCGPTLCK), the slave
 * locked until unlockpt (EIO), the slave node (a character device 136,N owned by the opener,
 * listed in /dev/pts), isatty and ttyname on both sides, typing at the master (canonical input,
 * echo, ONLCR on output), raw mode (cfmakeraw: no echo, bytes at once), VEOF, window size set on
 * the master and read on the slave, FIONREAD, poll and epoll on the master, a child's new session
 * taking the slave as controlling terminal (TIOCSCTTY by open, tcgetpgrp, /dev/tty, ^C from the
 * master killing its foreground group with SIGINT), the master reading EIO once every slave is
 * closed, and closing the master hanging the slave up (SIGHUP to its session's leader, writes
 * EIO).
 */
#include "vktest.h"

#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <dirent.h>
#include <termios.h>
#include <time.h>

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Read from the master until `want` bytes came or 2 s passed. */
static ssize_t read_master(int m, char *buf, size_t want)
{
    size_t got = 0;
    for (int i = 0; i < 200 && got < want; i++) {
        struct pollfd p = {.fd = m, .events = POLLIN};
        if (poll(&p, 1, 10) == 1 && (p.revents & POLLIN)) {
            ssize_t n = read(m, buf + got, want - got);
            if (n <= 0)
                break;
            got += (size_t)n;
        }
    }
    return (ssize_t)got;
}

static int open_pair(int *m, int *s, char *name, size_t len)
{
    *m = posix_openpt(O_RDWR | O_NOCTTY);
    if (*m < 0 || grantpt(*m) != 0 || unlockpt(*m) != 0 || ptsname_r(*m, name, len) != 0)
        return -1;
    *s = open(name, O_RDWR | O_NOCTTY);
    return *s < 0 ? -1 : 0;
}

static void test_basics(void)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    REQUIRE(m >= 0);
    CHECK(isatty(m));
    CHECK(grantpt(m) == 0);
    unsigned int n = 99;
    CHECK(ioctl(m, TIOCGPTN, &n) == 0);
    char name[64];
    CHECK(ptsname_r(m, name, sizeof name) == 0);
    char want[64];
    snprintf(want, sizeof want, "/dev/pts/%u", n);
    CHECK(strcmp(name, want) == 0);
    int locked = 0;
    CHECK(ioctl(m, TIOCGPTLCK, &locked) == 0 && locked == 1);
    /* Locked: the slave cannot be opened. */
    CHECK(open(name, O_RDWR | O_NOCTTY) == -1 && errno == EIO);
    CHECK(unlockpt(m) == 0);
    CHECK(ioctl(m, TIOCGPTLCK, &locked) == 0 && locked == 0);
    struct stat st;
    CHECK(stat(name, &st) == 0 && S_ISCHR(st.st_mode) && major(st.st_rdev) == 136 && minor(st.st_rdev) == n &&
          st.st_uid == getuid());
    /* Listed in /dev/pts. */
    DIR *d = opendir("/dev/pts");
    int found = 0;
    struct dirent *e;
    char num[16];
    snprintf(num, sizeof num, "%u", n);
    while (d && (e = readdir(d)))
        found |= strcmp(e->d_name, num) == 0;
    if (d)
        closedir(d);
    CHECK(found);
    int s = open(name, O_RDWR | O_NOCTTY);
    REQUIRE(s >= 0);
    CHECK(isatty(s));
    char tn[64];
    CHECK(ttyname_r(s, tn, sizeof tn) == 0 && strcmp(tn, name) == 0);
    /* TIOCGPTN is the master's only. */
    CHECK(ioctl(s, TIOCGPTN, &n) == -1 && errno == ENOTTY);

    /* Canonical input typed at the master, echoed back to it. */
    CHECK(write(m, "hello\n", 6) == 6);
    char buf[64] = {0};
    CHECK(read(s, buf, sizeof buf) == 6 && memcmp(buf, "hello\n", 6) == 0);
    memset(buf, 0, sizeof buf);
    CHECK(read_master(m, buf, 7) == 7 && memcmp(buf, "hello\r\n", 7) == 0);
    /* Output: ONLCR. */
    CHECK(write(s, "out\n", 4) == 4);
    memset(buf, 0, sizeof buf);
    CHECK(read_master(m, buf, 5) == 5 && memcmp(buf, "out\r\n", 5) == 0);
    int avail = -1;
    CHECK(write(s, "xyz", 3) == 3);
    sleep_ms(10);
    CHECK(ioctl(m, FIONREAD, &avail) == 0 && avail == 3);
    CHECK(read_master(m, buf, 3) == 3);
    /* An unfinished line is not readable; VEOF hands it over without the EOF. */
    fcntl(s, F_SETFL, O_NONBLOCK);
    CHECK(write(m, "ab", 2) == 2);
    sleep_ms(10);
    CHECK(read(s, buf, sizeof buf) == -1 && errno == EAGAIN);
    CHECK(write(m, "\x04", 1) == 1);
    sleep_ms(10);
    CHECK(read(s, buf, sizeof buf) == 2 && memcmp(buf, "ab", 2) == 0);
    fcntl(s, F_SETFL, 0);
    read_master(m, buf, 2); /* the echo */

    /* Raw mode: no echo, bytes at once. */
    struct termios t;
    CHECK(tcgetattr(s, &t) == 0 && (t.c_lflag & ICANON) && (t.c_lflag & ECHO));
    cfmakeraw(&t);
    CHECK(tcsetattr(s, TCSANOW, &t) == 0);
    CHECK(write(m, "q", 1) == 1);
    CHECK(read(s, buf, 1) == 1 && buf[0] == 'q');
    struct pollfd pm = {.fd = m, .events = POLLIN};
    CHECK(poll(&pm, 1, 20) == 0);
    CHECK(write(s, "\n", 1) == 1);
    CHECK(read_master(m, buf, 1) == 1 && buf[0] == '\n');

    /* The window size set on the master is the slave's. */
    struct winsize ws = {.ws_row = 33, .ws_col = 111}, got = {0};
    CHECK(ioctl(m, TIOCSWINSZ, &ws) == 0);
    CHECK(ioctl(s, TIOCGWINSZ, &got) == 0 && got.ws_row == 33 && got.ws_col == 111);

    /* epoll on the master. */
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 4}, out[1];
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, m, &ev) == 0);
    CHECK(epoll_wait(ep, out, 1, 0) == 0);
    CHECK(write(s, "z", 1) == 1);
    CHECK(epoll_wait(ep, out, 1, 2000) == 1 && out[0].data.u32 == 4);
    CHECK(read(m, buf, 1) == 1 && buf[0] == 'z');
    close(ep);

    /* Every slave closed: the master reads EIO and polls POLLHUP. */
    close(s);
    CHECK(read(m, buf, 1) == -1 && errno == EIO);
    pm.events = POLLIN;
    CHECK(poll(&pm, 1, 0) == 1 && (pm.revents & POLLHUP));
    close(m);
    /* Gone from /dev/pts with its master. */
    CHECK(stat(name, &st) == -1 && errno == ENOENT);
}

static void test_session(void)
{
    int m, s;
    char name[64];
    REQUIRE(open_pair(&m, &s, name, sizeof name) == 0);
    close(s);
    int sync[2];
    REQUIRE(pipe(sync) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(m);
        vktest_failed = 0;
        CHECK(setsid() == getpid());
        /* A session leader opening a terminal without O_NOCTTY gets it as its own. */
        int fd = open(name, O_RDWR);
        CHECK(fd >= 0);
        CHECK(tcgetpgrp(fd) == getpid());
        CHECK(tcgetsid(fd) == getpid());
        int tty = open("/dev/tty", O_RDWR);
        CHECK(tty >= 0);
        CHECK(tty >= 0 && isatty(tty) && tcgetpgrp(tty) == getpid());
        close(tty);
        if (vktest_failed)
            _exit(100);
        /* Wait for ^C from the master: SIGINT (default action) ends this process. */
        if (write(sync[1], "r", 1) != 1)
            _exit(101);
        char c;
        for (;;)
            if (read(fd, &c, 1) < 0 && errno != EINTR)
                break;
        _exit(102);
    }
    close(sync[1]);
    char c;
    CHECK(read(sync[0], &c, 1) == 1);
    CHECK(write(m, "\x03", 1) == 1);
    int status;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECKF(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT, "status %#x", status);
    close(sync[0]);
    close(m);
}

static void test_hangup(void)
{
    int m, s;
    char name[64];
    REQUIRE(open_pair(&m, &s, name, sizeof name) == 0);
    close(s);
    int sync[2];
    REQUIRE(pipe(sync) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(m);
        setsid();
        int fd = open(name, O_RDWR);
        /* SIGHUP's default action ends this process when the master goes. */
        if (fd < 0 || write(sync[1], "r", 1) != 1)
            _exit(100);
        pause();
        _exit(101);
    }
    close(sync[1]);
    char c;
    CHECK(read(sync[0], &c, 1) == 1);
    /* A slave of our own, to see the hang-up. */
    int s2 = open(name, O_RDWR | O_NOCTTY);
    CHECK(s2 >= 0);
    close(m);
    int status;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECKF(WIFSIGNALED(status) && WTERMSIG(status) == SIGHUP, "status %#x", status);
    CHECK(write(s2, "x", 1) == -1 && errno == EIO);
    struct pollfd p = {.fd = s2, .events = POLLIN};
    CHECK(poll(&p, 1, 0) == 1 && (p.revents & POLLHUP));
    close(s2);
    close(sync[0]);
}

int main(void)
{
    vktest_reset_signals();
    test_basics();
    test_session();
    test_hangup();
    vktest_done();
}
