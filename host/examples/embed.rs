//! Embedding the host in a server: register a plugin once, call it for a user, observe its
//! health and metrics, stop everything cleanly.
//!
//!     cargo build -p metadata-echo --target wasm32-wasip2 --profile guest
//!     cargo run -p codex-plugin-host --example embed -- target/wasm32-wasip2/guest/metadata-echo.wasm
//!
//! The data (database, plugin directories, compiled components) goes to a temporary
//! directory; a server would give its own.

use codex_plugin_host::host::{HostConfig, PluginHost};
use codex_plugin_host::plugin::PluginId;
use codex_plugin_host::registry::{Launch, PluginDefinition};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let component = std::env::args().nth(1).ok_or("usage: embed <component.wasm>")?;
    let data = tempfile::tempdir()?;
    let host = PluginHost::open(HostConfig::new(data.path()))?;

    // Register once: the id is ours, whatever the plugin's manifest calls itself.
    let mut definition = PluginDefinition::new(Launch::Wasm { file: std::path::absolute(component)? });
    definition.admin_config = json!({"maxResults": 2}).as_object().cloned().unwrap_or_default();
    host.registry().add(&PluginId::new("echo")?, &definition)?;
    host.registry().connect_user("echo", "alice", Default::default())?;

    // The first call starts the plugin; later ones reuse it.
    let found = host.call("echo", Some("alice"), "metadata/series/search", json!({"query": "dune"})).await?;
    println!("search: {found}");
    let missing = host.call("echo", Some("alice"), "metadata/series/get", json!({"externalId": "nope"})).await;
    println!("get: {}", missing.map_or_else(|error| error.to_string(), |found| found.to_string()));

    println!("health: {:?}", host.health("echo")?);
    let metrics = host.metrics("echo")?;
    for (method, counts) in &metrics.methods {
        println!(
            "{method}: {} requests, {} successes, failures {:?}",
            counts.requests, counts.successes, counts.failures
        );
    }
    host.shutdown().await;
    Ok(())
}
