//! The control protocol between a running kernel and `vkctl` (after UML's mconsole): one
//! request and one reply per connection on the kernel's Unix stream socket.
//!
//! ```text
//! request:  VKCTL/1 <command> [args…]\n          (UTF-8, at most MAX_REQUEST bytes; the client
//!                                                  then shuts its side down)
//! reply:    VKCTL/1 OK\n<text…>                   (the kernel closes the connection after it)
//!       or  VKCTL/1 ERR <message>\n
//! ```
//!
//! The number after the slash is the protocol version; a kernel answers a request of another
//! version with `ERR` naming the version it speaks. Everything here is pure encoding and
//! decoding, shared by the kernel and `vkctl` (which never sees kernel types: only this).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// The word every message starts with.
pub const MAGIC: &str = "VKCTL";
/// The protocol version this crate speaks.
pub const VERSION: u32 = 1;
/// The longest request a kernel reads.
pub const MAX_REQUEST: usize = 4096;
/// The longest reply a client reads.
pub const MAX_REPLY: usize = 64 << 20;
/// A control socket's file name: `PID.ctl`.
pub const SUFFIX: &str = ".ctl";

/// What is wrong with a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    #[error("empty message")]
    Empty,
    #[error("message of {0} bytes is too long")]
    TooLong(usize),
    #[error("message is not UTF-8 text")]
    NotText,
    #[error("not a vk control message")]
    BadMagic,
    #[error("protocol version {0} not supported (this side speaks {VERSION})")]
    Version(String),
    #[error("no command")]
    NoCommand,
    #[error("reply status {0:?} is neither OK nor ERR")]
    BadStatus(String),
}

/// A decoded request: the command and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub command: String,
    pub args: Vec<String>,
}

/// The `VKCTL/N` head of a message: checks the magic and the version.
fn split_head(line: &str) -> Result<&str, ProtoError> {
    let (head, rest) = line.split_once(' ').unwrap_or((line, ""));
    let version = head.strip_prefix(MAGIC).and_then(|v| v.strip_prefix('/')).ok_or(ProtoError::BadMagic)?;
    if version.parse::<u32>().ok() != Some(VERSION) {
        return Err(ProtoError::Version(version.chars().take(16).collect()));
    }
    Ok(rest)
}

/// The request for `command` (words separated by spaces: `ktrace 12 on`).
pub fn encode_request(command: &str) -> Vec<u8> {
    format!("{MAGIC}/{VERSION} {}\n", command.trim()).into_bytes()
}

/// Decode a request (its first line; a trailing newline is optional).
pub fn decode_request(bytes: &[u8]) -> Result<Request, ProtoError> {
    if bytes.len() > MAX_REQUEST {
        return Err(ProtoError::TooLong(bytes.len()));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| ProtoError::NotText)?;
    let line = text.split('\n').next().unwrap_or("").trim_end_matches('\r');
    if line.is_empty() {
        return Err(ProtoError::Empty);
    }
    let rest = split_head(line)?;
    let mut words = rest.split_whitespace().map(str::to_string);
    let command = words.next().ok_or(ProtoError::NoCommand)?;
    Ok(Request { command, args: words.collect() })
}

/// A reply: `Ok(text)` or `Err(message)` (one line: newlines become spaces).
pub fn encode_reply(r: Result<&str, &str>) -> Vec<u8> {
    match r {
        Ok(text) => format!("{MAGIC}/{VERSION} OK\n{text}").into_bytes(),
        Err(msg) => format!("{MAGIC}/{VERSION} ERR {}\n", msg.trim().replace('\n', " ")).into_bytes(),
    }
}

/// A decoded reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub ok: bool,
    /// The text (OK) or the message (ERR).
    pub text: String,
}

