//! Core files (core(5)): a guest process killed by a signal whose default action is "Core"
//! (signal(7): SIGQUIT, SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE, SIGSEGV, SIGXCPU, SIGXFSZ,
//! SIGSYS) with RLIMIT_CORE of at least a page writes an ELF core of itself, as Linux's
//! `do_coredump` does, and its wait status gets WCOREDUMP (0x80).
//!
//! * **Who is in it** (Linux's `zap_threads` / `coredump_wait`): the dumping thread registers
//!   the dump and tells every other thread to exit; each of them, on its way out
//!   ([`exit_wait`], the first thing `exit::exit` does), leaves its registers, FPU state and
//!   signal state in the dump's record, then waits until the core is written. The dumping
//!   thread waits for all of them (at most [`GATHER_TIMEOUT`]) and writes one NT_PRSTATUS each.
//! * **Where** (`/proc/sys/kernel/core_pattern`, default `core`): a path, relative to the
//!   process's working directory, with `%p %P %i %I %u %g %s %t %h %e %E %c %%` replaced as
//!   Linux does; a pattern starting with `|` (a pipe to a program) is not supported and is
//!   refused when written.
//! * **How** (`fs/coredump.c`): through the VFS with the process's credentials — an old file
//!   of that name unlinked, then a new one created exclusively, 0600 (any error, EACCES
//!   included, means no core; so does a file system that does not keep the owner or mode); at
//!   most RLIMIT_CORE bytes (a core cut short by the limit keeps the writes that fit whole,
//!   and counts as dumped, as on Linux). The layout is in [`image`].
//!
//! Lock order: `coredump` (the dumps in progress) is a leaf, also taken under a sleep-queue
//! bucket while a thread checks whether to go on waiting.

pub mod image;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use platform::stub::UserRegs;
use platform::sync::SpinLock;

use crate::abi::signal::Siginfo;
use crate::fs::file::{File, O_WRONLY};
use crate::fs::namei::{self, NamePath};
use crate::fs::vfs::VType;
use crate::kern::errno::Errno;
use crate::kern::proc::UProc;
use crate::kern::sleep::{SleepOpts, sleepq_lock, tsleep_locked, wakeup, wchan_of};
use crate::kern::thread::UThread;
use crate::vm::space::PAGE;
use image::{ProcInfo, Segment, ThreadSnap};

/// RLIMIT_CORE's index.
const RLIMIT_CORE: usize = linux_raw_sys::general::RLIMIT_CORE as usize;
/// The wait status bit of a dumped core (WCOREDUMP).
pub const WCOREFLAG: i32 = 0x80;
/// Linux's CORENAME_MAX_SIZE: the longest pattern and the longest name made from it.
pub const CORENAME_MAX: usize = 128;
/// How long the dumping thread waits for the other threads to stop.
pub const GATHER_TIMEOUT: Duration = Duration::from_secs(5);
/// Pages read from the address space at a time (under its lock), then written.
const CHUNK_PAGES: u64 = 16;

static CORE_PATTERN: SpinLock<Vec<u8>> = SpinLock::new("core_pattern", Vec::new());

/// `/proc/sys/kernel/core_pattern` (`core` until set).
pub fn core_pattern() -> Vec<u8> {
    let p = CORE_PATTERN.lock().clone();
    if p.is_empty() { b"core".to_vec() } else { p }
}

/// Set the pattern. EINVAL for a pipe (`|program`), which vk does not run, and for a pattern
/// of CORENAME_MAX bytes or more.
pub fn set_core_pattern(p: &[u8]) -> Result<(), Errno> {
    if p.first() == Some(&b'|') || p.len() >= CORENAME_MAX {
        return Err(Errno::EINVAL);
    }
    *CORE_PATTERN.lock() = p.to_vec();
    Ok(())
}

