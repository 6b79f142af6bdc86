/*
 * t_fsabi — the file system calls' argument rules: each call's flag argument refuses bits it
 * does not define with EINVAL (and open(2) ignores them, as Linux does), and the structures
 * they fill.
 *
 * Covers: unknown flags of newfstatat, statx (and AT_STATX_FORCE_SYNC with
 * AT_STATX_DONT_SYNC, a reserved mask bit), faccessat2, fchownat, utimensat, linkat,
 * unlinkat, renameat2, umount2, pipe2, dup3 — EINVAL even before a bad path is looked at
 * where Linux checks the flags first; open(2) with an unknown flag bit works; statx's
 * stx_mnt_id is the mount's number in /proc/self/mountinfo and its device numbers match
 * stat's; fstatat with AT_EMPTY_PATH; getdents64 records (d_reclen a multiple of 8, names
 * NUL-terminated, d_off increasing); readv/writev with more than 1024 iovecs (EINVAL) and a
 * length past SSIZE_MAX (EINVAL).
 */
#include "vktest.h"

#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>

#ifndef AT_STATX_FORCE_SYNC
#define AT_STATX_FORCE_SYNC 0x2000
#define AT_STATX_DONT_SYNC 0x4000
#endif
#ifndef STATX_BASIC_STATS
#define STATX_BASIC_STATS 0x7ff
#endif
#ifndef STATX_MNT_ID
#define STATX_MNT_ID 0x1000
#endif
#ifndef AT_EACCESS
#define AT_EACCESS 0x200
#endif
#ifndef SYS_faccessat2
#define SYS_faccessat2 439
#endif

static char dir[64];
static int dfd = -1;

static void test_flags(void)
{
    struct stat st;
    char buf[512];
    CHECK(syscall(SYS_newfstatat, dfd, "f", &st, 0x80000) == -1 && errno == EINVAL);
    CHECK(syscall(SYS_newfstatat, dfd, "f", &st, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT) == 0);
    CHECK(syscall(SYS_newfstatat, dfd, "", &st, AT_EMPTY_PATH) == 0 && S_ISDIR(st.st_mode));
    CHECK(syscall(SYS_statx, dfd, "f", 0x80000, STATX_BASIC_STATS, buf) == -1 && errno == EINVAL);
    CHECK(syscall(SYS_statx, dfd, "f", AT_STATX_FORCE_SYNC | AT_STATX_DONT_SYNC, STATX_BASIC_STATS, buf) == -1 &&
          errno == EINVAL);
    CHECK(syscall(SYS_statx, dfd, "f", 0, 0x80000000u, buf) == -1 && errno == EINVAL);
    CHECK(syscall(SYS_statx, dfd, "f", AT_STATX_DONT_SYNC, STATX_BASIC_STATS, buf) == 0);
    CHECK(syscall(SYS_faccessat2, dfd, "f", R_OK, 0x80000) == -1 && errno == EINVAL);
    CHECK(syscall(SYS_faccessat2, dfd, "f", R_OK, AT_EACCESS) == 0);
    CHECK(syscall(SYS_fchownat, dfd, "f", -1, -1, 0x80000) == -1 && errno == EINVAL);
    CHECK(syscall(SYS_fchownat, dfd, "f", -1, -1, AT_SYMLINK_NOFOLLOW) == 0);
    CHECK(syscall(SYS_utimensat, dfd, "f", NULL, 0x80000) == -1 && errno == EINVAL);
    /* Flags before names: EINVAL even for a path that is not there. */
    CHECK(syscall(SYS_linkat, dfd, "missing", dfd, "g", 0x80000) == -1 && errno == EINVAL);
    CHECK(syscall(SYS_unlinkat, dfd, "missing", 0x80000) == -1 && errno == EINVAL);
    CHECK(syscall(SYS_renameat2, dfd, "missing", dfd, "g", 0x80000) == -1 && errno == EINVAL);
    CHECK(syscall(SYS_renameat2, dfd, "", dfd, "g", 0x80000) == -1 && errno == EINVAL);
    CHECK(syscall(SYS_umount2, "/nonexistent-mount-point", 0x80000) == -1 && errno == EINVAL);
    int p[2];
    CHECK(syscall(SYS_pipe2, p, 0x1) == -1 && errno == EINVAL);
    CHECK(syscall(SYS_pipe2, p, O_CLOEXEC | O_NONBLOCK) == 0);
    CHECK(fcntl(p[0], F_GETFD) == FD_CLOEXEC && (fcntl(p[1], F_GETFL) & O_NONBLOCK));
    CHECK(syscall(SYS_dup3, p[0], 30, O_NONBLOCK) == -1 && errno == EINVAL);
    CHECK(syscall(SYS_dup3, p[0], 30, O_CLOEXEC) == 30 && fcntl(30, F_GETFD) == FD_CLOEXEC);
    close(30);
    close(p[0]);
    close(p[1]);
    /* open(2) ignores bits it does not know (here bit 27, never an O_ flag on x86-64). */
    int fd = openat(dfd, "f", O_RDONLY | (1 << 27));
    CHECK(fd >= 0);
    if (fd >= 0)
        close(fd);
}

