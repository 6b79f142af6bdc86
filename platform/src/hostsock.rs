//! Host sockets for the kernel's AF_INET and AF_INET6 sockets (hostinet, gVisor's
//! `--network=host`): a guest socket is a host socket the kernel process owns.
//!
//! Every host socket is non-blocking and close-on-exec, and every send carries MSG_NOSIGNAL:
//! no host call here ever waits or raises a signal. A kernel thread that must wait asks the
//! [watcher](arm) — one host thread with one epoll instance — to call it back when the socket
//! is ready; the callback runs on a CPU at its next safe point (a posted cross-CPU call, as io
//! completions), never on the watcher thread. Addresses cross as the bytes of a `struct
//! sockaddr_*`; errors are the host's errno, which the kernel passes to the guest.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex, OnceLock};

/// The longest socket address (`struct sockaddr_storage`).
const ADDR_MAX: usize = 128;

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
}

/// A result of a host call: the value, or the host's errno.
pub type HostResult<T> = Result<T, i32>;

fn check(r: libc::c_int) -> HostResult<libc::c_int> {
    if r < 0 { Err(errno()) } else { Ok(r) }
}

fn check_len(r: isize) -> HostResult<usize> {
    usize::try_from(r).map_err(|_| errno())
}

/// A host socket (closed when dropped; its watch is removed first).
#[derive(Debug)]
pub struct HostSocket {
    fd: OwnedFd,
}

impl HostSocket {
    /// socket(2) on the host, non-blocking and close-on-exec.
    pub fn new(domain: i32, ty: i32, protocol: i32) -> HostResult<HostSocket> {
        // SAFETY: socket(2) takes plain integers; the descriptor it returns is new and ours.
        let fd = check(unsafe { libc::socket(domain, ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, protocol) })?;
        // SAFETY: `fd` is a descriptor we just opened and nothing else owns.
        Ok(HostSocket { fd: unsafe { OwnedFd::from_raw_fd(fd) } })
    }

    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn addr_len(addr: &[u8]) -> HostResult<libc::socklen_t> {
        libc::socklen_t::try_from(addr.len()).map_err(|_| libc::EINVAL)
    }

    pub fn bind(&self, addr: &[u8]) -> HostResult<()> {
        let len = Self::addr_len(addr)?;
        // SAFETY: `addr` is `len` readable bytes for the duration of the call.
        check(unsafe { libc::bind(self.raw_fd(), addr.as_ptr().cast(), len) }).map(drop)
    }

    pub fn listen(&self, backlog: i32) -> HostResult<()> {
        // SAFETY: listen(2) on our descriptor.
        check(unsafe { libc::listen(self.raw_fd(), backlog) }).map(drop)
    }

