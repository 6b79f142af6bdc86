/*
 * t_callsite — system calls made from `mov $nr, %eax; syscall`, the sequence glibc's wrappers
 * use: vk rewrites such a site into a jump to its fast path once a thread has made a few calls
 * (kernel/src/kern/callsite.rs, platform/src/stub/fast.rs); and from a `syscall` whose number
 * a register holds (musl's wrappers, glibc's `xor %eax, %eax` read), which vk makes hop to
 * the alignment padding after the next `ret` or `jmp` (kernel/src/kern/hop.rs). Each case
 * below runs through both kinds. Everything here holds natively.
 *
 *   results      a site's calls return what the call returns, thousands of times; a jump of
 *                the program's own to a site's `syscall` makes the call its path set up
 *   registers    all but rax, rcx and r11 come back as they were (general, xmm, the flags,
 *                the direction flag); rcx is the return address, r11 holds the flags
 *   ymm          the upper halves of the AVX registers survive (when the CPU has AVX)
 *   signals      a timer's signals land while a thread loops on a site, their handler makes
 *                calls through sites of its own; every result stays right
 *   fpu          signals land while a thread loops on a hop with every xmm register set: the
 *                handler starts with a fresh FPU state (xmm7 zero, as Linux gives it), and
 *                the loop's registers are its own again after it
 *   restart      a blocking read at a site, interrupted again and again by a handler with
 *                SA_RESTART, completes; without SA_RESTART it fails with EINTR
 *   threads      four threads run fresh sites at once (rewritten under them), one of them a
 *                hop from the end of a page to padding on the next
 *   fork         a child calls through its parent's sites
 *   table        the program maps, then unmaps, the range vk's table of sites lives in
 *                (0x60000): its sites keep working
 *   traced       a reader of a process that called through a site (process_vm_readv), and a
 *                debugger attached to it, see the program's own instructions there
 *   textwrite    a program that makes its text writable reads its own bytes there (vk puts
 *                the sites back); one that drops its text pages (MADV_DONTNEED) goes on
 *                calling through them
 *   gs           a program that moved its gs base (wrgsbase, where the CPU lets programs)
 *                and execs: the new program's sites work (exec gives it a gs base of its own)
 */
#include "vktest.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>

__attribute__((noinline)) static long site_getppid(void)
{
    long r;
    asm volatile("mov $110, %%eax\n\tsyscall" : "=a"(r) : : "rcx", "r11", "memory");
    return r;
}

__attribute__((noinline)) static long site_getpid(void)
{
    long r;
    asm volatile("mov $39, %%eax\n\tsyscall" : "=a"(r) : : "rcx", "r11", "memory");
    return r;
}

__attribute__((noinline)) static long site_gettid(void)
{
    long r;
    asm volatile("mov $186, %%eax\n\tsyscall" : "=a"(r) : : "rcx", "r11", "memory");
    return r;
}

__attribute__((noinline)) static long site_read(int fd, void *buf, size_t n)
{
    long r;
    asm volatile("mov $0, %%eax\n\tsyscall" : "=a"(r) : "D"((long)fd), "S"(buf), "d"(n) : "rcx", "r11", "memory");
    return r;
}

__attribute__((noinline)) static long site_write(int fd, const void *buf, size_t n)
{
    long r;
    asm volatile("mov $1, %%eax\n\tsyscall" : "=a"(r) : "D"((long)fd), "S"(buf), "d"(n) : "rcx", "r11", "memory");
    return r;
}

/* Hop sites: the number from a register, padding after the ret (each function aligned, so
 * that the padding is there: 10, 11 and 6 bytes). hop_call is musl's __syscall_cp_c's kind. */
long hop_call(long a, long b, long c, long nr);
long xor_read(long fd, void *buf, size_t n);
long hop_gettid(void);
asm(".text\n"
    ".p2align 4\n"
    ".globl hop_call\n"
    "hop_call:\n"
    "  mov %rcx, %rax\n"
    "  syscall\n"
    "  ret\n"
    ".p2align 4\n"
    ".globl xor_read\n"
    "xor_read:\n"
    "  xor %eax, %eax\n"
    "  syscall\n"
    "  ret\n"
    ".p2align 4\n"
    ".globl hop_gettid\n"
    "hop_gettid:\n"
    "  mov $186, %ecx\n"
    "  mov %ecx, %eax\n"
    "  syscall\n"
    "  ret\n"
    ".p2align 4\n");

