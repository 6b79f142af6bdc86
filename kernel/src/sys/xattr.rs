//! Extended attributes: setxattr(2), getxattr(2), listxattr(2), removexattr(2) and their
//! l- (no symlink following) and f- (descriptor) forms.
//!
//! tmpfs keeps them (fs/xattr.rs): the `user.`, `trusted.` and `security.` namespaces, as
//! Linux's tmpfs does; `system.` (POSIX ACLs) and unknown prefixes are EOPNOTSUPP. The other
//! file systems keep none and answer as Linux does for one without xattr handlers (procfs,
//! say): get, set and remove are EOPNOTSUPP, a list is empty. What Linux checks before it
//! asks the file system is checked here in its order: setxattr's flags (EINVAL), the name
//! (ERANGE when empty or longer than XATTR_NAME_MAX), the value's size (E2BIG past
//! XATTR_SIZE_MAX), then the path or descriptor (ENOENT, EBADF, an O_PATH descriptor's
//! EBADF), a read-only mount for changes (EROFS), then xattr_permission's rules: `trusted.`
//! needs CAP_SYS_ADMIN (EPERM to change, ENODATA to read, left out of lists), `user.` is for
//! regular files and directories only (and on a sticky directory for its owner), and the
//! file's own read or write permission (EACCES).

use std::sync::Arc;

use crate::fs::file;
use crate::fs::mount::MountRef;
use crate::fs::perm::{self, MAY_READ, MAY_WRITE};
use crate::fs::vfs::{VType, VnodeRef};
use crate::fs::xattr::{self, XATTR_CREATE, XATTR_REPLACE};
use crate::kern::cred::{CAP_SYS_ADMIN, Cred};
use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};
use crate::sys::fs::{AT_FDCWD, cred, lookup_at};
use crate::vm::uaccess::UserSlice;

/// XATTR_NAME_MAX, XATTR_SIZE_MAX.
const XATTR_NAME_MAX: usize = 255;
const XATTR_SIZE_MAX: usize = 65536;
/// The attribute namespaces tmpfs keeps.
const USER: &[u8] = b"user.";
const TRUSTED: &[u8] = b"trusted.";
const SECURITY: &[u8] = b"security.";

/// Where the attributes are: a path (followed or not) in argument 0, or a descriptor.
#[derive(Clone, Copy, PartialEq, Eq)]
enum On {
    Path,
    Link,
    Fd,
}

/// Resolve argument 0 (ENOENT, ENOTDIR, EACCES for the path; EBADF for the descriptor): the
/// inode and the mount it was reached through.
fn target(ctx: &Ctx<'_>, on: On) -> Result<(VnodeRef, Option<MountRef>), Errno> {
    match on {
        On::Fd => {
            let f = ctx.file(0)?;
            if f.flags() & file::O_PATH != 0 {
                return Err(Errno::EBADF);
            }
            Ok((f.vnode.clone(), f.mount().cloned()))
        }
        On::Path | On::Link => {
            let p = ctx.path(0)?;
            let np = lookup_at(ctx, AT_FDCWD, &p, on == On::Path)?;
            Ok((np.vnode().clone(), Some(Arc::clone(np.mount()))))
        }
    }
}

/// The attribute name of argument 1: ERANGE when empty or past XATTR_NAME_MAX.
fn name(ctx: &Ctx<'_>) -> Result<Vec<u8>, Errno> {
    let n = ctx.read_cstr(ctx.ptr(1), XATTR_NAME_MAX + 1).map_err(|e| if e == Errno::ENAMETOOLONG { Errno::ERANGE } else { e })?;
    if n.is_empty() || n.len() > XATTR_NAME_MAX {
        return Err(Errno::ERANGE);
    }
    Ok(n)
}

/// The namespace a name is in, as the file system's handlers see it: EOPNOTSUPP for one
/// tmpfs has no handler for, EINVAL for a bare prefix.
fn namespace(name: &[u8]) -> Result<&'static [u8], Errno> {
    let ns = [USER, TRUSTED, SECURITY].into_iter().find(|p| name.starts_with(p)).ok_or(Errno::EOPNOTSUPP)?;
    if name.len() == ns.len() {
        return Err(Errno::EINVAL);
    }
    Ok(ns)
}

/// Linux's xattr_permission for `mask` (MAY_READ or MAY_WRITE).
fn permission(cred: &Cred, v: &VnodeRef, name: &[u8], mask: u32) -> Result<(), Errno> {
    let denied = if mask & MAY_WRITE != 0 { Errno::EPERM } else { Errno::ENODATA };
    if mask & MAY_WRITE != 0 && v.attr().is_ok_and(|a| a.immutable() || a.append_only()) {
        return Err(Errno::EPERM);
    }
    let ns = namespace(name)?;
    if ns == TRUSTED {
        return if cred.capable(CAP_SYS_ADMIN) { Ok(()) } else { Err(denied) };
    }
    let a = v.attr()?;
    if ns == USER {
        let sticky_dir = a.vtype() == VType::Dir && a.mode & 0o1000 != 0 && !perm::owner_or_capable(cred, &a);
        if !matches!(a.vtype(), VType::Reg | VType::Dir) || sticky_dir {
            return Err(denied);
        }
    }
    perm::permission(cred, &a, mask)
}

