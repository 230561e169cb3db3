//! The record of library auto-match runs in the host's database (not the library's: it is
//! the host's own bookkeeping, whoever implements the library port).

use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashSet;
use std::path::Path;
use std::sync::Mutex;

use super::PipelineError;

pub struct Runs {
    connection: Mutex<Connection>,
}

fn failed(error: impl std::fmt::Display) -> PipelineError {
    PipelineError::Runs(format!("the auto-match run record could not be used: {error}"))
}

fn now() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

impl Runs {
    /// `synchronous = NORMAL`: a record per item must not wait for an fsync (a power loss
    /// may forget the last records; the resumed run then redoes those items, harmlessly).
    pub fn open(path: &Path) -> Result<Self, PipelineError> {
        let connection = crate::database::open(path).map_err(failed)?;
        connection.pragma_update(None, "synchronous", "NORMAL").map_err(failed)?;
        Ok(Self { connection: Mutex::new(connection) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.connection.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The unfinished run of `plugin` over `library` and what it already did, or a new run.
    pub fn resume_or_start(
        &self,
        plugin: &str,
        library: &str,
        fresh: bool,
    ) -> Result<(i64, HashSet<String>), PipelineError> {
        let connection = self.lock();
        let open: Option<i64> = connection
            .query_row(
                "SELECT id FROM auto_match_runs WHERE plugin_id = ? AND library_id = ? AND finished_at IS NULL ORDER BY id DESC",
                [plugin, library],
                |row| row.get(0),
            )
            .optional()
            .map_err(failed)?;
        match open {
            Some(run) if !fresh => {
                let mut statement = connection
                    .prepare("SELECT target || ':' || target_id FROM auto_match_items WHERE run_id = ?")
                    .map_err(failed)?;
                let done = statement
                    .query_map([run], |row| row.get(0))
                    .and_then(|rows| rows.collect::<Result<HashSet<String>, _>>())
                    .map_err(failed)?;
                Ok((run, done))
            }
            _ => {
                connection
                    .execute(
                        "UPDATE auto_match_runs SET finished_at = ? WHERE plugin_id = ? AND library_id = ? AND finished_at IS NULL",
                        params![now(), plugin, library],
                    )
                    .map_err(failed)?;
                connection
                    .execute(
                        "INSERT INTO auto_match_runs (plugin_id, library_id, started_at) VALUES (?, ?, ?)",
                        params![plugin, library, now()],
                    )
                    .map_err(failed)?;
                Ok((connection.last_insert_rowid(), HashSet::new()))
            }
        }
    }

    pub fn record(&self, run: i64, key: &str, outcome: &str) -> Result<(), PipelineError> {
        let (target, id) = key.split_once(':').unwrap_or(("series", key));
        self.lock()
            .prepare_cached(
                "INSERT INTO auto_match_items (run_id, target, target_id, outcome) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (run_id, target, target_id) DO UPDATE SET outcome = ?4",
            )
            .and_then(|mut statement| statement.execute(params![run, target, id, outcome]))
            .map_err(failed)?;
        Ok(())
    }

    pub fn finish(&self, run: i64) -> Result<(), PipelineError> {
        self.lock()
            .execute("UPDATE auto_match_runs SET finished_at = ? WHERE id = ?", params![now(), run])
            .map_err(failed)?;
        Ok(())
    }
}
