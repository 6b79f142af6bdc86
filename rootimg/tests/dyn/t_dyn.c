/*
 * t_dyn — a dynamically linked program (built twice: t_dyn_musl with musl-gcc, t_dyn_glibc with
 * gcc; both position-independent) checks what its dynamic linker and the kernel gave it:
 *   - the auxiliary vector (and /proc/self/auxv, the same bytes): AT_BASE (the interpreter's ELF header), AT_PHDR/PHENT/PHNUM and
 *     AT_ENTRY (agreeing with the program's own headers), AT_PAGESZ, AT_CLKTCK, AT_PLATFORM,
 *     AT_EXECFN, AT_RANDOM, AT_HWCAP (CPUID), the ids, AT_SECURE, AT_FLAGS, AT_MINSIGSTKSZ;
 *   - threads (pthread_create/join, a mutex), __thread variables in the program and in a
 *     library linked at start-up (lib/libvktls_LIBC.so), each thread with its own copy;
 *   - dlopen/dlsym/dlclose of lib/libvkdl_LIBC.so: its constructor, a function, its thread-local
 *     variable (also from a thread that started before the dlopen), a missing library;
 *   - IFUNC (glibc) and __builtin_cpu_supports agreeing with /proc/cpuinfo's flags;
 *   - the interpreter run directly: `ld.so --list t_dyn` (ldd) and `ld.so h_dynprobe`;
 *   - a static PIE (glibc: h_dynprobe_spie) in the mmap area, its break near the PIE base;
 *   - ASLR, through h_dynprobe_LIBC run twice: stack, mmap, PIE, interpreter and break
 *     addresses differ (same when /proc/sys/kernel/randomize_va_space is 0), and are the same
 *     under personality(ADDR_NO_RANDOMIZE), which fork and exec pass on; personality(2) itself,
 *     and uname(2) under PER_LINUX32 and UNAME26;
 *   - a set-user-ID copy (h_dynprobe_LIBC_suid, owned by uid 1000, staged by stage.sh) sees
 *     AT_SECURE, and its dynamic linker then ignores LD_LIBRARY_PATH; the persona loses
 *     ADDR_NO_RANDOMIZE over that exec.
 * Runs as root (the set-user-ID copy must change its effective uid).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/auxv.h>
#include <sys/personality.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <cpuid.h>

#include "../vktest.h"

#ifdef __GLIBC__
#define LIBC "glibc"
#define INTERP "/lib64/ld-linux-x86-64.so.2"
#else
#define LIBC "musl"
#define INTERP "/lib/ld-musl-x86_64.so.1"
#endif

#define NTHREADS 4

int *vktls_addr(void);

static __thread int main_tls = 7;
static char dir[PATH_MAX];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long counter;

/* ---- helpers ---- */

/* Run argv with envp (and optionally no address randomisation) and collect its stdout;
 * returns the wait status, -1 on failure. */
