//! ddb's views of guest processes: `show proc`, `show map`, `show syscalls`.
//!
//! These run at `db>` with every other CPU stopped, perhaps in the middle of a critical
//! section. They therefore take no lock they might wait for: every lock is tried once, and a
//! structure whose lock a stopped CPU holds is reported as busy instead of read half-changed.

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use kvm_mem::abi::tflags;

use crate::kern::proc::{self, ProcState, UProc};
use crate::kern::signal::{NSIG, SIG_IGN};
use crate::kern::thread::{Thread, ThreadState};
use crate::vm::space::{AddressSpace, Backing};

/// Said for a structure whose lock is held.
const BUSY: &str = "(busy: locked by a stopped CPU)";

/// The process an argument names: a decimal pid, or none for the current thread's process.
fn proc_arg(args: &str) -> Result<UProc, String> {
    let arg = args.trim();
    if arg.is_empty() {
        return crate::kern::sched::curthread()
            .and_then(|t| t.proc_())
            .and_then(UProc::new)
            .ok_or_else(|| "usage: show proc|map <pid> (the current thread is not in a guest process)".to_string());
    }
    let pid: i32 = arg.parse().map_err(|_| format!("{arg}: not a process id"))?;
    match proc::find_nowait(pid) {
        None => Err(format!("the process table is {BUSY}")),
        Some(None) => Err(format!("no process {pid}")),
        Some(Some(p)) => {
            UProc::new(p).ok_or_else(|| format!("pid {pid} is the kernel's own process: see ps and trace"))
        }
    }
}

fn signal_set(mask: u64) -> String {
    if mask == 0 {
        return "none".to_string();
    }
    (1..=NSIG).filter(|s| mask & (1 << (s - 1)) != 0).map(|s| s.to_string()).collect::<Vec<_>>().join(",")
}

fn thread_state(td: &Thread) -> &'static str {
    match td.state() {
        ThreadState::New => "new",
        ThreadState::Runnable => "runnable",
        ThreadState::Running if td.rec.flags.load(Ordering::Relaxed) & tflags::INUSER != 0 => "running (user)",
        ThreadState::Running => "running",
        ThreadState::Sleeping if td.rec.flags.load(Ordering::Relaxed) & tflags::SINTR != 0 => "sleeping",
        ThreadState::Sleeping => "sleeping (uninterruptible)",
        ThreadState::Stopped => "stopped",
        ThreadState::Dead => "dead",
    }
}

fn record_str(bytes: &[std::sync::atomic::AtomicU8]) -> String {
    let raw: Vec<u8> = bytes.iter().map(|b| b.load(Ordering::Relaxed)).collect();
    kvm_mem::abi::name_from_bytes(&raw)
}

