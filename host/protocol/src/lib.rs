//! The Codex plugin protocol: JSON-RPC 2.0 messages, one per line, and every method's
//! params and result as Rust types.
//!
//! Pure data and validation, with no I/O and no async runtime, so that the host and the
//! guest SDK (native and `wasm32-wasip2`) share one definition of the wire:
//! [`message`] classifies and builds lines, [`methods`] names every method and its
//! capability, [`types`] holds the params and results, [`manifest`] validates what a
//! plugin says about itself, and [`codes`] is the one place that knows the error codes.

pub mod codes;
pub mod manifest;
pub mod message;
pub mod methods;
pub mod types;

pub use codes::ErrorCode;
pub use manifest::{Manifest, ManifestError};
pub use message::{ErrorObject, Incoming, PluginRequest, Response};
pub use methods::{Capability, HostMethod, MethodSpec};
