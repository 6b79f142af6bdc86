//! Calls that ask about files and directories: stat(2) and its kin, statx(2), access(2) and
//! faccessat(2)/faccessat2(2), readlink(2), getdents64(2), getcwd(2), chdir(2)/fchdir(2).

use std::sync::Arc;

use zerocopy::IntoBytes;

use crate::abi::fs::Dirent64Head;
use crate::abi::{self, linux};
use crate::fs::mount::{self, MountRef};
use crate::fs::namei::{self, NamePath};
use crate::fs::perm;
use crate::fs::vfs::{VType, VnodeRef};
use crate::fs::vnops;
use crate::kern::cred::Cred;
use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};
use crate::sys::fs::{AT_FDCWD, IO_CHUNK, cred, file, lookup_at, lookup_cred};
use crate::sys::fsflags::{AccessFlags, StatFlags};
use crate::vm::uaccess::{UserPtr, UserSlice};

fn stat_out(ctx: &Ctx<'_>, v: &VnodeRef, buf: UserPtr<abi::fs::Stat>) -> SysResult {
    ctx.write(buf, &v.attr()?.to_stat())?;
    Ok(0)
}

pub fn sys_fstat(ctx: &mut Ctx<'_>) -> SysResult {
    let f = file(ctx, ctx.fd(0))?;
    stat_out(ctx, &f.vnode, ctx.ptr(1))
}

pub fn sys_stat(ctx: &mut Ctx<'_>) -> SysResult {
    let path = ctx.path(0)?;
    let np = lookup_at(ctx, AT_FDCWD, &path, true)?;
    stat_out(ctx, np.vnode(), ctx.ptr(1))
}

pub fn sys_lstat(ctx: &mut Ctx<'_>) -> SysResult {
    let path = ctx.path(0)?;
    let np = lookup_at(ctx, AT_FDCWD, &path, false)?;
    stat_out(ctx, np.vnode(), ctx.ptr(1))
}

/// The file newfstatat(2) or statx(2) names — the path of argument 1 from `dirfd`, or with
/// an empty path and AT_EMPTY_PATH `dirfd` itself — and the mount it is on (if known).
pub(super) fn stat_target(ctx: &Ctx<'_>, dirfd: i32, flags: StatFlags) -> Result<(VnodeRef, Option<MountRef>), Errno> {
    let path = ctx.read_cstr(ctx.ptr(1), namei::PATH_MAX)?;
    if path.is_empty() {
        if !flags.contains(StatFlags::EMPTY_PATH) {
            return Err(Errno::ENOENT);
        }
        if dirfd == AT_FDCWD {
            let cwd = ctx.p.user().fs.lock().cwd.clone();
            return Ok((cwd.vnode().clone(), Some(Arc::clone(cwd.mount()))));
        }
        let f = file(ctx, dirfd)?;
        return Ok((f.vnode.clone(), f.mount().cloned()));
    }
    let np = lookup_at(ctx, dirfd, &path, !flags.contains(StatFlags::SYMLINK_NOFOLLOW))?;
    Ok((np.vnode().clone(), Some(Arc::clone(np.mount()))))
}

pub fn sys_newfstatat(ctx: &mut Ctx<'_>) -> SysResult {
    let flags = ctx.flags::<StatFlags>(3)?;
    let (v, _) = stat_target(ctx, ctx.fd(0), flags)?;
    stat_out(ctx, &v, ctx.ptr(2))
}

/// statx(2): the attributes of stat and the mount's number, in struct statx. EINVAL for a
/// reserved mask bit, unknown flags, or both AT_STATX_FORCE_SYNC and AT_STATX_DONT_SYNC.
pub fn sys_statx(ctx: &mut Ctx<'_>) -> SysResult {
    let flags = ctx.flags::<StatFlags>(2)?;
    if ctx.uint(3) & linux::STATX__RESERVED != 0 || flags.contains(StatFlags::STATX_FORCE_SYNC | StatFlags::STATX_DONT_SYNC) {
        return Err(Errno::EINVAL);
    }
    let (v, mnt) = stat_target(ctx, ctx.fd(0), flags)?;
    let st = v.attr()?.to_statx(mnt.map(|m| m.id));
    ctx.write(ctx.ptr::<abi::fs::Statx>(4), &st)?;
    Ok(0)
}

