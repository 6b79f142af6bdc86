//! ptrace(2)'s structures: `struct user_regs_struct` (GETREGS/SETREGS, NT_PRSTATUS) and the
//! place of each register and of the debug registers in `struct user` (PEEKUSER/POKEUSER),
//! `struct user_fpregs_struct` (GETFPREGS, NT_PRFPREG: the fxsave image), and
//! `struct ptrace_syscall_info` (PTRACE_GET_SYSCALL_INFO). linux-raw-sys has the last one;
//! the two register structures (asm/user_64.h) it lacks are written out here with size checks.

use super::linux_struct;
use linux_raw_sys::ptrace as lp;

pub use linux_raw_sys::elf_uapi::{NT_PRFPREG, NT_PRSTATUS, NT_X86_XSTATE};
pub use lp::{
    AUDIT_ARCH_X86_64, PTRACE_ATTACH, PTRACE_CONT, PTRACE_DETACH, PTRACE_EVENT_CLONE, PTRACE_EVENT_EXEC,
    PTRACE_EVENT_EXIT, PTRACE_EVENT_FORK, PTRACE_EVENT_STOP, PTRACE_EVENT_VFORK, PTRACE_EVENT_VFORK_DONE,
    PTRACE_EVENTMSG_SYSCALL_ENTRY, PTRACE_EVENTMSG_SYSCALL_EXIT, PTRACE_GET_SYSCALL_INFO, PTRACE_GETEVENTMSG,
    PTRACE_GETFPREGS, PTRACE_GETREGS, PTRACE_GETREGSET, PTRACE_GETSIGINFO, PTRACE_GETSIGMASK, PTRACE_INTERRUPT,
    PTRACE_KILL, PTRACE_LISTEN, PTRACE_O_EXITKILL, PTRACE_O_MASK, PTRACE_O_TRACECLONE, PTRACE_O_TRACEEXEC,
    PTRACE_O_TRACEEXIT, PTRACE_O_TRACEFORK, PTRACE_O_TRACESYSGOOD, PTRACE_O_TRACEVFORK, PTRACE_O_TRACEVFORKDONE,
    PTRACE_PEEKDATA, PTRACE_PEEKSIGINFO, PTRACE_PEEKSIGINFO_SHARED, PTRACE_PEEKTEXT, PTRACE_PEEKUSR, PTRACE_POKEDATA,
    PTRACE_POKETEXT, PTRACE_POKEUSR, PTRACE_SEIZE, PTRACE_SETFPREGS, PTRACE_SETOPTIONS, PTRACE_SETREGS,
    PTRACE_SETREGSET, PTRACE_SETSIGINFO, PTRACE_SETSIGMASK, PTRACE_SINGLESTEP, PTRACE_SYSCALL,
    PTRACE_SYSCALL_INFO_ENTRY, PTRACE_SYSCALL_INFO_EXIT, PTRACE_SYSCALL_INFO_NONE, PTRACE_SYSEMU,
    PTRACE_SYSEMU_SINGLESTEP, PTRACE_TRACEME,
};

/// `struct user_regs_struct` (asm/user_64.h): the general registers in ptrace's order, the
/// same block a core file's NT_PRSTATUS holds (one struct: platform's, for both).
pub use platform::dump::elf::UserRegs as UserRegsStruct;

/// The user code and stack selectors of x86-64 Linux (__USER_CS, __USER_DS).
pub const USER_CS: u64 = 0x33;
pub const USER_DS: u64 = 0x2b;

/// `user_regs_struct` from the general registers the kernel keeps (the signal frame's order,
/// `platform::stub::reg`), with the user selectors; gs base and the segment registers are 0.
pub fn user_regs(g: &[u64; 23], orig_rax: u64, eflags: u64, fs_base: u64) -> UserRegsStruct {
    use platform::stub::reg;
    UserRegsStruct {
        r15: g[reg::R15],
        r14: g[reg::R14],
        r13: g[reg::R13],
        r12: g[reg::R12],
        rbp: g[reg::RBP],
        rbx: g[reg::RBX],
        r11: g[reg::R11],
        r10: g[reg::R10],
        r9: g[reg::R9],
        r8: g[reg::R8],
        rax: g[reg::RAX],
        rcx: g[reg::RCX],
        rdx: g[reg::RDX],
        rsi: g[reg::RSI],
        rdi: g[reg::RDI],
        orig_rax,
        rip: g[reg::RIP],
        cs: USER_CS,
        eflags,
        rsp: g[reg::RSP],
        ss: USER_DS,
        fs_base,
        ..UserRegsStruct::default()
    }
}

/// Registers in `struct user_regs_struct` (27 words, ELF_NGREG).
pub const USER_REGS_WORDS: usize = 27;
const _: () = assert!(size_of::<UserRegsStruct>() == USER_REGS_WORDS * 8);

/// `struct user_fpregs_struct`: the 512-byte fxsave image.
pub const USER_FPREGS_SIZE: usize = 512;

/// `struct user` (asm/user_64.h): where PEEKUSER/POKEUSER find things. The registers come
/// first; the eight debug registers `u_debugreg` end it.
pub mod user {
    /// `offsetof(struct user, u_debugreg)`: after regs (216), u_fpvalid and padding (8), i387
    /// (512), five words of sizes and addresses, signal, reserved and padding, u_ar0,
    /// u_fpstate, magic (8 each) and u_comm (32).
    pub const U_DEBUGREG: u64 = 216 + 8 + 512 + 5 * 8 + 8 + 8 + 8 + 8 + 8 + 32;
    /// `sizeof(struct user)`.
    pub const SIZE: u64 = U_DEBUGREG + 8 * 8;
    const _: () = assert!(U_DEBUGREG == 848 && SIZE == 912);
}

linux_struct! {
    /// `struct ptrace_syscall_info`'s fixed part (what PTRACE_GET_SYSCALL_INFO writes before
    /// its union, which follows as plain words: [`SyscallInfo::data`]).
    pub struct SyscallInfoHead = lp::ptrace_syscall_info {
        pub op: u8,
        pub reserved: u8,
        pub flags: u16,
        pub arch: u32,
        pub instruction_pointer: u64,
        pub stack_pointer: u64,
        pad data: [u64; 8],
    }
}

linux_struct! {
    /// `struct ptrace_peeksiginfo_args` (PTRACE_PEEKSIGINFO's addr).
    pub struct PeeksiginfoArgs = lp::ptrace_peeksiginfo_args {
        pub off: u64,
        pub flags: u32,
        pub nr: i32,
    }
}

/// PTRACE_ARCH_PRCTL (x86-64): arch_prctl(2) on the tracee.
pub const PTRACE_ARCH_PRCTL: u32 = lp::PTRACE_ARCH_PRCTL;

/// The size PTRACE_GET_SYSCALL_INFO reports for each kind (Linux's `offsetofend`): the head
/// alone, through `entry.args`, through `exit.is_error`.
pub const SYSCALL_INFO_NONE_SIZE: usize = 24;
pub const SYSCALL_INFO_ENTRY_SIZE: usize = 24 + 8 + 6 * 8;
pub const SYSCALL_INFO_EXIT_SIZE: usize = 24 + 8 + 1;
