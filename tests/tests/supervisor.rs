//! The supervisor on registered plugins, with the clock paused: restarts with backoff,
//! auto-disable after repeated faults, reset, domain errors that never count, and a
//! crash-looping plugin beside a healthy one that keeps answering. Real wasm guests, a real
//! database file.

use codex_plugin_host::host::{DATABASE_FILE, HostConfig, PluginHost};
use codex_plugin_host::plugin::{PluginError, PluginId};
use codex_plugin_host::registry::{Launch, PluginDefinition, Registry};
use codex_plugin_host::supervisor::HealthState;
use codex_plugin_host::transport::ShutdownPolicy;
use codex_plugin_host_tests::wasm_component_path;
use serde_json::json;
use std::time::Duration;
use tokio::time::Instant;

fn host(dir: &tempfile::TempDir) -> PluginHost {
    let host = PluginHost::open(HostConfig::new(dir.path())).expect("the host opens");
    for (id, example) in [("crasher", "exit-mid-request"), ("echo", "metadata-echo")] {
        let definition = PluginDefinition::new(Launch::Wasm { file: wasm_component_path(example) });
        host.registry().add(&PluginId::new(id).unwrap(), &definition).unwrap();
    }
    host
}

const WAIT_FOR_RESTART: Duration = Duration::from_secs(120);

async fn crash(host: &PluginHost) -> PluginError {
    let search = json!({"query": "x"});
    let error = host
        .call_with_timeout("crasher", None, "metadata/series/search", search, WAIT_FOR_RESTART)
        .await
        .expect_err("the crasher exits on every search");
    assert!(error.to_string().contains("exited with status"), "{error}");
    error
}

#[tokio::test(start_paused = true)]
async fn a_crash_looping_plugin_backs_off_then_is_disabled_while_a_healthy_one_keeps_answering() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(&dir);
    crash(&host).await;
    let mut waits = Vec::new();
    for _ in 0..4 {
        let echo = host.call("echo", None, "metadata/series/search", json!({"query": "dune"})).await.unwrap();
        assert_eq!(echo["results"][0]["title"], json!("dune"), "the healthy plugin answers throughout");
        let before = Instant::now();
        crash(&host).await;
        waits.push(before.elapsed().as_secs());
    }
    assert_eq!(waits, [1, 2, 4, 8], "each restart waits twice as long as the one before");

    // Five faults within the hour: disabled, persisted with the reason and the faults.
    let refused = host.call("crasher", None, "ping", json!(null)).await.unwrap_err();
    assert!(matches!(refused, PluginError::Disabled { .. }), "{refused}");
    assert_eq!(refused.to_string(), "plugin `crasher` is disabled: disabled after 5 faults within 1 hour");
    let record = host.registry().get("crasher").unwrap();
    assert!(!record.enabled);
    assert_eq!(record.disabled_reason.as_deref(), Some("disabled after 5 faults within 1 hour"));
    assert_eq!(record.recent_faults.len(), 5);
    assert!(record.recent_faults.iter().all(|fault| fault.contains("exited with status")), "{record:?}");
    assert!(matches!(host.health("crasher").unwrap(), HealthState::Disabled(_)));
    let metrics = host.metrics("crasher").unwrap();
    assert_eq!(metrics.methods["metadata/series/search"].failures["crashed"], 5);
    assert_eq!(metrics.restarts, 4);
    assert_eq!(host.call("echo", None, "ping", json!(null)).await.unwrap(), json!("pong"));

    // A reset brings it back at once, with a clean slate.
    host.reset("crasher").await.unwrap();
    assert_eq!(host.health("crasher").unwrap(), HealthState::Healthy);
    assert_eq!(host.call("crasher", None, "ping", json!(null)).await.unwrap(), json!("pong"));
    assert!(host.registry().get("crasher").unwrap().enabled);
    host.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn the_call_after_a_crash_gets_a_fresh_instance() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(&dir);
    assert_eq!(host.call("crasher", None, "ping", json!(null)).await.unwrap(), json!("pong"));
    crash(&host).await;
    // The dead instance is thrown away; the next call waits out the 1 s backoff and is
    // answered by a new one.
    let started = Instant::now();
    let found = host.call("crasher", None, "metadata/series/get", json!({"externalId": "1"})).await.unwrap_err();
    assert!(matches!(&found, PluginError::Answered { .. }), "{found}");
    assert_eq!(started.elapsed().as_secs(), 1);
    assert_eq!(host.metrics("crasher").unwrap().restarts, 1);
    host.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_call_that_cannot_wait_for_the_restart_is_refused_at_once_with_the_delay() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(&dir);
    crash(&host).await;
    let started = Instant::now();
    let error =
        host.call_with_timeout("crasher", None, "ping", json!(null), Duration::from_millis(200)).await.unwrap_err();
    assert_eq!(error.to_string(), "plugin `crasher` is restarting after a fault; retry in 1 s");
    assert_eq!(started.elapsed(), Duration::ZERO, "no waiting");
    host.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn domain_errors_are_answers_and_never_count_against_health() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(&dir);
    for _ in 0..20 {
        let error = host.call("crasher", None, "metadata/series/get", json!({"externalId": "404"})).await.unwrap_err();
        assert_eq!(error.code(), codex_plugin_host::protocol::ErrorCode::NotFound, "{error}");
    }
    assert_eq!(host.health("crasher").unwrap(), HealthState::Healthy);
    let metrics = host.metrics("crasher").unwrap();
    assert_eq!(metrics.methods["metadata/series/get"].failures["not-found"], 20);
    assert_eq!(metrics.restarts, 0);
    host.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn call_counts_outlive_the_host_that_made_them() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(&dir);
    for _ in 0..3 {
        host.call("echo", None, "ping", json!(null)).await.unwrap();
    }
    host.shutdown().await;
    let again = PluginHost::open(HostConfig::new(dir.path())).unwrap();
    again.call("echo", None, "ping", json!(null)).await.unwrap();
    let ping = &again.metrics("echo").unwrap().methods["ping"];
    assert_eq!((ping.requests, ping.successes), (4, 4));
    assert_eq!(ping.latency_ms.iter().sum::<u64>(), 4);
    again.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn an_idle_instance_is_pinged_and_successful_calls_never_write_to_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(&dir);
    host.call("echo", None, "metadata/series/search", json!({"query": "dune"})).await.unwrap();
    // Another connection sees `data_version` change whenever anyone commits to the file.
    let observer = rusqlite::Connection::open(dir.path().join("codex-plugin-host.sqlite3")).unwrap();
    let version = || observer.query_row("PRAGMA data_version", [], |row| row.get::<_, i64>(0)).unwrap();
    let before = version();
    for _ in 0..200 {
        host.call("echo", None, "metadata/series/search", json!({"query": "dune"})).await.unwrap();
    }
    assert_eq!(version(), before, "200 successful calls wrote nothing");

    tokio::time::sleep(Duration::from_secs(61)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let ping = host.metrics("echo").unwrap().methods.get("ping").cloned().expect("the idle instance was pinged");
    assert_eq!((ping.requests, ping.successes), (1, 1));
    host.shutdown().await;
}

