//! The terminal ioctls (ioctl_tty(2)): modes, window size, foreground group, controlling
//! terminal, queue sizes and flushing.

use super::ctty::{self, Access};
use super::termios::{self, Termios};
use super::{console, set_winsize, wake};
use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};

pub const TCGETS: u32 = 0x5401;
pub const TCSETS: u32 = 0x5402;
pub const TCSETSW: u32 = 0x5403;
pub const TCSETSF: u32 = 0x5404;
pub const TCSBRK: u32 = 0x5409;
pub const TCXONC: u32 = 0x540a;
/// TCXONC's arguments (termios(3) tcflow).
const TCOOFF: u64 = 0;
const TCOON: u64 = 1;
pub const TCFLSH: u32 = 0x540b;
pub const TIOCSCTTY: u32 = 0x540e;
pub const TIOCGPGRP: u32 = 0x540f;
pub const TIOCSPGRP: u32 = 0x5410;
pub const TIOCOUTQ: u32 = 0x5411;
pub const TIOCGWINSZ: u32 = 0x5413;
pub const TIOCSWINSZ: u32 = 0x5414;
pub const FIONREAD: u32 = 0x541b;
pub const TIOCNOTTY: u32 = 0x5422;
pub const TCSBRKP: u32 = 0x5425;
pub const TIOCGSID: u32 = 0x5429;

/// TCFLSH queues.
const TCIFLUSH: u64 = 0;
const TCIOFLUSH: u64 = 2;

fn change(ctx: &Ctx<'_>) -> Result<(), Errno> {
    ctty::check(console(), ctx.td, ctx.p, Access::Change)
}

/// An ioctl on the console (or /dev/tty). ENOTTY when the console is not a terminal.
pub fn ioctl(ctx: &mut Ctx<'_>, req: u32, arg: u64) -> SysResult {
    let tty = console();
    if !tty.enabled {
        return Err(Errno::ENOTTY);
    }
    match req {
        TCGETS => {
            let t = tty.st.lock().ld.t.to_bytes();
            ctx.copyout(arg, &t)?;
        }
        TCSETS | TCSETSW | TCSETSF => {
            let mut b = [0u8; termios::SIZE];
            ctx.copyin(arg, &mut b)?;
            change(ctx)?;
            {
                let mut s = tty.st.lock();
                if req == TCSETSF {
                    s.ld.flush_input();
                }
                s.ld.set_termios(Termios::from_bytes(&b));
            }
            wake(tty);
        }
        TIOCGWINSZ => {
            let ws = tty.st.lock().winsize;
            let mut b = [0u8; 8];
            for (i, v) in ws.iter().enumerate() {
                b[i * 2..i * 2 + 2].copy_from_slice(&v.to_le_bytes());
            }
            ctx.copyout(arg, &b)?;
        }
        TIOCSWINSZ => {
            let mut b = [0u8; 8];
            ctx.copyin(arg, &mut b)?;
            let w = |i: usize| u16::from_le_bytes([b[i * 2], b[i * 2 + 1]]);
            set_winsize(tty, [w(0), w(1), w(2), w(3)]);
        }
        TIOCGPGRP | TIOCGSID => {
            if !ctty::has_ctty(tty, ctx.p) {
                return Err(Errno::ENOTTY);
            }
            let v = {
                let s = tty.st.lock();
                if req == TIOCGPGRP { s.pgrp } else { s.session }
            };
            ctx.copyout_i32(arg, v)?;
        }
        TIOCSPGRP => {
            if !ctty::has_ctty(tty, ctx.p) {
                return Err(Errno::ENOTTY);
            }
            let mut b = [0u8; 4];
            ctx.copyin(arg, &mut b)?;
            change(ctx)?;
            ctty::set_pgrp(tty, ctx.p, i32::from_le_bytes(b))?;
        }
        TIOCSCTTY => ctty::acquire(tty, ctx.p, arg == 1)?,
        TIOCNOTTY => ctty::release(tty, ctx.p)?,
        FIONREAD => {
            let n = tty.st.lock().ld.available();
            ctx.copyout_i32(arg, n as i32)?;
        }
        TIOCOUTQ => ctx.copyout_i32(arg, 0)?,
        TCFLSH => {
            if arg > TCIOFLUSH {
                return Err(Errno::EINVAL);
            }
            change(ctx)?;
            if arg == TCIFLUSH || arg == TCIOFLUSH {
                tty.st.lock().ld.flush_input();
            }
        }
        TCXONC => {
            if arg > 3 {
                return Err(Errno::EINVAL);
            }
            change(ctx)?;
            // TCOOFF / TCOON suspend and restart output; TCIOFF / TCION would send STOP / START
            // to the other end, and the host terminal needs neither.
            match arg {
                TCOOFF => tty.st.lock().ld.stopped = true,
                TCOON => {
                    tty.st.lock().ld.stopped = false;
                    super::wake(tty);
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
