//! The stub's code: position-independent assembly that the kernel copies into the stub image
//! (`vk_stub_begin` .. `vk_stub_end`), mapped at `STUB_BASE` in every stub process. It uses no
//! library and no data outside its own slot; every constant is an immediate.
//!
//! Entry (`vk_stub_begin`, the image's ELF entry):
//!   map the slots from fd 4 → switch to slot 0's start-up stack → unmap everything the host
//!   gave the new process (its stack, vdso, vvar) → close the ELF's fd → die with the kernel
//!   (PR_SET_PDEATHSIG; at once if the parent is no longer the kernel slot 0 names) → install
//!   the trap handler for every trap signal (on the alternate stack, all signals blocked while
//!   it runs, our own restorer) → set this thread up
//!   (alternate stack, host tid, signal mask) → no new privileges → the seccomp filter →
//!   the first trap (`ud2` at `vk_stub_first_trap`), where the kernel sets the guest's
//!   registers.
//!
//! The handler (`vk_stub_handler`, on the slot's alternate stack):
//!   record the trap in the message page → state TRAPPED (and wake the kernel if it sleeps)
//!   → spin (no longer once NAP says the kernel thread sleeps), then futex-wait, for RESUME →
//!   run the queued operations (raw system calls, results stored back; a `clone` child leaves
//!   here as a new thread) → if the kernel asked, report back again; else state USER and
//!   return, and `rt_sigreturn` restores the (edited) registers from the frame.

use super::layout::*;

/// SA_SIGINFO | SA_ONSTACK | SA_RESTORER (the last is not in the libc crate).
const SA_FLAGS: u64 = (libc::SA_SIGINFO | libc::SA_ONSTACK) as u64 | 0x0400_0000;
const SLOT0_INIT_STACK: u64 = SLOTS_BASE + INIT_STACK_TOP;
const TOP_LEN: u64 = TASK_TOP - STUB_END;
const FPROG: u64 = STUB_BASE + FILTER_OFF;
const BLOCK_MASK: u64 = block_mask();
const SLOT_MASK: u64 = !(SLOT_SIZE - 1);

