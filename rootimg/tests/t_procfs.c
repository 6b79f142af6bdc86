/*
 * t_procfs — /proc agrees with the system calls (proc(5)).
 *
 * Covers: /proc/self (a link to the pid) and /proc/thread-self; /proc/self/stat (pid, comm,
 * state R, ppid, pgrp, session, num_threads before and with a second thread, starttime not in
 * the future, 52 fields); /proc/self/task (one entry per thread, the thread's own stat);
 * /proc/self/status (Name, Pid, PPid, Tgid, Uid, Gid, Threads, the signal masks);
 * /proc/self/cmdline (argv, NUL-separated, also read a byte at a time and at an offset past
 * the end); /proc/self/comm; /proc/self/fd/N (a file's path, `pipe:[N]`, the directory lists
 * exactly the open descriptors); /proc/self/maps ([stack], the executable's text);
 * /proc/meminfo; /proc/uptime (two numbers, not going back); /proc/loadavg's format; /proc/stat
 * (cpu and cpuN lines that never go back, btime, processes, ctxt); /proc/sys/kernel/hostname
 * against uname(2); /proc/mounts (six fields, /proc is proc); /proc/cpuinfo (one processor
 * block per online CPU); a process that exits: its zombie's stat says Z, its cmdline is empty,
 * and once reaped a lookup gives ENOENT and a read of a file opened before gives ESRCH.
 *
 * Only reads: it never writes to /proc (it runs natively on the host, too).
 */
#include "vktest.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>

/* The whole of a (small) file, NUL-terminated; its length in *len. NULL on error. */
static char *slurp(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return NULL;
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0) {
            free(buf);
            close(fd);
            return NULL;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
        }
    }
    close(fd);
    buf[n] = 0;
    if (len)
        *len = n;
    return buf;
}

/* Field `n` (1-based, proc(5) numbering) of a stat line, after the comm in parentheses. */
static long long stat_field(const char *stat, int n)
{
    const char *p = strrchr(stat, ')');
    if (!p || n < 3)
        return -1;
    p += 2; /* field 3 */
    for (int i = 3; i < n; i++) {
        p = strchr(p, ' ');
        if (!p)
            return -1;
        p++;
    }
    if (n == 3)
        return *p;
    return strtoll(p, NULL, 10);
}

/* The value after "Key:" in a status-style text, or NULL. */
static const char *status_value(const char *text, const char *key)
{
    size_t k = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, key, k) == 0 && p[k] == ':') {
            p += k + 1;
            while (*p == ' ' || *p == '\t')
                p++;
            return p;
        }
    }
    return NULL;
}

static int count_lines_starting(const char *text, const char *prefix)
{
    int n = 0;
    size_t k = strlen(prefix);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, prefix, k) == 0)
            n++;
    return n;
}

static void test_self_link(void)
{
    char buf[64], want[32];
    ssize_t n = readlink("/proc/self", buf, sizeof buf - 1);
    CHECK(n > 0);
    if (n > 0) {
        buf[n] = 0;
        snprintf(want, sizeof want, "%d", getpid());
        CHECK(strcmp(buf, want) == 0);
    }
    n = readlink("/proc/thread-self", buf, sizeof buf - 1);
    CHECK(n > 0);
    if (n > 0) {
        buf[n] = 0;
        snprintf(want, sizeof want, "%d/task/%d", getpid(), getpid());
        CHECK(strcmp(buf, want) == 0);
    }
}

