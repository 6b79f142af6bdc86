//! t_rust — the Rust standard library on the guest ABI (std only, no crates).
//!
//! Covers: threads (spawn/join, scoped threads, thread-locals, panics caught by join),
//! `mpsc` channels (unbounded and a rendezvous `sync_channel`), `Mutex`/`Condvar`/`Barrier`,
//! `std::fs` in a fresh directory under /tmp (create, write, append, read, seek, set_len,
//! metadata, permissions, rename, read_dir, hard and symbolic links, canonicalize, remove),
//! `std::process::Command` re-running `/proc/self/exe` in a child mode (arguments, environment
//! set/removed/cleared, the inherited working directory, piped stdin/stdout/stderr, exit codes,
//! a child killed by SIGKILL), environment variables, `Instant` (never backwards, sleeps at least as
//! long as asked), `SystemTime`, `available_parallelism`.
//!
//! Built static: for x86_64-unknown-linux-musl when that target is installed, otherwise glibc
//! with `+crt-static` (then glibc itself uses clone3, rseq, posix_spawn's CLONE_VFORK, statx…).
//! Prints `FAIL file:line: expression` per failure and `N passed, M failed` last; exits 1 on
//! any failure.

use std::cell::Cell;
use std::collections::HashMap;
use std::env;
use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{self, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

static PASSED: AtomicUsize = AtomicUsize::new(0);
static FAILED: AtomicUsize = AtomicUsize::new(0);

/// Counts one behaviour; prints the location and the expression when it does not hold.
macro_rules! check {
    ($cond:expr) => {
        if $cond {
            PASSED.fetch_add(1, Ordering::Relaxed);
        } else {
            FAILED.fetch_add(1, Ordering::Relaxed);
            println!("FAIL {}:{}: {}", file!(), line!(), stringify!($cond));
        }
    };
    ($cond:expr, $($detail:tt)+) => {
        if $cond {
            PASSED.fetch_add(1, Ordering::Relaxed);
        } else {
            FAILED.fetch_add(1, Ordering::Relaxed);
            println!("FAIL {}:{}: {}", file!(), line!(), stringify!($cond));
            println!("     {}", format!($($detail)+));
        }
    };
}

// ------------------------------------------------------------------ child modes

/// `t_rust child <args…>`: echo arguments, selected environment, cwd and stdin; exit 3.
fn child_main(args: &[String]) -> ! {
    let mut input = String::new();
    let _ = std::io::stdin().read_to_string(&mut input);
    let cwd = env::current_dir().map(|p| p.display().to_string()).unwrap_or_default();
    println!("args={}", args.join("|"));
    println!("VKT_SET={}", env::var("VKT_SET").unwrap_or_else(|_| "<unset>".into()));
    println!("VKT_GONE={}", env::var("VKT_GONE").unwrap_or_else(|_| "<unset>".into()));
    println!("nvars={}", env::vars_os().count());
    println!("cwd={cwd}");
    println!("stdin={}", input.trim_end());
    eprintln!("to stderr");
    process::exit(3);
}

// ------------------------------------------------------------------ threads

thread_local! {
    static PER_THREAD: Cell<u32> = const { Cell::new(1) };
}

fn test_threads() {
    let handles: Vec<_> = (0..8u64).map(|i| thread::spawn(move || i * i)).collect();
    let results: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap_or(u64::MAX)).collect();
    check!(results == (0..8u64).map(|i| i * i).collect::<Vec<_>>());

    // Scoped threads borrow from the stack.
    let data = vec![1u64, 2, 3, 4, 5, 6, 7, 8];
    let total = AtomicUsize::new(0);
    thread::scope(|s| {
        for chunk in data.chunks(2) {
            let total = &total;
            s.spawn(move || {
                total.fetch_add(chunk.iter().sum::<u64>() as usize, Ordering::SeqCst);
            });
        }
    });
    check!(total.load(Ordering::SeqCst) == 36);

    // Thread-locals start from their initial value in every thread.
    PER_THREAD.with(|v| v.set(99));
    let seen = thread::spawn(|| {
        let first = PER_THREAD.with(|v| v.get());
        PER_THREAD.with(|v| v.set(5));
        (first, PER_THREAD.with(|v| v.get()))
    })
    .join();
    check!(matches!(seen, Ok((1, 5))));
    check!(PER_THREAD.with(|v| v.get()) == 99);

    // A panic in a thread is caught by join (unwinding works in a static binary).
    let previous_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let joined = thread::spawn(|| -> u32 { panic!("expected panic") }).join();
    std::panic::set_hook(previous_hook);
    check!(joined.is_err());

    // Named thread with a small stack.
    let name = thread::Builder::new()
        .name("vkt-worker".into())
        .stack_size(64 * 1024)
        .spawn(|| thread::current().name().map(str::to_owned))
        .map(|h| h.join());
    check!(matches!(name, Ok(Ok(Some(ref n))) if n == "vkt-worker"));

    let cpus = thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    check!(cpus >= 1, "available_parallelism {cpus}");
}

