//! Credentials (credentials(7), capabilities(7)): a process's user and group ids — real,
//! effective, saved and file-system — its supplementary groups and its capability sets, and
//! the rules by which they change: the set*id(2) calls, setfsuid(2), capset(2) and execve(2)
//! of setuid/setgid programs.
//!
//! vk has no file capabilities, no ambient set and no securebits: root is privileged by the
//! classic rules. init starts with every id 0 and the full capability set; a process whose
//! uids all leave 0 loses its permitted and effective sets, one whose effective uid leaves 0
//! its effective set (regained from the permitted set when it returns), and one whose fsuid
//! leaves 0 the file-system capabilities of its effective set (`cap_emulate_setxuid` and
//! `cap_task_fix_setuid` in Linux's security/commoncap.c). The permission checks that use
//! these are in `fs::perm`.

use crate::kern::errno::Errno;

/// A capability set: bit N is capability N.
pub type CapSet = u64;

pub use linux_raw_sys::general::{
    CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID, CAP_KILL, CAP_LAST_CAP,
    CAP_LINUX_IMMUTABLE, CAP_MAC_OVERRIDE, CAP_MKNOD, CAP_SETGID, CAP_SETPCAP, CAP_SETUID, CAP_SYS_ADMIN, CAP_SYS_BOOT,
    CAP_SYS_CHROOT, CAP_SYS_NICE, CAP_SYS_PTRACE, CAP_SYS_RESOURCE, CAP_SYSLOG,
};

/// Every capability.
pub const CAP_FULL_SET: CapSet = (1 << (CAP_LAST_CAP + 1)) - 1;

const fn bit(cap: u32) -> CapSet {
    1 << cap
}

/// The capabilities that follow the fsuid (CAP_FS_MASK).
pub const CAP_FS_SET: CapSet = bit(CAP_CHOWN)
    | bit(CAP_DAC_OVERRIDE)
    | bit(CAP_DAC_READ_SEARCH)
    | bit(CAP_FOWNER)
    | bit(CAP_FSETID)
    | bit(CAP_LINUX_IMMUTABLE)
    | bit(CAP_MKNOD)
    | bit(CAP_MAC_OVERRIDE);

/// Most supplementary groups (NGROUPS_MAX).
pub const NGROUPS_MAX: usize = linux_raw_sys::general::NGROUPS_MAX as usize;

/// A process's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cred {
    pub uid: u32,
    pub euid: u32,
    pub suid: u32,
    /// The uid file permission checks use; follows euid unless setfsuid(2) sets it.
    pub fsuid: u32,
    pub gid: u32,
    pub egid: u32,
    pub sgid: u32,
    pub fsgid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
    pub cap_effective: CapSet,
    pub cap_permitted: CapSet,
    pub cap_inheritable: CapSet,
    pub cap_bounding: CapSet,
}

impl Default for Cred {
    fn default() -> Cred {
        Cred::root()
    }
}

/// Which ids a set*id call changes: `None` leaves one alone (-1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IdChange {
    pub real: Option<u32>,
    pub effective: Option<u32>,
    pub saved: Option<u32>,
}

/// An id argument of a set*id call: -1 (as u32) means "unchanged".
pub fn id_arg(v: u32) -> Option<u32> {
    (v != u32::MAX).then_some(v)
}

impl Cred {
    /// init's credentials: root with every capability.
    pub fn root() -> Cred {
        Cred {
            uid: 0,
            euid: 0,
            suid: 0,
            fsuid: 0,
            gid: 0,
            egid: 0,
            sgid: 0,
            fsgid: 0,
            groups: Vec::new(),
            cap_effective: CAP_FULL_SET,
            cap_permitted: CAP_FULL_SET,
            cap_inheritable: 0,
            cap_bounding: CAP_FULL_SET,
        }
    }

    /// Whether the effective set holds `cap` (capable(9)).
    pub fn capable(&self, cap: u32) -> bool {
        self.cap_effective & bit(cap) != 0
    }

    /// Whether `gid` is the fsgid or a supplementary group (in_group_p).
    pub fn in_group(&self, gid: u32) -> bool {
        self.fsgid == gid || self.groups.contains(&gid)
    }

