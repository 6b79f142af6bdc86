/*
 * t_lock — advisory file locks: fcntl record locks (POSIX and OFD) and flock(2).
 *
 * Covers: F_SETLK/F_GETLK between processes (write locks exclude, read locks share, disjoint
 * ranges, F_GETLK's answer: type, start, length, the holder's pid; F_UNLCK when free and for the
 * caller's own locks), ranges from SEEK_SET/SEEK_CUR/SEEK_END and negative lengths, unlocking part
 * of a lock (split), a lock of another type inside one, the whole process's locks on a file going
 * at the close of any of its descriptors, not inherited by fork, F_SETLKW waiting for an unlock and
 * interrupted by a signal (EINTR), EDEADLK for two processes waiting for each other, the errors
 * (EINVAL for a bad type, whence, start or an OFD l_pid, EBADF for a lock the open mode does not
 * allow); OFD locks (two descriptions of one process conflict, l_pid -1, they meet POSIX locks,
 * they go with the last descriptor of their description, they are inherited by fork);
 * flock(2) (exclusive and shared, LOCK_NB's EWOULDBLOCK, conversion, LOCK_UN, a duplicate shares the
 * lock, independent of fcntl locks, released at the last close, a blocking flock waiting for
 * another process, EINVAL).
 *
 * Usage: t_lock [DIR] — the lock file is made in DIR (default /tmp).
 */
#include "vktest.h"

#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>

#ifndef F_OFD_GETLK
#define F_OFD_GETLK 36
#define F_OFD_SETLK 37
#define F_OFD_SETLKW 38
#endif

static char path[256];

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int lk(int fd, int cmd, short type, short whence, off_t start, off_t len)
{
    struct flock fl = {.l_type = type, .l_whence = whence, .l_start = start, .l_len = len};
    return fcntl(fd, cmd, &fl);
}

/* F_GETLK for a write lock on [start, start+len): fills *out. */
static int getlk(int fd, int cmd, off_t start, off_t len, struct flock *out)
{
    memset(out, 0, sizeof *out);
    out->l_type = F_WRLCK;
    out->l_whence = SEEK_SET;
    out->l_start = start;
    out->l_len = len;
    return fcntl(fd, cmd, out);
}

