//! Test doubles: a [`FakeTarget`] with memory regions, registers and threads; a scripted
//! [`ScriptConsole`]; [`SelfTarget`], which reads this test process's own memory through
//! `/proc/self/mem`; and the test binary loaded as a [`KernelImage`].

use std::collections::{BTreeMap, VecDeque};
use std::os::unix::fs::FileExt;
use std::sync::{Arc, OnceLock};

use crate::Console;
use crate::image::KernelImage;
use crate::target::{ReadError, RegisterSet, Target, ThreadSummary};

/// Memory as disjoint regions, CPUs with registers, threads.
#[derive(Default)]
pub struct FakeTarget {
    pub regions: BTreeMap<u64, Vec<u8>>,
    pub cpus: Vec<Option<RegisterSet>>,
    pub cpu_threads: Vec<Option<ThreadSummary>>,
    pub threads: Vec<ThreadSummary>,
    pub entry: Option<u32>,
    /// Where reads outside `regions` go (this process's memory), if anywhere.
    pub fallback: Option<SelfTarget>,
}

impl FakeTarget {
    pub fn map(&mut self, addr: u64, bytes: Vec<u8>) {
        self.regions.insert(addr, bytes);
    }

    /// Map 8-byte little-endian words at `addr`.
    pub fn map_words(&mut self, addr: u64, words: &[u64]) {
        self.map(addr, words.iter().flat_map(|w| w.to_le_bytes()).collect());
    }
}

/// A register set with the usual x86-64 names, `rip`/`rsp`/`rbp` as given, others counting up.
pub fn registers(rip: u64, rsp: u64, rbp: u64) -> RegisterSet {
    let names = ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "rip", "rflags"];
    let regs = names
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let v = match n {
                "rip" => rip,
                "rsp" => rsp,
                "rbp" => rbp,
                _ => i as u64,
            };
            (n, v)
        })
        .collect();
    RegisterSet { regs }
}

impl Target for FakeTarget {
    fn read_memory(&self, addr: u64, buf: &mut [u8]) -> Result<(), ReadError> {
        let err = ReadError { addr, len: buf.len() };
        let region = self.regions.range(..=addr).next_back().and_then(|(&start, bytes)| {
            let off = usize::try_from(addr - start).ok()?;
            bytes.get(off..off.checked_add(buf.len())?)
        });
        match (region, &self.fallback) {
            (Some(src), _) => {
                buf.copy_from_slice(src);
                Ok(())
            }
            (None, Some(fallback)) => fallback.read_memory(addr, buf),
            (None, None) => Err(err),
        }
    }

    fn ncpus(&self) -> u32 {
        self.cpus.len() as u32
    }

    fn entry_cpu(&self) -> Option<u32> {
        self.entry
    }

    fn cpu_registers(&self, cpu: u32) -> Option<RegisterSet> {
        self.cpus.get(cpu as usize)?.clone()
    }

    fn cpu_thread(&self, cpu: u32) -> Option<ThreadSummary> {
        self.cpu_threads.get(cpu as usize)?.clone()
    }

    fn find_thread(&self, key: u64) -> Option<ThreadSummary> {
        self.threads
            .iter()
            .find(|t| t.tid == key || t.addr == key)
            .or_else(|| self.threads.iter().find(|t| u64::try_from(t.pid).ok() == Some(key)))
            .cloned()
    }

    fn threads(&self) -> Vec<ThreadSummary> {
        self.threads.clone()
    }
}

/// A console fed from a script; its transcript shows prompts, echoed input and output.
#[derive(Default)]
pub struct ScriptConsole {
    pub lines: VecDeque<String>,
    pub keys: VecDeque<u8>,
    pub out: String,
    pub rows: Option<usize>,
}

impl ScriptConsole {
    pub fn new(lines: &[&str]) -> ScriptConsole {
        ScriptConsole { lines: lines.iter().map(|s| s.to_string()).collect(), ..Default::default() }
    }
}

impl Console for ScriptConsole {
    fn write_str(&mut self, s: &str) {
        self.out.push_str(s);
    }

    fn read_line(&mut self, prompt: &str) -> Option<String> {
        self.out.push_str(prompt);
        let line = self.lines.pop_front()?;
        self.out.push_str(&line);
        self.out.push('\n');
        Some(line)
    }

    fn page_rows(&self) -> Option<usize> {
        self.rows
    }

    fn read_key(&mut self) -> Option<u8> {
        self.keys.pop_front()
    }
}

/// This process, read through `/proc/self/mem`: a bad address is an error, not a fault.
pub struct SelfTarget {
    mem: std::fs::File,
}

impl SelfTarget {
    pub fn new() -> SelfTarget {
        SelfTarget { mem: std::fs::File::open("/proc/self/mem").expect("open /proc/self/mem") }
    }
}

impl Target for SelfTarget {
    fn read_memory(&self, addr: u64, buf: &mut [u8]) -> Result<(), ReadError> {
        self.mem.read_exact_at(buf, addr).map_err(|_| ReadError { addr, len: buf.len() })
    }
    fn ncpus(&self) -> u32 {
        0
    }
    fn entry_cpu(&self) -> Option<u32> {
        None
    }
    fn cpu_registers(&self, _cpu: u32) -> Option<RegisterSet> {
        None
    }
    fn cpu_thread(&self, _cpu: u32) -> Option<ThreadSummary> {
        None
    }
    fn find_thread(&self, _key: u64) -> Option<ThreadSummary> {
        None
    }
    fn threads(&self) -> Vec<ThreadSummary> {
        Vec::new()
    }
}

/// A function with a known name whose address the image tests look up.
#[inline(never)]
pub fn ddb_probe_callee(x: u64) -> u64 {
    std::hint::black_box(x).wrapping_mul(3).rotate_left(7)
}

/// Calls [`ddb_probe_callee`]: its code holds a `call` to a known symbol.
#[inline(never)]
pub fn ddb_probe_caller(x: u64) -> u64 {
    ddb_probe_callee(std::hint::black_box(x)) ^ 0x55
}

/// The test binary as a kernel image, biased so that symbol values are runtime addresses.
pub fn self_image() -> &'static Arc<KernelImage> {
    static IMAGE: OnceLock<Arc<KernelImage>> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let exe = std::env::current_exe().expect("current_exe");
        let unbiased = KernelImage::load(&exe, 0).expect("load the test binary");
        let value = unbiased.lookup("testutil::ddb_probe_callee").expect("probe symbol");
        let runtime = ddb_probe_callee as fn(u64) -> u64 as usize as u64;
        Arc::new(KernelImage::load(&exe, runtime - value).expect("load the test binary"))
    })
}
