/*
 * t_fifo — pipe sizes, mknod and named pipes.
 *
 * Covers: F_GETPIPE_SZ/F_SETPIPE_SZ (the 64 KiB default, rounding to a power-of-two number of
 * pages, the capacity a non-blocking writer fills, EBUSY below the data held, EBADF on other
 * files, EPERM past /proc/sys/fs/pipe-max-size for an unprivileged caller);
 * /proc/sys/fs/pipe-max-size, file-max and nr_open; mknod/mknodat of FIFOs, sockets and regular
 * files (the umask, EEXIST, EPERM for a directory, EINVAL for an unknown type, EPERM for a device
 * node without CAP_MKNOD); named pipes across processes: fifo(7)'s open rules (a reader waits for
 * a writer and a writer for a reader, O_NONBLOCK reader at once, O_NONBLOCK writer ENXIO without a
 * reader, O_RDWR at once, an open interrupted by a signal is EINTR), data through the FIFO, EOF
 * when the writer goes, the data gone once every end closed, fstat of an open FIFO, its
 * /proc/self/fd link, poll, F_GETPIPE_SZ on a FIFO, a FIFO still working after unlink.
 *
 * Usage: t_fifo [DIR] — the FIFOs are made in a fresh directory under DIR (default /tmp), so the
 * same program checks tmpfs and ext2.
 */
#include "vktest.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>

#ifndef F_SETPIPE_SZ
#define F_SETPIPE_SZ 1031
#define F_GETPIPE_SZ 1032
#endif

static char dir[256];

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static long read_long(const char *path)
{
    char buf[64] = {0};
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    return n > 0 ? strtol(buf, NULL, 10) : -1;
}

static void test_pipe_size(void)
{
    int p[2];
    REQUIRE(pipe(p) == 0);
    CHECK(fcntl(p[0], F_GETPIPE_SZ) == 65536);
    CHECK(fcntl(p[1], F_GETPIPE_SZ) == 65536);
    CHECK(fcntl(p[1], F_SETPIPE_SZ, 4096) == 4096);
    CHECK(fcntl(p[0], F_GETPIPE_SZ) == 4096);
    CHECK(fcntl(p[1], F_SETPIPE_SZ, 5000) == 8192);
    CHECK(fcntl(p[1], F_SETPIPE_SZ, 0) == 4096);
    CHECK(fcntl(p[1], F_SETPIPE_SZ, 3 * 4096) == 4 * 4096);
    /* A non-blocking writer fills exactly the capacity. */
    fcntl(p[1], F_SETFL, O_NONBLOCK);
    static char big[100000];
    ssize_t total = 0, n;
    while ((n = write(p[1], big, sizeof big)) > 0)
        total += n;
    CHECK(n == -1 && errno == EAGAIN && total == 4 * 4096);
    /* Smaller than what it holds: EBUSY. */
    CHECK(fcntl(p[1], F_SETPIPE_SZ, 4096) == -1 && errno == EBUSY);
    CHECK(fcntl(p[1], F_SETPIPE_SZ, 65536) == 65536);
    CHECK(write(p[1], big, 4096) == 4096);
    close(p[0]);
    close(p[1]);
    int fd = open("/proc/self/exe", O_RDONLY);
    if (fd < 0)
        fd = open("/bin/sh", O_RDONLY);
    CHECK(fcntl(fd, F_GETPIPE_SZ) == -1 && errno == EBADF);
    close(fd);

    long max = read_long("/proc/sys/fs/pipe-max-size");
    CHECK(max >= 4096 && (max & (max - 1)) == 0);
    CHECK(read_long("/proc/sys/fs/nr_open") >= 1024);
    CHECK(read_long("/proc/sys/fs/file-max") > 0);
    /* Past the maximum: not without CAP_SYS_RESOURCE (but up to it). */
    REQUIRE(pipe(p) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        vktest_failed = 0;
        if (setuid(65534) != 0)
            _exit(10);
        CHECK(fcntl(p[0], F_SETPIPE_SZ, max * 2) == -1 && errno == EPERM);
        CHECK(fcntl(p[0], F_SETPIPE_SZ, max) == max);
        CHECK(fcntl(p[0], F_SETPIPE_SZ, (long)INT_MAX) == -1);
        vktest_child_done();
    }
    int status;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(p[0]);
    close(p[1]);
}

static void path_of(char *out, const char *name)
{
    snprintf(out, PATH_MAX, "%s/%s", dir, name);
}

