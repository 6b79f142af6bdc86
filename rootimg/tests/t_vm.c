/*
 * t_vm — the address space: brk, mmap/munmap/mprotect/mremap/madvise/msync, faults, fork
 * copy-on-write, stack growth and EFAULT from system calls.
 *
 * Covers: brk growth (the exact unaligned value is returned), shrink (memory beyond faults, a
 * re-grown area is zero-filled), refusal leaving brk unchanged; anonymous private mappings
 * zero-filled; MAP_SHARED|MAP_ANONYMOUS shared with a forked child; MAP_FIXED replacing part of
 * a mapping; MAP_FIXED_NOREPLACE; munmap splitting a mapping; SIGSEGV with si_addr and
 * SEGV_MAPERR / SEGV_ACCERR; mprotect; mremap (grow with MREMAP_MAYMOVE keeping contents, shrink,
 * ENOMEM when it cannot grow in place); madvise(MADV_DONTNEED) on private and shared anonymous
 * memory; private and shared file mappings (tail of the last page zero, SIGBUS/BUS_ADRERR past
 * EOF, writes to a private mapping never reach the file, msync of a shared one does); an
 * executable mapping made with mprotect; copy-on-write in both directions after fork; a sparse
 * 64 MiB mapping; EINVAL/ENOMEM/EBADF/EACCES for bad arguments; EFAULT from read/write/stat and
 * others given bad pointers; main-thread stack growth to 4 MiB; MAP_GROWSDOWN growing on a
 * fault below it and refusing to come within the stack guard gap of a mapping; which flags each call refuses
 * (mmap ignores unknown protection bits and flags, but MAP_SHARED_VALIDATE: EINVAL for
 * anonymous memory, EOPNOTSUPP for an unknown flag on a file; mprotect takes PROT_SEM and an
 * empty range, refuses unknown bits and GROWSDOWN|GROWSUP; madvise refuses unknown advice and
 * reports unmapped ranges with ENOMEM; msync and mremap refuse unknown flags).
 *
 * Linux-specific: brk returning the old break on failure (the raw syscall, not libc brk();
 * musl's brk() always fails on purpose), MAP_FIXED_NOREPLACE, munmap of an unmapped range
 * succeeding, MADV_DONTNEED zeroing private anonymous pages, a pipe read that faults leaving
 * the data in the pipe.
 */
#include "vktest.h"

#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef PROT_SEM
#define PROT_SEM 0x8
#endif
/* A bit no mmap flag uses on x86-64. */
#define MAP_UNKNOWN_BIT 0x800000

#define PAGE 4096UL

static char tmpdir[64];

/* ---------------------------------------------------------------- fault probing */

static sigjmp_buf fault_jmp;
static volatile sig_atomic_t fault_signo;
static volatile int fault_code;
static void *volatile fault_addr;

static void fault_handler(int sig, siginfo_t *si, void *ucontext)
{
    (void)ucontext;
    fault_signo = sig;
    fault_code = si->si_code;
    fault_addr = si->si_addr;
    siglongjmp(fault_jmp, 1);
}

static void install_fault_handlers(void)
{
    struct sigaction sa = {.sa_sigaction = fault_handler, .sa_flags = SA_SIGINFO};
    sigemptyset(&sa.sa_mask);
    REQUIRE(sigaction(SIGSEGV, &sa, NULL) == 0);
    REQUIRE(sigaction(SIGBUS, &sa, NULL) == 0);
}

/* Returns the signal a write to p raised (0 if none); fault_code/fault_addr describe it. */
static int probe_write(void *p)
{
    fault_signo = 0;
    fault_addr = NULL;
    fault_code = 0;
    if (sigsetjmp(fault_jmp, 1) == 0) {
        *(volatile char *)p = 0x5a;
        return 0;
    }
    return fault_signo;
}

static int probe_read(const void *p)
{
    fault_signo = 0;
    fault_addr = NULL;
    fault_code = 0;
    if (sigsetjmp(fault_jmp, 1) == 0) {
        (void)*(const volatile char *)p;
        return 0;
    }
    return fault_signo;
}

static int is_zero(const void *p, size_t len)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < len; i++)
        if (c[i])
            return 0;
    return 1;
}

