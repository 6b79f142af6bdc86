//! Host files for hostfs (a host directory as a guest file system, as in UML): lstat, read,
//! directory listing and readlink of host paths, with errors as raw errno numbers.

use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

/// A host file's attributes (lstat).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostStat {
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
    pub atime: (i64, i64),
    pub mtime: (i64, i64),
    pub ctime: (i64, i64),
}

fn errno(e: std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

/// lstat(2).
pub fn lstat(p: &Path) -> Result<HostStat, i32> {
    std::fs::symlink_metadata(p).map(|m| stat_of(&m)).map_err(errno)
}

fn stat_of(m: &std::fs::Metadata) -> HostStat {
    HostStat {
        dev: m.dev(),
        ino: m.ino(),
        mode: m.mode(),
        nlink: m.nlink(),
        uid: m.uid(),
        gid: m.gid(),
        rdev: m.rdev(),
        size: m.size(),
        blksize: m.blksize(),
        blocks: m.blocks(),
        atime: (m.atime(), m.atime_nsec()),
        mtime: (m.mtime(), m.mtime_nsec()),
        ctime: (m.ctime(), m.ctime_nsec()),
    }
}

/// A host file opened for reading.
#[derive(Debug)]
pub struct HostFile(File);

impl HostFile {
    pub fn open(p: &Path) -> Result<HostFile, i32> {
        File::open(p).map(HostFile).map_err(errno)
    }

    /// fstat(2): the attributes of the file opened (whatever its path names now).
    pub fn stat(&self) -> Result<HostStat, i32> {
        self.0.metadata().map(|m| stat_of(&m)).map_err(errno)
    }

    /// pread(2).
    pub fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize, i32> {
        loop {
            match self.0.read_at(buf, off) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                r => return r.map_err(errno),
            }
        }
    }
}

/// A directory's entries: (name, inode, file-type bits of the mode). Names are the host's
/// bytes, whatever they are.
pub fn read_dir(p: &Path) -> Result<Vec<(Vec<u8>, u64, u32)>, i32> {
    use std::os::unix::ffi::OsStringExt;
    let mut out = Vec::new();
    for e in std::fs::read_dir(p).map_err(errno)? {
        let e = e.map_err(errno)?;
        let name = e.file_name().into_vec();
        let m = e.metadata().map_err(errno)?;
        out.push((name, m.ino(), m.mode() & 0o170000));
    }
    Ok(out)
}

/// readlink(2).
pub fn read_link(p: &Path) -> Result<Vec<u8>, i32> {
    use std::os::unix::ffi::OsStrExt;
    std::fs::read_link(p).map(|t| t.as_os_str().as_bytes().to_vec()).map_err(errno)
}
