//! ext2, read and write: the root image (`mke2fs -t ext2 -d`) and any other ext2 disk.
//!
//! On-disk layout (block size B = 1, 2 or 4 KiB; with 1 KiB blocks block 0 is the boot block
//! and the file system starts at block 1):
//!
//! ```text
//!  byte 0      1024        2048
//!  | boot     | superblock |  (the superblock is always at byte 1024, 1024 bytes long)
//!
//!  block group 0                                            block group 1 …
//!  +------------+-----------+-------------+--------+--------+-------------+------------+----
//!  | superblock | group     | reserved    | block  | inode  | inode table | data       | …
//!  |            | desc.     | GDT blocks  | bitmap | bitmap | (ipg×isize) | blocks     |
//!  +------------+-----------+-------------+--------+--------+-------------+------------+----
//!  sparse_super: copies of the superblock and descriptors only in groups 0, 1, 3ⁿ, 5ⁿ, 7ⁿ
//!  (vk updates the primary copies, as Linux does; e2fsck does not compare the backups).
//!
//!  inode (128 or 256 bytes): mode uid size times links i_blocks(512-byte units) flags
//!        i_block[15] = 12 direct | single | double | triple indirect; size_high (large_file)
//!  directory block: [ino u32 | rec_len u16 | name_len u8 | file_type u8 | name … ]…
//!        rec_len chains the entries to the end of the block
//! ```
//!
//! | file        | what it does                                                          |
//! |-------------|------------------------------------------------------------------------|
//! | `sb.rs`     | superblock and group descriptors: parse, check, feature policy         |
//! | `fs.rs`     | one mounted file system: mount-time checks, metadata write-back, sync  |
//! | `inode.rs`  | on-disk inodes, the block map, file data, truncate                     |
//! | `dir.rs`    | directory entries: lookup, list, insert, remove (Linux ext2 rules)    |
//! | `alloc.rs`  | block and inode bitmaps, free counts, releasing an inode               |
//! | `mount.rs`  | a mounted file system for the VFS: live nodes, orphans, `ext2_ns`, sync |
//! | `vnode.rs`  | the `Vnode` implementation: each operation and the inode locks it takes |
//! | `le.rs`     | little-endian field access                                            |
//! | `tests.rs`  | unit tests on mke2fs images through the `Vnode` interface, e2fsck after |
//!
//! Locking — no lock covers the whole file system; I/O sleeps with only what it needs held.
//! Outermost first:
//!
//! | lock          | kind             | covers                                                  |
//! |---------------|------------------|---------------------------------------------------------|
//! | `ext2_ns`     | rw sleep, per fs | exclusive: namespace changes (create, mkdir, symlink, link, unlink, rmdir, rename) one at a time — the only operations that lock several inodes, so they may lock them in any order — and a remount; shared: a change of one file (write, truncate, setattr), so a remount waits for it |
//! | `ext2_inode`  | rw sleep, per inode (in its [`Ext2Node`]) | the inode and what it owns: its block map and data, a directory's entries. Shared: read, lookup, readdir, readlink; exclusive: write, truncate, setattr, entry changes. `attr` takes none (an inode is read whole, a snapshot) |
//! | `ext2_alloc`  | sleep, per fs (`fs::Meta`) | block and inode bitmaps, free counts, the superblock and group descriptors as written back |
//! | `bflush`      | sleep, per fs     | one flush of the buffer cache at a time (a full cache flushes inside an allocation) |
//! | `buf`         | rw sleep, per cached block | the block's bytes while it is read in or looked at: one at a time, inside closures |
//! | `bcache`      | spin, per fs     | the block map of the cache (never across I/O)            |
//!
//! `ext2_nodes` (live nodes) and `ext2_orphans` are spinlock leaves. Orphans are released
//! after the operation that left them unused, with no inode lock held (nothing else can reach
//! them). A page fault reading a mapped file holds its address space's `vmmap` shared
//! outside all of these; ext2 never touches guest memory. A sync copies each dirty block under
//! its own lock, so it may write half of an operation under way, as any unjournalled ext2
//! does; at halt (nothing may sleep) a file system with an operation under way is left
//! unsynced rather than written half-changed.
//!
//! Everything read from the disk is untrusted: the superblock and descriptors are checked at
//! mount (a bad image is refused with the reason), block and inode numbers and directory
//! entries as they are used (EIO and a console message). Unknown INCOMPAT features refuse
//! the mount; unknown RO_COMPAT features mount read-only.

mod alloc;
mod dir;
mod falloc;
mod fs;
mod inode;
mod le;
mod mount;
mod sb;
#[cfg(test)]
mod tests;
mod vnode;

use std::sync::{Arc, Once};

use platform::sync::SpinLock;

pub use mount::Ext2Fs;
pub use vnode::Ext2Node;

use crate::fs::bcache::BlockDev;
use crate::fs::vfs::VnodeRef;
use crate::kprintf;

static MOUNTED: SpinLock<Vec<Arc<Ext2Fs>>> = SpinLock::new("ext2_mounts", Vec::new());
static SYNC_HOOK: Once = Once::new();

/// Whether an ext2 file system on the block device `name` (vkdN, loopN) is mounted.
pub fn is_mounted(name: &str) -> bool {
    MOUNTED.lock().iter().any(|m| m.name == name)
}

/// Mount the ext2 file system on `dev` (read-only if asked or if it has features vk cannot
/// write); its root directory.
pub fn mount(dev: Arc<BlockDev>, readonly: bool) -> Result<VnodeRef, String> {
    if is_mounted(&dev.name) {
        return Err("already mounted".into());
    }
    let rdev = dev.rdev;
    if dev.is_readonly() && !readonly {
        kprintf!("{}: the image is not writable: mounting read-only\n", dev.name);
    }
    let readonly = readonly || dev.is_readonly();
    let fs = fs::Fs::mount(dev, readonly)?;
    if let Some(why) = &fs.sb.ro_reason {
        kprintf!("{}: ext2: {why}: mounted read-only\n", fs.name);
    }
    let e = Ext2Fs::new(fs, rdev);
    MOUNTED.lock().push(Arc::clone(&e));
    SYNC_HOOK.call_once(|| crate::kern::syncer::register(sync_all));
    Ok(e.root())
}

/// The mounted file systems, the last mounted first: one on a loop device is written back
/// before the file system its backing file is on.
fn mounted() -> Vec<Arc<Ext2Fs>> {
    MOUNTED.lock().iter().rev().cloned().collect()
}

/// Write back every mounted ext2 file system (the syncer's hook; sync(2)).
pub fn sync_all() {
    for m in mounted() {
        if let Err(e) = m.sync(false) {
            log::warn!("{}: sync: {e}", m.name);
        }
    }
}

/// Halt: release orphans, write everything, mark every file system clean.
pub fn unmount_all() {
    for m in mounted() {
        match m.sync(true) {
            Ok(()) => {}
            Err(e) => crate::kprintf_nolock!("{}: unmount: {e}\n", m.name),
        }
    }
}

/// Forget the file system of `dev` (its unmount: it left the mount table, or its mount
/// failed), so the syncer and halt leave it alone and the disk can be mounted again.
fn forget(dev: u64) {
    MOUNTED.lock().retain(|x| x.dev != dev);
}
