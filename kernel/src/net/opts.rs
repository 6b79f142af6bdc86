//! SOL_SOCKET options a socket keeps itself (socket(7)): buffer sizes, timeouts,
//! SO_PASSCRED, and the flags that are only stored (SO_REUSEADDR, SO_KEEPALIVE, SO_LINGER
//! on AF_UNIX). A family's socket holds a [`SockOpts`] under its own lock.

use std::time::Duration;

use zerocopy::{FromBytes, IntoBytes};

use crate::abi::net::{Linger, lnet};
use crate::kern::errno::Errno;
use crate::net::{int_opt, opt_int, timeout_to_timeval, timeval_to_timeout};

/// Linux's defaults and limits (net.core.wmem_default, wmem_max, SOCK_MIN_SNDBUF …).
pub const SNDBUF_DEFAULT: usize = 212_992;
pub const RCVBUF_DEFAULT: usize = 212_992;
const WMEM_MAX: usize = 212_992;
const RMEM_MAX: usize = 212_992;
const SOCK_MIN_SNDBUF: usize = 4608;
const SOCK_MIN_RCVBUF: usize = 2304;

#[derive(Debug, Clone)]
pub struct SockOpts {
    pub sndbuf: usize,
    pub rcvbuf: usize,
    pub rcvtimeo: Option<Duration>,
    pub sndtimeo: Option<Duration>,
    pub passcred: bool,
    pub reuseaddr: bool,
    pub keepalive: bool,
    pub linger: Linger,
}

impl Default for SockOpts {
    fn default() -> Self {
        SockOpts {
            sndbuf: SNDBUF_DEFAULT,
            rcvbuf: RCVBUF_DEFAULT,
            rcvtimeo: None,
            sndtimeo: None,
            passcred: false,
            reuseaddr: false,
            keepalive: false,
            linger: Linger::default(),
        }
    }
}

/// A buffer size as setsockopt sets it: capped by the maximum, doubled (the kernel's
/// bookkeeping overhead), at least the minimum.
fn buf_size(val: i32, max: usize, min: usize) -> usize {
    let v = usize::try_from(val.max(0)).unwrap_or(0).min(max);
    (v * 2).max(min)
}

impl SockOpts {
    /// Set a SOL_SOCKET option this record keeps: Ok(false) when it is not one of them.
    pub fn set(&mut self, name: u32, val: &[u8]) -> Result<bool, Errno> {
        match name {
            lnet::SO_SNDBUF => self.sndbuf = buf_size(opt_int(val)?, WMEM_MAX, SOCK_MIN_SNDBUF),
            lnet::SO_RCVBUF => self.rcvbuf = buf_size(opt_int(val)?, RMEM_MAX, SOCK_MIN_RCVBUF),
            lnet::SO_RCVTIMEO_OLD => self.rcvtimeo = timeval_to_timeout(val)?,
            lnet::SO_SNDTIMEO_OLD => self.sndtimeo = timeval_to_timeout(val)?,
            lnet::SO_PASSCRED => self.passcred = opt_int(val)? != 0,
            lnet::SO_REUSEADDR => self.reuseaddr = opt_int(val)? != 0,
            lnet::SO_KEEPALIVE => self.keepalive = opt_int(val)? != 0,
            lnet::SO_LINGER => {
                self.linger = Linger::read_from_prefix(val).map(|(l, _)| l).map_err(|_| Errno::EINVAL)?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Get one: None when it is not one of them.
    pub fn get(&self, name: u32) -> Option<Vec<u8>> {
        let b = |v: bool| int_opt(i32::from(v));
        let size = |v: usize| int_opt(i32::try_from(v).unwrap_or(i32::MAX));
        Some(match name {
            lnet::SO_SNDBUF => size(self.sndbuf),
            lnet::SO_RCVBUF => size(self.rcvbuf),
            lnet::SO_RCVTIMEO_OLD => timeout_to_timeval(self.rcvtimeo),
            lnet::SO_SNDTIMEO_OLD => timeout_to_timeval(self.sndtimeo),
            lnet::SO_PASSCRED => b(self.passcred),
            lnet::SO_REUSEADDR => b(self.reuseaddr),
            lnet::SO_KEEPALIVE => b(self.keepalive),
            lnet::SO_LINGER => self.linger.as_bytes().to_vec(),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_sizes_double_within_limits() {
        let mut o = SockOpts::default();
        assert_eq!(o.set(lnet::SO_SNDBUF, &4096i32.to_ne_bytes()), Ok(true));
        assert_eq!(o.sndbuf, 8192);
        o.set(lnet::SO_SNDBUF, &1i32.to_ne_bytes()).unwrap();
        assert_eq!(o.sndbuf, SOCK_MIN_SNDBUF);
        o.set(lnet::SO_RCVBUF, &i32::MAX.to_ne_bytes()).unwrap();
        assert_eq!(o.rcvbuf, 2 * RMEM_MAX);
        assert_eq!(o.set(lnet::SO_SNDBUF, &[1]), Err(Errno::EINVAL));
        assert_eq!(o.set(9999, &[0; 4]), Ok(false));
    }
}
