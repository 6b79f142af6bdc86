//! Memory system calls: brk(2), mmap(2), munmap(2), mprotect(2), mremap(2), msync(2),
//! madvise(2).
//!
//! Like Linux's default overcommit heuristic, a single private writable mapping (or break
//! growth) larger than all of physical memory is refused with ENOMEM: it could never be
//! backed. Smaller ones are backed on demand, and running out kills the process that faults.

use platform::stub::layout::USER_END;

use crate::fs::vfs::VType;
use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};
use crate::vm::space::{
    Backing, MMAP_BASE, MMAP_MIN, MapEntry, PAGE, PROT_EXEC, PROT_READ, PROT_WRITE, SharedObject, page_up,
};

const MAP_SHARED: u32 = 0x01;
const MAP_PRIVATE: u32 = 0x02;
const MAP_SHARED_VALIDATE: u32 = 0x03;
const MAP_TYPE: u32 = 0x0f;
const MAP_FIXED: u32 = 0x10;
const MAP_ANONYMOUS: u32 = 0x20;
const MAP_FIXED_NOREPLACE: u32 = 0x10_0000;
const MADV_DONTNEED: i32 = 4;

/// Linux's OVERCOMMIT_GUESS for one request ([`crate::vm::space::AddressSpace::overcommit_ok`]).
fn overcommit_ok(ctx: &Ctx<'_>, len: u64) -> bool {
    ctx.p.user().vm().read().overcommit_ok(len)
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
    if want < g.brk_start || want >= MMAP_BASE {
        return Ok(old as usize);
    }
    let (old_end, new_end) = (page_up(old).ok_or(Errno::ENOMEM)?, page_up(want).ok_or(Errno::ENOMEM)?);
    if new_end > old_end {
        if !g.is_free(old_end, new_end) || !g.overcommit_ok(new_end - g.brk_start) {
            return Ok(old as usize);
        }
        g.map(MapEntry { start: old_end, end: new_end, prot: PROT_READ | PROT_WRITE, backing: Backing::Anon, name: b"[heap]".to_vec() });
    } else if new_end < old_end {
        g.unmap(new_end, old_end);
    }
    g.brk = want;
    Ok(want as usize)
}

pub fn sys_mmap(ctx: &mut Ctx<'_>) -> SysResult {
    let (hint, len, prot, flags, fd, off) = (ctx.arg(0), ctx.arg(1), ctx.uint(2), ctx.uint(3), ctx.int(4), ctx.arg(5));
    if len == 0 || prot & !(PROT_READ | PROT_WRITE | PROT_EXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    let len = page_up(len).ok_or(Errno::ENOMEM)?;
    let shared = match flags & MAP_TYPE {
        MAP_SHARED | MAP_SHARED_VALIDATE => true,
        MAP_PRIVATE => false,
        _ => return Err(Errno::EINVAL),
    };
    if !off.is_multiple_of(PAGE) {
        return Err(Errno::EINVAL);
    }
    let anon = flags & MAP_ANONYMOUS != 0;
    if !shared && prot & PROT_WRITE != 0 && !overcommit_ok(ctx, len) {
        return Err(Errno::ENOMEM);
    }
    let backing = if anon {
        if shared { Backing::Shared { object: SharedObject::new(), offset: 0 } } else { Backing::Anon }
    } else {
        let f = ctx.p.user().files().lock().get(fd)?;
        if !f.readable() || (shared && prot & PROT_WRITE != 0 && !f.writable()) {
            return Err(Errno::EACCES);
        }
        let a = f.vnode.attr()?;
        if a.vtype() != VType::Reg {
            return Err(Errno::ENODEV);
        }
        if off.checked_add(len).is_none_or(|e| e > i64::MAX as u64) {
            return Err(Errno::EOVERFLOW);
        }
        if shared && f.vnode.shared_pages() {
            Backing::SharedFile { vnode: f.vnode.clone(), offset: off }
        } else if shared && prot & PROT_WRITE != 0 {
            // Only file systems whose files are pages (tmpfs) share them with mappings yet.
            return Err(Errno::ENODEV);
        } else {
            // Private, or shared read-only (which nobody can tell from private): the file's
            // data as it is at fault time, with SIGBUS past its end.
            Backing::File { vnode: f.vnode.clone(), offset: off, file_len: u64::MAX }
        }
    };
    let name = match &backing {
        Backing::File { .. } | Backing::SharedFile { .. } => {
            let f = ctx.p.user().files().lock().get(fd)?;
            f.path.as_ref().map(|p| p.to_path_bytes()).unwrap_or_default()
        }
        _ => Vec::new(),
    };
    let vm = ctx.p.user().vm();
    let mut g = vm.write();
    let start = if flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) != 0 {
        let (s, e) = range(hint, len)?;
        if s < MMAP_MIN {
            return Err(Errno::EPERM);
        }
        if flags & MAP_FIXED_NOREPLACE != 0 && !g.is_free(s, e) {
            return Err(Errno::EEXIST);
        }
        s
    } else {
        let h = hint & !(PAGE - 1);
        if h >= MMAP_MIN && h.checked_add(len).is_some_and(|e| e <= MMAP_BASE) && g.is_free(h, h + len) {
            h
        } else {
            g.find_free(len, MMAP_BASE).ok_or(Errno::ENOMEM)?
        }
    };
    g.map(MapEntry { start, end: start + len, prot, backing, name });
    Ok(start as usize)
}

