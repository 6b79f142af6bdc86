//! Unit tests of [`AddressSpace`] in plain `cargo test`: each builds its space on a small
//! private physical memory ([`PhysMem::scratch`]) and checks the stub operations it queues
//! ([`AddressSpace::take_stub_ops`]) instead of running a stub. Every test ends by dropping
//! its spaces and checking that every page came back.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use platform::physmem::{MIN_PHYSMEM, PhysMem};

use super::*;
use crate::kern::conv::usize_of;
use crate::fs::mount::{FileSystem, FsRef};
use crate::fs::vfs::{Attr, S_IFREG, Vnode, VnodeRef};
use crate::vm::uaccess::{copyin, copyout};

const BASE: u64 = 0x100_0000;
const RW: u32 = PROT_READ | PROT_WRITE;

fn physmem() -> Arc<PhysMem> {
    Arc::new(PhysMem::scratch(MIN_PHYSMEM).expect("scratch physical memory"))
}

fn space(pm: &Arc<PhysMem>) -> AddressSpace {
    AddressSpace::with_physmem(1, Arc::clone(pm))
}

fn anon(start: u64, pages: u64, prot: u32) -> MapEntry {
    MapEntry { start, end: start + pages * PAGE, prot, backing: Backing::Anon, name: Vec::new() }
}

/// Shared anonymous memory (MAP_SHARED|MAP_ANONYMOUS): a new object's pages.
fn shared_anon(pm: &Arc<PhysMem>, start: u64, pages: u64, prot: u32) -> MapEntry {
    let object = SharedObject::with_physmem(Arc::clone(pm));
    MapEntry { start, end: start + pages * PAGE, prot, backing: Backing::Shared { object, offset: 0 }, name: Vec::new() }
}

fn read_u64(vm: &AddressSpace, addr: u64) -> u64 {
    let mut b = [0u8; 8];
    copyin(vm, addr, &mut b).expect("copyin");
    u64::from_le_bytes(b)
}

fn write_u64(vm: &AddressSpace, addr: u64, v: u64) {
    copyout(vm, addr, &v.to_le_bytes()).expect("copyout");
}

/// The page table entry of `addr`.
fn pte(vm: &AddressSpace, addr: u64) -> Option<Pte> {
    vm.pt.lock().pages.get(&(addr / PAGE)).copied()
}

/// All pages but the reserved one are free again.
fn all_free(pm: &PhysMem) {
    assert_eq!(pm.free_pages(), pm.npages() as u64 - 1, "pages leaked");
}

/// A read-only file in memory, for private file mappings; counts its reads and can take its
/// time over each (to widen a race).
#[derive(Debug)]
struct MemFile {
    data: Vec<u8>,
    reads: AtomicU64,
    /// A read waits (up to 10 s) until this many reads have begun: a test that several
    /// faults read the file at once sees them overlap however the threads are scheduled.
    rendezvous: u64,
    /// Its page cache, if it has one.
    cache: Option<Arc<crate::vm::pagecache::PageCache>>,
}

impl MemFile {
    fn new(len: usize, rendezvous: u64) -> Arc<MemFile> {
        let data = (0..len).map(|i| u8::try_from(i / usize_of(PAGE) % 255).unwrap() + 1).collect();
        Arc::new(MemFile { data, reads: AtomicU64::new(0), rendezvous, cache: None })
    }

    fn with_cache(len: usize, pm: &Arc<PhysMem>) -> Arc<MemFile> {
        let data = (0..len).map(|i| u8::try_from(i / usize_of(PAGE) % 255).unwrap() + 1).collect();
        let cache = Some(crate::vm::pagecache::PageCache::with_physmem(Arc::clone(pm)));
        Arc::new(MemFile { data, reads: AtomicU64::new(0), rendezvous: 0, cache })
    }
}

impl Vnode for MemFile {
    fn attr(&self) -> Result<Attr, Errno> {
        Ok(Attr { mode: S_IFREG | 0o644, size: self.data.len() as u64, nlink: 1, ..Default::default() })
    }

    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        let give_up = std::time::Instant::now() + Duration::from_secs(10);
        while self.reads.load(Ordering::SeqCst) < self.rendezvous && std::time::Instant::now() < give_up {
            std::thread::yield_now();
        }
        let off = usize::try_from(off).map_err(|_| Errno::EINVAL)?.min(self.data.len());
        let n = buf.len().min(self.data.len() - off);
        buf[..n].copy_from_slice(&self.data[off..off + n]);
        Ok(n)
    }

    fn fs(&self) -> FsRef {
        Arc::new(MemFs)
    }

    fn page_cache(&self) -> Option<Arc<crate::vm::pagecache::PageCache>> {
        self.cache.clone()
    }

    /// A cached file's page, read in when missing (ext2's get_page, without the disk).
    fn get_page(&self, idx: u64) -> Result<u64, Errno> {
        let c = self.cache.as_ref().ok_or(Errno::ENODEV)?;
        if idx >= (self.data.len() as u64).div_ceil(PAGE) {
            return Err(Errno::ENXIO);
        }
        c.page(idx, |at, buf| self.read_at(at, buf))
    }
}

/// MemFile's file system: nothing but a name.
#[derive(Debug)]
struct MemFs;

impl FileSystem for MemFs {
    fn type_name(&self) -> &'static str {
        "memfile"
    }

    fn id(&self) -> u64 {
        0
    }
}

fn file_entry(start: u64, pages: u64, file: &Arc<MemFile>, offset: u64) -> MapEntry {
    let vnode: VnodeRef = Arc::clone(file) as VnodeRef;
    MapEntry {
        start,
        end: start + pages * PAGE,
        prot: PROT_READ,
        backing: Backing::File { vnode, offset, file_len: u64::MAX },
        name: "f".into(),
    }
}

#[test]
fn demand_zero_and_copyout_copyin() {
    let pm = physmem();
    {
        let mut vm = space(&pm);
        vm.map(anon(BASE, 4, RW));
        assert_eq!(read_u64(&vm, BASE + 8), 0, "a fresh page reads as zeros");
        write_u64(&vm, BASE + PAGE - 4, 0x1122_3344_5566_7788); // crosses into the next page
        assert_eq!(read_u64(&vm, BASE + PAGE - 4), 0x1122_3344_5566_7788);
        assert_eq!(vm.rss_pages(), 2);
        // The guest's own fault maps the page in the stub with the entry's protection, the
        // host page table filled at once (the guest touches it next).
        let pa = vm.fault(BASE + 2 * PAGE, Access::Write).unwrap();
        let ops = vm.take_stub_ops();
        assert!(ops.contains(&StubOp::Map { addr: BASE + 2 * PAGE, len: PAGE, prot: RW, pa, populate: true }), "{ops:?}");
        assert_eq!(vm.fault(BASE + 4 * PAGE, Access::Read), Err(FaultError::NotMapped));
        assert_eq!(copyin(&vm, BASE + 4 * PAGE - 4, &mut [0u8; 8]), Err(Errno::EFAULT));
    }
    all_free(&pm);
}

