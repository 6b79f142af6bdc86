//! Virtual CPUs: one host thread each, per-CPU data, idle sleep and inter-processor interrupts.
//!
//! A vCPU is a host thread started by [`start_cpu`]. It finds its own per-CPU data through
//! [`curcpu`], a host thread-local read in a function that is never inlined: kernel threads move
//! between host threads when they are switched, so the compiler must never keep a thread-local
//! address across a call that may switch (a non-inlined accessor recomputes it every time).
//!
//! IPIs are SIGUSR1 sent with tgkill to the vCPU thread after setting bits in its
//! `ipi_pending` word. The handler (in `trap`) counts the interrupt and acts only on
//! [`IPI_STOP`] (park in `stopsig`) and [`IPI_NMI`] (enter the debugger now); every other bit
//! is taken by the kernel at a safe point with [`take_ipis`]. The signal's real job is to
//! interrupt a blocking host call (the idle futex, later the stub hand-off) so the CPU looks.

use std::cell::Cell;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use crossbeam_utils::CachePadded;

use crate::MAXCPU;
use crate::futex;

/// "Not a CPU": the main thread and io threads.
pub const NOCPU: u32 = u32::MAX;

/// Reschedule: the run queue changed.
pub const IPI_RESCHED: u32 = 1 << 0;
/// Run the queued cross-CPU calls.
pub const IPI_CALL: u32 = 1 << 1;
/// Enter the debugger at the next safe point (a break-in).
pub const IPI_DDB: u32 = 1 << 2;
/// A thread running in user mode on this CPU must come back to the kernel (signal, kill).
pub const IPI_KICK: u32 = 1 << 3;
/// The kernel wants to shut down (host SIGTERM).
pub const IPI_SHUTDOWN: u32 = 1 << 4;
/// Park in `stopsig` until the debugger releases the CPUs. Handled in the signal handler.
pub const IPI_STOP: u32 = 1 << 8;
/// Enter the debugger from the signal handler, wherever the CPU is (a stuck CPU's break-in).
pub const IPI_NMI: u32 = 1 << 9;
/// Bits the signal handler acts on itself.
pub const IPI_HANDLER_BITS: u32 = IPI_STOP | IPI_NMI;

const IDLE_AWAKE: u32 = 0;
const IDLE_SLEEPING: u32 = 1;
/// Idle and polling its run queue and IPIs ([`idle_poll_begin`]): it will see new work
/// without a host wake-up.
const IDLE_POLLING: u32 = 2;

/// Platform per-CPU state. The kernel's exported per-CPU record lives in the kernel; this is
/// what the host mechanisms need.
///
/// Two groups of fields, each on cache lines of its own (and so each CPU's record): what
/// other CPUs read or write (its idle word, IPIs, the stop protocol), and what only this
/// CPU's thread writes, on every spinlock it takes (the held-lock list). A CPU looking at
/// another's idle word (every hand-over's `spin_pays`) then does not take from it the line
/// it writes on each lock.
#[derive(Debug)]
#[repr(C)]
pub struct PerCpu {
    pub cpuid: u32,
    pub online: AtomicBool,
    /// Host thread id of the vCPU thread.
    pub host_tid: AtomicU32,
    /// IPI bits not yet taken.
    pub ipi_pending: AtomicU32,
    /// Idle futex word: IDLE_SLEEPING while the CPU sleeps in `cpu_idle`, IDLE_POLLING while
    /// it polls before that.
    idle_word: AtomicU32,
    /// Stop protocol (see `stop`): the generation this CPU was asked to stop in, and whether it
    /// is parked.
    pub(crate) stop_gen: AtomicU32,
    pub stopped: AtomicBool,
    /// What follows starts a cache line (pair) of its own.
    _own: CachePadded<()>,
    /// Spinlocks held by the thread on this CPU (a thread holding one must not switch).
    pub spin_held: AtomicU32,
    /// Addresses of the first [`crate::sync::MAX_HELD_LOCKS`] of them, for `show locks`.
    pub(crate) held_locks: [AtomicU64; crate::sync::MAX_HELD_LOCKS],
    /// Fatal-trap nesting depth on this CPU.
    pub trap_depth: AtomicU32,
    /// Signals (IPIs, traps) taken.
    pub intrs: AtomicU64,
    /// Registers of the last trap or stop on this CPU (`crate::trap::TrapFrame` order).
    pub(crate) tf: [AtomicU64; crate::trap::TF_NREGS],
    pub(crate) tf_valid: AtomicBool,
}

