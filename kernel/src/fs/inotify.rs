//! inotify (inotify(7)): watches on files and directories, and a file to read their events
//! from.
//!
//! An instance ([`Inotify`], the file inotify_init1 returns) holds its watches (wd → the
//! watched vnode, pinned while watched) and a queue of events; the registry ([`WATCHED`])
//! maps each watched vnode to the watches on it. The VFS reports what happens
//! (fs/vnops.rs for names and attributes, sys/fs.rs and fs/file.rs for opens, reads, writes
//! and closes) through [`event`] and [`child_event`]; both return at once while nothing is
//! watched anywhere ([`ACTIVE`]).
//!
//! Events as Linux makes them: IN_CREATE, IN_DELETE, IN_MOVED_FROM/IN_MOVED_TO (one cookie
//! for the pair) on a directory with the entry's name; IN_ACCESS, IN_MODIFY, IN_ATTRIB,
//! IN_OPEN, IN_CLOSE_WRITE/IN_CLOSE_NOWRITE on the file itself and, with its name, first on
//! the directory it was opened in (IN_ATTRIB: reached through); an unlink is IN_ATTRIB (a
//! link less) and IN_DELETE_SELF when the last name goes; IN_MOVE_SELF;
//! IN_IGNORED when a watch ends (inotify_rm_watch, IN_ONESHOT, the file deleted); IN_ISDIR
//! for directories. An event equal to the last one queued is merged into it; past
//! [`MAX_QUEUED`] events one IN_Q_OVERFLOW (wd -1) ends the queue until it is read.
//!
//! Lock order: `inotify_watched` (the registry) → an instance's `inotify`; wake-ups after both.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use platform::sync::SpinLock;

use crate::fs::anon;
use crate::fs::mount::FsRef;
use crate::fs::vfs::{Attr, POLLIN, Vnode, VnodeId, VnodeRef, poll_wakeup};
use crate::kern::errno::Errno;
use crate::kern::sleep::{SleepOpts, sleepq_lock, tsleep_locked, wakeup, wchan_of};
use crate::kern::thread::WakeReason;

pub const IN_ACCESS: u32 = 0x1;
pub const IN_MODIFY: u32 = 0x2;
pub const IN_ATTRIB: u32 = 0x4;
pub const IN_CLOSE_WRITE: u32 = 0x8;
pub const IN_CLOSE_NOWRITE: u32 = 0x10;
pub const IN_OPEN: u32 = 0x20;
pub const IN_MOVED_FROM: u32 = 0x40;
pub const IN_MOVED_TO: u32 = 0x80;
pub const IN_CREATE: u32 = 0x100;
pub const IN_DELETE: u32 = 0x200;
pub const IN_DELETE_SELF: u32 = 0x400;
pub const IN_MOVE_SELF: u32 = 0x800;
pub const IN_ALL_EVENTS: u32 = 0xfff;
pub const IN_UNMOUNT: u32 = 0x2000;
pub const IN_Q_OVERFLOW: u32 = 0x4000;
pub const IN_IGNORED: u32 = 0x8000;
pub const IN_ONLYDIR: u32 = 0x0100_0000;
pub const IN_DONT_FOLLOW: u32 = 0x0200_0000;
pub const IN_EXCL_UNLINK: u32 = 0x0400_0000;
pub const IN_MASK_CREATE: u32 = 0x1000_0000;
pub const IN_MASK_ADD: u32 = 0x2000_0000;
pub const IN_ISDIR: u32 = 0x4000_0000;
pub const IN_ONESHOT: u32 = 0x8000_0000;

/// The bits inotify_add_watch takes.
pub const VALID_MASK: u32 =
    IN_ALL_EVENTS | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK | IN_MASK_CREATE | IN_MASK_ADD | IN_ISDIR | IN_ONESHOT;

/// Linux's defaults: fs.inotify.max_queued_events, max_user_instances, max_user_watches
/// (vk counts instances and watches system-wide).
pub const MAX_QUEUED: usize = 16384;
pub const MAX_INSTANCES: usize = 128;
pub const MAX_WATCHES: usize = 65536;

/// Size of `struct inotify_event` without its name.
const EVENT_SIZE: usize = 16;

/// Watches anywhere: when 0 the VFS hooks return at once.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);
static INSTANCES: AtomicUsize = AtomicUsize::new(0);

#[derive(Debug, Clone)]
struct Watch {
    inst: Weak<Inner>,
    wd: i32,
    mask: u32,
}

/// Watched vnodes and their watches.
static WATCHED: SpinLock<Option<HashMap<VnodeId, Vec<Watch>>>> = SpinLock::new("inotify_watched", None);

