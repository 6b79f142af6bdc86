//! Trap entry: host signals raised in the kernel process.
//!
//! * SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP raised by kernel code are fatal traps, the
//!   vkernel's `exc_segfault` → `kern_trap` → `trap_fatal`. The handler builds a
//!   [`TrapFrame`] from the signal's ucontext and calls the kernel's trap hook, which runs
//!   the debugger and never returns for a fatal trap. (Guest page faults arrive in the stub
//!   processes, not here.)
//! * SIGUSR1 is the IPI. The handler counts it and acts on the two bits that cannot wait for
//!   a safe point: `IPI_STOP` parks the CPU in `stopsig` for the debugger, `IPI_NMI` calls the
//!   kernel's NMI hook (a break-in on a CPU that does not reach a safe point).
//!
//! All handlers run on a per-thread alternate stack (a kernel stack overflow still reaches
//! the debugger) with SA_NODEFER, so a fault inside the debugger re-enters and is caught by
//! the nesting check instead of killing the process silently.

use std::io;
use std::sync::OnceLock;
use std::sync::atomic::Ordering;

use crate::cpu::{self, IPI_NMI, IPI_STOP};

/// Registers in a trap frame (same order as the exported `kvm_mem::abi::reg`).
pub const TF_NREGS: usize = 24;

/// Register indices of [`TrapFrame::regs`].
pub mod reg {
    pub const RAX: usize = 0;
    pub const RBX: usize = 1;
    pub const RCX: usize = 2;
    pub const RDX: usize = 3;
    pub const RSI: usize = 4;
    pub const RDI: usize = 5;
    pub const RBP: usize = 6;
    pub const RSP: usize = 7;
    pub const R8: usize = 8;
    pub const R9: usize = 9;
    pub const R10: usize = 10;
    pub const R11: usize = 11;
    pub const R12: usize = 12;
    pub const R13: usize = 13;
    pub const R14: usize = 14;
    pub const R15: usize = 15;
    pub const RIP: usize = 16;
    pub const RFLAGS: usize = 17;
    pub const FS_BASE: usize = 18;
    pub const GS_BASE: usize = 19;
    pub const TRAPNO: usize = 20;
    pub const ERR: usize = 21;
    pub const ADDR: usize = 22;
    pub const SIGNO: usize = 23;

    pub const NAMES: [&str; super::TF_NREGS] = [
        "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11", "r12",
        "r13", "r14", "r15", "rip", "rflags", "fs_base", "gs_base", "trapno", "err", "addr",
        "signo",
    ];
}

/// x86 exception vectors as Linux reports them in `REG_TRAPNO`.
pub mod vector {
    pub const DE: u64 = 0;
    pub const DB: u64 = 1;
    pub const BP: u64 = 3;
    pub const OF: u64 = 4;
    pub const BR: u64 = 5;
    pub const UD: u64 = 6;
    pub const NM: u64 = 7;
    pub const SS: u64 = 12;
    pub const GP: u64 = 13;
    pub const PF: u64 = 14;
    pub const MF: u64 = 16;
    pub const AC: u64 = 17;
    pub const XM: u64 = 19;
}

/// Registers and trap information.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrapFrame {
    pub regs: [u64; TF_NREGS],
}

impl TrapFrame {
    pub fn rip(&self) -> u64 {
        self.regs[reg::RIP]
    }
    pub fn rsp(&self) -> u64 {
        self.regs[reg::RSP]
    }
    pub fn rbp(&self) -> u64 {
        self.regs[reg::RBP]
    }
    pub fn signo(&self) -> i32 {
        self.regs[reg::SIGNO] as i32
    }
    pub fn trapno(&self) -> u64 {
        self.regs[reg::TRAPNO]
    }
    pub fn err(&self) -> u64 {
        self.regs[reg::ERR]
    }
    pub fn addr(&self) -> u64 {
        self.regs[reg::ADDR]
    }

    /// Build from a signal's siginfo and ucontext.
    ///
    /// # Safety
    /// `info` and `uc` must be the pointers the host passed to an SA_SIGINFO handler.
    unsafe fn from_signal(signo: i32, info: *const libc::siginfo_t, uc: *const libc::ucontext_t) -> TrapFrame {
        // SAFETY: the caller guarantees a valid ucontext for the duration of the handler.
        let g = unsafe { &(*uc).uc_mcontext.gregs };
        let r = |i: libc::c_int| g[i as usize] as u64;
        let mut regs = [0u64; TF_NREGS];
        regs[reg::RAX] = r(libc::REG_RAX);
        regs[reg::RBX] = r(libc::REG_RBX);
        regs[reg::RCX] = r(libc::REG_RCX);
        regs[reg::RDX] = r(libc::REG_RDX);
        regs[reg::RSI] = r(libc::REG_RSI);
        regs[reg::RDI] = r(libc::REG_RDI);
        regs[reg::RBP] = r(libc::REG_RBP);
        regs[reg::RSP] = r(libc::REG_RSP);
        regs[reg::R8] = r(libc::REG_R8);
        regs[reg::R9] = r(libc::REG_R9);
        regs[reg::R10] = r(libc::REG_R10);
        regs[reg::R11] = r(libc::REG_R11);
        regs[reg::R12] = r(libc::REG_R12);
        regs[reg::R13] = r(libc::REG_R13);
        regs[reg::R14] = r(libc::REG_R14);
        regs[reg::R15] = r(libc::REG_R15);
        regs[reg::RIP] = r(libc::REG_RIP);
        regs[reg::RFLAGS] = r(libc::REG_EFL);
        regs[reg::TRAPNO] = r(libc::REG_TRAPNO);
        regs[reg::ERR] = r(libc::REG_ERR);
        regs[reg::SIGNO] = signo as u64;
        // SAFETY: `info` is valid (caller); si_addr is meaningful for the fault signals.
        regs[reg::ADDR] = unsafe { (*info).si_addr() } as u64;
        regs[reg::FS_BASE] = arch_prctl_get(ARCH_GET_FS);
        regs[reg::GS_BASE] = arch_prctl_get(ARCH_GET_GS);
        TrapFrame { regs }
    }
}

