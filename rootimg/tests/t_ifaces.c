/*
 * t_ifaces — network interfaces as programs ask for them: NETLINK_ROUTE dumps (rtnetlink(7):
 * RTM_GETLINK, RTM_GETADDR, as musl's getifaddrs and `ip addr` send them), the netdevice(7)
 * ioctls (SIOCGIFCONF, SIOCGIFFLAGS, SIOCGIFADDR, SIOCGIFINDEX, SIOCGIFNAME, as busybox
 * ifconfig and if_nametoindex use them), and /proc/net/{dev,tcp,udp}. Under vk these are the
 * host's interfaces (its sockets are the host's), so the checks hold natively and under vk:
 * the loopback interface is there, up, with 127.0.0.1; every interface getifaddrs lists has an
 * index that maps back to its name; a raw RTM_GETLINK dump ends with NLMSG_DONE and carries lo.
 */
#include "vktest.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

/* The netlink definitions (musl-gcc has no kernel headers): linux/netlink.h, rtnetlink.h. */
#define NETLINK_ROUTE 0
#define NLM_F_REQUEST 0x1
#define NLM_F_DUMP 0x300
#define NLMSG_DONE 0x3
#define RTM_NEWLINK 16
#define RTM_GETLINK 18
struct sockaddr_nl {
    unsigned short nl_family;
    unsigned short nl_pad;
    unsigned nl_pid;
    unsigned nl_groups;
};
struct nlmsghdr {
    unsigned nlmsg_len;
    unsigned short nlmsg_type;
    unsigned short nlmsg_flags;
    unsigned nlmsg_seq;
    unsigned nlmsg_pid;
};
struct ifinfomsg {
    unsigned char ifi_family;
    unsigned char ifi_pad;
    unsigned short ifi_type;
    int ifi_index;
    unsigned ifi_flags;
    unsigned ifi_change;
};
#define NLMSG_ALIGN(len) (((len) + 3) & ~3u)
#define NLMSG_HDRLEN ((int)NLMSG_ALIGN(sizeof(struct nlmsghdr)))
#define NLMSG_DATA(h) ((void *)((char *)(h) + NLMSG_HDRLEN))
#define NLMSG_OK(h, len) ((len) >= (int)sizeof(struct nlmsghdr) && (h)->nlmsg_len >= sizeof(struct nlmsghdr) && (h)->nlmsg_len <= (unsigned)(len))
#define NLMSG_NEXT(h, len) ((len) -= NLMSG_ALIGN((h)->nlmsg_len), (struct nlmsghdr *)((char *)(h) + NLMSG_ALIGN((h)->nlmsg_len)))

static void test_getifaddrs(void)
{
    struct ifaddrs *ifa = NULL;
    REQUIRE(getifaddrs(&ifa) == 0);
    int lo_up = 0, lo_v4 = 0, n = 0, mapped = 0;
    for (struct ifaddrs *p = ifa; p; p = p->ifa_next) {
        n++;
        if (strcmp(p->ifa_name, "lo") == 0) {
            if ((p->ifa_flags & IFF_UP) && (p->ifa_flags & IFF_LOOPBACK))
                lo_up = 1;
            if (p->ifa_addr && p->ifa_addr->sa_family == AF_INET &&
                ((struct sockaddr_in *)p->ifa_addr)->sin_addr.s_addr == htonl(INADDR_LOOPBACK))
                lo_v4 = 1;
        }
        unsigned idx = if_nametoindex(p->ifa_name);
        char name[IF_NAMESIZE];
        if (idx > 0 && if_indextoname(idx, name) && strcmp(name, p->ifa_name) == 0)
            mapped++;
    }
    freeifaddrs(ifa);
    CHECK(n > 0);
    CHECK(lo_up);
    CHECK(lo_v4);
    CHECKF(mapped == n, "%d of %d interfaces map to an index and back", mapped, n);
}

