//! Unit tests of fault-around ([`crate::vm::faultaround`]): runs of private anonymous pages
//! on sequential first touches, what bounds them, what munmap, MADV_DONTNEED and fork do with
//! the pages mapped ahead, and a shared file's cached neighbours.

use super::*;

/// The guest touches pages `first..first + n` of `vm` one after another, each faulting only
/// when not resident yet (as the stub would): how many faults it took.
fn touch(vm: &AddressSpace, first: u64, n: u64, access: Access) -> u64 {
    let mut faults = 0;
    for i in first..first + n {
        if pte(vm, BASE + i * PAGE).is_none() {
            vm.user_fault(BASE + i * PAGE, access).expect("fault");
            faults += 1;
        }
    }
    faults
}

#[test]
fn sequential_touches_map_doubling_runs_of_zeros() {
    let pm = physmem();
    {
        let mut vm = space(&pm);
        vm.faultaround = 16;
        vm.map(anon(BASE, 64, RW));
        let before = crate::vm::faultaround::AROUND_ANON.load(Ordering::Relaxed);
        // 1 + 2 + 4 + 8 + 16 + 16 + 16 = 63: seven faults, then the last page. Each fault's
        // page and the run after it go to the stub to be populated (the guest touches them
        // next), in ascending order: one mmap (and one populate for a run) when physically
        // contiguous (a fresh memory is).
        let mut faults = 0;
        for i in 0..64 {
            if pte(&vm, BASE + i * PAGE).is_none() {
                vm.user_fault(BASE + i * PAGE, Access::Write).expect("fault");
                faults += 1;
                let ops = vm.take_stub_ops();
                assert!(ops.iter().all(|op| matches!(op, StubOp::Map { populate: true, .. })), "{ops:?}");
                let ops = stub_ops(ops);
                let run = i > 0 && i < 63; // the first and the last fault are one page
                let host = usize::from(run && platform::stub::populate_works());
                assert_eq!((ops.maps(), ops.populates()), (1, host), "fault at page {i}");
            }
        }
        assert_eq!(faults, 8);
        assert_eq!(vm.rss_pages(), 64);
        assert!(crate::vm::faultaround::AROUND_ANON.load(Ordering::Relaxed) - before >= 56);
        for i in 0..64 {
            assert_eq!(read_u64(&vm, BASE + i * PAGE + 8), 0, "page {i} is zeros");
            assert_eq!(pte(&vm, BASE + i * PAGE).map(|p| (p.cow, p.stub_prot)), Some((false, RW)));
        }
    }
    all_free(&pm);
}

#[test]
fn a_run_stops_at_a_resident_page_and_at_the_mapping_end() {
    let pm = physmem();
    {
        let mut vm = space(&pm);
        vm.faultaround = 16;
        vm.map(anon(BASE, 10, RW));
        write_u64(&vm, BASE + 5 * PAGE, 0x77); // resident already (a kernel write)
        assert_eq!(vm.rss_pages(), 1, "a kernel access brings in only its page");
        touch(&vm, 0, 3, Access::Write); // pages 0, 1 + 2
        vm.user_fault(BASE + 3 * PAGE, Access::Write).unwrap(); // wants 4: stops before 5
        assert_eq!(vm.resident_addrs(BASE, BASE + 10 * PAGE).len(), 6);
        assert_eq!(read_u64(&vm, BASE + 5 * PAGE), 0x77, "a resident page is never replaced");
        vm.user_fault(BASE + 6 * PAGE, Access::Write).unwrap(); // not sequential: 1
        vm.user_fault(BASE + 7 * PAGE, Access::Write).unwrap(); // 7 + 8
        assert_eq!(vm.rss_pages(), 9);
        vm.user_fault(BASE + 9 * PAGE, Access::Write).unwrap(); // wants 4: the mapping ends
        assert_eq!(vm.rss_pages(), 10);
        assert_eq!(vm.user_fault(BASE + 10 * PAGE, Access::Write), Err(FaultError::NotMapped));
        vm.take_stub_ops();
    }
    all_free(&pm);
}

