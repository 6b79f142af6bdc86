//! procfs: processes and the kernel as files, generated when read (proc(5)).
//!
//! ```text
//!  /proc/self                 → the caller's pid (a symbolic link)
//!  /proc/thread-self          → PID/task/TID of the calling thread
//!  /proc/{meminfo,uptime,loadavg,stat,mounts,filesystems,cpuinfo,version,partitions} system.rs
//!  /proc/vmstat, /proc/sysvipc/{shm,sem,msg}, /proc/PID/pagemap              vmfiles.rs
//!  /proc/sys/…                kernel settings, some writable by root            sysctl.rs
//!  /proc/net/{unix,tcp,udp,…}  sockets: AF_UNIX's own, the host's for the rest      net.rs
//!  /proc/PID/exe              → the program's path
//!  /proc/PID/{cmdline,comm,stat,status,maps,mounts,mountinfo}                  pid.rs
//!  /proc/PID/limits           resource limits                                  fdinfo.rs
//!  /proc/PID/fd/N             → what descriptor N is open on (a path, pipe:[ino], …)
//!  /proc/PID/fdinfo/N         its offset, flags, mount, inode, event-file state  fdinfo.rs
//!  /proc/PID/task/TID/        the same files for one thread
//! ```
//!
//! A node names what it shows (a pid, a descriptor, a setting); its text is made afresh by
//! each read. A process that is gone makes lookups fail with ENOENT and reads of files
//! already open with ESRCH, as in Linux.

mod net;
mod fdinfo;
mod pid;
mod sysctl;
mod kconfig;
mod system;
mod vmfiles;
pub use system::FILESYSTEMS;

use std::sync::Arc;

use crate::kern::uproc::pid_of;
use crate::fs::mount::{FileSystem, FsRef, new_fs_id};
use crate::fs::namecache::CachePolicy;
use crate::fs::vfs::{Attr, DirEntry, S_IFDIR, S_IFLNK, S_IFREG, StatFs, Timespec, VType, Vnode, VnodeRef};
use crate::kern::errno::Errno;
use crate::kern::proc::{self, UProc};
use net::{NET_FILES, NetFile};
use pid::{PID_FILES, PidFile};
use sysctl::{Ctl, Entry, SysDir};
use system::{SYS_FILES, SysFile};
use vmfiles::{IPC_FILES, IpcFile};

const PROC_DEV: u64 = 3;
/// statfs(2)'s f_type of procfs.
const PROC_SUPER_MAGIC: u64 = 0x9fa0;

fn boot_time() -> Timespec {
    Timespec::from_ns(crate::kern::clock::boottime_ns())
}

fn attr(ino: u64, mode: u32, uid: u32, gid: u32) -> Attr {
    let t = boot_time();
    let nlink = if mode & S_IFDIR != 0 { 2 } else { 1 };
    Attr { dev: PROC_DEV, ino, mode, nlink, uid, gid, size: 0, blksize: 1024, atime: t, mtime: t, ctime: t, ..Default::default() }
}

/// A node of procfs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    Root,
    SelfLink,
    ThreadSelfLink,
    Sys(SysFile),
    SysDir(SysDir),
    Ctl(Ctl),
    NetDir,
    Net(NetFile),
    SysvipcDir,
    Sysvipc(IpcFile),
    PidDir(i32),
    Pid(i32, PidFile),
    FdDir(i32),
    Fd(i32, i32),
    FdInfoDir(i32),
    FdInfo(i32, i32),
    TaskDir(i32),
    TidDir(i32, i32),
    Tid(i32, i32, PidFile),
}

/// One procfs instance.
#[derive(Debug)]
pub struct ProcFs {
    id: u64,
}

impl FileSystem for ProcFs {
    fn type_name(&self) -> &'static str {
        "proc"
    }

    fn id(&self) -> u64 {
        self.id
    }

    fn statfs(&self) -> Result<StatFs, Errno> {
        Ok(StatFs { magic: PROC_SUPER_MAGIC, bsize: 4096, ..StatFs::default() })
    }

    /// Processes, threads and descriptors come and go without the VFS: nothing is cached.
    fn cache_policy(&self) -> CachePolicy {
        CachePolicy::None
    }
}

