//! One test per misbehaviour of `tests/plugins/test-plugin.mjs`, through the real host and
//! a real `node` process.

use codex_plugin_host::dispatch::CloseReason;
use codex_plugin_host::plugin::{Plugin, PluginError};
use codex_plugin_host::protocol::methods::{NoParams, Ping, SeriesSearch};
use codex_plugin_host::protocol::types::metadata::SeriesSearchParams;
use codex_plugin_host_tests::{TestHost, marked_processes_end, process_ends, processes_marked, steps};
use std::sync::Arc;
use std::time::Duration;

fn search(query: &str) -> SeriesSearchParams {
    SeriesSearchParams { query: query.into(), limit: None, cursor: None }
}

async fn shutdown(plugin: Arc<Plugin>) {
    match Arc::try_unwrap(plugin) {
        Ok(plugin) => plugin.shutdown().await,
        Err(_) => panic!("a call task still holds the plugin"),
    }
}

#[tokio::test]
async fn answers_out_of_order_reach_their_callers() {
    let host = TestHost::new();
    let plugin = Arc::new(host.test_plugin("out-of-order", "out-of-order").await);
    let delays: [&'static str; 6] = ["250", "40", "180", "5", "120", "60"];
    let calls: Vec<_> = delays
        .iter()
        .map(|delay| {
            let plugin = plugin.clone();
            let delay = *delay;
            tokio::spawn(async move { plugin.call::<SeriesSearch>(&search(delay)).await })
        })
        .collect();
    for (delay, call) in delays.iter().zip(calls) {
        let response = call.await.unwrap().unwrap();
        assert_eq!(response.results[0].external_id, *delay);
    }
    shutdown(plugin).await;
}

#[tokio::test]
async fn junk_lines_on_stdout_are_skipped() {
    let host = TestHost::new();
    let plugin = host.test_plugin("junk", "junk").await;
    for _ in 0..5 {
        assert_eq!(plugin.call::<Ping>(&NoParams).await.unwrap(), "pong");
    }
    let response = plugin.call::<SeriesSearch>(&search("set:a=1;get:a")).await.unwrap();
    assert_eq!(steps(&response)[1].1, serde_json::json!({"data": 1}));
    assert!(plugin.closed_reason().is_none());
    plugin.shutdown().await;
}

#[tokio::test]
async fn a_20_mib_line_is_a_protocol_fault_that_names_the_limit() {
    let host = TestHost::new();
    let plugin = host.test_plugin("giant", "giant-line").await;
    let error = plugin.call::<SeriesSearch>(&search("x")).await.unwrap_err();
    let PluginError::Closed { closed, .. } = &error else { panic!("expected a closed connection, got {error}") };
    assert_eq!(closed.reason, CloseReason::MessageTooLarge { limit: 8 << 20 });
    assert!(error.to_string().contains("8388608 bytes"), "{error}");
    assert!(error.is_fault());
    let later = plugin.call::<Ping>(&NoParams).await.unwrap_err();
    assert!(matches!(later, PluginError::Closed { .. }), "later calls fail at once: {later}");
    plugin.shutdown().await;
}

#[tokio::test]
async fn a_plugin_that_dies_mid_request_fails_every_pending_call_with_its_exit_status() {
    let host = TestHost::new();
    let plugin = Arc::new(
        host.test_plugin_with("dies", "dies-mid-request", |settings, _| {
            settings.timeouts = codex_plugin_host::limits::Timeouts::new(Duration::from_secs(120));
        })
        .await,
    );
    let calls: Vec<_> = (0..3)
        .map(|_| {
            let plugin = plugin.clone();
            tokio::spawn(async move { plugin.call::<SeriesSearch>(&search("x")).await })
        })
        .collect();
    for call in calls {
        let error = call.await.unwrap().unwrap_err();
        let PluginError::Closed { closed, .. } = &error else { panic!("expected the exit, not a timeout: {error}") };
        assert_eq!(closed.reason, CloseReason::Exited("exited with status 3".into()));
        assert!(error.to_string().contains("exited with status 3"), "{error}");
    }
    shutdown(plugin).await;
}

#[tokio::test]
async fn a_plugin_that_never_answers_times_out_and_the_late_call_is_forgotten() {
    let host = TestHost::new();
    let plugin = host
        .test_plugin_with("silent", "never-answers", |settings, _| {
            settings.timeouts = codex_plugin_host::limits::Timeouts::new(Duration::from_secs(10))
                .with_method("ping", Duration::from_millis(300));
        })
        .await;
    let error = plugin.call::<Ping>(&NoParams).await.unwrap_err();
    assert!(matches!(error, PluginError::Timeout { after, .. } if after == Duration::from_millis(300)), "{error}");
    assert!(error.to_string().contains("did not answer `ping` within 300 ms"), "{error}");
    assert!(error.is_fault());
    let error =
        plugin.call_with_timeout::<SeriesSearch>(&search("x"), Some(Duration::from_millis(100))).await.unwrap_err();
    assert!(matches!(error, PluginError::Timeout { .. }), "{error}");
    assert!(plugin.closed_reason().is_none(), "a timeout does not close the connection");
    plugin.shutdown().await;
}

#[tokio::test]
async fn a_plugin_that_never_answers_initialize_is_not_started() {
    let host = TestHost::new();
    let script = codex_plugin_host_tests::test_plugin();
    let outcome = host
        .start("silent-init", "node", &[&script, "silent-init"], |settings, _| {
            settings.timeouts = codex_plugin_host::limits::Timeouts::new(Duration::from_millis(500));
        })
        .await;
    let Err(PluginError::Initialize { source, .. }) = outcome else { panic!("expected an initialize failure") };
    assert!(matches!(*source, PluginError::Timeout { method: "initialize", .. }), "{source}");
}

#[tokio::test]
async fn a_stderr_flood_never_blocks_the_plugin() {
    // The plugin writes 34 MB to stderr before it reads its first request, and 60 KB more
    // with every answer: it only gets to answer if the host keeps draining the pipe.
    let host = TestHost::new();
    let plugin = host.test_plugin("flood", "stderr-flood").await;
    for _ in 0..20 {
        assert_eq!(plugin.call::<Ping>(&NoParams).await.unwrap(), "pong");
    }
    plugin.shutdown().await;
}

#[tokio::test]
async fn a_plugin_that_ignores_shutdown_is_killed() {
    let host = TestHost::new();
    let plugin = host.test_plugin("stubborn", "ignores-shutdown").await;
    let pid = plugin.process_id().unwrap();
    plugin.shutdown().await;
    assert!(process_ends(pid).await, "process {pid} survived SIGTERM and SIGKILL");
}

#[tokio::test]
async fn the_whole_process_group_dies_with_the_plugin() {
    let host = TestHost::new();
    let plugin = host.test_plugin("family", "grandchild").await;
    let response = plugin.call::<SeriesSearch>(&search("x")).await.unwrap();
    let marker = &response.results[0].title;
    assert_eq!(processes_marked(marker), 1, "the grandchild runs while the plugin does");
    plugin.shutdown().await;
    assert!(marked_processes_end(marker).await, "the grandchild outlived the plugin");
}

#[tokio::test]
async fn a_malformed_result_is_a_clear_protocol_error() {
    let host = TestHost::new();
    let plugin = host.test_plugin("bad-result", "bad-result").await;
    let error = plugin.call_raw("metadata/series/get", serde_json::json!({"externalId": "1"}), None).await.unwrap_err();
    assert!(matches!(error, PluginError::MalformedResult { .. }), "{error}");
    assert!(error.to_string().contains("metadata/series/get"), "{error}");
    assert!(error.is_fault());
    plugin.shutdown().await;
}
