/*
 * t_kcmp — kcmp(2): one open file description through two descriptors (dup, or inherited by
 * fork) is the same (0), two opens of one file are not (1 or 2, in a consistent order); a
 * forked child has its own address space and descriptor table; EINVAL for an unknown type,
 * EBADF for a bad descriptor, ESRCH for no process, EPERM for another user's process.
 * CLONE_FS: a child made with it shares the working directory and umask (KCMP_FS 0, and a
 * chdir and umask of the child are the parent's); one made without it does not.
 */
#include "vktest.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define KCMP_FILE 0
#define KCMP_VM 1
#define KCMP_FILES 2
#define KCMP_FS 3

static long kcmp(pid_t a, pid_t b, int type, long x, long y) { return syscall(SYS_kcmp, a, b, type, x, y); }

static int fs_pipe[2], ready_pipe[2];

/* A CLONE_FS child: changes the shared directory and umask, says so, waits to be let go. */
static int fs_child(void *arg)
{
    (void)arg;
    char x;
    if (chdir("/tmp") != 0)
        return 1;
    umask(077);
    close(fs_pipe[1]);
    if (write(ready_pipe[1], "r", 1) != 1)
        return 3;
    return read(fs_pipe[0], &x, 1) < 0 ? 2 : 0;
}

static void test_clone_fs(void)
{
    static char stack[65536];
    REQUIRE(chdir("/") == 0);
    mode_t old = umask(022);
    REQUIRE(pipe(fs_pipe) == 0 && pipe(ready_pipe) == 0);
    pid_t c = clone(fs_child, stack + sizeof stack, CLONE_FS | SIGCHLD, NULL);
    REQUIRE(c > 0);
    char r = 0, cwd[256] = "";
    CHECK(read(ready_pipe[0], &r, 1) == 1 && r == 'r');
    CHECK(getcwd(cwd, sizeof cwd) && strcmp(cwd, "/tmp") == 0);
    mode_t now = umask(022);
    CHECK(now == 077);
    CHECK(kcmp(getpid(), c, KCMP_FS, 0, 0) == 0);
    close(fs_pipe[1]);
    int st;
    CHECK(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(fs_pipe[0]);
    close(ready_pipe[0]);
    close(ready_pipe[1]);

    /* Without CLONE_FS (fork): its own. */
    REQUIRE(chdir("/") == 0);
    c = fork();
    if (c == 0) {
        _exit(chdir("/tmp") == 0 ? 0 : 1);
    }
    CHECK(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(getcwd(cwd, sizeof cwd) && strcmp(cwd, "/") == 0);
    umask(old);
}

int main(void)
{
    pid_t me = getpid();
    int a = open("/proc/self/exe", O_RDONLY), b = open("/proc/self/exe", O_RDONLY);
    REQUIRE(a >= 0 && b >= 0);
    int d = dup(a);
    CHECK(kcmp(me, me, KCMP_FILE, a, a) == 0);
    CHECK(kcmp(me, me, KCMP_FILE, a, d) == 0);
    long ab = kcmp(me, me, KCMP_FILE, a, b), ba = kcmp(me, me, KCMP_FILE, b, a);
    CHECK((ab == 1 && ba == 2) || (ab == 2 && ba == 1));
    CHECK(kcmp(me, me, KCMP_VM, 0, 0) == 0 && kcmp(me, me, KCMP_FILES, 0, 0) == 0);

    int p[2];
    REQUIRE(pipe(p) == 0);
    pid_t c = fork();
    if (c == 0) {
        char x;
        close(p[1]);
        read(p[0], &x, 1);
        _exit(0);
    }
    close(p[0]);
    CHECK(kcmp(me, c, KCMP_FILE, a, a) == 0);
    CHECK(kcmp(me, c, KCMP_FILE, a, b) != 0);
    CHECK(kcmp(me, c, KCMP_VM, 0, 0) != 0);
    CHECK(kcmp(me, c, KCMP_FILES, 0, 0) != 0);
    errno = 0;
    CHECK(kcmp(me, c, 99, 0, 0) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(kcmp(me, c, KCMP_FILE, a, 999) == -1 && errno == EBADF);
    errno = 0;
    CHECK(kcmp(me, 999999, KCMP_VM, 0, 0) == -1 && errno == ESRCH);
    close(p[1]);
    int st;
    CHECK(waitpid(c, &st, 0) == c);

    pid_t other = fork();
    if (other == 0) {
        pause();
        _exit(0);
    }
    c = fork();
    if (c == 0) {
        if (setuid(65534) != 0)
            _exit(90);
        errno = 0;
        _exit(kcmp(getpid(), other, KCMP_VM, 0, 0) == -1 && errno == EPERM ? 0 : 1);
    }
    CHECK(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    kill(other, SIGKILL);
    waitpid(other, &st, 0);
    test_clone_fs();
    return vktest_done();
}