    /// Whether a process with these credentials may look into one with `target`'s — its
    /// /proc/PID/maps, exe link and descriptors, the private fields of its stat —
    /// (ptrace_may_access with PTRACE_MODE_READ_FSCREDS, for another process): the caller's
    /// fsuid is each of the target's real, effective and saved uids and its fsgid each of its
    /// gids, or the caller has CAP_SYS_PTRACE. vk keeps no "dumpable" flag: a process that
    /// ran a set-user-ID program stays open to its real user as long as its ids all match.
    pub fn may_inspect(&self, target: &Cred) -> bool {
        let uids = [target.uid, target.euid, target.suid];
        let gids = [target.gid, target.egid, target.sgid];
        (uids.iter().all(|&u| u == self.fsuid) && gids.iter().all(|&g| g == self.fsgid)) || self.capable(CAP_SYS_PTRACE)
    }

    /// The credentials access(2) and faccessat(2) without AT_EACCESS check with: the real
    /// ids as the file-system ids, and root's capabilities only when the real uid is 0
    /// (Linux's access_override_creds).
    pub fn for_access(&self) -> Cred {
        let mut c = self.clone();
        c.fsuid = c.uid;
        c.fsgid = c.gid;
        c.cap_effective = if c.uid == 0 { c.cap_permitted } else { 0 };
        c
    }

    /// setuid(2): with CAP_SETUID all three uids, else the effective uid to the real or
    /// saved one.
    pub fn setuid(&mut self, uid: u32) -> Result<(), Errno> {
        let ch = if self.capable(CAP_SETUID) {
            IdChange { real: Some(uid), effective: Some(uid), saved: Some(uid) }
        } else if uid == self.uid || uid == self.suid {
            IdChange { effective: Some(uid), ..IdChange::default() }
        } else {
            return Err(Errno::EPERM);
        };
        self.change_uids(ch);
        Ok(())
    }

    /// setreuid(2): the real uid to the real or effective one, the effective uid to any of
    /// the three (anything with CAP_SETUID); the saved uid follows the new effective one when
    /// the real uid is set or the effective uid set to something other than the old real uid.
    pub fn setreuid(&mut self, r: Option<u32>, e: Option<u32>) -> Result<(), Errno> {
        let privileged = self.capable(CAP_SETUID);
        if let Some(r) = r
            && !privileged
            && r != self.uid
            && r != self.euid
        {
            return Err(Errno::EPERM);
        }
        if let Some(e) = e
            && !privileged
            && e != self.uid
            && e != self.euid
            && e != self.suid
        {
            return Err(Errno::EPERM);
        }
        let new_e = e.unwrap_or(self.euid);
        let saved = (r.is_some() || e.is_some_and(|e| e != self.uid)).then_some(new_e);
        self.change_uids(IdChange { real: r, effective: e, saved });
        Ok(())
    }

    /// setresuid(2): each id to one of the three current ones (anything with CAP_SETUID).
    pub fn setresuid(&mut self, ch: IdChange) -> Result<(), Errno> {
        let ok = |x: Option<u32>| x.is_none_or(|x| x == self.uid || x == self.euid || x == self.suid);
        let allowed = ok(ch.real) && ok(ch.effective) && ok(ch.saved);
        if !allowed && !self.capable(CAP_SETUID) {
            return Err(Errno::EPERM);
        }
        self.change_uids(ch);
        Ok(())
    }

    /// Apply a permitted uid change: fsuid follows euid, and the capability sets follow
    /// the uids (cap_emulate_setxuid).
    fn change_uids(&mut self, ch: IdChange) {
        let old = self.clone();
        self.uid = ch.real.unwrap_or(self.uid);
        self.euid = ch.effective.unwrap_or(self.euid);
        self.suid = ch.saved.unwrap_or(self.suid);
        self.fsuid = self.euid;
        let was_root = old.uid == 0 || old.euid == 0 || old.suid == 0;
        if was_root && self.uid != 0 && self.euid != 0 && self.suid != 0 {
            self.cap_permitted = 0;
            self.cap_effective = 0;
        }
        if old.euid == 0 && self.euid != 0 {
            self.cap_effective = 0;
        }
        if old.euid != 0 && self.euid == 0 {
            self.cap_effective = self.cap_permitted;
        }
    }

