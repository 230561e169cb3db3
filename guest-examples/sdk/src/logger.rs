//! A logger that writes `[LEVEL] [name] message` lines to stderr, never to stdout (stdout
//! carries JSON-RPC). The host reads the level back from the bracket.

use codex_plugin_protocol::types::initialize::LogLevel;
use std::cell::Cell;
use std::fmt::Display;
use std::io::Write;
use std::rc::Rc;

/// Cheap to clone; every clone shares the level the host asked for in `initialize`.
#[derive(Clone)]
pub struct Logger {
    name: Rc<str>,
    level: Rc<Cell<LogLevel>>,
}

impl Logger {
    pub fn new(name: &str) -> Self {
        Self { name: name.into(), level: Rc::new(Cell::new(LogLevel::Info)) }
    }

    pub fn set_level(&self, level: LogLevel) {
        self.level.set(level);
    }

    pub fn debug(&self, message: impl Display) {
        self.write(LogLevel::Debug, message);
    }

    pub fn info(&self, message: impl Display) {
        self.write(LogLevel::Info, message);
    }

    pub fn warn(&self, message: impl Display) {
        self.write(LogLevel::Warn, message);
    }

    pub fn error(&self, message: impl Display) {
        self.write(LogLevel::Error, message);
    }

    fn write(&self, level: LogLevel, message: impl Display) {
        if rank(level) < rank(self.level.get()) {
            return;
        }
        let tag = match level {
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Warn => "WARN",
            LogLevel::Error => "ERROR",
        };
        // A log line that cannot be written is dropped: logging never fails a request.
        let _ = writeln!(std::io::stderr().lock(), "[{tag}] [{}] {message}", self.name);
    }
}

fn rank(level: LogLevel) -> u8 {
    match level {
        LogLevel::Debug => 0,
        LogLevel::Info => 1,
        LogLevel::Warn => 2,
        LogLevel::Error => 3,
    }
}
