//! The `kernel` binary: `kernel [-m size] [-n ncpus] [-r image] ... [-- init args]`.

fn main() {
    kernel::sys::install();
    kernel::kern::init_main::main()
}
