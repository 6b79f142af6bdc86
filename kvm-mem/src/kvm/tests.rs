//! Reader tests on a memory image built by hand (the live, in-process kernel is tested in
//! `tests/fake_kernel.rs`).

use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::abi::{PcbLayout, VmPageLayout, pflags, tstate};
use crate::source::BufMem;

const PCB: PcbLayout = PcbLayout { rsp: 0, on_cpu: 8, frame_rbp: 40, frame_rip: 48, frame_size: 56 };
const VMP: VmPageLayout = VmPageLayout { size: 16, flags: 0, refcount: 4, owner: 8 };
const LAYOUT: u64 = 0x1000;
const ALLPROC: u64 = 0x2000;
const NCPUS: u64 = 0x2008;
const BOOTTIME: u64 = 0x2010;
const PCPU: u64 = 0x10_000;
const MSGBUF: u64 = 0x20_000;
const PHYSMEM: u64 = 0x40_000;
const P0: u64 = 0x50_000;
const P1: u64 = 0x51_000;
const T0: u64 = 0x60_000;
const T1: u64 = 0x61_000;
const T2: u64 = 0x62_000;

fn roots() -> Roots {
    Roots {
        layout: LAYOUT,
        allproc: ALLPROC,
        pcpu: PCPU,
        ncpus: NCPUS,
        msgbuf: MSGBUF,
        boottime_ns: BOOTTIME,
        physmem: PHYSMEM,
    }
}

fn put(buf: &mut [u8], off: u32, v: &[u8]) {
    buf[off as usize..off as usize + v.len()].copy_from_slice(v);
}

/// A record of `size` bytes with its magic in place.
fn rec(size: u32, magic_off: u32, magic: u64) -> Vec<u8> {
    let mut b = vec![0u8; size as usize];
    put(&mut b, magic_off, &magic.to_le_bytes());
    b
}

fn proc_rec(l: &Layout, pid: i32, next: u64, threads: u64, comm: &str, flags: u32) -> Vec<u8> {
    let p = &l.proc_;
    let mut b = rec(p.size, p.magic, PROC_MAGIC);
    put(&mut b, p.pid, &pid.to_le_bytes());
    put(&mut b, p.next, &next.to_le_bytes());
    put(&mut b, p.threads, &threads.to_le_bytes());
    put(&mut b, p.flags, &flags.to_le_bytes());
    put(&mut b, p.comm, comm.as_bytes());
    b
}

fn thread_rec(l: &Layout, tid: u64, next: u64, proc_: u64, name: &str, state: u32) -> Vec<u8> {
    let t = &l.thread;
    let mut b = rec(t.size, t.magic, THREAD_MAGIC);
    put(&mut b, t.tid, &tid.to_le_bytes());
    put(&mut b, t.next, &next.to_le_bytes());
    put(&mut b, t.proc_, &proc_.to_le_bytes());
    put(&mut b, t.state, &state.to_le_bytes());
    put(&mut b, t.name, name.as_bytes());
    b
}

/// proc0 (two kernel threads) → pid 1 (one thread); 2 CPUs; a message buffer; physmem.
fn image(l: &Layout) -> BufMem {
    let mut m = BufMem::new();
    m.add(LAYOUT, l.to_bytes());
    m.add(ALLPROC, [P0.to_le_bytes(), 2u64.to_le_bytes(), 1_700_000_000_000_000_000u64.to_le_bytes()].concat());
    m.add(P0, proc_rec(l, 0, P1, T0, "swapper", pflags::SYSTEM));
    m.add(P1, proc_rec(l, 1, 0, T2, "init", 0));
    m.add(T0, thread_rec(l, 100_000, T1, P0, "swapper", tstate::SLEEPING));
    m.add(T1, thread_rec(l, 100_001, 0, P0, "idle: cpu0", tstate::RUNNING));
    m.add(T2, thread_rec(l, 1, 0, P1, "init", tstate::SLEEPING));
    let c = &l.pcpu;
    let mut cpus = Vec::new();
    for i in 0..2u32 {
        let mut b = rec(c.size, c.magic, PCPU_MAGIC);
        put(&mut b, c.cpuid, &i.to_le_bytes());
        cpus.extend(b);
    }
    m.add(PCPU, cpus);
    let mut mb = rec(l.msgbuf.size, l.msgbuf.magic, MSGBUF_MAGIC);
    put(&mut mb, l.msgbuf.bufsize, &u64::from(l.msgbuf_size).to_le_bytes());
    put(&mut mb, l.msgbuf.wptr, &6u64.to_le_bytes());
    put(&mut mb, l.msgbuf.buf, b"hello\n");
    m.add(MSGBUF, mb);
    let mut pm = rec(l.physmem.size, l.physmem.magic, PHYSMEM_MAGIC);
    put(&mut pm, l.physmem.mem_size, &(64u64 << 20).to_le_bytes());
    m.add(PHYSMEM, pm);
    m
}