/* A hop whose `syscall` ends a page and whose padding (after the `ret` that starts the next
 * page) lies on the next: vk must map the padding's new bytes before the hop shows. */
long apart_call(long a, long b, long c, long nr);
asm(".text\n"
    ".p2align 12\n"
    ".skip 4096 - 5, 0xcc\n"
    ".globl apart_call\n"
    "apart_call:\n"
    "  mov %rcx, %rax\n"
    "  syscall\n"
    "  ret\n"
    ".p2align 4\n");

/* hop_call's bytes as the program has them, read at start (before any call could patch it). */
static unsigned char hop_text[16];

/*
 * long regs_probe(long n) (and regs_probe_hop): n times, load a pattern into every general
 * register but rax, rcx, r11 and rsp, and into xmm0–xmm15, set CF and DF, call getpid through
 * a site (a hop), and check them all. Returns 0, or which check failed (1–40).
 */
#define REGS_PROBE(NAME, CALL)                                                              \
asm(".text\n" \
    ".globl " NAME "\n" \
    NAME ":\n" \
    "  push %rbx\n  push %rbp\n  push %r12\n  push %r13\n  push %r14\n  push %r15\n" \
    "  push %rdi\n" \
    "1:\n" \
    "  mov $0x1111111111111111, %rbx\n" \
    "  mov $0x2222222222222222, %rbp\n" \
    "  mov $0x3333333333333333, %rdx\n" \
    "  mov $0x4444444444444444, %rsi\n" \
    "  mov $0x5555555555555555, %rdi\n" \
    "  mov $0x6666666666666666, %r8\n" \
    "  mov $0x7777777777777777, %r9\n" \
    "  mov $0x8888888888888888, %r10\n" \
    "  mov $0x9999999999999999, %r12\n" \
    "  mov $0xaaaaaaaaaaaaaaaa, %r13\n" \
    "  mov $0xbbbbbbbbbbbbbbbb, %r14\n" \
    "  mov $0xcccccccccccccccc, %r15\n" \
    ".irp x,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n" \
    "  mov $(0x0101010101010101 * (\\x + 1)), %rax\n" \
    "  movq %rax, %xmm\\x\n" \
    "  punpcklqdq %xmm\\x, %xmm\\x\n" \
    ".endr\n" \
    "  std\n" \
    "  stc\n" \
    CALL \
    "  pushf\n" \
    "  pop %rax\n" \
    "  cld\n" \
    "  test $1, %rax\n  jz .L" NAME "bad1\n" \
    "  test $0x400, %rax\n  jz .L" NAME "bad2\n" \
    "  test $1, %r11\n  jz .L" NAME "bad3\n" \
    "  test $0x400, %r11\n  jz .L" NAME "bad4\n" \
    "  lea 2b(%rip), %rax\n  cmp %rax, %rcx\n  jne .L" NAME "bad5\n" \
    "  mov $0x1111111111111111, %rax\n  cmp %rax, %rbx\n  jne .L" NAME "bad6\n" \
    "  mov $0x2222222222222222, %rax\n  cmp %rax, %rbp\n  jne .L" NAME "bad7\n" \
    "  mov $0x3333333333333333, %rax\n  cmp %rax, %rdx\n  jne .L" NAME "bad8\n" \
    "  mov $0x4444444444444444, %rax\n  cmp %rax, %rsi\n  jne .L" NAME "bad9\n" \
    "  mov $0x5555555555555555, %rax\n  cmp %rax, %rdi\n  jne .L" NAME "bad10\n" \
    "  mov $0x6666666666666666, %rax\n  cmp %rax, %r8\n  jne .L" NAME "bad11\n" \
    "  mov $0x7777777777777777, %rax\n  cmp %rax, %r9\n  jne .L" NAME "bad12\n" \
    "  mov $0x8888888888888888, %rax\n  cmp %rax, %r10\n  jne .L" NAME "bad13\n" \
    "  mov $0x9999999999999999, %rax\n  cmp %rax, %r12\n  jne .L" NAME "bad14\n" \
    "  mov $0xaaaaaaaaaaaaaaaa, %rax\n  cmp %rax, %r13\n  jne .L" NAME "bad15\n" \
    "  mov $0xbbbbbbbbbbbbbbbb, %rax\n  cmp %rax, %r14\n  jne .L" NAME "bad16\n" \
    "  mov $0xcccccccccccccccc, %rax\n  cmp %rax, %r15\n  jne .L" NAME "bad17\n" \
    ".irp x,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n" \
    "  movq %xmm\\x, %rax\n" \
    "  mov $(0x0101010101010101 * (\\x + 1)), %rcx\n" \
    "  cmp %rcx, %rax\n" \
    "  jne .L" NAME "badx\n" \
    "  pshufd $0x4e, %xmm\\x, %xmm\\x\n" \
    "  movq %xmm\\x, %rax\n" \
    "  cmp %rcx, %rax\n" \
    "  jne .L" NAME "badx\n" \
    ".endr\n" \
    "  decq (%rsp)\n" \
    "  jnz 1b\n" \
    "  xor %eax, %eax\n" \
    "  jmp .L" NAME "out\n" \
    ".irp n,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17\n" \
    ".L" NAME "bad\\n: mov $\\n, %eax\n  jmp .L" NAME "out\n" \
    ".endr\n" \
    ".L" NAME "badx: mov $40, %eax\n" \
    ".L" NAME "out:\n" \
    "  cld\n" \
    "  pop %rdi\n" \
    "  pop %r15\n  pop %r14\n  pop %r13\n  pop %r12\n  pop %rbp\n  pop %rbx\n" \
    "  ret\n");
