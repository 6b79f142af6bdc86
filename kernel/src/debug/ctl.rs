//! The control socket (UML's mconsole, for vk): `kernel -C PATH` (by default
//! `$XDG_RUNTIME_DIR/vk/PID.ctl`, else `/tmp/vk-UID/PID.ctl`; `-C none`: none) takes requests
//! from `vkctl` on the host while the machine runs.
//!
//! The socket's host side is platform's (`platform::ctl`: a host thread accepts, reads, and
//! writes the reply); the protocol is `kvm_mem::ctl`'s. Each request is posted to cpu0 as an
//! interrupt, which queues it for the `vkctl` kernel thread: requests are served by kernel
//! code, one at a time, seeing the kernel as any kernel thread does. A request that does not
//! decode gets an error reply, never more.
//!
//! | command            | reply |
//! |--------------------|-------|
//! | `status`           | version, uptime, CPUs, memory, processes and threads, load |
//! | `ps`               | the process list (`vps`'s) |
//! | `stacks`           | every thread's kernel stack, without stopping the machine (gVisor's `runsc debug --stacks`): a thread off CPU unwound from the context `cpu_switch` saved, with ddb's unwinder and format; one on a CPU is "running on cpuN" |
//! | `dmesg`            | the message buffer |
//! | `ktrace PID on/off`| trace one process's system calls on the console (ddb's `ktrace`) |
//! | `break`            | enter ddb on the console |
//! | `halt`, `reboot`   | as ddb's: sync, and leave with status 0 (or re-execute) |
//! | `help`             | this list |
//!
//! A trace of a thread that starts running while it is read may be torn: the stack is read
//! through `/proc/self/mem` (never a fault) and the walk is bounded by the thread's stack.
//!
//! Lock order: `ctl_queue` is a leaf, taken under a sleep-queue bucket by the server.

use std::collections::VecDeque;
use std::fmt::Write;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;

use kvm_mem::abi::cpustate;
use kvm_mem::ctl as proto;
use kvm_mem::{Kvm, ProcMem};
use platform::ctl::{CtlRequest, ReplySent};
use platform::sync::SpinLock;

use crate::debug::target::KernelTarget;
use crate::kern::args::CtlArg;
use crate::kern::shutdown::Howto;
use crate::kern::sleep::{SleepOpts, sleepq_lock, tsleep_locked, wakeup, wchan_of};
use crate::kprintf;

static QUEUE: SpinLock<VecDeque<CtlRequest>> = SpinLock::new("ctl_queue", VecDeque::new());

fn chan() -> u64 {
    wchan_of(&QUEUE)
}

/// The commands and what they do (`help`).
const HELP: &str = "\
status             uptime, CPUs, memory, processes
ps                 the process list
stacks             every thread's kernel stack
dmesg              the console message buffer
ktrace PID on|off  print a process's system calls on the console
break              enter the debugger on the console
halt               sync and stop the machine
reboot             sync and restart the kernel
help               this list
";

/// Where the socket goes, from `-C`.
fn socket_path() -> Option<PathBuf> {
    match &crate::kern::init_main::boot_args().ctl {
        CtlArg::Off => None,
        CtlArg::Path(p) => Some(p.clone()),
        CtlArg::Default => {
            let uid = std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0);
            let dir = proto::default_dir(std::env::var_os("XDG_RUNTIME_DIR").as_deref(), uid);
            Some(proto::default_path(&dir, std::process::id()))
        }
    }
}

/// Start the server thread and the socket (the boot thread, once; `debug::install` asks).
pub fn start() {
    let Some(path) = socket_path() else { return };
    if let Err(e) = crate::kern::sched::kthread_start("vkctl", 0, ctl_main) {
        kprintf!("vkctl: cannot start the control thread: {e}\n");
        return;
    }
    let timeout = proto::encode_reply(Err("the kernel did not answer (is it in the debugger?)"));
    let deliver = Box::new(|req: CtlRequest| {
        // An interrupt: on cpu0 at its next safe point, never blocking the ctl host thread.
        platform::cpu::post_call(0, move || {
            QUEUE.lock().push_back(req);
            wakeup(chan());
        });
    });
    match platform::ctl::start(&path, timeout, deliver) {
        Ok(()) => kprintf!("vkctl: control socket {}\n", path.display()),
        Err(e) => kprintf!("vkctl: no control socket: {e}\n"),
    }
}

