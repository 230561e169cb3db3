//! What a user gets, measured as Codex uses the host: a registered plugin, one instance per
//! user connection, through [`PluginHost`]. Printed as tables, with ratios taken in this run.
//!
//!     cargo bench -p codex-plugin-host --bench users
//!
//! 1. **A new user's first call**: the user is connected, then calls `ping`; the time covers
//!    the registry, the instance's task, the component (from memory after the first user),
//!    the instance, `initialize` and `ping`. `metadata-echo` as a component against the
//!    published Open Library plugin under Node, on the single-thread runtime the command
//!    line uses and on a multi-thread one. Node users are fewer (each is a process).
//! 2. **Ten thousand users of one plugin** on a host of 1,000 wasm places: every user calls
//!    once (idle instances are evicted to make room), then the memory one idle instance
//!    costs, as PSS (shared pages divided among sharers) and RSS, from
//!    `/proc/self/smaps_rollup` with 1,000 instances idle against none.

mod common;

use serde_json::Value;
use std::time::{Duration, Instant};

use codex_plugin_host::host::{HostConfig, PluginHost};
use codex_plugin_host::plugin::PluginId;
use codex_plugin_host::registry::{Launch, PluginDefinition};
use common::{build_component, fetch_plugin, micros};

/// Fewer than the host's places, so no first call here waits for an eviction (the crowd below does).
const WASM_USERS: usize = 900;
const NODE_USERS: usize = 40;
const CROWD: usize = 10_000;
const PLACES: u32 = 1_000;

fn main() {
    let component = build_component("metadata-echo");
    let node_plugin = fetch_plugin();
    println!("| a new user's first call (`ping`) | runtime | users | p50 | p90 | vs wasm p50 |");
    println!("|---|---|---|---|---|---|");
    for (runtime_name, runtime) in runtimes() {
        let wasm = runtime.block_on(first_calls(Launch::Wasm { file: component.clone() }, WASM_USERS));
        let node_args = vec![node_plugin.to_string_lossy().into_owned()];
        let node =
            runtime.block_on(first_calls(Launch::Process { command: "node".into(), args: node_args }, NODE_USERS));
        let (wasm_p50, wasm_p90) = percentiles(wasm);
        let (node_p50, node_p90) = percentiles(node);
        println!(
            "| metadata-echo (wasm) | {runtime_name} | {WASM_USERS} | {:.0} µs | {:.0} µs | 1x |",
            micros(wasm_p50),
            micros(wasm_p90)
        );
        println!(
            "| Open Library (Node) | {runtime_name} | {NODE_USERS} | {:.0} µs | {:.0} µs | {:.0}x slower |",
            micros(node_p50),
            micros(node_p90),
            node_p50.as_secs_f64() / wasm_p50.as_secs_f64()
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    runtime.block_on(crowd(Launch::Wasm { file: component }));
}

fn runtimes() -> [(&'static str, tokio::runtime::Runtime); 2] {
    let single = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let multi = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
    [("single-thread", single), ("multi-thread (2)", multi)]
}

/// A host in a fresh directory with `launch` registered as `bench`.
fn host(data: &std::path::Path, launch: Launch, places: Option<u32>) -> PluginHost {
    let mut config = HostConfig::new(data);
    config.wasm_capacity = places;
    config.process_instances_per_plugin = NODE_USERS as u32;
    let host = PluginHost::open(config).expect("the host opens");
    host.registry().add(&PluginId::new("bench").expect("valid"), &PluginDefinition::new(launch)).expect("registered");
    host
}

/// The first call of each of `users` new users; the first user (who loads the component)
/// is left out.
async fn first_calls(launch: Launch, users: usize) -> Vec<Duration> {
    let data = tempfile::tempdir().expect("a temporary directory");
    let host = host(data.path(), launch, None);
    let mut times = Vec::with_capacity(users);
    for user in 0..=users {
        let user = format!("user-{user}");
        host.registry().connect_user("bench", &user, serde_json::Map::new()).expect("connected");
        let started = Instant::now();
        host.call("bench", Some(&user), "ping", Value::Null).await.expect("an answer");
        times.push(started.elapsed());
    }
    host.shutdown().await;
    times.remove(0);
    times
}

/// Ten thousand users on a thousand places, then the memory of an idle instance.
async fn crowd(launch: Launch) {
    let data = tempfile::tempdir().expect("a temporary directory");
    let host = host(data.path(), launch, Some(PLACES));
    for user in 0..CROWD {
        host.registry().connect_user("bench", &format!("user-{user}"), serde_json::Map::new()).expect("connected");
    }
    // The component loaded and the engine made, before the baseline.
    host.call("bench", Some("user-0"), "ping", Value::Null).await.expect("an answer");
    let (pss_before, rss_before) = memory();
    let started = Instant::now();
    let mut answered = 1;
    for user in 1..PLACES as usize {
        host.call("bench", Some(&format!("user-{user}")), "ping", Value::Null).await.expect("an answer");
        answered += 1;
    }
    let (pss_after, rss_after) = memory();
    for user in PLACES as usize..CROWD {
        host.call("bench", Some(&format!("user-{user}")), "ping", Value::Null).await.expect("an answer");
        answered += 1;
    }
    let elapsed = started.elapsed();
    let (total, in_use) = host.wasm_capacity();
    let health = host.health("bench").expect("registered");
    println!();
    println!("| {CROWD} users of one wasm plugin, {total} places | value |");
    println!("|---|---|");
    println!("| users answered | {answered} of {CROWD} |");
    println!("| instances live at the end | {in_use} |");
    println!(
        "| first calls, evictions included | {:.2} s ({:.0} µs each) |",
        elapsed.as_secs_f64(),
        micros(elapsed) / CROWD as f64
    );
    println!("| PSS per idle instance | {} KiB |", (pss_after.saturating_sub(pss_before)) / (PLACES as u64 - 1));
    println!("| RSS per idle instance | {} KiB |", (rss_after.saturating_sub(rss_before)) / (PLACES as u64 - 1));
    println!("| plugin health | {health:?} |");
    println!("| component loads | {} |", host.component_loads());
    host.shutdown().await;
}

/// This process's PSS and RSS, in KiB.
fn memory() -> (u64, u64) {
    let rollup = std::fs::read_to_string("/proc/self/smaps_rollup").expect("/proc/self/smaps_rollup");
    let field = |name: &str| {
        rollup
            .lines()
            .find(|line| line.starts_with(name))
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|value| value.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (field("Pss:"), field("Rss:"))
}

fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let at = |fraction: f64| samples[((samples.len() as f64 * fraction) as usize).min(samples.len() - 1)];
    (at(0.5), at(0.9))
}
