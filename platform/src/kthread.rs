//! Kernel thread contexts: stacks with guard pages, the `Pcb`, and the assembly `cpu_switch`.
//!
//! A kernel thread is a stack and a saved stack pointer. [`switch`] pushes the callee-saved
//! registers on the current stack, stores the stack pointer in the old thread's [`Pcb`], loads
//! the new one's and pops its registers; the `ret` lands where the new thread last called
//! `switch` (or in the start trampoline for a new thread). This is the whole of FreeBSD's
//! `cpu_switch` for a machine whose privileged state lives in the host.
//!
//! ```text
//!  saved rsp ─► +0  r15        the switch frame (SWITCHFRAME_*), what `trace <tid>` unwinds
//!               +8  r14
//!               +16 r13        (new thread: start argument)
//!               +24 r12        (new thread: entry function)
//!               +32 rbx
//!               +40 rbp
//!               +48 return address (new thread: vk_kthread_trampoline)
//!               +56 the caller's frame
//! ```
//!
//! Hand-off between CPUs: `Pcb::on_cpu` is 1 while a context is live on some CPU, including
//! the moment it is being switched away from. A CPU switching *to* a thread first waits for the
//! word to drop to 0 and claims it (0 → 1); `cpu_switch` clears the old thread's word only after
//! it has left that thread's stack. So no two CPUs ever run on one stack, whatever the
//! scheduler does, and a context is never resumed before it has been fully saved.

use std::any::Any;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::MAXCPU;
use crate::sync::SpinLock;

/// Offset of the saved stack pointer in [`Pcb`].
pub const PCB_RSP_OFFSET: u32 = 0;
/// Offset of the on-CPU word in [`Pcb`].
pub const PCB_ON_CPU_OFFSET: u32 = 8;
/// Offset of the saved rbp from the saved stack pointer.
pub const SWITCHFRAME_RBP: u32 = 40;
/// Offset of the return address from the saved stack pointer.
pub const SWITCHFRAME_RIP: u32 = 48;
/// Size of the switch frame.
pub const SWITCHFRAME_SIZE: u32 = 56;

/// The registers a switch frame holds, as a trap frame (for dumps: a sleeping thread's
/// context). `frame` is the saved stack pointer, `words` the frame's seven words.
pub fn switchframe_regs(frame: u64, words: [u64; 7]) -> crate::trap::TrapFrame {
    use crate::trap::reg;
    let mut regs = [0u64; crate::trap::TF_NREGS];
    for (r, w) in [reg::R15, reg::R14, reg::R13, reg::R12, reg::RBX, reg::RBP, reg::RIP].into_iter().zip(words) {
        regs[r] = w;
    }
    regs[reg::RSP] = frame + u64::from(SWITCHFRAME_SIZE);
    crate::trap::TrapFrame { regs }
}

/// Default kernel stack size.
pub const KSTACK_SIZE: usize = 128 * 1024;
/// Guard below each kernel stack.
pub const KSTACK_GUARD: usize = 16 * 1024;

/// The process control block: what `cpu_switch` saves.
#[repr(C)]
#[derive(Debug)]
pub struct Pcb {
    /// Stack pointer saved by `cpu_switch` (meaningful while `on_cpu` is 0).
    pub rsp: AtomicU64,
    /// 1 while the context is live on a CPU.
    pub on_cpu: AtomicU32,
    _pad: AtomicU32,
}

const _: () = {
    assert!(core::mem::offset_of!(Pcb, rsp) == PCB_RSP_OFFSET as usize);
    assert!(core::mem::offset_of!(Pcb, on_cpu) == PCB_ON_CPU_OFFSET as usize);
};

impl Pcb {
    const fn new(rsp: u64, on_cpu: u32) -> Pcb {
        Pcb { rsp: AtomicU64::new(rsp), on_cpu: AtomicU32::new(on_cpu), _pad: AtomicU32::new(0) }
    }
}

