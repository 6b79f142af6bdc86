//! Calls that change the file namespace or attributes: mkdir, unlink, rmdir, rename,
//! symlink, link, chmod, chown, utimensat, truncate, umask, statfs, sync — each in its `*at`
//! form and the older forms musl still calls.

use std::sync::Arc;

use crate::abi::fs::{Fsid, Statfs};
use crate::fs::file::{self, File, O_CLOEXEC, O_CREAT, O_EXCL, O_TRUNC};
use crate::fs::mount;
use crate::fs::namei::{self, NamePath};
use crate::abi;
use crate::fs::vfs::VType;
use crate::fs::vnops::{self, Target, TimeReq};
use crate::vm::uaccess::UserPtr;
use crate::fs::perm;
use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};
use crate::sys::fs::{AT_FDCWD, cred, lookup_at, start_dir};
use crate::sys::fsflags::{AttrFlags, LinkFlags, RenameFlags, UnlinkFlags};


/// The directory holding the last component of `path`, and that component's name.
pub fn lookup_parent(ctx: &Ctx<'_>, dirfd: i32, path: &[u8]) -> Result<(NamePath, Vec<u8>), Errno> {
    lookup_parent_how(ctx, dirfd, path, None).map(|(p, n, _)| (p, n))
}

/// [`lookup_parent`] under openat2(2)'s RESOLVE_* bits `how`; also the restrictions the last
/// name's lookup is under.
pub fn lookup_parent_how(ctx: &Ctx<'_>, dirfd: i32, path: &[u8], how: Option<u64>) -> Result<(NamePath, Vec<u8>, namei::Resolve), Errno> {
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
    let (start, how) = match how {
        Some(how) => crate::sys::fs::start_how(ctx, dirfd, path, how)?,
        None => (start_dir(ctx, dirfd, path)?, namei::Resolve::default()),
    };
    let cred = cred(ctx);
    let parent = namei::lookup_how(&cred, &start, dir, true, &how)?;
    if parent.vnode().vtype() != VType::Dir {
        return Err(Errno::ENOTDIR);
    }
    // The last name is looked up in the parent too: search permission on it.
    perm::may_search(&cred, || parent.vnode().attr())?;
    let name = last.to_vec();
    if name.len() > crate::fs::vfs::NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok((parent, name, how))
}

pub(super) fn umask(ctx: &Ctx<'_>) -> u32 {
    ctx.p.user().fs.lock().umask
}

/// openat(2) with O_CREAT: find or make the file. Returns the path of the file and whether
/// this call created it (then the open needs no permission check).
pub fn open_create(ctx: &Ctx<'_>, dirfd: i32, path: &[u8], flags: u32, mode: u32, how: Option<u64>) -> Result<(NamePath, bool), Errno> {
    let (parent, name, res) = lookup_parent_how(ctx, dirfd, path, how)?;
    let cred = cred(ctx);
    match namei::lookup_how(&cred, &parent, &name, flags & file::O_NOFOLLOW == 0, &res) {
        Ok(np) => {
            if flags & O_EXCL != 0 {
                return Err(Errno::EEXIST);
            }
            Ok((np, false))
        }
        Err(Errno::ENOENT) => {
            vnops::create(&cred, &parent, &name, mode & !umask(ctx) & 0o7777)?;
            Ok((namei::namei(&parent, &name, false)?, true))
        }
        Err(e) => Err(e),
    }
}

/// openat(2) with O_TMPFILE: an unnamed regular file in the directory `path` names. It is
/// made under a hidden name and unlinked at once (so it has no link and vanishes with its
/// last descriptor), as memfds are; linking it back into the tree (linkat with
/// AT_EMPTY_PATH) is not supported. ENOTDIR when `path` is not a directory.
/// O_TMPFILE files that linkat(2) may give a name (opened without O_EXCL): Linux's
/// I_LINKABLE, by vnode; an entry goes when the file is linked, dead ones when more come.
static TMPFILE_LINKABLE: platform::sync::SpinLock<
    Option<std::collections::HashMap<crate::fs::vfs::VnodeId, std::sync::Weak<dyn crate::fs::vfs::Vnode>>>,
> = platform::sync::SpinLock::new("tmpfile_linkable", None);

