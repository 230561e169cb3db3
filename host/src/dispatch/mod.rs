//! One dispatcher for every transport.
//!
//! A [`Connection`] runs over any pair of async byte streams (a child's pipes, a wasm
//! guest's in-memory pipes, a `tokio::io::duplex` in tests) and knows nothing else about
//! the plugin: it numbers the host's requests, matches answers by id in any order, serves
//! the plugin's own requests (`storage/*`) through a [`ReverseHandler`] while the host's
//! requests wait, skips lines that are not JSON-RPC, enforces the message size cap while
//! reading, and, when the plugin dies, fails every pending call at once with the cause.

mod connection;
mod error;
mod input;
mod pending;
mod reverse;

pub use connection::{Connection, ConnectionConfig, ExitSender, ExitSignal, ProgressHook, exit_signal};
pub use error::{CallError, CloseReason, ConnectionClosed, PluginLabel};
pub use reverse::{BoxFuture, RefuseAll, ReverseHandler, ReverseRequest};

#[cfg(test)]
mod tests;
