//! Networking: sockets (socket(7)) as descriptors, and the address families behind them.
//!
//! ```text
//!  sys/socket*.rs ──► Socket (this trait) ──► unix/    AF_UNIX, in the kernel
//!        │                                 └► inet/    AF_INET, AF_INET6 (hostinet: host sockets)
//!        └─ file.rs: a socket is a Vnode (read, write, poll, fstat) of sockfs
//! ```
//!
//! | file        | what it holds                                                            |
//! |-------------|---------------------------------------------------------------------------|
//! | `mod.rs`    | the [`Socket`] trait, socket types, [`Caller`], send and receive records   |
//! | `addr.rs`   | socket addresses: parsed from and written back to the guest's bytes       |
//! | `file.rs`   | the file glue: [`SocketFile`] (a descriptor's vnode), sockfs               |
//! | `opts.rs`   | the SOL_SOCKET options a socket keeps itself (buffers, timeouts, flags)    |
//! | `unix/`     | AF_UNIX: stream, datagram and seqpacket sockets, names, descriptor passing |
//! | `inet.rs`   | AF_INET, AF_INET6, NETLINK_ROUTE: host sockets (hostinet), the watcher     |
//! | `loopback.rs` | `-e net=none`: TCP and UDP on a loopback inside the kernel (unix's machinery) |
//!
//! A socket's operations run in the calling guest thread's kernel thread and may sleep
//! (tsleep on the socket's channels, interruptible); readiness is [`Socket::poll`], and any
//! change of it calls [`poll_wakeup`](crate::fs::vfs::poll_wakeup), the VFS's one poll
//! mechanism (poll, select, and epoll on top of it).
//!
//! Options every socket answers the same way (SO_TYPE, SO_DOMAIN, SO_PROTOCOL) are answered
//! by the system call layer; the rest by the socket.

pub mod addr;
pub mod file;
pub mod inet;
pub mod loopback;
pub mod opts;
pub mod unix;

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use crate::abi::net::{MsgFlags, Ucred, lnet};
use crate::fs::file::File;
use crate::fs::namei::NamePath;
use crate::fs::vfs::VnodeRef;
use crate::kern::errno::Errno;
pub use addr::{SockAddr, UnixAddr};

pub type SocketRef = Arc<dyn Socket>;

/// A socket's type (socket(2)'s `type` without the flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SockType {
    Stream,
    Dgram,
    Seqpacket,
    Raw,
}

impl SockType {
    /// From socket(2)'s type (flags removed): ESOCKTNOSUPPORT for a type Linux does not have.
    pub fn from_raw(t: u32) -> Result<SockType, Errno> {
        match t {
            lnet::SOCK_STREAM => Ok(SockType::Stream),
            lnet::SOCK_DGRAM => Ok(SockType::Dgram),
            lnet::SOCK_SEQPACKET => Ok(SockType::Seqpacket),
            lnet::SOCK_RAW => Ok(SockType::Raw),
            _ => Err(Errno::EINVAL),
        }
    }

    pub fn raw(self) -> u32 {
        match self {
            SockType::Stream => lnet::SOCK_STREAM,
            SockType::Dgram => lnet::SOCK_DGRAM,
            SockType::Seqpacket => lnet::SOCK_SEQPACKET,
            SockType::Raw => lnet::SOCK_RAW,
        }
    }
}

/// shutdown(2)'s `how`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shutdown {
    pub read: bool,
    pub write: bool,
}

impl Shutdown {
    /// SHUT_RD, SHUT_WR, SHUT_RDWR (EINVAL for anything else).
    pub fn from_raw(how: i32) -> Result<Shutdown, Errno> {
        match u32::try_from(how) {
            Ok(lnet::SHUT_RD) => Ok(Shutdown { read: true, write: false }),
            Ok(lnet::SHUT_WR) => Ok(Shutdown { read: false, write: true }),
            Ok(lnet::SHUT_RDWR) => Ok(Shutdown { read: true, write: true }),
            _ => Err(Errno::EINVAL),
        }
    }
}

/// What a socket needs of the VFS on the caller's behalf: bind(2) and connect(2) to a path
/// name (unix(7)), with the caller's working directory, umask and permissions.
pub trait PathOps {
    /// Make the socket inode `path` (S_IFSOCK, `mode` less the umask): EADDRINUSE when the
    /// name exists.
    fn bind_path(&self, path: &[u8], mode: u32) -> Result<NamePath, Errno>;
    /// The inode at `path` (symbolic links followed), with write permission on it checked
    /// (connect(2) and sendto(2) need it).
    fn connect_path(&self, path: &[u8]) -> Result<VnodeRef, Errno>;
    /// Remove the name `bind_path` made (a bind that failed after it).
    fn unbind_path(&self, path: &[u8]);
}

/// No path names (a socket written through write(2), which never names one).
#[derive(Debug, Clone, Copy)]
pub struct NoPaths;

