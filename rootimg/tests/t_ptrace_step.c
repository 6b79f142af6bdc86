/* t_ptrace_step: what a debugger needs — int3 (SIGTRAP, rip after it, SI_KERNEL), a breakpoint
 * written into the text with POKETEXT and taken out again, PTRACE_SINGLESTEP over ordinary
 * instructions and over a system call, GETFPREGS/SETFPREGS, GETREGSET, SETREGSET of the xsave
 * image, and a tracer's /proc/PID/mem (read, write — the text too). */
#include "vktest.h"

#include <elf.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>

extern char after_int3[], step_one[], step_two[], before_syscall[], after_syscall[];

static int wait_for(pid_t pid)
{
    int st = 0;
    pid_t r;
    do
        r = waitpid(pid, &st, __WALL);
    while (r < 0 && errno == EINTR);
    return r == pid ? st : -1;
}

__attribute__((noinline)) static int target_fn(int x)
{
    __asm__ volatile("" ::: "memory");
    return x * 3 + 1;
}

static int (*volatile target_ptr)(int) = target_fn;

/* The child: stopped at an int3, then two nops to step over, then getpid by `syscall`,
 * then a call to target_fn (where the tracer put a breakpoint). */
static void child(void)
{
    if (ptrace(PTRACE_TRACEME, 0, 0, 0) != 0)
        _exit(100);
    long pid;
    __asm__ volatile("int3\n"
                     ".globl after_int3\nafter_int3:\n"
                     "nop\n"
                     ".globl step_one\nstep_one:\n"
                     "nop\n"
                     ".globl step_two\nstep_two:\n"
                     "mov $39, %%eax\n"
                     ".globl before_syscall\nbefore_syscall:\n"
                     "syscall\n"
                     ".globl after_syscall\nafter_syscall:\n"
                     : "=a"(pid)
                     :
                     : "rcx", "r11", "memory");
    int r = target_ptr(4);
    _exit((pid == getpid() ? 1 : 0) | (r == 13 ? 2 : 0));
}

static void test_int3_step_breakpoint(void)
{
    pid_t pid = fork();
    if (pid == 0)
        child();
    int st = wait_for(pid);
    CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == SIGTRAP);
    struct user_regs_struct regs;
    CHECK(ptrace(PTRACE_GETREGS, pid, 0, &regs) == 0);
    CHECK(regs.rip == (unsigned long)after_int3);
    siginfo_t si;
    CHECK(ptrace(PTRACE_GETSIGINFO, pid, 0, &si) == 0);
    CHECK(si.si_signo == SIGTRAP && si.si_code == SI_KERNEL);

    /* Single steps: one instruction each, SIGTRAP with TRAP_TRACE, no trap flag shown. */
    CHECK(ptrace(PTRACE_SINGLESTEP, pid, 0, 0) == 0);
    st = wait_for(pid);
    CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == SIGTRAP);
    CHECK(ptrace(PTRACE_GETREGS, pid, 0, &regs) == 0);
    CHECK(regs.rip == (unsigned long)step_one);
    CHECK((regs.eflags & 0x100) == 0);
    CHECK(ptrace(PTRACE_GETSIGINFO, pid, 0, &si) == 0);
    CHECK(si.si_signo == SIGTRAP && si.si_code == TRAP_TRACE);
    CHECK(ptrace(PTRACE_SINGLESTEP, pid, 0, 0) == 0);
    st = wait_for(pid);
    CHECK(ptrace(PTRACE_GETREGS, pid, 0, &regs) == 0);
    CHECK(WIFSTOPPED(st) && regs.rip == (unsigned long)step_two);
    CHECK(ptrace(PTRACE_SINGLESTEP, pid, 0, 0) == 0);
    st = wait_for(pid);
    CHECK(ptrace(PTRACE_GETREGS, pid, 0, &regs) == 0);
    CHECK(WIFSTOPPED(st) && regs.rip == (unsigned long)before_syscall && regs.rax == 39);
    /* A step over `syscall`: the call runs, the stop is right after it. */
    CHECK(ptrace(PTRACE_SINGLESTEP, pid, 0, 0) == 0);
    st = wait_for(pid);
    CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == SIGTRAP);
    CHECK(ptrace(PTRACE_GETREGS, pid, 0, &regs) == 0);
    CHECK(regs.rip == (unsigned long)after_syscall && regs.rax == (unsigned long)pid);

    /* A breakpoint at target_fn, written into the (read-only) text. */
    errno = 0;
    long orig = ptrace(PTRACE_PEEKTEXT, pid, (void *)target_fn, 0);
    CHECK(errno == 0);
    long patched = (orig & ~0xffL) | 0xcc;
    CHECK(ptrace(PTRACE_POKETEXT, pid, (void *)target_fn, (void *)patched) == 0);
    errno = 0;
    CHECK(ptrace(PTRACE_PEEKTEXT, pid, (void *)target_fn, 0) == patched && errno == 0);
    /* Our own copy of the text is untouched. */
    CHECK(*(volatile unsigned char *)target_fn != 0xcc);
    CHECK(ptrace(PTRACE_CONT, pid, 0, 0) == 0);
    st = wait_for(pid);
    CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == SIGTRAP);
    CHECK(ptrace(PTRACE_GETREGS, pid, 0, &regs) == 0);
    CHECK(regs.rip == (unsigned long)target_fn + 1);
    /* Take it out, back up one byte, go on. */
    CHECK(ptrace(PTRACE_POKETEXT, pid, (void *)target_fn, (void *)orig) == 0);
    regs.rip = (unsigned long)target_fn;
    CHECK(ptrace(PTRACE_SETREGS, pid, 0, &regs) == 0);
    CHECK(ptrace(PTRACE_CONT, pid, 0, 0) == 0);
    st = wait_for(pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 3);
}