core::arch::global_asm!(
    ".text",
    ".p2align 4",
    ".globl vk_cpu_switch",
    ".type vk_cpu_switch,@function",
    // vk_cpu_switch(from: *const Pcb [rdi], to: *const Pcb [rsi])
    "vk_cpu_switch:",
    ".cfi_startproc",
    "push rbp",
    ".cfi_adjust_cfa_offset 8",
    ".cfi_rel_offset rbp, 0",
    "push rbx",
    ".cfi_adjust_cfa_offset 8",
    ".cfi_rel_offset rbx, 0",
    "push r12",
    ".cfi_adjust_cfa_offset 8",
    ".cfi_rel_offset r12, 0",
    "push r13",
    ".cfi_adjust_cfa_offset 8",
    ".cfi_rel_offset r13, 0",
    "push r14",
    ".cfi_adjust_cfa_offset 8",
    ".cfi_rel_offset r14, 0",
    "push r15",
    ".cfi_adjust_cfa_offset 8",
    ".cfi_rel_offset r15, 0",
    "mov [rdi], rsp",
    "mov rsp, [rsi]",
    // Off the old stack: the old context is saved, another CPU may take it now.
    "mov dword ptr [rdi + 8], 0",
    "pop r15",
    ".cfi_adjust_cfa_offset -8",
    "pop r14",
    ".cfi_adjust_cfa_offset -8",
    "pop r13",
    ".cfi_adjust_cfa_offset -8",
    "pop r12",
    ".cfi_adjust_cfa_offset -8",
    "pop rbx",
    ".cfi_adjust_cfa_offset -8",
    "pop rbp",
    ".cfi_adjust_cfa_offset -8",
    "ret",
    ".cfi_endproc",
    ".size vk_cpu_switch, .-vk_cpu_switch",
    "",
    ".p2align 4",
    ".globl vk_kthread_trampoline",
    ".type vk_kthread_trampoline,@function",
    // First instruction of every kernel thread: r12 = entry, r13 = argument. The return address
    // is undefined so unwinders stop here.
    "vk_kthread_trampoline:",
    ".cfi_startproc",
    ".cfi_undefined rip",
    "xor ebp, ebp",
    "mov rdi, r13",
    "call r12",
    "ud2",
    ".cfi_endproc",
    ".size vk_kthread_trampoline, .-vk_kthread_trampoline",
);

unsafe extern "C" {
    fn vk_cpu_switch(from: *const Pcb, to: *const Pcb);
    fn vk_kthread_trampoline();
}

/// A kernel stack: `size` usable bytes above a PROT_NONE guard.
#[derive(Debug)]
pub struct KStack {
    base: usize,
    len: usize,
}

/// Stacks of ended threads, kept for the next ones (a fork's new thread, a thread's exit):
/// a new stack otherwise costs the host an mmap, an mprotect and faults on its first pages,
/// and its end an munmap with a TLB shoot-down on every vCPU's CPU.
static SPARE_STACKS: std::sync::Mutex<Vec<KStack>> = std::sync::Mutex::new(Vec::new());
/// How many [`SPARE_STACKS`] are kept at most (the pages they touched stay resident).
const SPARE_STACKS_MAX: usize = 16;

impl KStack {
    pub fn new(size: usize) -> io::Result<KStack> {
        let size = size.div_ceil(crate::PAGE_SIZE) * crate::PAGE_SIZE;
        let len = size + KSTACK_GUARD;
        if let Ok(mut spare) = SPARE_STACKS.lock()
            && let Some(i) = spare.iter().rposition(|s| s.len == len)
        {
            return Ok(spare.swap_remove(i));
        }
        // SAFETY: a fresh anonymous private mapping at an address of the host's choosing; it
        // aliases nothing.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the guard is the first KSTACK_GUARD bytes of the mapping we just made.
        if unsafe { libc::mprotect(p, KSTACK_GUARD, libc::PROT_NONE) } != 0 {
            let e = io::Error::last_os_error();
            // SAFETY: unmapping the mapping we made, nothing refers to it yet.
            unsafe { libc::munmap(p, len) };
            return Err(e);
        }
        Ok(KStack { base: p as usize, len })
    }

    /// Lowest usable address (just above the guard).
    pub fn lo(&self) -> u64 {
        (self.base + KSTACK_GUARD) as u64
    }

    /// One past the highest address.
    pub fn hi(&self) -> u64 {
        (self.base + self.len) as u64
    }

    /// The guard page range `[lo, hi)`.
    pub fn guard(&self) -> (u64, u64) {
        (self.base as u64, self.lo())
    }

    pub fn size(&self) -> usize {
        self.len - KSTACK_GUARD
    }

    fn contains(&self, addr: u64) -> bool {
        addr >= self.lo() && addr < self.hi()
    }
}

impl Drop for KStack {
    fn drop(&mut self) {
        // Kept for the next thread while there is room (its mapping moves to the spare one).
        if let Ok(mut spare) = SPARE_STACKS.try_lock()
            && spare.len() < SPARE_STACKS_MAX
        {
            spare.push(KStack { base: std::mem::take(&mut self.base), len: self.len });
            return;
        }
        // SAFETY: the mapping is ours; KThread never drops a stack that is live on a CPU.
        unsafe { libc::munmap(self.base as *mut libc::c_void, self.len) };
    }
}

type StartFn = Box<dyn FnOnce() + Send + 'static>;

/// A kernel thread's machine context: its stack and its Pcb.
#[derive(Debug)]
pub struct KThread {
    pcb: Pcb,
    stack: Option<KStack>,
}

