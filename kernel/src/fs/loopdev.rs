//! Loop devices (loop(4)): `/dev/loopN` block devices whose data is an open file, and
//! `/dev/loop-control` (LOOP_CTL_GET_FREE, LOOP_CTL_ADD, LOOP_CTL_REMOVE) that makes and
//! removes them. `mount -o loop`, losetup(8) and mke2fs use them.
//!
//! A [`Loop`] is bound to a file by LOOP_SET_FD or LOOP_CONFIGURE (the open file is held
//! until it is unbound) and unbound by LOOP_CLR_FD — at once if its caller is its only user,
//! else when the last user lets it go, as with LO_FLAGS_AUTOCLEAR. Its users are the open
//! files of its node ([`Vnode::opened`]/[`Vnode::closed`]) and a file system mounted on it
//! ([`block_dev`]'s [`LoopIo`], let go at unmount). Its size is the file's from `lo_offset`
//! on (at most `lo_sizelimit` bytes), in whole 512-byte sectors, taken when it is bound or
//! its status changes and at LOOP_SET_CAPACITY. Reads and writes go to the file's vnode at
//! `lo_offset` plus the position; LO_FLAGS_READ_ONLY (a file or node not open for writing)
//! refuses writes (EPERM). Eight loop devices exist at boot, as Linux's default max_loop.
//!
//! The nodes are 0660 root:disk, as udev makes them: who may open them may use them.
//! LOOP_SET_STATUS64 and LOOP_SET_CAPACITY need the node open for writing or CAP_SYS_ADMIN
//! (EPERM). LOOP_SET_STATUS and LOOP_GET_STATUS take the old `struct loop_info` (LTP's
//! device set-up uses them). Not done: LOOP_CHANGE_FD (ENOTTY), direct I/O
//! (LOOP_SET_DIRECT_IO 1 is EINVAL), partitions (PARTSCAN is kept as a flag and nothing
//! scans), /sys/block; more than 1024 loop devices at once (LOOP_CTL_ADD and GET_FREE answer
//! ENOSPC).
//!
//! Locks: the table (`loop_table`, a spinlock, only to find or add a loop) and each loop's
//! binding (`loopdev`, a spinlock, held only to copy, replace or take it — the size is found
//! and an old binding's file dropped with no lock held, since a file's last close may sleep;
//! `loopdev` → `loop_table` in LOOP_CTL_REMOVE). I/O copies the binding and then calls the
//! backing file's vnode with no loop lock held. A binding may go through other loop devices
//! (at most [`MAX_CHAIN`]), never back to itself (EBADF).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Once};

use platform::sync::SpinLock;

use crate::abi::loopdev::{self as lo, LoopConfig, LoopInfo, LoopInfo64};
use crate::fs::bcache::BlockDev;
use crate::fs::blockdev::{BlockInfo, BlockIo, SECTOR_BYTES};
use crate::fs::file::File;
use crate::fs::mount::FsRef;
use crate::fs::vfs::{Attr, S_IFBLK, S_IFCHR, Timespec, VType, Vnode, VnodeRef};
use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};

/// Block major of loop devices.
pub const LOOP_MAJOR: u64 = 7;
/// /dev/loop-control: misc device 10:237.
const CONTROL_RDEV: u64 = (10 << 8) | 237;
/// Loop devices that exist at boot.
const BOOT_LOOPS: u32 = 8;
/// Minor numbers go up to 2^20 - 1, as Linux's.
const MAX_MINOR: u32 = (1 << 20) - 1;
/// Most loop devices at once (Linux has no limit but the minors): a guest adding devices
/// without end gets ENOSPC rather than the host's memory.
const MAX_LOOPS: usize = 1024;
/// Group `disk`, the owner group of the nodes.
const DISK_GID: u32 = 6;
/// Inode numbers of loop nodes in devfs: this plus the minor.
const INO_BASE: u64 = 1 << 32;
/// Loop devices a binding may go through to its file.
const MAX_CHAIN: usize = 8;
/// Largest read or write of the node in one call.
const IO_MAX_BYTES: usize = 1 << 20;