pub fn decode_reply(bytes: &[u8]) -> Result<Reply, ProtoError> {
    if bytes.is_empty() {
        return Err(ProtoError::Empty);
    }
    if bytes.len() > MAX_REPLY {
        return Err(ProtoError::TooLong(bytes.len()));
    }
    let text = String::from_utf8_lossy(bytes);
    let (line, body) = text.split_once('\n').unwrap_or((&text, ""));
    let status = split_head(line)?;
    match status.split_once(' ').unwrap_or((status, "")) {
        ("OK", _) => Ok(Reply { ok: true, text: body.to_string() }),
        ("ERR", msg) => Ok(Reply { ok: false, text: msg.to_string() }),
        (other, _) => Err(ProtoError::BadStatus(other.chars().take(16).collect())),
    }
}

/// Where a user's kernels put their sockets: `$XDG_RUNTIME_DIR/vk`, else `/tmp/vk-UID`.
pub fn default_dir(xdg_runtime_dir: Option<&OsStr>, uid: u32) -> PathBuf {
    match xdg_runtime_dir.filter(|d| !d.is_empty() && Path::new(d).is_absolute()) {
        Some(d) => Path::new(d).join("vk"),
        None => PathBuf::from(format!("/tmp/vk-{uid}")),
    }
}

/// The default socket of the kernel with host pid `pid`.
pub fn default_path(dir: &Path, pid: u32) -> PathBuf {
    dir.join(format!("{pid}{SUFFIX}"))
}

/// The pid a default socket's name holds (`1234.ctl` → 1234).
pub fn pid_of_socket(name: &str) -> Option<u32> {
    name.strip_suffix(SUFFIX)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_bad_ones_are_named() {
        let r = decode_request(&encode_request("ktrace 12 on")).unwrap();
        assert_eq!(r, Request { command: "ktrace".into(), args: vec!["12".into(), "on".into()] });
        assert_eq!(decode_request(b"VKCTL/1 ps").unwrap().command, "ps");
        assert_eq!(decode_request(b""), Err(ProtoError::Empty));
        assert_eq!(decode_request(b"\n"), Err(ProtoError::Empty));
        assert_eq!(decode_request(b"VKCTL/1 \n"), Err(ProtoError::NoCommand));
        assert_eq!(decode_request(b"GET / HTTP/1.0\n"), Err(ProtoError::BadMagic));
        assert_eq!(decode_request(b"VKCTL/2 ps\n"), Err(ProtoError::Version("2".into())));
        assert_eq!(decode_request(b"VKCTL/x ps\n"), Err(ProtoError::Version("x".into())));
        assert_eq!(decode_request(b"\xff\xfe"), Err(ProtoError::NotText));
        assert_eq!(decode_request(&vec![b'a'; MAX_REQUEST + 1]), Err(ProtoError::TooLong(MAX_REQUEST + 1)));
        assert!(ProtoError::Version("2".into()).to_string().contains("speaks 1"));
    }

    #[test]
    fn replies_round_trip() {
        let ok = decode_reply(&encode_reply(Ok("a\nb\n"))).unwrap();
        assert_eq!(ok, Reply { ok: true, text: "a\nb\n".into() });
        let err = decode_reply(&encode_reply(Err("no process 7\nat all"))).unwrap();
        assert_eq!(err, Reply { ok: false, text: "no process 7 at all".into() });
        assert_eq!(decode_reply(b"VKCTL/1 MAYBE\n"), Err(ProtoError::BadStatus("MAYBE".into())));
        assert_eq!(decode_reply(b""), Err(ProtoError::Empty));
    }

    #[test]
    fn default_places() {
        assert_eq!(default_dir(Some(OsStr::new("/run/user/1000")), 1000), PathBuf::from("/run/user/1000/vk"));
        assert_eq!(default_dir(None, 1000), PathBuf::from("/tmp/vk-1000"));
        assert_eq!(default_dir(Some(OsStr::new("relative")), 7), PathBuf::from("/tmp/vk-7"));
        assert_eq!(default_path(Path::new("/tmp/vk-0"), 42), PathBuf::from("/tmp/vk-0/42.ctl"));
        assert_eq!(pid_of_socket("42.ctl"), Some(42));
        assert_eq!(pid_of_socket("x.ctl"), None);
    }
}
