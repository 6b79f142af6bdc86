//! The trap stub, end to end: guest code in a stub process, its system calls and faults
//! handed to us, its registers edited in place, preemption, threads, and a guest that tries
//! to use the stub's own privileges.

use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::time::Duration;

use platform::stub::{Ops, Slice, StubSpace, Trap, UserRegs, reg};

const PAGE: u64 = 4096;
const CODE: u64 = 0x40_0000;
const DATA: u64 = 0x50_0000;
const RX: u32 = (libc::PROT_READ | libc::PROT_EXEC) as u32;
const RW: u32 = (libc::PROT_READ | libc::PROT_WRITE) as u32;

/// "Physical memory" for the test: a memfd; page n at offset n * PAGE.
fn physmem() -> std::fs::File {
    // SAFETY: NUL-terminated name; a fresh fd we own.
    let fd = unsafe { libc::memfd_create(c"test-physmem".as_ptr(), libc::MFD_CLOEXEC) };
    assert!(fd >= 0);
    // SAFETY: fresh descriptor.
    let f = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    f.set_len(64 * PAGE).unwrap();
    f
}

fn slice() -> Slice {
    Slice(Duration::from_secs(5))
}

/// Start a stub whose page 1 holds `code`, mapped at CODE.
fn guest(code: &[u8]) -> (std::fs::File, std::sync::Arc<StubSpace>, platform::stub::StubThread, Ops) {
    let pm = physmem();
    pm.write_all_at(code, PAGE).unwrap();
    let (space, t) = StubSpace::spawn(pm.as_fd()).expect("spawn stub");
    let mut ops = Ops::new();
    ops.map(CODE, PAGE, RX, PAGE);
    (pm, space, t, ops)
}

// mov eax, imm32
fn mov_eax(v: u32) -> Vec<u8> {
    let mut b = vec![0xb8];
    b.extend_from_slice(&v.to_le_bytes());
    b
}
const SYSCALL: [u8; 2] = [0x0f, 0x05];

#[test]
fn a_system_call_round_trip_edits_registers_in_place() {
    // getpid(); exit(result)
    let mut code = mov_eax(39);
    code.extend_from_slice(&SYSCALL);
    code.extend_from_slice(&[0x89, 0xc7]); // mov edi, eax
    code.extend(mov_eax(60));
    code.extend_from_slice(&SYSCALL);
    let (_pm, space, t, mut ops) = guest(&code);
    let mut regs = UserRegs::start(CODE, 0);
    assert_eq!(t.run(&mut regs, &mut ops, &slice()), Trap::Syscall { compat: false });
    assert_eq!(regs.rax(), 39);
    assert_eq!(regs.rip(), CODE + 7, "rip is past the syscall instruction");
    regs.set_rax(1234);
    assert_eq!(t.run(&mut regs, &mut Ops::new(), &slice()), Trap::Syscall { compat: false });
    assert_eq!(regs.rax(), 60);
    assert_eq!(regs.arg(0), 1234, "the guest saw our return value");
    assert!(t.traps() >= 3);
    assert!(space.is_alive());
    assert_ne!(t.host_tid(), 0);
}

#[test]
fn page_faults_arrive_and_resume_once_mapped() {
    // mov rax, [DATA]; mov rdi, rax; mov eax, 60; syscall
    let mut code = vec![0x48, 0x8b, 0x04, 0x25];
    code.extend_from_slice(&(DATA as u32).to_le_bytes());
    code.extend_from_slice(&[0x48, 0x89, 0xc7]);
    code.extend(mov_eax(60));
    code.extend_from_slice(&SYSCALL);
    let (pm, _space, t, mut ops) = guest(&code);
    let mut regs = UserRegs::start(CODE, 0);
    match t.run(&mut regs, &mut ops, &slice()) {
        Trap::Fault { signo, addr, err, trapno, .. } => {
            assert_eq!(signo, libc::SIGSEGV);
            assert_eq!(addr, DATA);
            assert_eq!(err & 2, 0, "a read");
            assert_eq!(trapno, 14);
        }
        other => panic!("want a page fault, got {other:?}"),
    }
    pm.write_all_at(&0x4242_4242_u64.to_le_bytes(), 2 * PAGE).unwrap();
    let mut ops = Ops::new();
    ops.map(DATA, PAGE, RW, 2 * PAGE);
    assert_eq!(t.run(&mut regs, &mut ops, &slice()), Trap::Syscall { compat: false });
    assert_eq!(regs.arg(0), 0x4242_4242);
}