impl PerCpu {
    const fn new(cpuid: u32) -> PerCpu {
        PerCpu {
            cpuid,
            online: AtomicBool::new(false),
            host_tid: AtomicU32::new(0),
            ipi_pending: AtomicU32::new(0),
            idle_word: AtomicU32::new(IDLE_AWAKE),
            spin_held: AtomicU32::new(0),
            held_locks: [const { AtomicU64::new(0) }; crate::sync::MAX_HELD_LOCKS],
            trap_depth: AtomicU32::new(0),
            intrs: AtomicU64::new(0),
            stop_gen: AtomicU32::new(0),
            stopped: AtomicBool::new(false),
            _own: CachePadded::new(()),
            tf: [const { AtomicU64::new(0) }; crate::trap::TF_NREGS],
            tf_valid: AtomicBool::new(false),
        }
    }

    /// Whether this CPU idles now: it sleeps in `cpu_idle`, or polls before that (a poller
    /// gives its host CPU up as soon as someone else wants it, so it counts as idle).
    pub fn is_idle(&self) -> bool {
        self.idle_word.load(Ordering::SeqCst) != IDLE_AWAKE
    }

    /// The registers of its last trap or stop, if any were saved.
    pub fn trapframe(&self) -> Option<crate::trap::TrapFrame> {
        if !self.tf_valid.load(Ordering::Acquire) {
            return None;
        }
        let mut regs = [0u64; crate::trap::TF_NREGS];
        for (r, slot) in regs.iter_mut().zip(self.tf.iter()) {
            *r = slot.load(Ordering::Relaxed);
        }
        Some(crate::trap::TrapFrame { regs })
    }

    /// Record registers for the debugger and dumps.
    pub fn save_trapframe(&self, tf: &crate::trap::TrapFrame) {
        for (slot, r) in self.tf.iter().zip(tf.regs.iter()) {
            slot.store(*r, Ordering::Relaxed);
        }
        self.tf_valid.store(true, Ordering::Release);
    }

    pub fn clear_trapframe(&self) {
        self.tf_valid.store(false, Ordering::Release);
    }
}

/// Slots 0..MAXCPU are CPUs; slot MAXCPU is shared by every thread that is not a CPU.
static PERCPU: [PerCpu; MAXCPU + 1] = {
    let mut i = 0;
    let mut arr = [const { PerCpu::new(NOCPU) }; MAXCPU + 1];
    while i < MAXCPU {
        arr[i] = PerCpu::new(i as u32);
        i += 1;
    }
    arr
};

static NCPUS: AtomicU32 = AtomicU32::new(0);

thread_local! {
    static CPUID: Cell<u32> = const { Cell::new(NOCPU) };
}

/// The CPU the caller runs on, or [`NOCPU`]. Never inlined: see the module doc.
#[inline(never)]
pub fn curcpu() -> u32 {
    CPUID.with(Cell::get)
}

/// Per-CPU data of a CPU (`NOCPU` or an out-of-range id gives the shared non-CPU slot).
pub fn pcpu(cpu: u32) -> &'static PerCpu {
    PERCPU.get(cpu as usize).filter(|_| (cpu as usize) < MAXCPU).unwrap_or(&PERCPU[MAXCPU])
}

/// Per-CPU data of the calling CPU (the shared slot off CPU).
pub fn this_pcpu() -> &'static PerCpu {
    pcpu(curcpu())
}

/// Number of CPUs configured (`-n`).
pub fn ncpus() -> u32 {
    NCPUS.load(Ordering::Relaxed)
}

/// Set the CPU count before starting them.
pub fn set_ncpus(n: u32) {
    NCPUS.store(n.min(MAXCPU as u32), Ordering::Relaxed);
}

/// Mask of online CPUs.
pub fn online_mask() -> u64 {
    (0..ncpus()).filter(|&c| pcpu(c).online.load(Ordering::Acquire)).fold(0, |m, c| m | (1 << c))
}

/// The host thread id of the caller.
pub fn gettid() -> u32 {
    // SAFETY: gettid has no arguments and cannot fail.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) };
    tid as u32
}

