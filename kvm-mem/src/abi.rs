//! The introspection ABI: what the kernel exports for readers outside its own Rust types.
//!
//! Like BSD's libkvm, a reader (vps, ddb's `ps`, a dump reader) finds the kernel's roots by
//! symbol name in the kernel ELF and reads plain records from its memory. Nothing here is a
//! Rust type a reader must share with the kernel: the kernel exports a [`Layout`] descriptor
//! (`vk_layout`) holding the size of each record and the offset of every field, computed with
//! `core::mem::offset_of!`, and readers go through those offsets. A reader built from an older
//! tree can therefore read a newer kernel as long as the fields it needs still exist.
//!
//! Every root symbol but `vk_layout` holds a pointer (version 2): the record itself is a
//! static of the kernel module that owns it, and the root only publishes its address.
//!
//! ```text
//!  symbol            points at           what it is
//!  vk_layout         (is) Layout         magic, version, record sizes and field offsets
//!  vk_allproc        u64                 address of the first ProcRecord (sorted by pid)
//!  vk_pcpu           [PcpuRecord; 16]    per-CPU data, indexed by cpuid
//!  vk_ncpus          u32                 number of CPUs started (-n)
//!  vk_msgbuf         MsgBufRecord        the console message buffer (dmesg)
//!  vk_boottime_ns    u64                 realtime clock at boot, ns since the epoch
//!  vk_physmem        PhysmemRecord       direct-map base, size and the vm_page array
//!
//!  ProcRecord.next ─► ProcRecord.next ─► … 0          (allproc, by pid)
//!       └ threads ─► ThreadRecord.next ─► … 0        (the process's threads, by tid)
//!                        └ pcb ─► Pcb (platform)     saved rsp of a thread that is off CPU
//! ```
//!
//! Every record starts with a magic word so a reader can tell a torn or stale read (a record
//! freed while it walked the list) from a real one; lists are walked with a bound. All fields
//! are atomics so the kernel updates them without `unsafe` and a reader in the same process
//! (ddb) sees whole values.

use core::mem::{offset_of, size_of};
use core::sync::atomic::{AtomicI32, AtomicU8, AtomicU32, AtomicU64};

/// `vk_layout.magic`: "VKLAYOUT" little-endian.
pub const LAYOUT_MAGIC: u64 = u64::from_le_bytes(*b"VKLAYOUT");
/// Bumped when a field changes meaning (not when one is added: offsets take care of that).
pub const LAYOUT_VERSION: u32 = 2;
pub const PROC_MAGIC: u64 = u64::from_le_bytes(*b"VKPROC\0\0");
pub const THREAD_MAGIC: u64 = u64::from_le_bytes(*b"VKTHREAD");
pub const PCPU_MAGIC: u64 = u64::from_le_bytes(*b"VKPCPU\0\0");
pub const MSGBUF_MAGIC: u64 = u64::from_le_bytes(*b"VKMSGBUF");
pub const PHYSMEM_MAGIC: u64 = u64::from_le_bytes(*b"VKPHYSMM");

/// A vmcore's vk note (`db> dump`): its ELF note name and type ("VKDP"). The descriptor is
/// the layout magic, the kernel's load bias, the address of `vk_layout`, then the layout
/// descriptor's bytes (see `kvm_mem::core`).
pub const VK_NOTE_NAME: &str = "VK";
pub const NT_VK_DUMP: u32 = u32::from_le_bytes(*b"VKDP");

/// Bytes of a process or thread name (NUL padded, not necessarily NUL terminated).
pub const NAME_LEN: usize = 24;
/// Bytes of a wait message (`wmesg`, ps's WCHAN column).
pub const WMESG_LEN: usize = 16;
/// The most CPUs vk runs (`-n 1..=16`).
pub const MAXCPU: usize = 16;
/// Size of a physical page (and of a guest page).
pub const PAGE_SIZE: u64 = 4096;
/// Size of the console message buffer ring.
pub const MSGBUF_SIZE: usize = 64 * 1024;

/// `ThreadRecord.state`.
pub mod tstate {
    /// Created, not yet run.
    pub const NEW: u32 = 0;
    /// On a run queue.
    pub const RUNNABLE: u32 = 1;
    /// On a CPU now (`cpu` says which).
    pub const RUNNING: u32 = 2;
    /// Asleep on `wchan` / `wmesg`.
    pub const SLEEPING: u32 = 3;
    /// Stopped by a signal (job control) or the debugger.
    pub const STOPPED: u32 = 4;
    /// Exited; waiting to be reaped.
    pub const DEAD: u32 = 5;
}

/// `ThreadRecord.flags`.
pub mod tflags {
    /// A kernel thread: it never runs user code.
    pub const KTHREAD: u32 = 1 << 0;
    /// A CPU's idle thread.
    pub const IDLE: u32 = 1 << 1;
    /// The sleep can be interrupted by a signal (`S`/`I` in ps, else `D`).
    pub const SINTR: u32 = 1 << 2;
    /// Running in user mode (in its stub) right now.
    pub const INUSER: u32 = 1 << 3;
}

/// `ProcRecord.state`.
pub mod pstate {
    pub const NEW: u32 = 0;
    pub const ACTIVE: u32 = 1;
    pub const ZOMBIE: u32 = 2;
}

/// `ProcRecord.flags`.
pub mod pflags {
    /// A system process (proc0 and its kernel threads): ps shows it in parentheses, `L` in STAT.
    pub const SYSTEM: u32 = 1 << 0;
    /// The process is its session's leader (`s` in STAT).
    pub const SESSION_LEADER: u32 = 1 << 1;
    /// The process is in its terminal's foreground process group (`+` in STAT).
    pub const FOREGROUND: u32 = 1 << 2;
    /// The process is being traced.
    pub const TRACED: u32 = 1 << 3;
}

