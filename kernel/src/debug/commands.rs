//! ddb commands that need the kernel: `ps`, `show allpcpu`, `show msgbuf` (`dmesg`) read the
//! exported records through kvm-mem, like `vps`; `show proc`, `show map` and `show syscalls`
//! look at the kernel's own structures ([`crate::debug::show`]); `show locks`, `show page`
//! and `ktrace` are in [`crate::debug::locks`]; `show memory` in [`crate::debug::memory`]; `dump` writes a vmcore ([`crate::debug::dump`]).

use std::sync::Arc;

use kvm_mem::Kvm;
use kvm_mem::abi::cpustate;

/// Register the kernel's commands.
pub fn register(d: &mut ddb::Debugger, kvm: &Arc<Kvm>) {
    let k = Arc::clone(kvm);
    d.register(
        "ps",
        "list processes and their threads",
        Arc::new(move |ctx, _args| {
            let procs = k.procs().map_err(|e| e.to_string())?;
            ctx.print(&kvm_mem::ps::format_ddb_ps(&procs, platform::time::uptime_ns()));
            Ok(())
        }),
    );
    let k = Arc::clone(kvm);
    d.register(
        "show allpcpu",
        "per-CPU data of every CPU",
        Arc::new(move |ctx, _args| {
            let cpus = k.pcpus().map_err(|e| e.to_string())?;
            let procs = k.procs().map_err(|e| e.to_string())?;
            let name_of = |addr: u64| {
                procs
                    .iter()
                    .flat_map(|p| p.threads.iter().map(move |t| (p.pid, t)))
                    .find(|(_, t)| t.addr == addr)
                    .map_or_else(|| "?".to_string(), |(pid, t)| format!("pid {pid} tid {} \"{}\"", t.tid, t.name))
            };
            for c in &cpus {
                let state = match c.state {
                    cpustate::OFFLINE => "offline",
                    cpustate::RUNNING => "running",
                    cpustate::IDLE => "idle",
                    cpustate::STOPPED => "stopped",
                    cpustate::DDB => "in ddb",
                    _ => "?",
                };
                ctx.print(&format!("cpuid        = {}\n", c.cpuid));
                ctx.print(&format!("state        = {state}\n"));
                ctx.print(&format!("host tid     = {}\n", c.host_tid));
                ctx.print(&format!("curthread    = {:#x}: {}\n", c.curthread, name_of(c.curthread)));
                ctx.print(&format!("idlethread   = {:#x}: {}\n", c.idlethread, name_of(c.idlethread)));
                ctx.print(&format!("runq         = {} threads\n", c.nrun));
                ctx.print(&format!("switches     = {}\n", c.switches));
                ctx.print(&format!("interrupts   = {}\n", c.intrs));
                ctx.print(&format!("idle time    = {} ms\n\n", c.idle_ns / 1_000_000));
            }
            Ok(())
        }),
    );
    let k = Arc::clone(kvm);
    let msgbuf: ddb::CommandFn = Arc::new(move |ctx, _args| {
        ctx.print(&k.msgbuf().map_err(|e| e.to_string())?);
        Ok(())
    });
    d.register("show msgbuf", "the console message buffer", Arc::clone(&msgbuf));
    d.register("dmesg", "the console message buffer", msgbuf);
    use crate::debug::show;
    let text = |f: fn(&str) -> Result<String, String>| -> ddb::CommandFn {
        Arc::new(move |ctx, args| {
            ctx.print(&f(args)?);
            Ok(())
        })
    };
    d.register("show proc", "show proc [pid]: a guest process: ids, credentials, files, signals, threads", text(show::show_proc));
    d.register("show map", "show map [pid]: a guest process's mappings and resident pages", text(show::show_map));
    d.register("show callsites", "show callsites [pid]: a guest process's patched system call sites", text(show::show_callsites));
    d.register(
        "dump",
        "write a crash dump (vmcore.N, an ELF core for gdb and vps) in the kernel's directory",
        {
            let k = Arc::clone(kvm);
            Arc::new(move |ctx, _args| {
                crate::debug::dump::dump_to(std::path::Path::new("."), &k, ctx.target.entry_cpu()).map(|_| ())
            })
        },
    );
    let k = Arc::clone(kvm);
    d.register(
        "show locks",
        "held spin and sleep locks, their holders and waiters",
        Arc::new(move |ctx, _args| {
            ctx.print(&crate::debug::locks::show_locks(&k)?);
            Ok(())
        }),
    );
    let k = Arc::clone(kvm);
    d.register(
        "show page",
        "show page addr: the vm_page of a physical (or direct-map) address",
        Arc::new(move |ctx, args| {
            if args.trim().is_empty() {
                return Err("usage: show page <physical or direct-map address>".to_string());
            }
            let addr = ctx.eval(args.trim())?;
            ctx.print(&crate::debug::locks::show_page(&k, addr)?);
            Ok(())
        }),
    );
    d.register("ktrace", "ktrace [pid [on|off]]: print a process's system calls on the console", text(crate::debug::locks::ktrace));
    d.register(
        "show memory",
        "where the kernel process's host memory goes: guest pages, vm_page array, stacks, heap, caches, stubs",
        text(crate::debug::memory::show_memory),
    );
    d.register("show syscalls", "system calls guests made that vk lacks, and the partial ones", text(|_| Ok(show::show_syscalls())));
}