pub fn sys_getdents64(ctx: &mut Ctx<'_>) -> SysResult {
    let f = ctx.file(0)?;
    let np = f.path.clone().ok_or(Errno::ENOTDIR)?;
    let v = f.vnode.clone();
    if v.vtype() != VType::Dir {
        return Err(Errno::ENOTDIR);
    }
    // Records go out as far as the buffer is writable, as Linux's filldir copies them one by
    // one: what fits before the first unwritable byte, EFAULT when not even one record does.
    let asked = ctx.size(2).min(IO_CHUNK);
    let cap = crate::sys::fs::writable_prefix(ctx, ctx.slice::<u8>(1, 2).prefix(asked))?.len;
    let attr = v.attr()?;
    let _ = np;
    // The file offset is the d_off of the last entry returned: `.` is 1, `..` 2, then each
    // entry's stable position (DirEntry::off) + 2, so that entries removed meanwhile do not
    // make the next call skip others.
    let mut entries = vec![(1u64, attr.ino, b".".to_vec(), 4u8), (2, attr.ino, b"..".to_vec(), 4u8)];
    for e in v.readdir()? {
        entries.push((e.off.saturating_add(2), e.ino, e.name, e.vtype.dirent_type()));
    }
    let from = *f.offset.lock();
    let mut pos = from;
    let mut out = Vec::new();
    for (d_off, ino, name, dtype) in entries.iter().filter(|e| e.0 > from) {
        // A record: the head, the name, a NUL, padding to 8 bytes.
        let reclen = (size_of::<Dirent64Head>() + name.len() + 1).div_ceil(8) * 8;
        if out.len() + reclen > cap {
            if out.is_empty() {
                return Err(if cap < asked { Errno::EFAULT } else { Errno::EINVAL });
            }
            break;
        }
        let start = out.len();
        let head = Dirent64Head {
            d_ino: *ino,
            d_off: i64::try_from(*d_off).unwrap_or(i64::MAX),
            d_reclen: u16::try_from(reclen).map_err(|_| Errno::EINVAL)?,
            d_type: *dtype,
        };
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(name);
        out.resize(start + reclen, 0);
        pos = *d_off;
    }
    ctx.write_slice(ctx.slice(1, 2), &out)?;
    *f.offset.lock() = pos;
    vnops::accessed(&f);
    Ok(out.len())
}

fn readlink_common(ctx: &Ctx<'_>, dirfd: i32, path: &[u8], buf: UserSlice<u8>) -> SysResult {
    if buf.len == 0 || i32::try_from(buf.len).is_err() {
        return Err(Errno::EINVAL);
    }
    let np = lookup_at(ctx, dirfd, path, false)?;
    if np.vnode().vtype() != VType::Lnk {
        return Err(Errno::EINVAL);
    }
    let target = np.vnode().readlink()?;
    let n = target.len().min(buf.len);
    ctx.write_slice(buf, &target[..n])?;
    Ok(n)
}

pub fn sys_readlink(ctx: &mut Ctx<'_>) -> SysResult {
    let path = ctx.path(0)?;
    readlink_common(ctx, AT_FDCWD, &path, ctx.slice(1, 2))
}

/// readlinkat(2); an empty path reads the link an O_PATH|O_NOFOLLOW descriptor `dirfd` is
/// open on (ENOENT for any other descriptor, as Linux).
pub fn sys_readlinkat(ctx: &mut Ctx<'_>) -> SysResult {
    let path = ctx.read_cstr(ctx.ptr(1), namei::PATH_MAX)?;
    if path.is_empty() {
        let buf = ctx.slice::<u8>(2, 3);
        if buf.len == 0 || i32::try_from(buf.len).is_err() {
            return Err(Errno::EINVAL);
        }
        let f = file(ctx, ctx.fd(0))?;
        if f.vnode.vtype() != VType::Lnk {
            return Err(Errno::ENOENT);
        }
        let target = f.vnode.readlink()?;
        let n = target.len().min(buf.len);
        ctx.write_slice(buf, &target[..n])?;
        return Ok(n);
    }
    readlink_common(ctx, ctx.fd(0), &path, ctx.slice(2, 3))
}

pub fn sys_getcwd(ctx: &mut Ctx<'_>) -> SysResult {
    let mut b = ctx.p.user().fs.lock().cwd.to_path_bytes();
    b.push(0);
    let buf = ctx.slice::<u8>(0, 1);
    if b.len() > buf.len {
        return Err(Errno::ERANGE);
    }
    ctx.write_slice(buf, &b)?;
    Ok(b.len())
}

fn set_cwd(ctx: &Ctx<'_>, np: NamePath) -> SysResult {
    let a = np.vnode().attr()?;
    if a.vtype() != VType::Dir {
        return Err(Errno::ENOTDIR);
    }
    perm::permission(&cred(ctx), &a, perm::MAY_EXEC)?;
    ctx.p.user().fs.lock().cwd = np;
    Ok(0)
}

