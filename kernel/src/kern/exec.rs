//! execve: load a static ELF (ET_EXEC or static-PIE ET_DYN) or a `#!` script into a new
//! address space and build the initial stack Linux gives a program.
//!
//! ```text
//!  STACK_TOP ─┬─ execfn, envp strings, argv strings, "x86_64", 16 random bytes
//!             ├─ (16-byte alignment)
//!             ├─ auxv: (type, value) pairs … AT_NULL
//!             ├─ envp[] NULL
//!             ├─ argv[] NULL
//!  rsp ──────►└─ argc
//! ```
//!
//! Segments are file-backed private mappings: pages are read from the file on first touch;
//! the part of a segment's last page past its file size, and its bss, are zeros.

use goblin::container::{Container, Ctx, Endian};
use goblin::elf::header::{EM_X86_64, ET_DYN, ET_EXEC, Header};
use goblin::elf::program_header::{PF_R, PF_W, PF_X, PT_INTERP, PT_LOAD, PT_PHDR, ProgramHeader};

use crate::abi::c_ulong;
use crate::fs::namei::{self, NamePath};
use crate::fs::vfs::VnodeRef;
use crate::kern::errno::Errno;
use crate::kern::uproc::Cred;
use crate::vm::space::{AddressSpace, Backing, MapEntry, PAGE, PROT_EXEC, PROT_READ, PROT_WRITE, STACK_SIZE, STACK_TOP, page_down, page_up};
use crate::vm::uaccess::{self, UserPtr, UserSlice};

/// Where a static-PIE program is loaded.
pub const PIE_BASE: u64 = 0x5555_5555_0000;
/// Most bytes of arguments and environment (strings and pointers).
pub const ARG_MAX: usize = 2 << 20;
/// The longest single argument or environment string, with its NUL (Linux: 32 pages).
pub const MAX_ARG_STRLEN: usize = 32 * 4096;
/// Nested `#!` interpreters allowed.
const MAX_INTERP_DEPTH: u32 = 4;

// auxv types (linux/auxvec.h, asm/auxvec.h).
use linux_raw_sys::auxvec as at;
const AT_NULL: u64 = c_ulong(at::AT_NULL);
const AT_PHDR: u64 = c_ulong(at::AT_PHDR);
const AT_PHENT: u64 = c_ulong(at::AT_PHENT);
const AT_PHNUM: u64 = c_ulong(at::AT_PHNUM);
const AT_PAGESZ: u64 = c_ulong(at::AT_PAGESZ);
const AT_BASE: u64 = c_ulong(at::AT_BASE);
const AT_FLAGS: u64 = c_ulong(at::AT_FLAGS);
const AT_ENTRY: u64 = c_ulong(at::AT_ENTRY);
const AT_UID: u64 = c_ulong(at::AT_UID);
const AT_EUID: u64 = c_ulong(at::AT_EUID);
const AT_GID: u64 = c_ulong(at::AT_GID);
const AT_EGID: u64 = c_ulong(at::AT_EGID);
const AT_PLATFORM: u64 = c_ulong(at::AT_PLATFORM);
const AT_HWCAP: u64 = c_ulong(at::AT_HWCAP);
const AT_CLKTCK: u64 = c_ulong(at::AT_CLKTCK);
const AT_SECURE: u64 = c_ulong(at::AT_SECURE);
const AT_RANDOM: u64 = c_ulong(at::AT_RANDOM);
const AT_HWCAP2: u64 = c_ulong(at::AT_HWCAP2);
const AT_EXECFN: u64 = c_ulong(at::AT_EXECFN);
const AT_MINSIGSTKSZ: u64 = c_ulong(at::AT_MINSIGSTKSZ);

/// The size of a program header (`Elf64_Phdr`): e_phentsize must be it, and AT_PHENT says it.
const PHENT_SIZE: usize = 56;

/// One auxiliary vector entry (`Elf64_auxv_t`: a type and a value).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, zerocopy::IntoBytes, zerocopy::Immutable)]
struct AuxEntry {
    a_type: u64,
    a_val: u64,
}

/// A loaded program, ready to run.
#[derive(Debug)]
pub struct Image {
    pub vm: AddressSpace,
    pub entry: u64,
    pub sp: u64,
    /// The executable (after `#!` interpreters: the interpreter).
    pub path: NamePath,
    pub argv: Vec<Vec<u8>>,
    /// The command name: the last component of the path execve was given.
    pub comm: String,
    /// The credentials the program runs with (a setuid or setgid executable changes them).
    pub cred: Cred,
}

/// Why an exec failed, with a message worth printing on the console when the reason is not
/// obvious from the errno (a dynamically linked program, a corrupt ELF).
#[derive(Debug)]
pub struct ExecError {
    pub errno: Errno,
    pub why: Option<String>,
}

