/*
 * t_files — files, directories, descriptors, pipes, polling and the simple devices.
 *
 * Covers: open/openat flags (O_CREAT|O_EXCL, O_TRUNC, O_APPEND, O_DIRECTORY, O_NOFOLLOW,
 * O_CLOEXEC, access modes) and their errors (EEXIST, ENOTDIR, ELOOP, EISDIR, ENOENT,
 * ENAMETOOLONG, EBADF), the lowest free descriptor, umask; read/write/readv/writev/pread64/
 * pwrite64/lseek (SEEK_SET/CUR/END, a hole past EOF reads as zeros, ESPIPE on pipes); an unlinked
 * open file; fstat/stat/lstat/newfstatat (AT_SYMLINK_NOFOLLOW, AT_EMPTY_PATH)/statx fields;
 * getdents64 (every entry once, d_type, d_ino, d_reclen alignment, small buffers, rewind, EINVAL,
 * ENOTDIR); readlinkat (no NUL, truncation, EINVAL); faccessat; getcwd/chdir/fchdir (ERANGE,
 * ENOTDIR); dup/dup2/dup3 (shared offset, close-on-exec not copied); fcntl F_GETFD/F_SETFD/
 * F_GETFL/F_SETFL/F_DUPFD/F_DUPFD_CLOEXEC; a descriptor's offset shared with a forked child;
 * pipe2 (O_CLOEXEC, O_NONBLOCK EAGAIN both ways, partial reads, EOF, EPIPE with SIGPIPE ignored,
 * handled and default); poll/ppoll/select/pselect6 on pipes (POLLIN/POLLOUT/POLLHUP/POLLERR/
 * POLLNVAL, timeouts, the signal mask of ppoll/pselect); mkdirat/unlinkat/rmdir/renameat2
 * (RENAME_NOREPLACE and the rename errors)/symlinkat/linkat/fchmodat/fchownat/utimensat/
 * ftruncate/truncate; fsync/fdatasync/sync; statfs; /dev/null, /dev/zero, /dev/urandom; isatty on
 * a pipe and a file; two threads at once creating, writing, reading back, renaming and removing
 * files in one directory and writing stripes of one shared file (every byte checked).
 *
 * Linux-specific: unlink of a directory gives EISDIR (POSIX allows EPERM); select() writes the
 * remaining time back into its timeout; the raw getcwd returns the length including the NUL;
 * an ELOOP from O_NOFOLLOW; ftruncate on a read-only descriptor gives EINVAL.
 */
#include "vktest.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <sys/ioctl.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE 1
#endif
#ifndef AT_EMPTY_PATH
#define AT_EMPTY_PATH 0x1000
#endif

static char tmpdir[64];
static int tmpdir_fd = -1;

/* A path inside the test directory; four rotating buffers so a call can take two or three. */
#define P(name) vktest_path(tmpdir, name)

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int put_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

static int file_is(const char *path, const char *text)
{
    char buf[256];
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    return n == (ssize_t)strlen(text) && memcmp(buf, text, (size_t)n) == 0;
}

