//! The metadata pipeline end to end: auto-match of a generated library of 10,000 series
//! through `metadata-echo` (query, search, best result, `get`, apply, external id), in wasm
//! mode and in process mode (the native echo, no Node), on a real database file.
//!
//!     cargo bench -p codex-plugin-host --bench pipeline
//!
//! Per mode: series per second over 10,000 series with 4 in flight and with the default
//! (8), each on a library of its own; then, one at a time over
//! 2,000 fresh series, p50 and p99 per series and where the time goes: the same searches
//! and gets made directly through `PluginHost` (the plugin's share, with the supervisor),
//! the same reads and saves made directly on the library (the database's share), and the
//! rest (the pipeline's own: query, decisions, decoding, planning).

mod common;

use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use codex_plugin_host::host::{HostConfig, PluginHost};
use codex_plugin_host::library::{LibraryFile, LibraryPort, SqliteLibrary};
use codex_plugin_host::metadata::settings::{MetadataSettings, Target};
use codex_plugin_host::pipeline::{DEFAULT_IN_FLIGHT, Pipeline, RunOptions};
use codex_plugin_host::plugin::PluginId;
use codex_plugin_host::registry::{Launch, PluginDefinition};
use codex_plugin_host::transport::process::CommandAllowlist;
use common::{build_component, build_guests, micros};

const THROUGHPUT_SERIES: usize = 10_000;
const LATENCY_SERIES: usize = 2_000;

fn main() {
    let component = build_component("metadata-echo");
    let native = build_guests(&["metadata-echo"]).remove(0);
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
    println!(
        "| mode | series/s (4 in flight) | series/s ({DEFAULT_IN_FLIGHT} in flight, the default) | p50 per series | p99 per series | plugin | database | pipeline |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let modes = [
        ("wasm (metadata-echo component)", Launch::Wasm { file: component }),
        (
            "process (metadata-echo native)",
            Launch::Process { command: native.to_string_lossy().into_owned(), args: Vec::new() },
        ),
    ];
    for (name, launch) in modes {
        let plugins_dir = native.parent().expect("a directory").to_path_buf();
        // On a worker, as the command line and a server run a job.
        let row = runtime.block_on(async { tokio::spawn(measure(launch, plugins_dir)).await.expect("the bench runs") });
        println!(
            "| {name} | {:.0} | {:.0} | {:.0} µs | {:.0} µs | {:.0}% | {:.0}% | {:.0}% |",
            row.per_second[0],
            row.per_second[1],
            micros(row.p50),
            micros(row.p99),
            row.plugin * 100.0,
            row.database * 100.0,
            row.pipeline * 100.0
        );
    }
}

struct Row {
    /// With 4 in flight, then the default.
    per_second: [f64; 2],
    p50: Duration,
    p99: Duration,
    plugin: f64,
    database: f64,
    pipeline: f64,
}

/// A library file of `count` series named `Series N`, in library `id`.
fn generated(id: &str, count: usize) -> LibraryFile {
    let series: Vec<Value> = (0..count)
        .map(|index| json!({"id": format!("{id}-{index:05}"), "name": format!("Series {index} (Digital)"), "metadata": {"year": 1990 + index % 30}}))
        .collect();
    let rules = [json!({"pattern": r"\s*\(Digital\)$", "replacement": ""})];
    serde_json::from_value(json!({
        "format": "codex-plugin-host/library", "version": 1,
        "libraries": [{"id": id, "name": id, "titleRules": rules, "series": series}]
    }))
    .expect("a valid library file")
}

async fn measure(launch: Launch, plugins_dir: std::path::PathBuf) -> Row {
    let data = tempfile::tempdir().expect("a temporary directory");
    let mut config = HostConfig::new(data.path());
    config.allowlist = CommandAllowlist::default().with_plugins_dir(plugins_dir);
    let host = Arc::new(PluginHost::open(config).expect("the host opens"));
    host.registry().add(&PluginId::new("echo").expect("valid"), &PluginDefinition::new(launch)).expect("registered");
    let settings = MetadataSettings {
        permissions: vec!["metadata:write:*".into()],
        targets: Some(vec![Target::Series]),
        ..MetadataSettings::default()
    };
    host.registry().set_metadata_settings("echo", &settings).expect("settings");
    let library = Arc::new(SqliteLibrary::open(&host.database_path()).expect("the library opens"));
    for id in ["big4", "big-default"] {
        generated(id, THROUGHPUT_SERIES).import(&library).expect("imported");
    }
    generated("timed", LATENCY_SERIES).import(&library).expect("imported");
    // The imports' log copied back now, so that no timed run pays for it.
    rusqlite::Connection::open(host.database_path())
        .and_then(|connection| connection.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)"))
        .expect("a checkpoint");
    let port: Arc<dyn LibraryPort> = library.clone();
    let pipeline = Pipeline::new(host.clone(), port).expect("the pipeline");
    host.call("echo", None, "ping", Value::Null).await.expect("the plugin starts");

    let mut per_second = [0.0; 2];
    for (index, (library, in_flight)) in [("big4", 4), ("big-default", DEFAULT_IN_FLIGHT)].into_iter().enumerate() {
        let options = RunOptions { in_flight, ..RunOptions::default() };
        let run = pipeline.auto_match_library("echo", library, &options, &|_| {}).await.expect("the run");
        assert_eq!(run.tally.outcomes.get("applied"), Some(&THROUGHPUT_SERIES), "{:?}", run.tally);
        per_second[index] = THROUGHPUT_SERIES as f64 / run.seconds;
    }

    // One at a time: the time between two items' ends is one item's.
    let ends = Mutex::new(Vec::with_capacity(LATENCY_SERIES));
    let started = Instant::now();
    let one_at_a_time = RunOptions { in_flight: 1, ..RunOptions::default() };
    pipeline
        .auto_match_library("echo", "timed", &one_at_a_time, &|_| {
            ends.lock().expect("not poisoned").push(Instant::now())
        })
        .await
        .expect("the run");
    let total = started.elapsed();
    let ends = ends.into_inner().expect("not poisoned");
    let mut each: Vec<Duration> = ends
        .iter()
        .scan(started, |previous, end| Some(end.duration_since(std::mem::replace(previous, *end))))
        .collect();
    each.sort();

    // The same plugin calls, directly.
    let started = Instant::now();
    for index in 0..LATENCY_SERIES {
        let query = format!("Series {index}");
        let found = host
            .call("echo", None, "metadata/series/search", json!({"query": query, "limit": 10}))
            .await
            .expect("search");
        let id = found["results"][0]["externalId"].as_str().expect("a result").to_owned();
        host.call("echo", None, "metadata/series/get", json!({"externalId": id})).await.expect("get");
    }
    let plugin = started.elapsed();

    // The same library reads and writes, directly.
    let started = Instant::now();
    for index in 0..LATENCY_SERIES {
        let id = format!("timed-{index:05}");
        let mut series = library.series(&id).expect("a series");
        library.library(&series.library_id).expect("its library");
        series.metadata.summary = Some(format!("summary {index}"));
        library.save_series(&series).expect("saved");
    }
    let database = started.elapsed();

    drop(pipeline);
    if let Ok(host) = Arc::try_unwrap(host) {
        host.shutdown().await;
    }
    let share = |part: Duration| part.as_secs_f64() / total.as_secs_f64();
    Row {
        per_second,
        p50: each[each.len() / 2],
        p99: each[each.len() * 99 / 100],
        plugin: share(plugin),
        database: share(database),
        pipeline: (1.0 - share(plugin) - share(database)).max(0.0),
    }
}
