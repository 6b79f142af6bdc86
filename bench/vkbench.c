/*
 * vkbench.c — what common guest operations cost; the same static binary runs natively and
 * under vk (`make bench`, bench/run.sh), so the two columns measure the same code.
 *
 * Each result is one line "bench: <name> <value> ns":
 *   null_syscall   syscall(SYS_getppid), per call, as a musl program makes it (vk patches
 *                  the site after the 64th call: its `syscall` hops to the fast path)
 *   null_syscall_trap  getppid from a site vk cannot patch (an invalid byte after it ends
 *                  vk's search for padding): one trap to the kernel and back, every call
 *   null_syscall_site  getppid from a `mov $110, %eax; syscall` site, the sequence glibc's
 *                  wrappers (and so Debian's programs) use, which vk patches into a jump to its
 *                  fast path
 *   clock_gettime  clock_gettime(CLOCK_MONOTONIC) through the C library, per call (the vDSO
 *                  when there is one: no trap)
 *   pagefault      first touch of a fresh anonymous page, per page
 *   fork           fork + _exit + waitpid
 *   forkexec       fork + execve(this program, "--exit") + waitpid
 *   spawn          posix_spawn(this program, "--exit") + waitpid (musl's is a clone with
 *                  CLONE_VM|CLONE_VFORK: the vfork + exec of system(3), popen, make, Python)
 *   pipe_rtt       one byte there and back between two processes over two pipes
 *   pipe_rtt_site  the same, with read and write made as glibc's wrappers make them: write from
 *                  `mov $1, %eax; syscall`, read from `xor %eax, %eax; syscall` (a hop)
 *   unix_mib       1 MiB from one process to another over an AF_UNIX stream socketpair
 *   tcp_mib        1 MiB from one process to another over TCP on 127.0.0.1
 *   tcp_rtt        one byte there and back between two processes over TCP on 127.0.0.1
 *
 * The threaded mode (`--threads T FILE [scale]`) runs T threads of one process, started
 * together, each looping on the same operation; each result is the wall time of the whole
 * run divided by the operations all threads did ("bench: mt_<name>_<T> <value> ns"), so a
 * second thread that runs truly in parallel halves it:
 *   mt_pread       pread(2) of 512 bytes at offset 0 of FILE (one descriptor, shared)
 *   mt_getppid     syscall(SYS_getppid)
 *   mt_mmap        mmap of 64 KiB anonymous memory + munmap (map changes: exclusive)
 *
 * Build: musl-gcc -static -O2 -o vkbench vkbench.c -lpthread
 * Run:   ./vkbench [scale]     (iterations are multiplied by scale, default 1)
 *        ./vkbench --threads T FILE [scale]
 *        ./vkbench --only NAME[,NAME...] [scale]   (only these cases, e.g. null_syscall,pipe_rtt)
 *        ./vkbench --exit      (exits at once: the program forkexec runs)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static void die(const char *what) {
    fprintf(stderr, "vkbench: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void report(const char *name, double ns) {
    printf("bench: %s %.0f ns\n", name, ns);
    fflush(stdout);
}

/* Wait for child c and insist that it exited with status 0. */
static void reap(pid_t c, const char *what) {
    int st;
    while (waitpid(c, &st, 0) < 0)
        if (errno != EINTR) die("waitpid");
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "vkbench: %s: child status 0x%x\n", what, st);
        exit(1);
    }
}

static double null_syscall(int n) {
    long sum = 0;
    for (int i = 0; i < n / 10; i++) sum += syscall(SYS_getppid); /* warm up */
    double t0 = now();
    for (int i = 0; i < n; i++) sum += syscall(SYS_getppid);
    double t = (now() - t0) / n;
    if (sum < 0) { fprintf(stderr, "vkbench: getppid failed\n"); exit(1); }
    return t;
}

/* System calls from `mov $nr, %eax; syscall` sites, as glibc's wrappers make them. */
__attribute__((noinline)) static long site_getppid(void) {
    long r;
    __asm__ volatile("mov $110, %%eax\n\tsyscall" : "=a"(r) : : "rcx", "r11", "memory");
    return r;
}

/* glibc's read sets eax with `xor %eax, %eax` (2 bytes: no room for vk's 7-byte jump; its
 * `syscall` hops to the padding after the function's `ret`); write with `mov $1, %eax`. */
__attribute__((noinline)) static long site_read(int fd, void *buf, size_t n) {
    long r;
    __asm__ volatile("xor %%eax, %%eax\n\tsyscall" : "=a"(r) : "D"((long)fd), "S"(buf), "d"(n) : "rcx", "r11", "memory");
    return r;
}

