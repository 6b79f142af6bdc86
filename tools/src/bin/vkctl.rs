//! `vkctl [-C socket] command [args...]`: control a running vk kernel through its socket.

#![deny(unsafe_code)]

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(tools::vkctl::main(&args));
}