#[test]
fn fork_is_copy_on_write() {
    let pm = physmem();
    {
        let mut parent = space(&pm);
        parent.map(anon(BASE, 2, RW));
        let pa = parent.fault(BASE, Access::Write).unwrap();
        write_u64(&parent, BASE, 1);
        parent.take_stub_ops();
        let child = parent.fork(2, None);
        // The parent's stub loses write access to the now-shared page (mapped again
        // read-only); both are copy-on-write.
        assert_eq!(parent.take_stub_ops(), vec![StubOp::Map { addr: BASE, len: PAGE, prot: PROT_READ, pa, populate: false }]);
        assert!(pte(&parent, BASE).unwrap().cow && pte(&child, BASE).unwrap().cow);
        assert_eq!(pm.page(pa).unwrap().refcount.load(Ordering::Relaxed), 2);
        // The page was in the parent's stub: the child's stub gets it at once, read-only.
        assert_eq!(child.take_stub_ops(), vec![StubOp::Map { addr: BASE, len: PAGE, prot: PROT_READ, pa, populate: false }]);
        assert_eq!(pte(&child, BASE).unwrap().stub_prot, PROT_READ);
        assert_eq!(child.fault(BASE, Access::Read).unwrap(), pa);
        // The child's write copies; the parent keeps the original.
        write_u64(&child, BASE, 2);
        let copy = pte(&child, BASE).unwrap();
        assert!(copy.pa != pa && !copy.cow);
        assert_eq!((read_u64(&parent, BASE), read_u64(&child, BASE)), (1, 2));
        // Once the child's stub has the copy in place of the original, the parent is the
        // page's only holder: its write takes it without a copy (and maps it writable in the
        // stub again).
        child.take_stub_ops();
        write_u64(&parent, BASE, 3);
        assert_eq!(pte(&parent, BASE).unwrap(), Pte { pa, cow: false, stub_prot: RW });
        assert_eq!(read_u64(&child, BASE), 2);
        drop(child);
    }
    all_free(&pm);
}

/// A page fork took write access from is still in the parent's stub (writable until the
/// queued read-only map is carried out, then read-only): a munmap (or a copy-on-write copy)
/// meanwhile must not free it before the stub lets it go, even once the child is gone —
/// other threads may still write it through the stub.
#[test]
fn a_page_the_stub_may_still_map_is_not_freed_before_the_unmap_runs() {
    let pm = physmem();
    {
        let mut parent = space(&pm);
        parent.map(anon(BASE, 2, RW));
        let pa = parent.fault(BASE, Access::Write).unwrap();
        parent.take_stub_ops();
        let child = parent.fork(2, None);
        drop(child);
        // The downgrade is queued, not carried out; the page table says "read-only in the
        // stub" already.
        assert_eq!(pte(&parent, BASE).unwrap().stub_prot, PROT_READ);
        parent.unmap(BASE, BASE + 2 * PAGE);
        assert_eq!(pm.page(pa).unwrap().refcount.load(Ordering::Relaxed), 1, "freed while the stub maps it");
        let ops = parent.take_stub_ops();
        assert_eq!(
            ops,
            vec![StubOp::Map { addr: BASE, len: PAGE, prot: PROT_READ, pa, populate: false }, StubOp::Unmap { addr: BASE, len: 2 * PAGE }]
        );
        assert_eq!(pm.page(pa).unwrap().refcount.load(Ordering::Relaxed), 0);
    }
    all_free(&pm);
}

#[test]
fn a_write_after_the_child_is_gone_takes_the_neighbours_back_too() {
    let pm = physmem();
    {
        let mut parent = space(&pm);
        parent.map(anon(BASE, 16, RW));
        for i in 0..4 {
            write_u64(&parent, BASE + i * PAGE, i);
        }
        parent.take_stub_ops();
        let child = parent.fork(2, None);
        // While the child holds the pages, a write copies one page and leaves the others.
        write_u64(&parent, BASE, 10);
        assert!(!pte(&parent, BASE).unwrap().cow && pte(&parent, BASE + PAGE).unwrap().cow);
        drop(child);
        parent.take_stub_ops();
        // The child is gone: one write fault takes every page of the window back, writable.
        parent.fault(BASE + PAGE, Access::Write).unwrap();
        for i in 1..4 {
            assert!(!pte(&parent, BASE + i * PAGE).unwrap().cow, "page {i}");
            assert_eq!(pte(&parent, BASE + i * PAGE).unwrap().stub_prot, RW, "page {i}");
        }
        let maps = parent.take_stub_ops().into_iter().filter(|op| matches!(op, StubOp::Map { prot: RW, .. })).count();
        assert_eq!(maps, 3);
        assert_eq!((read_u64(&parent, BASE), read_u64(&parent, BASE + 3 * PAGE)), (10, 3));
    }
    all_free(&pm);
}

#[test]
fn maps_of_neighbouring_pages_go_to_the_stub_as_one() {
    let map = |page: u64, prot: u32, pfn: u64| StubOp::Map { addr: BASE + page * PAGE, len: PAGE, prot, pa: pfn * PAGE, populate: false };
    let pending = vec![
        map(0, RW, 10),
        map(1, RW, 11),
        map(2, RW, 12),
        map(3, RW, 20),        // not the next physical page
        map(4, PROT_READ, 21), // another protection
        StubOp::Unmap { addr: BASE + 9 * PAGE, len: PAGE },
        map(5, PROT_READ, 22), // after an unmap: not merged across it
        map(7, PROT_READ, 24), // not the next page
    ];
    assert_eq!(stub_ops(pending).len(), 6);
    // Populated and plain maps are not merged: a populate covers only what the guest touches
    // next.
    let populated = StubOp::Map { addr: BASE + 8 * PAGE, len: PAGE, prot: PROT_READ, pa: 25 * PAGE, populate: true };
    let ops = stub_ops(vec![map(7, PROT_READ, 24), populated]);
    assert_eq!((ops.maps(), ops.populates()), (2, 0), "one populated page is left to its fault");
    let next = StubOp::Map { addr: BASE + 9 * PAGE, len: PAGE, prot: PROT_READ, pa: 26 * PAGE, populate: true };
    let ops = stub_ops(vec![populated, next]);
    let host = usize::from(platform::stub::populate_works());
    assert_eq!((ops.maps(), ops.populates()), (1, host), "a populated run: one map, one populate");
    assert_eq!(stub_ops(vec![map(0, RW, 1), map(1, RW, 2), map(2, RW, 3)]).len(), 1);
}

