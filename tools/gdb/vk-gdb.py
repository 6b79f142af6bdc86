# vk's gdb commands: vk-ps, vk-proc PID, vk-trace PID|TID.
#
# They read the kernel the way vps and ddb's `ps` do (kvm-mem, docs/ARCHITECTURE.md §7): the
# layout descriptor `vk_layout` gives every record's size and field offsets, and every other
# root symbol holds the address of its record. Nothing here knows a Rust type, so the commands
# work on any vk kernel of layout version 2 — live (`gdb -p PID`) or a vmcore
# (`gdb run/kernel vmcore.0`) alike, since both are read through gdb's memory.
#
# Loaded by run/gdbinit (`gdb -x run/gdbinit ...`).

import re
import struct

import gdb

LAYOUT_MAGIC = int.from_bytes(b"VKLAYOUT", "little")
LAYOUT_VERSION = 2
PROC_MAGIC = int.from_bytes(b"VKPROC\0\0", "little")
THREAD_MAGIC = int.from_bytes(b"VKTHREAD", "little")
PCPU_MAGIC = int.from_bytes(b"VKPCPU\0\0", "little")
MAX_LIST = 100000
MAX_FRAMES = 64

# The descriptor's fields after its u64 magic, in order, all u32 (kvm_mem::abi::LAYOUT_FIELDS;
# a test in tools/tests keeps the two lists the same).
LAYOUT_FIELDS = """
version size maxcpu name_len wmesg_len msgbuf_size
proc.size proc.magic proc.next proc.threads proc.pid proc.ppid proc.pgid proc.sid proc.uid
proc.gid proc.state proc.flags proc.nice proc.nthreads proc.xstat proc.tty proc.comm
proc.vsz_bytes proc.rss_pages proc.start_ns
thread.size thread.magic thread.next thread.proc_ thread.pcb thread.tid thread.state
thread.flags thread.cpu thread.pri thread.name thread.wmesg thread.wchan thread.slptime_ns
thread.stack_base thread.stack_size thread.runtime_ns thread.switches
pcpu.size pcpu.magic pcpu.cpuid pcpu.state pcpu.host_tid pcpu.nrun pcpu.curthread
pcpu.idlethread pcpu.switches pcpu.intrs pcpu.idle_ns pcpu.tf_valid pcpu.trapframe
pcpu.tf_nregs
msgbuf.size msgbuf.magic msgbuf.bufsize msgbuf.wptr msgbuf.buf
physmem.size physmem.magic physmem.dmap_base physmem.mem_size physmem.vm_page physmem.npages
physmem.vm_page_size physmem.free_pages
pcb.rsp pcb.on_cpu pcb.frame_rbp pcb.frame_rip pcb.frame_size
vm_page.size vm_page.flags vm_page.refcount vm_page.owner
""".split()

TSTATE = {0: "new", 1: "runnable", 2: "running", 3: "sleeping", 4: "stopped", 5: "dead"}
PSTATE = {0: "new", 1: "active", 2: "zombie"}
TF_INUSER = 1 << 3
PCPU_ROOT_COUNT = "vk_ncpus"
# Trap-frame register indices (kvm_mem::abi::reg).
REG_RBP, REG_RSP, REG_RIP = 6, 7, 16


class VkError(Exception):
    pass


def mem(addr, n):
    try:
        return bytes(gdb.selected_inferior().read_memory(addr, n))
    except gdb.MemoryError as e:
        raise VkError("cannot read %d bytes at %#x: %s" % (n, addr, e))


def u64(addr):
    return struct.unpack("<Q", mem(addr, 8))[0]


def u32(addr):
    return struct.unpack("<I", mem(addr, 4))[0]


