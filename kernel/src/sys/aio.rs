//! Linux native AIO: io_setup(2), io_submit(2), io_getevents(2), io_cancel(2),
//! io_destroy(2).
//!
//! A context is Linux's: an `aio_ring` mapped into the process (its address is the context
//! id io_setup returns; libaio reads completions from it without a system call), holding a
//! header (`id`, `nr`, `head`, `tail`, the magic, `header_length`) and `nr` `io_event`s. The
//! kernel appends at `tail`; io_getevents (or the program itself) consumes at `head`.
//!
//! Requests run synchronously at submission — a read, write, readv, writev, fsync or fdatasync
//! through the same paths as the system calls, RWF_* flags honoured — and their completion goes
//! on the ring at once (with an eventfd signalled for IOCB_FLAG_RESFD), so io_cancel never
//! finds a request in flight (EINVAL, as Linux answers for a completed one). Argument checks
//! follow Linux's io_submit_one: errors before the request starts are io_submit's, errors of
//! the transfer are the event's `res`. A context holds at most the `nr_events` io_setup asked
//! for in completions not yet consumed (EAGAIN past that); contexts are not inherited by fork
//! (the ring is MADV_DONTFORK'd) and go at exec and exit.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::abi::fs::Iovec;
use crate::abi::time::Timespec;
use crate::fs::file::{self, File};
use crate::fs::vnops;
use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};
use crate::kern::aio::{AIO_MAX_NR, AIO_NR, AioCtx, wchan};
use crate::kern::sleeplock::SleepLock;
use crate::sys::fs::{WriteHow, gather, iovecs_at, reachable, read_into, sigpipe, write_file_as};
use crate::sys::rwv::RwfFlags;
use crate::vm::space::{Backing, MapEntry, PROT_READ, PROT_WRITE, page_up};
use crate::vm::uaccess::{UserPtr, UserSlice};

/// `struct aio_ring`'s header.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
struct RingHeader {
    id: u32,
    nr: u32,
    head: u32,
    tail: u32,
    magic: u32,
    compat_features: u32,
    incompat_features: u32,
    header_length: u32,
}

const AIO_RING_MAGIC: u32 = 0xa10a_10a1;
const HEADER_LEN: u64 = 32;
const _: () = assert!(size_of::<RingHeader>() as u64 == HEADER_LEN);

/// `struct io_event`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct IoEvent {
    data: u64,
    obj: u64,
    res: i64,
    res2: i64,
}

/// `struct iocb`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
struct Iocb {
    aio_data: u64,
    aio_key: u32,
    aio_rw_flags: u32,
    aio_lio_opcode: u16,
    aio_reqprio: i16,
    aio_fildes: u32,
    aio_buf: u64,
    aio_nbytes: u64,
    aio_offset: i64,
    aio_reserved2: u64,
    aio_flags: u32,
    aio_resfd: u32,
}

const _: () = assert!(size_of::<Iocb>() == 64 && size_of::<IoEvent>() == 32);

const IOCB_CMD_PREAD: u16 = 0;
const IOCB_CMD_PWRITE: u16 = 1;
const IOCB_CMD_FSYNC: u16 = 2;
const IOCB_CMD_FDSYNC: u16 = 3;
const IOCB_CMD_PREADV: u16 = 7;
const IOCB_CMD_PWRITEV: u16 = 8;
const IOCB_FLAG_RESFD: u32 = 1;
/// The key io_submit writes into each iocb (io_cancel checks it).
const KIOCB_KEY: u32 = 0;
fn lookup(ctx: &Ctx<'_>, id: u64) -> Result<Arc<AioCtx>, Errno> {
    ctx.p.user().aio.ctxs.lock().get(&id).cloned().ok_or(Errno::EINVAL)
}

fn header(ctx: &Ctx<'_>, c: &AioCtx) -> Result<RingHeader, Errno> {
    ctx.read(UserPtr::<RingHeader>::new(c.ring))
}

