//! What a sync did, kept as its connection's last result and shown by `sync status`.

use codex_plugin_protocol::types::sync::UserInfo;
use serde::{Deserialize, Serialize};

/// One pushed entry the plugin could not take, or a pull entry the host could not use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryFailure {
    pub external_id: String,
    pub error: String,
}

/// What one sync of one connection did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncReport {
    pub plugin: String,
    pub user: String,
    /// Microseconds since the epoch.
    pub started_at: i64,
    pub finished_at: i64,
    pub dry_run: bool,
    pub pulls: bool,
    pub pushes: bool,
    /// The pull asked only for entries changed since this time (the last successful sync).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_since: Option<String>,
    /// The tracker account, as `sync/getUserInfo` answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<UserInfo>,
    pub pages: usize,
    pub pulled: usize,
    /// Pulled entries whose id names a series of the plugin's libraries.
    pub matched: usize,
    pub unmatched: usize,
    /// Books newly marked read, and series given the tracker's rating.
    pub books_marked: usize,
    pub ratings_taken: usize,
    pub pushed: usize,
    pub push_batches: usize,
    /// Pushed entries the plugin reported as failed.
    pub failed: Vec<EntryFailure>,
    /// What was skipped, and why (a direction the settings turn off, a permission missing).
    pub notes: Vec<String>,
    /// The pull ran to its end and was matched (so the next one may start from when this
    /// sync did).
    pub pull_complete: bool,
    /// Time spent waiting for the plugin's answers, and in the library's reads and writes.
    pub plugin_seconds: f64,
    pub library_seconds: f64,
    /// Why the sync failed; none when it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl SyncReport {
    pub fn succeeded(&self) -> bool {
        self.error.is_none()
    }
}
