//! Open files (open file descriptions: a vnode, an offset, status flags) and per-process
//! descriptor tables.
//!
//! A file opened for writing by path counts as a writer of its mount (Linux's
//! mnt_want_write_file) until it is closed: a read-only mount refuses it (EROFS) and a remount
//! read-only waits for none to be left (EBUSY).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use platform::sync::SpinLock;

use crate::fs::mount::MountRef;
use crate::fs::namei::NamePath;
use crate::fs::vfs::{VType, VnodeRef};
use crate::kern::errno::Errno;

pub const O_RDONLY: u32 = 0;
pub const O_WRONLY: u32 = 1;
pub const O_RDWR: u32 = 2;
pub const O_ACCMODE: u32 = 3;
pub const O_CREAT: u32 = 0o100;
pub const O_EXCL: u32 = 0o200;
pub const O_NOCTTY: u32 = 0o400;
pub const O_TRUNC: u32 = 0o1000;
pub const O_APPEND: u32 = 0o2000;
pub const O_NONBLOCK: u32 = 0o4000;
pub const O_DIRECTORY: u32 = 0o200000;
/// O_ASYNC (FASYNC): I/O signals (fs/sigio.rs).
pub const O_ASYNC: u32 = 0o20000;
pub const O_NOFOLLOW: u32 = 0o400000;
pub const O_CLOEXEC: u32 = 0o2000000;
/// __O_TMPFILE (O_TMPFILE is it with O_DIRECTORY).
pub const O_TMPFILE_BIT: u32 = 0o20000000;
pub const O_PATH: u32 = 0o10000000;

/// Descriptors a process may have at first (RLIMIT_NOFILE's soft limit); setrlimit raises
/// it up to [`NR_OPEN`].
pub const NOFILE: usize = 1024;
/// The most descriptors any process may have (fs.nr_open: RLIMIT_NOFILE's ceiling).
/// (`abi::proc::NR_OPEN` as a count: the two are checked equal at compile time.)
pub const NR_OPEN: usize = 1 << 20;
const _: () = assert!(NR_OPEN as u64 == crate::abi::proc::NR_OPEN);

/// An open file description.
#[derive(Debug)]
pub struct File {
    pub vnode: VnodeRef,
    /// Where it was opened (for /proc/PID/fd and fchdir).
    pub path: Option<NamePath>,
    /// Status flags (O_APPEND, O_NONBLOCK, the access mode).
    flags: AtomicU32,
    pub offset: SpinLock<u64>,
    /// It holds write access to its mount (see [`File::open`]).
    writer: bool,
    /// A regular file opened for writing by path: it may not be run meanwhile (ETXTBSY).
    _write_access: Option<crate::fs::writecount::WriteAccess>,
    /// The credentials open(2) ran with (Linux's f_cred), for linkat(2)'s AT_EMPTY_PATH.
    opener: std::sync::OnceLock<std::sync::Weak<crate::kern::cred::Cred>>,
}

impl Drop for File {
    fn drop(&mut self) {
        if self.flags() & O_PATH == 0 {
            self.vnode.closed();
        }
        if self.writer
            && let Some(m) = self.mount()
        {
            m.put_write();
        }
        // inotify: IN_CLOSE_WRITE or IN_CLOSE_NOWRITE (a file opened by path).
        if crate::fs::inotify::active()
            && let Some(p) = &self.path
            && self.flags() & O_PATH == 0
        {
            let acc = self.flags() & O_ACCMODE;
            let mask = if acc == O_WRONLY || acc == O_RDWR { crate::fs::inotify::IN_CLOSE_WRITE } else { crate::fs::inotify::IN_CLOSE_NOWRITE };
            crate::fs::inotify::child_event(p.parent(), p.name(), &self.vnode, mask);
        }
        // Its OFD and flock(2) locks go with the last reference.
        if crate::fs::lock::any_held() {
            let me = std::ptr::from_ref::<File>(self).addr();
            crate::fs::lock::release_all(crate::fs::lock::Owner::Ofd(me));
            crate::fs::lock::release_all(crate::fs::lock::Owner::Flock(me));
        }
        // Its lease and signal owner (fcntl(2) F_SETLEASE, F_SETOWN).
        crate::fs::lease::file_closed(std::ptr::from_ref::<File>(self).addr());
    }
}

impl File {
    /// Record the credentials it was opened with (once).
    pub fn set_opener(&self, cred: &Arc<crate::kern::cred::Cred>) {
        let _ = self.opener.set(Arc::downgrade(cred));
    }

