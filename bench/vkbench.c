/*
 * vkbench.c — what common guest operations cost; the same static binary runs natively and
 * under vk (`make bench`, bench/run.sh), so the two columns measure the same code.
 *
 * Each result is one line "bench: <name> <value> ns":
 *   null_syscall   syscall(SYS_getppid), per call (vk: one trap to the kernel and back)
 *   pagefault      first touch of a fresh anonymous page, per page
 *   fork           fork + _exit + waitpid
 *   forkexec       fork + execve(this program, "--exit") + waitpid
 *   pipe_rtt       one byte there and back between two processes over two pipes
 *
 * Build: musl-gcc -static -O2 -o vkbench vkbench.c
 * Run:   ./vkbench [scale]     (iterations are multiplied by scale, default 1)
 *        ./vkbench --exit      (exits at once: the program forkexec runs)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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

static double pipe_rtt(int n) {
    int ab[2], ba[2];
    if (pipe(ab) || pipe(ba)) die("pipe");
    pid_t c = fork();
    if (c < 0) die("fork");
    char b = 0;
    if (c == 0) {
        close(ab[1]);
        close(ba[0]);
        for (;;) {
            ssize_t r = read(ab[0], &b, 1);
            if (r == 0) _exit(0);
            if (r != 1 || write(ba[1], &b, 1) != 1) _exit(1);
        }
    }
    close(ab[0]);
    close(ba[1]);
    for (int i = 0; i < n / 10 + 1; i++) /* warm up: both sides running */
        if (write(ab[1], &b, 1) != 1 || read(ba[0], &b, 1) != 1) die("pipe warm-up");
    double t0 = now();
    for (int i = 0; i < n; i++)
        if (write(ab[1], &b, 1) != 1 || read(ba[0], &b, 1) != 1) die("pipe round trip");
    double t = (now() - t0) / n;
    close(ab[1]);
    close(ba[0]);
    reap(c, "pipe");
    return t;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--exit") == 0) _exit(0);
    int scale = argc > 1 ? atoi(argv[1]) : 1;
    if (scale < 1) scale = 1;
    /* The program execs itself: argv[0] when it is a path, else the host's /proc/self/exe. */
    const char *self = argv[0] && strchr(argv[0], '/') ? argv[0] : "/proc/self/exe";

    report("null_syscall", null_syscall(50000 * scale));
    report("pagefault", pagefault(4096 * (size_t)scale)); /* 16 MiB per scale */
    report("fork", fork_wait(200 * scale));
    report("forkexec", fork_exec(100 * scale, self));
    report("pipe_rtt", pipe_rtt(2000 * scale));
    return 0;
}
