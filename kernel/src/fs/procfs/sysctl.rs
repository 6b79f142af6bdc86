//! `/proc/sys`: kernel settings as files (Linux's sysctl tree, FreeBSD's `debug.kdb.*`).
//!
//! ```text
//!  /proc/sys/kernel/hostname    0644  the node name (uname -n, sethostname(2))
//!  /proc/sys/kernel/domainname  0644  the NIS domain name (setdomainname(2))
//!  /proc/sys/kernel/ostype      0444  "Linux"
//!  /proc/sys/kernel/osrelease   0444  uname -r
//!  /proc/sys/kernel/version     0444  uname -v
//!  /proc/sys/kernel/core_pattern 0644 where core files go (core(5); no `|` pipes)
//!  /proc/sys/kernel/randomize_va_space  0644  0, 1 or 2: address-space randomisation at exec
//!  /proc/sys/kernel/yama/ptrace_scope  0644  Yama's ptrace restriction, 0-3 (1 by default; 3 sticks)
//!  /proc/sys/kernel/pid_max     0444  the largest pid + 1 (pids wrap below it)
//!  /proc/sys/kernel/tainted     0444  0: nothing taints vk
//!  /proc/sys/kernel/random/boot_id  0444  a UUID made once per boot
//!  /proc/sys/kernel/random/uuid     0444  a new random UUID at every read
//!  /proc/sys/fs/pipe-max-size   0644  the most an unprivileged F_SETPIPE_SZ may ask for
//!  /proc/sys/fs/pipe-user-pages-{soft,hard}  0644  pages of pipe buffers a user's pipes may
//!                                     hold (0: no limit; see fs/pipe.rs)
//!  /proc/sys/fs/file-max        0444  open files the system allows
//!  /proc/sys/fs/nr_open         0444  the highest RLIMIT_NOFILE
//!  /proc/sys/fs/lease-break-time 0644 seconds a lease holder has before the kernel breaks it
//!  /proc/sys/vm/max_map_count   0644  the most mappings a process may have (mmap: ENOMEM)
//!  /proc/sys/kernel/{shmmax,shmall,shmmni,sem,msgmax,msgmnb,msgmni}  0444  System V IPC's
//!                                     limits (fixed in vk: Linux's defaults)
//!  /proc/sys/fs/inotify/{max_queued_events,max_user_instances,max_user_watches}  0444
//!  /proc/sys/debug/kdb/enter    0200  write 1: enter the debugger (`continue` resumes)
//!  /proc/sys/debug/kdb/panic    0200  write 1: panic
//!  /proc/sys/debug/kdb/trap     0200  write 1: take a page fault in kernel mode
//! ```
//!
//! Only root (euid 0) may write; others get EACCES, at open(2) with O_TRUNC (as the shell's
//! `>` opens) or at write(2). Writes take the text up to the first newline, as Linux's
//! `proc_dostring` does; the kdb files want an integer, and do nothing for 0.

use crate::kern::errno::Errno;
use crate::kern::utsname;

/// The directories of `/proc/sys`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SysDir {
    Sys,
    Kernel,
    Debug,
    Kdb,
    Yama,
    Random,
    Fs,
    Inotify,
    Vm,
}

/// The settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ctl {
    Hostname,
    Domainname,
    Ostype,
    Osrelease,
    Version,
    CorePattern,
    RandomizeVaSpace,
    PtraceScope,
    KdbEnter,
    KdbPanic,
    KdbTrap,
    PidMax,
    Tainted,
    BootId,
    Uuid,
    PipeMaxSize,
    PipeUserPagesSoft,
    PipeUserPagesHard,
    FileMax,
    NrOpen,
    Shmmax,
    Shmall,
    Shmmni,
    Sem,
    Msgmax,
    Msgmnb,
    Msgmni,
    InotifyMaxQueued,
    InotifyMaxInstances,
    InotifyMaxWatches,
    LeaseBreakTime,
    MaxMapCount,
}

/// An entry of a `/proc/sys` directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    Dir(SysDir),
    Ctl(Ctl),
}

