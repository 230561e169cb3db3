//! `releases/poll`: a release-source plugin asked to poll one of its sources, and the
//! candidates (new chapters and volumes of tracked series) it answers, as Codex 2.2 puts
//! them on the wire (`crates/codex-services/src/plugin/protocol.rs`, `release/candidate.rs`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::vocabulary;

vocabulary!(
    /// What a candidate's `mediaUrl` points at.
    MediaUrlKind { Torrent => "torrent", Magnet => "magnet", Direct => "direct", Other => "other" }
);

/// `releases/poll` params: the source to poll (the host's id of it, and the plugin's own
/// key as it registered it), its config, and the etag of its last successful poll.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollParams {
    pub source_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
}

/// `releases/poll` result. Candidates are kept as written: each is read on its own
/// ([`ReleaseCandidate`]), so one with a wrong field is refused, naming it, and the rest
/// of the batch is recorded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollResponse {
    #[serde(default)]
    pub candidates: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_modified: Option<bool>,
    /// The upstream's HTTP status, for the host's per-host backoff (429, 503).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parsed: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deduped: Option<u32>,
}

/// A range of chapters or volumes (`{start, end}`; one chapter is a range of one).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NumericSpan {
    pub start: f64,
    pub end: f64,
}

/// Which tracked series a candidate is for, and how sure the plugin is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeriesMatch {
    pub codex_series_id: String,
    pub confidence: f64,
    pub reason: String,
}

/// A release a plugin found: a `releases/record` params, or one of a poll's candidates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseCandidate {
    pub series_match: SeriesMatch,
    pub external_release_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<Vec<NumericSpan>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chapters: Option<Vec<NumericSpan>>,
    pub language: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format_hints: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_or_uploader: Option<String>,
    pub payload_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_url_kind: Option<MediaUrlKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// RFC 3339.
    pub observed_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_at: Option<String>,
}

impl ReleaseCandidate {
    /// Reads one candidate, naming the field that is wrong.
    pub fn read(value: &Value) -> Result<Self, String> {
        serde_path_to_error::deserialize(value).map_err(|error| {
            let path = error.path().to_string();
            let why = error.into_inner().to_string();
            if path == "." { why } else { format!("`{path}`: {why}") }
        })
    }
}

/// The plugin → host methods of a release source (served only to a plugin whose manifest
/// declares `capabilities.releaseSource`).
pub const RELEASE_HOST_METHODS: [&str; 7] = [
    "releases/register_sources",
    "releases/list_tracked",
    "releases/count_tracked",
    "releases/report_progress",
    "releases/record",
    "releases/source_state/get",
    "releases/source_state/set",
];

/// The most tracked series one `releases/list_tracked` page holds (Codex: 1,000; 200 when
/// the plugin does not say).
pub const MAX_TRACKED_PAGE: u32 = 1000;
pub const DEFAULT_TRACKED_PAGE: u32 = 200;

/// One source a plugin registers: its own key for it, a name for people, its kind, and
/// what the plugin wants back in each `releases/poll` of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceRegistration {
    pub source_key: String,
    pub display_name: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Value>,
}

/// `releases/register_sources` params: the plugin's whole set of sources (its others are
/// removed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisterSourcesParams {
    pub sources: Vec<SourceRegistration>,
}

/// `releases/register_sources` result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterSourcesResult {
    pub registered: u32,
    pub pruned: u32,
}

/// `releases/list_tracked` params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTrackedParams {
    pub source_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
}

/// A tracked series as a release source sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackedSeries {
    pub series_id: String,
    /// Sent when the plugin's manifest says `requiresAliases`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aliases: Option<Vec<String>>,
    /// By bare source (`mangaupdates`), those the manifest lists in `requiresExternalIds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_ids: Option<std::collections::BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_known_chapter: Option<f64>,
    /// Whole, as Codex keeps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_known_volume: Option<i64>,
}

/// `releases/list_tracked` result: `nextOffset` when the page was full.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTrackedResult {
    pub tracked: Vec<TrackedSeries>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_offset: Option<u64>,
}

/// Params of the methods about one source: `releases/count_tracked`,
/// `releases/source_state/get`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceParams {
    pub source_id: String,
}

/// `releases/count_tracked` result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountTrackedResult {
    pub total: u64,
}

/// `releases/report_progress` params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportProgressParams {
    pub current: u64,
    pub total: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// `releases/report_progress` result: whether the progress was shown (not inside a poll,
/// or too soon after the last: not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportProgressResult {
    pub emitted: bool,
}

/// `releases/record` params; the candidate is read on its own ([`ReleaseCandidate::read`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordParams {
    pub source_id: String,
    pub candidate: Value,
}

/// `releases/record` result: the ledger row, and whether it was there already.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordResult {
    pub ledger_id: String,
    pub deduped: bool,
}

/// `releases/source_state/get` result; RFC 3339 times.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_polled_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error_at: Option<String>,
}

/// `releases/source_state/set` params: only the etag is the plugin's to write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetSourceStateParams {
    pub source_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
}

/// `releases/source_state/set` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetSourceStateResult {
    pub success: bool,
    pub etag: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn candidate() -> Value {
        json!({
            "seriesMatch": {"codexSeriesId": "manga-one-piece", "confidence": 0.92, "reason": "alias-exact"},
            "externalReleaseId": "rel-123",
            "chapters": [{"start": 143, "end": 143}],
            "language": "en",
            "formatHints": {"jxl": true},
            "groupOrUploader": "tsuna69",
            "payloadUrl": "https://nyaa.si/view/12345",
            "mediaUrl": "https://nyaa.si/download/12345.torrent",
            "mediaUrlKind": "torrent",
            "infoHash": "deadbeef",
            "observedAt": "2026-12-02T10:00:00Z"
        })
    }

    #[test]
    fn a_codex_candidate_reads_and_writes_the_same() {
        let read = ReleaseCandidate::read(&candidate()).unwrap();
        assert_eq!(read.chapters, Some(vec![NumericSpan { start: 143.0, end: 143.0 }]));
        assert_eq!(read.media_url_kind, Some(MediaUrlKind::Torrent));
        let written = serde_json::to_value(&read).unwrap();
        assert_eq!(written["seriesMatch"], candidate()["seriesMatch"]);
        assert_eq!(written["payloadUrl"], candidate()["payloadUrl"]);
    }

    #[test]
    fn a_wrong_candidate_names_its_field() {
        let mut missing = candidate();
        missing.as_object_mut().unwrap().remove("payloadUrl");
        assert!(ReleaseCandidate::read(&missing).unwrap_err().contains("payloadUrl"));
        let mut wrong = candidate();
        wrong["seriesMatch"]["confidence"] = json!("high");
        let error = ReleaseCandidate::read(&wrong).unwrap_err();
        assert!(error.contains("seriesMatch.confidence"), "{error}");
    }

    #[test]
    fn a_poll_answer_keeps_its_candidates_as_written() {
        let answer: PollResponse = serde_json::from_value(json!({
            "candidates": [candidate(), {"junk": true}], "etag": "W/\"1\"", "notModified": false,
            "upstreamStatus": 200, "parsed": 40, "matched": 2
        }))
        .unwrap();
        assert_eq!((answer.candidates.len(), answer.upstream_status, answer.parsed), (2, Some(200), Some(40)));
        let poll =
            PollParams { source_id: "s1".into(), source_key: Some("nyaa:tsuna69".into()), config: None, etag: None };
        assert_eq!(serde_json::to_value(poll).unwrap(), json!({"sourceId": "s1", "sourceKey": "nyaa:tsuna69"}));
    }
}