    /// accept4(2): the new connection (non-blocking, close-on-exec) and its peer's address.
    pub fn accept(&self) -> HostResult<(HostSocket, Vec<u8>)> {
        let mut buf = [0u8; ADDR_MAX];
        let mut len = ADDR_MAX as libc::socklen_t;
        // SAFETY: the address buffer is ADDR_MAX writable bytes and `len` says so; the
        // descriptor returned is new and ours.
        let fd = check(unsafe {
            libc::accept4(self.raw_fd(), buf.as_mut_ptr().cast(), &mut len, libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
        })?;
        // SAFETY: `fd` was just returned to us by accept4.
        let s = HostSocket { fd: unsafe { OwnedFd::from_raw_fd(fd) } };
        Ok((s, buf[..(len as usize).min(ADDR_MAX)].to_vec()))
    }

    /// connect(2): EINPROGRESS for a connection under way.
    pub fn connect(&self, addr: &[u8]) -> HostResult<()> {
        let len = Self::addr_len(addr)?;
        // SAFETY: `addr` is `len` readable bytes for the duration of the call.
        check(unsafe { libc::connect(self.raw_fd(), addr.as_ptr().cast(), len) }).map(drop)
    }

    /// sendto(2) without waiting and without SIGPIPE.
    pub fn send(&self, data: &[u8], flags: i32, to: Option<&[u8]>) -> HostResult<usize> {
        let flags = flags | libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
        let (ap, al) = match to {
            Some(a) => (a.as_ptr(), Self::addr_len(a)?),
            None => (std::ptr::null(), 0),
        };
        // SAFETY: `data` is readable for its length; the address is null or `al` readable bytes.
        check_len(unsafe { libc::sendto(self.raw_fd(), data.as_ptr().cast(), data.len(), flags, ap.cast(), al) })
    }

    /// recvfrom(2) without waiting: the length (the datagram's full length with MSG_TRUNC)
    /// and the sender's address (empty when there is none).
    pub fn recv(&self, buf: &mut [u8], flags: i32) -> HostResult<(usize, Vec<u8>)> {
        let mut addr = [0u8; ADDR_MAX];
        let mut len = ADDR_MAX as libc::socklen_t;
        // SAFETY: `buf` is writable for its length, `addr` for ADDR_MAX bytes as `len` says.
        let n = check_len(unsafe {
            libc::recvfrom(self.raw_fd(), buf.as_mut_ptr().cast(), buf.len(), flags | libc::MSG_DONTWAIT, addr.as_mut_ptr().cast(), &mut len)
        })?;
        Ok((n, addr[..(len as usize).min(ADDR_MAX)].to_vec()))
    }

    pub fn shutdown(&self, how: i32) -> HostResult<()> {
        // SAFETY: shutdown(2) on our descriptor.
        check(unsafe { libc::shutdown(self.raw_fd(), how) }).map(drop)
    }

    fn name_of(&self, peer: bool) -> HostResult<Vec<u8>> {
        let mut buf = [0u8; ADDR_MAX];
        let mut len = ADDR_MAX as libc::socklen_t;
        let p = buf.as_mut_ptr().cast();
        // SAFETY: the buffer is ADDR_MAX writable bytes and `len` says so.
        let r = unsafe { if peer { libc::getpeername(self.raw_fd(), p, &mut len) } else { libc::getsockname(self.raw_fd(), p, &mut len) } };
        check(r)?;
        Ok(buf[..(len as usize).min(ADDR_MAX)].to_vec())
    }

    /// getsockname(2).
    pub fn local_name(&self) -> HostResult<Vec<u8>> {
        self.name_of(false)
    }

    /// getpeername(2).
    pub fn peer_name(&self) -> HostResult<Vec<u8>> {
        self.name_of(true)
    }

    pub fn setsockopt(&self, level: i32, name: i32, val: &[u8]) -> HostResult<()> {
        let len = libc::socklen_t::try_from(val.len()).map_err(|_| libc::EINVAL)?;
        // SAFETY: `val` is `len` readable bytes for the duration of the call.
        check(unsafe { libc::setsockopt(self.raw_fd(), level, name, val.as_ptr().cast(), len) }).map(drop)
    }

    /// getsockopt(2) into a buffer of `max` bytes: the bytes the host wrote.
    pub fn getsockopt(&self, level: i32, name: i32, max: usize) -> HostResult<Vec<u8>> {
        let mut buf = vec![0u8; max];
        let mut len = libc::socklen_t::try_from(max).map_err(|_| libc::EINVAL)?;
        // SAFETY: `buf` is `len` writable bytes.
        check(unsafe { libc::getsockopt(self.raw_fd(), level, name, buf.as_mut_ptr().cast(), &mut len) })?;
        buf.truncate(len as usize);
        Ok(buf)
    }

    /// The socket's readiness now (poll(2) with no wait): the revents of `events`.
    pub fn poll_now(&self, events: i16) -> i16 {
        let mut p = libc::pollfd { fd: self.raw_fd(), events, revents: 0 };
        // SAFETY: one pollfd we own; zero timeout.
        let r = unsafe { libc::poll(&mut p, 1, 0) };
        if r > 0 { p.revents } else { 0 }
    }

    /// An `int` ioctl (FIONREAD, SIOCOUTQ).
    pub fn ioctl_int(&self, req: u64) -> HostResult<i32> {
        let mut v: libc::c_int = 0;
        // SAFETY: the request writes one int, which `v` is.
        check(unsafe { libc::ioctl(self.raw_fd(), req as libc::Ioctl, &mut v) })?;
        Ok(v)
    }
}

impl Drop for HostSocket {
    fn drop(&mut self) {
        unwatch(self.raw_fd());
    }
}

/// What the watcher calls back (on `cpu`, at a safe point) when a socket is ready.
type Callback = Arc<dyn Fn() + Send + Sync>;

struct Watcher {
    epfd: OwnedFd,
    /// Armed descriptors: their callback and the CPU it runs on.
    armed: Mutex<HashMap<RawFd, (Callback, u32)>>,
}

fn watcher() -> Option<&'static Watcher> {
    static W: OnceLock<Option<Watcher>> = OnceLock::new();
    W.get_or_init(|| {
        // SAFETY: epoll_create1 takes a flag; the descriptor is new and ours.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            log::error!("hostsock: epoll_create1: {}", std::io::Error::last_os_error());
            return None;
        }
        // SAFETY: `fd` was just returned by epoll_create1.
        let epfd = unsafe { OwnedFd::from_raw_fd(fd) };
        let raw = epfd.as_raw_fd();
        if let Err(e) = crate::cpu::spawn_host_thread("netwatch", move || watch_loop(raw)) {
            log::error!("hostsock: cannot start the watcher: {e}");
            return None;
        }
        Some(Watcher { epfd, armed: Mutex::new(HashMap::new()) })
    })
    .as_ref()
}

