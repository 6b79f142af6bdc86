//! AF_INET and AF_INET6 sockets through the host ("hostinet", gVisor's `--network=host`):
//! each guest socket is a non-blocking host socket the kernel process owns
//! (`platform::hostsock`). NETLINK_ROUTE sockets go the same way, read-only: a guest may
//! send only RTM_GET* requests (link, address, route dumps: getifaddrs, `ip addr`), never a
//! change to the host's network (EPERM). The host does TCP and UDP, the addresses are real ones, and what the
//! host refuses is the guest's errno (EADDRINUSE, ECONNREFUSED, EACCES for a port below 1024
//! when the kernel is not root).
//!
//! **Waiting**: a call that would block tries the host call under the socket's sleep-queue
//! lock; on EAGAIN it arms the watcher (one epoll thread) for the events it needs and sleeps.
//! The watcher's callback runs on a CPU at a safe point and wakes the socket's channel and the
//! pollers — so no vCPU ever blocks in a host call. `poll` asks the host (poll with no wait)
//! and arms the watcher for the events that are not ready yet, which is what wakes a guest
//! sleeping in poll/select/epoll.
//!
//! **Options** pass to the host from an allow-list (socket(7), tcp(7), ip(7), ipv6(7)); the
//! timeouts (SO_RCVTIMEO, SO_SNDTIMEO) stay here, as the host socket never blocks.

use std::sync::{Arc, Weak};
use std::time::Duration;

use platform::hostsock::{HostResult, HostSocket};
use platform::sync::SpinLock;

use crate::abi::net::{MsgFlags, Nlmsghdr, lnet};
use crate::fs::vfs::{POLLERR, POLLHUP, POLLIN, POLLOUT, POLLPRI, poll_wakeup};
use crate::kern::errno::Errno;
use crate::kern::sleep::{SleepOpts, sleepq_lock, tsleep_locked, wakeup, wchan_of};
use crate::kern::thread::WakeReason;
use crate::net::{Caller, Received, SendArgs, Shutdown, SockAddr, SockType, Socket, SocketRef, timeout_to_timeval, timeval_to_timeout};

/// The protocol numbers (linux-raw-sys has them as an enum).
const IPPROTO_IP: u32 = 0;
const IPPROTO_TCP: u32 = 6;
const IPPROTO_UDP: u32 = 17;
const IPPROTO_IPV6: u32 = 41;
const _: () = assert!(IPPROTO_TCP == lnet::IPPROTO_TCP as u32 && IPPROTO_UDP == lnet::IPPROTO_UDP as u32);
const _: () = assert!(IPPROTO_IP == lnet::IPPROTO_IP as u32 && IPPROTO_IPV6 == lnet::IPPROTO_IPV6 as u32);

const NETLINK_ROUTE: u32 = 0;
const SOL_NETLINK: u32 = 270;
const NETLINK_ADD_MEMBERSHIP: u32 = 1;
const NETLINK_DROP_MEMBERSHIP: u32 = 2;
const NETLINK_PKTINFO: u32 = 3;
const NETLINK_EXT_ACK: u32 = 11;
const NETLINK_GET_STRICT_CHK: u32 = 12;

/// A netlink request the guest may send: a whole message train of RTM_GET* requests (the
/// GET of every rtnetlink family is RTM_BASE + 2 modulo 4) — EPERM for anything else. The
/// train ends, as in Linux's netlink_rcv_skb, at a header too short or a length past the end
/// (iproute2 sends its dump request in a zeroed 152-byte buffer): the host reads no further.
fn netlink_read_only(mut b: &[u8]) -> Result<(), Errno> {
    while b.len() >= size_of::<Nlmsghdr>() {
        let (h, _) = <Nlmsghdr as zerocopy::FromBytes>::read_from_prefix(b).map_err(|_| Errno::EINVAL)?;
        let len = usize::try_from(h.nlmsg_len).map_err(|_| Errno::EINVAL)?;
        if len < size_of::<Nlmsghdr>() || len > b.len() {
            break;
        }
        if h.nlmsg_type < 16 || h.nlmsg_type % 4 != 2 {
            return Err(Errno::EPERM);
        }
        b = &b[((len + 3) & !3).min(b.len())..];
    }
    Ok(())
}

