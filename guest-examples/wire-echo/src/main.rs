//! `wire-echo`: a plugin that shows what the host puts on the wire, in both directions.
//!
//! It appends every line it receives, byte for byte, to `requests.jsonl` in its data
//! directory (`dataDir` of `initialize`), and answers each method with the JSON its admin
//! config holds under `answers.<method>` (-32601 for a method it has no answer for), so a
//! test can compare what the caller sent with what arrived, and what the plugin wrote with
//! what the caller got back. It declares every capability. No SDK: the SDK reads params
//! through its types, and this plugin must see them untouched.
//!
//! `cargo build -p wire-echo` (native) or `--target wasm32-wasip2 --profile guest`.

use serde_json::{Map, Value, json};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, Write};
use std::path::Path;

/// Where each received line is recorded, in the data directory.
const RECORD_FILE: &str = "requests.jsonl";

fn main() {
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout();
    let mut answers = Map::new();
    let mut record: Option<File> = None;
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let Ok(request) = serde_json::from_str::<Value>(&line) else { continue };
        let method = request.get("method").and_then(Value::as_str).unwrap_or_default();
        if method == "initialize" {
            let params = request.get("params");
            answers = params
                .and_then(|params| params.pointer("/adminConfig/answers"))
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            record = params.and_then(|params| params.get("dataDir")).and_then(Value::as_str).and_then(open_record);
        }
        if let Some(file) = record.as_mut() {
            // A record that cannot be written shows as a missing line in the test.
            let _ = writeln!(file, "{line}");
        }
        let Some(id) = request.get("id").cloned() else { continue };
        let answer = match (method, answers.get(method)) {
            ("initialize", _) => json!({"jsonrpc": "2.0", "id": id, "result": manifest()}),
            ("shutdown", _) => json!({"jsonrpc": "2.0", "id": id, "result": null}),
            (_, Some(result)) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
            (other, None) => {
                json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": format!("Method not found: {other}")}})
            }
        };
        if writeln!(stdout, "{answer}").and_then(|()| stdout.flush()).is_err() || method == "shutdown" {
            break;
        }
    }
}

fn open_record(data_dir: &str) -> Option<File> {
    OpenOptions::new().create(true).append(true).open(Path::new(data_dir).join(RECORD_FILE)).ok()
}

fn manifest() -> Value {
    json!({
        "name": "wire-echo", "displayName": "Wire Echo", "version": "0.1.0",
        "description": "Records requests as they arrive and answers from its config", "protocolVersion": "1.0",
        "capabilities": {
            "metadataProvider": ["series", "book"],
            "userReadSync": true,
            "userRecommendationProvider": true,
            "externalIdSource": "api:wire-echo",
            "releaseSource": {"kinds": ["rss-uploader"], "requiresAliases": true}
        }
    })
}
