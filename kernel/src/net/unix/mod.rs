//! AF_UNIX sockets (unix(7)), in the kernel: SOCK_STREAM, SOCK_DGRAM and SOCK_SEQPACKET,
//! socketpair, names in the file system and in the abstract namespace, listen/accept,
//! credentials and descriptor passing.
//!
//! | file        | what it holds                                                          |
//! |-------------|-------------------------------------------------------------------------|
//! | `mod.rs`    | [`UnixSocket`]: state, bind, listen, connect, accept, shutdown, options, poll, release |
//! | `queue.rs`  | messages and their accounting; send and receive of the three types     |
//! | `names.rs`  | bound names (path inodes, the abstract namespace), autobind, all sockets (/proc/net/unix) |
//! | `gc.rs`     | descriptors in flight: counted, and collected when only cycles hold them |
//!
//! **Model** (Linux's af_unix.c): a message sent is queued on the *receiver*; its bytes are
//! charged to the *sender's* `wmem` until the receiver consumes it (sk_wmem_alloc), which is
//! what makes a sender wait (SO_SNDBUF). A stream connect creates the server's end at once
//! and queues it on the listener; the client is connected from then on, and accept only takes
//! the queued end (so a client can write before the server accepts).
//!
//! **Locks**: each socket's state is one spinlock (`unix`), never two at once: an operation
//! that involves the peer reads the peer's `Arc` under its own lock, lets it go, then locks
//! the peer. Sleepers lock the sleep queue first, then the state (as pipes do), so wakeups are
//! made with no state lock held, and messages (which hold files and wake their sender when
//! dropped) are dropped only with no lock held. `unix_inflight` (gc.rs) → `unix`.
//!
//! **Channels**: the socket's address (`rx_chan`) for readers and accept; `+1`
//! (`peer_wait_chan`) for senders waiting on this socket's queue (a full datagram queue or
//! listen backlog); the `wmem` record's address for its own senders.

mod gc;
mod names;
mod queue;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use platform::sync::SpinLock;

use crate::abi::net::{Ucred, lnet};
use crate::fs::namei::NamePath;
use crate::fs::vfs::{POLLERR, POLLHUP, POLLIN, POLLOUT, poll_wakeup};
use crate::kern::errno::Errno;
use crate::kern::sleep::{SleepOpts, SleepqGuard, tsleep_locked, wakeup, wchan_of};
use crate::kern::thread::WakeReason;
use crate::net::opts::SockOpts;
use crate::net::{Caller, Received, SendArgs, Shutdown, SockAddr, SockType, Socket, SocketRef, UnixAddr};
pub use gc::{inflight_count, collect as gc_collect};
pub use names::proc_net_unix;
pub use names::Ns;
use queue::Msg;

pub const POLLRDNORM: u16 = 0x040;
pub const POLLWRNORM: u16 = 0x100;
pub const POLLWRBAND: u16 = 0x200;
pub const POLLRDHUP: u16 = 0x2000;

/// The most connections a listen backlog takes (net.core.somaxconn).
const SOMAXCONN: usize = 4096;

/// Bytes a socket has queued at receivers and not yet had consumed (sk_wmem_alloc); its
/// address is the channel its senders wait on.
#[derive(Debug, Default)]
pub(crate) struct Wmem {
    bytes: AtomicUsize,
}

