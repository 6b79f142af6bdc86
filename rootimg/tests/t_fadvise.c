/*
 * t_fadvise — posix_fadvise(2) (fadvise64): every advice on a regular file succeeds; a pipe
 * is ESPIPE, a bad descriptor EBADF, unknown advice and a negative length EINVAL.
 * (posix_fadvise returns the error number instead of setting errno.)
 */
#include "vktest.h"

#include <fcntl.h>
#include <unistd.h>

int main(void)
{
    int fd = open("/proc/self/exe", O_RDONLY);
    REQUIRE(fd >= 0);
    int advice[] = { POSIX_FADV_NORMAL, POSIX_FADV_RANDOM, POSIX_FADV_SEQUENTIAL,
                     POSIX_FADV_WILLNEED, POSIX_FADV_DONTNEED, POSIX_FADV_NOREUSE };
    for (unsigned i = 0; i < sizeof advice / sizeof advice[0]; i++)
        CHECKF(posix_fadvise(fd, 0, 0, advice[i]) == 0, "advice %d", advice[i]);
    CHECK(posix_fadvise(fd, 4096, 1 << 20, POSIX_FADV_WILLNEED) == 0);
    CHECK(posix_fadvise(fd, 0, 0, 99) == EINVAL);
    CHECK(posix_fadvise(fd, 0, -1, POSIX_FADV_NORMAL) == EINVAL);
    close(fd);
    CHECK(posix_fadvise(fd, 0, 0, POSIX_FADV_NORMAL) == EBADF);
    CHECK(posix_fadvise(-1, 0, 0, POSIX_FADV_NORMAL) == EBADF);

    int p[2];
    REQUIRE(pipe(p) == 0);
    CHECK(posix_fadvise(p[0], 0, 0, POSIX_FADV_NORMAL) == ESPIPE);
    CHECK(posix_fadvise(p[1], 0, 0, POSIX_FADV_SEQUENTIAL) == ESPIPE);
    close(p[0]);
    close(p[1]);
    return vktest_done();
}
