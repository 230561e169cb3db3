//! `spin-loop`, a hostile guest: `metadata/series/search` never returns and burns CPU.
//! The host must stop it at the request deadline (a timeout in process mode; epoch
//! interruption in wasm mode) and keep serving other plugins. With the query `chatty` it
//! also writes a line that is not JSON-RPC every 100 ms, which must not count as progress.
//!
//! `cargo build -p spin-loop` (native) or `--target wasm32-wasip2 --profile guest`.

use codex_plugin_sdk::prelude::*;
use std::hint::black_box;
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

struct Spin;

impl SeriesProvider for Spin {
    async fn search(&self, _ctx: &Context, params: SeriesSearchParams) -> Result<SearchResponse> {
        let chatty = params.query == "chatty";
        let mut last_line = Instant::now();
        let mut turns = 0u64;
        loop {
            turns = black_box(turns.wrapping_add(1));
            if chatty && turns.is_multiple_of(4096) && last_line.elapsed() >= Duration::from_millis(100) {
                let mut stdout = std::io::stdout().lock();
                let _ = stdout.write_all(b"still working\n").and_then(|()| stdout.flush());
                last_line = Instant::now();
            }
        }
    }

    async fn get(&self, _ctx: &Context, params: GetParams) -> Result<SeriesMetadata> {
        Err(PluginError::NotFound(params.external_id))
    }
}

fn main() -> ExitCode {
    Plugin::new(PluginInfo::new("spin-loop", "Spin Loop", "0.1.0", "Never returns from a search")).series(Spin).run()
}
