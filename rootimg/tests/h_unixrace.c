/*
 * h_unixrace — a helper for tests/tests/net.rs: descriptors in flight under races. Threads
 * send random sockets of eight pairs (and a pipe's write end) over each other, receive and close them, and make pairs that hold each other,
 * all at once. When every socket is closed, every copy of the pipe's write end in flight —
 * in cycles too — must be released: the read end then sees EOF (no leak). Prints
 * "unixrace: N threads, released" (exit 0) or "..., leaked".
 *
 * Under vk only: natively, on the Linux 6.18 host this was written on, the pipe end stayed in
 * flight (the host's collector had not found these cycles after many seconds and further
 * closes); vk's collector runs every second while anything is in flight.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int race_sv[8][2];
static int race_pw;

static void race_send(int s, int fd)
{
    char c[CMSG_SPACE(sizeof(int))];
    memset(c, 0, sizeof c);
    struct iovec io = {"x", 1};
    struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = c, .msg_controllen = sizeof c};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &fd, sizeof fd);
    sendmsg(s, &m, MSG_DONTWAIT);
}

static void race_recv(int s)
{
    char b[4], c[CMSG_SPACE(sizeof(int) * 4)];
    struct iovec io = {b, sizeof b};
    struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = c, .msg_controllen = sizeof c};
    if (recvmsg(s, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) <= 0)
        return;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
            continue;
        int n = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        for (int i = 0; i < n; i++) {
            int f;
            memcpy(&f, CMSG_DATA(cm) + i * sizeof(int), sizeof f);
            close(f);
        }
    }
}

static void *race_worker(void *arg)
{
    unsigned seed = (unsigned)(long)arg;
    for (int i = 0; i < 1500; i++) {
        int k = rand_r(&seed) % 8, j = rand_r(&seed) % 2;
        switch (rand_r(&seed) % 6) {
        case 0:
            race_send(race_sv[k][j], race_pw);
            break;
        case 1:
            race_send(race_sv[k][j], race_sv[rand_r(&seed) % 8][rand_r(&seed) % 2]);
            break;
        case 2:
        case 3:
            race_recv(race_sv[k][j]);
            break;
        case 4: {
            int p[2];
            if (socketpair(AF_UNIX, rand_r(&seed) % 2 ? SOCK_STREAM : SOCK_DGRAM, 0, p) == 0) {
                race_send(p[0], p[1]);
                race_send(p[1], p[0]);
                race_send(p[0], race_pw);
                close(p[0]);
                close(p[1]);
            }
            break;
        }
        default: {
            struct pollfd pf = {.fd = race_sv[k][j], .events = POLLIN | POLLOUT};
            poll(&pf, 1, 0);
        }
        }
    }
    return NULL;
}

int main(void)
{
    int types[3] = {SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET};
    for (int i = 0; i < 8; i++)
        if (socketpair(AF_UNIX, types[i % 3], 0, race_sv[i]) != 0)
            return 2;
    int p[2];
    if (pipe(p) != 0)
        return 2;
    race_pw = p[1];
    pthread_t t[4];
    int started = 0;
    for (long i = 0; i < 4; i++)
        started += pthread_create(&t[i], NULL, race_worker, (void *)(i + 1)) == 0;
    for (int i = 0; i < started; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 8; i++) {
        close(race_sv[i][0]);
        close(race_sv[i][1]);
    }
    close(p[1]);
    struct pollfd pf = {.fd = p[0], .events = POLLIN};
    char b;
    int eof = poll(&pf, 1, 30000) == 1 && read(p[0], &b, 1) == 0;
    printf("unixrace: %d threads, %s\n", started, eof ? "released" : "leaked");
    return eof ? 0 : 1;
}

