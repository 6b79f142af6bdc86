/*
 * t_rename — the rules of rename(2)/renameat2(2) and of utimensat(2)'s arguments, which vk
 * checks once in the VFS for every file system.
 *
 * Covers, on a tmpfs (with a second tmpfs mounted inside it): renameat2 flags (unknown bits,
 * EXCHANGE with NOREPLACE or WHITEOUT: EINVAL), EXDEV across mounts, EBUSY for `.`/`..` and
 * for a mount point (EEXIST for a new name of `.` with NOREPLACE), ENOENT, NOREPLACE (EEXIST),
 * a directory moved under itself (EINVAL), a target above the source (ENOTEMPTY, even for a
 * file source), two names of one file (success, both stay), ENOTDIR/EISDIR for a directory
 * over a non-directory and the reverse, ENOTEMPTY over a directory with entries, over an empty
 * directory, trailing slashes (ENOTDIR for a file), RENAME_EXCHANGE of a file and a directory
 * across directories (contents and link counts), EXCHANGE with no target (ENOENT); then
 * utimensat: both UTIME_OMIT succeeds before the path is even looked at, UTIME_NOW, a time
 * given, UTIME_OMIT for one, EINVAL for bad nanoseconds and flags, a null path with a
 * descriptor (futimens) and with AT_FDCWD (EFAULT).
 *
 * Natively it works in a private mount namespace (unshare(CLONE_NEWNS)) so the tmpfs is the
 * same file system as under vk (where unshare is ENOSYS). It must run as root.
 */
#include "vktest.h"

#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE 1
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE 2
#endif
#ifndef RENAME_WHITEOUT
#define RENAME_WHITEOUT 4
#endif

static char dir[64];
static int dfd = -1;

#define P(name) vktest_path(dir, name)

