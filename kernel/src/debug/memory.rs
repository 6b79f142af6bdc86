//! ddb `show memory`: where the kernel process's host memory goes. The host's own count
//! (`/proc/self/smaps`, through [`platform::hostmem`]) is split by what the kernel knows of
//! its address ranges — the guest's physical memory, the `vm_page` array, kernel thread
//! stacks, the kernel binary — and the heap is followed by what of it the kernel can name
//! (the file systems' block caches); then the stubs, by their own status figures. The sum
//! beyond the guest's own pages is vk's footprint.

use std::fmt::Write as _;

use platform::hostmem::{self, HostMapping};

use crate::kern::proc;

/// What a host mapping of the kernel process holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    Guest,
    VmPages,
    KernelStacks,
    Binary,
    Libraries,
    Heap,
    MainStack,
    Other,
}

impl Class {
    const ALL: [Class; 8] = [
        Class::Guest,
        Class::VmPages,
        Class::KernelStacks,
        Class::Binary,
        Class::Libraries,
        Class::Heap,
        Class::MainStack,
        Class::Other,
    ];

    fn label(self) -> &'static str {
        match self {
            Class::Guest => "guest physical memory (the guest's own pages)",
            Class::VmPages => "vm_page array",
            Class::KernelStacks => "kernel thread stacks",
            Class::Binary => "kernel binary",
            Class::Libraries => "shared libraries",
            Class::Heap => "heap and host thread stacks (anonymous)",
            Class::MainStack => "main thread stack",
            Class::Other => "other (memfds, vdso, ...)",
        }
    }
}

/// Address ranges the kernel knows, to classify host mappings by.
struct Known {
    guest: (u64, u64),
    vm_pages: (u64, u64),
    stacks: Vec<(u64, u64)>,
    exe: String,
}

fn overlaps(m: &HostMapping, (lo, hi): (u64, u64)) -> bool {
    m.start < hi && lo < m.end
}

fn classify(m: &HostMapping, k: &Known) -> Class {
    if overlaps(m, k.guest) {
        Class::Guest
    } else if overlaps(m, k.vm_pages) {
        Class::VmPages
    } else if k.stacks.iter().any(|&s| overlaps(m, s)) {
        Class::KernelStacks
    } else if !k.exe.is_empty() && m.name == k.exe {
        Class::Binary
    } else if m.name.starts_with('/') && !m.name.starts_with("/memfd:") {
        Class::Libraries
    } else if m.name.is_empty() || m.name == "[heap]" {
        Class::Heap
    } else if m.name == "[stack]" {
        Class::MainStack
    } else {
        Class::Other
    }
}

fn known() -> Known {
    let (guest, vm_pages) = match platform::physmem::get() {
        Some(pm) => {
            let (array, n) = pm.vm_page_array();
            let bytes = n.saturating_mul(platform::physmem::VM_PAGE_LAYOUT.0.into());
            ((pm.kva(0), pm.kva(0).saturating_add(pm.size())), (array, array.saturating_add(bytes)))
        }
        None => ((0, 0), (0, 0)),
    };
    let stacks = proc::all_nowait()
        .unwrap_or_default()
        .iter()
        .filter_map(|p| p.threads_nowait())
        .flatten()
        .filter_map(|t| t.stack_bounds())
        .collect();
    let exe = std::fs::read_link("/proc/self/exe").map(|p| p.display().to_string()).unwrap_or_default();
    Known { guest, vm_pages, stacks, exe }
}

/// The host processes of the guest's address spaces (stubs), without waiting on busy ones.
fn stub_pids() -> (Vec<i32>, usize) {
    let mut pids = Vec::new();
    let mut busy = 0;
    for p in proc::all_nowait().unwrap_or_default() {
        let Some(u) = p.as_user() else { continue };
        let pid = u.vm.try_lock().and_then(|vm| vm.peek(|g| g.stub.as_ref().map(|s| s.pid())));
        match pid {
            Some(Some(pid)) => pids.push(pid),
            Some(None) => {}
            None => busy += 1,
        }
    }
    pids.sort_unstable();
    pids.dedup();
    (pids, busy)
}

