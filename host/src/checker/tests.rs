//! The run over a scripted plugin: friendly, dying, hanging, and one whose writes are only
//! sent when allowed.

use super::*;
use crate::conformance::report::Outcome;
use serde_json::json;
use std::sync::{Arc, Mutex};

/// What the scripted plugin does.
#[derive(Default, Clone, Copy)]
struct Script {
    /// It exits when asked this method.
    dies_on: Option<&'static str>,
    /// It stops answering from this method on.
    hangs_on: Option<&'static str>,
}

struct Scripted {
    script: Script,
    ended: Mutex<Option<String>>,
    hung: Mutex<bool>,
    sent: Mutex<Vec<String>>,
}

fn answer(method: &str, params: Option<&Value>) -> Answered {
    let id = params.and_then(|params| params.get("externalId"));
    match (method, id) {
        ("ping", _) => Answered::Result(json!("pong")),
        ("metadata/series/search", _) => {
            Answered::Result(json!({"results": [{"externalId": "op-1", "title": "One Piece", "relevanceScore": 1.0}]}))
        }
        ("metadata/series/get", Some(Value::String(id))) if id == probes::UNKNOWN_ID => {
            Answered::Error { code: -32002, message: "not found".into(), data: None }
        }
        ("metadata/series/get", Some(Value::String(id))) => {
            Answered::Result(json!({"externalId": id, "externalUrl": "https://e/op", "title": "One Piece"}))
        }
        ("metadata/series/get", _) => {
            Answered::Error { code: -32602, message: "externalId must be a string".into(), data: None }
        }
        ("metadata/series/match", _) => Answered::Result(json!({"match": null, "confidence": 0, "alternatives": []})),
        ("sync/getUserInfo", _) => Answered::Result(json!({"externalId": "u", "username": "ann"})),
        ("sync/pullProgress", _) => Answered::Result(json!({"entries": [], "hasMore": false})),
        ("sync/status", _) => Answered::Result(json!({"pendingPush": 0, "pendingPull": 0})),
        ("sync/pushProgress", _) => Answered::Result(json!({"success": [], "failed": []})),
        _ => Answered::Error { code: -32601, message: format!("Method not found: {method}"), data: None },
    }
}

impl Scripted {
    fn respond(&self, method: &'static str, params: Option<&Value>) -> Exchange {
        self.sent.lock().unwrap().push(method.to_owned());
        let latency = Duration::from_millis(2);
        if let Some(why) = self.ended.lock().unwrap().clone() {
            return Exchange { answered: Answered::Ended(why), latency };
        }
        if self.script.dies_on == Some(method) {
            *self.ended.lock().unwrap() = Some("exited with status 1".into());
            return Exchange { answered: Answered::Ended("exited with status 1".into()), latency };
        }
        if self.script.hangs_on == Some(method) || *self.hung.lock().unwrap() {
            *self.hung.lock().unwrap() = true;
            return Exchange { answered: Answered::TimedOut(Duration::from_secs(2)), latency: Duration::from_secs(2) };
        }
        Exchange { answered: answer(method, params), latency }
    }
}

fn manifest(capabilities: Value) -> (Manifest, Value) {
    let answer = json!({
        "name": "scripted", "displayName": "Scripted", "version": "1.0.0", "description": "A scripted plugin",
        "protocolVersion": "1.0", "capabilities": capabilities
    });
    (serde_json::from_value(answer.clone()).unwrap(), answer)
}

async fn check(script: Script, capabilities: Value, options: Options) -> (Vec<CheckResult>, Vec<String>) {
    let target = Arc::new(Scripted { script, ended: Mutex::default(), hung: Mutex::default(), sent: Mutex::default() });
    let (manifest, answer) = manifest(capabilities);
    let shared = Box::new(Shared(target.clone()));
    let results = run(shared, &manifest, &answer, options).await;
    let sent = target.sent.lock().unwrap().clone();
    (results, sent)
}

/// The scripted plugin, kept by the test after the run took it.
struct Shared(Arc<Scripted>);

