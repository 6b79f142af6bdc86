/*
 * t_inet — TCP and UDP over loopback (127.0.0.1; ::1 where the host has it): ip(7), tcp(7),
 * udp(7).
 *
 * Covers: a 1 MiB TCP transfer from a child with shutdown(SHUT_WR) and EOF, every byte checked;
 * many concurrent connections (echo through forked clients); a non-blocking connect with poll
 * (POLLOUT, SO_ERROR 0); ECONNREFUSED from a closed port; EADDRINUSE from a port in use (and
 * SO_REUSEADDR); getsockname/getpeername with the real ports; a non-blocking accept (EAGAIN);
 * poll on a listener (POLLIN once a client connects); TCP_NODELAY, SO_KEEPALIVE, IP_TTL set and
 * read back; an option outside the list (ENOPROTOOPT); UDP datagram boundaries, MSG_TRUNC,
 * MSG_PEEK, recvfrom's address; a receive timeout (EAGAIN); EPIPE and SIGPIPE (MSG_NOSIGNAL)
 * after shutting down writing (on a reset connection it is not tested: timing); FIONREAD; POLLIN|POLLOUT|POLLRDHUP once the peer shut
 * its writing side; SO_REUSEPORT, SO_LINGER, TCP_KEEPIDLE, SO_SNDTIMEO read back; EACCES for a
 * port below 1024 without CAP_NET_BIND_SERVICE (a child that is not root).
 */
#include "vktest.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

static struct sockaddr_in lo(unsigned short port)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

/* A TCP listener on 127.0.0.1 and a free port; its port in *port. */
static int listener(unsigned short *port)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = lo(0);
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0 || listen(s, 64) != 0)
        return -1;
    socklen_t l = sizeof a;
    getsockname(s, (struct sockaddr *)&a, &l);
    *port = ntohs(a.sin_port);
    return s;
}

static unsigned char pattern(size_t i)
{
    return (unsigned char)(i * 13 + i / 509);
}

static void test_transfer(void)
{
    unsigned short port;
    int l = listener(&port);
    REQUIRE(l >= 0 && port != 0);
    pid_t pid = fork();
    if (pid == 0) {
        int c = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = lo(port);
        if (connect(c, (struct sockaddr *)&a, sizeof a) != 0)
            _exit(1);
        static unsigned char big[1 << 20];
        for (size_t i = 0; i < sizeof big; i++)
            big[i] = pattern(i);
        size_t off = 0;
        while (off < sizeof big) {
            ssize_t w = send(c, big + off, sizeof big - off, 0);
            if (w <= 0)
                _exit(2);
            off += (size_t)w;
        }
        shutdown(c, SHUT_WR);
        char ack[8];
        if (recv(c, ack, 2, MSG_WAITALL) != 2 || memcmp(ack, "ok", 2) != 0)
            _exit(3);
        _exit(0);
    }
    struct sockaddr_in peer;
    socklen_t pl = sizeof peer;
    int s = accept(l, (struct sockaddr *)&peer, &pl);
    CHECK(s >= 0 && pl == sizeof peer && peer.sin_family == AF_INET && peer.sin_addr.s_addr == htonl(INADDR_LOOPBACK));
    struct sockaddr_in me;
    socklen_t ml = sizeof me;
    CHECK(getsockname(s, (struct sockaddr *)&me, &ml) == 0 && ntohs(me.sin_port) == port);
    struct sockaddr_in pp;
    socklen_t ppl = sizeof pp;
    CHECK(getpeername(s, (struct sockaddr *)&pp, &ppl) == 0 && pp.sin_port == peer.sin_port);
    size_t got = 0;
    int same = 1;
    static unsigned char buf[65536];
    for (;;) {
        ssize_t r = recv(s, buf, sizeof buf, 0);
        if (r <= 0)
            break;
        for (ssize_t i = 0; i < r; i++)
            if (buf[i] != pattern(got + (size_t)i))
                same = 0;
        got += (size_t)r;
    }
    CHECKF(got == (1u << 20) && same, "got %zu same %d", got, same);
    CHECK(send(s, "ok", 2, 0) == 2);
    int st;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(s);
    close(l);
}

