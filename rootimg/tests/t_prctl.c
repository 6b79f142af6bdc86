/*
 * t_prctl — prctl(2) options: the timer slack (50 us by default; set, read back, 0 resets it
 * to the default; a fork child starts with its parent's current slack as both values); the
 * child subreaper (an orphaned grandchild is reparented to the subreaper, which reaps it; the
 * flag is not inherited); the bounding set (PR_CAPBSET_READ, PR_CAPBSET_DROP in a child as
 * root, EPERM without CAP_SETPCAP, EINVAL for no capability); PR_GET_SECUREBITS; EINVAL for an
 * unknown option.
 */
#include "vktest.h"

/* musl has no linux/capability.h */
#define CAP_CHOWN 0
#define CAP_KILL 5
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
    vktest_reset_signals();

    /* Timer slack. */
    CHECK(prctl(PR_GET_TIMERSLACK) == 50000);
    CHECK(prctl(PR_SET_TIMERSLACK, 70000) == 0 && prctl(PR_GET_TIMERSLACK) == 70000);
    pid_t c = fork();
    if (c == 0) {
        int ok = prctl(PR_GET_TIMERSLACK) == 70000;
        prctl(PR_SET_TIMERSLACK, 1);
        ok = ok && prctl(PR_GET_TIMERSLACK) == 1;
        prctl(PR_SET_TIMERSLACK, 0);
        ok = ok && prctl(PR_GET_TIMERSLACK) == 70000;
        _exit(ok ? 0 : 1);
    }
    int st;
    CHECK(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(prctl(PR_SET_TIMERSLACK, 0) == 0 && prctl(PR_GET_TIMERSLACK) == 50000);

    /* Child subreaper. */
    int v = -1;
    CHECK(prctl(PR_GET_CHILD_SUBREAPER, &v) == 0 && v == 0);
    CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
    CHECK(prctl(PR_GET_CHILD_SUBREAPER, &v) == 0 && v == 1);
    pid_t me = getpid();
    int p[2];
    REQUIRE(pipe(p) == 0);
    c = fork();
    if (c == 0) {
        int w = -1;
        int ok = prctl(PR_GET_CHILD_SUBREAPER, &w) == 0 && w == 0;
        pid_t g = fork();
        if (g == 0) {
            char x;
            close(p[1]);
            read(p[0], &x, 1); /* until the middle process is gone */
            _exit(getppid() == me ? 7 : 8);
        }
        _exit(ok ? 0 : 1);
    }
    close(p[0]);
    CHECK(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(p[1]);
    /* The grandchild is ours now. */
    pid_t g = wait(&st);
    CHECK(g > 0 && g != c && WIFEXITED(st) && WEXITSTATUS(st) == 7);
    CHECK(prctl(PR_SET_CHILD_SUBREAPER, 0) == 0);

    /* The bounding set. */
    CHECK(prctl(PR_CAPBSET_READ, CAP_KILL) == 1);
    errno = 0;
    CHECK(prctl(PR_CAPBSET_READ, 200) == -1 && errno == EINVAL);
    c = fork();
    if (c == 0) {
        int ok = prctl(PR_CAPBSET_DROP, CAP_KILL) == 0 && prctl(PR_CAPBSET_READ, CAP_KILL) == 0 &&
                 prctl(PR_CAPBSET_READ, CAP_CHOWN) == 1;
        _exit(ok ? 0 : 1);
    }
    CHECK(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(prctl(PR_CAPBSET_READ, CAP_KILL) == 1);
    c = fork();
    if (c == 0) {
        /* Without CAP_SETPCAP (a non-root user has no capabilities): EPERM. */
        if (setgid(65534) || setuid(65534))
            _exit(2);
        int ok = prctl(PR_CAPBSET_DROP, CAP_KILL) == -1 && errno == EPERM;
        ok = ok && prctl(PR_SET_SECUREBITS, 0) == -1 && errno == EPERM;
        _exit(ok ? 0 : 1);
    }
    CHECK(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(prctl(PR_GET_SECUREBITS) == 0);
    errno = 0;
    CHECK(prctl(0x7fff0000) == -1 && errno == EINVAL);
    return vktest_done();
}