/// `PcpuRecord.state`.
pub mod cpustate {
    /// Not started.
    pub const OFFLINE: u32 = 0;
    /// Running a thread.
    pub const RUNNING: u32 = 1;
    /// Asleep in the host (futex) in `cpu_idle`.
    pub const IDLE: u32 = 2;
    /// Parked in `stopsig` while another CPU runs the debugger.
    pub const STOPPED: u32 = 3;
    /// Running the debugger.
    pub const DDB: u32 = 4;
}

/// `vm_page` flag bits (the platform's `physmem::pgflags`, pinned to these by a kernel test).
pub mod pgflags {
    /// On the free list.
    pub const FREE: u32 = 1 << 0;
    /// Reserved by the kernel (page 0).
    pub const RESERVED: u32 = 1 << 1;
    /// Anonymous memory of an address space.
    pub const ANON: u32 = 1 << 2;
    /// Holds file data (page cache).
    pub const FILE: u32 = 1 << 3;
    /// Kernel data (tmpfs, buffers).
    pub const KERNEL: u32 = 1 << 4;
    /// Free and never used since boot: still the host's zeros.
    pub const ZEROED: u32 = 1 << 5;

    /// Names of the bits, lowest first.
    pub const NAMES: [(u32, &str); 6] = [
        (FREE, "FREE"),
        (RESERVED, "RESERVED"),
        (ANON, "ANON"),
        (FILE, "FILE"),
        (KERNEL, "KERNEL"),
        (ZEROED, "ZEROED"),
    ];
}

/// Number of registers in a [`PcpuRecord::trapframe`]; indices in [`reg`].
pub const TF_NREGS: usize = 24;

/// Indices into a trap frame: the general registers, then what the trap itself reported.
pub mod reg {
    pub const RAX: usize = 0;
    pub const RBX: usize = 1;
    pub const RCX: usize = 2;
    pub const RDX: usize = 3;
    pub const RSI: usize = 4;
    pub const RDI: usize = 5;
    pub const RBP: usize = 6;
    pub const RSP: usize = 7;
    pub const R8: usize = 8;
    pub const R9: usize = 9;
    pub const R10: usize = 10;
    pub const R11: usize = 11;
    pub const R12: usize = 12;
    pub const R13: usize = 13;
    pub const R14: usize = 14;
    pub const R15: usize = 15;
    pub const RIP: usize = 16;
    pub const RFLAGS: usize = 17;
    pub const FS_BASE: usize = 18;
    pub const GS_BASE: usize = 19;
    /// Hardware trap number as Linux reports it (14 = #PF, 13 = #GP, 6 = #UD, 0 = #DE ...).
    pub const TRAPNO: usize = 20;
    /// Hardware error code (for #PF: bit 0 present, 1 write, 2 user, 4 instruction fetch).
    pub const ERR: usize = 21;
    /// Fault address (cr2 for a page fault, si_addr otherwise).
    pub const ADDR: usize = 22;
    /// Host signal that delivered the trap (0 when the frame was captured in software).
    pub const SIGNO: usize = 23;

    /// Names as `show registers` prints them, in index order.
    pub const NAMES: [&str; super::TF_NREGS] = [
        "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11", "r12",
        "r13", "r14", "r15", "rip", "rflags", "fs_base", "gs_base", "trapno", "err", "addr",
        "signo",
    ];
}

/// A process. Lives inside the kernel's `Proc`; linked on `allproc` by pid.
#[repr(C)]
#[derive(Debug)]
pub struct ProcRecord {
    pub magic: AtomicU64,
    /// Next process on allproc (address of its ProcRecord), 0 at the end.
    pub next: AtomicU64,
    /// First thread (address of its ThreadRecord), 0 if none.
    pub threads: AtomicU64,
    pub pid: AtomicI32,
    pub ppid: AtomicI32,
    pub pgid: AtomicI32,
    pub sid: AtomicI32,
    pub uid: AtomicU32,
    pub gid: AtomicU32,
    /// One of [`pstate`].
    pub state: AtomicU32,
    /// Bits of [`pflags`].
    pub flags: AtomicU32,
    pub nice: AtomicI32,
    pub nthreads: AtomicU32,
    /// Exit status as wait(2) encodes it, valid when ZOMBIE.
    pub xstat: AtomicI32,
    /// Controlling terminal as a device number, 0 for none.
    pub tty: AtomicU32,
    /// Command name (`comm`), NUL padded.
    pub comm: [AtomicU8; NAME_LEN],
    /// Virtual size of the address space in bytes.
    pub vsz_bytes: AtomicU64,
    /// Resident pages.
    pub rss_pages: AtomicU64,
    /// Monotonic time the process started, ns since boot.
    pub start_ns: AtomicU64,
}

/// A thread (kernel thread, or the kernel side of a guest thread).
#[repr(C)]
#[derive(Debug)]
pub struct ThreadRecord {
    pub magic: AtomicU64,
    /// Next thread of the same process (address of its ThreadRecord), 0 at the end.
    pub next: AtomicU64,
    /// The process it belongs to (address of its ProcRecord).
    pub proc_: AtomicU64,
    /// The platform context block (`Pcb`): its saved stack pointer is where a thread that is
    /// off CPU stopped, the start of `trace <tid>`. See [`PcbLayout`].
    pub pcb: AtomicU64,
    /// Thread id: guest threads share the pid space; kernel-only threads count from 100000.
    pub tid: AtomicU64,
    /// One of [`tstate`].
    pub state: AtomicU32,
    /// Bits of [`tflags`].
    pub flags: AtomicU32,
    /// The CPU it runs on (RUNNING) or last ran on.
    pub cpu: AtomicU32,
    /// Scheduling priority, lower is more urgent (idle threads 255).
    pub pri: AtomicU32,
    pub name: [AtomicU8; NAME_LEN],
    /// What it sleeps on, as ps's WCHAN column shows it ("nowork", "syncer", "wait" …).
    pub wmesg: [AtomicU8; WMESG_LEN],
    /// The address it sleeps on, 0 when not asleep.
    pub wchan: AtomicU64,
    /// Monotonic time it went to sleep, ns since boot (ps: `S` under 20 s, `I` over).
    pub slptime_ns: AtomicU64,
    /// Lowest usable address of its kernel stack (just above the guard page) and the size.
    pub stack_base: AtomicU64,
    pub stack_size: AtomicU64,
    /// Time spent on a CPU, ns.
    pub runtime_ns: AtomicU64,
    /// Context switches into this thread.
    pub switches: AtomicU64,
}

