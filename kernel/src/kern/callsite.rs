//! System call site patching, the kernel's half (the stub's is `platform::stub::fast`, which
//! describes the scheme): after a thread has made [`calls_before`] system calls, a call that
//! trapped from `mov $nr, %eax; syscall` in a private mapping has its site rewritten into a
//! jump to an entry of the process's table, so that its next calls there reach the kernel
//! without a host signal. The trap loop also recognises what only a patched site produces:
//! the SIGILL on its byte 5 (a thread that had run the old `mov`, or a call restarted) is the
//! call, and a trap inside an entry's code is moved back to just before the call.
//!
//! Not in a traced process: attaching puts every site back first ([`put_back`]), so a
//! debugger reads, breaks on and steps through the program's own instructions; `-e
//! sys.patch=0` turns patching off. The table is `[vk-syscall]` at
//! [`fast::TABLE_BASE`]; a process with something else mapped there gets no patches.

use std::sync::OnceLock;

use platform::stub::fast::{self, SITE_LEN, TABLE_BASE, TABLE_END};
use platform::stub::{StubThread, Trap, UserRegs};

use crate::kern::proc::UProc;
use crate::kern::signal::SIGILL;
use crate::vm::entry::{Backing, MapEntry};
use crate::vm::space::{AddressSpace, PROT_EXEC, PROT_READ};
use crate::vm::uaccess;

/// System calls a thread makes before its sites are patched (`-e sys.patch_after=N`, default
/// 64): a short-lived process would pay a page copy per patched page for calls it hardly
/// repeats.
pub fn calls_before() -> u64 {
    static N: OnceLock<u64> = OnceLock::new();
    *N.get_or_init(|| crate::kern::kenv::get("sys.patch_after").and_then(|v| v.trim().parse().ok()).unwrap_or(64))
}

/// The table's name in /proc/PID/maps.
pub const TABLE_NAME: &[u8] = b"[vk-syscall]";

/// Whether sites are patched (`-e sys.patch=0`: never).
pub fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| crate::kern::kenv::get("sys.patch").map(str::trim) != Some("0"))
}

/// Sites patched, and calls made from a site's byte 5 (`-e sched.stats=1`, ddb `show
/// callsites`).
pub static PATCHED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
pub static SITE_TRAPS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A trap as the guest's code sees it: a SIGILL on a patched site's byte 5 is the system
/// call (`fast::call_at_fault` says which; rip then after the site, as `syscall` leaves it); a trap inside an entry (a kick
/// before the stub's fast path began) happened just before the call — rip on the site's
/// byte 5, rax the call's number, where the call is made again when the thread goes on.
/// The sites are the space's record (`AddressSpace::callsites`), not the guest's table.
pub fn as_guest_sees(p: &UProc, trap: Trap, regs: &mut UserRegs) -> Trap {
    let rip = regs.rip();
    let in_entry = fast::entry_of(rip);
    let ill = matches!(trap, Trap::Exception { signo: SIGILL, .. });
    if in_entry.is_none() && !ill {
        return trap;
    }
    let vm = p.user().vm();
    let g = vm.read();
    if let Some(at) = in_entry {
        // Only while the table is there: after it gave way, the range is the program's.
        if !g.find(TABLE_BASE).is_some_and(is_table) {
            return trap;
        }
        if let Some((&site, &(nr, _))) = g.callsites.iter().find(|(_, (_, e))| *e == at) {
            regs.set_rax(u64::from(nr));
            regs.set_rip(site + 5);
        }
        return trap;
    }
    let Some((site, &(nr, _))) = rip.checked_sub(5).and_then(|site| Some((site, g.callsites.get(&site)?))) else {
        return trap;
    };
    let mut code = [0u8; SITE_LEN];
    if uaccess::copyin(&g, site, &mut code).is_err() {
        return trap;
    }
    // Byte 5 is the faulting byte (patched, or on its way back), or `syscall` again (put back
    // since the thread faulted); anything else is the program's own code now.
    if code[5] != fast::FAULT_BYTE && code[5..] != [0x0f, 0x05] {
        return trap;
    }
    SITE_TRAPS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    regs.set_rax(fast::call_at_fault(&code, regs.rax(), nr));
    regs.set_rip(rip + 2);
    Trap::Syscall { compat: false }
}

