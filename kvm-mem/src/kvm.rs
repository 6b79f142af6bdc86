//! The reader, like BSD's `kvm_open` + `kvm_getprocs`: open a kernel's memory, check its layout
//! descriptor, and walk its records.
//!
//! ```text
//!  Kvm::open("/proc/PID/mem", -N)          Kvm::from_roots(source, roots)
//!   ├ nlist: root symbols of the ELF         (the kernel reading itself: the
//!   ├ bias from /proc/PID/maps                addresses of its own statics)
//!   └ roots = symbol + bias ──────────────► read vk_layout, check it ──► procs(), pcpus(),
//!                                                                       msgbuf(), physmem() …
//! ```
//!
//! A live kernel changes while it is read: a process can exit and its record be freed between
//! two reads. Each record is read in one piece and its magic checked; a walk that meets a bad
//! record, an unreadable address or a loop starts again, up to [`RETRIES`] times.

use std::collections::HashSet;
use std::path::Path;

use crate::KvmError;
use crate::abi::{Layout, MSGBUF_MAGIC, PCPU_MAGIC, PHYSMEM_MAGIC, PROC_MAGIC, THREAD_MAGIC};
use crate::nlist::{Namelist, exe_path, load_bias};
use crate::record::{
    Pcpu, Physmem, Proc, Rec, SavedFrame, Thread, VmPage, decode_pcpu, decode_physmem, decode_proc, decode_thread,
};
use crate::core::CoreMem;
use crate::source::{MemSource, ProcMem};
use crate::validate::parse_layout;

/// Runtime addresses of the exported records (see `abi` for what each is). In the kernel's
/// ELF, `vk_layout` is the descriptor itself; every other root symbol is a pointer to its
/// record (the record belongs to the kernel module that keeps it), which `Kvm::open` follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roots {
    pub layout: u64,
    pub allproc: u64,
    pub pcpu: u64,
    pub ncpus: u64,
    pub msgbuf: u64,
    pub boottime_ns: u64,
    pub physmem: u64,
}

/// Root symbol names, in [`Roots`] field order.
pub const ROOT_SYMBOLS: [&str; 7] =
    ["vk_layout", "vk_allproc", "vk_pcpu", "vk_ncpus", "vk_msgbuf", "vk_boottime_ns", "vk_physmem"];

/// The link-time values of the root symbols, in [`ROOT_SYMBOLS`] order.
fn root_symbols(nl: &Namelist) -> Result<[u64; ROOT_SYMBOLS.len()], KvmError> {
    let mut vals = [0u64; ROOT_SYMBOLS.len()];
    for (v, name) in vals.iter_mut().zip(ROOT_SYMBOLS) {
        *v = nl.require(name)?;
    }
    Ok(vals)
}

/// Longest list a walk follows.
pub const MAX_LIST: usize = 100_000;

/// How many times a walk of a changing list is tried.
pub const RETRIES: u32 = 3;

/// An open kernel.
pub struct Kvm {
    src: Box<dyn MemSource>,
    layout: Layout,
    roots: Roots,
    /// For a vmcore: the kernel's uptime when it dumped.
    dumped_at_ns: Option<u64>,
}

impl std::fmt::Debug for Kvm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kvm").field("roots", &self.roots).finish_non_exhaustive()
    }
}

/// The pid in a `/proc/PID/mem` path (`/proc/self/mem` is this process).
pub fn pid_of(mem_path: &Path) -> Option<u32> {
    let mut parts = mem_path.iter().map(|c| c.to_string_lossy());
    if parts.next()? != "/" || parts.next()? != "proc" {
        return None;
    }
    let pid = parts.next()?;
    if parts.next()? != "mem" || parts.next().is_some() {
        return None;
    }
    if pid == "self" { Some(std::process::id()) } else { pid.parse().ok().filter(|&p| p > 0) }
}

impl Kvm {
    /// Open a kernel: `mem_path` is `/proc/PID/mem` of a live one — symbols from `namelist`
    /// (default `/proc/PID/exe`, the very file the process runs), the load bias from
    /// `/proc/PID/maps` — or a vmcore (see [`Kvm::open_core`]).
    pub fn open(mem_path: &Path, namelist: Option<&Path>) -> Result<Kvm, KvmError> {
        let mem_name = mem_path.display().to_string();
        let Some(pid) = pid_of(mem_path) else {
            if crate::core::is_core(mem_path) {
                return Kvm::open_core(mem_path, namelist);
            }
            return Err(KvmError::NotProcMem { path: mem_name });
        };
        // Opening the memory first makes "no such process" and "permission denied" name it.
        let src = ProcMem::open(mem_path)?;
        let exe = exe_path(pid)?;
        let default_nl = format!("/proc/{pid}/exe");
        let nl = Namelist::load(namelist.unwrap_or(Path::new(&default_nl)))?;
        let vals = root_symbols(&nl).map_err(|e| match e {
            KvmError::NoSymbol { symbol, .. } if namelist.is_none() => {
                KvmError::NotVk { path: mem_name.clone(), exe: exe.clone(), symbol }
            }
            e => e,
        })?;
        let bias = load_bias(pid, nl.first_load_vaddr())?;
        Kvm::open_at(Box::new(src), vals, bias)
    }

