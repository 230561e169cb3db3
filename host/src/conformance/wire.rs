//! Protocol hygiene, judged over everything the plugin wrote during the check: stdout
//! carries JSON-RPC and nothing else, each answer answers a request the host sent and only
//! once, no notifications, no requests the host does not serve; each stderr line carries a
//! level.

use serde_json::Value;
use std::collections::{HashMap, HashSet};

use super::Finding;
use super::report::{CheckResult, cut};
use crate::protocol::types::releases::RELEASE_HOST_METHODS;
use crate::transport::recorder::{Stream, WireLine, WireSnapshot};
use crate::transport::stderr::parse_token;

/// Examples shown per finding.
const EXAMPLES: usize = 3;
/// Characters of a line shown.
const SHOWN: usize = 120;

/// The hygiene checks: `hygiene.stdout`, `hygiene.ids`, `hygiene.notifications`,
/// `hygiene.stderr`.
pub fn hygiene(wire: &WireSnapshot) -> Vec<CheckResult> {
    let lines = &wire.lines;
    let mut sent_ids = HashSet::new();
    let mut answered = HashMap::new();
    let (mut junk, mut unknown_ids, mut twice, mut notifications, mut strange_requests) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut unleveled = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let number = index + 1;
        match line.stream {
            Stream::Sent => {
                if let Some(Message::Request { id: Some(id), .. }) = classify(line) {
                    sent_ids.insert(id);
                }
            }
            Stream::Stdout => match classify(line) {
                Some(Message::Answer { id }) => {
                    if !sent_ids.contains(&id) {
                        unknown_ids.push(format!("{} (id {id})", shown(line)));
                    } else if answered.insert(id.clone(), number).is_some() {
                        twice.push(format!("{} (id {id})", shown(line)));
                    }
                }
                Some(Message::Request { id: None, method }) => {
                    notifications.push(format!("`{method}`: {}", shown(line)))
                }
                Some(Message::Request { id: Some(_), method }) => {
                    if !method.starts_with("storage/") && !RELEASE_HOST_METHODS.contains(&method.as_str()) {
                        strange_requests.push(format!("`{method}`"));
                    }
                }
                Some(Message::Unjudged) => {}
                None => junk.push(shown(line)),
            },
            Stream::Stderr => {
                let text = line.text.trim();
                // Blank lines, the launcher's own lines and a stack trace (the lines of the
                // entry logged above it: the error's name, its frames) carry no level.
                if text.is_empty() || text.starts_with("sandbox: ") || is_stack_trace(&line.text) {
                    continue;
                }
                if parse_token(text).0.is_none() {
                    unleveled.push(shown(line));
                }
            }
        }
    }
    let unjudged =
        (wire.dropped > 0).then(|| format!("{} lines past what a check keeps were counted, not judged", wire.dropped));
    vec![
        CheckResult::judged(
            "hygiene.stdout",
            "stdout carries JSON-RPC and nothing else",
            "stdout is the protocol's channel: a stray `console.log` is skipped with a warning at best, and a line that happens to parse is taken for a message",
            many(
                junk,
                "a line on stdout that is not JSON-RPC",
                "write logs to stderr (the SDK's logger does): stdout is for JSON-RPC messages only",
                true,
            ),
        )
        .with_note(unjudged.clone()),
        CheckResult::judged(
            "hygiene.ids",
            "each answer carries the id of a request, once",
            "the host matches answers to requests by id: an answer with another id is dropped and its request times out; one sent twice is noise at best",
            [
                many(
                    unknown_ids,
                    "an answer to no request the host sent",
                    "answer with the id of the request, as it came (a number or a string)",
                    true,
                ),
                many(twice, "a request answered twice", "answer each request exactly once", true),
            ]
            .concat(),
        ),
        CheckResult::judged(
            "hygiene.notifications",
            "no notifications, and only requests the host serves",
            "the host neither reads notifications nor serves methods other than storage/* and a release source's releases/*: they are dropped or refused",
            [
                many(
                    notifications,
                    "a notification (a message without an id)",
                    "send nothing the host did not ask for; to log, write to stderr",
                    false,
                ),
                many(
                    strange_requests,
                    "a request for a method the host does not serve",
                    "ask the host only for storage/* (and releases/* from a release source)",
                    false,
                ),
            ]
            .concat(),
        ),
        CheckResult::judged(
            "hygiene.stderr",
            "each stderr line carries a level",
            "the host logs each line at the level it carries ([ERROR], [WARN], WARN:, …); a line without one is logged as info, so errors hide among them",
            many(
                unleveled,
                "a stderr line without a level",
                "start each line with a level (`[ERROR]`, `[WARN]`, `[INFO]`, `[DEBUG]`), as the SDK's logger does",
                false,
            ),
        )
        .with_note(unjudged),
    ]
}

/// Whether a stderr line is part of a stack trace: a frame (`    at f (file:1:2)`, any
/// indented line), an error's name and message (`TypeError: fetch failed`), a cause.
fn is_stack_trace(line: &str) -> bool {
    static ERROR_NAME: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"^([A-Z]\w*(Error|Exception)(: |$)|Caused by|\[cause\])").expect("a valid regex")
    });
    line.starts_with(char::is_whitespace) || line.trim_start().starts_with("at ") || ERROR_NAME.is_match(line)
}

