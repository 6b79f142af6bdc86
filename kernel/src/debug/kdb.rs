//! Entering the debugger (FreeBSD's `kdb`): fatal traps, panics and break-ins all end here.
//!
//! Every entry runs on the entering CPU's alternate signal stack:
//! * a fatal trap arrives as a host signal (platform `trap`) and calls [`trap_hook`];
//! * software entries — a panic, a break-in taken at a safe point, `debug.kdb.enter` — call
//!   [`kdb_enter`], which executes a breakpoint (int3) so the same path runs with the
//!   registers of the caller, and `continue` resumes right after it;
//! * a CPU that does not reach a safe point is broken into by an NMI-style IPI ([`nmi_hook`]).
//!
//! The entering CPU becomes the owner, stops the others (`CPUn stopping CPUs`), and runs the
//! command loop. Nothing here takes a kernel lock that interrupted code could hold: thread
//! and CPU state is read from the exported records through kvm-mem, as `vps` reads it.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use kvm_mem::abi::cpustate;
use platform::MAXCPU;
use platform::cpu::{self, NOCPU};
use platform::sync::SpinLock;
use platform::trap::{TrapFrame, reg, vector};

use crate::debug::export;
use crate::kern::pcpu::PCPU;
use crate::debug::target::KernelTarget;
use crate::kern::shutdown::{self, EXIT_DDB_EOF, EXIT_PANIC, Howto};
use crate::kprintf_nolock;

/// `OWNER` when nobody is in the debugger (NOCPU is a valid owner: the main thread).
const FREE: u32 = u32::MAX - 1;
static OWNER: AtomicU32 = AtomicU32::new(FREE);
static PANICKING: AtomicBool = AtomicBool::new(false);

/// Why software entered, per CPU (slot MAXCPU for threads that are not CPUs); 0 = no entry.
static WHY: [AtomicU8; MAXCPU + 1] = [const { AtomicU8::new(0) }; MAXCPU + 1];
const REASONS: [&str; 7] = ["", "break-in", "panic", "sysctl debug.kdb.enter", "watchdog", "vkctl break", "enter"];
/// The reason the watchdog's break-in gives (its entry starts with a `trace`).
const WATCHDOG: &str = "watchdog";

/// Exit status when the debugger cannot run at all.
const EXIT_NO_DEBUGGER: i32 = 4;

/// What the debugger needs, set up at boot.
struct Kdb {
    debugger: SpinLock<ddb::Debugger>,
    /// The kernel's symbols and unwind tables (the debugger's; `vkctl stacks` uses them too).
    image: Arc<ddb::KernelImage>,
    kvm: Arc<kvm_mem::Kvm>,
    mem: Arc<kvm_mem::ProcMem>,
    console: SpinLock<Option<ddb::console::StdConsole>>,
}

static KDB: OnceLock<Kdb> = OnceLock::new();

fn slot(c: u32) -> usize {
    (c as usize).min(MAXCPU)
}

/// Register the trap, NMI and panic hooks (before any CPU starts).
pub fn install_hooks() {
    platform::trap::set_trap_hook(trap_hook);
    platform::trap::set_nmi_hook(nmi_hook);
    std::panic::set_hook(Box::new(panic_hook));
}

/// Load the kernel's own symbols and build the debugger, on a host thread of its own so boot
/// does not wait for it (reading and demangling the image takes ~10 ms of CPU). The thread
/// starts its work [`LOAD_DELAY`] after boot, or at once when something needs the debugger
/// first ([`kdb`] wakes it): boot, and a short batch run (`-e init=…`) that never enters ddb,
/// do not pay for it — at boot the loader's CPU and memory traffic slowed the boot's own
/// threads by ~3–5 ms even in the host's idle class. Without symbols a trap still prints its
/// banner, but there is no `db>`.
pub fn init() {
    let load = || {
        // Boot's own threads (the vCPUs, io, the stub pool) first: the loader takes what they
        // leave of the host CPUs.
        platform::cpu::lower_own_priority();
        let _ = LOADER.set(std::thread::current());
        let start = std::time::Instant::now();
        while !WANTED.load(Ordering::Acquire) {
            let Some(left) = LOAD_DELAY.checked_sub(start.elapsed()) else { break };
            std::thread::park_timeout(left);
        }
        match build() {
            Ok(k) => {
                let _ = KDB.set(k);
            }
            Err(e) => crate::kprintf!("ddb: debugger unavailable: {e}\n"),
        }
        BUILT.store(true, Ordering::Release);
    };
    if let Err(e) = platform::cpu::spawn_host_thread("ddb-load", load) {
        crate::kprintf!("ddb: no thread to load the debugger ({e}); loading it now\n");
        WANTED.store(true, Ordering::Release);
        load();
    }
    crate::debug::watchdog::start();
}