/// The `show memory` report.
pub fn show_memory(_args: &str) -> Result<String, String> {
    let maps = hostmem::smaps(None).map_err(|e| format!("/proc/self/smaps: {e}"))?;
    let k = known();
    let mut o = String::new();
    let rss = hostmem::self_status_kb("VmRSS").unwrap_or(0);
    let _ = writeln!(o, "kernel process (host pid {}): VmRSS {rss} kB", std::process::id());
    let mut beyond = 0;
    for c in Class::ALL {
        let (n, kb) = maps.iter().filter(|m| classify(m, &k) == c).fold((0, 0), |(n, kb), m| (n + 1, kb + m.rss_kb));
        if n == 0 {
            continue;
        }
        let _ = writeln!(o, "  {:<46} {kb:>8} kB resident in {n} mappings", c.label());
        if c != Class::Guest {
            beyond += kb;
        }
        if c == Class::KernelStacks {
            let _ = writeln!(o, "    ({} kernel threads)", k.stacks.len());
        }
        if c == Class::Heap {
            for m in crate::fs::mount::mounts_nowait().unwrap_or_default() {
                let fs = m.root.fs();
                if let Some(bytes) = fs.cache_bytes_nowait() {
                    let at = String::from_utf8_lossy(&m.target()).into_owned();
                    let _ = writeln!(o, "    of which {} block cache of {at}: {} kB", fs.type_name(), bytes / 1024);
                }
            }
        }
    }
    let _ = writeln!(o, "  {:<46} {beyond:>8} kB", "beyond the guest's pages");
    let (pids, busy) = stub_pids();
    let (mut anon, mut file, mut shmem) = (0, 0, 0);
    for &pid in &pids {
        anon += hostmem::status_kb(pid, "RssAnon").unwrap_or(0);
        file += hostmem::status_kb(pid, "RssFile").unwrap_or(0);
        shmem += hostmem::status_kb(pid, "RssShmem").unwrap_or(0);
    }
    let _ = writeln!(
        o,
        "stubs: {} host processes{}: RssAnon {anon} kB, RssFile {file} kB (shared between them), RssShmem {shmem} kB (guest pages they map)",
        pids.len(),
        if busy > 0 { format!(" ({busy} address spaces busy, not counted)") } else { String::new() }
    );
    let _ = writeln!(
        o,
        "total beyond the guest's pages: {} kB (kernel {beyond} kB, stubs {} kB)",
        beyond + anon + file,
        anon + file
    );
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(start: u64, end: u64, name: &str) -> HostMapping {
        HostMapping { start, end, name: name.to_string(), rss_kb: 4, anon_kb: 0 }
    }

    #[test]
    fn mappings_are_classified_by_known_ranges_then_names() {
        let k = Known {
            guest: (0x1000_0000, 0x2000_0000),
            vm_pages: (0x3000, 0x5000),
            stacks: vec![(0x9000, 0xb000)],
            exe: "/run/kernel".to_string(),
        };
        assert_eq!(classify(&m(0x1000_0000, 0x1100_0000, "/memfd:physmem"), &k), Class::Guest);
        assert_eq!(classify(&m(0x3000, 0x4000, ""), &k), Class::VmPages);
        assert_eq!(classify(&m(0x8000, 0xa000, ""), &k), Class::KernelStacks);
        assert_eq!(classify(&m(0x50_0000, 0x60_0000, "/run/kernel"), &k), Class::Binary);
        assert_eq!(classify(&m(0x70_0000, 0x80_0000, "/usr/lib/libc.so.6"), &k), Class::Libraries);
        assert_eq!(classify(&m(0x90_0000, 0xa0_0000, "[heap]"), &k), Class::Heap);
        assert_eq!(classify(&m(0xb0_0000, 0xc0_0000, ""), &k), Class::Heap);
        assert_eq!(classify(&m(0xd0_0000, 0xe0_0000, "[stack]"), &k), Class::MainStack);
        assert_eq!(classify(&m(0xe0_0000, 0xf0_0000, "/memfd:vk-stub (deleted)"), &k), Class::Other);
        assert_eq!(classify(&m(0xf0_0000, 0xf1_0000, "[vdso]"), &k), Class::Other);
    }
}