extern "C" fn kthread_entry(arg: *mut StartFn) -> ! {
    finish_switch();
    // SAFETY: `arg` is the Box leaked by `KThread::new` for this thread; the trampoline passes
    // it exactly once, when the thread first runs.
    let f = unsafe { Box::from_raw(arg) };
    (*f)();
    panic!("kernel thread returned from its start function");
}

impl KThread {
    /// A new thread that will run `f` on its own stack when first switched to. `f` must not
    /// return (a thread ends by switching away for good); if it does, the kernel panics.
    pub fn new(stack_size: usize, f: impl FnOnce() + Send + 'static) -> io::Result<KThread> {
        let stack = KStack::new(stack_size)?;
        let top = stack.hi() & !15;
        let frame = top - u64::from(SWITCHFRAME_SIZE);
        let arg: *mut StartFn = Box::into_raw(Box::new(Box::new(f) as StartFn));
        let entry = kthread_entry as extern "C" fn(*mut StartFn) -> ! as usize as u64;
        let tramp = vk_kthread_trampoline as unsafe extern "C" fn() as usize as u64;
        let words: [u64; 7] = [0, 0, arg as u64, entry, 0, 0, tramp];
        for (i, w) in words.iter().enumerate() {
            // SAFETY: frame..top lies inside the stack mapping we own and nobody runs on it yet;
            // the address is 8-aligned.
            unsafe { ((frame + 8 * i as u64) as *mut u64).write(*w) };
        }
        Ok(KThread { pcb: Pcb::new(frame, 0), stack: Some(stack) })
    }

    /// The context of code already running on a host thread's own stack (a vCPU's boot
    /// context). It can be switched away from but never switched back to.
    fn boot() -> KThread {
        KThread { pcb: Pcb::new(0, 1), stack: None }
    }

    pub fn pcb(&self) -> &Pcb {
        &self.pcb
    }

    /// Address of the Pcb, for the exported thread record.
    pub fn pcb_addr(&self) -> u64 {
        &self.pcb as *const Pcb as u64
    }

    /// Stack bounds `[lo, hi)`.
    pub fn stack_bounds(&self) -> Option<(u64, u64)> {
        self.stack.as_ref().map(|s| (s.lo(), s.hi()))
    }

    /// The guard below the stack.
    pub fn guard_bounds(&self) -> Option<(u64, u64)> {
        self.stack.as_ref().map(KStack::guard)
    }

    pub fn is_on_cpu(&self) -> bool {
        self.pcb.on_cpu.load(Ordering::Acquire) != 0
    }
}

impl Drop for KThread {
    fn drop(&mut self) {
        if self.pcb.on_cpu.load(Ordering::Acquire) != 0 {
            // Still live (or dropped from its own stack): keep the stack mapped rather than
            // pull it from under a CPU.
            if let Some(s) = self.stack.take() {
                log::error!("kthread: dropping a live context; leaking its stack at {:#x}", s.lo());
                std::mem::forget(s);
            }
        }
    }
}

/// The current stack pointer.
#[inline(always)]
pub fn current_sp() -> u64 {
    let sp: u64;
    // SAFETY: reads rsp into a register; no memory access, no stack change.
    unsafe { core::arch::asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack, preserves_flags)) };
    sp
}

fn claim(to: &KThread) {
    let mut spins = 0u64;
    while to.pcb.on_cpu.compare_exchange_weak(0, 1, Ordering::Acquire, Ordering::Relaxed).is_err() {
        std::hint::spin_loop();
        spins += 1;
        if spins == 1 << 30 {
            panic!("cpu_switch: context at {:#x} never came off its CPU", to.pcb_addr());
        }
    }
}

/// Something that has a kernel thread context (the kernel's thread type).
pub trait HasKThread: Send + Sync + 'static {
    fn kthread(&self) -> &KThread;
}

type Owner = Arc<dyn Any + Send + Sync>;

/// Per CPU: the owners of the two contexts of the switch in progress. A switch moves its
/// `from` and `to` references here instead of keeping them in its own frame, and the thread
/// that runs next on the CPU drops them once it is off the old stack. So an exiting thread,
/// whose frame is abandoned forever, holds no reference, and its stack is freed by the next
/// thread's drop, after `cpu_switch` has left it.
static HANDOFF: [SpinLock<Option<(Owner, Owner)>>; MAXCPU + 1] = [const { SpinLock::new("handoff", None) }; MAXCPU + 1];

fn handoff_slot() -> &'static SpinLock<Option<(Owner, Owner)>> {
    let c = crate::cpu::curcpu() as usize;
    &HANDOFF[c.min(MAXCPU)]
}