    /// setgid(2), as setuid with CAP_SETGID; capabilities do not change.
    pub fn setgid(&mut self, gid: u32) -> Result<(), Errno> {
        if self.capable(CAP_SETGID) {
            (self.gid, self.egid, self.sgid) = (gid, gid, gid);
        } else if gid == self.gid || gid == self.sgid {
            self.egid = gid;
        } else {
            return Err(Errno::EPERM);
        }
        self.fsgid = self.egid;
        Ok(())
    }

    /// setregid(2), as setreuid.
    pub fn setregid(&mut self, r: Option<u32>, e: Option<u32>) -> Result<(), Errno> {
        let privileged = self.capable(CAP_SETGID);
        if r.is_some_and(|r| !privileged && r != self.gid && r != self.egid)
            || e.is_some_and(|e| !privileged && e != self.gid && e != self.egid && e != self.sgid)
        {
            return Err(Errno::EPERM);
        }
        if r.is_some() || e.is_some_and(|e| e != self.gid) {
            self.sgid = e.unwrap_or(self.egid);
        }
        self.gid = r.unwrap_or(self.gid);
        self.egid = e.unwrap_or(self.egid);
        self.fsgid = self.egid;
        Ok(())
    }

    /// setresgid(2), as setresuid.
    pub fn setresgid(&mut self, ch: IdChange) -> Result<(), Errno> {
        let ok = |x: Option<u32>| x.is_none_or(|x| x == self.gid || x == self.egid || x == self.sgid);
        let allowed = ok(ch.real) && ok(ch.effective) && ok(ch.saved);
        if !allowed && !self.capable(CAP_SETGID) {
            return Err(Errno::EPERM);
        }
        self.gid = ch.real.unwrap_or(self.gid);
        self.egid = ch.effective.unwrap_or(self.egid);
        self.sgid = ch.saved.unwrap_or(self.sgid);
        self.fsgid = self.egid;
        Ok(())
    }

    /// setfsuid(2): returns the old fsuid whether or not the change was allowed (to one of
    /// the other uids, or anything with CAP_SETUID; -1 never). The file-system capabilities
    /// leave the effective set with fsuid 0 and come back with it.
    pub fn setfsuid(&mut self, fsuid: u32) -> u32 {
        let old = self.fsuid;
        let allowed = [self.uid, self.euid, self.suid, self.fsuid].contains(&fsuid) || self.capable(CAP_SETUID);
        if fsuid != u32::MAX && allowed && fsuid != old {
            self.fsuid = fsuid;
            if old == 0 && fsuid != 0 {
                self.cap_effective &= !CAP_FS_SET;
            }
            if old != 0 && fsuid == 0 {
                self.cap_effective |= self.cap_permitted & CAP_FS_SET;
            }
        }
        old
    }

    /// setfsgid(2), as setfsuid with CAP_SETGID.
    pub fn setfsgid(&mut self, fsgid: u32) -> u32 {
        let old = self.fsgid;
        let allowed = [self.gid, self.egid, self.sgid, self.fsgid].contains(&fsgid) || self.capable(CAP_SETGID);
        if fsgid != u32::MAX && allowed {
            self.fsgid = fsgid;
        }
        old
    }

    /// setgroups(2): CAP_SETGID only; at most NGROUPS_MAX.
    pub fn setgroups(&mut self, groups: Vec<u32>) -> Result<(), Errno> {
        if groups.len() > NGROUPS_MAX {
            return Err(Errno::EINVAL);
        }
        if !self.capable(CAP_SETGID) {
            return Err(Errno::EPERM);
        }
        self.groups = groups;
        Ok(())
    }

    /// capset(2) on oneself: the new inheritable set within the old inheritable and
    /// permitted sets (the bounding set with CAP_SETPCAP) and the old inheritable and
    /// bounding sets, the new permitted set within the old one, the new effective set within
    /// the new permitted one.
    pub fn capset(&mut self, effective: CapSet, permitted: CapSet, inheritable: CapSet) -> Result<(), Errno> {
        let subset = |a: CapSet, b: CapSet| a & !b == 0;
        if !self.capable(CAP_SETPCAP) && !subset(inheritable, self.cap_inheritable | self.cap_permitted) {
            return Err(Errno::EPERM);
        }
        if !subset(inheritable, self.cap_inheritable | self.cap_bounding)
            || !subset(permitted, self.cap_permitted)
            || !subset(effective, permitted)
        {
            return Err(Errno::EPERM);
        }
        (self.cap_effective, self.cap_permitted, self.cap_inheritable) = (effective, permitted, inheritable);
        Ok(())
    }

