//! End to end: a fake kernel in this test process (see `fake/`), read back through
//! `/proc/self/mem` from its root addresses (as the kernel's debugger does) and through its
//! ELF symbols and `/proc/self/maps` (as vps does: this test binary is a PIE that keeps its
//! `.symtab`). Also the failures a user meets: a wrong `-N`, a process that is not a vk kernel,
//! a process that has exited, records freed or looping under the reader.
#![deny(unsafe_code)]

mod fake;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;

use fake::addr;
use kvm_mem::abi::{PROC_MAGIC, cpustate, pflags, reg, tstate};
use kvm_mem::{Kvm, KvmError, ProcMem, SavedFrame};

fn from_roots() -> Kvm {
    Kvm::from_roots(Box::new(ProcMem::open_self().unwrap()), fake::roots()).unwrap()
}

/// Everything the fake kernel holds comes back decoded.
fn check(kvm: &Kvm) {
    let procs = kvm.procs().unwrap();
    let summary: Vec<(i32, &str, usize)> = procs.iter().map(|p| (p.pid, p.comm.as_str(), p.threads.len())).collect();
    assert_eq!(summary, [(0, "swapper", 3), (1, "init", 1)]);
    let p0 = &procs[0];
    assert_eq!((p0.flags, p0.nthreads, p0.addr), (pflags::SYSTEM, 3, addr(&fake::PROC0)));
    let names: Vec<&str> = p0.threads.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["swapper", "idle: cpu0", "syncer"]);
    let t0 = &p0.threads[0];
    assert_eq!(
        (t0.tid, t0.state, t0.wmesg.as_str(), t0.wchan),
        (100_000, tstate::SLEEPING, "nowork", addr(&fake::PROC0))
    );
    assert_eq!(p0.threads[1].proc_addr, addr(&fake::PROC0));
    let init = &procs[1];
    assert_eq!((init.vsz_bytes, init.rss_pages, init.flags), (1264 * 1024, 128, pflags::SESSION_LEADER));
    let t3 = &init.threads[0];
    assert_eq!((t3.tid, t3.cpu, t3.pri, t3.runtime_ns), (1, 1, 120, 10_000_000));

    // T3 is off CPU: its trace starts at the switch frame; T1 is on a CPU; T0 has no Pcb.
    let frame = kvm.thread_saved_frame(t3).unwrap();
    let rsp = addr(&fake::FRAME3) + 56;
    assert_eq!(frame, SavedFrame { rip: 0x5555_0000_2220, rsp, rbp: 0x7fff_0000_1110 });
    assert_eq!(kvm.thread_saved_frame(&p0.threads[1]), None);
    assert_eq!(kvm.thread_saved_frame(t0), None);

    let cpus = kvm.pcpus().unwrap();
    assert_eq!(cpus.len(), 2);
    assert_eq!((cpus[0].cpuid, cpus[0].state, cpus[0].curthread), (0, cpustate::RUNNING, addr(&fake::T1)));
    assert_eq!(cpus[0].trapframe, None);
    assert_eq!((cpus[1].cpuid, cpus[1].state), (1, cpustate::STOPPED));
    let tf = cpus[1].trapframe.as_ref().unwrap();
    assert_eq!((tf[reg::RIP], tf[reg::TRAPNO]), (0x5555_0000_3330, 14));

    assert_eq!(kvm.msgbuf().unwrap(), fake::MSG);
    assert_eq!(kvm.boottime_ns().unwrap(), fake::vk_boottime_ns.load(Ordering::Relaxed));
    let pm = kvm.physmem().unwrap();
    assert_eq!((pm.size, pm.free_pages), (64 << 20, 1000));

    let axl = kvm_mem::ps::format_axl(&procs, 0);
    let lines: Vec<&str> = axl.lines().collect();
    assert_eq!(lines.len(), 5, "{axl}");
    assert_eq!(lines[2], "    0     0     0   0 255  0     0     0 -       RL   ??    0:03.17 (idle: cpu0)");
    assert_eq!(lines[4], "    0     1     0   1 120  0  1264   512 wait    Ss   ??    0:00.01 (init)");
}

