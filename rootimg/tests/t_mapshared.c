/* t_mapshared — writable MAP_SHARED mappings of a file: one copy of its data.
 *
 * A store through a MAP_SHARED mapping is what read(2) returns at once, and write(2) shows
 * in the mapping at once; two processes that map the file (at different addresses) see each
 * other's stores; a futex in the mapping wakes a waiter of the other process; msync(MS_SYNC)
 * succeeds, and a page past the end of the file gives SIGBUS.
 *
 * usage: t_mapshared [DIR [keep]] — its files are made in DIR (default /tmp); run on an
 * ext2 directory to test ext2's page cache and write-back. With `keep`, two files stay for
 * the host to read from the disk image after the machine halts: DIR/t_mapshared.synced
 * (written through a mapping, then msync(MS_SYNC)) and DIR/t_mapshared.unmapped (written
 * through a mapping, then only unmapped and closed), each "written through a mapping\n"
 * at offset 4096 of an 8192-byte file.
 */
#include "vktest.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#define PG 4096
#define FUTEX_WAIT 0 /* musl has no <linux/futex.h> */
#define FUTEX_WAKE 1
#define NPAGES 4

static const char marker[] = "written through a mapping\n";

static unsigned char pattern(size_t i)
{
    return (unsigned char)(i * 13 + i / PG);
}

static int make_file(const char *p, size_t len)
{
    int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return -1;
    static unsigned char buf[NPAGES * PG];
    for (size_t i = 0; i < len; i++)
        buf[i] = pattern(i);
    if (write(fd, buf, len) != (ssize_t)len) {
        close(fd);
        return -1;
    }
    return fd;
}

