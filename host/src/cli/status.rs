//! `codex-plugin-host status`: what bounds this machine's capacity, and which sandbox
//! layers it offers, as JSON.

use serde_json::json;

use super::Failure;
use crate::host::capacity::default_wasm_capacity;
use crate::sandbox::{Confinement, Sandbox, SandboxConfig};

/// Prints the limits a host started here runs under.
pub fn run() -> Result<(), Failure> {
    use nix::sys::resource::{Resource, getrlimit};
    let limit = |resource| match getrlimit(resource) {
        Ok((soft, hard)) => json!({"soft": shown(soft), "hard": shown(hard)}),
        Err(error) => json!({"error": error.to_string()}),
    };
    let map_count =
        std::fs::read_to_string("/proc/sys/vm/max_map_count").ok().and_then(|text| text.trim().parse::<u64>().ok());
    let sandbox = Sandbox::new(SandboxConfig::default(), std::path::Path::new("/nonexistent"), Vec::new());
    let layers = match sandbox.plan(Confinement::default()) {
        Ok(plan) => json!(plan.describe()),
        Err(refused) => json!({"refused": refused.to_string()}),
    };
    let status = json!({
        "wasmCapacity": default_wasm_capacity(),
        "openFiles": limit(Resource::RLIMIT_NOFILE),
        "addressSpace": limit(Resource::RLIMIT_AS),
        "maxMapCount": map_count,
        "processSandbox": layers,
    });
    super::print_line(&serde_json::to_string_pretty(&status).expect("JSON values serialize"));
    Ok(())
}

/// A limit as a number, `"unlimited"` for none.
fn shown(limit: u64) -> serde_json::Value {
    if limit == nix::sys::resource::RLIM_INFINITY { json!("unlimited") } else { json!(limit) }
}
