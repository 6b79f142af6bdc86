/*
 * t_fhandle — name_to_handle_at(2) and open_by_handle_at(2): a handle names a file (not a
 * path) and opens it again; the size protocol (EOVERFLOW with the size needed), the mount's
 * number (as statx's STATX_MNT_ID), the errors of both calls (EINVAL, EFAULT, EBADF,
 * ENOTDIR, ENOENT, EOPNOTSUPP for /proc, ESTALE for a deleted file or a descriptor on a
 * file system without handles, ELOOP for a symbolic link, EPERM without
 * CAP_DAC_READ_SEARCH), and the path a directory opened by handle gets.
 */
#include "vktest.h"

#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#ifndef MAX_HANDLE_SZ
#define MAX_HANDLE_SZ 128
#endif

static char dir[256];

#define P(name) vktest_path(dir, name)

struct handle {
    struct file_handle fh;
    unsigned char bytes[MAX_HANDLE_SZ];
};

/* A handle of `path` (relative to `dirfd`), or -1 with errno. */
static int get(int dirfd, const char *path, struct handle *h, int *mount_id, int flags)
{
    h->fh.handle_bytes = MAX_HANDLE_SZ;
    return name_to_handle_at(dirfd, path, &h->fh, mount_id, flags);
}

static void test_size_and_mount_id(void)
{
    struct handle h;
    int mid = -1;
    /* Too small: EOVERFLOW, with the size needed and the mount's number. */
    h.fh.handle_bytes = 0;
    CHECK(name_to_handle_at(AT_FDCWD, P("file"), &h.fh, &mid, 0) == -1 && errno == EOVERFLOW);
    unsigned need = h.fh.handle_bytes;
    CHECK(need > 0 && need <= MAX_HANDLE_SZ);
    /* struct statx: stx_mask at 0, stx_mnt_id at 0x90 (musl has no statx(3)). */
    unsigned char sx[256] __attribute__((aligned(8)));
    uint32_t mask = 0;
    uint64_t smid = 0;
    CHECK(syscall(SYS_statx, AT_FDCWD, P("file"), 0, 0x1000 /* STATX_MNT_ID */, sx) == 0);
    memcpy(&mask, sx, 4);
    memcpy(&smid, sx + 0x90, 8);
    CHECK((mask & 0x1000) && mid == (int)smid);
    /* Exactly the size: fits. */
    h.fh.handle_bytes = need;
    CHECK(name_to_handle_at(AT_FDCWD, P("file"), &h.fh, &mid, 0) == 0 && h.fh.handle_bytes == need);
    /* Past MAX_HANDLE_SZ: EINVAL. */
    h.fh.handle_bytes = MAX_HANDLE_SZ + 1;
    CHECK(name_to_handle_at(AT_FDCWD, P("file"), &h.fh, &mid, 0) == -1 && errno == EINVAL);
    /* The same file, the same handle, by any of its names and by descriptor. */
    struct handle a, b, c;
    CHECK(get(AT_FDCWD, P("file"), &a, &mid, 0) == 0);
    CHECK(get(AT_FDCWD, P("link"), &b, &mid, 0) == 0);
    int fd = open(P("file"), O_RDONLY);
    CHECK(fd >= 0 && get(fd, "", &c, &mid, AT_EMPTY_PATH) == 0);
    close(fd);
    CHECK(a.fh.handle_bytes == b.fh.handle_bytes && a.fh.handle_type == b.fh.handle_type &&
          memcmp(a.bytes, b.bytes, a.fh.handle_bytes) == 0);
    CHECK(a.fh.handle_bytes == c.fh.handle_bytes && memcmp(a.bytes, c.bytes, a.fh.handle_bytes) == 0);
    /* A symbolic link: its own handle, or its target's with AT_SYMLINK_FOLLOW. */
    struct handle s, t;
    CHECK(get(AT_FDCWD, P("sym"), &s, &mid, 0) == 0);
    CHECK(get(AT_FDCWD, P("sym"), &t, &mid, AT_SYMLINK_FOLLOW) == 0);
    CHECK(memcmp(s.bytes, a.bytes, a.fh.handle_bytes) != 0 && memcmp(t.bytes, a.bytes, a.fh.handle_bytes) == 0);
}

static void test_name_errors(void)
{
    struct handle h;
    int mid;
    CHECK(get(AT_FDCWD, P("file"), &h, &mid, -1) == -1 && errno == EINVAL);
    CHECK(get(-1, "file", &h, &mid, 0) == -1 && errno == EBADF);
    int fd = open(P("file"), O_RDONLY);
    CHECK(get(fd, "x", &h, &mid, 0) == -1 && errno == ENOTDIR);
    close(fd);
    CHECK(get(AT_FDCWD, "", &h, &mid, 0) == -1 && errno == ENOENT);
    CHECK(get(AT_FDCWD, P("missing"), &h, &mid, 0) == -1 && errno == ENOENT);
    CHECK(name_to_handle_at(AT_FDCWD, (const char *)8, &h.fh, &mid, 0) == -1 && errno == EFAULT);
    CHECK(name_to_handle_at(AT_FDCWD, P("file"), (struct file_handle *)8, &mid, 0) == -1 && errno == EFAULT);
    h.fh.handle_bytes = MAX_HANDLE_SZ;
    CHECK(name_to_handle_at(AT_FDCWD, P("file"), &h.fh, (int *)8, 0) == -1 && errno == EFAULT);
    /* procfs makes no handles. */
    CHECK(get(AT_FDCWD, "/proc/self/status", &h, &mid, 0) == -1 && errno == EOPNOTSUPP);
}

