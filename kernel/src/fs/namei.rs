//! Path names: lookup from the root or a working directory, across mount points, through
//! symbolic links (at most 40), with `..` that stops at the root.
//!
//! A [`NamePath`] is the chain of (name, vnode) from the root to a file, so `..` is always
//! known and a working directory can print itself (getcwd).

use std::sync::{Arc, OnceLock};

use platform::sync::SpinLock;

use crate::fs::vfs::{NAME_MAX, VType, VnodeRef};
use crate::kern::errno::Errno;

/// Symbolic links followed in one lookup before ELOOP.
pub const MAXSYMLINKS: u32 = 40;
/// Longest path accepted (PATH_MAX).
pub const PATH_MAX: usize = 4096;

/// A resolved path: the vnodes from the root down.
#[derive(Debug, Clone)]
pub struct NamePath {
    /// (name, vnode) from the root (named "") down; names are bytes.
    comps: Vec<(Vec<u8>, VnodeRef)>,
}

impl NamePath {
    /// The root directory.
    pub fn root() -> NamePath {
        NamePath { comps: vec![(Vec::new(), root_vnode())] }
    }

    pub fn vnode(&self) -> &VnodeRef {
        &self.comps.last().expect("a path has a root").1
    }

    /// The last name (empty for the root).
    pub fn name(&self) -> &[u8] {
        &self.comps.last().expect("a path has a root").0
    }

    /// The path as the guest sees it (getcwd, readlink of /proc/PID/fd/N): "/usr/bin", in
    /// the names' own bytes.
    pub fn to_path_bytes(&self) -> Vec<u8> {
        if self.comps.len() == 1 {
            return b"/".to_vec();
        }
        let mut out = Vec::new();
        for (n, _) in &self.comps[1..] {
            out.push(b'/');
            out.extend_from_slice(n);
        }
        out
    }

    /// The path as text for the console and the debugger (bytes that are not UTF-8 shown as
    /// U+FFFD).
    pub fn to_path_string(&self) -> String {
        String::from_utf8_lossy(&self.to_path_bytes()).into_owned()
    }

    /// A path to a file that has no name in the tree (a pipe reached through /proc/PID/fd):
    /// its text is `text`, under the root.
    pub fn anonymous(text: &[u8], v: VnodeRef) -> NamePath {
        let mut np = NamePath::root();
        np.push(text, v);
        np
    }

    fn push(&mut self, name: &[u8], v: VnodeRef) {
        self.comps.push((name.to_vec(), v));
    }

    fn pop(&mut self) {
        if self.comps.len() > 1 {
            self.comps.pop();
        }
    }
}

/// A mounted file system.
#[derive(Debug, Clone)]
pub struct Mount {
    /// (dev, ino) of the directory it covers; None for the root.
    pub on: Option<(u64, u64)>,
    pub root: VnodeRef,
    pub fstype: &'static str,
    pub source: String,
    pub target: String,
}

static ROOT: OnceLock<VnodeRef> = OnceLock::new();
static MOUNTS: SpinLock<Vec<Mount>> = SpinLock::new("mounts", Vec::new());

/// Mount the root file system (once).
pub fn mount_root(root: VnodeRef, source: &str) {
    let fstype = root.fs_type();
    if ROOT.set(Arc::clone(&root)).is_ok() {
        MOUNTS.lock().push(Mount { on: None, root, fstype, source: source.to_string(), target: "/".into() });
    }
}

pub fn root_vnode() -> VnodeRef {
    Arc::clone(ROOT.get().expect("no root file system"))
}

pub fn have_root() -> bool {
    ROOT.get().is_some()
}

/// Mount `root` on the directory `at`.
pub fn mount(at: &NamePath, root: VnodeRef, source: &str) -> Result<(), Errno> {
    let a = at.vnode().attr()?;
    if a.vtype() != VType::Dir {
        return Err(Errno::ENOTDIR);
    }
    let fstype = root.fs_type();
    let mut m = MOUNTS.lock();
    if m.iter().any(|x| x.on == Some((a.dev, a.ino))) {
        return Err(Errno::EBUSY);
    }
    m.push(Mount { on: Some((a.dev, a.ino)), root, fstype, source: source.to_string(), target: at.to_path_string() });
    Ok(())
}

/// Take the file system whose root is `root` off its mount point (umount2): EINVAL when
/// `root` is no mount's root, EBUSY for the root file system, when another file system is
/// mounted inside it, or when `busy` (the file system's own check, made under the mount
/// table's lock) says so.
pub fn unmount(root: &VnodeRef, busy: impl FnOnce() -> bool) -> Result<Mount, Errno> {
    let a = root.attr()?;
    let mut m = MOUNTS.lock();
    let same = |x: &Mount| std::ptr::addr_eq(Arc::as_ptr(&x.root), Arc::as_ptr(root));
    let i = m.iter().position(same).ok_or(Errno::EINVAL)?;
    if m[i].on.is_none() || m.iter().any(|x| x.on == Some((a.dev, a.ino))) || busy() {
        return Err(Errno::EBUSY);
    }
    Ok(m.remove(i))
}

/// The mount table (for /proc/mounts).
pub fn mounts() -> Vec<Mount> {
    MOUNTS.lock().clone()
}

/// The root of what is mounted on `v`, if anything.
fn covering(v: &VnodeRef) -> Option<VnodeRef> {
    let a = v.attr().ok()?;
    if a.vtype() != VType::Dir {
        return None;
    }
    MOUNTS.lock().iter().rev().find(|m| m.on == Some((a.dev, a.ino))).map(|m| Arc::clone(&m.root))
}

/// Resolve `path` from `start` (the working directory; absolute paths start at the root).
/// `follow`: follow a symbolic link in the last component.
pub fn namei(start: &NamePath, path: &[u8], follow: bool) -> Result<NamePath, Errno> {
    let mut links = 0;
    walk(start.clone(), path, follow, &mut links)
}

fn walk(mut cur: NamePath, path: &[u8], follow: bool, links: &mut u32) -> Result<NamePath, Errno> {
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    if path.len() > PATH_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    if path[0] == b'/' {
        cur = NamePath::root();
    }
    let comps: Vec<&[u8]> = path.split(|&b| b == b'/').filter(|c| !c.is_empty() && *c != b".").collect();
    let trailing_slash = path.last() == Some(&b'/');
    for (i, c) in comps.iter().enumerate() {
        let last = i + 1 == comps.len();
        if *c == b".." {
            cur.pop();
            continue;
        }
        if c.len() > NAME_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        let name: &[u8] = c;
        let dir = cur.vnode();
        if dir.vtype() != VType::Dir {
            return Err(Errno::ENOTDIR);
        }
        let mut v = dir.lookup(name)?;
        if let Some(r) = covering(&v) {
            v = r;
        }
        if v.vtype() == VType::Lnk && (!last || follow || trailing_slash) {
            *links += 1;
            if *links > MAXSYMLINKS {
                return Err(Errno::ELOOP);
            }
            if let Some(to) = v.magic_link() {
                cur = to?;
                continue;
            }
            let target = v.readlink()?;
            cur = walk(cur, &target, true, links)?;
            continue;
        }
        cur.push(name, v);
    }
    if trailing_slash && cur.vnode().vtype() != VType::Dir {
        return Err(Errno::ENOTDIR);
    }
    Ok(cur)
}