static void test_stat(void)
{
    char *s = slurp("/proc/self/stat", NULL);
    REQUIRE(s != NULL);
    if (!s)
        return;
    CHECK(atoi(s) == getpid());
    CHECK(strstr(s, "(t_procfs)") != NULL);
    CHECK(stat_field(s, 3) == 'R');
    CHECK(stat_field(s, 4) == getppid());
    CHECK(stat_field(s, 5) == getpgrp());
    CHECK(stat_field(s, 6) == getsid(0));
    CHECK(stat_field(s, 20) == 1);
    CHECK(stat_field(s, 23) > 0); /* vsize */
    CHECK(stat_field(s, 24) >= 0); /* rss (Linux's per-CPU counters may still say 0) */
    /* starttime (ticks since boot) is not after now. */
    char *up = slurp("/proc/uptime", NULL);
    CHECK(up != NULL);
    if (up) {
        double secs = strtod(up, NULL);
        CHECK(stat_field(s, 22) <= (long long)(secs * sysconf(_SC_CLK_TCK)) + 1);
        free(up);
    }
    /* 52 fields. */
    int spaces = 0;
    for (const char *p = strrchr(s, ')'); p && *p; p++)
        spaces += *p == ' ';
    CHECK(spaces == 50);
    free(s);
}

static int thread_pipe[2];

static void *waiter(void *arg)
{
    char c;
    (void)arg;
    while (read(thread_pipe[0], &c, 1) < 0 && errno == EINTR)
        ;
    return NULL;
}

static int count_dir(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static void test_threads(void)
{
    REQUIRE(pipe(thread_pipe) == 0);
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, waiter, NULL) == 0);
    char *s = slurp("/proc/self/stat", NULL);
    CHECK(s && stat_field(s, 20) == 2);
    free(s);
    char *st = slurp("/proc/self/status", NULL);
    CHECK(st && status_value(st, "Threads") && atoi(status_value(st, "Threads")) == 2);
    free(st);
    CHECK(count_dir("/proc/self/task") == 2);
    /* The main thread's own stat names it. */
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", getpid());
    s = slurp(path, NULL);
    CHECK(s && atoi(s) == getpid() && stat_field(s, 3) == 'R');
    free(s);
    CHECK(write(thread_pipe[1], "x", 1) == 1);
    CHECK(pthread_join(t, NULL) == 0);
    close(thread_pipe[0]);
    close(thread_pipe[1]);
    /* pthread_join returns once the thread cleared its tid, which both kernels do a little
     * before the thread leaves its process: wait for it to be gone. */
    int tries = 0;
    while (count_dir("/proc/self/task") != 1 && tries++ < 500) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    s = slurp("/proc/self/stat", NULL);
    CHECK(s && stat_field(s, 20) == 1);
    free(s);
    CHECK(count_dir("/proc/self/task") == 1);
}

static void test_status(void)
{
    char *s = slurp("/proc/self/status", NULL);
    REQUIRE(s != NULL);
    if (!s)
        return;
    const char *v;
    CHECK((v = status_value(s, "Name")) && strncmp(v, "t_procfs\n", 9) == 0);
    CHECK((v = status_value(s, "State")) && v[0] == 'R');
    CHECK((v = status_value(s, "Pid")) && atoi(v) == getpid());
    CHECK((v = status_value(s, "Tgid")) && atoi(v) == getpid());
    CHECK((v = status_value(s, "PPid")) && atoi(v) == getppid());
    unsigned a, b, c, d;
    CHECK((v = status_value(s, "Uid")) && sscanf(v, "%u %u %u %u", &a, &b, &c, &d) == 4 && a == getuid() && b == geteuid());
    CHECK((v = status_value(s, "Gid")) && sscanf(v, "%u %u %u %u", &a, &b, &c, &d) == 4 && a == getgid() && b == getegid());
    CHECK((v = status_value(s, "Threads")) && atoi(v) == 1);
    CHECK((v = status_value(s, "VmSize")) && atoi(v) > 0);
    CHECK((v = status_value(s, "VmRSS")) && atoi(v) > 0);
    /* SIGUSR1 (10) blocked and SIGUSR2 (12) ignored show in the masks. */
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, &old);
    signal(SIGUSR2, SIG_IGN);
    free(s);
    s = slurp("/proc/self/status", NULL);
    CHECK(s && (v = status_value(s, "SigBlk")) && (strtoull(v, NULL, 16) & (1ull << 9)));
    CHECK(s && (v = status_value(s, "SigIgn")) && (strtoull(v, NULL, 16) & (1ull << 11)));
    sigprocmask(SIG_SETMASK, &old, NULL);
    signal(SIGUSR2, SIG_DFL);
    free(s);
}

