//! Mounts: which file system is mounted where, from what, with which flags (Linux's struct
//! mount and super_block; BSD's struct mount and vfsops).
//!
//! A [`FileSystem`] is one instance of a file system (an ext2 disk, a tmpfs, procfs, …) with
//! the operations that concern it as a whole: its type name, statfs, sync, the change between
//! read-only and read/write, the busy check and the write-back of unmount. Every vnode knows
//! its file system ([`Vnode::fs`](crate::fs::vfs::Vnode::fs)).
//!
//! A [`Mount`] puts a file system's root on a directory of another mount (the root mount on
//! nothing) with per-mount flags — [`MountFlags`]: `ro`, `nosuid`, `nodev`, `noexec`,
//! `noatime`, `nodiratime`, `relatime` — that the VFS enforces for every file system alike:
//!
//! | flag       | enforced by                                              | errno  |
//! |------------|-----------------------------------------------------------|--------|
//! | `ro`       | [`want_write`]: every change of a name, data or attribute | EROFS  |
//! | `noexec`   | [`may_exec`] (execve), [`may_map_exec`] (mmap PROT_EXEC), [`fs_noexec`] (mprotect) | EACCES, EPERM, EACCES |
//! | `nosuid`   | [`suid_allowed`]: exec ignores set-user/group-id bits     | —      |
//! | `nodev`    | [`may_open_device`]: opening a device node                | EACCES |
//! | `noatime`  | [`Mount::atime_policy`]: reads leave the access time alone | —     |
//!
//! Paths carry their mount ([`NamePath::mount`]), as Linux's `struct path` does, so a flag is
//! the flag of the mount a file was reached through.
//!
//! The mount table is a list under the `mounts` spin lock, in mount order. A mount is busy
//! (umount2's EBUSY) while anything holds it besides the table and the caller's own path — a
//! working directory, an open file, another mount on top — or while its file system says so
//! (ext2: a file still in use, a mapping).

use std::fmt::{Debug, Write as _};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use bitflags::bitflags;
use linux_raw_sys::general as linux;
use platform::sync::SpinLock;

use crate::fs::namecache::{self, CachePolicy};
use crate::fs::namei::NamePath;
use crate::fs::vfs::{StatFs, VType, VnodeId, VnodeRef};
use crate::kern::errno::Errno;

pub type FsRef = Arc<dyn FileSystem>;
pub type MountRef = Arc<Mount>;

/// One instance of a file system: the operations on it as a whole.
pub trait FileSystem: Send + Sync + Debug {
    /// Its type as /proc/mounts and mount(8) name it: "ext2", "tmpfs", "proc", …
    fn type_name(&self) -> &'static str;

    /// A number no other file system instance has (from [`new_fs_id`]): with an inode
    /// number it names a vnode ([`VnodeId`]).
    fn id(&self) -> u64;

    /// statfs(2) figures.
    fn statfs(&self) -> Result<StatFs, Errno> {
        Ok(StatFs { magic: 0x0102_1994, bsize: 4096, ..StatFs::default() })
    }

    /// What the name cache may keep of its names ([`CachePolicy`]).
    fn cache_policy(&self) -> CachePolicy {
        CachePolicy::All
    }

    /// The renameat2(2) flags it can carry out (the VFS refuses others with EINVAL).
    fn rename_flags(&self) -> u32 {
        linux::RENAME_NOREPLACE
    }

    /// Host memory its caches hold, in bytes (ddb's `show memory`); None when the cache is
    /// busy (the debugger does not wait) or it keeps none.
    fn cache_bytes_nowait(&self) -> Option<u64> {
        None
    }

    /// Write back what is dirty (sync(2), syncfs(2), fsync(2) of one of its files).
    fn sync(&self) -> Result<(), Errno> {
        Ok(())
    }

    /// It can only be read (hostfs; an ext2 image the host will not let us write): a mount
    /// of it is always `ro`, and remounting it read/write is EROFS.
    fn forced_readonly(&self) -> bool {
        false
    }

    /// Its own part of a remount between read-only and read/write (ext2 marks itself clean
    /// on disk going read-only). The VFS refuses changes of a read-only mount either way.
    fn set_readonly(&self, _readonly: bool) -> Result<(), Errno> {
        Ok(())
    }

