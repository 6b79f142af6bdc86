//! mount(2) and umount2(2); sysfs(2), the file system types.
//!
//! mount takes `ext2` from a disk node (`mount -t ext2 /dev/vkd1 /mnt`) or a bound loop
//! device (`/dev/loopN`, fs/loopdev.rs: `mount -o loop`) and the kernel's own
//! file systems (`tmpfs`, `proc`, `devfs`/`devtmpfs`: a new instance), with the per-mount
//! flags MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_NOATIME, MS_NODIRATIME and the
//! access-time modes (fs/mount.rs enforces them). MS_REMOUNT changes those flags of a mount
//! (`mount -o remount,ro /mnt`: read-only from then on; EBUSY while a file is open for
//! writing there); bind and move mounts are EINVAL. umount2 takes a mount off the table and
//! writes its file system back (EBUSY while it is in use). Both need CAP_SYS_ADMIN (EPERM).

use crate::fs::bcache::{BlockDev, DiskNode};
use crate::fs::mount::{self, MountFlags};
use crate::fs::vfs::{VType, VnodeRef};
use crate::fs::{devfs, ext2, namei, procfs, tmpfs};
use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};
use crate::kprintf;
use crate::sys::fs::{AT_FDCWD, lookup_at};
use crate::sys::fsflags::UmountFlags;
use linux_raw_sys::general as linux;


fn require_root(ctx: &Ctx<'_>) -> Result<(), Errno> {
    if !ctx.p.user().cred().capable(crate::kern::cred::CAP_SYS_ADMIN) {
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
    if let Some(dev) = crate::fs::loopdev::block_dev(&v) {
        let dev = dev?;
        let name = dev.name.clone();
        return ext2::mount(dev, readonly).map_err(|why| {
            kprintf!("{name}: mount: {why}\n");
            if why == "already mounted" { Errno::EBUSY } else { Errno::EINVAL }
        });
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
    // mount(2): the flags are an unsigned long whose top 16 bits may be the old magic
    // number MS_MGC_VAL; flags vk does not keep are ignored, as Linux ignores many.
    let mut ms = ctx.uint(3);
    if ms & linux::MS_MGC_MSK == linux::MS_MGC_VAL {
        ms &= !linux::MS_MGC_MSK;
    }
    let flags = MountFlags::from_mount_flags(ms);
    let at = lookup_at(ctx, AT_FDCWD, &target, true)?;
    if at.vnode().vtype() != VType::Dir {
        return Err(Errno::ENOTDIR);
    }
    if ms & linux::MS_REMOUNT != 0 {
        let atime = linux::MS_NOATIME | linux::MS_NODIRATIME | linux::MS_RELATIME | linux::MS_STRICTATIME;
        mount::remount(&at, flags, ms & atime == 0)?;
        return Ok(0);
    }
    if ms & (linux::MS_BIND | linux::MS_MOVE) != 0 {
        return Err(Errno::EINVAL);
    }
    let fstype = ctx.read_cstr(ctx.ptr(2), 64)?;
    let source = if ctx.ptr::<u8>(0).is_null() { b"none".to_vec() } else { ctx.read_cstr(ctx.ptr(0), namei::PATH_MAX)? };
    let root = match &fstype[..] {
        b"ext2" => mount_ext2(ctx, &source, flags.contains(MountFlags::RDONLY))?,
        b"tmpfs" => tmpfs::new(),
        b"proc" => procfs::new(),
        b"devfs" | b"devtmpfs" => devfs::new(),
        b"devpts" => crate::fs::devpts::new(),
        b"sysfs" => crate::fs::sysfs::new(),
        _ => return Err(Errno::ENODEV),
    };
    let fs = root.fs();
    if let Err(e) = mount::mount(&at, root, &source, flags) {
        let _ = fs.unmount();
        return Err(e);
    }
    Ok(0)
}

pub fn sys_umount2(ctx: &mut Ctx<'_>) -> SysResult {
    require_root(ctx)?;
    let flags = ctx.flags::<UmountFlags>(1)?;
    let path = ctx.path(0)?;
    let at = lookup_at(ctx, AT_FDCWD, &path, !flags.contains(UmountFlags::NOFOLLOW))?;
    mount::unmount(at)?;
    Ok(0)
}

/// sysfs(2), the old file-system-type query: option 1 turns a type's name into its index,
/// 2 an index into its name (written with its NUL), 3 counts the types — those of
/// /proc/filesystems, in its order. EINVAL for another option, an unknown name or index.
pub fn sys_sysfs(ctx: &mut Ctx<'_>) -> SysResult {
    let types = &procfs::FILESYSTEMS;
    match ctx.int(0) {
        1 => {
            let name = ctx.read_cstr(ctx.ptr(1), 256)?;
            types.iter().position(|(n, _)| n.as_bytes() == name.as_slice()).ok_or(Errno::EINVAL)
        }
        2 => {
            let i = usize::try_from(ctx.arg(1)).map_err(|_| Errno::EINVAL)?;
            let (name, _) = types.get(i).ok_or(Errno::EINVAL)?;
            let mut b = name.as_bytes().to_vec();
            b.push(0);
            ctx.write_slice(ctx.ptr::<u8>(2).slice(b.len()), &b)?;
            Ok(0)
        }
        3 => Ok(types.len()),
        _ => Err(Errno::EINVAL),
    }
}
