/*
 * t_chattr — inode flags (FS_IOC_GETFLAGS/FS_IOC_SETFLAGS, chattr(1)) and what the immutable
 * and append-only flags forbid: writing opens, truncation, unlink, rename, link, chmod,
 * chown, utimes, xattrs (EPERM); an append-only file opens for appending only and keeps
 * O_APPEND; an append-only directory takes new names but loses none, an immutable one takes
 * none; statx's attributes; who may set them (the owner; CAP_LINUX_IMMUTABLE for i and a);
 * ENOTTY where a file system keeps no flags.
 */
#include "vktest.h"

#include <fcntl.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <sys/xattr.h>

#define GETFLAGS 0x80086601u
#define SETFLAGS 0x40086602u
#define FL_IMMUTABLE 0x10
#define FL_APPEND 0x20
#define FL_NODUMP 0x40
#define FL_NOATIME 0x80
#define OURS (FL_IMMUTABLE | FL_APPEND | FL_NODUMP | FL_NOATIME)

static char dir[256];

#define P(name) vktest_path(dir, name)

/* The flags of `path` (-1 on error). */
static int getfl(const char *path)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK);
    if (fd < 0)
        return -1;
    int fl = 0;
    int r = ioctl(fd, GETFLAGS, &fl);
    close(fd);
    return r == 0 ? fl : -1;
}

/* Set `on` and clear `off` among the flags of `path`: 0, or -1 with errno. */
static int chattr(const char *path, int on, int off)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK);
    if (fd < 0)
        return -1;
    int fl = 0;
    int r = ioctl(fd, GETFLAGS, &fl);
    if (r == 0) {
        fl = (fl | on) & ~off;
        r = ioctl(fd, SETFLAGS, &fl);
    }
    int e = errno;
    close(fd);
    errno = e;
    return r;
}

/* statx's stx_attributes and stx_attributes_mask of `path` (musl has no statx(3)). */
static void attributes(const char *path, uint64_t *attr, uint64_t *mask)
{
    unsigned char sx[256] __attribute__((aligned(8)));
    *attr = *mask = 0;
    if (syscall(SYS_statx, AT_FDCWD, path, 0, 0x7ff, sx) == 0) {
        memcpy(attr, sx + 8, 8);
        memcpy(mask, sx + 0x38, 8);
    }
}

static void test_flags(void)
{
    int fd = open(P("f"), O_CREAT | O_WRONLY, 0644);
    REQUIRE(fd >= 0);
    close(fd);
    int fl = getfl(P("f"));
    CHECK(fl >= 0 && (fl & OURS) == 0);
    CHECK(chattr(P("f"), FL_NODUMP, 0) == 0);
    CHECK((getfl(P("f")) & OURS) == FL_NODUMP);
    uint64_t attr, mask;
    attributes(P("f"), &attr, &mask);
    CHECK((attr & 0x40) && (mask & 0x70) == 0x70); /* STATX_ATTR_NODUMP; APPEND|IMMUTABLE|NODUMP known */
    CHECK(chattr(P("f"), 0, FL_NODUMP) == 0 && (getfl(P("f")) & OURS) == 0);
    /* Files without flags: ENOTTY. */
    int p[2];
    CHECK(pipe(p) == 0);
    CHECK(ioctl(p[0], GETFLAGS, &fl) == -1 && errno == ENOTTY);
    close(p[0]);
    close(p[1]);
    fd = open("/proc/self/status", O_RDONLY);
    CHECK(fd >= 0 && ioctl(fd, GETFLAGS, &fl) == -1 && errno == ENOTTY);
    close(fd);
    fd = open(P("f"), O_RDONLY);
    CHECK(ioctl(fd, GETFLAGS, (void *)8) == -1 && errno == EFAULT);
    close(fd);
}

static void test_immutable(void)
{
    int fd = open(P("i"), O_CREAT | O_WRONLY, 0644);
    REQUIRE(fd >= 0 && write(fd, "data", 4) == 4);
    close(fd);
    CHECK(chattr(P("i"), FL_IMMUTABLE, 0) == 0);
    uint64_t attr, mask;
    attributes(P("i"), &attr, &mask);
    CHECK(attr & 0x10);
    CHECK(open(P("i"), O_WRONLY) == -1 && errno == EPERM);
    CHECK(open(P("i"), O_RDWR | O_APPEND) == -1 && errno == EPERM);
    fd = open(P("i"), O_RDONLY);
    CHECK(fd >= 0);
    close(fd);
    CHECK(truncate(P("i"), 0) == -1 && errno == EPERM);
    CHECK(unlink(P("i")) == -1 && errno == EPERM);
    CHECK(rename(P("i"), P("i2")) == -1 && errno == EPERM);
    CHECK(link(P("i"), P("i3")) == -1 && errno == EPERM);
    CHECK(chmod(P("i"), 0600) == -1 && errno == EPERM);
    CHECK(chown(P("i"), 1, 1) == -1 && errno == EPERM);
    CHECK(utimes(P("i"), NULL) == -1 && errno == EPERM);
    CHECK(setxattr(P("i"), "user.x", "v", 1, 0) == -1 && errno == EPERM);
    /* Flags stay changeable (by root); taking it off restores everything. */
    CHECK(chattr(P("i"), 0, FL_IMMUTABLE) == 0);
    CHECK(chmod(P("i"), 0600) == 0);
    CHECK(unlink(P("i")) == 0);
}