def symbol_address(name):
    """The runtime address of an ELF symbol (gdb relocates a PIE, live or from a core)."""
    try:
        out = gdb.execute("info address " + name, to_string=True)
    except gdb.error:
        raise VkError("no symbol %s: is this a vk kernel?" % name)
    m = re.search(r"\bat (?:address )?(0x[0-9a-fA-F]+)", out)
    if not m:
        raise VkError("cannot find %s: %s" % (name, out.strip()))
    return int(m.group(1), 16)


class Record:
    """One record's bytes and the offsets of its fields."""

    def __init__(self, what, addr, data, offsets):
        self.what, self.addr, self.data, self.off = what, addr, data, offsets

    def _field(self, name, n):
        o = self.off[name]
        if o + n > len(self.data):
            raise VkError("%s record at %#x: field %s is beyond its %d bytes" % (self.what, self.addr, name, len(self.data)))
        return self.data[o:o + n]

    def u64(self, name):
        return struct.unpack("<Q", self._field(name, 8))[0]

    def u32(self, name):
        return struct.unpack("<I", self._field(name, 4))[0]

    def i32(self, name):
        return struct.unpack("<i", self._field(name, 4))[0]

    def text(self, name, n):
        return self._field(name, n).split(b"\0")[0].decode("utf-8", "replace")


class Kernel:
    """The kernel gdb is looking at, read through its exported layout."""

    def __init__(self):
        addr = symbol_address("vk_layout")
        head = mem(addr, 16)
        magic, version, size = struct.unpack("<QII", head)
        if magic != LAYOUT_MAGIC:
            raise VkError("no vk layout at %#x (magic %#x)" % (addr, magic))
        if version != LAYOUT_VERSION:
            raise VkError("vk layout version %d; these commands know version %d" % (version, LAYOUT_VERSION))
        need = 8 + 4 * len(LAYOUT_FIELDS)
        if size < need:
            raise VkError("vk layout of %d bytes, these commands need %d" % (size, need))
        words = struct.unpack("<%dI" % len(LAYOUT_FIELDS), mem(addr + 8, 4 * len(LAYOUT_FIELDS)))
        self.l = dict(zip(LAYOUT_FIELDS, words))
        self.layout_addr = addr
        # Every other root holds the address of its record (layout version 2).
        self.allproc = u64(symbol_address("vk_allproc"))
        self.pcpu_base = u64(symbol_address("vk_pcpu"))
        self.ncpus_addr = u64(symbol_address(PCPU_ROOT_COUNT))

    def offsets(self, prefix):
        return {k[len(prefix) + 1:]: v for k, v in self.l.items() if k.startswith(prefix + ".")}

    def record(self, what, prefix, addr, magic):
        off = self.offsets(prefix)
        data = mem(addr, off["size"])
        r = Record(what, addr, data, off)
        if r.u64("magic") != magic:
            raise VkError("bad %s record at %#x" % (what, addr))
        return r

    def procs(self):
        out, seen = [], set()
        addr = u64(self.allproc)
        while addr:
            if addr in seen or len(out) >= MAX_LIST:
                raise VkError("allproc loops (at %#x)" % addr)
            seen.add(addr)
            p = self.record("process", "proc", addr, PROC_MAGIC)
            out.append((p, self.threads(p.u64("threads"))))
            addr = p.u64("next")
        return out

    def threads(self, addr):
        out, seen = [], set()
        while addr:
            if addr in seen or len(out) >= MAX_LIST:
                raise VkError("thread list loops (at %#x)" % addr)
            seen.add(addr)
            t = self.record("thread", "thread", addr, THREAD_MAGIC)
            out.append(t)
            addr = t.u64("next")
        return out

    def pcpus(self):
        n = min(u32(self.ncpus_addr), self.l["maxcpu"])
        size = self.l["pcpu.size"]
        return [self.record("pcpu", "pcpu", self.pcpu_base + i * size, PCPU_MAGIC) for i in range(n)]

    def start_of(self, t):
        """(rip, rbp, where) a thread's trace starts from."""
        nregs = self.l["pcpu.tf_nregs"]
        if TSTATE.get(t.u32("state")) == "running":
            for c in self.pcpus():
                if c.u64("curthread") != t.addr:
                    continue
                if c.u32("tf_valid"):
                    tf = c.off["trapframe"]
                    regs = struct.unpack("<%dQ" % nregs, c.data[tf:tf + 8 * nregs])
                    return regs[REG_RIP], regs[REG_RBP], "cpu%d's trap frame" % c.u32("cpuid")
                return self.host_thread_regs(c.u32("host_tid"), c.u32("cpuid"))
        pcb = t.u64("pcb")
        if not pcb:
            raise VkError("thread %d has no context block" % t.u64("tid"))
        p = self.offsets("pcb")
        if u32(pcb + p["on_cpu"]):
            raise VkError("thread %d is on a CPU but no CPU names it" % t.u64("tid"))
        sp = u64(pcb + p["rsp"])
        return u64(sp + p["frame_rip"]), u64(sp + p["frame_rbp"]), "the context cpu_switch saved"

    def host_thread_regs(self, host_tid, cpuid):
        """A CPU's registers from gdb's thread for its host thread (live, or the core's)."""
        here = gdb.selected_thread()
        for th in gdb.selected_inferior().threads():
            if th.ptid[1] == host_tid:
                try:
                    th.switch()
                    f = gdb.newest_frame()
                    rip, rbp = int(f.read_register("rip")), int(f.read_register("rbp"))
                finally:
                    if here is not None:
                        here.switch()
                return rip, rbp, "cpu%d's host thread (LWP %d)" % (cpuid, host_tid)
        raise VkError("cpu%d: no gdb thread for host tid %d" % (cpuid, host_tid))


