//! The VFS's operations on names and files (BSD's vfs_vnops.c, Linux's `vfs_*` calls in
//! fs/namei.c): what every file system shares is checked here, once — the mount's flags
//! (a read-only mount refuses every change with EROFS, [`mount::want_write`]), names that
//! exist or not, mount points, the rules of rename(2) and the decoding of attribute changes —
//! and then the file system's [`Vnode`] method only carries the change out.
//!
//! The system calls (sys/fsops.rs) resolve paths and decode arguments, then call these with
//! the caller's credentials; the permission checks (fs/perm.rs: may_create, may_delete,
//! setattr_prepare, …) are made here, beside the mount checks, in Linux's order.
//!
//! Each change tells the name cache which names it changed ([`namecache::invalidate`]) once
//! the file system is done, whether it succeeded or not.
//!
//! **Directory locks.** A change holds the lock of each directory it changes from its first
//! check to its end (Linux's i_rwsem of a directory), so that what it checked still holds
//! when the file system acts: locks are hashed by vnode identity into [`DIR_LOCKS`] and taken
//! in index order. A rename between two directories first takes [`RENAME_LOCK`] (Linux's
//! s_vfs_rename_mutex), so that no other such rename moves the directories' ancestors while
//! it checks that a directory is not moved under itself. Lock order: `rename` → `dirlock`s
//! (ascending) → the file system's own locks.

use std::sync::Arc;

use linux_raw_sys::general as linux;

use crate::kern::conv::bucket;
use crate::fs::file::File;
use crate::fs::inotify;
use crate::fs::mount::{self, AtimePolicy, MountRef};
use crate::fs::namecache;
use crate::fs::namei::NamePath;
use crate::fs::perm;
use crate::fs::vfs::{SetAttr, Timespec, VType, Vnode, VnodeId, VnodeRef};
use crate::kern::cred::Cred;
use crate::kern::errno::Errno;
use crate::kern::sleeplock::{SleepGuard, SleepLock};

/// Directory locks, hashed by vnode identity.
static DIR_LOCKS: [SleepLock<()>; 64] = [const { SleepLock::new("dirlock", ()) }; 64];
/// Held by a rename between two directories.
static RENAME_LOCK: SleepLock<()> = SleepLock::new("rename", ());

/// The locks of the directories `dirs`, taken in index order (each once).
fn lock_dirs(dirs: &[VnodeId]) -> Vec<SleepGuard<'static, ()>> {
    let mut idx: Vec<usize> = dirs.iter().map(|id| bucket(id.fs.wrapping_mul(0x9e37_79b9).wrapping_add(id.ino), DIR_LOCKS.len())).collect();
    idx.sort_unstable();
    idx.dedup();
    idx.into_iter().map(|i| DIR_LOCKS[i].lock()).collect()
}

/// The lock of one directory.
fn lock_dir(dir: &NamePath) -> Vec<SleepGuard<'static, ()>> {
    lock_dirs(&[dir.vnode().id()])
}

/// A file a change applies to and the mount it was reached through (None for a file of no
/// mount: a pipe, the console init was given).
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub vnode: &'a VnodeRef,
    pub mount: Option<&'a MountRef>,
    /// The path it was reached by, when it was (inotify tells its directory).
    pub path: Option<&'a NamePath>,
}

impl<'a> From<&'a NamePath> for Target<'a> {
    fn from(np: &'a NamePath) -> Target<'a> {
        Target { vnode: np.vnode(), mount: Some(np.mount()), path: Some(np) }
    }
}

impl<'a> From<&'a File> for Target<'a> {
    fn from(f: &'a File) -> Target<'a> {
        Target { vnode: &f.vnode, mount: f.mount(), path: f.path.as_ref() }
    }
}

/// Whether `dir` has an entry `name`.
fn exists(dir: &NamePath, name: &[u8]) -> bool {
    dir.vnode().lookup(name).is_ok()
}