long regs_probe(long n);
long regs_probe_hop(long n);
/* A `mov` site; a hop (the number through ecx, a short jmp and padding after). */
REGS_PROBE("regs_probe", "  mov $39, %eax\n  syscall\n2:\n");
REGS_PROBE("regs_probe_hop", "  mov $39, %ecx\n.p2align 4\n  mov %ecx, %eax\n  syscall\n2:\n  jmp 3f\n.p2align 4\n3:\n");

/*
 * long shared_syscall(long which): getppid through `mov $110, %eax; syscall` when which is 0;
 * else getpid, by a jump straight to that `syscall` with eax set on its own path.
 */
long shared_syscall(long which);
asm(".text\n"
    ".globl shared_syscall\n"
    "shared_syscall:\n"
    "  test %rdi, %rdi\n"
    "  jz 1f\n"
    "  mov $39, %eax\n"
    "  jmp 2f\n"
    "1:\n"
    "  mov $110, %eax\n"
    "2:\n"
    "  syscall\n"
    "  ret\n");

static int ymm_kept(void)
{
    if (!__builtin_cpu_supports("avx"))
        return 1;
    unsigned char in[32], out[32];
    for (int i = 0; i < 32; i++)
        in[i] = (unsigned char)(0xa5 ^ (i * 7));
    asm volatile("vmovdqu %1, %%ymm1\n\t"
                 "mov $300, %%r8d\n"
                 "1:\n\t"
                 "mov $39, %%eax\n\t"
                 "syscall\n\t"
                 "dec %%r8d\n\t"
                 "jnz 1b\n\t"
                 "vmovdqu %%ymm1, %0\n\t"
                 "vzeroupper"
                 : "=m"(out)
                 : "m"(in)
                 : "rax", "rcx", "r11", "r8", "xmm1", "memory");
    return memcmp(in, out, 32) == 0;
}

