//! File and descriptor system calls (read(2), open(2), stat(2), getdents64(2), …).

use std::sync::Arc;

use crate::fs::file::{self, File, O_ACCMODE, O_CLOEXEC, O_CREAT, O_DIRECTORY, O_NOFOLLOW, O_PATH, O_RDONLY, O_TRUNC};
use crate::fs::mount;
use crate::fs::namei::{self, NamePath};
use crate::fs::perm;
use crate::fs::vfs::{VType, VnodeRef};
use crate::fs::vnops;
use crate::kern::cred::Cred;
use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};
use crate::vm::space::PROT_WRITE;

/// openat's "relative to the working directory".
pub const AT_FDCWD: i32 = -100;
const AT_SYMLINK_NOFOLLOW: u32 = 0x100;
const AT_EMPTY_PATH: u32 = 0x1000;
const AT_EACCESS: u32 = 0x200;

/// Bytes moved per read or write call at most (a short count beyond; callers loop).
const IO_CHUNK: usize = 1 << 20;

fn file(ctx: &Ctx<'_>, fd: i32) -> Result<Arc<File>, Errno> {
    ctx.p.user().files().lock().get(fd)
}

/// Where a path given with a directory descriptor starts.
pub fn start_dir(ctx: &Ctx<'_>, dirfd: i32, path: &[u8]) -> Result<NamePath, Errno> {
    if path.first() == Some(&b'/') {
        return Ok(NamePath::root());
    }
    if dirfd == AT_FDCWD {
        return Ok(ctx.p.user().fs.lock().cwd.clone());
    }
    let f = file(ctx, dirfd)?;
    let p = f.path.clone().ok_or(Errno::ENOTDIR)?;
    if p.vnode().vtype() != VType::Dir {
        return Err(Errno::ENOTDIR);
    }
    Ok(p)
}

/// The caller's credentials (what permission checks use).
pub fn cred(ctx: &Ctx<'_>) -> Arc<Cred> {
    ctx.p.user().cred()
}

/// Resolve a path argument relative to `dirfd`, with the caller's search permission.
pub fn lookup_at(ctx: &Ctx<'_>, dirfd: i32, path: &[u8], follow: bool) -> Result<NamePath, Errno> {
    lookup_cred(ctx, &cred(ctx), dirfd, path, follow)
}

/// As [`lookup_at`] with the permissions of `cred` (access(2)'s real ids).
fn lookup_cred(ctx: &Ctx<'_>, cred: &Cred, dirfd: i32, path: &[u8], follow: bool) -> Result<NamePath, Errno> {
    let start = start_dir(ctx, dirfd, path)?;
    namei::lookup(cred, &start, path, follow)
}

/// Read from a file at `off` (or its offset), looping over short reads of regular files.
fn read_file(f: &File, off: Option<u64>, len: usize) -> Result<Vec<u8>, Errno> {
    if !f.readable() {
        return Err(Errno::EBADF);
    }
    let v = &f.vnode;
    if v.vtype() == VType::Dir {
        return Err(Errno::EISDIR);
    }
    let len = len.min(IO_CHUNK);
    let seekable = v.seekable();
    let start = match off {
        Some(o) => o,
        None if seekable => *f.offset.lock(),
        None => 0,
    };
    let nonblock = f.flags() & file::O_NONBLOCK != 0;
    let mut buf = vec![0u8; len];
    let mut got = 0;
    while got < len {
        let n = v.read_nb(start + got as u64, &mut buf[got..], nonblock)?;
        got += n;
        if n == 0 || !seekable {
            break;
        }
    }
    buf.truncate(got);
    if off.is_none() && seekable {
        *f.offset.lock() = start + got as u64;
    }
    vnops::accessed(f);
    Ok(buf)
}

fn write_file(ctx: &Ctx<'_>, f: &File, off: Option<u64>, data: &[u8]) -> SysResult {
    if !f.writable() {
        return Err(Errno::EBADF);
    }
    vnops::remove_privs(&cred(ctx), &f.vnode)?;
    let v = &f.vnode;
    let seekable = v.seekable();
    let start = match off {
        Some(o) => o,
        None if seekable && f.flags() & file::O_APPEND != 0 => v.attr()?.size,
        None if seekable => *f.offset.lock(),
        None => 0,
    };
    let n = v.write_nb(start, data, f.flags() & file::O_NONBLOCK != 0)?;
    if off.is_none() && seekable {
        *f.offset.lock() = start + n as u64;
    }
    Ok(n)
}