static void *map_anon(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static int child_exit_status(pid_t pid)
{
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1000 + status;
}

/* ---------------------------------------------------------------- tests */

static void test_brk(void)
{
    uintptr_t start = (uintptr_t)syscall(SYS_brk, 0);
    CHECK(start != 0 && start != (uintptr_t)-1);
    uintptr_t want = start + (1 << 20) + 123;
    CHECK((uintptr_t)syscall(SYS_brk, want) == want); /* the exact, unaligned value */
    CHECK((uintptr_t)syscall(SYS_brk, 0) == want);
    CHECK(is_zero((void *)start, want - start));
    memset((void *)start, 0xab, want - start);

    /* Shrink to one page past the start: a page two pages further on is gone. */
    uintptr_t small = start + PAGE;
    CHECK((uintptr_t)syscall(SYS_brk, small) == small);
    uintptr_t gone = ((small + PAGE - 1) & ~(PAGE - 1)) + PAGE;
    CHECK(probe_write((void *)gone) == SIGSEGV && fault_code == SEGV_MAPERR);
    CHECK(((unsigned char *)start)[0] == 0xab); /* what is still inside is kept */

    /* Re-grown memory comes back zero-filled. */
    CHECK((uintptr_t)syscall(SYS_brk, want) == want);
    CHECK(*(volatile unsigned char *)gone == 0);

    /* Impossible requests fail by returning the current break unchanged. */
    CHECK((uintptr_t)syscall(SYS_brk, start - (64UL << 20)) == want);
    CHECK((uintptr_t)syscall(SYS_brk, want + (1UL << 46)) == want);

    CHECK((uintptr_t)syscall(SYS_brk, start) == start); /* leave it as malloc knew it */
}

static void test_anon_private(void)
{
    size_t len = 16 * PAGE;
    unsigned char *p = map_anon(len);
    REQUIRE(p != NULL);
    if (!p)
        return;
    CHECK(((uintptr_t)p & (PAGE - 1)) == 0);
    CHECK(is_zero(p, len));
    for (size_t i = 0; i < len; i++)
        p[i] = (unsigned char)i;
    int same = 1;
    for (size_t i = 0; i < len; i++)
        same &= p[i] == (unsigned char)i;
    CHECK(same);
    CHECK(munmap(p, len) == 0);
}

static void test_anon_shared_fork(void)
{
    volatile int *shared = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                                -1, 0);
    REQUIRE(shared != MAP_FAILED);
    if (shared == MAP_FAILED)
        return;
    shared[0] = 1;
    pid_t pid = fork();
    if (pid == 0) {
        int ok = shared[0] == 1;
        shared[1] = 42;
        shared[0] = 2;
        _exit(ok ? 0 : 1);
    }
    CHECK(child_exit_status(pid) == 0);
    CHECK(shared[0] == 2 && shared[1] == 42);
    munmap((void *)shared, PAGE);
}

