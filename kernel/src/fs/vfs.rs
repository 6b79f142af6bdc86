//! The VFS's core types: vnodes (files, directories, devices of any file system), their
//! attributes, directory entries, and the guest's `struct stat`.
//!
//! A file system implements [`Vnode`]; operations it does not support keep their defaults
//! (ENOTDIR for directory operations on a non-directory, EROFS for changes, …). Vnode methods
//! run in the calling guest thread's kernel thread and may sleep (a device read waits for
//! input).

use std::fmt::Debug;
use std::sync::Arc;

use crate::abi::{self, linux};
use crate::fs::mount::{AtimePolicy, FsRef};
use crate::kern::errno::Errno;

pub type VnodeRef = Arc<dyn Vnode>;

/// Which vnode: its file system instance ([`FileSystem::id`](crate::fs::mount::FileSystem::id))
/// and inode number. Mount points and the name cache compare vnodes by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VnodeId {
    pub fs: u64,
    pub ino: u64,
}

pub const POLLIN: u16 = 0x001;
pub const POLLPRI: u16 = 0x002;
pub const POLLOUT: u16 = 0x004;
pub const POLLERR: u16 = 0x008;
pub const POLLHUP: u16 = 0x010;
pub const POLLNVAL: u16 = 0x020;

/// Where poll(2) and select(2) sleep; anything that becomes ready wakes it.
static POLL_CHAN: u8 = 0;

pub fn poll_chan() -> u64 {
    crate::kern::sleep::wchan_of(&POLL_CHAN)
}

/// Wake every poller (a pipe or terminal changed).
pub fn poll_wakeup() {
    crate::kern::sleep::wakeup(poll_chan());
    crate::fs::sigio::kick();
}

/// File types (the S_IFMT part of a mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VType {
    Reg,
    Dir,
    Lnk,
    Chr,
    Blk,
    Fifo,
    Sock,
    /// An anonymous inode (epoll, eventfd, signalfd, timerfd): no file type bits, as
    /// Linux's anon_inodefs gives them.
    Anon,
}

pub const S_IFMT: u32 = 0o170000;
pub const S_IFSOCK: u32 = 0o140000;
pub const S_IFLNK: u32 = 0o120000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFBLK: u32 = 0o060000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFCHR: u32 = 0o020000;
pub const S_IFIFO: u32 = 0o010000;

impl VType {
    pub fn from_mode(mode: u32) -> VType {
        match mode & S_IFMT {
            S_IFDIR => VType::Dir,
            S_IFLNK => VType::Lnk,
            S_IFCHR => VType::Chr,
            S_IFBLK => VType::Blk,
            S_IFIFO => VType::Fifo,
            S_IFSOCK => VType::Sock,
            0 => VType::Anon,
            _ => VType::Reg,
        }
    }

    pub fn mode_bits(self) -> u32 {
        match self {
            VType::Reg => S_IFREG,
            VType::Dir => S_IFDIR,
            VType::Lnk => S_IFLNK,
            VType::Chr => S_IFCHR,
            VType::Blk => S_IFBLK,
            VType::Fifo => S_IFIFO,
            VType::Sock => S_IFSOCK,
            VType::Anon => 0,
        }
    }

    /// `d_type` in a dirent64.
    pub fn dirent_type(self) -> u8 {
        match self {
            VType::Fifo => 1,
            VType::Chr => 2,
            VType::Dir => 4,
            VType::Blk => 6,
            VType::Reg => 8,
            VType::Lnk => 10,
            VType::Sock => 12,
            VType::Anon => 0,
        }
    }
}

/// Whether a read at `now` sets the access time, by `policy`: always (strictatime), or —
/// relatime — when the access time is not after the last modification or status change, or is
/// a day old (Linux's relatime_need_update).
pub fn atime_due(policy: AtimePolicy, atime: Timespec, mtime: Timespec, ctime: Timespec, now: Timespec) -> bool {
    match policy {
        AtimePolicy::Never => false,
        AtimePolicy::Always => true,
        AtimePolicy::Relative => atime <= mtime || atime <= ctime || now.sec - atime.sec >= 24 * 60 * 60,
    }
}

