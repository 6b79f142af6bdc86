//! Memory system calls: brk(2), mmap(2), munmap(2), mprotect(2), mremap(2), msync(2),
//! madvise(2).
//!
//! Like Linux's default overcommit heuristic, a single private writable mapping (or break
//! growth) larger than all of physical memory is refused with ENOMEM: it could never be
//! backed. Smaller ones are backed on demand, and running out kills the process that faults.

use platform::stub::layout::USER_END;

use crate::abi::mm::{Advice, MapFlags, MapType, MremapFlags, MsyncFlags, Prot};
use crate::fs::vfs::VType;
use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};
use crate::vm::space::{Backing, MMAP_MIN, MapEntry, PAGE, PROT_EXEC, PROT_READ, PROT_WRITE, SharedObject, page_up};

/// Linux's OVERCOMMIT_GUESS for one request ([`crate::vm::space::AddressSpace::overcommit_ok`]).
fn overcommit_ok(ctx: &Ctx<'_>, len: u64) -> bool {
    ctx.p.user().vm().read().overcommit_ok(len)
}

/// RLIMIT_AS (may_expand_vm): whether `[start, end)` may be mapped without the address
/// space passing the caller's soft limit (what it replaces does not count twice).
fn within_as_limit(ctx: &Ctx<'_>, g: &crate::vm::space::AddressSpace, start: u64, end: u64) -> bool {
    let limit = ctx.p.user().rlimits.lock()[RLIMIT_AS].0;
    if limit == u64::MAX {
        return true;
    }
    let replaced: u64 = g.entries().filter(|m| m.start < end && m.end > start).map(|m| m.end.min(end) - m.start.max(start)).sum();
    g.vsz() - replaced + (end - start) <= limit
}

/// RLIMIT_AS's index.
const RLIMIT_AS: usize = 9;

/// A guest address as a system call's result.
fn addr_result(addr: u64) -> SysResult {
    usize::try_from(addr).map_err(|_| Errno::ENOMEM)
}

/// A user range [addr, addr+len) rounded out to pages, checked to lie in user space.
fn range(addr: u64, len: u64) -> Result<(u64, u64), Errno> {
    if !addr.is_multiple_of(PAGE) || len == 0 {
        return Err(Errno::EINVAL);
    }
    let end = addr.checked_add(len).and_then(page_up).ok_or(Errno::EINVAL)?;
    if end > USER_END {
        return Err(Errno::EINVAL);
    }
    Ok((addr, end))
}

pub fn sys_brk(ctx: &mut Ctx<'_>) -> SysResult {
    let want = ctx.arg(0);
    let vm = ctx.p.user().vm();
    let mut g = vm.write();
    let old = g.brk;
    if want < g.brk_start || want >= g.mmap_base {
        return addr_result(old);
    }
    let (old_end, new_end) = (page_up(old).ok_or(Errno::ENOMEM)?, page_up(want).ok_or(Errno::ENOMEM)?);
    if new_end > old_end {
        if !g.is_free(old_end, new_end) || !g.overcommit_ok(new_end - g.brk_start) || !within_as_limit(ctx, &g, old_end, new_end) {
            return addr_result(old);
        }
        g.map(MapEntry {
            start: old_end,
            end: new_end,
            prot: PROT_READ | PROT_WRITE,
            backing: Backing::Anon,
            name: b"[heap]".to_vec(),
        });
    } else if new_end < old_end {
        g.unmap(new_end, old_end);
    }
    g.brk = want;
    addr_result(want)
}

