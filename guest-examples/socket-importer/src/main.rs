//! `socket-importer`, a hostile guest: on `metadata/series/search` it opens a TCP
//! connection to the `host:port` of its query. Natively that simply works (process mode
//! does not confine the network, except under `check`); built for `wasm32-wasip2` the component imports
//! `wasi:sockets`, which the plugin world (`wit/plugin.wit`) does not have, so the host
//! refuses to load it and lists the offending imports.
//!
//! `cargo build -p socket-importer` (native) or `--target wasm32-wasip2 --profile guest`.

use codex_plugin_sdk::prelude::*;
use std::net::TcpStream;
use std::process::ExitCode;

struct Importer;

impl SeriesProvider for Importer {
    async fn search(&self, _ctx: &Context, params: SeriesSearchParams) -> Result<SearchResponse> {
        let outcome = match TcpStream::connect(&params.query) {
            Ok(_) => "connected".to_owned(),
            Err(error) => format!("refused: {error}"),
        };
        let result = SearchResult::new(params.query, outcome);
        Ok(SearchResponse { results: vec![result], next_cursor: None })
    }

    async fn get(&self, _ctx: &Context, params: GetParams) -> Result<SeriesMetadata> {
        Err(PluginError::NotFound(params.external_id))
    }
}

fn main() -> ExitCode {
    Plugin::new(PluginInfo::new("socket-importer", "Socket Importer", "0.1.0", "Opens a TCP connection"))
        .series(Importer)
        .run()
}