static int put(const char *name, const char *text)
{
    int fd = openat(dfd, name, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

static int is(const char *name, const char *text)
{
    char buf[64] = {0};
    int fd = openat(dfd, name, O_RDONLY);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    return n == (ssize_t)strlen(text) && memcmp(buf, text, (size_t)n) == 0;
}

static long ren2(const char *a, const char *b, unsigned flags)
{
    return syscall(SYS_renameat2, dfd, a, dfd, b, flags);
}

static nlink_t links(const char *name)
{
    struct stat st;
    return fstatat(dfd, name, &st, 0) == 0 ? st.st_nlink : 0;
}

static void test_flags_and_mounts(void)
{
    CHECK(put("f", "f") == 0);
    CHECK(ren2("f", "g", 0x100) == -1 && errno == EINVAL);
    CHECK(ren2("f", "g", RENAME_EXCHANGE | RENAME_NOREPLACE) == -1 && errno == EINVAL);
    CHECK(ren2("f", "g", RENAME_EXCHANGE | RENAME_WHITEOUT) == -1 && errno == EINVAL);

    CHECK(mkdirat(dfd, "mnt", 0755) == 0);
    CHECK(mount("tmpfs", P("mnt"), "tmpfs", 0, NULL) == 0);
    CHECK(ren2("f", "mnt/f", 0) == -1 && errno == EXDEV);
    CHECK(linkat(dfd, "f", dfd, "mnt/f", 0) == -1 && errno == EXDEV);
    CHECK(ren2("mnt", "mnt2", 0) == -1 && errno == EBUSY);
    CHECK(mkdirat(dfd, "empty", 0755) == 0);
    CHECK(ren2("empty", "mnt", 0) == -1 && errno == EBUSY);
    CHECK(ren2("f", "mnt", 0) == -1 && errno == EISDIR); /* the type before the mount point */
    CHECK(umount(P("mnt")) == 0);
    CHECK(ren2("empty", "mnt", 0) == 0); /* over an empty directory */
    CHECK(unlinkat(dfd, "mnt", AT_REMOVEDIR) == 0);

    CHECK(ren2(".", "x", 0) == -1 && errno == EBUSY);
    CHECK(ren2("f", ".", 0) == -1 && errno == EBUSY);
    CHECK(ren2("f", "..", RENAME_NOREPLACE) == -1 && errno == EEXIST);
    CHECK(mkdirat(dfd, "d", 0755) == 0);
    CHECK(ren2("d/..", "x", 0) == -1 && errno == EBUSY);
    CHECK(ren2("none", "x", 0) == -1 && errno == ENOENT);
    CHECK(ren2("none", "f", RENAME_NOREPLACE) == -1 && errno == ENOENT);
    CHECK(put("g", "g") == 0);
    CHECK(ren2("f", "g", RENAME_NOREPLACE) == -1 && errno == EEXIST && is("g", "g"));
    CHECK(ren2("f", "h", RENAME_NOREPLACE) == 0 && is("h", "f"));
    CHECK(ren2("h", "f", 0) == 0);
}

static void test_structure(void)
{
    /* d/sub/inner, f, g */
    CHECK(mkdirat(dfd, "d/sub", 0755) == 0);
    CHECK(put("d/sub/inner", "i") == 0);
    CHECK(ren2("d", "d/sub/x", 0) == -1 && errno == EINVAL);
    CHECK(ren2("d", "d/x", 0) == -1 && errno == EINVAL);
    CHECK(ren2("d/sub", "d", 0) == -1 && errno == ENOTEMPTY);
    CHECK(ren2("d/sub/inner", "d", 0) == -1 && errno == ENOTEMPTY); /* not EISDIR: above it */
    CHECK(ren2("d/sub", "f", 0) == -1 && errno == ENOTDIR);
    CHECK(ren2("f", "d", 0) == -1 && errno == EISDIR);
    CHECK(mkdirat(dfd, "e", 0755) == 0);
    CHECK(ren2("e", "d", 0) == -1 && errno == ENOTEMPTY);
    CHECK(ren2("d", "e", 0) == 0); /* over an empty directory */
    CHECK(links(".") == 3);        /* ., .., e */
    CHECK(ren2("e", "d", 0) == 0);

    /* Trailing slashes: a directory may have one, a file not. */
    CHECK(ren2("f/", "f2", 0) == -1 && errno == ENOTDIR);
    CHECK(ren2("f", "f2/", 0) == -1 && errno == ENOTDIR);
    CHECK(ren2("d/", "d2/", 0) == 0 && ren2("d2", "d", 0) == 0);

    /* Two names of one file: success, and both remain. */
    CHECK(linkat(dfd, "f", dfd, "f-link", 0) == 0);
    CHECK(ren2("f", "f-link", 0) == 0);
    CHECK(is("f", "f") && is("f-link", "f") && links("f") == 2);
    CHECK(ren2("f", "f-link", RENAME_NOREPLACE) == -1 && errno == EEXIST);
    CHECK(unlinkat(dfd, "f-link", 0) == 0);
}

static void test_exchange(void)
{
    /* d/sub (a directory) and x/file swap places. */
    CHECK(mkdirat(dfd, "x", 0755) == 0);
    CHECK(put("x/file", "file") == 0);
    CHECK(links("d") == 3 && links("x") == 2);
    CHECK(ren2("d/sub", "x/file", RENAME_EXCHANGE) == 0);
    struct stat st;
    CHECK(fstatat(dfd, "x/file", &st, 0) == 0 && S_ISDIR(st.st_mode) && is("x/file/inner", "i"));
    CHECK(is("d/sub", "file"));
    CHECK(links("d") == 2 && links("x") == 3);
    CHECK(ren2("d/sub", "x/none", RENAME_EXCHANGE) == -1 && errno == ENOENT);
    CHECK(ren2("f", "g", RENAME_EXCHANGE) == 0 && is("f", "g") && is("g", "f"));
    /* Back, and clean up. */
    CHECK(ren2("x/file", "d/sub", RENAME_EXCHANGE) == 0 && links("d") == 3 && links("x") == 2);
    CHECK(unlinkat(dfd, "x/file", 0) == 0 && unlinkat(dfd, "x", AT_REMOVEDIR) == 0);
    CHECK(unlinkat(dfd, "d/sub/inner", 0) == 0 && unlinkat(dfd, "d/sub", AT_REMOVEDIR) == 0);
    CHECK(unlinkat(dfd, "d", AT_REMOVEDIR) == 0);
    CHECK(unlinkat(dfd, "g", 0) == 0);
}

static void test_utimens(void)
{
    struct timespec omit[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
    struct timespec set[2] = {{1000, 5}, {2000, 7}};
    struct timespec half[2] = {{3000, 0}, {0, UTIME_OMIT}};
    struct timespec bad[2] = {{1, 1000000000}, {0, 0}};
    struct stat st;
    /* Both omitted: success before anything, even a missing path or bad flags. */
    CHECK(utimensat(AT_FDCWD, P("missing"), omit, 0) == 0);
    CHECK(syscall(SYS_utimensat, AT_FDCWD, P("missing"), omit, 0x8000) == 0);
    CHECK(utimensat(AT_FDCWD, P("f"), set, 0x8000) == -1 && errno == EINVAL);
    CHECK(utimensat(AT_FDCWD, P("missing"), bad, 0) == -1 && errno == ENOENT);
    CHECK(utimensat(AT_FDCWD, P("f"), bad, 0) == -1 && errno == EINVAL);
    CHECK(utimensat(AT_FDCWD, P("f"), set, 0) == 0);
    CHECK(stat(P("f"), &st) == 0 && st.st_atim.tv_sec == 1000 && st.st_atim.tv_nsec == 5 &&
          st.st_mtim.tv_sec == 2000 && st.st_mtim.tv_nsec == 7);
    CHECK(utimensat(AT_FDCWD, P("f"), half, 0) == 0);
    CHECK(stat(P("f"), &st) == 0 && st.st_atim.tv_sec == 3000 && st.st_mtim.tv_sec == 2000);
    CHECK(utimensat(AT_FDCWD, P("f"), NULL, 0) == 0);
    CHECK(stat(P("f"), &st) == 0 && st.st_atim.tv_sec > 3000 && st.st_mtim.tv_sec > 2000);
    /* futimens: a null path and a descriptor (no flags); with AT_FDCWD the null is EFAULT. */
    int fd = openat(dfd, "f", O_RDONLY);
    CHECK(fd >= 0);
    CHECK(syscall(SYS_utimensat, fd, NULL, set, 0) == 0);
    CHECK(fstat(fd, &st) == 0 && st.st_atim.tv_sec == 1000);
    CHECK(syscall(SYS_utimensat, fd, NULL, set, AT_SYMLINK_NOFOLLOW) == -1 && errno == EINVAL);
    CHECK(syscall(SYS_utimensat, AT_FDCWD, NULL, set, 0) == -1 && errno == EFAULT);
    close(fd);
    CHECK(unlinkat(dfd, "f", 0) == 0);
}

int main(void)
{
    vktest_reset_signals();
    umask(022);
    if (unshare(CLONE_NEWNS) == 0)
        REQUIRE(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0);
    else
        REQUIRE(errno == ENOSYS || errno == EINVAL);
    strcpy(dir, "/tmp/vkr.XXXXXX");
    if (!mkdtemp(dir)) {
        CHECK(!"mkdtemp");
        vktest_done();
    }
    if (mount("tmpfs", dir, "tmpfs", 0, NULL) != 0) {
        CHECK(!"mount tmpfs (run as root)");
        rmdir(dir);
        vktest_done();
    }
    dfd = open(dir, O_RDONLY | O_DIRECTORY);
    REQUIRE(dfd >= 0);
    test_flags_and_mounts();
    test_structure();
    test_exchange();
    test_utimens();
    close(dfd);
    CHECK(umount(dir) == 0);
    CHECK(rmdir(dir) == 0);
    vktest_done();
}
