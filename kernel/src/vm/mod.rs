//! Virtual memory: guest address spaces kept in software and mirrored into stub processes.
//!
//! | file        | what it is                                                              |
//! |-------------|--------------------------------------------------------------------------|
//! | `space.rs`  | `AddressSpace`: the map, the page table, faults, copy-on-write, fork, its locking |
//! | `entry.rs`  | map entries and what backs them (anonymous, file, shared object)         |
//! | `faultaround.rs` | fault-around: sequential first touches, `vm.faultaround`, its counters |
//! | `uaccess.rs`| copyin/copyout through the page table and the direct map (EFAULT, never a fault) |
//! | `meminfo.rs`| physical pages by use (/proc/meminfo, sysinfo); /proc/vmstat's event counts |
//! | `pagecache.rs` | a file's memory object: its resident pages (the page cache), reclaim  |
//! | `ranges.rs` | `RangeMap`: attributes of page ranges kept beside the mappings            |
//! | `inherit.rs`| what fork does with a range: MADV_DONTFORK, MADV_WIPEONFORK              |
//! | `mlock.rs`  | locked ranges (mlock, mlockall, MAP_LOCKED): populated, counted in VmLck |
//! | `residue.rs`| what a recycled stub keeps mapped from its last process for its next fork |
//! | `space_tests.rs` | unit tests of `AddressSpace` on a scratch physical memory, stub operations recorded |
//!
//! Physical pages come from `platform::physmem` — the machine's memory, or whatever
//! `PhysMem` an address space was made with (`AddressSpace::with_physmem`: the unit tests'
//! seam, so they need neither the global memory nor a stub); a resident page is mapped in the
//! stub as `mmap(MAP_SHARED|MAP_FIXED, physmem fd, pa)`, so a page the kernel writes through
//! the direct map is the page the guest sees.

pub mod entry;
pub mod faultaround;
pub mod inherit;
pub mod meminfo;
pub mod mlock;
pub mod pagecache;
pub mod ranges;
pub mod residue;
pub mod space;
pub mod uaccess;
