//! The introspection roots: `#[no_mangle]` statics that host tools (`vps`, dump readers) find
//! by name in the kernel's ELF, and that ddb reads through the same reader.
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

/// Address of the first process record (allproc, sorted by pid).
#[unsafe(no_mangle)]
pub static vk_allproc: AtomicU64 = AtomicU64::new(0);

/// Per-CPU records.
#[unsafe(no_mangle)]
pub static vk_pcpu: [PcpuRecord; MAXCPU] = {
    let mut arr = [const { PcpuRecord::new(0) }; MAXCPU];
    let mut i = 0;
    while i < MAXCPU {
        arr[i] = PcpuRecord::new(i as u32);
        i += 1;
    }
    arr
};

/// CPUs started.
#[unsafe(no_mangle)]
pub static vk_ncpus: AtomicU32 = AtomicU32::new(0);

/// The console message buffer.
#[unsafe(no_mangle)]
pub static vk_msgbuf: MsgBufRecord = MsgBufRecord::new();

/// Realtime clock at boot, ns since the epoch.
#[unsafe(no_mangle)]
pub static vk_boottime_ns: AtomicU64 = AtomicU64::new(0);

/// Physical memory and the vm_page array.
#[unsafe(no_mangle)]
pub static vk_physmem: PhysmemRecord = PhysmemRecord::new();

/// The roots' runtime addresses, for the kernel's own reader (ddb).
pub fn roots() -> kvm_mem::Roots {
    kvm_mem::Roots {
        layout: &vk_layout as *const Layout as u64,
        allproc: &vk_allproc as *const AtomicU64 as u64,
        pcpu: vk_pcpu.as_ptr() as u64,
        ncpus: &vk_ncpus as *const AtomicU32 as u64,
        msgbuf: &vk_msgbuf as *const MsgBufRecord as u64,
        boottime_ns: &vk_boottime_ns as *const AtomicU64 as u64,
        physmem: &vk_physmem as *const PhysmemRecord as u64,
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
    fn the_layout_describes_the_platform_pcb() {
        let l = &super::vk_layout;
        assert_eq!(l.pcb.rsp, platform::kthread::PCB_RSP_OFFSET);
        assert_eq!(l.pcb.frame_rip, platform::kthread::SWITCHFRAME_RIP);
        assert_eq!(l.magic, kvm_mem::abi::LAYOUT_MAGIC);
    }
}