    /// Open a vmcore (`db> dump`): memory from its PT_LOAD segments, symbols from `namelist`
    /// (default: the kernel executable the core's NT_FILE note names), the load bias from the
    /// core's vk note — a core has no `/proc/PID/maps`.
    pub fn open_core(core_path: &Path, namelist: Option<&Path>) -> Result<Kvm, KvmError> {
        let core = CoreMem::open(core_path)?;
        let name = core_path.display().to_string();
        let note = core.vk_note().ok_or_else(|| KvmError::Open {
            path: name.clone(),
            msg: "a core, but not a vk dump (it has no vk note)".to_string(),
        })?;
        let default_nl = core
            .mapped_files()
            .into_iter()
            .find(|(start, _, off, _)| *off == 0 && *start == note.load_bias)
            .map(|(_, _, _, path)| path);
        let nl_path = match (namelist, &default_nl) {
            (Some(p), _) => p.to_path_buf(),
            (None, Some(p)) => p.into(),
            (None, None) => {
                return Err(KvmError::Open {
                    path: name,
                    msg: "the dump does not name its kernel: give it with -N".to_string(),
                });
            }
        };
        let nl = Namelist::load(&nl_path)?;
        let vals = root_symbols(&nl)?;
        let bias = note.load_bias;
        let layout_addr = vals[0].wrapping_add(bias);
        if layout_addr != note.layout_addr {
            return Err(KvmError::Namelist {
                path: nl.path().to_string(),
                msg: format!(
                    "not the kernel that wrote {name} (its vk_layout would be at {layout_addr:#x}, the dump's is at {:#x})",
                    note.layout_addr
                ),
            });
        }
        let mut kvm = Kvm::open_at(Box::new(core), vals, bias)?;
        kvm.dumped_at_ns = Some(note.uptime_ns);
        Ok(kvm)
    }

    /// For a vmcore, the kernel's uptime when it was dumped (None for a live kernel).
    pub fn dumped_at_ns(&self) -> Option<u64> {
        self.dumped_at_ns
    }

    /// Read the layout at the first root and follow every other root pointer once.
    fn open_at(src: Box<dyn MemSource>, vals: [u64; ROOT_SYMBOLS.len()], bias: u64) -> Result<Kvm, KvmError> {
        let [layout, allproc, pcpu, ncpus, msgbuf, boottime_ns, physmem] = vals.map(|v| v.wrapping_add(bias));
        // The layout descriptor is checked first, so a kernel of another layout version is
        // refused before its roots are read.
        let mut buf = vec![0u8; size_of::<Layout>()];
        src.read(layout, &mut buf)?;
        parse_layout(&buf, layout)?;
        // Every other root symbol holds the address of its record (layout version 2).
        let deref = |sym: u64| -> Result<u64, KvmError> {
            let mut b = [0u8; 8];
            src.read(sym, &mut b)?;
            Ok(u64::from_le_bytes(b))
        };
        let roots = Roots {
            layout,
            allproc: deref(allproc)?,
            pcpu: deref(pcpu)?,
            ncpus: deref(ncpus)?,
            msgbuf: deref(msgbuf)?,
            boottime_ns: deref(boottime_ns)?,
            physmem: deref(physmem)?,
        };
        Kvm::from_roots(src, roots)
    }

    /// Open a kernel whose root addresses are known (the kernel reading itself).
    pub fn from_roots(src: Box<dyn MemSource>, roots: Roots) -> Result<Kvm, KvmError> {
        let mut buf = vec![0u8; size_of::<Layout>()];
        src.read(roots.layout, &mut buf)?;
        let layout = parse_layout(&buf, roots.layout)?;
        Ok(Kvm { src, layout, roots, dumped_at_ns: None })
    }

