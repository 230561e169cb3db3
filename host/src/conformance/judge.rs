//! How one answer is judged: against what its probe expected (see [`Expect`]), the strict
//! shape of the method's result ([`super::shapes`]), the protocol's rules that a shape
//! cannot say (a relevance score within 0–1, volume and chapter counts that are not the same
//! number twice, a match in its wrapped shape), and error codes as the SDK defines them.

use serde_json::Value;
use std::time::Duration;

use super::Finding;
use super::probes::{Expect, Probe};
use super::shapes::{self, describe};
use crate::protocol::{ErrorCode, HostMethod};

/// A latency above this is a warning.
pub const SLOW: Duration = Duration::from_secs(5);

/// How a request was answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Answered {
    Result(Value),
    Error {
        code: i64,
        message: String,
        data: Option<Value>,
    },
    /// An answer the host could not read (an error object without a code, say).
    Malformed(String),
    /// No answer within the deadline.
    TimedOut(Duration),
    /// The plugin ended (exited, trapped, broke the protocol) before it answered.
    Ended(String),
}

/// A request and its answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Exchange {
    pub answered: Answered,
    pub latency: Duration,
}

/// What the check ran under, for advice.
#[derive(Debug, Clone, Copy, Default)]
pub struct Conditions {
    /// The plugin had no network.
    pub network_denied: bool,
}

/// What is wrong with `exchange`, the answer to `probe`, and a note for a pass worth one.
pub fn judge(probe: &Probe, exchange: &Exchange, conditions: Conditions) -> (Vec<Finding>, Option<String>) {
    let mut found = Vec::new();
    let mut note = None;
    let method = probe.host_method();
    match &exchange.answered {
        Answered::Result(result) => {
            found.extend(result_findings(probe, method, result));
        }
        Answered::Error { code, message, data } => {
            found.extend(error_code_findings(*code, data.as_ref()));
            let (finding, passed) = error_verdict(probe, method, *code, message, conditions);
            found.extend(finding);
            note = passed;
        }
        Answered::Malformed(why) => found.push(Finding::fail(
            "answer",
            format!("an answer the host cannot read: {why}"),
            "answer with `result`, or with `error: {code, message}` where code is a whole number",
        )),
        Answered::TimedOut(after) => found.push(Finding::fail(
            "answer",
            format!("no answer within {} s", after.as_secs_f64()),
            "answer every request, with an error if need be; a slow upstream needs its own shorter timeout in the plugin",
        )),
        Answered::Ended(why) => found.push(Finding::fail(
            "plugin",
            format!("the plugin ended before it answered: {why}"),
            "catch what the handler throws and answer with an error; never exit while a request is pending",
        )),
    }
    // Latency is the timing check's, over every answer.
    (found, note)
}

fn result_findings(probe: &Probe, method: Option<HostMethod>, result: &Value) -> Vec<Finding> {
    let mut found = Vec::new();
    match probe.expect {
        Expect::MethodNotFound => {
            found.push(Finding::fail(
                "result",
                "a method the plugin does not have was answered with a result",
                "answer a method you do not implement with error -32601 (`Method not found`)",
            ));
            return found;
        }
        Expect::InvalidParams => {
            // What it made of params it should have refused is not an answer to hold to a shape.
            found.push(Finding::warn(
                "result",
                "params of the wrong type were taken as good ones",
                "check the params and answer -32602 (`Invalid params`) naming the field, as the SDK's validators do",
            ));
            return found;
        }
        Expect::NotFound => found.push(Finding::warn(
            "result",
            "an id that does not exist was answered with a record",
            "answer NotFound (-32002) when the provider does not know the id: Codex would store this record as the item",
        )),
        Expect::Answer | Expect::Survive => {}
    }
    let Some(method) = method else { return found };
    if matches!(method, HostMethod::SeriesMatch | HostMethod::BookMatch) && is_bare_match(result) {
        found.push(Finding::warn(
            "result",
            "a match in the bare shape (the result itself, or null)",
            "answer `{\"match\": …, \"confidence\": 0.0-1.0, \"alternatives\": […]}`: the bare shape has no confidence, so Codex cannot tell a sure match from a guess",
        ));
        if !result.is_null() {
            found.extend(shapes::findings(result, &shapes::SEARCH_RESULT, "result"));
        }
    } else {
        found.extend(shapes::findings(result, shapes::of(method), "result"));
    }
    found.extend(rules(method, result));
    found
}

