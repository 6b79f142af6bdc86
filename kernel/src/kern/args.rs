//! The `kernel` command line, after vkernel(7): `-m`, `-n`, `-i`, `-r`/`-R`, `-p`, `-s`, `-e`,
//! `-v`, `-h`, `-C` (the control socket), and `--` arguments for init.
//!
//! Parsing is getopt-like: an option's value may be attached (`-m64m`) or separate (`-m 64m`),
//! flags may be grouped (`-sv`). Every problem is one line naming the option and exit status 2,
//! reported before anything starts.

use std::fmt;
use std::path::PathBuf;

/// The most CPUs `-n` accepts.
pub const MAX_NCPUS: u32 = 16;
/// Default physical memory (`-m`).
pub const DEFAULT_MEM: u64 = 64 << 20;
/// Default CPU count (`-n`).
pub const DEFAULT_NCPUS: u32 = 2;

/// A disk given with `-r` (read/write) or `-R` (copy-on-write).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskArg {
    pub path: PathBuf,
    pub cow: bool,
    pub is_dir: bool,
}

/// Where the control socket goes (`-C`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CtlArg {
    /// `$XDG_RUNTIME_DIR/vk/PID.ctl`, else `/tmp/vk-UID/PID.ctl`.
    #[default]
    Default,
    /// `-C none`: no control socket.
    Off,
    Path(PathBuf),
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootArgs {
    /// Physical memory in bytes (`-m`), a multiple of the page size.
    pub mem_bytes: u64,
    /// Virtual CPUs (`-n`).
    pub ncpus: u32,
    /// Memory image file instead of a memfd (`-i`).
    pub mem_image: Option<PathBuf>,
    /// Disks: vkd0, vkd1, … in order; the first is root.
    pub disks: Vec<DiskArg>,
    /// Where to write our pid (`-p`).
    pub pidfile: Option<PathBuf>,
    /// Single user (`-s`).
    pub single_user: bool,
    /// Kernel environment (`-e name=value[:name=value…]`), in order given.
    pub env: Vec<(String, String)>,
    /// Verbose boot (`-v`).
    pub verbose: bool,
    /// The control socket (`-C`).
    pub ctl: CtlArg,
    /// Arguments after `--`, for init.
    pub init_args: Vec<String>,
}

impl Default for BootArgs {
    fn default() -> Self {
        BootArgs {
            mem_bytes: DEFAULT_MEM,
            ncpus: DEFAULT_NCPUS,
            mem_image: None,
            disks: Vec::new(),
            pidfile: None,
            single_user: false,
            env: Vec::new(),
            verbose: false,
            ctl: CtlArg::Default,
            init_args: Vec::new(),
        }
    }
}

/// The outcome of parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Boot(BootArgs),
    Help,
}

/// A command-line problem (printed as `kernel: <this>`, exit status 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgError(pub String);

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ArgError {}

fn err(msg: impl Into<String>) -> ArgError {
    ArgError(msg.into())
}

/// The usage text for `-h`.
pub fn usage() -> &'static str {
    "usage: kernel [-hsv] [-m size] [-n ncpus] [-i memimage] [-p pidfile] [-C socket|none]\n\
     \x20             [-r image|dir]... [-R image]... [-e name=value[:name=value...]]... [-- init args]\n\
     \n\
     \x20 -m size     physical memory, bytes or with k, m, g suffix (default 64m)\n\
     \x20 -n ncpus    virtual CPUs, 1-16 (default 2)\n\
     \x20 -i file     keep physical memory in this file instead of anonymous memory\n\
     \x20 -r image    disk vkd0, vkd1, ... read/write; the first is root; a directory is\n\
     \x20             mounted read-only as the root (hostfs)\n\
     \x20 -R image    the same, copy-on-write: the image file is never written\n\
     \x20 -p file     write the kernel's pid to file\n\
     \x20 -C socket   serve the control socket (vkctl) there; none: no socket (default\n\
     \x20             $XDG_RUNTIME_DIR/vk/PID.ctl, else /tmp/vk-UID/PID.ctl)\n\
     \x20 -s          single user: a root shell on the console\n\
     \x20 -e env      kernel environment, e.g. init=/bin/sh, debug.trap=1, debug.panic=1,\n\
     \x20             debug.stack_overflow=1, debug.spin=1 (hang a CPU in a loop),\n\
     \x20             rootwait=1 (wait for a root file system instead of panicking),\n\
     \x20             debug.watchdog=N (break into a CPU stuck N s; 10, 0 off),\n\
     \x20             dumpdir=DIR (a panic writes a crash dump vmcore.N there)\n\
     \x20 -v          verbose boot\n\
     \x20 -h          this help\n\
     \x20 -- args     arguments for init\n"
}

