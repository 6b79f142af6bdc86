/*
 * t_mqueue — POSIX message queues: mq_open creates (O_CREAT, O_EXCL: EEXIST) and opens
 * (ENOENT), with default or given attributes (EINVAL past msg_max/msgsize_max or for 0);
 * messages come out highest priority first, in order within one priority, with their
 * priority and length; a full queue is EAGAIN for a non-blocking descriptor and ETIMEDOUT at
 * an absolute deadline; an empty one likewise for receives; a sender blocked on a full queue
 * goes on when a reader takes a message; EMSGSIZE for a long message or a short buffer;
 * EINVAL for a priority >= MQ_PRIO_MAX or a bad timeout; EBADF for a wrong access mode or a
 * descriptor that is not a queue; mq_getattr/mq_setattr (O_NONBLOCK only); mq_notify: a
 * signal when a message arrives at an empty queue (SI_MESGQ, the value, once), EBUSY for a
 * second registration, EINVAL for a bad sigevent; mq_unlink (ENOENT after; the open queue
 * lives on; EACCES for another user's queue); a read of the descriptor shows QSIZE.
 */
#include "vktest.h"

#include <fcntl.h>
#include <mqueue.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static struct timespec after_ms(int ms)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_nsec += (long)ms * 1000000;
    t.tv_sec += t.tv_nsec / 1000000000;
    t.tv_nsec %= 1000000000;
    return t;
}

