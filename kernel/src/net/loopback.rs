//! `-e net=none`: AF_INET and AF_INET6 on a loopback kept inside the kernel. Nothing reaches
//! the host: a guest listening on 127.0.0.1 is not reachable from it, and the guest reaches
//! no other address (ENETUNREACH; EADDRNOTAVAIL to bind one).
//!
//! A TCP socket here is an AF_UNIX stream socket and a UDP socket an AF_UNIX datagram
//! socket (`net::unix`, which already has connection set-up, backlogs, byte streams and
//! message boundaries, buffers and readiness), whose names live in a table of their own
//! ([`Ns::Loopback`]): port P of TCP is the name `t` P, of UDP `u` P. This wrapper turns
//! socket addresses into those names and back: bind takes a port (0: an ephemeral one from
//! 32768–60999, ip_local_port_range), a listen or connect of an unbound socket binds one,
//! getsockname shows the address bound (0.0.0.0 or 127.0.0.1), getpeername and recvfrom
//! the peer's port on 127.0.0.1 (::1 for AF_INET6). IPv4 and IPv6 share the ports, as a
//! dual-stack host's do. The IP and TCP options are kept and read back, not acted on.
//!
//! UDP's connect is this wrapper's (the unix socket stays unconnected): it records the peer,
//! which a send without an address goes to and a receive filters on (datagrams from others
//! are dropped, as UDP's are). A datagram to a port nobody has is lost and the send succeeds;
//! on a connected socket the port-unreachable error a host's ICMP would bring back is kept
//! and returned by the next receive or send (and SO_ERROR, POLLERR): ECONNREFUSED.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use platform::sync::SpinLock;

use crate::abi::net::{MsgFlags, lnet};
use crate::fs::vfs::POLLERR;
use crate::kern::errno::Errno;
use crate::net::unix::{Ns, UnixSocket};
use crate::net::{Caller, Received, SendArgs, Shutdown, SockAddr, SockType, Socket, SocketRef, UnixAddr, int_opt};

/// The protocol levels as numbers (linux-raw-sys has them as an enum).
const IPPROTO_IP: u32 = 0;
const IPPROTO_TCP: u32 = 6;
const IPPROTO_IPV6: u32 = 41;

/// ip_local_port_range.
const EPHEMERAL_FIRST: u32 = 32768;
const EPHEMERAL_LAST: u32 = 60999;
static NEXT_EPHEMERAL: AtomicU32 = AtomicU32::new(EPHEMERAL_FIRST);

/// A TCP or UDP socket on the in-kernel loopback.
#[derive(Debug)]
pub struct LoopSocket {
    family: u32,
    inner: Arc<UnixSocket>,
    /// The address it was bound to (0.0.0.0 or a loopback address).
    local_ip: SpinLock<Option<IpAddr>>,
    /// IP, IPv6 and TCP options: kept for getsockopt.
    opts: SpinLock<BTreeMap<(u32, u32), Vec<u8>>>,
    /// UDP: the connected peer and the pending error.
    udp: SpinLock<Udp>,
}

/// A UDP socket's connection (connect(2) on UDP only records the peer).
#[derive(Debug, Default)]
struct Udp {
    peer: Option<UnixAddr>,
    /// ECONNREFUSED after a datagram to the peer found nobody (an ICMP port unreachable).
    err: Option<Errno>,
}

/// socket(AF_INET or AF_INET6, SOCK_STREAM or SOCK_DGRAM, 0 or the matching protocol).
pub fn create(family: u32, ty: SockType, protocol: u32) -> Result<SocketRef, Errno> {
    let want = match ty {
        SockType::Stream => 6,
        SockType::Dgram => 17,
        // As inet.rs: no protocol matches no raw entry; with one, no CAP_NET_RAW.
        SockType::Raw if protocol == 0 => return Err(Errno::EPROTONOSUPPORT),
        SockType::Raw => return Err(Errno::EPERM),
        SockType::Seqpacket => return Err(Errno::ESOCKTNOSUPPORT),
    };
    if protocol != 0 && protocol != want {
        return Err(Errno::EPROTONOSUPPORT);
    }
    Ok(LoopSocket::wrap(family, UnixSocket::new_in(ty, Ns::Loopback), None))
}

fn key(ty: SockType, port: u16) -> UnixAddr {
    let [hi, lo] = port.to_be_bytes();
    UnixAddr::Abstract(vec![if ty == SockType::Stream { b't' } else { b'u' }, hi, lo])
}

