//! The whole boot, as a person sees it: busybox init runs /etc/rc and login on the console,
//! root logs in with its password, uses busybox (files, pipes, a background job, ^C, ps, df,
//! mount), and `poweroff` stops the machine with status 0 and a clean file system (`e2fsck -fn`).
//! `vps` sees the booted system. Each test boots its own copy of `run/rootimg.01`.

use std::time::Duration;

use vk_tests::PtyKernel;
use vk_tests::image::ImageCopy;

fn login(k: &mut PtyKernel) {
    k.expect("login: ");
    k.type_bytes(b"root\r");
    k.expect("Password: ");
    k.type_bytes(b"root\r");
    k.expect("# ");
}

/// Type a command line and wait for the output between a marker it prints and the next prompt.
fn run(k: &mut PtyKernel, cmd: &str) -> String {
    k.type_bytes(format!("echo ==''==; {cmd}\r").as_bytes());
    k.expect("====\r\n");
    k.expect("# ")
}

#[test]
fn login_on_the_console_use_busybox_and_poweroff() {
    let image = ImageCopy::new("login");
    let mut k = PtyKernel::start(&["-m", "64m", "-n", "2", "-r", image.path()], 24, 80);
    let boot = k.expect("login: ");
    assert!(boot.contains("Welcome to vk"), "the rc script prints the motd:\n{boot}");
    k.type_bytes(b"root\r");
    k.expect("Password: ");
    k.type_bytes(b"wrong\r");
    k.expect("Login incorrect");
    login(&mut k);

    let out = run(&mut k, "echo $((6 * 7)) $(id -un) $(hostname)");
    assert!(out.contains("42 root vk"), "{out}");
    let out = run(&mut k, "echo hello > /tmp/f; cat /tmp/f /tmp/f | wc -l; ls /tmp");
    assert!(out.contains("2\r\n") && out.contains("f\r\n"), "{out}");
    // A background job, listed and killed.
    let out = run(&mut k, "sleep 100 & jobs");
    assert!(out.contains("Running") && out.contains("sleep 100"), "{out}");
    let out = run(&mut k, "kill %1; wait %1; echo killed $?");
    assert!(out.contains("killed 143"), "{out}");
    // ^C ends a foreground sleep; the shell stays.
    k.type_bytes(b"echo sl''eeping; sleep 100\r");
    k.expect("sleeping\r\n");
    std::thread::sleep(Duration::from_millis(200));
    k.type_bytes(b"\x03");
    k.expect("# ");
    k.type_bytes(b"echo status $?\r");
    k.expect("status 130\r\n");
    k.expect("# ");
    // ps: init, login's shell and ps itself, with their parents.
    let out = run(&mut k, "ps -o pid,ppid,comm");
    assert!(out.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["1", "0", "init"]), "{out}");
    let out = run(&mut k, "mount; df");
    for want in [" on / type ", " on /proc type proc", " on /dev type devfs", " on /tmp type tmpfs", "Use%"] {
        assert!(out.contains(want), "no {want:?} in:\n{out}");
    }

    // From the host: vps lists the booted system with its wait channels.
    // (VSZ and RSS are published by the syncer once a second: wait for a non-zero RSS.)
    let vps = vk_tests::vps_until(k.pid(), "no RSS for sh", |vps| {
        vps.lines().find(|l| l.ends_with("(sh)")).is_some_and(|l| l.split_whitespace().nth(7) != Some("0"))
    });
    // The shell at its prompt is the terminal's foreground group: `+` in STAT.
    let sh = vps.lines().find(|l| l.ends_with("(sh)")).expect("sh");
    assert!(sh.split_whitespace().nth(9).is_some_and(|st| st.contains('+')), "{vps}");
    // init has no controlling terminal (as on Linux: opening /dev/console never gives one);
    // login has it, from init's TIOCSCTTY for inittab's `-/bin/login`.
    for (name, wchan, tty) in [("(init)", "sigwait", " ?? "), ("(login)", "wait", " con ")] {
        let line = vps.lines().find(|l| l.ends_with(name)).unwrap_or_else(|| panic!("no {name}:\n{vps}"));
        assert!(line.contains(&format!(" {wchan} ")) && line.contains(tty), "{line}");
    }

    k.type_bytes(b"poweroff\r");
    k.expect("The operating system has halted.");
    assert_eq!(k.wait().code(), Some(0), "{}", k.output());
    let (code, fsck) = image.fsck();
    assert_eq!(code, Some(0), "e2fsck -fn after poweroff:\n{fsck}");
}

