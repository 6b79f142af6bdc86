//! The extended-attribute calls (xattr(7)): getxattr, setxattr, listxattr, removexattr and
//! their l- and f- forms, answered as Linux answers them on a file system without extended
//! attributes: no names to list, EOPNOTSUPP for reading, writing or removing one. The file
//! and the name are checked first (ENOENT, EBADF, ERANGE for an empty or too long name,
//! EINVAL for unknown setxattr flags), so a program learns what it would on Linux; coreutils'
//! `ls -l` and `cp -a` take EOPNOTSUPP as "no ACLs, no labels".

use crate::abi::linux;
use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};
use crate::sys::fs::{AT_FDCWD, lookup_at};

/// Longest attribute name (XATTR_NAME_MAX).
const XATTR_NAME_MAX: usize = linux::XATTR_NAME_MAX as usize;
/// setxattr's flags.
const XATTR_CREATE: u32 = linux::XATTR_CREATE;
const XATTR_REPLACE: u32 = linux::XATTR_REPLACE;

/// Which file a call names: a path (followed or not) in argument 0, or a descriptor.
#[derive(Clone, Copy)]
enum Target {
    Path { follow: bool },
    Fd,
}

/// Check that the file exists (path lookup or an open descriptor).
fn check_target(ctx: &Ctx<'_>, t: Target) -> Result<(), Errno> {
    match t {
        Target::Path { follow } => {
            let path = ctx.path(0)?;
            lookup_at(ctx, AT_FDCWD, &path, follow).map(|_| ())
        }
        Target::Fd => ctx.p.user().files().lock().get(ctx.fd(0)).map(|_| ()),
    }
}

/// Check the attribute name in argument 1: 1 to XATTR_NAME_MAX bytes, else ERANGE.
fn check_name(ctx: &Ctx<'_>) -> Result<(), Errno> {
    match ctx.read_cstr(ctx.ptr(1), XATTR_NAME_MAX) {
        Ok(name) if name.is_empty() => Err(Errno::ERANGE),
        Ok(_) => Ok(()),
        Err(Errno::ENAMETOOLONG) => Err(Errno::ERANGE),
        Err(e) => Err(e),
    }
}

fn get(ctx: &mut Ctx<'_>, t: Target) -> SysResult {
    check_target(ctx, t)?;
    check_name(ctx)?;
    Err(Errno::EOPNOTSUPP)
}

fn set(ctx: &mut Ctx<'_>, t: Target) -> SysResult {
    if ctx.uint(4) & !(XATTR_CREATE | XATTR_REPLACE) != 0 {
        return Err(Errno::EINVAL);
    }
    check_name(ctx)?;
    check_target(ctx, t)?;
    Err(Errno::EOPNOTSUPP)
}

/// listxattr: the list is empty (length 0), whatever the buffer.
fn list(ctx: &mut Ctx<'_>, t: Target) -> SysResult {
    check_target(ctx, t)?;
    Ok(0)
}

fn remove(ctx: &mut Ctx<'_>, t: Target) -> SysResult {
    check_name(ctx)?;
    check_target(ctx, t)?;
    Err(Errno::EOPNOTSUPP)
}

pub fn sys_getxattr(ctx: &mut Ctx<'_>) -> SysResult {
    get(ctx, Target::Path { follow: true })
}

pub fn sys_lgetxattr(ctx: &mut Ctx<'_>) -> SysResult {
    get(ctx, Target::Path { follow: false })
}

pub fn sys_fgetxattr(ctx: &mut Ctx<'_>) -> SysResult {
    get(ctx, Target::Fd)
}

pub fn sys_setxattr(ctx: &mut Ctx<'_>) -> SysResult {
    set(ctx, Target::Path { follow: true })
}

pub fn sys_lsetxattr(ctx: &mut Ctx<'_>) -> SysResult {
    set(ctx, Target::Path { follow: false })
}

pub fn sys_fsetxattr(ctx: &mut Ctx<'_>) -> SysResult {
    set(ctx, Target::Fd)
}

pub fn sys_listxattr(ctx: &mut Ctx<'_>) -> SysResult {
    list(ctx, Target::Path { follow: true })
}

pub fn sys_llistxattr(ctx: &mut Ctx<'_>) -> SysResult {
    list(ctx, Target::Path { follow: false })
}

pub fn sys_flistxattr(ctx: &mut Ctx<'_>) -> SysResult {
    list(ctx, Target::Fd)
}

pub fn sys_removexattr(ctx: &mut Ctx<'_>) -> SysResult {
    remove(ctx, Target::Path { follow: true })
}

pub fn sys_lremovexattr(ctx: &mut Ctx<'_>) -> SysResult {
    remove(ctx, Target::Path { follow: false })
}

pub fn sys_fremovexattr(ctx: &mut Ctx<'_>) -> SysResult {
    remove(ctx, Target::Fd)
}
