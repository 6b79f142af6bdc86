//! `vps -M /proc/PID/mem [-N kernel]`: ps for a vk kernel, read from its memory.

#![deny(unsafe_code)]

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(tools::vps::main(&args));
}
