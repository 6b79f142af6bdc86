//! Memory system calls: brk(2), mmap(2), munmap(2), mprotect(2), madvise(2).

use platform::stub::layout::USER_END;

use crate::fs::vfs::VType;
use crate::kern::errno::{Errno, SysResult};
use crate::sys::Ctx;
use crate::vm::space::{Backing, MMAP_BASE, MMAP_MIN, MapEntry, PAGE, PROT_EXEC, PROT_READ, PROT_WRITE, SharedObject, page_up};

const MAP_SHARED: u32 = 0x01;
const MAP_PRIVATE: u32 = 0x02;
const MAP_SHARED_VALIDATE: u32 = 0x03;
const MAP_TYPE: u32 = 0x0f;
const MAP_FIXED: u32 = 0x10;
const MAP_ANONYMOUS: u32 = 0x20;
const MAP_FIXED_NOREPLACE: u32 = 0x10_0000;
const MADV_DONTNEED: i32 = 4;

/// A user range [addr, addr+len) rounded out to pages, checked to lie in user space.
fn range(addr: u64, len: u64) -> Result<(u64, u64), Errno> {
    if addr % PAGE != 0 || len == 0 {
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
    let mut g = vm.lock();
    let old = g.brk;
    if want < g.brk_start || want >= MMAP_BASE {
        return Ok(old as usize);
    }
    let (old_end, new_end) = (page_up(old).ok_or(Errno::ENOMEM)?, page_up(want).ok_or(Errno::ENOMEM)?);
    if new_end > old_end {
        if !g.is_free(old_end, new_end) {
            return Ok(old as usize);
        }
        g.map(MapEntry { start: old_end, end: new_end, prot: PROT_READ | PROT_WRITE, backing: Backing::Anon, name: "[heap]".into() });
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
    if off % PAGE != 0 {
        return Err(Errno::EINVAL);
    }
    let anon = flags & MAP_ANONYMOUS != 0;
    let backing = if anon {
        if shared { Backing::Shared { object: SharedObject::new(), offset: 0 } } else { Backing::Anon }
    } else {
        let f = ctx.p.user().files().lock().get(fd)?;
        if !f.readable() {
            return Err(Errno::EACCES);
        }
        let a = f.vnode.attr()?;
        if a.vtype() != VType::Reg {
            return Err(Errno::ENODEV);
        }
        if shared && prot & PROT_WRITE != 0 {
            // Writable shared file mappings need write-back to the file: not yet.
            return Err(Errno::ENODEV);
        }
        Backing::File { vnode: f.vnode.clone(), offset: off, file_len: a.size.saturating_sub(off) }
    };
    let name = match &backing {
        Backing::File { .. } => {
            let f = ctx.p.user().files().lock().get(fd)?;
            f.path.as_ref().map(|p| p.to_path_string()).unwrap_or_default()
        }
        _ => String::new(),
    };
    let vm = ctx.p.user().vm();
    let mut g = vm.lock();
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
    ctx.p.user().vm().lock().unmap(s, e);
    Ok(0)
}

pub fn sys_mprotect(ctx: &mut Ctx<'_>) -> SysResult {
    let prot = ctx.uint(2);
    if prot & !(PROT_READ | PROT_WRITE | PROT_EXEC | 0x0100_0000 | 0x0200_0000) != 0 {
        return Err(Errno::EINVAL);
    }
    let (s, e) = range(ctx.arg(0), ctx.arg(1).max(1))?;
    ctx.p.user().vm().lock().protect(s, e, prot & (PROT_READ | PROT_WRITE | PROT_EXEC))?;
    Ok(0)
}

pub fn sys_madvise(ctx: &mut Ctx<'_>) -> SysResult {
    let (s, e) = range(ctx.arg(0), ctx.arg(1).max(1))?;
    if ctx.int(2) == MADV_DONTNEED {
        ctx.p.user().vm().lock().dontneed(s, e);
    }
    Ok(0)
}
