//! Process listings from what the reader returns: BSD `ps axl` for `vps`, and FreeBSD ddb's
//! `ps` for the kernel debugger.
//!
//! ```text
//!   UID   PID  PPID CPU PRI NI   VSZ   RSS WCHAN   STAT TT       TIME COMMAND
//!     0     0     0   0 255  0     0     0 nowork  DL   ??    0:00.00 (swapper)
//!     0     0     0   1 255  0     0     0 -       RL   ??    0:03.17 (idle: cpu1)
//!     0     1     0   0  20  0  1264   512 wait    Is   ??    0:00.01 (init)
//! ```
//!
//! `ps axl` prints a line per user process and, for system processes, a line per kernel
//! thread (so every kernel thread shows up, as on DragonFly). COMMAND is always in parentheses:
//! the kernel exports `comm` but not argv, and that is how BSD ps shows a process whose
//! arguments it cannot read. Columns are as wide as their widest entry, never narrower than in
//! the header above.

use std::cmp::Reverse;
use std::fmt::Write;

use crate::abi::{pflags, pstate, tflags, tstate};
use crate::record::{Proc, Thread};

/// Sleeps longer than this are "idle" (`I`) rather than "sleeping" (`S`) (BSD's MAXSLP).
pub const IDLE_AFTER_NS: u64 = 20_000_000_000;

/// The first letter of STAT for one thread: R runnable or running, S sleeping (interruptible,
/// under 20 s), I idle (interruptible, 20 s or more), D uninterruptible, T stopped, Z dead.
pub fn state_letter(t: &Thread, now_ns: u64) -> char {
    match t.state {
        // BSD shows a process that is being created (SIDL) as R too.
        tstate::RUNNABLE | tstate::RUNNING | tstate::NEW => 'R',
        tstate::SLEEPING if t.flags & tflags::SINTR == 0 => 'D',
        tstate::SLEEPING if now_ns.saturating_sub(t.slptime_ns) >= IDLE_AFTER_NS => 'I',
        tstate::SLEEPING => 'S',
        tstate::STOPPED => 'T',
        tstate::DEAD => 'Z',
        _ => '?',
    }
}

/// How active a state letter is: a process shows its most active thread's (R > D > S > I > T > Z).
fn activity(c: char) -> u8 {
    match c {
        'R' => 6,
        'D' => 5,
        'S' => 4,
        'I' => 3,
        'T' => 2,
        'Z' => 1,
        _ => 0,
    }
}

/// The thread whose state a process shows: the most active, the first of equals.
pub fn lead_thread(p: &Proc, now_ns: u64) -> Option<&Thread> {
    p.threads.iter().min_by_key(|t| Reverse(activity(state_letter(t, now_ns))))
}

/// The STAT column: a state letter, then (in BSD's order) `<` or `N` for a raised or lowered
/// priority, `X` traced, `L` system process, `s` session leader, `+` foreground.
pub fn stat(p: &Proc, letter: char) -> String {
    let mut s = String::new();
    s.push(if p.state == pstate::ZOMBIE { 'Z' } else { letter });
    match p.nice {
        n if n < 0 => s.push('<'),
        n if n > 0 => s.push('N'),
        _ => {}
    }
    for (flag, c) in
        [(pflags::TRACED, 'X'), (pflags::SYSTEM, 'L'), (pflags::SESSION_LEADER, 's'), (pflags::FOREGROUND, '+')]
    {
        if p.flags & flag != 0 {
            s.push(c);
        }
    }
    s
}

/// The state letter of a process: its lead thread's, `R` while it is being created.
fn proc_letter(p: &Proc, now_ns: u64) -> char {
    match lead_thread(p, now_ns) {
        Some(t) => state_letter(t, now_ns),
        None if p.state == pstate::NEW => 'R',
        None if p.state == pstate::ZOMBIE => 'Z',
        None => '?',
    }
}

/// CPU time as `M:SS.CC` (minutes are not wrapped into hours, as in BSD ps).
pub fn format_time(ns: u64) -> String {
    let cs = ns / 10_000_000;
    format!("{}:{:02}.{:02}", cs / 6000, (cs / 100) % 60, cs % 100)
}

/// WCHAN: the wait message of a sleeping thread, else `-`.
fn wchan(t: &Thread) -> &str {
    if t.state == tstate::SLEEPING && !t.wmesg.is_empty() { &t.wmesg } else { "-" }
}

fn tty(p: &Proc) -> &'static str {
    if p.tty == 0 { "??" } else { "con" }
}

/// `ps axl` columns: title, narrowest width, left aligned. COMMAND is last and never padded.
const AXL_COLUMNS: [(&str, usize, bool); 13] = [
    ("UID", 5, false),
    ("PID", 5, false),
    ("PPID", 5, false),
    ("CPU", 3, false),
    ("PRI", 3, false),
    ("NI", 2, false),
    ("VSZ", 5, false),
    ("RSS", 5, false),
    ("WCHAN", 7, true),
    ("STAT", 4, true),
    ("TT", 3, true),
    ("TIME", 9, false),
    ("COMMAND", 0, true),
];

type AxlRow = [String; 13];