fn watch_loop(epfd: RawFd) {
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; 64];
    loop {
        // SAFETY: `events` is 64 writable epoll_events; the epoll descriptor lives as long as
        // the process (the watcher is never torn down).
        let n = unsafe { libc::epoll_wait(epfd, events.as_mut_ptr(), 64, -1) };
        if n < 0 {
            if errno() == libc::EINTR {
                continue;
            }
            log::error!("hostsock: epoll_wait: {}", std::io::Error::last_os_error());
            return;
        }
        let Some(w) = watcher() else { return };
        for ev in &events[..n as usize] {
            let fd = ev.u64 as RawFd;
            let cb = w.armed.lock().ok().and_then(|mut m| m.remove(&fd));
            if let Some((cb, cpu)) = cb {
                crate::cpu::post_call(cpu, move || cb());
            }
        }
    }
}

/// Call `cb` on CPU `cpu` once `fd` is ready for `events` (EPOLLIN, EPOLLOUT, …; one shot:
/// arm again to wait again). A socket already ready calls back at once.
pub fn arm(fd: RawFd, events: u32, cpu: u32, cb: Callback) {
    let Some(w) = watcher() else { return };
    let Ok(mut m) = w.armed.lock() else { return };
    let had = m.insert(fd, (cb, cpu)).is_some();
    let mut ev = libc::epoll_event { events: events | libc::EPOLLONESHOT as u32, u64: fd as u64 };
    // SAFETY: epoll_ctl on our epoll descriptor with an event we own; a one-shot registration
    // that was disarmed is re-armed by MOD, a new one added by ADD.
    let mut r = unsafe { libc::epoll_ctl(w.epfd.as_raw_fd(), libc::EPOLL_CTL_MOD, fd, &mut ev) };
    if r < 0 && errno() == libc::ENOENT {
        // SAFETY: as above.
        r = unsafe { libc::epoll_ctl(w.epfd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) };
    }
    if r < 0 {
        log::warn!("hostsock: epoll_ctl fd {fd} (re-armed {had}): {}", std::io::Error::last_os_error());
        m.remove(&fd);
    }
}