impl Wmem {
    fn chan(&self) -> u64 {
        wchan_of(self)
    }
    fn get(&self) -> usize {
        self.bytes.load(Ordering::Acquire)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conn {
    Unconnected,
    Listening,
    /// Connected (a stream or seqpacket end; a datagram socket with a default peer).
    Connected,
}

#[derive(Debug)]
struct State {
    conn: Conn,
    /// The bound name (None: not bound; getsockname says unnamed).
    addr: Option<UnixAddr>,
    /// The inode a path name made (kept while bound).
    bound: Option<NamePath>,
    peer: Option<Arc<UnixSocket>>,
    /// Messages received, oldest first; `rx_bytes` of unread data in them.
    rx: VecDeque<Msg>,
    rx_bytes: usize,
    /// A listener's connections not yet accepted, and how many it takes beyond one.
    backlog: VecDeque<Arc<UnixSocket>>,
    max_backlog: usize,
    /// sk_shutdown: no more receiving (RCV_SHUTDOWN), no more sending (SEND_SHUTDOWN).
    shut_rd: bool,
    shut_wr: bool,
    /// SO_ERROR (ECONNRESET when the peer closed with data unread).
    err: Option<Errno>,
    /// SO_PEERCRED: the peer's credentials when the connection was made (a listener's own,
    /// from listen).
    peercred: Option<Ucred>,
    opts: SockOpts,
    released: bool,
}

/// An AF_UNIX socket.
#[derive(Debug)]
pub struct UnixSocket {
    ty: SockType,
    /// Its names' table (AF_UNIX's, or the in-kernel loopback's ports).
    ns: Ns,
    st: SpinLock<State>,
    wmem: Arc<Wmem>,
    me: Weak<UnixSocket>,
    /// sockfs inode number (for /proc/net/unix).
    ino: AtomicU64,
    /// Its number in the list of all sockets.
    serial: u64,
}

/// socket(AF_UNIX, type, protocol): protocol must be 0 (or PF_UNIX).
pub fn create(ty: SockType, protocol: u32) -> Result<SocketRef, Errno> {
    if protocol != 0 && protocol != lnet::AF_UNIX {
        return Err(Errno::EPROTONOSUPPORT);
    }
    if ty == SockType::Raw {
        return Err(Errno::ESOCKTNOSUPPORT);
    }
    Ok(UnixSocket::new(ty))
}

/// socketpair(AF_UNIX, …): two sockets connected to each other, each knowing the other's
/// credentials (the caller's).
pub fn pair(c: &Caller<'_>, ty: SockType, protocol: u32) -> Result<(SocketRef, SocketRef), Errno> {
    if protocol != 0 && protocol != lnet::AF_UNIX {
        return Err(Errno::EPROTONOSUPPORT);
    }
    if ty == SockType::Raw {
        return Err(Errno::ESOCKTNOSUPPORT);
    }
    let a = UnixSocket::new(ty);
    let b = UnixSocket::new(ty);
    for (x, y) in [(&a, &b), (&b, &a)] {
        let mut st = x.st.lock();
        st.conn = Conn::Connected;
        st.peer = Some(Arc::clone(y));
        st.peercred = Some(c.ucred());
    }
    Ok((a, b))
}

/// Why a sleep ended badly: a timeout is EAGAIN, a signal ERESTARTSYS — or EINTR when a
/// timeout was set (sock_intr_errno).
fn sleep_error(r: WakeReason, timeout: Option<Duration>) -> Option<Errno> {
    match r {
        WakeReason::Woken => None,
        WakeReason::TimedOut => Some(Errno::EAGAIN),
        WakeReason::Interrupted => Some(if timeout.is_some() { Errno::EINTR } else { Errno::ERESTARTSYS }),
    }
}

/// Sleep on a locked channel, interruptibly, with an optional timeout.
fn sleep(g: SleepqGuard, wmesg: &str, timeout: Option<Duration>) -> Result<(), Errno> {
    match sleep_error(tsleep_locked(g, wmesg, SleepOpts { interruptible: true, timeout }), timeout) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

impl UnixSocket {
    fn new(ty: SockType) -> Arc<UnixSocket> {
        Self::new_in(ty, Ns::Unix)
    }

    /// A socket whose names live in `ns` (net::loopback's sockets are these).
    pub(crate) fn new_in(ty: SockType, ns: Ns) -> Arc<UnixSocket> {
        let serial = names::next_serial();
        let s = Arc::new_cyclic(|me| UnixSocket {
            ty,
            ns,
            st: SpinLock::new(
                "unix",
                State {
                    conn: Conn::Unconnected,
                    addr: None,
                    bound: None,
                    peer: None,
                    rx: VecDeque::new(),
                    rx_bytes: 0,
                    backlog: VecDeque::new(),
                    max_backlog: 0,
                    shut_rd: false,
                    shut_wr: false,
                    err: None,
                    peercred: None,
                    opts: SockOpts::default(),
                    released: false,
                },
            ),
            wmem: Arc::new(Wmem::default()),
            me: Weak::clone(me),
            ino: AtomicU64::new(0),
            serial,
        });
        names::register(&s);
        s
    }

    fn rx_chan(&self) -> u64 {
        wchan_of(self)
    }

    fn peer_wait_chan(&self) -> u64 {
        wchan_of(self) + 1
    }

    pub(crate) fn arc(&self) -> Option<Arc<UnixSocket>> {
        self.me.upgrade()
    }

    fn connection_oriented(&self) -> bool {
        matches!(self.ty, SockType::Stream | SockType::Seqpacket)
    }

    /// Wake everyone who waits on this socket, and pollers.
    fn wake_all(&self) {
        wakeup(self.rx_chan());
        wakeup(self.peer_wait_chan());
        wakeup(self.wmem.chan());
        poll_wakeup();
    }

    /// Give the socket an abstract name of five hex digits (autobind).
    fn autobind(&self) -> Result<(), Errno> {
        if self.st.lock().addr.is_some() {
            return Ok(());
        }
        let me = self.arc().ok_or(Errno::EINVAL)?;
        let name = names::autobind(&me)?;
        let mut st = self.st.lock();
        if st.addr.is_none() {
            st.addr = Some(UnixAddr::Abstract(name));
            return Ok(());
        }
        drop(st);
        names::unbind_abstract(&name, self);
        Ok(())
    }

    fn unix_addr(addr: &SockAddr) -> Result<&UnixAddr, Errno> {
        match addr {
            SockAddr::Unix(u) => Ok(u),
            _ => Err(Errno::EINVAL),
        }
    }

    /// The name of this socket as the guest sees it.
    fn name(&self) -> SockAddr {
        SockAddr::Unix(self.st.lock().addr.clone().unwrap_or(UnixAddr::Unnamed))
    }

    fn connect_stream(&self, c: &Caller<'_>, ua: &UnixAddr, nonblock: bool) -> Result<(), Errno> {
        let (passcred, timeout) = {
            let st = self.st.lock();
            match st.conn {
                Conn::Connected => return Err(Errno::EISCONN),
                Conn::Listening => return Err(Errno::EINVAL),
                Conn::Unconnected => {}
            }
            (st.opts.passcred, st.opts.sndtimeo)
        };
        if passcred {
            self.autobind()?;
        }
        let target = names::find(c, self.ns, ua)?;
        if target.ty != self.ty {
            return Err(Errno::EPROTOTYPE);
        }
        let me = self.arc().ok_or(Errno::ECONNREFUSED)?;
        loop {
            let g = crate::kern::sleep::sleepq_lock(target.peer_wait_chan());
            let mut tst = target.st.lock();
            if tst.released || tst.conn != Conn::Listening {
                return Err(Errno::ECONNREFUSED);
            }
            if tst.backlog.len() > tst.max_backlog {
                drop(tst);
                if nonblock {
                    return Err(Errno::EAGAIN);
                }
                sleep(g, "unixcon", timeout)?;
                continue;
            }
            // The server's end, connected to us, queued for accept. (It is new and nobody
            // else can reach it: its lock is taken under the listener's.)
            let server = UnixSocket::new_in(self.ty, self.ns);
            {
                let mut s = server.st.lock();
                s.conn = Conn::Connected;
                s.peer = Some(Arc::clone(&me));
                s.addr = tst.addr.clone();
                s.peercred = Some(c.ucred());
                s.opts.passcred = tst.opts.passcred;
            }
            let listener_cred = tst.peercred;
            tst.backlog.push_back(Arc::clone(&server));
            drop(tst);
            drop(g);
            let mut st = self.st.lock();
            if st.conn != Conn::Unconnected {
                // Another thread connected this socket meanwhile.
                drop(st);
                server.release();
                return Err(Errno::EISCONN);
            }
            st.conn = Conn::Connected;
            st.peer = Some(server);
            st.peercred = listener_cred;
            drop(st);
            wakeup(target.rx_chan());
            poll_wakeup();
            return Ok(());
        }
    }

    fn connect_dgram(&self, c: &Caller<'_>, addr: &SockAddr) -> Result<(), Errno> {
        if *addr == SockAddr::Unspec {
            // Dissolve the association.
            let old = {
                let mut st = self.st.lock();
                st.conn = Conn::Unconnected;
                st.peer.take()
            };
            drop(old);
            poll_wakeup();
            return Ok(());
        }
        let ua = Self::unix_addr(addr)?;
        if self.st.lock().opts.passcred {
            self.autobind()?;
        }
        let target = names::find(c, self.ns, ua)?;
        if target.ty != self.ty {
            return Err(Errno::EPROTOTYPE);
        }
        let old = {
            let mut st = self.st.lock();
            st.conn = Conn::Connected;
            st.peer.replace(target)
        };
        drop(old);
        poll_wakeup();
        Ok(())
    }

    /// SO_PEERCRED when there is no peer: no pid, ids of -1 (Linux's cred_to_ucred without
    /// a cred).
    fn no_cred() -> Ucred {
        Ucred { pid: 0, uid: u32::MAX, gid: u32::MAX }
    }
}

impl Socket for UnixSocket {
    fn family(&self) -> u32 {
        lnet::AF_UNIX
    }

    fn sock_type(&self) -> SockType {
        self.ty
    }

    fn bind(&self, c: &Caller<'_>, addr: &SockAddr) -> Result<(), Errno> {
        let ua = Self::unix_addr(addr)?;
        if self.st.lock().addr.is_some() {
            return Err(Errno::EINVAL);
        }
        let me = self.arc().ok_or(Errno::EINVAL)?;
        match ua {
            UnixAddr::Unnamed => self.autobind(),
            UnixAddr::Abstract(n) => {
                names::bind_abstract(n, &me)?;
                let mut st = self.st.lock();
                if st.addr.is_some() {
                    drop(st);
                    names::unbind_abstract(n, self);
                    return Err(Errno::EINVAL);
                }
                st.addr = Some(ua.clone());
                Ok(())
            }
            UnixAddr::Path(p) => {
                let np = c.paths.bind_path(p, 0o777)?;
                let mut st = self.st.lock();
                if st.addr.is_some() {
                    drop(st);
                    c.paths.unbind_path(p);
                    return Err(Errno::EINVAL);
                }
                names::bind_inode(np.vnode().id(), &me);
                st.addr = Some(ua.clone());
                st.bound = Some(np);
                Ok(())
            }
        }
    }

    fn listen(&self, backlog: i32) -> Result<(), Errno> {
        if !self.connection_oriented() {
            return Err(Errno::EOPNOTSUPP);
        }
        let c = Caller::current();
        let mut st = self.st.lock();
        if st.addr.is_none() || st.conn == Conn::Connected {
            return Err(Errno::EINVAL);
        }
        st.max_backlog = usize::try_from(backlog).unwrap_or(0).min(SOMAXCONN);
        if st.conn != Conn::Listening {
            st.conn = Conn::Listening;
            st.peercred = c.map(|c| c.ucred());
        }
        drop(st);
        // A larger backlog may let waiting connectors in.
        wakeup(self.peer_wait_chan());
        Ok(())
    }

    fn accept(&self, nonblock: bool) -> Result<(SocketRef, SockAddr), Errno> {
        loop {
            let g = crate::kern::sleep::sleepq_lock(self.rx_chan());
            let mut st = self.st.lock();
            if st.conn != Conn::Listening {
                return Err(Errno::EINVAL);
            }
            if let Some(s) = st.backlog.pop_front() {
                drop(st);
                if s.st.lock().released {
                    continue;
                }
                drop(g);
                wakeup(self.peer_wait_chan());
                poll_wakeup();
                let peer = s.st.lock().peer.clone();
                let addr = peer.map_or(SockAddr::Unix(UnixAddr::Unnamed), |p| p.name());
                return Ok((s, addr));
            }
            let timeout = st.opts.rcvtimeo;
            drop(st);
            if nonblock {
                return Err(Errno::EAGAIN);
            }
            sleep(g, "accept", timeout)?;
        }
    }

    fn connect(&self, c: &Caller<'_>, addr: &SockAddr, nonblock: bool) -> Result<(), Errno> {
        match self.ty {
            SockType::Dgram => self.connect_dgram(c, addr),
            _ => self.connect_stream(c, Self::unix_addr(addr)?, nonblock),
        }
    }

    fn send(&self, c: &Caller<'_>, a: SendArgs<'_>) -> Result<usize, Errno> {
        match self.ty {
            SockType::Stream => self.send_stream(c, a),
            _ => self.send_dgram(c, a),
        }
    }

    fn recv(&self, len: usize, flags: crate::abi::net::MsgFlags, nonblock: bool) -> Result<Received, Errno> {
        match self.ty {
            SockType::Stream => self.recv_stream(len, flags, nonblock),
            _ => self.recv_dgram(len, flags, nonblock),
        }
    }

    fn shutdown(&self, how: Shutdown) -> Result<(), Errno> {
        let peer = {
            let mut st = self.st.lock();
            st.shut_rd |= how.read;
            st.shut_wr |= how.write;
            st.peer.clone()
        };
        if let Some(p) = peer.filter(|_| self.connection_oriented()) {
            let mut pst = p.st.lock();
            pst.shut_wr |= how.read;
            pst.shut_rd |= how.write;
            drop(pst);
            p.wake_all();
        }
        self.wake_all();
        Ok(())
    }

    fn local_addr(&self) -> Result<SockAddr, Errno> {
        Ok(self.name())
    }

    fn peer_addr(&self) -> Result<SockAddr, Errno> {
        let peer = {
            let st = self.st.lock();
            if st.conn != Conn::Connected {
                return Err(Errno::ENOTCONN);
            }
            st.peer.clone()
        };
        Ok(peer.ok_or(Errno::ENOTCONN)?.name())
    }

    fn setsockopt(&self, level: u32, name: u32, val: &[u8]) -> Result<(), Errno> {
        if level != lnet::SOL_SOCKET {
            return Err(Errno::EOPNOTSUPP);
        }
        let mut st = self.st.lock();
        if st.opts.set(name, val)? {
            drop(st);
            // A larger SO_SNDBUF may let a waiting sender go.
            self.wake_all();
            return Ok(());
        }
        Err(Errno::ENOPROTOOPT)
    }

    fn getsockopt(&self, level: u32, name: u32) -> Result<Vec<u8>, Errno> {
        if level != lnet::SOL_SOCKET {
            return Err(Errno::EOPNOTSUPP);
        }
        let mut st = self.st.lock();
        if let Some(v) = st.opts.get(name) {
            return Ok(v);
        }
        match name {
            lnet::SO_PEERCRED => Ok(zerocopy::IntoBytes::as_bytes(&st.peercred.unwrap_or_else(Self::no_cred)).to_vec()),
            lnet::SO_ERROR => Ok(crate::net::int_opt(st.err.take().map_or(0, Errno::num))),
            lnet::SO_ACCEPTCONN => Ok(crate::net::int_opt(i32::from(st.conn == Conn::Listening))),
            _ => Err(Errno::ENOPROTOOPT),
        }
    }

    fn poll(&self) -> u16 {
        let st = self.st.lock();
        let mut m = 0;
        if st.err.is_some() {
            m |= POLLERR;
        }
        if st.shut_rd && st.shut_wr {
            m |= POLLHUP;
        }
        if st.shut_rd {
            m |= POLLRDHUP | POLLIN | POLLRDNORM;
        }
        if !st.rx.is_empty() || !st.backlog.is_empty() {
            m |= POLLIN | POLLRDNORM;
        }
        if self.connection_oriented() && st.conn == Conn::Unconnected {
            m |= POLLHUP;
        }
        // unix_writable: not listening, and a quarter of the send buffer or less in use.
        let mut writable = st.conn != Conn::Listening && self.wmem.get() << 2 <= st.opts.sndbuf;
        let peer = if self.ty == SockType::Dgram && writable { st.peer.clone() } else { None };
        drop(st);
        if let Some(p) = peer {
            // A connected datagram socket whose peer's queue is full (and who is not
            // connected back to it) waits for room.
            let pst = p.st.lock();
            let back = pst.peer.as_ref().is_some_and(|x| std::ptr::eq(Arc::as_ptr(x), self));
            if !back && pst.rx.len() > queue::MAX_DGRAM_QLEN {
                writable = false;
            }
        }
        if writable {
            m |= POLLOUT | POLLWRNORM | POLLWRBAND;
        }
        m
    }

    fn queued(&self, outq: bool) -> Result<usize, Errno> {
        let st = self.st.lock();
        if st.conn == Conn::Listening {
            return Err(Errno::EINVAL);
        }
        if outq {
            return Ok(self.wmem.get());
        }
        Ok(match self.ty {
            SockType::Stream => st.rx_bytes,
            // The size of the next datagram.
            _ => st.rx.front().map_or(0, Msg::unread),
        })
    }

    fn release(&self) {
        let (peer, backlog, rx, addr) = {
            let mut st = self.st.lock();
            st.released = true;
            st.shut_rd = true;
            st.shut_wr = true;
            st.conn = Conn::Unconnected;
            st.rx_bytes = 0;
            st.bound = None;
            (st.peer.take(), std::mem::take(&mut st.backlog), std::mem::take(&mut st.rx), st.addr.clone())
        };
        if let Some(UnixAddr::Abstract(n)) = &addr {
            names::unbind_abstract(n, self);
        }
        names::unbind_inode(self);
        if let Some(p) = peer.as_ref().filter(|_| self.connection_oriented()) {
            let mut pst = p.st.lock();
            if pst.peer.as_ref().is_some_and(|x| std::ptr::eq(Arc::as_ptr(x), self)) {
                pst.shut_rd = true;
                pst.shut_wr = true;
                if !rx.is_empty() || !backlog.is_empty() {
                    pst.err = Some(Errno::ECONNRESET);
                }
            }
            drop(pst);
            p.wake_all();
        }
        // Connections never accepted go with the listener.
        for s in &backlog {
            s.release();
        }
        drop(rx);
        drop(backlog);
        drop(peer);
        self.wake_all();
    }

    fn set_ino(&self, ino: u64) {
        self.ino.store(ino, Ordering::Relaxed);
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

impl Drop for UnixSocket {
    fn drop(&mut self) {
        names::unregister(self.serial);
    }
}


#[cfg(test)]
mod tests;
