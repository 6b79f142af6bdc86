/*
 * t_txtbsy — ETXTBSY ("Text file busy"): a program that a process runs cannot be opened for
 * writing (O_WRONLY, O_RDWR) or truncated while it runs, though it can be read; a file open
 * for writing cannot be run (execve fails with ETXTBSY) until that descriptor is closed; a
 * forked copy of a running process keeps the program busy after the process that ran it
 * exits; when the last runner exits the file can be written again.
 *
 * The program is a copy of this test (from /proc/self/exe) in /tmp, run with "child FD" to
 * write one byte on FD and wait for its standard input to reach end of file ("fork" first
 * forks a copy of itself that waits, and exits).
 */
#include "vktest.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>

static char bin[] = "/tmp/t_txtbsy.XXXXXX";

static void wait_stdin(void)
{
    char c;
    while (read(0, &c, 1) > 0)
        ;
}

/* Run the copy as "MODE"; its stdin is the read end of `in`; it writes a byte on `ready`. */
static pid_t spawn(const char *mode, int in[2], int ready[2])
{
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in[0], 0);
        close(in[1]);
        close(ready[0]);
        char fd[16];
        snprintf(fd, sizeof fd, "%d", ready[1]);
        execl(bin, bin, mode, fd, (char *)NULL);
        _exit(errno == ETXTBSY ? 42 : 43);
    }
    return pid;
}

int main(int argc, char **argv)
{
    if (argc == 3) {
        int fd = atoi(argv[2]);
        if (strcmp(argv[1], "fork") == 0 && fork() > 0)
            _exit(0); /* the child goes on running the program */
        if (write(fd, "r", 1) != 1)
            _exit(1);
        close(fd);
        wait_stdin();
        _exit(0);
    }
    vktest_reset_signals();

    /* A copy of this program, executable. */
    int out = mkstemp(bin);
    int self = open("/proc/self/exe", O_RDONLY);
    REQUIRE(out >= 0 && self >= 0);
    char buf[65536];
    ssize_t n;
    while ((n = read(self, buf, sizeof buf)) > 0)
        REQUIRE(write(out, buf, (size_t)n) == n);
    close(self);
    CHECK(fchmod(out, 0755) == 0);

    /* Open for writing: it cannot be run. */
    int in[2], ready[2];
    REQUIRE(pipe(in) == 0 && pipe(ready) == 0);
    pid_t pid = spawn("child", in, ready);
    int status;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 42);
    CHECK(close(out) == 0);

    /* Running: not written, not truncated; read and stat are fine. */
    pid = spawn("child", in, ready);
    char c;
    CHECK(read(ready[0], &c, 1) == 1 && c == 'r');
    errno = 0;
    CHECK(open(bin, O_WRONLY) == -1 && errno == ETXTBSY);
    errno = 0;
    CHECK(open(bin, O_RDWR) == -1 && errno == ETXTBSY);
    errno = 0;
    CHECK(truncate(bin, 0) == -1 && errno == ETXTBSY);
    int ro = open(bin, O_RDONLY);
    CHECK(ro >= 0 && read(ro, buf, 4) == 4 && memcmp(buf, "\177ELF", 4) == 0);
    close(ro);
    close(in[1]);
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(in[0]);

    /* Nobody runs it now: it can be written. */
    int w = open(bin, O_WRONLY);
    CHECK(w >= 0);
    close(w);

    /* A forked copy keeps it busy after the process that ran it exits. */
    REQUIRE(pipe(in) == 0);
    pid = spawn("fork", in, ready);
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(read(ready[0], &c, 1) == 1 && c == 'r');
    errno = 0;
    CHECK(open(bin, O_WRONLY) == -1 && errno == ETXTBSY);
    close(in[0]);
    close(in[1]); /* the grandchild sees end of file and exits */
    w = -1;
    for (int i = 0; i < 5000 && w < 0; i++) {
        w = open(bin, O_WRONLY);
        if (w < 0)
            usleep(1000);
    }
    CHECK(w >= 0);
    close(w);
    unlink(bin);
    return vktest_done();
}
