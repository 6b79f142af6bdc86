//! The VFS's operations on names and files (BSD's vfs_vnops.c, Linux's `vfs_*` calls in
//! fs/namei.c): what every file system shares is checked here, once — the mount's flags
//! (a read-only mount refuses every change with EROFS, [`mount::want_write`]), names that
//! exist or not, mount points, the rules of rename(2) and the decoding of attribute changes —
//! and then the file system's [`Vnode`] method only carries the change out.
//!
//! The system calls (sys/fsops.rs) resolve paths and decode arguments, then call these.
//! Permission checks (Linux's may_create, may_delete, …) belong here as well, beside the
//! mount checks, with the caller's credentials: each operation says where (`perm:`).
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

use crate::fs::file::File;
use crate::fs::mount::{self, AtimePolicy, MountRef};
use crate::fs::namecache;
use crate::fs::namei::NamePath;
use crate::fs::vfs::{SetAttr, Timespec, VType, Vnode, VnodeId, VnodeRef};
use crate::kern::errno::Errno;
use crate::kern::sleeplock::{SleepGuard, SleepLock};

/// Directory locks, hashed by vnode identity.
static DIR_LOCKS: [SleepLock<()>; 64] = [const { SleepLock::new("dirlock", ()) }; 64];
/// Held by a rename between two directories.
static RENAME_LOCK: SleepLock<()> = SleepLock::new("rename", ());

/// The locks of the directories `dirs`, taken in index order (each once).
fn lock_dirs(dirs: &[VnodeId]) -> Vec<SleepGuard<'static, ()>> {
    let mut idx: Vec<usize> = dirs.iter().map(|id| (id.fs.wrapping_mul(0x9e37_79b9).wrapping_add(id.ino) % DIR_LOCKS.len() as u64) as usize).collect();
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
}

impl<'a> From<&'a NamePath> for Target<'a> {
    fn from(np: &'a NamePath) -> Target<'a> {
        Target { vnode: np.vnode(), mount: Some(np.mount()) }
    }
}

impl<'a> From<&'a File> for Target<'a> {
    fn from(f: &'a File) -> Target<'a> {
        Target { vnode: &f.vnode, mount: f.mount() }
    }
}

/// Whether `dir` has an entry `name`.
fn exists(dir: &NamePath, name: &[u8]) -> bool {
    dir.vnode().lookup(name).is_ok()
}

/// Create the regular file `name` in `dir` (open(2) with O_CREAT, creat(2), mknod(2)).
/// perm: write and search permission on `dir` (may_create).
pub fn create(dir: &NamePath, name: &[u8], mode: u32, uid: u32, gid: u32) -> Result<VnodeRef, Errno> {
    let _w = mount::want_write(Some(dir.mount()))?;
    let _l = lock_dir(dir);
    let r = dir.vnode().create(name, mode, uid, gid);
    namecache::invalidate(dir.vnode().id(), name);
    r
}

/// mkdir(2): EEXIST before EROFS, as Linux's filename_create. perm: as `create`.
pub fn mkdir(dir: &NamePath, name: &[u8], mode: u32, uid: u32, gid: u32) -> Result<VnodeRef, Errno> {
    let _l = lock_dir(dir);
    if name == b"." || name == b".." || exists(dir, name) {
        return Err(Errno::EEXIST);
    }
    let _w = mount::want_write(Some(dir.mount()))?;
    let r = dir.vnode().mkdir(name, mode, uid, gid);
    namecache::invalidate(dir.vnode().id(), name);
    r
}

/// symlink(2): a link `name` in `dir` whose text is `target`. perm: as `create`.
pub fn symlink(dir: &NamePath, name: &[u8], target: &[u8], uid: u32, gid: u32) -> Result<(), Errno> {
    let _l = lock_dir(dir);
    if name == b"." || name == b".." || exists(dir, name) {
        return Err(Errno::EEXIST);
    }
    let _w = mount::want_write(Some(dir.mount()))?;
    let r = dir.vnode().symlink(name, target, uid, gid);
    namecache::invalidate(dir.vnode().id(), name);
    r
}

/// link(2): another name for `src` in `dir`. EXDEV across mounts (even of one file system,
/// as Linux), EPERM for a directory, EEXIST for a name in use. perm: as `create`, and the
/// protected_hardlinks rule on `src` (may_linkat).
pub fn link(src: &NamePath, dir: &NamePath, name: &[u8]) -> Result<(), Errno> {
    if !Arc::ptr_eq(src.mount(), dir.mount()) {
        return Err(Errno::EXDEV);
    }
    if src.vnode().vtype() == VType::Dir {
        return Err(Errno::EPERM);
    }
    let _l = lock_dir(dir);
    if exists(dir, name) {
        return Err(Errno::EEXIST);
    }
    let _w = mount::want_write(Some(dir.mount()))?;
    let r = dir.vnode().link(name, src.vnode());
    namecache::invalidate(dir.vnode().id(), name);
    r
}

