//! Physical memory by use, for `/proc/meminfo`, sysinfo(2) and free(1): the physical
//! allocator's counts by page class ([`PhysMem::class_pages`]). The kernel's reserve (page 0)
//! is not part of the total, as Linux leaves out what the kernel reserved at boot. Also the
//! exported summary of physical memory ([`PHYSMEM`], `vk_physmem`) that vps and ddb use to
//! read `vm_page`s.

use std::sync::atomic::Ordering;

use kvm_mem::abi::PhysmemRecord;
use platform::PAGE_SIZE;
use platform::physmem::{PageClass, PhysMem};

/// Page counts by use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemInfo {
    /// Usable pages (all but the reserved).
    pub total: u64,
    pub free: u64,
    /// Anonymous pages of address spaces.
    pub anon: u64,
    /// Pages holding file data.
    pub file: u64,
    /// Kernel pages (tmpfs data: Linux's Shmem).
    pub kernel: u64,
}

impl MemInfo {
    /// Count now.
    pub fn now() -> MemInfo {
        let Some(pm) = platform::physmem::get() else { return MemInfo::default() };
        let total = pm.usable_pages();
        MemInfo {
            total,
            // The free list's own count (a page leaving it is not yet flagged).
            free: pm.free_pages().min(total),
            anon: pm.class_pages(PageClass::Anon),
            file: pm.class_pages(PageClass::File),
            kernel: pm.class_pages(PageClass::Kernel),
        }
    }

    /// Pages to kB.
    pub fn kb(pages: u64) -> u64 {
        pages * (PAGE_SIZE as u64 / 1024)
    }
}

/// Memory events since boot (/proc/vmstat's counters).
#[derive(Debug)]
pub struct VmEvents {
    /// Page faults of guest programs (each fault the kernel handled, resolved or not).
    pub pgfault: std::sync::atomic::AtomicU64,
    /// Faults that read a page from a file (vk has no page cache: every first touch of a
    /// privately mapped file page).
    pub pgmajfault: std::sync::atomic::AtomicU64,
    /// Processes killed for want of physical memory.
    pub oom_kill: std::sync::atomic::AtomicU64,
}

pub static VM_EVENTS: VmEvents = VmEvents {
    pgfault: std::sync::atomic::AtomicU64::new(0),
    pgmajfault: std::sync::atomic::AtomicU64::new(0),
    oom_kill: std::sync::atomic::AtomicU64::new(0),
};

/// Physical memory as host tools see it: direct-map base, size, the vm_page array.
pub static PHYSMEM: PhysmemRecord = PhysmemRecord::new();

/// Fill [`PHYSMEM`] at boot.
pub fn publish_physmem(pm: &PhysMem) {
    let (vm_page, npages) = pm.vm_page_array();
    PHYSMEM.dmap_base.store(platform::physmem::DMAP_BASE, Ordering::Relaxed);
    PHYSMEM.size.store(pm.size(), Ordering::Relaxed);
    PHYSMEM.vm_page.store(vm_page, Ordering::Relaxed);
    PHYSMEM.npages.store(npages, Ordering::Relaxed);
    PHYSMEM.vm_page_size.store(u64::from(platform::physmem::VM_PAGE_LAYOUT.0), Ordering::Relaxed);
    PHYSMEM.free_pages.store(pm.free_pages(), Ordering::Relaxed);
}
