//! ptrace(2)'s requests, and process_vm_readv/process_vm_writev(2). The tracer/tracee state
//! machine (stops, restarts, attach and detach, wait) is `kern::ptrace`; this file decodes the
//! requests and moves registers and memory between tracer and tracee.
//!
//! | request                               | what it does here                                   |
//! |---------------------------------------|------------------------------------------------------|
//! | TRACEME, ATTACH, SEIZE                | `kern::ptrace::{traceme, attach}`: permission, Yama   |
//! | INTERRUPT, KILL                       | an EVENT_STOP; SIGKILL — the tracee need not be stopped |
//! | CONT, SYSCALL, SINGLESTEP, SYSEMU(_SINGLESTEP), DETACH | restart with a signal (EIO for an invalid one) |
//! | LISTEN                                | a seized tracee's group stop: stopped, out of the ptrace stop |
//! | PEEKTEXT/DATA, POKETEXT/DATA          | a word of the tracee's memory (EIO/EFAULT when unmapped); POKE writes text too |
//! | PEEKUSER, POKEUSER                    | `struct user`: the registers, the debug registers (DR7 enables nothing: EIO) |
//! | GETREGS/SETREGS, GETFPREGS/SETFPREGS  | user_regs_struct; the fxsave image in the stub's frame |
//! | GETREGSET/SETREGSET                   | NT_PRSTATUS, NT_PRFPREG, NT_X86_XSTATE (get; set keeps the layout) |
//! | GETSIGINFO/SETSIGINFO, PEEKSIGINFO, GETSIGMASK/SETSIGMASK, GETEVENTMSG, SETOPTIONS, GET_SYSCALL_INFO, ARCH_PRCTL | as ptrace(2) |
//!
//! Every request but TRACEME, ATTACH, SEIZE, INTERRUPT and KILL needs a tracee of the caller in
//! a ptrace stop (ESRCH otherwise).

use std::sync::atomic::Ordering;

use platform::stub::reg;
use zerocopy::{FromBytes, IntoBytes};

use crate::abi::fs::Iovec;
use crate::abi::ptrace::*;
use crate::abi::signal::Siginfo;
use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};
use crate::kern::ptrace::{self, Mode, SyscallAt, X86_EFLAGS_TF};
use crate::kern::signal::{self, SIGKILL};
use crate::kern::thread::UThread;
use crate::vm::uaccess::{UserPtr, UserSlice};

/// The flags a tracer may set (FLAG_MASK in arch/x86/kernel/ptrace.c): CF PF AF ZF SF TF DF OF
/// RF AC.
const FLAG_MASK: u64 = 0x5_0dd5;
/// The largest user address plus one (TASK_SIZE_MAX): a higher fs base is EIO.
const TASK_SIZE_MAX: u64 = (1 << 47) - 4096;
/// Where the signal frame's software bytes sit in the FPU image, and the fxsave part's size.
const SW_BYTES: usize = 464;
const FXSAVE_LEN: usize = 512;
const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;

