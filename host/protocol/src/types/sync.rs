//! `sync/*`: reading-progress sync with an external tracker.

use serde::{Deserialize, Deserializer, Serialize};

use super::lenient::{absent_if_invalid, null_as_default};
use super::library::LibrarySeriesMetadata;
use super::numbers::{optional_integer, whole_as_integer};
use super::vocabulary;

vocabulary!(
    /// Where a reader is with a series.
    ReadingStatus { Reading => "reading", Completed => "completed", OnHold => "on_hold", Dropped => "dropped", PlanToRead => "plan_to_read" }
);
vocabulary!(
    /// What a push did to one entry.
    EntryResultStatus { Created => "created", Updated => "updated", Unchanged => "unchanged", Failed => "failed" }
);

/// `sync/getUserInfo` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserInfo {
    pub external_id: String,
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_url: Option<String>,
}

/// Progress on one book, for plugins that want detailed progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BookProgress {
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "whole_as_integer")]
    pub volume: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chapter: Option<f64>,
    #[serde(default)]
    pub completed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "optional_integer")]
    pub current_page: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_percentage: Option<f64>,
}

/// How far a reader got in a series. The counts Codex reads as integers are written as
/// integers when whole; fractions (chapter 12.5) are kept.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "whole_as_integer")]
    pub chapters: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "whole_as_integer")]
    pub volumes: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "optional_integer")]
    pub pages: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "whole_as_integer")]
    pub total_chapters: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "whole_as_integer")]
    pub total_volumes: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "whole_as_integer")]
    pub max_volume: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_chapter: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_books: Option<Vec<BookProgress>>,
}

/// One series' reading state, pushed or pulled. The score is 0-100; the guide calls it
/// `rating`, the SDK `score`: both are read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncEntry {
    pub external_id: String,
    pub status: ReadingStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
    #[serde(default, alias = "rating", skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_read_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_updated_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The Codex library the series is in: always sent by Codex, `""` when unknown. These
    /// last fields go from the host to a plugin; in a pulled entry, where the host needs
    /// none of them, a careless value (`null`, the wrong shape) reads as absent.
    #[serde(default, deserialize_with = "null_as_default")]
    pub library_id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub library_name: String,
    /// Sent to plugins whose manifest says `wantsFullMetadata`, as the admin allows.
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "null_as_default")]
    pub genres: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "null_as_default")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "absent_if_invalid")]
    pub metadata: Option<LibrarySeriesMetadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_metadata: Option<serde_json::Value>,
}

impl SyncEntry {
    /// An entry with nothing but its id and status.
    pub fn new(external_id: impl Into<String>, status: ReadingStatus) -> Self {
        Self {
            external_id: external_id.into(),
            status,
            progress: None,
            score: None,
            started_at: None,
            completed_at: None,
            last_read_at: None,
            notes: None,
            latest_updated_at: None,
            title: None,
            library_id: String::new(),
            library_name: String::new(),
            genres: Vec::new(),
            tags: Vec::new(),
            metadata: None,
            custom_metadata: None,
        }
    }
}

/// `sync/pushProgress` params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushParams {
    #[serde(default)]
    pub entries: Vec<SyncEntry>,
}

/// The outcome for one pushed entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryResult {
    pub external_id: String,
    pub status: EntryResultStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `sync/pushProgress` result, normalized to the reference's `{success, failed}`.
///
/// The guide's shape, `{successes: [externalId], failures: [{externalId, error}]}`, is read
/// too: a bare success becomes status `updated`, a failure status `failed`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PushResponse {
    pub success: Vec<EntryResult>,
    pub failed: Vec<EntryResult>,
}

impl<'de> Deserialize<'de> for PushResponse {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct GuideFailure {
            external_id: String,
            #[serde(default)]
            error: Option<String>,
        }
        #[derive(Deserialize)]
        struct Wire {
            #[serde(default)]
            success: Option<Vec<EntryResult>>,
            #[serde(default)]
            failed: Option<Vec<EntryResult>>,
            #[serde(default)]
            successes: Option<Vec<String>>,
            #[serde(default)]
            failures: Option<Vec<GuideFailure>>,
        }
        let wire = Wire::deserialize(deserializer)?;
        let mut success = wire.success.unwrap_or_default();
        let mut failed = wire.failed.unwrap_or_default();
        success.extend(wire.successes.unwrap_or_default().into_iter().map(|external_id| EntryResult {
            external_id,
            status: EntryResultStatus::Updated,
            error: None,
        }));
        failed.extend(wire.failures.unwrap_or_default().into_iter().map(|failure| EntryResult {
            external_id: failure.external_id,
            status: EntryResultStatus::Failed,
            error: failure.error,
        }));
        Ok(PushResponse { success, failed })
    }
}

