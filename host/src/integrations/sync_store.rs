//! Each connection's sync in the host's database: who runs it now (a lease, so two hosts
//! on one database never sync one connection at once), when it last succeeded (where the
//! next pull starts), and its last result.

use rusqlite::{OptionalExtension, params};
use std::path::Path;

use super::IntegrationError;
use super::records::{Records, failed};
use super::report::SyncReport;

pub struct SyncStore {
    records: Records,
}

/// A connection's sync as last recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncRecord {
    pub plugin: String,
    pub user: String,
    /// Who runs it now, and until when their lease holds (microseconds); a lease that ran
    /// out (its holder stopped) is none.
    pub held: Option<(String, i64)>,
    pub last_sync_at: Option<i64>,
    pub last_success_at: Option<i64>,
    pub last_result: Option<SyncReport>,
}

impl SyncRecord {
    /// As the API and `sync status --json` show it: times in RFC 3339, the last report whole.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "plugin": self.plugin,
            "user": self.user,
            "running": self.held.is_some(),
            "lastSyncAt": self.last_sync_at.and_then(crate::sync::rfc3339),
            "lastSuccessAt": self.last_success_at.and_then(crate::sync::rfc3339),
            "lastResult": self.last_result,
        })
    }
}

impl SyncStore {
    pub fn open(path: &Path) -> Result<Self, IntegrationError> {
        Ok(Self { records: Records::open(path)? })
    }

    /// Takes the lease of the connection's sync for `holder` until `until`, if nobody
    /// else holds it now; answers the other holder's lease otherwise.
    pub fn claim(
        &self,
        plugin: &str,
        user: &str,
        holder: &str,
        now: i64,
        until: i64,
    ) -> Result<Result<(), (String, i64)>, IntegrationError> {
        let connection = self.records.lock();
        let claimed = connection
            .execute(
                "INSERT INTO sync_state (plugin_id, user_id, holder, held_until) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (plugin_id, user_id) DO UPDATE SET holder = ?3, held_until = ?4
                 WHERE sync_state.holder IS NULL OR sync_state.held_until < ?5 OR sync_state.holder = ?3",
                params![plugin, user, holder, until, now],
            )
            .map_err(failed)?;
        if claimed == 1 {
            return Ok(Ok(()));
        }
        let other = connection
            .query_row(
                "SELECT holder, held_until FROM sync_state WHERE plugin_id = ? AND user_id = ?",
                [plugin, user],
                |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)),
            )
            .map_err(failed)?;
        Ok(Err(other))
    }

    /// Extends `holder`'s lease; false if it lost it (it ran out and another took it).
    pub fn renew(&self, plugin: &str, user: &str, holder: &str, until: i64) -> Result<bool, IntegrationError> {
        let renewed = self
            .records
            .lock()
            .execute(
                "UPDATE sync_state SET held_until = ? WHERE plugin_id = ? AND user_id = ? AND holder = ?",
                params![until, plugin, user, holder],
            )
            .map_err(failed)?;
        Ok(renewed == 1)
    }

    /// Records the result and gives the lease back. A sync that pulled to the end and
    /// succeeded moves where the next pull starts to when this one started. A holder that
    /// lost the lease records nothing.
    pub fn finish(&self, report: &SyncReport, holder: &str) -> Result<(), IntegrationError> {
        let result = serde_json::to_string(report).map_err(failed)?;
        let success = (report.succeeded() && report.pull_complete).then_some(report.started_at);
        let recorded = self
            .records
            .lock()
            .execute(
                "UPDATE sync_state SET holder = NULL, held_until = NULL, last_sync_at = ?, last_result = ?,
                     last_success_at = COALESCE(?, last_success_at)
                 WHERE plugin_id = ? AND user_id = ? AND holder = ?",
                params![report.finished_at, result, success, report.plugin, report.user, holder],
            )
            .map_err(failed)?;
        if recorded == 0 {
            return Err(failed(
                "this sync lost its lease before it ended (another host may have synced the connection); its result was not kept",
            ));
        }
        Ok(())
    }

    /// Gives back every lease `holder` holds.
    pub fn release_all(&self, holder: &str) -> Result<(), IntegrationError> {
        self.records
            .lock()
            .execute("UPDATE sync_state SET holder = NULL, held_until = NULL WHERE holder = ?", [holder])
            .map_err(failed)?;
        Ok(())
    }

    /// The record of one connection's sync, none if it never synced.
    pub fn record(&self, plugin: &str, user: &str) -> Result<Option<SyncRecord>, IntegrationError> {
        let records = self.records(Some(plugin), Some(user))?;
        Ok(records.into_iter().next())
    }

    /// Every recorded sync, of one plugin or one user or all, by plugin then user.
    pub fn records(&self, plugin: Option<&str>, user: Option<&str>) -> Result<Vec<SyncRecord>, IntegrationError> {
        let connection = self.records.lock();
        let mut statement = connection
            .prepare_cached(
                "SELECT plugin_id, user_id, holder, held_until, last_sync_at, last_success_at, last_result
                 FROM sync_state WHERE (?1 IS NULL OR plugin_id = ?1) AND (?2 IS NULL OR user_id = ?2)
                 ORDER BY plugin_id, user_id",
            )
            .map_err(failed)?;
        let rows = statement
            .query_map(params![plugin, user], |row| {
                let holder: Option<String> = row.get(2)?;
                let until: Option<i64> = row.get(3)?;
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    holder.zip(until),
                    row.get(4)?,
                    row.get(5)?,
                    row.get::<_, Option<String>>(6)?,
                ))
            })
            .map_err(failed)?;
        let mut records = Vec::new();
        let now = super::now_micros();
        for row in rows {
            let (plugin, user, held, last_sync_at, last_success_at, result) = row.map_err(failed)?;
            let held = held.filter(|(_, until)| *until > now);
            let last_result = match result {
                Some(text) => Some(serde_json::from_str(&text).map_err(|error| {
                    failed(format!("the last sync result of `{plugin}` for `{user}` is unreadable: {error}"))
                })?),
                None => None,
            };
            records.push(SyncRecord { plugin, user, held, last_sync_at, last_success_at, last_result });
        }
        Ok(records)
    }

    /// When the last successful sync of the connection started.
    pub fn last_success(&self, plugin: &str, user: &str) -> Result<Option<i64>, IntegrationError> {
        let connection = self.records.lock();
        let found: Option<Option<i64>> = connection
            .query_row(
                "SELECT last_success_at FROM sync_state WHERE plugin_id = ? AND user_id = ?",
                [plugin, user],
                |row| row.get(0),
            )
            .optional()
            .map_err(failed)?;
        Ok(found.flatten())
    }
}