#[test]
fn single_user_boot_gives_a_shell_without_login() {
    let image = ImageCopy::new("single");
    let mut k = PtyKernel::start(&["-m", "64m", "-n", "2", "-s", "-r", image.path()], 24, 80);
    k.expect("# ");
    let out = run(&mut k, "echo single $(id -u)");
    assert!(out.contains("single 0"), "{out}");
    // poweroff -f skips init's shutdown (no umount): the kernel still syncs and marks the
    // file system clean at halt.
    let out = run(&mut k, "echo persisted > /root/f; cat /root/f");
    assert!(out.contains("persisted"), "{out}");
    k.type_bytes(b"poweroff -f\r");
    k.expect("The operating system has halted.");
    assert_eq!(k.wait().code(), Some(0), "{}", k.output());
    let (code, fsck) = image.fsck();
    assert_eq!(code, Some(0), "e2fsck -fn after poweroff -f:\n{fsck}");
}

#[test]
fn host_sigterm_at_the_login_prompt_is_a_clean_shutdown() {
    let image = ImageCopy::new("sigterm");
    let mut k = PtyKernel::start(&["-m", "64m", "-n", "2", "-r", image.path()], 24, 80);
    k.expect("login: ");
    k.signal(libc::SIGTERM);
    k.expect("The operating system has halted.");
    assert_eq!(k.wait().code(), Some(0), "{}", k.output());
    let (code, fsck) = image.fsck();
    assert_eq!(code, Some(0), "e2fsck -fn after SIGTERM:\n{fsck}");
}

#[test]
fn reboot_from_the_shell_comes_back_to_login_with_the_files() {
    let image = ImageCopy::new("reboot");
    let mut k = PtyKernel::start(&["-m", "64m", "-n", "2", "-r", image.path()], 24, 80);
    login(&mut k);
    run(&mut k, "echo kept > /root/before-reboot");
    k.type_bytes(b"reboot\r");
    k.expect("Rebooting...");
    login(&mut k);
    let out = run(&mut k, "cat /root/before-reboot");
    assert!(out.contains("kept"), "{out}");
    k.type_bytes(b"poweroff\r");
    k.expect("The operating system has halted.");
    assert_eq!(k.wait().code(), Some(0), "{}", k.output());
    let (code, fsck) = image.fsck();
    assert_eq!(code, Some(0), "e2fsck -fn after reboot and poweroff:\n{fsck}");
}

#[test]
fn ddb_sees_the_booted_system() {
    let image = ImageCopy::new("ddb");
    let mut k = PtyKernel::start(&["-m", "64m", "-n", "2", "-r", image.path()], 24, 80);
    login(&mut k);
    let out = run(&mut k, "echo shell $$");
    let sh = out.split_whitespace().nth(1).expect("the shell's pid").to_string();
    // Break in once the shell is back waiting for a key (vps reads that from outside).
    vk_tests::vps_until(k.pid(), "the shell never waited for input", |vps| {
        vps.lines().any(|l| l.ends_with("(sh)") && (l.contains(" poll ") || l.contains(" ttyin ")))
    });
    k.type_bytes(b"\x1c");
    k.expect("db> ");
    k.type_bytes(b"ps\r");
    let ps = k.expect("db> ");
    let line = |cmd: &str| ps.lines().find(|l| l.trim_end().ends_with(cmd)).unwrap_or_else(|| panic!("no {cmd} in:\n{ps}")).to_string();
    assert!(line("init").contains(" sigwait "), "{ps}");
    assert!(line("login").contains(" wait "), "{ps}");
    let sh_line = line(" sh");
    assert!(sh_line.trim_start().starts_with(&format!("{sh} ")), "{sh_line}");
    assert!(sh_line.contains(" ttyin ") || sh_line.contains(" poll "), "the shell waits for the console: {sh_line}");
    k.type_bytes(format!("trace {sh}\r").as_bytes());
    let t = k.expect("db> ");
    assert!(t.contains(&format!("Tracing pid {sh}")) && t.contains("mi_switch("), "{t}");
    k.type_bytes(b"continue\r");
    // Back at the shell, which never noticed. (Keys typed while ddb still owns the terminal
    // may be read by its line editor: type until the shell answers.)
    let mut back = false;
    for _ in 0..30 {
        k.type_bytes(b"echo still $((40 + 2))\r");
        if k.try_expect("still 42", Duration::from_secs(1)).is_some() {
            back = true;
            break;
        }
    }
    assert!(back, "the shell never answered after continue:\n{}", k.output());
    k.expect("# ");
    k.type_bytes(b"poweroff\r");
    k.expect("The operating system has halted.");
    assert_eq!(k.wait().code(), Some(0), "{}", k.output());
}

