//! mount(2) and umount2(2).
//!
//! mount takes `ext2` from a disk node (`mount -t ext2 /dev/vkd1 /mnt`; MS_RDONLY honoured)
//! and the kernel's own file systems (`tmpfs`, `proc`, `devfs`/`devtmpfs`: a new instance).
//! MS_REMOUNT succeeds without changing anything (an rc script's `mount -o remount,rw /`);
//! bind and move mounts are EINVAL. umount2 writes an ext2 file system back, marks it clean
//! and forgets it; EBUSY while any of its files is in use. Both need euid 0 (EPERM).

use crate::fs::bcache::{BlockDev, DiskNode};
use crate::fs::vfs::{VType, VnodeRef};
use crate::fs::{devfs, ext2, namei, procfs, tmpfs};
use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};
use crate::kprintf;
use crate::sys::fs::{AT_FDCWD, lookup_at};

const MS_RDONLY: u64 = 1;
const MS_REMOUNT: u64 = 32;
const MS_BIND: u64 = 4096;
const MS_MOVE: u64 = 8192;
const MNT_FORCE: u64 = 1;
const MNT_DETACH: u64 = 2;
const MNT_EXPIRE: u64 = 4;
const UMOUNT_NOFOLLOW: u64 = 8;

fn require_root(ctx: &Ctx<'_>) -> Result<(), Errno> {
    if ctx.p.user().cred.lock().euid != 0 {
        return Err(Errno::EPERM);
    }
    Ok(())
}

/// The ext2 file system on the disk node `source`.
fn mount_ext2(ctx: &Ctx<'_>, source: &[u8], readonly: bool) -> Result<VnodeRef, Errno> {
    let v = lookup_at(ctx, AT_FDCWD, source, true)?.vnode().clone();
    if v.vtype() != VType::Blk {
        return Err(Errno::ENOTBLK);
    }
    let index = DiskNode::index_of_rdev(v.attr()?.rdev).ok_or(Errno::ENXIO)?;
    let disk = crate::kern::init_main::boot_args().disks.get(index).ok_or(Errno::ENXIO)?;
    if disk.is_dir {
        return Err(Errno::ENOTBLK);
    }
    let dev = BlockDev::open(index, &disk.path, disk.cow).map_err(|e| {
        kprintf!("mount: {e}\n");
        Errno::EIO
    })?;
    ext2::mount(dev, readonly).map_err(|why| {
        kprintf!("vkd{index}: mount: {why}\n");
        if why == "already mounted" { Errno::EBUSY } else { Errno::EINVAL }
    })
}

pub fn sys_mount(ctx: &mut Ctx<'_>) -> SysResult {
    require_root(ctx)?;
    let target = ctx.path(1)?;
    let flags = ctx.arg(3);
    let at = lookup_at(ctx, AT_FDCWD, &target, true)?;
    if at.vnode().vtype() != VType::Dir {
        return Err(Errno::ENOTDIR);
    }
    if flags & MS_REMOUNT != 0 {
        return Ok(0);
    }
    if flags & (MS_BIND | MS_MOVE) != 0 {
        return Err(Errno::EINVAL);
    }
    let fstype = ctx.copyin_str(ctx.arg(2), 64)?;
    let source = if ctx.arg(0) == 0 { b"none".to_vec() } else { ctx.copyin_str(ctx.arg(0), namei::PATH_MAX)? };
    let root = match &fstype[..] {
        b"ext2" => mount_ext2(ctx, &source, flags & MS_RDONLY != 0)?,
        b"tmpfs" => tmpfs::new(),
        b"proc" => procfs::new(),
        b"devfs" | b"devtmpfs" => devfs::new(),
        _ => return Err(Errno::ENODEV),
    };
    let name = String::from_utf8_lossy(&source).into_owned();
    if let Err(e) = namei::mount(&at, root.clone(), &name) {
        if root.fs_type() == "ext2" {
            let _ = ext2::unmount(root.attr()?.dev);
        }
        return Err(e);
    }
    Ok(0)
}

pub fn sys_umount2(ctx: &mut Ctx<'_>) -> SysResult {
    require_root(ctx)?;
    let flags = ctx.arg(1);
    if flags & !(MNT_FORCE | MNT_DETACH | MNT_EXPIRE | UMOUNT_NOFOLLOW) != 0 {
        return Err(Errno::EINVAL);
    }
    let path = ctx.path(0)?;
    let v = lookup_at(ctx, AT_FDCWD, &path, flags & UMOUNT_NOFOLLOW == 0)?.vnode().clone();
    let is_ext2 = v.fs_type() == "ext2";
    let dev = v.attr()?.dev;
    namei::unmount(&v, || is_ext2 && ext2::busy(dev))?;
    if is_ext2 {
        ext2::unmount(dev)?;
    }
    Ok(0)
}
