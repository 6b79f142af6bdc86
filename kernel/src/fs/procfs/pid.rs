//! The per-process files of procfs (proc(5)): `/proc/PID/{stat,status,cmdline,environ,comm,maps,auxv}`,
//! the `fd/` links and, per thread, `task/TID/{stat,status,comm}`.
//!
//! Times are in clock ticks (USER_HZ, 100 a second) since boot, as `/proc/uptime` counts.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use kvm_mem::abi::tflags;

use crate::kern::uproc::{pid_of, tid_of};
use crate::fs::file::File;
use crate::fs::vfs::VType;
use crate::kern::cputime::{self, Times};
use crate::kern::errno::Errno;
use crate::kern::proc::{Proc, UProc};
use crate::kern::signal::{SIG_DFL, SIG_IGN};
use crate::kern::thread::{Thread, ThreadState};
use crate::vm::space::{Backing, PROT_EXEC, PROT_WRITE};

/// Clock ticks a second (sysconf(_SC_CLK_TCK)).
pub const USER_HZ: u64 = 100;

/// ns to clock ticks.
pub fn ticks(ns: u64) -> u64 {
    ns / (1_000_000_000 / USER_HZ)
}

/// The files of a process (or thread) directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PidFile {
    Exe,
    Cmdline,
    Auxv,
    Comm,
    Stat,
    Status,
    Maps,
    Mounts,
    Mountinfo,
    Limits,
    /// The process's memory, read and written at its addresses (a debugger's: see
    /// `kern::ptrace::mem_rw`); not a text.
    Mem,
    Environ,
    /// One u64 per page: present, file, exclusive, frame (vmfiles.rs); not a text.
    Pagemap,
    /// Each mapping's memory (vmfiles.rs), and all of them summed up.
    Smaps,
    SmapsRollup,
}

/// Names and files of `/proc/PID/` (besides the `fd` and `task` directories).
pub const PID_FILES: [(&str, PidFile); 15] = [
    ("environ", PidFile::Environ),
    ("exe", PidFile::Exe),
    ("cmdline", PidFile::Cmdline),
    ("auxv", PidFile::Auxv),
    ("comm", PidFile::Comm),
    ("stat", PidFile::Stat),
    ("status", PidFile::Status),
    ("maps", PidFile::Maps),
    ("mounts", PidFile::Mounts),
    ("mountinfo", PidFile::Mountinfo),
    ("limits", PidFile::Limits),
    ("mem", PidFile::Mem),
    ("pagemap", PidFile::Pagemap),
    ("smaps", PidFile::Smaps),
    ("smaps_rollup", PidFile::SmapsRollup),
];

impl PidFile {
    pub fn index(self) -> u64 {
        PID_FILES.iter().position(|(_, f)| *f == self).unwrap_or(0) as u64
    }

    pub fn vtype(self) -> VType {
        if self == PidFile::Exe { VType::Lnk } else { VType::Reg }
    }
}

/// A thread's state letter (proc(5): R running or runnable, S interruptible sleep, D
/// uninterruptible sleep, T stopped, t stopped by its tracer, Z zombie).
fn thread_state(td: &Thread, stopped: bool) -> char {
    let st = td.state();
    // In a ptrace stop from the moment it is reported (Linux sets TASK_TRACED before it
    // notifies the tracer), though the thread may still be on its way to sleep.
    if td.as_user().is_some_and(crate::kern::ptrace::in_stop) {
        return 't';
    }
    if stopped && st != ThreadState::Running {
        return 'T';
    }
    match st {
        ThreadState::Running | ThreadState::Runnable | ThreadState::New => 'R',
        ThreadState::Sleeping if td.rec.flags.load(Ordering::Relaxed) & tflags::SINTR == 0 => 'D',
        ThreadState::Stopped => 'T',
        ThreadState::Dead => 'X',
        _ => 'S',
    }
}