    /// The credentials after execve(2) of a file with owner `file_uid`, group `file_gid` and
    /// `mode` (`nosuid`: a nosuid mount ignores the setuid and setgid bits), and whether the
    /// exec is "secure" (AT_SECURE: the effective ids differ from the real ones). The setuid
    /// bit gives the file's owner as the effective uid, the setgid bit (with group-execute)
    /// its group as the effective gid; the saved and file-system ids follow. Without file
    /// capabilities, root (real or effective uid 0) gets the bounding and inheritable sets as
    /// its permitted set, and an effective uid of 0 makes them effective; anyone else's
    /// permitted and effective sets are empty (cap_bprm_creds_from_file).
    pub fn exec(&self, file_uid: u32, file_gid: u32, mode: u32, nosuid: bool) -> (Cred, bool) {
        const S_ISUID: u32 = 0o4000;
        const S_ISGID: u32 = 0o2000;
        const S_IXGRP: u32 = 0o010;
        let mut new = self.clone();
        if !nosuid {
            if mode & S_ISUID != 0 {
                new.euid = file_uid;
            }
            if mode & (S_ISGID | S_IXGRP) == S_ISGID | S_IXGRP {
                new.egid = file_gid;
            }
        }
        new.cap_permitted = if new.euid == 0 || new.uid == 0 { self.cap_bounding | self.cap_inheritable } else { 0 };
        new.cap_effective = if new.euid == 0 { new.cap_permitted } else { 0 };
        (new.suid, new.fsuid) = (new.euid, new.euid);
        (new.sgid, new.fsgid) = (new.egid, new.egid);
        let secure = new.euid != self.uid || new.egid != self.gid;
        (new, secure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> Cred {
        let mut c = Cred::root();
        c.setgroups(vec![1001]).unwrap();
        c.setresgid(IdChange { real: Some(1000), effective: Some(1000), saved: Some(1000) }).unwrap();
        c.setresuid(IdChange { real: Some(1000), effective: Some(1000), saved: Some(1000) }).unwrap();
        c
    }

    #[test]
    fn inspecting_another_process() {
        let (u, root) = (user(), Cred::root());
        assert!(u.may_inspect(&user()), "the same user");
        assert!(!u.may_inspect(&root), "root's process");
        assert!(root.may_inspect(&u), "CAP_SYS_PTRACE");
        // A set-user-ID program's process: its saved uid is not the caller's.
        let mut suid = user();
        suid.euid = 0;
        suid.suid = 0;
        assert!(!u.may_inspect(&suid));
        let mut other_group = user();
        other_group.egid = 42;
        assert!(!u.may_inspect(&other_group));
        let mut no_ptrace = Cred::root();
        no_ptrace.cap_effective &= !(1 << CAP_SYS_PTRACE);
        no_ptrace.fsuid = 5;
        assert!(!no_ptrace.may_inspect(&u));
    }

    #[test]
    fn dropping_root_drops_capabilities() {
        let c = user();
        assert_eq!((c.uid, c.euid, c.suid, c.fsuid, c.gid, c.fsgid), (1000, 1000, 1000, 1000, 1000, 1000));
        assert_eq!((c.cap_effective, c.cap_permitted), (0, 0));
        assert!(c.in_group(1001) && c.in_group(1000) && !c.in_group(0));
        let mut c2 = c.clone();
        assert_eq!(c2.setuid(0), Err(Errno::EPERM));
        assert_eq!(c2.setgroups(vec![0]), Err(Errno::EPERM));
        assert_eq!(c2.setresuid(IdChange { effective: Some(0), ..Default::default() }), Err(Errno::EPERM));
        assert_eq!(c2, c);
    }

    #[test]
    fn effective_uid_round_trip() {
        let mut c = Cred::root();
        c.setresuid(IdChange { real: Some(1000), ..Default::default() }).unwrap();
        assert_eq!(c.cap_effective, CAP_FULL_SET, "saved and effective uid still 0");
        c.setresuid(IdChange { effective: Some(1000), ..Default::default() }).unwrap();
        assert_eq!((c.cap_effective, c.cap_permitted), (0, CAP_FULL_SET));
        assert!(!c.capable(CAP_SETUID));
        c.setuid(0).unwrap(); // the saved uid allows it, and only the euid changes
        assert_eq!((c.uid, c.euid, c.suid), (1000, 0, 0));
        assert_eq!(c.cap_effective, CAP_FULL_SET);
        c.setuid(1000).unwrap(); // privileged: all three
        assert_eq!((c.uid, c.euid, c.suid, c.cap_permitted), (1000, 1000, 1000, 0));
    }

    #[test]
    fn setreuid_saved_uid_rule() {
        let mut c = user();
        c.suid = 2000;
        c.setreuid(None, Some(2000)).unwrap();
        assert_eq!((c.uid, c.euid, c.suid), (1000, 2000, 2000));
        c.setreuid(Some(2000), None).unwrap();
        assert_eq!((c.uid, c.euid, c.suid), (2000, 2000, 2000));
        assert_eq!(c.setreuid(Some(3000), None), Err(Errno::EPERM));
    }

    #[test]
    fn fsuid_moves_the_file_capabilities() {
        let mut c = Cred::root();
        assert_eq!(c.setfsuid(1000), 0);
        assert!(!c.capable(CAP_DAC_OVERRIDE) && c.capable(CAP_SETUID));
        assert_eq!(c.setfsuid(u32::MAX), 1000);
        assert_eq!(c.setfsuid(0), 1000);
        assert_eq!(c.cap_effective, CAP_FULL_SET);
        let mut u = user();
        assert_eq!(u.setfsuid(0), 1000);
        assert_eq!(u.fsuid, 1000, "refused");
        c.setresuid(IdChange { effective: Some(5), ..Default::default() }).unwrap();
        assert_eq!(c.fsuid, 5, "fsuid follows euid");
    }

    #[test]
    fn exec_setuid_and_setgid() {
        let u = user();
        let (n, secure) = u.exec(0, 0, 0o4755, false);
        assert!(secure);
        assert_eq!((n.uid, n.euid, n.suid, n.fsuid), (1000, 0, 0, 0));
        assert_eq!((n.cap_effective, n.cap_permitted), (CAP_FULL_SET, CAP_FULL_SET));
        let (n, secure) = u.exec(0, 42, 0o2755, false);
        assert!(secure);
        assert_eq!((n.gid, n.egid, n.sgid, n.cap_permitted), (1000, 42, 42, 0));
        let (n, secure) = u.exec(0, 42, 0o2745, false);
        assert!(!secure, "setgid without group-execute is no setgid program");
        assert_eq!(n.egid, 1000);
        let (n, secure) = u.exec(0, 0, 0o4755, true);
        assert!(!secure && n.euid == 1000, "nosuid");
        let (n, secure) = Cred::root().exec(1000, 1000, 0o4755, false);
        assert!(secure);
        assert_eq!((n.uid, n.euid, n.cap_effective, n.cap_permitted), (0, 1000, 0, CAP_FULL_SET));
        let (n, secure) = Cred::root().exec(1000, 1000, 0o755, false);
        assert!(!secure && n == Cred::root());
    }

    #[test]
    fn capset_rules() {
        let mut c = Cred::root();
        let less = CAP_FULL_SET & !bit(CAP_SYS_ADMIN);
        c.capset(less, less, 0).unwrap();
        assert!(!c.capable(CAP_SYS_ADMIN));
        assert_eq!(c.capset(CAP_FULL_SET, CAP_FULL_SET, 0), Err(Errno::EPERM), "permitted cannot grow");
        assert_eq!(c.capset(less, bit(CAP_CHOWN), 0), Err(Errno::EPERM), "effective within permitted");
        let mut u = user();
        assert_eq!(u.capset(0, 0, bit(CAP_CHOWN)), Err(Errno::EPERM));
        u.capset(0, 0, 0).unwrap();
    }

    #[test]
    fn access_uses_the_real_ids() {
        let mut c = Cred::root();
        c.setresuid(IdChange { real: Some(1000), ..Default::default() }).unwrap();
        let a = c.for_access();
        assert_eq!((a.fsuid, a.cap_effective), (1000, 0));
        let r = Cred::root().for_access();
        assert_eq!(r.cap_effective, CAP_FULL_SET);
    }
}
