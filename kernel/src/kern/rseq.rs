//! Restartable sequences (rseq(2), after Linux's kernel/rseq.c): a thread registers a
//! `struct rseq` area; the kernel keeps its CPU number there, and when the thread is
//! interrupted inside a critical section its `rseq_cs` describes, the thread resumes at the
//! section's abort address instead.
//!
//! In vk a guest thread holds its vCPU for as long as its code runs in the stub, so no other
//! guest thread runs on that CPU number meanwhile: per-CPU data indexed by `cpu_id` stays
//! private between two returns to the kernel, as on Linux. Every return from the kernel
//! (a system call, a fault, a preemption) may have let another thread run or moved this one,
//! so the critical section is checked then, and before a signal frame is built
//! ([`fixup`]) — more often than Linux, which checks only after a preemption, migration or
//! signal; a section must not make system calls, and restarting one that faulted is what
//! Linux does too. The CPU number is written before the thread runs when it changed
//! ([`update_cpu`]). A bad `rseq_cs` (or a signature mismatch) is SIGSEGV.

use std::sync::atomic::{AtomicU32, Ordering};

use platform::stub::UserRegs;
use platform::stub::layout::USER_END;
use platform::sync::SpinLock;

use crate::abi::rseq::{
    ORIG_RSEQ_SIZE, RSEQ_ALIGN, RSEQ_CPU_ID_START_OFF, RSEQ_CPU_ID_UNINITIALIZED, RSEQ_CS_OFF, RSEQ_FEATURE_SIZE,
    RSEQ_NODE_ID_OFF, RseqCs, RseqIds, RseqNodeCid,
};
use crate::kern::errno::Errno;
use crate::vm::space::{AddressSpace, VmMap};
use crate::vm::uaccess::{self, UserPtr};

/// `struct rseq`'s flags word (deprecated: must be 0).
const RSEQ_FLAGS_OFF: u64 = 16;

/// A thread's registered area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registration {
    pub addr: u64,
    pub len: u32,
    pub sig: u32,
}

/// A guest thread's rseq state.
#[derive(Debug)]
pub struct RseqState {
    reg: SpinLock<Option<Registration>>,
    /// The CPU number last written to the area (u32::MAX: none yet).
    cpu_written: AtomicU32,
}

impl Default for RseqState {
    fn default() -> Self {
        RseqState { reg: SpinLock::new("rseq", None), cpu_written: AtomicU32::new(u32::MAX) }
    }
}

impl RseqState {
    pub fn get(&self) -> Option<Registration> {
        *self.reg.lock()
    }

    /// fork without CLONE_VM: the child's copy of the memory has the same area (Linux's
    /// rseq_fork); its CPU number is written before it first runs.
    pub fn inherit(&self, parent: &RseqState) {
        *self.reg.lock() = parent.get();
        self.cpu_written.store(u32::MAX, Ordering::Relaxed);
    }

    /// exec: the new image has registered nothing.
    pub fn clear(&self) {
        *self.reg.lock() = None;
        self.cpu_written.store(u32::MAX, Ordering::Relaxed);
    }

    /// rseq(2) registration, with Linux's checks: EBUSY for the same area again, EINVAL for
    /// another (EPERM with another signature), EINVAL for a bad length or alignment.
    pub fn register(&self, vm: &AddressSpace, addr: u64, len: u32, sig: u32) -> Result<(), Errno> {
        if let Some(r) = self.get() {
            if r.addr != addr || r.len != len {
                return Err(Errno::EINVAL);
            }
            return Err(if r.sig != sig { Errno::EPERM } else { Errno::EBUSY });
        }
        let align = u64::from(if len == ORIG_RSEQ_SIZE { ORIG_RSEQ_SIZE } else { RSEQ_ALIGN });
        if len < ORIG_RSEQ_SIZE || !addr.is_multiple_of(align) || (len != ORIG_RSEQ_SIZE && len < RSEQ_FEATURE_SIZE) {
            return Err(Errno::EINVAL);
        }
        if addr.checked_add(u64::from(len)).is_none_or(|end| end > USER_END) {
            return Err(Errno::EFAULT);
        }
        *self.reg.lock() = Some(Registration { addr, len, sig });
        // The ids are there when the call returns (Linux: rseq_set_notify_resume).
        self.cpu_written.store(u32::MAX, Ordering::Relaxed);
        self.write_cpu(vm, platform::cpu::curcpu())
    }