impl From<Errno> for ExecError {
    fn from(errno: Errno) -> ExecError {
        ExecError { errno, why: None }
    }
}

fn noexec(why: String) -> ExecError {
    ExecError { errno: Errno::ENOEXEC, why: Some(why) }
}

fn read_full(v: &VnodeRef, off: u64, len: usize) -> Result<Vec<u8>, Errno> {
    let mut buf = vec![0u8; len];
    let mut got = 0;
    while got < len {
        let at = u64::try_from(got).ok().and_then(|g| off.checked_add(g)).ok_or(Errno::EFBIG)?;
        let n = v.read_at(at, &mut buf[got..])?;
        if n == 0 {
            break;
        }
        got += n;
    }
    buf.truncate(got);
    Ok(buf)
}

/// Load `path` (resolved from `cwd`) with `argv` and `envp`, for a process `owner`.
pub fn load(cwd: &NamePath, path: &[u8], argv: Vec<Vec<u8>>, envp: Vec<Vec<u8>>, cred: Cred, owner: u64) -> Result<Image, ExecError> {
    load_depth(cwd, path, path, argv, envp, cred, owner, 0)
}

/// `execfn` is the path given to execve (AT_EXECFN), kept through `#!` interpreters.
#[allow(clippy::too_many_arguments, reason = "the pieces of an execve")]
fn load_depth(
    cwd: &NamePath,
    path: &[u8],
    execfn: &[u8],
    argv: Vec<Vec<u8>>,
    envp: Vec<Vec<u8>>,
    cred: Cred,
    owner: u64,
    depth: u32,
) -> Result<Image, ExecError> {
    let np = namei::lookup(&cred, cwd, path, true)?;
    crate::fs::mount::may_exec(&np)?; // EACCES on a noexec mount
    let v = np.vnode().clone();
    let attr = v.attr()?;
    crate::fs::perm::may_exec(&cred, &attr)?;
    let head = read_full(&v, 0, 256)?;
    if head.starts_with(b"#!") {
        if depth >= MAX_INTERP_DEPTH {
            return Err(Errno::ELOOP.into());
        }
        let line_end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
        let line = &head[2..line_end];
        let trimmed: Vec<u8> = line.iter().copied().skip_while(|b| *b == b' ' || *b == b'\t').collect();
        let split = trimmed.iter().position(|&b| b == b' ' || b == b'\t').unwrap_or(trimmed.len());
        let interp = trimmed[..split].to_vec();
        if interp.is_empty() {
            return Err(noexec(format!("{}: empty #! line", String::from_utf8_lossy(path))));
        }
        // Linux passes the rest of the line as one argument, trailing blanks removed.
        let rest: Vec<u8> = trimmed[split..].iter().copied().skip_while(|b| *b == b' ' || *b == b'\t').collect();
        let rest_end = rest.iter().rposition(|&b| b != b' ' && b != b'\t').map_or(0, |i| i + 1);
        let mut new_argv = vec![interp.clone()];
        if rest_end > 0 {
            new_argv.push(rest[..rest_end].to_vec());
        }
        new_argv.push(path.to_vec());
        new_argv.extend(argv.into_iter().skip(1));
        return load_depth(cwd, &interp, execfn, new_argv, envp, cred, owner, depth + 1);
    }
    // Linux names the process after the path execve was given (kbasename(bprm->filename)),
    // not the file a symbolic link leads to: /sbin/init → busybox is "init".
    let base = execfn.rsplit(|&b| b == b'/').next().unwrap_or(execfn);
    let comm = String::from_utf8_lossy(base).into_owned();
    load_elf(&v, np, execfn, argv, envp, cred, owner, comm)
}

fn prot_of(flags: u32) -> u32 {
    let mut p = 0;
    if flags & PF_R != 0 {
        p |= PROT_READ;
    }
    if flags & PF_W != 0 {
        p |= PROT_WRITE;
    }
    if flags & PF_X != 0 {
        p |= PROT_EXEC;
    }
    p
}

