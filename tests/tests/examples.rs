//! Every example plugin of `guest-examples/`, built natively and driven through the host
//! in process mode, its answers checked. The table included below names one test per
//! example folder: an example without a test here does not compile.

use codex_plugin_host::dispatch::CloseReason;
use codex_plugin_host::limits::Timeouts;
use codex_plugin_host::plugin::{Plugin, PluginError, PluginSettings};
use codex_plugin_host::protocol::ErrorCode;
use codex_plugin_host::protocol::methods::{NoParams, Ping, SeriesSearch};
use codex_plugin_host::protocol::types::initialize::InitializeParams;
use codex_plugin_host::protocol::types::metadata::SeriesSearchParams;
use codex_plugin_host::sandbox::data_dir::instance_path;
use codex_plugin_host_tests::{Grants, LoopbackServer, TestHost, Transport, process_ends, wire};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

include!(concat!(env!("OUT_DIR"), "/example_tests.rs"));

async fn start(host: &TestHost, example: &str, transport: Transport) -> Plugin {
    start_with(host, example, transport, |_| {}).await
}

async fn start_with(
    host: &TestHost,
    example: &str,
    transport: Transport,
    adjust: impl FnOnce(&mut PluginSettings),
) -> Plugin {
    match host.example(example, transport, adjust).await {
        Ok(plugin) => plugin,
        Err(error) => panic!("{example} did not start ({transport:?}): {error}"),
    }
}

/// One test body per example, run on both transports: `<example>::process` and
/// `<example>::wasm`.
macro_rules! on_both_transports {
    ($($example:ident => $body:ident),+ $(,)?) => {$(
        mod $example {
            use codex_plugin_host_tests::Transport;

            #[tokio::test]
            pub(super) async fn process() {
                super::$body(Transport::Process).await
            }

            #[tokio::test]
            pub(super) async fn wasm() {
                super::$body(Transport::Wasm).await
            }
        }
    )+};
}

on_both_transports! {
    metadata_echo => metadata_echo_on,
    sync_echo => sync_echo_on,
    release_echo => release_echo_on,
    recommendations_echo => recommendations_echo_on,
    spin_loop => spin_loop_on,
    memory_hog => memory_hog_on,
    stdout_flood => stdout_flood_on,
    giant_line => giant_line_on,
    bad_json => bad_json_on,
    exit_mid_request => exit_mid_request_on,
    storage_abuser => storage_abuser_on,
    sandbox_prober => sandbox_prober_on,
    bare_ping => bare_ping_on,
    socket_importer => socket_importer_on,
    wire_echo => wire_echo_on,
}

fn initialize_with(admin: Value, credentials: &[(&str, &str)]) -> impl FnOnce(&mut PluginSettings) {
    let credentials: BTreeMap<String, String> =
        credentials.iter().map(|(key, value)| (key.to_string(), value.to_string())).collect();
    move |settings| {
        let data_dir = settings.initialize.data_dir.clone();
        let mut initialize =
            InitializeParams::new(admin.as_object().cloned().unwrap_or_default(), Default::default(), credentials);
        initialize.data_dir = data_dir;
        settings.initialize = initialize;
    }
}

fn memory_limit(bytes: u64) -> Grants {
    Grants { memory_limit_bytes: Some(bytes), ..Grants::default() }
}

fn search(query: &str) -> SeriesSearchParams {
    SeriesSearchParams { query: query.into(), limit: None, cursor: None }
}

fn short_timeouts(settings: &mut PluginSettings) {
    settings.timeouts =
        Timeouts::new(Duration::from_secs(10)).with_method("metadata/series/search", Duration::from_millis(700));
}