/// The part of the guest buffers `iov` a transfer can use, in order. Linux copies as it goes
/// and stops at the first byte it cannot reach, so a regular file's read or write moves what
/// precedes the first unreachable page (`prot`: PROT_WRITE for a read's buffers, 0 — readable
/// — for a write's) and is EFAULT only when that is nothing. A pipe or terminal (not
/// seekable) takes its buffers whole or answers EFAULT: its data must not be consumed and then
/// lost (pipe_read and pipe_write answer EFAULT for a copy that stops short, too).
fn reachable(ctx: &Ctx<'_>, f: &File, iov: &[(u64, usize)], prot: u32) -> Result<Vec<(u64, usize)>, Errno> {
    let whole = !f.vnode.seekable();
    let vm = ctx.p.user().vm();
    let g = vm.lock();
    let mut out = Vec::with_capacity(iov.len());
    let mut budget = IO_CHUNK;
    let mut requested = false;
    for &(base, len) in iov {
        let len = len.min(budget);
        if len == 0 {
            continue;
        }
        requested = true;
        let n = usize::try_from(g.accessible_prefix(base, len as u64, prot)).unwrap_or(0).min(len);
        if n < len && whole {
            return Err(Errno::EFAULT);
        }
        if n > 0 {
            out.push((base, n));
            budget -= n;
        }
        if n < len || budget == 0 {
            break;
        }
    }
    if out.is_empty() && requested {
        return Err(Errno::EFAULT);
    }
    Ok(out)
}

/// The one buffer of read(2)/write(2) as [`reachable`] trims it: its address and length.
fn reachable_one(ctx: &Ctx<'_>, f: &File, addr: u64, len: usize, prot: u32) -> Result<(u64, usize), Errno> {
    Ok(reachable(ctx, f, &[(addr, len)], prot)?.first().copied().unwrap_or((addr, 0)))
}

/// Copy in the bytes of the (reachable) buffers `iov`, in order.
fn gather(ctx: &Ctx<'_>, iov: &[(u64, usize)]) -> Result<Vec<u8>, Errno> {
    let mut data = vec![0u8; iov.iter().map(|(_, l)| *l).sum()];
    let mut at = 0;
    for &(base, len) in iov {
        ctx.copyin(base, &mut data[at..at + len])?;
        at += len;
    }
    Ok(data)
}

pub fn sys_read(ctx: &mut Ctx<'_>) -> SysResult {
    let f = file(ctx, ctx.int(0))?;
    let (addr, len) = reachable_one(ctx, &f, ctx.arg(1), ctx.size(2), PROT_WRITE)?;
    let data = read_file(&f, None, len)?;
    ctx.copyout(addr, &data)?;
    Ok(data.len())
}

pub fn sys_pread64(ctx: &mut Ctx<'_>) -> SysResult {
    let f = file(ctx, ctx.int(0))?;
    if !f.vnode.seekable() {
        return Err(Errno::ESPIPE);
    }
    let off = i64::try_from(ctx.arg(3)).map_err(|_| Errno::EINVAL)?;
    let (addr, len) = reachable_one(ctx, &f, ctx.arg(1), ctx.size(2), PROT_WRITE)?;
    let data = read_file(&f, Some(off as u64), len)?;
    ctx.copyout(addr, &data)?;
    Ok(data.len())
}

pub fn sys_write(ctx: &mut Ctx<'_>) -> SysResult {
    let f = file(ctx, ctx.int(0))?;
    let iov = reachable(ctx, &f, &[(ctx.arg(1), ctx.size(2))], 0)?;
    let data = gather(ctx, &iov)?;
    sigpipe(ctx, write_file(ctx, &f, None, &data))
}

/// A write to a pipe without readers also raises SIGPIPE in the writing thread.
fn sigpipe(ctx: &Ctx<'_>, r: SysResult) -> SysResult {
    if r == Err(Errno::EPIPE) {
        let uid = ctx.p.user().cred.lock().uid;
        crate::kern::signal::send_to_thread(ctx.td, crate::kern::signal::SigInfo::user(crate::kern::signal::SIGPIPE, 0, ctx.p.pid, uid));
    }
    r
}