#[test]
fn a_stub_handed_on_is_left_with_nothing_mapped() {
    let pm = physmem();
    {
        let mut vm = space(&pm);
        vm.map(anon(BASE, 64, RW));
        vm.map(anon(BASE + 100 * PAGE, 4, RW));
        vm.map(anon(BASE + 200 * PAGE, 4, RW));
        // Pages 1, 3 and 40 of the first mapping, page 2 of the second; none of the third.
        for a in [BASE + PAGE, BASE + 3 * PAGE, BASE + 40 * PAGE, BASE + 102 * PAGE] {
            vm.fault(a, Access::Write).unwrap();
        }
        vm.take_stub_ops();
        // A page unmapped since (its unmap still queued, the page waiting for the stub).
        vm.dontneed(BASE + 40 * PAGE, BASE + 41 * PAGE);
        let before = pm.free_pages();
        let (ops, deferred) = vm.stub_teardown();
        assert_eq!(
            ops,
            vec![
                StubOp::Unmap { addr: BASE + 40 * PAGE, len: PAGE },
                StubOp::Unmap { addr: BASE + PAGE, len: 3 * PAGE },
                StubOp::Unmap { addr: BASE + 102 * PAGE, len: PAGE },
            ]
        );
        assert_eq!(deferred.len(), 1);
        vm.release(deferred);
        assert_eq!(pm.free_pages(), before + 1);
        // Nothing is in the stub any more: a fault maps the page again; nothing is queued.
        assert_eq!(pte(&vm, BASE + PAGE).unwrap().stub_prot, 0);
        assert!(vm.take_stub_ops().is_empty());
        vm.fault(BASE + 3 * PAGE, Access::Read).unwrap();
        assert!(!vm.take_stub_ops().is_empty());
    }
    all_free(&pm);
}

/// exec handing its stub on: the old image's unmaps go first in the new space's queue, ahead
/// of the new image's maps, and its pages are released only once the stub carried them out.
#[test]
fn a_stub_handed_to_a_new_image_unmaps_the_old_one_first() {
    let pm = physmem();
    {
        let mut old = space(&pm);
        old.map(anon(BASE, 4, RW));
        for i in 0..4 {
            write_u64(&old, BASE + i * PAGE, i);
        }
        old.take_stub_ops();
        let mut new = space(&pm);
        new.map(anon(BASE, 1, RW));
        new.fault(BASE, Access::Write).unwrap();
        let before = pm.free_pages();
        old.hand_to(&mut new);
        drop(old);
        assert_eq!(pm.free_pages(), before, "old pages freed while the stub may map them");
        assert!(new.unmap_queued());
        // Taken as the stub carries them out, then the old pages go.
        let ops = new.take_stub_ops();
        assert_eq!(ops.len(), 2, "{ops:?}");
        assert_eq!(ops[0], StubOp::Unmap { addr: BASE, len: 4 * PAGE });
        assert!(matches!(ops[1], StubOp::Map { addr: BASE, len: PAGE, prot: RW, .. }), "{ops:?}");
        assert_eq!(pm.free_pages(), before + 4);
    }
    all_free(&pm);
}

/// A new image that queued nothing itself still tells the trap loop (`ops_queued`) that the
/// old image's unmaps wait: a resume that skipped them would run the new program in the old
/// one's pages.
#[test]
fn a_handed_over_stub_flags_its_queue() {
    let pm = physmem();
    {
        let mut old = space(&pm);
        old.map(anon(BASE, 2, RW));
        write_u64(&old, BASE, 1);
        old.take_stub_ops();
        let mut new = space(&pm);
        new.map(anon(BASE, 1, RW));
        assert!(!new.ops_queued().load(Ordering::Acquire));
        old.hand_to(&mut new);
        drop(old);
        assert!(new.ops_queued().load(Ordering::Acquire));
        assert_eq!(new.take_stub_ops(), [StubOp::Unmap { addr: BASE, len: PAGE }]);
    }
    all_free(&pm);
}

/// A thread that carries the queued operations out for the others (`sync`) takes them with
/// the flag that resuming threads read without the lock: left set while unmaps — or the old
/// page of a copy-on-write copy — are on their way into the stub, cleared when only maps go.
#[test]
fn unmaps_taken_for_the_stub_leave_the_queue_flagged() {
    let pm = physmem();
    {
        let mut vm = space(&pm);
        vm.map(anon(BASE, 2, RW));
        vm.fault(BASE, Access::Write).unwrap();
        let flag = vm.ops_queued();
        // Only a map: taken, nothing left that a resuming thread must wait for.
        let (unmaps, ops, _) = vm.pt.get_mut().take_for_sync();
        assert!(!unmaps && ops.len() == 1 && !flag.load(Ordering::Acquire));
        // A copy-on-write copy replaces a page the stub maps: taken as an unmap is.
        let child = vm.fork(2, None);
        vm.take_stub_ops();
        copyout(&vm, BASE, &[1]).unwrap();
        let (unmaps, _, deferred) = vm.pt.get_mut().take_for_sync();
        assert!(unmaps && flag.load(Ordering::Acquire) && vm.pt.get_mut().unmaps_in_flight);
        vm.release(deferred);
        drop(child);
    }
    all_free(&pm);
}

/// The same, with another thread reading the flag as resuming threads do: it never reads
/// clear while the unmaps taken are on their way — not even for the instant between a
/// take that cleared it and a store that set it again (the stale reads t_stress found).
#[test]
fn a_resuming_thread_never_reads_the_flag_clear_while_unmaps_are_on_their_way() {
    use std::sync::atomic::AtomicBool;
    let pt = Arc::new(platform::sync::SpinLock::new("test_pt", PageTable::default()));
    let flag = Arc::clone(&pt.lock().queued);
    // Odd while unmaps are queued or on their way: the flag must read set.
    let phase = Arc::new(AtomicU64::new(0));
    let (started, done) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let reader = {
        let (flag, phase, started, done) = (Arc::clone(&flag), Arc::clone(&phase), Arc::clone(&started), Arc::clone(&done));
        std::thread::spawn(move || {
            started.store(true, Ordering::Release);
            let mut seen_clear = 0u64;
            while !done.load(Ordering::Acquire) {
                let before = phase.load(Ordering::Acquire);
                let set = flag.load(Ordering::Acquire);
                if before % 2 == 1 && !set && phase.load(Ordering::Acquire) == before {
                    seen_clear += 1;
                }
            }
            seen_clear
        })
    };
    while !started.load(Ordering::Acquire) {
        std::hint::spin_loop();
    }
    for _ in 0..1_000_000 {
        {
            let mut g = pt.lock();
            g.unmap_in_stub(BASE, BASE + PAGE);
            phase.fetch_add(1, Ordering::Release);
            let (unmaps, _, _) = g.take_for_sync();
            assert!(unmaps);
        }
        // The unmaps land; the next resuming thread finds nothing and clears the flag.
        let mut g = pt.lock();
        g.unmaps_in_flight = false;
        phase.fetch_add(1, Ordering::Release);
        g.take_for_sync();
    }
    done.store(true, Ordering::Release);
    assert_eq!(reader.join().unwrap(), 0, "a resuming thread read the flag clear with unmaps on their way");
}

