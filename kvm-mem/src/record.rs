//! Decoding records: the plain Rust structs a reader returns, and how each is decoded from the
//! bytes of one record through the layout's offsets.
//!
//! A record is read with one `read` of `layout.X.size` bytes and then decoded here; every field
//! access is bounds checked ([`Rec::u64_at`] and friends return an error, never panic), so a
//! layout that lies about its offsets gives a clear error instead of garbage or a crash.

use crate::KvmError;
use crate::abi::{Layout, name_from_bytes};

/// One record's bytes, with bounds-checked field access.
#[derive(Debug, Clone, Copy)]
pub struct Rec<'a> {
    what: &'static str,
    addr: u64,
    bytes: &'a [u8],
}

impl<'a> Rec<'a> {
    /// The bytes of the `what` record that was read at `addr`.
    pub fn new(what: &'static str, addr: u64, bytes: &'a [u8]) -> Rec<'a> {
        Rec { what, addr, bytes }
    }

    pub fn bytes_at(&self, off: u32, len: usize) -> Result<&'a [u8], KvmError> {
        let bytes = self.bytes;
        (off as usize).checked_add(len).and_then(|end| bytes.get(off as usize..end)).ok_or(KvmError::Field {
            what: self.what,
            addr: self.addr,
            off,
            len,
            size: bytes.len(),
        })
    }

    fn array<const N: usize>(&self, off: u32) -> Result<[u8; N], KvmError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes_at(off, N)?);
        Ok(out)
    }

    pub fn u64_at(&self, off: u32) -> Result<u64, KvmError> {
        Ok(u64::from_le_bytes(self.array(off)?))
    }

    pub fn u32_at(&self, off: u32) -> Result<u32, KvmError> {
        Ok(u32::from_le_bytes(self.array(off)?))
    }

    pub fn i32_at(&self, off: u32) -> Result<i32, KvmError> {
        Ok(i32::from_le_bytes(self.array(off)?))
    }

    /// A NUL-padded name of `len` bytes.
    pub fn name_at(&self, off: u32, len: u32) -> Result<String, KvmError> {
        Ok(name_from_bytes(self.bytes_at(off, len as usize)?))
    }

    /// The magic word at `off`, checked against `magic`.
    pub fn check_magic(&self, off: u32, magic: u64) -> Result<(), KvmError> {
        match self.u64_at(off)? {
            found if found == magic => Ok(()),
            found => Err(KvmError::BadRecord { what: self.what, addr: self.addr, magic: found }),
        }
    }
}

/// A thread (a kernel thread, or the kernel side of a guest thread), decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Thread {
    /// Address of its record.
    pub addr: u64,
    /// Address of its process's record.
    pub proc_addr: u64,
    pub tid: u64,
    /// Address of its platform context block (0 if none).
    pub pcb: u64,
    /// One of `abi::tstate`.
    pub state: u32,
    /// Bits of `abi::tflags`.
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
    /// Address of its record.
    pub addr: u64,
    pub pid: i32,
    pub ppid: i32,
    pub pgid: i32,
    pub sid: i32,
    pub uid: u32,
    pub gid: u32,
    /// One of `abi::pstate`.
    pub state: u32,
    /// Bits of `abi::pflags`.
    pub flags: u32,
    pub nice: i32,
    /// The kernel's count; `threads` is what the walk found.
    pub nthreads: u32,
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
    /// One of `abi::cpustate`.
    pub state: u32,
    pub host_tid: u32,
    pub nrun: u32,
    /// ThreadRecord addresses of the thread on the CPU and of its idle thread.
    pub curthread: u64,
    pub idlethread: u64,
    pub switches: u64,
    pub intrs: u64,
    pub idle_ns: u64,
    /// Registers of its last trap or stop (`abi::reg` order) when the kernel marked them valid.
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

/// One physical page's `vm_page`, decoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VmPage {
    /// Physical address of the page.
    pub pa: u64,
    /// Address of its `vm_page` entry.
    pub addr: u64,
    /// Bits of `abi::pgflags`.
    pub flags: u32,
    pub refcount: u32,
    /// Who holds it: a pid, an object id, 0 for none.
    pub owner: u64,
}

