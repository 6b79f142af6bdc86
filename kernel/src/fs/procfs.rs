//! procfs: processes as files, generated when read (proc(5)).
//!
//! ```text
//!  /proc/self           → the caller's pid (a symbolic link)
//!  /proc/mounts         the mount table
//!  /proc/PID/exe        → the program's path
//!  /proc/PID/cmdline    argv, NUL-separated
//!  /proc/PID/comm       the command name
//!  /proc/PID/stat       one line, the fields ps(1) reads
//!  /proc/PID/status     "Name:\tsh" … lines
//!  /proc/PID/maps       the address space's mappings
//! ```

use std::sync::Arc;
use std::sync::atomic::Ordering;

use kvm_mem::abi::{pstate, tflags, tstate};

use crate::fs::vfs::{Attr, DirEntry, S_IFDIR, S_IFLNK, S_IFREG, Timespec, VType, Vnode, VnodeRef};
use crate::kern::errno::Errno;
use crate::kern::proc::{self, Proc};
use crate::vm::space::{Backing, PROT_EXEC, PROT_READ, PROT_WRITE};

const PROC_DEV: u64 = 3;

fn boot_time() -> Timespec {
    let ns = crate::debug::export::vk_boottime_ns.load(Ordering::Relaxed);
    Timespec { sec: (ns / 1_000_000_000) as i64, nsec: (ns % 1_000_000_000) as i64 }
}

fn attr(ino: u64, mode: u32, size: u64, uid: u32) -> Attr {
    let t = boot_time();
    let nlink = if mode & S_IFDIR != 0 { 2 } else { 1 };
    Attr { dev: PROC_DEV, ino, mode, nlink, uid, gid: uid, size, blksize: 1024, atime: t, mtime: t, ctime: t, ..Default::default() }
}

/// The files of a process directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PidFile {
    Exe,
    Cmdline,
    Comm,
    Stat,
    Status,
    Maps,
}

const PID_FILES: [(&str, PidFile); 6] = [
    ("exe", PidFile::Exe),
    ("cmdline", PidFile::Cmdline),
    ("comm", PidFile::Comm),
    ("stat", PidFile::Stat),
    ("status", PidFile::Status),
    ("maps", PidFile::Maps),
];

/// A node of procfs.
#[derive(Debug, Clone)]
enum Node {
    Root,
    SelfLink,
    Mounts,
    PidDir(i32),
    Pid(i32, PidFile),
}

/// A procfs vnode.
#[derive(Debug)]
pub struct ProcNode(Node);

/// A procfs instance (its root).
pub fn new() -> VnodeRef {
    Arc::new(ProcNode(Node::Root))
}

fn guest(pid: i32) -> Result<Arc<Proc>, Errno> {
    proc::find(pid).filter(|p| p.user.is_some()).ok_or(Errno::ENOENT)
}

fn caller_pid() -> Option<i32> {
    crate::kern::sched::curthread().and_then(|t| t.proc_()).map(|p| p.pid)
}

fn state_char(p: &Proc) -> char {
    if p.rec.state.load(Ordering::Relaxed) == pstate::ZOMBIE {
        return 'Z';
    }
    let ts = p.threads();
    let run = ts.iter().any(|t| matches!(t.state(), tstate::RUNNING | tstate::RUNNABLE));
    let sleeping_intr = ts.iter().any(|t| t.state() == tstate::SLEEPING && t.rec.flags.load(Ordering::Relaxed) & tflags::SINTR != 0);
    if run {
        'R'
    } else if sleeping_intr {
        'S'
    } else if ts.iter().any(|t| t.state() == tstate::SLEEPING) {
        'D'
    } else {
        'S'
    }
}

fn ticks(ns: u64) -> u64 {
    ns / 10_000_000
}

