/*
 * t_inotify — inotify(7): watches and their events.
 *
 * Covers: inotify_init1 (IN_NONBLOCK's EAGAIN on an empty queue, EINVAL for unknown flags);
 * inotify_add_watch (a descriptor per watched file, the same one again for the same file with
 * the mask replaced, IN_MASK_CREATE's EEXIST, IN_ONLYDIR's ENOTDIR, EINVAL for no events,
 * ENOENT, EBADF and EINVAL for what is not an instance); events in a watched directory:
 * IN_CREATE (files, and directories with IN_ISDIR), IN_OPEN, IN_MODIFY, IN_CLOSE_WRITE and
 * IN_CLOSE_NOWRITE, IN_ACCESS with the entry's name, IN_ATTRIB on a chmod of a watched file,
 * IN_MOVED_FROM and IN_MOVED_TO sharing a cookie, IN_DELETE; on a watched file: IN_MODIFY
 * (what tail -f waits for), IN_ATTRIB, IN_DELETE_SELF then IN_IGNORED when it is removed;
 * inotify_rm_watch's IN_IGNORED and EINVAL for an unknown watch; IN_ONESHOT; records
 * padded to 16 bytes with a NUL-terminated name; equal events merged; EINVAL for a buffer too
 * small for one event; FIONREAD; poll and a blocking read woken by an event;
 * /proc/sys/fs/inotify/max_queued_events.
 *
 * Usage: t_inotify [DIR] — works in a new directory under DIR (default /tmp).
 */
#include "vktest.h"

#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef IN_MASK_CREATE
#define IN_MASK_CREATE 0x10000000
#endif

static char dir[256];

#define P(name) vktest_path(dir, name)

struct ev {
    int wd;
    uint32_t mask, cookie;
    char name[64];
};

/* Read what is queued (non-blocking) into evs; returns the count. */
static int drain(int fd, struct ev *evs, int max)
{
    char buf[4096] __attribute__((aligned(8)));
    int n = 0;
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r <= 0)
            break;
        for (char *p = buf; p < buf + r && n < max;) {
            struct inotify_event *e = (struct inotify_event *)p;
            evs[n].wd = e->wd;
            evs[n].mask = e->mask;
            evs[n].cookie = e->cookie;
            snprintf(evs[n].name, sizeof evs[n].name, "%s", e->len ? e->name : "");
            n++;
            p += sizeof *e + e->len;
        }
    }
    return n;
}

/* The index of the first event with `mask` (exactly) and `name`, at or after `from`; -1 if none. */
static int find(const struct ev *evs, int n, int from, int wd, uint32_t mask, const char *name)
{
    for (int i = from; i < n; i++)
        if (evs[i].wd == wd && evs[i].mask == mask && strcmp(evs[i].name, name) == 0)
            return i;
    return -1;
}

static void dump(const struct ev *evs, int n)
{
    for (int i = 0; i < n; i++)
        vktest_print("     ev wd=%d mask=%#x cookie=%u name=%s\n", evs[i].wd, evs[i].mask, evs[i].cookie, evs[i].name);
}

