#!/usr/bin/env python3
"""bench/workload.py — the whole-command cases of `make bench`.

shell_script: bench/shell.sh (a busybox shell script: loops, expr, sed|sort|head, cp, tar,
gzip, find|xargs), RUNS times natively — chrooted into a copy of the staged root, so it is the
same static busybox — and RUNS times under vk as init of a kernel booted on an ext2 image of
the same tree (`-R`, boot and shutdown included). Both sides must print the same digest line.

boot_login: the time from starting the kernel on the root image (`-R`, a copy-on-write
overlay, so the image is unchanged) to `login:` on its console (a pty), RUNS times; each
kernel is then stopped by SIGTERM to its own pid.

Prints `bench: NAME NANOSECONDS` lines (the median of the runs) into OUT/native.txt and
OUT/vk.txt, which bench/run.sh's table reads.

usage: workload.py KERNEL ROOT IMAGE OUT RUNS
"""
import os
import pty
import select
import shutil
import signal
import statistics
import subprocess
import sys
import time

KERNEL, ROOT, IMAGE, OUT, RUNS = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
HERE = os.path.dirname(os.path.abspath(__file__))


def say(msg):
    print(f"bench: {msg}", flush=True)


def record(tag, name, ns):
    with open(os.path.join(OUT, f"{tag}.txt"), "a") as f:
        f.write(f"bench: {name} {ns:.0f}\n")


def digest(text):
    lines = [l for l in text.splitlines() if l.startswith("shell: ")]
    return lines[-1] if lines else None


def timed(argv, timeout_s=120):
    t0 = time.monotonic_ns()
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout_s)
    return time.monotonic_ns() - t0, p.returncode, p.stdout.decode(errors="replace")


def shell_script():
    shroot = os.path.join(OUT, "shroot")
    shutil.rmtree(shroot, ignore_errors=True)
    shutil.copytree(ROOT, shroot, symlinks=True)
    shutil.copy(os.path.join(HERE, "shell.sh"), os.path.join(shroot, "shell.sh"))
    img = os.path.join(OUT, "shell.img")
    open(img, "wb").close()  # mke2fs -q still says it creates a missing file
    mke2fs = shutil.which("mke2fs") or "/sbin/mke2fs"
    subprocess.run([mke2fs, "-q", "-F", "-t", "ext2", "-E", "root_owner=0:0", "-d", shroot, img, "32M"],
                   check=True)
    want = None
    if os.geteuid() == 0:
        native = []
        for _ in range(RUNS):
            ns, rc, out = timed(["chroot", shroot, "/bin/sh", "/shell.sh"])
            if rc != 0 or digest(out) is None:
                sys.exit(f"bench: shell script natively: status {rc}\n{out}")
            want = want or digest(out)
            native.append(ns)
        record("native", "shell_script", statistics.median(native))
    else:
        say("shell script: not root, so no chroot: the native column is skipped")
    vk = []
    for _ in range(RUNS):
        ns, rc, out = timed([KERNEL, "-m", "64m", "-n", "2", "-R", img, "-e", "init=/bin/sh", "--", "/shell.sh"])
        got = digest(out)
        if rc != 0 or got is None or (want is not None and got != want):
            sys.exit(f"bench: shell script under vk: status {rc}, digest {got!r}, native {want!r}\n{out[-3000:]}")
        vk.append(ns)
    record("vk", "shell_script", statistics.median(vk))


def boot_once():
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(KERNEL, [KERNEL, "-m", "64m", "-n", "2", "-R", IMAGE])
    t0 = time.monotonic_ns()
    seen, ns = b"", None
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            r, _, _ = select.select([fd], [], [], 0.5)
            if not r:
                continue
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
            if b"login:" in seen:
                ns = time.monotonic_ns() - t0
                break
    finally:
        os.kill(pid, signal.SIGTERM)
        end = time.monotonic() + 10
        while True:
            try:
                os.read(fd, 4096)  # drain, so the kernel's console writes never block
            except OSError:
                pass
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > end:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                break
            time.sleep(0.01)
        os.close(fd)
    if ns is None:
        sys.exit(f"bench: boot: no login: in 30 s\n{seen[-2000:].decode(errors='replace')}")
    return ns


def boot_login():
    record("vk", "boot_login", statistics.median(boot_once() for _ in range(RUNS)))


say(f"shell script: bench/shell.sh {RUNS} times natively (chroot) and under vk (boot included)")
shell_script()
say(f"boot: {KERNEL} -m 64m -n 2 -R {IMAGE} to login:, {RUNS} times")
boot_login()
