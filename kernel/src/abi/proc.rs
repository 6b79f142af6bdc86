//! Process structures: `struct rusage`, `struct rlimit64`, `struct sysinfo`,
//! `struct new_utsname`, `struct tms`; the flag sets of clone(2), wait4(2)/waitid(2) and
//! getrandom(2), and waitid's id types.

use super::time::Timeval;
use super::{c_int, linux, linux_struct};
use crate::kern::errno::Errno;
use linux_raw_sys::system;

linux_struct! {
    /// `struct rusage` (getrusage(2), wait4(2), waitid(2)'s fifth argument).
    pub struct Rusage = linux::rusage {
        pub ru_utime: Timeval,
        pub ru_stime: Timeval,
        pub ru_maxrss: i64,
        pub ru_ixrss: i64,
        pub ru_idrss: i64,
        pub ru_isrss: i64,
        pub ru_minflt: i64,
        pub ru_majflt: i64,
        pub ru_nswap: i64,
        pub ru_inblock: i64,
        pub ru_oublock: i64,
        pub ru_msgsnd: i64,
        pub ru_msgrcv: i64,
        pub ru_nsignals: i64,
        pub ru_nvcsw: i64,
        pub ru_nivcsw: i64,
    }
}

linux_struct! {
    /// `struct rlimit64` (prlimit64(2)): soft and hard limits, RLIM_INFINITY as all ones.
    pub struct Rlimit64 = linux::rlimit64 {
        pub rlim_cur: u64,
        pub rlim_max: u64,
    }
}

/// Number of resource limits: prlimit64(2) refuses a resource at or past it (EINVAL).
pub const RLIM_NLIMITS: u32 = linux::RLIM_NLIMITS;
/// The resource limit on descriptors.
pub const RLIMIT_NOFILE: u32 = linux::RLIMIT_NOFILE;
/// fs.nr_open's default: no RLIMIT_NOFILE hard limit above it (EPERM, even for root).
pub const NR_OPEN: u64 = 1 << 20;

linux_struct! {
    /// `struct sysinfo` (sysinfo(2)): x86-64 has 4 bytes of padding after `pad` and after
    /// `mem_unit` (the `_f` tail is empty on 64-bit).
    pub struct Sysinfo = system::sysinfo {
        pub uptime: i64,
        pub loads: [u64; 3],
        pub totalram: u64,
        pub freeram: u64,
        pub sharedram: u64,
        pub bufferram: u64,
        pub totalswap: u64,
        pub freeswap: u64,
        pub procs: u16,
        pub pad: u16,
        pad __pad1: u32,
        pub totalhigh: u64,
        pub freehigh: u64,
        pub mem_unit: u32,
        pad __pad2: u32,
    }
}

/// Length of a utsname field, with its NUL.
pub const UTS_FIELD: usize = size_of::<system::new_utsname>() / 6;

linux_struct! {
    /// `struct new_utsname` (uname(2)): six NUL-terminated fields of 65 bytes.
    pub struct NewUtsname = system::new_utsname {
        pub sysname: [u8; UTS_FIELD],
        pub nodename: [u8; UTS_FIELD],
        pub release: [u8; UTS_FIELD],
        pub version: [u8; UTS_FIELD],
        pub machine: [u8; UTS_FIELD],
        pub domainname: [u8; UTS_FIELD],
    }
}

/// A utsname field: `s` cut to 64 bytes and NUL-padded.
pub fn uts_field(s: &[u8]) -> [u8; UTS_FIELD] {
    let mut f = [0u8; UTS_FIELD];
    let n = s.len().min(UTS_FIELD - 1);
    f[..n].copy_from_slice(&s[..n]);
    f
}

/// `struct tms` (times(2)), include/uapi/linux/times.h: four `__kernel_clock_t` in clock
/// ticks. linux-raw-sys does not carry it; the unit test below pins the layout.
#[repr(C)]
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    zerocopy::FromBytes,
    zerocopy::IntoBytes,
    zerocopy::Immutable,
    zerocopy::KnownLayout,
)]
pub struct Tms {
    pub tms_utime: i64,
    pub tms_stime: i64,
    pub tms_cutime: i64,
    pub tms_cstime: i64,
}
const _: () = assert!(size_of::<linux::__kernel_clock_t>() == size_of::<i64>());