__attribute__((noinline)) static long site_write(int fd, const void *buf, size_t n) {
    long r;
    __asm__ volatile("mov $1, %%eax\n\tsyscall" : "=a"(r) : "D"((long)fd), "S"(buf), "d"(n) : "rcx", "r11", "memory");
    return r;
}

/* getppid from a site vk never patches: the number from a register, and after the `ret` an
 * invalid instruction byte where vk's search for padding to hop to stops. */
long trap_getppid(void);
__asm__(".text\n.p2align 4\ntrap_getppid:\n\tmov $110, %rax\n\tsyscall\n\tret\n\t.byte 0x06\n.p2align 4\n");

/* getppid through `f`, per call. */
static double getppid_via(long (*f)(void), int n) {
    long sum = 0;
    for (int i = 0; i < n / 10; i++) sum += f(); /* warm up */
    double t0 = now();
    for (int i = 0; i < n; i++) sum += f();
    double t = (now() - t0) / n;
    if (sum < 0) { fprintf(stderr, "vkbench: getppid failed\n"); exit(1); }
    return t;
}

static double null_syscall_trap(int n) { return getppid_via(trap_getppid, n); }
static double null_syscall_site(int n) { return getppid_via(site_getppid, n); }

static double clock_read(int n) {
    struct timespec t;
    long sum = 0;
    for (int i = 0; i < n / 10; i++) sum += clock_gettime(CLOCK_MONOTONIC, &t); /* warm up */
    double t0 = now();
    for (int i = 0; i < n; i++) sum += clock_gettime(CLOCK_MONOTONIC, &t);
    double per = (now() - t0) / n;
    if (sum != 0) { fprintf(stderr, "vkbench: clock_gettime failed\n"); exit(1); }
    return per;
}

static double pagefault(size_t pages) {
    size_t len = pages * 4096;
    volatile char *m = mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) die("mmap");
    double t0 = now();
    for (size_t i = 0; i < pages; i++) m[i * 4096] = 1;
    double t = (now() - t0) / pages;
    munmap((void *)m, len);
    return t;
}

static double fork_wait(int n) {
    double t0 = now();
    for (int i = 0; i < n; i++) {
        pid_t c = fork();
        if (c < 0) die("fork");
        if (c == 0) _exit(0);
        reap(c, "fork");
    }
    return (now() - t0) / n;
}

static double fork_exec(int n, const char *self) {
    double t0 = now();
    for (int i = 0; i < n; i++) {
        pid_t c = fork();
        if (c < 0) die("fork");
        if (c == 0) {
            char *const argv[] = {(char *)self, "--exit", 0};
            char *const envp[] = {0};
            execve(self, argv, envp);
            _exit(127);
        }
        reap(c, "fork+exec");
    }
    return (now() - t0) / n;
}

static double spawn_exec(int n, const char *self) {
    char *const argv[] = {(char *)self, "--exit", 0};
    char *const envp[] = {0};
    double t0 = now();
    for (int i = 0; i < n; i++) {
        pid_t c;
        errno = posix_spawn(&c, self, 0, 0, argv, envp);
        if (errno) die("posix_spawn");
        reap(c, "posix_spawn");
    }
    return (now() - t0) / n;
}

static long libc_read(int fd, void *buf, size_t n) { return read(fd, buf, n); }
static long libc_write(int fd, const void *buf, size_t n) { return write(fd, buf, n); }

/* A pipe round trip with rd and wr as the read and write calls. */
static double pipe_rtt_via(int n, long (*rd)(int, void *, size_t), long (*wr)(int, const void *, size_t)) {
    int ab[2], ba[2];
    if (pipe(ab) || pipe(ba)) die("pipe");
    pid_t c = fork();
    if (c < 0) die("fork");
    char b = 0;
    if (c == 0) {
        close(ab[1]);
        close(ba[0]);
        for (;;) {
            long r = rd(ab[0], &b, 1);
            if (r == 0) _exit(0);
            if (r != 1 || wr(ba[1], &b, 1) != 1) _exit(1);
        }
    }
    close(ab[0]);
    close(ba[1]);
    for (int i = 0; i < n / 10 + 1; i++) /* warm up: both sides running */
        if (wr(ab[1], &b, 1) != 1 || rd(ba[0], &b, 1) != 1) die("pipe warm-up");
    double t0 = now();
    for (int i = 0; i < n; i++)
        if (wr(ab[1], &b, 1) != 1 || rd(ba[0], &b, 1) != 1) die("pipe round trip");
    double t = (now() - t0) / n;
    close(ab[1]);
    close(ba[0]);
    reap(c, "pipe");
    return t;
}