fn set_linkable(v: &crate::fs::vfs::VnodeRef) {
    let mut g = TMPFILE_LINKABLE.lock();
    let m = g.get_or_insert_with(std::collections::HashMap::new);
    if m.len() >= 64 {
        m.retain(|_, w| w.strong_count() > 0);
    }
    m.insert(v.id(), Arc::downgrade(v));
}

/// Whether `v` (no links left) may be linked again, and if so, no longer (I_LINKABLE is
/// cleared by the link).
fn take_linkable(v: &crate::fs::vfs::VnodeRef) -> bool {
    let mut g = TMPFILE_LINKABLE.lock();
    let Some(m) = g.as_mut() else { return false };
    match m.get(&v.id()).and_then(std::sync::Weak::upgrade) {
        Some(w) if Arc::ptr_eq(&w, v) => m.remove(&v.id()).is_some(),
        _ => false,
    }
}

/// open(2) with O_TMPFILE in `path`: a new file made and unlinked at once; with `flags`
/// lacking O_EXCL it may be linked into a directory later (linkat(2)).
pub fn open_tmpfile(ctx: &Ctx<'_>, dirfd: i32, path: &[u8], mode: u32, flags: u32) -> Result<NamePath, Errno> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let dir = crate::sys::fs::lookup_at(ctx, dirfd, path, true)?;
    if dir.vnode().vtype() != crate::fs::vfs::VType::Dir {
        return Err(Errno::ENOTDIR);
    }
    let cred = cred(ctx);
    loop {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("#{n}").into_bytes();
        match vnops::create(&cred, &dir, &name, mode & !umask(ctx) & 0o7777) {
            Ok(_) => {}
            Err(Errno::EEXIST) => continue,
            Err(e) => return Err(e),
        }
        let np = namei::namei(&dir, &name, false)?;
        vnops::unlink(&cred, &dir, &name, false)?;
        if flags & O_EXCL == 0 {
            set_linkable(np.vnode());
        }
        return Ok(np);
    }
}

pub fn sys_open(ctx: &mut Ctx<'_>) -> SysResult {
    // open(path, flags, mode) is openat(AT_FDCWD, path, flags, mode).
    let r = *ctx.regs;
    ctx.regs.gregs[platform::stub::reg::R10] = r.arg(2);
    ctx.regs.gregs[platform::stub::reg::RDX] = r.arg(1);
    ctx.regs.gregs[platform::stub::reg::RSI] = r.arg(0);
    ctx.regs.gregs[platform::stub::reg::RDI] = u64::from(AT_FDCWD.cast_unsigned());
    let res = crate::sys::fs::sys_openat(ctx);
    *ctx.regs = r;
    res
}

pub fn sys_creat(ctx: &mut Ctx<'_>) -> SysResult {
    // creat(path, mode) is openat(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode).
    let r = *ctx.regs;
    ctx.regs.gregs[platform::stub::reg::R10] = r.arg(1);
    ctx.regs.gregs[platform::stub::reg::RDX] = u64::from(O_CREAT | O_TRUNC | file::O_WRONLY);
    ctx.regs.gregs[platform::stub::reg::RSI] = r.arg(0);
    ctx.regs.gregs[platform::stub::reg::RDI] = u64::from(AT_FDCWD.cast_unsigned());
    let res = crate::sys::fs::sys_openat(ctx);
    *ctx.regs = r;
    res
}

fn mkdir_at(ctx: &Ctx<'_>, dirfd: i32, path: &[u8], mode: u32) -> SysResult {
    let (parent, name) = lookup_parent(ctx, dirfd, path).map_err(|e| if e == Errno::EBUSY { Errno::EEXIST } else { e })?;
    vnops::mkdir(&cred(ctx), &parent, &name, mode & !umask(ctx) & 0o7777)?;
    Ok(0)
}

pub fn sys_mkdirat(ctx: &mut Ctx<'_>) -> SysResult {
    let path = ctx.path(1)?;
    mkdir_at(ctx, ctx.fd(0), &path, ctx.uint(2))
}

pub fn sys_mkdir(ctx: &mut Ctx<'_>) -> SysResult {
    let path = ctx.path(0)?;
    mkdir_at(ctx, AT_FDCWD, &path, ctx.uint(1))
}

