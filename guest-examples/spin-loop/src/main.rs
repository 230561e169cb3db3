//! `spin-loop`, a hostile guest: `metadata/series/search` never returns and burns CPU.
//! The host must stop it at the request deadline (a timeout in process mode; epoch
//! interruption in wasm mode) and keep serving other plugins.
//!
//! `cargo build -p spin-loop` (native) or `--target wasm32-wasip2 --profile guest`.

use codex_plugin_sdk::prelude::*;
use std::hint::black_box;
use std::process::ExitCode;

struct Spin;

impl SeriesProvider for Spin {
    async fn search(&self, _ctx: &Context, _params: SeriesSearchParams) -> Result<SearchResponse> {
        let mut turns = 0u64;
        loop {
            turns = black_box(turns.wrapping_add(1));
        }
    }

    async fn get(&self, _ctx: &Context, params: GetParams) -> Result<SeriesMetadata> {
        Err(PluginError::NotFound(params.external_id))
    }
}

fn main() -> ExitCode {
    Plugin::new(PluginInfo::new("spin-loop", "Spin Loop", "0.1.0", "Never returns from a search")).series(Spin).run()
}
