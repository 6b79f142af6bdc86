//! A fake kernel in the test process: the exported roots as `#[no_mangle]` statics, records
//! linked as the kernel links them, read back through `/proc/self/mem` — from known root
//! addresses (as ddb does) and through the ELF symbols and `/proc/self/maps` (as vps does).
#![expect(unsafe_code, reason = "no_mangle statics stand in for a kernel's exported roots")]
#![allow(non_upper_case_globals, reason = "root names follow the kernel's")]

use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use kvm_mem::abi::*;
use kvm_mem::{Kvm, ProcMem, Roots};

#[unsafe(no_mangle)]
static vk_layout: Layout = Layout::new(
    PcbLayout { rsp: 0, on_cpu: 8, frame_rbp: 40, frame_rip: 48, frame_size: 56 },
    VmPageLayout { size: 16, flags: 0, refcount: 4, owner: 8 },
);
#[unsafe(no_mangle)]
static vk_allproc: AtomicU64 = AtomicU64::new(0);
#[unsafe(no_mangle)]
static vk_pcpu: [PcpuRecord; MAXCPU] = [const { PcpuRecord::new(0) }; MAXCPU];
#[unsafe(no_mangle)]
static vk_ncpus: AtomicU32 = AtomicU32::new(0);
#[unsafe(no_mangle)]
static vk_msgbuf: MsgBufRecord = MsgBufRecord::new();
#[unsafe(no_mangle)]
static vk_boottime_ns: AtomicU64 = AtomicU64::new(0);
#[unsafe(no_mangle)]
static vk_physmem: PhysmemRecord = PhysmemRecord::new();

static PROC0: ProcRecord = ProcRecord::new();
static PROC1: ProcRecord = ProcRecord::new();
static T0: ThreadRecord = ThreadRecord::new();
static T1: ThreadRecord = ThreadRecord::new();
static T2: ThreadRecord = ThreadRecord::new();
/// A Pcb (rsp, on_cpu) and a switch frame for T2.
static PCB: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];
static FRAME: [AtomicU64; 8] = [const { AtomicU64::new(0) }; 8];

fn addr<T>(x: &T) -> u64 {
    x as *const T as u64
}

fn roots() -> Roots {
    Roots {
        layout: addr(&vk_layout),
        allproc: addr(&vk_allproc),
        pcpu: addr(&vk_pcpu),
        ncpus: addr(&vk_ncpus),
        msgbuf: addr(&vk_msgbuf),
        boottime_ns: addr(&vk_boottime_ns),
        physmem: addr(&vk_physmem),
    }
}

fn build() {
    let r = Ordering::Relaxed;
    PROC0.pid.store(0, r);
    PROC0.flags.store(pflags::SYSTEM, r);
    store_name(&PROC0.comm, "swapper");
    PROC1.pid.store(1, r);
    store_name(&PROC1.comm, "init");
    PROC0.next.store(addr(&PROC1), r);
    for (t, tid, name) in [(&T0, 100000, "swapper"), (&T1, 100001, "idle: cpu0"), (&T2, 1, "init")] {
        t.tid.store(tid, r);
        store_name(&t.name, name);
    }
    T0.state.store(tstate::SLEEPING, r);
    store_name(&T0.wmesg, "nowork");
    T1.state.store(tstate::RUNNING, r);
    T0.next.store(addr(&T1), r);
    PROC0.threads.store(addr(&T0), r);
    PROC1.threads.store(addr(&T2), r);
    T2.state.store(tstate::SLEEPING, r);
    T2.pcb.store(addr(&PCB), r);
    FRAME[5].store(0x1111, r); // rbp at +40
    FRAME[6].store(0x2222, r); // rip at +48
    PCB[0].store(addr(&FRAME), r);
    vk_allproc.store(addr(&PROC0), r);
    vk_ncpus.store(2, r);
    vk_pcpu[1].cpuid.store(1, r);
    vk_pcpu[1].curthread.store(addr(&T1), r);
    vk_pcpu[1].tf_valid.store(1, r);
    vk_pcpu[1].trapframe[reg::RIP].store(0xfeed, r);
    vk_boottime_ns.store(42, r);
    vk_physmem.size.store(64 << 20, r);
    let text = b"hello from the fake kernel\n";
    for (i, b) in text.iter().enumerate() {
        vk_msgbuf.buf[i].store(*b, r);
    }
    vk_msgbuf.wptr.store(text.len() as u64, r);
}

fn check(kvm: &Kvm) {
    let procs = kvm.procs().unwrap();
    assert_eq!(procs.len(), 2);
    assert_eq!(procs[0].comm, "swapper");
    assert_eq!(procs[0].threads.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["swapper", "idle: cpu0"]);
    assert_eq!(procs[0].threads[0].wmesg, "nowork");
    assert_eq!(procs[1].pid, 1);
    let t = &procs[1].threads[0];
    let f = kvm.thread_saved_frame(t).unwrap();
    assert_eq!((f.rip, f.rbp, f.rsp), (0x2222, 0x1111, addr(&FRAME) + 56));
    assert!(kvm.thread_saved_frame(&procs[0].threads[0]).is_none(), "no pcb, no saved frame");
    let cpus = kvm.pcpus().unwrap();
    assert_eq!(cpus.len(), 2);
    assert_eq!(cpus[1].curthread, addr(&T1));
    assert_eq!(cpus[1].trapframe.as_ref().unwrap()[reg::RIP], 0xfeed);
    assert!(cpus[0].trapframe.is_none());
    assert_eq!(kvm.msgbuf().unwrap(), "hello from the fake kernel\n");
    assert_eq!(kvm.boottime_ns().unwrap(), 42);
    assert_eq!(kvm.physmem().unwrap().size, 64 << 20);
    let axl = kvm_mem::ps::format_axl(&procs, 0);
    assert!(axl.contains("(idle: cpu0)") && axl.contains("(init)"), "{axl}");
}

#[test]
fn read_a_fake_kernel_from_its_roots_and_from_its_symbols() {
    build();
    // As the kernel's own debugger does.
    let kvm = Kvm::from_roots(Box::new(ProcMem::open_self().unwrap()), roots()).unwrap();
    check(&kvm);
    // As vps does: symbols from the ELF, load bias from /proc/PID/maps.
    let kvm = Kvm::open(Path::new("/proc/self/mem"), None).unwrap();
    assert_eq!(*kvm.roots(), roots());
    check(&kvm);
    // A namelist without the roots is not a vk kernel.
    let e = Kvm::open(Path::new("/proc/self/mem"), Some(Path::new("/bin/true"))).unwrap_err();
    assert!(e.to_string().contains("not a vk kernel"), "{e}");
    // Bad records are reported, not trusted.
    let mut bad = roots();
    bad.layout += 8;
    let e = Kvm::from_roots(Box::new(ProcMem::open_self().unwrap()), bad).unwrap_err();
    assert!(e.to_string().contains("bad magic"), "{e}");
    PROC1.magic.store(0, Ordering::Relaxed);
    let e = Kvm::from_roots(Box::new(ProcMem::open_self().unwrap()), roots()).unwrap().procs().unwrap_err();
    assert!(e.to_string().contains("bad process record"), "{e}");
    PROC1.magic.store(PROC_MAGIC, Ordering::Relaxed);
    // A loop in a list is caught.
    T1.next.store(addr(&T0), Ordering::Relaxed);
    let e = Kvm::from_roots(Box::new(ProcMem::open_self().unwrap()), roots()).unwrap().procs().unwrap_err();
    assert!(e.to_string().contains("loops"), "{e}");
    T1.next.store(0, Ordering::Relaxed);
}