/// A lone thread's fork that finds few private pages written (mapped writable in its stub)
/// copies them all for the child: neither side faults when it writes them again. Pages
/// already copy-on-write, read-only ones and shared memory are shared as before; with
/// another thread running nothing is copied.
#[test]
fn a_lone_threads_fork_copies_a_small_written_set() {
    let pm = physmem();
    {
        let mut parent = space(&pm);
        parent.map(anon(BASE, 8, RW));
        let shared = BASE + 16 * PAGE;
        parent.map(shared_anon(&pm, shared, 1, RW));
        for i in [0, 1, 2, 6] {
            write_u64(&parent, BASE + i * PAGE, i);
        }
        // Page 7 only read: resident (zeros), mapped read-only in the stub.
        assert_eq!(read_u64(&parent, BASE + 7 * PAGE), 0);
        write_u64(&parent, shared, 99);
        parent.take_stub_ops();
        // Page 6 shared copy-on-write with an earlier child.
        let earlier = parent.fork(2, None);
        write_u64(&parent, BASE, 10);
        write_u64(&parent, BASE + PAGE, 11);
        write_u64(&parent, BASE + 2 * PAGE, 12);
        parent.take_stub_ops();
        let child = parent.fork(3, Some(BASE + 2 * PAGE));
        assert!(parent.take_stub_ops().is_empty(), "the parent keeps its written pages writable");
        // The copies lie in one run of memory, mapped at once and populated: the child writes
        // them as soon as it runs.
        let first = pte(&child, BASE).unwrap().pa;
        assert!((0..3).all(|i| pte(&child, BASE + i * PAGE).unwrap().pa == first + i * PAGE));
        let run = StubOp::Map { addr: BASE, len: 3 * PAGE, prot: RW, pa: first, populate: true };
        assert!(child.take_stub_ops().contains(&run));
        for i in 0..3 {
            let (p, c) = (pte(&parent, BASE + i * PAGE).unwrap(), pte(&child, BASE + i * PAGE).unwrap());
            assert!(!p.cow && !c.cow && p.pa != c.pa, "page {i}: copied");
            assert_eq!((p.stub_prot, c.stub_prot), (RW, RW), "page {i}");
            assert_eq!(read_u64(&child, BASE + i * PAGE), 10 + i);
        }
        for i in [6, 7] {
            let (p, c) = (pte(&parent, BASE + i * PAGE).unwrap(), pte(&child, BASE + i * PAGE).unwrap());
            assert!(p.cow && c.cow && p.pa == c.pa, "page {i}: shared copy-on-write");
        }
        assert_eq!(pte(&parent, shared).unwrap().pa, pte(&child, shared).unwrap().pa, "shared memory stays shared");
        // Writes are each side's own.
        write_u64(&parent, BASE, 20);
        write_u64(&child, BASE + PAGE, 21);
        assert_eq!((read_u64(&child, BASE), read_u64(&parent, BASE + PAGE)), (10, 11));
        // Not lone: nothing is copied.
        write_u64(&parent, BASE + 3 * PAGE, 3);
        let other = parent.fork(4, None);
        assert!((0..4).all(|i| pte(&other, BASE + i * PAGE).unwrap().cow));
        drop((earlier, child, other));
    }
    all_free(&pm);
}

/// A lone thread's next child, on the stub its last child left (a shell's next `$(…)`): its
/// copies are taken at the pages that child had at the same places, when free — kept in the
/// stub as they are, no map — and elsewhere when not; either way they hold the parent's data.
#[test]
fn a_childs_copies_go_where_the_last_child_had_them() {
    let pm = physmem();
    {
        let mut parent = space(&pm);
        parent.map(anon(BASE, 8, RW));
        for i in 0..3 {
            write_u64(&parent, BASE + i * PAGE, i);
        }
        parent.take_stub_ops();
        let first = parent.fork(2, Some(BASE));
        // What its stub maps when it exits: its copies, writable (the stub keeps them).
        let residue: Vec<MappedRun> = first
            .resident_ptes(BASE, BASE + 3 * PAGE)
            .into_iter()
            .map(|(addr, pa, _)| MappedRun { addr, len: PAGE, pa, prot: RW })
            .collect();
        assert_eq!(residue.len(), 3);
        drop(first);
        // Page 1 of the last child's is someone else's by now.
        let taken = pm.alloc_page_near(Some(residue[1].pa), 9, 0).unwrap();
        assert_eq!(taken, residue[1].pa);
        for i in 0..3 {
            write_u64(&parent, BASE + i * PAGE, 10 + i);
        }
        parent.take_stub_ops();
        let mut child = parent.fork_onto(3, Some(BASE), &residue);
        for (i, r) in residue.iter().enumerate() {
            let c = pte(&child, r.addr).unwrap();
            assert_eq!(c.pa == r.pa, i != 1, "page {i}");
            assert_eq!(read_u64(&child, r.addr), 10 + i as u64);
        }
        child.adopt_residue(&residue);
        let ops = child.take_stub_ops();
        let maps = |a: u64| ops.iter().any(|op| matches!(*op, StubOp::Map { addr, len, .. } if addr <= a && a < addr + len));
        assert!(!maps(BASE) && !maps(BASE + 2 * PAGE), "a kept page mapped again: {ops:?}");
        assert!(maps(BASE + PAGE), "page 1 is a new one: {ops:?}");
        assert!(ops.contains(&StubOp::Unmap { addr: BASE + PAGE, len: PAGE }), "the old mapping of page 1 goes first: {ops:?}");
        pm.page_unref(taken);
        drop(child);
    }
    all_free(&pm);
}

