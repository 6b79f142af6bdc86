//! The reader: open a kernel's memory, check its layout descriptor, and decode its records.

use std::path::Path;

use crate::abi::{LAYOUT_VERSION, Layout, MSGBUF_MAGIC, PCPU_MAGIC, PHYSMEM_MAGIC, PROC_MAGIC, THREAD_MAGIC, name_from_bytes};
use crate::nlist::{Namelist, load_bias};
use crate::source::{MemSource, ProcMem};
use crate::KvmError;

/// Runtime addresses of the exported roots.
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

/// Root symbol names, in `Roots` field order.
pub const ROOT_SYMBOLS: [&str; 7] =
    ["vk_layout", "vk_allproc", "vk_pcpu", "vk_ncpus", "vk_msgbuf", "vk_boottime_ns", "vk_physmem"];

/// Longest list a walk follows.
pub const MAX_LIST: usize = 100_000;

/// A thread, decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Thread {
    /// Address of its record.
    pub addr: u64,
    pub tid: u64,
    pub pcb: u64,
    pub state: u32,
    pub flags: u32,
    pub cpu: u32,
    pub pri: u32,
    pub name: String,
    pub wmesg: String,
    pub wchan: u64,
    pub slptime_ns: u64,
    pub stack_base: u64,
    pub stack_size: u64,
    pub runtime_ns: u64,
    pub switches: u64,
}

/// A process, decoded, with its threads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Proc {
    pub addr: u64,
    pub pid: i32,
    pub ppid: i32,
    pub pgid: i32,
    pub sid: i32,
    pub uid: u32,
    pub gid: u32,
    pub state: u32,
    pub flags: u32,
    pub nice: i32,
    pub xstat: i32,
    pub tty: u32,
    pub comm: String,
    pub vsz_bytes: u64,
    pub rss_pages: u64,
    pub start_ns: u64,
    pub threads: Vec<Thread>,
}

/// A CPU, decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pcpu {
    pub addr: u64,
    pub cpuid: u32,
    pub state: u32,
    pub host_tid: u32,
    pub nrun: u32,
    pub curthread: u64,
    pub idlethread: u64,
    pub switches: u64,
    pub intrs: u64,
    pub idle_ns: u64,
    /// Registers of its last trap or stop (abi::reg order), when valid.
    pub trapframe: Option<Vec<u64>>,
}

/// Physical memory, decoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Physmem {
    pub dmap_base: u64,
    pub size: u64,
    pub vm_page: u64,
    pub npages: u64,
    pub vm_page_size: u64,
    pub free_pages: u64,
}

/// Where a thread that is off CPU stopped: the start of its trace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SavedFrame {
    pub rip: u64,
    pub rsp: u64,
    pub rbp: u64,
}

/// A record's bytes with bounds-checked field access.
struct Rec<'a> {
    what: &'static str,
    addr: u64,
    bytes: &'a [u8],
}

impl Rec<'_> {
    fn field(&self, off: u32, len: usize) -> Result<&[u8], KvmError> {
        let o = off as usize;
        self.bytes.get(o..o + len).ok_or_else(|| KvmError::Inconsistent {
            addr: self.addr,
            what: format!("{} field at offset {off} beyond the record ({} bytes)", self.what, self.bytes.len()),
        })
    }
    fn u64(&self, off: u32) -> Result<u64, KvmError> {
        let b = self.field(off, 8)?;
        Ok(u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
    }
    fn u32(&self, off: u32) -> Result<u32, KvmError> {
        let b = self.field(off, 4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn i32(&self, off: u32) -> Result<i32, KvmError> {
        Ok(self.u32(off)? as i32)
    }
    fn name(&self, off: u32, len: u32) -> Result<String, KvmError> {
        Ok(name_from_bytes(self.field(off, len as usize)?))
    }
}

/// An open kernel.
pub struct Kvm {
    src: Box<dyn MemSource>,
    layout: Layout,
    roots: Roots,
}

impl std::fmt::Debug for Kvm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kvm").field("roots", &self.roots).finish_non_exhaustive()
    }
}

/// The pid in a `/proc/PID/mem` path.
fn pid_of(mem_path: &Path) -> Option<u32> {
    let mut parts = mem_path.iter().map(|c| c.to_string_lossy());
    if parts.next()? != "/" || parts.next()? != "proc" {
        return None;
    }
    let pid = parts.next()?;
    if parts.next()? != "mem" || parts.next().is_some() {
        return None;
    }
    if pid == "self" { Some(std::process::id()) } else { pid.parse().ok() }
}

