//! Terminals: the console tty and the pseudo-terminals' slaves ([`pty`]). The console is as
//! DragonFly's vkernel console: the host terminal is in raw mode while the kernel runs, and
//! this is the terminal the guest sees — a line discipline ([`ldisc`]), termios
//! ([`termios`]), window size, the controlling terminal and job control ([`ctty`]), and its
//! ioctls ([`ioctl`]). A pty slave is the same [`Tty`] with another end: its input comes
//! from writes to the master, its output (and echo) goes to the master's read queue.
//!
//! * Input arrives like a keyboard interrupt: the platform's console input thread reads the
//!   host's stdin and [`input`] runs on cpu0 at a safe point; it feeds the line discipline,
//!   writes the echo, signals the foreground process group and wakes readers (who sleep in
//!   "ttyin") and pollers.
//! * `^\` is not a key the guest gets: it breaks into the debugger (the platform sees it
//!   before the line discipline), so the guest never gets SIGQUIT from the keyboard.
//! * When the host's stdin or stdout is not a terminal (batch runs, pipes) the console is no
//!   tty: bytes pass unprocessed both ways, tty ioctls fail with ENOTTY, and there is no
//!   controlling terminal or job control.
//! * Output goes to the host through platform's console output queue (a host thread writes
//!   it, so a CPU never blocks on the terminal). After ^S (IXON) or TCOOFF a writer sleeps in
//!   "ttyout" until ^Q, TCOON or IXON is turned off; echo and kernel messages still go out.


pub mod ctty;
pub mod ioctl;
pub mod ldisc;
pub mod pty;
pub mod termios;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use platform::console_input::Input;
use platform::sync::SpinLock;
use zerocopy::FromBytes;

use crate::fs::vfs::{POLLIN, POLLOUT, poll_wakeup};
use crate::kern::errno::Errno;
use crate::kern::sleep::{SleepOpts, sleepq_lock, tsleep_locked, wakeup, wchan_of};
use crate::kern::thread::WakeReason;
use ldisc::LineDisc;
use termios::{ICANON, TOSTOP, Termios, VMIN, VTIME};

/// Device numbers: /dev/tty (5,0), /dev/console (5,1), /dev/ptmx (5,2).
pub const DEV_TTY: u64 = 0x500;
pub const DEV_CONSOLE: u64 = 0x501;
pub const DEV_PTMX: u64 = 0x502;

/// Window size as TIOCGWINSZ returns it: rows, columns, x and y pixels.
pub use crate::abi::tty::Winsize;

/// A terminal's state.
#[derive(Debug)]
pub struct State {
    pub ld: LineDisc,
    pub winsize: Winsize,
    /// The session it is the controlling terminal of (0: none).
    pub session: i32,
    /// The foreground process group.
    pub pgrp: i32,
    /// The host's input ended.
    pub ended: bool,
}

/// A terminal: the console, or a pty's slave.
#[derive(Debug)]
pub struct Tty {
    /// A terminal with a line discipline: always for a pty; for the console, when host stdin
    /// and stdout are terminals (else a plain byte pipe).
    pub enabled: bool,
    /// Its device number (what a process's `tty` record holds while it is its controlling
    /// terminal): 5,1 for the console, 136,N for /dev/pts/N.
    pub dev: u64,
    pub st: SpinLock<State>,
    /// Where output goes: the host (None) or a pty master's read queue.
    master: Option<Arc<pty::Master>>,
}

static CONSOLE: OnceLock<Arc<Tty>> = OnceLock::new();

/// The console tty, shared.
pub fn console_arc() -> &'static Arc<Tty> {
    CONSOLE.get_or_init(|| {
        let enabled = platform::console::stdin_is_terminal() && platform::console::stdout_is_terminal();
        let t = platform::console::saved_kernel_termios()
            .and_then(|b| crate::abi::tty::Termios::read_from_bytes(&b).ok())
            .map(|t| Termios::from_guest(&t))
            .unwrap_or_default();
        let (rows, cols) = platform::console::window_size().unwrap_or((24, 80));
        let ws = Winsize { ws_row: rows, ws_col: cols, ..Winsize::default() };
        Arc::new(Tty { enabled, dev: DEV_CONSOLE, st: SpinLock::new("tty", State::new(t, ws)), master: None })
    })
}

