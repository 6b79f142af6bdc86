//! mknod(2), mknodat(2): regular files, FIFOs and sockets in any writable file system.
//!
//! Device nodes: EPERM without CAP_MKNOD, as Linux. With it, on a file system that keeps
//! device numbers (tmpfs; others say EPERM); opening one reaches devfs's device of that
//! number ([`crate::fs::devfs::by_rdev`]), ENXIO when vk has none.

use crate::fs::vfs::{S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFMT, S_IFREG, S_IFSOCK};
use crate::fs::vnops;
use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};
use crate::sys::fs::{AT_FDCWD, cred};
use crate::sys::fsops::{lookup_parent, umask};

/// `dev`: the device number, a 32-bit `dev_t` in the encoding `st_rdev` shows.
fn mknod_at(ctx: &Ctx<'_>, dirfd: i32, path: &[u8], mode: u32, dev: u64) -> SysResult {
    // may_mknod: the type first (a directory is EPERM, an unknown type EINVAL).
    let ty = match mode & S_IFMT {
        0 => S_IFREG,
        t @ (S_IFREG | S_IFCHR | S_IFBLK | S_IFIFO | S_IFSOCK) => t,
        S_IFDIR => return Err(Errno::EPERM),
        _ => return Err(Errno::EINVAL),
    };
    let (parent, name) = lookup_parent(ctx, dirfd, path).map_err(|e| if e == Errno::EBUSY { Errno::EEXIST } else { e })?;
    let c = cred(ctx);
    let perm = mode & !umask(ctx) & 0o7777;
    match ty {
        S_IFREG => {
            if parent.vnode().lookup(&name).is_ok() {
                return Err(Errno::EEXIST);
            }
            vnops::create(&c, &parent, &name, perm)?;
        }
        S_IFCHR | S_IFBLK => {
            // vfs_mknod's order: EEXIST, EROFS, the directory's permission, then CAP_MKNOD.
            if parent.vnode().lookup(&name).is_ok() {
                return Err(Errno::EEXIST);
            }
            if parent.mount().readonly() {
                return Err(Errno::EROFS);
            }
            crate::fs::perm::may_create(&c, &parent.vnode().attr()?)?;
            if !c.capable(crate::kern::cred::CAP_MKNOD) {
                return Err(Errno::EPERM);
            }
            vnops::mknod_dev(&c, &parent, &name, ty | perm, dev)?;
        }
        _ => {
            vnops::mknod(&c, &parent, &name, ty | perm)?;
        }
    }
    Ok(0)
}

pub fn sys_mknod(ctx: &mut Ctx<'_>) -> SysResult {
    let path = ctx.path(0)?;
    mknod_at(ctx, AT_FDCWD, &path, ctx.uint(1), u64::from(ctx.uint(2)))
}

pub fn sys_mknodat(ctx: &mut Ctx<'_>) -> SysResult {
    let path = ctx.path(1)?;
    mknod_at(ctx, ctx.fd(0), &path, ctx.uint(2), u64::from(ctx.uint(3)))
}