fn unlink_at(ctx: &Ctx<'_>, dirfd: i32, path: &[u8], flags: UnlinkFlags) -> SysResult {
    let (parent, name) = lookup_parent(ctx, dirfd, path)?;
    if flags.contains(UnlinkFlags::REMOVEDIR) {
        vnops::rmdir(&cred(ctx), &parent, &name)?;
    } else {
        vnops::unlink(&cred(ctx), &parent, &name, path.last() == Some(&b'/'))?;
    }
    Ok(0)
}

pub fn sys_unlinkat(ctx: &mut Ctx<'_>) -> SysResult {
    let flags = ctx.flags::<UnlinkFlags>(2)?;
    let path = ctx.path(1)?;
    unlink_at(ctx, ctx.fd(0), &path, flags)
}

pub fn sys_unlink(ctx: &mut Ctx<'_>) -> SysResult {
    let path = ctx.path(0)?;
    unlink_at(ctx, AT_FDCWD, &path, UnlinkFlags::empty())
}

pub fn sys_rmdir(ctx: &mut Ctx<'_>) -> SysResult {
    let path = ctx.path(0)?;
    unlink_at(ctx, AT_FDCWD, &path, UnlinkFlags::REMOVEDIR)
}

fn rename_at(ctx: &Ctx<'_>, olddir: i32, old: &[u8], newdir: i32, new: &[u8], flags: RenameFlags) -> SysResult {
    let (op, on) = lookup_parent(ctx, olddir, old)?;
    let (np, nn) = lookup_parent(ctx, newdir, new)?;
    let slash = (old.last() == Some(&b'/'), new.last() == Some(&b'/'));
    vnops::rename(&cred(ctx), &op, &on, &np, &nn, flags.bits(), slash)?;
    Ok(0)
}

pub fn sys_renameat2(ctx: &mut Ctx<'_>) -> SysResult {
    let flags = ctx.flags::<RenameFlags>(4)?; // before the names, as Linux
    let (old, new) = (ctx.path(1)?, ctx.path(3)?);
    rename_at(ctx, ctx.fd(0), &old, ctx.fd(2), &new, flags)
}

pub fn sys_renameat(ctx: &mut Ctx<'_>) -> SysResult {
    let (old, new) = (ctx.path(1)?, ctx.path(3)?);
    rename_at(ctx, ctx.fd(0), &old, ctx.fd(2), &new, RenameFlags::empty())
}

pub fn sys_rename(ctx: &mut Ctx<'_>) -> SysResult {
    let (old, new) = (ctx.path(0)?, ctx.path(1)?);
    rename_at(ctx, AT_FDCWD, &old, AT_FDCWD, &new, RenameFlags::empty())
}

fn symlink_at(ctx: &Ctx<'_>, target: &[u8], dirfd: i32, path: &[u8]) -> SysResult {
    let (parent, name) = lookup_parent(ctx, dirfd, path).map_err(|e| if e == Errno::EBUSY { Errno::EEXIST } else { e })?;
    vnops::symlink(&cred(ctx), &parent, &name, target)?;
    Ok(0)
}

pub fn sys_symlinkat(ctx: &mut Ctx<'_>) -> SysResult {
    let (target, path) = (ctx.path(0)?, ctx.path(2)?);
    symlink_at(ctx, &target, ctx.fd(1), &path)
}

pub fn sys_symlink(ctx: &mut Ctx<'_>) -> SysResult {
    let (target, path) = (ctx.path(0)?, ctx.path(1)?);
    symlink_at(ctx, &target, AT_FDCWD, &path)
}

fn link_at(ctx: &Ctx<'_>, olddir: i32, old: &[u8], newdir: i32, new: &[u8], flags: LinkFlags) -> SysResult {
    let src = if old.is_empty() {
        // AT_EMPTY_PATH: the file `olddir` is open on, for whoever opened it with the same
        // credentials or has CAP_DAC_READ_SEARCH (ENOENT otherwise, as the empty name it then
        // is: Linux's LOOKUP_LINKAT_EMPTY).
        if !flags.contains(LinkFlags::EMPTY_PATH) {
            return Err(Errno::ENOENT);
        }
        let f = ctx.p.user().files().lock().get(olddir)?;
        let me = cred(ctx);
        if !f.opened_by(&me) && !me.capable(crate::kern::cred::CAP_DAC_READ_SEARCH) {
            return Err(Errno::ENOENT);
        }
        f.path.clone().ok_or(Errno::EXDEV)? // a pipe or socket: on no mount of ours
    } else {
        lookup_at(ctx, olddir, old, flags.contains(LinkFlags::SYMLINK_FOLLOW))?
    };
    let (parent, name) = lookup_parent(ctx, newdir, new)?;
    // vfs_link: a file with no links left is linked only if it is an O_TMPFILE file opened
    // without O_EXCL, and only once.
    let orphan = src.vnode().attr()?.nlink == 0;
    if orphan && (!Arc::ptr_eq(src.mount(), parent.mount()) || !take_linkable(src.vnode())) {
        return Err(if Arc::ptr_eq(src.mount(), parent.mount()) { Errno::ENOENT } else { Errno::EXDEV });
    }
    let r = vnops::link(&cred(ctx), &src, &parent, &name);
    if r.is_err() && orphan {
        set_linkable(src.vnode()); // not linked after all: it still may be
    }
    r?;
    Ok(0)
}

