//! Plugin storage through reverse RPC from a real process, on a real SQLite file.

use codex_plugin_host::plugin::Plugin;
use codex_plugin_host::protocol::methods::SeriesSearch;
use codex_plugin_host::protocol::types::metadata::SeriesSearchParams;
use codex_plugin_host_tests::{TestHost, steps};
use serde_json::{Value, json};

async fn run(plugin: &Plugin, commands: &str) -> Vec<(String, Value)> {
    let params = SeriesSearchParams { query: commands.into(), limit: None, cursor: None };
    steps(&plugin.call::<SeriesSearch>(&params).await.expect("the storage commands run"))
}

async fn key_count(plugin: &Plugin) -> usize {
    run(plugin, "list").await[0].1["keys"].as_array().unwrap().len()
}

#[tokio::test]
async fn writes_beyond_the_quota_get_clear_errors_and_lose_nothing() {
    let host = TestHost::new();
    let plugin = host.test_plugin("abuser", "well-behaved").await;
    assert_eq!(run(&plugin, "fill:100").await[0].1, json!({"filled": 100}));
    let outcomes = run(&plugin, "set:one-too-many=1;big:2097152;set:fill-1=1@tomorrow;longkey:300;get:fill-1").await;
    let error = |index: usize| outcomes[index].1["error"].clone();
    assert_eq!(
        error(0),
        json!({"code": -32602, "message": "Storage key limit exceeded (max 100 keys)", "data": {"limit": 100, "actual": 101}})
    );
    assert_eq!(error(1)["message"], json!("Storage value exceeds maximum size of 1MB"));
    assert_eq!(error(1)["data"], json!({"limit": 1048576, "actual": 2097154}));
    assert_eq!(error(2)["code"], json!(-32602));
    assert!(error(2)["message"].as_str().unwrap().starts_with("Invalid expiresAt timestamp"));
    assert_eq!(error(3)["data"], json!({"limit": 256, "actual": 300}));
    assert_eq!(outcomes[4].1, json!({"data": 1}), "refused writes lose nothing");
    assert_eq!(key_count(&plugin).await, 100);
    let overwrite = run(&plugin, "set:fill-0=\"new\";get:fill-0").await;
    assert_eq!(overwrite[1].1, json!({"data": "new"}), "an existing key can be overwritten at the limit");
    plugin.shutdown().await;
}

#[tokio::test]
async fn exactly_one_mebibyte_is_allowed() {
    let host = TestHost::new();
    let plugin = host.test_plugin("exact", "well-behaved").await;
    // A string of n characters encodes to n + 2 bytes of compact JSON.
    let outcomes = run(&plugin, &format!("big:{};big:{}", (1 << 20) - 2, (1 << 20) - 1)).await;
    assert_eq!(outcomes[0].1, json!({"success": true}));
    assert_eq!(outcomes[1].1["error"]["data"]["actual"], json!((1 << 20) + 1));
    plugin.shutdown().await;
}

#[tokio::test]
async fn two_writers_racing_for_the_last_free_key_cannot_both_win() {
    let host = TestHost::new();
    let plugin = host.test_plugin("race", "well-behaved").await;
    run(&plugin, "fill:99").await;
    let raced = run(&plugin, "race:left,right").await;
    let answers = raced[0].1.as_array().unwrap();
    let won = answers.iter().filter(|answer| answer["success"] == json!(true)).count();
    let refused = answers.iter().filter(|answer| answer["error"]["data"]["limit"] == json!(100)).count();
    assert_eq!((won, refused), (1, 1), "{answers:?}");
    assert_eq!(key_count(&plugin).await, 100);
    plugin.shutdown().await;
}

#[tokio::test]
async fn storage_survives_a_restart_of_the_host_and_stays_in_its_scope() {
    let host = TestHost::new();
    let writer = host.test_plugin("keeper", "well-behaved").await;
    run(&writer, "set:token=\"abc\";set:gone=1@2001-01-01T00:00:00Z").await;
    writer.shutdown().await;

    let host = TestHost::in_dir(host.into_dir());
    let reader = host.test_plugin("keeper", "well-behaved").await;
    let outcomes = run(&reader, "get:token;get:gone;list").await;
    assert_eq!(outcomes[0].1, json!({"data": "abc"}));
    assert_eq!(outcomes[1].1, json!({"data": null}), "an expired key is invisible");
    assert_eq!(outcomes[2].1["keys"].as_array().unwrap().len(), 1);
    let stranger = host.test_plugin("stranger", "well-behaved").await;
    assert_eq!(run(&stranger, "get:token").await[0].1, json!({"data": null}), "another plugin sees nothing");
    reader.shutdown().await;
    stranger.shutdown().await;
}

#[tokio::test]
async fn only_storage_methods_are_served_to_the_plugin() {
    let host = TestHost::new();
    let plugin = host.test_plugin("curious", "well-behaved").await;
    let outcomes = run(&plugin, "notstorage;set:a=1").await;
    assert_eq!(outcomes[0].1["error"]["code"], json!(-32601));
    assert_eq!(outcomes[1].1, json!({"success": true}), "the plugin keeps going");
    plugin.shutdown().await;
}

/// A plugin that uses storage while it handles `initialize` (as two published
/// recommendation plugins do in their `onInitialize`) is answered at once, and starts.
/// Codex's host holds such calls until `initialize` has returned.
#[tokio::test]
async fn storage_calls_made_during_initialize_are_answered_at_once() {
    let host = TestHost::new();
    let plugin = host.test_plugin("early", "storage-in-init").await;
    assert_eq!(run(&plugin, "get:init").await[0].1, json!({"data": "written in initialize"}));
    plugin.shutdown().await;
}
