//! Host backing for guest pages ahead of demand: a thread that has the host allocate the
//! free, never-used pages a stream of first touches will take next, while the stream works
//! through its current run.
//!
//! A guest page vk has never handed out is still a hole in the memory file (`ZEROED`, see
//! [`crate::physmem`]); the stub's populate of a fault-around run has the host allocate,
//! clear and page-cache each of them on the fault's critical path — most of a first touch's
//! cost (perf: shmem folio allocation, LRU batching, `clear_page`). When the kernel maps a
//! run of a sequential stream it knows which pages the next run will want (the next ones in
//! physical memory, `PhysMem::alloc_run`'s `want`), and asks for them here ([`hint`]): this
//! thread `fallocate`s that range of the memory file, so the next populate only maps pages
//! the host holds already. Like the idle page-zeroing of FreeBSD and Windows, it spends a
//! host CPU that would idle (the vCPU sleeps while its guest runs through a run); it does
//! nothing when the host has no CPU to spare ([`crate::cpu::host_cpu_spare`]) or the pages
//! are taken already. What it backs early is at most one run ahead of each stream, pages
//! the guest was about to use; vk never gives pages back to the host anyway, so an unused
//! one stays a zero page of the file, as any freed page does.
//!
//! The content of a page never changes by this: `fallocate` (mode 0) only allocates the
//! holes of the range, zero-filled, and leaves every page the host holds already — one the
//! guest or the kernel wrote meanwhile — as it is.

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, Once, OnceLock};

use crate::PAGE_SIZE;
use crate::physmem::{PhysMem, pgflags};

/// Whether hints are acted on (`-e vm.prefill=0`: never).
pub static ENABLED: AtomicBool = AtomicBool::new(true);

/// Pages the thread had the host back ahead of demand (vk's /proc/vmstat `pgprefill_host`).
pub static PAGES: AtomicU64 = AtomicU64::new(0);

/// The range asked for last (a newer hint replaces one not yet taken: only the next run of
/// the newest stream matters), and the thread's wake-up.
struct Queue {
    want: Mutex<Option<(u64, u64)>>,
    cv: Condvar,
}

static QUEUE: OnceLock<Queue> = OnceLock::new();

/// Ask for the memory file's range `[pa, pa + len)` to be backed by the host soon, where it
/// holds free pages never used. Cheap and never blocking for long: the caller is a vCPU.
pub fn hint(pa: u64, len: u64) {
    static STARTED: Once = Once::new();
    if !ENABLED.load(Ordering::Relaxed) || len == 0 {
        return;
    }
    let q = QUEUE.get_or_init(|| Queue { want: Mutex::new(None), cv: Condvar::new() });
    STARTED.call_once(|| {
        if let Err(e) = std::thread::Builder::new().name("vk-prefill".into()).spawn(move || run(q)) {
            log::warn!("prefill: cannot start its thread: {e}");
            ENABLED.store(false, Ordering::Relaxed);
        }
    });
    if let Ok(mut w) = q.want.lock() {
        *w = Some((pa, len));
        q.cv.notify_one();
    }
}

/// The thread: take the latest range and back it.
fn run(q: &'static Queue) {
    loop {
        let (pa, len) = {
            let Ok(mut w) = q.want.lock() else { return };
            loop {
                if let Some(r) = w.take() {
                    break r;
                }
                w = match q.cv.wait(w) {
                    Ok(w) => w,
                    Err(_) => return,
                };
            }
        };
        if let Some(pm) = crate::physmem::get() {
            back(pm, pa, len);
        }
    }
}

/// Have the host back the holes among `[pa, pa + len)`'s never-used free pages, if the host
/// has a CPU to spare.
fn back(pm: &PhysMem, pa: u64, len: u64) {
    if pm.image().is_some() || !crate::cpu::host_cpu_spare(crate::stub::spin::host_cpus()) {
        return;
    }
    PAGES.fetch_add(fill(pm, pa, len), Ordering::Relaxed);
}

/// `fallocate` the memory file from `pa` on, for up to `len` bytes, as far as its pages are
/// free and never used (past them the host holds them, or the guest does); the pages done.
fn fill(pm: &PhysMem, pa: u64, len: u64) -> u64 {
    let page = PAGE_SIZE as u64;
    let end = pa.saturating_add(len).min(pm.size());
    let never_used = |p: u64| pm.page(p).is_some_and(|g| g.flags.load(Ordering::Relaxed) & (pgflags::FREE | pgflags::ZEROED) == pgflags::FREE | pgflags::ZEROED);
    let mut stop = pa;
    while stop < end && never_used(stop) {
        stop += page;
    }
    if stop == pa {
        return 0;
    }
    let (Ok(off), Ok(n)) = (libc::off_t::try_from(pa), libc::off_t::try_from(stop - pa)) else { return 0 };
    // SAFETY: fallocate on the memory file's descriptor, a range inside the file: it only
    // allocates the range's holes (mode 0), zero-filled; no memory of ours is passed.
    if unsafe { libc::fallocate(pm.fd().as_raw_fd(), 0, off, n) } == 0 { (stop - pa) / page } else { 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The memory file's allocated bytes (st_blocks × 512).
    fn backed(pm: &PhysMem) -> u64 {
        let f = std::fs::File::from(pm.fd().try_clone_to_owned().unwrap());
        std::os::unix::fs::MetadataExt::blocks(&f.metadata().unwrap()) * 512
    }

    #[test]
    fn fills_free_never_used_pages_up_to_the_first_taken_one() {
        let pm = PhysMem::scratch(16 << 20).unwrap();
        let page = PAGE_SIZE as u64;
        let last = pm.size() / page;
        let before = backed(&pm);
        // Take page 10: a run from page 4 stops there.
        let taken = pm.alloc_page_at(10 * page, 1, pgflags::ANON).unwrap();
        assert_eq!(fill(&pm, 4 * page, 16 * page), 6);
        assert_eq!(backed(&pm) - before, 6 * page);
        // Nothing from a taken page on; the file's end bounds a range.
        assert_eq!(fill(&pm, taken, 4 * page), 0);
        assert_eq!(fill(&pm, (last - 4) * page, 16 * page), 4);
        // A page already backed and written keeps its data.
        pm.write(20 * page, b"kept");
        pm.page_unref(taken);
        let mut buf = [0u8; 4];
        fill(&pm, 16 * page, 8 * page);
        pm.read(20 * page, &mut buf);
        assert_eq!(&buf, b"kept");
    }
}
