//! The dispatcher over in-memory pipes, with a scripted plugin and no process at all.

use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, Lines};

use super::*;
use crate::dispatch::connection::{DEFAULT_MAX_JUNK_BYTES, LOGGED_JUNK_LINES};
use crate::protocol::{ErrorCode, ErrorObject};

/// The plugin's side of the pipes: reads the host's requests, writes raw lines.
struct ScriptedPlugin {
    requests: Lines<BufReader<DuplexStream>>,
    output: DuplexStream,
}

impl ScriptedPlugin {
    async fn next_request(&mut self) -> Value {
        let line = self.requests.next_line().await.unwrap().expect("a request");
        serde_json::from_str(&line).unwrap()
    }

    async fn send(&mut self, line: &str) {
        self.output.write_all(line.as_bytes()).await.unwrap();
        self.output.write_all(b"\n").await.unwrap();
    }

    async fn answer(&mut self, id: &Value, result: Value) {
        self.send(&json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string()).await;
    }
}

fn open(reverse: Arc<dyn ReverseHandler>, max_message_bytes: usize) -> (Arc<Connection>, ScriptedPlugin, ExitSender) {
    open_with_pipe(reverse, max_message_bytes, 1 << 20)
}

fn open_with_pipe(
    reverse: Arc<dyn ReverseHandler>,
    max_message_bytes: usize,
    pipe_bytes: usize,
) -> (Arc<Connection>, ScriptedPlugin, ExitSender) {
    let (host_input, plugin_input) = tokio::io::duplex(pipe_bytes);
    let (plugin_output, host_output) = tokio::io::duplex(1 << 20);
    let (exit_sender, exit) = exit_signal();
    let mut config = ConnectionConfig::new(PluginLabel::new("scripted", "memory"), reverse);
    config.max_message_bytes = max_message_bytes;
    let connection = Connection::open(host_output, host_input, exit, config);
    let plugin = ScriptedPlugin { requests: BufReader::new(plugin_input).lines(), output: plugin_output };
    (Arc::new(connection), plugin, exit_sender)
}

fn spawn_call(
    connection: &Arc<Connection>,
    method: &'static str,
) -> tokio::task::JoinHandle<Result<String, CallError>> {
    let connection = connection.clone();
    tokio::spawn(async move { connection.call(method, None).await.map(|raw| raw.get().to_owned()) })
}

#[tokio::test]
async fn answers_in_any_order_reach_their_callers() {
    let (connection, mut plugin, _exit) = open(Arc::new(RefuseAll), 1024);
    let calls: Vec<_> = (0..8).map(|_| spawn_call(&connection, "ping")).collect();
    let mut ids = Vec::new();
    for _ in 0..8 {
        ids.push(plugin.next_request().await["id"].clone());
    }
    for id in ids.iter().rev() {
        plugin.answer(id, json!(format!("pong-{id}"))).await;
    }
    let mut answers = Vec::new();
    for call in calls {
        answers.push(call.await.unwrap().unwrap());
    }
    let mut expected: Vec<_> = ids.iter().map(|id| format!("\"pong-{id}\"")).collect();
    expected.sort();
    let mut sorted = answers.clone();
    sorted.sort();
    assert_eq!(sorted, expected);
    assert_eq!(connection.pending_calls(), 0);
}

#[tokio::test]
async fn junk_lines_are_skipped_and_answers_still_arrive() {
    let (connection, mut plugin, _exit) = open(Arc::new(RefuseAll), 1024);
    let call = spawn_call(&connection, "ping");
    let id = plugin.next_request().await["id"].clone();
    for junk in [
        "hello from console.log",
        "",
        "{\"half\":",
        "[1,2,3]",
        "{\"id\":null,\"error\":{\"code\":-32700,\"message\":\"x\"}}",
    ] {
        plugin.send(junk).await;
    }
    plugin.answer(&id, json!("pong")).await;
    assert_eq!(call.await.unwrap().unwrap(), "\"pong\"");
    assert!(connection.closed_reason().is_none());
}