/// What a bound loop device reads and writes.
#[derive(Debug, Clone)]
struct Binding {
    file: Arc<File>,
    offset: u64,
    sizelimit: u64,
    /// Bytes, whole sectors.
    size: u64,
    flags: u32,
    file_name: [u8; lo::LO_NAME_SIZE],
    crypt_name: [u8; lo::LO_NAME_SIZE],
    block_size: u32,
}

/// One loop device.
#[derive(Debug)]
pub struct Loop {
    minor: u32,
    state: SpinLock<Option<Binding>>,
    /// Open files of its node and a file system mounted on it.
    users: AtomicUsize,
    /// Removed by LOOP_CTL_REMOVE: its nodes answer ENXIO.
    removed: AtomicBool,
}

static LOOPS: SpinLock<BTreeMap<u32, Arc<Loop>>> = SpinLock::new("loop_table", BTreeMap::new());
static BOOT: Once = Once::new();

fn new_loop(minor: u32) -> Arc<Loop> {
    Arc::new(Loop { minor, state: SpinLock::new("loopdev", None), users: AtomicUsize::new(0), removed: AtomicBool::new(false) })
}

/// The table, with the boot loops made the first time.
fn table() -> platform::sync::SpinGuard<'static, BTreeMap<u32, Arc<Loop>>> {
    BOOT.call_once(|| {
        let mut t = LOOPS.lock();
        for m in 0..BOOT_LOOPS {
            t.insert(m, new_loop(m));
        }
    });
    LOOPS.lock()
}

/// Linux's new_encode_dev.
fn encode_dev(major: u64, minor: u64) -> u64 {
    (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12)
}

/// Size of what `file` holds from `offset` on, at most `sizelimit` (0: no limit), in whole
/// sectors.
fn backing_size(file: &File, offset: u64, sizelimit: u64) -> Result<u64, Errno> {
    let total = match crate::fs::blockdev::size_of(&file.vnode) {
        Some(r) => r?,
        None => file.vnode.attr()?.size,
    };
    let mut size = total.saturating_sub(offset);
    if sizelimit != 0 {
        size = size.min(sizelimit);
    }
    Ok(size & !(u64::from(SECTOR_BYTES) - 1))
}

fn name_of(b: &[u8; lo::LO_NAME_SIZE]) -> [u8; lo::LO_NAME_SIZE] {
    let mut n = *b;
    n[lo::LO_NAME_SIZE - 1] = 0;
    n
}

impl Loop {
    /// A copy of its binding (ENXIO when unbound).
    fn binding(&self) -> Result<Binding, Errno> {
        self.state.lock().clone().ok_or(Errno::ENXIO)
    }

    fn get_user(&self) {
        self.users.fetch_add(1, Ordering::AcqRel);
    }

    /// A user let it go: the last one unbinds it if LO_FLAGS_AUTOCLEAR is set.
    fn put_user(&self) {
        if self.users.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        let gone = {
            let mut st = self.state.lock();
            let clear = self.users.load(Ordering::Acquire) == 0
                && st.as_ref().is_some_and(|b| b.flags & lo::LO_FLAGS_AUTOCLEAR != 0);
            if clear { st.take() } else { None }
        };
        drop(gone); // the backing file's last reference may close it: no lock held
    }

    /// Read `buf.len()` bytes at `off` of the device (zeros past the file's end).
    fn read_into(b: &Binding, off: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let mut done = 0;
        while done < buf.len() {
            let pos = b.offset.checked_add(off + done as u64).ok_or(Errno::EIO)?;
            let n = b.file.vnode.read_at(pos, &mut buf[done..])?;
            if n == 0 {
                buf[done..].fill(0);
                break;
            }
            done += n;
        }
        Ok(())
    }

    fn write_from(b: &Binding, off: u64, data: &[u8]) -> Result<(), Errno> {
        if b.flags & lo::LO_FLAGS_READ_ONLY != 0 {
            return Err(Errno::EPERM);
        }
        let mut done = 0;
        while done < data.len() {
            let pos = b.offset.checked_add(off + done as u64).ok_or(Errno::EIO)?;
            let n = b.file.vnode.write_at(pos, &data[done..])?;
            if n == 0 {
                return Err(Errno::EIO);
            }
            done += n;
        }
        Ok(())
    }

