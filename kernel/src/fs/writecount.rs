//! Writing against running (Linux's `i_writecount`): a regular file that a process runs
//! cannot be opened for writing or truncated, and one open for writing cannot be run — both
//! ETXTBSY ("Text file busy"). Without it a `cp` over a running program would change the
//! pages the program is executing from the page cache.
//!
//! A table by [`VnodeId`] holds each file's count: positive, descriptors open for writing (by
//! path: [`crate::fs::file::File::open`]) and truncate(2) in progress; negative, processes
//! running it (their executable, [`crate::kern::uproc`]'s `exe_deny`, taken at execve, copied
//! by fork, dropped at exit or the next execve). The guards give their count back on drop.
//! The table's spin lock is a leaf: nothing is taken under it.

use std::collections::HashMap;

use platform::sync::SpinLock;

use crate::fs::vfs::{VnodeId, VnodeRef};
use crate::kern::errno::Errno;

static COUNTS: SpinLock<Option<HashMap<VnodeId, i64>>> = SpinLock::new("writecount", None);

/// Add `delta` to `id`'s count if the count's sign allows it (`delta` > 0: no one runs it;
/// `delta` < 0: no one writes it).
fn add(id: VnodeId, delta: i64) -> Result<(), Errno> {
    let mut g = COUNTS.lock();
    let t = g.get_or_insert_with(HashMap::new);
    let c = t.entry(id).or_insert(0);
    if (delta > 0 && *c < 0) || (delta < 0 && *c > 0) {
        return Err(Errno::ETXTBSY);
    }
    *c += delta;
    if *c == 0 {
        t.remove(&id);
    }
    Ok(())
}

/// Give back what [`add`] took.
fn undo(id: VnodeId, delta: i64) {
    let mut g = COUNTS.lock();
    let Some(t) = g.as_mut() else { return };
    if let Some(c) = t.get_mut(&id) {
        *c -= delta;
        if *c == 0 {
            t.remove(&id);
        }
    }
}

/// Write access to a file (an open for writing, a truncate): ETXTBSY while it is run.
#[derive(Debug)]
pub struct WriteAccess(VnodeId);

impl WriteAccess {
    pub fn get(v: &VnodeRef) -> Result<WriteAccess, Errno> {
        let id = v.id();
        add(id, 1)?;
        Ok(WriteAccess(id))
    }
}

impl Drop for WriteAccess {
    fn drop(&mut self) {
        undo(self.0, 1);
    }
}

/// A file being run: ETXTBSY while it is open for writing.
#[derive(Debug)]
pub struct DenyWrite(VnodeId);

impl DenyWrite {
    pub fn get(v: &VnodeRef) -> Result<DenyWrite, Errno> {
        let id = v.id();
        add(id, -1)?;
        Ok(DenyWrite(id))
    }

    /// Another holder of the same denial (fork's copy of its parent's executable).
    pub fn share(&self) -> DenyWrite {
        // The count is already negative: adding to it cannot fail.
        let _ = add(self.0, -1);
        DenyWrite(self.0)
    }
}

impl Drop for DenyWrite {
    fn drop(&mut self) {
        undo(self.0, -1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writers_and_runners_exclude_each_other() {
        let id = VnodeId { fs: u64::MAX - 7, ino: 42 };
        add(id, 1).unwrap();
        assert_eq!(add(id, -1), Err(Errno::ETXTBSY));
        add(id, 1).unwrap();
        undo(id, 1);
        undo(id, 1);
        add(id, -1).unwrap();
        add(id, -1).unwrap();
        assert_eq!(add(id, 1), Err(Errno::ETXTBSY));
        undo(id, -1);
        undo(id, -1);
        add(id, 1).unwrap();
        undo(id, 1);
        assert!(COUNTS.lock().as_ref().is_none_or(|t| !t.contains_key(&id)), "a count of 0 is removed");
    }
}