static void test_many(void)
{
    enum { N = 64 };
    unsigned short port;
    int l = listener(&port);
    REQUIRE(l >= 0);
    pid_t kids[N];
    for (int i = 0; i < N; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            int c = socket(AF_INET, SOCK_STREAM, 0);
            struct sockaddr_in a = lo(port);
            if (connect(c, (struct sockaddr *)&a, sizeof a) != 0)
                _exit(1);
            char msg[16], back[16];
            int n = snprintf(msg, sizeof msg, "client %d", i);
            if (send(c, msg, (size_t)n, 0) != n)
                _exit(2);
            if (recv(c, back, (size_t)n, MSG_WAITALL) != n || memcmp(back, msg, (size_t)n) != 0)
                _exit(3);
            _exit(0);
        }
    }
    /* Accept all, then echo each (the clients wait for their echo). */
    int conns[N], okc = 0;
    for (int i = 0; i < N; i++) {
        conns[i] = accept(l, NULL, NULL);
        okc += conns[i] >= 0;
    }
    CHECK(okc == N);
    for (int i = 0; i < N; i++) {
        char b[16];
        ssize_t r = recv(conns[i], b, sizeof b, 0);
        if (r > 0)
            send(conns[i], b, (size_t)r, 0);
        close(conns[i]);
    }
    int good = 0;
    for (int i = 0; i < N; i++) {
        int st;
        if (waitpid(kids[i], &st, 0) == kids[i] && WIFEXITED(st) && WEXITSTATUS(st) == 0)
            good++;
    }
    CHECKF(good == N, "%d of %d clients done", good, N);
    close(l);
}