/// `sync/pullProgress` params: page or cursor pagination, both in use.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PullParams {
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "optional_integer")]
    pub page: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_since: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "optional_integer")]
    pub limit: Option<i64>,
}

/// `sync/pullProgress` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PullResponse {
    #[serde(default)]
    pub entries: Vec<SyncEntry>,
    #[serde(default)]
    pub has_more: bool,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "optional_integer")]
    pub next_page: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// `sync/status` result: a summary, every field optional in practice.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "optional_integer")]
    pub external_count: Option<i64>,
    #[serde(default, deserialize_with = "super::numbers::integer_or_zero")]
    pub pending_push: i64,
    #[serde(default, deserialize_with = "super::numbers::integer_or_zero")]
    pub pending_pull: i64,
    #[serde(default, deserialize_with = "super::numbers::integer_or_zero")]
    pub conflicts: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn push_results_in_both_shapes_normalize_to_one() {
        let reference: PushResponse = serde_json::from_value(json!({
            "success": [{"externalId": "1", "status": "created"}],
            "failed": [{"externalId": "2", "status": "failed", "error": "gone"}]
        }))
        .unwrap();
        let guide: PushResponse = serde_json::from_value(json!({
            "successes": ["1"], "failures": [{"externalId": "2", "error": "gone"}]
        }))
        .unwrap();
        assert_eq!(reference.failed, guide.failed);
        assert_eq!(guide.success[0].external_id, "1");
        assert_eq!(serde_json::to_value(&guide).unwrap()["failed"][0]["status"], json!("failed"));
    }

    #[test]
    fn entries_read_score_or_rating() {
        let entry: SyncEntry =
            serde_json::from_value(json!({"externalId": "1", "status": "on_hold", "rating": 80})).unwrap();
        assert_eq!(entry.score, Some(80.0));
        assert_eq!(entry.status, ReadingStatus::OnHold);
        let entry: SyncEntry =
            serde_json::from_value(json!({"externalId": "1", "status": "paused", "score": 5})).unwrap();
        assert_eq!(entry.status, ReadingStatus::Unrecognized("paused".into()));
    }

    #[test]
    fn counts_codex_reads_as_integers_are_written_as_integers() {
        let entry: SyncEntry = serde_json::from_value(json!({
            "externalId": "1", "status": "reading",
            "progress": {"chapters": 12.0, "volumes": 2, "maxChapter": 12.5, "readBooks": [{"volume": 1.0, "completed": true}]}
        }))
        .unwrap();
        let written = serde_json::to_string(&entry.progress).unwrap();
        assert!(written.contains(r#""chapters":12,"#), "{written}");
        assert!(written.contains(r#""volumes":2,"#), "{written}");
        assert!(written.contains(r#""maxChapter":12.5"#), "{written}");
        assert!(written.contains(r#""volume":1,"#), "{written}");
    }

    #[test]
    fn a_pulled_entry_with_careless_host_fields_still_reads() {
        let entry: SyncEntry = serde_json::from_value(json!({
            "externalId": "1", "status": "reading", "libraryId": null, "genres": null,
            "metadata": {"authors": null, "ageRating": 16.5}
        }))
        .unwrap();
        assert_eq!((entry.library_id.as_str(), entry.genres.len(), entry.metadata), ("", 0, None));
    }

    #[test]
    fn status_fills_missing_counts() {
        let status: StatusResponse = serde_json::from_value(json!({"lastSyncAt": "2026-01-01T00:00:00Z"})).unwrap();
        assert_eq!(status.pending_push, 0);
        assert_eq!(status.last_sync_at.as_deref(), Some("2026-01-01T00:00:00Z"));
    }
}
