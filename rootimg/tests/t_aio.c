/*
 * t_aio — Linux native AIO by raw system call: io_setup maps a ring (the context id is its
 * address; the header's magic and nr are Linux's); pwrite, pread, preadv and fsync requests
 * complete with their results, aio_data and the iocb address; the ring's head and tail move;
 * an eventfd is signalled for IOCB_FLAG_RESFD; RWF_NOWAIT on an empty pipe completes with
 * -EAGAIN; io_getevents waits out its timeout when nothing completes; io_cancel of a completed
 * request is EINVAL; errors: EINVAL for a bad context, nr or opcode, a context pointer not
 * zeroed, EFAULT for bad pointers, EBADF for a bad descriptor or the wrong access mode; a fork child does not have the parent's contexts; io_destroy.
 */
#include "vktest.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* linux/aio_abi.h (musl has no kernel headers). */
typedef unsigned long aio_context_t;
enum { IOCB_CMD_PREAD = 0, IOCB_CMD_PWRITE = 1, IOCB_CMD_FSYNC = 2, IOCB_CMD_PREADV = 7 };
#define IOCB_FLAG_RESFD 1
#ifndef RWF_NOWAIT
#define RWF_NOWAIT 8
#endif
struct io_event {
    unsigned long long data, obj;
    long long res, res2;
};
struct iocb {
    unsigned long long aio_data;
    unsigned aio_key;
    int aio_rw_flags;
    unsigned short aio_lio_opcode;
    short aio_reqprio;
    unsigned aio_fildes;
    unsigned long long aio_buf, aio_nbytes;
    long long aio_offset;
    unsigned long long aio_reserved2;
    unsigned aio_flags, aio_resfd;
};

static long io_setup(unsigned nr, aio_context_t *c) { return syscall(SYS_io_setup, nr, c); }
static long io_destroy(aio_context_t c) { return syscall(SYS_io_destroy, c); }
static long io_submit(aio_context_t c, long nr, struct iocb **l) { return syscall(SYS_io_submit, c, nr, l); }
static long io_getevents(aio_context_t c, long min, long nr, struct io_event *e, struct timespec *t)
{
    return syscall(SYS_io_getevents, c, min, nr, e, t);
}
static long io_cancel(aio_context_t c, struct iocb *cb, struct io_event *e) { return syscall(SYS_io_cancel, c, cb, e); }

struct ring {
    unsigned id, nr, head, tail, magic, compat, incompat, header_length;
};

static void prep(struct iocb *cb, int op, int fd, void *buf, size_t n, long long off, unsigned long long data)
{
    memset(cb, 0, sizeof *cb);
    cb->aio_lio_opcode = op;
    cb->aio_fildes = fd;
    cb->aio_buf = (unsigned long)buf;
    cb->aio_nbytes = n;
    cb->aio_offset = off;
    cb->aio_data = data;
}

