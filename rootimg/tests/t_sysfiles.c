/*
 * t_sysfiles — /proc and /sys files that C libraries and tools read, and small descriptor fixes.
 *
 * Covers: /proc/sys/kernel/{pid_max,tainted,random/boot_id,random/uuid} (boot_id stays, uuid
 * changes, both UUIDs), /proc/sys/fs/{file-max,nr_open,pipe-max-size}; /proc/self/limits (the
 * header, a row per limit, open files agreeing with getrlimit); /proc/self/fdinfo/N (pos after a
 * seek, flags with O_APPEND and O_CLOEXEC, mnt_id, ino; an eventfd's count, an epoll instance's
 * tfd lines (with the EPOLLERR|EPOLLHUP every item gets), a signalfd's mask, a timerfd's clock); /proc/PID/stat showing the leader's state while
 * another thread runs; /sys/devices/system/cpu/{online,possible} agreeing with sysconf; pwrite on an
 * O_APPEND file appending (Linux's documented behaviour); fsync/fdatasync EINVAL on /dev/null and a
 * pipe; fchmod/fchown EBADF on an O_PATH descriptor; /dev/full (zeros, ENOSPC) and /dev/shm (a
 * tmpfs shm_open-style files live in).
 */
#include "vktest.h"

#include <ctype.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>

static ssize_t slurp(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, len - 1);
    close(fd);
    if (n >= 0)
        buf[n] = 0;
    return n;
}

static int is_uint_line(const char *s)
{
    if (!isdigit((unsigned char)*s))
        return 0;
    while (isdigit((unsigned char)*s))
        s++;
    return strcmp(s, "\n") == 0;
}

static int is_uuid_line(const char *s)
{
    for (int i = 0; i < 36; i++) {
        int dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
            return 0;
    }
    return s[36] == '\n' && s[37] == 0;
}

static void test_sysctl(void)
{
    char a[128], b[128];
    CHECK(slurp("/proc/sys/kernel/pid_max", a, sizeof a) > 0 && is_uint_line(a) && atol(a) >= 300);
    CHECK(slurp("/proc/sys/kernel/tainted", a, sizeof a) > 0 && is_uint_line(a));
    CHECK(slurp("/proc/sys/kernel/random/boot_id", a, sizeof a) == 37 && is_uuid_line(a));
    CHECK(slurp("/proc/sys/kernel/random/boot_id", b, sizeof b) == 37 && strcmp(a, b) == 0);
    CHECK(slurp("/proc/sys/kernel/random/uuid", a, sizeof a) == 37 && is_uuid_line(a) && a[14] == '4');
    CHECK(slurp("/proc/sys/kernel/random/uuid", b, sizeof b) == 37 && strcmp(a, b) != 0);
    CHECK(slurp("/proc/sys/fs/file-max", a, sizeof a) > 0 && is_uint_line(a));
    CHECK(slurp("/proc/sys/fs/nr_open", a, sizeof a) > 0 && is_uint_line(a) && atol(a) >= 1024);
    CHECK(slurp("/proc/sys/fs/pipe-max-size", a, sizeof a) > 0 && is_uint_line(a));
    /* Read-only for everyone: */
    CHECK(open("/proc/sys/kernel/random/boot_id", O_WRONLY) == -1 && errno == EACCES);
}

static void test_limits(void)
{
    static char buf[4096];
    CHECK(slurp("/proc/self/limits", buf, sizeof buf) > 0);
    CHECK(strncmp(buf, "Limit                     Soft Limit           Hard Limit           Units", 72) == 0);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    char want[128];
    snprintf(want, sizeof want, "\nMax open files            %-20llu %-20llu files", (unsigned long long)rl.rlim_cur,
             (unsigned long long)rl.rlim_max);
    CHECKF(strstr(buf, want) != NULL, "%s", buf);
    int rows = 0;
    for (char *p = buf; (p = strchr(p, '\n')); p++)
        rows++;
    CHECK(rows == 17);
    CHECK(strstr(buf, "\nMax realtime timeout      ") != NULL);
}

