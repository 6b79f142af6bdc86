//! Memory locking and residency: mlock(2), mlock2(2), munlock(2), mlockall(2),
//! munlockall(2) and mincore(2).
//!
//! The locks are recorded beside the mappings (`vm::mlock`): a locked range's pages are made
//! resident (MLOCK_ONFAULT, MCL_ONFAULT: as touched) and count in VmLck; vk never pages
//! memory out, so that is all a lock changes. mincore answers from the address space's page
//! table (a page is resident once touched, or populated) and, for a file or shared mapping,
//! from the file's or object's pages as well.

use linux_raw_sys::general::CAP_IPC_LOCK;

use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};
use crate::vm::entry::Backing;
use crate::vm::mlock::Lock;
use crate::vm::space::{AddressSpace, PAGE, page_down, page_up};

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

/// RLIMIT_MEMLOCK for a caller without CAP_IPC_LOCK: whether `locked` bytes in all may be
/// locked (Err(EPERM) when the limit is 0, as mlock(2) says).
pub fn within_memlock(ctx: &Ctx<'_>, locked: u64) -> Result<bool, Errno> {
    let u = ctx.p.user();
    if u.cred().capable(CAP_IPC_LOCK) {
        return Ok(true);
    }
    let limit = u.rlimits.lock()[RLIMIT_MEMLOCK].0;
    if limit == 0 {
        return Err(Errno::EPERM);
    }
    Ok(locked <= limit)
}

/// Lock `[s, e)` (`how`), which must be mapped throughout (ENOMEM), within RLIMIT_MEMLOCK
/// counting what is locked already (ENOMEM).
fn lock_range(ctx: &Ctx<'_>, s: u64, e: u64, how: Lock) -> SysResult {
    let vm = ctx.p.user().vm();
    let mut g = vm.write();
    let total = g.locked_bytes() + (e - s) - g.locked_in(s, e);
    if !within_memlock(ctx, total)? {
        return Err(Errno::ENOMEM);
    }
    if s < e && !g.fully_mapped(s, e) {
        return Err(Errno::ENOMEM);
    }
    g.set_lock(s, e, Some(how))?;
    Ok(0)
}

pub fn sys_mlock(ctx: &mut Ctx<'_>) -> SysResult {
    let (s, e) = pages(ctx.arg(0), ctx.arg(1))?;
    lock_range(ctx, s, e, Lock::Populated)
}

pub fn sys_mlock2(ctx: &mut Ctx<'_>) -> SysResult {
    let flags = ctx.uint(2);
    if flags & !MLOCK_ONFAULT != 0 {
        return Err(Errno::EINVAL);
    }
    let (s, e) = pages(ctx.arg(0), ctx.arg(1))?;
    lock_range(ctx, s, e, if flags & MLOCK_ONFAULT != 0 { Lock::OnFault } else { Lock::Populated })
}

/// munlock(2): ENOMEM for a range not all mapped.
pub fn sys_munlock(ctx: &mut Ctx<'_>) -> SysResult {
    let (s, e) = pages(ctx.arg(0), ctx.arg(1))?;
    let vm = ctx.p.user().vm();
    let mut g = vm.write();
    if s < e && !g.fully_mapped(s, e) {
        return Err(Errno::ENOMEM);
    }
    g.set_lock(s, e, None)?;
    Ok(0)
}

/// Every mapping's range.
fn whole(g: &AddressSpace) -> Vec<(u64, u64)> {
    g.entries().map(|m| (m.start, m.end)).collect()
}

/// mlockall(2): EINVAL without MCL_CURRENT or MCL_FUTURE, with unknown bits, or with
/// MCL_ONFAULT alone; the whole address space must fit RLIMIT_MEMLOCK (MCL_CURRENT: ENOMEM).
/// MCL_FUTURE locks later mappings too; without it they are not.
pub fn sys_mlockall(ctx: &mut Ctx<'_>) -> SysResult {
    let flags = ctx.uint(0);
    if flags == 0 || flags & !(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0 || flags == MCL_ONFAULT {
        return Err(Errno::EINVAL);
    }
    let how = if flags & MCL_ONFAULT != 0 { Lock::OnFault } else { Lock::Populated };
    let vm = ctx.p.user().vm();
    let mut g = vm.write();
    if flags & MCL_CURRENT != 0 && !within_memlock(ctx, g.vsz())? {
        return Err(Errno::ENOMEM);
    }
    g.lock_future = (flags & MCL_FUTURE != 0).then_some(how);
    if flags & MCL_CURRENT != 0 {
        for (s, e) in whole(&g) {
            g.set_lock(s, e, Some(how))?;
        }
    }
    Ok(0)
}

/// munlockall(2): every lock goes, and MCL_FUTURE's.
pub fn sys_munlockall(ctx: &mut Ctx<'_>) -> SysResult {
    let vm = ctx.p.user().vm();
    let mut g = vm.write();
    g.lock_future = None;
    for (s, e) in whole(&g) {
        g.set_lock(s, e, None)?;
    }
    Ok(0)
}

/// mincore(2): one byte per page of [addr, addr+len), 1 for a page resident in the caller's
/// address space or, for a file or shared mapping, in memory at all. EINVAL for a misaligned address, ENOMEM for a range not all mapped, EFAULT
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
        // A file's or a shared object's page counts wherever it is in memory (another
        // process touched it, or the page cache has it), as Linux's mincore_page.
        for e in g.entries().filter(|e| e.start < end && e.end > addr) {
            let (s, t) = (e.start.max(addr), e.end.min(end));
            let resident = |page_index: u64| match &e.backing {
                Backing::File { vnode, .. } | Backing::SharedFile { vnode, .. } => vnode.page_resident(page_index),
                Backing::Shared { object, .. } => object.has_page(page_index),
                Backing::Anon => false,
            };
            let mut va = s;
            while va < t {
                let idx = (e.offset() + (va - e.start)) / PAGE;
                if let Some(b) = usize::try_from((va - addr) / PAGE).ok().and_then(|i| v.get_mut(i))
                    && *b == 0
                    && resident(idx)
                {
                    *b = 1;
                }
                va += PAGE;
            }
        }
        v
    };
    ctx.write_slice(ctx.ptr::<u8>(2).slice(n), &vec)?;
    Ok(0)
}