/// `show proc [pid]`.
pub fn show_proc(args: &str) -> Result<String, String> {
    let p = proc_arg(args)?;
    let u = p.user();
    let mut o = String::new();
    let r = &p.rec;
    let _ = writeln!(o, "Process {} ({}) at {:#x}:", p.pid, p.comm(), p.rec_addr());
    let state = match p.state() {
        ProcState::New => "new".to_string(),
        ProcState::Active => "active".to_string(),
        ProcState::Zombie => format!("zombie, wait status {:#x}", r.xstat.load(Ordering::Relaxed)),
    };
    let stopped = u.jobctl.try_lock().map_or(BUSY, |j| if j.stopped { "stopped" } else { "not stopped" });
    let _ = writeln!(o, " state: {state}, {stopped}");
    let _ = writeln!(
        o,
        " pid {}  ppid {}  pgrp {}  session {}  exit signal {}",
        p.pid,
        r.ppid.load(Ordering::Relaxed),
        r.pgid.load(Ordering::Relaxed),
        r.sid.load(Ordering::Relaxed),
        u.exit_signal.load(Ordering::Relaxed)
    );
    match u.cred.try_lock() {
        Some(c) => {
            let _ = writeln!(
                o,
                " uid {}/{}/{}  gid {}/{}/{}  groups {:?} (real/effective/saved)",
                c.uid, c.euid, c.suid, c.gid, c.egid, c.sgid, c.groups
            );
        }
        None => {
            let _ = writeln!(o, " credentials {BUSY}");
        }
    }
    let exe = u.exe.try_lock().map_or(BUSY.to_string(), |e| e.as_ref().map_or("-".to_string(), |n| n.to_path_string()));
    let _ = writeln!(o, " exe: {exe}");
    let argv = u.argv.try_lock().map_or(BUSY.to_string(), |a| {
        a.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect::<Vec<_>>().join(" ")
    });
    let _ = writeln!(o, " arguments: {argv}");
    let cwd =
        u.fs.try_lock().map_or(BUSY.to_string(), |f| format!("{}  umask {:03o}", f.cwd.to_path_string(), f.umask));
    let _ = writeln!(o, " cwd: {cwd}");
    let files = u.files.try_lock().map(|t| Arc::clone(&t));
    let fds = files.as_ref().and_then(|t| t.try_lock()).map_or(BUSY.to_string(), |t| {
        let fds: Vec<String> = t.open_fds().map(|fd| fd.to_string()).collect();
        format!("{} open: {}", fds.len(), fds.join(" "))
    });
    let _ = writeln!(o, " descriptors: {fds}");
    let vm = u.vm.try_lock().map(|v| Arc::clone(&v));
    let vmline = vm.as_ref().and_then(|v| v.peek(vm_summary)).unwrap_or_else(|| BUSY.to_string());
    let _ = writeln!(o, " vmspace: {vmline}");
    match u.sig.try_lock() {
        Some(s) => {
            let (mut ignored, mut caught) = (0u64, 0u64);
            for (sig, a) in s.actions.iter().enumerate().skip(1) {
                match a.handler {
                    0 => {}
                    SIG_IGN => ignored |= 1 << (sig - 1),
                    _ => caught |= 1 << (sig - 1),
                }
            }
            let _ = writeln!(
                o,
                " signals: pending {}  ignored {}  caught {}",
                signal_set(s.pending.set),
                signal_set(ignored),
                signal_set(caught)
            );
        }
        None => {
            let _ = writeln!(o, " signals {BUSY}");
        }
    }
    let Some(threads) = p.threads_nowait() else {
        let _ = writeln!(o, " threads {BUSY}");
        return Ok(o);
    };
    let _ = writeln!(o, " threads: {}", threads.len());
    for td in &threads {
        let _ = writeln!(o, "{}", thread_lines(td));
    }
    Ok(o)
}

fn vm_summary(g: &AddressSpace) -> String {
    let stub = g.stub.as_ref().map_or("none yet".to_string(), |s| format!("host pid {}", s.pid()));
    format!(
        "{} entries, {} kB mapped, {} pages resident, brk {:#x}-{:#x}, stub {stub}",
        g.entries().count(),
        g.vsz() / 1024,
        g.rss_pages(),
        g.brk_start,
        g.brk
    )
}

