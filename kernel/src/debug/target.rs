//! ddb's view of this kernel: memory through `/proc/self/mem` (a bad address is an error,
//! never a fault), CPUs' registers from the platform's saved trap frames, threads from the
//! exported records through kvm-mem — the same reader `vps` uses, and no kernel locks.

use std::sync::atomic::Ordering;

use ddb::{Frame, ReadError, RegisterSet, Target, ThreadSummary};
use kvm_mem::abi::tstate;
use kvm_mem::{Kvm, MemSource, ProcMem};
use platform::trap::reg;

use crate::kern::pcpu::PCPU;

/// The running kernel as a debugger target.
pub struct KernelTarget<'a> {
    mem: &'a ProcMem,
    entry: Option<u32>,
    threads: Vec<ThreadSummary>,
}

fn state_text(t: &kvm_mem::Thread) -> String {
    match t.state {
        tstate::NEW => "new".to_string(),
        tstate::RUNNABLE => format!("runnable (cpu{})", t.cpu),
        tstate::RUNNING => format!("running on cpu{}", t.cpu),
        tstate::SLEEPING => format!("sleeping on \"{}\" ({:#x})", t.wmesg, t.wchan),
        tstate::STOPPED => "stopped".to_string(),
        tstate::DEAD => "dead".to_string(),
        s => format!("state {s}"),
    }
}

impl<'a> KernelTarget<'a> {
    /// A snapshot of the threads, taken when the debugger is entered.
    pub fn new(kvm: &'a Kvm, mem: &'a ProcMem, entry: Option<u32>) -> KernelTarget<'a> {
        let mut threads = Vec::new();
        if let Ok(procs) = kvm.procs() {
            for p in &procs {
                for t in &p.threads {
                    let oncpu = (t.state == tstate::RUNNING).then_some(t.cpu);
                    let saved = if oncpu.is_some() {
                        None
                    } else {
                        kvm.thread_saved_frame(t).map(|f| Frame { rip: f.rip, rsp: f.rsp, rbp: f.rbp })
                    };
                    threads.push(ThreadSummary {
                        tid: t.tid,
                        pid: i64::from(p.pid),
                        addr: t.addr,
                        name: t.name.clone(),
                        state: state_text(t),
                        oncpu,
                        saved,
                        stack: (t.stack_base != 0).then_some((t.stack_base, t.stack_base + t.stack_size)),
                    });
                }
            }
        }
        KernelTarget { mem, entry, threads }
    }
}

impl Target for KernelTarget<'_> {
    fn read_memory(&self, addr: u64, buf: &mut [u8]) -> Result<(), ReadError> {
        self.mem.read(addr, buf).map_err(|_| ReadError { addr, len: buf.len() })
    }

    fn ncpus(&self) -> u32 {
        platform::cpu::ncpus()
    }

    fn entry_cpu(&self) -> Option<u32> {
        self.entry
    }

    fn cpu_registers(&self, cpu: u32) -> Option<RegisterSet> {
        if cpu >= platform::cpu::ncpus() {
            return None;
        }
        let tf = platform::cpu::pcpu(cpu).trapframe()?;
        let regs = (0..=reg::GS_BASE).map(|i| (reg::NAMES[i], tf.regs[i])).collect();
        Some(RegisterSet { regs })
    }

    fn cpu_thread(&self, cpu: u32) -> Option<ThreadSummary> {
        let addr = PCPU.get(cpu as usize)?.curthread.load(Ordering::Acquire);
        self.threads.iter().find(|t| t.addr == addr).cloned()
    }

    fn find_thread(&self, key: u64) -> Option<ThreadSummary> {
        self.threads
            .iter()
            .find(|t| t.tid == key || t.addr == key)
            .or_else(|| self.threads.iter().find(|t| u64::try_from(t.pid).ok() == Some(key)))
            .cloned()
    }

    fn threads(&self) -> Vec<ThreadSummary> {
        self.threads.clone()
    }
}