/// The console tty.
pub fn console() -> &'static Tty {
    console_arc()
}

impl State {
    fn new(t: Termios, winsize: Winsize) -> State {
        State { ld: LineDisc::new(t), winsize, session: 0, pgrp: 0, ended: false }
    }
}

/// The terminal with device number `dev` (the console or a live pty slave).
pub fn by_dev(dev: u64) -> Option<Arc<Tty>> {
    if dev == DEV_CONSOLE {
        return Some(Arc::clone(console_arc()));
    }
    pty::by_dev(dev)
}

/// Boot: take the host terminal (raw mode) and start the console input thread.
pub fn init() {
    let tty = console();
    if tty.enabled {
        platform::console::raw_mode();
    }
    platform::console_input::start(input, tty.enabled);
}

fn chan(tty: &Tty) -> u64 {
    wchan_of(tty)
}

/// Wake readers and pollers: input or modes changed.
pub fn wake(tty: &Tty) {
    wakeup(chan(tty));
    poll_wakeup();
}

/// The console input "interrupt" (cpu0, at a safe point).
fn input(i: Input) {
    let tty = console();
    match i {
        Input::Bytes(b) => tty.receive(&b),
        Input::End => tty.hangup_input(),
    }
}

impl Tty {
    /// Bytes typed at the terminal (the host keyboard, or writes to a pty master): through
    /// the line discipline, echoed, signals to the foreground group, readers woken.
    pub fn receive(&self, bytes: &[u8]) {
        let mut sigs = Vec::new();
        let (echo, pgrp) = {
            let mut s = self.st.lock();
            if self.enabled {
                sigs.extend(bytes.iter().filter_map(|&c| s.ld.receive(c)));
            } else {
                s.ld.push_raw(bytes);
            }
            (s.ld.take_echo(), s.pgrp)
        };
        if !echo.is_empty() {
            self.emit(&echo);
        }
        for sig in sigs {
            ctty::signal_pgrp(pgrp, sig);
        }
        wake(self);
    }

    /// The input side ended (host end of file, a pty's master closed): what is being edited
    /// becomes readable, then reads return end of file.
    pub fn hangup_input(&self) {
        {
            let mut s = self.st.lock();
            s.ld.hangup();
            s.ended = true;
        }
        wake(self);
    }

    /// Processed output (and echo) to wherever this terminal shows it.
    fn emit(&self, bytes: &[u8]) {
        match &self.master {
            None => crate::kern::printf::cons_write_guest(bytes),
            Some(m) => m.push_output(bytes),
        }
    }

    /// The pty master this is the slave of (None: the console).
    pub fn master(&self) -> Option<&Arc<pty::Master>> {
        self.master.as_ref()
    }
}

/// The host terminal was resized (main thread): new size and SIGWINCH, on cpu0.
pub fn host_winch() {
    platform::cpu::post_call(0, || {
        let Some((rows, cols)) = platform::console::window_size() else { return };
        let tty = console();
        let ws = {
            let s = tty.st.lock();
            Winsize { ws_row: rows, ws_col: cols, ..s.winsize }
        };
        set_winsize(tty, ws);
    });
}

/// Set the window size; SIGWINCH to the foreground group if it changed.
pub fn set_winsize(tty: &Tty, ws: Winsize) {
    let pgrp = {
        let mut s = tty.st.lock();
        if s.winsize == ws {
            return;
        }
        s.winsize = ws;
        s.pgrp
    };
    ctty::signal_pgrp(pgrp, crate::kern::signal::SIGWINCH);
}

