//! A host whose wasm capacity is far below its users: idle instances are evicted (least
//! recently used first) and started again on their next call, a user's storage outlives
//! its instance, and a full pool of busy instances is the host's condition, not a fault of
//! the plugin. Real wasm guests, a real database file.

use codex_plugin_host::host::{HostConfig, PluginHost};
use codex_plugin_host::plugin::{PluginError, PluginId};
use codex_plugin_host::registry::{Launch, PluginDefinition};
use codex_plugin_host::supervisor::HealthState;
use codex_plugin_host_tests::wasm_component_path;
use serde_json::{Value, json};
use std::time::Duration;

const USERS: usize = 50;
const CAPACITY: u32 = 8;

fn host(dir: &tempfile::TempDir, capacity: u32, wait: Duration) -> PluginHost {
    let mut config = HostConfig::new(dir.path());
    config.wasm_capacity = Some(capacity);
    config.capacity_wait = wait;
    PluginHost::open(config).expect("the host opens")
}

fn register(host: &PluginHost, id: &str, example: &str, timeout: Duration) {
    let mut definition = PluginDefinition::new(Launch::Wasm { file: wasm_component_path(example) });
    definition.request_timeout_ms = timeout.as_millis() as u64;
    host.registry().add(&PluginId::new(id).unwrap(), &definition).unwrap();
}

