//! `vkctl [-C socket] COMMAND [ARGS…]`: talk to a running kernel through its control socket
//! (`kernel -C`), as UML's `uml_mconsole` does. It knows the kernel only through the protocol
//! (`kvm_mem::ctl`): one request per connection, the reply's text printed as it comes.
//!
//! Without `-C`, the socket is found in the default directory (`$XDG_RUNTIME_DIR/vk`, else
//! `/tmp/vk-UID`): the one `PID.ctl` whose kernel is alive; several are an error that lists
//! them. Exit status: 0 for an OK reply, 1 for an error reply or no answer, 2 for bad usage.

use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kvm_mem::ctl as proto;

const USAGE: &str = "usage: vkctl [-C socket] command [args...]
commands: status, ps, stacks, dmesg, ktrace PID on|off, break, halt, reboot, help";

/// How long the kernel may take to answer (the kernel's own limit is 30 s).
const TIMEOUT: Duration = Duration::from_secs(40);

/// Sockets of live kernels in `dir` (`PID.ctl` with /proc/PID present), sorted.
pub fn live_sockets(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            let name = e.file_name();
            name.to_str()
                .and_then(proto::pid_of_socket)
                .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists())
        })
        .map(|e| e.path())
        .collect();
    found.sort();
    found
}

/// The socket to use: `-C`'s, or the only live one in the default directory.
pub fn find_socket(given: Option<&str>) -> Result<PathBuf, String> {
    if let Some(p) = given {
        return Ok(PathBuf::from(p));
    }
    let uid = std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0);
    let dir = proto::default_dir(std::env::var_os("XDG_RUNTIME_DIR").as_deref(), uid);
    let live = live_sockets(&dir);
    match live.as_slice() {
        [] => Err(format!("no running kernel has a control socket in {} (give -C)", dir.display())),
        [one] => Ok(one.clone()),
        many => Err(format!(
            "several kernels are running; choose one with -C: {}",
            many.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" ")
        )),
    }
}

/// Send `command` to the kernel at `socket`; the decoded reply.
pub fn request(socket: &Path, command: &str) -> Result<proto::Reply, String> {
    let mut s = UnixStream::connect(socket).map_err(|e| format!("{}: {e}", socket.display()))?;
    let _ = s.set_read_timeout(Some(TIMEOUT));
    s.write_all(&proto::encode_request(command)).map_err(|e| format!("{}: {e}", socket.display()))?;
    s.shutdown(std::net::Shutdown::Write).map_err(|e| format!("{}: {e}", socket.display()))?;
    let mut reply = Vec::new();
    s.take(proto::MAX_REPLY as u64 + 1).read_to_end(&mut reply).map_err(|e| format!("{}: {e}", socket.display()))?;
    proto::decode_reply(&reply).map_err(|e| format!("{}: {e}", socket.display()))
}

/// The program: returns its exit status.
pub fn main(args: &[String]) -> i32 {
    let mut socket = None;
    let mut rest = args;
    match rest.first().map(String::as_str) {
        Some("-h" | "--help") => {
            println!("{USAGE}");
            return 0;
        }
        Some("-C") => {
            let Some(p) = rest.get(1) else {
                eprintln!("vkctl: -C needs a socket path\n{USAGE}");
                return 2;
            };
            socket = Some(p.as_str());
            rest = &rest[2..];
        }
        Some(a) if a.starts_with("-C") => {
            socket = Some(&a[2..]);
            rest = &rest[1..];
        }
        _ => {}
    }
    if rest.is_empty() {
        eprintln!("{USAGE}");
        return 2;
    }
    let path = match find_socket(socket) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("vkctl: {e}");
            return 1;
        }
    };
    match request(&path, &rest.join(" ")) {
        Ok(r) if r.ok => {
            print!("{}", r.text);
            0
        }
        Ok(r) => {
            eprintln!("vkctl: {}", r.text);
            1
        }
        Err(e) => {
            eprintln!("vkctl: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_live_kernels_sockets_count() {
        let dir = std::env::temp_dir().join(format!("vkctl-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let me = std::process::id();
        std::fs::write(dir.join(format!("{me}.ctl")), b"").unwrap();
        std::fs::write(dir.join("4194999.ctl"), b"").unwrap(); // above pid_max: never alive
        std::fs::write(dir.join("notes.txt"), b"").unwrap();
        assert_eq!(live_sockets(&dir), vec![dir.join(format!("{me}.ctl"))]);
        assert_eq!(find_socket(Some("/x/y.ctl")).unwrap(), PathBuf::from("/x/y.ctl"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn usage_errors() {
        assert_eq!(main(&[]), 2);
        assert_eq!(main(&["-C".to_string()]), 2);
        assert_eq!(main(&["-h".to_string()]), 0);
        assert_eq!(main(&["-C/nonexistent/k.ctl".to_string(), "ps".to_string()]), 1);
    }
}
