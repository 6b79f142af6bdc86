//! The control socket's host side (`kernel -C PATH`, read by `vkctl`): a Unix stream socket
//! in a private directory, served by one host thread ("ctl") that is not a CPU.
//!
//! For each connection the thread checks the peer is this user (or root), reads the request
//! until the client shuts its side down (at most [`MAX_REQUEST`] bytes, [`READ_TIMEOUT`]),
//! hands it to the kernel ([`CtlRequest`], through the `deliver` callback, which must not
//! block), waits for the kernel's reply (at most [`REPLY_TIMEOUT`]; then the set-up's
//! timeout reply is sent), writes it and closes the connection. Connections are served one
//! at a time. The bytes are opaque here: the protocol is `kvm_mem::ctl`'s.
//!
//! The socket is removed when the process leaves ([`remove_socket`], from `host::exit` and
//! before a reboot's re-exec).

use std::ffi::CString;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{Sender, bounded};

/// The most request bytes read (one more than the protocol allows, so an overlong request is
/// seen as such).
pub const MAX_REQUEST: usize = 4097;
/// The most bytes of an overlong request read and thrown away.
const MAX_DRAIN: u64 = 1 << 20;
/// How long a client may take to send its request.
pub const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the kernel may take to answer.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a client may take to read the reply.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// The socket's path, for removal at exit (a C string: `remove_socket` may run in a signal
/// handler).
static SOCKET_PATH: OnceLock<CString> = OnceLock::new();
/// The reply sent when the kernel does not answer in time.
static TIMEOUT_REPLY: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// One request, as the client sent it; answered with [`CtlRequest::reply`].
#[derive(Debug)]
pub struct CtlRequest {
    bytes: Vec<u8>,
    reply: Sender<Vec<u8>>,
    written: Arc<AtomicBool>,
}

/// Whether a reply has reached the client's socket (the kernel waits for it before a halt).
#[derive(Debug, Clone)]
pub struct ReplySent(Arc<AtomicBool>);

impl ReplySent {
    pub fn written(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

impl CtlRequest {
    /// The request's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Send the reply (never blocks; a reply nobody waits for any more is dropped).
    pub fn reply(self, bytes: Vec<u8>) -> ReplySent {
        let _ = self.reply.try_send(bytes);
        ReplySent(self.written)
    }
}

/// Why the socket could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    #[error("{0}: {1}")]
    Io(String, io::Error),
    #[error("{0}: not a directory owned by this user with mode 0700")]
    UnsafeDir(String),
    #[error("{0}: another kernel is serving it")]
    InUse(String),
    #[error("{0}: exists and is not a socket")]
    NotSocket(String),
}

/// Make `dir` (mode 0700) if it is missing; refuse one that others could write to or that is
/// not this user's.
fn prepare_dir(dir: &Path) -> Result<(), CtlError> {
    let name = || dir.display().to_string();
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new().mode(0o700).recursive(true).create(dir).map_err(|e| CtlError::Io(name(), e))
        }
        Err(e) => Err(CtlError::Io(name(), e)),
        Ok(m) => {
            let me = std::fs::metadata("/proc/self").map(|s| s.uid()).unwrap_or(u32::MAX);
            if !m.is_dir() || m.uid() != me || m.mode() & 0o022 != 0 {
                return Err(CtlError::UnsafeDir(name()));
            }
            Ok(())
        }
    }
}

/// Clear what a kernel that died left at `path`; refuse a live one's socket.
fn clear_stale(path: &Path) -> Result<(), CtlError> {
    let name = || path.display().to_string();
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(CtlError::Io(name(), e)),
        Ok(m) if !m.file_type().is_socket() => Err(CtlError::NotSocket(name())),
        Ok(_) => {
            if UnixStream::connect(path).is_ok() {
                return Err(CtlError::InUse(name()));
            }
            std::fs::remove_file(path).map_err(|e| CtlError::Io(name(), e))
        }
    }
}

/// The uid at the other end of a connection (SO_PEERCRED).
fn peer_uid(s: &UnixStream) -> Option<u32> {
    let mut cred = libc::ucred { pid: 0, uid: 0, gid: 0 };
    let mut len = size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `cred`, a ucred we own, and updates
    // `len`; the descriptor is the stream's, open for the call.
    let r = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&raw mut cred).cast(),
            &mut len,
        )
    };
    (r == 0 && len as usize == size_of::<libc::ucred>()).then_some(cred.uid)
}

