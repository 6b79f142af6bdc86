//! io threads: host I/O that must not block a CPU (console input, later disk requests) runs
//! here, and completes like an interrupt: the completion runs on a CPU at its next safe point
//! (a posted cross-CPU call), never touching kernel state from the io thread itself.

use std::sync::OnceLock;

use crossbeam_channel::{Receiver, Sender, unbounded};

type Job = Box<dyn FnOnce() + Send + 'static>;

static QUEUE: OnceLock<Sender<Job>> = OnceLock::new();

/// io threads started.
pub const NTHREADS: usize = 2;

fn worker(rx: Receiver<Job>) {
    while let Ok(job) = rx.recv() {
        job();
    }
}

fn queue() -> &'static Sender<Job> {
    QUEUE.get_or_init(|| {
        let (tx, rx) = unbounded::<Job>();
        for i in 0..NTHREADS {
            let rx = rx.clone();
            if let Err(e) = crate::cpu::spawn_host_thread(&format!("io{i}"), move || worker(rx)) {
                log::error!("io: cannot start an io thread: {e}");
            }
        }
        tx
    })
}

/// Run `work` on an io thread, then `done(result)` on CPU `cpu` at its next safe point.
pub fn submit<T: Send + 'static>(cpu: u32, work: impl FnOnce() -> T + Send + 'static, done: impl FnOnce(T) + Send + 'static) {
    let job: Job = Box::new(move || {
        let r = work();
        crate::cpu::post_call(cpu, move || done(r));
    });
    if queue().send(job).is_err() {
        log::error!("io: the io threads are gone");
    }
}

/// read(2) on a host descriptor (retrying EINTR); for io threads.
pub fn read_fd(fd: i32, len: usize) -> Result<Vec<u8>, i32> {
    let mut buf = vec![0u8; len];
    loop {
        // SAFETY: read(2) into a buffer we own of `len` bytes.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), len) };
        if n >= 0 {
            buf.truncate(n as usize);
            return Ok(buf);
        }
        let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO);
        if e != libc::EINTR {
            return Err(e);
        }
    }
}

/// getrandom(2) bytes.
pub fn random_bytes(buf: &mut [u8]) {
    let mut done = 0;
    while done < buf.len() {
        // SAFETY: getrandom writes at most the remaining length into our buffer.
        let n = unsafe { libc::getrandom(buf[done..].as_mut_ptr().cast(), buf.len() - done, 0) };
        if n > 0 {
            done += n as usize;
        }
    }
}
