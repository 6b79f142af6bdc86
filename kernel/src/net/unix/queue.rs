//! Messages and the send and receive paths of AF_UNIX sockets.
//!
//! A [`Msg`] is one send's data (a stream send is cut into pieces of at most half the send
//! buffer, as Linux's skbs), the sender's credentials (always recorded; shown to a receiver
//! with SO_PASSCRED), the descriptors it passes and, for datagrams, the sender's name. Its
//! bytes are charged to the sender's `wmem` while it is queued: dropping it gives them back
//! and wakes the sender, so a message is only ever dropped with no lock held.
//!
//! Stream receives gather bytes across messages, but stop before one with other credentials
//! (when SO_PASSCRED is on) and after one that carried descriptors; datagram and seqpacket
//! receives take one message whole (MSG_TRUNC says the rest was cut).

use std::sync::Arc;

use crate::abi::net::{MsgFlags, Ucred};
use crate::fs::vfs::poll_wakeup;
use crate::kern::errno::Errno;
use crate::kern::sleep::{sleepq_lock, wakeup};
use crate::net::{Caller, Received, SendArgs, SockAddr, SockType, UnixAddr};

use super::gc::InFlight;
use super::{Conn, UnixSocket, Wmem, names, sleep};

/// net.unix.max_dgram_qlen: datagrams a socket queues before senders wait (those it is
/// connected back to excepted).
pub const MAX_DGRAM_QLEN: usize = 10;
/// What a message costs beyond its bytes (the skb's overhead in Linux's truesize).
const MSG_OVERHEAD: usize = 512;

/// A queued message.
#[derive(Debug)]
pub(super) struct Msg {
    data: Vec<u8>,
    /// Bytes already read (streams read a message in parts).
    off: usize,
    creds: Ucred,
    rights: Option<InFlight>,
    /// The sender's name (datagrams: recvfrom's address).
    from: Option<UnixAddr>,
    /// Charged to the sender's wmem until dropped.
    charge: usize,
    wmem: Arc<Wmem>,
}

impl Msg {
    fn new(data: Vec<u8>, creds: Ucred, rights: Option<InFlight>, from: Option<UnixAddr>, wmem: &Arc<Wmem>) -> Msg {
        let charge = data.len() + MSG_OVERHEAD;
        wmem.bytes.fetch_add(charge, std::sync::atomic::Ordering::AcqRel);
        Msg { data, off: 0, creds, rights, from, charge, wmem: Arc::clone(wmem) }
    }

    /// Bytes not yet read.
    pub(super) fn unread(&self) -> usize {
        self.data.len() - self.off
    }

    /// The descriptors it carries, for the GC's walk.
    pub(super) fn rights(&self) -> Option<&InFlight> {
        self.rights.as_ref()
    }

    /// Take its descriptors away (the GC, breaking a cycle).
    pub(super) fn take_rights(&mut self) -> Option<InFlight> {
        self.rights.take()
    }
}

impl Drop for Msg {
    fn drop(&mut self) {
        self.wmem.bytes.fetch_sub(self.charge, std::sync::atomic::Ordering::AcqRel);
        wakeup(self.wmem.chan());
        poll_wakeup();
    }
}

/// SCM_CREDENTIALS as given: the caller's own pid, uid and gid, or others it has the
/// capability for (CAP_SYS_ADMIN for the pid, CAP_SETUID/CAP_SETGID for the ids): EPERM.
fn check_creds(c: &Caller<'_>, given: Option<Ucred>) -> Result<Ucred, Errno> {
    let mine = c.ucred();
    let Some(u) = given else { return Ok(mine) };
    use crate::kern::cred::{CAP_SETGID, CAP_SETUID, CAP_SYS_ADMIN};
    let cr = &c.cred;
    let pid_ok = u.pid == mine.pid || cr.capable(CAP_SYS_ADMIN);
    let uid_ok = [cr.uid, cr.euid, cr.suid].contains(&u.uid) || cr.capable(CAP_SETUID);
    let gid_ok = [cr.gid, cr.egid, cr.sgid].contains(&u.gid) || cr.capable(CAP_SETGID);
    if pid_ok && uid_ok && gid_ok { Ok(u) } else { Err(Errno::EPERM) }
}

