/*
 * t_vmfiles — /proc/PID/pagemap, /proc/vmstat and /proc/sysvipc/{shm,sem,msg}.
 *
 * pagemap: a touched page is present (bit 63), an untouched or unmapped one is not; private
 * anonymous pages are not file pages (bit 61) and are this process's alone (bit 56), and after
 * a fork either shared (one frame, exclusive to neither) or copied (two, each exclusive); shared memory is a file page; root sees frame numbers, others 0; reads
 * must be whole entries (EINVAL). vmstat: its counters, pgfault growing with first touches.
 * sysvipc: a line per segment, semaphore set and queue with Linux's columns. Run as root.
 */
#define _GNU_SOURCE
#include "vktest.h"

#include <fcntl.h>
#include <stdint.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/prctl.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/wait.h>

#define PAGE 4096UL
#define PRESENT (1ULL << 63)
#define FILEPG (1ULL << 61)
#define EXCL (1ULL << 56)
#define PFN(v) ((v) & ((1ULL << 55) - 1))

static int read_pagemap(const char *path, void *addr, uint64_t *out, int n)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    off_t off = (off_t)((uintptr_t)addr / PAGE * 8);
    ssize_t got = pread(fd, out, (size_t)n * 8, off);
    close(fd);
    return got == (ssize_t)n * 8 ? 0 : -1;
}

static void test_pagemap(void)
{
    char *m = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(m != MAP_FAILED);
    m[0] = 1;
    m[2 * PAGE] = 1;
    uint64_t e[4] = {0};
    REQUIRE(read_pagemap("/proc/self/pagemap", m, e, 4) == 0);
    CHECKF((e[0] & PRESENT) && (e[2] & PRESENT), "%#llx %#llx", (unsigned long long)e[0], (unsigned long long)e[2]);
    CHECKF(!(e[1] & PRESENT) && !(e[3] & PRESENT), "%#llx %#llx", (unsigned long long)e[1], (unsigned long long)e[3]);
    CHECK(!(e[0] & FILEPG) && (e[0] & EXCL));
    CHECK(PFN(e[0]) != 0 && PFN(e[2]) != 0 && PFN(e[0]) != PFN(e[2])); /* root sees frames */

    /* Bad reads: not whole entries. */
    int fd = open("/proc/self/pagemap", O_RDONLY);
    REQUIRE(fd >= 0);
    char b[16];
    errno = 0;
    CHECK(pread(fd, b, 8, 4) == -1 && errno == EINVAL);
    CHECK(pread(fd, b, 4, 0) == -1 && errno == EINVAL);
    close(fd);

    /* Unmapped: not present. */
    munmap(m + 3 * PAGE, PAGE);
    REQUIRE(read_pagemap("/proc/self/pagemap", m + 3 * PAGE, e, 1) == 0);
    CHECK(e[0] == 0);

    /* Shared memory is a file page. */
    char *s = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(s != MAP_FAILED);
    s[0] = 1;
    REQUIRE(read_pagemap("/proc/self/pagemap", s, e, 1) == 0);
    CHECK((e[0] & PRESENT) && (e[0] & FILEPG));

    /* After fork a page is the child's too, with the parent's contents. One the parent
     * made read-only is shared copy-on-write: one frame, in neither process exclusively. One
     * it wrote and can still write is either shared so too or already copied (two frames,
     * each exclusive — Linux copies a pinned page at fork, vk a lone thread's few recently
     * written pages at once). Whichever, pagemap must say so. */
    REQUIRE(mprotect(m, PAGE, PROT_READ) == 0);
    int go[2];
    REQUIRE(pipe(go) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        char c;
        (void)!read(go[0], &c, 1);
        _exit(m[0] == 1 && m[2 * PAGE] == 1 ? 0 : 1);
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/pagemap", (int)pid);
    REQUIRE(read_pagemap("/proc/self/pagemap", m, e, 3) == 0);
    uint64_t c[3] = {0};
    CHECK(read_pagemap(path, m, c, 3) == 0);
    CHECKF((e[0] & PRESENT) && (c[0] & PRESENT) && PFN(c[0]) == PFN(e[0]) && !(e[0] & EXCL) && !(c[0] & EXCL),
           "read-only: %#llx %#llx", (unsigned long long)e[0], (unsigned long long)c[0]);
    CHECKF((e[2] & PRESENT) && (c[2] & PRESENT), "%#llx %#llx", (unsigned long long)e[2], (unsigned long long)c[2]);
    if (PFN(c[2]) == PFN(e[2]))
        CHECKF(!(e[2] & EXCL) && !(c[2] & EXCL), "shared: %#llx %#llx", (unsigned long long)e[2], (unsigned long long)c[2]);
    else
        CHECKF((e[2] & EXCL) && (c[2] & EXCL), "copied: %#llx %#llx", (unsigned long long)e[2], (unsigned long long)c[2]);
    CHECK(write(go[1], "x", 1) == 1);
    int st;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);

    /* Without CAP_SYS_ADMIN: present, but no frame number. */
    pid = fork();
    if (pid == 0) {
        if (setgid(65534) != 0 || setuid(65534) != 0)
            _exit(100);
        prctl(PR_SET_DUMPABLE, 1); /* its /proc files are its own again */
        char *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        p[0] = 1;
        uint64_t v = 0;
        int ok = read_pagemap("/proc/self/pagemap", p, &v, 1) == 0 && (v & PRESENT) && PFN(v) == 0;
        _exit(ok ? 0 : 1);
    }
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    munmap(m, 3 * PAGE);
    munmap(s, PAGE);
}