/// The text of a per-process file.
fn pid_text(p: &Arc<Proc>, f: PidFile) -> Result<Vec<u8>, Errno> {
    let u = p.user();
    Ok(match f {
        PidFile::Exe => return Err(Errno::EINVAL),
        PidFile::Cmdline => {
            let mut out = Vec::new();
            for a in u.argv.lock().iter() {
                out.extend_from_slice(a);
                out.push(0);
            }
            out
        }
        PidFile::Comm => format!("{}\n", p.comm()).into_bytes(),
        PidFile::Stat => {
            let r = &p.rec;
            let ppid = r.ppid.load(Ordering::Relaxed);
            let runtime: u64 = p.threads().iter().map(|t| t.rec.runtime_ns.load(Ordering::Relaxed)).sum();
            let start = ticks(r.start_ns.load(Ordering::Relaxed));
            let vm = u.vm();
            let (vsz, rss) = vm.try_lock().map_or((0, 0), |g| (g.vsz(), g.rss_pages()));
            format!(
                "{} ({}) {} {} {} {} 0 -1 4194304 0 0 0 0 {} 0 0 0 20 {} {} 0 {} {} {} 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 {} 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
                p.pid,
                p.comm(),
                state_char(p),
                ppid,
                r.pgid.load(Ordering::Relaxed),
                r.sid.load(Ordering::Relaxed),
                ticks(runtime),
                r.nice.load(Ordering::Relaxed),
                p.nthreads().max(1),
                start,
                vsz,
                rss,
                p.threads().first().map_or(0, |t| t.last_cpu()),
            )
            .into_bytes()
        }
        PidFile::Status => {
            let c = u.cred.lock().clone();
            let vm = u.vm();
            let (vsz, rss) = vm.try_lock().map_or((0, 0), |g| (g.vsz(), g.rss_pages()));
            let (blk, pend) = p.threads().first().and_then(|t| t.user.as_ref().map(|x| {
                let s = x.sigstate.sig.lock();
                (s.mask, s.pending.set)
            })).unwrap_or((0, 0));
            let sig = u.sig.lock();
            let (mut ign, mut cgt) = (0u64, 0u64);
            for s in 1..=64usize {
                let h = sig.actions[s].handler;
                if h == crate::kern::signal::SIG_IGN {
                    ign |= 1 << (s - 1);
                } else if h != crate::kern::signal::SIG_DFL {
                    cgt |= 1 << (s - 1);
                }
            }
            let state = match state_char(p) {
                'R' => "R (running)",
                'Z' => "Z (zombie)",
                'D' => "D (disk sleep)",
                _ => "S (sleeping)",
            };
            format!(
                "Name:\t{}\nUmask:\t{:04o}\nState:\t{}\nTgid:\t{}\nNgid:\t0\nPid:\t{}\nPPid:\t{}\nTracerPid:\t0\nUid:\t{}\t{}\t{}\t{}\nGid:\t{}\t{}\t{}\t{}\nFDSize:\t64\nGroups:\t{}\nVmSize:\t{:8} kB\nVmRSS:\t{:8} kB\nThreads:\t{}\nSigPnd:\t{:016x}\nShdPnd:\t{:016x}\nSigBlk:\t{:016x}\nSigIgn:\t{:016x}\nSigCgt:\t{:016x}\n",
                p.comm(),
                u.fs.lock().umask,
                state,
                p.pid,
                p.pid,
                p.rec.ppid.load(Ordering::Relaxed),
                c.uid, c.euid, c.suid, c.euid,
                c.gid, c.egid, c.sgid, c.egid,
                c.groups.iter().map(u32::to_string).collect::<Vec<_>>().join(" "),
                vsz / 1024,
                rss * 4,
                p.nthreads(),
                pend,
                sig.pending.set,
                blk,
                ign,
                cgt,
            )
            .into_bytes()
        }
        PidFile::Maps => {
            let vm = u.vm();
            let g = vm.lock();
            let mut out = String::new();
            for e in g.entries() {
                let perm = |b: u32, c: char| if e.prot & b != 0 { c } else { '-' };
                let shared = if e.shared() { 's' } else { 'p' };
                let (off, ino) = match &e.backing {
                    Backing::File { offset, vnode, .. } | Backing::SharedFile { offset, vnode } => {
                        (*offset, vnode.attr().map_or(0, |a| a.ino))
                    }
                    Backing::Shared { offset, .. } => (*offset, 0),
                    Backing::Anon => (0, 0),
                };
                let name = if e.name.is_empty() && e.start == g.brk_start && e.start != 0 { "[heap]" } else { &e.name };
                let line = format!(
                    "{:08x}-{:08x} {}{}{}{} {:08x} 00:00 {:<10} {}",
                    e.start,
                    e.end,
                    perm(PROT_READ, 'r'),
                    perm(PROT_WRITE, 'w'),
                    perm(PROT_EXEC, 'x'),
                    shared,
                    off,
                    ino,
                    name
                );
                out.push_str(line.trim_end());
                out.push('\n');
            }
            out.into_bytes()
        }
    })
}

fn mounts_text() -> Vec<u8> {
    let mut out = String::new();
    for m in crate::fs::namei::mounts() {
        let opts = if m.fstype == "hostfs" { "ro" } else { "rw" };
        out.push_str(&format!("{} {} {} {},relatime 0 0\n", if m.source.is_empty() { m.fstype } else { &m.source }, m.target, m.fstype, opts));
    }
    out.into_bytes()
}