pub fn sys_linkat(ctx: &mut Ctx<'_>) -> SysResult {
    let flags = ctx.flags::<LinkFlags>(4)?; // before the names, as Linux
    // An empty old name is AT_EMPTY_PATH's (checked in link_at).
    let old = if flags.contains(LinkFlags::EMPTY_PATH) {
        ctx.read_cstr(ctx.ptr(1), namei::PATH_MAX)?
    } else {
        ctx.path(1)?
    };
    let new = ctx.path(3)?;
    link_at(ctx, ctx.fd(0), &old, ctx.fd(2), &new, flags)
}

pub fn sys_link(ctx: &mut Ctx<'_>) -> SysResult {
    let (old, new) = (ctx.path(0)?, ctx.path(1)?);
    link_at(ctx, AT_FDCWD, &old, AT_FDCWD, &new, LinkFlags::empty())
}

/// What a path-or-descriptor call names: a path, or an open file.
enum Named {
    Path(NamePath),
    File(Arc<File>),
}

impl Named {
    fn target(&self) -> Target<'_> {
        match self {
            Named::Path(np) => np.into(),
            Named::File(f) => f.as_ref().into(),
        }
    }
}

/// The open file descriptor `fd` names.
fn fd_named(ctx: &Ctx<'_>, fd: i32) -> Result<Named, Errno> {
    Ok(Named::File(ctx.p.user().files().lock().get(fd)?))
}

/// The file a path or descriptor call names (an empty path with AT_EMPTY_PATH: `dirfd`).
fn target(ctx: &Ctx<'_>, dirfd: i32, path_arg: usize, flags: AttrFlags) -> Result<Named, Errno> {
    let path = ctx.read_cstr(ctx.ptr(path_arg), namei::PATH_MAX)?;
    if path.is_empty() {
        if !flags.contains(AttrFlags::EMPTY_PATH) {
            return Err(Errno::ENOENT);
        }
        if dirfd == AT_FDCWD {
            return Ok(Named::Path(ctx.p.user().fs.lock().cwd.clone()));
        }
        return fd_named(ctx, dirfd);
    }
    Ok(Named::Path(lookup_at(ctx, dirfd, &path, !flags.contains(AttrFlags::SYMLINK_NOFOLLOW))?))
}

fn chmod(ctx: &Ctx<'_>, t: &Named, mode: u32) -> SysResult {
    vnops::chmod(&cred(ctx), t.target(), mode)?;
    Ok(0)
}

pub fn sys_fchmodat(ctx: &mut Ctx<'_>) -> SysResult {
    let t = target(ctx, ctx.fd(0), 1, AttrFlags::empty())?;
    chmod(ctx, &t, ctx.uint(2))
}

/// fchmodat2(2): fchmodat with flags; a symbolic link's own mode cannot be changed
/// (AT_SYMLINK_NOFOLLOW on one: EOPNOTSUPP, as Linux answers).
pub fn sys_fchmodat2(ctx: &mut Ctx<'_>) -> SysResult {
    let flags = AttrFlags::from_bits(ctx.uint(3)).ok_or(Errno::EINVAL)?;
    let t = target(ctx, ctx.fd(0), 1, flags)?;
    if flags.contains(AttrFlags::SYMLINK_NOFOLLOW) && t.target().vnode.vtype() == crate::fs::vfs::VType::Lnk {
        return Err(Errno::EOPNOTSUPP);
    }
    chmod(ctx, &t, ctx.uint(2))
}