static void test_append(void)
{
    int fd = open(P("a"), O_CREAT | O_WRONLY, 0644);
    REQUIRE(fd >= 0 && write(fd, "ab", 2) == 2);
    close(fd);
    CHECK(chattr(P("a"), FL_APPEND, 0) == 0);
    CHECK(open(P("a"), O_WRONLY) == -1 && errno == EPERM);
    CHECK(open(P("a"), O_WRONLY | O_APPEND | O_TRUNC) == -1 && errno == EPERM);
    fd = open(P("a"), O_WRONLY | O_APPEND);
    CHECK(fd >= 0 && write(fd, "cd", 2) == 2);
    CHECK(fcntl(fd, F_SETFL, 0) == -1 && errno == EPERM);
    CHECK(ftruncate(fd, 0) == -1 && errno == EPERM);
    close(fd);
    struct stat st;
    CHECK(stat(P("a"), &st) == 0 && st.st_size == 4);
    CHECK(truncate(P("a"), 0) == -1 && errno == EPERM);
    CHECK(unlink(P("a")) == -1 && errno == EPERM);
    CHECK(chmod(P("a"), 0600) == -1 && errno == EPERM);
    CHECK(chattr(P("a"), 0, FL_APPEND) == 0);
    CHECK(unlink(P("a")) == 0);
}

static void test_directories(void)
{
    REQUIRE(mkdir(P("ad"), 0755) == 0);
    int fd = open(P("ad/old"), O_CREAT | O_WRONLY, 0644);
    close(fd);
    CHECK(chattr(P("ad"), FL_APPEND, 0) == 0);
    fd = open(P("ad/new"), O_CREAT | O_WRONLY, 0644);
    CHECK(fd >= 0);
    close(fd);
    CHECK(unlink(P("ad/old")) == -1 && errno == EPERM);
    CHECK(rename(P("ad/new"), P("ad/newer")) == -1 && errno == EPERM);
    CHECK(chattr(P("ad"), FL_IMMUTABLE, FL_APPEND) == 0);
    CHECK(open(P("ad/third"), O_CREAT | O_WRONLY, 0644) == -1 && errno == EPERM);
    CHECK(mkdir(P("ad/sub"), 0755) == -1 && errno == EPERM);
    CHECK(chattr(P("ad"), 0, FL_IMMUTABLE) == 0);
    CHECK(unlink(P("ad/old")) == 0 && unlink(P("ad/new")) == 0 && rmdir(P("ad")) == 0);
}

/* Who may: the owner (not i or a without CAP_LINUX_IMMUTABLE); nobody else. */
static void test_who(void)
{
    int fd = open(P("mine"), O_CREAT | O_WRONLY, 0644);
    close(fd);
    fd = open(P("roots"), O_CREAT | O_WRONLY, 0644);
    close(fd);
    CHECK(chown(P("mine"), 65534, 65534) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        if (setgid(65534) != 0 || setuid(65534) != 0)
            _exit(100);
        int bad = 0;
        if (chattr(P("mine"), FL_NODUMP, 0) != 0)
            bad++;
        if (!(chattr(P("mine"), FL_IMMUTABLE, 0) == -1 && errno == EPERM))
            bad++;
        if (!(chattr(P("mine"), FL_APPEND, 0) == -1 && errno == EPERM))
            bad++;
        if (!(chattr(P("roots"), FL_NODUMP, 0) == -1 && errno == EPERM))
            bad++;
        _exit(bad);
    }
    int st;
    CHECK(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK((getfl(P("mine")) & OURS) == FL_NODUMP);
    unlink(P("mine"));
    unlink(P("roots"));
}

int main(void)
{
    vktest_reset_signals();
    snprintf(dir, sizeof dir, "/tmp/t_chattr.%d", (int)getpid());
    REQUIRE(mkdir(dir, 0755) == 0);
    test_flags();
    test_immutable();
    test_append();
    test_directories();
    test_who();
    /* Whatever a failed check left: flags off, then everything away. */
    const char *left[] = {"f", "i", "i2", "i3", "a", "ad", "mine", "roots"};
    for (unsigned i = 0; i < sizeof left / sizeof *left; i++)
        chattr(P(left[i]), 0, OURS);
    chattr(P("ad/old"), 0, OURS);
    unlink(P("ad/old"));
    unlink(P("ad/new"));
    unlink(P("ad/newer"));
    rmdir(P("ad"));
    for (unsigned i = 0; i < sizeof left / sizeof *left; i++)
        unlink(P(left[i]));
    CHECK(rmdir(dir) == 0);
    return vktest_done();
}
