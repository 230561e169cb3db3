//! `memory-hog`, a hostile guest: `metadata/series/search` allocates (and touches) memory
//! in 1 MiB pieces without bound. In wasm mode the host's memory limit stops it with a
//! "memory limit" error; natively it grows until the call times out or the OS steps in.
//!
//! `cargo build -p memory-hog` (native) or `--target wasm32-wasip2 --profile guest`.

use codex_plugin_sdk::prelude::*;
use std::process::ExitCode;

struct Hog;

impl SeriesProvider for Hog {
    async fn search(&self, ctx: &Context, _params: SeriesSearchParams) -> Result<SearchResponse> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(vec![0xA5; 1 << 20]);
            if hoard.len().is_multiple_of(64) {
                ctx.log().warn(format!("holding {} MiB", hoard.len()));
            }
        }
    }

    async fn get(&self, _ctx: &Context, params: GetParams) -> Result<SeriesMetadata> {
        Err(PluginError::NotFound(params.external_id))
    }
}

fn main() -> ExitCode {
    Plugin::new(PluginInfo::new("memory-hog", "Memory Hog", "0.1.0", "Allocates without bound")).series(Hog).run()
}