/// Every user's instance of a wasm plugin shares one loaded component, and a start whose
/// manifest is the one recorded writes nothing to the database.
#[tokio::test]
async fn new_users_share_one_loaded_component_and_their_starts_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(&dir);
    for user in 0..6 {
        host.registry().connect_user("echo", &format!("user-{user}"), serde_json::Map::new()).unwrap();
    }
    host.call("echo", Some("user-0"), "ping", serde_json::Value::Null).await.unwrap();
    let observer = rusqlite::Connection::open(dir.path().join("codex-plugin-host.sqlite3")).unwrap();
    let version = || observer.query_row("PRAGMA data_version", [], |row| row.get::<_, i64>(0)).unwrap();
    let before = version();
    for user in 1..6 {
        host.call("echo", Some(&format!("user-{user}")), "ping", serde_json::Value::Null).await.unwrap();
    }
    assert_eq!(version(), before, "five new users' starts wrote nothing");
    assert_eq!(host.component_loads(), 1, "one load for six instances");
    host.call("crasher", None, "ping", serde_json::Value::Null).await.unwrap();
    assert_eq!(host.component_loads(), 2, "another file, another load");
    host.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_new_admin_configuration_reaches_the_plugin_on_its_next_call() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(&dir);
    let count = |found: serde_json::Value| found["results"].as_array().unwrap().len();
    let search = || host.call("echo", None, "metadata/series/search", json!({"query": "dune"}));
    let before = count(search().await.unwrap());
    host.configure("echo", json!({"maxResults": 1}).as_object().unwrap().clone()).await.unwrap();
    assert_eq!(count(search().await.unwrap()), 1, "was {before}");
    host.shutdown().await;
}

/// A host with `spin-loop` registered under a request timeout, stopping plugins quickly.
fn spinner_host(dir: &tempfile::TempDir, request_timeout: Duration) -> PluginHost {
    let mut config = HostConfig::new(dir.path());
    config.shutdown = ShutdownPolicy {
        grace: Duration::from_millis(100),
        after_close_input: Duration::from_millis(100),
        after_terminate: Duration::from_millis(100),
    };
    let host = PluginHost::open(config).expect("the host opens");
    let mut definition = PluginDefinition::new(Launch::Wasm { file: wasm_component_path("spin-loop") });
    definition.request_timeout_ms = request_timeout.as_millis() as u64;
    host.registry().add(&PluginId::new("spinner").unwrap(), &definition).unwrap();
    host
}

