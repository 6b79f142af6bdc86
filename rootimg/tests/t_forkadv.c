/*
 * t_forkadv — madvise(2)'s fork advice: MADV_WIPEONFORK (the child sees zeros, the parent
 * keeps its data, grandchildren too see zeros; private anonymous memory only: EINVAL
 * otherwise), MADV_KEEPONFORK (copies again), MADV_DONTFORK (the child has no mapping there)
 * and MADV_DOFORK.
 */
#define _GNU_SOURCE
#include "vktest.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define PAGE 4096UL

static int all(const char *p, size_t n, char c)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != c)
            return 0;
    return 1;
}

/* Run `f(arg)` in a child; its exit status (0: all well). */
static int in_child(int (*f)(char *), char *arg)
{
    pid_t pid = fork();
    if (pid == 0)
        _exit(f(arg));
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

static int child_sees_wiped_middle(char *m)
{
    if (!all(m, PAGE, 'A') || !all(m + PAGE, PAGE, 0) || !all(m + 2 * PAGE, PAGE, 'A'))
        return 1;
    memset(m + PAGE, 'B', PAGE);
    /* Our own child sees zeros again: the advice is inherited. */
    pid_t pid = fork();
    if (pid == 0)
        _exit(all(m + PAGE, PAGE, 0) && all(m, PAGE, 'A') ? 0 : 1);
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return 2;
    return all(m + PAGE, PAGE, 'B') ? 0 : 3;
}

static int child_sees_copy(char *m)
{
    return all(m, 3 * PAGE, 'A') ? 0 : 1;
}

static int child_lacks_middle(char *m)
{
    unsigned char v;
    errno = 0;
    if (mincore(m + PAGE, PAGE, &v) != -1 || errno != ENOMEM)
        return 1; /* not mapped in the child */
    return all(m, PAGE, 'A') && all(m + 2 * PAGE, PAGE, 'A') ? 0 : 2;
}

int main(void)
{
    vktest_reset_signals();
    char *m = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(m != MAP_FAILED);
    memset(m, 'A', 3 * PAGE);

    CHECK(madvise(m + PAGE, PAGE, MADV_WIPEONFORK) == 0);
    CHECK(in_child(child_sees_wiped_middle, m) == 0);
    CHECK(all(m, 3 * PAGE, 'A')); /* the parent keeps its data */
    CHECK(madvise(m, 3 * PAGE, MADV_KEEPONFORK) == 0);
    CHECK(in_child(child_sees_copy, m) == 0);

    /* Only private anonymous memory can be wiped. */
    char *s = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(s != MAP_FAILED);
    errno = 0;
    CHECK(madvise(s, PAGE, MADV_WIPEONFORK) == -1 && errno == EINVAL);
    int fd = open("/proc/self/exe", O_RDONLY);
    REQUIRE(fd >= 0);
    char *f = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
    REQUIRE(f != MAP_FAILED);
    CHECK(madvise(f, PAGE, MADV_WIPEONFORK) == -1 && errno == EINVAL);
    /* An unmapped range: ENOMEM. */
    CHECK(munmap(s, PAGE) == 0);
    CHECK(madvise(s, PAGE, MADV_WIPEONFORK) == -1 && errno == ENOMEM);

    /* MADV_DONTFORK: no mapping in the child; MADV_DOFORK: back. */
    CHECK(madvise(m + PAGE, PAGE, MADV_DONTFORK) == 0);
    CHECK(in_child(child_lacks_middle, m) == 0);
    CHECK(all(m, 3 * PAGE, 'A'));
    CHECK(madvise(m + PAGE, PAGE, MADV_DOFORK) == 0);
    CHECK(in_child(child_sees_copy, m) == 0);
    /* MADV_DONTFORK on a file mapping is fine too. */
    CHECK(madvise(f, PAGE, MADV_DONTFORK) == 0);

    /* A new mapping over the range forgets the advice. */
    CHECK(madvise(m + PAGE, PAGE, MADV_WIPEONFORK) == 0);
    CHECK(mmap(m + PAGE, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == m + PAGE);
    memset(m + PAGE, 'A', PAGE);
    CHECK(in_child(child_sees_copy, m) == 0);
    vktest_done();
}