static void test_nonblocking_and_errors(void)
{
    unsigned short port;
    int l = listener(&port);
    REQUIRE(l >= 0);
    fcntl(l, F_SETFL, O_NONBLOCK);
    CHECK(accept(l, NULL, NULL) == -1 && errno == EAGAIN);
    struct pollfd pl = {.fd = l, .events = POLLIN};
    CHECK(poll(&pl, 1, 0) == 0);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = lo(port);
    int r = connect(c, (struct sockaddr *)&a, sizeof a);
    CHECK(r == 0 || errno == EINPROGRESS);
    struct pollfd p = {.fd = c, .events = POLLOUT};
    CHECK(poll(&p, 1, 5000) == 1 && (p.revents & POLLOUT));
    int err = -1;
    socklen_t el = sizeof err;
    CHECK(getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err == 0);
    CHECK(poll(&pl, 1, 5000) == 1 && (pl.revents & POLLIN));
    int s = accept(l, NULL, NULL);
    CHECK(s >= 0);
    char b[8];
    CHECK(recv(c, b, sizeof b, 0) == -1 && errno == EAGAIN);
    CHECK(send(s, "abc", 3, 0) == 3);
    struct pollfd pc = {.fd = c, .events = POLLIN};
    CHECK(poll(&pc, 1, 5000) == 1);
    int n = -1;
    CHECK(ioctl(c, FIONREAD, &n) == 0 && n == 3);
    CHECK(recv(c, b, sizeof b, 0) == 3);
    /* The peer shut its writing side: readable (EOF), POLLRDHUP, still writable. */
    CHECK(shutdown(s, SHUT_WR) == 0);
    pc.events = POLLIN | POLLOUT | POLLRDHUP;
    CHECK(poll(&pc, 1, 5000) == 1 && pc.revents == (POLLIN | POLLOUT | POLLRDHUP));
    CHECK(recv(c, b, sizeof b, 0) == 0);
    CHECK(send(c, "up", 2, 0) == 2);
    /* (An accepted socket does not inherit the listener's O_NONBLOCK: this waits.) */
    CHECK(recv(s, b, 2, MSG_WAITALL) == 2 && memcmp(b, "up", 2) == 0);
    pc.events = POLLIN;
    close(s);
    /* The peer closed: EOF. */
    CHECK(poll(&pc, 1, 5000) == 1 && (pc.revents & POLLIN));
    CHECK(recv(c, b, sizeof b, 0) == 0);
    close(c);

    /* Options. */
    int one = 1, v = 0;
    socklen_t vl = sizeof v;
    c = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0);
    CHECK(getsockopt(c, IPPROTO_TCP, TCP_NODELAY, &v, &vl) == 0 && v == 1);
    CHECK(setsockopt(c, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one) == 0);
    vl = sizeof v;
    CHECK(getsockopt(c, SOL_SOCKET, SO_KEEPALIVE, &v, &vl) == 0 && v == 1);
    int ttl = 33;
    CHECK(setsockopt(c, IPPROTO_IP, IP_TTL, &ttl, sizeof ttl) == 0);
    vl = sizeof v;
    CHECK(getsockopt(c, IPPROTO_IP, IP_TTL, &v, &vl) == 0 && v == 33);
    vl = sizeof v;
    CHECK(getsockopt(c, SOL_SOCKET, SO_TYPE, &v, &vl) == 0 && v == SOCK_STREAM);
    vl = sizeof v;
    CHECK(getsockopt(c, SOL_SOCKET, SO_DOMAIN, &v, &vl) == 0 && v == AF_INET);
    vl = sizeof v;
    CHECK(getsockopt(c, SOL_SOCKET, SO_PROTOCOL, &v, &vl) == 0 && v == IPPROTO_TCP);
    CHECK(getsockopt(c, SOL_SOCKET, 9999, &v, &vl) == -1 && errno == ENOPROTOOPT);
    CHECK(setsockopt(c, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) == 0);
    vl = sizeof v;
    CHECK(getsockopt(c, SOL_SOCKET, SO_REUSEPORT, &v, &vl) == 0 && v == 1);
    struct linger lg = {1, 5}, lg2 = {0, 0};
    CHECK(setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0);
    socklen_t lgl = sizeof lg2;
    CHECK(getsockopt(c, SOL_SOCKET, SO_LINGER, &lg2, &lgl) == 0 && lg2.l_onoff == 1 && lg2.l_linger == 5);
    int idle = 77;
    CHECK(setsockopt(c, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle) == 0);
    vl = sizeof v;
    CHECK(getsockopt(c, IPPROTO_TCP, TCP_KEEPIDLE, &v, &vl) == 0 && v == 77);
    struct timeval tv = {2, 500000}, tv2 = {0, 0};
    CHECK(setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) == 0);
    socklen_t tvl = sizeof tv2;
    CHECK(getsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv2, &tvl) == 0 && tv2.tv_sec == 2 && tv2.tv_usec == 500000);
    close(c);

    /* Writing after shutting down writing: EPIPE, and SIGPIPE unless MSG_NOSIGNAL. */
    c = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(connect(c, (struct sockaddr *)&a, sizeof a) == 0);
    /* A blocking connect leaves the socket connected: connecting again is EISCONN. */
    errno = 0;
    CHECK(connect(c, (struct sockaddr *)&a, sizeof a) == -1 && errno == EISCONN);
    /* SIOCATMARK: no urgent data, so not at the mark; a bad pointer is EFAULT; UDP has none. */
    int mark = -1;
    CHECK(ioctl(c, SIOCATMARK, &mark) == 0 && mark == 0);
    errno = 0;
    CHECK(ioctl(c, SIOCATMARK, (void *)8) == -1 && errno == EFAULT);
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    errno = 0;
    CHECK(ioctl(u, SIOCATMARK, &mark) == -1 && errno == ENOTTY);
    close(u);
    struct pollfd lp = {.fd = l, .events = POLLIN};
    CHECK(poll(&lp, 1, 5000) == 1);
    int acc = accept(l, NULL, NULL);
    CHECK(acc >= 0);
    CHECK(shutdown(c, SHUT_WR) == 0);
    CHECK(send(c, "x", 1, MSG_NOSIGNAL) == -1 && errno == EPIPE);
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGPIPE, SIG_DFL);
        write(c, "x", 1);
        _exit(4);
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid && WIFSIGNALED(st) && WTERMSIG(st) == SIGPIPE);
    close(c);
    if (acc >= 0)
        close(acc);

    /* A port in use; a closed port. */
    int b2 = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(bind(b2, (struct sockaddr *)&a, sizeof a) == -1 && errno == EADDRINUSE);
    close(b2);
    close(l);
    /* The closed port: one bound and not listening, held for the checks, so that no other
     * program on the host takes it meanwhile (a port just closed may be anyone's). */
    int hold = socket(AF_INET, SOCK_STREAM, 0);
    a = lo(0);
    socklen_t hl = sizeof a;
    CHECK(hold >= 0 && bind(hold, (struct sockaddr *)&a, sizeof a) == 0 &&
          getsockname(hold, (struct sockaddr *)&a, &hl) == 0);
    c = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(connect(c, (struct sockaddr *)&a, sizeof a) == -1 && errno == ECONNREFUSED);
    close(c);
    /* Without waiting: refused at once, or in progress and then POLLOUT|POLLERR|POLLHUP with
     * SO_ERROR ECONNREFUSED. */
    c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    r = connect(c, (struct sockaddr *)&a, sizeof a);
    int cerr = errno;
    if (r == -1 && cerr == EINPROGRESS) {
        struct pollfd cp = {.fd = c, .events = POLLOUT};
        CHECK(poll(&cp, 1, 5000) == 1 && (cp.revents & (POLLOUT | POLLERR)) == (POLLOUT | POLLERR));
        err = -1;
        el = sizeof err;
        CHECK(getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err == ECONNREFUSED);
    } else {
        CHECKF(r == -1 && cerr == ECONNREFUSED, "r %d errno %d", r, cerr);
        err = -1;
        el = sizeof err;
        CHECK(getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err == 0); /* reported */
    }
    close(c);
    close(hold);
    c = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in6 six = {.sin6_family = AF_INET6};
    CHECK(bind(c, (struct sockaddr *)&six, sizeof six) == -1 && (errno == EAFNOSUPPORT || errno == EINVAL));
    close(c);
}

