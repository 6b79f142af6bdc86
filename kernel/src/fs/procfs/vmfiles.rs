//! `/proc/PID/pagemap`, `/proc/PID/smaps` (and `smaps_rollup`), `/proc/vmstat` and
//! `/proc/sysvipc/{shm,sem,msg}`: memory and System V IPC as Linux shows them
//! (Documentation/admin-guide/mm/pagemap.rst, proc(5), mm/vmstat.c, ipc/*.c's
//! `sysvipc_*_proc_show`).
//!
//! smaps counts each mapping's resident pages. vk keeps a page's references, not its mappings,
//! so "shared" means referenced more than once (a page cache's or a shared object's reference
//! included) and Pss divides by the references; anonymous pages count as dirty, file pages as
//! clean (vk does not track dirtiness); Swap is 0.
//!
//! pagemap is binary: one little-endian u64 per virtual page, read at offset
//! `address / 4096 * 8` — bit 63 present, bit 61 a file page or shared memory, bit 56 mapped
//! by this process alone, bits 0-54 the page frame number (guest physical page; 0 unless the
//! reader has CAP_SYS_ADMIN, as Linux hides it). Swap and soft-dirty bits are 0 (vk has no
//! swap and does not track soft-dirty).

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use platform::physmem::pgflags;

use crate::kern::errno::Errno;
use crate::kern::proc::UProc;
use crate::kern::sysv::{msg, sem, shm};
use crate::vm::meminfo::{MemInfo, VM_EVENTS};
use crate::vm::space::PAGE;

const PM_PRESENT: u64 = 1 << 63;
const PM_FILE: u64 = 1 << 61;
const PM_MMAP_EXCLUSIVE: u64 = 1 << 56;
const PM_PFRAME_MASK: u64 = (1 << 55) - 1;
const PM_ENTRY_BYTES: u64 = 8;

/// A read of `p`'s pagemap at byte `off` into `buf`: EINVAL unless both are whole entries;
/// nothing past the end of the user address space.
pub fn pagemap_read(p: &UProc, off: u64, buf: &mut [u8], show_pfn: bool) -> Result<usize, Errno> {
    let len = buf.len() as u64;
    if !off.is_multiple_of(PM_ENTRY_BYTES) || !len.is_multiple_of(PM_ENTRY_BYTES) {
        return Err(Errno::EINVAL);
    }
    let user_end = platform::stub::layout::USER_END;
    let start = (off / PM_ENTRY_BYTES).saturating_mul(PAGE);
    if start >= user_end {
        return Ok(0);
    }
    let end = start.saturating_add(len / PM_ENTRY_BYTES * PAGE).min(user_end);
    let n = usize::try_from((end - start) / PAGE).map_err(|_| Errno::EINVAL)?;
    let mut entries = vec![0u64; n];
    {
        let vm = p.user().vm();
        let g = vm.read();
        let pm = g.physmem();
        for (va, pa, cow) in g.resident_ptes(start, end) {
            let Some(e) = g.find(va) else { continue };
            let anon = pm.page(pa).is_some_and(|pg| pg.flags.load(Ordering::Relaxed) & pgflags::ANON != 0);
            let mut v = PM_PRESENT;
            if e.shared() || !anon {
                v |= PM_FILE;
            }
            if !cow && !e.shared() {
                v |= PM_MMAP_EXCLUSIVE;
            }
            if show_pfn {
                v |= (pa / PAGE) & PM_PFRAME_MASK;
            }
            if let Some(slot) = usize::try_from((va - start) / PAGE).ok().and_then(|i| entries.get_mut(i)) {
                *slot = v;
            }
        }
    }
    for (chunk, v) in buf.chunks_exact_mut(8).zip(&entries) {
        chunk.copy_from_slice(&v.to_le_bytes());
    }
    Ok(n * 8)
}

/// `/proc/vmstat`: the counters vk keeps (pages by use, faults, OOM kills); swap counters are
/// 0 because vk has no swap.
pub fn vmstat() -> String {
    let m = MemInfo::now();
    let mut s = String::new();
    let lines: [(&str, u64); 13] = [
        ("nr_free_pages", m.free),
        ("nr_anon_pages", m.anon),
        ("nr_file_pages", m.file + m.kernel),
        ("nr_shmem", m.kernel),
        ("pgfault", VM_EVENTS.pgfault.load(Ordering::Relaxed)),
        ("pgmajfault", VM_EVENTS.pgmajfault.load(Ordering::Relaxed)),
        ("pswpin", 0),
        ("pswpout", 0),
        ("oom_kill", VM_EVENTS.oom_kill.load(Ordering::Relaxed)),
        // vk's own: pages fault-around mapped beyond the faulting one (crate::vm::faultaround).
        ("pgfault_around_anon", crate::vm::faultaround::AROUND_ANON.load(Ordering::Relaxed)),
        ("pgfault_around_file", crate::vm::faultaround::AROUND_FILE.load(Ordering::Relaxed)),
        // And pages the host backed ahead of a first-touch stream (platform::prefill).
        ("pgprefill_host", platform::prefill::PAGES.load(Ordering::Relaxed)),
        ("nr_swapcached", 0),
    ];
    for (name, v) in lines {
        let _ = writeln!(s, "{name} {v}");
    }
    s
}