/// Drop the references of the switch that brought us here.
fn finish_switch() {
    let done = handoff_slot().lock().take();
    drop(done);
}

/// Switch from the running thread `from` to `to`; returns when something switches back to
/// `from`. Panics if the caller is not running on `from`'s stack. If `from` never runs again
/// (it exited), its last reference may be the one passed here; it is dropped after the switch.
pub fn switch<T: HasKThread>(from: Arc<T>, to: Arc<T>) {
    let sp = current_sp();
    match &from.kthread().stack {
        Some(s) if s.contains(sp) => {}
        _ => panic!("cpu_switch: not running on the stack of the thread switched from (rsp {sp:#x})"),
    }
    if Arc::ptr_eq(&from, &to) {
        return;
    }
    claim(to.kthread());
    let from_pcb: *const Pcb = &from.kthread().pcb;
    let to_pcb: *const Pcb = &to.kthread().pcb;
    let previous = handoff_slot().lock().replace((from as Owner, to as Owner));
    debug_assert!(previous.is_none(), "a switch's references were never dropped");
    drop(previous);
    // SAFETY: (1) we run on `from`'s stack (checked), so saving our registers into its Pcb
    // describes this very frame; (2) `to` was claimed (on_cpu 0 → 1), so its saved rsp points at
    // a complete switch frame on its own stack that no CPU is using; (3) both Pcbs stay alive
    // for the whole call: their owners sit in this CPU's handoff slot, which only the thread
    // that runs after the switch empties, once it is on its own stack.
    unsafe { vk_cpu_switch(from_pcb, to_pcb) };
    finish_switch();
}

/// Leave the host thread's own stack for `to`, for good (a vCPU entering its idle thread).
pub fn enter<T: HasKThread>(to: Arc<T>) -> ! {
    let boot = KThread::boot();
    claim(to.kthread());
    let to_pcb: *const Pcb = &to.kthread().pcb;
    // Keep `to` referenced through the switch like any other; `boot` is never resumed.
    let previous = handoff_slot().lock().replace((Arc::new(()) as Owner, to as Owner));
    drop(previous);
    // SAFETY: as in `switch` for `to`; `boot` describes this host stack, which is never resumed
    // (nothing else can name `boot`), so its saved rsp is never used.
    unsafe { vk_cpu_switch(&boot.pcb, to_pcb) };
    unreachable!("the boot context of a CPU was resumed");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::{Mutex, OnceLock};

    struct T(KThread);
    impl HasKThread for T {
        fn kthread(&self) -> &KThread {
            &self.0
        }
    }

    static A: OnceLock<Arc<T>> = OnceLock::new();
    static B: OnceLock<Arc<T>> = OnceLock::new();
    static LOG: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    static DONE: AtomicUsize = AtomicUsize::new(0);

    fn a() -> Arc<T> {
        Arc::clone(A.get().unwrap())
    }
    fn b() -> Arc<T> {
        Arc::clone(B.get().unwrap())
    }

    #[test]
    fn two_threads_switch_back_and_forth_and_references_are_dropped() {
        let ta = KThread::new(KSTACK_SIZE, || {
            LOG.lock().unwrap().push("a1");
            switch(a(), b());
            LOG.lock().unwrap().push("a2");
            switch(a(), b());
            DONE.store(1, Ordering::SeqCst);
            loop {
                std::thread::park();
            }
        })
        .unwrap();
        let tb = KThread::new(KSTACK_SIZE, || {
            LOG.lock().unwrap().push("b1");
            switch(b(), a());
            LOG.lock().unwrap().push("b2");
            switch(b(), a());
            unreachable!();
        })
        .unwrap();
        let (lo, hi) = ta.stack_bounds().unwrap();
        assert!(hi - lo >= KSTACK_SIZE as u64);
        let _ = A.set(Arc::new(T(ta)));
        let _ = B.set(Arc::new(T(tb)));
        std::thread::spawn(|| enter(a()));
        while DONE.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        assert_eq!(*LOG.lock().unwrap(), vec!["a1", "b1", "a2", "b2"]);
        assert!(A.get().unwrap().0.is_on_cpu());
        assert!(!B.get().unwrap().0.is_on_cpu());
        // Only the statics hold references now: every switch's handoff was dropped.
        assert_eq!(Arc::strong_count(B.get().unwrap()), 1);
        assert_eq!(Arc::strong_count(A.get().unwrap()), 1);
    }

    #[test]
    #[should_panic(expected = "not running on the stack")]
    fn switching_from_a_thread_we_are_not_on_panics() {
        let x = Arc::new(T(KThread::new(KSTACK_SIZE, || {}).unwrap()));
        let y = Arc::new(T(KThread::new(KSTACK_SIZE, || {}).unwrap()));
        switch(x, y);
    }
}
