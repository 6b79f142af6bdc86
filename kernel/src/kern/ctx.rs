//! The context a system call or trap handler works with: the guest thread, its process, its
//! saved registers, and how the thread leaves ([`Exit`]). It belongs to `kern` (the trap loop
//! builds it; fork, execve, exit, signals and the tty use it); the system call layer (`sys`)
//! sits above and only receives it.

use platform::stub::UserRegs;

use crate::kern::errno::Errno;
use crate::kern::proc::UProc;
use crate::kern::thread::UThread;
use crate::vm::uaccess;

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

    /// Argument `i` as a C `int` (the ABI passes ints in the low 32 bits of the register).
    pub fn int(&self, i: usize) -> i32 {
        self.arg(i) as u32 as i32
    }

    /// Argument `i` as a C `unsigned int`.
    pub fn uint(&self, i: usize) -> u32 {
        self.arg(i) as u32
    }

    /// Argument `i` as a size, capped to what the kernel will handle in one call.
    pub fn size(&self, i: usize) -> usize {
        usize::try_from(self.arg(i)).unwrap_or(usize::MAX)
    }

    pub fn copyin(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let vm = self.p.user().vm();
        let mut g = vm.lock();
        uaccess::copyin(&mut g, addr, buf)
    }

    pub fn copyout(&self, addr: u64, data: &[u8]) -> Result<(), Errno> {
        let vm = self.p.user().vm();
        let mut g = vm.lock();
        uaccess::copyout(&mut g, addr, data)
    }

    pub fn copyin_u64(&self, addr: u64) -> Result<u64, Errno> {
        let mut b = [0u8; 8];
        self.copyin(addr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// A guest `struct timespec` as nanoseconds (saturating): EINVAL for a negative second or
    /// nanoseconds outside 0..1e9, as nanosleep(2), futex(2), ppoll(2), sigtimedwait(2) check.
    pub fn timespec_ns(&self, addr: u64) -> Result<u64, Errno> {
        let mut b = [0u8; 16];
        self.copyin(addr, &mut b)?;
        let [s0, s1, s2, s3, s4, s5, s6, s7, n0, n1, n2, n3, n4, n5, n6, n7] = b;
        let sec = i64::from_le_bytes([s0, s1, s2, s3, s4, s5, s6, s7]);
        let nsec = i64::from_le_bytes([n0, n1, n2, n3, n4, n5, n6, n7]);
        if sec < 0 || !(0..1_000_000_000).contains(&nsec) {
            return Err(Errno::EINVAL);
        }
        Ok((sec as u64).saturating_mul(1_000_000_000).saturating_add(nsec as u64))
    }

    /// [`Ctx::timespec_ns`] of an optional argument: a null pointer is no timeout.
    pub fn timeout_ns(&self, addr: u64) -> Result<Option<u64>, Errno> {
        if addr == 0 { Ok(None) } else { self.timespec_ns(addr).map(Some) }
    }

    pub fn copyout_u64(&self, addr: u64, v: u64) -> Result<(), Errno> {
        self.copyout(addr, &v.to_le_bytes())
    }

    pub fn copyout_i32(&self, addr: u64, v: i32) -> Result<(), Errno> {
        self.copyout(addr, &v.to_le_bytes())
    }

    /// A NUL-terminated string of at most `max` bytes.
    pub fn copyin_str(&self, addr: u64, max: usize) -> Result<Vec<u8>, Errno> {
        let vm = self.p.user().vm();
        let mut g = vm.lock();
        uaccess::copyin_str(&mut g, addr, max)
    }

    /// A path argument (ENOENT for an empty one, ENAMETOOLONG past PATH_MAX).
    pub fn path(&self, i: usize) -> Result<Vec<u8>, Errno> {
        let p = self.copyin_str(self.arg(i), crate::fs::namei::PATH_MAX)?;
        if p.is_empty() {
            return Err(Errno::ENOENT);
        }
        Ok(p)
    }
}