#[test]
fn off_nohugepage_random_and_file_memory_fault_page_by_page() {
    let pm = physmem();
    {
        // vm.faultaround=1: off.
        let mut vm = space(&pm);
        vm.faultaround = 1;
        vm.map(anon(BASE, 32, RW));
        assert_eq!(touch(&vm, 0, 32, Access::Write), 32);
        // MADV_NOHUGEPAGE over part of a mapping: no run reaches into it.
        let mut vm = space(&pm);
        vm.faultaround = 16;
        vm.map(anon(BASE, 32, RW));
        vm.nofaultaround.set(BASE + 8 * PAGE, BASE + 32 * PAGE, Some(()));
        touch(&vm, 0, 8, Access::Write);
        assert_eq!(vm.rss_pages(), 8, "the run stops where MADV_NOHUGEPAGE starts");
        assert_eq!(touch(&vm, 8, 24, Access::Write), 24);
        // Locked on fault: its pages count as they are touched, one by one.
        let mut vm = space(&pm);
        vm.faultaround = 16;
        vm.map(anon(BASE, 32, RW));
        vm.locked.set(BASE, BASE + 32 * PAGE, Some(crate::vm::mlock::Lock::OnFault));
        assert_eq!(touch(&vm, 0, 32, Access::Write), 32);
        // A mapping's first page starts no run, even just above where one ended.
        let mut vm = space(&pm);
        vm.faultaround = 16;
        vm.map(anon(BASE, 4, RW));
        vm.map(anon(BASE + 4 * PAGE, 4, RW));
        touch(&vm, 0, 4, Access::Write);
        vm.user_fault(BASE + 4 * PAGE, Access::Write).unwrap();
        assert_eq!(vm.rss_pages(), 5);
        // A stride is not sequential.
        let mut vm = space(&pm);
        vm.faultaround = 16;
        vm.map(anon(BASE, 64, RW));
        for i in (0..64).step_by(2) {
            vm.user_fault(BASE + i * PAGE, Access::Write).unwrap();
        }
        assert_eq!(vm.rss_pages(), 32);
        // Kernel accesses (copyout) never run ahead.
        let mut vm = space(&pm);
        vm.faultaround = 16;
        vm.map(anon(BASE, 32, RW));
        copyout(&vm, BASE, &vec![1u8; usize_of(8 * PAGE)]).unwrap();
        assert_eq!(vm.rss_pages(), 8);
        // Shared anonymous memory: page by page.
        let mut vm = space(&pm);
        vm.faultaround = 16;
        let object = SharedObject::with_physmem(Arc::clone(&pm));
        vm.map(MapEntry {
            start: BASE,
            end: BASE + 32 * PAGE,
            prot: RW,
            backing: Backing::Shared { object, offset: 0 },
            name: Vec::new(),
        });
        assert_eq!(touch(&vm, 0, 32, Access::Write), 32);
    }
    all_free(&pm);
}

#[test]
fn no_run_when_free_memory_is_low() {
    let pm = physmem();
    {
        let mut vm = space(&pm);
        vm.faultaround = 16;
        vm.map(anon(BASE, 64, RW));
        // Take all but the low mark (1/32 of memory).
        let low = pm.npages() as u64 / 32;
        let mut held = Vec::new();
        while pm.free_pages() > low {
            held.push(pm.alloc_page(9, pgflags::ANON).unwrap());
        }
        assert_eq!(touch(&vm, 0, 16, Access::Write), 16, "page by page while memory is low");
        for pa in held {
            pm.page_unref(pa);
        }
        assert!(touch(&vm, 16, 48, Access::Write) < 48, "runs again once memory is back");
        vm.take_stub_ops();
    }
    all_free(&pm);
}