fn kvm_with(f: impl FnOnce(&Layout, &mut BufMem)) -> Kvm {
    let l = Layout::new(PCB, VMP);
    let mut m = image(&l);
    f(&l, &mut m);
    Kvm::from_roots(Box::new(m), roots()).unwrap()
}

#[test]
fn pid_of_proc_paths() {
    assert_eq!(pid_of(Path::new("/proc/123/mem")), Some(123));
    assert_eq!(pid_of(Path::new("/proc/self/mem")), Some(std::process::id()));
    assert_eq!(pid_of(Path::new("/proc/123/maps")), None);
    assert_eq!(pid_of(Path::new("/proc/123/mem/x")), None);
    assert_eq!(pid_of(Path::new("/tmp/vmcore.0")), None);
    assert_eq!(pid_of(Path::new("/proc/abc/mem")), None);
    assert_eq!(pid_of(Path::new("/proc/0/mem")), None);
    assert_eq!(pid_of(Path::new("proc/12/mem")), None);
}

#[test]
fn walks_processes_threads_and_cpus() {
    let kvm = kvm_with(|_, _| {});
    let procs = kvm.procs().unwrap();
    let names: Vec<(i32, &str, usize)> = procs.iter().map(|p| (p.pid, p.comm.as_str(), p.threads.len())).collect();
    assert_eq!(names, [(0, "swapper", 2), (1, "init", 1)]);
    assert_eq!(procs[0].threads[1].name, "idle: cpu0");
    assert_eq!(procs[0].threads[1].proc_addr, P0);
    assert_eq!(procs[0].threads[1].state, tstate::RUNNING);
    let cpus = kvm.pcpus().unwrap();
    assert_eq!(
        cpus.iter().map(|c| (c.cpuid, c.addr)).collect::<Vec<_>>(),
        [(0, PCPU), (1, PCPU + u64::from(kvm.layout().pcpu.size))]
    );
    assert_eq!(kvm.msgbuf().unwrap(), "hello\n");
    assert_eq!(kvm.physmem().unwrap().size, 64 << 20);
    assert_eq!(kvm.boottime_ns().unwrap(), 1_700_000_000_000_000_000);
    assert!(kvm.pcpu(16).is_err());
}

#[test]
fn a_loop_in_allproc_is_caught_and_retried() {
    let kvm = kvm_with(|l, m| m.add(P1, proc_rec(l, 1, P0, T2, "init", 0)));
    let e = kvm.procs().unwrap_err();
    assert!(matches!(&e, KvmError::Unstable { tries: 3, last, .. } if matches!(**last, KvmError::Loop { .. })), "{e}");
    assert!(
        e.to_string().starts_with("allproc list changed or was unreadable on 3 tries; last: allproc list loops"),
        "{e}"
    );
}

#[test]
fn a_loop_in_a_thread_list_is_caught() {
    let kvm = kvm_with(|l, m| m.add(T1, thread_rec(l, 100_001, T0, P0, "idle: cpu0", tstate::RUNNING)));
    let e = kvm.procs().unwrap_err();
    assert!(e.to_string().contains(&format!("thread list loops or is longer than 100000 entries (at {T0:#x})")), "{e}");
}

