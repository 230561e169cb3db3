//! The record of library auto-match runs in the host's database (not the library's: it is
//! the host's own bookkeeping, whoever implements the library port).

use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashSet;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

    /// Records items' outcomes (`target:id` keys) in one transaction.
    fn record(&self, run: i64, items: &[(String, &'static str)]) -> Result<(), PipelineError> {
        let mut connection = self.lock();
        let transaction = connection.transaction().map_err(failed)?;
        {
            let mut insert = transaction
                .prepare_cached(
                    "INSERT INTO auto_match_items (run_id, target, target_id, outcome) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (run_id, target, target_id) DO UPDATE SET outcome = ?4",
                )
                .map_err(failed)?;
            for (key, outcome) in items {
                let (target, id) = key.split_once(':').unwrap_or(("series", key));
                insert.execute(params![run, target, id, outcome]).map_err(failed)?;
            }
        }
        transaction.commit().map_err(failed)
    }

    fn finish(&self, run: i64) -> Result<(), PipelineError> {
        self.lock()
            .execute("UPDATE auto_match_runs SET finished_at = ? WHERE id = ?", params![now(), run])
            .map_err(failed)?;
        Ok(())
    }
}

/// The most outcomes a run keeps before it writes them.
const RECORD_EVERY_ITEMS: usize = 64;
/// The longest a run keeps an outcome before it writes it.
const RECORD_EVERY: Duration = Duration::from_millis(250);

/// A run's record as its items end: outcomes written in batches (every 64 items or 250 ms,
/// whichever comes first: the run's loop wakes for [`Recorder::due_in`] even while no item
/// ends), and whatever is left when the run ends or its job is dropped,
/// so that an interrupted run's next start skips every item it finished. A process killed
/// outright forgets at most the last 250 ms of outcomes: those items are done again, which
/// writes nothing new.
pub struct Recorder<'a> {
    runs: &'a Runs,
    run: i64,
    pending: Vec<(String, &'static str)>,
    since: Instant,
}

impl<'a> Recorder<'a> {
    pub fn new(runs: &'a Runs, run: i64) -> Self {
        Self { runs, run, pending: Vec::new(), since: Instant::now() }
    }

    pub fn add(&mut self, key: String, outcome: &'static str) -> Result<(), PipelineError> {
        self.pending.push((key, outcome));
        if self.pending.len() >= RECORD_EVERY_ITEMS || self.since.elapsed() >= RECORD_EVERY {
            self.flush()?;
        }
        Ok(())
    }

    /// How long until what is waiting must be written; `None` when nothing waits.
    pub fn due_in(&self) -> Option<Duration> {
        (!self.pending.is_empty()).then(|| RECORD_EVERY.saturating_sub(self.since.elapsed()))
    }

    pub fn flush(&mut self) -> Result<(), PipelineError> {
        if !self.pending.is_empty() {
            self.runs.record(self.run, &self.pending)?;
            self.pending.clear();
        }
        self.since = Instant::now();
        Ok(())
    }

    /// Writes what is left and marks the run finished.
    pub fn finish(mut self) -> Result<(), PipelineError> {
        self.flush()?;
        self.runs.finish(self.run)
    }
}

impl Drop for Recorder<'_> {
    fn drop(&mut self) {
        if let Err(error) = self.flush() {
            tracing::warn!("{error}; the next run does those items again");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs over a fresh database with plugin `echo` registered.
    fn fresh(dir: &Path) -> (std::path::PathBuf, Runs) {
        let path = dir.join("host.sqlite3");
        let runs = Runs::open(&path).unwrap();
        runs.lock()
            .execute("INSERT INTO plugins (id, definition, created_at, updated_at) VALUES ('echo', '{}', 0, 0)", [])
            .unwrap();
        (path, runs)
    }

    fn items(path: &Path) -> i64 {
        let connection = Connection::open(path).unwrap();
        connection.query_row("SELECT COUNT(*) FROM auto_match_items", [], |row| row.get(0)).unwrap()
    }

    #[test]
    fn outcomes_are_written_in_batches_and_what_is_left_when_the_record_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let (path, runs) = fresh(dir.path());
        let (run, done) = runs.resume_or_start("echo", "manga", false).unwrap();
        assert!(done.is_empty());
        let mut record = Recorder::new(&runs, run);
        for index in 0..RECORD_EVERY_ITEMS - 1 {
            record.add(format!("series:s{index}"), "applied").unwrap();
        }
        assert_eq!(items(&path), 0, "written before a batch was full");
        record.add("book:b1".into(), "no_match").unwrap();
        assert_eq!(items(&path), RECORD_EVERY_ITEMS as i64);
        record.add("series:last".into(), "applied").unwrap();
        // The job is dropped (interrupted): what it finished is written all the same.
        drop(record);
        let (resumed, done) = runs.resume_or_start("echo", "manga", false).unwrap();
        assert_eq!(resumed, run);
        assert_eq!(done.len(), RECORD_EVERY_ITEMS + 1);
        assert!(done.contains("book:b1") && done.contains("series:last") && done.contains("series:s0"));
    }

    #[test]
    fn an_outcome_waits_no_longer_than_the_batch_interval() {
        let dir = tempfile::tempdir().unwrap();
        let (path, runs) = fresh(dir.path());
        let (run, _) = runs.resume_or_start("echo", "manga", false).unwrap();
        let mut record = Recorder::new(&runs, run);
        record.add("series:a".into(), "applied").unwrap();
        std::thread::sleep(RECORD_EVERY);
        record.add("series:b".into(), "applied").unwrap();
        assert_eq!(items(&path), 2);
        record.finish().unwrap();
        let (next, done) = runs.resume_or_start("echo", "manga", false).unwrap();
        assert_ne!(next, run, "a finished run is not resumed");
        assert!(done.is_empty());
    }
}
