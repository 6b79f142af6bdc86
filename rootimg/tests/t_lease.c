/*
 * t_lease — fcntl(2) leases (F_SETLEASE, F_GETLEASE) and signal owners (F_SETOWN,
 * F_GETOWN, F_SETOWN_EX, F_GETOWN_EX, F_SETSIG, F_GETSIG).
 *
 * Leases: the open-file checks (a read lease only where nobody writes, a write lease only
 * where nobody else has the file open), EINVAL and EACCES; a conflicting open breaks the
 * lease: the holder gets F_SETSIG's signal with si_fd (or plain SIGIO), F_GETLEASE shows the
 * type it must go to, an O_NONBLOCK opener gets EWOULDBLOCK and a blocking one waits until
 * the holder downgrades, releases or closes, or until /proc/sys/fs/lease-break-time passes.
 * Run as root (natively too): it sets lease-break-time to 1 for a moment.
 */
#define _GNU_SOURCE
#include "vktest.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

static char path[64];
static int lease_sig;

/* Wait up to 10 s for the lease signal; its siginfo in *si. */
static int wait_lease_sig(int sig, siginfo_t *si)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    struct timespec ts = {10, 0};
    return sigtimedwait(&set, si, &ts);
}

/* A child that opens the file with `flags` and exits 0 when open's result is `want_errno`
 * (0: success). It first closes the descriptors it inherited, so that the parent's close is
 * the last one of its files. */
static pid_t opener(int flags, int want_errno)
{
    pid_t pid = fork();
    if (pid == 0) {
        for (int fd = 3; fd < 64; fd++)
            close(fd);
        errno = 0;
        int fd = open(path, flags);
        int e = fd < 0 ? errno : 0;
        _exit(e == want_errno ? 0 : 1);
    }
    return pid;
}