/// What the `%` specifiers of core(5) stand for.
#[derive(Debug, Clone, Default)]
pub struct NameParts {
    pub pid: i32,
    pub tid: i32,
    pub uid: u32,
    pub gid: u32,
    pub sig: i32,
    pub time_s: i64,
    pub hostname: Vec<u8>,
    pub comm: Vec<u8>,
    pub exe: Vec<u8>,
    pub limit: u64,
}

/// The core's file name from `pattern` (core(5)): unknown specifiers and a trailing `%` are
/// dropped; `/` in the command name or path becomes `!`; at most CORENAME_MAX - 1 bytes.
pub fn format_corename(pattern: &[u8], n: &NameParts) -> Vec<u8> {
    let bang = |s: &[u8]| s.iter().map(|&b| if b == b'/' { b'!' } else { b }).collect::<Vec<u8>>();
    let mut out = Vec::new();
    let mut it = pattern.iter();
    while let Some(&c) = it.next() {
        if c != b'%' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some(b'%') => out.push(b'%'),
            Some(b'p' | b'P') => out.extend(n.pid.to_string().bytes()),
            Some(b'i' | b'I') => out.extend(n.tid.to_string().bytes()),
            Some(b'u') => out.extend(n.uid.to_string().bytes()),
            Some(b'g') => out.extend(n.gid.to_string().bytes()),
            Some(b's') => out.extend(n.sig.to_string().bytes()),
            Some(b't') => out.extend(n.time_s.to_string().bytes()),
            Some(b'h') => out.extend(&n.hostname),
            Some(b'e') => out.extend(bang(&n.comm)),
            Some(b'E') => out.extend(bang(&n.exe)),
            Some(b'c') => out.extend(if n.limit == u64::MAX { "unlimited".to_string() } else { n.limit.to_string() }.bytes()),
            _ => {}
        }
    }
    out.truncate(CORENAME_MAX - 1);
    out
}

/// A dump in progress: the process (by record address), its dumping thread, and what the
/// other threads left on their way out.
struct Dumping {
    rec: u64,
    dumper: u64,
    arrived: Vec<ThreadSnap>,
}

static DUMPS: SpinLock<Vec<Dumping>> = SpinLock::new("coredump", Vec::new());
/// Dumps in progress (so an exiting thread looks at the table only when there are some).
static NDUMPS: AtomicUsize = AtomicUsize::new(0);

fn chan() -> u64 {
    wchan_of(&DUMPS)
}

/// A thread's part of the core: `regs` are its registers now.
fn snapshot(td: &UThread, regs: &UserRegs) -> ThreadSnap {
    let u = td.user();
    let (sigmask, sigpend) = {
        let s = u.sigstate.sig.lock();
        (s.mask, s.pending.set)
    };
    ThreadSnap {
        tid: crate::kern::uproc::pid_of(td.tid()).unwrap_or(0),
        regs: *regs,
        fs_base: u.fs_base.load(Ordering::Relaxed),
        fpstate: u.stub.lock().as_ref().and_then(|s| s.fpstate()),
        sigmask,
        sigpend,
        times: crate::kern::cputime::thread_times(td),
    }
}

/// Called by every exiting guest thread first: if its process is dumping core and another
/// thread is writing it, leave this thread's state for the core and wait until it is written
/// (the memory and the other threads' state must not change under the writer).
pub fn exit_wait(td: &UThread, p: &UProc) {
    if NDUMPS.load(Ordering::Acquire) == 0 {
        return;
    }
    let rec = p.rec_addr();
    let dumping = |d: &Dumping| d.rec == rec && d.dumper != td.tid();
    if !DUMPS.lock().iter().any(dumping) {
        return;
    }
    let regs = *td.user().regs.lock();
    let snap = snapshot(td, &regs);
    {
        let mut dumps = DUMPS.lock();
        let Some(d) = dumps.iter_mut().find(|d| dumping(d)) else { return };
        d.arrived.push(snap);
    }
    wakeup(chan());
    loop {
        let g = sleepq_lock(chan());
        if !DUMPS.lock().iter().any(|d| d.rec == rec) {
            return;
        }
        tsleep_locked(g, "coredump", SleepOpts::timeout(Duration::from_millis(100)));
    }
}

