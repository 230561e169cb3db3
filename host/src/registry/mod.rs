//! The registry: plugins an admin registered, and each user's connection to them, in the
//! host's SQLite file (the same file as plugin storage).
//!
//! A plugin's identity is the id the admin chose, never the `name` in its manifest. Health
//! is written here only when it changes state (disabled, reset): a successful call never
//! touches the database.

mod connections;
mod definition;
mod plugins;
mod revisions;
mod vault_state;

pub use connections::{RotationReport, UserConnection};
pub use definition::{CredentialDelivery, Launch, PluginDefinition};
pub use plugins::PluginRecord;
pub use revisions::{InstanceRevision, Revision, Revisions};

use rusqlite::Connection;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::vault::VaultError;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS plugins (
    id              TEXT    PRIMARY KEY,
    definition      TEXT    NOT NULL,
    enabled         INTEGER NOT NULL DEFAULT 1,
    disabled_reason TEXT,
    recent_faults   TEXT    NOT NULL DEFAULT '[]',
    manifest        TEXT,
    metrics         TEXT    NOT NULL DEFAULT '{}',
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    revision        INTEGER NOT NULL DEFAULT 0,
    install         TEXT
);
CREATE TABLE IF NOT EXISTS plugin_users (
    plugin_id TEXT NOT NULL REFERENCES plugins (id) ON DELETE CASCADE,
    user_id   TEXT NOT NULL,
    config    TEXT NOT NULL DEFAULT '{}',
    revision  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (plugin_id, user_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS plugin_credentials (
    plugin_id  TEXT NOT NULL REFERENCES plugins (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL,
    name       TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    nonce      BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    PRIMARY KEY (plugin_id, user_id, name)
) WITHOUT ROWID;
";

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("could not open the registry in {path}: {source}")]
    Open { path: String, source: rusqlite::Error },
    #[error(transparent)]
    File(#[from] crate::storage::sqlite::DatabaseFileError),
    #[error("registry database error: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("no plugin is registered as `{0}`")]
    NotRegistered(String),
    #[error("a plugin is already registered as `{0}`")]
    AlreadyRegistered(String),
    #[error("user `{user}` is not connected to plugin `{plugin}`; run `plugin connect {plugin} --user {user}` first")]
    NotConnected { plugin: String, user: String },
    #[error("plugin `{plugin}`: {why}")]
    Invalid { plugin: String, why: String },
    #[error("the stored {what} of plugin `{plugin}` is unreadable: {why}")]
    Corrupt { plugin: String, what: &'static str, why: String },
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(
        "a rotation of the vault's key to {new} is under way, and this command has key {yours}: nothing was written; run it again with the new key"
    )]
    KeyRotating { new: String, yours: String },
    #[error(
        "the credentials here are sealed with key {current}, and this command has key {yours}: nothing was written; give it the vault's current key"
    )]
    StaleKey { current: String, yours: String },
}

/// The registry's connection to the host's database.
pub struct Registry {
    connection: Mutex<Connection>,
}

impl Registry {
    /// Opens (or creates) the registry tables in the database at `path`.
    pub fn open(path: &Path) -> Result<Self, RegistryError> {
        crate::storage::sqlite::prepare_database_file(path)?;
        let opened = Connection::open(path).and_then(|mut connection| {
            connection.busy_timeout(Duration::from_secs(5))?;
            connection.pragma_update(None, "journal_mode", "WAL")?;
            connection.pragma_update(None, "foreign_keys", "ON")?;
            connection.execute_batch(SCHEMA)?;
            connection.execute_batch(vault_state::SCHEMA)?;
            revisions::add_revision_columns(&mut connection)?;
            add_install_column(&connection)?;
            Ok(connection)
        });
        let connection = opened.map_err(|source| RegistryError::Open { path: path.display().to_string(), source })?;
        Ok(Self { connection: Mutex::new(connection) })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.connection.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Adds `plugins.install` to a database made before the host installed npm packages.
fn add_install_column(connection: &Connection) -> rusqlite::Result<()> {
    let present: bool = connection.query_row(
        "SELECT EXISTS (SELECT 1 FROM pragma_table_info('plugins') WHERE name = 'install')",
        [],
        |row| row.get(0),
    )?;
    if !present {
        match connection.execute_batch("ALTER TABLE plugins ADD COLUMN install TEXT") {
            // Another process added it between the check and here.
            Err(rusqlite::Error::SqliteFailure(_, Some(message))) if message.contains("duplicate column") => {}
            other => other?,
        }
    }
    Ok(())
}

/// A user id: what the embedding server calls its user, 1 to 200 characters, no control
/// characters.
pub fn check_user_id(user: &str) -> Result<(), String> {
    if user.is_empty() || user.chars().count() > 200 || user.chars().any(char::is_control) {
        return Err(format!("user id {user:?} must be 1 to 200 characters without control characters"));
    }
    Ok(())
}

fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

#[cfg(test)]
mod tests;
