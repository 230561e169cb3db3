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
        let result = SearchResult {
            external_id: params.query,
            title,
            alternate_titles: vec![],
            year: None,
            cover_url: None,
            relevance_score: None,
            preview: None,
        };
        Ok(SearchResponse { results: vec![result], next_cursor: None })
    }

    async fn get(&self, _ctx: &Context, params: GetParams) -> Result<SeriesMetadata> {
        Err(PluginError::NotFound(format!("no series {}", params.external_id)))
    }
}

fn run(lines: &[Option<&str>]) -> Vec<Value> {
    let output = Captured::default();
    let plugin = Plugin::new(PluginInfo::new("test-sdk", "Test", "1.0.0", "SDK test plugin"))
        .series(Remembering)
        .host_timeout(Duration::from_millis(20));
    let script = Script(lines.iter().map(|line| line.map(str::to_owned)).collect());
    plugin.serve(script, Box::new(output.clone()));
    let text = String::from_utf8(output.0.borrow().clone()).unwrap();
    text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
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
        Some(r#"{"jsonrpc":"2.0","id":9,"method":"initialize","params":{"credentials":{"key":5}}}"#),
        Some(r#"{"jsonrpc":"2.0","id":10,"method":"metadata/series/match","params":{"title":"x"}}"#),
        Some(r#"{"jsonrpc":"2.0","id":11,"method":7}"#),
        Some(""),
    ]);
    let codes: Vec<(Value, i64)> =
        answers.iter().map(|answer| (answer["id"].clone(), answer["error"]["code"].as_i64().unwrap())).collect();
    assert_eq!(
        codes,
        vec![
            (Value::Null, -32700),
            (Value::Null, -32700),
            (Value::Null, -32600),
            (json!(2), -32602),
            (json!(3), -32602),
            (json!(4), -32602),
            (json!(5), -32602),
            (json!(6), -32601),
            (json!(7), -32601),
            (json!(8), -32002),
            (json!(9), -32602),
            (json!(10), -32601),
            (json!(11), -32600),
        ]
    );
}
