//! `vps -M /proc/PID/mem [-N kernel]`: the process list of a vk kernel, read out of its
//! memory like `ps axl -M core -N system` on BSD.

use std::path::PathBuf;

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Args {
    List { mem: PathBuf, namelist: Option<PathBuf> },
    Help,
}

pub const USAGE: &str = "usage: vps -M /proc/PID/mem [-N kernel]\n\
  -M core     the kernel's memory: /proc/PID/mem of a running (or stopped) vk kernel\n\
  -N system   the kernel executable to take symbols from (default /proc/PID/exe)\n";

/// Parse arguments (after the program name). Err is a one-line usage error.
pub fn parse(args: &[String]) -> Result<Args, String> {
    let mut mem = None;
    let mut namelist = None;
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        i += 1;
        let (opt, attached) = match a {
            "-h" | "--help" => return Ok(Args::Help),
            _ if a.starts_with("-M") || a.starts_with("-N") => (&a[..2], &a[2..]),
            _ => return Err(format!("unknown argument '{a}'")),
        };
        let value = if !attached.is_empty() {
            attached.to_string()
        } else if i < args.len() {
            i += 1;
            args[i - 1].clone()
        } else {
            return Err(format!("{opt}: option requires an argument"));
        };
        if opt == "-M" { mem = Some(PathBuf::from(value)) } else { namelist = Some(PathBuf::from(value)) }
    }
    let mem = mem.ok_or_else(|| "-M /proc/PID/mem is required".to_string())?;
    Ok(Args::List { mem, namelist })
}

/// Read the kernel and format its processes.
pub fn list(mem: &std::path::Path, namelist: Option<&std::path::Path>) -> Result<String, kvm_mem::KvmError> {
    let kvm = kvm_mem::Kvm::open(mem, namelist)?;
    let procs = kvm.procs()?;
    // The kernel's sleep times count from its boot; its boot time is realtime.
    let now_real = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos().min(u128::from(u64::MAX)) as u64);
    let uptime = now_real.saturating_sub(kvm.boottime_ns()?);
    Ok(kvm_mem::ps::format_axl(&procs, uptime))
}

/// The whole program: returns the exit status.
pub fn main(args: &[String]) -> i32 {
    match parse(args) {
        Ok(Args::Help) => {
            print!("{USAGE}");
            0
        }
        Ok(Args::List { mem, namelist }) => match list(&mem, namelist.as_deref()) {
            Ok(out) => {
                print!("{out}");
                0
            }
            Err(e) => {
                eprintln!("vps: {e}");
                1
            }
        },
        Err(e) => {
            eprintln!("vps: {e} (try -h)");
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

    #[test]
    fn options() {
        assert_eq!(p(&["-M", "/proc/1/mem"]), Ok(Args::List { mem: "/proc/1/mem".into(), namelist: None }));
        assert_eq!(
            p(&["-M/proc/1/mem", "-N", "run/kernel"]),
            Ok(Args::List { mem: "/proc/1/mem".into(), namelist: Some("run/kernel".into()) })
        );
        assert_eq!(p(&["-h"]), Ok(Args::Help));
        assert!(p(&[]).unwrap_err().contains("-M /proc/PID/mem is required"));
        assert!(p(&["-M"]).unwrap_err().contains("requires an argument"));
        assert!(p(&["-x"]).unwrap_err().contains("unknown argument"));
    }
}
