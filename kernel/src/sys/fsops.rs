//! Calls that change the file namespace or attributes: mkdir, unlink, rmdir, rename,
//! symlink, link, chmod, chown, utimensat, truncate, umask, statfs, sync — each in its `*at`
//! form and the older forms musl still calls.

use crate::fs::file::{self, File, O_CLOEXEC, O_CREAT, O_EXCL, O_TRUNC};
use crate::fs::namei::{self, NamePath};
use crate::fs::vfs::{SetAttr, Timespec, VType};
use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};
use crate::sys::fs::{AT_FDCWD, lookup_at, start_dir};

const AT_SYMLINK_NOFOLLOW: u32 = 0x100;
const AT_REMOVEDIR: u32 = 0x200;
const AT_SYMLINK_FOLLOW: u32 = 0x400;
const AT_EMPTY_PATH: u32 = 0x1000;
const UTIME_NOW: i64 = (1 << 30) - 1;
const UTIME_OMIT: i64 = (1 << 30) - 2;

/// The directory holding the last component of `path`, and that component's name.
pub fn lookup_parent(ctx: &Ctx<'_>, dirfd: i32, path: &[u8]) -> Result<(NamePath, Vec<u8>), Errno> {
    let trimmed = {
        let mut end = path.len();
        while end > 1 && path[end - 1] == b'/' {
            end -= 1;
        }
        &path[..end]
    };
    let (dir, last): (&[u8], &[u8]) = match trimmed.iter().rposition(|&b| b == b'/') {
        Some(0) => (b"/", &trimmed[1..]),
        Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
        None => (b".", trimmed),
    };
    if last.is_empty() {
        return Err(Errno::EBUSY);
    }
    let start = start_dir(ctx, dirfd, path)?;
    let parent = namei::namei(&start, dir, true)?;
    if parent.vnode().vtype() != VType::Dir {
        return Err(Errno::ENOTDIR);
    }
    let name = last.to_vec();
    if name.len() > crate::fs::vfs::NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok((parent, name))
}

fn umask(ctx: &Ctx<'_>) -> u32 {
    ctx.p.user().fs.lock().umask
}

fn ids(ctx: &Ctx<'_>) -> (u32, u32) {
    let c = ctx.p.user().cred.lock().clone();
    (c.euid, c.egid)
}

/// openat(2) with O_CREAT: find or make the file. Returns the path of the file.
pub fn open_create(ctx: &Ctx<'_>, dirfd: i32, path: &[u8], flags: u32, mode: u32) -> Result<NamePath, Errno> {
    let (parent, name) = lookup_parent(ctx, dirfd, path)?;
    match namei::namei(&parent, &name, flags & file::O_NOFOLLOW == 0) {
        Ok(np) => {
            if flags & O_EXCL != 0 {
                return Err(Errno::EEXIST);
            }
            Ok(np)
        }
        Err(Errno::ENOENT) => {
            let (uid, gid) = ids(ctx);
            let v = parent.vnode().create(&name, mode & !umask(ctx) & 0o7777, uid, gid)?;
            let _ = v;
            namei::namei(&parent, &name, false)
        }
        Err(e) => Err(e),
    }
}

pub fn sys_open(ctx: &mut Ctx<'_>) -> SysResult {
    // open(path, flags, mode) is openat(AT_FDCWD, path, flags, mode).
    let r = *ctx.regs;
    ctx.regs.gregs[platform::stub::reg::R10] = r.arg(2);
    ctx.regs.gregs[platform::stub::reg::RDX] = r.arg(1);
    ctx.regs.gregs[platform::stub::reg::RSI] = r.arg(0);
    ctx.regs.gregs[platform::stub::reg::RDI] = AT_FDCWD as u32 as u64;
    let res = crate::sys::fs::sys_openat(ctx);
    *ctx.regs = r;
    res
}

pub fn sys_creat(ctx: &mut Ctx<'_>) -> SysResult {
    let path = ctx.path(0)?;
    let flags = O_CREAT | O_TRUNC | file::O_WRONLY;
    let np = open_create(ctx, AT_FDCWD, &path, flags, ctx.uint(1))?;
    np.vnode().truncate(0)?;
    let f = File::new(np.vnode().clone(), Some(np), flags);
    ctx.p.user().files().lock().alloc(f, false, 0).map(|fd| fd as usize)
}

fn mkdir_at(ctx: &Ctx<'_>, dirfd: i32, path: &[u8], mode: u32) -> SysResult {
    let (parent, name) = lookup_parent(ctx, dirfd, path).map_err(|e| if e == Errno::EBUSY { Errno::EEXIST } else { e })?;
    if name == b"." || name == b".." {
        return Err(Errno::EEXIST);
    }
    if parent.vnode().lookup(&name).is_ok() {
        return Err(Errno::EEXIST);
    }
    let (uid, gid) = ids(ctx);
    parent.vnode().mkdir(&name, mode & !umask(ctx) & 0o7777, uid, gid)?;
    Ok(0)
}