/// arch_prctl(2) codes (not in the libc crate).
const ARCH_GET_FS: libc::c_int = 0x1003;
const ARCH_GET_GS: libc::c_int = 0x1004;

fn arch_prctl_get(code: libc::c_int) -> u64 {
    let mut v: u64 = 0;
    // SAFETY: ARCH_GET_FS/GS store one u64 at the address we pass, a live local.
    let r = unsafe { libc::syscall(libc::SYS_arch_prctl, code, &mut v as *mut u64) };
    if r == 0 { v } else { 0 }
}

/// The registers of the caller, as if it had trapped here: for software entries to the
/// debugger (panic, break-in at a safe point). Inlined, so `rip` lies in the caller.
#[inline(always)]
pub fn capture_context() -> TrapFrame {
    let (rip, rsp, rbp, rbx, r12, r13, r14, r15): (u64, u64, u64, u64, u64, u64, u64, u64);
    // SAFETY: copies registers into outputs; no memory is touched and the stack is unchanged.
    unsafe {
        core::arch::asm!(
            "lea {rip}, [rip]",
            "mov {rsp}, rsp",
            "mov {rbp}, rbp",
            "mov {rbx}, rbx",
            "mov {r12}, r12",
            "mov {r13}, r13",
            "mov {r14}, r14",
            "mov {r15}, r15",
            rip = out(reg) rip,
            rsp = out(reg) rsp,
            rbp = out(reg) rbp,
            rbx = out(reg) rbx,
            r12 = out(reg) r12,
            r13 = out(reg) r13,
            r14 = out(reg) r14,
            r15 = out(reg) r15,
            options(nomem, nostack, preserves_flags)
        );
    }
    let mut regs = [0u64; TF_NREGS];
    regs[reg::RIP] = rip;
    regs[reg::RSP] = rsp;
    regs[reg::RBP] = rbp;
    regs[reg::RBX] = rbx;
    regs[reg::R12] = r12;
    regs[reg::R13] = r13;
    regs[reg::R14] = r14;
    regs[reg::R15] = r15;
    regs[reg::FS_BASE] = arch_prctl_get(ARCH_GET_FS);
    TrapFrame { regs }
}

/// Read a word at `addr` with a real load, faulting if it is unmapped. The fault is a genuine
/// fatal trap in kernel code, taken by the trap hook (the debugger), which does not return to
/// the faulting instruction. Used by `debug.trap=1` and `/proc/sys/debug/kdb/trap`. Inlined so
/// the faulting instruction lies in the caller.
#[inline(always)]
pub fn deliberate_fault(addr: usize) -> u64 {
    let v: u64;
    // SAFETY: a plain load through asm: either `addr` is mapped and we read a word, or the CPU
    // faults and the fatal trap handler takes over; Rust never sees an invalid reference.
    unsafe { core::arch::asm!("mov {v}, qword ptr [{a}]", a = in(reg) addr, v = out(reg) v, options(nostack, readonly)) };
    v
}

/// Execute a breakpoint instruction (int3): the trap hook sees a SIGTRAP with vector 3 and the
/// instruction pointer just past it, so returning from the hook resumes here. This is how
/// software enters the debugger (FreeBSD's `breakpoint()` in `kdb_enter`). Inlined so the
/// breakpoint lies in the caller.
#[inline(always)]
pub fn breakpoint() {
    // SAFETY: int3 only raises SIGTRAP; the handler returns to the next instruction.
    unsafe { core::arch::asm!("int3", options(nomem, nostack)) };
}

/// Called for a fatal trap in kernel code; must not return unless the trap can be resumed
/// (a breakpoint).
pub type TrapHook = fn(&TrapFrame);

static TRAP_HOOK: OnceLock<TrapHook> = OnceLock::new();
static NMI_HOOK: OnceLock<TrapHook> = OnceLock::new();

/// Register the kernel's fatal-trap hook.
pub fn set_trap_hook(h: TrapHook) {
    let _ = TRAP_HOOK.set(h);
}