    /// Whether it was opened with these very credentials (the same object, as Linux compares
    /// f_cred with current_cred()).
    pub fn opened_by(&self, cred: &Arc<crate::kern::cred::Cred>) -> bool {
        self.opener.get().is_some_and(|w| std::sync::Weak::ptr_eq(w, &Arc::downgrade(cred)))
    }

    /// An open file that is no writer of a mount: a pipe, a descriptor of no path, or one
    /// opened for reading only. Files opened by path for writing come from [`File::open`].
    pub fn new(vnode: VnodeRef, path: Option<NamePath>, flags: u32) -> Arc<File> {
        if flags & O_PATH == 0 {
            vnode.opened();
        }
        Arc::new(File {
            vnode,
            path,
            flags: AtomicU32::new(flags & !O_CLOEXEC),
            offset: SpinLock::new("file_offset", 0),
            writer: false,
            _write_access: None,
            opener: std::sync::OnceLock::new(),
        })
    }

    /// Open `vnode`, reached by `path`, with `flags`: a regular file, directory or symbolic link
    /// opened for writing becomes a writer of its mount (EROFS on a read-only mount).
    pub fn open(vnode: VnodeRef, path: NamePath, flags: u32) -> Result<Arc<File>, Errno> {
        let acc = flags & O_ACCMODE;
        let special = matches!(vnode.vtype(), VType::Chr | VType::Blk | VType::Fifo | VType::Sock);
        let writer = (acc == O_WRONLY || acc == O_RDWR) && flags & O_PATH == 0 && !special;
        // A program being run is not opened for writing: ETXTBSY, before EROFS (Linux's
        // do_dentry_open takes i_writecount, then the mount's write access).
        let write_access = if writer && vnode.vtype() == VType::Reg { Some(crate::fs::writecount::WriteAccess::get(&vnode)?) } else { None };
        if writer {
            path.mount().get_write()?;
        }
        if flags & O_PATH == 0 {
            crate::fs::inotify::child_event(path.parent(), path.name(), &vnode, crate::fs::inotify::IN_OPEN);
            vnode.opened();
        }
        let f = File {
            vnode,
            path: Some(path),
            flags: AtomicU32::new(flags & !O_CLOEXEC),
            offset: SpinLock::new("file_offset", 0),
            writer,
            _write_access: write_access,
            opener: std::sync::OnceLock::new(),
        };
        Ok(Arc::new(f))
    }

    /// The mount it was opened through (None for a file of no path).
    pub fn mount(&self) -> Option<&MountRef> {
        self.path.as_ref().map(NamePath::mount)
    }

    pub fn flags(&self) -> u32 {
        self.flags.load(Ordering::Relaxed)
    }

    /// F_SETFL: only O_APPEND, O_NONBLOCK and O_ASYNC change (the caller tells fs/sigio.rs
    /// of O_ASYNC).
    pub fn set_status_flags(&self, f: u32) {
        const CHANGE: u32 = O_APPEND | O_NONBLOCK | O_ASYNC;
        let keep = self.flags() & !CHANGE;
        self.flags.store(keep | (f & CHANGE), Ordering::Relaxed);
    }

    pub fn readable(&self) -> bool {
        let m = self.flags() & O_ACCMODE;
        (m == O_RDONLY || m == O_RDWR) && self.flags() & O_PATH == 0
    }

    pub fn writable(&self) -> bool {
        let m = self.flags() & O_ACCMODE;
        (m == O_WRONLY || m == O_RDWR) && self.flags() & O_PATH == 0
    }
}

/// A descriptor table slot.
#[derive(Debug, Clone)]
pub struct FdEntry {
    pub file: Arc<File>,
    pub cloexec: bool,
}

/// A process's descriptors.
#[derive(Debug)]
pub struct FdTable {
    fds: Vec<Option<FdEntry>>,
    /// RLIMIT_NOFILE: descriptors are below it.
    pub limit: usize,
    /// The owner of the POSIX record locks taken through it (Linux's `current->files`): a
    /// number no other table has, a new one for a copy (fork).
    lock_owner: u64,
}

fn new_lock_owner() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Default for FdTable {
    fn default() -> Self {
        FdTable { fds: Vec::new(), limit: NOFILE, lock_owner: new_lock_owner() }
    }
}

impl Clone for FdTable {
    /// fork's copy: the same open files, none of the locks (a new lock owner).
    fn clone(&self) -> Self {
        FdTable { fds: self.fds.clone(), limit: self.limit, lock_owner: new_lock_owner() }
    }
}

impl Drop for FdTable {
    /// The process is done with its descriptors (exit, or the last sharer): its POSIX
    /// locks go.
    fn drop(&mut self) {
        crate::fs::lock::release_all(crate::fs::lock::Owner::Posix(self.lock_owner));
    }
}