/// Create the regular file `name` in `dir` (open(2) with O_CREAT, creat(2), mknod(2)) with
/// `mode` (the umask applied): EROFS, then write and search permission on `dir` (may_create);
/// the owner and group are the caller's as `perm::new_owner` says.
pub fn create(cred: &Cred, dir: &NamePath, name: &[u8], mode: u32) -> Result<VnodeRef, Errno> {
    let _w = mount::want_write(Some(dir.mount()))?;
    let _l = lock_dir(dir);
    let da = dir.vnode().attr()?;
    perm::may_create(cred, &da)?;
    let (uid, gid, mode) = perm::new_owner(cred, &da, mode, false);
    let r = dir.vnode().create(name, mode, uid, gid);
    namecache::invalidate(dir.vnode().id(), name);
    if r.is_ok() {
        inotify::event(dir.vnode(), inotify::IN_CREATE, 0, name);
    }
    r
}

/// mkdir(2): EEXIST, then EROFS (Linux's filename_create), then may_create.
pub fn mkdir(cred: &Cred, dir: &NamePath, name: &[u8], mode: u32) -> Result<VnodeRef, Errno> {
    let _l = lock_dir(dir);
    if name == b"." || name == b".." || exists(dir, name) {
        return Err(Errno::EEXIST);
    }
    let _w = mount::want_write(Some(dir.mount()))?;
    let da = dir.vnode().attr()?;
    perm::may_create(cred, &da)?;
    let (uid, gid, mode) = perm::new_owner(cred, &da, mode, true);
    let r = dir.vnode().mkdir(name, mode, uid, gid);
    namecache::invalidate(dir.vnode().id(), name);
    if r.is_ok() {
        inotify::event(dir.vnode(), inotify::IN_CREATE | inotify::IN_ISDIR, 0, name);
    }
    r
}

/// mknod(2) of a special file without data (a socket bound to a path, a FIFO): EEXIST,
/// EROFS, then may_create, as `mkdir`; `mode` carries the type and the permission bits (the
/// umask applied).
pub fn mknod(cred: &Cred, dir: &NamePath, name: &[u8], mode: u32) -> Result<VnodeRef, Errno> {
    let _l = lock_dir(dir);
    if name == b"." || name == b".." || exists(dir, name) {
        return Err(Errno::EEXIST);
    }
    let _w = mount::want_write(Some(dir.mount()))?;
    let da = dir.vnode().attr()?;
    perm::may_create(cred, &da)?;
    let (uid, gid, perms) = perm::new_owner(cred, &da, mode & 0o7777, false);
    let r = dir.vnode().mknod(name, (mode & crate::fs::vfs::S_IFMT) | perms, uid, gid);
    namecache::invalidate(dir.vnode().id(), name);
    if r.is_ok() {
        inotify::event(dir.vnode(), inotify::IN_CREATE, 0, name);
    }
    r
}

/// mknod(2) of a device node: as [`mknod`], for the device number `rdev` (the caller has
/// checked CAP_MKNOD).
pub fn mknod_dev(cred: &Cred, dir: &NamePath, name: &[u8], mode: u32, rdev: u64) -> Result<VnodeRef, Errno> {
    let _l = lock_dir(dir);
    if name == b"." || name == b".." || exists(dir, name) {
        return Err(Errno::EEXIST);
    }
    let _w = mount::want_write(Some(dir.mount()))?;
    let da = dir.vnode().attr()?;
    perm::may_create(cred, &da)?;
    let (uid, gid, perms) = perm::new_owner(cred, &da, mode & 0o7777, false);
    let r = dir.vnode().mknod_dev(name, (mode & crate::fs::vfs::S_IFMT) | perms, rdev, uid, gid);
    namecache::invalidate(dir.vnode().id(), name);
    if r.is_ok() {
        inotify::event(dir.vnode(), inotify::IN_CREATE, 0, name);
    }
    r
}

/// symlink(2): a link `name` in `dir` whose text is `target`; checked as `mkdir`.
pub fn symlink(cred: &Cred, dir: &NamePath, name: &[u8], target: &[u8]) -> Result<(), Errno> {
    let _l = lock_dir(dir);
    if name == b"." || name == b".." || exists(dir, name) {
        return Err(Errno::EEXIST);
    }
    let _w = mount::want_write(Some(dir.mount()))?;
    let da = dir.vnode().attr()?;
    perm::may_create(cred, &da)?;
    let (uid, gid, _) = perm::new_owner(cred, &da, 0o777, false);
    let r = dir.vnode().symlink(name, target, uid, gid);
    namecache::invalidate(dir.vnode().id(), name);
    if r.is_ok() {
        inotify::event(dir.vnode(), inotify::IN_CREATE, 0, name);
    }
    r
}