/// A time as the guest sees it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timespec {
    pub sec: i64,
    pub nsec: i64,
}

impl Timespec {
    /// A time in nanoseconds since the epoch (saturating past year 292 billion).
    pub fn from_ns(ns: u64) -> Timespec {
        let sec = i64::try_from(ns / 1_000_000_000).unwrap_or(i64::MAX);
        // Below 1e9: fits.
        let nsec = i64::try_from(ns % 1_000_000_000).unwrap_or(0);
        Timespec { sec, nsec }
    }

    /// The wall clock now.
    pub fn now() -> Timespec {
        Timespec::from_ns(platform::time::realtime_ns())
    }
}

/// File attributes (stat).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attr {
    pub dev: u64,
    pub ino: u64,
    pub mode: u32,
    pub nlink: u64,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub size: u64,
    pub blksize: u64,
    pub blocks: u64,
    pub atime: Timespec,
    pub mtime: Timespec,
    pub ctime: Timespec,
    /// The inode flags chattr(1) sets (FS_*_FL: FS_IOC_GETFLAGS's), for file systems that
    /// keep them (ext2, tmpfs); None for the rest.
    pub iflags: Option<u32>,
}

impl Attr {
    pub fn vtype(&self) -> VType {
        VType::from_mode(self.mode)
    }

    /// FS_IMMUTABLE_FL: no change at all, no new link, not opened for writing (EPERM).
    pub fn immutable(&self) -> bool {
        self.iflags.unwrap_or(0) & linux::FS_IMMUTABLE_FL != 0
    }

    /// FS_APPEND_FL: opened for writing only to append, never truncated, removed, renamed,
    /// linked or its attributes changed (EPERM); a directory's entries are never removed.
    pub fn append_only(&self) -> bool {
        self.iflags.unwrap_or(0) & linux::FS_APPEND_FL != 0
    }

    /// `struct stat` (stat, fstat, lstat, newfstatat).
    pub fn to_stat(&self) -> abi::fs::Stat {
        let sec = |t: Timespec| u64::from_ne_bytes(t.sec.to_ne_bytes());
        let nsec = |t: Timespec| u64::try_from(t.nsec).unwrap_or(0);
        abi::fs::Stat {
            st_dev: self.dev,
            st_ino: self.ino,
            st_nlink: self.nlink,
            st_mode: self.mode,
            st_uid: self.uid,
            st_gid: self.gid,
            st_rdev: self.rdev,
            st_size: i64::try_from(self.size).unwrap_or(i64::MAX),
            st_blksize: i64::try_from(self.blksize).unwrap_or(i64::MAX),
            st_blocks: i64::try_from(self.blocks).unwrap_or(i64::MAX),
            st_atime: sec(self.atime),
            st_atime_nsec: nsec(self.atime),
            st_mtime: sec(self.mtime),
            st_mtime_nsec: nsec(self.mtime),
            st_ctime: sec(self.ctime),
            st_ctime_nsec: nsec(self.ctime),
            ..abi::fs::Stat::default()
        }
    }

