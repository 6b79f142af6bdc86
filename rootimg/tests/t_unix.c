/*
 * t_unix — AF_UNIX sockets (unix(7)).
 *
 * Covers: socketpair of SOCK_STREAM, SOCK_DGRAM and SOCK_SEQPACKET (byte streams, message
 * boundaries, MSG_TRUNC, MSG_PEEK, MSG_DONTWAIT, MSG_WAITALL, EOF after shutdown and close);
 * SIGPIPE/EPIPE and MSG_NOSIGNAL; poll readiness as Linux reports it (POLLOUT on a fresh pair,
 * POLLIN, POLLRDHUP after a shutdown, POLLHUP after the peer closes, POLLHUP|POLLOUT of an
 * unconnected stream socket, POLLIN of a listener with a pending connection); select; binding
 * to a path (S_ISSOCK, EADDRINUSE while the name exists, ENOENT/ECONNREFUSED, EACCES without
 * write permission on it), the abstract namespace and autobind; listen/accept/accept4,
 * connect before accept, a full backlog (EAGAIN non-blocking), getsockname/getpeername;
 * a blocking connect waiting for room in a full backlog; SO_PEERCRED (of a socketpair too),
 * SO_PASSCRED with SCM_CREDENTIALS (a stream receive stops where the sender changes; another
 * process's pid is EPERM without CAP_SYS_ADMIN), SO_TYPE, SO_DOMAIN, SO_ACCEPTCONN, SO_ERROR,
 * SO_SNDBUF/SO_RCVBUF; SCM_RIGHTS (a passed pipe end works, MSG_CMSG_CLOEXEC, MSG_CTRUNC),
 * files in flight when both ends close are released (even in a cycle: a socket sent over
 * itself); sendmmsg/recvmmsg; datagram errors (ENOTCONN, ECONNREFUSED after the peer went,
 * EPROTOTYPE); FIONREAD; /proc/net/unix. Path names go under /tmp, or under the directory
 * given as the first argument (the integration tests give an ext2 one).
 */
#include "vktest.h"

#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#ifndef POLLRDHUP
#define POLLRDHUP 0x2000
#endif

static char tmpdir[64];

#define P(name) vktest_path(tmpdir, name)

static socklen_t mkaddr(struct sockaddr_un *a, const char *path)
{
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    strncpy(a->sun_path, path, sizeof a->sun_path - 1);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
}

static socklen_t mkabstract(struct sockaddr_un *a, const char *name)
{
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    size_t n = strlen(name);
    memcpy(a->sun_path + 1, name, n);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
}

static short pollev(int fd, short ev)
{
    struct pollfd p = {.fd = fd, .events = ev};
    if (poll(&p, 1, 0) < 0)
        return -1;
    return p.revents;
}

static void test_stream_pair(void)
{
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CHECK(pollev(sv[0], POLLIN | POLLOUT | POLLRDHUP) == POLLOUT);
    CHECK(write(sv[0], "hello", 5) == 5);
    CHECK(write(sv[0], " world", 6) == 6);
    CHECK(pollev(sv[1], POLLIN | POLLOUT) == (POLLIN | POLLOUT));
    int n = -1;
    CHECK(ioctl(sv[1], FIONREAD, &n) == 0 && n == 11);
    char buf[64];
    CHECK(recv(sv[1], buf, sizeof buf, MSG_PEEK) == 11 && memcmp(buf, "hello world", 11) == 0);
    CHECK(read(sv[1], buf, 3) == 3 && memcmp(buf, "hel", 3) == 0);
    CHECK(read(sv[1], buf, sizeof buf) == 8 && memcmp(buf, "lo world", 8) == 0);
    CHECK(recv(sv[1], buf, sizeof buf, MSG_DONTWAIT) == -1 && errno == EAGAIN);
    /* Shut down writing: the reader sees EOF and POLLRDHUP, the writer EPIPE. */
    CHECK(shutdown(sv[0], SHUT_WR) == 0);
    CHECK(pollev(sv[1], POLLIN | POLLRDHUP) == (POLLIN | POLLRDHUP));
    CHECK(read(sv[1], buf, sizeof buf) == 0);
    signal(SIGPIPE, SIG_IGN);
    CHECK(send(sv[0], "x", 1, 0) == -1 && errno == EPIPE);
    CHECK(write(sv[1], "back", 4) == 4);
    CHECK(read(sv[0], buf, sizeof buf) == 4);
    close(sv[0]);
    /* The peer closed: hang-up. */
    CHECK(pollev(sv[1], POLLIN | POLLOUT | POLLRDHUP) == (POLLIN | POLLOUT | POLLRDHUP | POLLHUP));
    CHECK(write(sv[1], "x", 1) == -1 && errno == EPIPE);
    close(sv[1]);

    /* Default SIGPIPE kills the writer; MSG_NOSIGNAL does not. */
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    close(sv[1]);
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGPIPE, SIG_DFL);
        if (send(sv[0], "x", 1, MSG_NOSIGNAL) != -1 || errno != EPIPE)
            _exit(3);
        write(sv[0], "x", 1);
        _exit(4);
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid && WIFSIGNALED(st) && WTERMSIG(st) == SIGPIPE);
    close(sv[0]);

    /* MSG_WAITALL gathers what a child writes in pieces. */
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    pid = fork();
    if (pid == 0) {
        for (int i = 0; i < 4; i++) {
            write(sv[1], "abcd", 4);
            usleep(20000);
        }
        _exit(0);
    }
    CHECK(recv(sv[0], buf, 16, MSG_WAITALL) == 16 && memcmp(buf, "abcdabcdabcdabcd", 16) == 0);
    CHECK(waitpid(pid, &st, 0) == pid && st == 0);
    close(sv[0]);
    close(sv[1]);

    /* A large transfer through a child: every byte arrives, in order. */
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    pid = fork();
    if (pid == 0) {
        close(sv[0]);
        static unsigned char big[1 << 20];
        for (size_t i = 0; i < sizeof big; i++)
            big[i] = (unsigned char)(i * 7 + i / 251);
        size_t off = 0;
        while (off < sizeof big) {
            ssize_t w = write(sv[1], big + off, sizeof big - off);
            if (w <= 0)
                _exit(1);
            off += (size_t)w;
        }
        _exit(0);
    }
    close(sv[1]);
    size_t got = 0;
    int same = 1;
    unsigned char chunk[8192];
    for (;;) {
        ssize_t r = read(sv[0], chunk, sizeof chunk);
        if (r <= 0)
            break;
        for (ssize_t i = 0; i < r; i++)
            if (chunk[i] != (unsigned char)((got + i) * 7 + (got + i) / 251))
                same = 0;
        got += (size_t)r;
    }
    CHECKF(got == (1u << 20) && same, "got %zu same %d", got, same);
    CHECK(waitpid(pid, &st, 0) == pid && st == 0);
    close(sv[0]);
}