/// The protocol's rules a shape cannot say.
fn rules(method: HostMethod, result: &Value) -> Vec<Finding> {
    let mut found = Vec::new();
    let mut scored = |path: &str, score: Option<&Value>, what: &str| {
        if let Some(score) = score.and_then(Value::as_f64)
            && !(0.0..=1.0).contains(&score)
        {
            found.push(Finding::fail(
                path,
                format!("{what} {score} is outside 0–1"),
                format!("send {what} between 0 and 1: Codex compares it to thresholds in that range"),
            ));
        }
    };
    match method {
        HostMethod::SeriesSearch | HostMethod::BookSearch => {
            for item in result.get("results").and_then(Value::as_array).into_iter().flatten() {
                scored("result.results[].relevanceScore", item.get("relevanceScore"), "a relevance score");
            }
        }
        HostMethod::SeriesMatch | HostMethod::BookMatch if !is_bare_match(result) => {
            scored("result.confidence", result.get("confidence"), "a confidence");
            let candidates = result
                .get("match")
                .into_iter()
                .chain(result.get("alternatives").and_then(Value::as_array).into_iter().flatten());
            for candidate in candidates {
                scored("result.match.relevanceScore", candidate.get("relevanceScore"), "a relevance score");
            }
        }
        HostMethod::SeriesGet => {
            let volumes = result.get("totalVolumeCount").and_then(Value::as_f64);
            let chapters = result.get("totalChapterCount").and_then(Value::as_f64);
            if let (Some(volumes), Some(chapters)) = (volumes, chapters)
                && volumes == chapters
            {
                found.push(Finding::warn(
                    "result.totalChapterCount",
                    format!("the volume and chapter counts are both {volumes}"),
                    "fill each count only from what the provider counts: one number copied into both makes Codex show the wrong one",
                ));
            }
        }
        _ => {}
    }
    found.dedup();
    found
}

fn is_bare_match(result: &Value) -> bool {
    result.is_null() || result.get("match").is_none()
}

/// Codes as the SDK defines them; a rate limit with its retry delay.
fn error_code_findings(code: i64, data: Option<&Value>) -> Vec<Finding> {
    let mut found = Vec::new();
    match ErrorCode::from_code(code) {
        ErrorCode::Other(_) => found.push(Finding::warn(
            "error.code",
            format!("{code} is not a code the SDK defines"),
            "use the SDK's codes: -32001 rate limited, -32002 not found, -32003 auth failed, -32004 upstream API error, -32005 configuration error, -32602 invalid params",
        )),
        ErrorCode::RateLimited
            if data.and_then(|data| data.get("retryAfterSeconds")).and_then(Value::as_f64).is_none() =>
        {
            found.push(Finding::warn(
                "error.data.retryAfterSeconds",
                "a rate limit without `retryAfterSeconds`",
                "say how long to wait (`RateLimitError(seconds)`): without it Codex waits 60 s",
            ));
        }
        _ => {}
    }
    found
}

