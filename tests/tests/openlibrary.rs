//! The published `@ashdev/codex-plugin-metadata-openlibrary@2.5.0`, built with the official
//! TypeScript SDK, under `node`, through our host. This machine has no internet: searches
//! must come back as a clean answer or a clean plugin error, never a timeout.

use codex_plugin_host::plugin::PluginError;
use codex_plugin_host::protocol::ErrorCode;
use codex_plugin_host::protocol::methods::{BookSearch, NoParams, Ping};
use codex_plugin_host::protocol::types::metadata::BookSearchParams;
use codex_plugin_host_tests::{TestHost, openlibrary, process_ends};
use serde_json::json;

async fn start(host: &TestHost) -> codex_plugin_host::plugin::Plugin {
    let script = openlibrary();
    match host.start("openlibrary", "node", &[&script], |_, _| {}).await {
        Ok(plugin) => plugin,
        Err(error) => panic!("the Open Library plugin did not start: {error}"),
    }
}

#[tokio::test]
async fn initialize_returns_a_manifest_that_validates() {
    let host = TestHost::new();
    let plugin = start(&host).await;
    let manifest = plugin.manifest();
    assert_eq!(manifest.name, "metadata-openlibrary");
    assert_eq!(manifest.capabilities.metadata_provider, ["book"]);
    assert_eq!(manifest.protocol_version, "1.0");
    assert!(manifest.other.contains_key("configSchema"), "unknown manifest keys are kept");
    plugin.shutdown().await;
}

#[tokio::test]
async fn ping_and_a_book_search_answer_cleanly() {
    let host = TestHost::new();
    let plugin = start(&host).await;
    assert_eq!(plugin.call::<Ping>(&NoParams).await.unwrap(), "pong");
    let params = BookSearchParams {
        isbn: None,
        query: Some("dune".into()),
        author: None,
        year: None,
        limit: Some(5),
        cursor: None,
    };
    match plugin.call::<BookSearch>(&params).await {
        Ok(response) => assert!(response.results.len() <= 5),
        Err(PluginError::Answered { error, .. }) => assert!(error.kind().is_domain_answer(), "{error}"),
        Err(other) => panic!("a search without internet must be a clean answer, got: {other}"),
    }
    let raw = plugin.call_raw("metadata/book/search", json!({"isbn": "9780441013593"}), None).await;
    assert!(raw.is_ok() || matches!(raw, Err(PluginError::Answered { .. })), "{raw:?}");
    plugin.shutdown().await;
}

#[tokio::test]
async fn unknown_and_undeclared_methods_get_method_not_found_without_a_round_trip() {
    let host = TestHost::new();
    let plugin = start(&host).await;
    let unknown = plugin.call_raw("foo/bar", json!({}), None).await.unwrap_err();
    assert_eq!(unknown.code(), ErrorCode::MethodNotFound);
    let undeclared = plugin.call_raw("metadata/series/search", json!({"query": "dune"}), None).await.unwrap_err();
    assert_eq!(undeclared.code(), ErrorCode::MethodNotFound);
    assert!(undeclared.to_string().contains("metadataProvider: [\"series\"]"), "{undeclared}");
    assert!(!undeclared.is_fault());
    assert_eq!(plugin.call::<Ping>(&NoParams).await.unwrap(), "pong", "the plugin keeps serving");
    plugin.shutdown().await;
}

#[tokio::test]
async fn a_book_match_in_the_published_shape_is_read() {
    // The reference host expects a bare SearchResult here and so fails every match of
    // every SDK plugin; this host reads `{match, confidence, alternatives}`.
    let host = TestHost::new();
    let plugin = start(&host).await;
    let params = json!({"title": "Dune", "authors": ["Frank Herbert"]});
    let answer = plugin.call_raw("metadata/book/match", params, None).await.unwrap();
    assert!(answer.get("match").is_some(), "{answer}");
    assert!(answer["confidence"].is_number(), "{answer}");
    assert!(answer["alternatives"].is_array(), "{answer}");
    plugin.shutdown().await;
}

#[tokio::test]
async fn shutdown_leaves_no_process_behind() {
    let host = TestHost::new();
    let plugin = start(&host).await;
    let pid = plugin.process_id().expect("a process plugin has a pid");
    plugin.shutdown().await;
    assert!(process_ends(pid).await, "process {pid} is still running after shutdown");
}
