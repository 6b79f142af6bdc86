//! The system-wide files of procfs (proc(5)): meminfo, uptime, loadavg, stat, mounts,
//! filesystems, cpuinfo, version, cmdline, partitions (fs/blockdev.rs writes it).

use std::fmt::Write;
use std::sync::OnceLock;
use std::sync::atomic::Ordering;

use crate::fs::mount;
use crate::kern::pcpu::PCPU;
use crate::fs::procfs::pid::ticks;
use crate::kern::{cpustat, loadavg, utsname};
use crate::vm::meminfo::MemInfo;

/// The system-wide files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SysFile {
    Meminfo,
    Uptime,
    Loadavg,
    Stat,
    Mounts,
    Filesystems,
    Cpuinfo,
    Version,
    Cmdline,
    Partitions,
    Vmstat,
    ConfigGz,
}

pub const SYS_FILES: [(&str, SysFile); 12] = [
    ("meminfo", SysFile::Meminfo),
    ("uptime", SysFile::Uptime),
    ("loadavg", SysFile::Loadavg),
    ("stat", SysFile::Stat),
    ("mounts", SysFile::Mounts),
    ("filesystems", SysFile::Filesystems),
    ("cpuinfo", SysFile::Cpuinfo),
    ("version", SysFile::Version),
    ("cmdline", SysFile::Cmdline),
    ("partitions", SysFile::Partitions),
    ("vmstat", SysFile::Vmstat),
    ("config.gz", SysFile::ConfigGz),
];

impl SysFile {
    pub fn index(self) -> u64 {
        SYS_FILES.iter().position(|(_, f)| *f == self).unwrap_or(0) as u64
    }
}

/// The file system types the kernel has, in registration order, and whether each is
/// "nodev" (needs no block device): /proc/filesystems and sysfs(2).
pub const FILESYSTEMS: [(&str, bool); 8] =
    [("proc", true), ("tmpfs", true), ("devfs", true), ("devpts", true), ("sysfs", true), ("pipefs", true), ("hostfs", false), ("ext2", false)];

/// The text of a system-wide file.
pub fn text(f: SysFile) -> Vec<u8> {
    match f {
        SysFile::Meminfo => meminfo().into_bytes(),
        SysFile::Uptime => uptime().into_bytes(),
        SysFile::Loadavg => loadavg().into_bytes(),
        SysFile::Stat => stat().into_bytes(),
        SysFile::Mounts => mounts(),
        SysFile::Filesystems => FILESYSTEMS.iter().map(|(name, nodev)| format!("{}\t{name}\n", if *nodev { "nodev" } else { "" })).collect::<String>().into_bytes(),
        SysFile::Cpuinfo => cpuinfo().into_bytes(),
        SysFile::Version => {
            format!("{} version {} (vk@vk) (rustc) {}\n", utsname::SYSNAME, utsname::RELEASE, utsname::version()).into_bytes()
        }
        SysFile::Cmdline => cmdline().into_bytes(),
        SysFile::Partitions => crate::fs::blockdev::partitions().into_bytes(),
        SysFile::Vmstat => super::vmfiles::vmstat().into_bytes(),
        SysFile::ConfigGz => super::kconfig::config_gz().to_vec(),
    }
}

/// The kernel's boot parameters: its environment (`-e name=value`), space-separated, as
/// Linux's command line (init scripts look for words such as `single` or `forcefsck`).
fn cmdline() -> String {
    let words: Vec<String> = crate::kern::kenv::all().iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{}\n", words.join(" "))
}

fn meminfo() -> String {
    let m = MemInfo::now();
    let kb = MemInfo::kb;
    let mut s = String::new();
    for (k, v) in [
        ("MemTotal", kb(m.total)),
        ("MemFree", kb(m.free)),
        // What is free, and the page cache's pages (those only the cache holds are freed
        // when memory runs out; the mapped ones are counted too, as Linux estimates).
        ("MemAvailable", kb((m.free + crate::vm::pagecache::cached_pages()).min(m.total))),
        ("Buffers", 0),
        ("Cached", kb(m.file + m.kernel)),
        ("SwapCached", 0),
        ("Active", kb(m.anon + m.kernel)),
        ("Inactive", kb(m.file)),
        ("SwapTotal", 0),
        ("SwapFree", 0),
        ("Dirty", 0),
        ("Writeback", 0),
        ("AnonPages", kb(m.anon)),
        ("Mapped", kb(m.file)),
        ("Shmem", kb(m.kernel)),
        ("Slab", 0),
        ("SReclaimable", 0),
        ("SUnreclaim", 0),
        ("KernelStack", 0),
        ("PageTables", 0),
        ("CommitLimit", kb(m.total)),
        ("Committed_AS", kb(m.anon + m.kernel)),
    ] {
        let _ = writeln!(s, "{:<16}{v:>8} kB", format!("{k}:"));
    }
    s
}

fn secs(ns: u64) -> String {
    format!("{}.{:02}", ns / 1_000_000_000, ns % 1_000_000_000 / 10_000_000)
}

fn ncpus() -> u32 {
    platform::cpu::ncpus().max(1)
}

fn uptime() -> String {
    let idle: u64 = (0..ncpus()).map(|c| cpustat::cpu_times(c).2).sum();
    format!("{} {}\n", secs(platform::time::uptime_ns()), secs(idle))
}

