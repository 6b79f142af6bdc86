//! platform — vk's machine-dependent layer: everything that talks to the host.
//!
//! This is the only crate of vk allowed `unsafe`. It turns host mechanisms into safe kernel
//! primitives, the way DragonFly's `platform/vkernel64` turns host system calls into a machine:
//!
//! | module      | what it gives the kernel                                                    |
//! |-------------|------------------------------------------------------------------------------|
//! | `physmem`   | the physical memory image (memfd or `-i` file) at `DMAP_BASE`, `vm_page`s     |
//! | `cpu`       | virtual CPUs (host threads), per-CPU data via a thread-local, idle sleep, IPIs |
//! | `kthread`   | kernel stacks with guard pages, the `Pcb`, the assembly `cpu_switch`          |
//! | `trap`      | host signal entry: SIGSEGV/SIGBUS/SIGILL/SIGFPE/SIGTRAP in kernel code, SIGUSR1 |
//! | `stop`      | stopping and restarting the other CPUs for the debugger (`stopsig`)          |
//! | `timer`     | the kernel timer queue (callouts) serviced by CPUs at safe points              |
//! | `sync`      | spinlocks that count what a CPU holds                                          |
//! | `futex`     | futex wait/wake on atomics                                                     |
//! | `time`      | monotonic time since boot and the realtime clock                              |
//! | `console`   | console output, terminal state (raw mode), single keys for the debugger      |
//! | `console_input` | console input thread: keys to the kernel as interrupts, `^\` break-in |
//! | `console_output` | console output queued for a host thread while the terminal is raw |
//! | `disk`      | disk images: pread/pwrite, the copy-on-write overlay of `-R`                  |
//! | `dump`      | crash dumps: an ELF core of the kernel process (`vmcore.N`), read without faults |
//! | `ctl`       | the control socket (`-C`): a host thread accepting `vkctl`'s requests    |
//! | `host`      | process-wide host state: exit, re-exec, pidfile, signals for the main thread  |
//! | `hostmem`   | host memory: smaps and status figures (`show memory`), malloc thresholds      |
//! | `hostsock`  | host sockets for AF_INET/AF_INET6 (non-blocking), the readiness watcher (epoll) |
//!
//! Rule: signal handlers only set per-CPU bits (and park a CPU that is asked to stop); work
//! happens at safe points chosen by the kernel. A fatal trap in kernel code is the exception:
//! like a real machine check it calls the kernel's trap hook, which runs the debugger.

pub mod console;
pub mod console_input;
pub mod console_output;
pub mod cpu;
pub mod ctl;
pub mod disk;
pub mod dump;
pub mod futex;
pub mod host;
pub mod hostmem;
pub mod hostdir;
pub mod hostsock;
pub mod io;
pub mod kthread;
pub mod physmem;
pub mod prefill;
pub mod stop;
pub mod stub;
pub mod sync;
pub mod time;
pub mod timer;
pub mod trap;

/// The most virtual CPUs vk runs.
pub const MAXCPU: usize = 16;
/// Page size of the guest and of physical memory.
pub const PAGE_SIZE: usize = 4096;