#[test]
fn a_guest_in_a_loop_is_preempted() {
    let (_pm, _space, t, mut ops) = guest(&[0xeb, 0xfe]); // jmp .
    let mut regs = UserRegs::start(CODE, 0);
    assert_eq!(t.run(&mut regs, &mut ops, &Slice(Duration::from_millis(20))), Trap::Kick);
    assert_eq!(regs.rip(), CODE);
    // And it can be resumed and preempted again.
    assert_eq!(t.run(&mut regs, &mut Ops::new(), &Slice(Duration::from_millis(5))), Trap::Kick);
}

#[test]
fn int_0x80_is_a_compat_system_call() {
    let mut code = mov_eax(20);
    code.extend_from_slice(&[0xcd, 0x80]);
    let (_pm, _space, t, mut ops) = guest(&code);
    let mut regs = UserRegs::start(CODE, 0);
    assert_eq!(t.run(&mut regs, &mut ops, &slice()), Trap::Syscall { compat: true });
    assert_eq!(regs.rax(), 20);
}

#[test]
fn fpu_state_survives_traps() {
    // mov rax, imm64; movq xmm0, rax; getpid; movq rax, xmm0; mov rdi, rax; exit
    let v: u64 = 0x1122_3344_5566_7788;
    let mut code = vec![0x48, 0xb8];
    code.extend_from_slice(&v.to_le_bytes());
    code.extend_from_slice(&[0x66, 0x48, 0x0f, 0x6e, 0xc0]);
    code.extend(mov_eax(39));
    code.extend_from_slice(&SYSCALL);
    code.extend_from_slice(&[0x66, 0x48, 0x0f, 0x7e, 0xc0, 0x48, 0x89, 0xc7]);
    code.extend(mov_eax(60));
    code.extend_from_slice(&SYSCALL);
    let (_pm, _space, t, mut ops) = guest(&code);
    let mut regs = UserRegs::start(CODE, 0);
    assert_eq!(t.run(&mut regs, &mut ops, &slice()), Trap::Syscall { compat: false });
    assert_eq!(regs.rax(), 39);
    regs.set_rax(0);
    assert_eq!(t.run(&mut regs, &mut Ops::new(), &slice()), Trap::Syscall { compat: false });
    assert_eq!(regs.arg(0), v, "xmm0 kept its value across the trap");
}

#[test]
fn a_second_thread_starts_in_its_own_slot_and_sets_its_fs_base() {
    // getpid; then (both threads) read fs:0 into rdi and exit: mov rdi, fs:[0]
    let mut code = mov_eax(39);
    code.extend_from_slice(&SYSCALL);
    code.extend_from_slice(&[0x64, 0x48, 0x8b, 0x3c, 0x25, 0, 0, 0, 0]);
    code.extend(mov_eax(60));
    code.extend_from_slice(&SYSCALL);
    let (pm, space, t0, mut ops) = guest(&code);
    pm.write_all_at(&0xabcd_u64.to_le_bytes(), 3 * PAGE).unwrap();
    ops.map(DATA, PAGE, RW, 3 * PAGE);
    let mut regs0 = UserRegs::start(CODE, 0);
    assert_eq!(t0.run(&mut regs0, &mut ops, &slice()), Trap::Syscall { compat: false });
    let slot = space.alloc_slot().expect("a free slot");
    assert_eq!(slot, 1);
    let mut ops = Ops::new();
    ops.clone_thread(slot);
    ops.set_fs(DATA);
    regs0.set_rax(7);
    assert_eq!(t0.run(&mut regs0, &mut ops, &slice()), Trap::Syscall { compat: false });
    assert_eq!(regs0.arg(0), 0xabcd, "thread 0 reads fs:0 through its new fs base");
    let t1 = space.thread(slot);
    t1.wait_start(Duration::from_secs(10)).expect("the new thread reports");
    assert_ne!(t1.host_tid(), t0.host_tid());
    let mut regs1 = UserRegs::start(CODE, 0);
    let mut ops = Ops::new();
    ops.set_fs(DATA + 8); // a zero word
    assert_eq!(t1.run(&mut regs1, &mut ops, &slice()), Trap::Syscall { compat: false });
    assert_eq!(regs1.rax(), 39);
    assert_eq!(t1.run(&mut regs1, &mut Ops::new(), &slice()), Trap::Syscall { compat: false });
    assert_eq!(regs1.arg(0), 0, "thread 1 has its own fs base");
    let host_tid = t1.host_tid();
    t1.exit(Ops::new());
    // The host thread goes away; the process stays.
    let task = format!("/proc/{}/task/{host_tid}", space.pid());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::path::Path::new(&task).exists() {
        assert!(std::time::Instant::now() < deadline, "the thread never exited");
        std::thread::sleep(Duration::from_millis(5));
    }
    space.free_slot(slot);
    assert!(space.is_alive(), "one thread's exit leaves the process");
    // The host zeroed the slot's HOST_TID when the thread went: the slot is free again.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let again = loop {
        if let Some(s) = space.alloc_slot() {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "the slot never came back");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(again, slot);
    // Thread 0 still runs.
    regs0.set_rax(0);
    let mut code_again = UserRegs::start(CODE, 0);
    code_again.gregs = regs0.gregs;
    code_again.set_rip(CODE);
    assert_eq!(t0.run(&mut code_again, &mut Ops::new(), &slice()), Trap::Syscall { compat: false });
}

