//! devfs: the device nodes — `console`, `tty`, `null`, `zero`, `random`, `urandom`, the links
//! `fd`, `stdin`, `stdout`, `stderr` into /proc/self/fd, the
//! disks `vkd0`, `vkd1`, … (block devices, see `bcache`), `loop-control` and the loop devices
//! `loopN` that exist (fs/loopdev.rs) — in one directory, mounted on /dev at
//! boot.
//!
//! The console is the kernel's console tty ([`crate::kern::tty`]); `tty` is the caller's
//! controlling terminal (open(2) turns it into the console or a pty, or fails with ENXIO);
//! `ptmx` opens a new pseudo-terminal's master (fs/devpts.rs); `full` reads zeros and refuses
//! writes (ENOSPC); `pts` and `shm` are the directories devpts and a tmpfs are mounted on at
//! boot.

use std::sync::Arc;

use platform::sync::SpinLock;

use crate::fs::mount::{FileSystem, FsRef, new_fs_id};
use crate::fs::vfs::{Attr, DirEntry, S_IFCHR, S_IFDIR, S_IFLNK, SetAttr, Timespec, VType, Vnode, VnodeRef};
use crate::kern::errno::Errno;

const DEVFS_DEV: u64 = 5;

/// The console's permission bits, owner and group: root's at boot, then whoever login(1)
/// gives it to (fchown/fchmod of the terminal), as a tty device node keeps them on Linux.
static CONSOLE_OWNER: SpinLock<(u32, u32, u32)> = SpinLock::new("console_owner", (0o600, 0, 0));

fn makedev(major: u64, minor: u64) -> u64 {
    (major << 8) | minor
}

fn boot_time() -> Timespec {
    Timespec::from_ns(crate::kern::clock::boottime_ns())
}

/// Which device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Console,
    Tty,
    Null,
    Zero,
    Random,
    Urandom,
    Ptmx,
    Full,
}

/// One devfs instance.
#[derive(Debug)]
pub struct DevFs {
    id: u64,
}

impl FileSystem for DevFs {
    fn type_name(&self) -> &'static str {
        "devfs"
    }

    fn id(&self) -> u64 {
        self.id
    }
}

/// A character device.
#[derive(Debug)]
pub struct CharDev {
    fs: Arc<DevFs>,
    kind: Kind,
    ino: u64,
}

impl CharDev {
    fn rdev(&self) -> u64 {
        match self.kind {
            Kind::Console => makedev(5, 1),
            Kind::Tty => makedev(5, 0),
            Kind::Null => makedev(1, 3),
            Kind::Zero => makedev(1, 5),
            Kind::Random => makedev(1, 8),
            Kind::Urandom => makedev(1, 9),
            Kind::Ptmx => makedev(5, 2),
            Kind::Full => makedev(1, 7),
        }
    }
}

impl CharDev {
    /// /dev/zero: mmap(2) of it is anonymous memory (shared for MAP_SHARED).
    pub fn is_zero(&self) -> bool {
        self.kind == Kind::Zero
    }
}

