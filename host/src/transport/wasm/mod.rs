//! WebAssembly mode: plugins compiled to WASI Preview 2 components (`wasm32-wasip2`), run
//! in this process by wasmtime. No process is spawned.
//!
//! The guest's stdin, stdout and stderr are in-memory pipes joined to the same dispatcher
//! as process mode; everything else about the guest is denied unless granted: no
//! environment, no arguments, no sockets, no directory but its own data directory (as
//! `/data`), a memory limit. [`WasmRuntime`] holds what every guest shares (the engine, the
//! linker, the epoch ticker); [`spawn`] starts one guest and yields the same
//! [`Launched`](super::Launched) a process does.

mod cache;
pub mod disk_quota;
mod filesystem;
mod guest;
pub mod http;
mod loaded;
mod runtime;
mod watchdog;
mod world;

pub use cache::{CacheOutcome, ComponentCache};
pub use guest::{WasmHandle, WasmSpec, host_budget, spawn, spawn_with_stderr_tap};
pub use loaded::LoadedComponents;
pub use runtime::{WasmComponent, WasmRuntime};
pub use watchdog::DeadlineExceeded;
pub use world::PLUGIN_WORLD;

/// The transport's name in messages.
pub const TRANSPORT: &str = "wasm";

/// Linear memory a guest may use unless its plugin says otherwise.
pub const DEFAULT_MEMORY_LIMIT_BYTES: usize = 64 << 20;

/// A guest asked for more linear memory than its plugin may use. Raised by the store's
/// limiter, so the trap that ends the guest names the limit instead of looking like a bug.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("memory limit of {} MiB exceeded (the guest asked for {} MiB)", limit / (1 << 20), wanted.div_ceil(1 << 20))]
pub struct MemoryLimitExceeded {
    pub limit: usize,
    pub wanted: usize,
}

/// Why a component could not be loaded or started.
#[derive(Debug, thiserror::Error)]
pub enum WasmError {
    #[error("the wasm engine could not be set up: {0:#}")]
    Engine(wasmtime::Error),
    #[error("could not load component {path}: {source:#}")]
    Load { path: String, source: wasmtime::Error },
    #[error("component {path} imports what a plugin may not ({}); the plugin world, wit/plugin.wit, allows stdio, clocks, random, files under /data and wasi:http", imports.join(", "))]
    ForbiddenImports { path: String, imports: Vec<String> },
    #[error("component {path} is not a WASI command (it must export wasi:cli/run): {source:#}")]
    NotACommand { path: String, source: wasmtime::Error },
    #[error("could not grant the data directory {path}: {source:#}")]
    DataDir { path: String, source: wasmtime::Error },
}