/// One finding for a list of like problems: how many, and the first few.
fn many(examples: Vec<String>, problem: &str, fix: &str, fails: bool) -> Vec<Finding> {
    if examples.is_empty() {
        return Vec::new();
    }
    let count = examples.len();
    let shown: Vec<_> = examples.into_iter().take(EXAMPLES).collect();
    let subject = if count == 1 { "1 line".to_owned() } else { format!("{count} lines") };
    let problem = format!("{problem}: {}", shown.join("; "));
    vec![if fails { Finding::fail(subject, problem, fix) } else { Finding::warn(subject, problem, fix) }]
}

fn shown(line: &WireLine) -> String {
    let text = format!("{:?}", cut(&line.text, SHOWN));
    if line.cut { format!("{text} ({} bytes)", line.bytes) } else { text }
}

/// A stdout or stdin line, as JSON-RPC sees it.
#[derive(Debug, PartialEq)]
enum Message {
    /// An answer, with its id written as JSON (`7`, `"a"`, `null`).
    Answer { id: String },
    /// A request; without an id, a notification.
    Request { id: Option<String>, method: String },
    /// A line too long to have been kept whole, which may be JSON: not judged.
    Unjudged,
}

/// What a line is; `None` when it is not JSON-RPC.
fn classify(line: &WireLine) -> Option<Message> {
    if line.cut {
        return line.text.trim_start().starts_with('{').then_some(Message::Unjudged);
    }
    let value: Value = serde_json::from_str(&line.text).ok()?;
    let object = value.as_object()?;
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return None;
    }
    let id = object.get("id").map(Value::to_string);
    match object.get("method") {
        Some(Value::String(method)) => Some(Message::Request { id, method: method.clone() }),
        Some(_) => None,
        None if object.contains_key("result") || object.contains_key("error") => {
            Some(Message::Answer { id: id.unwrap_or_else(|| "null".into()) })
        }
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::report::Outcome;
    use std::time::Duration;

    fn line(stream: Stream, text: &str) -> WireLine {
        WireLine { stream, at: Duration::ZERO, text: text.into(), bytes: text.len(), cut: false }
    }

    fn wire(lines: &[WireLine]) -> WireSnapshot {
        WireSnapshot { lines: lines.to_vec(), ..WireSnapshot::default() }
    }

    fn outcomes(lines: &[WireLine]) -> Vec<(String, Outcome)> {
        hygiene(&wire(lines)).into_iter().map(|check| (check.id, check.outcome)).collect()
    }

    #[test]
    fn a_clean_conversation_passes() {
        let lines = [
            line(Stream::Sent, r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#),
            line(Stream::Stderr, "2026-01-01T00:00:00Z [INFO] [p] starting"),
            line(Stream::Stdout, r#"{"jsonrpc":"2.0","id":1,"method":"storage/get","params":{"key":"k"}}"#),
            line(Stream::Sent, r#"{"jsonrpc":"2.0","id":1,"result":{"data":null}}"#),
            line(Stream::Stdout, r#"{"jsonrpc":"2.0","id":1,"result":{}}"#),
            line(Stream::Stderr, "2026-01-01T00:00:00Z [ERROR] [p] Failed to fetch - fetch failed"),
            line(Stream::Stderr, "TypeError: fetch failed"),
            line(Stream::Stderr, "    at fetch (node:internal)"),
            line(Stream::Stderr, "sandbox: the plugin left 1 process running"),
        ];
        assert!(outcomes(&lines).iter().all(|(_, outcome)| *outcome == Outcome::Pass), "{:?}", outcomes(&lines));
    }

    #[test]
    fn junk_wrong_ids_twice_notifications_and_levelless_lines_are_found() {
        let lines = [
            line(Stream::Sent, r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#),
            line(Stream::Stdout, "Starting plugin..."),
            line(Stream::Stdout, r#"{"jsonrpc":"2.0","id":1,"result":"pong"}"#),
            line(Stream::Stdout, r#"{"jsonrpc":"2.0","id":1,"result":"pong"}"#),
            line(Stream::Stdout, r#"{"jsonrpc":"2.0","id":99,"result":"pong"}"#),
            line(Stream::Stdout, r#"{"jsonrpc":"2.0","method":"progress","params":{}}"#),
            line(Stream::Stdout, r#"{"jsonrpc":"2.0","id":5,"method":"library/delete","params":{}}"#),
            line(Stream::Stderr, "plain line"),
        ];
        assert_eq!(
            outcomes(&lines),
            [
                ("hygiene.stdout".to_owned(), Outcome::Fail),
                ("hygiene.ids".to_owned(), Outcome::Fail),
                ("hygiene.notifications".to_owned(), Outcome::Warn),
                ("hygiene.stderr".to_owned(), Outcome::Warn),
            ]
        );
        let checks = hygiene(&wire(&lines));
        assert!(checks[0].findings[0].problem.contains("\"Starting plugin...\""), "{:?}", checks[0].findings);
        assert_eq!(checks[1].findings.len(), 2, "{:?}", checks[1].findings);
        assert!(checks[2].findings[1].problem.contains("`library/delete`"));
    }

    #[test]
    fn a_cut_line_that_looks_like_json_rpc_is_not_judged() {
        let mut giant = line(Stream::Stdout, r#"{"id":1,"jsonrpc":"2.0","result":{"results":["#);
        (giant.bytes, giant.cut) = (10 << 20, true);
        assert!(outcomes(&[giant]).iter().all(|(_, outcome)| *outcome == Outcome::Pass));
        let mut dropped = wire(&[]);
        dropped.dropped = 7;
        assert_eq!(
            hygiene(&dropped)[0].note.as_deref(),
            Some("7 lines past what a check keeps were counted, not judged")
        );
    }
}