fn port_of(ua: &UnixAddr) -> Option<u16> {
    match ua {
        UnixAddr::Abstract(k) if k.len() == 3 => Some(u16::from_be_bytes([k[1], k[2]])),
        _ => None,
    }
}

fn is_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.is_loopback() || a.is_unspecified(),
        IpAddr::V6(a) => a.is_loopback() || a.is_unspecified() || a.to_ipv4_mapped().is_some_and(|m| m.is_loopback()),
    }
}

impl LoopSocket {
    fn wrap(family: u32, inner: Arc<UnixSocket>, local_ip: Option<IpAddr>) -> Arc<LoopSocket> {
        Arc::new(LoopSocket {
            family,
            inner,
            local_ip: SpinLock::new("loop_addr", local_ip),
            opts: SpinLock::new("loop_opts", BTreeMap::new()),
            udp: SpinLock::new("loop_udp", Udp::default()),
        })
    }

    fn ty(&self) -> SockType {
        self.inner.sock_type()
    }

    fn loopback_ip(&self) -> IpAddr {
        if self.family == lnet::AF_INET6 { IpAddr::V6(Ipv6Addr::LOCALHOST) } else { IpAddr::V4(Ipv4Addr::LOCALHOST) }
    }

    fn sockaddr(&self, ip: IpAddr, port: u16) -> SockAddr {
        match ip {
            IpAddr::V4(a) if self.family == lnet::AF_INET => SockAddr::V4(SocketAddrV4::new(a, port)),
            IpAddr::V4(a) => SockAddr::V6(SocketAddrV6::new(a.to_ipv6_mapped(), port, 0, 0)),
            IpAddr::V6(a) => SockAddr::V6(SocketAddrV6::new(a, port, 0, 0)),
        }
    }

    /// An address argument of this socket's family: its IP and port (EAFNOSUPPORT for an
    /// AF_INET socket given another family, EINVAL for AF_INET6).
    fn ip_port(&self, a: &SockAddr) -> Result<(IpAddr, u16), Errno> {
        match (a, self.family) {
            (SockAddr::V4(v), lnet::AF_INET) => Ok((IpAddr::V4(*v.ip()), v.port())),
            (SockAddr::V6(v), lnet::AF_INET6) => Ok((IpAddr::V6(*v.ip()), v.port())),
            (_, lnet::AF_INET) => Err(Errno::EAFNOSUPPORT),
            _ => Err(Errno::EINVAL),
        }
    }

    fn bound_port(&self) -> Option<u16> {
        match self.inner.local_addr() {
            Ok(SockAddr::Unix(ua)) => port_of(&ua),
            _ => None,
        }
    }

    /// Bind port `port` (0: the next free ephemeral one).
    fn bind_port(&self, c: &Caller<'_>, ip: IpAddr, port: u16) -> Result<(), Errno> {
        if port != 0 {
            self.inner.bind(c, &SockAddr::Unix(key(self.ty(), port)))?;
        } else {
            let span = EPHEMERAL_LAST - EPHEMERAL_FIRST + 1;
            let mut found = false;
            for _ in 0..span {
                let n = NEXT_EPHEMERAL.fetch_add(1, Ordering::Relaxed);
                let p = u16::try_from(EPHEMERAL_FIRST + (n - EPHEMERAL_FIRST) % span).unwrap_or(0);
                match self.inner.bind(c, &SockAddr::Unix(key(self.ty(), p))) {
                    Ok(()) => {
                        found = true;
                        break;
                    }
                    Err(Errno::EADDRINUSE) => {}
                    Err(e) => return Err(e),
                }
            }
            if !found {
                return Err(Errno::EADDRINUSE);
            }
        }
        *self.local_ip.lock() = Some(ip);
        Ok(())
    }

    /// Bind an ephemeral port if the socket has none (listen, connect, a first send).
    fn ensure_bound(&self, c: &Caller<'_>) -> Result<(), Errno> {
        if self.bound_port().is_some() {
            return Ok(());
        }
        let any = if self.family == lnet::AF_INET6 { IpAddr::V6(Ipv6Addr::UNSPECIFIED) } else { IpAddr::V4(Ipv4Addr::UNSPECIFIED) };
        match self.bind_port(c, any, 0) {
            Err(Errno::EINVAL) => Ok(()), // bound meanwhile
            r => r,
        }
    }

    /// A destination: its name on the loopback (ENETUNREACH for any other address).
    fn dest(&self, a: &SockAddr) -> Result<UnixAddr, Errno> {
        if *a == SockAddr::Unspec {
            return Err(Errno::EAFNOSUPPORT);
        }
        let (ip, port) = self.ip_port(a)?;
        if !is_local(ip) {
            return Err(Errno::ENETUNREACH);
        }
        Ok(key(self.ty(), port))
    }