/* Edges of streams: a full buffer, a peer gone with unread data, shut down reading. */
static void test_stream_edges(void)
{
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    /* Fill it without waiting: EAGAIN, then no POLLOUT until the reader makes room. */
    static char chunk[4096];
    long sent = 0;
    ssize_t w;
    while ((w = send(sv[0], chunk, sizeof chunk, MSG_DONTWAIT)) > 0)
        sent += w;
    CHECKF(w == -1 && errno == EAGAIN && sent > 0, "w %zd sent %ld", w, sent);
    CHECK(pollev(sv[0], POLLOUT) == 0);
    long got = 0;
    ssize_t r;
    while ((r = recv(sv[1], chunk, sizeof chunk, MSG_DONTWAIT)) > 0)
        got += r;
    CHECK(got == sent);
    CHECK(pollev(sv[0], POLLOUT) == POLLOUT);
    close(sv[0]);
    close(sv[1]);

    /* The peer closed with data it had not read: ECONNRESET once, then EOF. */
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CHECK(write(sv[1], "unread", 6) == 6);
    close(sv[0]);
    CHECK(pollev(sv[1], POLLIN | POLLOUT | POLLRDHUP) == (POLLIN | POLLOUT | POLLRDHUP | POLLHUP | POLLERR));
    char b[8];
    CHECK(read(sv[1], b, sizeof b) == -1 && errno == ECONNRESET);
    CHECK(read(sv[1], b, sizeof b) == 0);
    close(sv[1]);

    /* shutdown(SHUT_RD): this side reads EOF, the peer's writes are EPIPE. */
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    signal(SIGPIPE, SIG_IGN);
    CHECK(shutdown(sv[1], SHUT_RD) == 0);
    CHECK(pollev(sv[1], POLLIN | POLLRDHUP) == (POLLIN | POLLRDHUP));
    CHECK(read(sv[1], b, sizeof b) == 0);
    CHECK(write(sv[0], "x", 1) == -1 && errno == EPIPE);
    CHECK(write(sv[1], "y", 1) == 1);
    CHECK(shutdown(sv[1], SHUT_WR) == 0);
    CHECK((pollev(sv[1], POLLIN | POLLOUT) & POLLHUP) == POLLHUP);
    CHECK(shutdown(sv[1], 7) == -1 && errno == EINVAL);
    close(sv[0]);
    close(sv[1]);

    /* An unconnected socket has no peer credentials: pid 0, ids -1. */
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct ucred cr;
    socklen_t cl = sizeof cr;
    CHECK(getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cr, &cl) == 0 && cr.pid == 0 && cr.uid == (uid_t)-1 && cr.gid == (gid_t)-1);
    close(s);
}