/// What a receive found: the outcome and any messages it finished (dropped with no lock held).
enum Step {
    Done(Result<(), Errno>),
    Wait,
    Again,
}

impl UnixSocket {
    /// Wait until the send buffer has room (wmem below SO_SNDBUF).
    fn wait_wmem(&self, nonblock: bool) -> Result<(), Errno> {
        loop {
            let g = sleepq_lock(self.wmem.chan());
            let (sndbuf, timeout, shut) = {
                let st = self.st.lock();
                (st.opts.sndbuf, st.opts.sndtimeo, st.shut_wr)
            };
            if shut {
                return Err(Errno::EPIPE);
            }
            if self.wmem.get() < sndbuf {
                return Ok(());
            }
            if nonblock {
                return Err(Errno::EAGAIN);
            }
            sleep(g, "unixwr", timeout)?;
        }
    }

    pub(super) fn send_stream(&self, c: &Caller<'_>, a: SendArgs<'_>) -> Result<usize, Errno> {
        let nonblock = a.nonblock || a.flags.contains(MsgFlags::DONTWAIT);
        let (peer, sndbuf) = {
            let st = self.st.lock();
            if a.to.is_some() {
                return Err(if st.conn == Conn::Connected { Errno::EISCONN } else { Errno::EOPNOTSUPP });
            }
            if st.conn != Conn::Connected {
                return Err(Errno::ENOTCONN);
            }
            if st.shut_wr {
                return Err(Errno::EPIPE);
            }
            (st.peer.clone().ok_or(Errno::ENOTCONN)?, st.opts.sndbuf)
        };
        let creds = check_creds(c, a.creds)?;
        let mut rights = (!a.rights.is_empty()).then(|| InFlight::new(a.rights));
        let max_chunk = (sndbuf / 2).saturating_sub(64).max(1);
        let mut sent = 0;
        while sent < a.data.len() {
            if let Err(e) = self.wait_wmem(nonblock) {
                return if sent > 0 { Ok(sent) } else { Err(e) };
            }
            let n = (a.data.len() - sent).min(max_chunk);
            let msg = Msg::new(a.data[sent..sent + n].to_vec(), creds, rights.take(), None, &self.wmem);
            let refused = {
                let mut pst = peer.st.lock();
                if pst.released || pst.shut_rd {
                    Some(msg)
                } else {
                    pst.rx_bytes += n;
                    pst.rx.push_back(msg);
                    None
                }
            };
            if let Some(m) = refused {
                drop(m);
                return if sent > 0 { Ok(sent) } else { Err(Errno::EPIPE) };
            }
            sent += n;
            wakeup(peer.rx_chan());
            poll_wakeup();
        }
        Ok(sent)
    }