int main(void)
{
    vktest_reset_signals();
    char name[64];
    snprintf(name, sizeof name, "/t_mqueue_%d", (int)getpid());
    mq_unlink(name);

    errno = 0;
    CHECK(mq_open(name, O_RDWR) == (mqd_t)-1 && errno == ENOENT);
    struct mq_attr at = {0, 4, 64, 0};
    mqd_t q = mq_open(name, O_CREAT | O_EXCL | O_RDWR, 0600, &at);
    CHECK(q != (mqd_t)-1);
    errno = 0;
    CHECK(mq_open(name, O_CREAT | O_EXCL | O_RDWR, 0600, &at) == (mqd_t)-1 && errno == EEXIST);
    struct mq_attr got;
    CHECK(mq_getattr(q, &got) == 0 && got.mq_maxmsg == 4 && got.mq_msgsize == 64 && got.mq_curmsgs == 0 &&
          got.mq_flags == 0);

    /* Priorities. */
    CHECK(mq_send(q, "low1", 4, 1) == 0);
    CHECK(mq_send(q, "high", 4, 9) == 0);
    CHECK(mq_send(q, "low2!", 5, 1) == 0);
    CHECK(mq_getattr(q, &got) == 0 && got.mq_curmsgs == 3);
    char buf[64];
    unsigned prio = 0;
    CHECK(mq_receive(q, buf, sizeof buf, &prio) == 4 && prio == 9 && memcmp(buf, "high", 4) == 0);
    CHECK(mq_receive(q, buf, sizeof buf, &prio) == 4 && prio == 1 && memcmp(buf, "low1", 4) == 0);
    CHECK(mq_receive(q, buf, sizeof buf, &prio) == 5 && prio == 1 && memcmp(buf, "low2!", 5) == 0);

    /* Limits and errors. */
    char big[65] = {0};
    errno = 0;
    CHECK(mq_send(q, big, 65, 0) == -1 && errno == EMSGSIZE);
    errno = 0;
    CHECK(mq_receive(q, buf, 63, NULL) == -1 && errno == EMSGSIZE);
    errno = 0;
    CHECK(mq_send(q, "x", 1, 32768) == -1 && errno == EINVAL);
    struct timespec bad = {0, 1000000000};
    errno = 0;
    CHECK(mq_timedsend(q, "x", 1, 0, &bad) == -1 && errno == EINVAL);
    int fd = open("/", O_RDONLY);
    errno = 0;
    CHECK(mq_send((mqd_t)fd, "x", 1, 0) == -1 && errno == EBADF);
    close(fd);
    mqd_t ro = mq_open(name, O_RDONLY);
    CHECK(ro != (mqd_t)-1);
    errno = 0;
    CHECK(mq_send(ro, "x", 1, 0) == -1 && errno == EBADF);
    struct mq_attr toobig = {0, 100000, 64, 0};
    char name2[80];
    snprintf(name2, sizeof name2, "%s_b", name);
    errno = 0;
    CHECK(mq_open(name2, O_CREAT | O_RDWR, 0600, &toobig) == (mqd_t)-1 && errno == EINVAL);
    struct mq_attr zero = {0, 0, 64, 0};
    errno = 0;
    CHECK(mq_open(name2, O_CREAT | O_RDWR, 0600, &zero) == (mqd_t)-1 && errno == EINVAL);
    mqd_t dflt = mq_open(name2, O_CREAT | O_RDWR, 0600, NULL);
    CHECK(dflt != (mqd_t)-1 && mq_getattr(dflt, &got) == 0 && got.mq_maxmsg == 10 && got.mq_msgsize == 8192);
    mq_close(dflt);
    CHECK(mq_unlink(name2) == 0);

    /* Full and empty: timeouts and non-blocking. */
    for (int i = 0; i < 4; i++)
        CHECK(mq_send(q, "fill", 4, 0) == 0);
    struct timespec t = after_ms(30);
    errno = 0;
    CHECK(mq_timedsend(q, "x", 1, 0, &t) == -1 && errno == ETIMEDOUT);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    CHECK(now.tv_sec > t.tv_sec || (now.tv_sec == t.tv_sec && now.tv_nsec >= t.tv_nsec));
    struct mq_attr nb = {O_NONBLOCK, 0, 0, 0}, old;
    CHECK(mq_setattr(q, &nb, &old) == 0 && old.mq_flags == 0);
    errno = 0;
    CHECK(mq_send(q, "x", 1, 0) == -1 && errno == EAGAIN);
    CHECK(mq_getattr(q, &got) == 0 && got.mq_flags == O_NONBLOCK && got.mq_curmsgs == 4);
    nb.mq_flags = 0;
    CHECK(mq_setattr(q, &nb, NULL) == 0);

    /* A blocked sender goes on when a reader takes one. */
    pid_t c = fork();
    if (c == 0) {
        usleep(50000);
        char b[64];
        _exit(mq_receive(q, b, sizeof b, NULL) == 4 ? 0 : 1);
    }
    CHECK(mq_send(q, "late", 4, 0) == 0);
    int st;
    CHECK(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    for (int i = 0; i < 4; i++)
        CHECK(mq_receive(q, buf, sizeof buf, NULL) == 4);
    t = after_ms(20);
    errno = 0;
    CHECK(mq_timedreceive(q, buf, sizeof buf, NULL, &t) == -1 && errno == ETIMEDOUT);

    /* Notification. */
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    sigprocmask(SIG_BLOCK, &s, NULL);
    struct sigevent ev = {0};
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGUSR1;
    ev.sigev_value.sival_int = 77;
    CHECK(mq_notify(q, &ev) == 0);
    errno = 0;
    CHECK(mq_notify(q, &ev) == -1 && errno == EBUSY);
    CHECK(mq_send(q, "n", 1, 0) == 0);
    siginfo_t si;
    struct timespec w = {2, 0};
    CHECK(sigtimedwait(&s, &si, &w) == SIGUSR1 && si.si_code == SI_MESGQ && si.si_value.sival_int == 77 &&
          si.si_pid == getpid());
    /* Once: the registration is gone. */
    CHECK(mq_receive(q, buf, sizeof buf, NULL) == 1);
    CHECK(mq_send(q, "n", 1, 0) == 0);
    struct timespec z = {0, 10000000};
    errno = 0;
    CHECK(sigtimedwait(&s, &si, &z) == -1 && errno == EAGAIN);
    CHECK(mq_notify(q, &ev) == 0 && mq_notify(q, NULL) == 0);
    struct sigevent badev = {0};
    badev.sigev_notify = 99;
    errno = 0;
    CHECK(mq_notify(q, &badev) == -1 && errno == EINVAL);
    badev.sigev_notify = SIGEV_SIGNAL;
    badev.sigev_signo = 100;
    errno = 0;
    CHECK(mq_notify(q, &badev) == -1 && errno == EINVAL);

    /* Reading the descriptor. */
    char text[128] = {0};
    CHECK(read((int)q, text, sizeof text - 1) > 0 && strncmp(text, "QSIZE:1 ", 8) == 0);

    /* Another user may not remove it. */
    c = fork();
    if (c == 0) {
        if (setgid(65534) || setuid(65534))
            _exit(2);
        _exit(mq_unlink(name) == -1 && errno == EACCES ? 0 : 1);
    }
    CHECK(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0);

    /* Unlinked: gone by name, alive by descriptor. */
    CHECK(mq_unlink(name) == 0);
    errno = 0;
    CHECK(mq_unlink(name) == -1 && errno == ENOENT);
    CHECK(mq_receive(q, buf, sizeof buf, NULL) == 1);
    mq_close(ro);
    mq_close(q);
    return vktest_done();
}