    /// Whether some of its files are in use in ways the mount table cannot see (an open or
    /// mapped ext2 file): umount2's EBUSY. Asked under the `mounts` lock.
    fn busy(&self) -> bool {
        false
    }

    /// It has left the mount table: write it back for good and let it go.
    fn unmount(&self) -> Result<(), Errno> {
        Ok(())
    }

    /// A handle naming `v`, one of its files, for as long as the file exists
    /// (name_to_handle_at(2)): its type and bytes. None when its files cannot be named so
    /// (Linux's file systems without export operations: EOPNOTSUPP).
    fn encode_handle(&self, _v: &VnodeRef) -> Option<(i32, Vec<u8>)> {
        None
    }

    /// The file a handle of [`FileSystem::encode_handle`]'s names (open_by_handle_at(2)):
    /// ESTALE when it names none (any more), or is not this file system's kind of handle.
    fn decode_handle(&self, _ty: i32, _bytes: &[u8]) -> Result<VnodeRef, Errno> {
        Err(Errno::ESTALE)
    }
}

static NEXT_FS_ID: AtomicU64 = AtomicU64::new(1);

/// A new file system instance's [`FileSystem::id`].
pub fn new_fs_id() -> u64 {
    NEXT_FS_ID.fetch_add(1, Ordering::Relaxed)
}

bitflags! {
    /// The flags of one mount (mount(2)'s MS_* bits that a mount keeps).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct MountFlags: u32 {
        const RDONLY = linux::MS_RDONLY;
        const NOSUID = linux::MS_NOSUID;
        const NODEV = linux::MS_NODEV;
        const NOEXEC = linux::MS_NOEXEC;
        const NOATIME = linux::MS_NOATIME;
        const NODIRATIME = linux::MS_NODIRATIME;
        const RELATIME = linux::MS_RELATIME;
    }
}

/// The access-time flags.
const ATIME_MASK: MountFlags = MountFlags::NOATIME.union(MountFlags::NODIRATIME).union(MountFlags::RELATIME);

impl MountFlags {
    /// The flags a mount(2) flags word asks for: access times are `relatime` unless it says
    /// `noatime` or `strictatime` (Linux's default since 2.6.30).
    pub fn from_mount_flags(ms: u32) -> MountFlags {
        let mut f = MountFlags::from_bits_truncate(ms);
        if ms & linux::MS_STRICTATIME != 0 {
            f.remove(MountFlags::NOATIME | MountFlags::RELATIME);
        } else if !f.contains(MountFlags::NOATIME) {
            f.insert(MountFlags::RELATIME);
        }
        f
    }

    /// The options /proc/mounts shows: "rw,nosuid,relatime" (Linux's order).
    pub fn options(self) -> String {
        let mut s = String::from(if self.contains(MountFlags::RDONLY) { "ro" } else { "rw" });
        for (f, name) in [
            (MountFlags::NOSUID, "nosuid"),
            (MountFlags::NODEV, "nodev"),
            (MountFlags::NOEXEC, "noexec"),
            (MountFlags::NOATIME, "noatime"),
            (MountFlags::NODIRATIME, "nodiratime"),
            (MountFlags::RELATIME, "relatime"),
        ] {
            if self.contains(f) {
                let _ = write!(s, ",{name}");
            }
        }
        s
    }

    /// statfs(2)'s f_flags: ST_RDONLY, ST_NOSUID, ST_NODEV, ST_NOEXEC, ST_NOATIME,
    /// ST_NODIRATIME, ST_RELATIME, and ST_VALID (the field is filled in).
    pub fn statfs_flags(self) -> u64 {
        const ST_VALID: u64 = 0x20;
        const ST_RELATIME: u64 = 0x1000;
        let mut st = ST_VALID | u64::from((self & !MountFlags::RELATIME).bits());
        if self.contains(MountFlags::RELATIME) {
            st |= ST_RELATIME;
        }
        st
    }
}

/// How reads update access times (the VFS asks, the file system keeps its times).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtimePolicy {
    /// noatime (or nodiratime for a directory): never.
    Never,
    /// relatime: when the access time is not later than the last change, or a day old.
    Relative,
    /// strictatime: at every access.
    Always,
}