int main(void)
{
    char path[] = "/tmp/t_aio.XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    unlink(path);

    aio_context_t ctx = 0;
    CHECK(io_setup(4, &ctx) == 0 && ctx != 0);
    struct ring *r = (struct ring *)ctx;
    CHECK(r->magic == 0xa10a10a1 && r->nr >= 4 && r->head == r->tail && r->header_length == sizeof *r);

    /* A write, then a read of it. */
    struct iocb w, rd, *l[2] = {&w, &rd};
    char out[] = "hello, aio", in[32] = {0};
    prep(&w, IOCB_CMD_PWRITE, fd, out, sizeof out, 100, 11);
    prep(&rd, IOCB_CMD_PREAD, fd, in, sizeof out, 100, 22);
    CHECK(io_submit(ctx, 2, l) == 2);
    struct io_event ev[4];
    struct timespec ts = {1, 0};
    CHECK(io_getevents(ctx, 2, 4, ev, &ts) == 2);
    CHECK(ev[0].data == 11 && ev[0].obj == (unsigned long)&w && ev[0].res == (long)sizeof out);
    CHECK(ev[1].data == 22 && ev[1].obj == (unsigned long)&rd && ev[1].res == (long)sizeof out);
    CHECK(memcmp(in, out, sizeof out) == 0);
    CHECK(r->head == r->tail);

    /* preadv and fsync; the completions stay on the ring until taken. */
    char a[5] = {0}, b[6] = {0};
    struct iovec iov[2] = {{a, 5}, {b, 5}};
    struct iocb v, s, *l2[2] = {&v, &s};
    prep(&v, IOCB_CMD_PREADV, fd, iov, 2, 100, 33);
    prep(&s, IOCB_CMD_FSYNC, fd, NULL, 0, 0, 44);
    CHECK(io_submit(ctx, 2, l2) == 2);
    CHECK(r->tail != r->head);
    CHECK(io_getevents(ctx, 1, 1, ev, &ts) == 1 && ev[0].data == 33 && ev[0].res == 10);
    CHECK(memcmp(a, "hello", 5) == 0 && memcmp(b, ", aio", 5) == 0);
    CHECK(io_getevents(ctx, 1, 4, ev, &ts) == 1 && ev[0].data == 44 && ev[0].res == 0);
    /* Nothing more: the timeout passes. */
    struct timespec short_ts = {0, 20000000};
    CHECK(io_getevents(ctx, 1, 4, ev, &short_ts) == 0);
    CHECK(io_getevents(ctx, 0, 4, ev, NULL) == 0);

    /* Read past the end: 0 bytes. A read into a bad buffer: EFAULT in the event. */
    prep(&rd, IOCB_CMD_PREAD, fd, in, 10, 4096, 55);
    CHECK(io_submit(ctx, 1, l + 1) == 1);
    CHECK(io_getevents(ctx, 1, 1, ev, &ts) == 1 && ev[0].res == 0);
    prep(&rd, IOCB_CMD_PREAD, fd, (void *)8, 10, 100, 56);
    CHECK(io_submit(ctx, 1, l + 1) == 1);
    CHECK(io_getevents(ctx, 1, 1, ev, &ts) == 1 && ev[0].res == -EFAULT);

    /* IOCB_FLAG_RESFD. */
    int efd = eventfd(0, 0);
    prep(&w, IOCB_CMD_PWRITE, fd, out, 3, 0, 66);
    w.aio_flags = IOCB_FLAG_RESFD;
    w.aio_resfd = efd;
    CHECK(io_submit(ctx, 1, l) == 1);
    unsigned long long cnt = 0;
    CHECK(read(efd, &cnt, 8) == 8 && cnt == 1);
    CHECK(io_getevents(ctx, 1, 1, ev, &ts) == 1 && ev[0].res == 3);
    CHECK(io_cancel(ctx, &w, ev) == -1 && errno == EINVAL);

    /* RWF_NOWAIT on an empty pipe. */
    int p[2];
    REQUIRE(pipe(p) == 0);
    prep(&rd, IOCB_CMD_PREAD, p[0], in, 10, 0, 77);
    rd.aio_rw_flags = RWF_NOWAIT;
    CHECK(io_submit(ctx, 1, l + 1) == 1);
    CHECK(io_getevents(ctx, 1, 1, ev, &ts) == 1 && ev[0].res == -EAGAIN);

    /* As many as were asked for, in order. */
    struct iocb many[4], *ml[4];
    for (int i = 0; i < 4; i++) {
        prep(&many[i], IOCB_CMD_PREAD, fd, in, 1, 100, i);
        ml[i] = &many[i];
    }
    CHECK(io_submit(ctx, 4, ml) == 4);
    CHECK(io_getevents(ctx, 4, 4, ev, &ts) == 4 && ev[0].data == 0 && ev[3].data == 3);

    /* Errors. */
    aio_context_t bad = 0;
    errno = 0;
    CHECK(io_setup(1, NULL) == -1 && errno == EFAULT);
    bad = 1;
    errno = 0;
    CHECK(io_setup(1, &bad) == -1 && errno == EINVAL);
    bad = 0;
    errno = 0;
    CHECK(io_setup(0, &bad) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(io_setup(-1, &bad) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(io_submit(12345, 1, l) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(io_submit(ctx, -1, l) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(io_submit(ctx, 1, (struct iocb **)-1) == -1 && errno == EFAULT);
    struct iocb *nul[1] = {NULL};
    errno = 0;
    CHECK(io_submit(ctx, 1, nul) == -1 && errno == EFAULT);
    CHECK(io_submit(ctx, 0, NULL) == 0);
    prep(&rd, IOCB_CMD_PREAD, -1, in, 10, 0, 0);
    errno = 0;
    CHECK(io_submit(ctx, 1, l + 1) == -1 && errno == EBADF);
    prep(&rd, IOCB_CMD_PWRITE, p[0], in, 10, 0, 0);
    errno = 0;
    CHECK(io_submit(ctx, 1, l + 1) == -1 && errno == EBADF);
    prep(&rd, 99, fd, in, 10, 0, 0);
    errno = 0;
    CHECK(io_submit(ctx, 1, l + 1) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(io_getevents(0, 0, 0, NULL, NULL) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(io_getevents(ctx, 2, 1, ev, NULL) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(io_cancel(0, NULL, NULL) == -1 && errno == EFAULT);

    /* A fork child has no contexts. */
    pid_t c = fork();
    if (c == 0)
        _exit(io_destroy(ctx) == -1 && errno == EINVAL ? 0 : 1);
    int st;
    CHECK(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0);

    CHECK(io_destroy(ctx) == 0);
    errno = 0;
    CHECK(io_destroy(ctx) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(io_destroy((aio_context_t)-1) == -1 && errno == EINVAL);
    return vktest_done();
}