fn recommended(answer: &Value) -> Vec<String> {
    let recommendations = answer["recommendations"].as_array().cloned().unwrap_or_default();
    recommendations.iter().filter_map(|entry| entry["externalId"].as_str().map(str::to_owned)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_users_share_eight_places_and_the_plugin_stays_healthy() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(&dir, CAPACITY, Duration::from_secs(5));
    register(&host, "recs", "recommendations-echo", Duration::from_secs(10));
    let library = json!({"library": [{"seriesId": "1", "title": "Dune"}, {"seriesId": "2", "title": "Emma"}]});
    for user in 0..USERS {
        let user = format!("user-{user}");
        host.registry().connect_user("recs", &user, serde_json::Map::new()).unwrap();
        // Each user dismisses one recommendation, kept in that user's storage.
        let dismissed = json!({"externalId": format!("more-{}", 1 + user.len() % 2)});
        host.call("recs", Some(&user), "recommendations/dismiss", dismissed).await.unwrap();
        let (total, in_use) = host.wasm_capacity();
        assert!(in_use <= total, "{in_use} instances for {total} places");
    }
    assert_eq!(host.wasm_capacity(), (CAPACITY, CAPACITY), "every place is in use, none beyond");
    // Every user again: most instances were evicted and start afresh, and still find the
    // dismissal their first instance stored.
    for user in 0..USERS {
        let user = format!("user-{user}");
        let answer = host.call("recs", Some(&user), "recommendations/get", library.clone()).await.unwrap();
        let kept = format!("more-{}", 2 - user.len() % 2);
        assert_eq!(recommended(&answer), [kept], "{user}'s storage outlived its instance");
    }
    assert_eq!(host.health("recs").unwrap(), HealthState::Healthy, "evictions are not faults");
    let metrics = host.metrics("recs").unwrap();
    assert!(metrics.methods.values().all(|method| method.failures.is_empty()), "{metrics:?}");
    assert_eq!(host.component_loads(), 1, "one component for every instance");
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_of_busy_instances_refuses_the_next_start_as_the_hosts_condition() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(&dir, 1, Duration::from_millis(300));
    register(&host, "spinner", "spin-loop", Duration::from_secs(3));
    register(&host, "echo", "metadata-echo", Duration::from_secs(3));
    // Both components compiled first (echo's instance then evicted by the spinner's,
    // which holds the only place), so nothing slow happens while the spinner spins.
    host.call("echo", None, "ping", Value::Null).await.unwrap();
    host.call("spinner", None, "ping", Value::Null).await.unwrap();
    let busy = tokio::spawn({
        let host = std::sync::Arc::new(host);
        let spinning = host.clone();
        async move {
            let spin = spinning.call("spinner", None, "metadata/series/search", json!({"query": "x"}));
            let (spun, _) = tokio::join!(spin, async {
                tokio::time::sleep(Duration::from_millis(200)).await;
                assert_eq!(host.wasm_capacity(), (1, 1), "the spinner holds the only place");
                let refused = host.call("echo", None, "ping", Value::Null).await.unwrap_err();
                assert!(matches!(refused, PluginError::AtCapacity { .. }), "{refused}");
                assert!(refused.to_string().contains("all 1 wasm instances are busy"), "{refused}");
                assert!(!refused.is_fault());
                assert_eq!(host.health("echo").unwrap(), HealthState::Healthy, "a full host is not the plugin's fault");
            });
            let spun = spun.unwrap_err();
            assert!(matches!(spun, PluginError::Timeout { .. }), "the spinner timed out: {spun}");
            // The spinner's place is free again: the other plugin starts.
            host.call("echo", None, "ping", Value::Null).await.unwrap();
            assert_eq!(host.health("echo").unwrap(), HealthState::Healthy);
        }
    });
    busy.await.unwrap();
}

/// Process instances of one plugin are capped (idle ones evicted to make room, busy ones
/// making the next start wait, then refuse as at-capacity) and stop after their idle timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_instances_are_capped_per_plugin_and_stop_when_idle() {
    let dir = tempfile::tempdir().unwrap();
    let marker = format!("capped-{}", std::process::id());
    let mut config = HostConfig::new(dir.path());
    config.process_instances_per_plugin = 2;
    config.capacity_wait = Duration::from_millis(300);
    config.health.ping_interval = Duration::from_millis(200);
    config.health.idle_timeout = Duration::from_secs(1);
    let host = std::sync::Arc::new(PluginHost::open(config).unwrap());
    let args = vec![codex_plugin_host_tests::test_plugin(), "out-of-order".into(), marker.clone()];
    let definition = PluginDefinition::new(Launch::Process { command: "node".into(), args });
    host.registry().add(&PluginId::new("slow").unwrap(), &definition).unwrap();
    for user in ["u1", "u2", "u3"] {
        host.registry().connect_user("slow", user, serde_json::Map::new()).unwrap();
    }
    let ping = |user: &'static str| {
        let host = host.clone();
        async move { host.call("slow", Some(user), "ping", Value::Null).await }
    };
    ping("u1").await.unwrap();
    ping("u2").await.unwrap();
    assert_eq!(codex_plugin_host_tests::processes_marked(&marker), 2);
    ping("u3").await.unwrap();
    assert_eq!(codex_plugin_host_tests::processes_marked(&marker), 2, "u1's idle process made room for u3's");

    // u2 and u3 busy: u1's start waits, then is told the host is at capacity.
    let slow_search = |user: &'static str| {
        let host = host.clone();
        tokio::spawn(
            async move { host.call("slow", Some(user), "metadata/series/search", json!({"query": "1500"})).await },
        )
    };
    let (busy_2, busy_3) = (slow_search("u2"), slow_search("u3"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let refused = ping("u1").await.unwrap_err();
    assert!(matches!(refused, PluginError::AtCapacity { .. }), "{refused}");
    assert!(refused.to_string().contains("plugin `slow`'s 2 process instances are busy"), "{refused}");
    busy_2.await.unwrap().unwrap();
    busy_3.await.unwrap().unwrap();
    assert_eq!(host.health("slow").unwrap(), HealthState::Healthy, "capacity is not a fault");

    // Unused for the idle timeout, every instance stops; a call starts one again.
    assert!(codex_plugin_host_tests::marked_processes_end(&marker).await, "idle instances stopped");
    ping("u1").await.unwrap();
    assert_eq!(codex_plugin_host_tests::processes_marked(&marker), 1);
    let Ok(host) = std::sync::Arc::try_unwrap(host) else { panic!("the host is shared no more") };
    host.shutdown().await;
}

/// A sync-like job holds a session: an admin's change and a start that needs its place
/// both wait for it, the job finishes on the instance it started on, and the restart follows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_finishes_on_one_instance_and_the_restart_follows() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = HostConfig::new(dir.path());
    config.wasm_capacity = Some(1);
    config.capacity_wait = Duration::from_millis(500);
    config.admin_changes_interval = Duration::from_millis(100);
    let host = PluginHost::open(config).unwrap();
    let answers = |page: u64| json!({"answers": {"ping": "pong", "sync/pullProgress": {"entries": [], "hasMore": false, "page": page}}});
    let mut definition = PluginDefinition::new(Launch::Wasm { file: wasm_component_path("wire-echo") });
    definition.admin_config = answers(1).as_object().cloned().unwrap();
    host.registry().add(&PluginId::new("sync").unwrap(), &definition).unwrap();
    register(&host, "other", "metadata-echo", Duration::from_secs(5));
    let record = codex_plugin_host::sandbox::data_dir::instance_path(dir.path(), "sync", None).join("requests.jsonl");
    let starts = || std::fs::read_to_string(&record).unwrap_or_default().matches("\"method\":\"initialize\"").count();

    let session = host.session("sync", None);
    session.call("ping", Value::Null, None).await.unwrap();
    host.registry().set_admin_config("sync", answers(2).as_object().cloned().unwrap()).unwrap();
    let refused = host.call("other", None, "ping", Value::Null).await.unwrap_err();
    assert!(matches!(refused, PluginError::AtCapacity { .. }), "the session's instance is not idle: {refused}");
    tokio::time::sleep(Duration::from_millis(400)).await;
    for _ in 0..3 {
        let page = session.call("sync/pullProgress", json!({"limit": 500}), None).await.unwrap();
        assert_eq!(page["page"], json!(1), "the job stays on the instance it started on");
    }
    assert_eq!(starts(), 1);
    drop(session);

    // The restart follows: the next call is answered by an instance with the new config.
    let mut restarted = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let page = host.call("sync", None, "sync/pullProgress", json!({"limit": 500})).await.unwrap();
        if page["page"] == json!(2) {
            restarted = true;
            break;
        }
    }
    assert!(restarted, "the admin's change applied once the session ended");
    assert_eq!(starts(), 2);
    assert_eq!(host.health("sync").unwrap(), HealthState::Healthy);
    assert_eq!(host.health("other").unwrap(), HealthState::Healthy);
    host.shutdown().await;
}

