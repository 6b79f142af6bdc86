/*
 * t_faultaround — what a program can observe of first-touch page faults, whatever the kernel
 * maps ahead of them (Linux's transparent huge pages, vk's fault-around): fresh private
 * anonymous pages read as zeros and are resident once touched (mincore); munmap of the middle
 * of a sequentially touched range takes exactly that part (ENOMEM from mincore, the rest
 * keeps its data); MADV_DONTNEED gives zeros back; after fork a private mapping touched
 * ahead of need stays private both ways, and a shared one stays shared; a shared file
 * mapping read sequentially sees the file, and a write(2) after the mapping. /proc/vmstat's
 * pgfault_around_anon, where the kernel has it (vk), grows on a sequential touch.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "vktest.h"

#define PAGE 4096UL

/* Pages of [p, p + pages * PAGE) mincore says are resident; -1 on error. */
static long resident(void *p, unsigned long pages)
{
    static unsigned char vec[4096];
    if (pages > sizeof vec || mincore(p, pages * PAGE, vec) != 0)
        return -1;
    long n = 0;
    for (unsigned long i = 0; i < pages; i++)
        n += vec[i] & 1;
    return n;
}

static char *anon(unsigned long pages, int flags)
{
    void *p = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, flags | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

#define vmstat(name) vktest_vmstat(name)

static void test_zeros_and_residency(void)
{
    const unsigned long pages = 1024;
    long long around = vmstat("pgfault_around_anon");
    char *m = anon(pages, MAP_PRIVATE);
    REQUIRE(m != NULL);
    int zeros = 1;
    for (unsigned long i = 0; i < pages; i++) {
        /* Read first: a page brought in ahead of its fault is zeros too. */
        for (unsigned long j = 0; j < PAGE; j += 512)
            zeros &= m[i * PAGE + j] == 0;
        m[i * PAGE] = (char)(i + 1);
    }
    CHECK(zeros);
    CHECK(resident(m, pages) == (long)pages);
    int kept = 1;
    for (unsigned long i = 0; i < pages; i++)
        kept &= m[i * PAGE] == (char)(i + 1);
    CHECK(kept);
    CHECKF(around < 0 || vmstat("pgfault_around_anon") > around, "pgfault_around_anon %lld", around);

    /* munmap of the middle of what was touched: exactly that part goes. */
    CHECK(munmap(m + 101 * PAGE, 7 * PAGE) == 0);
    unsigned char v;
    errno = 0;
    CHECK(mincore(m + 104 * PAGE, PAGE, &v) == -1 && errno == ENOMEM);
    CHECK(resident(m, 101) == 101 && resident(m + 108 * PAGE, 100) == 100);
    CHECK(m[100 * PAGE] == (char)101 && m[108 * PAGE] == (char)109);
    /* Mapped again there: fresh zeros. */
    char *again = mmap(m + 101 * PAGE, 7 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    REQUIRE(again == m + 101 * PAGE);
    zeros = 1;
    for (unsigned long i = 0; i < 7; i++)
        zeros &= again[i * PAGE] == 0 && again[i * PAGE + PAGE - 1] == 0;
    CHECK(zeros);

    /* MADV_DONTNEED: zeros on the next touch, the neighbours untouched. */
    CHECK(madvise(m + 200 * PAGE, 50 * PAGE, MADV_DONTNEED) == 0);
    zeros = 1;
    for (unsigned long i = 200; i < 250; i++)
        zeros &= m[i * PAGE] == 0;
    CHECK(zeros);
    CHECK(m[199 * PAGE] == (char)200 && m[250 * PAGE] == (char)251);
    CHECK(munmap(m, pages * PAGE) == 0);
}

static void test_fork_private(void)
{
    const unsigned long pages = 256;
    char *m = anon(pages, MAP_PRIVATE);
    REQUIRE(m != NULL);
    for (unsigned long i = 0; i < pages / 2; i++) /* the first half touched before fork */
        m[i * PAGE] = 'p';
    pid_t pid = fork();
    if (pid == 0) {
        int ok = 1;
        for (unsigned long i = 0; i < pages / 2; i++)
            ok &= m[i * PAGE] == 'p';
        for (unsigned long i = pages / 2; i < pages; i++) /* never touched: zeros */
            ok &= m[i * PAGE] == 0;
        for (unsigned long i = 0; i < pages; i++)
            m[i * PAGE] = 'c';
        for (unsigned long i = 0; i < pages; i++)
            ok &= m[i * PAGE] == 'c';
        _exit(ok ? 0 : 1);
    }
    REQUIRE(pid > 0);
    int st;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    int ok = 1;
    for (unsigned long i = 0; i < pages / 2; i++)
        ok &= m[i * PAGE] == 'p';
    for (unsigned long i = pages / 2; i < pages; i++)
        ok &= m[i * PAGE] == 0;
    CHECK(ok);
    /* The parent's own later touches do not reach a child forked before them. */
    int go[2];
    REQUIRE(pipe(go) == 0);
    pid = fork();
    if (pid == 0) {
        char c;
        close(go[1]);
        if (read(go[0], &c, 1) != 1)
            _exit(2);
        int zero = 1;
        for (unsigned long i = pages / 2; i < pages; i++)
            zero &= m[i * PAGE] == 0;
        _exit(zero ? 0 : 1);
    }
    REQUIRE(pid > 0);
    close(go[0]);
    for (unsigned long i = pages / 2; i < pages; i++)
        m[i * PAGE] = 'q';
    CHECK(write(go[1], "x", 1) == 1);
    close(go[1]);
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(m[(pages - 1) * PAGE] == 'q');
    munmap(m, pages * PAGE);
}

static void test_fork_shared(void)
{
    const unsigned long pages = 128;
    char *s = anon(pages, MAP_SHARED);
    REQUIRE(s != NULL);
    for (unsigned long i = 0; i < pages / 2; i++)
        s[i * PAGE] = 'p';
    pid_t pid = fork();
    if (pid == 0) {
        int ok = 1;
        for (unsigned long i = 0; i < pages / 2; i++)
            ok &= s[i * PAGE] == 'p';
        for (unsigned long i = 0; i < pages; i++)
            s[i * PAGE] = 'c';
        _exit(ok ? 0 : 1);
    }
    REQUIRE(pid > 0);
    int st;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    int ok = 1;
    for (unsigned long i = 0; i < pages; i++)
        ok &= s[i * PAGE] == 'c';
    CHECK(ok);
    munmap(s, pages * PAGE);
}

static void test_shared_file(void)
{
    const unsigned long pages = 64;
    char path[] = "/tmp/t_faultaround.XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    unlink(path);
    static char page[PAGE];
    for (unsigned long i = 0; i < pages; i++) {
        memset(page, 'a' + (int)(i % 26), PAGE);
        REQUIRE(write(fd, page, PAGE) == (ssize_t)PAGE);
    }
    /* Read once, so the file's pages are cached: a fault may map the neighbours. */
    REQUIRE(pread(fd, page, PAGE, 0) == (ssize_t)PAGE);
    char *f = mmap(NULL, pages * PAGE, PROT_READ, MAP_SHARED, fd, 0);
    REQUIRE(f != MAP_FAILED);
    int ok = 1;
    for (unsigned long i = 0; i < pages / 2; i++)
        ok &= f[i * PAGE] == 'a' + (int)(i % 26) && f[i * PAGE + PAGE - 1] == 'a' + (int)(i % 26);
    CHECK(ok);
    /* A write(2) to pages mapped (touched or not) shows through the mapping. */
    for (unsigned long i = 0; i < pages; i += 5)
        REQUIRE(pwrite(fd, "Z", 1, (off_t)(i * PAGE + 7)) == 1);
    ok = 1;
    for (unsigned long i = 0; i < pages; i += 5)
        ok &= f[i * PAGE + 7] == 'Z' && f[i * PAGE + 8] == 'a' + (int)(i % 26);
    CHECK(ok);
    /* A writable shared mapping: stores reach the file. */
    char *w = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    REQUIRE(w != MAP_FAILED);
    for (unsigned long i = 0; i < pages; i++)
        w[i * PAGE + 9] = 'W';
    ok = 1;
    for (unsigned long i = 0; i < pages; i++) {
        char c = 0;
        ok &= pread(fd, &c, 1, (off_t)(i * PAGE + 9)) == 1 && c == 'W' && f[i * PAGE + 9] == 'W';
    }
    CHECK(ok);
    CHECK(munmap(w, pages * PAGE) == 0);
    CHECK(munmap(f, pages * PAGE) == 0);
    close(fd);
}

int main(void)
{
    vktest_reset_signals();
    test_zeros_and_residency();
    test_fork_private();
    test_fork_shared();
    test_shared_file();
    return vktest_done();
}