const EPOLLIN: u32 = 0x001;
const EPOLLOUT: u32 = 0x004;
const EPOLLRDHUP: u32 = 0x2000;
const POLLRDHUP: u16 = 0x2000;

/// The host's errno as the guest's (EIO for one the kernel does not know).
fn errno(e: i32) -> Errno {
    Errno::from_num(e).unwrap_or(Errno::EIO)
}

#[derive(Debug, Default)]
struct State {
    /// Events the watcher is armed for.
    armed: u32,
    rcvtimeo: Option<Duration>,
    sndtimeo: Option<Duration>,
}

/// An AF_INET or AF_INET6 socket backed by a host socket.
#[derive(Debug)]
pub struct InetSocket {
    family: u32,
    ty: SockType,
    protocol: u32,
    host: HostSocket,
    st: SpinLock<State>,
    me: Weak<InetSocket>,
}

/// socket(AF_INET or AF_INET6, type, protocol): the host's socket, or its errno. Raw IP
/// sockets are refused (EPERM: the kernel may run as root, the guest must not get the
/// host's raw network); AF_NETLINK takes NETLINK_ROUTE only (EPROTONOSUPPORT).
pub fn create(family: u32, ty: SockType, protocol: u32) -> Result<SocketRef, Errno> {
    if family == lnet::AF_NETLINK {
        if protocol != NETLINK_ROUTE {
            return Err(Errno::EPROTONOSUPPORT);
        }
        if !matches!(ty, SockType::Raw | SockType::Dgram) {
            return Err(Errno::ESOCKTNOSUPPORT);
        }
    } else if !matches!(ty, SockType::Stream | SockType::Dgram) {
        // A raw socket needs a protocol (0 matches none of inet_create's raw entries:
        // EPROTONOSUPPORT, whoever asks); with one, vk grants no CAP_NET_RAW (EPERM).
        return Err(match ty {
            SockType::Raw if protocol == 0 => Errno::EPROTONOSUPPORT,
            SockType::Raw => Errno::EPERM,
            _ => Errno::ESOCKTNOSUPPORT,
        });
    }
    let fam = i32::try_from(family).map_err(|_| Errno::EAFNOSUPPORT)?;
    let t = i32::try_from(ty.raw()).map_err(|_| Errno::EINVAL)?;
    let p = i32::try_from(protocol).map_err(|_| Errno::EPROTONOSUPPORT)?;
    let host = HostSocket::new(fam, t, p).map_err(errno)?;
    Ok(InetSocket::wrap(family, ty, protocol, host))
}

/// Why a sleep ended badly (as unix's: EAGAIN on timeout, EINTR or ERESTARTSYS on a signal).
fn sleep_result(r: WakeReason, timeout: Option<Duration>) -> Result<(), Errno> {
    match r {
        WakeReason::Woken => Ok(()),
        WakeReason::TimedOut => Err(Errno::EAGAIN),
        WakeReason::Interrupted => Err(if timeout.is_some() { Errno::EINTR } else { Errno::ERESTARTSYS }),
    }
}

/// getsockopt's error for an option vk does not pass on: an IPv4 socket asked at a level
/// that is none of its own (the socket's, IP's or its protocol's) falls to ip_getsockopt,
/// EOPNOTSUPP; an unknown option at a level it has is ENOPROTOOPT.
pub(crate) fn unknown_option(family: u32, protocol: u32, level: u32) -> Errno {
    let own = [lnet::SOL_SOCKET, lnet::SOL_IP, protocol];
    if family == lnet::AF_INET && !own.contains(&level) { Errno::EOPNOTSUPP } else { Errno::ENOPROTOOPT }
}

