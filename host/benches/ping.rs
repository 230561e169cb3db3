//! `ping` through the host against a bare tokio loop, on the same Node plugin.
//!
//!     cargo bench -p codex-plugin-host --bench ping
//!
//! The plugin is the published `@ashdev/codex-plugin-metadata-openlibrary@2.5.0` (the
//! official TypeScript SDK), fetched by `tests/fetch-plugins.sh`. Each row is measured in
//! this run, on each tokio runtime flavour: the bare loop writes a line and reads a line on
//! one task (with 16 in flight it keeps a window of 16 open); the host runs the same
//! requests through the whole stack (typed params, dispatcher, timeout layer, correlation)
//! from 16 tasks. Both paths talk to the same process in each round.
//! Each path runs five alternating rounds; the table (Markdown, on stdout) shows the median
//! of each figure.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

use codex_plugin_host::dispatch::RefuseAll;
use codex_plugin_host::plugin::{Plugin, PluginId, PluginSettings};
use codex_plugin_host::protocol::methods::{NoParams, Ping};
use codex_plugin_host::protocol::types::initialize::InitializeParams;
use codex_plugin_host::transport::Launched;
use codex_plugin_host::transport::process::{self, CommandAllowlist, ProcessSpec};

const WARM_UP: usize = 500;
const SEQUENTIAL: usize = 5_000;
const PIPELINED: usize = 20_000;
const IN_FLIGHT: usize = 16;
const ROUNDS: usize = 5;

struct Row {
    runtime: &'static str,
    subject: &'static str,
    p50: Duration,
    p99: Duration,
    sequential_per_second: f64,
    pipelined_per_second: f64,
}

fn main() {
    let plugin = fetch_plugin();
    let mut rows = Vec::new();
    for (runtime_name, runtime) in runtimes() {
        // Alternate the two paths and keep the median of each figure: the machine's
        // wake-up latency drifts between runs more than the paths differ.
        let mut bare = Vec::new();
        let mut host = Vec::new();
        for _ in 0..ROUNDS {
            let (bare_row, host_row) = runtime.block_on(round(runtime_name, &plugin));
            bare.push(bare_row);
            host.push(host_row);
        }
        rows.push(median(bare));
        rows.push(median(host));
    }
    print_table(&rows);
    println!();
    sdk_overhead();
}

/// What the Rust guest SDK adds to a round trip: `ping` through the host to `bare-ping`
/// (a hand-written loop, no SDK) and to `metadata-echo` (the SDK), both native release
/// builds, on the current-thread runtime, in alternating rounds.
fn sdk_overhead() {
    let binaries = build_guests(&["bare-ping", "metadata-echo"]);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let (mut bare, mut sdk) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        for (binary, rows, label) in
            [(&binaries[0], &mut bare, "bare-ping (no SDK)"), (&binaries[1], &mut sdk, "metadata-echo (SDK)")]
        {
            let data = tempfile::tempdir().expect("a temporary directory");
            let mut guest = spec(binary, data.path());
            guest.command = binary.to_string_lossy().into_owned();
            guest.args.clear();
            let allowlist = CommandAllowlist::default().with_plugins_dir(binary.parent().expect("a folder"));
            rows.push(runtime.block_on(async {
                let launched = process::spawn(&guest, &allowlist, "bench").expect("the guest starts");
                through_host(label, launched).await
            }));
        }
    }
    let (bare, sdk) = (median(bare), median(sdk));
    println!(
        "| guest (through the host, current_thread) | ping p50 | ping p99 | req/s, 1 in flight | req/s, {IN_FLIGHT} in flight | p50 vs no SDK |"
    );
    println!("|---|---|---|---|---|---|");
    for row in [&bare, &sdk] {
        println!(
            "| {} | {:.1} µs | {:.1} µs | {:.0} | {:.0} | {:+.1} µs |",
            row.runtime,
            micros(row.p50),
            micros(row.p99),
            row.sequential_per_second,
            row.pipelined_per_second,
            micros(row.p50) - micros(bare.p50),
        );
    }
}

/// Release builds of guest examples, next to this benchmark's own binary.
fn build_guests(names: &[&str]) -> Vec<PathBuf> {
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

fn runtimes() -> Vec<(&'static str, tokio::runtime::Runtime)> {
    let current = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let multi = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
    vec![("current_thread", current), ("multi_thread(2)", multi)]
}

fn fetch_plugin() -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("host/ is in the repository").to_path_buf();
    let status =
        std::process::Command::new("bash").arg(repo.join("tests/fetch-plugins.sh")).status().expect("bash runs");
    assert!(status.success(), "tests/fetch-plugins.sh failed: npm and the npm registry are needed");
    repo.join("tests/plugins/npm/metadata-openlibrary/dist/index.js")
}