/// Per-CPU data (`vk_pcpu[cpuid]`).
#[repr(C)]
#[derive(Debug)]
pub struct PcpuRecord {
    pub magic: AtomicU64,
    pub cpuid: AtomicU32,
    /// One of [`cpustate`].
    pub state: AtomicU32,
    /// Host thread id of the vCPU thread (for gdb's `thread` and `kill -USR1`).
    pub host_tid: AtomicU32,
    /// Threads on this CPU's run queue.
    pub nrun: AtomicU32,
    /// The thread on the CPU now and this CPU's idle thread (ThreadRecord addresses).
    pub curthread: AtomicU64,
    pub idlethread: AtomicU64,
    /// Context switches and interrupts (IPIs) taken.
    pub switches: AtomicU64,
    pub intrs: AtomicU64,
    /// Time spent idle, ns.
    pub idle_ns: AtomicU64,
    /// 1 when `trapframe` holds the registers of the last trap or stop of this CPU.
    pub tf_valid: AtomicU32,
    pub _pad: AtomicU32,
    /// Registers where this CPU trapped or was stopped; indices in [`reg`].
    pub trapframe: [AtomicU64; TF_NREGS],
}

/// The console message buffer: a ring of `MSGBUF_SIZE` bytes; `wptr` counts every byte ever
/// written, so the valid text is the last `min(wptr, MSGBUF_SIZE)` bytes ending at
/// `wptr % MSGBUF_SIZE`.
#[repr(C)]
#[derive(Debug)]
pub struct MsgBufRecord {
    pub magic: AtomicU64,
    pub size: AtomicU64,
    pub wptr: AtomicU64,
    pub buf: [AtomicU8; MSGBUF_SIZE],
}

/// Physical memory: the direct map and the `vm_page` array.
#[repr(C)]
#[derive(Debug)]
pub struct PhysmemRecord {
    pub magic: AtomicU64,
    /// Kernel virtual address of physical address 0.
    pub dmap_base: AtomicU64,
    /// Bytes of physical memory (`-m`).
    pub size: AtomicU64,
    /// Address and length of the vm_page array, and the size of one entry.
    pub vm_page: AtomicU64,
    pub npages: AtomicU64,
    pub vm_page_size: AtomicU64,
    /// Pages on the free list.
    pub free_pages: AtomicU64,
}

impl ProcRecord {
    pub const fn new() -> ProcRecord {
        ProcRecord {
            magic: AtomicU64::new(PROC_MAGIC),
            next: AtomicU64::new(0),
            threads: AtomicU64::new(0),
            pid: AtomicI32::new(0),
            ppid: AtomicI32::new(0),
            pgid: AtomicI32::new(0),
            sid: AtomicI32::new(0),
            uid: AtomicU32::new(0),
            gid: AtomicU32::new(0),
            state: AtomicU32::new(pstate::NEW),
            flags: AtomicU32::new(0),
            nice: AtomicI32::new(0),
            nthreads: AtomicU32::new(0),
            xstat: AtomicI32::new(0),
            tty: AtomicU32::new(0),
            comm: [const { AtomicU8::new(0) }; NAME_LEN],
            vsz_bytes: AtomicU64::new(0),
            rss_pages: AtomicU64::new(0),
            start_ns: AtomicU64::new(0),
        }
    }
}

impl Default for ProcRecord {
    fn default() -> Self {
        Self::new()
    }
}

impl ThreadRecord {
    pub const fn new() -> ThreadRecord {
        ThreadRecord {
            magic: AtomicU64::new(THREAD_MAGIC),
            next: AtomicU64::new(0),
            proc_: AtomicU64::new(0),
            pcb: AtomicU64::new(0),
            tid: AtomicU64::new(0),
            state: AtomicU32::new(tstate::NEW),
            flags: AtomicU32::new(0),
            cpu: AtomicU32::new(0),
            pri: AtomicU32::new(0),
            name: [const { AtomicU8::new(0) }; NAME_LEN],
            wmesg: [const { AtomicU8::new(0) }; WMESG_LEN],
            wchan: AtomicU64::new(0),
            slptime_ns: AtomicU64::new(0),
            stack_base: AtomicU64::new(0),
            stack_size: AtomicU64::new(0),
            runtime_ns: AtomicU64::new(0),
            switches: AtomicU64::new(0),
        }
    }
}

impl Default for ThreadRecord {
    fn default() -> Self {
        Self::new()
    }
}

impl PcpuRecord {
    pub const fn new(cpuid: u32) -> PcpuRecord {
        PcpuRecord {
            magic: AtomicU64::new(PCPU_MAGIC),
            cpuid: AtomicU32::new(cpuid),
            state: AtomicU32::new(cpustate::OFFLINE),
            host_tid: AtomicU32::new(0),
            nrun: AtomicU32::new(0),
            curthread: AtomicU64::new(0),
            idlethread: AtomicU64::new(0),
            switches: AtomicU64::new(0),
            intrs: AtomicU64::new(0),
            idle_ns: AtomicU64::new(0),
            tf_valid: AtomicU32::new(0),
            _pad: AtomicU32::new(0),
            trapframe: [const { AtomicU64::new(0) }; TF_NREGS],
        }
    }
}