/// mmap(2). Unknown protection bits are ignored and so are unknown flags (but with
/// MAP_SHARED_VALIDATE of a file), as Linux does; see [`MapFlags`] for what it refuses.
pub fn sys_mmap(ctx: &mut Ctx<'_>) -> SysResult {
    let (hint, len, fd, off) = (ctx.arg(0), ctx.arg(1), ctx.fd(4), ctx.arg(5));
    let prot = ctx.flags_lenient::<Prot>(2).vm_bits();
    let (ty, flags) = MapFlags::decode(ctx.uint(3))?;
    // A file mapping's descriptor is looked up first (ksys_mmap_pgoff): EBADF before EINVAL.
    if !flags.contains(MapFlags::ANONYMOUS) {
        ctx.p.user().files().lock().get(fd)?;
    }
    if len == 0 {
        return Err(Errno::EINVAL);
    }
    let len = page_up(len).ok_or(Errno::ENOMEM)?;
    // /dev/zero (mem(4)): anonymous memory, shared with MAP_SHARED.
    let zero = !flags.contains(MapFlags::ANONYMOUS)
        && ctx.p.user().files().lock().get(fd).is_ok_and(|f| f.vnode.as_any().and_then(|a| a.downcast_ref::<crate::fs::devfs::CharDev>()).is_some_and(|c| c.is_zero()));
    let anon = flags.contains(MapFlags::ANONYMOUS);
    if anon && ty == MapType::SharedValidate {
        return Err(Errno::EINVAL);
    }
    if !anon && ty == MapType::SharedValidate {
        MapFlags::validate(ctx.uint(3))?;
    }
    if !anon && flags.contains(MapFlags::SYNC) {
        // MAP_SYNC needs a DAX file, and no file here is one.
        return Err(Errno::EOPNOTSUPP);
    }
    let shared = ty != MapType::Private;
    if !off.is_multiple_of(PAGE) {
        return Err(Errno::EINVAL);
    }
    if !shared && prot & PROT_WRITE != 0 && !overcommit_ok(ctx, len) {
        return Err(Errno::ENOMEM);
    }
    if zero {
        let f = crate::sys::fs::file_not_path(ctx, fd)?;
        if !f.readable() || (shared && prot & PROT_WRITE != 0 && !f.writable()) {
            return Err(Errno::EACCES);
        }
    }
    let backing = if anon || zero {
        if shared { Backing::Shared { object: SharedObject::new(), offset: 0 } } else { Backing::Anon }
    } else {
        let f = crate::sys::fs::file_not_path(ctx, fd)?;
        if !f.readable() || (shared && prot & PROT_WRITE != 0 && !f.writable()) {
            return Err(Errno::EACCES);
        }
        if prot & PROT_EXEC != 0 {
            crate::fs::mount::may_map_exec(f.mount())?; // EPERM on a noexec mount
        }
        let a = f.vnode.attr()?;
        if a.vtype() != VType::Reg {
            return Err(Errno::ENODEV);
        }
        if off.checked_add(len).is_none_or(|e| i64::try_from(e).is_err()) {
            return Err(Errno::EOVERFLOW);
        }
        if shared && (f.vnode.shared_pages() || f.vnode.page_cache().is_some()) {
            // The file's own pages (tmpfs), or its cached pages (ext2, hostfs: written back by
            // msync, fsync and the syncer). A file open read-only can never be made writable
            // here (mprotect: EACCES), as on Linux, which clears VM_MAYWRITE then.
            Backing::SharedFile { vnode: f.vnode.clone(), offset: off, may_write: f.writable() }
        } else if shared && prot & PROT_WRITE != 0 {
            // Only file systems with pages to share (tmpfs, ext2's page cache) map shared.
            return Err(Errno::ENODEV);
        } else {
            // Private, or shared read-only (which nobody can tell from private): the file's
            // data as it is at fault time, with SIGBUS past its end.
            Backing::File { vnode: f.vnode.clone(), offset: off, file_len: u64::MAX }
        }
    };
    let name = match &backing {
        Backing::Shared { .. } if zero => b"/dev/zero (deleted)".to_vec(),
        Backing::File { .. } | Backing::SharedFile { .. } => {
            let f = ctx.p.user().files().lock().get(fd)?;
            f.path.as_ref().map(|p| p.to_path_bytes()).unwrap_or_default()
        }
        _ => Vec::new(),
    };
    let vm = ctx.p.user().vm();
    let mut g = vm.write();
    // do_mmap: too many mappings already.
    if g.map_count() as u64 > crate::vm::space::MAX_MAP_COUNT.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(Errno::ENOMEM);
    }
    let start = if flags.intersects(MapFlags::FIXED | MapFlags::FIXED_NOREPLACE) {
        let (s, e) = range(hint, len)?;
        if s < MMAP_MIN {
            return Err(Errno::EPERM);
        }
        crate::kern::callsite::release_table(&mut g, s, e);
        if flags.contains(MapFlags::FIXED_NOREPLACE) && !g.is_free(s, e) {
            return Err(Errno::EEXIST);
        }
        crate::kern::callsite::forget_sites(&mut g, s, e);
        s
    } else {
        let h = hint & !(PAGE - 1);
        if h >= MMAP_MIN && h.checked_add(len).is_some_and(|e| e <= g.mmap_base) && g.is_free(h, h + len) {
            h
        } else {
            g.find_free(len, g.mmap_base).ok_or(Errno::ENOMEM)?
        }
    };
    if !within_as_limit(ctx, &g, start, start + len) {
        return Err(Errno::ENOMEM);
    }
    // MAP_LOCKED (or mlockall's MCL_FUTURE) locks the mapping, within RLIMIT_MEMLOCK
    // (EAGAIN); it and MAP_POPULATE make its pages resident now, what cannot be is left.
    let lock = if flags.contains(MapFlags::LOCKED) { Some(crate::vm::mlock::Lock::Populated) } else { g.lock_future };
    if lock.is_some() && !super::mlock::within_memlock(ctx, g.locked_bytes() + len).unwrap_or(false) {
        return Err(Errno::EAGAIN);
    }
    g.map(MapEntry { start, end: start + len, prot, backing, name });
    if flags.contains(MapFlags::GROWSDOWN) && anon {
        g.growsdown.set(start, start + len, Some(()));
    }
    if let Some(how) = lock {
        let _ = g.set_lock(start, start + len, Some(how));
    } else if flags.contains(MapFlags::POPULATE) {
        let _ = g.make_resident(start, start + len);
    }
    addr_result(start)
}