impl PathOps for NoPaths {
    fn bind_path(&self, _: &[u8], _: u32) -> Result<NamePath, Errno> {
        Err(Errno::EINVAL)
    }
    fn connect_path(&self, _: &[u8]) -> Result<VnodeRef, Errno> {
        Err(Errno::EINVAL)
    }
    fn unbind_path(&self, _: &[u8]) {}
}

/// Who is calling: the process and credentials a socket records (SO_PEERCRED,
/// SCM_CREDENTIALS), and its path operations.
pub struct Caller<'a> {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
    /// CAP_SYS_ADMIN (SCM_CREDENTIALS may then carry any pid), CAP_SETUID, CAP_SETGID.
    pub cred: Arc<crate::kern::cred::Cred>,
    pub paths: &'a dyn PathOps,
}

impl Caller<'_> {
    /// The calling process's credentials as `struct ucred` (pid, effective uid and gid).
    pub fn ucred(&self) -> Ucred {
        Ucred { pid: self.pid.cast_unsigned(), uid: self.uid, gid: self.gid }
    }
}

impl Caller<'static> {
    /// The process of the running thread (a read or write on a socket descriptor, which
    /// needs credentials but no path). None off a guest thread.
    pub fn current() -> Option<Caller<'static>> {
        let td = crate::kern::sched::curthread()?;
        let p = td.proc_()?;
        let u = p.as_user()?;
        let cred = u.cred();
        Some(Caller { pid: p.pid, uid: cred.euid, gid: cred.egid, cred, paths: &NoPaths })
    }
}

/// One send: sendmsg(2)'s data, destination and control messages.
#[derive(Debug, Default)]
pub struct SendArgs<'a> {
    pub data: &'a [u8],
    pub to: Option<SockAddr>,
    /// SCM_RIGHTS: open files to pass.
    pub rights: Vec<Arc<File>>,
    /// SCM_CREDENTIALS as the sender gave them (checked by the socket).
    pub creds: Option<Ucred>,
    pub flags: MsgFlags,
    pub nonblock: bool,
}

/// One receive: what recvmsg(2) hands back.
#[derive(Debug, Default)]
pub struct Received {
    pub data: Vec<u8>,
    /// The message's full length (a datagram longer than the buffer: MSG_TRUNC returns it).
    pub full_len: usize,
    pub from: Option<SockAddr>,
    pub rights: Vec<Arc<File>>,
    pub creds: Option<Ucred>,
    /// MSG_TRUNC, MSG_CTRUNC, MSG_EOR as they apply.
    pub flags: MsgFlags,
}

/// A socket of some family. Blocking operations sleep interruptibly (ERESTARTSYS, or EINTR
/// once a timeout is set, as Linux's sock_intr_errno) unless `nonblock`.
pub trait Socket: Send + Sync + Debug {
    /// AF_UNIX, AF_INET, …
    fn family(&self) -> u32;
    fn sock_type(&self) -> SockType;
    fn protocol(&self) -> u32 {
        0
    }