/// How long after boot the loader starts on its own.
const LOAD_DELAY: Duration = Duration::from_secs(1);

/// Set when something needs the debugger: the loader starts at once.
static WANTED: AtomicBool = AtomicBool::new(false);

/// The loader's host thread, to wake it (it registers itself before it first waits: a
/// [`kdb`] before that is seen by its check of [`WANTED`]).
static LOADER: OnceLock<std::thread::Thread> = OnceLock::new();

/// Set when the loader is done, whether or not it built the debugger.
static BUILT: AtomicBool = AtomicBool::new(false);

/// How long an entry waits for the loader.
const LOAD_WAIT: Duration = Duration::from_secs(60);

/// The debugger, waking the loader and waiting for it if it is not done (an entry early in
/// boot).
fn kdb() -> Option<&'static Kdb> {
    if let Some(k) = KDB.get() {
        return Some(k);
    }
    if !WANTED.swap(true, Ordering::AcqRel)
        && let Some(t) = LOADER.get()
    {
        t.unpark();
    }
    let start = std::time::Instant::now();
    while !BUILT.load(Ordering::Acquire) && start.elapsed() < LOAD_WAIT {
        std::thread::sleep(Duration::from_millis(1));
    }
    KDB.get()
}

fn build() -> Result<Kdb, String> {
    let exe = std::path::Path::new("/proc/self/exe");
    let layout_addr = export::roots().layout;
    // One read of the image: the bias is where vk_layout is against its symbol's value.
    let image = ddb::KernelImage::load(exe, 0).map_err(|e| e.to_string())?;
    let value = image.raw_symbol("vk_layout").ok_or_else(|| format!("{}: no symbol vk_layout", exe.display()))?;
    let bias = layout_addr.wrapping_sub(value);
    crate::debug::dump::set_load_bias(bias);
    let image = image.with_bias(bias);
    let mem = Arc::new(kvm_mem::ProcMem::open_self().map_err(|e| e.to_string())?);
    let kvm = Arc::new(
        kvm_mem::Kvm::from_roots(Box::new(kvm_mem::ProcMem::open_self().map_err(|e| e.to_string())?), export::roots())
            .map_err(|e| e.to_string())?,
    );
    let image = Arc::new(image);
    let mut debugger = ddb::Debugger::new(Arc::clone(&image));
    crate::debug::commands::register(&mut debugger, &kvm);
    Ok(Kdb { debugger: SpinLock::new("ddb", debugger), image, kvm, mem, console: SpinLock::new("ddb_console", None) })
}

/// The kernel's symbols and unwind tables, once the debugger is built.
pub fn image() -> Option<Arc<ddb::KernelImage>> {
    kdb().map(|k| Arc::clone(&k.image))
}

/// Whether a CPU is in the debugger now.
pub fn active() -> bool {
    OWNER.load(Ordering::Acquire) != FREE
}

/// Enter the debugger from software, with the caller's registers. Returns after `continue`.
#[inline(never)]
pub fn kdb_enter(why: &'static str) {
    let code = REASONS.iter().position(|r| *r == why).unwrap_or(REASONS.len() - 1);
    WHY[slot(cpu::curcpu())].store(u8::try_from(code).unwrap_or(u8::MAX), Ordering::SeqCst);
    platform::trap::breakpoint();
}

/// Host SIGQUIT (main thread): break in at cpu0's next safe point; if it does not get there
/// within a second (stuck in a loop), break in wherever it is.
pub fn request_breakin() {
    if active() {
        return;
    }
    cpu::send_ipi(0, cpu::IPI_DDB);
    std::thread::sleep(Duration::from_secs(1));
    let still_pending = cpu::pcpu(0).ipi_pending.load(Ordering::Acquire) & cpu::IPI_DDB != 0;
    if !active() && still_pending {
        cpu::pcpu(0).ipi_pending.fetch_and(!cpu::IPI_DDB, Ordering::AcqRel);
        cpu::send_ipi(0, cpu::IPI_NMI);
    }
}

