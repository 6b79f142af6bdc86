//! The event files' structures and flags: epoll(7) (`struct epoll_event`, the EPOLL* bits),
//! eventfd(2), signalfd(2) (`struct signalfd_siginfo`), timerfd_create(2)
//! (`struct itimerspec`) and memfd_create(2) with its seals (fcntl(2) F_ADD_SEALS).

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::time::Timespec;
use super::{linux, linux_struct};

/// `struct epoll_event`: on x86-64 it is packed (12 bytes: the events word, then the 64-bit
/// user data at offset 4), so the data is two 32-bit halves here.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct EpollEvent {
    pub events: u32,
    data_lo: u32,
    data_hi: u32,
}

const _: () = {
    assert!(size_of::<EpollEvent>() == size_of::<linux::epoll_event>());
    assert!(core::mem::offset_of!(EpollEvent, events) == core::mem::offset_of!(linux::epoll_event, events));
    assert!(core::mem::offset_of!(EpollEvent, data_lo) == core::mem::offset_of!(linux::epoll_event, data));
};

impl EpollEvent {
    pub fn new(events: u32, data: u64) -> EpollEvent {
        let [a, b, c, d, e, f, g, h] = data.to_le_bytes();
        EpollEvent { events, data_lo: u32::from_le_bytes([a, b, c, d]), data_hi: u32::from_le_bytes([e, f, g, h]) }
    }

    /// The user's data word.
    pub fn data(&self) -> u64 {
        u64::from(self.data_hi) << 32 | u64::from(self.data_lo)
    }
}

bitflags::bitflags! {
    /// epoll_ctl(2)'s event bits. Linux keeps any bits the caller gives (and reports only
    /// those a file can have); EPOLLEXCLUSIVE may only come with [`EpollFlags::EXCLUSIVE_OK`].
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct EpollFlags: u32 {
        const IN = linux::EPOLLIN;
        const PRI = linux::EPOLLPRI;
        const OUT = linux::EPOLLOUT;
        const ERR = linux::EPOLLERR;
        const HUP = linux::EPOLLHUP;
        const NVAL = linux::EPOLLNVAL;
        const RDNORM = linux::EPOLLRDNORM;
        const RDBAND = linux::EPOLLRDBAND;
        const WRNORM = linux::EPOLLWRNORM;
        const WRBAND = linux::EPOLLWRBAND;
        const MSG = linux::EPOLLMSG;
        const RDHUP = linux::EPOLLRDHUP;
        const EXCLUSIVE = linux::EPOLLEXCLUSIVE;
        const WAKEUP = linux::EPOLLWAKEUP;
        const ONESHOT = linux::EPOLLONESHOT;
        const ET = linux::EPOLLET;
    }
}

impl EpollFlags {
    /// The bits that choose how an item is reported rather than what it waits for.
    pub const MODES: EpollFlags =
        EpollFlags::EXCLUSIVE.union(EpollFlags::WAKEUP).union(EpollFlags::ONESHOT).union(EpollFlags::ET);
    /// What EPOLLEXCLUSIVE may be combined with (fs/eventpoll.c's EPOLLEXCLUSIVE_OK_BITS).
    pub const EXCLUSIVE_OK: EpollFlags = EpollFlags::IN
        .union(EpollFlags::OUT)
        .union(EpollFlags::RDNORM)
        .union(EpollFlags::RDBAND)
        .union(EpollFlags::WRNORM)
        .union(EpollFlags::WRBAND)
        .union(EpollFlags::ERR)
        .union(EpollFlags::HUP)
        .union(EpollFlags::WAKEUP)
        .union(EpollFlags::ET)
        .union(EpollFlags::EXCLUSIVE);
}

bitflags::bitflags! {
    /// epoll_create1(2): EINVAL for any other bit.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct EpollCreateFlags: u32 {
        const CLOEXEC = linux::EPOLL_CLOEXEC;
    }
}

bitflags::bitflags! {
    /// eventfd2(2): EINVAL for any other bit.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct EfdFlags: u32 {
        const SEMAPHORE = linux::EFD_SEMAPHORE;
        const CLOEXEC = linux::EFD_CLOEXEC;
        const NONBLOCK = linux::EFD_NONBLOCK;
    }
}

bitflags::bitflags! {
    /// signalfd4(2): EINVAL for any other bit (SFD_* equal O_CLOEXEC and O_NONBLOCK).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct SfdFlags: u32 {
        const CLOEXEC = linux::O_CLOEXEC;
        const NONBLOCK = linux::O_NONBLOCK;
    }
}