static void test_basics(void)
{
    CHECK(inotify_init1(0x1234) == -1 && errno == EINVAL);
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    REQUIRE(fd >= 0);
    CHECK((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
    char b[64];
    CHECK(read(fd, b, sizeof b) == -1 && errno == EAGAIN);
    CHECK(inotify_add_watch(fd, dir, 0) == -1 && errno == EINVAL);
    CHECK(inotify_add_watch(fd, P("nonexistent"), IN_ALL_EVENTS) == -1 && errno == ENOENT);
    CHECK(inotify_add_watch(-1, dir, IN_ALL_EVENTS) == -1 && errno == EBADF);
    int nfd = open("/dev/null", O_RDONLY);
    CHECK(inotify_add_watch(nfd, dir, IN_ALL_EVENTS) == -1 && errno == EINVAL);
    close(nfd);
    int f = open(P("plain"), O_CREAT | O_WRONLY, 0644);
    close(f);
    CHECK(inotify_add_watch(fd, P("plain"), IN_MODIFY | IN_ONLYDIR) == -1 && errno == ENOTDIR);
    int w1 = inotify_add_watch(fd, dir, IN_CREATE);
    CHECK(w1 > 0);
    CHECK(inotify_add_watch(fd, dir, IN_DELETE) == w1);
    CHECK(inotify_add_watch(fd, dir, IN_DELETE | IN_MASK_CREATE) == -1 && errno == EEXIST);
    int w2 = inotify_add_watch(fd, P("plain"), IN_MODIFY);
    CHECK(w2 > 0 && w2 != w1);
    /* The directory watch now only wants IN_DELETE: a create is not reported. */
    f = open(P("quiet"), O_CREAT | O_WRONLY, 0644);
    close(f);
    int q = -1;
    CHECK(ioctl(fd, FIONREAD, &q) == 0 && q == 0);
    CHECK(unlink(P("quiet")) == 0);
    struct ev evs[32];
    int n = drain(fd, evs, 32);
    CHECKF(n == 1 && find(evs, n, 0, w1, IN_DELETE, "quiet") == 0, "n=%d", n);
    /* rm_watch: IN_IGNORED, then EINVAL. */
    CHECK(inotify_rm_watch(fd, w2) == 0);
    CHECK(inotify_rm_watch(fd, w2) == -1 && errno == EINVAL);
    n = drain(fd, evs, 32);
    CHECK(n == 1 && evs[0].wd == w2 && evs[0].mask == IN_IGNORED);
    CHECK(unlink(P("plain")) == 0);
    close(fd);
}

static void test_dir_events(void)
{
    int fd = inotify_init1(IN_NONBLOCK);
    REQUIRE(fd >= 0);
    int w = inotify_add_watch(fd, dir, IN_ALL_EVENTS);
    REQUIRE(w > 0);
    int f = open(P("a"), O_CREAT | O_WRONLY, 0644);
    CHECK(write(f, "hi", 2) == 2);
    CHECK(write(f, "hi", 2) == 2); /* merged with the first IN_MODIFY */
    close(f);
    f = open(P("a"), O_RDONLY);
    char b[8];
    CHECK(read(f, b, sizeof b) == 4);
    close(f);
    CHECK(mkdir(P("sub"), 0755) == 0);
    CHECK(rename(P("a"), P("b")) == 0);
    CHECK(unlink(P("b")) == 0);
    CHECK(rmdir(P("sub")) == 0);
    int avail = 0;
    CHECK(ioctl(fd, FIONREAD, &avail) == 0 && avail > 0);
    struct ev evs[64];
    int n = drain(fd, evs, 64);
    int i = 0;
    CHECK((i = find(evs, n, 0, w, IN_CREATE, "a")) >= 0);
    CHECK((i = find(evs, n, i, w, IN_OPEN, "a")) >= 0);
    int m = find(evs, n, i, w, IN_MODIFY, "a");
    CHECK(m >= 0 && find(evs, n, m + 1, w, IN_MODIFY, "a") == -1);
    CHECK((i = find(evs, n, i, w, IN_CLOSE_WRITE, "a")) >= 0);
    CHECK((i = find(evs, n, i, w, IN_ACCESS, "a")) >= 0);
    CHECK((i = find(evs, n, i, w, IN_CLOSE_NOWRITE, "a")) >= 0);
    CHECK((i = find(evs, n, i, w, IN_CREATE | IN_ISDIR, "sub")) >= 0);
    int from = find(evs, n, i, w, IN_MOVED_FROM, "a");
    int to = find(evs, n, i, w, IN_MOVED_TO, "b");
    CHECK(from >= 0 && to == from + 1 && evs[from].cookie != 0 && evs[from].cookie == evs[to].cookie);
    CHECK((i = find(evs, n, to, w, IN_DELETE, "b")) >= 0);
    CHECK((i = find(evs, n, i, w, IN_DELETE | IN_ISDIR, "sub")) >= 0);
    if (vktest_failed)
        dump(evs, n);
    close(fd);
}

static void test_file_events(void)
{
    int fd = inotify_init1(IN_NONBLOCK);
    REQUIRE(fd >= 0);
    int f = open(P("log"), O_CREAT | O_WRONLY | O_APPEND, 0644);
    REQUIRE(f >= 0);
    int w = inotify_add_watch(fd, P("log"), IN_MODIFY | IN_ATTRIB | IN_DELETE_SELF);
    REQUIRE(w > 0);
    CHECK(write(f, "line\n", 5) == 5);
    CHECK(chmod(P("log"), 0600) == 0);
    close(f);
    CHECK(unlink(P("log")) == 0);
    struct ev evs[16];
    int n = drain(fd, evs, 16);
    CHECKF(n == 4 && evs[0].wd == w && evs[0].mask == IN_MODIFY && evs[0].name[0] == 0 && evs[1].mask == IN_ATTRIB &&
               evs[2].mask == IN_DELETE_SELF && evs[3].mask == IN_IGNORED,
           "n=%d", n);
    if (n != 4)
        dump(evs, n);
    CHECK(inotify_rm_watch(fd, w) == -1 && errno == EINVAL);

    /* IN_ONESHOT: one event, then IN_IGNORED. */
    f = open(P("once"), O_CREAT | O_WRONLY, 0644);
    int w2 = inotify_add_watch(fd, P("once"), IN_MODIFY | IN_ONESHOT);
    CHECK(write(f, "1", 1) == 1);
    CHECK(write(f, "22", 2) == 2);
    close(f);
    n = drain(fd, evs, 16);
    CHECK(n == 2 && evs[0].wd == w2 && evs[0].mask == IN_MODIFY && evs[1].mask == IN_IGNORED);
    CHECK(unlink(P("once")) == 0);

    /* Record layout: a name padded with NULs to a multiple of 16; too small a buffer: EINVAL. */
    int w3 = inotify_add_watch(fd, dir, IN_CREATE);
    f = open(P("abc"), O_CREAT | O_WRONLY, 0644);
    close(f);
    char small[sizeof(struct inotify_event) + 4];
    CHECK(read(fd, small, sizeof small) == -1 && errno == EINVAL);
    char buf[256] __attribute__((aligned(8)));
    ssize_t r = read(fd, buf, sizeof buf);
    struct inotify_event *e = (struct inotify_event *)buf;
    CHECK(r == (ssize_t)(sizeof *e + 16) && e->wd == w3 && e->mask == IN_CREATE && e->len == 16 &&
          strcmp(e->name, "abc") == 0 && e->name[15] == 0);
    CHECK(unlink(P("abc")) == 0);
    close(fd);
}

static void test_blocking(void)
{
    int fd = inotify_init1(0);
    REQUIRE(fd >= 0);
    int w = inotify_add_watch(fd, dir, IN_CREATE);
    REQUIRE(w > 0);
    struct pollfd pfd = {fd, POLLIN, 0};
    CHECK(poll(&pfd, 1, 0) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
        int f = open(P("late"), O_CREAT | O_WRONLY, 0644);
        close(f);
        _exit(0);
    }
    char buf[256] __attribute__((aligned(8)));
    ssize_t r = read(fd, buf, sizeof buf); /* waits for the child's create */
    struct inotify_event *e = (struct inotify_event *)buf;
    CHECK(r > 0 && e->mask == IN_CREATE && strcmp(e->name, "late") == 0);
    int st;
    CHECK(waitpid(pid, &st, 0) == pid && st == 0);
    CHECK(unlink(P("late")) == 0);
    close(fd);
}

/* /proc/self/fdinfo lists each watch with its mask; IN_EXCL_UNLINK keeps a directory's
 * watch from hearing of a child that has no name left. */
static void test_fdinfo_excl_unlink(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/excl", dir);
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
    REQUIRE(fd >= 0);
    int in = inotify_init1(IN_NONBLOCK);
    REQUIRE(in >= 0);
    int wd = inotify_add_watch(in, dir, IN_MODIFY | IN_EXCL_UNLINK);
    REQUIRE(wd > 0);
    char info[64];
    snprintf(info, sizeof info, "/proc/self/fdinfo/%d", in);
    FILE *f = fopen(info, "r");
    char line[256];
    unsigned mask = 0;
    int found = 0, w = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "inotify wd:%x ino:%*x sdev:%*x mask:%x", (unsigned *)&w, &mask) == 2)
            found++;
    if (f)
        fclose(f);
    CHECK(found == 1 && w == wd && mask == (IN_MODIFY | IN_EXCL_UNLINK));
    /* Linked: the write is heard; unlinked: it is not. */
    CHECK(write(fd, "a", 1) == 1);
    char buf[512];
    CHECK(read(in, buf, sizeof buf) > 0);
    CHECK(unlink(path) == 0);
    CHECK(write(fd, "b", 1) == 1);
    errno = 0;
    CHECK(read(in, buf, sizeof buf) == -1 && errno == EAGAIN);
    close(fd);
    close(in);
}