impl Target for Shared {
    fn call<'a>(&'a self, method: &'static str, params: Option<&'a Value>) -> BoxFuture<'a, Exchange> {
        let exchange = self.0.respond(method, params);
        Box::pin(async move { exchange })
    }
    fn ended(&self) -> Option<String> {
        self.0.ended.lock().unwrap().clone()
    }
    fn refuse_storage_writes(&self, _refusing: bool) {}
    fn storage_writes(&self) -> StorageWrites {
        StorageWrites::default()
    }
    fn release_sources(&self) -> Vec<RegisteredSource> {
        Vec::new()
    }
    fn recorded_candidates(&self) -> Vec<Value> {
        Vec::new()
    }
    fn transport(&self) -> &'static str {
        "wasm"
    }
    fn shutdown(self: Box<Self>) -> BoxFuture<'static, Stop> {
        Box::pin(async move {
            Stop {
                answered: Ok(()),
                exit: ExitStep::WithinGrace,
                grace: Duration::from_secs(5),
                wire: WireSnapshot::default(),
            }
        })
    }
    fn kill(self: Box<Self>) -> BoxFuture<'static, WireSnapshot> {
        Box::pin(async { WireSnapshot::default() })
    }
}

fn outcome<'a>(results: &'a [CheckResult], id: &str) -> &'a CheckResult {
    results.iter().find(|result| result.id == id).unwrap_or_else(|| panic!("no check `{id}`"))
}

#[tokio::test]
async fn a_friendly_plugin_passes_every_check_that_applies() {
    let (results, _) = check(Script::default(), json!({"metadataProvider": ["series"]}), Options::default()).await;
    for result in &results {
        let expected = if result.id == "storage.quota-full" { Outcome::NotRun } else { Outcome::Pass };
        assert_eq!(result.outcome, expected, "{result:?}");
    }
    assert_eq!(outcome(&results, "series.get").sent.as_deref(), Some("metadata/series/get {\"externalId\":\"op-1\"}"));
    assert!(outcome(&results, "lifecycle.bad-params").note.as_deref().unwrap().contains("-32602"));
}

#[tokio::test]
async fn a_plugin_that_dies_mid_check_gets_a_whole_report() {
    let script = Script { dies_on: Some("metadata/series/get"), ..Script::default() };
    let (results, _) = check(script, json!({"metadataProvider": ["series"]}), Options::default()).await;
    let (all, _) = check(Script::default(), json!({"metadataProvider": ["series"]}), Options::default()).await;
    let ids = |results: &[CheckResult]| results.iter().map(|result| result.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&results), ids(&all), "every check is in the report");
    assert_eq!(outcome(&results, "series.get").outcome, Outcome::Fail);
    for later in
        ["series.get.unknown", "series.match", "lifecycle.unknown-method", "lifecycle.shutdown", "lifecycle.leftovers"]
    {
        let result = outcome(&results, later);
        assert_eq!(result.outcome, Outcome::NotRun, "{later}");
        assert!(result.not_run.as_deref().unwrap().contains("ended during `series.get`"), "{result:?}");
    }
    assert_eq!(
        outcome(&results, "lifecycle.leftovers").not_run.as_deref().map(|why| why.contains("ended during")),
        Some(true)
    );
}

#[tokio::test]
async fn a_plugin_that_hangs_gets_a_whole_report_and_its_timeouts_fail() {
    let script = Script { hangs_on: Some("metadata/series/search"), ..Script::default() };
    let (results, sent) = check(script, json!({"metadataProvider": ["series"]}), Options::default()).await;
    assert_eq!(outcome(&results, "series.search").outcome, Outcome::Fail);
    assert_eq!(outcome(&results, "timing").outcome, Outcome::Fail);
    let later = outcome(&results, "series.search.empty");
    assert!(later.not_run.as_deref().unwrap().contains("stopped answering"), "{later:?}");
    assert_eq!(sent.iter().filter(|method| *method == "metadata/series/search").count(), 1, "{sent:?}");
    assert_eq!(sent.last().map(String::as_str), Some("ping"), "one ping to tell, then nothing: {sent:?}");
}

#[tokio::test]
async fn writes_are_sent_only_when_allowed() {
    let sync = json!({"userReadSync": true});
    let (results, sent) = check(Script::default(), sync.clone(), Options::default()).await;
    let push = outcome(&results, "sync.push");
    assert_eq!(push.outcome, Outcome::NotRun);
    assert!(push.not_run.as_deref().unwrap().contains("--allow-writes"));
    assert!(!sent.contains(&"sync/pushProgress".to_owned()));
    let (results, sent) = check(Script::default(), sync, Options { allow_writes: true, ..Options::default() }).await;
    assert_eq!(outcome(&results, "sync.push").outcome, Outcome::Pass);
    assert!(sent.contains(&"sync/pushProgress".to_owned()));
    assert_eq!(outcome(&results, "lifecycle.bad-params").outcome, Outcome::NotRun);
}
