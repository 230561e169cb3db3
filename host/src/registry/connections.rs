//! Users' connections to plugins, and credentials, sealed by the vault and bound to their
//! row. A plugin-wide credential has the empty user id.

use rusqlite::{OptionalExtension, TransactionBehavior, params};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::ops::ControlFlow;

use super::revisions::bump_revision;
use super::{Registry, RegistryError, check_user_id};
use crate::vault::{RowBinding, Sealed, Secret, Vault};

/// Credentials whose names start with this are the host's own (an OAuth refresh token, a
/// client secret): sealed and rotated with the others, never sent to the plugin.
pub const HOST_SECRET_PREFIX: &str = "_codex.";

/// One user's connection to a plugin.
#[derive(Debug, Clone, PartialEq)]
pub struct UserConnection {
    pub user: String,
    /// Sent as `userConfig` (without its host-only `_codex` key).
    pub config: Map<String, Value>,
    /// How many changes to the connection (see [`super::revisions`]).
    pub revision: i64,
}

/// What a key rotation did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RotationReport {
    /// Values re-sealed under the new key.
    pub rotated: usize,
    /// Values left for a later run, when the rotation was stopped.
    pub remaining: usize,
    /// Values no key of the vault opens (a third key, or damaged): left as they are, and
    /// logged.
    pub unreadable: usize,
    /// Whether the rotation ended: no value is under another key, and the new key is the
    /// vault's current one. Until then writers holding the old key are refused.
    pub finished: bool,
}

impl Registry {
    /// Connects a user to a plugin, or replaces the user's configuration.
    pub fn connect_user(&self, plugin: &str, user: &str, config: Map<String, Value>) -> Result<(), RegistryError> {
        check_user_id(user).map_err(|why| RegistryError::Invalid { plugin: plugin.to_owned(), why })?;
        self.get(plugin)?;
        self.lock().execute(
            "INSERT INTO plugin_users (plugin_id, user_id, config) VALUES (?, ?, ?)
             ON CONFLICT (plugin_id, user_id) DO UPDATE SET config = excluded.config, revision = revision + 1",
            params![plugin, user, Value::Object(config).to_string()],
        )?;
        Ok(())
    }

    /// A user's connection to a plugin.
    pub fn user_connection(&self, plugin: &str, user: &str) -> Result<UserConnection, RegistryError> {
        let connection = self.lock();
        let mut statement = connection
            .prepare_cached("SELECT config, revision FROM plugin_users WHERE plugin_id = ? AND user_id = ?")?;
        let row: Option<(String, i64)> =
            statement.query_row([plugin, user], |row| Ok((row.get(0)?, row.get(1)?))).optional()?;
        let not_connected = || RegistryError::NotConnected { plugin: plugin.to_owned(), user: user.to_owned() };
        let (config, revision) = row.ok_or_else(not_connected)?;
        let corrupt = |why: String| RegistryError::Corrupt { plugin: plugin.to_owned(), what: "user config", why };
        let config = serde_json::from_str(&config).map_err(|error| corrupt(error.to_string()))?;
        Ok(UserConnection { user: user.to_owned(), config, revision })
    }