/// Parse a size: bytes, or a number with a k, m or g suffix (powers of 1024).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (digits, mult) = match s.char_indices().last()? {
        (i, 'k' | 'K') => (&s[..i], 1u64 << 10),
        (i, 'm' | 'M') => (&s[..i], 1 << 20),
        (i, 'g' | 'G') => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(mult)
}

use platform::host::os_message;

/// Check a disk argument exists and is readable.
fn check_disk(opt: char, path: &str) -> Result<DiskArg, ArgError> {
    let p = PathBuf::from(path);
    let meta = std::fs::metadata(&p).map_err(|e| err(format!("-{opt} {path}: {}", os_message(&e))))?;
    let is_dir = meta.is_dir();
    let probe = if is_dir { std::fs::read_dir(&p).map(|_| ()) } else { std::fs::File::open(&p).map(|_| ()) };
    probe.map_err(|e| err(format!("-{opt} {path}: {}", os_message(&e))))?;
    if !is_dir && !meta.is_file() && !meta.file_type_is_block() {
        return Err(err(format!("-{opt} {path}: not a regular file, block device or directory")));
    }
    if is_dir && opt == 'R' {
        return Err(err(format!("-R {path}: a directory cannot be opened copy-on-write; use -r")));
    }
    Ok(DiskArg { path: p, cow: opt == 'R', is_dir })
}

trait BlockDev {
    fn file_type_is_block(&self) -> bool;
}

impl BlockDev for std::fs::Metadata {
    fn file_type_is_block(&self) -> bool {
        use std::os::unix::fs::FileTypeExt;
        self.file_type().is_block_device()
    }
}

fn parse_env(spec: &str, env: &mut Vec<(String, String)>) -> Result<(), ArgError> {
    for item in spec.split(':') {
        let Some((name, value)) = item.split_once('=') else {
            return Err(err(format!("-e {spec}: '{item}' is not name=value")));
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-') {
            return Err(err(format!("-e {spec}: bad variable name '{name}'")));
        }
        env.push((name.to_string(), value.to_string()));
    }
    Ok(())
}

/// Parse the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Command, ArgError> {
    let mut a = BootArgs::default();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if arg == "--" {
            a.init_args = args[i..].to_vec();
            break;
        }
        let Some(flags) = arg.strip_prefix('-').filter(|f| !f.is_empty()) else {
            return Err(err(format!("unexpected argument '{arg}' (init arguments go after --)")));
        };
        for (pos, c) in flags.char_indices() {
            match c {
                'h' => return Ok(Command::Help),
                's' => a.single_user = true,
                'v' => a.verbose = true,
                'm' | 'n' | 'i' | 'r' | 'R' | 'p' | 'e' | 'C' => {
                    let attached = &flags[pos + c.len_utf8()..];
                    let value = if !attached.is_empty() {
                        attached.to_string()
                    } else if i < args.len() {
                        i += 1;
                        args[i - 1].clone()
                    } else {
                        return Err(err(format!("-{c}: option requires an argument")));
                    };
                    apply(&mut a, c, &value)?;
                    break;
                }
                other => return Err(err(format!("unknown option -{other} (try -h)"))),
            }
        }
    }
    Ok(Command::Boot(a))
}

