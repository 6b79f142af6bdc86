//! Linux errno values: the guest ABI's error numbers (errno(3), asm-generic/errno*.h).
//! System calls return `Result<usize, Errno>`; the trap code turns an error into `-errno`.
//!
//! Every guest-visible number is checked at compile time against `linux_raw_sys::errno`;
//! the restart codes are the kernel's own (include/linux/errno.h), never seen by a guest.

use std::fmt;

macro_rules! errnos {
    (
        linux { $($lname:ident = $lnum:expr, $ltext:expr;)* }
        internal { $($iname:ident = $inum:expr, $itext:expr;)* }
    ) => {
        errnos!(@enum $($lname = $lnum, $ltext;)* $($iname = $inum, $itext;)*);

        // The guest-visible numbers are Linux's.
        const _: () = {
            $(assert!(Errno::$lname as i32 == crate::abi::c_int(linux_raw_sys::errno::$lname));)*
        };
    };
    (@enum $($name:ident = $num:expr, $text:expr;)*) => {
        /// A Linux error number.
        #[allow(non_camel_case_types, reason = "Linux's errno names, ERESTART_RESTARTBLOCK among them")]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(i32)]
        pub enum Errno {
            $($name = $num,)*
        }

        impl Errno {
            /// The number the guest sees (positive).
            pub fn num(self) -> i32 {
                self as i32
            }

            /// strerror(3)'s text.
            pub fn text(self) -> &'static str {
                match self {
                    $(Errno::$name => $text,)*
                }
            }

            /// The name (`ENOENT`).
            pub fn name(self) -> &'static str {
                match self {
                    $(Errno::$name => stringify!($name),)*
                }
            }

            /// From the `rax` of a returning system call: the error it carries, if it is one
            /// (`-4095..=-1`) we know.
            pub fn from_rax(rax: u64) -> Option<Errno> {
                let v = rax.cast_signed();
                if (-4095..0).contains(&v) { i32::try_from(-v).ok().and_then(Errno::from_num) } else { None }
            }

            /// One of the kernel-internal "restart the call" codes.
            pub fn is_restart(self) -> bool {
                matches!(self, Errno::ERESTARTSYS | Errno::ERESTARTNOINTR | Errno::ERESTARTNOHAND | Errno::ERESTART_RESTARTBLOCK)
            }

            /// From a number, if it is one we know.
            pub fn from_num(n: i32) -> Option<Errno> {
                match n {
                    $($num => Some(Errno::$name),)*
                    _ => None,
                }
            }
        }
    };
}