/// Start vCPU `cpu` as a host thread named `cpuN` running `main(cpu)`.
pub fn start_cpu(cpu: u32, main: fn(u32) -> !) -> io::Result<()> {
    if cpu as usize >= MAXCPU {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "cpu id out of range"));
    }
    std::thread::Builder::new().name(format!("cpu{cpu}")).stack_size(256 * 1024).spawn(move || {
        bind_cpu(cpu);
        crate::trap::thread_init();
        main(cpu)
    })?;
    Ok(())
}

/// Make the calling host thread CPU `cpu`.
pub(crate) fn bind_cpu(cpu: u32) {
    CPUID.with(|c| c.set(cpu));
    let pc = pcpu(cpu);
    pc.host_tid.store(gettid(), Ordering::Relaxed);
    pc.online.store(true, Ordering::Release);
}

/// Spawn a host thread that is not a CPU (console reader, disk worker), with the signal set-up
/// every kernel host thread has.
pub fn spawn_host_thread<F: FnOnce() + Send + 'static>(name: &str, f: F) -> io::Result<()> {
    std::thread::Builder::new().name(name.to_string()).spawn(move || {
        crate::trap::thread_init();
        f()
    })?;
    Ok(())
}

/// Put the calling host thread in the host's idle scheduling class (SCHED_IDLE): it takes
/// only what the others leave of a CPU, and any other thread waking up takes the CPU from it
/// at once (a background loader at boot). Linux still gives an idle-class thread a small
/// share on a busy CPU (it is weighted, not starved). At nice 19 instead the loader kept the
/// CPU for its time slice when a boot thread woke: io threads, the stub pool and the control
/// socket waited up to 3 ms behind it (measured with `perf sched timehist`).
pub fn lower_own_priority() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sched_setscheduler reads the sched_param we pass by reference (a local that
    // outlives the call) and changes the policy of the calling thread only (pid 0).
    let r = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
    if r != 0 {
        // SAFETY: gettid takes no arguments; setpriority changes the nice value of one
        // thread of ours (PRIO_PROCESS with a tid), passing no memory.
        unsafe {
            let tid = libc::gettid();
            libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 19);
        }
    }
}

type Call = Box<dyn FnOnce() + Send + 'static>;

/// Calls waiting for each CPU's next safe point (slot MAXCPU is never drained).
static CALLS: [crate::sync::SpinLock<Vec<Call>>; MAXCPU + 1] =
    [const { crate::sync::SpinLock::new("cpu_calls", Vec::new()) }; MAXCPU + 1];

/// Run `f` on `cpu` at its next safe point (a cross-CPU call; io threads use it to complete
/// their requests, like an interrupt handler).
pub fn post_call(cpu: u32, f: impl FnOnce() + Send + 'static) {
    let c = (cpu as usize).min(MAXCPU - 1);
    CALLS[c].lock().push(Box::new(f));
    send_ipi(c as u32, IPI_CALL);
}

/// The calls posted to `cpu` (the kernel runs them at a safe point).
pub fn take_calls(cpu: u32) -> Vec<Call> {
    std::mem::take(&mut *CALLS[(cpu as usize).min(MAXCPU)].lock())
}

/// The host CPU's feature bits as AT_HWCAP reports them on x86-64 (CPUID leaf 1, EDX).
pub fn hwcap() -> u64 {
    let edx: u32;
    // SAFETY: cpuid reads processor identification only; rbx is saved around it because the
    // compiler may use it.
    unsafe {
        core::arch::asm!(
            "mov {save}, rbx",
            "cpuid",
            "mov rbx, {save}",
            save = out(reg) _,
            inout("eax") 1u32 => _,
            inout("ecx") 0u32 => _,
            out("edx") edx,
            options(nostack, preserves_flags)
        );
    }
    u64::from(edx)
}

/// Take (and clear) the IPI bits the kernel handles at safe points.
pub fn take_ipis(cpu: u32) -> u32 {
    let pc = pcpu(cpu);
    if pc.ipi_pending.load(Ordering::Relaxed) & !IPI_HANDLER_BITS == 0 {
        return 0;
    }
    pc.ipi_pending.fetch_and(IPI_HANDLER_BITS, Ordering::AcqRel) & !IPI_HANDLER_BITS
}

/// Whether any safe-point IPI bits are pending on `cpu`.
pub fn ipis_pending(cpu: u32) -> bool {
    pcpu(cpu).ipi_pending.load(Ordering::Acquire) & !IPI_HANDLER_BITS != 0
}

