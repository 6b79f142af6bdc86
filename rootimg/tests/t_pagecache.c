/* t_pagecache — private file mappings and the file's own data (the page cache).
 *
 * A MAP_PRIVATE mapping of a file shows the file; write(2) to the file shows in pages the
 * mapping has not written; a store into the mapping (by the program, by read(2) into it, in
 * a child after fork, after mprotect adds PROT_WRITE) copies the page and leaves the file
 * and every other mapping alone; ftruncate zeroes the tail of the last page and a page past
 * the end gives SIGBUS (in a mapping made after the truncation: vk, unlike Linux, leaves the
 * pages a mapping had in place). Many processes mapping one file see the same bytes.
 *
 * usage: t_pagecache [DIR [pressure]] — its files are made in DIR (default /tmp); run on an
 * ext2 directory to test ext2's page cache; `pressure` adds the memory-pressure case.
 */
#include "vktest.h"

#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define PG 4096
#define NPAGES 8

static char path[256];
static char path2[256];

static unsigned char pattern(size_t i)
{
    return (unsigned char)(i * 7 + i / PG);
}

/* A file of NPAGES pages of pattern(). */
static int make_file(const char *p)
{
    int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return -1;
    static unsigned char buf[NPAGES * PG];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = pattern(i);
    if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf) {
        close(fd);
        return -1;
    }
    return fd;
}

static int matches(const unsigned char *m, size_t from, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (m[i] != pattern(from + i))
            return 0;
    return 1;
}