// Real time: the guest's deadline is enforced by the engine's epoch ticker, a thread.
#[tokio::test]
async fn a_spinning_call_is_one_fault_though_it_both_times_out_and_is_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let host = spinner_host(&dir, Duration::from_millis(300));
    let error = host.call("spinner", None, "metadata/series/search", json!({"query": "x"})).await.unwrap_err();
    assert!(error.is_fault(), "{error}");
    // The call's timeout and the guest's deadline both fire at 300 ms; whichever comes
    // first, the incident counts once. (The restart is due 1 s after it.)
    tokio::time::sleep(Duration::from_millis(300)).await;
    match host.health("spinner").unwrap() {
        HealthState::Degraded { faults_in_window, restart_at, .. } => {
            assert_eq!(faults_in_window, 1);
            assert!(restart_at.is_some(), "the dead instance is to be replaced");
        }
        other => panic!("{other:?}"),
    }
    host.shutdown().await;
}

#[tokio::test]
async fn a_deadline_the_caller_chose_shorter_than_the_plugins_is_not_the_plugins_fault() {
    let dir = tempfile::tempdir().unwrap();
    let host = spinner_host(&dir, Duration::from_secs(10));
    let search = json!({"query": "x"});
    let short = Duration::from_millis(200);
    let error = host.call_with_timeout("spinner", None, "metadata/series/search", search, short).await.unwrap_err();
    assert!(matches!(error, PluginError::Timeout { .. }), "{error}");
    assert_eq!(host.health("spinner").unwrap(), HealthState::Healthy);
    assert_eq!(host.metrics("spinner").unwrap().methods["metadata/series/search"].failures["timeout"], 1);
    host.shutdown().await;
}