/// A procfs vnode.
#[derive(Debug)]
pub struct ProcNode {
    fs: Arc<ProcFs>,
    n: Node,
}

/// A procfs instance (its root).
pub fn new() -> VnodeRef {
    Arc::new(ProcNode { fs: Arc::new(ProcFs { id: new_fs_id() }), n: Node::Root })
}

impl ProcNode {
    /// Another node of this procfs.
    fn node(&self, n: Node) -> VnodeRef {
        Arc::new(ProcNode { fs: Arc::clone(&self.fs), n })
    }
}

/// The pid a `/proc/PID` directory's vnode names (pidfd_send_signal(2) takes one as a
/// process descriptor); None for any other vnode.
pub fn dir_pid(v: &VnodeRef) -> Option<i32> {
    match v.as_any()?.downcast_ref::<ProcNode>()?.n {
        Node::PidDir(pid) => Some(pid),
        _ => None,
    }
}

/// A guest process by pid (zombies included).
fn guest(pid: i32) -> Option<UProc> {
    proc::find_user(pid)
}

/// A process a lookup needs (ENOENT when there is none).
fn lookup_proc(pid: i32) -> Result<UProc, Errno> {
    guest(pid).ok_or(Errno::ENOENT)
}

/// A process a read of an open file needs (ESRCH when it has gone).
fn read_proc(pid: i32) -> Result<UProc, Errno> {
    guest(pid).ok_or(Errno::ESRCH)
}

/// May the calling process look into process `pid` — its maps, its exe link and descriptor
/// links, the private fields of its stat? Itself, yes; another as [`Cred::may_inspect`] says
/// (Linux's ptrace_may_access, PTRACE_MODE_READ_FSCREDS); EACCES if not. Kernel callers
/// (no process: the debugger, tests) may.
fn may_inspect(pid: i32) -> Result<(), Errno> {
    let Some(caller) = caller_pid().and_then(guest) else { return Ok(()) };
    if caller.pid == pid {
        return Ok(());
    }
    let target = lookup_proc(pid)?.user().cred.lock().clone();
    let me = caller.user().cred.lock().clone();
    if me.may_inspect(&target) { Ok(()) } else { Err(Errno::EACCES) }
}

/// /proc/PID/mem: the caller may inspect the process and, for another's, Yama allows it
/// (Linux opens it with PTRACE_MODE_ATTACH_FSCREDS).
fn may_access_mem(pid: i32) -> Result<(), Errno> {
    may_inspect(pid)?;
    let Some(caller) = caller_pid().and_then(guest) else { return Ok(()) };
    if caller.pid == pid || crate::kern::ptrace::yama_allows(&caller, &lookup_proc(pid)?) {
        Ok(())
    } else {
        Err(Errno::EACCES)
    }
}

fn caller_pid() -> Option<i32> {
    crate::kern::sched::curthread().and_then(|t| t.proc_()).map(|p| p.pid)
}

fn parse_id(name: &str) -> Result<i32, Errno> {
    // Only canonical decimal names: "01" or "+1" is not pid 1.
    let id: i32 = name.parse().map_err(|_| Errno::ENOENT)?;
    if id < 0 || id.to_string() != name {
        return Err(Errno::ENOENT);
    }
    Ok(id)
}