impl Vnode for CharDev {
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }

    fn attr(&self) -> Result<Attr, Errno> {
        let (bits, uid, gid) = if self.kind == Kind::Console { *CONSOLE_OWNER.lock() } else { (0o666, 0, 0) };
        let t = boot_time();
        Ok(Attr {
            dev: DEVFS_DEV,
            ino: self.ino,
            mode: S_IFCHR | bits,
            nlink: 1,
            uid,
            gid,
            rdev: self.rdev(),
            blksize: 4096,
            atime: t,
            mtime: t,
            ctime: t,
            ..Default::default()
        })
    }

    /// The console takes chmod and chown (login gives the terminal to the user); times are
    /// not kept. Other devices keep their fixed attributes.
    fn setattr(&self, a: &SetAttr) -> Result<(), Errno> {
        if self.kind != Kind::Console {
            return Err(self.no_change());
        }
        let mut o = CONSOLE_OWNER.lock();
        o.0 = a.mode.map_or(o.0, |m| m & 0o7777);
        o.1 = a.uid.unwrap_or(o.1);
        o.2 = a.gid.unwrap_or(o.2);
        Ok(())
    }

    fn vtype(&self) -> VType {
        VType::Chr
    }

    fn read_at(&self, _off: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        match self.kind {
            Kind::Null => Ok(0),
            Kind::Zero | Kind::Full => {
                buf.fill(0);
                Ok(buf.len())
            }
            Kind::Random | Kind::Urandom => {
                platform::io::random_bytes(buf);
                Ok(buf.len())
            }
            Kind::Console | Kind::Tty => crate::kern::tty::console().read(buf, false),
            // Opening it gives a pty master instead (kern::tty::ctty::on_open).
            Kind::Ptmx => Err(Errno::EIO),
        }
    }

    fn read_nb(&self, off: u64, buf: &mut [u8], nonblock: bool) -> Result<usize, Errno> {
        match self.kind {
            Kind::Console | Kind::Tty => crate::kern::tty::console().read(buf, nonblock),
            _ => self.read_at(off, buf),
        }
    }

    fn write_at(&self, _off: u64, buf: &[u8]) -> Result<usize, Errno> {
        match self.kind {
            Kind::Console | Kind::Tty => crate::kern::tty::console().write(buf),
            Kind::Ptmx => Err(Errno::EIO),
            // null(4): /dev/full is always full.
            Kind::Full => Err(Errno::ENOSPC),
            _ => Ok(buf.len()),
        }
    }

    fn poll(&self) -> u16 {
        use crate::fs::vfs::{POLLIN, POLLOUT};
        match self.kind {
            Kind::Console | Kind::Tty => crate::kern::tty::console().poll(),
            _ => POLLIN | POLLOUT,
        }
    }

    /// Terminals refuse positions (ESPIPE); the memory devices take pread/pwrite and lseek
    /// (mem(4)), as Linux's do.
    fn seekable(&self) -> bool {
        !matches!(self.kind, Kind::Console | Kind::Tty | Kind::Ptmx)
    }

    fn fixed_seek(&self, current: u64) -> Option<u64> {
        match self.kind {
            Kind::Null | Kind::Zero | Kind::Full => Some(0),
            Kind::Random | Kind::Urandom => Some(current),
            Kind::Console | Kind::Tty | Kind::Ptmx => None,
        }
    }

    /// Linux's memory devices (null, zero, full) have no poll: epoll refuses them (EPERM).
    fn pollable(&self) -> bool {
        !matches!(self.kind, Kind::Null | Kind::Zero | Kind::Full)
    }

    fn is_tty(&self) -> bool {
        matches!(self.kind, Kind::Console | Kind::Tty | Kind::Ptmx)
    }

    fn tty(&self) -> Option<Arc<crate::kern::tty::Tty>> {
        (self.kind == Kind::Console).then(|| Arc::clone(crate::kern::tty::console_arc()))
    }

    fn fs(&self) -> FsRef {
        Arc::clone(&self.fs) as FsRef
    }

    fn ino(&self) -> u64 {
        self.ino
    }
}

/// A symbolic link of /dev: `fd`, `stdin`, `stdout`, `stderr` into /proc/self/fd, as udev
/// makes them.
#[derive(Debug)]
pub struct DevLink {
    fs: Arc<DevFs>,
    target: &'static str,
    ino: u64,
}

impl Vnode for DevLink {
    fn attr(&self) -> Result<Attr, Errno> {
        let t = boot_time();
        let size = self.target.len() as u64;
        Ok(Attr { dev: DEVFS_DEV, ino: self.ino, mode: S_IFLNK | 0o777, nlink: 1, size, blksize: 4096, atime: t, mtime: t, ctime: t, ..Default::default() })
    }

    fn vtype(&self) -> VType {
        VType::Lnk
    }

    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        Ok(self.target.as_bytes().to_vec())
    }

    fn fs(&self) -> FsRef {
        Arc::clone(&self.fs) as FsRef
    }

    fn ino(&self) -> u64 {
        self.ino
    }
}

/// The /dev directory (and its empty subdirectories, mount points: `pts`).
#[derive(Debug)]
pub struct DevDir {
    fs: Arc<DevFs>,
    entries: Vec<(&'static str, VnodeRef)>,
    ino: u64,
}

impl Vnode for DevDir {
    fn attr(&self) -> Result<Attr, Errno> {
        let t = boot_time();
        let nlink = 2 + self.entries.iter().filter(|(_, v)| v.vtype() == VType::Dir).count() as u64;
        Ok(Attr { dev: DEVFS_DEV, ino: self.ino, mode: S_IFDIR | 0o755, nlink, blksize: 4096, atime: t, mtime: t, ctime: t, ..Default::default() })
    }

    fn vtype(&self) -> VType {
        VType::Dir
    }