/// A process's state letter: its "most active" thread's.
fn proc_state(p: &UProc, only: Option<&Thread>) -> char {
    if p.is_zombie() {
        return 'Z';
    }
    let stopped = p.user().jobctl.lock().stopped;
    if let Some(td) = only {
        return thread_state(td, stopped);
    }
    // The process's state is its leader's (Linux's /proc/PID/stat shows the group leader's
    // task state); once the leader has gone, the busiest of the threads left.
    let threads = p.threads();
    if let Some(leader) = threads.iter().find(|t| crate::kern::uproc::pid_of(t.tid()) == Some(p.pid)) {
        return thread_state(leader, stopped);
    }
    let letters: Vec<char> = threads.iter().map(|t| thread_state(t, stopped)).collect();
    ['R', 'D', 'S', 'T', 't'].into_iter().find(|c| letters.contains(c)).unwrap_or('S')
}

fn state_name(c: char) -> &'static str {
    match c {
        'R' => "R (running)",
        'D' => "D (disk sleep)",
        'T' => "T (stopped)",
        't' => "t (tracing stop)",
        'Z' => "Z (zombie)",
        'X' => "X (dead)",
        _ => "S (sleeping)",
    }
}

/// The signal sets of a process (or one thread): (pending for the thread, pending for the
/// process, blocked, ignored, caught).
fn sigsets(p: &UProc, td: Option<&Thread>) -> (u64, u64, u64, u64, u64) {
    let (blk, pend) = td
        .and_then(|t| t.as_user())
        .map(|u| {
            let s = u.sigstate.sig.lock();
            (s.mask, s.pending.set)
        })
        .unwrap_or((0, 0));
    let sig = p.user().sig.lock();
    let (mut ign, mut cgt) = (0u64, 0u64);
    for s in 1..=64usize {
        let h = sig.actions[s].handler;
        if h == SIG_IGN {
            ign |= 1 << (s - 1);
        } else if h != SIG_DFL {
            cgt |= 1 << (s - 1);
        }
    }
    (pend, sig.pending.set, blk, ign, cgt)
}

/// Address-space figures: (vsize bytes, rss pages, start/end of code, stack start, brk start,
/// data bytes, stack bytes, text bytes). Zeros when the map is busy (an exec or fault in
/// progress holds it; a read of procfs never waits for one).
struct VmFigures {
    vsize: u64,
    rss: u64,
    start_code: u64,
    end_code: u64,
    start_stack: u64,
    start_brk: u64,
    data: u64,
    stack: u64,
    text: u64,
    /// Locked bytes (VmLck).
    locked: u64,
}

fn vm_figures(p: &UProc) -> VmFigures {
    let mut f = VmFigures {
        vsize: 0,
        rss: 0,
        start_code: 0,
        end_code: 0,
        start_stack: 0,
        start_brk: 0,
        data: 0,
        stack: 0,
        text: 0,
        locked: 0,
    };
    let vm = p.user().vm();
    let Some(g) = vm.try_read() else { return f };
    f.vsize = g.vsz();
    f.rss = g.rss_pages();
    f.locked = g.locked_bytes();
    f.start_brk = g.brk_start;
    let exe = p.user().exe.lock().as_ref().map(|n| n.to_path_bytes());
    for e in g.entries() {
        let len = e.end - e.start;
        if e.name == b"[stack]" {
            f.start_stack = e.end;
            f.stack += len;
        } else if e.prot & PROT_EXEC != 0 && exe.as_deref() == Some(&e.name[..]) {
            if f.start_code == 0 {
                f.start_code = e.start;
            }
            f.end_code = f.end_code.max(e.end);
            f.text += len;
        } else if e.prot & PROT_WRITE != 0 && !e.shared() {
            f.data += len;
        }
    }
    f
}

/// Thread `tid` of `p` (ESRCH when it has gone).
pub fn thread_of(p: &Proc, tid: i32) -> Result<Arc<Thread>, Errno> {
    p.threads().into_iter().find(|t| pid_of(t.tid()) == Some(tid)).ok_or(Errno::ESRCH)
}