def where(pc, lookup):
    """`function+0xoff [file:line]` for a code address, named after the address `lookup` (a
    return address names the call just before it)."""
    try:
        out = gdb.execute("info symbol %#x" % lookup, to_string=True).strip()
    except gdb.error:
        out = ""
    m = re.match(r"(\S+) \+ (\d+) in section", out) or re.match(r"(\S+) in section", out)
    if m:
        name = re.sub(r"::h[0-9a-f]{16}$", "", m.group(1))
        off = int(m.group(2)) if m.lastindex and m.lastindex >= 2 else 0
        text = "%s+%#x" % (name, off + pc - lookup)
    else:
        text = "??"
    sal = gdb.find_pc_line(lookup)
    if sal.symtab is not None and sal.line:
        text += " [%s:%d]" % (sal.symtab.filename, sal.line)
    return text


def frame_walk(rip, rbp):
    """Frames by the frame-pointer chain (everything is built with frame pointers)."""
    frames = [rip]
    for _ in range(MAX_FRAMES):
        if rbp == 0 or rbp % 8:
            break
        try:
            next_rbp, ret = u64(rbp), u64(rbp + 8)
        except VkError:
            break
        if ret == 0:
            break
        frames.append(ret)
        if next_rbp <= rbp:
            break
        rbp = next_rbp
    return frames


def find_threads(k, key):
    """The threads a `vk-trace` argument names: a pid's threads, or the thread with that tid."""
    procs = k.procs()
    for p, threads in procs:
        if p.i32("pid") == key and threads:
            return p, threads
    for p, threads in procs:
        for t in threads:
            if t.u64("tid") == key:
                return p, [t]
    raise VkError("no process or thread %d" % key)


def parse_key(arg, what):
    try:
        return int(arg.strip(), 0)
    except ValueError:
        raise gdb.GdbError("usage: %s PID" % what)


def thread_state(k, t):
    s = TSTATE.get(t.u32("state"), "state %d" % t.u32("state"))
    if s == "sleeping":
        s += " on \"%s\"" % t.text("wmesg", k.l["wmesg_len"])
    elif s == "running":
        s += " on cpu%d%s" % (t.u32("cpu"), " (user)" if t.u32("flags") & TF_INUSER else "")
    return s