pub fn sys_mkdirat(ctx: &mut Ctx<'_>) -> SysResult {
    let path = ctx.path(1)?;
    mkdir_at(ctx, ctx.int(0), &path, ctx.uint(2))
}

pub fn sys_mkdir(ctx: &mut Ctx<'_>) -> SysResult {
    let path = ctx.path(0)?;
    mkdir_at(ctx, AT_FDCWD, &path, ctx.uint(1))
}

fn unlink_at(ctx: &Ctx<'_>, dirfd: i32, path: &[u8], flags: u32) -> SysResult {
    if flags & !AT_REMOVEDIR != 0 {
        return Err(Errno::EINVAL);
    }
    let (parent, name) = lookup_parent(ctx, dirfd, path)?;
    if flags & AT_REMOVEDIR != 0 {
        match &name[..] {
            b"." => return Err(Errno::EINVAL),
            b".." => return Err(Errno::ENOTEMPTY),
            _ => {}
        }
        let v = parent.vnode().lookup(&name)?;
        if namei::mounts().iter().any(|m| m.on == v.attr().ok().map(|a| (a.dev, a.ino))) {
            return Err(Errno::EBUSY);
        }
        parent.vnode().rmdir(&name)?;
    } else {
        if path.last() == Some(&b'/') {
            let v = parent.vnode().lookup(&name)?;
            return Err(if v.vtype() == VType::Dir { Errno::EISDIR } else { Errno::ENOTDIR });
        }
        parent.vnode().unlink(&name)?;
    }
    Ok(0)
}

pub fn sys_unlinkat(ctx: &mut Ctx<'_>) -> SysResult {
    let path = ctx.path(1)?;
    unlink_at(ctx, ctx.int(0), &path, ctx.uint(2))
}

pub fn sys_unlink(ctx: &mut Ctx<'_>) -> SysResult {
    let path = ctx.path(0)?;
    unlink_at(ctx, AT_FDCWD, &path, 0)
}

pub fn sys_rmdir(ctx: &mut Ctx<'_>) -> SysResult {
    let path = ctx.path(0)?;
    unlink_at(ctx, AT_FDCWD, &path, AT_REMOVEDIR)
}

fn rename_at(ctx: &Ctx<'_>, olddir: i32, old: &[u8], newdir: i32, new: &[u8], flags: u32) -> SysResult {
    let (op, on) = lookup_parent(ctx, olddir, old)?;
    let (np, nn) = lookup_parent(ctx, newdir, new)?;
    for n in [&on, &nn] {
        if n == b"." || n == b".." {
            return Err(Errno::EBUSY);
        }
    }
    let (a, b) = (op.vnode().attr()?, np.vnode().attr()?);
    if a.dev != b.dev {
        return Err(Errno::EXDEV);
    }
    op.vnode().rename(&on, np.vnode(), &nn, flags)?;
    Ok(0)
}

pub fn sys_renameat2(ctx: &mut Ctx<'_>) -> SysResult {
    let (old, new) = (ctx.path(1)?, ctx.path(3)?);
    rename_at(ctx, ctx.int(0), &old, ctx.int(2), &new, ctx.uint(4))
}

pub fn sys_renameat(ctx: &mut Ctx<'_>) -> SysResult {
    let (old, new) = (ctx.path(1)?, ctx.path(3)?);
    rename_at(ctx, ctx.int(0), &old, ctx.int(2), &new, 0)
}

pub fn sys_rename(ctx: &mut Ctx<'_>) -> SysResult {
    let (old, new) = (ctx.path(0)?, ctx.path(1)?);
    rename_at(ctx, AT_FDCWD, &old, AT_FDCWD, &new, 0)
}

fn symlink_at(ctx: &Ctx<'_>, target: &[u8], dirfd: i32, path: &[u8]) -> SysResult {
    let (parent, name) = lookup_parent(ctx, dirfd, path).map_err(|e| if e == Errno::EBUSY { Errno::EEXIST } else { e })?;
    if parent.vnode().lookup(&name).is_ok() {
        return Err(Errno::EEXIST);
    }
    let (uid, gid) = ids(ctx);
    parent.vnode().symlink(&name, target, uid, gid)?;
    Ok(0)
}

pub fn sys_symlinkat(ctx: &mut Ctx<'_>) -> SysResult {
    let (target, path) = (ctx.path(0)?, ctx.path(2)?);
    symlink_at(ctx, &target, ctx.int(1), &path)
}