#[test]
fn munmap_dontneed_and_fork_of_pages_mapped_ahead() {
    let pm = physmem();
    {
        let mut vm = space(&pm);
        vm.faultaround = 16;
        vm.map(anon(BASE, 32, RW));
        touch(&vm, 0, 8, Access::Write); // 1 + 2 + 4 + a run of 8 from page 7: 15 resident
        assert_eq!(vm.rss_pages(), 15);
        vm.take_stub_ops();
        // munmap of the middle of a run: its pages go, the stub unmaps them, the rest stay.
        vm.unmap(BASE + 9 * PAGE, BASE + 11 * PAGE);
        assert_eq!(vm.take_stub_ops(), vec![StubOp::Unmap { addr: BASE + 9 * PAGE, len: 2 * PAGE }]);
        assert_eq!(vm.rss_pages(), 13);
        assert_eq!(vm.user_fault(BASE + 10 * PAGE, Access::Read), Err(FaultError::NotMapped));
        // MADV_DONTNEED of pages mapped ahead: zeros again on the next touch.
        write_u64(&vm, BASE + 12 * PAGE, 5);
        vm.dontneed(BASE + 12 * PAGE, BASE + 14 * PAGE);
        assert_eq!(vm.rss_pages(), 11);
        assert_eq!(read_u64(&vm, BASE + 12 * PAGE), 0);
        // Fork: pages mapped ahead are private pages like any other, copy-on-write in both.
        write_u64(&vm, BASE + 8 * PAGE, 1);
        let child = vm.fork(2, None);
        assert!(pte(&vm, BASE + 8 * PAGE).unwrap().cow && pte(&child, BASE + 14 * PAGE).unwrap().cow);
        write_u64(&child, BASE + 8 * PAGE, 2);
        write_u64(&vm, BASE + 14 * PAGE, 3);
        assert_eq!((read_u64(&vm, BASE + 8 * PAGE), read_u64(&child, BASE + 8 * PAGE)), (1, 2));
        assert_eq!((read_u64(&vm, BASE + 14 * PAGE), read_u64(&child, BASE + 14 * PAGE)), (3, 0));
        // The child's own sequential faults run ahead in its own space.
        child.user_fault(BASE + 16 * PAGE, Access::Write).unwrap();
        child.user_fault(BASE + 17 * PAGE, Access::Write).unwrap();
        assert!(child.rss_pages() > vm.rss_pages() + 1);
        let _ = (vm.take_stub_ops(), child.take_stub_ops());
        drop(child);
    }
    all_free(&pm);
}

#[test]
fn a_read_of_a_shared_file_maps_its_cached_neighbours_read_only_without_io() {
    let pm = physmem();
    {
        let file = MemFile::with_cache(8 * usize_of(PAGE), &pm);
        let cache = file.cache.clone().unwrap();
        let shared = |vnode: VnodeRef, prot: u32| MapEntry {
            start: BASE,
            end: BASE + 8 * PAGE,
            prot,
            backing: Backing::SharedFile { vnode, offset: 0, may_write: true },
            name: "f".into(),
        };
        // Pages 2 and 5 are cached (read(2) brought them in).
        for idx in [2, 5] {
            let pa = file.get_page(idx).unwrap();
            pm.page_unref(pa);
        }
        let reads = file.reads.load(Ordering::SeqCst);
        let mut vm = space(&pm);
        vm.faultaround = 16;
        vm.map(shared(Arc::clone(&file) as VnodeRef, RW));
        let pa = vm.user_fault(BASE, Access::Read).unwrap();
        assert_eq!(file.reads.load(Ordering::SeqCst), reads + 1, "only the faulting page is read");
        assert_eq!(vm.resident_addrs(BASE, BASE + 8 * PAGE), vec![BASE, BASE + 2 * PAGE, BASE + 5 * PAGE]);
        let ops = vm.take_stub_ops();
        for (page, p) in [(0, pa), (2, cache.lookup(2).unwrap()), (5, cache.lookup(5).unwrap())] {
            // Read-only: a written-back mapping's write must fault to mark the page dirty.
            // The faulting page populated (touched next), its neighbours not.
            let populate = page == 0;
            assert!(ops.contains(&StubOp::Map { addr: BASE + page * PAGE, len: PAGE, prot: PROT_READ, pa: p, populate }), "{ops:?}");
            if page != 0 {
                pm.page_unref(p); // lookup's reference
            }
        }
        assert!(!cache.is_dirty());
        write_u64(&vm, BASE + 5 * PAGE, 1);
        assert_eq!(cache.take_dirty().into_iter().map(|(i, p)| { pm.page_unref(p); i }).collect::<Vec<_>>(), vec![5]);
        // Off: only the faulting page.
        let mut off = space(&pm);
        off.faultaround = 1;
        off.map(shared(Arc::clone(&file) as VnodeRef, PROT_READ));
        off.user_fault(BASE + 3 * PAGE, Access::Read).unwrap();
        assert_eq!(off.rss_pages(), 1);
        let _ = (vm.take_stub_ops(), off.take_stub_ops());
        drop((vm, off));
        for (_, p) in cache.take_dirty() {
            pm.page_unref(p);
        }
    }
    all_free(&pm);
}