/// unlink(2) of `name` in `dir` (a non-directory). perm: may_delete (write and search on
/// `dir`, the sticky-directory rule).
pub fn unlink(dir: &NamePath, name: &[u8]) -> Result<(), Errno> {
    let _w = mount::want_write(Some(dir.mount()))?;
    let _l = lock_dir(dir);
    let r = dir.vnode().unlink(name);
    namecache::invalidate(dir.vnode().id(), name);
    r
}

/// rmdir(2) of `name` in `dir`: EINVAL for `.`, ENOTEMPTY for `..`, EBUSY for a mount point.
/// perm: as `unlink`.
pub fn rmdir(dir: &NamePath, name: &[u8]) -> Result<(), Errno> {
    match name {
        b"." => return Err(Errno::EINVAL),
        b".." => return Err(Errno::ENOTEMPTY),
        _ => {}
    }
    let _w = mount::want_write(Some(dir.mount()))?;
    let _l = lock_dir(dir);
    let v = dir.vnode().lookup(name)?;
    if mount::is_mount_point(&v) {
        return Err(Errno::EBUSY);
    }
    let r = dir.vnode().rmdir(name);
    namecache::invalidate(dir.vnode().id(), name);
    namecache::purge_dir(v.id());
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
/// perm: may_delete on both sides (and write permission on a directory moved to another
/// parent, for its `..`).
pub fn rename(olddir: &NamePath, oldname: &[u8], newdir: &NamePath, newname: &[u8], flags: u32, slash: (bool, bool)) -> Result<(), Errno> {
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
    r
}

/// Change attributes of `t` (the file system's setattr, after the read-only check).
fn setattr(t: Target<'_>, a: &SetAttr) -> Result<(), Errno> {
    let _w = mount::want_write(t.mount)?;
    t.vnode.setattr(a)
}

/// chmod(2), fchmod(2), fchmodat(2): the permission bits and set-id/sticky bits of `mode`.
/// perm: the owner or CAP_FOWNER (EPERM); S_ISGID dropped for a group the caller is not in.
pub fn chmod(t: Target<'_>, mode: u32) -> Result<(), Errno> {
    setattr(t, &SetAttr { mode: Some(mode & 0o7777), ..SetAttr::default() })
}

/// chown(2) and its kin: None (the call's -1) leaves an id alone; the status change time
/// changes either way. perm: CAP_CHOWN, or the owner changing the group to one of theirs;
/// set-id bits cleared on a regular file.
pub fn chown(t: Target<'_>, uid: Option<u32>, gid: Option<u32>) -> Result<(), Errno> {
    setattr(t, &SetAttr { uid, gid, ..SetAttr::default() })
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
/// Both omitted: nothing at all, not even the read-only check (as Linux). perm: times given
/// need the owner or CAP_FOWNER (EPERM); both `Now` need write permission or the owner (EACCES).
pub fn utimens(t: Target<'_>, times: [TimeReq; 2]) -> Result<(), Errno> {
    if times == [TimeReq::Omit, TimeReq::Omit] {
        return Ok(());
    }
    let ns = platform::time::realtime_ns();
    let now = Timespec { sec: i64::try_from(ns / 1_000_000_000).unwrap_or(i64::MAX), nsec: i64::try_from(ns % 1_000_000_000).unwrap_or(0) };
    setattr(t, &SetAttr { atime: times[0].at(now), mtime: times[1].at(now), ..SetAttr::default() })
}

/// truncate(2), ftruncate(2), open(2) with O_TRUNC: EISDIR for a directory, EINVAL for what
/// is not a regular file.
pub fn truncate(t: Target<'_>, len: u64) -> Result<(), Errno> {
    match t.vnode.vtype() {
        VType::Dir => Err(Errno::EISDIR),
        VType::Reg => {
            let _w = mount::want_write(t.mount)?;
            t.vnode.truncate(len)
        }
        _ => Err(Errno::EINVAL),
    }
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

/// Write back the file system `v` is on (fsync(2), fdatasync(2), syncfs(2)).
pub fn fsync(v: &dyn Vnode) -> Result<(), Errno> {
    v.fs().sync()
}
