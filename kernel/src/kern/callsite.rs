//! System call site patching, the kernel's half (the stub's is `platform::stub::fast`, which
//! describes the scheme): after a thread has made [`calls_before`] system calls, a call that
//! trapped from `mov $nr, %eax; syscall` in a private mapping has its site rewritten into a
//! jump to an entry of the process's table, so that its next calls there reach the kernel
//! without a host signal; any other `syscall` with padding in reach after it ([`super::hop`])
//! hops there instead. The trap loop also recognises what only a patched site produces:
//! the SIGILL on a `mov` site's byte 5 (a thread that had run the old `mov`, or a call
//! restarted) or on a hop's first byte while it changes is the call, and a trap inside an
//! entry's code is moved back to just before the call.
//!
//! Not in a traced process: attaching puts every site back first ([`put_back`]), so a
//! debugger reads, breaks on and steps through the program's own instructions; `-e
//! sys.patch=0` turns patching off. The table is `[vk-syscall]` at
//! [`fast::TABLE_BASE`]; a process with something else mapped there gets no patches.

use std::sync::OnceLock;

use platform::stub::fast::{self, Kind, SITE_LEN, Site, TABLE_BASE, TABLE_END};
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

/// A trap as the guest's code sees it: a SIGILL on a patched `mov` site's byte 5 is the
/// system call (`fast::call_at_fault` says which), as is one on a hop's first byte while it
/// changes (the call in rax) — rip then after the `syscall`, as the instruction leaves it; a
/// trap inside an entry (a kick before the stub's fast path began) happened just before the
/// call — rip where the call is made again when the thread goes on (a `mov` site's byte 5,
/// rax its number; a hop's `jmp`, rax as it is). The sites are the space's record
/// (`AddressSpace::callsites`), not the guest's table.
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
        match g.callsites.iter().find(|(_, s)| s.entry == at) {
            Some((&site, Site { kind: Kind::Mov { nr }, .. })) => {
                regs.set_rax(u64::from(*nr));
                regs.set_rip(site + 5);
            }
            Some((&site, Site { kind: Kind::Hop { .. }, .. })) => regs.set_rip(site),
            None => {}
        }
        return trap;
    }
    if let Some(Site { kind: Kind::Hop { pad, .. }, .. }) = g.callsites.get(&rip) {
        let mut code = [0u8; 2];
        if uaccess::copyin(&g, rip, &mut code).is_err() {
            return trap;
        }
        // The faulting byte (a hop written or put back), or what it became since: the old
        // `syscall` or the hop. Anything else is the program's own code now.
        if code[0] != fast::FAULT_BYTE && code != fast::SYSCALL && fast::hop_target(rip, code) != Some(*pad) {
            return trap;
        }
        SITE_TRAPS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        regs.set_rip(rip + 2);
        return Trap::Syscall { compat: false };
    }
    let Some((site, nr)) = rip.checked_sub(5).and_then(|site| match g.callsites.get(&site)?.kind {
        Kind::Mov { nr } => Some((site, nr)),
        Kind::Hop { .. } => None,
    }) else {
        return trap;
    };
    let mut code = [0u8; SITE_LEN];
    if uaccess::copyin(&g, site, &mut code).is_err() {
        return trap;
    }
    // Byte 5 is the faulting byte (patched, or on its way back), or `syscall` again (put back
    // since the thread faulted); anything else is the program's own code now.
    if code[5] != fast::FAULT_BYTE && code[5..] != fast::SYSCALL {
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
    // A first look under the read lock: most calls' sites are patched already or cannot be.
    if uaccess::copyin(&vm.read(), site, &mut code).is_err() || code[5..] != fast::SYSCALL {
        return;
    }
    // Under the address space's lock, written: one patch at a time in a process.
    let done = if fast::is_site(&code, nr) {
        patch_site(&mut vm.write(), site, nr)
    } else {
        patch_hop(&mut vm.write(), site + 5, stub)
    };
    if done {
        PATCHED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Rewrite the site at `site`, if it is `mov $nr, %eax; syscall` in private text, into a jump
/// to a new entry of the space's table (made at the first patch, where nothing else is
/// mapped; no more patches when something is). Whether it did.
pub fn patch_site(g: &mut AddressSpace, site: u64, nr: u32) -> bool {
    let mut code = [0u8; SITE_LEN];
    if uaccess::copyin(g, site, &mut code).is_err()
        || !fast::is_site(&code, nr)
        || !private_text(g, site, SITE_LEN as u64)
    {
        return false;
    }
    let Some(at) = new_entry(g, Some(nr), site + SITE_LEN as u64) else { return false };
    // Recorded before the site changes: from the first write on, a trap there is the call.
    g.callsites.insert(site, Site { entry: at, kind: Kind::Mov { nr } });
    let patch = fast::patch(at);
    // Byte 5 (where `syscall` began) first: a thread past the old `mov` faults there; then
    // bytes 1–6 (still `mov` to any thread at the site); then the jump's first byte.
    g.write_forced(site + 5, &patch[5..6])
        .and_then(|()| g.write_forced(site + 1, &patch[1..]))
        .and_then(|()| g.write_forced(site, &patch[..1]))
        .is_ok()
}

/// Make the `syscall` at `site` (in private text, its number from a register) hop to the
/// padding [`super::hop::find_pad`] finds after it, where a jump to a new entry is written
/// first. Whether it did. When the padding is on another page than the `syscall`, its new
/// bytes may sit in a private copy the stub does not map yet (the copy's mapping is queued)
/// while the `syscall`'s page is mapped already, where the hop would show at once: another
/// thread would hop into the padding's old no-ops. So then the queued mappings are carried
/// out through `via` (the trapping thread's stub) before the hop is written, and without
/// one the site is not patched.
pub fn patch_hop(g: &mut AddressSpace, site: u64, via: Option<&StubThread>) -> bool {
    let Some(e) = g.find(site) else { return false };
    let end = e.end.min(site + 2 + super::hop::LOOK as u64);
    let mut code = vec![0u8; crate::kern::conv::usize_of(end.saturating_sub(site))];
    if code.len() < 2 || uaccess::copyin(g, site, &mut code).is_err() || code[..2] != fast::SYSCALL {
        return false;
    }
    let Some((pad, room)) = super::hop::find_pad(&code[2..], site + 2) else { return false };
    let Some(hop) = fast::hop(site, pad) else { return false };
    let page = |a: u64| a / platform::PAGE_SIZE as u64;
    let apart = page(pad) != page(site);
    if !private_text(g, site, pad + room as u64 - site) || (apart && via.is_none()) {
        return false;
    }
    let Some(at) = new_entry(g, None, site + 2) else { return false };
    let Some((jump, len)) = fast::hop_jump(pad, at, room) else { return false };
    let Ok(len8) = u8::try_from(len) else { return false };
    let mut orig = [0u8; fast::HOP_MAX];
    let off = crate::kern::conv::usize_of(pad - site);
    orig[..len].copy_from_slice(&code[off..off + len]);
    if g.write_forced(pad, &jump[..len]).is_err() {
        return false;
    }
    g.callsites.insert(site, Site { entry: at, kind: Kind::Hop { pad, len: len8, orig } });
    if apart && !via.is_some_and(|v| g.sync_stub(v)) {
        return false;
    }
    // The faulting byte first (a thread at the site traps: the call in rax), then the
    // displacement, then the jump.
    g.write_forced(site, &[fast::FAULT_BYTE])
        .and_then(|()| g.write_forced(site + 1, &hop[1..]))
        .and_then(|()| g.write_forced(site, &hop[..1]))
        .is_ok()
}

/// A new entry in the space's table (made at the first patch, where nothing else is mapped;
/// no more patches when something is) for a call (`nr`: a `mov` site's number) returning to
/// `ret`.
fn new_entry(g: &mut AddressSpace, nr: Option<u32>, ret: u64) -> Option<u64> {
    if g.callsites_off {
        return None;
    }
    if !g.find(TABLE_BASE).is_some_and(is_table) {
        if !g.is_free(TABLE_BASE, TABLE_END) {
            g.callsites_off = true;
            return None;
        }
        g.map(MapEntry {
            start: TABLE_BASE,
            end: TABLE_END,
            prot: PROT_READ | PROT_EXEC,
            backing: Backing::Anon,
            name: TABLE_NAME.to_vec(),
        });
        g.write_forced(TABLE_BASE, &fast::header(1)).ok()?;
    }
    let mut h = [0u8; 16];
    uaccess::copyin(g, TABLE_BASE, &mut h).ok()?;
    let next = fast::header_next(&h);
    let at = fast::entry_addr(next)?;
    g.write_forced(at, &fast::entry(at, nr, ret)).ok()?;
    g.write_forced(TABLE_BASE, &fast::header(next + 1)).ok()?;
    Some(at)
}

/// Before the program maps, unmaps, protects or advises `[start, end)`: if that touches the
/// table, put every site back (the original bytes, in an order where each moment's bytes are
/// either a `mov` then the faulting byte 5, or the original) and take the table away, as if it
/// had never been there; this space patches no more.
pub fn release_table(g: &mut AddressSpace, start: u64, end: u64) {
    if start >= TABLE_END || end <= TABLE_BASE || !g.find(TABLE_BASE).is_some_and(is_table) {
        return;
    }
    put_all_back(g);
    g.unmap(TABLE_BASE, TABLE_END);
}

/// Every site of the space back as the program wrote it; no more patches there.
fn put_all_back(g: &mut AddressSpace) {
    let sites: Vec<(u64, Site)> = g.callsites.iter().map(|(&s, &site)| (s, site)).collect();
    for (at, site) in sites {
        put_site_back(g, at, &site);
    }
    g.callsites_off = true;
}

/// `buf`, read from `addr` of the space, as the program wrote it: each patched site in it
/// shown as its `mov $nr, %eax; syscall` again (what /proc/PID/mem, process_vm_readv, PEEK
/// and a core file show: a debugger reading without attaching sees the program's own code).
pub fn as_written(g: &AddressSpace, addr: u64, buf: &mut [u8]) {
    let end = addr.saturating_add(buf.len() as u64);
    // A hop's padding lies up to its reach and a padding's length past its site.
    let lo = addr.saturating_sub(fast::HOP_REACH + 2 + fast::HOP_MAX as u64);
    for (&at, site) in g.callsites.range(lo..end) {
        for (start, original, patched, len) in site.runs(at) {
            for i in 0..len {
                let a = start + i as u64;
                if (addr..end).contains(&a) {
                    let b = &mut buf[crate::kern::conv::usize_of(a - addr)];
                    // Only the bytes the patch put there (a site half put back shows as it is).
                    if *b == patched[i] {
                        *b = original[i];
                    }
                }
            }
        }
    }
}

/// Before the program unmaps `[start, end)` or maps something else there: the sites in it
/// are forgotten (no thread can be at them once it is gone), so that what comes there later
/// — another library, a JIT's code — is never taken for a patched site.
pub fn forget_sites(g: &mut AddressSpace, start: u64, end: u64) {
    let gone = |span| overlaps(span, start, end);
    // A hop whose padding goes while its `syscall` stays goes back to being a `syscall`.
    let orphans: Vec<(u64, Site)> = g
        .callsites
        .iter()
        .filter(|&(&at, s)| matches!(s.spans(at), [site, pad] if gone(pad) && !gone(site)))
        .map(|(&at, &s)| (at, s))
        .collect();
    for (at, site) in orphans {
        put_site_back(g, at, &site);
    }
    g.callsites.retain(|&at, s| !s.spans(at).into_iter().any(gone));
}

/// Before the program makes `[start, end)` writable (a JIT, a hot-patcher, text relocations):
/// every site there — a `mov` site's 7 bytes, a hop's `syscall` or its padding — is put back
/// and forgotten, so that what the program reads and rewrites is its own code.
pub fn before_text_write(g: &mut AddressSpace, start: u64, end: u64) {
    let sites: Vec<(u64, Site)> = g
        .callsites
        .iter()
        .filter(|&(&at, s)| s.spans(at).into_iter().any(|span| overlaps(span, start, end)))
        .map(|(&at, &s)| (at, s))
        .collect();
    for (at, site) in sites {
        put_site_back(g, at, &site);
        if let Kind::Hop { pad, len, orig } = site.kind {
            // The padding too: the program is about to read or write it.
            let _ = g.write_forced(pad, &orig[..usize::from(len)]);
        }
        g.callsites.remove(&at);
    }
}

/// Whether a span of patched text (start, length; [`Site::spans`]) meets `[start, end)`.
fn overlaps((a, n): (u64, u64), start: u64, end: u64) -> bool {
    n > 0 && a < end && a + n > start
}

/// The program's own instructions back at a patched site, in an order where each moment's
/// bytes are either the patch, a `mov` then the faulting byte 5, the faulting byte then
/// anything (a hop), or the original. A hop's padding keeps its jump (a thread that took
/// the hop just before may still be there); a debugger is shown the padding as it was.
fn put_site_back(g: &mut AddressSpace, at: u64, site: &Site) {
    match site.kind {
        Kind::Mov { nr } => {
            let mut code = [0u8; SITE_LEN];
            if uaccess::copyin(g, at, &mut code).is_err() || fast::patched_site(&code) != Some(site.entry) {
                return;
            }
            let n = nr.to_le_bytes();
            let _ = g
                .write_forced(at, &[0xb8])
                .and_then(|()| g.write_forced(at + 1, &n))
                .and_then(|()| g.write_forced(at + 6, &[0x05]))
                .and_then(|()| g.write_forced(at + 5, &[0x0f]));
        }
        Kind::Hop { pad, .. } => {
            let mut code = [0u8; 2];
            if uaccess::copyin(g, at, &mut code).is_err() || fast::hop_target(at, code) != Some(pad) {
                return;
            }
            let _ = g
                .write_forced(at, &[fast::FAULT_BYTE])
                .and_then(|()| g.write_forced(at + 1, &fast::SYSCALL[1..]))
                .and_then(|()| g.write_forced(at, &fast::SYSCALL[..1]));
        }
    }
}

/// A process about to be traced: its sites go back to the program's own instructions (what a
/// debugger reads, sets breakpoints in and steps through), and no more are patched. The
/// table stays (nothing of the program's wants its range): a thread that was already on its
/// way through an entry, or had taken a hop, finishes its call there.
pub fn put_back(p: &UProc) {
    let vm = p.user().vm();
    put_all_back(&mut vm.write());
}

fn is_table(e: &MapEntry) -> bool {
    e.start == TABLE_BASE && e.end == TABLE_END && e.name == TABLE_NAME && matches!(e.backing, Backing::Anon)
}

/// Whether the `len` bytes at `site` lie in one private mapping the process executes (a
/// shared one would be the file's own bytes).
fn private_text(g: &AddressSpace, site: u64, len: u64) -> bool {
    g.find(site).is_some_and(|e| !e.shared() && e.prot & PROT_EXEC != 0 && site + len <= e.end)
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

    /// musl's `__syscall_cp_c`'s end: mov %rcx,%rdx; syscall; ret; nopw (6) to TEXT + 0x50;
    /// the next function's first instruction.
    const MUSL_CP_END: [u8; 15] = [0x48, 0x89, 0xca, 0x0f, 0x05, 0xc3, 0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00, 0x48, 0x89, 0xf8];

    /// [`MUSL_CP_END`] written at TEXT + 0x44: the address of its `syscall`.
    fn musl_cp_end(g: &mut AddressSpace) -> u64 {
        let s = TEXT + 0x47;
        g.write_forced(s - 3, &MUSL_CP_END).expect("write the text");
        s
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
        assert_eq!(fast::decode_entry(at, &e), Some((Some(39), TEXT + 0x17)));
        assert_eq!(g.callsites.get(&(TEXT + 0x10)), Some(&Site { entry: at, kind: Kind::Mov { nr: 39 } }));
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
        assert!(matches!(g.callsites.get(&(TEXT + 0x10)).map(|c| c.kind), Some(Kind::Mov { nr: 39 })));
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
    #[test]
    fn a_register_numbered_syscall_hops_to_padding_and_goes_back() {
        let pm = Arc::new(PhysMem::scratch(MIN_PHYSMEM).expect("scratch physical memory"));
        let mut g = space(&pm);
        let s = musl_cp_end(&mut g);
        assert!(!patch_hop(&mut g, s - 3, None), "not a syscall");
        assert!(patch_hop(&mut g, s, None));
        assert!(!patch_hop(&mut g, s, None), "hops already");
        let mut now = [0u8; 15];
        uaccess::copyin(&g, s - 3, &mut now).expect("copyin");
        assert_eq!(now[3..5], [0xeb, 0x01], "a jump to the padding");
        assert_eq!(now[6], 0xe9, "the padding jumps to the entry");
        let Some(Site { entry, kind: Kind::Hop { pad, len: 5, .. } }) = g.callsites.get(&s).copied() else {
            panic!("a hop")
        };
        assert_eq!(pad, s + 3);
        let disp = i32::from_le_bytes(now[7..11].try_into().unwrap());
        assert_eq!(pad.wrapping_add_signed(5 + i64::from(disp)), entry + 8);
        let mut e = [0u8; fast::ENTRY_LEN];
        uaccess::copyin(&g, entry, &mut e).expect("the entry");
        assert_eq!(fast::decode_entry(entry, &e), Some((None, s + 2)), "no number, back after the syscall");
        // What a debugger reads: the text as written, the padding too.
        let mut b = now;
        as_written(&g, s - 3, &mut b);
        assert_eq!(b, MUSL_CP_END);
        // Back: the syscall; the padding keeps its jump (shown as written).
        release_table(&mut g, TABLE_BASE, TABLE_END);
        uaccess::copyin(&g, s - 3, &mut b).expect("copyin");
        assert_eq!(b[3..5], [0x0f, 0x05]);
        as_written(&g, s - 3, &mut b);
        assert_eq!(b, MUSL_CP_END);
    }

    #[test]
    fn a_hop_whose_padding_is_unmapped_is_put_back() {
        let pm = Arc::new(PhysMem::scratch(MIN_PHYSMEM).expect("scratch physical memory"));
        let mut g = space(&pm);
        // syscall at the page's last two bytes; ret and padding on the next page.
        g.map(MapEntry {
            start: TEXT + 4096,
            end: TEXT + 8192,
            prot: PROT_READ | PROT_EXEC,
            backing: Backing::Anon,
            name: Vec::new(),
        });
        let s = TEXT + 4096 - 2;
        let text = [0x0f, 0x05, 0xc3, 0x66, 0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0, 0x66, 0x0f, 0x1f, 0x44, 0, 0, 0x31];
        g.write_forced(s, &text).expect("write the text");
        assert!(!patch_hop(&mut g, s, None), "the padding in another mapping");
        // One mapping across both pages (as a text is).
        let mut g = space(&pm);
        g.unmap(TEXT, TEXT + 4096);
        g.map(MapEntry {
            start: TEXT,
            end: TEXT + 8192,
            prot: PROT_READ | PROT_EXEC,
            backing: Backing::Anon,
            name: Vec::new(),
        });
        g.write_forced(s, &text).expect("write the text");
        // The padding on the next page: only with a stub to map its new bytes first.
        assert!(!patch_hop(&mut g, s, None), "no stub to carry the padding's page out");
        assert!(g.callsites.is_empty());
        // As a patch with a stub leaves it: the hop, the jump in the padding, the record.
        let pad = s + 3;
        let (jump, len) = fast::hop_jump(pad, fast::entry_addr(1).unwrap(), 15).unwrap();
        let mut orig = [0u8; fast::HOP_MAX];
        orig[..len].copy_from_slice(&text[3..3 + len]);
        g.write_forced(pad, &jump[..len]).expect("the padding's jump");
        g.write_forced(s, &fast::hop(s, pad).unwrap()).expect("the hop");
        let kind = Kind::Hop { pad, len: u8::try_from(len).unwrap(), orig };
        g.callsites.insert(s, Site { entry: fast::entry_addr(1).unwrap(), kind });
        forget_sites(&mut g, TEXT + 4096, TEXT + 8192);
        assert!(!g.callsites.contains_key(&s));
        let mut b = [0u8; 2];
        uaccess::copyin(&g, s, &mut b).expect("copyin");
        assert_eq!(b, fast::SYSCALL, "its padding gone, the syscall is back");
    }

    #[test]
    fn making_text_writable_puts_its_sites_back_as_written() {
        let pm = Arc::new(PhysMem::scratch(MIN_PHYSMEM).expect("scratch physical memory"));
        let mut g = space(&pm);
        let s = musl_cp_end(&mut g);
        assert!(patch_hop(&mut g, s, None) && patch_site(&mut g, TEXT + 0x10, 39));
        // Elsewhere: nothing changes.
        before_text_write(&mut g, TEXT + 4096, TEXT + 8192);
        assert_eq!(g.callsites.len(), 2);
        before_text_write(&mut g, TEXT, TEXT + 4096);
        assert!(g.callsites.is_empty());
        let mut b = [0u8; 15];
        uaccess::copyin(&g, s - 3, &mut b).expect("copyin");
        assert_eq!(b, MUSL_CP_END, "the syscall and its padding as they were");
        assert_eq!(code(&g, TEXT + 0x10), [0xb8, 39, 0, 0, 0, 0x0f, 0x05]);
    }
}
