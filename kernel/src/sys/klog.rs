//! syslog(2) (klogctl): the kernel's message buffer as `dmesg` reads it. Each line comes back
//! as a record of level 6 (`<6>text`), the oldest dropped when the caller's buffer is too
//! small, as Linux's READ_ALL does; vk's messages have no levels or time stamps.
//!
//! What is here: READ_ALL and SIZE_BUFFER for everyone (Linux's dmesg_restrict=0), CLOSE,
//! OPEN, READ_CLEAR and CLEAR with CAP_SYSLOG (or CAP_SYS_ADMIN). The blocking READ, its
//! SIZE_UNREAD and the console-level actions are EINVAL: vk's console shows every message.

use std::sync::atomic::{AtomicU64, Ordering};

use kvm_mem::abi::MSGBUF_SIZE;

use crate::kern::cred::{CAP_SYS_ADMIN, CAP_SYSLOG};
use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};
use crate::kern::printf::MSGBUF;

const SYSLOG_ACTION_CLOSE: u32 = 0;
const SYSLOG_ACTION_OPEN: u32 = 1;
const SYSLOG_ACTION_READ_ALL: u32 = 3;
const SYSLOG_ACTION_READ_CLEAR: u32 = 4;
const SYSLOG_ACTION_CLEAR: u32 = 5;
const SYSLOG_ACTION_SIZE_BUFFER: u32 = 10;

/// The level every line is reported with (KERN_INFO).
const LEVEL: &str = "<6>";

/// Where the buffer starts for READ_ALL: the write position at the last CLEAR.
static CLEARED_AT: AtomicU64 = AtomicU64::new(0);

/// The lines written since the last CLEAR that the ring still holds, oldest first (a line the
/// ring has partly overwritten is left out).
fn lines() -> Vec<String> {
    let w = MSGBUF.wptr.load(Ordering::Acquire);
    let oldest = w.saturating_sub(MSGBUF_SIZE as u64);
    let from = CLEARED_AT.load(Ordering::Relaxed).clamp(oldest, w);
    let text = crate::kern::printf::msgbuf_text();
    // msgbuf_text ends at w and holds w - oldest bytes; skip to `from`.
    let skip = usize::try_from(from - oldest).unwrap_or(usize::MAX).min(text.len());
    let mut body = text.get(skip..).unwrap_or_default();
    if from == oldest && oldest > 0 {
        // The ring wrapped: its first line is a fragment.
        body = body.split_once('\n').map_or("", |(_, rest)| rest);
    }
    body.lines().map(|l| format!("{LEVEL}{l}\n")).collect()
}

/// The newest records that fit in `len` bytes, as one string.
fn newest(len: usize) -> String {
    let all = lines();
    let mut size = 0;
    let mut first = all.len();
    while first > 0 && size + all[first - 1].len() <= len {
        first -= 1;
        size += all[first].len();
    }
    all[first..].concat()
}

fn privileged(ctx: &Ctx<'_>) -> Result<(), Errno> {
    let cred = ctx.p.user().cred();
    if cred.capable(CAP_SYSLOG) || cred.capable(CAP_SYS_ADMIN) { Ok(()) } else { Err(Errno::EPERM) }
}

/// syslog(type, buf, len).
pub fn sys_syslog(ctx: &mut Ctx<'_>) -> SysResult {
    let action = ctx.uint(0);
    match action {
        SYSLOG_ACTION_CLOSE | SYSLOG_ACTION_OPEN => privileged(ctx).map(|()| 0),
        SYSLOG_ACTION_READ_ALL | SYSLOG_ACTION_READ_CLEAR => {
            if action == SYSLOG_ACTION_READ_CLEAR {
                privileged(ctx)?;
            }
            let len = usize::try_from(ctx.int(2)).map_err(|_| Errno::EINVAL)?;
            if ctx.arg(1) == 0 {
                return Err(Errno::EINVAL);
            }
            if len == 0 {
                return Ok(0);
            }
            let text = newest(len);
            ctx.write_slice(crate::vm::uaccess::UserSlice::new(ctx.arg(1), text.len()), text.as_bytes())?;
            if action == SYSLOG_ACTION_READ_CLEAR {
                CLEARED_AT.store(MSGBUF.wptr.load(Ordering::Acquire), Ordering::Relaxed);
            }
            Ok(text.len())
        }
        SYSLOG_ACTION_CLEAR => {
            privileged(ctx)?;
            CLEARED_AT.store(MSGBUF.wptr.load(Ordering::Acquire), Ordering::Relaxed);
            Ok(0)
        }
        SYSLOG_ACTION_SIZE_BUFFER => Ok(MSGBUF_SIZE),
        _ => Err(Errno::EINVAL),
    }
}