/// A change needs a writable mount (EROFS).
fn writable(mnt: &Option<MountRef>) -> Result<(), Errno> {
    if mnt.as_ref().is_some_and(|m| m.readonly()) {
        return Err(Errno::EROFS);
    }
    Ok(())
}

/// Copy `data` to the buffer of arguments `buf` and `size` as get and list answer.
fn answer(ctx: &Ctx<'_>, data: &[u8], buf: usize, size: usize) -> SysResult {
    if let Some(d) = xattr::fit(data, ctx.size(size))? {
        ctx.write_slice(UserSlice::new(ctx.arg(buf), d.len()), d)?;
    }
    Ok(data.len())
}

fn set(ctx: &Ctx<'_>, on: On) -> SysResult {
    let flags = ctx.uint(4);
    if flags & !(XATTR_CREATE | XATTR_REPLACE) != 0 {
        return Err(Errno::EINVAL);
    }
    let n = name(ctx)?;
    let size = ctx.size(3);
    if size > XATTR_SIZE_MAX {
        return Err(Errno::E2BIG);
    }
    let mut value = vec![0u8; size];
    ctx.copyin(UserSlice::new(ctx.arg(2), size), &mut value)?;
    let (v, mnt) = target(ctx, on)?;
    writable(&mnt)?;
    let Some(map) = v.xattrs() else {
        return Err(Errno::EOPNOTSUPP);
    };
    permission(&cred(ctx), &v, &n, MAY_WRITE)?;
    map.lock().set(&n, &value, flags)?;
    Ok(0)
}

fn get(ctx: &Ctx<'_>, on: On) -> SysResult {
    let n = name(ctx)?;
    let (v, _) = target(ctx, on)?;
    let Some(map) = v.xattrs() else {
        return Err(Errno::EOPNOTSUPP);
    };
    permission(&cred(ctx), &v, &n, MAY_READ)?;
    let value = map.lock().get(&n)?.to_vec();
    answer(ctx, &value, 2, 3)
}

/// The names the caller may see (`trusted.` only with CAP_SYS_ADMIN); an empty list where
/// no attributes are kept.
fn list(ctx: &Ctx<'_>, on: On) -> SysResult {
    let (v, _) = target(ctx, on)?;
    let Some(map) = v.xattrs() else {
        return Ok(0);
    };
    let admin = cred(ctx).capable(CAP_SYS_ADMIN);
    let names = map.lock().list(|n| admin || !n.starts_with(TRUSTED));
    answer(ctx, &names, 1, 2)
}

fn remove(ctx: &Ctx<'_>, on: On) -> SysResult {
    let n = name(ctx)?;
    let (v, mnt) = target(ctx, on)?;
    writable(&mnt)?;
    let Some(map) = v.xattrs() else {
        return Err(Errno::EOPNOTSUPP);
    };
    permission(&cred(ctx), &v, &n, MAY_WRITE)?;
    map.lock().remove(&n)?;
    Ok(0)
}

pub fn sys_setxattr(ctx: &mut Ctx<'_>) -> SysResult {
    set(ctx, On::Path)
}
pub fn sys_lsetxattr(ctx: &mut Ctx<'_>) -> SysResult {
    set(ctx, On::Link)
}
pub fn sys_fsetxattr(ctx: &mut Ctx<'_>) -> SysResult {
    set(ctx, On::Fd)
}
pub fn sys_getxattr(ctx: &mut Ctx<'_>) -> SysResult {
    get(ctx, On::Path)
}
pub fn sys_lgetxattr(ctx: &mut Ctx<'_>) -> SysResult {
    get(ctx, On::Link)
}
pub fn sys_fgetxattr(ctx: &mut Ctx<'_>) -> SysResult {
    get(ctx, On::Fd)
}
pub fn sys_listxattr(ctx: &mut Ctx<'_>) -> SysResult {
    list(ctx, On::Path)
}
pub fn sys_llistxattr(ctx: &mut Ctx<'_>) -> SysResult {
    list(ctx, On::Link)
}
pub fn sys_flistxattr(ctx: &mut Ctx<'_>) -> SysResult {
    list(ctx, On::Fd)
}
pub fn sys_removexattr(ctx: &mut Ctx<'_>) -> SysResult {
    remove(ctx, On::Path)
}
pub fn sys_lremovexattr(ctx: &mut Ctx<'_>) -> SysResult {
    remove(ctx, On::Link)
}
pub fn sys_fremovexattr(ctx: &mut Ctx<'_>) -> SysResult {
    remove(ctx, On::Fd)
}
