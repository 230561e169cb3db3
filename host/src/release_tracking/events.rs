//! What an embedding server hears of releases, shaped as Codex's events.

use serde::Serialize;

/// An event of the release tracker.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ReleaseEvent {
    /// A new release was recorded as announced.
    #[serde(rename_all = "camelCase")]
    ReleaseAnnounced {
        ledger_id: String,
        series_id: String,
        series_title: String,
        source_id: String,
        plugin_id: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        chapter: Option<f64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        volume: Option<i64>,
        language: String,
        /// RFC 3339.
        timestamp: String,
    },
    /// A poll of a source ended; `had_error` when it failed or its upstream throttled it.
    #[serde(rename_all = "camelCase")]
    ReleaseSourcePolled { source_id: String, plugin_id: String, had_error: bool, timestamp: String },
}