pub const CTLS: [Ctl; 32] = [
    Ctl::Shmmax,
    Ctl::Shmall,
    Ctl::Shmmni,
    Ctl::Sem,
    Ctl::Msgmax,
    Ctl::Msgmnb,
    Ctl::Msgmni,
    Ctl::InotifyMaxQueued,
    Ctl::InotifyMaxInstances,
    Ctl::InotifyMaxWatches,
    Ctl::Hostname,
    Ctl::Ostype,
    Ctl::Osrelease,
    Ctl::CorePattern,
    Ctl::RandomizeVaSpace,
    Ctl::KdbEnter,
    Ctl::KdbPanic,
    Ctl::KdbTrap,
    Ctl::PtraceScope,
    Ctl::PidMax,
    Ctl::Tainted,
    Ctl::BootId,
    Ctl::Uuid,
    Ctl::PipeMaxSize,
    Ctl::FileMax,
    Ctl::NrOpen,
    Ctl::LeaseBreakTime,
    Ctl::MaxMapCount,
    Ctl::Version,
    Ctl::Domainname,
    Ctl::PipeUserPagesSoft,
    Ctl::PipeUserPagesHard,
];
pub const DIRS: [SysDir; 9] =
    [SysDir::Sys, SysDir::Kernel, SysDir::Debug, SysDir::Kdb, SysDir::Yama, SysDir::Random, SysDir::Fs, SysDir::Inotify, SysDir::Vm];

/// fs.file-max: Linux's default on a machine of this size is in the millions; descriptors
/// are bounded per process (RLIMIT_NOFILE) and nothing counts them system-wide.
const FILE_MAX: u64 = 9_223_372_036_854_775_807;

impl SysDir {
    pub fn entries(self) -> &'static [(&'static str, Entry)] {
        match self {
            SysDir::Sys => &[
                ("kernel", Entry::Dir(SysDir::Kernel)),
                ("debug", Entry::Dir(SysDir::Debug)),
                ("fs", Entry::Dir(SysDir::Fs)),
                ("vm", Entry::Dir(SysDir::Vm)),
            ],
            SysDir::Vm => &[("max_map_count", Entry::Ctl(Ctl::MaxMapCount))],
            SysDir::Kernel => &[
                ("hostname", Entry::Ctl(Ctl::Hostname)),
                ("domainname", Entry::Ctl(Ctl::Domainname)),
                ("ostype", Entry::Ctl(Ctl::Ostype)),
                ("osrelease", Entry::Ctl(Ctl::Osrelease)),
                ("version", Entry::Ctl(Ctl::Version)),
                ("pid_max", Entry::Ctl(Ctl::PidMax)),
                ("tainted", Entry::Ctl(Ctl::Tainted)),
                ("core_pattern", Entry::Ctl(Ctl::CorePattern)),
                ("randomize_va_space", Entry::Ctl(Ctl::RandomizeVaSpace)),
                ("yama", Entry::Dir(SysDir::Yama)),
                ("random", Entry::Dir(SysDir::Random)),
                ("shmmax", Entry::Ctl(Ctl::Shmmax)),
                ("shmall", Entry::Ctl(Ctl::Shmall)),
                ("shmmni", Entry::Ctl(Ctl::Shmmni)),
                ("sem", Entry::Ctl(Ctl::Sem)),
                ("msgmax", Entry::Ctl(Ctl::Msgmax)),
                ("msgmnb", Entry::Ctl(Ctl::Msgmnb)),
                ("msgmni", Entry::Ctl(Ctl::Msgmni)),
            ],
            SysDir::Random => &[("boot_id", Entry::Ctl(Ctl::BootId)), ("uuid", Entry::Ctl(Ctl::Uuid))],
            SysDir::Fs => &[
                ("pipe-max-size", Entry::Ctl(Ctl::PipeMaxSize)),
                ("pipe-user-pages-hard", Entry::Ctl(Ctl::PipeUserPagesHard)),
                ("pipe-user-pages-soft", Entry::Ctl(Ctl::PipeUserPagesSoft)),
                ("file-max", Entry::Ctl(Ctl::FileMax)),
                ("nr_open", Entry::Ctl(Ctl::NrOpen)),
                ("lease-break-time", Entry::Ctl(Ctl::LeaseBreakTime)),
                ("inotify", Entry::Dir(SysDir::Inotify)),
            ],
            SysDir::Inotify => &[
                ("max_queued_events", Entry::Ctl(Ctl::InotifyMaxQueued)),
                ("max_user_instances", Entry::Ctl(Ctl::InotifyMaxInstances)),
                ("max_user_watches", Entry::Ctl(Ctl::InotifyMaxWatches)),
            ],
            SysDir::Yama => &[("ptrace_scope", Entry::Ctl(Ctl::PtraceScope))],
            SysDir::Debug => &[("kdb", Entry::Dir(SysDir::Kdb))],
            SysDir::Kdb => &[
                ("enter", Entry::Ctl(Ctl::KdbEnter)),
                ("panic", Entry::Ctl(Ctl::KdbPanic)),
                ("trap", Entry::Ctl(Ctl::KdbTrap)),
            ],
        }
    }

    pub fn lookup(self, name: &str) -> Option<Entry> {
        self.entries().iter().find(|(n, _)| *n == name).map(|(_, e)| *e)
    }

    pub fn index(self) -> u64 {
        DIRS.iter().position(|d| *d == self).unwrap_or(0) as u64
    }
}