    /// Every user connected to a plugin, by user id.
    pub fn users(&self, plugin: &str) -> Result<Vec<UserConnection>, RegistryError> {
        let connection = self.lock();
        let mut statement = connection.prepare_cached(
            "SELECT user_id, config, revision FROM plugin_users WHERE plugin_id = ? ORDER BY user_id",
        )?;
        let rows = statement.query_map([plugin], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get::<_, i64>(2)?))
        })?;
        let corrupt = |why: String| RegistryError::Corrupt { plugin: plugin.to_owned(), what: "user config", why };
        rows.map(|row| {
            let (user, config, revision) = row?;
            let config = serde_json::from_str(&config).map_err(|error| corrupt(error.to_string()))?;
            Ok(UserConnection { user, config, revision })
        })
        .collect()
    }

    /// Seals and stores credentials of a plugin (`user` `None`) or of one user's connection,
    /// replacing values of the same names, all or none.
    pub fn set_credentials(
        &self,
        vault: &Vault,
        plugin: &str,
        user: Option<&str>,
        values: &BTreeMap<String, Secret>,
    ) -> Result<(), RegistryError> {
        self.get(plugin)?;
        if let Some(user) = user {
            self.user_connection(plugin, user)?;
        }
        let user = user.unwrap_or_default();
        if let Some(name) = values.keys().find(|name| name.is_empty() || name.chars().any(char::is_control)) {
            return Err(RegistryError::Invalid { plugin: plugin.to_owned(), why: format!("credential name {name:?}") });
        }
        let mut connection = self.lock();
        // Immediate: the key check and the writes see one state of the vault.
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        super::vault_state::check_writer(&transaction, vault.current_key_id())?;
        for (field, value) in values {
            let sealed = vault.seal(RowBinding { plugin, user, field }, value);
            transaction.execute(
                "INSERT INTO plugin_credentials (plugin_id, user_id, name, key_id, nonce, ciphertext)
                 VALUES (?, ?, ?, ?, ?, ?)
                 ON CONFLICT (plugin_id, user_id, name) DO UPDATE
                 SET key_id = excluded.key_id, nonce = excluded.nonce, ciphertext = excluded.ciphertext",
                params![plugin, user, field, sealed.key_id, sealed.nonce, sealed.ciphertext],
            )?;
        }
        bump_revision(&transaction, plugin, Some(user).filter(|user| !user.is_empty()))?;
        transaction.commit()?;
        Ok(())
    }

    /// The names of a plugin's (or a user's) credentials, without their values.
    pub fn credential_names(&self, plugin: &str, user: Option<&str>) -> Result<Vec<String>, RegistryError> {
        Ok(self.sealed_credentials(plugin, user.unwrap_or_default())?.into_keys().collect())
    }

    /// Opens a plugin's credentials, or a user's merged over the plugin's (the user's win):
    /// what the plugin is given, so without the host's own secrets.
    pub fn credentials(
        &self,
        vault: &Vault,
        plugin: &str,
        user: Option<&str>,
    ) -> Result<BTreeMap<String, Secret>, RegistryError> {
        let mut opened = BTreeMap::new();
        for user in std::iter::once("").chain(user) {
            for (field, sealed) in self.sealed_credentials(plugin, user)? {
                if field.starts_with(HOST_SECRET_PREFIX) {
                    continue;
                }
                let secret = vault.open(RowBinding { plugin, user, field: &field }, &sealed)?;
                opened.insert(field, secret);
            }
        }
        Ok(opened)
    }

    /// One of the host's own secrets of a plugin (`user` none) or of a connection.
    pub fn host_secret(
        &self,
        vault: &Vault,
        plugin: &str,
        user: Option<&str>,
        name: &str,
    ) -> Result<Option<Secret>, RegistryError> {
        let user = user.unwrap_or_default();
        match self.sealed_credentials(plugin, user)?.remove(name) {
            Some(sealed) => Ok(Some(vault.open(RowBinding { plugin, user, field: name }, &sealed)?)),
            None => Ok(None),
        }
    }

    /// Changes the connection's revision, so its running instance restarts (its token's
    /// state changed outside the credentials).
    pub fn touch_connection(&self, plugin: &str, user: &str) -> Result<(), RegistryError> {
        let mut connection = self.lock();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        bump_revision(&transaction, plugin, Some(user))?;
        transaction.commit()?;
        Ok(())
    }

    /// Deletes credentials of a plugin (`user` none) or of a connection, by name.
    pub fn remove_credentials(&self, plugin: &str, user: Option<&str>, names: &[&str]) -> Result<(), RegistryError> {
        let user = user.unwrap_or_default();
        let mut connection = self.lock();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for name in names {
            transaction.execute(
                "DELETE FROM plugin_credentials WHERE plugin_id = ? AND user_id = ? AND name = ?",
                params![plugin, user, name],
            )?;
        }
        bump_revision(&transaction, plugin, Some(user).filter(|user| !user.is_empty()))?;
        transaction.commit()?;
        Ok(())
    }

    /// Disconnects a user from a plugin: their configuration, credentials, tokens, sync
    /// records and cached recommendations go; their instance stops (its revision is gone).
    pub fn disconnect_user(&self, plugin: &str, user: &str) -> Result<(), RegistryError> {
        self.user_connection(plugin, user)?;
        let mut connection = self.lock();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        transaction.execute("DELETE FROM plugin_credentials WHERE plugin_id = ? AND user_id = ?", [plugin, user])?;
        transaction.execute("DELETE FROM plugin_users WHERE plugin_id = ? AND user_id = ?", [plugin, user])?;
        transaction.commit()?;
        Ok(())
    }

    pub(super) fn sealed_credentials(
        &self,
        plugin: &str,
        user: &str,
    ) -> Result<BTreeMap<String, Sealed>, RegistryError> {
        let connection = self.lock();
        let mut statement = connection.prepare_cached(
            "SELECT name, key_id, nonce, ciphertext FROM plugin_credentials WHERE plugin_id = ? AND user_id = ?",
        )?;
        let rows = statement.query_map([plugin, user], |row| {
            Ok((row.get(0)?, Sealed { key_id: row.get(1)?, nonce: row.get(2)?, ciphertext: row.get(3)? }))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Re-seals every credential not yet under the vault's current key, one row at a time:
    /// each row is rewritten in one statement, guarded by its old key id, so an interrupted
    /// rotation leaves every value readable under exactly one key, and running it again
    /// finishes the work. `progress` sees each rotated row and may stop the rotation.
    ///
    /// From its start writers holding the old key are refused; it ends, when every value
    /// opened, in one transaction that re-seals what is still under another key and names
    /// the new key current ([`RotationReport::finished`]).
    pub fn rotate_credentials(
        &self,
        vault: &Vault,
        mut progress: impl FnMut(RowBinding<'_>) -> ControlFlow<()>,
    ) -> Result<RotationReport, RegistryError> {
        self.begin_rotation(vault)?;
        let pending: Vec<(String, String, String, Sealed)> = {
            let connection = self.lock();
            let mut statement = connection.prepare(
                "SELECT plugin_id, user_id, name, key_id, nonce, ciphertext FROM plugin_credentials
                 WHERE key_id != ? ORDER BY plugin_id, user_id, name",
            )?;
            let rows = statement.query_map([vault.current_key_id()], |row| {
                let sealed = Sealed { key_id: row.get(3)?, nonce: row.get(4)?, ciphertext: row.get(5)? };
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, sealed))
            })?;
            rows.collect::<Result<_, _>>()?
        };
        let mut report = RotationReport { rotated: 0, remaining: pending.len(), unreadable: 0, finished: false };
        for (plugin, user, field, sealed) in &pending {
            let row = RowBinding { plugin, user, field };
            report.remaining -= 1;
            let opened = match vault.open(row, sealed) {
                Ok(opened) => opened,
                Err(error) => {
                    tracing::error!("not rotated: {error}");
                    report.unreadable += 1;
                    continue;
                }
            };
            let resealed = vault.seal(row, &opened);
            // Guarded by the old nonce: a value written meanwhile is newer, and kept.
            self.lock().execute(
                "UPDATE plugin_credentials SET key_id = ?, nonce = ?, ciphertext = ?
                 WHERE plugin_id = ? AND user_id = ? AND name = ? AND key_id = ? AND nonce = ?",
                params![
                    resealed.key_id,
                    resealed.nonce,
                    resealed.ciphertext,
                    plugin,
                    user,
                    field,
                    sealed.key_id,
                    sealed.nonce
                ],
            )?;
            report.rotated += 1;
            if progress(row).is_break() {
                return Ok(report);
            }
        }
        if report.unreadable == 0 {
            report.rotated += self.finish_rotation(vault)?;
            report.finished = true;
        }
        Ok(report)
    }
}
