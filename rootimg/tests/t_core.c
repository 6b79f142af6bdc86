/*
 * t_core — core files (core(5), signal(7)): a process killed by a signal whose default action
 * is "Core" writes an ELF core named by /proc/sys/kernel/core_pattern into its working
 * directory when RLIMIT_CORE allows, and wait(2) reports WCOREDUMP (waitid: CLD_DUMPED).
 * The core has a PT_NOTE with NT_PRSTATUS per thread (the dumping one first), NT_PRPSINFO,
 * NT_SIGINFO, NT_AUXV, NT_FILE, NT_PRFPREG, and PT_LOADs holding the process's memory.
 * An existing `core` is unlinked first (a symbolic link's target is never written); one that
 * is a directory means no core; so does a directory the dumper cannot write to.
 *
 * Needs core_pattern to be `core` (a plain name in the working directory): natively on a host
 * whose pattern is a pipe or another path the checks cannot see the file, and the program
 * says so and checks nothing else.
 */
#include "vktest.h"

#include <elf.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#ifndef NT_SIGINFO
#define NT_SIGINFO 0x53494749
#endif
#ifndef NT_FILE
#define NT_FILE 0x46494c45
#endif
#ifndef NT_X86_XSTATE
#define NT_X86_XSTATE 0x202
#endif

static const char MARKER[] = "vk-core-marker-0123456789";
static char dir_template[] = "/tmp/t_core.XXXXXX";
static char *dir;

/* Read a whole file (at most 64 MiB); NULL on error. */
static unsigned char *slurp(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return NULL;
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_size > (64 << 20)) {
        close(fd);
        return NULL;
    }
    unsigned char *buf = malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (buf && got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    *len = got;
    return buf;
}

struct core_facts {
    int elf_ok;
    int nprstatus;
    int first_pid;
    int cursig;
    int has_psinfo, has_siginfo, has_auxv, has_file, has_fpreg, has_xstate;
    char fname[17];
    int sig_no, sig_code;
    unsigned long fault_addr;
    int marker_found;
    unsigned long rip_first;
};

/* Parse an ELF core: its notes and whether MARKER is in a PT_LOAD's data. */
static void parse_core(const unsigned char *b, size_t len, struct core_facts *f)
{
    memset(f, 0, sizeof *f);
    if (len < sizeof(Elf64_Ehdr))
        return;
    const Elf64_Ehdr *eh = (const void *)b;
    f->elf_ok = memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0 && eh->e_type == ET_CORE &&
                eh->e_machine == EM_X86_64 && eh->e_phentsize == sizeof(Elf64_Phdr);
    if (!f->elf_ok || eh->e_phoff + (size_t)eh->e_phnum * sizeof(Elf64_Phdr) > len)
        return;
    const Elf64_Phdr *ph = (const void *)(b + eh->e_phoff);
    for (int i = 0; i < eh->e_phnum; i++) {
        if (ph[i].p_offset + ph[i].p_filesz > len)
            continue;
        const unsigned char *seg = b + ph[i].p_offset;
        if (ph[i].p_type == PT_LOAD) {
            if (memmem(seg, ph[i].p_filesz, MARKER, sizeof MARKER - 1))
                f->marker_found = 1;
            continue;
        }
        if (ph[i].p_type != PT_NOTE)
            continue;
        size_t off = 0;
        while (off + sizeof(Elf64_Nhdr) <= ph[i].p_filesz) {
            const Elf64_Nhdr *nh = (const void *)(seg + off);
            size_t name_at = off + sizeof *nh;
            size_t desc_at = name_at + ((nh->n_namesz + 3) & ~3u);
            size_t next = desc_at + ((nh->n_descsz + 3) & ~3u);
            if (next > ph[i].p_filesz)
                break;
            const unsigned char *desc = seg + desc_at;
            switch (nh->n_type) {
            case NT_PRSTATUS:
                if (nh->n_descsz >= 112 + 27 * 8) {
                    if (f->nprstatus == 0) {
                        memcpy(&f->first_pid, desc + 32, 4); /* pr_pid */
                        short cursig;
                        memcpy(&cursig, desc + 12, 2); /* pr_cursig */
                        f->cursig = cursig;
                        memcpy(&f->rip_first, desc + 112 + 16 * 8, 8); /* pr_reg.rip */
                    }
                    f->nprstatus++;
                }
                break;
            case NT_PRPSINFO:
                if (nh->n_descsz >= 136) {
                    f->has_psinfo = 1;
                    memcpy(f->fname, desc + 40, 16);
                }
                break;
            case NT_SIGINFO:
                if (nh->n_descsz >= 128) {
                    f->has_siginfo = 1;
                    memcpy(&f->sig_no, desc, 4);
                    memcpy(&f->sig_code, desc + 8, 4);
                    memcpy(&f->fault_addr, desc + 16, 8);
                }
                break;
            case NT_AUXV:
                f->has_auxv = nh->n_descsz > 0;
                break;
            case NT_FILE:
                f->has_file = 1;
                break;
            case NT_PRFPREG:
                f->has_fpreg = nh->n_descsz == 512;
                break;
            case NT_X86_XSTATE:
                f->has_xstate = nh->n_descsz > 512;
                break;
            }
            off = next;
        }
    }
}

