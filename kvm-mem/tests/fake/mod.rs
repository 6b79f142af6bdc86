//! A fake vk kernel inside a test process: the exported roots as `#[no_mangle]` statics of the
//! abi types, and records linked as the kernel links them.
//!
//! ```text
//!  vk_allproc ─► PROC0 (pid 0, SYSTEM, "swapper") ─► PROC1 (pid 1, "init") ─► 0
//!                 └ T0 "swapper" ─► T1 "idle: cpu0" ─► T2 "syncer"   └ T3 "init"
//! ```
//!
//! T3 is off CPU with a Pcb whose saved rsp points at a switch frame; T1 is on CPU 0. Shared by
//! kvm-mem's and tools' tests (`#[path]`); tests that change the records hold [`lock`] and call
//! [`build`] first, which puts everything back.
#![expect(unsafe_code, reason = "no_mangle statics stand in for the kernel's exported roots")]
#![allow(non_upper_case_globals, reason = "the root names are the kernel's symbols")]
#![allow(dead_code, reason = "each test crate uses part of the fake kernel")]

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use kvm_mem::Roots;
use kvm_mem::abi::*;

/// The switch frame the fake platform describes: rbp at +40, return address at +48, 56 bytes.
pub const PCB_LAYOUT: PcbLayout = PcbLayout { rsp: 0, on_cpu: 8, frame_rbp: 40, frame_rip: 48, frame_size: 56 };

#[unsafe(no_mangle)]
pub static vk_layout: Layout = Layout::new(PCB_LAYOUT, VmPageLayout { size: 16, flags: 0, refcount: 4, owner: 8 });
// The roots the kernel exports are pointers to records its modules own: so are these.
#[unsafe(no_mangle)]
pub static vk_allproc: &AtomicU64 = &ALLPROC;
#[unsafe(no_mangle)]
pub static vk_pcpu: &[PcpuRecord; MAXCPU] = &PCPU;
#[unsafe(no_mangle)]
pub static vk_ncpus: &AtomicU32 = &NCPUS;
#[unsafe(no_mangle)]
pub static vk_msgbuf: &MsgBufRecord = &MSGBUF;
#[unsafe(no_mangle)]
pub static vk_boottime_ns: &AtomicU64 = &BOOTTIME_NS;
#[unsafe(no_mangle)]
pub static vk_physmem: &PhysmemRecord = &PHYSMEM;

static ALLPROC: AtomicU64 = AtomicU64::new(0);
static PCPU: [PcpuRecord; MAXCPU] = {
    let mut cpus = [const { PcpuRecord::new(0) }; MAXCPU];
    let mut i = 0;
    while i < MAXCPU {
        cpus[i] = PcpuRecord::new(i as u32);
        i += 1;
    }
    cpus
};
static NCPUS: AtomicU32 = AtomicU32::new(0);
static MSGBUF: MsgBufRecord = MsgBufRecord::new();
static BOOTTIME_NS: AtomicU64 = AtomicU64::new(0);
static PHYSMEM: PhysmemRecord = PhysmemRecord::new();

pub static PROC0: ProcRecord = ProcRecord::new();
pub static PROC1: ProcRecord = ProcRecord::new();
pub static T0: ThreadRecord = ThreadRecord::new();
pub static T1: ThreadRecord = ThreadRecord::new();
pub static T2: ThreadRecord = ThreadRecord::new();
pub static T3: ThreadRecord = ThreadRecord::new();
/// T3's Pcb (saved rsp, on_cpu) and the switch frame its saved rsp points at.
pub static PCB3: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];
pub static FRAME3: [AtomicU64; 7] = [const { AtomicU64::new(0) }; 7];
/// T1's Pcb: on a CPU.
pub static PCB1: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(1)];

pub const MSG: &str = "vk 0.1.0: fake kernel\ncpu0: started\n";

static LOCK: Mutex<()> = Mutex::new(());

/// Serialize tests that read or change the fake kernel.
pub fn lock() -> MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn addr<T>(x: &T) -> u64 {
    (x as *const T).addr() as u64
}

/// The root addresses, as the kernel hands them to its own debugger.
pub fn roots() -> Roots {
    Roots {
        layout: addr(&vk_layout),
        // Through the roots' own addresses, so the symbols stay in the binary (as the kernel's
        // `debug::export::roots` does).
        allproc: addr(*std::hint::black_box(&vk_allproc)),
        pcpu: addr(*std::hint::black_box(&vk_pcpu)),
        ncpus: addr(*std::hint::black_box(&vk_ncpus)),
        msgbuf: addr(*std::hint::black_box(&vk_msgbuf)),
        boottime_ns: addr(*std::hint::black_box(&vk_boottime_ns)),
        physmem: addr(*std::hint::black_box(&vk_physmem)),
    }
}

