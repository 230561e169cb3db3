//! Reading-progress sync end to end: one user with 10,000 series read, synced through
//! `sync-echo` (10,000 entries pulled over 100 pages, matched and applied; 10,000 pushed in
//! 100 batches), in wasm mode and in process mode (the native echo), on a real database
//! file.
//!
//!     cargo bench -p codex-plugin-host --bench sync
//!
//! Per mode, the median of three syncs, each on a fresh host: the whole sync, and the
//! shares of its time spent waiting for the plugin and in the library (as the sync's report
//! measures them); then the baseline: the same 100 pulls and 100 pushes sent straight to
//! the plugin through a session, with nothing done with the answers. The ratio of the two
//! is what the host's orchestration costs on top of the plugin's own work.

mod common;

use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use codex_plugin_host::host::{HostConfig, PluginHost};
use codex_plugin_host::integrations::{Integrations, SyncOptions, SyncReport};
use codex_plugin_host::library::{BookRead, LibraryFile, LibraryPort, ReadingChanges, SqliteLibrary};
use codex_plugin_host::metadata::settings::MetadataSettings;
use codex_plugin_host::plugin::PluginId;
use codex_plugin_host::protocol::types::sync::{PullResponse, PushParams};
use codex_plugin_host::registry::{Launch, PluginDefinition};
use codex_plugin_host::transport::process::CommandAllowlist;
use common::{build_component, build_guests};

const SERIES: usize = 10_000;
const PAGE: i64 = 100;
const ROUNDS: usize = 3;

fn main() {
    let component = build_component("sync-echo");
    let native = build_guests(&["sync-echo"]).remove(0);
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
    println!(
        "| mode | whole sync | plugin | library | host's own | baseline: the same calls alone | sync / baseline |"
    );
    println!("|---|---|---|---|---|---|---|");
    let modes = [
        ("wasm (sync-echo component)", Launch::Wasm { file: component }),
        (
            "process (sync-echo native)",
            Launch::Process { command: native.to_string_lossy().into_owned(), args: Vec::new() },
        ),
    ];
    for (name, launch) in modes {
        let plugins_dir = native.parent().expect("a directory").to_path_buf();
        let mut rounds: Vec<Round> = (0..ROUNDS)
            .map(|_| {
                let (launch, dir) = (launch.clone(), plugins_dir.clone());
                runtime.block_on(async { tokio::spawn(measure(launch, dir)).await.expect("the bench runs") })
            })
            .collect();
        rounds.sort_by_key(|round| round.whole);
        let round = &rounds[ROUNDS / 2];
        let whole = round.whole.as_secs_f64();
        let report = &round.report;
        let own = whole - report.plugin_seconds - report.library_seconds;
        println!(
            "| {name} | {:.2} s | {:.2} s ({:.0}%) | {:.2} s ({:.0}%) | {:.2} s ({:.0}%) | {:.2} s | {:.2}× |",
            whole,
            report.plugin_seconds,
            report.plugin_seconds / whole * 100.0,
            report.library_seconds,
            report.library_seconds / whole * 100.0,
            own,
            own / whole * 100.0,
            round.baseline.as_secs_f64(),
            whole / round.baseline.as_secs_f64(),
        );
    }
}

struct Round {
    whole: Duration,
    report: SyncReport,
    baseline: Duration,
}

/// A library of 10,000 series, one book each, each with an `api:echo` id sync-echo pulls.
fn library_file() -> String {
    let series: Vec<_> = (0..SERIES)
        .map(|index| {
            json!({
                "id": format!("s{index:05}"), "name": format!("Series {index}"),
                "metadata": {"totalVolumeCount": 1},
                "externalIds": {"api:echo": {"id": format!("series-{index:02}")}},
                "books": [{"id": format!("b{index:05}"), "position": 1, "title": "v1", "pageCount": 20}]
            })
        })
        .collect();
    json!({"format": "codex-plugin-host/library", "version": 1, "libraries": [{"id": "big", "name": "Big", "series": series}]})
        .to_string()
}

async fn measure(launch: Launch, plugins_dir: PathBuf) -> Round {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut config = HostConfig::new(dir.path());
    config.allowlist = CommandAllowlist::default().with_plugins_dir(plugins_dir);
    let host = Arc::new(PluginHost::open(config).expect("a host"));
    let mut definition = PluginDefinition::new(launch);
    definition.admin_config = json!({"entries": SERIES}).as_object().cloned().expect("an object");
    let registry = host.registry();
    registry.add(&PluginId::new("echo-sync").expect("an id"), &definition).expect("registered");
    let grant = MetadataSettings { permissions: vec!["library:read".into()], ..MetadataSettings::default() };
    registry.set_metadata_settings("echo-sync", &grant).expect("granted");
    registry.connect_user("echo-sync", "ann", serde_json::Map::new()).expect("connected");
    let library = Arc::new(SqliteLibrary::open(&host.database_path()).expect("the library"));
    LibraryFile::parse(&library_file()).expect("a library file").import(library.as_ref()).expect("imported");
    // Ann read every series here: all 10,000 are pushed.
    let read = ReadingChanges {
        mark_read: (0..SERIES)
            .map(|index| BookRead { book_id: format!("b{index:05}"), page_count: Some(20), at: 1 })
            .collect(),
        ratings_if_unrated: Vec::new(),
    };
    library.apply_reading("ann", &read).expect("ann's reading");
    let integrations = Integrations::new(host.clone(), library.clone()).expect("integrations");
    // Started and warm: a sync measures the sync, not the plugin's start.
    host.call("echo-sync", Some("ann"), "ping", serde_json::Value::Null).await.expect("started");

    let options = SyncOptions { page_size: PAGE, ..SyncOptions::default() };
    let started = Instant::now();
    let report = integrations.sync("echo-sync", "ann", options).await.expect("a sync");
    let whole = started.elapsed();
    assert_eq!(report.error, None, "{report:?}");
    assert_eq!(
        (report.pulled, report.matched, report.pushed, report.pages, report.push_batches),
        (SERIES, SERIES, SERIES, 100, 100)
    );

    let baseline = baseline(&host).await;
    Round { whole, report: (*report).clone(), baseline }
}

/// The same plugin work alone: 100 pages pulled and 100 batches of 100 pulled entries
/// pushed, through one session, answers only parsed.
async fn baseline(host: &PluginHost) -> Duration {
    let session = host.session("echo-sync", Some("ann"));
    let started = Instant::now();
    let mut pulled = Vec::new();
    for page in 1..=(SERIES as i64 / PAGE) {
        let answer =
            session.call("sync/pullProgress", json!({"page": page, "limit": PAGE}), None).await.expect("a page");
        let page: PullResponse = serde_json::from_value(answer).expect("a page");
        pulled.extend(page.entries);
    }
    for batch in pulled.chunks(PAGE as usize) {
        let params = PushParams { entries: batch.to_vec() };
        session.call("sync/pushProgress", json!(params), None).await.expect("a push");
    }
    started.elapsed()
}
