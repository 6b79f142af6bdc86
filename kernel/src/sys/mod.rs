//! System calls: one table from number to handler (the `syscalls.master` of vk), dispatch,
//! and ENOSYS counting. Handlers receive the trap loop's [`Ctx`](crate::kern::ctx::Ctx).
//!
//! | file       | family                                                            |
//! |------------|--------------------------------------------------------------------|
//! | `fs.rs`    | descriptors, files, directories, paths                             |
//! | `mm.rs`    | brk, mmap, munmap, mprotect, madvise                               |
//! | `cred.rs`  | user and group ids, groups, capabilities                           |
//! | `proc.rs`  | exit, process ids, uname, limits, TLS, fork, exec, wait            |
//! | `signal.rs`| actions, masks, kill, sigreturn, sigsuspend, sigtimedwait, altstack |
//! | `time.rs`  | clocks and sleeping                                                |
//! | `timer.rs` | POSIX timers (timer_create and kin; `kern::posix_timer`)           |
//! | `lock.rs`  | fcntl record locks (POSIX and OFD), flock                          |
//! | `mknod.rs` | mknod, mknodat: FIFOs, sockets, regular files                      |
//! | `epoll.rs` | epoll instances                                                    |
//! | `eventfiles.rs` | eventfd, signalfd, timerfd, memfd_create, inotify             |
//! | `mqueue.rs`| POSIX message queues (mq_open and kin; `fs::mqueue`)               |
//! | `ipc.rs`   | System V shared memory, semaphores, message queues                 |
//! | `mlock.rs` | mlock, munlock, mlockall, munlockall, mincore                      |
//! | `xattr.rs` | extended attributes (tmpfs keeps them; elsewhere EOPNOTSUPP)       |
//! | `socket.rs`| socket, socketpair, bind, listen, accept, connect, names, options  |
//! | `socket_msg.rs` | send/recv and their msg forms (iovecs, SCM_RIGHTS, SCM_CREDENTIALS) |
//! | `fadvise.rs` | fadvise64, readahead: checked, then nothing to do (no page cache) |
//! | `fallocate.rs` | fallocate: modes checked as Linux, then ext2's or tmpfs's work  |
//! | `klog.rs`  | syslog(2): the kernel's message buffer for dmesg                   |
//! | `prio.rs`  | getpriority, setpriority (nice values)                             |
//! | `ptrace.rs`| ptrace requests, process_vm_readv/writev                           |
//! | `aio.rs`   | Linux AIO: io_setup, io_submit, io_getevents, io_cancel, io_destroy |
//! | `affinity.rs` | sched_setaffinity, sched_getaffinity                           |
//! | `kcmp.rs`  | kcmp: do two processes share a file, memory, tables                |
//! | `splice.rs`| splice, vmsplice, tee (as copies)                                  |
//! | `openat2.rs` | openat2: struct open_how, RESOLVE_* restrictions                 |
//! | `pidfd.rs` | pidfd_open, pidfd_send_signal, pidfd_getfd                         |
//! | `rwv.rs`   | preadv, pwritev, preadv2, pwritev2 (RWF_* flags)                   |
//! | `prctl.rs` | prctl's timer slack, child subreaper, bounding set, securebits      |
//! | `sched.rs` | scheduling policies and parameters (kept, not acted on)            |
//!
//! Each entry records how complete its support is; an unknown number returns ENOSYS and is
//! counted, so `show syscalls` in ddb lists the gaps a program ran into.

pub mod affinity;
pub mod aio;
pub mod copyrange;
pub mod cred;
pub mod epoll;
pub mod eventfiles;
pub mod fadvise;
pub mod fallocate;
pub mod fhandle;
pub mod fs;
pub mod fsflags;
pub mod fsinfo;
pub mod fsops;
pub mod ipc;
pub mod kcmp;
pub mod klog;
pub mod lock;
pub mod mknod;
pub mod mlock;
pub mod mm;
pub mod mount;
pub mod mqueue;
pub mod names;
pub mod openat2;
pub mod pidfd;
pub mod poll;
pub mod prctl;
pub mod prio;
pub mod proc;
pub mod ptrace;
pub mod reboot;
pub mod rwv;
pub mod sched;
pub mod signal;
pub mod socket;
pub mod socket_msg;
pub mod splice;
pub mod thread;
pub mod time;
pub mod timer;
pub mod xattr;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::kern::ctx::Ctx;
use crate::kern::errno::{Errno, SysResult};
use crate::kern::ktrace;

