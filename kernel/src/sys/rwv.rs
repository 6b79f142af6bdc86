//! preadv(2), pwritev(2), preadv2(2), pwritev2(2): readv and writev at an offset, and with
//! per-call flags (RWF_*). The transfers themselves are fs.rs's (`readv_at`, `writev_at`).

use bitflags::bitflags;
use linux_raw_sys::general as g;

use crate::fs::file;
use crate::fs::vnops;
use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};
use crate::sys::fs::{WriteHow, readv_at, writev_at};

bitflags! {
    /// The per-call flags of preadv2(2) and pwritev2(2) (Linux 6.1's RWF_SUPPORTED).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct RwfFlags: u32 {
        /// Polled completion: nothing to poll here, the call completes as it would.
        const HIPRI = g::RWF_HIPRI;
        /// Data written is synchronized before the call returns (as O_DSYNC).
        const DSYNC = g::RWF_DSYNC;
        /// Data and metadata synchronized before the call returns (as O_SYNC).
        const SYNC = g::RWF_SYNC;
        /// Do not wait for data or room: EAGAIN instead (as O_NONBLOCK, for this call).
        const NOWAIT = g::RWF_NOWAIT;
        /// Append to the file whatever the offset says (as O_APPEND, for this call).
        const APPEND = g::RWF_APPEND;
    }
}

/// The offset of arguments 3 (pos_l) and 4 (pos_h): on x86-64 pos_l holds all 64 bits
/// (pos_from_hilo shifts pos_h out). `Ok(None)` is preadv2's -1, "the file's offset".
fn position(ctx: &Ctx<'_>, minus_one_is_current: bool) -> Result<Option<u64>, Errno> {
    let pos = i64::from_ne_bytes(ctx.arg(3).to_ne_bytes());
    if pos == -1 && minus_one_is_current {
        return Ok(None);
    }
    u64::try_from(pos).map(Some).map_err(|_| Errno::EINVAL)
}

/// What the positioned forms check before the transfer: the descriptor, and that it can be
/// read or written at an offset (ESPIPE for pipes, sockets, terminals).
fn positioned_file(ctx: &Ctx<'_>, pos: Option<u64>) -> Result<std::sync::Arc<file::File>, Errno> {
    let f = ctx.file(0)?;
    if pos.is_some() && !f.vnode.seekable() {
        return Err(Errno::ESPIPE);
    }
    Ok(f)
}

/// The flags of argument 5 (`with_flags`: preadv2, pwritev2), checked after the descriptor
/// as Linux does (EOPNOTSUPP for a flag it does not know).
fn rw_flags(ctx: &Ctx<'_>, with_flags: bool) -> Result<RwfFlags, Errno> {
    if !with_flags {
        return Ok(RwfFlags::empty());
    }
    RwfFlags::from_bits(ctx.uint(5)).ok_or(Errno::EOPNOTSUPP)
}

fn read(ctx: &Ctx<'_>, pos: Option<u64>, with_flags: bool) -> SysResult {
    let f = positioned_file(ctx, pos)?;
    let flags = rw_flags(ctx, with_flags)?;
    let nonblock = flags.contains(RwfFlags::NOWAIT) || f.flags() & file::O_NONBLOCK != 0;
    readv_at(ctx, &f, pos, nonblock)
}

fn write(ctx: &Ctx<'_>, pos: Option<u64>, with_flags: bool) -> SysResult {
    let f = positioned_file(ctx, pos)?;
    let flags = rw_flags(ctx, with_flags)?;
    let how = WriteHow {
        append: flags.contains(RwfFlags::APPEND) || f.flags() & file::O_APPEND != 0,
        nonblock: flags.contains(RwfFlags::NOWAIT) || f.flags() & file::O_NONBLOCK != 0,
    };
    let n = writev_at(ctx, &f, pos, how)?;
    if flags.intersects(RwfFlags::DSYNC | RwfFlags::SYNC) && n > 0 {
        vnops::fsync(f.vnode.as_ref())?;
    }
    Ok(n)
}

pub fn sys_preadv(ctx: &mut Ctx<'_>) -> SysResult {
    let pos = position(ctx, false)?;
    read(ctx, pos, false)
}

pub fn sys_pwritev(ctx: &mut Ctx<'_>) -> SysResult {
    let pos = position(ctx, false)?;
    write(ctx, pos, false)
}

/// preadv2(2): offset -1 reads at (and advances) the file's offset, as readv(2).
pub fn sys_preadv2(ctx: &mut Ctx<'_>) -> SysResult {
    let pos = position(ctx, true)?;
    read(ctx, pos, true)
}

/// pwritev2(2): offset -1 writes at (and advances) the file's offset, as writev(2).
pub fn sys_pwritev2(ctx: &mut Ctx<'_>) -> SysResult {
    let pos = position(ctx, true)?;
    write(ctx, pos, true)
}
