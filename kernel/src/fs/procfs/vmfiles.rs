//! `/proc/PID/pagemap`, `/proc/vmstat` and `/proc/sysvipc/{shm,sem,msg}`: memory and System V
//! IPC as Linux shows them (Documentation/admin-guide/mm/pagemap.rst, mm/vmstat.c, ipc/*.c's
//! `sysvipc_*_proc_show`).
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
    let lines: [(&str, u64); 10] = [
        ("nr_free_pages", m.free),
        ("nr_anon_pages", m.anon),
        ("nr_file_pages", m.file + m.kernel),
        ("nr_shmem", m.kernel),
        ("pgfault", VM_EVENTS.pgfault.load(Ordering::Relaxed)),
        ("pgmajfault", VM_EVENTS.pgmajfault.load(Ordering::Relaxed)),
        ("pswpin", 0),
        ("pswpout", 0),
        ("oom_kill", VM_EVENTS.oom_kill.load(Ordering::Relaxed)),
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