/// link(2): another name for `src` in `dir`, in Linux's order (do_linkat, vfs_link): EEXIST
/// for a name in use, EROFS, EXDEV across mounts (even of one file system), the
/// protected_hardlinks rule on `src` (may_linkat: EPERM), may_create on `dir` (EACCES),
/// EPERM for a directory.
pub fn link(cred: &Cred, src: &NamePath, dir: &NamePath, name: &[u8]) -> Result<(), Errno> {
    let _l = lock_dir(dir);
    if name == b"." || name == b".." || exists(dir, name) {
        return Err(Errno::EEXIST);
    }
    let _w = mount::want_write(Some(dir.mount()))?;
    if !Arc::ptr_eq(src.mount(), dir.mount()) {
        return Err(Errno::EXDEV);
    }
    let sa = src.vnode().attr()?;
    perm::may_link(cred, &sa)?;
    perm::may_create(cred, &dir.vnode().attr()?)?;
    if sa.vtype() == VType::Dir {
        return Err(Errno::EPERM);
    }
    let r = dir.vnode().link(name, src.vnode());
    namecache::invalidate(dir.vnode().id(), name);
    if r.is_ok() {
        inotify::event(src.vnode(), inotify::IN_ATTRIB, 0, b"");
        inotify::event(dir.vnode(), inotify::IN_CREATE, 0, name);
    }
    r
}

/// unlink(2) of `name` in `dir`: EROFS, ENOENT, a trailing slash (`slash`: EISDIR for a
/// directory, ENOTDIR otherwise), may_delete (write and search on `dir`, the sticky rule),
/// EISDIR for a directory.
pub fn unlink(cred: &Cred, dir: &NamePath, name: &[u8], slash: bool) -> Result<(), Errno> {
    let _w = mount::want_write(Some(dir.mount()))?;
    let _l = lock_dir(dir);
    let v = dir.vnode().lookup(name)?;
    let is_dir = v.vtype() == VType::Dir;
    if slash {
        return Err(if is_dir { Errno::EISDIR } else { Errno::ENOTDIR });
    }
    perm::may_delete(cred, &dir.vnode().attr()?, &v.attr()?)?;
    if is_dir {
        return Err(Errno::EISDIR);
    }
    let r = dir.vnode().unlink(name);
    namecache::invalidate(dir.vnode().id(), name);
    if r.is_ok() {
        inotify::removed(dir.vnode(), name, &v);
    }
    r
}

/// rmdir(2) of `name` in `dir`: EINVAL for `.`, ENOTEMPTY for `..`, EROFS, ENOENT,
/// may_delete, ENOTDIR, EBUSY for a mount point, then the file system's ENOTEMPTY.
pub fn rmdir(cred: &Cred, dir: &NamePath, name: &[u8]) -> Result<(), Errno> {
    match name {
        b"." => return Err(Errno::EINVAL),
        b".." => return Err(Errno::ENOTEMPTY),
        _ => {}
    }
    let _w = mount::want_write(Some(dir.mount()))?;
    let _l = lock_dir(dir);
    let v = dir.vnode().lookup(name)?;
    perm::may_delete(cred, &dir.vnode().attr()?, &v.attr()?)?;
    if v.vtype() != VType::Dir {
        return Err(Errno::ENOTDIR);
    }
    if mount::is_mount_point(&v) {
        return Err(Errno::EBUSY);
    }
    let r = dir.vnode().rmdir(name);
    namecache::invalidate(dir.vnode().id(), name);
    namecache::purge_dir(v.id());
    if r.is_ok() {
        inotify::removed(dir.vnode(), name, &v);
    }
    r
}

/// renameat2(2)'s flags.
pub const RENAME_NOREPLACE: u32 = linux::RENAME_NOREPLACE;
pub const RENAME_EXCHANGE: u32 = linux::RENAME_EXCHANGE;
pub const RENAME_WHITEOUT: u32 = linux::RENAME_WHITEOUT;

