//! Extended attributes: setxattr(2), getxattr(2), listxattr(2), removexattr(2) and their
//! l- (no symlink following) and f- (descriptor) forms.
//!
//! No file system of vk stores extended attributes, so the calls answer as Linux does for
//! one without xattr handlers (procfs, say): get, set and remove are EOPNOTSUPP, a list is
//! empty. What Linux checks before it asks the file system is checked here in its order:
//! setxattr's flags (EINVAL), the name (ERANGE when empty or longer than XATTR_NAME_MAX),
//! the value's size (E2BIG past XATTR_SIZE_MAX), then the path or descriptor (ENOENT,
//! EBADF, an O_PATH descriptor's EBADF).

use crate::fs::file;
use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};
use crate::sys::fs::{AT_FDCWD, lookup_at};

/// XATTR_NAME_MAX, XATTR_SIZE_MAX; setxattr's XATTR_CREATE and XATTR_REPLACE.
const XATTR_NAME_MAX: usize = 255;
const XATTR_SIZE_MAX: usize = 65536;
const XATTR_CREATE: u32 = 1;
const XATTR_REPLACE: u32 = 2;

/// Where the attributes are: a path (followed or not) in argument 0, or a descriptor.
#[derive(Clone, Copy, PartialEq, Eq)]
enum On {
    Path,
    Link,
    Fd,
}

/// Resolve argument 0 (ENOENT, ENOTDIR, EACCES for the path; EBADF for the descriptor).
fn target(ctx: &Ctx<'_>, on: On) -> Result<(), Errno> {
    match on {
        On::Fd => {
            let f = ctx.file(0)?;
            if f.flags() & file::O_PATH != 0 {
                return Err(Errno::EBADF);
            }
        }
        On::Path | On::Link => {
            let p = ctx.path(0)?;
            lookup_at(ctx, AT_FDCWD, &p, on == On::Path)?;
        }
    }
    Ok(())
}

/// The attribute name of argument 1: ERANGE when empty or past XATTR_NAME_MAX.
fn name(ctx: &Ctx<'_>) -> Result<Vec<u8>, Errno> {
    let n = ctx.read_cstr(ctx.ptr(1), XATTR_NAME_MAX + 1).map_err(|e| if e == Errno::ENAMETOOLONG { Errno::ERANGE } else { e })?;
    if n.is_empty() || n.len() > XATTR_NAME_MAX {
        return Err(Errno::ERANGE);
    }
    Ok(n)
}

fn set(ctx: &Ctx<'_>, on: On) -> SysResult {
    if ctx.uint(4) & !(XATTR_CREATE | XATTR_REPLACE) != 0 {
        return Err(Errno::EINVAL);
    }
    name(ctx)?;
    if ctx.size(3) > XATTR_SIZE_MAX {
        return Err(Errno::E2BIG);
    }
    target(ctx, on)?;
    Err(Errno::EOPNOTSUPP)
}

fn get(ctx: &Ctx<'_>, on: On) -> SysResult {
    name(ctx)?;
    target(ctx, on)?;
    Err(Errno::EOPNOTSUPP)
}

/// An empty list: 0 bytes, whatever the buffer.
fn list(ctx: &Ctx<'_>, on: On) -> SysResult {
    target(ctx, on)?;
    Ok(0)
}

fn remove(ctx: &Ctx<'_>, on: On) -> SysResult {
    name(ctx)?;
    target(ctx, on)?;
    Err(Errno::EOPNOTSUPP)
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