/// Whether an option passes to the host (level, name).
pub(crate) fn allowed(level: u32, name: u32) -> bool {
    match level {
        lnet::SOL_SOCKET => matches!(
            name,
            lnet::SO_REUSEADDR
                | lnet::SO_REUSEPORT
                | lnet::SO_KEEPALIVE
                | lnet::SO_LINGER
                | lnet::SO_SNDBUF
                | lnet::SO_RCVBUF
                | lnet::SO_BROADCAST
                | lnet::SO_OOBINLINE
                | lnet::SO_RCVLOWAT
                | lnet::SO_PRIORITY
                | lnet::SO_DONTROUTE
                | lnet::SO_ERROR
                | lnet::SO_ACCEPTCONN
        ),
        IPPROTO_TCP => matches!(
            name,
            lnet::TCP_NODELAY
                | lnet::TCP_MAXSEG
                | lnet::TCP_CORK
                | lnet::TCP_KEEPIDLE
                | lnet::TCP_KEEPINTVL
                | lnet::TCP_KEEPCNT
                | lnet::TCP_SYNCNT
                | lnet::TCP_LINGER2
                | lnet::TCP_DEFER_ACCEPT
                | lnet::TCP_WINDOW_CLAMP
                | lnet::TCP_INFO
                | lnet::TCP_QUICKACK
                | lnet::TCP_CONGESTION
                | lnet::TCP_USER_TIMEOUT
                | lnet::TCP_FASTOPEN
                | lnet::TCP_NOTSENT_LOWAT
        ),
        IPPROTO_IP => matches!(
            name,
            lnet::IP_TOS
                | lnet::IP_TTL
                | lnet::IP_MTU_DISCOVER
                | lnet::IP_MULTICAST_IF
                | lnet::IP_MULTICAST_TTL
                | lnet::IP_MULTICAST_LOOP
                | lnet::IP_ADD_MEMBERSHIP
                | lnet::IP_DROP_MEMBERSHIP
                | lnet::IP_RECVERR
        ),
        SOL_NETLINK => matches!(name, NETLINK_ADD_MEMBERSHIP | NETLINK_DROP_MEMBERSHIP | NETLINK_PKTINFO | NETLINK_EXT_ACK | NETLINK_GET_STRICT_CHK),
        IPPROTO_IPV6 => matches!(
            name,
            lnet::IPV6_V6ONLY
                | lnet::IPV6_UNICAST_HOPS
                | lnet::IPV6_MULTICAST_IF
                | lnet::IPV6_MULTICAST_HOPS
                | lnet::IPV6_MULTICAST_LOOP
                | lnet::IPV6_ADD_MEMBERSHIP
                | lnet::IPV6_DROP_MEMBERSHIP
                | lnet::IPV6_TCLASS
                | lnet::IPV6_RECVERR
        ),
        _ => false,
    }
}

impl InetSocket {
    fn wrap(family: u32, ty: SockType, protocol: u32, host: HostSocket) -> Arc<InetSocket> {
        Arc::new_cyclic(|me| InetSocket { family, ty, protocol, host, st: SpinLock::new("inet", State::default()), me: Weak::clone(me) })
    }

    fn chan(&self) -> u64 {
        wchan_of(self)
    }

    /// Have the watcher wake this socket's sleepers and the pollers once the host socket is
    /// ready for `events`.
    fn arm(&self, events: u32) {
        let want = {
            let mut st = self.st.lock();
            if st.armed & events == events {
                return;
            }
            st.armed |= events;
            st.armed
        };
        let me = Weak::clone(&self.me);
        platform::hostsock::arm(
            self.host.raw_fd(),
            want,
            platform::cpu::curcpu(),
            Arc::new(move || {
                if let Some(s) = me.upgrade() {
                    s.st.lock().armed = 0;
                    wakeup(s.chan());
                }
                poll_wakeup();
            }),
        );
    }

    /// Run the host call `op` until it does not say EAGAIN: sleeping until the host socket is
    /// ready for `events` in between, unless `nonblock` (EAGAIN then).
    fn wait<T>(&self, events: u32, nonblock: bool, timeout: Option<Duration>, mut op: impl FnMut() -> HostResult<T>) -> Result<T, Errno> {
        loop {
            let g = sleepq_lock(self.chan());
            match op() {
                Err(e) if e == EAGAIN_HOST => {}
                r => return r.map_err(errno),
            }
            if nonblock {
                return Err(Errno::EAGAIN);
            }
            self.arm(events);
            sleep_result(tsleep_locked(g, "inet", SleepOpts { interruptible: true, timeout }), timeout)?;
        }
    }

    fn timeouts(&self) -> (Option<Duration>, Option<Duration>) {
        let st = self.st.lock();
        (st.rcvtimeo, st.sndtimeo)
    }

