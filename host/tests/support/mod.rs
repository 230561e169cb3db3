//! Helpers shared by the host's command-line tests.

pub mod npm_registry;
