//! Where things are in a stub process, and the message page format shared with the stub code.
//!
//! ```text
//!  0                                  guest address space, up to USER_END (STUB_BASE - 4 GiB)
//!  STUB_BASE   0x7ff0_0000_0000       stub code (r-x), the vDSO moves table, then the seccomp
//!                                     program at FILTER_OFF
//!  HOST_VDSO   STUB_BASE + 12 MiB     the host's vDSO, its data pages just below (`vdso`)
//!  SLOTS_BASE  STUB_BASE + 16 MiB     MAX_SLOTS slots of SLOT_SIZE, one per guest thread,
//!                                     MAP_SHARED from the address space's slot memfd
//!  STUB_END    STUB_BASE + 256 MiB    (nothing above: the host stack is unmapped)
//!
//!  a slot (SLOT_SIZE, aligned to it, so stub code finds its slot as rsp & !(SLOT_SIZE-1)):
//!   +0x0000  message page: hand-off state, trap information, the operation queue
//!   +0x1000  a small stack for the thread's start-up
//!   +0x2000  the alternate signal stack: the signal frame (registers, FPU state) of every
//!            trap lands here, in memory the kernel shares, and is edited in place
//!   +0x8000  the fast path's frame (`fast`): a trap through a patched system call site
//!            writes the same ucontext and xsave image here itself, without a signal (below
//!            it the fast path's stack; above it room for a host frame the size of the
//!            largest xsave image, which a kick delivers there)
//! ```
//!
//! A stub thread's gs base is its slot (vk gives the guest no gs of its own: `arch_prctl`
//! sets only fs), which is how the fast path finds it.
//!
//! STUB_BASE sits 64 GiB below the top of the user address space, below the lowest place the
//! host can put an exec'd process's stack (stack randomisation spans 16 GiB).

/// Start of the stub area.
pub const STUB_BASE: u64 = 0x7ff0_0000_0000;
/// End of the guest address space: 4 GiB below the stub, the bound the seccomp filter can
/// check for the stub's own mapping calls (see `filter`).
pub const USER_END: u64 = STUB_BASE - (1 << 32);
/// Offset of the seccomp program in the stub image (the code must fit below it).
pub const FILTER_OFF: u64 = 0x8000;
/// Start of the slots.
pub const SLOTS_BASE: u64 = STUB_BASE + 0x0100_0000;
/// One slot per guest thread.
pub const SLOT_SIZE: u64 = 0x1_0000;
/// Threads an address space can have.
pub const MAX_SLOTS: u32 = 1024;
/// Bytes of all slots.
pub const SLOTS_SIZE: u64 = SLOT_SIZE * MAX_SLOTS as u64;
/// End of the stub area.
pub const STUB_END: u64 = STUB_BASE + 0x1000_0000;
/// Top of the host user address space (x86-64, 4-level paging).
pub const TASK_TOP: u64 = 0x7fff_ffff_f000;

/// Top of a slot's start-up stack.
pub const INIT_STACK_TOP: u64 = 0x2000;
/// The alternate signal stack within a slot.
pub const ALT_OFF: u64 = 0x2000;
pub const ALT_SIZE: u64 = SLOT_SIZE - ALT_OFF;

/// The fast system call path's frame in a slot (`fast`): a ucontext as the host's signal
/// frames have it, the xsave image after it, the path's stack just below. A kick while the
/// path restores the guest's registers lands at the top of the alternate stack: 32 KiB
/// above, more than any host signal frame.
pub const FAST_UC_OFF: u64 = SLOT_SIZE - 0x8000;
/// Its xsave image (64-byte aligned).
pub const FAST_FP_OFF: u64 = FAST_UC_OFF + 0x140;
/// Room for the xsave image (the rest up to the top is the host frames').
pub const FAST_FP_ROOM: u64 = 0x3000;

/// Host file descriptors in a stub: physical memory and its slot memfd.
pub const FD_PHYSMEM: i32 = 3;
pub const FD_SLOTS: i32 = 4;
/// The stub's own ELF while it starts (closed at once).
pub const FD_ELF: i32 = 5;

