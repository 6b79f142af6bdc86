//! execve: load an ELF program (static or dynamically linked, fixed or position
//! independent) or a `#!` script into a new address space, with its interpreter, and build
//! the initial stack Linux gives a program.
//!
//! | file       | what it does                                                          |
//! |------------|------------------------------------------------------------------------|
//! | `mod.rs`   | path lookup, permissions, `#!` scripts, the order of an ELF load       |
//! | `elf.rs`   | reading and checking ELF headers, PT_INTERP, mapping PT_LOAD segments  |
//! | `aslr.rs`  | where the stack, mmap area, PIE and break go (randomised as Linux)     |
//! | `stack.rs` | argc, argv, envp and the auxiliary vector on the new stack             |
//! | `vdso.rs`  | the vDSO and its data page, mapped into every new image               |
//!
//! A dynamically linked program names its interpreter (`/lib64/ld-linux-x86-64.so.2`,
//! `/lib/ld-musl-x86_64.so.1`) in PT_INTERP: both are mapped, the program at its own address
//! (ET_EXEC) or at the PIE base (ET_DYN), the interpreter in the mmap area, and the program
//! starts at the interpreter's entry with AT_BASE, AT_PHDR and AT_ENTRY telling it where
//! each is. An interpreter run directly (`ld.so --list prog`) is a position-independent
//! program without an interpreter, loaded in the mmap area as a static PIE is.

pub mod aslr;
pub mod elf;
pub mod stack;
pub mod vdso;

use crate::abi::exec::Persona;
use crate::fs::namei::{self, NamePath};
use crate::fs::vfs::VnodeRef;
use crate::kern::errno::Errno;
use crate::kern::uproc::Cred;
use crate::vm::space::{Access, AddressSpace, Backing, MapEntry, PAGE, PROT_EXEC, PROT_READ, PROT_WRITE};

use aslr::Layout;
use elf::ElfFile;
use stack::AuxInfo;

/// Most bytes of arguments and environment (strings and pointers).
pub const ARG_MAX: usize = 2 << 20;
/// The longest single argument or environment string, with its NUL (Linux: 32 pages).
pub const MAX_ARG_STRLEN: usize = 32 * 4096;
/// Nested `#!` interpreters allowed.
const MAX_INTERP_DEPTH: u32 = 4;

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
    /// The persona it runs with (exec clears some bits).
    pub persona: Persona,
    /// Its auxiliary vector's bytes, as /proc/PID/auxv shows them.
    pub auxv: Vec<u8>,
    /// Its environment strings, each NUL-terminated, as /proc/PID/environ shows them.
    pub environ: Vec<u8>,
    /// The executable may not be written while it runs (ETXTBSY).
    pub deny: crate::fs::writecount::DenyWrite,
}

/// Why an exec failed, with a message worth printing on the console when the reason is not
/// obvious from the errno (a missing interpreter, a corrupt ELF).
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

pub(crate) fn noexec(why: String) -> ExecError {
    ExecError { errno: Errno::ENOEXEC, why: Some(why) }
}

pub(crate) fn read_full(v: &VnodeRef, off: u64, len: usize) -> Result<Vec<u8>, Errno> {
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

/// What to exec, and for whom.
#[derive(Debug)]
pub struct Request<'a> {
    /// The caller's working directory: relative paths start there.
    pub cwd: &'a NamePath,
    pub path: &'a [u8],
    pub argv: Vec<Vec<u8>>,
    pub envp: Vec<Vec<u8>>,
    /// The caller's credentials.
    pub cred: Cred,
    /// The pid the new address space's pages are recorded for.
    pub owner: u64,
    /// The caller's persona (personality(2)).
    pub persona: Persona,
    /// Set-id bits are ignored (a tracer without CAP_SYS_PTRACE: Linux's LSM_UNSAFE_PTRACE).
    pub no_setid: bool,
    /// The caller's RLIMIT_STACK (soft), which sizes the new stack.
    pub stack_rlimit: u64,
}

/// Load `req.path` with its arguments and environment.
pub fn load(req: Request<'_>) -> Result<Image, ExecError> {
    let Request { cwd, path, argv, envp, cred, owner, persona, no_setid, stack_rlimit } = req;
    load_depth(cwd, path, path, argv, envp, Process { cred, owner, persona, no_setid, stack_rlimit }, 0)
}

/// Who an image is loaded for.
struct Process {
    cred: Cred,
    owner: u64,
    persona: Persona,
    no_setid: bool,
    stack_rlimit: u64,
}