async fn metadata_echo_on(transport: Transport) {
    let host = TestHost::new();
    let plugin = start_with(&host, "metadata-echo", transport, initialize_with(json!({"maxResults": 3}), &[])).await;
    let manifest = plugin.manifest();
    assert_eq!(manifest.capabilities.metadata_provider, ["series", "book"]);

    let found = plugin.call_raw("metadata/series/search", json!({"query": "dune"}), None).await.unwrap();
    let results = found["results"].as_array().unwrap();
    assert_eq!(results.len(), 3, "the admin's maxResults");
    assert_eq!(results[0]["title"], json!("dune"));
    let scores: Vec<f64> = results.iter().map(|result| result["relevanceScore"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|pair| pair[0] > pair[1]), "relevance decreases: {scores:?}");
    let limited = plugin.call_raw("metadata/book/search", json!({"query": "dune", "limit": 2}), None).await.unwrap();
    assert_eq!(limited["results"].as_array().unwrap().len(), 2, "the request's smaller limit");

    let series = plugin.call_raw("metadata/series/get", json!({"externalId": "dune-0"}), None).await.unwrap();
    assert_eq!(series["totalVolumeCount"], json!(14));
    assert_eq!(series["totalChapterCount"], json!(47.5));
    assert_eq!(series["alternateTitles"][1]["language"], json!("ja"));
    assert_eq!(series["authors"][0]["role"], json!("writer"));
    assert_eq!(series["rating"]["score"], json!(87.5));
    assert_eq!(series["externalLinks"][1]["linkType"], json!("purchase"));
    let book = plugin.call_raw("metadata/book/get", json!({"externalId": "dune-0"}), None).await.unwrap();
    assert_eq!(book["title"], json!("dune"));
    assert_eq!(book["awards"][0]["won"], json!(true));
    assert_eq!(book["pageCount"], json!(320));

    let matched = plugin.call_raw("metadata/series/match", json!({"title": "Dune"}), None).await.unwrap();
    assert_eq!(matched["match"]["title"], json!("Dune"));
    assert_eq!(matched["confidence"], json!(0.9));
    assert_eq!(matched["alternatives"].as_array().unwrap().len(), 2);
    let error = plugin.call_raw("metadata/book/search", json!({"author": "x"}), None).await.unwrap_err();
    assert_eq!(error.code(), ErrorCode::InvalidParams);
    plugin.shutdown().await;
}

/// The release tracker's own tests are in `releases.rs`; here, outside one, a release
/// source starts with its capability and its requests to the host are refused.
async fn release_echo_on(transport: Transport) {
    let host = TestHost::new();
    let plugin = start(&host, "release-echo", transport).await;
    let capability = plugin.manifest().capabilities.release_source.clone().unwrap();
    assert_eq!(capability.kinds, ["rss-uploader", "api-feed"]);
    assert!(capability.requires_aliases && capability.can_announce_chapters);
    let error = plugin.call_raw("releases/poll", json!({"sourceId": "s1", "sourceKey": "a"}), None).await.unwrap_err();
    assert_eq!(error.code(), ErrorCode::ApiError, "{error}");
    assert!(error.to_string().contains("-32601"), "{error}");
    plugin.shutdown().await;
}

async fn sync_echo_on(transport: Transport) {
    let host = TestHost::new();
    let anonymous = start(&host, "sync-echo", transport).await;
    let error = anonymous.call_raw("sync/getUserInfo", json!({}), None).await.unwrap_err();
    assert_eq!(error.code(), ErrorCode::AuthFailed, "{error}");
    assert!(!error.is_fault());
    anonymous.shutdown().await;

    let plugin =
        start_with(&host, "sync-echo", transport, initialize_with(json!({}), &[("access_token", "t0ken-123")])).await;
    assert_eq!(plugin.manifest().capabilities.external_id_source.as_deref(), Some("api:echo"));
    let user = plugin.call_raw("sync/getUserInfo", json!({}), None).await.unwrap();
    assert_eq!(user["username"], json!("reader-t0ke"));

    let mut pages = Vec::new();
    for page in 1..=3 {
        let pulled = plugin.call_raw("sync/pullProgress", json!({"page": page, "limit": 10}), None).await.unwrap();
        pages.push((pulled["entries"].as_array().unwrap().len(), pulled["hasMore"].as_bool().unwrap()));
    }
    assert_eq!(pages, [(10, true), (10, true), (3, false)]);
    let mut cursor = Value::Null;
    let mut seen = 0;
    loop {
        let params = if cursor.is_null() { json!({"limit": 8}) } else { json!({"limit": 8, "cursor": cursor}) };
        let pulled = plugin.call_raw("sync/pullProgress", params, None).await.unwrap();
        seen += pulled["entries"].as_array().unwrap().len();
        cursor = pulled.get("nextCursor").cloned().unwrap_or(Value::Null);
        if !pulled["hasMore"].as_bool().unwrap() {
            break;
        }
    }
    assert_eq!(seen, 23, "the cursor walks every entry once");
    for cursor in ["-1", "9223372036854775807", "ten"] {
        let error = plugin.call_raw("sync/pullProgress", json!({"cursor": cursor}), None).await.unwrap_err();
        assert_eq!(error.code(), ErrorCode::InvalidParams, "cursor {cursor}: {error}");
    }
    let beyond = plugin.call_raw("sync/pullProgress", json!({"page": i64::MAX, "limit": 100}), None).await.unwrap();
    assert_eq!(beyond["entries"], json!([]));
    assert_eq!(beyond["hasMore"], json!(false));

    let entries = json!({"entries": [
        {"externalId": "series-01", "status": "reading"},
        {"externalId": "missing-7", "status": "completed"}
    ]});
    let pushed = plugin.call_raw("sync/pushProgress", entries, None).await.unwrap();
    assert_eq!(pushed["success"][0], json!({"externalId": "series-01", "status": "updated"}));
    assert_eq!(pushed["failed"][0]["externalId"], json!("missing-7"));
    assert_eq!(pushed["failed"][0]["status"], json!("failed"));
    plugin.shutdown().await;
}

