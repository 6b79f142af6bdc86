//! Memory locking and residency: mlock(2), mlock2(2), munlock(2), mlockall(2),
//! munlockall(2) and mincore(2).
//!
//! vk never pages guest memory out, so every page is as good as locked: the locking calls
//! check what Linux checks (flags, a range that is all mapped, RLIMIT_MEMLOCK for a caller
//! without CAP_IPC_LOCK) and succeed, without recording the lock (VmLck stays 0). mincore
//! answers from the address space's page table: a page is resident once touched.

use linux_raw_sys::general::CAP_IPC_LOCK;

use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};
use crate::vm::space::{PAGE, page_down, page_up};

/// mlock2's MLOCK_ONFAULT; mlockall's MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT.
const MLOCK_ONFAULT: u32 = 1;
const MCL_CURRENT: u32 = 1;
const MCL_FUTURE: u32 = 2;
const MCL_ONFAULT: u32 = 4;
/// RLIMIT_MEMLOCK's index.
const RLIMIT_MEMLOCK: usize = 8;

/// The pages of [addr, addr+len): the start rounded down, the end up (ENOMEM on overflow).
fn pages(addr: u64, len: u64) -> Result<(u64, u64), Errno> {
    let start = page_down(addr);
    let end = addr.checked_add(len).and_then(page_up).ok_or(Errno::ENOMEM)?;
    Ok((start, end))
}

/// What the lock calls check: `bytes` within RLIMIT_MEMLOCK unless CAP_IPC_LOCK (ENOMEM; EPERM
/// when the limit is 0), and, for a range, every page mapped (ENOMEM).
fn may_lock(ctx: &Ctx<'_>, range: Option<(u64, u64)>, bytes: u64) -> Result<(), Errno> {
    let u = ctx.p.user();
    if !u.cred().capable(CAP_IPC_LOCK) {
        let limit = u.rlimits.lock()[RLIMIT_MEMLOCK].0;
        if limit == 0 {
            return Err(Errno::EPERM);
        }
        if bytes > limit {
            return Err(Errno::ENOMEM);
        }
    }
    if let Some((s, e)) = range
        && s < e
        && !u.vm().read().fully_mapped(s, e)
    {
        return Err(Errno::ENOMEM);
    }
    Ok(())
}

fn lock_range(ctx: &Ctx<'_>) -> SysResult {
    let (s, e) = pages(ctx.arg(0), ctx.arg(1))?;
    may_lock(ctx, Some((s, e)), e - s)?;
    Ok(0)
}

pub fn sys_mlock(ctx: &mut Ctx<'_>) -> SysResult {
    lock_range(ctx)
}

pub fn sys_mlock2(ctx: &mut Ctx<'_>) -> SysResult {
    if ctx.uint(2) & !MLOCK_ONFAULT != 0 {
        return Err(Errno::EINVAL);
    }
    lock_range(ctx)
}

/// munlock(2): ENOMEM for a range not all mapped.
pub fn sys_munlock(ctx: &mut Ctx<'_>) -> SysResult {
    let (s, e) = pages(ctx.arg(0), ctx.arg(1))?;
    if s < e && !ctx.p.user().vm().read().fully_mapped(s, e) {
        return Err(Errno::ENOMEM);
    }
    Ok(0)
}

/// mlockall(2): EINVAL without MCL_CURRENT or MCL_FUTURE, with unknown bits, or with
/// MCL_ONFAULT alone; the whole address space must fit RLIMIT_MEMLOCK (MCL_CURRENT).
pub fn sys_mlockall(ctx: &mut Ctx<'_>) -> SysResult {
    let flags = ctx.uint(0);
    if flags == 0 || flags & !(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0 || flags == MCL_ONFAULT {
        return Err(Errno::EINVAL);
    }
    let bytes = if flags & MCL_CURRENT != 0 { ctx.p.user().vm().read().vsz() } else { 0 };
    may_lock(ctx, None, bytes)?;
    Ok(0)
}

pub fn sys_munlockall(_ctx: &mut Ctx<'_>) -> SysResult {
    Ok(0)
}

/// mincore(2): one byte per page of [addr, addr+len), 1 for a page resident in the caller's
/// address space. EINVAL for a misaligned address, ENOMEM for a range not all mapped, EFAULT
/// for the vector.
pub fn sys_mincore(ctx: &mut Ctx<'_>) -> SysResult {
    let (addr, len) = (ctx.arg(0), ctx.arg(1));
    if !addr.is_multiple_of(PAGE) {
        return Err(Errno::EINVAL);
    }
    let end = addr.checked_add(len).and_then(page_up).ok_or(Errno::ENOMEM)?;
    if end > platform::stub::layout::USER_END {
        return Err(Errno::ENOMEM);
    }
    let n = usize::try_from((end - addr) / PAGE).map_err(|_| Errno::ENOMEM)?;
    let vec = {
        let vm = ctx.p.user().vm();
        let g = vm.read();
        if n > 0 && !g.fully_mapped(addr, end) {
            return Err(Errno::ENOMEM);
        }
        let mut v = vec![0u8; n];
        for a in g.resident_addrs(addr, end) {
            if let Some(b) = usize::try_from((a - addr) / PAGE).ok().and_then(|i| v.get_mut(i)) {
                *b = 1;
            }
        }
        v
    };
    ctx.write_slice(ctx.ptr::<u8>(2).slice(n), &vec)?;
    Ok(0)
}
