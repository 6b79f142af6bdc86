//! sysfs: the few `/sys` files that C libraries and everyday tools read, mounted on /sys at
//! boot when the root has it (and by `mount -t sysfs`):
//!
//! ```text
//!  /sys/devices/system/cpu/online     0-N   the virtual CPUs (glibc's get_nprocs)
//!  /sys/devices/system/cpu/possible   0-N   (get_nprocs_conf, sysconf(_SC_NPROCESSORS_CONF))
//!  /sys/devices/system/cpu/present    0-N
//!  /sys/devices/system/cpu/kernel_max       the most CPUs the kernel supports, less one
//!  /sys/devices/system/cpu/cpuK/            one directory per CPU (what nproc-style counting
//!                                           of cpu[0-9]* finds)
//! ```
//!
//! Everything is read-only and made when read; the tree is fixed at mount time but for the CPU
//! count, which does not change after boot.

use std::sync::Arc;

use crate::fs::mount::{FileSystem, FsRef, new_fs_id};
use crate::fs::namecache::CachePolicy;
use crate::fs::vfs::{Attr, DirEntry, S_IFDIR, S_IFREG, StatFs, Timespec, VType, Vnode, VnodeRef};
use crate::kern::errno::Errno;

/// statfs(2)'s f_type of sysfs.
const SYSFS_MAGIC: u64 = 0x6265_6572;
const SYSFS_DEV: u64 = 0x15;

/// One sysfs mount.
#[derive(Debug)]
pub struct SysFs {
    id: u64,
}

impl FileSystem for SysFs {
    fn type_name(&self) -> &'static str {
        "sysfs"
    }

    fn id(&self) -> u64 {
        self.id
    }

    fn statfs(&self) -> Result<StatFs, Errno> {
        Ok(StatFs { magic: SYSFS_MAGIC, bsize: 4096, ..StatFs::default() })
    }

    fn cache_policy(&self) -> CachePolicy {
        CachePolicy::None
    }
}

/// A node of the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    Root,
    Devices,
    System,
    Cpu,
    CpuN(u32),
    Online,
    Possible,
    Present,
    KernelMax,
}

/// The CPU files, by name.
const CPU_FILES: [(&str, Node); 4] =
    [("online", Node::Online), ("possible", Node::Possible), ("present", Node::Present), ("kernel_max", Node::KernelMax)];

fn ncpus() -> u32 {
    platform::cpu::ncpus().max(1)
}

/// A CPU list as Linux prints one: `0`, or `0-N`.
fn cpu_list(n: u32) -> String {
    if n <= 1 { "0\n".to_string() } else { format!("0-{}\n", n - 1) }
}

impl Node {
    fn ino(self) -> u64 {
        match self {
            Node::Root => 1,
            Node::Devices => 2,
            Node::System => 3,
            Node::Cpu => 4,
            Node::Online => 5,
            Node::Possible => 6,
            Node::Present => 7,
            Node::KernelMax => 8,
            Node::CpuN(k) => 16 + u64::from(k),
        }
    }

    fn is_dir(self) -> bool {
        matches!(self, Node::Root | Node::Devices | Node::System | Node::Cpu | Node::CpuN(_))
    }

    /// The directory's entries (name, node).
    fn entries(self) -> Vec<(String, Node)> {
        match self {
            Node::Root => vec![("devices".into(), Node::Devices)],
            Node::Devices => vec![("system".into(), Node::System)],
            Node::System => vec![("cpu".into(), Node::Cpu)],
            Node::Cpu => {
                let mut v: Vec<(String, Node)> = CPU_FILES.iter().map(|(n, f)| ((*n).to_string(), *f)).collect();
                v.extend((0..ncpus()).map(|k| (format!("cpu{k}"), Node::CpuN(k))));
                v
            }
            _ => Vec::new(),
        }
    }

    fn text(self) -> Result<String, Errno> {
        match self {
            Node::Online | Node::Possible | Node::Present => Ok(cpu_list(ncpus())),
            Node::KernelMax => Ok(format!("{}\n", crate::kern::args::MAX_NCPUS - 1)),
            _ => Err(Errno::EISDIR),
        }
    }
}

/// A sysfs vnode.
#[derive(Debug)]
pub struct SysNode {
    fs: Arc<SysFs>,
    n: Node,
}

/// A new sysfs mount (its root).
pub fn new() -> VnodeRef {
    Arc::new(SysNode { fs: Arc::new(SysFs { id: new_fs_id() }), n: Node::Root })
}

impl Vnode for SysNode {
    fn attr(&self) -> Result<Attr, Errno> {
        let t = Timespec::from_ns(crate::kern::clock::boottime_ns());
        let (mode, nlink) = if self.n.is_dir() { (S_IFDIR | 0o755, 2) } else { (S_IFREG | 0o444, 1) };
        // sysfs files report a page as their size, whatever they hold.
        let size = if self.n.is_dir() { 0 } else { 4096 };
        Ok(Attr { dev: SYSFS_DEV, ino: self.n.ino(), mode, nlink, size, blksize: 4096, atime: t, mtime: t, ctime: t, ..Attr::default() })
    }

    fn vtype(&self) -> VType {
        if self.n.is_dir() { VType::Dir } else { VType::Reg }
    }

    fn lookup(&self, name: &[u8]) -> Result<VnodeRef, Errno> {
        if !self.n.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        let n = self.n.entries().into_iter().find(|(e, _)| e.as_bytes() == name).map(|(_, n)| n).ok_or(Errno::ENOENT)?;
        Ok(Arc::new(SysNode { fs: Arc::clone(&self.fs), n }))
    }

    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        if !self.n.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        Ok(self
            .n
            .entries()
            .into_iter()
            .zip(1..)
            .map(|((name, n), off)| DirEntry { ino: n.ino(), name: name.into_bytes(), vtype: if n.is_dir() { VType::Dir } else { VType::Reg }, off })
            .collect())
    }

    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let text = self.n.text()?;
        let off = usize::try_from(off).unwrap_or(usize::MAX);
        let bytes = text.as_bytes();
        if off >= bytes.len() {
            return Ok(0);
        }
        let n = buf.len().min(bytes.len() - off);
        buf[..n].copy_from_slice(&bytes[off..off + n]);
        Ok(n)
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
    fn cpu_lists_are_linuxs() {
        assert_eq!(cpu_list(1), "0\n");
        assert_eq!(cpu_list(4), "0-3\n");
    }
}
