//! Builds vk's vDSO (`vdso/vdso.c`, linked with `vdso/vdso.lds`) with the host's C compiler
//! (`$CC`, else `cc`) into `$OUT_DIR/vdso.so`, which `kern::exec::vdso` includes. Linked as
//! Linux links its own: position-independent, no library, no relocations, the symbols of
//! LINUX_2.6 only, the section table kept (gdb reads it from the guest's memory).

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR")).join("vdso");
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR")).join("vdso.so");
    let (src, lds) = (dir.join("vdso.c"), dir.join("vdso.lds"));
    println!("cargo:rerun-if-changed={}", src.display());
    println!("cargo:rerun-if-changed={}", lds.display());
    println!("cargo:rerun-if-env-changed=CC");
    let cc = env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .args([
            "-O2",
            "-fPIC",
            "-ffreestanding",
            "-fno-builtin",
            "-fno-stack-protector",
            "-fcf-protection=none",
            "-fasynchronous-unwind-tables",
            "-nostdlib",
            "-shared",
            "-Wall",
            "-Werror",
        ])
        .arg(format!("-Wl,-T,{}", lds.display()))
        .args([
            "-Wl,--hash-style=both",
            "-Wl,-soname=linux-vdso.so.1",
            "-Wl,--eh-frame-hdr",
            "-Wl,-Bsymbolic",
            "-Wl,-z,noexecstack",
            "-Wl,--build-id=none",
            "-Wl,--strip-all",
            "-o",
        ])
        .arg(&out)
        .arg(&src)
        .status()
        .unwrap_or_else(|e| panic!("vdso: cannot run {cc}: {e}"));
    assert!(status.success(), "vdso: {cc} failed on {}", src.display());
}
