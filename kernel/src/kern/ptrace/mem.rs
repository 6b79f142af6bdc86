//! A debugger's access to another process's memory: PEEK/POKE, process_vm_readv/writev and
//! /proc/PID/mem (a forced write reaches read-only text, as Linux's FOLL_FORCE).

use super::*;

/// Read another process's memory (PEEK, process_vm_readv), its patched system call sites as
/// the program wrote them (`callsite::as_written`).
pub fn read_mem(tp: &UProc, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
    let vm = tp.user().vm();
    let g = vm.read();
    crate::vm::uaccess::copyin(&g, addr, buf)?;
    crate::kern::callsite::as_written(&g, addr, buf);
    Ok(())
}

/// Write another process's memory; `force` writes read-only private mappings too (a
/// debugger's breakpoint in the text: Linux's FOLL_FORCE).
pub fn write_mem(tp: &UProc, addr: u64, data: &[u8], force: bool) -> Result<(), Errno> {
    let vm = tp.user().vm();
    let g = vm.read();
    if !force {
        return crate::vm::uaccess::copyout(&g, addr, data);
    }
    addr.checked_add(data.len() as u64).filter(|&e| e <= platform::stub::layout::USER_END).ok_or(Errno::EFAULT)?;
    g.write_forced(addr, data).map_err(|_| Errno::EFAULT)
}

/// /proc/PID/mem's read at address `off`: page by page as far as the memory goes; EIO when
/// not even the first byte can be read.
pub fn mem_read(tp: &UProc, off: u64, buf: &mut [u8]) -> Result<usize, Errno> {
    let mut done = 0;
    while done < buf.len() {
        let a = off.saturating_add(done as u64);
        let n = crate::vm::space::to_page_end(a).min(buf.len() - done);
        if read_mem(tp, a, &mut buf[done..done + n]).is_err() {
            break;
        }
        done += n;
    }
    if done == 0 && !buf.is_empty() { Err(Errno::EIO) } else { Ok(done) }
}

/// /proc/PID/mem's write (forced, as a debugger's): as far as the memory goes; EIO when not
/// even the first byte can be written.
pub fn mem_write(tp: &UProc, off: u64, data: &[u8]) -> Result<usize, Errno> {
    let mut done = 0;
    while done < data.len() {
        let a = off.saturating_add(done as u64);
        let n = crate::vm::space::to_page_end(a).min(data.len() - done);
        if write_mem(tp, a, &data[done..done + n], true).is_err() {
            break;
        }
        done += n;
    }
    if done == 0 && !data.is_empty() { Err(Errno::EIO) } else { Ok(done) }
}
