/*
 * t_vdso — the vDSO (vdso(7)): AT_SYSINFO_EHDR names an ELF image in /proc/self/maps' [vdso]
 * that exports LINUX_2.6's __vdso_clock_gettime, __vdso_gettimeofday, __vdso_time and
 * __vdso_getcpu (and their unprefixed aliases); called through its dynamic symbols they give
 * what the system calls give, clock by clock; clocks it does not serve still work (the
 * system call behind it), an invalid clock is -EINVAL (a vDSO function returns -errno), and a
 * bad result pointer kills with SIGSEGV as the vDSO's store faults.
 *
 * `t_vdso loop N` instead reads the clocks N times each through the C library
 * (clock_gettime, gettimeofday, time) and prints `looped N`: the integration test counts the
 * system calls that makes (none with a vDSO).
 *
 * Built twice: static with musl (t_vdso) and dynamically linked with glibc (t_vdso_glibc).
 */
#include "vktest.h"

#include <elf.h>
#include <stdint.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>

#define NS 1000000000LL

typedef long (*cgt_fn)(long, struct timespec *);
typedef long (*gtod_fn)(struct timeval *, struct timezone *);
typedef long (*time_fn)(long *);
typedef long (*getcpu_fn)(unsigned *, unsigned *, void *);

static const Elf64_Ehdr *ehdr;

/* A dynamic symbol of the vDSO (through its section headers, which Linux's image carries). */
static void *vdso_sym(const char *name)
{
    const char *base = (const char *)ehdr;
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(base + ehdr->e_shoff);
    const Elf64_Phdr *ph = (const Elf64_Phdr *)(base + ehdr->e_phoff);
    uint64_t load = 0;
    for (int i = 0; i < ehdr->e_phnum; i++)
        if (ph[i].p_type == PT_LOAD) {
            load = ph[i].p_vaddr;
            break;
        }
    for (int i = 0; i < ehdr->e_shnum; i++) {
        if (sh[i].sh_type != SHT_DYNSYM)
            continue;
        const Elf64_Sym *syms = (const Elf64_Sym *)(base + sh[i].sh_offset);
        const char *strs = base + sh[sh[i].sh_link].sh_offset;
        for (uint64_t j = 0; j < sh[i].sh_size / sizeof *syms; j++)
            if (syms[j].st_value && strcmp(strs + syms[j].st_name, name) == 0)
                return (void *)(base + syms[j].st_value - load);
    }
    return NULL;
}

static long long ts_ns(struct timespec t)
{
    return t.tv_sec * NS + t.tv_nsec;
}

static long long sys_clock(clockid_t c)
{
    struct timespec t;
    if (syscall(SYS_clock_gettime, c, &t) != 0)
        return -1;
    return ts_ns(t);
}

/* Whether the maps line for `addr` exists and is named `name`. */
static int maps_names(uintptr_t addr, const char *name)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    int found = 0;
    while (f && fgets(line, sizeof line, f)) {
        unsigned long s, e;
        char n[64] = "";
        if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %63s", &s, &e, n) >= 2 && s <= addr && addr < e)
            found = strcmp(n, name) == 0;
    }
    if (f)
        fclose(f);
    return found;
}