/// Waits (on the paused clock) until the host's instance tasks number `expected`.
async fn settle_instance_tasks(host: &PluginHost, expected: usize) {
    for _ in 0..100 {
        if host.instance_tasks() == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(host.instance_tasks(), expected, "instance tasks");
}

#[tokio::test(start_paused = true)]
async fn calls_for_unregistered_plugins_or_unconnected_users_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(&dir);
    assert_eq!(host.call("echo", None, "ping", json!(null)).await.unwrap(), json!("pong"));
    for n in 0..200 {
        let unknown = format!("ghost-{n}");
        let refused = host.call(&unknown, Some("alice"), "ping", json!(null)).await.unwrap_err();
        assert!(matches!(&refused, PluginError::NotRegistered { user: None, .. }), "{refused:?}");
        assert_eq!(refused.to_string(), format!("no plugin is registered as `{unknown}`"));
        let stranger = format!("user-{n}");
        let refused = host.call("echo", Some(&stranger), "ping", json!(null)).await.unwrap_err();
        assert!(matches!(&refused, PluginError::NotRegistered { user: Some(user), .. } if *user == stranger));
        assert!(refused.to_string().contains("is not connected to plugin `echo`"), "{refused}");
    }
    // Only the echo plugin's own instance task is left, and it still answers.
    settle_instance_tasks(&host, 1).await;
    assert_eq!(host.health("echo").unwrap(), HealthState::Healthy);
    let refusals = &host.metrics("echo").unwrap().methods["ping"];
    assert_eq!((refusals.successes, refusals.failures["refused"]), (1, 200), "counted, not held against it");

    // Once connected, the same user gets an instance of their own.
    host.registry().connect_user("echo", "user-7", serde_json::Map::new()).unwrap();
    assert_eq!(host.call("echo", Some("user-7"), "ping", json!(null)).await.unwrap(), json!("pong"));
    settle_instance_tasks(&host, 2).await;
    // A plugin registered later under a refused id starts with no counts.
    let definition = PluginDefinition::new(Launch::Wasm { file: wasm_component_path("metadata-echo") });
    host.registry().add(&PluginId::new("ghost-0").unwrap(), &definition).unwrap();
    assert!(host.metrics("ghost-0").unwrap().methods.is_empty());
    assert_eq!(host.call("ghost-0", None, "ping", json!(null)).await.unwrap(), json!("pong"));
    host.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn admin_changes_made_by_another_process_reach_the_running_host() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(&dir);
    // The command-line tool: another connection to the same database file.
    let admin = Registry::open(&dir.path().join(DATABASE_FILE)).unwrap();
    let past_the_interval = || tokio::time::sleep(Duration::from_secs(3));
    let count = |found: serde_json::Value| found["results"].as_array().unwrap().len();
    let search = || host.call("echo", None, "metadata/series/search", json!({"query": "dune"}));
    let before = count(search().await.unwrap());
    assert!(before > 1, "{before}");
    settle_instance_tasks(&host, 1).await;

    // A commit that changes nothing an instance starts from leaves it running.
    admin.record_manifest("echo", &json!({"name": "echo"})).unwrap();
    admin.set_enabled("echo", true).unwrap();
    past_the_interval().await;
    settle_instance_tasks(&host, 1).await;

    // A new admin configuration: the instance stops, and the next call sees it.
    admin.set_admin_config("echo", json!({"maxResults": 1}).as_object().unwrap().clone()).unwrap();
    past_the_interval().await;
    settle_instance_tasks(&host, 0).await;
    assert_eq!(count(search().await.unwrap()), 1, "was {before}");

    // Disabled, then enabled again, by the tool.
    admin.set_enabled("echo", false).unwrap();
    past_the_interval().await;
    settle_instance_tasks(&host, 0).await;
    let refused = host.call("echo", None, "ping", json!(null)).await.unwrap_err();
    assert!(matches!(refused, PluginError::Disabled { .. }), "{refused}");
    admin.set_enabled("echo", true).unwrap();
    assert_eq!(host.call("echo", None, "ping", json!(null)).await.unwrap(), json!("pong"));

    // A change this host made itself, on its own connection, with nobody else committing:
    // applied once, and what it restarted is current.
    past_the_interval().await;
    host.configure("echo", serde_json::Map::new()).await.unwrap();
    assert_eq!(count(search().await.unwrap()), before);
    past_the_interval().await;
    past_the_interval().await;
    settle_instance_tasks(&host, 1).await;
    let direct = json!({"maxResults": 1}).as_object().unwrap().clone();
    host.registry().set_admin_config("echo", direct).unwrap();
    past_the_interval().await;
    settle_instance_tasks(&host, 0).await;
    assert_eq!(count(search().await.unwrap()), 1, "a direct registry change reaches the instance too");
    host.configure("echo", serde_json::Map::new()).await.unwrap();
    assert_eq!(count(search().await.unwrap()), before);

    // A user's new configuration restarts that user's instance only.
    for user in ["alice", "bob"] {
        admin.connect_user("echo", user, serde_json::Map::new()).unwrap();
        assert_eq!(host.call("echo", Some(user), "ping", json!(null)).await.unwrap(), json!("pong"));
    }
    settle_instance_tasks(&host, 3).await;
    admin.connect_user("echo", "alice", json!({"shelf": "manga"}).as_object().unwrap().clone()).unwrap();
    past_the_interval().await;
    settle_instance_tasks(&host, 2).await;
    assert_eq!(host.call("echo", Some("alice"), "ping", json!(null)).await.unwrap(), json!("pong"));
    settle_instance_tasks(&host, 3).await;

    // A plugin this host disabled after repeated faults, reset by the tool.
    for _ in 0..5 {
        crash(&host).await;
    }
    let refused = host.call("crasher", None, "ping", json!(null)).await.unwrap_err();
    assert!(matches!(refused, PluginError::Disabled { .. }), "{refused}");
    admin.set_enabled("crasher", true).unwrap();
    past_the_interval().await;
    assert_eq!(host.call("crasher", None, "ping", json!(null)).await.unwrap(), json!("pong"));

    // Removed by the tool: stopped, and refused from then on.
    admin.remove("echo").unwrap();
    past_the_interval().await;
    settle_instance_tasks(&host, 1).await;
    let refused = host.call("echo", None, "ping", json!(null)).await.unwrap_err();
    assert!(matches!(refused, PluginError::NotRegistered { .. }), "{refused}");
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_registered_after_the_host_opened_and_changed_elsewhere_is_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = HostConfig::new(dir.path());
    config.admin_changes_interval = Duration::from_millis(20);
    let host = PluginHost::open(config).unwrap();
    let definition = PluginDefinition::new(Launch::Wasm { file: wasm_component_path("metadata-echo") });
    host.registry().add(&PluginId::new("echo").unwrap(), &definition).unwrap();
    let count = |found: serde_json::Value| found["results"].as_array().unwrap().len();
    let search = || host.call("echo", None, "metadata/series/search", json!({"query": "dune"}));
    let before = count(search().await.unwrap());
    assert!(before > 1, "{before}");
    // Several looks later, nothing changed: the instance still runs.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(host.instance_tasks(), 1, "an instance that is current is left alone");
    let admin = Registry::open(&dir.path().join(DATABASE_FILE)).unwrap();
    admin.set_admin_config("echo", json!({"maxResults": 1}).as_object().unwrap().clone()).unwrap();
    // Real time here: wait, within a bound, for the watch to stop the instance.
    for _ in 0..500 {
        if host.instance_tasks() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(host.instance_tasks(), 0, "the outdated instance was stopped");
    assert_eq!(count(search().await.unwrap()), 1);
    host.shutdown().await;
}
