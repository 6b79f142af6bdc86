//! AF_UNIX names: sockets bound to a path (found by the socket inode bind made: Linux's
//! unix_find_socket_byinode), the abstract namespace (found by name), autobind's five hex
//! digits, and the list of every AF_UNIX socket (/proc/net/unix).
//!
//! Each table is a leaf spinlock holding weak references; a socket leaves them when it is
//! released (or dropped).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use platform::sync::SpinLock;

use crate::fs::vfs::{VType, VnodeId};
use crate::kern::errno::Errno;
use crate::net::{Caller, SockType, UnixAddr};

use super::{Conn, UnixSocket};

/// Which table a socket's abstract names live in: AF_UNIX's, or the in-kernel loopback's
/// ports (net=none: `net::loopback` keeps TCP and UDP ports as names here, out of AF_UNIX's
/// sight).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Ns {
    Unix,
    Loopback,
}

/// Abstract names (and loopback ports), keyed by their table and bytes.
type AbstractNames = BTreeMap<(Ns, Vec<u8>), Weak<UnixSocket>>;

static ABSTRACT: SpinLock<AbstractNames> = SpinLock::new("unix_names", BTreeMap::new());
static INODES: SpinLock<BTreeMap<(u64, u64), Weak<UnixSocket>>> = SpinLock::new("unix_names", BTreeMap::new());
static ALL: SpinLock<BTreeMap<u64, Weak<UnixSocket>>> = SpinLock::new("unix_all", BTreeMap::new());
static NEXT_SERIAL: AtomicU64 = AtomicU64::new(1);
static NEXT_AUTOBIND: AtomicU64 = AtomicU64::new(0);

/// Autobind names are five hex digits: 2^20 of them.
const AUTOBIND_NAMES: u64 = 1 << 20;

pub(super) fn next_serial() -> u64 {
    NEXT_SERIAL.fetch_add(1, Ordering::Relaxed)
}

pub(super) fn register(s: &Arc<UnixSocket>) {
    ALL.lock().insert(s.serial, Arc::downgrade(s));
}

pub(super) fn unregister(serial: u64) {
    ALL.lock().remove(&serial);
}

fn key(id: VnodeId) -> (u64, u64) {
    (id.fs, id.ino)
}

/// Take an abstract name: EADDRINUSE while another socket has it.
pub(super) fn bind_abstract(name: &[u8], s: &Arc<UnixSocket>) -> Result<(), Errno> {
    let mut t = ABSTRACT.lock();
    let key = (s.ns, name.to_vec());
    if t.get(&key).is_some_and(|w| w.strong_count() > 0) {
        return Err(Errno::EADDRINUSE);
    }
    t.insert(key, Arc::downgrade(s));
    Ok(())
}

/// Give up an abstract name (only if `s` holds it).
pub(super) fn unbind_abstract(name: &[u8], s: &UnixSocket) {
    let mut t = ABSTRACT.lock();
    let key = (s.ns, name.to_vec());
    if t.get(&key).is_some_and(|w| std::ptr::eq(w.as_ptr(), s)) {
        t.remove(&key);
    }
}

/// A fresh abstract name for `s` (autobind): EADDRINUSE when all 2^20 are taken.
pub(super) fn autobind(s: &Arc<UnixSocket>) -> Result<Vec<u8>, Errno> {
    for _ in 0..AUTOBIND_NAMES {
        let n = NEXT_AUTOBIND.fetch_add(1, Ordering::Relaxed) % AUTOBIND_NAMES;
        let name = format!("{n:05x}").into_bytes();
        if bind_abstract(&name, s).is_ok() {
            return Ok(name);
        }
    }
    Err(Errno::EADDRINUSE)
}

/// Record the socket inode a path bind made.
pub(super) fn bind_inode(id: VnodeId, s: &Arc<UnixSocket>) {
    INODES.lock().insert(key(id), Arc::downgrade(s));
}

/// Forget the inode of `s`, if it has one.
pub(super) fn unbind_inode(s: &UnixSocket) {
    INODES.lock().retain(|_, w| !std::ptr::eq(w.as_ptr(), s) && w.strong_count() > 0);
}

/// The socket a name leads to (connect, sendto): for a path, the inode (write permission
/// needed) must be a socket someone has bound; ECONNREFUSED when nobody listens there.
pub(super) fn find(c: &Caller<'_>, ns: Ns, ua: &UnixAddr) -> Result<Arc<UnixSocket>, Errno> {
    let found = match ua {
        UnixAddr::Unnamed => return Err(Errno::EINVAL),
        UnixAddr::Abstract(n) => ABSTRACT.lock().get(&(ns, n.clone())).and_then(Weak::upgrade),
        UnixAddr::Path(p) => {
            let v = c.paths.connect_path(p)?;
            if v.vtype() != VType::Sock {
                return Err(Errno::ECONNREFUSED);
            }
            INODES.lock().get(&key(v.id())).and_then(Weak::upgrade)
        }
    };
    let s = found.ok_or(Errno::ECONNREFUSED)?;
    if s.st.lock().released {
        return Err(Errno::ECONNREFUSED);
    }
    Ok(s)
}

/// Every AF_UNIX socket, oldest first.
pub(super) fn all() -> Vec<Arc<UnixSocket>> {
    ALL.lock().values().filter_map(Weak::upgrade).collect()
}

/// /proc/net/unix (Linux's unix_seq_show): address (hidden: zero), references, protocol,
/// flags (__SO_ACCEPTCON for a listener), type, state (SS_UNCONNECTED 1, SS_CONNECTED 3),
/// inode, and the name (`@` for the abstract ones, whose NULs also show as `@`).
pub fn proc_net_unix() -> String {
    let mut s = String::from("Num       RefCount Protocol Flags    Type St Inode Path\n");
    for u in all() {
        let ino = u.ino.load(Ordering::Relaxed);
        let (conn, addr, released) = {
            let st = u.st.lock();
            (st.conn, st.addr.clone(), st.released)
        };
        if released || ino == 0 || u.ns != Ns::Unix {
            continue;
        }
        let flags = if conn == Conn::Listening { 0x0001_0000 } else { 0 };
        let ty = match u.ty {
            SockType::Stream => 1,
            SockType::Dgram => 2,
            SockType::Seqpacket => 5,
            SockType::Raw => 3,
        };
        let state = if conn == Conn::Connected && u.ty != SockType::Dgram { 3 } else { 1 };
        let refs = Arc::strong_count(&u) - 1;
        let _ = write!(s, "0000000000000000: {refs:08X} 00000000 {flags:08X} {ty:04X} {state:02X} {ino:5}");
        match addr {
            Some(UnixAddr::Path(p)) => {
                s.push(' ');
                s.push_str(&String::from_utf8_lossy(&p));
            }
            Some(UnixAddr::Abstract(n)) => {
                s.push_str(" @");
                s.push_str(&String::from_utf8_lossy(&n).replace('\0', "@"));
            }
            _ => {}
        }
        s.push('\n');
    }
    s
}

/// Whether an abstract name is taken (tests).
#[cfg(test)]
pub(super) fn abstract_taken(name: &[u8]) -> bool {
    ABSTRACT.lock().get(&(Ns::Unix, name.to_vec())).is_some_and(|w| w.strong_count() > 0)
}
