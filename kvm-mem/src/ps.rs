//! Process listings from what the reader returns: `ps axl` for `vps`, and the FreeBSD ddb
//! `ps` shape for the kernel debugger.

use std::fmt::Write;

use crate::abi::{pflags, pstate, tflags, tstate};
use crate::kvm::{Proc, Thread};

/// Sleeps longer than this are "idle" (`I`) rather than "sleeping" (`S`).
pub const IDLE_AFTER_NS: u64 = 20_000_000_000;

/// The first letter of STAT for one thread.
pub fn state_letter(t: &Thread, now_ns: u64) -> char {
    match t.state {
        tstate::RUNNABLE | tstate::RUNNING | tstate::NEW => 'R',
        tstate::SLEEPING if t.flags & tflags::SINTR == 0 => 'D',
        tstate::SLEEPING if now_ns.saturating_sub(t.slptime_ns) >= IDLE_AFTER_NS => 'I',
        tstate::SLEEPING => 'S',
        tstate::STOPPED => 'T',
        _ => 'Z',
    }
}

/// How active a state letter is (the process shows its most active thread's).
fn rank(c: char) -> u8 {
    match c {
        'R' => 5,
        'D' => 4,
        'S' => 3,
        'I' => 2,
        'T' => 1,
        _ => 0,
    }
}

fn stat(p: &Proc, letter: char) -> String {
    let mut s = String::new();
    s.push(if p.state == pstate::ZOMBIE { 'Z' } else { letter });
    if p.flags & pflags::SYSTEM != 0 {
        s.push('L');
    }
    if p.flags & pflags::SESSION_LEADER != 0 {
        s.push('s');
    }
    if p.flags & pflags::FOREGROUND != 0 {
        s.push('+');
    }
    s
}

/// `M:SS.CC`.
pub fn format_time(ns: u64) -> String {
    let cs = ns / 10_000_000;
    format!("{}:{:02}.{:02}", cs / 6000, (cs / 100) % 60, cs % 100)
}

fn wchan(t: &Thread) -> &str {
    if t.state == tstate::SLEEPING && !t.wmesg.is_empty() { &t.wmesg } else { "-" }
}

fn tty(p: &Proc) -> &'static str {
    if p.tty == 0 { "??" } else { "con" }
}

#[allow(clippy::too_many_arguments, reason = "one ps line has that many columns")]
fn axl_line(out: &mut String, p: &Proc, cpu: u32, pri: u32, vsz: u64, rss: u64, wchan: &str, stat: &str, time: u64, cmd: &str) {
    let _ = writeln!(
        out,
        "{:>5} {:>5} {:>5} {:>3} {:>3} {:>3} {:>6} {:>6} {:<8} {:<4} {:<3} {:>8} ({})",
        p.uid,
        p.pid,
        p.ppid,
        cpu,
        pri,
        p.nice,
        vsz,
        rss,
        wchan,
        stat,
        tty(p),
        format_time(time),
        cmd
    );
}

/// The `ps axl` listing: a line per user process, and for system processes a line per kernel
/// thread. COMMAND is in parentheses, as BSD ps prints it when it cannot read the arguments.
pub fn format_axl(procs: &[Proc], now_ns: u64) -> String {
    let mut out = String::from("  UID   PID  PPID CPU PRI  NI    VSZ    RSS WCHAN    STAT TT      TIME COMMAND\n");
    for p in procs {
        if p.flags & pflags::SYSTEM != 0 {
            for t in &p.threads {
                let letter = state_letter(t, now_ns);
                axl_line(&mut out, p, t.cpu, t.pri, 0, 0, wchan(t), &stat(p, letter), t.runtime_ns, &t.name);
            }
            continue;
        }
        let lead = p.threads.iter().max_by_key(|t| rank(state_letter(t, now_ns)));
        let letter = lead.map_or('Z', |t| state_letter(t, now_ns));
        let time: u64 = p.threads.iter().map(|t| t.runtime_ns).sum();
        let (cpu, pri, wc) = lead.map_or((0, 0, "-"), |t| (t.cpu, t.pri, wchan(t)));
        axl_line(&mut out, p, cpu, pri, p.vsz_bytes / 1024, p.rss_pages * 4, wc, &stat(p, letter), time, &p.comm);
    }
    out
}