pub fn sys_ptrace(ctx: &mut Ctx<'_>) -> SysResult {
    let req = u32::try_from(ctx.arg(0)).map_err(|_| Errno::EIO)?;
    let pid = ctx.int(1);
    let (addr, data) = (ctx.arg(2), ctx.arg(3));
    match req {
        PTRACE_TRACEME => return ptrace::traceme(ctx.td, ctx.p).map(|()| 0),
        PTRACE_ATTACH | PTRACE_SEIZE => {
            let seize = req == PTRACE_SEIZE;
            let options = u32::try_from(data).map_err(|_| Errno::EIO)?;
            if seize && (addr != 0 || options & !PTRACE_O_MASK != 0) {
                return Err(Errno::EIO);
            }
            let (tp, td) = ptrace::find_thread(pid).ok_or(Errno::ESRCH)?;
            return ptrace::attach(ctx.p, &td, &tp, seize, options).map(|()| 0);
        }
        PTRACE_KILL => {
            let (tp, _) = ptrace::tracee(ctx.p, pid, false)?;
            signal::send_to_proc(&tp, signal::SigInfo::kernel(SIGKILL, signal::SI_KERNEL));
            return Ok(0);
        }
        PTRACE_INTERRUPT => {
            let (_, td) = ptrace::tracee(ctx.p, pid, false)?;
            if !td.user().ptrace.st.lock().seized {
                return Err(Errno::EIO);
            }
            ptrace::interrupt(&td);
            return Ok(0);
        }
        _ => {}
    }
    let (tp, td) = ptrace::tracee(ctx.p, pid, true)?;
    match req {
        PTRACE_PEEKTEXT | PTRACE_PEEKDATA => {
            let mut w = [0u8; 8];
            read_mem(&tp, addr, &mut w).map_err(|_| Errno::EIO)?;
            ctx.write(UserPtr::<u64>::new(data), &u64::from_le_bytes(w))?;
            Ok(0)
        }
        PTRACE_POKETEXT | PTRACE_POKEDATA => {
            write_mem(&tp, addr, &data.to_le_bytes(), true).map_err(|_| Errno::EIO)?;
            Ok(0)
        }
        PTRACE_PEEKUSR => {
            let v = peek_user(&td, addr)?;
            ctx.write(UserPtr::<u64>::new(data), &v)?;
            Ok(0)
        }
        PTRACE_POKEUSR => poke_user(&td, addr, data).map(|()| 0),
        PTRACE_GETREGS => {
            ctx.write(UserPtr::<UserRegsStruct>::new(data), &get_regs(&td))?;
            Ok(0)
        }
        PTRACE_SETREGS => {
            let r = ctx.read(UserPtr::<UserRegsStruct>::new(data))?;
            set_regs(&td, &r).map(|()| 0)
        }
        PTRACE_GETFPREGS => {
            let fx = fxsave(&td)?;
            ctx.write_slice(UserSlice::<u8>::new(data, FXSAVE_LEN), &fx)?;
            Ok(0)
        }
        PTRACE_SETFPREGS => {
            let fx = ctx.read_slice(UserSlice::<u8>::new(data, FXSAVE_LEN), FXSAVE_LEN)?;
            set_fxsave(&td, &fx).map(|()| 0)
        }
        PTRACE_GETREGSET | PTRACE_SETREGSET => regset(ctx, &td, req == PTRACE_SETREGSET, addr, data),
        PTRACE_GETSIGINFO => {
            let info = td.user().ptrace.st.lock().siginfo.ok_or(Errno::EINVAL)?;
            ctx.write(UserPtr::<Siginfo>::new(data), &info)?;
            Ok(0)
        }
        PTRACE_SETSIGINFO => {
            let info = ctx.read(UserPtr::<Siginfo>::new(data))?;
            let mut st = td.user().ptrace.st.lock();
            let slot = st.siginfo.as_mut().ok_or(Errno::EINVAL)?;
            *slot = info;
            Ok(0)
        }
        PTRACE_GETSIGMASK => {
            if addr != 8 {
                return Err(Errno::EINVAL);
            }
            let mask = td.user().sigstate.sig.lock().mask;
            ctx.write(UserPtr::<u64>::new(data), &mask)?;
            Ok(0)
        }
        PTRACE_SETSIGMASK => {
            if addr != 8 {
                return Err(Errno::EINVAL);
            }
            let mask = ctx.read(UserPtr::<u64>::new(data))?;
            td.user().sigstate.sig.lock().mask = mask & !signal::UNBLOCKABLE;
            td.user().sigstate.flag.store(true, Ordering::SeqCst);
            Ok(0)
        }
        PTRACE_PEEKSIGINFO => {
            let a = ctx.read(UserPtr::<PeeksiginfoArgs>::new(addr))?;
            if a.flags & !PTRACE_PEEKSIGINFO_SHARED != 0 || a.nr < 0 {
                return Err(Errno::EINVAL);
            }
            let (off, n) = (usize::try_from(a.off).unwrap_or(usize::MAX), a.nr.unsigned_abs().min(4096) as usize);
            let infos = if a.flags & PTRACE_PEEKSIGINFO_SHARED != 0 {
                tp.user().sig.lock().pending.peek(off, n)
            } else {
                td.user().sigstate.sig.lock().pending.peek(off, n)
            };
            ctx.write_slice(UserSlice::<Siginfo>::new(data, infos.len()), &infos)?;
            Ok(infos.len())
        }
        PTRACE_ARCH_PRCTL => arch_prctl(ctx, &td, data, addr),
        PTRACE_GETEVENTMSG => {
            let msg = td.user().ptrace.st.lock().event_msg;
            ctx.write(UserPtr::<u64>::new(data), &msg)?;
            Ok(0)
        }
        PTRACE_SETOPTIONS => {
            let o = u32::try_from(data).map_err(|_| Errno::EINVAL)?;
            if o & !PTRACE_O_MASK != 0 {
                return Err(Errno::EINVAL);
            }
            td.user().ptrace.st.lock().options = o;
            Ok(0)
        }
        PTRACE_GET_SYSCALL_INFO => syscall_info(ctx, &td, addr, data),
        PTRACE_CONT | PTRACE_SYSCALL | PTRACE_SINGLESTEP | PTRACE_SYSEMU | PTRACE_SYSEMU_SINGLESTEP => {
            let sig = restart_signal(data)?;
            let mode = match req {
                PTRACE_CONT => Mode::Cont,
                PTRACE_SYSCALL => Mode::Syscall,
                PTRACE_SINGLESTEP => Mode::Step,
                PTRACE_SYSEMU => Mode::Sysemu,
                _ => Mode::SysemuStep,
            };
            ptrace::resume(&td, mode, sig);
            Ok(0)
        }
        PTRACE_LISTEN => ptrace::listen(&td).map(|()| 0),
        PTRACE_DETACH => {
            let sig = restart_signal(data)?;
            ptrace::detach(&td, sig);
            Ok(0)
        }
        _ => Err(Errno::EIO),
    }
}

