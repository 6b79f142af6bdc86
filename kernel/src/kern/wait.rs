//! Waiting for children (wait4(2), waitid(2)): find a matching zombie, reap it, or sleep in
//! "wait" until one of them exits.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use kvm_mem::abi::pstate;

use crate::kern::errno::Errno;
use crate::kern::proc::{self, Proc};
use crate::kern::sleep::{SleepOpts, sleepq_lock, tsleep_locked, wchan_of};
use crate::kern::thread::WakeReason;
use crate::kern::uproc::free_pid;

/// Which children.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Any,
    Pid(i32),
    Pgid(i32),
}

/// A child that exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reaped {
    pub pid: i32,
    pub status: i32,
    pub uid: u32,
}

fn matches(c: &Proc, which: Which) -> bool {
    match which {
        Which::Any => true,
        Which::Pid(p) => c.pid == p,
        Which::Pgid(g) => c.rec.pgid.load(Ordering::Relaxed) == g,
    }
}

/// Wait for a child matching `which` to exit. `Ok(None)` with `nohang` when none has yet;
/// `reap` false leaves the zombie (WNOWAIT).
pub fn wait_child(p: &Arc<Proc>, which: Which, nohang: bool, reap: bool) -> Result<Option<Reaped>, Errno> {
    let chan = wchan_of(&**p);
    loop {
        let g = sleepq_lock(chan);
        let found = {
            let mut children = p.user().children.lock();
            if !children.iter().any(|c| matches(c, which)) {
                return Err(Errno::ECHILD);
            }
            let pos = children.iter().position(|c| matches(c, which) && c.rec.state.load(Ordering::Acquire) == pstate::ZOMBIE);
            pos.map(|i| if reap { children.remove(i) } else { Arc::clone(&children[i]) })
        };
        if let Some(z) = found {
            drop(g);
            let status = z.user().exit_status.lock().unwrap_or(0);
            let r = Reaped { pid: z.pid, status, uid: z.user().cred.lock().uid };
            if reap {
                proc::remove(z.pid);
                free_pid(z.pid);
            }
            return Ok(Some(r));
        }
        if nohang {
            return Ok(None);
        }
        if tsleep_locked(g, "wait", SleepOpts { interruptible: true, timeout: None }) == WakeReason::Interrupted {
            return Err(Errno::ERESTARTSYS);
        }
    }
}
