//! Socket addresses. A guest passes a `struct sockaddr_*` of some length; [`SockAddr::parse`]
//! reads it by its family, [`SockAddr::to_bytes`] writes one back (getsockname, accept,
//! recvfrom: the caller copies what fits and reports the full length).
//!
//! AF_UNIX names (unix(7)) come in three forms: unnamed (only the family: length 2), a path
//! (NUL-terminated in `sun_path`; its length is the family, the path and the NUL), and an
//! abstract name (`sun_path[0]` is NUL; the name is every byte after it up to the length).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

use zerocopy::{FromBytes, IntoBytes};

use crate::abi::net::{SockaddrIn, SockaddrIn6, SockaddrNl, lnet};
use crate::kern::errno::Errno;

/// `sun_path`'s size.
pub const UNIX_PATH_MAX: usize = 108;
/// `offsetof(struct sockaddr_un, sun_path)`.
const SUN_PATH_OFF: usize = 2;
/// The longest address any family takes (`struct sockaddr_storage`).
pub const SOCKADDR_MAX: usize = 128;

/// An AF_UNIX name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UnixAddr {
    Unnamed,
    Path(Vec<u8>),
    Abstract(Vec<u8>),
}

/// A socket address of any family vk has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SockAddr {
    /// AF_UNSPEC (connect(2) with it dissolves a datagram association).
    Unspec,
    Unix(UnixAddr),
    V4(SocketAddrV4),
    V6(SocketAddrV6),
    Netlink { pid: u32, groups: u32 },
}

fn family_of(b: &[u8]) -> Option<u32> {
    Some(u32::from(u16::from_ne_bytes([*b.first()?, *b.get(1)?])))
}

impl SockAddr {
    /// Parse `len` bytes of a guest's socket address: EINVAL when too short for its family
    /// (or not even a family), EAFNOSUPPORT for a family vk does not know.
    pub fn parse(b: &[u8]) -> Result<SockAddr, Errno> {
        let fam = family_of(b).ok_or(Errno::EINVAL)?;
        match fam {
            lnet::AF_UNSPEC => Ok(SockAddr::Unspec),
            lnet::AF_UNIX => Self::parse_unix(b),
            lnet::AF_INET => {
                let (a, _) = SockaddrIn::read_from_prefix(b).map_err(|_| Errno::EINVAL)?;
                let ip = Ipv4Addr::from(u32::from_be(a.sin_addr));
                Ok(SockAddr::V4(SocketAddrV4::new(ip, u16::from_be(a.sin_port))))
            }
            lnet::AF_INET6 => {
                // SIN6_LEN_RFC2133 (24 bytes, no scope id) is accepted as Linux does.
                let mut buf = [0u8; size_of::<SockaddrIn6>()];
                if b.len() < 24 {
                    return Err(Errno::EINVAL);
                }
                let n = b.len().min(buf.len());
                buf[..n].copy_from_slice(&b[..n]);
                let (a, _) = SockaddrIn6::read_from_prefix(&buf).map_err(|_| Errno::EINVAL)?;
                let ip = Ipv6Addr::from(a.sin6_addr);
                Ok(SockAddr::V6(SocketAddrV6::new(ip, u16::from_be(a.sin6_port), u32::from_be(a.sin6_flowinfo), a.sin6_scope_id)))
            }
            lnet::AF_NETLINK => {
                let (a, _) = SockaddrNl::read_from_prefix(b).map_err(|_| Errno::EINVAL)?;
                Ok(SockAddr::Netlink { pid: a.nl_pid, groups: a.nl_groups })
            }
            _ => Err(Errno::EAFNOSUPPORT),
        }
    }

