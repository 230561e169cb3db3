//! The release records in the host's database: each plugin's sources (owned by its
//! registered id) with their poll state, the ledger, and the host's release settings.

use codex_plugin_protocol::types::releases::{NumericSpan, ReleaseCandidate, SourceRegistration};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::ReleaseError;
use crate::releases::CheckedCandidate;

/// A source a plugin registered, with the admin's settings and its last poll.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseSource {
    /// The host's id of it (a UUID), which the plugin is given.
    pub id: String,
    /// The registered plugin that owns it.
    pub plugin: String,
    pub source_key: String,
    pub display_name: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Value>,
    pub enabled: bool,
    /// Its own cron schedule; none: the host's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron_schedule: Option<String>,
    pub state: PollState,
}

/// What a source's polls left: microseconds since the epoch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_polled_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_summary: Option<String>,
}

/// A ledger row: a release a source found for a series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LedgerEntry {
    pub id: String,
    pub plugin: String,
    pub source_id: String,
    pub series_id: String,
    /// `announced` or `ignored` when recorded; an admin may mark it `dismissed`,
    /// `marked_acquired` or `hidden`.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chapter: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<i64>,
    pub language: String,
    pub created_at: i64,
    /// The candidate as recorded (spans normalized).
    pub release: ReleaseCandidate,
}

/// The ledger states.
pub const LEDGER_STATES: [&str; 5] = ["announced", "dismissed", "marked_acquired", "ignored", "hidden"];

/// Which ledger rows to read, newest first; by default the latest 50 of any.
#[derive(Debug, Clone)]
pub struct LedgerFilter {
    pub series: Option<String>,
    pub state: Option<String>,
    pub source: Option<String>,
    pub limit: usize,
}

impl Default for LedgerFilter {
    fn default() -> Self {
        Self { series: None, state: None, source: None, limit: 50 }
    }
}

pub(super) struct ReleaseStore(Mutex<Connection>);

fn failed(error: impl std::fmt::Display) -> ReleaseError {
    ReleaseError::Store(error.to_string())
}

const SOURCE_COLUMNS: &str = "id, plugin_id, source_key, display_name, kind, config, enabled, cron_schedule, etag,
     last_polled_at, last_error, last_error_at, last_summary";

fn source_row(row: &Row<'_>) -> rusqlite::Result<ReleaseSource> {
    let config: Option<String> = row.get(5)?;
    Ok(ReleaseSource {
        id: row.get(0)?,
        plugin: row.get(1)?,
        source_key: row.get(2)?,
        display_name: row.get(3)?,
        kind: row.get(4)?,
        config: config.and_then(|text| serde_json::from_str(&text).ok()),
        enabled: row.get(6)?,
        cron_schedule: row.get(7)?,
        state: PollState {
            etag: row.get(8)?,
            last_polled_at: row.get(9)?,
            last_error: row.get(10)?,
            last_error_at: row.get(11)?,
            last_summary: row.get(12)?,
        },
    })
}