#[tokio::test]
async fn error_answers_are_errors_and_null_results_are_results() {
    let (connection, mut plugin, _exit) = open(Arc::new(RefuseAll), 1024);
    let failing = spawn_call(&connection, "metadata/series/get");
    let id = plugin.next_request().await["id"].clone();
    plugin
        .send(&json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32002, "message": "no such series"}}).to_string())
        .await;
    let Err(CallError::Rpc(error)) = failing.await.unwrap() else { panic!("expected an rpc error") };
    assert_eq!(error.kind(), ErrorCode::NotFound);

    let shutdown = spawn_call(&connection, "shutdown");
    let id = plugin.next_request().await["id"].clone();
    plugin.answer(&id, Value::Null).await;
    assert_eq!(shutdown.await.unwrap().unwrap(), "null");
}

#[tokio::test]
async fn an_oversized_message_fails_every_pending_call_with_the_limit() {
    let (connection, mut plugin, _exit) = open(Arc::new(RefuseAll), 1024);
    let calls: Vec<_> = (0..3).map(|_| spawn_call(&connection, "ping")).collect();
    for _ in 0..3 {
        plugin.next_request().await;
    }
    plugin.send(&"x".repeat(5000)).await;
    for call in calls {
        let Err(CallError::Closed(closed)) = call.await.unwrap() else { panic!("expected closed") };
        assert_eq!(closed.reason, CloseReason::MessageTooLarge { limit: 1024 });
        assert!(closed.to_string().contains("1024 bytes"), "{closed}");
    }
    let later = connection.call("ping", None).await.unwrap_err();
    assert!(matches!(later, CallError::Closed(_)));
    assert_eq!(connection.closed().await.reason, CloseReason::MessageTooLarge { limit: 1024 });
}

#[tokio::test]
async fn a_dead_plugin_fails_every_pending_call_at_once_with_its_exit() {
    let (connection, mut plugin, exit) = open(Arc::new(RefuseAll), 1024);
    let calls: Vec<_> = (0..4).map(|_| spawn_call(&connection, "ping")).collect();
    for _ in 0..4 {
        plugin.next_request().await;
    }
    exit.send_replace(Some(CloseReason::Exited("exit status: 3".into())));
    drop(plugin);
    let started = tokio::time::Instant::now();
    for call in calls {
        let Err(CallError::Closed(closed)) = call.await.unwrap() else { panic!("expected closed") };
        assert_eq!(closed.reason, CloseReason::Exited("exit status: 3".into()));
        assert_eq!(closed.to_string(), "plugin `scripted` (memory) exit status: 3");
    }
    assert!(started.elapsed() < Duration::from_secs(1), "no caller waits for a timeout");
}

#[tokio::test(start_paused = true)]
async fn output_closed_without_an_exit_reason_says_so() {
    let (connection, plugin, _exit) = open(Arc::new(RefuseAll), 1024);
    let call = spawn_call(&connection, "ping");
    drop(plugin);
    let Err(CallError::Closed(closed)) = call.await.unwrap() else { panic!() };
    assert_eq!(closed.reason, CloseReason::OutputClosed);
}

/// Answers `storage/get` with the key it was asked for, slowly.
struct EchoKey;

impl ReverseHandler for EchoKey {
    fn handle(&self, request: ReverseRequest) -> BoxFuture<Result<Value, ErrorObject>> {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            match request.method.as_str() {
                "storage/get" => {
                    let params: Value = serde_json::from_str(request.params.unwrap().get()).unwrap();
                    Ok(json!({"data": params["key"]}))
                }
                other => Err(ErrorObject::new(ErrorCode::MethodNotFound, format!("unknown method `{other}`"))),
            }
        })
    }
}

