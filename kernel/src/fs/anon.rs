//! Anonymous inodes (Linux's anon_inodefs): the files that are no file system's — an epoll
//! instance, an eventfd, a signalfd, a timerfd. Each kind has its own [`AnonFs`] instance,
//! mounted nowhere, whose type name is what `/proc/PID/fd/N` shows (`anon_inode:[eventfd]`),
//! and inode numbers from one counter.
//!
//! Their attributes are Linux's: mode 0600 with no file type bits, owned by the creator,
//! size 0, `st_dev` of the anonymous-inode file system.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use crate::fs::mount::{FileSystem, FsRef, new_fs_id};
use crate::fs::vfs::Attr;

/// One kind of anonymous file, as a file system of its own.
#[derive(Debug)]
pub struct AnonFs {
    id: u64,
    name: &'static str,
}

impl FileSystem for AnonFs {
    fn type_name(&self) -> &'static str {
        self.name
    }

    fn id(&self) -> u64 {
        self.id
    }
}

/// The file system of the kind `name` (one instance each, made on first use).
pub fn fs_of(cell: &'static OnceLock<FsRef>, name: &'static str) -> FsRef {
    Arc::clone(cell.get_or_init(|| Arc::new(AnonFs { id: new_fs_id(), name })))
}

static NEXT_INO: AtomicU64 = AtomicU64::new(1);

/// A new anonymous inode number.
pub fn new_ino() -> u64 {
    NEXT_INO.fetch_add(1, Ordering::Relaxed)
}

/// `st_dev` of every anonymous inode (Linux's anon_inodefs is device 0:14 or so; any fixed
/// number of no disk does).
pub const ANON_DEV: u64 = 14;

/// An anonymous inode's attributes: mode 0600, no type bits, as on Linux.
pub fn attr(ino: u64, uid: u32, gid: u32) -> Attr {
    Attr { dev: ANON_DEV, ino, mode: 0o600, nlink: 1, uid, gid, blksize: 4096, ..Attr::default() }
}
