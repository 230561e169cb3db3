//! How a running host sees admin changes made elsewhere (the command-line tool, another
//! host, a direct registry call): a plugin's revision is bumped by each change to what all
//! its instances start from (definition, admin config, enabled, plugin-wide credentials),
//! a user connection's by each change to what that user's instance starts from (config,
//! credentials). What a host records itself (manifest, metrics, an automatic disable) and
//! a key rotation bump nothing. Each instance remembers the revisions it was started from.

use rusqlite::Connection;
use rustc_hash::FxHashMap;

use super::{Registry, RegistryError};

/// Which registration of a plugin, and how many times it was changed since it was added:
/// a plugin removed and added again under the same id is a new registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revision {
    pub added_at: i64,
    pub changes: i64,
}

/// What one instance was started from: its plugin's revision, and its user connection's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstanceRevision {
    pub plugin: Revision,
    pub user: Option<i64>,
}

/// Every plugin's and every user connection's revision, as registered now.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Revisions {
    pub plugins: FxHashMap<String, Revision>,
    /// By plugin and user.
    pub users: FxHashMap<(String, String), i64>,
}

impl Revisions {
    /// What an instance of `plugin` (for `user`) would be started from now; `None` when
    /// the plugin is not registered, or the user no longer connected.
    pub fn of(&self, plugin: &str, user: Option<&str>) -> Option<InstanceRevision> {
        let plugin_revision = *self.plugins.get(plugin)?;
        let user = match user {
            Some(user) => Some(*self.users.get(&(plugin.to_owned(), user.to_owned()))?),
            None => None,
        };
        Some(InstanceRevision { plugin: plugin_revision, user })
    }
}

impl Registry {
    /// Every revision, read in one transaction.
    pub fn revisions(&self) -> Result<Revisions, RegistryError> {
        let mut connection = self.lock();
        let transaction = connection.transaction()?;
        let mut revisions = Revisions::default();
        {
            let mut plugins = transaction.prepare_cached("SELECT id, created_at, revision FROM plugins")?;
            let rows = plugins
                .query_map([], |row| Ok((row.get(0)?, Revision { added_at: row.get(1)?, changes: row.get(2)? })))?;
            revisions.plugins = rows.collect::<Result<_, _>>()?;
            let mut users = transaction.prepare_cached("SELECT plugin_id, user_id, revision FROM plugin_users")?;
            let rows = users.query_map([], |row| Ok(((row.get(0)?, row.get(1)?), row.get(2)?)))?;
            revisions.users = rows.collect::<Result<_, _>>()?;
        }
        transaction.commit()?;
        Ok(revisions)
    }

    /// A pair that changes whenever anyone commits to the database file: SQLite's
    /// `data_version` for other connections, and this connection's count of changed rows
    /// for its own.
    pub fn data_version(&self) -> Result<(i64, u64), RegistryError> {
        let connection = self.lock();
        let others = connection.query_row("PRAGMA data_version", [], |row| row.get(0))?;
        Ok((others, connection.total_changes()))
    }
}

/// Marks a change to what the plugin's instances start from (`user` `None`), or to what
/// one user's instance starts from.
pub(super) fn bump_revision(connection: &Connection, plugin: &str, user: Option<&str>) -> rusqlite::Result<()> {
    match user {
        None => connection.execute("UPDATE plugins SET revision = revision + 1 WHERE id = ?", [plugin])?,
        Some(user) => connection.execute(
            "UPDATE plugin_users SET revision = revision + 1 WHERE plugin_id = ? AND user_id = ?",
            [plugin, user],
        )?,
    };
    Ok(())
}

impl InstanceRevision {
    /// Whether an instance started from `self` is behind `now` (`None`: no longer
    /// registered). An instance started from a newer revision than `now` (a snapshot read
    /// before its start) is not.
    pub fn is_behind(&self, now: Option<&InstanceRevision>) -> bool {
        let Some(now) = now else { return true };
        let plugin = (self.plugin.added_at, self.plugin.changes);
        let now_plugin = (now.plugin.added_at, now.plugin.changes);
        plugin < now_plugin || (plugin == now_plugin && self.user < now.user)
    }
}