impl Ctl {
    pub fn index(self) -> u64 {
        CTLS.iter().position(|c| *c == self).unwrap_or(0) as u64
    }

    /// Permission bits.
    pub fn mode(self) -> u32 {
        match self {
            Ctl::Hostname
            | Ctl::Domainname
            | Ctl::PipeMaxSize
            | Ctl::PipeUserPagesSoft
            | Ctl::PipeUserPagesHard
            | Ctl::CorePattern
            | Ctl::RandomizeVaSpace
            | Ctl::PtraceScope
            | Ctl::LeaseBreakTime
            | Ctl::MaxMapCount => 0o644,
            Ctl::Ostype | Ctl::Osrelease | Ctl::Version | Ctl::PidMax | Ctl::Tainted | Ctl::BootId | Ctl::Uuid | Ctl::FileMax | Ctl::NrOpen => 0o444,
            Ctl::Shmmax
            | Ctl::Shmall
            | Ctl::Shmmni
            | Ctl::Sem
            | Ctl::Msgmax
            | Ctl::Msgmnb
            | Ctl::Msgmni
            | Ctl::InotifyMaxQueued
            | Ctl::InotifyMaxInstances
            | Ctl::InotifyMaxWatches => 0o444,
            Ctl::KdbEnter | Ctl::KdbPanic | Ctl::KdbTrap => 0o200,
        }
    }

    /// The current value (EACCES for the write-only kdb files, as their mode says; root
    /// reading one gets EIO, which Linux returns for a write-only sysctl).
    pub fn read(self) -> Result<Vec<u8>, Errno> {
        match self {
            Ctl::Hostname => {
                let mut h = utsname::hostname();
                h.push(b'\n');
                Ok(h)
            }
            Ctl::Domainname => {
                let mut d = utsname::domainname();
                d.push(b'\n');
                Ok(d)
            }
            Ctl::Ostype => Ok(format!("{}\n", utsname::SYSNAME).into_bytes()),
            Ctl::Osrelease => Ok(format!("{}\n", utsname::RELEASE).into_bytes()),
            Ctl::Version => Ok(format!("{}\n", utsname::version()).into_bytes()),
            Ctl::PidMax => Ok(format!("{}\n", crate::kern::uproc::PID_MAX).into_bytes()),
            Ctl::Tainted => Ok(b"0\n".to_vec()),
            Ctl::BootId => {
                static BOOT_ID: std::sync::OnceLock<[u8; 16]> = std::sync::OnceLock::new();
                Ok(uuid_text(BOOT_ID.get_or_init(random_uuid)))
            }
            Ctl::Uuid => Ok(uuid_text(&random_uuid())),
            Ctl::PipeMaxSize => Ok(format!("{}\n", crate::fs::pipe::PIPE_MAX_SIZE.load(std::sync::atomic::Ordering::Relaxed)).into_bytes()),
            Ctl::PipeUserPagesSoft => Ok(format!("{}\n", crate::fs::pipe::PIPE_USER_PAGES_SOFT.load(std::sync::atomic::Ordering::Relaxed)).into_bytes()),
            Ctl::PipeUserPagesHard => Ok(format!("{}\n", crate::fs::pipe::PIPE_USER_PAGES_HARD.load(std::sync::atomic::Ordering::Relaxed)).into_bytes()),
            Ctl::FileMax => Ok(format!("{FILE_MAX}\n").into_bytes()),
            Ctl::NrOpen => Ok(format!("{}\n", crate::abi::proc::NR_OPEN).into_bytes()),
            Ctl::MaxMapCount => {
                Ok(format!("{}\n", crate::vm::space::MAX_MAP_COUNT.load(std::sync::atomic::Ordering::Relaxed)).into_bytes())
            }
            Ctl::LeaseBreakTime => {
                Ok(format!("{}\n", crate::fs::lease::LEASE_BREAK_TIME_S.load(std::sync::atomic::Ordering::Relaxed)).into_bytes())
            }
            Ctl::Shmmax => Ok(format!("{}\n", crate::kern::sysv::shm::SHMMAX).into_bytes()),
            Ctl::Shmall => Ok(format!("{}\n", crate::kern::sysv::shm::SHMALL).into_bytes()),
            Ctl::Shmmni => Ok(format!("{}\n", crate::kern::sysv::shm::SHMMNI).into_bytes()),
            Ctl::Sem => {
                use crate::kern::sysv::sem::{SEMMNI, SEMMNS, SEMMSL, SEMOPM};
                Ok(format!("{SEMMSL}\t{SEMMNS}\t{SEMOPM}\t{SEMMNI}\n").into_bytes())
            }
            Ctl::Msgmax => Ok(format!("{}\n", crate::kern::sysv::msg::MSGMAX).into_bytes()),
            Ctl::Msgmnb => Ok(format!("{}\n", crate::kern::sysv::msg::MSGMNB).into_bytes()),
            Ctl::Msgmni => Ok(format!("{}\n", crate::kern::sysv::msg::MSGMNI).into_bytes()),
            Ctl::InotifyMaxQueued => Ok(format!("{}\n", crate::fs::inotify::MAX_QUEUED).into_bytes()),
            Ctl::InotifyMaxInstances => Ok(format!("{}\n", crate::fs::inotify::MAX_INSTANCES).into_bytes()),
            Ctl::InotifyMaxWatches => Ok(format!("{}\n", crate::fs::inotify::MAX_WATCHES).into_bytes()),
            Ctl::CorePattern => {
                let mut p = crate::kern::coredump::core_pattern();
                p.push(b'\n');
                Ok(p)
            }
            Ctl::RandomizeVaSpace => Ok(format!("{}\n", crate::kern::exec::aslr::randomize_va_space()).into_bytes()),
            Ctl::PtraceScope => Ok(format!("{}\n", crate::kern::ptrace::ptrace_scope()).into_bytes()),
            Ctl::KdbEnter | Ctl::KdbPanic | Ctl::KdbTrap => {
                Err(if caller_is_root() { Errno::EIO } else { Errno::EACCES })
            }
        }
    }

