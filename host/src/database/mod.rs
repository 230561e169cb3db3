//! The host's database: one SQLite file for plugins, their storage, the vault's key state
//! and the library, its schema brought up to date by numbered migrations
//! (`rusqlite_migration`, which keeps the version in SQLite's `user_version`).
//!
//! Every part of the host that opens the file opens it here, so whichever opens it first
//! migrates it. Migrations run in an immediate transaction (one process at a time) and are
//! written to be harmless when run twice, so two processes opening an old file at once
//! both end up with the same schema.

use rusqlite::{Connection, Transaction, TransactionBehavior};
use rusqlite_migration::{HookResult, M, Migrations};
use std::path::Path;
use std::sync::LazyLock;
use std::time::Duration;

/// The migrations, in order; a migration once shipped is never changed, only followed.
const STEPS: [&str; 8] = [
    include_str!("migrations/01_plugins_storage_vault.sql"),
    include_str!("migrations/02_library.sql"),
    include_str!("migrations/03_plugin_metadata_settings.sql"),
    include_str!("migrations/04_auto_match_runs.sql"),
    include_str!("migrations/05_user_integrations.sql"),
    include_str!("migrations/06_oauth.sql"),
    include_str!("migrations/07_release_sources.sql"),
    include_str!("migrations/08_api_tokens.sql"),
];

/// The schema version this host writes.
pub const SCHEMA_VERSION: usize = STEPS.len();

static MIGRATIONS: LazyLock<Migrations<'static>> = LazyLock::new(|| {
    let [first, second, third, fourth, fifth, sixth, seventh, eighth] = STEPS;
    let steps = vec![
        M::up_with_hook(first, add_columns_of_older_files),
        M::up(second),
        M::up(third),
        M::up(fourth),
        M::up_with_hook(fifth, |transaction: &Transaction<'_>| add_columns(transaction, &STARTED_AT)),
        M::up(sixth),
        M::up_with_hook(seventh, |transaction: &Transaction<'_>| add_columns(transaction, &TRACKING_SETTINGS)),
        M::up(eighth),
    ];
    Migrations::new(steps)
});

/// The database file could not be opened or brought up to date; nothing in it changed.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    #[error("the database file {path} {why}")]
    File { path: String, why: String },
    #[error("could not open the database {path}: {source}")]
    Open { path: String, source: rusqlite::Error },
    #[error(
        "the database {path} was written by a newer version of the host (schema {found}, this one knows up to {known}); run that version, or restore a backup made before the upgrade"
    )]
    TooNew { path: String, found: usize, known: usize },
    #[error("could not bring the database {path} up to date (nothing was changed): {why}")]
    Migrate { path: String, why: String },
}

/// WAL pages after which a commit copies the log back into the database (SQLite's default
/// is 1,000). Every connection to the file uses the same, since whichever commits past it
/// does the copy. A copy costs two fsyncs, and a page written many times between two copies
/// is copied once: at 1,000 pages a library run's saves spent a third of their time in
/// copies (the pipeline bench). The log grows to about 40 MiB before it is reused, and
/// keeps that size on disk (truncating it after each copy would cost a regrowth each time).
const CHECKPOINT_PAGES: i64 = 10_000;

/// Opens the database at `path` (creating it, private to the host's user), with a 5 s busy
/// timeout, WAL and foreign keys, and migrates it to [`SCHEMA_VERSION`].
pub fn open(path: &Path) -> Result<Connection, DatabaseError> {
    prepare_database_file(path)?;
    // Turning a file to WAL takes its lock for a moment, and a process opening the file
    // then may be told "busy" at once, its busy handler not called (SQLite does so where
    // waiting could deadlock): it tries again, for up to 5 s as the busy timeout would.
    let mut attempts = 0;
    loop {
        match open_once(path) {
            Err(DatabaseError::Open { source, .. }) if is_busy(&source) && attempts < OPEN_ATTEMPTS => {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            opened => return opened,
        }
    }
}

/// Tries of [`open`] told "busy": 250 × 20 ms, the busy timeout's 5 s.
const OPEN_ATTEMPTS: u32 = 250;

fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(error.sqlite_error_code(), Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked))
}

