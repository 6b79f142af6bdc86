/*
 * t_execveat — execveat(2): a program by a path relative to a directory descriptor, by an
 * absolute path (the descriptor ignored), by its own descriptor with AT_EMPTY_PATH (fexecve;
 * the child prints its command name: the descriptor's number before Linux 6.14, the file's
 * name since); AT_SYMLINK_NOFOLLOW refuses
 * a symbolic link (ELOOP); EBADF for a bad descriptor with a relative path, ENOTDIR for a
 * file's, ENOENT for an empty path without AT_EMPTY_PATH, EINVAL for unknown flags.
 * The program runs itself with the argument "child", which exits 42 (and says its name).
 */
#include "vktest.h"

#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define AT_EMPTY_PATH_ 0x1000
#define AT_SYMLINK_NOFOLLOW_ 0x100

static long execveat(int dirfd, const char *path, char *const argv[], int flags)
{
    extern char **environ;
    return syscall(SYS_execveat, dirfd, path, argv, environ, flags);
}

/* Run execveat in a child: its exit status (42: the program ran), or 100 + errno. */
static int run(int dirfd, const char *path, int flags)
{
    pid_t c = fork();
    if (c == 0) {
        char *argv[] = { "t_execveat", "child", NULL };
        execveat(dirfd, path, argv, flags);
        _exit(100 + errno);
    }
    int st;
    if (waitpid(c, &st, 0) != c || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "child") == 0) {
        char comm[32] = "";
        int fd = open("/proc/self/comm", O_RDONLY);
        if (fd >= 0 && read(fd, comm, sizeof comm - 1) > 0)
            vktest_print("child comm %s", comm);
        return 42;
    }
    char exe[PATH_MAX], dir[PATH_MAX], base[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    REQUIRE(n > 0);
    exe[n] = '\0';
    strcpy(dir, exe);
    strcpy(base, exe);
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY);
    int efd = open(exe, O_RDONLY);
    REQUIRE(dfd >= 0 && efd >= 0);
    CHECK(run(dfd, basename(base), 0) == 42);
    CHECK(run(-1, exe, 0) == 42);
    CHECK(run(AT_FDCWD, exe, 0) == 42);
    CHECK(run(efd, "", AT_EMPTY_PATH_) == 42);

    char link[] = "/tmp/t_execveat.link";
    unlink(link);
    REQUIRE(symlink(exe, link) == 0);
    CHECK(run(AT_FDCWD, link, 0) == 42);
    CHECK(run(AT_FDCWD, link, AT_SYMLINK_NOFOLLOW_) == 100 + ELOOP);
    unlink(link);
    CHECK(run(-1, "t_execveat", 0) == 100 + EBADF);
    CHECK(run(efd, "t_execveat", 0) == 100 + ENOTDIR);
    CHECK(run(efd, "", 0) == 100 + ENOENT);
    CHECK(run(dfd, basename(base), 0x4) == 100 + EINVAL);
    return vktest_done();
}