fn with_watched<R>(f: impl FnOnce(&mut HashMap<VnodeId, Vec<Watch>>) -> R) -> R {
    f(WATCHED.lock().get_or_insert_with(HashMap::new))
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Event {
    wd: i32,
    mask: u32,
    cookie: u32,
    name: Vec<u8>,
}

impl Event {
    /// The name's room in the record: NUL-terminated, padded to a multiple of 16.
    fn name_len(&self) -> usize {
        if self.name.is_empty() { 0 } else { (self.name.len() + 1).next_multiple_of(EVENT_SIZE) }
    }

    fn size(&self) -> usize {
        EVENT_SIZE + self.name_len()
    }

    fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.wd.to_ne_bytes());
        out.extend_from_slice(&self.mask.to_ne_bytes());
        out.extend_from_slice(&self.cookie.to_ne_bytes());
        out.extend_from_slice(&u32::try_from(self.name_len()).unwrap_or(0).to_ne_bytes());
        let start = out.len();
        out.extend_from_slice(&self.name);
        out.resize(start + self.name_len(), 0);
    }
}

#[derive(Debug, Default)]
struct State {
    /// wd → the watched vnode (kept alive while watched) and the watch's mask.
    watches: BTreeMap<i32, (VnodeRef, u32)>,
    next_wd: i32,
    queue: VecDeque<Event>,
    /// Bytes the queue's records take (FIONREAD).
    bytes: usize,
    in_gen: u64,
}

/// An instance's watches and queue (what the registry's watches point at).
#[derive(Debug)]
struct Inner {
    st: SpinLock<State>,
}

/// An inotify instance: the file inotify_init1(2) opens.
#[derive(Debug)]
pub struct Inotify {
    inner: Arc<Inner>,
    ino: u64,
    uid: u32,
    gid: u32,
}

/// A new instance (EMFILE past [`MAX_INSTANCES`]).
pub fn new(uid: u32, gid: u32) -> Result<VnodeRef, Errno> {
    if INSTANCES.fetch_add(1, Ordering::Relaxed) >= MAX_INSTANCES {
        INSTANCES.fetch_sub(1, Ordering::Relaxed);
        return Err(Errno::EMFILE);
    }
    let st = State { next_wd: 1, ..State::default() };
    let inner = Arc::new(Inner { st: SpinLock::new("inotify", st) });
    Ok(Arc::new(Inotify { inner, ino: anon::new_ino(), uid, gid }))
}

impl Drop for Inotify {
    fn drop(&mut self) {
        INSTANCES.fetch_sub(1, Ordering::Relaxed);
        let ids: Vec<VnodeId> = self.inner.st.lock().watches.values().map(|(v, _)| v.id()).collect();
        let me = Arc::as_ptr(&self.inner);
        with_watched(|w| {
            for id in ids {
                if let Some(list) = w.get_mut(&id) {
                    let before = list.len();
                    list.retain(|x| !std::ptr::eq(x.inst.as_ptr(), me));
                    ACTIVE.fetch_sub(before - list.len(), Ordering::Relaxed);
                    if list.is_empty() {
                        w.remove(&id);
                    }
                }
            }
        });
    }
}

impl Inner {
    fn chan(&self) -> u64 {
        wchan_of(self)
    }

    /// Queue an event (merged into an equal last one; IN_Q_OVERFLOW past the limit).
    fn push(&self, e: Event) {
        {
            let mut st = self.st.lock();
            if st.queue.back() == Some(&e) {
                return;
            }
            let e = if st.queue.len() >= MAX_QUEUED {
                let ov = Event { wd: -1, mask: IN_Q_OVERFLOW, cookie: 0, name: Vec::new() };
                if st.queue.back() == Some(&ov) {
                    return;
                }
                ov
            } else {
                e
            };
            st.bytes += e.size();
            st.queue.push_back(e);
            st.in_gen += 1;
        }
        wakeup(self.chan());
        poll_wakeup();
    }