pub fn sys_io_setup(ctx: &mut Ctx<'_>) -> SysResult {
    let nr = ctx.uint(0);
    let idp = ctx.ptr::<u64>(1);
    if ctx.read(idp)? != 0 || nr == 0 {
        return Err(Errno::EINVAL);
    }
    if u64::from(nr) > 0x1000_0000 / size_of::<IoEvent>() as u64 {
        return Err(Errno::EINVAL);
    }
    if AIO_NR.fetch_add(u64::from(nr), Ordering::Relaxed) + u64::from(nr) > AIO_MAX_NR {
        AIO_NR.fetch_sub(u64::from(nr), Ordering::Relaxed);
        return Err(Errno::EAGAIN);
    }
    let r = setup(ctx, nr);
    if r.is_err() {
        AIO_NR.fetch_sub(u64::from(nr), Ordering::Relaxed);
    }
    r
}

fn setup(ctx: &mut Ctx<'_>, nr: u32) -> SysResult {
    // One slot stays empty, so a full ring is told from an empty one.
    let slots = nr + 1;
    let ring_len = page_up(HEADER_LEN + u64::from(slots) * size_of::<IoEvent>() as u64).ok_or(Errno::ENOMEM)?;
    let ring = {
        let vm = ctx.p.user().vm();
        let mut g = vm.write();
        let start = g.find_free(ring_len, g.mmap_base).ok_or(Errno::ENOMEM)?;
        let end = start + ring_len;
        g.map(MapEntry {
            start,
            end,
            prot: PROT_READ | PROT_WRITE,
            backing: Backing::Anon,
            name: b"/[aio] (deleted)".to_vec(),
        });
        g.inherit.set(start, end, Some(crate::vm::inherit::Inherit::DontFork));
        start
    };
    let id = u32::try_from(ctx.p.user().aio.ctxs.lock().len()).unwrap_or(u32::MAX);
    let h = RingHeader {
        id,
        nr: slots,
        head: 0,
        tail: 0,
        magic: AIO_RING_MAGIC,
        compat_features: 1,
        incompat_features: 0,
        header_length: 32,
    };
    let c = Arc::new(AioCtx { ring, ring_len, slots, max_events: nr, tail: SleepLock::new("aioring", 0) });
    if let Err(e) = ctx.write(UserPtr::<RingHeader>::new(ring), &h).and_then(|()| ctx.write(ctx.ptr::<u64>(1), &ring)) {
        unmap(ctx, &c);
        return Err(e);
    }
    ctx.p.user().aio.ctxs.lock().insert(ring, c);
    Ok(0)
}

fn unmap(ctx: &Ctx<'_>, c: &AioCtx) {
    ctx.p.user().vm().write().unmap(c.ring, c.ring + c.ring_len);
    crate::kern::usertrap::sync_stub(ctx);
}

pub fn sys_io_destroy(ctx: &mut Ctx<'_>) -> SysResult {
    let id = ctx.arg(0);
    let c = ctx.p.user().aio.ctxs.lock().remove(&id).ok_or(Errno::EINVAL)?;
    AIO_NR.fetch_sub(u64::from(c.max_events), Ordering::Relaxed);
    unmap(ctx, &c);
    crate::kern::sleep::wakeup(wchan(&c));
    Ok(0)
}

pub fn sys_io_submit(ctx: &mut Ctx<'_>) -> SysResult {
    let nr = i64::from_ne_bytes(ctx.arg(1).to_ne_bytes());
    if nr < 0 {
        return Err(Errno::EINVAL);
    }
    let c = lookup(ctx, ctx.arg(0))?;
    let nr = nr.min(i64::from(c.max_events));
    let list = ctx.arg(2);
    let mut done = 0usize;
    for i in 0..u64::try_from(nr).unwrap_or(0) {
        let r = ctx.read(UserPtr::<u64>::new(list.wrapping_add(i * 8))).and_then(|p| submit_one(ctx, &c, p));
        match r {
            Ok(()) => done += 1,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        }
    }
    if done > 0 {
        crate::kern::sleep::wakeup(wchan(&c));
    }
    Ok(done)
}

/// Completions on the ring not yet consumed.
fn queued(c: &AioCtx, head: u32, tail: u32) -> u32 {
    (tail + c.slots - head % c.slots) % c.slots
}