    /// Change the binding with `f` if it is still the one `b` was copied from (the same
    /// open file, not unbound and bound again meanwhile: else ENXIO). The spinlock is held
    /// only for `f`; what the change replaces is dropped after it.
    fn replace_if_same(&self, b: &Binding, f: impl FnOnce(&mut Binding)) -> SysResult {
        let old = {
            let mut st = self.state.lock();
            match st.as_mut() {
                Some(cur) if Arc::ptr_eq(&cur.file, &b.file) => {
                    let old = cur.clone();
                    f(cur);
                    old
                }
                _ => return Err(Errno::ENXIO),
            }
        };
        drop(old);
        Ok(0)
    }

    /// Bind it to `file` (LOOP_SET_FD, LOOP_CONFIGURE); `writable`: its node is open for writing.
    fn bind(&self, file: Arc<File>, writable: bool, info: Option<&LoopInfo64>, block_size: u32) -> Result<(), Errno> {
        if file.flags() & crate::fs::file::O_PATH != 0 {
            return Err(Errno::EBADF);
        }
        if !matches!(file.vnode.vtype(), VType::Reg | VType::Blk) {
            return Err(Errno::EINVAL);
        }
        self.check_chain(&file)?;
        let mut b = Binding {
            file,
            offset: 0,
            sizelimit: 0,
            size: 0,
            flags: 0,
            file_name: [0; lo::LO_NAME_SIZE],
            crypt_name: [0; lo::LO_NAME_SIZE],
            block_size: if block_size == 0 { SECTOR_BYTES } else { block_size },
        };
        if let Some(i) = info {
            status_from_info(&mut b, i)?;
        }
        if !b.file.writable() || !writable {
            b.flags |= lo::LO_FLAGS_READ_ONLY;
        }
        b.size = backing_size(&b.file, b.offset, b.sizelimit)?;
        let mut st = self.state.lock();
        if st.is_some() {
            drop(st);
            return Err(Errno::EBUSY); // `b` (and its file) dropped after the lock
        }
        *st = Some(b);
        Ok(())
    }

    /// Linux's loop_validate_file: a file that is itself a loop device must not lead back to
    /// this one (EBADF) and must be bound (EINVAL); chains are at most [`MAX_CHAIN`] deep
    /// (EINVAL), so the I/O's recursion through them is bounded.
    fn check_chain(&self, file: &Arc<File>) -> Result<(), Errno> {
        let mut f = Arc::clone(file);
        for _ in 0..MAX_CHAIN {
            let Some(n) = f.vnode.as_any().and_then(|a| a.downcast_ref::<LoopNode>()) else { return Ok(()) };
            if n.lo.minor == self.minor {
                return Err(Errno::EBADF);
            }
            let next = n.lo.binding().map_err(|_| Errno::EINVAL)?.file;
            f = next;
        }
        Err(Errno::EINVAL)
    }
}

/// Linux's loop_set_status_from_info: the offset, size limit, names and flags of `i`.
fn status_from_info(b: &mut Binding, i: &LoopInfo64) -> Result<(), Errno> {
    if i.lo_encrypt_key_size as usize > 32 || i.lo_encrypt_type != 0 {
        return Err(Errno::EINVAL);
    }
    if i.lo_offset > i64::MAX as u64 || i.lo_sizelimit > i64::MAX as u64 {
        return Err(Errno::EOVERFLOW);
    }
    b.offset = i.lo_offset;
    b.sizelimit = i.lo_sizelimit;
    b.file_name = name_of(&i.lo_file_name);
    b.crypt_name = name_of(&i.lo_crypt_name);
    b.flags = i.lo_flags;
    Ok(())
}

/// A mounted file system's I/O on a loop device: one user of it until released.
#[derive(Debug)]
struct LoopIo {
    lo: Arc<Loop>,
    released: AtomicBool,
}

impl BlockIo for LoopIo {
    fn size(&self) -> u64 {
        self.lo.binding().map_or(0, |b| b.size)
    }

    fn is_readonly(&self) -> bool {
        self.lo.binding().is_ok_and(|b| b.flags & lo::LO_FLAGS_READ_ONLY != 0)
    }

    fn read(&self, off: u64, len: usize) -> Result<Vec<u8>, Errno> {
        let b = self.lo.binding().map_err(|_| Errno::EIO)?;
        let mut out = vec![0u8; len];
        Loop::read_into(&b, off, &mut out)?;
        Ok(out)
    }