/* The FPU registers: read, change an XMM register (SETFPREGS, then SETREGSET of the xsave
 * image), and see the child compute with it. */
static void test_fpregs(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (ptrace(PTRACE_TRACEME, 0, 0, 0) != 0)
            _exit(100);
        double v;
        __asm__ volatile("movsd %1, %%xmm7\n"
                         "int3\n"
                         "movsd %%xmm7, %0\n"
                         : "=m"(v)
                         : "m"((double){1.5})
                         : "xmm7");
        _exit(v == 3.0 ? 0 : 1);
    }
    int st = wait_for(pid);
    CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == SIGTRAP);
    struct user_fpregs_struct fp;
    memset(&fp, 0, sizeof fp);
    CHECK(ptrace(PTRACE_GETFPREGS, pid, 0, &fp) == 0);
    double x;
    memcpy(&x, &fp.xmm_space[7 * 4], sizeof x);
    CHECK(x == 1.5);
    CHECK(fp.cwd == 0x37f);
    x = 2.25;
    memcpy(&fp.xmm_space[7 * 4], &x, sizeof x);
    CHECK(ptrace(PTRACE_SETFPREGS, pid, 0, &fp) == 0);
    /* GETREGSET: NT_PRSTATUS is user_regs_struct, NT_PRFPREG the fxsave image. */
    struct user_regs_struct regs;
    struct iovec iov = {&regs, sizeof regs};
    CHECK(ptrace(PTRACE_GETREGSET, pid, (void *)NT_PRSTATUS, &iov) == 0);
    CHECK(iov.iov_len == sizeof regs && regs.cs == 0x33);
    struct user_fpregs_struct fp2;
    struct iovec iov2 = {&fp2, sizeof fp2};
    CHECK(ptrace(PTRACE_GETREGSET, pid, (void *)NT_PRFPREG, &iov2) == 0);
    memcpy(&x, &fp2.xmm_space[7 * 4], sizeof x);
    CHECK(iov2.iov_len == sizeof fp2 && x == 2.25);
    errno = 0;
    CHECK(ptrace(PTRACE_GETREGSET, pid, (void *)0x7777, &iov) == -1 && errno == EINVAL);
    /* NT_X86_XSTATE: its legacy area is the fxsave image (xmm7 at 160 + 7 * 16); a
     * SETREGSET of what GETREGSET gave, xmm7 changed, is what the child computes with. */
    static unsigned char xs[16384];
    struct iovec iov3 = {xs, sizeof xs};
    CHECK(ptrace(PTRACE_GETREGSET, pid, (void *)NT_X86_XSTATE, &iov3) == 0);
    memcpy(&x, xs + 160 + 7 * 16, sizeof x);
    CHECK(iov3.iov_len > 576 && x == 2.25);
    x = 3.0;
    memcpy(xs + 160 + 7 * 16, &x, sizeof x);
    CHECK(ptrace(PTRACE_SETREGSET, pid, (void *)NT_X86_XSTATE, &iov3) == 0);
    CHECK(ptrace(PTRACE_CONT, pid, 0, 0) == 0);
    st = wait_for(pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static volatile long mem_word = 17;

/* /proc/PID/mem of a stopped tracee: pread and pwrite at its addresses, text included; an
 * unmapped address is EIO; another user may not open it. */
static void test_proc_mem(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (ptrace(PTRACE_TRACEME, 0, 0, 0) != 0)
            _exit(100);
        __asm__ volatile("int3" ::: "memory");
        _exit(mem_word == 99 && target_ptr(4) == 13 ? 0 : 1);
    }
    int st = wait_for(pid);
    CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == SIGTRAP);
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/mem", pid);
    int fd = open(path, O_RDWR);
    CHECK(fd >= 0);
    long w = 0;
    CHECK(pread(fd, &w, sizeof w, (off_t)(uintptr_t)&mem_word) == sizeof w && w == 17);
    w = 99;
    CHECK(pwrite(fd, &w, sizeof w, (off_t)(uintptr_t)&mem_word) == sizeof w);
    unsigned char text[4], cc = 0xcc, back = 0;
    CHECK(pread(fd, text, sizeof text, (off_t)(uintptr_t)target_fn) == sizeof text);
    CHECK(memcmp(text, (void *)target_fn, sizeof text) == 0);
    CHECK(pwrite(fd, &cc, 1, (off_t)(uintptr_t)target_fn) == 1);
    CHECK(pread(fd, &back, 1, (off_t)(uintptr_t)target_fn) == 1 && back == 0xcc);
    CHECK(pwrite(fd, text, 1, (off_t)(uintptr_t)target_fn) == 1);
    errno = 0;
    CHECK(pread(fd, &w, sizeof w, 8) == -1 && errno == EIO);
    close(fd);
    /* Another user: no. */
    pid_t other = fork();
    if (other == 0) {
        if (setgid(1001) != 0 || setuid(1001) != 0)
            _exit(100);
        _exit(open(path, O_RDONLY) == -1 && errno == EACCES ? 0 : 1);
    }
    st = wait_for(other);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(ptrace(PTRACE_CONT, pid, 0, 0) == 0);
    st = wait_for(pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

int main(void)
{
    vktest_reset_signals();
    test_proc_mem();
    test_int3_step_breakpoint();
    test_fpregs();
    return vktest_done();
}
