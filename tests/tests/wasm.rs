//! What only wasm mode does: many guests in one host, a deadline that counts execution,
//! not waiting, and outgoing HTTP only where the admin allowed it.

use codex_plugin_host::limits::Timeouts;
use codex_plugin_host::protocol::methods::{NoParams, Ping};
use codex_plugin_host::transport::wasm::http::HttpPolicy;
use codex_plugin_host_tests::{Grants, LoopbackServer, TestHost, Transport, probe};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_idle_instances_live_at_once_in_one_host() {
    let host = TestHost::new();
    let mut guests = Vec::with_capacity(500);
    for _ in 0..500 {
        let guest = host.example("metadata-echo", Transport::Wasm, |_| {}).await.expect("a guest starts");
        guests.push(guest);
    }
    // All of them are alive at once, and each still answers.
    for guest in &guests {
        assert_eq!(guest.call::<Ping>(&NoParams).await.unwrap(), "pong");
    }
    for guest in guests {
        guest.kill().await;
    }
}

#[tokio::test]
async fn time_spent_waiting_for_input_does_not_count_against_the_deadline() {
    let host = TestHost::new();
    let guest = host
        .example("metadata-echo", Transport::Wasm, |settings| {
            settings.timeouts = Timeouts::new(Duration::from_millis(300));
        })
        .await
        .unwrap();
    // Idle for three times the deadline: the guest waits on its stdin, executing nothing.
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(guest.call::<Ping>(&NoParams).await.unwrap(), "pong");
    assert!(guest.closed_reason().is_none(), "the guest was not interrupted");
    guest.shutdown().await;
}

/// The `sandbox-prober` guest's `http` probe of `target`, with the given policy.
async fn http_probe(target: &str, allowed: &[&str], internal_addresses: bool) -> String {
    let hosts = allowed.iter().map(|host| host.parse().expect("a valid allowed host")).collect();
    let grants =
        Grants { http: HttpPolicy::allow(hosts).with_internal_addresses(internal_addresses), ..Grants::default() };
    let host = TestHost::new();
    let prober = host.example_granted("sandbox-prober", Transport::Wasm, grants, |_| {}).await.unwrap();
    let probes = probe(&prober, target).await;
    prober.shutdown().await;
    assert_eq!(probes["socket"]["reached"], false, "never a socket: {probes:?}");
    probes["http"]["detail"].as_str().expect("a detail").to_owned()
}

#[tokio::test]
async fn http_reaches_a_loopback_server_the_admin_allowed_with_internal_addresses() {
    let server = LoopbackServer::start();
    assert_eq!(http_probe(&server.address, &[&server.address], true).await, "status 200: ok");
    // By name too: `localhost` is resolved by the host, then its address is checked.
    let by_name = format!("localhost:{}", server.port());
    assert_eq!(http_probe(&by_name, &["localhost"], true).await, "status 200: ok");
    assert_eq!(server.connections(), 2);
}

#[tokio::test]
async fn an_allowed_host_on_an_internal_address_is_refused_unless_internal_addresses_are_allowed() {
    let server = LoopbackServer::start();
    assert_eq!(http_probe(&server.address, &["127.0.0.1"], false).await, "ErrorCode::DestinationIpProhibited");
    // The name is allowed, but it resolves to loopback: checked after resolution.
    let by_name = format!("localhost:{}", server.port());
    assert_eq!(http_probe(&by_name, &["localhost"], false).await, "ErrorCode::DestinationIpProhibited");
    assert_eq!(server.connections(), 0, "nothing reached the server");
}

#[tokio::test]
async fn http_to_a_host_the_admin_did_not_list_is_refused() {
    let server = LoopbackServer::start();
    // Another host, and the right host on another port.
    assert_eq!(http_probe(&server.address, &["api.example.org"], true).await, "ErrorCode::HttpRequestDenied");
    assert_eq!(http_probe(&server.address, &["127.0.0.1:1"], true).await, "ErrorCode::HttpRequestDenied");
    assert_eq!(server.connections(), 0, "nothing reached the server");
}