    fn write(&self, off: u64, data: Vec<u8>) -> Result<(), Errno> {
        let b = self.lo.binding().map_err(|_| Errno::EIO)?;
        Loop::write_from(&b, off, &data)
    }

    fn flush(&self) -> Result<(), Errno> {
        let b = self.lo.binding().map_err(|_| Errno::EIO)?;
        crate::fs::vnops::fsync(b.file.vnode.as_ref())
    }

    fn release(&self) {
        if !self.released.swap(true, Ordering::AcqRel) {
            self.lo.put_user();
        }
    }
}

impl Drop for LoopIo {
    fn drop(&mut self) {
        self.release();
    }
}

/// The block device of the loop node `v` for a file system to mount (ENXIO when unbound).
pub fn block_dev(v: &VnodeRef) -> Option<Result<Arc<BlockDev>, Errno>> {
    let n = v.as_any()?.downcast_ref::<LoopNode>()?;
    let lo = Arc::clone(&n.lo);
    Some((|| {
        if lo.removed.load(Ordering::Acquire) {
            return Err(Errno::ENXIO);
        }
        lo.binding()?;
        lo.get_user();
        let name = format!("loop{}", lo.minor);
        let rdev = encode_dev(LOOP_MAJOR, u64::from(lo.minor));
        Ok(BlockDev::new(name, rdev, Arc::new(LoopIo { lo, released: AtomicBool::new(false) })))
    })())
}

/// Write back what the loop node `v` wrote (fsync of /dev/loopN): its backing file's.
pub fn flush(v: &dyn Vnode) -> Option<Result<(), Errno>> {
    let n = v.as_any()?.downcast_ref::<LoopNode>()?;
    Some(n.lo.binding().and_then(|b| crate::fs::vnops::fsync(b.file.vnode.as_ref())))
}

/// `/dev/loopN`.
#[derive(Debug)]
pub struct LoopNode {
    fs: FsRef,
    dev: u64,
    lo: Arc<Loop>,
}

impl LoopNode {
    /// Size and writability, for the block ioctls (size 0 when unbound).
    pub fn info(&self) -> Result<BlockInfo, Errno> {
        if self.lo.removed.load(Ordering::Acquire) {
            return Err(Errno::ENXIO);
        }
        let b = self.lo.state.lock().clone();
        Ok(BlockInfo {
            size: b.as_ref().map_or(0, |b| b.size),
            readonly: b.is_some_and(|b| b.flags & lo::LO_FLAGS_READ_ONLY != 0),
        })
    }
}

fn boot_time() -> Timespec {
    Timespec::from_ns(crate::kern::clock::boottime_ns())
}

impl Vnode for LoopNode {
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }

    /// As Linux's stat of a block device: size 0 (lseek and BLKGETSIZE64 give the size).
    fn attr(&self) -> Result<Attr, Errno> {
        let t = boot_time();
        Ok(Attr {
            dev: self.dev,
            ino: self.ino(),
            mode: S_IFBLK | 0o660,
            nlink: 1,
            gid: DISK_GID,
            rdev: encode_dev(LOOP_MAJOR, u64::from(self.lo.minor)),
            blksize: 4096,
            atime: t,
            mtime: t,
            ctime: t,
            ..Default::default()
        })
    }

    fn vtype(&self) -> VType {
        VType::Blk
    }

    fn may_open(&self, _flags: u32) -> Result<(), Errno> {
        if self.lo.removed.load(Ordering::Acquire) { Err(Errno::ENXIO) } else { Ok(()) }
    }

    fn opened(&self) {
        self.lo.get_user();
    }

    fn closed(&self) {
        self.lo.put_user();
    }

    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let Ok(b) = self.lo.binding() else { return Ok(0) };
        if off >= b.size {
            return Ok(0);
        }
        let n = buf.len().min(usize::try_from(b.size - off).unwrap_or(usize::MAX)).min(IO_MAX_BYTES);
        Loop::read_into(&b, off, &mut buf[..n])?;
        Ok(n)
    }

    fn write_at(&self, off: u64, buf: &[u8]) -> Result<usize, Errno> {
        let Ok(b) = self.lo.binding() else { return Err(Errno::ENOSPC) };
        if b.flags & lo::LO_FLAGS_READ_ONLY != 0 {
            return Err(Errno::EPERM);
        }
        if off >= b.size {
            return Err(Errno::ENOSPC);
        }
        let n = buf.len().min(usize::try_from(b.size - off).unwrap_or(usize::MAX)).min(IO_MAX_BYTES);
        Loop::write_from(&b, off, &buf[..n])?;
        Ok(n)
    }

    fn fs(&self) -> FsRef {
        Arc::clone(&self.fs)
    }

    fn ino(&self) -> u64 {
        INO_BASE + u64::from(self.lo.minor)
    }
}

