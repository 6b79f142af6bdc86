//! File permissions: Linux's discretionary access control, written once for every file
//! system (fs/namei.c's generic_permission, may_open, may_create, may_delete, may_linkat;
//! fs/attr.c's setattr_prepare and setattr_should_drop_suidgid; fs/inode.c's
//! inode_init_owner). File systems only store owners and modes; path lookup and the system
//! calls ask these functions with the caller's [`Cred`] and the file's [`Attr`].
//!
//! Root is not special here, its capabilities are: CAP_DAC_OVERRIDE passes read and write
//! checks, and execute checks when some execute bit is set (or the file is a directory);
//! CAP_DAC_READ_SEARCH passes reads and directory searches; CAP_FOWNER passes the owner
//! checks (chmod, utimes, sticky directories, O_NOATIME, hard links); CAP_FSETID keeps the
//! setuid/setgid bits; CAP_CHOWN allows chown. Hard links follow fs.protected_hardlinks = 1,
//! the setting of the Linux distributions (the kernel's built-in default is 0).

use crate::fs::vfs::{Attr, SetAttr, VType};
use crate::kern::cred::{CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID, Cred};
use crate::kern::errno::Errno;

/// Access wanted (the low bits of access(2)'s mode).
pub const MAY_EXEC: u32 = 1;
pub const MAY_WRITE: u32 = 2;
pub const MAY_READ: u32 = 4;

pub const S_ISUID: u32 = 0o4000;
pub const S_ISGID: u32 = 0o2000;
pub const S_ISVTX: u32 = 0o1000;
const S_IXGRP: u32 = 0o010;
const S_IXUGO: u32 = 0o111;

const O_ACCMODE: u32 = 3;
const O_WRONLY: u32 = 1;
const O_RDWR: u32 = 2;
const O_TRUNC: u32 = 0o1000;
const O_APPEND: u32 = 0o2000;
const O_NOATIME: u32 = 0o1000000;

/// The mode bits of the class the caller is in: owner, else group, else others
/// (acl_permission_check: an owner gets the owner bits even when others get more).
fn class_bits(cred: &Cred, a: &Attr) -> u32 {
    if cred.fsuid == a.uid {
        (a.mode >> 6) & 7
    } else if cred.in_group(a.gid) {
        (a.mode >> 3) & 7
    } else {
        a.mode & 7
    }
}

/// inode_permission: may `cred` access the file as `mask` (MAY_* bits) says? EPERM to write
/// an immutable file (before anything else, as Linux), then generic_permission's EACCES.
pub fn permission(cred: &Cred, a: &Attr, mask: u32) -> Result<(), Errno> {
    if mask & MAY_WRITE != 0 && a.immutable() {
        return Err(Errno::EPERM);
    }
    let mask = mask & (MAY_READ | MAY_WRITE | MAY_EXEC);
    if mask & !class_bits(cred, a) == 0 {
        return Ok(());
    }
    if a.vtype() == VType::Dir {
        if mask & MAY_WRITE == 0 && cred.capable(CAP_DAC_READ_SEARCH) {
            return Ok(());
        }
        if cred.capable(CAP_DAC_OVERRIDE) {
            return Ok(());
        }
        return Err(Errno::EACCES);
    }
    if mask == MAY_READ && cred.capable(CAP_DAC_READ_SEARCH) {
        return Ok(());
    }
    if (mask & MAY_EXEC == 0 || a.mode & S_IXUGO != 0) && cred.capable(CAP_DAC_OVERRIDE) {
        return Ok(());
    }
    Err(Errno::EACCES)
}

/// May `cred` look names up in this directory (search permission)? Answered without the
/// attributes when the caller's capabilities pass any directory.
pub fn may_search(cred: &Cred, dir: impl FnOnce() -> Result<Attr, Errno>) -> Result<(), Errno> {
    if cred.capable(CAP_DAC_READ_SEARCH) || cred.capable(CAP_DAC_OVERRIDE) {
        return Ok(());
    }
    permission(cred, &dir()?, MAY_EXEC)
}

