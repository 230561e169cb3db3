//! Wasm mode against process mode and a Node plugin, measured in one run.
//!
//!     cargo bench -p codex-plugin-host --bench wasm
//!
//! Rows: the cost of starting a plugin (first compile of the component; a compiled-cache
//! hit; a new instance answering `initialize`, against a native process and a Node
//! process doing the same), `ping` through the host (p50, p99, 1 and 16 in flight), and
//! the resident memory of idle instances. The guest is `metadata-echo`, as a component and
//! as a native binary; the Node plugin is the published Open Library plugin.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use codex_plugin_host::dispatch::RefuseAll;
use codex_plugin_host::plugin::{Plugin, PluginId, PluginSettings};
use codex_plugin_host::protocol::types::initialize::InitializeParams;
use codex_plugin_host::transport::process::{self, CommandAllowlist};
use codex_plugin_host::transport::wasm::{self, ComponentCache, WasmComponent, WasmRuntime, WasmSpec};
use common::{ROUNDS, build_component, build_guests, fetch_plugin, median, micros, spec, through_host};

const STARTS: usize = 50;
const IDLE_INSTANCES: usize = 200;

fn main() {
    let native = build_guests(&["metadata-echo"]).remove(0);
    let component_path = build_component("metadata-echo");
    let node_plugin = fetch_plugin();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let wasm = WasmRuntime::new().expect("the engine starts");

    // Compiling: first compile, then loads from a warm cache.
    let cache_dir = tempfile::tempdir().expect("a temporary directory");
    let cache = ComponentCache::open(cache_dir.path()).expect("a cache");
    let started = Instant::now();
    let (component, _) = wasm.load_cached(&component_path, &cache).expect("the component compiles");
    let first_compile = started.elapsed();
    let mut cache_hits: Vec<Duration> = (0..STARTS)
        .map(|_| {
            let started = Instant::now();
            wasm.load_cached(&component_path, &cache).expect("a cache hit");
            started.elapsed()
        })
        .collect();
    cache_hits.sort();

    // Starting: to the answer to `initialize`.
    let data = tempfile::tempdir().expect("a temporary directory");
    let wasm_starts = runtime.block_on(time_starts(|| start_wasm(&component)));
    let native_starts = runtime.block_on(time_starts(|| start_process(&native, data.path(), &[])));
    let node_args = [node_plugin.as_path()];
    let node_starts = runtime.block_on(time_starts(|| start_process(Path::new("node"), data.path(), &node_args)));

    println!("| start | median | vs wasm instance |");
    println!("|---|---|---|");
    let wasm_start = median_of(&wasm_starts);
    println!("| compile the component (first load, no cache) | {:.1} ms | |", first_compile.as_secs_f64() * 1e3);
    println!(
        "| load the compiled component (cache hit) | {:.3} ms | |",
        cache_hits[cache_hits.len() / 2].as_secs_f64() * 1e3
    );
    for (what, starts) in [
        ("wasm instance → `initialize` answered", &wasm_starts),
        ("native process → `initialize` answered", &native_starts),
        ("Node process → `initialize` answered", &node_starts),
    ] {
        let typical = median_of(starts);
        println!(
            "| {what} | {:.3} ms | {:.0}x |",
            typical.as_secs_f64() * 1e3,
            typical.as_secs_f64() / wasm_start.as_secs_f64()
        );
    }
    println!();

    // Round trips, alternating the three in each round.
    let (mut on_wasm, mut on_native, mut on_node) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        on_wasm.push(
            runtime.block_on(async { through_host("wasm (metadata-echo component)", launch_wasm(&component)).await }),
        );
        on_native.push(runtime.block_on(async {
            through_host("process (metadata-echo native)", launch_process(&native, data.path(), &[])).await
        }));
        on_node.push(runtime.block_on(async {
            through_host("process (Node, Open Library)", launch_process(Path::new("node"), data.path(), &node_args))
                .await
        }));
    }
    let rows = [median(on_wasm), median(on_native), median(on_node)];
    println!(
        "| ping through the host (current_thread) | p50 | p99 | req/s, 1 in flight | req/s, 16 in flight | p50 vs wasm |"
    );
    println!("|---|---|---|---|---|---|");
    for row in &rows {
        println!(
            "| {} | {:.1} µs | {:.1} µs | {:.0} | {:.0} | {:.1}x |",
            row.runtime,
            micros(row.p50),
            micros(row.p99),
            row.sequential_per_second,
            row.pipelined_per_second,
            micros(row.p50) / micros(rows[0].p50)
        );
    }
    println!();

    // Memory: idle instances that answered `initialize`, resident set growth per instance.
    let (per_instance, total) = runtime.block_on(idle_memory(&component));
    println!("| idle wasm instances | resident memory each (beyond the shared compiled code) |");
    println!("|---|---|");
    println!(
        "| {IDLE_INSTANCES} (all answered `initialize`; {:.1} MiB in all) | {:.0} KiB |",
        total / 1024.0,
        per_instance
    );
}

fn launch_wasm(component: &WasmComponent) -> codex_plugin_host::transport::Launched {
    wasm::spawn(component, &WasmSpec::default(), "bench").expect("the guest starts")
}

fn launch_process(command: &Path, data: &Path, args: &[&Path]) -> codex_plugin_host::transport::Launched {
    let mut process_spec = spec(command, data);
    process_spec.command = command.to_string_lossy().into_owned();
    process_spec.args = args.iter().map(|arg| arg.to_string_lossy().into_owned()).collect();
    let allowlist = CommandAllowlist::default().with_plugins_dir(command.parent().unwrap_or(Path::new("/")));
    process::spawn(&process_spec, &allowlist, "bench").expect("the process starts")
}

async fn start_wasm(component: &WasmComponent) -> Plugin {
    start(launch_wasm(component)).await
}

async fn start_process(command: &Path, data: &Path, args: &[&Path]) -> Plugin {
    start(launch_process(command, data, args)).await
}

async fn start(launched: codex_plugin_host::transport::Launched) -> Plugin {
    let initialize = InitializeParams::new(Default::default(), Default::default(), Default::default());
    let settings = PluginSettings::new(PluginId::new("bench").expect("valid"), initialize);
    Plugin::start(launched, settings, Arc::new(RefuseAll)).await.expect("initialize")
}

/// How long each of [`STARTS`] starts took, to the `initialize` answer.
async fn time_starts<F: std::future::Future<Output = Plugin>>(mut start: impl FnMut() -> F) -> Vec<Duration> {
    let mut times = Vec::with_capacity(STARTS);
    for _ in 0..STARTS {
        let started = Instant::now();
        let plugin = start().await;
        times.push(started.elapsed());
        plugin.kill().await;
    }
    times.sort();
    times
}

fn median_of(sorted: &[Duration]) -> Duration {
    sorted[sorted.len() / 2]
}

/// Resident-set growth per idle instance, in KiB, and in all.
async fn idle_memory(component: &WasmComponent) -> (f64, f64) {
    // One instance first, so code and runtime set-up are not counted per instance.
    let first = start_wasm(component).await;
    let before = resident_kib();
    let mut idle = Vec::with_capacity(IDLE_INSTANCES);
    for _ in 0..IDLE_INSTANCES {
        idle.push(start_wasm(component).await);
    }
    let grown = resident_kib() - before;
    for plugin in idle {
        plugin.kill().await;
    }
    first.kill().await;
    (grown / IDLE_INSTANCES as f64, grown)
}

fn resident_kib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}