#[test]
fn a_guest_jumping_into_stub_code_cannot_use_its_privileges() {
    // Find a `syscall` instruction in the stub's code and jump there with rax = open(2).
    let stub = platform::stub::asm::code();
    let off = stub.windows(2).position(|w| w == SYSCALL).expect("a syscall in the stub") as u64;
    let target = platform::stub::layout::STUB_BASE + off;
    // mov eax, 2 (open); mov rcx, target; jmp rcx
    let mut code = mov_eax(2);
    code.extend_from_slice(&[0x48, 0xb9]);
    code.extend_from_slice(&target.to_le_bytes());
    code.extend_from_slice(&[0xff, 0xe1]);
    let (_pm, space, t, mut ops) = guest(&code);
    let mut regs = UserRegs::start(CODE, 0);
    assert_eq!(t.run(&mut regs, &mut ops, &slice()), Trap::Dead);
    std::thread::sleep(Duration::from_millis(50));
    assert!(!space.is_alive(), "seccomp killed the stub");
}

#[test]
fn a_killed_stub_is_reported_dead() {
    let (_pm, space, t, mut ops) = guest(&[0xeb, 0xfe]);
    let mut regs = UserRegs::start(CODE, 0);
    assert_eq!(t.run(&mut regs, &mut ops, &Slice(Duration::from_millis(10))), Trap::Kick);
    space.kill();
    assert_eq!(t.run(&mut regs, &mut Ops::new(), &slice()), Trap::Dead);
}

#[test]
fn many_operations_are_batched() {
    // Map 100 pages (more than one queue holds), then read the last one.
    let last = CODE + PAGE + 99 * PAGE;
    let mut code = vec![0x48, 0x8b, 0x04, 0x25];
    code.extend_from_slice(&(last as u32).to_le_bytes());
    code.extend_from_slice(&[0x48, 0x89, 0xc7]);
    code.extend(mov_eax(60));
    code.extend_from_slice(&SYSCALL);
    let (pm, _space, t, mut ops) = guest(&code);
    pm.write_all_at(&77u64.to_le_bytes(), 4 * PAGE).unwrap();
    for i in 0..100 {
        ops.map(CODE + PAGE + i * PAGE, PAGE, RW, 4 * PAGE);
    }
    assert!(ops.len() > platform::stub::layout::msg::MAX_OPS as usize);
    let mut regs = UserRegs::start(CODE, 0);
    assert_eq!(t.run(&mut regs, &mut ops, &slice()), Trap::Syscall { compat: false });
    assert_eq!(regs.arg(0), 77);
    assert_eq!(regs.gregs[reg::RAX], 60);
}

