/*
 * t_mlock — memory locks as Linux keeps them: mlock, mlock2 (MLOCK_ONFAULT), munlock,
 * mlockall (MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT), munlockall, MAP_LOCKED and MAP_POPULATE.
 * A locked range is resident at once (mincore) unless locked on fault; it counts in
 * /proc/self/status's VmLck and in smaps' Locked (VmFlags "lo"); locking twice counts once;
 * munlock and munmap take it out; a fork child starts unlocked; RLIMIT_MEMLOCK binds a user
 * (ENOMEM, EAGAIN for MAP_LOCKED, EPERM when 0). smaps_rollup sums the mappings. mincore of
 * a shared mapping sees the pages another process touched (the object's, not the caller's).
 */
#include "vktest.h"

#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#ifndef MLOCK_ONFAULT
#define MLOCK_ONFAULT 1
#endif
#ifndef MCL_ONFAULT
#define MCL_ONFAULT 4
#endif

static long page;

/* A field of a /proc file ("VmLck:"), in kB; -1 if missing. */
static long field_kb(const char *path, const char *name)
{
    FILE *f = fopen(path, "r");
    char line[512];
    long v = -1;
    size_t n = strlen(name);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, name, n) == 0)
            v = strtol(line + n, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

static long vmlck(void)
{
    return field_kb("/proc/self/status", "VmLck:");
}

/* smaps' `name` field of the mapping that holds `addr`, in kB (or, for VmFlags, whether the
 * flags contain "lo"); -1 if there is none. (Linux merges neighbouring mappings.) */
static long smaps_field(void *addr, const char *name)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    int in = 0;
    long v = -1;
    size_t n = strlen(name);
    unsigned long a = (unsigned long)addr;
    while (f && fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        char c;
        if (sscanf(line, "%lx-%lx %c", &lo, &hi, &c) == 3 && strchr(line, ' ') == line + strcspn(line, " ")) {
            if (strchr(line, '-') < strchr(line, ' ')) {
                in = lo <= a && a < hi;
                continue;
            }
        }
        if (in && strncmp(line, name, n) == 0) {
            if (strcmp(name, "VmFlags:") == 0)
                v = strstr(line, " lo") != NULL;
            else
                v = strtol(line + n, NULL, 10);
            break;
        }
    }
    if (f)
        fclose(f);
    return v;
}

static int resident(void *p, long pages)
{
    unsigned char vec[64];
    if (pages > 64 || mincore(p, (size_t)(pages * page), vec) != 0)
        return -1;
    int n = 0;
    for (long i = 0; i < pages; i++)
        n += vec[i] & 1;
    return n;
}