static void remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (d) {
            struct dirent *e;
            while ((e = readdir(d)) != NULL) {
                if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                    continue;
                char child[512];
                snprintf(child, sizeof child, "%s/%s", path, e->d_name);
                remove_tree(child);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

/* ---------------------------------------------------------------- open */

static void test_open_flags(void)
{
    int fd = open(P("new"), O_RDWR | O_CREAT | O_EXCL, 0666);
    CHECK(fd >= 0);
    struct stat st;
    CHECK(fstat(fd, &st) == 0 && (st.st_mode & 07777) == 0644); /* umask 022 applied */
    CHECK(write(fd, "hello", 5) == 5);
    close(fd);
    CHECK(open(P("new"), O_RDWR | O_CREAT | O_EXCL, 0666) == -1 && errno == EEXIST);

    fd = open(P("new"), O_RDWR | O_TRUNC);
    CHECK(fd >= 0 && fstat(fd, &st) == 0 && st.st_size == 0);
    close(fd);

    fd = open(P("new"), O_WRONLY | O_APPEND);
    CHECK(write(fd, "abc", 3) == 3);
    CHECK(lseek(fd, 0, SEEK_SET) == 0);
    CHECK(write(fd, "def", 3) == 3); /* still at the end */
    CHECK(lseek(fd, 0, SEEK_CUR) == 6);
    close(fd);
    CHECK(file_is(P("new"), "abcdef"));

    CHECK(open(P("new"), O_RDONLY | O_DIRECTORY) == -1 && errno == ENOTDIR);
    fd = open(tmpdir, O_RDONLY | O_DIRECTORY);
    CHECK(fd >= 0);
    close(fd);
    CHECK(symlink("new", P("link")) == 0);
    CHECK(open(P("link"), O_RDONLY | O_NOFOLLOW) == -1 && errno == ELOOP);
    fd = open(P("link"), O_RDONLY);
    CHECK(fd >= 0); /* followed */
    close(fd);
    fd = open(P("new"), O_RDONLY | O_NOFOLLOW);
    CHECK(fd >= 0);
    close(fd);
    /* O_CREAT|O_EXCL never follows a symlink, even a dangling one. */
    CHECK(symlink("nothing-here", P("dangling")) == 0);
    CHECK(open(P("dangling"), O_WRONLY | O_CREAT | O_EXCL, 0600) == -1 && errno == EEXIST);
    CHECK(open(P("dangling"), O_RDONLY) == -1 && errno == ENOENT);

    fd = open(P("new"), O_RDONLY | O_CLOEXEC);
    CHECK(fcntl(fd, F_GETFD) == FD_CLOEXEC);
    char c;
    CHECK(write(fd, "x", 1) == -1 && errno == EBADF);
    close(fd);
    fd = open(P("new"), O_WRONLY);
    CHECK(fcntl(fd, F_GETFD) == 0);
    CHECK(read(fd, &c, 1) == -1 && errno == EBADF);
    close(fd);

    CHECK(open(tmpdir, O_WRONLY) == -1 && errno == EISDIR);
    CHECK(open(P("missing"), O_RDONLY) == -1 && errno == ENOENT);
    CHECK(open(P("missing/x"), O_RDWR | O_CREAT, 0600) == -1 && errno == ENOENT);
    CHECK(open(P("new/x"), O_RDONLY) == -1 && errno == ENOTDIR);
    CHECK(open(P("new/"), O_RDONLY) == -1 && errno == ENOTDIR);
    char longname[400];
    int prefix = snprintf(longname, sizeof longname, "%s/", tmpdir);
    memset(longname + prefix, 'n', 300); /* one component longer than NAME_MAX (255) */
    longname[prefix + 300] = '\0';
    CHECK(open(longname, O_RDWR | O_CREAT, 0600) == -1 && errno == ENAMETOOLONG);
    CHECK(open("", O_RDONLY) == -1 && errno == ENOENT);

    /* openat: relative to a directory descriptor; absolute paths ignore it. */
    fd = openat(tmpdir_fd, "new", O_RDONLY);
    CHECK(fd >= 0);
    int file_fd = fd;
    CHECK(openat(file_fd, "x", O_RDONLY) == -1 && errno == ENOTDIR);
    int abs_fd = openat(file_fd, P("new"), O_RDONLY);
    CHECK(abs_fd >= 0);
    close(abs_fd);
    CHECK(openat(9999, "new", O_RDONLY) == -1 && errno == EBADF);
    close(file_fd);

    /* The lowest free descriptor is used. */
    int a = open("/dev/null", O_RDONLY), b = open("/dev/null", O_RDONLY);
    CHECK(a >= 0 && b == a + 1);
    close(a);
    int again = open("/dev/null", O_RDONLY);
    CHECK(again == a);
    close(again);
    close(b);
    CHECK(close(b) == -1 && errno == EBADF);
    CHECK(read(b, &c, 1) == -1 && errno == EBADF);
    unlink(P("new"));
    unlink(P("link"));
    unlink(P("dangling"));
}

/* ---------------------------------------------------------------- read, write, seek */

static void test_read_write(void)
{
    int fd = open(P("rw"), O_RDWR | O_CREAT | O_TRUNC, 0600);
    REQUIRE(fd >= 0);
    char buf[64];
    CHECK(write(fd, "0123456789", 10) == 10);
    CHECK(read(fd, buf, sizeof buf) == 0); /* at EOF */
    CHECK(lseek(fd, 2, SEEK_SET) == 2);
    CHECK(read(fd, buf, 3) == 3 && memcmp(buf, "234", 3) == 0);
    CHECK(lseek(fd, 1, SEEK_CUR) == 6);
    CHECK(lseek(fd, -2, SEEK_END) == 8);
    CHECK(read(fd, buf, sizeof buf) == 2 && memcmp(buf, "89", 2) == 0);
    CHECK(lseek(fd, -1, SEEK_SET) == -1 && errno == EINVAL);
    CHECK(lseek(fd, 0, 42) == -1 && errno == EINVAL);
    CHECK(read(fd, buf, 0) == 0);

    /* pread/pwrite leave the offset alone. */
    CHECK(lseek(fd, 4, SEEK_SET) == 4);
    CHECK(pread(fd, buf, 3, 7) == 3 && memcmp(buf, "789", 3) == 0);
    CHECK(pwrite(fd, "AB", 2, 0) == 2);
    CHECK(lseek(fd, 0, SEEK_CUR) == 4);
    CHECK(pread(fd, buf, 4, 0) == 4 && memcmp(buf, "AB23", 4) == 0);
    CHECK(pread(fd, buf, 4, -1) == -1 && errno == EINVAL);

    /* writev/readv gather and scatter in order. */
    struct iovec out[3] = {{"ab", 2}, {"", 0}, {"cdef", 4}};
    CHECK(lseek(fd, 0, SEEK_SET) == 0);
    CHECK(writev(fd, out, 3) == 6);
    char x[3] = {0}, y[5] = {0};
    struct iovec in[2] = {{x, 2}, {y, 4}};
    CHECK(lseek(fd, 0, SEEK_SET) == 0);
    CHECK(readv(fd, in, 2) == 6 && memcmp(x, "ab", 2) == 0 && memcmp(y, "cdef", 4) == 0);
    CHECK(writev(fd, out, 0) == 0);
    CHECK(writev(fd, out, -1) == -1 && errno == EINVAL);

    /* Seeking past EOF and writing leaves a hole that reads as zeros. */
    off_t far = 1 << 20;
    CHECK(lseek(fd, far, SEEK_SET) == far);
    CHECK(write(fd, "Z", 1) == 1);
    struct stat st;
    CHECK(fstat(fd, &st) == 0 && st.st_size == far + 1);
    static char hole[8192];
    memset(hole, 0x55, sizeof hole);
    CHECK(pread(fd, hole, sizeof hole, 500000) == (ssize_t)sizeof hole);
    int zeros = 1;
    for (size_t i = 0; i < sizeof hole; i++)
        zeros &= hole[i] == 0;
    CHECK(zeros);
    CHECK(pread(fd, buf, 10, far) == 1 && buf[0] == 'Z');
    /* A larger write and read across page boundaries. */
    static unsigned char big[3 * 4096 + 17], back[sizeof big];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (unsigned char)(i * 13 + 1);
    CHECK(pwrite(fd, big, sizeof big, 4000) == (ssize_t)sizeof big);
    CHECK(pread(fd, back, sizeof back, 4000) == (ssize_t)sizeof back);
    CHECK(memcmp(big, back, sizeof big) == 0);

    /* An unlinked file stays usable while open. */
    CHECK(unlink(P("rw")) == 0);
    CHECK(fstat(fd, &st) == 0 && st.st_nlink == 0);
    CHECK(pwrite(fd, "still", 5, 0) == 5 && pread(fd, buf, 5, 0) == 5 &&
          memcmp(buf, "still", 5) == 0);
    close(fd);

    /* Pipes cannot seek. */
    int p[2];
    REQUIRE(pipe(p) == 0);
    CHECK(lseek(p[0], 0, SEEK_CUR) == -1 && errno == ESPIPE);
    CHECK(pread(p[0], buf, 1, 0) == -1 && errno == ESPIPE);
    CHECK(pwrite(p[1], "x", 1, 0) == -1 && errno == ESPIPE);
    close(p[0]);
    close(p[1]);
}

/* ---------------------------------------------------------------- stat family */

struct statx_timestamp_ {
    int64_t tv_sec;
    uint32_t tv_nsec;
    int32_t reserved;
};
struct statx_ {
    uint32_t stx_mask, stx_blksize;
    uint64_t stx_attributes;
    uint32_t stx_nlink, stx_uid, stx_gid;
    uint16_t stx_mode, pad1;
    uint64_t stx_ino, stx_size, stx_blocks, stx_attributes_mask;
    struct statx_timestamp_ stx_atime, stx_btime, stx_ctime, stx_mtime;
    uint32_t stx_rdev_major, stx_rdev_minor, stx_dev_major, stx_dev_minor;
    uint64_t spare[14];
};
#define STATX_BASIC_STATS_ 0x7ffU

static void test_stat(void)
{
    REQUIRE(put_file(P("s"), "twelve bytes") == 0);
    struct stat st, dir_st, lst;
    CHECK(stat(P("s"), &st) == 0);
    CHECK(S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0644);
    CHECK(st.st_size == 12);
    CHECK(st.st_nlink == 1);
    CHECK(st.st_uid == geteuid() && st.st_gid == getegid());
    CHECK(st.st_blksize > 0);
    CHECK(st.st_ino != 0);
    CHECK(stat(tmpdir, &dir_st) == 0 && S_ISDIR(dir_st.st_mode));
    CHECK(st.st_dev == dir_st.st_dev);

    CHECK(symlink("s", P("sl")) == 0);
    CHECK(lstat(P("sl"), &lst) == 0 && S_ISLNK(lst.st_mode) && lst.st_size == 1);
    struct stat followed;
    CHECK(stat(P("sl"), &followed) == 0 && followed.st_ino == st.st_ino);
    CHECK(fstatat(tmpdir_fd, "sl", &lst, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(lst.st_mode));
    CHECK(fstatat(tmpdir_fd, "sl", &followed, 0) == 0 && S_ISREG(followed.st_mode));
    int fd = open(P("s"), O_RDONLY);
    struct stat by_fd;
    CHECK(fstat(fd, &by_fd) == 0 && by_fd.st_ino == st.st_ino && by_fd.st_dev == st.st_dev);
    /* raw newfstatat: musl turns fstatat(fd, "", AT_EMPTY_PATH) into fstat(fd) */
    CHECK(syscall(SYS_newfstatat, fd, "", &by_fd, AT_EMPTY_PATH) == 0 &&
          by_fd.st_ino == st.st_ino);
    CHECK(fstatat(fd, "", &by_fd, 0) == -1 && errno == ENOENT);
    CHECK(stat(P("nope"), &by_fd) == -1 && errno == ENOENT);

    struct statx_ sx;
    memset(&sx, 0, sizeof sx);
    CHECK(syscall(SYS_statx, tmpdir_fd, "s", 0, STATX_BASIC_STATS_, &sx) == 0);
    CHECK((sx.stx_mask & STATX_BASIC_STATS_) == STATX_BASIC_STATS_);
    CHECK(sx.stx_size == 12 && sx.stx_ino == st.st_ino && sx.stx_nlink == 1);
    CHECK(sx.stx_mode == st.st_mode && sx.stx_uid == st.st_uid);
    CHECK(sx.stx_mtime.tv_sec == st.st_mtim.tv_sec &&
          sx.stx_mtime.tv_nsec == (uint32_t)st.st_mtim.tv_nsec);
    memset(&sx, 0, sizeof sx);
    CHECK(syscall(SYS_statx, fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS_, &sx) == 0 &&
          sx.stx_ino == st.st_ino);
    CHECK(syscall(SYS_statx, tmpdir_fd, "sl", AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS_, &sx) == 0 &&
          S_ISLNK(sx.stx_mode));
    close(fd);

    int p[2];
    REQUIRE(pipe(p) == 0);
    CHECK(fstat(p[0], &st) == 0 && S_ISFIFO(st.st_mode));
    close(p[0]);
    close(p[1]);
    CHECK(stat("/dev/null", &st) == 0 && S_ISCHR(st.st_mode));
    unlink(P("sl"));
    unlink(P("s"));
}

/* ---------------------------------------------------------------- getdents64 */

struct dirent64_ {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

/* Lists a directory with getdents64 and buffers of `bufsize` bytes; names → bitmask. */
static int list_dir(int fd, size_t bufsize, const char *const names[], int n_names,
                    unsigned char types[], uint64_t inos[], int *aligned, int *unknown)
{
    int seen = 0;
    char buf[4096] __attribute__((aligned(8)));
    for (;;) {
        long n = syscall(SYS_getdents64, fd, buf, bufsize);
        if (n <= 0)
            return n < 0 ? -1 : seen;
        for (long off = 0; off < n;) {
            struct dirent64_ *d = (struct dirent64_ *)(buf + off);
            if (d->d_reclen % 8 != 0)
                *aligned = 0;
            int known = 0;
            for (int i = 0; i < n_names; i++) {
                if (strcmp(d->d_name, names[i]) == 0) {
                    if (seen & (1 << i))
                        return -2; /* listed twice */
                    seen |= 1 << i;
                    types[i] = d->d_type;
                    inos[i] = d->d_ino;
                    known = 1;
                }
            }
            if (!known)
                *unknown = 1;
            off += d->d_reclen;
        }
    }
}

static void test_getdents(void)
{
    REQUIRE(mkdir(P("d"), 0755) == 0);
    const char *const names[] = {".", "..", "f0", "f1", "f2", "f3", "f4", "f5", "f6",
                                 "a-rather-long-file-name-to-vary-record-lengths", "sub", "lnk"};
    const int n = 12;
    char path[256];
    for (int i = 2; i < 10; i++) {
        snprintf(path, sizeof path, "%s/d/%s", tmpdir, names[i]);
        REQUIRE(put_file(path, "x") == 0);
    }
    snprintf(path, sizeof path, "%s/d/sub", tmpdir);
    REQUIRE(mkdir(path, 0755) == 0);
    snprintf(path, sizeof path, "%s/d/lnk", tmpdir);
    REQUIRE(symlink("f0", path) == 0);

    int fd = open(P("d"), O_RDONLY | O_DIRECTORY);
    REQUIRE(fd >= 0);
    unsigned char types[12];
    uint64_t inos[12];
    int aligned = 1, unknown = 0;
    int seen = list_dir(fd, 4096, names, n, types, inos, &aligned, &unknown);
    CHECKF(seen == (1 << n) - 1, "seen mask %#x", seen);
    CHECK(aligned);
    CHECK(!unknown);
    /* d_type is exact (or DT_UNKNOWN, which every file system may answer). */
    CHECK(types[2] == DT_REG || types[2] == DT_UNKNOWN);
    CHECK(types[10] == DT_DIR || types[10] == DT_UNKNOWN);
    CHECK(types[11] == DT_LNK || types[11] == DT_UNKNOWN);
    CHECK(types[0] == DT_DIR || types[0] == DT_UNKNOWN);
    struct stat st;
    snprintf(path, sizeof path, "%s/d/f3", tmpdir);
    CHECK(stat(path, &st) == 0 && st.st_ino == inos[5]);
    CHECK(fstat(fd, &st) == 0 && st.st_ino == inos[0]); /* "." is the directory itself */

    /* Exhausted: further calls return 0; a rewind starts over; tiny buffers still work. */
    char buf[512] __attribute__((aligned(8)));
    CHECK(syscall(SYS_getdents64, fd, buf, sizeof buf) == 0);
    CHECK(lseek(fd, 0, SEEK_SET) == 0);
    seen = list_dir(fd, 96, names, n, types, inos, &aligned, &unknown);
    CHECKF(seen == (1 << n) - 1, "seen mask %#x with a 96-byte buffer", seen);
    CHECK(lseek(fd, 0, SEEK_SET) == 0);
    CHECK(syscall(SYS_getdents64, fd, buf, 8) == -1 && errno == EINVAL); /* no entry fits */

    /* A removed entry is not listed by a fresh pass. */
    snprintf(path, sizeof path, "%s/d/f6", tmpdir);
    CHECK(unlink(path) == 0);
    CHECK(lseek(fd, 0, SEEK_SET) == 0);
    seen = list_dir(fd, 4096, names, n, types, inos, &aligned, &unknown);
    CHECK(seen == (((1 << n) - 1) & ~(1 << 8)));
    close(fd);

    fd = open(P("d/f0"), O_RDONLY);
    CHECK(syscall(SYS_getdents64, fd, buf, sizeof buf) == -1 && errno == ENOTDIR);
    close(fd);
    CHECK(syscall(SYS_getdents64, 9999, buf, sizeof buf) == -1 && errno == EBADF);

    /* libc's readdir on top of it. */
    DIR *d = opendir(P("d"));
    int count = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        count++;
    CHECK(d != NULL && count == n - 1);
    if (d)
        closedir(d);
    remove_tree(P("d"));
}

/* ---------------------------------------------------------------- readlink, access */

static void test_readlink_access(void)
{
    CHECK(symlinkat("some/target/path", tmpdir_fd, "rl") == 0);
    char buf[64];
    memset(buf, 'X', sizeof buf);
    CHECK(readlinkat(tmpdir_fd, "rl", buf, sizeof buf) == 16);
    CHECK(memcmp(buf, "some/target/path", 16) == 0 && buf[16] == 'X'); /* no NUL added */
    CHECK(readlink(P("rl"), buf, 4) == 4 && memcmp(buf, "some", 4) == 0); /* truncated */
    REQUIRE(put_file(P("plain"), "p") == 0);
    CHECK(readlink(P("plain"), buf, sizeof buf) == -1 && errno == EINVAL);
    CHECK(readlink(P("none"), buf, sizeof buf) == -1 && errno == ENOENT);
    char self[256];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    CHECK(n > 0 && self[0] == '/');

    CHECK(faccessat(tmpdir_fd, "plain", F_OK, 0) == 0);
    CHECK(access(P("none"), F_OK) == -1 && errno == ENOENT);
    CHECK(chmod(P("plain"), 0644) == 0);
    CHECK(access(P("plain"), R_OK) == 0);
    CHECK(access(P("plain"), X_OK) == -1 && errno == EACCES); /* even for root: no x bit */
    CHECK(chmod(P("plain"), 0755) == 0);
    CHECK(access(P("plain"), X_OK) == 0);
    CHECK(chmod(P("plain"), 0444) == 0);
    if (geteuid() == 0)
        CHECK(access(P("plain"), W_OK) == 0); /* root may write anyway */
    else
        CHECK(access(P("plain"), W_OK) == -1 && errno == EACCES);
    CHECK(access(P("plain/x"), F_OK) == -1 && errno == ENOTDIR);
    unlink(P("rl"));
    unlink(P("plain"));
}

/* ---------------------------------------------------------------- cwd */

static void test_cwd(void)
{
    int original = open(".", O_RDONLY | O_DIRECTORY);
    REQUIRE(original >= 0);
    REQUIRE(mkdir(P("c"), 0755) == 0);
    REQUIRE(put_file(P("c/file"), "x") == 0);

    CHECK(chdir(tmpdir) == 0);
    char cwd[PATH_MAX];
    CHECK(getcwd(cwd, sizeof cwd) != NULL && strcmp(cwd, tmpdir) == 0);
    CHECK(chdir("c") == 0);
    CHECK(getcwd(cwd, sizeof cwd) != NULL && strcmp(cwd, P("c")) == 0);
    CHECK(access("file", F_OK) == 0); /* relative lookups start here */
    CHECK(chdir("..") == 0);
    CHECK(getcwd(cwd, sizeof cwd) != NULL && strcmp(cwd, tmpdir) == 0);
    CHECK(chdir("c/file") == -1 && errno == ENOTDIR);
    CHECK(chdir("nowhere") == -1 && errno == ENOENT);
    CHECK(syscall(SYS_getcwd, cwd, 1) == -1 && errno == ERANGE);
    long len = syscall(SYS_getcwd, cwd, sizeof cwd);
    CHECK(len == (long)strlen(tmpdir) + 1); /* the raw call counts the NUL */

    int c_fd = open(P("c"), O_RDONLY | O_DIRECTORY);
    CHECK(fchdir(c_fd) == 0);
    CHECK(getcwd(cwd, sizeof cwd) != NULL && strcmp(cwd, P("c")) == 0);
    int file_fd = open("file", O_RDONLY);
    CHECK(fchdir(file_fd) == -1 && errno == ENOTDIR);
    close(file_fd);
    close(c_fd);
    CHECK(fchdir(original) == 0);
    close(original);
    remove_tree(P("c"));
}

/* ---------------------------------------------------------------- descriptors */

static void test_dup_fcntl(void)
{
    int fd = open(P("dup"), O_RDWR | O_CREAT | O_TRUNC | O_APPEND, 0600);
    REQUIRE(fd >= 0);
    int d = dup(fd);
    CHECK(d > fd);
    CHECK(write(fd, "12345", 5) == 5);
    CHECK(lseek(d, 0, SEEK_CUR) == 5); /* one open file, one offset */
    CHECK(lseek(d, 1, SEEK_SET) == 1 && lseek(fd, 0, SEEK_CUR) == 1);

    CHECK(fcntl(fd, F_SETFD, FD_CLOEXEC) == 0 && fcntl(fd, F_GETFD) == FD_CLOEXEC);
    int d2 = dup(fd);
    CHECK(fcntl(d2, F_GETFD) == 0); /* the flag belongs to the descriptor, not copied */
    CHECK(dup2(fd, d2) == d2);      /* replaces silently */
    CHECK(dup2(fd, fd) == fd);
    /* raw dup3: musl's wrapper checks some of this itself and ignores unknown flags */
    CHECK(syscall(SYS_dup3, fd, fd, 0) == -1 && errno == EINVAL);
    CHECK(dup3(fd, d2, O_CLOEXEC) == d2 && fcntl(d2, F_GETFD) == FD_CLOEXEC);
    CHECK(syscall(SYS_dup3, fd, d2, 0x40) == -1 && errno == EINVAL);
    CHECK(dup2(9999, d2) == -1 && errno == EBADF);
    CHECK(dup(9999) == -1 && errno == EBADF);

    int fl = fcntl(fd, F_GETFL);
    CHECK((fl & O_ACCMODE) == O_RDWR && (fl & O_APPEND));
    CHECK(fcntl(fd, F_SETFL, fl & ~O_APPEND) == 0);
    CHECK(!(fcntl(d, F_GETFL) & O_APPEND)); /* status flags are shared via the open file */
    CHECK(fcntl(fd, F_SETFL, O_RDONLY) == 0 && (fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDWR);
    int hi = fcntl(fd, F_DUPFD, 40);
    CHECK(hi >= 40 && fcntl(hi, F_GETFD) == 0);
    int hi2 = fcntl(fd, F_DUPFD_CLOEXEC, 40);
    CHECK(hi2 > hi && fcntl(hi2, F_GETFD) == FD_CLOEXEC);
    CHECK(fcntl(9999, F_GETFD) == -1 && errno == EBADF);
    close(hi);
    close(hi2);
    close(d);
    close(d2);

    /* The offset is shared with a forked child, too. */
    CHECK(lseek(fd, 0, SEEK_SET) == 0);
    pid_t pid = fork();
    if (pid == 0)
        _exit(write(fd, "abc", 3) == 3 ? 0 : 1);
    int status;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(lseek(fd, 0, SEEK_CUR) == 3);
    close(fd);
    unlink(P("dup"));
}

/* ---------------------------------------------------------------- pipes */

static volatile sig_atomic_t sigpipe_count;
static void on_sigpipe(int sig)
{
    (void)sig;
    sigpipe_count++;
}

static void test_pipes(void)
{
    int p[2];
    CHECK(pipe2(p, O_CLOEXEC) == 0);
    CHECK(fcntl(p[0], F_GETFD) == FD_CLOEXEC && fcntl(p[1], F_GETFD) == FD_CLOEXEC);
    CHECK((fcntl(p[0], F_GETFL) & O_ACCMODE) == O_RDONLY);
    CHECK((fcntl(p[1], F_GETFL) & O_ACCMODE) == O_WRONLY);
    char buf[256];
    CHECK(write(p[1], "abc", 3) == 3);
    CHECK(read(p[0], buf, sizeof buf) == 3); /* a partial read returns what is there */
    CHECK(write(p[1], "tail", 4) == 4);
    close(p[1]);
    CHECK(read(p[0], buf, sizeof buf) == 4); /* data first... */
    CHECK(read(p[0], buf, sizeof buf) == 0); /* ...then EOF */
    close(p[0]);

    CHECK(pipe2(p, O_NONBLOCK) == 0);
    CHECK(fcntl(p[0], F_GETFL) & O_NONBLOCK);
    CHECK(read(p[0], buf, 1) == -1 && errno == EAGAIN);
    static char chunk[4096];
    memset(chunk, 'c', sizeof chunk);
    long total = 0;
    ssize_t n;
    while ((n = write(p[1], chunk, sizeof chunk)) > 0 && total < (64L << 20))
        total += n;
    CHECK(n == -1 && errno == EAGAIN);
    CHECK(total >= 4096);
    CHECK(read(p[0], buf, sizeof buf) == (ssize_t)sizeof buf);
    close(p[0]);
    close(p[1]);
    CHECK(syscall(SYS_pipe2, p, 0x12345) == -1 && errno == EINVAL); /* raw: musl checks too */

    /* Writing with no reader: EPIPE, and SIGPIPE (ignored / handled / default). */
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    REQUIRE(sigaction(SIGPIPE, &sa, &old) == 0);
    REQUIRE(pipe(p) == 0);
    close(p[0]);
    CHECK(write(p[1], "x", 1) == -1 && errno == EPIPE);
    sa.sa_handler = on_sigpipe;
    REQUIRE(sigaction(SIGPIPE, &sa, NULL) == 0);
    sigpipe_count = 0;
    CHECK(write(p[1], "x", 1) == -1 && errno == EPIPE);
    CHECK(sigpipe_count == 1);
    REQUIRE(sigaction(SIGPIPE, &old, NULL) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGPIPE, SIG_DFL);
        (void)write(p[1], "x", 1);
        _exit(0);
    }
    int status;
    CHECK(waitpid(pid, &status, 0) == pid && WIFSIGNALED(status) && WTERMSIG(status) == SIGPIPE);
    close(p[1]);

    /* Between processes. */
    REQUIRE(pipe(p) == 0);
    pid = fork();
    if (pid == 0) {
        close(p[0]);
        _exit(write(p[1], "from child", 10) == 10 ? 0 : 1);
    }
    close(p[1]);
    size_t got = 0;
    while ((n = read(p[0], buf + got, sizeof buf - got)) > 0)
        got += (size_t)n;
    CHECK(got == 10 && memcmp(buf, "from child", 10) == 0);
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(p[0]);
}

/* ---------------------------------------------------------------- poll and select */

static volatile sig_atomic_t usr1_count;
static void on_usr1(int sig)
{
    (void)sig;
    usr1_count++;
}

static void test_poll_select(void)
{
    int p[2];
    REQUIRE(pipe(p) == 0);
    struct pollfd pf[2] = {{p[0], POLLIN, 0}, {p[1], POLLOUT, 0}};
    CHECK(poll(pf, 1, 0) == 0 && pf[0].revents == 0);
    CHECK(poll(&pf[1], 1, 0) == 1 && pf[1].revents == POLLOUT);
    int64_t start = now_ns();
    CHECK(poll(pf, 1, 10) == 0);
    CHECK(now_ns() - start >= 10 * 1000000L);
    CHECK(write(p[1], "x", 1) == 1);
    CHECK(poll(pf, 2, -1) == 2 && pf[0].revents == POLLIN && pf[1].revents == POLLOUT);

    struct pollfd odd[2] = {{-1, POLLIN, 0}, {9999, POLLIN, 0}};
    CHECK(poll(odd, 2, 0) == 1 && odd[0].revents == 0 && odd[1].revents == POLLNVAL);

    /* select: readiness, the remaining-time write-back, EBADF. */
    fd_set rd, wr;
    FD_ZERO(&rd);
    FD_ZERO(&wr);
    FD_SET(p[0], &rd);
    FD_SET(p[1], &wr);
    struct timeval tv = {0, 0};
    int maxfd = p[0] > p[1] ? p[0] : p[1];
    CHECK(select(maxfd + 1, &rd, &wr, NULL, &tv) == 2 && FD_ISSET(p[0], &rd) &&
          FD_ISSET(p[1], &wr));
    char c;
    CHECK(read(p[0], &c, 1) == 1);
    FD_ZERO(&rd);
    FD_SET(p[0], &rd);
    tv.tv_sec = 0;
    tv.tv_usec = 10000;
    start = now_ns();
    /* raw select: musl passes the kernel a copy of the timeout */
    CHECK(syscall(SYS_select, p[0] + 1, &rd, NULL, NULL, &tv) == 0 && !FD_ISSET(p[0], &rd));
    CHECK(now_ns() - start >= 10 * 1000000L);
    CHECK(tv.tv_sec == 0 && tv.tv_usec == 0); /* Linux: the time left */
    FD_ZERO(&rd);
    FD_SET(20, &rd);
    tv.tv_usec = 0;
    CHECK(select(21, &rd, NULL, NULL, &tv) == -1 && errno == EBADF);

    /* Hang-up and error conditions. */
    close(p[1]);
    pf[0].revents = 0;
    CHECK(poll(pf, 1, 0) == 1 && (pf[0].revents & POLLHUP));
    FD_ZERO(&rd);
    FD_SET(p[0], &rd);
    tv.tv_usec = 0;
    CHECK(select(p[0] + 1, &rd, NULL, NULL, &tv) == 1); /* EOF counts as readable */
    close(p[0]);
    REQUIRE(pipe(p) == 0);
    close(p[0]);
    struct pollfd w = {p[1], POLLOUT, 0};
    CHECK(poll(&w, 1, 0) == 1 && (w.revents & POLLERR));
    close(p[1]);

    /* ppoll / pselect: the temporary mask lets a pending signal in → EINTR. */
    REQUIRE(pipe(p) == 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    REQUIRE(sigaction(SIGUSR1, &sa, NULL) == 0);
    sigset_t usr1, old, during;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigprocmask(SIG_BLOCK, &usr1, &old);
    sigprocmask(SIG_BLOCK, NULL, &during);
    sigdelset(&during, SIGUSR1);
    usr1_count = 0;
    raise(SIGUSR1);
    struct pollfd in = {p[0], POLLIN, 0};
    struct timespec ts = {5, 0};
    CHECK(ppoll(&in, 1, &ts, &during) == -1 && errno == EINTR);
    CHECK(usr1_count == 1);
    sigset_t now;
    sigprocmask(SIG_BLOCK, NULL, &now);
    CHECK(sigismember(&now, SIGUSR1)); /* the old mask is back */
    raise(SIGUSR1);
    FD_ZERO(&rd);
    FD_SET(p[0], &rd);
    CHECK(pselect(p[0] + 1, &rd, NULL, NULL, &ts, &during) == -1 && errno == EINTR);
    CHECK(usr1_count == 2);
    ts.tv_sec = 0;
    ts.tv_nsec = 10 * 1000000L;
    start = now_ns();
    CHECK(ppoll(&in, 1, &ts, NULL) == 0);
    CHECK(now_ns() - start >= 10 * 1000000L);
    CHECK(write(p[1], "y", 1) == 1);
    ts.tv_sec = 5;
    FD_ZERO(&rd);
    FD_SET(p[0], &rd);
    CHECK(pselect(p[0] + 1, &rd, NULL, NULL, &ts, &during) == 1 && FD_ISSET(p[0], &rd));
    sigprocmask(SIG_SETMASK, &old, NULL);
    signal(SIGUSR1, SIG_DFL);
    close(p[0]);
    close(p[1]);

    /* Regular files and /dev/null are always ready. */
    int nul = open("/dev/null", O_RDWR);
    struct pollfd dn = {nul, POLLIN | POLLOUT, 0};
    CHECK(poll(&dn, 1, 0) == 1 && dn.revents == (POLLIN | POLLOUT));
    close(nul);
}

/* ---------------------------------------------------------------- directory operations */

static void test_dir_ops(void)
{
    CHECK(mkdirat(tmpdir_fd, "m", 0777) == 0);
    struct stat st;
    CHECK(stat(P("m"), &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0755);
    CHECK(mkdir(P("m"), 0755) == -1 && errno == EEXIST);
    CHECK(mkdir(P("nope/m"), 0755) == -1 && errno == ENOENT);
    REQUIRE(put_file(P("m/f"), "f") == 0);
    CHECK(rmdir(P("m")) == -1 && errno == ENOTEMPTY);
    CHECK(rmdir(P("m/f")) == -1 && errno == ENOTDIR);
    CHECK(unlink(P("m")) == -1 && errno == EISDIR);
    CHECK(unlinkat(tmpdir_fd, "m", 0) == -1 && errno == EISDIR);
    CHECK(rmdir(P("m/.")) == -1 && errno == EINVAL);
    CHECK(unlink(P("m/none")) == -1 && errno == ENOENT);

    /* rename: replace, NOREPLACE, and the structural errors. */
    REQUIRE(put_file(P("r1"), "one") == 0);
    REQUIRE(put_file(P("r2"), "two") == 0);
    CHECK(syscall(SYS_renameat2, tmpdir_fd, "r1", tmpdir_fd, "r2", RENAME_NOREPLACE) == -1 &&
          errno == EEXIST);
    CHECK(syscall(SYS_renameat2, tmpdir_fd, "r1", tmpdir_fd, "r3", RENAME_NOREPLACE) == 0);
    CHECK(access(P("r1"), F_OK) == -1 && file_is(P("r3"), "one"));
    CHECK(rename(P("r3"), P("r2")) == 0); /* replaces atomically */
    CHECK(file_is(P("r2"), "one") && access(P("r3"), F_OK) == -1);
    CHECK(rename(P("r2"), P("r2")) == 0);
    CHECK(rename(P("r2"), P("m")) == -1 && errno == EISDIR);
    CHECK(rename(P("m"), P("r2")) == -1 && errno == ENOTDIR);
    CHECK(rename(P("m"), P("m/inside")) == -1 && errno == EINVAL);
    CHECK(rename(P("none"), P("r9")) == -1 && errno == ENOENT);
    CHECK(syscall(SYS_renameat2, tmpdir_fd, "r2", tmpdir_fd, "r4", 0x100) == -1 &&
          errno == EINVAL);
    CHECK(mkdir(P("e"), 0755) == 0);
    CHECK(rename(P("e"), P("m")) == -1 && (errno == ENOTEMPTY || errno == EEXIST));
    CHECK(mkdir(P("e2"), 0755) == 0);
    CHECK(rename(P("e"), P("e2")) == 0); /* over an empty directory */
    CHECK(stat(P("e2"), &st) == 0 && S_ISDIR(st.st_mode) && access(P("e"), F_OK) == -1);
    CHECK(rename(P("m/f"), P("moved")) == 0 && file_is(P("moved"), "f"));
    CHECK(unlinkat(tmpdir_fd, "m", AT_REMOVEDIR) == 0);
    CHECK(rmdir(P("e2")) == 0);

    /* symlinkat / linkat. */
    CHECK(symlinkat("moved", tmpdir_fd, "sym") == 0);
    CHECK(symlinkat("x", tmpdir_fd, "sym") == -1 && errno == EEXIST);
    CHECK(file_is(P("sym"), "f"));
    CHECK(symlink("loop2", P("loop1")) == 0 && symlink("loop1", P("loop2")) == 0);
    CHECK(open(P("loop1"), O_RDONLY) == -1 && errno == ELOOP);
    CHECK(linkat(tmpdir_fd, "moved", tmpdir_fd, "hard", 0) == 0);
    struct stat a, b;
    CHECK(stat(P("moved"), &a) == 0 && stat(P("hard"), &b) == 0);
    CHECK(a.st_ino == b.st_ino && a.st_nlink == 2);
    CHECK(link(P("moved"), P("hard")) == -1 && errno == EEXIST);
    CHECK(mkdir(P("dd"), 0755) == 0);
    CHECK(link(P("dd"), P("dd2")) == -1 && errno == EPERM);
    CHECK(unlink(P("moved")) == 0);
    CHECK(stat(P("hard"), &b) == 0 && b.st_nlink == 1 && file_is(P("hard"), "f"));
    CHECK(linkat(tmpdir_fd, "sym", tmpdir_fd, "symhard", 0) == 0); /* links the symlink itself */
    CHECK(lstat(P("symhard"), &b) == 0 && S_ISLNK(b.st_mode));

    /* Modes, owners, times, sizes. */
    CHECK(fchmodat(tmpdir_fd, "hard", 0751, 0) == 0);
    CHECK(stat(P("hard"), &st) == 0 && (st.st_mode & 07777) == 0751);
    int fd = open(P("hard"), O_RDWR);
    CHECK(fchmod(fd, 0600) == 0 && fstat(fd, &st) == 0 && (st.st_mode & 07777) == 0600);
    CHECK(fchownat(tmpdir_fd, "hard", getuid(), getgid(), 0) == 0);
    CHECK(fchown(fd, (uid_t)-1, (gid_t)-1) == 0);

    struct timespec times[2] = {{1000000000, 0}, {1100000000, 0}};
    CHECK(utimensat(tmpdir_fd, "hard", times, 0) == 0);
    CHECK(stat(P("hard"), &st) == 0 && st.st_atim.tv_sec == 1000000000 &&
          st.st_mtim.tv_sec == 1100000000);
    struct timespec omit_now[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};
    time_t before = time(NULL);
    CHECK(utimensat(AT_FDCWD, P("hard"), omit_now, 0) == 0);
    CHECK(stat(P("hard"), &st) == 0 && st.st_atim.tv_sec == 1000000000);
    CHECK(st.st_mtim.tv_sec >= before - 1 && st.st_mtim.tv_sec <= time(NULL) + 1);
    CHECK(futimens(fd, times) == 0 && fstat(fd, &st) == 0 && st.st_mtim.tv_sec == 1100000000);
    struct timespec bad[2] = {{0, 1000000000L}, {0, 0}};
    CHECK(utimensat(AT_FDCWD, P("hard"), bad, 0) == -1 && errno == EINVAL);

    CHECK(ftruncate(fd, 10000) == 0 && fstat(fd, &st) == 0 && st.st_size == 10000);
    char buf[16];
    CHECK(pread(fd, buf, 4, 5000) == 4 && memcmp(buf, "\0\0\0\0", 4) == 0);
    CHECK(pread(fd, buf, 1, 0) == 1 && buf[0] == 'f');
    CHECK(ftruncate(fd, 0) == 0 && fstat(fd, &st) == 0 && st.st_size == 0);
    CHECK(ftruncate(fd, -1) == -1 && errno == EINVAL);
    CHECK(truncate(P("hard"), 3) == 0 && stat(P("hard"), &st) == 0 && st.st_size == 3);
    CHECK(fsync(fd) == 0 && fdatasync(fd) == 0);
    close(fd);
    fd = open(P("hard"), O_RDONLY);
    CHECK(ftruncate(fd, 0) == -1 && (errno == EINVAL || errno == EBADF));
    close(fd);
    sync();

    struct statfs sfs;
    CHECK(statfs(tmpdir, &sfs) == 0 && sfs.f_bsize > 0 && sfs.f_namelen >= 255);
    CHECK(fstatfs(tmpdir_fd, &sfs) == 0);

    const char *leftovers[] = {"r2", "sym", "loop1", "loop2", "hard", "symhard", "dd"};
    for (size_t i = 0; i < sizeof leftovers / sizeof leftovers[0]; i++)
        remove_tree(P(leftovers[i]));
}

/* ---------------------------------------------------------------- devices, ttys */

static void test_devices(void)
{
    char buf[4096];
    int fd = open("/dev/null", O_RDWR);
    CHECK(fd >= 0);
    CHECK(read(fd, buf, sizeof buf) == 0);
    CHECK(write(fd, buf, sizeof buf) == (ssize_t)sizeof buf);
    /* mem(4): the memory devices take positions (lseek answers 0), unlike a terminal. */
    CHECK(lseek(fd, 100, SEEK_SET) == 0);
    CHECK(lseek(fd, 0, SEEK_END) == 0);
    CHECK(pread(fd, buf, sizeof buf, 4096) == 0);
    CHECK(pwrite(fd, buf, 10, 1 << 20) == 10);
    CHECK(isatty(fd) == 0);
    close(fd);

    fd = open("/dev/zero", O_RDWR);
    CHECK(fd >= 0);
    memset(buf, 1, sizeof buf);
    CHECK(read(fd, buf, sizeof buf) == (ssize_t)sizeof buf);
    int zero = 1;
    for (size_t i = 0; i < sizeof buf; i++)
        zero &= buf[i] == 0;
    CHECK(zero);
    CHECK(write(fd, "x", 1) == 1);
    memset(buf, 1, 16);
    CHECK(pread(fd, buf, 16, 12345) == 16 && buf[0] == 0 && buf[15] == 0);
    CHECK(lseek(fd, 7, SEEK_CUR) == 0);
    close(fd);

    fd = open("/dev/urandom", O_RDONLY);
    CHECK(fd >= 0);
    unsigned char r1[32], r2[32];
    CHECK(read(fd, r1, sizeof r1) == (ssize_t)sizeof r1);
    CHECK(read(fd, r2, sizeof r2) == (ssize_t)sizeof r2);
    CHECK(memcmp(r1, r2, sizeof r1) != 0);
    close(fd);

    int p[2];
    REQUIRE(pipe(p) == 0);
    errno = 0;
    CHECK(isatty(p[0]) == 0 && errno == ENOTTY);
    struct winsize ws;
    CHECK(ioctl(p[0], TIOCGWINSZ, &ws) == -1 && errno == ENOTTY);
    struct termios tio;
    CHECK(tcgetattr(p[1], &tio) == -1 && errno == ENOTTY);
    close(p[0]);
    close(p[1]);
    REQUIRE(put_file(P("t"), "t") == 0);
    fd = open(P("t"), O_RDONLY);
    errno = 0;
    CHECK(isatty(fd) == 0 && errno == ENOTTY);
    close(fd);
    unlink(P("t"));
}

/* ------------------------------------------------------------ threads */

enum { MT_THREADS = 2, MT_ROUNDS = 20, MT_STRIPE = 40000 };

struct mt_worker {
    int id;
    int big_fd;
    int errors;     /* failures seen by the thread (CHECK is not thread-safe) */
    char what[128]; /* the first one */
};

static void mt_fail(struct mt_worker *w, const char *what, int round)
{
    if (w->errors++ == 0)
        snprintf(w->what, sizeof w->what, "%s (round %d, errno %d)", what, round, errno);
}

static void *mt_worker_main(void *arg)
{
    struct mt_worker *w = arg;
    static char data[MT_THREADS][20000], back[MT_THREADS][MT_STRIPE];
    static char stripe[MT_THREADS][MT_STRIPE];
    char path[256], path2[256];
    for (int i = 0; i < MT_STRIPE; i++)
        stripe[w->id][i] = (char)(i * 31 + w->id * 7);
    for (int round = 0; round < MT_ROUNDS; round++) {
        snprintf(path, sizeof path, "%s/mt_t%d_%d", tmpdir, w->id, round);
        snprintf(path2, sizeof path2, "%s/mt_r%d_%d", tmpdir, w->id, round);
        size_t len = 5000 + (size_t)round * 700;
        for (size_t i = 0; i < len; i++)
            data[w->id][i] = (char)(i + (size_t)w->id + (size_t)round);
        int fd = open(path, O_CREAT | O_EXCL | O_RDWR, 0644);
        if (fd < 0) {
            mt_fail(w, "create", round);
            continue;
        }
        if (write(fd, data[w->id], len) != (ssize_t)len)
            mt_fail(w, "write", round);
        if (pread(fd, back[w->id], len, 0) != (ssize_t)len || memcmp(back[w->id], data[w->id], len))
            mt_fail(w, "read back", round);
        close(fd);
        if (rename(path, path2))
            mt_fail(w, "rename", round);
        if (round % 2 == 0 && unlink(path2))
            mt_fail(w, "unlink", round);
        off_t at = (off_t)w->id * MT_STRIPE;
        if (pwrite(w->big_fd, stripe[w->id], MT_STRIPE, at) != MT_STRIPE)
            mt_fail(w, "pwrite stripe", round);
        if (pread(w->big_fd, back[w->id], MT_STRIPE, at) != MT_STRIPE ||
            memcmp(back[w->id], stripe[w->id], MT_STRIPE))
            mt_fail(w, "stripe changed under it", round);
    }
    return NULL;
}

static void test_threads_share_files(void)
{
    int big = open(P("mt_big"), O_CREAT | O_EXCL | O_RDWR, 0644);
    REQUIRE(big >= 0);
    struct mt_worker w[MT_THREADS];
    pthread_t th[MT_THREADS];
    for (int t = 0; t < MT_THREADS; t++) {
        w[t] = (struct mt_worker){.id = t, .big_fd = big};
        REQUIRE(pthread_create(&th[t], NULL, mt_worker_main, &w[t]) == 0);
    }
    for (int t = 0; t < MT_THREADS; t++) {
        pthread_join(th[t], NULL);
        CHECKF(w[t].errors == 0, "thread %d: %d failures, first: %s", t, w[t].errors, w[t].what);
    }
    struct stat st;
    CHECK(fstat(big, &st) == 0 && st.st_size == (off_t)MT_THREADS * MT_STRIPE);
    static char buf[MT_THREADS * MT_STRIPE];
    CHECK(pread(big, buf, sizeof buf, 0) == (ssize_t)sizeof buf);
    int right = 1;
    for (int t = 0; t < MT_THREADS; t++)
        for (int i = 0; i < MT_STRIPE; i++)
            right &= buf[t * MT_STRIPE + i] == (char)(i * 31 + t * 7);
    CHECK(right);
    close(big);
    CHECK(unlink(P("mt_big")) == 0);
    int left = 0;
    for (int t = 0; t < MT_THREADS; t++)
        for (int round = 0; round < MT_ROUNDS; round++) {
            char name[64];
            snprintf(name, sizeof name, "mt_r%d_%d", t, round);
            if (stat(P(name), &st) == 0) {
                left++;
                CHECK(st.st_size == 5000 + round * 700 && round % 2 == 1);
                unlink(P(name));
            }
        }
    CHECK(left == MT_THREADS * MT_ROUNDS / 2);
}

int main(void)
{
    vktest_reset_signals();
    umask(022);
    strcpy(tmpdir, "/tmp/vkt.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        CHECK(!"mkdtemp");
        vktest_done();
    }
    tmpdir_fd = open(tmpdir, O_RDONLY | O_DIRECTORY);
    REQUIRE(tmpdir_fd >= 0);

    test_open_flags();
    test_read_write();
    test_stat();
    test_getdents();
    test_readlink_access();
    test_cwd();
    test_dup_fcntl();
    test_pipes();
    test_poll_select();
    test_dir_ops();
    test_devices();
    test_threads_share_files();

    close(tmpdir_fd);
    CHECK(rmdir(tmpdir) == 0); /* every test cleaned up after itself */
    if (access(tmpdir, F_OK) == 0)
        remove_tree(tmpdir);
    vktest_done();
}
