//! Crash dumps (FreeBSD's `dumpsys`): ddb's `dump` writes `vmcore.N` in the kernel's working
//! directory, and a fatal trap or panic writes one into `-e dumpdir=DIR` by itself, before
//! `db>`.
//!
//! The core is an ELF core of the kernel process (platform `dump` writes it): its memory, one
//! NT_PRSTATUS per vCPU host thread (the registers the debugger entry and the stop IPIs saved)
//! and one per kernel thread off CPU (the context `cpu_switch` saved), and a vk note with the
//! kernel's load bias and layout descriptor, so `vps -M vmcore.N` finds its roots and
//! `gdb kernel vmcore.N` shows every thread. It runs inside the debugger with the other CPUs
//! stopped: threads are found through kvm-mem, as ddb's `ps` finds them, with no kernel lock.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use kvm_mem::Kvm;
use kvm_mem::abi::{Layout, NT_VK_DUMP, VK_NOTE_NAME, tstate};
use platform::dump::{CoreNote, CoreSpec, CoreThread};
use platform::trap::reg;

use crate::kprintf_nolock;

/// Runtime minus link-time address of the kernel (set when the debugger is built).
static LOAD_BIAS: OnceLock<u64> = OnceLock::new();

/// Remember the kernel's load bias for the vk note.
pub fn set_load_bias(bias: u64) {
    let _ = LOAD_BIAS.set(bias);
}

/// The most vmcore.N names tried.
const MAX_DUMPS: u32 = 10_000;

/// Every thread of the dump: the CPUs first (the entering one first of all), then every
/// kernel thread that is off CPU, with the registers `cpu_switch` saved.
fn threads(kvm: &Kvm, entry: Option<u32>) -> Vec<CoreThread> {
    let mut cpus: Vec<u32> = (0..platform::cpu::ncpus()).collect();
    if let Some(e) = entry {
        cpus.sort_by_key(|&c| c != e);
    }
    let mut out: Vec<CoreThread> = cpus
        .into_iter()
        .filter_map(|c| {
            let pc = platform::cpu::pcpu(c);
            let tf = pc.trapframe()?;
            let tid = i32::try_from(pc.host_tid.load(std::sync::atomic::Ordering::Relaxed)).ok()?;
            Some(CoreThread { tid, regs: tf, signo: i32::try_from(tf.regs[reg::SIGNO]).unwrap_or(0) })
        })
        .collect();
    let Ok(procs) = kvm.procs() else { return out };
    let pcb = kvm.layout().pcb;
    for t in procs.iter().flat_map(|p| p.threads.iter()) {
        if t.state == tstate::RUNNING || t.pcb == 0 {
            continue;
        }
        let Ok(tid) = i32::try_from(t.tid) else { continue };
        if out.iter().any(|o| o.tid == tid) {
            continue; // a host tid of a CPU: gdb's thread ids must be unique
        }
        if kvm.read_u32(t.pcb + u64::from(pcb.on_cpu)).ok() != Some(0) {
            continue;
        }
        let Ok(sp) = kvm.read_u64(t.pcb + u64::from(pcb.rsp)) else { continue };
        let mut bytes = [0u8; 56];
        if sp == 0 || kvm.read(sp, &mut bytes).is_err() {
            continue;
        }
        let mut words = [0u64; 7];
        for (w, b) in words.iter_mut().zip(bytes.chunks_exact(8)) {
            *w = u64::from_le_bytes(b.try_into().unwrap_or_default());
        }
        out.push(CoreThread { tid, regs: platform::kthread::switchframe_regs(sp, words), signo: 0 });
    }
    out
}

/// The vk note: load bias, where `vk_layout` is, the uptime, and the layout's bytes.
fn vk_note(kvm: &Kvm) -> CoreNote {
    let layout_addr = kvm.roots().layout;
    let mut layout = vec![0u8; size_of::<Layout>()];
    if kvm.read(layout_addr, &mut layout).is_err() {
        layout.clear();
    }
    let bias = LOAD_BIAS.get().copied().unwrap_or(0);
    let desc = kvm_mem::core::encode_vk_note(bias, layout_addr, platform::time::uptime_ns(), &layout);
    CoreNote { name: VK_NOTE_NAME, ntype: NT_VK_DUMP, desc }
}

/// Prints `Dumping 64 MB: 16 32 48 64 done` as the writer advances.
struct Progress {
    started: bool,
    quarter: u64,
    last_mark: u64,
}

impl Progress {
    fn update(&mut self, done: u64, total: u64) {
        const MB: u64 = 1 << 20;
        let total_mb = total.div_ceil(MB).max(1);
        if !self.started {
            self.started = true;
            kprintf_nolock!("Dumping {total_mb} MB:");
        }
        while self.quarter < 4 && done >= total * (self.quarter + 1) / 4 {
            self.quarter += 1;
            let mark = (total_mb * self.quarter).div_ceil(4);
            if mark != self.last_mark {
                kprintf_nolock!(" {mark}");
                self.last_mark = mark;
            }
        }
    }
}

/// Write `vmcore.N` (the first free N) into `dir`; returns its path.
pub fn dump_to(dir: &Path, kvm: &Kvm, entry: Option<u32>) -> Result<PathBuf, String> {
    let spec = CoreSpec { threads: threads(kvm, entry), notes: vec![vk_note(kvm)] };
    for n in 0..MAX_DUMPS {
        let path = dir.join(format!("vmcore.{n}"));
        if path.symlink_metadata().is_ok() {
            continue;
        }
        let mut progress = Progress { started: false, quarter: 0, last_mark: 0 };
        return match platform::dump::write_core(&path, &spec, &mut |d, t| progress.update(d, t)) {
            Ok(stats) => {
                kprintf_nolock!(" done\n");
                if stats.unreadable_pages > 0 {
                    kprintf_nolock!("dump: {} pages could not be read and are zeros\n", stats.unreadable_pages);
                }
                kprintf_nolock!(
                    "Dump complete: {} ({} threads, {} segments)\n",
                    path.display(),
                    spec.threads.len(),
                    stats.segments
                );
                Ok(path)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                if progress.started {
                    kprintf_nolock!(" failed\n");
                }
                let _ = std::fs::remove_file(&path);
                Err(format!("dump to {}: {e}", path.display()))
            }
        };
    }
    Err(format!("dump: {} already holds vmcore.0 to vmcore.{}", dir.display(), MAX_DUMPS - 1))
}

/// A fatal entry's automatic dump, when `-e dumpdir=DIR` asks for one (once per boot).
pub fn dump_on_panic(kvm: &Kvm, entry: Option<u32>) {
    static DONE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let Some(dir) = crate::kern::kenv::get("dumpdir").filter(|d| !d.is_empty()) else { return };
    if DONE.swap(true, std::sync::atomic::Ordering::AcqRel) {
        return;
    }
    if let Err(e) = dump_to(Path::new(dir), kvm, entry) {
        kprintf_nolock!("{e}\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_marks_quarters_in_megabytes() {
        let mut p = Progress { started: true, quarter: 0, last_mark: 0 };
        let mb = 1 << 20;
        let mut marks = Vec::new();
        for done in (0..=64).map(|m| m * mb) {
            let before = p.quarter;
            p.update(done, 64 * mb);
            if p.quarter != before {
                marks.push(p.last_mark);
            }
        }
        assert_eq!(marks, vec![16, 32, 48, 64]);
    }
}