/// A source whose process record at P1 reads torn (bad magic) the first `bad_reads` times.
struct Flaky {
    inner: BufMem,
    bad_reads: AtomicUsize,
}

impl MemSource for Flaky {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), KvmError> {
        self.inner.read(addr, buf)?;
        if addr == P1 && self.bad_reads.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            buf[0] ^= 0xff;
        }
        Ok(())
    }
}

fn flaky(bad_reads: usize) -> Kvm {
    let inner = image(&Layout::new(PCB, VMP));
    Kvm::from_roots(Box::new(Flaky { inner, bad_reads: AtomicUsize::new(bad_reads) }), roots()).unwrap()
}

#[test]
fn a_record_freed_mid_walk_is_retried() {
    assert_eq!(flaky(2).procs().unwrap().len(), 2);
    let e = flaky(3).procs().unwrap_err();
    assert!(e.to_string().ends_with(&format!("last: bad process record at {P1:#x} (magic 0x434f52504ba9)")), "{e}");
}

#[test]
fn an_unreadable_list_pointer_is_an_error() {
    let kvm = kvm_with(|l, m| m.add(P0, proc_rec(l, 0, 0xdead_0000, T0, "swapper", pflags::SYSTEM)));
    let e = kvm.procs().unwrap_err();
    assert!(e.to_string().ends_with("last: cannot read 120 bytes at 0xdead0000: not in the image"), "{e}");
}

#[test]
fn msgbuf_in_order_across_the_wrap() {
    let kvm = kvm_with(|l, m| {
        let size = u64::from(l.msgbuf_size);
        let mut mb = rec(l.msgbuf.size, l.msgbuf.magic, MSGBUF_MAGIC);
        put(&mut mb, l.msgbuf.bufsize, &size.to_le_bytes());
        put(&mut mb, l.msgbuf.wptr, &(3 * size + 4).to_le_bytes());
        let buf = l.msgbuf.buf;
        mb[buf as usize..(buf + l.msgbuf_size) as usize].fill(b'.');
        put(&mut mb, buf, b"new\n");
        put(&mut mb, buf + l.msgbuf_size - 4, b"old ");
        m.add(MSGBUF, mb);
    });
    let text = kvm.msgbuf().unwrap();
    assert_eq!(text.len(), 64 * 1024);
    assert!(text.starts_with("..") && text.ends_with("...old new\n"), "{:?}", &text[text.len() - 12..]);
}

#[test]
fn msgbuf_exactly_full_is_the_whole_ring() {
    let kvm = kvm_with(|l, m| {
        let mut mb = rec(l.msgbuf.size, l.msgbuf.magic, MSGBUF_MAGIC);
        put(&mut mb, l.msgbuf.bufsize, &u64::from(l.msgbuf_size).to_le_bytes());
        put(&mut mb, l.msgbuf.wptr, &u64::from(l.msgbuf_size).to_le_bytes());
        put(&mut mb, l.msgbuf.buf, b"first");
        m.add(MSGBUF, mb);
    });
    let text = kvm.msgbuf().unwrap();
    assert!(text.starts_with("first") && text.len() == 64 * 1024);
}

#[test]
fn bad_msgbuf_size_is_inconsistent() {
    let kvm = kvm_with(|l, m| {
        let mut mb = rec(l.msgbuf.size, l.msgbuf.magic, MSGBUF_MAGIC);
        put(&mut mb, l.msgbuf.bufsize, &(1u64 << 40).to_le_bytes());
        m.add(MSGBUF, mb);
    });
    assert!(kvm.msgbuf().unwrap_err().to_string().contains("message buffer size 1099511627776"));
}

#[test]
fn too_many_cpus_is_inconsistent() {
    let kvm = kvm_with(|_, m| m.add(NCPUS, 17u64.to_le_bytes().to_vec()));
    assert!(kvm.pcpus().unwrap_err().to_string().contains("vk_ncpus is 17, more than maxcpu 16"));
}