/// The text of a process file, or with `td` of a thread's.
/// The text of file `f` of process `p` (or of its thread `td`); `permitted`: whether the reader
/// may look into the process (see `may_inspect` in procfs/mod.rs), else stat's private fields
/// read as Linux shows them to others.
pub fn text(p: &UProc, td: Option<&Thread>, f: PidFile, permitted: bool) -> Result<Vec<u8>, Errno> {
    Ok(match f {
        PidFile::Exe => return Err(Errno::EINVAL),
        PidFile::Mem | PidFile::Pagemap => return Err(Errno::EIO),
        PidFile::Cmdline => {
            let mut out = Vec::new();
            if !p.is_zombie() {
                for a in p.user().argv.lock().iter() {
                    out.extend_from_slice(a);
                    out.push(0);
                }
            }
            out
        }
        // proc(5): the auxiliary vector exec passed, as (type, value) words to AT_NULL.
        PidFile::Auxv => if p.is_zombie() { Vec::new() } else { p.user().auxv.lock().clone() },
        // proc(5): the environment the program was started with.
        PidFile::Environ => if p.is_zombie() { Vec::new() } else { p.user().environ.lock().clone() },
        PidFile::Comm => format!("{}\n", comm(p, td)).into_bytes(),
        PidFile::Stat => stat(p, td, permitted).into_bytes(),
        PidFile::Status => status(p, td).into_bytes(),
        PidFile::Maps => maps(p),
        PidFile::Smaps => if p.is_zombie() { Vec::new() } else { super::vmfiles::smaps(p, false) },
        PidFile::SmapsRollup => if p.is_zombie() { Vec::new() } else { super::vmfiles::smaps(p, true) },
        // One mount namespace: every process sees the same table.
        PidFile::Mounts => crate::fs::procfs::system::mounts(),
        PidFile::Mountinfo => crate::fs::procfs::system::mountinfo(),
        PidFile::Limits => crate::fs::procfs::fdinfo::limits(p),
    })
}

fn comm(p: &Proc, td: Option<&Thread>) -> String {
    match td {
        Some(t) if t.tid() != tid_of(p.pid) => t.name().to_string(),
        _ => p.comm(),
    }
}

/// `/proc/PID/stat`: the 52 fields of proc(5), in order.
/// /proc/PID/stat. Without `permitted` (another user's process), the addresses and the exit
/// code are hidden as Linux's do_task_stat hides them: start_code and end_code read 1 (0 for a
/// process without memory), start_stack, the break and the exit code 0.
fn stat(p: &UProc, td: Option<&Thread>, permitted: bool) -> String {
    let r = &p.rec;
    let u = p.user();
    let zombie = p.is_zombie();
    let times = match td {
        Some(t) => cputime::thread_times(t),
        None => cputime::proc_times(p),
    };
    let children: Times = if td.is_none() { *u.times.children.lock() } else { Times::default() };
    let vm = if zombie { vm_figures_empty() } else { vm_figures(p) };
    let first = p.threads().first().cloned();
    let focus = td.or(first.as_deref());
    let (pend, ppend, blk, ign, cgt) = sigsets(p, focus);
    let nice = r.nice.load(Ordering::Relaxed);
    let tty = r.tty.load(Ordering::Relaxed);
    let cpu = focus.map_or(0, |t| t.last_cpu());
    let state = proc_state(p, td);
    let rsslim = u.rlimits.lock()[5].0;
    let exit_code = if zombie && permitted { r.xstat.load(Ordering::Relaxed) } else { 0 };
    let hidden = |v: u64, shown_as: u64| if permitted || v == 0 { v } else { shown_as };
    let has_mm = !zombie;
    let (start_code, end_code) = if has_mm && !permitted { (1, 1) } else { (vm.start_code, vm.end_code) };
    let pid = td.map_or(tid_of(p.pid), |t| t.tid());
    let fields: [String; 50] = [
        state.to_string(),
        r.ppid.load(Ordering::Relaxed).to_string(),
        r.pgid.load(Ordering::Relaxed).to_string(),
        r.sid.load(Ordering::Relaxed).to_string(),
        tty.to_string(),
        crate::kern::tty::ctty::tpgid(p).to_string(),
        "4194304".into(), // flags: PF_RANDOMIZE
        "0".into(),       // minflt
        "0".into(),       // cminflt
        "0".into(),       // majflt
        "0".into(),       // cmajflt
        ticks(times.user_ns).to_string(),
        ticks(times.sys_ns).to_string(),
        ticks(children.user_ns).to_string(),
        ticks(children.sys_ns).to_string(),
        (20 + nice).to_string(), // priority
        nice.to_string(),
        p.nthreads().to_string(),
        "0".into(), // itrealvalue
        ticks(r.start_ns.load(Ordering::Relaxed)).to_string(),
        vm.vsize.to_string(),
        vm.rss.to_string(),
        rsslim.to_string(),
        start_code.to_string(),
        end_code.to_string(),
        hidden(vm.start_stack, 0).to_string(),
        "0".into(), // kstkesp
        "0".into(), // kstkeip
        (pend | ppend).to_string(),
        blk.to_string(),
        ign.to_string(),
        cgt.to_string(),
        "0".into(), // wchan: 0, as Linux prints it since 5.16
        "0".into(), // nswap
        "0".into(), // cnswap
        u.exit_signal.load(Ordering::Relaxed).to_string(),
        cpu.to_string(),
        "0".into(), // rt_priority
        "0".into(), // policy: SCHED_OTHER
        "0".into(), // delayacct_blkio_ticks
        "0".into(), // guest_time
        "0".into(), // cguest_time
        "0".into(), // start_data
        "0".into(), // end_data
        hidden(vm.start_brk, 0).to_string(),
        "0".into(), // arg_start
        "0".into(), // arg_end
        "0".into(), // env_start
        "0".into(), // env_end
        exit_code.to_string(),
    ];
    format!("{} ({}) {}\n", pid, comm(p, td), fields.join(" "))
}