enum how { SEGV_NULL, SEGV_IGNORED, ABORT, TERM, THREADED, SPINNERS };

static void *sleeper(void *arg)
{
    (void)arg;
    for (;;)
        pause();
    return NULL;
}

static volatile int spinning;

static void *spinner(void *arg)
{
    (void)arg;
    __atomic_add_fetch(&spinning, 1, __ATOMIC_SEQ_CST);
    for (;;)
        __asm__ volatile("" ::: "memory");
    return NULL;
}

/* In a child: set RLIMIT_CORE, cd into `where`, die `how`. */
static void die(const char *where, rlim_t limit, enum how how)
{
    struct rlimit rl;
    getrlimit(RLIMIT_CORE, &rl);
    rl.rlim_cur = limit;
    if (limit == RLIM_INFINITY || limit > rl.rlim_max)
        rl.rlim_max = limit;
    if (setrlimit(RLIMIT_CORE, &rl) < 0 || chdir(where) < 0)
        _exit(90);
    /* Something of ours to find in the core's memory. */
    char *heap = malloc(4096);
    if (!heap)
        _exit(91);
    memcpy(heap, MARKER, sizeof MARKER);
    __asm__ volatile("" ::"r"(heap) : "memory");
    switch (how) {
    case SEGV_NULL:
        *(volatile int *)BAD_PTR(0x10) = 1;
        break;
    case SEGV_IGNORED:
        signal(SIGSEGV, SIG_IGN);
        *(volatile int *)BAD_PTR(0x10) = 1;
        break;
    case ABORT:
        abort();
    case TERM:
        kill(getpid(), SIGTERM);
        break;
    case THREADED: {
        pthread_t t;
        if (pthread_create(&t, NULL, sleeper, NULL) != 0)
            _exit(92);
        usleep(20000);
        *(volatile int *)BAD_PTR(0x10) = 1;
        break;
    }
    case SPINNERS: {
        /* Threads running in user mode when the fault comes: they are stopped for the core. */
        for (int i = 0; i < 4; i++) {
            pthread_t t;
            if (pthread_create(&t, NULL, spinner, NULL) != 0)
                _exit(92);
        }
        while (__atomic_load_n(&spinning, __ATOMIC_SEQ_CST) < 4)
            usleep(1000);
        *(volatile int *)BAD_PTR(0x10) = 1;
        break;
    }
    }
    _exit(93);
}

/* Fork a child that dies `how` in `where`; returns its pid and wait status. */
static pid_t run(const char *where, rlim_t limit, enum how how, int *status)
{
    pid_t pid = fork();
    if (pid == 0)
        die(where, limit, how);
    *status = -1;
    if (pid > 0)
        waitpid(pid, status, 0);
    return pid;
}

static char *path_in(const char *sub, const char *name)
{
    static char buf[4][256];
    static int i;
    char *p = buf[i++ % 4];
    snprintf(p, 256, "%s/%s%s%s", dir, sub, *sub ? "/" : "", name);
    return p;
}

static void test_no_limit_no_core(void)
{
    int st;
    run(dir, 0, SEGV_NULL, &st);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV);
    CHECK(!WCOREDUMP(st));
    CHECK(access(path_in("", "core"), F_OK) < 0 && errno == ENOENT);
}