/// The access an open(2) with `flags` asks for (O_TRUNC needs write permission).
pub fn open_mask(flags: u32) -> u32 {
    let acc = match flags & O_ACCMODE {
        O_WRONLY => MAY_WRITE,
        O_RDWR => MAY_READ | MAY_WRITE,
        _ => MAY_READ,
    };
    if flags & O_TRUNC != 0 { acc | MAY_WRITE } else { acc }
}

/// may_open: opening an existing file with `flags` (not O_PATH; a file the open itself
/// created needs no check) on a file system that is `readonly` or not. Directories open only
/// for reading (EISDIR); writing (or O_TRUNC) a regular file on a read-only file system is
/// EROFS before the mode bits are asked (inode_permission's sb_permission; devices and FIFOs
/// stay writable there); O_NOATIME needs the owner or CAP_FOWNER (EPERM).
pub fn may_open(cred: &Cred, a: &Attr, flags: u32, readonly: bool) -> Result<(), Errno> {
    let mask = open_mask(flags);
    match a.vtype() {
        VType::Lnk => return Err(Errno::ELOOP),
        VType::Dir if mask & MAY_WRITE != 0 => return Err(Errno::EISDIR),
        VType::Reg if mask & MAY_WRITE != 0 && readonly => return Err(Errno::EROFS),
        _ => {}
    }
    permission(cred, a, mask)?;
    // An append-only file: written only with O_APPEND, never truncated.
    if a.append_only() && ((mask & MAY_WRITE != 0 && flags & O_APPEND == 0) || flags & O_TRUNC != 0) {
        return Err(Errno::EPERM);
    }
    if flags & O_NOATIME != 0 && !owner_or_capable(cred, a) {
        return Err(Errno::EPERM);
    }
    Ok(())
}

/// may_exec: execve(2) of a regular file with some execute permission (EACCES otherwise).
pub fn may_exec(cred: &Cred, a: &Attr) -> Result<(), Errno> {
    if a.vtype() != VType::Reg {
        return Err(Errno::EACCES);
    }
    permission(cred, a, MAY_EXEC)
}

/// inode_owner_or_capable: the file's owner, or CAP_FOWNER.
pub fn owner_or_capable(cred: &Cred, a: &Attr) -> bool {
    cred.fsuid == a.uid || cred.capable(CAP_FOWNER)
}

/// may_create: a new name in directory `dir` needs write and search permission on it.
pub fn may_create(cred: &Cred, dir: &Attr) -> Result<(), Errno> {
    permission(cred, dir, MAY_WRITE | MAY_EXEC)
}

/// may_delete: removing (or renaming away) `victim` from `dir` needs write and search
/// permission on the directory, and in a sticky directory the victim's or the directory's
/// ownership or CAP_FOWNER (EPERM).
pub fn may_delete(cred: &Cred, dir: &Attr, victim: &Attr) -> Result<(), Errno> {
    permission(cred, dir, MAY_WRITE | MAY_EXEC)?;
    if dir.append_only() {
        return Err(Errno::EPERM);
    }
    if dir.mode & S_ISVTX != 0 && cred.fsuid != victim.uid && cred.fsuid != dir.uid && !cred.capable(CAP_FOWNER) {
        return Err(Errno::EPERM);
    }
    if victim.append_only() || victim.immutable() {
        return Err(Errno::EPERM);
    }
    Ok(())
}

/// rename(2)'s checks: the source may leave its directory, the target (if any) may be
/// replaced or the name created, and a directory moving to another parent must be writable
/// itself (its `..` changes).
pub fn may_rename(cred: &Cred, old_dir: &Attr, src: &Attr, new_dir: &Attr, target: Option<&Attr>) -> Result<(), Errno> {
    may_delete(cred, old_dir, src)?;
    match target {
        Some(t) => may_delete(cred, new_dir, t)?,
        None => may_create(cred, new_dir)?,
    }
    let moves_dir = src.vtype() == VType::Dir && (old_dir.dev, old_dir.ino) != (new_dir.dev, new_dir.ino);
    if moves_dir {
        permission(cred, src, MAY_WRITE)?;
    }
    Ok(())
}