/* The value of field `key` ("pos:", "flags:", ...) in fdinfo text. */
static const char *field(const char *text, const char *key)
{
    size_t k = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, key, k) == 0) {
            p += k;
            while (*p == ' ' || *p == '\t')
                p++;
            return p;
        }
    }
    return NULL;
}

static int fdinfo(int fd, char *buf, size_t len)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
    return slurp(path, buf, len) > 0;
}

static void test_fdinfo(void)
{
    static char buf[4096];
    char tmpl[] = "/tmp/vkfdinfo.XXXXXX";
    int fd = mkstemp(tmpl);
    REQUIRE(fd >= 0);
    unlink(tmpl);
    CHECK(write(fd, "0123456789", 10) == 10 && lseek(fd, 3, SEEK_SET) == 3);
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_APPEND);
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    CHECK(fdinfo(fd, buf, sizeof buf));
    const char *pos = field(buf, "pos:"), *flags = field(buf, "flags:");
    CHECK(pos && atol(pos) == 3);
    long f = flags ? strtol(flags, NULL, 8) : 0;
    CHECKF(flags && (f & O_APPEND) && (f & O_CLOEXEC) && (f & O_ACCMODE) == O_RDWR, "%s", buf);
    CHECK(field(buf, "mnt_id:") != NULL);
    struct stat st;
    fstat(fd, &st);
    const char *ino = field(buf, "ino:");
    CHECK(ino && (unsigned long)atol(ino) == (unsigned long)st.st_ino);
    CHECK(access("/proc/self/fdinfo", R_OK) == 0);

    int efd = eventfd(0x1234, 0);
    CHECK(fdinfo(efd, buf, sizeof buf));
    const char *cnt = field(buf, "eventfd-count:");
    CHECK(cnt && strtoul(cnt, NULL, 16) == 0x1234);

    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.u64 = 0xabcdef};
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev) == 0);
    CHECK(fdinfo(ep, buf, sizeof buf));
    const char *tfd = field(buf, "tfd:");
    CHECKF(tfd && atoi(tfd) == efd && strstr(buf, "events: 80000019") && strstr(buf, "data:           abcdef"), "%s", buf);

    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR1);
    int sfd = signalfd(-1, &m, 0);
    CHECK(fdinfo(sfd, buf, sizeof buf));
    const char *mask = field(buf, "sigmask:");
    CHECK(mask && strtoull(mask, NULL, 16) == 1ULL << (SIGUSR1 - 1));

    int tfdn = timerfd_create(CLOCK_MONOTONIC, 0);
    CHECK(fdinfo(tfdn, buf, sizeof buf));
    const char *clk = field(buf, "clockid:");
    CHECK(clk && atoi(clk) == CLOCK_MONOTONIC && field(buf, "ticks:") && field(buf, "it_value:"));
    close(tfdn);
    close(sfd);
    close(ep);
    close(efd);
    close(fd);
    CHECK(!fdinfo(fd, buf, sizeof buf) && errno == ENOENT);
}

static volatile int spin_stop;
static void *spinner(void *a)
{
    (void)a;
    while (!spin_stop)
        ;
    return NULL;
}

/* Field 3 of /proc/self/stat. */
static char stat_state(void)
{
    char buf[1024];
    if (slurp("/proc/self/stat", buf, sizeof buf) <= 0)
        return '?';
    char *p = strrchr(buf, ')');
    return p && p[1] == ' ' ? p[2] : '?';
}

static void test_leader_state(void)
{
    /* The leader asks about itself: running, whatever the other thread does. */
    CHECK(stat_state() == 'R');
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, spinner, NULL) == 0);
    /* A child watches this process while its leader sleeps in pthread_join-like waiting. */
    int pfd[2];
    REQUIRE(pipe(pfd) == 0);
    pid_t me = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        char path[64], buf[1024];
        snprintf(path, sizeof path, "/proc/%d/stat", (int)me);
        char c = 'x';
        for (int i = 0; i < 200; i++) {
            struct timespec ts = {0, 10000000};
            nanosleep(&ts, NULL);
            if (slurp(path, buf, sizeof buf) > 0) {
                char *p = strrchr(buf, ')');
                c = p ? p[2] : '?';
                if (c == 'S')
                    break;
            }
        }
        _exit(c == 'S' ? 0 : 1);
    }
    int status = -1;
    /* Sleep (in waitpid) while the other thread spins. */
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    spin_stop = 1;
    pthread_join(t, NULL);
    close(pfd[0]);
    close(pfd[1]);
}

