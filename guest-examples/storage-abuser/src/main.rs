//! `storage-abuser`, a hostile guest: on `metadata/series/search` it writes storage past
//! every limit (101 keys, a 2 MiB value, a bad expiry, a 300-byte key) and reports what the
//! host said to each write, one search result per step: `externalId` names the step,
//! `title` is `ok` or `refused <code>: <message>`.
//!
//! `cargo build -p storage-abuser` (native) or `--target wasm32-wasip2 --profile guest`.

use codex_plugin_sdk::prelude::*;
use codex_plugin_sdk::{Storage, StorageError};
use std::process::ExitCode;

struct Abuser;

async fn step(storage: &Storage, key: &str, value: serde_json::Value, expires_at: Option<&str>) -> String {
    match storage.set(key, value, expires_at).await {
        Ok(()) => "ok".into(),
        Err(StorageError::Refused(error)) => format!("refused {}: {}", error.code, error.message),
        Err(other) => format!("failed: {other}"),
    }
}

fn result(step: &str, outcome: String) -> SearchResult {
    SearchResult::new(step, outcome)
}

impl SeriesProvider for Abuser {
    async fn search(&self, ctx: &Context, _params: SeriesSearchParams) -> Result<SearchResponse> {
        let storage = ctx.storage();
        let mut stored = 0;
        for index in 0..100 {
            if step(storage, &format!("k{index:03}"), index.into(), None).await == "ok" {
                stored += 1;
            }
        }
        let results = vec![
            result("first-100-keys", format!("{stored} stored")),
            result("key-101", step(storage, "k100", 100.into(), None).await),
            result("value-2-mib", step(storage, "k000", "x".repeat(2 << 20).into(), None).await),
            result("bad-expiry", step(storage, "k001", 1.into(), Some("next tuesday")).await),
            result("key-300-bytes", step(storage, &"k".repeat(300), 1.into(), None).await),
            result("keys-kept", format!("{}", storage.list().await?.len())),
        ];
        Ok(SearchResponse { results, next_cursor: None })
    }

    async fn get(&self, _ctx: &Context, params: GetParams) -> Result<SeriesMetadata> {
        Err(PluginError::NotFound(params.external_id))
    }
}

fn main() -> ExitCode {
    Plugin::new(PluginInfo::new("storage-abuser", "Storage Abuser", "0.1.0", "Writes past every storage limit"))
        .series(Abuser)
        .run()
}
