//! The Debian image (`make debian`: run/debian.img, bookworm made by mmdebstrap) under vk, as
//! a person uses it: boot sysvinit to getty's `login:` on the console, log in as root, run
//! everyday tools, see that an unprivileged user cannot read /etc/shadow and that the tools
//! later tests need are there, power off.
//!
//! The console must be a terminal for getty and login, so the kernel runs on a pty. Each
//! command's output is read up to a marker the shell computes (`echo END$((n))`), which the
//! echo of the typed line cannot contain.

use std::path::{Path, PathBuf};
use std::process::Command;

use vk_tests::guest::PROGRAM_TIMEOUT;
use vk_tests::image::e2fsck;
use vk_tests::{PtyKernel, bin};

/// Memory for the Debian guest.
const MEMORY: &str = "256m";

/// The terminal controls bash (readline) writes around each command.
const BRACKETED_PASTE_ON: &str = "\x1b[?2004h";
const BRACKETED_PASTE_OFF: &str = "\x1b[?2004l";

fn debian_image() -> PathBuf {
    let img = bin("debian.img");
    assert!(img.is_file(), "{} is missing: run `make debian`", img.display());
    img
}

/// Wait for `needle` (a boot on a busy machine may be slow: PROGRAM_TIMEOUT, never a timing
/// assertion), panicking with the console output if it does not come.
fn wait_for(k: &mut PtyKernel, needle: &str) -> String {
    k.try_expect(needle, PROGRAM_TIMEOUT)
        .unwrap_or_else(|| panic!("no {needle:?} on the console; output:\n{}", k.output()))
}

/// Boot `image` (copy-on-write unless `writable`) and log in as root at the console.
fn boot_and_log_in(image: &Path, writable: bool) -> PtyKernel {
    let img = image.to_str().expect("utf-8 image path");
    let disk = if writable { "-r" } else { "-R" };
    let mut k = PtyKernel::start(&["-m", MEMORY, "-n", "2", "-C", "none", disk, img], 24, 200);
    wait_for(&mut k, "INIT: version");
    wait_for(&mut k, "vk login: ");
    k.type_bytes(b"root\r");
    wait_for(&mut k, "Password: ");
    k.type_bytes(b"root\r");
    wait_for(&mut k, "root@vk:~# ");
    k
}

/// Run a shell command line at the root prompt and return what it printed (after the echo
/// of the line, up to the end marker).
fn run(k: &mut PtyKernel, n: u32, line: &str) -> String {
    k.type_bytes(format!("{line}; echo END$(({n}+1000))\r").as_bytes());
    let out = wait_for(k, &format!("END{}", n + 1000));
    let out = out.split_once('\n').map_or(out.as_str(), |(_echo, rest)| rest);
    // bash turns bracketed paste off (and returns the cursor) while a command runs, and on
    // again at the prompt; the terminal ends lines with \r\n.
    let out = out.replace(BRACKETED_PASTE_OFF, "").replace(BRACKETED_PASTE_ON, "").replace("\r\n", "\n");
    let out = out.trim_start_matches('\r').to_string();
    wait_for(k, "root@vk:~# ");
    out
}

