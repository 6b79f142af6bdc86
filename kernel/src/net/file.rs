//! The file glue: a socket is a descriptor whose vnode is a [`SocketFile`] of sockfs (Linux's
//! socket inodes: `socket:[ino]` in /proc/PID/fd, S_IFSOCK in fstat). read(2) and write(2) are
//! recv and send without flags; poll is the socket's; when the last open file of it goes (every
//! descriptor closed, none in flight) the socket is released.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use crate::fs::file::File;
use crate::fs::mount::{FileSystem, FsRef, new_fs_id};
use crate::fs::vfs::{Attr, S_IFSOCK, Timespec, VType, Vnode, VnodeRef};
use crate::kern::errno::Errno;
use crate::net::{Caller, SendArgs, SocketRef};

/// sockfs's device number (Linux shows sockets on an anonymous device too).
const SOCKFS_DEV: u64 = 9;

static NEXT_INO: AtomicU64 = AtomicU64::new(1);

/// The vnode of a socket descriptor.
#[derive(Debug)]
pub struct SocketFile {
    sock: SocketRef,
    ino: u64,
    uid: u32,
    gid: u32,
    ctime: Timespec,
}

impl SocketFile {
    /// The vnode of a new socket, owned by `uid`/`gid`.
    pub fn vnode(sock: SocketRef, uid: u32, gid: u32) -> VnodeRef {
        let ino = NEXT_INO.fetch_add(1, Ordering::Relaxed);
        sock.set_ino(ino);
        Arc::new(SocketFile { sock, ino, uid, gid, ctime: Timespec::now() })
    }

    pub fn socket(&self) -> &SocketRef {
        &self.sock
    }
}

/// The socket an open file is (ENOTSOCK for any other file).
pub fn socket_of(f: &File) -> Result<SocketRef, Errno> {
    f.vnode.as_any().and_then(|a| a.downcast_ref::<SocketFile>()).map(|s| Arc::clone(&s.sock)).ok_or(Errno::ENOTSOCK)
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        self.sock.release();
    }
}

impl Vnode for SocketFile {
    fn attr(&self) -> Result<Attr, Errno> {
        let t = self.ctime;
        Ok(Attr {
            dev: SOCKFS_DEV,
            ino: self.ino,
            mode: S_IFSOCK | 0o777,
            nlink: 1,
            uid: self.uid,
            gid: self.gid,
            blksize: 4096,
            atime: t,
            mtime: t,
            ctime: t,
            ..Attr::default()
        })
    }

    fn fs(&self) -> FsRef {
        sockfs()
    }

    fn ino(&self) -> u64 {
        self.ino
    }

    fn vtype(&self) -> VType {
        VType::Sock
    }

    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        self.read_nb(off, buf, false)
    }

    fn write_at(&self, off: u64, buf: &[u8]) -> Result<usize, Errno> {
        self.write_nb(off, buf, false)
    }

    fn read_nb(&self, _off: u64, buf: &mut [u8], nonblock: bool) -> Result<usize, Errno> {
        let r = self.sock.recv(buf.len(), Default::default(), nonblock)?;
        let n = r.data.len().min(buf.len());
        buf[..n].copy_from_slice(&r.data[..n]);
        Ok(n)
    }

    fn write_nb(&self, _off: u64, buf: &[u8], nonblock: bool) -> Result<usize, Errno> {
        let c = Caller::current().ok_or(Errno::EINVAL)?;
        self.sock.send(&c, SendArgs { data: buf, nonblock, ..SendArgs::default() })
    }

    fn poll(&self) -> u16 {
        self.sock.poll()
    }

    fn seekable(&self) -> bool {
        false
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

/// sockfs: the file system every socket belongs to, mounted nowhere.
#[derive(Debug)]
pub struct SockFs {
    id: u64,
}

impl FileSystem for SockFs {
    fn type_name(&self) -> &'static str {
        "sockfs"
    }

    fn id(&self) -> u64 {
        self.id
    }
}

/// The sockfs instance.
pub fn sockfs() -> FsRef {
    static SOCKFS: OnceLock<FsRef> = OnceLock::new();
    Arc::clone(SOCKFS.get_or_init(|| Arc::new(SockFs { id: new_fs_id() })))
}