impl VmPage {
    /// The flag bits by name (`ANON|FILE`), `0` for none; unknown bits in hex.
    pub fn flag_names(&self) -> String {
        let mut names: Vec<String> = crate::abi::pgflags::NAMES
            .iter()
            .filter(|(bit, _)| self.flags & bit != 0)
            .map(|(_, n)| n.to_string())
            .collect();
        let known = crate::abi::pgflags::NAMES.iter().fold(0, |m, (bit, _)| m | bit);
        if self.flags & !known != 0 {
            names.push(format!("{:#x}", self.flags & !known));
        }
        if names.is_empty() { "0".to_string() } else { names.join("|") }
    }
}

/// Where a thread that is off CPU stopped: the start of its stack trace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SavedFrame {
    /// Return address of the switch frame: where the thread resumes.
    pub rip: u64,
    /// The caller's stack pointer (saved rsp + switch frame size).
    pub rsp: u64,
    pub rbp: u64,
}

/// A process record (threads still empty) and its `next` and `threads` links.
pub(crate) fn decode_proc(r: &Rec<'_>, layout: &Layout) -> Result<(Proc, u64, u64), KvmError> {
    let l = &layout.proc_;
    let p = Proc {
        addr: r.addr,
        pid: r.i32_at(l.pid)?,
        ppid: r.i32_at(l.ppid)?,
        pgid: r.i32_at(l.pgid)?,
        sid: r.i32_at(l.sid)?,
        uid: r.u32_at(l.uid)?,
        gid: r.u32_at(l.gid)?,
        state: r.u32_at(l.state)?,
        flags: r.u32_at(l.flags)?,
        nice: r.i32_at(l.nice)?,
        nthreads: r.u32_at(l.nthreads)?,
        xstat: r.i32_at(l.xstat)?,
        tty: r.u32_at(l.tty)?,
        comm: r.name_at(l.comm, layout.name_len)?,
        vsz_bytes: r.u64_at(l.vsz_bytes)?,
        rss_pages: r.u64_at(l.rss_pages)?,
        start_ns: r.u64_at(l.start_ns)?,
        threads: Vec::new(),
    };
    Ok((p, r.u64_at(l.next)?, r.u64_at(l.threads)?))
}

/// A thread record and its `next` link.
pub(crate) fn decode_thread(r: &Rec<'_>, layout: &Layout) -> Result<(Thread, u64), KvmError> {
    let l = &layout.thread;
    let t = Thread {
        addr: r.addr,
        proc_addr: r.u64_at(l.proc_)?,
        tid: r.u64_at(l.tid)?,
        pcb: r.u64_at(l.pcb)?,
        state: r.u32_at(l.state)?,
        flags: r.u32_at(l.flags)?,
        cpu: r.u32_at(l.cpu)?,
        pri: r.u32_at(l.pri)?,
        name: r.name_at(l.name, layout.name_len)?,
        wmesg: r.name_at(l.wmesg, layout.wmesg_len)?,
        wchan: r.u64_at(l.wchan)?,
        slptime_ns: r.u64_at(l.slptime_ns)?,
        stack_base: r.u64_at(l.stack_base)?,
        stack_size: r.u64_at(l.stack_size)?,
        runtime_ns: r.u64_at(l.runtime_ns)?,
        switches: r.u64_at(l.switches)?,
    };
    Ok((t, r.u64_at(l.next)?))
}

pub(crate) fn decode_pcpu(r: &Rec<'_>, layout: &Layout) -> Result<Pcpu, KvmError> {
    let l = &layout.pcpu;
    let trapframe = if r.u32_at(l.tf_valid)? != 0 {
        let regs = (0..l.tf_nregs).map(|i| r.u64_at(l.trapframe.saturating_add(i.saturating_mul(8))));
        Some(regs.collect::<Result<Vec<u64>, KvmError>>()?)
    } else {
        None
    };
    Ok(Pcpu {
        addr: r.addr,
        cpuid: r.u32_at(l.cpuid)?,
        state: r.u32_at(l.state)?,
        host_tid: r.u32_at(l.host_tid)?,
        nrun: r.u32_at(l.nrun)?,
        curthread: r.u64_at(l.curthread)?,
        idlethread: r.u64_at(l.idlethread)?,
        switches: r.u64_at(l.switches)?,
        intrs: r.u64_at(l.intrs)?,
        idle_ns: r.u64_at(l.idle_ns)?,
        trapframe,
    })
}