#[test]
fn boots_to_login_and_runs_everyday_tools() {
    let image = debian_image();
    let mut k = boot_and_log_in(&image, false);
    let boot = k.output();
    assert!(boot.contains("INIT: Entering runlevel: 2"), "{boot}");
    assert!(boot.contains("Debian GNU/Linux 12 vk console"), "{boot}");
    // Every boot script finds what it needs: /dev/shm and /dev/pts mount, /tmp is cleaned.
    assert!(!boot.contains("failed!") && !boot.contains("(warning)"), "{boot}");

    let id = run(&mut k, 1, "id");
    assert!(id.contains("uid=0(root) gid=0(root) groups=0(root)"), "{id}");

    let bash = run(&mut k, 2, r#"bash -c 'echo "sum=$((6*7)) shell=$0"'"#);
    assert!(bash.contains("sum=42 shell=bash"), "{bash}");

    let ls = run(&mut k, 3, "ls -l /etc/passwd /etc/shadow /bin/bash");
    assert!(ls.contains("-rw-r--r-- 1 root root") && ls.contains(" /etc/passwd"), "{ls}");
    assert!(ls.contains("-rw-r----- 1 root shadow") && ls.contains(" /etc/shadow"), "{ls}");
    assert!(ls.contains("-rwxr-xr-x 1 root root") && ls.contains(" /bin/bash"), "{ls}");
    assert!(!ls.contains("ls:"), "ls complained: {ls}");

    let ps = run(&mut k, 4, "ps -ef");
    assert!(ps.contains("UID") && ps.contains("PID") && ps.contains("CMD"), "{ps}");
    let init =
        ps.lines().find(|l| l.split_whitespace().nth(1) == Some("1")).unwrap_or_else(|| panic!("no pid 1 in ps: {ps}"));
    assert!(init.starts_with("root") && init.ends_with("/sbin/init"), "{ps}");
    assert!(ps.contains("-bash") && ps.contains("/bin/login"), "{ps}");

    let os = run(&mut k, 5, "cat /etc/os-release");
    assert!(os.contains(r#"PRETTY_NAME="Debian GNU/Linux 12 (bookworm)""#), "{os}");

    let dpkg = run(
        &mut k,
        6,
        "dpkg -l bash procps sysvinit-core strace gdb | grep '^ii' | awk '{print $2}' | sort | tr '\\n' ,",
    );
    assert!(dpkg.contains("bash,gdb,procps,strace,sysvinit-core,"), "{dpkg}");
    let apt = run(&mut k, 7, "apt-cache policy bash");
    assert!(apt.contains("Installed: 5.2") && apt.contains("/var/lib/dpkg/status"), "{apt}");

    let pipe =
        run(&mut k, 8, "echo \"n=$(seq 1 100 | grep 7 | sort -rn | head -3 | tr '\\n' ' ')$(seq 1 100 | grep -c 7)\"");
    assert!(pipe.contains("n=97 87 79 19"), "{pipe}");

    let perl = run(&mut k, 9, r#"perl -e 'printf "perl=%d\n", 6*7'"#);
    assert!(perl.contains("perl=42"), "{perl}");

    // nobody (uid 65534) may not read /etc/shadow, and is who su says.
    let su = run(&mut k, 10, "su -s /bin/sh nobody -c 'id -un; cat /etc/shadow; echo status=$?'");
    assert!(
        su.contains("nobody") && su.contains("cat: /etc/shadow: Permission denied") && su.contains("status=1"),
        "{su}"
    );
    assert!(!su.contains("root:"), "nobody read /etc/shadow: {su}");

    // A new user: her home and files are hers, /etc/shadow is not.
    let alice =
        run(&mut k, 12, "useradd -m alice && su - alice -c 'id -un; pwd; touch mine; ls -l mine; cat /etc/shadow'");
    assert!(alice.lines().any(|l| l == "alice") && alice.contains("/home/alice"), "{alice}");
    assert!(alice.contains("-rw-r--r-- 1 alice alice 0 ") && alice.contains(" mine"), "{alice}");
    assert!(alice.contains("cat: /etc/shadow: Permission denied"), "{alice}");
    let who = run(&mut k, 13, "who");
    assert!(who.lines().any(|l| l.starts_with("root") && l.contains("console")), "{who}");

    // What later tests and users need: strace, gdb, ip, apt, CA certificates.
    let v = run(
        &mut k,
        11,
        "strace -V | head -1; gdb --version | head -1; ip -V; apt-get --version | head -1; ls /etc/ssl/certs | grep -c pem",
    );
    assert!(v.contains("strace -- version 6."), "{v}");
    assert!(v.contains("GNU gdb (Debian 13"), "{v}");
    assert!(v.contains("ip utility, iproute2-"), "{v}");
    assert!(v.contains("apt 2.6"), "{v}");
    let ncerts: u32 = v.lines().filter_map(|l| l.trim().parse().ok()).next().unwrap_or(0);
    assert!(ncerts > 100, "CA certificates: {v}");
}

/// `poweroff` (sysvinit: runlevel 0, the halt scripts, then halt(8)) stops the kernel with
/// status 0 and leaves the file system clean.
#[test]
fn poweroff_leaves_a_clean_file_system() {
    let image = debian_image();
    let dir = std::env::temp_dir().join(format!("vk-debian-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("make temp dir");
    let copy = dir.join("debian.img");
    let st = Command::new("cp").arg("--sparse=always").arg(&image).arg(&copy).status().expect("cp");
    assert!(st.success(), "cp --sparse=always {} failed", image.display());

    let mut k = boot_and_log_in(&copy, true);
    let touch = run(&mut k, 1, "echo kept > /root/note && sync && cat /root/note");
    assert!(touch.contains("kept"), "{touch}");
    k.type_bytes(b"poweroff\r");
    wait_for(&mut k, "INIT: Switching to runlevel: 0");
    // halt(8) called reboot(2). (Not the halt script's "Will now halt.": startpar copies the
    // scripts' output to the console from a pty, and halt may stop the machine first.)
    wait_for(&mut k, "reboot: halt by pid");
    wait_for(&mut k, "The operating system has halted.");
    let status = k.wait();
    assert_eq!(status.code(), Some(0), "{}", k.output());
    let (code, fsck) = e2fsck(&copy);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code, Some(0), "e2fsck -fn after poweroff:\n{fsck}");
}
