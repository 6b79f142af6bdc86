//! /proc/net: the kernel's sockets as text (proc(5)). Each file's text comes from the
//! family that owns the sockets (`crate::net`).

/// The files of /proc/net.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetFile {
    Unix,
}

pub const NET_FILES: [(&str, NetFile); 1] = [("unix", NetFile::Unix)];

impl NetFile {
    pub fn index(self) -> u64 {
        NET_FILES.iter().position(|(_, f)| *f == self).map_or(0, |i| i as u64)
    }
}

/// The text of a /proc/net file.
pub fn text(f: NetFile) -> Vec<u8> {
    match f {
        NetFile::Unix => crate::net::unix::proc_net_unix().into_bytes(),
    }
}