static double pipe_rtt(int n) { return pipe_rtt_via(n, libc_read, libc_write); }
static double pipe_rtt_site(int n) { return pipe_rtt_via(n, site_read, site_write); }

/* A connected TCP pair on 127.0.0.1 (in this process: the caller forks after). */
static void tcp_pair(int sv[2]) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 1) || getsockname(l, (struct sockaddr *)&a, &al))
        die("tcp listener");
    sv[0] = socket(AF_INET, SOCK_STREAM, 0);
    if (sv[0] < 0 || connect(sv[0], (struct sockaddr *)&a, sizeof a)) die("tcp connect");
    sv[1] = accept(l, NULL, NULL);
    if (sv[1] < 0) die("tcp accept");
    int one = 1;
    setsockopt(sv[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(sv[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    close(l);
}

/* `mib` MiB from a child to this process over the connected pair sv; ns per MiB. */
static double stream_mib(int sv[2], int mib, const char *what) {
    static char buf[1 << 16];
    pid_t c = fork();
    if (c < 0) die("fork");
    if (c == 0) {
        close(sv[1]);
        long left = (long)mib << 20;
        while (left > 0) {
            ssize_t w = write(sv[0], buf, left < (long)sizeof buf ? (size_t)left : sizeof buf);
            if (w <= 0) _exit(1);
            left -= w;
        }
        _exit(0);
    }
    close(sv[0]);
    double t0 = now();
    long got = 0;
    for (;;) {
        ssize_t r = read(sv[1], buf, sizeof buf);
        if (r < 0) die(what);
        if (r == 0) break;
        got += r;
    }
    double t = (now() - t0) / mib;
    close(sv[1]);
    reap(c, what);
    if (got != (long)mib << 20) { fprintf(stderr, "vkbench: %s: short transfer\n", what); exit(1); }
    return t;
}

static double unix_mib(int mib) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) die("socketpair");
    return stream_mib(sv, mib, "unix stream");
}

static double tcp_mib(int mib) {
    int sv[2];
    tcp_pair(sv);
    return stream_mib(sv, mib, "tcp stream");
}

static double tcp_rtt(int n) {
    int sv[2];
    tcp_pair(sv);
    pid_t c = fork();
    if (c < 0) die("fork");
    char b = 0;
    if (c == 0) {
        close(sv[0]);
        for (;;) {
            ssize_t r = read(sv[1], &b, 1);
            if (r == 0) _exit(0);
            if (r != 1 || write(sv[1], &b, 1) != 1) _exit(1);
        }
    }
    close(sv[1]);
    for (int i = 0; i < n / 10 + 1; i++)
        if (write(sv[0], &b, 1) != 1 || read(sv[0], &b, 1) != 1) die("tcp warm-up");
    double t0 = now();
    for (int i = 0; i < n; i++)
        if (write(sv[0], &b, 1) != 1 || read(sv[0], &b, 1) != 1) die("tcp round trip");
    double t = (now() - t0) / n;
    close(sv[0]);
    reap(c, "tcp");
    return t;
}

/* The threaded mode: T threads, started together by a barrier, each doing `iters` of `op`. */
enum mt_op { MT_PREAD, MT_GETPPID, MT_MMAP };

struct mt_run {
    enum mt_op op;
    int fd;
    long iters;
    pthread_barrier_t ready;
    atomic_int go;
};

struct mt_thread {
    struct mt_run *run;
    pthread_t tid;
    double end;
};

static void *mt_thread(void *arg) {
    struct mt_thread *me = arg;
    struct mt_run *r = me->run;
    char buf[512];
    /* Ready, then wait for the start: timing does not depend on when the barrier lets the
     * main thread go (musl's barrier may keep it asleep while the workers already run). */
    pthread_barrier_wait(&r->ready);
    while (!atomic_load(&r->go)) sched_yield();
    for (long i = 0; i < r->iters; i++) {
        switch (r->op) {
        case MT_PREAD:
            if (pread(r->fd, buf, sizeof buf, 0) != (ssize_t)sizeof buf) die("pread");
            break;
        case MT_GETPPID:
            if (syscall(SYS_getppid) < 0) die("getppid");
            break;
        case MT_MMAP: {
            void *m = mmap(0, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (m == MAP_FAILED) die("mmap");
            if (munmap(m, 65536)) die("munmap");
            break;
        }
        }
    }
    me->end = now();
    return 0;
}

/* Wall time of `nthreads` threads each doing `iters` of `op`, per operation: from the start
 * signal to the last thread's end. */
static double mt_bench(enum mt_op op, int fd, int nthreads, long iters) {
    struct mt_run r = {.op = op, .fd = fd, .iters = iters};
    struct mt_thread t[8];
    if (pthread_barrier_init(&r.ready, 0, nthreads + 1)) die("pthread_barrier_init");
    for (int i = 0; i < nthreads; i++) {
        t[i].run = &r;
        errno = pthread_create(&t[i].tid, 0, mt_thread, &t[i]);
        if (errno) die("pthread_create");
    }
    pthread_barrier_wait(&r.ready);
    double t0 = now(), end = t0;
    atomic_store(&r.go, 1);
    for (int i = 0; i < nthreads; i++) {
        pthread_join(t[i].tid, 0);
        if (t[i].end > end) end = t[i].end;
    }
    pthread_barrier_destroy(&r.ready);
    return (end - t0) / ((double)iters * nthreads);
}

static void threaded(int nthreads, const char *file, int scale) {
    if (nthreads < 1 || nthreads > 8) {
        fprintf(stderr, "vkbench: --threads: 1 to 8 threads\n");
        exit(2);
    }
    int fd = open(file, O_RDONLY);
    if (fd < 0) die(file);
    char name[64];
    struct { const char *name; enum mt_op op; long iters; } cases[] = {
        {"pread", MT_PREAD, 20000},
        {"getppid", MT_GETPPID, 20000},
        {"mmap", MT_MMAP, 5000},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        long n = cases[i].iters * scale;
        mt_bench(cases[i].op, fd, nthreads, n / 10 + 1); /* warm up: threads, caches */
        snprintf(name, sizeof name, "mt_%s_%d", cases[i].name, nthreads);
        report(name, mt_bench(cases[i].op, fd, nthreads, n));
    }
    close(fd);
}

/* Whether case `name` is in the comma-separated list `only` (every case when there is none). */
static int wanted(const char *only, const char *name) {
    if (!only) return 1;
    size_t n = strlen(name);
    for (const char *p = only; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && strncmp(p, name, n) == 0) return 1;
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--exit") == 0) _exit(0);
    if (argc > 3 && strcmp(argv[1], "--threads") == 0) {
        int scale = argc > 4 ? atoi(argv[4]) : 1;
        threaded(atoi(argv[2]), argv[3], scale < 1 ? 1 : scale);
        return 0;
    }
    /* The program execs itself: argv[0] when it is a path, else the host's /proc/self/exe. */
    const char *self = argv[0] && strchr(argv[0], '/') ? argv[0] : "/proc/self/exe";
    const char *only = 0;
    if (argc > 2 && strcmp(argv[1], "--only") == 0) {
        only = argv[2];
        argc -= 2;
        argv += 2;
    }
    int scale = argc > 1 ? atoi(argv[1]) : 1;
    if (scale < 1) scale = 1;

    if (wanted(only, "null_syscall")) report("null_syscall", null_syscall(50000 * scale));
    if (wanted(only, "null_syscall_trap")) report("null_syscall_trap", null_syscall_trap(50000 * scale));
    if (wanted(only, "null_syscall_site")) report("null_syscall_site", null_syscall_site(50000 * scale));
    if (wanted(only, "clock_gettime")) report("clock_gettime", clock_read(500000 * scale));
    if (wanted(only, "pagefault")) report("pagefault", pagefault(4096 * (size_t)scale)); /* 16 MiB per scale */
    if (wanted(only, "fork")) report("fork", fork_wait(200 * scale));
    if (wanted(only, "forkexec")) report("forkexec", fork_exec(100 * scale, self));
    if (wanted(only, "spawn")) report("spawn", spawn_exec(100 * scale, self));
    if (wanted(only, "pipe_rtt")) report("pipe_rtt", pipe_rtt(2000 * scale));
    if (wanted(only, "pipe_rtt_site")) report("pipe_rtt_site", pipe_rtt_site(2000 * scale));
    if (wanted(only, "unix_mib")) report("unix_mib", unix_mib(64 * scale));
    if (wanted(only, "tcp_mib")) report("tcp_mib", tcp_mib(64 * scale));
    if (wanted(only, "tcp_rtt")) report("tcp_rtt", tcp_rtt(2000 * scale));
    return 0;
}
