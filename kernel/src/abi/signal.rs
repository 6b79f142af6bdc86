//! Signal structures: `struct sigaction`, `stack_t`, `siginfo_t` and its union members, and
//! the x86-64 `rt_sigframe` a handler starts on (ucontext, sigcontext, FPU state), with the
//! flag sets of rt_sigaction(2), sigaltstack(2) and rt_sigprocmask(2).
//!
//! linux-raw-sys has no `struct sigcontext`, `struct ucontext` or FPU-state layouts (they are
//! x86's own headers, not the generic uapi); they are written here once, citing
//! arch/x86/include/uapi/asm/sigcontext.h and ucontext.h, and the unit tests below pin every
//! offset.

use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

use super::{c_int, linux, linux_struct};
use crate::kern::errno::Errno;

/// `sigset_t` as the rt_sig* calls take it: one 64-bit word, bit `n - 1` for signal `n`.
pub type Sigset = u64;
const _: () = assert!(size_of::<Sigset>() == size_of::<linux::sigset_t>());

/// The `sigsetsize` every rt_sig* call insists on (EINVAL otherwise).
pub const SIGSET_SIZE: usize = size_of::<Sigset>();

/// The handler values that are not addresses.
pub const SIG_DFL: u64 = 0;
pub const SIG_IGN: u64 = 1;

linux_struct! {
    /// `struct sigaction` as rt_sigaction(2) takes it (x86-64 order: handler, flags,
    /// restorer, mask).
    pub struct Sigaction = linux::sigaction {
        pub sa_handler: u64,
        pub sa_flags: u64,
        pub sa_restorer: u64,
        pub sa_mask: Sigset,
    }
}

bitflags::bitflags! {
    /// `sa_flags`. Linux refuses no bit here: rt_sigaction(2) keeps these (UAPI_SA_FLAGS,
    /// with x86's SA_RESTORER) and clears the rest, upper word included, so a program can
    /// probe for support with SA_UNSUPPORTED.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct SaFlags: u32 {
        const NOCLDSTOP = linux::SA_NOCLDSTOP;
        const NOCLDWAIT = linux::SA_NOCLDWAIT;
        const SIGINFO = linux::SA_SIGINFO;
        const EXPOSE_TAGBITS = linux::SA_EXPOSE_TAGBITS;
        const RESTORER = linux::SA_RESTORER;
        const ONSTACK = linux::SA_ONSTACK;
        const RESTART = linux::SA_RESTART;
        const NODEFER = linux::SA_NODEFER;
        const RESETHAND = linux::SA_RESETHAND;
    }
}

impl SaFlags {
    /// The flags a guest's `sa_flags` word keeps (unknown bits cleared, as Linux does).
    pub fn from_guest(sa_flags: u64) -> SaFlags {
        SaFlags::from_bits_truncate(super::lower_32_bits(sa_flags))
    }
}

/// rt_sigprocmask(2)'s `how`: any other value is EINVAL (when a new set is given).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigmaskHow {
    Block,
    Unblock,
    SetMask,
}

impl TryFrom<i32> for SigmaskHow {
    type Error = Errno;

    fn try_from(how: i32) -> Result<SigmaskHow, Errno> {
        const BLOCK: i32 = c_int(linux::SIG_BLOCK);
        const UNBLOCK: i32 = c_int(linux::SIG_UNBLOCK);
        const SETMASK: i32 = c_int(linux::SIG_SETMASK);
        match how {
            BLOCK => Ok(SigmaskHow::Block),
            UNBLOCK => Ok(SigmaskHow::Unblock),
            SETMASK => Ok(SigmaskHow::SetMask),
            _ => Err(Errno::EINVAL),
        }
    }
}

linux_struct! {
    /// `stack_t` (sigaltstack(2), and `uc_stack` in a signal frame).
    pub struct Stack = linux::sigaltstack {
        pub ss_sp: u64,
        pub ss_flags: i32,
        pad __pad0: u32,
        pub ss_size: u64,
    }
}

bitflags::bitflags! {
    /// `ss_flags`. sigaltstack(2) takes SS_AUTODISARM with one mode (none, SS_ONSTACK or
    /// SS_DISABLE) and refuses anything else with EINVAL; it reports SS_ONSTACK or
    /// SS_DISABLE back.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct SsFlags: u32 {
        const ONSTACK = linux::SS_ONSTACK;
        const DISABLE = linux::SS_DISABLE;
        const AUTODISARM = linux::SS_AUTODISARM;
    }
}

/// The smallest alternate stack sigaltstack(2) takes (ENOMEM below it).
pub const MINSIGSTKSZ: u64 = super::c_ulong(linux::MINSIGSTKSZ);

