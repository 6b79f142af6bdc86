//! splice(2) and vmsplice(2) as copies: vk's pipes hold bytes, not page references, so
//! splice moves data between a pipe and another descriptor (or two pipes) by reading and
//! writing it — what the caller sees is Linux's (offsets, errors, partial counts), without
//! the zero-copy. tee(2) copies a pipe's data into another without consuming it.

use crate::fs::file::{self, File};
use crate::fs::pipe::PipeEnd;
use crate::fs::vfs::VType;
use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};
use crate::sys::fs::{IO_CHUNK, WriteHow, gather_iov, read_file_as, readv_at, sigpipe, write_file_as};

/// SPLICE_F_MOVE, SPLICE_F_NONBLOCK, SPLICE_F_MORE, SPLICE_F_GIFT.
const SPLICE_F_NONBLOCK: u32 = 2;
const SPLICE_F_ALL: u32 = 0xf;
/// What one call moves at most: a pipe's default capacity.
const PIPE_BUF_MAX: usize = 65536;
/// A pipe write up to this size is atomic (PIPE_BUF).
const PIPE_BUF: usize = 4096;

fn is_pipe(f: &File) -> bool {
    f.vnode.vtype() == VType::Fifo
}

/// An offset argument: None when the pointer is null; ESPIPE for a pipe's, EINVAL if negative.
fn offset(ctx: &Ctx<'_>, i: usize, f: &File) -> Result<Option<u64>, Errno> {
    if ctx.arg(i) == 0 {
        return Ok(None);
    }
    if is_pipe(f) || !f.vnode.seekable() {
        return Err(Errno::ESPIPE);
    }
    let off: i64 = ctx.read(ctx.ptr::<i64>(i))?;
    u64::try_from(off).map(Some).map_err(|_| Errno::EINVAL)
}

/// splice(fd_in, off_in, fd_out, off_out, len, flags): at least one end a pipe (EINVAL), not
/// the same pipe at both (EINVAL), no offset for a pipe (ESPIPE), descriptors open the right
/// way (EBADF), not to an O_APPEND file (EINVAL).
pub fn sys_splice(ctx: &mut Ctx<'_>) -> SysResult {
    let fin = ctx.file(0)?;
    let fout = ctx.file(2)?;
    let len = ctx.size(4);
    let flags = ctx.uint(5);
    if flags & !SPLICE_F_ALL != 0 {
        return Err(Errno::EINVAL);
    }
    if !fin.readable() || !fout.writable() {
        return Err(Errno::EBADF);
    }
    if !is_pipe(&fin) && !is_pipe(&fout) {
        return Err(Errno::EINVAL);
    }
    // What has splice_read and splice_write on Linux: files, disks, sockets (and devices for
    // writing); not directories, symbolic links or the anonymous-inode files (EINVAL).
    if !matches!(fin.vnode.vtype(), VType::Reg | VType::Blk | VType::Fifo | VType::Sock)
        || !matches!(fout.vnode.vtype(), VType::Reg | VType::Blk | VType::Fifo | VType::Sock | VType::Chr)
    {
        return Err(Errno::EINVAL);
    }
    if is_pipe(&fin) && is_pipe(&fout) && fin.vnode.id() == fout.vnode.id() {
        return Err(Errno::EINVAL);
    }
    if fout.flags() & file::O_APPEND != 0 {
        return Err(Errno::EINVAL);
    }
    let off_in = offset(ctx, 1, &fin)?;
    let off_out = offset(ctx, 3, &fout)?;
    if len == 0 {
        return Ok(0);
    }
    let nonblock = flags & SPLICE_F_NONBLOCK != 0;
    let data = read_file_as(&fin, off_in, len.min(PIPE_BUF_MAX).min(IO_CHUNK), nonblock || fin.flags() & file::O_NONBLOCK != 0)?;
    if data.is_empty() {
        return Ok(0);
    }
    let how = WriteHow { append: false, nonblock: nonblock || fout.flags() & file::O_NONBLOCK != 0 };
    let n = sigpipe(ctx, write_file_as(ctx, &fout, off_out, &data, how))?;
    let moved = u64::try_from(n).unwrap_or(0);
    if let Some(o) = off_in {
        ctx.write(ctx.ptr::<i64>(1), &i64::try_from(o.saturating_add(moved)).unwrap_or(i64::MAX))?;
    } else if !is_pipe(&fin) && n < data.len() {
        // Give back what was read but not written.
        let mut pos = fin.offset.lock();
        *pos = pos.saturating_sub(u64::try_from(data.len() - n).unwrap_or(0));
    }
    if let Some(o) = off_out {
        ctx.write(ctx.ptr::<i64>(3), &i64::try_from(o.saturating_add(moved)).unwrap_or(i64::MAX))?;
    }
    Ok(n)
}

