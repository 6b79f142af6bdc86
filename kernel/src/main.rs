//! The `kernel` binary: `kernel [-m size] [-n ncpus] [-r image] ... [-- init args]`.

fn main() {
    kernel::debug::install();
    kernel::sys::install();
    kernel::kern::init_main::main()
}
