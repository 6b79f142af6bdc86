//! fallocate(2) (and so posix_fallocate(3)): the descriptor and the mode are checked here in
//! Linux's order (vfs_fallocate), then fs/vnops.rs and the file system do the work — ext2 and
//! tmpfs allocate (mode 0, FALLOC_FL_KEEP_SIZE) and punch holes
//! (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE); the other modes are EOPNOTSUPP.

use crate::abi::linux;
use crate::fs::vfs::VType;
use crate::fs::vnops;
use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};

/// The modes that choose an operation (Linux's FALLOC_FL_MODE_MASK).
const MODE_MASK: u32 = linux::FALLOC_FL_PUNCH_HOLE
    | linux::FALLOC_FL_COLLAPSE_RANGE
    | linux::FALLOC_FL_ZERO_RANGE
    | linux::FALLOC_FL_INSERT_RANGE
    | linux::FALLOC_FL_UNSHARE_RANGE
    | linux::FALLOC_FL_WRITE_ZEROES;

/// fallocate(fd, mode, offset, len).
pub fn sys_fallocate(ctx: &mut Ctx<'_>) -> SysResult {
    let f = ctx.file(0)?;
    let mode = ctx.uint(1);
    let off = i64::from_ne_bytes(ctx.arg(2).to_ne_bytes());
    let len = i64::from_ne_bytes(ctx.arg(3).to_ne_bytes());
    if off < 0 || len <= 0 {
        return Err(Errno::EINVAL);
    }
    if mode & !(MODE_MASK | linux::FALLOC_FL_KEEP_SIZE) != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    let keep = mode & linux::FALLOC_FL_KEEP_SIZE != 0;
    match mode & MODE_MASK {
        0 | linux::FALLOC_FL_UNSHARE_RANGE | linux::FALLOC_FL_ZERO_RANGE => {}
        linux::FALLOC_FL_PUNCH_HOLE if keep => {}
        linux::FALLOC_FL_COLLAPSE_RANGE | linux::FALLOC_FL_INSERT_RANGE | linux::FALLOC_FL_WRITE_ZEROES if !keep => {}
        _ => return Err(Errno::EOPNOTSUPP),
    }
    if !f.writable() {
        return Err(Errno::EBADF);
    }
    match f.vnode.vtype() {
        VType::Fifo => return Err(Errno::ESPIPE),
        VType::Dir => return Err(Errno::EISDIR),
        VType::Reg => {}
        // Block devices take only discards and zeroing, which vk's do not do.
        VType::Blk => return Err(Errno::EOPNOTSUPP),
        _ => return Err(Errno::ENODEV),
    }
    off.checked_add(len).ok_or(Errno::EFBIG)?;
    vnops::fallocate(&crate::sys::fs::cred(ctx), f.as_ref().into(), mode, off.unsigned_abs(), len.unsigned_abs())?;
    Ok(0)
}