pub fn sys_pwrite64(ctx: &mut Ctx<'_>) -> SysResult {
    let f = file(ctx, ctx.int(0))?;
    if !f.vnode.seekable() {
        return Err(Errno::ESPIPE);
    }
    let off = i64::try_from(ctx.arg(3)).map_err(|_| Errno::EINVAL)?;
    let iov = reachable(ctx, &f, &[(ctx.arg(1), ctx.size(2))], 0)?;
    let data = gather(ctx, &iov)?;
    write_file(ctx, &f, Some(off as u64), &data)
}

/// An iovec array: (base, len) pairs.
fn iovecs(ctx: &Ctx<'_>, addr: u64, count: usize) -> Result<Vec<(u64, usize)>, Errno> {
    if count > 1024 {
        return Err(Errno::EINVAL);
    }
    let mut raw = vec![0u8; count * 16];
    ctx.copyin(addr, &mut raw)?;
    let mut total: usize = 0;
    let mut out = Vec::with_capacity(count);
    for c in raw.chunks_exact(16) {
        let base = u64::from_le_bytes(c[..8].try_into().map_err(|_| Errno::EFAULT)?);
        let len = u64::from_le_bytes(c[8..].try_into().map_err(|_| Errno::EFAULT)?);
        let len = usize::try_from(len).map_err(|_| Errno::EINVAL)?;
        total = total.checked_add(len).filter(|t| *t <= isize::MAX as usize).ok_or(Errno::EINVAL)?;
        out.push((base, len));
    }
    Ok(out)
}

pub fn sys_writev(ctx: &mut Ctx<'_>) -> SysResult {
    let f = file(ctx, ctx.int(0))?;
    let iov = iovecs(ctx, ctx.arg(1), ctx.size(2))?;
    let iov = reachable(ctx, &f, &iov, 0)?;
    let data = gather(ctx, &iov)?;
    sigpipe(ctx, write_file(ctx, &f, None, &data))
}

pub fn sys_readv(ctx: &mut Ctx<'_>) -> SysResult {
    let f = file(ctx, ctx.int(0))?;
    let iov = iovecs(ctx, ctx.arg(1), ctx.size(2))?;
    let iov = reachable(ctx, &f, &iov, PROT_WRITE)?;
    let total: usize = iov.iter().map(|(_, l)| *l).sum();
    let data = read_file(&f, None, total)?;
    let mut done = 0;
    for (base, len) in iov {
        if done >= data.len() {
            break;
        }
        let n = len.min(data.len() - done);
        ctx.copyout(base, &data[done..done + n])?;
        done += n;
    }
    Ok(data.len())
}

pub fn sys_close(ctx: &mut Ctx<'_>) -> SysResult {
    ctx.p.user().files().lock().close(ctx.int(0))?;
    Ok(0)
}

pub fn sys_openat(ctx: &mut Ctx<'_>) -> SysResult {
    let dirfd = ctx.int(0);
    let path = ctx.path(1)?;
    let flags = ctx.uint(2);
    let follow = flags & O_NOFOLLOW == 0;
    let (np, created) = if flags & O_CREAT != 0 {
        if flags & O_DIRECTORY != 0 {
            return Err(Errno::EINVAL);
        }
        crate::sys::fsops::open_create(ctx, dirfd, &path, flags, ctx.uint(3))?
    } else {
        (lookup_at(ctx, dirfd, &path, follow)?, false)
    };
    let v = np.vnode().clone();
    let vt = v.vtype();
    if vt == VType::Lnk && !follow {
        return Err(Errno::ELOOP);
    }
    if flags & O_DIRECTORY != 0 && vt != VType::Dir {
        return Err(Errno::ENOTDIR);
    }
    if vt == VType::Dir && flags & O_ACCMODE != O_RDONLY {
        return Err(Errno::EISDIR);
    }
    if flags & O_PATH == 0 {
        mount::may_open_device(&np)?;
    }
    let cred = cred(ctx);
    if flags & O_PATH == 0 && !created {
        perm::may_open(&cred, &v.attr()?, flags, np.mount().readonly())?;
        v.may_open()?; // procfs: another user's /proc/PID/maps
    }
    let v = if v.is_tty() && flags & O_PATH == 0 { crate::kern::tty::ctty::on_open(ctx.p, v, flags)? } else { v };
    // A pipe reached through /proc/PID/fd: a new end of it, as the access mode asks.
    let acc = flags & O_ACCMODE;
    let reopened = if vt == VType::Fifo && flags & O_PATH == 0 { v.open_fifo(acc != file::O_WRONLY, acc != O_RDONLY) } else { None };
    let f = match reopened {
        Some(end) => File::new(end, None, flags), // named like the original: pipe:[N]
        None => File::open(v, np, flags)?,        // EROFS: written on a read-only mount
    };
    if flags & O_TRUNC != 0 && flags & O_PATH == 0 && vt == VType::Reg && acc != O_RDONLY && !created {
        vnops::truncate(&cred, f.as_ref().into(), 0, false)?;
    }
    ctx.p.user().files().lock().alloc(f, flags & O_CLOEXEC != 0, 0).map(|fd| fd as usize)
}

