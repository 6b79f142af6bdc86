//! hostfs: a host directory as a read-only file system (UML's hostfs; `-r DIR`).
//!
//! A vnode is a host path; attributes come from lstat, data from pread on a host file opened
//! on first read and kept. A mount of it is always read-only ([`FileSystem::forced_readonly`]):
//! the VFS refuses every change with EROFS.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use platform::hostdir::{self, HostFile};

use crate::fs::mount::{FileSystem, FsRef, new_fs_id};
use crate::fs::namecache::CachePolicy;
use crate::fs::vfs::{Attr, DirEntry, check_name, Timespec, VType, Vnode, VnodeRef};
use crate::kern::errno::Errno;

fn errno(e: i32) -> Errno {
    Errno::from_num(e).unwrap_or(Errno::EIO)
}

/// One hostfs instance (a host directory mounted).
#[derive(Debug)]
pub struct HostFs {
    id: u64,
}

impl FileSystem for HostFs {
    fn type_name(&self) -> &'static str {
        "hostfs"
    }

    fn id(&self) -> u64 {
        self.id
    }

    fn forced_readonly(&self) -> bool {
        true
    }

    /// The host may add files behind our back (no negative entries), and a file read holds a
    /// host descriptor (no regular files).
    fn cache_policy(&self) -> CachePolicy {
        CachePolicy::Directories
    }
}

/// A file or directory under the hostfs root.
#[derive(Debug)]
pub struct HostNode {
    fs: Arc<HostFs>,
    path: PathBuf,
    /// The host's inode number and file type, from the lstat of the lookup.
    ino: u64,
    vtype: VType,
    file: OnceLock<Result<HostFile, i32>>,
}

impl HostNode {
    /// The root of a hostfs over `dir`.
    pub fn root(dir: PathBuf) -> Result<VnodeRef, Errno> {
        let s = hostdir::lstat(&dir).map_err(errno)?;
        let n = HostNode { fs: Arc::new(HostFs { id: new_fs_id() }), path: dir, ino: s.ino, vtype: VType::from_mode(s.mode), file: OnceLock::new() };
        if n.vtype != VType::Dir {
            return Err(Errno::ENOTDIR);
        }
        Ok(Arc::new(n))
    }
}

impl Vnode for HostNode {
    fn attr(&self) -> Result<Attr, Errno> {
        let s = hostdir::lstat(&self.path).map_err(errno)?;
        Ok(Attr {
            dev: s.dev,
            ino: s.ino,
            mode: s.mode,
            nlink: s.nlink,
            uid: s.uid,
            gid: s.gid,
            rdev: s.rdev,
            size: s.size,
            blksize: s.blksize,
            blocks: s.blocks,
            atime: Timespec { sec: s.atime.0, nsec: s.atime.1 },
            mtime: Timespec { sec: s.mtime.0, nsec: s.mtime.1 },
            ctime: Timespec { sec: s.ctime.0, nsec: s.ctime.1 },
            ..Default::default()
        })
    }

    fn vtype(&self) -> VType {
        self.vtype
    }

    fn lookup(&self, name: &[u8]) -> Result<VnodeRef, Errno> {
        if self.vtype != VType::Dir {
            return Err(Errno::ENOTDIR);
        }
        check_name(name)?;
        // The host takes names as bytes too (OsStr): any name the guest can make.
        let path = self.path.join(OsStr::from_bytes(name));
        let s = hostdir::lstat(&path).map_err(errno)?;
        Ok(Arc::new(HostNode { fs: Arc::clone(&self.fs), path, ino: s.ino, vtype: VType::from_mode(s.mode), file: OnceLock::new() }))
    }

    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        let list = hostdir::read_dir(&self.path).map_err(errno)?;
        Ok(list.into_iter().zip(1..).map(|((name, ino, fmt), off)| DirEntry { ino, name, vtype: VType::from_mode(fmt), off }).collect())
    }

    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        hostdir::read_link(&self.path).map_err(errno)
    }

    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        match self.vtype() {
            VType::Dir => return Err(Errno::EISDIR),
            VType::Reg => {}
            _ => return Err(Errno::EINVAL),
        }
        let f = self.file.get_or_init(|| HostFile::open(&self.path));
        match f {
            Ok(f) => f.read_at(off, buf).map_err(errno),
            Err(e) => Err(errno(*e)),
        }
    }

    fn write_at(&self, _off: u64, _buf: &[u8]) -> Result<usize, Errno> {
        Err(Errno::EROFS)
    }

    fn fs(&self) -> FsRef {
        Arc::clone(&self.fs) as FsRef
    }

    fn ino(&self) -> u64 {
        self.ino
    }
}
