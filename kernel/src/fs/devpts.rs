//! devpts: the pseudo-terminals' file system, mounted on /dev/pts at boot (and by `mount -t
//! devpts`). Its root lists `ptmx` and one character device `N` (136,N) per pty whose master
//! is open; every mount shows the same ptys (no `newinstance`). The ptys themselves are
//! `kern::tty::pty`'s; this file holds their vnodes:
//!
//! * [`PtyMaster`]: what opening /dev/ptmx (or /dev/pts/ptmx) gives — reads the slave's
//!   output, writes its input; closing it hangs the slave up.
//! * [`PtySlave`]: /dev/pts/N as a name, and, once opened, an open end of the slave (counted:
//!   the master reads EIO when the last one closes). Its owner and mode are the pty's (the
//!   opener of the master, group tty, 0620; login's chown and chmod change them).

use std::sync::{Arc, OnceLock};

use crate::fs::mount::{FileSystem, FsRef, new_fs_id};
use crate::fs::vfs::{Attr, DirEntry, S_IFCHR, S_IFDIR, SetAttr, Timespec, VType, Vnode, VnodeRef};
use crate::kern::errno::Errno;
use crate::kern::tty::{DEV_PTMX, Tty, pty};

/// statfs(2)'s f_type of devpts.
const DEVPTS_SUPER_MAGIC: u64 = 0x1cd1;
/// `st_dev` of devpts.
const DEVPTS_DEV: u64 = 0x16;

/// One devpts mount.
#[derive(Debug)]
pub struct DevPtsFs {
    id: u64,
}

impl FileSystem for DevPtsFs {
    fn type_name(&self) -> &'static str {
        "devpts"
    }

    fn id(&self) -> u64 {
        self.id
    }

    /// Ptys come and go by themselves: no name is cached.
    fn cache_policy(&self) -> crate::fs::namecache::CachePolicy {
        crate::fs::namecache::CachePolicy::None
    }

    fn statfs(&self) -> Result<crate::fs::vfs::StatFs, Errno> {
        Ok(crate::fs::vfs::StatFs { magic: DEVPTS_SUPER_MAGIC, bsize: 4096, ..Default::default() })
    }
}

/// The devpts instance masters and opened slaves belong to.
fn ptsfs() -> Arc<DevPtsFs> {
    static FS: OnceLock<Arc<DevPtsFs>> = OnceLock::new();
    Arc::clone(FS.get_or_init(|| Arc::new(DevPtsFs { id: new_fs_id() })))
}

fn now() -> Timespec {
    Timespec::now()
}

/// A new devpts mount: its root directory.
pub fn new() -> VnodeRef {
    Arc::new(PtsDir { fs: Arc::new(DevPtsFs { id: new_fs_id() }) })
}

/// Inode numbers: 1 the root, 2 ptmx, N + 3 the slave N.
fn slave_ino(index: u32) -> u64 {
    u64::from(index) + 3
}

/// /dev/pts.
#[derive(Debug)]
pub struct PtsDir {
    fs: Arc<DevPtsFs>,
}

impl Vnode for PtsDir {
    fn attr(&self) -> Result<Attr, Errno> {
        let t = now();
        Ok(Attr { dev: DEVPTS_DEV, ino: 1, mode: S_IFDIR | 0o755, nlink: 2, blksize: 1024, atime: t, mtime: t, ctime: t, ..Default::default() })
    }

    fn vtype(&self) -> VType {
        VType::Dir
    }

    fn lookup(&self, name: &[u8]) -> Result<VnodeRef, Errno> {
        if name == b"ptmx" {
            return Ok(Arc::new(PtsPtmx { fs: Arc::clone(&self.fs) }));
        }
        let index: u32 = std::str::from_utf8(name).ok().filter(|s| !s.starts_with('+')).and_then(|s| s.parse().ok()).ok_or(Errno::ENOENT)?;
        if name.len() > 1 && name[0] == b'0' {
            return Err(Errno::ENOENT);
        }
        let tty = pty::by_index(index).ok_or(Errno::ENOENT)?;
        Ok(Arc::new(PtySlave { fs: Arc::clone(&self.fs) as FsRef, tty, counted: false }))
    }

    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        // Positions: 1 for ptmx, N + 2 for pty N (stable while ptys come and go).
        let mut v = vec![DirEntry { ino: 2, name: b"ptmx".to_vec(), vtype: VType::Chr, off: 1 }];
        v.extend(
            pty::indices()
                .into_iter()
                .map(|i| DirEntry { ino: slave_ino(i), name: i.to_string().into_bytes(), vtype: VType::Chr, off: u64::from(i) + 2 }),
        );
        Ok(v)
    }

    fn fs(&self) -> FsRef {
        Arc::clone(&self.fs) as FsRef
    }

    fn ino(&self) -> u64 {
        1
    }
}

/// /dev/pts/ptmx: another way to /dev/ptmx (mode 0000, as devpts's default `ptmxmode`).
#[derive(Debug)]
pub struct PtsPtmx {
    fs: Arc<DevPtsFs>,
}

impl Vnode for PtsPtmx {
    fn attr(&self) -> Result<Attr, Errno> {
        let t = now();
        Ok(Attr { dev: DEVPTS_DEV, ino: 2, mode: S_IFCHR, nlink: 1, rdev: DEV_PTMX, blksize: 1024, atime: t, mtime: t, ctime: t, ..Default::default() })
    }

    fn vtype(&self) -> VType {
        VType::Chr
    }