/// Send an IPI: set `bits` on `cpu` and interrupt it with SIGUSR1 (a sleeping idle CPU is also
/// woken through its futex).
pub fn send_ipi(cpu: u32, bits: u32) {
    let pc = pcpu(cpu);
    if pc.cpuid == NOCPU || !pc.online.load(Ordering::Acquire) {
        return;
    }
    pc.ipi_pending.fetch_or(bits, Ordering::SeqCst);
    if bits & IPI_HANDLER_BITS == 0 && wake_idle(cpu) {
        return; // it was asleep in cpu_idle: the futex wake is enough
    }
    signal_cpu(cpu);
}

/// tgkill SIGUSR1 to a vCPU thread.
pub(crate) fn signal_cpu(cpu: u32) {
    let tid = pcpu(cpu).host_tid.load(Ordering::Relaxed);
    if tid == 0 {
        return;
    }
    // SAFETY: tgkill with our own tgid and a tid of one of our threads; no memory is passed.
    unsafe {
        libc::syscall(libc::SYS_tgkill, libc::getpid(), tid as libc::pid_t, libc::SIGUSR1);
    }
}

/// Host wake-ups of idle CPUs asleep in `cpu_idle` (`-e sched.stats=1`).
pub static IDLE_WAKES: AtomicU64 = AtomicU64::new(0);

/// If `cpu` idles, make sure it looks at its run queue and IPIs: wake it if it sleeps in
/// `cpu_idle` (a polling CPU looks by itself). Returns whether it idled.
pub fn wake_idle(cpu: u32) -> bool {
    let pc = pcpu(cpu);
    // A running CPU looks at the run queues before it sleeps: leave its word (and cache line)
    // alone. Wakers ask every CPU in turn, on the wake-up path.
    match pc.idle_word.load(Ordering::SeqCst) {
        IDLE_AWAKE => false,
        // It looks before it sleeps: a waker published its work before this load (a SeqCst
        // fence), and `idle_prepare` fences before the poller's last look.
        IDLE_POLLING => true,
        _ => {
            if pc.idle_word.compare_exchange(IDLE_SLEEPING, IDLE_AWAKE, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                crate::stub::spin::count(&IDLE_WAKES);
                futex::wake(&pc.idle_word, 1);
                true
            } else {
                false
            }
        }
    }
}

/// Wake every idle CPU (a nearer timer deadline, new work anyone may take).
pub fn wake_idle_cpus() {
    for c in 0..ncpus() {
        wake_idle(c);
    }
}

/// The idle sleep, in two steps so no wake-up is lost: [`idle_prepare`] announces the CPU is
/// going to sleep, the kernel then checks its run queue and pending IPIs, and only if there is
/// nothing calls [`idle_sleep`]. A waker that queues work after `idle_prepare` finds the word
/// set and wakes the futex.
pub fn idle_prepare(cpu: u32) {
    pcpu(cpu).idle_word.store(IDLE_SLEEPING, Ordering::SeqCst);
    std::sync::atomic::fence(Ordering::SeqCst);
}

/// Sleep until woken, interrupted by an IPI, or `timeout` passes.
pub fn idle_sleep(cpu: u32, timeout: Option<Duration>) -> futex::WaitResult {
    let pc = pcpu(cpu);
    let r = futex::wait(&pc.idle_word, IDLE_SLEEPING, timeout);
    pc.idle_word.store(IDLE_AWAKE, Ordering::SeqCst);
    r
}

/// How often the host's count of runnable threads is read (by a CPU about to poll or spin).
const HOST_LOAD_SAMPLE_NS: u64 = 2_000_000;

