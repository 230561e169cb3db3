//! The report `check` prints: one result per check (pass, warn, fail or not run), with what
//! was sent, what came back, why it matters and how to fix what was found, and a summary.
//! As text for a person, as JSON for CI; the exit code follows from it.

use serde::Serialize;
use std::fmt::Write as _;
use std::time::Duration;

use super::{Finding, Verdict, verdict_of};

/// Findings kept per check.
pub const KEPT_FINDINGS: usize = 20;

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    Warn,
    Fail,
    /// It could not be run (the plugin had ended, or it does not apply); the reason says.
    NotRun,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Self::Pass => "PASS",
            Self::Warn => "WARN",
            Self::Fail => "FAIL",
            Self::NotRun => "NOT RUN",
        }
    }
}

impl From<Verdict> for Outcome {
    fn from(verdict: Verdict) -> Self {
        match verdict {
            Verdict::Pass => Self::Pass,
            Verdict::Warn => Self::Warn,
            Verdict::Fail => Self::Fail,
        }
    }
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckResult {
    /// A stable name: `series.search`, `hygiene.stdout`.
    pub id: String,
    /// What it checks, in a line.
    pub title: String,
    pub outcome: Outcome,
    /// Why it matters to the plugin's users.
    pub why: String,
    /// The request, as sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent: Option<String>,
    /// What came back (cut when long).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received: Option<String>,
    /// How long the answer took, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    /// What is wrong, each with its fix; warnings and failures only.
    pub findings: Vec<Finding>,
    /// Why it was not run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_run: Option<String>,
    /// What a pass found worth saying ("not supported: -32601").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl CheckResult {
    /// A check judged by its findings: the worst of them, a pass when there are none. Past
    /// [`KEPT_FINDINGS`], the rest are counted in one more.
    pub fn judged(
        id: impl Into<String>,
        title: impl Into<String>,
        why: impl Into<String>,
        mut findings: Vec<Finding>,
    ) -> Self {
        let outcome = verdict_of(&findings).into();
        if findings.len() > KEPT_FINDINGS {
            let rest = findings.split_off(KEPT_FINDINGS);
            findings.push(Finding {
                verdict: verdict_of(&rest),
                subject: "more".into(),
                problem: format!("{} more findings", rest.len()),
                fix: "fix the ones above, then check again".into(),
            });
        }
        Self {
            id: id.into(),
            title: title.into(),
            outcome,
            why: why.into(),
            sent: None,
            received: None,
            latency_ms: None,
            findings,
            not_run: None,
            note: None,
        }
    }

    pub fn not_run(
        id: impl Into<String>,
        title: impl Into<String>,
        why: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        let mut result = Self::judged(id, title, why, Vec::new());
        result.outcome = Outcome::NotRun;
        result.not_run = Some(reason.into());
        result
    }

    pub fn with_exchange(mut self, sent: Option<String>, received: Option<String>, latency: Option<Duration>) -> Self {
        self.sent = sent;
        self.received = received;
        self.latency_ms = latency.map(|latency| (latency.as_secs_f64() * 10_000.0).round() / 10.0);
        self
    }

    pub fn with_note(mut self, note: Option<String>) -> Self {
        self.note = note;
        self
    }
}

/// What was checked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Subject {
    /// The plugin's id in this check.
    pub id: String,
    /// Its manifest's name and version, once it answered `initialize`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// "process" or "wasm".
    pub transport: String,
    /// How it was kept from the network, or that it was not.
    pub network: String,
}

/// How many checks ended each way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub passed: usize,
    pub warnings: usize,
    pub failed: usize,
    pub not_run: usize,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub plugin: Subject,
    pub checks: Vec<CheckResult>,
    pub summary: Summary,
}

impl Report {
    pub fn new(plugin: Subject, checks: Vec<CheckResult>) -> Self {
        let mut summary = Summary::default();
        for check in &checks {
            match check.outcome {
                Outcome::Pass => summary.passed += 1,
                Outcome::Warn => summary.warnings += 1,
                Outcome::Fail => summary.failed += 1,
                Outcome::NotRun => summary.not_run += 1,
            }
        }
        Self { plugin, checks, summary }
    }

    /// 1 when a check failed, 0 otherwise.
    pub fn exit_code(&self) -> i32 {
        i32::from(self.summary.failed > 0)
    }