    fn addr_of(bytes: &[u8]) -> Option<SockAddr> {
        if bytes.len() < 2 { None } else { SockAddr::parse(bytes).ok() }
    }

    /// A blocking connect that the host has under way: wait until it is writable, then its
    /// outcome (SO_ERROR).
    fn finish_connect(&self) -> Result<(), Errno> {
        let (_, sndtimeo) = self.timeouts();
        loop {
            let g = sleepq_lock(self.chan());
            let r = self.host.poll_now(POLLOUT.cast_signed());
            if r != 0 {
                drop(g);
                break;
            }
            self.arm(EPOLLOUT);
            match sleep_result(tsleep_locked(g, "connect", SleepOpts { interruptible: true, timeout: sndtimeo }), sndtimeo) {
                Ok(()) => {}
                Err(Errno::EAGAIN) => return Err(Errno::EINPROGRESS),
                Err(e) => return Err(e),
            }
        }
        let (sol, so_error) = (crate::abi::c_int(lnet::SOL_SOCKET), crate::abi::c_int(lnet::SO_ERROR));
        let v = self.host.getsockopt(sol, so_error, 4).map_err(errno)?;
        let e = crate::net::opt_int(&v)?;
        if e != 0 { Err(errno(e)) } else { Ok(()) }
    }
}

/// SIOCATMARK (sockios.h).
const SIOCATMARK: u64 = 0x8905;

/// The host's EAGAIN (the same number as the guest's: both are Linux).
const EAGAIN_HOST: i32 = 11;

impl Socket for InetSocket {
    fn family(&self) -> u32 {
        self.family
    }

    fn sock_type(&self) -> SockType {
        self.ty
    }

    fn protocol(&self) -> u32 {
        if self.protocol != 0 {
            return self.protocol;
        }
        match self.ty {
            SockType::Stream => IPPROTO_TCP,
            SockType::Dgram => IPPROTO_UDP,
            _ => 0,
        }
    }

    fn bind(&self, c: &Caller<'_>, addr: &SockAddr) -> Result<(), Errno> {
        crate::net::check_bind_port(c, addr)?;
        self.host.bind(&addr.to_bytes()).map_err(errno)
    }

    fn listen(&self, backlog: i32) -> Result<(), Errno> {
        self.host.listen(backlog).map_err(errno)
    }

    fn accept(&self, nonblock: bool) -> Result<(SocketRef, SockAddr), Errno> {
        let (rcvtimeo, _) = self.timeouts();
        let (hs, addr) = self.wait(EPOLLIN, nonblock, rcvtimeo, || self.host.accept())?;
        let peer = Self::addr_of(&addr).unwrap_or(SockAddr::Unspec);
        let s: SocketRef = InetSocket::wrap(self.family, self.ty, self.protocol, hs);
        poll_wakeup();
        Ok((s, peer))
    }

    fn connect(&self, _c: &Caller<'_>, addr: &SockAddr, nonblock: bool) -> Result<(), Errno> {
        let bytes = addr.to_bytes();
        match self.host.connect(&bytes) {
            Ok(()) => Ok(()),
            Err(e) if errno(e) == Errno::EINPROGRESS && !nonblock && self.ty == SockType::Stream => {
                self.finish_connect()?;
                // The host socket is non-blocking: its connection stays "connecting" until
                // connect(2) is called again, which returns 0 and marks it connected; a
                // blocking connect has done that, so the guest's next connect is EISCONN.
                let _ = self.host.connect(&bytes);
                Ok(())
            }
            Err(e) => {
                if errno(e) == Errno::EINPROGRESS {
                    self.arm(EPOLLOUT);
                }
                Err(errno(e))
            }
        }
    }

