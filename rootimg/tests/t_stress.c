/*
 * t_stress — several threads of one process hammer the same file, directory and address space
 * at once, and the results must be what Linux guarantees whatever the interleaving.
 *
 * Usage: t_stress [dir [rounds]]: a scratch directory is made under dir (default /tmp);
 * rounds (default 1) multiplies every loop, for long runs by hand. The number of checks does
 * not depend on either, so the summary line is the same natively and under vk. A failed
 * content check reports what the buffer holds when the report is made (`diff`): "same" there
 * means the thread saw other bytes at the check than a moment later.
 *
 * Phases (each runs NTHREADS threads at once, then checks):
 *   - file: every thread pwrites its own block of one shared file and preads it back through
 *     the shared descriptor and through its own open of the path, while the file is renamed
 *     under another name and back (open of the stable name never fails).
 *   - rename: a writer renames fresh files over one name; readers open that name in a loop:
 *     rename(2) replaces atomically, so an open never fails and always reads a whole version.
 *   - dir: threads create, rename, link, unlink files and make and remove directories in one
 *     directory while others list it with getdents64; at the end it holds exactly the names
 *     the threads left.
 *   - crossdir: threads move their own directory and file between two parents, both ways at
 *     once (the VFS's directory locks and rename lock), create inside the moved directory,
 *     and try to move it under itself (EINVAL).
 *   - vm: threads mmap, fill, mprotect, mremap and munmap their own anonymous regions and hand
 *     them to system calls (write from, read into) while one thread maps the shared file
 *     MAP_SHARED and compares it with pread, and another forks children that check a buffer
 *     the forking thread filled (copy-on-write while other threads fault).
 *   - futex: a token passed round a ring of threads by FUTEX_WAIT/FUTEX_WAKE (a lost wake-up
 *     is a stall: each wait has a long timeout that counts as a failure), a mutex-protected
 *     counter, and a process-shared futex in a MAP_SHARED file mapping between processes.
 *   - futex_fork: the token passed between two threads on words in one page while a third
 *     thread forks again and again, so the page keeps becoming copy-on-write under them.
 *   - all: every phase's threads at once.
 * Every system call that fails where Linux cannot fail counts as a failure with its errno.
 */
#include "vktest.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <time.h>

#define NTHREADS 4
#define BLOCK 4096
#define FUTEX_WAIT 0
#define FUTEX_WAKE 1

static char scratch[256];
/* Not under vk (whose uname(2) release ends in "-vk"): there, what vk lacks is an error. */
static int native;
static long rounds = 1;
/* Failures seen by the threads: each is printed, the phase checks the count. */
static atomic_int bad;
static atomic_int stop_flag;

#define BAD(...)                                                                           \
    do {                                                                                   \
        int e_ = errno;                                                                    \
        if (atomic_fetch_add(&bad, 1) < 20) {                                              \
            vktest_print("  bad [pid %d tid %ld] %s:%d: ", (int)getpid(),                  \
                         (long)syscall(SYS_gettid), __func__, __LINE__);                   \
            vktest_print(__VA_ARGS__);                                                     \
            vktest_print(" (errno %d)\n", e_);                                             \
        }                                                                                  \
    } while (0)

static const char *P(char *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static const char *P(char *buf, const char *fmt, ...)
{
    int n = snprintf(buf, 320, "%s/", scratch);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + n, 320 - (size_t)n, fmt, ap);
    va_end(ap);
    return buf;
}

static void fill(unsigned char *p, size_t len, unsigned tag)
{
    for (size_t i = 0; i < len; i++)
        p[i] = (unsigned char)(tag * 31 + i * 7);
}

static int same(const unsigned char *p, size_t len, unsigned tag)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != (unsigned char)(tag * 31 + i * 7))
            return 0;
    return 1;
}

/* What a failed `same` (or zero check, `tag` < 0) saw: the first differing byte, how many
 * differ, and the 8 bytes from there, for the report. */