/// The files of `/proc/sysvipc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpcFile {
    Shm,
    Sem,
    Msg,
}

pub const IPC_FILES: [(&str, IpcFile); 3] = [("shm", IpcFile::Shm), ("sem", IpcFile::Sem), ("msg", IpcFile::Msg)];

impl IpcFile {
    pub fn index(self) -> u64 {
        IPC_FILES.iter().position(|(_, f)| *f == self).unwrap_or(0) as u64
    }
}

/// `/proc/sysvipc/{shm,sem,msg}`: a header, then one line per object, as Linux prints them.
pub fn sysvipc(f: IpcFile) -> String {
    let mut s = String::new();
    match f {
        IpcFile::Shm => {
            s.push_str("       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap\n");
            shm::with(|ids| {
                for (id, p, seg) in ids.iter_mut() {
                    let rss = seg.object.resident_pages() * PAGE;
                    let _ = writeln!(
                        s,
                        "{:>10} {:>10}  {:>4o} {:>21} {:>5} {:>5}  {:>5} {:>5} {:>5} {:>5} {:>5} {:>10} {:>10} {:>10} {:>21} {:>21}",
                        p.key, id, p.mode, seg.size, seg.cpid, seg.lpid, seg.nattch(), p.uid, p.gid, p.cuid, p.cgid,
                        seg.atime, seg.dtime, seg.ctime, rss, 0
                    );
                }
            });
        }
        IpcFile::Sem => {
            s.push_str("       key      semid perms      nsems   uid   gid  cuid  cgid      otime      ctime\n");
            sem::with(|st| {
                for (id, p, set) in st.ids.iter_mut() {
                    let _ = writeln!(
                        s,
                        "{:>10} {:>10}  {:>4o} {:>10} {:>5} {:>5} {:>5} {:>5} {:>10} {:>10}",
                        p.key, id, p.mode, set.sems.len(), p.uid, p.gid, p.cuid, p.cgid, set.otime, set.ctime
                    );
                }
                ((), false)
            });
        }
        IpcFile::Msg => {
            s.push_str("       key      msqid perms      cbytes       qnum lspid lrpid   uid   gid  cuid  cgid      stime      rtime      ctime\n");
            msg::with(|ids| {
                for (id, p, q) in ids.iter_mut() {
                    let _ = writeln!(
                        s,
                        "{:>10} {:>10}  {:>4o}  {:>10} {:>10} {:>5} {:>5} {:>5} {:>5} {:>5} {:>5} {:>10} {:>10} {:>10}",
                        p.key, id, p.mode, q.cbytes, q.msgs.len(), q.lspid, q.lrpid, p.uid, p.gid, p.cuid, p.cgid,
                        q.stime, q.rtime, q.ctime
                    );
                }
                ((), false)
            });
        }
    }
    s
}

/// One mapping's (or, rolled up, every mapping's) resident memory, in bytes.
#[derive(Debug, Default, Clone, Copy)]
struct Usage {
    size: u64,
    rss: u64,
    /// Proportional set size, in bytes × 4096 (each page's share: 4096 / references).
    pss_scaled: u64,
    pss_anon: u64,
    pss_file: u64,
    pss_shmem: u64,
    shared_clean: u64,
    shared_dirty: u64,
    private_clean: u64,
    private_dirty: u64,
    anonymous: u64,
    /// The proportional share of resident locked pages, scaled as `pss_scaled`.
    locked_scaled: u64,
}

impl Usage {
    fn add(&mut self, o: &Usage) {
        self.size += o.size;
        self.rss += o.rss;
        self.pss_scaled += o.pss_scaled;
        self.pss_anon += o.pss_anon;
        self.pss_file += o.pss_file;
        self.pss_shmem += o.pss_shmem;
        self.shared_clean += o.shared_clean;
        self.shared_dirty += o.shared_dirty;
        self.private_clean += o.private_clean;
        self.private_dirty += o.private_dirty;
        self.anonymous += o.anonymous;
        self.locked_scaled += o.locked_scaled;
    }

