//! epoll (epoll(7)): an interest list of (descriptor, open file) items, each with the events
//! it waits for, and a wait that reports the ready ones.
//!
//! Readiness is the VFS's: each item's file answers [`Vnode::poll`], and anything that changes
//! an answer wakes the poll channel ([`poll_wakeup`]), where epoll_wait sleeps like poll(2)
//! does. A wait scans the list (there is no ready list to keep: files carry no callbacks), so
//! it costs one `poll` per item.
//!
//! * Level-triggered items are reported while ready.
//! * Edge-triggered items (EPOLLET) are reported when their readiness rises, or when their
//!   file sent a wake-up on the side they wait for since the last report
//!   ([`Vnode::poll_gen`]: new data in a pipe that already had some is a new edge, as on
//!   Linux).
//! * EPOLLONESHOT items are disabled after one report until EPOLL_CTL_MOD.
//! * Reported items go to the back of the list, so that items which stay ready are reported
//!   round-robin when more are ready than a wait takes (Linux moves a reported level-triggered
//!   item to the back of its ready list).
//! * EPOLLEXCLUSIVE (with Linux's checks): of the exclusive items watching one file, in any
//!   instances, only one is told of each of the file's wake-ups ([`Claims`]). Every waiter
//!   still wakes (the poll channel is one for all files), but the others find nothing and
//!   sleep again — what a thundering herd costs is the rescans, not the spurious returns. A
//!   file that counts no wake-ups ([`Vnode::poll_gen`]) is reported to every waiter.
//! * An epoll instance is itself pollable (readable while a wait would report something), so
//!   instances nest, up to [`MAX_NESTS`] deep and without cycles (ELOOP).
//!
//! Items hold their file weakly: closing the last descriptor of an open file (in every
//! process) removes its items, as Linux's eventpoll_release does; closing one of several
//! descriptors of it does not.
//!
//! Lock order: `sleepq` (the poll channel's, held by a wait while it scans) → `epoll` (one
//! instance's list; never held while a file is polled, so nested instances take only their
//! own) → `epoll_claims` (a leaf).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use platform::sync::SpinLock;

use crate::abi::event::EpollFlags;
use crate::fs::anon;
use crate::fs::file::File;
use crate::fs::mount::FsRef;
use crate::fs::vfs::{Attr, POLLERR, POLLHUP, POLLIN, POLLOUT, Vnode, VnodeRef, poll_wakeup};
use crate::kern::errno::Errno;

/// How deep epoll instances may nest (fs/eventpoll.c's EP_MAX_NESTS).
pub const MAX_NESTS: usize = 4;
/// Most items one instance watches (Linux bounds a user's by fs.epoll.max_user_watches:
/// ENOSPC past it).
pub const MAX_ITEMS: usize = 1 << 16;

#[derive(Debug)]
struct Item {
    id: u64,
    fd: i32,
    file: Weak<File>,
    events: EpollFlags,
    data: u64,
    /// EPOLLONESHOT fired: nothing is reported until EPOLL_CTL_MOD.
    disabled: bool,
    /// Readiness at the last scan (edge-triggered: rising edges).
    last: u32,
    /// The file's wake-up counts at the last report (edge-triggered).
    gen_seen: (u64, u64),
}

#[derive(Debug, Default)]
struct Items {
    list: Vec<Item>,
}

/// Item ids, unique across instances (an exclusive claim names the item that holds it).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Which exclusive item took a file's latest wake-up: per file (by its vnode's address, the
/// weak reference telling a reused address from the file it was), the file's wake-up counts
/// ([`Vnode::poll_gen`]) when it was taken and the item that took it.
#[derive(Debug)]
struct Claim {
    file: Weak<dyn Vnode>,
    gens: (u64, u64),
    item: u64,
}

/// EPOLLEXCLUSIVE's bookkeeping (Linux does it in the file's wait queue, where an exclusive
/// waiter stops the wake-up: vk has one poll channel for every file).
#[derive(Debug)]
struct Claims {
    by_file: BTreeMap<usize, Claim>,
}

static CLAIMS: SpinLock<Claims> = SpinLock::new("epoll_claims", Claims { by_file: BTreeMap::new() });

impl Claims {
    /// Whether exclusive item `item`, which would report `vnode` at wake-up counts `gens`, may:
    /// yes when no other item took that wake-up of the file (it is then this item's), or when
    /// the file counts no wake-ups.
    fn take(&mut self, vnode: &VnodeRef, gens: (u64, u64), item: u64) -> bool {
        if gens == (0, 0) {
            return true;
        }
        let key = Arc::as_ptr(vnode) as *const () as usize;
        if let Some(c) = self.by_file.get(&key)
            && c.gens == gens
            && c.item != item
            && c.file.upgrade().is_some_and(|f| Arc::ptr_eq(&f, vnode))
        {
            return false;
        }
        // Gone files' entries are swept out now and then: amortized constant time a claim.
        if self.by_file.len() >= 64 && self.by_file.len().is_power_of_two() {
            self.by_file.retain(|_, c| c.file.strong_count() > 0);
        }
        self.by_file.insert(key, Claim { file: Arc::downgrade(vnode), gens, item });
        true
    }
}