bitflags::bitflags! {
    /// timerfd_create(2): EINVAL for any other bit.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct TfdFlags: u32 {
        const CLOEXEC = linux::TFD_CLOEXEC;
        const NONBLOCK = linux::TFD_NONBLOCK;
    }
}

bitflags::bitflags! {
    /// timerfd_settime(2): EINVAL for any other bit.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct TfdSetFlags: u32 {
        const ABSTIME = linux::TFD_TIMER_ABSTIME;
        const CANCEL_ON_SET = linux::TFD_TIMER_CANCEL_ON_SET;
    }
}

bitflags::bitflags! {
    /// memfd_create(2): EINVAL for any other bit (MFD_HUGETLB is refused as EINVAL too:
    /// there are no huge pages).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct MfdFlags: u32 {
        const CLOEXEC = linux::MFD_CLOEXEC;
        const ALLOW_SEALING = linux::MFD_ALLOW_SEALING;
        const NOEXEC_SEAL = linux::MFD_NOEXEC_SEAL;
        const EXEC = linux::MFD_EXEC;
    }
}

bitflags::bitflags! {
    /// fcntl(2)'s file seals (F_ADD_SEALS): EINVAL for any other bit.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct Seals: u32 {
        const SEAL = linux::F_SEAL_SEAL;
        const SHRINK = linux::F_SEAL_SHRINK;
        const GROW = linux::F_SEAL_GROW;
        const WRITE = linux::F_SEAL_WRITE;
        const FUTURE_WRITE = linux::F_SEAL_FUTURE_WRITE;
        const EXEC = linux::F_SEAL_EXEC;
    }
}

linux_struct! {
    /// `struct itimerspec` (timerfd_settime, timerfd_gettime).
    pub struct Itimerspec = linux::itimerspec {
        pub it_interval: Timespec,
        pub it_value: Timespec,
    }
}

/// `struct signalfd_siginfo`: what a read of a signalfd returns per signal, 128 bytes
/// (linux/signalfd.h; not in linux-raw-sys, so the offsets are pinned by a test).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct SignalfdSiginfo {
    pub ssi_signo: u32,
    pub ssi_errno: i32,
    pub ssi_code: i32,
    pub ssi_pid: u32,
    pub ssi_uid: u32,
    pub ssi_fd: i32,
    pub ssi_tid: u32,
    pub ssi_band: u32,
    pub ssi_overrun: u32,
    pub ssi_trapno: u32,
    pub ssi_status: i32,
    pub ssi_int: i32,
    pub ssi_ptr: u64,
    pub ssi_utime: u64,
    pub ssi_stime: u64,
    pub ssi_addr: u64,
    pub ssi_addr_lsb: u16,
    pub __pad2: u16,
    pub ssi_syscall: i32,
    pub ssi_call_addr: u64,
    pub ssi_arch: u32,
    pub __pad: [u8; 28],
}

const _: () = assert!(size_of::<SignalfdSiginfo>() == 128);

impl Default for SignalfdSiginfo {
    fn default() -> Self {
        <Self as zerocopy::FromZeros>::new_zeroed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::offset_of;

    #[test]
    fn signalfd_siginfo_layout() {
        // linux/signalfd.h, x86-64.
        assert_eq!(offset_of!(SignalfdSiginfo, ssi_code), 8);
        assert_eq!(offset_of!(SignalfdSiginfo, ssi_tid), 24);
        assert_eq!(offset_of!(SignalfdSiginfo, ssi_status), 40);
        assert_eq!(offset_of!(SignalfdSiginfo, ssi_ptr), 48);
        assert_eq!(offset_of!(SignalfdSiginfo, ssi_addr), 72);
        assert_eq!(offset_of!(SignalfdSiginfo, ssi_addr_lsb), 80);
        assert_eq!(offset_of!(SignalfdSiginfo, ssi_syscall), 84);
        assert_eq!(offset_of!(SignalfdSiginfo, ssi_call_addr), 88);
        assert_eq!(offset_of!(SignalfdSiginfo, ssi_arch), 96);
    }

    #[test]
    fn epoll_event_data() {
        let e = EpollEvent::new(1, 0x1122_3344_5566_7788);
        assert_eq!(e.data(), 0x1122_3344_5566_7788);
        assert_eq!(e.as_bytes()[4..12], 0x1122_3344_5566_7788u64.to_le_bytes());
    }
}
