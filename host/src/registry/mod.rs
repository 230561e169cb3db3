//! The registry: plugins an admin registered, and each user's connection to them, in the
//! host's SQLite file (the same file as plugin storage).
//!
//! A plugin's identity is the id the admin chose, never the `name` in its manifest. Health
//! is written here only when it changes state (disabled, reset): a successful call never
//! touches the database.

mod connections;
mod definition;
mod metadata_settings;
mod plugins;
mod revisions;
mod vault_state;

pub use connections::{HOST_SECRET_PREFIX, RotationReport, UserConnection};
pub use definition::{CredentialDelivery, Launch, PluginDefinition};
pub use metadata_settings::ProviderSource;
pub use plugins::PluginRecord;
pub use revisions::{InstanceRevision, Revision, Revisions};

use rusqlite::Connection;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::vault::VaultError;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    File(#[from] crate::database::DatabaseError),
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
        let connection = crate::database::open(path)?;
        Ok(Self { connection: Mutex::new(connection) })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.connection.lock().unwrap_or_else(PoisonError::into_inner)
    }
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