/// Message page fields (offsets), written by the stub's assembly and the kernel alike.
///
/// Everything a hand-over reads or writes is in the page's first cache line (0x00..0x40), so
/// each hand-over moves that one line between the two host CPUs once: the stub writes the
/// trap into it and sets TRAPPED; the kernel writes what changed of SPIN, NOPS, FLAGS and
/// NAP, then sets RESUME. Neither side writes a field that already holds its value, and the
/// stub writes nothing on its way back to the guest (STATE stays RESUME until the next trap),
/// so the kernel's next spin reads a line nobody has taken away since. TRAPS, which the stub
/// counts on every trap, has a line of its own.
pub mod msg {
    /// u32: TRAPPED (stub → kernel), RESUME (kernel → stub; also while the guest runs), or
    /// USER (a fresh slot, not yet trapped).
    pub const STATE: u64 = 0x00;
    /// u32: non-zero while the kernel sleeps on STATE (the stub then wakes it).
    pub const KWAIT: u64 = 0x04;
    /// u32: non-zero while the stub sleeps on STATE (the kernel then wakes it).
    pub const SWAIT: u64 = 0x08;
    /// u32: host thread id of the stub thread; the host zeroes it when the thread exits
    /// (its clear_child_tid), which is what frees the slot for reuse.
    pub const HOST_TID: u64 = 0x0c;
    /// u32: signal that trapped.
    pub const SIGNO: u64 = 0x10;
    /// i32: its si_code.
    pub const SICODE: u64 = 0x14;
    /// u64: si_addr (fault address; the syscall address for SIGSYS).
    pub const SIADDR: u64 = 0x18;
    /// u64: SIGSYS's si_syscall (low 32 bits) and si_arch (high 32 bits).
    pub const SISYS: u64 = 0x20;
    /// u64: the ucontext of the trap, on the slot's alternate stack (a stub address).
    pub const UC: u64 = 0x28;
    /// u32: pause iterations the stub spins before it sleeps; with bit 31 set
    /// (`spin::SPIN_YIELD`), the low bits count `sched_yield` calls instead (co-located).
    pub const SPIN: u64 = 0x30;
    /// u32: operations queued for the stub to run before it returns to the guest (the stub
    /// zeroes it once it has run them).
    pub const NOPS: u64 = 0x34;
    /// u32: non-zero: after the operations, report back (trap again) instead of returning.
    pub const FLAGS: u64 = 0x38;
    /// u32: non-zero once the kernel thread handling this thread's trap left its CPU (1: it
    /// went to sleep, a blocking system call; 2: it was preempted): the stub stops spinning
    /// for RESUME and sleeps on the futex at once, leaving the host CPU to others. The
    /// kernel clears it as it resumes the thread.
    pub const NAP: u64 = 0x3c;
    /// u64: traps taken by this thread (its own cache line: the stub writes it every trap).
    pub const TRAPS: u64 = 0x40;
    /// u32 (slot 0): the kernel's host pid, written before the stub starts: a stub whose
    /// parent is another process by the time it has set its parent-death signal (the kernel
    /// died, and the stub went to init or a subreaper) exits.
    pub const KPID: u64 = 0x48;
    /// u32: non-zero when a kick arrived while the thread was in the fast system call path
    /// (`fast`) past its report: the path traps once more, as a kick, before it returns.
    pub const FAST_KICK: u64 = 0x4c;
    /// u64: this slot's own address (the fast path reaches the slot through the gs base).
    pub const FAST_SELF: u64 = 0x50;
    /// u64: the fast path's stack pointer (just below its frame).
    pub const FAST_SP: u64 = 0x58;
    /// u64: the xsave feature mask of the host's signal frames (0: the fast path is not set
    /// up for this thread; the kernel patches no call it makes).
    pub const FAST_XFEAT: u64 = 0x60;
    /// u32: non-zero once the kernel wrote the guest's FPU state in the fast path's frame
    /// (`StubThread::set_fpstate`, `reset_fpstate`: an rt_sigreturn, a signal handler's
    /// fresh state, ptrace, exec): the path's way back loads it (`xrstor`). Zero, the FPU
    /// registers are still the guest's (nothing the stub runs touches them) and the load is
    /// skipped. The path zeroes it as it reports.
    pub const FAST_FP_DIRTY: u64 = 0x68;
    /// The operation queue: MAX_OPS entries of OP_SIZE bytes: syscall number, six arguments,
    /// and the result the stub stores.
    pub const OPS: u64 = 0x80;
    pub const OP_SIZE: u64 = 64;
    pub const OP_RESULT: u64 = 56;
    pub const MAX_OPS: u32 = ((0x1000 - OPS) / OP_SIZE) as u32;
}

/// `msg::STATE` values.
pub mod state {
    /// A fresh slot whose thread has not trapped yet.
    pub const USER: u32 = 0;
    pub const TRAPPED: u32 = 1;
    pub const RESUME: u32 = 2;
}

/// Signals the stub handles: each is a trap into the kernel.
pub const TRAP_SIGNALS: [i32; 7] =
    [libc::SIGSYS, libc::SIGSEGV, libc::SIGBUS, libc::SIGFPE, libc::SIGILL, libc::SIGTRAP, libc::SIGUSR2];

/// The signal the kernel sends a stub thread to make it trap (preemption, signal delivery).
pub const KICK_SIGNAL: i32 = libc::SIGUSR2;

/// Signal mask of a stub thread outside its handler: everything blocked but the traps.
pub const fn block_mask() -> u64 {
    let mut m: u64 = !0;
    let mut i = 0;
    while i < TRAP_SIGNALS.len() {
        m &= !(1u64 << (TRAP_SIGNALS[i] - 1));
        i += 1;
    }
    m
}

/// `clone` flags for a new guest thread in a stub. CLONE_CHILD_CLEARTID points at the new
/// slot's HOST_TID word: the host zeroes it when the thread is gone, and only then may the
/// slot be reused.
pub const THREAD_CLONE_FLAGS: u64 = (libc::CLONE_VM
    | libc::CLONE_FS
    | libc::CLONE_FILES
    | libc::CLONE_SIGHAND
    | libc::CLONE_THREAD
    | libc::CLONE_SYSVSEM
    | libc::CLONE_CHILD_CLEARTID) as u64;

/// Address of a slot in the stub.
pub const fn slot_addr(slot: u32) -> u64 {
    SLOTS_BASE + slot as u64 * SLOT_SIZE
}

const _: () = {
    assert!(msg::NAP + 4 <= 0x40 && msg::TRAPS >= 0x40 && msg::KPID + 4 <= msg::FAST_KICK);
    assert!(msg::FAST_XFEAT + 8 <= msg::FAST_FP_DIRTY && msg::FAST_FP_DIRTY + 4 <= msg::OPS);
    assert!(FAST_UC_OFF >= ALT_OFF + 0x4000 && FAST_FP_OFF.is_multiple_of(64) && FAST_FP_OFF >= FAST_UC_OFF + 304);
    assert!(FAST_FP_OFF + FAST_FP_ROOM + 0x4000 <= SLOT_SIZE);
    assert!(SLOTS_BASE + SLOTS_SIZE <= STUB_END);
    assert!(SLOTS_BASE.is_multiple_of(SLOT_SIZE));
    assert!(STUB_END < TASK_TOP - (17 << 30));
    assert!(msg::MAX_OPS >= 32);
};
