//! File systems: the VFS (vnodes, path lookup, mounts, open files) and the file systems.
//!
//! | file        | what it is                                                              |
//! |-------------|--------------------------------------------------------------------------|
//! | `vfs.rs`    | the `Vnode` trait, attributes, `struct stat`, directory entries          |
//! | `namei.rs`  | path lookup, mount points, symbolic links, the root                      |
//! | `mount.rs`  | file systems as a whole (`FileSystem`), the mount table, mount flags      |
//! | `namecache.rs` | the name cache: (directory, name) → vnode or "no such name"        |
//! | `vnops.rs`  | the VFS operations: shared checks, then the file system's vnode method   |
//! | `perm.rs`   | permission checks (Linux DAC), once for every file system                |
//! | `file.rs`   | open file descriptions and descriptor tables                             |
//! | `hostfs.rs` | a host directory as a read-only file system (`-r DIR`)                   |
//! | `tmpfs.rs`  | a file system in memory (/tmp)                                           |
//! | `devpts.rs` | /dev/pts: the pseudo-terminals' masters and slaves as vnodes            |
//! | `devfs.rs`  | /dev: console, null, zero, random, urandom, the disks                    |
//! | `sysfs.rs`  | /sys: the CPU lists glibc and coreutils read                             |
//! | `procfs/`   | /proc: processes and the kernel as files                                 |
//! | `pipe.rs`   | pipes (and pipefs, the file system they belong to)                       |
//! | `lock.rs`   | advisory locks: POSIX record locks, OFD locks, flock(2)                  |
//! | `writecount.rs` | ETXTBSY: a running program is not written, a written file not run   |
//! | `lease.rs`  | leases (F_SETLEASE) and the owner of a file's signals (F_SETOWN)         |
//! | `fifo.rs`   | named pipes: the pipe of a FIFO inode, fifo(7)'s open rules              |
//! | `anon.rs`   | anonymous inodes: the file systems of the event files below              |
//! | `epoll.rs`  | epoll instances: interest lists over the VFS's readiness                 |
//! | `eventfd.rs`, `signalfd.rs`, `timerfd.rs` | a counter, pending signals, a timer as files |
//! | `inotify.rs` | inotify instances, watches and the VFS's events                          |
//! | `pidfd.rs`  | process descriptors (pidfd_open): a process as a pollable file           |
//! | `memfd.rs`  | memfd_create's anonymous tmpfs files and their seals                     |
//! | `mqueue.rs` | POSIX message queues: the names, a queue as its descriptors' file        |
//! | `bcache.rs` | block devices (vkdN, io-thread I/O) and the write-back buffer cache      |
//! | `blockdev.rs` | the `BlockIo` trait (disk image or loop file) and the block ioctls     |
//! | `loopdev.rs` | loop devices: /dev/loop-control, /dev/loopN over an open file          |
//! | `ext2/`     | ext2, read and write (the root image)                                   |

pub mod anon;
pub mod bcache;
pub mod blockdev;
pub mod devfs;
pub mod devpts;
pub mod epoll;
pub mod eventfd;
pub mod ext2;
pub mod fifo;
pub mod fhandle;
pub mod file;
pub mod hostfs;
pub mod inotify;
pub mod loopdev;
pub mod lease;
pub mod lock;
pub mod memfd;
pub mod mount;
pub mod mqueue;
pub mod namecache;
pub mod namei;
pub mod perm;
pub mod pidfd;
pub mod pipe;
pub mod procfs;
pub mod sigio;
pub mod signalfd;
pub mod sysfs;
pub mod timerfd;
pub mod tmpfs;
pub mod vfs;
pub mod vnops;
pub mod writecount;
pub mod xattr;
