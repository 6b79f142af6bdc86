//! /proc/net: the kernel's sockets as text (proc(5)). AF_UNIX's list is the kernel's own;
//! the TCP, UDP, device and route tables are the host's (hostinet: the guest's AF_INET
//! sockets are host sockets, in the kernel process's network namespace), so busybox
//! `netstat` and `route` show them.

/// The files of /proc/net.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetFile {
    Unix,
    /// The host's file of this name.
    Host(&'static str),
}

pub const NET_FILES: [(&str, NetFile); 8] = [
    ("unix", NetFile::Unix),
    ("tcp", NetFile::Host("tcp")),
    ("tcp6", NetFile::Host("tcp6")),
    ("udp", NetFile::Host("udp")),
    ("udp6", NetFile::Host("udp6")),
    ("dev", NetFile::Host("dev")),
    ("route", NetFile::Host("route")),
    ("if_inet6", NetFile::Host("if_inet6")),
];

impl NetFile {
    pub fn index(self) -> u64 {
        NET_FILES.iter().position(|(_, f)| *f == self).map_or(0, |i| i as u64)
    }
}

/// The text of a /proc/net file (empty when the host has none).
pub fn text(f: NetFile) -> Vec<u8> {
    match f {
        NetFile::Unix => crate::net::unix::proc_net_unix().into_bytes(),
        NetFile::Host(name) => platform::hostsock::proc_net(name).unwrap_or_default(),
    }
}
