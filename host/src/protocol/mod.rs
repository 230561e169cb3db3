//! The plugin protocol: JSON-RPC 2.0 messages over newline-delimited JSON.
//!
//! Everything here is pure data and validation, with no I/O: [`message`] classifies and
//! builds lines, [`codec`] reads bounded lines from a byte stream, [`methods`] names every
//! method and its capability, [`types`] holds the params and results, [`manifest`]
//! validates what a plugin says about itself, and [`codes`] is the one place that knows
//! the error codes.

pub mod codec;
pub mod codes;
pub mod manifest;
pub mod message;
pub mod methods;
pub mod types;

pub use codes::ErrorCode;
pub use manifest::{Manifest, ManifestError};
pub use message::{ErrorObject, Incoming, PluginRequest, Response};
pub use methods::{Capability, HostMethod, MethodSpec};