fn loadavg() -> String {
    let [a, b, c] = loadavg::loads();
    let (running, _) = loadavg::nr_active();
    let threads: usize = crate::kern::proc::all().iter().filter(|p| p.is_user()).map(|p| p.nthreads()).sum();
    format!(
        "{} {} {} {}/{} {}\n",
        loadavg::format(a),
        loadavg::format(b),
        loadavg::format(c),
        running,
        threads,
        crate::kern::uproc::last_pid()
    )
}

fn stat() -> String {
    let mut s = String::new();
    let per: Vec<(u64, u64, u64)> = (0..ncpus()).map(cpustat::cpu_times).collect();
    let line = |name: &str, (u, sy, id): (u64, u64, u64)| {
        format!("{name} {} 0 {} {} 0 0 0 0 0 0\n", ticks(u), ticks(sy), ticks(id))
    };
    let sum = per.iter().fold((0, 0, 0), |a, t| (a.0 + t.0, a.1 + t.1, a.2 + t.2));
    s.push_str(&line("cpu ", sum));
    for (c, t) in per.iter().enumerate() {
        s.push_str(&line(&format!("cpu{c}"), *t));
    }
    let n = ncpus() as usize;
    let intr: u64 = PCPU[..n].iter().map(|r| r.intrs.load(Ordering::Relaxed)).sum();
    let ctxt: u64 = PCPU[..n].iter().map(|r| r.switches.load(Ordering::Relaxed)).sum();
    let (running, blocked) = loadavg::nr_active();
    let _ = writeln!(s, "intr {intr}");
    let _ = writeln!(s, "ctxt {ctxt}");
    let _ = writeln!(s, "btime {}", crate::kern::clock::boottime_ns() / 1_000_000_000);
    let _ = writeln!(s, "processes {}", crate::kern::uproc::nforks());
    let _ = writeln!(s, "procs_running {running}");
    let _ = writeln!(s, "procs_blocked {blocked}");
    s
}

/// /proc/mounts (and /proc/PID/mounts): `source target type options 0 0` per mount, in
/// mount order (fstab(5)'s format).
pub fn mounts() -> Vec<u8> {
    let mut out = Vec::new();
    for m in mount::mounts() {
        let ty = m.fs.type_name();
        out.extend(escape(if m.source.is_empty() { ty.as_bytes() } else { &m.source }));
        out.push(b' ');
        out.extend(escape(&m.target()));
        out.extend(format!(" {ty} {} 0 0\n", m.flags().options()).into_bytes());
    }
    out
}

/// /proc/PID/mountinfo (proc(5)): `id parent major:minor root target options - type source
/// super-options` per mount.
pub fn mountinfo() -> Vec<u8> {
    let mut out = Vec::new();
    for m in mount::mounts() {
        let dev = m.root.attr().map_or(0, |a| a.dev);
        let (major, minor) = (crate::fs::vfs::dev_major(dev), crate::fs::vfs::dev_minor(dev));
        out.extend(format!("{} {} {major}:{minor} / ", m.id, m.parent_id()).into_bytes());
        out.extend(escape(&m.target()));
        let ty = m.fs.type_name();
        out.extend(format!(" {} - {ty} ", m.flags().options()).into_bytes());
        out.extend(escape(if m.source.is_empty() { ty.as_bytes() } else { &m.source }));
        out.extend_from_slice(if m.readonly() { b" ro\n" } else { b" rw\n" });
    }
    out
}

/// getmntent(3)'s octal escapes for blanks and backslashes in a mount table field.
fn escape(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    for &b in s {
        match b {
            b' ' => out.extend_from_slice(b"\\040"),
            b'\t' => out.extend_from_slice(b"\\011"),
            b'\n' => out.extend_from_slice(b"\\012"),
            b'\\' => out.extend_from_slice(b"\\134"),
            b => out.push(b),
        }
    }
    out
}

/// The host's first processor block of /proc/cpuinfo (read once), as (key, value) pairs.
fn host_cpu() -> &'static [(String, String)] {
    static HOST: OnceLock<Vec<(String, String)>> = OnceLock::new();
    HOST.get_or_init(|| {
        let text = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let block = text.split("\n\n").next().unwrap_or("");
        let mut v: Vec<(String, String)> = block
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.to_string(), v.trim().to_string()))
            .collect();
        if v.is_empty() {
            v = vec![("vendor_id\t".into(), "vk".into()), ("model name\t".into(), "vk virtual CPU".into())];
        }
        v
    })
}

/// One block per virtual CPU, processor 0..n-1, with the host's CPU description.
fn cpuinfo() -> String {
    let n = ncpus();
    let mut s = String::new();
    for c in 0..n {
        let _ = writeln!(s, "processor\t: {c}");
        for (k, v) in host_cpu() {
            let v = match k.trim_end() {
                "processor" => continue,
                "physical id" => "0".to_string(),
                "siblings" | "cpu cores" => n.to_string(),
                "core id" | "apicid" | "initial apicid" => c.to_string(),
                _ => v.clone(),
            };
            // The host's key keeps its tab padding.
            if v.is_empty() {
                let _ = writeln!(s, "{k}:");
            } else {
                let _ = writeln!(s, "{k}: {v}");
            }
        }
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_fields_are_escaped() {
        assert_eq!(escape(b"/a b\\c"), b"/a\\040b\\134c");
    }

    #[test]
    fn seconds_have_two_decimals() {
        assert_eq!(secs(1_234_567_890), "1.23");
        assert_eq!(secs(5_000_000), "0.00");
    }
}
