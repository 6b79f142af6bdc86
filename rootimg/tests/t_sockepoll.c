/*
 * t_sockepoll — sockets in epoll(7): readiness as poll(2) reports it, and wake-ups of a
 * thread asleep in epoll_wait by what happens on a socket.
 *
 * Covers: an AF_UNIX stream pair (EPOLLOUT alone when idle; EPOLLIN once the peer writes;
 * EPOLLRDHUP|EPOLLIN after the peer's shutdown(SHUT_WR); EPOLLHUP once the peer is closed);
 * edge-triggered EPOLLIN reported once per write; a datagram socket; TCP over 127.0.0.1
 * (a listener's EPOLLIN when a client connects, a non-blocking connect's EPOLLOUT, data from
 * a forked peer waking an epoll_wait with no timeout); UDP (EPOLLIN for a datagram). Each
 * epoll answer is compared with poll(2)'s for the same socket.
 */
#include "vktest.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>

/* The events epoll reports for fd alone in a fresh instance (timeout ms), 0 for none. */
static unsigned events_of(int fd, unsigned want, int timeout)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = want, .data.fd = fd};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
        return 0xdead;
    struct epoll_event out;
    int n = epoll_wait(ep, &out, 1, timeout);
    close(ep);
    return n == 1 ? out.events : 0;
}

/* poll(2)'s revents for fd, mapped to epoll's bits (they are the same numbers). */
static unsigned poll_of(int fd, short want)
{
    struct pollfd p = {.fd = fd, .events = want};
    return poll(&p, 1, 0) == 1 ? (unsigned)p.revents : 0;
}

static void unix_stream(void)
{
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    unsigned all = EPOLLIN | EPOLLOUT | EPOLLRDHUP;
    CHECK(events_of(sv[0], all, 0) == EPOLLOUT);
    CHECK(events_of(sv[0], EPOLLIN, 0) == 0);
    CHECK(write(sv[1], "ab", 2) == 2);
    CHECK(events_of(sv[0], all, 0) == (EPOLLIN | EPOLLOUT));
    CHECK(events_of(sv[0], all, 0) == poll_of(sv[0], POLLIN | POLLOUT | POLLRDHUP));

    /* Edge-triggered: one report per arrival, none while nothing new comes. */
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.u32 = 7}, out;
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, sv[0], &ev) == 0);
    CHECK(epoll_wait(ep, &out, 1, 0) == 1 && out.data.u32 == 7 && (out.events & EPOLLIN));
    CHECK(epoll_wait(ep, &out, 1, 0) == 0);
    CHECK(write(sv[1], "c", 1) == 1);
    CHECK(epoll_wait(ep, &out, 1, 0) == 1 && (out.events & EPOLLIN));
    close(ep);

    char buf[8];
    CHECK(read(sv[0], buf, sizeof buf) == 3);
    CHECK(shutdown(sv[1], SHUT_WR) == 0);
    unsigned e = events_of(sv[0], all, 0);
    CHECK(e == (EPOLLIN | EPOLLOUT | EPOLLRDHUP));
    CHECK(e == poll_of(sv[0], POLLIN | POLLOUT | POLLRDHUP));
    close(sv[1]);
    e = events_of(sv[0], all, 0);
    CHECK((e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) == (EPOLLIN | EPOLLRDHUP | EPOLLHUP));
    CHECK(e == poll_of(sv[0], POLLIN | POLLOUT | POLLRDHUP));
    close(sv[0]);
}

static void unix_dgram(void)
{
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0);
    CHECK(events_of(sv[0], EPOLLIN, 0) == 0);
    CHECK(send(sv[1], "x", 1, 0) == 1);
    CHECK(events_of(sv[0], EPOLLIN | EPOLLOUT, 0) == (EPOLLIN | EPOLLOUT));
    close(sv[0]);
    close(sv[1]);
}

static struct sockaddr_in lo_any(void)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static void tcp(void)
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = lo_any();
    socklen_t alen = sizeof a;
    CHECK(l >= 0 && bind(l, (struct sockaddr *)&a, sizeof a) == 0 && listen(l, 4) == 0);
    CHECK(getsockname(l, (struct sockaddr *)&a, &alen) == 0);
    CHECK(events_of(l, EPOLLIN, 0) == 0);

    int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int r = connect(c, (struct sockaddr *)&a, sizeof a);
    CHECK(r == 0 || errno == EINPROGRESS);
    /* The connection completes while we wait: the listener and the client are woken. */
    CHECK(events_of(l, EPOLLIN, 5000) == EPOLLIN);
    CHECK(events_of(c, EPOLLOUT, 5000) == EPOLLOUT);
    int err = -1;
    socklen_t elen = sizeof err;
    CHECK(getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &elen) == 0 && err == 0);
    int s = accept(l, NULL, NULL);
    CHECK(s >= 0);
    CHECK(events_of(c, EPOLLIN, 0) == 0);

    /* A forked peer writes after we are asleep in epoll_wait with no timeout. */
    pid_t pid = fork();
    if (pid == 0) {
        usleep(100 * 1000);
        _exit(write(s, "ping", 4) == 4 ? 0 : 1);
    }
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = c}, out;
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev) == 0);
    CHECK(epoll_wait(ep, &out, 1, -1) == 1 && out.data.fd == c && out.events == EPOLLIN);
    char buf[8];
    CHECK(read(c, buf, sizeof buf) == 4 && memcmp(buf, "ping", 4) == 0);
    int st = -1;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(epoll_wait(ep, &out, 1, 0) == 0);

    /* The server closes: the client sees end of file and the hang-up of the peer. */
    close(s);
    CHECK(epoll_wait(ep, &out, 1, 5000) == 1 && (out.events & EPOLLIN));
    CHECK(read(c, buf, sizeof buf) == 0);
    CHECK((events_of(c, EPOLLIN | EPOLLRDHUP, 0) & (EPOLLIN | EPOLLRDHUP)) == (EPOLLIN | EPOLLRDHUP));
    close(ep);
    close(c);
    close(l);
}

static void udp(void)
{
    int r = socket(AF_INET, SOCK_DGRAM, 0), s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = lo_any();
    socklen_t alen = sizeof a;
    CHECK(r >= 0 && s >= 0 && bind(r, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK(getsockname(r, (struct sockaddr *)&a, &alen) == 0);
    CHECK(events_of(r, EPOLLIN, 0) == 0);
    CHECK(sendto(s, "d", 1, 0, (struct sockaddr *)&a, sizeof a) == 1);
    CHECK(events_of(r, EPOLLIN, 5000) == EPOLLIN);
    char b;
    CHECK(recv(r, &b, 1, 0) == 1 && b == 'd');
    CHECK(events_of(r, EPOLLIN, 0) == 0);
    close(r);
    close(s);
}

int main(void)
{
    vktest_reset_signals();
    unix_stream();
    unix_dgram();
    tcp();
    udp();
    return vktest_done();
}
