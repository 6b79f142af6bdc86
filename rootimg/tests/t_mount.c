/*
 * t_mount — mounts and their flags: mount(2), MS_REMOUNT, umount2(2), /proc/mounts,
 * /proc/self/mountinfo, statfs's f_flags, and what each flag does.
 *
 * Covers, on a tmpfs mounted on a scratch directory: the mount table lines; remount read-only
 * (EBUSY while a file is open for writing there) and then EROFS for every change — open for
 * writing, O_CREAT, mkdir (EEXIST still first for a name in use), unlink, rmdir, rename,
 * symlink, link, chmod, fchmod, chown, truncate, utimensat, access(W_OK), and for a user
 * without write permission too (EROFS before EACCES) — while reads go on;
 * read/write again after remount rw; noexec (execve EACCES, mmap PROT_EXEC EPERM, plain
 * mmap fine, mprotect adding PROT_EXEC EACCES); nosuid in the table and f_flags, and a set-user-ID program run with the
 * caller's ids there (its owner's elsewhere); nodev (a devtmpfs mounted nodev: opening a
 * device is EACCES); noatime (a read leaves the access time alone) against relatime (an old
 * access time is updated) and strictatime; umount2 EBUSY for a working directory or an open
 * file inside, EINVAL for a directory that is no mount point; and mounting on a file (ENOTDIR).
 *
 * Natively the program first moves into a private mount namespace (unshare(CLONE_NEWNS), /
 * made private) so nothing it mounts is seen outside; vk has one namespace and no unshare
 * (ENOSYS), where it runs as init. It must run as root.
 */
#include "vktest.h"

#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#ifndef MS_STRICTATIME
#define MS_STRICTATIME (1 << 24)
#endif

static char dir[64];

#define P(name) vktest_path(dir, name)

/* The whole of a small file (a /proc table), NUL-terminated. */
static char *slurp(const char *path)
{
    static char buf[65536];
    int fd = open(path, O_RDONLY);
    ssize_t n = 0, r;
    while (fd >= 0 && (r = read(fd, buf + n, sizeof buf - 1 - (size_t)n)) > 0)
        n += r;
    buf[n > 0 ? n : 0] = 0;
    if (fd >= 0)
        close(fd);
    return buf;
}

/* Whether the mount table line of `dir` shows `opts` first ("rw,noexec,relatime"). */
static int mounts_show(const char *opts)
{
    char want[256];
    snprintf(want, sizeof want, " %s tmpfs %s", dir, opts);
    char *t = slurp("/proc/mounts");
    char *at = strstr(t, want);
    return at && (at[strlen(want)] == ' ' || at[strlen(want)] == ',');
}

/* Whether /proc/self/mountinfo shows `dir` with the mount options `opts`. */
static int mountinfo_shows(const char *opts)
{
    char want[256];
    snprintf(want, sizeof want, " / %s %s - tmpfs ", dir, opts);
    return strstr(slurp("/proc/self/mountinfo"), want) != NULL;
}

static int remount(unsigned long flags)
{
    return mount("tmpfs", dir, "tmpfs", MS_REMOUNT | flags, NULL);
}

