//! The terminal ioctls (ioctl_tty(2)): modes, window size, foreground group, controlling
//! terminal, queue sizes and flushing; on a pty master, TIOCGPTN and TIOCSPTLCK/TIOCGPTLCK
//! too (the others act on its slave, without job control: the master has none).

use linux_raw_sys::ioctl as io;

use super::ctty::{self, Access};
use super::termios::Termios;
use super::{Tty, set_winsize, wake};
use crate::abi::{c_ulong, linux, tty};
use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};
use crate::vm::uaccess::UserPtr;

pub const TCGETS: u32 = io::TCGETS;
pub const TCSETS: u32 = io::TCSETS;
pub const TCSETSW: u32 = io::TCSETSW;
pub const TCSETSF: u32 = io::TCSETSF;
pub const TCSBRK: u32 = io::TCSBRK;
pub const TCXONC: u32 = io::TCXONC;
pub const TCFLSH: u32 = io::TCFLSH;
pub const TIOCSCTTY: u32 = io::TIOCSCTTY;
pub const TIOCGPGRP: u32 = io::TIOCGPGRP;
pub const TIOCSPGRP: u32 = io::TIOCSPGRP;
pub const TIOCOUTQ: u32 = io::TIOCOUTQ;
pub const TIOCGWINSZ: u32 = io::TIOCGWINSZ;
pub const TIOCSWINSZ: u32 = io::TIOCSWINSZ;
pub const FIONREAD: u32 = io::FIONREAD;
pub const TIOCNOTTY: u32 = io::TIOCNOTTY;
pub const TCSBRKP: u32 = io::TCSBRKP;
pub const TIOCGSID: u32 = io::TIOCGSID;
pub const TIOCGPTN: u32 = io::TIOCGPTN;
pub const TIOCSPTLCK: u32 = io::TIOCSPTLCK;
pub const TIOCGPTLCK: u32 = io::TIOCGPTLCK;

/// TCXONC's arguments (termios(3) tcflow): suspend and restart output; TCIOFF and TCION
/// (which would send STOP and START to the other end) are the rest up to TCION.
const TCOOFF: u64 = c_ulong(linux::TCOOFF);
const TCOON: u64 = c_ulong(linux::TCOON);
const TCION: u64 = c_ulong(linux::TCION);

/// TCFLSH's queues.
const TCIFLUSH: u64 = c_ulong(linux::TCIFLUSH);
const TCIOFLUSH: u64 = c_ulong(linux::TCIOFLUSH);

/// Job control for a change of the terminal (from its slave side; a master has none).
fn change(ctx: &Ctx<'_>, tty: &Tty, master: bool) -> Result<(), Errno> {
    if master { Ok(()) } else { ctty::check(tty, ctx.td, ctx.p, Access::Change) }
}

/// An ioctl on a terminal: the console, a pty slave, or (`master`) a pty's master. ENOTTY
/// when the console is not a terminal.
pub fn ioctl(ctx: &mut Ctx<'_>, tty: &Tty, master: bool, req: u32, arg: u64) -> SysResult {
    if !tty.enabled {
        return Err(Errno::ENOTTY);
    }
    if let (true, Some(m)) = (master, tty.master()) {
        match req {
            TIOCGPTN => {
                ctx.write(UserPtr::<u32>::new(arg), &m.index)?;
                return Ok(0);
            }
            TIOCSPTLCK => {
                let lock = ctx.read(UserPtr::<i32>::new(arg))?;
                m.set_locked(lock != 0);
                return Ok(0);
            }
            TIOCGPTLCK => {
                ctx.write(UserPtr::<i32>::new(arg), &i32::from(m.locked()))?;
                return Ok(0);
            }
            FIONREAD => {
                ctx.write(UserPtr::<i32>::new(arg), &i32::try_from(m.queued()).unwrap_or(i32::MAX))?;
                return Ok(0);
            }
            TIOCGPGRP => {
                let pgrp = tty.st.lock().pgrp;
                ctx.write(UserPtr::<i32>::new(arg), &pgrp)?;
                return Ok(0);
            }
            TIOCSCTTY | TIOCNOTTY | TIOCSPGRP | TIOCGSID => return Err(Errno::ENOTTY),
            _ => {}
        }
    } else if matches!(req, TIOCGPTN | TIOCSPTLCK | TIOCGPTLCK) {
        return Err(Errno::ENOTTY);
    }
    match req {
        TCGETS => {
            let t = tty.st.lock().ld.t.to_guest();
            ctx.write(UserPtr::<tty::Termios>::new(arg), &t)?;
        }
        TCSETS | TCSETSW | TCSETSF => {
            let t = ctx.read(UserPtr::<tty::Termios>::new(arg))?;
            change(ctx, tty, master)?;
            {
                let mut s = tty.st.lock();
                if req == TCSETSF {
                    s.ld.flush_input();
                }
                s.ld.set_termios(Termios::from_guest(&t));
            }
            wake(tty);
        }
        TIOCGWINSZ => {
            let ws = tty.st.lock().winsize;
            ctx.write(UserPtr::<tty::Winsize>::new(arg), &ws)?;
        }
        TIOCSWINSZ => {
            let ws = ctx.read(UserPtr::<tty::Winsize>::new(arg))?;
            set_winsize(tty, ws);
        }
        TIOCGPGRP | TIOCGSID => {
            if !ctty::has_ctty(tty, ctx.p) {
                return Err(Errno::ENOTTY);
            }
            let v = {
                let s = tty.st.lock();
                if req == TIOCGPGRP { s.pgrp } else { s.session }
            };
            ctx.write(UserPtr::<i32>::new(arg), &v)?;
        }
        TIOCSPGRP => {
            if !ctty::has_ctty(tty, ctx.p) {
                return Err(Errno::ENOTTY);
            }
            let pgrp = ctx.read(UserPtr::<i32>::new(arg))?;
            change(ctx, tty, master)?;
            ctty::set_pgrp(tty, ctx.p, pgrp)?;
        }
        TIOCSCTTY => ctty::acquire(tty, ctx.p, arg == 1)?,
        TIOCNOTTY => ctty::release(tty, ctx.p)?,
        FIONREAD => {
            let n = tty.st.lock().ld.available();
            ctx.write(UserPtr::<i32>::new(arg), &i32::try_from(n).unwrap_or(i32::MAX))?;
        }
        // Output is never queued.
        TIOCOUTQ => ctx.write(UserPtr::<i32>::new(arg), &0)?,
        TCFLSH => {
            if arg > TCIOFLUSH {
                return Err(Errno::EINVAL);
            }
            change(ctx, tty, master)?;
            if arg == TCIFLUSH || arg == TCIOFLUSH {
                tty.st.lock().ld.flush_input();
            }
        }
        TCXONC => {
            if arg > TCION {
                return Err(Errno::EINVAL);
            }
            change(ctx, tty, master)?;
            // TCOOFF / TCOON suspend and restart output; TCIOFF / TCION would send STOP / START
            // to the other end, and the host terminal needs neither.
            match arg {
                TCOOFF => tty.st.lock().ld.stopped = true,
                TCOON => {
                    tty.st.lock().ld.stopped = false;
                    wake(tty);
                }
                _ => {}
            }
        }
        // tcdrain and tcsendbreak: output is never queued, and a console has no line to break.
        TCSBRK | TCSBRKP => {}
        _ => return Err(Errno::ENOTTY),
    }
    Ok(0)
}
