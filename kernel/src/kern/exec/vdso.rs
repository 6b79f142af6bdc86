//! The vDSO every guest process gets (Linux's `[vdso]`, announced by AT_SYSINFO_EHDR):
//! clock_gettime, gettimeofday, time and getcpu as functions, so that reading the time does
//! not trap.
//!
//! ```text
//!  exec maps, below the interpreter (top-down in the mmap area, as Linux):
//!   [vvar]  1 page   r--p   the kernel's data page: magic, the host vDSO's clock_gettime
//!                          in the stub (platform::stub::vdso), the end of the guest's space
//!   [vdso]  n pages  r-xp   vk's vDSO image (kernel/vdso/vdso.c, built by build.rs), whose
//!                          code reads the page above PC-relative       ← AT_SYSINFO_EHDR
//! ```
//!
//! Guest clocks are the host's (sys/time.rs: CLOCK_REALTIME and _COARSE are the host's
//! realtime clock, CLOCK_MONOTONIC, _RAW, _COARSE and CLOCK_BOOTTIME its monotonic clock; no
//! offset, not settable), so the vDSO calls the host's own vDSO, which every stub keeps at
//! one fixed address, and gets the same answers the system call gives, from the same clock,
//! without a trap. Other clocks, getcpu (the guest's CPU is a virtual one only the kernel
//! knows; glibc's sched_getcpu reads rseq's cpu_id, which the kernel keeps), pointers outside
//! the guest's address space and a host without a vDSO are the system call.
//!
//! Both mappings are private file mappings of two read-only in-memory files: fork copies
//! them, exec maps them anew, munmap and mprotect treat them as any mapping (a guest that
//! writes its copy harms only itself: the pages are its own, copied on write), core dumps
//! hold the vDSO's one page (gdb reads its symbols there), /proc/PID/maps names them. The
//! host's vDSO lies above `USER_END`, outside anything the guest can map; what it can do
//! there it could do by jumping into the stub's code, and its system calls trap as the
//! guest's own. `-e vm.vdso=0` maps nothing and leaves AT_SYSINFO_EHDR out: the C libraries
//! then make the system calls.

use std::sync::{Arc, OnceLock};

use goblin::elf::Elf;

use crate::fs::anon;
use crate::fs::mount::FsRef;
use crate::fs::vfs::{Attr, S_IFREG, Vnode, VnodeRef};
use crate::kern::errno::Errno;
use crate::vm::space::{AddressSpace, Backing, MapEntry, PAGE, PROT_EXEC, PROT_READ, page_up};

/// vk's vDSO image, as built.
pub static IMAGE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/vdso.so"));

/// The vvar page's first word ("vkvvar01"): the vDSO trusts the page only with it.
pub const VVAR_MAGIC: u64 = u64::from_le_bytes(*b"vkvvar01");

/// The symbols vk's vDSO exports (each also without the `__vdso_` prefix), as Linux's.
pub const SYMBOLS: [&str; 4] = ["__vdso_clock_gettime", "__vdso_gettimeofday", "__vdso_time", "__vdso_getcpu"];

/// The vvar page as the vDSO reads it (vdso.c's `struct vk_vvar`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, zerocopy::IntoBytes, zerocopy::FromBytes, zerocopy::Immutable)]
#[repr(C)]
pub struct Vvar {
    pub magic: u64,
    /// The host vDSO's clock_gettime in every stub, or 0.
    pub host_clock_gettime: u64,
    /// Results must lie below this (`USER_END`): other pointers are the system call's.
    pub user_end: u64,
}

/// A read-only file held in memory: the vvar page or the vDSO image.
#[derive(Debug)]
struct MemImage {
    bytes: Vec<u8>,
}

static FS: OnceLock<FsRef> = OnceLock::new();

impl Vnode for MemImage {
    fn attr(&self) -> Result<Attr, Errno> {
        // Inode 0, as /proc/PID/maps shows Linux's [vdso].
        Ok(Attr { mode: S_IFREG | 0o444, nlink: 1, size: self.bytes.len() as u64, blksize: PAGE, ..Attr::default() })
    }