/// fork maps the parent's working set (the pages its stub maps) into the child's stub in
/// one go: private pages read-only, shared ones with their protection; pages the parent's
/// stub does not map, PROT_NONE and MADV_DONTFORK ranges are left to faults (or out).
#[test]
fn fork_mirrors_the_parents_working_set_into_the_child() {
    let pm = physmem();
    {
        let mut parent = space(&pm);
        parent.map(anon(BASE, 8, RW));
        let shared = BASE + 16 * PAGE;
        parent.map(shared_anon(&pm, shared, 1, RW));
        let dontfork = BASE + 32 * PAGE;
        parent.map(anon(dontfork, 1, RW));
        for a in [BASE, BASE + PAGE, BASE + 5 * PAGE, shared, dontfork] {
            write_u64(&parent, a, a);
        }
        parent.inherit.set(dontfork, dontfork + PAGE, Some(crate::vm::inherit::Inherit::DontFork));
        parent.take_stub_ops();
        // A resident page the parent's stub does not map (its unmap is queued): not mirrored.
        parent.protect(BASE + 5 * PAGE, BASE + 6 * PAGE, PROT_READ).unwrap();
        parent.take_stub_ops();
        let child = parent.fork(2, None);
        assert!(child.ops_queued().load(Ordering::Acquire), "the mirror must be taken on the first resume");
        let ops = child.take_stub_ops();
        let mapped: Vec<(u64, u64, u32)> = ops
            .iter()
            .map(|op| match *op {
                StubOp::Map { addr, len, prot, .. } => (addr, len, prot),
                StubOp::Unmap { .. } => panic!("unmap in a new child: {ops:?}"),
            })
            .collect();
        let pages: u64 = mapped.iter().filter(|m| m.0 < shared).map(|m| m.1 / PAGE).sum();
        assert_eq!(pages, 2, "{ops:?}");
        assert!(mapped.iter().filter(|m| m.0 < shared).all(|m| m.2 == PROT_READ), "{ops:?}");
        assert!(mapped.contains(&(shared, PAGE, RW)), "{ops:?}");
        assert!(mapped.iter().all(|m| m.0 != dontfork && m.0 != BASE + 5 * PAGE), "{ops:?}");
        for (a, prot) in [(BASE, PROT_READ), (BASE + PAGE, PROT_READ), (shared, RW), (BASE + 5 * PAGE, 0)] {
            assert_eq!(pte(&child, a).unwrap().stub_prot, prot, "{a:#x}");
        }
        assert!(pte(&child, dontfork).is_none());
        // The mirrored pages read as the parent's; a write still copies.
        assert_eq!(read_u64(&child, BASE + PAGE), BASE + PAGE);
        write_u64(&child, BASE, 7);
        assert_eq!((read_u64(&parent, BASE), read_u64(&child, BASE)), (BASE, 7));
        assert!(child.take_stub_ops().iter().any(|op| matches!(op, StubOp::Map { addr: BASE, prot: RW, .. })));
        drop(child);
    }
    all_free(&pm);
}

/// A lone thread's fork copies the stack pages around its stack pointer that its stub maps
/// writable: the parent keeps them writable in its stub (nothing unmapped), the child gets its
/// own copies mapped writable; the rest is copy-on-write (here more pages are written than
/// [`FORK_COPY_WRITTEN_MAX`], so only the stack's are copied).
#[test]
fn a_lone_threads_fork_copies_the_stack_around_its_pointer() {
    let pm = physmem();
    {
        let mut parent = space(&pm);
        let n = FORK_COPY_WRITTEN_MAX as u64 + 6;
        parent.map(anon(BASE, n, RW));
        for i in 0..n {
            write_u64(&parent, BASE + i * PAGE, i);
        }
        parent.take_stub_ops();
        let sp = BASE + 5 * PAGE + 0x80;
        let (lo, hi) = (5 - FORK_COPY_BELOW, 5 - FORK_COPY_BELOW + FORK_COPY_PAGES);
        let before: Vec<Pte> = (0..n).map(|i| pte(&parent, BASE + i * PAGE).unwrap()).collect();
        let child = parent.fork(2, Some(sp));
        let copied = |i: u64| (lo..hi).contains(&i);
        // The pages shared lost write access in the parent's stub (mapped again read-only).
        let downgraded: u64 = parent
            .take_stub_ops()
            .iter()
            .map(|op| match *op {
                StubOp::Map { len, prot: PROT_READ, .. } => len / PAGE,
                _ => panic!("not a read-only map in the parent: {op:?}"),
            })
            .sum();
        assert_eq!(downgraded, (0..n).filter(|&i| !copied(i)).count() as u64);
        for i in 0..n {
            let (p, c) = (pte(&parent, BASE + i * PAGE).unwrap(), pte(&child, BASE + i * PAGE).unwrap());
            if copied(i) {
                assert_eq!(p, before[usize_of(i)], "page {i}: the parent's is untouched");
                assert!(!c.cow && c.pa != p.pa, "page {i}");
                assert_eq!(c.stub_prot, RW, "page {i}");
            } else {
                assert!(p.cow && c.cow && p.pa == c.pa, "page {i}");
                assert_eq!(c.stub_prot, PROT_READ, "page {i}");
            }
            assert_eq!(read_u64(&child, BASE + i * PAGE), i);
        }
        // The copies are the child's own: writes on either side are not seen by the other.
        write_u64(&parent, BASE + 4 * PAGE, 40);
        write_u64(&child, BASE + 5 * PAGE, 50);
        assert_eq!((read_u64(&child, BASE + 4 * PAGE), read_u64(&parent, BASE + 5 * PAGE)), (4, 5));
        // Not lone: nothing is copied.
        let other = parent.fork(3, None);
        assert!((0..n).all(|i| pte(&other, BASE + i * PAGE).unwrap().cow));
        drop((child, other));
    }
    all_free(&pm);
}

/// Pages of a mapping touched one after the other are neighbours in physical memory (one
/// stub mapping for all), even when the free list would hand pages out descending; so are the
/// copies a write after fork makes of them.
#[test]
fn neighbouring_pages_are_neighbours_in_memory() {
    let pm = physmem();
    {
        // Pages freed in ascending order: the free list hands them out descending.
        let held: Vec<u64> = (0..64).map(|_| pm.alloc_page(9, pgflags::ANON).unwrap()).collect();
        for &pa in &held {
            pm.page_unref(pa);
        }
        let mut vm = space(&pm);
        vm.map(anon(BASE, 16, RW));
        for i in 0..16 {
            write_u64(&vm, BASE + i * PAGE, i);
        }
        let first = pte(&vm, BASE).unwrap().pa;
        for i in 1..16 {
            assert_eq!(pte(&vm, BASE + i * PAGE).unwrap().pa, first + i * PAGE, "page {i}");
        }
        let maps = stub_ops(vm.take_stub_ops()).maps();
        assert_eq!(maps, 1);
        // After fork the child's stub gets them in one map; the parent's writes copy the
        // pages: the copies are neighbours too.
        let child = vm.fork(2, None);
        let ops = child.take_stub_ops();
        assert_eq!(ops, vec![StubOp::Map { addr: BASE, len: 16 * PAGE, prot: PROT_READ, pa: first, populate: false }]);
        for i in 0..16 {
            write_u64(&vm, BASE + i * PAGE, 100 + i);
        }
        let copy = pte(&vm, BASE).unwrap().pa;
        assert_ne!(copy, first);
        for i in 0..16 {
            assert_eq!(pte(&vm, BASE + i * PAGE).unwrap().pa, copy + i * PAGE, "copy of page {i}");
            assert_eq!((read_u64(&vm, BASE + i * PAGE), read_u64(&child, BASE + i * PAGE)), (100 + i, i));
        }
        drop(child);
    }
    all_free(&pm);
}

