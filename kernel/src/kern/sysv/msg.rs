//! System V message queues (msgget(2), msgsnd(2), msgrcv(2), msgctl(2)).
//!
//! A queue holds typed messages in arrival order, bounded by its msg_qbytes (MSGMNB by
//! default: both the bytes queued and the number of messages, as Linux's msg_fits). Senders
//! wait for room and receivers for a message of the type they ask for on one channel for
//! every queue; a signal ends the wait with EINTR (these calls are never restarted) and the
//! queue's removal with EIDRM. Texts are copied in before and out after the registry's lock.
//!
//! Lock order: the waiters' `sleepq` bucket → `sysv_msg`.

use std::collections::VecDeque;

use platform::sync::SpinLock;

use crate::abi::ipc::{IPC_NOWAIT, MSG_COPY, MSG_EXCEPT, MSG_NOERROR, MsqidDs};
use crate::kern::cred::Cred;
use crate::kern::errno::Errno;
use crate::kern::sleep::{SleepOpts, sleepq_lock, tsleep_locked, wakeup, wchan_of};
use crate::kern::sysv::{Found, Ids, Perm, now_secs};
use crate::kern::thread::WakeReason;

/// Linux's defaults (include/uapi/linux/msg.h).
pub const MSGMNI: usize = 32000;
pub const MSGMAX: usize = 8192;
pub const MSGMNB: u64 = 16384;
pub const MSGSSZ: i32 = 16;
/// MSGPOOL (KiB) and the IPC_INFO answers as the C ints msginfo holds.
pub const MSGPOOL: i32 = 32000 * 16384 / 1024;
pub const MSGMNI_INT: i32 = 32000;
pub const MSGMAX_INT: i32 = 8192;
pub const MSGMNB_INT: i32 = 16384;
const _: () = assert!(MSGMNI == 32000 && MSGMAX == 8192 && MSGMNB == 16384);
pub const MSGSEG: u16 = 0xffff;

/// A queue.
#[derive(Debug)]
pub struct Queue {
    pub msgs: VecDeque<(i64, Vec<u8>)>,
    pub cbytes: u64,
    pub qbytes: u64,
    pub stime: i64,
    pub rtime: i64,
    pub ctime: i64,
    pub lspid: i32,
    pub lrpid: i32,
}

impl Queue {
    pub fn stat(&self, perm: &Perm) -> MsqidDs {
        MsqidDs {
            msg_perm: perm.to_abi(),
            msg_stime: self.stime,
            msg_rtime: self.rtime,
            msg_ctime: self.ctime,
            msg_cbytes: self.cbytes,
            msg_qnum: self.msgs.len() as u64,
            msg_qbytes: self.qbytes,
            msg_lspid: self.lspid,
            msg_lrpid: self.lrpid,
            ..MsqidDs::default()
        }
    }
}

static MSG: SpinLock<Ids<Queue>> = SpinLock::new("sysv_msg", Ids::new(MSGMNI));

fn chan() -> u64 {
    wchan_of(&MSG)
}

/// Run `f` on the registry; waiters are woken afterwards when `f` says something changed.
pub fn with<R>(f: impl FnOnce(&mut Ids<Queue>) -> (R, bool)) -> R {
    let (r, changed) = f(&mut MSG.lock());
    if changed {
        wakeup(chan());
    }
    r
}

/// msgget(2).
pub fn get(key: i32, flags: u32, cred: &Cred) -> Result<i32, Errno> {
    with(|ids| {
        let r = ids.lookup_or_make(
            key,
            cred,
            flags,
            |_, _| Ok(()),
            || {
                Ok(Queue {
                    msgs: VecDeque::new(),
                    cbytes: 0,
                    qbytes: MSGMNB,
                    stime: 0,
                    rtime: 0,
                    ctime: now_secs(),
                    lspid: 0,
                    lrpid: 0,
                })
            },
        );
        (
            r.map(|f| match f {
                Found::Existing(id) | Found::Made(id) => id,
            }),
            false,
        )
    })
}

/// Sleep on the locked channel: EINTR for a signal.
fn wait(g: crate::kern::sleep::SleepqGuard, what: &str) -> Result<(), Errno> {
    match tsleep_locked(g, what, SleepOpts { interruptible: true, timeout: None }) {
        WakeReason::Interrupted => Err(Errno::EINTR),
        _ => Ok(()),
    }
}

