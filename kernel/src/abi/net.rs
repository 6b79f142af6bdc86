//! Socket structures (socket(7), unix(7), ip(7), ipv6(7), netlink(7), rtnetlink(7),
//! netdevice(7)): the message header and its control messages, the address forms, the
//! credentials of SO_PEERCRED and SCM_CREDENTIALS, SO_LINGER's value, and the routing
//! netlink headers. Socket addresses vary in length, so they cross as bytes
//! (`net::addr` parses them); these are the fixed-size ones.

use super::{linux_struct, lower_32_bits};

pub use linux_raw_sys::net as lnet;
pub use linux_raw_sys::netlink as lnetlink;

linux_struct! {
    /// `struct msghdr` (sendmsg(2), recvmsg(2)): guest pointers as integers.
    pub struct Msghdr = lnet::msghdr {
        pub msg_name: u64,
        pub msg_namelen: i32,
        pad _pad1: u32,
        pub msg_iov: u64,
        pub msg_iovlen: u64,
        pub msg_control: u64,
        pub msg_controllen: u64,
        pub msg_flags: u32,
        pad _pad2: u32,
    }
}

linux_struct! {
    /// `struct mmsghdr` (sendmmsg(2), recvmmsg(2)).
    pub struct Mmsghdr = lnet::mmsghdr {
        pub msg_hdr: Msghdr,
        pub msg_len: u32,
        pad _pad: u32,
    }
}

linux_struct! {
    /// `struct cmsghdr`: the head of one control message; its data follows, and the next
    /// message starts at the next multiple of 8 (CMSG_ALIGN).
    pub struct Cmsghdr = lnet::cmsghdr {
        pub cmsg_len: u64,
        pub cmsg_level: i32,
        pub cmsg_type: i32,
    }
}

/// CMSG_ALIGN: control messages are padded to 8 bytes.
pub const fn cmsg_align(len: usize) -> usize {
    (len + 7) & !7
}

/// CMSG_LEN(0): the header's size.
pub const CMSG_HDR_LEN: usize = size_of::<Cmsghdr>();

linux_struct! {
    /// `struct ucred` (SO_PEERCRED, SCM_CREDENTIALS).
    pub struct Ucred = lnet::ucred {
        pub pid: u32,
        pub uid: u32,
        pub gid: u32,
    }
}

linux_struct! {
    /// `struct linger` (SO_LINGER).
    pub struct Linger = lnet::linger {
        pub l_onoff: i32,
        pub l_linger: i32,
    }
}

linux_struct! {
    /// `struct sockaddr_in` (ip(7)): port and address in network byte order.
    pub struct SockaddrIn = lnet::sockaddr_in {
        pub sin_family: u16,
        pub sin_port: u16,
        pub sin_addr: u32,
        pub __pad: [u8; 8],
    }
}

linux_struct! {
    /// `struct sockaddr_in6` (ipv6(7)).
    pub struct SockaddrIn6 = lnet::sockaddr_in6 {
        pub sin6_family: u16,
        pub sin6_port: u16,
        pub sin6_flowinfo: u32,
        pub sin6_addr: [u8; 16],
        pub sin6_scope_id: u32,
    }
}

linux_struct! {
    /// `struct sockaddr_nl` (netlink(7)).
    pub struct SockaddrNl = lnetlink::sockaddr_nl {
        pub nl_family: u16,
        pub nl_pad: u16,
        pub nl_pid: u32,
        pub nl_groups: u32,
    }
}

linux_struct! {
    /// `struct nlmsghdr`: the head of every netlink message (NLMSG_ALIGN: 4 bytes).
    pub struct Nlmsghdr = lnetlink::nlmsghdr {
        pub nlmsg_len: u32,
        pub nlmsg_type: u16,
        pub nlmsg_flags: u16,
        pub nlmsg_seq: u32,
        pub nlmsg_pid: u32,
    }
}

