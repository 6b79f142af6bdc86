//! futex(2)'s operation word: a command, FUTEX_PRIVATE_FLAG and FUTEX_CLOCK_REALTIME
//! (kernel/futex/syscalls.c).

use super::{linux, linux_struct};
use crate::kern::errno::Errno;

/// The commands vk implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FutexCmd {
    Wait,
    Wake,
    Requeue,
    CmpRequeue,
    WakeOp,
    WaitBitset,
    WakeBitset,
}

/// A decoded operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FutexOp {
    pub cmd: FutexCmd,
    /// FUTEX_PRIVATE_FLAG: the futex is not shared with another address space.
    pub private: bool,
    /// FUTEX_CLOCK_REALTIME: an absolute timeout is on CLOCK_REALTIME, not CLOCK_MONOTONIC.
    pub clock_realtime: bool,
}

/// The bitset that matches every waiter (FUTEX_WAIT and FUTEX_WAKE use it).
pub const FUTEX_BITSET_MATCH_ANY: u32 = linux::FUTEX_BITSET_MATCH_ANY;

impl TryFrom<i32> for FutexOp {
    type Error = Errno;

    /// ENOSYS, as Linux answers, for an unknown command (any bit besides the two flags
    /// makes one), and for FUTEX_CLOCK_REALTIME with a command other than
    /// FUTEX_WAIT_BITSET, FUTEX_WAIT_REQUEUE_PI and FUTEX_LOCK_PI2. The priority-inheritance
    /// commands are ENOSYS here too: vk does not implement them.
    fn try_from(op: i32) -> Result<FutexOp, Errno> {
        let op = op.cast_unsigned();
        let private = op & linux::FUTEX_PRIVATE_FLAG != 0;
        let clock_realtime = op & linux::FUTEX_CLOCK_REALTIME != 0;
        let cmd = op & !(linux::FUTEX_PRIVATE_FLAG | linux::FUTEX_CLOCK_REALTIME);
        if clock_realtime
            && ![linux::FUTEX_WAIT_BITSET, linux::FUTEX_WAIT_REQUEUE_PI, linux::FUTEX_LOCK_PI2].contains(&cmd)
        {
            return Err(Errno::ENOSYS);
        }
        let cmd = match cmd {
            linux::FUTEX_WAIT => FutexCmd::Wait,
            linux::FUTEX_WAKE => FutexCmd::Wake,
            linux::FUTEX_REQUEUE => FutexCmd::Requeue,
            linux::FUTEX_CMP_REQUEUE => FutexCmd::CmpRequeue,
            linux::FUTEX_WAKE_OP => FutexCmd::WakeOp,
            linux::FUTEX_WAIT_BITSET => FutexCmd::WaitBitset,
            linux::FUTEX_WAKE_BITSET => FutexCmd::WakeBitset,
            _ => return Err(Errno::ENOSYS),
        };
        Ok(FutexOp { cmd, private, clock_realtime })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_as_linux_decodes_them() {
        let wait_private = FutexOp::try_from(128).unwrap();
        assert_eq!((wait_private.cmd, wait_private.private), (FutexCmd::Wait, true));
        assert_eq!(FutexOp::try_from(9 | 256).map(|o| o.clock_realtime), Ok(true));
        assert_eq!(FutexOp::try_from(256), Err(Errno::ENOSYS), "FUTEX_WAIT with CLOCK_REALTIME");
        assert_eq!(FutexOp::try_from(1 | 256), Err(Errno::ENOSYS));
        assert_eq!(FutexOp::try_from(1 | 0x1000), Err(Errno::ENOSYS));
        assert_eq!(FutexOp::try_from(6), Err(Errno::ENOSYS));
    }
}

linux_struct! {
    /// `struct robust_list`: a link of a thread's list of held robust futexes.
    pub struct RobustList = linux::robust_list {
        pub next: u64,
    }
}

linux_struct! {
    /// `struct robust_list_head` (set_robust_list(2)): the list, the offset from an entry to
    /// its futex word, and the entry being taken or released.
    pub struct RobustListHead = linux::robust_list_head {
        pub list: RobustList,
        pub futex_offset: i64,
        pub list_op_pending: u64,
    }
}

linux_struct! {
    /// `struct futex_waitv` (futex_waitv(2)): one word to wait on, its expected value and its
    /// FUTEX2_* flags.
    pub struct FutexWaitv = linux::futex_waitv {
        pub val: u64,
        pub uaddr: u64,
        pub flags: u32,
        pub __reserved: u32,
    }
}

/// futex2's flags: the word's size (only FUTEX2_SIZE_U32 is implemented, as in Linux),
/// FUTEX2_PRIVATE; FUTEX2_NUMA and FUTEX2_MPOL are EINVAL (a kernel without CONFIG_FUTEX_NUMA).
pub const FUTEX2_SIZE_MASK: u32 = linux::FUTEX2_SIZE_MASK;
pub const FUTEX2_SIZE_U32: u32 = linux::FUTEX2_SIZE_U32;
pub const FUTEX2_PRIVATE: u32 = linux::FUTEX2_PRIVATE;
