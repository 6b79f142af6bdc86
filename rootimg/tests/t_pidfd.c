/*
 * t_pidfd — process descriptors: pidfd_open(2) (close-on-exec, PIDFD_NONBLOCK, refusals),
 * poll(2) readable once the process exits, waitid(P_PIDFD) (EAGAIN when non-blocking and
 * nothing to report), pidfd_send_signal(2) through a pidfd and a /proc/PID directory (info,
 * refusals), pidfd_getfd(2) (the same open file, refusals).
 */
#include "vktest.h"

#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

static int pidfd_open(pid_t pid, unsigned flags)
{
    return (int)syscall(SYS_pidfd_open, pid, flags);
}
static int pidfd_send_signal(int fd, int sig, siginfo_t *info, unsigned flags)
{
    return (int)syscall(SYS_pidfd_send_signal, fd, sig, info, flags);
}
static int pidfd_getfd(int fd, int target, unsigned flags)
{
    return (int)syscall(SYS_pidfd_getfd, fd, target, flags);
}

static volatile sig_atomic_t got_sig, got_val;
static void on_usr1(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    got_sig = sig;
    got_val = si->si_value.sival_int;
}

static void test_open(void)
{
    int fd = pidfd_open(getpid(), 0);
    REQUIRE(fd >= 0);
    CHECK(fcntl(fd, F_GETFD) == FD_CLOEXEC);
    CHECK((fcntl(fd, F_GETFL) & O_NONBLOCK) == 0);
    char c;
    errno = 0;
    CHECK(read(fd, &c, 1) == -1 && errno == EINVAL);
    close(fd);
    fd = pidfd_open(getpid(), O_NONBLOCK);
    CHECK(fd >= 0 && (fcntl(fd, F_GETFL) & O_NONBLOCK));
    close(fd);
    errno = 0;
    CHECK(pidfd_open(-1, 0) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(pidfd_open(getpid(), 1) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(pidfd_open(4194000, 0) == -1 && errno == ESRCH);
}

static void test_poll_wait(void)
{
    int go[2];
    REQUIRE(pipe(go) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        char c;
        close(go[1]);
        read(go[0], &c, 1);
        _exit(7);
    }
    close(go[0]);
    int fd = pidfd_open(pid, O_NONBLOCK);
    REQUIRE(fd >= 0);
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    CHECK(poll(&pfd, 1, 0) == 0);
    siginfo_t si;
    errno = 0;
    CHECK(waitid(P_PIDFD, fd, &si, WEXITED) == -1 && errno == EAGAIN);
    memset(&si, 0xff, sizeof si);
    CHECK(waitid(P_PIDFD, fd, &si, WEXITED | WNOHANG) == 0 && si.si_pid == 0);
    close(go[1]); /* the child exits */
    pfd.revents = 0;
    CHECK(poll(&pfd, 1, 5000) == 1 && (pfd.revents & POLLIN));
    memset(&si, 0, sizeof si);
    CHECK(waitid(P_PIDFD, fd, &si, WEXITED) == 0);
    CHECK(si.si_pid == pid && si.si_code == CLD_EXITED && si.si_status == 7);
    /* Reaped: hung up, and no child any more. */
    pfd.revents = 0;
    CHECK(poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLHUP));
    errno = 0;
    CHECK(waitid(P_PIDFD, fd, &si, WEXITED) == -1 && errno == ECHILD);
    errno = 0;
    CHECK(pidfd_send_signal(fd, SIGUSR1, NULL, 0) == -1 && errno == ESRCH);
    close(fd);
    /* A descriptor that is no pidfd. */
    int n = open("/dev/null", O_RDONLY);
    errno = 0;
    CHECK(waitid(P_PIDFD, n, &si, WEXITED) == -1 && errno == EBADF);
    close(n);
}

static void test_send_signal(void)
{
    struct sigaction sa = {.sa_sigaction = on_usr1, .sa_flags = SA_SIGINFO};
    sigemptyset(&sa.sa_mask);
    REQUIRE(sigaction(SIGUSR1, &sa, NULL) == 0);
    int fd = pidfd_open(getpid(), 0);
    REQUIRE(fd >= 0);
    got_sig = 0;
    CHECK(pidfd_send_signal(fd, SIGUSR1, NULL, 0) == 0);
    CHECK(got_sig == SIGUSR1);
    /* With an info, through /proc/self. */
    int dir = open("/proc/self", O_DIRECTORY | O_CLOEXEC);
    REQUIRE(dir >= 0);
    siginfo_t info;
    memset(&info, 0, sizeof info);
    info.si_signo = SIGUSR1;
    info.si_code = SI_QUEUE;
    info.si_pid = getpid();
    info.si_uid = getuid();
    info.si_value.sival_int = 777;
    got_sig = got_val = 0;
    CHECK(pidfd_send_signal(dir, SIGUSR1, &info, 0) == 0);
    CHECK(got_sig == SIGUSR1 && got_val == 777);
    errno = 0;
    CHECK(pidfd_send_signal(fd, SIGUSR2, &info, 0) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(pidfd_send_signal(fd, SIGUSR1, &info, 99999) == -1 && errno == EINVAL);
    int n = open("/dev/null", O_RDONLY);
    errno = 0;
    CHECK(pidfd_send_signal(n, SIGUSR1, NULL, 0) == -1 && errno == EBADF);
    close(n);
    CHECK(pidfd_send_signal(fd, 0, NULL, 0) == 0);
    /* Not permitted: nobody signalling init. */
    struct passwd *pw = getpwnam("nobody");
    uid_t nobody = pw ? pw->pw_uid : 65534;
    int init = pidfd_open(1, 0);
    REQUIRE(init >= 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        if (setuid(nobody) != 0)
            _exit(10);
        if (pidfd_send_signal(init, SIGUSR1, NULL, 0) != -1 || errno != EPERM)
            _exit(11);
        /* Nor take a descriptor of a process it may not trace. */
        if (pidfd_getfd(fd, 0, 0) != -1 || errno != EPERM)
            _exit(12);
        _exit(0);
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(init);
    close(dir);
    close(fd);
    signal(SIGUSR1, SIG_DFL);
}

static void test_getfd(void)
{
    int p[2], go[2];
    REQUIRE(pipe(p) == 0 && pipe(go) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        close(go[1]);
        int fd = open("/tmp/t_pidfd.file", O_RDWR | O_CREAT | O_TRUNC, 0644);
        write(p[1], &fd, sizeof fd);
        char c;
        read(go[0], &c, 1);
        _exit(0);
    }
    close(p[1]);
    close(go[0]);
    int target = -1;
    REQUIRE(read(p[0], &target, sizeof target) == (ssize_t)sizeof target);
    int fd = pidfd_open(pid, 0);
    REQUIRE(fd >= 0);
    int mine = pidfd_getfd(fd, target, 0);
    CHECK(mine >= 0);
    CHECK(fcntl(mine, F_GETFD) == FD_CLOEXEC);
    /* The same open file: the offset is shared. */
    CHECK(write(mine, "abc", 3) == 3);
    CHECK(syscall(SYS_kcmp, getpid(), pid, 0 /* KCMP_FILE */, mine, target) == 0);
    errno = 0;
    CHECK(pidfd_getfd(fd, 1000, 0) == -1 && errno == EBADF);
    errno = 0;
    CHECK(pidfd_getfd(fd, target, 1) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(pidfd_getfd(-1, target, 0) == -1 && errno == EBADF);
    int n = open("/dev/null", O_RDONLY);
    errno = 0;
    CHECK(pidfd_getfd(n, 0, 0) == -1 && errno == EBADF);
    close(n);
    close(go[1]);
    CHECK(waitpid(pid, NULL, 0) == pid);
    errno = 0;
    CHECK(pidfd_getfd(fd, target, 0) == -1 && errno == ESRCH);
    CHECK(lseek(mine, 0, SEEK_CUR) == 3);
    close(mine);
    close(fd);
    close(p[0]);
    unlink("/tmp/t_pidfd.file");
}

int main(void)
{
    vktest_reset_signals();
    test_open();
    test_poll_wait();
    test_send_signal();
    test_getfd();
    vktest_done();
}
