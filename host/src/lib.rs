//! A sandboxed plugin runtime for Codex.
//!
//! Codex plugins are separate programs that speak JSON-RPC 2.0, one message per line, over
//! their stdin and stdout. This crate runs them and talks to them:
//!
//! - [`protocol`]: the messages, the methods and their typed params and results, the
//!   manifest and its validation, the error codes (one place for each).
//! - [`dispatch`]: one [`dispatch::Connection`] over any pair of async byte streams:
//!   correlation by id, many calls in flight, reverse `storage/*` requests from the plugin.
//! - [`limits`]: the timeout layer and the storage-quota layer, written once for every
//!   transport.
//! - [`storage`]: the key/value store behind the quota layer (SQLite, or memory for tests).
//! - [`transport`]: how a plugin is started and stopped. Today: child processes.
//! - [`plugin`]: a running plugin, initialized and ready to answer typed calls.
//! - [`cli`]: the `codex-plugin-host` command line.

pub mod access;
pub mod checker;
pub mod cli;
pub mod config_schema;
pub mod conformance;
pub mod database;
pub mod dispatch;
pub mod host;
pub mod install;
pub mod integrations;
pub mod library;
pub mod limits;
pub mod metadata;
pub mod metrics;
pub mod oauth;
pub mod outbound;
pub mod pipeline;
pub mod plugin;
pub mod protocol;
pub mod recommendations;
pub mod registry;
pub mod release_tracking;
pub mod releases;
pub mod sandbox;
pub mod server;
pub mod storage;
pub mod supervisor;
pub mod sync;
pub mod transport;
pub mod vault;