pub fn sys_chmod(ctx: &mut Ctx<'_>) -> SysResult {
    let t = target(ctx, AT_FDCWD, 0, AttrFlags::empty())?;
    chmod(ctx, &t, ctx.uint(1))
}

/// fchmod(2) and fchown(2) refuse an O_PATH descriptor (EBADF), as Linux's fdget does.
fn fd_not_path(ctx: &Ctx<'_>) -> Result<Named, Errno> {
    let f = ctx.p.user().files().lock().get(ctx.fd(0))?;
    if f.flags() & file::O_PATH != 0 {
        return Err(Errno::EBADF);
    }
    Ok(Named::File(f))
}

pub fn sys_fchmod(ctx: &mut Ctx<'_>) -> SysResult {
    let t = fd_not_path(ctx)?;
    chmod(ctx, &t, ctx.uint(1))
}

fn chown(ctx: &Ctx<'_>, t: &Named, uid: u32, gid: u32) -> SysResult {
    let some = |x: u32| (x != u32::MAX).then_some(x);
    vnops::chown(&cred(ctx), t.target(), some(uid), some(gid))?;
    Ok(0)
}

pub fn sys_fchownat(ctx: &mut Ctx<'_>) -> SysResult {
    let flags = ctx.flags::<AttrFlags>(4)?;
    let t = target(ctx, ctx.fd(0), 1, flags)?;
    chown(ctx, &t, ctx.uint(2), ctx.uint(3))
}

pub fn sys_chown(ctx: &mut Ctx<'_>) -> SysResult {
    let t = target(ctx, AT_FDCWD, 0, AttrFlags::empty())?;
    chown(ctx, &t, ctx.uint(1), ctx.uint(2))
}

pub fn sys_lchown(ctx: &mut Ctx<'_>) -> SysResult {
    let t = target(ctx, AT_FDCWD, 0, AttrFlags::SYMLINK_NOFOLLOW)?;
    chown(ctx, &t, ctx.uint(1), ctx.uint(2))
}

pub fn sys_fchown(ctx: &mut Ctx<'_>) -> SysResult {
    let t = fd_not_path(ctx)?;
    chown(ctx, &t, ctx.uint(1), ctx.uint(2))
}

/// utimensat(2), in Linux's order: both times UTIME_OMIT is success before anything else
/// is looked at ("we must not even check the path"); a null path names `dirfd` itself
/// (futimens(3), which takes no flags); then the flags, the path, the times (EINVAL), EROFS.
pub fn sys_utimensat(ctx: &mut Ctx<'_>) -> SysResult {
    let (dirfd, flags) = (ctx.fd(0), ctx.uint(3));
    let times = ctx.ptr::<[abi::time::Timespec; 2]>(2);
    let raw = if times.is_null() { None } else { Some(ctx.read(times)?) };
    let omit = |t: &abi::time::Timespec| TimeReq::decode(t.tv_sec, t.tv_nsec) == Ok(TimeReq::Omit);
    if raw.as_ref().is_some_and(|[a, m]| omit(a) && omit(m)) {
        return Ok(0);
    }
    let t = if ctx.arg(1) == 0 && dirfd != AT_FDCWD {
        if flags != 0 {
            return Err(Errno::EINVAL);
        }
        fd_named(ctx, dirfd)?
    } else {
        target(ctx, dirfd, 1, AttrFlags::from_bits(flags).ok_or(Errno::EINVAL)?)?
    };
    let req = match raw {
        None => [TimeReq::Now, TimeReq::Now],
        Some([a, m]) => [TimeReq::decode(a.tv_sec, a.tv_nsec)?, TimeReq::decode(m.tv_sec, m.tv_nsec)?],
    };
    vnops::utimens(&cred(ctx), t.target(), req)?;
    Ok(0)
}

/// futimesat(2), utimes(2), utime(2): utimensat's older forms, with microseconds (struct
/// timeval; EINVAL for tv_usec outside 0..1000000) or seconds (struct utimbuf); no times
/// means now. A null path with futimesat's descriptor sets that file's times.
fn old_utimes(ctx: &Ctx<'_>, dirfd: i32, path_arg: usize, times: Option<[(i64, i64); 2]>) -> SysResult {
    let t = if ctx.arg(path_arg) == 0 && dirfd != AT_FDCWD { fd_named(ctx, dirfd)? } else { target(ctx, dirfd, path_arg, AttrFlags::empty())? };
    let req = match times {
        None => [TimeReq::Now, TimeReq::Now],
        Some([a, m]) => [TimeReq::decode(a.0, a.1)?, TimeReq::decode(m.0, m.1)?],
    };
    vnops::utimens(&cred(ctx), t.target(), req)?;
    Ok(0)
}