    /// The report for a person: a line per check, details under each warning and failure
    /// (and the reason of each check not run), then the summary.
    pub fn to_text(&self) -> String {
        let plugin = &self.plugin;
        let mut text = String::new();
        let named = match (&plugin.name, &plugin.version) {
            (Some(name), Some(version)) => format!("{name} {version}"),
            _ => plugin.id.clone(),
        };
        let _ = writeln!(text, "Checked {} ({}; network: {})\n", printable(&named), plugin.transport, plugin.network);
        let width = self.checks.iter().map(|check| check.id.len()).max().unwrap_or(0);
        for check in &self.checks {
            let latency = check.latency_ms.map(|ms| format!(" ({ms:.1} ms)")).unwrap_or_default();
            let _ = writeln!(text, "{:<7}  {:<width$}  {}{latency}", check.outcome.label(), check.id, check.title);
            // What a plugin wrote is printed with its control characters escaped.
            let detail = |text: &mut String, label: &str, value: &str| {
                let _ = writeln!(text, "{:<7}  {:<width$}    {label:<8} {}", "", "", printable(value));
            };
            if let Some(reason) = &check.not_run {
                detail(&mut text, "why not", reason);
                continue;
            }
            if let Some(note) = &check.note {
                detail(&mut text, "note", note);
            }
            if check.outcome == Outcome::Pass {
                continue;
            }
            if let Some(sent) = &check.sent {
                detail(&mut text, "sent", sent);
            }
            if let Some(received) = &check.received {
                detail(&mut text, "received", received);
            }
            for finding in &check.findings {
                let label = if finding.verdict == Verdict::Fail { "FAIL" } else { "warn" };
                detail(&mut text, label, &format!("{}: {}", finding.subject, finding.problem));
                detail(&mut text, "fix", &finding.fix);
            }
            detail(&mut text, "matters", &check.why);
        }
        let summary = &self.summary;
        let _ = writeln!(
            text,
            "\n{} passed, {} with warnings, {} failed, {} not run",
            summary.passed, summary.warnings, summary.failed, summary.not_run
        );
        text
    }
}

/// `text` with control characters escaped (`\u{1b}`), so nothing a plugin wrote can move
/// the cursor or retitle the terminal.
fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let escaped = text.chars().map(|c| if c.is_control() { c.escape_unicode().to_string() } else { c.to_string() });
    std::borrow::Cow::Owned(escaped.collect())
}

/// A JSON value in one line, cut after `limit` characters.
pub fn shown(value: &serde_json::Value, limit: usize) -> String {
    cut(&value.to_string(), limit)
}

/// `text` cut after `limit` characters, saying how much more there was.
pub fn cut(text: &str, limit: usize) -> String {
    let count = text.chars().count();
    if count <= limit {
        return text.to_owned();
    }
    format!("{}… ({} more characters)", text.chars().take(limit).collect::<String>(), count - limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject() -> Subject {
        Subject {
            id: "echo".into(),
            name: Some("echo".into()),
            version: Some("1.0.0".into()),
            transport: "wasm".into(),
            network: "none".into(),
        }
    }

    #[test]
    fn the_summary_and_exit_code_follow_the_checks() {
        let warned = vec![Finding::warn("result.x", "a field the protocol does not define", "leave it out")];
        let checks = vec![
            CheckResult::judged("lifecycle.ping", "ping answered", "why", Vec::new()),
            CheckResult::judged("series.get", "get", "why", warned),
            CheckResult::not_run("storage.quota-full", "storage", "why", "it wrote nothing"),
        ];
        let report = Report::new(subject(), checks.clone());
        assert_eq!(report.summary, Summary { passed: 1, warnings: 1, failed: 0, not_run: 1 });
        assert_eq!(report.exit_code(), 0);
        let failed = CheckResult::judged(
            "hygiene.stdout",
            "stdout",
            "why",
            vec![Finding::fail("line 1", "junk", "log to stderr")],
        );
        let report = Report::new(subject(), checks.into_iter().chain([failed]).collect());
        assert_eq!((report.summary.failed, report.exit_code()), (1, 1));
        let text = report.to_text();
        assert!(text.starts_with("Checked echo 1.0.0 (wasm; network: none)"), "{text}");
        assert!(text.contains("PASS     lifecycle.ping      ping answered\n"), "{text}");
        assert!(text.contains("FAIL     hygiene.stdout      stdout\n"), "{text}");
        assert!(text.contains("why not  it wrote nothing"), "{text}");
        assert!(text.contains("FAIL     line 1: junk"), "{text}");
        assert!(text.ends_with("1 passed, 1 with warnings, 1 failed, 1 not run\n"), "{text}");
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["checks"][3]["findings"][0]["verdict"], "fail");
        assert_eq!(json["checks"][2]["outcome"], "not_run");
    }

    #[test]
    fn a_plugins_words_are_printed_inert_and_findings_are_capped() {
        let mut check = CheckResult::judged(
            "series.get",
            "get",
            "why",
            (0..30).map(|n| Finding::warn(format!("result.f{n}\u{1b}]0;owned\u{7}"), "unknown", "fix")).collect(),
        );
        assert_eq!(check.findings.len(), KEPT_FINDINGS + 1);
        assert_eq!(check.findings[KEPT_FINDINGS].problem, "10 more findings");
        check.outcome = Outcome::Warn;
        let text = Report::new(subject(), vec![check]).to_text();
        assert!(!text.contains('\u{1b}') && text.contains("\\u{1b}]0;owned\\u{7}"), "{text}");
    }

    #[test]
    fn long_values_are_cut_and_say_so() {
        assert_eq!(cut("abcdef", 3), "abc… (3 more characters)");
        assert_eq!(shown(&serde_json::json!({"a": 1}), 100), "{\"a\":1}");
    }
}
