//! Stopping the other CPUs for the debugger, like the vkernel's `stopsig`.
//!
//! The CPU entering the debugger calls [`stop_cpus`]: for each other CPU it records the
//! current stop generation and sends `IPI_STOP`. The target's SIGUSR1 handler saves its
//! registers (so `cpu N` / `trace` in the debugger see where it was), marks itself stopped and
//! sleeps on the generation word until [`restart_cpus`] bumps it. A CPU that receives the IPI
//! after the restart finds the generation already moved on and returns at once, so a late
//! signal never strands a CPU.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::cpu::{self, IPI_STOP, PerCpu};
use crate::futex;
use crate::trap::TrapFrame;

static STOP_GEN: AtomicU32 = AtomicU32::new(0);

/// Ask every CPU in `mask` to stop and wait up to `timeout` for them; returns the mask of CPUs
/// that are parked.
pub fn stop_cpus(mask: u64, timeout: Duration) -> u64 {
    let generation = STOP_GEN.load(Ordering::SeqCst);
    for c in 0..cpu::ncpus() {
        if mask & (1 << c) != 0 {
            let pc = cpu::pcpu(c);
            pc.stop_gen.store(generation, Ordering::SeqCst);
            pc.ipi_pending.fetch_or(IPI_STOP, Ordering::SeqCst);
            cpu::signal_cpu(c);
        }
    }
    let deadline = crate::time::host_monotonic_ns() + timeout.as_nanos() as u64;
    loop {
        let stopped = stopped_mask() & mask;
        if stopped == mask || crate::time::host_monotonic_ns() >= deadline {
            return stopped;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// CPUs parked now.
pub fn stopped_mask() -> u64 {
    (0..cpu::ncpus()).filter(|&c| cpu::pcpu(c).stopped.load(Ordering::Acquire)).fold(0, |m, c| m | (1 << c))
}

/// Release every parked CPU.
pub fn restart_cpus() {
    for c in 0..cpu::ncpus() {
        cpu::pcpu(c).ipi_pending.fetch_and(!IPI_STOP, Ordering::SeqCst);
    }
    STOP_GEN.fetch_add(1, Ordering::SeqCst);
    futex::wake_all(&STOP_GEN);
}

/// Park the calling CPU as if stopped by an IPI (a CPU that trapped while another CPU already
/// owns the debugger).
pub fn park(tf: &TrapFrame) {
    let pc = cpu::this_pcpu();
    pc.stop_gen.store(STOP_GEN.load(Ordering::SeqCst), Ordering::SeqCst);
    stopsig(pc, tf);
}

/// The stop IPI's work, in the signal handler: save registers, park until released.
pub(crate) fn stopsig(pc: &PerCpu, tf: &TrapFrame) {
    pc.save_trapframe(tf);
    pc.ipi_pending.fetch_and(!IPI_STOP, Ordering::SeqCst);
    let generation = pc.stop_gen.load(Ordering::SeqCst);
    pc.stopped.store(true, Ordering::SeqCst);
    while STOP_GEN.load(Ordering::SeqCst) == generation {
        futex::wait(&STOP_GEN, generation, None);
    }
    pc.stopped.store(false, Ordering::SeqCst);
}