/* A child calls the vDSO's clock_gettime with `p` as the result: how it ended. */
static int child_status(cgt_fn cgt, long clk, void *p)
{
    pid_t pid = fork();
    if (pid == 0) {
        long r = cgt(clk, p);
        _exit(r == 0 ? 0 : r < 0 && r > -4096 ? (int)-r : 100);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return st;
}

static int loop(long n)
{
    struct timespec t;
    struct timeval tv;
    long failed = 0;
    for (long i = 0; i < n; i++) {
        failed += clock_gettime(CLOCK_MONOTONIC, &t) != 0;
        failed += clock_gettime(CLOCK_REALTIME, &t) != 0;
        failed += gettimeofday(&tv, NULL) != 0;
        failed += time(NULL) == (time_t)-1;
    }
    printf("looped %ld, %ld failed\n", n, failed);
    return failed != 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "loop") == 0)
        return loop(atol(argv[2]));
    vktest_reset_signals();

    ehdr = (const Elf64_Ehdr *)getauxval(AT_SYSINFO_EHDR);
    REQUIRE(ehdr != NULL);
    if (!ehdr)
        vktest_done();
    CHECK(memcmp(ehdr->e_ident, ELFMAG, SELFMAG) == 0);
    CHECK(ehdr->e_ident[EI_CLASS] == ELFCLASS64 && ehdr->e_type == ET_DYN && ehdr->e_machine == EM_X86_64);
    CHECK(maps_names((uintptr_t)ehdr, "[vdso]"));

    cgt_fn cgt = (cgt_fn)vdso_sym("__vdso_clock_gettime");
    gtod_fn gtod = (gtod_fn)vdso_sym("__vdso_gettimeofday");
    time_fn tim = (time_fn)vdso_sym("__vdso_time");
    getcpu_fn gcpu = (getcpu_fn)vdso_sym("__vdso_getcpu");
    REQUIRE(cgt && gtod && tim && gcpu);
    if (!(cgt && gtod && tim && gcpu))
        vktest_done();
    CHECK(vdso_sym("clock_gettime") == (void *)cgt);
    CHECK(vdso_sym("gettimeofday") == (void *)gtod);
    CHECK(vdso_sym("time") == (void *)tim);
    CHECK(vdso_sym("getcpu") == (void *)gcpu);
    CHECK(maps_names((uintptr_t)cgt, "[vdso]"));

    /* Each clock between two system calls reading it (coarse ones may lag a tick). */
    static const clockid_t precise[] = { CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_MONOTONIC_RAW, CLOCK_BOOTTIME };
    for (unsigned i = 0; i < sizeof precise / sizeof *precise; i++) {
        struct timespec t = { -1, -1 };
        long long before = sys_clock(precise[i]);
        long r = cgt(precise[i], &t);
        long long after = sys_clock(precise[i]);
        CHECKF(r == 0 && t.tv_nsec >= 0 && t.tv_nsec < NS, "clock %d: %ld", precise[i], r);
        if (precise[i] == CLOCK_REALTIME)
            CHECKF(ts_ns(t) >= before - NS && ts_ns(t) <= after + NS, "clock %d", precise[i]);
        else
            CHECKF(before <= ts_ns(t) && ts_ns(t) <= after, "clock %d: %lld <= %lld <= %lld", precise[i], before,
                   ts_ns(t), after);
    }
    static const clockid_t coarse[] = { CLOCK_REALTIME_COARSE, CLOCK_MONOTONIC_COARSE };
    for (unsigned i = 0; i < 2; i++) {
        struct timespec t = { -1, -1 };
        long long before = sys_clock(coarse[i]);
        long r = cgt(coarse[i], &t);
        long long after = sys_clock(coarse[i]);
        CHECKF(r == 0 && ts_ns(t) >= before - NS / 10 && ts_ns(t) <= after + NS / 10, "clock %d", coarse[i]);
    }

    /* Monotonic through the vDSO, and never behind the system call read before it. */
    long long last = 0, back = 0;
    for (int i = 0; i < 20000; i++) {
        struct timespec t;
        cgt(CLOCK_MONOTONIC, &t);
        if (ts_ns(t) < last)
            back++;
        last = ts_ns(t);
        if (i % 1000 == 0) {
            long long s = sys_clock(CLOCK_MONOTONIC);
            cgt(CLOCK_MONOTONIC, &t);
            if (ts_ns(t) < s)
                back++;
            last = ts_ns(t);
        }
    }
    CHECKF(back == 0, "%lld steps back", back);

    /* gettimeofday and time agree with the realtime clock. */
    struct timeval tv = { -1, -1 };
    struct timezone tz = { 1234, 5678 };
    long long before = sys_clock(CLOCK_REALTIME);
    CHECK(gtod(&tv, &tz) == 0);
    long long after = sys_clock(CLOCK_REALTIME);
    long long tv_ns = tv.tv_sec * NS + tv.tv_usec * 1000LL;
    CHECK(tv.tv_usec >= 0 && tv.tv_usec < 1000000);
    CHECKF(tv_ns >= before - 1000 - NS / 100 && tv_ns <= after + NS / 100, "%lld %lld %lld", before, tv_ns, after);
    CHECK(tz.tz_minuteswest != 1234 && tz.tz_dsttime != 5678);
    CHECK(gtod(&tv, NULL) == 0 && gtod(NULL, NULL) == 0);
    long t1 = 0;
    long s0 = (long)(sys_clock(CLOCK_REALTIME) / NS);
    long t0 = tim(&t1);
    long s1 = (long)(sys_clock(CLOCK_REALTIME) / NS);
    CHECKF(t0 == t1 && t0 >= s0 - 1 && t0 <= s1, "%ld %ld %ld", s0, t0, s1);
    CHECK(tim(NULL) >= t0);

    /* getcpu: a CPU of this machine. */
    unsigned cpu = ~0u, node = ~0u;
    CHECK(gcpu(&cpu, &node, NULL) == 0);
    long ncpu = sysconf(_SC_NPROCESSORS_CONF);
    CHECKF(cpu < (unsigned long)ncpu, "cpu %u of %ld", cpu, ncpu);
    CHECK(node != ~0u);
    CHECK(gcpu(NULL, NULL, NULL) == 0);

    /* Clocks the vDSO leaves to the system call. */
    struct timespec c = { -1, -1 };
    CHECK(cgt(CLOCK_PROCESS_CPUTIME_ID, &c) == 0 && c.tv_nsec >= 0 && c.tv_nsec < NS && ts_ns(c) > 0);
    c.tv_nsec = -1;
    CHECK(cgt(CLOCK_THREAD_CPUTIME_ID, &c) == 0 && c.tv_nsec >= 0 && c.tv_nsec < NS);
    clockid_t pclk;
    CHECK(clock_getcpuclockid(getpid(), &pclk) == 0 && cgt(pclk, &c) == 0);
    CHECK(cgt(100, &c) == -EINVAL);
    CHECK(cgt(-1, &c) == -EINVAL); /* a CPU clock of a kind that does not exist */
    CHECK(cgt(100, BAD_PTR(1)) == -EINVAL);
    CHECK(cgt(CLOCK_PROCESS_CPUTIME_ID, BAD_PTR(8)) == -EFAULT);

    /* A bad result pointer: the vDSO's store faults. */
    int st = child_status(cgt, CLOCK_MONOTONIC, BAD_PTR(8));
    CHECKF(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV, "status %#x", st);
    st = child_status(cgt, CLOCK_REALTIME, (void *)cgt);
    CHECKF(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV, "status %#x", st);
    st = child_status(cgt, CLOCK_MONOTONIC, &c);
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x", st);

    /* A forked child finds the vDSO where its parent had it. */
    pid_t pid = fork();
    if (pid == 0) {
        struct timespec t;
        _exit(getauxval(AT_SYSINFO_EHDR) == (unsigned long)ehdr && cgt(CLOCK_MONOTONIC, &t) == 0 &&
                      maps_names((uintptr_t)ehdr, "[vdso]")
                  ? 0
                  : 1);
    }
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);

    /* The C library's own calls agree too (they go through the vDSO). */
    struct timespec lt;
    before = sys_clock(CLOCK_MONOTONIC);
    CHECK(clock_gettime(CLOCK_MONOTONIC, &lt) == 0);
    after = sys_clock(CLOCK_MONOTONIC);
    CHECK(before <= ts_ns(lt) && ts_ns(lt) <= after);
    errno = 0;
    CHECK(clock_gettime((clockid_t)100, &lt) == -1 && errno == EINVAL);
    return vktest_done();
}
