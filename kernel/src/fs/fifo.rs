//! Named pipes (fifo(7)): a FIFO inode of any file system (tmpfs, ext2, hostfs) opened gets
//! an end of the pipe that belongs to that inode while anyone has it open — found by the
//! inode's [`VnodeId`] in a table — so processes that open the same name talk through one
//! buffer. The pipe, and what it holds, goes when its last end closes, as on Linux.
//!
//! The open file's vnode is a [`FifoEnd`]: the inode's attributes (stat shows the FIFO the
//! name is), the pipe end's I/O and readiness.
//!
//! Lock order: `fifos` (the table) is a leaf; a pipe is looked up and its Arc taken under it,
//! and opened (which may sleep) after it is dropped.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use platform::sync::SpinLock;

use crate::fs::mount::{AtimePolicy, FsRef};
use crate::fs::pipe::{self, Pipe, PipeEnd};
use crate::fs::vfs::{Attr, SetAttr, VType, Vnode, VnodeId, VnodeRef};
use crate::kern::errno::Errno;

/// The pipes of FIFO inodes open now.
static FIFOS: SpinLock<Option<HashMap<VnodeId, Weak<Pipe>>>> = SpinLock::new("fifos", None);

/// The pipe of the FIFO `inode` (made when none is open).
fn pipe_of_inode(inode: &VnodeRef) -> Result<Arc<Pipe>, Errno> {
    let id = inode.id();
    let a = inode.attr()?;
    let mut t = FIFOS.lock();
    let map = t.get_or_insert_with(HashMap::new);
    if let Some(p) = map.get(&id).and_then(Weak::upgrade) {
        return Ok(p);
    }
    if map.len() >= 64 {
        map.retain(|_, w| w.strong_count() > 0);
    }
    let p = pipe::new_pipe(a.uid, a.gid);
    map.insert(id, Arc::downgrade(&p));
    Ok(p)
}

/// Open the FIFO `inode` for reading and/or writing, as fifo(7) says (may sleep for the
/// other side; ENXIO for a non-blocking writer with no reader).
pub fn open(inode: VnodeRef, read: bool, write: bool, nonblock: bool) -> Result<VnodeRef, Errno> {
    let p = pipe_of_inode(&inode)?;
    let end = pipe::open_end(&p, read, write, nonblock)?;
    Ok(Arc::new(FifoEnd { inode, end }))
}

/// The pipe behind a pipe or FIFO vnode (F_GETPIPE_SZ, F_SETPIPE_SZ).
pub fn pipe_of(v: &dyn Vnode) -> Option<Arc<Pipe>> {
    let a = v.as_any()?;
    if let Some(e) = a.downcast_ref::<PipeEnd>() {
        return Some(Arc::clone(e.pipe()));
    }
    a.downcast_ref::<FifoEnd>().map(|f| Arc::clone(f.end.pipe()))
}

/// An open FIFO: the inode it was opened by, and its end of the pipe.
#[derive(Debug)]
pub struct FifoEnd {
    inode: VnodeRef,
    end: PipeEnd,
}

impl Vnode for FifoEnd {
    fn attr(&self) -> Result<Attr, Errno> {
        self.inode.attr()
    }

    fn fs(&self) -> FsRef {
        self.inode.fs()
    }

    fn ino(&self) -> u64 {
        self.inode.ino()
    }

    fn vtype(&self) -> VType {
        VType::Fifo
    }

    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        self.end.read_at(off, buf)
    }

    fn write_at(&self, off: u64, buf: &[u8]) -> Result<usize, Errno> {
        self.end.write_at(off, buf)
    }

    fn read_nb(&self, off: u64, buf: &mut [u8], nonblock: bool) -> Result<usize, Errno> {
        self.end.read_nb(off, buf, nonblock)
    }

    fn write_nb(&self, off: u64, buf: &[u8], nonblock: bool) -> Result<usize, Errno> {
        self.end.write_nb(off, buf, nonblock)
    }

    fn poll(&self) -> u16 {
        self.end.poll()
    }

    fn poll_gen(&self) -> (u64, u64) {
        self.end.poll_gen()
    }

    fn setattr(&self, a: &SetAttr) -> Result<(), Errno> {
        self.inode.setattr(a)
    }

    fn accessed(&self, policy: AtimePolicy) {
        self.inode.accessed(policy);
    }

    fn seekable(&self) -> bool {
        false
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}