static void results(void)
{
    long pp = getppid(), p = getpid(), ok = 1;
    for (int i = 0; i < 5000; i++)
        ok &= site_getppid() == pp && site_getpid() == p;
    CHECK(ok);
    char c = 'q', d = 0;
    int fds[2];
    CHECK(pipe(fds) == 0);
    ok = 1;
    for (int i = 0; i < 500; i++)
        ok &= site_write(fds[1], &c, 1) == 1 && site_read(fds[0], &d, 1) == 1 && d == 'q';
    CHECK(ok);
    CHECK(site_read(-1, &d, 1) == -EBADF);
    /* Another path's jump to the `syscall` of a site, with its own number. */
    ok = 1;
    for (int i = 0; i < 300; i++)
        ok &= shared_syscall(0) == pp;
    for (int i = 0; i < 300; i++)
        ok &= shared_syscall(1) == p && shared_syscall(0) == pp;
    CHECK(ok);
    CHECK(site_write(fds[1], (void *)8, 1) == -EFAULT);
    /* Hops: one site, many calls (as musl's); glibc's read. */
    ok = 1;
    for (int i = 0; i < 3000; i++)
        ok &= hop_call(0, 0, 0, SYS_getppid) == pp && hop_call(0, 0, 0, SYS_getpid) == p;
    CHECK(ok);
    ok = 1;
    for (int i = 0; i < 500; i++)
        ok &= hop_call(fds[1], (long)&c, 1, SYS_write) == 1 && xor_read(fds[0], &d, 1) == 1 && d == 'q';
    CHECK(ok);
    CHECK(xor_read(-1, &d, 1) == -EBADF);
    CHECK(hop_call(fds[1], 8, 1, SYS_write) == -EFAULT);
    CHECK(hop_call(0, 0, 0, 100000) == -ENOSYS);
    close(fds[0]);
    close(fds[1]);
}

static atomic_int alarms;
static atomic_int handler_bad;

static void on_alarm(int sig)
{
    (void)sig;
    atomic_fetch_add(&alarms, 1);
    if (site_getpid() != getpid() || hop_call(0, 0, 0, SYS_getpid) != getpid())
        atomic_fetch_add(&handler_bad, 1);
}

static void set_alarm(int restart, long usec)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = restart ? SA_RESTART : 0;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, usec}, {0, usec}};
    setitimer(ITIMER_REAL, &it, NULL);
}

static void stop_alarm(void)
{
    struct itimerval it = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &it, NULL);
    signal(SIGALRM, SIG_DFL);
}

static void signals(void)
{
    atomic_store(&alarms, 0);
    set_alarm(1, 200);
    long pp = getppid(), ok = 1;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        for (int i = 0; i < 1000; i++)
            ok &= site_getppid() == pp && hop_call(0, 0, 0, SYS_getppid) == pp;
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while (atomic_load(&alarms) < 300 && t.tv_sec - t0.tv_sec < 20);
    stop_alarm();
    CHECK(ok);
    CHECK(atomic_load(&alarms) >= 300);
    CHECK(atomic_load(&handler_bad) == 0);
}

static atomic_int fpu_alarms;
static atomic_int fpu_dirty;

/* xmm7 as the handler starts (nothing before the asm uses it) must be zero; then clobber
 * every xmm register, which the interrupted loop must not see. */
static void on_alarm_fpu(int sig)
{
    (void)sig;
    unsigned long v;
    asm volatile("movq %%xmm7, %0" : "=r"(v));
    if (v)
        atomic_fetch_add(&fpu_dirty, 1);
    atomic_fetch_add(&fpu_alarms, 1);
    asm volatile("pcmpeqd %%xmm0, %%xmm0\n\t"
                 ".irp x,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n\t"
                 "movdqa %%xmm0, %%xmm\\x\n\t"
                 ".endr"
                 :
                 :
                 : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
                   "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
}

static void fpu(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm_fpu;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 200}, {0, 200}};
    setitimer(ITIMER_REAL, &it, NULL);
    long bad = 0;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        bad |= regs_probe_hop(2000);
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while (atomic_load(&fpu_alarms) < 300 && t.tv_sec - t0.tv_sec < 20);
    stop_alarm();
    CHECK(bad == 0);
    CHECK(atomic_load(&fpu_alarms) >= 300);
    CHECK(atomic_load(&fpu_dirty) == 0);
}