pub fn sys_munmap(ctx: &mut Ctx<'_>) -> SysResult {
    let (s, e) = range(ctx.arg(0), ctx.arg(1))?;
    let vm = ctx.p.user().vm();
    let mut g = vm.write();
    crate::kern::callsite::release_table(&mut g, s, e);
    crate::kern::callsite::forget_sites(&mut g, s, e);
    g.unmap(s, e);
    Ok(0)
}

/// mprotect(2): EINVAL for both GROWSDOWN and GROWSUP, a misaligned address, then (for a
/// non-empty range) an unknown protection bit; an empty range changes nothing.
pub fn sys_mprotect(ctx: &mut Ctx<'_>) -> SysResult {
    let (addr, len) = (ctx.arg(0), ctx.arg(1));
    if ctx.flags_lenient::<Prot>(2).contains(Prot::GROWSDOWN | Prot::GROWSUP) || !addr.is_multiple_of(PAGE) {
        return Err(Errno::EINVAL);
    }
    if len == 0 {
        return Ok(0);
    }
    let prot = ctx.flags::<Prot>(2)?;
    let (s, e) = range(addr, len)?;
    let vm = ctx.p.user().vm();
    let mut g = vm.write();
    crate::kern::callsite::release_table(&mut g, s, e);
    // EACCES for execute permission on a mapped file of a noexec mount.
    if prot.contains(Prot::EXEC)
        && g.entries().filter(|m| m.start < e && m.end > s).any(|m| match &m.backing {
            Backing::File { vnode, .. } | Backing::SharedFile { vnode, .. } => crate::fs::mount::fs_noexec(vnode.fs().id()),
            _ => false,
        })
    {
        return Err(Errno::EACCES);
    }
    // EACCES for write permission on a shared mapping of a file not open for writing.
    if prot.contains(Prot::WRITE)
        && g.entries().filter(|m| m.start < e && m.end > s).any(|m| matches!(m.backing, Backing::SharedFile { may_write: false, .. }))
    {
        return Err(Errno::EACCES);
    }
    if prot.contains(Prot::WRITE) {
        crate::kern::callsite::before_text_write(&mut g, s, e);
    }
    g.protect(s, e, prot.vm_bits())?;
    Ok(0)
}

/// madvise(2): EINVAL for advice Linux does not take, then for a misaligned address; an
/// empty range does nothing; ENOMEM when part of the range is not mapped (the advice still
/// applies to the rest).
pub fn sys_madvise(ctx: &mut Ctx<'_>) -> SysResult {
    let advice = Advice::try_from(ctx.int(2))?;
    let (addr, len) = (ctx.arg(0), ctx.arg(1));
    if !addr.is_multiple_of(PAGE) {
        return Err(Errno::EINVAL);
    }
    if len == 0 {
        return Ok(0);
    }
    let (s, e) = range(addr, len)?;
    let vm = ctx.p.user().vm();
    let mut g = vm.write();
    crate::kern::callsite::release_table(&mut g, s, e);
    if advice == Advice::DontNeed {
        // Private text dropped goes back to the file's bytes: its sites are gone (a hop whose
        // padding goes but not its `syscall` is put back first).
        crate::kern::callsite::forget_sites(&mut g, s, e);
        g.dontneed(s, e);
    }
    if !g.fully_mapped(s, e) {
        return Err(Errno::ENOMEM);
    }
    use crate::vm::inherit::Inherit;
    match advice {
        Advice::DontFork => g.inherit.set(s, e, Some(Inherit::DontFork)),
        Advice::WipeOnFork => {
            // Private anonymous memory only (EINVAL for a file or shared mapping).
            let mut a = s;
            while a < e {
                let en = g.find(a).ok_or(Errno::ENOMEM)?;
                if !matches!(en.backing, Backing::Anon) {
                    return Err(Errno::EINVAL);
                }
                a = en.end;
            }
            g.inherit.set(s, e, Some(Inherit::WipeOnFork));
        }
        // Back to copying: each clears its own kind only.
        Advice::DoFork | Advice::KeepOnFork => {
            let kind = if advice == Advice::DoFork { Inherit::DontFork } else { Inherit::WipeOnFork };
            g.inherit.clear_value(s, e, kind);
        }
        Advice::NoHugePage => g.nofaultaround.set(s, e, Some(())),
        Advice::HugePage => g.nofaultaround.clear(s, e),
        Advice::DontNeed | Advice::Hint => {}
    }
    Ok(0)
}