impl ReleaseStore {
    pub fn open(path: &Path) -> Result<Self, ReleaseError> {
        Ok(Self(Mutex::new(crate::database::open(path).map_err(failed)?)))
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes `sources` the plugin's whole set, in one transaction: each is added or updated
    /// by its key (an admin's enabled flag and schedule, and the poll state, kept); the
    /// plugin's others are removed with their ledger rows. Answers (registered, pruned).
    pub fn register(&self, plugin: &str, sources: &[SourceRegistration], now: i64) -> Result<(u32, u32), ReleaseError> {
        let mut connection = self.lock();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate).map_err(failed)?;
        for source in sources {
            let config = source.config.as_ref().filter(|config| !config.is_null()).map(Value::to_string);
            transaction
                .prepare_cached(
                    "INSERT INTO release_sources (id, plugin_id, source_key, display_name, kind, config, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
                     ON CONFLICT (plugin_id, source_key) DO UPDATE SET display_name = ?4, kind = ?5, config = ?6, updated_at = ?7",
                )
                .and_then(|mut statement| {
                    statement.execute(params![
                        uuid::Uuid::new_v4().to_string(),
                        plugin,
                        source.source_key,
                        source.display_name,
                        source.kind,
                        config,
                        now
                    ])
                })
                .map_err(failed)?;
        }
        let keys: Vec<&str> = sources.iter().map(|source| source.source_key.as_str()).collect();
        let existing: Vec<(String, String)> = transaction
            .prepare_cached("SELECT id, source_key FROM release_sources WHERE plugin_id = ?")
            .and_then(|mut statement| {
                statement.query_map([plugin], |row| Ok((row.get(0)?, row.get(1)?)))?.collect::<Result<_, _>>()
            })
            .map_err(failed)?;
        let mut pruned = 0;
        for (id, key) in existing {
            if !keys.contains(&key.as_str()) {
                transaction.execute("DELETE FROM release_sources WHERE id = ?", [id]).map_err(failed)?;
                pruned += 1;
            }
        }
        transaction.commit().map_err(failed)?;
        Ok((sources.len() as u32, pruned))
    }

    pub fn source(&self, id: &str) -> Result<Option<ReleaseSource>, ReleaseError> {
        let connection = self.lock();
        let query = format!("SELECT {SOURCE_COLUMNS} FROM release_sources WHERE id = ?");
        connection
            .prepare_cached(&query)
            .and_then(|mut statement| statement.query_row([id], source_row).optional())
            .map_err(failed)
    }

    /// Every source, or one plugin's, by plugin and key.
    pub fn sources(&self, plugin: Option<&str>) -> Result<Vec<ReleaseSource>, ReleaseError> {
        let connection = self.lock();
        let query = format!(
            "SELECT {SOURCE_COLUMNS} FROM release_sources WHERE ?1 IS NULL OR plugin_id = ?1 ORDER BY plugin_id, source_key"
        );
        connection
            .prepare_cached(&query)
            .and_then(|mut statement| statement.query_map([plugin], source_row)?.collect::<Result<_, _>>())
            .map_err(failed)
    }

    pub fn set_etag(&self, id: &str, etag: &str, now: i64) -> Result<(), ReleaseError> {
        self.lock()
            .execute("UPDATE release_sources SET etag = ?2, updated_at = ?3 WHERE id = ?1", params![id, etag, now])
            .map(drop)
            .map_err(failed)
    }

    /// A poll that got an answer: its time, summary, etag (when it gave one), and its
    /// upstream's warning as the error (none: the last error is cleared).
    pub fn poll_answered(
        &self,
        id: &str,
        etag: Option<&str>,
        summary: &str,
        warning: Option<&str>,
        now: i64,
    ) -> Result<(), ReleaseError> {
        self.lock()
            .execute(
                "UPDATE release_sources SET last_polled_at = ?5, etag = COALESCE(?2, etag), last_summary = ?3,
                     last_error = ?4, last_error_at = CASE WHEN ?4 IS NULL THEN NULL ELSE ?5 END, updated_at = ?5
                 WHERE id = ?1",
                params![id, etag, summary, warning, now],
            )
            .map(drop)
            .map_err(failed)
    }

    /// A poll that failed, or was not made: why.
    pub fn poll_failed(&self, id: &str, error: &str, now: i64) -> Result<(), ReleaseError> {
        self.lock()
            .execute(
                "UPDATE release_sources SET last_error = ?2, last_error_at = ?3, updated_at = ?3 WHERE id = ?1",
                params![id, error, now],
            )
            .map(drop)
            .map_err(failed)
    }