    fn read_at(&self, _off: u64, _buf: &mut [u8]) -> Result<usize, Errno> {
        Err(Errno::EIO)
    }

    fn write_at(&self, _off: u64, _buf: &[u8]) -> Result<usize, Errno> {
        Err(Errno::EIO)
    }

    fn is_tty(&self) -> bool {
        true
    }

    fn seekable(&self) -> bool {
        false
    }

    fn fs(&self) -> FsRef {
        Arc::clone(&self.fs) as FsRef
    }

    fn ino(&self) -> u64 {
        2
    }
}

/// A pty's slave: the /dev/pts/N name, or (`counted`) an open end of it.
#[derive(Debug)]
pub struct PtySlave {
    fs: FsRef,
    tty: Arc<Tty>,
    counted: bool,
}

impl PtySlave {
    fn index(&self) -> u32 {
        self.tty.master().map_or(0, |m| m.index)
    }
}

impl Drop for PtySlave {
    fn drop(&mut self) {
        if self.counted
            && let Some(m) = self.tty.master()
        {
            m.close_slave();
        }
    }
}

/// Open the slave of `tty` (EIO while it is locked or after its master closed).
pub fn open_slave(tty: &Arc<Tty>) -> Result<VnodeRef, Errno> {
    let m = tty.master().ok_or(Errno::ENXIO)?;
    m.open_slave()?;
    Ok(Arc::new(PtySlave { fs: ptsfs() as FsRef, tty: Arc::clone(tty), counted: true }))
}

/// Open /dev/ptmx for `uid`: a new pty's master.
pub fn open_master(uid: u32) -> Result<VnodeRef, Errno> {
    let tty = pty::open_master(uid)?;
    Ok(Arc::new(PtyMaster { tty }))
}

impl Vnode for PtySlave {
    fn attr(&self) -> Result<Attr, Errno> {
        let (mode, uid, gid) = self.tty.master().map_or((0o620, 0, pty::TTY_GID), |m| m.owner());
        let t = now();
        Ok(Attr {
            dev: DEVPTS_DEV,
            ino: slave_ino(self.index()),
            mode: S_IFCHR | mode,
            nlink: 1,
            uid,
            gid,
            rdev: self.tty.dev,
            blksize: 1024,
            atime: t,
            mtime: t,
            ctime: t,
            ..Default::default()
        })
    }

    /// chmod and chown (times are not kept).
    fn setattr(&self, a: &SetAttr) -> Result<(), Errno> {
        if let Some(m) = self.tty.master() {
            m.set_owner(a.mode, a.uid, a.gid);
        }
        Ok(())
    }

    fn vtype(&self) -> VType {
        VType::Chr
    }

    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        self.read_nb(off, buf, false)
    }

    fn read_nb(&self, _off: u64, buf: &mut [u8], nonblock: bool) -> Result<usize, Errno> {
        self.tty.read(buf, nonblock)
    }

    fn write_at(&self, _off: u64, buf: &[u8]) -> Result<usize, Errno> {
        self.tty.write(buf)
    }

    fn poll(&self) -> u16 {
        self.tty.poll()
    }

    fn pollable(&self) -> bool {
        true
    }

    fn seekable(&self) -> bool {
        false
    }

    fn is_tty(&self) -> bool {
        true
    }

    fn tty(&self) -> Option<Arc<Tty>> {
        Some(Arc::clone(&self.tty))
    }

    fn fs(&self) -> FsRef {
        Arc::clone(&self.fs)
    }

    fn ino(&self) -> u64 {
        slave_ino(self.index())
    }
}

/// An open pty master.
#[derive(Debug)]
pub struct PtyMaster {
    tty: Arc<Tty>,
}

impl PtyMaster {
    fn master(&self) -> Result<&Arc<pty::Master>, Errno> {
        self.tty.master().ok_or(Errno::EIO)
    }
}

impl Drop for PtyMaster {
    fn drop(&mut self) {
        pty::close_master(&self.tty);
    }
}

impl Vnode for PtyMaster {
    /// /dev/ptmx's attributes.
    fn attr(&self) -> Result<Attr, Errno> {
        let t = now();
        Ok(Attr { dev: DEVPTS_DEV, ino: 2, mode: S_IFCHR | 0o666, nlink: 1, rdev: DEV_PTMX, blksize: 1024, atime: t, mtime: t, ctime: t, ..Default::default() })
    }

    fn vtype(&self) -> VType {
        VType::Chr
    }

    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        self.read_nb(off, buf, false)
    }

    fn read_nb(&self, _off: u64, buf: &mut [u8], nonblock: bool) -> Result<usize, Errno> {
        self.master()?.read(buf, nonblock)
    }

    /// Typing at the slave.
    fn write_at(&self, _off: u64, buf: &[u8]) -> Result<usize, Errno> {
        self.tty.receive(buf);
        Ok(buf.len())
    }

    fn poll(&self) -> u16 {
        self.master().map_or(0, |m| m.poll())
    }

    fn pollable(&self) -> bool {
        true
    }

    fn poll_gen(&self) -> (u64, u64) {
        (self.master().map_or(0, |m| m.poll_gen()), 0)
    }

    fn seekable(&self) -> bool {
        false
    }

    fn is_tty(&self) -> bool {
        true
    }

    fn tty(&self) -> Option<Arc<Tty>> {
        Some(Arc::clone(&self.tty))
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }

    fn fs(&self) -> FsRef {
        ptsfs() as FsRef
    }

    fn ino(&self) -> u64 {
        2
    }
}
