//! The kernel environment (`-e name=value`), like FreeBSD's kenv: boot-time tunables read by
//! name (`init`, `debug.trap`, `debug.panic`, `rootwait`, …).

use std::sync::OnceLock;

static KENV: OnceLock<Vec<(String, String)>> = OnceLock::new();

/// Install the environment from the command line (once, at boot).
pub fn init(env: Vec<(String, String)>) {
    let _ = KENV.set(env);
}

/// A variable's value; the last `-e` wins.
pub fn get(name: &str) -> Option<&'static str> {
    KENV.get()?.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// A boolean tunable: "1", "yes", "true", "on" are true.
pub fn get_bool(name: &str) -> bool {
    matches!(get(name), Some("1" | "yes" | "true" | "on"))
}

/// Every variable, for `kenv`-style listings.
pub fn all() -> &'static [(String, String)] {
    KENV.get().map_or(&[], Vec::as_slice)
}