impl Tty {
    /// Whether a read would return now (poll's POLLIN).
    fn readable(&self, s: &State) -> bool {
        if s.ended {
            return true;
        }
        if self.enabled && s.ld.t.lflag(ICANON) { s.ld.line_ready() } else { s.ld.available() > 0 }
    }

    /// read(2).
    pub fn read(&self, buf: &mut [u8], nonblock: bool) -> Result<usize, Errno> {
        if self.enabled {
            ctty::check_current(self, ctty::Access::Read)?;
        }
        if buf.is_empty() {
            return Ok(0);
        }
        // VTIME's timer: started by the first byte (VMIN > 0) or the read (VMIN == 0).
        let mut deadline: Option<u64> = None;
        let mut seen = 0usize;
        loop {
            let g = sleepq_lock(chan(self));
            let mut s = self.st.lock();
            let now = platform::time::uptime_ns();
            let avail = s.ld.available();
            let ready = if !self.enabled {
                avail > 0 || s.ended
            } else if s.ld.t.lflag(ICANON) {
                s.ld.line_ready() || s.ended
            } else {
                let (min, time) = (usize::from(s.ld.t.cc[VMIN]), u64::from(s.ld.t.cc[VTIME]) * 100_000_000);
                let want = min.min(buf.len());
                if time > 0 && min == 0 && deadline.is_none() {
                    deadline = Some(now + time);
                }
                if time > 0 && min > 0 && avail > 0 && avail != seen {
                    // The inter-byte timer restarts at each byte.
                    deadline = Some(now + time);
                    seen = avail;
                }
                let expired = deadline.is_some_and(|d| now >= d);
                s.ended || (min == 0 && (time == 0 || avail > 0 || expired)) || (min > 0 && (avail >= want || (avail > 0 && expired)))
            };
            if ready {
                let n = s.ld.read(buf);
                drop(s);
                drop(g);
                return Ok(n);
            }
            drop(s);
            if !self.enabled && self.master.is_none() {
                platform::console_input::demand();
            }
            if nonblock {
                return Err(Errno::EAGAIN);
            }
            let timeout = deadline.map(|d| Duration::from_nanos(d.saturating_sub(now).max(1)));
            if tsleep_locked(g, "ttyin", SleepOpts { interruptible: true, timeout }) == WakeReason::Interrupted {
                return Err(Errno::ERESTARTSYS);
            }
            if self.enabled {
                ctty::check_current(self, ctty::Access::Read)?;
            }
        }
    }

    /// write(2): output processing, then straight to the host (or the pty master).
    pub fn write(&self, buf: &[u8]) -> Result<usize, Errno> {
        if let Some(m) = &self.master {
            // A hung-up pty slave (master closed): EIO.
            m.wait_room()?;
        }
        if !self.enabled {
            crate::kern::printf::cons_write_guest(buf);
            return Ok(buf.len());
        }
        if self.st.lock().ld.t.lflag(TOSTOP) {
            ctty::check_current(self, ctty::Access::Write)?;
        }
        // Output stopped (^S): wait for ^Q.
        loop {
            let g = sleepq_lock(chan(self));
            if !self.st.lock().ld.stopped {
                break;
            }
            if tsleep_locked(g, "ttyout", SleepOpts { interruptible: true, timeout: None }) == WakeReason::Interrupted {
                return Err(Errno::ERESTARTSYS);
            }
        }
        let mut out = Vec::with_capacity(buf.len() + buf.len() / 8);
        self.st.lock().ld.opost(buf, &mut out);
        self.emit(&out);
        Ok(buf.len())
    }

    /// poll(2) readiness.
    pub fn poll(&self) -> u16 {
        let readable = self.readable(&self.st.lock());
        if !readable && !self.enabled && self.master.is_none() {
            platform::console_input::demand();
        }
        if let Some(m) = &self.master
            && m.is_closed()
        {
            // A hung-up slave: readable (end of file) and POLLHUP.
            return POLLIN | POLLOUT | crate::fs::vfs::POLLHUP;
        }
        POLLOUT | if readable { POLLIN } else { 0 }
    }
}
