//! The stub's seccomp filter (classic BPF over `struct seccomp_data`).
//!
//! * Anything that is not an x86-64 `syscall` (an `int 0x80`, an x32 call) → TRAP: the guest's
//!   system call, reported to the kernel as SIGSYS.
//! * A system call from anywhere but the stub's code → TRAP: the guest's system call.
//! * From the stub's code, only its own operations, with their arguments checked so that a
//!   guest that jumps into stub code can do nothing on the host but what the stub does: map
//!   physical memory (fd 3, shared and fixed) below `STUB_BASE`, unmap, protect or advise
//!   ranges below it, make a thread with exactly the stub's clone flags, set its fs base (or
//!   its gs base to a slot: the fast path's, `fast`), wait
//!   and wake on futexes, return from its handler, and exit. Anything else → KILL_PROCESS.
//!
//! Ranges are checked as "address below `STUB_BASE` − 4 GiB and length below 4 GiB", which
//! BPF's 32-bit loads can express and which keeps `address + length` below `STUB_BASE`; the
//! kernel splits larger operations.

use super::layout::{FD_PHYSMEM, SLOTS_BASE, SLOTS_SIZE, STUB_BASE, THREAD_CLONE_FLAGS};

/// One BPF instruction (`struct sock_filter`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SockFilter {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

const LD_W_ABS: u16 = 0x20;
const JEQ_K: u16 = 0x15;
const JGE_K: u16 = 0x35;
const RET_K: u16 = 0x06;

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
pub const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const SECCOMP_RET_TRAP: u32 = 0x0003_0000;
pub const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;

/// `arch_prctl` code to set the fs base.
pub const ARCH_SET_FS: u32 = 0x1002;
/// `arch_prctl` code to set the gs base (a stub thread's: its slot).
pub const ARCH_SET_GS: u32 = 0x1001;

// struct seccomp_data offsets
const NR: u32 = 0;
const ARCH: u32 = 4;
const IP_LO: u32 = 8;
const IP_HI: u32 = 12;
const fn arg_lo(i: u32) -> u32 {
    16 + 8 * i
}
const fn arg_hi(i: u32) -> u32 {
    20 + 8 * i
}

/// Where a conditional jump goes.
#[derive(Debug, Clone, Copy)]
enum To {
    /// The next instruction.
    Next,
    /// Over the next `n` instructions.
    Skip(usize),
    Trap,
    Allow,
    Kill,
}

#[derive(Debug)]
enum Insn {
    Ld(u32),
    Jmp { code: u16, k: u32, t: To, f: To },
}

/// A tiny assembler whose jumps go to the next instructions or to the three returns that
/// close the program.
#[derive(Default)]
struct Prog(Vec<Insn>);

impl Prog {
    fn ld(&mut self, off: u32) -> &mut Self {
        self.0.push(Insn::Ld(off));
        self
    }
    fn jeq(&mut self, k: u32, t: To, f: To) -> &mut Self {
        self.0.push(Insn::Jmp { code: JEQ_K, k, t, f });
        self
    }
    fn jge(&mut self, k: u32, t: To, f: To) -> &mut Self {
        self.0.push(Insn::Jmp { code: JGE_K, k, t, f });
        self
    }

    /// Check a system call: `if nr == this { body } else skip the body`.
    fn call(&mut self, nr: i64, body: impl FnOnce(&mut Prog)) {
        let mut b = Prog::default();
        body(&mut b);
        self.ld(NR).jeq(nr as u32, To::Next, To::Skip(b.0.len()));
        self.0.extend(b.0);
    }

    fn finish(self) -> Vec<SockFilter> {
        let n = self.0.len();
        let (kill, trap, allow) = (n, n + 1, n + 2);
        let rel = |at: usize, to: To| -> u8 {
            let target = match to {
                To::Next => at + 1,
                To::Skip(k) => at + 1 + k,
                To::Trap => trap,
                To::Allow => allow,
                To::Kill => kill,
            };
            u8::try_from(target - at - 1).expect("seccomp jump out of range")
        };
        let mut out: Vec<SockFilter> = self
            .0
            .iter()
            .enumerate()
            .map(|(i, insn)| match *insn {
                Insn::Ld(off) => SockFilter { code: LD_W_ABS, jt: 0, jf: 0, k: off },
                Insn::Jmp { code, k, t, f } => SockFilter { code, jt: rel(i, t), jf: rel(i, f), k },
            })
            .collect();
        for k in [SECCOMP_RET_KILL_PROCESS, SECCOMP_RET_TRAP, SECCOMP_RET_ALLOW] {
            out.push(SockFilter { code: RET_K, jt: 0, jf: 0, k });
        }
        out
    }
}