    fn send(&self, _c: &Caller<'_>, a: SendArgs<'_>) -> Result<usize, Errno> {
        if !a.rights.is_empty() || a.creds.is_some() {
            return Err(Errno::EINVAL);
        }
        if self.family == lnet::AF_NETLINK {
            netlink_read_only(a.data)?;
        }
        let nonblock = a.nonblock || a.flags.contains(MsgFlags::DONTWAIT);
        let flags = (a.flags & (MsgFlags::OOB | MsgFlags::DONTROUTE | MsgFlags::EOR | MsgFlags::MORE | MsgFlags::CONFIRM)).bits();
        let to = a.to.as_ref().map(SockAddr::to_bytes);
        let (_, sndtimeo) = self.timeouts();
        let mut sent = 0;
        loop {
            let r = self.wait(EPOLLOUT, nonblock, sndtimeo, || {
                self.host.send(&a.data[sent..], i32::try_from(flags).unwrap_or(0), to.as_deref())
            });
            match r {
                Ok(n) => {
                    sent += n;
                    if sent >= a.data.len() || self.ty != SockType::Stream {
                        return Ok(sent);
                    }
                }
                Err(e) => return if sent > 0 { Ok(sent) } else { Err(e) },
            }
        }
    }

    fn recv(&self, len: usize, flags: MsgFlags, nonblock: bool) -> Result<Received, Errno> {
        if flags.contains(MsgFlags::ERRQUEUE) {
            // The host socket's error queue: never waited for (EAGAIN when it is empty, as on
            // Linux); its messages' control data (sock_extended_err) is not passed on.
            let mut buf = vec![0u8; len];
            let hflags = i32::try_from((MsgFlags::ERRQUEUE | MsgFlags::DONTWAIT | (flags & MsgFlags::PEEK)).bits()).unwrap_or(0);
            let (n, _) = self.host.recv(&mut buf, hflags).map_err(errno)?;
            buf.truncate(n.min(len));
            return Ok(Received { full_len: n, data: buf, ..Received::default() });
        }
        let nonblock = nonblock || flags.contains(MsgFlags::DONTWAIT);
        let waitall = flags.contains(MsgFlags::WAITALL) && !flags.contains(MsgFlags::PEEK) && self.ty == SockType::Stream;
        let mut hflags = (flags & (MsgFlags::OOB | MsgFlags::PEEK)).bits();
        if self.ty != SockType::Stream {
            // The datagram's full length, whatever the buffer (MSG_TRUNC's answer).
            hflags |= MsgFlags::TRUNC.bits();
        }
        let hflags = i32::try_from(hflags).unwrap_or(0);
        let (rcvtimeo, _) = self.timeouts();
        let mut buf = vec![0u8; len];
        let mut got = 0;
        let mut from = None;
        loop {
            let r = self.wait(EPOLLIN | EPOLLRDHUP, nonblock && got == 0, rcvtimeo, || self.host.recv(&mut buf[got..], hflags));
            match r {
                Ok((n, addr)) => {
                    if self.ty != SockType::Stream {
                        let kept = n.min(len);
                        buf.truncate(kept);
                        let tr = if n > len { MsgFlags::TRUNC } else { MsgFlags::empty() };
                        return Ok(Received { data: buf, full_len: n, from: Self::addr_of(&addr), flags: tr, ..Received::default() });
                    }
                    got += n;
                    if from.is_none() {
                        from = Self::addr_of(&addr);
                    }
                    if !waitall || n == 0 || got >= len {
                        break;
                    }
                }
                Err(e) if got == 0 => return Err(e),
                Err(_) => break,
            }
            if nonblock {
                break;
            }
        }
        buf.truncate(got);
        Ok(Received { full_len: got, data: buf, from, ..Received::default() })
    }

    fn shutdown(&self, how: Shutdown) -> Result<(), Errno> {
        let h = match (how.read, how.write) {
            (true, true) => lnet::SHUT_RDWR,
            (true, false) => lnet::SHUT_RD,
            _ => lnet::SHUT_WR,
        };
        let r = self.host.shutdown(i32::try_from(h).unwrap_or(2)).map_err(errno);
        wakeup(self.chan());
        poll_wakeup();
        r
    }

    fn local_addr(&self) -> Result<SockAddr, Errno> {
        let b = self.host.local_name().map_err(errno)?;
        SockAddr::parse(&b)
    }

    fn peer_addr(&self) -> Result<SockAddr, Errno> {
        let b = self.host.peer_name().map_err(errno)?;
        SockAddr::parse(&b)
    }