static void test_cmdline(int argc, char **argv)
{
    char want[4096];
    size_t wl = 0;
    for (int i = 0; i < argc && wl + strlen(argv[i]) + 1 < sizeof want; i++) {
        memcpy(want + wl, argv[i], strlen(argv[i]) + 1);
        wl += strlen(argv[i]) + 1;
    }
    size_t n;
    char *s = slurp("/proc/self/cmdline", &n);
    CHECK(s && n == wl && memcmp(s, want, wl) == 0);
    free(s);
    /* A byte at a time gives the same bytes; past the end gives 0. */
    int fd = open("/proc/self/cmdline", O_RDONLY);
    CHECK(fd >= 0);
    char got[4096];
    size_t gl = 0;
    char ch;
    while (gl < sizeof got && read(fd, &ch, 1) == 1)
        got[gl++] = ch;
    CHECK(gl == wl && memcmp(got, want, wl) == 0);
    CHECK(pread(fd, got, sizeof got, 1 << 30) == 0);
    CHECK(pread(fd, got, 3, 1) == 3 && memcmp(got, want + 1, 3) == 0);
    close(fd);
    s = slurp("/proc/self/comm", NULL);
    CHECK(s && strcmp(s, "t_procfs\n") == 0);
    free(s);
}

static void test_fds(void)
{
    char path[64], link[256];
    snprintf(path, sizeof path, "/tmp/t_procfs.%d", getpid());
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    REQUIRE(fd >= 0);
    char lp[64];
    snprintf(lp, sizeof lp, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(lp, link, sizeof link - 1);
    CHECK(n > 0);
    if (n > 0) {
        link[n] = 0;
        CHECK(strcmp(link, path) == 0);
    }
    struct stat a, b;
    CHECK(lstat(lp, &a) == 0 && S_ISLNK(a.st_mode));
    CHECK(stat(lp, &a) == 0 && fstat(fd, &b) == 0 && a.st_ino == b.st_ino);
    int p[2];
    REQUIRE(pipe(p) == 0);
    snprintf(lp, sizeof lp, "/proc/self/fd/%d", p[0]);
    n = readlink(lp, link, sizeof link - 1);
    CHECK(n > 6 && strncmp(link, "pipe:[", 6) == 0 && link[n - 1] == ']');
    /* Both ends name the same pipe. */
    char link2[256];
    snprintf(lp, sizeof lp, "/proc/self/fd/%d", p[1]);
    ssize_t n2 = readlink(lp, link2, sizeof link2 - 1);
    CHECK(n2 == n && memcmp(link, link2, (size_t)n) == 0);
    snprintf(lp, sizeof lp, "/proc/self/fd/%d", 999);
    CHECK(readlink(lp, link, sizeof link) < 0 && errno == ENOENT);

    /* The directory lists exactly the open descriptors (its own included). */
    DIR *d = opendir("/proc/self/fd");
    REQUIRE(d != NULL);
    if (d) {
        char listed[256] = {0};
        int bad = 0;
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            int k = atoi(e->d_name);
            if (k < 0 || k >= 256)
                bad++;
            else
                listed[k] = 1;
            bad += e->d_type != DT_LNK && e->d_type != DT_UNKNOWN;
        }
        CHECK(bad == 0);
        int mismatch = 0;
        for (int k = 0; k < 256; k++)
            mismatch += listed[k] != (fcntl(k, F_GETFD) >= 0);
        CHECK(mismatch == 0);
        CHECK(listed[fd] && listed[p[0]] && listed[p[1]] && listed[dirfd(d)]);
        closedir(d);
    }
    close(p[0]);
    close(p[1]);
    close(fd);
    unlink(path);
}