static void test_dgram_pair(void)
{
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0);
    CHECK(send(sv[0], "one", 3, 0) == 3);
    CHECK(send(sv[0], "second", 6, 0) == 6);
    CHECK(send(sv[0], "", 0, 0) == 0);
    char buf[64];
    int n = -1;
    CHECK(ioctl(sv[1], FIONREAD, &n) == 0 && n == 3);
    CHECK(recv(sv[1], buf, sizeof buf, MSG_PEEK) == 3);
    CHECK(recv(sv[1], buf, sizeof buf, 0) == 3 && memcmp(buf, "one", 3) == 0);
    /* A short buffer cuts the datagram; MSG_TRUNC returns its real length. */
    CHECK(recv(sv[1], buf, 2, MSG_TRUNC) == 6 && memcmp(buf, "se", 2) == 0);
    CHECK(recv(sv[1], buf, sizeof buf, 0) == 0);
    CHECK(recv(sv[1], buf, sizeof buf, MSG_DONTWAIT) == -1 && errno == EAGAIN);
    struct msghdr mh;
    struct iovec iov = {buf, 2};
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    CHECK(send(sv[0], "abcdef", 6, 0) == 6);
    CHECK(recvmsg(sv[1], &mh, 0) == 2 && (mh.msg_flags & MSG_TRUNC));

    /* sendmmsg / recvmmsg */
    struct mmsghdr mm[3];
    struct iovec io[3];
    char rb[3][8];
    const char *words[3] = {"a", "bb", "ccc"};
    memset(mm, 0, sizeof mm);
    for (int i = 0; i < 3; i++) {
        io[i].iov_base = (void *)words[i];
        io[i].iov_len = strlen(words[i]);
        mm[i].msg_hdr.msg_iov = &io[i];
        mm[i].msg_hdr.msg_iovlen = 1;
    }
    CHECK(sendmmsg(sv[0], mm, 3, 0) == 3 && mm[2].msg_len == 3);
    memset(mm, 0, sizeof mm);
    for (int i = 0; i < 3; i++) {
        io[i].iov_base = rb[i];
        io[i].iov_len = sizeof rb[i];
        mm[i].msg_hdr.msg_iov = &io[i];
        mm[i].msg_hdr.msg_iovlen = 1;
    }
    CHECK(recvmmsg(sv[1], mm, 3, MSG_DONTWAIT, NULL) == 3 && mm[0].msg_len == 1 && mm[1].msg_len == 2 &&
          mm[2].msg_len == 3 && memcmp(rb[2], "ccc", 3) == 0);
    /* MSG_WAITFORONE: after the first datagram, recvmmsg waits no more. */
    CHECK(send(sv[0], "w", 1, 0) == 1);
    CHECK(recvmmsg(sv[1], mm, 3, MSG_WAITFORONE, NULL) == 1 && mm[0].msg_len == 1);
    close(sv[0]);
    /* The peer is gone: writable, the first send refused, then not connected. */
    CHECK(pollev(sv[1], POLLIN | POLLOUT) == POLLOUT);
    CHECK(send(sv[1], "x", 1, 0) == -1 && errno == ECONNREFUSED);
    CHECK(send(sv[1], "x", 1, 0) == -1 && errno == ENOTCONN);
    close(sv[1]);

    /* A receiver's queue holds max_dgram_qlen datagrams (and one more) from a sender it is not
     * connected to; then the sender waits (EAGAIN without waiting) and sees no POLLOUT. */
    int qlen = 10;
    FILE *f = fopen("/proc/sys/net/unix/max_dgram_qlen", "r");
    if (f) {
        if (fscanf(f, "%d", &qlen) != 1)
            qlen = 10;
        fclose(f);
    }
    struct sockaddr_un ra;
    char rname[32];
    snprintf(rname, sizeof rname, "vk-q-%d", (int)getpid());
    socklen_t rl = mkabstract(&ra, rname);
    int rcv = socket(AF_UNIX, SOCK_DGRAM, 0), snd = socket(AF_UNIX, SOCK_DGRAM, 0);
    CHECK(bind(rcv, (struct sockaddr *)&ra, rl) == 0 && connect(snd, (struct sockaddr *)&ra, rl) == 0);
    int queued = 0;
    while (queued < 1000 && send(snd, "q", 1, MSG_DONTWAIT) == 1)
        queued++;
    CHECKF(queued == qlen + 1 && errno == EAGAIN, "queued %d (qlen %d)", queued, qlen);
    CHECK(pollev(snd, POLLOUT) == 0);
    CHECK(recv(rcv, buf, sizeof buf, 0) == 1);
    CHECK(pollev(snd, POLLOUT) == POLLOUT);
    close(snd);
    close(rcv);

    int s = socket(AF_UNIX, SOCK_DGRAM, 0);
    CHECK(send(s, "x", 1, 0) == -1 && errno == ENOTCONN);
    struct sockaddr_un a;
    socklen_t len = mkaddr(&a, P("nosuch"));
    CHECK(sendto(s, "x", 1, 0, (struct sockaddr *)&a, len) == -1 && errno == ENOENT);
    close(s);
}

