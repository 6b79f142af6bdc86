//! The guest on the network through host sockets: busybox `wget` in the guest fetches a page
//! from a server this test runs on the host's 127.0.0.1, a host client fetches a page from
//! busybox `httpd` in the guest, and `nc` carries data both ways. Traffic stays on 127.0.0.1.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use vk_tests::Kernel;
use vk_tests::guest::{PROGRAM_TIMEOUT, kernel_args, root_dir, run_guest};

/// A port free on the host's loopback now (bound, read, let go).
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local_addr").port()
}

/// Serve one HTTP request on `l` with `body` (in a thread); the thread returns the request.
fn serve_once(l: TcpListener, body: &'static str) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().expect("accept");
        s.set_read_timeout(Some(Duration::from_secs(30))).ok();
        let mut req = Vec::new();
        let mut buf = [0u8; 1024];
        while !req.windows(4).any(|w| w == b"\r\n\r\n") {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => req.extend_from_slice(&buf[..n]),
            }
        }
        let resp = format!("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        s.write_all(resp.as_bytes()).ok();
        String::from_utf8_lossy(&req).into_owned()
    })
}

#[test]
fn wget_in_the_guest_fetches_from_the_host() {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let server = serve_once(l, "hello from the host\n");
    let url = format!("http://127.0.0.1:{port}/page.txt");
    let (code, out, console) = run_guest("/bin/sh", &["-c", &format!("wget -q -O - {url} && echo @done")], PROGRAM_TIMEOUT);
    assert!(code == Some(0) && out.contains("hello from the host\n@done"), "wget: exit {code:?}; console:\n{console}");
    let req = server.join().expect("server thread");
    assert!(req.starts_with("GET /page.txt HTTP/1."), "request: {req:?}");
}

#[test]
fn a_host_client_fetches_from_httpd_in_the_guest() {
    let port = free_port();
    let script = format!(
        "mkdir -p /tmp/www && echo 'hello from vk' > /tmp/www/index.html && echo @serving && exec httpd -f -p 127.0.0.1:{port} -h /tmp/www"
    );
    let root = root_dir().to_string_lossy().into_owned();
    let argv = kernel_args(&root, "/bin/sh", &["-c", &script]);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let mut k = Kernel::start(&argv);
    k.expect("@serving");
    // httpd binds soon after: retry the connection for a while.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut s = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("cannot connect to httpd in the guest: {e}\n{}", k.output()),
        }
    };
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    s.write_all(b"GET /index.html HTTP/1.0\r\nHost: vk\r\n\r\n").expect("send request");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("read response");
    k.signal(libc::SIGTERM);
    k.wait_within(PROGRAM_TIMEOUT);
    assert!(resp.starts_with("HTTP/1.") && resp.contains(" 200 ") && resp.ends_with("hello from vk\n"), "response: {resp:?}");
}

#[test]
fn nc_carries_data_both_ways() {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let host = std::thread::spawn(move || {
        let (mut s, _) = l.accept().expect("accept");
        s.set_read_timeout(Some(Duration::from_secs(30))).ok();
        let mut got = [0u8; 5];
        s.read_exact(&mut got).expect("read from nc");
        s.write_all(b"pong from the host\n").expect("write to nc");
        got
    });
    let script = format!("echo ping | nc 127.0.0.1 {port}; echo @done");
    let (code, out, console) = run_guest("/bin/sh", &["-c", &script], PROGRAM_TIMEOUT);
    let got = host.join().expect("host thread");
    assert_eq!(&got, b"ping\n");
    assert!(code == Some(0) && out.contains("pong from the host\n@done"), "nc: exit {code:?}; console:\n{console}");
}

#[test]
fn busybox_sees_the_interfaces() {
    let script = "ifconfig lo | grep -o 'inet addr:[0-9.]*'; ip -4 addr show lo | grep -o 'inet [0-9./]*'; \
                  ip link show lo | grep -o 'LOOPBACK'; netstat -tn >/dev/null && echo netstat-ok; \
                  grep -q '^nameserver ' /etc/resolv.conf && echo resolv-ok; grep -q 'localhost' /etc/hosts && echo hosts-ok; echo @done";
    let (code, out, console) = run_guest("/bin/sh", &["-c", script], PROGRAM_TIMEOUT);
    assert!(
        code == Some(0) && out.contains("inet addr:127.0.0.1\ninet 127.0.0.1/8\nLOOPBACK\nnetstat-ok\nresolv-ok\nhosts-ok\n@done"),
        "busybox network tools: exit {code:?}; console:\n{console}"
    );
}

/// `-e net=none`: the guest's loopback is its own. A host server on 127.0.0.1 is out of the
/// guest's reach, and the guest's listener out of the host's — while inside the guest a
/// client reaches it.
#[test]
fn net_none_keeps_the_loopback_inside() {
    let host = TcpListener::bind("127.0.0.1:0").expect("bind");
    let host_port = host.local_addr().expect("addr").port();
    let guest_port = free_port();
    let script = format!(
        "echo x | nc 127.0.0.1 {host_port} && echo reached-host; \
         (echo inside | nc -l -p {guest_port} > /tmp/got) & sleep 1; echo @listening; sleep 2; \
         echo inside | nc 127.0.0.1 {guest_port}; sleep 1; cat /tmp/got; echo @done"
    );
    let root = root_dir().to_string_lossy().into_owned();
    let mut argv = kernel_args(&root, "/bin/sh", &["-c", &script]);
    argv.insert(0, "net=none".into());
    argv.insert(0, "-e".into());
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let mut k = Kernel::start(&argv);
    k.expect("@listening");
    let reached = TcpStream::connect(("127.0.0.1", guest_port));
    k.expect("@done");
    k.wait_within(PROGRAM_TIMEOUT);
    let out = k.output();
    assert!(reached.is_err(), "the host reached the guest's listener on {guest_port}:\n{out}");
    assert!(!out.contains("reached-host"), "the guest reached the host's server:\n{out}");
    assert!(out.contains("inside\n@done"), "the guest's own client did not reach its listener:\n{out}");
    drop(host);
}