static int run(const char *path, char *const argv[], char *const envp[], int no_random, char *out, size_t outsz)
{
    int p[2];
    if (pipe(p) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        if (no_random && personality(ADDR_NO_RANDOMIZE) == -1)
            _exit(125);
        execve(path, argv, envp);
        _exit(127);
    }
    close(p[1]);
    size_t got = 0;
    ssize_t n;
    while (got + 1 < outsz && (n = read(p[0], out + got, outsz - 1 - got)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        got += (size_t)n;
    }
    out[got] = 0;
    close(p[0]);
    int st;
    if (waitpid(pid, &st, 0) != pid)
        return -1;
    return st;
}

struct probe {
    unsigned long stack, mmap, pie, base, brk, secure;
    unsigned pers;
    int found, euid;
};

static int probe(const char *name, char *const envp[], int no_random, struct probe *pr)
{
    char path[PATH_MAX + 64], out[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *argv[] = {path, NULL};
    int st = run(path, argv, envp, no_random, out, sizeof out);
    if (st != 0)
        return -1;
    memset(pr, 0, sizeof *pr);
    int n = sscanf(out, "stack=%lx mmap=%lx pie=%lx base=%lx brk=%lx pers=%x secure=%lu found=%d euid=%d",
                   &pr->stack, &pr->mmap, &pr->pie, &pr->base, &pr->brk, &pr->pers, &pr->secure,
                   &pr->found, &pr->euid);
    return n == 9 ? 0 : -1;
}

/* Whether /proc/cpuinfo's first "flags" line has `flag` as a word. */
static int cpuinfo_has(const char *flag)
{
    static char buf[65536];
    int fd = open("/proc/cpuinfo", O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t n, got = 0;
    while (got < (ssize_t)sizeof buf - 1 && (n = read(fd, buf + got, sizeof buf - 1 - got)) > 0)
        got += n;
    close(fd);
    buf[got] = 0;
    char *line = strstr(buf, "\nflags");
    if (!line)
        return -1;
    char *colon = strchr(line, ':');
    char *end = strchr(line + 1, '\n');
    if (!colon || !end)
        return -1;
    size_t len = strlen(flag);
    for (char *p = colon + 1; p < end;) {
        while (p < end && *p == ' ')
            p++;
        char *w = p;
        while (p < end && *p != ' ')
            p++;
        if ((size_t)(p - w) == len && memcmp(w, flag, len) == 0)
            return 1;
    }
    return 0;
}

static int read_int(const char *path)
{
    char b[32] = {0};
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, b, sizeof b - 1);
    close(fd);
    return n > 0 ? atoi(b) : -1;
}

/* ---- the auxiliary vector ---- */

/* An entry of the auxiliary vector as the kernel wrote it, past the environment's end (glibc's
 * getauxval(AT_HWCAP) answers its own x86 hwcap bits instead). Call before setenv(3). */
static unsigned long raw_auxval(unsigned long type)
{
    extern char **environ;
    char **e = environ;
    while (*e)
        e++;
    for (const Elf64_auxv_t *av = (const Elf64_auxv_t *)(e + 1); av->a_type != AT_NULL; av++)
        if (av->a_type == type)
            return av->a_un.a_val;
    return 0;
}

/* The auxiliary vector as the kernel wrote it, and its length up to AT_NULL included. */
static const Elf64_auxv_t *raw_auxv(size_t *len)
{
    extern char **environ;
    char **e = environ;
    while (*e)
        e++;
    const Elf64_auxv_t *av = (const Elf64_auxv_t *)(e + 1), *p = av;
    while (p->a_type != AT_NULL)
        p++;
    *len = (size_t)(p + 1 - av) * sizeof *av;
    return av;
}

static void test_auxv(const char *self)
{
    /* /proc/self/auxv: the same vector, byte for byte. */
    static unsigned char buf[8192];
    size_t len, got = 0;
    const Elf64_auxv_t *av = raw_auxv(&len);
    int fd = open("/proc/self/auxv", O_RDONLY);
    REQUIRE(fd >= 0);
    ssize_t n;
    while (fd >= 0 && got < sizeof buf && (n = read(fd, buf + got, sizeof buf - got)) > 0)
        got += (size_t)n;
    if (fd >= 0)
        close(fd);
    CHECKF(got == len && memcmp(buf, av, len) == 0, "/proc/self/auxv: %zu bytes, the stack's %zu", got, len);

    unsigned long base = getauxval(AT_BASE);
    CHECKF(base != 0 && base % 4096 == 0, "AT_BASE %#lx", base);
    CHECK(base && memcmp((void *)base, ELFMAG, SELFMAG) == 0);

    const Elf64_Phdr *ph = (const Elf64_Phdr *)getauxval(AT_PHDR);
    unsigned long phnum = getauxval(AT_PHNUM);
    CHECK(getauxval(AT_PHENT) == sizeof(Elf64_Phdr));
    REQUIRE(ph != NULL && phnum > 0 && phnum < 64);
    if (!ph || phnum == 0 || phnum >= 64)
        return;
    /* The load bias, from PT_PHDR: the program's ELF header sits at the bias (its first
     * segment maps file offset 0). */
    unsigned long bias = 0;
    int has_phdr = 0, has_interp = 0;
    for (unsigned long i = 0; i < phnum; i++) {
        if (ph[i].p_type == PT_PHDR) {
            bias = (unsigned long)ph - ph[i].p_vaddr;
            has_phdr = 1;
        }
        if (ph[i].p_type == PT_INTERP)
            has_interp = 1;
    }
    CHECK(has_phdr && has_interp);
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)bias;
    CHECKF(bias != 0 && memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0, "bias %#lx", bias);
    CHECK(eh->e_type == ET_DYN && eh->e_phnum == phnum);
    CHECKF(getauxval(AT_ENTRY) == bias + eh->e_entry, "AT_ENTRY %#lx, bias %#lx + e_entry %#lx",
           getauxval(AT_ENTRY), bias, (unsigned long)eh->e_entry);
    CHECK((unsigned long)&test_auxv > bias);

    CHECK(getauxval(AT_PAGESZ) == 4096);
    CHECK(getauxval(AT_CLKTCK) == 100);
    const char *plat = (const char *)getauxval(AT_PLATFORM);
    CHECK(plat && strcmp(plat, "x86_64") == 0);
    const char *execfn = (const char *)getauxval(AT_EXECFN);
    CHECKF(execfn && strcmp(execfn, self) == 0, "AT_EXECFN %s, argv[0] %s", execfn ? execfn : "(null)", self);
    const unsigned char *rnd = (const unsigned char *)getauxval(AT_RANDOM);
    int nonzero = 0;
    for (int i = 0; rnd && i < 16; i++)
        nonzero |= rnd[i];
    CHECK(rnd && nonzero);
    unsigned a, b, c, d;
    __cpuid(1, a, b, c, d);
    CHECKF(raw_auxval(AT_HWCAP) == d, "AT_HWCAP %#lx, cpuid.1.edx %#x", raw_auxval(AT_HWCAP), d);
    CHECK(getauxval(AT_UID) == getuid() && getauxval(AT_EUID) == geteuid());
    CHECK(getauxval(AT_GID) == getgid() && getauxval(AT_EGID) == getegid());
    CHECK(getauxval(AT_SECURE) == 0);
    CHECK(getauxval(AT_FLAGS) == 0);
    CHECKF(getauxval(AT_MINSIGSTKSZ) >= 1024 && getauxval(AT_MINSIGSTKSZ) <= SIGSTKSZ * 4,
           "AT_MINSIGSTKSZ %lu", getauxval(AT_MINSIGSTKSZ));
}

/* ---- threads and TLS ---- */

struct targ {
    int index;
    int main_init, lib_init, dl_first;
    int *main_addr, *lib_addr;
    int main_kept, lib_kept;
    int (*bump)(void);
    int go_fd; /* read end: wait for the dlopen */
};

static void *worker(void *p)
{
    struct targ *t = p;
    t->main_init = main_tls;
    t->main_addr = &main_tls;
    t->lib_init = *vktls_addr();
    t->lib_addr = vktls_addr();
    main_tls = 100 + t->index;
    *vktls_addr() = 200 + t->index;
    for (int i = 0; i < 1000; i++) {
        pthread_mutex_lock(&lock);
        counter++;
        pthread_mutex_unlock(&lock);
    }
    char c;
    while (read(t->go_fd, &c, 1) < 0 && errno == EINTR)
        ;
    /* The library was opened after this thread started: its TLS is allocated now. */
    t->dl_first = t->bump ? t->bump() : -1;
    t->main_kept = main_tls == 100 + t->index;
    t->lib_kept = *vktls_addr() == 200 + t->index;
    return NULL;
}

static void test_threads_tls_dlopen(void)
{
    char path[PATH_MAX + 64];
    pthread_t th[NTHREADS];
    struct targ args[NTHREADS];
    int go[2];
    REQUIRE(pipe(go) == 0);
    main_tls = 1;
    *vktls_addr() = 2;
    int (*bump)(void) = NULL;
    for (int i = 0; i < NTHREADS; i++) {
        memset(&args[i], 0, sizeof args[i]);
        args[i].index = i;
        args[i].go_fd = go[0];
        CHECK(pthread_create(&th[i], NULL, worker, &args[i]) == 0);
    }

    snprintf(path, sizeof path, "%s/lib/libvkdl_%s.so", dir, LIBC);
    void *h = dlopen(path, RTLD_NOW);
    CHECKF(h != NULL, "dlopen %s: %s", path, dlerror());
    if (h) {
        int *ctor = dlsym(h, "vkdl_ctor_ran");
        CHECK(ctor && *ctor == 1);
        int (*answer)(void) = (int (*)(void))dlsym(h, "vkdl_answer");
        CHECK(answer && answer() == 42);
        bump = (int (*)(void))dlsym(h, "vkdl_tls_bump");
        CHECK(bump && bump() == 6 && bump() == 7);
        int *tls = dlsym(h, "vkdl_tls");
        CHECK(tls && *tls == 7);
    }
    for (int i = 0; i < NTHREADS; i++)
        args[i].bump = bump;
    CHECK(write(go[1], "gggg", NTHREADS) == NTHREADS);
    for (int i = 0; i < NTHREADS; i++)
        CHECK(pthread_join(th[i], NULL) == 0);
    CHECK(counter == NTHREADS * 1000);
    int fresh = 1, distinct = 1, kept = 1, dl = 1;
    for (int i = 0; i < NTHREADS; i++) {
        fresh &= args[i].main_init == 7 && args[i].lib_init == 99;
        distinct &= args[i].main_addr != &main_tls && args[i].lib_addr != vktls_addr();
        for (int j = 0; j < i; j++)
            distinct &= args[i].main_addr != args[j].main_addr && args[i].lib_addr != args[j].lib_addr;
        kept &= args[i].main_kept && args[i].lib_kept;
        dl &= args[i].dl_first == 6;
    }
    CHECK(fresh);
    CHECK(distinct);
    CHECK(kept);
    CHECK(dl);
    CHECK(main_tls == 1 && *vktls_addr() == 2);
    if (h)
        CHECK(dlclose(h) == 0);
    CHECK(dlopen("/nonexistent/libvknothing.so", RTLD_NOW) == NULL && dlerror() != NULL);
    close(go[0]);
    close(go[1]);
}

/* ---- CPU features: IFUNC and the compiler's cpu model agree with /proc/cpuinfo ---- */

#ifdef __GLIBC__
static int which_plain(void) { return 1; }
static int which_avx2(void) { return 2; }
static int (*resolve_which(void))(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
        return which_plain;
    /* AVX2 also needs the OS to save the AVX state (OSXSAVE and XCR0's bits 1-2). */
    unsigned a1, b1, c1, d1;
    __cpuid(1, a1, b1, c1, d1);
    if (!(b & bit_AVX2) || !(c1 & bit_OSXSAVE))
        return which_plain;
    unsigned lo, hi;
    __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (lo & 6) == 6 ? which_avx2 : which_plain;
}
int which(void) __attribute__((ifunc("resolve_which")));
#endif

static void test_cpu(void)
{
    __builtin_cpu_init();
    int avx2 = cpuinfo_has("avx2");
    REQUIRE(avx2 >= 0);
    CHECKF(!!__builtin_cpu_supports("avx2") == avx2, "cpu model avx2 %d, cpuinfo %d", !!__builtin_cpu_supports("avx2"), avx2);
    CHECK(!!__builtin_cpu_supports("sse4.2") == cpuinfo_has("sse4_2"));
    CHECK(!!__builtin_cpu_supports("popcnt") == cpuinfo_has("popcnt"));
#ifdef __GLIBC__
    CHECKF(which() == (avx2 ? 2 : 1), "ifunc chose %d, cpuinfo avx2 %d", which(), avx2);
#endif
}

/* ---- the interpreter run directly ---- */

static void test_interp_direct(const char *self)
{
    char out[4096], probe_path[PATH_MAX + 64];
    char *env[] = {NULL};
    char *list[] = {INTERP, "--list", (char *)self, NULL};
    int st = run(INTERP, list, env, 0, out, sizeof out);
    CHECKF(st == 0, "%s --list: status %#x", INTERP, st);
    char want[64];
    snprintf(want, sizeof want, "libvktls_%s.so => ", LIBC);
    CHECKF(strstr(out, want) != NULL, "%s --list said:\n%s", INTERP, out);

    snprintf(probe_path, sizeof probe_path, "%s/h_dynprobe_%s", dir, LIBC);
    char *direct[] = {INTERP, probe_path, NULL};
    st = run(INTERP, direct, env, 0, out, sizeof out);
    CHECKF(st == 0 && strstr(out, "secure=0 found=0") != NULL, "%s %s: status %#x: %s", INTERP, probe_path, st, out);
}

/* ---- ASLR and personality ---- */

static void test_aslr(void)
{
    char name[64];
    snprintf(name, sizeof name, "h_dynprobe_%s", LIBC);
    char *env[] = {NULL};
    int va = read_int("/proc/sys/kernel/randomize_va_space");
    CHECKF(va >= 0 && va <= 2, "randomize_va_space %d", va);
    vktest_print("randomize_va_space %d\n", va);
    struct probe a, b;
    REQUIRE(probe(name, env, 0, &a) == 0);
    REQUIRE(probe(name, env, 0, &b) == 0);
    /* Randomised: everything moves (22 and 28 random bits: a repeat is one in millions). */
    CHECKF(va ? a.stack != b.stack : a.stack == b.stack, "stack %#lx %#lx (va %d)", a.stack, b.stack, va);
    CHECKF(va ? a.mmap != b.mmap : a.mmap == b.mmap, "mmap %#lx %#lx", a.mmap, b.mmap);
    CHECKF(va ? a.pie != b.pie : a.pie == b.pie, "pie %#lx %#lx", a.pie, b.pie);
    CHECKF(va ? a.base != b.base : a.base == b.base, "base %#lx %#lx", a.base, b.base);
    CHECKF(va ? a.brk != b.brk : a.brk == b.brk, "brk %#lx %#lx", a.brk, b.brk);
    CHECK(a.pers == 0 && a.secure == 0 && a.base != 0);

    /* ADDR_NO_RANDOMIZE: the same layout each time; fork and exec keep the persona. */
    REQUIRE(probe(name, env, 1, &a) == 0);
    REQUIRE(probe(name, env, 1, &b) == 0);
    CHECKF(a.stack == b.stack && a.mmap == b.mmap, "stack %#lx %#lx mmap %#lx %#lx", a.stack, b.stack, a.mmap, b.mmap);
    CHECKF(a.pie == b.pie && a.base == b.base && a.brk == b.brk, "pie %#lx %#lx base %#lx %#lx brk %#lx %#lx",
           a.pie, b.pie, a.base, b.base, a.brk, b.brk);
    CHECK(a.pers == ADDR_NO_RANDOMIZE);

    /* personality(2): query, set, the old value back. */
    int old = personality(0xffffffff);
    CHECK(old == PER_LINUX);
    CHECK(personality(PER_LINUX | ADDR_NO_RANDOMIZE) == old);
    CHECK(personality(0xffffffff) == ADDR_NO_RANDOMIZE);
    pid_t pid = fork();
    if (pid == 0)
        _exit(personality(0xffffffff) == ADDR_NO_RANDOMIZE ? 0 : 1);
    int st;
    CHECK(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(personality(PER_LINUX) == ADDR_NO_RANDOMIZE);
    CHECK(personality(0xffffffff) == PER_LINUX);

    /* uname(2) answers the persona: PER_LINUX32 is an i686, UNAME26 a 2.6 kernel. */
    struct utsname un;
    CHECK(personality(PER_LINUX32) == PER_LINUX && uname(&un) == 0 && strcmp(un.machine, "i686") == 0);
    CHECK(personality(PER_LINUX | UNAME26) == PER_LINUX32 && uname(&un) == 0 && strncmp(un.release, "2.6.", 4) == 0);
    CHECK(strcmp(un.machine, "x86_64") == 0);
    CHECK(personality(PER_LINUX) == UNAME26 && uname(&un) == 0 && strncmp(un.release, "2.6.", 4) != 0);
}

/* ---- a static PIE: no interpreter, loaded in the mmap area, its break at the PIE base ---- */

static __attribute__((unused)) void test_static_pie(void)
{
    char *env[] = {NULL};
    int va = read_int("/proc/sys/kernel/randomize_va_space");
    struct probe a, b;
    REQUIRE(probe("h_dynprobe_spie", env, 0, &a) == 0);
    REQUIRE(probe("h_dynprobe_spie", env, 0, &b) == 0);
    CHECK(a.base == 0);
    /* The program sits in the mmap area (the top TiB or two, below the stack), its break low. */
    CHECKF(a.pie > a.brk && a.pie > 0x7e0000000000ul && a.brk < 0x600000000000ul, "pie %#lx brk %#lx", a.pie, a.brk);
    /* Only the program's place is compared: the break moves within 32 MiB (13 random bits),
     * too few for two runs to differ every time. */
    CHECKF(va ? a.pie != b.pie : a.pie == b.pie && a.brk == b.brk, "pie %#lx %#lx brk %#lx %#lx", a.pie, b.pie,
           a.brk, b.brk);
    REQUIRE(probe("h_dynprobe_spie", env, 1, &a) == 0);
    REQUIRE(probe("h_dynprobe_spie", env, 1, &b) == 0);
    CHECK(a.pie == b.pie && a.brk == b.brk && a.stack == b.stack && a.mmap == b.mmap);
}

/* ---- AT_SECURE ---- */

static void test_secure(void)
{
    char name[64], suid[64], libpath[PATH_MAX + 64];
    snprintf(name, sizeof name, "h_dynprobe_%s", LIBC);
    snprintf(suid, sizeof suid, "h_dynprobe_%s_suid", LIBC);
    snprintf(libpath, sizeof libpath, "LD_LIBRARY_PATH=%s/lib/path_%s", dir, LIBC);
    char *env[] = {libpath, NULL};
    struct probe p;
    char path[PATH_MAX + 64];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s", dir, suid);
    CHECKF(geteuid() == 0 && stat(path, &sb) == 0 && sb.st_uid == 1000 && (sb.st_mode & S_ISUID),
           "run as root, with %s owned by 1000 and set-user-ID (stage.sh as root makes it)", path);

    REQUIRE(probe(name, env, 0, &p) == 0);
    CHECKF(p.secure == 0 && p.found == 1 && p.euid == 0, "plain: secure %lu found %d euid %d", p.secure, p.found, p.euid);
    REQUIRE(probe(suid, env, 0, &p) == 0);
    CHECKF(p.secure == 1 && p.found == 0 && p.euid == 1000, "set-uid: secure %lu found %d euid %d", p.secure, p.found, p.euid);
    /* A set-id exec drops ADDR_NO_RANDOMIZE (PER_CLEAR_ON_SETID). */
    REQUIRE(probe(suid, env, 1, &p) == 0);
    CHECKF(p.pers == 0, "persona after a set-uid exec: %#x", p.pers);
}

int main(int argc, char **argv)
{
    (void)argc;
    vktest_reset_signals();
    ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
    REQUIRE(n > 0);
    if (n <= 0)
        vktest_done();
    dir[n] = 0;
    char self[PATH_MAX];
    memcpy(self, dir, (size_t)n + 1);
    *strrchr(dir, '/') = 0;
    test_auxv(argv[0]);
    test_threads_tls_dlopen();
    test_cpu();
    test_interp_direct(self);
    test_aslr();
#ifdef __GLIBC__
    test_static_pie();
#endif
    test_secure();
    vktest_done();
}