static void test_seqpacket_pair(void)
{
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0);
    CHECK(send(sv[0], "abc", 3, 0) == 3);
    CHECK(send(sv[0], "de", 2, 0) == 2);
    char buf[16];
    CHECK(recv(sv[1], buf, sizeof buf, 0) == 3);
    CHECK(recv(sv[1], buf, 1, MSG_TRUNC) == 2);
    CHECK(recv(sv[1], buf, sizeof buf, MSG_DONTWAIT) == -1 && errno == EAGAIN);
    int t = 0;
    socklen_t tl = sizeof t;
    CHECK(getsockopt(sv[0], SOL_SOCKET, SO_TYPE, &t, &tl) == 0 && t == SOCK_SEQPACKET);
    close(sv[0]);
    CHECK(recv(sv[1], buf, sizeof buf, 0) == 0);
    CHECK(pollev(sv[1], POLLIN | POLLOUT) & POLLHUP);
    close(sv[1]);
}

static void test_path_names(void)
{
    struct sockaddr_un a, b;
    socklen_t len = mkaddr(&a, P("srv"));
    int l = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    REQUIRE(l >= 0);
    CHECK((pollev(l, POLLIN | POLLOUT) & (POLLOUT | POLLHUP)) == (POLLOUT | POLLHUP));
    CHECK(listen(l, 5) == -1 && errno == EINVAL); /* not bound */
    CHECK(bind(l, (struct sockaddr *)&a, len) == 0);
    struct stat sb;
    CHECK(stat(P("srv"), &sb) == 0 && S_ISSOCK(sb.st_mode));
    struct sockaddr_un other;
    socklen_t olen = mkaddr(&other, P("srv2"));
    CHECK(bind(l, (struct sockaddr *)&other, olen) == -1 && errno == EINVAL); /* already bound */
    CHECK(access(P("srv2"), F_OK) == -1 && errno == ENOENT);
    int l2 = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(bind(l2, (struct sockaddr *)&a, len) == -1 && errno == EADDRINUSE);
    close(l2);
    int acc = -1;
    socklen_t al = sizeof acc;
    CHECK(getsockopt(l, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) == 0 && acc == 0);
    CHECK(listen(l, 5) == 0);
    CHECK(getsockopt(l, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) == 0 && acc == 1);
    int dom = 0;
    socklen_t dl = sizeof dom;
    CHECK(getsockopt(l, SOL_SOCKET, SO_DOMAIN, &dom, &dl) == 0 && dom == AF_UNIX);
    CHECK(pollev(l, POLLIN | POLLOUT) == 0);
    CHECK((fcntl(l, F_GETFL) & O_NONBLOCK) != 0);
    CHECK(accept(l, NULL, NULL) == -1 && errno == EAGAIN);

    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(connect(c, (struct sockaddr *)&a, len) == 0);
    /* Connected before accept: it can write already. */
    CHECK(write(c, "early", 5) == 5);
    CHECK(pollev(l, POLLIN) == POLLIN);
    socklen_t bl = sizeof b;
    int s = accept4(l, (struct sockaddr *)&b, &bl, SOCK_CLOEXEC);
    CHECK(s >= 0 && bl == sizeof(sa_family_t));
    CHECK((fcntl(s, F_GETFD) & FD_CLOEXEC) != 0);
    char buf[32];
    CHECK(read(s, buf, sizeof buf) == 5 && memcmp(buf, "early", 5) == 0);
    bl = sizeof b;
    CHECK(getpeername(c, (struct sockaddr *)&b, &bl) == 0 && bl == len && strcmp(b.sun_path, P("srv")) == 0);
    bl = sizeof b;
    CHECK(getsockname(s, (struct sockaddr *)&b, &bl) == 0 && bl == len && strcmp(b.sun_path, P("srv")) == 0);
    bl = sizeof b;
    CHECK(getsockname(c, (struct sockaddr *)&b, &bl) == 0 && bl == sizeof(sa_family_t));
    bl = 4; /* a short buffer: the full length still comes back */
    CHECK(getpeername(c, (struct sockaddr *)&b, &bl) == 0 && bl == len);
    struct ucred cr;
    socklen_t cl = sizeof cr;
    CHECK(getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cr, &cl) == 0 && cr.pid == (pid_t)getpid() &&
          cr.uid == geteuid() && cl == sizeof cr);
    cl = sizeof cr;
    CHECK(getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &cl) == 0 && cr.pid == (pid_t)getpid());
    int err = -1;
    socklen_t el = sizeof err;
    CHECK(getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err == 0);
    CHECK(connect(c, (struct sockaddr *)&a, len) == -1 && errno == EISCONN);
    close(c);
    close(s);

    /* A full backlog: listen(0) takes one pending connection. */
    int l3 = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a3;
    socklen_t len3 = mkaddr(&a3, P("small"));
    CHECK(bind(l3, (struct sockaddr *)&a3, len3) == 0 && listen(l3, 0) == 0);
    int c1 = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int c2 = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    CHECK(connect(c1, (struct sockaddr *)&a3, len3) == 0);
    CHECK(connect(c2, (struct sockaddr *)&a3, len3) == -1 && errno == EAGAIN);
    /* A blocking connect waits for room: it returns only after the listener accepts. */
    int ready[2];
    REQUIRE(pipe(ready) == 0);
    pid_t waiter = fork();
    if (waiter == 0) {
        close(ready[0]);
        int c3 = socket(AF_UNIX, SOCK_STREAM, 0);
        int r = connect(c3, (struct sockaddr *)&a3, len3);
        write(ready[1], "c", 1);
        _exit(r == 0 ? 0 : 1);
    }
    close(ready[1]);
    char rb;
    struct pollfd rp = {.fd = ready[0], .events = POLLIN};
    CHECK(poll(&rp, 1, 200) == 0); /* still waiting: the backlog is full */
    int acc1 = accept(l3, NULL, NULL);
    CHECK(acc1 >= 0);
    CHECK(read(ready[0], &rb, 1) == 1);
    int wst;
    CHECK(waitpid(waiter, &wst, 0) == waiter && wst == 0);
    close(ready[0]);
    close(acc1);
    close(c1);
    close(c2);
    close(l3);

    /* Names that lead nowhere. */
    c = socket(AF_UNIX, SOCK_STREAM, 0);
    socklen_t nl = mkaddr(&b, P("nosuch"));
    CHECK(connect(c, (struct sockaddr *)&b, nl) == -1 && errno == ENOENT);
    int fd = open(P("plain"), O_CREAT | O_WRONLY, 0666);
    close(fd);
    nl = mkaddr(&b, P("plain"));
    CHECK(connect(c, (struct sockaddr *)&b, nl) == -1 && errno == ECONNREFUSED);
    int d = socket(AF_UNIX, SOCK_DGRAM, 0);
    CHECK(connect(d, (struct sockaddr *)&a, len) == -1 && errno == EPROTOTYPE);
    close(d);
    close(l);
    /* The listener is gone but its name stays: refused, and still in use. */
    CHECK(connect(c, (struct sockaddr *)&a, len) == -1 && errno == ECONNREFUSED);
    l = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(bind(l, (struct sockaddr *)&a, len) == -1 && errno == EADDRINUSE);
    CHECK(unlink(P("srv")) == 0);
    CHECK(bind(l, (struct sockaddr *)&a, len) == 0);
    close(l);
    close(c);

    /* connect needs write permission on the socket file. */
    l = socket(AF_UNIX, SOCK_STREAM, 0);
    len = mkaddr(&a, P("private"));
    CHECK(bind(l, (struct sockaddr *)&a, len) == 0 && listen(l, 1) == 0);
    CHECK(chmod(P("private"), 0755) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        if (setgid(65534) != 0 || setuid(65534) != 0)
            _exit(2);
        int cc = socket(AF_UNIX, SOCK_STREAM, 0);
        _exit(connect(cc, (struct sockaddr *)&a, len) == -1 && errno == EACCES ? 0 : 1);
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(l);

    /* /proc/net/unix lists the bound name. */
    l = socket(AF_UNIX, SOCK_STREAM, 0);
    len = mkaddr(&a, P("listed"));
    CHECK(bind(l, (struct sockaddr *)&a, len) == 0 && listen(l, 1) == 0);
    fd = open("/proc/net/unix", O_RDONLY);
    static char text[1 << 16];
    ssize_t tn = 0, r;
    while (fd >= 0 && (r = read(fd, text + tn, sizeof text - 1 - (size_t)tn)) > 0)
        tn += r;
    text[tn > 0 ? tn : 0] = 0;
    CHECK(fd >= 0 && strncmp(text, "Num       RefCount Protocol Flags    Type St Inode Path\n", 56) == 0);
    CHECK(strstr(text, P("listed")) != NULL);
    CHECK(strstr(text, "00010000 0001 01") != NULL);
    close(fd);
    close(l);
}