#[allow(clippy::too_many_arguments, reason = "the pieces of an execve")]
fn load_elf(
    v: &VnodeRef,
    np: NamePath,
    path: &[u8],
    argv: Vec<Vec<u8>>,
    envp: Vec<Vec<u8>>,
    cred: Cred,
    owner: u64,
    comm: String,
) -> Result<Image, ExecError> {
    let name = String::from_utf8_lossy(path).into_owned();
    let hdr_bytes = read_full(v, 0, 64)?;
    if hdr_bytes.len() < 64 || &hdr_bytes[..4] != b"\x7fELF" {
        return Err(Errno::ENOEXEC.into());
    }
    let h = goblin::elf::Elf::parse_header(&hdr_bytes).map_err(|e| noexec(format!("{name}: bad ELF header: {e}")))?;
    if h.e_ident[4] != 2 || h.e_ident[5] != 1 || h.e_machine != EM_X86_64 {
        return Err(noexec(format!("{name}: not an x86-64 little-endian ELF")));
    }
    if h.e_type != ET_EXEC && h.e_type != ET_DYN {
        return Err(noexec(format!("{name}: not an executable (ELF type {})", h.e_type)));
    }
    let phnum = usize::from(h.e_phnum);
    if usize::from(h.e_phentsize) != PHENT_SIZE || phnum == 0 || phnum > 128 {
        return Err(noexec(format!("{name}: bad program headers")));
    }
    let ph_bytes = read_full(v, h.e_phoff, phnum * PHENT_SIZE)?;
    if ph_bytes.len() < phnum * PHENT_SIZE {
        return Err(noexec(format!("{name}: truncated program headers")));
    }
    let ctx = Ctx::new(Container::Big, Endian::Little);
    let phdrs = ProgramHeader::parse(&ph_bytes, 0, phnum, ctx).map_err(|e| noexec(format!("{name}: {e}")))?;
    if phdrs.iter().any(|p| p.p_type == PT_INTERP) {
        return Err(noexec(format!("{name}: dynamically linked programs are not supported yet (it asks for an interpreter)")));
    }
    let bias = if h.e_type == ET_DYN { PIE_BASE } else { 0 };
    let mut vm = AddressSpace::new(owner);
    let mut max_end = 0u64;
    let mut phdr_addr = None;
    for p in phdrs.iter().filter(|p| p.p_type == PT_LOAD) {
        if p.p_memsz == 0 {
            continue;
        }
        if p.p_filesz > p.p_memsz || p.p_vaddr % PAGE != p.p_offset % PAGE {
            return Err(noexec(format!("{name}: bad PT_LOAD segment")));
        }
        let vaddr = bias.checked_add(p.p_vaddr).ok_or(Errno::ENOEXEC)?;
        let mem_end = vaddr.checked_add(p.p_memsz).ok_or(Errno::ENOEXEC)?;
        if vaddr < crate::vm::space::MMAP_MIN || mem_end > STACK_TOP - STACK_SIZE {
            return Err(noexec(format!("{name}: segment at {vaddr:#x} outside the user address space")));
        }
        let start = page_down(vaddr);
        let file_end = vaddr + p.p_filesz;
        let prot = prot_of(p.p_flags);
        let file_map_end = page_up(file_end).ok_or(Errno::ENOEXEC)?;
        if p.p_filesz > 0 {
            vm.map(MapEntry {
                start,
                end: file_map_end,
                prot,
                backing: Backing::File { vnode: v.clone(), offset: p.p_offset - (vaddr - start), file_len: file_end - start },
                name: np.to_path_bytes(),
            });
        }
        let anon_start = if p.p_filesz > 0 { file_map_end } else { start };
        let anon_end = page_up(mem_end).ok_or(Errno::ENOEXEC)?;
        if anon_end > anon_start {
            vm.map(MapEntry { start: anon_start, end: anon_end, prot, backing: Backing::Anon, name: Vec::new() });
        }
        if p.p_offset == 0 {
            // The file's numbers: Linux's sum wraps (AT_PHDR is only a hint to the program).
            phdr_addr.get_or_insert(vaddr.wrapping_add(h.e_phoff));
        }
        max_end = max_end.max(mem_end);
    }
    if max_end == 0 {
        return Err(noexec(format!("{name}: no loadable segments")));
    }
    if let Some(p) = phdrs.iter().find(|p| p.p_type == PT_PHDR) {
        phdr_addr = Some(bias.wrapping_add(p.p_vaddr));
    }
    let brk = page_up(max_end).ok_or(Errno::ENOEXEC)?;
    vm.brk_start = brk;
    vm.brk = brk;
    vm.map(MapEntry {
        start: STACK_TOP - STACK_SIZE,
        end: STACK_TOP,
        prot: PROT_READ | PROT_WRITE,
        backing: Backing::Anon,
        name: b"[stack]".to_vec(),
    });
    let entry = bias + h.e_entry;
    // The setuid and setgid bits of the program finally run (an interpreter's, for a `#!`).
    let attr = v.attr()?;
    let nosuid = !crate::fs::mount::suid_allowed(&np);
    let (cred, secure) = cred.exec(attr.uid, attr.gid, attr.mode, nosuid);
    let aux = AuxInfo { phdr: phdr_addr.unwrap_or(0), phnum: u64::from(h.e_phnum), entry, cred, secure };
    let sp = build_stack(&mut vm, path, &argv, &envp, &aux, &h)?;
    Ok(Image { vm, entry, sp, path: np, argv, comm, cred: aux.cred })
}