    fn setsockopt(&self, level: u32, name: u32, val: &[u8]) -> Result<(), Errno> {
        if level == lnet::SOL_SOCKET && matches!(name, lnet::SO_RCVTIMEO_OLD | lnet::SO_SNDTIMEO_OLD) {
            let t = timeval_to_timeout(val)?;
            let mut st = self.st.lock();
            if name == lnet::SO_RCVTIMEO_OLD { st.rcvtimeo = t } else { st.sndtimeo = t }
            return Ok(());
        }
        if !allowed(level, name) {
            return Err(Errno::ENOPROTOOPT);
        }
        let (l, n) = (i32::try_from(level).map_err(|_| Errno::EINVAL)?, i32::try_from(name).map_err(|_| Errno::EINVAL)?);
        self.host.setsockopt(l, n, val).map_err(errno)
    }

    fn getsockopt(&self, level: u32, name: u32) -> Result<Vec<u8>, Errno> {
        if level == lnet::SOL_SOCKET && matches!(name, lnet::SO_RCVTIMEO_OLD | lnet::SO_SNDTIMEO_OLD) {
            let (r, s) = self.timeouts();
            return Ok(timeout_to_timeval(if name == lnet::SO_RCVTIMEO_OLD { r } else { s }));
        }
        if !allowed(level, name) {
            return Err(unknown_option(self.family, self.protocol(), level));
        }
        let (l, n) = (i32::try_from(level).map_err(|_| Errno::EINVAL)?, i32::try_from(name).map_err(|_| Errno::EINVAL)?);
        self.host.getsockopt(l, n, 256).map_err(errno)
    }

    fn poll(&self) -> u16 {
        let ask = POLLIN | POLLOUT | POLLPRI | POLLRDHUP;
        let r = self.host.poll_now(ask.cast_signed()).cast_unsigned();
        // Wake pollers when what is not ready yet becomes ready.
        if r & (POLLHUP | POLLERR) == 0 {
            let mut missing = 0;
            if r & POLLIN == 0 {
                missing |= EPOLLIN | EPOLLRDHUP;
            }
            if r & POLLOUT == 0 {
                missing |= EPOLLOUT;
            }
            if missing != 0 {
                self.arm(missing);
            }
        }
        r
    }

    fn queued(&self, outq: bool) -> Result<usize, Errno> {
        let req = if outq { 0x5411 } else { 0x541b };
        let n = self.host.ioctl_int(req).map_err(errno)?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    fn at_mark(&self) -> Result<bool, Errno> {
        if self.ty != SockType::Stream || self.family == lnet::AF_NETLINK {
            return Err(Errno::ENOTTY);
        }
        Ok(self.host.ioctl_int(SIOCATMARK).map_err(errno)? != 0)
    }

    fn release(&self) {
        wakeup(self.chan());
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::netlink_read_only;
    use crate::kern::errno::Errno;

    /// A netlink header: length, type, flags (NLM_F_REQUEST | NLM_F_DUMP), seq, pid.
    fn msg(len: u32, ty: u16) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&len.to_ne_bytes());
        m.extend_from_slice(&ty.to_ne_bytes());
        m.extend_from_slice(&0x301u16.to_ne_bytes());
        m.extend_from_slice(&[0; 8]);
        m.resize(len as usize, 0);
        m
    }

    #[test]
    fn netlink_requests_are_read_only_and_end_where_linux_stops() {
        const RTM_GETLINK: u16 = 18;
        const RTM_GETADDR: u16 = 22;
        const RTM_NEWADDR: u16 = 20;
        assert_eq!(netlink_read_only(&msg(32, RTM_GETLINK)), Ok(()));
        // iproute2's dump request: one message in a zeroed 152-byte buffer.
        let mut ip = msg(24, RTM_GETADDR);
        ip.resize(152, 0);
        assert_eq!(netlink_read_only(&ip), Ok(()));
        assert_eq!(netlink_read_only(&msg(24, RTM_NEWADDR)), Err(Errno::EPERM));
        let mut train = msg(24, RTM_GETADDR);
        train.extend(msg(24, RTM_NEWADDR));
        assert_eq!(netlink_read_only(&train), Err(Errno::EPERM), "a change after a request");
        assert_eq!(netlink_read_only(&msg(16, 3)), Err(Errno::EPERM), "NLMSG_DONE is no request");
    }
}