static void test_abstract(void)
{
    struct sockaddr_un a, b;
    char name[32];
    snprintf(name, sizeof name, "vk-test-%d", (int)getpid());
    socklen_t len = mkabstract(&a, name);
    int d = socket(AF_UNIX, SOCK_DGRAM, 0);
    CHECK(bind(d, (struct sockaddr *)&a, len) == 0);
    int d2 = socket(AF_UNIX, SOCK_DGRAM, 0);
    CHECK(bind(d2, (struct sockaddr *)&a, len) == -1 && errno == EADDRINUSE);
    CHECK(sendto(d2, "ping", 4, 0, (struct sockaddr *)&a, len) == 4);
    char buf[16];
    socklen_t bl = sizeof b;
    /* The sender is unnamed: no address comes back (length 0). */
    ssize_t rn = recvfrom(d, buf, sizeof buf, 0, (struct sockaddr *)&b, &bl);
    CHECKF(rn == 4 && bl == 0, "rn %zd bl %u", rn, (unsigned)bl);
    /* /proc/net/unix shows an abstract name with '@'. */
    int pf = open("/proc/net/unix", O_RDONLY);
    static char text[1 << 16];
    ssize_t tn = 0, tr;
    while (pf >= 0 && (tr = read(pf, text + tn, sizeof text - 1 - (size_t)tn)) > 0)
        tn += tr;
    text[tn > 0 ? tn : 0] = 0;
    char at[40];
    snprintf(at, sizeof at, " @%s\n", name);
    CHECK(strstr(text, at) != NULL);
    close(pf);
    /* Autobind: five hex digits in the abstract namespace. */
    struct sockaddr_un auto_addr = {.sun_family = AF_UNIX};
    CHECK(bind(d2, (struct sockaddr *)&auto_addr, sizeof(sa_family_t)) == 0);
    bl = sizeof b;
    CHECK(getsockname(d2, (struct sockaddr *)&b, &bl) == 0 && bl == offsetof(struct sockaddr_un, sun_path) + 6 &&
          b.sun_path[0] == 0);
    CHECK(sendto(d2, "pong", 4, 0, (struct sockaddr *)&a, len) == 4);
    bl = sizeof b;
    CHECK(recvfrom(d, buf, sizeof buf, 0, (struct sockaddr *)&b, &bl) == 4 && bl == offsetof(struct sockaddr_un, sun_path) + 6);
    /* Reply to the autobound name. */
    CHECK(sendto(d, "back", 4, 0, (struct sockaddr *)&b, bl) == 4);
    CHECK(recv(d2, buf, sizeof buf, 0) == 4 && memcmp(buf, "back", 4) == 0);
    /* A connected datagram socket hears only its peer. */
    int d3 = socket(AF_UNIX, SOCK_DGRAM, 0);
    CHECK(connect(d, (struct sockaddr *)&b, bl) == 0);
    CHECK(sendto(d3, "x", 1, 0, (struct sockaddr *)&a, len) == -1 && errno == EPERM);
    close(d3);
    close(d2);
    /* The name is free again once its socket is closed. */
    close(d);
    d = socket(AF_UNIX, SOCK_DGRAM, 0);
    CHECK(bind(d, (struct sockaddr *)&a, len) == 0);
    close(d);
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(connect(c, (struct sockaddr *)&a, len) == -1 && errno == ECONNREFUSED);
    close(c);
}

