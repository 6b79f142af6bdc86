//! Path names: lookup from the root or a working directory, across mount points, through
//! symbolic links (at most 40), with `..` that stops at the root, and search permission
//! (`fs::perm`) checked on every directory passed.
//!
//! A [`NamePath`] is the chain of (name, vnode, mount) from the root to a file, so `..` is
//! always known, a working directory can print itself (getcwd), and the mount a file was
//! reached through — whose flags apply to it — is at hand (Linux's `struct path`).
//!
//! chroot(2): a path also knows the root it was looked up under — its `floor`, the number of
//! leading components that make that root. `..` does not climb above it, an absolute path
//! (or symbolic link) starts again there, and the path prints relative to it. Paths from a
//! process's root (and its working directory, when that is under it) carry the floor.

use std::sync::Arc;

use crate::fs::mount::{self, MountRef};
use crate::fs::namecache::{self, CachePolicy, Cached};
use crate::fs::perm;
use crate::fs::vfs::{NAME_MAX, VType, VnodeRef};
use crate::kern::cred::Cred;
use crate::kern::errno::Errno;

/// Symbolic links followed in one lookup before ELOOP.
pub const MAXSYMLINKS: u32 = 40;
/// Longest path accepted (PATH_MAX).
pub const PATH_MAX: usize = 4096;

/// One step of a path.
#[derive(Debug, Clone)]
struct Comp {
    /// Its name in the directory above (bytes; empty for the root).
    name: Vec<u8>,
    vnode: VnodeRef,
    /// The mount it was reached through (for a mount point: the mount on top).
    mnt: MountRef,
}

/// A resolved path: the vnodes from the root down.
#[derive(Debug, Clone)]
pub struct NamePath {
    comps: Vec<Comp>,
    /// Components that make the root this path was looked up under (at least 1).
    floor: usize,
}

impl NamePath {
    /// The root directory.
    pub fn root() -> NamePath {
        let mnt = mount::root_mount();
        NamePath { comps: vec![Comp { name: Vec::new(), vnode: Arc::clone(&mnt.root), mnt }], floor: 1 }
    }

    /// This directory as a root (chroot(2)): `..` stops here, `/` starts here.
    pub fn as_root(&self) -> NamePath {
        NamePath { comps: self.comps.clone(), floor: self.comps.len() }
    }

    /// The root this path was looked up under.
    pub fn its_root(&self) -> NamePath {
        NamePath { comps: self.comps[..self.floor].to_vec(), floor: self.floor }
    }

    /// Put this path under `root` if it lies beneath it (a working directory when the
    /// process's root changes); a path elsewhere keeps its own root.
    pub fn rebase(&mut self, root: &NamePath) {
        let n = root.comps.len();
        if n <= self.comps.len() && self.comps[..n].iter().zip(&root.comps).all(|(a, b)| a.vnode.id() == b.vnode.id()) {
            self.floor = n;
        }
    }

    /// Whether it is its own root.
    fn at_floor(&self) -> bool {
        self.comps.len() <= self.floor
    }

    fn last(&self) -> &Comp {
        self.comps.last().expect("a path has a root")
    }

    pub fn vnode(&self) -> &VnodeRef {
        &self.last().vnode
    }

    /// The mount the file was reached through.
    pub fn mount(&self) -> &MountRef {
        &self.last().mnt
    }

    /// The directory the last name is in (None for the root).
    pub fn parent(&self) -> Option<&VnodeRef> {
        if self.at_floor() {
            return None;
        }
        self.comps.len().checked_sub(2).map(|i| &self.comps[i].vnode)
    }

    /// The last name (empty for the root).
    pub fn name(&self) -> &[u8] {
        if self.at_floor() {
            return &[];
        }
        &self.last().name
    }