/// may_linkat with fs.protected_hardlinks = 1: a hard link to a file needs its owner, or a
/// regular file that is not setuid (nor setgid-executable) which the caller may read and
/// write, or CAP_FOWNER (EPERM).
pub fn may_link(cred: &Cred, src: &Attr) -> Result<(), Errno> {
    let safe = cred.fsuid == src.uid
        || (src.vtype() == VType::Reg
            && src.mode & S_ISUID == 0
            && src.mode & (S_ISGID | S_IXGRP) != S_ISGID | S_IXGRP
            && permission(cred, src, MAY_READ | MAY_WRITE).is_ok());
    if !safe && !cred.capable(CAP_FOWNER) {
        return Err(Errno::EPERM);
    }
    // vfs_link: no new name for an append-only or immutable file.
    if src.append_only() || src.immutable() {
        return Err(Errno::EPERM);
    }
    Ok(())
}

/// in_group_or_capable: a member of `gid`, or CAP_FSETID.
fn in_group_or_capable(cred: &Cred, gid: u32) -> bool {
    cred.in_group(gid) || cred.capable(CAP_FSETID)
}

/// The owner, group and mode of a new file in `dir` (inode_init_owner, mode_strip_sgid):
/// the caller's fsuid; the directory's group if it is setgid (new directories inherit the
/// bit), else the caller's fsgid; a setgid-executable file made in a setgid directory whose
/// group the caller is not in loses its setgid bit. `mode` has the umask applied already.
pub fn new_owner(cred: &Cred, dir: &Attr, mode: u32, is_dir: bool) -> (u32, u32, u32) {
    if dir.mode & S_ISGID == 0 {
        return (cred.fsuid, cred.fsgid, mode);
    }
    let mode = if is_dir {
        mode | S_ISGID
    } else if mode & (S_ISGID | S_IXGRP) == S_ISGID | S_IXGRP && !in_group_or_capable(cred, dir.gid) {
        mode & !S_ISGID
    } else {
        mode
    };
    (cred.fsuid, dir.gid, mode)
}

/// setattr_should_drop_sgid: a setgid bit with group-execute goes on a change of owner or
/// contents; without group-execute (a locking mark) only for a caller outside the group.
fn should_drop_sgid(cred: &Cred, a: &Attr) -> bool {
    a.mode & S_ISGID != 0 && (a.mode & S_IXGRP != 0 || !in_group_or_capable(cred, a.gid))
}

/// The mode a regular file takes when `cred` writes or truncates it: without CAP_FSETID
/// the setuid bit and a setgid bit that should drop go (file_remove_privs). None: no change.
pub fn mode_after_write(cred: &Cred, a: &Attr) -> Option<u32> {
    if a.vtype() != VType::Reg || cred.capable(CAP_FSETID) {
        return None;
    }
    let mut mode = a.mode & 0o7777;
    if mode & S_ISUID != 0 {
        mode &= !S_ISUID;
    }
    if should_drop_sgid(cred, a) {
        mode &= !S_ISGID;
    }
    (mode != a.mode & 0o7777).then_some(mode)
}

/// How utimensat(2) sets the times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Times {
    /// Both to the current time (a NULL array, or both UTIME_NOW).
    Now,
    /// Given values (or one omitted).
    Given,
}