/// The platform's fatal-trap hook (also reached by `kdb_enter`'s breakpoint).
fn trap_hook(tf: &TrapFrame) {
    let me = cpu::curcpu();
    if tf.signo() == libc_sigtrap() && tf.trapno() == vector::BP {
        let why = WHY[slot(me)].swap(0, Ordering::SeqCst);
        if why != 0 {
            let reason = REASONS.get(why as usize).copied().unwrap_or("enter");
            enter(me, tf, Some(reason), PANICKING.load(Ordering::Acquire));
            return;
        }
    }
    if OWNER.load(Ordering::Acquire) == me {
        kprintf_nolock!("\nFatal trap {} while in the debugger; halting.\n", trap_type(tf).0);
        platform::host::exit(EXIT_NO_DEBUGGER);
    }
    print_trap_banner(me, tf);
    enter(me, tf, None, true);
    // A fatal trap cannot be resumed: enter() only comes back if another CPU owned the
    // debugger and released us; returning retries the instruction (and traps again).
}

/// The platform's NMI hook: a forced break-in (from SIGQUIT or the watchdog).
fn nmi_hook(tf: &TrapFrame) {
    let me = cpu::curcpu();
    let why = WHY[slot(me)].swap(0, Ordering::SeqCst);
    let reason = if REASONS.get(why as usize) == Some(&WATCHDOG) { WATCHDOG } else { "break-in" };
    enter(me, tf, Some(reason), false);
}

/// The watchdog found CPU `c` stuck: break into the debugger on it, wherever it is.
pub fn watchdog_breakin(c: u32) {
    if active() {
        return;
    }
    let code = REASONS.iter().position(|r| *r == WATCHDOG).unwrap_or(0);
    WHY[slot(c)].store(u8::try_from(code).unwrap_or(0), Ordering::SeqCst);
    cpu::send_ipi(c, cpu::IPI_NMI);
}

const fn libc_sigtrap() -> i32 {
    5
}

fn panic_hook(info: &std::panic::PanicHookInfo<'_>) {
    let me = cpu::curcpu();
    let msg = info.payload_as_str().unwrap_or("(a panic without a message)");
    if OWNER.load(Ordering::Acquire) == me {
        kprintf_nolock!("\npanic in the debugger: {msg}\n");
        if let Some(l) = info.location() {
            kprintf_nolock!("panicked at {}:{}:{}\n", l.file(), l.line(), l.column());
        }
        platform::host::exit(EXIT_NO_DEBUGGER);
    }
    PANICKING.store(true, Ordering::Release);
    kprintf_nolock!("panic: {msg}\n");
    kprintf_nolock!("cpuid = {}\n", cpu_label(me));
    kprintf_nolock!("time = {}\n", platform::time::realtime_ns() / 1_000_000_000);
    if let Some(l) = info.location() {
        kprintf_nolock!("panicked at {}:{}:{}\n", l.file(), l.line(), l.column());
    }
    kdb_enter("panic");
    // Only reached when the breakpoint did not reach us (a host debugger took it).
    kprintf_nolock!("panic: no debugger; halting\n");
    platform::host::exit(EXIT_PANIC);
}

fn cpu_label(c: u32) -> String {
    if c == NOCPU { "none (host main thread)".to_string() } else { c.to_string() }
}

/// BSD trap type and message for a trap frame.
fn trap_type(tf: &TrapFrame) -> (u32, &'static str) {
    match tf.trapno() {
        vector::PF => (12, "page fault"),
        vector::GP => (9, "general protection fault"),
        vector::UD => (1, "privileged instruction fault"),
        vector::DE => (18, "integer divide fault"),
        vector::BP => (3, "breakpoint instruction fault"),
        vector::DB => (10, "trace trap"),
        vector::OF => (20, "overflow trap"),
        vector::BR => (21, "FPU bounds check fault"),
        vector::NM => (22, "FPU device not available"),
        vector::SS => (27, "stack fault"),
        vector::MF => (6, "arithmetic trap"),
        vector::AC => (14, "alignment fault"),
        vector::XM => (29, "SIMD floating-point exception"),
        _ => (0, "reserved (unknown) fault"),
    }
}

fn eflags_text(f: u64) -> String {
    let mut parts = Vec::new();
    if f & 0x200 != 0 {
        parts.push("interrupt enabled".to_string());
    }
    if f & 0x10000 != 0 {
        parts.push("resume".to_string());
    }
    if f & 0x4000 != 0 {
        parts.push("nested task".to_string());
    }
    if f & 0x20000 != 0 {
        parts.push("vm86".to_string());
    }
    parts.push(format!("IOPL = {}", (f >> 12) & 3));
    parts.join(", ")
}