    /// An admin's settings of a source: enabled, and its own schedule (`Some(None)` clears it).
    pub fn set_source_settings(
        &self,
        id: &str,
        enabled: Option<bool>,
        schedule: Option<Option<&str>>,
    ) -> Result<(), ReleaseError> {
        let connection = self.lock();
        if let Some(enabled) = enabled {
            connection
                .execute("UPDATE release_sources SET enabled = ?2 WHERE id = ?1", params![id, enabled])
                .map_err(failed)?;
        }
        if let Some(schedule) = schedule {
            connection
                .execute("UPDATE release_sources SET cron_schedule = ?2 WHERE id = ?1", params![id, schedule])
                .map_err(failed)?;
        }
        Ok(())
    }

    /// The ledger row of this release, if it has one: the same source and release id, or
    /// the same info hash from one of the plugin's sources.
    pub fn existing_release(
        &self,
        source: &ReleaseSource,
        candidate: &ReleaseCandidate,
    ) -> Result<Option<String>, ReleaseError> {
        existing_release(&self.lock(), source, candidate)
    }

    /// Adds a release unless the ledger has it ([`ReleaseStore::existing_release`]);
    /// answers its row id and whether it was added.
    pub fn insert_release(
        &self,
        source: &ReleaseSource,
        candidate: &ReleaseCandidate,
        checked: &CheckedCandidate,
        state: &str,
        now: i64,
    ) -> Result<(String, bool), ReleaseError> {
        let mut connection = self.lock();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate).map_err(failed)?;
        if let Some(id) = existing_release(&transaction, source, candidate)? {
            return Ok((id, false));
        }
        let id = uuid::Uuid::new_v4().to_string();
        let json = |value: Option<&Value>| value.map(Value::to_string);
        let spans = |spans: &Option<Vec<NumericSpan>>| {
            spans.as_ref().map(|spans| serde_json::to_string(spans).unwrap_or_default())
        };
        transaction
            .execute(
                "INSERT INTO release_ledger (id, plugin_id, source_id, series_id, external_release_id, info_hash, chapter,
                     volume, chapters, volumes, language, format_hints, group_or_uploader, payload_url, media_url,
                     media_url_kind, confidence, state, metadata, observed_at, released_at, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)",
                params![
                    id,
                    source.plugin,
                    source.id,
                    candidate.series_match.codex_series_id,
                    candidate.external_release_id,
                    candidate.info_hash,
                    checked.chapter,
                    checked.volume,
                    spans(&checked.chapters),
                    spans(&checked.volumes),
                    candidate.language,
                    json(candidate.format_hints.as_ref()),
                    candidate.group_or_uploader,
                    candidate.payload_url,
                    candidate.media_url,
                    candidate.media_url_kind.as_ref().map(|kind| kind.as_str()),
                    candidate.series_match.confidence,
                    state,
                    json(candidate.metadata.as_ref()),
                    checked.observed_at.timestamp_micros(),
                    checked.released_at.map(|at| at.timestamp_micros()),
                    now
                ],
            )
            .map_err(failed)?;
        transaction.commit().map_err(failed)?;
        Ok((id, true))
    }

    /// Ledger rows, newest first.
    pub fn ledger(&self, filter: &LedgerFilter) -> Result<Vec<LedgerEntry>, ReleaseError> {
        let connection = self.lock();
        let mut statement = connection
            .prepare_cached(
                "SELECT l.id, l.plugin_id, l.source_id, l.series_id, l.state, l.chapter, l.volume, l.language, l.created_at,
                        l.external_release_id, l.info_hash, l.chapters, l.volumes, l.format_hints, l.group_or_uploader,
                        l.payload_url, l.media_url, l.media_url_kind, l.confidence, l.metadata, l.observed_at, l.released_at
                 FROM release_ledger l
                 WHERE (?1 IS NULL OR l.series_id = ?1) AND (?2 IS NULL OR l.state = ?2) AND (?3 IS NULL OR l.source_id = ?3)
                 ORDER BY l.observed_at DESC, l.created_at DESC, l.id LIMIT ?4",
            )
            .map_err(failed)?;
        let rows = statement
            .query_map(params![filter.series, filter.state, filter.source, filter.limit as i64], ledger_row)
            .map_err(failed)?;
        rows.collect::<Result<_, _>>().map_err(failed)
    }

    /// Sets a ledger row's state (an admin's); false when there is no such row.
    pub fn set_ledger_state(&self, id: &str, state: &str) -> Result<bool, ReleaseError> {
        let changed = self.lock().execute("UPDATE release_ledger SET state = ?2 WHERE id = ?1", params![id, state]);
        changed.map(|rows| rows > 0).map_err(failed)
    }

    /// The host's languages that advance a series' latest known chapter (none set: empty).
    pub fn default_languages(&self) -> Result<Vec<String>, ReleaseError> {
        let stored = self.setting(super::DEFAULT_LANGUAGES_SETTING)?;
        Ok(stored.and_then(|value| serde_json::from_value(value).ok()).unwrap_or_default())
    }

    pub fn setting(&self, key: &str) -> Result<Option<Value>, ReleaseError> {
        let text: Option<String> = self
            .lock()
            .query_row("SELECT value FROM release_settings WHERE key = ?", [key], |row| row.get(0))
            .optional()
            .map_err(failed)?;
        Ok(text.and_then(|text| serde_json::from_str(&text).ok()))
    }

    pub fn set_setting(&self, key: &str, value: &Value) -> Result<(), ReleaseError> {
        self.lock()
            .execute(
                "INSERT INTO release_settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = ?2",
                params![key, value.to_string()],
            )
            .map(drop)
            .map_err(failed)
    }
}