/// setattr_prepare and the chown/chmod/utimes rules of notify_change: check `change`
/// against the file's attributes for `cred` and return the change to make — chmod's setgid
/// bit dropped for a group the caller is not in, and a chown of a non-directory clearing the
/// setuid bit and a setgid bit that should drop. `times`: how utimensat sets the times.
///
/// chown: CAP_CHOWN, or the owner leaving the uid as it is; chgrp: CAP_CHOWN, or the owner
/// to its fsgid or one of its groups; chmod: the owner or CAP_FOWNER (EPERM); explicit times
/// the owner or CAP_FOWNER (EPERM), the current time also anyone who may write (EACCES).
pub fn setattr_prepare(cred: &Cred, a: &Attr, change: &SetAttr, times: Option<Times>) -> Result<SetAttr, Errno> {
    // notify_change: no owner, mode or explicit times on an immutable or append-only file,
    // not even the current time on an immutable one.
    let explicit = change.mode.is_some() || change.uid.is_some() || change.gid.is_some() || times == Some(Times::Given);
    if (explicit && (a.immutable() || a.append_only())) || (times == Some(Times::Now) && a.immutable()) {
        return Err(Errno::EPERM);
    }
    let mut out = *change;
    let is_owner = cred.fsuid == a.uid;
    if let Some(uid) = change.uid
        && !(is_owner && uid == a.uid)
        && !cred.capable(CAP_CHOWN)
    {
        return Err(Errno::EPERM);
    }
    if let Some(gid) = change.gid
        && !(is_owner && (gid == a.gid || cred.in_group(gid)))
        && !cred.capable(CAP_CHOWN)
    {
        return Err(Errno::EPERM);
    }
    if let Some(mode) = change.mode {
        if !owner_or_capable(cred, a) {
            return Err(Errno::EPERM);
        }
        if !in_group_or_capable(cred, change.gid.unwrap_or(a.gid)) {
            out.mode = Some(mode & !S_ISGID);
        }
    }
    match times {
        Some(Times::Given) if !owner_or_capable(cred, a) => return Err(Errno::EPERM),
        Some(Times::Now) if !owner_or_capable(cred, a) => permission(cred, a, MAY_WRITE)?,
        _ => {}
    }
    if (change.uid.is_some() || change.gid.is_some()) && a.vtype() != VType::Dir {
        let mut mode = out.mode.unwrap_or(a.mode & 0o7777);
        mode &= !S_ISUID;
        if should_drop_sgid(cred, a) {
            mode &= !S_ISGID;
        }
        if mode != a.mode & 0o7777 || out.mode.is_some() {
            out.mode = Some(mode);
        }
    }
    Ok(out)
}

/// chown_common: a chown(2) of a non-directory — even with both ids -1 — asks to clear the
/// setuid bit and a setgid bit that should drop (ATTR_KILL_SUID, ATTR_KILL_SGID); a bit that
/// is set turns that into a change of mode, which notify_change then checks as a chmod: the
/// owner or CAP_FOWNER, else EPERM. The change to make, as [`setattr_prepare`] returns it.
pub fn chown_prepare(cred: &Cred, a: &Attr, uid: Option<u32>, gid: Option<u32>) -> Result<SetAttr, Errno> {
    let mut change = SetAttr { uid, gid, ..SetAttr::default() };
    if a.vtype() != VType::Dir {
        let old = a.mode & 0o7777;
        let mut mode = old & !S_ISUID;
        if should_drop_sgid(cred, a) {
            mode &= !S_ISGID;
        }
        if mode != old {
            change.mode = Some(mode);
        }
    }
    setattr_prepare(cred, a, &change, None)
}