impl Kvm {
    /// Open a live kernel: `mem_path` is `/proc/PID/mem`; symbols come from `namelist`
    /// (default `/proc/PID/exe`) and the load bias from `/proc/PID/maps`.
    pub fn open(mem_path: &Path, namelist: Option<&Path>) -> Result<Kvm, KvmError> {
        let pid = pid_of(mem_path).ok_or_else(|| KvmError::Open {
            path: mem_path.display().to_string(),
            msg: "not a /proc/PID/mem path".to_string(),
        })?;
        let exe = format!("/proc/{pid}/exe");
        if !Path::new(&format!("/proc/{pid}")).exists() {
            return Err(KvmError::Open { path: mem_path.display().to_string(), msg: "no such process".to_string() });
        }
        let nl = Namelist::load(namelist.unwrap_or(Path::new(&exe)))?;
        let mut vals = [0u64; 7];
        for (v, name) in vals.iter_mut().zip(ROOT_SYMBOLS) {
            *v = nl.require(name)?;
        }
        let bias = load_bias(pid, nl.first_load_vaddr())?;
        let r = |i: usize| vals[i].wrapping_add(bias);
        let roots =
            Roots { layout: r(0), allproc: r(1), pcpu: r(2), ncpus: r(3), msgbuf: r(4), boottime_ns: r(5), physmem: r(6) };
        let src = ProcMem::open(mem_path)?;
        Kvm::from_roots(Box::new(src), roots)
    }

    /// Open a kernel whose root addresses are known (the kernel reading itself).
    pub fn from_roots(src: Box<dyn MemSource>, roots: Roots) -> Result<Kvm, KvmError> {
        let mut buf = vec![0u8; std::mem::size_of::<Layout>()];
        src.read(roots.layout, &mut buf)?;
        let layout = Layout::from_bytes(&buf).ok_or(KvmError::BadLayout { addr: roots.layout })?;
        if layout.version != LAYOUT_VERSION {
            return Err(KvmError::Version { addr: roots.layout, found: layout.version, known: LAYOUT_VERSION });
        }
        validate(&layout, roots.layout)?;
        Ok(Kvm { src, layout, roots })
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    pub fn roots(&self) -> &Roots {
        &self.roots
    }

    /// Read raw memory.
    pub fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), KvmError> {
        self.src.read(addr, buf)
    }