    /// `struct statx` (statx(2)): the basic fields (STATX_BASIC_STATS), and the mount's
    /// number when it is known (STATX_MNT_ID).
    pub fn to_statx(&self, mnt_id: Option<u32>) -> abi::fs::Statx {
        let ts = |t: Timespec| abi::fs::StatxTimestamp { tv_sec: t.sec, tv_nsec: u32::try_from(t.nsec).unwrap_or(0), __reserved: 0 };
        let mut mask = linux::STATX_BASIC_STATS;
        if mnt_id.is_some() {
            mask |= linux::STATX_MNT_ID;
        }
        // The attributes the inode flags give (ext2_getattr's, shmem_getattr's).
        let shown = [
            (linux::FS_APPEND_FL, linux::STATX_ATTR_APPEND),
            (linux::FS_IMMUTABLE_FL, linux::STATX_ATTR_IMMUTABLE),
            (linux::FS_NODUMP_FL, linux::STATX_ATTR_NODUMP),
        ];
        let (attributes, attributes_mask) = match self.iflags {
            Some(fl) => shown.iter().fold((0u64, 0u64), |(a, m), &(f, s)| {
                (if fl & f != 0 { a | u64::from(s) } else { a }, m | u64::from(s))
            }),
            None => (0, 0),
        };
        abi::fs::Statx {
            stx_mask: mask,
            stx_attributes: attributes,
            stx_attributes_mask: attributes_mask,
            stx_blksize: u32::try_from(self.blksize).unwrap_or(u32::MAX),
            stx_nlink: u32::try_from(self.nlink).unwrap_or(u32::MAX),
            stx_uid: self.uid,
            stx_gid: self.gid,
            stx_mode: u16::try_from(self.mode & 0xffff).unwrap_or(0),
            stx_ino: self.ino,
            stx_size: self.size,
            stx_blocks: self.blocks,
            stx_atime: ts(self.atime),
            stx_ctime: ts(self.ctime),
            stx_mtime: ts(self.mtime),
            stx_rdev_major: dev_major(self.rdev),
            stx_rdev_minor: dev_minor(self.rdev),
            stx_dev_major: dev_major(self.dev),
            stx_dev_minor: dev_minor(self.dev),
            stx_mnt_id: mnt_id.map_or(0, u64::from),
            ..abi::fs::Statx::default()
        }
    }
}

/// The major number of a device number (glibc's gnu_dev_major: 12 bits at 8, the rest at 32).
pub fn dev_major(dev: u64) -> u32 {
    u32::try_from(((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff)).unwrap_or(u32::MAX)
}

/// The minor number of a device number (gnu_dev_minor: 8 bits at 0, the rest at 12).
pub fn dev_minor(dev: u64) -> u32 {
    u32::try_from((dev & 0xff) | ((dev >> 12) & 0xffff_ff00)).unwrap_or(u32::MAX)
}

/// Attribute changes (chmod, chown, utimensat): None leaves a field alone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SetAttr {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub atime: Option<Timespec>,
    pub mtime: Option<Timespec>,
}

/// statfs(2) figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatFs {
    pub magic: u64,
    pub bsize: u64,
    pub blocks: u64,
    pub bfree: u64,
    pub files: u64,
    pub ffree: u64,
}

/// A directory entry. Names are bytes, as on Linux: anything but `/` and NUL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub ino: u64,
    pub name: Vec<u8>,
    pub vtype: VType,
    /// Its position in the directory: at least 1 and increasing along the list readdir
    /// returns, and stable — a reader that got this entry resumes with the first one whose
    /// position is greater, even when entries before it have been removed meanwhile
    /// (getdents64's d_off; an index would skip entries).
    pub off: u64,
}

/// Longest name of one directory entry (NAME_MAX).
pub const NAME_MAX: usize = 255;

/// A name a directory can hold: not empty, `.` or `..`, without `/` or NUL (EINVAL), at most
/// NAME_MAX bytes (ENAMETOOLONG). Any other bytes are allowed: names need not be UTF-8.
pub fn check_name(name: &[u8]) -> Result<(), Errno> {
    if name.is_empty() || name == b"." || name == b".." || name.iter().any(|&b| b == b'/' || b == 0) {
        return Err(Errno::EINVAL);
    }
    if name.len() > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(())
}

/// A file, directory or device of some file system.
pub trait Vnode: Send + Sync + Debug {
    fn attr(&self) -> Result<Attr, Errno>;

    /// The file system it belongs to.
    fn fs(&self) -> FsRef;