static void test_map_fixed(void)
{
    unsigned char *p = map_anon(3 * PAGE);
    REQUIRE(p != NULL);
    if (!p)
        return;
    memset(p, 0x11, 3 * PAGE);
    void *q = mmap(p + PAGE, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                   -1, 0);
    CHECK(q == p + PAGE);
    CHECK(is_zero(p + PAGE, PAGE)); /* replaced: fresh zero page */
    CHECK(p[0] == 0x11 && p[PAGE - 1] == 0x11);
    CHECK(p[2 * PAGE] == 0x11 && p[3 * PAGE - 1] == 0x11);

    /* MAP_FIXED_NOREPLACE refuses to replace anything. */
    q = mmap(p + PAGE, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    CHECK(q == MAP_FAILED && errno == EEXIST);

    /* munmap of the middle page splits the mapping: the neighbours stay. */
    CHECK(munmap(p + PAGE, PAGE) == 0);
    CHECK(probe_read(p + PAGE + 8) == SIGSEGV);
    CHECK(fault_code == SEGV_MAPERR);
    CHECKF(fault_addr == p + PAGE + 8, "si_addr %p, want %p", fault_addr, (void *)(p + PAGE + 8));
    CHECK(probe_read(p) == 0 && probe_read(p + 2 * PAGE) == 0);

    /* Now the hole is free, so MAP_FIXED_NOREPLACE may fill it. */
    q = mmap(p + PAGE, PAGE, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    CHECK(q == p + PAGE);
    CHECK(munmap(p, 3 * PAGE) == 0);
    CHECK(probe_write(p + 2 * PAGE) == SIGSEGV && fault_code == SEGV_MAPERR);
    CHECK(fault_addr == p + 2 * PAGE);
    CHECK(munmap(p, 3 * PAGE) == 0); /* unmapping nothing is not an error */
}

static void test_mprotect(void)
{
    unsigned char *p = map_anon(2 * PAGE);
    REQUIRE(p != NULL);
    if (!p)
        return;
    p[0] = 7;
    p[PAGE] = 8;
    CHECK(mprotect(p, PAGE, PROT_READ) == 0);
    CHECK(probe_read(p) == 0);
    CHECK(probe_write(p + 16) == SIGSEGV);
    CHECK(fault_code == SEGV_ACCERR);
    CHECK(fault_addr == p + 16);
    CHECK(p[0] == 7);
    CHECK(probe_write(p + PAGE) == 0); /* only the first page changed */

    CHECK(mprotect(p, PAGE, PROT_NONE) == 0);
    CHECK(probe_read(p) == SIGSEGV && fault_code == SEGV_ACCERR);

    CHECK(mprotect(p, PAGE, PROT_READ | PROT_WRITE) == 0);
    CHECK(probe_write(p + 1) == 0);
    CHECK(p[0] == 7); /* contents survive protection changes */
    munmap(p, 2 * PAGE);
}

static void test_exec_mapping(void)
{
    /* mov eax, 42; ret */
    static const unsigned char code[] = {0xb8, 0x2a, 0x00, 0x00, 0x00, 0xc3};
    unsigned char *p = map_anon(PAGE);
    REQUIRE(p != NULL);
    if (!p)
        return;
    memcpy(p, code, sizeof code);
    CHECK(mprotect(p, PAGE, PROT_READ | PROT_EXEC) == 0);
    int (*fn)(void) = (int (*)(void))(void *)p;
    CHECK(fn() == 42);
    munmap(p, PAGE);
}

static void test_mremap(void)
{
    unsigned char *p = map_anon(2 * PAGE);
    REQUIRE(p != NULL);
    if (!p)
        return;
    for (size_t i = 0; i < 2 * PAGE; i++)
        p[i] = (unsigned char)(i * 7);
    unsigned char *q = mremap(p, 2 * PAGE, 64 * PAGE, MREMAP_MAYMOVE);
    CHECK(q != MAP_FAILED);
    if (q == MAP_FAILED)
        return;
    int kept = 1;
    for (size_t i = 0; i < 2 * PAGE; i++)
        kept &= q[i] == (unsigned char)(i * 7);
    CHECK(kept);
    CHECK(is_zero(q + 2 * PAGE, 62 * PAGE)); /* the new part is zero-filled */
    CHECK(q == p || probe_read(p) == SIGSEGV); /* grown in place, or moved: old range gone */

    /* Shrinking stays in place; the tail is unmapped. */
    unsigned char *r = mremap(q, 64 * PAGE, PAGE, 0);
    CHECK(r == q);
    CHECK(probe_read(q + PAGE) == SIGSEGV && fault_code == SEGV_MAPERR);
    CHECK(q[0] == 0);

    /* Growing in place into an occupied page fails without MREMAP_MAYMOVE. */
    unsigned char *two = map_anon(2 * PAGE);
    REQUIRE(two != NULL);
    CHECK(mremap(two, PAGE, 2 * PAGE, 0) == MAP_FAILED && errno == ENOMEM);
    CHECK(mremap(two, PAGE, PAGE, 0) == two);
    CHECK(mremap(two + 1, PAGE, 2 * PAGE, MREMAP_MAYMOVE) == MAP_FAILED && errno == EINVAL);

    /* Blocked in place, MREMAP_MAYMOVE moves it: contents follow, the old page is gone. */
    two[0] = 0x5a;
    unsigned char *moved = mremap(two, PAGE, 8 * PAGE, MREMAP_MAYMOVE);
    CHECK(moved != MAP_FAILED && moved != two);
    if (moved != MAP_FAILED && moved != two) {
        CHECK(moved[0] == 0x5a && is_zero(moved + PAGE, 7 * PAGE));
        CHECK(probe_read(two) == SIGSEGV && fault_code == SEGV_MAPERR);
        CHECK(two[PAGE] == 0); /* the neighbour stayed */
        munmap(moved, 8 * PAGE);
    }
    munmap(two, 2 * PAGE);
    munmap(r, PAGE);
}

static void test_madvise(void)
{
    unsigned char *p = map_anon(4 * PAGE);
    REQUIRE(p != NULL);
    if (!p)
        return;
    memset(p, 0x77, 4 * PAGE);
    CHECK(madvise(p + PAGE, 2 * PAGE, MADV_DONTNEED) == 0);
    CHECK(is_zero(p + PAGE, 2 * PAGE)); /* private anonymous: dropped pages read as zero */
    CHECK(p[0] == 0x77 && p[3 * PAGE] == 0x77);
    CHECK(madvise(p + 1, PAGE, MADV_DONTNEED) == -1 && errno == EINVAL);
    munmap(p, 4 * PAGE);

    unsigned char *s =
        mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(s != MAP_FAILED);
    memset(s, 0x66, PAGE);
    CHECK(madvise(s, PAGE, MADV_DONTNEED) == 0);
    CHECK(s[0] == 0x66 && s[PAGE - 1] == 0x66); /* shared memory keeps its contents */
    munmap(s, PAGE);
}

static void test_file_mappings(void)
{
    char path[128];
    snprintf(path, sizeof path, "%s/mapped", tmpdir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    REQUIRE(fd >= 0);
    size_t file_len = 2 * PAGE + 100;
    static unsigned char content[2 * PAGE + 100];
    for (size_t i = 0; i < file_len; i++)
        content[i] = (unsigned char)('A' + i % 23);
    REQUIRE(write(fd, content, file_len) == (ssize_t)file_len);

    /* Private: sees the file; the last page past EOF is zero; a page wholly past EOF SIGBUSes;
     * writes stay private. */
    unsigned char *p = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    CHECK(p != MAP_FAILED);
    if (p != MAP_FAILED) {
        CHECK(memcmp(p, content, file_len) == 0);
        CHECK(is_zero(p + file_len, 3 * PAGE - file_len));
        CHECK(probe_read(p + 3 * PAGE) == SIGBUS);
        CHECK(fault_code == BUS_ADRERR);
        CHECK(fault_addr == p + 3 * PAGE);
        p[0] = 'z';
        p[PAGE + 1] = 'z';
        unsigned char back[2];
        CHECK(pread(fd, back, 1, 0) == 1 && back[0] == content[0]);
        CHECK(pread(fd, back, 1, PAGE + 1) == 1 && back[0] == content[PAGE + 1]);
        munmap(p, 4 * PAGE);
    }

    /* Shared: writes reach the file (msync), the mapping outlives close and unlink. */
    unsigned char *s = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, PAGE);
    CHECK(s != MAP_FAILED);
    if (s != MAP_FAILED) {
        CHECK(memcmp(s, content + PAGE, PAGE + 100) == 0); /* offset PAGE honoured */
        s[5] = '#';
        CHECK(msync(s, 2 * PAGE, MS_SYNC) == 0);
        unsigned char back = 0;
        CHECK(pread(fd, &back, 1, PAGE + 5) == 1 && back == '#');
        close(fd);
        unlink(path);
        CHECK(s[5] == '#' && s[6] == content[PAGE + 6]);
        munmap(s, 2 * PAGE);
    } else {
        close(fd);
        unlink(path);
    }

    /* Access modes of the descriptor limit the mapping. */
    fd = open("/dev/zero", O_RDONLY);
    REQUIRE(fd >= 0);
    snprintf(path, sizeof path, "%s/ro", tmpdir);
    int ro = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    REQUIRE(ro >= 0 && ftruncate(ro, PAGE) == 0);
    close(ro);
    ro = open(path, O_RDONLY);
    REQUIRE(ro >= 0);
    CHECK(mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, ro, 0) == MAP_FAILED &&
          errno == EACCES);
    void *priv = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, ro, 0);
    CHECK(priv != MAP_FAILED); /* a private writable copy of a read-only file is fine */
    if (priv != MAP_FAILED)
        munmap(priv, PAGE);
    close(ro);
    int wo = open(path, O_WRONLY);
    REQUIRE(wo >= 0);
    CHECK(mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, wo, 0) == MAP_FAILED && errno == EACCES);
    close(wo);
    close(fd);
    unlink(path);
}

