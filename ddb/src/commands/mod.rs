//! ddb's built-in commands, registered by [`crate::Debugger::new`] through the same
//! [`crate::Debugger::register`] the kernel uses for its own.
//!
//! | file          | commands                                                        |
//! |---------------|-----------------------------------------------------------------|
//! | `control.rs`  | `continue` `halt` `reboot` `panic` `cpu` `help` `show` (lister) |
//! | `examine.rs`  | `x` `print`                                                     |
//! | `show.rs`     | `show registers` `show thread`                                  |
//! | `trace.rs`    | `trace` / `bt`                                                  |

mod control;
mod examine;
mod show;
pub(crate) mod trace;

use std::sync::Arc;

use crate::Debugger;
use crate::context::CommandContext;

type Handler = fn(&mut CommandContext<'_>, &str) -> Result<(), String>;

/// Every built-in: name, aliases, help, handler.
const BUILTINS: &[(&str, &[&str], &str, Handler)] = &[
    ("help", &[], "list the commands", control::help),
    ("continue", &["c"], "resume the system", control::cont),
    ("halt", &[], "stop the system", control::halt),
    ("reboot", &[], "reboot the system", control::reboot),
    ("panic", &[], "panic the system", control::panic),
    ("cpu", &[], "cpu N: select the cpu for show registers, trace and $registers", control::cpu),
    ("show", &[], "show <what>: list the show commands or run one", control::show),
    ("trace", &["bt"], "trace [tid|pid|addr]: stack trace of the selected cpu or of a thread", trace::trace),
    ("x", &["examine"], "x/[N]<bhlg><xzduocsia> [addr][,count]: examine memory (N: gdb's decimal count)", examine::examine),
    ("print", &["p"], "print[/xzduoca] expr: evaluate an expression (hex by default)", examine::print),
    ("show registers", &["show reg", "show regs"], "registers of the selected cpu", show::registers),
    ("show thread", &[], "show thread [tid|addr]: the current or the named thread", show::thread),
];

pub(crate) fn register_builtins(debugger: &mut Debugger) {
    for &(name, aliases, help, handler) in BUILTINS {
        debugger.register(name, help, Arc::new(handler));
        for alias in aliases {
            debugger.alias(alias, name);
        }
    }
}

/// Split `/mods rest` into the modifier letters and the rest.
fn modifiers(args: &str) -> (&str, &str) {
    let args = args.trim_start();
    match args.strip_prefix('/') {
        Some(tail) => {
            let end = tail.find(char::is_whitespace).unwrap_or(tail.len());
            (&tail[..end], tail[end..].trim())
        }
        None => ("", args.trim()),
    }
}