    /// The path as the guest sees it (getcwd, readlink of /proc/PID/fd/N): "/usr/bin", in
    /// the names' own bytes.
    pub fn to_path_bytes(&self) -> Vec<u8> {
        if self.at_floor() {
            return b"/".to_vec();
        }
        let mut out = Vec::new();
        for c in &self.comps[self.floor..] {
            out.push(b'/');
            out.extend_from_slice(&c.name);
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
        let mnt = Arc::clone(np.mount());
        np.push(text, v, mnt);
        np
    }

    fn push(&mut self, name: &[u8], vnode: VnodeRef, mnt: MountRef) {
        self.comps.push(Comp { name: name.to_vec(), vnode, mnt });
    }

    /// This path with one more component: `vnode`, named `name` here, on the same mount.
    pub fn join(&self, name: &[u8], vnode: VnodeRef) -> NamePath {
        let mut np = self.clone();
        let mnt = Arc::clone(np.mount());
        np.push(name, vnode, mnt);
        np
    }

    /// The path of the root of the mount this path's file is on, if it lies on this path at
    /// or below its root (not when the path was looked up under a root inside that mount).
    pub fn mount_root(&self) -> Option<NamePath> {
        let mnt = self.mount();
        let i = self.comps.iter().rposition(|c| Arc::ptr_eq(&c.mnt, mnt) && c.vnode.id() == mnt.root.id())?;
        (i + 1 >= self.floor).then(|| NamePath { comps: self.comps[..=i].to_vec(), floor: self.floor.min(i + 1) })
    }

    /// A path for a file of mount `mnt` that has no name known (found by a file handle,
    /// Linux's disconnected dentry): its text is "/", it has no parent, `..` stays on it.
    pub fn disconnected(mnt: &MountRef, vnode: VnodeRef) -> NamePath {
        NamePath { comps: vec![Comp { name: Vec::new(), vnode, mnt: Arc::clone(mnt) }], floor: 1 }
    }

    fn pop(&mut self) {
        if self.comps.len() > self.floor {
            self.comps.pop();
        }
    }
}

/// openat2(2)'s RESOLVE_* restrictions on a lookup, and where it started.
#[derive(Debug, Clone, Default)]
pub struct Resolve {
    /// RESOLVE_NO_XDEV: every component on `origin`'s mount (EXDEV).
    pub no_xdev: bool,
    /// RESOLVE_NO_MAGICLINKS: no /proc magic link (ELOOP).
    pub no_magiclinks: bool,
    /// RESOLVE_NO_SYMLINKS: no symbolic link at all (ELOOP).
    pub no_symlinks: bool,
    /// RESOLVE_BENEATH: nothing above the starting directory — no absolute path or link,
    /// no `..` past it, no magic link (EXDEV).
    pub beneath: bool,
    /// RESOLVE_IN_ROOT: the starting directory as the root (the caller starts there with
    /// [`NamePath::as_root`]); magic links are EXDEV.
    pub in_root: bool,
    /// The mount of the starting directory (RESOLVE_NO_XDEV).
    pub origin: Option<MountRef>,
    /// Components of the starting directory (RESOLVE_BENEATH).
    pub base: usize,
}

impl Resolve {
    /// The restrictions `how` (RESOLVE_* bits) from the directory `start`.
    pub fn new(how: u64, start: &NamePath) -> Resolve {
        Resolve {
            no_xdev: how & 1 != 0,
            no_magiclinks: how & 2 != 0,
            no_symlinks: how & 4 != 0,
            beneath: how & 8 != 0,
            in_root: how & 0x10 != 0,
            origin: Some(Arc::clone(start.mount())),
            base: start.comps.len(),
        }
    }

