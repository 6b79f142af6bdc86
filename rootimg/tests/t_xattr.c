/*
 * t_xattr — the extended-attribute calls on a file without the attribute asked for.
 *
 * vk's file systems have no extended attributes (the calls answer as Linux does on a file
 * system without them: EOPNOTSUPP, empty lists); the host's may have them, where a missing
 * attribute is ENODATA. Both mean "not there", so this checks what holds for both: reading
 * or removing a missing attribute fails with one of the two, a list is a length (>= 0), and
 * the arguments are checked — ENOENT for a missing path (all three forms), EBADF for a bad
 * descriptor, ERANGE for an empty or too long name, EINVAL for unknown setxattr flags.
 */
#include "vktest.h"

#include <fcntl.h>
#include <sys/xattr.h>
#include <unistd.h>

static int absent(long r)
{
    return r == -1 && (errno == ENODATA || errno == EOPNOTSUPP);
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
    return vktest_done();
}
