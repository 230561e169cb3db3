//! `bad-json`, a hostile guest: answers `metadata/series/search` with broken JSON (half an
//! object, then a line that is not JSON at all) and never with a proper answer. The host
//! must skip both lines and keep the connection, so the call ends at its deadline.
//!
//! `cargo build -p bad-json` (native) or `--target wasm32-wasip2 --profile guest`.

use codex_plugin_sdk::prelude::*;
use std::io::Write;
use std::process::ExitCode;

struct Broken;

impl SeriesProvider for Broken {
    async fn search(&self, _ctx: &Context, _params: SeriesSearchParams) -> Result<SearchResponse> {
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"results\":[\n");
        let _ = stdout.write_all(b"<html>not json at all</html>\n");
        let _ = stdout.flush();
        std::future::pending().await
    }

    async fn get(&self, _ctx: &Context, params: GetParams) -> Result<SeriesMetadata> {
        Err(PluginError::NotFound(params.external_id))
    }
}

fn main() -> ExitCode {
    Plugin::new(PluginInfo::new("bad-json", "Bad JSON", "0.1.0", "Answers with broken JSON")).series(Broken).run()
}
