//! copyin/copyout: the kernel's only way into guest memory. Addresses are checked against the
//! user range, pages are faulted in through the address space (copy-on-write is broken for a
//! write), and bytes move through the direct map. A bad address is `EFAULT`, never a fault
//! in the kernel.
//!
//! The caller holds the address space's `vmmap` lock; shared (`vm.read()`) is enough: the
//! threads of a process copy in and out at the same time.
//!
//! On top of the byte copies sit the typed handles the rest of the kernel uses: a
//! [`UserPtr<T>`] (one guest `T`) and a [`UserSlice<T>`] (an array of them), read and written
//! whole with zerocopy's byte views of the `#[repr(C)]` ABI structures in `crate::abi`.

use std::marker::PhantomData;

use platform::stub::layout::USER_END;
use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::kern::errno::Errno;
use crate::vm::space::{AddressSpace, to_page_end};

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
        let n = to_page_end(a).min(buf.len() - done);
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
        let n = to_page_end(a).min(data.len() - done);
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
        let n = to_page_end(a);
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


/// A guest address of a `T`: only [`read`] and [`write`] (through copyin/copyout, so a bad
/// address is EFAULT) reach what it points to. It is a plain number otherwise: building one
/// from a system call argument checks nothing yet.
pub struct UserPtr<T> {
    addr: u64,
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for UserPtr<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for UserPtr<T> {}

impl<T> std::fmt::Debug for UserPtr<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UserPtr({:#x})", self.addr)
    }
}

impl<T> UserPtr<T> {
    pub const fn new(addr: u64) -> UserPtr<T> {
        UserPtr { addr, _t: PhantomData }
    }

    pub const fn addr(self) -> u64 {
        self.addr
    }

    pub const fn is_null(self) -> bool {
        self.addr == 0
    }

    /// The `i`th `T` after this one (EFAULT when the address would wrap).
    pub fn elem(self, i: usize) -> Result<UserPtr<T>, Errno> {
        let size = u64::try_from(size_of::<T>()).map_err(|_| Errno::EFAULT)?;
        let bytes = u64::try_from(i).ok().and_then(|i| i.checked_mul(size)).ok_or(Errno::EFAULT)?;
        Ok(UserPtr::new(self.addr.checked_add(bytes).ok_or(Errno::EFAULT)?))
    }

    /// The same address as a pointer to another type.
    pub const fn cast<U>(self) -> UserPtr<U> {
        UserPtr::new(self.addr)
    }

    /// `len` consecutive `T`s from here.
    pub const fn slice(self, len: usize) -> UserSlice<T> {
        UserSlice { ptr: self, len }
    }
}

/// `len` consecutive `T`s in guest memory (a buffer, an array of structures).
#[derive(Debug, Clone, Copy)]
pub struct UserSlice<T> {
    pub ptr: UserPtr<T>,
    pub len: usize,
}

impl<T> UserSlice<T> {
    pub const fn new(addr: u64, len: usize) -> UserSlice<T> {
        UserSlice { ptr: UserPtr::new(addr), len }
    }

    pub const fn addr(&self) -> u64 {
        self.ptr.addr
    }

    /// The length in bytes (EFAULT when it does not fit the address space).
    pub fn byte_len(&self) -> Result<usize, Errno> {
        self.len.checked_mul(size_of::<T>()).ok_or(Errno::EFAULT)
    }

    /// The first `n` elements (all of them when there are fewer).
    pub fn prefix(&self, n: usize) -> UserSlice<T> {
        UserSlice { ptr: self.ptr, len: self.len.min(n) }
    }
}

/// Copy a `T` in from guest memory.
pub fn read<T: FromBytes + IntoBytes>(vm: &AddressSpace, p: UserPtr<T>) -> Result<T, Errno> {
    let mut v = T::new_zeroed();
    copyin(vm, p.addr, v.as_mut_bytes())?;
    Ok(v)
}

/// Copy a `T` out to guest memory.
pub fn write<T: IntoBytes + Immutable>(vm: &AddressSpace, p: UserPtr<T>, v: &T) -> Result<(), Errno> {
    copyout(vm, p.addr, v.as_bytes())
}

/// Copy a guest array in (its length already bounded by the caller).
pub fn read_slice<T: FromBytes + IntoBytes>(vm: &AddressSpace, s: UserSlice<T>) -> Result<Vec<T>, Errno> {
    let mut v: Vec<T> = std::iter::repeat_with(T::new_zeroed).take(s.len).collect();
    copyin(vm, s.addr(), v.as_mut_slice().as_mut_bytes())?;
    Ok(v)
}

/// Copy `data` out to the start of a guest array (EFAULT when it is longer than the array).
pub fn write_slice<T: IntoBytes + Immutable>(vm: &AddressSpace, s: UserSlice<T>, data: &[T]) -> Result<(), Errno> {
    if data.len() > s.len {
        return Err(Errno::EFAULT);
    }
    copyout(vm, s.addr(), data.as_bytes())
}