    fn fs(&self) -> FsRef {
        anon::fs_of(&FS, "vdso")
    }

    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let start = usize::try_from(off).unwrap_or(usize::MAX).min(self.bytes.len());
        let n = buf.len().min(self.bytes.len() - start);
        buf[..n].copy_from_slice(&self.bytes[start..start + n]);
        Ok(n)
    }
}

/// The two files every process maps.
#[derive(Debug)]
struct Files {
    vvar: VnodeRef,
    text: VnodeRef,
    text_len: u64,
}

static FILES: OnceLock<Files> = OnceLock::new();
static ENABLED: OnceLock<bool> = OnceLock::new();

/// Whether processes get a vDSO (`-e vm.vdso=0` turns it off).
pub fn enabled() -> bool {
    *ENABLED.get_or_init(|| crate::kern::kenv::get("vm.vdso").map(str::trim) != Some("0"))
}

/// Where the host's `__vdso_clock_gettime` is in every stub: the host vDSO's own symbol, at
/// the address the stub moved it to. None without a host vDSO the stub moves.
pub fn host_clock_gettime() -> Option<u64> {
    let host = platform::stub::vdso::host()?;
    let off = symbol_offset(host.image, "__vdso_clock_gettime")?;
    Some(platform::stub::vdso::HOST_VDSO + off)
}

/// A dynamic symbol's offset from the image's start (its first PT_LOAD), if it lies inside it.
pub fn symbol_offset(image: &[u8], name: &str) -> Option<u64> {
    let elf = Elf::parse(image).ok()?;
    let load = elf.program_headers.iter().find(|p| p.p_type == goblin::elf::program_header::PT_LOAD)?;
    let sym = elf.dynsyms.iter().find(|s| elf.dynstrtab.get_at(s.st_name) == Some(name) && s.st_value != 0)?;
    let off = sym.st_value.checked_sub(load.p_vaddr)?;
    (off < image.len() as u64).then_some(off)
}

/// The vvar page's contents.
pub fn vvar() -> Vvar {
    Vvar {
        magic: VVAR_MAGIC,
        host_clock_gettime: host_clock_gettime().unwrap_or(0),
        user_end: platform::stub::layout::USER_END,
    }
}

fn files() -> &'static Files {
    FILES.get_or_init(|| {
        let mut page = vec![0u8; platform::PAGE_SIZE];
        let v = vvar();
        zerocopy::IntoBytes::write_to_prefix(&v, &mut page[..]).ok();
        if v.host_clock_gettime == 0 {
            log::info!("vdso: no host vDSO to call: guest clocks are read by system calls");
        }
        let text_len = page_up(IMAGE.len() as u64).unwrap_or(PAGE);
        Files { vvar: Arc::new(MemImage { bytes: page }), text: Arc::new(MemImage { bytes: IMAGE.to_vec() }), text_len }
    })
}

/// Map the vvar page and the vDSO into `vm` (a new image, after its interpreter): the
/// address of the vDSO's ELF header for AT_SYSINFO_EHDR, or None with the vDSO turned off.
pub fn map(vm: &mut AddressSpace) -> Result<Option<u64>, Errno> {
    if !enabled() {
        return Ok(None);
    }
    let f = files();
    let start = vm.find_free(PAGE + f.text_len, vm.mmap_base).ok_or(Errno::ENOMEM)?;
    let text = start + PAGE;
    vm.map(MapEntry {
        start,
        end: text,
        prot: PROT_READ,
        backing: Backing::File { vnode: Arc::clone(&f.vvar), offset: 0, file_len: PAGE },
        name: b"[vvar]".to_vec(),
    });
    vm.map(MapEntry {
        start: text,
        end: text + f.text_len,
        prot: PROT_READ | PROT_EXEC,
        backing: Backing::File { vnode: Arc::clone(&f.text), offset: 0, file_len: IMAGE.len() as u64 },
        name: b"[vdso]".to_vec(),
    });
    Ok(Some(text))
}