/// Why no core was written (kept in the message buffer: `dmesg` tells).
fn note_failure(p: &UProc, name: &[u8], why: &str) {
    let line = format!("pid {} ({}): core dump to {} failed: {why}\n", p.pid, p.comm(), String::from_utf8_lossy(name));
    crate::kern::printf::msgbuf_append(line.as_bytes());
}

/// The calling thread dies of `info`'s signal, whose default action dumps core: write the
/// core if RLIMIT_CORE allows. Returns whether a core was written (WCOREDUMP is then
/// in the process's exit status). Every other thread of the process is told to exit.
pub fn do_coredump(td: &UThread, p: &UProc, regs: &UserRegs, info: &Siginfo) -> bool {
    let limit = p.user().rlimits.lock().get(RLIMIT_CORE).map_or(0, |l| l.0);
    if limit < PAGE || crate::kern::exit::exiting(p) {
        return false;
    }
    let rec = p.rec_addr();
    {
        let mut dumps = DUMPS.lock();
        if dumps.iter().any(|d| d.rec == rec) {
            return false; // another thread of the process is dumping
        }
        dumps.push(Dumping { rec, dumper: td.tid(), arrived: Vec::new() });
        NDUMPS.fetch_add(1, Ordering::AcqRel);
    }
    let sig = info.si_signo;
    crate::kern::signal::kill_process(p, crate::kern::exit::sigstatus(sig));
    let others = gather(td, p);
    let mut threads = vec![snapshot(td, regs)];
    threads.extend(others);
    let written = write_core(td, p, &threads, info, limit);
    {
        let mut dumps = DUMPS.lock();
        dumps.retain(|d| d.rec != rec);
        NDUMPS.fetch_sub(1, Ordering::AcqRel);
    }
    wakeup(chan());
    if written && let Some(st) = p.user().exit_status.lock().as_mut() {
        *st |= WCOREFLAG;
    }
    written
}

/// Wait until every other thread of `p` has left its state (or [`GATHER_TIMEOUT`] passed);
/// returns their states by tid.
fn gather(td: &UThread, p: &UProc) -> Vec<ThreadSnap> {
    let rec = p.rec_addr();
    let deadline = platform::time::uptime_ns().saturating_add(u64::try_from(GATHER_TIMEOUT.as_nanos()).unwrap_or(u64::MAX));
    loop {
        let others: Vec<i32> = p
            .threads()
            .iter()
            .filter(|t| t.tid() != td.tid())
            .filter_map(|t| crate::kern::uproc::pid_of(t.tid()))
            .collect();
        let g = sleepq_lock(chan());
        let all_in = {
            let dumps = DUMPS.lock();
            dumps.iter().find(|d| d.rec == rec).is_none_or(|d| others.iter().all(|t| d.arrived.iter().any(|a| a.tid == *t)))
        };
        if all_in || platform::time::uptime_ns() >= deadline {
            drop(g);
            break;
        }
        tsleep_locked(g, "coredump", SleepOpts::timeout(Duration::from_millis(20)));
    }
    let mut snaps = DUMPS.lock().iter_mut().find(|d| d.rec == rec).map(|d| std::mem::take(&mut d.arrived)).unwrap_or_default();
    snaps.sort_by_key(|s| s.tid);
    snaps
}

/// The process part of the notes.
fn proc_info(p: &UProc, info: &Siginfo) -> ProcInfo {
    let cred = p.user().cred();
    ProcInfo {
        pid: p.pid,
        ppid: p.rec.ppid.load(Ordering::Relaxed),
        pgrp: p.rec.pgid.load(Ordering::Relaxed),
        sid: p.rec.sid.load(Ordering::Relaxed),
        uid: cred.uid,
        gid: cred.gid,
        comm: p.comm(),
        argv: p.user().argv.lock().clone(),
        auxv: p.user().auxv.lock().clone(),
        siginfo: *info,
    }
}

