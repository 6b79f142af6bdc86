/*
 * vktest.h — the tiny harness shared by the vk guest test programs.
 *
 * Each program calls CHECK(cond) once per behaviour it verifies. A passing check is counted
 * silently; a failing one prints `FAIL file:line function: cond (errno N: text)` with the errno
 * seen right after `cond` was evaluated. vktest_done() prints exactly `N passed, M failed` as the
 * last line and exits 0 when M == 0, else 1.
 *
 * Output goes straight to fd 1 with write(2), never through stdio buffers, so a fork() can never
 * duplicate pending output and the order of lines is the order of events.
 *
 * vktest_reset_signals() gives a program a clean start whatever its parent left behind: every
 * signal unblocked and at SIG_DFL (a parent may have ignored SIGPIPE or SIGCHLD, which execve
 * keeps).
 *
 * A child process (after fork) must not call vktest_done(): it reports through its exit status,
 * which the parent CHECKs. vktest_child_done() ends a child that ran CHECKs of its own: it exits
 * with the number of failed checks (capped at 100) and prints nothing on success.
 */
#ifndef VKTEST_H
#define VKTEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int vktest_passed;
static int vktest_failed;

/* Print a line on fd 1 in one write(2), unbuffered. */
static void vktest_print(const char *fmt, ...) __attribute__((format(printf, 1, 2), unused));
static void vktest_print(const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (len < 0)
        return;
    if ((size_t)len >= sizeof line)
        len = sizeof line - 1;
    const char *p = line;
    while (len > 0) {
        ssize_t n = write(1, p, (size_t)len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        p += n;
        len -= (int)n;
    }
}

static void vktest_fail(const char *file, int line, const char *func, const char *what,
                        int err) __attribute__((unused));
static void vktest_fail(const char *file, int line, const char *func, const char *what, int err)
{
    vktest_failed++;
    vktest_print("FAIL %s:%d %s: %s (errno %d: %s)\n", file, line, func, what, err,
                 strerror(err));
}

/* Count one behaviour: `cond` is evaluated exactly once, then errno is captured. */
#define CHECK(cond)                                                                     \
    do {                                                                                \
        int vktest_ok_ = (cond) ? 1 : 0;                                                \
        int vktest_errno_ = errno;                                                      \
        if (vktest_ok_)                                                                 \
            vktest_passed++;                                                            \
        else                                                                            \
            vktest_fail(__FILE__, __LINE__, __func__, #cond, vktest_errno_);            \
    } while (0)

/* CHECK with an extra printf-style detail line on failure (values seen, etc.). */
#define CHECKF(cond, ...)                                                               \
    do {                                                                                \
        int vktest_ok_ = (cond) ? 1 : 0;                                                \
        int vktest_errno_ = errno;                                                      \
        if (vktest_ok_) {                                                               \
            vktest_passed++;                                                            \
        } else {                                                                        \
            vktest_fail(__FILE__, __LINE__, __func__, #cond, vktest_errno_);            \
            vktest_print("     ");                                                      \
            vktest_print(__VA_ARGS__);                                                  \
            vktest_print("\n");                                                         \
        }                                                                               \
    } while (0)

/* A setup step that later checks depend on: counted like a CHECK. */
#define REQUIRE(cond) CHECK(cond)

/* An address the compiler cannot reason about, for "the kernel must return EFAULT" checks. */
static inline void *vktest_launder(void *p)
{
    __asm__("" : "+r"(p));
    return p;
}
#define BAD_PTR(addr) vktest_launder((void *)(unsigned long)(addr))

/* "dir/name" in one of four static buffers used in turn, so that up to four such paths can be
 * arguments of one call (tests define P(name) as vktest_path(their_dir, name)). */
static const char *vktest_path(const char *dir, const char *name) __attribute__((unused));
static const char *vktest_path(const char *dir, const char *name)
{
    static char bufs[4][512];
    static int next;
    char *b = bufs[next++ & 3];
    snprintf(b, sizeof bufs[0], "%s/%s", dir, name);
    return b;
}

/* The text of file `path` (a /proc file, read to its end) in `buf` of `size` bytes, NUL
 * terminated (cut at size - 1 bytes); -1 when it cannot be opened. */
static ssize_t vktest_read_text(const char *path, char *buf, size_t size) __attribute__((unused));
static ssize_t vktest_read_text(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t n = 0, r;
    while (n < (ssize_t)size - 1 && (r = read(fd, buf + n, size - 1 - (size_t)n)) > 0)
        n += r;
    close(fd);
    buf[n] = 0;
    return n;
}

/* A counter of /proc/vmstat (-1 when the file or the counter is missing). */
static long long vktest_vmstat(const char *name) __attribute__((unused));
static long long vktest_vmstat(const char *name)
{
    static char buf[65536];
    if (vktest_read_text("/proc/vmstat", buf, sizeof buf) < 0)
        return -1;
    size_t len = strlen(name);
    for (char *l = buf; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (strncmp(l, name, len) == 0 && l[len] == ' ')
            return atoll(l + len + 1);
    return -1;
}

static void vktest_reset_signals(void) __attribute__((unused));
static void vktest_reset_signals(void)
{
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    for (int sig = 1; sig < 65; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            sigaction(sig, &dfl, NULL); /* libc-reserved signals refuse; that is fine */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    errno = 0;
}

static int vktest_done(void) __attribute__((unused, noreturn));
static int vktest_done(void)
{
    vktest_print("%d passed, %d failed\n", vktest_passed, vktest_failed);
    exit(vktest_failed == 0 ? 0 : 1);
}

static void vktest_child_done(void) __attribute__((unused, noreturn));
static void vktest_child_done(void)
{
    _exit(vktest_failed > 100 ? 100 : vktest_failed);
}

#endif /* VKTEST_H */
