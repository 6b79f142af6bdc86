//! The initial stack Linux gives a program (fs/binfmt_elf.c's create_elf_tables), and its
//! auxiliary vector.
//!
//! ```text
//!  stack top ─┬─ an end marker word (0)
//!             ├─ execfn, envp strings, argv strings
//!             ├─ (a random 0..8 KiB gap when randomising, 16-byte aligned)
//!             ├─ "x86_64" (AT_PLATFORM), 16 random bytes (AT_RANDOM)
//!             ├─ (16-byte alignment of what follows, as a whole)
//!             ├─ auxv: (type, value) pairs … AT_NULL
//!             ├─ envp[] NULL
//!             ├─ argv[] NULL
//!  rsp ──────►└─ argc
//! ```

use linux_raw_sys::auxvec as at;
use zerocopy::IntoBytes;

use super::aslr::Layout;
use super::elf::PHENT_SIZE;
use super::{ARG_MAX, ExecError};
use crate::abi::c_ulong;
use crate::abi::exec::AuxEntry;
use crate::kern::errno::Errno;
use crate::kern::uproc::Cred;
use crate::vm::space::{AddressSpace, PAGE};
use crate::vm::uaccess::{self, UserPtr, UserSlice};

/// What the auxiliary vector tells the program about itself.
#[derive(Debug)]
pub struct AuxInfo {
    /// The program's program headers in memory, their count, and its entry point (the
    /// program's own, not the interpreter's).
    pub phdr: u64,
    pub phnum: u64,
    pub entry: u64,
    /// Where the interpreter was loaded (0 without one).
    pub base: u64,
    pub cred: Cred,
    /// AT_SECURE: the program runs with ids other than the caller's real ones.
    pub secure: bool,
    /// AT_SYSINFO_EHDR: where the vDSO is (None: no vDSO, no entry).
    pub sysinfo_ehdr: Option<u64>,
}

/// A length in guest address arithmetic.
fn len64(n: usize) -> Result<u64, Errno> {
    u64::try_from(n).map_err(|_| Errno::E2BIG)
}

/// The auxiliary vector, in the order Linux writes it.
fn auxv(aux: &AuxInfo, platform_addr: u64, random_addr: u64, execfn_addr: u64) -> Result<Vec<AuxEntry>, Errno> {
    // x86-64's ARCH_DLINFO comes first: AT_SYSINFO_EHDR when there is a vDSO.
    let vdso = aux.sysinfo_ehdr.map(|a| (at::AT_SYSINFO_EHDR, a));
    let v = [
        (at::AT_MINSIGSTKSZ, crate::abi::signal::MINSIGSTKSZ),
        (at::AT_HWCAP, platform::cpu::hwcap()),
        (at::AT_PAGESZ, PAGE),
        (at::AT_CLKTCK, crate::kern::cputime::USER_HZ),
        (at::AT_PHDR, aux.phdr),
        (at::AT_PHENT, len64(PHENT_SIZE)?),
        (at::AT_PHNUM, aux.phnum),
        (at::AT_BASE, aux.base),
        (at::AT_FLAGS, 0),
        (at::AT_ENTRY, aux.entry),
        (at::AT_UID, u64::from(aux.cred.uid)),
        (at::AT_EUID, u64::from(aux.cred.euid)),
        (at::AT_GID, u64::from(aux.cred.gid)),
        (at::AT_EGID, u64::from(aux.cred.egid)),
        (at::AT_SECURE, u64::from(aux.secure)),
        (at::AT_RANDOM, random_addr),
        // HWCAP2: neither ring-3 MWAIT nor FSGSBASE is offered (a guest's wrfsbase would
        // bypass the fs base the kernel keeps for it).
        (at::AT_HWCAP2, 0),
        (at::AT_EXECFN, execfn_addr),
        (at::AT_PLATFORM, platform_addr),
        (at::AT_RSEQ_FEATURE_SIZE, u64::from(crate::abi::rseq::RSEQ_FEATURE_SIZE)),
        (at::AT_RSEQ_ALIGN, u64::from(crate::abi::rseq::RSEQ_ALIGN)),
        (at::AT_NULL, 0),
    ];
    Ok(vdso.into_iter().chain(v).map(|(t, a_val)| AuxEntry { a_type: c_ulong(t), a_val }).collect())
}

/// Write argc, argv, envp, auxv and their strings below the layout's stack top; returns the
/// new rsp and the auxiliary vector's bytes (AT_NULL included: /proc/PID/auxv).
pub fn build_stack(
    vm: &mut AddressSpace,
    layout: &Layout,
    execfn: &[u8],
    argv: &[Vec<u8>],
    envp: &[Vec<u8>],
    aux: &AuxInfo,
) -> Result<(u64, Vec<u8>), ExecError> {
    let strings: usize = argv.iter().chain(envp.iter()).map(|s| s.len() + 1).sum::<usize>() + execfn.len() + 1;
    let ptrs = (argv.len() + envp.len() + 3) * size_of::<u64>();
    if strings + ptrs > ARG_MAX {
        return Err(Errno::E2BIG.into());
    }
    let mut sp = layout.stack_top - 8; // the end marker word
    let push_str = |vm: &mut AddressSpace, sp: &mut u64, s: &[u8]| -> Result<u64, Errno> {
        *sp = sp.checked_sub(len64(s.len() + 1)?).ok_or(Errno::E2BIG)?;
        let mut b = s.to_vec();
        b.push(0);
        uaccess::write_slice(vm, UserSlice::new(*sp, b.len()), &b)?;
        Ok(*sp)
    };
    let execfn_addr = push_str(vm, &mut sp, execfn)?;
    let mut env_addrs = Vec::with_capacity(envp.len());
    for e in envp.iter().rev() {
        env_addrs.push(push_str(vm, &mut sp, e)?);
    }
    env_addrs.reverse();
    let mut arg_addrs = Vec::with_capacity(argv.len());
    for a in argv.iter().rev() {
        arg_addrs.push(push_str(vm, &mut sp, a)?);
    }
    arg_addrs.reverse();
    sp = layout.align_sp(sp);
    let platform_addr = push_str(vm, &mut sp, b"x86_64")?;
    let mut random = [0u8; 16];
    platform::io::random_bytes(&mut random);
    sp = (sp - 16) & !15;
    let random_addr = sp;
    uaccess::write(vm, UserPtr::new(random_addr), &random)?;
    let auxv = auxv(aux, platform_addr, random_addr, execfn_addr)?;
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
    Ok((sp, auxv.as_bytes().to_vec()))
}