/// What an error answer means for the probe: a finding, or a pass with a note.
fn error_verdict(
    probe: &Probe,
    method: Option<HostMethod>,
    code: i64,
    message: &str,
    conditions: Conditions,
) -> (Option<Finding>, Option<String>) {
    let kind = ErrorCode::from_code(code);
    let answered = format!("answered {code} ({}): {message}", kind.name());
    let optional = method.is_some_and(HostMethod::is_optional);
    let network_hint = if conditions.network_denied && matches!(kind, ErrorCode::InternalError | ErrorCode::ApiError) {
        " (this check runs without network: if the plugin needs it, run `check --allow-network`)"
    } else {
        ""
    };
    let expected = |wanted: ErrorCode| -> (Option<Finding>, Option<String>) {
        if kind == wanted {
            return (None, Some(answered.clone()));
        }
        let fix = format!("answer {} ({})", wanted.code(), wanted.name());
        (Some(Finding::warn("error", answered.clone(), fix)), None)
    };
    match probe.expect {
        Expect::MethodNotFound => expected(ErrorCode::MethodNotFound),
        Expect::InvalidParams => expected(ErrorCode::InvalidParams),
        Expect::NotFound => expected(ErrorCode::NotFound),
        Expect::Survive if kind == ErrorCode::InternalError => (
            Some(Finding::warn(
                "error",
                format!("{answered}{network_hint}"),
                "check the input and answer -32602 (invalid params) or an empty result: an internal error counts against the plugin's health",
            )),
            None,
        ),
        Expect::Survive => (None, Some(answered)),
        Expect::Answer => match kind {
            ErrorCode::MethodNotFound if optional => (None, Some(format!("not supported ({answered})"))),
            ErrorCode::MethodNotFound => {
                let (why, fix) = match method.and_then(HostMethod::capability) {
                    Some(_) => (
                        "the manifest declares the capability",
                        "implement the method, or take the capability out of the manifest",
                    ),
                    None => ("every plugin must answer it", "answer it (the SDK does)"),
                };
                (Some(Finding::fail("error", format!("{answered}, but {why}"), fix)), None)
            }
            // Taking the network away may be what broke it: then it is only a warning.
            ErrorCode::InternalError if conditions.network_denied => (
                Some(Finding::warn(
                    "error",
                    format!("{answered}{network_hint}"),
                    "answer a plugin error code (-32004 for an upstream that failed) rather than an internal error",
                )),
                None,
            ),
            ErrorCode::InternalError | ErrorCode::InvalidParams => (
                Some(Finding::fail(
                    "error",
                    format!("{answered}{network_hint}"),
                    "these are the params Codex sends: handle them, and answer a plugin error code when the upstream fails",
                )),
                None,
            ),
            _ => (
                Some(Finding::warn(
                    "error",
                    format!("{answered}{network_hint}"),
                    "its answer could not be checked: give the configuration or credentials it needs (`--admin-config`, `--user-config`, `--credentials-file`)",
                )),
                None,
            ),
        },
    }
}

