//! The cost of registered plugins: calls per second through [`PluginHost`] (registry,
//! supervisor, health and metrics) against calls made directly on the same instance, in
//! one run: both sides talk to one process or one guest, so their difference is the
//! supervisor's own.
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

use codex_plugin_host::host::{HostConfig, PluginHost};
use codex_plugin_host::plugin::PluginId;
use codex_plugin_host::registry::{Launch, PluginDefinition};
use common::{IN_FLIGHT, ROUNDS, build_component, fetch_plugin};

/// Calls per round: (one at a time, in flight), for a plugin answering in microseconds and
/// for one answering in tens of them.
const FAST_CALLS: (usize, usize) = (50_000, 80_000);
const NODE_CALLS: (usize, usize) = (5_000, 16_000);

fn main() {
    let component_path = build_component("metadata-echo");
    let node_plugin = fetch_plugin();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let data = tempfile::tempdir().expect("a temporary directory");
    let host = runtime.block_on(async {
        let host = PluginHost::open(HostConfig::new(data.path())).expect("the host opens");
        let wasm_definition = PluginDefinition::new(Launch::Wasm { file: component_path.clone() });
        host.registry().add(&PluginId::new("echo").expect("valid"), &wasm_definition).expect("registered");
        let node_args = vec![node_plugin.to_string_lossy().into_owned()];
        let node_definition = PluginDefinition::new(Launch::Process { command: "node".into(), args: node_args });
        host.registry().add(&PluginId::new("openlibrary").expect("valid"), &node_definition).expect("registered");
        Arc::new(host)
    });
    println!("| `ping` | calls/s, 1 in flight | calls/s, {IN_FLIGHT} in flight |");
    println!("|---|---|---|");
    compare(&runtime, "metadata-echo (wasm)", &host, "echo", FAST_CALLS);
    compare(&runtime, "Open Library (Node)", &host, "openlibrary", NODE_CALLS);
}

/// One instance of a registered plugin, called through the host and directly, in
/// alternating rounds: the difference is the supervisor's, not two processes' noise.
fn compare(
    runtime: &tokio::runtime::Runtime,
    name: &str,
    host: &Arc<PluginHost>,
    id: &'static str,
    calls: (usize, usize),
) {
    // The session keeps the instance from being evicted or stopped while it is measured.
    let _runtime = runtime.enter();
    let session = host.session(id, None);
    runtime.block_on(session.call("ping", Value::Null, None)).expect("the plugin starts");
    let direct = session.instance().expect("the session's instance is running");
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
    println!("| {name}, its instance called directly | {:.0} | {:.0} |", direct.0, direct.1);
    println!("| {name}, the same instance through `PluginHost` | {:.0} | {:.0} |", registered.0, registered.1);
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
