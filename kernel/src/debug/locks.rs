//! ddb's `show locks` (held spin and sleep locks and who holds them), `show page ADDR` (a
//! physical page's `vm_page`) and `ktrace PID` (one process's system calls on the console).
//!
//! Locks are found without taking any: each CPU lists the spinlocks it holds
//! (`platform::sync::held_spinlocks`) and held sleep locks (reader-writer ones when held
//! exclusive) sit in a small table (`kern::sleeplock::held`). Both give addresses; a lock's name is the first field of the
//! lock, a `&'static str` read through `/proc/self/mem` like everything else the debugger
//! reads, and holders and waiters are named from the exported thread records.

use std::fmt::Write;

use kvm_mem::abi::tstate;
use kvm_mem::{Kvm, Proc};

/// The longest lock name read.
const MAX_NAME: u64 = 64;

/// The `&'static str` stored at `addr`, read from memory. A `&str` is a pointer and a length;
/// of the two words, the length is the small one.
fn static_str_at(kvm: &Kvm, addr: u64) -> Option<String> {
    let (a, b) = (kvm.read_u64(addr).ok()?, kvm.read_u64(addr + 8).ok()?);
    let (ptr, len) = if a > b { (a, b) } else { (b, a) };
    if len == 0 || len > MAX_NAME {
        return None;
    }
    let mut bytes = vec![0u8; crate::kern::conv::usize_of(len)];
    kvm.read(ptr, &mut bytes).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// `pid 3 tid 3 (cat)` for a thread record address.
fn thread_name(procs: &[Proc], addr: u64) -> String {
    procs
        .iter()
        .flat_map(|p| p.threads.iter().map(move |t| (p, t)))
        .find(|(_, t)| t.addr == addr)
        .map_or_else(|| format!("thread {addr:#x}"), |(p, t)| format!("pid {} tid {} ({})", p.pid, t.tid, t.name))
}

/// `show locks`.
pub fn show_locks(kvm: &Kvm) -> Result<String, String> {
    let procs = kvm.procs().map_err(|e| e.to_string())?;
    let mut o = String::from("spin locks held:\n");
    let mut any = false;
    for c in 0..platform::cpu::ncpus() {
        let (n, addrs) = platform::sync::held_spinlocks(c);
        if n == 0 {
            continue;
        }
        any = true;
        let cur = crate::kern::pcpu::pcpu(c).curthread.load(std::sync::atomic::Ordering::Relaxed);
        let _ = writeln!(o, " cpu{c} ({}): {n} held", thread_name(&procs, cur));
        for a in &addrs {
            let name = static_str_at(kvm, a + platform::sync::LOCK_NAME_OFFSET as u64);
            let _ = writeln!(o, "  \"{}\" at {a:#x}", name.as_deref().unwrap_or("?"));
        }
        if (n as usize) > addrs.len() {
            let _ = writeln!(o, "  ({} more not listed)", n as usize - addrs.len());
        }
    }
    if !any {
        o.push_str(" none\n");
    }
    o.push_str("sleep locks held:\n");
    let held = crate::kern::sleeplock::held();
    if held.is_empty() {
        o.push_str(" none\n");
    }
    for (lock, holder, kind) in held {
        let name = static_str_at(kvm, lock + crate::kern::sleeplock::WMESG_OFFSET as u64);
        let how = match kind {
            crate::kern::sleeplock::HeldKind::Mutex => "held",
            crate::kern::sleeplock::HeldKind::Exclusive => "held exclusive",
        };
        let holder = thread_name(&procs, holder);
        let _ = write!(o, " \"{}\" at {lock:#x} {how} by {holder}", name.as_deref().unwrap_or("?"));
        let waiters: Vec<String> = procs
            .iter()
            .flat_map(|p| p.threads.iter())
            .filter(|t| t.state == tstate::SLEEPING && t.wchan == lock)
            .map(|t| t.tid.to_string())
            .collect();
        if !waiters.is_empty() {
            let _ = write!(o, "; waiting: tid {}", waiters.join(", "));
        }
        o.push('\n');
    }
    Ok(o)
}

/// `show page ADDR`: the `vm_page` of a physical (or direct-map) address.
pub fn show_page(kvm: &Kvm, addr: u64) -> Result<String, String> {
    let p = kvm.vm_page(addr).map_err(|e| e.to_string())?;
    let pm = kvm.physmem().map_err(|e| e.to_string())?;
    Ok(format!(
        "vm_page {:#x}: physical page {:#x} (direct map {:#x})\n flags     {:#x} <{}>\n refcount  {}\n owner     {}\n",
        p.addr,
        p.pa,
        pm.dmap_base + p.pa,
        p.flags,
        p.flag_names(),
        p.refcount,
        p.owner
    ))
}

/// `ktrace [PID [on|off]]`: trace one process's system calls, stop, or list the traced.
pub fn ktrace(args: &str) -> Result<String, String> {
    let mut words = args.split_whitespace();
    let Some(pid) = words.next() else {
        let pids = crate::kern::ktrace::traced_pids();
        let all = if crate::kern::ktrace::enabled() { " (and debug.ktrace traces every process)" } else { "" };
        return Ok(if pids.is_empty() {
            format!("ktrace: no process traced{all}\n")
        } else {
            format!("ktrace: tracing pid {}{all}\n", pids.iter().map(i32::to_string).collect::<Vec<_>>().join(", "))
        });
    };
    let on = match words.next() {
        None | Some("on") => true,
        Some("off") => false,
        Some(w) => return Err(format!("ktrace: '{w}': on or off")),
    };
    let pid: i32 = pid.parse().map_err(|_| format!("ktrace: {pid}: not a process id"))?;
    let p = match crate::kern::proc::find_nowait(pid) {
        None => return Err("ktrace: the process list is locked (a stopped CPU holds allproc)".to_string()),
        Some(None) => return Err(format!("ktrace: no process {pid}")),
        Some(Some(p)) => p,
    };
    let alive =
        |pid: i32, rec: u64| crate::kern::proc::find_nowait(pid).is_none_or(|p| p.is_some_and(|p| p.rec_addr() == rec));
    crate::kern::ktrace::set_traced(pid, p.rec_addr(), on, alive)?;
    Ok(format!("ktrace: pid {pid} ({}) {}\n", p.comm(), if on { "traced" } else { "no longer traced" }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn ktrace_arguments_are_checked() {
        assert!(super::ktrace("x").unwrap_err().contains("not a process id"));
        assert!(super::ktrace("1 maybe").unwrap_err().contains("on or off"));
        assert!(super::ktrace("").unwrap().starts_with("ktrace: "));
    }
}