/// Leave work behind: a stopped job is in an orphaned process group once the shell that
/// started it is gone, and gets SIGHUP and SIGCONT (it must not stay stopped for ever); a
/// foreground job whose session leader dies gets SIGHUP from the terminal's hang-up.
#[test]
fn logging_out_hangs_up_what_is_left() {
    let image = ImageCopy::new("hangup");
    let mut k = PtyKernel::start(&["-m", "64m", "-n", "2", "-r", image.path()], 24, 80);
    login(&mut k);
    // A shell with job control puts the job in a group of its own, stops it and leaves
    // (a non-interactive shell does not kill its stopped jobs on the way out).
    // kill(2) returns before the target stops (on Linux too): look until it has, a while.
    let out = run(
        &mut k,
        "sh -c 'set -m; sleep 123 & kill -STOP $!; echo job $!; for i in 1 2 3 4 5 6 7 8 9 10; do grep -q State:.T /proc/$!/status && break; usleep 100000; done; grep State /proc/$!/status'",
    );
    assert!(out.contains("T (stopped)"), "{out}");
    // Gone: hung up, continued, killed by SIGHUP and reaped by init.
    let mut gone = false;
    for _ in 0..50 {
        if run(&mut k, "ps -o pid,args").lines().all(|l| !l.contains("sleep 123")) {
            gone = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(gone, "the stopped job outlived its session:\n{}", k.output());

    // The foreground job catches the hang-up when its session ends under it.
    k.type_bytes(b"sh -c 'trap \"echo hup > /root/hup; exit\" HUP; kill -9 $PPID; while :; do sleep 1; done'\r");
    login(&mut k);
    let mut got = String::new();
    for _ in 0..50 {
        got = run(&mut k, "cat /root/hup 2>/dev/null");
        if got.contains("hup") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(got.contains("hup"), "no SIGHUP for the foreground job:\n{}", k.output());
    k.type_bytes(b"poweroff\r");
    k.expect("The operating system has halted.");
    assert_eq!(k.wait().code(), Some(0), "{}", k.output());
}

/// A user (added by root, with root's password hash) logs in: its shell runs with uid 1000,
/// cannot read /etc/shadow (root's, mode 0600) nor look into /root (0700), and root still can.
#[test]
fn a_user_cannot_read_the_shadow_file() {
    let image = ImageCopy::new("user");
    let mut k = PtyKernel::start(&["-m", "64m", "-n", "2", "-r", image.path()], 24, 80);
    login(&mut k);
    run(
        &mut k,
        "grep '^root:' /etc/shadow | sed 's/^root:/user:/' >> /etc/shadow; \
         echo 'user:x:1000:1000:user:/tmp:/bin/sh' >> /etc/passwd; echo 'users:x:1000:' >> /etc/group",
    );
    k.type_bytes(b"exit\r");
    k.expect("login: ");
    k.type_bytes(b"user\r");
    k.expect("Password: ");
    k.type_bytes(b"root\r");
    k.expect("$ ");
    k.type_bytes(b"echo ==''==; id; cat /etc/shadow; ls /root; echo x > /root/x; echo pi''ped | cat /dev/stdin; ls -l /dev/console\r");
    k.expect("====\r\n");
    let out = k.expect("$ ");
    assert!(out.contains("uid=1000(user) gid=1000(users)"), "{out}");
    assert!(out.contains("can't open '/etc/shadow': Permission denied"), "{out}");
    assert!(out.contains("can't open '/root': Permission denied"), "{out}");
    assert!(out.contains("can't create /root/x: Permission denied"), "{out}");
    assert!(!out.contains("$6$"), "the hashes leaked:\n{out}");
    // Its own pipe and terminal (login gave it the console) open through /proc/self/fd.
    assert!(out.contains("piped\r\n"), "{out}");
    assert!(out.lines().any(|l| l.starts_with("crw-------") && l.contains(" user ")), "{out}");
    k.type_bytes(b"exit\r");
    login(&mut k);
    let out = run(&mut k, "cut -d: -f1 /etc/shadow | head -1; ls -a /root | grep -c x");
    assert!(out.contains("root\r\n0\r\n"), "{out}");
    k.type_bytes(b"poweroff\r");
    k.expect("The operating system has halted.");
    assert_eq!(k.wait().code(), Some(0), "{}", k.output());
}
