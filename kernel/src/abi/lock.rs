//! File lock structures: `struct flock` (fcntl(2) F_GETLK/F_SETLK/F_SETLKW and the F_OFD_*
//! forms; on x86-64 it is `struct flock64`), and the lock commands' constants.

use super::{c_int, linux, linux_struct};

linux_struct! {
    /// `struct flock`: type, whence, start, length (0: to the end and beyond), and the
    /// holder's pid (F_GETLK's answer; 0 on input to the F_OFD_* commands).
    pub struct Flock = linux::flock {
        pub l_type: i16,
        pub l_whence: i16,
        pad __pad0: u32,
        pub l_start: i64,
        pub l_len: i64,
        pub l_pid: i32,
        pad __pad1: u32,
    }
}

const _: () = assert!(size_of::<linux::flock>() == size_of::<linux::flock64>());

pub const F_RDLCK: i16 = 0;
pub const F_WRLCK: i16 = 1;
pub const F_UNLCK: i16 = 2;
const _: () = assert!(F_RDLCK as u32 == linux::F_RDLCK && F_WRLCK as u32 == linux::F_WRLCK && F_UNLCK as u32 == linux::F_UNLCK);

pub const F_GETLK: i32 = c_int(linux::F_GETLK);
pub const F_SETLK: i32 = c_int(linux::F_SETLK);
pub const F_SETLKW: i32 = c_int(linux::F_SETLKW);
pub const F_OFD_GETLK: i32 = c_int(linux::F_OFD_GETLK);
pub const F_OFD_SETLK: i32 = c_int(linux::F_OFD_SETLK);
pub const F_OFD_SETLKW: i32 = c_int(linux::F_OFD_SETLKW);

pub const LOCK_SH: u32 = linux::LOCK_SH;
pub const LOCK_EX: u32 = linux::LOCK_EX;
pub const LOCK_NB: u32 = linux::LOCK_NB;
pub const LOCK_UN: u32 = linux::LOCK_UN;

// Leases and signal owners (fcntl(2) F_SETLEASE, F_SETOWN, F_SETOWN_EX, F_SETSIG).
pub const F_SETOWN: i32 = c_int(linux::F_SETOWN);
pub const F_GETOWN: i32 = c_int(linux::F_GETOWN);
pub const F_SETSIG: i32 = c_int(linux::F_SETSIG);
pub const F_GETSIG: i32 = c_int(linux::F_GETSIG);
pub const F_SETOWN_EX: i32 = c_int(linux::F_SETOWN_EX);
pub const F_GETOWN_EX: i32 = c_int(linux::F_GETOWN_EX);
pub const F_SETLEASE: i32 = c_int(linux::F_SETLEASE);
pub const F_GETLEASE: i32 = c_int(linux::F_GETLEASE);
pub const F_OWNER_TID: i32 = c_int(linux::F_OWNER_TID);
pub const F_OWNER_PID: i32 = c_int(linux::F_OWNER_PID);
pub const F_OWNER_PGRP: i32 = c_int(linux::F_OWNER_PGRP);

linux_struct! {
    /// `struct f_owner_ex` (F_SETOWN_EX, F_GETOWN_EX): F_OWNER_TID, F_OWNER_PID or
    /// F_OWNER_PGRP, and the id.
    pub struct FOwnerEx = linux::f_owner_ex {
        pub type_: i32,
        pub pid: i32,
    }
}