/// The request: read until the client shuts its side down, the limit, or the timeout.
fn read_request(s: &mut UnixStream) -> Vec<u8> {
    let _ = s.set_read_timeout(Some(READ_TIMEOUT));
    let mut buf = Vec::new();
    let _ = Read::by_ref(s).take(MAX_REQUEST as u64).read_to_end(&mut buf);
    if buf.len() == MAX_REQUEST {
        // Read what an overlong request has left (within reason): closing a Unix socket with
        // unread data would reset the connection before the client reads the error reply.
        let _ = io::copy(&mut Read::by_ref(s).take(MAX_DRAIN), &mut io::sink());
    }
    buf
}

fn serve_one(mut s: UnixStream, deliver: &(dyn Fn(CtlRequest) + Send + Sync)) {
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if peer_uid(&s).is_none_or(|uid| uid != me && uid != 0) {
        return; // another user: closed without a word
    }
    let bytes = read_request(&mut s);
    let (tx, rx) = bounded(1);
    let written = Arc::new(AtomicBool::new(false));
    deliver(CtlRequest { bytes, reply: tx, written: Arc::clone(&written) });
    let reply = rx.recv_timeout(REPLY_TIMEOUT).unwrap_or_else(|_| TIMEOUT_REPLY.lock().map(|r| r.clone()).unwrap_or_default());
    let _ = s.set_write_timeout(Some(WRITE_TIMEOUT));
    let _ = s.write_all(&reply);
    let _ = s.shutdown(std::net::Shutdown::Both);
    written.store(true, Ordering::Release);
}

/// Serve the control socket at `path`: `deliver` gets each request (on the ctl thread; it
/// must not block) and `timeout_reply` is what a client gets when the kernel does not answer
/// in [`REPLY_TIMEOUT`].
pub fn start(
    path: &Path,
    timeout_reply: Vec<u8>,
    deliver: Box<dyn Fn(CtlRequest) + Send + Sync + 'static>,
) -> Result<(), CtlError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        prepare_dir(dir)?;
    }
    clear_stale(path)?;
    let name = || path.display().to_string();
    let listener = UnixListener::bind(path).map_err(|e| CtlError::Io(name(), e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|e| CtlError::Io(name(), e))?;
    if let Ok(c) = CString::new(path.as_os_str().as_bytes()) {
        let _ = SOCKET_PATH.set(c);
    }
    if let Ok(mut r) = TIMEOUT_REPLY.lock() {
        *r = timeout_reply;
    }
    crate::cpu::spawn_host_thread("ctl", move || {
        for s in listener.incoming() {
            match s {
                Ok(s) => serve_one(s, deliver.as_ref()),
                Err(e) => {
                    log::warn!("ctl: accept: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    })
    .map_err(|e| CtlError::Io("ctl thread".to_string(), e))
}

/// Remove the socket (at exit and before a reboot's re-exec). Async-signal-safe.
pub fn remove_socket() {
    if let Some(p) = SOCKET_PATH.get() {
        // SAFETY: unlink(2) with a NUL-terminated path that lives for the program's life.
        unsafe { libc::unlink(p.as_ptr()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_answers_and_refuses_a_second_server() {
        let dir = std::env::temp_dir().join(format!("vk-ctl-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("sub").join("t.ctl");
        start(&path, b"timeout".to_vec(), Box::new(|r: CtlRequest| {
            let mut answer = b"got ".to_vec();
            answer.extend_from_slice(r.bytes());
            r.reply(answer);
        }))
        .unwrap();
        let mode = std::fs::metadata(path.parent().unwrap()).unwrap().mode();
        assert_eq!(mode & 0o777, 0o700);
        let mut c = UnixStream::connect(&path).unwrap();
        c.write_all(b"hello").unwrap();
        c.shutdown(std::net::Shutdown::Write).unwrap();
        let mut reply = String::new();
        c.read_to_string(&mut reply).unwrap();
        assert_eq!(reply, "got hello");
        assert!(matches!(clear_stale(&path), Err(CtlError::InUse(_))));
        std::fs::write(dir.join("plain"), b"x").unwrap();
        assert!(matches!(clear_stale(&dir.join("plain")), Err(CtlError::NotSocket(_))));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
