//! How a running host sees admin changes made by another process (the command-line tool,
//! another host): every plugin has a revision, bumped by each change to what its instances
//! start from (definition, admin config, enabled, users, credentials), and not by what a
//! host records itself (manifest, metrics, an automatic disable). SQLite's `data_version`
//! tells, for the price of one pragma, whether anyone else committed at all.

use rusqlite::{Connection, OptionalExtension};
use rustc_hash::FxHashMap;

use super::{Registry, RegistryError};

/// Which registration of a plugin, and how many times it was changed since it was added:
/// a plugin removed and added again under the same id is a new registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revision {
    pub added_at: i64,
    pub changes: i64,
}

/// Each registered plugin's revision, by id.
pub type Revisions = FxHashMap<String, Revision>;

impl Registry {
    pub fn revisions(&self) -> Result<Revisions, RegistryError> {
        let connection = self.lock();
        let mut statement = connection.prepare_cached("SELECT id, created_at, revision FROM plugins")?;
        let rows = statement
            .query_map([], |row| Ok((row.get(0)?, Revision { added_at: row.get(1)?, changes: row.get(2)? })))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The plugin's revision; `None` when it is not registered.
    pub fn revision(&self, plugin: &str) -> Result<Option<Revision>, RegistryError> {
        let connection = self.lock();
        let mut statement = connection.prepare_cached("SELECT created_at, revision FROM plugins WHERE id = ?")?;
        let read = |row: &rusqlite::Row<'_>| Ok(Revision { added_at: row.get(0)?, changes: row.get(1)? });
        Ok(statement.query_row([plugin], read).optional()?)
    }

    /// A number that changes whenever another connection commits to the database file.
    pub fn data_version(&self) -> Result<i64, RegistryError> {
        Ok(self.lock().query_row("PRAGMA data_version", [], |row| row.get(0))?)
    }
}

/// Marks a change to what the plugin's instances start from.
pub(super) fn bump_revision(connection: &Connection, plugin: &str) -> rusqlite::Result<()> {
    connection.execute("UPDATE plugins SET revision = revision + 1 WHERE id = ?", [plugin])?;
    Ok(())
}

/// Adds the revision column to a database made before it existed.
pub(super) fn add_revision_column(connection: &Connection) -> rusqlite::Result<()> {
    let present: bool = connection.query_row(
        "SELECT EXISTS (SELECT 1 FROM pragma_table_info('plugins') WHERE name = 'revision')",
        [],
        |row| row.get(0),
    )?;
    if !present {
        connection.execute_batch("ALTER TABLE plugins ADD COLUMN revision INTEGER NOT NULL DEFAULT 0")?;
    }
    Ok(())
}
