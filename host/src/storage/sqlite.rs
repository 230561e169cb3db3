//! SQLite storage: one database file in the host's data directory.
//!
//! WAL mode, a 5 s busy timeout, and `BEGIN IMMEDIATE` for every quota-checked write, so
//! writers in this process and in other host processes on the same file serialize.
//! Timestamps are stored as microseconds since the Unix epoch.

use chrono::DateTime;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::{Entry, KeySummary, PutOutcome, StorageBackend, StorageError, StorageScope, Timestamp};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS plugin_storage (
    scope      TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    data       TEXT    NOT NULL,
    expires_at INTEGER,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS plugin_storage_expiry ON plugin_storage (expires_at) WHERE expires_at IS NOT NULL;
";

const LIVE: &str = "(expires_at IS NULL OR expires_at > ?)";

/// Plugin storage in a SQLite file.
pub struct SqliteStorage {
    connection: Mutex<Connection>,
}

impl SqliteStorage {
    /// Opens (or creates) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        prepare_database_file(path)?;
        let opened = Connection::open(path).and_then(|connection| {
            connection.busy_timeout(Duration::from_secs(5))?;
            connection.pragma_update(None, "journal_mode", "WAL")?;
            connection.pragma_update(None, "synchronous", "NORMAL")?;
            connection.execute_batch(SCHEMA)?;
            Ok(connection)
        });
        let connection = opened.map_err(|source| StorageError::Open { path: path.display().to_string(), source })?;
        Ok(Self { connection: Mutex::new(connection) })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // SQLite rolls back an unfinished transaction when its guard drops, so the
        // connection is consistent even after a panic.
        self.connection.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The database file is not one the host can use as it is.
#[derive(Debug, thiserror::Error)]
#[error("the database file {path} {why}")]
pub struct DatabaseFileError {
    path: String,
    why: String,
}

/// Before SQLite opens `path`: a new file is created readable by the host's user alone
/// (0600; SQLite's journal files take the same mode), an existing one readable by others is
/// made so, and an empty one the host did not just create is refused: SQLite would take it
/// for a new, empty database, and every plugin, credential and stored value would be gone
/// without a word.
pub fn prepare_database_file(path: &Path) -> Result<(), DatabaseFileError> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let failed = |why: String| DatabaseFileError { path: path.display().to_string(), why };
    let created = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path);
    match created {
        Ok(_) => return Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(error) => return Err(failed(format!("could not be created: {error}"))),
    }
    let metadata = std::fs::metadata(path).map_err(|error| failed(format!("could not be read: {error}")))?;
    let journal = path.with_file_name(format!("{}-wal", path.file_name().unwrap_or_default().to_string_lossy()));
    if metadata.len() == 0 && !journal.exists() {
        return Err(failed(
            "is empty (0 bytes): it was truncated, or is not the host's; restore it from a backup, or delete it to start with no plugins".into(),
        ));
    }
    if metadata.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|error| failed(format!("is readable by other users and could not be made private: {error}")))?;
    }
    Ok(())
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