    /// rseq(2) with RSEQ_FLAG_UNREGISTER: the same area, length and signature (EINVAL, EPERM);
    /// the ids are reset as Linux resets them.
    pub fn unregister(&self, vm: &AddressSpace, addr: u64, len: u32, sig: u32) -> Result<(), Errno> {
        // Only this thread changes its registration, so it cannot change between the check
        // and the clear; the writes may fault pages in, which no spin lock may be held over.
        let r = self.get().filter(|r| r.addr == addr).ok_or(Errno::EINVAL)?;
        if r.len != len {
            return Err(Errno::EINVAL);
        }
        if r.sig != sig {
            return Err(Errno::EPERM);
        }
        let ids = RseqIds { cpu_id_start: 0, cpu_id: RSEQ_CPU_ID_UNINITIALIZED };
        uaccess::write(vm, UserPtr::new(addr + RSEQ_CPU_ID_START_OFF), &ids)?;
        uaccess::write(vm, UserPtr::new(addr + RSEQ_NODE_ID_OFF), &RseqNodeCid::default())?;
        self.clear();
        Ok(())
    }

    /// Write `cpu` into the registered area: cpu_id_start, cpu_id, node_id 0 (one node) and
    /// mm_cid (the CPU number: unique among the threads running at once, and below the
    /// number of CPUs).
    fn write_cpu(&self, vm: &AddressSpace, cpu: u32) -> Result<(), Errno> {
        let Some(r) = self.get() else { return Ok(()) };
        uaccess::write(vm, UserPtr::new(r.addr + RSEQ_CPU_ID_START_OFF), &RseqIds { cpu_id_start: cpu, cpu_id: cpu })?;
        uaccess::write(vm, UserPtr::new(r.addr + RSEQ_NODE_ID_OFF), &RseqNodeCid { node_id: 0, mm_cid: cpu })?;
        self.cpu_written.store(cpu, Ordering::Relaxed);
        Ok(())
    }

    /// Before the thread runs on `cpu`: write the CPU number if it changed (EFAULT when the
    /// area is gone: the caller forces SIGSEGV).
    pub fn update_cpu(&self, vm_of: impl FnOnce() -> std::sync::Arc<VmMap>, cpu: u32) -> Result<(), Errno> {
        if self.cpu_written.load(Ordering::Relaxed) == cpu {
            return Ok(());
        }
        if self.get().is_none() {
            // Nothing to write: noted as written, so the next return takes no lock (a
            // registration, inherit and clear set it back to "not written").
            self.cpu_written.store(cpu, Ordering::Relaxed);
            return Ok(());
        }
        let vm = vm_of();
        let g = vm.read();
        self.write_cpu(&g, cpu)
    }

    /// After a return to the kernel, before a signal frame or the guest: if the thread was in
    /// the critical section its `rseq_cs` names, move it to the abort address; clear
    /// `rseq_cs` (rseq_ip_fixup). EFAULT or EINVAL: the caller forces SIGSEGV.
    pub fn fixup(&self, vm: &AddressSpace, regs: &mut UserRegs) -> Result<(), Errno> {
        let Some(r) = self.get() else { return Ok(()) };
        let cs_slot = UserPtr::<u64>::new(r.addr + RSEQ_CS_OFF);
        let cs_addr = uaccess::read(vm, cs_slot)?;
        if cs_addr == 0 {
            return Ok(());
        }
        let cs = read_cs(vm, cs_addr, r.sig)?;
        let ip = regs.rip();
        if ip.wrapping_sub(cs.start_ip) >= cs.post_commit_offset {
            // Not inside: the descriptor is stale (Linux clears it).
            return uaccess::write(vm, cs_slot, &0u64);
        }
        // The restart-behaviour flags are deprecated; Linux refuses any.
        let flags: u32 = uaccess::read(vm, UserPtr::new(r.addr + RSEQ_FLAGS_OFF))?;
        if cs.flags != 0 || flags != 0 {
            return Err(Errno::EINVAL);
        }
        uaccess::write(vm, cs_slot, &0u64)?;
        regs.set_rip(cs.abort_ip);
        Ok(())
    }
}

/// Read and check a `struct rseq_cs` (rseq_get_rseq_cs): inside user space, version 0, the
/// abort address outside the section and preceded by the registered signature.
fn read_cs(vm: &AddressSpace, addr: u64, sig: u32) -> Result<RseqCs, Errno> {
    if addr >= USER_END {
        return Err(Errno::EINVAL);
    }
    let cs: RseqCs = uaccess::read(vm, UserPtr::new(addr))?;
    let end = cs.start_ip.checked_add(cs.post_commit_offset).ok_or(Errno::EINVAL)?;
    if cs.start_ip >= USER_END || end >= USER_END || cs.abort_ip >= USER_END || cs.version > 0 {
        return Err(Errno::EINVAL);
    }
    if cs.abort_ip.wrapping_sub(cs.start_ip) < cs.post_commit_offset || cs.abort_ip < 4 {
        return Err(Errno::EINVAL);
    }
    let found: u32 = uaccess::read(vm, UserPtr::new(cs.abort_ip - 4))?;
    if found != sig {
        return Err(Errno::EINVAL);
    }
    Ok(cs)
}