/// `siginfo_t`: 128 bytes — number, errno, code, and a union whose member the signal and
/// code select (the `Si*` structures below). bindgen gives the header as a struct inside a
/// union, which [`linux_struct!`] cannot mirror, so the checks are written out here.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Siginfo {
    pub si_signo: i32,
    pub si_errno: i32,
    pub si_code: i32,
    pub __pad0: i32,
    /// The union (`_sifields`) and the padding to 128 bytes.
    pub _sifields: [u64; 14],
}

const _: () = {
    type Head = linux::siginfo__bindgen_ty_1__bindgen_ty_1;
    assert!(size_of::<Siginfo>() == size_of::<linux::siginfo>());
    assert!(core::mem::offset_of!(Siginfo, si_signo) == core::mem::offset_of!(Head, si_signo));
    assert!(core::mem::offset_of!(Siginfo, si_errno) == core::mem::offset_of!(Head, si_errno));
    assert!(core::mem::offset_of!(Siginfo, si_code) == core::mem::offset_of!(Head, si_code));
    assert!(core::mem::offset_of!(Siginfo, _sifields) == core::mem::offset_of!(Head, _sifields));
};

/// A member of siginfo's union.
pub trait SiFields: IntoBytes + FromBytes + Immutable {}

macro_rules! si_fields {
    ($($t:ty),*) => {
        $(
            impl SiFields for $t {}
            const _: () = assert!(size_of::<$t>() <= size_of::<[u64; 14]>());
        )*
    };
}

linux_struct! {
    /// `_kill`: kill(2), tkill(2), tgkill(2) (SI_USER, SI_TKILL).
    pub struct SiKill = linux::__sifields__bindgen_ty_1 {
        pub _pid: i32,
        pub _uid: u32,
    }
}

linux_struct! {
    /// `_rt`: sigqueue(3) and kin (SI_QUEUE): the sender and its value.
    pub struct SiRt = linux::__sifields__bindgen_ty_3 {
        pub _pid: i32,
        pub _uid: u32,
        pub _sigval: u64,
    }
}

linux_struct! {
    /// `_sigchld`: a child's exit, stop or continue (CLD_*).
    pub struct SiChld = linux::__sifields__bindgen_ty_4 {
        pub _pid: i32,
        pub _uid: u32,
        pub _status: i32,
        pad __pad0: u32,
        pub _utime: i64,
        pub _stime: i64,
    }
}

linux_struct! {
    /// `_sigfault`: SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP — the address; the union after
    /// it (si_addr_lsb, bounds, pkey) is zero.
    pub struct SiFault = linux::__sifields__bindgen_ty_5 {
        pub _addr: u64,
        pub __bindgen_anon_1: [u64; 3],
    }
}

linux_struct! {
    /// `_sigpoll`: SIGIO and F_SETSIG's signal (POLL_* codes): the poll band and the
    /// descriptor.
    pub struct SiPoll = linux::__sifields__bindgen_ty_6 {
        pub _band: i64,
        pub _fd: i32,
        pad __pad0: u32,
    }
}

linux_struct! {
    /// `_timer`: a POSIX timer's expiry (SI_TIMER): its id, the overruns, its value.
    pub struct SiTimer = linux::__sifields__bindgen_ty_2 {
        pub _tid: i32,
        pub _overrun: i32,
        pub _sigval: u64,
        pub _sys_private: i32,
        pad __pad0: u32,
    }
}

si_fields!(SiKill, SiRt, SiChld, SiFault, SiPoll, SiTimer);

impl Siginfo {
    /// A siginfo with signal and code and an empty union.
    pub fn new(signo: i32, code: i32) -> Siginfo {
        Siginfo { si_signo: signo, si_code: code, ..Siginfo::default() }
    }

    /// The same with the union member `f`.
    pub fn with<F: SiFields>(mut self, f: &F) -> Siginfo {
        let src = f.as_bytes();
        if let Some(dst) = self._sifields.as_mut_bytes().get_mut(..src.len()) {
            dst.copy_from_slice(src);
        }
        self
    }

    /// The union read as member `F`.
    pub fn fields<F: SiFields>(&self) -> F {
        F::read_from_prefix(self._sifields.as_bytes()).map_or_else(|_| F::new_zeroed(), |(f, _)| f)
    }
}

impl Default for Siginfo {
    fn default() -> Siginfo {
        Siginfo::new_zeroed()
    }
}

