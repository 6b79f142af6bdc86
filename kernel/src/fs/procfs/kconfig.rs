//! /proc/config.gz (Linux's CONFIG_IKCONFIG_PROC): the kernel's configuration, gzip'd, as
//! programs read it to learn what the kernel provides (the LTP's tst_kconfig does). vk has no
//! Kconfig, so this is the list of Linux's options whose facilities vk implements (`=y`) and
//! of those programs ask about that it lacks (`is not set`): keep it true when either changes.

use std::io::Write;
use std::sync::OnceLock;

/// Options vk provides.
const PROVIDED: &[&str] = &[
    "CONFIG_64BIT", "CONFIG_X86_64", "CONFIG_MMU", "CONFIG_SMP", "CONFIG_MULTIUSER",
    "CONFIG_SYSVIPC", "CONFIG_SYSVIPC_SYSCTL", "CONFIG_FUTEX", "CONFIG_EPOLL", "CONFIG_SIGNALFD",
    "CONFIG_TIMERFD", "CONFIG_EVENTFD", "CONFIG_SHMEM", "CONFIG_MEMFD_CREATE", "CONFIG_INOTIFY_USER",
    "CONFIG_FILE_LOCKING", "CONFIG_PROC_FS", "CONFIG_PROC_SYSCTL", "CONFIG_SYSFS", "CONFIG_TMPFS",
    "CONFIG_TMPFS_XATTR", "CONFIG_UNIX98_PTYS", "CONFIG_EXT2_FS", "CONFIG_BINFMT_ELF",
    "CONFIG_BINFMT_SCRIPT", "CONFIG_COREDUMP", "CONFIG_ELF_CORE", "CONFIG_NET", "CONFIG_UNIX",
    "CONFIG_INET", "CONFIG_IPV6", "CONFIG_RSEQ", "CONFIG_SECURITY_YAMA", "CONFIG_IKCONFIG",
    "CONFIG_IKCONFIG_PROC", "CONFIG_ADVISE_SYSCALLS", "CONFIG_CROSS_MEMORY_ATTACH", "CONFIG_BLK_DEV_LOOP",
    "CONFIG_AIO", "CONFIG_POSIX_TIMERS", "CONFIG_POSIX_MQUEUE",
];

/// Options programs look for that vk does not provide.
const NOT_SET: &[&str] = &[
    "CONFIG_IO_URING", "CONFIG_FANOTIFY", "CONFIG_DNOTIFY",
    "CONFIG_USER_NS", "CONFIG_PID_NS", "CONFIG_NET_NS", "CONFIG_TIME_NS", "CONFIG_UTS_NS",
    "CONFIG_IPC_NS", "CONFIG_CHECKPOINT_RESTORE", "CONFIG_USERFAULTFD", "CONFIG_SECCOMP",
    "CONFIG_SECCOMP_FILTER", "CONFIG_BSD_PROCESS_ACCT", "CONFIG_SWAP",
    "CONFIG_BLK_DEV_RAM", "CONFIG_NUMA", "CONFIG_MODULES", "CONFIG_QUOTA", "CONFIG_CGROUPS",
    "CONFIG_HUGETLBFS", "CONFIG_TRANSPARENT_HUGEPAGE", "CONFIG_MEMORY_FAILURE", "CONFIG_KASAN",
    "CONFIG_KCSAN", "CONFIG_PROVE_LOCKING", "CONFIG_DEBUG_KMEMLEAK", "CONFIG_FS_VERITY",
    "CONFIG_BPF_SYSCALL", "CONFIG_PERF_EVENTS", "CONFIG_MANDATORY_FILE_LOCKING",
];

/// The configuration as a .config file's text.
pub fn text() -> String {
    let mut s = String::from("#\n# Automatically generated file; DO NOT EDIT.\n# vk: the Linux options whose facilities it provides\n#\n");
    for o in PROVIDED {
        s.push_str(&format!("{o}=y\n"));
    }
    for o in NOT_SET {
        s.push_str(&format!("# {o} is not set\n"));
    }
    s
}

/// The text gzip'd, made once.
pub fn config_gz() -> &'static [u8] {
    static GZ: OnceLock<Vec<u8>> = OnceLock::new();
    GZ.get_or_init(|| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        // Writing to a Vec cannot fail.
        let _ = e.write_all(text().as_bytes());
        e.finish().unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn unzips_to_the_text() {
        let mut out = String::new();
        flate2::read::GzDecoder::new(config_gz()).read_to_string(&mut out).unwrap();
        assert_eq!(out, text());
        assert!(out.contains("CONFIG_EVENTFD=y\n") && out.contains("# CONFIG_IO_URING is not set\n"));
        assert!(PROVIDED.iter().all(|p| !NOT_SET.contains(p)));
    }
}