/// A thread of `show proc`: state and wait channel, signals, its stub thread, user registers.
fn thread_lines(td: &Thread) -> String {
    let r = &td.rec;
    let mut o = format!("  tid {} at {:#x}: {}", td.tid(), td.rec_addr(), thread_state(td));
    if td.state() == ThreadState::Sleeping {
        let _ = write!(o, " on \"{}\" ({:#x})", record_str(&r.wmesg), r.wchan.load(Ordering::Relaxed));
    }
    let _ = write!(o, ", last cpu {}", r.cpu.load(Ordering::Relaxed));
    let Some(ut) = td.as_user() else { return o };
    match ut.sigstate.sig.try_lock() {
        Some(s) => {
            let _ = write!(o, "\n    sigmask {}  pending {}", signal_set(s.mask), signal_set(s.pending.set));
        }
        None => {
            let _ = write!(o, "\n    signals {BUSY}");
        }
    }
    let _ = write!(
        o,
        "  fs_base {:#x}  clear_child_tid {:#x}  robust_list {:#x}",
        ut.fs_base.load(Ordering::Relaxed),
        ut.clear_child_tid.load(Ordering::Relaxed),
        ut.robust_list.load(Ordering::Relaxed)
    );
    if let Some(stub) = ut.stub.try_lock()
        && let Some(s) = stub.as_ref()
    {
        let _ = write!(o, "\n    stub thread: host tid {}, slot {}, {} traps", s.host_tid(), s.slot(), s.traps());
    }
    match crate::kern::ptrace::describe(ut) {
        Some(line) if line.is_empty() => {}
        Some(line) => {
            let _ = write!(o, "\n    ptrace: {line}");
        }
        None => {
            let _ = write!(o, "\n    ptrace {BUSY}");
        }
    }
    // The saved registers are the thread's own only while it is in the kernel.
    if r.flags.load(Ordering::Relaxed) & tflags::INUSER == 0
        && let Some(regs) = ut.regs.try_lock()
    {
        let _ = write!(o, "\n    user rip {:#x}  rsp {:#x}  rax {:#x}", regs.rip(), regs.rsp(), regs.rax());
    }
    o
}

/// `show map [pid]`: the address space's entries, with what is resident.
pub fn show_map(args: &str) -> Result<String, String> {
    let p = proc_arg(args)?;
    let vm = p.user().vm.try_lock().map(|v| Arc::clone(&v)).ok_or_else(|| format!("pid {}: vmspace {BUSY}", p.pid))?;
    vm.peek(|g| {
        let mut o = format!("pid {} ({}) vmspace {}: {}\n", p.pid, p.comm(), g.id, vm_summary(g));
        o.push_str("             start                end prot  kind          offset  resident    cow  name\n");
        for e in g.entries() {
            let kind = match &e.backing {
                Backing::Anon => "anon",
                Backing::File { .. } if crate::kern::exec::vdso::is_special(e) => "vdso",
                Backing::File { .. } | Backing::SharedFile { .. } => "file",
                Backing::Shared { .. } => "shm",
            };
            let (res, cow) = g.resident_in(e.start, e.end).unwrap_or_default();
            let _ = writeln!(
                o,
                "{:#18x} {:#18x} {}  {:<5} {:#12x} {:>9} {:>6}  {}",
                e.start,
                e.end,
                e.perms(),
                kind,
                e.offset(),
                res,
                cow,
                String::from_utf8_lossy(g.entry_name(e))
            );
        }
        o
    })
    .ok_or_else(|| format!("pid {}: vmspace {BUSY}", p.pid))
}