static int send_fds(int s, const int *fds, int n, const char *data)
{
    char ctl[CMSG_SPACE(sizeof(int) * 8)];
    struct iovec iov = {(void *)data, strlen(data)};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = CMSG_SPACE(sizeof(int) * n)};
    memset(ctl, 0, sizeof ctl);
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int) * n);
    memcpy(CMSG_DATA(cm), fds, sizeof(int) * n);
    return (int)sendmsg(s, &mh, 0);
}

static void test_rights(void)
{
    int sv[2], p[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    REQUIRE(pipe(p) == 0);
    CHECK(send_fds(sv[0], &p[1], 1, "fd") == 2);
    close(p[1]);
    char buf[8], ctl[CMSG_SPACE(sizeof(int) * 4)];
    struct iovec iov = {buf, sizeof buf};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
    CHECK(recvmsg(sv[1], &mh, MSG_CMSG_CLOEXEC) == 2);
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    int got = -1;
    CHECK(cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS && cm->cmsg_len == CMSG_LEN(sizeof(int)));
    if (cm)
        memcpy(&got, CMSG_DATA(cm), sizeof got);
    CHECK(got >= 0 && (fcntl(got, F_GETFD) & FD_CLOEXEC));
    CHECK(write(got, "via", 3) == 3);
    close(got);
    CHECK(read(p[0], buf, sizeof buf) == 3 && memcmp(buf, "via", 3) == 0);
    CHECK(read(p[0], buf, sizeof buf) == 0); /* the only write end was the passed one */
    close(p[0]);

    /* MSG_PEEK passes the descriptors too (copies); the receive after it passes them again. */
    REQUIRE(pipe(p) == 0);
    CHECK(send_fds(sv[0], &p[1], 1, "pk") == 2);
    close(p[1]);
    int fds[2] = {-1, -1};
    for (int i = 0; i < 2; i++) {
        mh.msg_control = ctl;
        mh.msg_controllen = sizeof ctl;
        mh.msg_flags = 0;
        CHECK(recvmsg(sv[1], &mh, i == 0 ? MSG_PEEK : 0) == 2);
        cm = CMSG_FIRSTHDR(&mh);
        if (cm && cm->cmsg_type == SCM_RIGHTS)
            memcpy(&fds[i], CMSG_DATA(cm), sizeof(int));
    }
    CHECK(fds[0] >= 0 && fds[1] >= 0 && fds[0] != fds[1]);
    CHECK(write(fds[0], "1", 1) == 1 && write(fds[1], "2", 1) == 1);
    close(fds[0]);
    close(fds[1]);
    CHECK(read(p[0], buf, sizeof buf) == 2 && read(p[0], buf, sizeof buf) == 0);
    close(p[0]);

    /* Too little control room: MSG_CTRUNC, and the descriptors that did not fit are closed. */
    REQUIRE(pipe(p) == 0);
    int two[2] = {p[1], p[1]};
    CHECK(send_fds(sv[0], two, 2, "tr") == 2);
    close(p[1]);
    char small[CMSG_SPACE(sizeof(int))];
    mh.msg_control = small;
    mh.msg_controllen = CMSG_LEN(sizeof(int));
    mh.msg_flags = 0;
    CHECK(recvmsg(sv[1], &mh, 0) == 2 && (mh.msg_flags & MSG_CTRUNC));
    cm = CMSG_FIRSTHDR(&mh);
    got = -1;
    if (cm && cm->cmsg_type == SCM_RIGHTS)
        memcpy(&got, CMSG_DATA(cm), sizeof got);
    CHECK(got >= 0);
    close(got);
    CHECK(read(p[0], buf, sizeof buf) == 0);
    close(p[0]);

    /* In flight when both ends close: released. */
    REQUIRE(pipe(p) == 0);
    CHECK(send_fds(sv[0], &p[1], 1, "x") == 1);
    close(p[1]);
    close(sv[0]);
    close(sv[1]);
    CHECK(read(p[0], buf, sizeof buf) == 0);
    close(p[0]);

    /* A cycle: each socket of a pair sent over itself (into the other's queue), with a pipe end
     * beside it. Closing both leaves only the cycle; the collector releases it. */
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    REQUIRE(pipe(p) == 0);
    int a3[2] = {sv[0], p[1]};
    CHECK(send_fds(sv[0], a3, 2, "c") == 1);
    CHECK(send_fds(sv[1], &sv[1], 1, "d") == 1);
    close(p[1]);
    close(sv[0]);
    close(sv[1]);
    /* Linux collects from a work queue, scheduled when a socket with files in flight
     * closes: if the end of file is not there yet, make such a close again (a new garbage
     * pair), at most 20 times a second apart. */
    int eof = 0;
    for (int i = 0; i < 20 && !eof; i++) {
        struct pollfd pf = {.fd = p[0], .events = POLLIN};
        if (poll(&pf, 1, 1000) == 1) {
            eof = read(p[0], buf, sizeof buf) == 0;
            break;
        }
        int g[2];
        if (socketpair(AF_UNIX, SOCK_DGRAM, 0, g) == 0) {
            send_fds(g[0], &g[1], 1, "g");
            close(g[0]);
            close(g[1]);
        }
    }
    CHECK(eof);
    close(p[0]);

    /* EBADF for a bad descriptor in SCM_RIGHTS. */
    REQUIRE(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0);
    int bad = 999;
    CHECK(send_fds(sv[0], &bad, 1, "b") == -1 && errno == EBADF);
    close(sv[0]);
    close(sv[1]);
}

static void test_credentials(void)
{
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0);
    int on = 1;
    CHECK(setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof on) == 0);
    int v = 0;
    socklen_t vl = sizeof v;
    CHECK(getsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &v, &vl) == 0 && v == 1);
    CHECK(send(sv[0], "c", 1, 0) == 1);
    char buf[4], ctl[CMSG_SPACE(sizeof(struct ucred))];
    struct iovec iov = {buf, sizeof buf};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
    CHECK(recvmsg(sv[1], &mh, 0) == 1);
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    struct ucred u = {0};
    CHECK(cm && cm->cmsg_type == SCM_CREDENTIALS && cm->cmsg_len == CMSG_LEN(sizeof u));
    if (cm)
        memcpy(&u, CMSG_DATA(cm), sizeof u);
    CHECK(u.pid == getpid() && u.uid == geteuid() && u.gid == getegid());

    /* Credentials the sender states: its own are fine, a stranger's pid is EPERM (not as root
     * with CAP_SYS_ADMIN, so only when not root). */
    char sctl[CMSG_SPACE(sizeof(struct ucred))];
    memset(sctl, 0, sizeof sctl);
    struct msghdr sm = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = sctl, .msg_controllen = sizeof sctl};
    cm = CMSG_FIRSTHDR(&sm);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_CREDENTIALS;
    cm->cmsg_len = CMSG_LEN(sizeof u);
    u.pid = getpid();
    u.uid = getuid();
    u.gid = getgid();
    memcpy(CMSG_DATA(cm), &u, sizeof u);
    iov.iov_len = 1;
    CHECK(sendmsg(sv[0], &sm, 0) == 1);
    CHECK(recv(sv[1], buf, sizeof buf, 0) == 1);
    /* Another process's pid without CAP_SYS_ADMIN: EPERM. */
    pid_t pid = fork();
    if (pid == 0) {
        if (getuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
            _exit(10);
        struct ucred o = {.pid = getppid(), .uid = getuid(), .gid = getgid()};
        memcpy(CMSG_DATA(CMSG_FIRSTHDR(&sm)), &o, sizeof o);
        _exit(sendmsg(sv[0], &sm, 0) == -1 && errno == EPERM ? 0 : 1);
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(sv[0]);
    close(sv[1]);

    /* A socketpair's SO_PEERCRED is the creator's. */
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    struct ucred pc;
    socklen_t pcl = sizeof pc;
    CHECK(getsockopt(sv[0], SOL_SOCKET, SO_PEERCRED, &pc, &pcl) == 0 && pc.pid == getpid() && pc.uid == geteuid() &&
          pc.gid == getegid());
    /* A stream receive with SO_PASSCRED stops where the sender's credentials change. */
    CHECK(setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof on) == 0);
    CHECK(write(sv[0], "a", 1) == 1);
    pid = fork();
    if (pid == 0)
        _exit(write(sv[0], "b", 1) == 1 ? 0 : 1);
    CHECK(waitpid(pid, &st, 0) == pid && st == 0);
    char two[4];
    struct iovec iov2 = {two, sizeof two};
    struct msghdr m2 = {.msg_iov = &iov2, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
    CHECK(recvmsg(sv[1], &m2, 0) == 1 && two[0] == 'a');
    cm = CMSG_FIRSTHDR(&m2);
    struct ucred got = {0};
    if (cm && cm->cmsg_type == SCM_CREDENTIALS)
        memcpy(&got, CMSG_DATA(cm), sizeof got);
    CHECK(got.pid == getpid());
    m2.msg_controllen = sizeof ctl;
    CHECK(recvmsg(sv[1], &m2, 0) == 1 && two[0] == 'b');
    cm = CMSG_FIRSTHDR(&m2);
    got.pid = 0;
    if (cm && cm->cmsg_type == SCM_CREDENTIALS)
        memcpy(&got, CMSG_DATA(cm), sizeof got);
    CHECK(got.pid == pid);
    close(sv[0]);
    close(sv[1]);

    /* Buffer sizes: set values are doubled. */
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    int sz = 8192;
    CHECK(setsockopt(s, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz) == 0);
    vl = sizeof v;
    CHECK(getsockopt(s, SOL_SOCKET, SO_SNDBUF, &v, &vl) == 0 && v == 16384);
    CHECK(setsockopt(s, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz) == 0);
    vl = sizeof v;
    CHECK(getsockopt(s, SOL_SOCKET, SO_RCVBUF, &v, &vl) == 0 && v == 16384);
    CHECK(getsockopt(s, SOL_SOCKET, 9999, &v, &vl) == -1 && errno == ENOPROTOOPT);
    close(s);
    CHECK(socket(AF_UNIX, 77, 0) == -1 && errno == EINVAL);
    CHECK(socket(AF_UNIX, SOCK_STREAM, 9) == -1 && errno == EPROTONOSUPPORT);
    CHECK(getsockopt(0, SOL_SOCKET, SO_TYPE, &v, &vl) == -1 && errno == ENOTSOCK);
}

static void test_select_and_blocking(void)
{
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    fd_set r;
    FD_ZERO(&r);
    FD_SET(sv[1], &r);
    struct timeval tv = {0, 0};
    CHECK(select(sv[1] + 1, &r, NULL, NULL, &tv) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        usleep(50000);
        write(sv[0], "z", 1);
        _exit(0);
    }
    FD_ZERO(&r);
    FD_SET(sv[1], &r);
    CHECK(select(sv[1] + 1, &r, NULL, NULL, NULL) == 1 && FD_ISSET(sv[1], &r));
    char c;
    CHECK(read(sv[1], &c, 1) == 1 && c == 'z');
    int st;
    waitpid(pid, &st, 0);
    /* A receive timeout gives EAGAIN. */
    struct timeval to = {0, 50000};
    CHECK(setsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &to, sizeof to) == 0);
    CHECK(recv(sv[1], &c, 1, 0) == -1 && errno == EAGAIN);
    close(sv[0]);
    close(sv[1]);

    /* A blocking accept woken by a child's connect. */
    struct sockaddr_un a;
    socklen_t len = mkaddr(&a, P("acc"));
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(bind(l, (struct sockaddr *)&a, len) == 0 && listen(l, 4) == 0);
    pid = fork();
    if (pid == 0) {
        usleep(50000);
        int c2 = socket(AF_UNIX, SOCK_STREAM, 0);
        if (connect(c2, (struct sockaddr *)&a, len) != 0)
            _exit(1);
        write(c2, "hi", 2);
        _exit(0);
    }
    int s = accept(l, NULL, NULL);
    char b2[4];
    CHECK(s >= 0 && read(s, b2, sizeof b2) == 2);
    CHECK(waitpid(pid, &st, 0) == pid && st == 0);
    CHECK(read(s, b2, sizeof b2) == 0);
    close(s);
    close(l);
}

int main(int argc, char **argv)
{
    vktest_reset_signals();
    /* The directory for path names: /tmp, or the one given (an ext2 directory). */
    snprintf(tmpdir, sizeof tmpdir, "%s/t_unix.%d", argc > 1 ? argv[1] : "/tmp", (int)getpid());
    if (mkdir(tmpdir, 0777) != 0) {
        vktest_print("cannot make %s\n", tmpdir);
        return 1;
    }
    chmod(tmpdir, 0777);
    test_stream_pair();
    test_stream_edges();
    test_dgram_pair();
    test_seqpacket_pair();
    test_path_names();
    test_abstract();
    test_rights();
    test_credentials();
    test_select_and_blocking();
    const char *names[] = {"srv", "small", "plain", "private", "listed", "acc"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        unlink(P(names[i]));
    rmdir(tmpdir);
    vktest_done();
}