    /// The kernel's layout descriptor, as read and checked.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    pub fn roots(&self) -> &Roots {
        &self.roots
    }

    /// Read raw kernel memory.
    pub fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), KvmError> {
        self.src.read(addr, buf)
    }

    pub fn read_u64(&self, addr: u64) -> Result<u64, KvmError> {
        let mut b = [0u8; 8];
        self.src.read(addr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    pub fn read_u32(&self, addr: u64) -> Result<u32, KvmError> {
        let mut b = [0u8; 4];
        self.src.read(addr, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// Read a whole record in one piece and check its magic word.
    fn record(
        &self,
        what: &'static str,
        addr: u64,
        size: u32,
        magic_off: u32,
        magic: u64,
    ) -> Result<Vec<u8>, KvmError> {
        let mut bytes = vec![0u8; size as usize];
        self.src.read(addr, &mut bytes)?;
        Rec::new(what, addr, &bytes).check_magic(magic_off, magic)?;
        Ok(bytes)
    }

    /// Every process on allproc with its threads, in list (pid) order. A walk that meets a
    /// freed record, an unreadable address or a loop is tried again, [`RETRIES`] times in all.
    pub fn procs(&self) -> Result<Vec<Proc>, KvmError> {
        let mut tries = 0;
        loop {
            tries += 1;
            match self.procs_once() {
                Err(e) if e.is_transient() && tries < RETRIES => std::thread::yield_now(),
                Err(e) if e.is_transient() => {
                    return Err(KvmError::Unstable { what: "allproc", tries, last: Box::new(e) });
                }
                r => return r,
            }
        }
    }

    fn procs_once(&self) -> Result<Vec<Proc>, KvmError> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut addr = self.read_u64(self.roots.allproc)?;
        while addr != 0 {
            if out.len() >= MAX_LIST || !seen.insert(addr) {
                return Err(KvmError::Loop { what: "allproc", addr, limit: MAX_LIST });
            }
            let (mut p, next, threads) = self.proc_links_at(addr)?;
            p.threads = self.threads_from(threads)?;
            out.push(p);
            addr = next;
        }
        Ok(out)
    }

    /// The process record at `addr` (its `threads` left empty).
    pub fn proc_at(&self, addr: u64) -> Result<Proc, KvmError> {
        Ok(self.proc_links_at(addr)?.0)
    }

    /// The process record at `addr` with its threads.
    pub fn proc_with_threads(&self, addr: u64) -> Result<Proc, KvmError> {
        let (mut p, _, threads) = self.proc_links_at(addr)?;
        p.threads = self.threads_from(threads)?;
        Ok(p)
    }

    fn proc_links_at(&self, addr: u64) -> Result<(Proc, u64, u64), KvmError> {
        let l = &self.layout.proc_;
        let bytes = self.record("process", addr, l.size, l.magic, PROC_MAGIC)?;
        decode_proc(&Rec::new("process", addr, &bytes), &self.layout)
    }

    fn threads_from(&self, mut addr: u64) -> Result<Vec<Thread>, KvmError> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        while addr != 0 {
            if out.len() >= MAX_LIST || !seen.insert(addr) {
                return Err(KvmError::Loop { what: "thread", addr, limit: MAX_LIST });
            }
            let (t, next) = self.thread_links_at(addr)?;
            out.push(t);
            addr = next;
        }
        Ok(out)
    }

    /// The thread record at `addr`.
    pub fn thread_at(&self, addr: u64) -> Result<Thread, KvmError> {
        Ok(self.thread_links_at(addr)?.0)
    }

    fn thread_links_at(&self, addr: u64) -> Result<(Thread, u64), KvmError> {
        let l = &self.layout.thread;
        let bytes = self.record("thread", addr, l.size, l.magic, THREAD_MAGIC)?;
        decode_thread(&Rec::new("thread", addr, &bytes), &self.layout)
    }

    /// CPUs started (`vk_ncpus`).
    pub fn ncpus(&self) -> Result<u32, KvmError> {
        let n = self.read_u32(self.roots.ncpus)?;
        if n > self.layout.maxcpu {
            return Err(KvmError::Inconsistent {
                addr: self.roots.ncpus,
                what: format!("vk_ncpus is {n}, more than maxcpu {}", self.layout.maxcpu),
            });
        }
        Ok(n)
    }

    /// The per-CPU record of CPU `cpuid` (which need not be started).
    pub fn pcpu(&self, cpuid: u32) -> Result<Pcpu, KvmError> {
        let l = &self.layout.pcpu;
        if cpuid >= self.layout.maxcpu {
            return Err(KvmError::Inconsistent {
                addr: self.roots.pcpu,
                what: format!("cpu {cpuid} is beyond maxcpu {}", self.layout.maxcpu),
            });
        }
        let addr = self.roots.pcpu.wrapping_add(u64::from(cpuid) * u64::from(l.size));
        let bytes = self.record("pcpu", addr, l.size, l.magic, PCPU_MAGIC)?;
        decode_pcpu(&Rec::new("pcpu", addr, &bytes), &self.layout)
    }

    /// The per-CPU records of the started CPUs, by cpuid.
    pub fn pcpus(&self) -> Result<Vec<Pcpu>, KvmError> {
        (0..self.ncpus()?).map(|i| self.pcpu(i)).collect()
    }

    /// The message buffer's text, oldest first (read in one piece, so it is a snapshot).
    pub fn msgbuf(&self) -> Result<String, KvmError> {
        let l = &self.layout.msgbuf;
        let addr = self.roots.msgbuf;
        let bytes = self.record("msgbuf", addr, l.size, l.magic, MSGBUF_MAGIC)?;
        let r = Rec::new("msgbuf", addr, &bytes);
        let size = r.u64_at(l.bufsize)?;
        if size == 0 || size > u64::from(self.layout.msgbuf_size) {
            return Err(KvmError::Inconsistent { addr, what: format!("message buffer size {size}") });
        }
        let wptr = r.u64_at(l.wptr)?;
        let ring = r.bytes_at(l.buf, size as usize)?;
        // The valid text is the last min(wptr, size) bytes, ending at wptr % size.
        let text = if wptr <= size {
            ring[..wptr as usize].to_vec()
        } else {
            let end = (wptr % size) as usize;
            [&ring[end..], &ring[..end]].concat()
        };
        Ok(String::from_utf8_lossy(&text).into_owned())
    }

    /// Realtime at boot, ns since the epoch (0 before the kernel has set it).
    pub fn boottime_ns(&self) -> Result<u64, KvmError> {
        self.read_u64(self.roots.boottime_ns)
    }

    /// Physical memory.
    pub fn physmem(&self) -> Result<Physmem, KvmError> {
        let l = &self.layout.physmem;
        let addr = self.roots.physmem;
        let bytes = self.record("physmem", addr, l.size, l.magic, PHYSMEM_MAGIC)?;
        decode_physmem(&Rec::new("physmem", addr, &bytes), &self.layout)
    }

    /// The `vm_page` of the physical page holding `addr`: a physical address, or a direct-map
    /// address (the kernel pointer to that memory).
    pub fn vm_page(&self, addr: u64) -> Result<VmPage, KvmError> {
        let pm = self.physmem()?;
        let pa = if addr >= pm.dmap_base { addr - pm.dmap_base } else { addr };
        if pa >= pm.size || pa / crate::abi::PAGE_SIZE >= pm.npages {
            return Err(KvmError::Inconsistent {
                addr,
                what: format!("not physical memory (0 to {:#x}, direct map at {:#x})", pm.size, pm.dmap_base),
            });
        }
        let l = &self.layout.vm_page;
        let index = pa / crate::abi::PAGE_SIZE;
        let entry = pm.vm_page.wrapping_add(index * pm.vm_page_size);
        let mut bytes = vec![0u8; l.size as usize];
        self.src.read(entry, &mut bytes)?;
        let r = Rec::new("vm_page", entry, &bytes);
        Ok(VmPage {
            pa: index * crate::abi::PAGE_SIZE,
            addr: entry,
            flags: r.u32_at(l.flags)?,
            refcount: r.u32_at(l.refcount)?,
            owner: r.u64_at(l.owner)?,
        })
    }

    /// Where a thread that is off CPU stopped, from its Pcb's saved stack pointer and the switch
    /// frame there. None when it has no Pcb, is on a CPU (its registers are that CPU's, not
    /// saved anywhere), or the Pcb or frame cannot be read.
    pub fn thread_saved_frame(&self, t: &Thread) -> Option<SavedFrame> {
        if t.pcb == 0 {
            return None;
        }
        let pcb = &self.layout.pcb;
        if self.read_u32(t.pcb.wrapping_add(u64::from(pcb.on_cpu))).ok()? != 0 {
            return None;
        }
        let saved_rsp = self.read_u64(t.pcb.wrapping_add(u64::from(pcb.rsp))).ok()?;
        if saved_rsp == 0 {
            return None;
        }
        let rbp = self.read_u64(saved_rsp.wrapping_add(u64::from(pcb.frame_rbp))).ok()?;
        let rip = self.read_u64(saved_rsp.wrapping_add(u64::from(pcb.frame_rip))).ok()?;
        Some(SavedFrame { rip, rsp: saved_rsp.wrapping_add(u64::from(pcb.frame_size)), rbp })
    }
}

#[cfg(test)]
mod tests;