#define vmstat(name) vktest_vmstat(name)

static void test_vmstat(void)
{
    CHECK(vmstat("nr_free_pages") > 0);
    CHECK(vmstat("nr_anon_pages") > 0);
    CHECK(vmstat("nr_file_pages") >= 0);
    CHECK(vmstat("pgmajfault") >= 0);
    CHECK(vmstat("pswpin") >= 0 && vmstat("pswpout") >= 0);
    long long before = vmstat("pgfault");
    CHECK(before > 0);
    size_t len = 256 * PAGE;
    char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(m != MAP_FAILED);
    madvise(m, len, MADV_NOHUGEPAGE);
    for (size_t i = 0; i < len; i += PAGE)
        m[i] = 1;
    long long after = vmstat("pgfault");
    CHECKF(after - before >= 256, "pgfault %lld -> %lld", before, after);
    munmap(m, len);
}

/* The line of /proc/sysvipc/`file` whose second column is `id`, in `line`. */
static int ipc_line(const char *file, int id, char *line, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/sysvipc/%s", file);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int found = -1;
    char l[512];
    if (!fgets(l, sizeof l, f) || strncmp(l, "       key      ", 16) != 0) {
        fclose(f);
        return -2;
    }
    while (fgets(l, sizeof l, f)) {
        int key, lid;
        if (sscanf(l, "%d %d", &key, &lid) == 2 && lid == id) {
            snprintf(line, size, "%s", l);
            found = 0;
        }
    }
    fclose(f);
    return found;
}

static void test_sysvipc(void)
{
    char line[512];
    key_t key = (key_t)(0x5a000000 | (getpid() & 0xffff));
    int shm = shmget(key, 8192, IPC_CREAT | IPC_EXCL | 0600);
    REQUIRE(shm >= 0);
    CHECK(ipc_line("shm", shm, line, sizeof line) == 0);
    int k, id, cpid, lpid, uid;
    unsigned perms;
    unsigned long size, nattch;
    CHECKF(sscanf(line, "%d %d %o %lu %d %d %lu %d", &k, &id, &perms, &size, &cpid, &lpid, &nattch, &uid) == 8 &&
               k == key && (perms & 0777) == 0600 && size == 8192 && cpid == getpid() && nattch == 0 && uid == 0,
           "%s", line);
    void *at = shmat(shm, NULL, 0);
    REQUIRE(at != (void *)-1);
    CHECK(ipc_line("shm", shm, line, sizeof line) == 0);
    CHECK(sscanf(line, "%d %d %o %lu %d %d %lu", &k, &id, &perms, &size, &cpid, &lpid, &nattch) == 7 && nattch == 1 &&
          lpid == getpid());
    shmdt(at);
    shmctl(shm, IPC_RMID, NULL);
    CHECK(ipc_line("shm", shm, line, sizeof line) == -1);

    int sem = semget(key, 3, IPC_CREAT | IPC_EXCL | 0640);
    REQUIRE(sem >= 0);
    CHECK(ipc_line("sem", sem, line, sizeof line) == 0);
    unsigned nsems;
    CHECKF(sscanf(line, "%d %d %o %u", &k, &id, &perms, &nsems) == 4 && k == key && (perms & 0777) == 0640 && nsems == 3,
           "%s", line);
    semctl(sem, 0, IPC_RMID);

    int msq = msgget(key, IPC_CREAT | IPC_EXCL | 0600);
    REQUIRE(msq >= 0);
    struct {
        long type;
        char text[5];
    } msgbuf = {1, "abcd"};
    CHECK(msgsnd(msq, &msgbuf, 5, 0) == 0 && msgsnd(msq, &msgbuf, 5, 0) == 0);
    CHECK(ipc_line("msg", msq, line, sizeof line) == 0);
    unsigned long cbytes, qnum;
    int lspid;
    CHECKF(sscanf(line, "%d %d %o %lu %lu %d", &k, &id, &perms, &cbytes, &qnum, &lspid) == 6 && k == key &&
               cbytes == 10 && qnum == 2 && lspid == getpid(),
           "%s", line);
    msgctl(msq, IPC_RMID, NULL);
    CHECK(ipc_line("msg", msq, line, sizeof line) == -1);
}

int main(void)
{
    vktest_reset_signals();
    test_pagemap();
    test_vmstat();
    test_sysvipc();
    vktest_done();
}
