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
//! | `vnode.rs`  | the `Vnode` implementation, live nodes and orphans                    |
//! | `le.rs`     | little-endian field access                                            |
//! | `tests.rs`  | unit tests on mke2fs images through the `Vnode` interface, e2fsck after |
//!
//! Locking: one sleep lock per file system ([`Ext2Fs::inner`]) covers the superblock copy,
//! descriptors, block cache and every on-disk change; I/O sleeps with it held. The node table
//! and orphan set are spinlocks taken inside it (or alone), never across a sleep.
//!
//! Everything read from the disk is untrusted: the superblock and descriptors are checked at
//! mount (a bad image is refused with the reason), block and inode numbers and directory
//! entries as they are used (EIO and a console message). Unknown INCOMPAT features refuse
//! the mount; unknown RO_COMPAT features mount read-only.

mod alloc;
mod dir;
mod fs;
mod inode;
mod le;
mod sb;
#[cfg(test)]
mod tests;
mod vnode;

use std::sync::{Arc, Once};

use platform::sync::SpinLock;

pub use vnode::{Ext2Fs, Ext2Node};

use crate::fs::bcache::BlockDev;
use crate::fs::vfs::VnodeRef;
use crate::kprintf;

static MOUNTED: SpinLock<Vec<Arc<Ext2Fs>>> = SpinLock::new("ext2_mounts", Vec::new());
static SYNC_HOOK: Once = Once::new();

/// st_dev of the file system on vkd`index` (major 254, as Linux's virtio disks).
pub fn dev_number(index: usize) -> u64 {
    (254 << 8) | index as u64
}

/// Mount the ext2 file system on `dev` (read-only if asked or if it has features vk cannot
/// write); its root directory.
pub fn mount(dev: Arc<BlockDev>, readonly: bool) -> Result<VnodeRef, String> {
    if MOUNTED.lock().iter().any(|m| m.name == dev.name) {
        return Err("already mounted".into());
    }
    let index = dev.index;
    if dev.is_readonly() && !readonly {
        kprintf!("{}: the image is not writable: mounting read-only\n", dev.name);
    }
    let readonly = readonly || dev.is_readonly();
    let fs = fs::Fs::mount(dev, readonly)?;
    if let Some(why) = &fs.sb.ro_reason {
        kprintf!("{}: ext2: {why}: mounted read-only\n", fs.name);
    }
    let e = Ext2Fs::new(fs, dev_number(index));
    MOUNTED.lock().push(Arc::clone(&e));
    SYNC_HOOK.call_once(|| crate::kern::syncer::register(sync_all));
    Ok(e.root())
}

fn mounted() -> Vec<Arc<Ext2Fs>> {
    MOUNTED.lock().clone()
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
