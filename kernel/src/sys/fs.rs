//! File and descriptor system calls: open(2), read(2) and write(2) and their kin, lseek(2),
//! close(2), dup(2), fcntl(2), ioctl(2), pipe(2), sendfile(2); the path and descriptor
//! helpers the other file calls share. (Questions about files are in fsinfo.rs, changes of
//! the namespace and attributes in fsops.rs.)

use std::sync::Arc;

use crate::vm::uaccess::UserSlice;
use crate::abi::fs::Iovec;
use crate::abi::linux;
use crate::fs::file::{self, File, O_ACCMODE, O_CLOEXEC, O_CREAT, O_DIRECTORY, O_NOFOLLOW, O_PATH, O_RDONLY, O_TRUNC};
use crate::fs::mount;
use crate::fs::namei::{self, NamePath};
use crate::fs::perm;
use crate::fs::vfs::VType;
use crate::fs::vnops;
use crate::kern::cred::Cred;
use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};
use crate::sys::fsflags::{Dup3Flags, Pipe2Flags};
use crate::vm::space::PROT_WRITE;

/// openat's "relative to the working directory".
pub const AT_FDCWD: i32 = linux::AT_FDCWD;
/// Most iovecs one readv(2) or writev(2) takes (UIO_MAXIOV).
const UIO_MAXIOV: usize = 1024;

/// Bytes moved per read or write call at most (a short count beyond; callers loop).
pub(super) const IO_CHUNK: usize = 1 << 20;

pub(super) fn file(ctx: &Ctx<'_>, fd: i32) -> Result<Arc<File>, Errno> {
    ctx.p.user().files().lock().get(fd)
}

/// The open file `fd` names for a call that acts on the file itself (Linux's `fdget`): an
/// O_PATH descriptor names none (EBADF).
pub(super) fn file_not_path(ctx: &Ctx<'_>, fd: i32) -> Result<Arc<File>, Errno> {
    let f = file(ctx, fd)?;
    if f.flags() & O_PATH != 0 {
        return Err(Errno::EBADF);
    }
    Ok(f)
}

