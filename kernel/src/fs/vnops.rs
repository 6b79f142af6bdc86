//! The VFS's operations on names and files (BSD's vfs_vnops.c, Linux's `vfs_*` calls in
//! fs/namei.c): what every file system shares is checked here, once — the mount's flags
//! (a read-only mount refuses every change with EROFS, [`mount::want_write`]), names that
//! exist or not, mount points — and then the file system's [`Vnode`] method carries the
//! change out.
//!
//! The system calls (sys/fsops.rs) resolve paths and decode arguments, then call these.
//! Permission checks (Linux's may_create, may_delete, …) belong here as well, beside the
//! mount checks, with the caller's credentials.

use crate::fs::file::File;
use crate::fs::mount::{self, AtimePolicy, MountRef};
use crate::fs::namei::NamePath;
use crate::fs::vfs::{SetAttr, VType, Vnode, VnodeRef};
use crate::kern::errno::Errno;

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
pub fn create(dir: &NamePath, name: &[u8], mode: u32, uid: u32, gid: u32) -> Result<VnodeRef, Errno> {
    let _w = mount::want_write(Some(dir.mount()))?;
    dir.vnode().create(name, mode, uid, gid)
}

/// mkdir(2): EEXIST before EROFS, as Linux's filename_create.
pub fn mkdir(dir: &NamePath, name: &[u8], mode: u32, uid: u32, gid: u32) -> Result<VnodeRef, Errno> {
    if name == b"." || name == b".." || exists(dir, name) {
        return Err(Errno::EEXIST);
    }
    let _w = mount::want_write(Some(dir.mount()))?;
    dir.vnode().mkdir(name, mode, uid, gid)
}

/// symlink(2): a link `name` in `dir` whose text is `target`.
pub fn symlink(dir: &NamePath, name: &[u8], target: &[u8], uid: u32, gid: u32) -> Result<(), Errno> {
    if name == b"." || name == b".." || exists(dir, name) {
        return Err(Errno::EEXIST);
    }
    let _w = mount::want_write(Some(dir.mount()))?;
    dir.vnode().symlink(name, target, uid, gid)
}

/// link(2): another name for `src` in `dir`. EXDEV across mounts (even of one file system,
/// as Linux), EPERM for a directory, EEXIST for a name in use.
pub fn link(src: &NamePath, dir: &NamePath, name: &[u8]) -> Result<(), Errno> {
    if !std::sync::Arc::ptr_eq(src.mount(), dir.mount()) {
        return Err(Errno::EXDEV);
    }
    if src.vnode().vtype() == VType::Dir {
        return Err(Errno::EPERM);
    }
    if exists(dir, name) {
        return Err(Errno::EEXIST);
    }
    let _w = mount::want_write(Some(dir.mount()))?;
    dir.vnode().link(name, src.vnode())
}

/// unlink(2) of `name` in `dir` (a non-directory).
pub fn unlink(dir: &NamePath, name: &[u8]) -> Result<(), Errno> {
    let _w = mount::want_write(Some(dir.mount()))?;
    dir.vnode().unlink(name)
}

/// rmdir(2) of `name` in `dir`: EINVAL for `.`, ENOTEMPTY for `..`, EBUSY for a mount point.
pub fn rmdir(dir: &NamePath, name: &[u8]) -> Result<(), Errno> {
    match name {
        b"." => return Err(Errno::EINVAL),
        b".." => return Err(Errno::ENOTEMPTY),
        _ => {}
    }
    let _w = mount::want_write(Some(dir.mount()))?;
    let v = dir.vnode().lookup(name)?;
    if mount::is_mount_point(&v) {
        return Err(Errno::EBUSY);
    }
    dir.vnode().rmdir(name)
}

/// rename(2) and renameat2(2): `oldname` in `olddir` becomes `newname` in `newdir`.
pub fn rename(olddir: &NamePath, oldname: &[u8], newdir: &NamePath, newname: &[u8], flags: u32) -> Result<(), Errno> {
    for n in [oldname, newname] {
        if n == b"." || n == b".." {
            return Err(Errno::EBUSY);
        }
    }
    if !std::sync::Arc::ptr_eq(olddir.mount(), newdir.mount()) {
        return Err(Errno::EXDEV);
    }
    let _w = mount::want_write(Some(olddir.mount()))?;
    olddir.vnode().rename(oldname, newdir.vnode(), newname, flags)
}

/// chmod, chown, utimensat: change attributes of `t`.
pub fn setattr(t: Target<'_>, a: &SetAttr) -> Result<(), Errno> {
    let _w = mount::want_write(t.mount)?;
    t.vnode.setattr(a)
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
