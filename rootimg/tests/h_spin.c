/*
 * h_spin — a helper for the integration tests, not a test of its own: argv[1] threads (default
 * 2, the main thread among them) spin in user mode without a system call. Once every thread has
 * spun, it prints "spinning N" and they go on for ever. A kernel that runs one process's
 * threads on different CPUs at once has each of its CPUs on one of them.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

static atomic_int started;

static void *spin(void *arg)
{
    (void)arg;
    atomic_fetch_add(&started, 1);
    for (volatile unsigned long i = 0;; i++)
        ;
    return NULL;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 2;
    if (n < 1 || n > 64) {
        fprintf(stderr, "usage: h_spin [threads 1..64]\n");
        return 2;
    }
    for (int i = 1; i < n; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, spin, NULL) != 0) {
            perror("pthread_create");
            return 1;
        }
    }
    atomic_fetch_add(&started, 1);
    while (atomic_load(&started) < n)
        ;
    printf("spinning %d\n", n);
    fflush(stdout);
    spin(NULL);
    return 0;
}