fn test_channels_and_sync() {
    let (tx, rx) = mpsc::channel::<u64>();
    let producers: Vec<_> = (0..4u64)
        .map(|p| {
            let tx = tx.clone();
            thread::spawn(move || {
                for i in 0..1000 {
                    tx.send(p * 1000 + i).expect("receiver alive");
                }
            })
        })
        .collect();
    drop(tx);
    let received: Vec<u64> = rx.iter().collect();
    for p in producers {
        let _ = p.join();
    }
    check!(received.len() == 4000);
    check!(received.iter().sum::<u64>() == (0..4000u64).sum::<u64>());

    // Rendezvous channel: the sender blocks until the receiver takes each value.
    let (tx, rx) = mpsc::sync_channel::<u32>(0);
    let sender = thread::spawn(move || {
        for i in 0..100 {
            if tx.send(i).is_err() {
                return false;
            }
        }
        true
    });
    let got: Vec<u32> = (0..100).map(|_| rx.recv().unwrap_or(u32::MAX)).collect();
    check!(sender.join().unwrap_or(false));
    check!(got == (0..100).collect::<Vec<_>>());
    check!(rx.recv_timeout(Duration::from_millis(10)).is_err());

    // Mutex + Condvar hand-off, and a Barrier.
    let pair = Arc::new((Mutex::new(0u32), Condvar::new()));
    let waiter = {
        let pair = Arc::clone(&pair);
        thread::spawn(move || {
            let (lock, cv) = &*pair;
            let mut value = lock.lock().expect("not poisoned");
            while *value < 10 {
                value = cv.wait(value).expect("not poisoned");
            }
            *value
        })
    };
    for _ in 0..10 {
        let (lock, cv) = &*pair;
        *lock.lock().expect("not poisoned") += 1;
        cv.notify_all();
    }
    check!(waiter.join().unwrap_or(0) == 10);

    let barrier = Arc::new(Barrier::new(4));
    let arrived = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (barrier, arrived) = (Arc::clone(&barrier), Arc::clone(&arrived));
            thread::spawn(move || {
                arrived.fetch_add(1, Ordering::SeqCst);
                barrier.wait();
                arrived.load(Ordering::SeqCst) // everyone is past the increment
            })
        })
        .collect();
    let all_four = workers.into_iter().all(|w| w.join().unwrap_or(0) == 4);
    check!(all_four);
}

// ------------------------------------------------------------------ files

fn unique_tmp_dir() -> PathBuf {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    PathBuf::from(format!("/tmp/vkt-rust.{}.{}", process::id(), nanos))
}