/// Whether a mapping is the vDSO or its data page, which are no file's (core files leave
/// them out of NT_FILE, as Linux; ddb's `show map` calls them `vdso`).
pub fn is_special(e: &MapEntry) -> bool {
    // By identity, without asking the vnode anything (ddb calls this and never waits).
    let Backing::File { vnode, .. } = &e.backing else { return false };
    FILES.get().is_some_and(|f| Arc::ptr_eq(vnode, &f.vvar) || Arc::ptr_eq(vnode, &f.text))
}

#[cfg(test)]
mod tests {
    use goblin::elf::program_header::{PF_R, PF_X, PT_LOAD};
    use platform::physmem::{MIN_PHYSMEM, PhysMem};

    use super::*;
    use crate::vm::uaccess::{self, UserPtr};

    #[test]
    fn the_image_exports_linuxs_symbols_and_needs_no_relocation() {
        let elf = Elf::parse(IMAGE).expect("an ELF");
        assert!(elf.is_64 && elf.header.e_type == goblin::elf::header::ET_DYN);
        let loads: Vec<_> = elf.program_headers.iter().filter(|p| p.p_type == PT_LOAD).collect();
        assert_eq!(loads.len(), 1);
        assert_eq!((loads[0].p_vaddr, loads[0].p_flags), (0, PF_R | PF_X));
        assert!(elf.dynrelas.is_empty() && elf.dynrels.is_empty() && elf.pltrelocs.is_empty());
        for s in SYMBOLS {
            let at = symbol_offset(IMAGE, s).unwrap_or_else(|| panic!("{s} missing"));
            assert_eq!(symbol_offset(IMAGE, s.trim_start_matches("__vdso_")), Some(at), "{s}'s alias");
        }
        let verdefs = elf.verdef.as_ref().expect("symbol versions");
        let names: Vec<_> = verdefs
            .iter()
            .flat_map(|d| d.iter().filter_map(|a| elf.dynstrtab.get_at(a.vda_name)).collect::<Vec<_>>())
            .collect();
        assert!(names.contains(&"LINUX_2.6"), "{names:?}");
        assert_eq!(elf.soname, Some("linux-vdso.so.1"));
    }

    #[test]
    fn exec_maps_the_data_page_then_the_vdso() {
        let pm = Arc::new(PhysMem::scratch(MIN_PHYSMEM).expect("scratch physical memory"));
        let mut vm = AddressSpace::with_physmem(1, pm);
        vm.mmap_base = 0x7000_0000;
        let ehdr = map(&mut vm).unwrap().expect("on by default");
        let names: Vec<_> = vm.entries().map(|e| (e.start, e.perms(), e.name.clone())).collect();
        assert_eq!(
            names,
            [(ehdr - PAGE, "r--p".to_string(), b"[vvar]".to_vec()), (ehdr, "r-xp".to_string(), b"[vdso]".to_vec())]
        );
        assert!(vm.entries().all(is_special));
        let magic: [u8; 4] = uaccess::read(&vm, UserPtr::new(ehdr)).unwrap();
        assert_eq!(&magic, b"\x7fELF");
        let page: Vvar = uaccess::read(&vm, UserPtr::new(ehdr - PAGE)).unwrap();
        assert_eq!(page, vvar());
        assert_eq!(page.user_end, platform::stub::layout::USER_END);
        // A core holds the vDSO, not the data page, and names no file for either.
        let dumped: Vec<u64> = vm.entries().map(|e| crate::kern::coredump::image::segment_of(e).dump_len).collect();
        assert_eq!(dumped, [0, page_up(IMAGE.len() as u64).unwrap()]);
        assert!(crate::kern::coredump::image::file_entries(&vm).is_empty());
        // A fork keeps both.
        let child = vm.fork(2, None);
        assert_eq!(child.entries().count(), 2);
    }

    #[test]
    fn the_host_function_lies_in_the_moved_vdso() {
        let Some(host) = platform::stub::vdso::host() else { return };
        let at = host_clock_gettime().expect("the host's vDSO exports __vdso_clock_gettime");
        assert!(at > platform::stub::vdso::HOST_VDSO && at < platform::stub::vdso::HOST_VDSO + host.image.len() as u64);
        assert!(at >= platform::stub::layout::USER_END, "outside the guest's address space");
    }
}
