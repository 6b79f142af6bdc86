//! `vps -M /proc/PID/mem [-N kernel]`: the process list of a vk kernel, read out of its
//! memory like `ps axl -M core -N system` on BSD. It works on a running kernel and on one
//! stopped in ddb — it needs ptrace access to the kernel process (same user; the kernel allows
//! any tracer under Yama) — and on a vmcore that ddb's `dump` wrote (`-M vmcore.0`).
//!
//! Exit status: 0 after printing the list, 1 when the kernel cannot be read (the message names
//! the file and what is wrong), 2 for a usage error.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use kvm_mem::{Kvm, KvmError};

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Args {
    List { mem: PathBuf, namelist: Option<PathBuf>, verbose: bool },
    Help,
}

pub const USAGE: &str = "\
usage: vps -M /proc/PID/mem|vmcore [-N kernel] [-v]
  -M core     the kernel's memory: /proc/PID/mem of a running (or ddb-stopped) vk kernel,
              or a vmcore.N that ddb's `dump` wrote
  -N system   the kernel executable to take symbols from (default /proc/PID/exe, or for a
              vmcore the executable it names)
  -v          also print, on stderr, where the roots were found
  -h          this help
";

/// Parse arguments (after the program name). Err is a one-line usage error.
pub fn parse(args: &[String]) -> Result<Args, String> {
    let (mut mem, mut namelist, mut verbose) = (None, None, false);
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (opt, attached) = match arg.as_str() {
            "-h" | "--help" => return Ok(Args::Help),
            "-v" => {
                verbose = true;
                continue;
            }
            a if a.starts_with("-M") || a.starts_with("-N") => a.split_at(2),
            a if a.starts_with('-') => return Err(format!("unknown option '{a}'")),
            a => return Err(format!("unexpected argument '{a}'")),
        };
        let value = match attached {
            "" => it.next().ok_or_else(|| format!("option {opt} requires an argument"))?.clone(),
            v => v.to_string(),
        };
        let slot = if opt == "-M" { &mut mem } else { &mut namelist };
        if slot.replace(PathBuf::from(value)).is_some() {
            return Err(format!("option {opt} given twice"));
        }
    }
    let mem = mem.ok_or_else(|| "-M /proc/PID/mem is required".to_string())?;
    Ok(Args::List { mem, namelist, verbose })
}

/// The kernel's monotonic time, ns since its boot, which its sleep times count from.
///
/// The kernel exports its boot time as host realtime (`vk_boottime_ns`) and stamps sleeps with
/// its monotonic clock; both come from the host's clocks, so realtime now minus boot time is
/// the kernel's uptime as long as nobody stepped the host's realtime clock since the kernel
/// booted (a step only shifts the S/I boundary of ps's STAT). Before the kernel has set its
/// boot time (0), or if it lies in the future, uptime is taken as 0: every sleeper shows `S`.
pub fn uptime_ns(boottime_ns: u64, now_realtime_ns: u64) -> u64 {
    if boottime_ns == 0 { 0 } else { now_realtime_ns.saturating_sub(boottime_ns) }
}

fn realtime_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Read the kernel and format its processes as `ps axl` does.
pub fn list(mem: &Path, namelist: Option<&Path>, verbose: bool) -> Result<String, KvmError> {
    let kvm = Kvm::open(mem, namelist)?;
    if verbose {
        let r = kvm.roots();
        eprintln!(
            "vps: {}: layout v{} at {:#x}, allproc at {:#x}, pcpu at {:#x}, msgbuf at {:#x}",
            mem.display(),
            kvm.layout().version,
            r.layout,
            r.allproc,
            r.pcpu,
            r.msgbuf
        );
    }
    let procs = kvm.procs()?;
    // A vmcore is seen as it was when it was dumped.
    let now = match kvm.dumped_at_ns() {
        Some(t) => t,
        None => uptime_ns(kvm.boottime_ns()?, realtime_ns()),
    };
    if verbose {
        eprintln!("vps: {} processes, uptime {}.{:03} s", procs.len(), now / 1_000_000_000, now / 1_000_000 % 1000);
    }
    Ok(kvm_mem::ps::format_axl(&procs, now))
}

/// The error line: errors that do not name a file read best after the `-M` argument.
pub fn error_line(mem: &Path, e: &KvmError) -> String {
    match e.path() {
        Some(_) => format!("vps: {e}"),
        None => format!("vps: {}: {e}", mem.display()),
    }
}

/// The whole program: returns the exit status.
pub fn main(args: &[String]) -> i32 {
    match parse(args) {
        Ok(Args::Help) => {
            print!("{USAGE}");
            0
        }
        Ok(Args::List { mem, namelist, verbose }) => match list(&mem, namelist.as_deref(), verbose) {
            Ok(out) => {
                print!("{out}");
                0
            }
            Err(e) => {
                eprintln!("{}", error_line(&mem, &e));
                1
            }
        },
        Err(e) => {
            eprintln!("vps: {e} (vps -h for help)");
            2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(a: &[&str]) -> Result<Args, String> {
        parse(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    fn list(mem: &str, namelist: Option<&str>, verbose: bool) -> Args {
        Args::List { mem: mem.into(), namelist: namelist.map(PathBuf::from), verbose }
    }

    #[test]
    fn options() {
        assert_eq!(p(&["-M", "/proc/1/mem"]), Ok(list("/proc/1/mem", None, false)));
        assert_eq!(p(&["-M/proc/1/mem", "-N", "run/kernel", "-v"]), Ok(list("/proc/1/mem", Some("run/kernel"), true)));
        assert_eq!(p(&["-Nk", "-M", "/proc/1/mem"]), Ok(list("/proc/1/mem", Some("k"), false)));
        assert_eq!(p(&["-M", "/proc/1/mem", "-h"]), Ok(Args::Help));
    }

    #[test]
    fn usage_errors() {
        assert_eq!(p(&[]), Err("-M /proc/PID/mem is required".to_string()));
        assert_eq!(p(&["-M"]), Err("option -M requires an argument".to_string()));
        assert_eq!(p(&["-x"]), Err("unknown option '-x'".to_string()));
        assert_eq!(p(&["-M", "a", "b"]), Err("unexpected argument 'b'".to_string()));
        assert_eq!(p(&["-M", "a", "-Mb"]), Err("option -M given twice".to_string()));
        assert_eq!(p(&["-N", "k"]), Err("-M /proc/PID/mem is required".to_string()));
    }

    #[test]
    fn uptime() {
        assert_eq!(uptime_ns(0, 5_000), 0);
        assert_eq!(uptime_ns(1_000, 5_000), 4_000);
        assert_eq!(uptime_ns(9_000, 5_000), 0);
    }

    #[test]
    fn errors_are_named_after_the_file() {
        let mem = Path::new("/proc/12/mem");
        let e = KvmError::Open { path: "/proc/12/mem".into(), msg: "no such process".into() };
        assert_eq!(error_line(mem, &e), "vps: /proc/12/mem: no such process");
        let e = KvmError::BadLayout { addr: 0x10, magic: 0 };
        assert!(error_line(mem, &e).starts_with("vps: /proc/12/mem: no vk layout at 0x10"));
        let e = KvmError::NoSymbol { path: "/bin/true".into(), symbol: "vk_layout".into() };
        assert_eq!(error_line(mem, &e), "vps: /bin/true: no symbol vk_layout: not a vk kernel");
    }
}