/* IN_ATTRIB of a chmod reaches the watch of the directory it was reached through (with the
 * name; IN_ISDIR for a directory) before the file's own; an unlink is IN_ATTRIB (a link
 * less), IN_DELETE_SELF and IN_IGNORED on the file, then IN_DELETE in the directory. */
static void test_attrib_parent(void)
{
    int fd = inotify_init1(IN_NONBLOCK);
    REQUIRE(fd >= 0);
    REQUIRE(mkdir(P("sub"), 0700) == 0);
    int f = open(P("af"), O_CREAT | O_WRONLY, 0600);
    REQUIRE(f >= 0);
    int wp = inotify_add_watch(fd, dir, IN_ATTRIB | IN_DELETE);
    int ws = inotify_add_watch(fd, P("sub"), IN_ATTRIB);
    int wf = inotify_add_watch(fd, P("af"), IN_ATTRIB | IN_DELETE_SELF);
    REQUIRE(wp > 0 && ws > 0 && wf > 0);
    CHECK(chmod(P("sub"), 0755) == 0);
    CHECK(chmod(P("af"), 0644) == 0);
    CHECK(fchmod(f, 0640) == 0);
    struct ev evs[16];
    int n = drain(fd, evs, 16);
    int ok = n == 6 && find(evs, n, 0, wp, IN_ATTRIB | IN_ISDIR, "sub") == 0 && find(evs, n, 1, ws, IN_ATTRIB | IN_ISDIR, "") == 1 &&
             find(evs, n, 2, wp, IN_ATTRIB, "af") == 2 && find(evs, n, 3, wf, IN_ATTRIB, "") == 3 &&
             find(evs, n, 4, wp, IN_ATTRIB, "af") == 4 && find(evs, n, 5, wf, IN_ATTRIB, "") == 5;
    CHECKF(ok, "n=%d", n);
    if (!ok)
        dump(evs, n);
    close(f);
    CHECK(unlink(P("af")) == 0);
    n = drain(fd, evs, 16);
    ok = n == 4 && find(evs, n, 0, wf, IN_ATTRIB, "") == 0 && find(evs, n, 1, wf, IN_DELETE_SELF, "") == 1 &&
         find(evs, n, 2, wf, IN_IGNORED, "") == 2 && find(evs, n, 3, wp, IN_DELETE, "af") == 3;
    CHECKF(ok, "n=%d", n);
    if (!ok)
        dump(evs, n);
    CHECK(rmdir(P("sub")) == 0);
    close(fd);
}

int main(int argc, char **argv)
{
    vktest_reset_signals();
    snprintf(dir, sizeof dir, "%s/t_inotify.%d", argc > 1 ? argv[1] : "/tmp", (int)getpid());
    REQUIRE(mkdir(dir, 0755) == 0);
    test_basics();
    test_dir_events();
    test_file_events();
    test_blocking();
    test_fdinfo_excl_unlink();
    test_attrib_parent();
    FILE *f = fopen("/proc/sys/fs/inotify/max_queued_events", "r");
    long q = 0;
    CHECK(f && fscanf(f, "%ld", &q) == 1 && q > 0);
    if (f)
        fclose(f);
    CHECK(rmdir(dir) == 0);
    vktest_done();
}
