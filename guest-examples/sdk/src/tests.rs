//! The SDK loop driven by scripted input: raw JSON lines in, raw JSON lines out.

use serde_json::{Value, json};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::Write;
use std::rc::Rc;
use std::time::Duration;

use crate::io::{LineSource, Next};
use crate::prelude::*;

/// Lines to feed, then end of input. A `None` step means "no line comes": the loop's
/// deadline passes.
struct Script(VecDeque<Option<String>>);

impl LineSource for Script {
    fn next_line(&mut self, wait: Option<Duration>) -> Next {
        match self.0.pop_front() {
            Some(Some(line)) => Next::Line(line.into_bytes()),
            Some(None) => {
                std::thread::sleep(wait.expect("a silent step is only scripted while a deadline runs"));
                Next::TimedOut
            }
            None => Next::Closed,
        }
    }
}

#[derive(Clone, Default)]
struct Captured(Rc<RefCell<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Searches look the query up in storage first.
struct Remembering;

impl SeriesProvider for Remembering {
    async fn search(&self, ctx: &Context, params: SeriesSearchParams) -> Result<SearchResponse> {
        let remembered = ctx.storage().get(&params.query).await?;
        let title = remembered.map_or_else(|| "unknown".to_owned(), |value| value.to_string());
        let result = SearchResult::new(params.query, title);
        Ok(SearchResponse { results: vec![result], next_cursor: None })
    }

    async fn get(&self, _ctx: &Context, params: GetParams) -> Result<SeriesMetadata> {
        Err(PluginError::NotFound(format!("no series {}", params.external_id)))
    }
}

fn test_plugin() -> Plugin {
    Plugin::new(PluginInfo::new("test-sdk", "Test", "1.0.0", "SDK test plugin"))
        .series(Remembering)
        .host_timeout(Duration::from_millis(20))
}

fn serve(plugin: Plugin, source: impl LineSource) -> Vec<Value> {
    let output = Captured::default();
    plugin.serve(source, Box::new(output.clone()));
    let text = String::from_utf8(output.0.borrow().clone()).unwrap();
    text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

fn run(lines: &[Option<&str>]) -> Vec<Value> {
    serve(test_plugin(), Script(lines.iter().map(|line| line.map(str::to_owned)).collect()))
}

/// A host that never stops talking: a ping every millisecond, for a while.
struct Busy {
    first: Option<String>,
    until: std::time::Instant,
    next_id: u64,
}

impl LineSource for Busy {
    fn next_line(&mut self, _wait: Option<Duration>) -> Next {
        if let Some(first) = self.first.take() {
            return Next::Line(first.into_bytes());
        }
        if std::time::Instant::now() > self.until {
            return Next::Closed;
        }
        std::thread::sleep(Duration::from_millis(1));
        self.next_id += 1;
        Next::Line(format!(r#"{{"jsonrpc":"2.0","id":{},"method":"ping"}}"#, 1000 + self.next_id).into_bytes())
    }
}

#[test]
fn lifecycle_methods_are_handled_and_the_manifest_follows_the_providers() {
    let answers = run(&[
        Some(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"adminConfig":{},"logLevel":"warn"}}"#),
        Some(r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#),
        Some(r#"{"jsonrpc":"2.0","id":3,"method":"shutdown"}"#),
        Some(r#"{"jsonrpc":"2.0","id":4,"method":"ping"}"#),
    ]);
    assert_eq!(answers.len(), 3, "nothing is read after shutdown: {answers:?}");
    let manifest = &answers[0]["result"];
    assert_eq!(manifest["capabilities"], json!({"metadataProvider": ["series"]}));
    assert_eq!(manifest["protocolVersion"], json!("1.0"));
    assert!(codex_plugin_protocol::Manifest::parse(manifest.clone()).is_ok(), "the host accepts it");
    assert_eq!(answers[1], json!({"jsonrpc": "2.0", "id": 2, "result": "pong"}));
    assert_eq!(answers[2], json!({"jsonrpc": "2.0", "id": 3, "result": null}));
}

#[test]
fn a_request_awaiting_storage_does_not_hold_up_the_others() {
    let answers = run(&[
        Some(r#"{"jsonrpc":"2.0","id":10,"method":"metadata/series/search","params":{"query":"dune"}}"#),
        Some(r#"{"jsonrpc":"2.0","id":11,"method":"ping"}"#),
        Some(r#"{"jsonrpc":"2.0","id":1,"result":{"data":"Dune (1965)"}}"#),
    ]);
    assert_eq!(answers[0], json!({"jsonrpc": "2.0", "id": 1, "method": "storage/get", "params": {"key": "dune"}}));
    assert_eq!(answers[1]["id"], json!(11), "the ping is answered while the search waits");
    assert_eq!(answers[2]["id"], json!(10));
    assert_eq!(answers[2]["result"]["results"][0]["title"], json!("\"Dune (1965)\""));
}

#[test]
fn a_storage_answer_that_never_comes_is_a_clear_error_at_its_deadline() {
    let answers =
        run(&[Some(r#"{"jsonrpc":"2.0","id":"s","method":"metadata/series/search","params":{"query":"k"}}"#), None]);
    let error = &answers[1]["error"];
    assert_eq!(answers[1]["id"], json!("s"));
    assert_eq!(error["code"], json!(-32603));
    assert!(error["message"].as_str().unwrap().contains("`storage/get` got no answer from the host"), "{error}");
}

#[test]
fn storage_refusals_reach_the_author_with_the_hosts_message() {
    let answers = run(&[
        Some(r#"{"jsonrpc":"2.0","id":5,"method":"metadata/series/search","params":{"query":"k"}}"#),
        Some(r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"Invalid storage key: must not be empty"}}"#),
    ]);
    let message = answers[1]["error"]["message"].as_str().unwrap();
    assert!(message.contains("Invalid storage key"), "{message}");
}

#[test]
fn bad_input_gets_the_standard_errors_and_never_panics() {
    let answers = run(&[
        Some("this is not json"),
        Some("{\"jsonrpc\":\"2.0\",\"id\":1,"),
        Some("[1,2,3]"),
        Some(r#"{"jsonrpc":"2.0","id":2,"method":"metadata/series/search","params":{"query":5}}"#),
        Some(r#"{"jsonrpc":"2.0","id":3,"method":"metadata/series/search","params":{}}"#),
        Some(r#"{"jsonrpc":"2.0","id":4,"method":"metadata/series/search","params":{"query":"x","limit":1e400}}"#),
        Some(
            r#"{"jsonrpc":"2.0","id":5,"method":"metadata/series/search","params":{"query":"x","limit":99999999999999999999}}"#,
        ),
        Some(r#"{"jsonrpc":"2.0","id":6,"method":"metadata/book/search","params":{"query":"x"}}"#),
        Some(r#"{"jsonrpc":"2.0","id":7,"method":"no/such/method"}"#),
        Some(r#"{"jsonrpc":"2.0","id":8,"method":"metadata/series/get","params":{"externalId":"42"}}"#),
        Some(r#"{"jsonrpc":"2.0","id":9,"method":"initialize","params":{"credentials":{"key":5},"logLevel":"trace"}}"#),
        Some(r#"{"jsonrpc":"2.0","id":10,"method":"metadata/series/match","params":{"title":"x"}}"#),
        Some(r#"{"jsonrpc":"2.0","id":11,"method":7}"#),
        Some(""),
    ]);
    let codes: Vec<(Value, Option<i64>)> =
        answers.iter().map(|answer| (answer["id"].clone(), answer["error"]["code"].as_i64())).collect();
    assert_eq!(
        codes,
        vec![
            (Value::Null, Some(-32700)),
            (Value::Null, Some(-32700)),
            (Value::Null, Some(-32600)),
            (json!(2), Some(-32602)),
            (json!(3), Some(-32602)),
            (json!(4), Some(-32602)),
            (json!(5), Some(-32602)),
            (json!(6), Some(-32601)),
            (json!(7), Some(-32601)),
            (json!(8), Some(-32002)),
            (json!(9), None),
            (json!(10), Some(-32601)),
            (json!(11), Some(-32601)),
        ]
    );
}

#[test]
fn params_errors_name_the_field_as_the_official_sdk_does() {
    let answers = run(&[Some(r#"{"jsonrpc":"2.0","id":1,"method":"metadata/series/search","params":{"query":5}}"#)]);
    assert_eq!(answers[0]["error"]["data"], json!({"field": "query"}));
    assert!(answers[0]["error"]["message"].as_str().unwrap().starts_with("Invalid params:"));
}

#[test]
fn initialize_is_lenient_like_the_official_sdk() {
    let answers = run(&[
        Some(r#"{"jsonrpc":"2.0","id":1,"method":"initialize"}"#),
        Some(
            r#"{"jsonrpc":"2.0","id":2,"method":"initialize","params":{"adminConfig":{"maxResults":3},"credentials":{"token":"t","bad":5},"logLevel":"trace"}}"#,
        ),
    ]);
    assert_eq!(answers[0]["result"]["name"], json!("test-sdk"));
    assert_eq!(answers[1]["result"]["name"], json!("test-sdk"));
}

#[test]
fn requests_without_an_id_are_answered_with_a_null_id_and_shutdown_still_stops() {
    let answers = run(&[
        Some(r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#),
        Some(r#"{"jsonrpc":"2.0","method":"ping"}"#),
        Some(r#"{"jsonrpc":"2.0","method":"shutdown"}"#),
        Some(r#"{"jsonrpc":"2.0","id":9,"method":"ping"}"#),
    ]);
    assert_eq!(answers.len(), 3, "nothing after shutdown: {answers:?}");
    assert_eq!(answers[0], json!({"jsonrpc": "2.0", "id": null, "result": "pong"}));
    assert_eq!(answers[2]["result"], Value::Null);
}

#[test]
fn a_storage_deadline_fires_while_the_host_keeps_talking() {
    let busy = Busy {
        first: Some(r#"{"jsonrpc":"2.0","id":"s","method":"metadata/series/search","params":{"query":"k"}}"#.into()),
        until: std::time::Instant::now() + Duration::from_millis(300),
        next_id: 0,
    };
    let answers = serve(test_plugin(), busy);
    let search = answers.iter().find(|answer| answer["id"] == json!("s")).expect("the search was answered");
    let message = search["error"]["message"].as_str().unwrap();
    assert!(message.contains("got no answer from the host within"), "{message}");
}

/// Panics in `get`.
struct Fragile;

impl SeriesProvider for Fragile {
    async fn search(&self, _ctx: &Context, _params: SeriesSearchParams) -> Result<SearchResponse> {
        Ok(SearchResponse { results: vec![], next_cursor: None })
    }

    async fn get(&self, _ctx: &Context, params: GetParams) -> Result<SeriesMetadata> {
        let index: usize = params.external_id.parse().unwrap_or(usize::MAX);
        let shelf = [1, 2, 3];
        panic!("index {index} is past the shelf of {}", shelf.len())
    }
}

#[test]
fn a_panicking_method_fails_its_request_and_the_plugin_keeps_serving() {
    let plugin = Plugin::new(PluginInfo::new("fragile", "Fragile", "1.0.0", "Panics")).series(Fragile);
    let script = Script(
        [
            r#"{"jsonrpc":"2.0","id":1,"method":"metadata/series/get","params":{"externalId":"9"}}"#,
            r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#,
        ]
        .iter()
        .map(|line| Some(line.to_string()))
        .collect(),
    );
    let answers = serve(plugin, script);
    assert_eq!(answers[0]["error"]["code"], json!(-32603));
    assert!(answers[0]["error"]["message"].as_str().unwrap().contains("index 9 is past the shelf"), "{answers:?}");
    assert_eq!(answers[1]["result"], json!("pong"));
}

struct Feed;

impl ReleaseProvider for Feed {
    fn capability(&self) -> codex_plugin_protocol::manifest::ReleaseSourceCapability {
        serde_json::from_value(json!({"kinds": ["rss-series"], "requiresExternalIds": ["mangaupdates"]})).unwrap()
    }

    async fn poll(&self, _ctx: &Context, params: PollParams) -> Result<PollResponse> {
        Ok(PollResponse {
            etag: params.etag.map(|etag| format!("{etag}+1")),
            parsed: Some(3),
            ..PollResponse::default()
        })
    }
}

#[test]
fn a_release_provider_declares_its_source_and_answers_polls() {
    let plugin = Plugin::new(PluginInfo::new("test-releases", "Test", "1.0.0", "SDK test plugin")).releases(Feed);
    let answers = serve(
        plugin,
        Script(
            [
                r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#,
                r#"{"jsonrpc":"2.0","id":2,"method":"releases/poll","params":{"sourceId":"s1","etag":"e"}}"#,
                r#"{"jsonrpc":"2.0","id":3,"method":"releases/poll","params":{"etag":"no source"}}"#,
            ]
            .into_iter()
            .map(|line| Some(line.to_owned()))
            .collect(),
        ),
    );
    let capability = &answers[0]["result"]["capabilities"]["releaseSource"];
    assert_eq!(capability["kinds"], json!(["rss-series"]));
    assert_eq!(capability["canAnnounceChapters"], json!(true));
    assert_eq!(answers[1]["result"], json!({"candidates": [], "etag": "e+1", "parsed": 3}));
    assert_eq!(answers[2]["error"]["code"], json!(-32602), "{}", answers[2]);
}