/// An epoll instance.
#[derive(Debug)]
pub struct Epoll {
    items: SpinLock<Items>,
    ino: u64,
    uid: u32,
    gid: u32,
}

/// A new, empty epoll instance.
pub fn new(uid: u32, gid: u32) -> VnodeRef {
    Arc::new(Epoll { items: SpinLock::new("epoll", Items::default()), ino: anon::new_ino(), uid, gid })
}

/// One ready item: its events and data (`struct epoll_event`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ready {
    pub events: u32,
    pub data: u64,
}

/// A file's readiness as epoll bits: poll's bits with the RDNORM/WRNORM twins Linux's
/// poll methods set alongside IN and OUT.
fn epoll_bits(revents: u16) -> u32 {
    let mut r = u32::from(revents);
    if revents & POLLIN != 0 {
        r |= EpollFlags::RDNORM.bits();
    }
    if revents & POLLOUT != 0 {
        r |= EpollFlags::WRNORM.bits();
    }
    r
}

/// What an item waiting for `events` is told of readiness `ready` (errors and hang-ups
/// always).
fn wanted(events: EpollFlags, ready: u32) -> u32 {
    let always = u32::from(POLLERR | POLLHUP);
    ready & ((events.bits() & !EpollFlags::MODES.bits()) | always)
}

impl Epoll {
    /// Add an item (EEXIST when (fd, file) is there already).
    pub fn add(&self, fd: i32, file: &Arc<File>, events: EpollFlags, data: u64) -> Result<(), Errno> {
        let gens = file.vnode.poll_gen();
        {
            let mut it = self.items.lock();
            if it.list.iter().any(|i| i.fd == fd && std::ptr::eq(i.file.as_ptr(), Arc::as_ptr(file))) {
                return Err(Errno::EEXIST);
            }
            if it.list.len() >= MAX_ITEMS {
                it.list.retain(|i| i.file.strong_count() > 0);
                if it.list.len() >= MAX_ITEMS {
                    return Err(Errno::ENOSPC);
                }
            }
            let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
            it.list.push(Item { id, fd, file: Arc::downgrade(file), events, data, disabled: false, last: 0, gen_seen: gens });
        }
        poll_wakeup();
        Ok(())
    }

    fn find(it: &mut Items, fd: i32, file: &Arc<File>) -> Option<usize> {
        it.list.iter().position(|i| i.fd == fd && std::ptr::eq(i.file.as_ptr(), Arc::as_ptr(file)))
    }

    /// Change an item's events and data (ENOENT when absent; EINVAL for an EPOLLEXCLUSIVE
    /// item, which cannot be modified).
    pub fn modify(&self, fd: i32, file: &Arc<File>, events: EpollFlags, data: u64) -> Result<(), Errno> {
        {
            let mut it = self.items.lock();
            let i = Self::find(&mut it, fd, file).ok_or(Errno::ENOENT)?;
            let item = &mut it.list[i];
            if item.events.contains(EpollFlags::EXCLUSIVE) {
                return Err(Errno::EINVAL);
            }
            item.events = events;
            item.data = data;
            item.disabled = false;
            item.last = 0;
        }
        poll_wakeup();
        Ok(())
    }

    /// Remove an item (ENOENT when absent).
    pub fn delete(&self, fd: i32, file: &Arc<File>) -> Result<(), Errno> {
        let mut it = self.items.lock();
        let i = Self::find(&mut it, fd, file).ok_or(Errno::ENOENT)?;
        it.list.remove(i);
        Ok(())
    }