/// One plugin process, measured first through the bare loop on its raw pipes, then through
/// the host on the very same pipes: both paths see the same process on the same cores.
async fn round(runtime: &'static str, plugin: &Path) -> (Row, Row) {
    let data = tempfile::tempdir().expect("a temporary directory");
    let mut launched =
        process::spawn(&spec(plugin, data.path()), &CommandAllowlist::default(), "bench").expect("the plugin starts");
    let bare = bare_loop(runtime, &mut launched.input, &mut launched.output).await;
    let host = through_host(runtime, launched).await;
    (bare, host)
}

/// The baseline: one task, one line out, one line in.
async fn bare_loop<W: AsyncWrite + Unpin, R: AsyncRead + Unpin>(
    runtime: &'static str,
    input: &mut W,
    output: &mut R,
) -> Row {
    // An 8 KiB buffer is far larger than the answers still unread at the end of a phase:
    // every phase reads all its answers, so nothing is left buffered for the host.
    let mut output = BufReader::new(output);
    let mut line = String::new();
    let mut id = 0u64;
    // Initialize as the host does, so the plugin is in the same state for both paths.
    input.write_all(b"{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"initialize\",\"params\":{}}\n").await.expect("write");
    output.read_line(&mut line).await.expect("read");
    assert!(line.contains("\"result\""), "initialize failed: {line}");
    let mut samples = Vec::with_capacity(SEQUENTIAL);
    for index in 0..WARM_UP + SEQUENTIAL {
        id += 1;
        let started = Instant::now();
        round_trip(input, &mut output, &mut line, id).await;
        if index >= WARM_UP {
            samples.push(started.elapsed());
        }
    }
    let started = Instant::now();
    let mut sent = 0;
    let mut received = 0;
    while sent < IN_FLIGHT {
        id += 1;
        sent += 1;
        input.write_all(ping_line(id).as_bytes()).await.expect("write");
    }
    input.flush().await.expect("flush");
    while received < PIPELINED {
        line.clear();
        output.read_line(&mut line).await.expect("read");
        received += 1;
        if sent < PIPELINED {
            id += 1;
            sent += 1;
            input.write_all(ping_line(id).as_bytes()).await.expect("write");
            input.flush().await.expect("flush");
        }
    }
    let pipelined = started.elapsed();
    assert!(output.buffer().is_empty(), "every answer was read");
    summarize(runtime, "bare tokio loop", samples, pipelined)
}

async fn round_trip<W: AsyncWrite + Unpin, R: AsyncRead + Unpin>(
    input: &mut W,
    output: &mut BufReader<R>,
    line: &mut String,
    id: u64,
) {
    input.write_all(ping_line(id).as_bytes()).await.expect("write");
    input.flush().await.expect("flush");
    line.clear();
    output.read_line(line).await.expect("read");
    assert!(line.contains("pong"), "unexpected answer {line}");
}

fn ping_line(id: u64) -> String {
    format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"ping\"}}\n")
}

fn spec(plugin: &Path, data: &Path) -> ProcessSpec {
    ProcessSpec {
        command: "node".into(),
        args: vec![plugin.to_string_lossy().into_owned()],
        env: Vec::new(),
        data_dir: data.join("plugin"),
        working_dir: None,
        memory_limit_bytes: None,
    }
}

/// The same requests through the host.
async fn through_host(runtime: &'static str, launched: Launched) -> Row {
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

fn summarize(runtime: &'static str, subject: &'static str, mut samples: Vec<Duration>, pipelined: Duration) -> Row {
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

/// Each figure's median over the rounds.
fn median(mut rounds: Vec<Row>) -> Row {
    fn middle<T: PartialOrd + Copy>(values: impl Iterator<Item = T>) -> T {
        let mut values: Vec<T> = values.collect();
        values.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
        values[values.len() / 2]
    }
    let p50 = middle(rounds.iter().map(|row| row.p50));
    let p99 = middle(rounds.iter().map(|row| row.p99));
    let sequential = middle(rounds.iter().map(|row| row.sequential_per_second));
    let pipelined = middle(rounds.iter().map(|row| row.pipelined_per_second));
    let mut row = rounds.swap_remove(0);
    (row.p50, row.p99, row.sequential_per_second, row.pipelined_per_second) = (p50, p99, sequential, pipelined);
    row
}

fn print_table(rows: &[Row]) {
    println!(
        "| runtime | path | ping p50 | ping p99 | req/s, 1 in flight | req/s, {IN_FLIGHT} in flight | p50 vs bare | {IN_FLIGHT}-in-flight vs bare |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for pair in rows.chunks(2) {
        let bare = &pair[0];
        for row in pair {
            println!(
                "| {} | {} | {:.1} µs | {:.1} µs | {:.0} | {:.0} | {:.2}x | {:.2}x |",
                row.runtime,
                row.subject,
                micros(row.p50),
                micros(row.p99),
                row.sequential_per_second,
                row.pipelined_per_second,
                micros(row.p50) / micros(bare.p50),
                row.pipelined_per_second / bare.pipelined_per_second,
            );
        }
    }
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}
