//! The context a system call or trap handler works with: the guest thread, its process, its
//! saved registers, and how the thread leaves ([`Exit`]). It belongs to `kern` (the trap loop
//! builds it; fork, execve, exit, signals and the tty use it); the system call layer (`sys`)
//! sits above and only receives it.
//!
//! Arguments are read through typed accessors, never with `as` casts at the call site:
//!
//! | accessor                     | what it gives                                                   |
//! |------------------------------|------------------------------------------------------------------|
//! | `int`, `uint`, `size`, `arg` | a C `int` / `unsigned int` (low 32 bits), a `size_t`, the register |
//! | `fd`, `file`                 | a descriptor number; the open file it names (EBADF)             |
//! | `offset`                     | an `loff_t` (EINVAL when negative)                             |
//! | `ptr::<T>`, `slice::<T>`     | a [`UserPtr<T>`], a [`UserSlice<T>`] (pointer and count args)  |
//! | `flags::<F>`                 | a `bitflags` set: EINVAL for bits the call does not define     |
//! | `flags_lenient::<F>`         | the same, unknown bits dropped (where Linux ignores them)      |
//! | `timespec`, `timeout_ns`     | a `struct timespec` argument in ns (EINVAL out of range); NULL as no timeout |
//! | `path`                       | a path name (ENOENT empty, ENAMETOOLONG past PATH_MAX)         |
//!
//! Guest memory moves only through `read`/`write`/`read_slice`/`write_slice` (whole
//! `#[repr(C)]` structures from `crate::abi`, or byte buffers as `UserSlice<u8>`) and
//! `read_cstr` (a NUL-terminated string), all of which take the address space's lock for the
//! copy alone.
//! `copyin` fills a buffer the kernel already has from a `UserSlice<u8>`. There is no form
//! that takes a raw address.

use std::sync::Arc;

use platform::stub::UserRegs;
use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::fs::file::File;
use crate::kern::errno::Errno;
use crate::kern::proc::UProc;
use crate::kern::thread::UThread;
use crate::vm::uaccess::{self, UserPtr, UserSlice};

/// What a handler works with.
pub struct Ctx<'a> {
    pub td: &'a UThread,
    pub p: &'a UProc,
    pub regs: &'a mut UserRegs,
    /// Set by a handler when the thread must not return to user mode.
    pub exit: Option<Exit>,
}

/// How a thread leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// exit(2): this thread, with an exit code.
    Thread(i32),
    /// exit_group(2) or a fatal signal: the whole process, with a wait(2) status word.
    Group(i32),
}