#[test]
fn saved_frame_from_the_pcb() {
    const PCBA: u64 = 0x70_000;
    const STACK: u64 = 0x80_000;
    let kvm = kvm_with(|_, m| {
        m.add(PCBA, [STACK.to_le_bytes(), 0u64.to_le_bytes()].concat());
        let mut frame = vec![0u8; 56];
        put(&mut frame, 40, &0x80_100u64.to_le_bytes());
        put(&mut frame, 48, &0x5555_1234u64.to_le_bytes());
        m.add(STACK, frame);
    });
    let mut t = Thread { pcb: PCBA, ..Default::default() };
    let f = kvm.thread_saved_frame(&t).unwrap();
    assert_eq!(f, SavedFrame { rip: 0x5555_1234, rsp: STACK + 56, rbp: 0x80_100 });
    t.pcb = 0;
    assert_eq!(kvm.thread_saved_frame(&t), None);
    t.pcb = 0xbad;
    assert_eq!(kvm.thread_saved_frame(&t), None);
    let kvm = kvm_with(|_, m| m.add(PCBA, [STACK.to_le_bytes(), 1u64.to_le_bytes()].concat()));
    t.pcb = PCBA;
    assert_eq!(kvm.thread_saved_frame(&t), None, "on a CPU");
}

#[test]
fn a_wrong_layout_address_is_bad_layout() {
    let l = Layout::new(PCB, VMP);
    let mut m = image(&l);
    m.add(0x90_000, [PROC_MAGIC.to_le_bytes().to_vec(), vec![0; 1000]].concat());
    let e = Kvm::from_roots(Box::new(m), Roots { layout: 0x90_000, ..roots() }).unwrap_err();
    assert!(matches!(e, KvmError::BadLayout { addr: 0x90_000, magic: PROC_MAGIC }), "{e}");
    let e = Kvm::from_roots(Box::new(image(&l)), Roots { layout: 8, ..roots() }).unwrap_err();
    assert!(e.to_string().starts_with("cannot read"), "{e}");
}

#[test]
fn a_vm_page_is_found_by_physical_or_direct_map_address() {
    const VMPAGES: u64 = 0x70_000;
    const DMAP: u64 = 0x4000_0000_0000;
    let kvm = kvm_with(|l, m| {
        let p = &l.physmem;
        let mut pm = rec(p.size, p.magic, PHYSMEM_MAGIC);
        put(&mut pm, p.dmap_base, &DMAP.to_le_bytes());
        put(&mut pm, p.mem_size, &(64u64 << 20).to_le_bytes());
        put(&mut pm, p.vm_page, &VMPAGES.to_le_bytes());
        put(&mut pm, p.npages, &((64u64 << 20) / 4096).to_le_bytes());
        put(&mut pm, p.vm_page_size, &16u64.to_le_bytes());
        m.add(PHYSMEM, pm);
        let mut pages = vec![0u8; 16 * 4];
        put(&mut pages, 3 * 16, &(crate::abi::pgflags::ANON | 0x100).to_le_bytes());
        put(&mut pages, 3 * 16 + 4, &2u32.to_le_bytes());
        put(&mut pages, 3 * 16 + 8, &7u64.to_le_bytes());
        m.add(VMPAGES, pages);
    });
    let p = kvm.vm_page(3 * 4096 + 5).unwrap();
    assert_eq!((p.pa, p.addr, p.flags & 0xff, p.refcount, p.owner), (3 * 4096, VMPAGES + 48, 4, 2, 7));
    assert_eq!(p.flag_names(), "ANON|0x100");
    assert_eq!(kvm.vm_page(DMAP + 3 * 4096).unwrap(), p);
    assert!(kvm.vm_page(64 << 20).unwrap_err().to_string().contains("not physical memory"));
    assert!(kvm.vm_page(5 * 4096).is_err(), "an entry that cannot be read");
}