/// Two `struct timeval`s as (seconds, nanoseconds).
fn timevals(ctx: &Ctx<'_>, arg: usize) -> Result<Option<[(i64, i64); 2]>, Errno> {
    let p = ctx.ptr::<[abi::time::Timeval; 2]>(arg);
    if p.is_null() {
        return Ok(None);
    }
    let tv = ctx.read(p)?;
    let ns = |t: &abi::time::Timeval| if (0..1_000_000).contains(&t.tv_usec) { Ok((t.tv_sec, t.tv_usec * 1000)) } else { Err(Errno::EINVAL) };
    Ok(Some([ns(&tv[0])?, ns(&tv[1])?]))
}

pub fn sys_futimesat(ctx: &mut Ctx<'_>) -> SysResult {
    let times = timevals(ctx, 2)?;
    old_utimes(ctx, ctx.fd(0), 1, times)
}

pub fn sys_utimes(ctx: &mut Ctx<'_>) -> SysResult {
    let times = timevals(ctx, 1)?;
    old_utimes(ctx, AT_FDCWD, 0, times)
}

/// utime(2): `struct utimbuf` is two longs, access and modification time in seconds.
pub fn sys_utime(ctx: &mut Ctx<'_>) -> SysResult {
    let p = ctx.ptr::<[i64; 2]>(1);
    let times = if p.is_null() { None } else { ctx.read(p).map(|[a, m]| Some([(a, 0), (m, 0)]))? };
    old_utimes(ctx, AT_FDCWD, 0, times)
}

pub fn sys_truncate(ctx: &mut Ctx<'_>) -> SysResult {
    let len = ctx.offset(1)?;
    let t = target(ctx, AT_FDCWD, 0, AttrFlags::empty())?;
    crate::sys::fs::fsize_truncate(ctx, t.target().vnode, len)?;
    // A program being run is not truncated (ETXTBSY, do_truncate's get_write_access).
    let _access = if t.target().vnode.vtype() == crate::fs::vfs::VType::Reg {
        Some(crate::fs::writecount::WriteAccess::get(t.target().vnode)?)
    } else {
        None
    };
    // A conflicting lease gives way first, as to an open for writing (vfs_truncate).
    crate::fs::lease::break_lease(t.target().vnode.id(), crate::fs::file::O_WRONLY)?;
    vnops::truncate(&cred(ctx), t.target(), len, true)?;
    Ok(0)
}

pub fn sys_ftruncate(ctx: &mut Ctx<'_>) -> SysResult {
    let len = ctx.offset(1)?;
    let f = ctx.file(0)?;
    if !f.writable() {
        return Err(Errno::EINVAL);
    }
    crate::sys::fs::fsize_truncate(ctx, &f.vnode, len)?;
    vnops::truncate(&cred(ctx), f.as_ref().into(), len, false)?;
    Ok(0)
}

pub fn sys_umask(ctx: &mut Ctx<'_>) -> SysResult {
    let mut fs = ctx.p.user().fs.lock();
    let old = fs.umask;
    fs.umask = ctx.uint(0) & 0o777;
    Ok(old as usize)
}

/// statfs(2) of the file system `t` is on, with its mount's flags in f_flags.
fn statfs_out(ctx: &Ctx<'_>, t: Target<'_>, buf: UserPtr<Statfs>) -> SysResult {
    let s = t.vnode.fs().statfs()?;
    let dev = t.vnode.attr()?.dev;
    let i = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let out = Statfs {
        f_type: i(s.magic),
        f_bsize: i(s.bsize),
        f_blocks: i(s.blocks),
        f_bfree: i(s.bfree),
        f_bavail: i(s.bfree),
        f_files: i(s.files),
        f_ffree: i(s.ffree),
        f_fsid: Fsid { val: [i32::from_ne_bytes(u32::try_from(dev & 0xffff_ffff).unwrap_or(0).to_ne_bytes()), 0] },
        f_namelen: i(crate::fs::vfs::NAME_MAX as u64),
        f_frsize: i(s.bsize),
        f_flags: i(t.mount.map_or(0, |m| m.flags().statfs_flags())),
        f_spare: [0; 4],
    };
    ctx.write(buf, &out)?;
    Ok(0)
}