fn existing_release(
    connection: &Connection,
    source: &ReleaseSource,
    candidate: &ReleaseCandidate,
) -> Result<Option<String>, ReleaseError> {
    connection
        .query_row(
            "SELECT id FROM release_ledger WHERE source_id = ?1 AND external_release_id = ?2
             UNION ALL
             SELECT id FROM release_ledger WHERE plugin_id = ?3 AND info_hash = ?4
             LIMIT 1",
            params![source.id, candidate.external_release_id, source.plugin, candidate.info_hash],
            |row| row.get(0),
        )
        .optional()
        .map_err(failed)
}

fn ledger_row(row: &Row<'_>) -> rusqlite::Result<LedgerEntry> {
    let document = |index: usize| -> rusqlite::Result<Option<Value>> {
        Ok(row.get::<_, Option<String>>(index)?.and_then(|text| serde_json::from_str(&text).ok()))
    };
    let spans = |index: usize| -> rusqlite::Result<Option<Vec<NumericSpan>>> {
        Ok(row.get::<_, Option<String>>(index)?.and_then(|text| serde_json::from_str(&text).ok()))
    };
    let time = super::rfc3339_utc;
    let series_id: String = row.get(3)?;
    let release = ReleaseCandidate {
        series_match: codex_plugin_protocol::types::releases::SeriesMatch {
            codex_series_id: series_id.clone(),
            confidence: row.get(18)?,
            reason: String::new(),
        },
        external_release_id: row.get(9)?,
        info_hash: row.get(10)?,
        chapters: spans(11)?,
        volumes: spans(12)?,
        format_hints: document(13)?,
        group_or_uploader: row.get(14)?,
        payload_url: row.get(15)?,
        media_url: row.get(16)?,
        media_url_kind: row
            .get::<_, Option<String>>(17)?
            .and_then(|kind| serde_json::from_value(Value::String(kind)).ok()),
        metadata: document(19)?,
        language: row.get(7)?,
        observed_at: time(row.get(20)?),
        released_at: row.get::<_, Option<i64>>(21)?.map(time),
    };
    Ok(LedgerEntry {
        id: row.get(0)?,
        plugin: row.get(1)?,
        source_id: row.get(2)?,
        series_id,
        state: row.get(4)?,
        chapter: row.get(5)?,
        volume: row.get(6)?,
        language: row.get(7)?,
        created_at: row.get(8)?,
        release,
    })
}