    fn check_mount(&self, np: &NamePath) -> Result<(), Errno> {
        match &self.origin {
            Some(m) if self.no_xdev && !Arc::ptr_eq(m, np.mount()) => Err(Errno::EXDEV),
            _ => Ok(()),
        }
    }
}

/// Resolve `path` from `start` for the kernel itself (no permission checks).
pub fn namei(start: &NamePath, path: &[u8], follow: bool) -> Result<NamePath, Errno> {
    lookup(&Cred::root(), start, path, follow)
}

/// Resolve `path` from `start` (the working directory; absolute paths start at the root) for
/// `cred`, who needs search permission on every directory it passes (EACCES).
/// `follow`: follow a symbolic link in the last component.
pub fn lookup(cred: &Cred, start: &NamePath, path: &[u8], follow: bool) -> Result<NamePath, Errno> {
    lookup_how(cred, start, path, follow, &Resolve::default())
}

/// [`lookup`] under openat2(2)'s restrictions.
pub fn lookup_how(cred: &Cred, start: &NamePath, path: &[u8], follow: bool, how: &Resolve) -> Result<NamePath, Errno> {
    let mut links = 0;
    walk(cred, start.clone(), path, follow, &mut links, how)
}

fn walk(cred: &Cred, mut cur: NamePath, path: &[u8], follow: bool, links: &mut u32, how: &Resolve) -> Result<NamePath, Errno> {
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    if path.len() > PATH_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    if path[0] == b'/' {
        if how.beneath {
            return Err(Errno::EXDEV);
        }
        cur = cur.its_root();
        how.check_mount(&cur)?;
    }
    let comps: Vec<&[u8]> = path.split(|&b| b == b'/').filter(|c| !c.is_empty()).collect();
    let trailing_slash = path.last() == Some(&b'/');
    for (i, c) in comps.iter().enumerate() {
        let last = i + 1 == comps.len();
        // Every component, `.` and `..` too, is looked up in a directory the caller may search.
        let dir = cur.vnode();
        if dir.vtype() != VType::Dir {
            return Err(Errno::ENOTDIR);
        }
        perm::may_search(cred, || dir.attr())?;
        if *c == b"." {
            continue;
        }
        if *c == b".." {
            if how.beneath && cur.comps.len() <= how.base {
                return Err(Errno::EXDEV);
            }
            cur.pop();
            how.check_mount(&cur)?;
            continue;
        }
        if c.len() > NAME_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        let name: &[u8] = c;
        let (mut v, mut mnt) = (lookup_in(&cur, name)?, Arc::clone(cur.mount()));
        if v.vtype() == VType::Dir
            && let Some(m) = mount::covering(&v)
        {
            v = Arc::clone(&m.root);
            mnt = m;
        }
        if v.vtype() == VType::Lnk && (!last || follow || trailing_slash) {
            *links += 1;
            if *links > MAXSYMLINKS {
                return Err(Errno::ELOOP);
            }
            if how.no_symlinks {
                return Err(Errno::ELOOP);
            }
            if let Some(to) = v.magic_link() {
                if how.no_magiclinks {
                    return Err(Errno::ELOOP);
                }
                if how.beneath || how.in_root {
                    return Err(Errno::EXDEV);
                }
                cur = to?;
                how.check_mount(&cur)?;
                continue;
            }
            let target = v.readlink()?;
            cur = walk(cred, cur, &target, true, links, how)?;
            continue;
        }
        cur.push(name, v, mnt);
        how.check_mount(&cur)?;
    }
    if trailing_slash && cur.vnode().vtype() != VType::Dir {
        return Err(Errno::ENOTDIR);
    }
    Ok(cur)
}

/// Look `name` up in the directory `dir` is (one step of a walk): in the name cache, or
/// else in the file system, whose answer the cache then keeps as its policy allows.
fn lookup_in(dir: &NamePath, name: &[u8]) -> Result<VnodeRef, Errno> {
    let d = dir.vnode();
    let policy = d.fs().cache_policy();
    if policy == CachePolicy::None {
        return d.lookup(name);
    }
    let id = d.id();
    let seq = match namecache::lookup(id, name) {
        Ok(Cached::Found(v)) => return Ok(v),
        Ok(Cached::Missing) => return Err(Errno::ENOENT),
        Err(seq) => seq,
    };
    let r = d.lookup(name);
    match &r {
        Ok(v) if policy == CachePolicy::All || v.vtype() != VType::Reg => namecache::enter(id, name, Some(v), seq),
        Ok(_) => {}
        Err(Errno::ENOENT) if policy == CachePolicy::All => namecache::enter(id, name, None, seq),
        Err(_) => {}
    }
    r
}
