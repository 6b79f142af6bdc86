//! fadvise64(2) (posix_fadvise) and readahead(2): advice about how a file will be read. vk has no page cache
//! to read ahead into or drop, so valid advice is taken and changes nothing; the arguments
//! are checked as Linux checks them.

use crate::abi::linux;
use crate::fs::vfs::VType;
use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};

/// POSIX_FADV_NORMAL .. POSIX_FADV_NOREUSE.
const POSIX_FADV_MAX: u32 = linux::POSIX_FADV_NOREUSE;

/// fadvise64(fd, offset, len, advice): EBADF for a bad descriptor, ESPIPE for a pipe or FIFO,
/// EINVAL for a negative length or unknown advice; otherwise 0.
pub fn sys_fadvise64(ctx: &mut Ctx<'_>) -> SysResult {
    let f = ctx.file(0)?;
    if f.vnode.vtype() == VType::Fifo {
        return Err(Errno::ESPIPE);
    }
    // A negative length is EINVAL (a negative offset is allowed, as on Linux).
    ctx.offset(2)?;
    if ctx.uint(3) > POSIX_FADV_MAX {
        return Err(Errno::EINVAL);
    }
    Ok(0)
}

/// readahead(2): POSIX_FADV_WILLNEED for a regular file or a disk (nothing to read ahead
/// into: 0); EBADF for a descriptor not open for reading, EINVAL for any other kind of file.
pub fn sys_readahead(ctx: &mut Ctx<'_>) -> SysResult {
    let f = ctx.file(0)?;
    if !f.readable() {
        return Err(Errno::EBADF);
    }
    if !matches!(f.vnode.vtype(), VType::Reg | VType::Blk) {
        return Err(Errno::EINVAL);
    }
    Ok(0)
}