pub(crate) fn decode_physmem(r: &Rec<'_>, layout: &Layout) -> Result<Physmem, KvmError> {
    let l = &layout.physmem;
    Ok(Physmem {
        dmap_base: r.u64_at(l.dmap_base)?,
        size: r.u64_at(l.mem_size)?,
        vm_page: r.u64_at(l.vm_page)?,
        npages: r.u64_at(l.npages)?,
        vm_page_size: r.u64_at(l.vm_page_size)?,
        free_pages: r.u64_at(l.free_pages)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::{PcbLayout, VmPageLayout};

    const PCB: PcbLayout = PcbLayout { rsp: 0, on_cpu: 8, frame_rbp: 40, frame_rip: 48, frame_size: 56 };
    const VMP: VmPageLayout = VmPageLayout { size: 16, flags: 0, refcount: 4, owner: 8 };

    #[test]
    fn fields_decode_little_endian() {
        let bytes: Vec<u8> = (0u8..16).collect();
        let r = Rec::new("test", 0x1000, &bytes);
        assert_eq!(r.u64_at(0).unwrap(), 0x0706_0504_0302_0100);
        assert_eq!(r.u32_at(12).unwrap(), 0x0f0e_0d0c);
        assert_eq!(r.i32_at(8).unwrap(), 0x0b0a_0908);
        assert_eq!(r.bytes_at(15, 1).unwrap(), &[15]);
        assert_eq!(r.bytes_at(16, 0).unwrap(), &[] as &[u8]);
    }

    #[test]
    fn fields_beyond_the_record_are_errors() {
        let bytes = [0u8; 16];
        let r = Rec::new("thread", 0x1000, &bytes);
        let e = r.u64_at(12).unwrap_err();
        assert_eq!(e.to_string(), "thread record at 0x1000: field at offset 12+8 is beyond its 16 bytes");
        assert!(r.u32_at(13).is_err());
        assert!(r.i32_at(u32::MAX).is_err());
        assert!(r.bytes_at(u32::MAX, usize::MAX).is_err());
        assert!(r.name_at(10, 24).is_err());
    }

    #[test]
    fn magic_mismatch_names_the_record() {
        let bytes = 7u64.to_le_bytes();
        let e = Rec::new("process", 0x2000, &bytes).check_magic(0, 8).unwrap_err();
        assert_eq!(e.to_string(), "bad process record at 0x2000 (magic 0x7)");
    }

    #[test]
    fn a_short_record_fails_decoding_instead_of_panicking() {
        let layout = Layout::new(PCB, VMP);
        let bytes = vec![0u8; 40];
        let r = Rec::new("thread", 0x3000, &bytes);
        assert!(matches!(decode_thread(&r, &layout), Err(KvmError::Field { .. })));
        assert!(matches!(decode_proc(&r, &layout), Err(KvmError::Field { .. })));
        assert!(matches!(decode_physmem(&r, &layout), Err(KvmError::Field { .. })));
    }

    #[test]
    fn pcpu_trapframe_only_when_valid() {
        let layout = Layout::new(PCB, VMP);
        let l = &layout.pcpu;
        let mut bytes = vec![0u8; l.size as usize];
        let put = |b: &mut Vec<u8>, off: u32, v: &[u8]| b[off as usize..off as usize + v.len()].copy_from_slice(v);
        put(&mut bytes, l.cpuid, &3u32.to_le_bytes());
        put(&mut bytes, l.trapframe + 16 * 8, &0xdead_beefu64.to_le_bytes());
        let p = decode_pcpu(&Rec::new("pcpu", 0, &bytes), &layout).unwrap();
        assert_eq!((p.cpuid, p.trapframe.clone()), (3, None));
        put(&mut bytes, l.tf_valid, &1u32.to_le_bytes());
        let p = decode_pcpu(&Rec::new("pcpu", 0, &bytes), &layout).unwrap();
        let tf = p.trapframe.unwrap();
        assert_eq!((tf.len(), tf[crate::abi::reg::RIP]), (crate::abi::TF_NREGS, 0xdead_beef));
    }
}
