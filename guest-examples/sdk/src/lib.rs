//! Write Codex plugins in Rust.
//!
//! A plugin implements one or more providers ([`SeriesProvider`], [`BookProvider`],
//! [`SyncProvider`], [`RecommendationProvider`]) and hands them to a [`Plugin`], whose
//! manifest's capabilities follow from the providers given. [`Plugin::run`] then speaks
//! JSON-RPC 2.0 on stdin/stdout with the official TypeScript SDK's wire behaviour:
//!
//! - `initialize`, `ping` and `shutdown` are handled for you; `initialize`'s configuration
//!   and credentials reach your methods through their [`Context`];
//! - every request runs as its own task, so a method awaiting [`Storage`] never holds up
//!   the others, and storage requests have their own deadline;
//! - unknown methods get -32601, lines that are not JSON -32700, params that do not parse
//!   -32602, and [`PluginError`] maps to the official codes (-32001 … -32005);
//! - [`Logger`] writes `[LEVEL]` lines to stderr, never to stdout.
//!
//! The loop is one thread and wakes only for the host's lines and for storage deadlines:
//! do other I/O synchronously inside a method instead of awaiting another runtime.
//!
//! The same code builds natively (run it with `codex-plugin-host call … -- ./plugin`) and
//! for `wasm32-wasip2` (a component the host runs in-process).
//!
//! ```no_run
//! use codex_plugin_sdk::prelude::*;
//!
//! struct Echo;
//!
//! impl SeriesProvider for Echo {
//!     async fn search(&self, _ctx: &Context, params: SeriesSearchParams) -> Result<SearchResponse> {
//!         Ok(SearchResponse { results: vec![], next_cursor: None })
//!     }
//!     async fn get(&self, _ctx: &Context, params: GetParams) -> Result<SeriesMetadata> {
//!         Err(PluginError::NotFound(format!("no series {}", params.external_id)))
//!     }
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     Plugin::new(PluginInfo::new("echo", "Echo", "1.0.0", "Echoes queries")).series(Echo).run()
//! }
//! ```

mod context;
mod error;
pub mod io;
mod link;
mod logger;
mod providers;
mod releases;
mod router;
mod server;
mod storage;

pub use codex_plugin_protocol::{manifest, types};
pub use context::Context;
pub use error::PluginError;
pub use link::DEFAULT_HOST_TIMEOUT;
pub use logger::Logger;
pub use providers::{BookProvider, RecommendationProvider, ReleaseProvider, Result, SeriesProvider, SyncProvider};
pub use releases::Releases;
pub use server::{Plugin, PluginInfo};
pub use storage::{HostError, Storage, StorageError};

/// Everything a plugin usually needs, in one `use`.
pub mod prelude {
    pub use crate::types::metadata::*;
    pub use crate::types::recommendations::{
        self as recommendations, AnyObject, DismissParams, DismissResponse, LibraryEntry, Recommendation,
    };
    pub use crate::types::releases::{self, PollParams, PollResponse};
    pub use crate::types::sync::*;
    pub use crate::{
        BookProvider, Context, Plugin, PluginError, PluginInfo, RecommendationProvider, ReleaseProvider, Result,
        SeriesProvider, Storage, SyncProvider,
    };
}

#[cfg(test)]
mod tests;