    fn read_u64(&self, addr: u64) -> Result<u64, KvmError> {
        let mut b = [0u8; 8];
        self.src.read(addr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn read_u32(&self, addr: u64) -> Result<u32, KvmError> {
        let mut b = [0u8; 4];
        self.src.read(addr, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn record(&self, what: &'static str, addr: u64, size: u32, magic: u64) -> Result<Vec<u8>, KvmError> {
        let mut bytes = vec![0u8; size as usize];
        self.src.read(addr, &mut bytes)?;
        let found = u64::from_le_bytes(bytes.get(0..8).and_then(|b| b.try_into().ok()).unwrap_or([0; 8]));
        if found != magic {
            return Err(KvmError::BadRecord { what, addr, magic: found });
        }
        Ok(bytes)
    }

    /// Every process with its threads, walking allproc. A record freed during the walk (a
    /// live kernel) makes the walk start again, up to three times.
    pub fn procs(&self) -> Result<Vec<Proc>, KvmError> {
        let mut last = None;
        for _ in 0..3 {
            match self.procs_once() {
                Ok(p) => return Ok(p),
                Err(e @ (KvmError::BadRecord { .. } | KvmError::Read { .. } | KvmError::Loop { .. })) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or(KvmError::BadLayout { addr: self.roots.layout }))
    }

    fn procs_once(&self) -> Result<Vec<Proc>, KvmError> {
        let mut out = Vec::new();
        let mut addr = self.read_u64(self.roots.allproc)?;
        while addr != 0 {
            if out.len() >= MAX_LIST {
                return Err(KvmError::Loop { what: "allproc", addr, limit: MAX_LIST });
            }
            let (mut p, next, threads) = self.proc_links_at(addr)?;
            p.threads = self.threads_from(threads)?;
            out.push(p);
            addr = next;
        }
        Ok(out)
    }

    /// The process record at `addr` (without its threads).
    pub fn proc_at(&self, addr: u64) -> Result<Proc, KvmError> {
        Ok(self.proc_links_at(addr)?.0)
    }

    /// A process record and its `next` and `threads` links.
    fn proc_links_at(&self, addr: u64) -> Result<(Proc, u64, u64), KvmError> {
        let l = &self.layout.proc_;
        let bytes = self.record("process", addr, l.size, PROC_MAGIC)?;
        let r = Rec { what: "process", addr, bytes: &bytes };
        let links = (r.u64(l.next)?, r.u64(l.threads)?);
        let p = Proc {
            addr,
            pid: r.i32(l.pid)?,
            ppid: r.i32(l.ppid)?,
            pgid: r.i32(l.pgid)?,
            sid: r.i32(l.sid)?,
            uid: r.u32(l.uid)?,
            gid: r.u32(l.gid)?,
            state: r.u32(l.state)?,
            flags: r.u32(l.flags)?,
            nice: r.i32(l.nice)?,
            xstat: r.i32(l.xstat)?,
            tty: r.u32(l.tty)?,
            comm: r.name(l.comm, self.layout.name_len)?,
            vsz_bytes: r.u64(l.vsz_bytes)?,
            rss_pages: r.u64(l.rss_pages)?,
            start_ns: r.u64(l.start_ns)?,
            threads: Vec::new(),
        };
        Ok((p, links.0, links.1))
    }

    fn threads_from(&self, mut addr: u64) -> Result<Vec<Thread>, KvmError> {
        let mut out = Vec::new();
        while addr != 0 {
            if out.len() >= MAX_LIST {
                return Err(KvmError::Loop { what: "thread", addr, limit: MAX_LIST });
            }
            let (t, next) = self.thread_links_at(addr)?;
            addr = next;
            out.push(t);
        }
        Ok(out)
    }

    /// The thread record at `addr`.
    pub fn thread_at(&self, addr: u64) -> Result<Thread, KvmError> {
        Ok(self.thread_links_at(addr)?.0)
    }

    fn thread_links_at(&self, addr: u64) -> Result<(Thread, u64), KvmError> {
        let l = &self.layout.thread;
        let bytes = self.record("thread", addr, l.size, THREAD_MAGIC)?;
        let r = Rec { what: "thread", addr, bytes: &bytes };
        let next = r.u64(l.next)?;
        let t = Thread {
            addr,
            tid: r.u64(l.tid)?,
            pcb: r.u64(l.pcb)?,
            state: r.u32(l.state)?,
            flags: r.u32(l.flags)?,
            cpu: r.u32(l.cpu)?,
            pri: r.u32(l.pri)?,
            name: r.name(l.name, self.layout.name_len)?,
            wmesg: r.name(l.wmesg, self.layout.wmesg_len)?,
            wchan: r.u64(l.wchan)?,
            slptime_ns: r.u64(l.slptime_ns)?,
            stack_base: r.u64(l.stack_base)?,
            stack_size: r.u64(l.stack_size)?,
            runtime_ns: r.u64(l.runtime_ns)?,
            switches: r.u64(l.switches)?,
        };
        Ok((t, next))
    }

    /// CPUs started (`vk_ncpus`, capped at the layout's maxcpu).
    pub fn ncpus(&self) -> Result<u32, KvmError> {
        Ok(self.read_u32(self.roots.ncpus)?.min(self.layout.maxcpu))
    }

    /// The per-CPU records of the started CPUs.
    pub fn pcpus(&self) -> Result<Vec<Pcpu>, KvmError> {
        let l = &self.layout.pcpu;
        (0..self.ncpus()?)
            .map(|i| {
                let addr = self.roots.pcpu + u64::from(i) * u64::from(l.size);
                let bytes = self.record("pcpu", addr, l.size, PCPU_MAGIC)?;
                let r = Rec { what: "pcpu", addr, bytes: &bytes };
                let trapframe = if r.u32(l.tf_valid)? != 0 {
                    Some((0..l.tf_nregs).map(|k| r.u64(l.trapframe + 8 * k)).collect::<Result<Vec<_>, _>>()?)
                } else {
                    None
                };
                Ok(Pcpu {
                    addr,
                    cpuid: r.u32(l.cpuid)?,
                    state: r.u32(l.state)?,
                    host_tid: r.u32(l.host_tid)?,
                    nrun: r.u32(l.nrun)?,
                    curthread: r.u64(l.curthread)?,
                    idlethread: r.u64(l.idlethread)?,
                    switches: r.u64(l.switches)?,
                    intrs: r.u64(l.intrs)?,
                    idle_ns: r.u64(l.idle_ns)?,
                    trapframe,
                })
            })
            .collect()
    }

    /// The message buffer's text, oldest first.
    pub fn msgbuf(&self) -> Result<String, KvmError> {
        let l = &self.layout.msgbuf;
        let base = self.roots.msgbuf;
        let magic = self.read_u64(base + u64::from(l.magic))?;
        if magic != MSGBUF_MAGIC {
            return Err(KvmError::BadRecord { what: "msgbuf", addr: base, magic });
        }
        let size = self.read_u64(base + u64::from(l.bufsize))?;
        if size == 0 || size > 1 << 24 {
            return Err(KvmError::Inconsistent { addr: base, what: format!("message buffer size {size}") });
        }
        let wptr = self.read_u64(base + u64::from(l.wptr))?;
        let mut ring = vec![0u8; size as usize];
        self.src.read(base + u64::from(l.buf), &mut ring)?;
        let len = wptr.min(size);
        let text: Vec<u8> = (wptr - len..wptr).map(|i| ring[(i % size) as usize]).collect();
        Ok(String::from_utf8_lossy(&text).into_owned())
    }

    /// Realtime at boot, ns since the epoch.
    pub fn boottime_ns(&self) -> Result<u64, KvmError> {
        self.read_u64(self.roots.boottime_ns)
    }

    /// Physical memory.
    pub fn physmem(&self) -> Result<Physmem, KvmError> {
        let l = &self.layout.physmem;
        let addr = self.roots.physmem;
        let bytes = self.record("physmem", addr, l.size, PHYSMEM_MAGIC)?;
        let r = Rec { what: "physmem", addr, bytes: &bytes };
        Ok(Physmem {
            dmap_base: r.u64(l.dmap_base)?,
            size: r.u64(l.mem_size)?,
            vm_page: r.u64(l.vm_page)?,
            npages: r.u64(l.npages)?,
            vm_page_size: r.u64(l.vm_page_size)?,
            free_pages: r.u64(l.free_pages)?,
        })
    }

    /// Where a thread that is off CPU stopped, from its Pcb and switch frame; None when it is
    /// on a CPU (its registers are that CPU's) or has no Pcb.
    pub fn thread_saved_frame(&self, t: &Thread) -> Option<SavedFrame> {
        if t.pcb == 0 {
            return None;
        }
        let pcb = &self.layout.pcb;
        if self.read_u32(t.pcb + u64::from(pcb.on_cpu)).ok()? != 0 {
            return None;
        }
        let rsp = self.read_u64(t.pcb + u64::from(pcb.rsp)).ok()?;
        if rsp == 0 {
            return None;
        }
        let rbp = self.read_u64(rsp + u64::from(pcb.frame_rbp)).ok()?;
        let rip = self.read_u64(rsp + u64::from(pcb.frame_rip)).ok()?;
        Some(SavedFrame { rip, rsp: rsp + u64::from(pcb.frame_size), rbp })
    }
}

/// Check a descriptor read from a target makes sense before trusting its offsets.
fn validate(l: &Layout, addr: u64) -> Result<(), KvmError> {
    let bad = |what: String| Err(KvmError::Inconsistent { addr, what });
    if l.maxcpu == 0 || l.maxcpu > 64 {
        return bad(format!("maxcpu {}", l.maxcpu));
    }
    if l.name_len == 0 || l.name_len > 256 || l.wmesg_len == 0 || l.wmesg_len > 256 {
        return bad(format!("name lengths {}/{}", l.name_len, l.wmesg_len));
    }
    let sizes = [("process", l.proc_.size), ("thread", l.thread.size), ("pcpu", l.pcpu.size), ("physmem", l.physmem.size)];
    for (what, size) in sizes {
        if !(8..=1 << 16).contains(&size) {
            return bad(format!("{what} record size {size}"));
        }
    }
    if l.pcpu.tf_nregs > 64 || l.pcpu.trapframe + 8 * l.pcpu.tf_nregs > l.pcpu.size {
        return bad(format!("trap frame of {} registers at {}", l.pcpu.tf_nregs, l.pcpu.trapframe));
    }
    if l.pcb.frame_size > 4096 || l.pcb.frame_rip >= l.pcb.frame_size || l.pcb.frame_rbp >= l.pcb.frame_size {
        return bad(format!("switch frame of {} bytes", l.pcb.frame_size));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_of_proc_paths() {
        assert_eq!(pid_of(Path::new("/proc/123/mem")), Some(123));
        assert_eq!(pid_of(Path::new("/proc/self/mem")), Some(std::process::id()));
        assert_eq!(pid_of(Path::new("/proc/123/maps")), None);
        assert_eq!(pid_of(Path::new("/tmp/vmcore.0")), None);
        assert_eq!(pid_of(Path::new("/proc/abc/mem")), None);
    }
}