static void test_mknod(void)
{
    char path[PATH_MAX];
    struct stat st;
    umask(022);
    path_of(path, "fifo");
    CHECK(mknod(path, S_IFIFO | 0666, 0) == 0);
    CHECK(stat(path, &st) == 0 && S_ISFIFO(st.st_mode) && (st.st_mode & 07777) == 0644 && st.st_size == 0);
    CHECK(mknod(path, S_IFIFO | 0666, 0) == -1 && errno == EEXIST);
    CHECK(mkfifo(path, 0600) == -1 && errno == EEXIST);
    CHECK(unlink(path) == 0);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    CHECK(mknodat(dfd, "fifo2", S_IFIFO | 0600, 0) == 0);
    CHECK(fstatat(dfd, "fifo2", &st, 0) == 0 && S_ISFIFO(st.st_mode) && (st.st_mode & 0777) == 0600);
    CHECK(unlinkat(dfd, "fifo2", 0) == 0);
    /* A regular file, with or without S_IFREG. */
    CHECK(mknodat(dfd, "reg", 0640, 0) == 0);
    CHECK(fstatat(dfd, "reg", &st, 0) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0640 && st.st_size == 0);
    CHECK(mknodat(dfd, "reg", S_IFREG | 0640, 0) == -1 && errno == EEXIST);
    CHECK(unlinkat(dfd, "reg", 0) == 0);
    CHECK(mknodat(dfd, "reg2", S_IFREG | 0600, 0) == 0);
    CHECK(unlinkat(dfd, "reg2", 0) == 0);
    /* A socket inode. */
    CHECK(mknodat(dfd, "sock", S_IFSOCK | 0600, 0) == 0);
    CHECK(fstatat(dfd, "sock", &st, 0) == 0 && S_ISSOCK(st.st_mode));
    CHECK(unlinkat(dfd, "sock", 0) == 0);
    /* A directory type: EPERM; no type Linux knows: EINVAL. */
    CHECK(mknodat(dfd, "d", S_IFDIR | 0755, 0) == -1 && errno == EPERM);
    CHECK(mknodat(dfd, "x", 0110000 | 0644, 0) == -1 && errno == EINVAL);
    CHECK(mknodat(dfd, "nodir/x", S_IFIFO | 0644, 0) == -1 && errno == ENOENT);
    /* Device nodes need CAP_MKNOD (checked after write permission on the directory). */
    CHECK(mkdirat(dfd, "open", 0777) == 0 && fchmodat(dfd, "open", 0777, 0) == 0);
    int odfd = openat(dfd, "open", O_RDONLY | O_DIRECTORY);
    pid_t pid = fork();
    if (pid == 0) {
        vktest_failed = 0;
        if (setuid(65534) != 0)
            _exit(10);
        CHECK(mknodat(odfd, "null", S_IFCHR | 0666, makedev(1, 3)) == -1 && errno == EPERM);
        CHECK(mknodat(odfd, "blk", S_IFBLK | 0666, makedev(7, 0)) == -1 && errno == EPERM);
        CHECK(mknodat(dfd, "null", S_IFCHR | 0666, makedev(1, 3)) == -1 && errno == EACCES);
        /* A FIFO in a directory it cannot write: EACCES; in one it can: its own. */
        CHECK(mknodat(dfd, "f", S_IFIFO | 0666, 0) == -1 && errno == EACCES);
        struct stat s;
        CHECK(mknodat(odfd, "f", S_IFIFO | 0666, 0) == 0 && fstatat(odfd, "f", &s, 0) == 0 && s.st_uid == 65534);
        CHECK(unlinkat(odfd, "f", 0) == 0);
        vktest_child_done();
    }
    int status;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(odfd);
    CHECK(unlinkat(dfd, "open", AT_REMOVEDIR) == 0);
    close(dfd);
}

static volatile sig_atomic_t alarmed;
static void on_alarm(int sig)
{
    (void)sig;
    alarmed = 1;
}