    fn bind(&self, c: &Caller<'_>, addr: &SockAddr) -> Result<(), Errno>;
    fn listen(&self, backlog: i32) -> Result<(), Errno>;
    /// A connection from the queue, and the address of its peer.
    fn accept(&self, nonblock: bool) -> Result<(SocketRef, SockAddr), Errno>;
    fn connect(&self, c: &Caller<'_>, addr: &SockAddr, nonblock: bool) -> Result<(), Errno>;
    /// Bytes sent (a stream may send part before it would block).
    fn send(&self, c: &Caller<'_>, a: SendArgs<'_>) -> Result<usize, Errno>;
    fn recv(&self, len: usize, flags: MsgFlags, nonblock: bool) -> Result<Received, Errno>;
    fn shutdown(&self, how: Shutdown) -> Result<(), Errno>;
    fn local_addr(&self) -> Result<SockAddr, Errno>;
    fn peer_addr(&self) -> Result<SockAddr, Errno>;
    fn setsockopt(&self, level: u32, name: u32, val: &[u8]) -> Result<(), Errno>;
    /// The option's value as bytes (an `int`, a `struct ucred`, …).
    fn getsockopt(&self, level: u32, name: u32) -> Result<Vec<u8>, Errno>;
    /// poll(2) readiness (POLLIN, POLLOUT, POLLHUP, POLLRDHUP, POLLERR … as Linux reports
    /// them for this kind of socket).
    fn poll(&self) -> u16;
    /// Counts of the wake-ups it sent (data arriving, room appearing), for edge-triggered
    /// epoll ([`crate::fs::vfs::Vnode::poll_gen`]); (0, 0): rising edges of `poll` only.
    fn poll_gen(&self) -> (u64, u64) {
        (0, 0)
    }
    /// FIONREAD/SIOCINQ (bytes ready to read) and SIOCOUTQ (bytes sent, not yet read).
    fn queued(&self, _outq: bool) -> Result<usize, Errno> {
        Err(Errno::ENOTTY)
    }
    /// SIOCATMARK: whether the next byte to read is urgent data's mark (TCP; others ENOTTY).
    fn at_mark(&self) -> Result<bool, Errno> {
        Err(Errno::ENOTTY)
    }
    /// The last descriptor of it was closed.
    fn release(&self);
    /// Its inode number in sockfs (for fstat, /proc/PID/fd and /proc/net).
    fn set_ino(&self, _ino: u64) {}
    /// The socket as its own type (a family finds its sockets among descriptors).
    fn as_any(&self) -> &dyn std::any::Any;
}

/// The first port a process may bind without CAP_NET_BIND_SERVICE (Linux's default
/// net.ipv4.ip_unprivileged_port_start).
pub const UNPRIVILEGED_PORT_START: u16 = 1024;

/// bind(2) of an AF_INET/AF_INET6 port below 1024 needs CAP_NET_BIND_SERVICE (EACCES, as
/// inet_bind), whoever the kernel process is on the host: the guest's own credentials decide.
pub fn check_bind_port(c: &Caller<'_>, addr: &SockAddr) -> Result<(), Errno> {
    let port = match addr {
        SockAddr::V4(a) => a.port(),
        SockAddr::V6(a) => a.port(),
        _ => return Ok(()),
    };
    if port != 0 && port < UNPRIVILEGED_PORT_START && !c.cred.capable(linux_raw_sys::general::CAP_NET_BIND_SERVICE) {
        return Err(Errno::EACCES);
    }
    Ok(())
}

/// A timeout option's value (SO_RCVTIMEO, SO_SNDTIMEO): `struct timeval`, zero for none.
pub fn timeval_to_timeout(val: &[u8]) -> Result<Option<Duration>, Errno> {
    let tv: crate::abi::time::Timeval = zerocopy::FromBytes::read_from_prefix(val).map(|(v, _)| v).map_err(|_| Errno::EINVAL)?;
    let usec = u64::try_from(tv.tv_usec).map_err(|_| Errno::EDOM)?;
    if usec >= 1_000_000 {
        return Err(Errno::EDOM);
    }
    // A negative time is no timeout (sock_set_timeout).
    let Ok(sec) = u64::try_from(tv.tv_sec) else { return Ok(None) };
    let d = Duration::from_secs(sec) + Duration::from_micros(usec);
    Ok(if d.is_zero() { None } else { Some(d) })
}

/// A timeout option's value back as `struct timeval` bytes.
pub fn timeout_to_timeval(t: Option<Duration>) -> Vec<u8> {
    let (sec, usec) = t.map_or((0, 0), |d| (i64::try_from(d.as_secs()).unwrap_or(i64::MAX), i64::from(d.subsec_micros())));
    zerocopy::IntoBytes::as_bytes(&crate::abi::time::Timeval { tv_sec: sec, tv_usec: usec }).to_vec()
}

/// An `int` option value (EINVAL when shorter than an int).
pub fn opt_int(val: &[u8]) -> Result<i32, Errno> {
    let b: [u8; 4] = val.get(..4).and_then(|b| b.try_into().ok()).ok_or(Errno::EINVAL)?;
    Ok(i32::from_ne_bytes(b))
}

/// An `int` option's bytes.
pub fn int_opt(v: i32) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

/// Which network the guest has (`-e net=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetMode {
    /// `host` (the default): AF_INET/AF_INET6 are host sockets.
    Host,
    /// `none`: a loopback inside the kernel, nothing reaches the host.
    None,
}

/// The network `-e net=` chose (`none`, or `host` for anything else).
pub fn mode() -> NetMode {
    static MODE: std::sync::OnceLock<NetMode> = std::sync::OnceLock::new();
    *MODE.get_or_init(|| match crate::kern::kenv::get("net") {
        Some("none") => NetMode::None,
        Some("host") | None => NetMode::Host,
        Some(other) => {
            crate::kprintf!("net: unknown network \"{other}\" (host, none): host\n");
            NetMode::Host
        }
    })
}

/// socket(2): a socket of `family`, `ty` and `protocol` (EAFNOSUPPORT for a family vk does
/// not have).
pub fn create(family: u32, ty: SockType, protocol: u32) -> Result<SocketRef, Errno> {
    match family {
        lnet::AF_UNIX => unix::create(ty, protocol),
        lnet::AF_INET | lnet::AF_INET6 if mode() == NetMode::None => loopback::create(family, ty, protocol),
        lnet::AF_INET | lnet::AF_INET6 | lnet::AF_NETLINK => inet::create(family, ty, protocol),
        _ => Err(Errno::EAFNOSUPPORT),
    }
}

/// socketpair(2): two connected sockets (AF_UNIX only, as on Linux; EOPNOTSUPP for the
/// others, once socket(2)'s checks of the type and protocol have passed, as Linux makes the
/// first socket before it asks for a pair).
pub fn pair(c: &Caller<'_>, family: u32, ty: SockType, protocol: u32) -> Result<(SocketRef, SocketRef), Errno> {
    match family {
        lnet::AF_UNIX => unix::pair(c, ty, protocol),
        lnet::AF_INET | lnet::AF_INET6 => create(family, ty, protocol).and(Err(Errno::EOPNOTSUPP)),
        _ => Err(Errno::EAFNOSUPPORT),
    }
}
