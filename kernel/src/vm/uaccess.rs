//! copyin/copyout: the kernel's only way into guest memory. Addresses are checked against the
//! user range, pages are faulted in through the address space (copy-on-write is broken for a
//! write), and bytes move through the direct map. A bad address is `EFAULT`, never a fault
//! in the kernel.
//!
//! The caller holds the address space's `vmmap` lock, shared (`vm.read()`) is enough: the
//! threads of a process copy in and out at the same time.

use platform::stub::layout::USER_END;

use crate::kern::errno::Errno;
use crate::vm::space::{AddressSpace, PAGE};

fn check(addr: u64, len: usize) -> Result<(), Errno> {
    let end = addr.checked_add(len as u64).ok_or(Errno::EFAULT)?;
    if end > USER_END {
        return Err(Errno::EFAULT);
    }
    Ok(())
}

/// Copy `buf.len()` bytes from guest address `addr`.
pub fn copyin(vm: &AddressSpace, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
    check(addr, buf.len())?;
    let pm = vm.physmem();
    let mut done = 0;
    while done < buf.len() {
        let a = addr + done as u64;
        let n = ((PAGE - a % PAGE) as usize).min(buf.len() - done);
        let pa = vm.resolve(a, false).map_err(|_| Errno::EFAULT)?;
        pm.read(pa, &mut buf[done..done + n]);
        done += n;
    }
    Ok(())
}

/// Copy `data` to guest address `addr`.
pub fn copyout(vm: &AddressSpace, addr: u64, data: &[u8]) -> Result<(), Errno> {
    check(addr, data.len())?;
    let pm = vm.physmem();
    let mut done = 0;
    while done < data.len() {
        let a = addr + done as u64;
        let n = ((PAGE - a % PAGE) as usize).min(data.len() - done);
        let pa = vm.resolve(a, true).map_err(|_| Errno::EFAULT)?;
        pm.write(pa, &data[done..done + n]);
        done += n;
    }
    Ok(())
}

/// Read a NUL-terminated string of at most `max` bytes (without the NUL). ENAMETOOLONG when
/// no NUL comes within `max`.
pub fn copyin_str(vm: &AddressSpace, addr: u64, max: usize) -> Result<Vec<u8>, Errno> {
    let mut out = Vec::new();
    let mut a = addr;
    loop {
        let n = (PAGE - a % PAGE) as usize;
        let mut chunk = vec![0u8; n];
        copyin(vm, a, &mut chunk)?;
        if let Some(i) = chunk.iter().position(|&b| b == 0) {
            out.extend_from_slice(&chunk[..i]);
            if out.len() > max {
                return Err(Errno::ENAMETOOLONG);
            }
            return Ok(out);
        }
        out.extend_from_slice(&chunk);
        if out.len() > max {
            return Err(Errno::ENAMETOOLONG);
        }
        a += n as u64;
    }
}

/// Read a u64.
pub fn copyin_u64(vm: &AddressSpace, addr: u64) -> Result<u64, Errno> {
    let mut b = [0u8; 8];
    copyin(vm, addr, &mut b)?;
    Ok(u64::from_le_bytes(b))
}