/// The filter for a stub whose code occupies `[STUB_BASE, STUB_BASE + code_len)`.
pub fn build(code_len: u64) -> Vec<SockFilter> {
    let base_hi = (STUB_BASE >> 32) as u32;
    let base_lo = STUB_BASE as u32;
    let end_lo = u32::try_from(u64::from(base_lo) + code_len).expect("stub code too large");
    let mut p = Prog::default();
    // Not a 64-bit syscall: the guest's (int 0x80, x32).
    p.ld(ARCH).jeq(AUDIT_ARCH_X86_64, To::Next, To::Trap);
    p.ld(NR).jge(X32_SYSCALL_BIT, To::Trap, To::Next);
    // Not from the stub's code: the guest's.
    p.ld(IP_HI).jeq(base_hi, To::Next, To::Trap);
    p.ld(IP_LO).jge(base_lo, To::Next, To::Trap).jge(end_lo, To::Trap, To::Next);
    // The stub's own operations.
    for nr in [
        libc::SYS_rt_sigreturn,
        libc::SYS_futex,
        libc::SYS_gettid,
        libc::SYS_sched_yield,
        libc::SYS_exit,
        libc::SYS_exit_group,
        libc::SYS_sigaltstack,
        libc::SYS_rt_sigprocmask,
    ] {
        p.ld(NR).jeq(nr as u32, To::Allow, To::Next);
    }
    for nr in [libc::SYS_munmap, libc::SYS_mprotect, libc::SYS_madvise] {
        p.call(nr, |b| {
            b.ld(arg_hi(0)).jge(base_hi - 1, To::Kill, To::Next);
            b.ld(arg_hi(1)).jeq(0, To::Allow, To::Kill);
        });
    }
    p.call(libc::SYS_mmap, |b| {
        b.ld(arg_hi(0)).jge(base_hi - 1, To::Kill, To::Next);
        b.ld(arg_hi(1)).jeq(0, To::Next, To::Kill);
        b.ld(arg_lo(3)).jeq((libc::MAP_SHARED | libc::MAP_FIXED) as u32, To::Next, To::Kill);
        b.ld(arg_hi(3)).jeq(0, To::Next, To::Kill);
        b.ld(arg_lo(4)).jeq(FD_PHYSMEM as u32, To::Next, To::Kill);
        b.ld(arg_hi(4)).jeq(0, To::Allow, To::Kill);
    });
    p.call(libc::SYS_clone, |b| {
        b.ld(arg_hi(0)).jeq((THREAD_CLONE_FLAGS >> 32) as u32, To::Next, To::Kill);
        b.ld(arg_lo(0)).jeq(THREAD_CLONE_FLAGS as u32, To::Allow, To::Kill);
    });
    // ARCH_SET_FS (the guest's fs base), or ARCH_SET_GS to a slot (the fast path's).
    let slots_hi = (SLOTS_BASE >> 32) as u32;
    let (slots_lo, slots_end_lo) = (SLOTS_BASE as u32, (SLOTS_BASE + SLOTS_SIZE) as u32);
    p.call(libc::SYS_arch_prctl, |b| {
        b.ld(arg_hi(0)).jeq(0, To::Next, To::Kill);
        b.ld(arg_lo(0)).jeq(ARCH_SET_FS, To::Allow, To::Next);
        b.ld(arg_lo(0)).jeq(ARCH_SET_GS, To::Next, To::Kill);
        b.ld(arg_hi(1)).jeq(slots_hi, To::Next, To::Kill);
        b.ld(arg_lo(1)).jge(slots_lo, To::Next, To::Kill).jge(slots_end_lo, To::Kill, To::Allow);
    });
    p.finish()
}

