//! The Linux x86-64 ABI as it crosses into guest memory: `#[repr(C)]` structures with
//! `zerocopy` derives (safe byte views, no `unsafe`), each checked at compile time against
//! the `linux-raw-sys` definition of the same structure — size and every field's offset —
//! by [`linux_struct!`]. Hand-written byte offsets have no place in the kernel: a structure
//! the guest reads or writes is declared here and copied whole with
//! [`UserPtr`](crate::vm::uaccess::UserPtr).
//!
//! Why our own types rather than `linux_raw_sys`'s directly: zerocopy's traits cannot be
//! derived for another crate's types, and some of those carry raw pointers (`iovec`) that
//! are not plain bytes. The mirror types use integers for guest pointers (`u64`), and the
//! compile-time checks keep them the same layout as the kernel's headers.
//!
//! Constants (errno values, flag bits, signal numbers) come from `linux_raw_sys` directly.
//!
//! | file        | what it holds                                                           |
//! |-------------|--------------------------------------------------------------------------|
//! | `time.rs`   | timespec, timeval, itimerval, timezone                                   |
//! | `cred.rs`   | capget/capset header and data                                            |
//! | `event.rs`  | epoll_event, signalfd_siginfo, itimerspec; epoll, eventfd, signalfd, timerfd, memfd flags, seals |
//! | `exec.rs`   | the auxiliary vector's entry; personality(2)'s persona                  |
//! | `ipc.rs`    | System V IPC: ipc64_perm, shmid64_ds, semid64_ds, msqid64_ds, sembuf, the *info structures |
//! | `fs.rs`     | stat, statx, statfs, dirent64 header, iovec                              |
//! | `signal.rs` | sigaction, stack_t, siginfo, the rt_sigframe (ucontext, sigcontext, FPU state); SA_, SS_ flags, sigprocmask's how |
//! | `proc.rs`   | rusage, rlimit64, sysinfo, new_utsname, tms; clone, wait4/waitid and getrandom flags, waitid's id types |
//! | `ptrace.rs` | user_regs_struct, struct user's offsets, ptrace_syscall_info; the PTRACE_ constants |
//! | `lock.rs`   | struct flock, the fcntl lock commands, flock(2)'s operations             |
//! | `loopdev.rs`| loop_info64, loop_config; the LOOP_ ioctls and LO_FLAGS_ bits          |
//! | `futex.rs`  | futex(2)'s operation word                                                |
//! | `rseq.rs`   | rseq(2)'s area fields and critical-section descriptor                   |
//! | `mm.rs`     | mmap, mprotect, mremap and msync flags, madvise's advice                 |
//! | `poll.rs`   | pollfd, fd_set words, pselect6's sigset argument                         |
//! | `net.rs`    | msghdr, mmsghdr, cmsghdr, ucred, linger, sockaddr_in/in6/nl, netlink and routing heads, ifreq, ifconf; MSG_ and SOCK_ flags |
//! | `tty.rs`    | termios, winsize                                                         |
//!
//! Flag sets are `bitflags` types holding exactly the bits Linux defines for the call, so
//! `Ctx::flags` refuses the others (EINVAL) where Linux does and `Ctx::flags_lenient` drops
//! them where Linux ignores them; each type's doc says which the call does.


pub mod cred;
pub mod event;
pub mod exec;
pub mod fs;
pub mod futex;
pub mod ipc;
pub mod lock;
pub mod loopdev;
pub mod mm;
pub mod net;
pub mod poll;
pub mod proc;
pub mod ptrace;
pub mod rseq;
pub mod signal;
pub mod time;
pub mod tty;

pub use linux_raw_sys::general as linux;