static const char *diff(const unsigned char *p, size_t len, long tag)
{
    static __thread char out[160];
    size_t first = len, n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char want = tag < 0 ? 0 : (unsigned char)((unsigned)tag * 31 + i * 7);
        if (p[i] != want) {
            n++;
            if (first == len)
                first = i;
        }
    }
    if (first == len)
        return "same";
    int k = snprintf(out, sizeof out, "%zu of %zu bytes differ from %zu:", n, len, first);
    for (size_t i = first; i < first + 8 && i < len && k < (int)sizeof out - 4; i++)
        k += snprintf(out + k, sizeof out - (size_t)k, " %02x", p[i]);
    return out;
}

static void run_threads(void *(*fn)(void *), int n)
{
    pthread_t t[16];
    int made[16] = {0};
    for (long i = 0; i < n; i++) {
        int e = pthread_create(&t[i], NULL, fn, (void *)i);
        if (e != 0) {
            errno = e;
            BAD("pthread_create");
        } else {
            made[i] = 1;
        }
    }
    for (int i = 0; i < n; i++)
        if (made[i])
            pthread_join(t[i], NULL);
}

/* ---- file: one file, shared and private descriptors, renamed while used ---- */

static int shared_fd = -1;

static void *file_thread(void *arg)
{
    long id = (long)arg;
    unsigned char w[BLOCK], r[BLOCK];
    char path[320], a[320], b[320];
    P(path, "file");
    for (long k = 0; k < 200 * rounds; k++) {
        unsigned tag = (unsigned)(id * 100000 + k);
        fill(w, sizeof w, tag);
        if (pwrite(shared_fd, w, sizeof w, id * BLOCK) != BLOCK)
            BAD("pwrite");
        memset(r, 0, sizeof r);
        ssize_t got = pread(shared_fd, r, sizeof r, id * BLOCK);
        if (got != BLOCK || !same(r, sizeof r, tag))
            BAD("pread shared k=%ld: read %zd, %s", k, got, diff(r, sizeof r, tag));
        int fd = open(path, O_RDONLY);
        if (fd < 0) {
            BAD("open %s", path);
            continue;
        }
        memset(r, 0, sizeof r);
        got = pread(fd, r, sizeof r, id * BLOCK);
        if (got != BLOCK || !same(r, sizeof r, tag))
            BAD("pread own k=%ld: read %zd, %s", k, got, diff(r, sizeof r, tag));
        struct stat st;
        if (fstat(fd, &st) != 0 || st.st_size < (off_t)(NTHREADS * BLOCK))
            BAD("fstat size %lld", (long long)st.st_size);
        close(fd);
        /* The second name moves back and forth: either rename may find it gone. */
        P(a, "alias%ld", k & 1);
        P(b, "alias%ld", (k + 1) & 1);
        if (rename(a, b) != 0 && errno != ENOENT)
            BAD("rename alias");
    }
    return NULL;
}

static void phase_file(void)
{
    char path[320], a[320];
    shared_fd = open(P(path, "file"), O_RDWR | O_CREAT | O_TRUNC, 0644);
    REQUIRE(shared_fd >= 0);
    unsigned char z[BLOCK * NTHREADS] = {0};
    REQUIRE(write(shared_fd, z, sizeof z) == (ssize_t)sizeof z);
    REQUIRE(link(path, P(a, "alias0")) == 0);
    atomic_store(&bad, 0);
    run_threads(file_thread, NTHREADS);
    CHECKF(atomic_load(&bad) == 0, "file: %d bad", atomic_load(&bad));
    struct stat st;
    CHECK(fstat(shared_fd, &st) == 0 && st.st_size == (off_t)sizeof z && st.st_nlink == 2);
    CHECK(unlink(P(a, "alias0")) == 0 || unlink(P(a, "alias1")) == 0);
    close(shared_fd);
    CHECK(unlink(path) == 0);
}

/* ---- rename: atomic replacement seen by concurrent opens ---- */

