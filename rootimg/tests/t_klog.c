/*
 * t_klog — syslog(2) (klogctl), as dmesg uses it: the buffer's size, reading all of it as
 * whole `<level>text` records (the newest that fit a small buffer), the argument checks, and
 * the actions only a privileged caller may take (uid 65534 gets EPERM). Nothing here clears
 * or changes the log: natively it is the host's. It must run as root.
 */
#include "vktest.h"

#include <sys/klog.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
    int size = klogctl(10, NULL, 0);
    CHECK(size > 0);
    static char buf[1 << 20];
    if (size > (int)sizeof buf)
        size = sizeof buf;
    int n = klogctl(3, buf, size);
    CHECKF(n > 0 && n <= size && buf[0] == '<' && buf[n - 1] == '\n', "n %d", n);
    int small = klogctl(3, buf, 200);
    CHECKF(small >= 0 && small <= 200 && (small == 0 || (buf[0] == '<' && buf[small - 1] == '\n')), "small %d", small);
    CHECK(klogctl(3, buf, 0) == 0);
    errno = 0;
    CHECK(klogctl(3, NULL, 10) == -1 && errno == EINVAL);
    CHECK(klogctl(3, buf, -1) == -1 && errno == EINVAL);
    CHECK(klogctl(99, buf, 10) == -1 && errno == EINVAL);
    CHECK(klogctl(1, NULL, 0) == 0);
    CHECK(klogctl(0, NULL, 0) == 0);

    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        CHECK(setresgid(65534, 65534, 65534) == 0 && setresuid(65534, 65534, 65534) == 0);
        errno = 0;
        CHECK(klogctl(5, NULL, 0) == -1 && errno == EPERM);
        CHECK(klogctl(4, buf, 100) == -1 && errno == EPERM);
        CHECK(klogctl(0, NULL, 0) == -1 && errno == EPERM);
        vktest_child_done();
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    return vktest_done();
}