/// A large working set is mirrored in at most MIRROR_RUNS stub maps; the rest is faulted in.
#[test]
fn fork_mirrors_at_most_mirror_runs() {
    let pm = physmem();
    {
        let mut parent = space(&pm);
        let n = MIRROR_RUNS as u64 + 10;
        parent.map(anon(BASE, 2 * n, RW));
        // Every other page: no two are neighbours, so each is a run of its own.
        for i in 0..n {
            write_u64(&parent, BASE + 2 * i * PAGE, i);
        }
        parent.take_stub_ops();
        let child = parent.fork(2, None);
        let ops = child.take_stub_ops();
        assert_eq!(ops.len(), MIRROR_RUNS, "{ops:?}");
        let left: Vec<u64> = (0..n).filter(|i| pte(&child, BASE + 2 * i * PAGE).unwrap().stub_prot == 0).collect();
        assert_eq!(left.len(), 10);
        for i in left {
            assert_eq!(read_u64(&child, BASE + 2 * i * PAGE), i);
            child.fault(BASE + 2 * i * PAGE, Access::Read).unwrap();
            assert_ne!(pte(&child, BASE + 2 * i * PAGE).unwrap().stub_prot, 0);
        }
        drop(child);
    }
    all_free(&pm);
}

#[test]
fn shared_anonymous_memory_stays_shared_across_fork() {
    let pm = physmem();
    {
        let mut parent = space(&pm);
        parent.map(shared_anon(&pm, BASE, 1, RW));
        write_u64(&parent, BASE, 5);
        let child = parent.fork(2, None);
        assert!(!pte(&child, BASE).unwrap().cow);
        write_u64(&child, BASE, 6);
        assert_eq!(read_u64(&parent, BASE), 6);
        assert_eq!(parent.find(BASE).unwrap().perms(), "rw-s");
    }
    all_free(&pm);
}

#[test]
fn munmap_and_mprotect_split_entries() {
    let pm = physmem();
    let file = MemFile::new(8 * usize_of(PAGE), 0);
    {
        let mut vm = space(&pm);
        vm.map(anon(BASE, 4, RW));
        for i in 0..4 {
            vm.fault(BASE + i * PAGE, Access::Write).unwrap();
        }
        vm.take_stub_ops();
        // mprotect of the middle: three entries, and the stub loses the pages it had with
        // more access than is allowed now.
        vm.protect(BASE + PAGE, BASE + 3 * PAGE, PROT_READ).unwrap();
        let shape: Vec<(u64, u64, u32)> = vm.entries().map(|e| (e.start, e.end, e.prot)).collect();
        assert_eq!(
            shape,
            vec![
                (BASE, BASE + PAGE, RW),
                (BASE + PAGE, BASE + 3 * PAGE, PROT_READ),
                (BASE + 3 * PAGE, BASE + 4 * PAGE, RW)
            ]
        );
        assert_eq!(vm.take_stub_ops(), vec![StubOp::Unmap { addr: BASE + PAGE, len: 2 * PAGE }]);
        assert_eq!(vm.fault(BASE + PAGE, Access::Write), Err(FaultError::Protection));
        assert_eq!(copyout(&vm, BASE + 2 * PAGE, &[1]), Err(Errno::EFAULT));
        assert_eq!(vm.protect(BASE, BASE + 5 * PAGE, PROT_READ), Err(Errno::ENOMEM), "a hole");
        // munmap of one page in the middle: it is unmapped in the stub, and its page freed
        // once the stub has done so (other threads may reach it until then).
        vm.fault(BASE + PAGE, Access::Read).unwrap();
        vm.take_stub_ops();
        let before = pm.free_pages();
        vm.unmap(BASE + PAGE, BASE + 2 * PAGE);
        assert_eq!(pm.free_pages(), before);
        assert!(vm.unmap_queued());
        assert_eq!(vm.entries().count(), 3);
        assert_eq!(vm.fault(BASE + PAGE, Access::Read), Err(FaultError::NotMapped));
        assert_eq!(vm.take_stub_ops(), vec![StubOp::Unmap { addr: BASE + PAGE, len: PAGE }]);
        assert_eq!(pm.free_pages(), before + 1);
        assert!(!vm.unmap_queued());
        // A file mapping split in two keeps each part's offset into the file.
        vm.map(file_entry(BASE + 16 * PAGE, 4, &file, PAGE));
        vm.unmap(BASE + 17 * PAGE, BASE + 18 * PAGE);
        let tail = vm.find(BASE + 18 * PAGE).unwrap();
        assert_eq!((tail.start, tail.offset()), (BASE + 18 * PAGE, 3 * PAGE));
        let mut b = [0u8; 1];
        copyin(&vm, BASE + 18 * PAGE, &mut b).unwrap();
        assert_eq!(b[0], 4, "file page 3");
    }
    all_free(&pm);
}

#[test]
fn mremap_moves_grows_and_shrinks() {
    let pm = physmem();
    {
        let mut vm = space(&pm);
        vm.map(anon(BASE, 2, RW));
        write_u64(&vm, BASE, 7);
        write_u64(&vm, BASE + PAGE, 8);
        vm.fault(BASE, Access::Write).unwrap();
        vm.take_stub_ops();
        // Move: the data goes along, the old range is gone and unmapped in the stub.
        let to = BASE + 64 * PAGE;
        vm.remap(BASE, 2 * PAGE, to, 3 * PAGE);
        assert_eq!(vm.take_stub_ops(), vec![StubOp::Unmap { addr: BASE, len: 2 * PAGE }]);
        assert_eq!((read_u64(&vm, to), read_u64(&vm, to + PAGE), read_u64(&vm, to + 2 * PAGE)), (7, 8, 0));
        assert_eq!(vm.fault(BASE, Access::Read), Err(FaultError::NotMapped));
        // Grow in place.
        vm.remap(to, 3 * PAGE, to, 5 * PAGE);
        assert!(vm.within_one(to, to + 5 * PAGE));
        write_u64(&vm, to + 4 * PAGE, 9);
        // Shrink: the pages past the new end are freed (once the stub has lost them).
        let before = pm.free_pages();
        vm.remap(to, 5 * PAGE, to, PAGE);
        vm.take_stub_ops();
        assert_eq!(pm.free_pages(), before + 3);
        assert_eq!(read_u64(&vm, to), 7);
        assert_eq!(vm.vsz(), PAGE);
    }
    all_free(&pm);
}