/// `execfn` is the path given to execve (AT_EXECFN), kept through `#!` interpreters.
#[allow(clippy::too_many_arguments, reason = "the pieces of an execve")]
fn load_depth(
    cwd: &NamePath,
    path: &[u8],
    execfn: &[u8],
    argv: Vec<Vec<u8>>,
    envp: Vec<Vec<u8>>,
    who: Process,
    depth: u32,
) -> Result<Image, ExecError> {
    let (np, v) = open_exec(&who.cred, cwd, path)?;
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
        return load_depth(cwd, &interp, execfn, new_argv, envp, who, depth + 1);
    }
    // Linux names the process after the path execve was given (kbasename(bprm->filename)),
    // not the file a symbolic link leads to: /sbin/init → busybox is "init".
    let base = execfn.rsplit(|&b| b == b'/').next().unwrap_or(execfn);
    let comm = String::from_utf8_lossy(base).into_owned();
    load_elf(cwd, &v, np, execfn, argv, envp, who, comm)
}

/// Look up a file to execute (the program, or its interpreter): EACCES on a noexec mount or
/// without execute permission.
fn open_exec(cred: &Cred, cwd: &NamePath, path: &[u8]) -> Result<(NamePath, VnodeRef), Errno> {
    let np = namei::lookup(cred, cwd, path, true)?;
    crate::fs::mount::may_exec(&np)?;
    let v = np.vnode().clone();
    let attr = v.attr()?;
    crate::fs::perm::may_exec(cred, &attr)?;
    Ok((np, v))
}

/// Open and check the interpreter `interp` that `name` asks for: ENOENT (with a message) when
/// it is missing, ELIBBAD when it is not an x86-64 ELF executable.
fn open_interp(cred: &Cred, cwd: &NamePath, interp: &[u8], name: &str) -> Result<ElfFile, ExecError> {
    let shown = String::from_utf8_lossy(interp).into_owned();
    let (np, v) = open_exec(cred, cwd, interp).map_err(|errno| ExecError {
        errno,
        why: Some(format!("{name}: its interpreter {shown}: {}", errno.text())),
    })?;
    ElfFile::read(&v, np, &shown).map_err(|e| match e.errno {
        Errno::ENOEXEC => ExecError {
            errno: Errno::ELIBBAD,
            why: Some(format!("{name}: its interpreter {shown} is not an x86-64 ELF program")),
        },
        _ => e,
    })
}

/// Whether exec'ing a file with `mode` takes its set-user-ID or set-group-ID bit (the persona
/// then loses [`Persona::CLEAR_ON_SETID`]).
fn takes_setid(mode: u32, nosuid: bool) -> bool {
    const S_ISUID: u32 = 0o4000;
    const S_ISGID: u32 = 0o2000;
    const S_IXGRP: u32 = 0o010;
    !nosuid && (mode & S_ISUID != 0 || mode & (S_ISGID | S_IXGRP) == S_ISGID | S_IXGRP)
}

