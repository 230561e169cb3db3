//! Every bad input gets a clear error, and nothing already stored is lost.

use codex_plugin_host::plugin::PluginError;
use codex_plugin_host::protocol::methods::EmptyParams;
use codex_plugin_host::protocol::methods::{SeriesGet, SeriesMatch, SeriesSearch, SyncPull, SyncUserInfo};
use codex_plugin_host::protocol::types::metadata::{GetParams, SeriesMatchParams, SeriesSearchParams};
use codex_plugin_host::protocol::types::sync::PullParams;
use codex_plugin_host::protocol::{ErrorCode, codes};
use codex_plugin_host::transport::process::ProcessError;
use codex_plugin_host_tests::{TestHost, steps, test_plugin};
use serde_json::{Value, json};

fn query(commands: &str) -> SeriesSearchParams {
    SeriesSearchParams { query: commands.into(), limit: None, cursor: None }
}

#[tokio::test]
async fn each_invalid_manifest_rule_is_refused_naming_the_field_and_storage_survives() {
    let host = TestHost::new();
    let keeper = host.test_plugin("manifests", "well-behaved").await;
    keeper.call::<SeriesSearch>(&query("set:kept=42")).await.unwrap();
    keeper.shutdown().await;

    let cases = [
        (json!({"name": "Test Plugin"}), "name"),
        (json!({"displayName": ""}), "displayName"),
        (json!({"version": "one"}), "version"),
        (json!({"protocolVersion": "2.0"}), "protocolVersion"),
        (json!({"capabilities": {"metadataProvider": ["comics"]}}), "capabilities.metadataProvider[0]"),
        (
            json!({"capabilities": {"userReadSync": true, "externalIdSource": "anilist"}}),
            "capabilities.externalIdSource",
        ),
        (
            json!({"oauth": {"authorizationUrl": "file:///etc/passwd", "tokenUrl": "https://t"}}),
            "oauth.authorizationUrl",
        ),
        (json!({"requiredCredentials": [{"key": "", "label": "API key"}]}), "requiredCredentials[0].key"),
        (json!({"capabilities": "everything"}), "capabilities"),
    ];
    let script = test_plugin();
    for (patch, field) in cases {
        let patch_text = patch.to_string();
        let outcome = host.start("manifests", "node", &[&script, "bad-manifest", &patch_text], |_, _| {}).await;
        let Err(PluginError::Initialize { source, .. }) = outcome else { panic!("{patch} was accepted") };
        let PluginError::InvalidManifest { source: manifest_error, .. } = *source else {
            panic!("{patch}: not a manifest error")
        };
        assert_eq!(manifest_error.field, field, "{patch}: {manifest_error}");
    }

    let keeper = host.test_plugin("manifests", "well-behaved").await;
    let kept = keeper.call::<SeriesSearch>(&query("get:kept")).await.unwrap();
    assert_eq!(steps(&kept)[0].1, json!({"data": 42}));
    keeper.shutdown().await;
}

#[tokio::test]
async fn a_command_not_on_the_allowlist_is_refused_naming_it_and_the_list() {
    let host = TestHost::new();
    for command in ["bash", "/bin/sh", "../node", "/tmp/node"] {
        let Err(error) = host.start("refused", command, &["-c", "true"], |_, _| {}).await else {
            panic!("{command} ran")
        };
        assert!(
            matches!(error, PluginError::Process(ProcessError::NotAllowed { .. } | ProcessError::NotFound { .. })),
            "{command}: {error}"
        );
        assert!(error.to_string().contains(command), "{error}");
    }
    let Err(error) = host.start("refused", "bash", &[], |_, _| {}).await else { panic!() };
    assert!(error.to_string().contains("`node`, `npx`, `python`, `python3`, `uv`, `uvx`"), "{error}");
}

