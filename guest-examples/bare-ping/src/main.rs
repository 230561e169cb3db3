//! `bare-ping`: the smallest plugin that works, without the SDK. It answers `initialize`
//! with a fixed manifest, `ping` with `"pong"`, `shutdown` with `null` (then exits), and
//! anything else with -32601, reading and writing one line at a time.
//!
//! It is the baseline of the benchmark that measures what the SDK adds to a round trip
//! (`cargo bench -p codex-plugin-host --bench ping`), and shows what the SDK does for you.
//!
//! `cargo build -p bare-ping` (native) or `--target wasm32-wasip2 --profile guest`.

use serde_json::{Value, json};
use std::io::{BufRead, Write};

fn main() {
    let manifest = json!({
        "name": "bare-ping", "displayName": "Bare Ping", "version": "0.1.0",
        "description": "Answers ping without the SDK", "protocolVersion": "1.0",
        "capabilities": {}
    });
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let Ok(request) = serde_json::from_str::<Value>(&line) else { continue };
        let id = request.get("id").cloned().unwrap_or(Value::Null);
        let method = request.get("method").and_then(Value::as_str).unwrap_or_default();
        let answer = match method {
            "initialize" => json!({"jsonrpc": "2.0", "id": id, "result": manifest}),
            "ping" => json!({"jsonrpc": "2.0", "id": id, "result": "pong"}),
            "shutdown" => json!({"jsonrpc": "2.0", "id": id, "result": null}),
            other => {
                json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": format!("Method not found: {other}")}})
            }
        };
        if writeln!(stdout, "{answer}").and_then(|()| stdout.flush()).is_err() || method == "shutdown" {
            break;
        }
    }
}
