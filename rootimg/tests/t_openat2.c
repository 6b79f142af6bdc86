/*
 * t_openat2 — openat2(2): struct open_how and its size rules, flag and mode checks, and the
 * RESOLVE_* restrictions: NO_XDEV (a mount crossed), NO_MAGICLINKS (/proc/self/exe),
 * NO_SYMLINKS, BENEATH (absolute paths, `..` above, absolute links: EXDEV) and IN_ROOT
 * (the directory as the root).
 */
#include "vktest.h"

#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#ifndef SYS_openat2
#define SYS_openat2 437
#endif

struct how {
    uint64_t flags, mode, resolve;
};
struct how_pad {
    struct how how;
    uint64_t pad;
};

#define NO_XDEV 0x01
#define NO_MAGICLINKS 0x02
#define NO_SYMLINKS 0x04
#define BENEATH 0x08
#define IN_ROOT 0x10

#define DIR "/tmp/t_openat2.d"

static int openat2(int dfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve)
{
    struct how h = {flags, mode, resolve};
    return (int)syscall(SYS_openat2, dfd, path, &h, sizeof h);
}

/* Expect failure with `err`. */
static int fails(int r, int err)
{
    if (r >= 0) {
        close(r);
        return 0;
    }
    return errno == err;
}

/* Expect success; close it. */
static int works(int r)
{
    if (r < 0)
        return 0;
    close(r);
    return 1;
}

int main(void)
{
    vktest_reset_signals();
    mkdir(DIR, 0755);
    mkdir(DIR "/sub", 0755);
    int fd = open(DIR "/file", O_CREAT | O_WRONLY | O_TRUNC, 0644);
    REQUIRE(fd >= 0);
    CHECK(write(fd, "root-file", 9) == 9);
    close(fd);
    fd = open(DIR "/sub/file", O_CREAT | O_WRONLY | O_TRUNC, 0644);
    close(fd);
    unlink(DIR "/sub/abs");
    unlink(DIR "/sub/rel");
    CHECK(symlink("/file", DIR "/sub/abs") == 0);
    CHECK(symlink("file", DIR "/sub/rel") == 0);
    int dir = open(DIR, O_DIRECTORY | O_RDONLY);
    REQUIRE(dir >= 0);

    /* Plain opens and creation. */
    CHECK(works(openat2(dir, "file", O_RDONLY, 0, 0)));
    CHECK(works(openat2(dir, "new", O_RDWR | O_CREAT, 0600, 0)));
    struct stat st;
    CHECK(stat(DIR "/new", &st) == 0 && (st.st_mode & 0777) == 0600);
    unlink(DIR "/new");
    CHECK(works(openat2(AT_FDCWD, "/proc/self/exe", O_RDONLY, 0, 0)));

    /* Size and argument checks. */
    struct how_pad hp = {{O_RDONLY, 0, 0}, 0};
    CHECK(works((int)syscall(SYS_openat2, dir, "file", &hp, sizeof hp)));
    hp.pad = 1;
    errno = 0;
    CHECK(syscall(SYS_openat2, dir, "file", &hp, sizeof hp) == -1 && errno == E2BIG);
    errno = 0;
    CHECK(syscall(SYS_openat2, dir, "file", &hp, 0) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(syscall(SYS_openat2, dir, "file", &hp, sizeof(struct how) - 1) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(syscall(SYS_openat2, dir, "file", &hp, 8192) == -1 && errno == E2BIG);
    errno = 0;
    CHECK(syscall(SYS_openat2, dir, "file", BAD_PTR(-4096), sizeof(struct how)) == -1 && errno == EFAULT);
    CHECK(fails(openat2(dir, "file", O_RDONLY, 0644, 0), EINVAL));
    CHECK(fails(openat2(dir, "x", O_RDWR | O_CREAT, 010000, 0), EINVAL));
    CHECK(fails(openat2(dir, "file", O_RDONLY, 0, 0x100), EINVAL));
    CHECK(fails(openat2(dir, "file", O_RDONLY, 0, BENEATH | IN_ROOT), EINVAL));
    CHECK(fails(openat2(dir, "file", 1ULL << 40, 0, 0), EINVAL));
    CHECK(fails(openat2(-1, "file", O_RDONLY, 0, 0), EBADF));
    CHECK(fails(openat2(AT_FDCWD, BAD_PTR(0), O_RDONLY, 0, 0), EFAULT));

    /* RESOLVE_NO_XDEV: /proc is another mount. */
    CHECK(works(openat2(dir, "sub/file", O_RDONLY, 0, NO_XDEV)));
    CHECK(fails(openat2(dir, "/proc/version", O_RDONLY, 0, NO_XDEV), EXDEV));
    /* RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS. */
    CHECK(fails(openat2(AT_FDCWD, "/proc/self/exe", O_RDONLY, 0, NO_MAGICLINKS), ELOOP));
    CHECK(works(openat2(dir, "sub/rel", O_RDONLY, 0, NO_MAGICLINKS)));
    CHECK(fails(openat2(dir, "sub/rel", O_RDONLY, 0, NO_SYMLINKS), ELOOP));
    CHECK(works(openat2(dir, "sub/rel", O_RDONLY | O_PATH | O_NOFOLLOW, 0, NO_SYMLINKS)));
    /* An O_PATH descriptor of the link itself: fstat and readlinkat with an empty path. */
    fd = open(DIR "/sub/rel", O_PATH | O_NOFOLLOW);
    CHECK(fd >= 0 && fstat(fd, &st) == 0 && S_ISLNK(st.st_mode));
    char lbuf[16] = {0};
    CHECK(readlinkat(fd, "", lbuf, sizeof lbuf) == 4 && memcmp(lbuf, "file", 4) == 0);
    close(fd);
    errno = 0;
    CHECK(readlinkat(dir, "", lbuf, sizeof lbuf) == -1 && errno == ENOENT);
    /* RESOLVE_BENEATH. */
    CHECK(works(openat2(dir, "sub/../file", O_RDONLY, 0, BENEATH)));
    CHECK(works(openat2(dir, "sub/rel", O_RDONLY, 0, BENEATH)));
    CHECK(fails(openat2(dir, "../t_openat2.d/file", O_RDONLY, 0, BENEATH), EXDEV));
    CHECK(fails(openat2(dir, "/tmp", O_RDONLY, 0, BENEATH), EXDEV));
    CHECK(fails(openat2(dir, "sub/abs", O_RDONLY, 0, BENEATH), EXDEV));
    /* RESOLVE_IN_ROOT: "/" and ".." stay in the directory. */
    fd = openat2(dir, "sub/abs", O_RDONLY, 0, IN_ROOT);
    char buf[16] = {0};
    CHECK(fd >= 0 && read(fd, buf, sizeof buf) == 9 && memcmp(buf, "root-file", 9) == 0);
    if (fd >= 0)
        close(fd);
    CHECK(works(openat2(dir, "../../../file", O_RDONLY, 0, IN_ROOT)));
    CHECK(fails(openat2(dir, "/tmp", O_RDONLY, 0, IN_ROOT), ENOENT));
    CHECK(fails(openat2(dir, "/proc/self/exe", O_RDONLY, 0, IN_ROOT), ENOENT));

    close(dir);
    unlink(DIR "/sub/abs");
    unlink(DIR "/sub/rel");
    unlink(DIR "/sub/file");
    unlink(DIR "/file");
    rmdir(DIR "/sub");
    rmdir(DIR);
    vktest_done();
}
