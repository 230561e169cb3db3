//! Which key the stored credentials are sealed with, and whether a rotation is under way:
//! one row, read and written inside the same transactions that write credentials.
//!
//! A writer (the `plugin credentials` command, a host) seals with the key it holds. It may
//! write only when that key is the vault's current one, checked in its own write
//! transaction, so no value is ever sealed under a key the vault has moved away from.
//! While a rotation to a new key is under way, only a writer holding the new key may write:
//! one holding the old key is refused and told why. The rotation ends in one transaction
//! that re-seals anything still under another key and only then names the new key current.

use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};

use super::{Registry, RegistryError};
use crate::vault::{RowBinding, Sealed, Vault};

/// The vault's keys as the database records them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct KeyState {
    /// The key every stored value is sealed with; before any was recorded, the key of the
    /// values already there (databases from before this table), if any.
    current: Option<String>,
    /// The key a rotation under way moves the values to.
    rotating_to: Option<String>,
}

fn read_state(transaction: &Transaction<'_>) -> Result<KeyState, RegistryError> {
    let recorded = transaction
        .query_row("SELECT current_key_id, rotating_to FROM vault_state WHERE singleton = 1", [], |row| {
            Ok(KeyState { current: row.get(0)?, rotating_to: row.get(1)? })
        })
        .optional()?;
    let mut state = recorded.unwrap_or_default();
    if state.current.is_none() {
        state.current =
            transaction.query_row("SELECT key_id FROM plugin_credentials LIMIT 1", [], |row| row.get(0)).optional()?;
    }
    Ok(state)
}

fn write_state(transaction: &Transaction<'_>, state: &KeyState) -> Result<(), RegistryError> {
    transaction.execute(
        "INSERT INTO vault_state (singleton, current_key_id, rotating_to) VALUES (1, ?, ?)
         ON CONFLICT (singleton) DO UPDATE SET current_key_id = excluded.current_key_id, rotating_to = excluded.rotating_to",
        params![state.current, state.rotating_to],
    )?;
    Ok(())
}

/// Whether a writer sealing with `key_id` may write now; records the key on the first write.
pub(super) fn check_writer(transaction: &Transaction<'_>, key_id: &str) -> Result<(), RegistryError> {
    let mut state = read_state(transaction)?;
    match (&state.rotating_to, &state.current) {
        (Some(new), _) if new != key_id => {
            Err(RegistryError::KeyRotating { new: new.clone(), yours: key_id.to_owned() })
        }
        (Some(_), _) => Ok(()),
        (None, Some(current)) if current != key_id => {
            Err(RegistryError::StaleKey { current: current.clone(), yours: key_id.to_owned() })
        }
        (None, Some(_)) => Ok(()),
        (None, None) => {
            state.current = Some(key_id.to_owned());
            write_state(transaction, &state)
        }
    }
}

impl Registry {
    /// Starts (or resumes) a rotation from `vault`'s older key to its current one: from now
    /// on, writers holding the old key are refused.
    pub(super) fn begin_rotation(&self, vault: &Vault) -> Result<(), RegistryError> {
        let new = vault.current_key_id();
        let mut connection = self.lock();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut state = read_state(&transaction)?;
        if let Some(other) = state.rotating_to.as_ref().filter(|other| *other != new) {
            return Err(RegistryError::KeyRotating { new: other.clone(), yours: new.to_owned() });
        }
        if let Some(current) = state.current.as_ref().filter(|current| *current != new && !vault.holds(current)) {
            return Err(RegistryError::StaleKey { current: current.clone(), yours: vault.older_key_ids().join(", ") });
        }
        state.rotating_to = Some(new.to_owned());
        write_state(&transaction, &state)?;
        transaction.commit()?;
        Ok(())
    }

    /// Ends a rotation in one transaction: every value still under another key is re-sealed
    /// under the new one (a value no key opens stops it, and the rotation stays under way),
    /// then the new key is current. Returns how many values it re-sealed.
    pub(super) fn finish_rotation(&self, vault: &Vault) -> Result<usize, RegistryError> {
        let new = vault.current_key_id();
        let mut connection = self.lock();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let stragglers: Vec<(String, String, String, Sealed)> = {
            let mut statement = transaction.prepare(
                "SELECT plugin_id, user_id, name, key_id, nonce, ciphertext FROM plugin_credentials WHERE key_id != ?",
            )?;
            let rows = statement.query_map([new], |row| {
                let sealed = Sealed { key_id: row.get(3)?, nonce: row.get(4)?, ciphertext: row.get(5)? };
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, sealed))
            })?;
            rows.collect::<Result<_, _>>()?
        };
        for (plugin, user, field, sealed) in &stragglers {
            let row = RowBinding { plugin, user, field };
            let resealed = vault.seal(row, &vault.open(row, sealed)?);
            transaction.execute(
                "UPDATE plugin_credentials SET key_id = ?, nonce = ?, ciphertext = ?
                 WHERE plugin_id = ? AND user_id = ? AND name = ?",
                params![resealed.key_id, resealed.nonce, resealed.ciphertext, plugin, user, field],
            )?;
        }
        write_state(&transaction, &KeyState { current: Some(new.to_owned()), rotating_to: None })?;
        transaction.commit()?;
        Ok(stragglers.len())
    }
}