static int child_ok(pid_t pid)
{
    int st;
    return waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static void test_setlease_checks(void)
{
    int rd = open(path, O_RDONLY);
    REQUIRE(rd >= 0);
    CHECK(fcntl(rd, F_GETLEASE) == F_UNLCK);
    errno = 0;
    CHECK(fcntl(rd, F_SETLEASE, 7) == -1 && errno == EINVAL);

    int p[2];
    REQUIRE(pipe(p) == 0);
    CHECK(fcntl(p[0], F_SETLEASE, F_RDLCK) == -1 && errno == EINVAL);
    close(p[0]);
    close(p[1]);
    /* An O_PATH descriptor takes none of these commands. */
    int op = open(path, O_PATH);
    REQUIRE(op >= 0);
    CHECK(fcntl(op, F_SETLEASE, F_RDLCK) == -1 && errno == EBADF);
    CHECK(fcntl(op, F_GETOWN) == -1 && errno == EBADF);
    close(op);

    /* A read lease needs nobody writing, this descriptor included. */
    int rw = open(path, O_RDWR);
    REQUIRE(rw >= 0);
    CHECK(fcntl(rw, F_SETLEASE, F_RDLCK) == -1 && errno == EAGAIN);
    CHECK(fcntl(rd, F_SETLEASE, F_RDLCK) == -1 && errno == EAGAIN);
    /* A write lease needs nobody else with the file open. */
    CHECK(fcntl(rw, F_SETLEASE, F_WRLCK) == -1 && errno == EAGAIN);
    close(rd);
    CHECK(fcntl(rw, F_SETLEASE, F_WRLCK) == 0);
    CHECK(fcntl(rw, F_GETLEASE) == F_WRLCK);
    /* Taking a lease makes this process the file's owner. */
    CHECK(fcntl(rw, F_GETOWN) == getpid());
    CHECK(fcntl(rw, F_SETLEASE, F_UNLCK) == 0);
    CHECK(fcntl(rw, F_GETLEASE) == F_UNLCK);
    close(rw);

    rd = open(path, O_RDONLY);
    int rd2 = open(path, O_RDONLY);
    CHECK(fcntl(rd, F_SETLEASE, F_RDLCK) == 0);
    CHECK(fcntl(rd2, F_SETLEASE, F_RDLCK) == 0); /* read leases share */
    CHECK(fcntl(rd, F_SETLEASE, F_WRLCK) == -1 && errno == EAGAIN);
    CHECK(fcntl(rd, F_GETLEASE) == F_RDLCK && fcntl(rd2, F_GETLEASE) == F_RDLCK);
    /* Another reader's open does not break a read lease. */
    pid_t c = opener(O_RDONLY | O_NONBLOCK, 0);
    CHECK(child_ok(c));
    close(rd2);
    CHECK(fcntl(rd, F_GETLEASE) == F_RDLCK);
    close(rd);

    /* Only the file's owner (or CAP_LEASE) takes a lease. */
    c = fork();
    if (c == 0) {
        int fd = open(path, O_RDONLY);
        if (fd < 0 || setgid(65534) != 0 || setuid(65534) != 0)
            _exit(2);
        errno = 0;
        _exit(fcntl(fd, F_SETLEASE, F_RDLCK) == -1 && errno == EACCES ? 0 : 1);
    }
    CHECK(child_ok(c));
}

/* A read lease broken by writers, with F_SETSIG's signal. */
static void test_break_read(void)
{
    int fd = open(path, O_RDONLY);
    REQUIRE(fd >= 0);
    CHECK(fcntl(fd, F_SETSIG, lease_sig) == 0);
    CHECK(fcntl(fd, F_SETLEASE, F_RDLCK) == 0);

    /* O_NONBLOCK: EWOULDBLOCK at once, and the holder is told. */
    pid_t c = opener(O_WRONLY | O_NONBLOCK, EWOULDBLOCK);
    CHECK(child_ok(c));
    siginfo_t si;
    memset(&si, 0, sizeof si);
    CHECK(wait_lease_sig(lease_sig, &si) == lease_sig);
    CHECKF(si.si_fd == fd && si.si_code == POLL_MSG, "si_fd %d (fd %d) si_code %d", si.si_fd, fd, si.si_code);
    CHECK(fcntl(fd, F_GETLEASE) == F_UNLCK); /* where it must go */

    /* A blocking writer waits until the holder lets go. */
    c = opener(O_WRONLY, 0);
    CHECK(fcntl(fd, F_GETLEASE) == F_UNLCK);
    int st;
    usleep(20000);
    CHECK(waitpid(c, &st, WNOHANG) == 0); /* still waiting for the lease */
    CHECK(fcntl(fd, F_SETLEASE, F_UNLCK) == 0);
    CHECK(child_ok(c));
    CHECK(fcntl(fd, F_GETLEASE) == F_UNLCK);

    close(fd);

    /* Closing the holder's last descriptor releases it too. */
    fd = open(path, O_RDONLY);
    CHECK(fcntl(fd, F_SETSIG, lease_sig) == 0);
    CHECK(fcntl(fd, F_SETLEASE, F_RDLCK) == 0);
    c = opener(O_RDWR, 0);
    memset(&si, 0, sizeof si);
    CHECK(wait_lease_sig(lease_sig, &si) == lease_sig);
    close(fd);
    CHECK(child_ok(c));
}

/* A write lease: a reader makes it downgrade; a writer makes it go; plain SIGIO. */
static void test_break_write(void)
{
    int fd = open(path, O_RDWR);
    REQUIRE(fd >= 0);
    CHECK(fcntl(fd, F_GETSIG) == 0);
    CHECK(fcntl(fd, F_SETLEASE, F_WRLCK) == 0);
    pid_t c = opener(O_RDONLY, 0);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    CHECK(wait_lease_sig(SIGIO, &si) == SIGIO);
    CHECK(si.si_code == SI_KERNEL);
    CHECK(fcntl(fd, F_SETLEASE, F_UNLCK) == 0);
    CHECK(child_ok(c));
    close(fd);

    fd = open(path, O_RDONLY);
    CHECK(fcntl(fd, F_SETLEASE, F_WRLCK) == 0);
    c = opener(O_RDONLY, 0);
    CHECK(wait_lease_sig(SIGIO, &si) == SIGIO);
    CHECK(fcntl(fd, F_GETLEASE) == F_RDLCK);
    CHECK(fcntl(fd, F_SETLEASE, F_RDLCK) == 0); /* the downgrade lets the reader in */
    CHECK(child_ok(c));
    CHECK(fcntl(fd, F_GETLEASE) == F_RDLCK);
    close(fd);

    /* truncate(2) breaks a lease as an open for writing does. */
    fd = open(path, O_RDONLY);
    CHECK(fcntl(fd, F_SETLEASE, F_RDLCK) == 0);
    c = fork();
    if (c == 0) {
        for (int i = 3; i < 64; i++)
            close(i);
        _exit(truncate(path, 0) == 0 ? 0 : 1);
    }
    CHECK(wait_lease_sig(SIGIO, &si) == SIGIO);
    CHECK(fcntl(fd, F_SETLEASE, F_UNLCK) == 0);
    CHECK(child_ok(c));
    close(fd);
}

static int read_int_file(const char *p)
{
    char buf[32] = {0};
    int fd = open(p, O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    return n > 0 ? atoi(buf) : -1;
}

static int write_file(const char *p, const char *s)
{
    int fd = open(p, O_WRONLY | O_TRUNC);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, s, strlen(s));
    close(fd);
    return n == (ssize_t)strlen(s) ? 0 : -1;
}

/* A holder that does nothing loses its lease after lease-break-time seconds. */
static void test_break_time(void)
{
    const char *ctl = "/proc/sys/fs/lease-break-time";
    int old = read_int_file(ctl);
    CHECK(old == 45);
    REQUIRE(write_file(ctl, "1\n") == 0);
    CHECK(read_int_file(ctl) == 1);
    int fd = open(path, O_RDONLY);
    CHECK(fcntl(fd, F_SETSIG, lease_sig) == 0);
    CHECK(fcntl(fd, F_SETLEASE, F_RDLCK) == 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t c = opener(O_WRONLY, 0);
    siginfo_t si;
    CHECK(wait_lease_sig(lease_sig, &si) == lease_sig);
    CHECK(child_ok(c));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CHECK(t1.tv_sec - t0.tv_sec + (t1.tv_nsec - t0.tv_nsec) / 1e9 >= 0.9);
    CHECK(fcntl(fd, F_GETLEASE) == F_UNLCK); /* broken by the kernel */
    close(fd);
    char buf[16];
    snprintf(buf, sizeof buf, "%d\n", old > 0 ? old : 45);
    CHECK(write_file(ctl, buf) == 0);
}

static void test_owner(void)
{
    int fd = open(path, O_RDONLY);
    REQUIRE(fd >= 0);
    CHECK(fcntl(fd, F_GETOWN) == 0);
    struct f_owner_ex ex;
    memset(&ex, 0xff, sizeof ex);
    /* Never set: all zero (F_OWNER_TID, 0). */
    CHECK(fcntl(fd, F_GETOWN_EX, &ex) == 0 && ex.type == F_OWNER_TID && ex.pid == 0);
    CHECK(fcntl(fd, F_SETOWN, getpid()) == 0);
    CHECK(fcntl(fd, F_GETOWN) == getpid());
    CHECK(fcntl(fd, F_GETOWN_EX, &ex) == 0 && ex.type == F_OWNER_PID && ex.pid == getpid());
    CHECK(fcntl(fd, F_SETOWN, -getpgrp()) == 0);
    CHECK(fcntl(fd, F_GETOWN) == -getpgrp());
    CHECK(fcntl(fd, F_GETOWN_EX, &ex) == 0 && ex.type == F_OWNER_PGRP && ex.pid == getpgrp());
    ex.type = F_OWNER_TID;
    ex.pid = (pid_t)syscall(SYS_gettid);
    CHECK(fcntl(fd, F_SETOWN_EX, &ex) == 0);
    memset(&ex, 0, sizeof ex);
    CHECK(fcntl(fd, F_GETOWN_EX, &ex) == 0 && ex.type == F_OWNER_TID && ex.pid == (pid_t)syscall(SYS_gettid));
    CHECK(fcntl(fd, F_GETOWN) == (int)syscall(SYS_gettid));
    ex.type = 3;
    errno = 0;
    CHECK(fcntl(fd, F_SETOWN_EX, &ex) == -1 && errno == EINVAL);
    CHECK(fcntl(fd, F_GETOWN_EX, BAD_PTR(8)) == -1 && errno == EFAULT);

    /* A pid nobody has: ESRCH. */
    pid_t gone = fork();
    if (gone == 0)
        _exit(0);
    waitpid(gone, NULL, 0);
    errno = 0;
    CHECK(fcntl(fd, F_SETOWN, gone) == -1 && errno == ESRCH);
    CHECK(fcntl(fd, F_SETOWN, 0) == 0 && fcntl(fd, F_GETOWN) == 0);

    /* A dup shares the open file description's owner and signal. */
    CHECK(fcntl(fd, F_SETSIG, SIGUSR1) == 0);
    int d = dup(fd);
    CHECK(fcntl(d, F_GETSIG) == SIGUSR1);
    CHECK(fcntl(fd, F_SETSIG, 0) == 0 && fcntl(d, F_GETSIG) == 0);
    CHECK(fcntl(fd, F_SETSIG, 65) == -1 && errno == EINVAL);
    close(d);
    close(fd);
}

int main(void)
{
    vktest_reset_signals();
    lease_sig = SIGRTMIN + 1;
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, lease_sig);
    sigaddset(&block, SIGIO);
    sigprocmask(SIG_BLOCK, &block, NULL);

    snprintf(path, sizeof path, "/tmp/t_lease.%d", (int)getpid());
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
    REQUIRE(fd >= 0);
    close(fd);

    test_setlease_checks();
    test_break_read();
    test_break_write();
    test_break_time();
    test_owner();
    unlink(path);
    vktest_done();
}