#[test]
fn a_populated_map_backs_its_pages_before_the_guest_touches_them() {
    // mov byte [DATA + 3 * PAGE], 7; mov eax, 60; syscall
    let mut code = vec![0xc6, 0x04, 0x25];
    code.extend_from_slice(&((DATA + 3 * PAGE) as u32).to_le_bytes());
    code.push(7);
    code.extend(mov_eax(60));
    code.extend_from_slice(&SYSCALL);
    let (pm, _space, t, mut ops) = guest(&code);
    let blocks = |f: &std::fs::File| std::os::unix::fs::MetadataExt::blocks(&f.metadata().unwrap());
    let before = blocks(&pm);
    let mut data = Ops::new();
    data.map_populate(DATA, 4 * PAGE, RW, 8 * PAGE);
    assert_eq!(data.maps(), 1);
    assert_eq!(data.populates(), usize::from(platform::stub::populate_works()));
    ops.append(data);
    let mut regs = UserRegs::start(CODE, 0);
    // The stub's madvise passes its seccomp filter (else it is killed: Trap::Dead).
    assert_eq!(t.run(&mut regs, &mut ops, &slice()), Trap::Syscall { compat: false });
    let mut b = [0u8; 1];
    pm.read_exact_at(&mut b, 11 * PAGE).unwrap();
    assert_eq!(b[0], 7, "the guest wrote the memory file's page");
    if platform::stub::populate_works() {
        // All four pages are backed (512-byte blocks), not only the one the guest wrote.
        assert!(blocks(&pm) >= before + 4 * PAGE / 512, "{before} -> {}", blocks(&pm));
    }
}

/// Not a test: `cargo test -p platform --test stub -- --ignored --nocapture` prints the cost
/// of a null system call round trip through the stub.
#[test]
#[ignore]
fn null_syscall_round_trip_cost() {
    // loop: getpid; jmp loop
    let mut code = mov_eax(39);
    code.extend_from_slice(&SYSCALL);
    code.extend_from_slice(&[0xeb, 0xf7]);
    let (_pm, _space, t, mut ops) = guest(&code);
    let mut regs = UserRegs::start(CODE, 0);
    assert_eq!(t.run(&mut regs, &mut ops, &slice()), Trap::Syscall { compat: false });
    let n = 100_000;
    let start = std::time::Instant::now();
    for _ in 0..n {
        regs.set_rax(1);
        assert_eq!(t.run(&mut regs, &mut Ops::new(), &slice()), Trap::Syscall { compat: false });
    }
    let ns = start.elapsed().as_nanos() / n;
    println!("stub null syscall round trip: {ns} ns");
}

/// Not a test: `cargo test -p platform --test stub -- --ignored --nocapture` prints the cost
/// of starting a stub process (posix_spawn to its first trap) and of dropping it.
#[test]
#[ignore]
fn stub_start_cost() {
    let pm = physmem();
    let n = 50u32;
    let mut spawn_ns = 0u128;
    let mut drop_ns = 0u128;
    for _ in 0..n {
        let t0 = std::time::Instant::now();
        let (space, t) = StubSpace::spawn(pm.as_fd()).expect("spawn stub");
        spawn_ns += t0.elapsed().as_nanos();
        let t1 = std::time::Instant::now();
        drop(t);
        drop(space);
        drop_ns += t1.elapsed().as_nanos();
    }
    println!("stub start: {} us, drop: {} us", spawn_ns / u128::from(n) / 1000, drop_ns / u128::from(n) / 1000);
}

#[test]
fn the_hosts_vdso_is_at_its_fixed_place_in_every_stub() {
    let Some(host) = platform::stub::vdso::host() else { return };
    // mov rax, [HOST_VDSO] (movabs); mov rdi, rax; mov eax, 60; syscall
    let mut code = vec![0x48, 0xa1];
    code.extend_from_slice(&platform::stub::vdso::HOST_VDSO.to_le_bytes());
    code.extend_from_slice(&[0x48, 0x89, 0xc7]);
    code.extend(mov_eax(60));
    code.extend_from_slice(&SYSCALL);
    for _ in 0..2 {
        let (_pm, _space, t, mut ops) = guest(&code);
        let mut regs = UserRegs::start(CODE, 0);
        assert_eq!(t.run(&mut regs, &mut ops, &slice()), Trap::Syscall { compat: false });
        assert_eq!(regs.arg(0).to_le_bytes(), host.image[..8], "the vDSO's ELF header, read without a fault");
    }
}
