//! The metadata pipeline from an embedding server: a library behind the port (here the
//! host's own SQLite adapter, with the sample imported; a server implements `LibraryPort`
//! over its own database), a plugin granted its writes, then a search, a dry run, an apply
//! and an auto-match of a whole library.
//!
//!     cargo build -p metadata-echo --target wasm32-wasip2 --profile guest
//!     cargo run -p codex-plugin-host --example library -- target/wasm32-wasip2/guest/metadata-echo.wasm docs/sample-library.json

use codex_plugin_host::host::{HostConfig, PluginHost};
use codex_plugin_host::library::{LibraryFile, SqliteLibrary};
use codex_plugin_host::metadata::settings::MetadataSettings;
use codex_plugin_host::pipeline::{ApplyOptions, Pipeline, RunOptions};
use codex_plugin_host::plugin::PluginId;
use codex_plugin_host::registry::{Launch, PluginDefinition};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: library <component.wasm> <library.json>";
    let component = args.next().ok_or(usage)?;
    let sample = args.next().ok_or(usage)?;
    let data = tempfile::tempdir()?;
    let host = Arc::new(PluginHost::open(HostConfig::new(data.path()))?);

    // The library: the host's SQLite adapter, in the host's database file.
    let library = SqliteLibrary::open(&host.database_path())?;
    let imported = LibraryFile::parse(&std::fs::read_to_string(sample)?)?.import(&library)?;
    println!("imported {} series and {} books", imported.series, imported.books);

    // A plugin, and what the admin lets it do (nothing by default) and how it searches.
    let definition = PluginDefinition::new(Launch::Wasm { file: std::path::absolute(component)? });
    host.registry().add(&PluginId::new("echo")?, &definition)?;
    let settings = MetadataSettings {
        permissions: vec!["metadata:write:*".into()],
        search_template: Some("{{metadata.title}} {{metadata.year}}".into()),
        ..MetadataSettings::default()
    };
    host.registry().set_metadata_settings("echo", &settings)?;

    let pipeline = Pipeline::new(host.clone(), Arc::new(library))?;
    let found = pipeline.search_series("echo", "manga-one-piece", None).await?;
    println!("query {:?}: {} results", found.query.query, found.results.len());

    let preview = ApplyOptions { dry_run: true, only: None };
    let report = pipeline.apply_series("echo", "manga-berserk", &found.results[0].external_id, &preview).await?;
    for change in &report.changes {
        println!("  {:<28} {:?}", change.field, change.outcome);
    }

    let run = pipeline.auto_match_library("echo", "manga", &RunOptions::default(), &|_| {}).await?;
    println!("auto-match of `manga`: {:?} in {:.2} s", run.tally.outcomes, run.seconds);
    drop(pipeline);
    if let Ok(host) = Arc::try_unwrap(host) {
        host.shutdown().await;
    }
    Ok(())
}