/// `/dev/loop-control`.
#[derive(Debug)]
pub struct LoopControl {
    fs: FsRef,
    dev: u64,
    ino: u64,
}

impl Vnode for LoopControl {
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }

    fn attr(&self) -> Result<Attr, Errno> {
        let t = boot_time();
        Ok(Attr {
            dev: self.dev,
            ino: self.ino,
            mode: S_IFCHR | 0o660,
            nlink: 1,
            gid: DISK_GID,
            rdev: CONTROL_RDEV,
            blksize: 4096,
            atime: t,
            mtime: t,
            ctime: t,
            ..Default::default()
        })
    }

    fn vtype(&self) -> VType {
        VType::Chr
    }

    fn read_at(&self, _off: u64, _buf: &mut [u8]) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
    }

    fn write_at(&self, _off: u64, _buf: &[u8]) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
    }

    fn seekable(&self) -> bool {
        false
    }

    fn fs(&self) -> FsRef {
        Arc::clone(&self.fs)
    }

    fn ino(&self) -> u64 {
        self.ino
    }
}

/// The loop-control node of a devfs (`fs`, st_dev `dev`).
pub fn control_node(fs: FsRef, dev: u64, ino: u64) -> VnodeRef {
    Arc::new(LoopControl { fs, dev, ino })
}

/// `loopN` in a devfs: the node of loop device N, if it exists.
pub fn lookup(fs: &FsRef, dev: u64, name: &[u8]) -> Option<VnodeRef> {
    let digits = name.strip_prefix(b"loop")?;
    if digits.is_empty() || (digits.len() > 1 && digits[0] == b'0') || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let minor: u32 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    let lo = Arc::clone(table().get(&minor)?);
    Some(Arc::new(LoopNode { fs: Arc::clone(fs), dev, lo }))
}

/// The bound loop devices and their sizes (/proc/partitions).
pub fn bound_sizes() -> Vec<(u32, u64)> {
    let loops: Vec<Arc<Loop>> = table().values().cloned().collect();
    loops.iter().filter_map(|l| Some((l.minor, l.binding().ok()?.size))).filter(|&(_, size)| size > 0).collect()
}

/// The names and inode numbers of the loop nodes, for readdir of /dev.
pub fn names() -> Vec<(Vec<u8>, u64)> {
    table().keys().map(|&m| (format!("loop{m}").into_bytes(), INO_BASE + u64::from(m))).collect()
}