/// The call sites a thread has looked at (direct-mapped by address, 64 of them): each is
/// looked at once — patched then, or never to be (a `syscall` whose number comes from a
/// register, musl's `syscall()`) — so that a loop's calls do not each look again.
pub struct Seen([u64; 64]);

impl Default for Seen {
    fn default() -> Self {
        Seen([u64::MAX; 64])
    }
}

impl Seen {
    /// Whether `rip` is new here (and remember it).
    pub fn first_look(&mut self, rip: u64) -> bool {
        let i = ((rip ^ (rip >> 6) ^ (rip >> 12)) & 63) as usize;
        let new = self.0[i] != rip;
        self.0[i] = rip;
        new
    }
}

/// A system call `nr` at `regs` (before it runs), made after the thread's first
/// [`calls_before`] from a site it had not looked at lately ([`Seen`]; the trap loop counts
/// and looks): patch the site if it is one and the thread may take the fast path.
pub fn maybe_patch(p: &UProc, stub: Option<&StubThread>, traced: bool, nr: u64, regs: &UserRegs) {
    if traced || !enabled() || stub.is_none_or(|s| !s.fast_ready()) {
        return;
    }
    let Ok(nr) = u32::try_from(nr) else { return };
    use linux_raw_sys::general::{__NR_execve, __NR_execveat, __NR_exit, __NR_exit_group};
    if [__NR_execve, __NR_execveat, __NR_exit, __NR_exit_group].contains(&nr) {
        return;
    }
    let Some(site) = regs.rip().checked_sub(SITE_LEN as u64) else { return };
    let vm = p.user().vm();
    let mut code = [0u8; SITE_LEN];
    // A first look under the read lock: most calls' sites are not sites of this kind.
    if uaccess::copyin(&vm.read(), site, &mut code).is_err() || !fast::is_site(&code, nr) {
        return;
    }
    // Under the address space's lock, written: one patch at a time in a process.
    if patch_site(&mut vm.write(), site, nr) {
        PATCHED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Rewrite the site at `site`, if it is `mov $nr, %eax; syscall` in private text, into a jump
/// to a new entry of the space's table (made at the first patch, where nothing else is
/// mapped; no more patches when something is). Whether it did.
pub fn patch_site(g: &mut AddressSpace, site: u64, nr: u32) -> bool {
    if g.callsites_off {
        return false;
    }
    if !g.find(TABLE_BASE).is_some_and(is_table) {
        if !g.is_free(TABLE_BASE, TABLE_END) {
            g.callsites_off = true;
            return false;
        }
        g.map(MapEntry {
            start: TABLE_BASE,
            end: TABLE_END,
            prot: PROT_READ | PROT_EXEC,
            backing: Backing::Anon,
            name: TABLE_NAME.to_vec(),
        });
        if g.write_forced(TABLE_BASE, &fast::header(1)).is_err() {
            return false;
        }
    }
    let mut h = [0u8; 16];
    if uaccess::copyin(g, TABLE_BASE, &mut h).is_err() {
        return false;
    }
    let next = fast::header_next(&h);
    let Some(at) = fast::entry_addr(next) else { return false };
    let mut code = [0u8; SITE_LEN];
    if uaccess::copyin(g, site, &mut code).is_err() || !fast::is_site(&code, nr) || !private_text(g, site) {
        return false;
    }
    if g.write_forced(at, &fast::entry(at, nr, site)).is_err() || g.write_forced(TABLE_BASE, &fast::header(next + 1)).is_err() {
        return false;
    }
    // Recorded before the site changes: from the first write on, a trap there is the call.
    g.callsites.insert(site, (nr, at));
    let patch = fast::patch(at);
    // Byte 5 (where `syscall` began) first: a thread past the old `mov` faults there; then
    // bytes 1–6 (still `mov` to any thread at the site); then the jump's first byte.
    g.write_forced(site + 5, &patch[5..6])
        .and_then(|()| g.write_forced(site + 1, &patch[1..]))
        .and_then(|()| g.write_forced(site, &patch[..1]))
        .is_ok()
}

/// Before the program maps, unmaps, protects or advises `[start, end)`: if that touches the
/// table, put every site back (the original bytes, in an order where each moment's bytes are
/// either a `mov` then the faulting byte 5, or the original) and take the table away, as if it
/// had never been there; this space patches no more.
pub fn release_table(g: &mut AddressSpace, start: u64, end: u64) {
    if start >= TABLE_END || end <= TABLE_BASE || !g.find(TABLE_BASE).is_some_and(is_table) {
        return;
    }
    let sites: Vec<(u64, u32)> = g.callsites.iter().map(|(&s, &(nr, _))| (s, nr)).collect();
    for (site, nr) in sites {
        let mut code = [0u8; SITE_LEN];
        if uaccess::copyin(g, site, &mut code).is_err() || fast::patched_site(&code).is_none() {
            continue;
        }
        let n = nr.to_le_bytes();
        let _ = g
            .write_forced(site, &[0xb8])
            .and_then(|()| g.write_forced(site + 1, &n))
            .and_then(|()| g.write_forced(site + 6, &[0x05]))
            .and_then(|()| g.write_forced(site + 5, &[0x0f]));
    }
    g.unmap(TABLE_BASE, TABLE_END);
    g.callsites_off = true;
}

/// `buf`, read from `addr` of the space, as the program wrote it: each patched site in it
/// shown as its `mov $nr, %eax; syscall` again (what /proc/PID/mem, process_vm_readv, PEEK
/// and a core file show: a debugger reading without attaching sees the program's own code).
pub fn as_written(g: &AddressSpace, addr: u64, buf: &mut [u8]) {
    let end = addr.saturating_add(buf.len() as u64);
    let lo = addr.saturating_sub(SITE_LEN as u64 - 1);
    for (&site, &(nr, entry)) in g.callsites.range(lo..end) {
        let mut original = [0u8; SITE_LEN];
        original[0] = 0xb8;
        original[1..5].copy_from_slice(&nr.to_le_bytes());
        original[5..].copy_from_slice(&[0x0f, 0x05]);
        let patched = fast::patch(entry);
        for (i, (&o, &p)) in original.iter().zip(patched.iter()).enumerate() {
            let a = site + i as u64;
            if (addr..end).contains(&a) {
                let b = &mut buf[crate::kern::conv::usize_of(a - addr)];
                // Only the bytes the patch put there (a site half put back shows as it is).
                if *b == p {
                    *b = o;
                }
            }
        }
    }
}

/// Before the program unmaps `[start, end)` or maps something else there: the sites in it
/// are forgotten (no thread can be at them once it is gone), so that what comes there later
/// — another library, a JIT's code — is never taken for a patched site.
pub fn forget_sites(g: &mut AddressSpace, start: u64, end: u64) {
    g.callsites.retain(|&site, _| site + SITE_LEN as u64 <= start || site >= end);
}

/// A process about to be traced: its sites go back to the program's own instructions (what a
/// debugger reads, sets breakpoints in and steps through), and no more are patched.
pub fn put_back(p: &UProc) {
    let vm = p.user().vm();
    let mut g = vm.write();
    release_table(&mut g, TABLE_BASE, TABLE_END);
    g.callsites_off = true;
}

fn is_table(e: &MapEntry) -> bool {
    e.start == TABLE_BASE && e.end == TABLE_END && e.name == TABLE_NAME && matches!(e.backing, Backing::Anon)
}

/// Whether the site lies in a private mapping the process executes (a shared one would be
/// the file's own bytes), all 7 bytes in it.
fn private_text(g: &AddressSpace, site: u64) -> bool {
    g.find(site).is_some_and(|e| !e.shared() && e.prot & PROT_EXEC != 0 && site + SITE_LEN as u64 <= e.end)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use platform::physmem::{MIN_PHYSMEM, PhysMem};

    use super::*;

    const TEXT: u64 = 0x40_0000;

    /// A space with one page of private text holding `mov $39, %eax; syscall` at TEXT + 0x10
    /// and `mov $1, %eax; syscall` at TEXT + 0x20.
    fn space(pm: &Arc<PhysMem>) -> AddressSpace {
        let mut g = AddressSpace::with_physmem(1, Arc::clone(pm));
        g.map(MapEntry { start: TEXT, end: TEXT + 4096, prot: PROT_READ | PROT_EXEC, backing: Backing::Anon, name: Vec::new() });
        g.write_forced(TEXT + 0x10, &[0xb8, 39, 0, 0, 0, 0x0f, 0x05]).expect("write the text");
        g.write_forced(TEXT + 0x20, &[0xb8, 1, 0, 0, 0, 0x0f, 0x05]).expect("write the text");
        g
    }

    fn code(g: &AddressSpace, at: u64) -> [u8; SITE_LEN] {
        let mut c = [0u8; SITE_LEN];
        uaccess::copyin(g, at, &mut c).expect("copyin");
        c
    }

    #[test]
    fn a_site_becomes_a_jump_to_its_entry_and_goes_back_when_the_table_must_go() {
        let pm = Arc::new(PhysMem::scratch(MIN_PHYSMEM).expect("scratch physical memory"));
        let mut g = space(&pm);
        assert!(!patch_site(&mut g, TEXT + 0x10, 40), "another call's number");
        assert!(patch_site(&mut g, TEXT + 0x10, 39));
        assert!(patch_site(&mut g, TEXT + 0x20, 1));
        assert!(!patch_site(&mut g, TEXT + 0x10, 39), "patched already");
        let at = fast::patched_site(&code(&g, TEXT + 0x10)).expect("a jump");
        let mut e = [0u8; fast::ENTRY_LEN];
        uaccess::copyin(&g, at, &mut e).expect("the entry");
        assert_eq!(fast::decode_entry(at, &e), Some((39, TEXT + 0x10)));
        assert_eq!(g.callsites.get(&(TEXT + 0x10)), Some(&(39, at)));
        assert!(g.find(TABLE_BASE).is_some_and(is_table));
        // What a debugger reads: the program's own bytes, also of a site the read cuts.
        let mut b = [0u8; 0x16];
        uaccess::copyin(&g, TEXT + 0x13, &mut b).expect("copyin");
        as_written(&g, TEXT + 0x13, &mut b);
        assert_eq!(b[..4], [0, 0, 0x0f, 0x05]);
        assert_eq!(b[0xd..0x14], [0xb8, 1, 0, 0, 0, 0x0f, 0x05]);
        // Something of the program's over the table: every site back as it was, no table.
        release_table(&mut g, TABLE_END - 4096, TABLE_END + 4096);
        assert_eq!(code(&g, TEXT + 0x10), [0xb8, 39, 0, 0, 0, 0x0f, 0x05]);
        assert_eq!(code(&g, TEXT + 0x20), [0xb8, 1, 0, 0, 0, 0x0f, 0x05]);
        assert!(g.is_free(TABLE_BASE, TABLE_END));
        assert!(!patch_site(&mut g, TEXT + 0x10, 39), "no more patches here");
        // The record stays: a trap on byte 5 is still the call.
        assert_eq!(g.callsites.get(&(TEXT + 0x10)).map(|c| c.0), Some(39));
        // Until the text goes: then nothing there is a site any more.
        forget_sites(&mut g, TEXT + 0x14, TEXT + 0x15);
        assert!(!g.callsites.contains_key(&(TEXT + 0x10)));
        assert!(g.callsites.contains_key(&(TEXT + 0x20)));
    }

    #[test]
    fn no_table_where_the_program_has_a_mapping_and_so_no_patch() {
        let pm = Arc::new(PhysMem::scratch(MIN_PHYSMEM).expect("scratch physical memory"));
        let mut g = space(&pm);
        g.map(MapEntry { start: TABLE_BASE, end: TABLE_BASE + 4096, prot: PROT_READ, backing: Backing::Anon, name: Vec::new() });
        assert!(!patch_site(&mut g, TEXT + 0x10, 39));
        assert_eq!(code(&g, TEXT + 0x10), [0xb8, 39, 0, 0, 0, 0x0f, 0x05]);
    }
}