fn vm_figures_empty() -> VmFigures {
    VmFigures { vsize: 0, rss: 0, start_code: 0, end_code: 0, start_stack: 0, start_brk: 0, data: 0, stack: 0, text: 0, locked: 0 }
}

/// `/proc/PID/status`: "Name:\tsh" lines (proc(5)).
fn status(p: &UProc, td: Option<&Thread>) -> String {
    let u = p.user();
    let zombie = p.is_zombie();
    let c = u.cred.lock().clone();
    let vm = if zombie { vm_figures_empty() } else { vm_figures(p) };
    let first = p.threads().first().cloned();
    let (pend, ppend, blk, ign, cgt) = sigsets(p, td.or(first.as_deref()));
    let fdsize = u.files().lock().iter().last().map_or(0, |(fd, _)| fd.unsigned_abs() + 1).next_multiple_of(64);
    let switches: u64 = match td {
        Some(t) => t.rec.switches.load(Ordering::Relaxed),
        None => p.threads().iter().map(|t| t.rec.switches.load(Ordering::Relaxed)).sum(),
    };
    let pid = td.map_or(tid_of(p.pid), |t| t.tid());
    let mut s = String::new();
    let mut line = |k: &str, v: String| {
        s.push_str(k);
        s.push_str(":\t");
        s.push_str(&v);
        s.push('\n');
    };
    line("Name", comm(p, td));
    line("Umask", format!("{:04o}", u.fs.lock().umask));
    line("State", state_name(proc_state(p, td)).into());
    line("Tgid", p.pid.to_string());
    line("Ngid", "0".into());
    line("Pid", pid.to_string());
    line("PPid", p.rec.ppid.load(Ordering::Relaxed).to_string());
    let tracer = match td.and_then(|t| t.as_user()) {
        Some(u) => crate::kern::ptrace::thread_tracer(u),
        None => crate::kern::ptrace::tracer_pid(p),
    };
    line("TracerPid", tracer.to_string());
    line("Uid", format!("{}\t{}\t{}\t{}", c.uid, c.euid, c.suid, c.fsuid));
    line("Gid", format!("{}\t{}\t{}\t{}", c.gid, c.egid, c.sgid, c.fsgid));
    line("FDSize", fdsize.to_string());
    line("Groups", c.groups.iter().map(u32::to_string).collect::<Vec<_>>().join(" "));
    if !zombie {
        line("VmPeak", format!("{:8} kB", vm.vsize / 1024));
        line("VmSize", format!("{:8} kB", vm.vsize / 1024));
        line("VmLck", format!("{:8} kB", vm.locked / 1024));
        line("VmHWM", format!("{:8} kB", vm.rss * 4));
        line("VmRSS", format!("{:8} kB", vm.rss * 4));
        line("VmData", format!("{:8} kB", vm.data / 1024));
        line("VmStk", format!("{:8} kB", vm.stack / 1024));
        line("VmExe", format!("{:8} kB", vm.text / 1024));
        line("VmSwap", format!("{:8} kB", 0));
    }
    line("Threads", p.nthreads().to_string());
    line("SigQ", format!("0/{}", crate::kern::uproc::PID_MAX));
    line("SigPnd", format!("{pend:016x}"));
    line("ShdPnd", format!("{ppend:016x}"));
    line("SigBlk", format!("{blk:016x}"));
    line("SigIgn", format!("{ign:016x}"));
    line("SigCgt", format!("{cgt:016x}"));
    line("CapInh", format!("{:016x}", c.cap_inheritable));
    line("CapPrm", format!("{:016x}", c.cap_permitted));
    line("CapEff", format!("{:016x}", c.cap_effective));
    line("CapBnd", format!("{:016x}", c.cap_bounding));
    line("CapAmb", "0000000000000000".into());
    line("NoNewPrivs", "0".into());
    line("Seccomp", "0".into());
    line("Cpus_allowed_list", format!("0-{}", platform::cpu::ncpus().saturating_sub(1)));
    line("voluntary_ctxt_switches", switches.to_string());
    line("nonvoluntary_ctxt_switches", "0".into());
    s
}

