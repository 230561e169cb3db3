//! What can go wrong on a connection.

use std::fmt;
use std::sync::Arc;

use crate::protocol::ErrorObject;

/// Names a plugin and its transport in every message: "plugin `echo` (process)".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginLabel {
    id: Arc<str>,
    transport: &'static str,
}

impl PluginLabel {
    pub fn new(id: &str, transport: &'static str) -> Self {
        Self { id: id.into(), transport }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn transport(&self) -> &'static str {
        self.transport
    }
}

impl fmt::Display for PluginLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "plugin `{}` ({})", self.id, self.transport)
    }
}

/// Why a connection to a plugin ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloseReason {
    /// The plugin ended: an exit status, a signal, a trap.
    #[error("{0}")]
    Exited(String),
    #[error("closed its output")]
    OutputClosed,
    #[error("sent a message over the limit of {limit} bytes ({} MiB)", *limit as f64 / 1_048_576.0)]
    MessageTooLarge { limit: usize },
    #[error("wrote over {limit} bytes of lines that are not JSON-RPC without one message between them")]
    OutputFlooded { limit: usize },
    #[error("reading its output failed: {0}")]
    ReadFailed(String),
    #[error("writing to its input failed: {0}")]
    WriteFailed(String),
    #[error("was stopped by the host")]
    Stopped,
}

impl CloseReason {
    /// A protocol violation or a death, as opposed to a stop the host asked for.
    pub fn is_fault(&self) -> bool {
        !matches!(self, Self::Stopped)
    }
}

/// A connection that has ended, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{plugin} {reason}")]
pub struct ConnectionClosed {
    pub plugin: PluginLabel,
    pub reason: CloseReason,
}

/// Why one call got no result.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    /// The plugin answered with a JSON-RPC error.
    #[error("answered with error {0}")]
    Rpc(ErrorObject),
    /// The plugin answered with an `error` that is not `{code, message}`.
    #[error("answered with a malformed error: {0}")]
    MalformedError(String),
    /// The connection ended before the answer came.
    #[error(transparent)]
    Closed(#[from] ConnectionClosed),
    /// The request itself is larger than a plugin's input may hold; nothing was sent.
    #[error("the request of {bytes} bytes is over the limit of {limit} bytes; it was not sent")]
    RequestTooLarge { bytes: usize, limit: usize },
}