core::arch::global_asm!(
    ".pushsection .text.vk_stub,\"ax\",@progbits",
    ".balign 4096",
    ".globl vk_stub_begin",
    ".globl vk_stub_end",
    ".globl vk_stub_first_trap",
    ".globl vk_stub_handler",
    "vk_stub_begin:",
    // mmap(SLOTS_BASE, SLOTS_SIZE, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_FIXED, FD_SLOTS, 0)
    "mov rdi, {slots_base}",
    "mov rsi, {slots_size}",
    "mov edx, 3",
    "mov r10d, 0x11",
    "mov r8d, {fd_slots}",
    "xor r9d, r9d",
    "mov eax, 9",
    "syscall",
    "mov rdi, {slots_base}",
    "cmp rax, rdi",
    "jne vk_stub_die",
    "mov rsp, {slot0_stack}",
    // munmap(0, STUB_BASE): whatever the host mapped below us.
    "xor edi, edi",
    "mov rsi, {stub_base}",
    "mov eax, 11",
    "syscall",
    // munmap(STUB_END, TASK_TOP - STUB_END): the host stack, vdso, vvar.
    "mov rdi, {stub_end}",
    "mov rsi, {top_len}",
    "mov eax, 11",
    "syscall",
    // close(FD_ELF)
    "mov edi, {fd_elf}",
    "mov eax, 3",
    "syscall",
    // prctl(PR_SET_PDEATHSIG, SIGKILL); if the kernel is already gone (our parent is not the
    // pid it wrote in slot 0 any more), die.
    "mov edi, 1",
    "mov esi, 9",
    "xor edx, edx",
    "xor r10d, r10d",
    "xor r8d, r8d",
    "mov eax, 157",
    "syscall",
    "mov eax, 110",
    "syscall",
    "mov rdi, {slot0_kpid}",
    "cmp eax, dword ptr [rdi]",
    "jne vk_stub_die",
    // struct kernel_sigaction { handler, flags, restorer, mask } on the stack.
    "sub rsp, 32",
    "lea rax, [rip + vk_stub_handler]",
    "mov [rsp], rax",
    "mov rax, {sa_flags}",
    "mov [rsp + 8], rax",
    "lea rax, [rip + vk_stub_restorer]",
    "mov [rsp + 16], rax",
    "mov qword ptr [rsp + 24], -1",
    "mov edi, 31",
    "call vk_stub_sigaction",
    "mov edi, 11",
    "call vk_stub_sigaction",
    "mov edi, 7",
    "call vk_stub_sigaction",
    "mov edi, 8",
    "call vk_stub_sigaction",
    "mov edi, 4",
    "call vk_stub_sigaction",
    "mov edi, 5",
    "call vk_stub_sigaction",
    "mov edi, 12",
    "call vk_stub_sigaction",
    "add rsp, 32",
    // set_tid_address(&slot0.HOST_TID): the host zeroes it when this thread exits.
    "mov rdi, {slot0_tid}",
    "mov eax, 218",
    "syscall",
    "call vk_stub_thread_setup",
    // prctl(PR_SET_NO_NEW_PRIVS, 1), then seccomp(SECCOMP_SET_MODE_FILTER, 0, &prog)
    "mov edi, 38",
    "mov esi, 1",
    "xor edx, edx",
    "xor r10d, r10d",
    "xor r8d, r8d",
    "mov eax, 157",
    "syscall",
    "mov edi, 1",
    "xor esi, esi",
    "mov rdx, {fprog}",
    "mov eax, 317",
    "syscall",
    "test rax, rax",
    "jnz vk_stub_die",
    "vk_stub_first_trap:",
    "ud2",
    "jmp vk_stub_die",
    "",
    // rt_sigaction(edi, [rsp + 8] (the caller's struct), NULL, 8)
    "vk_stub_sigaction:",
    "lea rsi, [rsp + 8]",
    "xor edx, edx",
    "mov r10d, 8",
    "mov eax, 13",
    "syscall",
    "test rax, rax",
    "jnz vk_stub_die",
    "ret",
    "",
    // This thread's alternate stack, host tid and signal mask. rsp is in the slot's stack.
    "vk_stub_thread_setup:",
    "mov r15, rsp",
    "mov rax, {slot_mask}",
    "and r15, rax",
    "sub rsp, 40",
    "lea rax, [r15 + {alt_off}]",
    "mov [rsp], rax",
    "mov qword ptr [rsp + 8], 0",
    "mov rax, {alt_size}",
    "mov [rsp + 16], rax",
    "mov rdi, rsp",
    "xor esi, esi",
    "mov eax, 131",
    "syscall",
    "test rax, rax",
    "jnz vk_stub_die",
    "mov eax, 186",
    "syscall",
    "mov [r15 + {m_host_tid}], eax",
    "mov rax, {block_mask}",
    "mov [rsp], rax",
    "mov edi, 2",
    "mov rsi, rsp",
    "xor edx, edx",
    "mov r10d, 8",
    "mov eax, 14",
    "syscall",
    "add rsp, 40",
    "ret",
    "",
    // The trap handler: rdi = signal, rsi = siginfo, rdx = ucontext, on the alternate stack.
    "vk_stub_handler:",
    "mov r15, rsp",
    "mov rax, {slot_mask}",
    "and r15, rax",
    "mov [r15 + {m_signo}], edi",
    "mov eax, [rsi + 8]",
    "mov [r15 + {m_sicode}], eax",
    "mov rax, [rsi + 16]",
    "mov [r15 + {m_siaddr}], rax",
    "mov rax, [rsi + 24]",
    "mov [r15 + {m_sisys}], rax",
    "mov [r15 + {m_uc}], rdx",
    "inc qword ptr [r15 + {m_traps}]",
    ".Lvk_stub_report:",
    // state = TRAPPED (xchg: a full barrier before we look at KWAIT)
    "mov eax, {trapped}",
    "xchg [r15 + {m_state}], eax",
    "cmp dword ptr [r15 + {m_kwait}], 0",
    "je .Lvk_stub_wait",
    "lea rdi, [r15 + {m_state}]",
    "mov esi, 1",
    "mov edx, 1",
    "mov eax, 202",
    "syscall",
    ".Lvk_stub_wait:",
    "mov ecx, [r15 + {m_spin}]",
    ".Lvk_stub_spin:",
    "cmp dword ptr [r15 + {m_state}], {resume}",
    "je .Lvk_stub_resumed",
    "cmp dword ptr [r15 + {m_nap}], 0",
    "jne .Lvk_stub_sleep",
    "pause",
    "dec ecx",
    "jg .Lvk_stub_spin",
    ".Lvk_stub_sleep:",
    // Sleep: SWAIT = 1 (xchg: a barrier), re-check, futex_wait(&state, TRAPPED).
    "mov eax, 1",
    "xchg [r15 + {m_swait}], eax",
    "cmp dword ptr [r15 + {m_state}], {trapped}",
    "jne .Lvk_stub_woken",
    "lea rdi, [r15 + {m_state}]",
    "xor esi, esi",
    "mov edx, {trapped}",
    "xor r10d, r10d",
    "mov eax, 202",
    "syscall",
    ".Lvk_stub_woken:",
    "mov dword ptr [r15 + {m_swait}], 0",
    "cmp dword ptr [r15 + {m_state}], {resume}",
    "je .Lvk_stub_resumed",
    "xor ecx, ecx",
    "jmp .Lvk_stub_spin",
    ".Lvk_stub_resumed:",
    // Run the queued operations: raw system calls, results stored back.
    "mov r14d, [r15 + {m_nops}]",
    "cmp r14d, {max_ops}",
    "jbe .Lvk_stub_nops_ok",
    "mov r14d, {max_ops}",
    ".Lvk_stub_nops_ok:",
    "lea r13, [r15 + {m_ops}]",
    ".Lvk_stub_op:",
    "test r14d, r14d",
    "jz .Lvk_stub_ops_done",
    "mov rax, [r13]",
    "mov rdi, [r13 + 8]",
    "mov rsi, [r13 + 16]",
    "mov rdx, [r13 + 24]",
    "mov r10, [r13 + 32]",
    "mov r8, [r13 + 40]",
    "mov r9, [r13 + 48]",
    "mov r12, rax",
    "syscall",
    "cmp r12, 56",
    "jne .Lvk_stub_op_stored",
    "test rax, rax",
    "jz vk_stub_new_thread",
    ".Lvk_stub_op_stored:",
    "mov [r13 + {op_result}], rax",
    "add r13, {op_size}",
    "dec r14d",
    "jmp .Lvk_stub_op",
    ".Lvk_stub_ops_done:",
    "mov dword ptr [r15 + {m_nops}], 0",
    "cmp dword ptr [r15 + {m_flags}], 0",
    "je .Lvk_stub_return",
    "mov dword ptr [r15 + {m_flags}], 0",
    "jmp .Lvk_stub_report",
    ".Lvk_stub_return:",
    "mov dword ptr [r15 + {m_state}], {user}",
    "ret",
    "",
    "vk_stub_restorer:",
    "mov eax, 15",
    "syscall",
    "hlt",
    "",
    // A guest thread made by a `clone` operation: rsp is the new slot's start-up stack.
    "vk_stub_new_thread:",
    "call vk_stub_thread_setup",
    "jmp vk_stub_first_trap",
    "",
    "vk_stub_die:",
    "mov edi, 127",
    "mov eax, 231",
    "syscall",
    "hlt",
    "vk_stub_end:",
    ".popsection",
    slots_base = const SLOTS_BASE,
    slots_size = const SLOTS_SIZE,
    fd_slots = const FD_SLOTS,
    fd_elf = const FD_ELF,
    slot0_stack = const SLOT0_INIT_STACK,
    slot0_tid = const SLOTS_BASE + msg::HOST_TID,
    slot0_kpid = const SLOTS_BASE + msg::KPID,
    stub_base = const STUB_BASE,
    stub_end = const STUB_END,
    top_len = const TOP_LEN,
    sa_flags = const SA_FLAGS,
    fprog = const FPROG,
    slot_mask = const SLOT_MASK,
    alt_off = const ALT_OFF,
    alt_size = const ALT_SIZE,
    block_mask = const BLOCK_MASK,
    m_state = const msg::STATE,
    m_kwait = const msg::KWAIT,
    m_swait = const msg::SWAIT,
    m_host_tid = const msg::HOST_TID,
    m_signo = const msg::SIGNO,
    m_sicode = const msg::SICODE,
    m_siaddr = const msg::SIADDR,
    m_sisys = const msg::SISYS,
    m_uc = const msg::UC,
    m_spin = const msg::SPIN,
    m_nap = const msg::NAP,
    m_nops = const msg::NOPS,
    m_traps = const msg::TRAPS,
    m_flags = const msg::FLAGS,
    m_ops = const msg::OPS,
    op_size = const msg::OP_SIZE,
    op_result = const msg::OP_RESULT,
    max_ops = const msg::MAX_OPS,
    trapped = const state::TRAPPED,
    resume = const state::RESUME,
    user = const state::USER,
);

unsafe extern "C" {
    static vk_stub_begin: u8;
    static vk_stub_end: u8;
    static vk_stub_first_trap: u8;
}

/// The stub's code, as the bytes to copy into its image.
pub fn code() -> &'static [u8] {
    let begin = &raw const vk_stub_begin;
    let end = &raw const vk_stub_end;
    let len = end as usize - begin as usize;
    // SAFETY: both symbols delimit one contiguous block of code in our own text section,
    // which is mapped and read-only for the life of the process.
    unsafe { std::slice::from_raw_parts(begin, len) }
}

/// Offset in the image of the first trap of every stub thread.
pub fn first_trap_offset() -> u64 {
    (&raw const vk_stub_first_trap) as u64 - (&raw const vk_stub_begin) as u64
}
