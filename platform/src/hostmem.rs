//! Host memory as the host counts it: a process's mappings with their resident sizes
//! (`/proc/PID/smaps`) and its resident-set figures (`/proc/PID/status`), for ddb's
//! `show memory`, which says where the kernel process's host memory goes.

use std::io;

/// Requests of this size or more get their own host mapping, given back when freed.
const MMAP_THRESHOLD_BYTES: i32 = 128 << 10;
/// Free memory at the top of the heap beyond this is given back to the host.
const TRIM_THRESHOLD_BYTES: i32 = 128 << 10;

/// Fix the C library's allocator thresholds at their defaults. glibc raises its mmap
/// threshold to the size of any large block freed (up to 32 MiB): after the debugger's
/// symbol loading frees the 20 MB kernel image it read, every later block up to that size
/// came from the heap, and the heap held ~25 MB it never gave back. Fixed thresholds turn
/// that adjustment off (mallopt(3)). Call once, first thing at start-up.
pub fn tune_malloc() {
    // SAFETY: mallopt only sets allocator parameters, under the allocator's own lock; the
    // arguments are valid parameter numbers with valid values. It returns 1 on success, and
    // a failure leaves the defaults (more memory, nothing unsafe).
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES);
    }
}

/// One mapping of `/proc/PID/smaps`: its range, what backs it (a path, `[heap]`, `[stack]`,
/// or empty for anonymous memory) and its resident kilobytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostMapping {
    pub start: u64,
    pub end: u64,
    pub name: String,
    pub rss_kb: u64,
    /// Resident pages of it that are anonymous (private copies, not the file's).
    pub anon_kb: u64,
}

/// The mappings of a process (None: this one).
pub fn smaps(pid: Option<i32>) -> io::Result<Vec<HostMapping>> {
    let path = pid.map_or_else(|| "/proc/self/smaps".to_string(), |p| format!("/proc/{p}/smaps"));
    Ok(parse_smaps(&std::fs::read_to_string(path)?))
}

/// A process's `/proc/PID/status` figure `key` (`VmRSS`, `RssAnon`, `RssFile`, `RssShmem`) in
/// kilobytes; None when the process or the line is not there.
pub fn status_kb(pid: i32, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status_field_kb(&text, key)
}

/// This process's status figure `key` in kilobytes.
pub fn self_status_kb(key: &str) -> Option<u64> {
    status_field_kb(&std::fs::read_to_string("/proc/self/status").ok()?, key)
}

fn status_field_kb(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == key).then(|| v.split_whitespace().next()?.parse().ok())?
    })
}

/// Parse smaps text: a header line per mapping (`start-end perms offset dev inode [name]`)
/// followed by `Field: N kB` lines.
pub fn parse_smaps(text: &str) -> Vec<HostMapping> {
    let mut out: Vec<HostMapping> = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let Some(first) = words.next() else { continue };
        if let Some((lo, hi)) = first.split_once('-')
            && let (Ok(start), Ok(end)) = (u64::from_str_radix(lo, 16), u64::from_str_radix(hi, 16))
        {
            // perms, offset, dev, inode, then the name (which may contain spaces).
            let name = line.split_whitespace().skip(5).collect::<Vec<_>>().join(" ");
            out.push(HostMapping { start, end, name, rss_kb: 0, anon_kb: 0 });
            continue;
        }
        let Some(m) = out.last_mut() else { continue };
        let mut kb = || words.next().and_then(|w| w.parse::<u64>().ok()).unwrap_or(0);
        match first {
            "Rss:" => m.rss_kb = kb(),
            "Anonymous:" => m.anon_kb = kb(),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
55d0c0000000-55d0c0100000 r-xp 00000000 08:01 1234    /work/run/kernel
Size:               1024 kB
Rss:                 800 kB
Anonymous:             0 kB
7f0000000000-7f0000021000 rw-p 00000000 00:00 0 
Size:                132 kB
Rss:                  12 kB
Anonymous:            12 kB
7f1000000000-7f1004000000 rw-s 00000000 00:01 99      /memfd:vk physmem (deleted)
Rss:                4096 kB
Anonymous:             0 kB
";

    #[test]
    fn smaps_lines_become_mappings() {
        let m = parse_smaps(SAMPLE);
        assert_eq!(m.len(), 3);
        assert_eq!((m[0].start, m[0].end, m[0].rss_kb, m[0].anon_kb), (0x55d0_c000_0000, 0x55d0_c010_0000, 800, 0));
        assert_eq!(m[0].name, "/work/run/kernel");
        assert_eq!((m[1].name.as_str(), m[1].rss_kb, m[1].anon_kb), ("", 12, 12));
        assert_eq!(m[2].name, "/memfd:vk physmem (deleted)");
        assert_eq!(m[2].rss_kb, 4096);
    }

    #[test]
    fn status_fields_in_kilobytes() {
        let s = "Name:\tkernel\nVmRSS:\t   30000 kB\nRssAnon:\t  100 kB\n";
        assert_eq!(status_field_kb(s, "VmRSS"), Some(30000));
        assert_eq!(status_field_kb(s, "RssAnon"), Some(100));
        assert_eq!(status_field_kb(s, "RssFile"), None);
        assert!(self_status_kb("VmRSS").is_some_and(|kb| kb > 0));
    }
}
