//! The name cache (BSD's namecache, Linux's dcache): (directory, name) → the vnode a lookup
//! found, or "no such name" (a negative entry), so that path walks skip the file system's
//! own lookup (an ext2 directory scan under its lock, a host lstat for hostfs).
//!
//! Entries are keyed by the directory's identity ([`VnodeId`]) and the name's bytes, below
//! mount points: namei asks the cache where it would ask the directory, and crosses mounts
//! after, so mounting and unmounting change no entry (an unmount drops the entries of its
//! file system, whose vnodes they hold).
//!
//! **Invalidation.** Every change of a name goes through the VFS (fs/vnops.rs), which calls
//! [`invalidate`] for each (directory, name) it changed once the file system is done, and
//! [`purge_dir`] for a directory it removed (an ext2 inode number may come back as another
//! directory). A lookup that misses reads the [`Seq`] before asking the file system and
//! enters its answer only if no invalidation happened meanwhile ([`enter`]), so an answer
//! that a concurrent change made stale is never cached. File systems whose names change
//! behind the VFS's back say so ([`CachePolicy`]): procfs (processes come and go) is not
//! cached; hostfs (the host may add files, and its open files hold host descriptors) keeps
//! only directories and symbolic links, no negative entries.
//!
//! **Bounds.** At most [`MAX_ENTRIES`] entries; past that the least recently used eighth is
//! dropped. Entries hold their vnodes (an ext2 node stays live, as a Linux dentry holds its
//! inode): unlink drops the entry, so an unlinked file is still released when its last user
//! goes. Lock: `namecache`, a leaf (vnodes are dropped after it is released).

use std::collections::HashMap;
use std::sync::Arc;

use platform::sync::SpinLock;

use crate::fs::vfs::{VnodeId, VnodeRef};

/// Entries kept at most.
pub const MAX_ENTRIES: usize = 4096;

/// What a file system lets the cache keep of its names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CachePolicy {
    /// Names found and names missing (every change goes through the VFS).
    All,
    /// Only the names of directories and symbolic links found — the steps of a walk: names
    /// may appear behind the VFS's back, and a regular file may hold a host descriptor
    /// (hostfs), which a cache of thousands of entries must not keep open.
    Directories,
    /// Nothing (names come and go by themselves: procfs).
    None,
}

/// What the cache knows of a name.
#[derive(Debug, Clone)]
pub enum Cached {
    /// The name is this vnode.
    Found(VnodeRef),
    /// There is no such name.
    Missing,
}

#[derive(Debug)]
struct Entry {
    /// None: a negative entry.
    vnode: Option<VnodeRef>,
    /// The file system of `vnode` (for [`purge_fs`], without asking the vnode under the lock).
    fs: u64,
    last_used: u64,
}

#[derive(Debug, Default)]
struct Cache {
    dirs: HashMap<VnodeId, HashMap<Vec<u8>, Entry>>,
    entries: usize,
    /// Bumped by every invalidation (see [`Seq`]).
    seq: u64,
    tick: u64,
    hits: u64,
    misses: u64,
}

static CACHE: SpinLock<Option<Cache>> = SpinLock::new("namecache", None);

/// The invalidation count a lookup read before asking the file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seq(u64);

fn with<R>(f: impl FnOnce(&mut Cache) -> R) -> R {
    let mut g = CACHE.lock();
    f(g.get_or_insert_with(Cache::default))
}

/// The cached answer for `name` in `dir`, or the sequence number to enter the file
/// system's answer with.
pub fn lookup(dir: VnodeId, name: &[u8]) -> Result<Cached, Seq> {
    with(|c| {
        c.tick += 1;
        let tick = c.tick;
        match c.dirs.get_mut(&dir).and_then(|d| d.get_mut(name)) {
            Some(e) => {
                e.last_used = tick;
                c.hits += 1;
                Ok(e.vnode.as_ref().map_or(Cached::Missing, |v| Cached::Found(Arc::clone(v))))
            }
            None => {
                c.misses += 1;
                Err(Seq(c.seq))
            }
        }
    })
}

/// Remember what the file system answered for `name` in `dir` (None: no such name) — unless
/// something was invalidated since `seq` was read, when the answer may already be stale.
pub fn enter(dir: VnodeId, name: &[u8], found: Option<&VnodeRef>, seq: Seq) {
    let fs = found.map_or(dir.fs, |v| v.id().fs);
    let evicted = with(|c| {
        if c.seq != seq.0 {
            return Vec::new();
        }
        c.tick += 1;
        let e = Entry { vnode: found.map(Arc::clone), fs, last_used: c.tick };
        if c.dirs.entry(dir).or_default().insert(name.to_vec(), e).is_none() {
            c.entries += 1;
        }
        if c.entries > MAX_ENTRIES { evict(c) } else { Vec::new() }
    });
    drop(evicted); // vnodes go after the lock
}

/// Drop the least recently used eighth of the entries; what they held, to drop unlocked.
fn evict(c: &mut Cache) -> Vec<Entry> {
    let mut ages: Vec<u64> = c.dirs.values().flat_map(|d| d.values().map(|e| e.last_used)).collect();
    let cut = ages.len() / 8;
    let (_, &mut limit, _) = ages.select_nth_unstable(cut);
    let mut gone = Vec::new();
    for d in c.dirs.values_mut() {
        let old: Vec<Vec<u8>> = d.iter().filter(|(_, e)| e.last_used <= limit).map(|(n, _)| n.clone()).collect();
        for n in old {
            gone.extend(d.remove(&n));
        }
    }
    c.dirs.retain(|_, d| !d.is_empty());
    c.entries -= gone.len();
    gone
}