static void test_fork_cow(void)
{
    unsigned char *p = map_anon(4 * PAGE);
    REQUIRE(p != NULL);
    if (!p)
        return;
    memset(p, 1, 4 * PAGE);
    static int global_value = 10;
    int pipe_fds[2];
    REQUIRE(pipe(pipe_fds) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(pipe_fds[1]);
        memset(p, 2, PAGE); /* the child's writes stay in the child */
        global_value = 20;
        char c;
        if (read(pipe_fds[0], &c, 1) != 1) /* wait until the parent wrote too */
            _exit(10);
        int ok = p[0] == 2 && p[PAGE] == 1 && p[2 * PAGE] == 1 && global_value == 20;
        _exit(ok ? 0 : 11);
    }
    close(pipe_fds[0]);
    memset(p + 2 * PAGE, 3, PAGE); /* the parent's writes stay in the parent */
    REQUIRE(write(pipe_fds[1], "x", 1) == 1);
    close(pipe_fds[1]);
    CHECK(child_exit_status(pid) == 0);
    CHECK(p[0] == 1 && p[PAGE] == 1 && p[2 * PAGE] == 3);
    CHECK(global_value == 10);
    munmap(p, 4 * PAGE);
}

static void test_large_sparse(void)
{
    size_t len = 64UL << 20;
    unsigned char *p = map_anon(len);
    REQUIRE(p != NULL);
    if (!p)
        return;
    for (size_t off = 0; off < len; off += 1 << 20)
        p[off + (off >> 20)] = (unsigned char)(off >> 20);
    int ok = 1;
    for (size_t off = 0; off < len; off += 1 << 20)
        ok &= p[off + (off >> 20)] == (unsigned char)(off >> 20) && p[off + PAGE - 1] == 0;
    CHECK(ok);
    CHECK(p[len - 1] == 0);
    CHECK(munmap(p, len) == 0);
}