/// A thread of `p`; `(cpu, pri)` as the scheduler last left them.
fn thread(t: &ThreadRecord, p: &ProcRecord, tid: u64, name: &str, state: u32, flags: u32, (cpu, pri): (u32, u32)) {
    let r = Ordering::Relaxed;
    t.magic.store(THREAD_MAGIC, r);
    t.proc_.store(addr(p), r);
    t.tid.store(tid, r);
    store_name(&t.name, name);
    t.state.store(state, r);
    t.flags.store(flags, r);
    t.cpu.store(cpu, r);
    t.pri.store(pri, r);
    t.next.store(0, r);
}

/// Build (or rebuild) the fake kernel's state. Times: booted at realtime `boottime_ns`, all
/// sleeps started at boot.
pub fn build() {
    // Refer to every root symbol, or the linker drops the ones nothing reads.
    std::hint::black_box(roots());
    let r = Ordering::Relaxed;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    vk_boottime_ns.store(now, r);

    PROC0.magic.store(PROC_MAGIC, r);
    PROC0.pid.store(0, r);
    PROC0.state.store(pstate::ACTIVE, r);
    PROC0.flags.store(pflags::SYSTEM, r);
    PROC0.nthreads.store(3, r);
    store_name(&PROC0.comm, "swapper");
    PROC0.next.store(addr(&PROC1), r);
    PROC0.threads.store(addr(&T0), r);

    PROC1.magic.store(PROC_MAGIC, r);
    PROC1.pid.store(1, r);
    PROC1.pgid.store(1, r);
    PROC1.sid.store(1, r);
    PROC1.state.store(pstate::ACTIVE, r);
    PROC1.flags.store(pflags::SESSION_LEADER, r);
    PROC1.nthreads.store(1, r);
    PROC1.vsz_bytes.store(1264 * 1024, r);
    PROC1.rss_pages.store(128, r);
    store_name(&PROC1.comm, "init");
    PROC1.next.store(0, r);
    PROC1.threads.store(addr(&T3), r);

    thread(&T0, &PROC0, 100_000, "swapper", tstate::SLEEPING, tflags::KTHREAD, (0, 84));
    store_name(&T0.wmesg, "nowork");
    T0.wchan.store(addr(&PROC0), r);
    thread(&T1, &PROC0, 100_001, "idle: cpu0", tstate::RUNNING, tflags::KTHREAD | tflags::IDLE, (0, 255));
    T1.pcb.store(addr(&PCB1), r);
    T1.runtime_ns.store(3_170_000_000, r);
    thread(&T2, &PROC0, 100_002, "syncer", tstate::SLEEPING, tflags::KTHREAD | tflags::SINTR, (0, 84));
    store_name(&T2.wmesg, "syncer");
    T0.next.store(addr(&T1), r);
    T1.next.store(addr(&T2), r);

    thread(&T3, &PROC1, 1, "init", tstate::SLEEPING, tflags::SINTR, (1, 120));
    store_name(&T3.wmesg, "wait");
    T3.wchan.store(addr(&PROC1), r);
    T3.runtime_ns.store(10_000_000, r);
    T3.pcb.store(addr(&PCB3), r);
    PCB3[0].store(addr(&FRAME3), r);
    PCB3[1].store(0, r);
    FRAME3[5].store(0x7fff_0000_1110, r); // saved rbp, at +40
    FRAME3[6].store(0x5555_0000_2220, r); // return address, at +48

    vk_allproc.store(addr(&PROC0), r);
    vk_ncpus.store(2, r);
    vk_pcpu[0].state.store(cpustate::RUNNING, r);
    vk_pcpu[0].curthread.store(addr(&T1), r);
    vk_pcpu[0].idlethread.store(addr(&T1), r);
    vk_pcpu[1].state.store(cpustate::STOPPED, r);
    vk_pcpu[1].tf_valid.store(1, r);
    vk_pcpu[1].trapframe[reg::RIP].store(0x5555_0000_3330, r);
    vk_pcpu[1].trapframe[reg::TRAPNO].store(14, r);

    vk_physmem.size.store(64 << 20, r);
    vk_physmem.free_pages.store(1000, r);

    for (slot, b) in vk_msgbuf.buf.iter().zip(MSG.bytes()) {
        slot.store(b, r);
    }
    vk_msgbuf.wptr.store(MSG.len() as u64, r);
}