errnos! {
    linux {
    EPERM = 1, "Operation not permitted";
    ENOENT = 2, "No such file or directory";
    ESRCH = 3, "No such process";
    EINTR = 4, "Interrupted system call";
    EIO = 5, "Input/output error";
    ENXIO = 6, "No such device or address";
    E2BIG = 7, "Argument list too long";
    ENOEXEC = 8, "Exec format error";
    EBADF = 9, "Bad file descriptor";
    ECHILD = 10, "No child processes";
    EAGAIN = 11, "Resource temporarily unavailable";
    ENOMEM = 12, "Cannot allocate memory";
    EACCES = 13, "Permission denied";
    EFAULT = 14, "Bad address";
    ENOTBLK = 15, "Block device required";
    EBUSY = 16, "Device or resource busy";
    EEXIST = 17, "File exists";
    EXDEV = 18, "Invalid cross-device link";
    ENODEV = 19, "No such device";
    ENOTDIR = 20, "Not a directory";
    EISDIR = 21, "Is a directory";
    EINVAL = 22, "Invalid argument";
    ENFILE = 23, "Too many open files in system";
    EMFILE = 24, "Too many open files";
    ENOTTY = 25, "Inappropriate ioctl for device";
    ETXTBSY = 26, "Text file busy";
    EFBIG = 27, "File too large";
    ENOSPC = 28, "No space left on device";
    ESPIPE = 29, "Illegal seek";
    EROFS = 30, "Read-only file system";
    EMLINK = 31, "Too many links";
    EPIPE = 32, "Broken pipe";
    EDOM = 33, "Numerical argument out of domain";
    ERANGE = 34, "Numerical result out of range";
    EDEADLK = 35, "Resource deadlock avoided";
    ENAMETOOLONG = 36, "File name too long";
    ENOLCK = 37, "No locks available";
    ENOSYS = 38, "Function not implemented";
    ENOTEMPTY = 39, "Directory not empty";
    ELOOP = 40, "Too many levels of symbolic links";
    ENOMSG = 42, "No message of desired type";
    EIDRM = 43, "Identifier removed";
    ENODATA = 61, "No data available";
    ETIME = 62, "Timer expired";
    EOVERFLOW = 75, "Value too large for defined data type";
    EBADFD = 77, "File descriptor in bad state";
    ELIBBAD = 80, "Accessing a corrupted shared library";
    EILSEQ = 84, "Invalid or incomplete multibyte or wide character";
    ERESTART = 85, "Interrupted system call should be restarted";
    ENOTSOCK = 88, "Socket operation on non-socket";
    EDESTADDRREQ = 89, "Destination address required";
    EMSGSIZE = 90, "Message too long";
    EPROTOTYPE = 91, "Protocol wrong type for socket";
    ENOPROTOOPT = 92, "Protocol not available";
    EPROTONOSUPPORT = 93, "Protocol not supported";
    ESOCKTNOSUPPORT = 94, "Socket type not supported";
    EOPNOTSUPP = 95, "Operation not supported";
    EPFNOSUPPORT = 96, "Protocol family not supported";
    EAFNOSUPPORT = 97, "Address family not supported by protocol";
    EADDRINUSE = 98, "Address already in use";
    EADDRNOTAVAIL = 99, "Cannot assign requested address";
    ENETDOWN = 100, "Network is down";
    ENETUNREACH = 101, "Network is unreachable";
    ENETRESET = 102, "Network dropped connection on reset";
    ECONNABORTED = 103, "Software caused connection abort";
    ECONNRESET = 104, "Connection reset by peer";
    ENOBUFS = 105, "No buffer space available";
    EISCONN = 106, "Transport endpoint is already connected";
    ENOTCONN = 107, "Transport endpoint is not connected";
    ESHUTDOWN = 108, "Cannot send after transport endpoint shutdown";
    ETOOMANYREFS = 109, "Too many references: cannot splice";
    ETIMEDOUT = 110, "Connection timed out";
    ECONNREFUSED = 111, "Connection refused";
    EHOSTDOWN = 112, "Host is down";
    EHOSTUNREACH = 113, "No route to host";
    EALREADY = 114, "Operation already in progress";
    EINPROGRESS = 115, "Operation now in progress";
    ESTALE = 116, "Stale file handle";
    ECANCELED = 125, "Operation canceled";
    }
    // Kernel-internal: restart the system call (never seen by the guest).
    internal {
    ERESTARTSYS = 512, "(restart system call)";
    ERESTARTNOINTR = 513, "(restart system call, no interrupt)";
    ERESTARTNOHAND = 514, "(restart if no handler)";
    ERESTART_RESTARTBLOCK = 516, "(restart through restart_syscall)";
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.text(), self.name())
    }
}

impl std::error::Error for Errno {}

/// A system call's result.
pub type SysResult = Result<usize, Errno>;

/// The value the guest's `rax` gets: the result, or `-errno`.
pub fn to_rax(r: SysResult) -> u64 {
    match r {
        Ok(v) => u64::try_from(v).unwrap_or(u64::MAX),
        Err(e) => (-i64::from(e.num())).cast_unsigned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_names_and_rax() {
        assert_eq!(Errno::ENOENT.num(), 2);
        assert_eq!(Errno::ENOSYS.name(), "ENOSYS");
        assert_eq!(Errno::from_num(14), Some(Errno::EFAULT));
        assert_eq!(Errno::from_num(9999), None);
        assert_eq!(to_rax(Err(Errno::ENOSYS)), (-38i64).cast_unsigned());
        assert_eq!(Errno::from_rax(to_rax(Err(Errno::ERESTARTSYS))), Some(Errno::ERESTARTSYS));
        assert_eq!(Errno::from_rax(5), None);
        assert!(Errno::ERESTARTNOHAND.is_restart() && !Errno::EINTR.is_restart());
        assert_eq!(to_rax(Ok(42)), 42);
        assert_eq!(Errno::EBADF.to_string(), "Bad file descriptor (EBADF)");
    }
}