    pub(super) fn send_dgram(&self, c: &Caller<'_>, a: SendArgs<'_>) -> Result<usize, Errno> {
        let nonblock = a.nonblock || a.flags.contains(MsgFlags::DONTWAIT);
        let (connected_peer, sndbuf, passcred, timeout) = {
            let st = self.st.lock();
            if self.ty == SockType::Seqpacket {
                if st.conn != Conn::Connected {
                    return Err(Errno::ENOTCONN);
                }
                if st.shut_wr {
                    return Err(Errno::EPIPE);
                }
            }
            (st.peer.clone(), st.opts.sndbuf, st.opts.passcred, st.opts.sndtimeo)
        };
        if a.data.len() > sndbuf.saturating_sub(32) {
            return Err(Errno::EMSGSIZE);
        }
        let creds = check_creds(c, a.creds)?;
        // Seqpacket ignores an address (it is connected); a datagram goes where it says.
        let to = if self.ty == SockType::Dgram { a.to.clone() } else { None };
        let target = match &to {
            Some(SockAddr::Unix(ua)) => {
                if passcred {
                    self.autobind()?;
                }
                let t = names::find(c, self.ns, ua)?;
                if t.ty != self.ty {
                    return Err(Errno::EPROTOTYPE);
                }
                t
            }
            Some(_) => return Err(Errno::EINVAL),
            None => connected_peer.clone().ok_or(Errno::ENOTCONN)?,
        };
        if passcred {
            self.autobind()?;
        }
        self.wait_wmem(nonblock)?;
        let from = self.st.lock().addr.clone();
        let mut msg = Some(Msg::new(a.data.to_vec(), creds, (!a.rights.is_empty()).then(|| InFlight::new(a.rights)), from, &self.wmem));
        loop {
            let g = sleepq_lock(target.peer_wait_chan());
            let mut tst = target.st.lock();
            if tst.released {
                drop(tst);
                drop(g);
                drop(msg);
                if self.ty == SockType::Seqpacket {
                    return Err(Errno::EPIPE);
                }
                // The peer it was connected to is gone: the association too.
                if to.is_none() {
                    let old = self.st.lock().peer.take();
                    drop(old);
                }
                return Err(Errno::ECONNREFUSED);
            }
            if tst.shut_rd {
                drop(tst);
                drop(g);
                drop(msg);
                return Err(Errno::EPIPE);
            }
            let back = tst.peer.as_ref().is_some_and(|x| std::ptr::eq(Arc::as_ptr(x), self));
            if self.ty == SockType::Dgram && tst.peer.is_some() && !back {
                // unix_may_send: a connected socket hears only its peer.
                drop(tst);
                drop(g);
                drop(msg);
                return Err(Errno::EPERM);
            }
            if self.ty == SockType::Dgram && !back && tst.rx.len() > MAX_DGRAM_QLEN {
                drop(tst);
                if nonblock {
                    drop(g);
                    drop(msg);
                    return Err(Errno::EAGAIN);
                }
                if let Err(e) = sleep(g, "unixdg", timeout) {
                    drop(msg);
                    return Err(e);
                }
                continue;
            }
            let Some(m) = msg.take() else { return Err(Errno::EINVAL) };
            tst.rx_bytes += m.unread();
            tst.rx.push_back(m);
            drop(tst);
            drop(g);
            wakeup(target.rx_chan());
            poll_wakeup();
            return Ok(a.data.len());
        }
    }