#[test]
fn from_roots_like_the_kernel_debugger() {
    let _g = fake::lock();
    fake::build();
    check(&from_roots());
}

#[test]
fn through_symbols_and_maps_like_vps() {
    let _g = fake::lock();
    fake::build();
    let kvm = Kvm::open(Path::new("/proc/self/mem"), None).unwrap();
    assert_eq!(*kvm.roots(), fake::roots(), "symbol + load bias = runtime address");
    check(&kvm);
    // -N naming the same executable, and /proc/PID/mem by number.
    let exe = std::env::current_exe().unwrap();
    let mem = format!("/proc/{}/mem", std::process::id());
    let kvm = Kvm::open(Path::new(&mem), Some(&exe)).unwrap();
    assert_eq!(*kvm.roots(), fake::roots());
}

#[test]
fn a_namelist_without_the_roots_is_refused() {
    let e = Kvm::open(Path::new("/proc/self/mem"), Some(Path::new("/bin/true"))).unwrap_err();
    assert!(matches!(&e, KvmError::NoSymbol { symbol, .. } if symbol == "vk_layout"), "{e}");
    assert_eq!(e.to_string(), "/bin/true: no symbol vk_layout: not a vk kernel");
    let e = Kvm::open(Path::new("/proc/self/mem"), Some(Path::new("/etc/hostname"))).unwrap_err();
    assert!(e.to_string().starts_with("/etc/hostname: not an ELF file"), "{e}");
}

#[test]
fn a_root_without_the_layout_magic_is_refused() {
    let mut roots = fake::roots();
    roots.layout += 8;
    let e = Kvm::from_roots(Box::new(ProcMem::open_self().unwrap()), roots).unwrap_err();
    assert!(matches!(e, KvmError::BadLayout { .. }), "{e}");
    assert!(e.to_string().contains("bad magic"), "{e}");
}

#[test]
fn a_process_that_is_not_a_vk_kernel() {
    let mut child = Command::new("sleep").arg("5").stdin(Stdio::null()).spawn().unwrap();
    let mem = format!("/proc/{}/mem", child.id());
    let e = Kvm::open(Path::new(&mem), None);
    child.kill().unwrap();
    child.wait().unwrap();
    let e = e.unwrap_err();
    assert!(matches!(e, KvmError::NotVk { .. }), "{e}");
    assert!(e.to_string().starts_with(&format!("{mem}: not a vk kernel (its executable /")), "{e}");
    assert!(e.to_string().ends_with("sleep has no symbol vk_layout)"), "{e}");
}

#[test]
fn a_process_that_has_exited() {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    let mem = format!("/proc/{pid}/mem");
    let e = Kvm::open(Path::new(&mem), None).unwrap_err();
    assert_eq!(e.to_string(), format!("{mem}: no such process"));
    let e = Kvm::open(Path::new("/nonexistent/vmcore.0"), None).unwrap_err();
    assert_eq!(e.to_string(), "/nonexistent/vmcore.0: neither a /proc/PID/mem path nor a vmcore");
}

#[test]
fn a_freed_record_fails_after_retries_and_a_loop_is_caught() {
    let _g = fake::lock();
    fake::build();
    let kvm = from_roots();
    fake::PROC1.magic.store(0xdead, Ordering::Relaxed);
    let e = kvm.procs().unwrap_err();
    let want = format!(
        "allproc list changed or was unreadable on 3 tries; last: bad process record at {:#x} (magic 0xdead)",
        addr(&fake::PROC1)
    );
    assert_eq!(e.to_string(), want);
    fake::PROC1.magic.store(PROC_MAGIC, Ordering::Relaxed);
    assert_eq!(kvm.procs().unwrap().len(), 2);

    fake::T2.next.store(addr(&fake::T0), Ordering::Relaxed);
    let e = kvm.procs().unwrap_err();
    assert!(
        e.to_string()
            .contains(&format!("thread list loops or is longer than 100000 entries (at {:#x})", addr(&fake::T0))),
        "{e}"
    );
    fake::build();
    assert_eq!(kvm.procs().unwrap().len(), 2);
}
