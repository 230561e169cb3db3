//! The cost of registered plugins: calls per second through [`PluginHost`] (registry,
//! supervisor, health and metrics) against the same guest started directly, in one run.
//!
//!     cargo bench -p codex-plugin-host --bench registry
//!
//! The guest is `metadata-echo` as a component: the fastest plugin there is, so the
//! bookkeeping's share of each call is the largest it can be. Rounds alternate between the
//! two (ten rounds, in alternating order); each row is the median of its rounds.

mod common;

use serde_json::Value;
use std::sync::Arc;
use std::time::Instant;

use codex_plugin_host::dispatch::RefuseAll;
use codex_plugin_host::host::{HostConfig, PluginHost};
use codex_plugin_host::plugin::{Plugin, PluginId, PluginSettings};
use codex_plugin_host::protocol::types::initialize::InitializeParams;
use codex_plugin_host::registry::{Launch, PluginDefinition};
use codex_plugin_host::transport::wasm::{self, WasmRuntime, WasmSpec};
use common::{IN_FLIGHT, ROUNDS, build_component};

const SEQUENTIAL: usize = 50_000;
const PIPELINED: usize = 80_000;

fn main() {
    let component_path = build_component("metadata-echo");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let data = tempfile::tempdir().expect("a temporary directory");
    let (direct, host) = runtime.block_on(async {
        let wasm = WasmRuntime::new().expect("the engine starts");
        let component = wasm.load(&component_path).expect("the component loads");
        let launched = wasm::spawn(&component, &WasmSpec::default(), "direct").expect("the guest starts");
        let initialize = InitializeParams::new(Default::default(), Default::default(), Default::default());
        let settings = PluginSettings::new(PluginId::new("direct").expect("valid"), initialize);
        let direct = Plugin::start(launched, settings, Arc::new(RefuseAll)).await.expect("initialize");
        let host = PluginHost::open(HostConfig::new(data.path())).expect("the host opens");
        let definition = PluginDefinition::new(Launch::Wasm { file: component_path.clone() });
        host.registry().add(&PluginId::new("echo").expect("valid"), &definition).expect("registered");
        (Arc::new(direct), Arc::new(host))
    });
    let mut direct_rounds = Vec::new();
    let mut host_rounds = Vec::new();
    // Each round measures both, in alternating order, so neither always goes first.
    for round in 0..2 * ROUNDS {
        let measure_direct = || {
            let direct = direct.clone();
            measure(move || {
                let direct = direct.clone();
                async move { direct.call_raw("ping", Value::Null, None).await.map(drop).expect("pong") }
            })
        };
        let measure_host = || {
            let host = host.clone();
            measure(move || {
                let host = host.clone();
                async move { host.call("echo", None, "ping", Value::Null).await.map(drop).expect("pong") }
            })
        };
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
    println!("| `ping`, metadata-echo (wasm) | 1 in flight, calls/s | {IN_FLIGHT} in flight, calls/s |");
    println!("|---|---|---|");
    println!("| started directly (`Plugin`) | {:.0} | {:.0} |", direct.0, direct.1);
    println!("| registered (`PluginHost`: supervisor, health, metrics) | {:.0} | {:.0} |", registered.0, registered.1);
    println!(
        "| difference | {:+.1}% | {:+.1}% |",
        (registered.0 / direct.0 - 1.0) * 100.0,
        (registered.1 / direct.1 - 1.0) * 100.0
    );
}

/// Calls per second, one at a time and [`IN_FLIGHT`] at once (each caller a task of its
/// own, as an embedding server's requests are).
async fn measure<F: Future<Output = ()> + Send + 'static>(call: impl Fn() -> F + Clone + Send + 'static) -> (f64, f64) {
    for _ in 0..1_000 {
        call().await;
    }
    let started = Instant::now();
    for _ in 0..SEQUENTIAL {
        call().await;
    }
    let sequential = SEQUENTIAL as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..IN_FLIGHT {
        let call = call.clone();
        workers.spawn(async move {
            for _ in 0..PIPELINED / IN_FLIGHT {
                call().await;
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        done.expect("a caller");
    }
    let pipelined = PIPELINED as f64 / started.elapsed().as_secs_f64();
    (sequential, pipelined)
}

fn median(rounds: Vec<(f64, f64)>) -> (f64, f64) {
    let middle = |mut values: Vec<f64>| {
        values.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
        values[values.len() / 2]
    };
    (middle(rounds.iter().map(|round| round.0).collect()), middle(rounds.iter().map(|round| round.1).collect()))
}