static void test_open(void)
{
    struct handle h;
    int mid;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    REQUIRE(dfd >= 0);
    CHECK(get(AT_FDCWD, P("file"), &h, &mid, 0) == 0);
    /* By the directory's descriptor, and by the working directory on the same mount. */
    int fd = open_by_handle_at(dfd, &h.fh, O_RDONLY);
    CHECK(fd >= 0);
    char buf[16] = {0};
    CHECK(fd >= 0 && read(fd, buf, sizeof buf) == 5 && memcmp(buf, "hello", 5) == 0);
    struct stat a, b;
    CHECK(fd >= 0 && fstat(fd, &a) == 0 && stat(P("file"), &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev);
    char lnk[64], want[PATH_MAX];
    snprintf(lnk, sizeof lnk, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(lnk, want, sizeof want - 1);
    /* Either of its names (Linux takes any alias of the inode). */
    CHECK(n > 0 && (want[n] = 0, strcmp(want, P("file")) == 0 || strcmp(want, P("link")) == 0));
    close(fd);
    CHECK(chdir(dir) == 0);
    fd = open_by_handle_at(AT_FDCWD, &h.fh, O_WRONLY | O_APPEND);
    CHECK(fd >= 0 && write(fd, "!", 1) == 1);
    close(fd);
    CHECK(stat(P("file"), &b) == 0 && b.st_size == 6);
    CHECK(chdir("/") == 0);

    /* A directory deeper down: opened by handle it gets its path back. */
    struct handle d;
    CHECK(get(AT_FDCWD, P("sub/deeper"), &d, &mid, 0) == 0);
    CHECK(open_by_handle_at(dfd, &d.fh, O_RDWR) == -1 && errno == EISDIR);
    fd = open_by_handle_at(dfd, &d.fh, O_RDONLY | O_DIRECTORY);
    CHECK(fd >= 0);
    snprintf(lnk, sizeof lnk, "/proc/self/fd/%d", fd);
    n = readlink(lnk, want, sizeof want - 1);
    CHECK(n > 0 && (want[n] = 0, strcmp(want, P("sub/deeper")) == 0));
    CHECK(fd >= 0 && fchdir(fd) == 0);
    CHECK(access("../../file", F_OK) == 0);
    CHECK(chdir("/") == 0);
    close(fd);

    /* A symbolic link: ELOOP, but O_PATH opens the link itself. */
    struct handle s;
    CHECK(get(AT_FDCWD, P("sym"), &s, &mid, 0) == 0);
    CHECK(open_by_handle_at(dfd, &s.fh, O_RDONLY) == -1 && errno == ELOOP);
    fd = open_by_handle_at(dfd, &s.fh, O_PATH | O_NOFOLLOW);
    CHECK(fd >= 0 && fstat(fd, &a) == 0 && S_ISLNK(a.st_mode));
    close(fd);

    /* Errors. */
    CHECK(open_by_handle_at(-1, &h.fh, O_RDONLY) == -1 && errno == EBADF);
    CHECK(open_by_handle_at(dfd, (struct file_handle *)8, O_RDONLY) == -1 && errno == EFAULT);
    struct handle z = h;
    z.fh.handle_bytes = 0;
    CHECK(open_by_handle_at(dfd, &z.fh, O_RDONLY) == -1 && errno == EINVAL);
    z.fh.handle_bytes = MAX_HANDLE_SZ + 1;
    CHECK(open_by_handle_at(dfd, &z.fh, O_RDONLY) == -1 && errno == EINVAL);
    int p[2];
    CHECK(pipe(p) == 0);
    CHECK(open_by_handle_at(p[0], &h.fh, O_RDONLY) == -1 && errno == ESTALE);
    close(p[0]);
    close(p[1]);
    /* A deleted file's handle is stale. */
    int g = open(P("gone"), O_CREAT | O_WRONLY, 0600);
    close(g);
    struct handle gh;
    CHECK(get(AT_FDCWD, P("gone"), &gh, &mid, 0) == 0);
    CHECK(unlink(P("gone")) == 0);
    CHECK(open_by_handle_at(dfd, &gh.fh, O_RDONLY) == -1 && errno == ESTALE);
    /* Without CAP_DAC_READ_SEARCH: EPERM. */
    pid_t pid = fork();
    if (pid == 0) {
        if (setuid(65534) != 0)
            _exit(2);
        int r = open_by_handle_at(dfd, &h.fh, O_RDONLY);
        _exit(r == -1 && errno == EPERM ? 0 : 1);
    }
    int st;
    CHECK(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(dfd);
}

int main(void)
{
    vktest_reset_signals();
    snprintf(dir, sizeof dir, "/tmp/t_fhandle.%d", (int)getpid());
    REQUIRE(mkdir(dir, 0755) == 0);
    int fd = open(P("file"), O_CREAT | O_WRONLY, 0644);
    REQUIRE(fd >= 0 && write(fd, "hello", 5) == 5);
    close(fd);
    REQUIRE(link(P("file"), P("link")) == 0);
    REQUIRE(symlink("file", P("sym")) == 0);
    REQUIRE(mkdir(P("sub"), 0755) == 0 && mkdir(P("sub/deeper"), 0755) == 0);
    test_size_and_mount_id();
    test_name_errors();
    test_open();
    unlink(P("file"));
    unlink(P("link"));
    unlink(P("sym"));
    rmdir(P("sub/deeper"));
    rmdir(P("sub"));
    CHECK(rmdir(dir) == 0);
    return vktest_done();
}