fn open_once(path: &Path) -> Result<Connection, DatabaseError> {
    let shown = || path.display().to_string();
    let mut connection = Connection::open(path)
        .and_then(|connection| {
            connection.busy_timeout(Duration::from_secs(5))?;
            connection.pragma_update(None, "journal_mode", "WAL")?;
            connection.pragma_update(None, "wal_autocheckpoint", CHECKPOINT_PAGES)?;
            connection.pragma_update(None, "foreign_keys", "ON")?;
            Ok(connection)
        })
        .map_err(|source| DatabaseError::Open { path: shown(), source })?;
    migrate(&mut connection, path)?;
    Ok(connection)
}

fn migrate(connection: &mut Connection, path: &Path) -> Result<(), DatabaseError> {
    let shown = || path.display().to_string();
    let found: usize = connection
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(|source| DatabaseError::Open { path: shown(), source })?;
    if found > SCHEMA_VERSION {
        return Err(DatabaseError::TooNew { path: shown(), found, known: SCHEMA_VERSION });
    }
    if found == SCHEMA_VERSION {
        return Ok(());
    }
    connection.set_transaction_behavior(TransactionBehavior::Immediate);
    // Another process may migrate between this one reading the version and taking the
    // write lock: it then runs the same migrations again, which change nothing, or fails
    // on one and reads the version again.
    let mut outcome = MIGRATIONS.to_latest(connection);
    if outcome.is_err() {
        outcome = MIGRATIONS.to_latest(connection);
    }
    connection.set_transaction_behavior(TransactionBehavior::Deferred);
    outcome.map_err(|error| DatabaseError::Migrate { path: shown(), why: error.to_string() })
}

/// Columns that files made before migrations may lack: added when missing.
const LATER_COLUMNS: [(&str, &str, &str); 3] = [
    ("plugins", "revision", "INTEGER NOT NULL DEFAULT 0"),
    ("plugin_users", "revision", "INTEGER NOT NULL DEFAULT 0"),
    ("plugins", "install", "TEXT"),
];

/// Added by migration 05 (when a book was started).
const STARTED_AT: [(&str, &str, &str); 1] = [("reading_progress", "started_at", "INTEGER")];
/// Release tracking settings an admin sets per series (migration 07).
const TRACKING_SETTINGS: [(&str, &str, &str); 2] =
    [("series_tracking", "aliases", "TEXT NOT NULL DEFAULT '[]'"), ("series_tracking", "confidence_threshold", "REAL")];

fn add_columns_of_older_files(transaction: &Transaction<'_>) -> HookResult {
    add_columns(transaction, &LATER_COLUMNS)
}

/// Adds each column its table lacks: harmless when run twice.
fn add_columns(transaction: &Transaction<'_>, columns: &[(&str, &str, &str)]) -> HookResult {
    for &(table, column, definition) in columns {
        let present: bool = transaction.query_row(
            "SELECT EXISTS (SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2)",
            [table, column],
            |row| row.get(0),
        )?;
        if !present {
            transaction.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {definition}"))?;
        }
    }
    Ok(())
}

/// Before SQLite opens `path`: a new file is created readable by the host's user alone
/// (0600; SQLite's journal files take the same mode), an existing one readable by others is
/// made so, and an empty one the host did not just create is refused: SQLite would take it
/// for a new, empty database, and every plugin, credential and stored value would be gone
/// without a word.
fn prepare_database_file(path: &Path) -> Result<(), DatabaseError> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let failed = |why: String| DatabaseError::File { path: path.display().to_string(), why };
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

#[cfg(test)]
mod tests;
