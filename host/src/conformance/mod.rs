//! `check` (issue 16): how a plugin's conformance is judged, as pure decisions over what
//! it answered (orchestration.md §0, layer 1). The run that asks the plugin and the
//! command that prints the report sit on top.

pub mod judge;
pub mod manifest;
pub mod probes;
pub mod report;
pub mod shapes;
pub mod wire;

use serde::Serialize;

/// How a check, or one thing it looked at, ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Warn,
    Fail,
}

/// One thing a check found wrong: where, what, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub verdict: Verdict,
    /// The field or message it is about (`capabilities.metadataProvider[1]`).
    pub subject: String,
    pub problem: String,
    pub fix: String,
}

impl Finding {
    pub fn fail(subject: impl Into<String>, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Self { verdict: Verdict::Fail, subject: subject.into(), problem: problem.into(), fix: fix.into() }
    }

    pub fn warn(subject: impl Into<String>, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Self { verdict: Verdict::Warn, subject: subject.into(), problem: problem.into(), fix: fix.into() }
    }
}

/// A check's verdict from its findings: the worst of them, a pass when there are none.
pub fn verdict_of(findings: &[Finding]) -> Verdict {
    findings.iter().map(|finding| finding.verdict).max().unwrap_or(Verdict::Pass)
}