/* Raw mmap: musl's wrapper rejects some bad arguments (offset, huge length) itself. */
static long raw_mmap(unsigned long addr, unsigned long len, int prot, int flags, int fd,
                     unsigned long off)
{
    return syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

static void test_bad_arguments(void)
{
    int prot = PROT_READ | PROT_WRITE;
    int anon = MAP_PRIVATE | MAP_ANONYMOUS;
    CHECK(raw_mmap(0, 0, prot, anon, -1, 0) == -1 && errno == EINVAL);
    CHECK(raw_mmap(0x10001001UL, PAGE, prot, anon | MAP_FIXED, -1, 0) == -1 && errno == EINVAL);
    CHECK(raw_mmap(0, PAGE, prot, MAP_ANONYMOUS, -1, 0) == -1 && errno == EINVAL);
    int fd = open("/dev/zero", O_RDWR);
    REQUIRE(fd >= 0);
    CHECK(raw_mmap(0, PAGE, prot, MAP_PRIVATE, fd, 1) == -1 && errno == EINVAL);
    close(fd);
    CHECK(raw_mmap(0, PAGE, prot, MAP_PRIVATE, fd, 0) == -1 && errno == EBADF);
    /* The descriptor is looked at before the length. */
    CHECK(raw_mmap(0, 0, prot, MAP_SHARED, fd, 0) == -1 && errno == EBADF);
    CHECK(raw_mmap(0, 1UL << 62, prot, anon, -1, 0) == -1 && errno == ENOMEM);
    CHECK(raw_mmap(0, PAGE, prot, MAP_SHARED, 0x7fff, 0) == -1 && errno == EBADF);

    unsigned char *p = map_anon(PAGE);
    REQUIRE(p != NULL);
    CHECK(munmap(p + 1, PAGE) == -1 && errno == EINVAL);
    CHECK(munmap(p, 0) == -1 && errno == EINVAL);
    /* raw syscall: musl's mprotect() rounds the start down to a page itself */
    CHECK(syscall(SYS_mprotect, p + 1, PAGE, PROT_READ) == -1 && errno == EINVAL);
    munmap(p, PAGE);
    CHECK(mprotect(p, PAGE, PROT_READ) == -1 && errno == ENOMEM); /* nothing mapped there */
}

static void test_flag_validation(void)
{
    int prot = PROT_READ | PROT_WRITE;
    /* mmap ignores protection bits and flags it does not know... */
    void *p = mmap(NULL, PAGE, PROT_READ | 0x100, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    munmap(p, PAGE);
    p = mmap(NULL, PAGE, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_UNKNOWN_BIT, -1, 0);
    CHECK(p != MAP_FAILED);
    munmap(p, PAGE);
    /* ...but with MAP_SHARED_VALIDATE: no anonymous memory, no unknown flag for a file. */
    CHECK(raw_mmap(0, PAGE, prot, MAP_SHARED_VALIDATE | MAP_ANONYMOUS, -1, 0) == -1 && errno == EINVAL);
    char path[96];
    snprintf(path, sizeof path, "%s/validate", tmpdir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    REQUIRE(fd >= 0);
    REQUIRE(ftruncate(fd, PAGE) == 0);
    CHECK(raw_mmap(0, PAGE, prot, MAP_SHARED_VALIDATE | MAP_UNKNOWN_BIT, fd, 0) == -1 && errno == EOPNOTSUPP);
    CHECK(raw_mmap(0, PAGE, prot, MAP_SHARED | MAP_UNKNOWN_BIT, fd, 0) != -1);
    unsigned char *q = mmap(NULL, PAGE, prot, MAP_SHARED_VALIDATE, fd, 0);
    CHECK(q != MAP_FAILED);
    if (q != MAP_FAILED) {
        q[0] = 'v';
        char c = 0;
        CHECK(pread(fd, &c, 1, 0) == 1 && c == 'v');
        CHECK(msync(q, PAGE, 0x8) == -1 && errno == EINVAL);
        CHECK(msync(q, PAGE, MS_ASYNC | MS_SYNC) == -1 && errno == EINVAL);
        munmap(q, PAGE);
    }
    close(fd);
    CHECK(unlink(path) == 0);

    /* mprotect takes PROT_SEM; not an unknown bit, nor both GROWSDOWN and GROWSUP; an empty
     * range changes nothing whatever the bits. */
    unsigned char *m = map_anon(PAGE);
    REQUIRE(m != NULL);
    CHECK(mprotect(m, PAGE, PROT_READ | PROT_SEM) == 0);
    CHECK(mprotect(m, PAGE, PROT_READ | 0x100) == -1 && errno == EINVAL);
    CHECK(mprotect(m, PAGE, PROT_READ | PROT_GROWSDOWN | PROT_GROWSUP) == -1 && errno == EINVAL);
    CHECK(mprotect(m, 0, PROT_READ | 0x100) == 0);
    /* madvise: unknown advice is EINVAL even for an empty range, which is otherwise fine. */
    CHECK(madvise(m, PAGE, 999) == -1 && errno == EINVAL);
    CHECK(madvise(m, 0, 999) == -1 && errno == EINVAL);
    CHECK(madvise(m, 0, MADV_NORMAL) == 0);
    CHECK(mremap(m, PAGE, PAGE, 0x8) == MAP_FAILED && errno == EINVAL);
    munmap(m, PAGE);
    /* A range with nothing mapped: ENOMEM. */
    CHECK(madvise(m, PAGE, MADV_NORMAL) == -1 && errno == ENOMEM);
    CHECK(madvise(m, PAGE, MADV_DONTNEED) == -1 && errno == ENOMEM);
}

static void test_efault(void)
{
    int pipe_fds[2];
    REQUIRE(pipe(pipe_fds) == 0);
    CHECK(write(pipe_fds[1], BAD_PTR(1), 10) == -1 && errno == EFAULT);
    CHECK(write(pipe_fds[1], "hello", 5) == 5);

    unsigned char *gone = map_anon(PAGE);
    REQUIRE(gone != NULL);
    munmap(gone, PAGE);
    CHECK(read(pipe_fds[0], gone, 5) == -1 && errno == EFAULT);

    unsigned char *ro = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(ro != MAP_FAILED);
    CHECK(read(pipe_fds[0], ro, 5) == -1 && errno == EFAULT);
    munmap(ro, PAGE);

    char buf[8] = {0};
    CHECK(read(pipe_fds[0], buf, sizeof buf) == 5 && memcmp(buf, "hello", 5) == 0);
    close(pipe_fds[0]);
    close(pipe_fds[1]);

    /* Raw syscalls: libc wrappers may copy through buffers of their own. */
    struct stat st;
    CHECK(syscall(SYS_newfstatat, AT_FDCWD, BAD_PTR(1), &st, 0) == -1 && errno == EFAULT);
    CHECK(syscall(SYS_newfstatat, AT_FDCWD, "/", BAD_PTR(1), 0) == -1 && errno == EFAULT);
    CHECK(syscall(SYS_openat, AT_FDCWD, BAD_PTR(1), O_RDONLY) == -1 && errno == EFAULT);
    CHECK(syscall(SYS_clock_gettime, CLOCK_MONOTONIC, BAD_PTR(1)) == -1 && errno == EFAULT);
    CHECK(syscall(SYS_uname, BAD_PTR(1)) == -1 && errno == EFAULT);
    CHECK(syscall(SYS_pipe2, BAD_PTR(1), 0) == -1 && errno == EFAULT);
    CHECK(syscall(SYS_rt_sigaction, SIGUSR1, BAD_PTR(1), NULL, 8) == -1 && errno == EFAULT);
    /* A kernel address is as bad as an unmapped one. */
    CHECK(syscall(SYS_uname, BAD_PTR(0xffffffff81000000UL)) == -1 && errno == EFAULT);
}

/* Touch a 4 MiB frame from the top down, as a compiler's stack probes would. */
static __attribute__((noinline)) int use_big_stack(void)
{
    volatile unsigned char frame[4 << 20];
    for (long i = (long)sizeof frame - 1; i >= 0; i -= (long)PAGE)
        frame[i] = (unsigned char)(i >> 12);
    frame[0] = 1;
    int ok = frame[0] == 1;
    for (long i = (long)sizeof frame - 1; i > 0; i -= (long)PAGE)
        ok &= frame[i] == (unsigned char)(i >> 12);
    return ok;
}

static void test_stack_growth(void)
{
    struct rlimit lim;
    REQUIRE(getrlimit(RLIMIT_STACK, &lim) == 0);
    if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < (8UL << 20))
        return; /* a small stack limit is legitimate; nothing to test */
    CHECK(use_big_stack());
}

/* MAP_GROWSDOWN: a fault just below the mapping grows it (it reads as zeros, and
 * /proc/self/maps shows it longer); a fault that would bring it within the stack guard gap
 * (256 pages) of the mapping below is SIGSEGV instead. Natively and under vk. */
static void test_growsdown(void)
{
    const size_t gap = 256 * PAGE, room = 16 * PAGE;
    for (int blocked = 0; blocked <= 1; blocked++) {
        pid_t pid = fork();
        if (pid == 0) {
            signal(SIGSEGV, SIG_DFL);
            /* Reserve the gap, the room to grow into and one page of stack; free all but it. */
            char *base = mmap(NULL, gap + room + PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (base == MAP_FAILED)
                _exit(10);
            munmap(base, gap + room);
            char *top = base + gap + room;
            char *st = mmap(top, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_GROWSDOWN, -1, 0);
            if (st != top)
                _exit(11);
            if (blocked && mmap(base + gap, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != base + gap)
                _exit(12);
            /* Grow by touching page after page below it, as a stack does. */
            for (char *p = top - 1; p >= base + gap + PAGE; p -= PAGE) {
                if (*p != 0)
                    _exit(13);
                *p = 1;
            }
            _exit(0);
        }
        int st = 0;
        CHECK(waitpid(pid, &st, 0) == pid);
        if (blocked)
            CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV);
        else
            CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
}

int main(void)
{
    vktest_reset_signals();
    strcpy(tmpdir, "/tmp/vkt.XXXXXX");
    REQUIRE(mkdtemp(tmpdir) != NULL);
    install_fault_handlers();

    test_brk();
    test_anon_private();
    test_anon_shared_fork();
    test_map_fixed();
    test_mprotect();
    test_exec_mapping();
    test_mremap();
    test_madvise();
    test_file_mappings();
    test_fork_cow();
    test_large_sparse();
    test_bad_arguments();
    test_flag_validation();
    test_efault();
    test_stack_growth();
    test_growsdown();

    CHECK(rmdir(tmpdir) == 0);
    vktest_done();
}