    /// Whether `target` is this instance or one it watches, at most `depth` levels down;
    /// Err(ELOOP) when the nesting goes deeper than that.
    pub fn reaches(&self, target: &Epoll, depth: usize) -> Result<bool, Errno> {
        if std::ptr::eq(self, target) {
            return Ok(true);
        }
        let inner: Vec<Arc<File>> = self.items.lock().list.iter().filter_map(|i| i.file.upgrade()).collect();
        for f in inner {
            if let Some(e) = f.vnode.as_any().and_then(|a| a.downcast_ref::<Epoll>()) {
                if depth == 0 {
                    return Err(Errno::ELOOP);
                }
                if e.reaches(target, depth - 1)? {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// How many instances deep this one's nesting goes below it (0: it watches none).
    pub fn nest_depth(&self, limit: usize) -> usize {
        let inner: Vec<Arc<File>> = self.items.lock().list.iter().filter_map(|i| i.file.upgrade()).collect();
        inner
            .iter()
            .filter_map(|f| f.vnode.as_any().and_then(|a| a.downcast_ref::<Epoll>()))
            .map(|e| if limit == 0 { 1 } else { 1 + e.nest_depth(limit - 1) })
            .max()
            .unwrap_or(0)
    }

    /// The ready items, at most `max`. With `consume`, the reports count (edge-triggered items
    /// wait for their next edge, one-shot items are disabled); without, nothing changes (an
    /// instance polled by another).
    pub fn scan(&self, max: usize, consume: bool) -> Vec<Ready> {
        // Poll the files with the list unlocked (a file may be another instance).
        let snapshot: Vec<(u64, Option<Arc<File>>)> = self.items.lock().list.iter().map(|i| (i.id, i.file.upgrade())).collect();
        let mut polled = Vec::with_capacity(snapshot.len());
        let mut dead = Vec::new();
        for (id, f) in snapshot {
            match f {
                Some(f) => polled.push((id, epoll_bits(f.vnode.poll()), f.vnode.poll_gen(), f)),
                None => dead.push(id),
            }
        }
        let mut out = Vec::new();
        let mut it = self.items.lock();
        it.list.retain(|i| !dead.contains(&i.id));
        let mut reported = BTreeSet::new();
        for (id, bits, gens, file) in polled {
            if out.len() >= max {
                break;
            }
            let Some(item) = it.list.iter_mut().find(|i| i.id == id) else { continue };
            if item.disabled {
                continue;
            }
            let ready = wanted(item.events, bits);
            let fire = if ready == 0 {
                false
            } else if item.events.contains(EpollFlags::ET) {
                let wants_in = item.events.intersects(EpollFlags::IN | EpollFlags::RDNORM);
                let wants_out = item.events.intersects(EpollFlags::OUT | EpollFlags::WRNORM);
                ready & !item.last != 0 || (wants_in && gens.0 != item.gen_seen.0) || (wants_out && gens.1 != item.gen_seen.1)
            } else {
                true
            };
            if consume {
                item.last = ready;
            }
            if !fire {
                continue;
            }
            if consume {
                if item.events.contains(EpollFlags::EXCLUSIVE) && !CLAIMS.lock().take(&file.vnode, gens, item.id) {
                    continue;
                }
                item.gen_seen = gens;
                if item.events.contains(EpollFlags::ONESHOT) {
                    item.disabled = true;
                }
                reported.insert(id);
            }
            out.push(Ready { events: ready, data: item.data });
        }
        // The reported items to the back, in their order.
        if !reported.is_empty() {
            let moved: Vec<Item> = it.list.extract_if(.., |i| reported.contains(&i.id)).collect();
            it.list.extend(moved);
        }
        out
    }

    /// Each item's (descriptor, events, data, file), for /proc/PID/fdinfo.
    pub fn items(&self) -> Vec<(i32, u32, u64, Option<Arc<File>>)> {
        self.items.lock().list.iter().map(|i| (i.fd, i.events.bits(), i.data, i.file.upgrade())).collect()
    }

    /// Items in the list (for /proc/PID/fdinfo and tests).
    pub fn len(&self) -> usize {
        self.items.lock().list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Vnode for Epoll {
    fn attr(&self) -> Result<Attr, Errno> {
        Ok(anon::attr(self.ino, self.uid, self.gid))
    }

    fn fs(&self) -> FsRef {
        static FS: OnceLock<FsRef> = OnceLock::new();
        anon::fs_of(&FS, "eventpoll")
    }

    fn ino(&self) -> u64 {
        self.ino
    }

    fn read_at(&self, _off: u64, _buf: &mut [u8]) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
    }

    fn write_at(&self, _off: u64, _buf: &[u8]) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
    }

    /// Readable while a wait would report something.
    fn poll(&self) -> u16 {
        if self.scan(1, false).is_empty() { 0 } else { POLLIN }
    }

    fn pollable(&self) -> bool {
        true
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

    fn claims() -> Claims {
        Claims { by_file: BTreeMap::new() }
    }

    #[test]
    fn one_item_takes_each_wake_up() {
        let mut c = claims();
        let f = new(0, 0);
        assert!(c.take(&f, (1, 0), 10));
        assert!(!c.take(&f, (1, 0), 11), "the wake-up was item 10's");
        assert!(c.take(&f, (1, 0), 10), "item 10 keeps reporting it");
        assert!(c.take(&f, (2, 0), 11), "the next wake-up is anyone's");
        assert!(!c.take(&f, (2, 0), 10));
    }

    #[test]
    fn files_without_counts_and_other_files_are_not_claimed() {
        let mut c = claims();
        let (f, g) = (new(0, 0), new(0, 0));
        assert!(c.take(&f, (0, 0), 1));
        assert!(c.take(&f, (0, 0), 2), "a file that counts no wake-ups wakes everyone");
        assert!(c.take(&f, (3, 0), 1));
        assert!(c.take(&g, (3, 0), 2), "claims are per file");
    }

    #[test]
    fn a_gone_file_leaves_no_claim() {
        let mut c = claims();
        let f = new(0, 0);
        assert!(c.take(&f, (5, 0), 1));
        let key = Arc::as_ptr(&f) as *const () as usize;
        drop(f);
        // Whatever file comes at that address next is not bound by the old claim.
        let g = new(0, 0);
        let gkey = Arc::as_ptr(&g) as *const () as usize;
        if gkey == key {
            assert!(c.take(&g, (5, 0), 2));
        }
    }
}
