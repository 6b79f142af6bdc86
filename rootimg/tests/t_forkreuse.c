/*
 * t_forkreuse — a process forking child after child, changing its memory between them, as a
 * shell does: every child must see exactly its parent's memory at its fork — never a page
 * an earlier child wrote (its own copy), never a mapping its parent removed since, never an
 * old protection — and its own writes must stay its own. (Under vk the next child often gets
 * the stub of the last one, with the mappings of the pages both shared with their parent
 * kept: this is what must not show.) The same for exec'd images, after fork and after
 * posix_spawn (vfork: under vk a pool stub that held the last child, kept where alike).
 *
 * usage: t_forkreuse [DIR] — its files are made in DIR (default /tmp); on an ext2 directory
 * the file cases run on ext2's page cache.
 */
#define _GNU_SOURCE
#include "vktest.h"

#include <fcntl.h>
#include <setjmp.h>
#include <spawn.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define PAGE 4096UL
/* More pages than a fork copies at once (vk copies a lone thread's written pages when they
 * are few): the child shares them copy-on-write. */
#define NPAGES 160
#define ROUNDS 300

static sigjmp_buf fault_jmp;

static void on_segv(int sig)
{
    (void)sig;
    siglongjmp(fault_jmp, 1);
}

/* Whether reading (write: writing) `p` faults. */
static int faults(volatile char *p, int write)
{
    if (sigsetjmp(fault_jmp, 1))
        return 1;
    if (write)
        *p = 1;
    else
        (void)*p;
    return 0;
}

static unsigned char gen[NPAGES];

/* The child: every page holds its generation, the removed range faults, the read-only page
 * cannot be written; then it writes its own marker over a few pages (copies of its own). */
static int child(char *m, char *gone, char *ro, int round, int gone_now, int ro_now)
{
    for (int i = 0; i < NPAGES; i++)
        for (size_t o = 0; o < PAGE; o += 512)
            if ((unsigned char)m[i * PAGE + o] != gen[i])
                return 10;
    if (gone_now && !faults(gone, 0))
        return 11;
    if (!gone_now && gone[0] != (char)(round & 0x7f))
        return 12;
    if (ro_now && !faults(ro, 1))
        return 13;
    if (!ro_now && (faults(ro, 1) || ro[0] != 1))
        return 14;
    for (int i = round * 11 % (NPAGES - 6), n = 0; n < 6; i++, n++)
        memset(m + i * PAGE, 0xee, PAGE);
    return 0;
}

/* Reap child `pid` of round `round`: one that did not exit with 0 counts in *bad, and the
 * first such one's round and status are kept. */
static void reap_child(pid_t pid, int round, int *bad, int *first_bad, int *status_bad)
{
    int st;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        if (!(*bad)++) {
            *first_bad = round;
            *status_bad = st;
        }
    }
}

