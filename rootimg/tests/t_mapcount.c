/*
 * t_mapcount — vm.max_map_count: /proc/sys/vm/max_map_count is 65530, and a process with
 * that many mappings gets ENOMEM from mmap(2) until it unmaps some.
 *
 * The mappings are single pages mapped with MAP_FIXED every other page of a reserved
 * PROT_NONE region, so that neither Linux nor vk can merge them.
 */
#define _GNU_SOURCE
#include "vktest.h"

#include <fcntl.h>
#include <sys/mman.h>

#define PAGE 4096UL

static long read_long(const char *path)
{
    char b[32] = {0};
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, b, sizeof b - 1);
    close(fd);
    return n > 0 ? atol(b) : -1;
}

int main(void)
{
    vktest_reset_signals();
    long max = read_long("/proc/sys/vm/max_map_count");
    CHECK(max == 65530);

    size_t slots = 40000;
    char *r = mmap(NULL, 2 * slots * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    REQUIRE(r != MAP_FAILED);
    size_t i, done = 0;
    int err = 0;
    for (i = 0; i < slots; i++) {
        void *p = mmap(r + 2 * i * PAGE, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        if (p == MAP_FAILED) {
            err = errno;
            break;
        }
        done++;
    }
    /* Each one adds two mappings (itself and the split reservation): about 32765 fit. */
    CHECKF(err == ENOMEM && done > 30000 && done < 33000, "%zu mappings made, then errno %d", done, err);
    /* Unmapping some makes room. */
    for (size_t k = 0; k < 16; k++)
        CHECK(munmap(r + 2 * k * PAGE, PAGE) == 0);
    void *p = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK(munmap(p, PAGE) == 0);
    CHECK(munmap(r, 2 * slots * PAGE) == 0);
    p = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    vktest_done();
}