    /// Its inode number, without I/O where the file system can (file systems override the
    /// default, which asks `attr`).
    fn ino(&self) -> u64 {
        self.attr().map_or(0, |a| a.ino)
    }

    /// Its identity.
    fn id(&self) -> VnodeId {
        VnodeId { fs: self.fs().id(), ino: self.ino() }
    }

    fn vtype(&self) -> VType {
        self.attr().map_or(VType::Reg, |a| a.vtype())
    }

    /// A name in this directory.
    fn lookup(&self, _name: &[u8]) -> Result<VnodeRef, Errno> {
        Err(Errno::ENOTDIR)
    }

    /// This directory's parent (`..`), within its file system: the root's is itself (or an
    /// error). The VFS walks it to keep a directory from being moved under itself.
    fn parent(&self) -> Result<VnodeRef, Errno> {
        self.lookup(b"..")
    }

    /// This directory's entries (without `.` and `..`, which the VFS adds).
    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        Err(Errno::ENOTDIR)
    }

    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        Err(Errno::EINVAL)
    }

    /// Read at an offset (devices ignore it). May sleep.
    fn read_at(&self, _off: u64, _buf: &mut [u8]) -> Result<usize, Errno> {
        Err(Errno::EISDIR)
    }

    /// Write at an offset (devices ignore it).
    fn write_at(&self, _off: u64, _buf: &[u8]) -> Result<usize, Errno> {
        Err(Errno::EISDIR)
    }

    /// read(2) of an open file: as `read_at`, but a file opened O_NONBLOCK gets EAGAIN rather
    /// than a sleep (pipes, terminals).
    fn read_nb(&self, off: u64, buf: &mut [u8], _nonblock: bool) -> Result<usize, Errno> {
        self.read_at(off, buf)
    }

    /// write(2) of an open file, as `read_nb`.
    fn write_nb(&self, off: u64, buf: &[u8], _nonblock: bool) -> Result<usize, Errno> {
        self.write_at(off, buf)
    }

    /// poll(2) readiness: POLLIN, POLLOUT, POLLHUP… bits (regular files are always ready).
    /// Whatever changes the answer calls [`poll_wakeup`].
    fn poll(&self) -> u16 {
        POLLIN | POLLOUT
    }

    /// Whether epoll may watch it (epoll_ctl(2): EPERM for regular files and directories,
    /// which are always ready; anything with a real `poll` says yes).
    fn pollable(&self) -> bool {
        !matches!(self.vtype(), VType::Reg | VType::Dir | VType::Lnk)
    }

    /// Counts of the wake-ups it has sent, (input side, output side): data arriving, room
    /// appearing. Edge-triggered epoll reports an event again when its side's count moved,
    /// as Linux's wake-up callbacks do. The default (nothing counted) leaves epoll to
    /// report rising edges of readiness alone.
    fn poll_gen(&self) -> (u64, u64) {
        (0, 0)
    }

    /// The object behind the vnode, for calls that work on one kind of file only
    /// (epoll_ctl on an epoll instance, timerfd_settime, F_ADD_SEALS): None for the rest.
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        None
    }

    /// Create a regular file `name` in this directory.
    fn create(&self, _name: &[u8], _mode: u32, _uid: u32, _gid: u32) -> Result<VnodeRef, Errno> {
        Err(self.no_change())
    }

    fn mkdir(&self, _name: &[u8], _mode: u32, _uid: u32, _gid: u32) -> Result<VnodeRef, Errno> {
        Err(self.no_change())
    }

    fn symlink(&self, _name: &[u8], _target: &[u8], _uid: u32, _gid: u32) -> Result<(), Errno> {
        Err(self.no_change())
    }

    /// Create a special file `name` in this directory: `mode` carries its type (S_IFSOCK, a
    /// socket bound to a path; S_IFIFO) and permission bits. It has no data.
    fn mknod(&self, _name: &[u8], _mode: u32, _uid: u32, _gid: u32) -> Result<VnodeRef, Errno> {
        Err(self.no_change())
    }

    /// Create a device node `name` (`mode`: S_IFCHR or S_IFBLK and permission bits) for the
    /// device number `rdev`. A file system that cannot keep one says EPERM.
    fn mknod_dev(&self, _name: &[u8], _mode: u32, _rdev: u64, _uid: u32, _gid: u32) -> Result<VnodeRef, Errno> {
        Err(Errno::EPERM)
    }

    /// Another name for `target` (a hard link; same file system only).
    fn link(&self, _name: &[u8], _target: &VnodeRef) -> Result<(), Errno> {
        Err(self.no_change())
    }

    /// Remove a non-directory entry.
    fn unlink(&self, _name: &[u8]) -> Result<(), Errno> {
        Err(self.no_change())
    }

    /// Remove an empty directory.
    fn rmdir(&self, _name: &[u8]) -> Result<(), Errno> {
        Err(self.no_change())
    }

    /// Move `old` in this directory to `new` in `newdir` (renameat2 flags; with
    /// RENAME_EXCHANGE the two swap). The VFS has checked every rule of rename(2) under its
    /// directory locks ([`crate::fs::vnops::rename`]): the file system only carries it out.
    fn rename(&self, _old: &[u8], _newdir: &VnodeRef, _new: &[u8], _flags: u32) -> Result<(), Errno> {
        Err(self.no_change())
    }

    fn truncate(&self, _size: u64) -> Result<(), Errno> {
        Err(self.no_change())
    }

    /// chmod, chown, utimes.
    fn setattr(&self, _a: &SetAttr) -> Result<(), Errno> {
        Err(self.no_change())
    }

    /// The errno a change gets on this file system (EROFS, or ENOTDIR on a non-directory).
    /// Set the inode flags (FS_IOC_SETFLAGS, after the VFS's checks): ENOTTY where the file
    /// system keeps none, EOPNOTSUPP for flags it cannot keep.
    fn set_iflags(&self, _flags: u32) -> Result<(), Errno> {
        Err(Errno::ENOTTY)
    }

    fn no_change(&self) -> Errno {
        if self.vtype() == VType::Dir { Errno::EROFS } else { Errno::ENOTDIR }
    }

    /// Whether lseek means anything (false for devices, pipes).
    /// A pipe opened again through a /proc/PID/fd link: a new end of the same pipe, reading
    /// and/or writing (None: not a pipe).
    fn open_fifo(&self, _read: bool, _write: bool) -> Option<VnodeRef> {
        None
    }

    /// A check of the file's own when it is opened with open(2) `flags` (after the mode
    /// bits): procfs refuses another user's /proc/PID/maps (EACCES), as Linux's
    /// ptrace_may_access does, and writing a setting the caller may not write (root
    /// included: sysctl's own permission check).
    /// An open file of it was made (not O_PATH): a loop device counts its users.
    fn opened(&self) {}

    /// An open file of it went away (its last reference; paired with [`Vnode::opened`]).
    fn closed(&self) {}

    /// fallocate(2) on a regular file (fs/vnops.rs checked the mode and range): allocate
    /// or punch `[off, off + len)`. EOPNOTSUPP unless the file system does it.
    fn fallocate(&self, _mode: u32, _off: u64, _len: u64) -> Result<(), Errno> {
        Err(Errno::EOPNOTSUPP)
    }

    fn may_open(&self, _flags: u32) -> Result<(), Errno> {
        Ok(())
    }

    /// A "magic" link (/proc/PID/fd/N): following it leads to the open file itself, not to
    /// the path its text names (None: an ordinary symbolic link).
    fn magic_link(&self) -> Option<Result<crate::fs::namei::NamePath, Errno>> {
        None
    }

    /// The extended attributes of this inode, on a file system that keeps them (tmpfs); None
    /// where they are not supported (EOPNOTSUPP).
    fn xattrs(&self) -> Option<&platform::sync::SpinLock<crate::fs::xattr::XattrMap>> {
        None
    }

    fn seekable(&self) -> bool {
        true
    }

    /// lseek(2) of a device whose position means nothing: Some(position lseek sets and
    /// returns, whatever it is asked) — /dev/null, /dev/zero and /dev/full reset it to 0, the
    /// random devices keep it (Linux's null_lseek, noop_llseek). None: a file's lseek.
    fn fixed_seek(&self, _current: u64) -> Option<u64> {
        None
    }

    /// Whether shared mappings can map this file's own pages ([`Vnode::get_page`]): then a
    /// MAP_SHARED mapping is the file, coherent with read and write.
    fn shared_pages(&self) -> bool {
        false
    }

    /// The file's page cache, if it keeps one (ext2's regular files): private mappings map its
    /// pages copy-on-write instead of reading a page each. A file system that returns one
    /// keeps it equal to the file ([`crate::vm::pagecache`]).
    fn page_cache(&self) -> Option<Arc<crate::vm::pagecache::PageCache>> {
        None
    }

    /// The file's page at page index `idx` (allocated zeroed in a hole), with a new physical
    /// page reference for the caller. ENXIO when the page lies wholly past the end of the file
    /// (the mapping's SIGBUS).
    fn get_page(&self, _idx: u64) -> Result<u64, Errno> {
        Err(Errno::ENODEV)
    }

    /// Whether the file's page at page index `idx` is in memory (mincore(2) of a file
    /// mapping): its own page ([`Vnode::get_page`]) or its page cache's.
    fn page_resident(&self, idx: u64) -> bool {
        self.page_cache().is_some_and(|c| c.contains(idx))
    }

    /// It was read (data, or a directory's entries) through a mount whose access-time policy
    /// is `policy` (never `Never`: the VFS does not call then). File systems that keep access
    /// times set theirs as [`atime_due`] says; the default keeps none.
    fn accessed(&self, _policy: AtimePolicy) {}

    /// Whether this is a terminal node (terminal ioctls, isatty; open(2) asks
    /// `kern::tty::ctty::on_open`): the console, /dev/tty, /dev/ptmx, a pty.
    fn is_tty(&self) -> bool {
        false
    }

    /// The terminal it is (the console, a pty's slave — also for its master).
    fn tty(&self) -> Option<Arc<crate::kern::tty::Tty>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_and_statx() {
        let t = Timespec { sec: -5, nsec: 7 };
        let a = Attr { dev: (254 << 8) | 3, ino: 2, mode: S_IFREG | 0o644, nlink: 3, size: 4096, atime: t, rdev: 0x1234_5678_9abc, ..Default::default() };
        let s = a.to_stat();
        assert_eq!((s.st_ino, s.st_mode, s.st_size, s.st_nlink), (2, S_IFREG | 0o644, 4096, 3));
        assert_eq!((s.st_atime, s.st_atime_nsec), (u64::MAX - 4, 7), "a time before 1970");
        let x = a.to_statx(Some(9));
        assert_eq!((x.stx_ino, x.stx_mode, x.stx_nlink, x.stx_atime.tv_sec), (2, 0o100644, 3, -5));
        assert_eq!((x.stx_dev_major, x.stx_dev_minor, x.stx_mnt_id), (254, 3, 9));
        assert_eq!(x.stx_mask, linux::STATX_BASIC_STATS | linux::STATX_MNT_ID);
        // makedev(major, minor) as glibc encodes it, back again.
        let (major, minor) = (0x12345u64, 0x6789au64);
        let dev = (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12) | ((major & !0xfff) << 32);
        assert_eq!((dev_major(dev), dev_minor(dev)), (0x12345, 0x6789a));
        assert_eq!(VType::from_mode(S_IFDIR | 0o755), VType::Dir);
    }
}