    pub(super) fn recv_stream(&self, len: usize, flags: MsgFlags, nonblock: bool) -> Result<Received, Errno> {
        let nonblock = nonblock || flags.contains(MsgFlags::DONTWAIT);
        let peek = flags.contains(MsgFlags::PEEK);
        let waitall = flags.contains(MsgFlags::WAITALL) && !peek;
        let mut out = Received::default();
        let mut finished: Vec<Msg> = Vec::new();
        let mut passed: Option<InFlight> = None;
        loop {
            let g = sleepq_lock(self.rx_chan());
            let mut st = self.st.lock();
            let step = 'step: {
                if st.conn != Conn::Connected {
                    break 'step Step::Done(Err(Errno::EINVAL));
                }
                let passcred = st.opts.passcred;
                let mut idx = 0;
                let mut stop = false;
                let mut got_fds = false;
                while out.data.len() < len && !stop {
                    let Some(m) = st.rx.get(idx) else { break };
                    if passcred {
                        match out.creds {
                            Some(c) if c != m.creds => break,
                            _ => out.creds = Some(m.creds),
                        }
                    }
                    let n = (len - out.data.len()).min(m.unread());
                    out.data.extend_from_slice(&m.data[m.off..m.off + n]);
                    let whole = n == m.unread();
                    if m.rights.is_some() {
                        stop = true;
                        got_fds = true;
                    }
                    if peek {
                        if let Some(r) = &m.rights {
                            out.rights = r.files().to_vec();
                        }
                        idx += 1;
                        stop |= !whole;
                    } else {
                        let Some(m) = st.rx.front_mut() else { break };
                        m.off += n;
                        if let Some(r) = m.rights.take() {
                            passed = Some(r);
                        }
                        st.rx_bytes -= n;
                        if whole && let Some(done) = st.rx.pop_front() {
                            finished.push(done);
                        }
                    }
                }
                let have = !out.data.is_empty() || got_fds;
                if have && (!waitall || out.data.len() >= len || got_fds) {
                    break 'step Step::Done(Ok(()));
                }
                if !finished.is_empty() {
                    break 'step Step::Again;
                }
                if let Some(e) = st.err.take() {
                    break 'step if have { Step::Done(Ok(())) } else { Step::Done(Err(e)) };
                }
                if st.shut_rd {
                    break 'step Step::Done(Ok(()));
                }
                if nonblock {
                    break 'step if have { Step::Done(Ok(())) } else { Step::Done(Err(Errno::EAGAIN)) };
                }
                Step::Wait
            };
            let timeout = st.opts.rcvtimeo;
            drop(st);
            match step {
                Step::Done(r) => {
                    drop(g);
                    drop(finished);
                    if let Some(p) = passed {
                        out.rights = p.deliver();
                    }
                    out.full_len = out.data.len();
                    return r.map(|()| out);
                }
                Step::Again => {
                    drop(g);
                    finished.clear();
                }
                Step::Wait => {
                    if let Err(e) = sleep(g, "unixrd", timeout) {
                        if out.data.is_empty() {
                            return Err(e);
                        }
                        if let Some(p) = passed {
                            out.rights = p.deliver();
                        }
                        out.full_len = out.data.len();
                        return Ok(out);
                    }
                }
            }
        }
    }

    pub(super) fn recv_dgram(&self, len: usize, flags: MsgFlags, nonblock: bool) -> Result<Received, Errno> {
        let nonblock = nonblock || flags.contains(MsgFlags::DONTWAIT);
        let peek = flags.contains(MsgFlags::PEEK);
        loop {
            let g = sleepq_lock(self.rx_chan());
            let mut st = self.st.lock();
            let passcred = st.opts.passcred;
            if peek && let Some(m) = st.rx.front() {
                let n = len.min(m.data.len());
                let r = Received {
                    data: m.data[..n].to_vec(),
                    full_len: m.data.len(),
                    from: m.from.clone().map(SockAddr::Unix),
                    rights: m.rights.as_ref().map(|r| r.files().to_vec()).unwrap_or_default(),
                    creds: passcred.then_some(m.creds),
                    flags: if n < m.data.len() { MsgFlags::TRUNC } else { MsgFlags::empty() },
                };
                return Ok(r);
            }
            if let Some(mut m) = st.rx.pop_front() {
                st.rx_bytes -= m.unread();
                drop(st);
                drop(g);
                wakeup(self.peer_wait_chan());
                let n = len.min(m.data.len());
                let full = m.data.len();
                let r = Received {
                    data: m.data[..n].to_vec(),
                    full_len: full,
                    from: m.from.take().map(SockAddr::Unix),
                    rights: m.rights.take().map(InFlight::deliver).unwrap_or_default(),
                    creds: passcred.then_some(m.creds),
                    flags: if n < full { MsgFlags::TRUNC } else { MsgFlags::empty() },
                };
                drop(m);
                return Ok(r);
            }
            if self.ty == SockType::Seqpacket && st.conn != Conn::Connected && !st.shut_rd {
                return Err(Errno::ENOTCONN);
            }
            if let Some(e) = st.err.take() {
                return Err(e);
            }
            if st.shut_rd {
                return Ok(Received::default());
            }
            if nonblock {
                return Err(Errno::EAGAIN);
            }
            let timeout = st.opts.rcvtimeo;
            drop(st);
            sleep(g, "unixrd", timeout)?;
        }
    }
}