    /// Whether the caller may write (checked at open with O_TRUNC and at write).
    pub fn check_write(self) -> Result<(), Errno> {
        if self.mode() & 0o200 == 0 || !caller_is_root() {
            return Err(Errno::EACCES);
        }
        Ok(())
    }

    /// A write of `data` at offset `off`; returns the bytes taken (all of them).
    pub fn write(self, off: u64, data: &[u8]) -> Result<usize, Errno> {
        self.check_write()?;
        if off != 0 {
            // Linux's sysctl_writes_strict: a write past the start is ignored.
            return Ok(data.len());
        }
        let first = data.split(|&b| b == b'\n' || b == 0).next().unwrap_or(&[]);
        match self {
            Ctl::Hostname => {
                utsname::set_hostname(&first[..first.len().min(utsname::HOST_NAME_MAX)])?;
            }
            Ctl::Domainname => {
                utsname::set_domainname(&first[..first.len().min(utsname::HOST_NAME_MAX)])?;
            }
            Ctl::PipeUserPagesSoft | Ctl::PipeUserPagesHard => {
                // proc_doulongvec_minmax: an unsigned long.
                let text = std::str::from_utf8(first).map_err(|_| Errno::EINVAL)?.trim();
                let v: u64 = text.parse().map_err(|_| Errno::EINVAL)?;
                let limit = if self == Ctl::PipeUserPagesSoft { &crate::fs::pipe::PIPE_USER_PAGES_SOFT } else { &crate::fs::pipe::PIPE_USER_PAGES_HARD };
                limit.store(v, std::sync::atomic::Ordering::Relaxed);
            }
            Ctl::PipeMaxSize => {
                // Linux rounds it like F_SETPIPE_SZ: a power-of-two number of pages.
                let text = std::str::from_utf8(first).map_err(|_| Errno::EINVAL)?.trim();
                let v: u64 = text.parse().map_err(|_| Errno::EINVAL)?;
                if v > 1 << 31 {
                    return Err(Errno::EINVAL);
                }
                let pages = usize::try_from(v.div_ceil(4096).max(1)).map_err(|_| Errno::EINVAL)?;
                crate::fs::pipe::PIPE_MAX_SIZE.store(pages.next_power_of_two() * 4096, std::sync::atomic::Ordering::Relaxed);
            }
            Ctl::MaxMapCount => {
                // proc_dointvec_minmax with a minimum of 0.
                let text = std::str::from_utf8(first).map_err(|_| Errno::EINVAL)?.trim();
                let v: i32 = text.parse().map_err(|_| Errno::EINVAL)?;
                let v = u64::try_from(v).map_err(|_| Errno::EINVAL)?;
                crate::vm::space::MAX_MAP_COUNT.store(v, std::sync::atomic::Ordering::Relaxed);
            }
            Ctl::LeaseBreakTime => {
                // proc_dointvec: an int; a negative one never expires, like 0.
                let text = std::str::from_utf8(first).map_err(|_| Errno::EINVAL)?.trim();
                let v: i32 = text.parse().map_err(|_| Errno::EINVAL)?;
                let secs = u64::try_from(v).unwrap_or(0);
                crate::fs::lease::LEASE_BREAK_TIME_S.store(secs, std::sync::atomic::Ordering::Relaxed);
            }
            Ctl::CorePattern => {
                if first.first() == Some(&b'|') {
                    crate::kprintf!("core_pattern: pipes to a program are not supported\n");
                }
                crate::kern::coredump::set_core_pattern(first)?;
            }
            Ctl::Ostype
            | Ctl::Osrelease
            | Ctl::Version
            | Ctl::PidMax
            | Ctl::Tainted
            | Ctl::BootId
            | Ctl::Uuid
            | Ctl::FileMax
            | Ctl::NrOpen
            | Ctl::Shmmax
            | Ctl::Shmall
            | Ctl::Shmmni
            | Ctl::Sem
            | Ctl::Msgmax
            | Ctl::Msgmnb
            | Ctl::Msgmni
            | Ctl::InotifyMaxQueued
            | Ctl::InotifyMaxInstances
            | Ctl::InotifyMaxWatches => {
                return Err(Errno::EACCES);
            }
            Ctl::RandomizeVaSpace => {
                let text = std::str::from_utf8(first).map_err(|_| Errno::EINVAL)?.trim();
                crate::kern::exec::aslr::set_randomize_va_space(text.parse().map_err(|_| Errno::EINVAL)?)?;
            }
            Ctl::PtraceScope => {
                let text = std::str::from_utf8(first).map_err(|_| Errno::EINVAL)?.trim();
                crate::kern::ptrace::set_ptrace_scope(text.parse().map_err(|_| Errno::EINVAL)?)?;
            }
            Ctl::KdbEnter | Ctl::KdbPanic | Ctl::KdbTrap => {
                let text = std::str::from_utf8(first).map_err(|_| Errno::EINVAL)?.trim();
                let v: i64 = text.parse().map_err(|_| Errno::EINVAL)?;
                if v != 0 {
                    match self {
                        Ctl::KdbEnter => crate::kern::kdb::kdb_sysctl_enter(),
                        Ctl::KdbPanic => crate::kern::kdb::kdb_sysctl_panic(),
                        _ => crate::kern::kdb::kdb_sysctl_trap(),
                    }
                }
            }
        }
        Ok(data.len())
    }
}