/* Run `fn` in a child; returns its exit status (0: all its checks passed). */
static int in_child(int (*fn)(void *), void *arg)
{
    pid_t pid = fork();
    if (pid == 0) {
        vktest_failed = 0;
        _exit(fn(arg));
    }
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

static int child_sees_parent_lock(void *arg)
{
    pid_t parent = *(pid_t *)arg;
    int fd = open(path, O_RDWR);
    struct flock fl;
    CHECK(getlk(fd, F_GETLK, 0, 0, &fl) == 0 && fl.l_type == F_WRLCK && fl.l_start == 10 && fl.l_len == 10 &&
          fl.l_pid == parent && fl.l_whence == SEEK_SET);
    CHECK(lk(fd, F_SETLK, F_WRLCK, SEEK_SET, 15, 1) == -1 && (errno == EAGAIN || errno == EACCES));
    CHECK(lk(fd, F_SETLK, F_RDLCK, SEEK_SET, 19, 5) == -1);
    /* Outside the range: free. */
    CHECK(lk(fd, F_SETLK, F_WRLCK, SEEK_SET, 0, 10) == 0);
    CHECK(lk(fd, F_SETLK, F_WRLCK, SEEK_SET, 20, 0) == 0);
    CHECK(getlk(fd, F_GETLK, 30, 1, &fl) == 0 && fl.l_type == F_UNLCK);
    close(fd);
    return vktest_failed;
}

static int child_read_locks(void *arg)
{
    (void)arg;
    int fd = open(path, O_RDWR);
    CHECK(lk(fd, F_SETLK, F_RDLCK, SEEK_SET, 0, 100) == 0);
    CHECK(lk(fd, F_SETLK, F_WRLCK, SEEK_SET, 50, 1) == -1 && (errno == EAGAIN || errno == EACCES));
    /* The parent unlocked 40..59 of its write lock: 45 is free, 30 and 60 are not. */
    CHECK(lk(fd, F_SETLK, F_WRLCK, SEEK_SET, 200, 1) == 0);
    close(fd);
    return vktest_failed;
}

static int child_after_split(void *arg)
{
    (void)arg;
    int fd = open(path, O_RDWR);
    CHECK(lk(fd, F_SETLK, F_WRLCK, SEEK_SET, 45, 1) == 0);
    CHECK(lk(fd, F_SETLK, F_WRLCK, SEEK_SET, 30, 1) == -1);
    CHECK(lk(fd, F_SETLK, F_WRLCK, SEEK_SET, 60, 1) == -1);
    struct flock fl;
    CHECK(getlk(fd, F_GETLK, 0, 0, &fl) == 0 && fl.l_type == F_WRLCK && fl.l_start == 0 && fl.l_len == 40);
    CHECK(getlk(fd, F_GETLK, 41, 0, &fl) == 0 && fl.l_start == 60 && fl.l_len == 41);
    close(fd);
    return vktest_failed;
}

static int child_all_free(void *arg)
{
    (void)arg;
    int fd = open(path, O_RDWR);
    CHECK(lk(fd, F_SETLK, F_WRLCK, SEEK_SET, 0, 0) == 0);
    close(fd);
    return vktest_failed;
}

static int child_wants_byte(void *arg)
{
    /* 0: the byte is free; 1: held. */
    off_t at = *(off_t *)arg;
    int fd = open(path, O_RDWR);
    int r = lk(fd, F_SETLK, F_WRLCK, SEEK_SET, at, 1);
    close(fd);
    return r == 0 ? 0 : 1;
}

static void test_posix(void)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    REQUIRE(fd >= 0);
    CHECK(write(fd, "0123456789abcdefghij", 20) == 20);
    pid_t me = getpid();
    CHECK(lk(fd, F_SETLK, F_WRLCK, SEEK_SET, 10, 10) == 0);
    /* The owner's own locks never stand in its way. */
    struct flock fl;
    CHECK(getlk(fd, F_GETLK, 0, 0, &fl) == 0 && fl.l_type == F_UNLCK);
    CHECK(lk(fd, F_SETLK, F_RDLCK, SEEK_SET, 12, 2) == 0);
    CHECK(lk(fd, F_SETLK, F_WRLCK, SEEK_SET, 10, 10) == 0);
    CHECK(in_child(child_sees_parent_lock, &me) == 0);
    CHECK(lk(fd, F_SETLK, F_UNLCK, SEEK_SET, 0, 0) == 0);

    /* Read locks share; a write lock split by an unlock. */
    CHECK(lk(fd, F_SETLK, F_RDLCK, SEEK_SET, 0, 100) == 0);
    CHECK(in_child(child_read_locks, NULL) == 0);
    CHECK(lk(fd, F_SETLK, F_WRLCK, SEEK_SET, 0, 101) == 0);
    CHECK(lk(fd, F_SETLK, F_UNLCK, SEEK_SET, 40, 20) == 0);
    CHECK(in_child(child_after_split, NULL) == 0);

    /* SEEK_CUR and SEEK_END, negative lengths. */
    CHECK(lk(fd, F_SETLK, F_UNLCK, SEEK_SET, 0, 0) == 0);
    CHECK(lseek(fd, 5, SEEK_SET) == 5);
    CHECK(lk(fd, F_SETLK, F_WRLCK, SEEK_CUR, 5, -5) == 0); /* bytes 5..9 */
    off_t b = 4;
    CHECK(in_child(child_wants_byte, &b) == 0);
    b = 5;
    CHECK(in_child(child_wants_byte, &b) == 1);
    b = 9;
    CHECK(in_child(child_wants_byte, &b) == 1);
    b = 10;
    CHECK(in_child(child_wants_byte, &b) == 0);
    CHECK(lk(fd, F_SETLK, F_WRLCK, SEEK_END, -1, 1) == 0); /* byte 19 */
    b = 19;
    CHECK(in_child(child_wants_byte, &b) == 1);

    /* Errors. */
    CHECK(lk(fd, F_SETLK, 7, SEEK_SET, 0, 1) == -1 && errno == EINVAL);
    CHECK(lk(fd, F_SETLK, F_WRLCK, 9, 0, 1) == -1 && errno == EINVAL);
    CHECK(lk(fd, F_SETLK, F_WRLCK, SEEK_SET, -1, 1) == -1 && errno == EINVAL);
    CHECK(lk(fd, F_SETLK, F_WRLCK, SEEK_SET, 2, -5) == -1 && errno == EINVAL);
    CHECK(fcntl(fd, F_SETLK, BAD_PTR(16)) == -1 && errno == EFAULT);
    int ro = open(path, O_RDONLY), wo = open(path, O_WRONLY);
    CHECK(lk(ro, F_SETLK, F_WRLCK, SEEK_SET, 100, 1) == -1 && errno == EBADF);
    CHECK(lk(wo, F_SETLK, F_RDLCK, SEEK_SET, 100, 1) == -1 && errno == EBADF);
    CHECK(lk(ro, F_SETLK, F_RDLCK, SEEK_SET, 100, 1) == 0);

    /* Closing any descriptor of the file drops every lock the process has on it. */
    close(wo);
    CHECK(in_child(child_all_free, NULL) == 0);
    close(ro);
    close(fd);
}