/// Where a path given with a directory descriptor starts.
pub fn start_dir(ctx: &Ctx<'_>, dirfd: i32, path: &[u8]) -> Result<NamePath, Errno> {
    if path.first() == Some(&b'/') {
        return Ok(ctx.p.user().fs.lock().root.clone());
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
pub(super) fn lookup_cred(ctx: &Ctx<'_>, cred: &Cred, dirfd: i32, path: &[u8], follow: bool) -> Result<NamePath, Errno> {
    let start = start_dir(ctx, dirfd, path)?;
    namei::lookup(cred, &start, path, follow)
}

/// Read from a file at `off` (or its offset), looping over short reads of regular files.
fn read_file(f: &File, off: Option<u64>, len: usize) -> Result<Vec<u8>, Errno> {
    read_file_as(f, off, len, f.flags() & file::O_NONBLOCK != 0)
}

/// [`read_file`], non-blocking or not whatever the file's flags say (preadv2's RWF_NOWAIT).
pub(super) fn read_file_as(f: &File, off: Option<u64>, len: usize, nonblock: bool) -> Result<Vec<u8>, Errno> {
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
    if got > 0 {
        notify(f, crate::fs::inotify::IN_ACCESS);
    }
    Ok(buf)
}

/// Tell inotify about `f`'s data (IN_ACCESS, IN_MODIFY).
fn notify(f: &File, mask: u32) {
    if crate::fs::inotify::active() {
        let (parent, name) = f.path.as_ref().map_or((None, &b""[..]), |p| (p.parent(), p.name()));
        crate::fs::inotify::child_event(parent, name, &f.vnode, mask);
    }
}

fn write_file(ctx: &Ctx<'_>, f: &File, off: Option<u64>, data: &[u8]) -> SysResult {
    let how = WriteHow { append: f.flags() & file::O_APPEND != 0, nonblock: f.flags() & file::O_NONBLOCK != 0 };
    write_file_as(ctx, f, off, data, how)
}

/// How one write goes: appending, non-blocking (the file's flags, or pwritev2's RWF_*).
#[derive(Debug, Clone, Copy)]
pub(super) struct WriteHow {
    pub append: bool,
    pub nonblock: bool,
}

/// [`write_file`] as `how` says.
pub(super) fn write_file_as(ctx: &Ctx<'_>, f: &File, off: Option<u64>, data: &[u8], how: WriteHow) -> SysResult {
    if !f.writable() {
        return Err(Errno::EBADF);
    }
    vnops::remove_privs(&cred(ctx), &f.vnode)?;
    let v = &f.vnode;
    let seekable = v.seekable();
    // pwrite(2) BUGS: on Linux an O_APPEND file is appended to whatever the offset says.
    let start = match off {
        Some(_) if seekable && how.append => v.attr()?.size,
        Some(o) => o,
        None if seekable && how.append => v.attr()?.size,
        None if seekable => *f.offset.lock(),
        None => 0,
    };
    let data = fsize_limit(ctx, v.vtype(), start, data)?;
    let n = v.write_nb(start, data, how.nonblock)?;
    if off.is_none() && seekable {
        *f.offset.lock() = start + n as u64;
    }
    if n > 0 {
        notify(f, crate::fs::inotify::IN_MODIFY);
    }
    Ok(n)
}

/// RLIMIT_FSIZE: a regular file does not grow past it. A write that starts at or past the
/// limit raises SIGXFSZ and is EFBIG; one that crosses it is cut short (Linux's
/// generic_write_check_limits).
pub(super) fn fsize_limit<'d>(ctx: &Ctx<'_>, vt: VType, start: u64, data: &'d [u8]) -> Result<&'d [u8], Errno> {
    if vt != VType::Reg || data.is_empty() {
        return Ok(data);
    }
    let room = fsize_count(ctx, start, u64::try_from(data.len()).unwrap_or(u64::MAX))?;
    Ok(&data[..usize::try_from(room).unwrap_or(data.len())])
}

/// RLIMIT_FSIZE for a transfer of `count` bytes to a regular file at `start`: SIGXFSZ and
/// EFBIG at or past the limit, else the count cut to it (generic_write_check_limits).
pub(super) fn fsize_count(ctx: &Ctx<'_>, start: u64, count: u64) -> Result<u64, Errno> {
    let limit = ctx.p.user().rlimits.lock()[RLIMIT_FSIZE].0;
    if start >= limit {
        xfsz(ctx);
        return Err(Errno::EFBIG);
    }
    Ok(count.min(limit - start))
}

/// truncate(2) to `len` bytes past RLIMIT_FSIZE, growing the file: SIGXFSZ and EFBIG
/// (Linux's inode_newsize_ok).
pub(super) fn fsize_truncate(ctx: &Ctx<'_>, v: &crate::fs::vfs::VnodeRef, len: u64) -> Result<(), Errno> {
    let limit = ctx.p.user().rlimits.lock()[RLIMIT_FSIZE].0;
    if len > limit && v.vtype() == VType::Reg && len > v.attr()?.size {
        xfsz(ctx);
        return Err(Errno::EFBIG);
    }
    Ok(())
}

fn xfsz(ctx: &Ctx<'_>) {
    use crate::kern::signal::{SI_KERNEL, SIGXFSZ, SigInfo, send_to_thread};
    send_to_thread(ctx.td, SigInfo::kernel(SIGXFSZ, SI_KERNEL));
}

/// RLIMIT_FSIZE's index.
const RLIMIT_FSIZE: usize = 1;

/// The part of the guest buffers `iov` a transfer can use, in order. Linux copies as it goes
/// and stops at the first byte it cannot reach, so a regular file's read or write moves what
/// precedes the first unreachable page (`prot`: PROT_WRITE for a read's buffers, 0 — readable
/// — for a write's) and is EFAULT only when that is nothing. A pipe or terminal (not
/// seekable) takes its buffers whole or answers EFAULT: its data must not be consumed and then
/// lost (pipe_read and pipe_write answer EFAULT for a copy that stops short, too).
pub(super) fn reachable(ctx: &Ctx<'_>, f: &File, iov: &[UserSlice<u8>], prot: u32) -> Result<Vec<UserSlice<u8>>, Errno> {
    let whole = !f.vnode.seekable();
    let vm = ctx.p.user().vm();
    let g = vm.read();
    let mut out = Vec::with_capacity(iov.len());
    let mut budget = IO_CHUNK;
    let mut requested = false;
    for part in iov {
        let len = part.len.min(budget);
        if len == 0 {
            continue;
        }
        requested = true;
        let reach = g.accessible_prefix(part.addr(), u64::try_from(len).unwrap_or(u64::MAX), prot);
        let n = usize::try_from(reach).unwrap_or(0).min(len);
        if n < len && whole {
            return Err(Errno::EFAULT);
        }
        if n > 0 {
            out.push(part.prefix(n));
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

/// The one buffer of read(2)/write(2) as [`reachable`] trims it.
fn reachable_one(ctx: &Ctx<'_>, f: &File, buf: UserSlice<u8>, prot: u32) -> Result<UserSlice<u8>, Errno> {
    Ok(reachable(ctx, f, &[buf], prot)?.first().copied().unwrap_or(buf.prefix(0)))
}

/// The part of an output buffer a call that copies out as it goes can fill (getrandom,
/// getdents64): up to the first byte that is not writable; EFAULT when that is nothing (of a
/// buffer that is not empty).
pub fn writable_prefix(ctx: &Ctx<'_>, buf: UserSlice<u8>) -> Result<UserSlice<u8>, Errno> {
    if buf.len == 0 {
        return Ok(buf);
    }
    let reach = ctx.p.user().vm().read().accessible_prefix(buf.addr(), u64::try_from(buf.len).unwrap_or(u64::MAX), PROT_WRITE);
    match usize::try_from(reach).unwrap_or(0).min(buf.len) {
        0 => Err(Errno::EFAULT),
        n => Ok(buf.prefix(n)),
    }
}

/// Copy in the bytes of the (reachable) buffers `iov`, in order.
pub(super) fn gather(ctx: &Ctx<'_>, iov: &[UserSlice<u8>]) -> Result<Vec<u8>, Errno> {
    let mut data = vec![0u8; iov.iter().map(|p| p.len).sum()];
    let mut at = 0;
    for part in iov {
        ctx.copyin(*part, &mut data[at..at + part.len])?;
        at += part.len;
    }
    Ok(data)
}

pub fn sys_read(ctx: &mut Ctx<'_>) -> SysResult {
    let f = ctx.file(0)?;
    let buf = reachable_one(ctx, &f, ctx.slice::<u8>(1, 2), PROT_WRITE)?;
    let data = read_file(&f, None, buf.len)?;
    ctx.write_slice(buf, &data)?;
    Ok(data.len())
}

pub fn sys_pread64(ctx: &mut Ctx<'_>) -> SysResult {
    let f = ctx.file(0)?;
    if !f.vnode.seekable() {
        return Err(Errno::ESPIPE);
    }
    let off = ctx.offset(3)?;
    let buf = reachable_one(ctx, &f, ctx.slice::<u8>(1, 2), PROT_WRITE)?;
    let data = read_file(&f, Some(off), buf.len)?;
    ctx.write_slice(buf, &data)?;
    Ok(data.len())
}

pub fn sys_write(ctx: &mut Ctx<'_>) -> SysResult {
    let f = ctx.file(0)?;
    let iov = reachable(ctx, &f, &[ctx.slice::<u8>(1, 2)], 0)?;
    let data = gather(ctx, &iov)?;
    sigpipe(ctx, write_file(ctx, &f, None, &data))
}

/// A write to a pipe without readers also raises SIGPIPE in the writing thread.
pub(super) fn sigpipe(ctx: &Ctx<'_>, r: SysResult) -> SysResult {
    if r == Err(Errno::EPIPE) {
        let uid = ctx.p.user().cred.lock().uid;
        crate::kern::signal::send_to_thread(ctx.td, crate::kern::signal::SigInfo::user(crate::kern::signal::SIGPIPE, 0, ctx.p.pid, uid));
    }
    r
}

pub fn sys_pwrite64(ctx: &mut Ctx<'_>) -> SysResult {
    let f = ctx.file(0)?;
    if !f.vnode.seekable() {
        return Err(Errno::ESPIPE);
    }
    let off = ctx.offset(3)?;
    let iov = reachable(ctx, &f, &[ctx.slice::<u8>(1, 2)], 0)?;
    let data = gather(ctx, &iov)?;
    write_file(ctx, &f, Some(off), &data)
}

/// The iovec array of arguments 1 and 2, as guest buffers: EINVAL for more than UIO_MAXIOV
/// entries or a total length past `ssize_t`.
fn iovecs(ctx: &Ctx<'_>) -> Result<Vec<UserSlice<u8>>, Errno> {
    iovecs_at(ctx, ctx.slice::<Iovec>(1, 2))
}

/// The iovec array `vec` as buffers (EINVAL past UIO_MAXIOV or a total past SSIZE_MAX).
pub(super) fn iovecs_at(ctx: &Ctx<'_>, vec: UserSlice<Iovec>) -> Result<Vec<UserSlice<u8>>, Errno> {
    let raw = ctx.read_slice(vec, UIO_MAXIOV)?;
    let mut total: usize = 0;
    let mut out = Vec::with_capacity(raw.len());
    for v in raw {
        let len = usize::try_from(v.iov_len).map_err(|_| Errno::EINVAL)?;
        total = total.checked_add(len).filter(|t| isize::try_from(*t).is_ok()).ok_or(Errno::EINVAL)?;
        out.push(UserSlice::new(v.iov_base, len));
    }
    Ok(out)
}

pub fn sys_writev(ctx: &mut Ctx<'_>) -> SysResult {
    let f = ctx.file(0)?;
    let how = WriteHow { append: f.flags() & file::O_APPEND != 0, nonblock: f.flags() & file::O_NONBLOCK != 0 };
    writev_at(ctx, &f, None, how)
}

/// The bytes of the iovecs of arguments 1 and 2 (as much as one transfer takes).
pub(super) fn gather_iov(ctx: &Ctx<'_>, f: &File) -> Result<Vec<u8>, Errno> {
    let iov = iovecs(ctx)?;
    let iov = reachable(ctx, f, &iov, 0)?;
    gather(ctx, &iov)
}

/// writev(2) and its positioned forms: the iovecs of arguments 1 and 2 written at `off`
/// (or the file's offset).
pub(super) fn writev_at(ctx: &Ctx<'_>, f: &File, off: Option<u64>, how: WriteHow) -> SysResult {
    if !f.writable() {
        return Err(Errno::EBADF);
    }
    let iov = iovecs(ctx)?;
    let iov = reachable(ctx, f, &iov, 0)?;
    let data = gather(ctx, &iov)?;
    sigpipe(ctx, write_file_as(ctx, f, off, &data, how))
}

pub fn sys_readv(ctx: &mut Ctx<'_>) -> SysResult {
    let f = ctx.file(0)?;
    readv_at(ctx, &f, None, f.flags() & file::O_NONBLOCK != 0)
}

/// readv(2) and its positioned forms: into the iovecs of arguments 1 and 2, from `off` (or
/// the file's offset).
pub(super) fn readv_at(ctx: &Ctx<'_>, f: &File, off: Option<u64>, nonblock: bool) -> SysResult {
    if !f.readable() {
        return Err(Errno::EBADF);
    }
    read_into(ctx, f, off, &iovecs(ctx)?, nonblock)
}

/// Read into the buffers `iov` from `off` (or the file's offset).
pub(super) fn read_into(ctx: &Ctx<'_>, f: &File, off: Option<u64>, iov: &[UserSlice<u8>], nonblock: bool) -> SysResult {
    if !f.readable() {
        return Err(Errno::EBADF);
    }
    let iov = reachable(ctx, f, iov, PROT_WRITE)?;
    let total: usize = iov.iter().map(|p| p.len).sum();
    let data = read_file_as(f, off, total, nonblock)?;
    let mut done = 0;
    for part in iov {
        if done >= data.len() {
            break;
        }
        let n = part.len.min(data.len() - done);
        ctx.write_slice(part, &data[done..done + n])?;
        done += n;
    }
    Ok(data.len())
}

pub fn sys_close(ctx: &mut Ctx<'_>) -> SysResult {
    let files = ctx.p.user().files();
    let (entry, owner) = {
        let mut t = files.lock();
        (t.close(ctx.fd(0))?, t.lock_owner())
    };
    // Any close of a file drops the process's POSIX locks on it (with the table unlocked:
    // the waiters' wake-up takes a sleep queue).
    if crate::fs::lock::any_held() {
        crate::fs::lock::release(entry.file.vnode.id(), owner);
    }
    drop(entry);
    Ok(0)
}

/// close_range(2): close (or, with CLOSE_RANGE_CLOEXEC, mark close-on-exec) the open
/// descriptors from `first` to `last`; CLOSE_RANGE_UNSHARE first gives the process a
/// descriptor table of its own when it shares one (CLONE_FILES). EINVAL for unknown flags or
/// `first` past `last`.
pub fn sys_close_range(ctx: &mut Ctx<'_>) -> SysResult {
    const CLOSE_RANGE_UNSHARE: u32 = 1 << 1;
    const CLOSE_RANGE_CLOEXEC: u32 = 1 << 2;
    let (first, last, flags) = (ctx.uint(0), ctx.uint(1), ctx.uint(2));
    if flags & !(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC) != 0 || first > last {
        return Err(Errno::EINVAL);
    }
    let u = ctx.p.user();
    if flags & CLOSE_RANGE_UNSHARE != 0 {
        let mut slot = u.files.lock();
        if Arc::strong_count(&slot) > 1 {
            let copy = slot.lock().clone();
            let old = std::mem::replace(&mut *slot, Arc::new(platform::sync::SpinLock::new("fdtable", copy)));
            // The old table may have lost its other sharers meanwhile: dropped unlocked.
            drop(slot);
            drop(old);
        }
    }
    let files = u.files();
    let in_range = |fd: &i32| u32::try_from(*fd).is_ok_and(|f| (first..=last).contains(&f));
    let fds: Vec<i32> = files.lock().open_fds().filter(in_range).collect();
    for fd in fds {
        if flags & CLOSE_RANGE_CLOEXEC != 0 {
            if let Ok(e) = files.lock().entry_mut(fd) {
                e.cloexec = true;
            }
            continue;
        }
        let closed = {
            let mut t = files.lock();
            t.close(fd).map(|entry| (entry, t.lock_owner()))
        };
        if let Ok((entry, owner)) = closed {
            if crate::fs::lock::any_held() {
                crate::fs::lock::release(entry.file.vnode.id(), owner);
            }
            drop(entry);
        }
    }
    Ok(0)
}

/// Where an openat2(2) lookup of `path` from `dirfd` starts, and its restrictions (RESOLVE_*
/// bits `how`): RESOLVE_IN_ROOT makes the directory the root; RESOLVE_BENEATH refuses an
/// absolute path (EXDEV).
pub(super) fn start_how(ctx: &Ctx<'_>, dirfd: i32, path: &[u8], how: u64) -> Result<(NamePath, namei::Resolve), Errno> {
    let dir = if dirfd == AT_FDCWD {
        ctx.p.user().fs.lock().cwd.clone()
    } else {
        let p = file(ctx, dirfd)?.path.clone().ok_or(Errno::ENOTDIR)?;
        if p.vnode().vtype() != VType::Dir {
            return Err(Errno::ENOTDIR);
        }
        p
    };
    let res = namei::Resolve::new(how, &dir);
    if res.in_root {
        return Ok((dir.as_root(), res));
    }
    if path.first() == Some(&b'/') {
        if res.beneath {
            return Err(Errno::EXDEV);
        }
        return Ok((ctx.p.user().fs.lock().root.clone(), res));
    }
    Ok((dir, res))
}

pub fn sys_openat(ctx: &mut Ctx<'_>) -> SysResult {
    let path = ctx.path(1)?;
    open_how(ctx, ctx.fd(0), &path, ctx.uint(2), ctx.uint(3), None)
}

/// openat(2), and openat2(2) with its RESOLVE_* bits `how`.
pub(super) fn open_how(ctx: &Ctx<'_>, dirfd: i32, path: &[u8], flags: u32, mode: u32, how: Option<u64>) -> SysResult {
    let follow = flags & O_NOFOLLOW == 0;
    let (np, created) = if flags & file::O_TMPFILE_BIT != 0 {
        // O_TMPFILE is __O_TMPFILE with O_DIRECTORY, without O_CREAT, opened for writing.
        if flags & (file::O_TMPFILE_BIT | O_DIRECTORY | O_CREAT) != file::O_TMPFILE_BIT | O_DIRECTORY || flags & O_ACCMODE == O_RDONLY {
            return Err(Errno::EINVAL);
        }
        (crate::sys::fsops::open_tmpfile(ctx, dirfd, path, mode, flags)?, true)
    } else if flags & O_CREAT != 0 {
        if flags & O_DIRECTORY != 0 {
            return Err(Errno::EINVAL);
        }
        crate::sys::fsops::open_create(ctx, dirfd, path, flags, mode, how)?
    } else if let Some(how) = how {
        let (start, res) = start_how(ctx, dirfd, path, how)?;
        (namei::lookup_how(&cred(ctx), &start, path, follow, &res)?, false)
    } else {
        (lookup_at(ctx, dirfd, path, follow)?, false)
    };
    open_found(ctx, np, flags, created)
}

/// The rest of an open once its path is found (`created`: by this open, O_CREAT): the type
/// checks, permission, leases, the controlling terminal, a FIFO's end, O_TRUNC, the
/// descriptor (open_by_handle_at's too).
pub(super) fn open_found(ctx: &Ctx<'_>, np: NamePath, flags: u32, created: bool) -> SysResult {
    let follow = flags & O_NOFOLLOW == 0;
    let v = np.vnode().clone();
    let vt = v.vtype();
    // O_NOFOLLOW on a symbolic link: ELOOP, unless O_PATH asks for the link itself.
    if vt == VType::Lnk && !follow && flags & O_PATH == 0 {
        return Err(Errno::ELOOP);
    }
    if flags & O_DIRECTORY != 0 && vt != VType::Dir && flags & file::O_TMPFILE_BIT == 0 {
        return Err(Errno::ENOTDIR);
    }
    // A directory with O_CREAT (found, so not created) is EISDIR whatever the access mode.
    if vt == VType::Dir && (flags & O_ACCMODE != O_RDONLY || flags & O_CREAT != 0) {
        return Err(Errno::EISDIR);
    }
    if flags & O_PATH == 0 {
        mount::may_open_device(&np)?;
    }
    // A device node outside devfs (mknod on tmpfs) opens the device of its number.
    let v = if matches!(vt, VType::Chr | VType::Blk) && flags & O_PATH == 0 && !matches!(v.fs().type_name(), "devfs" | "devpts") {
        perm::may_open(&cred(ctx), &v.attr()?, flags, np.mount().readonly())?;
        crate::fs::devfs::by_rdev(vt, v.attr()?.rdev)?
    } else {
        v
    };
    let cred = cred(ctx);
    if flags & O_PATH == 0 && !created {
        perm::may_open(&cred, &v.attr()?, flags, np.mount().readonly())?;
        v.may_open(flags)?; // procfs: another user's /proc/PID/maps, read-only settings
    }
    if flags & O_PATH == 0 && vt == VType::Reg {
        crate::fs::lease::break_lease(v.id(), flags)?; // a conflicting lease gives way first
    }
    let v = if v.is_tty() && flags & O_PATH == 0 { crate::kern::tty::ctty::on_open(ctx.p, v, flags)? } else { v };
    // A pipe reached through /proc/PID/fd: a new end of it, as the access mode asks.
    let acc = flags & O_ACCMODE;
    let (read, write) = (acc != file::O_WRONLY, acc != O_RDONLY);
    let reopened = if vt == VType::Fifo && flags & O_PATH == 0 { v.open_fifo(read, write) } else { None };
    let f = match reopened {
        Some(end) => File::new(end, None, flags), // named like the original: pipe:[N]
        // A named pipe: an end of the pipe of its inode (fifo(7)'s waits and ENXIO).
        None if vt == VType::Fifo && flags & O_PATH == 0 => {
            File::open(crate::fs::fifo::open(v, read, write, flags & file::O_NONBLOCK != 0)?, np, flags)?
        }
        None => File::open(v, np, flags)?, // EROFS: written on a read-only mount
    };
    if flags & O_TRUNC != 0 && flags & O_PATH == 0 && vt == VType::Reg && acc != O_RDONLY && !created {
        vnops::truncate(&cred, f.as_ref().into(), 0, false)?;
    }
    f.set_opener(&cred);
    ctx.p.user().files().lock().alloc(f, flags & O_CLOEXEC != 0, 0).and_then(fd_ret)
}

const SEEK_DATA: i32 = 3;
const SEEK_HOLE: i32 = 4;

pub fn sys_lseek(ctx: &mut Ctx<'_>) -> SysResult {
    let f = ctx.file(0)?;
    if !f.vnode.seekable() {
        return Err(Errno::ESPIPE);
    }
    let whence = ctx.int(2);
    if !(0..=SEEK_HOLE).contains(&whence) {
        return Err(Errno::EINVAL);
    }
    let current = *f.offset.lock();
    if let Some(pos) = f.vnode.fixed_seek(current) {
        *f.offset.lock() = pos;
        return usize::try_from(pos).map_err(|_| Errno::EOVERFLOW);
    }
    let off = i64::from_ne_bytes(ctx.arg(1).to_ne_bytes());
    let base: i64 = match whence {
        0 => 0,
        1 => i64::try_from(*f.offset.lock()).map_err(|_| Errno::EOVERFLOW)?,
        // A block device's end is its size (its stat shows none).
        2 => match crate::fs::blockdev::size_of(&f.vnode) {
            Some(size) => i64::try_from(size?).map_err(|_| Errno::EOVERFLOW)?,
            None => i64::try_from(f.vnode.attr()?.size).map_err(|_| Errno::EOVERFLOW)?,
        },
        // SEEK_DATA, SEEK_HOLE: no file here records holes, so the data is all of it and
        // the one hole is at the end; ENXIO at or past the end (or before the start).
        w @ (SEEK_DATA | SEEK_HOLE) => {
            let size = f.vnode.attr()?.size;
            let at = u64::try_from(off).map_err(|_| Errno::ENXIO)?;
            if at >= size {
                return Err(Errno::ENXIO);
            }
            let new = if w == SEEK_DATA { at } else { size };
            *f.offset.lock() = new;
            return usize::try_from(new).map_err(|_| Errno::EOVERFLOW);
        }
        _ => return Err(Errno::EINVAL),
    };
    let new = base.checked_add(off).ok_or(Errno::EOVERFLOW)?;
    let new = u64::try_from(new).map_err(|_| Errno::EINVAL)?;
    *f.offset.lock() = new;
    usize::try_from(new).map_err(|_| Errno::EOVERFLOW)
}

/// A descriptor as a system call's result (descriptors are never negative).
fn fd_ret(fd: i32) -> SysResult {
    usize::try_from(fd).map_err(|_| Errno::EBADF)
}

pub fn sys_dup(ctx: &mut Ctx<'_>) -> SysResult {
    let files = ctx.p.user().files();
    let mut t = files.lock();
    let f = t.get(ctx.fd(0))?;
    t.alloc(f, false, 0).and_then(fd_ret)
}

fn dup_to(ctx: &Ctx<'_>, old: i32, new: i32, cloexec: bool) -> SysResult {
    let files = ctx.p.user().files();
    let mut t = files.lock();
    let f = t.get(old)?;
    let replaced = t.install(new, f, cloexec)?;
    let owner = t.lock_owner();
    drop(t);
    if let Some(e) = &replaced
        && crate::fs::lock::any_held()
    {
        crate::fs::lock::release(e.file.vnode.id(), owner);
    }
    drop(replaced);
    fd_ret(new)
}

pub fn sys_dup2(ctx: &mut Ctx<'_>) -> SysResult {
    let (old, new) = (ctx.fd(0), ctx.fd(1));
    if old == new {
        file(ctx, old)?;
        return fd_ret(new);
    }
    dup_to(ctx, old, new, false)
}

pub fn sys_dup3(ctx: &mut Ctx<'_>) -> SysResult {
    let flags = ctx.flags::<Dup3Flags>(2)?;
    let (old, new) = (ctx.fd(0), ctx.fd(1));
    if old == new {
        return Err(Errno::EINVAL);
    }
    dup_to(ctx, old, new, flags.contains(Dup3Flags::CLOEXEC))
}

const F_DUPFD: i32 = 0;
const F_GETFD: i32 = 1;
const F_SETFD: i32 = 2;
const F_GETFL: i32 = 3;
const F_SETFL: i32 = 4;
const F_DUPFD_CLOEXEC: i32 = 1030;
const FD_CLOEXEC: u64 = 1;

/// F_SETFL's flags (O_APPEND, O_NONBLOCK, O_ASYNC) for `f`, open as `fd`; O_ASYNC turned
/// on or off starts or stops its I/O signals.
/// EPERM for taking O_APPEND off an append-only file (setfl's IS_APPEND).
fn set_fl(f: &Arc<File>, fd: i32, flags: u32) -> Result<(), Errno> {
    if (flags ^ f.flags()) & file::O_APPEND != 0 && f.vnode.attr().is_ok_and(|a| a.append_only()) {
        return Err(Errno::EPERM);
    }
    let was = f.flags() & file::O_ASYNC;
    f.set_status_flags(flags);
    if flags & file::O_ASYNC != was {
        crate::fs::sigio::set(f, fd, was == 0);
    }
    Ok(())
}

pub fn sys_fcntl(ctx: &mut Ctx<'_>) -> SysResult {
    let fd = ctx.fd(0);
    let files = ctx.p.user().files();
    let mut t = files.lock();
    match ctx.int(1) {
        F_DUPFD | F_DUPFD_CLOEXEC => {
            let min = usize::try_from(ctx.int(2)).map_err(|_| Errno::EINVAL)?;
            if min >= t.limit.min(file::NR_OPEN) {
                return Err(Errno::EINVAL);
            }
            let f = t.get(fd)?;
            t.alloc(f, ctx.int(1) == F_DUPFD_CLOEXEC, min).and_then(fd_ret)
        }
        F_GETFD => Ok(usize::from(t.entry(fd)?.cloexec)),
        F_SETFD => {
            t.entry_mut(fd)?.cloexec = ctx.arg(2) & FD_CLOEXEC != 0;
            Ok(0)
        }
        F_GETFL => Ok(t.get(fd)?.flags() as usize),
        F_SETFL => {
            let f = t.get(fd)?;
            drop(t);
            set_fl(&f, fd, ctx.uint(2))?;
            Ok(0)
        }
        crate::abi::lock::F_GETLK
        | crate::abi::lock::F_SETLK
        | crate::abi::lock::F_SETLKW
        | crate::abi::lock::F_OFD_GETLK
        | crate::abi::lock::F_OFD_SETLK
        | crate::abi::lock::F_OFD_SETLKW => {
            let f = t.get(fd)?;
            drop(t);
            crate::sys::lock::fcntl_lock(ctx, &f, ctx.int(1))
        }
        crate::abi::lock::F_GETLEASE
        | crate::abi::lock::F_SETLEASE
        | crate::abi::lock::F_GETOWN
        | crate::abi::lock::F_SETOWN
        | crate::abi::lock::F_GETOWN_EX
        | crate::abi::lock::F_SETOWN_EX
        | crate::abi::lock::F_GETSIG
        | crate::abi::lock::F_SETSIG => {
            let f = t.get(fd)?;
            drop(t);
            crate::sys::lock::fcntl_lease(ctx, fd, &f, ctx.int(1))
        }
        F_GETPIPE_SZ | F_SETPIPE_SZ => {
            let f = t.get(fd)?;
            drop(t);
            let p = crate::fs::fifo::pipe_of(f.vnode.as_ref()).ok_or(Errno::EBADF)?;
            if ctx.int(1) == F_GETPIPE_SZ {
                return Ok(p.capacity());
            }
            let c = cred(ctx);
            let privileged = c.capable(crate::kern::cred::CAP_SYS_RESOURCE);
            p.set_capacity(u64::from(ctx.uint(2)), privileged, !privileged && !c.capable(crate::kern::cred::CAP_SYS_ADMIN))
        }
        F_ADD_SEALS | F_GET_SEALS => {
            let f = t.get(fd)?;
            drop(t);
            seals(ctx, &f)
        }
        _ => {
            t.get(fd)?;
            Err(Errno::EINVAL)
        }
    }
}

const F_ADD_SEALS: i32 = crate::abi::c_int(linux::F_ADD_SEALS);
const F_GETPIPE_SZ: i32 = crate::abi::c_int(linux::F_GETPIPE_SZ);
const F_SETPIPE_SZ: i32 = crate::abi::c_int(linux::F_SETPIPE_SZ);
const F_GET_SEALS: i32 = crate::abi::c_int(linux::F_GET_SEALS);

/// F_ADD_SEALS and F_GET_SEALS: a memfd's seals (EINVAL for any other file; adding needs
/// the file open for writing, EPERM).
fn seals(ctx: &Ctx<'_>, f: &File) -> SysResult {
    use crate::abi::event::Seals;
    let m = f.vnode.as_any().and_then(|a| a.downcast_ref::<crate::fs::memfd::MemFd>()).ok_or(Errno::EINVAL)?;
    if ctx.int(1) == F_GET_SEALS {
        return Ok(m.seals().bits() as usize);
    }
    let add = Seals::from_bits(ctx.uint(2)).ok_or(Errno::EINVAL)?;
    if !f.writable() {
        return Err(Errno::EPERM);
    }
    m.add_seals(add)?;
    Ok(0)
}

const FIONCLEX: u32 = 0x5450;
const FIOCLEX: u32 = 0x5451;
const FIONBIO: u32 = 0x5421;
const FIOASYNC: u32 = 0x5452;
/// FS_IOC_GETFLAGS and FS_IOC_SETFLAGS (_IOR/_IOW('f', 1/2, long); the value is an int).
const FS_IOC_GETFLAGS: u32 = 0x8008_6601;
const FS_IOC_SETFLAGS: u32 = 0x4008_6602;
const FIONREAD: u32 = 0x541b;
/// SIOCOUTQ (TIOCOUTQ's number): bytes a socket sent and its peer has not read.
const SIOCOUTQ: u32 = 0x5411;
const SIOCATMARK: u32 = 0x8905;

pub fn sys_ioctl(ctx: &mut Ctx<'_>) -> SysResult {
    let fd = ctx.fd(0);
    let f = file_not_path(ctx, fd)?;
    // Requests every descriptor takes (ioctl_list(2)).
    match ctx.uint(1) {
        FIOCLEX | FIONCLEX => {
            ctx.p.user().files().lock().entry_mut(fd)?.cloexec = ctx.uint(1) == FIOCLEX;
            return Ok(0);
        }
        FIONBIO | FIOASYNC => {
            let on = ctx.read(ctx.ptr::<i32>(2))? != 0;
            let bit = if ctx.uint(1) == FIONBIO { file::O_NONBLOCK } else { file::O_ASYNC };
            set_fl(&f, fd, if on { f.flags() | bit } else { f.flags() & !bit })?;
            return Ok(0);
        }
        // chattr's flags: every file, before the file's own requests (do_vfs_ioctl).
        FS_IOC_GETFLAGS => {
            let flags = f.vnode.attr()?.iflags.ok_or(Errno::ENOTTY)?;
            ctx.write(ctx.ptr::<u32>(2), &flags)?;
            return Ok(0);
        }
        FS_IOC_SETFLAGS => {
            let flags: u32 = ctx.read(ctx.ptr::<u32>(2))?;
            vnops::set_iflags(&cred(ctx), f.as_ref().into(), flags)?;
            return Ok(0);
        }
        // Sockets: FIONREAD (SIOCINQ) and SIOCOUTQ, answered by the socket.
        FIONREAD | SIOCOUTQ if f.vnode.vtype() == VType::Sock => {
            let s = crate::net::file::socket_of(&f)?;
            let n = s.queued(ctx.uint(1) == SIOCOUTQ)?;
            ctx.write(ctx.ptr::<i32>(2), &i32::try_from(n).unwrap_or(i32::MAX))?;
            return Ok(0);
        }
        SIOCATMARK if f.vnode.vtype() == VType::Sock => {
            let s = crate::net::file::socket_of(&f)?;
            let mark = s.at_mark()?;
            ctx.write(ctx.ptr::<i32>(2), &i32::from(mark))?;
            return Ok(0);
        }
        FIONREAD if f.vnode.vtype() == VType::Fifo || f.vnode.vtype() == VType::Reg => {
            let a = f.vnode.attr()?;
            let n = if a.vtype() == VType::Reg { a.size.saturating_sub(*f.offset.lock()) } else { a.size };
            ctx.write(ctx.ptr::<i32>(2), &i32::try_from(n).unwrap_or(i32::MAX))?;
            return Ok(0);
        }
        FIONREAD if let Some(ino) = f.vnode.as_any().and_then(|a| a.downcast_ref::<crate::fs::inotify::Inotify>()) => {
            ctx.write(ctx.ptr::<i32>(2), &i32::try_from(ino.pending_bytes()).unwrap_or(i32::MAX))?;
            return Ok(0);
        }
        _ => {}
    }
    // Block devices, loop devices and loop-control (fs/blockdev.rs, fs/loopdev.rs).
    if let Some(r) = crate::fs::blockdev::ioctl(ctx, &f, ctx.uint(1)) {
        return r;
    }
    // Interface queries (netdevice(7)) on a socket.
    if f.vnode.vtype() == VType::Sock
        && let Some(r) = crate::sys::socket::ioctl(ctx, ctx.uint(1))
    {
        return r;
    }
    let Some(tty) = f.vnode.tty() else { return Err(Errno::ENOTTY) };
    let master = f.vnode.as_any().is_some_and(|a| a.is::<crate::fs::devpts::PtyMaster>());
    crate::kern::tty::ioctl::ioctl(ctx, &tty, master, ctx.uint(1), ctx.arg(2))
}

pub fn sys_pipe2(ctx: &mut Ctx<'_>) -> SysResult {
    let flags = ctx.flags::<Pipe2Flags>(1)?;
    let c = cred(ctx);
    let unprivileged = !c.capable(crate::kern::cred::CAP_SYS_RESOURCE) && !c.capable(crate::kern::cred::CAP_SYS_ADMIN);
    let (r, w) = crate::fs::pipe::new_charged(c.fsuid, c.fsgid, crate::fs::pipe::Charge { ruid: c.uid, unprivileged })?;
    let status = (flags & Pipe2Flags::NONBLOCK).bits();
    let rf = File::new(r, None, file::O_RDONLY | status);
    let wf = File::new(w, None, file::O_WRONLY | status);
    let cloexec = flags.contains(Pipe2Flags::CLOEXEC);
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
    if let Err(e) = ctx.write(ctx.ptr::<[i32; 2]>(0), &[a, b]) {
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
    let out = ctx.file(0)?;
    let inp = ctx.file(1)?;
    let (offp, count) = (ctx.ptr::<i64>(2), ctx.size(3).min(IO_CHUNK));
    if !inp.vnode.seekable() {
        return Err(Errno::EINVAL);
    }
    let off = if offp.is_null() { None } else { Some(u64::try_from(ctx.read(offp)?).map_err(|_| Errno::EINVAL)?) };
    let data = read_file(&inp, off, count)?;
    let n = sigpipe(ctx, write_file(ctx, &out, None, &data))?;
    let (n64, unwritten) = (u64::try_from(n).unwrap_or(u64::MAX), u64::try_from(data.len() - n).unwrap_or(0));
    if let Some(o) = off {
        ctx.write(offp, &i64::try_from(o.saturating_add(n64)).unwrap_or(i64::MAX))?;
    } else if unwritten > 0 {
        // Give back what was read but not written.
        let mut pos = inp.offset.lock();
        *pos = pos.saturating_sub(unwritten);
    }
    Ok(n)
}