/// Derives for the x86 structures linux-raw-sys does not carry.
macro_rules! x86_struct {
    ($(#[$meta:meta])* pub struct $name:ident { $($body:tt)* }) => {
        $(#[$meta])*
        #[repr(C)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
        pub struct $name { $($body)* }

        impl Default for $name {
            fn default() -> Self {
                <Self as zerocopy::FromZeros>::new_zeroed()
            }
        }
    };
}

x86_struct! {
    /// `struct sigcontext` (x86-64), arch/x86/include/uapi/asm/sigcontext.h: the general
    /// registers in the order of glibc's `gregset_t` (which `UserRegs::gregs` follows), the
    /// segment selectors, the trap's error code, number, old mask and fault address, and the
    /// guest address of the FPU state. 256 bytes.
    pub struct Sigcontext {
        pub r8: u64,
        pub r9: u64,
        pub r10: u64,
        pub r11: u64,
        pub r12: u64,
        pub r13: u64,
        pub r14: u64,
        pub r15: u64,
        pub rdi: u64,
        pub rsi: u64,
        pub rbp: u64,
        pub rbx: u64,
        pub rdx: u64,
        pub rax: u64,
        pub rcx: u64,
        pub rsp: u64,
        pub rip: u64,
        pub eflags: u64,
        pub cs: u16,
        pub gs: u16,
        pub fs: u16,
        /// `ss` (with UC_SIGCONTEXT_SS), `__pad0` to older programs.
        pub ss: u16,
        pub err: u64,
        pub trapno: u64,
        pub oldmask: u64,
        pub cr2: u64,
        /// Guest address of the FPU state (0: none).
        pub fpstate: u64,
        pub reserved1: [u64; 8],
    }
}

/// `uc_flags` bits, arch/x86/include/uapi/asm/ucontext.h.
pub const UC_FP_XSTATE: u64 = 0x1;
pub const UC_SIGCONTEXT_SS: u64 = 0x2;
pub const UC_STRICT_RESTORE_SS: u64 = 0x4;

x86_struct! {
    /// `struct ucontext` as the kernel writes it (include/uapi/asm-generic/ucontext.h, the
    /// sigcontext being x86-64's): flags, link, the alternate stack, the machine context and
    /// the mask to restore (last, for extensibility). 304 bytes.
    pub struct Ucontext {
        pub uc_flags: u64,
        pub uc_link: u64,
        pub uc_stack: Stack,
        pub uc_mcontext: Sigcontext,
        pub uc_sigmask: Sigset,
    }
}

x86_struct! {
    /// `struct rt_sigframe` (x86-64, arch/x86/include/asm/sigframe.h): what a handler finds
    /// at its stack pointer — the return address (`sa_restorer`, which calls rt_sigreturn),
    /// the ucontext and the siginfo. The FPU state lies above it, 64-byte aligned, found
    /// through `uc_mcontext.fpstate`.
    pub struct RtSigframe {
        pub pretcode: u64,
        pub uc: Ucontext,
        pub info: Siginfo,
    }
}

impl RtSigframe {
    /// Where the ucontext of a frame at `frame` lies (rt_sigreturn reads only that).
    pub fn uc_addr(frame: u64) -> Result<u64, Errno> {
        let off = u64::try_from(core::mem::offset_of!(RtSigframe, uc)).map_err(|_| Errno::EFAULT)?;
        frame.checked_add(off).ok_or(Errno::EFAULT)
    }

    /// Where its siginfo lies (the handler's second argument).
    pub fn info_addr(frame: u64) -> Result<u64, Errno> {
        let off = u64::try_from(core::mem::offset_of!(RtSigframe, info)).map_err(|_| Errno::EFAULT)?;
        frame.checked_add(off).ok_or(Errno::EFAULT)
    }
}

x86_struct! {
    /// `struct _fpx_sw_bytes` (sigcontext.h): software-reserved bytes at the end of the
    /// fxsave image, saying whether an xsave area (and how big) follows.
    pub struct FpxSwBytes {
        pub magic1: u32,
        pub extended_size: u32,
        pub xfeatures: u64,
        pub xstate_size: u32,
        pub padding: [u32; 7],
    }
}

/// `magic1` of an fxsave image followed by an xsave area (FP_XSTATE_MAGIC1).
pub const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;

x86_struct! {
    /// `struct _fpstate_64` (sigcontext.h): the 512-byte fxsave image that begins the FPU
    /// state in a signal frame; an xsave area may follow (see [`FpxSwBytes`]).
    pub struct Fpstate64 {
        pub cwd: u16,
        pub swd: u16,
        pub twd: u16,
        pub fop: u16,
        pub rip: u64,
        pub rdp: u64,
        pub mxcsr: u32,
        pub mxcsr_mask: u32,
        pub st_space: [u32; 32],
        pub xmm_space: [u32; 64],
        pub reserved2: [u32; 12],
        pub sw_reserved: FpxSwBytes,
    }
}

impl Fpstate64 {
    /// Whether the FPU state image `fp` (as the host saved it) carries an xsave area past
    /// the fxsave image (UC_FP_XSTATE in the frame's flags).
    pub fn has_xstate(fp: &[u8]) -> bool {
        Fpstate64::read_from_prefix(fp)
            .is_ok_and(|(f, rest)| f.sw_reserved.magic1 == FP_XSTATE_MAGIC1 && !rest.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use core::mem::offset_of;

    use super::*;

    #[test]
    fn sigcontext_matches_the_x86_header() {
        assert_eq!(size_of::<Sigcontext>(), 256);
        assert_eq!(offset_of!(Sigcontext, r8), 0);
        assert_eq!(offset_of!(Sigcontext, rdi), 64);
        assert_eq!(offset_of!(Sigcontext, rax), 104);
        assert_eq!(offset_of!(Sigcontext, rsp), 120);
        assert_eq!(offset_of!(Sigcontext, rip), 128);
        assert_eq!(offset_of!(Sigcontext, eflags), 136);
        assert_eq!(offset_of!(Sigcontext, cs), 144);
        assert_eq!(offset_of!(Sigcontext, ss), 150);
        assert_eq!(offset_of!(Sigcontext, err), 152);
        assert_eq!(offset_of!(Sigcontext, cr2), 176);
        assert_eq!(offset_of!(Sigcontext, fpstate), 184);
        assert_eq!(offset_of!(Sigcontext, reserved1), 192);
    }

    #[test]
    fn ucontext_and_frame_match_the_kernel() {
        assert_eq!(size_of::<Ucontext>(), 304);
        assert_eq!(offset_of!(Ucontext, uc_stack), 16);
        assert_eq!(offset_of!(Ucontext, uc_mcontext), 40);
        assert_eq!(offset_of!(Ucontext, uc_sigmask), 296);
        assert_eq!(size_of::<RtSigframe>(), 8 + 304 + 128);
        assert_eq!(RtSigframe::uc_addr(0x1000), Ok(0x1008));
        assert_eq!(RtSigframe::info_addr(0x1000), Ok(0x1000 + 8 + 304));
        assert!(RtSigframe::uc_addr(u64::MAX).is_err());
        // platform's view of the same frame (where it finds the FPU state pointer).
        assert_eq!(offset_of!(Ucontext, uc_mcontext) + offset_of!(Sigcontext, fpstate), 40 + 23 * 8);
    }

    #[test]
    fn fpstate_matches_the_x86_header() {
        assert_eq!(size_of::<Fpstate64>(), 512);
        assert_eq!(offset_of!(Fpstate64, mxcsr), 24);
        assert_eq!(offset_of!(Fpstate64, st_space), 32);
        assert_eq!(offset_of!(Fpstate64, xmm_space), 160);
        assert_eq!(offset_of!(Fpstate64, sw_reserved), 464);
        assert_eq!(size_of::<FpxSwBytes>(), 48);
        let mut img = vec![0u8; 1024];
        assert!(!Fpstate64::has_xstate(&img));
        img[464..468].copy_from_slice(&FP_XSTATE_MAGIC1.to_le_bytes());
        assert!(Fpstate64::has_xstate(&img));
        assert!(!Fpstate64::has_xstate(&img[..512]), "the magic, but no xsave area after it");
        assert!(!Fpstate64::has_xstate(&img[..100]));
    }

    #[test]
    fn siginfo_members() {
        let i = Siginfo::new(17, 1).with(&SiChld { _pid: 5, _uid: 7, _status: 3, ..SiChld::default() });
        assert_eq!(i.as_bytes().len(), 128);
        assert_eq!(i32::from_le_bytes(i.as_bytes()[16..20].try_into().unwrap()), 5);
        assert_eq!(i32::from_le_bytes(i.as_bytes()[24..28].try_into().unwrap()), 3);
        assert_eq!(i.fields::<SiKill>(), SiKill { _pid: 5, _uid: 7 });
    }

    #[test]
    fn flags_as_linux_keeps_them() {
        // SA_UNSUPPORTED (0x400) and the upper word are cleared; the rest kept.
        let f = SaFlags::from_guest(0x1_0000_0000 | 0x400 | u64::from(linux::SA_RESTORER | linux::SA_SIGINFO));
        assert_eq!(f, SaFlags::RESTORER | SaFlags::SIGINFO);
        assert_eq!(SigmaskHow::try_from(2), Ok(SigmaskHow::SetMask));
        assert_eq!(SigmaskHow::try_from(3), Err(Errno::EINVAL));
    }
}