fn test_fs(dir: &Path) {
    check!(fs::create_dir(dir).is_ok());
    check!(fs::create_dir(dir).map_err(|e| e.kind()) == Err(std::io::ErrorKind::AlreadyExists));
    let file = dir.join("data.txt");
    check!(fs::write(&file, b"hello\n").is_ok());
    check!(fs::read_to_string(&file).ok().as_deref() == Some("hello\n"));

    let appended = OpenOptions::new().append(true).open(&file).and_then(|mut f| f.write_all(b"world\n"));
    check!(appended.is_ok());
    check!(fs::read(&file).ok().as_deref() == Some(&b"hello\nworld\n"[..]));

    let mut f = match OpenOptions::new().read(true).write(true).open(&file) {
        Ok(f) => f,
        Err(e) => {
            check!(false, "open {}: {e}", file.display());
            return;
        }
    };
    let mut buf = [0u8; 5];
    check!(f.seek(SeekFrom::Start(6)).ok() == Some(6));
    check!(f.read_exact(&mut buf).is_ok() && &buf == b"world");
    check!(f.seek(SeekFrom::End(-1)).ok() == Some(11));
    check!(f.set_len(3).is_ok());
    let meta = f.metadata();
    check!(matches!(meta, Ok(ref m) if m.len() == 3 && m.is_file() && m.nlink() == 1));
    drop(f);

    check!(fs::set_permissions(&file, fs::Permissions::from_mode(0o640)).is_ok());
    let mode = fs::metadata(&file).map(|m| m.permissions().mode() & 0o777).unwrap_or(0);
    check!(mode == 0o640, "mode {mode:o}");

    let renamed = dir.join("renamed.txt");
    check!(fs::rename(&file, &renamed).is_ok());
    check!(!file.exists() && renamed.exists());
    check!(fs::hard_link(&renamed, dir.join("hard")).is_ok());
    check!(fs::metadata(&renamed).map(|m| m.nlink()).unwrap_or(0) == 2);
    check!(std::os::unix::fs::symlink("renamed.txt", dir.join("sym")).is_ok());
    check!(fs::read_link(dir.join("sym")).ok() == Some(PathBuf::from("renamed.txt")));
    check!(fs::symlink_metadata(dir.join("sym")).map(|m| m.file_type().is_symlink()).unwrap_or(false));
    check!(fs::read_to_string(dir.join("sym")).ok().as_deref() == Some("hel"));
    check!(fs::create_dir_all(dir.join("a/b/c")).is_ok());
    check!(fs::write(dir.join("a/b/c/deep"), b"x").is_ok());

    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    check!(names == ["a", "hard", "renamed.txt", "sym"], "read_dir {names:?}");

    let canonical = fs::canonicalize(dir.join("a/b/../b/c/deep"));
    check!(canonical.as_ref().ok() == Some(&dir.join("a/b/c/deep")), "canonicalize {canonical:?}");
    check!(fs::remove_file(dir.join("hard")).is_ok());
    check!(fs::metadata(&renamed).map(|m| m.nlink()).unwrap_or(0) == 1);
    check!(fs::remove_dir(dir.join("a")).is_err()); // not empty
    check!(fs::read("/nonexistent/file").map_err(|e| e.kind()) == Err(std::io::ErrorKind::NotFound));

    // A larger file through buffered I/O.
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    check!(fs::write(dir.join("big"), &big).is_ok());
    check!(fs::read(dir.join("big")).ok() == Some(big));
}

// ------------------------------------------------------------------ processes, environment