static int child_waits_then_locks(void *arg)
{
    int *pfd = arg;
    int fd = open(path, O_RDWR);
    CHECK(write(pfd[1], "r", 1) == 1);
    /* Blocks until the parent unlocks. */
    CHECK(lk(fd, F_SETLKW, F_WRLCK, SEEK_SET, 0, 1) == 0);
    close(fd);
    return vktest_failed;
}

static int child_deadlock(void *arg)
{
    int *pfd = arg;
    int fd = open(path, O_RDWR);
    if (lk(fd, F_SETLK, F_WRLCK, SEEK_SET, 1, 1) != 0)
        return 10;
    if (write(pfd[1], "r", 1) != 1)
        return 11;
    int r = lk(fd, F_SETLKW, F_WRLCK, SEEK_SET, 0, 1);
    int e = errno;
    close(fd);
    if (r == 0)
        return 0;
    return e == EDEADLK ? 2 : 12;
}

static volatile sig_atomic_t alarmed;
static void on_alarm(int sig)
{
    (void)sig;
    alarmed = 1;
}

static int child_interrupted(void *arg)
{
    (void)arg;
    int fd = open(path, O_RDWR);
    struct sigaction sa = {.sa_handler = on_alarm};
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 0}, {0, 30000}};
    setitimer(ITIMER_REAL, &it, NULL);
    CHECK(lk(fd, F_SETLKW, F_WRLCK, SEEK_SET, 0, 1) == -1 && errno == EINTR && alarmed);
    alarmed = 0;
    setitimer(ITIMER_REAL, &it, NULL);
    CHECK(flock(fd, LOCK_EX) == -1 && errno == EINTR && alarmed);
    close(fd);
    return vktest_failed;
}

static void test_posix_wait(void)
{
    int fd = open(path, O_RDWR);
    int p[2];
    REQUIRE(pipe(p) == 0);
    CHECK(lk(fd, F_SETLK, F_WRLCK, SEEK_SET, 0, 1) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        vktest_failed = 0;
        _exit(child_waits_then_locks(p));
    }
    char c;
    CHECK(read(p[0], &c, 1) == 1);
    sleep_ms(50);
    CHECK(lk(fd, F_SETLK, F_UNLCK, SEEK_SET, 0, 1) == 0);
    int status;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);

    /* Two processes waiting for each other: one of them gets EDEADLK. */
    CHECK(lk(fd, F_SETLK, F_WRLCK, SEEK_SET, 0, 1) == 0);
    pid = fork();
    if (pid == 0)
        _exit(child_deadlock(p));
    CHECK(read(p[0], &c, 1) == 1);
    sleep_ms(50);
    int r = lk(fd, F_SETLKW, F_WRLCK, SEEK_SET, 1, 1);
    int e = errno;
    if (r == -1)
        lk(fd, F_SETLK, F_UNLCK, SEEK_SET, 0, 0); /* let the child have byte 0 */
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status));
    int child = WEXITSTATUS(status);
    CHECKF((r == -1 && e == EDEADLK && child == 0) || (r == 0 && child == 2), "parent %d errno %d child %d", r, e, child);
    CHECK(lk(fd, F_SETLK, F_UNLCK, SEEK_SET, 0, 0) == 0);

    /* Locks are not inherited; a waiter a signal interrupts gets EINTR. */
    CHECK(lk(fd, F_SETLK, F_WRLCK, SEEK_SET, 0, 1) == 0);
    CHECK(flock(fd, LOCK_EX) == 0);
    CHECK(in_child(child_interrupted, NULL) == 0);
    CHECK(flock(fd, LOCK_UN) == 0);
    close(p[0]);
    close(p[1]);
    close(fd);
}

static int child_ofd(void *arg)
{
    int fd = *(int *)arg;
    /* The inherited description holds the OFD lock: this process may too. */
    CHECK(lk(fd, F_OFD_SETLK, F_WRLCK, SEEK_SET, 0, 1) == 0);
    int other = open(path, O_RDWR);
    CHECK(lk(other, F_OFD_SETLK, F_WRLCK, SEEK_SET, 0, 1) == -1 && errno == EAGAIN);
    close(other);
    return vktest_failed;
}

