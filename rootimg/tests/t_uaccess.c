/*
 * t_uaccess — system calls on buffers that are only partly mapped.
 *
 * Linux copies to and from guest memory as it goes and stops at the first page it cannot
 * reach: read(2), pread(2), readv(2) and write(2), pwrite(2), writev(2) with a buffer whose
 * tail is unmapped (or not writable, for reads) transfer what fits before the hole and return
 * that count; only a transfer that cannot move a single byte is EFAULT. Data that was not
 * transferred is not lost: a pipe keeps it for the next read, a file's offset moves by what
 * was transferred. Pipes are the exception: a copy that stops short is EFAULT there, with
 * nothing consumed or written (pipe_read, pipe_write).
 *
 * Covers: a short file read into a buffer larger than its mapped part (the whole file, no
 * EFAULT); a long file read there (the mapped part); pread likewise; a read into a buffer
 * whose second page is read-only; readv whose second vector is unmapped (the first vector's
 * bytes) and whose first is (EFAULT); a pipe read into a partly mapped buffer (the rest stays
 * in the pipe, EFAULT); write and pwrite from a partly mapped buffer (the mapped part) and from an
 * unmapped one (EFAULT); writev likewise; getrandom and getdents64 into a partly mapped
 * buffer (what fits before the hole; EFAULT when not a byte or not one record fits).
 *
 * Linux-specific: the short counts (POSIX allows EFAULT or a partial transfer).
 */
#include "vktest.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#define PAGE 4096

static char path[64];

/* Two pages, the second one unmapped: a buffer with a hole at PAGE. */
static unsigned char *holed(void)
{
    unsigned char *p = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    munmap(p + PAGE, PAGE);
    memset(p, 'x', PAGE);
    return p;
}

static int file_of(size_t len)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    unsigned char b[3 * PAGE];
    for (size_t i = 0; i < sizeof b; i++)
        b[i] = (unsigned char)('a' + i % 26);
    if (fd < 0 || write(fd, b, len) != (ssize_t)len || lseek(fd, 0, SEEK_SET) != 0)
        return -1;
    return fd;
}

static void reads(void)
{
    unsigned char *p = holed();
    REQUIRE(p != NULL);
    if (!p)
        return;
    /* A short file: all of it, though the buffer's tail is unmapped. */
    int fd = file_of(100);
    REQUIRE(fd >= 0);
    CHECK(read(fd, p, 2 * PAGE) == 100 && p[0] == 'a' && p[99] == 'a' + 99 % 26);
    CHECK(pread(fd, p, 2 * PAGE, 10) == 90 && p[0] == 'a' + 10);
    close(fd);
    /* A long file: the mapped part, and the offset moves by that much. */
    fd = file_of(3 * PAGE);
    REQUIRE(fd >= 0);
    CHECK(read(fd, p, 2 * PAGE) == PAGE);
    CHECK(lseek(fd, 0, SEEK_CUR) == PAGE);
    CHECK(pread(fd, p + PAGE - 10, 100, 0) == 10 && p[PAGE - 10] == 'a');
    /* Not a byte can go: EFAULT. */
    CHECK(read(fd, p + PAGE, 100) == -1 && errno == EFAULT);
    CHECK(lseek(fd, 0, SEEK_CUR) == PAGE);
    /* readv: the first vector, then the hole. */
    unsigned char small[8];
    struct iovec iov[2] = {{small, sizeof small}, {p + PAGE, 100}};
    CHECK(lseek(fd, 0, SEEK_SET) == 0 && readv(fd, iov, 2) == (ssize_t)sizeof small && small[0] == 'a');
    struct iovec bad[2] = {{p + PAGE, 100}, {small, sizeof small}};
    CHECK(readv(fd, bad, 2) == -1 && errno == EFAULT);
    close(fd);
    /* A read-only second page stops a read as a hole does. */
    unsigned char *q = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(q != MAP_FAILED);
    REQUIRE(mprotect(q + PAGE, PAGE, PROT_READ) == 0);
    fd = file_of(3 * PAGE);
    CHECK(read(fd, q, 2 * PAGE) == PAGE);
    close(fd);
    munmap(q, 2 * PAGE);
    /* A pipe copies a buffer's worth or nothing: EFAULT, and the data is still there. */
    int pp[2];
    REQUIRE(pipe(pp) == 0);
    unsigned char msg[200];
    memset(msg, 'm', sizeof msg);
    CHECK(write(pp[1], msg, sizeof msg) == (ssize_t)sizeof msg);
    CHECK(read(pp[0], p + PAGE - 50, 200) == -1 && errno == EFAULT);
    CHECK(read(pp[0], msg, sizeof msg) == (ssize_t)sizeof msg);
    close(pp[0]);
    close(pp[1]);
    munmap(p, PAGE);
}

/* Calls that fill a buffer as they go: getrandom, getdents64. */
static void fills(void)
{
    unsigned char *p = holed();
    REQUIRE(p != NULL);
    if (!p)
        return;
    CHECK(syscall(SYS_getrandom, p + PAGE - 16, 64, 0) == 16);
    CHECK(syscall(SYS_getrandom, p + PAGE, 64, 0) == -1 && errno == EFAULT);
    /* A directory's records up to the hole (". " and ".." fit in 100 bytes), then none. */
    int fd = open("/", O_RDONLY | O_DIRECTORY);
    REQUIRE(fd >= 0);
    long n = syscall(SYS_getdents64, fd, p + PAGE - 100, 4096);
    CHECKF(n >= 48 && n <= 100, "getdents64: %ld", n);
    CHECK(syscall(SYS_getdents64, fd, p + PAGE - 8, 4096) == -1 && errno == EFAULT);
    CHECK(syscall(SYS_getdents64, fd, p + PAGE, 4096) == -1 && errno == EFAULT);
    close(fd);
    munmap(p, PAGE);
}

static void writes(void)
{
    unsigned char *p = holed();
    REQUIRE(p != NULL);
    if (!p)
        return;
    int fd = file_of(0);
    REQUIRE(fd >= 0);
    /* The mapped part goes; the file grows by that much. */
    CHECK(write(fd, p + PAGE - 100, 300) == 100);
    CHECK(lseek(fd, 0, SEEK_END) == 100);
    CHECK(pwrite(fd, p + PAGE - 10, 4000, 1000) == 10);
    CHECK(write(fd, p + PAGE, 10) == -1 && errno == EFAULT);
    struct iovec iov[2] = {{p, 20}, {p + PAGE, 100}};
    CHECK(writev(fd, iov, 2) == 20);
    struct iovec bad[2] = {{p + PAGE, 100}, {p, 20}};
    CHECK(writev(fd, bad, 2) == -1 && errno == EFAULT);
    close(fd);
    /* A pipe takes a page's worth or nothing: EFAULT, and nothing was written. */
    int pp[2];
    unsigned char back[300];
    REQUIRE(pipe(pp) == 0);
    CHECK(write(pp[1], p + PAGE - 30, 300) == -1 && errno == EFAULT);
    CHECK(fcntl(pp[0], F_SETFL, O_NONBLOCK) == 0);
    CHECK(read(pp[0], back, sizeof back) == -1 && errno == EAGAIN);
    close(pp[0]);
    close(pp[1]);
    munmap(p, PAGE);
}

int main(int argc, char **argv)
{
    vktest_reset_signals();
    snprintf(path, sizeof path, "%s/t_uaccess.%d", argc > 1 ? argv[1] : "/tmp", (int)getpid());
    reads();
    fills();
    writes();
    CHECK(unlink(path) == 0);
    return vktest_done();
}
