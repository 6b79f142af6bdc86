//! Hostile system calls: rootimg/tests/h_fuzz makes thousands of random calls with bad
//! pointers (NULL, the stub area, the kernel half, buffers straddling their end), huge and
//! negative numbers; the kernel answers each and keeps running, and the guest test programs
//! still pass afterwards on the same kernel. Once from one thread per process, once from four
//! threads of each process at once (calls racing on one address space and descriptor table).

use vk_tests::Kernel;
use vk_tests::guest::{kernel_args, root_dir};

#[test]
fn random_system_calls_do_not_hurt_the_kernel() {
    let root = root_dir();
    let root_s = root.to_string_lossy().into_owned();
    let script = "/usr/tests/h_fuzz 60 1500 0x5eed; echo \"fuzz status $?\"; \
                  /usr/tests/t_files | grep -E \"^FAIL|passed,\"; /usr/tests/t_proc | grep -E \"^FAIL|passed,\"";
    let argv = kernel_args(&root_s, "/bin/sh", &["-c", script]);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let mut k = Kernel::start(&argv);
    k.close_stdin();
    let timeout = std::time::Duration::from_secs(300);
    k.expect_within("fuzz: 60 children", timeout);
    k.expect_within("fuzz status 0", timeout);
    let rest = k.expect_within("init exited with status 0", timeout);
    assert_eq!(rest.matches(" passed, 0 failed").count(), 2, "{}", k.output());
    let st = k.wait_within(timeout);
    assert_eq!(st.code(), Some(0));
    let out = k.output();
    for bad in ["panic", "Fatal trap", "db>"] {
        assert!(!out.contains(bad), "{bad} in:\n{out}");
    }
}

#[test]
fn random_system_calls_from_racing_threads_do_not_hurt_the_kernel() {
    let root = root_dir();
    let root_s = root.to_string_lossy().into_owned();
    let script = "cd /tmp && /usr/tests/h_fuzz 30 800 0x7e57 4; echo \"fuzz status $?\"; cd /; \
                  /usr/tests/t_files | grep -E \"^FAIL|passed,\"; /usr/tests/t_stress | grep -E \"^FAIL|passed,\"";
    let mut argv = kernel_args(&root_s, "/bin/sh", &["-c", script]);
    assert_eq!(argv[2], "-n");
    argv[3] = "4".into();
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let mut k = Kernel::start(&argv);
    k.close_stdin();
    let timeout = std::time::Duration::from_secs(300);
    k.expect_within("fuzz: 30 children", timeout);
    k.expect_within("fuzz status 0", timeout);
    let rest = k.expect_within("init exited with status 0", timeout);
    assert_eq!(rest.matches(" passed, 0 failed").count(), 2, "{}", k.output());
    let st = k.wait_within(timeout);
    assert_eq!(st.code(), Some(0));
    let out = k.output();
    for bad in ["panic", "Fatal trap", "db>"] {
        assert!(!out.contains(bad), "{bad} in:\n{out}");
    }
}