/// Register the kernel's NMI (forced break-in) hook.
pub fn set_nmi_hook(h: TrapHook) {
    let _ = NMI_HOOK.set(h);
}

extern "C" fn fault_handler(signo: libc::c_int, info: *mut libc::siginfo_t, uc: *mut libc::c_void) {
    // SAFETY: the host passes valid siginfo/ucontext pointers to an SA_SIGINFO handler.
    let tf = unsafe { TrapFrame::from_signal(signo, info, uc as *const libc::ucontext_t) };
    let pc = cpu::this_pcpu();
    pc.intrs.fetch_add(1, Ordering::Relaxed);
    let depth = pc.trap_depth.fetch_add(1, Ordering::AcqRel);
    if depth >= 2 {
        // A fault while handling a fault while handling a fault: give up loudly.
        crate::console::write(b"\nFatal trap while in the debugger; halting.\n");
        crate::host::exit(4);
    }
    match TRAP_HOOK.get() {
        Some(h) => h(&tf),
        None => {
            let msg = format!(
                "\nFatal trap (signal {signo}) at rip {:#x}, address {:#x}, before the kernel was ready\n",
                tf.rip(),
                tf.addr()
            );
            crate::console::write(msg.as_bytes());
            crate::host::exit(4);
        }
    }
    pc.trap_depth.fetch_sub(1, Ordering::AcqRel);
}

extern "C" fn ipi_handler(_signo: libc::c_int, info: *mut libc::siginfo_t, uc: *mut libc::c_void) {
    let pc = cpu::this_pcpu();
    pc.intrs.fetch_add(1, Ordering::Relaxed);
    let pending = pc.ipi_pending.load(Ordering::Acquire);
    if pending & (IPI_STOP | IPI_NMI) == 0 {
        return;
    }
    // SAFETY: valid handler arguments, as above.
    let tf = unsafe { TrapFrame::from_signal(libc::SIGUSR1, info, uc as *const libc::ucontext_t) };
    if pending & IPI_NMI != 0 {
        pc.ipi_pending.fetch_and(!IPI_NMI, Ordering::AcqRel);
        if let Some(h) = NMI_HOOK.get() {
            h(&tf);
        }
    }
    if pc.ipi_pending.load(Ordering::Acquire) & IPI_STOP != 0 {
        crate::stop::stopsig(pc, &tf);
    }
}

fn install(signo: libc::c_int, handler: usize, extra_flags: libc::c_int) -> io::Result<()> {
    // SAFETY: a zeroed sigaction is a valid starting point; we fill handler, flags and an empty
    // mask, and pass it to sigaction by pointer for the duration of the call.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler;
        sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | extra_flags;
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(signo, &sa, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Install the process-wide handlers. Call once, before any CPU starts.
pub fn install_handlers() -> io::Result<()> {
    let fault = fault_handler as extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) as usize;
    for s in [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE, libc::SIGTRAP] {
        install(s, fault, libc::SA_NODEFER)?;
    }
    let ipi = ipi_handler as extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) as usize;
    install(libc::SIGUSR1, ipi, 0)?;
    thread_init();
    Ok(())
}

/// Size of each thread's alternate signal stack: the debugger runs on it.
pub const ALTSTACK_SIZE: usize = 2 * 1024 * 1024;

/// Per-host-thread set-up: an alternate signal stack big enough for the debugger.
pub fn thread_init() {
    match crate::kthread::KStack::new(ALTSTACK_SIZE) {
        Ok(stack) => {
            let ss = libc::stack_t { ss_sp: stack.lo() as *mut libc::c_void, ss_flags: 0, ss_size: stack.size() };
            // SAFETY: the alternate stack is a live mapping we own; we leak it below so it stays
            // valid for the life of the thread.
            if unsafe { libc::sigaltstack(&ss, std::ptr::null_mut()) } == 0 {
                std::mem::forget(stack);
            } else {
                log::warn!("sigaltstack: {}", io::Error::last_os_error());
            }
        }
        Err(e) => log::warn!("cannot allocate an alternate signal stack: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_names_follow_the_exported_order() {
        assert_eq!(reg::NAMES[reg::RIP], "rip");
        assert_eq!(reg::NAMES[reg::SIGNO], "signo");
        assert_eq!(reg::NAMES.len(), TF_NREGS);
    }

    #[inline(never)]
    fn where_am_i() -> TrapFrame {
        capture_context()
    }

    #[test]
    fn capture_context_sees_its_caller() {
        let tf = where_am_i();
        let f = where_am_i as fn() -> TrapFrame as usize as u64;
        assert!(tf.rip() >= f && tf.rip() < f + 4096, "rip {:#x} not in where_am_i at {f:#x}", tf.rip());
        let sp = crate::kthread::current_sp();
        assert!(tf.rsp() < sp && sp - tf.rsp() < 4096);
    }

    #[test]
    fn deliberate_fault_reads_mapped_memory() {
        let x: u64 = 0xdead_beef;
        assert_eq!(deliberate_fault(&x as *const u64 as usize), 0xdead_beef);
    }
}