/// The server: take requests off the queue and answer them.
fn ctl_main() {
    let mut server = Server::new();
    loop {
        let g = sleepq_lock(chan());
        let next = QUEUE.lock().pop_front();
        match next {
            Some(req) => {
                drop(g);
                server.serve(req);
            }
            None => {
                tsleep_locked(g, "ctlwait", SleepOpts { interruptible: true, timeout: None });
            }
        }
    }
}

/// What the server reads the kernel with: kvm-mem over `/proc/self/mem`, as ddb and `vps`.
struct Server {
    kvm: Result<(Kvm, ProcMem), String>,
}

/// What a command does after its reply.
enum After {
    Nothing,
    Break,
    Shutdown(Howto),
}

impl Server {
    fn new() -> Server {
        let open = || -> Result<(Kvm, ProcMem), String> {
            let src = ProcMem::open_self().map_err(|e| e.to_string())?;
            let kvm = Kvm::from_roots(Box::new(src), crate::debug::export::roots()).map_err(|e| e.to_string())?;
            Ok((kvm, ProcMem::open_self().map_err(|e| e.to_string())?))
        };
        Server { kvm: open() }
    }

    fn kvm(&self) -> Result<&Kvm, String> {
        self.kvm.as_ref().map(|(k, _)| k).map_err(|e| format!("cannot read the kernel: {e}"))
    }

    fn serve(&mut self, req: CtlRequest) {
        let (result, after) = match proto::decode_request(req.bytes()) {
            Err(e) => (Err(format!("bad request: {e}")), After::Nothing),
            Ok(r) => self.command(&r.command, &r.args),
        };
        let reply = match &result {
            Ok(text) => proto::encode_reply(Ok(text)),
            Err(msg) => proto::encode_reply(Err(msg)),
        };
        let sent = req.reply(reply);
        match after {
            After::Nothing => {}
            After::Break => {
                wait_sent(&sent);
                crate::kern::kdb::enter("vkctl break");
            }
            After::Shutdown(how) => {
                wait_sent(&sent);
                kprintf!("\nvkctl: {} requested\n", if how == Howto::Halt { "halt" } else { "reboot" });
                crate::fs::ext2::sync_all();
                crate::kern::shutdown::kern_reboot(how);
            }
        }
    }

    fn command(&self, cmd: &str, args: &[String]) -> (Result<String, String>, After) {
        let no_args = |r: Result<String, String>| {
            if args.is_empty() { r } else { Err(format!("{cmd} takes no arguments")) }
        };
        match cmd {
            "help" => (no_args(Ok(HELP.to_string())), After::Nothing),
            "status" => (no_args(self.status()), After::Nothing),
            "ps" => (no_args(self.ps()), After::Nothing),
            "stacks" => (no_args(self.stacks()), After::Nothing),
            "dmesg" => (no_args(self.kvm().and_then(|k| k.msgbuf().map_err(|e| e.to_string()))), After::Nothing),
            "ktrace" => {
                if args.len() > 2 {
                    return (Err("usage: ktrace [PID [on|off]]".to_string()), After::Nothing);
                }
                (crate::debug::locks::ktrace(&args.join(" ")), After::Nothing)
            }
            "break" | "halt" | "reboot" => {
                if !args.is_empty() {
                    return (Err(format!("{cmd} takes no arguments")), After::Nothing);
                }
                match cmd {
                    "break" => (Ok("entering the debugger on the console\n".to_string()), After::Break),
                    "halt" => (Ok("halting\n".to_string()), After::Shutdown(Howto::Halt)),
                    _ => (Ok("rebooting\n".to_string()), After::Shutdown(Howto::Reboot)),
                }
            }
            other => (Err(format!("unknown command '{}' (try help)", other.escape_debug())), After::Nothing),
        }
    }