/// What the trap banner says about the thread a CPU was running.
struct CurrentDesc {
    pid: i32,
    comm: String,
    tid: u64,
    name: String,
    pri: u32,
    stack: Option<(u64, u64)>,
}

/// The current thread and process of a CPU, from the exported records (lock-free).
fn current_desc(me: u32) -> Option<CurrentDesc> {
    let k = kdb()?;
    if me as usize >= MAXCPU {
        return None;
    }
    let addr = PCPU[me as usize].curthread.load(Ordering::Acquire);
    let procs = k.kvm.procs().ok()?;
    procs.iter().find_map(|p| {
        p.threads.iter().find(|t| t.addr == addr).map(|t| {
            let stack = (t.stack_base != 0).then_some((t.stack_base, t.stack_base + t.stack_size));
            CurrentDesc { pid: p.pid, comm: p.comm.clone(), tid: t.tid, name: t.name.clone(), pri: t.pri, stack }
        })
    })
}

fn print_trap_banner(me: u32, tf: &TrapFrame) {
    let (no, msg) = trap_type(tf);
    kprintf_nolock!("\n\nFatal trap {no}: {msg} while in kernel mode\n");
    kprintf_nolock!("cpuid = {}\n", cpu_label(me));
    if tf.trapno() == vector::PF {
        let err = tf.err();
        kprintf_nolock!("fault virtual address = {:#x}\n", tf.addr());
        kprintf_nolock!(
            "fault code = supervisor {} {}, {}\n",
            if err & 2 != 0 { "write" } else { "read" },
            if err & 16 != 0 { "instruction" } else { "data" },
            if err & 8 != 0 {
                "reserved bits in PTE"
            } else if err & 1 != 0 {
                "protection violation"
            } else {
                "page not present"
            }
        );
    } else if tf.addr() != 0 {
        kprintf_nolock!("fault address = {:#x}\n", tf.addr());
    }
    kprintf_nolock!("instruction pointer = {:#x}\n", tf.rip());
    kprintf_nolock!("stack pointer = {:#x}\n", tf.rsp());
    kprintf_nolock!("frame pointer = {:#x}\n", tf.rbp());
    kprintf_nolock!("processor eflags = {}\n", eflags_text(tf.regs[reg::RFLAGS]));
    match current_desc(me) {
        Some(CurrentDesc { pid, comm, tid, name, pri, stack }) => {
            kprintf_nolock!("current process = {pid} ({comm})\n");
            kprintf_nolock!("current thread = {tid} ({name}), pri {pri}\n");
            if let Some((lo, _)) = stack {
                let guard_lo = lo.saturating_sub(platform::kthread::KSTACK_GUARD as u64);
                if tf.trapno() == vector::PF && (guard_lo..lo).contains(&tf.addr()) {
                    kprintf_nolock!("kernel stack overflow: the fault is in the guard page of thread {tid}\n");
                }
            }
        }
        None => kprintf_nolock!("current process = (not a CPU thread)\n"),
    }
    kprintf_nolock!("trap number = {no}\n");
}

/// Publish every CPU's registers and state for the debugger and host readers.
fn publish_cpus(owner: u32) {
    for c in 0..cpu::ncpus() {
        let rec = &PCPU[c as usize];
        let pc = cpu::pcpu(c);
        if let Some(tf) = pc.trapframe() {
            for (slot, v) in rec.trapframe.iter().zip(tf.regs.iter()) {
                slot.store(*v, Ordering::Relaxed);
            }
            rec.tf_valid.store(1, Ordering::Release);
        }
        rec.intrs.store(pc.intrs.load(Ordering::Relaxed), Ordering::Relaxed);
        let state = if c == owner {
            cpustate::DDB
        } else if pc.stopped.load(Ordering::Acquire) {
            cpustate::STOPPED
        } else {
            rec.state.load(Ordering::Relaxed)
        };
        rec.state.store(state, Ordering::Relaxed);
    }
}

fn unpublish_cpus() {
    for c in 0..cpu::ncpus() {
        let rec = &PCPU[c as usize];
        rec.tf_valid.store(0, Ordering::Release);
        rec.state.store(cpustate::RUNNING, Ordering::Relaxed);
        cpu::pcpu(c).clear_trapframe();
    }
}