fn axl_row(p: &Proc, cpu: u32, pri: u32, wchan: &str, stat: String, time_ns: u64, name: &str) -> AxlRow {
    [
        p.uid.to_string(),
        p.pid.to_string(),
        p.ppid.to_string(),
        cpu.to_string(),
        pri.to_string(),
        p.nice.to_string(),
        (p.vsz_bytes / 1024).to_string(),
        p.rss_pages.saturating_mul(4).to_string(),
        wchan.to_string(),
        stat,
        tty(p).to_string(),
        format_time(time_ns),
        format!("({name})"),
    ]
}

/// The rows of one process: one, or one per kernel thread of a system process.
fn axl_rows(p: &Proc, now_ns: u64, out: &mut Vec<AxlRow>) {
    if p.flags & pflags::SYSTEM != 0 && !p.threads.is_empty() {
        for t in &p.threads {
            let stat = stat(p, state_letter(t, now_ns));
            out.push(axl_row(p, t.cpu, t.pri, wchan(t), stat, t.runtime_ns, &t.name));
        }
        return;
    }
    let first = p.threads.first();
    let (cpu, pri) = first.map_or((0, 0), |t| (t.cpu, t.pri));
    let wc = lead_thread(p, now_ns).map_or("-", wchan);
    let time = p.threads.iter().fold(0u64, |sum, t| sum.saturating_add(t.runtime_ns));
    out.push(axl_row(p, cpu, pri, wc, stat(p, proc_letter(p, now_ns)), time, &p.comm));
}

/// The `ps axl` listing of `procs`; `now_ns` is the kernel's monotonic time (ns since its
/// boot), against which sleep times decide `S` or `I`.
pub fn format_axl(procs: &[Proc], now_ns: u64) -> String {
    let mut rows = vec![AXL_COLUMNS.map(|(title, _, _)| title.to_string())];
    for p in procs {
        axl_rows(p, now_ns, &mut rows);
    }
    let mut widths = AXL_COLUMNS.map(|(_, w, _)| w);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            let (_, _, left) = AXL_COLUMNS[i];
            let sep = if i == 0 { "" } else { " " };
            let w = widths[i];
            let _ = match (i == row.len() - 1, left) {
                (true, _) => write!(out, "{sep}{cell}"),
                (false, true) => write!(out, "{sep}{cell:<w$}"),
                (false, false) => write!(out, "{sep}{cell:>w$}"),
            };
        }
        out.push('\n');
    }
    out
}

/// The ddb `ps` header.
pub const DDB_PS_HEADER: &str = "  pid  ppid  pgrp   uid  state   wmesg    wchan               cmd";

/// What a thread waits on, as ddb shows it: the wmesg and wchan columns (27 characters).
fn ddb_wait(t: &Thread) -> String {
    match t.state {
        tstate::SLEEPING => format!("{:<8} {:#018x}", t.wmesg, t.wchan),
        tstate::RUNNING => format!("CPU {}", t.cpu),
        _ => String::new(),
    }
}

/// The state column of a ddb thread line.
fn ddb_thread_state(t: &Thread, now_ns: u64) -> String {
    match t.state {
        tstate::RUNNING => "Run".to_string(),
        // An idle thread off CPU is not queued: it runs when nothing else can (FreeBSD's CanRun).
        tstate::RUNNABLE if t.flags & tflags::IDLE != 0 => "CanRun".to_string(),
        tstate::RUNNABLE => "RunQ".to_string(),
        tstate::NEW => "New".to_string(),
        _ => state_letter(t, now_ns).to_string(),
    }
}

/// A name in brackets for a system process, as ddb prints kernel processes.
fn ddb_name(p: &Proc, name: &str) -> String {
    if p.flags & pflags::SYSTEM != 0 { format!("[{name}]") } else { name.to_string() }
}

fn ddb_listing(procs: &[Proc], now_ns: u64, all_threads: bool) -> String {
    let mut out = format!("{DDB_PS_HEADER}\n");
    for p in procs {
        let threaded = p.threads.len() > 1;
        let state = stat(p, proc_letter(p, now_ns));
        let wait = match p.threads.first() {
            _ if threaded => "(threaded)".to_string(),
            Some(t) => ddb_wait(t),
            None => String::new(),
        };
        let cmd = ddb_name(p, &p.comm);
        let _ = writeln!(out, "{:>5} {:>5} {:>5} {:>5}  {state:<6}  {wait:<27}  {cmd}", p.pid, p.ppid, p.pgid, p.uid);
        if threaded || all_threads {
            for t in &p.threads {
                let state = ddb_thread_state(t, now_ns);
                let name = ddb_name(p, if t.name.is_empty() { &p.comm } else { &t.name });
                let _ = writeln!(out, "{:>6}{:19}{state:<6}  {:<27}  {name}", t.tid, "", ddb_wait(t));
            }
        }
    }
    out
}

/// FreeBSD ddb's `ps`: a line per process (`pid ppid pgrp uid state wmesg wchan cmd`); a
/// process with several threads says `(threaded)` and lists them below it by tid.
pub fn format_ddb_ps(procs: &[Proc], now_ns: u64) -> String {
    ddb_listing(procs, now_ns, false)
}

/// The ddb `ps` listing with every process's threads below it, single-threaded ones too.
pub fn format_threads(procs: &[Proc], now_ns: u64) -> String {
    ddb_listing(procs, now_ns, true)
}

#[cfg(test)]
mod tests;