/// PTRACE_ARCH_PRCTL: arch_prctl(`code`, `addr`) on the tracee — ARCH_SET_FS sets its fs
/// base (EPERM past the user range), ARCH_GET_FS writes it to `addr`; others EINVAL.
fn arch_prctl(ctx: &mut Ctx<'_>, td: &UThread, code: u64, addr: u64) -> SysResult {
    const ARCH_SET_FS: u64 = crate::abi::c_ulong(crate::abi::linux::ARCH_SET_FS);
    const ARCH_GET_FS: u64 = 0x1003;
    let u = td.user();
    match code {
        ARCH_SET_FS => {
            if addr >= platform::stub::layout::USER_END {
                return Err(Errno::EPERM);
            }
            if u.fs_base.swap(addr, Ordering::Relaxed) != addr {
                u.queue_ops(|o| o.set_fs(addr));
            }
            Ok(0)
        }
        ARCH_GET_FS => {
            ctx.write(UserPtr::<u64>::new(addr), &u.fs_base.load(Ordering::Relaxed))?;
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}

/// A restart's signal: 0 or a valid signal number (EIO otherwise).
fn restart_signal(data: u64) -> Result<i32, Errno> {
    let sig = i32::try_from(data).map_err(|_| Errno::EIO)?;
    if sig != 0 && !signal::valid(sig) {
        return Err(Errno::EIO);
    }
    Ok(sig)
}

use crate::kern::ptrace::{read_mem, write_mem};

/// The tracee's registers as `struct user_regs_struct` (the trap flag a single-step set is
/// hidden, as Linux hides TIF_FORCED_TF).
fn get_regs(td: &UThread) -> UserRegsStruct {
    let r = *td.user().regs.lock();
    let forced = td.user().ptrace.st.lock().forced_tf;
    let tf = if forced { X86_EFLAGS_TF } else { 0 };
    user_regs(&r.gregs, ptrace::orig_rax(td), r.gregs[reg::EFL] & !tf, td.user().fs_base.load(Ordering::Relaxed))
}

/// A segment selector a tracer may set: 0 or one with RPL 3 (cs: not 0).
fn valid_selector(v: u64, cs: bool) -> bool {
    if v == 0 { !cs } else { v & 3 == 3 && v <= 0xffff }
}

/// Set the tracee's registers (SETREGS, POKEUSER): EIO for a bad selector or fs base; the
/// flags only as far as FLAG_MASK; the segment registers and gs base are fixed in vk.
fn set_regs(td: &UThread, r: &UserRegsStruct) -> Result<(), Errno> {
    if r.fs_base >= TASK_SIZE_MAX
        || r.gs_base >= TASK_SIZE_MAX
        || !valid_selector(r.cs, true)
        || ![r.ss, r.ds, r.es, r.fs, r.gs].iter().all(|&s| valid_selector(s, false))
    {
        return Err(Errno::EIO);
    }
    {
        let mut regs = td.user().regs.lock();
        let g = &mut regs.gregs;
        for (i, v) in [
            (reg::R15, r.r15),
            (reg::R14, r.r14),
            (reg::R13, r.r13),
            (reg::R12, r.r12),
            (reg::RBP, r.rbp),
            (reg::RBX, r.rbx),
            (reg::R11, r.r11),
            (reg::R10, r.r10),
            (reg::R9, r.r9),
            (reg::R8, r.r8),
            (reg::RAX, r.rax),
            (reg::RCX, r.rcx),
            (reg::RDX, r.rdx),
            (reg::RSI, r.rsi),
            (reg::RDI, r.rdi),
            (reg::RIP, r.rip),
            (reg::RSP, r.rsp),
        ] {
            g[i] = v;
        }
        g[reg::EFL] = (g[reg::EFL] & !FLAG_MASK) | (r.eflags & FLAG_MASK);
    }
    ptrace::set_orig_rax(td, r.orig_rax);
    let u = td.user();
    if u.fs_base.swap(r.fs_base, Ordering::Relaxed) != r.fs_base {
        u.queue_ops(|o| o.set_fs(r.fs_base));
    }
    Ok(())
}

/// PEEKUSER: a register, a debug register, or 0 elsewhere in `struct user`.
fn peek_user(td: &UThread, off: u64) -> Result<u64, Errno> {
    if !off.is_multiple_of(8) || off >= user::SIZE {
        return Err(Errno::EIO);
    }
    let i = usize::try_from(off / 8).map_err(|_| Errno::EIO)?;
    if i < USER_REGS_WORDS {
        let r = get_regs(td);
        return u64::read_from_bytes(&r.as_bytes()[i * 8..i * 8 + 8]).map_err(|_| Errno::EIO);
    }
    if off >= user::U_DEBUGREG {
        let d = usize::try_from((off - user::U_DEBUGREG) / 8).map_err(|_| Errno::EIO)?;
        return Ok(td.user().ptrace.st.lock().debugreg.get(d).copied().unwrap_or(0));
    }
    Ok(0)
}

/// POKEUSER: a register (as SETREGS would set it) or a debug register. DR7's enable bits
/// would arm hardware watchpoints, which vk does not offer: EIO, and the debugger uses
/// software ones.
fn poke_user(td: &UThread, off: u64, v: u64) -> Result<(), Errno> {
    if !off.is_multiple_of(8) || off >= user::SIZE {
        return Err(Errno::EIO);
    }
    let i = usize::try_from(off / 8).map_err(|_| Errno::EIO)?;
    if i < USER_REGS_WORDS {
        let mut r = get_regs(td);
        r.as_mut_bytes()[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
        return set_regs(td, &r);
    }
    if off < user::U_DEBUGREG {
        return Err(Errno::EIO);
    }
    let d = usize::try_from((off - user::U_DEBUGREG) / 8).map_err(|_| Errno::EIO)?;
    match d {
        0..=3 if v >= TASK_SIZE_MAX => Err(Errno::EIO),
        4 | 5 => Err(Errno::EIO),
        7 if v & 0xff != 0 => Err(Errno::EIO),
        _ => {
            if let Some(slot) = td.user().ptrace.st.lock().debugreg.get_mut(d) {
                *slot = v;
            }
            Ok(())
        }
    }
}

/// The tracee's FPU image from its stub's signal frame (the stopped thread has trapped).
fn fpimage(td: &UThread) -> Result<Vec<u8>, Errno> {
    let stub = td.user().stub.lock().clone().ok_or(Errno::ESRCH)?;
    stub.fpstate().filter(|f| f.len() >= FXSAVE_LEN).ok_or(Errno::EIO)
}

/// `struct user_fpregs_struct`: the fxsave part, the software bytes cleared.
fn fxsave(td: &UThread) -> Result<Vec<u8>, Errno> {
    let mut fx = fpimage(td)?;
    fx.truncate(FXSAVE_LEN);
    fx[SW_BYTES..].fill(0);
    Ok(fx)
}

/// Replace the fxsave part of the tracee's FPU state (the frame's software bytes stay, so
/// the host restores it as the layout it is; MXCSR's reserved bits are dropped, and an xsave
/// image marks x87 and SSE as in use).
fn set_fxsave(td: &UThread, fx: &[u8]) -> Result<(), Errno> {
    let stub = td.user().stub.lock().clone().ok_or(Errno::ESRCH)?;
    let mut img = fpimage(td)?;
    let n = SW_BYTES.min(fx.len());
    img[..n].copy_from_slice(&fx[..n]);
    sanitize_mxcsr(&mut img);
    if img.len() >= FXSAVE_LEN + 8 {
        let mut bv = u64::read_from_bytes(&img[FXSAVE_LEN..FXSAVE_LEN + 8]).unwrap_or(0);
        bv |= 0b11;
        img[FXSAVE_LEN..FXSAVE_LEN + 8].copy_from_slice(&bv.to_le_bytes());
    }
    if stub.set_fpstate(&img) { Ok(()) } else { Err(Errno::EIO) }
}

/// MXCSR (bytes 24..28) limited to the bits MXCSR_MASK (28..32; 0xffbf when 0) allows: a
/// reserved bit would make the host's restore fail.
fn sanitize_mxcsr(img: &mut [u8]) {
    let get = |b: &[u8], at: usize| b.get(at..at + 4).and_then(|s| s.try_into().ok()).map_or(0, u32::from_le_bytes);
    let mask = match get(img, 28) {
        0 => 0xffbf,
        m => m,
    };
    let mxcsr = get(img, 24) & mask;
    if let Some(s) = img.get_mut(24..28) {
        s.copy_from_slice(&mxcsr.to_le_bytes());
    }
}

/// The xsave image as ptrace gives it (NT_X86_XSTATE): XCR0 in the first software word.
fn xstate(td: &UThread) -> Result<Vec<u8>, Errno> {
    let img = fpimage(td)?;
    let get32 = |at: usize| img.get(at..at + 4).and_then(|s| s.try_into().ok()).map_or(0, u32::from_le_bytes);
    if get32(SW_BYTES) != FP_XSTATE_MAGIC1 {
        return Err(Errno::ENODEV);
    }
    let xfeatures = img.get(SW_BYTES + 8..SW_BYTES + 16).and_then(|s| u64::read_from_bytes(s).ok()).unwrap_or(0);
    let size = usize::try_from(get32(SW_BYTES + 16)).unwrap_or(0).min(img.len());
    let mut xs = img[..size.max(FXSAVE_LEN)].to_vec();
    xs[SW_BYTES..FXSAVE_LEN].fill(0);
    xs[SW_BYTES..SW_BYTES + 8].copy_from_slice(&xfeatures.to_le_bytes());
    Ok(xs)
}

/// GETREGSET / SETREGSET: `addr` is the note type, `data` an iovec whose length says how
/// much, and is set to what was moved.
fn regset(ctx: &mut Ctx<'_>, td: &UThread, set: bool, addr: u64, data: u64) -> SysResult {
    let iovp = UserPtr::<Iovec>::new(data);
    let mut iov = ctx.read(iovp)?;
    let nt = u32::try_from(addr).map_err(|_| Errno::EINVAL)?;
    let cur: Vec<u8> = match nt {
        NT_PRSTATUS => get_regs(td).as_bytes().to_vec(),
        NT_PRFPREG => fxsave(td)?,
        NT_X86_XSTATE => xstate(td)?,
        _ => return Err(Errno::EINVAL),
    };
    let n = usize::try_from(iov.iov_len).unwrap_or(usize::MAX).min(cur.len());
    let buf = UserSlice::<u8>::new(iov.iov_base, n);
    if set {
        let mut new = cur.clone();
        let got = ctx.read_slice(buf, cur.len())?;
        new[..n].copy_from_slice(&got);
        match nt {
            NT_PRSTATUS => {
                let r = UserRegsStruct::read_from_bytes(&new).map_err(|_| Errno::EINVAL)?;
                set_regs(td, &r)?;
            }
            NT_PRFPREG => set_fxsave(td, &new)?,
            _ => {
                // The x87/SSE part and the extended state after the header; the header and
                // software bytes stay as the host wrote them.
                let stub = td.user().stub.lock().clone().ok_or(Errno::ESRCH)?;
                let mut img = fpimage(td)?;
                img[..SW_BYTES].copy_from_slice(&new[..SW_BYTES]);
                let hdr_end = FXSAVE_LEN + 64;
                let end = new.len().min(img.len());
                if end > hdr_end {
                    img[hdr_end..end].copy_from_slice(&new[hdr_end..end]);
                }
                sanitize_mxcsr(&mut img);
                if !stub.set_fpstate(&img) {
                    return Err(Errno::EIO);
                }
            }
        }
    } else {
        ctx.write_slice(buf, &cur[..n])?;
    }
    iov.iov_len = n as u64;
    ctx.write(iovp, &iov)?;
    Ok(0)
}

/// PTRACE_GET_SYSCALL_INFO: at a syscall stop made with TRACESYSGOOD, the call's number and
/// arguments (entry) or its result (exit); elsewhere only the architecture, ip and sp.
/// Copies at most `size` bytes and returns the whole size.
fn syscall_info(ctx: &mut Ctx<'_>, td: &UThread, size: u64, data: u64) -> SysResult {
    let r = *td.user().regs.lock();
    let (at, code) = {
        let st = td.user().ptrace.st.lock();
        (st.syscall_at, st.stop.map_or(0, |s| s.code))
    };
    let sysgood = code == (signal::SIGTRAP | 0x80);
    let mut info = SyscallInfoHead {
        arch: AUDIT_ARCH_X86_64,
        instruction_pointer: r.rip(),
        stack_pointer: r.rsp(),
        ..SyscallInfoHead::default()
    };
    let len = match at {
        SyscallAt::Entry if sysgood => {
            info.op = u8::try_from(PTRACE_SYSCALL_INFO_ENTRY).unwrap_or(0);
            info.data[0] = ptrace::orig_rax(td);
            for i in 0..6 {
                info.data[1 + i] = r.arg(i);
            }
            SYSCALL_INFO_ENTRY_SIZE
        }
        SyscallAt::Exit if sysgood => {
            info.op = u8::try_from(PTRACE_SYSCALL_INFO_EXIT).unwrap_or(0);
            let rval = r.rax();
            info.data[0] = rval;
            info.data[1] = u64::from(rval.cast_signed() < 0 && rval.cast_signed() >= -4095);
            SYSCALL_INFO_EXIT_SIZE
        }
        _ => {
            info.op = u8::try_from(PTRACE_SYSCALL_INFO_NONE).unwrap_or(0);
            SYSCALL_INFO_NONE_SIZE
        }
    };
    let n = usize::try_from(size).unwrap_or(usize::MAX).min(len);
    ctx.write_slice(UserSlice::<u8>::new(data, n), &info.as_bytes()[..n])?;
    Ok(len)
}

/// process_vm_readv(2) and process_vm_writev(2): copy between the caller's iovecs and
/// another process's, as far as both go. The caller needs ptrace's attach permission over
/// the target (Yama aside: Linux checks PTRACE_MODE_ATTACH_REALCREDS here too).
fn process_vm(ctx: &mut Ctx<'_>, write: bool) -> SysResult {
    if ctx.arg(5) != 0 {
        return Err(Errno::EINVAL);
    }
    let (lcnt, rcnt) = (ctx.size(2), ctx.size(4));
    const IOV_MAX: usize = 1024;
    if lcnt > IOV_MAX || rcnt > IOV_MAX {
        return Err(Errno::EINVAL);
    }
    let local = ctx.read_slice(ctx.slice::<Iovec>(1, 2), IOV_MAX)?;
    let remote = ctx.read_slice(ctx.slice::<Iovec>(3, 4), IOV_MAX)?;
    // Each side's lengths as ssize_t: none negative, their sum not past it (EINVAL).
    for side in [&local, &remote] {
        side.iter().try_fold(0u64, |sum, v| sum.checked_add(v.iov_len).filter(|&t| t <= i64::MAX as u64)).ok_or(Errno::EINVAL)?;
    }
    let tp = crate::kern::proc::find_user(ctx.int(0)).filter(|p| !p.is_zombie()).ok_or(Errno::ESRCH)?;
    let (me, them) = (ctx.p.user().cred(), tp.user().cred());
    let ids = [them.uid, them.euid, them.suid].iter().all(|&u| u == me.uid)
        && [them.gid, them.egid, them.sgid].iter().all(|&g| g == me.gid);
    if !ids && !me.capable(crate::kern::cred::CAP_SYS_PTRACE) {
        return Err(Errno::EPERM);
    }
    let mut done = 0usize;
    let (mut li, mut loff) = (0usize, 0u64);
    'outer: for r in &remote {
        let mut roff = 0u64;
        while roff < r.iov_len {
            while li < local.len() && loff >= local[li].iov_len {
                li += 1;
                loff = 0;
            }
            let Some(l) = local.get(li) else { break 'outer };
            let n = (r.iov_len - roff).min(l.iov_len - loff).min(64 * 1024);
            let mut buf = vec![0u8; usize::try_from(n).map_err(|_| Errno::EINVAL)?];
            let (la, ra) = (l.iov_base.wrapping_add(loff), r.iov_base.wrapping_add(roff));
            let ok = if write {
                ctx.copyin(UserSlice::new(la, buf.len()), &mut buf).is_ok() && write_mem(&tp, ra, &buf, false).is_ok()
            } else {
                read_mem(&tp, ra, &mut buf).is_ok() && ctx.write_slice(UserSlice::new(la, buf.len()), &buf).is_ok()
            };
            if !ok {
                break 'outer;
            }
            done += buf.len();
            roff += n;
            loff += n;
        }
    }
    if done == 0 && remote.iter().any(|r| r.iov_len > 0) && local.iter().any(|l| l.iov_len > 0) {
        return Err(Errno::EFAULT);
    }
    Ok(done)
}

pub fn sys_process_vm_readv(ctx: &mut Ctx<'_>) -> SysResult {
    process_vm(ctx, false)
}

pub fn sys_process_vm_writev(ctx: &mut Ctx<'_>) -> SysResult {
    process_vm(ctx, true)
}
