//! A path for a file found by a file handle (open_by_handle_at(2)).
//!
//! A handle names a file, not a path ([`FileSystem::encode_handle`]); opening it needs a
//! path all the same (the mount a write is counted on, /proc/PID/fd's text, inotify, a
//! `fchdir` into it). As Linux's exportfs does, a directory is reconnected to the tree by its
//! `..` entries up to the mount's root; a file other than a directory knows no parent, so it
//! is found by name only when it sits in the directory the call's descriptor names (the
//! common case: the handle was made there), and is otherwise "disconnected": a path of its
//! own whose text is "/", as Linux shows a disconnected dentry.
//!
//! [`FileSystem::encode_handle`]: crate::fs::mount::FileSystem::encode_handle

use crate::fs::namei::NamePath;
use crate::fs::vfs::{VType, VnodeRef};

/// Most `..` steps a directory is reconnected through before it counts as disconnected.
const MAX_DEPTH: usize = 256;

/// The path of `v`, a file of the mount `base` is on (`base`: the directory or file the
/// call's descriptor names).
pub fn path_of(base: &NamePath, v: &VnodeRef) -> NamePath {
    let id = v.id();
    if base.vnode().id() == id {
        return base.clone();
    }
    if base.vnode().vtype() == VType::Dir
        && let Ok(entries) = base.vnode().readdir()
        && let Some(e) = entries.iter().find(|e| e.ino == id.ino && e.name != b"." && e.name != b"..")
    {
        return base.join(&e.name, VnodeRef::clone(v));
    }
    if v.vtype() == VType::Dir
        && let Some(root) = base.mount_root()
        && let Some(names) = names_up_to(v, root.vnode())
    {
        let mut np = root;
        let mut cur = VnodeRef::clone(np.vnode());
        for name in names.iter().rev() {
            let Ok(next) = cur.lookup(name) else { return NamePath::disconnected(base.mount(), VnodeRef::clone(v)) };
            np = np.join(name, VnodeRef::clone(&next));
            cur = next;
        }
        if cur.id() == id {
            return np;
        }
    }
    NamePath::disconnected(base.mount(), VnodeRef::clone(v))
}

/// The names from directory `v` up to `root` (the nearest first), by `..` and a search of
/// each parent for its child's inode number; None when the chain breaks or is too long.
fn names_up_to(v: &VnodeRef, root: &VnodeRef) -> Option<Vec<Vec<u8>>> {
    let mut names = Vec::new();
    let mut cur = VnodeRef::clone(v);
    for _ in 0..MAX_DEPTH {
        if cur.id() == root.id() {
            return Some(names);
        }
        let parent = cur.parent().ok()?;
        if parent.id() == cur.id() {
            return None; // a root that is not the mount's
        }
        let ino = cur.ino();
        let e = parent.readdir().ok()?.into_iter().find(|e| e.ino == ino && e.name != b"." && e.name != b"..")?;
        names.push(e.name);
        cur = parent;
    }
    None
}
