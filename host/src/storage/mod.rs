//! Where plugin storage lives: a key/value store per scope.
//!
//! [`StorageBackend`] is deliberately small and synchronous; the rules (key format, value
//! size, key count, expiry) live once, in [`crate::limits::quota`], which calls a backend
//! from a blocking task. The one rule a backend must enforce itself is atomicity:
//! [`StorageBackend::put_within_quota`] checks the live-key count and writes in one
//! transaction, so concurrent writers can never end above the quota.

pub mod handler;
mod memory;
mod refusing;
pub mod sqlite;

pub use memory::MemoryStorage;
pub use refusing::RefusingWrites;
pub use sqlite::SqliteStorage;

use chrono::{DateTime, SecondsFormat, Utc};
use std::fmt;

/// A point in time, microsecond precision.
pub type Timestamp = DateTime<Utc>;

/// Timestamps as the reference writes them (RFC 3339 with a `+00:00` offset).
pub fn format_timestamp(timestamp: &Timestamp) -> String {
    timestamp.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

/// One bucket of keys: a user's connection to a plugin, or a plugin as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StorageScope(String);

impl StorageScope {
    /// The bucket of a system-wide plugin.
    pub fn plugin(plugin_id: &str) -> Self {
        Self(format!("plugin:{plugin_id}"))
    }

    /// The bucket of one user's connection to a plugin.
    pub fn user_plugin(user_plugin_id: &str) -> Self {
        Self(format!("user-plugin:{user_plugin_id}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StorageScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A stored value.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The value as compact JSON text.
    pub data: String,
    pub expires_at: Option<Timestamp>,
    pub updated_at: Timestamp,
}

impl Entry {
    pub fn is_live(&self, now: Timestamp) -> bool {
        self.expires_at.is_none_or(|expires_at| expires_at > now)
    }
}

/// A key as `storage/list` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct KeySummary {
    pub key: String,
    pub expires_at: Option<Timestamp>,
    pub updated_at: Timestamp,
}

/// What a quota-checked write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Written,
    /// The key is new and the scope already holds this many live keys.
    QuotaFull {
        live_keys: usize,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage database error: {0}")]
    Database(#[from] rusqlite::Error),
    #[error(transparent)]
    File(#[from] crate::database::DatabaseError),
    #[error("storage task failed: {0}")]
    Task(String),
    /// The runtime is shutting down and dropped the operation.
    #[error("storage task cancelled: the host is shutting down")]
    Cancelled,
}

/// A key/value store of JSON text, by scope. Expired entries are invisible to every
/// read and do not count towards the quota; [`StorageBackend::sweep_expired`] deletes them.
pub trait StorageBackend: Send + Sync + 'static {
    /// The live entry under `key`.
    fn get(&self, scope: &StorageScope, key: &str, now: Timestamp) -> Result<Option<Entry>, StorageError>;

    /// Writes `entry` unless `key` is new (or expired) and the scope already holds
    /// `max_live_keys` live keys. The check and the write are one transaction.
    fn put_within_quota(
        &self,
        scope: &StorageScope,
        key: &str,
        entry: &Entry,
        max_live_keys: usize,
        now: Timestamp,
    ) -> Result<PutOutcome, StorageError>;

    /// Deletes `key`; `true` if a live entry was there.
    fn delete(&self, scope: &StorageScope, key: &str, now: Timestamp) -> Result<bool, StorageError>;

    /// The live keys, sorted by key.
    fn list(&self, scope: &StorageScope, now: Timestamp) -> Result<Vec<KeySummary>, StorageError>;

    /// Deletes every entry of the scope; returns how many were live.
    fn clear(&self, scope: &StorageScope, now: Timestamp) -> Result<u64, StorageError>;

    /// Deletes every expired entry of every scope; returns how many.
    fn sweep_expired(&self, now: Timestamp) -> Result<u64, StorageError>;
}

#[cfg(test)]
mod contract_tests;