struct AuxInfo {
    phdr: u64,
    phnum: u64,
    entry: u64,
    cred: Cred,
    /// AT_SECURE: the program runs with ids other than the caller's real ones.
    secure: bool,
}

/// A length in guest address arithmetic.
fn len64(n: usize) -> Result<u64, Errno> {
    u64::try_from(n).map_err(|_| Errno::E2BIG)
}

/// Write argc, argv, envp, auxv and their strings below STACK_TOP; returns the new rsp.
fn build_stack(vm: &mut AddressSpace, execfn: &[u8], argv: &[Vec<u8>], envp: &[Vec<u8>], aux: &AuxInfo, _h: &Header) -> Result<u64, ExecError> {
    let strings: usize = argv.iter().chain(envp.iter()).map(|s| s.len() + 1).sum::<usize>() + execfn.len() + 1;
    let ptrs = (argv.len() + envp.len() + 3) * size_of::<u64>();
    if strings + ptrs > ARG_MAX {
        return Err(Errno::E2BIG.into());
    }
    let mut sp = STACK_TOP - 8; // an end marker word, as Linux leaves one
    let mut push_str = |vm: &mut AddressSpace, s: &[u8]| -> Result<u64, Errno> {
        sp = sp.checked_sub(len64(s.len() + 1)?).ok_or(Errno::E2BIG)?;
        let mut b = s.to_vec();
        b.push(0);
        uaccess::write_slice(vm, UserSlice::new(sp, b.len()), &b)?;
        Ok(sp)
    };
    let execfn_addr = push_str(vm, execfn)?;
    let mut env_addrs = Vec::with_capacity(envp.len());
    for e in envp.iter().rev() {
        env_addrs.push(push_str(vm, e)?);
    }
    env_addrs.reverse();
    let mut arg_addrs = Vec::with_capacity(argv.len());
    for a in argv.iter().rev() {
        arg_addrs.push(push_str(vm, a)?);
    }
    arg_addrs.reverse();
    let platform_addr = push_str(vm, b"x86_64")?;
    let mut random = [0u8; 16];
    platform::io::random_bytes(&mut random);
    sp = (sp - 16) & !15;
    let random_addr = sp;
    uaccess::write(vm, UserPtr::new(random_addr), &random)?;
    let auxv: Vec<(u64, u64)> = vec![
        (AT_PHDR, aux.phdr),
        (AT_PHENT, len64(PHENT_SIZE)?),
        (AT_PHNUM, aux.phnum),
        (AT_PAGESZ, PAGE),
        (AT_BASE, 0),
        (AT_FLAGS, 0),
        (AT_ENTRY, aux.entry),
        (AT_UID, u64::from(aux.cred.uid)),
        (AT_EUID, u64::from(aux.cred.euid)),
        (AT_GID, u64::from(aux.cred.gid)),
        (AT_EGID, u64::from(aux.cred.egid)),
        (AT_PLATFORM, platform_addr),
        (AT_HWCAP, platform::cpu::hwcap()),
        (AT_CLKTCK, crate::kern::cputime::USER_HZ),
        (AT_SECURE, u64::from(aux.secure)),
        (AT_RANDOM, random_addr),
        (AT_HWCAP2, 0),
        (AT_EXECFN, execfn_addr),
        (AT_MINSIGSTKSZ, crate::abi::signal::MINSIGSTKSZ),
        (AT_NULL, 0),
    ];
    let auxv: Vec<AuxEntry> = auxv.into_iter().map(|(a_type, a_val)| AuxEntry { a_type, a_val }).collect();
    // argc, argv[] and NULL, envp[] and NULL: words; then the auxv, 16-byte aligned as a whole.
    let mut words: Vec<u64> = Vec::with_capacity(argv.len() + envp.len() + 3);
    words.push(len64(argv.len())?);
    words.extend(&arg_addrs);
    words.push(0);
    words.extend(&env_addrs);
    words.push(0);
    let words_len = len64(words.len() * size_of::<u64>())?;
    let auxv_len = len64(auxv.len() * size_of::<AuxEntry>())?;
    sp = sp.checked_sub(words_len + auxv_len).ok_or(Errno::E2BIG)? & !15;
    uaccess::write_slice(vm, UserSlice::new(sp, words.len()), &words)?;
    uaccess::write_slice(vm, UserSlice::new(sp + words_len, auxv.len()), &auxv)?;
    Ok(sp)
}