impl Ctx<'_> {
    /// Argument `i` as the raw register.
    pub fn arg(&self, i: usize) -> u64 {
        self.regs.arg(i)
    }

    /// Argument `i` as a C `int` (the ABI passes ints in the low 32 bits of the register;
    /// the upper half is ignored, as Linux does).
    pub fn int(&self, i: usize) -> i32 {
        i32::from_ne_bytes(self.uint(i).to_ne_bytes())
    }

    /// Argument `i` as a C `unsigned int` (the low 32 bits).
    pub fn uint(&self, i: usize) -> u32 {
        let [a, b, c, d, ..] = self.arg(i).to_le_bytes();
        u32::from_le_bytes([a, b, c, d])
    }

    /// Argument `i` as a size, capped to what the kernel will handle in one call.
    pub fn size(&self, i: usize) -> usize {
        usize::try_from(self.arg(i)).unwrap_or(usize::MAX)
    }

    /// Argument `i` as a descriptor number (an `int`; a negative one names no file).
    pub fn fd(&self, i: usize) -> i32 {
        self.int(i)
    }

    /// The open file descriptor argument `i` names (EBADF when none).
    pub fn file(&self, i: usize) -> Result<Arc<File>, Errno> {
        self.p.user().files().lock().get(self.fd(i))
    }

    /// Argument `i` as a file offset (`loff_t`): EINVAL when negative.
    pub fn offset(&self, i: usize) -> Result<u64, Errno> {
        let off = i64::from_ne_bytes(self.arg(i).to_ne_bytes());
        u64::try_from(off).map_err(|_| Errno::EINVAL)
    }

    /// Argument `i` as a guest pointer to a `T`.
    pub fn ptr<T>(&self, i: usize) -> UserPtr<T> {
        UserPtr::new(self.arg(i))
    }

    /// Arguments `ptr` and `len` as a guest array of `len` `T`s.
    pub fn slice<T>(&self, ptr: usize, len: usize) -> UserSlice<T> {
        UserSlice::new(self.arg(ptr), self.size(len))
    }

    /// Argument `i` as a flag set: EINVAL for a bit `F` does not define (where Linux checks).
    pub fn flags<F: bitflags::Flags<Bits = u32>>(&self, i: usize) -> Result<F, Errno> {
        F::from_bits(self.uint(i)).ok_or(Errno::EINVAL)
    }

    /// Argument `i` as a flag set, unknown bits dropped (where Linux ignores them, as
    /// open(2) does).
    pub fn flags_lenient<F: bitflags::Flags<Bits = u32>>(&self, i: usize) -> F {
        F::from_bits_truncate(self.uint(i))
    }

    /// Copy a `T` in from the guest.
    pub fn read<T: FromBytes + IntoBytes>(&self, p: UserPtr<T>) -> Result<T, Errno> {
        let vm = self.p.user().vm();
        let g = vm.read();
        uaccess::read(&g, p)
    }

    /// Copy a `T` out to the guest.
    pub fn write<T: IntoBytes + Immutable>(&self, p: UserPtr<T>, v: &T) -> Result<(), Errno> {
        let vm = self.p.user().vm();
        let g = vm.read();
        uaccess::write(&g, p, v)
    }

    /// Copy a guest array in; `max` bounds its length (EINVAL past it), so a guest cannot
    /// make the kernel allocate without limit.
    pub fn read_slice<T: FromBytes + IntoBytes>(&self, s: UserSlice<T>, max: usize) -> Result<Vec<T>, Errno> {
        if s.len > max {
            return Err(Errno::EINVAL);
        }
        let vm = self.p.user().vm();
        let g = vm.read();
        uaccess::read_slice(&g, s)
    }

    /// Copy `data` out to the start of a guest array (EFAULT when it does not fit).
    pub fn write_slice<T: IntoBytes + Immutable>(&self, s: UserSlice<T>, data: &[T]) -> Result<(), Errno> {
        let vm = self.p.user().vm();
        let g = vm.read();
        uaccess::write_slice(&g, s, data)
    }

    /// Fill `buf` from the guest buffer `src` (EFAULT when `buf` is longer than `src`): the
    /// form for data the kernel already has room for (write(2)'s bytes, an iovec's part).
    pub fn copyin(&self, src: UserSlice<u8>, buf: &mut [u8]) -> Result<(), Errno> {
        if buf.len() > src.len {
            return Err(Errno::EFAULT);
        }
        let vm = self.p.user().vm();
        let g = vm.read();
        uaccess::copyin(&g, src.addr(), buf)
    }

    /// Argument `i` as a guest `struct timespec`, in nanoseconds (saturating): EINVAL for a
    /// negative second or nanoseconds outside 0..1e9, as nanosleep(2), futex(2), ppoll(2) and
    /// sigtimedwait(2) check.
    pub fn timespec(&self, i: usize) -> Result<u64, Errno> {
        self.read(self.ptr::<crate::abi::time::Timespec>(i))?.to_ns()
    }

    /// [`Ctx::timespec`] of an optional argument: a null pointer is no timeout.
    pub fn timeout_ns(&self, i: usize) -> Result<Option<u64>, Errno> {
        if self.ptr::<crate::abi::time::Timespec>(i).is_null() { Ok(None) } else { self.timespec(i).map(Some) }
    }

    /// A NUL-terminated string of at most `max` bytes (without the NUL): ENAMETOOLONG when
    /// no NUL comes within `max`.
    pub fn read_cstr(&self, p: UserPtr<u8>, max: usize) -> Result<Vec<u8>, Errno> {
        let vm = self.p.user().vm();
        let g = vm.read();
        uaccess::copyin_str(&g, p.addr(), max)
    }

    /// A path argument (ENOENT for an empty one, ENAMETOOLONG past PATH_MAX).
    pub fn path(&self, i: usize) -> Result<Vec<u8>, Errno> {
        let p = self.read_cstr(self.ptr(i), crate::fs::namei::PATH_MAX)?;
        if p.is_empty() {
            return Err(Errno::ENOENT);
        }
        Ok(p)
    }
}
