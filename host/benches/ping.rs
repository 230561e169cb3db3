//! `ping` through the host against a bare tokio loop, on the same Node plugin.
//!
//!     cargo bench -p codex-plugin-host --bench ping
//!
//! The plugin is the published `@ashdev/codex-plugin-metadata-openlibrary@2.5.0` (the
//! official TypeScript SDK), fetched by `tests/fetch-plugins.sh`. Each row is measured in
//! this run, on each tokio runtime flavour: the bare loop writes a line and reads a line on
//! one task (with 16 in flight it keeps a window of 16 open); the host runs the same
//! requests through the whole stack (typed params, dispatcher, timeout layer, correlation)
//! from 16 tasks. Each path gets a fresh process of its own in every round, sent
//! `initialize` and warmed by the same pings; the paths take turns going first, round by
//! round, so neither gets the warmer machine. Five rounds each; the table (Markdown, on
//! stdout) shows the median of each figure.

mod common;

use std::path::Path;
use std::time::Instant;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

use codex_plugin_host::transport::process::{self, CommandAllowlist};
use common::{
    IN_FLIGHT, PIPELINED, ROUNDS, Row, SEQUENTIAL, WARM_UP, build_guests, fetch_plugin, median, micros, spec,
    summarize, through_host,
};

fn main() {
    let plugin = fetch_plugin();
    let mut rows = Vec::new();
    for (runtime_name, runtime) in runtimes() {
        // Alternate the two paths and keep the median of each figure: the machine's
        // wake-up latency drifts between runs more than the paths differ.
        let mut bare = Vec::new();
        let mut host = Vec::new();
        for round_index in 0..ROUNDS {
            let host_first = round_index % 2 == 1;
            let (bare_row, host_row) = runtime.block_on(round(runtime_name, &plugin, host_first));
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
fn runtimes() -> Vec<(&'static str, tokio::runtime::Runtime)> {
    let current = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let multi = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
    vec![("current_thread", current), ("multi_thread(2)", multi)]
}

/// One round: each path on a fresh plugin process of its own, in the order given.
async fn round(runtime: &'static str, plugin: &Path, host_first: bool) -> (Row, Row) {
    if host_first {
        let host = host_path(runtime, plugin).await;
        (bare_path(runtime, plugin).await, host)
    } else {
        let bare = bare_path(runtime, plugin).await;
        (bare, host_path(runtime, plugin).await)
    }
}

async fn bare_path(runtime: &'static str, plugin: &Path) -> Row {
    let data = tempfile::tempdir().expect("a temporary directory");
    let mut launched =
        process::spawn(&spec(plugin, data.path()), &CommandAllowlist::default(), "bench").expect("the plugin starts");
    bare_loop(runtime, &mut launched.input, &mut launched.output).await
}

async fn host_path(runtime: &'static str, plugin: &Path) -> Row {
    let data = tempfile::tempdir().expect("a temporary directory");
    let launched =
        process::spawn(&spec(plugin, data.path()), &CommandAllowlist::default(), "bench").expect("the plugin starts");
    through_host(runtime, launched).await
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

/// The same requests through the host.
/// Each figure's median over the rounds.
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