/// A file system mounted somewhere.
#[derive(Debug)]
pub struct Mount {
    /// Its number (/proc/PID/mountinfo).
    pub id: u32,
    pub fs: FsRef,
    /// The root directory of `fs` as mounted here.
    pub root: VnodeRef,
    /// What was mounted ("/dev/vkd1", "tmpfs", the host directory).
    pub source: Vec<u8>,
    /// The directory it covers, as a path in the mount below (None for the root mount).
    pub on: Option<NamePath>,
    /// The identity of that directory (what lookups compare).
    covered: Option<VnodeId>,
    flags: AtomicU32,
    /// Files open for writing through it (see [`crate::fs::file::File::open`]).
    writers: AtomicU32,
}

static NEXT_MOUNT_ID: AtomicU32 = AtomicU32::new(1);
static ROOT: OnceLock<MountRef> = OnceLock::new();
static MOUNTS: SpinLock<Vec<MountRef>> = SpinLock::new("mounts", Vec::new());

impl Mount {
    fn new(root: VnodeRef, source: &[u8], on: Option<NamePath>, flags: MountFlags) -> MountRef {
        let fs = root.fs();
        let covered = on.as_ref().map(|np| np.vnode().id());
        let flags = if fs.forced_readonly() { flags | MountFlags::RDONLY } else { flags };
        Arc::new(Mount {
            id: NEXT_MOUNT_ID.fetch_add(1, Ordering::Relaxed),
            fs,
            root,
            source: source.to_vec(),
            on,
            covered,
            flags: AtomicU32::new(flags.bits()),
            writers: AtomicU32::new(0),
        })
    }

    pub fn flags(&self) -> MountFlags {
        MountFlags::from_bits_truncate(self.flags.load(Ordering::Relaxed))
    }

    pub fn readonly(&self) -> bool {
        self.flags().contains(MountFlags::RDONLY)
    }

    /// Become a writer (a file opened for writing): EROFS on a read-only mount. Counted
    /// first and checked after, so that a remount read-only, which sets the flag first and
    /// counts after, and an open never both go ahead.
    pub fn get_write(&self) -> Result<(), Errno> {
        self.writers.fetch_add(1, Ordering::SeqCst);
        if self.flags.load(Ordering::SeqCst) & MountFlags::RDONLY.bits() != 0 {
            self.put_write();
            return Err(Errno::EROFS);
        }
        Ok(())
    }

    /// A writer is gone.
    pub fn put_write(&self) {
        self.writers.fetch_sub(1, Ordering::SeqCst);
    }

    /// Where it is mounted, as the guest names it ("/" for the root).
    pub fn target(&self) -> Vec<u8> {
        self.on.as_ref().map_or_else(|| b"/".to_vec(), NamePath::to_path_bytes)
    }

    /// The mount it is mounted on (itself for the root mount, as Linux shows it).
    pub fn parent_id(&self) -> u32 {
        self.on.as_ref().map_or(self.id, |np| np.mount().id)
    }

    /// How reads of a file of type `vtype` on this mount update its access time.
    pub fn atime_policy(&self, vtype: VType) -> AtimePolicy {
        let f = self.flags();
        if f.contains(MountFlags::NOATIME) || (vtype == VType::Dir && f.contains(MountFlags::NODIRATIME)) {
            AtimePolicy::Never
        } else if f.contains(MountFlags::RELATIME) {
            AtimePolicy::Relative
        } else {
            AtimePolicy::Always
        }
    }
}

/// Mount the root file system (once).
pub fn mount_root(root: VnodeRef, source: &[u8], flags: MountFlags) {
    let m = Mount::new(root, source, None, flags);
    if ROOT.set(Arc::clone(&m)).is_ok() {
        MOUNTS.lock().push(m);
    }
}

/// The root mount.
pub fn root_mount() -> MountRef {
    Arc::clone(ROOT.get().expect("no root file system"))
}

/// Mount the file system whose root is `root` on the directory `at` (ENOTDIR when it is not
/// one, EBUSY when something is mounted there already).
pub fn mount(at: &NamePath, root: VnodeRef, source: &[u8], flags: MountFlags) -> Result<MountRef, Errno> {
    if at.vnode().vtype() != VType::Dir {
        return Err(Errno::ENOTDIR);
    }
    let id = at.vnode().id();
    let m = Mount::new(root, source, Some(at.clone()), flags);
    let mut table = MOUNTS.lock();
    if table.iter().any(|x| x.covered == Some(id)) {
        return Err(Errno::EBUSY);
    }
    table.push(Arc::clone(&m));
    Ok(m)
}