/// Load an ELF program, and its interpreter if it names one.
#[allow(clippy::too_many_arguments, reason = "the pieces of an execve")]
fn load_elf(
    cwd: &NamePath,
    v: &VnodeRef,
    np: NamePath,
    execfn: &[u8],
    argv: Vec<Vec<u8>>,
    envp: Vec<Vec<u8>>,
    who: Process,
    comm: String,
) -> Result<Image, ExecError> {
    let name = String::from_utf8_lossy(execfn).into_owned();
    // A file open for writing is not run (ETXTBSY); from here the program may not be written.
    let deny = crate::fs::writecount::DenyWrite::get(v)?;
    let exe = ElfFile::read(v, np, &name)?;
    let interp = match exe.interp()? {
        Some(path) => Some(open_interp(&who.cred, cwd, &path, &name)?),
        None => None,
    };
    // The setuid and setgid bits of the program finally run (an interpreter's, for a `#!`;
    // never the ELF interpreter's).
    let attr = v.attr()?;
    let nosuid = !crate::fs::mount::suid_allowed(&exe.path) || who.no_setid;
    let (cred, secure) = who.cred.exec(attr.uid, attr.gid, attr.mode, nosuid);
    let persona = who.persona.after_exec(takes_setid(attr.mode, nosuid));
    let layout = Layout::choose(persona, who.stack_rlimit);

    let mut vm = AddressSpace::new(who.owner);
    vm.mmap_base = layout.mmap_base;
    let limit = layout.stack_bottom();
    // Linux's load_bias: a PIE with an interpreter at the PIE base; one without (a static
    // PIE, or ld.so run directly) in the mmap area, as the interpreter goes.
    let bias = match (exe.is_dyn(), &interp) {
        (false, _) => 0,
        (true, Some(_)) => exe.bias_at(layout.et_dyn_base)?,
        (true, None) => exe.bias_in_mmap_area(&vm, layout.mmap_base)?,
    };
    let main = exe.map(&mut vm, bias, limit)?;
    let (entry, base) = match &interp {
        Some(i) => {
            let ibias = if i.is_dyn() { i.bias_in_mmap_area(&vm, layout.mmap_base)? } else { 0 };
            let l = i.map(&mut vm, ibias, limit)?;
            (l.entry, l.bias)
        }
        None => (main.entry, 0),
    };
    // The vDSO goes below the interpreter, as Linux's arch_setup_additional_pages.
    let sysinfo_ehdr = vdso::map(&mut vm)?;
    // The break follows the program's data. For a PIE without an interpreter, which sits in
    // the mmap area, it moves to the PIE base instead (as Linux does when it randomises, and
    // here always), so that it does not grow into the mappings above.
    let brk_at = if exe.is_dyn() && interp.is_none() { aslr::ELF_ET_DYN_BASE } else { main.end };
    let brk = layout.brk_start(brk_at);
    vm.brk_start = brk;
    vm.brk = brk;
    let stack_prot = PROT_READ | PROT_WRITE | if exe.exec_stack() { PROT_EXEC } else { 0 };
    vm.map(MapEntry {
        start: limit,
        end: layout.stack_top,
        prot: stack_prot,
        backing: Backing::Anon,
        name: b"[stack]".to_vec(),
    });
    let phnum = u64::from(exe.hdr.e_phnum);
    let aux = AuxInfo { phdr: main.phdr, phnum, entry: main.entry, base, cred, secure, sysinfo_ehdr };
    let (sp, auxv) = stack::build_stack(&mut vm, &layout, execfn, &argv, &envp, &aux)?;
    // What the page cache holds of the program and its interpreter is mapped at once.
    vm.map_cached();
    prefault(&vm, sp);
    let environ = envp.iter().flat_map(|e| e.iter().copied().chain([0])).collect();
    Ok(Image { vm, entry, sp, path: exe.path, argv, comm, cred: aux.cred, persona, auxv, environ, deny })
}

/// Make resident now, and queue for the stub, the pages a new program touches first that
/// `map_cached` cannot give it: the page a file segment ends inside when the program reads
/// it on its first instructions — the segment at file offset 0 (the ELF and program headers,
/// which the dynamic loader or a static libc reads through AT_PHDR), the tail of its text,
/// the tail of its data — read from the file into a page of its own, zeros after the
/// segment, as a fault does (a round trip through the stub later, ~10–20 µs); and the stack
/// page below the one the arguments end in, where its first frames go. A static musl
/// program took four such faults on its first instructions. Read-only data tails and the
/// vDSO are left to fault: not every program reads them. A page that cannot be brought in
/// is left to fault as before.
///
/// Only for a file whose page cache holds the tail's page and the next one: a page brought
/// in here comes off the free list, and taken before a cold program has been read (the
/// first exec of `/bin/sh`) it sits where the file's next pages would have been cached in a
/// row — measured, the shell script's forked children then mirrored their parent's busybox
/// text in ~26 more host mappings each.
fn prefault(vm: &AddressSpace, sp: u64) {
    let tails: Vec<u64> = vm
        .entries()
        .filter_map(|e| match &e.backing {
            Backing::File { vnode, offset, file_len }
                if (*offset == 0 || e.prot & (PROT_EXEC | PROT_WRITE) != 0)
                    && e.prot != 0
                    && e.name.first() == Some(&b'/')
                    && offset.is_multiple_of(PAGE)
                    && e.start.is_multiple_of(PAGE)
                    && !file_len.is_multiple_of(PAGE) =>
            {
                let a = e.start.checked_add(file_len / PAGE * PAGE)?;
                let idx = (offset + file_len) / PAGE;
                let warm = vnode.page_cache().is_some_and(|c| c.contains(idx) && c.contains(idx + 1));
                (a < e.end && warm).then_some(a)
            }
            _ => None,
        })
        .collect();
    for a in tails {
        let _ = vm.fault(a, Access::Read);
    }
    // The last page of each segment's bss (an unnamed anonymous mapping of the program or
    // its interpreter): a static libc's own state and its initial thread's TLS come last
    // there, and the start-up code writes them before anything else (vkbench's one fault
    // left after the tails). One zero page each.
    let bss_ends: Vec<u64> =
        vm.entries().filter(|e| matches!(e.backing, Backing::Anon) && e.name.is_empty() && e.prot & PROT_WRITE != 0).map(|e| e.end - PAGE).collect();
    for a in bss_ends {
        let _ = vm.fault(a, Access::Write);
    }
    if let Some(below) = sp.checked_sub(PAGE) {
        let _ = vm.fault(below, Access::Write);
    }
}
