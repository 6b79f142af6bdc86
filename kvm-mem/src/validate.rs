//! Checking a layout descriptor read from a target before trusting its offsets: the magic and
//! version, sane limits, and that every field the reader uses lies inside its record.

use crate::KvmError;
use crate::abi::{LAYOUT_MAGIC, LAYOUT_VERSION, Layout};

/// Largest fixed record (process, thread, CPU, physmem) a reader accepts.
const MAX_RECORD: u32 = 1 << 16;
/// Largest message buffer a reader accepts.
const MAX_MSGBUF: u32 = 1 << 24;
/// Most CPUs a layout may describe.
const MAX_CPUS: u32 = 64;

/// Parse and check the descriptor bytes read at `addr`.
pub fn parse_layout(bytes: &[u8], addr: u64) -> Result<Layout, KvmError> {
    let magic = bytes.get(..8).and_then(|b| b.try_into().ok()).map_or(0, u64::from_le_bytes);
    let layout = match Layout::from_bytes(bytes) {
        Some(l) if magic == LAYOUT_MAGIC => l,
        _ => return Err(KvmError::BadLayout { addr, magic }),
    };
    if layout.version != LAYOUT_VERSION {
        return Err(KvmError::Version { addr, found: layout.version, known: LAYOUT_VERSION });
    }
    validate(&layout, addr)?;
    Ok(layout)
}

/// Check limits and that each field the reader uses fits in its record.
pub fn validate(l: &Layout, addr: u64) -> Result<(), KvmError> {
    let bad = |what: String| Err(KvmError::Inconsistent { addr, what });
    if (l.size as usize) < size_of::<Layout>() {
        return bad(format!("descriptor of {} bytes, this reader needs {}", l.size, size_of::<Layout>()));
    }
    if l.maxcpu == 0 || l.maxcpu > MAX_CPUS {
        return bad(format!("maxcpu {}", l.maxcpu));
    }
    if !(1..=256).contains(&l.name_len) || !(1..=256).contains(&l.wmesg_len) {
        return bad(format!("name length {} / wmesg length {}", l.name_len, l.wmesg_len));
    }
    if l.msgbuf_size == 0 || l.msgbuf_size > MAX_MSGBUF {
        return bad(format!("message buffer size {}", l.msgbuf_size));
    }
    let (p, t, c, m, ph) = (&l.proc_, &l.thread, &l.pcpu, &l.msgbuf, &l.physmem);
    let (q, d, n, w) = (8, 4, l.name_len, l.wmesg_len);
    fits(
        "process",
        p.size,
        MAX_RECORD,
        &[
            ("magic", p.magic, q),
            ("next", p.next, q),
            ("threads", p.threads, q),
            ("pid", p.pid, d),
            ("ppid", p.ppid, d),
            ("pgid", p.pgid, d),
            ("sid", p.sid, d),
            ("uid", p.uid, d),
            ("gid", p.gid, d),
            ("state", p.state, d),
            ("flags", p.flags, d),
            ("nice", p.nice, d),
            ("nthreads", p.nthreads, d),
            ("xstat", p.xstat, d),
            ("tty", p.tty, d),
            ("comm", p.comm, n),
            ("vsz_bytes", p.vsz_bytes, q),
            ("rss_pages", p.rss_pages, q),
            ("start_ns", p.start_ns, q),
        ],
    )
    .or_else(bad)?;
    fits(
        "thread",
        t.size,
        MAX_RECORD,
        &[
            ("magic", t.magic, q),
            ("next", t.next, q),
            ("proc", t.proc_, q),
            ("pcb", t.pcb, q),
            ("tid", t.tid, q),
            ("state", t.state, d),
            ("flags", t.flags, d),
            ("cpu", t.cpu, d),
            ("pri", t.pri, d),
            ("name", t.name, n),
            ("wmesg", t.wmesg, w),
            ("wchan", t.wchan, q),
            ("slptime_ns", t.slptime_ns, q),
            ("stack_base", t.stack_base, q),
            ("stack_size", t.stack_size, q),
            ("runtime_ns", t.runtime_ns, q),
            ("switches", t.switches, q),
        ],
    )
    .or_else(bad)?;
    if c.tf_nregs == 0 || c.tf_nregs > 64 {
        return bad(format!("trap frame of {} registers", c.tf_nregs));
    }
    fits(
        "pcpu",
        c.size,
        MAX_RECORD,
        &[
            ("magic", c.magic, q),
            ("cpuid", c.cpuid, d),
            ("state", c.state, d),
            ("host_tid", c.host_tid, d),
            ("nrun", c.nrun, d),
            ("curthread", c.curthread, q),
            ("idlethread", c.idlethread, q),
            ("switches", c.switches, q),
            ("intrs", c.intrs, q),
            ("idle_ns", c.idle_ns, q),
            ("tf_valid", c.tf_valid, d),
            ("trapframe", c.trapframe, 8 * c.tf_nregs),
        ],
    )
    .or_else(bad)?;
    fits(
        "msgbuf",
        m.size,
        MAX_MSGBUF + MAX_RECORD,
        &[("magic", m.magic, q), ("size", m.bufsize, q), ("wptr", m.wptr, q), ("buf", m.buf, l.msgbuf_size)],
    )
    .or_else(bad)?;
    fits(
        "physmem",
        ph.size,
        MAX_RECORD,
        &[
            ("magic", ph.magic, q),
            ("dmap_base", ph.dmap_base, q),
            ("size", ph.mem_size, q),
            ("vm_page", ph.vm_page, q),
            ("npages", ph.npages, q),
            ("vm_page_size", ph.vm_page_size, q),
            ("free_pages", ph.free_pages, q),
        ],
    )
    .or_else(bad)?;
    let pcb = &l.pcb;
    fits("pcb", MAX_RECORD, MAX_RECORD, &[("rsp", pcb.rsp, q), ("on_cpu", pcb.on_cpu, d)]).or_else(bad)?;
    fits("switch frame", pcb.frame_size, 4096, &[("rbp", pcb.frame_rbp, q), ("rip", pcb.frame_rip, q)]).or_else(bad)?;
    Ok(())
}