fn test_command(dir: &Path) {
    let exe = env::current_exe();
    check!(exe.is_ok());
    let exe = exe.unwrap_or_else(|_| PathBuf::from("/proc/self/exe"));

    // Edition 2021: set_var is safe to call; no other thread reads the environment now.
    env::set_var("VKT_SET", "from parent");
    env::set_var("VKT_GONE", "should not reach the child");
    check!(env::var("VKT_SET").ok().as_deref() == Some("from parent"));

    // The child inherits the working directory. (Command::current_dir is avoided on purpose: in a
    // static glibc binary std cannot find posix_spawn_file_actions_addchdir_np, falls back to
    // fork and then needs socketpair(AF_UNIX, SOCK_SEQPACKET), which is beyond this test.)
    let old_cwd = env::current_dir();
    check!(env::set_current_dir(dir).is_ok());
    let child = Command::new("/proc/self/exe")
        .args(["child", "two words", ""])
        .env_remove("VKT_GONE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    check!(child.is_ok());
    if let Ok(mut child) = child {
        if let Some(mut stdin) = child.stdin.take() {
            check!(stdin.write_all(b"piped input\n").is_ok());
        }
        let out = child.wait_with_output();
        check!(out.is_ok());
        if let Ok(out) = out {
            let stdout = String::from_utf8_lossy(&out.stdout);
            let lines: HashMap<&str, &str> = stdout.lines().filter_map(|l| l.split_once('=')).collect();
            check!(out.status.code() == Some(3), "status {:?}", out.status);
            check!(lines.get("args") == Some(&"two words|"), "{stdout}");
            check!(lines.get("VKT_SET") == Some(&"from parent"));
            check!(lines.get("VKT_GONE") == Some(&"<unset>"));
            check!(lines.get("cwd") == Some(&dir.to_str().unwrap_or("?")));
            check!(lines.get("stdin") == Some(&"piped input"));
            check!(String::from_utf8_lossy(&out.stderr) == "to stderr\n");
        }
    }
    check!(old_cwd.map(env::set_current_dir).is_ok_and(|r| r.is_ok()));

    // A cleared environment, through the real path.
    let out = Command::new(&exe).arg("child").env_clear().env("VKT_SET", "only").stdin(Stdio::null()).output();
    check!(matches!(out, Ok(ref o) if o.status.code() == Some(3)));
    if let Ok(out) = out {
        let stdout = String::from_utf8_lossy(&out.stdout);
        check!(stdout.contains("nvars=1\n"), "{stdout}");
        check!(stdout.contains("VKT_SET=only\n"));
    }

    // A child killed by a signal.
    let sleeper = Command::new(&exe).arg("sleep").stdin(Stdio::null()).spawn();
    check!(sleeper.is_ok());
    if let Ok(mut sleeper) = sleeper {
        check!(sleeper.kill().is_ok());
        let status = sleeper.wait();
        check!(matches!(status, Ok(ref s) if s.signal() == Some(9) && s.code().is_none()));
    }

    // Spawning something that does not exist fails cleanly.
    let missing = Command::new("/nonexistent/program").status();
    check!(missing.map_err(|e| e.kind()).err() == Some(std::io::ErrorKind::NotFound));

    env::remove_var("VKT_SET");
    env::remove_var("VKT_GONE");
    check!(env::var("VKT_SET").is_err());
    check!(env::args().count() >= 1);
}

// ------------------------------------------------------------------ time

fn test_time() {
    let start = Instant::now();
    let mut prev = start;
    let mut monotonic = true;
    for _ in 0..10_000 {
        let now = Instant::now();
        monotonic &= now >= prev;
        prev = now;
    }
    check!(monotonic);
    let before_sleep = Instant::now();
    thread::sleep(Duration::from_millis(10));
    check!(before_sleep.elapsed() >= Duration::from_millis(10));
    check!(start.elapsed() >= Duration::from_millis(10));

    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    check!(since_epoch > 1_577_836_800, "{since_epoch}"); // after 2020-01-01
}

extern "C" {
    /// signal(2) from the C library std is linked with; used once, see main().
    fn signal(signum: i32, handler: usize) -> usize;
}

const SIGCHLD: i32 = 17;
const SIG_DFL: usize = 0;

fn main() {
    // A parent may have left SIGCHLD ignored (execve keeps that), which makes the kernel reap
    // children itself and every wait fail with ECHILD. Start from the default.
    // SAFETY: setting the default disposition of SIGCHLD before any thread or child exists.
    unsafe { signal(SIGCHLD, SIG_DFL) };
    let args: Vec<String> = env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("child") => child_main(&args[2..]),
        Some("sleep") => {
            thread::sleep(Duration::from_secs(30));
            process::exit(0);
        }
        _ => {}
    }

    test_threads();
    test_channels_and_sync();
    let dir = unique_tmp_dir();
    test_fs(&dir);
    test_command(&dir);
    test_time();
    check!(fs::remove_dir_all(&dir).is_ok());
    check!(!dir.exists());

    let (passed, failed) = (PASSED.load(Ordering::Relaxed), FAILED.load(Ordering::Relaxed));
    println!("{passed} passed, {failed} failed");
    process::exit(if failed == 0 { 0 } else { 1 });
}