    /// inotify_add_watch(2) on `v`: the watch's descriptor (the same one for a vnode
    /// already watched, its mask replaced or, with IN_MASK_ADD, extended; EEXIST with
    /// IN_MASK_CREATE).
    fn add_watch(self: &Arc<Self>, v: &VnodeRef, mask: u32) -> Result<i32, Errno> {
        let events = mask & (IN_ALL_EVENTS | IN_EXCL_UNLINK | IN_ONESHOT);
        let id = v.id();
        with_watched(|w| {
            let mut st = self.st.lock();
            if let Some((&wd, (_, m))) = st.watches.iter_mut().find(|(_, (x, _))| x.id() == id) {
                if mask & IN_MASK_CREATE != 0 {
                    return Err(Errno::EEXIST);
                }
                *m = if mask & IN_MASK_ADD != 0 { *m | events } else { events };
                let m = *m;
                if let Some(x) = w.get_mut(&id).and_then(|l| l.iter_mut().find(|x| x.wd == wd && std::ptr::eq(x.inst.as_ptr(), Arc::as_ptr(self)))) {
                    x.mask = m;
                }
                return Ok(wd);
            }
            if ACTIVE.load(Ordering::Relaxed) >= MAX_WATCHES {
                return Err(Errno::ENOSPC);
            }
            let wd = st.next_wd;
            st.next_wd = st.next_wd.checked_add(1).unwrap_or(1);
            st.watches.insert(wd, (Arc::clone(v), events));
            w.entry(id).or_default().push(Watch { inst: Arc::downgrade(self), wd, mask: events });
            ACTIVE.fetch_add(1, Ordering::Relaxed);
            Ok(wd)
        })
    }

    /// End watch `wd` and queue IN_IGNORED (EINVAL for no such watch).
    fn rm_watch(self: &Arc<Self>, wd: i32) -> Result<(), Errno> {
        let (v, _) = self.st.lock().watches.remove(&wd).ok_or(Errno::EINVAL)?;
        self.forget(v.id(), wd);
        self.push(Event { wd, mask: IN_IGNORED, cookie: 0, name: Vec::new() });
        Ok(())
    }

    /// Take watch `wd` of vnode `id` out of the registry.
    fn forget(self: &Arc<Self>, id: VnodeId, wd: i32) {
        with_watched(|w| {
            if let Some(list) = w.get_mut(&id) {
                let before = list.len();
                list.retain(|x| !(x.wd == wd && std::ptr::eq(x.inst.as_ptr(), Arc::as_ptr(self))));
                ACTIVE.fetch_sub(before - list.len(), Ordering::Relaxed);
                if list.is_empty() {
                    w.remove(&id);
                }
            }
        });
    }

}

impl Inotify {
    /// inotify_add_watch(2) on `v`.
    pub fn add_watch(&self, v: &VnodeRef, mask: u32) -> Result<i32, Errno> {
        self.inner.add_watch(v, mask)
    }

    /// inotify_rm_watch(2).
    pub fn rm_watch(&self, wd: i32) -> Result<(), Errno> {
        self.inner.rm_watch(wd)
    }

    /// Bytes of events queued (FIONREAD).
    pub fn pending_bytes(&self) -> usize {
        self.inner.st.lock().bytes
    }

    /// The watches, for /proc/PID/fdinfo: (wd, the watched vnode, mask).
    pub fn watch_list(&self) -> Vec<(i32, VnodeRef, u32)> {
        self.inner.st.lock().watches.iter().map(|(&wd, (v, m))| (wd, Arc::clone(v), *m)).collect()
    }
}

