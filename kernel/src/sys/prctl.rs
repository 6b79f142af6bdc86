//! prctl(2) options beyond the names and signals of `thread.rs`: the timer slack
//! (PR_SET/GET_TIMERSLACK), the child subreaper (PR_SET/GET_CHILD_SUBREAPER), the capability
//! bounding set (PR_CAPBSET_READ/DROP) and the securebits (PR_GET/SET_SECUREBITS, none kept:
//! only 0 can be set).

use std::sync::atomic::Ordering;

use linux_raw_sys::prctl as pr;

use crate::abi::c_int;
use crate::kern::cred::{CAP_LAST_CAP, CAP_SETPCAP};
use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};

pub const PR_SET_TIMERSLACK: i32 = c_int(pr::PR_SET_TIMERSLACK);
pub const PR_GET_TIMERSLACK: i32 = c_int(pr::PR_GET_TIMERSLACK);
pub const PR_SET_CHILD_SUBREAPER: i32 = c_int(pr::PR_SET_CHILD_SUBREAPER);
pub const PR_GET_CHILD_SUBREAPER: i32 = c_int(pr::PR_GET_CHILD_SUBREAPER);
pub const PR_CAPBSET_READ: i32 = c_int(pr::PR_CAPBSET_READ);
pub const PR_CAPBSET_DROP: i32 = c_int(pr::PR_CAPBSET_DROP);
pub const PR_GET_SECUREBITS: i32 = c_int(pr::PR_GET_SECUREBITS);
pub const PR_SET_SECUREBITS: i32 = c_int(pr::PR_SET_SECUREBITS);

/// prctl with one of these options (EINVAL for another).
pub fn prctl(ctx: &mut Ctx<'_>, option: i32) -> SysResult {
    match option {
        PR_SET_TIMERSLACK => {
            // 0 resets the thread's slack to its default (what its creator had).
            let u = ctx.td.user();
            let v = match ctx.arg(1) {
                0 => u.default_slack_ns.load(Ordering::Relaxed),
                n => n,
            };
            u.timer_slack_ns.store(v, Ordering::Relaxed);
            Ok(0)
        }
        PR_GET_TIMERSLACK => {
            Ok(usize::try_from(ctx.td.user().timer_slack_ns.load(Ordering::Relaxed)).unwrap_or(usize::MAX))
        }
        PR_SET_CHILD_SUBREAPER => {
            ctx.p.user().child_subreaper.store(ctx.arg(1) != 0, Ordering::Relaxed);
            Ok(0)
        }
        PR_GET_CHILD_SUBREAPER => {
            let v = i32::from(ctx.p.user().child_subreaper.load(Ordering::Relaxed));
            ctx.write(ctx.ptr::<i32>(1), &v)?;
            Ok(0)
        }
        PR_CAPBSET_READ => {
            let cap = cap_arg(ctx)?;
            Ok(usize::from(ctx.p.user().cred().cap_bounding & (1 << cap) != 0))
        }
        PR_CAPBSET_DROP => {
            if !ctx.p.user().cred().capable(CAP_SETPCAP) {
                return Err(Errno::EPERM);
            }
            let cap = cap_arg(ctx)?;
            crate::sys::cred::change(ctx, |c| {
                c.cap_bounding &= !(1 << cap);
                Ok(())
            })?;
            Ok(0)
        }
        PR_GET_SECUREBITS => Ok(0),
        PR_SET_SECUREBITS => {
            if !ctx.p.user().cred().capable(CAP_SETPCAP) {
                return Err(Errno::EPERM);
            }
            // vk keeps no securebits: setting none is the one change it can honour.
            if ctx.arg(1) != 0 { Err(Errno::EINVAL) } else { Ok(0) }
        }
        _ => Err(Errno::EINVAL),
    }
}

/// A capability number in arg2 (EINVAL past CAP_LAST_CAP).
fn cap_arg(ctx: &Ctx<'_>) -> Result<u32, Errno> {
    u32::try_from(ctx.arg(1)).ok().filter(|&c| c <= CAP_LAST_CAP).ok_or(Errno::EINVAL)
}