impl MsgBufRecord {
    pub const fn new() -> MsgBufRecord {
        MsgBufRecord {
            magic: AtomicU64::new(MSGBUF_MAGIC),
            size: AtomicU64::new(MSGBUF_SIZE as u64),
            wptr: AtomicU64::new(0),
            buf: [const { AtomicU8::new(0) }; MSGBUF_SIZE],
        }
    }
}

impl Default for MsgBufRecord {
    fn default() -> Self {
        Self::new()
    }
}

impl PhysmemRecord {
    pub const fn new() -> PhysmemRecord {
        PhysmemRecord {
            magic: AtomicU64::new(PHYSMEM_MAGIC),
            dmap_base: AtomicU64::new(0),
            size: AtomicU64::new(0),
            vm_page: AtomicU64::new(0),
            npages: AtomicU64::new(0),
            vm_page_size: AtomicU64::new(0),
            free_pages: AtomicU64::new(0),
        }
    }
}

impl Default for PhysmemRecord {
    fn default() -> Self {
        Self::new()
    }
}

/// Field offsets of [`ProcRecord`].
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcLayout {
    pub size: u32,
    pub magic: u32,
    pub next: u32,
    pub threads: u32,
    pub pid: u32,
    pub ppid: u32,
    pub pgid: u32,
    pub sid: u32,
    pub uid: u32,
    pub gid: u32,
    pub state: u32,
    pub flags: u32,
    pub nice: u32,
    pub nthreads: u32,
    pub xstat: u32,
    pub tty: u32,
    pub comm: u32,
    pub vsz_bytes: u32,
    pub rss_pages: u32,
    pub start_ns: u32,
}

/// Field offsets of [`ThreadRecord`].
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadLayout {
    pub size: u32,
    pub magic: u32,
    pub next: u32,
    pub proc_: u32,
    pub pcb: u32,
    pub tid: u32,
    pub state: u32,
    pub flags: u32,
    pub cpu: u32,
    pub pri: u32,
    pub name: u32,
    pub wmesg: u32,
    pub wchan: u32,
    pub slptime_ns: u32,
    pub stack_base: u32,
    pub stack_size: u32,
    pub runtime_ns: u32,
    pub switches: u32,
}

/// Field offsets of [`PcpuRecord`].
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PcpuLayout {
    pub size: u32,
    pub magic: u32,
    pub cpuid: u32,
    pub state: u32,
    pub host_tid: u32,
    pub nrun: u32,
    pub curthread: u32,
    pub idlethread: u32,
    pub switches: u32,
    pub intrs: u32,
    pub idle_ns: u32,
    pub tf_valid: u32,
    pub trapframe: u32,
    pub tf_nregs: u32,
}

/// Field offsets of [`MsgBufRecord`].
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsgBufLayout {
    pub size: u32,
    pub magic: u32,
    pub bufsize: u32,
    pub wptr: u32,
    pub buf: u32,
}

/// Field offsets of [`PhysmemRecord`].
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhysmemLayout {
    pub size: u32,
    pub magic: u32,
    pub dmap_base: u32,
    pub mem_size: u32,
    pub vm_page: u32,
    pub npages: u32,
    pub vm_page_size: u32,
    pub free_pages: u32,
}

/// The platform's context block and the frame `cpu_switch` leaves on a sleeping thread's stack.
/// Filled in by the kernel from the platform crate's constants.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PcbLayout {
    /// Offset of the saved stack pointer in the Pcb.
    pub rsp: u32,
    /// Offset of the "on a CPU" word in the Pcb (non-zero while the context is live).
    pub on_cpu: u32,
    /// Offsets, from the saved stack pointer, of the saved rbp and the return address, and the
    /// size of the whole switch frame (the caller's rsp is saved rsp + frame size).
    pub frame_rbp: u32,
    pub frame_rip: u32,
    pub frame_size: u32,
}

/// Field offsets of a `vm_page` entry (platform's physical page array).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmPageLayout {
    pub size: u32,
    pub flags: u32,
    pub refcount: u32,
    pub owner: u32,
}

/// The names of [`Layout`]'s fields after its magic, in order (all `u32`), for readers that
/// parse the descriptor by name rather than with this crate — the gdb commands
/// (`tools/gdb/vk-gdb.py`). A test pins each name to its offset.
pub const LAYOUT_FIELDS: &[&str] = &[
    "version", "size", "maxcpu", "name_len", "wmesg_len", "msgbuf_size", "proc.size",
    "proc.magic", "proc.next", "proc.threads", "proc.pid", "proc.ppid", "proc.pgid", "proc.sid",
    "proc.uid", "proc.gid", "proc.state", "proc.flags", "proc.nice", "proc.nthreads",
    "proc.xstat", "proc.tty", "proc.comm", "proc.vsz_bytes", "proc.rss_pages", "proc.start_ns",
    "thread.size", "thread.magic", "thread.next", "thread.proc_", "thread.pcb", "thread.tid",
    "thread.state", "thread.flags", "thread.cpu", "thread.pri", "thread.name", "thread.wmesg",
    "thread.wchan", "thread.slptime_ns", "thread.stack_base", "thread.stack_size",
    "thread.runtime_ns", "thread.switches", "pcpu.size", "pcpu.magic", "pcpu.cpuid",
    "pcpu.state", "pcpu.host_tid", "pcpu.nrun", "pcpu.curthread", "pcpu.idlethread",
    "pcpu.switches", "pcpu.intrs", "pcpu.idle_ns", "pcpu.tf_valid", "pcpu.trapframe",
    "pcpu.tf_nregs", "msgbuf.size", "msgbuf.magic", "msgbuf.bufsize", "msgbuf.wptr",
    "msgbuf.buf", "physmem.size", "physmem.magic", "physmem.dmap_base", "physmem.mem_size",
    "physmem.vm_page", "physmem.npages", "physmem.vm_page_size", "physmem.free_pages",
    "pcb.rsp", "pcb.on_cpu", "pcb.frame_rbp", "pcb.frame_rip", "pcb.frame_size", "vm_page.size",
    "vm_page.flags", "vm_page.refcount", "vm_page.owner",
];

