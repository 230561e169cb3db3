//! Outgoing HTTP for wasm guests, through `wasi:http` only: to the hosts the admin allowed
//! for the plugin, never to an internal address unless allowed, checked after resolution.

pub(crate) mod connector;
mod policy;

pub use connector::GuardedConnector;
pub use policy::{AllowedHost, HttpPolicy, InvalidAllowedHost, is_internal};
