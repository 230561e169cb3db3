//! `check` takes the network away from a process plugin unless `--allow-network`: the
//! hostile plugin (`tests/plugins/hostile.mjs`) tries a TCP connection to a listener of this
//! test on loopback. Under `check` it fails (a network namespace of its own as root,
//! Landlock's TCP rules as an unprivileged user, through `setpriv`); with `--allow-network`
//! the same attempt connects, which shows the attack is real.

use serde_json::{Value, json};
use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};
use std::process::Command;

const HOST: &str = env!("CARGO_BIN_EXE_codex-plugin-host");
/// `nobody`: the unprivileged user the host runs as in the `setpriv` run.
const NOBODY: u32 = 65534;

fn hostile_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("tests/plugins/hostile.mjs")
}

/// Runs `check --json` of the hostile plugin, told to connect to `target`, as `run_as`;
/// returns the report and what its search found.
fn check(target: &str, run_as: Option<u32>, extra: &[&str]) -> (Value, Value) {
    let (mut command, _data) = command(target, run_as, extra);
    let output = command.output().expect("the host binary runs");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "no JSON report ({error}): {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let search = report["checks"].as_array().unwrap().iter().find(|check| check["id"] == "series.search").unwrap();
    let answer: Value = serde_json::from_str(search["received"].as_str().unwrap()).unwrap();
    let attempt: Value = serde_json::from_str(answer["results"][0]["title"].as_str().unwrap()).unwrap();
    (report, attempt)
}

/// The `check` command for the hostile plugin, and the folder of its fresh data directory
/// (removed when dropped).
fn command(target: &str, run_as: Option<u32>, extra: &[&str]) -> (Command, tempfile::TempDir) {
    let top = tempfile::Builder::new().prefix("check-network").tempdir_in("/tmp").unwrap();
    std::fs::set_permissions(top.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = top.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let mut command = match run_as {
        Some(uid) => {
            chown(&data, Some(uid), Some(uid)).unwrap();
            let mut command = Command::new("setpriv");
            command.args([format!("--reuid={uid}"), format!("--regid={uid}"), "--clear-groups".into(), "--".into()]);
            command.arg(HOST);
            command
        }
        None => Command::new(HOST),
    };
    let config = json!({"connect": target}).to_string();
    command
        .args(["check", "--json", "--timeout", "10", "--admin-config", &config, "--data-dir"])
        .arg(&data)
        .args(extra)
        .arg("--")
        .arg("node")
        .arg(hostile_script())
        .current_dir("/tmp")
        .env_remove("RUST_LOG");
    (command, top)
}

fn network_is_taken_away(run_as: Option<u32>, layer: &str) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap().to_string();
    if layer == "Landlock" && codex_plugin_host::sandbox::confine::landlock_abi().is_none_or(|abi| abi < 4) {
        // Nothing can take TCP away here: the plugin must not start at all.
        let (mut command, _data) = command(&target, run_as, &[]);
        let output = command.output().unwrap();
        assert_eq!(output.status.code(), Some(3), "{}", String::from_utf8_lossy(&output.stderr));
        assert!(String::from_utf8_lossy(&output.stderr).contains("ABI 4"));
        return;
    }
    let (report, attempt) = check(&target, run_as, &[]);
    assert_eq!(attempt["reached"], false, "{attempt}");
    let network = report["plugin"]["network"].as_str().unwrap();
    assert!(network.starts_with("none: ") && network.contains(layer), "{network}");
    let (report, attempt) = check(&target, run_as, &["--allow-network"]);
    assert_eq!(attempt["reached"], true, "the same attempt with the network allowed connects: {attempt}");
    assert_eq!(report["plugin"]["network"], "allowed (--allow-network)");
}

#[test]
fn a_process_plugin_under_check_reaches_no_network() {
    let layer = if nix::unistd::Uid::effective().is_root() { "network namespace" } else { "Landlock" };
    network_is_taken_away(None, layer);
}

#[test]
fn an_unprivileged_host_takes_the_network_away_with_landlock() {
    if !nix::unistd::Uid::effective().is_root() {
        // Already unprivileged: the test above ran this case.
        return;
    }
    network_is_taken_away(Some(NOBODY), "Landlock");
}