fn submit_one(ctx: &Ctx<'_>, c: &AioCtx, user_iocb: u64) -> Result<(), Errno> {
    let cb: Iocb = ctx.read(UserPtr::<Iocb>::new(user_iocb))?;
    if cb.aio_reserved2 != 0 || isize::try_from(cb.aio_nbytes).is_err() {
        return Err(Errno::EINVAL);
    }
    let head = header(ctx, c)?.head;
    if queued(c, head, *c.tail.lock()) >= c.max_events {
        return Err(Errno::EAGAIN);
    }
    let f = ctx.p.user().files().lock().get(i32::try_from(cb.aio_fildes).unwrap_or(-1))?;
    let resfd = if cb.aio_flags & IOCB_FLAG_RESFD != 0 {
        let e = ctx.p.user().files().lock().get(i32::try_from(cb.aio_resfd).unwrap_or(-1))?;
        if e.vnode.as_any().and_then(|a| a.downcast_ref::<crate::fs::eventfd::EventFd>()).is_none() {
            return Err(Errno::EINVAL);
        }
        Some(e)
    } else {
        None
    };
    ctx.write(UserPtr::<u32>::new(user_iocb + 8), &KIOCB_KEY)?;
    let res = match cb.aio_lio_opcode {
        IOCB_CMD_PREAD | IOCB_CMD_PREADV | IOCB_CMD_PWRITE | IOCB_CMD_PWRITEV => rw(ctx, &f, &cb)?,
        IOCB_CMD_FSYNC | IOCB_CMD_FDSYNC => {
            if cb.aio_buf != 0 || cb.aio_offset != 0 || cb.aio_nbytes != 0 || cb.aio_rw_flags != 0 {
                return Err(Errno::EINVAL);
            }
            vnops::fsync(f.vnode.as_ref()).map(|()| 0)
        }
        _ => return Err(Errno::EINVAL),
    };
    let ev = IoEvent {
        data: cb.aio_data,
        obj: user_iocb,
        res: match res {
            Ok(n) => i64::try_from(n).unwrap_or(i64::MAX),
            Err(e) => -i64::from(e.num()),
        },
        res2: 0,
    };
    complete(ctx, c, &ev)?;
    if let Some(e) = resfd
        && let Some(efd) = e.vnode.as_any().and_then(|a| a.downcast_ref::<crate::fs::eventfd::EventFd>())
    {
        efd.signal(1);
    }
    Ok(())
}

/// A read or write request: checked as aio_prep_rw and aio_read/aio_write do (errors that
/// are io_submit's), then carried out (its result is the event's).
fn rw(ctx: &Ctx<'_>, f: &File, cb: &Iocb) -> Result<SysResult, Errno> {
    let flags = RwfFlags::from_bits(cb.aio_rw_flags).ok_or(Errno::EOPNOTSUPP)?;
    let write = matches!(cb.aio_lio_opcode, IOCB_CMD_PWRITE | IOCB_CMD_PWRITEV);
    if write && !f.writable() || !write && !f.readable() {
        return Err(Errno::EBADF);
    }
    let bufs = if matches!(cb.aio_lio_opcode, IOCB_CMD_PREADV | IOCB_CMD_PWRITEV) {
        let n = usize::try_from(cb.aio_nbytes).map_err(|_| Errno::EINVAL)?;
        iovecs_at(ctx, UserSlice::<Iovec>::new(cb.aio_buf, n))?
    } else {
        vec![UserSlice::<u8>::new(cb.aio_buf, usize::try_from(cb.aio_nbytes).map_err(|_| Errno::EINVAL)?)]
    };
    let off = if f.vnode.seekable() { Some(u64::try_from(cb.aio_offset).map_err(|_| Errno::EINVAL)?) } else { None };
    let nonblock = flags.contains(RwfFlags::NOWAIT) || f.flags() & file::O_NONBLOCK != 0;
    if !write {
        return Ok(read_into(ctx, f, off, &bufs, nonblock));
    }
    let how = WriteHow { append: flags.contains(RwfFlags::APPEND) || f.flags() & file::O_APPEND != 0, nonblock };
    let r = reachable(ctx, f, &bufs, 0)
        .and_then(|b| gather(ctx, &b))
        .and_then(|data| write_file_as(ctx, f, off, &data, how));
    let r = sigpipe(ctx, r);
    if r.as_ref().is_ok_and(|&n| n > 0) && flags.intersects(RwfFlags::DSYNC | RwfFlags::SYNC) {
        vnops::fsync(f.vnode.as_ref())?;
    }
    Ok(r)
}

