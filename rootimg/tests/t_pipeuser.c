/*
 * t_pipeuser — the per-user limit on pipe buffers (/proc/sys/fs/pipe-user-pages-soft): an
 * unprivileged user's pipes get 16 pages each until the user's pipes hold more pages than
 * the soft limit; the next pipe gets 2 pages (8 KiB), and F_SETPIPE_SZ may not grow it
 * (EPERM); once pipes are closed, new pipes get 16 pages again. A user of its own (a child
 * that raised RLIMIT_NOFILE and left root) so that nothing else counts.
 */
#include "vktest.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>

static long read_long(const char *path)
{
    char buf[64] = "";
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    return n > 0 ? atol(buf) : -1;
}

int main(void)
{
    vktest_reset_signals();
    long soft = read_long("/proc/sys/fs/pipe-user-pages-soft");
    long hard = read_long("/proc/sys/fs/pipe-user-pages-hard");
    CHECK(soft == 16384);
    CHECK(hard == 0);
    if (soft != 16384)
        return vktest_done();
    int full = (int)(soft / 16); /* pipes of 16 pages that reach the limit exactly */
    pid_t c = fork();
    if (c == 0) {
        struct rlimit nofile = {4096, 4096};
        CHECK(setrlimit(RLIMIT_NOFILE, &nofile) == 0);
        CHECK(setuid(54323) == 0);
        static int fds[1100][2];
        int made = 0;
        for (; made < full; made++)
            if (pipe(fds[made]) != 0)
                break;
        REQUIRE(made == full);
        if (made != full)
            vktest_child_done();
        CHECK(fcntl(fds[0][0], F_GETPIPE_SZ) == 65536);
        CHECK(fcntl(fds[full - 1][1], F_GETPIPE_SZ) == 65536);
        /* Past the soft limit: two pages, and no growing. */
        int p[2] = {-1, -1};
        REQUIRE(pipe(p) == 0);
        if (p[0] < 3)
            vktest_child_done();
        CHECK(fcntl(p[0], F_GETPIPE_SZ) == 8192);
        errno = 0;
        CHECK(fcntl(p[1], F_SETPIPE_SZ, 65536) == -1 && errno == EPERM);
        /* A small pipe still works as a pipe. */
        char buf[8192];
        memset(buf, 'x', sizeof buf);
        CHECK(write(p[1], buf, sizeof buf) == (ssize_t)sizeof buf);
        CHECK(read(p[0], buf, sizeof buf) == (ssize_t)sizeof buf);
        /* Shrinking is fine. */
        CHECK(fcntl(fds[0][1], F_SETPIPE_SZ, 4096) == 4096);
        /* Room again once pipes are gone. */
        for (int i = 1; i < 11; i++) {
            close(fds[i][0]);
            close(fds[i][1]);
        }
        int q[2];
        CHECK(pipe(q) == 0);
        CHECK(fcntl(q[0], F_GETPIPE_SZ) == 65536);
        vktest_child_done();
    }
    int st;
    CHECK(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* Root is not held to it. */
    int r[2];
    CHECK(pipe(r) == 0 && fcntl(r[0], F_GETPIPE_SZ) == 65536);
    return vktest_done();
}
