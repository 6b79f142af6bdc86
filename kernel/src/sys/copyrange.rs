//! copy_file_range(2): bytes from one regular file to another inside the kernel, with
//! Linux's checks (generic_copy_file_checks) and its cross-file-system rule since 5.19: both
//! files on one file system, else EXDEV (user space — coreutils' cp — then copies itself).

use crate::fs::file::{self, File};
use crate::fs::vfs::VType;
use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};
use crate::sys::fs::{IO_CHUNK, WriteHow, fsize_count, read_file_as, write_file_as};

/// MAX_RW_COUNT: the most one call moves (INT_MAX rounded down to a page).
const MAX_RW_COUNT: u64 = (i32::MAX as u64) & !0xfff;
/// MAX_LFS_FILESIZE: the largest file offset (s_maxbytes of tmpfs; more than ext2 holds).
const MAX_FILE_SIZE: u64 = i64::MAX as u64;

/// An offset argument: None for a null pointer (the file's own offset). A negative one is
/// taken as Linux's checks see it, unsigned: EOVERFLOW when the range wraps, else EINVAL.
fn offset(ctx: &Ctx<'_>, i: usize) -> Result<Option<u64>, Errno> {
    if ctx.arg(i) == 0 {
        return Ok(None);
    }
    let off: i64 = ctx.read(ctx.ptr::<i64>(i))?;
    Ok(Some(u64::from_ne_bytes(off.to_ne_bytes())))
}

/// Where a transfer starts: the given offset, else the file's.
fn start(f: &File, off: Option<u64>) -> u64 {
    off.unwrap_or_else(|| *f.offset.lock())
}

/// copy_file_range(fd_in, off_in, fd_out, off_out, len, flags).
pub fn sys_copy_file_range(ctx: &mut Ctx<'_>) -> SysResult {
    let fin = ctx.file(0)?;
    let fout = ctx.file(2)?;
    let off_in = offset(ctx, 1)?;
    let off_out = offset(ctx, 3)?;
    let len = u64::try_from(ctx.size(4)).unwrap_or(u64::MAX);
    if ctx.uint(5) != 0 {
        return Err(Errno::EINVAL);
    }
    // generic_file_rw_checks: directories, then anything not a regular file, then the modes.
    let (tin, tout) = (fin.vnode.vtype(), fout.vnode.vtype());
    if tin == VType::Dir || tout == VType::Dir {
        return Err(Errno::EISDIR);
    }
    if tin != VType::Reg || tout != VType::Reg {
        return Err(Errno::EINVAL);
    }
    if !fin.readable() || !fout.writable() || fout.flags() & file::O_APPEND != 0 {
        return Err(Errno::EBADF);
    }
    let (ain, aout) = (fin.vnode.attr()?, fout.vnode.attr()?);
    if ain.dev != aout.dev {
        return Err(Errno::EXDEV);
    }
    let (pos_in, pos_out) = (start(&fin, off_in), start(&fout, off_out));
    if pos_in.checked_add(len).is_none() || pos_out.checked_add(len).is_none() {
        return Err(Errno::EOVERFLOW);
    }
    if pos_in > MAX_FILE_SIZE || pos_out > MAX_FILE_SIZE {
        return Err(Errno::EINVAL);
    }
    // Shorten the copy to the source's end, then to what the destination may grow to.
    let mut count = if pos_in >= ain.size { 0 } else { len.min(ain.size - pos_in) };
    count = fsize_count(ctx, pos_out, count)?;
    if pos_out >= MAX_FILE_SIZE {
        return Err(Errno::EFBIG);
    }
    count = count.min(MAX_FILE_SIZE - pos_out).min(MAX_RW_COUNT);
    if ain.ino == aout.ino && pos_out.saturating_add(count) > pos_in && pos_out < pos_in.saturating_add(count) {
        return Err(Errno::EINVAL);
    }
    let how = WriteHow { append: false, nonblock: false };
    let mut done = 0u64;
    while done < count {
        let chunk = usize::try_from((count - done).min(IO_CHUNK as u64)).unwrap_or(IO_CHUNK);
        let data = read_file_as(&fin, Some(pos_in + done), chunk, false)?;
        if data.is_empty() {
            break;
        }
        let n = match write_file_as(ctx, &fout, Some(pos_out + done), &data, how) {
            Ok(n) => n,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        done += n as u64;
        if n < data.len() || crate::kern::signal::pending(ctx.td) {
            break;
        }
    }
    for (f, off, i) in [(&fin, off_in, 1), (&fout, off_out, 3)] {
        match off {
            Some(o) => ctx.write(ctx.ptr::<i64>(i), &i64::try_from(o + done).unwrap_or(i64::MAX))?,
            None => {
                let mut pos = f.offset.lock();
                *pos = pos.saturating_add(done);
            }
        }
    }
    Ok(usize::try_from(done).unwrap_or(usize::MAX))
}