static void test_fifo_open(void)
{
    char path[PATH_MAX];
    path_of(path, "f");
    REQUIRE(mkfifo(path, 0600) == 0);
    /* A non-blocking writer with no reader: ENXIO. */
    CHECK(open(path, O_WRONLY | O_NONBLOCK) == -1 && errno == ENXIO);
    /* A non-blocking reader opens at once and reads EOF (no writer). */
    int r = open(path, O_RDONLY | O_NONBLOCK);
    REQUIRE(r >= 0);
    char buf[64];
    CHECK(read(r, buf, sizeof buf) == 0);
    /* Now a non-blocking writer finds it. */
    int w = open(path, O_WRONLY | O_NONBLOCK);
    CHECK(w >= 0);
    CHECK(read(r, buf, sizeof buf) == -1 && errno == EAGAIN);
    CHECK(write(w, "abc", 3) == 3);
    struct pollfd pfd = {.fd = r, .events = POLLIN};
    CHECK(poll(&pfd, 1, 0) == 1 && pfd.revents == POLLIN);
    CHECK(read(r, buf, sizeof buf) == 3 && memcmp(buf, "abc", 3) == 0);
    CHECK(fcntl(r, F_GETPIPE_SZ) == 65536);
    struct stat st, st2;
    CHECK(fstat(r, &st) == 0 && S_ISFIFO(st.st_mode) && stat(path, &st2) == 0 && st.st_ino == st2.st_ino &&
          st.st_dev == st2.st_dev);
    char link[PATH_MAX + 1], fdpath[64];
    snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", r);
    ssize_t n = readlink(fdpath, link, PATH_MAX);
    CHECK(n > 0 && (link[n] = 0, strcmp(link, path) == 0));
    close(w);
    /* The writer gone: EOF and POLLHUP. */
    CHECK(poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLHUP));
    CHECK(read(r, buf, sizeof buf) == 0);
    close(r);

    /* O_RDWR opens at once; what it wrote goes when every end is closed. */
    int rw = open(path, O_RDWR | O_NONBLOCK);
    REQUIRE(rw >= 0);
    CHECK(write(rw, "x", 1) == 1);
    close(rw);
    rw = open(path, O_RDWR | O_NONBLOCK);
    CHECK(read(rw, buf, sizeof buf) == -1 && errno == EAGAIN);
    close(rw);

    /* A blocking reader in a child waits for this process's writer. */
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(path, O_RDONLY);
        char b[64];
        ssize_t got = 0, k;
        while ((k = read(fd, b + got, sizeof b - 1 - got)) > 0)
            got += k;
        _exit(got == 5 && memcmp(b, "hello", 5) == 0 ? 0 : 1);
    }
    sleep_ms(30);
    w = open(path, O_WRONLY);
    CHECK(w >= 0 && write(w, "hello", 5) == 5);
    close(w);
    int status;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);

    /* A blocking writer in a child waits for this process's reader. */
    pid = fork();
    if (pid == 0) {
        int fd = open(path, O_WRONLY);
        _exit(fd >= 0 && write(fd, "world", 5) == 5 ? 0 : 1);
    }
    sleep_ms(30);
    r = open(path, O_RDONLY);
    REQUIRE(r >= 0);
    ssize_t got = 0, k;
    while ((k = read(r, buf + got, sizeof buf - got)) > 0)
        got += k;
    CHECK(got == 5 && memcmp(buf, "world", 5) == 0);
    close(r);
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);

    /* A blocking open a signal interrupts (no SA_RESTART): EINTR. */
    struct sigaction sa = {.sa_handler = on_alarm};
    sigaction(SIGALRM, &sa, NULL);
    /* The timer repeats: a signal that comes before open blocks (a busy host) does not
     * leave it blocked for ever; the next one interrupts it. */
    struct itimerval it = {{0, 30000}, {0, 30000}}, off = {{0, 0}, {0, 0}};
    alarmed = 0;
    setitimer(ITIMER_REAL, &it, NULL);
    CHECK(open(path, O_RDONLY) == -1 && errno == EINTR && alarmed);
    setitimer(ITIMER_REAL, &off, NULL);
    alarmed = 0;
    setitimer(ITIMER_REAL, &it, NULL);
    CHECK(open(path, O_WRONLY) == -1 && errno == EINTR && alarmed);
    setitimer(ITIMER_REAL, &off, NULL);
    signal(SIGALRM, SIG_DFL);
    /* The interrupted opens left no end behind: a non-blocking writer finds no reader. */
    CHECK(open(path, O_WRONLY | O_NONBLOCK) == -1 && errno == ENXIO);

    /* Unlinked while open, it still carries data. */
    rw = open(path, O_RDWR);
    REQUIRE(rw >= 0);
    CHECK(unlink(path) == 0);
    CHECK(write(rw, "zz", 2) == 2 && read(rw, buf, sizeof buf) == 2);
    close(rw);
}

int main(int argc, char **argv)
{
    vktest_reset_signals();
    const char *base = argc > 1 ? argv[1] : "/tmp";
    snprintf(dir, sizeof dir, "%s/vkfifo.XXXXXX", base);
    if (!mkdtemp(dir)) {
        CHECK(!"mkdtemp");
        vktest_done();
    }
    chmod(dir, 0755);
    test_pipe_size();
    test_mknod();
    test_fifo_open();
    CHECK(rmdir(dir) == 0);
    vktest_done();
}