impl ProcNode {
    fn ino(&self) -> u64 {
        match self.0 {
            Node::Root => 1,
            Node::SelfLink => 2,
            Node::Mounts => 3,
            Node::PidDir(pid) => (pid as u64) << 8,
            Node::Pid(pid, f) => ((pid as u64) << 8) | (1 + PID_FILES.iter().position(|(_, x)| *x == f).unwrap_or(0) as u64),
        }
    }

    fn text(&self) -> Result<Vec<u8>, Errno> {
        match &self.0 {
            Node::Mounts => Ok(mounts_text()),
            Node::Pid(pid, f) => pid_text(&guest(*pid)?, *f),
            _ => Err(Errno::EISDIR),
        }
    }
}

impl Vnode for ProcNode {
    fn attr(&self) -> Result<Attr, Errno> {
        let ino = self.ino();
        Ok(match &self.0 {
            Node::Root => attr(ino, S_IFDIR | 0o555, 0, 0),
            Node::SelfLink => attr(ino, S_IFLNK | 0o777, 0, 0),
            Node::Mounts => attr(ino, S_IFREG | 0o444, 0, 0),
            Node::PidDir(pid) => attr(ino, S_IFDIR | 0o555, 0, guest(*pid)?.user().cred.lock().uid),
            Node::Pid(pid, f) => {
                let uid = guest(*pid)?.user().cred.lock().uid;
                let mode = if *f == PidFile::Exe { S_IFLNK | 0o777 } else { S_IFREG | 0o444 };
                attr(ino, mode, 0, uid)
            }
        })
    }

    fn vtype(&self) -> VType {
        match self.0 {
            Node::Root | Node::PidDir(_) => VType::Dir,
            Node::SelfLink | Node::Pid(_, PidFile::Exe) => VType::Lnk,
            _ => VType::Reg,
        }
    }

    fn lookup(&self, name: &str) -> Result<VnodeRef, Errno> {
        match self.0 {
            Node::Root => match name {
                "self" => Ok(Arc::new(ProcNode(Node::SelfLink))),
                "mounts" => Ok(Arc::new(ProcNode(Node::Mounts))),
                _ => {
                    let pid: i32 = name.parse().map_err(|_| Errno::ENOENT)?;
                    guest(pid)?;
                    Ok(Arc::new(ProcNode(Node::PidDir(pid))))
                }
            },
            Node::PidDir(pid) => {
                guest(pid)?;
                let f = PID_FILES.iter().find(|(n, _)| *n == name).map(|(_, f)| *f).ok_or(Errno::ENOENT)?;
                Ok(Arc::new(ProcNode(Node::Pid(pid, f))))
            }
            _ => Err(Errno::ENOTDIR),
        }
    }

    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        match self.0 {
            Node::Root => {
                let mut v = vec![
                    DirEntry { ino: 2, name: "self".into(), vtype: VType::Lnk },
                    DirEntry { ino: 3, name: "mounts".into(), vtype: VType::Reg },
                ];
                for pid in 1..crate::kern::uproc::PID_MAX {
                    if guest(pid).is_ok() {
                        v.push(DirEntry { ino: (pid as u64) << 8, name: pid.to_string(), vtype: VType::Dir });
                    }
                }
                Ok(v)
            }
            Node::PidDir(pid) => Ok(PID_FILES
                .iter()
                .map(|(n, f)| DirEntry {
                    ino: ProcNode(Node::Pid(pid, *f)).ino(),
                    name: (*n).to_string(),
                    vtype: if *f == PidFile::Exe { VType::Lnk } else { VType::Reg },
                })
                .collect()),
            _ => Err(Errno::ENOTDIR),
        }
    }

    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        match self.0 {
            Node::SelfLink => Ok(caller_pid().ok_or(Errno::ENOENT)?.to_string().into_bytes()),
            Node::Pid(pid, PidFile::Exe) => {
                let p = guest(pid)?;
                let exe = p.user().exe.lock().clone();
                Ok(exe.ok_or(Errno::ENOENT)?.to_path_string().into_bytes())
            }
            _ => Err(Errno::EINVAL),
        }
    }

    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let text = self.text()?;
        let off = usize::try_from(off).unwrap_or(usize::MAX);
        if off >= text.len() {
            return Ok(0);
        }
        let n = buf.len().min(text.len() - off);
        buf[..n].copy_from_slice(&text[off..off + n]);
        Ok(n)
    }

    fn fs_type(&self) -> &'static str {
        "proc"
    }
}