#[test]
fn overcommit_refuses_more_than_memory_and_exhaustion_is_an_error() {
    let pm = physmem();
    {
        let mut vm = space(&pm);
        let all = pm.npages() as u64 * PAGE;
        assert!(vm.overcommit_ok(all));
        assert!(!vm.overcommit_ok(all + PAGE));
        // Committed on touch: a mapping of all of memory is fine until it is touched.
        vm.map(anon(BASE, pm.npages() as u64, RW));
        let mut touched = 0;
        let err = loop {
            match vm.fault(BASE + touched * PAGE, Access::Write) {
                Ok(_) => touched += 1,
                Err(e) => break e,
            }
        };
        assert_eq!(err, FaultError::OutOfMemory);
        assert_eq!(touched, pm.npages() as u64 - 1, "every page but the reserved one");
        assert_eq!(copyout(&vm, BASE + touched * PAGE, &[1]), Err(Errno::EFAULT));
    }
    all_free(&pm);
}

#[test]
fn private_file_mapping_reads_around_and_stops_at_the_end() {
    let pm = physmem();
    let file = MemFile::new(3 * usize_of(PAGE) + 100, 0);
    {
        let mut vm = space(&pm);
        vm.map(file_entry(BASE, 8, &file, 0));
        let mut b = [0u8; 1];
        copyin(&vm, BASE + 3 * PAGE + 99, &mut b).unwrap();
        assert_eq!(b[0], 4);
        copyin(&vm, BASE + 3 * PAGE + 100, &mut b).unwrap();
        assert_eq!(b[0], 0, "zeros after the end of the file, in its last page");
        // The read around brought in the file's other pages, not the ones past its end.
        assert_eq!(vm.rss_pages(), 4);
        assert_eq!(vm.fault(BASE + 4 * PAGE, Access::Read), Err(FaultError::Io), "SIGBUS past the end");
        assert_eq!(vm.fault(BASE, Access::Write), Err(FaultError::Protection));
    }
    all_free(&pm);
}

/// exec's map_cached: the pages of a private file mapping that the file's page cache holds
/// are made resident and mapped in the stub at once, without reading the file; the rest
/// come by faults.
#[test]
fn a_new_image_maps_what_the_page_cache_holds() {
    let pm = physmem();
    {
        let file = MemFile::with_cache(6 * usize_of(PAGE), &pm);
        let cache = file.cache.clone().unwrap();
        let read = |at: u64, buf: &mut [u8]| file.read_at(at, buf);
        for idx in [0, 1, 3] {
            let pa = cache.page(idx, read).unwrap();
            pm.page_unref(pa);
        }
        let reads = file.reads.load(Ordering::SeqCst);
        let mut vm = space(&pm);
        let mut e = file_entry(BASE, 6, &file, 0);
        if let Backing::File { file_len, .. } = &mut e.backing {
            *file_len = 6 * PAGE;
        }
        vm.map(e);
        vm.map_cached();
        assert_eq!(file.reads.load(Ordering::SeqCst), reads, "nothing read");
        assert_eq!(vm.rss_pages(), 3);
        let pages: u64 = vm
            .take_stub_ops()
            .iter()
            .map(|op| match *op {
                StubOp::Map { addr, len, prot, .. } => {
                    assert_eq!(prot, PROT_READ);
                    assert!(addr < BASE + 4 * PAGE && addr + len <= BASE + 4 * PAGE && !(addr..addr + len).contains(&(BASE + 2 * PAGE)));
                    len / PAGE
                }
                StubOp::Unmap { .. } => panic!("an unmap"),
            })
            .sum();
        assert_eq!(pages, 3);
        for (i, want) in [(0, 1), (1, 2), (3, 4)] {
            let p = pte(&vm, BASE + i * PAGE).unwrap();
            assert!(p.cow && p.stub_prot == PROT_READ && Some(p.pa) == cache.lookup(i), "page {i}");
            pm.page_unref(p.pa);
            let mut b = [0u8; 1];
            copyin(&vm, BASE + i * PAGE, &mut b).unwrap();
            assert_eq!(b[0], want);
        }
        // A page not cached comes by a fault (which reads it).
        let mut b = [0u8; 1];
        copyin(&vm, BASE + 2 * PAGE, &mut b).unwrap();
        assert_eq!(b[0], 3);
        assert!(file.reads.load(Ordering::SeqCst) > reads);
        drop(vm);
        drop(cache);
    }
    all_free(&pm);
}

/// A fork child's residue (what the recycled stub still maps): a cached page of its private
/// file mapping at its place, with the protection a fault would give it, enters the child's
/// table as it is mapped; a page the cache no longer has there, another protection, a page
/// past the file's end are unmapped (adopt_cached, then the residue's diff).
#[test]
fn a_child_takes_cached_file_pages_its_stub_still_maps() {
    let pm = physmem();
    {
        let file = MemFile::with_cache(6 * usize_of(PAGE), &pm);
        let cache = file.cache.clone().unwrap();
        let read = |at: u64, buf: &mut [u8]| file.read_at(at, buf);
        for idx in [0, 1, 2, 3, 5] {
            let pa = cache.page(idx, read).unwrap();
            pm.page_unref(pa);
        }
        let other = pm.alloc_page(1, platform::physmem::pgflags::ANON).unwrap();
        let mut vm = space(&pm);
        let mut e = file_entry(BASE, 6, &file, 0);
        if let Backing::File { file_len, .. } = &mut e.backing {
            *file_len = 5 * PAGE;
        }
        vm.map(e);
        // The cache's pages (lookup's references given back at once: the cache holds them).
        let at = |i: u64| {
            let pa = cache.lookup(i).unwrap();
            pm.page_unref(pa);
            pa
        };
        let run = |i: u64, pa: u64, prot: u32| MappedRun { addr: BASE + i * PAGE, len: PAGE, pa, prot };
        let residue = [
            run(0, at(0), PROT_READ),
            run(1, at(1), PROT_READ),
            run(2, other, PROT_READ),              // not the cache's page there
            run(3, at(3), PROT_READ | PROT_EXEC),  // another protection
            run(5, at(5), PROT_READ),              // past the mapping's file length
        ];
        vm.adopt_residue(&residue);
        assert_eq!(vm.rss_pages(), 2);
        for i in [0, 1] {
            let p = pte(&vm, BASE + i * PAGE).unwrap();
            assert!(p.cow && p.stub_prot == PROT_READ && p.pa == at(i), "page {i}");
        }
        for i in [2, 3, 4, 5] {
            assert!(pte(&vm, BASE + i * PAGE).is_none(), "page {i}");
        }
        let ops = vm.take_stub_ops();
        let mut unmapped = Vec::new();
        for op in &ops {
            match *op {
                StubOp::Unmap { addr, len } => unmapped.extend((addr - BASE) / PAGE..(addr + len - BASE) / PAGE),
                StubOp::Map { .. } => panic!("a map: {ops:?}"),
            }
        }
        for i in [2, 3, 5] {
            assert!(unmapped.contains(&i), "page {i} not unmapped: {ops:?}");
        }
        assert!(!unmapped.contains(&0) && !unmapped.contains(&1), "a kept page unmapped: {ops:?}");
        // The kept pages read as the file.
        for (i, want) in [(0, 1), (1, 2)] {
            let mut b = [0u8; 1];
            copyin(&vm, BASE + i * PAGE, &mut b).unwrap();
            assert_eq!(b[0], want);
        }
        drop(vm);
        drop(cache);
        pm.page_unref(other);
    }
    all_free(&pm);
}

