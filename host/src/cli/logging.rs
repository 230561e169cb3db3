//! Logs of the command go to stderr; stdout is for results only.

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

use crate::protocol::types::initialize::LogLevel;

/// `RUST_LOG` wins when set; otherwise the command's `--log-level`.
pub fn init(level: LogLevel) {
    init_with(level, "");
}

/// [`init`], with what the plugin writes (its stderr, its stray stdout lines) left out
/// unless `RUST_LOG` asks for it: for `check`, whose report judges those lines instead.
pub fn init_without_plugin_lines(level: LogLevel) {
    init_with(level, ",codex_plugin_host::transport::stderr=off,codex_plugin_host::dispatch=off");
}

fn init_with(level: LogLevel, directives: &str) {
    let default = match level {
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(format!("{default}{directives}")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}
