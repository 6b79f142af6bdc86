//! A process's scheduling policy and parameters (sched_setscheduler(2), sched_setattr(2)), as
//! the process keeps them ([`crate::kern::uproc`]); sys/sched.rs checks and changes them.
//! vk's scheduler does not act on them: every thread is scheduled as SCHED_OTHER.

use linux_raw_sys::general as g;

pub const SCHED_OTHER: u32 = g::SCHED_NORMAL;
pub const SCHED_FIFO: u32 = g::SCHED_FIFO;
pub const SCHED_RR: u32 = g::SCHED_RR;
pub const SCHED_BATCH: u32 = g::SCHED_BATCH;
pub const SCHED_IDLE: u32 = g::SCHED_IDLE;
pub const SCHED_DEADLINE: u32 = g::SCHED_DEADLINE;

/// Whether `policy` is a real-time one (FIFO, RR).
pub fn is_rt(policy: u32) -> bool {
    policy == SCHED_FIFO || policy == SCHED_RR
}

/// A process's scheduling policy and parameters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchedPolicy {
    pub policy: u32,
    pub priority: u32,
    pub reset_on_fork: bool,
    pub runtime_ns: u64,
    pub deadline_ns: u64,
    pub period_ns: u64,
}

impl SchedPolicy {
    /// What a child gets at fork: the same; with reset-on-fork a real-time or deadline policy
    /// becomes SCHED_OTHER (fork.rs takes a negative nice to 0), and the flag is not inherited.
    pub fn for_child(&self) -> SchedPolicy {
        match self.reset_on_fork {
            true if is_rt(self.policy) || self.policy == SCHED_DEADLINE => SchedPolicy::default(),
            true => SchedPolicy { reset_on_fork: false, ..*self },
            false => *self,
        }
    }
}