    /// unix(7): the three forms by length and first byte; EINVAL past `sun_path`.
    fn parse_unix(b: &[u8]) -> Result<SockAddr, Errno> {
        if b.len() > SUN_PATH_OFF + UNIX_PATH_MAX {
            return Err(Errno::EINVAL);
        }
        let path = &b[SUN_PATH_OFF..];
        Ok(SockAddr::Unix(match path.first() {
            None => UnixAddr::Unnamed,
            Some(0) => UnixAddr::Abstract(path[1..].to_vec()),
            Some(_) => {
                let end = path.iter().position(|&c| c == 0).unwrap_or(path.len());
                UnixAddr::Path(path[..end].to_vec())
            }
        }))
    }

    /// The address family (AF_*).
    pub fn family(&self) -> u32 {
        match self {
            SockAddr::Unspec => lnet::AF_UNSPEC,
            SockAddr::Unix(_) => lnet::AF_UNIX,
            SockAddr::V4(_) => lnet::AF_INET,
            SockAddr::V6(_) => lnet::AF_INET6,
            SockAddr::Netlink { .. } => lnet::AF_NETLINK,
        }
    }

    /// The address as the guest's structure, of its full length.
    pub fn to_bytes(&self) -> Vec<u8> {
        let fam = u16::try_from(self.family()).unwrap_or(0).to_ne_bytes();
        match self {
            SockAddr::Unspec => fam.to_vec(),
            SockAddr::Unix(u) => {
                let mut v = fam.to_vec();
                match u {
                    UnixAddr::Unnamed => {}
                    UnixAddr::Path(p) => {
                        v.extend_from_slice(p);
                        v.push(0);
                    }
                    UnixAddr::Abstract(n) => {
                        v.push(0);
                        v.extend_from_slice(n);
                    }
                }
                v
            }
            SockAddr::V4(a) => SockaddrIn {
                sin_family: u16::from_ne_bytes(fam),
                sin_port: a.port().to_be(),
                sin_addr: u32::from(*a.ip()).to_be(),
                __pad: [0; 8],
            }
            .as_bytes()
            .to_vec(),
            SockAddr::V6(a) => SockaddrIn6 {
                sin6_family: u16::from_ne_bytes(fam),
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo().to_be(),
                sin6_addr: a.ip().octets(),
                sin6_scope_id: a.scope_id(),
            }
            .as_bytes()
            .to_vec(),
            SockAddr::Netlink { pid, groups } => {
                SockaddrNl { nl_family: u16::from_ne_bytes(fam), nl_pad: 0, nl_pid: *pid, nl_groups: *groups }.as_bytes().to_vec()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn un(path: &[u8]) -> Vec<u8> {
        let mut v = u16::try_from(lnet::AF_UNIX).unwrap().to_ne_bytes().to_vec();
        v.extend_from_slice(path);
        v
    }

    #[test]
    fn unix_forms_round_trip() {
        assert_eq!(SockAddr::parse(&un(b"")), Ok(SockAddr::Unix(UnixAddr::Unnamed)));
        let p = SockAddr::parse(&un(b"/tmp/s\0junk")).unwrap();
        assert_eq!(p, SockAddr::Unix(UnixAddr::Path(b"/tmp/s".to_vec())));
        assert_eq!(p.to_bytes(), un(b"/tmp/s\0"));
        let a = SockAddr::parse(&un(b"\0ab\0c")).unwrap();
        assert_eq!(a, SockAddr::Unix(UnixAddr::Abstract(b"ab\0c".to_vec())));
        assert_eq!(a.to_bytes(), un(b"\0ab\0c"));
        assert_eq!(SockAddr::parse(&un(&[b'x'; 109])), Err(Errno::EINVAL));
        assert_eq!(SockAddr::parse(&[1]), Err(Errno::EINVAL));
    }

    #[test]
    fn inet_round_trip() {
        let a = SockAddr::V4(SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 1), 8080));
        let b = a.to_bytes();
        assert_eq!(b.len(), 16);
        assert_eq!(&b[2..4], &[0x1f, 0x90]);
        assert_eq!(SockAddr::parse(&b), Ok(a));
        let a6 = SockAddr::V6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, 80, 0, 0));
        assert_eq!(SockAddr::parse(&a6.to_bytes()), Ok(a6));
    }
}
