//! The introspection roots: `#[no_mangle]` statics that host tools (`vps`, dump readers) find
//! by name in the kernel's ELF, and that ddb reads through the same reader. This module only
//! exports: the layout descriptor is its own, every other root is a pointer to a record that
//! the owning module keeps.
//!
//! This is the only module of the kernel with `unsafe_code` allowed, and only for
//! `#[unsafe(no_mangle)]`: an exported symbol name is an ABI promise, which Rust marks unsafe.
//! The records themselves are atomics, written with ordinary safe stores. Their layout is
//! described by `vk_layout` (see `kvm_mem::abi`).
#![expect(unsafe_code, reason = "no_mangle statics are the exported introspection roots")]
#![allow(non_upper_case_globals, reason = "root names follow the C/libkvm convention")]

use std::sync::atomic::{AtomicU32, AtomicU64};

use kvm_mem::abi::{Layout, MAXCPU, MsgBufRecord, PcbLayout, PcpuRecord, PhysmemRecord, VmPageLayout};
use platform::kthread::{PCB_ON_CPU_OFFSET, PCB_RSP_OFFSET, SWITCHFRAME_RBP, SWITCHFRAME_RIP, SWITCHFRAME_SIZE};
use platform::physmem::VM_PAGE_LAYOUT;

/// The layout descriptor: record sizes and field offsets.
#[unsafe(no_mangle)]
pub static vk_layout: Layout = Layout::new(
    PcbLayout {
        rsp: PCB_RSP_OFFSET,
        on_cpu: PCB_ON_CPU_OFFSET,
        frame_rbp: SWITCHFRAME_RBP,
        frame_rip: SWITCHFRAME_RIP,
        frame_size: SWITCHFRAME_SIZE,
    },
    VmPageLayout { size: VM_PAGE_LAYOUT.0, flags: VM_PAGE_LAYOUT.1, refcount: VM_PAGE_LAYOUT.2, owner: VM_PAGE_LAYOUT.3 },
);

/// The roots below point at statics owned by the modules that keep them (`kern::proc`,
/// `kern::pcpu`, `kern::printf`, `kern::clock`, `vm::meminfo`): each exported symbol holds
/// the address of its record, which a reader dereferences once (see `kvm_mem::kvm`).
///
/// Head of allproc: the address of the first process record (sorted by pid).
#[unsafe(no_mangle)]
pub static vk_allproc: &AtomicU64 = &crate::kern::proc::ALLPROC_HEAD;

/// Per-CPU records.
#[unsafe(no_mangle)]
pub static vk_pcpu: &[PcpuRecord; MAXCPU] = &crate::kern::pcpu::PCPU;

/// CPUs started.
#[unsafe(no_mangle)]
pub static vk_ncpus: &AtomicU32 = &crate::kern::pcpu::NCPUS;

/// The console message buffer.
#[unsafe(no_mangle)]
pub static vk_msgbuf: &MsgBufRecord = &crate::kern::printf::MSGBUF;

/// Realtime clock at boot, ns since the epoch.
#[unsafe(no_mangle)]
pub static vk_boottime_ns: &AtomicU64 = &crate::kern::clock::BOOTTIME_NS;

/// Physical memory and the vm_page array.
#[unsafe(no_mangle)]
pub static vk_physmem: &PhysmemRecord = &crate::vm::meminfo::PHYSMEM;

/// The roots' runtime addresses (the records themselves), for the kernel's own reader (ddb).
///
/// Each root is read through its own address (`black_box`): the compiler would otherwise use
/// the constant it holds, nothing would refer to the symbol, and the linker would drop it —
/// and with it what vps looks up.
pub fn roots() -> kvm_mem::Roots {
    use std::hint::black_box;
    kvm_mem::Roots {
        layout: black_box(&vk_layout) as *const Layout as u64,
        allproc: *black_box(&vk_allproc) as *const AtomicU64 as u64,
        pcpu: black_box(&vk_pcpu).as_ptr() as u64,
        ncpus: *black_box(&vk_ncpus) as *const AtomicU32 as u64,
        msgbuf: *black_box(&vk_msgbuf) as *const MsgBufRecord as u64,
        boottime_ns: *black_box(&vk_boottime_ns) as *const AtomicU64 as u64,
        physmem: *black_box(&vk_physmem) as *const PhysmemRecord as u64,
    }
}

#[cfg(test)]
mod tests {
    /// The platform saves trap frames in the exported register order; the two lists are kept
    /// in two crates (platform may not depend on kvm-mem), so pin them together here.
    #[test]
    fn trap_frame_register_order_matches_the_abi() {
        assert_eq!(platform::trap::TF_NREGS, kvm_mem::abi::TF_NREGS);
        assert_eq!(platform::trap::reg::NAMES, kvm_mem::abi::reg::NAMES);
        assert_eq!(platform::trap::reg::RIP, kvm_mem::abi::reg::RIP);
        assert_eq!(platform::trap::reg::SIGNO, kvm_mem::abi::reg::SIGNO);
    }

    #[test]
    fn vm_page_flags_match_the_abi() {
        use kvm_mem::abi::pgflags as abi;
        use platform::physmem::pgflags as pf;
        assert_eq!(
            [pf::FREE, pf::RESERVED, pf::ANON, pf::FILE, pf::KERNEL, pf::ZEROED],
            [abi::FREE, abi::RESERVED, abi::ANON, abi::FILE, abi::KERNEL, abi::ZEROED]
        );
        assert_eq!(platform::PAGE_SIZE as u64, kvm_mem::abi::PAGE_SIZE);
    }

    #[test]
    fn the_layout_describes_the_platform_pcb() {
        let l = &super::vk_layout;
        assert_eq!(l.pcb.rsp, platform::kthread::PCB_RSP_OFFSET);
        assert_eq!(l.pcb.frame_rip, platform::kthread::SWITCHFRAME_RIP);
        assert_eq!(l.magic, kvm_mem::abi::LAYOUT_MAGIC);
    }
}
