//! `token create|list|revoke` as real commands on a real database file: a token printed
//! once and never stored, users' tokens, revocation, bad input refused.

use serde_json::{Value, json};
use std::process::{Command, Output};

const HOST: &str = env!("CARGO_BIN_EXE_codex-plugin-host");

fn run(data: &std::path::Path, args: &[&str]) -> Output {
    Command::new(HOST).args(args).arg("--data-dir").arg(data).env_remove("RUST_LOG").output().unwrap()
}

fn ok(data: &std::path::Path, args: &[&str]) -> String {
    let output = run(data, args);
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

fn refused(data: &std::path::Path, args: &[&str], expected: &str) {
    let output = run(data, args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(stderr.contains(expected), "{args:?}: expected {expected:?} in {stderr}");
}

#[test]
fn tokens_are_made_once_listed_without_themselves_and_revoked() {
    let data = tempfile::tempdir().unwrap();
    let admin = ok(data.path(), &["token", "create", "--admin", "--label", "ops"]);
    let admin = admin.trim();
    assert!(admin.starts_with("cph_") && admin.len() == 47, "{admin}");
    let ann = ok(data.path(), &["token", "create", "--user", "ann"]);
    assert_ne!(admin, ann.trim());

    let listed: Value = serde_json::from_str(&ok(data.path(), &["token", "list", "--json"])).unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!((listed[0]["role"].clone(), listed[0]["label"].clone()), (json!("admin"), json!("ops")));
    assert_eq!((listed[1]["role"].clone(), listed[1]["user"].clone()), (json!("user"), json!("ann")));
    let text = serde_json::to_string(&listed).unwrap();
    assert!(!text.contains(admin) && !text.contains(ann.trim()), "tokens are never shown again");
    for entry in std::fs::read_dir(data.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap_or_default();
        assert!(!bytes.windows(admin.len()).any(|window| window == admin.as_bytes()), "never stored");
    }

    let id = listed[1]["id"].as_str().unwrap();
    ok(data.path(), &["token", "revoke", id]);
    let table = ok(data.path(), &["token", "list"]);
    assert!(table.contains("user ann") && table.contains("ops"), "{table}");
    let revoked: Value = serde_json::from_str(&ok(data.path(), &["token", "list", "--json"])).unwrap();
    assert!(revoked[1]["revokedAt"].is_i64() && revoked[0].get("revokedAt").is_none(), "{revoked}");

    refused(data.path(), &["token", "revoke", "no-such-id"], "no token `no-such-id`");
    refused(data.path(), &["token", "create"], "--admin");
    refused(data.path(), &["token", "create", "--admin", "--user", "ann"], "cannot be used with");
    refused(data.path(), &["token", "create", "--user", ""], "needs the user");
}
