/*
 * t_linktmp — linkat(2) of O_TMPFILE files: giving an unnamed file a name.
 *
 * With AT_EMPTY_PATH (by whoever opened it with the same credentials, or with
 * CAP_DAC_READ_SEARCH; ENOENT for others) and through
 * /proc/self/fd/N with AT_SYMLINK_FOLLOW (anyone); an O_TMPFILE | O_EXCL file, an unlinked
 * ordinary file and a once-linked-then-unlinked tmpfile refuse (ENOENT); the magic link
 * itself, not followed, is on another file system (EXDEV). Runs in argv[1] (default /tmp).
 */
#define _GNU_SOURCE
#include "vktest.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>

static char dir[256];

static char *at(const char *name)
{
    static char buf[2][512];
    static int i;
    i ^= 1;
    snprintf(buf[i], sizeof buf[i], "%s/%s", dir, name);
    return buf[i];
}

static int content_is(const char *path, const char *want)
{
    char b[64] = {0};
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, b, sizeof b - 1);
    close(fd);
    return n == (ssize_t)strlen(want) && memcmp(b, want, (size_t)n) == 0;
}

static void fdpath(int fd, char *buf, size_t size)
{
    snprintf(buf, size, "/proc/self/fd/%d", fd);
}

int main(int argc, char **argv)
{
    vktest_reset_signals();
    snprintf(dir, sizeof dir, "%s/t_linktmp.%d", argc > 1 ? argv[1] : "/tmp", (int)getpid());
    REQUIRE(mkdir(dir, 0755) == 0);

    /* AT_EMPTY_PATH, as root. */
    int fd = open(dir, O_TMPFILE | O_RDWR, 0600);
    REQUIRE(fd >= 0);
    CHECK(write(fd, "hello", 5) == 5);
    struct stat st;
    CHECK(fstat(fd, &st) == 0 && st.st_nlink == 0);
    CHECK(linkat(fd, "", AT_FDCWD, at("a"), AT_EMPTY_PATH) == 0);
    CHECK(stat(at("a"), &st) == 0 && st.st_nlink == 1 && st.st_size == 5 && (st.st_mode & 0777) == 0600);
    CHECK(content_is(at("a"), "hello"));
    /* Now it has a name, it links like any file. */
    CHECK(linkat(fd, "", AT_FDCWD, at("b"), AT_EMPTY_PATH) == 0);
    CHECK(fstat(fd, &st) == 0 && st.st_nlink == 2);
    errno = 0;
    CHECK(linkat(fd, "", AT_FDCWD, at("b"), AT_EMPTY_PATH) == -1 && errno == EEXIST);
    /* An empty name without AT_EMPTY_PATH is ENOENT. */
    CHECK(linkat(fd, "", AT_FDCWD, at("x"), 0) == -1 && errno == ENOENT);
    close(fd);

    /* Through /proc/self/fd/N, following the link. */
    char p[64];
    fd = open(dir, O_TMPFILE | O_WRONLY, 0640);
    REQUIRE(fd >= 0);
    CHECK(write(fd, "proc", 4) == 4);
    fdpath(fd, p, sizeof p);
    /* Not followed: the link itself, on procfs. */
    CHECK(linkat(AT_FDCWD, p, AT_FDCWD, at("c"), 0) == -1 && errno == EXDEV);
    CHECK(linkat(AT_FDCWD, p, AT_FDCWD, at("c"), AT_SYMLINK_FOLLOW) == 0);
    CHECK(content_is(at("c"), "proc"));
    /* Linked once, unlinked again: no more. */
    CHECK(unlink(at("c")) == 0);
    errno = 0;
    CHECK(linkat(fd, "", AT_FDCWD, at("c2"), AT_EMPTY_PATH) == -1 && errno == ENOENT);
    CHECK(linkat(AT_FDCWD, p, AT_FDCWD, at("c2"), AT_SYMLINK_FOLLOW) == -1 && errno == ENOENT);
    close(fd);

    /* O_EXCL: never to be linked. */
    fd = open(dir, O_TMPFILE | O_RDWR | O_EXCL, 0600);
    REQUIRE(fd >= 0);
    fdpath(fd, p, sizeof p);
    errno = 0;
    CHECK(linkat(fd, "", AT_FDCWD, at("d"), AT_EMPTY_PATH) == -1 && errno == ENOENT);
    CHECK(linkat(AT_FDCWD, p, AT_FDCWD, at("d"), AT_SYMLINK_FOLLOW) == -1 && errno == ENOENT);
    CHECK(access(at("d"), F_OK) == -1 && errno == ENOENT);
    close(fd);

    /* An ordinary file, unlinked while open: ENOENT too. */
    fd = open(at("e"), O_CREAT | O_RDWR, 0600);
    REQUIRE(fd >= 0);
    CHECK(unlink(at("e")) == 0);
    errno = 0;
    CHECK(linkat(fd, "", AT_FDCWD, at("e2"), AT_EMPTY_PATH) == -1 && errno == ENOENT);
    close(fd);

    /* AT_EMPTY_PATH with a name is an ordinary linkat relative to the descriptor. */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    REQUIRE(dfd >= 0);
    CHECK(linkat(dfd, "a", dfd, "f", AT_EMPTY_PATH) == 0);
    CHECK(content_is(at("f"), "hello"));

    /* Without CAP_DAC_READ_SEARCH: AT_EMPTY_PATH only for a file opened with the caller's
     * own credentials (ENOENT for one its root parent opened); /proc/self/fd works. */
    CHECK(chmod(dir, 0777) == 0);
    int parents = open(dir, O_TMPFILE | O_RDWR, 0666);
    REQUIRE(parents >= 0);
    pid_t pid = fork();
    if (pid == 0) {
        if (setgid(65534) != 0 || setuid(65534) != 0)
            _exit(100);
        errno = 0;
        CHECK(linkat(parents, "", AT_FDCWD, at("h"), AT_EMPTY_PATH) == -1 && errno == ENOENT);
        int t = open(dir, O_TMPFILE | O_RDWR, 0600);
        if (t < 0)
            _exit(101);
        CHECK(linkat(t, "", AT_FDCWD, at("g"), AT_EMPTY_PATH) == 0);
        int t2 = open(dir, O_TMPFILE | O_RDWR, 0600);
        char q[64];
        fdpath(t2, q, sizeof q);
        CHECK(linkat(AT_FDCWD, q, AT_FDCWD, at("g2"), AT_SYMLINK_FOLLOW) == 0);
        struct stat s;
        CHECK(stat(at("g"), &s) == 0 && s.st_uid == 65534 && stat(at("g2"), &s) == 0 && s.st_uid == 65534);
        vktest_child_done();
    }
    int status;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);

    close(parents);
    const char *names[] = {"a", "b", "f", "g", "g2"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        CHECK(unlink(at(names[i])) == 0);
    close(dfd);
    CHECK(rmdir(dir) == 0);
    vktest_done();
}