static void test_segv_core(void)
{
    int st;
    pid_t pid = run(dir, RLIM_INFINITY, SEGV_NULL, &st);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV);
    CHECKF(WCOREDUMP(st), "status %#x", st);
    struct stat sb;
    REQUIRE(stat(path_in("", "core"), &sb) == 0);
    CHECKF((sb.st_mode & 07777) == 0600, "mode %o", sb.st_mode);
    CHECK(sb.st_uid == getuid());
    size_t len = 0;
    unsigned char *b = slurp(path_in("", "core"), &len);
    REQUIRE(b != NULL);
    struct core_facts f;
    parse_core(b, len, &f);
    CHECK(f.elf_ok);
    CHECKF(f.nprstatus == 1, "%d NT_PRSTATUS", f.nprstatus);
    CHECKF(f.first_pid == pid && f.cursig == SIGSEGV, "pid %d sig %d", f.first_pid, f.cursig);
    CHECK(f.rip_first != 0);
    CHECK(f.has_psinfo && strcmp(f.fname, "t_core") == 0);
    CHECKF(f.has_siginfo && f.sig_no == SIGSEGV && f.sig_code == SEGV_MAPERR && f.fault_addr == 0x10,
           "siginfo %d %d %#lx", f.sig_no, f.sig_code, f.fault_addr);
    CHECK(f.has_auxv);
    CHECK(f.has_file);
    CHECK(f.has_fpreg && f.has_xstate);
    CHECK(f.marker_found);
    free(b);
    unlink(path_in("", "core"));
}

static void test_limit(void)
{
    /* RLIMIT_CORE bounds the file; what fits is written, and it counts as a core. */
    int st;
    run(dir, 8192, SEGV_NULL, &st);
    CHECKF(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV && WCOREDUMP(st), "status %#x", st);
    struct stat sb;
    REQUIRE(stat(path_in("", "core"), &sb) == 0);
    CHECKF(sb.st_size > 64 && sb.st_size <= 8192, "size %ld", (long)sb.st_size);
    size_t len = 0;
    unsigned char *b = slurp(path_in("", "core"), &len);
    CHECK(b != NULL && len >= 4 && memcmp(b, ELFMAG, SELFMAG) == 0);
    free(b);
    unlink(path_in("", "core"));
    /* Less than a page: no core at all. */
    run(dir, 4095, SEGV_NULL, &st);
    CHECK(WIFSIGNALED(st) && !WCOREDUMP(st));
    CHECK(access(path_in("", "core"), F_OK) < 0);
}

static void test_threads_in_core(void)
{
    int st;
    pid_t pid = run(dir, RLIM_INFINITY, THREADED, &st);
    CHECKF(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV && WCOREDUMP(st), "status %#x", st);
    size_t len = 0;
    unsigned char *b = slurp(path_in("", "core"), &len);
    REQUIRE(b != NULL);
    struct core_facts f;
    parse_core(b, len, &f);
    CHECKF(f.nprstatus == 2, "%d NT_PRSTATUS", f.nprstatus);
    CHECKF(f.first_pid == pid, "the faulting thread first: %d, pid %d", f.first_pid, pid);
    free(b);
    unlink(path_in("", "core"));
    pid = run(dir, RLIM_INFINITY, SPINNERS, &st);
    CHECKF(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV && WCOREDUMP(st), "status %#x", st);
    b = slurp(path_in("", "core"), &len);
    REQUIRE(b != NULL);
    parse_core(b, len, &f);
    CHECKF(f.nprstatus == 5 && f.first_pid == pid, "%d NT_PRSTATUS, first %d, pid %d", f.nprstatus, f.first_pid, pid);
    free(b);
    unlink(path_in("", "core"));
}