static char *anon(long pages, int flags)
{
    void *p = mmap(NULL, (size_t)(pages * page), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void test_lock_and_count(void)
{
    long base = vmlck();
    CHECK(base == 0);
    char *a = anon(4, 0);
    REQUIRE(a != NULL);
    CHECK(resident(a, 4) == 0);
    CHECK(mlock(a + 1, (size_t)(2 * page - 1)) == 0); /* rounds out to pages 0 and 1 */
    CHECK(resident(a, 4) == 2);
    CHECK(vmlck() == 2 * page / 1024);
    CHECK(smaps_field(a, "Locked:") == 2 * page / 1024);
    CHECK(smaps_field(a, "VmFlags:") == 1);
    CHECK(mlock(a, (size_t)(2 * page)) == 0); /* again: counted once */
    CHECK(vmlck() == 2 * page / 1024);

    /* MLOCK_ONFAULT: locked, resident only once touched; mlock over it counts once. */
    char *b = anon(4, 0);
    REQUIRE(b != NULL);
    CHECK(syscall(SYS_mlock2, b, 4 * page, MLOCK_ONFAULT) == 0);
    CHECK(resident(b, 4) == 0);
    CHECK(vmlck() == 6 * page / 1024);
    b[0] = 1;
    CHECK(resident(b, 4) == 1);
    CHECK(mlock(b, (size_t)(4 * page)) == 0);
    CHECK(vmlck() == 6 * page / 1024);
    CHECK(resident(b, 4) == 4);

    /* munlock part; munmap the rest. */
    CHECK(munlock(b, (size_t)(2 * page)) == 0);
    CHECK(vmlck() == 4 * page / 1024);
    CHECK(munmap(b, (size_t)(4 * page)) == 0);
    CHECK(vmlck() == 2 * page / 1024);

    /* A fork child starts without locks. */
    pid_t pid = fork();
    if (pid == 0)
        _exit(vmlck() == 0 ? 0 : 1);
    int st = 0;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);

    CHECK(munlock(a, (size_t)(4 * page)) == 0);
    CHECK(vmlck() == 0);
    CHECK(smaps_field(a, "VmFlags:") == 0);
    munmap(a, (size_t)(4 * page));
}

static void test_map_flags(void)
{
    char *l = anon(3, MAP_LOCKED);
    REQUIRE(l != NULL);
    CHECK(resident(l, 3) == 3);
    CHECK(vmlck() == 3 * page / 1024);
    char *p = anon(3, MAP_POPULATE);
    REQUIRE(p != NULL);
    CHECK(resident(p, 3) == 3);
    CHECK(vmlck() == 3 * page / 1024);
    munmap(l, (size_t)(3 * page));
    munmap(p, (size_t)(3 * page));
    CHECK(vmlck() == 0);
}

static void test_mlockall(void)
{
    CHECK(mlockall(MCL_CURRENT | MCL_FUTURE) == 0);
    long all = vmlck();
    CHECK(all > 0);
    /* smaps counts the locked pages that are resident (not the PROT_NONE or untouched). */
    long rolled = field_kb("/proc/self/smaps_rollup", "Locked:");
    CHECK(rolled > 0 && rolled <= all);
    char *f = anon(2, 0); /* MCL_FUTURE: locked and resident */
    REQUIRE(f != NULL);
    CHECK(resident(f, 2) == 2);
    CHECK(vmlck() == all + 2 * page / 1024);
    CHECK(munlockall() == 0);
    CHECK(vmlck() == 0);
    char *g = anon(2, 0);
    REQUIRE(g != NULL);
    CHECK(resident(g, 2) == 0);
    CHECK(vmlck() == 0);
    munmap(f, (size_t)(2 * page));
    munmap(g, (size_t)(2 * page));
    /* MCL_FUTURE | MCL_ONFAULT: later mappings locked, not populated (reading VmLck may
     * itself allocate, and what it allocates is locked too: compare with at least). */
    CHECK(mlockall(MCL_FUTURE | MCL_ONFAULT) == 0);
    long before = vmlck();
    char *h = anon(2, 0);
    REQUIRE(h != NULL);
    CHECK(resident(h, 2) == 0);
    CHECK(vmlck() >= before + 2 * page / 1024);
    CHECK(smaps_field(h, "VmFlags:") == 1);
    CHECK(munlockall() == 0);
    munmap(h, (size_t)(2 * page));
}

static void test_limits(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        struct rlimit r = {2 * (rlim_t)page, 2 * (rlim_t)page};
        if (setrlimit(RLIMIT_MEMLOCK, &r) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
            _exit(10);
        char *a = anon(4, 0);
        if (!a)
            _exit(11);
        if (mlock(a, (size_t)page) != 0)
            _exit(12);
        if (mlock(a, (size_t)(3 * page)) != -1 || errno != ENOMEM)
            _exit(13);
        if (mlock(a, (size_t)(2 * page)) != 0) /* page 0 counts once */
            _exit(14);
        if (anon(1, MAP_LOCKED) != NULL || errno != EAGAIN)
            _exit(15);
        struct rlimit z = {0, 0};
        if (setrlimit(RLIMIT_MEMLOCK, &z) != 0)
            _exit(16);
        if (mlock(a, (size_t)page) != -1 || errno != EPERM)
            _exit(17);
        _exit(0);
    }
    int st = 0;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st));
    CHECK(WEXITSTATUS(st) == 0);
}

static void test_mincore_shared(void)
{
    char path[] = "/tmp/t_mlock.XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    unlink(path);
    REQUIRE(ftruncate(fd, 4 * page) == 0);
    char *file = mmap(NULL, (size_t)(4 * page), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    char *shm = mmap(NULL, (size_t)(4 * page), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(file != MAP_FAILED && shm != MAP_FAILED);
    CHECK(resident(shm, 4) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        file[0] = 1;
        file[2 * page] = 1;
        shm[page] = 1;
        _exit(0);
    }
    int st = 0;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st));
    unsigned char vec[4];
    CHECK(mincore(file, (size_t)(4 * page), vec) == 0);
    CHECK((vec[0] & 1) && (vec[2] & 1));
    CHECK(mincore(shm, (size_t)(4 * page), vec) == 0);
    CHECK((vec[1] & 1) && !(vec[0] & 1) && !(vec[3] & 1));
    munmap(file, (size_t)(4 * page));
    munmap(shm, (size_t)(4 * page));
    close(fd);
}

int main(void)
{
    vktest_reset_signals();
    page = sysconf(_SC_PAGESIZE);
    test_lock_and_count();
    test_map_flags();
    test_mlockall();
    test_limits();
    test_mincore_shared();
    vktest_done();
}