bitflags::bitflags! {
    /// clone(2)'s flags, the low 32 bits less the exit signal (CSIGNAL). The legacy call
    /// refuses no bit: Linux ignores the upper half of the register and takes every low
    /// bit as defined (CLONE_NEWTIME's bit is part of the exit signal there).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct CloneFlags: u32 {
        const VM = linux::CLONE_VM;
        const FS = linux::CLONE_FS;
        const FILES = linux::CLONE_FILES;
        const SIGHAND = linux::CLONE_SIGHAND;
        const PIDFD = linux::CLONE_PIDFD;
        const PTRACE = linux::CLONE_PTRACE;
        const VFORK = linux::CLONE_VFORK;
        const PARENT = linux::CLONE_PARENT;
        const THREAD = linux::CLONE_THREAD;
        const NEWNS = linux::CLONE_NEWNS;
        const SYSVSEM = linux::CLONE_SYSVSEM;
        const SETTLS = linux::CLONE_SETTLS;
        const PARENT_SETTID = linux::CLONE_PARENT_SETTID;
        const CHILD_CLEARTID = linux::CLONE_CHILD_CLEARTID;
        const DETACHED = linux::CLONE_DETACHED;
        const UNTRACED = linux::CLONE_UNTRACED;
        const CHILD_SETTID = linux::CLONE_CHILD_SETTID;
        const NEWCGROUP = linux::CLONE_NEWCGROUP;
        const NEWUTS = linux::CLONE_NEWUTS;
        const NEWIPC = linux::CLONE_NEWIPC;
        const NEWUSER = linux::CLONE_NEWUSER;
        const NEWPID = linux::CLONE_NEWPID;
        const NEWNET = linux::CLONE_NEWNET;
        const IO = linux::CLONE_IO;
    }
}

/// The exit signal's bits in clone(2)'s flags.
pub const CSIGNAL: u32 = linux::CSIGNAL;

linux_struct! {
    /// clone3(2)'s arguments (`struct clone_args`, CLONE_ARGS_SIZE_VER2 bytes): a caller's
    /// shorter version (VER0, VER1) reads as zeros past its end.
    pub struct Clone3Args = linux::clone_args {
        pub flags: u64,
        pub pidfd: u64,
        pub child_tid: u64,
        pub parent_tid: u64,
        pub exit_signal: u64,
        pub stack: u64,
        pub stack_size: u64,
        pub tls: u64,
        pub set_tid: u64,
        pub set_tid_size: u64,
        pub cgroup: u64,
    }
}

/// clone3(2)'s flag bits above the legacy 32.
pub const CLONE_CLEAR_SIGHAND: u64 = linux::CLONE_CLEAR_SIGHAND;
pub const CLONE_INTO_CGROUP: u64 = linux::CLONE_INTO_CGROUP;
/// The oldest `struct clone_args` (VER0) and the one with `cgroup` (VER2).
pub const CLONE_ARGS_SIZE_VER0: usize = linux::CLONE_ARGS_SIZE_VER0 as usize;
pub const CLONE_ARGS_SIZE_VER2: usize = linux::CLONE_ARGS_SIZE_VER2 as usize;
/// CLONE_NEWTIME: in clone3's flags (its bit is the exit signal's in the legacy call).
pub const CLONE_NEWTIME: u64 = super::c_ulong(linux::CLONE_NEWTIME);
/// The most ids set_tid may name (MAX_PID_NS_LEVEL).
pub const MAX_PID_NS_LEVEL: u64 = 32;

impl CloneFlags {
    /// Namespaces (and pidfds) vk does not have.
    pub const UNSUPPORTED: CloneFlags = CloneFlags::NEWNS
        .union(CloneFlags::NEWCGROUP)
        .union(CloneFlags::NEWUTS)
        .union(CloneFlags::NEWIPC)
        .union(CloneFlags::NEWUSER)
        .union(CloneFlags::NEWPID)
        .union(CloneFlags::NEWNET)
        .union(CloneFlags::PIDFD);