    fn lines(&self, rollup: bool) -> String {
        let kb = |b: u64| b / 1024;
        let pss = kb(self.pss_scaled / PAGE);
        let mut s = String::new();
        let mut line = |k: &str, v: u64| {
            let _ = writeln!(s, "{:<16}{v:>8} kB", format!("{k}:"));
        };
        if !rollup {
            line("Size", kb(self.size));
            line("KernelPageSize", 4);
            line("MMUPageSize", 4);
        }
        line("Rss", kb(self.rss));
        line("Pss", pss);
        line("Pss_Dirty", kb(self.pss_anon / PAGE));
        if rollup {
            line("Pss_Anon", kb(self.pss_anon / PAGE));
            line("Pss_File", kb(self.pss_file / PAGE));
            line("Pss_Shmem", kb(self.pss_shmem / PAGE));
        }
        line("Shared_Clean", kb(self.shared_clean));
        line("Shared_Dirty", kb(self.shared_dirty));
        line("Private_Clean", kb(self.private_clean));
        line("Private_Dirty", kb(self.private_dirty));
        line("Referenced", kb(self.rss));
        line("Anonymous", kb(self.anonymous));
        line("LazyFree", 0);
        line("AnonHugePages", 0);
        line("ShmemPmdMapped", 0);
        line("FilePmdMapped", 0);
        line("Shared_Hugetlb", 0);
        line("Private_Hugetlb", 0);
        line("Swap", 0);
        line("SwapPss", 0);
        line("Locked", kb(self.locked_scaled / PAGE));
        s
    }
}

/// What one mapping uses.
fn usage(g: &crate::vm::space::AddressSpace, e: &crate::vm::entry::MapEntry) -> Usage {
    let pm = g.physmem();
    let mut u = Usage { size: e.end - e.start, ..Usage::default() };
    for (va, pa, _) in g.resident_ptes(e.start, e.end) {
        let Some(pg) = pm.page(pa) else { continue };
        let refs = u64::from(pg.refcount.load(Ordering::Relaxed).max(1));
        let anon = pg.flags.load(Ordering::Relaxed) & pgflags::ANON != 0 && !e.shared();
        let share = PAGE * PAGE / refs;
        u.rss += PAGE;
        u.pss_scaled += share;
        if g.locked.at(va).is_some() {
            u.locked_scaled += share;
        }
        match (anon, e.shared()) {
            (true, _) => u.pss_anon += share,
            (false, true) => u.pss_shmem += share,
            (false, false) => u.pss_file += share,
        }
        if anon {
            u.anonymous += PAGE;
        }
        match (refs > 1, anon) {
            (true, true) => u.shared_dirty += PAGE,
            (true, false) => u.shared_clean += PAGE,
            (false, true) => u.private_dirty += PAGE,
            (false, false) => u.private_clean += PAGE,
        }
    }
    u
}

/// VmFlags: the mapping's protection and kind (proc(5)'s two-letter codes).
fn vm_flags(g: &crate::vm::space::AddressSpace, e: &crate::vm::entry::MapEntry) -> String {
    use crate::vm::inherit::Inherit;
    use crate::vm::space::{PROT_EXEC, PROT_READ, PROT_WRITE};
    let mut f: Vec<&str> = Vec::new();
    for (bit, name) in [(PROT_READ, "rd"), (PROT_WRITE, "wr"), (PROT_EXEC, "ex")] {
        if e.prot & bit != 0 {
            f.push(name);
        }
    }
    if e.shared() {
        f.push("sh");
    }
    f.extend(["mr", "mw", "me"]);
    if g.growsdown.at(e.start).is_some() {
        f.push("gd");
    }
    if e.shared() {
        f.push("ms");
    }
    if g.locked.at(e.start).is_some() {
        f.push("lo");
    }
    match g.inherit.at(e.start) {
        Some(Inherit::DontFork) => f.push("dc"),
        Some(Inherit::WipeOnFork) => f.push("wf"),
        None => {}
    }
    f.join(" ")
}

/// `/proc/PID/smaps`: each mapping's line of maps, then its memory; `rollup`
/// (`smaps_rollup`): one record for all of them, under the range they span.
pub fn smaps(p: &UProc, rollup: bool) -> Vec<u8> {
    let vm = p.user().vm();
    let g = vm.read();
    let mut out = Vec::new();
    let mut total = Usage::default();
    let (mut lo, mut hi) = (u64::MAX, 0);
    for e in g.entries() {
        let u = usage(&g, e);
        if rollup {
            total.add(&u);
            lo = lo.min(e.start);
            hi = hi.max(e.end);
            continue;
        }
        super::pid::map_line(&g, e, &mut out);
        out.extend_from_slice(u.lines(false).as_bytes());
        out.extend_from_slice(format!("THPeligible:    0\nVmFlags: {}\n", vm_flags(&g, e)).as_bytes());
    }
    if rollup && hi > 0 {
        out.extend_from_slice(format!("{lo:08x}-{hi:08x} ---p 00000000 00:00 0                          [rollup]\n").as_bytes());
        out.extend_from_slice(total.lines(true).as_bytes());
    }
    out
}