/// Most `..` steps walked looking for an ancestor before giving up (ELOOP).
const MAX_DEPTH: usize = 4096;

/// Whether the directory `anc` is `dir` or above it, walking `..` up to the root of `dir`'s
/// file system.
fn is_ancestor(anc: VnodeId, dir: &VnodeRef) -> Result<bool, Errno> {
    let mut cur = Arc::clone(dir);
    for _ in 0..MAX_DEPTH {
        let id = cur.id();
        if id == anc {
            return Ok(true);
        }
        match cur.parent() {
            Ok(up) if up.id() != id => cur = up,
            _ => return Ok(false), // the root
        }
    }
    Err(Errno::ELOOP)
}

/// The directory's entry `name`, if it has one.
fn entry(dir: &NamePath, name: &[u8]) -> Result<Option<VnodeRef>, Errno> {
    match dir.vnode().lookup(name) {
        Ok(v) => Ok(Some(v)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// rename(2) and renameat2(2): `oldname` in `olddir` becomes `newname` in `newdir`, with
/// Linux's rules in Linux's order (do_renameat2, vfs_rename): flags (EINVAL for unknown ones
/// and for EXCHANGE with another), EXDEV across mounts, EBUSY for `.` and `..` (EEXIST with
/// NOREPLACE for a new name of `.`/`..`), EROFS, ENOENT for no source, EEXIST for NOREPLACE
/// over a name in use, ENOENT for EXCHANGE with none, ENOTDIR for a non-directory named with
/// a trailing slash (`slash`: the old name's, the new name's), EINVAL for a directory moved
/// under itself, ENOTEMPTY (EINVAL with EXCHANGE) over a directory above the source, success
/// doing nothing for two names of one file, ENOTDIR/EISDIR for a directory over a
/// non-directory and the reverse, EBUSY for a mount point, ENOTEMPTY over a directory with
/// entries, then EINVAL for a flag the file system cannot carry out (ext2 cannot exchange).
/// Permission (perm::may_rename: may_delete on both sides or may_create for a new name, and
/// write permission on a directory moved to another parent, for its `..`) is checked after
/// the two-names-of-one-file case and before the type checks, as vfs_rename does.
pub fn rename(
    cred: &Cred,
    olddir: &NamePath,
    oldname: &[u8],
    newdir: &NamePath,
    newname: &[u8],
    flags: u32,
    slash: (bool, bool),
) -> Result<(), Errno> {
    if flags & !(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT) != 0
        || (flags & RENAME_EXCHANGE != 0 && flags & (RENAME_NOREPLACE | RENAME_WHITEOUT) != 0)
    {
        return Err(Errno::EINVAL);
    }
    if !Arc::ptr_eq(olddir.mount(), newdir.mount()) {
        return Err(Errno::EXDEV);
    }
    if oldname == b"." || oldname == b".." {
        return Err(Errno::EBUSY);
    }
    if newname == b"." || newname == b".." {
        return Err(if flags & RENAME_NOREPLACE != 0 { Errno::EEXIST } else { Errno::EBUSY });
    }
    let _w = mount::want_write(Some(olddir.mount()))?;
    let (od, nd) = (olddir.vnode(), newdir.vnode());
    let cross = od.id() != nd.id();
    let _r = cross.then(|| RENAME_LOCK.lock());
    // Lock the directories, and a directory about to be replaced (no entry may appear in
    // it); then what the checks below see is what the file system acts on. Should the target
    // have changed before its lock was taken, again.
    let dir_id = |v: &Option<VnodeRef>| v.as_ref().filter(|d| d.vtype() == VType::Dir).map(|d| d.id());
    let (src, dst, _l) = loop {
        let victim = dir_id(&entry(newdir, newname)?);
        let mut dirs = vec![od.id(), nd.id()];
        dirs.extend(victim);
        let l = lock_dirs(&dirs);
        let src = od.lookup(oldname)?;
        let dst = entry(newdir, newname)?;
        if dir_id(&dst) == victim {
            break (src, dst, l);
        }
    };
    if flags & RENAME_NOREPLACE != 0 && dst.is_some() {
        return Err(Errno::EEXIST);
    }
    if flags & RENAME_EXCHANGE != 0 && dst.is_none() {
        return Err(Errno::ENOENT);
    }
    let src_dir = src.vtype() == VType::Dir;
    let exchange = flags & RENAME_EXCHANGE != 0;
    let (old_slash, new_slash) = slash;
    if exchange && new_slash && dst.as_ref().is_some_and(|d| d.vtype() != VType::Dir) {
        return Err(Errno::ENOTDIR);
    }
    if !src_dir && (old_slash || (!exchange && new_slash)) {
        return Err(Errno::ENOTDIR);
    }
    if cross {
        if src_dir && is_ancestor(src.id(), nd)? {
            return Err(Errno::EINVAL);
        }
        if let Some(d) = dst.as_ref().filter(|d| d.vtype() == VType::Dir)
            && is_ancestor(d.id(), od)?
        {
            return Err(if exchange { Errno::EINVAL } else { Errno::ENOTEMPTY });
        }
    }
    if let Some(d) = &dst
        && d.id() == src.id()
    {
        return Ok(()); // rename(2): two names of one file: nothing to do
    }
    let target = dst.as_ref().map(|d| d.attr()).transpose()?;
    perm::may_rename(cred, &od.attr()?, &src.attr()?, &nd.attr()?, target.as_ref())?;
    let replaces_dir = match &dst {
        Some(d) if !exchange => match (src_dir, d.vtype() == VType::Dir) {
            (true, false) => return Err(Errno::ENOTDIR),
            (false, true) => return Err(Errno::EISDIR),
            (dir, _) => dir,
        },
        _ => false,
    };
    if mount::is_mount_point(&src) || dst.as_ref().is_some_and(mount::is_mount_point) {
        return Err(Errno::EBUSY);
    }
    if let Some(d) = dst.as_ref().filter(|_| replaces_dir)
        && !d.readdir()?.is_empty()
    {
        return Err(Errno::ENOTEMPTY);
    }
    if flags & !od.fs().rename_flags() != 0 {
        return Err(Errno::EINVAL);
    }
    let r = od.rename(oldname, nd, newname, flags);
    namecache::invalidate(od.id(), oldname);
    namecache::invalidate(nd.id(), newname);
    if replaces_dir && let Some(d) = &dst {
        namecache::purge_dir(d.id());
    }
    if r.is_ok() && inotify::active() {
        renamed(od, oldname, nd, newname, &src, dst.as_ref(), exchange);
    }
    r
}

/// inotify's events of a rename: IN_MOVED_FROM and IN_MOVED_TO with one cookie, IN_MOVE_SELF
/// on what moved; a replaced file loses a link (IN_ATTRIB, and IN_DELETE_SELF for its last).
fn renamed(od: &VnodeRef, oldname: &[u8], nd: &VnodeRef, newname: &[u8], src: &VnodeRef, dst: Option<&VnodeRef>, exchange: bool) {
    let isdir = |v: &VnodeRef| if v.vtype() == VType::Dir { inotify::IN_ISDIR } else { 0 };
    let c = inotify::cookie();
    inotify::event(od, inotify::IN_MOVED_FROM | isdir(src), c, oldname);
    inotify::event(nd, inotify::IN_MOVED_TO | isdir(src), c, newname);
    inotify::event(src, inotify::IN_MOVE_SELF, 0, b"");
    match dst {
        Some(d) if exchange => {
            let c = inotify::cookie();
            inotify::event(nd, inotify::IN_MOVED_FROM | isdir(d), c, newname);
            inotify::event(od, inotify::IN_MOVED_TO | isdir(d), c, oldname);
            inotify::event(d, inotify::IN_MOVE_SELF, 0, b"");
        }
        Some(d) => {
            // fsnotify_move's fsnotify_link_count: the replaced file lost a link.
            if d.vtype() != VType::Dir {
                inotify::event(d, inotify::IN_ATTRIB, 0, b"");
            }
            if d.vtype() == VType::Dir || d.attr().map(|a| a.nlink).unwrap_or(0) == 0 {
                inotify::event(d, inotify::IN_DELETE_SELF, 0, b"");
            }
        }
        None => {}
    }
}

/// Change attributes of `t` for `cred`: EROFS, then the permission rules of chmod, chown
/// and utimes (perm::setattr_prepare, which may also drop set-id bits); a change that is left
/// empty changes nothing.
fn setattr(cred: &Cred, t: Target<'_>, change: &SetAttr, times: Option<perm::Times>) -> Result<(), Errno> {
    let _w = mount::want_write(t.mount)?;
    let change = perm::setattr_prepare(cred, &t.vnode.attr()?, change, times)?;
    if change == SetAttr::default() {
        return Ok(());
    }
    t.vnode.setattr(&change)?;
    // IN_ATTRIB on the file and, with its name, on the directory it was reached through.
    match t.path {
        Some(p) => inotify::child_event(p.parent(), p.name(), t.vnode, inotify::IN_ATTRIB),
        None => inotify::child_event(None, b"", t.vnode, inotify::IN_ATTRIB),
    }
    Ok(())
}

/// FS_IOC_SETFLAGS (chattr): EROFS; the owner or CAP_FOWNER (EPERM); ENOTTY where the file
/// system keeps no flags; changing FS_APPEND_FL or FS_IMMUTABLE_FL needs
/// CAP_LINUX_IMMUTABLE (EPERM) — vfs_fileattr_set's order.
pub fn set_iflags(cred: &Cred, t: Target<'_>, flags: u32) -> Result<(), Errno> {
    let _w = mount::want_write(t.mount)?;
    let a = t.vnode.attr()?;
    if !perm::owner_or_capable(cred, &a) {
        return Err(Errno::EPERM);
    }
    let old = a.iflags.ok_or(Errno::ENOTTY)?;
    let guarded = linux_raw_sys::general::FS_APPEND_FL | linux_raw_sys::general::FS_IMMUTABLE_FL;
    if (old ^ flags) & guarded != 0 && !cred.capable(crate::kern::cred::CAP_LINUX_IMMUTABLE) {
        return Err(Errno::EPERM);
    }
    t.vnode.set_iflags(flags)
}

/// chmod(2), fchmod(2), fchmodat(2): the permission bits and set-id/sticky bits of `mode`
/// (the owner or CAP_FOWNER; S_ISGID dropped for a group the caller is not in).
pub fn chmod(cred: &Cred, t: Target<'_>, mode: u32) -> Result<(), Errno> {
    setattr(cred, t, &SetAttr { mode: Some(mode & 0o7777), ..SetAttr::default() }, None)
}

/// chown(2) and its kin: None (the call's -1) leaves an id alone (CAP_CHOWN, or the owner
/// changing the group to one of theirs; set-id bits cleared on a non-directory).
/// Even with both ids -1 a chown clears set-id bits, as a chmod the owner may make
/// (perm::chown_prepare).
pub fn chown(cred: &Cred, t: Target<'_>, uid: Option<u32>, gid: Option<u32>) -> Result<(), Errno> {
    let _w = mount::want_write(t.mount)?;
    let change = perm::chown_prepare(cred, &t.vnode.attr()?, uid, gid)?;
    if change == SetAttr::default() {
        return Ok(());
    }
    t.vnode.setattr(&change)
}

/// One time of a utimensat(2) request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeReq {
    /// UTIME_OMIT: leave it.
    Omit,
    /// UTIME_NOW (or a null `times`): the current time.
    Now,
    /// A time given.
    Set(Timespec),
}

impl TimeReq {
    /// A `struct timespec` of utimensat(2): UTIME_NOW and UTIME_OMIT in `tv_nsec`, else a
    /// time whose nanoseconds are 0..1e9 (EINVAL otherwise).
    pub fn decode(sec: i64, nsec: i64) -> Result<TimeReq, Errno> {
        const UTIME_NOW: i64 = (1 << 30) - 1;
        const UTIME_OMIT: i64 = (1 << 30) - 2;
        match nsec {
            UTIME_NOW => Ok(TimeReq::Now),
            UTIME_OMIT => Ok(TimeReq::Omit),
            n if (0..1_000_000_000).contains(&n) => Ok(TimeReq::Set(Timespec { sec, nsec: n })),
            _ => Err(Errno::EINVAL),
        }
    }

    fn at(self, now: Timespec) -> Option<Timespec> {
        match self {
            TimeReq::Omit => None,
            TimeReq::Now => Some(now),
            TimeReq::Set(t) => Some(t),
        }
    }
}

/// utimensat(2): set the access and modification times of `t` ([access, modification]).
/// Both omitted: nothing at all, not even the read-only check (as Linux). Times given (or one
/// omitted) need the owner or CAP_FOWNER (EPERM); both `Now` also anyone who may write.
pub fn utimens(cred: &Cred, t: Target<'_>, times: [TimeReq; 2]) -> Result<(), Errno> {
    if times == [TimeReq::Omit, TimeReq::Omit] {
        return Ok(());
    }
    let how = if times == [TimeReq::Now, TimeReq::Now] { perm::Times::Now } else { perm::Times::Given };
    let now = Timespec::now();
    setattr(cred, t, &SetAttr { atime: times[0].at(now), mtime: times[1].at(now), ..SetAttr::default() }, Some(how))
}

/// truncate(2), ftruncate(2), open(2) with O_TRUNC: EISDIR for a directory, EINVAL for what
/// is not a regular file, EROFS, then — by path (`by_path`) — write permission (a descriptor
/// was checked when opened); a caller without CAP_FSETID loses the set-id bits after.
pub fn truncate(cred: &Cred, t: Target<'_>, len: u64, by_path: bool) -> Result<(), Errno> {
    match t.vnode.vtype() {
        VType::Dir => Err(Errno::EISDIR),
        VType::Reg => {
            let _w = mount::want_write(t.mount)?;
            if by_path {
                perm::may_truncate(cred, &t.vnode.attr()?)?;
            } else if t.vnode.attr()?.append_only() {
                return Err(Errno::EPERM); // do_sys_ftruncate's IS_APPEND
            }
            t.vnode.truncate(len)?;
            inotify::event(t.vnode, inotify::IN_MODIFY, 0, b"");
            remove_privs(cred, t.vnode)
        }
        _ => Err(Errno::EINVAL),
    }
}

/// fallocate(2) on a regular file (sys/fallocate.rs checked the descriptor and the mode):
/// EROFS on a read-only mount, then the file system's work; a change tells inotify
/// (IN_MODIFY) and drops the set-id bits as a write does.
pub fn fallocate(cred: &Cred, t: Target<'_>, mode: u32, off: u64, len: u64) -> Result<(), Errno> {
    // vfs_fallocate: nothing on an immutable file, only plain allocation on an append-only one.
    let a = t.vnode.attr()?;
    if a.immutable() || (a.append_only() && mode & !linux_raw_sys::general::FALLOC_FL_KEEP_SIZE != 0) {
        return Err(Errno::EPERM);
    }
    let _w = mount::want_write(t.mount)?;
    t.vnode.fallocate(mode, off, len)?;
    inotify::event(t.vnode, inotify::IN_MODIFY, 0, b"");
    remove_privs(cred, t.vnode)
}

/// After a write or truncate by `cred`: a caller without CAP_FSETID clears the setuid bit
/// and a setgid bit that should go (Linux's file_remove_privs).
pub fn remove_privs(cred: &Cred, v: &VnodeRef) -> Result<(), Errno> {
    if cred.capable(crate::kern::cred::CAP_FSETID) || v.vtype() != VType::Reg {
        return Ok(());
    }
    if let Some(mode) = perm::mode_after_write(cred, &v.attr()?) {
        v.setattr(&SetAttr { mode: Some(mode), ..SetAttr::default() })?;
    }
    Ok(())
}

/// `f` was read (its data, or a directory's entries): its access time changes as its
/// mount's policy says (noatime, nodiratime, relatime, strictatime).
pub fn accessed(f: &File) {
    let Some(m) = f.mount() else { return };
    let policy = m.atime_policy(f.vnode.vtype());
    if policy != AtimePolicy::Never && !m.readonly() {
        f.vnode.accessed(policy);
    }
}

/// Write back the file system `v` is on (fsync(2), fdatasync(2), syncfs(2)); for a block
/// device, what it wrote (the disk image, a loop device's file).
pub fn fsync(v: &dyn Vnode) -> Result<(), Errno> {
    if let Some(r) = crate::fs::blockdev::flush(v) {
        return r;
    }
    v.fs().sync()
}