/// Long enough that only the host's cut-off ends a stalled request: the prober waits one
/// second for each step.
const STALL: Duration = Duration::from_secs(20);

#[tokio::test]
async fn a_server_that_never_answers_is_cut_off_at_the_first_byte_wait() {
    let server = LoopbackServer::stalling(b"", STALL);
    assert_eq!(http_probe(&server.address, &[&server.address], true).await, "ErrorCode::ConnectionReadTimeout");
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn a_server_that_goes_quiet_in_the_middle_of_a_body_is_cut_off_between_bytes() {
    let server = LoopbackServer::stalling(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nonly", STALL);
    // A body's error reaches the guest as an I/O error whose text names the cause
    // (wasmtime-wasi-http 48 attaches no `error-code` to it).
    assert_eq!(http_probe(&server.address, &[&server.address], true).await, "connection read timeout");
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn a_server_that_never_finishes_the_tls_handshake_is_cut_off_at_the_connect_wait() {
    let server = LoopbackServer::stalling(b"", STALL);
    let target = format!("https://{}", server.address);
    assert_eq!(http_probe(&target, &[&server.address], true).await, "ErrorCode::ConnectionTimeout");
    assert_eq!(server.connections(), 1);
}

/// The data-directory escape: the users' folders are replaced by links to `/`, for a
/// connected user and, planted in advance, for one not yet connected. A registered wasm
/// plugin's start for either user is refused, naming the link; no guest gets `/` as its
/// `/data`, and the plugin-wide instance, whose folder holds no other, still answers.
#[tokio::test]
async fn a_link_planted_in_place_of_a_users_data_directory_is_refused() {
    use codex_plugin_host::host::{HostConfig, PluginHost};
    use codex_plugin_host::plugin::PluginId;
    use codex_plugin_host::registry::{Launch, PluginDefinition};
    use codex_plugin_host::sandbox::data_dir::{instance_path, user_folder};

    let dir = tempfile::tempdir().unwrap();
    let host = PluginHost::open(HostConfig::new(dir.path())).expect("the host opens");
    let definition =
        PluginDefinition::new(Launch::Wasm { file: codex_plugin_host_tests::wasm_component_path("metadata-echo") });
    host.registry().add(&PluginId::new("echo").unwrap(), &definition).unwrap();
    host.registry().connect_user("echo", "alice", Default::default()).unwrap();
    let search = serde_json::json!({"query": "dune"});
    host.call("echo", Some("alice"), "metadata/series/search", search.clone()).await.expect("alice's instance starts");
    host.call("echo", None, "metadata/series/search", search.clone()).await.expect("the plugin-wide instance starts");
    let alice = instance_path(dir.path(), "echo", Some("alice"));
    assert!(!alice.starts_with(instance_path(dir.path(), "echo", None)), "no instance's folder is inside another's");
    // Stopped, so that the next calls start the instances again.
    host.disable("echo").await.unwrap();
    host.registry().set_enabled("echo", true).unwrap();

    std::fs::remove_dir_all(&alice).unwrap();
    std::os::unix::fs::symlink("../../../../../../../../../..", &alice).unwrap();
    let bob = alice.with_file_name(user_folder("bob"));
    std::os::unix::fs::symlink("/", &bob).unwrap();
    host.registry().connect_user("echo", "bob", Default::default()).unwrap();
    for user in ["alice", "bob"] {
        let error = host.call("echo", Some(user), "metadata/series/search", search.clone()).await.unwrap_err();
        assert!(error.to_string().contains("is not a real directory"), "{user}: {error}");
    }
    let answer = host.call("echo", None, "metadata/series/search", search).await.expect("the plugin-wide instance");
    assert_eq!(answer["results"][0]["title"], serde_json::json!("dune"));
    host.shutdown().await;
}