/// vmsplice(fd, iov, nr_segs, flags): into a pipe open for writing — what fits (a full pipe
/// waits for room, unless SPLICE_F_NONBLOCK: EAGAIN) —, out of one open for reading (as
/// readv); EBADF for a descriptor that is not a pipe, EINVAL for unknown flags.
pub fn sys_vmsplice(ctx: &mut Ctx<'_>) -> SysResult {
    let f = ctx.file(0)?;
    let flags = ctx.uint(3);
    if flags & !SPLICE_F_ALL != 0 {
        return Err(Errno::EINVAL);
    }
    if !is_pipe(&f) {
        return Err(Errno::EBADF);
    }
    let nonblock = flags & SPLICE_F_NONBLOCK != 0 || f.flags() & file::O_NONBLOCK != 0;
    if f.writable() {
        let data = gather_iov(ctx, &f)?;
        let data = &data[..data.len().min(PIPE_BUF_MAX)];
        if data.is_empty() {
            return Ok(0);
        }
        match write_file_as(ctx, &f, None, data, WriteHow { append: false, nonblock: true }) {
            Err(Errno::EAGAIN) if !nonblock => {
                // Full: wait for room for one atomic write (PIPE_BUF), as much as fits then.
                sigpipe(ctx, write_file_as(ctx, &f, None, &data[..data.len().min(PIPE_BUF)], WriteHow { append: false, nonblock: false }))
            }
            r => sigpipe(ctx, r),
        }
    } else if f.readable() {
        readv_at(ctx, &f, None, nonblock)
    } else {
        Err(Errno::EBADF)
    }
}

/// tee(fd_in, fd_out, len, flags): copy up to `len` bytes from the front of one pipe into
/// another, leaving them in the first. Both pipes (EINVAL), not the same one (EINVAL), open
/// the right way (EBADF); an empty pipe with writers waits (EAGAIN with SPLICE_F_NONBLOCK),
/// one with none is 0.
pub fn sys_tee(ctx: &mut Ctx<'_>) -> SysResult {
    let fin = ctx.file(0)?;
    let fout = ctx.file(1)?;
    let len = ctx.size(2);
    let flags = ctx.uint(3);
    if flags & !SPLICE_F_ALL != 0 {
        return Err(Errno::EINVAL);
    }
    if !fin.readable() || !fout.writable() {
        return Err(Errno::EBADF);
    }
    if !is_pipe(&fin) || !is_pipe(&fout) || fin.vnode.id() == fout.vnode.id() {
        return Err(Errno::EINVAL);
    }
    let pin = fin.vnode.as_any().and_then(|a| a.downcast_ref::<PipeEnd>()).ok_or(Errno::EINVAL)?;
    if len == 0 {
        return Ok(0);
    }
    let nonblock = flags & SPLICE_F_NONBLOCK != 0;
    let data = pin.pipe().peek(len.min(PIPE_BUF_MAX), nonblock || fin.flags() & file::O_NONBLOCK != 0)?;
    if data.is_empty() {
        return Ok(0);
    }
    let how = WriteHow { append: false, nonblock: nonblock || fout.flags() & file::O_NONBLOCK != 0 };
    sigpipe(ctx, write_file_as(ctx, &fout, None, &data, how))
}