    /// Split clone(2)'s first argument into flags and the exit signal.
    pub fn split(raw: u32) -> (CloneFlags, u32) {
        (CloneFlags::from_bits_truncate(raw & !CSIGNAL), raw & CSIGNAL)
    }
}

bitflags::bitflags! {
    /// wait4(2)'s options: EINVAL for any other bit (kernel_wait4).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct Wait4Options: u32 {
        const NOHANG = linux::WNOHANG;
        const UNTRACED = linux::WUNTRACED;
        const CONTINUED = linux::WCONTINUED;
        const NOTHREAD = linux::__WNOTHREAD;
        const ALL = linux::__WALL;
        const CLONE = linux::__WCLONE;
    }
}

bitflags::bitflags! {
    /// waitid(2)'s options: EINVAL for any other bit, and for none of WEXITED, WSTOPPED
    /// and WCONTINUED.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct WaitidOptions: u32 {
        const NOHANG = linux::WNOHANG;
        const STOPPED = linux::WSTOPPED;
        const EXITED = linux::WEXITED;
        const CONTINUED = linux::WCONTINUED;
        const NOWAIT = linux::WNOWAIT;
        const NOTHREAD = linux::__WNOTHREAD;
        const ALL = linux::__WALL;
        const CLONE = linux::__WCLONE;
    }
}

/// waitid(2)'s id type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdType {
    All,
    Pid,
    Pgid,
    Pidfd,
}

impl TryFrom<i32> for IdType {
    type Error = Errno;

    fn try_from(v: i32) -> Result<IdType, Errno> {
        const ALL: i32 = c_int(linux::P_ALL);
        const PID: i32 = c_int(linux::P_PID);
        const PGID: i32 = c_int(linux::P_PGID);
        const PIDFD: i32 = c_int(linux::P_PIDFD);
        match v {
            ALL => Ok(IdType::All),
            PID => Ok(IdType::Pid),
            PGID => Ok(IdType::Pgid),
            PIDFD => Ok(IdType::Pidfd),
            _ => Err(Errno::EINVAL),
        }
    }
}

bitflags::bitflags! {
    /// getrandom(2)'s flags: EINVAL for any other bit, and for GRND_RANDOM with
    /// GRND_INSECURE.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct GrndFlags: u32 {
        const NONBLOCK = linux::GRND_NONBLOCK;
        const RANDOM = linux::GRND_RANDOM;
        const INSECURE = linux::GRND_INSECURE;
    }
}

#[cfg(test)]
mod tests {
    use core::mem::offset_of;

    use super::*;

    #[test]
    fn tms_and_sysinfo_layouts() {
        assert_eq!(size_of::<Tms>(), 32);
        assert_eq!(offset_of!(Tms, tms_cstime), 24);
        assert_eq!(size_of::<Sysinfo>(), 112);
        assert_eq!(offset_of!(Sysinfo, procs), 80);
        assert_eq!(offset_of!(Sysinfo, mem_unit), 104);
        assert_eq!(size_of::<NewUtsname>(), 65 * 6);
        assert_eq!(&uts_field(b"vk")[..3], b"vk\0");
        assert_eq!(uts_field(&[b'x'; 100])[64], 0);
    }

    #[test]
    fn clone_flags_split_the_exit_signal() {
        let (f, sig) = CloneFlags::split(linux::CLONE_VM | linux::CLONE_VFORK | 17);
        assert_eq!((f, sig), (CloneFlags::VM | CloneFlags::VFORK, 17));
        // CLONE_NEWTIME's bit is an exit signal to the legacy call.
        assert_eq!(CloneFlags::split(0x80), (CloneFlags::empty(), 0x80));
        assert_eq!(IdType::try_from(2), Ok(IdType::Pgid));
        assert_eq!(IdType::try_from(9), Err(Errno::EINVAL));
    }
}