#[test]
fn threads_faulting_one_page_end_with_one_page() {
    let pm = physmem();
    let file = MemFile::new(usize_of(PAGE), 2);
    {
        let mut vm = space(&pm);
        vm.map(file_entry(BASE, 1, &file, 0));
        let vm = Arc::new(vm);
        let before = pm.free_pages();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let vm = Arc::clone(&vm);
                std::thread::spawn(move || vm.fault(BASE + 8, Access::Read).unwrap())
            })
            .collect();
        let pas: Vec<u64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert!(file.reads.load(Ordering::SeqCst) >= 2, "the reads overlapped (the race was run)");
        assert!(pas.iter().all(|&pa| pa == pas[0]), "{pas:?}");
        assert_eq!(pm.free_pages(), before - 1, "the losers' pages were freed");
        assert_eq!(vm.rss_pages(), 1);
        let maps = vm.take_stub_ops().iter().filter(|op| matches!(op, StubOp::Map { .. })).count();
        assert!(maps >= 1);
    }
    all_free(&pm);
}

/// A file with a page cache (as ext2's): shared mappings map its cached pages.
#[derive(Debug)]
struct CachedFile {
    file: Arc<MemFile>,
    cache: Arc<crate::vm::pagecache::PageCache>,
}

impl Vnode for CachedFile {
    fn attr(&self) -> Result<Attr, Errno> {
        self.file.attr()
    }

    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        self.file.read_at(off, buf)
    }

    fn page_cache(&self) -> Option<Arc<crate::vm::pagecache::PageCache>> {
        Some(Arc::clone(&self.cache))
    }

    fn get_page(&self, idx: u64) -> Result<u64, Errno> {
        if idx >= (self.file.data.len() as u64).div_ceil(PAGE) {
            return Err(Errno::ENXIO);
        }
        self.cache.page(idx, |off, buf| self.file.read_at(off, buf))
    }

    fn fs(&self) -> FsRef {
        Arc::new(MemFs)
    }
}

#[test]
fn shared_file_pages_are_the_cache_and_writes_mark_them_dirty() {
    let pm = physmem();
    {
        let cache = crate::vm::pagecache::PageCache::with_physmem(Arc::clone(&pm));
        let file: VnodeRef = Arc::new(CachedFile { file: MemFile::new(4 * usize_of(PAGE), 0), cache: Arc::clone(&cache) });
        let shared = |start: u64, offset: u64| MapEntry {
            start,
            end: start + 2 * PAGE,
            prot: RW,
            backing: Backing::SharedFile { vnode: Arc::clone(&file), offset, may_write: true },
            name: "f".into(),
        };
        let (mut a, mut b) = (space(&pm), space(&pm));
        a.map(shared(BASE, PAGE));
        b.map(shared(BASE + 16 * PAGE, PAGE)); // elsewhere, same file pages
        // A read maps the cached page read-only: a store must fault to be seen.
        let pa = a.fault(BASE, Access::Read).unwrap();
        assert!(a.take_stub_ops().contains(&StubOp::Map { addr: BASE, len: PAGE, prot: PROT_READ, pa, populate: true }));
        assert!(!cache.is_dirty());
        // The write's fault marks it dirty and maps it writable.
        assert_eq!(a.fault(BASE, Access::Write).unwrap(), pa);
        assert!(a.take_stub_ops().contains(&StubOp::Map { addr: BASE, len: PAGE, prot: RW, pa, populate: true }));
        assert_eq!(cache.take_dirty().iter().map(|&(i, p)| { pm.page_unref(p); i }).collect::<Vec<_>>(), vec![1]);
        // The other space maps the same page; a kernel write through it (copyout into a
        // page it only read) marks the page dirty too.
        assert_eq!(b.fault(BASE + 16 * PAGE, Access::Read).unwrap(), pa);
        write_u64(&b, BASE + 16 * PAGE + 8, 0x55aa);
        assert_eq!(read_u64(&a, BASE + 8), 0x55aa);
        let other = b.fault(BASE + 17 * PAGE, Access::Read).unwrap();
        let dirty = |c: &crate::vm::pagecache::PageCache| {
            c.take_dirty()
                .into_iter()
                .map(|(i, p)| {
                    pm.page_unref(p);
                    i
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(dirty(&cache), vec![1], "page 1 is still mapped: dirty; page 2 only read");
        write_u64(&b, BASE + 17 * PAGE, 7);
        assert_eq!(dirty(&cache), vec![1, 2]);
        assert_eq!(read_u64(&a, BASE + PAGE), 7);
        assert_eq!(pte(&a, BASE + PAGE).map(|p| p.pa), Some(other));
        // Past the end of the file: SIGBUS.
        let mut c = space(&pm);
        c.map(shared(BASE, 3 * PAGE));
        assert_eq!(c.fault(BASE + PAGE, Access::Read), Err(FaultError::Io));
        for (_, p) in cache.take_dirty() {
            pm.page_unref(p);
        }
        let _ = (a.take_stub_ops(), b.take_stub_ops());
    }
    all_free(&pm);
}

#[path = "faultaround_tests.rs"]
mod faultaround;