async fn recommendations_echo_on(transport: Transport) {
    let host = TestHost::new();
    let library = json!({"library": [
        {"seriesId": "1", "title": "Dune", "userRating": 90},
        {"seriesId": "2", "title": "Hyperion"},
        {"seriesId": "3", "title": "Solaris"}
    ], "excludeIds": ["more-3"]});
    let plugin = start(&host, "recommendations-echo", transport).await;
    let recommended = plugin.call_raw("recommendations/get", library.clone(), None).await.unwrap();
    let ids: Vec<&str> =
        recommended["recommendations"].as_array().unwrap().iter().map(|r| r["externalId"].as_str().unwrap()).collect();
    assert_eq!(ids, ["more-1", "more-2"], "excludeIds are left out");
    assert_eq!(recommended["recommendations"][0]["score"], json!(0.9));
    let dismissed = plugin
        .call_raw("recommendations/dismiss", json!({"externalId": "more-1", "reason": "not_interested"}), None)
        .await
        .unwrap();
    assert_eq!(dismissed, json!({"dismissed": true}));
    plugin.shutdown().await;

    // Dismissals live in plugin storage: a fresh process still leaves them out, and two
    // dismissals in flight at once both stick.
    let plugin = std::sync::Arc::new(start(&host, "recommendations-echo", transport).await);
    let dismissals: Vec<_> = ["more-7", "more-8"]
        .into_iter()
        .map(|id| {
            let plugin = plugin.clone();
            tokio::spawn(
                async move { plugin.call_raw("recommendations/dismiss", json!({"externalId": id}), None).await },
            )
        })
        .collect();
    for dismissal in dismissals {
        dismissal.await.unwrap().unwrap();
    }
    let many = json!({"library": [{"seriesId": "7", "title": "A"}, {"seriesId": "8", "title": "B"}, {"seriesId": "9", "title": "C"}]});
    let recommended = plugin.call_raw("recommendations/get", many, None).await.unwrap();
    assert_eq!(recommended["recommendations"].as_array().unwrap().len(), 1, "{recommended}");
    let Ok(plugin) = std::sync::Arc::try_unwrap(plugin) else { panic!("no call holds the plugin") };
    let recommended = plugin.call_raw("recommendations/get", library.clone(), None).await.unwrap();
    let ids: Vec<&str> =
        recommended["recommendations"].as_array().unwrap().iter().map(|r| r["externalId"].as_str().unwrap()).collect();
    assert_eq!(ids, ["more-2"]);
    let cleared = plugin.call_raw("recommendations/clear", json!({}), None).await.unwrap();
    assert_eq!(cleared["cleared"], json!(true));
    let recommended = plugin.call_raw("recommendations/get", library, None).await.unwrap();
    assert_eq!(recommended["recommendations"].as_array().unwrap().len(), 2);
    plugin.shutdown().await;
}

async fn spin_loop_on(transport: Transport) {
    let host = TestHost::new();
    // The deadline is the plugin's request timeout: 700 ms here.
    let plugin = start_with(&host, "spin-loop", transport, |settings| {
        settings.timeouts = Timeouts::new(Duration::from_millis(700));
    })
    .await;
    let pid = plugin.process_id();
    let error = plugin.call::<SeriesSearch>(&search("x")).await.unwrap_err();
    match transport {
        // A process is only timed out; the host kills it at shutdown.
        Transport::Process => assert!(matches!(error, PluginError::Timeout { .. }), "{error}"),
        // A wasm guest is interrupted by the epoch watchdog at the deadline, which is the
        // cause the pending call fails with.
        Transport::Wasm => {
            let PluginError::Closed { closed, .. } = &error else { panic!("expected the interrupt: {error}") };
            let expected = "request deadline of 700 ms exceeded: the guest ran without answering";
            assert_eq!(closed.reason, CloseReason::Exited(expected.into()));
        }
    }
    plugin.shutdown().await;
    if let Some(pid) = pid {
        assert!(process_ends(pid).await, "the spinning process was killed");
    }
    // Lines that are not JSON-RPC, every 100 ms, are not progress: the guest is still
    // interrupted at its deadline.
    if transport == Transport::Wasm {
        let plugin = start_with(&host, "spin-loop", transport, |settings| {
            settings.timeouts = Timeouts::new(Duration::from_millis(700));
        })
        .await;
        let error = plugin.call::<SeriesSearch>(&search("chatty")).await.unwrap_err();
        let PluginError::Closed { closed, .. } = &error else { panic!("expected the interrupt: {error}") };
        let expected = "request deadline of 700 ms exceeded: the guest ran without answering";
        assert_eq!(closed.reason, CloseReason::Exited(expected.into()));
        plugin.shutdown().await;
    }
}