static void test_store_and_read(int fd)
{
    unsigned char *m = mmap(NULL, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    REQUIRE(m != MAP_FAILED);
    CHECK(m[5] == pattern(5) && m[3 * PG + 7] == pattern(3 * PG + 7));
    /* A read first, then a store to the same page. */
    m[100] = 'X';
    unsigned char c = 0;
    CHECK(pread(fd, &c, 1, 100) == 1 && c == 'X');
    /* A store first (never read by the mapping before). */
    memcpy(m + 2 * PG + 10, "store", 5);
    char b[8] = {0};
    CHECK(pread(fd, b, 5, 2 * PG + 10) == 5 && memcmp(b, "store", 5) == 0);
    /* write(2) shows in the mapping. */
    CHECK(pwrite(fd, "hello", 5, PG + 5) == 5);
    CHECK(memcmp(m + PG + 5, "hello", 5) == 0);
    /* And read(2) through a file descriptor opened later sees the stores too. */
    CHECK(msync(m, NPAGES * PG, MS_SYNC) == 0);
    CHECK(munmap(m, NPAGES * PG) == 0);
    CHECK(pread(fd, &c, 1, 100) == 1 && c == 'X');
}

static int wait_child(pid_t pid)
{
    int st = 0;
    if (waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static long futex(uint32_t *w, int op, uint32_t val)
{
    return syscall(SYS_futex, w, op, val, NULL, NULL, 0);
}

static void test_two_processes(const char *path)
{
    int to_child[2], to_parent[2];
    REQUIRE(pipe(to_child) == 0 && pipe(to_parent) == 0);
    int fd = open(path, O_RDWR);
    REQUIRE(fd >= 0);
    unsigned char *m = mmap(NULL, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    REQUIRE(m != MAP_FAILED);
    uint32_t *word = (uint32_t *)(m + 3 * PG + 64);
    *word = 0;
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        /* The child maps the file itself, at another address (a page in the way). */
        char x;
        void *gap = mmap(NULL, PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        int cfd = open(path, O_RDWR);
        unsigned char *n = mmap(NULL, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_SHARED, cfd, 0);
        if (gap == MAP_FAILED || cfd < 0 || n == MAP_FAILED || n == m)
            _exit(10);
        n[2 * PG] = 'C';
        if (write(to_parent[1], "c", 1) != 1 || read(to_child[0], &x, 1) != 1)
            _exit(11);
        if (n[2 * PG + 1] != 'P')
            _exit(12);
        /* A shared futex: the parent's wake reaches this waiter. */
        uint32_t *w = (uint32_t *)(n + 3 * PG + 64);
        if (write(to_parent[1], "w", 1) != 1)
            _exit(13);
        while (__atomic_load_n(w, __ATOMIC_SEQ_CST) == 0) {
            long r = futex(w, FUTEX_WAIT, 0);
            if (r != 0 && errno != EAGAIN && errno != EINTR)
                _exit(14);
        }
        _exit(0);
    }
    char x = 0;
    CHECK(read(to_parent[0], &x, 1) == 1 && x == 'c');
    CHECK(m[2 * PG] == 'C');
    unsigned char c = 0;
    CHECK(pread(fd, &c, 1, 2 * PG) == 1 && c == 'C');
    m[2 * PG + 1] = 'P';
    CHECK(write(to_child[1], "p", 1) == 1);
    CHECK(read(to_parent[0], &x, 1) == 1 && x == 'w');
    /* Wake until the child is seen waiting (one woken), then let it go. */
    long woken = 0;
    for (int i = 0; i < 500 && woken == 0; i++) {
        woken = futex(word, FUTEX_WAKE, 1);
        if (woken == 0)
            usleep(10000);
    }
    CHECKF(woken == 1, "woken %ld", woken);
    __atomic_store_n(word, 1, __ATOMIC_SEQ_CST);
    futex(word, FUTEX_WAKE, 1);
    CHECKF(wait_child(pid) == 0, "child");
    CHECK(munmap(m, NPAGES * PG) == 0);
    close(fd);
    close(to_child[0]);
    close(to_child[1]);
    close(to_parent[0]);
    close(to_parent[1]);
}

static sigjmp_buf bus_jmp;

static void on_bus(int sig)
{
    (void)sig;
    siglongjmp(bus_jmp, 1);
}

static int touch_gives_bus(volatile unsigned char *p)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_bus;
    sigaction(SIGBUS, &sa, &old);
    volatile int bus = 0;
    if (sigsetjmp(bus_jmp, 1) == 0)
        *p = 1;
    else
        bus = 1;
    sigaction(SIGBUS, &old, NULL);
    return bus;
}

static void test_past_the_end(int fd)
{
    CHECK(ftruncate(fd, 2 * PG) == 0);
    unsigned char *m = mmap(NULL, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    REQUIRE(m != MAP_FAILED);
    CHECK(m[PG] == pattern(PG));
    CHECK(touch_gives_bus(m + 3 * PG));
    /* The tail of the last page is zeros and not the file's: growing shows zeros there. */
    CHECK(ftruncate(fd, PG + 10) == 0);
    CHECK(ftruncate(fd, 2 * PG) == 0);
    unsigned char c = 0xFF;
    CHECK(pread(fd, &c, 1, PG + 20) == 1 && c == 0);
    CHECK(munmap(m, NPAGES * PG) == 0);
}

/* A file of 2 pages whose second page is written through a mapping; synced or not. */
static void write_kept(const char *dir, const char *name, int sync)
{
    char p[300];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    int fd = make_file(p, 2 * PG);
    REQUIRE(fd >= 0);
    unsigned char *m = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    REQUIRE(m != MAP_FAILED);
    memcpy(m + PG, marker, sizeof marker - 1);
    if (sync)
        CHECK(msync(m, 2 * PG, MS_SYNC) == 0);
    CHECK(munmap(m, 2 * PG) == 0);
    close(fd);
    fd = open(p, O_RDONLY);
    char b[sizeof marker] = {0};
    CHECK(fd >= 0 && pread(fd, b, sizeof marker - 1, PG) == sizeof marker - 1 && strcmp(b, marker) == 0);
    close(fd);
}

/* A file open read-only maps shared only for reading: neither mmap nor mprotect gives write
 * access (EACCES: Linux clears VM_MAYWRITE), and the file is unchanged. */
static void test_read_only_open(const char *path)
{
    int fd = open(path, O_RDONLY);
    REQUIRE(fd >= 0);
    CHECK(mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED && errno == EACCES);
    unsigned char *m = mmap(NULL, PG, PROT_READ, MAP_SHARED, fd, 0);
    REQUIRE(m != MAP_FAILED);
    unsigned char before = m[7];
    errno = 0;
    CHECK(mprotect(m, PG, PROT_READ | PROT_WRITE) == -1 && errno == EACCES);
    CHECK(mprotect(m, PG, PROT_READ | PROT_EXEC) == 0 || errno == EACCES);
    unsigned char b = 0;
    CHECK(pread(fd, &b, 1, 7) == 1 && b == before);
    CHECK(munmap(m, PG) == 0);
    /* Private, it may be written (a copy). */
    m = mmap(NULL, PG, PROT_READ, MAP_PRIVATE, fd, 0);
    REQUIRE(m != MAP_FAILED);
    CHECK(mprotect(m, PG, PROT_READ | PROT_WRITE) == 0);
    m[7] = (unsigned char)(before + 1);
    CHECK(pread(fd, &b, 1, 7) == 1 && b == before);
    CHECK(munmap(m, PG) == 0);
    close(fd);
}

int main(int argc, char **argv)
{
    vktest_reset_signals();
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    int keep = argc > 2 && strcmp(argv[2], "keep") == 0;
    char path[256];
    snprintf(path, sizeof path, "%s/t_mapshared.%d", dir, (int)getpid());
    int fd = make_file(path, NPAGES * PG);
    REQUIRE(fd >= 0);
    test_store_and_read(fd);
    test_two_processes(path);
    test_past_the_end(fd);
    test_read_only_open(path);
    close(fd);
    CHECK(unlink(path) == 0);
    /* Named for the host to find (kept), or per process (two runs at once). */
    char kept[2][64];
    snprintf(kept[0], sizeof kept[0], keep ? "t_mapshared.synced" : "t_mapshared.synced.%d", (int)getpid());
    snprintf(kept[1], sizeof kept[1], keep ? "t_mapshared.unmapped" : "t_mapshared.unmapped.%d", (int)getpid());
    write_kept(dir, kept[0], 1);
    write_kept(dir, kept[1], 0);
    /* Removed, or (kept) still there: as many checks either way. */
    for (int i = 0; i < 2; i++) {
        char p[300];
        snprintf(p, sizeof p, "%s/%s", dir, kept[i]);
        CHECK(keep ? access(p, R_OK) == 0 : unlink(p) == 0);
    }
    return vktest_done();
}