/// How complete a system call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    Full,
    /// Works for what programs use; the note says what is missing.
    Partial(&'static str),
}

/// A handler: the context carries the thread, its process and its registers.
pub type Handler = fn(&mut Ctx<'_>) -> SysResult;

/// A table entry.
#[derive(Debug, Clone, Copy)]
pub struct Syscall {
    pub nr: u32,
    pub name: &'static str,
    pub handler: Handler,
    pub support: Support,
}

macro_rules! table {
    ($($nr:expr => $name:ident, $handler:path, $support:expr;)*) => {
        /// Every system call vk implements.
        pub static TABLE: &[Syscall] = &[
            $(Syscall { nr: $nr, name: stringify!($name), handler: $handler, support: $support },)*
        ];
    };
}

use Support::{Full, Partial};

table! {
    0 => read, fs::sys_read, Full;
    1 => write, fs::sys_write, Full;
    2 => open, fsops::sys_open, Full;
    3 => close, fs::sys_close, Full;
    4 => stat, fsinfo::sys_stat, Full;
    5 => fstat, fsinfo::sys_fstat, Full;
    6 => lstat, fsinfo::sys_lstat, Full;
    7 => poll, poll::sys_poll, Full;
    8 => lseek, fs::sys_lseek, Full;
    9 => mmap, mm::sys_mmap, Partial("writable shared mappings of tmpfs and ext2 files (hostfs is read-only); vm.max_map_count counts unmerged mappings");
    10 => mprotect, mm::sys_mprotect, Full;
    11 => munmap, mm::sys_munmap, Full;
    12 => brk, mm::sys_brk, Full;
    13 => rt_sigaction, signal::sys_rt_sigaction, Full;
    14 => rt_sigprocmask, signal::sys_rt_sigprocmask, Full;
    15 => rt_sigreturn, signal::sys_rt_sigreturn, Full;
    16 => ioctl, fs::sys_ioctl, Partial("terminals (termios, sizes, job control), sockets, block and loop devices (fs/blockdev.rs, fs/loopdev.rs), FS_IOC_GETFLAGS/SETFLAGS (ext2, tmpfs; no FS_IOC_FSGETXATTR)");
    17 => pread64, fs::sys_pread64, Full;
    18 => pwrite64, fs::sys_pwrite64, Full;
    19 => readv, fs::sys_readv, Full;
    20 => writev, fs::sys_writev, Full;
    21 => access, fsinfo::sys_access, Full;
    22 => pipe, fs::sys_pipe, Full;
    23 => select, poll::sys_select, Full;
    24 => sched_yield, proc::sys_sched_yield, Full;
    25 => mremap, mm::sys_mremap, Partial("no MREMAP_DONTUNMAP, no duplicating with old_size 0");
    26 => msync, mm::sys_msync, Full;
    28 => madvise, mm::sys_madvise, Partial("MADV_DONTNEED drops pages; MADV_DONTFORK/DOFORK and MADV_WIPEONFORK/KEEPONFORK act at fork; other advice is accepted and ignored");
    32 => dup, fs::sys_dup, Full;
    33 => dup2, fs::sys_dup2, Full;
    34 => pause, signal::sys_pause, Full;
    35 => nanosleep, time::sys_nanosleep, Full;
    36 => getitimer, time::sys_getitimer, Full;
    37 => alarm, time::sys_alarm, Full;
    38 => setitimer, time::sys_setitimer, Partial("ITIMER_VIRTUAL and ITIMER_PROF count in 10 ms slices");
    39 => getpid, proc::sys_getpid, Full;
    40 => sendfile, fs::sys_sendfile, Full;
    41 => socket, socket::sys_socket, Partial("AF_UNIX; AF_INET and AF_INET6 through host sockets");
    42 => connect, socket::sys_connect, Full;
    43 => accept, socket::sys_accept, Full;
    44 => sendto, socket_msg::sys_sendto, Full;
    45 => recvfrom, socket_msg::sys_recvfrom, Full;
    46 => sendmsg, socket_msg::sys_sendmsg, Partial("SCM_RIGHTS and SCM_CREDENTIALS control messages");
    47 => recvmsg, socket_msg::sys_recvmsg, Partial("SCM_RIGHTS and SCM_CREDENTIALS control messages");
    48 => shutdown, socket::sys_shutdown, Full;
    49 => bind, socket::sys_bind, Full;
    50 => listen, socket::sys_listen, Full;
    51 => getsockname, socket::sys_getsockname, Full;
    52 => getpeername, socket::sys_getpeername, Full;
    53 => socketpair, socket::sys_socketpair, Full;
    54 => setsockopt, socket::sys_setsockopt, Partial("SOL_SOCKET options of the socket(7) list");
    55 => getsockopt, socket::sys_getsockopt, Partial("SOL_SOCKET options of the socket(7) list");
    60 => exit, proc::sys_exit, Full;
    56 => clone, proc::sys_clone, Partial("CLONE_VM without CLONE_THREAD copies memory (vfork semantics hold); no namespaces");
    57 => fork, proc::sys_fork, Full;
    58 => vfork, proc::sys_vfork, Partial("the child's memory is a copy-on-write copy");
    59 => execve, proc::sys_execve, Full;
    61 => wait4, proc::sys_wait4, Partial("rusage has the times only");
    62 => kill, signal::sys_kill, Full;
    63 => uname, proc::sys_uname, Full;
    72 => fcntl, fs::sys_fcntl, Partial("F_DUPFD, F_GETFD/SETFD, F_GETFL/SETFL, F_ADD_SEALS/F_GET_SEALS, F_GETPIPE_SZ/F_SETPIPE_SZ, record locks (F_GETLK/F_SETLK/F_SETLKW, F_OFD_*), leases, F_SETOWN(_EX)/F_SETSIG, O_ASYNC I/O signals (pollable files); no F_NOTIFY");
    74 => fsync, fsops::sys_fsync, Full;
    75 => fdatasync, fsops::sys_fsync, Full;
    76 => truncate, fsops::sys_truncate, Full;
    77 => ftruncate, fsops::sys_ftruncate, Full;
    79 => getcwd, fsinfo::sys_getcwd, Full;
    80 => chdir, fsinfo::sys_chdir, Full;
    161 => chroot, fsinfo::sys_chroot, Full;
    81 => fchdir, fsinfo::sys_fchdir, Full;
    82 => rename, fsops::sys_rename, Full;
    83 => mkdir, fsops::sys_mkdir, Full;
    84 => rmdir, fsops::sys_rmdir, Full;
    85 => creat, fsops::sys_creat, Full;
    86 => link, fsops::sys_link, Full;
    87 => unlink, fsops::sys_unlink, Full;
    88 => symlink, fsops::sys_symlink, Full;
    89 => readlink, fsinfo::sys_readlink, Full;
    90 => chmod, fsops::sys_chmod, Full;
    91 => fchmod, fsops::sys_fchmod, Full;
    92 => chown, fsops::sys_chown, Full;
    93 => fchown, fsops::sys_fchown, Full;
    94 => lchown, fsops::sys_lchown, Full;
    95 => umask, fsops::sys_umask, Full;
    96 => gettimeofday, time::sys_gettimeofday, Full;
    98 => getrusage, time::sys_getrusage, Partial("times, maxrss and voluntary switches only");
    99 => sysinfo, proc::sys_sysinfo, Full;
    140 => getpriority, prio::sys_getpriority, Partial("kept and reported; the scheduler does not weigh it");
    103 => syslog, klog::sys_syslog, Partial("READ_ALL, READ_CLEAR, CLEAR, SIZE_BUFFER; no blocking READ or console levels (EINVAL)");
    221 => fadvise64, fadvise::sys_fadvise64, Full;
    285 => fallocate, fallocate::sys_fallocate, Partial("allocate and punch holes on ext2 and tmpfs; other modes EOPNOTSUPP");
    141 => setpriority, prio::sys_setpriority, Partial("kept and reported; the scheduler does not weigh it");
    170 => sethostname, proc::sys_sethostname, Full;
    171 => setdomainname, proc::sys_setdomainname, Full;
    100 => times, time::sys_times, Full;
    102 => getuid, cred::sys_getuid, Full;
    104 => getgid, cred::sys_getgid, Full;
    107 => geteuid, cred::sys_geteuid, Full;
    108 => getegid, cred::sys_getegid, Full;
    105 => setuid, cred::sys_setuid, Full;
    106 => setgid, cred::sys_setgid, Full;
    109 => setpgid, proc::sys_setpgid, Full;
    110 => getppid, proc::sys_getppid, Full;
    111 => getpgrp, proc::sys_getpgrp, Full;
    112 => setsid, proc::sys_setsid, Full;
    113 => setreuid, cred::sys_setreuid, Full;
    114 => setregid, cred::sys_setregid, Full;
    115 => getgroups, cred::sys_getgroups, Full;
    116 => setgroups, cred::sys_setgroups, Full;
    117 => setresuid, cred::sys_setresuid, Full;
    118 => getresuid, cred::sys_getresuid, Full;
    119 => setresgid, cred::sys_setresgid, Full;
    120 => getresgid, cred::sys_getresgid, Full;
    121 => getpgid, proc::sys_getpgid, Full;
    122 => setfsuid, cred::sys_setfsuid, Full;
    123 => setfsgid, cred::sys_setfsgid, Full;
    124 => getsid, proc::sys_getsid, Full;
    125 => capget, cred::sys_capget, Full;
    135 => personality, proc::sys_personality, Partial("ADDR_NO_RANDOMIZE, PER_LINUX32 and UNAME26 are honoured; other flags are kept, inherited and reported");
    126 => capset, cred::sys_capset, Partial("no file capabilities, ambient set or securebits");
    157 => prctl, thread::sys_prctl, Partial("PR_SET/GET_NAME, PR_SET/GET_PDEATHSIG, dumpable, timer slack (kept, sleeps do not use it), child subreaper, the bounding set; no securebits, TSC, seccomp");
    137 => statfs, fsops::sys_statfs, Full;
    138 => fstatfs, fsops::sys_fstatfs, Full;
    158 => arch_prctl, proc::sys_arch_prctl, Partial("ARCH_SET_FS and ARCH_GET_FS");
    162 => sync, fsops::sys_sync, Full;
    165 => mount, mount::sys_mount, Partial("ext2 from /dev/vkdN, tmpfs, proc, devfs; remount is a no-op; no bind or move");
    166 => umount2, mount::sys_umount2, Full;
    169 => reboot, reboot::sys_reboot, Full;
    186 => gettid, proc::sys_gettid, Full;
    127 => rt_sigpending, signal::sys_rt_sigpending, Full;
    128 => rt_sigtimedwait, signal::sys_rt_sigtimedwait, Full;
    129 => rt_sigqueueinfo, signal::sys_rt_sigqueueinfo, Full;
    130 => rt_sigsuspend, signal::sys_rt_sigsuspend, Full;
    131 => sigaltstack, signal::sys_sigaltstack, Full;
    200 => tkill, signal::sys_tkill, Full;
    201 => time, time::sys_time, Full;
    203 => sched_setaffinity, affinity::sys_sched_setaffinity, Full;
    204 => sched_getaffinity, affinity::sys_sched_getaffinity, Full;
    142 => sched_setparam, sched::sys_sched_setparam, Partial("kept; the scheduler treats every policy as SCHED_OTHER");
    143 => sched_getparam, sched::sys_sched_getparam, Full;
    144 => sched_setscheduler, sched::sys_sched_setscheduler, Partial("kept; the scheduler treats every policy as SCHED_OTHER");
    145 => sched_getscheduler, sched::sys_sched_getscheduler, Full;
    146 => sched_get_priority_max, sched::sys_sched_get_priority_max, Full;
    147 => sched_get_priority_min, sched::sys_sched_get_priority_min, Full;
    148 => sched_rr_get_interval, sched::sys_sched_rr_get_interval, Full;
    314 => sched_setattr, sched::sys_sched_setattr, Partial("kept; the scheduler treats every policy as SCHED_OTHER; no utilization clamps");
    315 => sched_getattr, sched::sys_sched_getattr, Full;
    139 => sysfs, mount::sys_sysfs, Full;
    251 => ioprio_set, prio::sys_ioprio_set, Partial("kept; disk requests are not ordered by it");
    252 => ioprio_get, prio::sys_ioprio_get, Full;
    312 => kcmp, kcmp::sys_kcmp, Partial("no KCMP_EPOLL_TFD (EOPNOTSUPP)");
    436 => close_range, fs::sys_close_range, Full;
    322 => execveat, proc::sys_execveat, Full;
    132 => utime, fsops::sys_utime, Full;
    235 => utimes, fsops::sys_utimes, Full;
    261 => futimesat, fsops::sys_futimesat, Full;
    452 => fchmodat2, fsops::sys_fchmodat2, Full;
    187 => readahead, fadvise::sys_readahead, Full;
    275 => splice, splice::sys_splice, Partial("a copy through the kernel, not page moves");
    278 => vmsplice, splice::sys_vmsplice, Partial("a copy (as writev/readv), not page gifts");
    276 => tee, splice::sys_tee, Partial("a copy of the pipe's bytes, not shared pages");
    202 => futex, thread::sys_futex, Full;
    449 => futex_waitv, thread::sys_futex_waitv, Full;
    217 => getdents64, fsinfo::sys_getdents64, Full;
    218 => set_tid_address, proc::sys_set_tid_address, Full;
    206 => io_setup, aio::sys_io_setup, Full;
    207 => io_destroy, aio::sys_io_destroy, Full;
    208 => io_getevents, aio::sys_io_getevents, Full;
    209 => io_submit, aio::sys_io_submit, Partial("requests run at submission; no IOCB_CMD_POLL");
    210 => io_cancel, aio::sys_io_cancel, Full;
    240 => mq_open, mqueue::sys_mq_open, Full;
    241 => mq_unlink, mqueue::sys_mq_unlink, Full;
    242 => mq_timedsend, mqueue::sys_mq_timedsend, Full;
    243 => mq_timedreceive, mqueue::sys_mq_timedreceive, Full;
    244 => mq_notify, mqueue::sys_mq_notify, Partial("SIGEV_NONE and SIGEV_SIGNAL; SIGEV_THREAD needs a netlink socket (none in vk)");
    245 => mq_getsetattr, mqueue::sys_mq_getsetattr, Full;
    222 => timer_create, timer::sys_timer_create, Partial("CPU-clock timers expire at a return from the guest (10 ms slices); timers on another process's CPU clock are refused");
    223 => timer_settime, timer::sys_timer_settime, Full;
    224 => timer_gettime, timer::sys_timer_gettime, Full;
    225 => timer_getoverrun, timer::sys_timer_getoverrun, Full;
    226 => timer_delete, timer::sys_timer_delete, Full;
    228 => clock_gettime, time::sys_clock_gettime, Full;
    229 => clock_getres, time::sys_clock_getres, Full;
    230 => clock_nanosleep, time::sys_clock_nanosleep, Full;
    231 => exit_group, proc::sys_exit_group, Full;
    257 => openat, fs::sys_openat, Full;
    437 => openat2, openat2::sys_openat2, Partial("RESOLVE_CACHED is taken as a plain lookup (EAGAIN only where the open would create or truncate)");
    258 => mkdirat, fsops::sys_mkdirat, Full;
    260 => fchownat, fsops::sys_fchownat, Full;
    262 => newfstatat, fsinfo::sys_newfstatat, Full;
    263 => unlinkat, fsops::sys_unlinkat, Full;
    264 => renameat, fsops::sys_renameat, Full;
    265 => linkat, fsops::sys_linkat, Full;
    266 => symlinkat, fsops::sys_symlinkat, Full;
    267 => readlinkat, fsinfo::sys_readlinkat, Full;
    268 => fchmodat, fsops::sys_fchmodat, Full;
    269 => faccessat, fsinfo::sys_faccessat, Full;
    270 => pselect6, poll::sys_pselect6, Full;
    271 => ppoll, poll::sys_ppoll, Full;
    288 => accept4, socket::sys_accept4, Full;
    299 => recvmmsg, socket_msg::sys_recvmmsg, Full;
    307 => sendmmsg, socket_msg::sys_sendmmsg, Full;
    292 => dup3, fs::sys_dup3, Full;
    293 => pipe2, fs::sys_pipe2, Full;
    280 => utimensat, fsops::sys_utimensat, Full;
    273 => set_robust_list, thread::sys_set_robust_list, Full;
    274 => get_robust_list, thread::sys_get_robust_list, Full;
    297 => rt_tgsigqueueinfo, signal::sys_rt_tgsigqueueinfo, Full;
    302 => prlimit64, proc::sys_prlimit64, Partial("limits are reported; NOFILE, CORE, CPU, NPROC, AS (mmap, brk), SIGPENDING (real-time sigqueue) and STACK (sized at exec) are enforced");
    234 => tgkill, signal::sys_tgkill, Full;
    247 => waitid, proc::sys_waitid, Full;
    306 => syncfs, fsops::sys_syncfs, Full;
    136 => ustat, fsops::sys_ustat, Full;
    277 => sync_file_range, fsops::sys_sync_file_range, Partial("writes back the whole file, as fsync");
    316 => renameat2, fsops::sys_renameat2, Full;
    318 => getrandom, proc::sys_getrandom, Full;
    334 => rseq, thread::sys_rseq, Full;
    332 => statx, fsinfo::sys_statx, Partial("no birth time");
    435 => clone3, proc::sys_clone3, Partial("no set_tid, CLONE_INTO_CGROUP or namespaces (EINVAL), as clone(2)");
    439 => faccessat2, fsinfo::sys_faccessat2, Full;
    213 => epoll_create, epoll::sys_epoll_create, Full;
    232 => epoll_wait, epoll::sys_epoll_wait, Full;
    233 => epoll_ctl, epoll::sys_epoll_ctl, Partial("EPOLLEXCLUSIVE: every waiter wakes, one reports; EPOLLWAKEUP is kept and means nothing");
    281 => epoll_pwait, epoll::sys_epoll_pwait, Full;
    291 => epoll_create1, epoll::sys_epoll_create1, Full;
    441 => epoll_pwait2, epoll::sys_epoll_pwait2, Full;
    282 => signalfd, eventfiles::sys_signalfd, Full;
    289 => signalfd4, eventfiles::sys_signalfd4, Full;
    284 => eventfd, eventfiles::sys_eventfd, Full;
    290 => eventfd2, eventfiles::sys_eventfd2, Full;
    283 => timerfd_create, eventfiles::sys_timerfd_create, Partial("no CLOCK_REALTIME_ALARM/BOOTTIME_ALARM; TFD_TIMER_CANCEL_ON_SET never cancels (the clock is never set)");
    286 => timerfd_settime, eventfiles::sys_timerfd_settime, Full;
    287 => timerfd_gettime, eventfiles::sys_timerfd_gettime, Full;
    73 => flock, lock::sys_flock, Full;
    133 => mknod, mknod::sys_mknod, Partial("device nodes on tmpfs only (elsewhere EPERM); opening one reaches devfs's device of that number");
    259 => mknodat, mknod::sys_mknodat, Partial("device nodes on tmpfs only (elsewhere EPERM); opening one reaches devfs's device of that number");
    319 => memfd_create, eventfiles::sys_memfd_create, Partial("no MFD_HUGETLB; F_SEAL_WRITE does not look at existing shared mappings");
    29 => shmget, ipc::sys_shmget, Partial("SHM_HUGETLB segments are ordinary pages");
    30 => shmat, ipc::sys_shmat, Full;
    31 => shmctl, ipc::sys_shmctl, Full;
    67 => shmdt, ipc::sys_shmdt, Full;
    64 => semget, ipc::sys_semget, Full;
    65 => semop, ipc::sys_semop, Full;
    220 => semtimedop, ipc::sys_semtimedop, Full;
    66 => semctl, ipc::sys_semctl, Full;
    68 => msgget, ipc::sys_msgget, Full;
    69 => msgsnd, ipc::sys_msgsnd, Full;
    70 => msgrcv, ipc::sys_msgrcv, Full;
    71 => msgctl, ipc::sys_msgctl, Full;
    253 => inotify_init, eventfiles::sys_inotify_init, Full;
    294 => inotify_init1, eventfiles::sys_inotify_init1, Full;
    254 => inotify_add_watch, eventfiles::sys_inotify_add_watch, Partial("the data events reach a directory's watch only for files opened through it; no IN_UNMOUNT");
    255 => inotify_rm_watch, eventfiles::sys_inotify_rm_watch, Full;
    188 => setxattr, xattr::sys_setxattr, Partial("no file system stores extended attributes: EOPNOTSUPP");
    189 => lsetxattr, xattr::sys_lsetxattr, Partial("no file system stores extended attributes: EOPNOTSUPP");
    190 => fsetxattr, xattr::sys_fsetxattr, Partial("no file system stores extended attributes: EOPNOTSUPP");
    191 => getxattr, xattr::sys_getxattr, Partial("no file system stores extended attributes: EOPNOTSUPP");
    192 => lgetxattr, xattr::sys_lgetxattr, Partial("no file system stores extended attributes: EOPNOTSUPP");
    193 => fgetxattr, xattr::sys_fgetxattr, Partial("no file system stores extended attributes: EOPNOTSUPP");
    194 => listxattr, xattr::sys_listxattr, Partial("no file system stores extended attributes: an empty list");
    195 => llistxattr, xattr::sys_llistxattr, Partial("no file system stores extended attributes: an empty list");
    196 => flistxattr, xattr::sys_flistxattr, Partial("no file system stores extended attributes: an empty list");
    197 => removexattr, xattr::sys_removexattr, Partial("no file system stores extended attributes: EOPNOTSUPP");
    198 => lremovexattr, xattr::sys_lremovexattr, Partial("no file system stores extended attributes: EOPNOTSUPP");
    199 => fremovexattr, xattr::sys_fremovexattr, Partial("no file system stores extended attributes: EOPNOTSUPP");
    149 => mlock, mlock::sys_mlock, Full;
    325 => mlock2, mlock::sys_mlock2, Full;
    150 => munlock, mlock::sys_munlock, Full;
    151 => mlockall, mlock::sys_mlockall, Full;
    152 => munlockall, mlock::sys_munlockall, Full;
    27 => mincore, mlock::sys_mincore, Full;
    309 => getcpu, proc::sys_getcpu, Full;
    97 => getrlimit, proc::sys_getrlimit, Full;
    160 => setrlimit, proc::sys_setrlimit, Partial("limits are reported; NOFILE, CORE, CPU, NPROC, AS (mmap, brk), SIGPENDING (real-time sigqueue) and STACK (sized at exec) are enforced");
    227 => clock_settime, time::sys_clock_settime, Partial("refused with EPERM even for root: the realtime clock is the host's");
    164 => settimeofday, time::sys_settimeofday, Partial("refused with EPERM even for root: the realtime clock is the host's");
    101 => ptrace, ptrace::sys_ptrace, Partial("no hardware watchpoints or seccomp events; the tracer is a process");
    295 => preadv, rwv::sys_preadv, Full;
    296 => pwritev, rwv::sys_pwritev, Full;
    326 => copy_file_range, copyrange::sys_copy_file_range, Full;
    303 => name_to_handle_at, fhandle::sys_name_to_handle_at, Partial("ext2 and tmpfs files; EOPNOTSUPP on the other file systems");
    304 => open_by_handle_at, fhandle::sys_open_by_handle_at, Partial("ext2 and tmpfs; a file other than a directory found outside mount_fd's directory gets the path \"/\"");
    327 => preadv2, rwv::sys_preadv2, Full;
    328 => pwritev2, rwv::sys_pwritev2, Full;
    310 => process_vm_readv, ptrace::sys_process_vm_readv, Full;
    311 => process_vm_writev, ptrace::sys_process_vm_writev, Full;
    434 => pidfd_open, pidfd::sys_pidfd_open, Full;
    424 => pidfd_send_signal, pidfd::sys_pidfd_send_signal, Full;
    438 => pidfd_getfd, pidfd::sys_pidfd_getfd, Full;
}

/// Highest system call number counted.
pub const NR_MAX: usize = 512;

/// Calls of unimplemented system calls, by number.
pub static ENOSYS_COUNTS: [AtomicU64; NR_MAX] = [const { AtomicU64::new(0) }; NR_MAX];
/// int 0x80 (32-bit) calls, all refused.
pub static COMPAT_CALLS: AtomicU64 = AtomicU64::new(0);

fn index() -> &'static [Option<usize>] {
    static INDEX: OnceLock<Vec<Option<usize>>> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut v = vec![None; NR_MAX];
        for (i, s) in TABLE.iter().enumerate() {
            if let Some(slot) = usize::try_from(s.nr).ok().and_then(|n| v.get_mut(n)) {
                *slot = Some(i);
            }
        }
        v
    })
}

