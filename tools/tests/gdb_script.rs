//! The gdb commands (`tools/gdb/vk-gdb.py`) parse `vk_layout` by field name: their list must
//! be the ABI's, in the same order. (Running them against a live kernel and a vmcore is in
//! the integration tests, `tests/tests/dump.rs`.)

const SCRIPT: &str = include_str!("../gdb/vk-gdb.py");

/// The words of the Python string assigned to `name`.
fn python_list(name: &str) -> Vec<&'static str> {
    let start = SCRIPT.find(&format!("{name} = \"\"\"")).unwrap_or_else(|| panic!("no {name} in vk-gdb.py"));
    let body = SCRIPT[start..].split("\"\"\"").nth(1).unwrap();
    body.split_whitespace().collect()
}

#[test]
fn the_gdb_commands_know_the_layout_fields_in_order() {
    assert_eq!(python_list("LAYOUT_FIELDS"), kvm_mem::abi::LAYOUT_FIELDS);
}

#[test]
fn the_gdb_commands_know_the_states_and_version() {
    use kvm_mem::abi::{LAYOUT_VERSION, tstate};
    assert!(SCRIPT.contains(&format!("LAYOUT_VERSION = {LAYOUT_VERSION}\n")));
    let want = format!(
        "TSTATE = {{{}: \"new\", {}: \"runnable\", {}: \"running\", {}: \"sleeping\", {}: \"stopped\", {}: \"dead\"}}",
        tstate::NEW,
        tstate::RUNNABLE,
        tstate::RUNNING,
        tstate::SLEEPING,
        tstate::STOPPED,
        tstate::DEAD
    );
    assert!(SCRIPT.contains(&want), "{want}");
    assert!(SCRIPT.contains(&format!("TF_INUSER = 1 << {}", kvm_mem::abi::tflags::INUSER.trailing_zeros())));
    let r = &kvm_mem::abi::reg::NAMES;
    assert!(SCRIPT.contains(&format!(
        "REG_RBP, REG_RSP, REG_RIP = {}, {}, {}",
        r.iter().position(|n| *n == "rbp").unwrap(),
        r.iter().position(|n| *n == "rsp").unwrap(),
        r.iter().position(|n| *n == "rip").unwrap()
    )));
}
