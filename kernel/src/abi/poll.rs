//! poll(2) and select(2) structures: `struct pollfd` and the words of an `fd_set`.

use super::{linux, linux_struct};

linux_struct! {
    /// `struct pollfd` (poll(2), ppoll(2)): the descriptor, the events asked for, the
    /// events that happened.
    pub struct Pollfd = linux::pollfd {
        pub fd: i32,
        pub events: i16,
        pub revents: i16,
    }
}

/// One word of an `fd_set` (`__kernel_fd_set.fds_bits`): bit `fd % 64` of word `fd / 64`.
/// select(2) reads and writes only the words its `nfds` covers.
pub type FdSetWord = u64;
const _: () = assert!(size_of::<FdSetWord>() * 16 == size_of::<linux::__kernel_fd_set>());

/// Bits in an fd_set word.
pub const NFDBITS: usize = FdSetWord::BITS as usize;

/// The most descriptors one fd_set holds (select(2) takes no more).
pub const FD_SETSIZE: usize = 8 * size_of::<linux::__kernel_fd_set>();

/// pselect6(2)'s sixth argument: where the signal mask is and its size (fs/select.c's
/// `struct sigset_argpack`, which is not in the uapi headers: two 64-bit words).
#[repr(C)]
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    zerocopy::FromBytes,
    zerocopy::IntoBytes,
    zerocopy::Immutable,
    zerocopy::KnownLayout,
)]
pub struct SigsetArgpack {
    pub p: u64,
    pub size: u64,
}
const _: () = assert!(size_of::<SigsetArgpack>() == 16);