/* A child that writes one byte into fd after delay_ms. */
static pid_t writer(int fd, int delay_ms)
{
    pid_t pid = fork();
    if (pid == 0) {
        struct timespec ts = {delay_ms / 1000, (delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        _exit(write(fd, "x", 1) == 1 ? 0 : 1);
    }
    return pid;
}

static void restart_via(long (*rd)(int, void *, size_t))
{
    int fds[2];
    CHECK(pipe(fds) == 0);
    char c = 0;
    /* The read site's calls so far went through it already (results): a blocking one now. */
    atomic_store(&alarms, 0);
    set_alarm(1, 2000);
    pid_t w = writer(fds[1], 150);
    long r = rd(fds[0], &c, 1);
    stop_alarm();
    CHECK(r == 1 && c == 'x');
    CHECK(atomic_load(&alarms) >= 5);
    int st;
    CHECK(waitpid(w, &st, 0) == w && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* Without SA_RESTART the first signal ends it. */
    set_alarm(0, 20000);
    w = writer(fds[1], 300);
    r = rd(fds[0], &c, 1);
    stop_alarm();
    CHECK(r == -EINTR);
    CHECK(waitpid(w, &st, 0) == w && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(read(fds[0], &c, 1) == 1 && c == 'x');
    close(fds[0]);
    close(fds[1]);
}

static long xor_read_int(int fd, void *buf, size_t n)
{
    return xor_read(fd, buf, n);
}

static void restart(void)
{
    restart_via(site_read);
    restart_via(xor_read_int);
}

static atomic_int go;

static void *racer(void *arg)
{
    (void)arg;
    long tid = syscall(SYS_gettid), ok = 1;
    /* Calls of its own first, so that this thread's calls are the ones patched. */
    for (int i = 0; i < 100; i++)
        ok &= getpid() > 0;
    while (!atomic_load(&go))
        ;
    for (int i = 0; i < 20000; i++)
        ok &= site_gettid() == tid && hop_gettid() == tid && apart_call(0, 0, 0, SYS_gettid) == tid;
    return (void *)ok;
}

static void threads(void)
{
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        CHECK(pthread_create(&t[i], NULL, racer, NULL) == 0);
    atomic_store(&go, 1);
    long ok = 1;
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        ok &= (long)r;
    }
    CHECK(ok);
}

static void forked(void)
{
    long me = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        long ok = 1;
        for (int i = 0; i < 2000; i++)
            ok &= site_getppid() == me && site_getpid() == getpid() && hop_call(0, 0, 0, SYS_getppid) == me;
        _exit(ok ? 0 : 1);
    }
    int st;
    CHECK(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void table(void)
{
    long pp = getppid(), ok = 1;
    void *want = (void *)0x60000;
    void *m = mmap(want, 0x20000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    CHECK(m == want);
    if (m == want) {
        memset(m, 0x5a, 0x20000);
        CHECK(((unsigned char *)m)[0x1ffff] == 0x5a);
    }
    for (int i = 0; i < 2000; i++)
        ok &= site_getppid() == pp;
    CHECK(ok);
    CHECK(munmap(want, 0x20000) == 0);
    ok = 1;
    for (int i = 0; i < 2000; i++)
        ok &= site_getppid() == pp && site_getpid() == getpid() && hop_call(0, 0, 0, SYS_getppid) == pp;
    CHECK(ok);
}

static void traced(void)
{
    int ready[2];
    CHECK(pipe(ready) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        for (int i = 0; i < 2000; i++)
            (void)(site_getppid() + hop_call(0, 0, 0, SYS_getppid));
        if (write(ready[1], "r", 1) != 1)
            _exit(2);
        for (;;)
            pause();
    }
    char c;
    CHECK(read(ready[0], &c, 1) == 1);
    /* Read without attaching first (process_vm_readv): the program's own bytes too. */
    unsigned char text[7] = {0};
    struct iovec local = {text, sizeof text}, remote = {(void *)site_getppid, sizeof text};
    CHECK(process_vm_readv(pid, &local, 1, &remote, 1, 0) == (ssize_t)sizeof text);
    CHECK(memcmp(text, "\xb8\x6e\x00\x00\x00\x0f\x05", 7) == 0);
    /* A hop's syscall and the padding it jumps to, as the program had them. */
    unsigned char htext[16] = {0};
    struct iovec hl = {htext, sizeof htext}, hr = {(void *)hop_call, sizeof htext};
    CHECK(process_vm_readv(pid, &hl, 1, &hr, 1, 0) == (ssize_t)sizeof htext);
    CHECK(memcmp(htext, hop_text, sizeof htext) == 0);
    CHECK(hop_text[3] == 0x0f && hop_text[4] == 0x05);
    CHECK(ptrace(PTRACE_SEIZE, pid, 0, 0) == 0);
    CHECK(ptrace(PTRACE_INTERRUPT, pid, 0, 0) == 0);
    int st;
    CHECK(waitpid(pid, &st, 0) == pid && WIFSTOPPED(st));
    errno = 0;
    long word = ptrace(PTRACE_PEEKTEXT, pid, (void *)site_getppid, 0);
    /* mov $110, %eax; syscall */
    CHECK(errno == 0 && (word & 0xffffffffffffffL) == 0x050f0000006eb8L);
    long want[2];
    memcpy(want, hop_text, sizeof want);
    for (int i = 0; i < 2; i++) {
        errno = 0;
        word = ptrace(PTRACE_PEEKTEXT, pid, (char *)hop_call + 8 * i, 0);
        CHECK(errno == 0 && word == want[i]);
    }
    kill(pid, SIGKILL);
    CHECK(waitpid(pid, &st, 0) == pid && WIFSIGNALED(st));
    close(ready[0]);
    close(ready[1]);
}

static void textwrite(void)
{
    long pp = getppid(), ok = 1;
    for (int i = 0; i < 200; i++)
        ok &= hop_call(0, 0, 0, SYS_getppid) == pp && site_getppid() == pp;
    CHECK(ok);
    long pagesz = sysconf(_SC_PAGESIZE);
    char *page = (char *)((uintptr_t)hop_call & ~(uintptr_t)(pagesz - 1));
    /* Writable: the program's own bytes, and a byte it writes stays (padding after the ret). */
    CHECK(mprotect(page, pagesz, PROT_READ | PROT_WRITE | PROT_EXEC) == 0);
    CHECK(memcmp((void *)hop_call, hop_text, sizeof hop_text) == 0);
    volatile unsigned char *pad = (unsigned char *)hop_call + 15;
    unsigned char was = *pad;
    *pad = 0xcc;
    CHECK(*pad == 0xcc);
    *pad = was;
    CHECK(mprotect(page, pagesz, PROT_READ | PROT_EXEC) == 0);
    ok = 1;
    for (int i = 0; i < 200; i++)
        ok &= hop_call(0, 0, 0, SYS_getppid) == pp && site_getppid() == pp;
    CHECK(ok);
    /* A child (its calls patch afresh) drops the page: the file's bytes again, calls go on. */
    pid_t pid = fork();
    if (pid == 0) {
        long me = getpid(), good = 1;
        for (int i = 0; i < 300; i++)
            good &= hop_call(0, 0, 0, SYS_getpid) == me;
        good &= madvise(page, pagesz, MADV_DONTNEED) == 0;
        for (int i = 0; i < 300; i++)
            good &= hop_call(0, 0, 0, SYS_getpid) == me;
        _exit(good ? 0 : 1);
    }
    int st;
    CHECK(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* The exec'd half of `gs`: calls through sites, exits 0 when all were right. */
static int gs_child(void)
{
    long pp = getppid(), ok = 1;
    for (int i = 0; i < 3000; i++)
        ok &= site_getppid() == pp && site_getpid() == getpid() && hop_call(0, 0, 0, SYS_getppid) == pp;
    return ok ? 0 : 1;
}

static void no_fsgsbase(int sig)
{
    (void)sig;
    _exit(3);
}

/* Whether the CPU runs wrgsbase in user mode is asked of the CPU itself (a SIGILL if not),
 * not of AT_HWCAP2: vk does not offer it there, but a program may use it regardless. */
static void gs(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        char *argv[] = {"t_callsite", "gs-child", NULL};
        signal(SIGILL, no_fsgsbase);
        asm volatile("wrgsbase %0" : : "r"(0x1000UL));
        syscall(SYS_execve, "/proc/self/exe", argv, environ);
        _exit(127);
    }
    int st;
    CHECK(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && (WEXITSTATUS(st) == 0 || WEXITSTATUS(st) == 3));
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "gs-child") == 0)
        return gs_child();
    memcpy(hop_text, (void *)hop_call, sizeof hop_text);
    vktest_reset_signals();
    results();
    CHECK(regs_probe(3000) == 0);
    CHECK(regs_probe_hop(3000) == 0);
    CHECK(ymm_kept());
    signals();
    fpu();
    restart();
    threads();
    forked();
    traced();
    textwrite();
    gs();
    table();
    vktest_done();
}
