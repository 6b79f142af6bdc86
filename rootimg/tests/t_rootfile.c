/* t_rootfile — files of the root file system read and mapped (under vk the tests boot the
 * staged tree as a hostfs root, `-r DIR`, so these are host files seen through its page cache).
 *
 * A private and a shared read-only mapping of a file show what read(2) and pread(2) return; a
 * page read(2) brought in is resident in a mapping nobody touched (mincore: the page cache
 * holds it); two processes mapping the file share its pages (smaps: Pss below Rss) and see the
 * same bytes; a shared mapping of the file open read-only never becomes writable (EACCES).
 *
 * The files: the program's own (/proc/self/exe) and a sibling test program, t_vmfiles, which
 * nothing ran before (natively both may be cached already: the checks still hold).
 */
#include "vktest.h"

#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define PG 4096

static char self_path[512];
static char sibling[512];

/* The whole of `path` read with read(2) (malloc'd), its size in *len. */
static unsigned char *slurp(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return NULL;
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size <= 0) {
        close(fd);
        return NULL;
    }
    unsigned char *b = malloc((size_t)st.st_size);
    size_t got = 0;
    while (b && got < (size_t)st.st_size) {
        ssize_t n = read(fd, b + got, (size_t)st.st_size - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (!b || got != (size_t)st.st_size) {
        free(b);
        return NULL;
    }
    *len = got;
    return b;
}

static void test_mappings_show_what_read_returns(const char *path)
{
    size_t len = 0;
    unsigned char *data = slurp(path, &len);
    REQUIRE(data != NULL);
    if (!data)
        return;
    int fd = open(path, O_RDONLY);
    REQUIRE(fd >= 0);
    unsigned char *priv = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    unsigned char *shared = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    REQUIRE(priv != MAP_FAILED && shared != MAP_FAILED);
    if (priv != MAP_FAILED && shared != MAP_FAILED) {
        CHECK(memcmp(priv, data, len) == 0);
        CHECK(memcmp(shared, data, len) == 0);
        /* pread across page boundaries, from the cache the mappings map. */
        unsigned char buf[3 * PG];
        size_t off = PG - 100, n = len - off < sizeof buf ? len - off : sizeof buf;
        CHECK(pread(fd, buf, n, (off_t)off) == (ssize_t)n && memcmp(buf, priv + off, n) == 0);
        /* A private mapping's copy on write leaves the file and the other mapping alone. */
        unsigned char *w = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
        REQUIRE(w != MAP_FAILED);
        if (w != MAP_FAILED) {
            w[10] ^= 0xff;
            CHECK(priv[10] == data[10] && shared[10] == data[10]);
            CHECK(pread(fd, buf, 16, 0) == 16 && buf[10] == data[10]);
            munmap(w, len);
        }
        /* No writable shared mapping of a file opened read-only: not by mmap, and not by
         * mprotect of a read-only one (EACCES: Linux clears VM_MAYWRITE); the file and its
         * other mappings stay as they were. */
        CHECK(mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED && errno == EACCES);
        unsigned char *s2 = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
        REQUIRE(s2 != MAP_FAILED);
        if (s2 != MAP_FAILED) {
            errno = 0;
            CHECK(mprotect(s2, PG, PROT_READ | PROT_WRITE) == -1 && errno == EACCES);
            CHECK(mprotect(s2, PG, PROT_READ) == 0);
            CHECK(pread(fd, buf, 32, 0) == 32 && buf[20] == data[20] && shared[20] == data[20]);
            munmap(s2, len);
        }
    }
    if (priv != MAP_FAILED)
        munmap(priv, len);
    if (shared != MAP_FAILED)
        munmap(shared, len);
    close(fd);
    free(data);
}

static void test_pages_read_are_resident_in_an_untouched_mapping(const char *path)
{
    size_t len = 0;
    unsigned char *data = slurp(path, &len);
    REQUIRE(data != NULL && len > 2 * PG);
    if (!data)
        return;
    free(data);
    int fd = open(path, O_RDONLY);
    unsigned char *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    REQUIRE(m != MAP_FAILED);
    if (m == MAP_FAILED)
        return;
    size_t pages = (len + PG - 1) / PG;
    unsigned char *vec = malloc(pages);
    /* This process only read the file with read(2): the untouched mapping's pages are in
     * memory all the same. */
    CHECK(mincore(m, len, vec) == 0);
    size_t resident = 0;
    for (size_t i = 0; i < pages; i++)
        resident += vec[i] & 1;
    CHECKF(resident == pages, "%zu of %zu pages resident", resident, pages);
    munmap(m, len);
    free(vec);
    close(fd);
}

/* The Rss, Pss and Shared_Clean (kB) of our mapping at `addr`, from /proc/self/smaps. */
static int smaps_of(void *addr, long *rss, long *pss, long *shared_clean)
{
    static char buf[1 << 20];
    if (vktest_read_text("/proc/self/smaps", buf, sizeof buf) < 0)
        return -1;
    char head[32];
    snprintf(head, sizeof head, "%lx-", (unsigned long)addr);
    char *p = buf;
    while (p && strncmp(p, head, strlen(head)) != 0) {
        p = strchr(p, '\n');
        p = p ? p + 1 : NULL;
    }
    if (!p)
        return -1;
    *rss = *pss = *shared_clean = -1;
    for (p = strchr(p, '\n'); p && p[1]; p = strchr(p + 1, '\n')) {
        const char *l = p + 1;
        if (strncmp(l, "VmFlags", 7) == 0)
            break;
        if (strncmp(l, "Rss:", 4) == 0)
            *rss = atol(l + 4);
        else if (strncmp(l, "Pss:", 4) == 0)
            *pss = atol(l + 4);
        else if (strncmp(l, "Shared_Clean:", 13) == 0)
            *shared_clean = atol(l + 13);
    }
    return *rss >= 0 && *pss >= 0 && *shared_clean >= 0 ? 0 : -1;
}

static unsigned long sum(const unsigned char *m, size_t len)
{
    unsigned long s = 0;
    for (size_t i = 0; i < len; i++)
        s = s * 31 + m[i];
    return s;
}

static void test_two_processes_share_the_pages(const char *path)
{
    size_t len = 0;
    unsigned char *data = slurp(path, &len);
    REQUIRE(data != NULL);
    if (!data)
        return;
    unsigned long want = sum(data, len);
    free(data);
    int ready[2], done[2];
    REQUIRE(pipe(ready) == 0 && pipe(done) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        /* The child maps the file and reads every page, then waits for the parent. */
        int fd = open(path, O_RDONLY);
        unsigned char *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED)
            _exit(2);
        int same = sum(m, len) == want;
        char c = 1;
        if (write(ready[1], &c, 1) != 1)
            _exit(3);
        if (read(done[0], &c, 1) != 1)
            _exit(4);
        _exit(same ? 0 : 1);
    }
    REQUIRE(pid > 0);
    char c;
    CHECK(read(ready[0], &c, 1) == 1);
    int fd = open(path, O_RDONLY);
    unsigned char *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    REQUIRE(m != MAP_FAILED);
    if (m != MAP_FAILED) {
        CHECK(sum(m, len) == want);
        long rss = -1, pss = -1, shared = -1;
        CHECK(smaps_of(m, &rss, &pss, &shared) == 0);
        long whole = (long)(len / PG) * 4; /* the pages wholly inside the file, in kB */
        /* Pss below Rss says the pages are shared. Shared_Clean is not checked: Linux
         * 6.15+ without per-page map counts (CONFIG_NO_PAGE_MAPCOUNT) may count a large
         * folio's pages as private (seen: Pss halved, Shared_Clean 0). */
        CHECKF(rss >= whole && pss < rss,
               "Rss %ld kB, Pss %ld kB, Shared_Clean %ld kB of a %zu-byte file", rss, pss, shared, len);
        munmap(m, len);
    }
    close(fd);
    CHECK(write(done[1], &c, 1) == 1);
    int st;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(ready[0]);
    close(ready[1]);
    close(done[0]);
    close(done[1]);
}

int main(void)
{
    vktest_reset_signals();
    ssize_t n = readlink("/proc/self/exe", self_path, sizeof self_path - 1);
    REQUIRE(n > 0);
    if (n <= 0)
        vktest_done();
    self_path[n] = 0;
    snprintf(sibling, sizeof sibling, "%s", self_path);
    char *slash = strrchr(sibling, '/');
    REQUIRE(slash != NULL);
    if (!slash)
        vktest_done();
    snprintf(slash + 1, sizeof sibling - (size_t)(slash + 1 - sibling), "t_vmfiles");

    test_mappings_show_what_read_returns(self_path);
    test_pages_read_are_resident_in_an_untouched_mapping(sibling);
    test_two_processes_share_the_pages(sibling);
    vktest_done();
}
