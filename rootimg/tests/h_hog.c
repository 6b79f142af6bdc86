/*
 * h_hog — a helper for the integration tests, not a test of its own: touch MiB after MiB of
 * fresh anonymous memory, up to argv[1] MiB, then print "touched N MiB" and exit 0.
 * Under a kernel with less physical memory than that, the process is killed on the way.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    long want = argc > 1 ? atol(argv[1]) : 64;
    long mib;
    for (mib = 0; mib < want; mib++) {
        char *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            perror("mmap");
            return 2;
        }
        for (long off = 0; off < (1 << 20); off += 4096)
            p[off] = (char)off | 1;
    }
    printf("touched %ld MiB\n", mib);
    return 0;
}