/// Run a filter on one `seccomp_data` (a BPF interpreter for the instructions we emit), for
/// tests.
pub fn eval(prog: &[SockFilter], nr: u32, arch: u32, ip: u64, args: [u64; 6]) -> u32 {
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&nr.to_le_bytes());
    data[4..8].copy_from_slice(&arch.to_le_bytes());
    data[8..16].copy_from_slice(&ip.to_le_bytes());
    for (i, a) in args.iter().enumerate() {
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
    }
    let mut acc: u32 = 0;
    let mut pc = 0;
    while let Some(i) = prog.get(pc) {
        match i.code {
            LD_W_ABS => {
                let o = i.k as usize;
                acc = u32::from_le_bytes([data[o], data[o + 1], data[o + 2], data[o + 3]]);
                pc += 1;
            }
            JEQ_K | JGE_K => {
                let taken = if i.code == JEQ_K { acc == i.k } else { acc >= i.k };
                pc += 1 + usize::from(if taken { i.jt } else { i.jf });
            }
            RET_K => return i.k,
            _ => return SECCOMP_RET_KILL_PROCESS,
        }
    }
    SECCOMP_RET_KILL_PROCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEN: u64 = 0x1000;
    const X86: u32 = AUDIT_ARCH_X86_64;

    fn run(nr: i64, ip: u64, args: [u64; 6]) -> u32 {
        eval(&build(LEN), nr as u32, X86, ip, args)
    }

    const STUB_IP: u64 = STUB_BASE + 0x100;

    #[test]
    fn guest_calls_trap() {
        assert_eq!(run(libc::SYS_getpid, 0x401000, [0; 6]), SECCOMP_RET_TRAP);
        assert_eq!(run(libc::SYS_mmap, 0x401000, [0; 6]), SECCOMP_RET_TRAP);
        // An int 0x80 call, whatever its number.
        assert_eq!(eval(&build(LEN), 1, 0x4000_0003, STUB_IP, [0; 6]), SECCOMP_RET_TRAP);
        // x32
        assert_eq!(run(0x4000_0000 + 39, STUB_IP, [0; 6]), SECCOMP_RET_TRAP);
        // Just past the stub's code is the guest's.
        assert_eq!(run(libc::SYS_exit, STUB_BASE + LEN, [0; 6]), SECCOMP_RET_TRAP);
    }

    #[test]
    fn stub_operations_are_allowed_with_checked_arguments() {
        let fixed = (libc::MAP_SHARED | libc::MAP_FIXED) as u64;
        let ok = SECCOMP_RET_ALLOW;
        let kill = SECCOMP_RET_KILL_PROCESS;
        assert_eq!(run(libc::SYS_futex, STUB_IP, [0; 6]), ok);
        assert_eq!(run(libc::SYS_rt_sigreturn, STUB_IP, [0; 6]), ok);
        assert_eq!(run(libc::SYS_mmap, STUB_IP, [0x400000, 4096, 5, fixed, 3, 0x5000]), ok);
        assert_eq!(run(libc::SYS_mmap, STUB_IP, [0x400000, 4096, 5, fixed, 4, 0]), kill, "other fd");
        assert_eq!(run(libc::SYS_mmap, STUB_IP, [0x400000, 4096, 5, 0x22, 3, 0]), kill, "anonymous");
        assert_eq!(run(libc::SYS_mmap, STUB_IP, [STUB_BASE, 4096, 5, fixed, 3, 0]), kill, "over the stub");
        assert_eq!(run(libc::SYS_mmap, STUB_IP, [0x400000, 1 << 33, 5, fixed, 3, 0]), kill, "huge");
        assert_eq!(run(libc::SYS_munmap, STUB_IP, [0x400000, 1 << 20, 0, 0, 0, 0]), ok);
        assert_eq!(run(libc::SYS_munmap, STUB_IP, [STUB_BASE + 0x100_0000, 4096, 0, 0, 0, 0]), kill);
        assert_eq!(run(libc::SYS_mprotect, STUB_IP, [0x400000, 4096, 1, 0, 0, 0]), ok);
        assert_eq!(run(libc::SYS_madvise, STUB_IP, [0x400000, 4096, 4, 0, 0, 0]), ok);
        assert_eq!(run(libc::SYS_clone, STUB_IP, [THREAD_CLONE_FLAGS, 0, 0, 0, 0, 0]), ok);
        assert_eq!(run(libc::SYS_clone, STUB_IP, [libc::SIGCHLD as u64, 0, 0, 0, 0, 0]), kill, "fork");
        assert_eq!(run(libc::SYS_arch_prctl, STUB_IP, [u64::from(ARCH_SET_FS), 0x1000, 0, 0, 0, 0]), ok);
        assert_eq!(run(libc::SYS_arch_prctl, STUB_IP, [0x1001, 0, 0, 0, 0, 0]), kill, "set gs anywhere");
        assert_eq!(run(libc::SYS_arch_prctl, STUB_IP, [0x1001, SLOTS_BASE + 0x30000, 0, 0, 0, 0]), ok, "set gs to a slot");
        assert_eq!(run(libc::SYS_arch_prctl, STUB_IP, [0x1001, SLOTS_BASE + SLOTS_SIZE, 0, 0, 0, 0]), kill, "past the slots");
        assert_eq!(run(libc::SYS_arch_prctl, STUB_IP, [0x1003, SLOTS_BASE, 0, 0, 0, 0]), kill, "get fs");
        for nr in [libc::SYS_open, libc::SYS_execve, libc::SYS_kill, libc::SYS_ptrace, libc::SYS_socket] {
            assert_eq!(run(nr, STUB_IP, [0; 6]), kill, "syscall {nr}");
        }
    }
}