    fn status(&self) -> Result<String, String> {
        let kvm = self.kvm()?;
        let mut o = String::new();
        let up = platform::time::uptime_ns() / 1_000_000_000;
        let _ = writeln!(
            o,
            "vk {}, host pid {}, up {}d {:02}:{:02}:{:02}",
            env!("CARGO_PKG_VERSION"),
            std::process::id(),
            up / 86400,
            up / 3600 % 24,
            up / 60 % 60,
            up % 60
        );
        let cpus = kvm.pcpus().map_err(|e| e.to_string())?;
        let states: Vec<String> = cpus
            .iter()
            .map(|c| {
                let s = match c.state {
                    cpustate::RUNNING => "running",
                    cpustate::IDLE => "idle",
                    cpustate::STOPPED => "stopped",
                    cpustate::DDB => "in ddb",
                    _ => "offline",
                };
                format!("cpu{} {s}", c.cpuid)
            })
            .collect();
        let _ = writeln!(o, "cpus: {} ({})", platform::cpu::ncpus(), states.join(", "));
        let m = crate::vm::meminfo::MemInfo::now();
        let kb = |pages: u64| pages * (platform::PAGE_SIZE as u64 / 1024);
        let _ = writeln!(
            o,
            "memory: {} kB, {} kB free ({} kB anonymous, {} kB file, {} kB kernel)",
            kb(m.total),
            kb(m.free),
            kb(m.anon),
            kb(m.file),
            kb(m.kernel)
        );
        let procs = kvm.procs().map_err(|e| e.to_string())?;
        let guests = procs.iter().filter(|p| p.pid > 0).count();
        let threads: usize = procs.iter().map(|p| p.threads.len()).sum();
        let _ = writeln!(o, "processes: {guests}, threads: {threads} (kernel threads included)");
        let l = crate::kern::loadavg::loads();
        let f = crate::kern::loadavg::format;
        let _ = writeln!(o, "load averages: {} {} {}", f(l[0]), f(l[1]), f(l[2]));
        Ok(o)
    }

    fn ps(&self) -> Result<String, String> {
        let procs = self.kvm()?.procs().map_err(|e| e.to_string())?;
        Ok(kvm_mem::ps::format_axl(&procs, platform::time::uptime_ns()))
    }

    fn stacks(&self) -> Result<String, String> {
        let (kvm, mem) = self.kvm.as_ref().map_err(|e| format!("cannot read the kernel: {e}"))?;
        let image = crate::debug::kdb::image().ok_or("no kernel symbols (the debugger is unavailable)")?;
        let target = KernelTarget::new(kvm, mem, None);
        let me = crate::kern::sched::curthread().map(|t| t.rec_addr());
        let mut o = String::new();
        for t in ddb::Target::threads(&target) {
            let _ = writeln!(o, "pid {} tid {} td {:#x} ({}) {}", t.pid, t.tid, t.addr, t.name, t.state);
            match (t.oncpu, t.saved) {
                (Some(_), _) => {
                    // The header says "running on cpuN": its stack is in use, not unwound.
                    if Some(t.addr) == me {
                        o.push_str("  (this thread, answering)\n");
                    }
                }
                (None, Some(frame)) => {
                    let trace = ddb::unwind::unwind(&image, &target, frame, t.stack);
                    for line in ddb::render_trace(&image, &trace).lines() {
                        let _ = writeln!(o, "  {line}");
                    }
                }
                (None, None) => o.push_str("  no saved context\n"),
            }
            o.push('\n');
        }
        Ok(o)
    }
}

/// Give the ctl host thread a moment to write a reply before the machine stops.
fn wait_sent(sent: &ReplySent) {
    for _ in 0..100 {
        if sent.written() {
            return;
        }
        crate::kern::sleep::pause("ctlsend", Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn help_lists_every_command() {
        for cmd in ["status", "ps", "stacks", "dmesg", "ktrace", "break", "halt", "reboot", "help"] {
            assert!(super::HELP.lines().any(|l| l.starts_with(cmd)), "{cmd}");
        }
    }
}
