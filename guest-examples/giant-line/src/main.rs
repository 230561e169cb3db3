//! `giant-line`, a hostile guest: answers `metadata/series/search` with a single 20 MiB
//! line. The host's message cap (8 MiB by default) must stop reading it before it is
//! buffered, and fail the call naming the limit.
//!
//! `cargo build -p giant-line` (native) or `--target wasm32-wasip2 --profile guest`.

use codex_plugin_sdk::prelude::*;
use std::process::ExitCode;

struct Giant;

impl SeriesProvider for Giant {
    async fn search(&self, _ctx: &Context, _params: SeriesSearchParams) -> Result<SearchResponse> {
        let result = SearchResult::new("giant", "x".repeat(20 << 20));
        Ok(SearchResponse { results: vec![result], next_cursor: None })
    }

    async fn get(&self, _ctx: &Context, params: GetParams) -> Result<SeriesMetadata> {
        Err(PluginError::NotFound(params.external_id))
    }
}

fn main() -> ExitCode {
    Plugin::new(PluginInfo::new("giant-line", "Giant Line", "0.1.0", "Answers with 20 MiB")).series(Giant).run()
}