/// The name of the core from the pattern.
fn corename(td: &UThread, p: &UProc, sig: i32, limit: u64) -> Vec<u8> {
    let cred = p.user().cred();
    let parts = NameParts {
        pid: p.pid,
        tid: crate::kern::uproc::pid_of(td.tid()).unwrap_or(0),
        uid: cred.uid,
        gid: cred.gid,
        sig,
        time_s: crate::fs::vfs::Timespec::now().sec,
        hostname: crate::kern::utsname::hostname(),
        comm: p.comm().into_bytes(),
        exe: p.user().exe.lock().as_ref().map(NamePath::to_path_bytes).unwrap_or_default(),
        limit,
    };
    format_corename(&core_pattern(), &parts)
}

/// Open (create) the core file as fs/coredump.c does, with the process's credentials.
fn open_core(p: &UProc, name: &[u8]) -> Result<Arc<File>, Errno> {
    let cred = p.user().cred();
    let (dir, last): (&[u8], &[u8]) = match name.iter().rposition(|&b| b == b'/') {
        Some(0) => (b"/", &name[1..]),
        Some(i) => (&name[..i], &name[i + 1..]),
        None => (b".", name),
    };
    if last.is_empty() || last == b"." || last == b".." {
        return Err(Errno::EISDIR);
    }
    let start = if name.first() == Some(&b'/') { NamePath::root() } else { p.user().fs.lock().cwd.clone() };
    let parent = namei::lookup(&cred, &start, dir, true)?;
    if parent.vnode().vtype() != VType::Dir {
        return Err(Errno::ENOTDIR);
    }
    crate::fs::perm::may_search(&cred, || parent.vnode().attr())?;
    // An old core goes first (if it can: a directory stays, and then the create fails), and
    // the new one is created exclusively: a symbolic link left there is never followed.
    let _ = crate::fs::vnops::unlink(&cred, &parent, last, false);
    if namei::lookup(&cred, &parent, last, false).is_ok() {
        return Err(Errno::EEXIST);
    }
    let umask = p.user().fs.lock().umask;
    crate::fs::vnops::create(&cred, &parent, last, 0o600 & !umask)?;
    let np = namei::namei(&parent, last, false)?;
    let v = np.vnode().clone();
    let a = v.attr()?;
    // "cannot preserve file owner / permissions" (a file system that does not keep them),
    // and a name that is no longer the file created.
    if a.vtype() != VType::Reg || a.nlink > 1 || a.uid != cred.fsuid || a.mode & 0o677 != 0o600 {
        return Err(Errno::EPERM);
    }
    File::open(v, np, O_WRONLY)
}

/// Writes the core, at most `limit` bytes; holes are skipped.
struct CoreFile {
    file: Arc<File>,
    limit: u64,
}

impl CoreFile {
    /// Write `data` at `off`; Err(EFBIG) when it would pass the limit (nothing is written).
    fn emit(&self, off: u64, data: &[u8]) -> Result<(), Errno> {
        let end = off.checked_add(data.len() as u64).ok_or(Errno::EFBIG)?;
        if end > self.limit {
            return Err(Errno::EFBIG);
        }
        let mut done = 0;
        while done < data.len() {
            let n = self.file.vnode.write_nb(off + done as u64, &data[done..], false)?;
            if n == 0 {
                return Err(Errno::EIO);
            }
            done += n;
        }
        Ok(())
    }
}

fn write_core(td: &UThread, p: &UProc, threads: &[ThreadSnap], info: &Siginfo, limit: u64) -> bool {
    let name = corename(td, p, info.si_signo, limit);
    let file = match open_core(p, &name) {
        Ok(f) => CoreFile { file: f, limit },
        Err(e) => {
            note_failure(p, &name, e.name());
            return false;
        }
    };
    match write_image(p, threads, info, &file) {
        // A core cut short by RLIMIT_CORE is still a core (Linux says "core dumped" too).
        Ok(()) | Err(Errno::EFBIG) => true,
        Err(e) => {
            note_failure(p, &name, e.name());
            false
        }
    }
}

