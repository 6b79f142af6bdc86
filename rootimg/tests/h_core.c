/*
 * h_core — a program that dies of SIGSEGV in a known place, for the core-file test: run with
 * `ulimit -c unlimited` it leaves a core, and `gdb -batch -ex bt h_core core` shows
 * crash_here() called from descend() called from main(). With an argument, a second thread
 * sleeps meanwhile (the core then has two threads).
 */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static volatile int sleeper_started;

static void *sleeper(void *arg)
{
    (void)arg;
    sleeper_started = 1;
    for (;;)
        pause();
    return NULL;
}

__attribute__((noinline)) static void crash_here(volatile int *p)
{
    *p = 42;
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) static void descend(int depth)
{
    if (depth > 0)
        descend(depth - 1);
    else
        crash_here((volatile int *)0);
    __asm__ volatile("" ::: "memory");
}

int main(int argc, char **argv)
{
    (void)argv;
    if (argc > 1) {
        pthread_t t;
        pthread_create(&t, NULL, sleeper, NULL);
        while (!sleeper_started)
            usleep(1000);
    }
    printf("h_core: about to crash\n");
    fflush(stdout);
    descend(2);
    return 0;
}