linux_struct! {
    /// `struct ifinfomsg` (RTM_NEWLINK's body).
    pub struct Ifinfomsg = lnetlink::ifinfomsg {
        pub ifi_family: u8,
        pub __ifi_pad: u8,
        pub ifi_type: u16,
        pub ifi_index: i32,
        pub ifi_flags: u32,
        pub ifi_change: u32,
    }
}

linux_struct! {
    /// `struct ifaddrmsg` (RTM_NEWADDR's body).
    pub struct Ifaddrmsg = lnetlink::ifaddrmsg {
        pub ifa_family: u8,
        pub ifa_prefixlen: u8,
        pub ifa_flags: u8,
        pub ifa_scope: u8,
        pub ifa_index: u32,
    }
}

linux_struct! {
    /// `struct rtattr`: a routing attribute's head (RTA_ALIGN: 4 bytes).
    pub struct Rtattr = lnetlink::rtattr {
        pub rta_len: u16,
        pub rta_type: u16,
    }
}

/// `struct ifreq` (netdevice(7)): the interface name, then a union whose forms the kernel
/// reads as a `struct sockaddr` (16 bytes), a `short` (flags) or an `int` (index, mtu).
/// The union's largest member (`struct ifmap`) makes it 24 bytes on x86-64.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::Immutable, zerocopy::KnownLayout)]
pub struct Ifreq {
    pub ifr_name: [u8; 16],
    pub ifr_ifru: [u8; 24],
}
const _: () = assert!(size_of::<Ifreq>() == 40);

/// `struct ifconf` (SIOCGIFCONF): the buffer's length and address.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::Immutable, zerocopy::KnownLayout)]
pub struct Ifconf {
    pub ifc_len: i32,
    pub _pad: u32,
    pub ifc_buf: u64,
}
const _: () = assert!(size_of::<Ifconf>() == size_of::<lnet::ifconf>());

/// A `linux_raw_sys::net` constant as the `int` the calls pass it in.
pub const fn net_int(v: u32) -> i32 {
    super::c_int(v)
}

/// The low 32 bits of an argument as a socket call's flags word.
pub const fn flags_word(v: u64) -> u32 {
    lower_32_bits(v)
}

/// recvmmsg(2)'s "block for the first message only" (include/linux/socket.h).
pub const MSG_WAITFORONE: u32 = 0x10000;

bitflags::bitflags! {
    /// send(2)/recv(2) flags vk knows (MSG_*). Unknown bits are ignored, as Linux does for
    /// most of them.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct MsgFlags: u32 {
        const OOB = lnet::MSG_OOB;
        const PEEK = lnet::MSG_PEEK;
        const DONTROUTE = lnet::MSG_DONTROUTE;
        const CTRUNC = lnet::MSG_CTRUNC;
        const TRUNC = lnet::MSG_TRUNC;
        const DONTWAIT = lnet::MSG_DONTWAIT;
        const EOR = lnet::MSG_EOR;
        const WAITALL = lnet::MSG_WAITALL;
        const NOSIGNAL = lnet::MSG_NOSIGNAL;
        const MORE = lnet::MSG_MORE;
        /// Not in the uapi headers linux-raw-sys reads (include/linux/socket.h).
        const WAITFORONE = MSG_WAITFORONE;
        const CMSG_CLOEXEC = lnet::MSG_CMSG_CLOEXEC;
        const ERRQUEUE = lnet::MSG_ERRQUEUE;
        const CONFIRM = lnet::MSG_CONFIRM;
    }
}

bitflags::bitflags! {
    /// The flags socket(2), socketpair(2) and accept4(2) take beside the type.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct SockFlags: u32 {
        const NONBLOCK = super::linux::O_NONBLOCK;
        const CLOEXEC = super::linux::O_CLOEXEC;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_message_sizes() {
        assert_eq!(CMSG_HDR_LEN, 16);
        assert_eq!(cmsg_align(CMSG_HDR_LEN + 4), 24);
        assert_eq!(size_of::<Msghdr>(), 56);
        assert_eq!(size_of::<Mmsghdr>(), 64);
    }
}