    fn guest_name(&self, a: Option<SockAddr>) -> Option<SockAddr> {
        match a {
            Some(SockAddr::Unix(ua)) => port_of(&ua).map(|p| self.sockaddr(self.loopback_ip(), p)),
            _ => None,
        }
    }

    /// UDP's send: to the address given or the connected peer; a port nobody has loses the
    /// datagram (ECONNREFUSED kept for later on a connected socket).
    fn send_udp(&self, c: &Caller<'_>, a: SendArgs<'_>) -> Result<usize, Errno> {
        if let Some(e) = self.udp.lock().err.take() {
            return Err(e);
        }
        let to = match &a.to {
            Some(t) => self.dest(t)?,
            None => self.udp.lock().peer.clone().ok_or(Errno::EDESTADDRREQ)?,
        };
        self.ensure_bound(c)?;
        let len = a.data.len();
        match self.inner.send(c, SendArgs { to: Some(SockAddr::Unix(to)), ..a }) {
            Err(Errno::ECONNREFUSED) => {
                let mut u = self.udp.lock();
                if u.peer.is_some() {
                    u.err = Some(Errno::ECONNREFUSED);
                }
                Ok(len)
            }
            r => r,
        }
    }

    /// UDP's receive: the pending error first; on a connected socket only the peer's
    /// datagrams (the others are dropped).
    fn recv_udp(&self, len: usize, flags: MsgFlags, nonblock: bool) -> Result<Received, Errno> {
        loop {
            if let Some(e) = self.udp.lock().err.take() {
                return Err(e);
            }
            let r = self.inner.recv(len, flags, nonblock)?;
            let peer = self.udp.lock().peer.clone();
            match (&peer, &r.from) {
                (Some(p), Some(SockAddr::Unix(from))) if p != from => {
                    if flags.contains(MsgFlags::PEEK) {
                        // Drop the stranger's datagram that was only looked at.
                        let _ = self.inner.recv(0, flags - MsgFlags::PEEK, true);
                    }
                }
                _ => return Ok(r),
            }
        }
    }

    fn default_opt(level: u32, name: u32) -> i32 {
        match (level, name) {
            (IPPROTO_IP, lnet::IP_TTL) | (IPPROTO_IPV6, lnet::IPV6_UNICAST_HOPS) => 64,
            (IPPROTO_IP, lnet::IP_MULTICAST_TTL | lnet::IP_MULTICAST_LOOP) => 1,
            (IPPROTO_TCP, lnet::TCP_MAXSEG) => 65483,
            _ => 0,
        }
    }
}

impl Socket for LoopSocket {
    fn family(&self) -> u32 {
        self.family
    }

    fn sock_type(&self) -> SockType {
        self.ty()
    }

    fn protocol(&self) -> u32 {
        if self.ty() == SockType::Stream { 6 } else { 17 }
    }

    fn bind(&self, c: &Caller<'_>, addr: &SockAddr) -> Result<(), Errno> {
        let (ip, port) = self.ip_port(addr)?;
        if !is_local(ip) {
            return Err(Errno::EADDRNOTAVAIL);
        }
        crate::net::check_bind_port(c, addr)?;
        if self.bound_port().is_some() {
            return Err(Errno::EINVAL);
        }
        self.bind_port(c, ip, port)
    }

    fn listen(&self, backlog: i32) -> Result<(), Errno> {
        if self.ty() != SockType::Stream {
            return Err(Errno::EOPNOTSUPP);
        }
        if let Some(c) = Caller::current() {
            self.ensure_bound(&c)?;
        }
        self.inner.listen(backlog)
    }

    fn accept(&self, nonblock: bool) -> Result<(SocketRef, SockAddr), Errno> {
        let (s, peer) = self.inner.accept(nonblock)?;
        let u = s.as_any().downcast_ref::<UnixSocket>().and_then(UnixSocket::arc).ok_or(Errno::ECONNABORTED)?;
        let peer = self.guest_name(Some(peer)).unwrap_or(SockAddr::Unspec);
        Ok((LoopSocket::wrap(self.family, u, Some(self.loopback_ip())), peer))
    }