/// Each wasm instance's slot has room for the largest memory limit registered when the
/// engine was made; a plugin registered later with more is refused with the way out.
#[tokio::test]
async fn a_memory_limit_beyond_the_pools_slots_is_refused_with_the_way_out() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(&dir, 4, Duration::from_secs(1));
    let mut roomy = PluginDefinition::new(Launch::Wasm { file: wasm_component_path("bare-ping") });
    roomy.memory_limit_bytes = Some(96 << 20);
    host.registry().add(&PluginId::new("roomy").unwrap(), &roomy).unwrap();
    host.call("roomy", None, "ping", Value::Null).await.unwrap();
    let mut greedy = roomy.clone();
    greedy.memory_limit_bytes = Some(512 << 20);
    host.registry().add(&PluginId::new("greedy").unwrap(), &greedy).unwrap();
    let refused = host.call("greedy", None, "ping", Value::Null).await.unwrap_err();
    let message = refused.to_string();
    assert!(message.contains("above the 96 MiB") && message.contains("restart the host"), "{message}");
    assert_eq!(host.health("greedy").unwrap(), HealthState::Healthy, "the host's limit, not the plugin's fault");
    host.shutdown().await;
}

/// Removing or disabling a plugin does not wait for its sessions: it stops at once, and a
/// session's next call is told its instance is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removal_stops_a_sessions_instance_at_once_and_the_session_is_told() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(&dir, 4, Duration::from_secs(1));
    register(&host, "gone", "metadata-echo", Duration::from_secs(5));
    let session = host.session("gone", None);
    session.call("ping", Value::Null, None).await.unwrap();
    let started = std::time::Instant::now();
    host.disable("gone").await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    let lost = session.call("ping", Value::Null, None).await.unwrap_err();
    assert!(matches!(lost, PluginError::SessionLost { .. } | PluginError::Disabled { .. }), "{lost}");
    assert!(!lost.is_fault());
    drop(session);
    host.shutdown().await;
}

/// Users arriving at once on a fresh host load the component once between them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_arriving_at_once_load_the_component_once() {
    let dir = tempfile::tempdir().unwrap();
    let host = std::sync::Arc::new(host(&dir, 16, Duration::from_secs(5)));
    register(&host, "echo", "metadata-echo", Duration::from_secs(10));
    let calls: Vec<_> = (0..8)
        .map(|user| {
            let host = host.clone();
            let user = format!("user-{user}");
            host.registry().connect_user("echo", &user, serde_json::Map::new()).unwrap();
            tokio::spawn(async move { host.call("echo", Some(&user), "ping", Value::Null).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(host.component_loads(), 1);
    let Ok(host) = std::sync::Arc::try_unwrap(host) else { panic!("the host is shared no more") };
    host.shutdown().await;
}