fn stat_out(ctx: &Ctx<'_>, v: &VnodeRef, addr: u64) -> SysResult {
    let st = v.attr()?.to_stat();
    ctx.copyout(addr, &st)?;
    Ok(0)
}

pub fn sys_fstat(ctx: &mut Ctx<'_>) -> SysResult {
    let f = file(ctx, ctx.int(0))?;
    stat_out(ctx, &f.vnode, ctx.arg(1))
}

pub fn sys_stat(ctx: &mut Ctx<'_>) -> SysResult {
    let path = ctx.path(0)?;
    let np = lookup_at(ctx, AT_FDCWD, &path, true)?;
    stat_out(ctx, np.vnode(), ctx.arg(1))
}

pub fn sys_lstat(ctx: &mut Ctx<'_>) -> SysResult {
    let path = ctx.path(0)?;
    let np = lookup_at(ctx, AT_FDCWD, &path, false)?;
    stat_out(ctx, np.vnode(), ctx.arg(1))
}

pub fn sys_newfstatat(ctx: &mut Ctx<'_>) -> SysResult {
    let dirfd = ctx.int(0);
    let flags = ctx.uint(3);
    let path = ctx.copyin_str(ctx.arg(1), namei::PATH_MAX)?;
    if path.is_empty() {
        if flags & AT_EMPTY_PATH == 0 {
            return Err(Errno::ENOENT);
        }
        if dirfd == AT_FDCWD {
            let cwd = ctx.p.user().fs.lock().cwd.clone();
            return stat_out(ctx, cwd.vnode(), ctx.arg(2));
        }
        let f = file(ctx, dirfd)?;
        return stat_out(ctx, &f.vnode, ctx.arg(2));
    }
    let np = lookup_at(ctx, dirfd, &path, flags & AT_SYMLINK_NOFOLLOW == 0)?;
    stat_out(ctx, np.vnode(), ctx.arg(2))
}

pub fn sys_lseek(ctx: &mut Ctx<'_>) -> SysResult {
    let f = file(ctx, ctx.int(0))?;
    if !f.vnode.seekable() {
        return Err(Errno::ESPIPE);
    }
    let off = ctx.arg(1) as i64;
    let base: i64 = match ctx.int(2) {
        0 => 0,
        1 => *f.offset.lock() as i64,
        2 => i64::try_from(f.vnode.attr()?.size).map_err(|_| Errno::EOVERFLOW)?,
        _ => return Err(Errno::EINVAL),
    };
    let new = base.checked_add(off).ok_or(Errno::EOVERFLOW)?;
    if new < 0 {
        return Err(Errno::EINVAL);
    }
    *f.offset.lock() = new as u64;
    Ok(new as usize)
}

pub fn sys_getdents64(ctx: &mut Ctx<'_>) -> SysResult {
    let f = file(ctx, ctx.int(0))?;
    let np = f.path.clone().ok_or(Errno::ENOTDIR)?;
    let v = f.vnode.clone();
    if v.vtype() != VType::Dir {
        return Err(Errno::ENOTDIR);
    }
    let cap = ctx.size(2).min(IO_CHUNK);
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
        let reclen = (19 + name.len() + 1).div_ceil(8) * 8;
        if out.len() + reclen > cap {
            if out.is_empty() {
                return Err(Errno::EINVAL);
            }
            break;
        }
        let start = out.len();
        out.extend_from_slice(&ino.to_le_bytes());
        out.extend_from_slice(&i64::try_from(*d_off).unwrap_or(i64::MAX).to_le_bytes());
        out.extend_from_slice(&(reclen as u16).to_le_bytes());
        out.push(*dtype);
        out.extend_from_slice(name);
        out.resize(start + reclen, 0);
        pos = *d_off;
    }
    ctx.copyout(ctx.arg(1), &out)?;
    *f.offset.lock() = pos;
    vnops::accessed(&f);
    Ok(out.len())
}

