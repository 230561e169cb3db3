//! Logs of the command go to stderr; stdout is for results only.

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

use crate::protocol::types::initialize::LogLevel;

/// `RUST_LOG` wins when set; otherwise the command's `--log-level`.
pub fn init(level: LogLevel) {
    let default = match level {
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}