async fn memory_hog_on(transport: Transport) {
    let host = TestHost::new();
    // The search's own deadline (10 s): the limit, not a deadline, must end it.
    let plugin = host.example_granted("memory-hog", transport, memory_limit(256 << 20), |_| {}).await.unwrap();
    let error = plugin.call::<SeriesSearch>(&search("x")).await.unwrap_err();
    let PluginError::Closed { closed, .. } = &error else { panic!("expected the guest to die at its limit: {error}") };
    // A process: the allocation fails at RLIMIT_AS and Rust aborts. A wasm guest: the
    // store's limiter stops the growth and names the limit.
    let expected = match transport {
        Transport::Process => "was killed by signal 6 (SIGABRT)".to_owned(),
        Transport::Wasm => "memory limit of 256 MiB exceeded".to_owned(),
    };
    let CloseReason::Exited(how) = &closed.reason else { panic!("{closed}") };
    assert!(how.starts_with(&expected), "{how}");
    assert!(error.to_string().contains(&expected), "{error}");
    plugin.shutdown().await;
}

async fn stdout_flood_on(transport: Transport) {
    let host = TestHost::new();
    // The search's own deadline (10 s): the flood, not a deadline, must end it; junk is no
    // progress, so a wasm guest flooding for that long would be interrupted too.
    let plugin = start_with(&host, "stdout-flood", transport, |_| {}).await;
    let pid = plugin.process_id();
    let error = plugin.call::<SeriesSearch>(&search("x")).await.unwrap_err();
    // Junk is skipped, without being buffered, until 16 MiB of it: then the flood is a fault.
    let PluginError::Closed { closed, .. } = &error else { panic!("expected the flood to end it: {error}") };
    assert_eq!(closed.reason, CloseReason::OutputFlooded { limit: 16 << 20 });
    plugin.shutdown().await;
    if let Some(pid) = pid {
        assert!(process_ends(pid).await);
    }
}

async fn giant_line_on(transport: Transport) {
    let host = TestHost::new();
    // Building a 20 MiB answer takes more than a guest's default 64 MiB of memory.
    let plugin = host.example_granted("giant-line", transport, memory_limit(256 << 20), |_| {}).await.unwrap();
    let error = plugin.call::<SeriesSearch>(&search("x")).await.unwrap_err();
    let PluginError::Closed { closed, .. } = &error else { panic!("{error}") };
    assert_eq!(closed.reason, CloseReason::MessageTooLarge { limit: 8 << 20 });
    plugin.shutdown().await;
}

async fn bad_json_on(transport: Transport) {
    let host = TestHost::new();
    let plugin = start_with(&host, "bad-json", transport, short_timeouts).await;
    let error = plugin.call::<SeriesSearch>(&search("x")).await.unwrap_err();
    assert!(matches!(error, PluginError::Timeout { .. }), "{error}");
    assert!(plugin.closed_reason().is_none(), "broken lines are skipped, the connection lives");
    plugin.shutdown().await;
}

async fn exit_mid_request_on(transport: Transport) {
    let host = TestHost::new();
    let plugin = start(&host, "exit-mid-request", transport).await;
    let error = plugin.call::<SeriesSearch>(&search("x")).await.unwrap_err();
    let PluginError::Closed { closed, .. } = &error else { panic!("{error}") };
    // WASI 0.2's exit carries only success or failure: a guest's `exit(3)` is status 1.
    let status = if transport == Transport::Process { 3 } else { 1 };
    assert_eq!(closed.reason, CloseReason::Exited(format!("exited with status {status}")));
    plugin.shutdown().await;
}