pub fn sys_statfs(ctx: &mut Ctx<'_>) -> SysResult {
    let t = target(ctx, AT_FDCWD, 0, AttrFlags::empty())?;
    statfs_out(ctx, t.target(), ctx.ptr(1))
}

pub fn sys_fstatfs(ctx: &mut Ctx<'_>) -> SysResult {
    let t = fd_named(ctx, ctx.fd(0))?;
    statfs_out(ctx, t.target(), ctx.ptr(1))
}

/// ustat(2) of the mounted file system whose device number (old 32-bit encoding, as
/// `st_dev` shows it) is `dev`: its free blocks and inodes; EINVAL when none is mounted.
pub fn sys_ustat(ctx: &mut Ctx<'_>) -> SysResult {
    let dev = u64::from(ctx.uint(0));
    let m = mount::mounts()
        .into_iter()
        .find(|m| m.root.attr().is_ok_and(|a| a.dev == dev))
        .ok_or(Errno::EINVAL)?;
    let s = m.fs.statfs()?;
    let out = abi::fs::Ustat {
        f_tfree: i32::try_from(s.bfree).unwrap_or(i32::MAX),
        f_tinode: s.ffree,
        ..Default::default()
    };
    ctx.write(ctx.ptr(1), &out)?;
    Ok(0)
}

/// sync_file_range(fd, offset, nbytes, flags): the flags known (EINVAL), the range not
/// negative (EINVAL), a file with data to write back (ESPIPE otherwise). With
/// SYNC_FILE_RANGE_WRITE or _WAIT_AFTER the file is written back as fsync does (the whole
/// file: vk keeps no per-range dirty state).
pub fn sys_sync_file_range(ctx: &mut Ctx<'_>) -> SysResult {
    const WAIT_BEFORE: u32 = 1;
    const WRITE: u32 = 2;
    const WAIT_AFTER: u32 = 4;
    let f = crate::sys::fs::file_not_path(ctx, ctx.fd(0))?;
    let off = i64::from_ne_bytes(ctx.arg(1).to_ne_bytes());
    let len = i64::from_ne_bytes(ctx.arg(2).to_ne_bytes());
    let flags = ctx.uint(3);
    if flags & !(WAIT_BEFORE | WRITE | WAIT_AFTER) != 0 || off < 0 || len < 0 || off.checked_add(len).is_none() {
        return Err(Errno::EINVAL);
    }
    if !matches!(f.vnode.vtype(), VType::Reg | VType::Dir | VType::Lnk | VType::Blk) {
        return Err(Errno::ESPIPE);
    }
    if flags & (WRITE | WAIT_AFTER) != 0 {
        vnops::fsync(f.vnode.as_ref())?;
    }
    Ok(0)
}

/// fsync(2), fdatasync(2), syncfs(2): write back the file system the descriptor is on (an
/// ext2 disk: its dirty buffers, inodes and metadata; EIO if the disk fails; nothing to do
/// for the others).
/// fsync(2), fdatasync(2): EINVAL for a file that cannot be synchronized (Linux: no fsync
/// operation — pipes, sockets, terminals, /dev/null and the other character devices, the
/// event files).
pub fn sys_fsync(ctx: &mut Ctx<'_>) -> SysResult {
    let f = ctx.p.user().files().lock().get(ctx.fd(0))?;
    if !matches!(f.vnode.vtype(), VType::Reg | VType::Dir | VType::Lnk | VType::Blk) {
        return Err(Errno::EINVAL);
    }
    vnops::fsync(f.vnode.as_ref())?;
    Ok(0)
}

/// syncfs(2): the file system of any descriptor.
pub fn sys_syncfs(ctx: &mut Ctx<'_>) -> SysResult {
    let f = ctx.p.user().files().lock().get(ctx.fd(0))?;
    vnops::fsync(f.vnode.as_ref())?;
    Ok(0)
}

pub fn sys_sync(_ctx: &mut Ctx<'_>) -> SysResult {
    crate::kern::syncer::sync_pass();
    Ok(0)
}

/// Used by openat: O_CLOEXEC passes through.
pub const CLOEXEC: u32 = O_CLOEXEC;