fn apply(a: &mut BootArgs, opt: char, value: &str) -> Result<(), ArgError> {
    match opt {
        'm' => {
            let bytes = parse_size(value)
                .ok_or_else(|| err(format!("-m {value}: bad memory size (want bytes or a number with k, m or g)")))?;
            let bytes = bytes & !(platform::PAGE_SIZE as u64 - 1);
            if bytes < platform::physmem::MIN_PHYSMEM {
                return Err(err(format!("-m {value}: too little memory (at least 8m)")));
            }
            if bytes > platform::physmem::MAX_PHYSMEM {
                return Err(err(format!("-m {value}: too much memory (at most 1024g)")));
            }
            a.mem_bytes = bytes;
        }
        'n' => {
            let n: u32 = value.parse().map_err(|_| err(format!("-n {value}: not a number of CPUs")))?;
            if !(1..=MAX_NCPUS).contains(&n) {
                return Err(err(format!("-n {value}: CPU count out of range (1-{MAX_NCPUS})")));
            }
            a.ncpus = n;
        }
        'i' => {
            if value.is_empty() {
                return Err(err("-i: empty file name"));
            }
            a.mem_image = Some(PathBuf::from(value));
        }
        'r' | 'R' => a.disks.push(check_disk(opt, value)?),
        'p' => {
            if value.is_empty() {
                return Err(err("-p: empty file name"));
            }
            a.pidfile = Some(PathBuf::from(value));
        }
        'e' => parse_env(value, &mut a.env)?,
        'C' => {
            a.ctl = match value {
                "" => return Err(err("-C: empty socket path")),
                "none" => CtlArg::Off,
                v => CtlArg::Path(PathBuf::from(v)),
            }
        }
        _ => return Err(err(format!("unknown option -{opt}"))),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Command, ArgError> {
        parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    fn boot(args: &[&str]) -> BootArgs {
        match p(args) {
            Ok(Command::Boot(b)) => b,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let b = boot(&[]);
        assert_eq!(b.mem_bytes, 64 << 20);
        assert_eq!(b.ncpus, 2);
        assert!(b.disks.is_empty());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64m"), Some(64 << 20));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("65536k"), Some(64 << 20));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("m"), None);
        assert_eq!(parse_size("12x"), None);
        assert_eq!(parse_size("-5m"), None);
        assert_eq!(parse_size("99999999999999999999g"), None);
        assert_eq!(parse_size(""), None);
    }

    #[test]
    fn attached_and_separate_values_and_grouped_flags() {
        let b = boot(&["-m128m", "-n", "4", "-sv", "-e", "init=/bin/sh:debug.trap=1", "--", "sh", "-c", "echo"]);
        assert_eq!(b.mem_bytes, 128 << 20);
        assert_eq!(b.ncpus, 4);
        assert!(b.single_user && b.verbose);
        assert_eq!(b.ctl, CtlArg::Default);
        assert_eq!(boot(&["-C", "none"]).ctl, CtlArg::Off);
        assert_eq!(boot(&["-C/tmp/k.ctl"]).ctl, CtlArg::Path("/tmp/k.ctl".into()));
        assert_eq!(b.env, vec![("init".into(), "/bin/sh".into()), ("debug.trap".into(), "1".into())]);
        assert_eq!(b.init_args, vec!["sh", "-c", "echo"]);
    }

    #[test]
    fn help() {
        assert_eq!(p(&["-h"]), Ok(Command::Help));
        assert_eq!(p(&["-vh"]), Ok(Command::Help));
    }

    #[test]
    fn errors_name_the_option() {
        let e = |args: &[&str]| p(args).unwrap_err().0;
        assert!(e(&["-m", "lots"]).starts_with("-m lots: bad memory size"));
        assert!(e(&["-m", "1m"]).contains("too little memory"));
        assert!(e(&["-n", "0"]).contains("out of range"));
        assert!(e(&["-n", "17"]).contains("out of range"));
        assert!(e(&["-n", "two"]).contains("not a number"));
        assert!(e(&["-x"]).contains("unknown option -x"));
        assert!(e(&["-m"]).contains("requires an argument"));
        assert!(e(&["-e", "novalue"]).contains("not name=value"));
        assert!(e(&["-e", "=1"]).contains("bad variable name"));
        assert!(e(&["stray"]).contains("unexpected argument"));
        assert!(e(&["-r", "/nonexistent/rootimg.01"]).contains("No such file or directory"));
        assert!(e(&["-R", "/tmp"]).contains("copy-on-write"));
        assert!(e(&["-C", ""]).contains("-C: empty socket path"));
    }

    #[test]
    fn disks_are_checked_and_ordered() {
        let dir = std::env::temp_dir();
        let f = dir.join(format!("vk-args-test-{}", std::process::id()));
        std::fs::write(&f, b"x").unwrap();
        let fs = f.to_str().unwrap();
        let b = boot(&["-r", fs, "-R", fs, "-r", dir.to_str().unwrap()]);
        assert_eq!(b.disks.len(), 3);
        assert!(!b.disks[0].cow && b.disks[1].cow && b.disks[2].is_dir);
        std::fs::remove_file(&f).unwrap();
    }
}
