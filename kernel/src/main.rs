//! The `kernel` binary: `kernel [-m size] [-n ncpus] [-r image] ... [-- init args]`.

fn main() {
    kernel::kern::init_main::main()
}