async fn storage_abuser_on(transport: Transport) {
    let host = TestHost::new();
    let plugin = start(&host, "storage-abuser", transport).await;
    let answer = plugin.call::<SeriesSearch>(&search("x")).await.unwrap();
    let steps: BTreeMap<String, String> =
        answer.results.into_iter().map(|result| (result.external_id, result.title)).collect();
    assert_eq!(steps["first-100-keys"], "100 stored");
    assert_eq!(steps["key-101"], "refused -32602: Storage key limit exceeded (max 100 keys)");
    assert_eq!(steps["value-2-mib"], "refused -32602: Storage value exceeds maximum size of 1MB");
    assert!(steps["bad-expiry"].starts_with("refused -32602: Invalid expiresAt timestamp"), "{}", steps["bad-expiry"]);
    assert!(steps["key-300-bytes"].starts_with("refused -32602: Invalid storage key"), "{}", steps["key-300-bytes"]);
    assert_eq!(steps["keys-kept"], "100");
    assert_eq!(plugin.call::<Ping>(&NoParams).await.unwrap(), "pong");
    plugin.shutdown().await;
}

async fn sandbox_prober_on(transport: Transport) {
    let server = LoopbackServer::start();
    let host = TestHost::new();
    let plugin = start(&host, "sandbox-prober", transport).await;
    let probes = codex_plugin_host_tests::probe(&plugin, &server.address).await;
    let reached = |probe: &str| probes[probe]["reached"] == json!(true);
    assert_eq!(probes["data-dir"]["detail"], json!("written by sandbox-prober"), "{probes:?}");
    assert!(!reached("arguments"), "{probes:?}");
    match transport {
        // Process mode isolates the environment and, through the sandbox, the file system
        // (system files such as /etc/passwd stay readable; folders of others do not), but
        // not the network.
        Transport::Process => {
            assert_eq!(probes["environment"]["detail"], json!("HOME,LANG,PATH,TMPDIR"), "{probes:?}");
            assert!(reached("socket") && reached("file-outside"), "{probes:?}");
            assert!(!reached("parent-dir"), "{probes:?}");
            assert_eq!(probes["http"]["detail"], json!("status 200: ok"));
            assert_eq!(server.connections(), 2);
        }
        // Wasm mode denies all of it: no variables, nothing but /data, no sockets, and
        // HTTP to no host, since the admin allowed none.
        Transport::Wasm => {
            for probe in ["environment", "file-outside", "parent-dir", "socket", "http"] {
                assert!(!reached(probe), "{probe} was reachable: {probes:?}");
            }
            assert_eq!(probes["http"]["detail"], json!("ErrorCode::HttpRequestDenied"));
            assert_eq!(server.connections(), 0, "nothing left the host");
        }
    }
    plugin.shutdown().await;
}

async fn bare_ping_on(transport: Transport) {
    let host = TestHost::new();
    let plugin = start(&host, "bare-ping", transport).await;
    assert_eq!(plugin.manifest().name, "bare-ping");
    assert_eq!(plugin.call::<Ping>(&NoParams).await.unwrap(), "pong");
    let pid = plugin.process_id();
    plugin.shutdown().await;
    if let Some(pid) = pid {
        assert!(process_ends(pid).await);
    }
}

async fn socket_importer_on(transport: Transport) {
    match transport {
        Transport::Process => {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let target = listener.local_addr().unwrap().to_string();
            let host = TestHost::new();
            let plugin = start(&host, "socket-importer", transport).await;
            let answer = plugin.call::<SeriesSearch>(&search(&target)).await.unwrap();
            assert_eq!(answer.results[0].title, "connected", "process mode does not confine the network");
            plugin.shutdown().await;
        }
        Transport::Wasm => {
            let refused =
                codex_plugin_host_tests::try_wasm_component("socket-importer").err().expect("refused at load");
            assert!(refused.contains("imports what a plugin may not"), "{refused}");
            assert!(refused.contains("wasi:sockets/tcp@"), "the offending imports are listed: {refused}");
            assert!(!refused.contains("wasi:cli/stdin"), "allowed imports are not: {refused}");
        }
    }
}

/// Every method's params reach the plugin as sent and its answers come back as written.
async fn wire_echo_on(transport: Transport) {
    let host = TestHost::new();
    let plugin = start_with(&host, "wire-echo", transport, |settings| {
        settings.initialize = wire::initialize(settings.initialize.data_dir.take(), wire::Writer::Rust);
    })
    .await;
    let record = instance_path(host.data_dir(), "wire-echo", None).join(wire::RECORD_FILE);
    wire::check_the_wire(plugin, &record, wire::Writer::Rust).await;
}
