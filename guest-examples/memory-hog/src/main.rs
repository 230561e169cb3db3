//! `memory-hog`, a hostile guest: `metadata/series/search` allocates (and touches) memory
//! in 1 MiB pieces without bound. In wasm mode the host's memory limit stops it with a
//! "memory limit" error; natively it grows until the call times out or the OS steps in.
//!
//! With the query `fields:BYTES` a wasm guest hoards memory on the host's side instead:
//! it creates `wasi:http` `fields` resources, each with a header of BYTES bytes, and never
//! drops them. The host must stop it at a bound of its own, not at its own memory's end.
//! Natively there are no host resources to hoard, and the search says so.
//!
//! `cargo build -p memory-hog` (native) or `--target wasm32-wasip2 --profile guest`.

use codex_plugin_sdk::prelude::*;
use std::process::ExitCode;

struct Hog;

impl SeriesProvider for Hog {
    async fn search(&self, ctx: &Context, params: SeriesSearchParams) -> Result<SearchResponse> {
        if let Some(bytes) = params.query.strip_prefix("fields:") {
            let bytes = bytes.parse().map_err(|_| PluginError::InvalidParams("fields:BYTES".into()))?;
            return hoard_host_resources(ctx, bytes);
        }
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

/// Creates `fields` with one `bytes`-byte header each, and forgets them (never dropped, so
/// the host keeps every one) until the host stops it.
#[cfg(target_os = "wasi")]
fn hoard_host_resources(ctx: &Context, bytes: usize) -> Result<SearchResponse> {
    use wasip2::http::types::Fields;
    let value = vec![b'x'; bytes];
    let mut held = 0u64;
    loop {
        let fields = Fields::new();
        if let Err(error) = fields.append("x-hoard", &value) {
            return Err(PluginError::Internal(format!("the host refused header {held}: {error:?}")));
        }
        std::mem::forget(fields);
        held += 1;
        if held.is_multiple_of(1000) {
            ctx.log().warn(format!("holding {held} fields of {bytes} bytes"));
        }
    }
}

#[cfg(not(target_os = "wasi"))]
fn hoard_host_resources(_ctx: &Context, _bytes: usize) -> Result<SearchResponse> {
    Err(PluginError::InvalidParams("only a wasm guest holds resources on the host's side".into()))
}

fn main() -> ExitCode {
    Plugin::new(PluginInfo::new("memory-hog", "Memory Hog", "0.1.0", "Allocates without bound")).series(Hog).run()
}