/// glibc's view of the network in the guest is the host's: `hostname -I` (getifaddrs over
/// NETLINK_ROUTE) and getaddrinfo with AI_ADDRCONFIG (`getent ahosts`, which asks
/// RTM_GETADDR) print what the same programs print on the host. The programs are the host's
/// glibc ones, staged in /usr/tests/glibc; localhost comes from /etc/hosts (no DNS traffic).
#[test]
fn glibc_hostname_and_getaddrinfo_see_the_hosts_addresses() {
    let dir = root_dir().join("usr/tests/glibc");
    let native = |prog: &str, args: &[&str]| {
        let o = vk_tests::guest::run_native(&dir.join(prog), args, std::path::Path::new("/"), "/usr/bin:/bin", PROGRAM_TIMEOUT);
        assert_eq!(o.code, Some(0), "{prog} {args:?} natively:\n{}", o.output);
        o.output
    };
    let want = format!("{}@\n{}@done", native("hostname", &["-I"]), native("getent", &["ahosts", "localhost"]));
    let script = "/usr/tests/glibc/hostname -I; echo @; /usr/tests/glibc/getent ahosts localhost; echo @done";
    let (code, out, console) = run_guest("/bin/sh", &["-c", script], PROGRAM_TIMEOUT);
    assert!(code == Some(0) && out.contains(&want), "guest:\n{out}\nhost:\n{want}\nconsole:\n{console}");
}

/// What the host refuses is the guest's errno: a port a host process listens on is in use
/// for the guest too (EADDRINUSE from the host's bind).
#[test]
fn a_port_the_host_uses_is_in_use_for_the_guest() {
    let host = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = host.local_addr().expect("addr").port();
    let script = format!("httpd -f -p 127.0.0.1:{port} -h /; echo @done");
    let (code, out, console) = run_guest("/bin/sh", &["-c", &script], PROGRAM_TIMEOUT);
    assert!(code == Some(0) && out.contains("Address already in use") && out.contains("@done"), "httpd on a used port: {out}\nconsole:\n{console}");
    drop(host);
}

/// What the host refuses is the guest's errno even for root in the guest: a kernel that is
/// not root on the host cannot bind a port below net.ipv4.ip_unprivileged_port_start, so
/// the guest's root gets EACCES (`httpd: bind: Permission denied`). When the test runs as
/// root the kernel is started as nobody.
#[test]
fn a_kernel_that_is_not_root_cannot_bind_a_low_port() {
    use std::os::unix::process::CommandExt;
    let start: u16 =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(1024);
    let port: u16 = 80;
    let root = root_dir().to_string_lossy().into_owned();
    let out_path = std::env::temp_dir().join(format!("vk-net-lowport-{}.out", std::process::id()));
    let out = std::fs::File::create(&out_path).expect("create output file");
    // Refused: httpd ends at once. Allowed (a host that lets anyone bind it): it serves, and
    // is stopped after a while — only the refusal is looked for in its output.
    let httpd = format!("httpd -f -p 127.0.0.1:{port} -h /");
    let script = if port < start { format!("id -u; {httpd}; echo @done") } else { format!("id -u; {httpd} & sleep 1; kill $!; echo @done") };
    let mut cmd = std::process::Command::new(vk_tests::bin("kernel"));
    cmd.args(["-C", "none", "-m", "128m", "-n", "2", "-r", &root, "-e", "init=/bin/sh", "--", "-c", &script])
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone().expect("dup"))
        .stderr(out);
    // SAFETY: geteuid(2) has no arguments and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        cmd.uid(65534).gid(65534); // (std drops the supplementary groups too)
    }
    let mut child = cmd.spawn().expect("start the kernel");
    let deadline = Instant::now() + PROGRAM_TIMEOUT;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() >= deadline {
            child.kill().ok();
            child.wait().ok();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let text = std::fs::read_to_string(&out_path).unwrap_or_default();
    std::fs::remove_file(&out_path).ok();
    assert!(text.contains("\n0\n") && text.contains("@done"), "the guest's shell as root did not finish:\n{text}");
    if port < start {
        assert!(text.contains("httpd: bind: Permission denied"), "the host's EACCES did not reach the guest:\n{text}");
    } else {
        assert!(!text.contains("httpd: bind"), "the port is unprivileged on this host, yet bind failed:\n{text}");
    }
}

/// Descriptors in flight under races (rootimg/tests/h_unixrace.c): threads pass sockets and a
/// pipe's write end over each other, receive and close them, and build cycles; once every
/// socket is closed the pipe end is released (its read end sees EOF) — nothing leaks.
#[test]
fn files_in_flight_under_races_are_all_released() {
    let (code, out, console) = run_guest("/usr/tests/h_unixrace", &[], PROGRAM_TIMEOUT);
    assert!(code == Some(0) && out.contains("unixrace: 4 threads, released"), "h_unixrace: exit {code:?}\n{console}");
}