static void test_children_see_their_parents_memory(void)
{
    struct sigaction sa = {.sa_handler = on_segv};
    sigemptyset(&sa.sa_mask);
    REQUIRE(sigaction(SIGSEGV, &sa, NULL) == 0);
    char *m = mmap(NULL, NPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *gone = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *ro = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(m != MAP_FAILED && gone != MAP_FAILED && ro != MAP_FAILED);
    for (int i = 0; i < NPAGES; i++) {
        gen[i] = (unsigned char)(i + 1);
        memset(m + i * PAGE, gen[i], PAGE);
    }
    char *scratch = NULL;
    int gone_now = 0, ro_now = 0, bad = 0, first_bad = 0, status_bad = 0;
    for (int round = 0; round < ROUNDS; round++) {
        /* Some pages dropped (new ones come with the write), then every page written
         * again: shared with the child, not copied for it. */
        REQUIRE(madvise(m + (round * 8 % NPAGES) * PAGE, 8 * PAGE, MADV_DONTNEED) == 0);
        /* The freed pages go elsewhere first, so that the rewrite gets other ones. */
        if (scratch)
            munmap(scratch, 16 * PAGE);
        scratch = mmap(NULL, 16 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        REQUIRE(scratch != MAP_FAILED);
        for (int i = 0; i < 16; i++)
            scratch[i * PAGE] = 1;
        for (int i = 0; i < NPAGES; i++)
            memset(m + i * PAGE, gen[i], PAGE);
        if (!gone_now)
            memset(gone, round & 0x7f, 4 * PAGE);
        ro[0] = 1;
        if (ro_now)
            REQUIRE(mprotect(ro, PAGE, PROT_READ) == 0);
        pid_t pid = fork();
        if (pid == 0)
            _exit(child(m, gone, ro, round, gone_now, ro_now));
        reap_child(pid, round, &bad, &first_bad, &status_bad);
        if (ro_now)
            REQUIRE(mprotect(ro, PAGE, PROT_READ | PROT_WRITE) == 0);
        /* Between children: rewrite some pages, remove or bring back a range, flip the
         * protection of another. */
        for (int i = round % 5; i < NPAGES; i += 5) {
            gen[i] = (unsigned char)(gen[i] * 7 + 3);
            if (gen[i] == 0xee)
                gen[i]++;
            memset(m + i * PAGE, gen[i], PAGE);
        }
        if (round % 7 == 3) {
            if (gone_now) {
                REQUIRE(mmap(gone, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == gone);
            } else {
                REQUIRE(munmap(gone, 4 * PAGE) == 0);
            }
            gone_now = !gone_now;
        }
        ro_now = round % 4 == 1;
    }
    CHECKF(bad == 0, "%d of %d children saw other memory (first: round %d, status %#x)", bad, ROUNDS, first_bad, status_bad);
    for (int i = 0; i < NPAGES; i++)
        CHECKF((unsigned char)m[i * PAGE] == gen[i], "page %d", i);
}

/* A shared page whose protection the parent changes between children: each child gets the
 * protection of its fork. */
static void test_shared_protection_follows_the_parent(void)
{
    char *sh = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(sh != MAP_FAILED);
    int bad = 0;
    for (int round = 0; round < 100; round++) {
        int ro_now = round % 3 == 1;
        sh[0] = (char)round;
        if (ro_now)
            REQUIRE(mprotect(sh, PAGE, PROT_READ) == 0);
        pid_t pid = fork();
        if (pid == 0) {
            if (sh[0] != (char)round)
                _exit(1);
            if (faults(sh + 8, 1) != ro_now)
                _exit(2);
            _exit(0);
        }
        int st;
        REQUIRE(waitpid(pid, &st, 0) == pid);
        bad += !WIFEXITED(st) || WEXITSTATUS(st) != 0;
        if (ro_now)
            REQUIRE(mprotect(sh, PAGE, PROT_READ | PROT_WRITE) == 0);
    }
    CHECKF(bad == 0, "%d children had another protection or data", bad);
}

/* Where the file cases make their files. */
static const char *dir = "/tmp";

/* A new file in `dir`, unlinked at once. */
static int scratch_file(void)
{
    char path[256];
    snprintf(path, sizeof path, "%s/t_forkreuse.XXXXXX", dir);
    int fd = mkstemp(path);
    if (fd >= 0)
        unlink(path);
    return fd;
}

/* A file's pages mapped privately: a child that wrote its copy leaves no trace for the next. */
static void test_file_pages_stay_the_files(void)
{
    int fd = scratch_file();
    REQUIRE(fd >= 0);
    char buf[PAGE];
    for (int i = 0; i < 8; i++) {
        memset(buf, 'a' + i, PAGE);
        REQUIRE(write(fd, buf, PAGE) == (ssize_t)PAGE);
    }
    char *f = mmap(NULL, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    REQUIRE(f != MAP_FAILED);
    int bad = 0;
    for (int round = 0; round < 100; round++) {
        (void)f[(round % 8) * PAGE];
        pid_t pid = fork();
        if (pid == 0) {
            for (int i = 0; i < 8; i++)
                if (f[i * PAGE] != 'a' + i || f[i * PAGE + PAGE - 1] != 'a' + i)
                    _exit(1);
            memset(f + (round % 8) * PAGE, 'X', PAGE);
            _exit(0);
        }
        int st;
        REQUIRE(waitpid(pid, &st, 0) == pid);
        bad += !WIFEXITED(st) || WEXITSTATUS(st) != 0;
    }
    CHECKF(bad == 0, "%d children saw an earlier child's copy", bad);
    close(fd);
}

/* A file's pages its parent never touched, read by child after child (as a shell's children
 * run an applet's code the shell never ran): each child sees the file as it is at its fork —
 * a page the parent rewrote with pwrite, zeros past a truncation and back, SIGBUS beyond
 * the end — never an earlier child's copy. (Under vk the next child keeps the last one's
 * mapping of a cached page and takes it into its own table.) */
#define FPAGES 8
static sigjmp_buf bus_jmp;

static void on_bus(int sig)
{
    (void)sig;
    siglongjmp(bus_jmp, 1);
}

/* Page i's first byte, or -1 when reading it raises SIGBUS. */
static int read_or_bus(volatile char *p)
{
    if (sigsetjmp(bus_jmp, 1))
        return -1;
    return (unsigned char)*p;
}

static void test_untouched_file_pages_are_the_files(void)
{
    struct sigaction sa = {.sa_handler = on_bus};
    sigemptyset(&sa.sa_mask);
    REQUIRE(sigaction(SIGBUS, &sa, NULL) == 0);
    int fd = scratch_file();
    REQUIRE(fd >= 0);
    unsigned char fgen[FPAGES];
    char buf[PAGE];
    for (int i = 0; i < FPAGES; i++) {
        fgen[i] = (unsigned char)('a' + i);
        memset(buf, fgen[i], PAGE);
        REQUIRE(write(fd, buf, PAGE) == (ssize_t)PAGE);
    }
    char *f = mmap(NULL, FPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    REQUIRE(f != MAP_FAILED);
    int size_pages = FPAGES, bad = 0, first_bad = -1, status_bad = 0;
    for (int round = 0; round < 120; round++) {
        pid_t pid = fork();
        if (pid == 0) {
            for (int i = 0; i < FPAGES; i++) {
                int want = i < size_pages ? fgen[i] : -1;
                if (read_or_bus(f + i * PAGE) != want)
                    _exit(40 + i);
                if (want >= 0 && (unsigned char)f[i * PAGE + PAGE - 1] != want)
                    _exit(50 + i);
            }
            /* A copy of its own, which no later child and not the file may see. */
            if (round % 3 == 0 && (round / 3) % FPAGES < size_pages)
                memset(f + (round / 3) % FPAGES * PAGE, 'X', PAGE);
            _exit(0);
        }
        reap_child(pid, round, &bad, &first_bad, &status_bad);
        /* Between children: rewrite a page through the file, or cut the file short and
         * bring it back (its pages then read as zeros until rewritten). */
        int i = round % FPAGES;
        if (round % 5 == 2 && i < size_pages) {
            fgen[i] = (unsigned char)(fgen[i] == 'z' ? 'a' : fgen[i] + 1);
            memset(buf, fgen[i], PAGE);
            REQUIRE(pwrite(fd, buf, PAGE, (off_t)i * PAGE) == (ssize_t)PAGE);
        }
        if (round % 17 == 8) {
            REQUIRE(ftruncate(fd, 5 * PAGE) == 0);
            size_pages = 5;
        } else if (round % 17 == 12 || (round % 17 == 3 && size_pages == FPAGES)) {
            /* (At 3: cut and brought back between two children, the last of which mapped
             * the pages that are gone.) */
            if (round % 17 == 3)
                REQUIRE(ftruncate(fd, 5 * PAGE) == 0);
            REQUIRE(ftruncate(fd, FPAGES * PAGE) == 0);
            /* Zeros, then new contents for some: the file's cache holds new pages there,
             * not the ones the children before the truncation mapped (and memory may hand
             * those out again in another order). */
            for (int j = 5; j < FPAGES; j++) {
                fgen[j] = 0;
                REQUIRE(pread(fd, buf, PAGE, (off_t)j * PAGE) == (ssize_t)PAGE && buf[0] == 0);
                if (j != 6) {
                    fgen[j] = (unsigned char)('p' + j);
                    memset(buf, fgen[j], PAGE);
                    REQUIRE(pwrite(fd, buf, PAGE, (off_t)j * PAGE) == (ssize_t)PAGE);
                }
            }
            size_pages = FPAGES;
        }
    }
    CHECKF(bad == 0, "%d of 120 children saw other file contents (first: round %d, status %#x)", bad, first_bad, status_bad);
    close(fd);
}

/* Exec: nothing of the old image shows in the new one (under vk the stub keeps the
 * mappings both images have alike, the program's text from the same file, and unmaps the
 * rest), and the new one's data is the file's, not what the old one wrote. */
#define FAR ((char *)0x3000000000UL)
static int initialised = 42;

static int after_exec(void)
{
    struct sigaction sa = {.sa_handler = on_segv};
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, NULL) != 0)
        return 20;
    if (initialised != 42)
        return 21;
    if (!faults(FAR, 0) || !faults(FAR + PAGE, 1))
        return 22;
    return 0;
}

static void test_exec_leaves_nothing_behind(void)
{
    int bad = 0;
    for (int round = 0; round < 20; round++) {
        pid_t pid = fork();
        if (pid == 0) {
            initialised = 7;
            char *far = mmap(FAR, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
            if (far != FAR)
                _exit(30);
            memset(far, 'z', 2 * PAGE);
            char *argv[] = {"t_forkreuse", "--after-exec", NULL};
            execv("/proc/self/exe", argv);
            _exit(31);
        }
        int st;
        REQUIRE(waitpid(pid, &st, 0) == pid);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            if (!bad++)
                vktest_print("exec round %d: status %#x\n", round, st);
        }
    }
    CHECKF(bad == 0, "%d of 20 exec'd images saw the old one's memory", bad);
}

/* A spawned child that leaves its memory changed behind: the FAR pages mapped and
 * written, its data written. */
static int dirty_and_exit(void)
{
    initialised = 7;
    char *far = mmap(FAR, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (far != FAR)
        return 30;
    memset(far, 'z', 2 * PAGE);
    return 0;
}

extern char **environ;

/* posix_spawn, alternately a child that dirties its memory and exits and one that checks it
 * sees none of that: each spawned image is the file's alone. */
static void test_spawned_images_leave_nothing_behind(void)
{
    int bad = 0;
    for (int round = 0; round < 40; round++) {
        char *argv[] = {"t_forkreuse", round % 2 ? "--after-exec" : "--dirty", NULL};
        pid_t pid;
        int st;
        REQUIRE(posix_spawn(&pid, "/proc/self/exe", NULL, NULL, argv, environ) == 0);
        REQUIRE(waitpid(pid, &st, 0) == pid);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            if (!bad++)
                vktest_print("spawn round %d: status %#x\n", round, st);
        }
    }
    CHECKF(bad == 0, "%d of 40 spawned images went wrong", bad);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--after-exec") == 0)
        return after_exec();
    if (argc > 1 && strcmp(argv[1], "--dirty") == 0)
        return dirty_and_exit();
    if (argc > 1)
        dir = argv[1];
    test_exec_leaves_nothing_behind();
    test_spawned_images_leave_nothing_behind();
    test_children_see_their_parents_memory();
    test_shared_protection_follows_the_parent();
    test_file_pages_stay_the_files();
    test_untouched_file_pages_are_the_files();
    return vktest_done();
}