impl FdTable {
    /// The owner of POSIX locks taken through this table.
    pub fn lock_owner(&self) -> crate::fs::lock::Owner {
        crate::fs::lock::Owner::Posix(self.lock_owner)
    }

    pub fn new() -> FdTable {
        FdTable::default()
    }

    /// The open descriptors, lowest first.
    pub fn open_fds(&self) -> impl Iterator<Item = i32> + '_ {
        self.iter().map(|(fd, _)| fd)
    }

    pub fn get(&self, fd: i32) -> Result<Arc<File>, Errno> {
        usize::try_from(fd).ok().and_then(|i| self.fds.get(i)).and_then(|e| e.as_ref()).map(|e| Arc::clone(&e.file)).ok_or(Errno::EBADF)
    }

    pub fn entry(&self, fd: i32) -> Result<&FdEntry, Errno> {
        usize::try_from(fd).ok().and_then(|i| self.fds.get(i)).and_then(|e| e.as_ref()).ok_or(Errno::EBADF)
    }

    pub fn entry_mut(&mut self, fd: i32) -> Result<&mut FdEntry, Errno> {
        usize::try_from(fd).ok().and_then(|i| self.fds.get_mut(i)).and_then(|e| e.as_mut()).ok_or(Errno::EBADF)
    }

    /// The lowest free descriptor at or above `min`.
    pub fn alloc(&mut self, file: Arc<File>, cloexec: bool, min: usize) -> Result<i32, Errno> {
        let slot = (min..self.limit.min(NR_OPEN)).find(|&i| self.fds.get(i).is_none_or(|e| e.is_none())).ok_or(Errno::EMFILE)?;
        let fd = i32::try_from(slot).map_err(|_| Errno::EMFILE)?;
        if slot >= self.fds.len() {
            self.fds.resize(slot + 1, None);
        }
        self.fds[slot] = Some(FdEntry { file, cloexec });
        Ok(fd)
    }

    /// Put a file at exactly `fd` (dup2), returning what was there.
    pub fn install(&mut self, fd: i32, file: Arc<File>, cloexec: bool) -> Result<Option<FdEntry>, Errno> {
        let i = usize::try_from(fd).ok().filter(|&i| i < self.limit.min(NR_OPEN)).ok_or(Errno::EBADF)?;
        if i >= self.fds.len() {
            self.fds.resize(i + 1, None);
        }
        Ok(self.fds[i].replace(FdEntry { file, cloexec }))
    }

    pub fn close(&mut self, fd: i32) -> Result<FdEntry, Errno> {
        usize::try_from(fd).ok().and_then(|i| self.fds.get_mut(i)).and_then(Option::take).ok_or(Errno::EBADF)
    }

    /// Take every close-on-exec descriptor out (execve; [`close_on_exec`] drops them).
    fn take_close_on_exec(&mut self) -> Vec<FdEntry> {
        self.fds.iter_mut().filter(|e| e.as_ref().is_some_and(|x| x.cloexec)).filter_map(Option::take).collect()
    }

    /// Open descriptors, in order.
    pub fn iter(&self) -> impl Iterator<Item = (i32, &FdEntry)> {
        // Descriptors are below NR_OPEN, so each index is an int.
        self.fds.iter().enumerate().filter_map(|(i, e)| Some((i32::try_from(i).ok()?, e.as_ref()?)))
    }
}

/// Close every close-on-exec descriptor of `files` (execve). The files are dropped, and the
/// process's POSIX locks on them released, after the table's spin lock is let go: a last close
/// may sleep, and a lock's release wakes its waiters through a sleep queue.
pub fn close_on_exec(files: &SpinLock<FdTable>) {
    let (closed, owner) = {
        let mut t = files.lock();
        (t.take_close_on_exec(), t.lock_owner())
    };
    release_and_drop(closed, owner);
}

/// Close descriptor `fd` of `files` (a call undoing a descriptor it installed), the file
/// dropped with the table unlocked as in [`close_on_exec`].
pub fn close_fd(files: &SpinLock<FdTable>, fd: i32) -> Result<(), Errno> {
    let (entry, owner) = {
        let mut t = files.lock();
        (t.close(fd)?, t.lock_owner())
    };
    release_and_drop(vec![entry], owner);
    Ok(())
}

/// Closing a descriptor drops the process's POSIX locks on its file; then the file goes.
fn release_and_drop(closed: Vec<FdEntry>, owner: crate::fs::lock::Owner) {
    for e in closed {
        if crate::fs::lock::any_held() {
            crate::fs::lock::release(e.file.vnode.id(), owner);
        }
        drop(e);
    }
}