/// Whether the host has a CPU to spare for a thread that would only poll or spin (an idle
/// vCPU, see the kernel's `sched_wake`; a hand-over, `stub::spin`): the host threads runnable now, every process's (the fourth
/// field of /proc/loadavg, the reader included; read at most every
/// [`HOST_LOAD_SAMPLE_NS`], the lower of the last two reads), are no more than `host_cpus`. Unless vk runs at a real-time
/// priority (`chrt`): then other host work cannot take a CPU from it, and only vk's own
/// threads count (the caller's business). Unknown (no /proc): no.
pub fn host_cpu_spare(host_cpus: u32) -> bool {
    use std::os::unix::fs::FileExt;
    static LOADAVG: std::sync::OnceLock<Option<std::fs::File>> = std::sync::OnceLock::new();
    static REALTIME: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    static SAMPLED_NS: AtomicU64 = AtomicU64::new(0);
    static RUNNABLE: AtomicU32 = AtomicU32::new(u32::MAX);
    static LAST_SAMPLE: AtomicU32 = AtomicU32::new(u32::MAX);
    let realtime = *REALTIME.get_or_init(|| {
        // SAFETY: sched_getscheduler(0) reads the calling thread's policy; no memory is passed.
        let policy = unsafe { libc::sched_getscheduler(0) };
        policy == libc::SCHED_FIFO || policy == libc::SCHED_RR
    });
    if realtime {
        return true;
    }
    let now = crate::time::uptime_ns();
    let last = SAMPLED_NS.load(Ordering::Relaxed);
    if (last == 0 || now.saturating_sub(last) >= HOST_LOAD_SAMPLE_NS)
        && SAMPLED_NS.compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed).is_ok()
    {
        let mut buf = [0u8; 128];
        let n = LOADAVG
            .get_or_init(|| std::fs::File::open("/proc/loadavg").ok())
            .as_ref()
            .and_then(|f| f.read_at(&mut buf, 0).ok())
            .unwrap_or(0);
        let now_runnable = parse_loadavg_runnable(&buf[..n]).unwrap_or(u32::MAX);
        // The lower of the last two samples: a load seen twice in a row, not a blip (a
        // kworker or timer thread runnable at the instant of one read made every hand-over
        // of the next 2 ms sleep — a futex wake-up each, ~15 µs here: a null system call
        // loop's stub woke 500–5000 times in 54k calls, 2.8 → 3.8 µs a call).
        RUNNABLE.store(now_runnable.min(LAST_SAMPLE.swap(now_runnable, Ordering::Relaxed)), Ordering::Relaxed);
    }
    RUNNABLE.load(Ordering::Relaxed) <= host_cpus
}

/// The runnable count of a /proc/loadavg line ("0.07 0.83 1.22 3/456 12345": 3).
fn parse_loadavg_runnable(line: &[u8]) -> Option<u32> {
    let s = std::str::from_utf8(line).ok()?;
    s.split_whitespace().nth(3)?.split('/').next()?.parse().ok()
}

/// The CPU polls for work before it sleeps ([`idle_prepare`] follows, or [`idle_cancel`]).
/// Wakers then count it as idle and leave it to look by itself.
pub fn idle_poll_begin(cpu: u32) {
    pcpu(cpu).idle_word.store(IDLE_POLLING, Ordering::SeqCst);
}

/// Abandon an `idle_prepare` or end a poll (work was found).
pub fn idle_cancel(cpu: u32) {
    pcpu(cpu).idle_word.store(IDLE_AWAKE, Ordering::SeqCst);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_that_are_not_cpus_get_the_shared_slot() {
        assert_eq!(curcpu(), NOCPU);
        assert_eq!(this_pcpu().cpuid, NOCPU);
        assert_eq!(pcpu(3).cpuid, 3);
        assert_eq!(pcpu(999).cpuid, NOCPU);
    }

    #[test]
    fn take_ipis_leaves_handler_bits() {
        let pc = pcpu(7);
        pc.ipi_pending.store(IPI_RESCHED | IPI_STOP | IPI_DDB, Ordering::SeqCst);
        assert_eq!(take_ipis(7), IPI_RESCHED | IPI_DDB);
        assert_eq!(pc.ipi_pending.load(Ordering::SeqCst), IPI_STOP);
        assert_eq!(take_ipis(7), 0);
        pc.ipi_pending.store(0, Ordering::SeqCst);
    }

    #[test]
    fn the_runnable_count_comes_from_the_fourth_field() {
        assert_eq!(parse_loadavg_runnable(b"0.07 0.83 1.22 3/456 12345\n"), Some(3));
        assert_eq!(parse_loadavg_runnable(b"0.07 0.83"), None);
        assert_eq!(parse_loadavg_runnable(b""), None);
    }

    #[test]
    fn a_polling_cpu_is_idle_and_needs_no_futex_wake() {
        let pc = pcpu(6);
        assert!(!pc.is_idle());
        assert!(!wake_idle(6));
        idle_poll_begin(6);
        assert!(pc.is_idle());
        assert!(wake_idle(6));
        assert!(pc.is_idle(), "the poller ends its poll itself");
        idle_prepare(6);
        assert!(wake_idle(6));
        assert!(!pc.is_idle(), "a sleeper is woken");
        idle_cancel(6);
    }
}