/// Declare a `#[repr(C)]` guest structure that mirrors `linux_raw_sys`'s `$sys`: the same
/// field names in the same order, each with the plain integer type of its width. The
/// expansion derives zerocopy's byte conversions and asserts at compile time that the size
/// and every field offset equal the `linux-raw-sys` ones (so a missing, reordered or
/// mistyped field does not compile). `IntoBytes` also proves there is no hidden padding.
///
/// Where the C structure has padding (an `int` before a `long`, a tail after the last
/// field), it is spelled out as a field introduced by `pad` instead of `pub`: it is a public
/// field of the Rust type (zero in every structure the kernel writes), has no counterpart to
/// check in `$sys`, and is pinned down by the size check and its neighbours' offsets.
macro_rules! linux_struct {
    (
        $(#[$meta:meta])*
        pub struct $name:ident = $sys:ty { $($body:tt)* }
    ) => {
        $crate::abi::linux_struct!(@munch [$(#[$meta])*] $name, $sys, [] [] $($body)*);
    };
    // A field checked against `$sys`.
    (@munch $meta:tt $name:ident, $sys:ty, [$($fields:tt)*] [$($checked:ident)*]
        $(#[$fmeta:meta])* pub $field:ident : $ty:ty $(, $($rest:tt)*)?) => {
        $crate::abi::linux_struct!(@munch $meta $name, $sys,
            [$($fields)* $(#[$fmeta])* pub $field: $ty,] [$($checked)* $field] $($($rest)*)?);
    };
    // Explicit padding: not in `$sys`.
    (@munch $meta:tt $name:ident, $sys:ty, [$($fields:tt)*] [$($checked:ident)*]
        $(#[$fmeta:meta])* pad $field:ident : $ty:ty $(, $($rest:tt)*)?) => {
        $crate::abi::linux_struct!(@munch $meta $name, $sys,
            [$($fields)* $(#[$fmeta])* pub $field: $ty,] [$($checked)*] $($($rest)*)?);
    };
    (@munch [$($meta:tt)*] $name:ident, $sys:ty, [$($fields:tt)*] [$($checked:ident)*]) => {
        $($meta)*
        #[repr(C)]
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq,
            zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::Immutable, zerocopy::KnownLayout,
        )]
        pub struct $name {
            $($fields)*
        }

        const _: () = {
            assert!(core::mem::size_of::<$name>() == core::mem::size_of::<$sys>());
            $(
                assert!(core::mem::offset_of!($name, $checked) == core::mem::offset_of!($sys, $checked));
                assert!(
                    $crate::abi::field_size(|s: &$name| &s.$checked)
                        == $crate::abi::field_size(|s: &$sys| &s.$checked)
                );
            )*
        };

        impl Default for $name {
            fn default() -> Self {
                <Self as zerocopy::FromZeros>::new_zeroed()
            }
        }
    };
}
pub(crate) use linux_struct;

/// A `linux_raw_sys` constant (bindgen makes most of them `u32`) as the C `int` the ABI
/// passes it in: checked at compile time, for constants that fit (signal numbers, clock ids,
/// option codes).
pub const fn c_int(v: u32) -> i32 {
    assert!(v <= 0x7fff_ffff, "constant does not fit a C int");
    v.cast_signed()
}

/// The size of the field a projection returns (for [`linux_struct!`]'s checks: the
/// projection is never called, only its type is read).
pub const fn field_size<T, F>(_project: fn(&T) -> &F) -> usize {
    core::mem::size_of::<F>()
}

/// The low 32 bits of a register or word (Linux's `lower_32_bits`): a C `int` or
/// `unsigned int` argument, or flags whose upper half Linux ignores.
pub const fn lower_32_bits(v: u64) -> u32 {
    let [a, b, c, d, ..] = v.to_le_bytes();
    u32::from_le_bytes([a, b, c, d])
}

/// A `linux_raw_sys` `u32` constant as a 64-bit word (`const`, where `u64::from` is not).
pub const fn c_ulong(v: u32) -> u64 {
    let [a, b, c, d] = v.to_le_bytes();
    u64::from_le_bytes([a, b, c, d, 0, 0, 0, 0])
}