static void test_maps(void)
{
    char *m = slurp("/proc/self/maps", NULL);
    REQUIRE(m != NULL);
    if (!m)
        return;
    CHECK(strstr(m, "[stack]") != NULL);
    char exe[256];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    CHECK(n > 0);
    if (n > 0) {
        exe[n] = 0;
        /* A line "start-end r-xp off dev ino   /path/to/t_procfs". */
        int text = 0;
        for (char *l = m; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
            char *nl = strchr(l, '\n');
            size_t len = nl ? (size_t)(nl - l) : strlen(l);
            char line[512];
            if (len >= sizeof line)
                continue;
            memcpy(line, l, len);
            line[len] = 0;
            unsigned long lo, hi;
            char perms[8];
            if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3 && perms[2] == 'x' && lo < hi) {
                size_t el = strlen(exe);
                text += len >= el && strcmp(line + len - el, exe) == 0;
            }
        }
        CHECK(text >= 1);
    }
    free(m);
}

static void test_meminfo(void)
{
    char *s = slurp("/proc/meminfo", NULL);
    REQUIRE(s != NULL);
    if (!s)
        return;
    const char *v;
    long long total = (v = status_value(s, "MemTotal")) ? atoll(v) : -1;
    long long freem = (v = status_value(s, "MemFree")) ? atoll(v) : -1;
    long long avail = (v = status_value(s, "MemAvailable")) ? atoll(v) : -1;
    CHECK(total > 0 && freem > 0 && total >= freem);
    CHECK(avail >= 0 && avail <= total);
    CHECK(status_value(s, "Cached") && status_value(s, "Buffers") && status_value(s, "SwapTotal"));
    CHECK(strstr(s, " kB\n") != NULL);
    free(s);
}

static void test_uptime(void)
{
    double up1, idle1, up2, idle2;
    char *s = slurp("/proc/uptime", NULL);
    /* (A machine up for less than 10 ms says 0.00: vk reaches init that fast.) */
    CHECK(s && sscanf(s, "%lf %lf", &up1, &idle1) == 2 && up1 >= 0 && idle1 >= 0);
    CHECK(s && s[strlen(s) - 1] == '\n');
    free(s);
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    s = slurp("/proc/uptime", NULL);
    CHECK(s && sscanf(s, "%lf %lf", &up2, &idle2) == 2 && up2 > up1 && idle2 >= idle1);
    free(s);
}

static void test_loadavg(void)
{
    char *s = slurp("/proc/loadavg", NULL);
    double a, b, c;
    int r, t, last;
    CHECK(s && sscanf(s, "%lf %lf %lf %d/%d %d", &a, &b, &c, &r, &t, &last) == 6);
    CHECK(s && a >= 0 && b >= 0 && c >= 0 && r >= 1 && r <= t && last > 0);
    free(s);
}

static void test_stat_file(void)
{
    char *s = slurp("/proc/stat", NULL);
    REQUIRE(s != NULL);
    if (!s)
        return;
    CHECK(strncmp(s, "cpu ", 4) == 0);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    CHECK(count_lines_starting(s, "cpu") == ncpu + 1);
    CHECK(count_lines_starting(s, "cpu0 ") == 1);
    unsigned long long user, nice, sys, idle;
    CHECK(sscanf(s, "cpu %llu %llu %llu %llu", &user, &nice, &sys, &idle) == 4);
    const char *v = strstr(s, "\nbtime ");
    CHECK(v && atoll(v + 7) > 1000000000LL && atoll(v + 7) <= (long long)time(NULL));
    CHECK(strstr(s, "\nprocesses ") && strstr(s, "\nctxt ") && strstr(s, "\nprocs_running "));
    v = strstr(s, "\nprocs_running ");
    CHECK(v && atoi(v + 15) >= 1);
    /* Every CPU time goes only forward (top takes differences). */
    unsigned long long before[10], after[10];
    int n1 = sscanf(s, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &before[0], &before[1], &before[2], &before[3],
                    &before[4], &before[5], &before[6], &before[7]);
    int back = 0;
    for (int round = 0; round < 20; round++) {
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
        char *s2 = slurp("/proc/stat", NULL);
        int n2 = s2 ? sscanf(s2, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &after[0], &after[1], &after[2],
                             &after[3], &after[4], &after[5], &after[6], &after[7])
                    : 0;
        free(s2);
        back += n2 != n1;
        for (int i = 0; i < n1 && i < n2; i++) {
            back += after[i] < before[i];
            before[i] = after[i];
        }
    }
    CHECK(n1 == 8 && back == 0);
    free(s);
}