    fn connect(&self, c: &Caller<'_>, addr: &SockAddr, nonblock: bool) -> Result<(), Errno> {
        if self.ty() == SockType::Dgram {
            let peer = if *addr == SockAddr::Unspec { None } else { Some(self.dest(addr)?) };
            if peer.is_some() {
                self.ensure_bound(c)?;
            }
            *self.udp.lock() = Udp { peer, err: None };
            return Ok(());
        }
        let to = self.dest(addr)?;
        self.ensure_bound(c)?;
        self.inner.connect(c, &SockAddr::Unix(to), nonblock).map_err(|e| if e == Errno::EPROTOTYPE { Errno::ECONNREFUSED } else { e })
    }

    fn send(&self, c: &Caller<'_>, a: SendArgs<'_>) -> Result<usize, Errno> {
        if !a.rights.is_empty() || a.creds.is_some() {
            return Err(Errno::EINVAL);
        }
        if self.ty() == SockType::Dgram {
            return self.send_udp(c, a);
        }
        // A connected stream ignores an address, as TCP does.
        self.inner.send(c, SendArgs { to: None, ..a })
    }

    fn recv(&self, len: usize, flags: MsgFlags, nonblock: bool) -> Result<Received, Errno> {
        // Nothing here ever queues an error (no ICMP): the error queue is always empty.
        if flags.contains(MsgFlags::ERRQUEUE) {
            return Err(Errno::EAGAIN);
        }
        let mut r = if self.ty() == SockType::Dgram { self.recv_udp(len, flags, nonblock)? } else { self.inner.recv(len, flags, nonblock)? };
        r.from = self.guest_name(r.from.take());
        Ok(r)
    }

    fn shutdown(&self, how: Shutdown) -> Result<(), Errno> {
        if self.ty() == SockType::Stream && self.inner.peer_addr().is_err() {
            return Err(Errno::ENOTCONN);
        }
        self.inner.shutdown(how)
    }

    fn local_addr(&self) -> Result<SockAddr, Errno> {
        let port = self.bound_port().unwrap_or(0);
        let ip = (*self.local_ip.lock()).unwrap_or(if self.family == lnet::AF_INET6 {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        });
        Ok(self.sockaddr(ip, port))
    }

    fn peer_addr(&self) -> Result<SockAddr, Errno> {
        if self.ty() == SockType::Dgram {
            let p = self.udp.lock().peer.clone().ok_or(Errno::ENOTCONN)?;
            return self.guest_name(Some(SockAddr::Unix(p))).ok_or(Errno::ENOTCONN);
        }
        let p = self.inner.peer_addr()?;
        self.guest_name(Some(p)).ok_or(Errno::ENOTCONN)
    }

    fn setsockopt(&self, level: u32, name: u32, val: &[u8]) -> Result<(), Errno> {
        if level == lnet::SOL_SOCKET {
            match self.inner.setsockopt(level, name, val) {
                Err(Errno::ENOPROTOOPT) => {}
                r => return r,
            }
        }
        if !crate::net::inet::allowed(level, name) {
            return Err(Errno::ENOPROTOOPT);
        }
        self.opts.lock().insert((level, name), val.to_vec());
        Ok(())
    }

    fn getsockopt(&self, level: u32, name: u32) -> Result<Vec<u8>, Errno> {
        if (level, name) == (lnet::SOL_SOCKET, lnet::SO_ERROR)
            && let Some(e) = self.udp.lock().err.take()
        {
            return Ok(int_opt(e.num()));
        }
        if level == lnet::SOL_SOCKET {
            match self.inner.getsockopt(level, name) {
                Err(Errno::ENOPROTOOPT) => {}
                r => return r,
            }
        }
        if !crate::net::inet::allowed(level, name) {
            return Err(crate::net::inet::unknown_option(self.family, self.protocol(), level));
        }
        Ok(self.opts.lock().get(&(level, name)).cloned().unwrap_or_else(|| int_opt(Self::default_opt(level, name))))
    }

    fn poll(&self) -> u16 {
        let err = if self.udp.lock().err.is_some() { POLLERR } else { 0 };
        self.inner.poll() | err
    }

    fn poll_gen(&self) -> (u64, u64) {
        self.inner.poll_gen()
    }

    fn queued(&self, outq: bool) -> Result<usize, Errno> {
        self.inner.queued(outq)
    }

    /// No urgent data here (MSG_OOB is not carried), so a stream is never at the mark.
    fn at_mark(&self) -> Result<bool, Errno> {
        if self.sock_type() == SockType::Stream { Ok(false) } else { Err(Errno::ENOTTY) }
    }

    fn release(&self) {
        self.inner.release();
    }

    fn set_ino(&self, ino: u64) {
        self.inner.set_ino(ino);
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