static void test_maps_show_the_file(int fd)
{
    unsigned char *a = mmap(NULL, NPAGES * PG, PROT_READ, MAP_PRIVATE, fd, 0);
    unsigned char *b = mmap(NULL, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    unsigned char *c = mmap(NULL, 2 * PG, PROT_READ, MAP_PRIVATE, fd, 3 * PG);
    REQUIRE(a != MAP_FAILED && b != MAP_FAILED && c != MAP_FAILED);
    CHECK(matches(a, 0, NPAGES * PG));
    CHECK(matches(b, 0, NPAGES * PG));
    CHECK(matches(c, 3 * PG, 2 * PG));
    CHECK(munmap(a, NPAGES * PG) == 0 && munmap(b, NPAGES * PG) == 0 && munmap(c, 2 * PG) == 0);
}

static void test_write_shows_until_copied(int fd)
{
    unsigned char *m = mmap(NULL, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    REQUIRE(m != MAP_FAILED);
    CHECK(m[PG + 10] == pattern(PG + 10) && m[2 * PG] == pattern(2 * PG)); /* both resident */
    m[2 * PG + 1] = 0xEE; /* page 2 is now the mapping's own */
    CHECK(pwrite(fd, "new!", 4, PG + 10) == 4);
    CHECK(pwrite(fd, "late", 4, 2 * PG + 20) == 4);
    CHECKF(memcmp(m + PG + 10, "new!", 4) == 0, "page 1 at 10: %02x %02x", m[PG + 10], m[PG + 11]);
    CHECK(memcmp(m + 2 * PG + 20, "late", 4) != 0 && m[2 * PG + 20] == pattern(2 * PG + 20));
    CHECK(m[2 * PG + 1] == 0xEE);
    /* The file kept its bytes where the mapping wrote. */
    unsigned char x = 0;
    CHECK(pread(fd, &x, 1, 2 * PG + 1) == 1 && x == pattern(2 * PG + 1));
    /* Put the file back. */
    unsigned char orig[4];
    for (int i = 0; i < 4; i++)
        orig[i] = pattern(PG + 10 + i);
    CHECK(pwrite(fd, orig, 4, PG + 10) == 4);
    for (int i = 0; i < 4; i++)
        orig[i] = pattern(2 * PG + 20 + i);
    CHECK(pwrite(fd, orig, 4, 2 * PG + 20) == 4);
    CHECK(matches(m + PG, PG, PG));
    CHECK(munmap(m, NPAGES * PG) == 0);
}

static void test_stores_stay_private(int fd)
{
    unsigned char *a = mmap(NULL, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    unsigned char *b = mmap(NULL, NPAGES * PG, PROT_READ, MAP_PRIVATE, fd, 0);
    REQUIRE(a != MAP_FAILED && b != MAP_FAILED);
    CHECK(matches(b, 0, NPAGES * PG)); /* b's pages are resident first */
    memset(a + 4 * PG, 0x5A, PG);
    CHECK(matches(b + 4 * PG, 4 * PG, PG));
    unsigned char x = 0;
    CHECK(pread(fd, &x, 1, 4 * PG) == 1 && x == pattern(4 * PG));

    /* read(2) into a private file mapping: the kernel's store copies the page too. */
    int fd2 = open(path2, O_RDWR | O_CREAT | O_TRUNC, 0644);
    REQUIRE(fd2 >= 0);
    CHECK(write(fd2, "kernel-store", 12) == 12);
    CHECK(lseek(fd2, 0, SEEK_SET) == 0);
    CHECK(read(fd2, a + 5 * PG + 100, 12) == 12);
    CHECK(memcmp(a + 5 * PG + 100, "kernel-store", 12) == 0);
    CHECK(matches(b + 5 * PG, 5 * PG, PG));
    CHECK(pread(fd, &x, 1, 5 * PG + 100) == 1 && x == pattern(5 * PG + 100));
    close(fd2);

    /* A read-only mapping made writable by mprotect copies on its first store. */
    CHECK(mprotect(b + 6 * PG, PG, PROT_READ | PROT_WRITE) == 0);
    b[6 * PG] = 0x11;
    CHECK(b[6 * PG] == 0x11 && a[6 * PG] == pattern(6 * PG));
    CHECK(pread(fd, &x, 1, 6 * PG) == 1 && x == pattern(6 * PG));
    CHECK(munmap(a, NPAGES * PG) == 0 && munmap(b, NPAGES * PG) == 0);
}

static void test_fork(int fd)
{
    unsigned char *m = mmap(NULL, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    REQUIRE(m != MAP_FAILED);
    CHECK(matches(m, 0, NPAGES * PG));
    pid_t pid = fork();
    if (pid == 0) {
        /* The child writes every page; each copy is its own. */
        for (int i = 0; i < NPAGES; i++)
            m[i * PG + 7] = 0xC0;
        int ok = 1;
        for (int i = 0; i < NPAGES; i++)
            ok &= m[i * PG + 7] == 0xC0 && m[i * PG + 8] == pattern((size_t)i * PG + 8);
        _exit(ok ? 0 : 1);
    }
    REQUIRE(pid > 0);
    int st = 0;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(matches(m, 0, NPAGES * PG));
    unsigned char x = 0;
    CHECK(pread(fd, &x, 1, 3 * PG + 7) == 1 && x == pattern(3 * PG + 7));

    /* Many processes mapping the file see the same bytes. */
    pid_t kids[6];
    for (int k = 0; k < 6; k++) {
        kids[k] = fork();
        if (kids[k] == 0) {
            unsigned char *c = mmap(NULL, NPAGES * PG, PROT_READ, MAP_PRIVATE, fd, 0);
            _exit(c != MAP_FAILED && matches(c, 0, NPAGES * PG) ? 0 : 1);
        }
    }
    int good = 0;
    for (int k = 0; k < 6; k++)
        good += kids[k] > 0 && waitpid(kids[k], &st, 0) == kids[k] && WIFEXITED(st) && WEXITSTATUS(st) == 0;
    CHECK(good == 6);
    CHECK(munmap(m, NPAGES * PG) == 0);
}

/* A hole punched in the file reads as zeros through a mapping made after it. */
static void test_punch(int fd)
{
    unsigned char *m = mmap(NULL, NPAGES * PG, PROT_READ, MAP_PRIVATE, fd, 0);
    REQUIRE(m != MAP_FAILED);
    CHECK(matches(m + 6 * PG, 6 * PG, PG));
    CHECK(munmap(m, NPAGES * PG) == 0);
    CHECK(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 6 * PG, PG) == 0);
    m = mmap(NULL, NPAGES * PG, PROT_READ, MAP_PRIVATE, fd, 0);
    REQUIRE(m != MAP_FAILED);
    int zeros = 1;
    for (int i = 0; i < PG; i++)
        zeros &= m[6 * PG + i] == 0;
    CHECK(zeros);
    CHECK(matches(m + 7 * PG, 7 * PG, PG));
    CHECK(munmap(m, NPAGES * PG) == 0);
    static unsigned char page[PG];
    for (int i = 0; i < PG; i++)
        page[i] = pattern(6 * PG + (size_t)i);
    CHECK(pwrite(fd, page, PG, 6 * PG) == PG);
}

static sigjmp_buf bus_jmp;
static void on_bus(int sig)
{
    (void)sig;
    siglongjmp(bus_jmp, 1);
}

static void test_truncate(int fd)
{
    unsigned char *m = mmap(NULL, NPAGES * PG, PROT_READ, MAP_PRIVATE, fd, 0);
    REQUIRE(m != MAP_FAILED);
    CHECK(matches(m, 0, 3 * PG));
    CHECK(ftruncate(fd, 2 * PG + 100) == 0);
    CHECK(m[2 * PG + 99] == pattern(2 * PG + 99));
    CHECKF(m[2 * PG + 100] == 0 && m[3 * PG - 1] == 0, "past the end: %02x %02x", m[2 * PG + 100], m[3 * PG - 1]);

    /* A mapping made after the truncation (vk, unlike Linux, leaves the pages a mapping had
       before it in place, and fault-around may have brought in the whole window). */
    unsigned char *n = mmap(NULL, NPAGES * PG, PROT_READ, MAP_PRIVATE, fd, 0);
    REQUIRE(n != MAP_FAILED);
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_bus;
    sigaction(SIGBUS, &sa, &old);
    volatile int bus = 0;
    if (sigsetjmp(bus_jmp, 1) == 0) {
        volatile unsigned char v = n[5 * PG];
        (void)v;
    } else {
        bus = 1;
    }
    CHECK(bus == 1);
    sigaction(SIGBUS, &old, NULL);

    /* The file grows again: the old tail reads as zeros, in the file and the mapping. */
    CHECK(ftruncate(fd, 4 * PG) == 0);
    unsigned char x = 0xFF;
    CHECK(pread(fd, &x, 1, 2 * PG + 200) == 1 && x == 0);
    CHECK(m[2 * PG + 200] == 0);
    CHECK(pwrite(fd, "grown", 5, 3 * PG) == 5);
    CHECK(memcmp(n + 3 * PG, "grown", 5) == 0);
    CHECK(munmap(m, NPAGES * PG) == 0 && munmap(n, NPAGES * PG) == 0);
}

/* Memory pressure (`t_pagecache DIR pressure`, under `-m 64m`): a 24 MiB file read through
 * a mapping fills the page cache; once unmapped, 40 MiB of anonymous memory must still fit,
 * so the cache's pages must be given back. */
static void test_pressure(const char *dir)
{
    char p[300];
    snprintf(p, sizeof p, "%s/t_pagecache.big.%d", dir, (int)getpid());
    int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
    REQUIRE(fd >= 0);
    size_t flen = 24u << 20, alen = 40u << 20;
    static char chunk[1 << 16];
    memset(chunk, 'f', sizeof chunk);
    size_t done = 0;
    while (done < flen && write(fd, chunk, sizeof chunk) == (ssize_t)sizeof chunk)
        done += sizeof chunk;
    CHECK(done == flen);
    unsigned char *m = mmap(NULL, flen, PROT_READ, MAP_PRIVATE, fd, 0);
    REQUIRE(m != MAP_FAILED);
    unsigned long sum = 0;
    for (size_t i = 0; i < flen; i += PG)
        sum += m[i];
    CHECK(sum == (flen / PG) * 'f');
    CHECK(munmap(m, flen) == 0);
    unsigned char *a = mmap(NULL, alen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(a != MAP_FAILED);
    for (size_t i = 0; i < alen; i += PG)
        a[i] = (unsigned char)(i / PG);
    int ok = 1;
    for (size_t i = 0; i < alen; i += PG)
        ok &= a[i] == (unsigned char)(i / PG);
    CHECK(ok);
    CHECK(munmap(a, alen) == 0);
    close(fd);
    CHECK(unlink(p) == 0);
}

int main(int argc, char **argv)
{
    vktest_reset_signals();
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    snprintf(path, sizeof path, "%s/t_pagecache.%d", dir, (int)getpid());
    snprintf(path2, sizeof path2, "%s/t_pagecache.%d.2", dir, (int)getpid());
    int fd = make_file(path);
    REQUIRE(fd >= 0);
    test_maps_show_the_file(fd);
    test_write_shows_until_copied(fd);
    test_stores_stay_private(fd);
    test_fork(fd);
    test_punch(fd);
    test_truncate(fd);
    if (argc > 2 && strcmp(argv[2], "pressure") == 0)
        test_pressure(dir);
    close(fd);
    CHECK(unlink(path) == 0 && unlink(path2) == 0);
    return vktest_done();
}
