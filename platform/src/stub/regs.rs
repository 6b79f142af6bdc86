//! The guest's registers, as the host's signal frame holds them (`struct sigcontext` inside
//! the kernel's `struct ucontext`, on the stub thread's alternate stack).

/// Indices of [`UserRegs::gregs`] (Linux `REG_*`, the order of `struct sigcontext`).
pub mod reg {
    pub const R8: usize = 0;
    pub const R9: usize = 1;
    pub const R10: usize = 2;
    pub const R11: usize = 3;
    pub const R12: usize = 4;
    pub const R13: usize = 5;
    pub const R14: usize = 6;
    pub const R15: usize = 7;
    pub const RDI: usize = 8;
    pub const RSI: usize = 9;
    pub const RBP: usize = 10;
    pub const RBX: usize = 11;
    pub const RDX: usize = 12;
    pub const RAX: usize = 13;
    pub const RCX: usize = 14;
    pub const RSP: usize = 15;
    pub const RIP: usize = 16;
    pub const EFL: usize = 17;
    pub const CSGSFS: usize = 18;
    pub const ERR: usize = 19;
    pub const TRAPNO: usize = 20;
    pub const OLDMASK: usize = 21;
    pub const CR2: usize = 22;
    /// Registers the kernel may set (the rest describe the trap).
    pub const WRITABLE: usize = EFL + 1;
}

/// Offset of `uc_mcontext` in the kernel's `struct ucontext`.
pub(super) const MCONTEXT_OFF: u64 = 40;
/// Size of the kernel's `struct ucontext` (flags, link, stack, sigcontext, sigmask).
pub const UCONTEXT_SIZE: u64 = 40 + 256 + 8;
/// Offset of the fpstate pointer in the ucontext.
pub(super) const FPSTATE_PTR_OFF: u64 = MCONTEXT_OFF + 23 * 8;

/// Guest registers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserRegs {
    pub gregs: [u64; 23],
}

impl UserRegs {
    pub fn rax(&self) -> u64 {
        self.gregs[reg::RAX]
    }
    pub fn set_rax(&mut self, v: u64) {
        self.gregs[reg::RAX] = v;
    }
    pub fn rip(&self) -> u64 {
        self.gregs[reg::RIP]
    }
    pub fn set_rip(&mut self, v: u64) {
        self.gregs[reg::RIP] = v;
    }
    pub fn rsp(&self) -> u64 {
        self.gregs[reg::RSP]
    }
    pub fn set_rsp(&mut self, v: u64) {
        self.gregs[reg::RSP] = v;
    }
    /// System call argument `i` (0..6): rdi, rsi, rdx, r10, r8, r9.
    pub fn arg(&self, i: usize) -> u64 {
        const ARGS: [usize; 6] = [reg::RDI, reg::RSI, reg::RDX, reg::R10, reg::R8, reg::R9];
        ARGS.get(i).map_or(0, |&r| self.gregs[r])
    }

    /// Registers for a thread starting at `rip` with stack `rsp` (everything else zero, IF).
    pub fn start(rip: u64, rsp: u64) -> UserRegs {
        let mut r = UserRegs::default();
        r.gregs[reg::RIP] = rip;
        r.gregs[reg::RSP] = rsp;
        r.gregs[reg::EFL] = 0x202;
        r
    }

    /// Read from a frame at kernel address `uc` (validated by the caller).
    pub(super) fn load(&mut self, uc: u64) {
        for (i, g) in self.gregs.iter_mut().enumerate() {
            // SAFETY: the caller validated that the whole ucontext lies in the slot mapping;
            // the guest may write it concurrently, so read it once, volatile.
            *g = unsafe { std::ptr::read_volatile((uc + MCONTEXT_OFF + 8 * i as u64) as *const u64) };
        }
    }

    /// Write the settable registers into a frame at kernel address `uc` — only those that
    /// differ from what the frame holds. The frame was written on the stub thread's host CPU
    /// and read here ([`UserRegs::load`]), so its cache lines are shared by both CPUs: a line
    /// left alone is still in the stub's cache when its `rt_sigreturn` reads the frame, and a
    /// system call that changes only rax costs that one line's transfer, not the frame's four.
    pub(super) fn store(&self, uc: u64) {
        for (i, g) in self.gregs.iter().enumerate().take(reg::WRITABLE) {
            let at = (uc + MCONTEXT_OFF + 8 * i as u64) as *mut u64;
            // SAFETY: as in `load`.
            if unsafe { std::ptr::read_volatile(at) } != *g {
                // SAFETY: as in `load`.
                unsafe { std::ptr::write_volatile(at, *g) };
            }
        }
    }
}