static void *rename_writer(void *arg)
{
    long id = (long)arg;
    unsigned char w[2 * BLOCK];
    char tmp[320], target[320];
    P(target, "target");
    for (long k = 0; k < 150 * rounds; k++) {
        P(tmp, "tmp%ld", id);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) {
            BAD("create tmp");
            continue;
        }
        /* A version is two blocks tagged with its number, read whole or not at all. */
        unsigned tag = (unsigned)(k + 1);
        memcpy(w, &tag, sizeof tag);
        fill(w + sizeof tag, sizeof w - sizeof tag, tag);
        if (write(fd, w, sizeof w) != (ssize_t)sizeof w)
            BAD("write tmp");
        close(fd);
        if (rename(tmp, target) != 0)
            BAD("rename over target");
    }
    atomic_store(&stop_flag, 1);
    return NULL;
}

static void *rename_reader(void *arg)
{
    (void)arg;
    unsigned char r[2 * BLOCK];
    char target[320];
    P(target, "target");
    long reads = 0;
    while (!atomic_load(&stop_flag) || reads < 10) {
        int fd = open(target, O_RDONLY);
        if (fd < 0) {
            BAD("open target during renames");
            continue;
        }
        ssize_t n = read(fd, r, sizeof r);
        unsigned tag;
        memcpy(&tag, r, sizeof tag);
        /* The first word holds the tag; the rest of a version is its pattern. */
        if (n != (ssize_t)sizeof r || !same(r + sizeof tag, sizeof r - sizeof tag, tag) ||
            tag > (unsigned)(150 * rounds))
            BAD("torn version n=%zd tag=%u", n, tag);
        close(fd);
        reads++;
    }
    return NULL;
}

static void *rename_thread(void *arg)
{
    return (long)arg == 0 ? rename_writer(arg) : rename_reader(arg);
}