fn readlink_common(ctx: &Ctx<'_>, dirfd: i32, path: &[u8], buf: u64, size: usize) -> SysResult {
    if size == 0 || size > i32::MAX as usize {
        return Err(Errno::EINVAL);
    }
    let np = lookup_at(ctx, dirfd, path, false)?;
    if np.vnode().vtype() != VType::Lnk {
        return Err(Errno::EINVAL);
    }
    let target = np.vnode().readlink()?;
    let n = target.len().min(size);
    ctx.copyout(buf, &target[..n])?;
    Ok(n)
}

pub fn sys_readlink(ctx: &mut Ctx<'_>) -> SysResult {
    let path = ctx.path(0)?;
    readlink_common(ctx, AT_FDCWD, &path, ctx.arg(1), ctx.size(2))
}

pub fn sys_readlinkat(ctx: &mut Ctx<'_>) -> SysResult {
    let path = ctx.path(1)?;
    readlink_common(ctx, ctx.int(0), &path, ctx.arg(2), ctx.size(3))
}

pub fn sys_getcwd(ctx: &mut Ctx<'_>) -> SysResult {
    let mut b = ctx.p.user().fs.lock().cwd.to_path_bytes();
    b.push(0);
    if b.len() > ctx.size(1) {
        return Err(Errno::ERANGE);
    }
    ctx.copyout(ctx.arg(0), &b)?;
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

pub fn sys_fchdir(ctx: &mut Ctx<'_>) -> SysResult {
    let f = file(ctx, ctx.int(0))?;
    set_cwd(ctx, f.path.clone().ok_or(Errno::ENOTDIR)?)
}

/// access(2), faccessat(2), faccessat2(2): with the real ids (and root's capabilities only
/// for a real uid 0), or the effective ones with AT_EACCESS; the lookup too. Write access to
/// a file on a read-only file system is EROFS.
fn access_common(ctx: &Ctx<'_>, dirfd: i32, path: &[u8], mode: u32, flags: u32) -> SysResult {
    if mode & !7 != 0 || flags & !(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let me = cred(ctx);
    let cred = if flags & AT_EACCESS != 0 { Cred::clone(&me) } else { me.for_access() };
    let (v, mnt) = if path.is_empty() {
        if dirfd == AT_FDCWD {
            let cwd = ctx.p.user().fs.lock().cwd.clone();
            (cwd.vnode().clone(), Some(Arc::clone(cwd.mount())))
        } else {
            let f = file(ctx, dirfd)?;
            (f.vnode.clone(), f.mount().cloned())
        }
    } else {
        let np = lookup_cred(ctx, &cred, dirfd, path, flags & AT_SYMLINK_NOFOLLOW == 0)?;
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
    access_common(ctx, AT_FDCWD, &path, ctx.uint(1), 0)
}

pub fn sys_faccessat(ctx: &mut Ctx<'_>) -> SysResult {
    let path = ctx.path(1)?;
    access_common(ctx, ctx.int(0), &path, ctx.uint(2), 0)
}

pub fn sys_faccessat2(ctx: &mut Ctx<'_>) -> SysResult {
    let path = ctx.copyin_str(ctx.arg(1), namei::PATH_MAX)?;
    if path.is_empty() && ctx.uint(3) & AT_EMPTY_PATH == 0 {
        return Err(Errno::ENOENT);
    }
    access_common(ctx, ctx.int(0), &path, ctx.uint(2), ctx.uint(3))
}

pub fn sys_dup(ctx: &mut Ctx<'_>) -> SysResult {
    let files = ctx.p.user().files();
    let mut t = files.lock();
    let f = t.get(ctx.int(0))?;
    t.alloc(f, false, 0).map(|fd| fd as usize)
}

fn dup_to(ctx: &Ctx<'_>, old: i32, new: i32, cloexec: bool) -> SysResult {
    let files = ctx.p.user().files();
    let mut t = files.lock();
    let f = t.get(old)?;
    let replaced = t.install(new, f, cloexec)?;
    drop(t);
    drop(replaced);
    Ok(new as usize)
}

pub fn sys_dup2(ctx: &mut Ctx<'_>) -> SysResult {
    let (old, new) = (ctx.int(0), ctx.int(1));
    if old == new {
        file(ctx, old)?;
        return Ok(new as usize);
    }
    dup_to(ctx, old, new, false)
}

pub fn sys_dup3(ctx: &mut Ctx<'_>) -> SysResult {
    let (old, new, flags) = (ctx.int(0), ctx.int(1), ctx.uint(2));
    if old == new || flags & !O_CLOEXEC != 0 {
        return Err(Errno::EINVAL);
    }
    dup_to(ctx, old, new, flags & O_CLOEXEC != 0)
}

const F_DUPFD: i32 = 0;
const F_GETFD: i32 = 1;
const F_SETFD: i32 = 2;
const F_GETFL: i32 = 3;
const F_SETFL: i32 = 4;
const F_DUPFD_CLOEXEC: i32 = 1030;
const FD_CLOEXEC: u64 = 1;

pub fn sys_fcntl(ctx: &mut Ctx<'_>) -> SysResult {
    let fd = ctx.int(0);
    let files = ctx.p.user().files();
    let mut t = files.lock();
    match ctx.int(1) {
        F_DUPFD | F_DUPFD_CLOEXEC => {
            let min = usize::try_from(ctx.int(2)).map_err(|_| Errno::EINVAL)?;
            if min >= file::NOFILE {
                return Err(Errno::EINVAL);
            }
            let f = t.get(fd)?;
            t.alloc(f, ctx.int(1) == F_DUPFD_CLOEXEC, min).map(|n| n as usize)
        }
        F_GETFD => Ok(usize::from(t.entry(fd)?.cloexec)),
        F_SETFD => {
            t.entry_mut(fd)?.cloexec = ctx.arg(2) & FD_CLOEXEC != 0;
            Ok(0)
        }
        F_GETFL => Ok(t.get(fd)?.flags() as usize),
        F_SETFL => {
            t.get(fd)?.set_status_flags(ctx.uint(2));
            Ok(0)
        }
        _ => {
            t.get(fd)?;
            Err(Errno::EINVAL)
        }
    }
}

const FIONCLEX: u32 = 0x5450;
const FIOCLEX: u32 = 0x5451;
const FIONBIO: u32 = 0x5421;
const FIONREAD: u32 = 0x541b;

pub fn sys_ioctl(ctx: &mut Ctx<'_>) -> SysResult {
    let fd = ctx.int(0);
    let f = file(ctx, fd)?;
    // Requests every descriptor takes (ioctl_list(2)).
    match ctx.uint(1) {
        FIOCLEX | FIONCLEX => {
            ctx.p.user().files().lock().entry_mut(fd)?.cloexec = ctx.uint(1) == FIOCLEX;
            return Ok(0);
        }
        FIONBIO => {
            let mut b = [0u8; 4];
            ctx.copyin(ctx.arg(2), &mut b)?;
            let on = i32::from_le_bytes(b) != 0;
            let flags = f.flags() & (file::O_APPEND | file::O_NONBLOCK);
            f.set_status_flags(if on { flags | file::O_NONBLOCK } else { flags & !file::O_NONBLOCK });
            return Ok(0);
        }
        FIONREAD if f.vnode.vtype() == VType::Fifo || f.vnode.vtype() == VType::Reg => {
            let a = f.vnode.attr()?;
            let n = if a.vtype() == VType::Reg { a.size.saturating_sub(*f.offset.lock()) } else { a.size };
            ctx.copyout_i32(ctx.arg(2), n.min(i32::MAX as u64) as i32)?;
            return Ok(0);
        }
        _ => {}
    }
    if !f.vnode.is_tty() {
        return Err(Errno::ENOTTY);
    }
    crate::kern::tty::ioctl::ioctl(ctx, ctx.uint(1), ctx.arg(2))
}

pub fn sys_pipe2(ctx: &mut Ctx<'_>) -> SysResult {
    let flags = ctx.uint(1);
    if flags & !(O_CLOEXEC | file::O_NONBLOCK | 0o40000) != 0 {
        return Err(Errno::EINVAL);
    }
    let c = cred(ctx);
    let (r, w) = crate::fs::pipe::new(c.fsuid, c.fsgid);
    let status = flags & file::O_NONBLOCK;
    let rf = File::new(r, None, file::O_RDONLY | status);
    let wf = File::new(w, None, file::O_WRONLY | status);
    let cloexec = flags & O_CLOEXEC != 0;
    let files = ctx.p.user().files();
    let mut t = files.lock();
    let a = t.alloc(rf, cloexec, 0)?;
    let b = match t.alloc(wf, cloexec, 0) {
        Ok(b) => b,
        Err(e) => {
            let _ = t.close(a);
            return Err(e);
        }
    };
    drop(t);
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&a.to_le_bytes());
    out[4..].copy_from_slice(&b.to_le_bytes());
    if let Err(e) = ctx.copyout(ctx.arg(0), &out) {
        let mut t = files.lock();
        let _ = t.close(a);
        let _ = t.close(b);
        return Err(e);
    }
    Ok(0)
}

pub fn sys_pipe(ctx: &mut Ctx<'_>) -> SysResult {
    ctx.regs.gregs[platform::stub::reg::RSI] = 0;
    sys_pipe2(ctx)
}

pub fn sys_sendfile(ctx: &mut Ctx<'_>) -> SysResult {
    let out = file(ctx, ctx.int(0))?;
    let inp = file(ctx, ctx.int(1))?;
    let (offp, count) = (ctx.arg(2), ctx.size(3).min(IO_CHUNK));
    if !inp.vnode.seekable() {
        return Err(Errno::EINVAL);
    }
    let off = if offp != 0 { Some(ctx.copyin_u64(offp)?) } else { None };
    let data = read_file(&inp, off, count)?;
    let n = sigpipe(ctx, write_file(ctx, &out, None, &data))?;
    if let Some(o) = off {
        ctx.copyout_u64(offp, o + n as u64)?;
    } else if n < data.len() {
        // Give back what was read but not written.
        let mut pos = inp.offset.lock();
        *pos -= (data.len() - n) as u64;
    }
    Ok(n)
}

const STATX_BASIC_STATS: u32 = 0x7ff;

/// statx(2): the same attributes as stat, in struct statx (256 bytes).
pub fn sys_statx(ctx: &mut Ctx<'_>) -> SysResult {
    let (dirfd, flags, buf) = (ctx.int(0), ctx.uint(2), ctx.arg(4));
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | 0x800 | 0x6000) != 0 {
        return Err(Errno::EINVAL);
    }
    let path = ctx.copyin_str(ctx.arg(1), namei::PATH_MAX)?;
    let v = if path.is_empty() {
        if flags & AT_EMPTY_PATH == 0 {
            return Err(Errno::ENOENT);
        }
        if dirfd == AT_FDCWD { ctx.p.user().fs.lock().cwd.vnode().clone() } else { file(ctx, dirfd)?.vnode.clone() }
    } else {
        lookup_at(ctx, dirfd, &path, flags & AT_SYMLINK_NOFOLLOW == 0)?.vnode().clone()
    };
    let a = v.attr()?;
    let mut b = [0u8; 256];
    let mut put = |off: usize, v: u64, n: usize| b[off..off + n].copy_from_slice(&v.to_le_bytes()[..n]);
    put(0, u64::from(STATX_BASIC_STATS), 4); // stx_mask
    put(4, a.blksize, 4);
    put(16, a.nlink, 4);
    put(20, u64::from(a.uid), 4);
    put(24, u64::from(a.gid), 4);
    put(28, u64::from(a.mode), 2);
    put(32, a.ino, 8);
    put(40, a.size, 8);
    put(48, a.blocks, 8);
    for (off, t) in [(64, a.atime), (96, a.ctime), (112, a.mtime)] {
        put(off, t.sec as u64, 8);
        put(off + 8, t.nsec as u64, 4);
    }
    put(128, a.rdev >> 8, 4);
    put(132, a.rdev & 0xff, 4);
    put(136, a.dev >> 8, 4);
    put(140, a.dev & 0xff, 4);
    ctx.copyout(buf, &b)?;
    Ok(0)
}