/// msgsnd(2): queue `text` with type `mtype` (checked by the caller: positive, at most MSGMAX).
pub fn send(
    id: i32,
    mtype: i64,
    text: Vec<u8>,
    flags: u32,
    pid: i32,
    cred: &Cred,
    mut first: bool,
) -> Result<usize, Errno> {
    let mut text = Some(text);
    loop {
        let g = sleepq_lock(chan());
        let sent = {
            let mut ids = MSG.lock();
            let (perm, q) = match ids.get(id) {
                Ok(x) => x,
                // Removed while we slept.
                Err(_) if !first => return Err(Errno::EIDRM),
                Err(e) => return Err(e),
            };
            perm.check(cred, 0o200)?;
            let len = text.as_ref().map_or(0, Vec::len) as u64;
            if q.cbytes + len <= q.qbytes && (q.msgs.len() as u64) < q.qbytes {
                q.cbytes += len;
                q.msgs.push_back((mtype, text.take().unwrap_or_default()));
                q.stime = now_secs();
                q.lspid = pid;
                true
            } else {
                false
            }
        };
        if sent {
            drop(g);
            wakeup(chan());
            return Ok(0);
        }
        if flags & IPC_NOWAIT != 0 {
            return Err(Errno::EAGAIN);
        }
        wait(g, "msgsnd")?;
        first = false;
    }
}

/// Whether a message of type `t` is what msgrcv's `want` (and MSG_EXCEPT) asks for.
fn matches(t: i64, want: i64, except: bool) -> bool {
    match want {
        0 => true,
        w if w > 0 => (t == w) != except,
        w => t <= w.saturating_neg(),
    }
}

/// msgrcv(2): the message's type and text (cut to `max` bytes under MSG_NOERROR).
pub fn receive(id: i32, max: usize, want: i64, flags: u32, pid: i32, cred: &Cred) -> Result<(i64, Vec<u8>), Errno> {
    let except = flags & MSG_EXCEPT != 0;
    let copy = flags & MSG_COPY != 0;
    if copy && (flags & IPC_NOWAIT == 0 || except) {
        return Err(Errno::EINVAL);
    }
    let mut first = true;
    loop {
        let g = sleepq_lock(chan());
        let got = {
            let mut ids = MSG.lock();
            let (perm, q) = match ids.get(id) {
                Ok(x) => x,
                Err(_) if !first => return Err(Errno::EIDRM),
                Err(e) => return Err(e),
            };
            perm.check(cred, 0o400)?;
            let at = if copy {
                usize::try_from(want).ok().filter(|&i| i < q.msgs.len())
            } else if want < 0 {
                // The lowest type at or below |want|, the first of them.
                q.msgs
                    .iter()
                    .enumerate()
                    .filter(|(_, (t, _))| matches(*t, want, false))
                    .min_by_key(|(i, (t, _))| (*t, *i))
                    .map(|(i, _)| i)
            } else {
                q.msgs.iter().position(|(t, _)| matches(*t, want, except))
            };
            match at {
                Some(i) => {
                    let len = q.msgs[i].1.len();
                    if len > max && flags & MSG_NOERROR == 0 {
                        return Err(Errno::E2BIG);
                    }
                    let (t, mut text) = if copy {
                        q.msgs[i].clone()
                    } else {
                        let m = q.msgs.remove(i).unwrap_or_default();
                        q.cbytes -= len as u64;
                        q.rtime = now_secs();
                        q.lrpid = pid;
                        m
                    };
                    text.truncate(max);
                    Some((t, text))
                }
                None => None,
            }
        };
        if let Some(m) = got {
            drop(g);
            if !copy {
                wakeup(chan());
            }
            return Ok(m);
        }
        if flags & IPC_NOWAIT != 0 {
            return Err(Errno::ENOMSG);
        }
        wait(g, "msgrcv")?;
        first = false;
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn type_selection() {
        assert!(matches(5, 0, false));
        assert!(matches(5, 5, false) && !matches(4, 5, false));
        assert!(matches(4, 5, true) && !matches(5, 5, true));
        assert!(matches(3, -3, false) && matches(1, -3, false) && !matches(4, -3, false));
    }
}
