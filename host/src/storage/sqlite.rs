//! SQLite storage: one database file in the host's data directory.
//!
//! WAL mode, a 5 s busy timeout, and `BEGIN IMMEDIATE` for every quota-checked write, so
//! writers in this process and in other host processes on the same file serialize.
//! Timestamps are stored as microseconds since the Unix epoch.

use chrono::DateTime;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::{Entry, KeySummary, PutOutcome, StorageBackend, StorageError, StorageScope, Timestamp};

const LIVE: &str = "(expires_at IS NULL OR expires_at > ?)";

/// Plugin storage in a SQLite file.
pub struct SqliteStorage {
    connection: Mutex<Connection>,
}

impl SqliteStorage {
    /// Opens (or creates) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        let connection = crate::database::open(path)?;
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        Ok(Self { connection: Mutex::new(connection) })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // SQLite rolls back an unfinished transaction when its guard drops, so the
        // connection is consistent even after a panic.
        self.connection.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn micros(timestamp: Timestamp) -> i64 {
    timestamp.timestamp_micros()
}

fn timestamp(micros: i64) -> Timestamp {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

impl StorageBackend for SqliteStorage {
    fn get(&self, scope: &StorageScope, key: &str, now: Timestamp) -> Result<Option<Entry>, StorageError> {
        let connection = self.lock();
        let mut statement = connection.prepare_cached(&format!(
            "SELECT data, expires_at, updated_at FROM plugin_storage WHERE scope = ? AND key = ? AND {LIVE}"
        ))?;
        let entry = statement
            .query_row(params![scope.as_str(), key, micros(now)], |row| {
                Ok(Entry {
                    data: row.get(0)?,
                    expires_at: row.get::<_, Option<i64>>(1)?.map(timestamp),
                    updated_at: timestamp(row.get(2)?),
                })
            })
            .optional()?;
        Ok(entry)
    }

    fn put_within_quota(
        &self,
        scope: &StorageScope,
        key: &str,
        entry: &Entry,
        max_live_keys: usize,
        now: Timestamp,
    ) -> Result<PutOutcome, StorageError> {
        let mut connection = self.lock();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = micros(now);
        let replaces_live: bool = transaction.query_row(
            &format!("SELECT EXISTS (SELECT 1 FROM plugin_storage WHERE scope = ? AND key = ? AND {LIVE})"),
            params![scope.as_str(), key, now],
            |row| row.get(0),
        )?;
        if !replaces_live {
            let live_keys: i64 = transaction.query_row(
                &format!("SELECT COUNT(*) FROM plugin_storage WHERE scope = ? AND {LIVE}"),
                params![scope.as_str(), now],
                |row| row.get(0),
            )?;
            let live_keys = usize::try_from(live_keys).unwrap_or(usize::MAX);
            if live_keys >= max_live_keys {
                return Ok(PutOutcome::QuotaFull { live_keys });
            }
        }
        transaction.execute(
            "INSERT INTO plugin_storage (scope, key, data, expires_at, updated_at) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (scope, key) DO UPDATE SET
                 data = excluded.data, expires_at = excluded.expires_at, updated_at = excluded.updated_at",
            params![scope.as_str(), key, entry.data, entry.expires_at.map(micros), micros(entry.updated_at)],
        )?;
        transaction.commit()?;
        Ok(PutOutcome::Written)
    }

    fn delete(&self, scope: &StorageScope, key: &str, now: Timestamp) -> Result<bool, StorageError> {
        let connection = self.lock();
        let live: Option<bool> = connection
            .query_row(
                &format!("DELETE FROM plugin_storage WHERE scope = ? AND key = ? RETURNING {LIVE}"),
                params![scope.as_str(), key, micros(now)],
                |row| row.get(0),
            )
            .optional()?;
        Ok(live.unwrap_or(false))
    }

    fn list(&self, scope: &StorageScope, now: Timestamp) -> Result<Vec<KeySummary>, StorageError> {
        let connection = self.lock();
        let mut statement = connection.prepare_cached(&format!(
            "SELECT key, expires_at, updated_at FROM plugin_storage WHERE scope = ? AND {LIVE} ORDER BY key"
        ))?;
        let keys = statement
            .query_map(params![scope.as_str(), micros(now)], |row| {
                Ok(KeySummary {
                    key: row.get(0)?,
                    expires_at: row.get::<_, Option<i64>>(1)?.map(timestamp),
                    updated_at: timestamp(row.get(2)?),
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(keys)
    }

    fn clear(&self, scope: &StorageScope, now: Timestamp) -> Result<u64, StorageError> {
        let mut connection = self.lock();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let live: i64 = transaction.query_row(
            &format!("SELECT COUNT(*) FROM plugin_storage WHERE scope = ? AND {LIVE}"),
            params![scope.as_str(), micros(now)],
            |row| row.get(0),
        )?;
        transaction.execute("DELETE FROM plugin_storage WHERE scope = ?", params![scope.as_str()])?;
        transaction.commit()?;
        Ok(live.max(0) as u64)
    }

    fn sweep_expired(&self, now: Timestamp) -> Result<u64, StorageError> {
        let connection = self.lock();
        let swept = connection.execute(
            "DELETE FROM plugin_storage WHERE expires_at IS NOT NULL AND expires_at <= ?",
            params![micros(now)],
        )?;
        Ok(swept as u64)
    }
}

#[cfg(test)]
mod file_tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_new_database_is_private_and_an_emptied_one_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("host.sqlite3");
        SqliteStorage::open(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        SqliteStorage::open(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600, "made private again");
        // Truncated to 0 bytes (journal gone too): refused, and left as it is.
        std::fs::write(&path, "").unwrap();
        let Err(error) = SqliteStorage::open(&path) else { panic!("an empty database was taken as new") };
        assert!(error.to_string().contains("is empty (0 bytes)"), "{error}");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0, "nothing was written to it");
    }
}
