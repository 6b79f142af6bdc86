//! Block devices as the guest sees them: the [`BlockIo`] trait a file system's buffer cache
//! does its I/O through (a disk image — bcache's `DiskIo` — or a loop device's backing file,
//! fs/loopdev.rs), and the block ioctls (blockdev(8)'s, and what mke2fs and blkid ask) on
//! `/dev/vkdN` and `/dev/loopN`:
//!
//! | request        | answer                                                    |
//! |----------------|-----------------------------------------------------------|
//! | BLKGETSIZE64   | size in bytes (`u64`)                                     |
//! | BLKGETSIZE     | size in 512-byte sectors (`unsigned long`)                |
//! | BLKSSZGET      | logical sector size, 512 (`int`)                          |
//! | BLKPBSZGET     | physical sector size, 512 (`unsigned int`)                |
//! | BLKBSZGET      | soft block size, 4096 (`int`)                             |
//! | BLKROGET       | 1 when read-only (`int`)                                  |
//! | BLKFLSBUF      | write back (CAP_SYS_ADMIN, else EACCES)                   |
//! | BLKDISCARD     | EOPNOTSUPP (EBADF unless open for writing)                |
//! | BLKRRPART      | EINVAL (no partitions)                                    |
//!
//! Anything else on a block device is ENOTTY, after the loop device's own requests.

use std::fmt::Debug;

use linux_raw_sys::ioctl as io;

use crate::fs::file::File;
use crate::fs::vfs::{VType, VnodeRef};
use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};

/// Logical and physical sector size of every block device here.
pub const SECTOR_BYTES: u32 = 512;
/// BLKBSZGET's soft block size.
const SOFT_BLOCK_BYTES: i32 = 4096;

/// A block device's I/O: a disk image or a loop device's backing file.
pub trait BlockIo: Send + Sync + Debug {
    /// Size in bytes.
    fn size(&self) -> u64;
    /// Whether it cannot be written.
    fn is_readonly(&self) -> bool;
    /// Read `len` bytes at `off` (zeros where the backing store has none).
    fn read(&self, off: u64, len: usize) -> Result<Vec<u8>, Errno>;
    /// Write `data` at `off`.
    fn write(&self, off: u64, data: Vec<u8>) -> Result<(), Errno>;
    /// Make what was written durable.
    fn flush(&self) -> Result<(), Errno>;
    /// The file system on it let it go (unmount).
    fn release(&self) {}
}

/// What the block ioctls need of a device node.
#[derive(Debug, Clone, Copy)]
pub struct BlockInfo {
    pub size: u64,
    pub readonly: bool,
}

/// The block device behind a device node: a disk or a loop device.
pub fn info_of(v: &VnodeRef) -> Option<Result<BlockInfo, Errno>> {
    if v.vtype() != VType::Blk {
        return None;
    }
    let any = v.as_any()?;
    if let Some(d) = any.downcast_ref::<crate::fs::bcache::DiskNode>() {
        return Some(d.info());
    }
    any.downcast_ref::<crate::fs::loopdev::LoopNode>().map(crate::fs::loopdev::LoopNode::info)
}

/// Size in bytes of the block device `v` (lseek's SEEK_END), if it is one.
pub fn size_of(v: &VnodeRef) -> Option<Result<u64, Errno>> {
    info_of(v).map(|r| r.map(|i| i.size))
}

/// fsync(2) of a block device node: what its writes went to is made durable (the disk
/// image, a loop device's file). None for other files.
pub fn flush(v: &dyn crate::fs::vfs::Vnode) -> Option<Result<(), Errno>> {
    let any = v.as_any()?;
    if let Some(d) = any.downcast_ref::<crate::fs::bcache::DiskNode>() {
        return Some(d.flush());
    }
    crate::fs::loopdev::flush(v)
}

/// /proc/partitions: each disk and each bound loop device (Linux lists the block devices
/// that have a size), in 1 KiB blocks — what `losetup -a`, blkid and fdisk look for.
pub fn partitions() -> String {
    use std::fmt::Write;
    let mut s = String::from("major minor  #blocks  name\n\n");
    for (i, d) in crate::kern::init_main::boot_args().disks.iter().enumerate() {
        if d.is_dir {
            continue;
        }
        let size = std::fs::metadata(&d.path).map_or(0, |m| m.len());
        let _ = writeln!(s, "{:4}  {:7} {:10} vkd{i}", crate::fs::bcache::VKD_MAJOR, i, size >> 10);
    }
    for (minor, size) in crate::fs::loopdev::bound_sizes() {
        let _ = writeln!(s, "{:4}  {:7} {:10} loop{minor}", crate::fs::loopdev::LOOP_MAJOR, minor, size >> 10);
    }
    s
}

/// The block ioctls (and the loop devices' and loop-control's), when `f` is such a device;
/// None for other files.
pub fn ioctl(ctx: &mut Ctx<'_>, f: &File, req: u32) -> Option<SysResult> {
    if let Some(r) = crate::fs::loopdev::ioctl(ctx, f, req) {
        return Some(r);
    }
    let info = info_of(&f.vnode)?;
    Some(info.and_then(|i| block_ioctl(ctx, f, req, i)))
}

fn block_ioctl(ctx: &mut Ctx<'_>, f: &File, req: u32, i: BlockInfo) -> SysResult {
    match req {
        io::BLKGETSIZE64 => ctx.write(ctx.ptr::<u64>(2), &i.size)?,
        io::BLKGETSIZE => ctx.write(ctx.ptr::<u64>(2), &(i.size / u64::from(SECTOR_BYTES)))?,
        io::BLKSSZGET => ctx.write(ctx.ptr::<i32>(2), &SECTOR_BYTES.cast_signed())?,
        io::BLKPBSZGET => ctx.write(ctx.ptr::<u32>(2), &SECTOR_BYTES)?,
        io::BLKBSZGET => ctx.write(ctx.ptr::<i32>(2), &SOFT_BLOCK_BYTES)?,
        io::BLKROGET => ctx.write(ctx.ptr::<i32>(2), &i32::from(i.readonly))?,
        io::BLKFLSBUF => {
            if !ctx.p.user().cred().capable(crate::kern::cred::CAP_SYS_ADMIN) {
                return Err(Errno::EACCES);
            }
            crate::fs::vnops::fsync(f.vnode.as_ref())?;
        }
        io::BLKDISCARD => {
            if !f.writable() {
                return Err(Errno::EBADF);
            }
            return Err(Errno::EOPNOTSUPP);
        }
        io::BLKRRPART => return Err(Errno::EINVAL),
        _ => return Err(Errno::ENOTTY),
    }
    Ok(0)
}