/// A new cookie for a rename's IN_MOVED_FROM/IN_MOVED_TO pair.
pub fn cookie() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Whether anything is watched (the hooks' fast path).
pub fn active() -> bool {
    ACTIVE.load(Ordering::Relaxed) > 0
}

/// Report `mask` (with `cookie`, and `name` for an entry of a directory) to the watches on
/// `v`. IN_DELETE_SELF ends them (IN_IGNORED follows), as does IN_ONESHOT.
pub fn event(v: &VnodeRef, mask: u32, cookie: u32, name: &[u8]) {
    if !active() {
        return;
    }
    deliver(v.id(), mask, cookie, name);
}

fn deliver(id: VnodeId, mask: u32, cookie: u32, name: &[u8]) {
    deliver_to(id, mask, cookie, name, false);
}

/// [`deliver`]; `unlinked`: the event is about a child that has no name left, which
/// watches with IN_EXCL_UNLINK do not hear of.
fn deliver_to(id: VnodeId, mask: u32, cookie: u32, name: &[u8], unlinked: bool) {
    let hits: Vec<Watch> = with_watched(|w| {
        let Some(list) = w.get(&id) else { return Vec::new() };
        list.iter()
            .filter(|x| !(unlinked && x.mask & IN_EXCL_UNLINK != 0))
            .filter(|x| x.mask & mask & IN_ALL_EVENTS != 0 || mask & IN_DELETE_SELF != 0)
            .cloned()
            .collect()
    });
    for h in hits {
        let Some(inst) = h.inst.upgrade() else { continue };
        if h.mask & mask & IN_ALL_EVENTS != 0 {
            inst.push(Event { wd: h.wd, mask, cookie, name: name.to_vec() });
        }
        if (mask & IN_DELETE_SELF != 0 || h.mask & IN_ONESHOT != 0) && inst.st.lock().watches.remove(&h.wd).is_some() {
            inst.forget(id, h.wd);
            inst.push(Event { wd: h.wd, mask: IN_IGNORED, cookie: 0, name: Vec::new() });
        }
    }
}

/// Report `mask` about the file `v` — to the watches of the directory `parent` it was
/// reached through, with its `name`, then to its own (Linux's order for a group with both).
pub fn child_event(parent: Option<&VnodeRef>, name: &[u8], v: &VnodeRef, mask: u32) {
    if !active() {
        return;
    }
    let mask = if v.vtype() == crate::fs::vfs::VType::Dir { mask | IN_ISDIR } else { mask };
    if let Some(p) = parent.filter(|p| p.id() != v.id()) {
        let unlinked = v.vtype() != crate::fs::vfs::VType::Dir && v.attr().is_ok_and(|a| a.nlink == 0);
        deliver_to(p.id(), mask, 0, name, unlinked);
    }
    deliver(v.id(), mask, 0, b"");
}

/// After an unlink or rmdir of `v` (the name `name` in `dir`), Linux 6.1's order: a file
/// lost a link (IN_ATTRIB), IN_DELETE_SELF when none is left (a directory: at once), then
/// IN_DELETE in the directory.
pub fn removed(dir: &VnodeRef, name: &[u8], v: &VnodeRef) {
    if !active() {
        return;
    }
    let isdir = v.vtype() == crate::fs::vfs::VType::Dir;
    if !isdir {
        deliver(v.id(), IN_ATTRIB, 0, b"");
    }
    if isdir || v.attr().map(|a| a.nlink).unwrap_or(0) == 0 {
        deliver(v.id(), IN_DELETE_SELF, 0, b"");
    }
    deliver(dir.id(), IN_DELETE | if isdir { IN_ISDIR } else { 0 }, 0, name);
}

fn interrupted(r: WakeReason) -> Result<(), Errno> {
    if r == WakeReason::Interrupted { Err(Errno::ERESTARTSYS) } else { Ok(()) }
}

impl Vnode for Inotify {
    fn attr(&self) -> Result<Attr, Errno> {
        Ok(anon::attr(self.ino, self.uid, self.gid))
    }

    fn fs(&self) -> FsRef {
        static FS: OnceLock<FsRef> = OnceLock::new();
        anon::fs_of(&FS, "inotify")
    }

    fn ino(&self) -> u64 {
        self.ino
    }

    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        self.read_nb(off, buf, false)
    }

    /// Whole events, as many as fit; EINVAL when the first does not.
    fn read_nb(&self, _off: u64, buf: &mut [u8], nonblock: bool) -> Result<usize, Errno> {
        loop {
            let g = sleepq_lock(self.inner.chan());
            {
                let mut st = self.inner.st.lock();
                if let Some(first) = st.queue.front() {
                    if first.size() > buf.len() {
                        return Err(Errno::EINVAL);
                    }
                    let mut out = Vec::with_capacity(buf.len());
                    while let Some(e) = st.queue.front() {
                        if out.len() + e.size() > buf.len() {
                            break;
                        }
                        e.write_to(&mut out);
                        let n = e.size();
                        st.bytes -= n;
                        st.queue.pop_front();
                    }
                    buf[..out.len()].copy_from_slice(&out);
                    return Ok(out.len());
                }
            }
            if nonblock {
                return Err(Errno::EAGAIN);
            }
            interrupted(tsleep_locked(g, "inotify", SleepOpts { interruptible: true, timeout: None }))?;
        }
    }

    fn write_at(&self, _off: u64, _buf: &[u8]) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
    }

    fn poll(&self) -> u16 {
        if self.inner.st.lock().queue.is_empty() { 0 } else { POLLIN }
    }

    fn pollable(&self) -> bool {
        true
    }

    fn poll_gen(&self) -> (u64, u64) {
        (self.inner.st.lock().in_gen, 0)
    }

    fn seekable(&self) -> bool {
        false
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_padded() {
        let e = Event { wd: 1, mask: IN_CREATE, cookie: 0, name: b"abc".to_vec() };
        assert_eq!(e.size(), 32);
        let mut out = Vec::new();
        e.write_to(&mut out);
        assert_eq!(out.len(), 32);
        assert_eq!(&out[12..16], &16u32.to_ne_bytes());
        assert_eq!(&out[16..20], b"abc\0");
        let bare = Event { wd: 1, mask: IN_MODIFY, cookie: 0, name: Vec::new() };
        assert_eq!(bare.size(), 16);
    }
}
