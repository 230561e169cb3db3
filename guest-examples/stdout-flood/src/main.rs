//! `stdout-flood`, a hostile guest: on `metadata/series/search` it writes junk lines to
//! stdout without end, and never answers. The host must skip the junk without buffering
//! it, keep its own memory flat, and stop the plugin at the deadline.
//!
//! `cargo build -p stdout-flood` (native) or `--target wasm32-wasip2 --profile guest`.

use codex_plugin_sdk::prelude::*;
use std::io::Write;
use std::process::ExitCode;

struct Flood;

impl SeriesProvider for Flood {
    async fn search(&self, _ctx: &Context, _params: SeriesSearchParams) -> Result<SearchResponse> {
        let junk = format!("{}\n", "flood ".repeat(170));
        let mut stdout = std::io::stdout().lock();
        loop {
            if stdout.write_all(junk.as_bytes()).is_err() {
                std::process::exit(1);
            }
        }
    }

    async fn get(&self, _ctx: &Context, params: GetParams) -> Result<SeriesMetadata> {
        Err(PluginError::NotFound(params.external_id))
    }
}

fn main() -> ExitCode {
    Plugin::new(PluginInfo::new("stdout-flood", "Stdout Flood", "0.1.0", "Floods stdout")).series(Flood).run()
}