#[tokio::test]
async fn plugin_requests_are_served_while_the_host_request_waits() {
    let (connection, mut plugin, _exit) = open(Arc::new(EchoKey), 1024);
    let call = spawn_call(&connection, "recommendations/get");
    let host_id = plugin.next_request().await["id"].clone();
    // The plugin asks the host twice, with ids that clash with the host's own id space,
    // before it answers.
    plugin.send(&json!({"jsonrpc": "2.0", "id": host_id, "method": "storage/get", "params": {"key": "a"}, "parentRequestId": host_id}).to_string()).await;
    plugin.send(r#"{"jsonrpc":"2.0","id":"s-2","method":"storage/get","params":{"key":"b"}}"#).await;
    plugin.send(r#"{"jsonrpc":"2.0","id":7,"method":"releases/poll"}"#).await;
    let mut answers = Vec::new();
    for _ in 0..3 {
        answers.push(plugin.next_request().await);
    }
    let answer_to = |id: Value| answers.iter().find(|answer| answer["id"] == id).unwrap().clone();
    assert_eq!(answer_to(host_id.clone())["result"], json!({"data": "a"}));
    assert_eq!(answer_to(json!(7))["error"]["code"], json!(-32601));
    assert_eq!(answer_to(json!("s-2")), json!({"jsonrpc": "2.0", "id": "s-2", "result": {"data": "b"}}));
    plugin.answer(&host_id, json!({"recommendations": []})).await;
    assert_eq!(call.await.unwrap().unwrap(), r#"{"recommendations":[]}"#);
}

#[tokio::test]
async fn a_late_answer_is_dropped_and_the_connection_lives_on() {
    let (connection, mut plugin, _exit) = open(Arc::new(RefuseAll), 1024);
    let given_up = tokio::time::timeout(Duration::from_millis(10), connection.call("ping", None)).await;
    assert!(given_up.is_err());
    assert_eq!(connection.pending_calls(), 0, "a caller that gave up leaves nothing behind");
    let late_id = plugin.next_request().await["id"].clone();
    plugin.answer(&late_id, json!("late")).await;
    plugin.answer(&late_id, json!("duplicate")).await;
    let call = spawn_call(&connection, "ping");
    let id = plugin.next_request().await["id"].clone();
    assert_ne!(id, late_id);
    plugin.answer(&id, json!("pong")).await;
    assert_eq!(call.await.unwrap().unwrap(), "\"pong\"");
}

#[tokio::test]
async fn closing_the_input_gives_the_plugin_end_of_file() {
    let (connection, mut plugin, _exit) = open(Arc::new(RefuseAll), 1024);
    connection.close_input();
    assert!(plugin.requests.next_line().await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_on_a_narrow_pipe_never_interleave_lines() {
    // A 64-byte pipe makes every write block part-way, so callers pile up behind the one
    // holding the pipe and their lines are written in batches by whoever holds it.
    let (connection, mut plugin, _exit) = open_with_pipe(Arc::new(RefuseAll), 1 << 20, 64);
    let calls: Vec<_> = (0..64)
        .map(|index| {
            let connection = connection.clone();
            tokio::spawn(async move {
                let params = serde_json::value::to_raw_value(&json!({"query": "q".repeat(index * 97)})).unwrap();
                connection.call("metadata/series/search", Some(&params)).await.map(|raw| raw.get().to_owned())
            })
        })
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..64 {
        let request = plugin.next_request().await;
        let length = request["params"]["query"].as_str().unwrap().len();
        assert_eq!(length % 97, 0, "a line arrived whole");
        assert!(seen.insert(request["id"].as_i64().unwrap()));
        plugin.answer(&request["id"], json!(length)).await;
    }
    for call in calls {
        call.await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn a_caller_that_gives_up_never_leaves_half_a_line() {
    // The plugin reads nothing at first, so a long line only partly fits the pipe and the
    // caller gives up. The rest must still go out, whole, once the plugin reads again.
    let (connection, mut plugin, _exit) = open_with_pipe(Arc::new(RefuseAll), 1024, 256);
    let params = serde_json::value::to_raw_value(&json!({"query": "x".repeat(10_000)})).unwrap();
    let abandoned =
        tokio::time::timeout(Duration::from_millis(50), connection.call("metadata/series/search", Some(&params))).await;
    assert!(abandoned.is_err());
    let request = plugin.next_request().await;
    assert_eq!(request["params"]["query"].as_str().unwrap().len(), 10_000);
    let call = spawn_call(&connection, "ping");
    let ping = plugin.next_request().await;
    plugin.answer(&ping["id"], json!("pong")).await;
    assert_eq!(call.await.unwrap().unwrap(), "\"pong\"");
    assert!(connection.closed_reason().is_none());
}

#[tokio::test]
async fn a_plugin_that_stops_reading_its_input_is_closed_past_the_backlog() {
    let (connection, _plugin, _exit) = open_with_pipe(Arc::new(RefuseAll), 1024, 256);
    let params = serde_json::value::to_raw_value(&json!({"query": "x".repeat(1 << 20)})).unwrap();
    let mut callers = Vec::new();
    for _ in 0..70 {
        let connection = connection.clone();
        let params = params.clone();
        callers.push(tokio::spawn(async move { connection.call("metadata/series/search", Some(&params)).await }));
    }
    let closed = within_seconds(connection.closed()).await;
    let CloseReason::WriteFailed(why) = &closed.reason else { panic!("{closed}") };
    assert!(why.starts_with("it stopped reading its input"), "{why}");
    for caller in callers {
        assert!(matches!(caller.await.unwrap(), Err(CallError::Closed(_))));
    }
}

#[tokio::test]
async fn an_exit_fails_pending_calls_even_while_a_descendant_holds_the_output_open() {
    let (connection, mut plugin, exit) = open(Arc::new(RefuseAll), 1024);
    let call = spawn_call(&connection, "ping");
    plugin.next_request().await;
    // The output pipe stays open (the scripted plugin is still alive and holds it).
    exit.send_replace(Some(CloseReason::Exited("exited with status 1".into())));
    let Err(CallError::Closed(closed)) = within_seconds(call).await.unwrap() else { panic!("expected the exit") };
    assert_eq!(closed.reason, CloseReason::Exited("exited with status 1".into()));
    drop(plugin);
}

#[tokio::test]
async fn output_written_before_the_exit_is_still_delivered() {
    let (connection, mut plugin, exit) = open(Arc::new(RefuseAll), 1024);
    let call = spawn_call(&connection, "shutdown");
    let id = plugin.next_request().await["id"].clone();
    // The exit is reported first; the answer is read during the drain that follows.
    exit.send_replace(Some(CloseReason::Exited("exited with status 0".into())));
    tokio::time::sleep(Duration::from_millis(100)).await;
    plugin.answer(&id, Value::Null).await;
    assert_eq!(within_seconds(call).await.unwrap().unwrap(), "null");
}

#[tokio::test]
async fn a_request_over_the_input_limit_is_refused_without_writing_anything() {
    let (connection, mut plugin, _exit) = open(Arc::new(RefuseAll), 1024);
    let huge = serde_json::value::to_raw_value(&json!({"query": "x".repeat(65 << 20)})).unwrap();
    let error = connection.call("metadata/series/search", Some(&huge)).await.unwrap_err();
    assert!(matches!(error, CallError::RequestTooLarge { limit, .. } if limit == 64 << 20), "{error}");
    let call = spawn_call(&connection, "ping");
    let request = plugin.next_request().await;
    assert_eq!(request["method"], json!("ping"), "the next line is whole and first");
    plugin.answer(&request["id"], json!("pong")).await;
    assert_eq!(within_seconds(call).await.unwrap().unwrap(), "\"pong\"");
}

#[tokio::test]
async fn after_a_failed_write_calls_get_the_plugins_exit_not_a_stop() {
    let (connection, plugin, exit) = open(Arc::new(RefuseAll), 1024);
    let ScriptedPlugin { requests, output } = plugin;
    drop(requests);
    exit.send_replace(Some(CloseReason::Exited("exited with status 9".into())));
    let error = within_seconds(connection.call("ping", None)).await.unwrap_err();
    let CallError::Closed(closed) = error else { panic!("{error}") };
    assert_eq!(closed.reason, CloseReason::Exited("exited with status 9".into()));
    drop(output);
}

/// Fails a test that would otherwise hang if the behaviour under test broke.
async fn within_seconds<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), future).await.expect("no hang")
}

#[tokio::test]
async fn a_plugin_flooding_its_output_with_junk_is_a_fault() {
    let (host_input, plugin_input) = tokio::io::duplex(1 << 20);
    let (plugin_output, host_output) = tokio::io::duplex(1 << 20);
    let (_exit_sender, exit) = exit_signal();
    let mut config = ConnectionConfig::new(PluginLabel::new("flood", "memory"), Arc::new(RefuseAll));
    config.max_junk_bytes = 4096;
    let connection = Arc::new(Connection::open(host_output, host_input, exit, config));
    let mut plugin = ScriptedPlugin { requests: BufReader::new(plugin_input).lines(), output: plugin_output };
    let call = spawn_call(&connection, "ping");
    let id = plugin.next_request().await["id"].clone();
    // Junk below the cap, then a message: the run starts over.
    for _ in 0..30 {
        plugin.send(&"junk ".repeat(20)).await;
    }
    plugin.answer(&id, json!("pong")).await;
    assert_eq!(call.await.unwrap().unwrap(), "\"pong\"");
    let call = spawn_call(&connection, "ping");
    plugin.next_request().await;
    for _ in 0..60 {
        plugin.send(&"junk ".repeat(20)).await;
    }
    let Err(CallError::Closed(closed)) = within_seconds(call).await.unwrap() else {
        panic!("expected the flood to close it")
    };
    assert_eq!(closed.reason, CloseReason::OutputFlooded { limit: 4096 });
    assert!(closed.to_string().contains("over 4096 bytes of lines that are not JSON-RPC"), "{closed}");
}

/// Counts the warnings logged while it is the thread's subscriber.
#[derive(Clone, Default)]
struct WarningCount(Arc<std::sync::atomic::AtomicUsize>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for WarningCount {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if *event.metadata().level() == tracing::Level::WARN {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

#[tokio::test]
async fn a_notification_flood_is_logged_a_few_lines_at_most_and_past_the_cap_is_a_fault() {
    use tracing_subscriber::layer::SubscriberExt as _;
    let warnings = WarningCount::default();
    let _logging = tracing::subscriber::set_default(tracing_subscriber::registry().with(warnings.clone()));
    let (connection, mut plugin, _exit) = open(Arc::new(RefuseAll), 1 << 20);
    let call = spawn_call(&connection, "ping");
    let id = plugin.next_request().await["id"].clone();
    let notification = json!({"jsonrpc": "2.0", "method": "log", "params": {"message": "hello"}}).to_string();
    for _ in 0..20_000 {
        plugin.send(&notification).await;
    }
    plugin.answer(&id, json!("pong")).await;
    assert_eq!(within_seconds(call).await.unwrap().unwrap(), "\"pong\"");
    let logged = warnings.0.load(std::sync::atomic::Ordering::Relaxed);
    assert!(logged <= LOGGED_JUNK_LINES as usize + 1, "20,000 notifications logged {logged} warnings");

    let call = spawn_call(&connection, "ping");
    plugin.next_request().await;
    let flood = (DEFAULT_MAX_JUNK_BYTES / notification.len()) + 10;
    let sending = tokio::spawn(async move {
        for _ in 0..flood {
            plugin.send(&notification).await;
        }
        plugin
    });
    let Err(CallError::Closed(closed)) = within_seconds(call).await.unwrap() else {
        panic!("expected the flood to close it")
    };
    assert_eq!(closed.reason, CloseReason::OutputFlooded { limit: DEFAULT_MAX_JUNK_BYTES });
    sending.abort();
}