static void test_other_signals(void)
{
    int st;
    run(dir, RLIM_INFINITY, ABORT, &st);
    CHECKF(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT && WCOREDUMP(st), "status %#x", st);
    CHECK(unlink(path_in("", "core")) == 0);
    run(dir, RLIM_INFINITY, TERM, &st);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM && !WCOREDUMP(st));
    CHECK(access(path_in("", "core"), F_OK) < 0);
    /* A fault the process ignores is forced on it, with its default action. */
    run(dir, RLIM_INFINITY, SEGV_IGNORED, &st);
    CHECKF(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV && WCOREDUMP(st), "status %#x", st);
    CHECK(unlink(path_in("", "core")) == 0);
    /* waitid says CLD_DUMPED. */
    pid_t pid = fork();
    if (pid == 0)
        die(dir, RLIM_INFINITY, SEGV_NULL);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    CHECK(waitid(P_PID, (id_t)pid, &si, WEXITED) == 0);
    CHECK(si.si_code == CLD_DUMPED && si.si_status == SIGSEGV);
    CHECK(unlink(path_in("", "core")) == 0);
}

static void test_refused(void)
{
    int st;
    /* `core` is a directory: no core, and the directory is left alone. */
    REQUIRE(mkdir(path_in("", "core"), 0755) == 0);
    run(dir, RLIM_INFINITY, SEGV_NULL, &st);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV && !WCOREDUMP(st));
    struct stat sb;
    CHECK(stat(path_in("", "core"), &sb) == 0 && S_ISDIR(sb.st_mode));
    CHECK(rmdir(path_in("", "core")) == 0);
    /* An existing core is unlinked first and a new one made (O_EXCL, 0600), so neither
     * its mode nor a symbolic link's target matter. */
    int fd = open(path_in("", "core"), O_CREAT | O_WRONLY, 0644);
    REQUIRE(fd >= 0);
    fchmod(fd, 0644);
    CHECK(write(fd, "old", 3) == 3);
    close(fd);
    run(dir, RLIM_INFINITY, SEGV_NULL, &st);
    CHECKF(WIFSIGNALED(st) && WCOREDUMP(st), "status %#x", st);
    CHECK(stat(path_in("", "core"), &sb) == 0 && sb.st_size > 4096 && (sb.st_mode & 07777) == 0600);
    CHECK(unlink(path_in("", "core")) == 0);
    fd = open(path_in("", "target"), O_CREAT | O_WRONLY, 0600);
    REQUIRE(fd >= 0);
    close(fd);
    CHECK(symlink("target", path_in("", "core")) == 0);
    run(dir, RLIM_INFINITY, SEGV_NULL, &st);
    CHECKF(WCOREDUMP(st), "status %#x", st);
    CHECK(lstat(path_in("", "core"), &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size > 4096);
    CHECK(stat(path_in("", "target"), &sb) == 0 && sb.st_size == 0);
    CHECK(unlink(path_in("", "core")) == 0 && unlink(path_in("", "target")) == 0);
    /* A directory the dumper cannot write to: nothing (as any other user than root). */
    if (getuid() == 0) {
        CHECK(chmod(dir, 0755) == 0 && mkdir(path_in("", "ro"), 0555) == 0);
        pid_t pid = fork();
        if (pid == 0) {
            if (setgid(65534) < 0 || setuid(65534) < 0)
                _exit(94);
            die(path_in("", "ro"), RLIM_INFINITY, SEGV_NULL);
        }
        waitpid(pid, &st, 0);
        CHECKF(WIFSIGNALED(st) && !WCOREDUMP(st), "status %#x", st);
        CHECK(access(path_in("ro", "core"), F_OK) < 0);
        CHECK(rmdir(path_in("", "ro")) == 0);
    }
}

int main(void)
{
    vktest_reset_signals();
    char pattern[256] = "";
    int fd = open("/proc/sys/kernel/core_pattern", O_RDONLY);
    if (fd >= 0) {
        ssize_t n = read(fd, pattern, sizeof pattern - 1);
        pattern[n > 0 ? n : 0] = 0;
        close(fd);
    }
    if (strcmp(pattern, "core\n") != 0) {
        vktest_print("t_core: core_pattern is not `core` (%s): nothing to check here\n", pattern);
        CHECK(1);
        vktest_done();
    }
    dir = mkdtemp(dir_template);
    REQUIRE(dir != NULL);
    test_no_limit_no_core();
    test_segv_core();
    test_threads_in_core();
    test_limit();
    test_other_signals();
    test_refused();
    rmdir(dir);
    vktest_done();
}