struct statx_ts {
    int64_t tv_sec;
    uint32_t tv_nsec;
    int32_t reserved;
};
struct statx_buf {
    uint32_t mask, blksize;
    uint64_t attributes;
    uint32_t nlink, uid, gid;
    uint16_t mode, spare0;
    uint64_t ino, size, blocks, attributes_mask;
    struct statx_ts atime, btime, ctime, mtime;
    uint32_t rdev_major, rdev_minor, dev_major, dev_minor;
    uint64_t mnt_id;
    uint64_t spare[12];
};

/* The mount number /proc/self/mountinfo gives the mount on `target`. */
static long mount_id_of(const char *target)
{
    static char text[65536];
    int fd = open("/proc/self/mountinfo", O_RDONLY);
    ssize_t n = 0, r;
    while (fd >= 0 && (r = read(fd, text + n, sizeof text - 1 - (size_t)n)) > 0)
        n += r;
    text[n > 0 ? n : 0] = 0;
    if (fd >= 0)
        close(fd);
    long found = -1;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        long id, parent;
        char where[256];
        if (sscanf(line, "%ld %ld %*s %*s %255s", &id, &parent, where) == 3 && strcmp(where, target) == 0)
            found = id; /* the last one is the one on top */
    }
    return found;
}

static void test_structs(void)
{
    struct statx_buf sx;
    struct stat st;
    memset(&sx, 0, sizeof sx);
    CHECK(syscall(SYS_statx, AT_FDCWD, "/proc", 0, STATX_BASIC_STATS | STATX_MNT_ID, &sx) == 0);
    CHECK((sx.mask & STATX_MNT_ID) && (long)sx.mnt_id == mount_id_of("/proc"));
    CHECK(stat("/proc", &st) == 0 && sx.dev_major == major(st.st_dev) && sx.dev_minor == minor(st.st_dev));
    CHECK(syscall(SYS_statx, dfd, "f", 0, STATX_BASIC_STATS, &sx) == 0);
    CHECK(fstatat(dfd, "f", &st, 0) == 0 && sx.ino == st.st_ino && sx.size == (uint64_t)st.st_size &&
          sx.mode == st.st_mode && sx.mtime.tv_sec == st.st_mtim.tv_sec && sx.mtime.tv_nsec == st.st_mtim.tv_nsec);

    /* getdents64 records. */
    char names[3][32] = {"a", "bbbbbbbbbbbbbbbbbbbbb", "ccccccc"};
    for (int i = 0; i < 3; i++) {
        int fd = openat(dfd, names[i], O_CREAT | O_WRONLY, 0644);
        CHECK(fd >= 0);
        close(fd);
    }
    int d = openat(dfd, ".", O_RDONLY | O_DIRECTORY);
    char buf[4096];
    long n = syscall(SYS_getdents64, d, buf, sizeof buf);
    CHECK(n > 0);
    int seen = 0, sane = 1;
    int64_t last_off = 0;
    for (long off = 0; off < n;) {
        uint64_t ino;
        int64_t doff;
        unsigned short reclen;
        memcpy(&ino, buf + off, 8);
        memcpy(&doff, buf + off + 8, 8);
        memcpy(&reclen, buf + off + 16, 2);
        const char *name = buf + off + 19;
        if (reclen % 8 || reclen < 24 || (size_t)(19 + strlen(name) + 1) > reclen || doff <= last_off)
            sane = 0;
        for (int i = 0; i < 3; i++)
            seen += strcmp(name, names[i]) == 0;
        last_off = doff;
        off += reclen;
    }
    CHECK(sane && seen == 3);
    close(d);
    for (int i = 0; i < 3; i++)
        CHECK(unlinkat(dfd, names[i], 0) == 0);
}

static void test_iovecs(void)
{
    int fd = openat(dfd, "f", O_RDWR);
    CHECK(fd >= 0);
    static struct iovec many[1025];
    static char byte;
    for (int i = 0; i < 1025; i++) {
        many[i].iov_base = &byte;
        many[i].iov_len = 1;
    }
    CHECK(writev(fd, many, 1025) == -1 && errno == EINVAL);
    CHECK(writev(fd, many, 1024) == 1024);
    struct iovec big[1] = {{&byte, (size_t)SSIZE_MAX + 1}}; /* negative as an ssize_t */
    CHECK(readv(fd, big, 1) == -1 && errno == EINVAL);
    close(fd);
}

int main(void)
{
    vktest_reset_signals();
    umask(022);
    strcpy(dir, "/tmp/vka.XXXXXX");
    if (!mkdtemp(dir)) {
        CHECK(!"mkdtemp");
        vktest_done();
    }
    dfd = open(dir, O_RDONLY | O_DIRECTORY);
    REQUIRE(dfd >= 0);
    int fd = openat(dfd, "f", O_CREAT | O_WRONLY, 0644);
    REQUIRE(fd >= 0 && write(fd, "data", 4) == 4);
    close(fd);
    test_flags();
    test_structs();
    test_iovecs();
    CHECK(unlinkat(dfd, "f", 0) == 0);
    close(dfd);
    CHECK(rmdir(dir) == 0);
    vktest_done();
}