    /// The root also has the loop devices that exist now (`loopN`, fs/loopdev.rs).
    fn lookup(&self, name: &[u8]) -> Result<VnodeRef, Errno> {
        if let Some((_, v)) = self.entries.iter().find(|(n, _)| n.as_bytes() == name) {
            return Ok(Arc::clone(v));
        }
        let fs = Arc::clone(&self.fs) as FsRef;
        (self.ino == 1).then(|| crate::fs::loopdev::lookup(&fs, DEVFS_DEV, name)).flatten().ok_or(Errno::ENOENT)
    }

    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        let mut v: Vec<DirEntry> = self.entries.iter().enumerate().map(|(i, (n, v))| DirEntry { ino: v.ino(), name: n.as_bytes().to_vec(), vtype: v.vtype(), off: i as u64 + 1 }).collect();
        if self.ino == 1 {
            for (name, ino) in crate::fs::loopdev::names() {
                let off = v.len() as u64 + 1;
                v.push(DirEntry { ino, name, vtype: VType::Blk, off });
            }
        }
        Ok(v)
    }

    fn fs(&self) -> FsRef {
        Arc::clone(&self.fs) as FsRef
    }

    fn ino(&self) -> u64 {
        self.ino
    }
}

/// A devfs instance.
pub fn new() -> VnodeRef {
    let fs = Arc::new(DevFs { id: new_fs_id() });
    let devs = [
        ("console", Kind::Console),
        ("null", Kind::Null),
        ("zero", Kind::Zero),
        ("random", Kind::Random),
        ("urandom", Kind::Urandom),
        ("tty", Kind::Tty),
        ("ptmx", Kind::Ptmx),
        ("full", Kind::Full),
    ];
    let entries = devs
        .iter()
        .enumerate()
        .map(|(i, &(n, kind))| (n, Arc::new(CharDev { fs: Arc::clone(&fs), kind, ino: i as u64 + 2 }) as VnodeRef))
        .collect::<Vec<_>>();
    let mut entries = entries;
    for (name, target) in [("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")] {
        let ino = entries.len() as u64 + 2;
        entries.push((name, Arc::new(DevLink { fs: Arc::clone(&fs), target, ino }) as VnodeRef));
    }
    // The disks given with -r/-R (not host directories): /dev/vkdN.
    for (i, d) in crate::kern::init_main::boot_args().disks.iter().enumerate().take(crate::fs::bcache::VKD_NAMES.len()) {
        if !d.is_dir {
            let ino = entries.len() as u64 + 2;
            entries.push((crate::fs::bcache::VKD_NAMES[i], Arc::new(crate::fs::bcache::DiskNode::new(Arc::clone(&fs) as FsRef, i, DEVFS_DEV, ino)) as VnodeRef));
        }
    }
    let ino = entries.len() as u64 + 2;
    entries.push(("loop-control", crate::fs::loopdev::control_node(Arc::clone(&fs) as FsRef, DEVFS_DEV, ino)));
    // Mount points: devpts at boot on /dev/pts, a tmpfs on /dev/shm (shm_open(3)).
    for name in ["pts", "shm"] {
        let ino = entries.len() as u64 + 2;
        entries.push((name, Arc::new(DevDir { fs: Arc::clone(&fs), entries: Vec::new(), ino }) as VnodeRef));
    }
    Arc::new(DevDir { fs, entries, ino: 1 })
}

/// The device whose number is `rdev` (a device node elsewhere is opened as it): the entry
/// of the devfs mounted on /dev with that number (character or block as `vtype` says), a
/// loop device included. ENXIO when there is none, as Linux for a number with no driver.
pub fn by_rdev(vtype: VType, rdev: u64) -> Result<VnodeRef, Errno> {
    let dev = crate::fs::namei::namei(&crate::fs::namei::NamePath::root(), b"/dev", true).map_err(|_| Errno::ENXIO)?;
    let dir = dev.vnode();
    if dir.fs().type_name() != "devfs" {
        return Err(Errno::ENXIO);
    }
    for e in dir.readdir()? {
        if e.vtype != vtype {
            continue;
        }
        if let Ok(v) = dir.lookup(&e.name)
            && v.attr().is_ok_and(|a| a.rdev == rdev)
        {
            return Ok(v);
        }
    }
    Err(Errno::ENXIO)
}

/// The console device (for init's stdin/stdout/stderr), of a devfs of its own that is
/// mounted nowhere.
pub fn console() -> VnodeRef {
    Arc::new(CharDev { fs: Arc::new(DevFs { id: new_fs_id() }), kind: Kind::Console, ino: 2 })
}