static void test_hostname(void)
{
    struct utsname u;
    REQUIRE(uname(&u) == 0);
    char *s = slurp("/proc/sys/kernel/hostname", NULL);
    CHECK(s != NULL);
    if (s) {
        char *nl = strchr(s, '\n');
        CHECK(nl && nl[1] == 0);
        if (nl)
            *nl = 0;
        CHECK(strcmp(s, u.nodename) == 0);
        free(s);
    }
    s = slurp("/proc/sys/kernel/ostype", NULL);
    CHECK(s && strcmp(s, "Linux\n") == 0);
    free(s);
    s = slurp("/proc/sys/kernel/osrelease", NULL);
    CHECK(s && strncmp(s, u.release, strlen(u.release)) == 0);
    free(s);
    s = slurp("/proc/sys/kernel/domainname", NULL);
    CHECK(s && strncmp(s, u.domainname, strlen(u.domainname)) == 0 && strcmp(s + strlen(u.domainname), "\n") == 0);
    free(s);
    s = slurp("/proc/sys/kernel/version", NULL);
    CHECK(s && strncmp(s, u.version, strlen(u.version)) == 0 && strcmp(s + strlen(u.version), "\n") == 0);
    free(s);
}

static void test_mounts(void)
{
    char *s = slurp("/proc/mounts", NULL);
    REQUIRE(s != NULL);
    if (!s)
        return;
    int lines = 0, bad = 0, proc = 0;
    for (char *l = s; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
        char f[6][256];
        char rest[8];
        char line[1024];
        char *nl = strchr(l, '\n');
        size_t len = nl ? (size_t)(nl - l) : strlen(l);
        if (len >= sizeof line)
            continue;
        memcpy(line, l, len);
        line[len] = 0;
        lines++;
        int n = sscanf(line, "%255s %255s %255s %255s %255s %255s %7s", f[0], f[1], f[2], f[3], f[4], f[5], rest);
        bad += n != 6;
        proc += n == 6 && strcmp(f[1], "/proc") == 0 && strcmp(f[2], "proc") == 0;
    }
    CHECK(lines >= 2 && bad == 0);
    CHECK(proc >= 1);
    free(s);
}

static void test_cpuinfo(void)
{
    char *s = slurp("/proc/cpuinfo", NULL);
    REQUIRE(s != NULL);
    if (!s)
        return;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    CHECK(count_lines_starting(s, "processor") == n);
    char want[64];
    snprintf(want, sizeof want, "processor\t: %ld\n", n - 1);
    CHECK(strstr(s, want) != NULL);
    free(s);
}

static void test_gone(void)
{
    int p[2];
    REQUIRE(pipe(p) == 0);
    pid_t c = fork();
    REQUIRE(c >= 0);
    if (c == 0) {
        char ch;
        close(p[1]);
        while (read(p[0], &ch, 1) < 0 && errno == EINTR)
            ;
        _exit(7);
    }
    close(p[0]);
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", c);
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0);
    char buf[1024];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    CHECK(n > 0);
    if (n > 0) {
        buf[n] = 0;
        CHECK(atoi(buf) == c && stat_field(buf, 4) == getpid());
    }
    /* Let it exit; wait for the zombie without reaping it. */
    close(p[1]);
    siginfo_t si;
    CHECK(waitid(P_PID, (id_t)c, &si, WEXITED | WNOWAIT) == 0);
    n = pread(fd, buf, sizeof buf - 1, 0);
    CHECK(n > 0);
    if (n > 0) {
        buf[n] = 0;
        CHECK(stat_field(buf, 3) == 'Z');
    }
    snprintf(path, sizeof path, "/proc/%d/cmdline", c);
    size_t len = 99;
    char *s = slurp(path, &len);
    CHECK(s && len == 0);
    free(s);
    int st;
    CHECK(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 7);
    /* Reaped: the open file reads ESRCH, a new lookup ENOENT. */
    errno = 0;
    CHECK(pread(fd, buf, sizeof buf, 0) < 0 && errno == ESRCH);
    close(fd);
    snprintf(path, sizeof path, "/proc/%d/stat", c);
    CHECK(open(path, O_RDONLY) < 0 && errno == ENOENT);
    snprintf(path, sizeof path, "/proc/%d", c);
    struct stat sb;
    CHECK(stat(path, &sb) < 0 && errno == ENOENT);
}