/// mremap(2): grow or shrink a mapping, in place or (MREMAP_MAYMOVE) elsewhere. The old range
/// must lie inside one mapping (EFAULT otherwise, as on Linux).
pub fn sys_mremap(ctx: &mut Ctx<'_>) -> SysResult {
    let (old, old_len, new_len, new_addr) = (ctx.arg(0), ctx.arg(1), ctx.arg(2), ctx.arg(4));
    let flags = ctx.flags::<MremapFlags>(3)?;
    if !old.is_multiple_of(PAGE) || (flags.contains(MremapFlags::FIXED) && !flags.contains(MremapFlags::MAYMOVE)) {
        return Err(Errno::EINVAL);
    }
    if flags.contains(MremapFlags::DONTUNMAP) {
        // Keeping the old range mapped (for userfaultfd-style moves) is not supported.
        return Err(Errno::EINVAL);
    }
    let old_len = page_up(old_len).ok_or(Errno::EINVAL)?;
    let new_len = page_up(new_len).ok_or(Errno::EINVAL)?;
    if new_len == 0 || old_len == 0 {
        // old_len 0 duplicates a shared mapping on Linux; not supported here.
        return Err(Errno::EINVAL);
    }
    let (old, old_end) = range(old, old_len)?;
    let vm = ctx.p.user().vm();
    let mut g = vm.write();
    crate::kern::callsite::release_table(&mut g, old, old_end);
    if !g.within_one(old, old_end) {
        return Err(Errno::EFAULT);
    }
    let private_writable = g.find(old).is_some_and(|e| !e.shared() && e.prot & PROT_WRITE != 0);
    if new_len > old_len && private_writable && !g.overcommit_ok(new_len) {
        return Err(Errno::ENOMEM);
    }
    if flags.contains(MremapFlags::FIXED) {
        let (dst, dst_end) = range(new_addr, new_len)?;
        if dst < MMAP_MIN {
            return Err(Errno::EPERM);
        }
        if dst < old_end && old < dst_end {
            return Err(Errno::EINVAL); // the ranges overlap
        }
        crate::kern::callsite::release_table(&mut g, dst, dst_end);
        g.unmap(dst, dst_end);
        g.remap(old, old_len, dst, new_len);
        return addr_result(dst);
    }
    if new_len <= old_len {
        g.remap(old, old_len, old, new_len);
        return addr_result(old);
    }
    let grow_end = old.checked_add(new_len).ok_or(Errno::ENOMEM)?;
    if grow_end <= USER_END && g.is_free(old_end, grow_end) {
        g.remap(old, old_len, old, new_len);
        return addr_result(old);
    }
    if !flags.contains(MremapFlags::MAYMOVE) {
        return Err(Errno::ENOMEM);
    }
    let dst = g.find_free(new_len, g.mmap_base).ok_or(Errno::ENOMEM)?;
    g.remap(old, old_len, dst, new_len);
    addr_result(dst)
}

/// msync(2): shared file mappings are the file's own pages (tmpfs) or its cached ones
/// (ext2): MS_SYNC writes the files mapped in the range back (their file system's fsync);
/// MS_ASYNC leaves it to the syncer. The range is checked as Linux checks it.
pub fn sys_msync(ctx: &mut Ctx<'_>) -> SysResult {
    let (addr, len) = (ctx.arg(0), ctx.arg(1));
    let flags = ctx.flags::<MsyncFlags>(2)?;
    if !addr.is_multiple_of(PAGE) || flags.contains(MsyncFlags::ASYNC | MsyncFlags::SYNC) {
        return Err(Errno::EINVAL);
    }
    if len == 0 {
        return Ok(0);
    }
    let (s, e) = range(addr, len)?;
    let files: Vec<crate::fs::vfs::VnodeRef> = {
        let vm = ctx.p.user().vm();
        let g = vm.read();
        if !g.fully_mapped(s, e) {
            return Err(Errno::ENOMEM);
        }
        g.entries()
            .filter(|m| m.start < e && m.end > s)
            .filter_map(|m| match &m.backing {
                Backing::SharedFile { vnode, .. } if vnode.page_cache().is_some() => Some(vnode.clone()),
                _ => None,
            })
            .collect()
    };
    if flags.contains(MsyncFlags::SYNC) {
        for v in files {
            crate::fs::vnops::fsync(v.as_ref()).map_err(|_| Errno::EIO)?;
        }
    }
    Ok(0)
}