static void test_ofd(void)
{
    int a = open(path, O_RDWR), b = open(path, O_RDWR);
    REQUIRE(a >= 0 && b >= 0);
    CHECK(lk(a, F_OFD_SETLK, F_WRLCK, SEEK_SET, 0, 10) == 0);
    /* Another description of the same process conflicts. */
    CHECK(lk(b, F_OFD_SETLK, F_WRLCK, SEEK_SET, 5, 1) == -1 && errno == EAGAIN);
    CHECK(lk(b, F_OFD_SETLK, F_RDLCK, SEEK_SET, 10, 1) == 0);
    struct flock fl;
    CHECK(getlk(b, F_OFD_GETLK, 0, 0, &fl) == 0 && fl.l_type == F_WRLCK && fl.l_pid == -1 && fl.l_start == 0 &&
          fl.l_len == 10);
    /* POSIX locks of this process meet them too. */
    CHECK(lk(b, F_SETLK, F_WRLCK, SEEK_SET, 0, 1) == -1 && errno == EAGAIN);
    CHECK(getlk(b, F_GETLK, 0, 1, &fl) == 0 && fl.l_type == F_WRLCK && fl.l_pid == -1);
    /* l_pid must be 0. */
    struct flock bad = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 50, .l_len = 1, .l_pid = 1};
    CHECK(fcntl(a, F_OFD_SETLK, &bad) == -1 && errno == EINVAL);
    CHECK(in_child(child_ofd, &a) == 0);
    /* A duplicate's close leaves the lock; the description's last close takes it. */
    int d = dup(a);
    close(a);
    CHECK(lk(b, F_OFD_SETLK, F_WRLCK, SEEK_SET, 0, 1) == -1 && errno == EAGAIN);
    close(d);
    CHECK(lk(b, F_OFD_SETLK, F_WRLCK, SEEK_SET, 0, 1) == 0);
    close(b);
}

static int child_flock_blocks(void *arg)
{
    int *p = arg;
    int fd = open(path, O_RDONLY);
    CHECK(flock(fd, LOCK_EX | LOCK_NB) == -1 && errno == EWOULDBLOCK);
    CHECK(write(p[1], "r", 1) == 1);
    CHECK(flock(fd, LOCK_EX) == 0);
    close(fd);
    return vktest_failed;
}

static void test_flock(void)
{
    int a = open(path, O_RDONLY), b = open(path, O_RDONLY);
    REQUIRE(a >= 0 && b >= 0);
    CHECK(flock(a, LOCK_EX) == 0);
    CHECK(flock(b, LOCK_EX | LOCK_NB) == -1 && errno == EWOULDBLOCK);
    CHECK(flock(b, LOCK_SH | LOCK_NB) == -1 && errno == EWOULDBLOCK);
    /* The same description again: fine (and a duplicate is the same description). */
    CHECK(flock(a, LOCK_EX | LOCK_NB) == 0);
    int d = dup(a);
    CHECK(flock(d, LOCK_EX | LOCK_NB) == 0);
    /* fcntl locks are another world. */
    int w = open(path, O_RDWR);
    CHECK(lk(w, F_SETLK, F_WRLCK, SEEK_SET, 0, 0) == 0);
    close(w);
    /* Converting to shared lets another shared lock in. */
    CHECK(flock(a, LOCK_SH) == 0);
    CHECK(flock(b, LOCK_SH | LOCK_NB) == 0);
    CHECK(flock(a, LOCK_EX | LOCK_NB) == -1 && errno == EWOULDBLOCK);
    CHECK(flock(b, LOCK_UN) == 0);
    CHECK(flock(a, LOCK_EX | LOCK_NB) == 0);
    CHECK(flock(a, 0) == -1 && errno == EINVAL);
    CHECK(flock(a, LOCK_SH | LOCK_EX) == -1 && errno == EINVAL);
    CHECK(flock(99, LOCK_SH) == -1 && errno == EBADF);
    /* Released at the last close of the description. */
    close(a);
    CHECK(flock(b, LOCK_EX | LOCK_NB) == -1 && errno == EWOULDBLOCK);
    close(d);
    CHECK(flock(b, LOCK_EX | LOCK_NB) == 0);
    /* Another process waits for it. */
    int p[2];
    REQUIRE(pipe(p) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        vktest_failed = 0;
        _exit(child_flock_blocks(p));
    }
    char c;
    CHECK(read(p[0], &c, 1) == 1);
    sleep_ms(50);
    CHECK(flock(b, LOCK_UN) == 0);
    int status;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(p[0]);
    close(p[1]);
    close(b);
}

int main(int argc, char **argv)
{
    vktest_reset_signals();
    snprintf(path, sizeof path, "%s/vklock.%d", argc > 1 ? argv[1] : "/tmp", (int)getpid());
    test_posix();
    test_posix_wait();
    test_ofd();
    test_flock();
    CHECK(unlink(path) == 0);
    vktest_done();
}
