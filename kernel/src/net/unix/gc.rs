//! Descriptors in flight (SCM_RIGHTS): open files sitting in a socket's receive queue,
//! counted from the send that queued them to the receive that installs them (or the drop
//! that closes them), and collected when nothing but cycles of queues holds them.
//!
//! A socket's file sent over itself (or two sockets' files each in the other's queue) keeps
//! itself alive once every descriptor is closed: the queue holds the file, the file holds the
//! socket, the socket holds the queue. Linux's garbage collector (net/unix/garbage.c) finds
//! such sockets; this is its algorithm:
//!
//! 1. candidates: AF_UNIX sockets whose open file is referenced only from queues (the file's
//!    reference count equals the times it is in flight);
//! 2. a candidate is alive if some of its in-flight references sit in a non-candidate's
//!    queue, and so is everything in an alive candidate's queue, transitively;
//! 3. the queues of the other candidates are emptied, which drops the cycle.
//!
//! It runs from the syncer (once a second) while anything is in flight, like Linux's
//! deferred unix_gc. Counting: `unix_inflight` (this file's table, a spinlock) is taken and
//! let go before any socket's lock; a receive takes the files out of the queue under the
//! socket's lock and unregisters them after, so a file being received is never counted as
//! held by queues alone.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once, Weak};

use platform::sync::SpinLock;

use crate::fs::file::File;
use crate::net::file::SocketFile;

use super::UnixSocket;
use super::queue::Msg;

/// Files in flight, over all sockets.
static INFLIGHT: AtomicUsize = AtomicUsize::new(0);

/// AF_UNIX socket files in flight: the file's address → (the file, times in flight).
static UNIX_INFLIGHT: SpinLock<BTreeMap<usize, (Weak<File>, usize)>> = SpinLock::new("unix_inflight", BTreeMap::new());

/// How many files are in flight now.
pub fn inflight_count() -> usize {
    INFLIGHT.load(Ordering::Acquire)
}

fn file_key(f: &Arc<File>) -> usize {
    Arc::as_ptr(f).addr()
}

/// The AF_UNIX socket an open file is, if it is one.
fn unix_socket_of(f: &File) -> Option<Arc<UnixSocket>> {
    let sf = f.vnode.as_any()?.downcast_ref::<SocketFile>()?;
    sf.socket().as_any().downcast_ref::<UnixSocket>()?.arc()
}

/// Files in a message, counted while they are in flight.
#[derive(Debug)]
pub(crate) struct InFlight {
    files: Vec<Arc<File>>,
}

impl InFlight {
    pub(crate) fn new(files: Vec<Arc<File>>) -> InFlight {
        INFLIGHT.fetch_add(files.len(), Ordering::AcqRel);
        let mut t = UNIX_INFLIGHT.lock();
        for f in &files {
            if f.vnode.as_any().is_some_and(|a| a.is::<SocketFile>()) {
                t.entry(file_key(f)).or_insert_with(|| (Arc::downgrade(f), 0)).1 += 1;
            }
        }
        drop(t);
        static GC_HOOK: Once = Once::new();
        GC_HOOK.call_once(|| crate::kern::syncer::register(|| {
            collect();
        }));
        InFlight { files }
    }

    pub(crate) fn files(&self) -> &[Arc<File>] {
        &self.files
    }

    /// They arrive: no longer in flight (the receiver installs them).
    pub(crate) fn deliver(mut self) -> Vec<Arc<File>> {
        let files = std::mem::take(&mut self.files);
        uncount(&files);
        files
    }
}

fn uncount(files: &[Arc<File>]) {
    if files.is_empty() {
        return;
    }
    INFLIGHT.fetch_sub(files.len(), Ordering::AcqRel);
    let mut t = UNIX_INFLIGHT.lock();
    for f in files {
        if let Some(e) = t.get_mut(&file_key(f)) {
            e.1 -= 1;
            if e.1 == 0 {
                t.remove(&file_key(f));
            }
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        uncount(&self.files);
    }
}

/// The in-flight socket files each message of `s`'s queues (its own, and those of
/// connections waiting in its backlog) carries, by file address.
fn queued_socket_files(s: &UnixSocket) -> Vec<usize> {
    let mut socks = vec![];
    let mut out = vec![];
    {
        let st = s.st.lock();
        for m in &st.rx {
            out.extend(m.rights().into_iter().flat_map(|r| r.files().iter().map(file_key)));
        }
        socks.extend(st.backlog.iter().cloned());
    }
    for e in socks {
        let st = e.st.lock();
        for m in &st.rx {
            out.extend(m.rights().into_iter().flat_map(|r| r.files().iter().map(file_key)));
        }
    }
    out
}

/// One collection: empty the queues of sockets only cycles of queues keep alive. Returns
/// how many sockets it purged.
pub fn collect() -> usize {
    // 1. Candidates: files whose every reference is in flight.
    let snapshot: Vec<(usize, Arc<File>, usize)> =
        UNIX_INFLIGHT.lock().iter().filter_map(|(&k, (w, n))| Some((k, w.upgrade()?, *n))).collect();
    let mut cands: BTreeMap<usize, (Arc<UnixSocket>, usize)> = BTreeMap::new();
    for (k, f, n) in &snapshot {
        // The snapshot's own reference is the one extra.
        if Arc::strong_count(f) == n + 1
            && let Some(s) = unix_socket_of(f)
        {
            cands.insert(*k, (s, *n));
        }
    }
    drop(snapshot);
    if cands.is_empty() {
        return 0;
    }
    // 2. References from candidates' queues; what a non-candidate holds is alive.
    let edges: BTreeMap<usize, Vec<usize>> = cands.iter().map(|(&k, (s, _))| (k, queued_socket_files(s))).collect();
    let mut internal: BTreeMap<usize, usize> = BTreeMap::new();
    for targets in edges.values() {
        for t in targets.iter().filter(|t| cands.contains_key(t)) {
            *internal.entry(*t).or_default() += 1;
        }
    }
    let mut alive: BTreeSet<usize> = cands.iter().filter(|(k, (_, n))| internal.get(k).copied().unwrap_or(0) < *n).map(|(k, _)| *k).collect();
    let mut work: Vec<usize> = alive.iter().copied().collect();
    while let Some(k) = work.pop() {
        for t in edges.get(&k).into_iter().flatten() {
            if cands.contains_key(t) && alive.insert(*t) {
                work.push(*t);
            }
        }
    }
    // 3. Empty the rest: take their messages' files out, drop them with no lock held.
    let mut dropped: Vec<InFlight> = vec![];
    let mut purged = 0;
    for (k, (s, _)) in &cands {
        if alive.contains(k) {
            continue;
        }
        purged += 1;
        let embryos: Vec<Arc<UnixSocket>> = {
            let mut st = s.st.lock();
            dropped.extend(st.rx.iter_mut().filter_map(Msg::take_rights));
            st.backlog.iter().cloned().collect()
        };
        for e in embryos {
            let mut st = e.st.lock();
            dropped.extend(st.rx.iter_mut().filter_map(Msg::take_rights));
        }
    }
    drop(cands);
    drop(dropped);
    purged
}