impl Node {
    fn ino(self) -> u64 {
        let base = |pid: i32| u64::from(pid.unsigned_abs()) << 32;
        match self {
            Node::Root => 1,
            Node::SelfLink => 2,
            Node::ThreadSelfLink => 3,
            Node::Sys(f) => 16 + f.index(),
            Node::SysDir(d) => 32 + d.index(),
            Node::Ctl(c) => 48 + c.index(),
            Node::NetDir => 80,
            Node::Net(f) => 81 + f.index(),
            Node::SysvipcDir => 112,
            Node::Sysvipc(f) => 113 + f.index(),
            Node::PidDir(pid) => base(pid) | 1,
            Node::Pid(pid, f) => base(pid) | (2 + f.index()),
            // A process's files take 2..64 (PID_FILES), its directories 64..67; descriptors,
            // threads and fdinfo lie above, by kind in bits 28-29 (a thread's files in its
            // low 6 bits).
            Node::FdDir(pid) => base(pid) | 64,
            Node::TaskDir(pid) => base(pid) | 65,
            Node::FdInfoDir(pid) => base(pid) | 66,
            Node::FdInfo(pid, fd) => base(pid) | (3 << 28) | (u64::from(fd.unsigned_abs()) & 0xff_ffff),
            Node::Fd(pid, fd) => base(pid) | (1 << 28) | (u64::from(fd.unsigned_abs()) & 0xff_ffff),
            Node::TidDir(pid, tid) => base(pid) | (2 << 28) | ((u64::from(tid.unsigned_abs()) & 0xf_ffff) << 6),
            Node::Tid(pid, tid, f) => {
                base(pid) | (2 << 28) | ((u64::from(tid.unsigned_abs()) & 0xf_ffff) << 6) | (1 + f.index())
            }
        }
    }

    fn vtype(self) -> VType {
        match self {
            Node::Root
            | Node::NetDir
            | Node::SysvipcDir
            | Node::SysDir(_)
            | Node::PidDir(_)
            | Node::FdDir(_)
            | Node::FdInfoDir(_)
            | Node::TaskDir(_)
            | Node::TidDir(..) => VType::Dir,
            Node::SelfLink | Node::ThreadSelfLink | Node::Fd(..) => VType::Lnk,
            Node::Pid(_, f) | Node::Tid(_, _, f) => f.vtype(),
            Node::Sys(_) | Node::Ctl(_) | Node::Net(_) | Node::Sysvipc(_) | Node::FdInfo(..) => VType::Reg,
        }
    }

    fn entry(self, name: impl Into<String>) -> DirEntry {
        DirEntry { ino: self.ino(), name: name.into().into_bytes(), vtype: self.vtype(), off: 0 }
    }

    /// The pid a per-process node belongs to.
    fn pid(self) -> Option<i32> {
        match self {
            Node::PidDir(p)
            | Node::Pid(p, _)
            | Node::FdDir(p)
            | Node::Fd(p, _)
            | Node::FdInfoDir(p)
            | Node::FdInfo(p, _)
            | Node::TaskDir(p)
            | Node::TidDir(p, _)
            | Node::Tid(p, ..) => Some(p),
            _ => None,
        }
    }

    fn text(self) -> Result<Vec<u8>, Errno> {
        match self {
            Node::Sys(f) => Ok(system::text(f)),
            Node::Net(f) => Ok(net::text(f)),
            Node::Sysvipc(f) => Ok(vmfiles::sysvipc(f).into_bytes()),
            Node::Ctl(c) => c.read(),
            Node::Pid(pid, f) => pid::text(&read_proc(pid)?, None, f, may_inspect(pid).is_ok()),
            Node::Tid(pid, tid, f) => {
                let p = read_proc(pid)?;
                let td = pid::thread_of(&p, tid)?;
                pid::text(&p, Some(&td), f, may_inspect(pid).is_ok())
            }
            Node::FdInfo(pid, fd) => {
                may_inspect(pid)?;
                fdinfo::fdinfo(&read_proc(pid)?, fd)
            }
            Node::Fd(..) | Node::SelfLink | Node::ThreadSelfLink => Err(Errno::EINVAL),
            _ => Err(Errno::EISDIR),
        }
    }
}