pub fn sys_munmap(ctx: &mut Ctx<'_>) -> SysResult {
    let (s, e) = range(ctx.arg(0), ctx.arg(1))?;
    ctx.p.user().vm().write().unmap(s, e);
    Ok(0)
}

pub fn sys_mprotect(ctx: &mut Ctx<'_>) -> SysResult {
    let prot = ctx.uint(2);
    if prot & !(PROT_READ | PROT_WRITE | PROT_EXEC | 0x0100_0000 | 0x0200_0000) != 0 {
        return Err(Errno::EINVAL);
    }
    let (s, e) = range(ctx.arg(0), ctx.arg(1).max(1))?;
    ctx.p.user().vm().write().protect(s, e, prot & (PROT_READ | PROT_WRITE | PROT_EXEC))?;
    Ok(0)
}

pub fn sys_madvise(ctx: &mut Ctx<'_>) -> SysResult {
    let (s, e) = range(ctx.arg(0), ctx.arg(1).max(1))?;
    if ctx.int(2) == MADV_DONTNEED {
        ctx.p.user().vm().write().dontneed(s, e);
    }
    Ok(0)
}

const MREMAP_MAYMOVE: u32 = 1;
const MREMAP_FIXED: u32 = 2;
const MREMAP_DONTUNMAP: u32 = 4;

/// mremap(2): grow or shrink a mapping, in place or (MREMAP_MAYMOVE) elsewhere. The old range
/// must lie inside one mapping (EFAULT otherwise, as on Linux).
pub fn sys_mremap(ctx: &mut Ctx<'_>) -> SysResult {
    let (old, old_len, new_len, flags, new_addr) = (ctx.arg(0), ctx.arg(1), ctx.arg(2), ctx.uint(3), ctx.arg(4));
    if flags & !(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP) != 0 || !old.is_multiple_of(PAGE) {
        return Err(Errno::EINVAL);
    }
    if flags & MREMAP_FIXED != 0 && flags & MREMAP_MAYMOVE == 0 {
        return Err(Errno::EINVAL);
    }
    if flags & MREMAP_DONTUNMAP != 0 {
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
    if !g.within_one(old, old_end) {
        return Err(Errno::EFAULT);
    }
    let private_writable = g.find(old).is_some_and(|e| !e.shared() && e.prot & PROT_WRITE != 0);
    if new_len > old_len && private_writable && !g.overcommit_ok(new_len) {
        return Err(Errno::ENOMEM);
    }
    if flags & MREMAP_FIXED != 0 {
        let (dst, dst_end) = range(new_addr, new_len)?;
        if dst < MMAP_MIN {
            return Err(Errno::EPERM);
        }
        if dst < old_end && old < dst_end {
            return Err(Errno::EINVAL); // the ranges overlap
        }
        g.unmap(dst, dst_end);
        g.remap(old, old_len, dst, new_len);
        return Ok(dst as usize);
    }
    if new_len <= old_len {
        g.remap(old, old_len, old, new_len);
        return Ok(old as usize);
    }
    let grow_end = old.checked_add(new_len).ok_or(Errno::ENOMEM)?;
    if grow_end <= USER_END && g.is_free(old_end, grow_end) {
        g.remap(old, old_len, old, new_len);
        return Ok(old as usize);
    }
    if flags & MREMAP_MAYMOVE == 0 {
        return Err(Errno::ENOMEM);
    }
    let dst = g.find_free(new_len, MMAP_BASE).ok_or(Errno::ENOMEM)?;
    g.remap(old, old_len, dst, new_len);
    Ok(dst as usize)
}

const MS_ASYNC: i32 = 1;
const MS_INVALIDATE: i32 = 2;
const MS_SYNC: i32 = 4;

/// msync(2): shared file mappings are the file's own pages, so there is nothing to write
/// back; the range is checked as Linux checks it.
pub fn sys_msync(ctx: &mut Ctx<'_>) -> SysResult {
    let (addr, len, flags) = (ctx.arg(0), ctx.arg(1), ctx.int(2));
    if !addr.is_multiple_of(PAGE) || flags & !(MS_ASYNC | MS_INVALIDATE | MS_SYNC) != 0 || (flags & MS_ASYNC != 0 && flags & MS_SYNC != 0) {
        return Err(Errno::EINVAL);
    }
    if len == 0 {
        return Ok(0);
    }
    let (s, e) = range(addr, len)?;
    if !ctx.p.user().vm().read().fully_mapped(s, e) {
        return Err(Errno::ENOMEM);
    }
    Ok(0)
}
