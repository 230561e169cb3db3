//! What the benchmarks share: measuring `ping` through the host, building guests, and
//! summarizing samples into rows.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use codex_plugin_host::dispatch::RefuseAll;
use codex_plugin_host::plugin::{Plugin, PluginId, PluginSettings};
use codex_plugin_host::protocol::methods::{NoParams, Ping};
use codex_plugin_host::protocol::types::initialize::InitializeParams;
use codex_plugin_host::sandbox::{Confinement, Sandbox, SandboxConfig};
use codex_plugin_host::transport::Launched;
use codex_plugin_host::transport::process::ProcessSpec;

pub const WARM_UP: usize = 500;
pub const SEQUENTIAL: usize = 5_000;
pub const PIPELINED: usize = 20_000;
pub const IN_FLIGHT: usize = 16;
pub const ROUNDS: usize = 5;

pub struct Row {
    pub runtime: &'static str,
    pub subject: &'static str,
    pub p50: Duration,
    pub p99: Duration,
    pub sequential_per_second: f64,
    pub pipelined_per_second: f64,
}

pub fn build_guests(names: &[&str]) -> Vec<PathBuf> {
    let profile_dir =
        std::env::current_exe().expect("a path").parent().and_then(Path::parent).expect("target/release").to_path_buf();
    let target_dir = profile_dir.parent().expect("target/");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = std::process::Command::new(cargo);
    build.args(["build", "--quiet", "--release", "--target-dir"]).arg(target_dir);
    for name in names {
        build.args(["-p", name]);
    }
    assert!(build.status().expect("cargo runs").success(), "building the guests failed");
    names.iter().map(|name| profile_dir.join(name)).collect()
}

/// Builds an example as a component (`--profile guest`) into this build's target directory.
pub fn build_component(name: &str) -> PathBuf {
    let profile_dir =
        std::env::current_exe().expect("a path").parent().and_then(Path::parent).expect("target/release").to_path_buf();
    let target_dir = profile_dir.parent().expect("target/").to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args(["build", "--quiet", "--target", "wasm32-wasip2", "--profile", "guest", "-p", name, "--target-dir"])
        .arg(&target_dir)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the component failed");
    target_dir.join("wasm32-wasip2/guest").join(format!("{name}.wasm"))
}

pub fn fetch_plugin() -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("host/ is in the repository").to_path_buf();
    let status =
        std::process::Command::new("bash").arg(repo.join("tests/fetch-plugins.sh")).status().expect("bash runs");
    assert!(status.success(), "tests/fetch-plugins.sh failed: npm and the npm registry are needed");
    repo.join("tests/plugins/npm/metadata-openlibrary/dist/index.js")
}

/// `node PLUGIN`, confined as a host with its data in `data` would confine it.
pub fn spec(plugin: &Path, data: &Path) -> ProcessSpec {
    let sandbox = Sandbox::new(SandboxConfig::default(), data, Vec::new());
    ProcessSpec {
        command: "node".into(),
        args: vec![plugin.to_string_lossy().into_owned()],
        env: Vec::new(),
        sandbox: sandbox.prepare_process("bench", None, Confinement::default()).expect("the plugin can be confined"),
        working_dir: None,
        memory_limit_bytes: None,
    }
}

pub async fn through_host(runtime: &'static str, launched: Launched) -> Row {
    let id = PluginId::new("bench").expect("valid");
    let initialize = InitializeParams::new(Default::default(), Default::default(), Default::default());
    let plugin =
        Plugin::start(launched, PluginSettings::new(id, initialize), Arc::new(RefuseAll)).await.expect("initialize");
    let mut samples = Vec::with_capacity(SEQUENTIAL);
    for index in 0..WARM_UP + SEQUENTIAL {
        let started = Instant::now();
        let answer = plugin.call::<Ping>(&NoParams).await.expect("pong");
        assert_eq!(answer, "pong");
        if index >= WARM_UP {
            samples.push(started.elapsed());
        }
    }
    let plugin = Arc::new(plugin);
    let started = Instant::now();
    let workers: Vec<_> = (0..IN_FLIGHT)
        .map(|_| {
            let plugin = plugin.clone();
            tokio::spawn(async move {
                for _ in 0..PIPELINED / IN_FLIGHT {
                    plugin.call::<Ping>(&NoParams).await.expect("pong");
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("a worker");
    }
    let pipelined = started.elapsed();
    if let Ok(plugin) = Arc::try_unwrap(plugin) {
        plugin.shutdown().await;
    }
    summarize(runtime, "codex-plugin-host", samples, pipelined)
}

pub fn summarize(runtime: &'static str, subject: &'static str, mut samples: Vec<Duration>, pipelined: Duration) -> Row {
    samples.sort();
    let total: Duration = samples.iter().sum();
    Row {
        runtime,
        subject,
        p50: samples[samples.len() / 2],
        p99: samples[samples.len() * 99 / 100],
        sequential_per_second: samples.len() as f64 / total.as_secs_f64(),
        pipelined_per_second: PIPELINED as f64 / pipelined.as_secs_f64(),
    }
}

/// The median of some rounds' figures.
pub fn middle<T: PartialOrd + Copy>(values: impl Iterator<Item = T>) -> T {
    let mut values: Vec<T> = values.collect();
    values.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    values[values.len() / 2]
}

pub fn median(mut rounds: Vec<Row>) -> Row {
    let p50 = middle(rounds.iter().map(|row| row.p50));
    let p99 = middle(rounds.iter().map(|row| row.p99));
    let sequential = middle(rounds.iter().map(|row| row.sequential_per_second));
    let pipelined = middle(rounds.iter().map(|row| row.pipelined_per_second));
    let mut row = rounds.swap_remove(0);
    (row.p50, row.p99, row.sequential_per_second, row.pipelined_per_second) = (p50, p99, sequential, pipelined);
    row
}

pub fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}