static void test_ioctls(void)
{
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    REQUIRE(s >= 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    CHECK(ioctl(s, SIOCGIFFLAGS, &ifr) == 0 && (ifr.ifr_flags & IFF_LOOPBACK) && (ifr.ifr_flags & IFF_UP));
    CHECK(ioctl(s, SIOCGIFADDR, &ifr) == 0 &&
          ((struct sockaddr_in *)&ifr.ifr_addr)->sin_addr.s_addr == htonl(INADDR_LOOPBACK));
    CHECK(ioctl(s, SIOCGIFINDEX, &ifr) == 0 && ifr.ifr_ifindex > 0);
    int idx = ifr.ifr_ifindex;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_ifindex = idx;
    CHECK(ioctl(s, SIOCGIFNAME, &ifr) == 0 && strcmp(ifr.ifr_name, "lo") == 0);
    strcpy(ifr.ifr_name, "no-such-if0");
    CHECK(ioctl(s, SIOCGIFFLAGS, &ifr) == -1 && errno == ENODEV);
    /* A request that would change an interface reads its argument first: EFAULT. */
    errno = 0;
    CHECK(ioctl(s, SIOCSIFFLAGS, (void *)8) == -1 && errno == EFAULT);

    struct ifconf ifc = {.ifc_len = 0, .ifc_buf = NULL};
    CHECK(ioctl(s, SIOCGIFCONF, &ifc) == 0 && ifc.ifc_len > 0 && ifc.ifc_len % (int)sizeof(struct ifreq) == 0);
    static struct ifreq reqs[64];
    ifc.ifc_len = sizeof reqs;
    ifc.ifc_req = reqs;
    int has_lo = 0;
    CHECK(ioctl(s, SIOCGIFCONF, &ifc) == 0);
    for (int i = 0; i < ifc.ifc_len / (int)sizeof(struct ifreq); i++)
        if (strcmp(reqs[i].ifr_name, "lo") == 0 &&
            ((struct sockaddr_in *)&reqs[i].ifr_addr)->sin_addr.s_addr == htonl(INADDR_LOOPBACK))
            has_lo = 1;
    CHECK(has_lo);
    close(s);

    /* Any socket answers them: an AF_UNIX one too. */
    int u = socket(AF_UNIX, SOCK_DGRAM, 0);
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    CHECK(ioctl(u, SIOCGIFINDEX, &ifr) == 0 && ifr.ifr_ifindex == idx);
    close(u);
}

static void test_netlink_dump(void)
{
    int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    REQUIRE(s >= 0);
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
    CHECK(bind(s, (struct sockaddr *)&sa, sizeof sa) == 0);
    socklen_t sl = sizeof sa;
    CHECK(getsockname(s, (struct sockaddr *)&sa, &sl) == 0 && sa.nl_family == AF_NETLINK && sa.nl_pid != 0);
    struct {
        struct nlmsghdr h;
        struct ifinfomsg i;
    } req = {
        .h = {.nlmsg_len = sizeof req, .nlmsg_type = RTM_GETLINK, .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP, .nlmsg_seq = 42},
        .i = {.ifi_family = AF_UNSPEC},
    };
    struct sockaddr_nl kern = {.nl_family = AF_NETLINK};
    CHECK(sendto(s, &req, sizeof req, 0, (struct sockaddr *)&kern, sizeof kern) == (ssize_t)sizeof req);
    static char buf[1 << 16];
    int links = 0, done = 0, lo = 0, seq_ok = 1;
    while (!done) {
        ssize_t got = recv(s, buf, sizeof buf, 0);
        if (got <= 0)
            break;
        int n = (int)got;
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_seq != 42)
                seq_ok = 0;
            if (h->nlmsg_type == NLMSG_DONE) {
                done = 1;
                break;
            }
            if (h->nlmsg_type != RTM_NEWLINK)
                continue;
            links++;
            struct ifinfomsg *ifi = NLMSG_DATA(h);
            if (ifi->ifi_flags & IFF_LOOPBACK)
                lo = 1;
        }
    }
    CHECK(done && seq_ok);
    CHECK(links > 0 && lo);
    close(s);
    CHECK(socket(AF_NETLINK, SOCK_RAW, 31) == -1);
}

static int contains(const char *path, const char *needle)
{
    static char text[1 << 16];
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    ssize_t n = 0, r;
    while ((r = read(fd, text + n, sizeof text - 1 - (size_t)n)) > 0)
        n += r;
    close(fd);
    text[n] = 0;
    return strstr(text, needle) != NULL;
}

static void test_proc_net(void)
{
    CHECK(contains("/proc/net/dev", "lo:"));
    CHECK(contains("/proc/net/tcp", "  sl  local_address rem_address"));
    CHECK(contains("/proc/net/udp", "  sl  local_address rem_address"));
    /* A listener shows in /proc/net/tcp (state 0A) on its port. */
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    REQUIRE(l >= 0 && bind(l, (struct sockaddr *)&a, sizeof a) == 0 && listen(l, 1) == 0);
    getsockname(l, (struct sockaddr *)&a, &al);
    char needle[32];
    snprintf(needle, sizeof needle, "0100007F:%04X 00000000:0000 0A", ntohs(a.sin_port));
    CHECK(contains("/proc/net/tcp", needle));
    close(l);
}

int main(void)
{
    vktest_reset_signals();
    test_getifaddrs();
    test_ioctls();
    test_netlink_dump();
    test_proc_net();
    vktest_done();
}