/// The descriptor exported as `vk_layout`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub magic: u64,
    pub version: u32,
    /// `size_of::<Layout>()` of the kernel that wrote it.
    pub size: u32,
    pub maxcpu: u32,
    pub name_len: u32,
    pub wmesg_len: u32,
    pub msgbuf_size: u32,
    pub proc_: ProcLayout,
    pub thread: ThreadLayout,
    pub pcpu: PcpuLayout,
    pub msgbuf: MsgBufLayout,
    pub physmem: PhysmemLayout,
    pub pcb: PcbLayout,
    pub vm_page: VmPageLayout,
}

const fn off(o: usize) -> u32 {
    assert!(o <= u32::MAX as usize);
    o as u32
}

impl Layout {
    /// The layout of the records defined in this module. `pcb` and `vm_page` come from the
    /// platform; the kernel passes them in.
    pub const fn new(pcb: PcbLayout, vm_page: VmPageLayout) -> Layout {
        Layout {
            magic: LAYOUT_MAGIC,
            version: LAYOUT_VERSION,
            size: off(size_of::<Layout>()),
            maxcpu: MAXCPU as u32,
            name_len: NAME_LEN as u32,
            wmesg_len: WMESG_LEN as u32,
            msgbuf_size: MSGBUF_SIZE as u32,
            proc_: ProcLayout {
                size: off(size_of::<ProcRecord>()),
                magic: off(offset_of!(ProcRecord, magic)),
                next: off(offset_of!(ProcRecord, next)),
                threads: off(offset_of!(ProcRecord, threads)),
                pid: off(offset_of!(ProcRecord, pid)),
                ppid: off(offset_of!(ProcRecord, ppid)),
                pgid: off(offset_of!(ProcRecord, pgid)),
                sid: off(offset_of!(ProcRecord, sid)),
                uid: off(offset_of!(ProcRecord, uid)),
                gid: off(offset_of!(ProcRecord, gid)),
                state: off(offset_of!(ProcRecord, state)),
                flags: off(offset_of!(ProcRecord, flags)),
                nice: off(offset_of!(ProcRecord, nice)),
                nthreads: off(offset_of!(ProcRecord, nthreads)),
                xstat: off(offset_of!(ProcRecord, xstat)),
                tty: off(offset_of!(ProcRecord, tty)),
                comm: off(offset_of!(ProcRecord, comm)),
                vsz_bytes: off(offset_of!(ProcRecord, vsz_bytes)),
                rss_pages: off(offset_of!(ProcRecord, rss_pages)),
                start_ns: off(offset_of!(ProcRecord, start_ns)),
            },
            thread: ThreadLayout {
                size: off(size_of::<ThreadRecord>()),
                magic: off(offset_of!(ThreadRecord, magic)),
                next: off(offset_of!(ThreadRecord, next)),
                proc_: off(offset_of!(ThreadRecord, proc_)),
                pcb: off(offset_of!(ThreadRecord, pcb)),
                tid: off(offset_of!(ThreadRecord, tid)),
                state: off(offset_of!(ThreadRecord, state)),
                flags: off(offset_of!(ThreadRecord, flags)),
                cpu: off(offset_of!(ThreadRecord, cpu)),
                pri: off(offset_of!(ThreadRecord, pri)),
                name: off(offset_of!(ThreadRecord, name)),
                wmesg: off(offset_of!(ThreadRecord, wmesg)),
                wchan: off(offset_of!(ThreadRecord, wchan)),
                slptime_ns: off(offset_of!(ThreadRecord, slptime_ns)),
                stack_base: off(offset_of!(ThreadRecord, stack_base)),
                stack_size: off(offset_of!(ThreadRecord, stack_size)),
                runtime_ns: off(offset_of!(ThreadRecord, runtime_ns)),
                switches: off(offset_of!(ThreadRecord, switches)),
            },
            pcpu: PcpuLayout {
                size: off(size_of::<PcpuRecord>()),
                magic: off(offset_of!(PcpuRecord, magic)),
                cpuid: off(offset_of!(PcpuRecord, cpuid)),
                state: off(offset_of!(PcpuRecord, state)),
                host_tid: off(offset_of!(PcpuRecord, host_tid)),
                nrun: off(offset_of!(PcpuRecord, nrun)),
                curthread: off(offset_of!(PcpuRecord, curthread)),
                idlethread: off(offset_of!(PcpuRecord, idlethread)),
                switches: off(offset_of!(PcpuRecord, switches)),
                intrs: off(offset_of!(PcpuRecord, intrs)),
                idle_ns: off(offset_of!(PcpuRecord, idle_ns)),
                tf_valid: off(offset_of!(PcpuRecord, tf_valid)),
                trapframe: off(offset_of!(PcpuRecord, trapframe)),
                tf_nregs: TF_NREGS as u32,
            },
            msgbuf: MsgBufLayout {
                size: off(size_of::<MsgBufRecord>()),
                magic: off(offset_of!(MsgBufRecord, magic)),
                bufsize: off(offset_of!(MsgBufRecord, size)),
                wptr: off(offset_of!(MsgBufRecord, wptr)),
                buf: off(offset_of!(MsgBufRecord, buf)),
            },
            physmem: PhysmemLayout {
                size: off(size_of::<PhysmemRecord>()),
                magic: off(offset_of!(PhysmemRecord, magic)),
                dmap_base: off(offset_of!(PhysmemRecord, dmap_base)),
                mem_size: off(offset_of!(PhysmemRecord, size)),
                vm_page: off(offset_of!(PhysmemRecord, vm_page)),
                npages: off(offset_of!(PhysmemRecord, npages)),
                vm_page_size: off(offset_of!(PhysmemRecord, vm_page_size)),
                free_pages: off(offset_of!(PhysmemRecord, free_pages)),
            },
            pcb,
            vm_page,
        }
    }