static void test_sys_cpu(void)
{
    char on[64], poss[64], want[64];
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n == 1)
        snprintf(want, sizeof want, "0\n");
    else
        snprintf(want, sizeof want, "0-%ld\n", n - 1);
    CHECK(slurp("/sys/devices/system/cpu/online", on, sizeof on) > 0);
    CHECKF(strcmp(on, want) == 0, "online %s, want %s", on, want);
    CHECK(slurp("/sys/devices/system/cpu/possible", poss, sizeof poss) > 0 && poss[0] == '0');
    CHECK(sysconf(_SC_NPROCESSORS_CONF) >= n);
    struct stat st;
    CHECK(stat("/sys/devices/system/cpu/cpu0", &st) == 0 && S_ISDIR(st.st_mode));
}

static void test_fd_fixes(void)
{
    char tmpl[] = "/tmp/vkappend.XXXXXX";
    int fd = mkstemp(tmpl);
    REQUIRE(fd >= 0);
    CHECK(write(fd, "abc", 3) == 3);
    close(fd);
    fd = open(tmpl, O_RDWR | O_APPEND);
    /* pwrite(2) BUGS: Linux appends whatever the offset. */
    CHECK(pwrite(fd, "XY", 2, 0) == 2);
    char buf[16] = {0};
    CHECK(pread(fd, buf, sizeof buf, 0) == 5 && memcmp(buf, "abcXY", 5) == 0);
    CHECK(lseek(fd, 0, SEEK_CUR) == 0);
    close(fd);

    int op = open(tmpl, O_PATH);
    CHECK(op >= 0);
    /* The raw calls: musl's fchmod falls back to /proc/self/fd on EBADF. */
    CHECK(syscall(SYS_fchmod, op, 0600) == -1 && errno == EBADF);
    CHECK(syscall(SYS_fchown, op, getuid(), getgid()) == -1 && errno == EBADF);
    /* ...but fchownat with AT_EMPTY_PATH takes one. */
    CHECK(fchownat(op, "", getuid(), getgid(), AT_EMPTY_PATH) == 0);
    close(op);
    unlink(tmpl);

    int null = open("/dev/null", O_WRONLY);
    CHECK(fsync(null) == -1 && errno == EINVAL);
    CHECK(fdatasync(null) == -1 && errno == EINVAL);
    close(null);
    int p[2];
    REQUIRE(pipe(p) == 0);
    CHECK(fsync(p[1]) == -1 && errno == EINVAL);
    close(p[0]);
    close(p[1]);
    int dir = open("/tmp", O_RDONLY | O_DIRECTORY);
    CHECK(fsync(dir) == 0);
    close(dir);
}

static void test_dev(void)
{
    int fd = open("/dev/full", O_RDWR);
    REQUIRE(fd >= 0);
    char buf[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    CHECK(read(fd, buf, sizeof buf) == 8 && buf[0] == 0 && buf[7] == 0);
    CHECK(write(fd, "x", 1) == -1 && errno == ENOSPC);
    struct stat st;
    CHECK(fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) && major(st.st_rdev) == 1 && minor(st.st_rdev) == 7);
    close(fd);
    struct statfs sf;
    CHECK(statfs("/dev/shm", &sf) == 0 && sf.f_type == 0x01021994);
    CHECK(stat("/dev/shm", &st) == 0 && (st.st_mode & 07777) == 01777);
    char path[64];
    snprintf(path, sizeof path, "/dev/shm/vk.%d", (int)getpid());
    fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
    CHECK(fd >= 0 && ftruncate(fd, 4096) == 0);
    close(fd);
    CHECK(unlink(path) == 0);
}

int main(void)
{
    vktest_reset_signals();
    test_sysctl();
    test_limits();
    test_fdinfo();
    test_leader_state();
    test_sys_cpu();
    test_fd_fixes();
    test_dev();
    vktest_done();
}