/// Become the debugger's owner, stop the other CPUs and run the command loop. Returns after
/// `continue` of a non-fatal entry, or when another CPU owned the debugger and released us.
fn enter(me: u32, tf: &TrapFrame, why: Option<&str>, mut fatal: bool) {
    cpu::this_pcpu().save_trapframe(tf);
    if let Err(owner) = OWNER.compare_exchange(FREE, me, Ordering::AcqRel, Ordering::Acquire) {
        if owner == me {
            kprintf_nolock!("\ndebugger re-entered on its own CPU; halting.\n");
            platform::host::exit(EXIT_NO_DEBUGGER);
        }
        platform::stop::park(tf);
        return;
    }
    platform::console::debugger_enter();
    if let Some(why) = why {
        kprintf_nolock!("KDB: enter: {why}\n");
        if let Some(d) = current_desc(me) {
            kprintf_nolock!("[ thread pid {} tid {} ]\n", d.pid, d.tid);
        }
    }
    let mask = cpu::online_mask() & !(1u64.checked_shl(me).unwrap_or(0));
    kprintf_nolock!("CPU{} stopping CPUs: {:#010x}\n", if me == NOCPU { -1 } else { i64::from(me) }, mask);
    let stopped = platform::stop::stop_cpus(mask, Duration::from_secs(2));
    if stopped == mask {
        kprintf_nolock!(" stopped\n");
    } else {
        kprintf_nolock!(" stopped {stopped:#010x}; CPUs {:#010x} did not stop\n", mask & !stopped);
    }
    publish_cpus(me);
    let Some(k) = kdb() else {
        kprintf_nolock!("no debugger (symbols unavailable); halting\n");
        platform::host::exit(EXIT_NO_DEBUGGER);
    };
    if fatal {
        crate::debug::dump::dump_on_panic(&k.kvm, (me != NOCPU).then_some(me));
    }
    // The watchdog's entry shows where the CPU is stuck before the prompt.
    let mut first: &[&str] = if why == Some(WATCHDOG) { &["trace"] } else { &[] };
    loop {
        let exit = run_loop(k, me, fatal, std::mem::take(&mut first));
        match exit {
            ddb::Exit::Continue if !fatal => break,
            ddb::Exit::Continue | ddb::Exit::Panic => {
                if PANICKING.swap(true, Ordering::AcqRel) {
                    kprintf_nolock!("halted after panic\n");
                    platform::host::exit(EXIT_PANIC);
                }
                let msg = if exit == ddb::Exit::Panic && !fatal { "from debugger" } else { trap_type(tf).1 };
                kprintf_nolock!("panic: {msg}\ncpuid = {}\n", cpu_label(me));
                kprintf_nolock!("time = {}\n", platform::time::realtime_ns() / 1_000_000_000);
                kprintf_nolock!("KDB: enter: panic\n");
                fatal = true;
            }
            ddb::Exit::Halt => shutdown::kern_reboot(Howto::Halt),
            ddb::Exit::Reboot => shutdown::kern_reboot(Howto::Reboot),
            ddb::Exit::EndOfInput => {
                kprintf_nolock!("\nddb: end of input; halting\n");
                platform::host::exit(EXIT_DDB_EOF);
            }
        }
    }
    unpublish_cpus();
    platform::console::debugger_leave();
    platform::stop::restart_cpus();
    OWNER.store(FREE, Ordering::Release);
}

fn make_console() -> ddb::console::StdConsole {
    let terminal = platform::console::stdin_is_terminal() && platform::console::stdout_is_terminal();
    let rows = if terminal { platform::console::window_size().map(|(r, _)| usize::from(r)) } else { None };
    ddb::console::StdConsole::new(
        Box::new(|b: &[u8]| platform::console::write(b)),
        Box::new(platform::console::read_key),
        rows,
        terminal,
    )
}

fn run_loop(k: &Kdb, me: u32, fatal: bool, first: &[&str]) -> ddb::Exit {
    let entry_cpu = (me != NOCPU).then_some(me);
    let target = KernelTarget::new(&k.kvm, &k.mem, entry_cpu);
    let Some(mut dbg) = k.debugger.try_lock() else {
        kprintf_nolock!("debugger state is locked (an earlier entry died); halting\n");
        platform::host::exit(EXIT_NO_DEBUGGER);
    };
    let mut cons = match k.console.try_lock() {
        Some(c) => c,
        None => platform::host::exit(EXIT_NO_DEBUGGER),
    };
    let console = cons.get_or_insert_with(make_console);
    let commands = first.iter().map(|c| c.to_string()).collect();
    dbg.run(&target, console, &ddb::Entry { cpu: entry_cpu, fatal, commands })
}
