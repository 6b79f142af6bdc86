/*
 * t_sigtid — signals addressed by a thread's id: kill(2) and rt_sigqueueinfo(2) given the id
 * of a thread that is not the leader reach its process (Linux finds any task by the id and
 * signals its thread group); tgkill(2) of a real-time signal past RLIMIT_SIGPENDING is
 * EAGAIN (it carries SI_TKILL's siginfo, which must be queued), while kill(2) still works.
 */
#include "vktest.h"

#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static volatile sig_atomic_t got_usr1, got_rt, rt_value;
static volatile pid_t thread_tid;
static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
static int done;

static void on_usr1(int sig)
{
    (void)sig;
    got_usr1 = 1;
}

static void on_rt(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    got_rt = 1;
    rt_value = si->si_value.sival_int;
}

static void *thread(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&m);
    thread_tid = (pid_t)syscall(SYS_gettid);
    pthread_cond_broadcast(&c);
    while (!done)
        pthread_cond_wait(&c, &m);
    pthread_mutex_unlock(&m);
    return NULL;
}

int main(void)
{
    vktest_reset_signals();
    signal(SIGUSR1, on_usr1);
    struct sigaction sa = {.sa_sigaction = on_rt, .sa_flags = SA_SIGINFO};
    sigaction(SIGRTMIN, &sa, NULL);
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, thread, NULL) == 0);
    pthread_mutex_lock(&m);
    while (!thread_tid)
        pthread_cond_wait(&c, &m);
    pthread_mutex_unlock(&m);
    CHECK(thread_tid != getpid());

    /* kill(tid): the process gets it (one of its threads runs the handler). */
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    CHECK(kill(thread_tid, SIGUSR1) == 0);
    for (int i = 0; i < 2000 && !got_usr1; i++)
        usleep(1000);
    CHECK(got_usr1);
    CHECK(kill(thread_tid, 0) == 0);

    /* rt_sigqueueinfo(tid): queued to the process with its value. */
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = SIGRTMIN;
    si.si_code = SI_QUEUE;
    si.si_pid = getpid();
    si.si_uid = getuid();
    si.si_value.sival_int = 42;
    CHECK(syscall(SYS_rt_sigqueueinfo, thread_tid, SIGRTMIN, &si) == 0);
    for (int i = 0; i < 2000 && !got_rt; i++)
        usleep(1000);
    CHECK(got_rt && rt_value == 42);

    pthread_mutex_lock(&m);
    done = 1;
    pthread_cond_broadcast(&c);
    pthread_mutex_unlock(&m);
    CHECK(pthread_join(t, NULL) == 0);
    /* The thread is gone: its id names nothing once it has left (join returns when its tid
     * is cleared, which both Linux and vk do just before the thread leaves the process). */
    int gone = 0;
    for (int i = 0; i < 5000 && !gone; i++) {
        errno = 0;
        gone = kill(thread_tid, 0) == -1 && errno == ESRCH;
        if (!gone)
            usleep(1000);
    }
    CHECK(gone);

    /* RLIMIT_SIGPENDING: one queued real-time signal allowed; tgkill's second is EAGAIN. The
     * count is per real user: a child becomes a user of its own so nothing else counts. */
    pid_t child = fork();
    if (child == 0) {
        sigset_t rt;
        sigemptyset(&rt);
        sigaddset(&rt, SIGRTMIN);
        sigprocmask(SIG_BLOCK, &rt, NULL);
        struct rlimit one = {1, 1};
        CHECK(setrlimit(RLIMIT_SIGPENDING, &one) == 0);
        CHECK(setuid(54321) == 0);
        pid_t me = getpid();
        CHECK(syscall(SYS_tgkill, me, me, SIGRTMIN) == 0);
        errno = 0;
        CHECK(syscall(SYS_tgkill, me, me, SIGRTMIN) == -1 && errno == EAGAIN);
        si.si_pid = me;
        si.si_uid = getuid();
        errno = 0;
        CHECK(syscall(SYS_rt_sigqueueinfo, me, SIGRTMIN, &si) == -1 && errno == EAGAIN);
        CHECK(kill(me, SIGRTMIN) == 0);
        got_rt = 0;
        sigprocmask(SIG_UNBLOCK, &rt, NULL);
        CHECK(got_rt);
        vktest_child_done();
    }
    int status;
    CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    return vktest_done();
}