/// The ioctls of loop devices and loop-control, when `f` is one (None otherwise, or for a
/// request that is not a loop request: the block ioctls come next).
pub fn ioctl(ctx: &mut Ctx<'_>, f: &File, req: u32) -> Option<SysResult> {
    let any = f.vnode.as_any()?;
    if any.is::<LoopControl>() {
        return Some(control_ioctl(ctx, req));
    }
    let n = any.downcast_ref::<LoopNode>()?;
    let lo = &n.lo;
    if lo.removed.load(Ordering::Acquire) {
        return Some(Err(Errno::ENXIO));
    }
    let may_set = f.writable() || ctx.p.user().cred().capable(crate::kern::cred::CAP_SYS_ADMIN);
    let r = match req {
        lo::LOOP_SET_FD => {
            let backing = ctx.p.user().files().lock().get(ctx.int(2));
            backing.and_then(|b| lo.bind(b, f.writable(), None, 0)).map(|()| 0)
        }
        lo::LOOP_CONFIGURE => configure(ctx, lo, f.writable()),
        lo::LOOP_CLR_FD => {
            let (r, gone) = {
                let mut st = lo.state.lock();
                match st.as_mut() {
                    None => (Err(Errno::ENXIO), None),
                    Some(b) => {
                        b.flags |= lo::LO_FLAGS_AUTOCLEAR;
                        // The caller's descriptor is the only user: unbind now.
                        (Ok(0), if lo.users.load(Ordering::Acquire) <= 1 { st.take() } else { None })
                    }
                }
            };
            drop(gone);
            r
        }
        lo::LOOP_SET_STATUS64 | lo::LOOP_SET_STATUS if !may_set => Err(Errno::EPERM),
        lo::LOOP_SET_STATUS64 => ctx.read(ctx.ptr::<LoopInfo64>(2)).and_then(|i| set_status(lo, &i)),
        lo::LOOP_SET_STATUS => ctx.read(ctx.ptr::<LoopInfo>(2)).and_then(|i| set_status(lo, &info64_from_old(&i))),
        lo::LOOP_GET_STATUS64 => get_status(lo).and_then(|i| ctx.write(ctx.ptr(2), &i)).map(|()| 0),
        lo::LOOP_GET_STATUS => get_status(lo).and_then(|i| info64_to_old(&i)).and_then(|i| ctx.write(ctx.ptr(2), &i)).map(|()| 0),
        lo::LOOP_SET_CAPACITY | lo::LOOP_SET_BLOCK_SIZE | lo::LOOP_SET_DIRECT_IO if !may_set => Err(Errno::EPERM),
        lo::LOOP_SET_CAPACITY => lo.binding().and_then(|b| {
            let size = backing_size(&b.file, b.offset, b.sizelimit)?;
            lo.replace_if_same(&b, |nb| nb.size = size)
        }),
        lo::LOOP_SET_BLOCK_SIZE => {
            let bs = ctx.arg(2);
            lo.binding().and_then(|b| {
                if !valid_block_size(bs) {
                    return Err(Errno::EINVAL);
                }
                lo.replace_if_same(&b, |nb| nb.block_size = u32::try_from(bs).unwrap_or(SECTOR_BYTES))
            })
        }
        lo::LOOP_SET_DIRECT_IO => match (lo.binding(), ctx.arg(2)) {
            (Err(e), _) => Err(e),
            (Ok(_), 0) => Ok(0),
            // Direct I/O to the backing file is not done here.
            (Ok(_), _) => Err(Errno::EINVAL),
        },
        _ => return None,
    };
    Some(r)
}

/// A logical block size Linux takes: a power of two from 512 to the page size.
fn valid_block_size(bs: u64) -> bool {
    (512..=4096).contains(&bs) && bs.is_power_of_two()
}

fn configure(ctx: &mut Ctx<'_>, lo: &Loop, writable: bool) -> SysResult {
    let c: LoopConfig = ctx.read(ctx.ptr(2))?;
    let backing = ctx.p.user().files().lock().get(i32::try_from(c.fd).map_err(|_| Errno::EBADF)?)?;
    if c.block_size != 0 && !valid_block_size(u64::from(c.block_size)) {
        return Err(Errno::EINVAL);
    }
    if c.info.lo_flags & !lo::LOOP_CONFIGURE_SETTABLE_FLAGS != 0 || c.info.lo_flags & lo::LO_FLAGS_DIRECT_IO != 0 {
        return Err(Errno::EINVAL);
    }
    lo.bind(backing, writable, Some(&c.info), c.block_size)?;
    Ok(0)
}

/// Linux's loop_info64_from_old: the offset sign-extended, the name as the file's.
fn info64_from_old(i: &LoopInfo) -> LoopInfo64 {
    LoopInfo64 {
        lo_device: i.lo_device,
        lo_inode: i.lo_inode,
        lo_rdevice: i.lo_rdevice,
        lo_offset: i64::from(i.lo_offset).cast_unsigned(),
        lo_number: i.lo_number.cast_unsigned(),
        lo_encrypt_type: i.lo_encrypt_type.cast_unsigned(),
        lo_encrypt_key_size: i.lo_encrypt_key_size.cast_unsigned(),
        lo_flags: i.lo_flags.cast_unsigned(),
        lo_file_name: i.lo_name,
        lo_encrypt_key: i.lo_encrypt_key,
        lo_init: i.lo_init,
        ..LoopInfo64::default()
    }
}