#[tokio::test]
async fn the_environment_starts_empty_and_blocked_variables_are_dropped() {
    let host = TestHost::new();
    let plugin = host
        .test_plugin_with("env", "well-behaved", |_, spec| {
            spec.env = vec![
                ("LD_PRELOAD".into(), "/tmp/evil.so".into()),
                ("node_options".into(), "--require /tmp/evil.js".into()),
                ("CODEX_ENCRYPTION_KEY".into(), "c2VjcmV0".into()),
                ("API_REGION".into(), "eu".into()),
            ];
        })
        .await;
    let response = plugin.call::<SeriesSearch>(&query("env")).await.unwrap();
    let environment = steps(&response)[0].1["env"].clone();
    let mut names: Vec<&String> = environment.as_object().unwrap().keys().collect();
    names.sort();
    assert_eq!(names, ["API_REGION", "HOME", "LANG", "PATH", "TMPDIR"], "{environment}");
    let home = host.data_dir().join("plugins/env/plugin");
    assert_eq!(environment["HOME"], Value::String(home.to_string_lossy().into_owned()));
    plugin.shutdown().await;
}

#[tokio::test]
async fn malformed_params_and_undeclared_capabilities_are_refused_before_sending() {
    let host = TestHost::new();
    let plugin = host.test_plugin("params", "well-behaved").await;
    let error = plugin.call_raw("metadata/series/search", json!({"query": 5}), None).await.unwrap_err();
    assert_eq!(error.code(), ErrorCode::InvalidParams, "{error}");
    let error = plugin.call_raw("metadata/series/search", json!("naruto"), None).await.unwrap_err();
    assert_eq!(error.code(), ErrorCode::InvalidParams, "{error}");
    let error = plugin.call_raw("recommendations/get", json!({"library": []}), None).await.unwrap_err();
    assert!(matches!(error, PluginError::CapabilityNotDeclared { .. }), "{error}");
    let error = plugin.call_raw("metadata/book/get", json!({"externalId": "1"}), None).await.unwrap_err();
    assert_eq!(error.code(), ErrorCode::MethodNotFound, "{error}");
    plugin.shutdown().await;
}

#[tokio::test]
async fn raw_calls_return_the_answer_as_written_and_typed_calls_a_normalized_view() {
    let host = TestHost::new();
    let plugin = host.test_plugin("views", "well-behaved").await;
    let answer = plugin.call_raw("metadata/series/get", json!({"externalId": "7"}), None).await.unwrap();
    assert_eq!(answer["totalVolumeCount"], json!(3));
    assert_eq!(answer["totalChapterCount"], json!(47.5));
    assert_eq!(answer["totalBookCount"], json!(99), "a field the host does not know is kept");
    assert_eq!(answer["authors"], json!(["A. Writer", {"name": "B. Artist", "role": "illustrator"}]));
    let typed = plugin.call::<SeriesGet>(&GetParams { external_id: "7".into() }).await.unwrap();
    assert_eq!(typed.total_volume_count, Some(3));
    assert_eq!(typed.work.authors[0].name, "A. Writer");
    assert!(!serde_json::to_string(&typed).unwrap().contains("totalBookCount"), "the legacy count is dropped");

    let matched = plugin.call_raw("metadata/series/match", json!({"title": "Dune"}), None).await.unwrap();
    assert_eq!(
        matched,
        json!({"match": {"externalId": "m1", "title": "Dune", "alternateTitles": []}, "confidence": 0.9})
    );
    let params = SeriesMatchParams { title: "Dune".into(), year: None, author: None };
    let typed = plugin.call::<SeriesMatch>(&params).await.unwrap();
    assert_eq!(typed.best.map(|best| best.external_id).as_deref(), Some("m1"));
    assert_eq!((typed.confidence, typed.alternatives.len()), (Some(0.9), 0));
    plugin.shutdown().await;
}

#[tokio::test]
async fn domain_errors_are_answers_not_faults() {
    let host = TestHost::new();
    let plugin = host.test_plugin("domain", "well-behaved").await;
    let error = plugin.call::<SyncUserInfo>(&EmptyParams {}).await.unwrap_err();
    assert_eq!(error.code(), ErrorCode::AuthFailed);
    assert!(!error.is_fault());
    let error = plugin.call::<SyncPull>(&PullParams::default()).await.unwrap_err();
    assert_eq!(error.code(), ErrorCode::RateLimited);
    assert!(!error.is_fault());
    let PluginError::Answered { error: rpc, .. } = &error else { panic!() };
    assert_eq!(codes::retry_after_seconds(rpc.data.as_ref()), 60);
    plugin.shutdown().await;
}