pub fn sys_symlink(ctx: &mut Ctx<'_>) -> SysResult {
    let (target, path) = (ctx.path(0)?, ctx.path(1)?);
    symlink_at(ctx, &target, AT_FDCWD, &path)
}

fn link_at(ctx: &Ctx<'_>, olddir: i32, old: &[u8], newdir: i32, new: &[u8], flags: u32) -> SysResult {
    if flags & !(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let src = lookup_at(ctx, olddir, old, flags & AT_SYMLINK_FOLLOW != 0)?;
    if src.vnode().vtype() == VType::Dir {
        return Err(Errno::EPERM);
    }
    let (parent, name) = lookup_parent(ctx, newdir, new)?;
    if parent.vnode().lookup(&name).is_ok() {
        return Err(Errno::EEXIST);
    }
    parent.vnode().link(&name, src.vnode())?;
    Ok(0)
}

pub fn sys_linkat(ctx: &mut Ctx<'_>) -> SysResult {
    let (old, new) = (ctx.path(1)?, ctx.path(3)?);
    link_at(ctx, ctx.int(0), &old, ctx.int(2), &new, ctx.uint(4))
}

pub fn sys_link(ctx: &mut Ctx<'_>) -> SysResult {
    let (old, new) = (ctx.path(0)?, ctx.path(1)?);
    link_at(ctx, AT_FDCWD, &old, AT_FDCWD, &new, 0)
}

/// The file a path or descriptor call names (an empty path with AT_EMPTY_PATH: `dirfd`).
fn target(ctx: &Ctx<'_>, dirfd: i32, path_arg: usize, flags: u32) -> Result<crate::fs::vfs::VnodeRef, Errno> {
    let path = ctx.copyin_str(ctx.arg(path_arg), namei::PATH_MAX)?;
    if path.is_empty() {
        if flags & AT_EMPTY_PATH == 0 {
            return Err(Errno::ENOENT);
        }
        return Ok(ctx.p.user().files().lock().get(dirfd)?.vnode.clone());
    }
    Ok(lookup_at(ctx, dirfd, &path, flags & AT_SYMLINK_NOFOLLOW == 0)?.vnode().clone())
}

fn chmod(v: &crate::fs::vfs::VnodeRef, mode: u32) -> SysResult {
    v.setattr(&SetAttr { mode: Some(mode & 0o7777), ..Default::default() })?;
    Ok(0)
}

pub fn sys_fchmodat(ctx: &mut Ctx<'_>) -> SysResult {
    let v = target(ctx, ctx.int(0), 1, 0)?;
    chmod(&v, ctx.uint(2))
}

pub fn sys_chmod(ctx: &mut Ctx<'_>) -> SysResult {
    let v = target(ctx, AT_FDCWD, 0, 0)?;
    chmod(&v, ctx.uint(1))
}

pub fn sys_fchmod(ctx: &mut Ctx<'_>) -> SysResult {
    let v = ctx.p.user().files().lock().get(ctx.int(0))?.vnode.clone();
    chmod(&v, ctx.uint(1))
}

fn chown(ctx: &Ctx<'_>, v: &crate::fs::vfs::VnodeRef, uid: u32, gid: u32) -> SysResult {
    if ctx.p.user().cred.lock().euid != 0 {
        return Err(Errno::EPERM);
    }
    let some = |x: u32| (x != u32::MAX).then_some(x);
    v.setattr(&SetAttr { uid: some(uid), gid: some(gid), ..Default::default() })?;
    Ok(0)
}

pub fn sys_fchownat(ctx: &mut Ctx<'_>) -> SysResult {
    let v = target(ctx, ctx.int(0), 1, ctx.uint(4))?;
    chown(ctx, &v, ctx.uint(2), ctx.uint(3))
}

pub fn sys_chown(ctx: &mut Ctx<'_>) -> SysResult {
    let v = target(ctx, AT_FDCWD, 0, 0)?;
    chown(ctx, &v, ctx.uint(1), ctx.uint(2))
}

pub fn sys_lchown(ctx: &mut Ctx<'_>) -> SysResult {
    let v = target(ctx, AT_FDCWD, 0, AT_SYMLINK_NOFOLLOW)?;
    chown(ctx, &v, ctx.uint(1), ctx.uint(2))
}

pub fn sys_fchown(ctx: &mut Ctx<'_>) -> SysResult {
    let v = ctx.p.user().files().lock().get(ctx.int(0))?.vnode.clone();
    chown(ctx, &v, ctx.uint(1), ctx.uint(2))
}

pub fn sys_utimensat(ctx: &mut Ctx<'_>) -> SysResult {
    let (dirfd, times, flags) = (ctx.int(0), ctx.arg(2), ctx.uint(3));
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let v = if ctx.arg(1) == 0 {
        ctx.p.user().files().lock().get(dirfd)?.vnode.clone()
    } else {
        target(ctx, dirfd, 1, flags)?
    };
    let now = {
        let ns = platform::time::realtime_ns();
        Timespec { sec: (ns / 1_000_000_000) as i64, nsec: (ns % 1_000_000_000) as i64 }
    };
    let (mut atime, mut mtime) = (Some(now), Some(now));
    if times != 0 {
        let mut b = [0u8; 32];
        ctx.copyin(times, &mut b)?;
        let get = |i: usize| i64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
        let pick = |sec: i64, nsec: i64| -> Result<Option<Timespec>, Errno> {
            match nsec {
                UTIME_NOW => Ok(Some(now)),
                UTIME_OMIT => Ok(None),
                n if (0..1_000_000_000).contains(&n) => Ok(Some(Timespec { sec, nsec: n })),
                _ => Err(Errno::EINVAL),
            }
        };
        atime = pick(get(0), get(1))?;
        mtime = pick(get(2), get(3))?;
    }
    if atime.is_none() && mtime.is_none() {
        return Ok(0);
    }
    v.setattr(&SetAttr { atime, mtime, ..Default::default() })?;
    Ok(0)
}

fn truncate_vnode(v: &crate::fs::vfs::VnodeRef, len: u64) -> SysResult {
    match v.vtype() {
        VType::Dir => Err(Errno::EISDIR),
        VType::Reg => {
            v.truncate(len)?;
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}

pub fn sys_truncate(ctx: &mut Ctx<'_>) -> SysResult {
    let len = i64::try_from(ctx.arg(1)).map_err(|_| Errno::EINVAL)?;
    let v = target(ctx, AT_FDCWD, 0, 0)?;
    truncate_vnode(&v, len as u64)
}

pub fn sys_ftruncate(ctx: &mut Ctx<'_>) -> SysResult {
    let len = i64::try_from(ctx.arg(1)).map_err(|_| Errno::EINVAL)?;
    let f = ctx.p.user().files().lock().get(ctx.int(0))?;
    if !f.writable() {
        return Err(Errno::EINVAL);
    }
    truncate_vnode(&f.vnode, len as u64)
}

pub fn sys_umask(ctx: &mut Ctx<'_>) -> SysResult {
    let mut fs = ctx.p.user().fs.lock();
    let old = fs.umask;
    fs.umask = ctx.uint(0) & 0o777;
    Ok(old as usize)
}

fn statfs_out(ctx: &Ctx<'_>, v: &crate::fs::vfs::VnodeRef, addr: u64) -> SysResult {
    let s = v.statfs()?;
    let a = v.attr()?;
    let mut b = [0u8; 120];
    let words = [s.magic, s.bsize, s.blocks, s.bfree, s.bfree, s.files, s.ffree];
    for (i, w) in words.iter().enumerate() {
        b[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
    }
    b[56..60].copy_from_slice(&(a.dev as u32).to_le_bytes());
    b[64..72].copy_from_slice(&255u64.to_le_bytes());
    b[72..80].copy_from_slice(&s.bsize.to_le_bytes());
    ctx.copyout(addr, &b)?;
    Ok(0)
}

pub fn sys_statfs(ctx: &mut Ctx<'_>) -> SysResult {
    let v = target(ctx, AT_FDCWD, 0, 0)?;
    statfs_out(ctx, &v, ctx.arg(1))
}

pub fn sys_fstatfs(ctx: &mut Ctx<'_>) -> SysResult {
    let v = ctx.p.user().files().lock().get(ctx.int(0))?.vnode.clone();
    statfs_out(ctx, &v, ctx.arg(1))
}

/// fsync(2), fdatasync(2), syncfs(2): write back the file system the descriptor is on (an
/// ext2 disk: its dirty buffers, inodes and metadata; EIO if the disk fails). hostfs is
/// read-only and tmpfs lives in memory: nothing to do for them.
pub fn sys_fsync(ctx: &mut Ctx<'_>) -> SysResult {
    let v = ctx.p.user().files().lock().get(ctx.int(0))?.vnode.clone();
    if v.fs_type() == "ext2"
        && let Some(r) = crate::fs::ext2::sync_dev(v.attr()?.dev)
    {
        r.map_err(|_| Errno::EIO)?;
    }
    Ok(0)
}

pub fn sys_sync(_ctx: &mut Ctx<'_>) -> SysResult {
    crate::kern::syncer::sync_pass();
    Ok(0)
}

/// Used by openat: O_CLOEXEC passes through.
pub const CLOEXEC: u32 = O_CLOEXEC;