static int put(const char *path, const char *text)
{
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* Copy this program into the mount as `prog` (to exec it there). */
static int copy_self(const char *to)
{
    int in = open("/proc/self/exe", O_RDONLY);
    int out = open(to, O_CREAT | O_WRONLY | O_TRUNC, 0755);
    char buf[65536];
    ssize_t n;
    int ok = in >= 0 && out >= 0;
    while (ok && (n = read(in, buf, sizeof buf)) > 0)
        ok = write(out, buf, (size_t)n) == n;
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    return ok ? 0 : -1;
}

/* Run `path child` in a child: its exit status, or -errno when execve failed. */
static int run(const char *path)
{
    pid_t pid = fork();
    if (pid == 0) {
        char *argv[] = {(char *)path, "child", NULL};
        execv(path, argv);
        _exit(200 + (errno & 0x3f));
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
        return -1000;
    int code = WEXITSTATUS(st);
    return code >= 200 ? -(code - 200) : code;
}

static void test_table(void)
{
    CHECK(mounts_show("rw,relatime"));
    CHECK(mountinfo_shows("rw,relatime"));
    struct statvfs sv;
    CHECK(statvfs(dir, &sv) == 0 && !(sv.f_flag & ST_RDONLY) && !(sv.f_flag & ST_NOEXEC));
    /* A mount on a file, and twice on one directory... the second stacks on Linux: only
     * the file is checked. */
    CHECK(put(P("file"), "x") == 0);
    CHECK(mount("tmpfs", P("file"), "tmpfs", 0, NULL) == -1 && errno == ENOTDIR);
    CHECK(unlink(P("file")) == 0);
}

static void test_readonly(void)
{
    CHECK(put(P("f"), "data") == 0);
    CHECK(mkdir(P("d"), 0755) == 0);

    /* Not while a file is open for writing. */
    int w = open(P("f"), O_WRONLY);
    CHECK(w >= 0);
    CHECK(remount(MS_RDONLY) == -1 && errno == EBUSY);
    CHECK(write(w, "DATA", 4) == 4);
    close(w);
    int r = open(P("f"), O_RDONLY);
    CHECK(r >= 0);
    CHECK(remount(MS_RDONLY) == 0);
    CHECK(mounts_show("ro,relatime"));
    CHECK(mountinfo_shows("ro,relatime"));
    struct statvfs sv;
    CHECK(statvfs(dir, &sv) == 0 && (sv.f_flag & ST_RDONLY));

    /* Every change is EROFS; reads go on. */
    char buf[8] = {0};
    CHECK(read(r, buf, sizeof buf) == 4 && memcmp(buf, "DATA", 4) == 0);
    CHECK(open(P("f"), O_WRONLY) == -1 && errno == EROFS);
    CHECK(open(P("f"), O_RDWR) == -1 && errno == EROFS);
    CHECK(open(P("new"), O_CREAT | O_WRONLY, 0644) == -1 && errno == EROFS);
    int r2 = open(P("f"), O_CREAT | O_RDONLY, 0644); /* exists: no change */
    CHECK(r2 >= 0);
    if (r2 >= 0)
        close(r2);
    CHECK(mkdir(P("d2"), 0755) == -1 && errno == EROFS);
    CHECK(mkdir(P("d"), 0755) == -1 && errno == EEXIST);
    CHECK(unlink(P("f")) == -1 && errno == EROFS);
    CHECK(unlink(P("nothing")) == -1 && errno == EROFS);
    CHECK(rmdir(P("d")) == -1 && errno == EROFS);
    CHECK(rename(P("f"), P("g")) == -1 && errno == EROFS);
    CHECK(symlink("f", P("s")) == -1 && errno == EROFS);
    CHECK(link(P("f"), P("h")) == -1 && errno == EROFS);
    CHECK(chmod(P("f"), 0600) == -1 && errno == EROFS);
    CHECK(fchmod(r, 0600) == -1 && errno == EROFS);
    CHECK(chown(P("f"), 0, 0) == -1 && errno == EROFS);
    CHECK(truncate(P("f"), 0) == -1 && errno == EROFS);
    CHECK(utimensat(AT_FDCWD, P("f"), NULL, 0) == -1 && errno == EROFS);
    CHECK(access(P("f"), W_OK) == -1 && errno == EROFS);
    CHECK(access(P("f"), R_OK) == 0);
    /* A user who may not write the file either hears EROFS first (inode_permission). */
    pid_t pid = fork();
    if (pid == 0) {
        if (setuid(1000) != 0)
            _exit(2);
        _exit(open(P("f"), O_WRONLY) == -1 && errno == EROFS ? 0 : 1);
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    struct stat st;
    CHECK(stat(P("f"), &st) == 0 && st.st_size == 4 && (st.st_mode & 0777) == 0644);
    close(r);

    /* Read/write again. */
    CHECK(remount(0) == 0);
    CHECK(mounts_show("rw,relatime"));
    CHECK(put(P("f"), "again") == 0);
    CHECK(rename(P("f"), P("g")) == 0 && unlink(P("g")) == 0 && rmdir(P("d")) == 0);
}

static void test_noexec_nosuid(void)
{
    CHECK(copy_self(P("prog")) == 0);
    CHECK(run(P("prog")) == 10);
    CHECK(remount(MS_NOEXEC) == 0);
    CHECK(mounts_show("rw,noexec,relatime"));
    struct statvfs sv;
    CHECK(statvfs(dir, &sv) == 0 && (sv.f_flag & ST_NOEXEC));
    CHECK(run(P("prog")) == -EACCES);
    int fd = open(P("prog"), O_RDONLY);
    CHECK(fd >= 0);
    void *m = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
    CHECK(m == MAP_FAILED && errno == EPERM);
    m = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
    CHECK(m != MAP_FAILED);
    CHECK(mprotect(m, 4096, PROT_READ | PROT_EXEC) == -1 && errno == EACCES);
    CHECK(mprotect(m, 4096, PROT_NONE) == 0);
    if (m != MAP_FAILED)
        munmap(m, 4096);
    close(fd);

    /* A set-user-ID program owned by uid 1000: its owner's euid, but not on a nosuid mount. */
    CHECK(remount(0) == 0);
    CHECK(chown(P("prog"), 1000, 1000) == 0 && chmod(P("prog"), 04755) == 0);
    CHECK(run(P("prog")) == 11);
    CHECK(remount(MS_NOSUID) == 0);
    CHECK(mounts_show("rw,nosuid,relatime"));
    CHECK(statvfs(dir, &sv) == 0 && (sv.f_flag & ST_NOSUID) && !(sv.f_flag & ST_NOEXEC));
    CHECK(run(P("prog")) == 10);
    CHECK(remount(0) == 0);
    CHECK(run(P("prog")) == 11);
    CHECK(unlink(P("prog")) == 0);
}

static void test_atime(void)
{
    CHECK(put(P("a"), "abc") == 0);
    struct timespec old[2] = {{1000, 0}, {UTIME_OMIT, 0}};
    struct stat st;
    char buf[4];

    /* relatime (the default): an access time older than a day is updated. */
    CHECK(utimensat(AT_FDCWD, P("a"), old, 0) == 0);
    int fd = open(P("a"), O_RDONLY);
    CHECK(fd >= 0 && read(fd, buf, sizeof buf) == 3);
    CHECK(fstat(fd, &st) == 0 && st.st_atime > 1000);
    close(fd);

    /* noatime: never. */
    CHECK(remount(MS_NOATIME) == 0);
    CHECK(mounts_show("rw,noatime"));
    CHECK(utimensat(AT_FDCWD, P("a"), old, 0) == 0);
    fd = open(P("a"), O_RDONLY);
    CHECK(fd >= 0 && read(fd, buf, sizeof buf) == 3);
    CHECK(fstat(fd, &st) == 0 && st.st_atime == 1000);
    close(fd);

    /* A remount that names no access-time flag keeps noatime. */
    CHECK(remount(MS_NOSUID) == 0);
    CHECK(mounts_show("rw,nosuid,noatime"));

    /* strictatime: every read. */
    CHECK(remount(MS_STRICTATIME) == 0);
    CHECK(mounts_show("rw"));
    fd = open(P("a"), O_RDONLY);
    CHECK(fd >= 0 && read(fd, buf, sizeof buf) == 3);
    CHECK(fstat(fd, &st) == 0 && st.st_atime > 1000);
    close(fd);
    CHECK(remount(MS_RELATIME) == 0);
    CHECK(mounts_show("rw,relatime"));
    CHECK(unlink(P("a")) == 0);
}

static void test_nodev(void)
{
    char devdir[128];
    snprintf(devdir, sizeof devdir, "%s/dev", dir);
    CHECK(mkdir(devdir, 0755) == 0);
    CHECK(mount("devtmpfs", devdir, "devtmpfs", MS_NODEV, NULL) == 0);
    struct stat st;
    CHECK(stat(P("dev/null"), &st) == 0 && S_ISCHR(st.st_mode));
    CHECK(open(P("dev/null"), O_WRONLY) == -1 && errno == EACCES);
    CHECK(mount("devtmpfs", devdir, "devtmpfs", MS_REMOUNT, NULL) == 0);
    int fd = open(P("dev/null"), O_WRONLY);
    CHECK(fd >= 0 && write(fd, "x", 1) == 1);
    if (fd >= 0)
        close(fd);
    CHECK(umount(devdir) == 0);
    CHECK(rmdir(devdir) == 0);
}

static void test_umount(void)
{
    CHECK(mkdir(P("sub"), 0755) == 0);
    CHECK(umount(P("sub")) == -1 && errno == EINVAL);

    /* Busy while a working directory or an open file is inside. */
    int here = open(".", O_RDONLY | O_DIRECTORY);
    CHECK(chdir(P("sub")) == 0);
    CHECK(umount(dir) == -1 && errno == EBUSY);
    CHECK(here >= 0 && fchdir(here) == 0);
    if (here >= 0)
        close(here);
    int fd = open(P("sub"), O_RDONLY | O_DIRECTORY);
    CHECK(fd >= 0);
    CHECK(umount(dir) == -1 && errno == EBUSY);
    close(fd);
    CHECK(umount(dir) == 0);
    struct stat st;
    CHECK(stat(P("sub"), &st) == -1 && errno == ENOENT); /* the directory below again */
    CHECK(umount(dir) == -1 && errno == EINVAL);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "child") == 0)
        _exit(geteuid() == 1000 ? 11 : geteuid() == 0 && getuid() == 0 ? (getegid() == 0 ? 10 : 13) : 12);
    vktest_reset_signals();
    umask(022);
    if (unshare(CLONE_NEWNS) == 0)
        REQUIRE(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0);
    else
        REQUIRE(errno == ENOSYS || errno == EINVAL);
    strcpy(dir, "/tmp/vkm.XXXXXX");
    if (!mkdtemp(dir)) {
        CHECK(!"mkdtemp");
        vktest_done();
    }
    if (mount("tmpfs", dir, "tmpfs", 0, NULL) != 0) {
        CHECK(!"mount tmpfs (run as root)");
        rmdir(dir);
        vktest_done();
    }
    test_table();
    test_readonly();
    test_noexec_nosuid();
    test_atime();
    test_nodev();
    test_umount();
    CHECK(rmdir(dir) == 0);
    vktest_done();
}
