//! Users' integrations from an embedding server: a user connected to a sync plugin with a
//! personal access token, their reading progress synced (every page pulled, matched,
//! applied, then pushed in batches), a recommendation plugin's suggestions from their
//! library, one dismissed; and what a long-running host runs in the background (scheduled
//! syncs, OAuth token refreshes). OAuth itself: `Integrations::start_oauth` gives the URL
//! to send the user to, and `finish_oauth` takes the callback's `state` and `code`.
//!
//!     cargo build -p sync-echo -p recommendations-echo --target wasm32-wasip2 --profile guest
//!     cargo run -p codex-plugin-host --example integrations -- target/wasm32-wasip2/guest docs/sample-library.json

use codex_plugin_host::host::{HostConfig, PluginHost};
use codex_plugin_host::integrations::{Integrations, SyncOptions};
use codex_plugin_host::library::{LibraryFile, SqliteLibrary};
use codex_plugin_host::metadata::settings::MetadataSettings;
use codex_plugin_host::plugin::PluginId;
use codex_plugin_host::registry::{Launch, PluginDefinition};
use codex_plugin_host::vault::{EncryptionKey, Secret};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::sync::Arc;
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: integrations <components directory> <library.json>";
    let components = std::path::absolute(args.next().ok_or(usage)?)?;
    let sample = args.next().ok_or(usage)?;
    let data = tempfile::tempdir()?;
    // The vault's key, in a file only the host's user reads (tokens are sealed with it).
    let key_file = data.path().join("vault.key");
    std::fs::write(&key_file, EncryptionKey::generate())?;
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600))?;
    let mut config = HostConfig::new(data.path().join("host"));
    config.key_file = Some(key_file);
    let host = Arc::new(PluginHost::open(config)?);
    let library = Arc::new(SqliteLibrary::open(&host.database_path())?);
    LibraryFile::parse(&std::fs::read_to_string(sample)?)?.import(library.as_ref())?;
    let integrations = Integrations::new(host.clone(), library.clone())?;
    let registry = host.registry();
    let may_read_library = MetadataSettings { permissions: vec!["library:read".into()], ..MetadataSettings::default() };

    // A sync plugin; ann connects her tracker account with a personal access token.
    let sync = PluginDefinition::new(Launch::Wasm { file: components.join("sync-echo.wasm") });
    registry.add(&PluginId::new("echo-sync")?, &sync)?;
    registry.set_metadata_settings("echo-sync", &may_read_library)?;
    registry.connect_user("echo-sync", "ann", serde_json::Map::new())?;
    let token = BTreeMap::from([("access_token".to_owned(), Secret::new("t0ken-of-ann"))]);
    registry.set_credentials(host.vault()?, "echo-sync", Some("ann"), &token)?;
    let report = integrations.sync("echo-sync", "ann", SyncOptions::default()).await?;
    println!(
        "synced {}: pulled {} ({} matched), {} books marked read, pushed {} ({} failed)",
        report.account.as_ref().map_or("?", |account| account.username.as_str()),
        report.pulled,
        report.matched,
        report.books_marked,
        report.pushed,
        report.failed.len()
    );

    // A recommendation plugin, asked now (a read answers from the cache otherwise).
    let recommendations = PluginDefinition::new(Launch::Wasm { file: components.join("recommendations-echo.wasm") });
    registry.add(&PluginId::new("recs")?, &recommendations)?;
    registry.set_metadata_settings("recs", &may_read_library)?;
    registry.connect_user("recs", "ann", serde_json::Map::new())?;
    let list = integrations.recommendations("ann", true).await?;
    for merged in list.recommendations.iter().take(3) {
        let item = &merged.recommendation;
        println!("{:.2} {} — {}", item.score.unwrap_or_default(), item.title, item.reason.as_deref().unwrap_or(""));
    }
    if let Some(first) = list.recommendations.first() {
        let dismissed = integrations.dismiss("ann", &first.recommendation.external_id, None).await?;
        println!("dismissed {} (told {:?})", dismissed.external_id, dismissed.told);
    }

    // A server runs these for as long as it runs; dropping them stops them.
    let _scheduled_syncs = integrations.spawn_sync_scheduler(Duration::from_secs(30));
    let _token_refresher = integrations.spawn_token_refresher(Duration::from_secs(60));
    Ok(())
}