/* Opening /proc/self/fd/N of a pipe opens the pipe itself (a magic link, not its text):
 * a new read or write end of the same pipe. */
static void test_reopen_pipe(void)
{
    int p[2];
    REQUIRE(pipe(p) == 0);
    char path[64], buf[8];
    snprintf(path, sizeof path, "/proc/self/fd/%d", p[0]);
    int r2 = open(path, O_RDONLY);
    CHECKF(r2 >= 0, "open %s", path);
    snprintf(path, sizeof path, "/proc/self/fd/%d", p[1]);
    int w2 = open(path, O_WRONLY);
    CHECKF(w2 >= 0, "open %s", path);
    if (r2 < 0 || w2 < 0)
        return;
    CHECK(write(p[1], "ab", 2) == 2);
    CHECK(read(r2, buf, sizeof buf) == 2 && memcmp(buf, "ab", 2) == 0);
    CHECK(write(w2, "c", 1) == 1);
    CHECK(read(p[0], buf, sizeof buf) == 1 && buf[0] == 'c');
    /* The new descriptor names the same pipe. */
    char l1[64] = "", l2[64] = "";
    snprintf(path, sizeof path, "/proc/self/fd/%d", p[0]);
    CHECK(readlink(path, l1, sizeof l1 - 1) > 0);
    snprintf(path, sizeof path, "/proc/self/fd/%d", r2);
    CHECK(readlink(path, l2, sizeof l2 - 1) > 0);
    CHECKF(strcmp(l1, l2) == 0, "%s vs %s", l1, l2);
    /* End of file only once every write end is closed. */
    close(p[1]);
    CHECK(write(w2, "d", 1) == 1);
    CHECK(read(r2, buf, sizeof buf) == 1 && buf[0] == 'd');
    close(w2);
    CHECK(read(r2, buf, sizeof buf) == 0);
    close(p[0]);
    close(r2);
}

/* /dev/stdin and friends lead to /proc/self/fd: reading /dev/stdin reads whatever fd 0 is. */
static void test_dev_stdin(void)
{
    char l[64] = "";
    CHECK(readlink("/dev/stdin", l, sizeof l - 1) > 0 && strcmp(l, "/proc/self/fd/0") == 0);
    memset(l, 0, sizeof l);
    CHECK(readlink("/dev/fd", l, sizeof l - 1) > 0 && strcmp(l, "/proc/self/fd") == 0);
    int p[2];
    REQUIRE(pipe(p) == 0);
    int saved = dup(0);
    REQUIRE(saved >= 0 && dup2(p[0], 0) == 0);
    CHECK(write(p[1], "in", 2) == 2);
    int fd = open("/dev/stdin", O_RDONLY);
    char buf[4];
    CHECKF(fd >= 0, "open /dev/stdin");
    if (fd >= 0) {
        CHECK(read(fd, buf, sizeof buf) == 2 && memcmp(buf, "in", 2) == 0);
        close(fd);
    }
    dup2(saved, 0);
    close(saved);
    close(p[0]);
    close(p[1]);
}

int main(int argc, char **argv)
{
    vktest_reset_signals();
    test_self_link();
    test_stat();
    test_threads();
    test_status();
    test_cmdline(argc, argv);
    test_fds();
    test_reopen_pipe();
    test_dev_stdin();
    test_maps();
    test_meminfo();
    test_uptime();
    test_loadavg();
    test_stat_file();
    test_hostname();
    test_mounts();
    test_cpuinfo();
    test_gone();
    return vktest_done();
}