fn write_image(p: &UProc, threads: &[ThreadSnap], info: &Siginfo, out: &CoreFile) -> Result<(), Errno> {
    let vm = p.user().vm();
    let (segments, files): (Vec<Segment>, _) = {
        let g = vm.read();
        (g.entries().map(image::segment_of).collect(), image::file_entries(&g))
    };
    let notes = image::notes(threads, &proc_info(p, info), &files);
    let (headers, offsets, total) = image::headers(&segments, notes.len()).ok_or(Errno::EFBIG)?;
    out.emit(0, &headers)?;
    out.emit(headers.len() as u64, &notes)?;
    let page = crate::kern::conv::usize_of(PAGE);
    let chunk = crate::kern::conv::usize_of(CHUNK_PAGES);
    for (s, &off) in segments.iter().zip(&offsets) {
        let end = s.start + s.dump_len;
        // Every page of file data; only the resident ones of anonymous memory (a huge
        // reservation never touched costs nothing).
        let mut addrs: Box<dyn Iterator<Item = u64>> = if s.fill_absent {
            Box::new((s.start..end).step_by(page))
        } else {
            Box::new(vm.read().resident_addrs(s.start, end).into_iter())
        };
        loop {
            let batch: Vec<u64> = addrs.by_ref().take(chunk).collect();
            if batch.is_empty() {
                break;
            }
            let pages: Vec<Option<Vec<u8>>> = {
                let g = vm.read();
                batch.iter().map(|&a| read_page(&g, s, a)).collect()
            };
            for (a, data) in batch.iter().zip(pages) {
                if let Some(d) = data.filter(|d| d.iter().any(|&b| b != 0)) {
                    out.emit(off + (a - s.start), &d)?;
                }
            }
        }
    }
    // The file is as long as its last segment says, holes included (within the limit).
    if out.file.vnode.attr()?.size < total {
        out.file.vnode.truncate(total.min(out.limit))?;
    }
    Ok(())
}

/// The page at `addr` of segment `s` (its patched system call sites as the program wrote
/// them): from physical memory if resident; if not, through the
/// address space as copyin reads it (a file's data) when the segment says so, else None (a
/// hole).
fn read_page(vm: &crate::vm::space::AddressSpace, s: &Segment, addr: u64) -> Option<Vec<u8>> {
    let mut b = vec![0u8; crate::kern::conv::usize_of(PAGE)];
    if let Some(pa) = vm.resident_page(addr) {
        vm.physmem().read(pa, &mut b);
        // Patched system call sites as the program wrote them.
        crate::kern::callsite::as_written(vm, addr, &mut b);
        return Some(b);
    }
    (s.fill_absent && crate::vm::uaccess::copyin(vm, addr, &mut b).is_ok()).then_some(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_specifiers() {
        let n = NameParts {
            pid: 42,
            tid: 43,
            uid: 1000,
            gid: 100,
            sig: 11,
            time_s: 1_700_000_000,
            hostname: b"vk".to_vec(),
            comm: b"a/b".to_vec(),
            exe: b"/usr/bin/x".to_vec(),
            limit: u64::MAX,
        };
        assert_eq!(format_corename(b"core", &n), b"core");
        assert_eq!(format_corename(b"/tmp/core.%e.%p.%t", &n), b"/tmp/core.a!b.42.1700000000");
        assert_eq!(format_corename(b"%%%i-%u-%g-%s-%h-%E-%c-%q%", &n), b"%43-1000-100-11-vk-!usr!bin!x-unlimited-");
        assert_eq!(format_corename(&[b'x'; 300], &n).len(), CORENAME_MAX - 1);
    }

    #[test]
    fn pipes_are_refused() {
        assert_eq!(set_core_pattern(b"|/usr/bin/handler %p"), Err(Errno::EINVAL));
        assert_eq!(set_core_pattern(&[b'c'; CORENAME_MAX]), Err(Errno::EINVAL));
        assert_eq!(core_pattern(), b"core");
    }
}
