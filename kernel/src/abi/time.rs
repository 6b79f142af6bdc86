//! Time structures: `struct timespec`, `struct timeval`, `struct itimerval`, `struct timezone`,
//! `struct sigevent`.

use super::{linux, linux_struct};

/// Nanoseconds in a second.
pub const NSEC_PER_SEC: i64 = 1_000_000_000;

linux_struct! {
    /// `struct timespec` (nanosleep, clock_gettime, futex timeouts, utimensat, ppoll).
    pub struct Timespec = linux::timespec {
        pub tv_sec: i64,
        pub tv_nsec: i64,
    }
}

linux_struct! {
    /// `struct timeval` (gettimeofday, select, setitimer, rusage).
    pub struct Timeval = linux::timeval {
        pub tv_sec: i64,
        pub tv_usec: i64,
    }
}

linux_struct! {
    /// `struct itimerval` (getitimer, setitimer).
    pub struct Itimerval = linux::itimerval {
        pub it_interval: Timeval,
        pub it_value: Timeval,
    }
}

linux_struct! {
    /// `struct timezone` (gettimeofday's second argument).
    pub struct Timezone = linux::timezone {
        pub tz_minuteswest: i32,
        pub tz_dsttime: i32,
    }
}

impl Timespec {
    /// From nanoseconds.
    pub fn from_ns(ns: u64) -> Timespec {
        let sec = ns / 1_000_000_000;
        let nsec = ns % 1_000_000_000;
        Timespec { tv_sec: i64::try_from(sec).unwrap_or(i64::MAX), tv_nsec: i64::try_from(nsec).unwrap_or(0) }
    }

    /// As nanoseconds (saturating): EINVAL for a negative second or nanoseconds outside
    /// 0..1e9, as nanosleep(2), futex(2), ppoll(2) and sigtimedwait(2) check.
    pub fn to_ns(&self) -> Result<u64, crate::kern::errno::Errno> {
        let (Ok(sec), Ok(nsec)) = (u64::try_from(self.tv_sec), u64::try_from(self.tv_nsec)) else {
            return Err(crate::kern::errno::Errno::EINVAL);
        };
        if nsec >= 1_000_000_000 {
            return Err(crate::kern::errno::Errno::EINVAL);
        }
        Ok(sec.saturating_mul(1_000_000_000).saturating_add(nsec))
    }
}

impl Timeval {
    /// From nanoseconds (microsecond resolution).
    pub fn from_ns(ns: u64) -> Timeval {
        let sec = ns / 1_000_000_000;
        let usec = (ns % 1_000_000_000) / 1000;
        Timeval { tv_sec: i64::try_from(sec).unwrap_or(i64::MAX), tv_usec: i64::try_from(usec).unwrap_or(0) }
    }
}

linux_struct! {
    /// `struct sigevent` (timer_create, mq_notify): how to notify; `_sigev_un` holds the
    /// thread id of SIGEV_THREAD_ID first.
    pub struct Sigevent = linux::sigevent {
        pub sigev_value: u64,
        pub sigev_signo: i32,
        pub sigev_notify: i32,
        pub _sigev_un: [i32; 12],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timespec_checks_its_fields() {
        assert_eq!(Timespec { tv_sec: 1, tv_nsec: 5 }.to_ns(), Ok(1_000_000_005));
        assert!(Timespec { tv_sec: -1, tv_nsec: 0 }.to_ns().is_err());
        assert!(Timespec { tv_sec: 0, tv_nsec: 1_000_000_000 }.to_ns().is_err());
        assert_eq!(Timespec { tv_sec: i64::MAX, tv_nsec: 0 }.to_ns(), Ok(u64::MAX));
        assert_eq!(Timespec::from_ns(2_500_000_000), Timespec { tv_sec: 2, tv_nsec: 500_000_000 });
        assert_eq!(Timeval::from_ns(1_000_002_999), Timeval { tv_sec: 1, tv_usec: 2 });
    }
}