pub fn sys_chdir(ctx: &mut Ctx<'_>) -> SysResult {
    let path = ctx.path(0)?;
    let np = lookup_at(ctx, AT_FDCWD, &path, true)?;
    set_cwd(ctx, np)
}

/// chroot(2): the directory `path` becomes the caller's root — absolute paths start there
/// and `..` stops there. ENOTDIR, ENOENT, ELOOP, ENAMETOOLONG from the lookup; EACCES
/// without search permission on it; EPERM without CAP_SYS_CHROOT. A working directory
/// under the new root is under it from now; one elsewhere stays where it is (as Linux).
pub fn sys_chroot(ctx: &mut Ctx<'_>) -> SysResult {
    let path = ctx.path(0)?;
    let np = lookup_at(ctx, AT_FDCWD, &path, true)?;
    let a = np.vnode().attr()?;
    if a.vtype() != VType::Dir {
        return Err(Errno::ENOTDIR);
    }
    let c = cred(ctx);
    perm::permission(&c, &a, perm::MAY_EXEC)?;
    if !c.capable(crate::kern::cred::CAP_SYS_CHROOT) {
        return Err(Errno::EPERM);
    }
    let root = np.as_root();
    let mut fs = ctx.p.user().fs.lock();
    fs.cwd.rebase(&root);
    fs.root = root;
    Ok(0)
}

pub fn sys_fchdir(ctx: &mut Ctx<'_>) -> SysResult {
    let f = ctx.file(0)?;
    set_cwd(ctx, f.path.clone().ok_or(Errno::ENOTDIR)?)
}

/// access(2), faccessat(2), faccessat2(2): with the real ids (and root's capabilities only
/// for a real uid 0), or the effective ones with AT_EACCESS; the lookup too. Write access to
/// a file on a read-only file system is EROFS.
fn access_common(ctx: &Ctx<'_>, dirfd: i32, path: &[u8], mode: u32, flags: AccessFlags) -> SysResult {
    if mode & !7 != 0 {
        return Err(Errno::EINVAL);
    }
    let me = cred(ctx);
    let cred = if flags.contains(AccessFlags::EACCESS) { Cred::clone(&me) } else { me.for_access() };
    let (v, mnt) = if path.is_empty() {
        if dirfd == AT_FDCWD {
            let cwd = ctx.p.user().fs.lock().cwd.clone();
            (cwd.vnode().clone(), Some(Arc::clone(cwd.mount())))
        } else {
            let f = file(ctx, dirfd)?;
            (f.vnode.clone(), f.mount().cloned())
        }
    } else {
        let np = lookup_cred(ctx, &cred, dirfd, path, !flags.contains(AccessFlags::SYMLINK_NOFOLLOW))?;
        (np.vnode().clone(), Some(Arc::clone(np.mount())))
    };
    if mode == 0 {
        return Ok(0);
    }
    let a = v.attr()?;
    // Execute access to a regular file on a noexec mount, before the mode bits (do_faccessat).
    if mode & perm::MAY_EXEC != 0
        && a.vtype() == VType::Reg
        && mnt.as_ref().is_some_and(|m| m.flags().contains(mount::MountFlags::NOEXEC))
    {
        return Err(Errno::EACCES);
    }
    // Write access to a file (not a device, FIFO or socket) on a read-only mount.
    if mode & perm::MAY_WRITE != 0
        && matches!(a.vtype(), VType::Reg | VType::Dir | VType::Lnk)
        && mnt.as_ref().is_some_and(|m| m.readonly())
    {
        return Err(Errno::EROFS);
    }
    perm::permission(&cred, &a, mode)?;
    Ok(0)
}

pub fn sys_access(ctx: &mut Ctx<'_>) -> SysResult {
    let path = ctx.path(0)?;
    access_common(ctx, AT_FDCWD, &path, ctx.uint(1), AccessFlags::empty())
}

pub fn sys_faccessat(ctx: &mut Ctx<'_>) -> SysResult {
    let path = ctx.path(1)?;
    access_common(ctx, ctx.fd(0), &path, ctx.uint(2), AccessFlags::empty())
}

pub fn sys_faccessat2(ctx: &mut Ctx<'_>) -> SysResult {
    let flags = ctx.flags::<AccessFlags>(3)?;
    let path = ctx.read_cstr(ctx.ptr(1), namei::PATH_MAX)?;
    if path.is_empty() && !flags.contains(AccessFlags::EMPTY_PATH) {
        return Err(Errno::ENOENT);
    }
    access_common(ctx, ctx.fd(0), &path, ctx.uint(2), flags)
}