/// Put a completion on the ring.
fn complete(ctx: &Ctx<'_>, c: &AioCtx, ev: &IoEvent) -> Result<(), Errno> {
    let mut tail = c.tail.lock();
    let at = c.ring + HEADER_LEN + u64::from(*tail) * size_of::<IoEvent>() as u64;
    ctx.write(UserPtr::<IoEvent>::new(at), ev)?;
    *tail = (*tail + 1) % c.slots;
    ctx.write(UserPtr::<u32>::new(c.ring + 12), &*tail)?;
    Ok(())
}

/// Take up to `max` completions off the ring into `out`.
fn reap(ctx: &Ctx<'_>, c: &AioCtx, out: u64, max: usize) -> Result<usize, Errno> {
    let guard = c.tail.lock();
    let tail = *guard;
    let h = header(ctx, c)?;
    let mut head = h.head % c.slots;
    let mut n = 0;
    while n < max && head != tail {
        let at = c.ring + HEADER_LEN + u64::from(head) * size_of::<IoEvent>() as u64;
        let ev: IoEvent = ctx.read(UserPtr::<IoEvent>::new(at))?;
        ctx.write(UserPtr::<IoEvent>::new(out + (n * size_of::<IoEvent>()) as u64), &ev)?;
        head = (head + 1) % c.slots;
        n += 1;
    }
    ctx.write(UserPtr::<u32>::new(c.ring + 8), &head)?;
    Ok(n)
}

pub fn sys_io_getevents(ctx: &mut Ctx<'_>) -> SysResult {
    let (min_nr, nr) = (i64::from_ne_bytes(ctx.arg(1).to_ne_bytes()), i64::from_ne_bytes(ctx.arg(2).to_ne_bytes()));
    let out = ctx.arg(3);
    let tsp = ctx.ptr::<Timespec>(4);
    let timeout = if tsp.is_null() { None } else { Some(ctx.read(tsp)?.to_ns()?) };
    let c = lookup(ctx, ctx.arg(0))?;
    if min_nr < 0 || min_nr > nr {
        return Err(Errno::EINVAL);
    }
    let (min_nr, nr) = (usize::try_from(min_nr).unwrap_or(0), usize::try_from(nr).unwrap_or(0));
    let deadline = timeout.map(|t| platform::time::uptime_ns().saturating_add(t));
    let mut got = 0;
    loop {
        got += reap(ctx, &c, out + (got * size_of::<IoEvent>()) as u64, nr - got)?;
        if got >= min_nr || got == nr {
            return Ok(got);
        }
        let left = match deadline {
            Some(d) => {
                let now = platform::time::uptime_ns();
                if now >= d {
                    return Ok(got);
                }
                Some(Duration::from_nanos(d - now))
            }
            None => None,
        };
        if !ctx.p.user().aio.ctxs.lock().contains_key(&c.ring) {
            return if got > 0 { Ok(got) } else { Err(Errno::EINVAL) };
        }
        use crate::kern::sleep::{SleepOpts, tsleep};
        use crate::kern::thread::WakeReason;
        if tsleep(wchan(&c), "aiowait", SleepOpts { interruptible: true, timeout: left }) == WakeReason::Interrupted
            && crate::kern::signal::pending(ctx.td)
        {
            return if got > 0 { Ok(got) } else { Err(Errno::EINTR) };
        }
    }
}

pub fn sys_io_cancel(ctx: &mut Ctx<'_>) -> SysResult {
    let key: u32 = ctx.read(UserPtr::<u32>::new(ctx.arg(1).wrapping_add(8)))?;
    if key != KIOCB_KEY {
        return Err(Errno::EINVAL);
    }
    lookup(ctx, ctx.arg(0))?;
    // Every request completed at submission: none is in flight to cancel.
    Err(Errno::EINVAL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_occupancy_wraps() {
        let c =
            AioCtx { ring: 0, ring_len: crate::vm::space::PAGE, slots: 5, max_events: 4, tail: SleepLock::new("t", 0) };
        assert_eq!(queued(&c, 0, 0), 0);
        assert_eq!(queued(&c, 0, 4), 4);
        assert_eq!(queued(&c, 3, 1), 3);
        assert_eq!(queued(&c, 4, 4), 0);
    }
}