    /// Parse a descriptor read from a target's memory (native endianness, x86-64 only).
    /// Returns `None` when the bytes are too short or the magic is wrong.
    pub fn from_bytes(bytes: &[u8]) -> Option<Layout> {
        let mut words = Vec::with_capacity(bytes.len() / 4);
        for chunk in bytes.chunks_exact(4) {
            words.push(u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]));
        }
        if words.len() * 4 < size_of::<Layout>() {
            return None;
        }
        let magic = u64::from(words[0]) | (u64::from(words[1]) << 32);
        if magic != LAYOUT_MAGIC {
            return None;
        }
        // Layout is repr(C), u64 then nothing but u32s: read it back field by field in order.
        let mut it = words[2..].iter().copied();
        let mut next = || it.next().unwrap_or(0);
        Some(Layout {
            magic,
            version: next(),
            size: next(),
            maxcpu: next(),
            name_len: next(),
            wmesg_len: next(),
            msgbuf_size: next(),
            proc_: ProcLayout {
                size: next(),
                magic: next(),
                next: next(),
                threads: next(),
                pid: next(),
                ppid: next(),
                pgid: next(),
                sid: next(),
                uid: next(),
                gid: next(),
                state: next(),
                flags: next(),
                nice: next(),
                nthreads: next(),
                xstat: next(),
                tty: next(),
                comm: next(),
                vsz_bytes: next(),
                rss_pages: next(),
                start_ns: next(),
            },
            thread: ThreadLayout {
                size: next(),
                magic: next(),
                next: next(),
                proc_: next(),
                pcb: next(),
                tid: next(),
                state: next(),
                flags: next(),
                cpu: next(),
                pri: next(),
                name: next(),
                wmesg: next(),
                wchan: next(),
                slptime_ns: next(),
                stack_base: next(),
                stack_size: next(),
                runtime_ns: next(),
                switches: next(),
            },
            pcpu: PcpuLayout {
                size: next(),
                magic: next(),
                cpuid: next(),
                state: next(),
                host_tid: next(),
                nrun: next(),
                curthread: next(),
                idlethread: next(),
                switches: next(),
                intrs: next(),
                idle_ns: next(),
                tf_valid: next(),
                trapframe: next(),
                tf_nregs: next(),
            },
            msgbuf: MsgBufLayout {
                size: next(),
                magic: next(),
                bufsize: next(),
                wptr: next(),
                buf: next(),
            },
            physmem: PhysmemLayout {
                size: next(),
                magic: next(),
                dmap_base: next(),
                mem_size: next(),
                vm_page: next(),
                npages: next(),
                vm_page_size: next(),
                free_pages: next(),
            },
            pcb: PcbLayout {
                rsp: next(),
                on_cpu: next(),
                frame_rbp: next(),
                frame_rip: next(),
                frame_size: next(),
            },
            vm_page: VmPageLayout {
                size: next(),
                flags: next(),
                refcount: next(),
                owner: next(),
            },
        })
    }

    /// The descriptor as the bytes a reader finds in memory.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(size_of::<Layout>());
        out.extend_from_slice(&self.magic.to_le_bytes());
        for w in self.words() {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out
    }

    fn words(&self) -> Vec<u32> {
        let p = &self.proc_;
        let t = &self.thread;
        let c = &self.pcpu;
        let m = &self.msgbuf;
        let ph = &self.physmem;
        let pcb = &self.pcb;
        let v = &self.vm_page;
        vec![
            self.version, self.size, self.maxcpu, self.name_len, self.wmesg_len, self.msgbuf_size,
            p.size, p.magic, p.next, p.threads, p.pid, p.ppid, p.pgid, p.sid, p.uid, p.gid,
            p.state, p.flags, p.nice, p.nthreads, p.xstat, p.tty, p.comm, p.vsz_bytes,
            p.rss_pages, p.start_ns, t.size, t.magic, t.next, t.proc_, t.pcb, t.tid, t.state,
            t.flags, t.cpu, t.pri, t.name, t.wmesg, t.wchan, t.slptime_ns, t.stack_base,
            t.stack_size, t.runtime_ns, t.switches, c.size, c.magic, c.cpuid, c.state, c.host_tid,
            c.nrun, c.curthread, c.idlethread, c.switches, c.intrs, c.idle_ns, c.tf_valid,
            c.trapframe, c.tf_nregs, m.size, m.magic, m.bufsize, m.wptr, m.buf, ph.size, ph.magic,
            ph.dmap_base, ph.mem_size, ph.vm_page, ph.npages, ph.vm_page_size, ph.free_pages,
            pcb.rsp, pcb.on_cpu, pcb.frame_rbp, pcb.frame_rip, pcb.frame_size, v.size, v.flags,
            v.refcount, v.owner,
        ]
    }
}

/// Copy a name into a NUL-padded record field (truncating), one atomic byte at a time.
pub fn store_name(field: &[AtomicU8], name: &str) {
    let bytes = name.as_bytes();
    for (i, slot) in field.iter().enumerate() {
        let b = if i < bytes.len() { bytes[i] } else { 0 };
        slot.store(b, core::sync::atomic::Ordering::Relaxed);
    }
}

