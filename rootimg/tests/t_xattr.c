/*
 * t_xattr — the extended-attribute calls on a file without the attribute asked for.
 *
 * vk's file systems have no extended attributes (the calls answer as Linux does on a file
 * system without them: EOPNOTSUPP, empty lists); the host's may have them, where a missing
 * attribute is ENODATA. Both mean "not there", so this checks what holds for both: reading
 * or removing a missing attribute fails with one of the two, a list is a length (>= 0), and
 * the arguments are checked — ENOENT for a missing path (all three forms), EBADF for a bad
 * descriptor, ERANGE for an empty or too long name, EINVAL for unknown setxattr flags.
 *
 * Then attributes that are kept, on a file in /tmp (tmpfs under vk; the host's /tmp keeps
 * user and trusted attributes too): set, get, list, remove, XATTR_CREATE and XATTR_REPLACE,
 * the size query and ERANGE, an empty value; trusted.* only for CAP_SYS_ADMIN and user.* not
 * on a symbolic link; unknown namespaces EOPNOTSUPP; another user needs the file's
 * permissions (EACCES).
 */
#include "vktest.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

static int absent(long r)
{
    return r == -1 && (errno == ENODATA || errno == EOPNOTSUPP);
}

/* Attributes on a file in /tmp. */
static void kept(void)
{
    char path[] = "/tmp/t_xattr.XXXXXX", link[64], buf[64];
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    CHECK(fchmod(fd, 0644) == 0);
    CHECK(setxattr(path, "user.a", "one", 3, 0) == 0);
    CHECK(getxattr(path, "user.a", NULL, 0) == 3);
    memset(buf, 0, sizeof buf);
    CHECK(getxattr(path, "user.a", buf, sizeof buf) == 3 && memcmp(buf, "one", 3) == 0);
    errno = 0;
    CHECK(getxattr(path, "user.a", buf, 2) == -1 && errno == ERANGE);
    errno = 0;
    CHECK(setxattr(path, "user.a", "two", 3, XATTR_CREATE) == -1 && errno == EEXIST);
    errno = 0;
    CHECK(setxattr(path, "user.b", "two", 3, XATTR_REPLACE) == -1 && errno == ENODATA);
    CHECK(fsetxattr(fd, "user.a", "three", 5, XATTR_REPLACE) == 0);
    CHECK(fgetxattr(fd, "user.a", buf, sizeof buf) == 5 && memcmp(buf, "three", 5) == 0);
    CHECK(lsetxattr(path, "user.empty", "", 0, XATTR_CREATE) == 0);
    CHECK(lgetxattr(path, "user.empty", buf, sizeof buf) == 0);
    errno = 0;
    CHECK(getxattr(path, "user.none", buf, sizeof buf) == -1 && errno == ENODATA);
    errno = 0;
    CHECK(setxattr(path, "nonamespace.a", "x", 1, 0) == -1 && errno == EOPNOTSUPP);

    /* The list: both names, each with its NUL (in any order). */
    long n = listxattr(path, NULL, 0);
    CHECK(n == (long)(sizeof "user.a" + sizeof "user.empty"));
    char names[256] = "";
    CHECK(flistxattr(fd, names, sizeof names) == n);
    int seen = 0;
    for (char *p = names; p < names + n; p += strlen(p) + 1)
        seen += !strcmp(p, "user.a") + 2 * !strcmp(p, "user.empty");
    CHECK(seen == 3);
    errno = 0;
    CHECK(listxattr(path, names, 3) == -1 && errno == ERANGE);

    CHECK(removexattr(path, "user.empty") == 0);
    errno = 0;
    CHECK(fremovexattr(fd, "user.empty") == -1 && errno == ENODATA);
    CHECK(listxattr(path, NULL, 0) == (long)sizeof "user.a");

    /* user.* is not for symbolic links. */
    snprintf(link, sizeof link, "%s.l", path);
    CHECK(symlink(path, link) == 0);
    errno = 0;
    CHECK(lsetxattr(link, "user.a", "x", 1, 0) == -1 && errno == EPERM);
    errno = 0;
    CHECK(lgetxattr(link, "user.a", buf, sizeof buf) == -1 && errno == ENODATA);
    CHECK(getxattr(link, "user.a", buf, sizeof buf) == 5);
    unlink(link);

    if (geteuid() == 0) {
        CHECK(setxattr(path, "trusted.t", "tt", 2, 0) == 0);
        CHECK(getxattr(path, "trusted.t", buf, sizeof buf) == 2);
        pid_t c = fork();
        if (c == 0) {
            int bad = 0;
            if (setuid(65534) != 0)
                _exit(90);
            errno = 0;
            bad += !(getxattr(path, "trusted.t", buf, sizeof buf) == -1 && errno == ENODATA);
            errno = 0;
            bad += !(setxattr(path, "trusted.u", "x", 1, 0) == -1 && errno == EPERM);
            bad += listxattr(path, NULL, 0) != (long)sizeof "user.a";
            bad += getxattr(path, "user.a", buf, sizeof buf) != 5;
            errno = 0;
            bad += !(setxattr(path, "user.a", "x", 1, 0) == -1 && errno == EACCES);
            _exit(bad);
        }
        int st;
        CHECK(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    close(fd);
    unlink(path);
}

int main(void)
{
    char buf[256];
    char longname[300];
    memset(longname, 'a', sizeof longname - 1);
    memcpy(longname, "user.", 5);
    longname[sizeof longname - 1] = 0;

    CHECK(absent(getxattr("/", "user.vktest.none", buf, sizeof buf)));
    CHECK(absent(lgetxattr("/", "user.vktest.none", buf, sizeof buf)));
    CHECK(absent(getxattr("/", "system.posix_acl_access", buf, sizeof buf)));
    int fd = open("/", O_RDONLY | O_DIRECTORY);
    REQUIRE(fd >= 0);
    CHECK(absent(fgetxattr(fd, "user.vktest.none", buf, sizeof buf)));
    CHECK(flistxattr(fd, NULL, 0) >= 0);
    CHECK(listxattr("/", buf, sizeof buf) >= 0);
    CHECK(llistxattr("/", NULL, 0) >= 0);

    errno = 0;
    CHECK(getxattr("/no/such/file", "user.x", buf, sizeof buf) == -1 && errno == ENOENT);
    CHECK(lgetxattr("/no/such/file", "user.x", buf, sizeof buf) == -1 && errno == ENOENT);
    CHECK(listxattr("/no/such/file", NULL, 0) == -1 && errno == ENOENT);
    CHECK(removexattr("/no/such/file", "user.x") == -1 && errno == ENOENT);
    CHECK(fgetxattr(-1, "user.x", buf, sizeof buf) == -1 && errno == EBADF);
    CHECK(flistxattr(-1, NULL, 0) == -1 && errno == EBADF);
    CHECK(fremovexattr(-1, "user.x") == -1 && errno == EBADF);
    CHECK(fsetxattr(-1, "user.x", "v", 1, 0) == -1 && errno == EBADF);

    CHECK(getxattr("/", "", buf, sizeof buf) == -1 && errno == ERANGE);
    CHECK(getxattr("/", longname, buf, sizeof buf) == -1 && errno == ERANGE);
    CHECK(fgetxattr(fd, longname, buf, sizeof buf) == -1 && errno == ERANGE);
    CHECK(setxattr("/", "user.x", "v", 1, 0x40) == -1 && errno == EINVAL);
    CHECK(fsetxattr(fd, "user.x", "v", 1, XATTR_CREATE | XATTR_REPLACE | 8) == -1 && errno == EINVAL);
    close(fd);
    kept();
    return vktest_done();
}