/// The mount whose root `at` is (EINVAL when `at` is no mount's root, as umount2 and a
/// remount say).
fn mount_at(at: &NamePath) -> Result<MountRef, Errno> {
    let m = Arc::clone(at.mount());
    if m.root.id() != at.vnode().id() {
        return Err(Errno::EINVAL);
    }
    Ok(m)
}

/// Take the mount whose root `at` is off the mount table (umount2): EINVAL when `at` is no
/// mount's root, EBUSY for the root mount, while something is mounted inside it, while
/// anything but the table and `at` holds it (a working directory, an open file) or while
/// its file system says it is busy. Its file system is then written back and let go.
pub fn unmount(at: NamePath) -> Result<(), Errno> {
    let m = mount_at(&at)?;
    if m.on.is_none() {
        return Err(Errno::EBUSY);
    }
    drop(at); // the caller's hold: what remains is the table's, `m` and others'
    namecache::purge_fs(m.fs.id()); // the cache holds vnodes (ext2's busy check counts them)
    let mut table = MOUNTS.lock();
    let i = table.iter().position(|x| Arc::ptr_eq(x, &m)).ok_or(Errno::EINVAL)?;
    let child = table.iter().any(|x| x.on.as_ref().is_some_and(|np| Arc::ptr_eq(np.mount(), &m)));
    if child || Arc::strong_count(&m) > 2 || m.fs.busy() {
        return Err(Errno::EBUSY);
    }
    table.remove(i);
    drop(table);
    m.fs.unmount()
}

/// Change the flags of the mount whose root `at` is (mount(2) with MS_REMOUNT): EINVAL when
/// `at` is no mount's root; EROFS to make a file system that can only be read read/write.
/// The access-time flags stay as they were unless `flags` names one (`keep_atime`).
pub fn remount(at: &NamePath, flags: MountFlags, keep_atime: bool) -> Result<(), Errno> {
    let m = mount_at(at)?;
    let old = m.flags();
    let mut new = flags;
    if keep_atime {
        new = (new & !ATIME_MASK) | (old & ATIME_MASK);
    }
    let ro = new.contains(MountFlags::RDONLY);
    if !ro && m.fs.forced_readonly() {
        return Err(Errno::EROFS);
    }
    if ro && !old.contains(MountFlags::RDONLY) {
        // Read-only from now on for new writers; EBUSY while a file is open for writing.
        m.flags.fetch_or(MountFlags::RDONLY.bits(), Ordering::SeqCst);
        if m.writers.load(Ordering::SeqCst) > 0 {
            m.flags.fetch_and(!MountFlags::RDONLY.bits(), Ordering::SeqCst);
            return Err(Errno::EBUSY);
        }
        if let Err(e) = m.fs.set_readonly(true) {
            m.flags.fetch_and(!MountFlags::RDONLY.bits(), Ordering::SeqCst);
            return Err(e);
        }
    } else if !ro && old.contains(MountFlags::RDONLY) {
        m.fs.set_readonly(false)?;
    }
    m.flags.store(new.bits(), Ordering::SeqCst);
    Ok(())
}

/// The mount table, in mount order (/proc/mounts).
pub fn mounts() -> Vec<MountRef> {
    MOUNTS.lock().clone()
}

/// The mount table without waiting (None while its lock is held: the debugger's view).
pub fn mounts_nowait() -> Option<Vec<MountRef>> {
    MOUNTS.try_lock().map(|m| m.clone())
}

/// What is mounted on the directory `v`, if anything.
pub fn covering(v: &VnodeRef) -> Option<MountRef> {
    let id = v.id();
    MOUNTS.lock().iter().rev().find(|m| m.covered == Some(id)).cloned()
}

/// Whether the directory `v` is a mount point (rmdir, rename: EBUSY).
pub fn is_mount_point(v: &VnodeRef) -> bool {
    covering(v).is_some()
}

/// Write access to a mount for the length of one change (Linux's mnt_want_write ...
/// mnt_drop_write): a remount read-only meanwhile is EBUSY.
#[derive(Debug)]
pub struct WriteAccess(Option<MountRef>);