/* Ports below 1024 need CAP_NET_BIND_SERVICE: a process that is not root gets EACCES (ip(7)),
 * unless net.ipv4.ip_unprivileged_port_start says otherwise. */
static void test_privileged_port(void)
{
    int start = 1024;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_unprivileged_port_start", "r");
    if (f) {
        if (fscanf(f, "%d", &start) != 1)
            start = 1024;
        fclose(f);
    }
    const unsigned short port = 1023;
    pid_t pid = fork();
    if (pid == 0) {
        if (getuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
            _exit(10);
        int fails = 0;
        int types[2] = {SOCK_STREAM, SOCK_DGRAM};
        for (int i = 0; i < 2; i++) {
            int s = socket(AF_INET, types[i], 0);
            struct sockaddr_in a = lo(port);
            int r = bind(s, (struct sockaddr *)&a, sizeof a);
            if (port < start ? !(r == -1 && errno == EACCES) : r != 0)
                fails++;
            close(s);
        }
        /* A port of 0 or above the line is fine. */
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = lo(0);
        if (bind(s, (struct sockaddr *)&a, sizeof a) != 0)
            fails++;
        close(s);
        _exit(fails);
    }
    int st;
    CHECKF(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x", st);
}

static void test_udp(void)
{
    int a = socket(AF_INET, SOCK_DGRAM, 0), b = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sa = lo(0), sb = lo(0);
    REQUIRE(bind(a, (struct sockaddr *)&sa, sizeof sa) == 0 && bind(b, (struct sockaddr *)&sb, sizeof sb) == 0);
    socklen_t l = sizeof sa;
    getsockname(a, (struct sockaddr *)&sa, &l);
    l = sizeof sb;
    getsockname(b, (struct sockaddr *)&sb, &l);
    CHECK(sendto(a, "one", 3, 0, (struct sockaddr *)&sb, sizeof sb) == 3);
    CHECK(sendto(a, "second", 6, 0, (struct sockaddr *)&sb, sizeof sb) == 6);
    CHECK(sendto(a, "third!!", 7, 0, (struct sockaddr *)&sb, sizeof sb) == 7);
    char buf[32];
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    CHECK(recvfrom(b, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl) == 3 && fl == sizeof from && from.sin_port == sa.sin_port);
    CHECK(recv(b, buf, sizeof buf, MSG_PEEK) == 6);
    CHECK(recv(b, buf, 2, MSG_TRUNC) == 6 && memcmp(buf, "se", 2) == 0);
    struct iovec iov = {buf, 3};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    CHECK(recvmsg(b, &mh, 0) == 3 && (mh.msg_flags & MSG_TRUNC));
    CHECK(recv(b, buf, sizeof buf, MSG_DONTWAIT) == -1 && errno == EAGAIN);
    struct timeval tv = {0, 50000};
    CHECK(setsockopt(b, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0);
    CHECK(recv(b, buf, sizeof buf, 0) == -1 && errno == EAGAIN);
    /* Echo through a child, blocking on both sides. */
    pid_t pid = fork();
    if (pid == 0) {
        struct sockaddr_in f;
        socklen_t fl2 = sizeof f;
        tv.tv_usec = 0;
        setsockopt(b, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ssize_t r = recvfrom(b, buf, sizeof buf, 0, (struct sockaddr *)&f, &fl2);
        if (r <= 0 || sendto(b, buf, (size_t)r, 0, (struct sockaddr *)&f, fl2) != r)
            _exit(1);
        _exit(0);
    }
    CHECK(connect(a, (struct sockaddr *)&sb, sizeof sb) == 0);
    CHECK(send(a, "echo", 4, 0) == 4);
    CHECK(recv(a, buf, sizeof buf, 0) == 4 && memcmp(buf, "echo", 4) == 0);
    int st;
    CHECK(waitpid(pid, &st, 0) == pid && st == 0);
    /* A connected socket hears only its peer: a stranger's datagram is dropped. */
    int x = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(sendto(x, "stranger", 8, 0, (struct sockaddr *)&sa, sizeof sa) == 8);
    CHECK(sendto(b, "peer", 4, 0, (struct sockaddr *)&sa, sizeof sa) == 4);
    CHECK(recv(a, buf, sizeof buf, 0) == 4 && memcmp(buf, "peer", 4) == 0);
    struct sockaddr_in pa;
    socklen_t pal = sizeof pa;
    CHECK(getpeername(a, (struct sockaddr *)&pa, &pal) == 0 && pa.sin_port == sb.sin_port);
    close(x);
    close(b);
    /* Nobody on the port any more: the send goes out, the ICMP error comes back to the
     * connected socket as ECONNREFUSED from the next receive. (The host rate-limits ICMP
     * errors: a lost one is a timeout, and the datagram is sent again.) */
    tv.tv_sec = 0;
    tv.tv_usec = 200000;
    CHECK(setsockopt(a, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0);
    int sends = 0, refused = 0;
    for (int i = 0; i < 50 && !refused; i++) {
        sends += send(a, "gone", 4, 0) == 4;
        refused = recv(a, buf, sizeof buf, 0) == -1 && errno == ECONNREFUSED;
    }
    CHECKF(refused && sends > 0, "refused %d sends %d", refused, sends);
    /* Still connected: the next datagram goes out again. */
    CHECK(send(a, "again", 5, 0) == 5);
    close(a);
}

static void test_ipv6(void)
{
    int s = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0) {
        /* No IPv6 loopback on this host: the same natively and under vk. */
        if (s >= 0)
            close(s);
        return;
    }
    int one = 1, v = 0;
    socklen_t vl = sizeof v;
    CHECK(setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) == 0 || errno == EINVAL);
    CHECK(getsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &v, &vl) == 0);
    CHECK(listen(s, 4) == 0);
    socklen_t l = sizeof a;
    CHECK(getsockname(s, (struct sockaddr *)&a, &l) == 0 && l == sizeof a && a.sin6_port != 0);
    int c = socket(AF_INET6, SOCK_STREAM, 0);
    CHECK(connect(c, (struct sockaddr *)&a, sizeof a) == 0);
    int t = accept(s, NULL, NULL);
    CHECK(t >= 0 && send(c, "v6", 2, 0) == 2);
    char b[4];
    CHECK(recv(t, b, sizeof b, 0) == 2);
    close(t);
    close(c);
    close(s);
}

/* recv's corner cases on a connected TCP socket (the LTP's recv01, recvfrom01, recvmsg01):
 * MSG_ERRQUEUE with nothing queued is EAGAIN at once; a negative address length is EINVAL
 * for recvfrom and recvmsg. And socket(2)'s and socketpair(2)'s protocol checks. */
static void test_recv_corners(void)
{
    unsigned short port;
    int l = listener(&port);
    REQUIRE(l >= 0);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = lo(port);
    REQUIRE(c >= 0 && connect(c, (struct sockaddr *)&a, sizeof a) == 0);
    int d = accept(l, NULL, NULL);
    REQUIRE(d >= 0);
    char buf[16];
    errno = 0;
    CHECK(recv(d, buf, sizeof buf, MSG_ERRQUEUE) == -1 && errno == EAGAIN);
    CHECK(send(c, "abc", 3, 0) == 3);
    struct sockaddr_in from;
    socklen_t bad = (socklen_t)-1;
    errno = 0;
    CHECK(recvfrom(d, buf, sizeof buf, 0, (struct sockaddr *)&from, &bad) == -1 && errno == EINVAL);
    CHECK(send(c, "def", 3, 0) == 3);
    struct iovec iov = { buf, sizeof buf };
    struct msghdr m = { .msg_name = &from, .msg_namelen = -1, .msg_iov = &iov, .msg_iovlen = 1 };
    errno = 0;
    CHECK(recvmsg(d, &m, 0) == -1 && errno == EINVAL);
    close(c);
    close(d);
    close(l);

    /* socket(2)'s protocol checks, which socketpair(2) makes before its EOPNOTSUPP. */
    int sv[2];
    errno = 0;
    CHECK(socket(AF_INET, SOCK_RAW, 0) == -1 && errno == EPROTONOSUPPORT);
    errno = 0;
    CHECK(socket(AF_INET, SOCK_STREAM, IPPROTO_UDP) == -1 && errno == EPROTONOSUPPORT);
    errno = 0;
    CHECK(socketpair(AF_INET, SOCK_DGRAM, IPPROTO_TCP, sv) == -1 && errno == EPROTONOSUPPORT);
    errno = 0;
    CHECK(socketpair(AF_INET, SOCK_RAW, 0, sv) == -1 && errno == EPROTONOSUPPORT);
    errno = 0;
    CHECK(socketpair(AF_INET, SOCK_STREAM, 0, sv) == -1 && errno == EOPNOTSUPP);
}

/* Argument errors in Linux's order: bind's length then family (EINVAL, EAFNOSUPPORT);
 * getsockname's address pointer (EFAULT); getsockopt at a level the socket does not have
 * (EOPNOTSUPP, ip_getsockopt) against an unknown option at one it has (ENOPROTOOPT). */
#include <sys/un.h>
static void test_argument_errors(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(s >= 0);
    struct sockaddr_un un;
    memset(&un, 0, sizeof un);
    un.sun_family = AF_UNIX;
    strcpy(un.sun_path, ".");
    errno = 0;
    CHECK(bind(s, (struct sockaddr *)&un, sizeof un) == -1 && errno == EAFNOSUPPORT);
    errno = 0;
    CHECK(bind(s, (struct sockaddr *)&un, 3) == -1 && errno == EINVAL);
    struct sockaddr_in a = lo(0);
    CHECK(bind(s, (struct sockaddr *)&a, sizeof a) == 0);
    socklen_t len = sizeof a;
    errno = 0;
    CHECK(getsockname(s, NULL, &len) == -1 && errno == EFAULT);
    len = 0;
    CHECK(getsockname(s, NULL, &len) == 0 && len == sizeof a);
    int v = 0;
    socklen_t vl = sizeof v;
    errno = 0;
    CHECK(getsockopt(s, 500, SO_OOBINLINE, &v, &vl) == -1 && errno == EOPNOTSUPP);
    errno = 0;
    CHECK(getsockopt(s, IPPROTO_UDP, SO_OOBINLINE, &v, &vl) == -1 && errno == EOPNOTSUPP);
    errno = 0;
    CHECK(getsockopt(s, IPPROTO_TCP, 9999, &v, &vl) == -1 && errno == ENOPROTOOPT);
    close(s);
}

int main(void)
{
    vktest_reset_signals();
    test_recv_corners();
    test_argument_errors();
    test_transfer();
    test_many();
    test_nonblocking_and_errors();
    test_privileged_port();
    test_udp();
    test_ipv6();
    vktest_done();
}