/// `name` in `dir` changed (created, removed, renamed from or to): forget it.
pub fn invalidate(dir: VnodeId, name: &[u8]) {
    let gone = with(|c| {
        c.seq += 1;
        let e = c.dirs.get_mut(&dir).and_then(|d| d.remove(name));
        if e.is_some() {
            c.entries -= 1;
        }
        e
    });
    drop(gone);
}

/// The directory `dir` is gone (rmdir, renamed over): forget every name in it.
pub fn purge_dir(dir: VnodeId) {
    let gone = with(|c| {
        c.seq += 1;
        let d = c.dirs.remove(&dir);
        c.entries -= d.as_ref().map_or(0, HashMap::len);
        d
    });
    drop(gone);
}

/// Forget every entry of the file system `fs` (its directories and its vnodes): at unmount,
/// so that the cache holds none of its files.
pub fn purge_fs(fs: u64) {
    let gone = with(|c| {
        c.seq += 1;
        let mut gone = Vec::new();
        c.dirs.retain(|id, d| {
            if id.fs == fs {
                gone.extend(d.drain().map(|(_, e)| e));
                return false;
            }
            let old: Vec<Vec<u8>> = d.iter().filter(|(_, e)| e.fs == fs).map(|(n, _)| n.clone()).collect();
            for n in old {
                gone.extend(d.remove(&n));
            }
            !d.is_empty()
        });
        c.entries -= gone.len();
        gone
    });
    drop(gone);
}

/// (entries, hits, misses), for tests and the debugger.
pub fn stats() -> (usize, u64, u64) {
    with(|c| (c.entries, c.hits, c.misses))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::mount::{FileSystem, FsRef};
    use crate::fs::vfs::{Attr, Vnode};
    use crate::kern::errno::Errno;

    #[derive(Debug)]
    struct TestFs(u64);

    impl FileSystem for TestFs {
        fn type_name(&self) -> &'static str {
            "test"
        }
        fn id(&self) -> u64 {
            self.0
        }
    }

    #[derive(Debug)]
    struct TestNode(Arc<TestFs>, u64);

    impl Vnode for TestNode {
        fn attr(&self) -> Result<Attr, Errno> {
            Ok(Attr { ino: self.1, ..Attr::default() })
        }
        fn fs(&self) -> FsRef {
            Arc::clone(&self.0) as FsRef
        }
        fn ino(&self) -> u64 {
            self.1
        }
    }

    fn node(fs: u64, ino: u64) -> VnodeRef {
        Arc::new(TestNode(Arc::new(TestFs(fs)), ino))
    }

    // One test: the cache is process-wide.
    #[test]
    fn enter_hit_invalidate_race_purge_evict() {
        let d = VnodeId { fs: 900_001, ino: 2 };
        let f = node(900_001, 10);
        // A miss, then the answer entered: a hit.
        let Err(seq) = lookup(d, b"f") else { panic!("empty cache hit") };
        enter(d, b"f", Some(&f), seq);
        assert!(matches!(lookup(d, b"f"), Ok(Cached::Found(v)) if v.id() == f.id()));
        // A negative entry.
        let Err(seq) = lookup(d, b"none") else { panic!() };
        enter(d, b"none", None, seq);
        assert!(matches!(lookup(d, b"none"), Ok(Cached::Missing)));
        // Created meanwhile: invalidated, and gone.
        invalidate(d, b"none");
        assert!(lookup(d, b"none").is_err());
        // An answer read before an invalidation is not entered.
        let Err(seq) = lookup(d, b"late") else { panic!() };
        invalidate(d, b"other");
        enter(d, b"late", None, seq);
        assert!(lookup(d, b"late").is_err(), "a possibly stale answer was cached");
        // A directory removed: its names go.
        let sub = VnodeId { fs: 900_001, ino: 11 };
        let Err(seq) = lookup(sub, b"x") else { panic!() };
        enter(sub, b"x", None, seq);
        purge_dir(sub);
        assert!(lookup(sub, b"x").is_err());
        // An unmount: entries in its directories and entries naming its vnodes go.
        let other = VnodeId { fs: 900_002, ino: 2 };
        let Err(seq) = lookup(other, b"mnt") else { panic!() };
        enter(other, b"mnt", Some(&f), seq);
        purge_fs(900_001);
        assert!(lookup(d, b"f").is_err() && lookup(other, b"mnt").is_err());
        assert_eq!(Arc::strong_count(&f), 1, "the cache holds the vnode no more");
        // Bounded: past MAX_ENTRIES the oldest go, the newest stay.
        for i in 0..(MAX_ENTRIES + 100) {
            let name = format!("n{i}");
            if let Err(seq) = lookup(d, name.as_bytes()) {
                enter(d, name.as_bytes(), None, seq);
            }
        }
        assert!(stats().0 <= MAX_ENTRIES);
        assert!(lookup(d, format!("n{}", MAX_ENTRIES + 99).as_bytes()).is_ok());
        assert!(lookup(d, b"n0").is_err());
        purge_fs(900_001);
    }
}