/// Whether a record of `size` bytes (at most `max`) holds each `(name, offset, width)` field.
fn fits(what: &str, size: u32, max: u32, fields: &[(&str, u32, u32)]) -> Result<(), String> {
    if size < 8 || size > max {
        return Err(format!("{what} record size {size}"));
    }
    for &(name, off, width) in fields {
        if u64::from(off) + u64::from(width) > u64::from(size) {
            return Err(format!("{what}.{name} at offset {off} (+{width}) is beyond the {size}-byte record"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::{PcbLayout, VmPageLayout};

    const PCB: PcbLayout = PcbLayout { rsp: 0, on_cpu: 8, frame_rbp: 40, frame_rip: 48, frame_size: 56 };
    const VMP: VmPageLayout = VmPageLayout { size: 16, flags: 0, refcount: 4, owner: 8 };

    fn check(f: impl FnOnce(&mut Layout)) -> Result<Layout, KvmError> {
        let mut l = Layout::new(PCB, VMP);
        f(&mut l);
        parse_layout(&l.to_bytes(), 0x5000)
    }

    #[test]
    fn the_readers_own_layout_is_valid() {
        assert_eq!(check(|_| {}).unwrap(), Layout::new(PCB, VMP));
    }

    #[test]
    fn magic_and_version_are_checked() {
        let e = check(|l| l.magic = 0x1234).unwrap_err();
        assert_eq!(
            e.to_string(),
            "no vk layout at 0x5000 (bad magic 0x1234): is the namelist the kernel this process runs?"
        );
        let e = check(|l| l.version = 99).unwrap_err();
        assert_eq!(e.to_string(), "vk layout version 99 at 0x5000; this reader knows version 2");
        assert!(matches!(parse_layout(&[0u8; 4], 1), Err(KvmError::BadLayout { addr: 1, magic: 0 })));
    }

    #[test]
    fn offsets_outside_their_record_are_rejected() {
        let e = check(|l| l.thread.switches = l.thread.size - 4).unwrap_err();
        assert!(e.to_string().contains("thread.switches at offset"), "{e}");
        let e = check(|l| l.proc_.comm = l.proc_.size - 1).unwrap_err();
        assert!(e.to_string().contains("process.comm"), "{e}");
        let e = check(|l| l.pcpu.tf_nregs = 200).unwrap_err();
        assert!(e.to_string().contains("trap frame of 200 registers"), "{e}");
        let e = check(|l| l.msgbuf.size = 64).unwrap_err();
        assert!(e.to_string().contains("msgbuf.buf"), "{e}");
        let e = check(|l| l.pcb.frame_rip = 52).unwrap_err();
        assert!(e.to_string().contains("switch frame.rip"), "{e}");
    }

    #[test]
    fn limits_are_checked() {
        assert!(check(|l| l.maxcpu = 65).unwrap_err().to_string().contains("maxcpu 65"));
        assert!(check(|l| l.maxcpu = 0).is_err());
        assert!(check(|l| l.name_len = 0).is_err());
        assert!(check(|l| l.proc_.size = 1 << 20).unwrap_err().to_string().contains("process record size"));
        assert!(check(|l| l.size = 16).unwrap_err().to_string().contains("descriptor of 16 bytes"));
    }
}