impl Vnode for ProcNode {
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }

    fn attr(&self) -> Result<Attr, Errno> {
        let n = self.n;
        let ino = n.ino();
        let mode = match n {
            Node::Ctl(c) => S_IFREG | c.mode(),
            // proc(5): the owner's r/w bits say how the descriptor is open (lr-x, l-wx, lrwx).
            Node::Fd(pid, fd) => {
                let f = pid::fd_file(&lookup_proc(pid)?, fd)?;
                let r = if f.readable() { 0o500 } else { 0 };
                let w = if f.writable() { 0o300 } else { 0 };
                S_IFLNK | r | w
            }
            // proc(5): only the owner (or root) looks into a process's descriptors.
            Node::FdDir(_) | Node::FdInfoDir(_) => S_IFDIR | 0o500,
            // proc(5): the auxiliary vector is the owner's (0400, as Linux).
            Node::Pid(_, PidFile::Auxv | PidFile::Environ) | Node::Tid(_, _, PidFile::Auxv | PidFile::Environ) => S_IFREG | 0o400,
            // proc(5): the page map is the owner's to read (0400).
            Node::Pid(_, PidFile::Pagemap) | Node::Tid(_, _, PidFile::Pagemap) => S_IFREG | 0o400,
            // proc(5): the memory is the owner's to read and write (0600).
            Node::Pid(_, PidFile::Mem) | Node::Tid(_, _, PidFile::Mem) => S_IFREG | 0o600,
            _ => match n.vtype() {
                VType::Dir => S_IFDIR | 0o555,
                VType::Lnk => S_IFLNK | 0o777,
                _ => S_IFREG | 0o444,
            },
        };
        let (uid, gid) = match n.pid() {
            Some(pid) => {
                let c = lookup_proc(pid)?.user().cred.lock().clone();
                (c.euid, c.egid)
            }
            None => (0, 0),
        };
        Ok(attr(ino, mode, uid, gid))
    }

    fn vtype(&self) -> VType {
        self.n.vtype()
    }

    fn lookup(&self, name: &[u8]) -> Result<VnodeRef, Errno> {
        // Every name procfs has is ASCII.
        let name = std::str::from_utf8(name).map_err(|_| Errno::ENOENT)?;
        match self.n {
            Node::Root => {
                if name == "self" {
                    return Ok(self.node(Node::SelfLink));
                }
                if name == "thread-self" {
                    return Ok(self.node(Node::ThreadSelfLink));
                }
                if name == "sys" {
                    return Ok(self.node(Node::SysDir(SysDir::Sys)));
                }
                if name == "net" {
                    return Ok(self.node(Node::NetDir));
                }
                if name == "sysvipc" {
                    return Ok(self.node(Node::SysvipcDir));
                }
                if let Some((_, f)) = SYS_FILES.iter().find(|(n, _)| *n == name) {
                    return Ok(self.node(Node::Sys(*f)));
                }
                let pid = parse_id(name)?;
                if lookup_proc(pid).is_err() {
                    // proc(5): /proc/TID of a thread that leads no process is there to look
                    // up (not listed): its task directory (a debugger reads its status).
                    let (p, _) = crate::kern::ptrace::find_thread(pid).ok_or(Errno::ENOENT)?;
                    return Ok(self.node(Node::TidDir(p.pid, pid)));
                }
                Ok(self.node(Node::PidDir(pid)))
            }
            Node::SysvipcDir => {
                let f = IPC_FILES.iter().find(|(n, _)| *n == name).map(|(_, f)| *f).ok_or(Errno::ENOENT)?;
                Ok(self.node(Node::Sysvipc(f)))
            }
            Node::NetDir => {
                let f = NET_FILES.iter().find(|(n, _)| *n == name).map(|(_, f)| *f).ok_or(Errno::ENOENT)?;
                Ok(self.node(Node::Net(f)))
            }
            Node::SysDir(d) => match d.lookup(name).ok_or(Errno::ENOENT)? {
                Entry::Dir(d) => Ok(self.node(Node::SysDir(d))),
                Entry::Ctl(c) => Ok(self.node(Node::Ctl(c))),
            },
            Node::PidDir(pid) => {
                lookup_proc(pid)?;
                match name {
                    "fd" => Ok(self.node(Node::FdDir(pid))),
                    "fdinfo" => Ok(self.node(Node::FdInfoDir(pid))),
                    "task" => Ok(self.node(Node::TaskDir(pid))),
                    _ => {
                        let f = PID_FILES.iter().find(|(n, _)| *n == name).map(|(_, f)| *f).ok_or(Errno::ENOENT)?;
                        Ok(self.node(Node::Pid(pid, f)))
                    }
                }
            }
            Node::FdDir(pid) => {
                let fd = parse_id(name)?;
                pid::fd_file(&lookup_proc(pid)?, fd)?;
                Ok(self.node(Node::Fd(pid, fd)))
            }
            Node::FdInfoDir(pid) => {
                let fd = parse_id(name)?;
                pid::fd_file(&lookup_proc(pid)?, fd)?;
                Ok(self.node(Node::FdInfo(pid, fd)))
            }
            Node::TaskDir(pid) => {
                let tid = parse_id(name)?;
                pid::thread_of(&*lookup_proc(pid)?, tid).map_err(|_| Errno::ENOENT)?;
                Ok(self.node(Node::TidDir(pid, tid)))
            }
            Node::TidDir(pid, tid) => {
                pid::thread_of(&*lookup_proc(pid)?, tid).map_err(|_| Errno::ENOENT)?;
                let f = PID_FILES.iter().find(|(n, _)| *n == name).map(|(_, f)| *f).ok_or(Errno::ENOENT)?;
                Ok(self.node(Node::Tid(pid, tid, f)))
            }
            _ => Err(Errno::ENOTDIR),
        }
    }

    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        // Positions (d_off): the fixed entries in order, then a process, descriptor or thread
        // by its number, so that a reader resumes correctly while they come and go.
        let numbered = |mut v: Vec<DirEntry>| {
            for (e, off) in v.iter_mut().zip(1..) {
                e.off = off;
            }
            v
        };
        let by_id = |mut v: Vec<(u64, DirEntry)>, base: u64| {
            v.sort_unstable_by_key(|(id, _)| *id);
            v.into_iter().map(|(id, e)| DirEntry { off: base + id, ..e }).collect::<Vec<_>>()
        };
        let id = |n: i32| u64::from(n.unsigned_abs());
        match self.n {
            Node::Root => {
                let mut v = numbered(
                    [Node::SelfLink.entry("self"), Node::ThreadSelfLink.entry("thread-self"), Node::SysDir(SysDir::Sys).entry("sys"), Node::NetDir.entry("net"), Node::SysvipcDir.entry("sysvipc")]
                        .into_iter()
                        .chain(SYS_FILES.iter().map(|(n, f)| Node::Sys(*f).entry(*n)))
                        .collect(),
                );
                let base = v.len() as u64 + 1;
                let procs = proc::all().into_iter().filter(|p| p.is_user()).map(|p| (id(p.pid), Node::PidDir(p.pid).entry(p.pid.to_string())));
                v.extend(by_id(procs.collect(), base));
                Ok(v)
            }
            Node::NetDir => Ok(numbered(NET_FILES.iter().map(|(n, f)| Node::Net(*f).entry(*n)).collect())),
            Node::SysvipcDir => Ok(numbered(IPC_FILES.iter().map(|(n, f)| Node::Sysvipc(*f).entry(*n)).collect())),
            Node::SysDir(d) => Ok(numbered(
                d.entries()
                    .iter()
                    .map(|(n, e)| match e {
                        Entry::Dir(d) => Node::SysDir(*d).entry(*n),
                        Entry::Ctl(c) => Node::Ctl(*c).entry(*n),
                    })
                    .collect(),
            )),
            Node::PidDir(pid) => {
                lookup_proc(pid)?;
                let mut v: Vec<DirEntry> = PID_FILES.iter().map(|(n, f)| Node::Pid(pid, *f).entry(*n)).collect();
                v.push(Node::FdDir(pid).entry("fd"));
                v.push(Node::FdInfoDir(pid).entry("fdinfo"));
                v.push(Node::TaskDir(pid).entry("task"));
                Ok(numbered(v))
            }
            Node::FdDir(pid) => {
                let p = lookup_proc(pid)?;
                Ok(by_id(pid::open_fds(&p).into_iter().map(|fd| (id(fd), Node::Fd(pid, fd).entry(fd.to_string()))).collect(), 1))
            }
            Node::FdInfoDir(pid) => {
                may_inspect(pid)?;
                let p = lookup_proc(pid)?;
                Ok(by_id(pid::open_fds(&p).into_iter().map(|fd| (id(fd), Node::FdInfo(pid, fd).entry(fd.to_string()))).collect(), 1))
            }
            Node::TaskDir(pid) => {
                let p = lookup_proc(pid)?;
                let tids = p.threads().iter().filter_map(|t| pid_of(t.tid())).map(|tid| (id(tid), Node::TidDir(pid, tid).entry(tid.to_string()))).collect();
                Ok(by_id(tids, 1))
            }
            Node::TidDir(pid, tid) => {
                pid::thread_of(&*lookup_proc(pid)?, tid).map_err(|_| Errno::ENOENT)?;
                Ok(numbered(PID_FILES.iter().map(|(n, f)| Node::Tid(pid, tid, *f).entry(*n)).collect()))
            }
            _ => Err(Errno::ENOTDIR),
        }
    }

    fn may_open(&self, flags: u32) -> Result<(), Errno> {
        match self.n {
            Node::Pid(pid, PidFile::Maps | PidFile::Environ | PidFile::Pagemap | PidFile::Smaps | PidFile::SmapsRollup)
            | Node::Tid(pid, _, PidFile::Maps | PidFile::Environ | PidFile::Pagemap | PidFile::Smaps | PidFile::SmapsRollup) => may_inspect(pid),
            // proc_sys_permission: a setting's own mode decides writes, for root too.
            Node::Ctl(c) if flags & crate::fs::file::O_ACCMODE != crate::fs::file::O_RDONLY => c.check_write(),
            Node::Pid(pid, PidFile::Mem) | Node::Tid(pid, _, PidFile::Mem) => may_access_mem(pid),
            _ => Ok(()),
        }
    }

    fn magic_link(&self) -> Option<Result<crate::fs::namei::NamePath, Errno>> {
        // exe leads to the program itself (a file with no name left too), as Linux's.
        if let Node::Pid(pid, PidFile::Exe) | Node::Tid(pid, _, PidFile::Exe) = self.n {
            return Some(may_inspect(pid).and_then(|()| lookup_proc(pid)?.user().exe.lock().clone().ok_or(Errno::ENOENT)));
        }
        let Node::Fd(pid, fd) = self.n else { return None };
        if let Err(e) = may_inspect(pid) {
            return Some(Err(e));
        }
        Some(lookup_proc(pid).and_then(|p| pid::fd_file(&p, fd)).map(|f| match &f.path {
            Some(np) => np.clone(),
            None => crate::fs::namei::NamePath::anonymous(&pid::fd_link(&f), f.vnode.clone()),
        }))
    }

    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        match self.n {
            Node::SelfLink => Ok(caller_pid().ok_or(Errno::ENOENT)?.to_string().into_bytes()),
            Node::ThreadSelfLink => {
                let td = crate::kern::sched::curthread().ok_or(Errno::ENOENT)?;
                let pid = td.proc_().ok_or(Errno::ENOENT)?.pid;
                Ok(format!("{pid}/task/{}", td.tid()).into_bytes())
            }
            Node::Pid(pid, PidFile::Exe) | Node::Tid(pid, _, PidFile::Exe) => {
                may_inspect(pid)?;
                let exe = lookup_proc(pid)?.user().exe.lock().clone();
                Ok(exe.ok_or(Errno::ENOENT)?.to_path_bytes())
            }
            Node::Fd(pid, fd) => {
                may_inspect(pid)?;
                Ok(pid::fd_link(&*pid::fd_file(&lookup_proc(pid)?, fd)?))
            }
            _ => Err(Errno::EINVAL),
        }
    }

    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        if let Node::Pid(pid, PidFile::Mem) | Node::Tid(pid, _, PidFile::Mem) = self.n {
            may_access_mem(pid)?;
            return crate::kern::ptrace::mem_read(&lookup_proc(pid)?, off, buf);
        }
        if let Node::Pid(pid, PidFile::Pagemap) | Node::Tid(pid, _, PidFile::Pagemap) = self.n {
            may_inspect(pid)?;
            // Frame numbers only for CAP_SYS_ADMIN (Linux decides at open; here at read).
            let show_pfn = caller_pid()
                .and_then(guest)
                .is_none_or(|c| c.user().cred().capable(crate::kern::cred::CAP_SYS_ADMIN));
            return vmfiles::pagemap_read(&lookup_proc(pid)?, off, buf, show_pfn);
        }
        let text = self.n.text()?;
        let off = usize::try_from(off).unwrap_or(usize::MAX);
        if off >= text.len() {
            return Ok(0);
        }
        let n = buf.len().min(text.len() - off);
        buf[..n].copy_from_slice(&text[off..off + n]);
        Ok(n)
    }

    fn write_at(&self, off: u64, buf: &[u8]) -> Result<usize, Errno> {
        match self.n {
            Node::Ctl(c) => c.write(off, buf),
            Node::Pid(pid, PidFile::Mem) | Node::Tid(pid, _, PidFile::Mem) => {
                may_access_mem(pid)?;
                crate::kern::ptrace::mem_write(&lookup_proc(pid)?, off, buf)
            }
            n if n.vtype() == VType::Dir => Err(Errno::EISDIR),
            _ => Err(Errno::EACCES),
        }
    }

    /// open(2) with O_TRUNC (the shell's `>`): a setting the caller may write, or EACCES.
    fn truncate(&self, _size: u64) -> Result<(), Errno> {
        match self.n {
            Node::Ctl(c) => c.check_write(),
            _ => Err(Errno::EACCES),
        }
    }

    fn fs(&self) -> FsRef {
        Arc::clone(&self.fs) as FsRef
    }

    fn ino(&self) -> u64 {
        self.n.ino()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inode_numbers_are_distinct() {
        let mut nodes = vec![Node::Root, Node::SelfLink, Node::ThreadSelfLink];
        nodes.extend(SYS_FILES.iter().map(|(_, f)| Node::Sys(*f)));
        nodes.extend(sysctl::DIRS.iter().map(|d| Node::SysDir(*d)));
        nodes.extend(sysctl::CTLS.iter().map(|c| Node::Ctl(*c)));
        nodes.push(Node::NetDir);
        nodes.push(Node::SysvipcDir);
        nodes.extend(IPC_FILES.iter().map(|(_, f)| Node::Sysvipc(*f)));
        nodes.extend(NET_FILES.iter().map(|(_, f)| Node::Net(*f)));
        for pid in [1, 2, 32767] {
            nodes.extend([Node::PidDir(pid), Node::FdDir(pid), Node::TaskDir(pid)]);
            nodes.extend(PID_FILES.iter().map(|(_, f)| Node::Pid(pid, *f)));
            nodes.extend([0, 1, 1023].map(|fd| Node::Fd(pid, fd)));
            nodes.extend([0, 1, 1023].map(|fd| Node::FdInfo(pid, fd)));
            nodes.push(Node::FdInfoDir(pid));
            for tid in [1, 2, 32767] {
                nodes.push(Node::TidDir(pid, tid));
                nodes.extend(PID_FILES.iter().map(|(_, f)| Node::Tid(pid, tid, *f)));
            }
        }
        let mut inos: Vec<u64> = nodes.iter().map(|n| n.ino()).collect();
        inos.sort_unstable();
        let before = inos.len();
        inos.dedup();
        assert_eq!(inos.len(), before);
    }

    #[test]
    fn ids_are_canonical() {
        assert_eq!(parse_id("42"), Ok(42));
        for bad in ["042", "+1", "-1", "", "x", "99999999999"] {
            assert_eq!(parse_id(bad), Err(Errno::ENOENT), "{bad}");
        }
    }
}