class VkPs(gdb.Command):
    """vk-ps: the kernel's processes and threads, read through vk_layout (as vps does)."""

    def __init__(self):
        super().__init__("vk-ps", gdb.COMMAND_DATA)

    def invoke(self, arg, from_tty):
        try:
            k = Kernel()
            lines = ["  PID  PPID    UID       TID STATE      WMESG            CPU COMMAND"]
            for p, threads in k.procs():
                comm = p.text("comm", k.l["name_len"])
                for t in threads:
                    wmesg = t.text("wmesg", k.l["wmesg_len"]) if TSTATE.get(t.u32("state")) == "sleeping" else "-"
                    name = t.text("name", k.l["name_len"])
                    cmd = comm if name == comm else "%s (%s)" % (comm, name)
                    lines.append("%5d %5d %6d %9d %-10s %-16s %3d %s" % (
                        p.i32("pid"), p.i32("ppid"), p.u32("uid"), t.u64("tid"),
                        TSTATE.get(t.u32("state"), "?"), wmesg, t.u32("cpu"), cmd))
            gdb.write("\n".join(lines) + "\n")
        except VkError as e:
            raise gdb.GdbError("vk-ps: %s" % e)


class VkProc(gdb.Command):
    """vk-proc PID: one process's record and its threads, field by field."""

    def __init__(self):
        super().__init__("vk-proc", gdb.COMMAND_DATA)

    def invoke(self, arg, from_tty):
        pid = parse_key(arg, "vk-proc")
        try:
            k = Kernel()
            for p, threads in k.procs():
                if p.i32("pid") != pid:
                    continue
                o = ["Process %d (%s) at %#x" % (pid, p.text("comm", k.l["name_len"]), p.addr)]
                o.append(" state %s, flags %#x, %d threads" % (
                    PSTATE.get(p.u32("state"), "?"), p.u32("flags"), p.u32("nthreads")))
                o.append(" ppid %d  pgrp %d  session %d  uid %d  gid %d  nice %d" % (
                    p.i32("ppid"), p.i32("pgid"), p.i32("sid"), p.u32("uid"), p.u32("gid"), p.i32("nice")))
                o.append(" vsz %d kB  rss %d pages  started at %.3f s" % (
                    p.u64("vsz_bytes") // 1024, p.u64("rss_pages"), p.u64("start_ns") / 1e9))
                for t in threads:
                    o.append("  tid %d (%s) at %#x: %s, pri %d, %d switches, stack %#x+%#x" % (
                        t.u64("tid"), t.text("name", k.l["name_len"]), t.addr, thread_state(k, t),
                        t.u32("pri"), t.u64("switches"), t.u64("stack_base"), t.u64("stack_size")))
                gdb.write("\n".join(o) + "\n")
                return
            raise VkError("no process %d" % pid)
        except VkError as e:
            raise gdb.GdbError("vk-proc: %s" % e)


class VkTrace(gdb.Command):
    """vk-trace PID|TID: the kernel stack of each thread of a process (or of one thread)."""

    def __init__(self):
        super().__init__("vk-trace", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        key = parse_key(arg, "vk-trace")
        try:
            k = Kernel()
            p, threads = find_threads(k, key)
            for t in threads:
                gdb.write("Tracing pid %d tid %d td %#x (%s)\n" % (p.i32("pid"), t.u64("tid"), t.addr, thread_state(k, t)))
                try:
                    rip, rbp, src = k.start_of(t)
                except VkError as e:
                    gdb.write("  (%s)\n" % e)
                    continue
                gdb.write("  from %s\n" % src)
                for i, pc in enumerate(frame_walk(rip, rbp)):
                    gdb.write("#%-2d %#x in %s\n" % (i, pc, where(pc, pc if i == 0 else pc - 1)))
        except VkError as e:
            raise gdb.GdbError("vk-trace: %s" % e)


VkPs()
VkProc()
VkTrace()