/// 16 random bytes as a version 4 (random) UUID.
fn random_uuid() -> [u8; 16] {
    let mut b = [0u8; 16];
    platform::io::random_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    b
}

/// A UUID as Linux prints it: 8-4-4-4-12 lowercase hex digits and a newline.
fn uuid_text(b: &[u8; 16]) -> Vec<u8> {
    let mut t = String::with_capacity(37);
    for (i, x) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            t.push('-');
        }
        t.push_str(&format!("{x:02x}"));
    }
    t.push('\n');
    t.into_bytes()
}

fn caller_is_root() -> bool {
    crate::kern::sched::curthread()
        .and_then(|t| t.proc_())
        .is_some_and(|p| p.as_user().is_some_and(|u| u.cred.lock().euid == 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_linuxs() {
        assert_eq!(Ctl::Hostname.mode(), 0o644);
        assert_eq!(Ctl::Ostype.mode(), 0o444);
        for c in [Ctl::KdbEnter, Ctl::KdbPanic, Ctl::KdbTrap] {
            assert_eq!(c.mode(), 0o200);
        }
    }

    #[test]
    fn no_guest_caller_is_not_root() {
        // Off CPU there is no calling process: nothing is written, nothing fires.
        for c in CTLS {
            assert_eq!(c.write(0, b"1\n"), Err(Errno::EACCES), "{c:?}");
            assert_eq!(c.check_write(), Err(Errno::EACCES), "{c:?}");
        }
        assert_eq!(Ctl::KdbPanic.read(), Err(Errno::EACCES));
    }

    #[test]
    fn the_tree_finds_its_entries() {
        assert_eq!(SysDir::Sys.lookup("kernel"), Some(Entry::Dir(SysDir::Kernel)));
        assert_eq!(SysDir::Kdb.lookup("trap"), Some(Entry::Ctl(Ctl::KdbTrap)));
        assert_eq!(SysDir::Kernel.lookup("nope"), None);
        let all: usize = DIRS.iter().map(|d| d.entries().len()).sum();
        assert_eq!(all, CTLS.len() + DIRS.len() - 1, "every entry but the root is named once");
    }
}