/// Read a NUL-padded name out of raw record bytes.
pub fn name_from_bytes(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PCB: PcbLayout = PcbLayout { rsp: 0, on_cpu: 8, frame_rbp: 40, frame_rip: 48, frame_size: 56 };
    const VMP: VmPageLayout = VmPageLayout { size: 16, flags: 0, refcount: 4, owner: 8 };

    #[test]
    fn layout_round_trips_through_bytes() {
        let l = Layout::new(PCB, VMP);
        let bytes = l.to_bytes();
        assert_eq!(bytes.len(), size_of::<Layout>());
        assert_eq!(Layout::from_bytes(&bytes), Some(l));
    }

    #[test]
    fn layout_bytes_match_memory_representation() {
        // The reader parses what the kernel has in memory: to_bytes must be that image.
        let l = Layout::new(PCB, VMP);
        let bytes = l.to_bytes();
        assert_eq!(u32::from_le_bytes(bytes[16..20].try_into().unwrap()), l.maxcpu);
        assert_eq!(
            u32::from_le_bytes(bytes[size_of::<Layout>() - 4..].try_into().unwrap()),
            l.vm_page.owner
        );
        assert_eq!(l.size as usize, bytes.len());
    }

    #[test]
    fn bad_magic_or_short_input_is_rejected() {
        let mut bytes = Layout::new(PCB, VMP).to_bytes();
        assert!(Layout::from_bytes(&bytes[..20]).is_none());
        bytes[0] ^= 1;
        assert!(Layout::from_bytes(&bytes).is_none());
    }

    #[test]
    fn names_are_nul_padded_and_truncated() {
        let field: [AtomicU8; 8] = Default::default();
        store_name(&field, "idle: cpu0");
        let raw: Vec<u8> = field.iter().map(|b| b.load(core::sync::atomic::Ordering::Relaxed)).collect();
        assert_eq!(name_from_bytes(&raw), "idle: cp");
        store_name(&field, "sh");
        let raw: Vec<u8> = field.iter().map(|b| b.load(core::sync::atomic::Ordering::Relaxed)).collect();
        assert_eq!(name_from_bytes(&raw), "sh");
    }

    #[test]
    fn layout_fields_name_every_field_in_order() {
        let offsets = [
            ("version", offset_of!(Layout, version)),
            ("size", offset_of!(Layout, size)),
            ("maxcpu", offset_of!(Layout, maxcpu)),
            ("name_len", offset_of!(Layout, name_len)),
            ("wmesg_len", offset_of!(Layout, wmesg_len)),
            ("msgbuf_size", offset_of!(Layout, msgbuf_size)),
            ("proc.size", offset_of!(Layout, proc_) + offset_of!(ProcLayout, size)),
            ("proc.magic", offset_of!(Layout, proc_) + offset_of!(ProcLayout, magic)),
            ("proc.next", offset_of!(Layout, proc_) + offset_of!(ProcLayout, next)),
            ("proc.threads", offset_of!(Layout, proc_) + offset_of!(ProcLayout, threads)),
            ("proc.pid", offset_of!(Layout, proc_) + offset_of!(ProcLayout, pid)),
            ("proc.ppid", offset_of!(Layout, proc_) + offset_of!(ProcLayout, ppid)),
            ("proc.pgid", offset_of!(Layout, proc_) + offset_of!(ProcLayout, pgid)),
            ("proc.sid", offset_of!(Layout, proc_) + offset_of!(ProcLayout, sid)),
            ("proc.uid", offset_of!(Layout, proc_) + offset_of!(ProcLayout, uid)),
            ("proc.gid", offset_of!(Layout, proc_) + offset_of!(ProcLayout, gid)),
            ("proc.state", offset_of!(Layout, proc_) + offset_of!(ProcLayout, state)),
            ("proc.flags", offset_of!(Layout, proc_) + offset_of!(ProcLayout, flags)),
            ("proc.nice", offset_of!(Layout, proc_) + offset_of!(ProcLayout, nice)),
            ("proc.nthreads", offset_of!(Layout, proc_) + offset_of!(ProcLayout, nthreads)),
            ("proc.xstat", offset_of!(Layout, proc_) + offset_of!(ProcLayout, xstat)),
            ("proc.tty", offset_of!(Layout, proc_) + offset_of!(ProcLayout, tty)),
            ("proc.comm", offset_of!(Layout, proc_) + offset_of!(ProcLayout, comm)),
            ("proc.vsz_bytes", offset_of!(Layout, proc_) + offset_of!(ProcLayout, vsz_bytes)),
            ("proc.rss_pages", offset_of!(Layout, proc_) + offset_of!(ProcLayout, rss_pages)),
            ("proc.start_ns", offset_of!(Layout, proc_) + offset_of!(ProcLayout, start_ns)),
            ("thread.size", offset_of!(Layout, thread) + offset_of!(ThreadLayout, size)),
            ("thread.magic", offset_of!(Layout, thread) + offset_of!(ThreadLayout, magic)),
            ("thread.next", offset_of!(Layout, thread) + offset_of!(ThreadLayout, next)),
            ("thread.proc_", offset_of!(Layout, thread) + offset_of!(ThreadLayout, proc_)),
            ("thread.pcb", offset_of!(Layout, thread) + offset_of!(ThreadLayout, pcb)),
            ("thread.tid", offset_of!(Layout, thread) + offset_of!(ThreadLayout, tid)),
            ("thread.state", offset_of!(Layout, thread) + offset_of!(ThreadLayout, state)),
            ("thread.flags", offset_of!(Layout, thread) + offset_of!(ThreadLayout, flags)),
            ("thread.cpu", offset_of!(Layout, thread) + offset_of!(ThreadLayout, cpu)),
            ("thread.pri", offset_of!(Layout, thread) + offset_of!(ThreadLayout, pri)),
            ("thread.name", offset_of!(Layout, thread) + offset_of!(ThreadLayout, name)),
            ("thread.wmesg", offset_of!(Layout, thread) + offset_of!(ThreadLayout, wmesg)),
            ("thread.wchan", offset_of!(Layout, thread) + offset_of!(ThreadLayout, wchan)),
            ("thread.slptime_ns", offset_of!(Layout, thread) + offset_of!(ThreadLayout, slptime_ns)),
            ("thread.stack_base", offset_of!(Layout, thread) + offset_of!(ThreadLayout, stack_base)),
            ("thread.stack_size", offset_of!(Layout, thread) + offset_of!(ThreadLayout, stack_size)),
            ("thread.runtime_ns", offset_of!(Layout, thread) + offset_of!(ThreadLayout, runtime_ns)),
            ("thread.switches", offset_of!(Layout, thread) + offset_of!(ThreadLayout, switches)),
            ("pcpu.size", offset_of!(Layout, pcpu) + offset_of!(PcpuLayout, size)),
            ("pcpu.magic", offset_of!(Layout, pcpu) + offset_of!(PcpuLayout, magic)),
            ("pcpu.cpuid", offset_of!(Layout, pcpu) + offset_of!(PcpuLayout, cpuid)),
            ("pcpu.state", offset_of!(Layout, pcpu) + offset_of!(PcpuLayout, state)),
            ("pcpu.host_tid", offset_of!(Layout, pcpu) + offset_of!(PcpuLayout, host_tid)),
            ("pcpu.nrun", offset_of!(Layout, pcpu) + offset_of!(PcpuLayout, nrun)),
            ("pcpu.curthread", offset_of!(Layout, pcpu) + offset_of!(PcpuLayout, curthread)),
            ("pcpu.idlethread", offset_of!(Layout, pcpu) + offset_of!(PcpuLayout, idlethread)),
            ("pcpu.switches", offset_of!(Layout, pcpu) + offset_of!(PcpuLayout, switches)),
            ("pcpu.intrs", offset_of!(Layout, pcpu) + offset_of!(PcpuLayout, intrs)),
            ("pcpu.idle_ns", offset_of!(Layout, pcpu) + offset_of!(PcpuLayout, idle_ns)),
            ("pcpu.tf_valid", offset_of!(Layout, pcpu) + offset_of!(PcpuLayout, tf_valid)),
            ("pcpu.trapframe", offset_of!(Layout, pcpu) + offset_of!(PcpuLayout, trapframe)),
            ("pcpu.tf_nregs", offset_of!(Layout, pcpu) + offset_of!(PcpuLayout, tf_nregs)),
            ("msgbuf.size", offset_of!(Layout, msgbuf) + offset_of!(MsgBufLayout, size)),
            ("msgbuf.magic", offset_of!(Layout, msgbuf) + offset_of!(MsgBufLayout, magic)),
            ("msgbuf.bufsize", offset_of!(Layout, msgbuf) + offset_of!(MsgBufLayout, bufsize)),
            ("msgbuf.wptr", offset_of!(Layout, msgbuf) + offset_of!(MsgBufLayout, wptr)),
            ("msgbuf.buf", offset_of!(Layout, msgbuf) + offset_of!(MsgBufLayout, buf)),
            ("physmem.size", offset_of!(Layout, physmem) + offset_of!(PhysmemLayout, size)),
            ("physmem.magic", offset_of!(Layout, physmem) + offset_of!(PhysmemLayout, magic)),
            ("physmem.dmap_base", offset_of!(Layout, physmem) + offset_of!(PhysmemLayout, dmap_base)),
            ("physmem.mem_size", offset_of!(Layout, physmem) + offset_of!(PhysmemLayout, mem_size)),
            ("physmem.vm_page", offset_of!(Layout, physmem) + offset_of!(PhysmemLayout, vm_page)),
            ("physmem.npages", offset_of!(Layout, physmem) + offset_of!(PhysmemLayout, npages)),
            ("physmem.vm_page_size", offset_of!(Layout, physmem) + offset_of!(PhysmemLayout, vm_page_size)),
            ("physmem.free_pages", offset_of!(Layout, physmem) + offset_of!(PhysmemLayout, free_pages)),
            ("pcb.rsp", offset_of!(Layout, pcb) + offset_of!(PcbLayout, rsp)),
            ("pcb.on_cpu", offset_of!(Layout, pcb) + offset_of!(PcbLayout, on_cpu)),
            ("pcb.frame_rbp", offset_of!(Layout, pcb) + offset_of!(PcbLayout, frame_rbp)),
            ("pcb.frame_rip", offset_of!(Layout, pcb) + offset_of!(PcbLayout, frame_rip)),
            ("pcb.frame_size", offset_of!(Layout, pcb) + offset_of!(PcbLayout, frame_size)),
            ("vm_page.size", offset_of!(Layout, vm_page) + offset_of!(VmPageLayout, size)),
            ("vm_page.flags", offset_of!(Layout, vm_page) + offset_of!(VmPageLayout, flags)),
            ("vm_page.refcount", offset_of!(Layout, vm_page) + offset_of!(VmPageLayout, refcount)),
            ("vm_page.owner", offset_of!(Layout, vm_page) + offset_of!(VmPageLayout, owner)),
        ];
        assert_eq!(offsets.len(), LAYOUT_FIELDS.len());
        for (i, ((name, off), listed)) in offsets.iter().zip(LAYOUT_FIELDS).enumerate() {
            assert_eq!(name, listed);
            assert_eq!(*off, 8 + 4 * i, "{name}");
        }
        assert_eq!(size_of::<Layout>(), 8 + 4 * LAYOUT_FIELDS.len());
    }
}
