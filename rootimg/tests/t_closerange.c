/*
 * t_closerange — close_range(2): descriptors in the range close, those outside stay; the
 * range may run past the last open one (~0U); CLOSE_RANGE_CLOEXEC marks them close-on-exec
 * instead; CLOSE_RANGE_UNSHARE in a thread made with CLONE_FILES closes only its own copy;
 * EINVAL for unknown flags and for first > last.
 */
#include "vktest.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define CLOSE_RANGE_UNSHARE (1U << 1)
#define CLOSE_RANGE_CLOEXEC (1U << 2)

static long close_range(unsigned first, unsigned last, unsigned flags) { return syscall(SYS_close_range, first, last, flags); }

static int open_at(int fd)
{
    int f = open("/dev/null", O_RDONLY);
    if (f < 0)
        return -1;
    if (f != fd) {
        if (dup2(f, fd) != fd)
            return -1;
        close(f);
    }
    return fd;
}

static int is_open(int fd) { return fcntl(fd, F_GETFD) != -1; }

static char stack[64 * 1024];
static int child(void *arg)
{
    (void)arg;
    return close_range(40, 49, CLOSE_RANGE_UNSHARE) == 0 && !is_open(40) && !is_open(45) ? 0 : 1;
}

int main(void)
{
    for (int fd = 40; fd < 50; fd++)
        REQUIRE(open_at(fd) == fd);
    CHECK(close_range(42, 44, 0) == 0);
    CHECK(is_open(41) && !is_open(42) && !is_open(43) && !is_open(44) && is_open(45));
    CHECK(close_range(46, ~0U, CLOSE_RANGE_CLOEXEC) == 0);
    CHECK(fcntl(46, F_GETFD) == FD_CLOEXEC && fcntl(49, F_GETFD) == FD_CLOEXEC && fcntl(45, F_GETFD) == 0);
    errno = 0;
    CHECK(close_range(44, 43, 0) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(close_range(40, 41, 1) == -1 && errno == EINVAL);

    /* A child sharing the table (CLONE_FILES) unshares it, then closes: ours stay open. */
    pid_t c = clone(child, stack + sizeof stack, CLONE_FILES | SIGCHLD, NULL);
    REQUIRE(c > 0);
    int st;
    CHECK(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(is_open(40) && is_open(45) && is_open(49));

    CHECK(close_range(40, ~0U, 0) == 0);
    CHECK(!is_open(40) && !is_open(49) && is_open(1));
    return vktest_done();
}