/// `show callsites [pid]`: the process's patched system call sites (kern/callsite), each with
/// its call (`rax` for a hop, with the padding it hops to), its entry in the table and what
/// its first byte says now; and the counts for all processes. Nothing is brought in: a site
/// whose page is not resident shows `?`.
pub fn show_callsites(args: &str) -> Result<String, String> {
    use crate::kern::callsite;
    let p = proc_arg(args)?;
    let vm = p.user().vm.try_lock().map(|v| Arc::clone(&v)).ok_or_else(|| format!("pid {}: vmspace {BUSY}", p.pid))?;
    vm.peek(|g| {
        let byte = |addr: u64| {
            let pa = g.resident_page(addr)?;
            let mut b = [0u8];
            g.physmem().read(pa + addr % platform::PAGE_SIZE as u64, &mut b);
            Some(b[0])
        };
        let mut o = format!(
            "pid {} ({}): {} system call sites patched{}\n",
            p.pid,
            p.comm(),
            g.callsites.len(),
            if g.callsites_off { "; patching stopped here (a tracer, or a mapping over the table)" } else { "" }
        );
        o.push_str("             site   nr call                         entry  now\n");
        for (&site, s) in &g.callsites {
            use platform::stub::fast::Kind;
            let (now, nr, hop) = match s.kind {
                Kind::Mov { nr } => (
                    match (byte(site), byte(site + 5)) {
                        (Some(0xff), _) => "patched",
                        (Some(0xb8), Some(0x0f)) => "put back",
                        (Some(_), Some(_)) => "changing",
                        _ => "?",
                    },
                    Some(nr),
                    String::new(),
                ),
                Kind::Hop { pad, .. } => (
                    match byte(site) {
                        Some(0xeb) => "patched",
                        Some(0x0f) => "put back",
                        Some(_) => "changing",
                        None => "?",
                    },
                    None,
                    format!(" (hop to {pad:#x})"),
                ),
            };
            let (nr, name) = match nr {
                Some(nr) => (nr.to_string(), crate::sys::names::name(u64::from(nr)).unwrap_or("?")),
                None => ("rax".to_string(), "(the number in rax)"),
            };
            let _ = writeln!(o, "{site:#17x} {nr:>4} {name:<22} {:#10x}  {now}{hop}", s.entry);
        }
        let _ = writeln!(
            o,
            "all processes: {} sites patched, {} calls made from a site's byte 5 (a race, a restart), {} calls by the fast path{}",
            callsite::PATCHED.load(Ordering::Relaxed),
            callsite::SITE_TRAPS.load(Ordering::Relaxed),
            platform::stub::spin::STATS.fast_calls.load(Ordering::Relaxed),
            if platform::stub::spin::STATS_ON.load(Ordering::Relaxed) { "" } else { " (counted with -e sched.stats=1)" }
        );
        o
    })
    .ok_or_else(|| format!("pid {}: vmspace {BUSY}", p.pid))
}

/// `show syscalls`: what guests called that vk does not implement, and what is partial.
pub fn show_syscalls() -> String {
    use crate::sys::{COMPAT_CALLS, ENOSYS_COUNTS, Support, TABLE, names};
    let mut o = String::from("unimplemented system calls called (ENOSYS):\n");
    let mut any = false;
    for (nr, c) in ENOSYS_COUNTS.iter().enumerate() {
        let n = c.load(Ordering::Relaxed);
        if n > 0 {
            any = true;
            let _ = writeln!(o, "  {nr:>4} {:<24} {n} calls", names::name(nr as u64).unwrap_or("?"));
        }
    }
    if !any {
        o.push_str("  none\n");
    }
    let compat = COMPAT_CALLS.load(Ordering::Relaxed);
    let _ = writeln!(o, "32-bit (int 0x80) calls refused: {compat}");
    let _ = writeln!(o, "implemented: {} system calls; partly:", TABLE.len());
    let mut partial: Vec<_> = TABLE
        .iter()
        .filter_map(|s| if let Support::Partial(why) = s.support { Some((s.nr, s.name, why)) } else { None })
        .collect();
    partial.sort_by_key(|&(nr, _, _)| nr);
    for (nr, name, why) in partial {
        let _ = writeln!(o, "  {nr:>4} {name:<24} {why}");
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_syscalls_names_what_was_missing() {
        // 450 (set_mempolicy_home_node) is one vk does not implement.
        assert!(crate::sys::lookup(450).is_none());
        crate::sys::ENOSYS_COUNTS[450].fetch_add(2, Ordering::Relaxed);
        let s = show_syscalls();
        let line = s.lines().find(|l| l.contains("set_mempolicy_home_node")).unwrap_or_else(|| panic!("{s}"));
        assert!(line.trim_start().starts_with("450 ") && line.ends_with(" calls"), "{line}");
        assert!(s.contains("prlimit64") && s.contains("limits are reported; NOFILE, CORE, CPU, NPROC, AS (mmap, brk), SIGPENDING"), "{s}");
    }

    #[test]
    fn signal_sets_list_numbers() {
        assert_eq!(signal_set(0), "none");
        assert_eq!(signal_set((1 << 1) | (1 << 16)), "2,17");
    }
}
