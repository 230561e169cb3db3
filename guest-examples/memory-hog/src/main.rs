//! `memory-hog`, a hostile guest: `metadata/series/search` allocates (and touches) memory
//! in 1 MiB pieces without bound. In wasm mode the host's memory limit stops it with a
//! "memory limit" error; natively it grows until the call times out or the OS steps in.
//!
//! With the query `fields:BYTES` a wasm guest hoards memory on the host's side instead:
//! it creates `wasi:http` `fields` resources, each with a header of BYTES bytes, and never
//! drops them. The host must stop it at a bound of its own, not at its own memory's end.
//! Natively there are no host resources to hoard, and the search says so.
//!
//! With `disk-bytes` it fills its data directory with 1 MiB files (64 at most), and with
//! `disk-entries` with empty files (2,000 at most), until a write fails; the one result says how far it got and why it
//! stopped. Natively it refuses (the host does not bound a process's disk, and the test
//! machine's disk is not to be filled).
//!
//! `cargo build -p memory-hog` (native) or `--target wasm32-wasip2 --profile guest`.

use codex_plugin_sdk::prelude::*;
use std::process::ExitCode;

struct Hog;

impl SeriesProvider for Hog {
    async fn search(&self, ctx: &Context, params: SeriesSearchParams) -> Result<SearchResponse> {
        if params.query.starts_with("disk-") {
            return fill_data_dir(ctx, &params.query);
        }
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

/// Writes into `/data` until the host refuses; the result's title says how far it got.
#[cfg(target_os = "wasi")]
fn fill_data_dir(ctx: &Context, mode: &str) -> Result<SearchResponse> {
    let dir = std::path::PathBuf::from(ctx.data_dir().ok_or(PluginError::Internal("no data directory".into()))?);
    // Bounded, so that a host without a quota is shown up, not the machine's disk filled.
    let (chunk, most) = if mode == "disk-bytes" { (vec![0x5A; 1 << 20], 64) } else { (Vec::new(), 2000) };
    let mut written = 0u64;
    let stopped = loop {
        if written >= most {
            break "never refused".to_owned();
        }
        match std::fs::write(dir.join(format!("fill-{written}")), &chunk) {
            Ok(()) => written += 1,
            Err(error) => break error.to_string(),
        }
    };
    let title = format!("{written} files, then: {stopped}");
    Ok(SearchResponse { results: vec![SearchResult::new(mode, title)], next_cursor: None })
}

#[cfg(not(target_os = "wasi"))]
fn fill_data_dir(_ctx: &Context, _mode: &str) -> Result<SearchResponse> {
    Err(PluginError::InvalidParams("a process plugin's disk is not bounded by the host: not filling it".into()))
}

fn main() -> ExitCode {
    Plugin::new(PluginInfo::new("memory-hog", "Memory Hog", "0.1.0", "Allocates without bound")).series(Hog).run()
}
