/*
 * h_dynprobe — a helper of t_dyn, not a test of its own: a dynamically linked PIE that prints
 * one line about how it was loaded, for t_dyn to compare between runs:
 *   stack=ADDR mmap=ADDR pie=ADDR base=ADDR brk=ADDR pers=HEX secure=N found=N euid=N
 * stack: a local variable; mmap: a fresh anonymous mapping; pie: main(); base: AT_BASE (the
 * interpreter); brk: sbrk(0); pers: personality(0xffffffff); secure: AT_SECURE; found: whether
 * dlopen("libvkpath.so") found the library (only LD_LIBRARY_PATH leads to it).
 * Built with -DVK_STATIC_PIE -static-pie it is h_dynprobe_spie, a static PIE (no interpreter).
 */
#include <dlfcn.h>
#include <stdio.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <unistd.h>

int main(void)
{
    volatile int local = 0;
    void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    void *brk = sbrk(0);
#ifdef VK_STATIC_PIE
    void *lib = NULL; /* built -static-pie (h_dynprobe_spie): no dynamic linker to ask */
#else
    void *lib = dlopen("libvkpath.so", RTLD_NOW);
#endif
    printf("stack=%lx mmap=%lx pie=%lx base=%lx brk=%lx pers=%x secure=%lu found=%d euid=%d\n",
           (unsigned long)&local, (unsigned long)m, (unsigned long)main, getauxval(AT_BASE),
           (unsigned long)brk, (unsigned)personality(0xffffffff), getauxval(AT_SECURE), lib != NULL,
           (int)geteuid());
    return 0;
}