/// FreeBSD ddb's `ps`: a line per process; processes with several threads list them below.
pub fn format_ddb_ps(procs: &[Proc], now_ns: u64) -> String {
    let mut out = String::from("  pid  ppid  pgrp   uid  state   wmesg    wchan               cmd\n");
    for p in procs {
        let lead = p.threads.iter().max_by_key(|t| rank(state_letter(t, now_ns)));
        let letter = lead.map_or('Z', |t| state_letter(t, now_ns));
        let (wm, wc) = match lead {
            Some(t) if p.threads.len() == 1 && t.state == tstate::SLEEPING => (t.wmesg.as_str(), format!("{:#018x}", t.wchan)),
            _ if p.threads.len() > 1 => ("(threaded)", String::new()),
            _ => ("", String::new()),
        };
        let _ = writeln!(
            out,
            "{:>5} {:>5} {:>5} {:>5}  {:<6}  {:<8} {:<18}  {}",
            p.pid,
            p.ppid,
            p.pgid,
            p.uid,
            stat(p, letter),
            wm,
            wc,
            p.comm
        );
        if p.threads.len() > 1 {
            for t in &p.threads {
                let (st, wm, wc) = match t.state {
                    tstate::SLEEPING => (if t.flags & tflags::SINTR != 0 { "S" } else { "D" }, t.wmesg.clone(), format!("{:#018x}", t.wchan)),
                    tstate::RUNNING => ("Run", format!("CPU {}", t.cpu), String::new()),
                    tstate::RUNNABLE if t.flags & tflags::IDLE != 0 => ("CanRun", String::new(), String::new()),
                    tstate::RUNNABLE | tstate::NEW => ("RunQ", String::new(), String::new()),
                    tstate::STOPPED => ("T", String::new(), String::new()),
                    _ => ("Z", String::new(), String::new()),
                };
                let _ = writeln!(out, "{:>12} {:>17}  {:<6}  {:<8} {:<18}  {}", t.tid, "", st, wm, wc, t.name);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thread(tid: u64, name: &str, state: u32, flags: u32, wmesg: &str) -> Thread {
        Thread { tid, name: name.into(), state, flags, wmesg: wmesg.into(), wchan: 0x1000, cpu: 1, pri: 20, ..Default::default() }
    }

    fn procs() -> Vec<Proc> {
        vec![
            Proc {
                pid: 0,
                comm: "swapper".into(),
                flags: pflags::SYSTEM | pflags::SESSION_LEADER,
                state: pstate::ACTIVE,
                threads: vec![
                    thread(100000, "swapper", tstate::SLEEPING, 0, "nowork"),
                    thread(100001, "idle: cpu0", tstate::RUNNING, tflags::IDLE | tflags::KTHREAD, ""),
                    Thread { runtime_ns: 61_230_000_000, ..thread(100002, "syncer", tstate::SLEEPING, 0, "syncer") },
                ],
                ..Default::default()
            },
            Proc {
                pid: 7,
                ppid: 1,
                uid: 1000,
                comm: "sh".into(),
                state: pstate::ACTIVE,
                vsz_bytes: 4 << 20,
                rss_pages: 10,
                threads: vec![Thread { slptime_ns: 0, ..thread(7, "sh", tstate::SLEEPING, tflags::SINTR, "wait") }],
                ..Default::default()
            },
        ]
    }

    #[test]
    fn axl_has_a_line_per_kernel_thread_and_per_user_process() {
        let out = format_axl(&procs(), 30_000_000_000);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 5, "{out}");
        assert!(lines[0].starts_with("  UID   PID  PPID CPU PRI  NI    VSZ    RSS WCHAN"));
        assert!(lines[1].ends_with("(swapper)") && lines[1].contains("nowork") && lines[1].contains(" DLs "), "{out}");
        assert!(lines[2].ends_with("(idle: cpu0)") && lines[2].contains(" RLs "), "{out}");
        assert!(lines[3].contains("1:01.23") && lines[3].ends_with("(syncer)"), "{out}");
        assert!(lines[4].contains(" I ") && lines[4].contains("wait") && lines[4].contains(" 4096 ") && lines[4].ends_with("(sh)"), "{out}");
    }

    #[test]
    fn state_letters() {
        let now = 100_000_000_000;
        let mut t = thread(1, "x", tstate::SLEEPING, tflags::SINTR, "w");
        t.slptime_ns = now - 1;
        assert_eq!(state_letter(&t, now), 'S');
        t.slptime_ns = 0;
        assert_eq!(state_letter(&t, now), 'I');
        t.flags = 0;
        assert_eq!(state_letter(&t, now), 'D');
        t.state = tstate::STOPPED;
        assert_eq!(state_letter(&t, now), 'T');
        t.state = tstate::DEAD;
        assert_eq!(state_letter(&t, now), 'Z');
    }

    #[test]
    fn ddb_ps_lists_threads_of_threaded_processes() {
        let out = format_ddb_ps(&procs(), 0);
        assert!(out.contains("(threaded)"), "{out}");
        assert!(out.contains("100001") && out.contains("CPU 1") && out.contains("idle: cpu0"), "{out}");
        assert!(out.contains("syncer") && out.contains("0x0000000000001000"), "{out}");
        let sh = out.lines().find(|l| l.ends_with(" sh")).unwrap();
        assert!(sh.contains("wait"), "{out}");
    }

    #[test]
    fn times() {
        assert_eq!(format_time(0), "0:00.00");
        assert_eq!(format_time(61_230_000_000), "1:01.23");
        assert_eq!(format_time(3_600_000_000_000), "60:00.00");
    }
}
