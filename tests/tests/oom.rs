//! Running out of physical memory kills the process that faulted, with a console message;
//! the kernel and the rest of the system keep running, and the memory comes back.

use vk_tests::guest::{PROGRAM_TIMEOUT, kernel_args, root_dir};
use vk_tests::Kernel;

#[test]
fn a_memory_hog_is_killed_and_the_kernel_keeps_running() {
    let root = root_dir();
    let root_s = root.to_string_lossy().into_owned();
    let script = "/usr/tests/h_hog 256; echo \"hog status $?\"; /usr/tests/h_hog 300; echo \"hog status $?\"; \
                  /usr/tests/h_hog 16; echo \"small status $?\"";
    let mut argv = kernel_args(&root_s, "/bin/sh", &["-c", script]);
    // Less memory than the hog wants.
    argv[1] = "64m".into();
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let mut k = Kernel::start(&argv);
    k.close_stdin();
    k.expect("killed: out of physical memory");
    k.expect("hog status 137");
    k.expect("killed: out of physical memory");
    k.expect("hog status 137");
    // The two hogs' memory is free again: a smaller program runs to the end.
    k.expect("touched 16 MiB");
    k.expect("small status 0");
    k.expect("init exited with status 0");
    let st = k.wait_within(PROGRAM_TIMEOUT);
    assert_eq!(st.code(), Some(0), "{}", k.output());
}