/// An error answer, shown.
pub fn shown_error(code: i64, message: &str, data: Option<&Value>) -> String {
    match data {
        Some(data) => format!("error {code}: {message} (data: {})", describe(data)),
        None => format!("error {code}: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::probes::{self, Params};
    use crate::conformance::{Verdict, verdict_of as verdict};
    use serde_json::json;

    fn probe(method: HostMethod, expect: Expect) -> Probe {
        Probe {
            id: "t",
            title: "t",
            why: "w",
            method: method.name(),
            params: Params::Fixed(None),
            expect,
            writes: false,
        }
    }

    fn answer(answered: Answered) -> Exchange {
        Exchange { answered, latency: Duration::from_millis(3) }
    }

    fn error(code: i64) -> Answered {
        Answered::Error { code, message: "m".into(), data: None }
    }

    fn verdict_of_answer(probe: &Probe, answered: Answered) -> Verdict {
        verdict(&judge(probe, &answer(answered), Conditions::default()).0)
    }

    #[test]
    fn realistic_answers_are_held_to_their_shape_and_rules() {
        let search = probe(HostMethod::SeriesSearch, Expect::Answer);
        let good = json!({"results": [{"externalId": "1", "title": "A", "relevanceScore": 0.9}]});
        assert_eq!(verdict_of_answer(&search, Answered::Result(good)), Verdict::Pass);
        let scored = json!({"results": [{"externalId": "1", "title": "A", "relevanceScore": 87}]});
        let (found, _) = judge(&search, &answer(Answered::Result(scored)), Conditions::default());
        assert_eq!(found[0].subject, "result.results[].relevanceScore");
        assert_eq!(verdict(&found), Verdict::Fail);
        let get = probe(HostMethod::SeriesGet, Expect::Answer);
        let same = json!({"externalId": "1", "externalUrl": "u", "totalVolumeCount": 12, "totalChapterCount": 12});
        assert_eq!(verdict_of_answer(&get, Answered::Result(same)), Verdict::Warn);
        let matched = probe(HostMethod::SeriesMatch, Expect::Answer);
        let bare = json!({"externalId": "1", "title": "A"});
        let (found, _) = judge(&matched, &answer(Answered::Result(bare)), Conditions::default());
        assert!(found[0].problem.contains("bare shape"), "{found:?}");
        let wrapped = json!({"match": {"externalId": "1", "title": "A"}, "confidence": 1.4, "alternatives": []});
        assert_eq!(verdict_of_answer(&matched, Answered::Result(wrapped)), Verdict::Fail);
    }

    #[test]
    fn errors_are_judged_by_what_was_expected() {
        let search = probe(HostMethod::SeriesSearch, Expect::Answer);
        assert_eq!(verdict_of_answer(&search, error(-32603)), Verdict::Fail);
        assert_eq!(verdict_of_answer(&search, error(-32005)), Verdict::Warn, "needs configuration");
        assert_eq!(verdict_of_answer(&search, error(-32601)), Verdict::Fail, "a required method");
        let matched = probe(HostMethod::SeriesMatch, Expect::Answer);
        let (found, note) = judge(&matched, &answer(error(-32601)), Conditions::default());
        assert_eq!((found, note.unwrap().starts_with("not supported")), (Vec::new(), true));
        let unknown = probes::unknown_method();
        assert_eq!(verdict_of_answer(&unknown, error(-32601)), Verdict::Pass);
        assert_eq!(verdict_of_answer(&unknown, error(-32603)), Verdict::Warn);
        assert_eq!(verdict_of_answer(&unknown, Answered::Result(json!("pong"))), Verdict::Fail);
        let missing = probe(HostMethod::SeriesGet, Expect::NotFound);
        assert_eq!(verdict_of_answer(&missing, error(-32002)), Verdict::Pass);
        assert_eq!(
            verdict_of_answer(&missing, Answered::Result(json!({"externalId": "x", "externalUrl": "u"}))),
            Verdict::Warn
        );
        let edge = probe(HostMethod::SeriesSearch, Expect::Survive);
        assert_eq!(verdict_of_answer(&edge, error(-32602)), Verdict::Pass);
        assert_eq!(verdict_of_answer(&edge, error(-32603)), Verdict::Warn);
        assert_eq!(verdict_of_answer(&edge, Answered::Ended("exited with status 1".into())), Verdict::Fail);
        assert_eq!(verdict_of_answer(&edge, Answered::TimedOut(Duration::from_secs(2))), Verdict::Fail);
    }

    #[test]
    fn codes_outside_the_sdk_and_rate_limits_without_a_delay_warn() {
        let search = probe(HostMethod::SeriesSearch, Expect::Survive);
        let (found, _) = judge(&search, &answer(error(-1)), Conditions::default());
        assert_eq!(found[0].subject, "error.code");
        let (found, _) = judge(&search, &answer(error(-32001)), Conditions::default());
        assert_eq!(found[0].subject, "error.data.retryAfterSeconds");
        let limited =
            Answered::Error { code: -32001, message: "slow down".into(), data: Some(json!({"retryAfterSeconds": 2})) };
        assert_eq!(judge(&search, &answer(limited), Conditions::default()).0, Vec::new());
        let realistic = probe(HostMethod::SeriesSearch, Expect::Answer);
        let denied = Conditions { network_denied: true };
        assert_eq!(verdict(&judge(&realistic, &answer(error(-32603)), denied).0), Verdict::Warn, "maybe the network");
    }
}