static void phase_rename(void)
{
    char target[320];
    int fd = open(P(target, "target"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    REQUIRE(fd >= 0);
    unsigned char w[2 * BLOCK];
    unsigned tag = 0;
    memcpy(w, &tag, sizeof tag);
    fill(w + sizeof tag, sizeof w - sizeof tag, tag);
    REQUIRE(write(fd, w, sizeof w) == (ssize_t)sizeof w);
    close(fd);
    atomic_store(&bad, 0);
    atomic_store(&stop_flag, 0);
    run_threads(rename_thread, NTHREADS);
    CHECKF(atomic_load(&bad) == 0, "rename: %d bad", atomic_load(&bad));
    CHECK(unlink(target) == 0);
}

/* ---- dir: namespace churn in one directory, listed concurrently ---- */

#define DIR_FILES 24

static void *dir_worker(long id)
{
    char a[320], b[320], c[320];
    for (long r = 0; r < 4 * rounds; r++) {
        for (int k = 0; k < DIR_FILES; k++) {
            int fd = open(P(a, "d/w%ld_%d", id, k), O_WRONLY | O_CREAT | O_EXCL, 0600);
            if (fd < 0) {
                BAD("create w%ld_%d", id, k);
                continue;
            }
            if (write(fd, a, 8) != 8)
                BAD("write");
            close(fd);
        }
        for (int k = 0; k < DIR_FILES; k++) {
            P(a, "d/w%ld_%d", id, k);
            P(b, "d/w%ld_%d.renamed", id, k);
            if (rename(a, b) != 0)
                BAD("rename %s", a);
            if (k % 3 == 0 && link(b, P(c, "d/w%ld_%d.link", id, k)) != 0)
                BAD("link");
        }
        if (mkdir(P(a, "d/sub%ld", id), 0700) != 0)
            BAD("mkdir");
        if (mkdir(P(b, "d/sub%ld/inner", id), 0700) != 0)
            BAD("mkdir inner");
        if (rename(P(a, "d/sub%ld", id), P(b, "d/sub%ld.moved", id)) != 0)
            BAD("rename dir");
        if (rmdir(P(a, "d/sub%ld.moved/inner", id)) != 0 || rmdir(P(b, "d/sub%ld.moved", id)) != 0)
            BAD("rmdir");
        /* The last round leaves the odd files and the links. */
        int last = r == 4 * rounds - 1;
        for (int k = 0; k < DIR_FILES; k++) {
            if (last && k % 2 == 1)
                continue;
            if (unlink(P(a, "d/w%ld_%d.renamed", id, k)) != 0)
                BAD("unlink");
            if (!last && k % 3 == 0 && unlink(P(c, "d/w%ld_%d.link", id, k)) != 0)
                BAD("unlink link");
        }
    }
    return NULL;
}

static void *dir_lister(void)
{
    char d[320];
    char buf[4096];
    while (!atomic_load(&stop_flag)) {
        int fd = open(P(d, "d"), O_RDONLY | O_DIRECTORY);
        if (fd < 0) {
            BAD("open dir");
            return NULL;
        }
        for (;;) {
            long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
            if (n < 0)
                BAD("getdents64");
            if (n <= 0)
                break;
            for (long off = 0; off < n;) {
                struct dirent64 *e = (struct dirent64 *)(buf + off);
                if (e->d_reclen == 0 || e->d_name[0] == 0 ||
                    (e->d_name[0] != 'w' && e->d_name[0] != 's' && e->d_name[0] != '.')) {
                    BAD("bad entry");
                    break;
                }
                off += e->d_reclen;
            }
        }
        close(fd);
    }
    return NULL;
}

static atomic_int dir_workers_left;

static void *dir_thread(void *arg)
{
    long id = (long)arg;
    if (id == NTHREADS - 1)
        return dir_lister();
    dir_worker(id);
    if (atomic_fetch_sub(&dir_workers_left, 1) == 1)
        atomic_store(&stop_flag, 1);
    return NULL;
}

static void phase_dir(void)
{
    char d[320], a[320];
    REQUIRE(mkdir(P(d, "d"), 0755) == 0);
    atomic_store(&bad, 0);
    atomic_store(&stop_flag, 0);
    atomic_store(&dir_workers_left, NTHREADS - 1);
    run_threads(dir_thread, NTHREADS);
    CHECKF(atomic_load(&bad) == 0, "dir: %d bad", atomic_load(&bad));
    /* What is left: the odd files and every third file's link, per worker. */
    int want = 0, seen = 0, unexpected = 0;
    for (int k = 0; k < DIR_FILES; k++)
        want += (k % 2 == 1) + (k % 3 == 0);
    want *= NTHREADS - 1;
    DIR *dir = opendir(d);
    REQUIRE(dir != NULL);
    struct dirent *e;
    while (dir && (e = readdir(dir)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        long id;
        int k;
        char rest[64];
        if (sscanf(e->d_name, "w%ld_%d.%63s", &id, &k, rest) == 3 &&
            ((strcmp(rest, "renamed") == 0 && k % 2 == 1) || (strcmp(rest, "link") == 0 && k % 3 == 0))) {
            seen++;
            if (unlink(P(a, "d/%s", e->d_name)) != 0)
                unexpected++;
        } else {
            vktest_print("  left in d: %s\n", e->d_name);
            unexpected++;
        }
    }
    if (dir)
        closedir(dir);
    CHECKF(seen == want && unexpected == 0, "seen %d of %d, %d unexpected", seen, want, unexpected);
    struct stat st;
    CHECK(stat(d, &st) == 0 && st.st_nlink == 2);
    CHECK(rmdir(d) == 0);
}

/* ---- crossdir: renames between two directories, both ways at once ---- */

static void *crossdir_thread(void *arg)
{
    long id = (long)arg;
    char a[320], b[320], c[320];
    /* Each thread owns one directory and one file; it moves them from one parent to the
     * other and back while the others do the same the other way round, and makes and
     * removes a file inside its directory wherever it is. */
    int here = (int)(id & 1);
    for (long k = 0; k < 100 * rounds; k++) {
        int there = 1 - here;
        P(a, "p%d/d%ld", here, id);
        P(b, "p%d/d%ld", there, id);
        if (rename(a, b) != 0)
            BAD("rename dir %s", a);
        P(a, "p%d/f%ld", here, id);
        P(b, "p%d/f%ld", there, id);
        if (rename(a, b) != 0)
            BAD("rename file %s", a);
        int fd = open(P(c, "p%d/d%ld/in", there, id), O_CREAT | O_EXCL | O_WRONLY, 0644);
        if (fd < 0)
            BAD("create inside the moved directory");
        else
            close(fd);
        if (unlink(c) != 0)
            BAD("unlink inside");
        /* A directory moved under itself: EINVAL, whoever else is moving things. */
        P(a, "p%d/d%ld", there, id);
        P(b, "p%d/d%ld/d%ld/sub", there, id, id);
        if (rename(a, b) != -1 || errno != EINVAL)
            BAD("rename into itself");
        here = there;
    }
    return NULL;
}

static void phase_crossdir(void)
{
    char a[320];
    REQUIRE(mkdir(P(a, "p0"), 0755) == 0 && mkdir(P(a, "p1"), 0755) == 0);
    for (long id = 0; id < NTHREADS; id++) {
        REQUIRE(mkdir(P(a, "p%ld/d%ld", id & 1, id), 0755) == 0);
        REQUIRE(mkdir(P(a, "p%ld/d%ld/d%ld", id & 1, id, id), 0755) == 0);
        int fd = open(P(a, "p%ld/f%ld", id & 1, id), O_CREAT | O_EXCL | O_WRONLY, 0644);
        REQUIRE(fd >= 0);
        close(fd);
    }
    atomic_store(&bad, 0);
    run_threads(crossdir_thread, NTHREADS);
    CHECKF(atomic_load(&bad) == 0, "crossdir: %d bad", atomic_load(&bad));
    /* 100 * rounds moves each: every item is back where it started. */
    int home = 0;
    struct stat st;
    for (long id = 0; id < NTHREADS; id++) {
        home += stat(P(a, "p%ld/d%ld/d%ld", id & 1, id, id), &st) == 0;
        home += stat(P(a, "p%ld/f%ld", id & 1, id), &st) == 0;
        rmdir(P(a, "p%ld/d%ld/d%ld", id & 1, id, id));
        rmdir(P(a, "p%ld/d%ld", id & 1, id));
        unlink(P(a, "p%ld/f%ld", id & 1, id));
    }
    CHECKF(home == 2 * NTHREADS, "%d of %d at home", home, 2 * NTHREADS);
    CHECK(rmdir(P(a, "p0")) == 0 && rmdir(P(a, "p1")) == 0);
}

/* ---- vm: map changes, copyin/copyout, shared file mappings and fork ---- */

static int vm_fd = -1;

static void *vm_mapper(long id)
{
    int null = open("/dev/null", O_WRONLY);
    int zero = open("/dev/zero", O_RDONLY);
    for (long k = 0; k < 150 * rounds; k++) {
        size_t len = (size_t)(1 + (k + id) % 8) * BLOCK;
        unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            BAD("mmap");
            continue;
        }
        unsigned tag = (unsigned)(id * 1000 + k);
        fill(p, len, tag);
        if (mprotect(p, len, PROT_READ) != 0)
            BAD("mprotect ro");
        /* The kernel reads the read-only region (copyin) ... */
        if (write(null, p, len) != (ssize_t)len)
            BAD("write from mapping");
        if (!same(p, len, tag))
            BAD("contents after mprotect");
        if (mprotect(p, len, PROT_READ | PROT_WRITE) != 0)
            BAD("mprotect rw");
        /* ... and writes into the region (copyout): /dev/zero then pread of the file. */
        /* (read(2) may return less: Linux's /dev/zero stops at a pending signal.) */
        size_t got = 0;
        ssize_t n;
        while (got < len && (n = read(zero, p + got, len - got)) > 0)
            got += (size_t)n;
        if (got != len || p[0] != 0 || p[len - 1] != 0)
            BAD("read /dev/zero into mapping: %zu of %zu, %s", got, len, diff(p, len, -1));
        if (pread(vm_fd, p, BLOCK, 0) != BLOCK)
            BAD("pread into mapping");
        unsigned char *q = mremap(p, len, len + BLOCK, MREMAP_MAYMOVE);
        if (q == MAP_FAILED) {
            BAD("mremap");
            munmap(p, len);
            continue;
        }
        q[len] = 1;
        if (munmap(q, len + BLOCK) != 0)
            BAD("munmap");
    }
    close(null);
    close(zero);
    return NULL;
}

static void *vm_shared_reader(int slot)
{
    /* Each reader owns two blocks of the file: 1 + 2 * slot and the next. */
    int mine = 1 + 2 * slot;
    unsigned char *m = mmap(NULL, 8 * BLOCK, PROT_READ | PROT_WRITE, MAP_SHARED, vm_fd, 0);
    if (m == MAP_FAILED && errno == ENODEV && !native) {
        /* vk shares only tmpfs files' pages with writable mappings yet (no page cache). */
        return NULL;
    }
    if (m == MAP_FAILED) {
        BAD("mmap shared file");
        return NULL;
    }
    unsigned char r[BLOCK];
    for (long k = 0; k < 150 * rounds; k++) {
        /* Write through the mapping, read with pread; write with pwrite, read the mapping. */
        unsigned tag = (unsigned)(k * 2 + 1);
        fill(m + mine * BLOCK, BLOCK, tag);
        ssize_t got = pread(vm_fd, r, BLOCK, mine * BLOCK);
        if (got != BLOCK || !same(r, BLOCK, tag))
            BAD("pread sees the mapping's write k=%ld: read %zd, %s; the mapping: %s", k, got, diff(r, BLOCK, tag),
                diff(m + mine * BLOCK, BLOCK, tag));
        fill(r, BLOCK, tag + 1);
        if (pwrite(vm_fd, r, BLOCK, (mine + 1) * BLOCK) != BLOCK ||
            !same(m + (mine + 1) * BLOCK, BLOCK, tag + 1))
            BAD("mapping sees pwrite k=%ld: %s", k, diff(m + (mine + 1) * BLOCK, BLOCK, tag + 1));
    }
    if (msync(m, 8 * BLOCK, MS_SYNC) != 0)
        BAD("msync");
    munmap(m, 8 * BLOCK);
    return NULL;
}

static void *vm_forker(int slot)
{
    static unsigned char snaps[2][8 * BLOCK];
    unsigned char *snap = snaps[slot];
    size_t snap_len = sizeof snaps[0];
    for (long k = 0; k < 20 * rounds; k++) {
        unsigned tag = (unsigned)(k + 7);
        fill(snap, snap_len, tag);
        pid_t pid = fork();
        if (pid < 0) {
            BAD("fork");
            continue;
        }
        if (pid == 0) {
            /* The child has one thread: this one, with the snapshot as the parent left it. */
            _exit(same(snap, snap_len, tag) ? 0 : 3);
        }
        /* The parent changes the buffer at once: the child must not see it. */
        fill(snap, snap_len, tag + 1);
        int st = 0;
        pid_t w = waitpid(pid, &st, 0);
        if (w != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            BAD("fork child %d: waitpid %d status %#x", (int)pid, (int)w, st);
    }
    return NULL;
}

static void *vm_thread(void *arg)
{
    long id = (long)arg;
    if (id == 0)
        return vm_shared_reader(0);
    if (id == 1)
        return vm_forker(0);
    return vm_mapper(id);
}

static void phase_vm(void)
{
    char path[320];
    vm_fd = open(P(path, "vmfile"), O_RDWR | O_CREAT | O_TRUNC, 0644);
    REQUIRE(vm_fd >= 0);
    REQUIRE(ftruncate(vm_fd, 8 * BLOCK) == 0);
    atomic_store(&bad, 0);
    run_threads(vm_thread, NTHREADS + 1);
    CHECKF(atomic_load(&bad) == 0, "vm: %d bad", atomic_load(&bad));
    close(vm_fd);
    CHECK(unlink(path) == 0);
}

/* ---- futex: a token ring, a mutex counter, a shared futex between processes ---- */

static atomic_int ring[NTHREADS];
static pthread_mutex_t counter_lock = PTHREAD_MUTEX_INITIALIZER;
static long counter;

static long futex(atomic_int *uaddr, int op, int val, const struct timespec *ts)
{
    return syscall(SYS_futex, uaddr, op, val, ts, NULL, 0);
}

/* Wait until *w != 0, then clear it. A 20 s stall is a lost wake-up. */
static void take(atomic_int *w, int shared)
{
    struct timespec ts = {20, 0};
    int op = shared ? FUTEX_WAIT : FUTEX_WAIT | 128;
    for (;;) {
        int one = 1;
        if (atomic_compare_exchange_strong(w, &one, 0))
            return;
        if (futex(w, op, 0, &ts) != 0 && errno != EAGAIN && errno != EINTR) {
            if (errno == ETIMEDOUT) {
                BAD("stalled: a lost wake-up");
                return;
            }
            BAD("futex wait");
            return;
        }
    }
}

static void give(atomic_int *w, int shared)
{
    atomic_store(w, 1);
    if (futex(w, shared ? FUTEX_WAKE : FUTEX_WAKE | 128, 1, NULL) < 0)
        BAD("futex wake");
}

static void *futex_thread(void *arg)
{
    long id = (long)arg;
    for (long k = 0; k < 300 * rounds; k++) {
        take(&ring[id], 0);
        pthread_mutex_lock(&counter_lock);
        counter++;
        pthread_mutex_unlock(&counter_lock);
        give(&ring[(id + 1) % NTHREADS], 0);
    }
    for (long k = 0; k < 2000 * rounds; k++) {
        pthread_mutex_lock(&counter_lock);
        counter++;
        pthread_mutex_unlock(&counter_lock);
    }
    return NULL;
}

static void phase_futex(void)
{
    for (int i = 0; i < NTHREADS; i++)
        atomic_store(&ring[i], 0);
    counter = 0;
    atomic_store(&bad, 0);
    atomic_store(&ring[0], 1);
    run_threads(futex_thread, NTHREADS);
    CHECKF(atomic_load(&bad) == 0, "futex: %d bad", atomic_load(&bad));
    CHECKF(counter == NTHREADS * (300 + 2000) * rounds, "counter %ld", counter);

    /* Two processes ping-pong on futexes in a shared file mapping (keys: inode and offset). */
    char path[320];
    int fd = open(P(path, "futexfile"), O_RDWR | O_CREAT | O_TRUNC, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(ftruncate(fd, BLOCK) == 0);
    atomic_int *w = mmap(NULL, BLOCK, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (w == MAP_FAILED && errno == ENODEV && !native) /* as in vm_shared_reader */
        w = mmap(NULL, BLOCK, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(w != MAP_FAILED);
    if (w == MAP_FAILED)
        return;
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    long n = 500 * rounds;
    if (pid == 0) {
        atomic_store(&bad, 0);
        for (long k = 0; k < n; k++) {
            take(&w[0], 1);
            give(&w[1], 1);
        }
        _exit(atomic_load(&bad) == 0 ? 0 : 1);
    }
    for (long k = 0; k < n; k++) {
        give(&w[0], 1);
        take(&w[1], 1);
    }
    int st = 0;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECKF(atomic_load(&bad) == 0, "shared futex: %d bad", atomic_load(&bad));
    munmap(w, BLOCK);
    close(fd);
    CHECK(unlink(path) == 0);
}

/* ---- futex_fork: a token passed between threads while another forks ---- */

/* The words sit in their own page, which each fork makes copy-on-write: the next store
 * copies it (or takes it back), while the other thread may be between finding its futex and
 * checking the word. A check of the page the word no longer lives in is a lost wake-up. */
static struct {
    atomic_int w[2];
    char pad[BLOCK];
} __attribute__((aligned(BLOCK))) cow_page;
static atomic_int forking;

static void *futex_fork_thread(void *arg)
{
    long id = (long)arg;
    if (id == 2) {
        while (atomic_load(&forking)) {
            pid_t pid = fork();
            if (pid == 0)
                _exit(0);
            if (pid < 0 || waitpid(pid, NULL, 0) != pid)
                BAD("fork");
        }
        return NULL;
    }
    for (long k = 0; k < 1000 * rounds; k++) {
        take(&cow_page.w[id], 0);
        give(&cow_page.w[1 - id], 0);
    }
    return NULL;
}

static void *futex_fork_main(void *arg)
{
    long id = (long)arg;
    void *r = futex_fork_thread(arg);
    if (id == 0)
        atomic_store(&forking, 0);
    return r;
}

static void phase_futex_fork(void)
{
    atomic_store(&cow_page.w[0], 1);
    atomic_store(&cow_page.w[1], 0);
    atomic_store(&forking, 1);
    atomic_store(&bad, 0);
    run_threads(futex_fork_main, 3);
    CHECKF(atomic_load(&bad) == 0, "futex_fork: %d bad", atomic_load(&bad));
}

/* ---- all at once ---- */

static void *all_thread(void *arg)
{
    long id = (long)arg;
    switch (id % 4) {
    case 0: return vm_mapper(id);
    case 1: return vm_forker((int)(id / 4));
    case 2: return vm_shared_reader((int)(id / 4));
    default: return file_thread((void *)(id / 4));
    }
}

static void phase_all(void)
{
    char path[320], a[320];
    shared_fd = open(P(path, "file"), O_RDWR | O_CREAT | O_TRUNC, 0644);
    REQUIRE(shared_fd >= 0);
    unsigned char z[BLOCK * NTHREADS] = {0};
    REQUIRE(write(shared_fd, z, sizeof z) == (ssize_t)sizeof z);
    REQUIRE(link(path, P(a, "alias0")) == 0);
    char vpath[320];
    vm_fd = open(P(vpath, "vmfile"), O_RDWR | O_CREAT | O_TRUNC, 0644);
    REQUIRE(vm_fd >= 0);
    REQUIRE(ftruncate(vm_fd, 8 * BLOCK) == 0);
    atomic_store(&bad, 0);
    run_threads(all_thread, 8);
    CHECKF(atomic_load(&bad) == 0, "all: %d bad", atomic_load(&bad));
    close(shared_fd);
    close(vm_fd);
    CHECK(unlink(path) == 0 && unlink(vpath) == 0);
    CHECK(unlink(P(a, "alias0")) == 0 || unlink(P(a, "alias1")) == 0);
}

/* A crash says where, for the kernel's sake (which access, from where). */
static void on_fault(int sig, siginfo_t *si, void *ucv)
{
    ucontext_t *uc = ucv;
    char line[160];
    int n = snprintf(line, sizeof line, "t_stress: signal %d at %p (code %d) ip %#llx tid %ld\n", sig, si->si_addr,
                     si->si_code, (unsigned long long)uc->uc_mcontext.gregs[REG_RIP], (long)syscall(SYS_gettid));
    if (write(1, line, (size_t)n) < 0)
        _exit(128 + sig);
    _exit(128 + sig);
}

int main(int argc, char **argv)
{
    vktest_reset_signals();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
    const char *base = argc > 1 ? argv[1] : "/tmp";
    if (argc > 2)
        rounds = atol(argv[2]) > 0 ? atol(argv[2]) : 1;
    struct utsname u;
    native = uname(&u) == 0 && strstr(u.release, "-vk") == NULL;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    snprintf(scratch, sizeof scratch, "%s/t_stress.%d.%ld", base, (int)getpid(), now.tv_nsec);
    REQUIRE(mkdir(scratch, 0755) == 0);
    phase_file();
    phase_rename();
    phase_dir();
    phase_crossdir();
    phase_vm();
    phase_futex();
    phase_futex_fork();
    phase_all();
    CHECK(rmdir(scratch) == 0);
    return vktest_done();
}