/// Linux's loop_info64_to_old: EOVERFLOW when the offset does not fit.
fn info64_to_old(i: &LoopInfo64) -> Result<LoopInfo, Errno> {
    Ok(LoopInfo {
        lo_number: i.lo_number.cast_signed(),
        lo_device: i.lo_device,
        lo_inode: i.lo_inode,
        lo_rdevice: i.lo_rdevice,
        lo_offset: i32::try_from(i.lo_offset).map_err(|_| Errno::EOVERFLOW)?,
        lo_encrypt_type: i.lo_encrypt_type.cast_signed(),
        lo_encrypt_key_size: i.lo_encrypt_key_size.cast_signed(),
        lo_flags: i.lo_flags.cast_signed(),
        lo_name: i.lo_file_name,
        lo_encrypt_key: i.lo_encrypt_key,
        lo_init: i.lo_init,
        ..LoopInfo::default()
    })
}

fn set_status(lo: &Loop, i: &LoopInfo64) -> SysResult {
    let b = lo.binding()?;
    let prev = b.flags;
    let mut nb = b.clone();
    status_from_info(&mut nb, i)?;
    nb.flags &= lo::LOOP_SET_STATUS_SETTABLE_FLAGS;
    nb.flags |= prev & !lo::LOOP_SET_STATUS_SETTABLE_FLAGS;
    nb.flags |= prev & !lo::LOOP_SET_STATUS_CLEARABLE_FLAGS;
    nb.size = backing_size(&nb.file, nb.offset, nb.sizelimit)?;
    lo.replace_if_same(&b, |cur| *cur = nb)
}

fn get_status(lo: &Loop) -> Result<LoopInfo64, Errno> {
    let b = lo.binding()?;
    let a = b.file.vnode.attr()?;
    let i = LoopInfo64 {
        lo_device: a.dev,
        lo_inode: a.ino,
        lo_rdevice: a.rdev,
        lo_offset: b.offset,
        lo_sizelimit: b.sizelimit,
        lo_number: lo.minor,
        lo_flags: b.flags,
        lo_file_name: b.file_name,
        lo_crypt_name: b.crypt_name,
        ..LoopInfo64::default()
    };
    Ok(i)
}

fn control_ioctl(ctx: &mut Ctx<'_>, req: u32) -> SysResult {
    let arg = i64::from_ne_bytes(ctx.arg(2).to_ne_bytes());
    match req {
        lo::LOOP_CTL_GET_FREE => {
            let loops: Vec<Arc<Loop>> = table().values().cloned().collect();
            for l in loops {
                if l.state.lock().is_none() && l.users.load(Ordering::Acquire) == 0 {
                    return Ok(l.minor as usize);
                }
            }
            add(-1)
        }
        lo::LOOP_CTL_ADD => add(arg),
        lo::LOOP_CTL_REMOVE => {
            let minor = u32::try_from(arg).map_err(|_| Errno::ENODEV)?;
            let l = table().get(&minor).cloned().ok_or(Errno::ENODEV)?;
            // Held while it leaves the table: no one binds it meanwhile (`loopdev` →
            // `loop_table`).
            let st = l.state.lock();
            if st.is_some() || l.users.load(Ordering::Acquire) > 0 {
                return Err(Errno::EBUSY);
            }
            let mut t = table();
            if t.get(&minor).is_some_and(|x| Arc::ptr_eq(x, &l)) {
                t.remove(&minor);
                l.removed.store(true, Ordering::Release);
            }
            drop(t);
            drop(st);
            Ok(0)
        }
        _ => Err(Errno::ENOSYS),
    }
}

/// LOOP_CTL_ADD: loop device `n`, or the first unused number when `n` is negative.
fn add(n: i64) -> SysResult {
    let mut t = table();
    if t.len() >= MAX_LOOPS {
        return Err(Errno::ENOSPC);
    }
    let minor = if n < 0 {
        (0..=MAX_MINOR).find(|m| !t.contains_key(m)).ok_or(Errno::ENOSPC)?
    } else {
        let m = u32::try_from(n).ok().filter(|&m| m <= MAX_MINOR).ok_or(Errno::EINVAL)?;
        if t.contains_key(&m) {
            return Err(Errno::EEXIST);
        }
        m
    };
    t.insert(minor, new_loop(minor));
    Ok(minor as usize)
}