impl Drop for WriteAccess {
    fn drop(&mut self) {
        if let Some(m) = &self.0 {
            m.put_write();
        }
    }
}

/// May a change be made through `mount` (mnt_want_write)? EROFS on a read-only mount; held
/// until the returned access is dropped. A file reached through no mount (a pipe) may always
/// change.
pub fn want_write(mount: Option<&MountRef>) -> Result<WriteAccess, Errno> {
    match mount {
        Some(m) => {
            m.get_write()?;
            Ok(WriteAccess(Some(Arc::clone(m))))
        }
        None => Ok(WriteAccess(None)),
    }
}

/// execve(2) of a file on `np`'s mount: EACCES on a `noexec` mount.
pub fn may_exec(np: &NamePath) -> Result<(), Errno> {
    if np.mount().flags().contains(MountFlags::NOEXEC) { Err(Errno::EACCES) } else { Ok(()) }
}

/// mmap(2) with PROT_EXEC of a file reached through `mount`: EPERM on a `noexec` mount
/// (mmap(2): "the mapped area belongs to a file on a filesystem that was mounted no-exec").
pub fn may_map_exec(mount: Option<&MountRef>) -> Result<(), Errno> {
    match mount {
        Some(m) if m.flags().contains(MountFlags::NOEXEC) => Err(Errno::EPERM),
        _ => Ok(()),
    }
}

/// Whether the file system `fs` (an id) is mounted noexec (mprotect(2) asks for a mapped
/// file, which keeps no path; a file system is mounted once).
pub fn fs_noexec(fs: u64) -> bool {
    MOUNTS.lock().iter().any(|m| m.fs.id() == fs && m.flags().contains(MountFlags::NOEXEC))
}

/// Whether exec honours the set-user-ID and set-group-ID bits of a file on `np`'s mount
/// (false on a `nosuid` mount: the program runs with the caller's ids). For the exec code
/// that sets the ids (and AT_SECURE) from those bits.
pub fn suid_allowed(np: &NamePath) -> bool {
    !np.mount().flags().contains(MountFlags::NOSUID)
}

/// open(2) of a device node reached through `np`: EACCES on a `nodev` mount.
pub fn may_open_device(np: &NamePath) -> Result<(), Errno> {
    let dev = matches!(np.vnode().vtype(), VType::Chr | VType::Blk);
    if dev && np.mount().flags().contains(MountFlags::NODEV) { Err(Errno::EACCES) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_from_mount_words() {
        let f = MountFlags::from_mount_flags(linux::MS_RDONLY | linux::MS_NOEXEC | linux::MS_MGC_VAL);
        assert_eq!(f, MountFlags::RDONLY | MountFlags::NOEXEC | MountFlags::RELATIME);
        assert_eq!(f.options(), "ro,noexec,relatime");
        assert_eq!(MountFlags::from_mount_flags(linux::MS_NOATIME).options(), "rw,noatime");
        assert_eq!(MountFlags::from_mount_flags(linux::MS_STRICTATIME | linux::MS_NOATIME).options(), "rw");
        assert_eq!(MountFlags::from_mount_flags(linux::MS_NOSUID | linux::MS_NODEV).options(), "rw,nosuid,nodev,relatime");
        assert_eq!(f.statfs_flags(), 0x20 | 1 | 8 | 0x1000);
    }

    #[test]
    fn atime_policies() {
        let m = |ms| Mount {
            id: 0,
            fs: crate::fs::pipe::pipefs(),
            root: crate::fs::pipe::new(0, 0).0,
            source: Vec::new(),
            on: None,
            covered: None,
            flags: AtomicU32::new(MountFlags::from_mount_flags(ms).bits()),
            writers: AtomicU32::new(0),
        };
        assert_eq!(m(0).atime_policy(VType::Reg), AtimePolicy::Relative);
        assert_eq!(m(linux::MS_STRICTATIME).atime_policy(VType::Reg), AtimePolicy::Always);
        assert_eq!(m(linux::MS_NOATIME).atime_policy(VType::Reg), AtimePolicy::Never);
        assert_eq!(m(linux::MS_NODIRATIME).atime_policy(VType::Dir), AtimePolicy::Never);
        assert_eq!(m(linux::MS_NODIRATIME).atime_policy(VType::Reg), AtimePolicy::Relative);
    }
}
