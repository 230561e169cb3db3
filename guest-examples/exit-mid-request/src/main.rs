//! `exit-mid-request`, a hostile guest: exits with status 3 in the middle of
//! `metadata/series/search`. The host must fail every pending call at once with the exit,
//! not at the deadline.
//!
//! `cargo build -p exit-mid-request` (native) or `--target wasm32-wasip2 --profile guest`.

use codex_plugin_sdk::prelude::*;
use std::process::ExitCode;

struct Quitter;

impl SeriesProvider for Quitter {
    async fn search(&self, _ctx: &Context, _params: SeriesSearchParams) -> Result<SearchResponse> {
        std::process::exit(3)
    }

    async fn get(&self, _ctx: &Context, params: GetParams) -> Result<SeriesMetadata> {
        Err(PluginError::NotFound(params.external_id))
    }
}

fn main() -> ExitCode {
    Plugin::new(PluginInfo::new("exit-mid-request", "Exit Mid Request", "0.1.0", "Exits while searching"))
        .series(Quitter)
        .run()
}