/// `/proc/PID/maps`: one line per mapping. A name is its bytes as they are, but for a newline,
/// which shows as `\012` (Linux's seq_file_path), so that every mapping stays one line.
fn maps(p: &UProc) -> Vec<u8> {
    let vm = p.user().vm();
    let g = vm.read();
    let mut out = Vec::new();
    for e in g.entries() {
        map_line(&g, e, &mut out);
    }
    out
}

/// One mapping's line of /proc/PID/maps (and the head of its /proc/PID/smaps record).
pub(super) fn map_line(g: &crate::vm::space::AddressSpace, e: &crate::vm::entry::MapEntry, out: &mut Vec<u8>) {
    let ino = match &e.backing {
        Backing::File { vnode, .. } | Backing::SharedFile { vnode, .. } => vnode.attr().map_or(0, |a| a.ino),
        Backing::Shared { .. } | Backing::Anon => 0,
    };
    let head = format!("{:08x}-{:08x} {} {:08x} 00:00 {:<10} ", e.start, e.end, e.perms(), e.offset(), ino);
    let name = g.entry_name(e);
    out.extend_from_slice(if name.is_empty() { head.trim_end() } else { &head }.as_bytes());
    for &b in name {
        if b == b'\n' {
            out.extend_from_slice(b"\\012");
        } else {
            out.push(b);
        }
    }
    out.push(b'\n');
}

/// Where `/proc/PID/fd/N` points: the path it was opened by, `pipe:[ino]` for a pipe,
/// `/dev/console` for the console init was given, `anon_inode:[…]` otherwise.
pub fn fd_link(f: &File) -> Vec<u8> {
    if let Some(np) = &f.path {
        return np.to_path_bytes();
    }
    let v = &f.vnode;
    if let Some(m) = v.as_any().and_then(|a| a.downcast_ref::<crate::fs::memfd::MemFd>()) {
        return m.link_text();
    }
    if v.is_tty() {
        return b"/dev/console".to_vec();
    }
    let ino = v.attr().map_or(0, |a| a.ino);
    match v.vtype() {
        VType::Fifo => format!("pipe:[{ino}]").into_bytes(),
        VType::Sock => format!("socket:[{ino}]").into_bytes(),
        _ => format!("anon_inode:[{}]", v.fs().type_name()).into_bytes(),
    }
}

/// The open file at `fd` of `p` (ENOENT when closed).
pub fn fd_file(p: &UProc, fd: i32) -> Result<Arc<File>, Errno> {
    p.user().files().lock().get(fd).map_err(|_| Errno::ENOENT)
}

/// The open descriptors of `p`.
pub fn open_fds(p: &UProc) -> Vec<i32> {
    p.user().files().lock().open_fds().collect()
}