/// The table entry of a number.
pub fn lookup(nr: u64) -> Option<&'static Syscall> {
    let i = usize::try_from(nr).ok()?;
    index().get(i).copied().flatten().map(|k| &TABLE[k])
}

/// The memory calls that can take access away from mapped pages (see
/// [`crate::kern::usertrap::sync_stub`]).
const TAKES_ACCESS_AWAY: [u64; 8] = [
    linux_raw_sys::general::__NR_mmap as u64,
    linux_raw_sys::general::__NR_shmat as u64,
    linux_raw_sys::general::__NR_shmdt as u64,
    linux_raw_sys::general::__NR_munmap as u64,
    linux_raw_sys::general::__NR_mprotect as u64,
    linux_raw_sys::general::__NR_mremap as u64,
    linux_raw_sys::general::__NR_madvise as u64,
    linux_raw_sys::general::__NR_brk as u64,
];

/// Run the system call in `ctx.regs` and put its result in rax.
pub fn dispatch(ctx: &mut Ctx<'_>, compat: bool) {
    let nr = ctx.regs.rax();
    let trace = ktrace::traced(ctx.p.pid, ctx.p.rec_addr());
    let args = if trace { [0, 1, 2, 3, 4, 5].map(|i| ctx.arg(i)) } else { [0; 6] };
    let r = if compat {
        COMPAT_CALLS.fetch_add(1, Ordering::Relaxed);
        Err(Errno::ENOSYS)
    } else {
        match lookup(nr) {
            Some(s) => (s.handler)(ctx),
            None => {
                if let Some(c) = usize::try_from(nr).ok().and_then(|i| ENOSYS_COUNTS.get(i)) {
                    c.fetch_add(1, Ordering::Relaxed);
                }
                log::debug!("pid {}: unimplemented system call {nr}", ctx.p.pid);
                Err(Errno::ENOSYS)
            }
        }
    };
    // A change that took memory away is carried out in the stub before the call returns.
    if !compat && TAKES_ACCESS_AWAY.contains(&nr) {
        crate::kern::usertrap::sync_stub(ctx);
    }
    if trace {
        let name = if compat { "int 0x80" } else { names::name(nr).unwrap_or("?") };
        let res = match r {
            Ok(v) => format!("{v:#x}"),
            Err(e) => format!("-1 {}", e.name()),
        };
        crate::kprintf!(
            "ktrace: {}/{} {name}({nr}) ({:#x}, {:#x}, {:#x}, {:#x}, {:#x}, {:#x}) = {res}\n",
            ctx.p.pid,
            ctx.td.tid(),
            args[0],
            args[1],
            args[2],
            args[3],
            args[4],
            args[5]
        );
    }
    if ctx.exit.is_none() {
        ctx.regs.set_rax(crate::kern::errno::to_rax(r));
    }
}

/// Make [`dispatch`] the trap loop's system call entry (at boot, before any guest runs).
pub fn install() {
    crate::kern::usertrap::set_syscall_entry(dispatch);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_unique_numbers_in_range() {
        let mut seen = std::collections::BTreeSet::new();
        for s in TABLE {
            assert!(usize::try_from(s.nr).unwrap() < NR_MAX, "{}", s.name);
            assert!(seen.insert(s.nr), "duplicate {}", s.nr);
        }
        assert_eq!(lookup(1).map(|s| s.name), Some("write"));
        assert!(lookup(9999).is_none());
    }
}
