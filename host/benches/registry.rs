//! The cost of registered plugins: calls per second through [`PluginHost`] (registry,
//! supervisor, health and metrics) against the same guest started directly, in one run.
//!
//!     cargo bench -p codex-plugin-host --bench registry
//!
//! Two plugins: `metadata-echo` as a component, the fastest plugin there is (the
//! bookkeeping's share of each call is the largest it can be), and the published Open
//! Library plugin under Node, a real one. Ten rounds each, alternating which goes first;
//! each row is the median of its rounds.

mod common;

use serde_json::Value;
use std::sync::Arc;
use std::time::Instant;

use codex_plugin_host::dispatch::RefuseAll;
use codex_plugin_host::host::{HostConfig, PluginHost};
use codex_plugin_host::plugin::{Plugin, PluginId, PluginSettings};
use codex_plugin_host::protocol::types::initialize::InitializeParams;
use codex_plugin_host::registry::{Launch, PluginDefinition};
use codex_plugin_host::transport::process::{self, CommandAllowlist};
use codex_plugin_host::transport::wasm::{self, WasmRuntime, WasmSpec};
use common::{IN_FLIGHT, ROUNDS, build_component, fetch_plugin, spec};

/// Calls per round: (one at a time, in flight), for a plugin answering in microseconds and
/// for one answering in tens of them.
const FAST_CALLS: (usize, usize) = (50_000, 80_000);
const NODE_CALLS: (usize, usize) = (5_000, 16_000);

fn main() {
    let component_path = build_component("metadata-echo");
    let node_plugin = fetch_plugin();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let data = tempfile::tempdir().expect("a temporary directory");
    let (host, wasm_direct, node_direct) = runtime.block_on(async {
        let host = PluginHost::open(HostConfig::new(data.path())).expect("the host opens");
        let wasm_definition = PluginDefinition::new(Launch::Wasm { file: component_path.clone() });
        host.registry().add(&PluginId::new("echo").expect("valid"), &wasm_definition).expect("registered");
        let node_args = vec![node_plugin.to_string_lossy().into_owned()];
        let node_definition = PluginDefinition::new(Launch::Process { command: "node".into(), args: node_args });
        host.registry().add(&PluginId::new("openlibrary").expect("valid"), &node_definition).expect("registered");

        let wasm = WasmRuntime::new().expect("the engine starts");
        let component = wasm.load(&component_path).expect("the component loads");
        let wasm_direct = start(wasm::spawn(&component, &WasmSpec::default(), "direct").expect("the guest starts"));
        let node_spec = spec(&node_plugin, data.path());
        let node = process::spawn(&node_spec, &CommandAllowlist::default(), "direct").expect("node starts");
        (Arc::new(host), Arc::new(wasm_direct.await), Arc::new(start(node).await))
    });
    println!("| `ping` | calls/s, 1 in flight | calls/s, {IN_FLIGHT} in flight |");
    println!("|---|---|---|");
    compare(&runtime, "metadata-echo (wasm)", &host, "echo", &wasm_direct, FAST_CALLS);
    compare(&runtime, "Open Library (Node)", &host, "openlibrary", &node_direct, NODE_CALLS);
}

async fn start(launched: codex_plugin_host::transport::Launched) -> Plugin {
    let initialize = InitializeParams::new(Default::default(), Default::default(), Default::default());
    let settings = PluginSettings::new(PluginId::new("direct").expect("valid"), initialize);
    Plugin::start(launched, settings, Arc::new(RefuseAll)).await.expect("initialize")
}

/// The same plugin started directly and registered, measured in alternating rounds.
fn compare(
    runtime: &tokio::runtime::Runtime,
    name: &str,
    host: &Arc<PluginHost>,
    id: &'static str,
    direct: &Arc<Plugin>,
    calls: (usize, usize),
) {
    let mut direct_rounds = Vec::new();
    let mut host_rounds = Vec::new();
    for round in 0..2 * ROUNDS {
        let measure_direct = || {
            let direct = direct.clone();
            measure(calls, move || {
                let direct = direct.clone();
                async move { direct.call_raw("ping", Value::Null, None).await.map(drop).expect("pong") }
            })
        };
        let measure_host = || {
            let host = host.clone();
            measure(calls, move || {
                let host = host.clone();
                async move { host.call(id, None, "ping", Value::Null).await.map(drop).expect("pong") }
            })
        };
        // Neither always goes first.
        if round % 2 == 0 {
            direct_rounds.push(runtime.block_on(measure_direct()));
            host_rounds.push(runtime.block_on(measure_host()));
        } else {
            host_rounds.push(runtime.block_on(measure_host()));
            direct_rounds.push(runtime.block_on(measure_direct()));
        }
    }
    let direct = median(direct_rounds);
    let registered = median(host_rounds);
    println!("| {name}, started directly (`Plugin`) | {:.0} | {:.0} |", direct.0, direct.1);
    println!("| {name}, registered (`PluginHost`) | {:.0} | {:.0} |", registered.0, registered.1);
    println!(
        "| {name}, difference | {:+.1}% | {:+.1}% |",
        (registered.0 / direct.0 - 1.0) * 100.0,
        (registered.1 / direct.1 - 1.0) * 100.0
    );
}

/// Calls per second, one at a time and [`IN_FLIGHT`] at once (each caller a task of its
/// own, as an embedding server's requests are).
async fn measure<F: Future<Output = ()> + Send + 'static>(
    (sequential_calls, pipelined_calls): (usize, usize),
    call: impl Fn() -> F + Clone + Send + 'static,
) -> (f64, f64) {
    for _ in 0..sequential_calls / 50 {
        call().await;
    }
    let started = Instant::now();
    for _ in 0..sequential_calls {
        call().await;
    }
    let sequential = sequential_calls as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..IN_FLIGHT {
        let call = call.clone();
        workers.spawn(async move {
            for _ in 0..pipelined_calls / IN_FLIGHT {
                call().await;
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        done.expect("a caller");
    }
    let pipelined = pipelined_calls as f64 / started.elapsed().as_secs_f64();
    (sequential, pipelined)
}

fn median(rounds: Vec<(f64, f64)>) -> (f64, f64) {
    let middle = |mut values: Vec<f64>| {
        values.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
        values[values.len() / 2]
    };
    (middle(rounds.iter().map(|round| round.0).collect()), middle(rounds.iter().map(|round| round.1).collect()))
}