/// truncate(2) by path: a regular file (EISDIR for a directory, EINVAL otherwise) the
/// caller may write.
pub fn may_truncate(cred: &Cred, a: &Attr) -> Result<(), Errno> {
    match a.vtype() {
        VType::Dir => Err(Errno::EISDIR),
        VType::Reg => {
            permission(cred, a, MAY_WRITE)?;
            if a.append_only() { Err(Errno::EPERM) } else { Ok(()) }
        }
        _ => Err(Errno::EINVAL),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::vfs::{S_IFDIR, S_IFREG};
    use crate::kern::cred::IdChange;

    fn user() -> Cred {
        let mut c = Cred::root();
        c.setgroups(vec![1001]).unwrap();
        c.setresgid(IdChange { real: Some(1000), effective: Some(1000), saved: Some(1000) }).unwrap();
        c.setresuid(IdChange { real: Some(1000), effective: Some(1000), saved: Some(1000) }).unwrap();
        c
    }

    fn file(mode: u32, uid: u32, gid: u32) -> Attr {
        Attr { mode: S_IFREG | mode, uid, gid, ino: 7, ..Attr::default() }
    }

    fn dir(mode: u32, uid: u32, gid: u32) -> Attr {
        Attr { mode: S_IFDIR | mode, uid, gid, ino: 9, ..Attr::default() }
    }

    #[test]
    fn classes() {
        let u = user();
        assert_eq!(permission(&u, &file(0o600, 0, 0), MAY_READ), Err(Errno::EACCES));
        assert_eq!(permission(&u, &file(0o644, 0, 0), MAY_READ), Ok(()));
        assert_eq!(permission(&u, &file(0o644, 0, 0), MAY_WRITE), Err(Errno::EACCES));
        assert_eq!(permission(&u, &file(0o640, 0, 1001), MAY_READ), Ok(()), "supplementary group");
        assert_eq!(permission(&u, &file(0o640, 0, 1002), MAY_READ), Err(Errno::EACCES));
        assert_eq!(permission(&u, &file(0o077, 1000, 1000), MAY_READ), Err(Errno::EACCES), "owner class only");
        assert_eq!(permission(&u, &file(0o707, 0, 1000), MAY_READ), Err(Errno::EACCES), "group class only");
    }

    #[test]
    fn root_capabilities() {
        let r = Cred::root();
        assert_eq!(permission(&r, &file(0, 5, 5), MAY_READ | MAY_WRITE), Ok(()));
        assert_eq!(permission(&r, &file(0o644, 5, 5), MAY_EXEC), Err(Errno::EACCES), "no x bit");
        assert_eq!(permission(&r, &file(0o001, 5, 5), MAY_EXEC), Ok(()));
        assert_eq!(permission(&r, &dir(0, 5, 5), MAY_EXEC | MAY_WRITE | MAY_READ), Ok(()));
        let mut dropped = Cred::root();
        dropped.cap_effective &= !(1 << CAP_DAC_OVERRIDE);
        assert_eq!(permission(&dropped, &file(0o600, 5, 5), MAY_READ), Ok(()), "CAP_DAC_READ_SEARCH");
        assert_eq!(permission(&dropped, &file(0o600, 5, 5), MAY_WRITE), Err(Errno::EACCES));
        assert_eq!(permission(&dropped, &dir(0o700, 5, 5), MAY_EXEC), Ok(()));
        assert_eq!(permission(&dropped, &dir(0o700, 5, 5), MAY_WRITE), Err(Errno::EACCES));
        assert_eq!(may_search(&user(), || Ok(dir(0o700, 0, 0))), Err(Errno::EACCES));
        assert_eq!(may_search(&r, || Err(Errno::EIO)), Ok(()), "root needs no attributes");
    }

    #[test]
    fn opens() {
        let u = user();
        assert_eq!(may_open(&u, &file(0o644, 0, 0), O_TRUNC, false), Err(Errno::EACCES));
        assert_eq!(may_open(&u, &file(0o644, 0, 0), 0, false), Ok(()));
        assert_eq!(may_open(&u, &file(0o666, 0, 0), O_RDWR, false), Ok(()));
        assert_eq!(may_open(&u, &dir(0o777, 0, 0), O_WRONLY, false), Err(Errno::EISDIR));
        assert_eq!(may_open(&u, &file(0o666, 0, 0), O_NOATIME, false), Err(Errno::EPERM));
        // A read-only file system: EROFS before the mode bits, for writing or O_TRUNC only.
        assert_eq!(may_open(&u, &file(0o644, 0, 0), O_WRONLY, true), Err(Errno::EROFS));
        assert_eq!(may_open(&u, &file(0o644, 0, 0), O_TRUNC, true), Err(Errno::EROFS));
        assert_eq!(may_open(&u, &file(0o600, 0, 0), 0, true), Err(Errno::EACCES));
        assert_eq!(may_open(&u, &dir(0o777, 0, 0), O_RDWR, true), Err(Errno::EISDIR));
        let fifo = Attr { mode: crate::fs::vfs::S_IFIFO | 0o600, ..file(0, 0, 0) };
        assert_eq!(may_open(&u, &fifo, O_WRONLY, true), Err(Errno::EACCES), "not a file's data");
        assert_eq!(may_exec(&u, &dir(0o777, 0, 0)), Err(Errno::EACCES));
        assert_eq!(may_exec(&Cred::root(), &file(0o644, 0, 0)), Err(Errno::EACCES));
        assert_eq!(may_exec(&u, &file(0o100, 1000, 0)), Ok(()));
    }

    #[test]
    fn directories() {
        let u = user();
        assert_eq!(may_create(&u, &dir(0o755, 0, 0)), Err(Errno::EACCES));
        assert_eq!(may_create(&u, &dir(0o777, 0, 0)), Ok(()));
        let sticky = dir(0o1777, 0, 0);
        assert_eq!(may_delete(&u, &sticky, &file(0o666, 0, 0)), Err(Errno::EPERM));
        assert_eq!(may_delete(&u, &sticky, &file(0o600, 1000, 0)), Ok(()));
        assert_eq!(may_delete(&u, &dir(0o1777, 1000, 0), &file(0o600, 0, 0)), Ok(()), "the directory's owner");
        assert_eq!(may_delete(&Cred::root(), &sticky, &file(0o600, 5, 0)), Ok(()));
        assert_eq!(may_delete(&u, &dir(0o777, 0, 0), &file(0o600, 0, 0)), Ok(()));
        let (d1, d2) = (dir(0o777, 0, 0), Attr { ino: 10, ..dir(0o777, 0, 0) });
        assert_eq!(
            may_rename(&u, &d1, &dir(0o555, 1000, 0), &d2, None),
            Err(Errno::EACCES),
            "moving a read-only directory"
        );
        assert_eq!(may_rename(&u, &d1, &dir(0o555, 1000, 0), &d1, None), Ok(()));
        assert_eq!(may_rename(&u, &d1, &file(0o600, 1000, 0), &sticky, Some(&file(0o600, 0, 0))), Err(Errno::EPERM));
    }

    #[test]
    fn hard_links() {
        let u = user();
        assert_eq!(may_link(&u, &file(0o600, 0, 0)), Err(Errno::EPERM));
        assert_eq!(may_link(&u, &file(0o4666, 0, 0)), Err(Errno::EPERM));
        assert_eq!(may_link(&u, &file(0o666, 0, 0)), Ok(()));
        assert_eq!(may_link(&u, &file(0o600, 1000, 0)), Ok(()));
        assert_eq!(may_link(&Cred::root(), &file(0o4000, 5, 0)), Ok(()));
    }

    #[test]
    fn new_files_in_setgid_directories() {
        let u = user();
        assert_eq!(new_owner(&u, &dir(0o777, 0, 0), 0o2755, false), (1000, 1000, 0o2755));
        assert_eq!(new_owner(&u, &dir(0o2777, 0, 42), 0o2755, false), (1000, 42, 0o755));
        assert_eq!(new_owner(&u, &dir(0o2777, 0, 1001), 0o2755, false), (1000, 1001, 0o2755));
        assert_eq!(new_owner(&u, &dir(0o2777, 0, 42), 0o755, true), (1000, 42, 0o2755));
        assert_eq!(new_owner(&Cred::root(), &dir(0o2777, 0, 42), 0o2755, false), (0, 42, 0o2755));
    }

    #[test]
    fn writes_clear_setuid() {
        let u = user();
        assert_eq!(mode_after_write(&u, &file(0o6777, 0, 0)), Some(0o777));
        assert_eq!(mode_after_write(&u, &file(0o2767, 0, 0)), Some(0o767), "not in the group");
        assert_eq!(mode_after_write(&u, &file(0o2767, 0, 1001)), None, "a locking mark of our group");
        assert_eq!(mode_after_write(&u, &file(0o755, 0, 0)), None);
        assert_eq!(mode_after_write(&Cred::root(), &file(0o6755, 0, 0)), None);
    }

    #[test]
    fn attribute_changes() {
        let u = user();
        let mine = file(0o2755, 1000, 1000);
        let chmod = |m: u32| SetAttr { mode: Some(m), ..SetAttr::default() };
        let chown = |uid: Option<u32>, gid: Option<u32>| SetAttr { uid, gid, ..SetAttr::default() };
        assert_eq!(setattr_prepare(&u, &file(0o644, 0, 0), &chmod(0o600), None), Err(Errno::EPERM));
        assert_eq!(setattr_prepare(&u, &mine, &chmod(0o2755), None).unwrap().mode, Some(0o2755));
        assert_eq!(setattr_prepare(&u, &file(0o644, 1000, 42), &chmod(0o2755), None).unwrap().mode, Some(0o755));
        assert_eq!(setattr_prepare(&u, &mine, &chown(Some(0), None), None), Err(Errno::EPERM));
        assert_eq!(setattr_prepare(&u, &mine, &chown(None, Some(42)), None), Err(Errno::EPERM));
        let r = setattr_prepare(&u, &mine, &chown(None, Some(1001)), None).unwrap();
        assert_eq!((r.gid, r.mode), (Some(1001), Some(0o755)), "chgrp clears setgid");
        assert_eq!(setattr_prepare(&u, &file(0o644, 0, 1001), &chown(None, Some(1001)), None), Err(Errno::EPERM));
        let r = setattr_prepare(&Cred::root(), &file(0o6755, 0, 0), &chown(Some(5), Some(5)), None).unwrap();
        assert_eq!(r.mode, Some(0o755));
        let r = setattr_prepare(&Cred::root(), &file(0o2745, 0, 0), &chown(None, Some(42)), None).unwrap();
        assert_eq!(r.mode, None, "a locking mark survives root's chown");
        let d = setattr_prepare(&Cred::root(), &dir(0o2755, 0, 0), &chown(Some(5), None), None).unwrap();
        assert_eq!(d.mode, None, "directories keep their bits");
        let none = SetAttr::default();
        assert_eq!(setattr_prepare(&u, &file(0o644, 0, 0), &none, Some(Times::Now)), Err(Errno::EACCES));
        assert_eq!(setattr_prepare(&u, &file(0o666, 0, 0), &none, Some(Times::Now)), Ok(none));
        assert_eq!(setattr_prepare(&u, &file(0o666, 0, 0), &none, Some(Times::Given)), Err(Errno::EPERM));
        assert_eq!(setattr_prepare(&u, &mine, &none, Some(Times::Given)), Ok(none));
    }

    #[test]
    fn chown_without_ids_clears_set_id_bits() {
        let u = user();
        // The owner: setuid goes, setgid with group-execute too; a locking mark of its group stays.
        assert_eq!(chown_prepare(&u, &file(0o6755, 1000, 1000), None, None).unwrap().mode, Some(0o755));
        assert_eq!(chown_prepare(&u, &file(0o2745, 1000, 1000), None, None).unwrap().mode, None);
        assert_eq!(chown_prepare(&u, &file(0o2745, 1000, 42), None, None).unwrap().mode, Some(0o745), "not its group");
        // Someone else: a bit to clear is a chmod it may not make; nothing to clear, nothing asked.
        assert_eq!(chown_prepare(&u, &file(0o4755, 0, 0), None, None), Err(Errno::EPERM));
        assert_eq!(chown_prepare(&u, &file(0o644, 0, 0), None, None), Ok(SetAttr::default()));
        assert_eq!(chown_prepare(&Cred::root(), &file(0o4755, 5, 5), None, None).unwrap().mode, Some(0o755));
        assert_eq!(chown_prepare(&Cred::root(), &dir(0o2755, 5, 5), None, None), Ok(SetAttr::default()));
    }
}