/// Forget `fd` (before it is closed).
fn unwatch(fd: RawFd) {
    let Some(w) = watcher() else { return };
    if let Ok(mut m) = w.armed.lock() {
        m.remove(&fd);
        // SAFETY: removing `fd` from our epoll set; an fd that was never added gives ENOENT,
        // which is fine.
        unsafe { libc::epoll_ctl(w.epfd.as_raw_fd(), libc::EPOLL_CTL_DEL, fd, std::ptr::null_mut()) };
    }
}

/// A host socket for interface ioctls (any socket answers them; one kept for all).
fn ioctl_socket() -> HostResult<&'static HostSocket> {
    static S: OnceLock<Option<HostSocket>> = OnceLock::new();
    S.get_or_init(|| HostSocket::new(libc::AF_INET, libc::SOCK_DGRAM, 0).ok()).as_ref().ok_or(libc::EAFNOSUPPORT)
}

/// Size of `struct ifreq`.
pub const IFREQ_SIZE: usize = 40;

/// An interface query (SIOCGIFFLAGS, SIOCGIFADDR, SIOCGIFINDEX, … — `get` requests only) on
/// a `struct ifreq`, answered by the host.
pub fn if_ioctl(req: u64, ifr: &mut [u8; IFREQ_SIZE]) -> HostResult<()> {
    let s = ioctl_socket()?;
    // SAFETY: every allowed request reads and writes one `struct ifreq`, which `ifr` is
    // (IFREQ_SIZE bytes, exclusively borrowed); none of them takes a pointer inside it.
    check(unsafe { libc::ioctl(s.raw_fd(), req as libc::Ioctl, ifr.as_mut_ptr()) }).map(drop)
}

/// SIOCGIFCONF into a buffer of `len` bytes: the `struct ifreq`s the host wrote.
pub fn if_conf(len: usize) -> HostResult<Vec<u8>> {
    #[repr(C)]
    struct Ifconf {
        len: libc::c_int,
        buf: *mut u8,
    }
    let s = ioctl_socket()?;
    let mut buf = vec![0u8; len];
    let mut conf = Ifconf { len: libc::c_int::try_from(len).map_err(|_| libc::EINVAL)?, buf: buf.as_mut_ptr() };
    // SAFETY: SIOCGIFCONF writes at most `conf.len` bytes at `conf.buf`, our buffer of that
    // size, and the length it used back into `conf`.
    check(unsafe { libc::ioctl(s.raw_fd(), libc::SIOCGIFCONF as libc::Ioctl, &mut conf) })?;
    buf.truncate(usize::try_from(conf.len).unwrap_or(0).min(len));
    Ok(buf)
}

/// The length SIOCGIFCONF needs for every interface (a null buffer asks it).
pub fn if_conf_len() -> HostResult<usize> {
    #[repr(C)]
    struct Ifconf {
        len: libc::c_int,
        buf: *mut u8,
    }
    let s = ioctl_socket()?;
    let mut conf = Ifconf { len: 0, buf: std::ptr::null_mut() };
    // SAFETY: with a null buffer SIOCGIFCONF only writes the length it would need.
    check(unsafe { libc::ioctl(s.raw_fd(), libc::SIOCGIFCONF as libc::Ioctl, &mut conf) })?;
    Ok(usize::try_from(conf.len).unwrap_or(0))
}

/// The host's /proc/net/NAME (the kernel process's network namespace: hostinet's sockets are
/// there), for the names the guest's /proc/net shows.
pub fn proc_net(name: &str) -> Option<Vec<u8>> {
    const NAMES: [&str; 7] = ["tcp", "tcp6", "udp", "udp6", "dev", "route", "if_inet6"];
    if !NAMES.contains(&name) {
        return None;
    }
    std::fs::read(format!("/proc/self/net/{name}")).ok()
}
